/* A shared object with a factory but no info symbol: not a Junction plugin. */
#include <junction/abi.h>

JN_EXPORT jn_status junction_plugin_create(const jn_host_api* host, jn_host_ctx* ctx, const jn_create_args* args,
                                           jn_plugin** out_self, const jn_plugin_vtable** out_vtable) {
  (void)args; (void)out_self; (void)out_vtable;
  host->log(ctx, JN_LOG_ERROR, JN_STR("abi-noinfo factory was called"));
  return JN_ERR_ABI;
}
