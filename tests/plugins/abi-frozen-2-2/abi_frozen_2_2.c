/* A plugin built against the frozen copy of the ABI 2.2 header (tests/abi/frozen/abi_2_2.h), never
 * against the live one: a 2.3 core (jn_http_client_request.stream, on_http_chunk appended) must load
 * it and keep the 2.2 behaviour of the outbound HTTP client. A datagram "get <url>" starts a 2.2
 * http_request (its shorter struct, no stream field); on_http_response -- the last hook of a 2.2
 * vtable after on_work_done -- sends back "<status> <body length> <body>" (or "error <why>"). A
 * datagram "args?" answers "args=<create args size>" and "state_dir=<len>" proves it read 2.2's
 * field. */
#include "../../abi/frozen/abi_2_2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct self_t {
  const jn_host_api* host;
  jn_host_ctx* ctx;
  jn_handle sock;
  uint32_t args_size;
  size_t state_dir_len;
  jn_addr asker; /* who sent the last "get" (the test sends one at a time) */
  char url[512];
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

static void send_to(self_t* s, jn_addr to, const void* data, size_t len) {
  jn_send item;
  memset(&item, 0, sizeof item);
  item.sock = s->sock;
  item.to = to;
  item.head = (const uint8_t*)data;
  item.head_len = (uint32_t)len;
  s->host->udp_send(s->ctx, &item, 1);
}

static void on_udp(jn_plugin* p, jn_handle sock, uint64_t cookie, const jn_datagram* d, size_t n) {
  self_t* s = (self_t*)p;
  (void)sock;
  (void)cookie;
  for (size_t i = 0; i < n; ++i) {
    const jn_buf* b = d[i].buf;
    char out[64];
    if (b->len == 5 && memcmp(b->data, "args?", 5) == 0) {
      int len = snprintf(out, sizeof out, "args=%u state_dir=%u", (unsigned)s->args_size, (unsigned)(s->state_dir_len > 0));
      send_to(s, b->src, out, (size_t)len);
      continue;
    }
    if (b->len < 5 || memcmp(b->data, "get ", 4) != 0 || b->len - 4 >= sizeof s->url) continue;
    memcpy(s->url, b->data + 4, b->len - 4);
    s->url[b->len - 4] = '\0';
    s->asker = b->src;
    jn_http_client_request q;
    memset(&q, 0, sizeof q); /* the 2.2 struct: 96 bytes, no stream field */
    q.struct_size = sizeof q;
    q.timeout_ms = 5000;
    q.method.ptr = "GET";
    q.method.len = 3;
    q.url.ptr = s->url;
    q.url.len = b->len - 4;
    jn_handle h = 0;
    jn_status st = s->host->http_request(s->ctx, &q, 7, &h);
    if (st != JNF_OK) {
      int len = snprintf(out, sizeof out, "refused %d", (int)st);
      send_to(s, b->src, out, (size_t)len);
    }
  }
}

static void on_http_response(jn_plugin* p, const jn_http_client_response* r) {
  self_t* s = (self_t*)p;
  static char out[65536];
  int len;
  if (r->cookie != 7)
    len = snprintf(out, sizeof out, "error wrong cookie");
  else if (r->error.len)
    len = snprintf(out, sizeof out, "error %.*s", (int)r->error.len, r->error.ptr);
  else
    len = snprintf(out, sizeof out, "%d %u %.*s", (int)r->status, (unsigned)r->body.len,
                   (int)(r->body.len < 60000 ? r->body.len : 60000), r->body.ptr);
  if (len > (int)sizeof out - 1) len = (int)sizeof out - 1;
  send_to(s, s->asker, out, (size_t)len);
}

static const jn_plugin_vtable vt = {.struct_size = sizeof(jn_plugin_vtable),
                                    .on_start = on_start,
                                    .on_destroy = on_destroy,
                                    .on_udp = on_udp,
                                    .on_http_response = on_http_response};

JNF_EXPORT const jn_plugin_info junction_plugin_info = {
    sizeof(jn_plugin_info), JNF_ABI_MAJOR, JNF_ABI_MINOR, "abi-frozen-2-2", "0.0.1", "test",
    "built against the frozen ABI 2.2 header", "", 1, 1};

JNF_EXPORT jn_status junction_plugin_create(const jn_host_api* host, jn_host_ctx* ctx, const jn_create_args* args,
                                            jn_plugin** out_self, const jn_plugin_vtable** out_vtable) {
  if (host->abi_major != JNF_ABI_MAJOR || host->struct_size < JNF_HOST_API_SIZE_2_1) return JNF_ERR_ABI;
  self_t* s = (self_t*)calloc(1, sizeof(self_t));
  if (!s) return JNF_ERR_NOMEM;
  s->host = host;
  s->ctx = ctx;
  s->args_size = args->struct_size;
  if (JNF_HAS_FIELD(args, jn_create_args, state_dir)) s->state_dir_len = args->state_dir.len;
  *out_self = (jn_plugin*)s;
  *out_vtable = &vt;
  return JNF_OK;
}
