// verto-ws internals shared by its source files: the conf, the state the plugin keeps (connections,
// sessions, calls; all serialisable for a hot reload), the cause table, and the VertoWs class.
// Its member functions live in the file of their seam (README.md, "Sources"):
// plugin.cpp hooks and timers, ws.cpp transport and dispatch, sessions.cpp login, events.cpp
// channels, calls.cpp Verto <-> core calls, call_media.cpp WebRTC glue, state.cpp reload codec,
// admin.cpp users and tokens, conf.cpp the conf.
#pragma once

#include "conference.hpp"
#include "credentials.hpp"
#include "jsonrpc.hpp"
#include "loop_ring.hpp"
#include "media.hpp"
#include "media_desc.hpp"

#include <junction/plugin.hpp>
#include <junction/util/addr.hpp>
#include <junction/util/config.hpp>
#include <junction/util/state.hpp>
#include <junction/media_frame.h>
#include <junction/webrtc/srtp.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace verto::ws {

using junction::sdk::Host;
using junction::sdk::to_jn;
using junction::sdk::to_sv;
using verto::json;

constexpr uint32_t kStateSchema = 1;
constexpr uint64_t kTickCookie = 1, kHeartbeatCookie = 2, kMediaTickCookie = 3, kDeferredCookie = 4;
constexpr uint64_t kMediaTickMs = 20;
// Posts to media loops: the tag in the low byte, a leg id or a loop number above it.
constexpr uint64_t kDrainTag = 0x10, kLoopTickTag = 0x11, kInboxTag = 0x12;
constexpr int64_t kTickMs = 1000;
const char* const kSdpHeader = "app-verto-sdp";

// ---------------------------------------------------------------------------------------------
// conf
// ---------------------------------------------------------------------------------------------
struct Conf {
  std::string listen = "127.0.0.1:8082";
  std::string ws_path = "/verto";
  std::string tls_cert, tls_key;
  std::vector<std::string> allowed_origins = {"http://127.0.0.1", "http://localhost"};
  bool allow_no_origin = true;
  uint32_t max_message = 262144;
  uint32_t max_batch = 16;
  uint32_t login_timeout_ms = 10000;
  uint32_t idle_ping_ms = 30000;
  uint32_t idle_timeout_ms = 90000;
  uint32_t rate_per_s = 20;
  uint32_t rate_burst = 50;
  uint32_t bad_limit = 20;
  uint32_t kdf_iterations = 100000;
  uint32_t token_ttl_s = 86400;
  uint32_t detach_timeout_ms = 30000;
  uint32_t heartbeat_ms = 20000;
  std::string heartbeat_channel = "FSevent.heartbeat";
  std::vector<std::string> channels = {"FSevent.heartbeat", "chat.*"};
  std::map<std::string, std::vector<std::string>> user_channels;
  std::vector<std::string> core_events;
  std::string default_scheme = "verto";
  std::string media = "webrtc";  // webrtc: the server terminates the browser's media; none: signalling only
  verto::MediaConf media_conf;
  ConfConf conference;  // [conference]: conference.cpp
  bool data_channels = false;  // WebRTC data channels (usrsctp), README "Data channels"
};


// conf.cpp: the plugin's conf (throws on a bad one: the core refuses the plugin).
Conf read_conf(const junction::sdk::Host& host);


// ---------------------------------------------------------------------------------------------
// state
// ---------------------------------------------------------------------------------------------
struct Conn {
  jn_handle h = 0;
  std::string peer, origin, sessid, user;
  bool authed = false;
  bool closing = false;
  uint64_t opened_ms = 0, last_rx_ms = 0, pinged_ms = 0;
  double tokens = 0;
  uint64_t refill_ms = 0;
  uint32_t bad = 0;
  std::set<std::string> subs;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Conn, h, peer, origin, sessid, user, authed, closing, opened_ms, last_rx_ms, pinged_ms,
                                                tokens, refill_ms, bad, subs)

struct Session {
  std::string sessid, user;
  jn_handle conn = 0;  // 0: detached (socket lost), calls kept until detach_timeout_ms
  uint64_t detached_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Session, sessid, user, conn, detached_ms)

enum CallState { kDialing = 0, kEarly = 1, kAnswered = 2 };

