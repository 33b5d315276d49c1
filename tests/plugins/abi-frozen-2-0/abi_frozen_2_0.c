/* A plugin built against the frozen copy of the ABI 2.0 header (tests/abi/frozen/abi_2_0.h), never
 * against the live one: whatever 2.x the core speaks, it must load this and serve it. It uses the
 * fields 2.0 introduced, through 2.0's layout: a UDP echo on a wildcard bind that answers from
 * the local address each datagram was sent to (jn_buf.dst, JNF_SEND_FROM) and names that address
 * in front of the payload ("dst=127.0.0.2:5000 " + payload), with the TOS it was asked for in the
 * conf (JNF_SEND_TOS). */
#include "../../abi/frozen/abi_2_0.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct self_t {
  const jn_host_api* host;
  jn_host_ctx* ctx;
  jn_handle sock;
} self_t;

static int conf_string(self_t* s, const char* key, char* out, size_t cap) {
  char conf[1024];
  size_t need = 0;
  if (s->host->config_json(s->ctx, conf, sizeof conf, &need) != JNF_OK) return 0;
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
  const char* a = strstr(conf, pattern);
  if (!a) return 0;
  a += strlen(pattern);
  const char* b = strchr(a, '"');
  if (!b || (size_t)(b - a) >= cap) return 0;
  memcpy(out, a, (size_t)(b - a));
  out[b - a] = '\0';
  return 1;
}

static jn_status on_start(jn_plugin* p) {
  self_t* s = (self_t*)p;
  char listen[128];
  if (!conf_string(s, "listen", listen, sizeof listen)) return JNF_ERR_INVALID;
  jn_str addr = {listen, strlen(listen)};
  jn_udp_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  return s->host->udp_bind(s->ctx, addr, &o, 0, &s->sock);
}

static void on_destroy(jn_plugin* p) { free(p); }

static void on_udp(jn_plugin* p, jn_handle sock, uint64_t cookie, const jn_datagram* d, size_t n) {
  self_t* s = (self_t*)p;
  (void)cookie;
  for (size_t i = 0; i < n; ++i) {
    const jn_buf* b = d[i].buf;
    char head[64];
    int len = 0;
    if (b->dst.family == 4)
      len = snprintf(head, sizeof head, "dst=%u.%u.%u.%u:%u ", b->dst.ip[0], b->dst.ip[1], b->dst.ip[2], b->dst.ip[3],
                     (unsigned)b->dst.port);
    else
      len = snprintf(head, sizeof head, "dst=v6:%u ", (unsigned)b->dst.port);
    jn_send item;
    memset(&item, 0, sizeof item);
    item.sock = sock;
    item.to = b->src;
    item.head = (const uint8_t*)head;
    item.head_len = (uint32_t)len;
    item.buf = d[i].buf;
    item.flags = JNF_SEND_FROM | JNF_SEND_TOS;
    item.from = b->dst;
    item.tos = 0xb8; /* DSCP EF */
    s->host->udp_send(s->ctx, &item, 1);
  }
}

static const jn_plugin_vtable vt = {
    .struct_size = sizeof(jn_plugin_vtable), .on_start = on_start, .on_destroy = on_destroy, .on_udp = on_udp};

JNF_EXPORT const jn_plugin_info junction_plugin_info = {
    sizeof(jn_plugin_info), JNF_ABI_MAJOR, JNF_ABI_MINOR, "abi-frozen-2-0", "0.0.1", "test",
    "built against the frozen ABI 2.0 header", "", 1, 1};

JNF_EXPORT jn_status junction_plugin_create(const jn_host_api* host, jn_host_ctx* ctx, const jn_create_args* args,
                                            jn_plugin** out_self, const jn_plugin_vtable** out_vtable) {
  (void)args;
  if (host->abi_major != JNF_ABI_MAJOR || host->struct_size < JNF_HOST_API_SIZE_2_0) return JNF_ERR_ABI;
  self_t* s = (self_t*)calloc(1, sizeof(self_t));
  if (!s) return JNF_ERR_NOMEM;
  s->host = host;
  s->ctx = ctx;
  *out_self = (jn_plugin*)s;
  *out_vtable = &vt;
  return JNF_OK;
}
