// WebRTC offer/answer over junction::proto::sdp (sdp.hpp says what and why).
#include <junction/util/random.hpp>
#include <junction/util/text.hpp>
#include <junction/webrtc/sdp.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace junction::webrtc {

namespace psdp = junction::proto::sdp;

namespace {

constexpr size_t kMaxCodecs = 64;       // per m-line
constexpr size_t kMaxCandidates = 64;   // per m-line
constexpr size_t kMaxSsrcs = 16;

// One copy of each in the tree: the generic SDP model's number parser, util's ASCII compare.
using psdp::detail::parse_u32;
constexpr bool iequals(std::string_view a, std::string_view b) { return util::ascii_iequals(a, b); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// fmtp lookup: "a=b;c=d", keys without case.
std::string_view fmtp_get(std::string_view fmtp, std::string_view key) {
  size_t i = 0;
  while (i < fmtp.size()) {
    size_t semi = fmtp.find(';', i);
    std::string_view kv = trim(fmtp.substr(i, semi == std::string_view::npos ? std::string_view::npos : semi - i));
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos && iequals(trim(kv.substr(0, eq)), key)) return trim(kv.substr(eq + 1));
    if (semi == std::string_view::npos) break;
    i = semi + 1;
  }
  return {};
}

// "first rest..." split at the first space.
std::pair<std::string_view, std::string_view> split1(std::string_view s) {
  size_t sp = s.find(' ');
  if (sp == std::string_view::npos) return {s, {}};
  return {s.substr(0, sp), trim(s.substr(sp + 1))};
}

uint32_t parse_setup(std::string_view v) {
  if (v == "actpass") return JN_SETUP_ACTPASS;
  if (v == "active") return JN_SETUP_ACTIVE;
  if (v == "passive") return JN_SETUP_PASSIVE;
  if (v == "holdconn") return JN_SETUP_HOLDCONN;
  return JN_SETUP_NONE;
}

const char* direction_attr(uint32_t d) {
  switch (d) {
    case JN_DIR_SENDONLY: return "sendonly";
    case JN_DIR_RECVONLY: return "recvonly";
    case JN_DIR_INACTIVE: return "inactive";
    default: return "sendrecv";
  }
}
bool dir_sends(uint32_t d) { return d == JN_DIR_SENDRECV || d == JN_DIR_SENDONLY; }
bool dir_receives(uint32_t d) { return d == JN_DIR_SENDRECV || d == JN_DIR_RECVONLY; }
uint32_t make_dir(bool send, bool recv) {
  if (send && recv) return JN_DIR_SENDRECV;
  if (send) return JN_DIR_SENDONLY;
  if (recv) return JN_DIR_RECVONLY;
  return JN_DIR_INACTIVE;
}

bool is_aux_codec(const Codec& c) {
  std::string n = canonical_codec_name(c.name);
  return n == "TELEPHONE-EVENT" || n == "RTX" || n == "RED" || n == "ULPFEC" || n == "FLEXFEC-03" || n == "CN";
}

uint32_t random_u32() {
  std::string r;
  for (;;) {
    if (!util::random_bytes(4, r)) return 0x4a4e0001u;  // CSPRNG down: a fixed id is harmless here
    uint32_t v;
    std::memcpy(&v, r.data(), 4);
    if (v) return v;
  }
}
std::string random_session_id() {
  std::string r;
  if (!util::random_bytes(7, r)) return "1";
  uint64_t v = 0;
  std::memcpy(&v, r.data(), 7);
  return std::to_string(v & 0x00ffffffffffffffull);
}

// The formats sdk/webrtc's bridges carry without transcoding (bridge.hpp).
bool bridgeable(std::string_view canon) {
  return canon == "H264" || canon == "VP8" || canon == "OPUS" || canon == "PCMA" || canon == "PCMU";
}

// Whether an offered codec matches a preference.
bool codec_matches(const Codec& c, const CodecPref& p) {
  if (!bridgeable(canonical_codec_name(p.name))) return false;
  if (canonical_codec_name(c.name) != canonical_codec_name(p.name)) return false;
  if (p.clock_rate && c.clock_rate != p.clock_rate) return false;
  if (p.channels && (c.channels ? c.channels : 1) != p.channels) return false;
  if (canonical_codec_name(c.name) == "H264" && !h264_fmtp_acceptable(c.fmtp)) return false;
  return true;
}

// Among the offer's codecs matching `p`: H.264 prefers profile-level-id 42e01f (what every
// constrained-baseline sender, GB cameras included, can feed), else the first in offer order.
const Codec* pick(const MediaSection& m, const CodecPref& p) {
  const Codec* first = nullptr;
  for (auto& c : m.codecs) {
    if (!codec_matches(c, p)) continue;
    if (!first) first = &c;
    if (canonical_codec_name(c.name) == "H264" && iequals(fmtp_get(c.fmtp, "profile-level-id"), "42e01f"))
      return &c;
  }
  return first;
}

std::string codec_list(const MediaSection& m) {
  std::string s;
  for (auto& c : m.codecs) {
    if (is_aux_codec(c)) continue;
    std::string n = canonical_codec_name(c.name);
    if (s.find(n) != std::string::npos) continue;
    if (!s.empty()) s += ", ";
    s += n;
  }
  return s.empty() ? "none" : s;
}
std::string pref_list(const LocalMedia& lm) {
  std::string s;
  for (auto& p : lm.codecs) {
    if (!s.empty()) s += ", ";
    s += canonical_codec_name(p.name);
  }
  return s;
}

const char* kind_name(uint32_t k) {
  switch (k) {
    case JN_MEDIA_AUDIO: return "audio";
    case JN_MEDIA_VIDEO: return "video";
    case JN_MEDIA_DATA: return "data";
    default: return "media";
  }
}

// Writes the transport attributes of an accepted m-line.
void put_transport(psdp::Media& mm, const LocalTransport& t, const char* setup, bool with_candidates) {
  mm.lines.push_back({'c', "IN " + std::string(t.address.find(':') != std::string::npos ? "IP6 " : "IP4 ") + t.address});
  mm.add_attr("ice-ufrag", t.ice_ufrag);
  mm.add_attr("ice-pwd", t.ice_pwd);
  mm.add_attr("fingerprint", t.fingerprint);
  mm.add_attr("setup", setup);
  if (with_candidates) {
    for (auto& c : t.candidates) mm.add_attr("candidate", c);
    mm.add_attr("end-of-candidates", std::nullopt);
  }
}

void put_codec(psdp::Media& mm, const Codec& c, bool video) {
  std::string pt = std::to_string(c.pt);
  std::string map = pt + " " + c.name + "/" + std::to_string(c.clock_rate);
  if (c.channels > 1) map += "/" + std::to_string(c.channels);
  mm.add_attr("rtpmap", map);
  if (!c.fmtp.empty()) mm.add_attr("fmtp", pt + " " + c.fmtp);
  if (video)
    for (auto& fb : c.rtcp_fb) mm.add_attr("rtcp-fb", pt + " " + fb);
}

void put_ssrc(psdp::Media& mm, uint32_t ssrc, const std::string& cname, const std::string& track) {
  mm.add_attr("msid", cname + " " + track);
  mm.add_attr("ssrc", std::to_string(ssrc) + " cname:" + cname);
  mm.add_attr("ssrc", std::to_string(ssrc) + " msid:" + cname + " " + track);
}

psdp::Session session_head(const std::string& sid, uint64_t ver, const std::string& addr) {
  psdp::Session s;
  bool v6 = addr.find(':') != std::string::npos;
  s.lines.push_back({'v', "0"});
  s.lines.push_back({'o', "- " + sid + " " + std::to_string(ver) + " IN " + (v6 ? "IP6 " : "IP4 ") + addr});
  s.lines.push_back({'s', "-"});
  s.lines.push_back({'t', "0 0"});
  return s;
}

}  // namespace


