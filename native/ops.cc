// The generated op bindings, compiled in their own translation unit.
#include "lmf.h"

#include "generated/ops.inc"

namespace lmf {

void register_ops(napi_env env, napi_value exports) {
#define LMF_REGISTER(name, fn)                                                 \
  {                                                                          \
    napi_value f;                                                            \
    check(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, nullptr, &f), name); \
    check(env, napi_set_named_property(env, exports, name, f), name);     \
  }
  LMF_GENERATED_OPS(LMF_REGISTER)
#undef LMF_REGISTER
}

}  // namespace lmf
