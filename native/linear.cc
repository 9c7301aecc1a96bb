// Linear layers for inference: x Wᵀ + b (and an activation) through oneDNN's sgemm on a
// transposed copy of the weights, kept while the weights are unchanged.
//
// Why: libtorch's linear calls OpenBLAS with the weight transposed, and OpenBLAS repacks the
// weight on every call. At batch 1 (128 tokens) that packing is 13% of a bert-base forward,
// and oneDNN's sgemm on an (in, out) weight runs the same 12 layers' GEMMs in 48 ms instead
// of 61 ms on this machine (2 cores, the same weights cycled through as a forward does). Several
// weights can be given (a layer's query, key and value): they are concatenated once, into one
// GEMM. The activation is applied in place, with no second (tokens x 3072) tensor.
//
// Only where nothing is lost: float32 weights on the CPU, no gradient asked for, the weights
// 2-D and alike. Under bfloat16 autocast the bfloat16 copies of the weights are what is kept
// (libtorch's linear then runs on them, as autocast would). Anything else takes at::linear
// (and at::cat), which autograd and autocast know, as does a libtorch without oneDNN's
// sgemm exported (lmf.h).
#include "lmf.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <c10/util/intrusive_ptr.h>

#include <map>
#include <mutex>

namespace lmf {
namespace {

using WeakImpl = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;

struct Source {
  WeakImpl impl;
  int64_t version;
};

// A transposed, concatenated copy of some weights (and their biases), and what it was made from.
struct Packed {
  std::vector<Source> sources;
  at::Tensor wt;    // (in, sum of out)
  at::Tensor bias;  // (sum of out) or undefined
};

std::mutex g_mu;
std::map<std::vector<const void*>, Packed> g_packed;  // keyed by the weights and biases, in order

bool current(const Packed& p, at::TensorList ws, at::TensorList bs) {
  if (p.sources.size() != ws.size() + bs.size()) return false;
  for (size_t i = 0; i < p.sources.size(); i++) {
    const at::Tensor& t = i < ws.size() ? ws[i] : bs[i - ws.size()];
    auto locked = p.sources[i].impl.lock();
    if (locked.get() != t.unsafeGetTensorImpl() || p.sources[i].version != t._version()) return false;
  }
  return true;
}

void prune_locked() {
  for (auto it = g_packed.begin(); it != g_packed.end();) {
    bool dead = false;
    for (const Source& s : it->second.sources) dead = dead || s.impl.expired();
    it = dead ? g_packed.erase(it) : std::next(it);
  }
}

// bf16: the weights as bfloat16 (out, in) for autocast's linear, instead of float32 (in, out).
// in_out: the weights are stored (in, out) already (GPT-2's Conv1D), concatenated along out.
Packed packed(at::TensorList ws, at::TensorList bs, bool bf16, bool in_out) {
  std::vector<const void*> key{bf16 ? "bf16" : "f32", in_out ? "in_out" : "out_in"};
  for (const at::Tensor& t : ws) key.push_back(t.unsafeGetTensorImpl());
  for (const at::Tensor& t : bs) key.push_back(t.unsafeGetTensorImpl());
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_packed.find(key);
    if (it != g_packed.end() && current(it->second, ws, bs)) return it->second;
  }
  Packed p;
  at::NoGradGuard no_grad;
  at::Tensor w = ws.size() == 1 ? ws[0] : at::cat(ws, in_out ? 1 : 0);
  if (in_out) w = w.t();  // (out, in) from here on
  p.wt = bf16 ? w.to(at::kBFloat16).contiguous() : w.t().contiguous();
  if (!bs.empty()) {
    p.bias = bs.size() == 1 ? bs[0].contiguous() : at::cat(bs, 0);
    if (bf16) p.bias = p.bias.to(at::kBFloat16);
  }
  for (const at::Tensor& t : ws) p.sources.push_back({WeakImpl(t.getIntrusivePtr()), t._version()});
  for (const at::Tensor& t : bs) p.sources.push_back({WeakImpl(t.getIntrusivePtr()), t._version()});
  std::lock_guard<std::mutex> lock(g_mu);
  prune_locked();
  g_packed[key] = p;
  return p;
}

at::Tensor activate(at::Tensor y, const std::string& act) {
  if (act == "none") return y;
  if (act == "gelu") return at::GradMode::is_enabled() && y.requires_grad() ? at::gelu(y) : at::gelu_(y);
  if (act == "gelu_tanh") return at::GradMode::is_enabled() && y.requires_grad() ? at::gelu(y, "tanh") : at::gelu_(y, "tanh");
  throw ArgError("fusedLinear: act must be none, gelu or gelu_tanh, got '" + act + "'");
}

// Training: y = x Wᵀ + b with oneDNN's sgemm and its own backward (float32), instead of
// OpenBLAS through at::linear: the GEMMs of a bert-mini layer (2048 tokens; forward, dX, dW)
// take 22.8 ms in oneDNN against 26.4 ms in OpenBLAS here (C++ microbenchmark, 2 threads).
//   forward  y  = x · Wᵀ (Wᵀ made contiguous once per call, (in, out))
//   backward dX = dY · W,  dW = dYᵀ · x,  db = Σ dY
class TrainLinear : public torch::autograd::Function<TrainLinear> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b_or_empty) {
    const int64_t K = w.size(1), N = w.size(0);
    const at::Tensor x2 = x.reshape({-1, K}).contiguous();
    const int64_t M = x2.size(0);
    const at::Tensor wt = w.t().contiguous();
    const bool bias = b_or_empty.numel() > 0;
    at::Tensor out = at::empty({M, N}, x.options());
    if (bias) out.copy_(b_or_empty.unsqueeze(0).expand({M, N}));
    int st = dnnl_sgemm('N', 'N', M, N, K, 1.f, x2.data_ptr<float>(), K, wt.data_ptr<float>(), N, bias ? 1.f : 0.f, out.data_ptr<float>(), N);
    if (st != 0) throw std::runtime_error("fusedLinear: oneDNN sgemm failed with status " + std::to_string(st));
    ctx->save_for_backward({x2, w});
    ctx->saved_data["bias"] = bias;
    ctx->saved_data["shape"] = x.sizes().vec();
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = N;
    return out.view(shape);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x2 = saved[0], &w = saved[1];
    const int64_t M = x2.size(0), K = x2.size(1), N = w.size(0);
    const at::Tensor dy = grads[0].reshape({M, N}).contiguous();
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      const at::Tensor wc = w.contiguous();
      dx = at::empty({M, K}, dy.options());
      int st = dnnl_sgemm('N', 'N', M, K, N, 1.f, dy.data_ptr<float>(), N, wc.data_ptr<float>(), K, 0.f, dx.data_ptr<float>(), K);
      if (st != 0) throw std::runtime_error("fusedLinear backward: oneDNN sgemm failed with status " + std::to_string(st));
      dx = dx.view(ctx->saved_data["shape"].toIntVector());
    }
    if (ctx->needs_input_grad(1)) {
      dw = at::empty({N, K}, dy.options());
      int st = dnnl_sgemm('T', 'N', N, K, M, 1.f, dy.data_ptr<float>(), N, x2.data_ptr<float>(), K, 0.f, dw.data_ptr<float>(), K);
      if (st != 0) throw std::runtime_error("fusedLinear backward: oneDNN sgemm failed with status " + std::to_string(st));
    }
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) db = dy.sum(0);
    return {dx, dw, db};
  }
};

}  // namespace

