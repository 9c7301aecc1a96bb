// The hand-written entry points: lifecycle, metadata, raw data transfer, autograd, grad
// mode, random state, threads, autocast and devices. Every op lives in ops.def instead.
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/api/include/torch/cuda.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lmf.h"

namespace lmf {
void register_ops(napi_env env, napi_value exports);
void register_optim(napi_env env, napi_value exports);
void register_distributed(napi_env env, napi_value exports);
void register_reducer(napi_env env, napi_value exports);
}

using lmf::ArgError;

namespace {

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// --- lifecycle and metadata ------------------------------------------------------------

napi_value dispose(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    double id;
    if (napi_get_value_double(env, argv[0], &id) != napi_ok) lmf::arg_fail(env, argv[0], "dispose", "tensor", "a Tensor");
    return lmf::ret_bool(env, lmf::release(env, id));
  }
  LMF_CATCH("dispose", argv, 1, "v")
}

// disposeMany(ids: Float64Array): frees many handles in one call (a scope's end).
napi_value dispose_many(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    bool is_typed = false;
    napi_is_typedarray(env, argv[0], &is_typed);
    napi_typedarray_type type = napi_int8_array;
    size_t length = 0, offset;
    void* data = nullptr;
    napi_value ab;
    if (is_typed) napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &offset);
    if (!is_typed || type != napi_float64_array) lmf::arg_fail(env, argv[0], "disposeMany", "ids", "a Float64Array");
    const double* ids = static_cast<const double*>(data);
    int64_t freed = 0;
    for (size_t i = 0; i < length; i++) freed += lmf::release(env, ids[i]) ? 1 : 0;
    return lmf::ret_int(env, freed);
  }
  LMF_CATCH("disposeMany", argv, 1, "v")
}

napi_value is_disposed(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    double id;
    if (napi_get_value_double(env, argv[0], &id) != napi_ok) lmf::arg_fail(env, argv[0], "isDisposed", "tensor", "a Tensor");
    return lmf::ret_bool(env, lmf::slot_of(id) == nullptr);
  }
  LMF_CATCH("isDisposed", argv, 1, "v")
}

// watchMemory(t): the tensor is left to the garbage collector; V8 is told of its memory.
napi_value watch_memory(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    double id;
    if (napi_get_value_double(env, argv[0], &id) != napi_ok) lmf::arg_fail(env, argv[0], "watchMemory", "tensor", "a Tensor");
    lmf::watch_memory(env, id);
    return nullptr;
  }
  LMF_CATCH("watchMemory", argv, 1, "v")
}

napi_value reported_bytes(napi_env env, napi_callback_info /*info*/) { return lmf::ret_int(env, lmf::g_reported_total); }

napi_value live_count(napi_env env, napi_callback_info /*info*/) { return lmf::ret_int(env, lmf::g_live); }

// [shape, dtype, device] in one call: JS caches them (a tensor's metadata never changes
// because no metadata-changing in-place op is bound).
napi_value meta(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    const at::Tensor& t = lmf::tensor_arg(env, argv[0], "meta", "tensor");
    napi_value shape, out, v;
    napi_create_array_with_length(env, t.dim(), &shape);
    for (int64_t i = 0; i < t.dim(); i++) {
      napi_create_int64(env, t.size(i), &v);
      napi_set_element(env, shape, i, v);
    }
    napi_create_array_with_length(env, 3, &out);
    napi_set_element(env, out, 0, shape);
    napi_create_string_utf8(env, lmf::dtype_name(t.scalar_type()), NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, out, 1, v);
    napi_create_string_utf8(env, t.device().str().c_str(), NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, out, 2, v);
    return out;
  }
  LMF_CATCH("meta", argv, 1, "t")
}

napi_value strides(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    const at::Tensor& t = lmf::tensor_arg(env, argv[0], "strides", "tensor");
    napi_value out, v;
    napi_create_array_with_length(env, t.dim(), &out);
    for (int64_t i = 0; i < t.dim(); i++) {
      napi_create_int64(env, t.stride(i), &v);
      napi_set_element(env, out, i, v);
    }
    return out;
  }
  LMF_CATCH("strides", argv, 1, "t")
}

