// intercom-json: conf parsing and the admin commands (README "Configuration", "Alarms"): tokens,
// devices, alarms, listings.

#include "intercom_json.hpp"
#include "token.hpp"

#include <junction/util/config.hpp>
#include <junction/util/random.hpp>

#include <set>

namespace intercom_json {

// Reads and checks the plugin's table; every problem is reported as file:line: key: reason.
Conf read_conf(const Host& host) {
  Conf c;
  auto bad = [&](const std::string& key, const std::string& why) {
    host.config_error(key, why);
    throw std::invalid_argument(key + ": " + why);
  };
  // The first problem throws out of read_conf (bad reports it through config_error).
  junction::util::ConfigReader r(host.config(), bad);
  r.known_keys({"listen", "max_message", "secret", "token_ttl_s", "keep_interval_ms", "keep_max_missed", "bad_limit",
                "bad_window_ms", "require_join", "door_allow", "dial_out", "call_req_per_min", "call_req_burst",
                "foreign_peer_type", "network", "bus_media", "stream_pull_url", "bus_audio_codec", "pull_retry_ms",
                "pull_retry_max_ms", "pull_idle_ms", "pull_max_tag_bytes", "stream_push_url", "push_max_queue_bytes"});
  r.str("listen", c.listen, true);
  r.integer("max_message", c.max_message, 256, 16 << 20);
  r.str("secret", c.secret);
  if (!c.secret.empty() && c.secret.size() < 16) bad("secret", "must be at least 16 characters (or empty: generated)");
  r.integer("token_ttl_s", c.token_ttl_s, 1, 100LL * 365 * 86400);
  r.integer("keep_interval_ms", c.keep_interval_ms, 50, 3600000);
  r.integer("keep_max_missed", c.keep_max_missed, 1, 1000);
  r.integer("bad_limit", c.bad_limit, 1, 1000000);
  r.integer("bad_window_ms", c.bad_window_ms, 1, 86400000);
  r.boolean("require_join", c.require_join);
  if (r.has("door_allow")) {
    const json& v = r.conf()["door_allow"];
    if (!v.is_array()) bad("door_allow", "must be an array of addresses or prefixes (\"127.0.0.0/8\", \"::1\")");
    c.door_allow_text.clear();
    for (auto& e : v) {
      Cidr cidr;
      if (!e.is_string() || !parse_cidr(e.get<std::string>(), cidr))
        bad("door_allow", "'" + (e.is_string() ? e.get<std::string>() : e.dump()) +
                              "' is not an IPv4/IPv6 address or prefix (\"10.0.0.0/8\", \"fd00::/8\")");
      c.door_allow_text.push_back(e.get<std::string>());
    }
  }
  r.boolean("dial_out", c.dial_out);
  r.integer("call_req_per_min", c.call_req_per_min, 0, 6000000);
  r.integer("call_req_burst", c.call_req_burst, 1, 100000);
  r.integer("foreign_peer_type", c.foreign_peer_type, 1, 5);
  r.boolean("bus_media", c.bus_media);
  r.str("stream_pull_url", c.stream_pull_url, true);
  {
    std::string hp, path, why;
    if (!parse_pull_url(pull_url_for(c.stream_pull_url, "1"), hp, path, why))
      bad("stream_pull_url", why + " (\"http://127.0.0.1:954/stream/{id}\")");
  }
  r.str("bus_audio_codec", c.bus_audio_codec, true);
  if (c.bus_audio_codec != "PCMA" && c.bus_audio_codec != "PCMU") bad("bus_audio_codec", "must be \"PCMA\" or \"PCMU\"");
  r.integer("pull_retry_ms", c.pull_retry_ms, 10, 600000);
  r.integer("pull_retry_max_ms", c.pull_retry_max_ms, 10, 3600000);
  if (c.pull_retry_max_ms < c.pull_retry_ms) bad("pull_retry_max_ms", "must be at least pull_retry_ms");
  r.integer("pull_idle_ms", c.pull_idle_ms, 100, 3600000);
  r.integer("pull_max_tag_bytes", c.pull_max_tag_bytes, 4096, 64u << 20);
  r.str("stream_push_url", c.stream_push_url);
  if (!c.stream_push_url.empty()) {
    junction::rtmp::RtmpUrl u;
    std::string why;
    int family = 0;
    uint8_t ip[16];
    if (!junction::rtmp::parse_url(pull_url_for(c.stream_push_url, "1"), "", &u, &why))
      bad("stream_push_url", why + " (\"rtmp://127.0.0.1:1935/live/{id}\", or \"\" for no push)");
    if (!parse_ip(u.host, family, ip)) bad("stream_push_url", "the host must be an IP address");
  }
  r.integer("push_max_queue_bytes", c.push_max_queue_bytes, 65536, 256u << 20);
  junction::util::ConfigReader net = r.table("network");
  net.known_keys({"home_addr", "community_addr", "stream_port", "stream_path", "center_stream"});
  net.str("home_addr", c.net.home_addr, true);
  net.str("community_addr", c.net.community_addr, true);
  net.integer("stream_port", c.net.stream_port, 1, 65535);
  if (net.str("stream_path", c.net.stream_path, true) && net.has("stream_path") &&
      (c.net.stream_path.front() != '/' || c.net.stream_path.back() != '/'))
    bad("network.stream_path", "must start and end with '/'");
  if (net.str("center_stream", c.net.center_stream, true) && net.has("center_stream") && !is_url(c.net.center_stream))
    bad("network.center_stream", "must be a URL prefix such as \"http://11.0.0.10:954/stream/\"");
  for (auto& t : c.door_allow_text) {
    Cidr cidr;
    if (!parse_cidr(t, cidr)) bad("door_allow", "'" + t + "' is not an address or prefix");
    c.door_allow.push_back(cidr);
  }
  if (c.secret.empty()) {
    // No secret in the conf: use the one generated on first start and kept in the core's store,
    // so a shipped conf never carries a known signing key and tokens survive restarts.
    if (!host.kv_get("token-secret", c.secret) || c.secret.size() < 16) {
      if (!junction::util::random_hex(32, c.secret)) bad("secret", "not set, and no random secret could be generated");
      if (host.kv_put("token-secret", c.secret) != JN_OK) bad("secret", "not set, and the generated one could not be stored");
      host.info("generated a token signing secret (kept in the store; set 'secret' to choose one)");
    }
  }
  return c;
}

void IntercomJson::on_admin(const jn_admin_request& req) {
  std::string verb(to_sv(req.verb));
  std::string_view text = to_sv(req.body);
  json body = text.empty() ? json::object() : json::parse(text, nullptr, false);
  if (!body.is_object()) return reply(req, 400, {{"error", "the body must be a JSON object"}});
  try {
    if (verb == "issue-token") return issue_token(req, body);
    if (verb == "revoke-token") return revoke_token(req, body);
    if (verb == "list-devices") return reply(req, 200, list_devices());
    if (verb == "list-tokens") return reply(req, 200, list_tokens());
    if (verb == "alarm") {
      json r = raise_alarm(body, "admin");
      return reply(req, 200, r);
    }
    if (verb == "calls") {
      json arr = json::array();
      for (auto& [id, c] : calls_) {
        json j = c;
        j["server"] = server_name(server_for(c.caller_type, c.callee_type));
        arr.push_back(j);
      }
      return reply(req, 200, arr);
    }
    if (verb == "pulls") return reply(req, 200, list_pulls());
    if (verb == "pushes") return reply(req, 200, list_pushes());
    if (verb == "info") {
      return reply(req, 200, {{"generation", generation_}, {"listen", conf_.listen}, {"connections", conns_.size()},
                              {"joined", devices_.size()}, {"calls", calls_.size()}, {"routes", routes_}});
    }
  } catch (const json::exception& e) {
    return reply(req, 400, {{"error", std::string("bad body: ") + e.what()}});
  }
  reply(req, 404, {{"error", "unknown command '" + verb +
                                 "' (issue-token, revoke-token, list-devices, list-tokens, alarm, calls, pulls, pushes, info)"}});
}

void IntercomJson::reply(const jn_admin_request& req, int status, const json& j) {
  host().admin_reply(req.reply, status, j.dump(-1, ' ', false, json::error_handler_t::replace));  // see save_state
}

// {"room": "101"} | {"rooms": [...]} | neither = every family; port|zone|source, name|type,
// message|description.
json IntercomJson::raise_alarm(const json& j, const std::string& origin) {
  auto text = [&](std::initializer_list<const char*> keys) {
    for (const char* k : keys) {
      std::string v;
      if (read_text(j, k, v) && !v.empty()) return v;
    }
    return std::string();
  };
  std::set<std::string> rooms;
  if (j.contains("room")) rooms.insert(text({"room"}));
  if (j.contains("rooms") && j["rooms"].is_array())
    for (auto& r : j["rooms"])
      if (r.is_string()) rooms.insert(r.get<std::string>());
  const bool all = rooms.empty() && !j.contains("room") && !j.contains("rooms");
  json values = {{"port", text({"port", "zone", "source", "device"})},
                 {"name", text({"name", "type", "alarm_type"})},
                 {"message", text({"message", "description"})}};
  int sent = 0;
  json to = json::array();
  for (auto& [room, members] : rooms_) {
    if (!all && !rooms.count(room)) continue;
    for (jn_handle h : members) {
      send(h, "seczone_emergency", values);
      ++sent;
    }
    to.push_back(room);
  }
  host().counter_add("intercom_alarms_total", 1);
  host().info("seczone_emergency (" + origin + ") " + values.dump() + " to " + std::to_string(sent) + " screen(s)");
  return {{"sent", sent}, {"rooms", to}, {"values", values}};
}

void IntercomJson::issue_token(const jn_admin_request& req, const json& b) {
  TokenClaims c;
  if (!read_text(b, "device", c.dev) || c.dev.empty() || c.dev.find('/') != std::string::npos || c.dev.find(':') != std::string::npos)
    return reply(req, 400, {{"error", "'device' (string without '/' or ':') is required"}});
  if (!read_text(b, "room", c.room) || c.room.find('/') != std::string::npos || c.room.find(':') != std::string::npos)
    return reply(req, 400, {{"error", "'room' must be a string without '/' or ':'"}});
  c.type = b.value("type", static_cast<int>(kInnerScreen));
  if (!valid_peer_type(c.type)) return reply(req, 400, {{"error", "'type' must be a CallPeerType 1..5"}});
  if (c.type == kInnerScreen && c.room.empty()) return reply(req, 400, {{"error", "a screen's token needs 'room'"}});
  c.iat = unix_now();
  if (b.contains("expires_at")) c.exp = b["expires_at"].get<int64_t>();
  else c.exp = c.iat + b.value("ttl_s", conf_.token_ttl_s);
  c.tid = random_hex(8);
  std::string token = token_sign(conf_.secret, c);
  host().kv_put("token/" + c.tid, json{{"tid", c.tid}, {"device", c.dev}, {"type", c.type}, {"room", c.room}, {"iat", c.iat},
                                        {"exp", c.exp}, {"revoked", false}}
                                       .dump());
  host().info("token " + c.tid + " issued for device " + c.dev + " (" + peer_type_name(c.type) + ", room " + c.room + ")");
  reply(req, 200, {{"token", token}, {"token_id", c.tid}, {"device", c.dev}, {"type", c.type}, {"room", c.room}, {"expires_at", c.exp}});
}

// {"token_id"} | {"token"} | {"device"} (every token of the device). Joined devices holding a
// revoked token get join_reject{reason:"revoked"} and are disconnected.
void IntercomJson::revoke_token(const jn_admin_request& req, const json& b) {
  std::set<std::string> tids;
  std::string v;
  if (read_text(b, "token_id", v) && !v.empty()) tids.insert(v);
  if (read_text(b, "token", v) && !v.empty()) {
    TokenClaims c;
    TokenCheck check = token_verify(conf_.secret, v, 0, c);
    if (check == TokenCheck::Ok || check == TokenCheck::Expired) tids.insert(c.tid);
    else return reply(req, 400, {{"error", std::string("not a token of this box: ") + token_check_reason(check)}});
  }
  if (read_text(b, "device", v) && !v.empty())
    for (auto& [k, rec] : host().kv_scan("token/")) {
      json r = json::parse(rec, nullptr, false);
      if (r.is_object() && r.value("device", "") == v) tids.insert(r.value("tid", ""));
    }
  if (tids.empty()) return reply(req, 400, {{"error", "give 'token_id', 'token' or 'device'"}});
  json revoked = json::array();
  for (const std::string& tid : tids) {
    std::string rec;
    json r = host().kv_get("token/" + tid, rec) ? json::parse(rec, nullptr, false) : json::object();
    if (!r.is_object()) r = json::object();
    r["tid"] = tid;
    r["revoked"] = true;
    r["revoked_at"] = unix_now();
    host().kv_put("token/" + tid, r.dump());
    revoked.push_back(tid);
  }
  int kicked = 0;
  std::vector<jn_handle> hs;
  for (auto& [h, c] : conns_)
    if (c.joined && tids.count(c.tid)) hs.push_back(h);
  for (jn_handle h : hs) {
    send(h, "join_reject", {{"reason", "revoked"}});
    unjoin(h);
    if (Conn* c = conn(h); c && !c->closing) {
      c->closing = true;
      host().tcp_close(h);
    }
    ++kicked;
  }
  host().info("revoked " + revoked.dump() + "; disconnected " + std::to_string(kicked) + " device(s)");
  reply(req, 200, {{"revoked", revoked}, {"disconnected", kicked}});
}

json IntercomJson::list_devices() {
  json families = json::object();
  for (auto& [k, rec] : host().kv_scan("family/")) {
    json r = json::parse(rec, nullptr, false);
    std::string room = k.substr(7);
    families[room] = {{"room", room}, {"created", r.is_object() ? r.value("created", int64_t{0}) : 0}, {"devices", json::array()}};
  }
  json loose = json::array();
  for (auto& [k, rec] : host().kv_scan("device/")) {
    json r = json::parse(rec, nullptr, false);
    if (!r.is_object()) continue;
    std::string id = r.value("id", k.substr(7));
    auto online = devices_.find(id);
    r["online"] = online != devices_.end();
    if (online != devices_.end()) r["peer"] = conn(online->second)->peer;
    std::string room = r.value("room", "");
    if (!room.empty() && families.contains(room)) families[room]["devices"].push_back(r);
    else loose.push_back(r);
  }
  json arr = json::array();
  for (auto& [room, f] : families.items()) arr.push_back(f);
  return {{"families", arr}, {"devices_without_family", loose}, {"connections", conns_.size()}};
}

json IntercomJson::list_tokens() {
  json arr = json::array();
  for (auto& [k, rec] : host().kv_scan("token/")) {
    json r = json::parse(rec, nullptr, false);
    if (r.is_object()) arr.push_back(r);
  }
  return arr;
}

}  // namespace intercom_json