at::Tensor fused_linear(const at::Tensor& x, at::TensorList ws, at::TensorList bs, const std::string& act, bool in_out) {
  if (ws.empty()) throw ArgError("fusedLinear: weights must not be empty");
  if (!bs.empty() && bs.size() != ws.size())
    throw ArgError("fusedLinear: give a bias for every weight or none (" + std::to_string(ws.size()) + " weights, " +
                   std::to_string(bs.size()) + " biases)");
  bool grad = false;
  // Under bfloat16 autocast, linear runs on bfloat16 copies of its arguments; autocast casts
  // the weights again on every forward (it keeps casts only of leaves that require grad, and
  // only until the outermost autocast ends). Here the bfloat16 weights are kept.
  const bool autocast = at::autocast::is_cpu_enabled();
  const bool bf16 = autocast && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16;
  bool fast = x.device().is_cpu() && x.dim() >= 1 && (bf16 || dnnl_sgemm_available()) && (bf16 ? (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) : !autocast && x.scalar_type() == at::kFloat);
  const int64_t K = x.dim() >= 1 ? x.size(-1) : 0;
  for (const at::Tensor& w : ws) {
    grad = grad || w.requires_grad();
    fast = fast && w.dim() == 2 && w.scalar_type() == at::kFloat && w.device().is_cpu() && w.size(in_out ? 0 : 1) == K && !w.is_inference();
  }
  for (const at::Tensor& b : bs) {
    grad = grad || b.requires_grad();
    fast = fast && b.dim() == 1 && b.scalar_type() == at::kFloat && b.device().is_cpu() && !b.is_inference();
  }
  grad = at::GradMode::is_enabled() && (grad || x.requires_grad());
  // bfloat16 weights (a model cast with .to("bfloat16")), no gradient, several of them (a
  // layer's query, key and value) or stored (in, out) (GPT-2's Conv1D): an (out, in) copy is
  // kept, their concatenation, as for float32 above, instead of at::cat copying them on every
  // call (at a one-token decoding step that copy is as much memory traffic as the GEMM itself),
  // and instead of the GEMM reading an (in, out) weight, which oneDNN's bfloat16 matmul does at
  // about half the speed at one token (GPT-2 small decoding, 2 threads: 36 against 74 tokens/s).
  if (!grad && !autocast && (ws.size() > 1 || in_out) && x.device().is_cpu() && x.scalar_type() == at::kBFloat16 && x.numel() > 0) {
    bool alike = true;
    for (const at::Tensor& w : ws)
      alike = alike && w.dim() == 2 && w.scalar_type() == at::kBFloat16 && w.device().is_cpu() && w.size(in_out ? 0 : 1) == K && !w.is_inference();
    for (const at::Tensor& b : bs) alike = alike && b.dim() == 1 && b.scalar_type() == at::kBFloat16 && b.device().is_cpu() && !b.is_inference();
    if (alike) {
      Packed p = packed(ws, bs, true, in_out);
      c10::optional<at::Tensor> b;
      if (p.bias.defined()) b = p.bias;
      return activate(at::linear(x, p.wt, b), act);
    }
  }
  if (!fast || grad || x.numel() == 0) {
    at::Tensor w = ws.size() == 1 ? ws[0] : at::cat(ws, in_out ? 1 : 0);
    if (in_out) w = w.t();
    c10::optional<at::Tensor> b;
    if (!bs.empty()) b = bs.size() == 1 ? bs[0] : at::cat(bs, 0);
    // float32 training on the CPU with (out, in) weights: oneDNN with its own backward; anything
    // else (GPT-2's (in, out) Conv1D weights measured 4% slower this way) takes at::linear
    if (fast && grad && !in_out && x.numel() > 0 && dnnl_sgemm_available() && !autocast)
      return activate(TrainLinear::apply(x, w, b ? *b : at::empty({0}, x.options())), act);
    return activate(at::linear(x, w, b), act);
  }
  if (bf16) {
    Packed p = packed(ws, bs, true, in_out);
    c10::optional<at::Tensor> b;
    if (p.bias.defined()) b = p.bias;
    return activate(at::linear(x.to(at::kBFloat16), p.wt, b), act);  // autocast leaves bfloat16 arguments as they are
  }
  // A single (in, out) weight is already what the GEMM reads: no copy to keep.
  Packed p;
  if (in_out && ws.size() == 1 && ws[0].is_contiguous() && bs.size() <= 1) {
    p.wt = ws[0];
    if (!bs.empty()) p.bias = bs[0].contiguous();
  } else {
    p = packed(ws, bs, false, in_out);
  }
  const int64_t N = p.wt.size(1);
  at::Tensor x2 = x.reshape({-1, K}).contiguous();
  const int64_t M = x2.size(0);
  at::Tensor out = at::empty({M, N}, x.options());
  if (p.bias.defined()) out.copy_(p.bias.unsqueeze(0).expand({M, N}));
  int status = dnnl_sgemm('N', 'N', M, N, K, 1.0f, x2.data_ptr<float>(), K, p.wt.data_ptr<float>(), N,
                          p.bias.defined() ? 1.0f : 0.0f, out.data_ptr<float>(), N);
  if (status != 0) throw std::runtime_error("fusedLinear: oneDNN sgemm failed with status " + std::to_string(status));
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = N;
  return activate(out, act).view(shape);
}

void clear_linear_cache() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_packed.clear();
}

}  // namespace lmf
