// The addon's core: tensor handles, argument conversion and the one error channel.
// Everything here is used by the generated op bindings (generated/ops.inc) and by the
// hand-written entry points in addon.cc (lifecycle, autograd, grad mode, devices, data).
#pragma once

#include <node_api.h>

#include <ATen/ATen.h>
#include <torch/csrc/api/include/torch/version.h>

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace lmf {

// A tensor handle as JavaScript holds it: a number naming a slot of the handle table and
// the slot's generation (id = generation * 2^24 + index), so that a disposed handle is
// recognised even after its slot has been reused. A plain number costs V8 nothing to make;
// a napi external with a finalizer per tensor cost more than the op itself (bench/engine.ts).
struct Slot {
  at::Tensor t;
  uint32_t gen = 0;
  int64_t reported = 0;  // bytes reported to V8 for this handle
};
constexpr uint64_t kIndexBits = 24;
constexpr uint64_t kIndexMask = (uint64_t(1) << kIndexBits) - 1;

// Thrown for a wrong JavaScript argument: becomes a TypeError naming the op and argument.
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

extern std::vector<Slot> g_slots;
extern int64_t g_live;  // slots holding a tensor

void check(napi_env env, napi_status status, const char* what);

// The caching CPU allocator (allocator.cc): large blocks kept for reuse.
struct CacheStats {
  size_t mapped;  // bytes mapped by the cache: in use plus cached
  size_t in_use;  // bytes held by live tensors
  size_t peak_in_use;  // the most in_use since the start or the last cache_reset_peak
  size_t cached;  // bytes kept for reuse
  size_t limit;   // most bytes kept for reuse
  uint64_t hits;
  uint64_t misses;
};
void install_caching_allocator();
CacheStats cache_stats();
void cache_empty();
void cache_reset_peak();
void cache_set_limit(size_t bytes);

// oneDNN's C GEMM entry points. libdnnl is libtorch's own dependency on Debian (its mkldnn
// backend), which ships no dnnl headers beside libtorch-dev, so they are declared here. They
// are weak: a libtorch that links oneDNN statically and hides it (the pip wheels) leaves them
// null, and the kernels that use them step aside (dnnl_available) for the ATen paths.
extern "C" {
int dnnl_sgemm(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) __attribute__((weak));
int dnnl_gemm_bf16bf16f32(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                          int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc) __attribute__((weak));
}
inline bool dnnl_sgemm_available() { return &dnnl_sgemm != nullptr; }
inline bool dnnl_bf16_available() { return &dnnl_gemm_bf16bf16f32 != nullptr; }

// Inference linear layers through oneDNN on cached transposed weights (linear.cc).
at::Tensor fused_linear(const at::Tensor& x, at::TensorList ws, at::TensorList bs, const std::string& act, bool in_out);
void clear_linear_cache();

// A dropout mask like `like`: 0 or 1/(1-p), from a counter-based generator (dropout.cc).
at::Tensor dropout_mask(const at::Tensor& like, double p);

// The counter-based draws behind it: element i is kept when draw(i) < threshold, draw being two
// rounds of MurmurHash3's 32-bit finaliser keyed by a 64-bit seed (dropout.cc, attention.cc).
inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}
struct DropoutDraws {
  uint32_t k0, k1, k2, threshold;
  float scale;  // 1 / (1 - p)
  DropoutDraws(uint64_t seed, double p);
  uint32_t draw(int64_t i) const {
    const uint32_t hi = static_cast<uint32_t>(static_cast<uint64_t>(i) >> 32);
    return fmix32(fmix32(static_cast<uint32_t>(i) ^ k0) ^ k1 ^ (hi * 0x9e3779b9u + k2));
  }
  bool keep(int64_t i) const { return draw(i) < threshold; }
};
// out[i] = in[i] · mask[base + i] (0 or 1/(1-p)), the mask drawn, not stored; out may be in.
void apply_dropout_f32(float* out, const float* in, int64_t n, int64_t base, const DropoutDraws& d);
// One 64-bit draw from libtorch's default CPU generator (manualSeed and getRngState govern it).
uint64_t generator_seed();

// Inference attention, one pass per (batch, head), output merged (B, T, H·D) (attention.cc).
at::Tensor attention_inference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const c10::optional<at::Tensor>& mask, bool causal, double scale);
// The same with dropout p and a backward (float32), as an autograd function (attention.cc).
at::Tensor attention_train(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const c10::optional<at::Tensor>& mask,
                           bool causal, double scale, double p);

// For code that writes a tensor's memory directly (not through an ATen op): counts a write in
// its version counter, as an in-place op does, so that what was derived from the old values
// (fused_linear's transposed weights) is known to be stale.
inline void mark_written(const at::Tensor& t) {
  if (!t.is_inference()) t.unsafeGetTensorImpl()->bump_version();
}
std::string describe(napi_env env, napi_value v, char kind = 'v');
std::string describe_tensor(const at::Tensor& t);
napi_value wrap_tensor(napi_env env, at::Tensor t);
// The slot a live id names, or nullptr (stale, disposed or not an id).
Slot* slot_of(double id);
// Frees the tensor an id names; false if it was already free.
bool release(napi_env env, double id);
void watch_memory(napi_env env, double id);
extern int64_t g_reported_total;

