// The jn_host_api table: C entry points that plugins call. Each one finds the slot from ctx,
// checks the handle's kind and owner, and never lets a C++ exception cross back to the plugin.
#include "host/media_loop.hpp"
#include "host/plugin_host.hpp"
#include "host/resources.hpp"
#include "host/workers.hpp"
#include "net/dns_resolver.hpp"
#include "net/http_client.hpp"
#include "routing/call_event_abi.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <type_traits>

namespace junction {
namespace {

std::string_view sv(jn_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }

PluginSlot& S(jn_host_ctx* ctx) { return *PluginSlot::from(ctx); }

// Control-plane services may throw inside the core (std::bad_alloc, a bug); the plugin gets a
// status instead.
template <typename F>
jn_status guarded(jn_host_ctx* ctx, const char* what, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    S(ctx).log(JN_LOG_ERROR, fmt::format("{}: internal error: {}", what, e.what()));
    return JN_ERR_INTERNAL;
  }
}

jn_status copy_out(const std::string& s, char* out, size_t cap, size_t* needed) {
  if (needed) *needed = s.size() + 1;
  if (!out || cap < s.size() + 1) return JN_ERR_LIMIT;
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return JN_OK;
}

// --- diagnostics ---------------------------------------------------------------------------
void h_log(jn_host_ctx* ctx, int level, jn_str msg) { S(ctx).log(level, sv(msg)); }
int h_log_level(jn_host_ctx* ctx) { return S(ctx).log_level(); }
void h_set_error(jn_host_ctx* ctx, jn_str msg) { S(ctx).set_error(std::string(sv(msg))); }
uint64_t h_now_ms(jn_host_ctx* ctx) {
  if (MediaLoop* m = MediaLoop::current()) return m->now_ms();
  return uv_now(S(ctx).host().services().loop);
}

// --- configuration -------------------------------------------------------------------------
jn_status h_config_json(jn_host_ctx* ctx, char* out, size_t cap, size_t* needed) {
  return guarded(ctx, "config_json", [&] { return copy_out(S(ctx).conf().settings.dump(), out, cap, needed); });
}
void h_config_error(jn_host_ctx* ctx, jn_str key, jn_str reason) {
  PluginSlot& s = S(ctx);
  auto it = s.conf().key_lines.find(std::string(sv(key)));
  std::string msg = fmt::format("{}:{}: {}: {}", s.conf().conf_path, it == s.conf().key_lines.end() ? 0 : it->second, sv(key), sv(reason));
  log_write(JN_LOG_ERROR, s.name(), msg);
  s.set_error(msg);
}

// --- timers ---------------------------------------------------------------------------------
// [media] A timer of the calling loop (a media loop's own table, or the control loop's handles).
jn_status h_timer_start(jn_host_ctx* ctx, uint64_t delay, uint64_t repeat, uint64_t cookie, jn_handle* out) {
  if (MediaLoop* m = MediaLoop::current()) return m->timer_start(S(ctx), delay, repeat, cookie, out);
  return guarded(ctx, "timer_start", [&] { return create_timer(S(ctx), delay, repeat, cookie, out); });
}
jn_status h_timer_stop(jn_host_ctx* ctx, jn_handle t) {
  PluginSlot& s = S(ctx);
  MediaLoop* m = MediaLoop::current();
  const bool loop_timer = MediaLoop::is_loop_handle(t);
  if (loop_timer && m && MediaLoop::loop_of(t) == m->index()) return m->timer_stop(s, t);
  if (loop_timer || m) {
    // A timer stopped from another loop than its own: the plugin's bug, not a race to allow.
    s.log(JN_LOG_ERROR, fmt::format("timer_stop from {}: the timer belongs to {} (refused; see the ABI's threading rules)",
                                    m ? fmt::format("media loop {}", m->index()) : std::string("the control loop"),
                                    loop_timer ? fmt::format("media loop {}", MediaLoop::loop_of(t)) : std::string("the control loop")));
    return JN_ERR_WRONG_THREAD;
  }
  if (!s.host().resource(t, Resource::Kind::Timer, &s)) return JN_ERR_NOT_FOUND;
  s.host().close_resource(t);
  return JN_OK;
}

// [media] on_post(cookie) on another (or the same) loop.
jn_status h_post(jn_host_ctx* ctx, uint32_t loop, uint64_t cookie) {
  PluginSlot& s = S(ctx);
  MediaLoops* loops = s.host().services().media;
  if (!loops) return JN_ERR_UNSUPPORTED;
  if (loop == 0) return loops->post_to_control(&s, cookie);
  MediaLoop* m = loops->at(loop);
  if (!m) return JN_ERR_INVALID;
  return m->post(&s, cookie);
}

// --- UDP ---------------------------------------------------------------------------------------
jn_status h_udp_bind(jn_host_ctx* ctx, jn_str addr, const jn_udp_options* o, uint64_t cookie, jn_handle* out) {
  return guarded(ctx, "udp_bind", [&] { return create_udp(S(ctx), sv(addr), o, cookie, out); });
}
jn_status h_udp_local_addr(jn_host_ctx* ctx, jn_handle sock, jn_addr* out) { return udp_local_addr(S(ctx), sock, out); }
jn_status h_udp_send(jn_host_ctx* ctx, const jn_send* items, size_t n) { return udp_send(S(ctx), items, n); }
jn_status h_udp_join(jn_host_ctx* ctx, jn_handle sock, jn_str group, jn_str iface) {
  return udp_join_multicast(S(ctx), sock, sv(group), sv(iface));
}
jn_status h_udp_close(jn_host_ctx* ctx, jn_handle sock) {
  PluginSlot& s = S(ctx);
  if (!s.host().resource(sock, Resource::Kind::Udp, &s)) return JN_ERR_NOT_FOUND;
  s.host().close_resource(sock);
  return JN_OK;
}

// --- TCP -------------------------------------------------------------------------------------
jn_status h_tcp_listen(jn_host_ctx* ctx, jn_str addr, const jn_tcp_options* o, uint64_t cookie, jn_handle* out) {
  return guarded(ctx, "tcp_listen", [&] { return create_tcp_listener(S(ctx), sv(addr), o, cookie, out); });
}
jn_status h_tcp_connect(jn_host_ctx* ctx, jn_str addr, const jn_tcp_options* o, uint64_t cookie, jn_handle* out) {
  return guarded(ctx, "tcp_connect", [&] { return create_tcp_connection(S(ctx), sv(addr), o, cookie, out); });
}
jn_status h_tcp_send(jn_host_ctx* ctx, jn_handle conn, const uint8_t* data, size_t len) {
  return guarded(ctx, "tcp_send", [&] { return tcp_send(S(ctx), conn, data, len); });
}
// [media] on a media loop's connection from its loop (and from the control loop): resources.cpp.
jn_status h_tcp_set_cookie(jn_host_ctx* ctx, jn_handle conn, uint64_t cookie) { return tcp_set_cookie(S(ctx), conn, cookie); }
jn_status h_tcp_close(jn_host_ctx* ctx, jn_handle h) { return tcp_close(S(ctx), h); }

// --- HTTP / WebSocket -------------------------------------------------------------------------
jn_status h_http_listen(jn_host_ctx* ctx, jn_str addr, const jn_http_options* opts, uint64_t cookie, jn_handle* out) {
  jn_str ws_path{}, tls_cert{}, tls_key{};
  if (opts && JN_HAS_FIELD(opts, jn_http_options, ws_path)) ws_path = opts->ws_path;
  if (opts && JN_HAS_FIELD(opts, jn_http_options, tls_key)) {
    tls_cert = opts->tls_cert;
    tls_key = opts->tls_key;
  }
  return guarded(ctx, "http_listen", [&]() -> jn_status {
    if (!out) return JN_ERR_INVALID;
    PluginSlot& s = S(ctx);
    PluginHost& host = s.host();
    auto ep = std::make_unique<ValueResource>(Resource::Kind::HttpEndpoint, &s, cookie);
    ValueResource* raw = ep.get();
    jn_handle eh = host.add_resource(std::move(ep));
    std::string name = s.name();
    PluginHost* hp = &host;
    // Handlers look the slot up on every call: after an unload the endpoint's handle is stale.
    HttpHandlers handlers;
    handlers.on_request = [hp, name, eh](const HttpRequest& req) {
      PluginSlot* slot = hp->find(name);
      Resource* epr = slot ? hp->resource(eh, Resource::Kind::HttpEndpoint, slot) : nullptr;
      if (!epr) {
        hp->services().http.respond(req.id, 503, "application/json", R"({"error":"endpoint closed"})");
        return;
      }
      auto rr = std::make_unique<ValueResource>(Resource::Kind::HttpRequest, slot, 0);
      rr->id = req.id;
      jn_handle rh = hp->add_resource(std::move(rr));
      slot->resources().insert(rh);
      slot->deliver_http(rh, eh, epr->cookie, req);
    };
    handlers.on_ws = [hp, name, eh](uint64_t conn, uint64_t, int type, std::string_view data, const std::string& peer) {
      PluginSlot* slot = hp->find(name);
      Resource* epr = slot ? hp->resource(eh, Resource::Kind::HttpEndpoint, slot) : nullptr;
      auto& conns = hp->ws_conns();
      if (!epr) {
        conns.erase(conn);
        return;
      }
      jn_handle ch;
      if (type == JN_WS_OPEN) {
        auto cr = std::make_unique<ValueResource>(Resource::Kind::WsConn, slot, epr->cookie);
        cr->id = conn;
        ch = hp->add_resource(std::move(cr));
        slot->resources().insert(ch);
        conns[conn] = ch;
      } else {
        auto it = conns.find(conn);
        if (it == conns.end()) return;
        ch = it->second;
      }
      Resource* cr = hp->resource(ch, Resource::Kind::WsConn, slot);
      if (!cr) return;
      slot->deliver_ws(ch, eh, cr->cookie, type, data, peer, type == JN_WS_OPEN ? hp->services().http.upgrade_of(conn) : nullptr);
      if (type == JN_WS_CLOSED) {
        conns.erase(conn);
        slot->resources().erase(ch);
        hp->forget_resource(ch);  // already closed on the wire: nothing to close
      }
    };
    handlers.on_ws_upgrade = [hp, name, eh](const WsUpgrade& u) -> WsDecision {
      PluginSlot* slot = hp->find(name);
      Resource* epr = slot ? hp->resource(eh, Resource::Kind::HttpEndpoint, slot) : nullptr;
      if (!epr) return WsDecision{503, {}};
      WsDecision d;
      auto up = std::make_unique<ValueResource>(Resource::Kind::WsUpgrade, slot, epr->cookie);
      up->decision = &d;
      jn_handle uh = hp->add_resource(std::move(up));
      bool asked = slot->call_ws_upgrade(uh, eh, epr->cookie, u);
      hp->forget_resource(uh);  // the upgrade's handle lives during the hook only
      if (!asked) return WsDecision{503, {}};  // the plugin is being swapped: the client retries
      if (d.status != 101) slot->log(JN_LOG_INFO, fmt::format("websocket upgrade from {} refused by the plugin: {}", u.peer, d.status));
      return d;
    };
    std::string error;
    uint64_t id = host.services().http.listen(sv(addr), sv(ws_path), std::move(handlers), &error, true, sv(tls_cert), sv(tls_key));
    if (id == 0) {
      host.forget_resource(eh);
      std::string msg = fmt::format("http_listen {}: {}", sv(addr), error);
      s.log(JN_LOG_WARN, msg);
      s.set_error(msg);
      return error.find("in use") != std::string::npos ? JN_ERR_EXISTS : JN_ERR_IO;
    }
    raw->id = id;
    s.resources().insert(eh);
    *out = eh;
    return JN_OK;
  });
}
// A header a plugin may set: a token name (RFC 9110), a value without CR/LF/NUL, and none of the
// framing headers the core writes itself.
bool valid_response_header(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c))) return false;
  for (char c : value)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  for (std::string_view reserved : {"content-type", "content-length", "connection", "transfer-encoding"}) {
    if (name.size() == reserved.size() &&
        std::equal(name.begin(), name.end(), reserved.begin(), [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; }))
      return false;
  }
  return true;
}

