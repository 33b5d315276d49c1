// The pure part of rest-sip-capture (no host, no I/O; unit-tested in tests/unit_capture.cpp):
//   - the REST bodies and their validation (400 with the field named: the document's known
//     issue 3, booleans sent as strings, malformed URLs);
//   - the call model and the registry with the document's 409 rules (a duplicate callId, an
//     rtmpUrl + rtmpStream already pushed);
//   - the SDP offer of the document (sendrecv when hasAudio/hasVideo, recvonly when not) and the
//     reading of the answer;
//   - the call objects (REST answers and backend events) in the document's shape.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capture {

// A 400's body: {"error": reason, "field": field}.
struct BadRequest {
  std::string field;
  std::string reason;
};

// rtmp://host[:port]/app[/instance]: the pieces a connection needs.
struct RtmpTarget {
  std::string url;     // as given, without a trailing '/'
  std::string host;
  uint16_t port = 1935;
  std::string stream;  // the stream key
  std::string key() const { return url + "/" + stream; }  // the 409 key
};
// False with why when the URL is not rtmp://host[:port]/app[/...] (no spaces, no query).
bool parse_rtmp_url(std::string_view url, RtmpTarget& out, std::string& why);

// The SIP transport toward the SIP server: the request's sipTransport, else conf sip_transport.
enum class SipTransport : uint8_t { Default, Udp, Tcp, Tls };
// "udp" / "tcp" / "tls" in any case; nullopt for anything else.
std::optional<SipTransport> parse_sip_transport(std::string_view s);
const char* sip_transport_name(SipTransport t);  // "UDP" / "TCP" / "TLS"

struct StartRequest {
  std::string call_id;  // empty: one is made
  std::string callee;
  std::string to_stream;
  std::optional<RtmpTarget> rtmp;
  bool has_audio = true, has_video = true;
  std::string sip_login, sip_auth_name, sip_password, sip_domain, sip_proxy;
  uint16_t sip_port = 0;  // 0 = 5060 / DNS
  std::string app_key;
  std::string visible_name;
  bool register_required = false;
  SipTransport transport = SipTransport::Default;  // sipTransport
  nlohmann::json custom = nlohmann::json::object();
};
std::optional<StartRequest> parse_startup(const nlohmann::json& body, BadRequest& err);

struct FindRequest {
  std::string call_id, callee, rtmp_url, status;
};
std::optional<FindRequest> parse_find(const nlohmann::json& body, BadRequest& err);

struct DtmfRequest {
  std::string call_id, digits;
  bool info = false;  // SIP INFO (application/dtmf-relay) instead of RFC 2833 telephone-event
};
std::optional<DtmfRequest> parse_dtmf(const nlohmann::json& body, BadRequest& err);

struct PushRequest {
  std::string call_id;     // a call of ours, or
  std::string bus_stream;  // another plugin's bus stream prefix ("gb28181/<dev>/<ch>")
  RtmpTarget rtmp;
};
std::optional<PushRequest> parse_push(const nlohmann::json& body, BadRequest& err);

// Characters RFC 3261 allows unescaped in a user part, without the ones that break a
// Request-URI or a header when pasted in (the document's known issue 3).
bool valid_sip_user(std::string_view s);
bool valid_host(std::string_view s);
// callId / stream names: [A-Za-z0-9._-], 1..128 (they become bus stream names and SIP values).
bool valid_id(std::string_view s);

// --- the call model ---------------------------------------------------------------------------
enum class Status : uint8_t { New, Registering, Trying, Ring, SessionProgress, Established, Hold, Busy, Finish, Failed };
const char* to_string(Status s);
bool is_final(Status s);

enum class RtmpStatus : uint8_t { None, Wait, Active, Lost, Failed, Stopped };
// The document's names: RTMP_STREAM_WAIT, RTMP_STREAM_ACTIVE, RTMP_CONNECTION_LOST,
// RTMP_CONNECTION_FAILED; Stopped (a /push/terminate) is RTMP_STREAM_STOPPED; None is null.
const char* to_string(RtmpStatus s);

struct PushInfo {
  uint64_t id = 0;
  RtmpTarget rtmp;
  RtmpStatus status = RtmpStatus::Wait;
  std::string reason;
  bool primary = false;  // the call's own rtmpUrl/rtmpStream (from /call/startup)
};

struct Call {
  uint64_t id = 0;  // internal, stable across reloads (cookies)
  StartRequest req;
  std::string call_id;
  Status status = Status::New;
  int sip_status = 0;
  std::string info;  // why it failed / finished ("FAILED_BY_RTP_ACTIVITY", "BYE from peer", ...)
  std::string caller;
  std::string local_sdp, remote_sdp;
  std::vector<PushInfo> pushes;
  uint64_t created_ms = 0, ended_ms = 0;
  // media counters for find / admin (filled by the plugin)
  double video_kbps = 0, audio_kbps = 0;
  uint64_t video_frames = 0, audio_frames = 0;
  uint64_t video_packets = 0, audio_packets = 0, dropped_packets = 0, bad_packets = 0;
  int64_t av_shift_ms = 0;  // the audio's correction from the senders' RTCP reports
  bool av_aligned = false;
  const PushInfo* primary() const {
    for (auto& p : pushes)
      if (p.primary) return &p;
    return nullptr;
  }
};

// The document's call object (REST find answers and backend events).
nlohmann::json call_json(const Call& c, std::string_view node_id, bool with_sdp);

// Calls by callId; the 409 rules.
class Registry {
 public:
  // 409 reasons: "" when the call may be added.
  std::string conflict(const StartRequest& r) const;
  std::string push_conflict(const RtmpTarget& t) const;
  Call& add(Call c);
  Call* find(std::string_view call_id);
  Call* by_id(uint64_t id);
  std::vector<const Call*> find(const FindRequest& f) const;
  std::vector<const Call*> all() const;
  void erase(std::string_view call_id) { calls_.erase(std::string(call_id)); }
  size_t size() const { return calls_.size(); }
  size_t live() const;
  template <class F>
  void for_each(F&& f) {
    for (auto& [k, c] : calls_) f(c);
  }

 private:
  std::map<std::string, Call> calls_;
};

// --- SDP --------------------------------------------------------------------------------------
struct OfferParams {
  std::string ip;           // c= and o=
  uint16_t audio_port = 0;  // RTP (RTCP on +1)
  uint16_t video_port = 0;
  bool send_audio = true, send_video = true;  // sendrecv / recvonly
  uint32_t audio_ssrc = 0, video_ssrc = 0;
  std::string call_id;
  uint64_t version = 1;
  bool offer_opus = false;
  int dtmf_pt = 101;
};
std::string build_offer(const OfferParams& p);

struct AnswerStream {
  bool present = false;     // an accepted m= line (port != 0)
  std::string ip;
  uint16_t port = 0, rtcp_port = 0;
  int pt = -1;
  std::string encoding;     // rtpmap name of pt
  uint32_t clock_rate = 0;
  std::string fmtp;
  int dtmf_pt = -1;         // telephone-event
  std::string direction = "sendrecv";
};
struct Answer {
  AnswerStream audio, video;
};
// The peer's answer (or a re-INVITE's offer): which codec each stream carries, where it is.
std::optional<Answer> parse_answer(std::string_view sdp, std::string& why);

}  // namespace capture
