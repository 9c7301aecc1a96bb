// Handle lifecycle, argument conversion and error translation for every entry point.
#include "lmf.h"

#include <sstream>

namespace lmf {

std::vector<Slot> g_slots;
int64_t g_live = 0;
static std::vector<uint32_t> g_free;
// Bytes allocated or freed since V8 was last told; told in batches of 1 MiB, since most
// tensors of a training step are small and short-lived.
static int64_t g_unreported = 0;
int64_t g_reported_total = 0;  // bytes of the handles V8 is told of, for tests

static void report(napi_env env, int64_t delta) {
  g_reported_total += delta;
  g_unreported += delta;
  if (g_unreported > (1 << 20) || g_unreported < -(1 << 20)) {
    int64_t total;
    napi_adjust_external_memory(env, g_unreported, &total);
    g_unreported = 0;
  }
}

void check(napi_env env, napi_status status, const char* what) {
  if (status != napi_ok) throw std::runtime_error(std::string("N-API call failed: ") + what);
}

napi_value wrap_tensor(napi_env env, at::Tensor t) {
  napi_value out;
  if (!t.defined()) {
    napi_get_undefined(env, &out);
    return out;
  }
  uint32_t index;
  if (!g_free.empty()) {
    index = g_free.back();
    g_free.pop_back();
  } else {
    if (g_slots.size() > kIndexMask) throw std::runtime_error("more than 16M live tensors: dispose some (use scopes)");
    index = static_cast<uint32_t>(g_slots.size());
    g_slots.emplace_back();
  }
  Slot& slot = g_slots[index];
  slot.reported = 0;  // told to V8 only if the handle is left to the garbage collector (watch_memory)
  slot.t = std::move(t);
  g_live++;
  double id = static_cast<double>((static_cast<uint64_t>(slot.gen) << kIndexBits) | index);
  napi_create_double(env, id, &out);
  return out;
}

Slot* slot_of(double id) {
  if (!(id >= 0) || id > 9007199254740991.0) return nullptr;
  uint64_t bits = static_cast<uint64_t>(id);
  if (static_cast<double>(bits) != id) return nullptr;
  uint64_t index = bits & kIndexMask;
  if (index >= g_slots.size()) return nullptr;
  Slot& slot = g_slots[index];
  if (slot.gen != (bits >> kIndexBits) || !slot.t.defined()) return nullptr;
  return &slot;
}

// A handle left to the garbage collector (outside every scope): V8 is told of the memory it
// holds, so that collection keeps pace with native memory. Tensors inside scopes are freed by
// their scope and are not reported: a training step's activations, reported, made V8 run a
// mark-compact on every step (one per ~350 ms step of bert-mini pretraining).
void watch_memory(napi_env env, double id) {
  Slot* slot = slot_of(id);
  if (slot == nullptr || slot->reported != 0) return;
  // Views share their base's memory; report only what this handle allocated itself.
  const at::Tensor& t = slot->t;
  slot->reported = (t.device().is_cpu() && !t.is_view()) ? static_cast<int64_t>(t.nbytes()) : 0;
  report(env, slot->reported);
}

bool release(napi_env env, double id) {
  Slot* slot = slot_of(id);
  if (slot == nullptr) return false;
  slot->t.reset();
  report(env, -slot->reported);
  slot->reported = 0;
  slot->gen = (slot->gen + 1) & 0x0FFFFFFF;  // 28 bits: ids stay exact doubles
  g_free.push_back(static_cast<uint32_t>(slot - g_slots.data()));
  g_live--;
  return true;
}

static std::string shape_string(const at::Tensor& t) {
  std::ostringstream s;
  s << "[";
  for (int64_t i = 0; i < t.dim(); i++) s << (i ? ", " : "") << t.size(i);
  s << "]";
  return s.str();
}

std::string describe_tensor(const at::Tensor& t) {
  std::string d = dtype_name(t.scalar_type());
  d += shape_string(t);
  if (!t.device().is_cpu()) d += "@" + t.device().str();
  return d;
}

std::string describe(napi_env env, napi_value v, char kind) {
  if (kind == 't') {
    double id;
    if (napi_get_value_double(env, v, &id) == napi_ok) {
      Slot* slot = slot_of(id);
      return slot ? describe_tensor(slot->t) : "a disposed tensor";
    }
  }
  napi_valuetype type;
  napi_typeof(env, v, &type);
  switch (type) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: {
      bool b;
      napi_get_value_bool(env, v, &b);
      return b ? "true" : "false";
    }
    case napi_number: {
      double d;
      napi_get_value_double(env, v, &d);
      std::ostringstream s;
      s << d;
      return s.str();
    }
    case napi_bigint: return "bigint";
    case napi_string: {
      char buf[64];
      size_t len;
      napi_get_value_string_utf8(env, v, buf, sizeof buf, &len);
      return "\"" + std::string(buf, len) + (len >= sizeof buf - 1 ? "...\"" : "\"");
    }
    case napi_external: return "an external";
    case napi_object: {
      bool is_array = false;
      napi_is_array(env, v, &is_array);
      if (!is_array) return "an object";
      uint32_t n;
      napi_get_array_length(env, v, &n);
      std::string s = "[";
      for (uint32_t i = 0; i < n && i < 8; i++) {
        napi_value e;
        napi_get_element(env, v, i, &e);
        s += (i ? ", " : "") + describe(env, e, kind == 'l' ? 't' : 'v');
      }
      return s + (n > 8 ? ", ...]" : "]");
    }
    case napi_function: return "a function";
    case napi_symbol: return "a symbol";
  }
  return "a value";
}