jn_status h_http_respond(jn_host_ctx* ctx, jn_handle req, const jn_http_response* resp) {
  return guarded(ctx, "http_respond", [&]() -> jn_status {
    PluginSlot& s = S(ctx);
    auto* r = static_cast<ValueResource*>(s.host().resource(req, Resource::Kind::HttpRequest, &s));
    if (!r) return JN_ERR_NOT_FOUND;
    if (!resp || !JN_HAS_FIELD(resp, jn_http_response, body)) return JN_ERR_INVALID;
    if (resp->status < 100 || resp->status > 599) {
      s.log(JN_LOG_WARN, fmt::format("http_respond: status {} is not 100..599", resp->status));
      return JN_ERR_INVALID;
    }
    std::vector<std::pair<std::string, std::string>> extra;
    if (JN_HAS_FIELD(resp, jn_http_response, header_count) && resp->header_count) {
      if (!resp->headers || resp->header_count > 64) return JN_ERR_INVALID;
      for (uint32_t i = 0; i < resp->header_count; ++i) {
        std::string_view n = sv(resp->headers[i].name), v = sv(resp->headers[i].value);
        if (!valid_response_header(n, v)) {
          s.log(JN_LOG_WARN, fmt::format("http_respond: header '{}' refused (not a token, CR/LF/NUL in its value, or one the core sets)", n));
          return JN_ERR_INVALID;
        }
        extra.emplace_back(n, v);
      }
    }
    uint64_t id = r->id;
    s.resources().erase(req);
    s.host().forget_resource(req);
    std::string_view ct = sv(resp->content_type);
    return s.host().services().http.respond(id, resp->status, ct.empty() ? "application/json" : ct, sv(resp->body), std::move(extra))
               ? JN_OK
               : JN_ERR_NOT_FOUND;
  });
}
jn_status h_ws_send(jn_host_ctx* ctx, jn_handle conn, jn_str data, int binary) {
  return guarded(ctx, "ws_send", [&]() -> jn_status {
    PluginSlot& s = S(ctx);
    auto* r = static_cast<ValueResource*>(s.host().resource(conn, Resource::Kind::WsConn, &s));
    if (!r) return JN_ERR_NOT_FOUND;
    return s.host().services().http.ws_send(r->id, sv(data), binary != 0) ? JN_OK : JN_ERR_STATE;
  });
}
jn_status h_ws_set_cookie(jn_host_ctx* ctx, jn_handle conn, uint64_t cookie) {
  PluginSlot& s = S(ctx);
  Resource* r = s.host().resource(conn, Resource::Kind::WsConn, &s);
  if (!r) return JN_ERR_NOT_FOUND;
  r->cookie = cookie;
  return JN_OK;
}
jn_status h_ws_close(jn_host_ctx* ctx, jn_handle h) {
  PluginSlot& s = S(ctx);
  if (auto* r = static_cast<ValueResource*>(s.host().resource(h, Resource::Kind::WsConn, &s))) {
    // JN_WS_CLOSED follows from the server; the resource goes away then.
    return s.host().services().http.ws_close(r->id) ? JN_OK : JN_ERR_STATE;
  }
  if (s.host().resource(h, Resource::Kind::HttpEndpoint, &s)) {
    s.host().close_resource(h);
    return JN_OK;
  }
  return JN_ERR_NOT_FOUND;
}

