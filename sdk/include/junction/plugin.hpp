// Header-only C++ helpers over the C ABI: a plugin is one class derived from junction::sdk::Plugin
// and one JUNCTION_PLUGIN(...) line. Every hook is wrapped so that no exception crosses the
// boundary: a throw is logged and turned into JN_ERR_INTERNAL.
//
// Rules for plugin code (they are what makes hot reload and unload safe):
//   - keep no globals and no thread_local with destructors; all state lives in your Plugin object;
//   - own no OS resource: ask the Host for timers, sockets, endpoints; keep the handles;
//   - handles and cookies survive a reload, pointers do not: save_state() what the next
//     instance needs, including the handles it must keep using.
#pragma once

#include <junction/abi.h>

#include <cstddef>

#include <nlohmann/json.hpp>

#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

namespace junction::sdk {

inline jn_str to_jn(std::string_view s) { return jn_str{s.data(), s.size()}; }
inline std::string_view to_sv(jn_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }

// 2.2: the plugin's own directory (`<server.state_dir>/plugins/<slot name>`, created by the core,
// the same across reloads and restarts). Empty from a 2.1 core (no such field) or when the core
// could not create it: the plugin then falls back to a path of its own or refuses what needs it.
// Borrowed for the constructor's duration: copy it.
inline std::string_view state_dir(const jn_create_args& a) {
  return JN_HAS_FIELD(&a, jn_create_args, state_dir) ? to_sv(a.state_dir) : std::string_view();
}

// The core's services for one plugin slot. Cheap to copy (two pointers).
class Host {
 public:
  Host(const jn_host_api* api, jn_host_ctx* ctx) : api_(api), ctx_(ctx) {}
  const jn_host_api* api() const { return api_; }
  jn_host_ctx* ctx() const { return ctx_; }

  // Logging: skip building messages above the plugin's level.
  bool enabled(int level) const { return level <= api_->log_level(ctx_); }
  void log(int level, std::string_view msg) const {
    if (enabled(level)) api_->log(ctx_, level, to_jn(msg));
  }
  void error(std::string_view m) const { log(JN_LOG_ERROR, m); }
  void warn(std::string_view m) const { log(JN_LOG_WARN, m); }
  void info(std::string_view m) const { log(JN_LOG_INFO, m); }
  void debug(std::string_view m) const { log(JN_LOG_DEBUG, m); }
  void set_error(std::string_view m) const { api_->set_error(ctx_, to_jn(m)); }
  uint64_t now_ms() const { return api_->now_ms(ctx_); }

  // The plugin's conf table (conf/plugins/NAME.toml without the core's keys) as JSON.
  nlohmann::json config() const {
    size_t need = 0;
    api_->config_json(ctx_, nullptr, 0, &need);
    std::string buf(need, '\0');
    if (api_->config_json(ctx_, buf.data(), buf.size(), &need) != JN_OK) return nlohmann::json::object();
    buf.resize(need ? need - 1 : 0);
    return nlohmann::json::parse(buf, nullptr, false);
  }
  void config_error(std::string_view key, std::string_view reason) const { api_->config_error(ctx_, to_jn(key), to_jn(reason)); }

  jn_status timer(uint64_t delay_ms, uint64_t repeat_ms, uint64_t cookie, jn_handle* out) const {
    return api_->timer_start(ctx_, delay_ms, repeat_ms, cookie, out);
  }
  jn_status stop_timer(jn_handle t) const { return api_->timer_stop(ctx_, t); }
  // on_post(cookie) on loop `loop` (0 = control, k = media loop k).
  jn_status post(uint32_t loop, uint64_t cookie) const { return api_->post(ctx_, loop, cookie); }

