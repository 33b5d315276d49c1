// xxxcid-gateway: the server between XXXCID door stations (binary UDP) and residents' phone
// apps (JSON datagrams over UDP), built on the core's routing table, call model and packet bus.
//
// A door's call (cmd 150 op 1) becomes a call from xxxcid:door/<door> to xxxcid:room/<room key>;
// an OFFER for xxxcid:room/<key> or xxxcid:phone/<key> rings the phones bound to that room.
// Between the two legs only neutral call events travel (ANSWER, END, REJECT and INFO "talk",
// "talk-begin", "open-door", "open-door-result", "hangup"), so conf routes can send a door's call
// to an intercom-json screen instead of, or as well as, the phone. See README.md.
#include <junction/plugin.hpp>
#include <junction/util/addr.hpp>
#include <junction/util/config.hpp>
#include <junction/util/retransmit.hpp>
#include <junction/util/state.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec.hpp"

namespace {

using junction::sdk::Host;
using junction::sdk::to_jn;
using junction::sdk::to_sv;
using nlohmann::json;
using xxxcid::Packet;
using xxxcid::Party;

constexpr uint64_t kCookieDoor = 1, kCookiePhone = 2, kCookieVideo = 3, kCookieAudio = 4, kCookieMcast = 5;
constexpr uint64_t kSubPhoneVideo = 1, kSubPhoneAudio = 2, kSubDoorAudio = 3;

// Map keys and log text. The gateway's sockets are IPv4 (the protocol carries IPv4 fields).
std::string addr_text(const jn_addr& a) { return junction::util::format_addr(a); }
bool parse_addr4(const std::string& s, jn_addr& out) {
  jn_addr a{};
  if (!junction::util::parse_addr(s, a) || a.family != 4) return false;
  out = a;
  return true;
}
json addr_json(const jn_addr& a) { return json::array({a.family, a.port, json::array({a.ip[0], a.ip[1], a.ip[2], a.ip[3]})}); }
jn_addr addr_from(const json& j) {
  jn_addr a{};
  a.family = j.at(0).get<uint8_t>();
  a.port = j.at(1).get<uint16_t>();
  for (int i = 0; i < 4; ++i) a.ip[i] = j.at(2).at(i).get<uint8_t>();
  return a;
}
uint32_t ip_key(const jn_addr& a) { return (uint32_t(a.ip[0]) << 24) | (uint32_t(a.ip[1]) << 16) | (uint32_t(a.ip[2]) << 8) | a.ip[3]; }
json ip4_json(const xxxcid::Ip4& ip) { return json::array({ip[0], ip[1], ip[2], ip[3]}); }
xxxcid::Ip4 ip4_from(const json& j) { return {j.at(0).get<uint8_t>(), j.at(1).get<uint8_t>(), j.at(2).get<uint8_t>(), j.at(3).get<uint8_t>()}; }

// The room key: the address without its leading letters ("S00010108090" and "Y00010108090" are
// the same room, seen by the door and by the phone app).
std::string room_key(const std::string& addr) {
  size_t i = 0;
  while (i < addr.size() && std::isalpha(static_cast<unsigned char>(addr[i]))) ++i;
  return i == addr.size() ? addr : addr.substr(i);
}

struct Binding {
  std::string uid, room, community;
};

struct Phone {
  jn_addr addr{};
  uint64_t last_ms = 0;
};

// Commands awaiting their answer, re-sent on the tick (junction/util/retransmit.hpp).
using DoorCmds = junction::util::Retransmit<uint8_t, std::string>;       // op -> the command's bytes (type-2 reply acks)
using PhoneCmds = junction::util::Retransmit<std::string, std::string>;  // uid -> the order (its answer acks)

// The door's side of a call: the A-leg.
struct DoorCall {
  uint64_t id = 0;
  jn_handle leg = 0;
  std::string call_id;
  Party door, callee;
  jn_addr sig{};       // where the door's signalling comes from (replies go there)
  jn_addr audio_to{};  // latched from the door's audio datagrams (phone audio goes there)
  jn_addr video_src{}; // latched from the door's video datagrams
  bool has_mcast = false;
  uint8_t mcast = 0;
  xxxcid::Ip4 group{};
  enum State { Ringing, Answered, Closing } state = Ringing;
  bool talking = false;
  uint64_t video_in = 0, audio_in = 0;  // media datagrams from the door, published on the bus
  uint64_t last_rx = 0;       // last datagram (signalling or media) from the door for this call
  bool door_hangup = false;   // the door hung up: answer it with type-2 op 30 when the call is over
  uint64_t deadline = 0;      // door_hangup waiting for the local phone leg's END
  std::string answer_bytes;   // the op-4 answer, re-sent on a retransmitted op 1
  std::string peer_audio;     // the answering leg's audio bus stream
  jn_handle peer_audio_sub = 0;
  DoorCmds cmds;  // op -> pending command
  std::string video_stream() const { return "xxxcid/door-" + std::to_string(id) + "/video"; }
  std::string audio_stream() const { return "xxxcid/door-" + std::to_string(id) + "/audio"; }
};


// The phone's side of a call: a B-leg ringing the phones bound to one room.
struct PhoneCall {
  uint64_t id = 0;
  jn_handle leg = 0;
  std::string call_id;
  std::string door;  // the caller's address as the phone sees it (doorAddress)
  std::string key;   // room key
  std::vector<std::string> uids;  // rung (before answer) / the answerer (after)
  enum State { Ringing, Answered, Closing } state = Ringing;
  bool talking = false, talk_pending = false, video_on = false;
  bool phone_hangup = false;  // the phone said over: "over success" when the END arrives
  bool door_hangup = false;   // INFO hangup from the door: END once the phone says over success
  bool unlock_pending = false;
  uint64_t unlock_deadline = 0, unlock_done_ms = 0, deadline = 0;
  std::string video_stream, audio_stream;  // the offer's bus streams
  jn_handle video_sub = 0, audio_sub = 0;
  PhoneCmds cmds;  // uid -> pending order (call -> call ok, over -> over success)
  std::string my_audio() const { return "xxxcid/phone-" + std::to_string(id) + "/audio"; }
};

// A call that ended recently: answers retransmissions without acting again.
struct Tomb {
  std::string op1_reply, op30_reply;
  uint64_t until = 0;
};

class Gateway : public junction::sdk::Plugin {
 public:
  Gateway(Host host, const jn_create_args&) : Plugin(host) {
    // The first problem throws out of the constructor (bad reports it through config_error).
    junction::util::ConfigReader r(host.config(), [this](const std::string& k, const std::string& why) { bad(k, why); });
    r.known_keys({"door_listen", "phone_listen", "door_video_listen", "door_audio_listen", "advertise_ip", "multicast_group",
                  "multicast_listen", "multicast_iface", "source_check", "online_ms", "retransmit_ms", "max_retries",
                  "tombstone_ms", "tick_ms", "video_format", "audio_format", "max_doors", "door_idle_ms"});
    r.str("door_listen", door_listen_);
    r.str("phone_listen", phone_listen_);
    r.str("door_video_listen", video_listen_);
    r.str("door_audio_listen", audio_listen_);
    r.str("advertise_ip", advertise_ip_);
    r.str("multicast_group", mcast_group_);
    r.str("multicast_listen", mcast_listen_);
    r.str("multicast_iface", mcast_iface_);
    r.choice("source_check", source_check_, {"strict", "off"});
    r.str("video_format", video_format_);
    r.str("audio_format", audio_format_);
    r.integer("online_ms", online_ms_, 1000, 600000);
    r.integer("retransmit_ms", retransmit_ms_, 20, 10000);
    r.integer("max_retries", max_retries_, 0, 50);
    r.integer("tombstone_ms", tombstone_ms_, 0, 60000);
    r.integer("tick_ms", tick_ms_, 10, 1000);
    r.integer("max_doors", max_doors_, 1, 1000000);
    r.integer("door_idle_ms", door_idle_ms_, 0, 3600000);
    jn_addr probe{};
    for (auto* k : {&door_listen_, &phone_listen_, &video_listen_, &audio_listen_})
      if (!parse_addr4(*k, probe)) bad("door_listen", "'" + *k + "' is not an IPv4 \"ip:port\"");
    if (advertise_ip_.empty()) advertise_ip_ = door_listen_.substr(0, door_listen_.rfind(':'));
    jn_addr adv{};
    if (!junction::util::parse_ip(advertise_ip_, adv) || adv.family != 4 || std::memcmp(adv.ip, "\0\0\0\0", 4) == 0)
      bad("advertise_ip", "must be the IPv4 address doors reach this server at (needed when door_listen is 0.0.0.0)");
    std::memcpy(advertise_.data(), adv.ip, 4);
    if (!mcast_group_.empty() && !parse_addr4(mcast_listen_, probe)) bad("multicast_listen", "must be \"ip:port\"");
  }

