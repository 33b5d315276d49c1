// rest-sip-capture: a REST call places a SIP call; its audio and video go out as RTMP streams
// (README.md). The glue: REST on the core's HTTP service (rest.cpp), the SIP UAC on junction::sip
// (sip.cpp), the media plane on the core's media loops (pushes.cpp, media.cpp), status events to
// a backend over the core's HTTP client (events.cpp), hot reload (state.cpp).
#pragma once

#include "media.hpp"
#include "model.hpp"

#include <junction/plugin.hpp>
#include <junction/sip/auth.hpp>
#include <junction/sip/dialog.hpp>
#include <junction/sip/host_env.hpp>
#include <junction/sip/stack.hpp>

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace capture {

namespace sip = junction::sip;

// The stack env's cookies (HostEnv's defaults, named: our SIP connections are opened with the
// TCP one so the env frames them, and plugin.cpp's on_tcp tells them from RTMP connections).
constexpr uint64_t kSipTimerCookie = 0x5150000000000001ull;
constexpr uint64_t kSipTcpCookie = 0x5150000000000002ull;

struct Conf {
  std::string listen = "127.0.0.1:8081";
  std::string api_token;
  std::string sip_listen = "127.0.0.1:5070";
  std::string sip_host;    // Via / Contact host (default: sip_listen's address)
  SipTransport sip_transport = SipTransport::Udp;  // a request's sipTransport wins
  std::string sip_tls_ca_file;  // PEM CAs trusted for TLS to the SIP server ("" = the system's)
  std::string media_ip;    // where RTP sockets bind (default: sip_host)
  std::string sdp_ip;      // the address written in the SDP (default: media_ip)
  std::string port_range = "media";
  bool media_loops = true;
  uint32_t rtp_timeout_ms = 30000;
  uint32_t rtcp_interval_ms = 5000;
  uint32_t keyframe_interval_ms = 1000;
  bool keyframe_sip_info = true;
  uint32_t register_expires = 3600;
  std::string default_caller = "junction";
  bool offer_opus = false;
  int dtmf_payload_type = 101;
  uint32_t max_calls = 1000;
  uint32_t ended_keep_s = 60;
  bool bus_publish = true;
  std::string node_id;
  std::string user_agent = "Junction rest-sip-capture";
  // backend
  std::string backend_url;
  std::string backend_token;
  uint32_t backend_timeout_ms = 5000;
  uint32_t backend_retries = 5;
  uint32_t backend_backoff_ms = 500;
  uint32_t backend_backoff_max_ms = 10000;
  uint32_t backend_queue = 1000;
  // rtmp
  uint32_t rtmp_reconnect_ms = 1000;
  uint32_t rtmp_reconnect_max_ms = 30000;
  uint32_t rtmp_max_attempts = 0;  // 0 = while the call lives
  uint32_t rtmp_max_queue_bytes = 4u << 20;
  uint32_t rtmp_write_ms = 200;  // an output's bytes are written this often (0: with every video frame)
  bool rtmp_audio_aac = false;  // rtmp_audio = "aac": G.711 encoded to AAC-LC for the call's outputs
};
// Throws std::runtime_error("key: reason") (the constructor's refusal) on a bad conf.
Conf read_conf(const junction::sdk::Host& host);

// The SIP side of one call (control loop only).
struct SipLeg {
  sip::Flow flow;
  SipTransport transport = SipTransport::Udp;  // TCP and TLS: flow.conn is our connection
  bool conn_pending = false;                   // connecting: the first request waits for it
  bool resolved = false;
  std::string request_uri, domain_uri_host, route;
  std::string local_tag;
  std::string invite;  // the INVITE as last sent (dialog building)
  sip::TxnId invite_txn = 0;
  uint32_t invite_cseq = 0;
  sip::DigestClient auth;
  int auth_tries = 0;  // the status of the last challenge (401 / 407)
  int auth_count = 0;
  bool provisional = false;
  bool cancel_sent = false;
  // REGISTER
  std::string reg_call_id, reg_tag;
  sip::TxnId reg_txn = 0;
  uint32_t reg_cseq = 0;
  sip::DigestClient reg_auth;
  int reg_auth_tries = 0;
  bool registered = false;
  // dialog
  sip::Dialog dialog;
  bool has_dialog = false;
  uint64_t sdp_version = 1;
  // DTMF being sent (RFC 4733, paced by a timer)
  std::string dtmf_queue;
  int dtmf_step = 0;
  jn_handle dtmf_timer = 0;
};

class CapturePlugin : public junction::sdk::Plugin, public sip::StackUser {
 public:
  CapturePlugin(junction::sdk::Host h, const jn_create_args& args);
  ~CapturePlugin() override;

  jn_status start() override;
  jn_status stop() override;
  jn_status save_state(std::string& out) override;
  jn_status restore_state(uint32_t schema, std::string_view data) override;
  jn_status pin_codec_libraries();
  void on_timer(jn_handle t, uint64_t c) override;
  void on_udp(jn_handle s, uint64_t c, const jn_datagram* d, size_t n) override;
  void on_tcp(const jn_tcp_event& ev) override;
  void on_http(const jn_http_request& r) override;
  void on_bus(jn_handle sub, uint64_t c, jn_buf* b) override;
  void on_event(std::string_view topic, std::string_view json) override;
  void on_admin(const jn_admin_request& r) override;
  void on_post(uint64_t c) override;
  void on_dns(const jn_dns_result& r) override;
  void on_http_response(const jn_http_client_response& r) override;

  // sip::StackUser
  void on_request(sip::TxnId id, const sip::Message& m, const sip::Flow& from) override;
  void on_response(sip::TxnId id, int status, const sip::Message* m) override;
  void on_resolved(uint64_t cookie, const std::vector<sip::Flow>& targets, std::string_view error) override;

 private:
  // rest.cpp
  void respond(const jn_http_request& r, int status, const nlohmann::json& body);
  void rest_startup(const jn_http_request& r, const nlohmann::json& body);
  void rest_find(const jn_http_request& r, const nlohmann::json& body, bool all);
  void rest_terminate(const jn_http_request& r, const nlohmann::json& body);
  void rest_dtmf(const jn_http_request& r, const nlohmann::json& body);
  void rest_push_startup(const jn_http_request& r, const nlohmann::json& body);
  void rest_push_terminate(const jn_http_request& r, const nlohmann::json& body);
  // sip.cpp
  void sip_begin(Call& c);
  void sip_connected(uint64_t call);
  void sip_conn_event(const jn_tcp_event& ev);
  void sip_conns_sweep(uint64_t now);
  void write_via(sip::Writer& w, const SipLeg& leg);
  std::string contact(const SipLeg& leg, std::string_view user) const;
  OfferParams offer_params(const Call& c, const SipLeg& leg);
  void send_register(Call& c, SipLeg& leg, const std::string& auth_header, int challenge = 401);
  void send_invite(Call& c, SipLeg& leg, const std::string& auth_header);
  void on_invite_response(Call& c, SipLeg& leg, int status, const sip::Message* m);
  void on_register_response(Call& c, SipLeg& leg, int status, const sip::Message* m);
  void in_dialog_request(Call& c, SipLeg& leg, sip::TxnId id, const sip::Message& m, const sip::Flow& from);
  void send_keyframe_info(Call& c, SipLeg& leg);
  void send_dtmf_info(Call& c, SipLeg& leg, const std::string& digits);
  void dtmf_tick(uint64_t call);
  // the call's life
  void set_status(Call& c, Status s, int sip_status, std::string info = {});
  void end_call(Call& c, Status s, int sip_status, const std::string& info, bool send_bye);
  // pushes.cpp
  bool media_open(Call& c, std::string& err);
  void media_close(uint64_t call);
  bool media_apply_answer(Call& c, const Answer& a, std::string& err);
  std::shared_ptr<Push> push_create(Call* c, const std::string& bus_stream, const RtmpTarget& t, bool primary);
  void push_connect(const std::shared_ptr<Push>& p);
  void push_connect_addr(const std::shared_ptr<Push>& p, const jn_addr& a);
  void push_stop(const std::shared_ptr<Push>& p, const std::string& why);
  void push_changed(uint64_t id);
  void push_set_status(Push& p, RtmpStatus s, const std::string& reason);
  void push_retry(Push& p);
  void tick();
  void deliver(CallMedia& m, Stream& s, bool video, const junction::media::FrameView& f);
  void deliver_bus_push(Push& p, const junction::media::FrameView& f, bool video);
  std::shared_ptr<CallMedia> media_of(uint64_t call);
  std::shared_ptr<Push> push_of(uint64_t id);
  // events.cpp
  void emit(const Call& c, const PushInfo* push = nullptr);
  void events_pump();
  // admin
  nlohmann::json capture_list();
  void sync_push_info(Call& c);

  Conf conf_;
  sip::HostEnv env_;
  std::unique_ptr<sip::Stack> stack_;
  Registry reg_;
  std::map<uint64_t, SipLeg> legs_;               // call id -> SIP side
  std::unordered_map<sip::TxnId, uint64_t> txn_call_;  // INVITE / REGISTER / BYE / INFO -> call
  std::unordered_map<jn_handle, uint64_t> sip_conns_;  // our TCP/TLS connections to SIP servers -> call
  uint64_t next_id_ = 1;
  jn_handle http_ = 0, tick_ = 0;
  uint64_t ticks_ = 0;
  // media index (read on media loops)
  std::mutex idx_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<CallMedia>> media_;
  std::unordered_map<uint64_t, std::shared_ptr<Push>> pushes_;
  std::unordered_map<std::string, uint64_t> bus_pushes_;  // rtmp key -> push id (bus pushes)
  uint32_t next_loop_ = 0;
  // backend events
  std::deque<std::string> events_;
  jn_handle event_req_ = 0, event_timer_ = 0;
  uint32_t event_attempt_ = 0;
  // counters
  uint64_t calls_total_ = 0, calls_failed_ = 0, events_sent_ = 0, events_dropped_ = 0, events_failed_ = 0;
  uint64_t rtmp_reconnects_ = 0, rtp_timeouts_ = 0, keyframe_requests_ = 0;
};

}  // namespace capture