// --- buffers ---------------------------------------------------------------------------------
// The calling loop's pool: each loop allocates from its own (no lock on the media path).
BufferPool& pool_here(jn_host_ctx* ctx) {
  if (MediaLoop* m = MediaLoop::current()) return m->pool();
  return S(ctx).host().services().pool;
}
jn_buf* h_buf_alloc(jn_host_ctx* ctx, uint32_t len) { return pool_here(ctx).alloc(len); }
void h_buf_ref(jn_host_ctx*, jn_buf* b) {
  if (b) BufferPool::ref(b);
}
void h_buf_unref(jn_host_ctx*, jn_buf* b) {
  if (b) BufferPool::unref(b);
}
int h_buf_is_shared(jn_host_ctx*, const jn_buf* b) { return b && BufferPool::is_shared(b) ? 1 : 0; }
jn_buf* h_buf_copy(jn_host_ctx* ctx, const jn_buf* b) { return b ? pool_here(ctx).copy(b) : nullptr; }

// --- bus ---------------------------------------------------------------------------------------
// From a media loop: subscribers live on the control loop, so the packet is handed over by
// reference; with no subscription anywhere it stops here.
jn_status media_publish(MediaLoop& m, PacketBus& bus, uint32_t id, std::string_view stream, jn_buf* buf) {
  // This loop's own subscribers first: synchronously, by reference, no queue.
  if (id && m.has_local_subscribers(id)) m.publish_local(id, buf);
  // By id: this stream's own flag; by name (no hashing here): any subscription at all.
  if (id ? !bus.has_subscribers_any_thread(id) : !MediaLoops::bus_has_subscribers(bus)) {
    m.stats().bus_unsubscribed.fetch_add(1, std::memory_order_relaxed);
    return JN_OK;
  }
  // The control loop is far behind: dropped and counted (junction_media_handoff_dropped_total).
  return m.handoff(id, stream, buf) ? JN_OK : JN_ERR_LIMIT;
}
jn_status h_bus_publish(jn_host_ctx* ctx, jn_str stream, jn_buf* buf) {
  if (!buf || sv(stream).empty()) return JN_ERR_INVALID;
  PacketBus& bus = S(ctx).host().services().bus;
  if (MediaLoop* m = MediaLoop::current()) return media_publish(*m, bus, 0, sv(stream), buf);
  bus.publish(sv(stream), buf);
  return JN_OK;
}
jn_status h_bus_publish_id(jn_host_ctx* ctx, uint32_t id, jn_buf* buf) {
  if (!buf || id == 0) return JN_ERR_INVALID;
  PacketBus& bus = S(ctx).host().services().bus;
  if (MediaLoop* m = MediaLoop::current()) return media_publish(*m, bus, id, {}, buf);
  bus.publish(id, buf);
  return JN_OK;
}
jn_status h_bus_intern(jn_host_ctx* ctx, jn_str stream, uint32_t* out) {
  return guarded(ctx, "bus_intern", [&]() -> jn_status {
    if (!out || sv(stream).empty()) return JN_ERR_INVALID;
    PluginSlot& s = S(ctx);
    uint32_t id = s.host().services().bus.intern(sv(stream));
    if (!id) return JN_ERR_INVALID;
    ++s.interned()[id];
    *out = id;
    return JN_OK;
  });
}
jn_status h_bus_release_id(jn_host_ctx* ctx, uint32_t id) {
  PluginSlot& s = S(ctx);
  auto it = s.interned().find(id);
  if (it == s.interned().end()) return JN_ERR_NOT_FOUND;
  // Packets a media loop handed over for this id are published before the id can be reused.
  if (MediaLoops* m = s.host().services().media) m->drain_handoffs();
  if (--it->second == 0) s.interned().erase(it);
  s.host().services().bus.release(id);
  return JN_OK;
}
jn_status h_anchor_end(jn_host_ctx* ctx, jn_str call_id, int32_t code, jn_str reason) {
  return guarded(ctx, "anchor_end", [&]() -> jn_status {
    PluginSlot& s = S(ctx);
    jn_status st = s.host().services().calls.end_anchored(std::string(sv(call_id)), code, std::string(sv(reason)));
    if (st == JN_OK) s.log(JN_LOG_INFO, fmt::format("call {} ended by its media anchor: {} {}", sv(call_id), code ? code : 408, sv(reason)));
    return st;
  });
}
uint32_t h_media_loops(jn_host_ctx* ctx) {
  MediaLoops* m = S(ctx).host().services().media;
  return m ? m->count() : 0;
}
jn_status h_bus_subscribe(jn_host_ctx* ctx, jn_str stream, uint64_t cookie, jn_handle* out) {
  return guarded(ctx, "bus_subscribe", [&]() -> jn_status {
    if (!out || sv(stream).empty()) return JN_ERR_INVALID;
    PluginSlot& s = S(ctx);
    auto r = std::make_unique<ValueResource>(Resource::Kind::BusSub, &s, cookie);
    ValueResource* raw = r.get();
    jn_handle h = s.host().add_resource(std::move(r));
    raw->id = s.host().services().bus.subscribe(sv(stream), &s, h);
    s.resources().insert(h);
    *out = h;
    return JN_OK;
  });
}
jn_status h_bus_unsubscribe(jn_host_ctx* ctx, jn_handle sub) {
  PluginSlot& s = S(ctx);
  if (!s.host().resource(sub, Resource::Kind::BusSub, &s)) return JN_ERR_NOT_FOUND;
  s.host().close_resource(sub);
  return JN_OK;
}