bool Codec::has_fb(std::string_view fb) const {
  for (auto& f : rtcp_fb)
    if (f == fb) return true;
  return false;
}

std::string canonical_codec_name(std::string_view n) {
  std::string s(n);
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

uint32_t media_kind(std::string_view m) {
  if (m == "audio") return JN_MEDIA_AUDIO;
  if (m == "video") return JN_MEDIA_VIDEO;
  if (m == "application") return JN_MEDIA_DATA;
  return 0;
}

const Codec* MediaSection::codec_by_pt(uint8_t pt) const {
  for (auto& c : codecs)
    if (c.pt == pt) return &c;
  return nullptr;
}

bool Description::bundled(std::string_view mid) const {
  return std::find(bundle_mids.begin(), bundle_mids.end(), mid) != bundle_mids.end();
}

bool h264_fmtp_acceptable(std::string_view fmtp) {
  uint32_t mode = 0;
  std::string_view pm = fmtp_get(fmtp, "packetization-mode");
  if (!pm.empty() && !parse_u32(pm, mode, 2)) return false;
  if (mode != 1) return false;
  std::string_view plid = fmtp_get(fmtp, "profile-level-id");
  if (plid.empty()) return true;  // RFC 6184 default 420010: baseline
  if (plid.size() != 6) return false;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int b[4];
  for (int i = 0; i < 4; ++i) {
    b[i] = hex(plid[static_cast<size_t>(i)]);
    if (b[i] < 0) return false;
  }
  int profile_idc = b[0] * 16 + b[1], iop = b[2] * 16 + b[3];
  // Baseline, or any profile flagged constrained-baseline compatible (constraint_set1).
  return profile_idc == 0x42 || (iop & 0x40);
}

bool parse_description(std::string_view sdp, Description& out, ParseError& err) {
  out = Description{};
  auto pr = psdp::parse(sdp);
  if (!pr) {
    err.reason = "bad SDP: " + pr.error + (pr.line ? " (line " + std::to_string(pr.line) + ")" : "");
    return false;
  }
  const psdp::Session& s = *pr.session;
  if (s.media.empty()) {
    err.reason = "SDP has no m= line";
    return false;
  }
  if (const psdp::Line* o = s.first('o')) {
    auto f = psdp::detail::split_ws(o->value);
    if (f.size() >= 2) out.origin_session_id = std::string(f[1]);
  }
  if (auto g = s.attr("group")) {
    auto f = psdp::detail::split_ws(*g);
    if (!f.empty() && f[0] == "BUNDLE")
      for (size_t i = 1; i < f.size(); ++i) out.bundle_mids.emplace_back(f[i]);
  }
  out.ice_lite = s.has_attr("ice-lite");
  std::string s_ufrag(s.attr("ice-ufrag").value_or("")), s_pwd(s.attr("ice-pwd").value_or(""));
  std::string s_fp(s.attr("fingerprint").value_or(""));
  uint32_t s_setup = parse_setup(s.attr("setup").value_or(""));
  std::string s_addr;
  if (auto c = s.connection()) s_addr = c->address;

  for (size_t mi = 0; mi < s.media.size(); ++mi) {
    const psdp::Media& m = s.media[mi];
    MediaSection ms;
    ms.media = m.media;
    ms.kind = media_kind(m.media);
    ms.port = static_cast<uint16_t>(m.port);
    ms.proto = m.proto;
    ms.formats = m.formats;
    ms.mid = std::string(m.attr("mid").value_or(""));
    ms.rtcp_mux = m.has_attr("rtcp-mux");
    ms.rtcp_rsize = m.has_attr("rtcp-rsize");
    ms.bundle_only = m.has_attr("bundle-only");
    ms.ice_ufrag = std::string(m.attr("ice-ufrag").value_or(s_ufrag));
    ms.ice_pwd = std::string(m.attr("ice-pwd").value_or(s_pwd));
    ms.fingerprint = std::string(trim(m.attr("fingerprint").value_or(s_fp)));
    ms.setup = m.has_attr("setup") ? parse_setup(*m.attr("setup")) : s_setup;
    ms.end_of_candidates = m.has_attr("end-of-candidates") || s.has_attr("end-of-candidates");
    if (auto c = m.connection()) ms.address = c->address;
    else ms.address = s_addr;
    ms.direction = JN_DIR_SENDRECV;
    for (const char* d : {"sendonly", "recvonly", "inactive", "sendrecv"})
      if (m.has_attr(d)) ms.direction = d[0] == 's' && d[4] == 'o' ? JN_DIR_SENDONLY
                                        : d[0] == 'r' ? JN_DIR_RECVONLY
                                        : d[0] == 'i' ? JN_DIR_INACTIVE : JN_DIR_SENDRECV;
    if (!m.has_attr("sendonly") && !m.has_attr("recvonly") && !m.has_attr("inactive")) {
      for (const char* d : {"sendonly", "recvonly", "inactive"})  // session-level default
        if (s.has_attr(d)) ms.direction = d[0] == 's' ? JN_DIR_SENDONLY : d[0] == 'r' ? JN_DIR_RECVONLY : JN_DIR_INACTIVE;
    }
    for (auto c : m.attrs("candidate")) {
      if (ms.candidates.size() >= kMaxCandidates) break;
      ms.candidates.emplace_back(trim(c));
    }
    if (ms.kind == JN_MEDIA_DATA) {
      uint32_t v = 0;
      if (auto p = m.attr("sctp-port"); p && parse_u32(trim(*p), v, 65535)) ms.sctp_port = static_cast<uint16_t>(v);
      else if (auto sm = m.attr("sctpmap")) {  // draft-ietf-mmusic-sctp-sdp-05: "5000 webrtc-datachannel 1024"
        auto [port, rest] = split1(*sm);
        if (parse_u32(port, v, 65535)) ms.sctp_port = static_cast<uint16_t>(v);
      } else if (!m.formats.empty() && parse_u32(m.formats[0], v, 65535) && m.proto == "DTLS/SCTP") {
        ms.sctp_port = static_cast<uint16_t>(v);
      }
      if (auto p = m.attr("max-message-size")) {
        uint32_t mm = 0;
        if (parse_u32(trim(*p), mm, 0xffffffffu)) ms.max_message_size = mm;
      }
    } else if (m.is_rtp()) {
      for (auto& f : m.formats) {
        if (ms.codecs.size() >= kMaxCodecs) break;
        uint32_t pt = 0;
        if (!parse_u32(f, pt, 127)) {
          err.reason = "m-line " + std::to_string(mi) + ": payload type '" + f + "' is not 0-127";
          return false;
        }
        Codec c;
        c.pt = static_cast<uint8_t>(pt);
        if (pt == 0) c.name = "PCMU", c.clock_rate = 8000;
        else if (pt == 8) c.name = "PCMA", c.clock_rate = 8000;
        else if (pt == 9) c.name = "G722", c.clock_rate = 8000;
        else if (pt == 13) c.name = "CN", c.clock_rate = 8000;
        ms.codecs.push_back(std::move(c));
      }
      for (auto rm : m.attrs("rtpmap")) {
        auto [pts, enc] = split1(trim(rm));
        uint32_t pt = 0;
        if (!parse_u32(pts, pt, 127)) {
          err.reason = "m-line " + std::to_string(mi) + ": bad rtpmap '" + std::string(rm) + "'";
          return false;
        }
        Codec* c = nullptr;
        for (auto& x : ms.codecs)
          if (x.pt == pt) c = &x;
        if (!c) continue;  // an rtpmap for a pt not on the m-line: ignored (RFC 8866 6.6)
        size_t s1 = enc.find('/');
        if (s1 == std::string_view::npos || s1 == 0) {
          err.reason = "m-line " + std::to_string(mi) + ": bad rtpmap '" + std::string(rm) + "'";
          return false;
        }
        std::string_view rest = enc.substr(s1 + 1);
        size_t s2 = rest.find('/');
        uint32_t clock = 0, ch = 0;
        if (!parse_u32(rest.substr(0, s2), clock, 10'000'000) || clock == 0 ||
            (s2 != std::string_view::npos && !parse_u32(rest.substr(s2 + 1), ch, 255))) {
          err.reason = "m-line " + std::to_string(mi) + ": bad rtpmap '" + std::string(rm) + "'";
          return false;
        }
        c->name = std::string(enc.substr(0, s1));
        c->clock_rate = clock;
        c->channels = ch;
      }
      for (auto fm : m.attrs("fmtp")) {
        auto [pts, params] = split1(trim(fm));
        uint32_t pt = 0;
        if (!parse_u32(pts, pt, 127)) continue;
        for (auto& x : ms.codecs)
          if (x.pt == pt) x.fmtp = std::string(params);
      }
      for (auto fb : m.attrs("rtcp-fb")) {
        auto [pts, val] = split1(trim(fb));
        uint32_t pt = 0;
        bool all = pts == "*";
        if (!all && !parse_u32(pts, pt, 127)) continue;
        for (auto& x : ms.codecs)
          if ((all || x.pt == pt) && x.rtcp_fb.size() < 16 && !x.has_fb(val)) x.rtcp_fb.emplace_back(val);
      }
      // Dynamic pts without an rtpmap cannot be used: dropped.
      std::erase_if(ms.codecs, [](const Codec& c) { return c.name.empty(); });
      for (auto ss : m.attrs("ssrc")) {
        auto [id, rest] = split1(trim(ss));
        uint32_t v = 0;
        if (!parse_u32(id, v, 0xffffffffu)) continue;
        if (std::find(ms.ssrcs.begin(), ms.ssrcs.end(), v) == ms.ssrcs.end() && ms.ssrcs.size() < kMaxSsrcs)
          ms.ssrcs.push_back(v);
        if (rest.substr(0, 6) == "cname:" && ms.cname.empty()) ms.cname = std::string(rest.substr(6));
        if (rest.substr(0, 5) == "msid:" && ms.msid.empty()) ms.msid = std::string(rest.substr(5));
      }
      // ssrc-group FID/FEC: the first ssrc of the group is the media one; keep it first.
      if (auto g = m.attr("ssrc-group")) {
        auto f = psdp::detail::split_ws(*g);
        uint32_t v = 0;
        if (f.size() >= 2 && parse_u32(f[1], v, 0xffffffffu)) {
          auto it = std::find(ms.ssrcs.begin(), ms.ssrcs.end(), v);
          if (it != ms.ssrcs.end()) std::rotate(ms.ssrcs.begin(), it, it + 1);
        }
      }
      if (auto ms_attr = m.attr("msid")) ms.msid = std::string(trim(*ms_attr));
    }
    if (!ms.rejected() && (ms.kind == JN_MEDIA_AUDIO || ms.kind == JN_MEDIA_VIDEO || ms.kind == JN_MEDIA_DATA)) {
      if (ms.ice_ufrag.empty() || ms.ice_pwd.empty()) {
        err.reason = "m-line " + std::to_string(mi) + " (" + ms.media + "): no ice-ufrag/ice-pwd";
        return false;
      }
      if (ms.fingerprint.empty()) {
        err.reason = "m-line " + std::to_string(mi) + " (" + ms.media + "): no DTLS fingerprint";
        return false;
      }
    }
    out.media.push_back(std::move(ms));
  }
  return true;
}

LocalMedia LocalMedia::from_media_stream(const jn_media_stream& s) {
  LocalMedia lm;
  auto str = [](jn_str x) { return std::string(x.ptr ? x.ptr : "", x.ptr ? x.len : 0); };
  bool has_codecs = JN_HAS_FIELD(&s, jn_media_stream, codec_count) && s.codecs && s.codec_count;
  if (has_codecs) {
    for (uint32_t i = 0; i < s.codec_count && i < kMaxCodecs; ++i) {
      CodecPref p{str(s.codecs[i].name), s.codecs[i].clock_rate, 0};
      Codec c;
      c.name = p.name;
      if (is_aux_codec(c)) continue;  // telephone-event, RTX, RED, FEC, CN: not media formats to pick
      bool dup = false;
      for (auto& q : lm.codecs) dup = dup || (canonical_codec_name(q.name) == canonical_codec_name(p.name) && q.clock_rate == p.clock_rate);
      if (!dup) lm.codecs.push_back(std::move(p));
    }
  }
  if (lm.codecs.empty() && s.format.len) lm.codecs.push_back(CodecPref{str(s.format), s.clock_rate, 0});
  // The far leg's direction is its own: it sends -> we have media for the browser.
  lm.can_send = dir_sends(s.direction);
  lm.can_receive = dir_receives(s.direction);
  if (JN_HAS_FIELD(&s, jn_media_stream, bus_stream)) lm.bus_stream = str(s.bus_stream);
  return lm;
}

void offer_lines_from(const jn_media_desc* far, OfferOptions& out) {
  if (!far || !far->streams) return;
  for (uint32_t i = 0; i < far->count && i < 16; ++i) {
    const jn_media_stream* s = far->streams[i];
    if (!s || (s->kind != JN_MEDIA_AUDIO && s->kind != JN_MEDIA_VIDEO)) continue;
    LocalMedia lm = LocalMedia::from_media_stream(*s);
    if (lm.codecs.empty()) continue;
    OfferOptions::Line l;
    l.kind = s->kind;
    l.codecs = std::move(lm.codecs);
    l.direction = make_dir(lm.can_send, lm.can_receive);
    out.lines.push_back(std::move(l));
  }
}

const MLineResult* AnswerResult::first(uint32_t kind) const {
  for (auto& l : lines)
    if (l.kind == kind && l.accepted) return &l;
  return nullptr;
}

std::string AnswerResult::summary() const {
  std::string s;
  for (auto& l : lines) {
    if (!s.empty()) s += "; ";
    s += kind_name(l.kind);
    if (!l.mid.empty()) s += "(" + l.mid + ")";
    s += ": ";
    if (!l.accepted) {
      s += "refused (" + l.reason + ")";
    } else if (l.kind == JN_MEDIA_DATA) {
      s += "data channels";
    } else {
      s += canonical_codec_name(l.codec.name) + " pt " + std::to_string(l.codec.pt) + " " + direction_attr(l.direction);
    }
  }
  return s;
}

bool build_answer(const Description& offer, const AnswerOptions& opt, AnswerResult& out, ParseError& err) {
  out = AnswerResult{};
  if (opt.transports.empty()) {
    err.reason = "no local transport to answer with";
    return false;
  }
  out.bundle = !offer.bundle_mids.empty();
  uint32_t next_ssrc = opt.ssrc_seed;
  auto new_ssrc = [&]() { return opt.ssrc_seed ? next_ssrc++ : random_u32(); };
  std::string sid = opt.session_id.empty() ? random_session_id() : opt.session_id;
  psdp::Session ans = session_head(sid, opt.session_version, opt.transports[0].address);
  ans.add_attr("ice-lite", std::nullopt);

  std::vector<std::string> group;
  size_t accepted_n = 0;
  for (size_t i = 0; i < offer.media.size(); ++i) {
    const MediaSection& om = offer.media[i];
    MLineResult r;
    r.index = i;
    r.mid = om.mid;
    r.kind = om.kind;
    auto refuse = [&](std::string why) { r.accepted = false, r.reason = std::move(why); };
    const LocalMedia* lm = om.kind == JN_MEDIA_AUDIO ? &opt.audio : om.kind == JN_MEDIA_VIDEO ? &opt.video : nullptr;
    if (om.kind == 0) {
      refuse("unsupported media '" + om.media + "'");
    } else if (om.rejected()) {
      refuse("disabled in the offer");
    } else if (out.bundle && !om.mid.empty() && !offer.bundled(om.mid)) {
      refuse("not in the BUNDLE group");
    } else if (om.kind == JN_MEDIA_DATA) {
      if (!opt.data_channels) refuse("data channels not enabled");
      else if (om.proto.find("SCTP") == std::string::npos) refuse("unsupported data proto " + om.proto);
      else if (!om.sctp_port) refuse("no sctp-port");
      else {
        r.accepted = true;
        r.sctp_port = om.sctp_port;
        r.max_message_size = om.max_message_size ? om.max_message_size : 65536;
        r.direction = JN_DIR_SENDRECV;
      }
    } else if (om.proto.find("SAVP") == std::string::npos || om.proto.find("TLS") == std::string::npos) {
      refuse("not DTLS-SRTP (" + om.proto + ")");
    } else if (!om.rtcp_mux) {
      refuse("no rtcp-mux");
    } else if (lm->codecs.empty()) {
      refuse(std::string("no ") + kind_name(om.kind) + " on the other side");
    } else {
      bool we_send = lm->can_send && dir_receives(om.direction);
      bool we_recv = lm->can_receive && dir_sends(om.direction);
      if (om.kind == JN_MEDIA_VIDEO && !lm->can_send) {
        refuse("no video to send");
      } else {
        const Codec* chosen = nullptr;
        for (auto& p : lm->codecs)
          if ((chosen = pick(om, p))) break;
        if (!chosen) {
          refuse("no common codec (offer: " + codec_list(om) + "; wanted: " + pref_list(*lm) + ")");
        } else {
          r.accepted = true;
          r.codec = *chosen;
          // Feedback we act on: NACK (retransmit buffer), PLI and FIR (keyframes).
          std::erase_if(r.codec.rtcp_fb, [](const std::string& f) { return f != "nack" && f != "nack pli" && f != "ccm fir"; });
          if (om.kind == JN_MEDIA_AUDIO) {
            r.codec.rtcp_fb.clear();
            for (auto& c : om.codecs)
              if (canonical_codec_name(c.name) == "TELEPHONE-EVENT" && c.clock_rate == chosen->clock_rate) {
                r.telephone_event_pt = c.pt;
                break;
              }
          }
          r.direction = make_dir(we_send, we_recv);
          r.remote_ssrc = om.ssrcs.empty() ? 0 : om.ssrcs[0];
          if (we_send) r.local_ssrc = new_ssrc();
        }
      }
    }
    if (r.accepted) {
      r.transport = out.bundle ? 0 : std::min(accepted_n, opt.transports.size() - 1);
      ++accepted_n;
    }
    out.lines.push_back(std::move(r));
  }
  if (accepted_n == 0) {
    err.reason = "nothing in the offer can be accepted: " + out.summary();
    return false;
  }

  // Remote transport parameters: per transport, from its first m-line (the BUNDLE tag).
  size_t ntrans = out.bundle ? 1 : std::min(accepted_n, opt.transports.size());
  out.remotes.resize(ntrans);
  std::vector<bool> seen(ntrans, false);
  for (auto& r : out.lines) {
    if (!r.accepted || seen[r.transport]) continue;
    seen[r.transport] = true;
    const MediaSection& om = offer.media[r.index];
    auto& rem = out.remotes[r.transport];
    rem.ice_ufrag = om.ice_ufrag, rem.ice_pwd = om.ice_pwd, rem.fingerprint = om.fingerprint;
    rem.setup = om.setup == JN_SETUP_NONE ? uint32_t{JN_SETUP_ACTPASS} : om.setup;
    rem.candidates = om.candidates;
  }

  for (auto& r : out.lines) {
    const MediaSection& om = offer.media[r.index];
    psdp::Media mm;
    mm.media = om.media;
    mm.proto = om.proto;
    if (!r.accepted) {
      mm.port = 0;
      mm.formats = om.formats.empty() ? std::vector<std::string>{"0"} : om.formats;
      if (!om.mid.empty()) mm.add_attr("mid", om.mid);
      ans.media.push_back(std::move(mm));
      continue;
    }
    const LocalTransport& t = opt.transports[r.transport];
    const auto& rem = out.remotes[r.transport];
    // We are the DTLS server unless the browser insists on being it (setup:passive).
    const char* setup = rem.setup == JN_SETUP_PASSIVE ? "active" : "passive";
    mm.port = t.port;
    bool first_of_transport = true;
    for (auto& o : out.lines) {
      if (&o == &r) break;
      if (o.accepted && o.transport == r.transport) first_of_transport = false;
    }
    if (r.kind == JN_MEDIA_DATA) {
      mm.proto = om.proto == "DTLS/SCTP" ? "UDP/DTLS/SCTP" : om.proto;
      mm.formats = {"webrtc-datachannel"};
      put_transport(mm, t, setup, first_of_transport || !out.bundle);
      mm.add_attr("mid", om.mid);
      mm.add_attr("sctp-port", std::to_string(om.sctp_port));
      mm.add_attr("max-message-size", std::to_string(opt.max_message_size));
    } else {
      mm.formats = {std::to_string(r.codec.pt)};
      if (r.telephone_event_pt >= 0) mm.formats.push_back(std::to_string(r.telephone_event_pt));
      put_transport(mm, t, setup, first_of_transport || !out.bundle);
      if (!om.mid.empty()) mm.add_attr("mid", om.mid);
      mm.add_attr(direction_attr(r.direction), std::nullopt);
      mm.add_attr("rtcp-mux", std::nullopt);
      if (om.rtcp_rsize) mm.add_attr("rtcp-rsize", std::nullopt);
      put_codec(mm, r.codec, r.kind == JN_MEDIA_VIDEO);
      if (r.telephone_event_pt >= 0) {
        const Codec* te = om.codec_by_pt(static_cast<uint8_t>(r.telephone_event_pt));
        if (te) put_codec(mm, *te, false);
      }
      if (r.local_ssrc) put_ssrc(mm, r.local_ssrc, opt.cname, std::string(kind_name(r.kind)) + "-" + (om.mid.empty() ? std::to_string(r.index) : om.mid));
    }
    if (out.bundle) group.push_back(om.mid);
    ans.media.push_back(std::move(mm));
  }
  if (out.bundle && !group.empty()) {
    std::string g = "BUNDLE";
    for (auto& m : group) g += " " + m;
    ans.add_attr("group", g);
  }
  ans.add_attr("msid-semantic", " WMS " + opt.cname);
  out.sdp = psdp::serialize(ans);
  ParseError perr;
  if (!parse_description(out.sdp, out.local, perr)) {  // our own output must re-parse
    err.reason = "internal: answer does not re-parse: " + perr.reason;
    return false;
  }
  return true;
}

namespace {
uint8_t static_pt(std::string_view canon, uint32_t clock) {
  if (canon == "PCMU" && (clock == 0 || clock == 8000)) return 0;
  if (canon == "PCMA" && (clock == 0 || clock == 8000)) return 8;
  if (canon == "G722" && (clock == 0 || clock == 8000)) return 9;
  return 255;
}
Codec offer_codec(const CodecPref& p, uint8_t& next_dyn, bool video) {
  Codec c;
  std::string canon = canonical_codec_name(p.name);
  uint8_t spt = static_pt(canon, p.clock_rate);
  c.pt = spt != 255 ? spt : next_dyn++;  // the caller checked that one is left
  c.clock_rate = p.clock_rate;
  if (canon == "OPUS") {
    c.name = "opus", c.clock_rate = 48000, c.channels = 2, c.fmtp = "minptime=10;useinbandfec=1";
  } else if (canon == "H264") {
    c.name = "H264", c.clock_rate = 90000, c.fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
  } else if (canon == "VP8") {
    c.name = "VP8", c.clock_rate = 90000;
  } else {
    c.name = canon;
    if (!c.clock_rate) c.clock_rate = video ? 90000 : 8000;
  }
  if (video) c.rtcp_fb = {"nack", "nack pli", "ccm fir"};
  return c;
}
}  // namespace

bool build_offer(const OfferOptions& opt, OfferResult& out, ParseError& err) {
  out = OfferResult{};
  if (opt.lines.empty() && !opt.data_channels) {
    err.reason = "nothing to offer";
    return false;
  }
  const LocalTransport& t = opt.transport;
  std::string sid = opt.session_id.empty() ? random_session_id() : opt.session_id;
  psdp::Session s = session_head(sid, opt.session_version, t.address);
  s.add_attr("ice-lite", std::nullopt);
  uint32_t next_ssrc = opt.ssrc_seed;
  std::vector<std::string> mids;
  size_t idx = 0;
  // Dynamic payload types are numbered across the whole BUNDLE group: a pt names one format on
  // the shared transport (the receiver demultiplexes by it).
  uint8_t next_dyn = 96;
  auto add_common = [&](psdp::Media& mm, const std::string& mid) {
    put_transport(mm, t, "actpass", idx == 0);
    mm.add_attr("mid", mid);
    mids.push_back(mid);
  };
  for (auto& l : opt.lines) {
    if (l.kind != JN_MEDIA_AUDIO && l.kind != JN_MEDIA_VIDEO) {
      err.reason = "offer line " + std::to_string(idx) + ": kind must be audio or video";
      return false;
    }
    if (l.codecs.empty()) {
      err.reason = "offer line " + std::to_string(idx) + ": no codec";
      return false;
    }
    bool video = l.kind == JN_MEDIA_VIDEO;
    psdp::Media mm;
    mm.media = video ? "video" : "audio";
    mm.port = t.port;
    mm.proto = "UDP/TLS/RTP/SAVPF";
    std::vector<Codec> codecs;
    for (auto& p : l.codecs) {
      std::string canon = canonical_codec_name(p.name);
      if (!bridgeable(canon)) continue;  // nothing could carry it
      bool dup = false;
      for (auto& x : codecs) dup = dup || canonical_codec_name(x.name) == canon;  // one clock per bridgeable codec
      if (dup || (static_pt(canon, p.clock_rate) == 255 && next_dyn >= 128)) continue;
      codecs.push_back(offer_codec(p, next_dyn, video));
    }
    if (codecs.empty()) {
      err.reason = "offer line " + std::to_string(idx) + ": none of its codecs can be bridged (H264, VP8, OPUS, PCMA, PCMU)";
      return false;
    }
    if (!video) {
      bool narrow = false;
      for (auto& c : codecs) narrow = narrow || c.clock_rate == 8000;
      if (narrow && next_dyn < 128) codecs.push_back(Codec{"telephone-event", next_dyn++, 8000, 0, "0-16", {}});
    }
    for (auto& c : codecs) mm.formats.push_back(std::to_string(c.pt));
    std::string mid = l.mid.empty() ? std::to_string(idx) : l.mid;
    add_common(mm, mid);
    mm.add_attr(direction_attr(l.direction), std::nullopt);
    mm.add_attr("rtcp-mux", std::nullopt);
    mm.add_attr("rtcp-rsize", std::nullopt);
    for (auto& c : codecs) put_codec(mm, c, video);
    uint32_t ssrc = 0;
    if (dir_sends(l.direction)) {
      ssrc = opt.ssrc_seed ? next_ssrc++ : random_u32();
      put_ssrc(mm, ssrc, "junction", std::string(video ? "video-" : "audio-") + mid);
    }
    out.ssrcs.push_back(ssrc);
    s.media.push_back(std::move(mm));
    ++idx;
  }
  if (opt.data_channels) {
    psdp::Media mm;
    mm.media = "application";
    mm.port = t.port;
    mm.proto = "UDP/DTLS/SCTP";
    mm.formats = {"webrtc-datachannel"};
    add_common(mm, std::to_string(idx));
    mm.add_attr("sctp-port", "5000");
    mm.add_attr("max-message-size", std::to_string(opt.max_message_size));
    out.ssrcs.push_back(0);
    s.media.push_back(std::move(mm));
  }
  std::string g = "BUNDLE";
  for (auto& m : mids) g += " " + m;
  s.add_attr("group", g);
  s.add_attr("msid-semantic", " WMS junction");
  out.sdp = psdp::serialize(s);
  ParseError perr;
  if (!parse_description(out.sdp, out.local, perr)) {
    err.reason = "internal: offer does not re-parse: " + perr.reason;
    return false;
  }
  return true;
}

bool apply_answer(const Description& offer, std::string_view answer_sdp, AnswerResult& out, ParseError& err) {
  out = AnswerResult{};
  Description ans;
  if (!parse_description(answer_sdp, ans, err)) return false;
  if (ans.media.size() != offer.media.size()) {
    err.reason = "answer has " + std::to_string(ans.media.size()) + " m-lines, the offer " + std::to_string(offer.media.size());
    return false;
  }
  out.bundle = !ans.bundle_mids.empty();
  out.sdp = std::string(answer_sdp);
  out.local = offer;
  size_t accepted_n = 0;
  for (size_t i = 0; i < offer.media.size(); ++i) {
    const MediaSection& om = offer.media[i];
    const MediaSection& am = ans.media[i];
    MLineResult r;
    r.index = i;
    r.mid = om.mid;
    r.kind = om.kind;
    if (am.kind != om.kind) {
      err.reason = "answer m-line " + std::to_string(i) + " is " + am.media + ", the offer's " + om.media;
      return false;
    }
    if (am.rejected() || om.rejected()) {
      r.reason = "refused by the browser";
    } else if (om.kind == JN_MEDIA_DATA) {
      r.accepted = true;
      r.direction = JN_DIR_SENDRECV;
      r.sctp_port = am.sctp_port;
      r.max_message_size = am.max_message_size ? am.max_message_size : 65536;
    } else {
      for (auto& ac : am.codecs) {
        if (is_aux_codec(ac)) continue;
        const Codec* oc = om.codec_by_pt(ac.pt);
        if (oc && canonical_codec_name(oc->name) == canonical_codec_name(ac.name)) {
          r.codec = ac;
          std::erase_if(r.codec.rtcp_fb, [](const std::string& f) { return f != "nack" && f != "nack pli" && f != "ccm fir"; });
          break;
        }
      }
      if (r.codec.name.empty()) {
        r.reason = "the answer has none of the offered codecs";
      } else {
        r.accepted = true;
        for (auto& ac : am.codecs)
          if (canonical_codec_name(ac.name) == "TELEPHONE-EVENT" && ac.clock_rate == r.codec.clock_rate) r.telephone_event_pt = ac.pt;
        // The browser's direction is its own: it receives -> we send.
        r.direction = make_dir(dir_sends(om.direction) && dir_receives(am.direction),
                               dir_receives(om.direction) && dir_sends(am.direction));
        r.remote_ssrc = am.ssrcs.empty() ? 0 : am.ssrcs[0];
        r.local_ssrc = om.ssrcs.empty() ? 0 : om.ssrcs[0];
      }
    }
    if (r.accepted) r.transport = out.bundle ? 0 : accepted_n, ++accepted_n;
    out.lines.push_back(std::move(r));
  }
  if (!accepted_n) {
    err.reason = "the browser accepted nothing: " + out.summary();
    return false;
  }
  size_t ntrans = out.bundle ? 1 : accepted_n;
  out.remotes.resize(ntrans);
  std::vector<bool> seen(ntrans, false);
  for (auto& r : out.lines) {
    if (!r.accepted || seen[r.transport]) continue;
    seen[r.transport] = true;
    const MediaSection& am = ans.media[r.index];
    auto& rem = out.remotes[r.transport];
    rem.ice_ufrag = am.ice_ufrag, rem.ice_pwd = am.ice_pwd, rem.fingerprint = am.fingerprint;
    rem.setup = am.setup;
    rem.candidates = am.candidates;
    if (am.setup != JN_SETUP_ACTIVE && am.setup != JN_SETUP_PASSIVE) {
      err.reason = "answer m-line " + std::to_string(r.index) + ": a=setup must be active or passive";
      return false;
    }
  }
  return true;
}

// --- ABI mapping ---------------------------------------------------------------------------

namespace {
jn_str js(const std::string& s) { return jn_str{s.data(), s.size()}; }
}  // namespace

void MediaStreams::finish() {
  streams_.resize(entries_.size());
  ptrs_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = *entries_[i];
    jn_media_stream& s = streams_[i];
    s.struct_size = sizeof(jn_media_stream);
    s.format = js(e.format);
    s.transport = js(e.transport);
    s.mid = js(e.mid);
    s.ice_ufrag = js(e.ufrag);
    s.ice_pwd = js(e.pwd);
    s.fingerprint = js(e.fingerprint);
    s.bus_stream = js(e.bus_stream);
    s.params = js(e.params);
    e.cands.clear();
    for (auto& c : e.cand_text) e.cands.push_back(js(c));
    s.candidates = e.cands.empty() ? nullptr : e.cands.data();
    s.candidate_count = static_cast<uint32_t>(e.cands.size());
    for (size_t k = 0; k < e.codecs.size(); ++k) {
      e.codecs[k].name = js(e.codec_text[3 * k]);
      e.codecs[k].fmtp = js(e.codec_text[3 * k + 1]);
      e.codecs[k].rtcp_fb = js(e.codec_text[3 * k + 2]);
    }
    s.codecs = e.codecs.empty() ? nullptr : e.codecs.data();
    s.codec_count = static_cast<uint32_t>(e.codecs.size());
    ptrs_.push_back(&s);
  }
  desc_.count = static_cast<uint32_t>(ptrs_.size());
  desc_.streams = ptrs_.empty() ? nullptr : ptrs_.data();
}