napi_value is_contiguous(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY { return lmf::ret_bool(env, lmf::tensor_arg(env, argv[0], "isContiguous", "tensor").is_contiguous()); }
  LMF_CATCH("isContiguous", argv, 1, "t")
}

// --- raw data in and out -----------------------------------------------------------------

// fromBuffer(view: TypedArray | Buffer | ArrayBuffer, dtype, shape): copies the bytes into a
// new CPU tensor. The byte length must equal numel * itemsize.
napi_value from_buffer(napi_env env, napi_callback_info info) {
  LMF_ARGS(3);
  LMF_TRY {
    void* data = nullptr;
    size_t nbytes = 0;
    bool is_typed = false, is_ab = false, is_dv = false;
    napi_is_typedarray(env, argv[0], &is_typed);
    napi_is_arraybuffer(env, argv[0], &is_ab);
    napi_is_dataview(env, argv[0], &is_dv);
    if (is_typed) {
      napi_typedarray_type type;
      size_t length, offset;
      napi_value ab;
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &offset);
      napi_value bytes;
      napi_get_named_property(env, argv[0], "byteLength", &bytes);
      double b;
      napi_get_value_double(env, bytes, &b);
      nbytes = static_cast<size_t>(b);
    } else if (is_dv) {
      napi_value ab;
      size_t offset;
      napi_get_dataview_info(env, argv[0], &nbytes, &data, &ab, &offset);
    } else if (is_ab) {
      napi_get_arraybuffer_info(env, argv[0], &data, &nbytes);
    } else {
      lmf::arg_fail(env, argv[0], "fromBuffer", "data", "a TypedArray, Buffer, DataView or ArrayBuffer");
    }
    at::ScalarType dtype = lmf::dtype_arg(env, argv[1], "fromBuffer", "dtype");
    std::vector<int64_t> shape = lmf::int_list_arg(env, argv[2], "fromBuffer", "shape");
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
    if (t.nbytes() != nbytes) {
      throw ArgError("fromBuffer: " + std::to_string(nbytes) + " bytes cannot hold a " + lmf::dtype_name(dtype) +
                     " tensor of shape " + lmf::describe(env, argv[2]) + ", which needs " + std::to_string(t.nbytes()));
    }
    if (nbytes) std::memcpy(t.data_ptr(), data, nbytes);
    return lmf::ret_tensor(env, std::move(t));
  }
  LMF_CATCH("fromBuffer", argv, 3, "vvv")
}

void finalize_view(napi_env /*env*/, void* /*data*/, void* hint) { delete static_cast<at::Tensor*>(hint); }

// toBuffer(t, copy): the tensor's bytes as an ArrayBuffer. copy=false shares the memory of a
// contiguous CPU tensor (zero-copy; the ArrayBuffer keeps the storage alive); otherwise the
// bytes are copied (from any device and layout).
napi_value to_buffer(napi_env env, napi_callback_info info) {
  LMF_ARGS(2);
  LMF_TRY {
    const at::Tensor& t = lmf::tensor_arg(env, argv[0], "toBuffer", "tensor");
    bool copy = lmf::bool_arg(env, argv[1], "toBuffer", "copy");
    napi_value out;
    if (!copy && t.device().is_cpu() && t.is_contiguous() && t.nbytes() > 0) {
      auto* keep = new at::Tensor(t);
      napi_status st = napi_create_external_arraybuffer(env, keep->data_ptr(), keep->nbytes(), finalize_view, keep, &out);
      if (st == napi_ok) return out;
      delete keep;  // runtimes that forbid external buffers: fall back to a copy
    }
    at::Tensor src = t.to(at::kCPU).contiguous();
    void* dst = nullptr;
    lmf::check(env, napi_create_arraybuffer(env, src.nbytes(), &dst, &out), "create ArrayBuffer");
    if (src.nbytes()) std::memcpy(dst, src.data_ptr(), src.nbytes());
    return out;
  }
  LMF_CATCH("toBuffer", argv, 2, "tv")
}

