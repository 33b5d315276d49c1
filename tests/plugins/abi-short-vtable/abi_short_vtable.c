/* A plugin whose vtable is shorter than the core's, as one built against an earlier 2.x minor is
 * once hooks are appended: the core must load it, call the hooks it has, and never read past its
 * vtable's struct_size (JN_HAS_FIELD).
 * It echoes UDP datagrams so a test can see it serving. */
#include <junction/abi.h>

#include <stdlib.h>
#include <string.h>

/* The vtable up to and including on_udp: what an older build would have had. */
typedef struct old_vtable {
  uint32_t struct_size;
  jn_status (*on_start)(jn_plugin*);
  jn_status (*on_stop)(jn_plugin*);
  void (*on_destroy)(jn_plugin*);
  jn_status (*on_save_state)(jn_plugin*, jn_handle);
  jn_status (*on_restore_state)(jn_plugin*, uint32_t, const uint8_t*, size_t);
  void (*on_timer)(jn_plugin*, jn_handle, uint64_t);
  void (*on_udp)(jn_plugin*, jn_handle, uint64_t, const jn_datagram*, size_t);
  /* padding that a reader ignoring struct_size would mistake for on_tcp / on_http: */
  void* poison[8];
} old_vtable;

typedef struct self_t {
  const jn_host_api* host;
  jn_host_ctx* ctx;
  jn_handle sock;
} self_t;

static jn_status on_start(jn_plugin* p) {
  self_t* s = (self_t*)p;
  char conf[512];
  size_t need = 0;
  if (s->host->config_json(s->ctx, conf, sizeof conf, &need) != JN_OK) return JN_ERR_INVALID;
  /* conf is {"listen":"ip:port"}: take the string between the 3rd and 4th quote. */
  const char* a = strstr(conf, "\"listen\"");
  if (!a) return JN_ERR_INVALID;
  a = strchr(a + 8, '"');
  if (!a) return JN_ERR_INVALID;
  const char* b = strchr(a + 1, '"');
  if (!b) return JN_ERR_INVALID;
  jn_str addr = {a + 1, (size_t)(b - a - 1)};
  return s->host->udp_bind(s->ctx, addr, NULL, 0, &s->sock);
}

static void on_destroy(jn_plugin* p) { free(p); }

static void on_udp(jn_plugin* p, jn_handle sock, uint64_t cookie, const jn_datagram* d, size_t n) {
  self_t* s = (self_t*)p;
  (void)cookie;
  for (size_t i = 0; i < n; ++i) {
    jn_send item;
    memset(&item, 0, sizeof item);
    item.sock = sock;
    item.to = d[i].buf->src;
    item.buf = d[i].buf;
    s->host->udp_send(s->ctx, &item, 1);
  }
}

static const old_vtable vt = {
    (uint32_t)offsetof(old_vtable, poison), on_start, NULL, on_destroy, NULL, NULL, NULL, on_udp,
    {(void*)1, (void*)1, (void*)1, (void*)1, (void*)1, (void*)1, (void*)1, (void*)1}};

JN_EXPORT const jn_plugin_info junction_plugin_info = {
    sizeof(jn_plugin_info), JN_ABI_MAJOR, 0, "abi-short-vtable", "0.0.1", "test", "a vtable shorter than the core's", "", 1, 1};

JN_EXPORT jn_status junction_plugin_create(const jn_host_api* host, jn_host_ctx* ctx, const jn_create_args* args,
                                           jn_plugin** out_self, const jn_plugin_vtable** out_vtable) {
  (void)args;
  if (host->abi_major != JN_ABI_MAJOR) return JN_ERR_ABI;
  self_t* s = (self_t*)calloc(1, sizeof(self_t));
  if (!s) return JN_ERR_NOMEM;
  s->host = host;
  s->ctx = ctx;
  *out_self = (jn_plugin*)s;
  *out_vtable = (const jn_plugin_vtable*)(const void*)&vt;
  return JN_OK;
}
