#include "model.hpp"

#include <junction/proto/sdp.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace capture {

using nlohmann::json;

namespace {

bool fail(BadRequest& err, std::string field, std::string reason) {
  err.field = std::move(field);
  err.reason = std::move(reason);
  return false;
}

// A string field: absent leaves out untouched; present but not a string is a 400.
bool get_str(const json& b, const char* key, std::string& out, BadRequest& err, size_t max = 256) {
  if (!b.contains(key) || b[key].is_null()) return true;
  if (!b[key].is_string()) return fail(err, key, std::string(key) + " must be a string");
  out = b[key].get<std::string>();
  if (out.size() > max) return fail(err, key, std::string(key) + " is longer than " + std::to_string(max) + " characters");
  return true;
}

// Booleans must be JSON booleans: "true" (a string) is refused, naming the field.
bool get_bool(const json& b, const char* key, bool& out, BadRequest& err) {
  if (!b.contains(key) || b[key].is_null()) return true;
  if (b[key].is_string())
    return fail(err, key, std::string(key) + " must be a JSON boolean (true or false), not the string \"" +
                              b[key].get<std::string>().substr(0, 16) + "\"");
  if (!b[key].is_boolean()) return fail(err, key, std::string(key) + " must be a JSON boolean (true or false)");
  out = b[key].get<bool>();
  return true;
}

bool id_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'; }

}  // namespace

bool valid_id(std::string_view s) { return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), id_char); }

bool valid_sip_user(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c))) continue;
    if (std::string_view("-_.!~*'()+").find(c) == std::string_view::npos) return false;
  }
  return true;
}

bool valid_host(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  if (s.front() == '[') return s.back() == ']' && s.find_first_not_of("0123456789abcdefABCDEF:.[]") == std::string_view::npos;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
  return true;
}

bool parse_rtmp_url(std::string_view url, RtmpTarget& out, std::string& why) {
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  if (url.substr(0, 7) != "rtmp://") {
    why = "must start with rtmp:// (rtmps is not supported)";
    return false;
  }
  if (url.find_first_of(" \t\r\n?#\"<>") != std::string_view::npos) {
    why = "must not contain spaces, a query or a fragment";
    return false;
  }
  std::string_view rest = url.substr(7);
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash + 1 >= rest.size()) {
    why = "needs an application: rtmp://host[:port]/app";
    return false;
  }
  std::string_view hostport = rest.substr(0, slash);
  std::string_view host = hostport;
  uint16_t port = 1935;
  size_t colon = hostport.rfind(':');
  if (colon != std::string_view::npos && hostport.find(']', colon) == std::string_view::npos) {
    host = hostport.substr(0, colon);
    std::string_view p = hostport.substr(colon + 1);
    unsigned v = 0;
    auto r = std::from_chars(p.data(), p.data() + p.size(), v);
    if (r.ec != std::errc() || r.ptr != p.data() + p.size() || v == 0 || v > 65535) {
      why = "has a bad port";
      return false;
    }
    port = static_cast<uint16_t>(v);
  }
  if (!valid_host(host)) {
    why = "has a bad host";
    return false;
  }
  out.url = std::string(url);
  out.host = std::string(host);
  if (out.host.size() > 2 && out.host.front() == '[') out.host = out.host.substr(1, out.host.size() - 2);
  out.port = port;
  return true;
}

std::optional<SipTransport> parse_sip_transport(std::string_view s) {
  std::string l;
  for (char ch : s) l += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  if (l == "udp") return SipTransport::Udp;
  if (l == "tcp") return SipTransport::Tcp;
  if (l == "tls") return SipTransport::Tls;
  return std::nullopt;
}

const char* sip_transport_name(SipTransport t) {
  switch (t) {
    case SipTransport::Tcp: return "TCP";
    case SipTransport::Tls: return "TLS";
    default: return "UDP";
  }
}