struct Call {
  uint64_t id = 0;
  std::string callid;   // Verto callID (the browser's for its calls, ours for inbound ones)
  std::string sessid, user;
  jn_handle leg = 0;
  bool inbound = false; // the core offered this leg to the browser
  int state = kDialing;
  bool held = false;
  std::string far_sdp;  // the other side's SDP (its offer for inbound calls, its answer otherwise)
  std::string own_sdp;  // the browser's SDP
  std::string peer_uri, peer_name, core_call_id;
  bool media = false;    // a MediaLeg terminates the browser's WebRTC
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Call, id, callid, sessid, user, leg, inbound, state, held, far_sdp, own_sdp, peer_uri,
                                                peer_name, core_call_id, media)

// A password check (or hash) on the worker pool: PBKDF2 takes tens of milliseconds, which no
// loop may spend.
struct KdfJob {
  enum Kind { Verify, Hash } kind = Verify;
  std::string password, record, result;
  uint32_t iterations = 0;
  bool ok = false;
  // Verify: the login waiting for it
  jn_handle conn = 0;
  json id;
  std::string user, sessid;
  // Hash: the admin request waiting for it
  jn_handle reply = 0;
  json user_record;
  static void run(void* arg) {
    auto* j = static_cast<KdfJob*>(arg);
    if (j->kind == Verify) {
      j->ok = verto::password_verify(j->password, j->record);
    } else {
      j->result = verto::password_hash(j->password, j->iterations);
      j->ok = !j->result.empty();
    }
  }
};

// Core codes <-> Verto (Q.850) causes.
struct Cause {
  int code;
  const char* name;
  int q850;
};
constexpr Cause kCauses[] = {
    {200, "NORMAL_CLEARING", 16},       {486, "USER_BUSY", 17},          {480, "NO_USER_RESPONSE", 18},
    {408, "NO_ANSWER", 19},             {603, "CALL_REJECTED", 21},      {404, "UNALLOCATED_NUMBER", 1},
    {502, "NO_ROUTE_DESTINATION", 3},   {487, "ORIGINATOR_CANCEL", 487}, {503, "NORMAL_TEMPORARY_FAILURE", 41},
    {488, "INCOMPATIBLE_DESTINATION", 88}, {500, "NORMAL_UNSPECIFIED", 31}, {410, "NUMBER_CHANGED", 22},
};
inline const Cause& cause_of_code(int code) {
  for (const auto& c : kCauses)
    if (c.code == code) return c;
  if (code >= 200 && code < 300) return kCauses[0];
  return kCauses[10];  // NORMAL_UNSPECIFIED
}
inline int code_of_cause(const json& params) {
  if (auto it = params.find("causeCode"); it != params.end() && it->is_number_integer())
    for (const auto& c : kCauses)
      if (c.q850 == it->get<int>()) return c.code;
  if (auto it = params.find("cause"); it != params.end() && it->is_string())
    for (const auto& c : kCauses)
      if (it->get_ref<const std::string&>() == c.name) return c.code;
  return 200;
}

inline std::string str_of(const json& o, const char* key) {
  if (!o.is_object()) return {};
  auto it = o.find(key);
  if (it == o.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  return {};
}

// callID from params.dialogParams.callID or params.callID (the document's bye sample has neither:
// then the connection's only call).
inline std::string callid_of(const json& params) {
  std::string id;
  if (auto d = params.find("dialogParams"); d != params.end()) id = str_of(*d, "callID");
  if (id.empty()) id = str_of(params, "callID");
  return id;
}

inline uint64_t unix_now() { return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()); }


// Work handed between the control loop and a media loop (rare: control changes, reports back;
// never per frame). Allocated by the sender, run and freed by the receiver.
using Task = std::function<void()>;

// What belongs to one media loop (index k; 0 = the control loop when there are no media loops).
// `legs` and `mixes` are touched by that loop only; the rings have one producer and one consumer
// each, so nothing here needs a lock.
struct LoopState {
  verto::SpscRing<Task*, 4096> in;   // control loop -> this loop (run by run_inbox on this loop)
  verto::SpscRing<Task*, 4096> out;  // this loop -> the control loop (run by run_outboxes)
  std::vector<Task*> backlog;        // control loop only: what did not fit in `in` yet, in order
  std::unordered_map<uint64_t, verto::MediaLeg*> legs;  // this loop's legs (owned by VertoWs::media_ / graveyard_)
  std::unordered_map<uint64_t, ConfMix*> mixes;         // this loop's mixers (owned by Conferences::mixes_)
  std::atomic<uint64_t> out_dropped{0};
  ~LoopState() {
    Task* t = nullptr;
    while (in.pop(t)) delete t;
    while (out.pop(t)) delete t;
    for (Task* b : backlog) delete b;
  }
};