// --- routing -----------------------------------------------------------------------------------
jn_status h_route_add(jn_host_ctx* ctx, jn_str uri, jn_handle* out) {
  return guarded(ctx, "route_add", [&]() -> jn_status {
    if (!out || sv(uri).find(':') == std::string_view::npos) return JN_ERR_INVALID;
    PluginSlot& s = S(ctx);
    jn_handle inner = JN_INVALID_HANDLE;
    jn_status st = s.host().services().routes.add_dynamic(std::string(sv(uri)), s.name(), &inner);
    if (st != JN_OK) {
      s.set_error(st == JN_ERR_EXISTS ? fmt::format("route {} is registered by another plugin", sv(uri))
                                      : fmt::format("route {} is not a valid URI", sv(uri)));
      return st;
    }
    // Re-registering the same uri returns the existing route's handle.
    auto& known = s.routes_by_inner();
    if (auto it = known.find(inner); it != known.end() && s.host().resource(it->second, Resource::Kind::Route, &s)) {
      *out = it->second;
      return JN_OK;
    }
    auto r = std::make_unique<ValueResource>(Resource::Kind::Route, &s, 0);
    r->inner = inner;
    *out = s.host().add_resource(std::move(r));
    s.resources().insert(*out);
    known[inner] = *out;
    return JN_OK;
  });
}
jn_status h_route_remove(jn_host_ctx* ctx, jn_handle route) {
  PluginSlot& s = S(ctx);
  if (!s.host().resource(route, Resource::Kind::Route, &s)) return JN_ERR_NOT_FOUND;
  s.host().close_resource(route);
  return JN_OK;
}
jn_status h_route_lookup(jn_host_ctx* ctx, jn_str uri, char* out, size_t cap, size_t* needed) {
  return guarded(ctx, "route_lookup", [&]() -> jn_status {
    auto j = S(ctx).host().services().routes.lookup_json(sv(uri));
    if (!j) return JN_ERR_NOT_FOUND;
    return copy_out(*j, out, cap, needed);
  });
}

// --- calls -------------------------------------------------------------------------------------
jn_status h_call_originate(jn_host_ctx* ctx, const jn_call_event* ev, uint64_t cookie, jn_handle* out) {
  return guarded(ctx, "call_originate", [&]() -> jn_status {
    if (!ev || !out || !JN_HAS_FIELD(ev, jn_call_event, to)) return JN_ERR_INVALID;
    PluginSlot& s = S(ctx);
    return s.host().services().calls.originate(s.name(), cookie, from_abi(*ev), out);
  });
}
jn_status h_call_send(jn_host_ctx* ctx, jn_handle leg, const jn_call_event* ev) {
  return guarded(ctx, "call_send", [&]() -> jn_status {
    if (!ev || !JN_HAS_FIELD(ev, jn_call_event, type)) return JN_ERR_INVALID;
    PluginSlot& s = S(ctx);
    return s.host().services().calls.send(s.name(), leg, from_abi(*ev));
  });
}
jn_status h_leg_set_cookie(jn_host_ctx* ctx, jn_handle leg, uint64_t cookie) {
  PluginSlot& s = S(ctx);
  return s.host().services().calls.set_cookie(s.name(), leg, cookie);
}

