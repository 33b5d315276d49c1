/* A plugin built against a future ABI 3.0: its info struct has the same leading fields in
 * every major, so the core can read the version and must refuse it without calling anything. */
#include <junction/abi.h>

JN_EXPORT const jn_plugin_info junction_plugin_info = {
    sizeof(jn_plugin_info), 3, 0, "abi-major3", "0.0.1", "test", "built for ABI 3.0", "", 1, 1};

JN_EXPORT jn_status junction_plugin_create(const jn_host_api* host, jn_host_ctx* ctx, const jn_create_args* args,
                                           jn_plugin** out_self, const jn_plugin_vtable** out_vtable) {
  /* Never reached: a core that called this would fail the test through the log line. */
  (void)args; (void)out_self; (void)out_vtable;
  host->log(ctx, JN_LOG_ERROR, JN_STR("abi-major3 factory was called"));
  return JN_ERR_ABI;
}