  // --- lifecycle ----------------------------------------------------------------------------
  jn_status start() override {
    struct B { const std::string& addr; uint64_t cookie; jn_handle* out; uint32_t max; };
    for (const B& b : {B{door_listen_, kCookieDoor, &door_sock_, 2048}, B{phone_listen_, kCookiePhone, &phone_sock_, 4096},
                       B{video_listen_, kCookieVideo, &video_sock_, 4096}, B{audio_listen_, kCookieAudio, &audio_sock_, 4096}}) {
      jn_status st = host().udp_bind(b.addr, b.cookie, b.out, b.max);
      if (st != JN_OK) {
        host().set_error("cannot bind " + b.addr);
        return st;
      }
    }
    if (!mcast_group_.empty()) {
      jn_status st = host().udp_bind(mcast_listen_, kCookieMcast, &mcast_sock_, 2048);
      if (st == JN_OK) st = host().api()->udp_join_multicast(host().ctx(), mcast_sock_, to_jn(mcast_group_), to_jn(mcast_iface_));
      if (st != JN_OK) {
        host().set_error("cannot join multicast group " + mcast_group_ + " on " + mcast_listen_);
        return st;
      }
    }
    jn_status st = host().timer(tick_ms_, tick_ms_, 0, &tick_);
    if (st != JN_OK) return st;
    load_bindings();
    for (auto& [key, uids] : bindings_) ensure_room_route(key);
    host().info("doors on " + door_listen_ + ", phones on " + phone_listen_ + ", door video on " + video_listen_ +
                ", door audio on " + audio_listen_ + (mcast_group_.empty() ? "" : ", multicast " + mcast_group_) + "; " +
                std::to_string(binding_count()) + " binding(s)");
    return JN_OK;
  }

  // --- UDP ----------------------------------------------------------------------------------
  void on_udp(jn_handle sock, uint64_t cookie, const jn_datagram* d, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      jn_buf* b = d[i].buf;
      if (cookie == kCookieDoor || cookie == kCookieMcast) on_door_packet(b);
      else if (cookie == kCookiePhone) on_phone_datagram(b);
      else if (cookie == kCookieVideo || cookie == kCookieAudio) on_door_media(b, cookie == kCookieVideo);
    }
    (void)sock;
  }

  // `reason` is the metric label: always one of a fixed set of texts written here or in the codec,
  // never remote input (an IP, a uid, a number from the datagram); those go into `detail`, which
  // only the log line carries.
  void drop(const char* where, std::string_view reason, const jn_addr& from, const std::string& detail = {}) {
    ++stats_[std::string("dropped_") + where];
    host().counter_add("xxxcid_dropped_total", 1, std::string("side=\"") + where + "\",reason=\"" + std::string(reason) + "\"");
    if (log_budget_ > 0) {
      --log_budget_;
      host().warn(std::string("dropped ") + where + " datagram from " + addr_text(from) + ": " + (detail.empty() ? std::string(reason) : detail));
    }
  }
  void count(const std::string& what) {
    ++stats_[what];
    std::string name = "xxxcid_" + what + "_total";
    for (char& ch : name)  // "call ok_refused" -> xxxcid_call_ok_refused_total: a valid metric name
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') ch = '_';
    host().counter_add(name, 1);
  }
  // The phone orders as a fixed vocabulary for labels (parse_order already refuses others).
  static std::string_view order_label(std::string_view o) {
    for (std::string_view k : {"heartbeat", "call ok", "enable_video", "talk", "unlock", "over", "over success"})
      if (k == o) return k;
    return "unknown";
  }

  // --- door signalling --------------------------------------------------------------------------
  void on_door_packet(jn_buf* b) {
    xxxcid::Error err;
    auto p = xxxcid::parse(b->data, b->len, &err);
    if (!p) return drop("door", xxxcid::to_string(err), b->src);
    if (b->src.family != 4) return drop("door", "not IPv4", b->src);
    if (source_check_ == "strict" && std::memcmp(b->src.ip, p->caller.ip.data(), 4) != 0)
      return drop("door", "source does not match the caller IP", b->src,
                  "source " + addr_text(b->src) + " does not match the caller IP field " + xxxcid::ip_text(p->caller.ip));
    ensure_door_route(p->caller.addr);
    if (p->cmd == xxxcid::kCmdResolve) {
      if (p->type != xxxcid::kTypeRequest) return drop("door", "resolve answer sent to the server", b->src);
      return on_resolve(*p, b->src);
    }
    if (p->type == xxxcid::kTypeReply) return on_door_reply(*p, b->src);
    switch (p->op) {
      case xxxcid::kOpCall: return on_door_call(*p, b->src);
      case xxxcid::kOpHangup: return on_door_hangup(*p, b->src);
      default: return drop("door", "not a door request", b->src, "operation " + std::to_string(p->op) + " is not a door request");
    }
  }

  void send_door(const jn_addr& to, const std::string& bytes) {
    if (!bytes.empty()) host().udp_send(door_sock_, to, bytes);
  }

  Packet reply_of(const DoorCall& c, uint8_t type, uint8_t op, bool mcast_fields = false) const {
    Packet r;
    r.cmd = xxxcid::kCmdCall;
    r.type = type;
    r.op = op;
    r.caller = c.door;
    r.callee = c.callee;
    r.has_mcast = mcast_fields;  // mcast 0: the server asks for unicast media
    return r;
  }

  void on_resolve(const Packet& p, const jn_addr& from) {
    std::string key = room_key(p.callee.addr);
    if (!online_phone(key)) {
      count("resolve_silent");
      host().debug("resolve " + p.callee.addr + " from " + p.caller.addr + ": no phone online, no answer");
      return;
    }
    Packet r;
    r.cmd = xxxcid::kCmdResolve;
    r.type = xxxcid::kTypeReply;
    r.caller = p.caller;
    r.resolved = {Party{p.callee.addr, advertise_}};
    count("resolve_answered");
    send_door(from, xxxcid::serialise(r));
  }

  static std::string call_key(const std::string& door, const std::string& callee) { return door + "|" + callee; }

  DoorCall* door_call(const std::string& door, const std::string& callee) {
    auto it = door_by_key_.find(call_key(door, callee));
    if (it == door_by_key_.end()) return nullptr;
    auto c = doors_.find(it->second);
    return c == doors_.end() ? nullptr : &c->second;
  }

  void on_door_call(const Packet& p, const jn_addr& from) {
    if (DoorCall* c = door_call(p.caller.addr, p.callee.addr)) {
      c->last_rx = host().now_ms();
      count("door_duplicates");
      if (!c->answer_bytes.empty()) send_door(from, c->answer_bytes);
      return;
    }
    if (auto t = tombs_.find(call_key(p.caller.addr, p.callee.addr)); t != tombs_.end() && t->second.until > host().now_ms()) {
      count("door_duplicates");
      send_door(from, t->second.op1_reply);
      return;
    }
    DoorCall c;
    c.id = ++next_id_;
    c.cmds.set_policy(retransmit_ms_, static_cast<uint32_t>(max_retries_));
    c.door = p.caller;
    c.callee = p.callee;
    c.sig = from;
    c.last_rx = host().now_ms();
    c.has_mcast = p.has_mcast;
    c.mcast = p.mcast;
    c.group = p.group;
    if (p.has_mcast && p.mcast)
      host().info("door " + p.caller.addr + " announces multicast video on " + xxxcid::ip_text(p.group) +
                  "; the answer asks for unicast (multicast flag 0)");
    DoorCall& ref = doors_.emplace(c.id, std::move(c)).first->second;
    door_by_key_[call_key(ref.door.addr, ref.callee.addr)] = ref.id;
    door_by_ip_[ip_key(from)].insert(ref.id);
    count("door_calls");
    const uint64_t id = ref.id;
    std::string from_uri = "xxxcid:door/" + p.caller.addr;
    std::string to_uri = "xxxcid:room/" + room_key(p.callee.addr);
    std::string vs = ref.video_stream(), as = ref.audio_stream();
    jn_media_stream streams[2]{};
    streams[0].struct_size = streams[1].struct_size = sizeof(jn_media_stream);
    streams[0].kind = JN_MEDIA_VIDEO;
    streams[0].format = to_jn(video_format_);
    streams[0].transport = to_jn("udp");
    streams[0].direction = JN_DIR_SENDONLY;
    streams[0].bus_stream = to_jn(vs);
    streams[1].kind = JN_MEDIA_AUDIO;
    streams[1].format = to_jn(audio_format_);
    streams[1].clock_rate = 8000;
    streams[1].channels = 1;
    streams[1].transport = to_jn("udp");
    streams[1].direction = JN_DIR_SENDRECV;
    streams[1].bus_stream = to_jn(as);
    const jn_media_stream* ptrs[2] = {&streams[0], &streams[1]};
    jn_media_desc desc{sizeof(jn_media_desc), 2, ptrs};
    jn_call_event ev = Host::event(JN_CALL_OFFER);
    ev.from = to_jn(from_uri);
    ev.to = to_jn(to_uri);
    ev.media = &desc;
    jn_handle leg = 0;
    host().info("door " + p.caller.addr + " calls " + p.callee.addr + " (" + to_uri + ")");
    jn_status st = host().call_originate(ev, id, &leg);
    auto it = doors_.find(id);  // events may have been delivered (and ended it) meanwhile
    if (st != JN_OK) {
      if (it != doors_.end()) {
        host().info("door " + p.caller.addr + " -> " + to_uri + ": nothing routes it (status " + std::to_string(st) + "), busy");
        finish_door(it->second, xxxcid::kOpBusy);
      }
      return;
    }
    if (it != doors_.end() && it->second.leg == 0 && it->second.state != DoorCall::Closing) it->second.leg = leg;
  }

