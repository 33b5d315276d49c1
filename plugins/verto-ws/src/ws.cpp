// verto-ws: the WebSocket side. Upgrades (Origin allow-list), frames in and out, the size, batch,
// rate and bad-message limits, and the JSON-RPC dispatch of each message to its handler.
#include "verto_ws.hpp"

namespace verto::ws {

void VertoWs::on_ws(const jn_ws_event& ev) {
  switch (ev.type) {
    case JN_WS_UPGRADE: return on_upgrade(ev);
    case JN_WS_OPEN: {
      Conn c;
      c.h = ev.conn;
      c.peer = junction::util::format_addr(ev.peer);
      c.origin = header(ev, "origin");
      c.opened_ms = c.last_rx_ms = c.refill_ms = host().now_ms();
      c.tokens = conf_.rate_burst;
      conns_[ev.conn] = c;
      host().debug("connection from " + c.peer + (c.origin.empty() ? "" : " (origin " + c.origin + ")"));
      gauges();
      return;
    }
    case JN_WS_TEXT: return on_text(ev.conn, std::string_view(reinterpret_cast<const char*>(ev.data), ev.len));
    case JN_WS_BINARY: {
      Conn* c = conn(ev.conn);
      if (!c) return;
      bad(*c, "binary message of " + std::to_string(ev.len) + " bytes (Verto is text)");
      send(ev.conn, verto::make_error(nullptr, verto::kInvalidRequest, "Invalid Request: binary message"));
      return;
    }
    case JN_WS_CLOSED: return on_closed(ev.conn);
    default: return;
  }
}

std::string VertoWs::header(const jn_ws_event& ev, std::string_view name) {
  for (uint32_t i = 0; i < ev.header_count; ++i)
    if (to_sv(ev.headers[i].name) == name) return std::string(to_sv(ev.headers[i].value));
  return {};
}

void VertoWs::on_upgrade(const jn_ws_event& ev) {
  std::string origin = header(ev, "origin");
  bool ok = origin.empty() ? conf_.allow_no_origin : false;
  for (auto& o : conf_.allowed_origins) ok = ok || o == "*" || o == origin;
  if (!ok) {
    host().warn("refused a WebSocket from " + junction::util::format_addr(ev.peer) + ": origin '" + verto::printable(origin) +
                "' is not in allowed_origins (cross-site WebSocket hijacking)");
    host().counter_add("verto_refused_total", 1, "reason=\"origin\"");
    host().ws_upgrade_reply(ev.conn, 403);
    return;
  }
  // Browser Verto clients offer no subprotocol; one that does gets its first.
  host().ws_upgrade_reply(ev.conn, 101, ev.subprotocol_count ? to_sv(ev.subprotocols[0]) : std::string_view());
}

Conn* VertoWs::conn(jn_handle h) {
  auto it = conns_.find(h);
  return it == conns_.end() ? nullptr : &it->second;
}

Call* VertoWs::call(uint64_t id) {
  auto it = calls_.find(id);
  return it == calls_.end() ? nullptr : &it->second;
}

Call* VertoWs::call_by_callid(const std::string& callid) {
  auto it = by_callid_.find(callid);
  return it == by_callid_.end() ? nullptr : call(it->second);
}

void VertoWs::send(jn_handle h, const json& j) {
  std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (jn_status st = host().ws_send(h, text); st != JN_OK) host().debug("ws_send to " + std::to_string(h) + " failed (status " + std::to_string(st) + ")");
}

void VertoWs::bad(Conn& c, const std::string& why) {
  host().warn("bad input from " + c.peer + (c.user.empty() ? "" : " (" + c.user + ")") + ": " + why);
  host().counter_add("verto_bad_input_total");
  if (++c.bad >= conf_.bad_limit && !c.closing) {
    host().warn("closing " + c.peer + ": " + std::to_string(c.bad) + " bad messages (bad_limit)");
    c.closing = true;
    host().ws_close(c.h);
  }
}

bool VertoWs::take_token(Conn& c) {
  uint64_t now = host().now_ms();
  c.tokens = std::min<double>(conf_.rate_burst, c.tokens + (now - c.refill_ms) * conf_.rate_per_s / 1000.0);
  c.refill_ms = now;
  if (c.tokens < 1) return false;
  c.tokens -= 1;
  return true;
}

void VertoWs::on_text(jn_handle h, std::string_view text) {
  Conn* c = conn(h);
  if (!c || c->closing) return;
  c->last_rx_ms = host().now_ms();
  c->pinged_ms = 0;
  if (text.size() > conf_.max_message) {
    bad(*c, "message of " + std::to_string(text.size()) + " bytes over max_message " + std::to_string(conf_.max_message));
    send(h, verto::make_error(nullptr, verto::kInvalidRequest, "Invalid Request: message too large"));
    return;
  }
  verto::Limits lim;
  lim.max_batch = conf_.max_batch;
  verto::Frame f = verto::parse_frame(text, lim);
  json replies = json::array();
  for (auto& m : f.messages) {
    json r = handle(h, m);
    if (!r.is_null()) replies.push_back(std::move(r));
    if (!conn(h)) return;  // closed while handling (a punt of itself cannot happen; a bad_limit can)
  }
  if (replies.empty()) return;
  if (f.batch) send(h, replies);
  else for (auto& r : replies) send(h, r);
}

// One message; returns the reply (null when none: a response from the client, or a reply
// that comes later).
json VertoWs::handle(jn_handle h, verto::Message& m) {
  Conn* c = conn(h);
  if (m.kind == verto::Message::Invalid) {
    bad(*c, m.why);
    return verto::make_error(m.id, verto::kInvalidRequest, "Invalid Request: " + m.why);
  }
  if (m.kind == verto::Message::Response) return nullptr;  // answers to our requests (ping, invite, event): the activity counts
  if (!take_token(*c)) {
    host().counter_add("verto_rate_limited_total");
    host().debug("rate limited " + c->peer + ": " + m.method);
    return verto::make_error(m.id, verto::kRateLimited, "Rate limited");
  }
  if (m.method == "login") return login(h, m);
  if (m.method == "echo") return verto::make_result(m.id, m.params, c->sessid);
  if (!c->authed) {
    host().info("request " + verto::printable(m.method) + " from " + c->peer + " before login: -32000");
    return verto::make_error(m.id, verto::kAuthRequired, "Authentication Required");
  }
  if (m.method == "verto.subscribe") return subscribe(*c, m, true);
  if (m.method == "verto.unsubscribe") return subscribe(*c, m, false);
  if (m.method == "verto.broadcast") return broadcast(*c, m);
  if (m.method == "verto.invite") return invite(h, m);
  if (m.method == "verto.answer") return answer(h, m);
  if (m.method == "verto.bye") return bye(h, m);
  if (m.method == "verto.info") return info(h, m);
  if (m.method == "verto.modify") return modify(h, m);
  if (m.method == "verto.display") return display(h, m);
  if (m.method == "verto.attach") return attach_answer(h, m);
  if (m.method == "verto.ping") return verto::make_result(m.id, json::object(), c->sessid);
  bad(*c, "unknown method " + verto::printable(m.method));
  return verto::make_error(m.id, verto::kMethodNotFound, "Invalid Method");
}

void VertoWs::on_closed(jn_handle h) {
  auto it = conns_.find(h);
  if (it == conns_.end()) return;
  Conn c = it->second;
  conns_.erase(it);
  host().debug("connection " + c.peer + " closed");
  if (!c.sessid.empty()) {
    auto sit = sessions_.find(c.sessid);
    if (sit != sessions_.end() && sit->second.conn == h) {
      sit->second.conn = 0;
      sit->second.detached_ms = host().now_ms();
      confs_->connection_closed(c.sessid, false);  // its cman grants (not when a newer socket took the session)
      // Calls not yet answered cannot survive the socket: end them; answered ones wait for
      // a reconnect with the same sessid (verto.attach) until detach_timeout_ms.
      std::vector<uint64_t> ids;
      for (auto& [cid, call] : calls_)
        if (call.sessid == c.sessid && (call.state != kAnswered || conf_.detach_timeout_ms == 0)) ids.push_back(cid);
      for (uint64_t cid : ids) end_call(cid, 503, "connection-lost");
      host().info("session " + verto::printable(c.sessid) + " of " + c.user + " detached");
    }
  }
  gauges();
}

}  // namespace verto::ws
