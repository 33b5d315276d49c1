// verto-ws: the admin API. Users (password hashes made on the worker pool) and login tokens.
#include "verto_ws.hpp"

namespace verto::ws {

void VertoWs::on_admin(const jn_admin_request& req) {
  std::string verb(to_sv(req.verb));
  std::string_view text = to_sv(req.body);
  json body = text.empty() ? json::object() : json::parse(text, nullptr, false);
  auto reply = [&](int status, const json& j) { host().admin_reply(req.reply, status, j.dump(-1, ' ', false, json::error_handler_t::replace)); };
  if (!body.is_object()) return reply(400, {{"error", "the body must be a JSON object"}});
  std::string user = body.value("user", "");
  if (verb == "user-add" || verb == "user-set") {
    std::string password = body.value("password", "");
    if (!verto::valid_user(user)) return reply(400, {{"error", "user: 1-64 of A-Z a-z 0-9 . _ -"}});
    if (password.size() < 4 || password.size() > 1024) return reply(400, {{"error", "password: 4 to 1024 bytes"}});
    json rec = {{"user", user}, {"name", body.value("name", user)}, {"created", unix_now()}};
    auto job = std::make_unique<KdfJob>();
    job->kind = KdfJob::Hash;
    job->password = password;
    job->iterations = conf_.kdf_iterations;
    job->reply = req.reply;
    job->user_record = rec;
    uint64_t cookie = ++serial_;
    KdfJob* raw = job.get();
    jobs_[cookie] = std::move(job);
    jn_handle w = 0;
    if (host().work_submit(&KdfJob::run, raw, cookie, &w) != JN_OK) {
      jobs_.erase(cookie);
      return reply(503, {{"error", "worker pool busy"}});
    }
    return;  // answered in on_work_done
  }
  if (verb == "user-del") {
    std::string rec;
    if (!host().kv_get("user/" + user, rec)) return reply(404, {{"error", "no such user"}});
    host().kv_del("user/" + user);
    size_t revoked = revoke_tokens(user);
    host().info("user " + user + " deleted (" + std::to_string(revoked) + " token(s) revoked)");
    return reply(200, {{"user", user}, {"deleted", true}, {"tokens_revoked", revoked}});
  }
  if (verb == "users") {
    json list = json::array();
    for (auto& [k, rec] : host().kv_scan("user/")) {
      json u = json::parse(rec, nullptr, false);
      if (!u.is_object()) continue;
      u.erase("hash");
      size_t online = 0;
      for (auto& [h, c] : conns_) online += c.authed && c.user == u.value("user", "");
      u["connections"] = online;
      list.push_back(u);
    }
    return reply(200, {{"users", list}});
  }
  if (verb == "token-issue") {
    std::string rec;
    if (!host().kv_get("user/" + user, rec)) return reply(404, {{"error", "no such user"}});
    uint64_t ttl = body.value("ttl_s", uint64_t{conf_.token_ttl_s});
    if (ttl == 0 || ttl > 315360000) return reply(400, {{"error", "ttl_s: 1 to 315360000"}});
    std::string token = verto::new_token();
    if (token.empty()) return reply(500, {{"error", "no randomness"}});
    std::string key = verto::sha256_hex(token);
    uint64_t exp = unix_now() + ttl;
    host().kv_put("token/" + key, json{{"user", user}, {"exp", exp}, {"id", key.substr(0, 16)}}.dump());
    host().info("token " + key.substr(0, 16) + " issued to " + user + " for " + std::to_string(ttl) + " s");
    return reply(200, {{"token", token}, {"user", user}, {"expires", exp}, {"id", key.substr(0, 16)}});
  }
  if (verb == "token-revoke") {
    std::string token = body.value("token", "");
    if (!token.empty()) {
      std::string key = "token/" + verto::sha256_hex(token), rec;
      if (!host().kv_get(key, rec)) return reply(404, {{"error", "no such token"}});
      host().kv_del(key);
      return reply(200, {{"revoked", 1}});
    }
    if (!user.empty()) return reply(200, {{"revoked", revoke_tokens(user)}});
    return reply(400, {{"error", "give token or user"}});
  }
  if (verb == "sessions") return admin_sessions(req.reply);
  if (verb == "conferences") return reply(200, confs_->admin());
  if (verb == "publish") {  // test / operator hook: an event on a channel, as a core event would
    std::string ch = body.value("channel", "");
    if (!verto::valid_channel(ch)) return reply(400, {{"error", "channel"}});
    return reply(200, {{"delivered", deliver(ch, json{{"data", body.value("data", json::object())}})}});
  }
  reply(404, {{"error", "unknown verb " + verb + " (user-add, user-set, user-del, users, token-issue, token-revoke, sessions, publish)"}});
}

size_t VertoWs::revoke_tokens(const std::string& user) {
  size_t n = 0;
  for (auto& [k, rec] : host().kv_scan("token/")) {
    json t = json::parse(rec, nullptr, false);
    if (t.is_object() && t.value("user", "") == user) {
      host().kv_del(k);
      ++n;
    }
  }
  return n;
}

// The `sessions` verb. A leg's statistics are its PeerConnection's, which belongs to the leg's
// loop: each loop with legs is asked (a task), and the reply goes once every loop has answered.
void VertoWs::admin_sessions(jn_handle reply) {
  struct Gather {
    jn_handle reply = 0;
    size_t pending = 0;
    std::map<uint64_t, json> stats;
  };
  auto g = std::make_shared<Gather>();
  g->reply = reply;
  auto finish = [this, g] {
    json list = json::array();
    for (auto& [sid, s] : sessions_) {
      json calls = json::array();
      for (auto& [id, cl] : calls_)
        if (cl.sessid == sid) {
          json e = {{"callID", cl.callid}, {"state", cl.state == kAnswered ? "answered" : cl.state == kEarly ? "early" : "dialing"},
                    {"inbound", cl.inbound}, {"peer", cl.peer_uri}, {"held", cl.held}};
          if (auto it = g->stats.find(id); it != g->stats.end() && leg_of(id)) e["media"] = it->second;
          calls.push_back(e);
        }
      Conn* c = s.conn ? conn(s.conn) : nullptr;
      list.push_back({{"sessid", sid}, {"user", s.user}, {"attached", s.conn != 0}, {"peer", c ? c->peer : ""},
                      {"subscriptions", c ? json(c->subs) : json::array()}, {"calls", calls}});
    }
    uint64_t reports_dropped = 0;  // loop -> control reports lost to a full ring (the control loop far behind)
    for (uint32_t k = 1; k < loops_.size(); ++k) reports_dropped += loops_[k]->out_dropped.load(std::memory_order_relaxed);
    json out = {{"sessions", list}, {"connections", conns_.size()},
                {"owner_violations", owner_stats_.violations.load(std::memory_order_relaxed)},
                {"reports_dropped", reports_dropped}};
    host().admin_reply(g->reply, 200, out.dump(-1, ' ', false, json::error_handler_t::replace));
  };
  std::map<uint32_t, std::vector<uint64_t>> by_loop;
  for (auto& [id, leg] : media_) {
    if (!leg->handed() || leg->loop() == 0) g->stats[id] = leg->stats_json();  // the control loop's
    else by_loop[leg->loop()].push_back(id);
  }
  g->pending = by_loop.size();
  if (!g->pending) return finish();
  for (auto& [k, ids] : by_loop)
    to_loop(k, [this, k, ids, g, finish] {
      auto got = std::make_shared<std::vector<std::pair<uint64_t, json>>>();
      for (uint64_t id : ids)
        if (verto::MediaLeg* l = loop_leg(k, id)) got->emplace_back(id, l->stats_json());
      to_control(k, [g, got, finish] {
        for (auto& [id, j] : *got) g->stats[id] = std::move(j);
        if (--g->pending == 0) finish();
      });
    });
}

}  // namespace verto::ws