  // The door hung up (step 15).
  void on_door_hangup(const Packet& p, const jn_addr& from) {
    DoorCall* c = door_call(p.caller.addr, p.callee.addr);
    if (!c) {
      auto t = tombs_.find(call_key(p.caller.addr, p.callee.addr));
      count(t == tombs_.end() ? "door_hangup_unknown" : "door_duplicates");
      std::string ack = t != tombs_.end() && !t->second.op30_reply.empty()
                            ? t->second.op30_reply
                            : xxxcid::serialise([&] {
                                Packet r = p;
                                r.type = xxxcid::kTypeReply;
                                r.has_mcast = false;
                                return r;
                              }());
      send_door(from, ack);
      Tomb& tomb = tombs_[call_key(p.caller.addr, p.callee.addr)];  // a late op 1 must not start a call
      tomb.op30_reply = ack;
      tomb.until = host().now_ms() + tombstone_ms_;
      return;
    }
    c->last_rx = host().now_ms();
    if (c->door_hangup) return count("door_duplicates");
    c->door_hangup = true;
    host().info("door " + c->door.addr + " hangs up (" + std::to_string(c->id) + ")");
    if (c->state == DoorCall::Closing) {  // crossing hang-ups: ours is answered by theirs
      return finish_door(*c, xxxcid::kOpHangup);
    }
    if (c->state == DoorCall::Ringing || !local_phone(c->call_id)) {
      jn_handle leg = c->leg;
      c->leg = 0;
      uint64_t id = c->id;
      if (leg) host().call_send(leg, c->state == DoorCall::Ringing ? JN_CALL_END : JN_CALL_END, 200, "door hung up");
      if (auto it = doors_.find(id); it != doors_.end()) finish_door(it->second, xxxcid::kOpHangup);
      return;
    }
    // Answered by one of our phones: it says "over", the phone says "over success", its END
    // comes back, and only then the door gets its answer (steps 16-18).
    c->deadline = host().now_ms() + (max_retries_ + 2) * retransmit_ms_;
    send_info(c->leg, "hangup", "{}");
  }

  void on_door_reply(const Packet& p, const jn_addr& from) {
    DoorCall* c = door_call(p.caller.addr, p.callee.addr);
    if (c) c->last_rx = host().now_ms();
    if (!c || !c->cmds.ack(p.op)) return count("door_stale_replies");
    (void)from;
    door_cmd_done(*c, p.op, true);
  }

  // A door command completed (ok) or ran out of retries (!ok).
  void door_cmd_done(DoorCall& c, uint8_t op, bool ok) {
    const uint64_t id = c.id;
    if (op == xxxcid::kOpTalk) {
      if (!ok) {
        host().warn("door " + c.door.addr + " never acknowledged talk: ending the call");
        if (c.leg) host().call_send(c.leg, JN_CALL_END, 408, "door does not answer");
        c.leg = 0;
        if (auto it = doors_.find(id); it != doors_.end()) finish_door(it->second, 0);
        return;
      }
      c.talking = true;
      count("talks");
      send_info(c.leg, "talk-begin", R"({"ok":true})");
    } else if (op == xxxcid::kOpUnlock) {
      if (ok) count("unlocks");
      host().info(std::string("door ") + c.door.addr + (ok ? " unlocked" : " did not acknowledge the unlock"));
      send_info(c.leg, "open-door-result", ok ? R"({"ok":true})" : R"({"ok":false,"reason":"door did not answer"})");
    } else if (op == xxxcid::kOpHangup) {
      if (c.leg) host().call_send(c.leg, JN_CALL_END, 200, "hung up");
      c.leg = 0;
      if (auto it = doors_.find(id); it != doors_.end()) finish_door(it->second, 0);
    }
  }

  void door_command(DoorCall& c, uint8_t op) {
    if (c.cmds.pending(op)) return;  // already pending: one action per request
    send_door(c.sig, c.cmds.start(op, xxxcid::serialise(reply_of(c, xxxcid::kTypeRequest, op)), host().now_ms()).payload);
  }

  // Removes a door call. reply_op: kOpBusy (op 1 answered busy), kOpHangup (the door's op 30
  // answered with type 2), 0 (nothing more to send).
  void finish_door(DoorCall& call, uint8_t reply_op) {
    const uint64_t id = call.id;
    if (jn_handle leg = call.leg) {
      call.leg = 0;
      host().call_send(leg, JN_CALL_END, 200, "door call over");
    }
    auto it = doors_.find(id);
    if (it == doors_.end()) return;
    DoorCall& c = it->second;
    Tomb& t = tombs_[call_key(c.door.addr, c.callee.addr)];
    t.until = host().now_ms() + tombstone_ms_;
    if (reply_op == xxxcid::kOpBusy) {
      t.op1_reply = xxxcid::serialise(reply_of(c, xxxcid::kTypeRequest, xxxcid::kOpBusy));
      send_door(c.sig, t.op1_reply);
      count("door_busy");
    }
    if (reply_op == xxxcid::kOpHangup || c.door_hangup) {
      t.op30_reply = xxxcid::serialise(reply_of(c, xxxcid::kTypeReply, xxxcid::kOpHangup));
      send_door(c.sig, t.op30_reply);
    }
    if (c.peer_audio_sub) host().bus_unsubscribe(c.peer_audio_sub);
    host().info("door call " + std::to_string(c.id) + " (" + c.door.addr + " -> " + c.callee.addr + ") over");
    door_by_key_.erase(call_key(c.door.addr, c.callee.addr));
    unindex_media(c);
    if (!c.call_id.empty()) door_by_callid_.erase(c.call_id);
    doors_.erase(id);
  }

  void unindex_media(const DoorCall& c) {
    if (auto ip = door_by_ip_.find(ip_key(c.sig)); ip != door_by_ip_.end()) {
      ip->second.erase(c.id);
      if (ip->second.empty()) door_by_ip_.erase(ip);
    }
    for (auto* m : {&media_by_src_}) {
      if (c.video_src.family) m->erase(addr_text(c.video_src) + "/v");
      if (c.audio_to.family) m->erase(addr_text(c.audio_to) + "/a");
    }
  }

  // --- door media ---------------------------------------------------------------------------
  // Media is matched to a call by its source: a source already latched to a call, else the
  // oldest call from that IP whose stream of this kind is not latched yet.
  void on_door_media(jn_buf* b, bool video) {
    if (b->src.family != 4) return drop("media", "not IPv4", b->src);
    std::string src = addr_text(b->src) + (video ? "/v" : "/a");
    DoorCall* c = nullptr;
    if (auto m = media_by_src_.find(src); m != media_by_src_.end()) {
      if (auto it = doors_.find(m->second); it != doors_.end()) c = &it->second;
    } else if (auto ip = door_by_ip_.find(ip_key(b->src)); ip != door_by_ip_.end()) {
      for (uint64_t id : ip->second) {
        auto it = doors_.find(id);
        if (it == doors_.end() || (video ? it->second.video_src.family : it->second.audio_to.family)) continue;
        c = &it->second;
        (video ? c->video_src : c->audio_to) = b->src;
        media_by_src_[src] = id;
        break;
      }
    }
    if (!c) return drop("media", "no call from this source", b->src);
    if (c->state == DoorCall::Closing) return drop("media", "call over", b->src);
    c->last_rx = host().now_ms();
    ++(video ? c->video_in : c->audio_in);
    host().bus_publish(video ? c->video_stream() : c->audio_stream(), b);
  }