// readFileInto(t, path, offset): fills a contiguous CPU tensor with bytes read from a file at
// a byte offset, straight into the tensor's memory (safetensors loading uses it).
napi_value read_file_into(napi_env env, napi_callback_info info) {
  LMF_ARGS(3);
  LMF_TRY {
    const at::Tensor& t = lmf::tensor_arg(env, argv[0], "readFileInto", "tensor");
    std::string path = lmf::str_arg(env, argv[1], "readFileInto", "path");
    int64_t offset = lmf::int_arg(env, argv[2], "readFileInto", "offset");
    if (!t.device().is_cpu() || !t.is_contiguous()) throw ArgError("readFileInto: the tensor must be contiguous on the CPU");
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
    char* dst = static_cast<char*>(t.data_ptr());
    size_t left = t.nbytes();
    off_t pos = offset;
    while (left > 0) {
      ssize_t n = ::pread(fd, dst, left, pos);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int err = errno;
        ::close(fd);
        throw std::runtime_error(path + ": short read at byte " + std::to_string(pos) + (n < 0 ? std::string(": ") + std::strerror(err) : ""));
      }
      dst += n;
      left -= n;
      pos += n;
    }
    ::close(fd);
    lmf::mark_written(t);
    return undefined(env);
  }
  LMF_CATCH("readFileInto", argv, 3, "tvv")
}

// --- autograd and grad mode --------------------------------------------------------------

napi_value requires_grad(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY { return lmf::ret_bool(env, lmf::tensor_arg(env, argv[0], "requiresGrad", "tensor").requires_grad()); }
  LMF_CATCH("requiresGrad", argv, 1, "t")
}

napi_value set_requires_grad(napi_env env, napi_callback_info info) {
  LMF_ARGS(2);
  LMF_TRY {
    at::Tensor t = lmf::tensor_arg(env, argv[0], "setRequiresGrad", "tensor");
    t.requires_grad_(lmf::bool_arg(env, argv[1], "setRequiresGrad", "requiresGrad"));
    return undefined(env);
  }
  LMF_CATCH("setRequiresGrad", argv, 2, "tv")
}

napi_value is_leaf(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY { return lmf::ret_bool(env, lmf::tensor_arg(env, argv[0], "isLeaf", "tensor").is_leaf()); }
  LMF_CATCH("isLeaf", argv, 1, "t")
}

// share(t): a second handle on the same tensor (the same TensorImpl: its .grad, its graph), with
// a lifetime of its own. useCount(t): how many references the TensorImpl has (handles, views'
// bases, autograd nodes such as a leaf's gradient accumulator): 1 means nothing but this handle
// can reach it. Gradient checkpointing uses the two to keep its stacks' outputs without keeping
// them from the caller's scope.
napi_value share(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY { return lmf::ret_tensor(env, lmf::tensor_arg(env, argv[0], "share", "tensor")); }
  LMF_CATCH("share", argv, 1, "t")
}

napi_value use_count(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    napi_value out;
    napi_create_double(env, static_cast<double>(lmf::tensor_arg(env, argv[0], "useCount", "tensor").use_count()), &out);
    return out;
  }
  LMF_CATCH("useCount", argv, 1, "t")
}

napi_value grad_fn_name(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    const at::Tensor& t = lmf::tensor_arg(env, argv[0], "gradFn", "tensor");
    if (!t.grad_fn()) return undefined(env);
    napi_value out;
    napi_create_string_utf8(env, t.grad_fn()->name().c_str(), NAPI_AUTO_LENGTH, &out);
    return out;
  }
  LMF_CATCH("gradFn", argv, 1, "t")
}

