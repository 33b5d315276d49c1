// verto-ws conferences (README.md, "Conferences"): rooms reached through the core's routing table
// as `conference:<name>-<domain>@<domain>`, their members (any plugin's call), the LiveArray
// codec (bootObj / add / modify / del with a wireSerno per channel), the conference channels
// (liveArray, mod, chat, info), moderator commands, cman bootstrap, and the glue to the audio
// mixer that runs on a media loop (conference_media.cpp).
//
// Split along its seams: conference.cpp rooms, members and signalling; conference_la.cpp the
// LiveArray / pvtData / status codec (pure functions, unit-tested and fuzzed); conference_media.cpp
// the mixer and the video floor.
#pragma once

#include "jsonrpc.hpp"

#include <junction/plugin.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace verto::ws {

class VertoWs;
struct Conn;

// ---------------------------------------------------------------------------------------------
// conf: [conference] (the default profile) and [conference.profiles.NAME], rooms -> profile
// ---------------------------------------------------------------------------------------------
struct ConfProfile {
  uint32_t max_members = 50;
  std::vector<std::string> moderators;  // Verto users who are moderators in every room of the profile
  std::string moderator_pin;            // cman.bootstrap with this "pin" makes the socket a moderator
  bool video = true;                    // the floor holder's video forwarded to every member
  uint32_t rate = 16000;                // mixing rate: 8000, 16000 or 48000
  int talk_threshold = 250;             // mean |sample| of a voiced frame
};

struct ConfConf {
  std::string domain = "junction.local";          // a bare number (`3000`) means 3000-<domain>@<domain>
  ConfProfile defaults;                           // [conference]
  std::map<std::string, ConfProfile> profiles;    // [conference.profiles.NAME]
  std::map<std::string, std::string> rooms;       // [conference.rooms] number -> profile name
};

// Throws std::runtime_error through the reader's failure (conf.cpp's convention).
void read_conference_conf(const nlohmann::json& conf, const std::function<void(const std::string&, const std::string&)>& report,
                          ConfConf& out);

// ---------------------------------------------------------------------------------------------
// model
// ---------------------------------------------------------------------------------------------
struct ConfMember {
  uint32_t id = 0;
  std::string key;          // LiveArray hashKey: the A-leg's Verto callID, else a fresh uuid
  uint64_t cookie = 0;      // our B-leg's cookie
  jn_handle leg = 0;        // our B-leg
  std::string sessid;       // the Verto session whose call this is (pvtData goes there), or empty
  std::string user;         // its Verto user (moderator check), or empty
  std::string cid_number, cid_name, codec;  // codec: "opus@48000", "PCMA@8000", "" (no audio)
  bool moderator = false, muted = false, deaf = false, talking = false, hold = false;
  int energy = 0;
  // media
  int audio_codec = -1;     // junction::audio::Codec, -1: not mixed
  std::string audio_in, video_in;  // the A-leg's bus streams
  std::string audio_out, video_out;  // ours: the mix for this member, the floor's video
  std::string video_codec;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ConfMember, id, key, cookie, leg, sessid, user, cid_number, cid_name, codec, moderator,
                                                muted, deaf, talking, hold, energy, audio_codec, audio_in, video_in, audio_out,
                                                video_out, video_codec)

struct ConfRoom {
  std::string name;         // "3000-seven.local"
  std::string domain;       // "seven.local"
  std::string profile;
  uint64_t serial = 0;      // names its mixer (timers, posts)
  int64_t wire_serno = 0;   // the laChannel's last wireSerno
  uint32_t next_member = 1;
  bool locked = false;
  uint32_t floor = 0;       // audio floor (last talker)
  uint32_t vid_floor = 0;   // video floor set by a moderator (0: follows the audio floor)
  std::string video_codec;  // the room's video codec (the first member's): forwarded, never transcoded
  std::vector<uint32_t> order;  // join order: arrIndex
  std::map<uint32_t, ConfMember> members;
  std::string la() const { return "conference-liveArray." + name + "@" + domain; }
  std::string mod() const { return "conference-mod." + name + "@" + domain; }
  std::string chat() const { return "conference-chat." + name + "@" + domain; }
  std::string info() const { return "conference-info." + name + "@" + domain; }
  uint32_t video_floor() const { return vid_floor ? vid_floor : floor; }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ConfRoom, name, domain, profile, serial, wire_serno, next_member, locked, floor,
                                                vid_floor, video_codec, order, members)

// ---------------------------------------------------------------------------------------------
// LiveArray codec (conference_la.cpp): what goes on the wire, from the model
// ---------------------------------------------------------------------------------------------
namespace la {
std::string member_id(uint32_t id);                            // "0077"
json status(const ConfRoom& r, const ConfMember& m);           // the status object
json member_array(const ConfRoom& r, const ConfMember& m);     // [id, cidNumber, cidName, codec, "<status>", {}, null]
json member_object(const ConfRoom& r, const ConfMember& m, const std::string& node_uuid);  // cman's object form
json boot_obj(const ConfRoom& r);                              // data of a bootObj (array form)
json boot_obj_objects(const ConfRoom& r, const std::string& node_uuid);
json change(const ConfRoom& r, const ConfMember& m, const char* action, int64_t serno);  // add / modify / del
json pvt_data(const ConfRoom& r, const std::string& callid, uint32_t member, bool moderator, bool join);
json layout_info(const ConfRoom& r);
// A room name from what a client sends: "3000" + domain, or "3000-seven.local": false when it is
// not a valid name (letters, digits, '.', '_', '-', at most 128).
bool room_name(const std::string& conference, const std::string& domain, std::string& name, std::string& dom);
// A conference channel: which room and which kind ("liveArray", "mod", "chat", "info").
bool parse_channel(const std::string& channel, std::string& kind, std::string& room, std::string& domain);

// A client's request on a conference channel, checked: what the plugin acts on.
struct Command {
  enum Kind { None, Bootstrap, Mod, Chat, Invalid } kind = None;
  std::string command;   // mod: mute, unmute, tmute, deaf, undeaf, kick, vid-floor, lock, unlock
  uint32_t member = 0;   // mod: the member it applies to (0: none given)
  std::string value, message, why;
};
Command parse_command(const std::string& channel_kind, const json& data);
}  // namespace la