  // --- the door's A-leg -----------------------------------------------------------------------
  void on_door_leg(DoorCall& c, jn_handle leg, const jn_call_event& ev) {
    if (!c.leg && ev.type != JN_CALL_END && ev.type != JN_CALL_REJECT) c.leg = leg;
    if (c.call_id.empty() && ev.call_id.len) {
      c.call_id = std::string(to_sv(ev.call_id));
      door_by_callid_[c.call_id] = c.id;
    }
    switch (ev.type) {
      case JN_CALL_RINGING: return;
      case JN_CALL_ANSWER: {
        if (c.state != DoorCall::Ringing) return;
        c.state = DoorCall::Answered;
        c.last_rx = host().now_ms();  // the idle clock starts with the answer
        c.answer_bytes = xxxcid::serialise(reply_of(c, xxxcid::kTypeRequest, xxxcid::kOpAnswer, true));
        send_door(c.sig, c.answer_bytes);
        count("door_answered");
        // Talk starts with the answer unless the answer says its audio is off (an xxxcid phone
        // answers with inactive audio until its user presses talk). Peers without a talk step
        // (an intercom-json screen's call_accept, a call with no audio stream described) talk
        // as soon as they answer.
        bool has_audio = false, active_audio = false;
        if (ev.media)
          for (uint32_t i = 0; i < ev.media->count; ++i) {
            const jn_media_stream* s = ev.media->streams[i];
            if (!s || s->kind != JN_MEDIA_AUDIO) continue;
            has_audio = true;
            if (s->direction != JN_DIR_INACTIVE) active_audio = true;
            if (s->bus_stream.len && !c.peer_audio_sub) {
              c.peer_audio = std::string(to_sv(s->bus_stream));
              host().bus_subscribe(c.peer_audio, (c.id << 8) | kSubDoorAudio, &c.peer_audio_sub);
            }
          }
        bool auto_talk = !has_audio || active_audio;
        host().info("door call " + std::to_string(c.id) + " answered" + (auto_talk ? ", talking at once" : ""));
        if (auto_talk) door_command(c, xxxcid::kOpTalk);
        return;
      }
      case JN_CALL_REJECT:
        c.leg = 0;
        host().info("door call " + std::to_string(c.id) + " refused: " + std::to_string(ev.code) + " " +
                    std::string(to_sv(ev.reason)));
        return finish_door(c, xxxcid::kOpBusy);
      case JN_CALL_END:
        c.leg = 0;
        if (c.door_hangup) return finish_door(c, xxxcid::kOpHangup);
        // The other side hung up (steps 19-21): tell the door, retransmitting until it answers.
        c.state = DoorCall::Closing;
        c.cmds.clear();
        door_command(c, xxxcid::kOpHangup);
        return;
      case JN_CALL_INFO: {
        std::string type(to_sv(ev.info_type));
        if (type == "talk") {
          if (c.talking) send_info(c.leg, "talk-begin", R"({"ok":true})");
          else door_command(c, xxxcid::kOpTalk);
        } else if (type == "open-door" || type == "unlock") {
          door_command(c, xxxcid::kOpUnlock);
        } else if (type == "hangup") {
          if (c.state == DoorCall::Closing) return;
          c.state = DoorCall::Closing;
          c.cmds.ack(xxxcid::kOpTalk);
          door_command(c, xxxcid::kOpHangup);
        }
        return;
      }
      default: return;
    }
  }

  void send_info(jn_handle leg, const char* type, const std::string& body) {
    if (!leg) return;
    jn_call_event ev = Host::event(JN_CALL_INFO);
    ev.info_type = to_jn(type);
    ev.info_body = to_jn(body);
    host().call_send(leg, ev);
  }

  bool local_phone(const std::string& call_id) const { return !call_id.empty() && phone_by_callid_.count(call_id); }
  bool local_door(const std::string& call_id) const { return !call_id.empty() && door_by_callid_.count(call_id); }

  // --- the phone's B-leg ----------------------------------------------------------------------
  void on_call(jn_handle leg, uint64_t cookie, const jn_call_event& ev) override {
    if (auto d = doors_.find(cookie); d != doors_.end()) return on_door_leg(d->second, leg, ev);
    if (auto p = phones_calls_.find(cookie); p != phones_calls_.end()) return on_phone_leg(p->second, ev);
    if (ev.type == JN_CALL_OFFER) return on_offer(leg, ev);
    // Late events for a leg we already let go of (it is dead or about to be).
  }

  void on_offer(jn_handle leg, const jn_call_event& ev) {
    std::string target(to_sv(ev.target));
    std::string key;
    for (const char* prefix : {"xxxcid:room/", "xxxcid:phone/"})
      if (target.rfind(prefix, 0) == 0) key = target.substr(std::strlen(prefix));
    if (key.empty()) {
      host().info("offer for " + target + " refused: only rooms (xxxcid:room/<key>) can be called");
      host().call_send(leg, JN_CALL_REJECT, target.rfind("xxxcid:door/", 0) == 0 ? 488 : 404, "not a room");
      return;
    }
    auto room = bindings_.find(key);
    if (room == bindings_.end() || room->second.empty()) {
      host().info("offer for " + target + ": no phone bound to the room");
      host().call_send(leg, JN_CALL_REJECT, 404, "no phone bound to this room");
      return;
    }
    std::vector<std::string> online, free;
    for (auto& [uid, b] : room->second)
      if (is_online(uid)) {
        online.push_back(uid);
        if (!busy(uid)) free.push_back(uid);
      }
    if (online.empty()) {
      count("phone_offline");
      host().info("offer for " + target + ": no phone online");
      host().call_send(leg, JN_CALL_REJECT, 480, "phone offline");
      return;
    }
    if (free.empty()) {
      count("phone_busy");
      host().info("offer for " + target + ": phone busy");
      host().call_send(leg, JN_CALL_REJECT, 486, "busy");
      return;
    }
    PhoneCall pc;
    pc.id = ++next_id_;
    pc.cmds.set_policy(retransmit_ms_, static_cast<uint32_t>(max_retries_));
    pc.leg = leg;
    pc.call_id = std::string(to_sv(ev.call_id));
    std::string from(to_sv(ev.from));
    pc.door = from.rfind("xxxcid:door/", 0) == 0 ? from.substr(12) : from.substr(from.find(':') + 1);
    pc.key = key;
    pc.uids = free;
    if (ev.media)
      for (uint32_t i = 0; i < ev.media->count; ++i) {
        const jn_media_stream* s = ev.media->streams[i];
        if (!s) continue;
        if (s->kind == JN_MEDIA_VIDEO) pc.video_stream = std::string(to_sv(s->bus_stream));
        if (s->kind == JN_MEDIA_AUDIO) pc.audio_stream = std::string(to_sv(s->bus_stream));
      }
    PhoneCall& ref = phones_calls_.emplace(pc.id, std::move(pc)).first->second;
    if (!ref.call_id.empty()) phone_by_callid_[ref.call_id] = ref.id;
    host().leg_set_cookie(leg, ref.id);
    host().call_send(leg, JN_CALL_RINGING);
    for (const std::string& uid : ref.uids) phone_command(ref, uid, "call");
    host().info("ringing " + std::to_string(ref.uids.size()) + " phone(s) of room " + key + " for " + ref.door);
  }

  xxxcid::Order order_for(const PhoneCall& c, const std::string& uid, const char* order) const {
    xxxcid::Order o;
    o.order = order;
    o.door = c.door;
    o.uid = uid;
    if (const Binding* b = binding(c.key, uid)) {
      o.room = b->room;
      o.community = b->community;
    }
    return o;
  }

  void send_phone(const std::string& uid, const std::string& text) {
    auto p = phones_.find(uid);
    if (p == phones_.end()) return;
    host().udp_send(phone_sock_, p->second.addr, text);
  }
  void phone_reply(const PhoneCall& c, const std::string& uid, const char* order) {
    send_phone(uid, xxxcid::serialise_order(order_for(c, uid, order)));
  }
  void phone_command(PhoneCall& c, const std::string& uid, const char* order) {
    send_phone(uid, c.cmds.start(uid, xxxcid::serialise_order(order_for(c, uid, order)), host().now_ms()).payload);
  }

  void on_phone_leg(PhoneCall& c, const jn_call_event& ev) {
    switch (ev.type) {
      case JN_CALL_END:
      case JN_CALL_REJECT: {
        c.leg = 0;
        if (c.phone_hangup) {
          for (auto& uid : c.uids) phone_reply(c, uid, "over success");
          return finish_phone(c);
        }
        // The door hung up or the call was cancelled: "over" to every phone still in it.
        c.state = PhoneCall::Closing;
        c.cmds.clear();
        for (auto& uid : c.uids) phone_command(c, uid, "over");
        if (c.cmds.empty()) finish_phone(c);
        return;
      }
      case JN_CALL_INFO: {
        std::string type(to_sv(ev.info_type));
        json body = json::parse(to_sv(ev.info_body), nullptr, false);
        bool ok = !body.is_object() || body.value("ok", true);
        if (type == "talk-begin" && c.talk_pending) {
          c.talk_pending = false;
          if (!ok) return;
          start_talk(c);
        } else if (type == "open-door-result" && c.unlock_pending) {
          c.unlock_pending = false;
          c.unlock_done_ms = host().now_ms();
          for (auto& uid : c.uids) phone_reply(c, uid, ok ? "unlock success" : "unlock fail");
        } else if (type == "hangup" && c.state != PhoneCall::Closing) {
          c.door_hangup = true;
          c.deadline = host().now_ms() + (max_retries_ + 2) * retransmit_ms_;
          for (auto& uid : c.uids) phone_command(c, uid, "over");
        }
        return;
      }
      default: return;
    }
  }

  void start_talk(PhoneCall& c) {
    c.talking = true;
    if (!c.audio_sub && !c.audio_stream.empty())
      host().bus_subscribe(c.audio_stream, (c.id << 8) | kSubPhoneAudio, &c.audio_sub);
    for (auto& uid : c.uids) phone_reply(c, uid, "talk begin");
  }

