// verto-ws: browsers speak Verto (JSON-RPC 2.0 over WebSocket, as FreeSWITCH's mod_verto) to
// log in, subscribe to event channels and place / take calls through the core's routing table.
// README.md documents the conf keys, the URI mapping, the error codes and every decision taken
// where the protocol document is silent.
// This file keeps the plugin's hooks and wiring: start, stop, the timers and the gauges; every
// other seam has its own file (verto_ws.hpp lists them).
#include "verto_ws.hpp"

namespace verto::ws {

jn_status VertoWs::start() {
  jn_status st = host().http_listen(conf_.listen, conf_.ws_path, 0, &endpoint_, conf_.tls_cert, conf_.tls_key);
  if (st != JN_OK) {
    host().set_error("cannot listen on " + conf_.listen + " (status " + std::to_string(st) + ")");
    return st;
  }
  started_ms_ = host().now_ms();
  if (media_on() && !init_media("")) return JN_ERR_INTERNAL;
  start_timers();
  for (auto& p : conf_.core_events) host().event_subscribe(p);
  host().info(std::string("verto listening on ") + (conf_.tls_cert.empty() ? "ws://" : "wss://") + conf_.listen + conf_.ws_path +
              " (origins: " + join(conf_.allowed_origins) + (conf_.allow_no_origin ? " + none" : "") + ")");
  return JN_OK;
}

void VertoWs::start_timers() {
  host().timer(kTickMs, kTickMs, kTickCookie, &tick_);
  if (media_on()) host().timer(kMediaTickMs, kMediaTickMs, kMediaTickCookie, &media_tick_);
  if (conf_.heartbeat_ms) host().timer(conf_.heartbeat_ms, conf_.heartbeat_ms, kHeartbeatCookie, &heartbeat_);
}

void VertoWs::on_timer(jn_handle t, uint64_t cookie) {
  if (confs_->on_timer(t, cookie)) return;  // a conference mixer's tick, on its media loop
  if (cookie == kHeartbeatCookie) return heartbeat();
  if (cookie == kMediaTickCookie) return media_tick();
  if (cookie != kTickCookie) return;
  uint64_t now = host().now_ms();
  std::vector<jn_handle> close, ping;
  for (auto& [h, c] : conns_) {
    if (c.closing) continue;
    if (!c.authed && now - c.opened_ms > conf_.login_timeout_ms) close.push_back(h);
    else if (now - c.last_rx_ms > conf_.idle_timeout_ms) close.push_back(h);
    else if (c.authed && now - c.last_rx_ms > conf_.idle_ping_ms && !c.pinged_ms) ping.push_back(h);
  }
  for (jn_handle h : ping) {
    conn(h)->pinged_ms = now;
    request(h, "verto.ping", json{{"serno", server_id_ + 1}});
  }
  for (jn_handle h : close) {
    Conn* c = conn(h);
    host().info("closing " + c->peer + ": " + (c->authed ? "idle for " + std::to_string(now - c->last_rx_ms) + " ms" : "no login within login_timeout_ms"));
    c->closing = true;
    host().ws_close(h);
  }
  std::vector<std::string> expired;
  for (auto& [sid, s] : sessions_)
    if (!s.conn && now - s.detached_ms >= conf_.detach_timeout_ms) expired.push_back(sid);
  for (auto& sid : expired) {
    std::vector<uint64_t> ids;
    for (auto& [cid, call] : calls_)
      if (call.sessid == sid) ids.push_back(cid);
    for (uint64_t cid : ids) {
      host().info("call " + call(cid)->callid + " ended: not re-attached within detach_timeout_ms");
      end_call(cid, 408, "detach-timeout");
    }
    sessions_.erase(sid);
  }
}

jn_status VertoWs::stop() {
  confs_->stop();
  std::vector<uint64_t> ids;
  for (auto& [id, cl] : calls_) ids.push_back(id);
  for (uint64_t id : ids) end_call(id, 503, "server-stopping");
  std::vector<uint64_t> legs;
  for (auto& [id, leg] : media_) legs.push_back(id);
  for (uint64_t id : legs) retire(id);
  // Each leg's loop closes its PeerConnection (its DTLS close_notify goes out there). The legs
  // the control loop owns are released here (not in on_destroy: no resource services there);
  // the others' sockets, subscriptions and stream ids are closed by the core as it unloads us,
  // after which no loop runs our code and the legs are destroyed with the instance. No
  // asynchronous stop: stop_done() destroys the instance from inside the hook that calls it.
  graves_ready();
  return JN_OK;
}

void VertoWs::gauges() {
  host().gauge_set("verto_connections", static_cast<double>(conns_.size()));
  host().gauge_set("verto_sessions", static_cast<double>(sessions_.size()));
  host().gauge_set("verto_calls", static_cast<double>(calls_.size()));
}

std::string VertoWs::join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& e : v) s += (s.empty() ? "" : ", ") + e;
  return s;
}

}  // namespace verto::ws

using verto::ws::VertoWs;
using verto::ws::kStateSchema;
JUNCTION_PLUGIN(VertoWs, "verto-ws", "0.1.0", "Verto (JSON-RPC over WebSocket) for browsers: login, events, calls, conferences", "verto,conference", kStateSchema,
                kStateSchema)