std::optional<StartRequest> parse_startup(const json& b, BadRequest& err) {
  if (!b.is_object()) {
    fail(err, "", "the body must be a JSON object");
    return std::nullopt;
  }
  StartRequest r;
  std::string rtmp_url, rtmp_stream;
  if (!get_str(b, "callId", r.call_id, err) || !get_str(b, "callee", r.callee, err) ||
      !get_str(b, "toStream", r.to_stream, err) || !get_str(b, "rtmpUrl", rtmp_url, err, 1024) ||
      !get_str(b, "rtmpStream", rtmp_stream, err) || !get_bool(b, "hasAudio", r.has_audio, err) ||
      !get_bool(b, "hasVideo", r.has_video, err) || !get_str(b, "sipLogin", r.sip_login, err) ||
      !get_str(b, "sipAuthenticationName", r.sip_auth_name, err) || !get_str(b, "sipPassword", r.sip_password, err) ||
      !get_str(b, "sipDomain", r.sip_domain, err) || !get_str(b, "sipOutboundProxy", r.sip_proxy, err) ||
      !get_str(b, "appKey", r.app_key, err) || !get_str(b, "visibleName", r.visible_name, err) ||
      !get_bool(b, "sipRegisterRequired", r.register_required, err))
    return std::nullopt;
  if (b.contains("custom") && !b["custom"].is_null()) {
    if (!b["custom"].is_object()) {
      fail(err, "custom", "custom must be a JSON object");
      return std::nullopt;
    }
    r.custom = b["custom"];
  }
  // sipTransport (Junction's: the document is silent on transport): "UDP", "TCP" or "TLS".
  std::string transport;
  if (!get_str(b, "sipTransport", transport, err)) return std::nullopt;
  if (!transport.empty()) {
    auto t = parse_sip_transport(transport);
    if (!t) {
      fail(err, "sipTransport", "sipTransport must be \"UDP\", \"TCP\" or \"TLS\"");
      return std::nullopt;
    }
    r.transport = *t;
  }
  // sipPort: the document sends it as a string ("5060"); a number is taken too.
  if (b.contains("sipPort") && !b["sipPort"].is_null()) {
    const json& p = b["sipPort"];
    int64_t v = -1;
    if (p.is_number_integer()) v = p.get<int64_t>();
    else if (p.is_string()) {
      const std::string& s = p.get_ref<const std::string&>();
      auto res = std::from_chars(s.data(), s.data() + s.size(), v);
      if (res.ec != std::errc() || res.ptr != s.data() + s.size()) v = -1;
    }
    if (v < 1 || v > 65535) {
      fail(err, "sipPort", "sipPort must be a port number from 1 to 65535");
      return std::nullopt;
    }
    r.sip_port = static_cast<uint16_t>(v);
  }
  if (!r.call_id.empty() && !valid_id(r.call_id)) {
    fail(err, "callId", "callId may hold only letters, digits, '.', '_' and '-' (1 to 128)");
    return std::nullopt;
  }
  if (r.callee.empty()) {
    fail(err, "callee", "callee is required");
    return std::nullopt;
  }
  // callee: a user, or user@host (then sipDomain is not needed).
  std::string_view callee = r.callee;
  if (callee.substr(0, 4) == "sip:") callee.remove_prefix(4);
  std::string_view user = callee, host;
  if (size_t at = callee.find('@'); at != std::string_view::npos) user = callee.substr(0, at), host = callee.substr(at + 1);
  if (!valid_sip_user(user)) {
    fail(err, "callee", "callee must be a SIP user without spaces or reserved characters");
    return std::nullopt;
  }
  if (!host.empty() && !valid_host(host)) {
    fail(err, "callee", "callee has a bad host after '@'");
    return std::nullopt;
  }
  // user and host view r.callee: take the domain before callee is replaced
  if (!host.empty() && r.sip_domain.empty()) r.sip_domain = std::string(host);
  r.callee = std::string(user);
  if (r.sip_domain.empty()) {
    fail(err, "sipDomain", "sipDomain is required (or callee as user@host)");
    return std::nullopt;
  }
  if (!valid_host(r.sip_domain)) {
    fail(err, "sipDomain", "sipDomain must be a host name or an IP address");
    return std::nullopt;
  }
  if (!r.sip_proxy.empty() && !valid_host(r.sip_proxy)) {
    fail(err, "sipOutboundProxy", "sipOutboundProxy must be a host name or an IP address");
    return std::nullopt;
  }
  // The document's known issue 3: logins with spaces or reserved characters, said at once.
  if (!r.sip_login.empty() && !valid_sip_user(r.sip_login)) {
    fail(err, "sipLogin", "sipLogin contains spaces or reserved characters (RFC 3261 user part)");
    return std::nullopt;
  }
  if (!r.sip_auth_name.empty() && !valid_sip_user(r.sip_auth_name)) {
    fail(err, "sipAuthenticationName", "sipAuthenticationName contains spaces or reserved characters");
    return std::nullopt;
  }
  if (r.visible_name.find_first_of("\r\n\"\\") != std::string::npos) {
    fail(err, "visibleName", "visibleName must not contain quotes, backslashes or line breaks");
    return std::nullopt;
  }
  if (r.register_required && r.sip_login.empty()) {
    fail(err, "sipLogin", "sipLogin is required when sipRegisterRequired is true");
    return std::nullopt;
  }
  if (!r.to_stream.empty() && !valid_id(r.to_stream)) {
    fail(err, "toStream", "toStream may hold only letters, digits, '.', '_' and '-'");
    return std::nullopt;
  }
  if (!rtmp_url.empty() || !rtmp_stream.empty()) {
    if (rtmp_url.empty()) {
      fail(err, "rtmpUrl", "rtmpUrl is required with rtmpStream");
      return std::nullopt;
    }
    RtmpTarget t;
    std::string why;
    if (!parse_rtmp_url(rtmp_url, t, why)) {
      fail(err, "rtmpUrl", "rtmpUrl " + why);
      return std::nullopt;
    }
    if (rtmp_stream.empty() || rtmp_stream.find_first_of(" \t\r\n/?#") != std::string::npos) {
      fail(err, "rtmpStream", "rtmpStream is required with rtmpUrl and must not contain spaces, '/', '?' or '#'");
      return std::nullopt;
    }
    t.stream = rtmp_stream;
    r.rtmp = t;
  }
  return r;
}