  void finish_phone(PhoneCall& c) {
    if (c.video_sub) host().bus_unsubscribe(c.video_sub);
    if (c.audio_sub) host().bus_unsubscribe(c.audio_sub);
    for (auto& uid : c.uids) {
      Tomb& t = tombs_["phone|" + uid + "|" + c.door];
      t.until = host().now_ms() + tombstone_ms_;
    }
    if (c.leg) host().call_send(c.leg, JN_CALL_END, 200, "phone hung up");
    host().info("phone call " + std::to_string(c.id) + " (room " + c.key + ") over");
    if (!c.call_id.empty()) phone_by_callid_.erase(c.call_id);
    phones_calls_.erase(c.id);
  }

  // --- phone datagrams --------------------------------------------------------------------------
  void on_phone_datagram(jn_buf* b) {
    if (b->len == 0) return drop("phone", "empty datagram", b->src);
    uint8_t first = b->data[0];
    if (first == xxxcid::kTagAudio || first == xxxcid::kTagVideo) return on_phone_media(b);
    xxxcid::OrderError err;
    auto o = xxxcid::parse_order(std::string_view(reinterpret_cast<const char*>(b->data), b->len), &err);
    if (!o) return drop("phone", xxxcid::to_string(err), b->src);
    auto bound = uid_rooms_.find(o->uid);
    if (bound == uid_rooms_.end() || bound->second.empty())
      return drop("phone", "unbound uid", b->src, "uid " + o->uid + " is not bound to a room");
    Phone& ph = phones_[o->uid];
    if (ph.addr.family && std::memcmp(&ph.addr, &b->src, sizeof ph.addr) != 0) phone_by_addr_.erase(addr_text(ph.addr));
    ph.addr = b->src;
    ph.last_ms = host().now_ms();
    phone_by_addr_[addr_text(b->src)] = o->uid;
    const std::string& ord = o->order;
    if (ord == "heartbeat") {
      xxxcid::Order r;
      r.order = "heartbeat ok";
      r.uid = o->uid;
      host().udp_send(phone_sock_, b->src, xxxcid::serialise_order(r));
      return;
    }
    if (ord == "call ok") return on_call_ok(*o, b->src);
    if (ord == "enable_video") return on_enable_video(*o, b->src);
    if (ord == "talk") return on_talk(*o, b->src);
    if (ord == "unlock") return on_unlock(*o, b->src);
    if (ord == "over") return on_over(*o, b->src);
    if (ord == "over success") return on_over_success(*o, b->src);
  }

  // The phone's live call with this door (rung or answered by uid).
  PhoneCall* phone_call(const std::string& uid, const std::string& door) {
    for (auto& [id, c] : phones_calls_)
      if ((door.empty() || c.door == door) && std::find(c.uids.begin(), c.uids.end(), uid) != c.uids.end()) return &c;
    return nullptr;
  }

  void refuse(const xxxcid::Order& o, const char* reply, const std::string& why, const jn_addr& from) {
    count(std::string(o.order) + "_refused");
    host().counter_add("xxxcid_refused_total", 1, "order=\"" + std::string(order_label(o.order)) + "\"");
    host().info("phone " + o.uid + " " + o.order + " refused: " + why);
    xxxcid::Order r = o;
    r.order = reply;
    host().udp_send(phone_sock_, from, xxxcid::serialise_order(r));
  }

  // The document's two checks (step 11 and 19): uid bound to roomAddress; uid in a call or talk
  // with doorAddress. Returns the call, or null after refusing with `reply`.
  PhoneCall* checked(const xxxcid::Order& o, const char* reply, const jn_addr& from) {
    const Binding* b = binding(room_key(o.room), o.uid);
    if (o.room.empty() || !b || b->room != o.room) {
      refuse(o, reply, "uid is not bound to room '" + o.room + "'", from);
      return nullptr;
    }
    PhoneCall* c = o.door.empty() ? nullptr : phone_call(o.uid, o.door);
    if (!c || c->state == PhoneCall::Closing || c->key != room_key(o.room)) {
      refuse(o, reply, "uid is in no call or talk with door '" + o.door + "'", from);
      return nullptr;
    }
    return c;
  }

  void on_call_ok(const xxxcid::Order& o, const jn_addr& from) {
    PhoneCall* c = checked(o, "call fail", from);
    if (!c) return;
    if (c->state != PhoneCall::Ringing) return count("phone_duplicates");
    c->state = PhoneCall::Answered;
    // Other phones of the room that were rung: "over" to them.
    std::vector<std::string> others;
    for (auto& uid : c->uids)
      if (uid != o.uid) others.push_back(uid);
    c->uids = {o.uid};
    c->cmds.clear();
    for (auto& uid : others) send_phone(uid, xxxcid::serialise_order(order_for(*c, uid, "over")));
    host().info("phone " + o.uid + " answers door " + c->door);
    std::string mine = c->my_audio();
    jn_media_stream s[2]{};
    s[0].struct_size = s[1].struct_size = sizeof(jn_media_stream);
    s[0].kind = JN_MEDIA_VIDEO;
    s[0].format = to_jn(video_format_);
    s[0].transport = to_jn("udp");
    s[0].direction = JN_DIR_RECVONLY;
    s[1].kind = JN_MEDIA_AUDIO;
    s[1].format = to_jn(audio_format_);
    s[1].clock_rate = 8000;
    s[1].channels = 1;
    s[1].transport = to_jn("udp");
    s[1].direction = JN_DIR_INACTIVE;  // until "talk"
    s[1].bus_stream = to_jn(mine);
    const jn_media_stream* ptrs[2] = {&s[0], &s[1]};
    jn_media_desc desc{sizeof(jn_media_desc), 2, ptrs};
    jn_call_event ev = Host::event(JN_CALL_ANSWER);
    ev.media = &desc;
    count("phone_answered");
    host().call_send(c->leg, ev);
  }

  void on_enable_video(const xxxcid::Order& o, const jn_addr&) {
    PhoneCall* c = phone_call(o.uid, o.door);
    if (!c || c->state != PhoneCall::Answered) return count("phone_stale");
    if (c->video_on) return count("phone_duplicates");
    c->video_on = true;
    if (!c->video_stream.empty()) host().bus_subscribe(c->video_stream, (c->id << 8) | kSubPhoneVideo, &c->video_sub);
    host().info("video to phone " + o.uid + " enabled");
  }

  void on_talk(const xxxcid::Order& o, const jn_addr& from) {
    PhoneCall* c = checked(o, "talk fail", from);
    if (!c) return;
    if (c->state != PhoneCall::Answered) return refuse(o, "talk fail", "call not answered", from);
    if (c->talking) return phone_reply(*c, o.uid, "talk begin");
    if (c->talk_pending) return count("phone_duplicates");
    if (!local_door(c->call_id)) return start_talk(*c);  // another plugin's caller: talking already
    c->talk_pending = true;
    send_info(c->leg, "talk", "{}");
  }

  void on_unlock(const xxxcid::Order& o, const jn_addr& from) {
    PhoneCall* c = checked(o, "unlock fail", from);
    if (!c) return;
    uint64_t now = host().now_ms();
    if (c->unlock_pending) return count("phone_duplicates");
    if (c->unlock_done_ms && now - c->unlock_done_ms < 1000) {
      count("phone_duplicates");
      return phone_reply(*c, o.uid, "unlock success");
    }
    c->unlock_pending = true;
    c->unlock_deadline = now + (max_retries_ + 2) * retransmit_ms_;
    host().info("phone " + o.uid + " unlocks door " + c->door);
    send_info(c->leg, "open-door", json{{"uid", o.uid}, {"room", o.room}, {"door", o.door}}.dump());
  }

  void on_over(const xxxcid::Order& o, const jn_addr& from) {
    PhoneCall* live = o.door.empty() ? nullptr : phone_call(o.uid, o.door);
    if ((!live || live->state == PhoneCall::Closing) && tombs_.count("phone|" + o.uid + "|" + o.door)) {
      count("phone_duplicates");
      xxxcid::Order r = o;
      r.order = "over success";
      host().udp_send(phone_sock_, from, xxxcid::serialise_order(r));
      return;
    }
    PhoneCall* c = checked(o, "over fail", from);
    if (!c) return;
    if (c->phone_hangup) return count("phone_duplicates");
    host().info("phone " + o.uid + " hangs up on door " + c->door);
    if (c->state == PhoneCall::Ringing) {
      c->cmds.ack(o.uid);
      phone_reply(*c, o.uid, "over success");
      c->uids.erase(std::remove(c->uids.begin(), c->uids.end(), o.uid), c->uids.end());
      Tomb& t = tombs_["phone|" + o.uid + "|" + c->door];
      t.until = host().now_ms() + tombstone_ms_;
      if (c->uids.empty()) {
        jn_handle leg = c->leg;
        uint64_t id = c->id;
        c->leg = 0;
        host().call_send(leg, JN_CALL_REJECT, 603, "declined");
        if (auto it = phones_calls_.find(id); it != phones_calls_.end()) finish_phone(it->second);
      }
      return;
    }
    c->phone_hangup = true;
    if (c->door_hangup) return finish_phone(*c);  // crossing hang-ups
    if (local_door(c->call_id)) {
      // The door is told first (op 30, retransmitted); its END brings "over success" (step 22).
      c->deadline = host().now_ms() + (max_retries_ + 3) * retransmit_ms_;
      send_info(c->leg, "hangup", "{}");
      return;
    }
    jn_handle leg = c->leg;
    uint64_t id = c->id;
    c->leg = 0;
    if (leg) host().call_send(leg, JN_CALL_END, 200, "phone hung up");
    if (auto it = phones_calls_.find(id); it != phones_calls_.end()) {
      phone_reply(it->second, o.uid, "over success");
      finish_phone(it->second);
    }
  }

