// Attention for inference in one pass per (batch, head): softmax(q kᵀ · scale + mask) v,
// written straight into the merged (B, T, H·D) layout that the output projection reads.
//
// Why: composed from ATen ops, attention copies q, k and v out of their head-split views into
// contiguous (B·H, T, D) tensors, writes the (B·H, T, S) scores, reads and writes them again for
// the softmax (twice more under bfloat16: to float32 and back), reads them for the second GEMM,
// and copies the context back from (B, H, T, D) to (B, T, H·D). Here each (batch, head) task
// keeps its T x S scores in a per-thread buffer (64 KB at T = S = 128, in L2), reads q, k and v
// through their strides, and writes its context once. The GEMMs are oneDNN's (sgemm for
// float32, gemm_bf16bf16f32 for bfloat16, accumulating in float32 like the bfloat16 bmm), run
// single-threaded inside the parallel loop over tasks.
//
// Only for inference: no gradient, no dropout, no probabilities returned; the caller
// (src/nn/attention.ts) takes the composed path for anything else.
#include "lmf.h"

#include <ATen/Parallel.h>

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positives inside avx512fintrin.h
#include <immintrin.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>


namespace lmf {
namespace {

// float32 -> bfloat16 rounding to nearest even (NaN kept a NaN), as c10::BFloat16 does.
inline uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Softmax of one row in place (probabilities as float32), or into bfloat16 (out16). The
// AVX-512 form computes exp as 2^n · p(r), r = x - n·ln 2 in [-ln2/2, ln2/2], p of degree 6
// (relative error below 2e-7, as float32's own rounding); the scalar form is the reference.
void softmax_row_scalar(float* row, int64_t n, const float* add, uint16_t* out16) {
  float mx = -std::numeric_limits<float>::infinity();
  if (add)
    for (int64_t i = 0; i < n; i++) row[i] += add[i];
  for (int64_t i = 0; i < n; i++) mx = std::max(mx, row[i]);
  float sum = 0.f;
  for (int64_t i = 0; i < n; i++) {
    row[i] = std::exp(row[i] - mx);
    sum += row[i];
  }
  const float inv = 1.f / sum;
  for (int64_t i = 0; i < n; i++) {
    if (out16) out16[i] = to_bf16(row[i] * inv);
    else row[i] *= inv;
  }
}

__attribute__((target("avx512f"))) inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.f));  // exp(-104) is below float32's smallest subnormal
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693145751953125f), x);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) void softmax_row_avx512(float* row, int64_t n, const float* add, uint16_t* out16) {
  __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    __m512 x = _mm512_maskz_loadu_ps(m, row + i);
    if (add) {
      x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, add + i));
      _mm512_mask_storeu_ps(row + i, m, x);
    }
    vmax = _mm512_mask_max_ps(vmax, m, vmax, x);
  }
  const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + i), mx));
    _mm512_mask_storeu_ps(row + i, m, e);
    vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(vsum));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    const __m512 pr = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + i), inv);
    if (out16) {
      // round to nearest even: add 0x7fff plus the kept part's lowest bit, keep the high half
      __m512i u = _mm512_castps_si512(pr);
      const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
      u = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
      _mm256_mask_storeu_epi16(out16 + i, m, _mm512_cvtepi32_epi16(u));
    } else {
      _mm512_mask_storeu_ps(row + i, m, pr);
    }
  }
}

// LMFORGE_NO_AVX512=1 takes the scalar softmax (a test runs it that way on AVX-512 machines).
const bool kAvx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                     !std::getenv("LMFORGE_NO_AVX512");

// add: a dense row added to the scores first (the mask), or null.
void softmax_row(float* row, int64_t n, const float* add, uint16_t* out16) {
  if (kAvx512) softmax_row_avx512(row, n, add, out16);
  else softmax_row_scalar(row, n, add, out16);
}

struct Shapes {
  int64_t B, H, T, S, D;
};