std::optional<FindRequest> parse_find(const json& b, BadRequest& err) {
  FindRequest f;
  if (b.is_null()) return f;
  if (!b.is_object()) {
    fail(err, "", "the body must be a JSON object");
    return std::nullopt;
  }
  if (!get_str(b, "callId", f.call_id, err) || !get_str(b, "callee", f.callee, err) ||
      !get_str(b, "rtmpUrl", f.rtmp_url, err, 1024) || !get_str(b, "status", f.status, err))
    return std::nullopt;
  while (!f.rtmp_url.empty() && f.rtmp_url.back() == '/') f.rtmp_url.pop_back();
  if (f.call_id.empty() && f.callee.empty() && f.rtmp_url.empty() && f.status.empty()) {
    fail(err, "callId", "give at least one of callId, callee, rtmpUrl, status");
    return std::nullopt;
  }
  return f;
}

std::optional<DtmfRequest> parse_dtmf(const json& b, BadRequest& err) {
  if (!b.is_object()) {
    fail(err, "", "the body must be a JSON object");
    return std::nullopt;
  }
  DtmfRequest d;
  std::string type = "RFC2833";
  if (!get_str(b, "callId", d.call_id, err) || !get_str(b, "dtmf", d.digits, err, 64) || !get_str(b, "type", type, err))
    return std::nullopt;
  if (d.call_id.empty()) {
    fail(err, "callId", "callId is required");
    return std::nullopt;
  }
  if (d.digits.empty() || d.digits.find_first_not_of("0123456789*#ABCDabcd") != std::string::npos) {
    fail(err, "dtmf", "dtmf must be one or more of 0-9 * # A-D");
    return std::nullopt;
  }
  for (char& c : d.digits) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string t = type;
  for (char& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (t == "RFC2833" || t == "RFC4733") d.info = false;
  else if (t == "INFO" || t == "SIP_INFO") d.info = true;
  else {
    fail(err, "type", "type must be RFC2833 or INFO");
    return std::nullopt;
  }
  return d;
}

std::optional<PushRequest> parse_push(const json& b, BadRequest& err) {
  if (!b.is_object()) {
    fail(err, "", "the body must be a JSON object");
    return std::nullopt;
  }
  PushRequest p;
  std::string url, stream;
  if (!get_str(b, "callId", p.call_id, err) || !get_str(b, "streamName", p.bus_stream, err) ||
      !get_str(b, "rtmpUrl", url, err, 1024) || !get_str(b, "rtmpStream", stream, err))
    return std::nullopt;
  if (p.call_id.empty() == p.bus_stream.empty()) {
    fail(err, "callId", "give callId (a call of this plugin) or streamName (a bus stream), not both");
    return std::nullopt;
  }
  if (!p.bus_stream.empty() &&
      (p.bus_stream.size() > 200 || p.bus_stream.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/-") !=
                                        std::string::npos)) {
    fail(err, "streamName", "streamName must be a bus stream name ([A-Za-z0-9._/-])");
    return std::nullopt;
  }
  std::string why;
  if (url.empty() || !parse_rtmp_url(url, p.rtmp, why)) {
    fail(err, "rtmpUrl", url.empty() ? "rtmpUrl is required" : "rtmpUrl " + why);
    return std::nullopt;
  }
  if (stream.empty() || stream.find_first_of(" \t\r\n/?#") != std::string::npos) {
    fail(err, "rtmpStream", "rtmpStream is required and must not contain spaces, '/', '?' or '#'");
    return std::nullopt;
  }
  p.rtmp.stream = stream;
  return p;
}

const char* to_string(Status s) {
  switch (s) {
    case Status::New: return "NEW";
    case Status::Registering: return "REGISTERING";
    case Status::Trying: return "TRYING";
    case Status::Ring: return "RING";
    case Status::SessionProgress: return "SESSION_PROGRESS";
    case Status::Established: return "ESTABLISHED";
    case Status::Hold: return "HOLD";
    case Status::Busy: return "BUSY";
    case Status::Finish: return "FINISH";
    case Status::Failed: return "FAILED";
  }
  return "FAILED";
}

bool is_final(Status s) { return s == Status::Busy || s == Status::Finish || s == Status::Failed; }

const char* to_string(RtmpStatus s) {
  switch (s) {
    case RtmpStatus::None: return nullptr;
    case RtmpStatus::Wait: return "RTMP_STREAM_WAIT";
    case RtmpStatus::Active: return "RTMP_STREAM_ACTIVE";
    case RtmpStatus::Lost: return "RTMP_CONNECTION_LOST";
    case RtmpStatus::Failed: return "RTMP_CONNECTION_FAILED";
    case RtmpStatus::Stopped: return "RTMP_STREAM_STOPPED";
  }
  return nullptr;
}

namespace {
json str_or_null(std::string_view s) { return s.empty() ? json(nullptr) : json(std::string(s)); }
}  // namespace

json call_json(const Call& c, std::string_view node_id, bool with_sdp) {
  const PushInfo* p = c.primary();
  json pushes = json::array();
  for (auto& x : c.pushes) {
    const char* st = to_string(x.status);
    pushes.push_back({{"id", x.id}, {"rtmpUrl", x.rtmp.url}, {"rtmpStream", x.rtmp.stream},
                      {"rtmpStreamStatus", st ? json(st) : json(nullptr)}, {"reason", str_or_null(x.reason)},
                      {"primary", x.primary}});
  }
  const char* rst = p ? to_string(p->status) : nullptr;
  json j = {{"custom", c.req.custom},
            {"nodeId", str_or_null(node_id)},
            {"appKey", str_or_null(c.req.app_key)},
            {"sessionId", nullptr},
            {"callId", c.call_id},
            {"parentCallId", nullptr},
            {"incoming", false},
            {"status", to_string(c.status)},
            {"sipStatus", c.sip_status},
            {"rtmpUrl", p ? json(p->rtmp.url) : json(nullptr)},
            {"rtmpStream", p ? json(p->rtmp.stream) : json(nullptr)},
            {"streamName", str_or_null(c.req.to_stream)},
            {"rtmpStreamStatus", rst ? json(rst) : json(nullptr)},
            {"caller", c.caller},
            {"callee", c.req.callee},
            {"hasAudio", c.req.has_audio},
            {"hasVideo", c.req.has_video},
            {"visibleName", c.req.visible_name.empty() ? c.caller : c.req.visible_name},
            {"inviteParameters", nullptr},
            {"mediaProvider", "Flash"},
            {"sipMessageRaw", nullptr},
            {"isMsrp", false},
            {"target", nullptr},
            {"holdForTransfer", false},
            {"info", str_or_null(c.info)},
            {"pushes", pushes}};
  if (with_sdp) j["sdp"] = str_or_null(c.remote_sdp);
  return j;
}

std::string Registry::conflict(const StartRequest& r) const {
  if (!r.call_id.empty()) {
    auto it = calls_.find(r.call_id);
    if (it != calls_.end() && !is_final(it->second.status)) return "callId " + r.call_id + " is in use";
  }
  if (r.rtmp) return push_conflict(*r.rtmp);
  return {};
}

std::string Registry::push_conflict(const RtmpTarget& t) const {
  for (auto& [k, c] : calls_) {
    if (is_final(c.status)) continue;
    for (auto& p : c.pushes)
      if (p.status != RtmpStatus::Stopped && p.rtmp.key() == t.key())
        return "rtmpUrl " + t.url + " with rtmpStream " + t.stream + " is in use by call " + c.call_id;
  }
  return {};
}

Call& Registry::add(Call c) {
  std::string k = c.call_id;
  calls_.erase(k);  // an ended call of that id gives way
  return calls_.emplace(k, std::move(c)).first->second;
}

Call* Registry::find(std::string_view call_id) {
  auto it = calls_.find(std::string(call_id));
  return it == calls_.end() ? nullptr : &it->second;
}

Call* Registry::by_id(uint64_t id) {
  for (auto& [k, c] : calls_)
    if (c.id == id) return &c;
  return nullptr;
}

std::vector<const Call*> Registry::find(const FindRequest& f) const {
  std::vector<const Call*> out;
  for (auto& [k, c] : calls_) {
    if (!f.call_id.empty() && c.call_id != f.call_id) continue;
    if (!f.callee.empty() && c.req.callee != f.callee) continue;
    if (!f.status.empty() && f.status != to_string(c.status)) continue;
    if (!f.rtmp_url.empty()) {
      bool any = false;
      for (auto& p : c.pushes) any = any || p.rtmp.url == f.rtmp_url || p.rtmp.key() == f.rtmp_url;
      if (!any) continue;
    }
    out.push_back(&c);
  }
  return out;
}

std::vector<const Call*> Registry::all() const {
  std::vector<const Call*> out;
  for (auto& [k, c] : calls_) out.push_back(&c);
  return out;
}

size_t Registry::live() const {
  size_t n = 0;
  for (auto& [k, c] : calls_) n += !is_final(c.status);
  return n;
}

std::string build_offer(const OfferParams& p) {
  bool v6 = p.ip.find(':') != std::string::npos;
  std::string at = v6 ? "IP6 " : "IP4 ";
  std::string s;
  s += "v=0\r\n";
  s += "o=Junction 0 " + std::to_string(p.version) + " IN " + at + p.ip + "\r\n";
  s += "s=Junction/1.0\r\n";
  s += "c=IN " + at + p.ip + "\r\n";
  s += "t=0 0\r\n";
  s += "m=audio " + std::to_string(p.audio_port) + " RTP/AVP 8 0" + (p.offer_opus ? " 111" : "") + " " + std::to_string(p.dtmf_pt) + "\r\n";
  s += "a=rtpmap:8 PCMA/8000\r\n";
  s += "a=rtpmap:0 PCMU/8000\r\n";
  if (p.offer_opus) s += "a=rtpmap:111 opus/48000/2\r\n";
  s += "a=rtpmap:" + std::to_string(p.dtmf_pt) + " telephone-event/8000\r\n";
  s += "a=fmtp:" + std::to_string(p.dtmf_pt) + " 0-15\r\n";
  s += "a=ptime:20\r\n";
  s += "a=rtcp:" + std::to_string(p.audio_port + 1) + " IN " + at + p.ip + "\r\n";
  s += p.send_audio ? "a=sendrecv\r\n" : "a=recvonly\r\n";
  s += "a=ssrc:" + std::to_string(p.audio_ssrc) + " cname:rtp/audio/" + p.call_id + "\r\n";
  s += "m=video " + std::to_string(p.video_port) + " RTP/AVP 112 113\r\n";
  s += "a=rtpmap:112 H264/90000\r\n";
  s += "a=fmtp:112 packetization-mode=1; profile-level-id=420020\r\n";
  s += "a=rtpmap:113 H264/90000\r\n";
  s += "a=fmtp:113 packetization-mode=0; profile-level-id=420020\r\n";
  s += "a=rtcp-fb:* ccm fir\r\n";
  s += "a=rtcp-fb:* nack\r\n";
  s += "a=rtcp-fb:* nack pli\r\n";
  s += "a=rtcp:" + std::to_string(p.video_port + 1) + " IN " + at + p.ip + "\r\n";
  s += p.send_video ? "a=sendrecv\r\n" : "a=recvonly\r\n";
  s += "a=ssrc:" + std::to_string(p.video_ssrc) + " cname:rtp/video/" + p.call_id + "\r\n";
  return s;
}

namespace {
std::string upper(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return o;
}
}  // namespace

std::optional<Answer> parse_answer(std::string_view text, std::string& why) {
  namespace sdp = junction::proto::sdp;
  auto r = sdp::parse(text);
  if (!r) {
    why = "SDP line " + std::to_string(r.line) + ": " + r.error;
    return std::nullopt;
  }
  Answer a;
  std::string session_dir = "sendrecv";
  for (const char* d : {"sendrecv", "sendonly", "recvonly", "inactive"})
    if (r.session->has_attr(d)) session_dir = d;
  for (const sdp::Media& m : r.session->media) {
    AnswerStream* s = m.media == "audio" ? &a.audio : m.media == "video" ? &a.video : nullptr;
    if (!s || s->present || m.port == 0 || !m.is_rtp() || m.is_srtp()) continue;
    auto c = r.session->media_connection(m);
    if (!c || c->address.empty()) {
      why = m.media + " has no connection address";
      return std::nullopt;
    }
    s->ip = c->address;
    s->port = static_cast<uint16_t>(m.port);
    s->rtcp_port = static_cast<uint16_t>(m.port + 1);
    if (auto rc = m.attr("rtcp")) {
      if (auto ra = sdp::parse_rtcp_attr(*rc)) s->rtcp_port = static_cast<uint16_t>(ra->port);
    }
    if (m.rtcp_mux()) s->rtcp_port = s->port;
    s->direction = session_dir;
    for (const char* d : {"sendrecv", "sendonly", "recvonly", "inactive"})
      if (m.has_attr(d)) s->direction = d;
    // rtpmaps by payload type
    std::map<int, std::pair<std::string, uint32_t>> maps;
    std::map<int, std::string> fmtps;
    for (auto v : m.attrs("rtpmap")) {
      size_t sp = v.find(' ');
      if (sp == std::string_view::npos) continue;
      int pt = std::atoi(std::string(v.substr(0, sp)).c_str());
      std::string_view enc = v.substr(sp + 1);
      size_t sl = enc.find('/');
      uint32_t rate = sl == std::string_view::npos ? 0 : static_cast<uint32_t>(std::atoi(std::string(enc.substr(sl + 1)).c_str()));
      maps[pt] = {upper(enc.substr(0, sl)), rate};
    }
    for (auto v : m.attrs("fmtp")) {
      size_t sp = v.find(' ');
      if (sp == std::string_view::npos) continue;
      fmtps[std::atoi(std::string(v.substr(0, sp)).c_str())] = std::string(v.substr(sp + 1));
    }
    for (const std::string& f : m.formats) {
      int pt = std::atoi(f.c_str());
      std::string enc;
      uint32_t rate = 0;
      if (auto it = maps.find(pt); it != maps.end()) enc = it->second.first, rate = it->second.second;
      else if (pt == 0) enc = "PCMU", rate = 8000;
      else if (pt == 8) enc = "PCMA", rate = 8000;
      if (enc == "TELEPHONE-EVENT") {
        if (s->dtmf_pt < 0) s->dtmf_pt = pt;
        continue;
      }
      bool ok = m.media == "audio" ? (enc == "PCMA" || enc == "PCMU" || enc == "OPUS") : enc == "H264";
      if (ok && s->pt < 0) {
        s->pt = pt;
        s->encoding = enc;
        s->clock_rate = rate;
        if (auto it = fmtps.find(pt); it != fmtps.end()) s->fmtp = it->second;
      }
    }
    if (s->pt < 0) {
      why = m.media + " has none of the codecs offered";
      return std::nullopt;
    }
    s->present = true;
  }
  if (!a.audio.present && !a.video.present) {
    why = "no audio or video stream accepted";
    return std::nullopt;
  }
  return a;
}

}  // namespace capture