  void on_over_success(const xxxcid::Order& o, const jn_addr&) {
    PhoneCall* c = phone_call(o.uid, o.door);
    if (!c || !c->cmds.ack(o.uid)) return count("phone_stale");
    if (!c->cmds.empty()) return;
    phone_over_done(*c);
  }

  void phone_over_done(PhoneCall& c) {
    if (c.state == PhoneCall::Closing || c.door_hangup) finish_phone(c);  // finish sends END when the leg is alive
  }

  void on_phone_media(jn_buf* b) {
    auto who = phone_by_addr_.find(addr_text(b->src));
    if (who == phone_by_addr_.end()) return drop("phone", "media from an unknown address", b->src);
    if (b->data[0] != xxxcid::kTagAudio) return drop("phone", "phones send audio only", b->src);
    PhoneCall* c = phone_call(who->second, "");
    if (!c || !c->talking) return drop("phone", "audio outside a talk", b->src);
    if (host().buf_is_shared(b)) return drop("phone", "shared buffer", b->src);
    // Strip the tag byte in place (sole owner): the payload itself is never copied.
    b->data += 1;
    b->len -= 1;
    b->headroom += 1;
    host().bus_publish(c->my_audio(), b);
  }

  // --- bus: door video/audio to the phone, phone audio to the door ---------------------------
  void on_bus(jn_handle, uint64_t cookie, jn_buf* b) override {
    uint64_t id = cookie >> 8, kind = cookie & 0xff;
    if (kind == kSubDoorAudio) {
      auto c = doors_.find(id);
      if (c == doors_.end() || !c->second.talking || c->second.audio_to.family == 0) return;
      jn_send s{};
      s.sock = audio_sock_;
      s.to = c->second.audio_to;
      s.buf = b;  // the received buffer itself: no copy
      host().udp_send(&s, 1);
      return;
    }
    auto c = phones_calls_.find(id);
    if (c == phones_calls_.end() || c->second.uids.empty()) return;
    if (kind == kSubPhoneAudio && !c->second.talking) return;
    auto p = phones_.find(c->second.uids.front());
    if (p == phones_.end()) return;
    static constexpr uint8_t kTags[3] = {0, xxxcid::kTagVideo, xxxcid::kTagAudio};
    jn_send s{};
    s.sock = phone_sock_;
    s.to = p->second.addr;
    s.head = &kTags[kind];  // one tag byte before the payload, which is not copied
    s.head_len = 1;
    s.buf = b;
    host().udp_send(&s, 1);
  }

  // A phone silent past the online window (the document's 6 s heartbeat rule) has vanished without
  // its "over": it leaves the calls it rings or talks in, so the door hears busy or the hang-up and
  // the room is free again (busy() would otherwise count the dead call for ever).
  void phones_lost(uint64_t now) {
    std::vector<std::pair<uint64_t, std::vector<std::string>>> lost;
    for (auto& [id, c] : phones_calls_) {
      if (c.state == PhoneCall::Closing || c.phone_hangup || c.door_hangup) continue;  // already ending
      std::vector<std::string> gone;
      for (auto& uid : c.uids)
        if (!is_online(uid)) gone.push_back(uid);
      if (!gone.empty()) lost.emplace_back(id, std::move(gone));
    }
    for (auto& [id, gone] : lost) {
      auto it = phones_calls_.find(id);
      if (it == phones_calls_.end()) continue;
      PhoneCall& c = it->second;
      const bool ringing = c.state == PhoneCall::Ringing;
      for (auto& uid : gone) {
        auto p = phones_.find(uid);
        uint64_t age = p == phones_.end() ? 0 : now - p->second.last_ms;
        host().warn("phone " + uid + " silent for " + std::to_string(age) + " ms" + (ringing ? " while ringing" : "") +
                    ": it leaves call " + std::to_string(id) + " (door " + c.door + ")");
        count("phone_lost");
        // One "over" without retransmission: an app that comes back learns the call is over.
        send_phone(uid, xxxcid::serialise_order(order_for(c, uid, "over")));
        c.cmds.ack(uid);
        c.uids.erase(std::remove(c.uids.begin(), c.uids.end(), uid), c.uids.end());
        tombs_["phone|" + uid + "|" + c.door].until = now + tombstone_ms_;
      }
      if (!c.uids.empty()) continue;  // other phones of the room still ring
      jn_handle leg = c.leg;
      c.leg = 0;
      if (leg) {
        if (ringing) host().call_send(leg, JN_CALL_REJECT, 480, "phone offline");
        else host().call_send(leg, JN_CALL_END, 408, "phone lost");
      }
      if (auto again = phones_calls_.find(id); again != phones_calls_.end()) finish_phone(again->second);
    }
  }

  // --- timer: retransmissions, deadlines, tombstones --------------------------------------------
  void on_timer(jn_handle, uint64_t) override {
    const uint64_t now = host().now_ms();
    log_budget_ = 20;
    std::vector<std::pair<uint64_t, uint8_t>> door_exhausted;
    std::vector<uint64_t> door_deadline, door_lost;
    for (auto& [id, c] : doors_) {
      // Named captures, not the structured bindings: clang before 16 cannot capture those.
      c.cmds.poll(
          now,
          [&, &door = c](uint8_t, const std::string& bytes) {
            count("door_retransmits");
            send_door(door.sig, bytes);
          },
          [&, id = id](uint8_t op) { door_exhausted.push_back({id, op}); });
      if (c.door_hangup && c.deadline && c.deadline <= now) door_deadline.push_back(id);
      // The protocol has no door keepalive, but a door in an answered call streams video: a door
      // silent for door_idle_ms has vanished (power, network) without its op 30.
      if (door_idle_ms_ && c.state == DoorCall::Answered && !c.door_hangup && now - c.last_rx > door_idle_ms_)
        door_lost.push_back(id);
    }
    for (auto [id, op] : door_exhausted) {
      auto it = doors_.find(id);
      if (it == doors_.end()) continue;
      count("door_gave_up");
      door_cmd_done(it->second, op, false);
    }
    for (uint64_t id : door_deadline) {
      auto it = doors_.find(id);
      if (it == doors_.end()) continue;
      jn_handle leg = it->second.leg;
      it->second.leg = 0;
      if (leg) host().call_send(leg, JN_CALL_END, 200, "door hung up");
      if (auto again = doors_.find(id); again != doors_.end()) finish_door(again->second, xxxcid::kOpHangup);
    }
    for (uint64_t id : door_lost) {
      auto it = doors_.find(id);
      if (it == doors_.end() || it->second.state != DoorCall::Answered) continue;
      DoorCall& c = it->second;
      host().warn("door " + c.door.addr + " silent for " + std::to_string(now - c.last_rx) + " ms in call " + std::to_string(id) +
                  ": ending it on both sides");
      count("door_lost");
      // One op 30 without retransmission: a door that comes back learns the call is over.
      send_door(c.sig, xxxcid::serialise(reply_of(c, xxxcid::kTypeRequest, xxxcid::kOpHangup)));
      jn_handle leg = c.leg;
      c.leg = 0;
      c.cmds.clear();
      if (leg) host().call_send(leg, JN_CALL_END, 408, "door lost");
      if (auto again = doors_.find(id); again != doors_.end()) finish_door(again->second, 0);
    }
    phones_lost(now);
    std::vector<uint64_t> phone_done;
    for (auto& [id, c] : phones_calls_) {
      bool gone = false;
      c.cmds.poll(
          now,
          [&](const std::string& uid, const std::string& order) {
            count("phone_retransmits");
            send_phone(uid, order);
          },
          [&](const std::string&) { gone = true; });
      if (gone && c.cmds.empty() && (c.state == PhoneCall::Closing || c.door_hangup)) phone_done.push_back(id);
      if (c.unlock_pending && c.unlock_deadline <= now) {
        c.unlock_pending = false;
        for (auto& uid : c.uids) phone_reply(c, uid, "unlock fail");
      }
      if (c.phone_hangup && c.deadline && c.deadline <= now) phone_done.push_back(id);
    }
    for (uint64_t id : phone_done) {
      auto it = phones_calls_.find(id);
      if (it == phones_calls_.end()) continue;
      if (it->second.phone_hangup)
        for (auto& uid : it->second.uids) phone_reply(it->second, uid, "over success");
      finish_phone(it->second);
    }
    std::erase_if(tombs_, [&](const auto& kv) { return kv.second.until <= now; });
    size_t online = 0;
    for (auto& [uid, p] : phones_)
      if (now - p.last_ms <= online_ms_) ++online;
    host().gauge_set("xxxcid_phones_online", double(online));
    host().gauge_set("xxxcid_door_calls", double(doors_.size()));
    host().gauge_set("xxxcid_phone_calls", double(phones_calls_.size()));
  }