  // Asynchronous DNS: type JN_DNS_A/AAAA/SRV/NAPTR; the answer comes in on_dns.
  jn_status dns_resolve(std::string_view name, uint32_t type, uint64_t cookie, jn_handle* out, uint32_t timeout_ms = 0) const {
    jn_dns_query q{};
    q.struct_size = sizeof q;
    q.type = type;
    q.name = to_jn(name);
    q.timeout_ms = timeout_ms;
    return api_->dns_resolve(ctx_, &q, cookie, out);
  }
  // RFC 3263: where to send a SIP request for host (port 0 = none in the URI, transport JN_SIP_*).
  jn_status dns_resolve_sip(std::string_view host, uint16_t port, uint8_t transport, bool sips, uint64_t cookie, jn_handle* out) const {
    jn_dns_query q{};
    q.struct_size = sizeof q;
    q.type = JN_DNS_SIP;
    q.name = to_jn(host);
    q.port = port;
    q.transport = transport;
    q.sips = sips ? 1 : 0;
    return api_->dns_resolve(ctx_, &q, cookie, out);
  }
  // Outbound HTTP(S); the answer comes in on_http_response. Fill the request's fields you need.
  static jn_http_client_request http_client_request(std::string_view method, std::string_view url) {
    jn_http_client_request r{};
    r.struct_size = sizeof r;
    r.method = to_jn(method);
    r.url = to_jn(url);
    return r;
  }
  jn_status http_request(const jn_http_client_request& r, uint64_t cookie, jn_handle* out) const {
    return api_->http_request(ctx_, &r, cookie, out);
  }
  // 2.3: streamed responses (jn_http_client_request.stream = 1, pieces in on_http_chunk). A 2.2
  // core ignores `stream` and would buffer the whole body: check this before relying on it.
  bool has_http_stream() const { return api_->abi_major == 2 && api_->abi_minor >= 3; }
  jn_status cancel(jn_handle query_or_request) const { return api_->cancel(ctx_, query_or_request); }
  // A library with process-wide state, resident once per process: *first = true means "call its
  // global init now" (see abi.h, library_pin).
  jn_status library_pin(std::string_view soname, bool* first) const {
    uint32_t f = 0;
    jn_status st = api_->library_pin(ctx_, to_jn(soname), &f);
    if (first) *first = f != 0;
    return st;
  }

  // --- 2.1 services: on a 2.0 core they return JN_ERR_UNSUPPORTED (the documented fallback) ---
  // Does the core have this 2.1 service? (a 2.0 core's table ends before it)
  bool has_abi_2_1() const { return JN_HAS_FIELD(api_, jn_host_api, work_cancel); }
  // [media] A loop-local subscription to an interned stream (see abi.h): publishes by id on this
  // media loop reach on_bus here, synchronously, by reference.
  jn_status bus_subscribe_local(uint32_t stream_id, uint64_t cookie, jn_handle* out) const {
    if (!JN_HAS_FIELD(api_, jn_host_api, bus_subscribe_local) || !api_->bus_subscribe_local) return JN_ERR_UNSUPPORTED;
    return api_->bus_subscribe_local(ctx_, stream_id, cookie, out);
  }
  jn_status bus_unsubscribe_local(jn_handle sub) const {
    if (!JN_HAS_FIELD(api_, jn_host_api, bus_unsubscribe_local) || !api_->bus_unsubscribe_local) return JN_ERR_UNSUPPORTED;
    return api_->bus_unsubscribe_local(ctx_, sub);
  }
  // [media] Blocking work on the core's worker pool: run(arg) on a worker thread, then
  // on_work_done(handle, cookie, status) on the calling loop.
  jn_status work_submit(void (*run)(void*), void* arg, uint64_t cookie, jn_handle* out) const {
    if (!JN_HAS_FIELD(api_, jn_host_api, work_submit) || !api_->work_submit) return JN_ERR_UNSUPPORTED;
    jn_work w{};
    w.struct_size = sizeof w;
    w.run = run;
    w.arg = arg;
    w.cookie = cookie;
    return api_->work_submit(ctx_, &w, out);
  }
  jn_status work_cancel(jn_handle work) const {
    if (!JN_HAS_FIELD(api_, jn_host_api, work_cancel) || !api_->work_cancel) return JN_ERR_UNSUPPORTED;
    return api_->work_cancel(ctx_, work);
  }

  // loop: 0 = the control loop, k = media loop k (see the ABI's threading rules).
  jn_status udp_bind(std::string_view addr, uint64_t cookie, jn_handle* out, uint32_t max_datagram = 0, uint32_t loop = 0) const {
    jn_udp_options o{};
    o.struct_size = sizeof o;
    o.max_datagram = max_datagram;
    o.loop = loop;
    return api_->udp_bind(ctx_, to_jn(addr), &o, cookie, out);
  }
  // Every 2.0 service is present (create() refuses a shorter table). A service appended in a 2.x
  // minor is called only where JN_HAS_FIELD(api_, jn_host_api, name) holds, with the fallback its
  // wrapper documents.
  // 0 when the core runs no media loops.
  uint32_t media_loops() const { return api_->media_loops(ctx_); }
  jn_status udp_send(jn_handle sock, const jn_addr& to, std::string_view bytes) const {
    jn_send s{};
    s.sock = sock;
    s.to = to;
    s.head = reinterpret_cast<const uint8_t*>(bytes.data());
    s.head_len = static_cast<uint32_t>(bytes.size());
    return api_->udp_send(ctx_, &s, 1);
  }
  jn_status udp_send(const jn_send* items, size_t n) const { return api_->udp_send(ctx_, items, n); }