napi_value grad(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY { return lmf::ret_tensor(env, lmf::tensor_arg(env, argv[0], "grad", "tensor").grad()); }
  LMF_CATCH("grad", argv, 1, "t")
}

// setGrad(t, g | null): assigns or clears .grad (zeroing grads sets it to null, as PyTorch's
// zero_grad(set_to_none=True) does).
napi_value set_grad(napi_env env, napi_callback_info info) {
  LMF_ARGS(2);
  LMF_TRY {
    at::Tensor t = lmf::tensor_arg(env, argv[0], "setGrad", "tensor");
    c10::optional<at::Tensor> g = lmf::opt_tensor_arg(env, argv[1], "setGrad", "grad");
    t.mutable_grad() = g.has_value() ? *g : at::Tensor();
    return undefined(env);
  }
  LMF_CATCH("setGrad", argv, 2, "tt")
}

napi_value retain_grad(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    lmf::tensor_arg(env, argv[0], "retainGrad", "tensor").retain_grad();
    return undefined(env);
  }
  LMF_CATCH("retainGrad", argv, 1, "t")
}

// backward(t, gradient | null, retainGraph, createGraph)
napi_value backward(napi_env env, napi_callback_info info) {
  LMF_ARGS(4);
  LMF_TRY {
    const at::Tensor& t = lmf::tensor_arg(env, argv[0], "backward", "tensor");
    c10::optional<at::Tensor> g = lmf::opt_tensor_arg(env, argv[1], "backward", "gradient");
    bool retain = lmf::bool_arg(env, argv[2], "backward", "retainGraph");
    bool create = lmf::bool_arg(env, argv[3], "backward", "createGraph");
    if (!t.requires_grad()) {
      throw std::runtime_error("the tensor does not require grad and has no grad_fn: nothing to differentiate");
    }
    if (!g.has_value() && t.numel() != 1) {
      throw std::runtime_error("a gradient must be given for a non-scalar output of shape " + lmf::describe(env, argv[0], 't'));
    }
    torch::autograd::backward({t}, {g.has_value() ? *g : at::Tensor()}, retain, create);
    return undefined(env);
  }
  LMF_CATCH("backward", argv, 4, "ttvv")
}

// autogradGrad(outputs, inputs, gradOutputs | null, retainGraph, createGraph, allowUnused):
// gradients of outputs with respect to inputs, leaving every .grad untouched.
napi_value autograd_grad(napi_env env, napi_callback_info info) {
  LMF_ARGS(6);
  LMF_TRY {
    auto outputs = lmf::tensor_list_arg(env, argv[0], "grad", "outputs");
    auto inputs = lmf::tensor_list_arg(env, argv[1], "grad", "inputs");
    std::vector<at::Tensor> grad_outputs;
    if (!lmf::is_nullish(env, argv[2])) grad_outputs = lmf::tensor_list_arg(env, argv[2], "grad", "gradOutputs");
    bool retain = lmf::bool_arg(env, argv[3], "grad", "retainGraph");
    bool create = lmf::bool_arg(env, argv[4], "grad", "createGraph");
    bool allow_unused = lmf::bool_arg(env, argv[5], "grad", "allowUnused");
    auto grads = torch::autograd::grad(outputs, inputs, grad_outputs, retain, create, allow_unused);
    return lmf::ret_tensor_list(env, grads);
  }
  LMF_CATCH("grad", argv, 6, "lllvvv")
}

napi_value set_grad_enabled(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    bool prev = c10::GradMode::is_enabled();
    c10::GradMode::set_enabled(lmf::bool_arg(env, argv[0], "setGradEnabled", "enabled"));
    return lmf::ret_bool(env, prev);
  }
  LMF_CATCH("setGradEnabled", argv, 1, "v")
}

napi_value is_grad_enabled(napi_env env, napi_callback_info /*info*/) {
  return lmf::ret_bool(env, c10::GradMode::is_enabled());
}

// --- random state ----------------------------------------------------------------------------