  // --- bindings (KV: "b/<room key>/<uid>" -> {"uid","room","community"}) ----------------------
  void load_bindings() {
    bindings_.clear();
    uid_rooms_.clear();
    for (auto& [k, v] : host().kv_scan("b/")) {
      json j = json::parse(v, nullptr, false);
      if (!j.is_object()) continue;
      Binding b{j.value("uid", ""), j.value("room", ""), j.value("community", "")};
      std::string key = room_key(b.room);
      uid_rooms_[b.uid].insert(key);
      bindings_[key][b.uid] = std::move(b);
    }
  }
  size_t binding_count() const {
    size_t n = 0;
    for (auto& [k, m] : bindings_) n += m.size();
    return n;
  }
  const Binding* binding(const std::string& key, const std::string& uid) const {
    auto r = bindings_.find(key);
    if (r == bindings_.end()) return nullptr;
    auto u = r->second.find(uid);
    return u == r->second.end() ? nullptr : &u->second;
  }
  bool is_online(const std::string& uid) const {
    auto p = phones_.find(uid);
    return p != phones_.end() && p->second.last_ms && host_now() - p->second.last_ms <= online_ms_;
  }
  uint64_t host_now() const { return const_cast<Gateway*>(this)->host().now_ms(); }
  bool online_phone(const std::string& key) const {
    auto r = bindings_.find(key);
    if (r == bindings_.end()) return false;
    for (auto& [uid, b] : r->second)
      if (is_online(uid)) return true;
    return false;
  }
  bool busy(const std::string& uid) const {
    for (auto& [id, c] : phones_calls_)
      if (c.state != PhoneCall::Closing && std::find(c.uids.begin(), c.uids.end(), uid) != c.uids.end()) return true;
    return false;
  }
  void ensure_room_route(const std::string& key) {
    if (room_routes_.count(key)) return;
    jn_handle h = 0;
    if (host().route_add("xxxcid:room/" + key, &h) == JN_OK) room_routes_[key] = h;
  }
  void ensure_door_route(const std::string& door) {
    if (door_routes_.count(door) || door_routes_.size() >= max_doors_) return;
    jn_handle h = 0;
    if (host().route_add("xxxcid:door/" + door, &h) == JN_OK) door_routes_[door] = h;
  }