  jn_status tcp_listen(std::string_view addr, uint32_t framing, uint8_t delimiter, uint32_t max_frame, uint64_t cookie,
                       jn_handle* out, uint32_t idle_timeout_ms = 0) const {
    jn_tcp_options o{};
    o.struct_size = sizeof o;
    o.framing = framing;
    o.delimiter = delimiter;
    o.max_frame = max_frame;
    o.idle_timeout_ms = idle_timeout_ms;
    return api_->tcp_listen(ctx_, to_jn(addr), &o, cookie, out);
  }
  jn_status tcp_connect(std::string_view addr, uint32_t framing, uint8_t delimiter, uint32_t max_frame, uint64_t cookie,
                        jn_handle* out) const {
    jn_tcp_options o{};
    o.struct_size = sizeof o;
    o.framing = framing;
    o.delimiter = delimiter;
    o.max_frame = max_frame;
    return api_->tcp_connect(ctx_, to_jn(addr), &o, cookie, out);
  }
  // Full options (TLS since 2.1: a 2.0 core ignores tls, so check host_abi_minor() >= 1 first).
  static jn_tcp_options tcp_options(uint32_t framing, uint8_t delimiter, uint32_t max_frame) {
    jn_tcp_options o{};
    o.struct_size = sizeof o;
    o.framing = framing;
    o.delimiter = delimiter;
    o.max_frame = max_frame;
    return o;
  }
  jn_status tcp_listen(std::string_view addr, const jn_tcp_options& o, uint64_t cookie, jn_handle* out) const {
    return api_->tcp_listen(ctx_, to_jn(addr), &o, cookie, out);
  }
  jn_status tcp_connect(std::string_view addr, const jn_tcp_options& o, uint64_t cookie, jn_handle* out) const {
    return api_->tcp_connect(ctx_, to_jn(addr), &o, cookie, out);
  }
  uint16_t host_abi_minor() const { return api_->abi_minor; }
  jn_status tcp_send(jn_handle conn, std::string_view frame) const {
    return api_->tcp_send(ctx_, conn, reinterpret_cast<const uint8_t*>(frame.data()), frame.size());
  }
  jn_status tcp_close(jn_handle h) const { return api_->tcp_close(ctx_, h); }
  jn_status tcp_set_cookie(jn_handle h, uint64_t c) const { return api_->tcp_set_cookie(ctx_, h, c); }

  // tls_cert/tls_key: PEM files to serve HTTPS/WSS (both or neither).
  jn_status http_listen(std::string_view addr, std::string_view ws_path, uint64_t cookie, jn_handle* out,
                        std::string_view tls_cert = {}, std::string_view tls_key = {}) const {
    jn_http_options o{};
    o.struct_size = sizeof o;
    o.ws_path = to_jn(ws_path);
    o.tls_cert = to_jn(tls_cert);
    o.tls_key = to_jn(tls_key);
    return api_->http_listen(ctx_, to_jn(addr), &o, cookie, out);
  }
  // headers: extra response headers (Location, WWW-Authenticate, CORS ...), borrowed for the call.
  jn_status http_respond(jn_handle req, int status, std::string_view body, std::string_view ctype = "application/json",
                         const std::vector<jn_header>& headers = {}) const {
    jn_http_response r{};
    r.struct_size = sizeof r;
    r.status = status;
    r.content_type = to_jn(ctype);
    r.body = to_jn(body);
    r.headers = headers.empty() ? nullptr : headers.data();
    r.header_count = static_cast<uint32_t>(headers.size());
    return api_->http_respond(ctx_, req, &r);
  }
  jn_status ws_send(jn_handle conn, std::string_view data, bool binary = false) const {
    return api_->ws_send(ctx_, conn, to_jn(data), binary ? 1 : 0);
  }
  jn_status ws_close(jn_handle h) const { return api_->ws_close(ctx_, h); }
  // In on_ws(JN_WS_UPGRADE): 101 accepts (with one offered subprotocol or none), 4xx/5xx refuses.
  jn_status ws_upgrade_reply(jn_handle upgrade, int status, std::string_view subprotocol = {}) const {
    return api_->ws_upgrade_reply(ctx_, upgrade, status, to_jn(subprotocol));
  }
  jn_status ws_set_cookie(jn_handle h, uint64_t c) const { return api_->ws_set_cookie(ctx_, h, c); }

