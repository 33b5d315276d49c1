// intercom-json: device connections (README "Transport", "Registration"): the helpers that send
// frames, frame parsing, join/unjoin, dialled connections, lost connections and call_keep.

#include "intercom_json.hpp"
#include "token.hpp"

#include <algorithm>

namespace intercom_json {

bool IntercomJson::door_allowed(const std::string& peer) const {
  int family = 0;
  uint8_t ip[16];
  if (!parse_ip(peer_host(peer), family, ip)) return false;
  for (const Cidr& c : conf_.door_allow)
    if (cidr_match(c, family, ip)) return true;
  return false;
}

void IntercomJson::gauge() {
  host().gauge_set("intercom_connections", static_cast<double>(conns_.size()));
  host().gauge_set("intercom_call_legs", static_cast<double>(calls_.size()));
}

Conn* IntercomJson::conn(jn_handle h) {
  auto it = conns_.find(h);
  return it == conns_.end() ? nullptr : &it->second;
}

Call* IntercomJson::call(uint64_t id) {
  auto it = calls_.find(id);
  return it == calls_.end() ? nullptr : &it->second;
}

void IntercomJson::send(jn_handle h, std::string_view name, const json& values, std::string_view id) {
  Conn* c = conn(h);
  if (!c || !c->connected) return;
  std::string frame = encode(id.empty() ? next_msg_id() : std::string(id), name, values);
  jn_status st = host().tcp_send(h, frame);
  if (st != JN_OK) host().warn("send " + std::string(name) + " to " + c->peer + " failed (status " + std::to_string(st) + ")");
  host().counter_add("intercom_messages_sent_total", 1, "name=\"" + std::string(name) + "\"");
}

void IntercomJson::send_error(jn_handle h, const Error& e) {
  Conn* c = conn(h);
  if (!c || !c->connected) return;
  host().tcp_send(h, encode_error(e));
}

// Bad input: an error reply, a log line, a counter; too many within the window -> disconnect.
void IntercomJson::bad_input(jn_handle h, const Error& e) {
  Conn* c = conn(h);
  if (!c) return;
  host().counter_add("intercom_bad_messages_total", 1, "reason=\"" + e.reason + "\"");
  host().warn("bad message from " + c->peer + (c->dev.empty() ? "" : " (" + c->dev + ")") + ": " + e.reason + ": " + e.message);
  send_error(h, e);
  uint64_t t = now();
  if (c->bad == 0 || t - c->bad_since > conf_.bad_window_ms) {
    c->bad = 0;
    c->bad_since = t;
  }
  if (++c->bad >= conf_.bad_limit && !c->closing) {
    Error bye;
    bye.code = 429;
    bye.reason = "too-many-errors";
    bye.message = std::to_string(c->bad) + " bad messages within " + std::to_string(conf_.bad_window_ms) + " ms: disconnecting";
    send_error(h, bye);
    host().warn("disconnecting " + c->peer + ": " + bye.message);
    c->closing = true;
    host().tcp_close(h);
  }
}

// An error that is not the peer's fault (a stale sid, a call that just ended): replied, not counted.
void IntercomJson::soft_error(jn_handle h, const std::string& id, int code, const std::string& reason, const std::string& message) {
  Error e;
  e.id = id;
  e.code = code;
  e.reason = reason;
  e.message = message;
  host().debug("error to " + (conn(h) ? conn(h)->peer : std::string("?")) + ": " + reason + ": " + message);
  send_error(h, e);
}

void IntercomJson::rebuild_indexes() {
  by_party_.clear();
  devices_.clear();
  rooms_.clear();
  for (auto& [h, c] : conns_) {
    if (!c.joined) continue;
    devices_[c.dev] = h;
    if (c.type == kInnerScreen) rooms_[c.room].insert(h);
  }
  for (auto& [id, c] : calls_)
    for (auto& p : c.parties) by_party_[{p.conn, p.sid}] = id;
}

void IntercomJson::add_route(const std::string& uri) {
  if (routes_.count(uri)) return;
  jn_handle h = 0;
  jn_status st = host().route_add(uri, &h);
  if (st == JN_OK) routes_[uri] = h;
  else host().warn("route_add " + uri + " failed (status " + std::to_string(st) + "); calls still reach it through the intercom namespace");
}

void IntercomJson::remove_route(const std::string& uri) {
  auto it = routes_.find(uri);
  if (it == routes_.end()) return;
  host().route_remove(it->second);
  routes_.erase(it);
}

void IntercomJson::on_frame(jn_handle h, std::string_view frame) {
  Conn* c = conn(h);
  if (!c || c->closing) return;
  if (blank(frame)) return;
  Message m;
  Error e;
  if (!parse_message(frame, m, e)) return bad_input(h, e);
  // The label is one of the protocol's names or "unknown": a remote peer (joined or not) must
  // not create metric series at will.
  host().counter_add("intercom_messages_received_total", 1, "name=\"" + std::string(name_label(m.name)) + "\"");
  if (m.name == "join_family") return on_join(h, m);
  if (m.name == "call_req") return on_call_req(h, m);
  if (m.name == "call_accept" || m.name == "call_reject" || m.name == "call_end" || m.name == "call_keep" ||
      m.name == "open_door")
    return on_call_message(h, m);
  if (m.name == "error") {
    host().info("error message from " + c->peer + ": " + m.values.dump());
    return;
  }
  e.id = m.id;
  if (m.name == "call_in" || m.name == "call_out") {
    e.code = 404;
    e.reason = "unknown-name";
    e.message = m.name + " was removed in v0.4: use call_req";
  } else if (m.name == "join_accept" || m.name == "join_reject" || m.name == "seczone_emergency") {
    e.code = 405;
    e.reason = "unexpected-name";
    e.message = m.name + " is sent by the box, not to it";
  } else {
    e.code = 404;
    e.reason = "unknown-name";
    e.message = "unknown message name '" + (m.name.size() <= 64 ? m.name : m.name.substr(0, 64) + "...") + "'";
  }
  bad_input(h, e);
}

Error IntercomJson::values_error(const Message& m, const std::string& why) {
  Error e;
  e.id = m.id;
  e.code = 422;
  e.reason = "bad-values";
  e.message = m.name + ": " + why;
  return e;
}

void IntercomJson::on_join(jn_handle h, const Message& m) {
  std::string token;
  // A missing or non-string token is a malformed message; an empty one is a bad token
  // (join_reject, like any other token that does not verify).
  if (!m.values.is_object() || !m.values.contains("token") || !m.values["token"].is_string() || !read_text(m.values, "token", token))
    return bad_input(h, values_error(m, "'token' (string) is required"));
  Conn* c = conn(h);
  if (c->outbound) return bad_input(h, values_error(m, "join_family on a connection the box dialled"));
  TokenClaims claims;
  TokenCheck check = token_verify(conf_.secret, token, unix_now(), claims);
  std::string reason = check == TokenCheck::Ok ? "" : token_check_reason(check);
  if (reason.empty()) {
    std::string rec;
    if (host().kv_get("token/" + claims.tid, rec)) {
      json r = json::parse(rec, nullptr, false);
      if (r.is_object() && r.value("revoked", false)) reason = "revoked";
    }
  }
  if (!reason.empty()) {
    host().counter_add("intercom_join_rejected_total", 1, "reason=\"" + reason + "\"");
    host().warn("join_family from " + c->peer + " rejected: " + reason);
    send(h, "join_reject", {{"reason", reason}});
    return;
  }
  if (c->joined) unjoin(h);  // the connection re-joins (another token): drop the old identity first
  // The same device on another connection: the newer connection wins, the old one is closed.
  if (auto it = devices_.find(claims.dev); it != devices_.end() && it->second != h) {
    jn_handle old = it->second;
    host().info("device " + claims.dev + " joined again from " + c->peer + "; closing its older connection");
    unjoin(old);
    if (Conn* oc = conn(old); oc && !oc->closing) {
      oc->closing = true;
      host().tcp_close(old);
    }
  }
  c = conn(h);
  c->joined = true;
  c->dev = claims.dev;
  c->room = claims.room;
  c->type = claims.type;
  c->tid = claims.tid;
  devices_[claims.dev] = h;
  add_route("intercom:device/" + claims.dev);
  if (claims.type == kInnerScreen) {
    rooms_[claims.room].insert(h);
    add_route("intercom:room/" + claims.room);
  }
  // The family and the device persist in the store.
  std::string fam;
  if (!claims.room.empty() && !host().kv_get("family/" + claims.room, fam))
    host().kv_put("family/" + claims.room, json{{"room", claims.room}, {"created", unix_now()}}.dump());
  host().kv_put("device/" + claims.dev, json{{"id", claims.dev}, {"type", claims.type}, {"room", claims.room},
                                             {"token_id", claims.tid}, {"last_join", unix_now()}, {"peer", c->peer}}
                                            .dump());
  host().counter_add("intercom_joins_total", 1);
  host().info("device " + claims.dev + " (" + peer_type_name(claims.type) + ") joined family " + claims.room + " from " + c->peer);
  send(h, "join_accept", {{"room_id", claims.room}});
}

void IntercomJson::unjoin(jn_handle h) {
  Conn* c = conn(h);
  if (!c || !c->joined) return;
  if (auto it = devices_.find(c->dev); it != devices_.end() && it->second == h) {
    devices_.erase(it);
    remove_route("intercom:device/" + c->dev);
  }
  if (c->type == kInnerScreen) {
    auto r = rooms_.find(c->room);
    if (r != rooms_.end()) {
      r->second.erase(h);
      if (r->second.empty()) {
        rooms_.erase(r);
        remove_route("intercom:room/" + c->room);
      }
    }
  }
  c->joined = false;
}

void IntercomJson::on_connected(jn_handle h, const jn_addr& peer) {
  Conn* cn = conn(h);
  if (!cn) return;
  cn->connected = true;
  if (peer.family) cn->peer = addr_text(peer);
  Call* c = call(cn->dial_call);
  if (!c) {
    cn->closing = true;
    host().tcp_close(h);
    return;
  }
  c->dialing = false;
  for (auto& p : c->parties)
    if (p.conn == h) send_call_req(*c, p);
}

void IntercomJson::on_closed(jn_handle h, jn_status status) {
  Conn* cn = conn(h);
  if (!cn) return;
  const bool was_dialing = cn->outbound && !cn->connected;
  host().info("connection " + cn->peer + (cn->dev.empty() ? "" : " (" + cn->dev + ")") + " closed" +
              (status == JN_OK ? "" : " (status " + std::to_string(status) + ")"));
  unjoin(h);
  cn->connected = false;
  std::vector<std::pair<uint64_t, std::string>> involved;
  for (auto& [key, id] : by_party_)
    if (key.first == h) involved.emplace_back(id, key.second);
  for (auto& [id, sid] : involved) {
    Call* c = call(id);
    if (!c) continue;
    const jn_handle leg = c->leg;
    if (c->a_side) {
      const int code = c->answered ? 503 : 487;
      drop_call(id);
      host().call_send(leg, JN_CALL_END, code, "connection-lost");
      continue;
    }
    // sid by name, not the structured binding: clang before 16 cannot capture those (fuzz build).
    auto pit = std::find_if(c->parties.begin(), c->parties.end(), [&, &sid = sid](const Party& p) { return p.conn == h && p.sid == sid; });
    if (pit == c->parties.end()) continue;
    if (!c->answered && c->parties.size() > 1) {
      by_party_.erase({pit->conn, pit->sid});
      c->parties.erase(pit);
      continue;
    }
    const bool answered = c->answered;
    drop_call(id);
    if (answered) host().call_send(leg, JN_CALL_END, 503, "connection-lost");
    else host().call_send(leg, JN_CALL_REJECT, was_dialing ? 503 : 480, was_dialing ? "unreachable" : "connection-lost");
  }
  conns_.erase(h);
  gauge();
}

void IntercomJson::keepalive_tick() {
  const uint64_t t = now();
  const uint64_t limit = conf_.keep_interval_ms * conf_.keep_max_missed;
  std::vector<std::pair<uint64_t, Party>> expired;
  for (auto& [id, c] : calls_) {
    if (!c.answered) continue;
    for (auto& p : c.parties) {
      if (t - p.last_rx >= limit) {
        expired.emplace_back(id, p);
        continue;
      }
      if (t - p.last_tx >= conf_.keep_interval_ms) {
        p.last_tx = t;
        send(p.conn, "call_keep", {{"sid", p.sid}});
      }
    }
  }
  for (auto& [id, p] : expired) {
    Call* c = call(id);
    if (!c) continue;
    host().warn("call " + c->call_id + ": no call_keep from " + p.dev + " for " + std::to_string(t - p.last_rx) + " ms: ending it");
    host().counter_add("intercom_keep_timeouts_total", 1);
    send(p.conn, "call_end", {{"sid", p.sid}, {"reason", "keep-timeout"}, {"message", "no call_keep for " + std::to_string(t - p.last_rx) + " ms"}, {"code", 408}});
    const jn_handle leg = c->leg;
    drop_call(id);
    host().call_send(leg, JN_CALL_END, 408, "keep-timeout");
  }
}

}  // namespace intercom_json
