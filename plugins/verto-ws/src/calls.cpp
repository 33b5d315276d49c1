// verto-ws: calls, the mapping between Verto and the core. The browser's side (verto.invite,
// answer, bye, info, modify, display, attach) and the core's side (call events on our legs,
// calls offered to a logged-in user), with the cause <-> core code mapping.
#include "verto_ws.hpp"

namespace verto::ws {

// destination_number -> URI: a number with a scheme goes as it is ("gb:dev/ch",
// "intercom:room/101"); any other is a Verto user of this server ("1001" -> "verto:1001").
std::string VertoWs::dest_uri(const std::string& number) const {
  if (number.find(':') != std::string::npos) return number;
  return conf_.default_scheme + ":" + number;
}

json VertoWs::invite(jn_handle h, verto::Message& m) {
  Conn* c = conn(h);
  const json& p = m.params;
  json dp = p.contains("dialogParams") && p["dialogParams"].is_object() ? p["dialogParams"] : json::object();
  std::string callid = str_of(dp, "callID"), number = str_of(dp, "destination_number"), sdp = str_of(p, "sdp");
  if (callid.empty() || callid.size() > 128 || number.empty() || number.size() > 256) {
    bad(*c, "verto.invite without dialogParams.callID or destination_number");
    return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: callID and destination_number are required");
  }
  if (by_callid_.count(callid)) return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: callID in use");
  verto::MediaDesc media;
  junction::webrtc::MediaStreams wmedia;
  std::string why;
  const uint64_t new_id = serial_ + 1;
  std::vector<std::string> bus_names;
  if (media_on()) {
    // The browser's offer as the core sees it: its codecs, and where its media will be on the
    // bus once we answer it (verto/<id>/audio|video).
    junction::webrtc::Description d;
    junction::webrtc::ParseError err;
    if (!junction::webrtc::parse_description(sdp, d, err)) {
      bad(*c, "verto.invite " + callid + ": " + err.reason);
      return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: " + err.reason);
    }
    junction::webrtc::to_media_streams(d, wmedia);
    for (size_t i = 0; i < wmedia.size(); ++i) {
      uint32_t k = wmedia[i].kind;
      wmedia.entries_[i]->bus_stream = k == JN_MEDIA_AUDIO || k == JN_MEDIA_VIDEO ? stream_prefix(new_id) + (k == JN_MEDIA_AUDIO ? JN_MEDIA_AUDIO_SUFFIX : JN_MEDIA_VIDEO_SUFFIX) : "";
    }
    wmedia.finish();
  } else if (!media.parse(sdp, why)) {
    bad(*c, "verto.invite " + callid + ": " + why);
    return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: " + why);
  }
  Call call;
  call.id = ++serial_;
  call.callid = callid;
  call.sessid = c->sessid;
  call.user = c->user;
  call.own_sdp = sdp;
  call.peer_uri = dest_uri(number);
  call.peer_name = str_of(dp, "remote_caller_id_name");
  std::string from = conf_.default_scheme + ":" + c->user, name = str_of(dp, "caller_id_name");
  std::string sessid = c->sessid;
  const uint64_t id = call.id;
  const std::string to = call.peer_uri;
  by_callid_[callid] = id;
  calls_[id] = std::move(call);
  // Acknowledged at once (clients close the socket after 10 s without an answer); the
  // outcome comes as verto.media / verto.answer / verto.bye requests.
  send(h, verto::make_result(m.id, json{{"message", "CALL CREATED"}, {"callID", callid}}, sessid));
  host().info("verto.invite " + callid + " from " + from + " to " + to);
  std::vector<jn_header> hdr;
  if (!media_on()) hdr.push_back({to_jn(kSdpHeader), to_jn(sdp)});  // signalling only: the SDP goes to the other browser
  hdr.push_back({to_jn("app-verto-callid"), to_jn(callid)});
  jn_call_event ev = Host::event(JN_CALL_OFFER);
  ev.from = to_jn(from);
  ev.to = to_jn(to);
  ev.from_name = to_jn(name);
  ev.media = media_on() ? wmedia.desc() : media.desc();
  ev.headers = hdr.data();
  ev.header_count = static_cast<uint32_t>(hdr.size());
  jn_handle leg = 0;
  jn_status st = host().call_originate(ev, id, &leg);  // may deliver events (even REJECT) before it returns
  Call* now = this->call(id);
  if (st != JN_OK) {
    host().info("call " + callid + " to " + to + " not placed: " + (st == JN_ERR_NOT_FOUND ? "nothing routes it" : "status " + std::to_string(st)));
    if (now) {
      request(h, "verto.bye", json{{"callID", callid}, {"cause", st == JN_ERR_NOT_FOUND ? "NO_ROUTE_DESTINATION" : "NORMAL_TEMPORARY_FAILURE"},
                                   {"causeCode", st == JN_ERR_NOT_FOUND ? 3 : 41}});
      forget(id);
    }
    return nullptr;
  }
  if (now) now->leg = leg;
  gauges();
  return nullptr;
}

// Finds the call a request names (and that belongs to this connection's session).
Call* VertoWs::named_call(Conn& c, const json& params) {
  std::string callid = callid_of(params);
  if (callid.empty()) {  // the document's bye sample names none: the session's only call
    Call* only = nullptr;
    for (auto& [id, cl] : calls_)
      if (cl.sessid == c.sessid) {
        if (only) return nullptr;
        only = &cl;
      }
    return only;
  }
  Call* cl = call_by_callid(callid);
  return cl && cl->sessid == c.sessid ? cl : nullptr;
}

json VertoWs::no_call(Conn& c, verto::Message& m) {
  host().info(m.method + " from " + c.user + " for unknown call " + verto::printable(callid_of(m.params)));
  return verto::make_error(m.id, verto::kCallNotFound, "CALL DOES NOT EXIST");
}

json VertoWs::answer(jn_handle h, verto::Message& m) {
  Conn* c = conn(h);
  Call* cl = named_call(*c, m.params);
  if (!cl || !cl->inbound || cl->state == kAnswered) return cl ? verto::make_error(m.id, verto::kInvalidParams, "Invalid params: not an unanswered inbound call") : no_call(*c, m);
  std::string sdp = str_of(m.params, "sdp");
  verto::MediaDesc media;
  junction::webrtc::MediaStreams wmedia;
  std::string why;
  if (verto::MediaLeg* leg = leg_of(cl->id)) {
    // Not handed off yet: the control loop starts its PeerConnection, then gives it to its loop.
    bool applied = !leg->handed() && leg->apply(sdp, why);
    if (!applied) {
      if (why.empty()) why = "media already started";
      // An answer we cannot use ends the call cleanly (488 to the caller), nothing else.
      bad(*c, "verto.answer " + cl->callid + ": " + why);
      json err = verto::make_error(m.id, verto::kInvalidParams, "Invalid params: " + why);
      send(h, err);
      end_call(cl->id, 488, "media: " + why);
      return nullptr;
    }
    leg->subscribe(leg->far_audio_media.bus_stream, leg->far_video_media.bus_stream);
    leg->to_core(wmedia);
    hand_off(*leg);
    host().info("call " + cl->callid + " media: " + leg->summary());
  } else if (!media.parse(sdp, why)) {
    bad(*c, "verto.answer: " + why);
    return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: " + why);
  }
  cl->own_sdp = sdp;
  cl->state = kAnswered;
  std::string callid = cl->callid, sessid = c->sessid;
  jn_handle leg = cl->leg;
  send(h, verto::make_result(m.id, json{{"message", "CALL ANSWERED"}, {"callID", callid}}, sessid));
  host().info("call " + callid + " answered by " + c->user);
  jn_header hdr{to_jn(kSdpHeader), to_jn(sdp)};
  jn_call_event ev = Host::event(JN_CALL_ANSWER);
  bool terminated = wmedia.size() > 0;
  ev.media = terminated ? wmedia.desc() : media.desc();
  ev.headers = terminated ? nullptr : &hdr;
  ev.header_count = terminated ? 0 : 1;
  host().call_send(leg, ev);
  return nullptr;
}

json VertoWs::bye(jn_handle h, verto::Message& m) {
  Conn* c = conn(h);
  Call* cl = named_call(*c, m.params);
  if (!cl) return no_call(*c, m);
  int code = code_of_cause(m.params);
  const Cause& cause = cause_of_code(code);
  std::string callid = cl->callid;
  json r = verto::make_result(m.id, json{{"callID", callid}, {"message", "CALL ENDED"}, {"causeCode", cause.q850}, {"cause", cause.name}}, c->sessid);
  send(h, r);
  host().info("verto.bye " + callid + " from " + c->user + " (" + cause.name + ")");
  uint64_t id = cl->id;
  // An inbound call not yet answered is declined; any other is hung up.
  if (cl->inbound && cl->state != kAnswered && code == 200) code = 603;
  end_call(id, code, cause.name, /*tell_browser=*/false);
  return nullptr;
}

json VertoWs::info(jn_handle h, verto::Message& m) {
  Conn* c = conn(h);
  const json& p = m.params;
  if (p.contains("msg") && p["msg"].is_object()) {
    const json& msg = p["msg"];
    Call* cl = callid_of(p).empty() ? nullptr : named_call(*c, p);
    std::string sessid = c->sessid, user = c->user;
    if (cl && cl->leg) {
      jn_call_event ev = Host::event(JN_CALL_INFO);
      std::string body = json{{"from", user}, {"body", msg.value("body", json())}, {"type", msg.value("type", json())}}.dump(-1, ' ', false, json::error_handler_t::replace);
      ev.info_type = to_jn("chat");
      ev.info_body = to_jn(body);
      host().call_send(cl->leg, ev);
      return verto::make_result(m.id, json{{"message", "MESSAGE SENT"}}, sessid);
    }
    // No call: a chat to a user of this server ("to": "1001" or "1001@domain").
    std::string to = verto::user_of_login(str_of(msg, "to"));
    size_t n = 0;
    std::vector<jn_handle> targets;
    for (auto& [ch, cc] : conns_)
      if (cc.authed && cc.user == to && ch != h) targets.push_back(ch);
    json out = msg;
    out["from"] = user;
    for (jn_handle t : targets) {
      request(t, "verto.info", json{{"msg", out}});
      ++n;
    }
    if (!n) return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: nobody to deliver to");
    return verto::make_result(m.id, json{{"message", "MESSAGE SENT"}, {"delivered", n}}, sessid);
  }
  std::string dtmf = str_of(p, "dtmf");
  if (!dtmf.empty()) {
    for (char d : dtmf)
      if (!((d >= '0' && d <= '9') || d == '*' || d == '#' || (d >= 'A' && d <= 'D') || d == 'w' || d == 'W')) {
        bad(*c, "verto.info dtmf with '" + verto::printable(std::string(1, d)) + "'");
        return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: dtmf");
      }
    Call* cl = named_call(*c, p);
    if (!cl) return no_call(*c, m);
    std::string sessid = c->sessid;
    jn_call_event ev = Host::event(JN_CALL_DTMF);
    ev.dtmf = to_jn(dtmf);
    host().info("dtmf " + dtmf + " on " + cl->callid);
    host().call_send(cl->leg, ev);
    return verto::make_result(m.id, json{{"message", "SENT"}}, sessid);
  }
  // An application event for the other leg (e.g. {"type":"open-door"} to a door station).
  if (auto it = p.find("info"); it != p.end() && it->is_object() && it->contains("type") && (*it)["type"].is_string()) {
    std::string type = (*it)["type"];
    if (type.empty() || type.size() > 64) return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: info.type");
    Call* cl = named_call(*c, p);
    if (!cl) return no_call(*c, m);
    std::string sessid = c->sessid;
    json b = it->value("body", json());
    std::string body = b.is_string() ? b.get<std::string>() : b.is_null() ? std::string() : b.dump(-1, ' ', false, json::error_handler_t::replace);
    jn_call_event ev = Host::event(JN_CALL_INFO);
    ev.info_type = to_jn(type);
    ev.info_body = to_jn(body);
    host().info("info " + verto::printable(type) + " on " + cl->callid + " from " + c->user);
    host().call_send(cl->leg, ev);
    return verto::make_result(m.id, json{{"message", "SENT"}}, sessid);
  }
  return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: verto.info needs msg, dtmf or info");
}

json VertoWs::modify(jn_handle h, verto::Message& m) {
  Conn* c = conn(h);
  Call* cl = named_call(*c, m.params);
  if (!cl) return no_call(*c, m);
  std::string action = str_of(m.params, "action");
  if (cl->state != kAnswered) return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: call not answered");
  if (action == "updateMedia") return update_media(*c, *cl, m);
  bool hold;
  if (action == "hold") hold = true;
  else if (action == "unhold") hold = false;
  else if (action == "toggleHold") hold = !cl->held;
  else return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: action must be hold, unhold, toggleHold or updateMedia");
  cl->held = hold;
  std::string callid = cl->callid, sessid = c->sessid;
  const uint64_t id = cl->id;
  const jn_handle leg = cl->leg;
  host().info("call " + callid + (hold ? " held" : " resumed") + " by " + c->user);
  // The media stops both ways here (we have no music to play: `inactive`), and the far leg gets
  // a re-offer saying so (a SIP leg would stop sending; another browser's leg answers it), then
  // the INFO that tells its user (verto.info{holdState}).
  if (verto::MediaLeg* ml = leg_of(id)) {
    junction::webrtc::MediaStreams wmedia;
    set_hold(*ml, hold);
    if (!hold) want_keyframe(*ml);  // the browser's video resumes with a keyframe for the far leg
    ml->to_core(wmedia);
    if (hold)
      for (size_t i = 0; i < wmedia.size(); ++i) wmedia[i].direction = JN_DIR_INACTIVE;
    jn_call_event re = Host::event(JN_CALL_OFFER);
    re.media = wmedia.desc();
    host().call_send(leg, re);
  }
  jn_call_event ev = Host::event(JN_CALL_INFO);
  std::string body = json{{"holdState", hold ? "held" : "active"}}.dump();
  ev.info_type = to_jn("hold");
  ev.info_body = to_jn(body);
  host().call_send(leg, ev);
  return verto::make_result(m.id, json{{"callID", callid}, {"action", action}, {"holdState", hold ? "held" : "active"}}, sessid);
}

// verto.modify{action: "updateMedia", sdp}: the browser's new offer (a renegotiation, an ICE
// restart) answered in the result with our fresh SDP, as mod_verto does.
json VertoWs::update_media(Conn& c, Call& cl, verto::Message& m) {
  verto::MediaLeg* ml = leg_of(cl.id);
  if (!ml) return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: updateMedia needs the server's media (media = \"webrtc\")");
  std::string sdp = str_of(m.params, "sdp");
  junction::webrtc::Description offer;
  junction::webrtc::ParseError err;
  if (!junction::webrtc::parse_description(sdp, offer, err)) {
    bad(c, "verto.modify updateMedia " + cl.callid + ": " + err.reason);
    return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: " + err.reason);
  }
  // The PeerConnection is its loop's: the update runs there and the answer comes back here
  // (finish_update), which replies to the browser.
  const uint64_t id = cl.id;
  const jn_handle h = c.h;
  const json msg_id = m.id;
  auto run = [this, id, h, msg_id, sdp, offer = std::move(offer)](verto::MediaLeg& leg) {
    std::string answer, why;
    bool fresh = false;
    bool ok = leg.update(offer, answer, fresh, why);
    auto neg = ok ? std::make_shared<junction::webrtc::AnswerResult>(leg.negotiated()) : nullptr;
    to_control(leg.loop(), [this, h, msg_id, id, sdp, ok, fresh, answer, why, neg] {
      finish_update(h, msg_id, id, sdp, ok, fresh, answer, why, neg.get());
    });
  };
  if (!ml->handed()) {
    run(*ml);
    return nullptr;
  }
  const uint32_t k = ml->loop();
  to_loop(k, [this, k, id, h, msg_id, sdp, run]() mutable {
    if (verto::MediaLeg* leg = loop_leg(k, id)) return run(*leg);
    to_control(k, [this, h, msg_id, id, sdp] { finish_update(h, msg_id, id, sdp, false, false, "", "no running media to update", nullptr); });
  });
  return nullptr;
}

// Back on the control loop with the loop's answer to an updateMedia.
void VertoWs::finish_update(jn_handle h, const json& msg_id, uint64_t id, const std::string& sdp, bool ok, bool fresh,
                            const std::string& answer, const std::string& why, const junction::webrtc::AnswerResult* neg) {
  Call* cl = call(id);
  verto::MediaLeg* ml = leg_of(id);
  Conn* c = conn(h);
  if (!cl || !ml) {
    if (c) send(h, verto::make_error(msg_id, verto::kCallNotFound, "CALL DOES NOT EXIST"));
    return;
  }
  std::string callid = cl->callid, sessid = c ? c->sessid : cl->sessid;
  if (!ok) {
    // The call's media is not in a state we can keep: it ends cleanly, nothing else is touched.
    if (c) {
      bad(*c, "verto.modify updateMedia " + callid + ": " + why);
      send(h, verto::make_error(msg_id, verto::kInvalidParams, "Invalid params: " + why));
    }
    end_call(id, 488, "media: " + why);
    return;
  }
  if (neg) ml->set_ctl_negotiated(*neg);
  cl->own_sdp = sdp;
  host().info("call " + callid + " media updated (" + (fresh ? "new transport" : "same transport") + "): " + ml->summary());
  if (c) send(h, verto::make_result(msg_id, json{{"callID", callid}, {"action", "updateMedia"}, {"sdp", answer}}, sessid));
}

json VertoWs::display(jn_handle h, verto::Message& m) {
  Conn* c = conn(h);
  Call* cl = named_call(*c, m.params);
  if (!cl) return no_call(*c, m);
  std::string sessid = c->sessid;
  std::string body = json{{"display_name", str_of(m.params, "display_name")}, {"display_number", str_of(m.params, "display_number")}}.dump(-1, ' ', false, json::error_handler_t::replace);
  jn_call_event ev = Host::event(JN_CALL_INFO);
  ev.info_type = to_jn("display");
  ev.info_body = to_jn(body);
  host().call_send(cl->leg, ev);
  return verto::make_result(m.id, json{{"message", "SENT"}}, sessid);
}

// The browser's answer to our verto.attach (its fresh SDP for a re-attached call).
json VertoWs::attach_answer(jn_handle h, verto::Message& m) {
  Conn* c = conn(h);
  Call* cl = named_call(*c, m.params);
  if (!cl) return no_call(*c, m);
  cl->own_sdp = str_of(m.params, "sdp");
  if (verto::MediaLeg* leg = leg_of(cl->id); leg && !leg->handed()) {
    std::string why;
    bool applied = leg->apply(cl->own_sdp, why);
    if (!applied) {
      bad(*c, "verto.attach " + cl->callid + ": " + why);
      return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: " + why);
    }
    leg->subscribe(leg->far_audio_media.bus_stream, leg->far_video_media.bus_stream);
    hand_off(*leg);
    host().info("call " + cl->callid + " media re-attached: " + leg->summary());
  }
  host().info("call " + cl->callid + " re-attached by " + c->user);
  return verto::make_result(m.id, json{{"message", "CALL ANSWERED"}, {"callID", cl->callid}}, c->sessid);
}

// Ends a call from our side: tells the core (END after answer, REJECT before), the browser
// (verto.bye) unless it asked, and forgets it.
void VertoWs::end_call(uint64_t id, int code, const std::string& reason, bool tell_browser) {
  Call* cl = call(id);
  if (!cl) return;
  Call copy = *cl;
  forget(id);
  if (tell_browser) {
    auto sit = sessions_.find(copy.sessid);
    if (sit != sessions_.end() && sit->second.conn) {
      const Cause& cause = cause_of_code(code);
      request(sit->second.conn, "verto.bye", json{{"callID", copy.callid}, {"cause", cause.name}, {"causeCode", cause.q850}});
    }
  }
  if (copy.leg) {
    bool answered = copy.state == kAnswered || !copy.inbound;  // an A-leg ends with END (a cancel before answer)
    host().call_send(copy.leg, answered ? JN_CALL_END : JN_CALL_REJECT, code, reason);
  }
}

void VertoWs::forget(uint64_t id) {
  retire(id);
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  by_callid_.erase(it->second.callid);
  calls_.erase(it);
  gauges();
}

std::string VertoWs::header_of(const jn_call_event& ev, std::string_view name) {
  if (!JN_HAS_FIELD(&ev, jn_call_event, header_count)) return {};
  for (uint32_t i = 0; i < ev.header_count; ++i)
    if (to_sv(ev.headers[i].name) == name) return std::string(to_sv(ev.headers[i].value));
  return {};
}

jn_handle VertoWs::conn_of_session(const std::string& sessid) {
  auto it = sessions_.find(sessid);
  return it == sessions_.end() ? 0 : it->second.conn;
}

void VertoWs::on_call(jn_handle leg, uint64_t cookie, const jn_call_event& ev) {
  if (cookie == 0 && ev.type == JN_CALL_OFFER) return incoming(leg, ev);
  if (confs_->owns(cookie)) return confs_->on_call(leg, cookie, ev);
  Call* cl = call(cookie);
  if (!cl) {
    host().debug("event " + std::to_string(ev.type) + " for a call no longer known (cookie " + std::to_string(cookie) + ")");
    return;
  }
  if (ev.call_id.len && cl->core_call_id.empty()) cl->core_call_id = std::string(to_sv(ev.call_id));
  jn_handle h = conn_of_session(cl->sessid);
  std::string callid = cl->callid;
  switch (ev.type) {
    case JN_CALL_RINGING: {
      // Early media: a RINGING that carries media (its SDP from a verto leg; other plugins'
      // media gets its SDP from the PeerConnection glue, README "Media").
      std::string sdp = header_of(ev, kSdpHeader);
      if ((!sdp.empty() || (ev.media && ev.media->count)) && cl->state == kDialing) {
        if (media_on() && !cl->inbound && !leg_of(cookie) && has_av(ev.media)) {
          std::string why;
          if (!start_outbound_media(cookie, ev.media, sdp, why)) return media_failed(cookie, why);
          cl = call(cookie);
        }
        cl->state = kEarly;
        cl->far_sdp = sdp;
        if (h) request(h, "verto.media", json{{"callID", callid}, {"sdp", sdp}});
      }
      return;
    }
    case JN_CALL_ANSWER: {
      if (cl->state == kAnswered) {  // the far leg's answer to our re-offer (hold): nothing to tell the browser
        host().debug("call " + callid + ": re-offer answered");
        return;
      }
      std::string sdp = header_of(ev, kSdpHeader);
      if (media_on() && !cl->inbound && has_av(ev.media)) {
        if (!leg_of(cookie)) {
          std::string why;
          if (!start_outbound_media(cookie, ev.media, sdp, why)) return media_failed(cookie, why);
          cl = call(cookie);
        } else {
          sdp.clear();  // answered in verto.media already (early media)
        }
      }
      if (!sdp.empty()) cl->far_sdp = sdp;
      cl->state = kAnswered;
      if (ev.target.len) cl->peer_uri = std::string(to_sv(ev.target));
      json p = {{"callID", callid}};
      if (!sdp.empty()) p["sdp"] = sdp;
      host().info("call " + callid + " answered by " + cl->peer_uri);
      if (h) request(h, "verto.answer", p);
      return;
    }
    case JN_CALL_REJECT:
    case JN_CALL_END: {
      const Cause& cause = cause_of_code(ev.code);
      host().info("call " + callid + " ended by the far side: " + std::to_string(ev.code) + " " + std::string(to_sv(ev.reason)) + " -> " + cause.name);
      forget(cookie);
      if (h) request(h, "verto.bye", json{{"callID", callid}, {"cause", cause.name}, {"causeCode", cause.q850}});
      return;
    }
    case JN_CALL_DTMF:
      if (h) request(h, "verto.info", json{{"callID", callid}, {"dtmf", std::string(to_sv(ev.dtmf))}});
      return;
    case JN_CALL_INFO: {
      std::string type(to_sv(ev.info_type));
      json body = json::parse(to_sv(ev.info_body), nullptr, false);
      if (!h) return;
      if (type == "chat" && body.is_object()) request(h, "verto.info", json{{"callID", callid}, {"msg", body}});
      else if (type == "display" && body.is_object())
        request(h, "verto.display", json{{"callID", callid}, {"display_name", body.value("display_name", "")}, {"display_number", body.value("display_number", "")}});
      else if (type == "hold" && body.is_object())
        request(h, "verto.info", json{{"callID", callid}, {"holdState", body.value("holdState", "")}});
      else request(h, "verto.info", json{{"callID", callid}, {"info", {{"type", type}, {"body", body.is_discarded() ? json(std::string(to_sv(ev.info_body))) : body}}}});
      return;
    }
    case JN_CALL_OFFER:
      return reoffer(*cl, ev);
    default: return;
  }
}

void VertoWs::incoming(jn_handle leg, const jn_call_event& ev) {
  std::string target(to_sv(ev.target.len ? ev.target : ev.to));
  if (Conferences::is_conference_uri(target)) return confs_->join(leg, ev);  // a conference member (conference.cpp)
  std::string user = target.substr(target.find(':') == std::string::npos ? 0 : target.find(':') + 1);
  user = verto::user_of_login(user);
  // The newest logged-in connection of the user takes the call.
  jn_handle h = 0;
  std::string sessid;
  for (auto& [sid, s] : sessions_)
    if (s.user == user && s.conn) {
      Conn* c = conn(s.conn);
      if (c && c->authed && !c->closing && (!h || c->opened_ms >= conn(h)->opened_ms)) {
        h = s.conn;
        sessid = sid;
      }
    }
  if (!h) {
    host().info("call to " + target + " rejected: " + verto::printable(user) + " is not logged in");
    host().call_send(leg, JN_CALL_REJECT, 480, "offline");
    return;
  }
  Call cl;
  cl.id = ++serial_;
  cl.callid = verto::new_uuid();
  cl.sessid = sessid;
  cl.user = user;
  cl.leg = leg;
  cl.inbound = true;
  cl.far_sdp = header_of(ev, kSdpHeader);
  cl.peer_uri = std::string(to_sv(ev.from));
  cl.peer_name = std::string(to_sv(ev.from_name));
  cl.core_call_id = std::string(to_sv(ev.call_id));
  if (cl.peer_name.empty()) cl.peer_name = cl.peer_uri;
  host().leg_set_cookie(leg, cl.id);
  if (media_on() && has_av(ev.media)) {
    // We terminate the browser's WebRTC: our own offer for what the caller has.
    std::string why, offer;
    auto ml = new_leg(cl.id, why);
    if (ml) far_media(ev.media, ml->far_audio_media, ml->far_video_media);
    if (!ml || !ml->offer(ml->far_audio_media, ml->far_video_media, offer, why)) {
      if (ml) ml->release();
      host().info("call to " + target + " rejected: media: " + why);
      host().call_send(leg, JN_CALL_REJECT, 488, "media: " + why);
      return;
    }
    cl.far_sdp = offer;
    cl.media = true;
    media_[cl.id] = std::move(ml);  // handed to its loop once the browser answers
  }
  std::string callid = cl.callid;
  json p = {{"callID", callid}, {"sdp", cl.far_sdp}, {"caller_id_name", cl.peer_name}, {"caller_id_number", cl.peer_uri},
            {"callee_id_name", user}, {"callee_id_number", user}, {"display_direction", "outbound"}};
  by_callid_[callid] = cl.id;
  calls_[cl.id] = std::move(cl);
  host().info("call from " + std::string(to_sv(ev.from)) + " offered to " + user + " as " + callid);
  request(h, "verto.invite", p);
  host().call_send(leg, JN_CALL_RINGING);
  gauges();
}

// A re-offer from the far leg in an answered call (its hold / resume, or new media): answered
// with our streams in the mirrored direction; the far side's `inactive` / `sendonly` holds our
// browser's media (its frames are not taken, none are sent to it), anything else resumes it.
// The browser's PeerConnection is not renegotiated: the far leg's INFO `hold` tells its user.
void VertoWs::reoffer(Call& cl, const jn_call_event& ev) {
  verto::MediaLeg* ml = leg_of(cl.id);
  if (!ml || cl.state != kAnswered || !has_av(ev.media)) {
    host().debug("re-offer on " + cl.callid + " ignored (no media of ours to change)");
    return;
  }
  uint32_t far_dir = JN_DIR_SENDRECV;
  for (uint32_t i = 0; i < ev.media->count; ++i)
    if (const jn_media_stream* st = ev.media->streams[i]; st && (st->kind == JN_MEDIA_AUDIO || st->kind == JN_MEDIA_VIDEO)) {
      far_dir = st->direction;
      break;
    }
  const bool held = far_dir == JN_DIR_INACTIVE || far_dir == JN_DIR_SENDONLY;
  junction::webrtc::MediaStreams wmedia;
  set_hold(*ml, held || cl.held);  // our own user's hold stays until they resume
  if (!ml->ctl_held) want_keyframe(*ml);
  ml->to_core(wmedia);
  uint32_t mirror = far_dir;
  if (far_dir == JN_DIR_SENDONLY) mirror = JN_DIR_RECVONLY;
  else if (far_dir == JN_DIR_RECVONLY) mirror = JN_DIR_SENDONLY;
  if (held || mirror != JN_DIR_SENDRECV)
    for (size_t i = 0; i < wmedia.size(); ++i) wmedia[i].direction = mirror;
  host().info("call " + cl.callid + (held ? " held" : " resumed") + " by the far side (re-offer)");
  jn_call_event ans = Host::event(JN_CALL_ANSWER);
  ans.media = wmedia.desc();
  host().call_send(cl.leg, ans);
}

}  // namespace verto::ws
