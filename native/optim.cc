// Fused optimizer updates: one pass over each parameter's memory instead of the six
// elementwise ops of the eager AdamW (bench/optim.ts measures the difference). Only
// lifecycle-free numeric loops live here; optimizer logic stays in TypeScript (src/optim).
#include <ATen/Parallel.h>

#include <cmath>

#include "lmf.h"

namespace {

struct AdamWConfig {
  double lr, beta1, beta2, eps, weight_decay, step_size, bias_correction2_sqrt;
};

// The arithmetic of torch.optim.AdamW (single-tensor path of PyTorch 1.13), element by element and
// in its order of roundings, so that a float32 run equals PyTorch's bit for bit (test/optim.test.ts):
//   p = p * (1 - lr*wd)                         param.mul_
//   m = fma(g, 1 - b1, m * b1)                  exp_avg.mul_(b1).add_(g, alpha): ATen's vector add is an fmadd
//   v = v * b2 + ((1 - b2) * g) * g             exp_avg_sq.mul_(b2).addcmul_(g, g, value)
//   p = p + ((-lr/bc1) * m) / (sqrt(v) / sqrt(bc2) + eps)    addcdiv_(m, denom, value=-step_size)
// binding.gyp compiles with -ffp-contract=off (no other product is fused) and -fno-math-errno
// (with errno semantics the square root stays a scalar instruction plus a libm call for negative
// inputs, and the loop is not vectorised: it ran scalar, slower than PyTorch's seven-pass foreach
// AdamW). The clones with FMA (AVX-512F, Haswell's AVX2 + FMA) vectorise it; the default clone
// calls libm's fma, exact as well.
template <typename T>
__attribute__((target_clones("avx512f", "arch=haswell", "default"), optimize("O3"))) void adamw_kernel(
    T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, int64_t n, const AdamWConfig c) {
  const T decay = static_cast<T>(1.0 - c.lr * c.weight_decay);
  const T b1 = static_cast<T>(c.beta1), one_b1 = static_cast<T>(1.0 - c.beta1);
  const T b2 = static_cast<T>(c.beta2), one_b2 = static_cast<T>(1.0 - c.beta2);
  const T eps = static_cast<T>(c.eps), neg_step = static_cast<T>(-c.step_size);
  const T bc2 = static_cast<T>(c.bias_correction2_sqrt);
  // builtins, not std::sqrt/std::fma: inline functions compiled under other options (optimize),
  // which GCC does not inline here, and a call per element ends the vectorisation
  for (int64_t i = 0; i < n; i++) {
    const T gi = g[i];
    const T pd = p[i] * decay;
    const T mi = sizeof(T) == 4 ? __builtin_fmaf(gi, one_b1, m[i] * b1) : __builtin_fma(gi, one_b1, m[i] * b1);
    const T vi = v[i] * b2 + (one_b2 * gi) * gi;
    m[i] = mi;
    v[i] = vi;
    const T root = sizeof(T) == 4 ? __builtin_sqrtf(static_cast<float>(vi)) : __builtin_sqrt(static_cast<double>(vi));
    p[i] = pd + (neg_step * mi) / (root / bc2 + eps);
  }
}

template <typename T>
void adamw_tensor(at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v, const AdamWConfig& c) {
  T* pp = p.data_ptr<T>();
  const T* gp = g.data_ptr<T>();
  T* mp = m.data_ptr<T>();
  T* vp = v.data_ptr<T>();
  at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
    adamw_kernel<T>(pp + begin, gp + begin, mp + begin, vp + begin, end - begin, c);
  });
  lmf::mark_written(p);
  lmf::mark_written(m);
  lmf::mark_written(v);
}

// The same update with ATen ops, for what the fused loop does not take (CUDA, bfloat16,
// non-contiguous tensors).
void adamw_eager(at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v, const AdamWConfig& c) {
  p.mul_(1 - c.lr * c.weight_decay);
  m.mul_(c.beta1).add_(g, 1 - c.beta1);
  v.mul_(c.beta2).addcmul_(g, g, 1 - c.beta2);
  at::Tensor denom = (v.sqrt() / c.bias_correction2_sqrt).add_(c.eps);
  p.addcdiv_(m, denom, -c.step_size);
}