  jn_buf* buf_alloc(uint32_t len) const { return api_->buf_alloc(ctx_, len); }
  void buf_ref(jn_buf* b) const { api_->buf_ref(ctx_, b); }
  void buf_unref(jn_buf* b) const { api_->buf_unref(ctx_, b); }
  bool buf_is_shared(const jn_buf* b) const { return api_->buf_is_shared(ctx_, b) != 0; }

  jn_status bus_publish(std::string_view stream, jn_buf* b) const { return api_->bus_publish(ctx_, to_jn(stream), b); }
  // By id: the media path publishes without hashing the stream name per packet.
  jn_status bus_intern(std::string_view stream, uint32_t* id) const { return api_->bus_intern(ctx_, to_jn(stream), id); }
  jn_status bus_release_id(uint32_t id) const { return api_->bus_release_id(ctx_, id); }
  jn_status bus_publish_id(uint32_t id, jn_buf* b) const { return api_->bus_publish_id(ctx_, id, b); }
  // The media anchor lost a call's media: the core ends the call.
  jn_status anchor_end(std::string_view call_id, int32_t code, std::string_view reason) const {
    return api_->anchor_end(ctx_, to_jn(call_id), code, to_jn(reason));
  }
  // A socket (pair = an RTP/RTCP pair of UDP sockets) on a free port of the core's range `range`:
  // out[0] (RTP or the listener), out[1] (RTCP or 0), *port = out[0]'s port.
  jn_status port_bind_udp(std::string_view range, std::string_view ip, bool pair, uint64_t cookie, jn_handle out[2],
                          uint32_t* port, uint32_t loop = 0) const {
    jn_udp_options o{};
    o.struct_size = sizeof o;
    o.loop = loop;
    jn_port_request r{};
    r.struct_size = sizeof r;
    r.proto = JN_PROTO_UDP;
    r.range = to_jn(range);
    r.ip = to_jn(ip);
    r.pair = pair ? 1 : 0;
    r.udp = &o;
    r.cookie = cookie;
    return api_->port_bind(ctx_, &r, out, port);
  }
  jn_status port_bind_tcp(std::string_view range, std::string_view ip, const jn_tcp_options& opts, uint64_t cookie,
                          jn_handle* listener, uint32_t* port) const {
    jn_port_request r{};
    r.struct_size = sizeof r;
    r.proto = JN_PROTO_TCP;
    r.range = to_jn(range);
    r.ip = to_jn(ip);
    r.tcp = &opts;
    r.cookie = cookie;
    jn_handle out[2] = {0, 0};
    jn_status st = api_->port_bind(ctx_, &r, out, port);
    *listener = out[0];
    return st;
  }
  jn_status bus_subscribe(std::string_view stream, uint64_t cookie, jn_handle* out) const {
    return api_->bus_subscribe(ctx_, to_jn(stream), cookie, out);
  }
  jn_status bus_unsubscribe(jn_handle h) const { return api_->bus_unsubscribe(ctx_, h); }

  jn_status route_add(std::string_view uri, jn_handle* out) const { return api_->route_add(ctx_, to_jn(uri), out); }
  jn_status route_remove(jn_handle h) const { return api_->route_remove(ctx_, h); }

  jn_status call_originate(const jn_call_event& ev, uint64_t cookie, jn_handle* out) const {
    return api_->call_originate(ctx_, &ev, cookie, out);
  }
  jn_status call_send(jn_handle leg, const jn_call_event& ev) const { return api_->call_send(ctx_, leg, &ev); }
  jn_status call_send(jn_handle leg, uint32_t type, int32_t code = 0, std::string_view reason = {}) const {
    jn_call_event ev = event(type);
    ev.code = code;
    ev.reason = to_jn(reason);
    return api_->call_send(ctx_, leg, &ev);
  }
  jn_status leg_set_cookie(jn_handle leg, uint64_t c) const { return api_->leg_set_cookie(ctx_, leg, c); }
  static jn_call_event event(uint32_t type) {
    jn_call_event ev{};
    ev.struct_size = sizeof ev;
    ev.type = type;
    return ev;
  }

