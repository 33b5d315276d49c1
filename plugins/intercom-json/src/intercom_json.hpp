// intercom-json: the plugin class. Its member functions are defined along the protocol's seams
// (README "Source layout"): intercom_json.cpp (lifecycle, event dispatch, the factory),
// session.cpp (connections, frames, join, keepalive), calls.cpp (call requests, call messages,
// call-leg events), bus_media.cpp (pulls, pushes, bus), state.cpp (hot reload), admin_conf.cpp
// (admin commands, alarms, tokens, conf parsing).
#pragma once

#include <junction/plugin.hpp>

#include "bus_media.hpp"
#include "model.hpp"
#include "protocol.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace intercom_json {

constexpr uint32_t kStateSchema = 1;
constexpr uint64_t kListenerCookie = 1;
constexpr uint64_t kTickCookie = 2;
// Stream pulls (screen -> bus): their streamed HTTP requests' cookie, and their retry timers' cookies
// (kPullTimerBase + the pull's id).
constexpr uint64_t kPullCookie = 3;
constexpr uint64_t kPullTimerBase = uint64_t{1} << 40;
// Pushes (bus -> screen): TCP cookie, retry timers (kPushTimerBase + id), bus subscriptions
// (kPushBusBase + id * 2 + 0 video / 1 audio).
constexpr uint64_t kPushCookie = 4;
constexpr uint64_t kPushTimerBase = uint64_t{2} << 40;
constexpr uint64_t kPushBusBase = uint64_t{3} << 40;
constexpr std::string_view kScheme = "intercom:";

class IntercomJson : public junction::sdk::Plugin {
 public:
  IntercomJson(Host host, const jn_create_args& args) : Plugin(host), conf_(read_conf(host)), generation_(args.generation) {}

  // --- lifecycle ---------------------------------------------------------------------------------
  jn_status start() override;
  jn_status save_state(std::string& out) override;
  jn_status restore_state(uint32_t schema, std::string_view data) override;

  // --- TCP -------------------------------------------------------------------------------------
  void on_tcp(const jn_tcp_event& ev) override;

  // --- timers ------------------------------------------------------------------------------------
  void on_timer(jn_handle, uint64_t cookie) override;

  // --- alarms from other plugins (and POST /api/v1/events) ---------------------------------------
  void on_event(std::string_view topic, std::string_view text) override;

  // --- calls from the core ---------------------------------------------------------------------------
  void on_call(jn_handle leg, uint64_t cookie, const jn_call_event& ev) override;

  // --- admin ---------------------------------------------------------------------------------------
  void on_admin(const jn_admin_request& req) override;

 private:
  // ================================================================================================
  // helpers
  // ================================================================================================
  uint64_t tick_ms() const { return std::clamp<uint64_t>(conf_.keep_interval_ms / 4, 20, 1000); }
  bool door_allowed(const std::string& peer) const;
  uint64_t now() { return host().now_ms(); }
  std::string next_msg_id() { return "box-" + std::to_string(++msg_serial_); }

  void reply(const jn_admin_request& req, int status, const json& j);
  void gauge();
  Conn* conn(jn_handle h);
  Call* call(uint64_t id);
  void send(jn_handle h, std::string_view name, const json& values, std::string_view id = {});
  void send_error(jn_handle h, const Error& e);
  void bad_input(jn_handle h, const Error& e);
  void soft_error(jn_handle h, const std::string& id, int code, const std::string& reason, const std::string& message);
  void rebuild_indexes();
  void add_route(const std::string& uri);
  void remove_route(const std::string& uri);

  // ================================================================================================
  // frames
  // ================================================================================================
  void on_frame(jn_handle h, std::string_view frame);
  Error values_error(const Message& m, const std::string& why);

  // ================================================================================================
  // registration (section 3)
  // ================================================================================================
  void on_join(jn_handle h, const Message& m);
  void unjoin(jn_handle h);

  // ================================================================================================
  // call_req from a device: an A-leg through the core
  // ================================================================================================
  std::string dest_uri(const Endpoint& d, int& guessed_type) const;
  bool take_call_token(Conn& c);
  void on_call_req(jn_handle h, const Message& m);
  static void add_streams(MediaOut& media, const Endpoint& src, const Endpoint& dest, Server server);

  static std::string data_params(const std::string& sid, const Endpoint& src, const Endpoint& dest, int src_type, int dest_type,
                                 const std::string& src_dev) {
    return "sid=" + param_escape(sid) + ";src_id=" + param_escape(src.id) + ";src_type=" + std::to_string(src_type) +
           ";src_ip=" + param_escape(src.ip) + ";src_port=" + std::to_string(src.port) + ";src_dev=" + param_escape(src_dev) +
           ";dest_id=" + param_escape(dest.id) + ";dest_type=" + std::to_string(dest_type) + ";dest_ip=" + param_escape(dest.ip) +
           ";dest_port=" + std::to_string(dest.port);
  }