[[noreturn]] void arg_fail(napi_env env, napi_value v, const char* op, const char* arg, const char* want);

inline bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_undefined || t == napi_null;
}

inline const at::Tensor& tensor_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  double id;
  if (napi_get_value_double(env, v, &id) != napi_ok) arg_fail(env, v, op, arg, "a Tensor");
  Slot* slot = slot_of(id);
  if (slot == nullptr) {
    throw ArgError(std::string(op) + ": argument '" + arg + "' is a tensor that was already disposed");
  }
  return slot->t;
}
inline c10::optional<at::Tensor> opt_tensor_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  if (is_nullish(env, v)) return c10::nullopt;
  return tensor_arg(env, v, op, arg);
}
std::vector<at::Tensor> tensor_list_arg(napi_env env, napi_value v, const char* op, const char* arg);
at::Scalar scalar_arg(napi_env env, napi_value v, const char* op, const char* arg,
                      const char* want = "a number or boolean");
inline c10::optional<at::Scalar> opt_scalar_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  if (is_nullish(env, v)) return c10::nullopt;
  return scalar_arg(env, v, op, arg);
}
int64_t int_arg(napi_env env, napi_value v, const char* op, const char* arg);
// An integer argument of at least `min`: "op: arg must be at least min, got n" otherwise.
int64_t int_arg_at_least(napi_env env, napi_value v, const char* op, const char* arg, int64_t min);
inline c10::optional<int64_t> opt_int_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  if (is_nullish(env, v)) return c10::nullopt;
  return int_arg(env, v, op, arg);
}
std::vector<int64_t> int_list_arg(napi_env env, napi_value v, const char* op, const char* arg);
inline c10::optional<std::vector<int64_t>> opt_int_list_arg(napi_env env, napi_value v, const char* op,
                                                             const char* arg) {
  if (is_nullish(env, v)) return c10::nullopt;
  return int_list_arg(env, v, op, arg);
}
double float_arg(napi_env env, napi_value v, const char* op, const char* arg);
inline c10::optional<double> opt_float_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  if (is_nullish(env, v)) return c10::nullopt;
  return float_arg(env, v, op, arg);
}
bool bool_arg(napi_env env, napi_value v, const char* op, const char* arg);
std::string str_arg(napi_env env, napi_value v, const char* op, const char* arg);
std::string choice_arg(napi_env env, napi_value v, const char* op, const char* arg,
                       std::initializer_list<const char*> choices);
at::ScalarType parse_dtype(const std::string& name);  // throws ArgError listing the dtypes
const char* dtype_name(at::ScalarType t);
at::ScalarType dtype_arg(napi_env env, napi_value v, const char* op, const char* arg);
inline c10::optional<at::ScalarType> opt_dtype_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  if (is_nullish(env, v)) return c10::nullopt;
  return dtype_arg(env, v, op, arg);
}
c10::Device device_arg(napi_env env, napi_value v, const char* op, const char* arg);
inline c10::optional<c10::Device> opt_device_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  if (is_nullish(env, v)) return c10::nullopt;
  return device_arg(env, v, op, arg);
}
int64_t reduction_arg(napi_env env, napi_value v, const char* op, const char* arg);
at::TensorOptions options_arg(napi_env env, napi_value v, const char* op, const char* arg, bool* requires_grad);

inline at::Tensor apply_requires_grad(at::Tensor t, bool requires_grad) {
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

inline napi_value ret_tensor(napi_env env, at::Tensor t) { return wrap_tensor(env, std::move(t)); }
napi_value ret_tensor_list(napi_env env, const std::vector<at::Tensor>& ts);
napi_value ret_tensor_pair(napi_env env, const std::tuple<at::Tensor, at::Tensor>& ts);
napi_value ret_bool(napi_env env, bool b);
napi_value ret_double(napi_env env, double d);
napi_value ret_int(napi_env env, int64_t i);
napi_value ret_scalar(napi_env env, const at::Scalar& s);

// Throws the pending C++ exception as a JavaScript error naming the op and its arguments;
// kinds has one letter per argument: 't' a tensor id, 'l' a list of them, 'v' a value.
void throw_js(napi_env env, const char* op, napi_value* argv, size_t argc, const char* kinds);

}  // namespace lmf

namespace lmf {
// Missing trailing arguments read as undefined.
inline void fill_undefined(napi_env env, napi_value* argv, size_t argc, size_t n) {
  for (size_t i = argc; i < n; i++) napi_get_undefined(env, &argv[i]);
}
}  // namespace lmf

// Every native entry point is wrapped by these: LMF_ARGS reads the arguments, LMF_TRY /
// LMF_CATCH turn any C++ exception (libtorch's c10::Error included) into a JS Error.
#define LMF_ARGS(n)                                                          \
  size_t argc = (n);                                                         \
  napi_value argv[(n) > 0 ? (n) : 1];                                        \
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);                \
  lmf::fill_undefined(env, argv, argc, (n));

#define LMF_TRY try
#define LMF_CATCH(op, argv, argc, kinds)      \
  catch (...) {                               \
    lmf::throw_js(env, op, argv, argc, kinds); \
    return nullptr;                           \
  }