void arg_fail(napi_env env, napi_value v, const char* op, const char* arg, const char* want) {
  throw ArgError(std::string(op) + ": argument '" + arg + "' must be " + want + ", got " + describe(env, v));
}

std::vector<at::Tensor> tensor_list_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  bool is_array = false;
  napi_is_array(env, v, &is_array);
  if (!is_array) arg_fail(env, v, op, arg, "an array of Tensors");
  uint32_t n;
  napi_get_array_length(env, v, &n);
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    napi_get_element(env, v, i, &e);
    std::string name = std::string(arg) + "[" + std::to_string(i) + "]";
    out.push_back(tensor_arg(env, e, op, name.c_str()));
  }
  return out;
}

at::Scalar scalar_arg(napi_env env, napi_value v, const char* op, const char* arg, const char* want) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {  // the common case first: one N-API call
    bool b;
    if (napi_get_value_bool(env, v, &b) == napi_ok) return at::Scalar(b);
    arg_fail(env, v, op, arg, want);
  }
  // JavaScript has one number type: an integral value becomes an integer Scalar (so that an
  // int64 tensor stays int64, as `t + 2` does in PyTorch); anything else is a double.
  if (d == static_cast<double>(static_cast<int64_t>(d)) && std::abs(d) < 9007199254740992.0) {
    return at::Scalar(static_cast<int64_t>(d));
  }
  return at::Scalar(d);
}

int64_t int_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    int64_t i;
    bool lossless;
    if (napi_get_value_bigint_int64(env, v, &i, &lossless) == napi_ok) {
      if (!lossless) arg_fail(env, v, op, arg, "an integer that fits in 64 bits");
      return i;
    }
    arg_fail(env, v, op, arg, "an integer");
  }
  if (!(d == static_cast<double>(static_cast<int64_t>(d)))) arg_fail(env, v, op, arg, "an integer");
  return static_cast<int64_t>(d);
}

int64_t int_arg_at_least(napi_env env, napi_value v, const char* op, const char* arg, int64_t min) {
  int64_t n = int_arg(env, v, op, arg);
  if (n < min) throw ArgError(std::string(op) + ": " + arg + " must be at least " + std::to_string(min) + ", got " + std::to_string(n));
  return n;
}

std::vector<int64_t> int_list_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  napi_valuetype type;
  napi_typeof(env, v, &type);
  if (type == napi_number || type == napi_bigint) return {int_arg(env, v, op, arg)};
  bool is_array = false;
  napi_is_array(env, v, &is_array);
  if (!is_array) arg_fail(env, v, op, arg, "an integer or an array of integers");
  uint32_t n;
  napi_get_array_length(env, v, &n);
  std::vector<int64_t> out(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    napi_get_element(env, v, i, &e);
    std::string name = std::string(arg) + "[" + std::to_string(i) + "]";
    out[i] = int_arg(env, e, op, name.c_str());
  }
  return out;
}

double float_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) arg_fail(env, v, op, arg, "a number");
  return d;
}

bool bool_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  bool b;
  if (napi_get_value_bool(env, v, &b) != napi_ok) arg_fail(env, v, op, arg, "a boolean");
  return b;
}

std::string str_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  napi_valuetype type;
  napi_typeof(env, v, &type);
  if (type != napi_string) arg_fail(env, v, op, arg, "a string");
  size_t len;
  napi_get_value_string_utf8(env, v, nullptr, 0, &len);
  std::string s(len, '\0');
  napi_get_value_string_utf8(env, v, &s[0], len + 1, &len);
  return s;
}

std::string choice_arg(napi_env env, napi_value v, const char* op, const char* arg,
                       std::initializer_list<const char*> choices) {
  std::string want = "one of";
  napi_valuetype type;
  napi_typeof(env, v, &type);
  if (type == napi_string) {
    std::string s = str_arg(env, v, op, arg);
    for (const char* c : choices) {
      if (s == c) return s;
    }
  }
  for (const char* c : choices) want += std::string(" \"") + c + "\"";
  arg_fail(env, v, op, arg, want.c_str());
}

struct DTypeName {
  const char* name;
  at::ScalarType type;
};
static const DTypeName kDTypes[] = {
    {"float32", at::kFloat}, {"float64", at::kDouble}, {"bfloat16", at::kBFloat16}, {"float16", at::kHalf},
    {"int64", at::kLong},    {"int32", at::kInt},      {"int16", at::kShort},       {"int8", at::kChar},
    {"uint8", at::kByte},    {"bool", at::kBool},
};