napi_value manual_seed(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    int64_t seed = lmf::int_arg(env, argv[0], "manualSeed", "seed");
    at::manual_seed(static_cast<uint64_t>(seed));  // CPU, and every CUDA device when present
    return undefined(env);
  }
  LMF_CATCH("manualSeed", argv, 1, "v")
}

// The CPU generator's full state (Mersenne Twister and normal cache) as bytes.
napi_value get_rng_state(napi_env env, napi_callback_info info) {
  LMF_ARGS(0);
  LMF_TRY {
    auto gen = at::detail::getDefaultCPUGenerator();
    at::Tensor state;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      state = gen.get_state();
    }
    napi_value out;
    void* dst = nullptr;
    lmf::check(env, napi_create_buffer(env, state.nbytes(), &dst, &out), "create Buffer");
    std::memcpy(dst, state.data_ptr(), state.nbytes());
    return out;
  }
  LMF_CATCH("getRngState", argv, 0, "")
}

napi_value set_rng_state(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    bool is_typed = false;
    napi_is_typedarray(env, argv[0], &is_typed);
    if (!is_typed) lmf::arg_fail(env, argv[0], "setRngState", "state", "a Buffer from getRngState()");
    napi_typedarray_type type;
    size_t length, offset;
    void* data;
    napi_value ab;
    napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &offset);
    if (type != napi_uint8_array) lmf::arg_fail(env, argv[0], "setRngState", "state", "a Buffer from getRngState()");
    at::Tensor state = at::empty({static_cast<int64_t>(length)}, at::TensorOptions().dtype(at::kByte));
    std::memcpy(state.data_ptr(), data, length);
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    return undefined(env);
  }
  LMF_CATCH("setRngState", argv, 1, "v")
}

// --- threads, autocast, devices, build information ------------------------------------------

napi_value get_num_threads(napi_env env, napi_callback_info /*info*/) { return lmf::ret_int(env, at::get_num_threads()); }

napi_value set_num_threads(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    at::set_num_threads(static_cast<int>(lmf::int_arg_at_least(env, argv[0], "setNumThreads", "threads", 1)));
    return undefined(env);
  }
  LMF_CATCH("setNumThreads", argv, 1, "v")
}

bool autocast_enabled(c10::DeviceType d) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(d);
#else
  return d == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}
at::ScalarType autocast_dtype(c10::DeviceType d) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::get_autocast_dtype(d);
#else
  return d == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
#endif
}
void set_autocast(c10::DeviceType d, bool enabled, at::ScalarType dtype) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(d, enabled);
  at::autocast::set_autocast_dtype(d, dtype);
#else
  if (d == c10::DeviceType::CPU) {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
#endif
}

c10::DeviceType autocast_device(napi_env env, napi_value v, const char* op) {
  std::string s = lmf::choice_arg(env, v, op, "deviceType", {"cpu", "cuda"});
  return s == "cpu" ? c10::DeviceType::CPU : c10::DeviceType::CUDA;
}

// autocastSet(deviceType, enabled, dtype) -> [prevEnabled, prevDtype]. Nesting is counted so
// that the cast-weight cache is cleared when the outermost scope ends, as PyTorch does.
napi_value autocast_set(napi_env env, napi_callback_info info) {
  LMF_ARGS(3);
  LMF_TRY {
    c10::DeviceType d = autocast_device(env, argv[0], "autocastSet");
    bool enabled = lmf::bool_arg(env, argv[1], "autocastSet", "enabled");
    at::ScalarType dtype = lmf::dtype_arg(env, argv[2], "autocastSet", "dtype");
    napi_value out, v;
    napi_create_array_with_length(env, 2, &out);
    napi_set_element(env, out, 0, lmf::ret_bool(env, autocast_enabled(d)));
    napi_create_string_utf8(env, lmf::dtype_name(autocast_dtype(d)), NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, out, 1, v);
    set_autocast(d, enabled, dtype);
    return out;
  }
  LMF_CATCH("autocastSet", argv, 3, "vvv")
}