// --- application events -----------------------------------------------------------------------
jn_status h_event_publish(jn_host_ctx* ctx, jn_str topic, jn_str json) {
  return guarded(ctx, "event_publish", [&]() -> jn_status {
    if (sv(topic).empty()) return JN_ERR_INVALID;
    S(ctx).host().publish_event(std::string(sv(topic)), std::string(sv(json)));
    return JN_OK;
  });
}
jn_status h_event_subscribe(jn_host_ctx* ctx, jn_str prefix) {
  return guarded(ctx, "event_subscribe", [&]() -> jn_status {
    S(ctx).event_topics().insert(std::string(sv(prefix)));
    return JN_OK;
  });
}

// --- metrics -----------------------------------------------------------------------------------
std::string plugin_labels(PluginSlot& s, jn_str labels) {
  std::string l = fmt::format("plugin=\"{}\"", s.name());
  if (labels.len) l += "," + std::string(sv(labels));
  return l;
}
void h_counter_add(jn_host_ctx* ctx, jn_str name, jn_str labels, uint64_t delta) {
  PluginSlot& s = S(ctx);
  // The slot's cache first (the key: name '\n' labels; a name holds no '\n'), on the stack.
  char key[192];
  bool cacheable = name.len + 1 + labels.len <= sizeof key;
  std::string_view k;
  if (cacheable) {
    if (name.len) std::memcpy(key, name.ptr, name.len);
    key[name.len] = '\n';
    if (labels.len) std::memcpy(key + name.len + 1, labels.ptr, labels.len);
    k = {key, name.len + 1 + labels.len};
    if (uint64_t* c = s.cached_counter(k)) {
      *c += delta;
      return;
    }
  }
  if (!Metrics::valid_name(sv(name))) return;
  try {
    Metrics& m = s.host().services().metrics;
    std::string l = plugin_labels(s, labels);
    m.add(sv(name), l, delta);
    if (cacheable)
      if (uint64_t* c = m.find_counter(sv(name), l)) s.cache_counter(k, c);
  } catch (...) {
  }
}
void h_gauge_set(jn_host_ctx* ctx, jn_str name, jn_str labels, double v) {
  PluginSlot& s = S(ctx);
  if (!Metrics::valid_name(sv(name))) return;
  try {
    s.host().services().metrics.set(sv(name), plugin_labels(s, labels), v);
  } catch (...) {
  }
}

// --- key-value store ----------------------------------------------------------------------------
jn_status h_kv_put(jn_host_ctx* ctx, jn_str key, const uint8_t* v, size_t len) {
  return guarded(ctx, "kv_put", [&]() -> jn_status {
    if (sv(key).empty() || (!v && len)) return JN_ERR_INVALID;
    PluginSlot& s = S(ctx);
    return s.host().services().store.put(s.name(), sv(key), {reinterpret_cast<const char*>(v), len}) ? JN_OK : JN_ERR_IO;
  });
}
jn_status h_kv_get(jn_host_ctx* ctx, jn_str key, uint8_t* out, size_t cap, size_t* needed) {
  return guarded(ctx, "kv_get", [&]() -> jn_status {
    PluginSlot& s = S(ctx);
    auto v = s.host().services().store.get(s.name(), sv(key));
    if (!v) return JN_ERR_NOT_FOUND;
    if (needed) *needed = v->size();
    if (cap < v->size() || (!out && !v->empty())) return JN_ERR_LIMIT;
    if (!v->empty()) std::memcpy(out, v->data(), v->size());
    return JN_OK;
  });
}
jn_status h_kv_del(jn_host_ctx* ctx, jn_str key) {
  return guarded(ctx, "kv_del", [&]() -> jn_status {
    PluginSlot& s = S(ctx);
    return s.host().services().store.del(s.name(), sv(key)) ? JN_OK : JN_ERR_NOT_FOUND;
  });
}
jn_status h_kv_scan(jn_host_ctx* ctx, jn_str prefix, jn_kv_visit visit, void* arg) {
  return guarded(ctx, "kv_scan", [&]() -> jn_status {
    if (!visit) return JN_ERR_INVALID;
    PluginSlot& s = S(ctx);
    for (auto& [k, v] : s.host().services().store.scan(s.name(), sv(prefix)))
      visit(arg, {k.data(), k.size()}, reinterpret_cast<const uint8_t*>(v.data()), v.size());
    return JN_OK;
  });
}

// --- lifecycle -----------------------------------------------------------------------------------
jn_status h_state_append(jn_host_ctx* ctx, jn_handle sink, const uint8_t* data, size_t len) {
  return guarded(ctx, "state_append", [&]() -> jn_status {
    PluginSlot& s = S(ctx);
    auto* r = static_cast<ValueResource*>(s.host().resource(sink, Resource::Kind::StateSink, &s));
    if (!r || !r->sink) return JN_ERR_NOT_FOUND;
    if (!data && len) return JN_ERR_INVALID;
    r->sink->append(reinterpret_cast<const char*>(data), len);
    return JN_OK;
  });
}
void h_stop_done(jn_host_ctx* ctx) {
  S(ctx).stop_done();  // the unload finishes on the loop's next turn, after the calling hook returns
}
jn_status h_admin_reply(jn_host_ctx* ctx, jn_handle reply, int status, jn_str json) {
  return guarded(ctx, "admin_reply", [&]() -> jn_status {
    PluginSlot& s = S(ctx);
    auto* r = static_cast<ValueResource*>(s.host().resource(reply, Resource::Kind::AdminReply, &s));
    if (!r) return JN_ERR_NOT_FOUND;
    auto cb = std::move(r->reply);
    s.resources().erase(reply);
    s.host().forget_resource(reply);
    if (cb) cb(status, std::string(sv(json)));
    return JN_OK;
  });
}