class VertoWs : public junction::sdk::Plugin {
 public:
  VertoWs(Host host, const jn_create_args& args)
      : Plugin(host), conf_(read_conf(host)), generation_(args.generation), control_thread_(std::this_thread::get_id()) {
    for (uint32_t k = 0; k <= host.media_loops(); ++k) loops_.push_back(std::make_unique<LoopState>());
    confs_ = std::make_unique<Conferences>(*this);
  }

  // --- lifecycle (plugin.cpp; init_media: call_media.cpp; save/restore_state: state.cpp) ------
  jn_status start() override;
  bool media_on() const { return conf_.media == "webrtc"; }

  bool init_media(const std::string& pem);
  void start_timers();
  jn_status save_state(std::string& out) override;
  jn_status restore_state(uint32_t schema, std::string_view data) override;

  // --- WebSocket (ws.cpp) ---------------------------------------------------------------------
  void on_ws(const jn_ws_event& ev) override;
  static std::string header(const jn_ws_event& ev, std::string_view name);
  void on_upgrade(const jn_ws_event& ev);
  Conn* conn(jn_handle h);
  Call* call(uint64_t id);
  Call* call_by_callid(const std::string& callid);
  void send(jn_handle h, const json& j);
  // A server request (integer id) to a connection.
  void request(jn_handle h, const std::string& method, json params) { send(h, verto::make_request(++server_id_, method, std::move(params))); }

  void bad(Conn& c, const std::string& why);
  bool take_token(Conn& c);
  void on_text(jn_handle h, std::string_view text);
  json handle(jn_handle h, verto::Message& m);

  // --- login (sessions.cpp; on_closed: ws.cpp) ------------------------------------------------
  json login(jn_handle h, verto::Message& m);
  std::string dummy_record();
  void on_work_done(jn_handle, uint64_t cookie, jn_status status) override;
  json finish_login(jn_handle h, const json& id, const std::string& user, const std::string& sessid, const char* how);
  void on_closed(jn_handle h);

  // --- subscriptions and events (events.cpp) --------------------------------------------------
  const std::vector<std::string>& patterns_of(const std::string& user) const;
  json subscribe(Conn& c, verto::Message& m, bool on);
  size_t deliver(const std::string& channel, json params);
  json broadcast(Conn& c, verto::Message& m);
  void on_event(std::string_view topic, std::string_view text) override;
  void heartbeat();

  // --- timers (plugin.cpp) --------------------------------------------------------------------
  void on_timer(jn_handle, uint64_t cookie) override;

  // --- calls: the browser's side (calls.cpp) --------------------------------------------------
  std::string dest_uri(const std::string& number) const;
  json invite(jn_handle h, verto::Message& m);
  Call* named_call(Conn& c, const json& params);
  json no_call(Conn& c, verto::Message& m);
  json answer(jn_handle h, verto::Message& m);
  json bye(jn_handle h, verto::Message& m);
  json info(jn_handle h, verto::Message& m);
  json modify(jn_handle h, verto::Message& m);
  json update_media(Conn& c, Call& cl, verto::Message& m);
  void reoffer(Call& cl, const jn_call_event& ev);
  json display(jn_handle h, verto::Message& m);
  json attach_answer(jn_handle h, verto::Message& m);
  void end_call(uint64_t id, int code, const std::string& reason, bool tell_browser = true);
  void forget(uint64_t id);
  static std::string header_of(const jn_call_event& ev, std::string_view name);
  jn_handle conn_of_session(const std::string& sessid);

  // --- calls: the core's side (calls.cpp) -----------------------------------------------------
  void on_call(jn_handle leg, uint64_t cookie, const jn_call_event& ev) override;
  void incoming(jn_handle leg, const jn_call_event& ev);

  // --- media glue (call_media.cpp; reoffer_after_reload: state.cpp) ---------------------------
  std::string stream_prefix(uint64_t id) const { return "verto/" + std::to_string(id); }