// One (batch, head)'s T x S scores: + the mask (float32, (B, H, T, S) strides) and the causal
// mask (the lowest value added, clamped, as the composed path does), then softmax per row, in
// place or into bfloat16 (out16, T x S).
void softmax_rows(float* scores, const at::Tensor& mask, bool causal, int64_t b, int64_t h, const Shapes& z, float lowest,
                  uint16_t* out16 = nullptr) {
  for (int64_t t = 0; t < z.T; t++) {
    float* row = scores + t * z.S;
    const float* add = nullptr;
    if (mask.defined()) {
      const float* mp = mask.data_ptr<float>() + b * mask.stride(0) + h * mask.stride(1) + t * mask.stride(2);
      const int64_t ms = mask.stride(3);
      if (ms == 1 && !causal) {
        add = mp;
      } else {
        for (int64_t s = 0; s < z.S; s++) row[s] += mp[s * ms];
      }
    }
    if (causal) {
      const int64_t last = z.S - z.T + t;
      for (int64_t s = std::max<int64_t>(last + 1, 0); s < z.S; s++) row[s] = std::max(row[s] + lowest, lowest);
    }
    softmax_row(row, z.S, add, out16 ? out16 + t * z.S : nullptr);
  }
}

void check_gemm(int status, const char* what) {
  if (status != 0) throw std::runtime_error(std::string("attentionInference: oneDNN ") + what + " failed with status " + std::to_string(status));
}

}  // namespace