  // --- admin --------------------------------------------------------------------------------
  void on_admin(const jn_admin_request& req) override {
    std::string verb(to_sv(req.verb));
    std::string_view text = to_sv(req.body);
    json body = text.empty() ? json::object() : json::parse(text, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return reply(req, 400, {{"error", "the body must be a JSON object"}});
    auto s = [&](const char* k) { return body.contains(k) && body[k].is_string() ? body[k].get<std::string>() : std::string(); };
    if (verb == "bind") {
      Binding b{s("uid"), s("room"), s("community")};
      xxxcid::Order probe;
      probe.order = "heartbeat";
      probe.uid = b.uid;
      probe.room = b.room;
      probe.community = b.community;
      if (!xxxcid::parse_order(xxxcid::serialise_order(probe)) || b.room.empty())
        return reply(req, 400, {{"error", "bind needs uid ([0-9A-Za-z._-], 1..64), room (an address, 1..20 of [0-9A-Za-z._-]) and community (text up to 128 bytes)"}});
      std::string key = room_key(b.room);
      json v = {{"uid", b.uid}, {"room", b.room}, {"community", b.community}};
      if (host().kv_put("b/" + key + "/" + b.uid, v.dump()) != JN_OK) return reply(req, 500, {{"error", "store write failed"}});
      uid_rooms_[b.uid].insert(key);
      bindings_[key][b.uid] = b;
      ensure_room_route(key);
      host().info("bound uid " + b.uid + " to room " + b.room + " (" + b.community + ")");
      return reply(req, 200, {{"bound", v}, {"uri", "xxxcid:room/" + key}});
    }
    if (verb == "unbind") {
      std::string uid = s("uid"), room = s("room");
      std::string key = room_key(room);
      if (!binding(key, uid)) return reply(req, 404, {{"error", "no such binding"}});
      host().kv_del("b/" + key + "/" + uid);
      bindings_[key].erase(uid);
      uid_rooms_[uid].erase(key);
      if (uid_rooms_[uid].empty()) {
        uid_rooms_.erase(uid);
        if (auto p = phones_.find(uid); p != phones_.end()) {
          phone_by_addr_.erase(addr_text(p->second.addr));
          phones_.erase(p);
        }
      }
      if (bindings_[key].empty()) {
        bindings_.erase(key);
        if (auto r = room_routes_.find(key); r != room_routes_.end()) {
          host().route_remove(r->second);
          room_routes_.erase(r);
        }
      }
      host().info("unbound uid " + uid + " from room " + room);
      return reply(req, 200, {{"unbound", {{"uid", uid}, {"room", room}}}});
    }
    if (verb == "bindings") {
      json arr = json::array();
      std::string uid = s("uid"), room = s("room");
      for (auto& [key, m] : bindings_)
        for (auto& [u, b] : m)
          if ((uid.empty() || uid == u) && (room.empty() || room_key(room) == key))
            arr.push_back({{"uid", b.uid}, {"room", b.room}, {"community", b.community}, {"online", is_online(u)}});
      return reply(req, 200, arr);
    }
    if (verb == "phones") {
      json arr = json::array();
      for (auto& [uid, p] : phones_)
        arr.push_back({{"uid", uid}, {"addr", addr_text(p.addr)}, {"online", is_online(uid)}, {"busy", busy(uid)},
                       {"age_ms", host().now_ms() - p.last_ms}});
      return reply(req, 200, arr);
    }
    if (verb == "calls") {
      json d = json::array(), p = json::array();
      for (auto& [id, c] : doors_)
        d.push_back({{"id", id}, {"door", c.door.addr}, {"callee", c.callee.addr}, {"state", int(c.state)},
                     {"talking", c.talking}, {"call_id", c.call_id}, {"pending", c.cmds.size()}, {"leg", c.leg},
                     {"video_in", c.video_in}, {"audio_in", c.audio_in},
                     {"video_stream", c.video_stream()}, {"audio_stream", c.audio_stream()}});
      for (auto& [id, c] : phones_calls_)
        p.push_back({{"id", id}, {"door", c.door}, {"room", c.key}, {"uids", c.uids}, {"state", int(c.state)},
                     {"talking", c.talking}, {"video", c.video_on}, {"call_id", c.call_id}, {"leg", c.leg}});
      return reply(req, 200, {{"doors", d}, {"phones", p}});
    }
    if (verb == "stats") {
      json st = json::object();
      for (auto& [k, v] : stats_) st[k] = v;
      st["reloads"] = reloads_;
      st["door_calls_active"] = doors_.size();
      st["phone_calls_active"] = phones_calls_.size();
      return reply(req, 200, st);
    }
    reply(req, 404, {{"error", "unknown command '" + verb + "' (bind, unbind, bindings, phones, calls, stats)"}});
  }
  void reply(const jn_admin_request& req, int status, const json& j) { host().admin_reply(req.reply, status, j.dump()); }

  // --- hot reload ---------------------------------------------------------------------------
  jn_status save_state(std::string& out) override {
    junction::util::StateOut s;
    s["socks"] = {door_sock_, phone_sock_, video_sock_, audio_sock_, mcast_sock_, tick_};
    s["next_id"] = next_id_;
    s["reloads"] = reloads_;
    json st = json::object();
    for (auto& [k, v] : stats_) st[k] = v;
    s["stats"] = st;
    s["room_routes"] = room_routes_;
    s["door_routes"] = door_routes_;
    json ph = json::object();
    for (auto& [uid, p] : phones_) ph[uid] = {addr_json(p.addr), p.last_ms};
    s["phones"] = ph;
    json tombs = json::object();
    for (auto& [k, t] : tombs_) tombs[k] = {json::binary(std::vector<uint8_t>(t.op1_reply.begin(), t.op1_reply.end())),
                         json::binary(std::vector<uint8_t>(t.op30_reply.begin(), t.op30_reply.end())), t.until};
    s["tombs"] = tombs;
    json doors = json::array();
    for (auto& [id, c] : doors_) {
      json cmds = json::object();
      for (auto& [op, cmd] : c.cmds.entries()) cmds[std::to_string(op)] = {cmd.due, cmd.tries};
      doors.push_back({{"id", id}, {"leg", c.leg}, {"call_id", c.call_id}, {"door", c.door.addr}, {"door_ip", ip4_json(c.door.ip)},
                       {"callee", c.callee.addr}, {"callee_ip", ip4_json(c.callee.ip)}, {"sig", addr_json(c.sig)},
                       {"audio_to", addr_json(c.audio_to)}, {"video_src", addr_json(c.video_src)}, {"has_mcast", c.has_mcast}, {"mcast", c.mcast},
                       {"group", ip4_json(c.group)}, {"state", int(c.state)}, {"talking", c.talking},
                       {"door_hangup", c.door_hangup}, {"deadline", c.deadline}, {"last_rx", c.last_rx}, {"video_in", c.video_in}, {"audio_in", c.audio_in}, {"answered", !c.answer_bytes.empty()},
                       {"peer_audio", c.peer_audio}, {"peer_audio_sub", c.peer_audio_sub}, {"cmds", cmds}});
    }
    s["doors"] = doors;
    json phones = json::array();
    for (auto& [id, c] : phones_calls_) {
      json cmds = json::object();
      for (auto& [uid, cmd] : c.cmds.entries()) cmds[uid] = {cmd.payload, cmd.due, cmd.tries};
      phones.push_back({{"id", id}, {"leg", c.leg}, {"call_id", c.call_id}, {"door", c.door}, {"key", c.key},
                        {"uids", c.uids}, {"state", int(c.state)}, {"talking", c.talking}, {"talk_pending", c.talk_pending},
                        {"video_on", c.video_on}, {"phone_hangup", c.phone_hangup}, {"door_hangup", c.door_hangup},
                        {"unlock_pending", c.unlock_pending}, {"unlock_deadline", c.unlock_deadline},
                        {"unlock_done_ms", c.unlock_done_ms}, {"deadline", c.deadline}, {"video_stream", c.video_stream},
                        {"audio_stream", c.audio_stream}, {"video_sub", c.video_sub}, {"audio_sub", c.audio_sub}, {"cmds", cmds}});
    }
    s["phone_calls"] = phones;
    out = s.encode(junction::util::StateEncoding::Cbor);
    return JN_OK;
  }

  jn_status restore_state(uint32_t schema, std::string_view data) override {
    junction::util::StateIn s;
    std::string error;
    if (jn_status st = s.parse(schema, 1, 1, data, error, junction::util::StateEncoding::Cbor); st != JN_OK) {
      host().set_error(error);
      return st;
    }
    auto socks = s["socks"];
    door_sock_ = socks.at(0);
    phone_sock_ = socks.at(1);
    video_sock_ = socks.at(2);
    audio_sock_ = socks.at(3);
    mcast_sock_ = socks.at(4);
    tick_ = socks.at(5);
    s.read("next_id", next_id_);
    reloads_ = s.get<uint64_t>("reloads", 0) + 1;
    for (auto& [k, v] : s["stats"].items()) stats_[k] = v.get<uint64_t>();
    s.read("room_routes", room_routes_);
    s.read("door_routes", door_routes_);
    for (auto& [uid, p] : s["phones"].items()) {
      Phone ph{addr_from(p.at(0)), p.at(1).get<uint64_t>()};
      phones_[uid] = ph;
      phone_by_addr_[addr_text(ph.addr)] = uid;
    }
    for (auto& [k, t] : s["tombs"].items()) {
      auto& b1 = t.at(0).get_binary();
      auto& b2 = t.at(1).get_binary();
      tombs_[k] = Tomb{std::string(b1.begin(), b1.end()), std::string(b2.begin(), b2.end()), t.at(2).get<uint64_t>()};
    }
    for (auto& j : s["doors"]) {
      DoorCall c;
      c.id = j.at("id");
      c.leg = j.at("leg");
      c.call_id = j.at("call_id");
      c.door = {j.at("door"), ip4_from(j.at("door_ip"))};
      c.callee = {j.at("callee"), ip4_from(j.at("callee_ip"))};
      c.sig = addr_from(j.at("sig"));
      c.audio_to = addr_from(j.at("audio_to"));
      c.video_src = addr_from(j.at("video_src"));
      c.has_mcast = j.at("has_mcast");
      c.mcast = j.at("mcast");
      c.group = ip4_from(j.at("group"));
      c.state = DoorCall::State(j.at("state").get<int>());
      c.talking = j.at("talking");
      c.door_hangup = j.at("door_hangup");
      c.video_in = j.at("video_in");
      c.audio_in = j.at("audio_in");
      c.deadline = j.at("deadline");
      c.last_rx = j.value("last_rx", host().now_ms());
      if (j.at("answered").get<bool>()) c.answer_bytes = xxxcid::serialise(reply_of(c, xxxcid::kTypeRequest, xxxcid::kOpAnswer, true));
      c.peer_audio = j.at("peer_audio");
      c.peer_audio_sub = j.at("peer_audio_sub");
      c.cmds.set_policy(retransmit_ms_, static_cast<uint32_t>(max_retries_));
      for (auto& [op, cmd] : j.at("cmds").items()) {
        uint8_t o = static_cast<uint8_t>(std::stoi(op));
        c.cmds.restore(o, xxxcid::serialise(reply_of(c, xxxcid::kTypeRequest, o)), cmd.at(0), cmd.at(1));
      }
      door_by_key_[call_key(c.door.addr, c.callee.addr)] = c.id;
      door_by_ip_[ip_key(c.sig)].insert(c.id);
      if (c.video_src.family) media_by_src_[addr_text(c.video_src) + "/v"] = c.id;
      if (c.audio_to.family) media_by_src_[addr_text(c.audio_to) + "/a"] = c.id;
      if (!c.call_id.empty()) door_by_callid_[c.call_id] = c.id;
      doors_[c.id] = std::move(c);
    }
    for (auto& j : s["phone_calls"]) {
      PhoneCall c;
      c.id = j.at("id");
      c.leg = j.at("leg");
      c.call_id = j.at("call_id");
      c.door = j.at("door");
      c.key = j.at("key");
      c.uids = j.at("uids").get<std::vector<std::string>>();
      c.state = PhoneCall::State(j.at("state").get<int>());
      c.talking = j.at("talking");
      c.talk_pending = j.at("talk_pending");
      c.video_on = j.at("video_on");
      c.phone_hangup = j.at("phone_hangup");
      c.door_hangup = j.at("door_hangup");
      c.unlock_pending = j.at("unlock_pending");
      c.unlock_deadline = j.at("unlock_deadline");
      c.unlock_done_ms = j.at("unlock_done_ms");
      c.deadline = j.at("deadline");
      c.video_stream = j.at("video_stream");
      c.audio_stream = j.at("audio_stream");
      c.video_sub = j.at("video_sub");
      c.audio_sub = j.at("audio_sub");
      c.cmds.set_policy(retransmit_ms_, static_cast<uint32_t>(max_retries_));
      for (auto& [uid, cmd] : j.at("cmds").items()) c.cmds.restore(uid, cmd.at(0), cmd.at(1), cmd.at(2));
      if (!c.call_id.empty()) phone_by_callid_[c.call_id] = c.id;
      phones_calls_[c.id] = std::move(c);
    }
    load_bindings();
    host().info("restored " + std::to_string(doors_.size()) + " door call(s), " + std::to_string(phones_calls_.size()) +
                " phone call(s), " + std::to_string(phones_.size()) + " phone(s) (reload " + std::to_string(reloads_) + ")");
    return JN_OK;
  }

 private:
  [[noreturn]] void bad(const std::string& key, const std::string& why) {
    host().config_error(key, why);
    throw std::invalid_argument(key + ": " + why);
  }

  // conf
  std::string door_listen_ = "127.0.0.1:7610", phone_listen_ = "127.0.0.1:7611";
  std::string video_listen_ = "127.0.0.1:7612", audio_listen_ = "127.0.0.1:7613";
  std::string advertise_ip_, mcast_group_, mcast_listen_ = "0.0.0.0:7614", mcast_iface_ = "0.0.0.0";
  std::string source_check_ = "strict", video_format_ = "H264", audio_format_ = "PCMA";
  uint64_t online_ms_ = 6000, retransmit_ms_ = 500, max_retries_ = 8, tombstone_ms_ = 3000, tick_ms_ = 50, max_doors_ = 10000;
  uint64_t door_idle_ms_ = 60000;  // 0: off
  xxxcid::Ip4 advertise_{};

  // core handles (survive a reload)
  jn_handle door_sock_ = 0, phone_sock_ = 0, video_sock_ = 0, audio_sock_ = 0, mcast_sock_ = 0, tick_ = 0;
  std::map<std::string, jn_handle> room_routes_, door_routes_;

  // state
  uint64_t next_id_ = 0, reloads_ = 0;
  int log_budget_ = 20;
  std::map<std::string, uint64_t> stats_;
  std::map<std::string, std::map<std::string, Binding>> bindings_;  // room key -> uid -> binding
  std::map<std::string, std::set<std::string>> uid_rooms_;          // uid -> room keys
  std::map<std::string, Phone> phones_;
  std::map<std::string, std::string> phone_by_addr_;
  std::map<uint64_t, DoorCall> doors_;
  std::map<std::string, uint64_t> door_by_key_, door_by_callid_;
  std::map<uint32_t, std::set<uint64_t>> door_by_ip_;
  std::map<std::string, uint64_t> media_by_src_;  // "ip:port/v" or "/a" -> door call
  std::map<uint64_t, PhoneCall> phones_calls_;
  std::map<std::string, uint64_t> phone_by_callid_;
  std::map<std::string, Tomb> tombs_;
};

}  // namespace

JUNCTION_PLUGIN(Gateway, "xxxcid-gateway", "1.0.0", "XXXCID door stations <-> phone apps (JSON over UDP)", "xxxcid", 1, 1)