napi_value autocast_nesting(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    bool enter = lmf::bool_arg(env, argv[0], "autocastNesting", "enter");
    if (enter) return lmf::ret_int(env, at::autocast::increment_nesting());
    int left = at::autocast::decrement_nesting();
    if (left == 0) at::autocast::clear_cache();
    return lmf::ret_int(env, left);
  }
  LMF_CATCH("autocastNesting", argv, 1, "v")
}

napi_value cuda_available(napi_env env, napi_callback_info /*info*/) { return lmf::ret_bool(env, torch::cuda::is_available()); }
napi_value cuda_device_count(napi_env env, napi_callback_info /*info*/) {
  return lmf::ret_int(env, static_cast<int64_t>(torch::cuda::device_count()));
}
napi_value cuda_synchronize(napi_env env, napi_callback_info info) {
  LMF_ARGS(0);
  LMF_TRY {
    torch::cuda::synchronize();
    return undefined(env);
  }
  LMF_CATCH("cudaSynchronize", argv, 0, "")
}

// profileStart(path): libtorch's own (legacy autograd) profiler records every op from here on,
// on every thread, forward and backward; profileStop() writes them to path as a Chrome trace
// (chrome://tracing, Perfetto), which src/torch/profile.ts sums per op.
std::unique_ptr<torch::autograd::profiler::RecordProfile> g_profile;

napi_value profile_start(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    if (g_profile) throw std::runtime_error("a profile is already being recorded");
    g_profile = std::make_unique<torch::autograd::profiler::RecordProfile>(lmf::str_arg(env, argv[0], "profileStart", "path"));
    return undefined(env);
  }
  LMF_CATCH("profileStart", argv, 1, "v")
}

napi_value profile_stop(napi_env env, napi_callback_info info) {
  LMF_ARGS(0);
  LMF_TRY {
    if (!g_profile) throw std::runtime_error("no profile is being recorded");
    g_profile.reset();  // writes the trace
    return undefined(env);
  }
  LMF_CATCH("profileStop", argv, 0, "")
}

napi_value parallel_info(napi_env env, napi_callback_info /*info*/) {
  napi_value out;
  napi_create_string_utf8(env, at::get_parallel_info().c_str(), NAPI_AUTO_LENGTH, &out);
  return out;
}
// cpuCacheStats() -> { mapped, inUse, peakInUse, cached, limit, hits, misses } of the caching allocator.
napi_value cpu_cache_stats(napi_env env, napi_callback_info /*info*/) {
  lmf::CacheStats s = lmf::cache_stats();
  napi_value out;
  napi_create_object(env, &out);
  const std::pair<const char*, double> fields[] = {
      {"mapped", double(s.mapped)}, {"inUse", double(s.in_use)}, {"peakInUse", double(s.peak_in_use)}, {"cached", double(s.cached)},
      {"limit", double(s.limit)},   {"hits", double(s.hits)},    {"misses", double(s.misses)}};
  for (const auto& f : fields) {
    napi_value v;
    napi_create_double(env, f.second, &v);
    napi_set_named_property(env, out, f.first, v);
  }
  return out;
}

napi_value cpu_cache_reset_peak(napi_env env, napi_callback_info /*info*/) {
  lmf::cache_reset_peak();
  return undefined(env);
}

napi_value cpu_cache_empty(napi_env env, napi_callback_info /*info*/) {
  lmf::cache_empty();
  return undefined(env);
}

napi_value cpu_cache_set_limit(napi_env env, napi_callback_info info) {
  LMF_ARGS(1);
  LMF_TRY {
    lmf::cache_set_limit(static_cast<size_t>(lmf::int_arg_at_least(env, argv[0], "setCpuCacheLimit", "bytes", 0)));
    return undefined(env);
  }
  LMF_CATCH("setCpuCacheLimit", argv, 1, "v")
}