namespace {
void add_codec(MediaStreams::Entry& e, const Codec& c) {
  jn_codec jc{};
  jc.payload_type = c.pt;
  jc.clock_rate = c.clock_rate;
  jc.channels = c.channels;
  std::string fb;
  for (auto& f : c.rtcp_fb) fb += (fb.empty() ? "" : ";") + f;
  e.codec_text.push_back(canonical_codec_name(c.name));
  e.codec_text.push_back(c.fmtp);
  e.codec_text.push_back(fb);
  e.codecs.push_back(jc);
}
}  // namespace

void to_media_streams(const Description& d, MediaStreams& out) {
  out.entries_.clear();
  out.streams_.clear();
  for (auto& m : d.media) {
    if (m.rejected() || m.kind == 0) continue;
    auto e = std::make_unique<MediaStreams::Entry>();
    jn_media_stream s{};
    s.kind = m.kind;
    s.direction = m.direction;
    s.setup = m.setup;
    s.flags = (m.rtcp_mux ? uint32_t{JN_MS_RTCP_MUX} : 0u) | (d.ice_lite ? uint32_t{JN_MS_ICE_LITE} : 0u) |
              (m.end_of_candidates ? uint32_t{JN_MS_END_OF_CANDIDATES} : 0u);
    s.ssrc = m.ssrcs.empty() ? 0 : m.ssrcs[0];
    e->transport = m.kind == JN_MEDIA_DATA ? "udp/dtls/sctp" : "udp/tls/rtp/savpf";
    e->mid = m.mid, e->ufrag = m.ice_ufrag, e->pwd = m.ice_pwd, e->fingerprint = m.fingerprint;
    e->cand_text = m.candidates;
    if (m.kind == JN_MEDIA_DATA) {
      e->format = "webrtc-datachannel";
      e->params = "sctp-port=" + std::to_string(m.sctp_port) + ";max-message-size=" + std::to_string(m.max_message_size);
    } else {
      for (auto& c : m.codecs) add_codec(*e, c);
      const Codec* first = nullptr;
      for (auto& c : m.codecs)
        if (!is_aux_codec(c)) {
          first = &c;
          break;
        }
      if (first) {
        e->format = canonical_codec_name(first->name);
        s.payload_type = first->pt, s.clock_rate = first->clock_rate, s.channels = first->channels;
      }
    }
    out.streams_.push_back(s);
    out.entries_.push_back(std::move(e));
  }
  out.finish();
}