// ---------------------------------------------------------------------------------------------
// the conferences of one plugin instance
// ---------------------------------------------------------------------------------------------
class ConfMix;  // conference_media.cpp: one room's mixer on a media loop
struct TalkEvent {  // the mixer's loop -> the control loop
  uint32_t member;
  bool talking;
  int energy;
};

class Conferences {
 public:
  explicit Conferences(VertoWs& p);
  ~Conferences();

  // A URI this module answers (conference:...).
  static bool is_conference_uri(std::string_view target) { return target.substr(0, 11) == "conference:"; }
  void join(jn_handle leg, const jn_call_event& ev);
  bool owns(uint64_t cookie) const { return by_cookie_.count(cookie) > 0; }
  void on_call(jn_handle leg, uint64_t cookie, const jn_call_event& ev);
  // Subscriptions and broadcasts on conference channels (true: it is one; `allowed`/`reply` set).
  bool channel_allowed(const Conn& c, const std::string& channel) const;
  void subscribed(jn_handle h, const std::string& channel);
  bool broadcast(jn_handle h, Conn& c, verto::Message& m, json& reply);
  void connection_closed(const std::string& sessid, bool session_gone);
  void session_attached(const std::string& sessid);  // a re-login re-attached its calls: pvtData again
  void stop();
  json save() const;
  void restore(const json& saved);
  json admin() const;
  // media (conference_media.cpp)
  bool on_bus(uint64_t cookie, jn_buf* buf);
  bool on_timer(jn_handle h, uint64_t cookie);
  bool on_post(uint64_t cookie);

  static constexpr uint64_t kBusBit = 1ull << 62;  // bus cookies: kBusBit | member cookie * 4 + kind
  static constexpr uint64_t kTimerTag = 0xC0ull << 56, kStartTag = 0xC1ull << 56, kStopTag = 0xC2ull << 56, kTalkPost = 0xC3ull << 56;

 private:
  friend class ConfMix;
  const ConfProfile& profile_of(const ConfRoom& r) const;
  ConfRoom* room(const std::string& name);
  ConfMember* member(ConfRoom& r, uint32_t id);
  bool is_moderator_session(const ConfRoom& r, const std::string& sessid) const;
  void send_pvt(const ConfRoom& r, const ConfMember& m, bool join);
  void la_change(ConfRoom& r, const ConfMember& m, const char* action);
  void leave(const std::string& room_name, uint32_t id, int code, const std::string& reason, bool end_leg);
  void end_room_if_empty(const std::string& room_name);
  json mod_command(Conn& c, ConfRoom& r, const la::Command& cmd);
  void cman_bootstrap(jn_handle h, Conn& c, verto::Message& m, json& reply);
  void set_floor(ConfRoom& r, uint32_t id);
  // media
  void media_join(ConfRoom& r, ConfMember& m);
  void media_leave(ConfRoom& r, ConfMember& m);
  void media_state(ConfRoom& r, ConfMember& m);  // mute / deaf into the mixer
  void media_floor(ConfRoom& r, uint32_t old_floor);
  void media_room_start(ConfRoom& r);
  void media_room_stop(ConfRoom& r);
  void talking_events(uint64_t serial, const std::vector<TalkEvent>& events);
  uint32_t mix_loop(uint64_t serial) const;
  ConfMix* loop_mix(uint32_t k, uint64_t serial) const;  // on loop k
  void loop_stop_mix(uint32_t k, uint64_t serial);       // on loop k
  json mix_stats(uint64_t serial) const;
  json save_mixes() const;
  void restore_mixes(const json& saved);
  std::map<std::string, uint32_t> bus_ids_;  // our output streams, interned

  VertoWs& p_;
  std::string node_uuid_;
  uint64_t room_serial_ = 0;
  std::map<std::string, ConfRoom> rooms_;
  std::map<uint64_t, std::pair<std::string, uint32_t>> by_cookie_;  // B-leg cookie -> room, member
  // Sessions allowed on a room's channels without being members (cman bootstrap), and the
  // moderators among them: sessid -> room names.
  std::map<std::string, std::set<std::string>> watchers_, watcher_mods_;
  // Mixers by room serial: the control loop's (it owns them). Each is also in its loop's map
  // (LoopState::mixes), which only that loop touches: no lock between them.
  std::map<uint64_t, std::shared_ptr<ConfMix>> mixes_;
  std::shared_ptr<ConfMix> mix_of(uint64_t room_serial) const;  // null when the room has no running mixer
  std::map<uint64_t, jn_handle> bus_subs_;  // member cookie*4+kind -> subscription
};

}  // namespace verto::ws
