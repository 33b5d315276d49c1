/* A plugin built against the frozen copy of the ABI 2.1 header (tests/abi/frozen/abi_2_1.h), never
 * against the live one: a 2.2 core (jn_create_args.state_dir appended) must load it and serve it.
 * It uses what 2.1 appended, through 2.1's layout: each datagram is uppercased on the core's worker
 * pool (work_submit, on_work_done at the end of the 2.1 vtable) and echoed from on_work_done. It
 * also records the create-args size it was given, and answers "args=<size>" to a "size?" datagram:
 * a 2.2 core hands the longer struct, which a 2.1 plugin reads only up to conf_path. */
#include "../../abi/frozen/abi_2_1.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JOBS 64

typedef struct job_t {
  int used;
  jn_addr to;
  size_t len;
  uint8_t data[2048];
} job_t;

typedef struct self_t {
  const jn_host_api* host;
  jn_host_ctx* ctx;
  jn_handle sock;
  uint32_t args_size;
  job_t jobs[MAX_JOBS];
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

static void upper(void* arg) {
  job_t* j = (job_t*)arg;
  for (size_t i = 0; i < j->len; ++i) j->data[i] = (uint8_t)toupper(j->data[i]);
}

static void send_to(self_t* s, jn_addr to, const uint8_t* data, size_t len) {
  jn_send item;
  memset(&item, 0, sizeof item);
  item.sock = s->sock;
  item.to = to;
  item.head = data;
  item.head_len = (uint32_t)len;
  s->host->udp_send(s->ctx, &item, 1);
}

static void on_udp(jn_plugin* p, jn_handle sock, uint64_t cookie, const jn_datagram* d, size_t n) {
  self_t* s = (self_t*)p;
  (void)sock;
  (void)cookie;
  for (size_t i = 0; i < n; ++i) {
    const jn_buf* b = d[i].buf;
    if (b->len == 5 && memcmp(b->data, "size?", 5) == 0) {
      char out[32];
      int len = snprintf(out, sizeof out, "args=%u", (unsigned)s->args_size);
      send_to(s, b->src, (const uint8_t*)out, (size_t)len);
      continue;
    }
    size_t k = 0;
    while (k < MAX_JOBS && s->jobs[k].used) ++k;
    if (k == MAX_JOBS || b->len > sizeof s->jobs[k].data) continue; /* busy: dropped (the test sends few) */
    job_t* j = &s->jobs[k];
    j->used = 1;
    j->to = b->src;
    j->len = b->len;
    memcpy(j->data, b->data, b->len);
    jn_work w;
    memset(&w, 0, sizeof w);
    w.struct_size = sizeof w;
    w.run = upper;
    w.arg = j;
    w.cookie = k;
    jn_handle h = 0;
    if (s->host->work_submit(s->ctx, &w, &h) != JNF_OK) j->used = 0;
  }
}

static void on_work_done(jn_plugin* p, jn_handle work, uint64_t cookie, jn_status st) {
  self_t* s = (self_t*)p;
  (void)work;
  if (cookie >= MAX_JOBS) return;
  job_t* j = &s->jobs[cookie];
  if (st == JNF_OK) send_to(s, j->to, j->data, j->len);
  j->used = 0;
}

static const jn_plugin_vtable vt = {.struct_size = sizeof(jn_plugin_vtable),
                                    .on_start = on_start,
                                    .on_destroy = on_destroy,
                                    .on_udp = on_udp,
                                    .on_work_done = on_work_done};

JNF_EXPORT const jn_plugin_info junction_plugin_info = {
    sizeof(jn_plugin_info), JNF_ABI_MAJOR, JNF_ABI_MINOR, "abi-frozen-2-1", "0.0.1", "test",
    "built against the frozen ABI 2.1 header", "", 1, 1};

JNF_EXPORT jn_status junction_plugin_create(const jn_host_api* host, jn_host_ctx* ctx, const jn_create_args* args,
                                            jn_plugin** out_self, const jn_plugin_vtable** out_vtable) {
  if (host->abi_major != JNF_ABI_MAJOR || host->struct_size < JNF_HOST_API_SIZE_2_1) return JNF_ERR_ABI;
  self_t* s = (self_t*)calloc(1, sizeof(self_t));
  if (!s) return JNF_ERR_NOMEM;
  s->host = host;
  s->ctx = ctx;
  s->args_size = args->struct_size;
  *out_self = (jn_plugin*)s;
  *out_vtable = &vt;
  return JNF_OK;
}
