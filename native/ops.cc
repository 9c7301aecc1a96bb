// The generated op bindings, compiled in their own translation unit.
#include "lmf.h"

#include "generated/ops.inc"

namespace lmf {

void register_ops(napi_env env, napi_value exports) {
#define LMF_REGISTER(name)                                                   \
  {                                                                          \
    napi_value fn;                                                           \
    check(env, napi_create_function(env, #name, NAPI_AUTO_LENGTH, op_##name, nullptr, &fn), #name); \
    check(env, napi_set_named_property(env, exports, #name, fn), #name);     \
  }
  LMF_GENERATED_OPS(LMF_REGISTER)
#undef LMF_REGISTER
}

}  // namespace lmf