jn_status h_anchor_reply(jn_host_ctx* ctx, jn_handle reply, jn_status status, const jn_media_desc* media) {
  return guarded(ctx, "anchor_reply", [&]() -> jn_status {
    PluginSlot& s = S(ctx);
    auto* r = static_cast<ValueResource*>(s.host().resource(reply, Resource::Kind::AnchorReply, &s));
    if (!r || r->answered) return JN_ERR_NOT_FOUND;
    r->answered = true;
    if (status != JN_OK || !media) return JN_OK;  // pass-through; a DELETE's OK carries no media
    std::vector<MediaStream> out;
    if (jn_status st = read_media(*media, out); st != JN_OK) {
      s.log(JN_LOG_WARN, "anchor_reply: malformed media description; passing the original through");
      return st;
    }
    *r->anchored = std::move(out);
    return JN_OK;
  });
}

jn_status h_port_bind(jn_host_ctx* ctx, const jn_port_request* req, jn_handle* out, uint32_t* out_port) {
  return guarded(ctx, "port_bind", [&] { return port_bind(S(ctx), req, out, out_port); });
}

jn_status h_ws_upgrade_reply(jn_host_ctx* ctx, jn_handle upgrade, int32_t status, jn_str subprotocol) {
  PluginSlot& s = S(ctx);
  auto* r = static_cast<ValueResource*>(s.host().resource(upgrade, Resource::Kind::WsUpgrade, &s));
  if (!r || !r->decision) return JN_ERR_STATE;
  if (status != 101 && (status < 400 || status > 599)) return JN_ERR_INVALID;
  r->decision->status = status;
  r->decision->subprotocol = std::string(sv(subprotocol));
  return JN_OK;
}

// --- DNS and outbound HTTP ---------------------------------------------------------------------
// The answer finds its slot again by name and its handle by value: a plugin unloaded (or a handle
// cancelled) in the meantime means the callback was cancelled already, or finds nothing.
// PendingAnswer is that bookkeeping, shared by both services: open() registers the handle,
// take() (in the answer's callback) finds the live slot and retires the handle, settle()
// finishes the request with the id the service gave, or forgets the handle when it refused.
struct PendingAnswer {
  PluginHost* host;
  std::string plugin;
  jn_handle handle;
  Resource::Kind kind;

  static PendingAnswer open(PluginSlot& s, Resource::Kind kind, uint64_t cookie, ValueResource** raw) {
    auto res = std::make_unique<ValueResource>(kind, &s, cookie);
    *raw = res.get();
    return {&s.host(), s.name(), s.host().add_resource(std::move(res)), kind};
  }
  // The live slot and the request's cookie, the handle kept (a streamed response's pieces).
  PluginSlot* peek(uint64_t* cookie) const {
    PluginSlot* slot = host->find(plugin);
    Resource* live = slot ? host->resource(handle, kind, slot) : nullptr;
    if (!live) return nullptr;
    *cookie = live->cookie;
    return slot;
  }
  // The slot to answer and the request's cookie, or nullptr (unloaded or cancelled).
  PluginSlot* take(uint64_t* cookie) const {
    PluginSlot* slot = host->find(plugin);
    Resource* live = slot ? host->resource(handle, kind, slot) : nullptr;
    if (!live) return nullptr;
    *cookie = live->cookie;
    slot->resources().erase(handle);
    host->forget_resource(handle);
    return slot;
  }
  jn_status settle(PluginSlot& s, ValueResource* raw, uint64_t id, const std::string& what, const std::string& error,
                   jn_handle* out) const {
    if (id == 0) {
      host->forget_resource(handle);
      s.log(JN_LOG_WARN, fmt::format("{}: refused: {}", what, error));
      s.set_error(what + ": " + error);
      return error.find("too many") != std::string::npos ? JN_ERR_LIMIT : JN_ERR_INVALID;
    }
    raw->id = id;
    s.resources().insert(handle);
    *out = handle;
    return JN_OK;
  }
};
jn_status h_dns_resolve(jn_host_ctx* ctx, const jn_dns_query* q, uint64_t cookie, jn_handle* out) {
  return guarded(ctx, "dns_resolve", [&]() -> jn_status {
    PluginSlot& s = S(ctx);
    PluginHost& host = s.host();
    if (!q || !out || !JN_HAS_FIELD(q, jn_dns_query, timeout_ms)) return JN_ERR_INVALID;
    DnsResolver* dns = host.services().dns;
    if (!dns) return JN_ERR_UNSUPPORTED;
    ValueResource* raw = nullptr;
    PendingAnswer pending = PendingAnswer::open(s, Resource::Kind::DnsQuery, cookie, &raw);
    auto finish = [pending](const DnsResult* r, const SipResolveResult* sip) {
      uint64_t c = 0;
      PluginSlot* slot = pending.take(&c);
      if (!slot) return;
      slot->deliver_dns(pending.handle, c, r ? *r : DnsResult{}, sip);
    };
    std::string error;
    uint32_t timeout = q->timeout_ms ? q->timeout_ms : 5000;
    uint64_t id = 0;
    if (q->type == JN_DNS_SIP) {
      SipResolveRequest req;
      req.host = std::string(sv(q->name));
      req.timeout_ms = timeout;
      if (JN_HAS_FIELD(q, jn_dns_query, sips)) {
        req.port = q->port;
        req.sips = q->sips != 0;
        req.transport = q->transport == JN_SIP_UDP ? SipTransport::kUdp : q->transport == JN_SIP_TCP ? SipTransport::kTcp
                        : q->transport == JN_SIP_TLS ? SipTransport::kTls : SipTransport::kAny;
      }
      id = dns->resolve_sip(std::move(req), [finish](const SipResolveResult& r) { finish(nullptr, &r); }, &error);
    } else if (q->type == JN_DNS_A || q->type == JN_DNS_AAAA || q->type == JN_DNS_SRV || q->type == JN_DNS_NAPTR) {
      id = dns->resolve(std::string(sv(q->name)), static_cast<DnsType>(q->type), timeout,
                        [finish](const DnsResult& r) { finish(&r, nullptr); }, &error);
    } else {
      error = fmt::format("unknown query type {}", q->type);
    }
    return pending.settle(s, raw, id, fmt::format("dns_resolve '{}'", sv(q->name)), error, out);
  });
}