at::ScalarType parse_dtype(const std::string& name) {
  for (const auto& d : kDTypes) {
    if (name == d.name) return d.type;
  }
  std::string all;
  for (const auto& d : kDTypes) all += std::string(all.empty() ? "" : ", ") + d.name;
  throw ArgError("unknown dtype \"" + name + "\"; expected one of " + all);
}

const char* dtype_name(at::ScalarType t) {
  for (const auto& d : kDTypes) {
    if (t == d.type) return d.name;
  }
  return c10::toString(t);
}

at::ScalarType dtype_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  std::string s = str_arg(env, v, op, arg);
  try {
    return parse_dtype(s);
  } catch (const ArgError& e) {
    throw ArgError(std::string(op) + ": argument '" + arg + "': " + e.what());
  }
}

c10::Device device_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  std::string s = str_arg(env, v, op, arg);
  try {
    return c10::Device(s);
  } catch (const std::exception&) {
    throw ArgError(std::string(op) + ": argument '" + arg + "': unknown device \"" + s +
                   "\"; expected \"cpu\", \"cuda\" or \"cuda:N\"");
  }
}

int64_t reduction_arg(napi_env env, napi_value v, const char* op, const char* arg) {
  std::string s = choice_arg(env, v, op, arg, {"mean", "sum", "none"});
  if (s == "mean") return at::Reduction::Mean;
  if (s == "sum") return at::Reduction::Sum;
  return at::Reduction::None;
}

at::TensorOptions options_arg(napi_env env, napi_value v, const char* op, const char* arg, bool* requires_grad) {
  at::TensorOptions options;
  *requires_grad = false;
  if (is_nullish(env, v)) return options;
  napi_valuetype type;
  napi_typeof(env, v, &type);
  if (type != napi_object) arg_fail(env, v, op, arg, "an options object {dtype, device, requiresGrad}");
  napi_value field;
  napi_get_named_property(env, v, "dtype", &field);
  if (!is_nullish(env, field)) options = options.dtype(dtype_arg(env, field, op, "options.dtype"));
  napi_get_named_property(env, v, "device", &field);
  if (!is_nullish(env, field)) options = options.device(device_arg(env, field, op, "options.device"));
  napi_get_named_property(env, v, "requiresGrad", &field);
  if (!is_nullish(env, field)) *requires_grad = bool_arg(env, field, op, "options.requiresGrad");
  return options;
}

napi_value ret_tensor_list(napi_env env, const std::vector<at::Tensor>& ts) {
  napi_value arr;
  napi_create_array_with_length(env, ts.size(), &arr);
  for (size_t i = 0; i < ts.size(); i++) napi_set_element(env, arr, i, wrap_tensor(env, ts[i]));
  return arr;
}

napi_value ret_tensor_pair(napi_env env, const std::tuple<at::Tensor, at::Tensor>& ts) {
  napi_value arr;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, wrap_tensor(env, std::get<0>(ts)));
  napi_set_element(env, arr, 1, wrap_tensor(env, std::get<1>(ts)));
  return arr;
}

napi_value ret_bool(napi_env env, bool b) {
  napi_value out;
  napi_get_boolean(env, b, &out);
  return out;
}
napi_value ret_double(napi_env env, double d) {
  napi_value out;
  napi_create_double(env, d, &out);
  return out;
}
napi_value ret_int(napi_env env, int64_t i) {
  napi_value out;
  napi_create_int64(env, i, &out);
  return out;
}
napi_value ret_scalar(napi_env env, const at::Scalar& s) {
  if (s.isBoolean()) return ret_int(env, s.toBool() ? 1 : 0);
  if (s.isIntegral(false)) return ret_int(env, s.toLong());
  return ret_double(env, s.toDouble());
}

// libtorch messages end with a C++ location and sometimes a backtrace: keep the message.
static std::string clean_message(const std::string& what) {
  std::string out;
  std::istringstream lines(what);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("Exception raised from", 0) == 0 || line.rfind("frame #", 0) == 0) break;
    if (!out.empty()) out += " ";
    out += line;
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n')) out.pop_back();
  return out;
}

void throw_js(napi_env env, const char* op, napi_value* argv, size_t argc, const char* kinds) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  std::string args;
  for (size_t i = 0; i < argc; i++) args += (i ? ", " : "") + describe(env, argv[i], kinds[i] ? kinds[i] : 'v');
  try {
    throw;
  } catch (const ArgError& e) {
    napi_throw_type_error(env, nullptr, e.what());
  } catch (const c10::Error& e) {
    std::string msg = std::string(op) + "(" + args + "): " + clean_message(e.what_without_backtrace());
    napi_throw_error(env, nullptr, msg.c_str());
  } catch (const std::exception& e) {
    std::string msg = std::string(op) + "(" + args + "): " + clean_message(e.what());
    napi_throw_error(env, nullptr, msg.c_str());
  } catch (...) {
    std::string msg = std::string(op) + "(" + args + "): unknown native error";
    napi_throw_error(env, nullptr, msg.c_str());
  }
}

}  // namespace lmf