void to_media_streams(const AnswerResult& r, MediaStreams& out, const std::string* bus_audio, const std::string* bus_video) {
  out.entries_.clear();
  out.streams_.clear();
  for (auto& l : r.lines) {
    if (!l.accepted) continue;
    auto e = std::make_unique<MediaStreams::Entry>();
    jn_media_stream s{};
    s.kind = l.kind;
    s.direction = l.direction;
    s.flags = JN_MS_RTCP_MUX | JN_MS_ICE_LITE;
    s.ssrc = l.remote_ssrc;
    e->mid = l.mid;
    if (l.transport < r.remotes.size()) {
      auto& rem = r.remotes[l.transport];
      e->ufrag = rem.ice_ufrag, e->pwd = rem.ice_pwd, e->fingerprint = rem.fingerprint;
      e->cand_text = rem.candidates;
      s.setup = rem.setup;
    }
    if (l.kind == JN_MEDIA_DATA) {
      e->transport = "udp/dtls/sctp";
      e->format = "webrtc-datachannel";
      e->params = "sctp-port=" + std::to_string(l.sctp_port) + ";max-message-size=" + std::to_string(l.max_message_size);
    } else {
      e->transport = "udp/tls/rtp/savpf";
      e->format = canonical_codec_name(l.codec.name);
      s.payload_type = l.codec.pt, s.clock_rate = l.codec.clock_rate, s.channels = l.codec.channels;
      add_codec(*e, l.codec);
      if (l.kind == JN_MEDIA_AUDIO && bus_audio) e->bus_stream = *bus_audio;
      if (l.kind == JN_MEDIA_VIDEO && bus_video) e->bus_stream = *bus_video;
    }
    out.streams_.push_back(s);
    out.entries_.push_back(std::move(e));
  }
  out.finish();
}

}  // namespace junction::webrtc