jn_status h_http_request(jn_host_ctx* ctx, const jn_http_client_request* q, uint64_t cookie, jn_handle* out) {
  return guarded(ctx, "http_request", [&]() -> jn_status {
    PluginSlot& s = S(ctx);
    PluginHost& host = s.host();
    if (!q || !out || !JN_HAS_FIELD(q, jn_http_client_request, body)) return JN_ERR_INVALID;
    HttpClient* client = host.services().http_client;
    if (!client) return JN_ERR_UNSUPPORTED;
    HttpClientRequest req;
    req.method = sv(q->method).empty() ? "GET" : std::string(sv(q->method));
    req.url = std::string(sv(q->url));
    if (q->header_count && (!q->headers || q->header_count > 100)) return JN_ERR_INVALID;
    for (uint32_t i = 0; i < q->header_count; ++i) req.headers.emplace_back(sv(q->headers[i].name), sv(q->headers[i].value));
    req.body = std::string(sv(q->body));
    if (q->timeout_ms) req.timeout_ms = q->timeout_ms;
    req.follow_redirects = q->follow_redirects != 0;
    if (JN_HAS_FIELD(q, jn_http_client_request, max_response_body) && q->max_response_body)
      req.max_response_body = static_cast<size_t>(std::min<uint64_t>(q->max_response_body, 256ull << 20));
    if (JN_HAS_FIELD(q, jn_http_client_request, ca_file)) req.ca_file = std::string(sv(q->ca_file));
    // 2.3: streaming, for a plugin that has the hook to receive it.
    bool stream = JN_HAS_FIELD(q, jn_http_client_request, stream) && q->stream != 0;
    if (stream && s.instance() && !JN_HOOK(s.instance(), on_http_chunk)) {
      s.log(JN_LOG_WARN, "http_request: stream = 1 needs an on_http_chunk hook (refused)");
      s.set_error("http_request: stream = 1 needs an on_http_chunk hook");
      return JN_ERR_INVALID;
    }
    ValueResource* raw = nullptr;
    PendingAnswer pending = PendingAnswer::open(s, Resource::Kind::HttpCall, cookie, &raw);
    std::string error;
    std::string url = req.url;
    auto ended = std::make_shared<bool>(false);  // streaming: tells held chunks "ended", not "cancelled"
    uint64_t id = client->request(std::move(req), [pending, ended](const HttpClientResponse& r) {
      *ended = true;
      uint64_t c = 0;
      PluginSlot* slot = pending.take(&c);
      if (!slot) return;
      if (!r.error.empty()) slot->log(JN_LOG_INFO, fmt::format("http_request {}: {}", r.url, r.error));
      slot->deliver_http_response(pending.handle, c, r);
    }, &error, !stream ? HttpClient::ChunkCallback() : [pending, ended](const HttpClientChunk& ch) {
      uint64_t c = 0;
      if (PluginSlot* slot = pending.peek(&c)) slot->deliver_http_chunk(pending.handle, c, ch, ended);
    });
    return pending.settle(s, raw, id, "http_request " + url, error, out);
  });
}

jn_status h_cancel(jn_host_ctx* ctx, jn_handle h) {
  PluginSlot& s = S(ctx);
  PluginHost& host = s.host();
  if (!host.resource(h, Resource::Kind::DnsQuery, &s) && !host.resource(h, Resource::Kind::HttpCall, &s)) return JN_ERR_NOT_FOUND;
  host.close_resource(h);  // cancels in the resolver or the client
  return JN_OK;
}

// --- 2.1 -----------------------------------------------------------------------------------------
// [media] Loop-local subscriptions: only on a media loop's thread (the control loop has bus_subscribe).
jn_status h_bus_subscribe_local(jn_host_ctx* ctx, uint32_t stream_id, uint64_t cookie, jn_handle* out) {
  PluginSlot& s = S(ctx);
  MediaLoop* m = MediaLoop::current();
  if (!m) {
    s.log(JN_LOG_ERROR, "bus_subscribe_local on the control loop (refused: it subscribes on a media loop; use bus_subscribe)");
    return JN_ERR_WRONG_THREAD;
  }
  jn_status st = m->local_subscribe(s, s.host().services().bus, stream_id, cookie, out);
  if (st == JN_ERR_LIMIT)
    s.log(JN_LOG_WARN, fmt::format("bus_subscribe_local: media loop {} has {} local subscriptions already", m->index(), MediaLoop::kMaxLocalSubs));
  return st;
}
jn_status h_bus_unsubscribe_local(jn_host_ctx* ctx, jn_handle sub) {
  PluginSlot& s = S(ctx);
  MediaLoop* m = MediaLoop::current();
  if (!m || !MediaLoop::is_loop_handle(sub) || MediaLoop::loop_of(sub) != m->index()) {
    s.log(JN_LOG_ERROR, "bus_unsubscribe_local: not on the media loop that made the subscription (refused)");
    return JN_ERR_WRONG_THREAD;
  }
  return m->local_unsubscribe(s, s.host().services().bus, sub);
}
// [media] The worker pool (workers.cpp): on_work_done comes back on the loop calling here.
jn_status h_work_submit(jn_host_ctx* ctx, const jn_work* work, jn_handle* out) {
  return guarded(ctx, "work_submit", [&]() -> jn_status {
    PluginSlot& s = S(ctx);
    if (out) *out = JN_INVALID_HANDLE;
    if (!work || !out || !JN_HAS_FIELD(work, jn_work, cookie) || !work->run) {
      s.log(JN_LOG_WARN, "work_submit: no job, no run function or no handle to return (refused)");
      return JN_ERR_INVALID;
    }
    WorkerPool* pool = s.host().services().workers;
    if (!pool) return JN_ERR_UNSUPPORTED;
    return pool->submit(s, MediaLoop::current(), *work, out);
  });
}
jn_status h_work_cancel(jn_host_ctx* ctx, jn_handle work) {
  PluginSlot& s = S(ctx);
  WorkerPool* pool = s.host().services().workers;
  if (!pool) return JN_ERR_UNSUPPORTED;
  return pool->cancel(s, work);
}