at::Tensor attention_inference(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
                               const c10::optional<at::Tensor>& mask_in, bool causal, double scale_in) {
  const char* op = "attentionInference";
  if (q_in.dim() != 4 || k_in.dim() != 4 || v_in.dim() != 4)
    throw ArgError(std::string(op) + ": q, k and v must be (B, H, T, D), got " + describe_tensor(q_in) + ", " +
                   describe_tensor(k_in) + ", " + describe_tensor(v_in));
  const auto dt = q_in.scalar_type();
  if ((dt != at::kFloat && dt != at::kBFloat16) || k_in.scalar_type() != dt || v_in.scalar_type() != dt || !q_in.device().is_cpu() ||
      !k_in.device().is_cpu() || !v_in.device().is_cpu())
    throw ArgError(std::string(op) + ": q, k and v must be float32 or bfloat16 alike, on the CPU");
  if (!(dt == at::kFloat ? dnnl_sgemm_available() : dnnl_bf16_available()))
    throw ArgError(std::string(op) + ": this libtorch does not export oneDNN's GEMM; use the composed attention (attentionKernels() says which dtypes are served)");
  if (at::GradMode::is_enabled() && (q_in.requires_grad() || k_in.requires_grad() || v_in.requires_grad()))
    throw ArgError(std::string(op) + ": inference only (a gradient is asked for); use the composed attention");
  const int64_t B = q_in.size(0), H = q_in.size(1), T = q_in.size(2), D = q_in.size(3);
  const int64_t S = k_in.size(2), Dv = v_in.size(3);
  if (k_in.size(0) != B || k_in.size(1) != H || k_in.size(3) != D || v_in.size(0) != B || v_in.size(1) != H || v_in.size(2) != S)
    throw ArgError(std::string(op) + ": q " + describe_tensor(q_in) + ", k " + describe_tensor(k_in) + " and v " +
                   describe_tensor(v_in) + " do not fit together");
  // GEMMs read rows through a leading dimension: the last dimension must be dense.
  const at::Tensor q = q_in.stride(3) == 1 ? q_in : q_in.contiguous();
  const at::Tensor k = k_in.stride(3) == 1 ? k_in : k_in.contiguous();
  const at::Tensor v = v_in.stride(3) == 1 ? v_in : v_in.contiguous();
  at::Tensor mask;
  if (mask_in.has_value() && mask_in->defined()) {
    if (mask_in->dim() > 4) throw ArgError(std::string(op) + ": mask must broadcast to (B, H, T, S), got " + describe_tensor(*mask_in));
    at::Tensor m = mask_in->to(at::kFloat);
    try {
      mask = m.expand({B, H, T, S});
    } catch (const c10::Error&) {
      throw ArgError(std::string(op) + ": mask " + describe_tensor(*mask_in) + " does not broadcast to (B, H, T, S) = (" +
                     std::to_string(B) + ", " + std::to_string(H) + ", " + std::to_string(T) + ", " + std::to_string(S) + ")");
    }
  }
  const float scale = static_cast<float>(scale_in);
  const float lowest = dt == at::kBFloat16 ? -3.3895313892515355e38f : std::numeric_limits<float>::lowest();
  at::Tensor out = at::empty({B, T, H * Dv}, q.options());
  const int64_t ldo = H * Dv;

  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(T * S));
    std::vector<float> ctx(static_cast<size_t>(T * Dv));
    std::vector<uint16_t> probs16(dt == at::kBFloat16 ? static_cast<size_t>(T * S) : 0);
    for (int64_t task = begin; task < end; task++) {
      const int64_t b = task / H, h = task % H;
      // scores = scale · q kᵀ
      if (dt == at::kFloat) {
        const float* qp = q.data_ptr<float>() + b * q.stride(0) + h * q.stride(1);
        const float* kp = k.data_ptr<float>() + b * k.stride(0) + h * k.stride(1);
        check_gemm(dnnl_sgemm('N', 'T', T, S, D, scale, qp, q.stride(2), kp, k.stride(2), 0.f, scores.data(), S), "sgemm");
      } else {
        const uint16_t* qp = reinterpret_cast<const uint16_t*>(q.data_ptr<at::BFloat16>()) + b * q.stride(0) + h * q.stride(1);
        const uint16_t* kp = reinterpret_cast<const uint16_t*>(k.data_ptr<at::BFloat16>()) + b * k.stride(0) + h * k.stride(1);
        check_gemm(dnnl_gemm_bf16bf16f32('N', 'T', T, S, D, scale, qp, q.stride(2), kp, k.stride(2), 0.f, scores.data(), S),
                   "gemm_bf16bf16f32");
      }
      softmax_rows(scores.data(), mask, causal, b, h, Shapes{B, H, T, S, D}, lowest, dt == at::kFloat ? nullptr : probs16.data());
      // context = probs v, into out[b, :, h·Dv : (h+1)·Dv]
      if (dt == at::kFloat) {
        const float* vp = v.data_ptr<float>() + b * v.stride(0) + h * v.stride(1);
        float* op_ = out.data_ptr<float>() + b * T * ldo + h * Dv;
        check_gemm(dnnl_sgemm('N', 'N', T, Dv, S, 1.f, scores.data(), S, vp, v.stride(2), 0.f, op_, ldo), "sgemm");
      } else {
        const uint16_t* vp = reinterpret_cast<const uint16_t*>(v.data_ptr<at::BFloat16>()) + b * v.stride(0) + h * v.stride(1);
        check_gemm(dnnl_gemm_bf16bf16f32('N', 'N', T, Dv, S, 1.f, probs16.data(), S, vp, v.stride(2), 0.f, ctx.data(), Dv),
                   "gemm_bf16bf16f32");
        uint16_t* op_ = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()) + b * T * ldo + h * Dv;
        for (int64_t t = 0; t < T; t++)
          for (int64_t d = 0; d < Dv; d++) op_[t * ldo + d] = to_bf16(ctx[t * Dv + d]);
      }
    }
  });
  return out;
}

}  // namespace lmf

// --- training: the same pass with dropout, and its backward -------------------------------
//
// softmax(q kᵀ · scale + mask) with dropout, times v, as an autograd function: the forward
// keeps the probabilities (B, H, T, S), as the composed path keeps them for its backward, and
// the dropout mask is not stored but drawn again from its seed (the counter-based draws of
// dropout.cc, element (b, h, t, s) at index ((b·H + h)·T + t)·S + s). The backward per
// (batch, head), with P the probabilities and M the kept mask scaled by 1/(1-p):
//   dV = (P∘M)ᵀ dO,  dP = (dO Vᵀ)∘M,  dS = P∘(dP − rowsum(dP∘P)),  dQ = scale·dS K,  dK = scale·dSᵀ Q.
// float32 only (bfloat16 training takes the composed path).
#include <torch/csrc/autograd/custom_function.h>

