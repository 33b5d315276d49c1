// verto-ws: login and sessions. Password (PBKDF2 on the worker pool) and token logins, the
// server-wide sessid (punt, "Session in use"), clientReady with the re-attached calls.
#include "verto_ws.hpp"

namespace verto::ws {

json VertoWs::login(jn_handle h, verto::Message& m) {
  Conn* c = conn(h);
  const json& p = m.params;
  std::string sessid = str_of(p, "sessid");
  std::string login = str_of(p, "login"), passwd = str_of(p, "passwd");
  std::string token;
  if (auto lp = p.find("loginParams"); lp != p.end()) token = str_of(*lp, "xui_sessid");
  if (sessid.empty() || sessid.size() > 128 || !verto::valid_channel(sessid)) {
    bad(*c, "login without a valid sessid");
    return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: sessid");
  }
  if (c->authed && c->sessid != sessid) return verto::make_error(m.id, verto::kLoginFailed, "Already logged in with another sessid");
  if (login.empty() && token.empty()) {
    // Verto clients send this first on reconnect: the answer makes them send credentials.
    host().debug("credential-less login from " + c->peer + ": -32000");
    return verto::make_error(m.id, verto::kAuthRequired, "Authentication Required");
  }
  std::string user = verto::user_of_login(login);
  if (!token.empty()) {
    std::string rec;
    json t = host().kv_get("token/" + verto::sha256_hex(token), rec) ? json::parse(rec, nullptr, false) : json();
    if (!t.is_object() || t.value("exp", uint64_t{0}) <= unix_now() || (!user.empty() && t.value("user", "") != user)) {
      host().info("login refused for " + c->peer + ": " + (t.is_object() ? (t.value("exp", uint64_t{0}) <= unix_now() ? "token expired" : "token of another user") : "unknown token"));
      host().counter_add("verto_logins_total", 1, "result=\"refused\"");
      return verto::make_error(m.id, verto::kLoginFailed, "Login Incorrect");
    }
    return finish_login(h, m.id, t.value("user", ""), sessid, "token");
  }
  std::string rec;
  json u = verto::valid_user(user) && host().kv_get("user/" + user, rec) ? json::parse(rec, nullptr, false) : json();
  auto job = std::make_unique<KdfJob>();
  job->kind = KdfJob::Verify;
  job->password = passwd;
  // An unknown user is hashed against a dummy record all the same: the answer takes as long.
  job->record = u.is_object() ? u.value("hash", "") : dummy_record();
  job->conn = h;
  job->id = m.id;
  job->user = u.is_object() ? user : "";
  job->sessid = sessid;
  uint64_t cookie = ++serial_;
  jn_handle work = 0;
  KdfJob* raw = job.get();
  jobs_[cookie] = std::move(job);
  if (jn_status st = host().work_submit(&KdfJob::run, raw, cookie, &work); st != JN_OK) {
    jobs_.erase(cookie);
    host().warn("login of " + user + " not checked: worker pool refused (status " + std::to_string(st) + ")");
    return verto::make_error(m.id, verto::kLoginFailed, "Login Incorrect: server busy");
  }
  return nullptr;  // answered in on_work_done
}

std::string VertoWs::dummy_record() {
  if (dummy_.empty()) dummy_ = verto::password_hash("dummy", conf_.kdf_iterations);
  return dummy_;
}

void VertoWs::on_work_done(jn_handle, uint64_t cookie, jn_status status) {
  auto it = jobs_.find(cookie);
  if (it == jobs_.end()) return;
  std::unique_ptr<KdfJob> job = std::move(it->second);
  jobs_.erase(it);
  if (job->kind == KdfJob::Hash) {
    if (status != JN_OK || !job->ok) {
      host().admin_reply(job->reply, 500, json{{"error", "hashing failed"}}.dump());
      return;
    }
    json rec = job->user_record;
    rec["hash"] = job->result;
    std::string user = rec["user"];
    host().kv_put("user/" + user, rec.dump());
    host().info("user " + user + " stored (pbkdf2-sha256, " + std::to_string(conf_.kdf_iterations) + " iterations)");
    host().admin_reply(job->reply, 200, json{{"user", user}, {"stored", true}}.dump());
    return;
  }
  Conn* c = conn(job->conn);
  if (!c || c->closing) return;
  if (status != JN_OK || !job->ok || job->user.empty()) {
    host().info("login refused for " + c->peer + ": " + (job->user.empty() ? "unknown user" : "wrong password"));
    host().counter_add("verto_logins_total", 1, "result=\"refused\"");
    send(job->conn, verto::make_error(job->id, verto::kLoginFailed, "Login Incorrect"));
    return;
  }
  json r = finish_login(job->conn, job->id, job->user, job->sessid, "password");
  if (!r.is_null()) send(job->conn, r);
}

// Credentials are good: bind the sessid (punting an older socket of the same user, refusing
// another user's), answer, then clientReady with the calls re-attached.
json VertoWs::finish_login(jn_handle h, const json& id, const std::string& user, const std::string& sessid, const char* how) {
  Conn* c = conn(h);
  auto sit = sessions_.find(sessid);
  if (sit != sessions_.end() && sit->second.user != user) {
    host().warn("login of " + user + " from " + c->peer + " refused: sessid " + verto::printable(sessid) + " belongs to another user");
    host().counter_add("verto_logins_total", 1, "result=\"session_in_use\"");
    return verto::make_error(id, verto::kLoginFailed, "Session in use");
  }
  if (sit != sessions_.end() && sit->second.conn && sit->second.conn != h) {
    jn_handle old = sit->second.conn;
    if (Conn* o = conn(old)) {
      host().info("sessid " + verto::printable(sessid) + " of " + user + " taken over by " + c->peer + ": verto.punt to " + o->peer);
      request(old, "verto.punt", json::object());
      o->sessid.clear();
      o->authed = false;
      o->closing = true;
      host().ws_close(old);
    }
  }
  Session& s = sessions_[sessid];
  s.sessid = sessid;
  s.user = user;
  s.conn = h;
  s.detached_ms = 0;
  c = conn(h);
  c->authed = true;
  c->user = user;
  c->sessid = sessid;
  host().info("login " + user + " (" + how + ") from " + c->peer + " sessid " + verto::printable(sessid));
  host().counter_add("verto_logins_total", 1, "result=\"ok\"");
  send(h, verto::make_result(id, json{{"message", "logged in"}}, sessid));
  json reattached = json::array();
  std::vector<uint64_t> ids;
  for (auto& [cid, call] : calls_)
    if (call.sessid == sessid && call.state == kAnswered) ids.push_back(cid);
  for (uint64_t cid : ids) {
    Call* cl = call(cid);
    reattached.push_back(cl->callid);
    std::string sdp = cl->far_sdp;
    if (verto::MediaLeg* old = leg_of(cid)) {
      // The page's PeerConnection is gone: a new leg, a fresh offer for what the far leg has.
      std::string why, offer;
      auto leg = new_leg(cid, why);
      if (leg) {
        leg->far_audio_media = old->far_audio_media;
        leg->far_video_media = old->far_video_media;
      }
      if (!leg || !leg->offer(leg->far_audio_media, leg->far_video_media, offer, why)) {
        if (leg) leg->release();
        host().warn("call " + cl->callid + ": no fresh offer for verto.attach: " + why);
      } else {
        retire(cid);
        media_[cid] = std::move(leg);  // handed to its loop once the browser answers the attach
        sdp = offer;
      }
      cl = call(cid);
    }
    request(h, "verto.attach", json{{"callID", cl->callid}, {"sdp", sdp}, {"caller_id_name", cl->peer_name},
                                    {"caller_id_number", cl->peer_uri}, {"callee_id_name", user}, {"callee_id_number", user},
                                    {"display_direction", cl->inbound ? "inbound" : "outbound"}});
    host().info("call " + cl->callid + " re-attached to " + user);
  }
  request(h, "verto.clientReady", json{{"reattached_sessions", reattached}});
  if (!reattached.empty()) confs_->session_attached(sessid);  // conference members: pvtData again
  gauges();
  return nullptr;
}

}  // namespace verto::ws
