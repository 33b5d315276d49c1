// The gb28181 plugin: the GB/T 28181 platform (上级平台) devices register to. This class is the
// glue: core hooks -> the SIP stack (junction::sip) -> registrar / keepalive / MANSCDP routing;
// admin verbs (admin.cpp); hot-reload state (state.cpp). The protocol pieces live beside it:
// conf.hpp, registry.hpp, registrar.hpp, redirect.hpp, liveness.hpp, timefmt.hpp, manscdp/.
#pragma once

#include "conf.hpp"
#include "redirect.hpp"
#include "registrar.hpp"
#include "registry.hpp"
#include "manscdp/commands.hpp"
#include "play/center.hpp"
#include "play/media_port.hpp"
#include "play/ps_out.hpp"
#include "play/sdp.hpp"

#include <junction/plugin.hpp>
#include <junction/sip/auth.hpp>
#include <junction/sip/dialog.hpp>
#include <junction/sip/host_env.hpp>
#include <junction/sip/stack.hpp>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace gb {

// A SUBSCRIBE we sent a device (catalog or alarm): its dialog once the 2xx came.
struct OutSub {
  std::string device;
  junction::gb::SubKind kind = junction::gb::SubKind::Catalog;
  std::string call_id, from_tag;
  std::string initial;  // the first SUBSCRIBE as sent (the dialog is built from it and the 2xx)
  bool has_dialog = false;
  junction::sip::Dialog dialog;
};