  jn_status event_publish(std::string_view topic, std::string_view json) const {
    return api_->event_publish(ctx_, to_jn(topic), to_jn(json));
  }
  jn_status event_subscribe(std::string_view prefix) const { return api_->event_subscribe(ctx_, to_jn(prefix)); }

  void counter_add(std::string_view name, uint64_t delta = 1, std::string_view labels = {}) const {
    api_->counter_add(ctx_, to_jn(name), to_jn(labels), delta);
  }
  void gauge_set(std::string_view name, double v, std::string_view labels = {}) const {
    api_->gauge_set(ctx_, to_jn(name), to_jn(labels), v);
  }

  jn_status kv_put(std::string_view key, std::string_view value) const {
    return api_->kv_put(ctx_, to_jn(key), reinterpret_cast<const uint8_t*>(value.data()), value.size());
  }
  bool kv_get(std::string_view key, std::string& out) const {
    size_t need = 0;
    jn_status st = api_->kv_get(ctx_, to_jn(key), nullptr, 0, &need);
    if (st == JN_ERR_NOT_FOUND) return false;
    out.assign(need, '\0');
    return api_->kv_get(ctx_, to_jn(key), reinterpret_cast<uint8_t*>(out.data()), out.size(), &need) == JN_OK;
  }
  jn_status kv_del(std::string_view key) const { return api_->kv_del(ctx_, to_jn(key)); }
  std::vector<std::pair<std::string, std::string>> kv_scan(std::string_view prefix) const {
    std::vector<std::pair<std::string, std::string>> out;
    api_->kv_scan(ctx_, to_jn(prefix), [](void* arg, jn_str k, const uint8_t* v, size_t n) {
      static_cast<std::vector<std::pair<std::string, std::string>>*>(arg)->emplace_back(
          std::string(k.ptr, k.len), std::string(reinterpret_cast<const char*>(v), n));
    }, &out);
    return out;
  }

  jn_status anchor_reply(jn_handle reply, jn_status status, const jn_media_desc* media) const {
    return api_->anchor_reply(ctx_, reply, status, media);
  }
  jn_status admin_reply(jn_handle reply, int status, std::string_view json) const {
    return api_->admin_reply(ctx_, reply, status, to_jn(json));
  }
  void stop_done() const { api_->stop_done(ctx_); }

 private:
  const jn_host_api* api_;
  jn_host_ctx* ctx_;
};

// Writes the state blob for a reload (appended through the core, no size limit).
class StateWriter {
 public:
  StateWriter(const Host& h, jn_handle sink) : host_(h), sink_(sink) {}
  jn_status write(std::string_view bytes) const {
    return host_.api()->state_append(host_.ctx(), sink_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }

 private:
  const Host& host_;
  jn_handle sink_;
};

// Base class of a C++ plugin. Override the hooks you need; the defaults do nothing.
class Plugin {
 public:
  explicit Plugin(Host host) : host_(host) {}
  virtual ~Plugin() = default;
  Host& host() { return host_; }