// parallelThreadsUsed() -> how many threads ran chunks of a parallel loop in the addon's own
// code (at::parallel_for is compiled into the addon: without -fopenmp it runs on one thread).
napi_value parallel_threads_used(napi_env env, napi_callback_info /*info*/) {
  std::atomic<uint64_t> seen{0};
  at::parallel_for(0, int64_t(1) << 16, 1, [&](int64_t, int64_t) { seen |= uint64_t(1) << (at::get_thread_num() & 63); });
  return lmf::ret_int(env, __builtin_popcountll(seen.load()));
}

// attentionKernels() -> [float32 served, bfloat16 served] by attentionInference here.
napi_value attention_kernels(napi_env env, napi_callback_info /*info*/) {
  napi_value out;
  napi_create_array_with_length(env, 2, &out);
  napi_set_element(env, out, 0, lmf::ret_bool(env, lmf::dnnl_sgemm_available()));
  napi_set_element(env, out, 1, lmf::ret_bool(env, lmf::dnnl_bf16_available()));
  return out;
}

napi_value has_mkldnn(napi_env env, napi_callback_info /*info*/) { return lmf::ret_bool(env, at::hasMKLDNN()); }

struct Entry {
  const char* name;
  napi_callback fn;
};

const Entry kEntries[] = {
    {"dispose", dispose},
    {"disposeMany", dispose_many},
    {"isDisposed", is_disposed},
    {"watchMemory", watch_memory},
    {"reportedBytes", reported_bytes},
    {"liveCount", live_count},
    {"meta", meta},
    {"strides", strides},
    {"isContiguous", is_contiguous},
    {"fromBuffer", from_buffer},
    {"toBuffer", to_buffer},
    {"readFileInto", read_file_into},
    {"requiresGrad", requires_grad},
    {"setRequiresGrad", set_requires_grad},
    {"isLeaf", is_leaf},
    {"share", share},
    {"useCount", use_count},
    {"gradFn", grad_fn_name},
    {"grad", grad},
    {"setGrad", set_grad},
    {"retainGrad", retain_grad},
    {"backward", backward},
    {"autogradGrad", autograd_grad},
    {"setGradEnabled", set_grad_enabled},
    {"isGradEnabled", is_grad_enabled},
    {"manualSeed", manual_seed},
    {"getRngState", get_rng_state},
    {"setRngState", set_rng_state},
    {"getNumThreads", get_num_threads},
    {"setNumThreads", set_num_threads},
    {"autocastSet", autocast_set},
    {"autocastNesting", autocast_nesting},
    {"cudaAvailable", cuda_available},
    {"cudaDeviceCount", cuda_device_count},
    {"cudaSynchronize", cuda_synchronize},
    {"parallelInfo", parallel_info},
    {"hasMkldnn", has_mkldnn},
    {"parallelThreadsUsed", parallel_threads_used},
    {"attentionKernels", attention_kernels},
    {"cpuCacheStats", cpu_cache_stats},
    {"cpuCacheResetPeak", cpu_cache_reset_peak},
    {"profileStart", profile_start},
    {"profileStop", profile_stop},
    {"cpuCacheEmpty", cpu_cache_empty},
    {"setCpuCacheLimit", cpu_cache_set_limit},
};

napi_value init(napi_env env, napi_value exports) {
  try {
    lmf::install_caching_allocator();
    for (const Entry& e : kEntries) {
      napi_value fn;
      lmf::check(env, napi_create_function(env, e.name, NAPI_AUTO_LENGTH, e.fn, nullptr, &fn), e.name);
      lmf::check(env, napi_set_named_property(env, exports, e.name, fn), e.name);
    }
    lmf::register_ops(env, exports);
    lmf::register_optim(env, exports);
    lmf::register_distributed(env, exports);
    lmf::register_reducer(env, exports);
    napi_value version;
    napi_create_string_utf8(env, TORCH_VERSION, NAPI_AUTO_LENGTH, &version);
    napi_set_named_property(env, exports, "torchVersion", version);
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
