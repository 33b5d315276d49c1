// verto-ws: the state codec of a hot reload. save_state / restore_state carry connections,
// sessions, calls and the DTLS certificate; answered calls get fresh media afterwards.
#include "verto_ws.hpp"

namespace verto::ws {

jn_status VertoWs::save_state(std::string& out) {
  junction::util::StateOut st;
  json conns = json::array(), sessions = json::array(), calls = json::array();
  for (auto& [h, c] : conns_) conns.push_back(c);
  for (auto& [id, s] : sessions_) sessions.push_back(s);
  for (auto& [id, c] : calls_) calls.push_back(c);
  st.set("endpoint", endpoint_).set("tick", tick_).set("heartbeat", heartbeat_).set("heartbeat_ms", conf_.heartbeat_ms);
  st.set("serial", serial_).set("server_id", server_id_).set("event_serno", event_serno_).set("started_ms", started_ms_);
  st.set("conns", conns).set("sessions", sessions).set("calls", calls);
  st.set("media_tick", media_tick_);
  json legs = json::object();
  for (auto& [id, leg] : media_) {
    leg->drop_queued();  // frames handed to a media loop and not sent yet go back to the pool (the loops are paused)
    legs[std::to_string(id)] = leg->save();
  }
  json graves = json::array();
  for (auto& g : graveyard_) {
    g.leg->drop_queued();  // the loops are paused: nothing drains these rings meanwhile
    graves.push_back(g.leg->save());
  }
  st.set("media_legs", legs).set("media_graves", graves);
  if (cert_.valid()) st.set("cert", cert_.to_pem());
  st.set("conferences", confs_->save());
  out = st.encode();
  return JN_OK;
}

jn_status VertoWs::restore_state(uint32_t schema, std::string_view data) {
  junction::util::StateIn s;
  std::string error;
  if (jn_status st = s.parse(schema, kStateSchema, kStateSchema, data, error); st != JN_OK) {
    host().set_error(error);
    return st;
  }
  s.read("endpoint", endpoint_);
  s.read("tick", tick_);
  s.read("heartbeat", heartbeat_);
  s.read("serial", serial_);
  s.read("server_id", server_id_);
  s.read("event_serno", event_serno_);
  s.read("started_ms", started_ms_);
  s.read("media_tick", media_tick_);
  if (media_on()) {
    if (!init_media(s.get<std::string>("cert", ""))) return JN_ERR_INTERNAL;
    if (!media_tick_) host().timer(kMediaTickMs, kMediaTickMs, kMediaTickCookie, &media_tick_);
  }
  for (auto& c : s["conns"]) {
    Conn conn = c.get<Conn>();
    conns_[conn.h] = conn;
  }
  for (auto& c : s["sessions"]) {
    Session ss = c.get<Session>();
    sessions_[ss.sessid] = ss;
  }
  for (auto& c : s["calls"]) {
    Call call = c.get<Call>();
    by_callid_[call.callid] = call.id;
    calls_[call.id] = call;
  }
  confs_->restore(s["conferences"]);
  // A PeerConnection does not cross a reload: the old legs' sockets and subscriptions are
  // closed, and each answered call gets a fresh offer (verto.attach) on the next media tick.
  for (auto& g : s["media_graves"]) verto::MediaLeg::close_saved(host(), g);
  if (s["media_legs"].is_object())
    for (auto& [k, saved] : s["media_legs"].items()) {
      verto::MediaLeg::close_saved(host(), saved);
      uint64_t id = std::strtoull(k.c_str(), nullptr, 10);
      Call* cl = call(id);
      if (!cl || !media_on()) continue;
      junction::webrtc::LocalMedia a, v;
      if (cl->state == kAnswered && verto::MediaLeg::far_from_saved(saved, a, v)) reoffer_.push_back({id, std::move(a), std::move(v)});
      else cl->media = false;
    }
  if (s.get<uint32_t>("heartbeat_ms", 0) != conf_.heartbeat_ms) {
    if (heartbeat_) host().stop_timer(heartbeat_);
    heartbeat_ = 0;
    if (conf_.heartbeat_ms) host().timer(conf_.heartbeat_ms, conf_.heartbeat_ms, kHeartbeatCookie, &heartbeat_);
  }
  for (auto& p : conf_.core_events) host().event_subscribe(p);
  host().info("restored " + std::to_string(conns_.size()) + " connection(s), " + std::to_string(sessions_.size()) + " session(s), " +
              std::to_string(calls_.size()) + " call(s) from generation " + std::to_string(generation_ ? generation_ - 1 : 0));
  return JN_OK;
}

// After a hot reload: new media for each answered call, offered to its browser like a re-attach.
void VertoWs::reoffer_after_reload() {
  std::vector<Reoffer> todo;
  todo.swap(reoffer_);
  for (auto& r : todo) {
    Call* cl = call(r.id);
    if (!cl) continue;
    jn_handle h = conn_of_session(cl->sessid);
    std::string why, offer;
    auto leg = new_leg(r.id, why);
    if (leg) {
      leg->far_audio_media = r.audio;
      leg->far_video_media = r.video;
    }
    if (!leg || !leg->offer(leg->far_audio_media, leg->far_video_media, offer, why)) {
      if (leg) leg->release();
      host().warn("call " + cl->callid + ": no media after the reload: " + why);
      cl->media = false;
      continue;
    }
    media_[r.id] = std::move(leg);  // handed to its loop once the browser answers the attach
    cl = call(r.id);
    if (h) request(h, "verto.attach", json{{"callID", cl->callid}, {"sdp", offer}, {"caller_id_name", cl->peer_name},
                                           {"caller_id_number", cl->peer_uri}, {"display_direction", cl->inbound ? "inbound" : "outbound"}});
    host().info("call " + cl->callid + ": fresh media offered after the reload");
  }
}

}  // namespace verto::ws