  virtual jn_status start() { return JN_OK; }
  virtual jn_status stop() { return JN_OK; }
  virtual jn_status save_state(std::string& /*out*/) { return JN_OK; }
  virtual jn_status restore_state(uint32_t /*schema*/, std::string_view data) {
    return data.empty() ? JN_OK : JN_ERR_UNSUPPORTED;
  }
  virtual void on_timer(jn_handle, uint64_t /*cookie*/) {}
  virtual void on_udp(jn_handle, uint64_t /*cookie*/, const jn_datagram*, size_t) {}
  virtual void on_tcp(const jn_tcp_event&) {}
  virtual void on_http(const jn_http_request& r) {
    host_.http_respond(r.request, 404, R"({"error":"not found"})");
  }
  virtual void on_ws(const jn_ws_event&) {}
  virtual void on_bus(jn_handle, uint64_t /*cookie*/, jn_buf*) {}
  virtual void on_call(jn_handle leg, uint64_t, const jn_call_event& ev) {
    if (ev.type == JN_CALL_OFFER) host_.call_send(leg, JN_CALL_REJECT, 488, "not accepting calls");
  }
  virtual void on_event(std::string_view /*topic*/, std::string_view /*json*/) {}
  virtual void on_admin(const jn_admin_request& r) {
    host_.admin_reply(r.reply, 404, R"({"error":"unknown command"})");
  }
  // Media anchoring: reply with the rewritten media, or an error to pass it through.
  virtual void on_anchor(const jn_anchor_request& r) { host_.anchor_reply(r.reply, JN_ERR_UNSUPPORTED, nullptr); }
  // A host().post(loop, cookie) to this loop.
  virtual void on_post(uint64_t /*cookie*/) {}
  // Answers to host().dns_resolve(...) and host().http_request(...).
  virtual void on_dns(const jn_dns_result&) {}
  virtual void on_http_response(const jn_http_client_response&) {}
  // 2.3: a piece of a streamed http_request (stream = 1): the head first, then body bytes as they
  // arrive; host().cancel(request) stops it. on_http_response still ends it (empty body).
  virtual void on_http_chunk(const jn_http_client_chunk&) {}
  // A host().work_submit(...) job finished (JN_OK) or was cancelled (JN_ERR_CANCELLED).
  virtual void on_work_done(jn_handle /*work*/, uint64_t /*cookie*/, jn_status /*status*/) {}