class GbPlugin : public junction::sdk::Plugin,
                 public junction::sip::StackUser,
                 public RegistrarHooks,
                 public junction::gb::DeviceLink,
                 public play::PlayLink {
 public:
  GbPlugin(junction::sdk::Host h, const jn_create_args& args);

  jn_status start() override;
  jn_status stop() override;  // unload / server stop: media sessions BYEd, receivers closed (not on a reload)
  // Media sockets, timers and posts (src/media/'s, on media loops too) first, then the SIP env's.
  void on_udp(jn_handle s, uint64_t c, const jn_datagram* d, size_t n) override {
    if (ps_out_->on_udp(s, c)) return;  // clients' RTCP to our send ports: not read
    if (!media_->on_udp(s, c, d, n)) env_.on_udp(s, d, n);
  }
  void on_tcp(const jn_tcp_event& ev) override {
    if (ps_out_->on_tcp(ev)) return;
    if (!media_->on_tcp(ev)) env_.on_tcp(ev);
  }
  void on_timer(jn_handle t, uint64_t c) override {
    if (!media_->on_timer(t, c)) env_.on_timer(t, c);
  }
  void on_post(uint64_t c) override {
    if (!ps_out_->on_post(c)) media_->on_post(c);
  }
  void on_bus(jn_handle s, uint64_t c, jn_buf* b) override {
    if (!ps_out_->on_bus(s, c, b)) media_->on_bus(s, c, b);
  }
  void on_work_done(jn_handle w, uint64_t c, jn_status st) override { media_->on_work_done(w, c, st); }
  void on_event(std::string_view topic, std::string_view json) override { media_->on_event(topic, json); }
  void on_call(jn_handle leg, uint64_t cookie, const jn_call_event& ev) override;  // gb: routing (src/play/calls.cpp)
  void on_dns(const jn_dns_result& r) override { env_.on_dns(r); }
  void on_http(const jn_http_request& r) override;  // snapshot uploads (snapshot_store.cpp)
  void on_admin(const jn_admin_request& req) override;           // admin.cpp
  jn_status save_state(std::string& out) override;                 // state.cpp
  jn_status restore_state(uint32_t schema, std::string_view data) override;

  // StackUser
  void on_request(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from) override;
  void on_response(junction::sip::TxnId id, int status, const junction::sip::Message* m) override;
  void on_connection_closed(jn_handle conn) override;
  void on_wake() override;
  void on_cancelled(junction::sip::TxnId id) override;    // a client's CANCEL (src/play/client_invite.cpp)
  void on_ack_timeout(junction::sip::TxnId id) override;  // a client never ACKed our 200

  // RegistrarHooks
  uint64_t now_ms() override { return host().now_ms(); }
  void log(int level, const std::string& msg) override { host().log(level, msg); }
  void count(std::string_view metric, std::string_view labels = {}) override { host().counter_add(metric, 1, labels); }
  void registered(Device& d, bool fresh) override;
  void offline(Device& d, std::string_view reason) override;
  Device* admit(std::string_view id) override;

  // DeviceLink (device_link.cpp): CommandCenter's way to the devices
  bool send_message(const std::string& device_id, const std::string& body, uint64_t msg_id, std::string& error) override;
  bool send_subscribe(const std::string& device_id, junction::gb::SubKind kind, uint32_t expires_s, const std::string& body,
                      std::string& error) override;
  junction::gb::Charset device_charset(const std::string& device_id) override;
  void publish(const std::string& topic, const nlohmann::json& payload) override;
  void arm_timer(uint64_t at_ms) override;
  void cancel_timer() override;
  void log(junction::gb::LogLevel level, std::string_view msg) override;
  void on_result(const junction::gb::CommandResult& result) override;

  // PlayLink (src/play/glue.cpp): the INVITE sessions' way to devices, viewers and the timer
  bool device_flow(const std::string& device, junction::sip::Flow& flow, std::string& error) override;
  std::optional<play::Transport> device_transport(const std::string& device) override;
  void request_keyframe(const std::string& device, const std::string& channel) override;
  void end_viewers(const std::vector<std::string>& viewers, const std::string& reason) override;
  void session_changed(uint64_t id, const nlohmann::json& view) override;
  void count_event(std::string_view metric) override { host().counter_add(metric, 1); }
  void arm_play(uint64_t at_ms) override;

 private:
  // --- MANSCDP (device_link.cpp) ---
  // A MESSAGE / NOTIFY body from a device: decode, keepalive or CommandCenter; answers the request.
  void on_body(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from, Device& d);
  void on_in_dialog(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from);
  std::string sub_key(const std::string& device, junction::gb::SubKind kind) const;
  nlohmann::json subs_to_json() const;
  void subs_from_json(const nlohmann::json& j);
  // --- admin verbs of the CommandCenter (admin_commands.cpp); true when verb was one of them
  bool admin_command(const std::string& verb, const nlohmann::json& body, const jn_admin_request& req);
  void started(const jn_admin_request& req, uint64_t tag, const junction::gb::StartResult& r, const std::string& device);
  // --- snapshots (snapshot_store.cpp)
  // Opens an upload session for a SnapShotConfig; fills session_id / upload_url when empty.
  bool open_snapshot_session(const std::string& device, junction::gb::SnapShotConfig& sc, std::string& error);
  bool snapshot_admin(const std::string& verb, const nlohmann::json& body, const jn_admin_request& req);

  // --- media sessions (src/play/glue.cpp); true when verb was one of them
  bool play_admin(const std::string& verb, const nlohmann::json& body, const jn_admin_request& req);
  play::PlayConf play_conf() const;
  nlohmann::json session_view(const play::PlaySession& s);
  // --- gb: routing (src/play/calls.cpp)
  struct CallViewer {
    std::string device, channel;
    bool answered = false;
    uint64_t session = 0;  // a playback call's own session (0: a live viewer)
  };
  void answer_call(jn_handle leg, const play::PlaySession& s);
  void playback_call_changed(uint64_t id, const nlohmann::json& view);
  bool resolve_channel(std::string_view uri, std::string& device, std::string& channel, std::string& err);
  void answer_calls(const std::string& channel);
  nlohmann::json calls_to_json() const;
  void calls_from_json(const nlohmann::json& j);
  std::map<jn_handle, CallViewer> call_viewers_;  // call legs viewing a channel (viewer id "call:<leg>")
  // --- client-initiated live view (src/play/client_invite.cpp): SIP clients INVITE a channel
  struct ClientViewer {
    std::string device, channel, user;
    junction::sip::TxnId txn = 0;  // the INVITE until the ACK (0 after)
    play::ClientOffer offer;
    std::string ssrc;              // y= of our answer (the RTP SSRC)
    std::string local_ip, local_tag, stream;
    uint16_t local_port = 0;
    uint32_t out = 0;              // PsOut sender
    bool answered = false, acked = false;
    uint64_t created_ms = 0, answered_ms = 0;
    junction::sip::Dialog dialog;
  };
  static std::string client_viewer_id(std::string_view call_id);
  bool is_client_invite(const junction::sip::Message& m);
  void on_client_invite(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from);
  bool client_authorized(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from,
                         std::string& user);
  void client_refuse(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from, int code,
                     const std::string& why, std::string_view extra = {});
  void answer_clients(const std::string& channel);
  bool client_ack(const junction::sip::Message& m);
  bool client_in_dialog(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from);
  // By value: callers pass the map key or a reason that lives in it. unview: false when PlayCenter itself ends the viewer (end_viewers): it is gone from its table already.
  void end_client(std::string viewer, std::string reason, bool send_bye, int code = 480, bool unview = true);
  nlohmann::json clients_view();
  nlohmann::json clients_to_json() const;
  void clients_from_json(const nlohmann::json& j);
  std::map<std::string, ClientViewer> clients_;  // by viewer id "sip:<Call-ID>"
  std::unique_ptr<play::PsOut> ps_out_;
  std::unique_ptr<junction::sip::DigestServer> client_auth_;
  uint32_t next_client_ssrc_ = 0;
  // --- broadcast (src/play/broadcast.cpp)
  struct Broadcast {
    std::string device, source;
    uint32_t sender = 0;
    bool has_dialog = false;
    junction::sip::Dialog dialog;
  };
  bool broadcast_admin(const std::string& verb, const nlohmann::json& body, const jn_admin_request& req);
  void on_invite(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from);
  bool broadcast_in_dialog(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from);
  void end_broadcast(const std::string& channel, const std::string& reason, bool send_bye);
  nlohmann::json broadcasts_to_json() const;
  void broadcasts_from_json(const nlohmann::json& j);
  std::map<std::string, Broadcast> broadcasts_;  // by the device's audio output channel
  // MediaStatus Notify from a device (MESSAGE, possibly in an INVITE dialog): true when handled.
  bool media_status(const junction::gb::Body& body, const junction::sip::Message& m, Device& d);

  // --- requests (plugin.cpp) ---
  // dialog_device: the device of the INVITE session the MESSAGE is in (RFC 3261: its From is the
  // dialog's remote URI, the channel the INVITE named, not the device); null: the From user.
  void on_message(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from,
                  const std::string* dialog_device = nullptr);
  void on_keepalive(junction::sip::TxnId id, const junction::sip::Message& m, Device& d);
  // The device a request is from (From user), refreshed with the request's real source.
  Device* sender(const junction::sip::Message& m, const junction::sip::Flow& from);
  Device* touch(Device* d, const junction::sip::Flow& from);  // NAT refresh of a known sender
  void bad_request(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from, int code,
                   const std::string& why, std::string_view extra = {});
  // --- liveness ---
  void sweep();
  void schedule_sweep(uint64_t at);
  void arm();
  void update_gauges();
  // --- admin (admin.cpp) ---
  void reply(const jn_admin_request& req, int status, const nlohmann::json& body) {
    host().admin_reply(req.reply, status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  nlohmann::json device_view(const Device& d, bool full);
  void load_devices();
  bool store_device(const DeviceConf& c);

  Conf conf_;
  junction::sip::HostEnv env_;
  std::unique_ptr<junction::sip::Stack> stack_;
  Registry reg_;
  std::unique_ptr<Redirector> redirect_;
  std::unique_ptr<Registrar> registrar_;
  uint64_t sweep_at_ = UINT64_MAX, last_sweep_ = 0;
  // TCP connection -> devices whose flow named it (checked against the device's current flow
  // when the connection closes), so a close costs its devices, not a pass over the registry.
  std::unordered_map<jn_handle, std::unordered_set<std::string>> by_conn_;
  void index_conn(const Device& d);
  uint64_t keepalives_ = 0, keepalive_refused_ = 0, offline_events_ = 0;
  // MANSCDP
  std::unique_ptr<junction::gb::CommandCenter> cc_;
  uint64_t cc_timer_at_ = UINT64_MAX;
  std::unordered_map<junction::sip::TxnId, uint64_t> msg_txn_;  // our MESSAGE -> CommandCenter msg_id
  struct SubTxn {
    std::string key;
    uint32_t asked = 0;
  };
  std::unordered_map<junction::sip::TxnId, SubTxn> sub_txn_;  // our SUBSCRIBE -> subscription
  std::map<std::string, OutSub> subs_;                         // by sub_key
  std::map<uint64_t, jn_handle> admin_waiting_;                // command tag -> admin reply handle
  // Results that complete while a device's body is being handled wait until its SIP answer is
  // sent: the device hears its 200 before the admin caller hears the result.
  bool in_body_ = false;
  std::vector<junction::gb::CommandResult> deferred_;
  void deliver(const junction::gb::CommandResult& r);
  uint64_t next_tag_ = 1;
  // media sessions
  std::unique_ptr<play::PlayMedia> media_;
  std::unique_ptr<play::PlayCenter> play_;
  uint64_t play_timer_at_ = UINT64_MAX;
};

}  // namespace gb
