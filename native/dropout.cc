// Dropout masks from a counter-based generator, in parallel.
//
// Why: libtorch 1.13's dropout draws its mask with bernoulli_, which on a CPU without MKL
// runs one Mersenne-twister draw per element on one thread: 35 ms of a 179 ms bert-mini
// training step here (8.5 million elements), the largest cost after the GEMMs.
//
// Here element i of a call keeps its value when hash(seed, i) / 2^32 < 1 - p, the hash being
// two rounds of MurmurHash3's 32-bit finaliser keyed by a 64-bit seed. The seed is one draw
// from libtorch's default CPU generator, so manualSeed and getRngState/setRngState govern
// dropout as they govern every other random op, and the mask does not depend on the number
// of threads (each element's draw is a function of its index alone). The loop has no
// branches and vectorises (32-bit multiplies).
#include "lmf.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <mutex>

namespace lmf {
namespace {

inline uint32_t draw(int64_t i, uint32_t k0, uint32_t k1, uint32_t k2) {
  const uint32_t hi = static_cast<uint32_t>(static_cast<uint64_t>(i) >> 32);
  return fmix32(fmix32(static_cast<uint32_t>(i) ^ k0) ^ k1 ^ (hi * 0x9e3779b9u + k2));
}

// float32, the common case: compiled for AVX-512, AVX2 and the baseline, chosen at load.
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3"))) void fill_mask_f32(
    float* out, int64_t begin, int64_t end, uint32_t k0, uint32_t k1, uint32_t k2, uint32_t threshold, float scale) {
  for (int64_t i = begin; i < end; i++) out[i] = draw(i, k0, k1, k2) < threshold ? scale : 0.f;
}

}  // namespace

// out[i] = in[i] · M[base + i]: the mask applied without being stored (attention's dropout).
__attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3"))) void apply_dropout_f32(
    float* out, const float* in, int64_t n, int64_t base, const DropoutDraws& d) {
  const uint32_t k0 = d.k0, k1 = d.k1, k2 = d.k2, threshold = d.threshold;
  const float scale = d.scale;
  for (int64_t i = 0; i < n; i++) out[i] = draw(base + i, k0, k1, k2) < threshold ? in[i] * scale : 0.f;
}

namespace {

template <typename T>
void fill_mask(T* out, int64_t begin, int64_t end, uint32_t k0, uint32_t k1, uint32_t k2, uint32_t threshold, T scale) {
  for (int64_t i = begin; i < end; i++) out[i] = draw(i, k0, k1, k2) < threshold ? scale : T(0);
}

}  // namespace

DropoutDraws::DropoutDraws(uint64_t seed, double p) {
  k0 = static_cast<uint32_t>(seed);
  k1 = static_cast<uint32_t>(seed >> 32);
  k2 = fmix32(k0 ^ 0x27d4eb2fu);
  // keep when h < (1 - p) · 2^32
  threshold = static_cast<uint32_t>(std::min(std::llround((1.0 - p) * 4294967296.0), 4294967295LL));
  scale = static_cast<float>(1.0 / (1.0 - p));
}

uint64_t generator_seed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

at::Tensor dropout_mask(const at::Tensor& like, double p) {
  if (!(p >= 0 && p < 1)) throw ArgError("dropoutMask: p must be in [0, 1), got " + std::to_string(p));
  const auto dt = like.scalar_type();
  if (!like.device().is_cpu() || (dt != at::kFloat && dt != at::kBFloat16 && dt != at::kDouble))
    throw ArgError("dropoutMask: a float32, bfloat16 or float64 CPU tensor is needed, got " + describe_tensor(like));
  if (p == 0) return at::ones(like.sizes(), like.options().requires_grad(false));
  at::Tensor mask = at::empty(like.sizes(), like.options().requires_grad(false));
  const DropoutDraws d(generator_seed(), p);
  const uint32_t k0 = d.k0, k1 = d.k1, k2 = d.k2, threshold = d.threshold;
  const int64_t n = mask.numel();
  const double scale = 1.0 / (1.0 - p);
  at::parallel_for(0, n, 1 << 14, [&](int64_t begin, int64_t end) {
    if (dt == at::kFloat) {
      fill_mask_f32(mask.data_ptr<float>(), begin, end, k0, k1, k2, threshold, static_cast<float>(scale));
    } else if (dt == at::kDouble) {
      fill_mask<double>(mask.data_ptr<double>(), begin, end, k0, k1, k2, threshold, scale);
    } else {
      fill_mask<at::BFloat16>(mask.data_ptr<at::BFloat16>(), begin, end, k0, k1, k2, threshold, at::BFloat16(static_cast<float>(scale)));
    }
  });
  return mask;
}

}  // namespace lmf