 private:
  Host host_;
};

namespace detail {

inline Plugin* self(jn_plugin* p) { return reinterpret_cast<Plugin*>(p); }

// Runs a hook; exceptions become JN_ERR_INTERNAL with the reason logged.
template <typename F>
jn_status guard(jn_plugin* p, const char* hook, F&& f) noexcept {
  try {
    return f();
  } catch (const std::exception& e) {
    try {
      self(p)->host().error(std::string(hook) + ": " + e.what());
      self(p)->host().set_error(std::string(hook) + ": " + e.what());
    } catch (...) {
    }
  } catch (...) {
    self(p)->host().error(std::string(hook) + ": unknown exception");
  }
  return JN_ERR_INTERNAL;
}
template <typename F>
void guard_void(jn_plugin* p, const char* hook, F&& f) noexcept {
  guard(p, hook, [&] {
    f();
    return JN_OK;
  });
}

inline const jn_plugin_vtable* vtable() {
  static const jn_plugin_vtable vt = {
      .struct_size = sizeof(jn_plugin_vtable),
      .on_start = [](jn_plugin* p) { return guard(p, "start", [&] { return self(p)->start(); }); },
      .on_stop = [](jn_plugin* p) { return guard(p, "stop", [&] { return self(p)->stop(); }); },
      .on_destroy = [](jn_plugin* p) {
        try {
          delete self(p);
        } catch (...) {
        }
      },
      .on_save_state = [](jn_plugin* p, jn_handle sink) {
        return guard(p, "save_state", [&] {
          std::string out;
          jn_status st = self(p)->save_state(out);
          if (st != JN_OK) return st;
          return StateWriter(self(p)->host(), sink).write(out);
        });
      },
      .on_restore_state = [](jn_plugin* p, uint32_t schema, const uint8_t* d, size_t n) {
        return guard(p, "restore_state", [&] {
          return self(p)->restore_state(schema, std::string_view(reinterpret_cast<const char*>(d), n));
        });
      },
      .on_timer = [](jn_plugin* p, jn_handle t, uint64_t c) { guard_void(p, "on_timer", [&] { self(p)->on_timer(t, c); }); },
      .on_udp = [](jn_plugin* p, jn_handle s, uint64_t c, const jn_datagram* d, size_t n) {
        guard_void(p, "on_udp", [&] { self(p)->on_udp(s, c, d, n); });
      },
      .on_tcp = [](jn_plugin* p, const jn_tcp_event* e) { guard_void(p, "on_tcp", [&] { self(p)->on_tcp(*e); }); },
      .on_http = [](jn_plugin* p, const jn_http_request* r) { guard_void(p, "on_http", [&] { self(p)->on_http(*r); }); },
      .on_ws = [](jn_plugin* p, const jn_ws_event* e) { guard_void(p, "on_ws", [&] { self(p)->on_ws(*e); }); },
      .on_bus = [](jn_plugin* p, jn_handle s, uint64_t c, jn_buf* b) { guard_void(p, "on_bus", [&] { self(p)->on_bus(s, c, b); }); },
      .on_call = [](jn_plugin* p, jn_handle l, uint64_t c, const jn_call_event* e) {
        guard_void(p, "on_call", [&] { self(p)->on_call(l, c, *e); });
      },
      .on_event = [](jn_plugin* p, jn_str t, jn_str j) { guard_void(p, "on_event", [&] { self(p)->on_event(to_sv(t), to_sv(j)); }); },
      .on_admin = [](jn_plugin* p, const jn_admin_request* r) { guard_void(p, "on_admin", [&] { self(p)->on_admin(*r); }); },
      .on_anchor = [](jn_plugin* p, const jn_anchor_request* r) { guard_void(p, "on_anchor", [&] { self(p)->on_anchor(*r); }); },
      .on_post = [](jn_plugin* p, uint64_t c) { guard_void(p, "on_post", [&] { self(p)->on_post(c); }); },
      .on_dns = [](jn_plugin* p, const jn_dns_result* r) { guard_void(p, "on_dns", [&] { self(p)->on_dns(*r); }); },
      .on_http_response = [](jn_plugin* p, const jn_http_client_response* r) {
        guard_void(p, "on_http_response", [&] { self(p)->on_http_response(*r); });
      },
      .on_work_done = [](jn_plugin* p, jn_handle w, uint64_t c, jn_status st) {
        guard_void(p, "on_work_done", [&] { self(p)->on_work_done(w, c, st); });
      },
      .on_http_chunk = [](jn_plugin* p, const jn_http_client_chunk* c) {
        guard_void(p, "on_http_chunk", [&] { self(p)->on_http_chunk(*c); });
      },
  };
  return &vt;
}

template <typename P>
jn_status create(const jn_host_api* api, jn_host_ctx* ctx, const jn_create_args* args, jn_plugin** out_self,
                 const jn_plugin_vtable** out_vt) noexcept {
  if (!api || !out_self || !out_vt) return JN_ERR_INVALID;
  // The check in this direction: refuse a core of another major, or one too old to have the
  // services this header calls (its table ends before the last entry we use).
  if (api->abi_major != JN_ABI_MAJOR || api->struct_size < JN_HOST_API_SIZE_2_0) {
    if (JN_HAS_FIELD(api, jn_host_api, set_error) && api->set_error) {
      std::string m = "plugin built for ABI " + std::to_string(JN_ABI_MAJOR) + "." + std::to_string(JN_ABI_MINOR) +
                      " cannot use this core's ABI " + std::to_string(api->abi_major) + "." + std::to_string(api->abi_minor);
      api->set_error(ctx, to_jn(m));
    }
    return JN_ERR_ABI;
  }
  try {
    Host host(api, ctx);
    *out_self = reinterpret_cast<jn_plugin*>(static_cast<Plugin*>(new P(host, *args)));
    *out_vt = vtable();
    return JN_OK;
  } catch (const std::exception& e) {
    api->set_error(ctx, to_jn(e.what()));
  } catch (...) {
    api->set_error(ctx, to_jn("constructor threw"));
  }
  return JN_ERR_INVALID;
}

}  // namespace detail
}  // namespace junction::sdk

#ifndef JN_BUILD_ID
#define JN_BUILD_ID __DATE__ " " __TIME__
#endif

// Declares the plugin's two exported symbols. Class must derive from junction::sdk::Plugin and
// have a constructor (junction::sdk::Host, const jn_create_args&); it may throw to refuse.
#define JUNCTION_PLUGIN(Class, NAME, VERSION, DESCRIPTION, NAMESPACES, STATE_SCHEMA, STATE_SCHEMA_MIN)                  \
  extern "C" JN_EXPORT const jn_plugin_info junction_plugin_info = {                                                     \
      sizeof(jn_plugin_info), JN_ABI_MAJOR, JN_ABI_MINOR, NAME, VERSION, JN_BUILD_ID, DESCRIPTION, NAMESPACES,           \
      STATE_SCHEMA, STATE_SCHEMA_MIN};                                                                                   \
  extern "C" JN_EXPORT jn_status junction_plugin_create(const jn_host_api* api, jn_host_ctx* ctx,                        \
                                                        const jn_create_args* args, jn_plugin** out_self,                \
                                                        const jn_plugin_vtable** out_vt) {                               \
    return ::junction::sdk::detail::create<Class>(api, ctx, args, out_self, out_vt);                                     \
  }