  void drop_call(uint64_t id);
  void a_leg_event(uint64_t id, const jn_call_event& ev);
  static json stream_fields(const Endpoint& e);

  // ================================================================================================
  // an OFFER to an intercom: URI: a B-leg; ring the family's screens, the device, or dial dest.ip
  // ================================================================================================
  void incoming_offer(jn_handle leg, const jn_call_event& ev);
  void send_call_req(const Call& c, const Party& p);
  void on_connected(jn_handle h, const jn_addr& peer);
  void b_leg_event(uint64_t id, const jn_call_event& ev);

  // ================================================================================================
  // call_accept / call_reject / call_end / call_keep / open_door from a device
  // ================================================================================================
  void on_call_message(jn_handle h, const Message& m);
  void answer(uint64_t id, jn_handle h, const std::string& sid, const Endpoint& asrc, const Endpoint& adest);

  // ================================================================================================
  // screen -> bus: HTTP-FLV pulls from the stream server (README "Media on the bus")
  // ================================================================================================
  std::string unique_bus_base(const std::string& sid, uint64_t call_id) const;
  void add_bus_streams(MediaOut& media, const Call& c, const Endpoint& e, bool offer = false) const;
  void add_bus_streams(MediaOut& media, const Call& c) const { add_bus_streams(media, c, c.dest); }

  static void far_bus_streams(const jn_media_desc* media, Call& c);
  std::string pull_url_of(const std::string& v) const;
  bool start_pulls(Call& c, const Endpoint& e);
  void stop_pulls(uint64_t call_id);
  void pull_connect(uint64_t pid);
  void pull_retry_later(uint64_t pid);
  void pull_retry_due(uint64_t pid);
  void pull_close(uint64_t pid, bool retry);
  void on_http_chunk(const jn_http_client_chunk& c) override;       // a pull's head and body (2.3)
  void on_http_response(const jn_http_client_response& r) override;  // a pull's end
  void publish_frame(uint64_t pid, const junction::media::FrameView& f);
  json list_pulls() const;

  // ================================================================================================
  // bus -> screen: the far leg's bus streams pushed by RTMP to the stream server
  // ================================================================================================
  void start_push(Call& c);
  Push* push(uint64_t pid);
  void stop_push(uint64_t call_id);
  void push_connect(uint64_t pid);
  void push_retry_later(uint64_t pid);
  void push_retry_due(uint64_t pid);
  void push_state(uint64_t pid, junction::rtmp::PublisherStatus st, std::string_view why);
  void on_push_tcp(const jn_tcp_event& ev);
  void on_bus(jn_handle, uint64_t cookie, jn_buf* buf) override;
  json list_pushes();

  // ================================================================================================
  // connection lost: every call it was part of ends, on both sides
  // ================================================================================================
  void on_closed(jn_handle h, jn_status status);

  // ================================================================================================
  // call_keep: sent to every device in an answered call each keep_interval_ms; a device silent for
  // keep_interval_ms * keep_max_missed ends its call on both sides.
  // ================================================================================================
  void keepalive_tick();

  // ================================================================================================
  // alarms (section 4)
  // ================================================================================================
  json raise_alarm(const json& j, const std::string& origin);

  // ================================================================================================
  // tokens and devices (admin)
  // ================================================================================================
  void issue_token(const jn_admin_request& req, const json& b);
  void revoke_token(const jn_admin_request& req, const json& b);
  json list_devices();
  json list_tokens();

  // ================================================================================================
  Conf conf_;
  uint64_t generation_ = 0;
  jn_handle listener_ = 0;
  jn_handle tick_ = 0;
  uint64_t serial_ = 0;
  uint64_t msg_serial_ = 0;
  std::map<jn_handle, Conn> conns_;
  std::map<uint64_t, Call> calls_;
  std::map<uint64_t, Pull> pulls_;         // screen -> bus pulls, by id (not kept over a reload: restarted)
  std::map<jn_handle, uint64_t> pull_reqs_;  // http_request handle -> pull id
  uint64_t pull_serial_ = 0;
  std::map<uint64_t, std::unique_ptr<Push>> pushes_;  // bus -> screen pushes, by id (restarted after a reload)
  std::map<jn_handle, uint64_t> push_conns_;
  uint64_t push_serial_ = 0;
  std::map<std::string, jn_handle> routes_;
  // Indexes, rebuilt from conns_/calls_ after a reload.
  std::map<std::pair<jn_handle, std::string>, uint64_t> by_party_;
  std::map<std::string, jn_handle> devices_;               // joined device id -> connection
  std::map<std::string, std::set<jn_handle>> rooms_;       // room -> joined screens
};

}  // namespace intercom_json