namespace lmf {
namespace {

class TrainAttention : public torch::autograd::Function<TrainAttention> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& mask_or_empty, bool causal, double scale, double p) {
    // mask_or_empty: an empty tensor stands for no mask (autograd functions take no undefined tensors)
    const at::Tensor mask = mask_or_empty.numel() ? mask_or_empty : at::Tensor();
    const Shapes z{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3)};
    const uint64_t seed = p > 0 ? generator_seed() : 0;
    const DropoutDraws drop(seed, p);
    at::Tensor probs = at::empty({z.B, z.H, z.T, z.S}, q.options());
    at::Tensor out = at::empty({z.B, z.T, z.H * z.D}, q.options());
    const int64_t ldo = z.H * z.D;
    at::parallel_for(0, z.B * z.H, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> dropped(p > 0 ? static_cast<size_t>(z.T * z.S) : 0);
      for (int64_t task = begin; task < end; task++) {
        const int64_t b = task / z.H, h = task % z.H;
        float* P = probs.data_ptr<float>() + task * z.T * z.S;
        const float* qp = q.data_ptr<float>() + b * q.stride(0) + h * q.stride(1);
        const float* kp = k.data_ptr<float>() + b * k.stride(0) + h * k.stride(1);
        const float* vp = v.data_ptr<float>() + b * v.stride(0) + h * v.stride(1);
        check_gemm(dnnl_sgemm('N', 'T', z.T, z.S, z.D, static_cast<float>(scale), qp, q.stride(2), kp, k.stride(2), 0.f, P, z.S), "sgemm");
        softmax_rows(P, mask, causal, b, h, z, std::numeric_limits<float>::lowest());
        const float* A = P;
        if (p > 0) {
          apply_dropout_f32(dropped.data(), P, z.T * z.S, task * z.T * z.S, drop);
          A = dropped.data();
        }
        check_gemm(dnnl_sgemm('N', 'N', z.T, z.D, z.S, 1.f, A, z.S, vp, v.stride(2), 0.f, out.data_ptr<float>() + b * z.T * ldo + h * z.D, ldo), "sgemm");
      }
    });
    ctx->save_for_backward({q, k, v, probs});
    ctx->saved_data["seed"] = static_cast<int64_t>(seed);
    ctx->saved_data["p"] = p;
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3];
    const double p = ctx->saved_data["p"].toDouble();
    const float scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const DropoutDraws drop(static_cast<uint64_t>(ctx->saved_data["seed"].toInt()), p);
    const Shapes z{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3)};
    const at::Tensor dout = grads[0].contiguous();  // (B, T, H·D)
    const int64_t ldo = z.H * z.D;
    at::Tensor dq = at::empty({z.B, z.H, z.T, z.D}, q.options());
    at::Tensor dk = at::empty({z.B, z.H, z.S, z.D}, q.options());
    at::Tensor dv = at::empty({z.B, z.H, z.S, z.D}, q.options());
    at::parallel_for(0, z.B * z.H, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> pd(static_cast<size_t>(z.T * z.S)), dp(static_cast<size_t>(z.T * z.S));
      for (int64_t task = begin; task < end; task++) {
        const int64_t b = task / z.H, h = task % z.H;
        const float* P = probs.data_ptr<float>() + task * z.T * z.S;
        const float* qp = q.data_ptr<float>() + b * q.stride(0) + h * q.stride(1);
        const float* kp = k.data_ptr<float>() + b * k.stride(0) + h * k.stride(1);
        const float* vp = v.data_ptr<float>() + b * v.stride(0) + h * v.stride(1);
        const float* dop = dout.data_ptr<float>() + b * z.T * ldo + h * z.D;
        const float* A = P;
        const int64_t base = task * z.T * z.S;
        if (p > 0) {
          apply_dropout_f32(pd.data(), P, z.T * z.S, base, drop);
          A = pd.data();
        }
        // dV = (P∘M)ᵀ dO
        check_gemm(dnnl_sgemm('T', 'N', z.S, z.D, z.T, 1.f, A, z.S, dop, ldo, 0.f, dv.data_ptr<float>() + task * z.S * z.D, z.D), "sgemm");
        // dP = (dO Vᵀ)∘M
        check_gemm(dnnl_sgemm('N', 'T', z.T, z.S, z.D, 1.f, dop, ldo, vp, v.stride(2), 0.f, dp.data(), z.S), "sgemm");
        if (p > 0) apply_dropout_f32(dp.data(), dp.data(), z.T * z.S, base, drop);
        for (int64_t t = 0; t < z.T; t++) {
          float* d = dp.data() + t * z.S;
          const float* pr = P + t * z.S;
          float dot = 0.f;
          for (int64_t s = 0; s < z.S; s++) dot += d[s] * pr[s];
          for (int64_t s = 0; s < z.S; s++) d[s] = pr[s] * (d[s] - dot);  // dS
        }
        // dQ = scale · dS K, dK = scale · dSᵀ Q
        check_gemm(dnnl_sgemm('N', 'N', z.T, z.D, z.S, scale, dp.data(), z.S, kp, k.stride(2), 0.f, dq.data_ptr<float>() + task * z.T * z.D, z.D), "sgemm");
        check_gemm(dnnl_sgemm('T', 'N', z.S, z.D, z.T, scale, dp.data(), z.S, qp, q.stride(2), 0.f, dk.data_ptr<float>() + task * z.S * z.D, z.D), "sgemm");
      }
    });
    return {dq, dk, dv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor attention_train(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in, const c10::optional<at::Tensor>& mask_in,
                           bool causal, double scale, double p) {
  const char* op = "attentionTrain";
  if (q_in.dim() != 4 || k_in.dim() != 4 || v_in.dim() != 4)
    throw ArgError(std::string(op) + ": q, k and v must be (B, H, T, D), got " + describe_tensor(q_in) + ", " + describe_tensor(k_in) + ", " +
                   describe_tensor(v_in));
  if (q_in.scalar_type() != at::kFloat || k_in.scalar_type() != at::kFloat || v_in.scalar_type() != at::kFloat || !q_in.device().is_cpu() ||
      !k_in.device().is_cpu() || !v_in.device().is_cpu())
    throw ArgError(std::string(op) + ": q, k and v must be float32 on the CPU");
  if (!dnnl_sgemm_available()) throw ArgError(std::string(op) + ": this libtorch does not export oneDNN's GEMM; use the composed attention");
  if (!(p >= 0 && p < 1)) throw ArgError(std::string(op) + ": dropout p must be in [0, 1), got " + std::to_string(p));
  const int64_t B = q_in.size(0), H = q_in.size(1), T = q_in.size(2), D = q_in.size(3), S = k_in.size(2);
  if (k_in.size(0) != B || k_in.size(1) != H || k_in.size(3) != D || v_in.size(0) != B || v_in.size(1) != H || v_in.size(2) != S ||
      v_in.size(3) != D)
    throw ArgError(std::string(op) + ": q " + describe_tensor(q_in) + ", k " + describe_tensor(k_in) + " and v " + describe_tensor(v_in) +
                   " do not fit together");
  const at::Tensor q = q_in.stride(3) == 1 ? q_in : q_in.contiguous();
  const at::Tensor k = k_in.stride(3) == 1 ? k_in : k_in.contiguous();
  const at::Tensor v = v_in.stride(3) == 1 ? v_in : v_in.contiguous();
  at::Tensor mask;
  if (mask_in.has_value() && mask_in->defined()) {
    if (mask_in->requires_grad()) throw ArgError(std::string(op) + ": the mask must not require grad");
    try {
      mask = mask_in->to(at::kFloat).expand({B, H, T, S});
    } catch (const c10::Error&) {
      throw ArgError(std::string(op) + ": mask " + describe_tensor(*mask_in) + " does not broadcast to (B, H, T, S) = (" + std::to_string(B) +
                     ", " + std::to_string(H) + ", " + std::to_string(T) + ", " + std::to_string(S) + ")");
    }
  }
  return TrainAttention::apply(q, k, v, mask.defined() ? mask : at::empty({0}, q.options()), causal, scale, p);
}

}  // namespace lmf