// adamwStep(params, grads, expAvgs, expAvgSqs, lr, beta1, beta2, eps, weightDecay, step)
// updates each parameter and its two moments in place; step counts from 1.
napi_value adamw_step(napi_env env, napi_callback_info info) {
  LMF_ARGS(10);
  LMF_TRY {
    auto params = lmf::tensor_list_arg(env, argv[0], "adamwStep", "params");
    auto grads = lmf::tensor_list_arg(env, argv[1], "adamwStep", "grads");
    auto ms = lmf::tensor_list_arg(env, argv[2], "adamwStep", "expAvgs");
    auto vs = lmf::tensor_list_arg(env, argv[3], "adamwStep", "expAvgSqs");
    AdamWConfig c{};
    c.lr = lmf::float_arg(env, argv[4], "adamwStep", "lr");
    c.beta1 = lmf::float_arg(env, argv[5], "adamwStep", "beta1");
    c.beta2 = lmf::float_arg(env, argv[6], "adamwStep", "beta2");
    c.eps = lmf::float_arg(env, argv[7], "adamwStep", "eps");
    c.weight_decay = lmf::float_arg(env, argv[8], "adamwStep", "weightDecay");
    int64_t step = lmf::int_arg(env, argv[9], "adamwStep", "step");
    if (step < 1) throw lmf::ArgError("adamwStep: step counts from 1, got " + std::to_string(step));
    if (grads.size() != params.size() || ms.size() != params.size() || vs.size() != params.size()) {
      throw lmf::ArgError("adamwStep: params, grads, expAvgs and expAvgSqs must have the same length");
    }
    c.step_size = c.lr / (1 - std::pow(c.beta1, static_cast<double>(step)));
    c.bias_correction2_sqrt = std::sqrt(1 - std::pow(c.beta2, static_cast<double>(step)));
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); i++) {
      at::Tensor& p = params[i];
      const at::Tensor& g = grads[i];
      at::Tensor& m = ms[i];
      at::Tensor& v = vs[i];
      if (!p.sizes().equals(g.sizes()) || !p.sizes().equals(m.sizes()) || !p.sizes().equals(v.sizes())) {
        throw lmf::ArgError("adamwStep: parameter " + std::to_string(i) + " is " + lmf::describe_tensor(p) +
                            " but its grad/moments are " + lmf::describe_tensor(g) + ", " + lmf::describe_tensor(m) + ", " +
                            lmf::describe_tensor(v));
      }
      auto st = p.scalar_type();
      bool fusable = p.device().is_cpu() && (st == at::kFloat || st == at::kDouble) && g.scalar_type() == st &&
                     m.scalar_type() == st && v.scalar_type() == st && p.is_contiguous() && g.is_contiguous() &&
                     m.is_contiguous() && v.is_contiguous();
      if (!fusable) {
        adamw_eager(p, g, m, v, c);
      } else if (st == at::kFloat) {
        adamw_tensor<float>(p, g, m, v, c);
      } else {
        adamw_tensor<double>(p, g, m, v, c);
      }
    }
    return nullptr;
  }
  LMF_CATCH("adamwStep", argv, 10, "llllvvvvvv")
}

// setData(t, src): replaces the tensor's data, keeping its identity and autograd leaf status
// (PyTorch's `param.data = src`); modules move parameters to a dtype or device this way.
napi_value set_data(napi_env env, napi_callback_info info) {
  LMF_ARGS(2);
  LMF_TRY {
    at::Tensor t = lmf::tensor_arg(env, argv[0], "setData", "tensor");
    const at::Tensor& src = lmf::tensor_arg(env, argv[1], "setData", "src");
    t.set_data(src);
    lmf::mark_written(t);
    return nullptr;
  }
  LMF_CATCH("setData", argv, 2, "tt")
}

}  // namespace

namespace lmf {
void register_optim(napi_env env, napi_value exports) {
  napi_value fn;
  check(env, napi_create_function(env, "adamwStep", NAPI_AUTO_LENGTH, adamw_step, nullptr, &fn), "adamwStep");
  check(env, napi_set_named_property(env, exports, "adamwStep", fn), "adamwStep");
  check(env, napi_create_function(env, "setData", NAPI_AUTO_LENGTH, set_data, nullptr, &fn), "setData");
  check(env, napi_set_named_property(env, exports, "setData", fn), "setData");
}
}  // namespace lmf