jn_status h_library_pin(jn_host_ctx* ctx, jn_str soname, uint32_t* out_first) {
  return guarded(ctx, "library_pin", [&]() -> jn_status {
    PluginSlot& s = S(ctx);
    std::string name(sv(soname));
    if (name.empty() || name.find('/') != std::string::npos) {
      s.log(JN_LOG_WARN, fmt::format("library_pin: '{}' is not a library soname (no paths)", name));
      return JN_ERR_INVALID;
    }
    bool first = false;
    std::string error;
    jn_status st = s.host().pin_library(name, &first, &error);
    if (st != JN_OK) {
      s.log(JN_LOG_ERROR, fmt::format("library_pin {}: {}", name, error));
      s.set_error("library_pin " + name + ": " + error);
      return st;
    }
    if (out_first) *out_first = first ? 1 : 0;
    return JN_OK;
  });
}

// Control-loop-only services called from a media loop: refused with a log line naming them.
template <size_t N>
struct Name {
  constexpr Name(const char (&s)[N]) { std::copy_n(s, N, text); }
  char text[N];
};
template <Name name, auto F>
struct ControlOnly;
template <Name name, typename R, typename... A, R (*F)(jn_host_ctx*, A...)>
struct ControlOnly<name, F> {
  static R call(jn_host_ctx* ctx, A... args) {
    if (MediaLoop* m = MediaLoop::current()) {
      S(ctx).log(JN_LOG_ERROR, fmt::format("{} called from media loop {}: refused (a control-loop service; see the ABI's threading rules)",
                                           name.text, m->index()));
      if constexpr (std::is_same_v<R, void>) return;
      else if constexpr (std::is_same_v<R, jn_status>) return JN_ERR_WRONG_THREAD;
      else return R{};
    }
    return F(ctx, args...);
  }
};
#define CTL(fn, name) ControlOnly<name, fn>::call

const jn_host_api kHostApi = {
    .struct_size = sizeof(jn_host_api),
    .abi_major = JN_ABI_MAJOR,
    .abi_minor = JN_ABI_MINOR,
    .log = h_log,
    .log_level = h_log_level,
    .set_error = CTL(h_set_error, "set_error"),
    .now_ms = h_now_ms,
    .config_json = CTL(h_config_json, "config_json"),
    .config_error = CTL(h_config_error, "config_error"),
    .timer_start = h_timer_start,
    .timer_stop = h_timer_stop,
    .udp_bind = CTL(h_udp_bind, "udp_bind"),
    .udp_local_addr = CTL(h_udp_local_addr, "udp_local_addr"),
    .udp_send = h_udp_send,
    .udp_join_multicast = CTL(h_udp_join, "udp_join_multicast"),
    .udp_close = CTL(h_udp_close, "udp_close"),
    .tcp_listen = CTL(h_tcp_listen, "tcp_listen"),
    .tcp_connect = CTL(h_tcp_connect, "tcp_connect"),
    .tcp_send = h_tcp_send,             // [media]: a loop's own connections (resources.cpp)
    .tcp_set_cookie = h_tcp_set_cookie,
    .tcp_close = h_tcp_close,
    .http_listen = CTL(h_http_listen, "http_listen"),
    .http_respond = CTL(h_http_respond, "http_respond"),
    .ws_send = CTL(h_ws_send, "ws_send"),
    .ws_set_cookie = CTL(h_ws_set_cookie, "ws_set_cookie"),
    .ws_close = CTL(h_ws_close, "ws_close"),
    .ws_upgrade_reply = CTL(h_ws_upgrade_reply, "ws_upgrade_reply"),
    .buf_alloc = h_buf_alloc,
    .buf_ref = h_buf_ref,
    .buf_unref = h_buf_unref,
    .buf_is_shared = h_buf_is_shared,
    .buf_copy = h_buf_copy,
    .bus_publish = h_bus_publish,
    .bus_subscribe = CTL(h_bus_subscribe, "bus_subscribe"),
    .bus_unsubscribe = CTL(h_bus_unsubscribe, "bus_unsubscribe"),
    .route_add = CTL(h_route_add, "route_add"),
    .route_remove = CTL(h_route_remove, "route_remove"),
    .route_lookup = CTL(h_route_lookup, "route_lookup"),
    .call_originate = CTL(h_call_originate, "call_originate"),
    .call_send = CTL(h_call_send, "call_send"),
    .leg_set_cookie = CTL(h_leg_set_cookie, "leg_set_cookie"),
    .event_publish = CTL(h_event_publish, "event_publish"),
    .event_subscribe = CTL(h_event_subscribe, "event_subscribe"),
    .counter_add = CTL(h_counter_add, "counter_add"),
    .gauge_set = CTL(h_gauge_set, "gauge_set"),
    .kv_put = CTL(h_kv_put, "kv_put"),
    .kv_get = CTL(h_kv_get, "kv_get"),
    .kv_del = CTL(h_kv_del, "kv_del"),
    .kv_scan = CTL(h_kv_scan, "kv_scan"),
    .state_append = CTL(h_state_append, "state_append"),
    .stop_done = CTL(h_stop_done, "stop_done"),
    .admin_reply = CTL(h_admin_reply, "admin_reply"),
    .anchor_reply = CTL(h_anchor_reply, "anchor_reply"),
    .media_loops = h_media_loops,
    .bus_intern = CTL(h_bus_intern, "bus_intern"),
    .bus_release_id = CTL(h_bus_release_id, "bus_release_id"),
    .bus_publish_id = h_bus_publish_id,
    .anchor_end = CTL(h_anchor_end, "anchor_end"),
    .port_bind = CTL(h_port_bind, "port_bind"),
    .post = h_post,
    .dns_resolve = CTL(h_dns_resolve, "dns_resolve"),
    .http_request = CTL(h_http_request, "http_request"),
    .cancel = CTL(h_cancel, "cancel"),
    .library_pin = CTL(h_library_pin, "library_pin"),
    .bus_subscribe_local = h_bus_subscribe_local,
    .bus_unsubscribe_local = h_bus_unsubscribe_local,
    .work_submit = h_work_submit,
    .work_cancel = h_work_cancel,
};

}  // namespace

const jn_host_api* PluginHost::api_table() { return &kHostApi; }

}  // namespace junction
