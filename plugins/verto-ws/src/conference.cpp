// verto-ws conferences: rooms and members, joining through the routing table, pvtData, LiveArray
// changes on the laChannel, the conference channels (bootstrap, conf-control, chat, layout-info),
// cman bootstrap, and the state a hot reload carries. README.md, "Conferences".
#include "conference.hpp"

#include "verto_ws.hpp"

#include <algorithm>
#include <stdexcept>

namespace verto::ws {

// ---------------------------------------------------------------------------------------------
// conf
// ---------------------------------------------------------------------------------------------
static void read_profile(junction::util::ConfigReader& r, ConfProfile& p, bool top) {
  if (!top) r.known_keys({"max_members", "moderators", "moderator_pin", "video", "rate", "talk_threshold"});
  r.integer("max_members", p.max_members, 1, 10000);
  if (r.has("moderators")) {
    const json& j = r.conf()["moderators"];
    p.moderators.clear();
    if (!j.is_array()) r.fail("moderators", "must be an array of user names");
    else
      for (auto& e : j) {
        if (!e.is_string() || !verto::valid_user(e.get<std::string>())) r.fail("moderators", "must be an array of user names");
        else p.moderators.push_back(e.get<std::string>());
      }
  }
  r.str("moderator_pin", p.moderator_pin);
  r.boolean("video", p.video);
  r.integer("rate", p.rate, 8000, 48000);
  if (p.rate != 8000 && p.rate != 16000 && p.rate != 48000) r.fail("rate", "must be 8000, 16000 or 48000");
  r.integer("talk_threshold", p.talk_threshold, 1, 32767);
}

void read_conference_conf(const json& conf, const std::function<void(const std::string&, const std::string&)>& report, ConfConf& out) {
  junction::util::ConfigReader r(conf, report, "conference.");
  r.known_keys({"domain", "max_members", "moderators", "moderator_pin", "video", "rate", "talk_threshold", "profiles", "rooms"});
  r.str("domain", out.domain, true);
  std::string n, d;
  if (!la::room_name("x", out.domain, n, d)) r.fail("domain", "letters, digits, '.', '_', '-' (at most 48)");
  read_profile(r, out.defaults, true);
  if (r.has("profiles")) {
    auto t = r.table("profiles");
    for (auto& [name, v] : t.conf().items()) {
      ConfProfile p = out.defaults;  // a profile starts from [conference]'s values
      auto pr = t.table(name);
      read_profile(pr, p, false);
      out.profiles[name] = p;
    }
  }
  if (r.has("rooms")) {
    auto t = r.table("rooms");
    for (auto& [room, v] : t.conf().items()) {
      if (!v.is_string() || !out.profiles.count(v.get<std::string>())) t.fail(room, "must name a profile of [conference.profiles]");
      else out.rooms[room] = v.get<std::string>();
    }
  }
  if (!r.ok()) throw std::runtime_error("bad conf: " + r.error()->key + ": " + r.error()->reason);
}

// ---------------------------------------------------------------------------------------------
// rooms and members
// ---------------------------------------------------------------------------------------------
Conferences::Conferences(VertoWs& p) : p_(p), node_uuid_(verto::new_uuid()) {}
Conferences::~Conferences() = default;

const ConfProfile& Conferences::profile_of(const ConfRoom& r) const {
  auto it = p_.conf_.conference.profiles.find(r.profile);
  return it == p_.conf_.conference.profiles.end() ? p_.conf_.conference.defaults : it->second;
}

ConfRoom* Conferences::room(const std::string& name) {
  auto it = rooms_.find(name);
  return it == rooms_.end() ? nullptr : &it->second;
}

ConfMember* Conferences::member(ConfRoom& r, uint32_t id) {
  auto it = r.members.find(id);
  return it == r.members.end() ? nullptr : &it->second;
}

bool Conferences::is_moderator_session(const ConfRoom& r, const std::string& sessid) const {
  if (sessid.empty()) return false;
  for (auto& [id, m] : r.members)
    if (m.sessid == sessid && m.moderator) return true;
  auto it = watcher_mods_.find(sessid);
  return it != watcher_mods_.end() && it->second.count(r.name);
}

// A change on the laChannel: wireSerno + 1, to every subscriber.
void Conferences::la_change(ConfRoom& r, const ConfMember& m, const char* action) {
  ++r.wire_serno;
  p_.deliver(r.la(), json{{"data", la::change(r, m, action, r.wire_serno)}});
}

// channelPvtData to the member's socket (eventChannel = its sessid, as mod_verto does).
void Conferences::send_pvt(const ConfRoom& r, const ConfMember& m, bool join) {
  jn_handle h = p_.conn_of_session(m.sessid);
  if (!h) return;
  p_.request(h, "verto.event",
             json{{"pvtData", la::pvt_data(r, m.key, m.id, m.moderator, join)}, {"eventChannel", m.sessid}, {"eventType", "channelPvtData"},
                  {"eventSerno", ++p_.event_serno_}});
}

// The B-leg of a call routed to conference:<name>[@<domain>]: a new member (README, "Conferences").
void Conferences::join(jn_handle leg, const jn_call_event& ev) {
  std::string target(to_sv(ev.target.len ? ev.target : ev.to));
  std::string spec = target.substr(11), conf_name = spec, domain = p_.conf_.conference.domain;
  if (size_t at = spec.rfind('@'); at != std::string::npos) {
    conf_name = spec.substr(0, at);
    domain = spec.substr(at + 1);
  }
  std::string name, dom;
  if (!la::room_name(conf_name, domain, name, dom)) {
    p_.host().info("call to " + verto::printable(target) + " rejected: not a valid conference name");
    p_.host().call_send(leg, JN_CALL_REJECT, 404, "bad conference name");
    return;
  }
  ConfRoom* r = room(name);
  std::string number = name.substr(0, name.size() - dom.size() - 1);
  std::string profile = p_.conf_.conference.rooms.count(number) ? p_.conf_.conference.rooms.at(number) : "";
  if (r && r->locked) {
    p_.host().info("call to conference " + name + " rejected: the room is locked");
    p_.host().call_send(leg, JN_CALL_REJECT, 403, "conference locked");
    return;
  }
  ConfProfile prof = p_.conf_.conference.defaults;
  if (auto it = p_.conf_.conference.profiles.find(profile); it != p_.conf_.conference.profiles.end()) prof = it->second;
  if (r && r->members.size() >= prof.max_members) {
    p_.host().info("call to conference " + name + " rejected: full (" + std::to_string(prof.max_members) + " members)");
    p_.host().call_send(leg, JN_CALL_REJECT, 486, "conference full");
    return;
  }
  bool created = !r;
  if (!r) {
    ConfRoom nr;
    nr.name = name;
    nr.domain = dom;
    nr.profile = profile;
    nr.serial = ++room_serial_;
    r = &(rooms_[name] = std::move(nr));
    p_.host().info("conference " + name + " created (profile " + (profile.empty() ? "default" : profile) + ")");
  }
  ConfMember m;
  m.id = r->next_member++;
  m.cookie = ++p_.serial_;
  m.leg = leg;
  // A verto call of this server: its callID is the hashKey, its socket gets the pvtData.
  std::string a_callid = VertoWs::header_of(ev, "app-verto-callid");
  if (Call* a = a_callid.empty() ? nullptr : p_.call_by_callid(a_callid)) {
    m.key = a_callid;
    m.sessid = a->sessid;
    m.user = a->user;
  } else {
    m.key = verto::new_uuid();
  }
  std::string from(to_sv(ev.from));
  m.cid_number = m.user.empty() ? from.substr(from.find(':') == std::string::npos ? 0 : from.find(':') + 1) : m.user;
  m.cid_name = ev.from_name.len ? std::string(to_sv(ev.from_name)) : m.cid_number;
  m.moderator = !m.user.empty() && std::find(prof.moderators.begin(), prof.moderators.end(), m.user) != prof.moderators.end();
  // Media: the A-leg's audio (and video) bus streams; our answer names the member's mix stream.
  const std::string prefix = "verto/conf-" + std::to_string(m.cookie);
  std::string audio_fmt, video_fmt;
  bool bus_audio = false;  // the caller's audio is a bus stream (a browser, a camera), not only a URL
  for (uint32_t i = 0; p_.media_on() && ev.media && i < ev.media->count; ++i) {
    const jn_media_stream* s = ev.media->streams[i];
    if (!s || !s->bus_stream.len) continue;
    std::vector<std::string> names;
    for (uint32_t k = 0; JN_HAS_FIELD(s, jn_media_stream, codec_count) && s->codecs && k < s->codec_count; ++k)
      names.push_back(junction::webrtc::canonical_codec_name(std::string(to_sv(s->codecs[k].name))));
    if (names.empty()) names.push_back(junction::webrtc::canonical_codec_name(std::string(to_sv(s->format))));
    bus_audio = bus_audio || s->kind == JN_MEDIA_AUDIO;
    if (s->kind == JN_MEDIA_AUDIO && audio_fmt.empty())
      for (auto& n : names)
        if (n == "OPUS" || n == "PCMA" || n == "PCMU") {
          audio_fmt = n;
          m.audio_in = std::string(to_sv(s->bus_stream));
          break;
        }
    if (s->kind == JN_MEDIA_VIDEO && video_fmt.empty() && prof.video)
      for (auto& n : names)
        if ((r->video_codec.empty() && (n == "H264" || n == "VP8")) || n == r->video_codec) {
          video_fmt = n;
          m.video_in = std::string(to_sv(s->bus_stream));
          break;
        }
  }
  if (bus_audio && audio_fmt.empty()) {
    // Its audio is on the bus but in no codec the mixer decodes: refused, not joined half-working.
    p_.host().info("call to conference " + name + " rejected: no Opus, PCMA or PCMU audio offered");
    p_.host().call_send(leg, JN_CALL_REJECT, 488, "no codec the conference mixes");
    end_room_if_empty(name);
    return;
  }
  if (!audio_fmt.empty()) {
    m.audio_codec = audio_fmt == "PCMA" ? 0 : audio_fmt == "PCMU" ? 1 : 2;  // junction::audio::Codec
    m.codec = audio_fmt == "OPUS" ? "opus@48000" : audio_fmt + "@8000";
    m.audio_out = prefix + JN_MEDIA_AUDIO_SUFFIX;
  }
  if (!video_fmt.empty()) {
    if (r->video_codec.empty()) r->video_codec = video_fmt;
    m.video_codec = video_fmt;
    m.video_out = prefix + JN_MEDIA_VIDEO_SUFFIX;
  }
  const uint32_t id = m.id;
  const uint64_t cookie = m.cookie;
  p_.host().leg_set_cookie(leg, cookie);
  by_cookie_[cookie] = {name, id};
  r->order.push_back(id);
  ConfMember& mm = r->members[id] = std::move(m);
  p_.host().info("conference " + name + ": member " + std::to_string(id) + " (" + verto::printable(mm.cid_number) + ", " +
                 (mm.codec.empty() ? "no audio" : mm.codec) + (mm.video_codec.empty() ? "" : ", video " + mm.video_codec) + ") joined");
  if (created) media_room_start(*r);
  media_join(*r, mm);
  la_change(*r, mm, "add");
  // Our answer: the mix for this member and the floor's video, as bus streams.
  junction::webrtc::MediaStreams ans;
  auto add_stream = [&](uint32_t kind, const std::string& fmt, const std::string& bus) {
    auto e = std::make_unique<junction::webrtc::MediaStreams::Entry>();
    e->format = fmt;
    e->bus_stream = bus;
    e->transport = "bus";
    jn_media_stream s{};
    s.struct_size = sizeof s;
    s.kind = kind;
    s.clock_rate = kind == JN_MEDIA_VIDEO ? 90000 : fmt == "OPUS" ? 48000 : 8000;
    s.channels = fmt == "OPUS" ? 2 : 1;
    s.payload_type = fmt == "PCMA" ? 8 : fmt == "PCMU" ? 0 : fmt == "OPUS" ? 111 : fmt == "H264" ? 102 : 96;
    s.direction = JN_DIR_SENDRECV;
    ans.entries_.push_back(std::move(e));
    ans.streams_.push_back(s);
  };
  if (!mm.audio_out.empty()) add_stream(JN_MEDIA_AUDIO, audio_fmt, mm.audio_out);
  if (!mm.video_out.empty()) add_stream(JN_MEDIA_VIDEO, video_fmt, mm.video_out);
  ans.finish();
  jn_call_event a = Host::event(JN_CALL_ANSWER);
  a.media = ans.size() ? ans.desc() : nullptr;
  p_.host().call_send(leg, a);  // may run the A-leg's handlers (a verto call answers its browser) before it returns
  r = room(name);
  ConfMember* now = r ? member(*r, id) : nullptr;
  if (!now) return;
  send_pvt(*r, *now, true);
  p_.deliver(r->info(), json{{"eventData", la::layout_info(*r)}});
  if (!now->video_in.empty()) media_floor(*r, 0);  // a keyframe for the newcomer
}

void Conferences::set_floor(ConfRoom& r, uint32_t id) {
  if (r.floor == id) return;
  uint32_t old = r.floor, old_video = r.video_floor();
  r.floor = id;
  if (ConfMember* o = member(r, old)) la_change(r, *o, "modify");
  if (r.video_floor() != old_video) media_floor(r, old_video);
}

void Conferences::leave(const std::string& room_name, uint32_t id, int code, const std::string& reason, bool end_leg) {
  ConfRoom* r = room(room_name);
  ConfMember* mp = r ? member(*r, id) : nullptr;
  if (!mp) return;
  ConfMember m = *mp;
  media_leave(*r, *mp);
  r->members.erase(id);
  r->order.erase(std::remove(r->order.begin(), r->order.end(), id), r->order.end());
  by_cookie_.erase(m.cookie);
  uint32_t old_video = r->video_floor();
  if (r->floor == id) r->floor = 0;
  if (r->vid_floor == id) r->vid_floor = 0;
  p_.host().info("conference " + room_name + ": member " + std::to_string(id) + " left (" + reason + ")");
  la_change(*r, m, "del");
  if (r->video_floor() != old_video) media_floor(*r, old_video);
  send_pvt(*r, m, false);
  if (end_leg) p_.host().call_send(m.leg, JN_CALL_END, code, reason);
  end_room_if_empty(room_name);
}

void Conferences::end_room_if_empty(const std::string& room_name) {
  ConfRoom* r = room(room_name);
  if (!r || !r->members.empty()) return;
  media_room_stop(*r);
  p_.host().info("conference " + room_name + " destroyed: its last member left");
  rooms_.erase(room_name);
}

void Conferences::on_call(jn_handle, uint64_t cookie, const jn_call_event& ev) {
  auto it = by_cookie_.find(cookie);
  if (it == by_cookie_.end()) return;
  auto [name, id] = it->second;
  ConfRoom* r = room(name);
  ConfMember* m = r ? member(*r, id) : nullptr;
  if (!m) return;
  switch (ev.type) {
    case JN_CALL_END:
    case JN_CALL_REJECT:
      leave(name, id, ev.code, "hung up: " + std::to_string(ev.code) + " " + std::string(to_sv(ev.reason)), false);
      return;
    case JN_CALL_INFO: {
      if (to_sv(ev.info_type) != "hold") return;
      json body = json::parse(to_sv(ev.info_body), nullptr, false);
      bool hold = body.is_object() && body.value("holdState", "") == "held";
      if (hold == m->hold) return;
      m->hold = hold;
      media_state(*r, *m);
      la_change(*r, *m, "modify");
      return;
    }
    default: return;  // DTMF, chat INFO: nothing in a conference for now
  }
}

// ---------------------------------------------------------------------------------------------
// channels
// ---------------------------------------------------------------------------------------------
bool Conferences::channel_allowed(const Conn& c, const std::string& channel) const {
  std::string kind, name, dom;
  if (!la::parse_channel(channel, kind, name, dom) || c.sessid.empty()) return false;
  auto rit = rooms_.find(name);
  if (rit != rooms_.end() && rit->second.domain != dom) return false;
  if (kind == "mod") {
    if (rit != rooms_.end()) return is_moderator_session(rit->second, c.sessid);
    auto w = watcher_mods_.find(c.sessid);
    return w != watcher_mods_.end() && w->second.count(name);
  }
  if (rit != rooms_.end())
    for (auto& [id, m] : rit->second.members)
      if (m.sessid == c.sessid) return true;
  auto w = watchers_.find(c.sessid);
  return w != watchers_.end() && w->second.count(name);
}

// layout-info to a socket that just subscribed to a room's info channel (the document: sent on join).
void Conferences::subscribed(jn_handle h, const std::string& channel) {
  std::string kind, name, dom;
  if (!la::parse_channel(channel, kind, name, dom) || kind != "info") return;
  ConfRoom* r = room(name);
  if (!r) return;
  p_.request(h, "verto.event", json{{"eventData", la::layout_info(*r)}, {"eventChannel", channel}, {"eventSerno", ++p_.event_serno_}});
}

bool Conferences::broadcast(jn_handle h, Conn& c, verto::Message& m, json& reply) {
  std::string channel = str_of(m.params, "eventChannel");
  if (channel == "cman.bootstrap") {
    cman_bootstrap(h, c, m, reply);
    return true;
  }
  std::string kind, name, dom;
  if (channel.compare(0, 11, "conference-") != 0) return false;
  if (!la::parse_channel(channel, kind, name, dom) || !channel_allowed(c, channel)) {
    p_.host().info(c.user + " may not send on " + verto::printable(channel) + ": not a member, watcher or moderator of that conference");
    reply = verto::make_error(m.id, verto::kLoginFailed, "Permission Denied");
    return true;
  }
  la::Command cmd = la::parse_command(kind, m.params.value("data", json()));
  if (cmd.kind == la::Command::Invalid) {
    p_.bad(c, "conference " + kind + " request: " + cmd.why);
    reply = verto::make_error(m.id, verto::kInvalidParams, "Invalid params: " + cmd.why);
    return true;
  }
  ConfRoom* r = room(name);
  std::string sessid = c.sessid;
  if (cmd.kind == la::Command::Bootstrap) {
    json boot = r ? la::boot_obj(*r) : json{{"action", "bootObj"}, {"name", name}, {"wireSerno", -1}, {"data", json::array()}};
    p_.request(h, "verto.event", json{{"data", boot}, {"eventChannel", channel}, {"sessid", sessid}, {"eventSerno", ++p_.event_serno_}});
    reply = verto::make_result(m.id, json{{"message", "Broadcast sent"}, {"eventChannel", channel}, {"delivered", 1}}, sessid);
    return true;
  }
  if (cmd.kind == la::Command::Chat) {
    std::string from = c.user, display = c.user;
    if (r)
      for (auto& [id, mm] : r->members)
        if (mm.sessid == sessid) display = mm.cid_name;
    json d = {{"direction", "outbound"}, {"message", cmd.message}, {"fromDisplay", display}, {"from", from}, {"type", "message"}};
    size_t n = p_.deliver(channel, json{{"data", d}});
    p_.host().info("conference " + name + ": chat from " + from);
    reply = verto::make_result(m.id, json{{"message", "Broadcast sent"}, {"eventChannel", channel}, {"delivered", n}}, sessid);
    return true;
  }
  // conf-control: moderators only (channel_allowed checked the mod channel's permission).
  if (!r) {
    reply = verto::make_error(m.id, verto::kInvalidParams, "Invalid params: conference " + name + " has no members");
    return true;
  }
  json res = mod_command(c, *r, cmd);
  if (res.contains("error")) reply = verto::make_error(m.id, verto::kInvalidParams, res["error"].get<std::string>());
  else reply = verto::make_result(m.id, res, sessid);
  return true;
}

json Conferences::mod_command(Conn& c, ConfRoom& r, const la::Command& cmd) {
  const std::string name = r.name, mod_channel = r.mod();
  std::string response;
  if (cmd.command == "lock" || cmd.command == "unlock") {
    r.locked = cmd.command == "lock";
    response = "OK " + name + (r.locked ? " locked" : " unlocked");
  } else {
    ConfMember* m = member(r, cmd.member);
    if (!m) return json{{"error", "Invalid params: no member " + std::to_string(cmd.member) + " in " + name}};
    const std::string mid = la::member_id(m->id);
    if (cmd.command == "mute" || cmd.command == "unmute" || cmd.command == "tmute") {
      m->muted = cmd.command == "tmute" ? !m->muted : cmd.command == "mute";
      if (m->muted) m->talking = false;
      response = std::string("OK ") + (m->muted ? "mute " : "unmute ") + mid;
    } else if (cmd.command == "deaf" || cmd.command == "undeaf") {
      m->deaf = cmd.command == "deaf";
      response = "OK " + cmd.command + " " + mid;
    } else if (cmd.command == "vid-floor") {
      uint32_t old_video = r.video_floor();
      // "force" (or nothing) holds the video floor on the member; again on the holder releases it
      r.vid_floor = r.vid_floor == m->id && cmd.value != "force" ? 0 : m->id;
      response = "OK vid-floor " + mid + (r.vid_floor ? " forced" : " released");
      if (ConfMember* o = member(r, old_video); o && o->id != m->id) la_change(r, *o, "modify");
      if (r.video_floor() != old_video) media_floor(r, old_video);
      p_.deliver(r.info(), json{{"eventData", la::layout_info(r)}});
    } else if (cmd.command == "kick") {
      response = "OK kicked " + mid;
      p_.host().info("conference " + name + ": " + c.user + " kicks member " + mid);
      leave(name, m->id, 200, "kicked", true);
      p_.deliver(mod_channel, json{{"data", {{"conf-command", cmd.command}, {"response", response}}}});
      return json{{"message", "OK"}, {"conf-command", cmd.command}, {"response", response}};
    }
    media_state(r, *m);
    la_change(r, *m, "modify");
  }
  p_.host().info("conference " + name + ": " + c.user + " " + cmd.command + ": " + response);
  p_.deliver(mod_channel, json{{"data", {{"conf-command", cmd.command}, {"response", response}}}});
  return json{{"message", "OK"}, {"conf-command", cmd.command}, {"response", response}};
}

// XCC's cman bootstrap: a socket with no call gets the room's pvtData and its bootObj in the
// object form (node_uuid added), and may use the room's channels from then on.
void Conferences::cman_bootstrap(jn_handle h, Conn& c, verto::Message& m, json& reply) {
  const json data = m.params.value("data", json());
  std::string conf_name = str_of(data, "conferenceName"), domain = str_of(data, "domain"), name, dom;
  if (domain.empty()) domain = p_.conf_.conference.domain;
  if (!la::room_name(conf_name, domain, name, dom)) {
    p_.bad(c, "cman.bootstrap without a valid conferenceName / domain");
    reply = verto::make_error(m.id, verto::kInvalidParams, "Invalid params: conferenceName and domain");
    return;
  }
  std::string number = name.substr(0, name.size() - dom.size() - 1);
  const ConfProfile* prof = &p_.conf_.conference.defaults;
  if (auto it = p_.conf_.conference.rooms.find(number); it != p_.conf_.conference.rooms.end()) prof = &p_.conf_.conference.profiles.at(it->second);
  std::string pin = str_of(data, "pin");
  bool moderator = std::find(prof->moderators.begin(), prof->moderators.end(), c.user) != prof->moderators.end() ||
                   (!prof->moderator_pin.empty() && pin == prof->moderator_pin);
  if (!pin.empty() && !moderator) p_.host().info("cman.bootstrap of " + name + " by " + c.user + ": wrong moderator pin");
  watchers_[c.sessid].insert(name);
  if (moderator) watcher_mods_[c.sessid].insert(name);
  ConfRoom probe;
  probe.name = name;
  probe.domain = dom;
  ConfRoom* r = room(name);
  const ConfRoom& rr = r ? *r : probe;
  std::string sessid = c.sessid;
  p_.request(h, "verto.event",
             json{{"pvtData", la::pvt_data(rr, "", 0, moderator, true)}, {"eventChannel", sessid}, {"eventType", "channelPvtData"},
                  {"eventSerno", ++p_.event_serno_}});
  p_.request(h, "verto.event", json{{"data", la::boot_obj_objects(rr, node_uuid_)}, {"eventChannel", rr.la()}, {"sessid", sessid},
                                    {"eventSerno", ++p_.event_serno_}});
  p_.host().info("cman.bootstrap of " + name + " by " + c.user + (moderator ? " (moderator)" : ""));
  reply = verto::make_result(m.id, json{{"message", "Broadcast sent"}, {"eventChannel", "cman.bootstrap"}, {"laChannel", rr.la()},
                                        {"members", rr.members.size()}, {"node_uuid", node_uuid_}},
                             sessid);
}

// A socket is gone: its cman grants go with it (a new socket bootstraps again); a re-login with
// the same sessid gets its members' pvtData again (session_attached).
void Conferences::connection_closed(const std::string& sessid, bool) {
  watchers_.erase(sessid);
  watcher_mods_.erase(sessid);
}

void Conferences::session_attached(const std::string& sessid) {
  for (auto& [name, r] : rooms_)
    for (auto& [id, m] : r.members)
      if (m.sessid == sessid) send_pvt(r, m, true);
}

void Conferences::stop() {
  std::vector<std::pair<std::string, uint32_t>> all;
  for (auto& [name, r] : rooms_)
    for (auto& [id, m] : r.members) all.push_back({name, id});
  for (auto& [name, id] : all) leave(name, id, 503, "server-stopping", true);
}

json Conferences::admin() const {
  json list = json::array();
  for (auto& [name, r] : rooms_) {
    json members = json::array();
    for (uint32_t id : r.order) {
      const ConfMember& m = r.members.at(id);
      members.push_back({{"id", id}, {"key", m.key}, {"cid_number", m.cid_number}, {"cid_name", m.cid_name}, {"codec", m.codec},
                         {"video", m.video_codec}, {"moderator", m.moderator}, {"muted", m.muted}, {"deaf", m.deaf},
                         {"talking", m.talking}, {"energy", m.energy}, {"hold", m.hold}, {"sessid", m.sessid}});
    }
    list.push_back({{"name", name}, {"domain", r.domain}, {"profile", r.profile.empty() ? "default" : r.profile}, {"wireSerno", r.wire_serno},
                    {"locked", r.locked}, {"floor", r.floor}, {"vid_floor", r.vid_floor}, {"video_codec", r.video_codec},
                    {"members", members}, {"mixer", mix_stats(r.serial)}});
  }
  return json{{"conferences", list}, {"node_uuid", node_uuid_}};
}

json Conferences::save() const {
  json rooms = json::array();
  for (auto& [n, r] : rooms_) rooms.push_back(r);
  json subs = json::object();
  for (auto& [k, h] : bus_subs_) subs[std::to_string(k)] = h;
  return json{{"node_uuid", node_uuid_}, {"room_serial", room_serial_}, {"rooms", rooms}, {"watchers", watchers_},
              {"watcher_mods", watcher_mods_}, {"bus_subs", subs}, {"mixes", save_mixes()}};
}

void Conferences::restore(const json& s) {
  if (!s.is_object()) return;
  node_uuid_ = s.value("node_uuid", node_uuid_);
  room_serial_ = s.value("room_serial", uint64_t{0});
  if (s.contains("watchers")) watchers_ = s["watchers"].get<std::map<std::string, std::set<std::string>>>();
  if (s.contains("watcher_mods")) watcher_mods_ = s["watcher_mods"].get<std::map<std::string, std::set<std::string>>>();
  if (s.contains("bus_subs") && s["bus_subs"].is_object())
    for (auto& [k, v] : s["bus_subs"].items()) bus_subs_[std::strtoull(k.c_str(), nullptr, 10)] = v.get<jn_handle>();
  for (auto& j : s.value("rooms", json::array())) {
    ConfRoom r = j.get<ConfRoom>();
    for (auto& [id, m] : r.members) by_cookie_[m.cookie] = {r.name, id};
    rooms_[r.name] = std::move(r);
  }
  restore_mixes(s.value("mixes", json::object()));
}

}  // namespace verto::ws