  verto::MediaLeg* leg_of(uint64_t id);
  verto::MediaLeg* peer_leg(uint64_t id);
  static bool has_av(const jn_media_desc* d);
  static void far_media(const jn_media_desc* d, junction::webrtc::LocalMedia& audio, junction::webrtc::LocalMedia& video);
  std::unique_ptr<verto::MediaLeg> new_leg(uint64_t id, std::string& why);
  void on_post(uint64_t cookie) override;
  bool start_outbound_media(uint64_t id, const jn_media_desc* d, std::string& sdp, std::string& why);
  void media_failed(uint64_t id, const std::string& why);
  void retire(uint64_t id);
  // The leg's loop runs its drain(): now when that is the control loop, else through a post.
  void wake(verto::MediaLeg& leg);
  // The hand-offs (call_media.cpp). to_loop: control loop only; runs t on loop k (k = 0: now).
  // to_control: from loop k (or the control loop): runs t on the control loop, later.
  void to_loop(uint32_t k, Task t);
  void to_control(uint32_t k, Task t);
  void run_inbox(uint32_t k);   // on loop k
  void run_outboxes();          // on the control loop
  bool on_control() const { return std::this_thread::get_id() == control_thread_; }
  uint32_t loop_of_leg(uint64_t id) const {
    const uint64_t n = loops_.size() - 1;  // media_loops(), fixed for the process
    return n ? 1 + static_cast<uint32_t>(id % n) : 0;
  }
  verto::MediaLeg* loop_leg(uint32_t k, uint64_t id);  // on loop k: its leg with that id
  void hand_off(verto::MediaLeg& leg);  // control loop: the leg (PeerConnection started) goes to its loop
  void set_hold(verto::MediaLeg& leg, bool on);
  void finish_update(jn_handle h, const json& msg_id, uint64_t id, const std::string& sdp, bool ok, bool fresh,
                     const std::string& answer, const std::string& why, const junction::webrtc::AnswerResult* neg);
  void admin_sessions(jn_handle reply);
  void graves_ready();
  void want_keyframe(verto::MediaLeg& leg) {
    if (leg.want_keyframe()) wake(leg);
  }
  void reoffer_after_reload();
  void media_tick();
  void on_udp(jn_handle, uint64_t cookie, const jn_datagram* d, size_t n) override;
  void on_bus(jn_handle, uint64_t cookie, jn_buf* buf) override;

  // --- admin: users and tokens (admin.cpp; stop, gauges, join: plugin.cpp) --------------------
  void on_admin(const jn_admin_request& req) override;
  size_t revoke_tokens(const std::string& user);
  jn_status stop() override;
  void gauges();
  static std::string join(const std::vector<std::string>& v);
  Conf conf_;
  uint64_t generation_ = 0;
  jn_handle endpoint_ = 0, tick_ = 0, heartbeat_ = 0;
  uint64_t serial_ = 0, started_ms_ = 0;
  int64_t server_id_ = 0;
  uint64_t event_serno_ = 0;
  std::map<jn_handle, Conn> conns_;
  std::map<std::string, Session> sessions_;
  std::map<uint64_t, Call> calls_;
  std::map<std::string, uint64_t> by_callid_;
  std::map<uint64_t, std::unique_ptr<KdfJob>> jobs_;
  junction::webrtc::Certificate cert_;
  junction::webrtc::SctpStack sctp_;
  // The control loop's legs (it owns them; once handed off, their PeerConnection belongs to
  // their loop: LoopState::legs).
  std::map<uint64_t, std::unique_ptr<verto::MediaLeg>> media_;
  jn_handle media_tick_ = 0;
  // Retired legs: released (sockets closed, destroyed) once their loop let go of them (ready).
  struct Grave {
    std::unique_ptr<verto::MediaLeg> leg;
    bool ready = false;
  };
  std::vector<Grave> graveyard_;
  std::thread::id control_thread_;
  std::vector<std::unique_ptr<LoopState>> loops_;
  verto::OwnerStats owner_stats_;
  std::vector<Task> deferred_;  // control loop only
  std::vector<uint64_t> failed_;
  struct Reoffer {
    uint64_t id;
    junction::webrtc::LocalMedia audio, video;
  };
  std::vector<Reoffer> reoffer_;
  std::string dummy_;
  std::unique_ptr<Conferences> confs_;  // rooms, LiveArray, mixers (conference*.cpp)
};

}  // namespace verto::ws
