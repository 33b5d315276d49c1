// intercom-json: calls (README "Calls"): call_req from a device (an A-leg through the core), an
// OFFER to an intercom: URI (a B-leg), the call messages from devices and the call-leg events.

#include "intercom_json.hpp"

#include <algorithm>

namespace intercom_json {

// dest -> URI: dest.id "scheme:..." as is; dest.id of a screen/box (or untyped) -> the family's
// room; dest.id of another type -> the device; no id -> dest.ip/port (the box dials it).
std::string IntercomJson::dest_uri(const Endpoint& d, int& guessed_type) const {
  guessed_type = d.type;
  if (!d.id.empty()) {
    if (d.id.find(':') != std::string::npos) {
      if (!guessed_type) guessed_type = conf_.foreign_peer_type;
      return d.id;
    }
    if (d.type == 0 || d.type == kInnerScreen || d.type == kInnerBox) {
      if (!guessed_type) guessed_type = kInnerScreen;
      return "intercom:room/" + d.id;
    }
    return "intercom:device/" + d.id;
  }
  if (!d.ip.empty()) {
    if (!guessed_type) guessed_type = kOuterBox;
    return "intercom:addr/" + d.ip + ":" + std::to_string(d.port);
  }
  return {};
}

// One token of the connection's call_req bucket, refilled at call_req_per_min up to call_req_burst.
bool IntercomJson::take_call_token(Conn& c) {
  if (conf_.call_req_per_min == 0) return true;
  const uint64_t t = now();
  const double burst = conf_.call_req_burst;
  if (c.call_tokens < 0) c.call_tokens = burst;
  else c.call_tokens = std::min(burst, c.call_tokens + double(t - c.call_tokens_at) * conf_.call_req_per_min / 60000.0);
  c.call_tokens_at = t;
  if (c.call_tokens < 1) return false;
  c.call_tokens -= 1;
  return true;
}

void IntercomJson::on_call_req(jn_handle h, const Message& m) {
  if (Conn* fc = conn(h); !take_call_token(*fc)) {
    // A flood: each excess call_req gets the error message and is counted; the log line is
    // written once per flood (it would flood the log too). Not counted toward bad_limit: the
    // messages are well formed.
    host().counter_add("intercom_call_req_limited_total", 1);
    if (!fc->call_limited) {
      fc->call_limited = true;
      host().warn("call_req flood from " + fc->peer + (fc->dev.empty() ? "" : " (" + fc->dev + ")") + ": refusing beyond " +
                  std::to_string(conf_.call_req_burst) + " at once and " + std::to_string(conf_.call_req_per_min) +
                  " per minute (intercom_call_req_limited_total counts the refusals)");
    }
    soft_error(h, m.id, 429, "rate-limited",
               "more than " + std::to_string(conf_.call_req_per_min) + " call_req per minute (burst " +
                   std::to_string(conf_.call_req_burst) + ") on this connection");
    return;
  }
  conn(h)->call_limited = false;
  if (!m.values.is_object()) return bad_input(h, values_error(m, "values must be an object"));
  std::string sid, why;
  if (!read_text(m.values, "sid", sid) || sid.empty()) return bad_input(h, values_error(m, "'sid' (string) is required"));
  Endpoint src, dest;
  if (!read_endpoint(m.values.value("src", json()), src, why) || !read_endpoint(m.values.value("dest", json()), dest, why))
    return bad_input(h, values_error(m, why));
  Conn* c = conn(h);
  bool allowed_door = false;
  if (!c->joined && conf_.require_join && !c->outbound) {
    allowed_door = door_allowed(c->peer);
    if (!allowed_door) {
      host().info("call_req " + sid + " from " + c->peer + " refused: not joined, and not a door address of door_allow");
      host().counter_add("intercom_calls_refused_total", 1, "reason=\"not-joined\"");
      send(h, "call_reject", {{"sid", sid}, {"reason", "not-joined"}, {"message", "send join_family with a token first"}});
      return;
    }
  }
  if (by_party_.count({h, sid})) return soft_error(h, m.id, 409, "duplicate-sid", "a call with sid " + sid + " is already up on this connection");

  Call call;
  call.id = ++serial_;
  call.a_side = true;
  call.caller_sid = sid;
  // An allow-listed unjoined peer is a door unit, whatever src.type it claims.
  call.caller_type = c->joined ? c->type : (allowed_door || !src.type ? kOuterBox : src.type);
  if (c->joined) {
    call.from = c->type == kInnerScreen ? "intercom:room/" + c->room : "intercom:device/" + c->dev;
    if (src.id.empty()) src.id = c->type == kInnerScreen ? c->room : c->dev;
  } else {
    call.from = "intercom:addr/" + c->peer;
  }
  src.type = call.caller_type;
  if (src.ip.empty() && !c->peer.empty()) {
    src.ip = peer_host(c->peer);
  }
  int guessed = 0;
  call.to = dest_uri(dest, guessed);
  if (call.to.empty()) {
    send(h, "call_reject", {{"sid", sid}, {"reason", "no-dest"}, {"message", "dest.id or dest.ip/port is required"}});
    return;
  }
  call.callee_type = guessed;
  Server server = server_for(call.caller_type, guessed);
  call.src = neutral_endpoint(src, server, conf_.net);
  call.dest = neutral_endpoint(dest, server, conf_.net);
  Party p;
  p.conn = h;
  p.sid = sid;
  p.type = call.caller_type;
  p.dev = c->dev;
  p.last_rx = p.last_tx = now();
  call.parties.push_back(p);

  MediaOut media;
  // To another plugin (not an intercom: address) the screen's streams are also offered as bus
  // streams; they are pulled only if the answer shows the far leg wants them.
  if (conf_.bus_media && call.to.compare(0, kScheme.size(), kScheme) != 0 && call.src.any_stream()) {
    call.bus_base = unique_bus_base(sid, call.id);
    add_bus_streams(media, call, call.src, true);
  }
  add_streams(media, call.src, call.dest, server);
  media.add_data(data_params(sid, call.src, call.dest, call.caller_type, guessed, c->dev));
  const uint64_t id = call.id;
  const std::string to = call.to, from = call.from;  // the event points at these, not at `call`
  jn_call_event ev = Host::event(JN_CALL_OFFER);
  ev.from = to_jn(from);
  ev.to = to_jn(to);
  ev.media = media.finish();
  calls_[id] = std::move(call);
  by_party_[{h, sid}] = id;
  gauge();
  host().info("call_req " + sid + " from " + from + " to " + to);
  jn_handle leg = 0;
  // The core may deliver events for this leg (even its REJECT) before call_originate returns.
  jn_status st = host().call_originate(ev, id, &leg);
  Call* now_call = this->call(id);
  if (st != JN_OK) {
    if (now_call) drop_call(id);
    std::string reason = st == JN_ERR_NOT_FOUND ? "no-route" : "error";
    send(h, "call_reject", {{"sid", sid}, {"reason", reason}, {"message", "nothing routes " + to + " (status " + std::to_string(st) + ")"}});
    return;
  }
  if (now_call) now_call->leg = leg;
}

void IntercomJson::add_streams(MediaOut& media, const Endpoint& src, const Endpoint& dest, Server server) {
  // src.* are pushed by the caller, dest.* by the callee; directions are the caller's view.
  media.add(JN_MEDIA_AUDIO, src.audio, "src", server, JN_DIR_SENDONLY);
  media.add(JN_MEDIA_VIDEO, src.video, "src", server, JN_DIR_SENDONLY);
  media.add(JN_MEDIA_AUDIO, dest.audio, "dest", server, JN_DIR_RECVONLY);
  media.add(JN_MEDIA_VIDEO, dest.video, "dest", server, JN_DIR_RECVONLY);
}

// Forget a call locally (its leg is dead or was never made).
void IntercomJson::drop_call(uint64_t id) {
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  stop_pulls(id);
  stop_push(id);
  for (auto& p : it->second.parties) by_party_.erase({p.conn, p.sid});
  std::vector<jn_handle> dialled;
  for (auto& p : it->second.parties)
    if (Conn* c = conn(p.conn); c && c->outbound && c->dial_call == id) dialled.push_back(p.conn);
  calls_.erase(it);
  // A connection the box dialled for this call is closed with it (after the queued call_end).
  for (jn_handle h : dialled)
    if (Conn* c = conn(h); c && !c->closing) {
      c->closing = true;
      host().tcp_close(h);
    }
  gauge();
}

// The caller's leg hears from the core.
void IntercomJson::a_leg_event(uint64_t id, const jn_call_event& ev) {
  Call* c = call(id);
  const Party p = c->parties.front();
  if (ev.call_id.len && c->call_id.empty()) c->call_id = std::string(to_sv(ev.call_id));
  switch (ev.type) {
    case JN_CALL_RINGING: return;  // the document has no ringing message
    case JN_CALL_ANSWER: {
      MediaIn in = read_media(ev.media, true);
      c->answered = true;
      c->target = std::string(to_sv(ev.target));
      c->callee_type = in.dest_type ? in.dest_type : (in.intercom ? c->callee_type : conf_.foreign_peer_type);
      Server server = server_for(c->caller_type, c->callee_type);
      // What the callee answered with (or what was offered, when it added nothing).
      Endpoint src = c->src, dest = c->dest;
      if (!in.src.audio.empty()) src.audio = in.src.audio;
      if (!in.src.video.empty()) src.video = in.src.video;
      if (!in.dest.audio.empty()) dest.audio = in.dest.audio;
      if (!in.dest.video.empty()) dest.video = in.dest.video;
      c->src = neutral_endpoint(src, server, conf_.net);
      c->dest = neutral_endpoint(dest, server, conf_.net);
      // The far leg wants bus streams: the calling screen's streams (src) go on the bus, under
      // the names the offer announced.
      if (conf_.bus_media && !in.intercom && wants_bus(ev.media) && !c->bus_base.empty()) {
        c->bus = true;
        start_pulls(*c, c->src);
        // Its own bus streams go to the screen under the dest id the screen named (or one of
        // ours, told in call_accept).
        if (!conf_.stream_push_url.empty()) {
          far_bus_streams(ev.media, *c);
          if (!c->far_audio_bus.empty() || !c->far_video_bus.empty()) {
            const std::string& named = !c->dest.video.empty() ? c->dest.video : c->dest.audio;
            c->push_id = named.empty() ? "jn" + bus_name(c->call_id.empty() ? std::to_string(c->id) : c->call_id) : bare_id(named);
            Endpoint d = c->dest;
            if (!c->far_audio_bus.empty() && d.audio.empty()) d.audio = c->push_id;
            if (!c->far_video_bus.empty() && d.video.empty()) d.video = c->push_id;
            c->dest = neutral_endpoint(d, server, conf_.net);
            start_push(*c);
          }
        }
      }
      c->parties.front().last_rx = c->parties.front().last_tx = now();
      json values = {{"sid", p.sid}};
      Endpoint vs = view_endpoint(c->src, server, p.type, conf_.net), vd = view_endpoint(c->dest, server, p.type, conf_.net);
      if (vs.any_stream()) values["src"] = stream_fields(vs);
      if (vd.any_stream()) values["dest"] = stream_fields(vd);
      host().info("call " + p.sid + " answered by " + c->target);
      send(p.conn, "call_accept", values);
      return;
    }
    case JN_CALL_REJECT:
    case JN_CALL_END: {
      std::string reason, message;
      split_reason(to_sv(ev.reason), reason, message);
      if (reason.empty()) reason = ev.type == JN_CALL_REJECT ? "rejected" : "hangup";
      json values = {{"sid", p.sid}, {"reason", reason}, {"message", message}, {"code", ev.code}};
      send(p.conn, ev.type == JN_CALL_REJECT ? "call_reject" : "call_end", values);
      drop_call(id);
      return;
    }
    case JN_CALL_INFO:
      if (to_sv(ev.info_type) == "open-door") send(p.conn, "open_door", {{"sid", p.sid}});
      return;
    default: return;
  }
}

json IntercomJson::stream_fields(const Endpoint& e) {
  json j = json::object();
  if (!e.audio.empty()) j["audiostreamid"] = e.audio;
  if (!e.video.empty()) j["videostreamid"] = e.video;
  return j;
}

void IntercomJson::incoming_offer(jn_handle leg, const jn_call_event& ev) {
  std::string target(to_sv(ev.target));
  std::string from(to_sv(ev.from));
  MediaIn in = read_media(ev.media, false);
  Call call;
  call.id = ++serial_;
  call.leg = leg;
  call.call_id = std::string(to_sv(ev.call_id));
  call.from = from;
  call.to = std::string(to_sv(ev.to));
  call.target = target;
  call.caller_type = in.src_type ? in.src_type : conf_.foreign_peer_type;
  call.caller_sid = in.sid.empty() ? call.call_id : in.sid;
  call.src = in.src;
  call.dest = in.dest;
  if (!in.intercom) call.src.id = from;  // a caller of another plugin is named by its URI
  call.src.type = call.caller_type;
  call.exclude_dev = in.src_dev;
  call.bus = conf_.bus_media && !in.intercom && wants_bus(ev.media);
  if (call.bus && !conf_.stream_push_url.empty()) {
    // The far leg's own bus streams (a browser's microphone and camera) go to the screen by RTMP
    // under a stream id of ours, told to the screen as the caller's (src) streams.
    far_bus_streams(ev.media, call);
    if ((!call.far_audio_bus.empty() || !call.far_video_bus.empty()) && !call.src.any_stream()) {
      call.push_id = "jn" + bus_name(call.call_id.empty() ? std::to_string(call.id) : call.call_id);
      if (!call.far_audio_bus.empty()) call.src.audio = call.push_id;
      if (!call.far_video_bus.empty()) call.src.video = call.push_id;
    }
  }
  host().leg_set_cookie(leg, call.id);

  auto reject = [&](int code, const std::string& reason) {
    host().info("call " + call.call_id + " to " + target + " rejected: " + reason);
    host().call_send(leg, JN_CALL_REJECT, code, reason);
  };
  if (target.compare(0, kScheme.size(), kScheme) != 0) return reject(404, "not-intercom");
  std::string rest = target.substr(kScheme.size());
  std::vector<jn_handle> ring;
  if (rest.compare(0, 5, "room/") == 0) {
    std::string room = rest.substr(5);
    call.callee_type = kInnerScreen;
    if (call.dest.id.empty()) call.dest.id = room;
    if (auto r = rooms_.find(room); r != rooms_.end())
      for (jn_handle h : r->second) {
        Conn* c = conn(h);
        if (c && c->connected && !c->closing && (call.exclude_dev.empty() || c->dev != call.exclude_dev)) ring.push_back(h);
      }
    if (ring.empty()) {
      std::string fam;
      return reject(host().kv_get("family/" + room, fam) ? 480 : 404, host().kv_get("family/" + room, fam) ? "offline" : "no-such-family");
    }
  } else if (rest.compare(0, 7, "device/") == 0) {
    std::string dev = rest.substr(7);
    auto d = devices_.find(dev);
    if (d == devices_.end()) {
      std::string rec;
      return reject(host().kv_get("device/" + dev, rec) ? 480 : 404, host().kv_get("device/" + dev, rec) ? "offline" : "no-such-device");
    }
    Conn* c = conn(d->second);
    call.callee_type = c->type;
    if (call.dest.id.empty()) call.dest.id = c->type == kInnerScreen ? c->room : dev;
    ring.push_back(d->second);
  } else if (rest.compare(0, 5, "addr/") == 0) {
    if (!conf_.dial_out) return reject(403, "dial-out-disabled");
    std::string addr = rest.substr(5);
    jn_addr a{};
    size_t colon = addr.rfind(':');
    int port = colon == std::string::npos ? 0 : std::atoi(addr.c_str() + colon + 1);
    if (colon == std::string::npos || !parse_ipv4(addr.substr(0, colon), a) || port <= 0 || port > 65535)
      return reject(404, "bad-address");
    call.callee_type = valid_peer_type(in.dest_type) && !home_side(in.dest_type) ? in.dest_type : kOuterBox;
    if (call.dest.ip.empty()) call.dest.ip = addr.substr(0, colon);
    if (!call.dest.port) call.dest.port = port;
    jn_handle h = 0;
    jn_status st = host().tcp_connect(addr, JN_FRAME_DELIM, 0, conf_.max_message, 101, &h);
    if (st != JN_OK) return reject(503, "unreachable");
    Conn c;
    c.h = h;
    c.peer = addr;
    c.outbound = true;
    c.connected = false;
    c.type = call.callee_type;
    c.dev = "addr/" + addr;
    c.dial_call = call.id;
    conns_[h] = c;
    call.dialing = true;
    ring.push_back(h);
  } else {
    return reject(404, "unknown-intercom-address");
  }
  if (!call.dest.type) call.dest.type = call.callee_type;
  Server server = server_for(call.caller_type, call.callee_type);
  call.src = neutral_endpoint(call.src, server, conf_.net);
  call.dest = neutral_endpoint(call.dest, server, conf_.net);
  const uint64_t now_ms = now();
  for (jn_handle h : ring) {
    Conn* c = conn(h);
    Party p;
    p.conn = h;
    p.type = c->type;
    p.dev = c->dev;
    p.sid = by_party_.count({h, call.caller_sid}) ? call.call_id : call.caller_sid;
    p.last_rx = p.last_tx = now_ms;
    call.parties.push_back(p);
  }
  const uint64_t id = call.id;
  calls_[id] = std::move(call);
  Call& c = calls_[id];
  for (auto& p : c.parties) by_party_[{p.conn, p.sid}] = id;
  gauge();
  host().info("call " + c.call_id + " from " + from + " to " + target + ": ringing " + std::to_string(c.parties.size()) + " device(s)" +
              (c.dialing ? " (dialling)" : ""));
  if (!c.dialing)
    for (auto& p : c.parties) send_call_req(c, p);
  host().call_send(leg, JN_CALL_RINGING);
}

void IntercomJson::send_call_req(const Call& c, const Party& p) {
  Server server = server_for(c.caller_type, c.callee_type);
  Endpoint src = view_endpoint(c.src, server, p.type, conf_.net);
  Endpoint dest = view_endpoint(c.dest, server, p.type, conf_.net);
  send(p.conn, "call_req", {{"sid", p.sid}, {"src", write_endpoint(src)}, {"dest", write_endpoint(dest)}});
}

// The callee's leg hears from the core (the caller hung up, the ring timed out, open_door...).
void IntercomJson::b_leg_event(uint64_t id, const jn_call_event& ev) {
  Call* c = call(id);
  switch (ev.type) {
    case JN_CALL_END:
    case JN_CALL_REJECT: {
      std::string reason, message;
      split_reason(to_sv(ev.reason), reason, message);
      if (reason.empty()) reason = "hangup";
      for (auto& p : c->parties)
        send(p.conn, "call_end", {{"sid", p.sid}, {"reason", reason}, {"message", message}, {"code", ev.code}});
      drop_call(id);
      return;
    }
    case JN_CALL_INFO:
      if (to_sv(ev.info_type) == "open-door")
        for (auto& p : c->parties) send(p.conn, "open_door", {{"sid", p.sid}});
      return;
    default: return;
  }
}

void IntercomJson::on_call_message(jn_handle h, const Message& m) {
  std::string sid;
  if (!m.values.is_object() || !read_text(m.values, "sid", sid) || sid.empty())
    return bad_input(h, values_error(m, "'sid' (string) is required"));
  auto idx = by_party_.find({h, sid});
  if (idx == by_party_.end()) {
    if (m.name == "call_end" || m.name == "call_reject") return;  // it already ended here: nothing to do
    return soft_error(h, m.id, 404, "unknown-sid", "no call " + sid + " on this connection");
  }
  const uint64_t id = idx->second;
  Call* c = call(id);
  auto pit = std::find_if(c->parties.begin(), c->parties.end(), [&](const Party& p) { return p.conn == h && p.sid == sid; });
  pit->last_rx = now();  // any message about the call proves the device alive
  if (m.name == "call_keep") return;
  std::string reason, message;
  read_text(m.values, "reason", reason);
  read_text(m.values, "message", message);
  if (m.name == "open_door") {
    jn_call_event ev = Host::event(JN_CALL_INFO);
    ev.info_type = to_jn("open-door");
    std::string body = json{{"sid", sid}, {"by", conn(h)->dev}}.dump();
    ev.info_body = to_jn(body);
    jn_status st = host().call_send(c->leg, ev);
    host().info("open_door on call " + sid + " from " + conn(h)->dev + " (status " + std::to_string(st) + ")");
    return;
  }
  if (c->a_side) {
    if (m.name == "call_accept") return soft_error(h, m.id, 409, "bad-state", "the caller cannot accept its own call");
    // call_end / call_reject from the caller: hang up (or cancel while it rings).
    const jn_handle leg = c->leg;
    const int code = c->answered ? 200 : 487;
    std::string text = join_reason(reason.empty() ? (c->answered ? "hangup" : "cancelled") : reason, message);
    drop_call(id);
    host().call_send(leg, JN_CALL_END, code, text);
    return;
  }
  // B side: the device is a callee.
  if (m.name == "call_accept") {
    if (c->answered) return;  // a repeated accept from the winner
    Endpoint src, dest;
    std::string why;
    if (!read_endpoint(m.values.value("src", json()), src, why) || !read_endpoint(m.values.value("dest", json()), dest, why))
      return bad_input(h, values_error(m, why));
    return answer(id, h, sid, src, dest);
  }
  // call_reject, or call_end before answer (a reject), or call_end after answer (a hangup).
  if (!c->answered) {
    Party gone = *pit;
    c->parties.erase(pit);
    by_party_.erase({gone.conn, gone.sid});
    if (!c->parties.empty()) {
      host().info("call " + c->call_id + ": " + gone.dev + " declined; " + std::to_string(c->parties.size()) + " still ringing");
      return;
    }
    const jn_handle leg = c->leg;
    int code = reason == "busy" ? 486 : 603;
    std::string text = join_reason(reason.empty() ? "rejected" : reason, message);
    drop_call(id);
    host().call_send(leg, JN_CALL_REJECT, code, text);
    return;
  }
  const jn_handle leg = c->leg;
  std::string text = join_reason(reason.empty() ? "hangup" : reason, message);
  drop_call(id);
  host().call_send(leg, JN_CALL_END, 200, text);
}

// First call_accept wins: the other screens get call_end, the core gets ANSWER.
void IntercomJson::answer(uint64_t id, jn_handle h, const std::string& sid, const Endpoint& asrc, const Endpoint& adest) {
  Call* c = call(id);
  c->answered = true;
  std::vector<Party> losers;
  Party winner;
  for (auto& p : c->parties) {
    if (p.conn == h && p.sid == sid) winner = p;
    else losers.push_back(p);
  }
  c->parties.assign(1, winner);
  c->parties.front().last_rx = c->parties.front().last_tx = now();
  for (auto& p : losers) {
    by_party_.erase({p.conn, p.sid});
    send(p.conn, "call_end", {{"sid", p.sid}, {"reason", "answered-elsewhere"}, {"message", "answered by " + winner.dev}, {"code", 487}});
  }
  // Streams the callee named in its accept override the offered ones.
  Server server = server_for(c->caller_type, c->callee_type);
  if (!asrc.audio.empty()) c->src.audio = neutral_url(asrc.audio, server, conf_.net);
  if (!asrc.video.empty()) c->src.video = neutral_url(asrc.video, server, conf_.net);
  if (!adest.audio.empty()) c->dest.audio = neutral_url(adest.audio, server, conf_.net);
  if (!adest.video.empty()) c->dest.video = neutral_url(adest.video, server, conf_.net);
  MediaOut media;
  // A far leg on the bus: the screen's streams (dest: the callee pushes them) come first, as bus
  // streams, so a browser's leg picks them before the FLV descriptions.
  if (c->bus && start_pulls(*c, c->dest)) add_bus_streams(media, *c);
  if (c->bus && !c->push_id.empty()) start_push(*c);
  add_streams(media, c->src, c->dest, server);
  Endpoint dest = c->dest;
  dest.id = winner.dev;
  media.add_data(data_params(sid, c->src, dest, c->caller_type, c->callee_type, ""));
  jn_call_event ev = Host::event(JN_CALL_ANSWER);
  ev.media = media.finish();
  host().info("call " + c->call_id + " answered by " + winner.dev + (losers.empty() ? "" : ", " + std::to_string(losers.size()) + " other(s) ended"));
  host().call_send(c->leg, ev);  // may deliver to our own A-leg at once
}

}  // namespace intercom_json
