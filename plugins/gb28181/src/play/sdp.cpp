#include "play/sdp.hpp"

#include <junction/proto/sdp.hpp>

#include <utility>
#include <vector>

namespace gb::play {

namespace sdp = junction::proto::sdp;

static bool is_tcp(Transport t) { return t != Transport::Udp; }

namespace {

// Every SDP we write (offers to devices, answers to devices and clients) is built here: one head
// (v= o= s= [u=] c= t=), one m= line form, one set of TCP role lines.
struct SdpWriter {
  std::string s;
  void line(std::string_view l) {
    s += l;
    s += "\r\n";
  }
  void head(const std::string& origin_user, const std::string& address, std::string_view session, const std::string& uri,
            uint64_t start, uint64_t end) {
    line("v=0");
    line("o=" + origin_user + " 0 0 IN IP4 " + address);
    line("s=" + std::string(session));
    if (!uri.empty()) line("u=" + uri);
    line("c=IN IP4 " + address);
    line("t=" + std::to_string(start) + " " + std::to_string(end));
  }
  void media(std::string_view kind, uint16_t port, Transport t, std::string_view formats) {
    line("m=" + std::string(kind) + " " + std::to_string(port) + (is_tcp(t) ? " TCP/RTP/AVP " : " RTP/AVP ") +
         std::string(formats));
  }
  // TCP: our role (passive: we listen) and a new connection per session.
  void tcp_roles(Transport t) {
    if (!is_tcp(t)) return;
    line(t == Transport::TcpActive ? "a=setup:active" : "a=setup:passive");
    line("a=connection:new");
  }
};

}  // namespace

std::string build_offer(const Offer& o) {
  SdpWriter w;
  bool vod = o.kind == Kind::Playback || o.kind == Kind::Download;
  w.head(o.origin_user, o.address, o.kind == Kind::Talk ? "Play" : kind_name(o.kind), vod ? o.channel + ":0" : std::string(),
         o.start, o.end);
  if (o.kind == Kind::Talk) {
    w.media("audio", o.port, o.transport, "8 96");
    w.line("a=recvonly");
    w.line("a=rtpmap:8 PCMA/8000");
    w.line("a=rtpmap:96 PS/90000");
  } else {
    w.media("video", o.port, o.transport, "96 98 97");
    w.line("a=recvonly");
    w.line("a=rtpmap:96 PS/90000");
    w.line("a=rtpmap:98 H264/90000");
    w.line("a=rtpmap:97 MPEG4/90000");
  }
  w.tcp_roles(o.transport);
  if (o.kind == Kind::Download && o.download_speed) w.line("a=downloadspeed:" + std::to_string(o.download_speed));
  w.line("y=" + o.ssrc);
  return w.s;
}

static std::map<int, std::string> rtpmaps(const sdp::Media& m) {
  std::map<int, std::string> out;
  for (auto v : m.attrs("rtpmap")) {
    // "96 PS/90000"
    size_t sp = v.find(' ');
    if (sp == std::string_view::npos) continue;
    uint32_t pt = 0;
    if (!sdp::detail::parse_u32(v.substr(0, sp), pt, 127)) continue;
    std::string_view enc = v.substr(sp + 1);
    enc = enc.substr(0, enc.find('/'));
    out[static_cast<int>(pt)] = std::string(enc);
  }
  return out;
}

std::optional<Answer> parse_answer(std::string_view text, const Offer& offer, std::string& error) {
  auto r = sdp::parse(text);
  if (!r) {
    error = "answer SDP: " + r.error + (r.line ? " (line " + std::to_string(r.line) + ")" : "");
    return std::nullopt;
  }
  const sdp::Session& s = *r.session;
  const char* want = offer.kind == Kind::Talk ? "audio" : "video";
  const sdp::Media* m = nullptr;
  for (auto& x : s.media)
    if (x.media == want) {
      m = &x;
      break;
    }
  if (!m) {
    error = std::string("answer SDP: no m=") + want;
    return std::nullopt;
  }
  Answer a;
  a.media = m->media;
  auto c = s.media_connection(*m);
  if (!c || c->address.empty()) {
    error = "answer SDP: no c= address";
    return std::nullopt;
  }
  a.address = c->address;
  if (m->port == 0) {
    error = "answer SDP: m= port 0 (the device refused the stream)";
    return std::nullopt;
  }
  a.port = static_cast<uint16_t>(m->port);
  bool tcp = m->proto.find("TCP") != std::string::npos;
  if (tcp != is_tcp(offer.transport)) {
    error = "answer SDP: transport " + m->proto + " is not the offered " + std::string(transport_name(offer.transport));
    return std::nullopt;
  }
  a.transport = offer.transport;
  if (tcp) {
    // The device's a=setup is the opposite of ours: it says active when we listen. A device that
    // answers with the same role cannot connect to us: refuse instead of waiting for a timeout.
    auto setup = m->attr("setup");
    if (!setup) setup = s.attr("setup");
    if (setup) {
      bool dev_active = *setup == "active";
      bool dev_passive = *setup == "passive";
      if ((offer.transport == Transport::TcpPassive && dev_passive) || (offer.transport == Transport::TcpActive && dev_active)) {
        error = "answer SDP: a=setup:" + std::string(*setup) + " leaves no side to connect";
        return std::nullopt;
      }
    }
  }
  if (auto y = sdp::gb_ssrc(s)) {
    a.ssrc = std::string(*y);
    a.ssrc_value = sdp::gb_ssrc_value(*y);
    if (!a.ssrc_value) {
      error = "answer SDP: y=" + a.ssrc + " is not a decimal SSRC";
      return std::nullopt;
    }
  }
  a.payloads = rtpmaps(*m);
  auto fs = m->attr("filesize");
  if (!fs) fs = s.attr("filesize");
  if (fs) {
    uint64_t v = 0;
    bool ok = !fs->empty() && fs->size() <= 19;
    for (char ch : *fs) {
      if (ch < '0' || ch > '9') ok = false;
      else v = v * 10 + static_cast<uint64_t>(ch - '0');
    }
    if (ok) a.filesize = v;  // a bad filesize only costs the progress: progress then comes from the stream time
  }
  if (const sdp::Line* f = sdp::find_line(s, 'f')) a.format = f->value;
  return a;
}

namespace {

// A peer's offer (a device's audio INVITE, a client's INVITE) as both parsers read it: where we
// send (PeerMedia), its m=<kind> and its payload types in the m= line's order with their encoding
// (a=rtpmap; PT 8 without one is PCMA, the static type).
struct PeerOffer {
  PeerMedia media;
  const sdp::Media* m = nullptr;
  std::vector<std::pair<int, std::string>> formats;
};

// nullopt + the reason (prefixed by `what`) in error. `r` must outlive the result's `m`.
std::optional<PeerOffer> parse_peer_offer(const sdp::ParseResult& r, std::string_view kind, const std::string& what,
                                          std::string& error) {
  if (!r) {
    error = what + ": " + r.error + (r.line ? " (line " + std::to_string(r.line) + ")" : "");
    return std::nullopt;
  }
  const sdp::Session& s = *r.session;
  PeerOffer po;
  PeerMedia& o = po.media;
  for (auto& x : s.media)
    if (x.media == kind) {
      po.m = &x;
      break;
    }
  if (!po.m) {
    error = what + ": no m=" + std::string(kind);
    return std::nullopt;
  }
  if (const sdp::Line* sl = s.first('s')) o.session_name = sl->value;
  auto c = s.media_connection(*po.m);
  if (!c || c->address.empty()) {
    error = what + ": no c= address";
    return std::nullopt;
  }
  o.address = c->address;
  o.port = static_cast<uint16_t>(po.m->port);
  bool tcp = po.m->proto.find("TCP") != std::string::npos;
  if (!tcp && o.port == 0) {
    error = what + ": m=" + std::string(kind) + " port 0";
    return std::nullopt;
  }
  if (tcp) {
    auto setup = po.m->attr("setup");
    if (!setup) setup = s.attr("setup");
    // The peer passive: it listens and we connect. Active (or unspecified): we listen.
    o.transport = (setup && *setup == "passive") ? Transport::TcpActive : Transport::TcpPassive;
  }
  if (auto y = sdp::gb_ssrc(s)) {
    if (!sdp::gb_ssrc_value(*y)) {
      error = what + ": y=" + std::string(*y) + " is not a decimal SSRC";
      return std::nullopt;
    }
    o.ssrc = std::string(*y);
  }
  auto pts = rtpmaps(*po.m);
  for (auto& f : po.m->formats) {
    uint32_t pt = 0;
    if (!sdp::detail::parse_u32(f, pt, 127)) continue;
    auto it = pts.find(static_cast<int>(pt));
    po.formats.emplace_back(static_cast<int>(pt), it != pts.end() ? it->second : pt == 8 ? "PCMA" : "");
  }
  return po;
}

}  // namespace

std::optional<AudioOffer> parse_audio_offer(std::string_view text, std::string& error) {
  auto r = sdp::parse(text);
  auto p = parse_peer_offer(r, "audio", "audio offer SDP", error);
  if (!p) return std::nullopt;
  AudioOffer o;
  static_cast<PeerMedia&>(o) = p->media;
  // Plain G.711A (PT 8, named or static) is preferred; PS only when it is all the device takes.
  bool pcma = false;
  int ps_pt = -1;
  for (auto& [pt, enc] : p->formats) {
    if (enc == "PCMA") pcma = true;
    if (enc == "PS" && ps_pt < 0) ps_pt = pt;
  }
  if (pcma) {
    o.payload_type = 8;
  } else if (ps_pt >= 0) {
    o.ps = true;
    o.payload_type = ps_pt;
  } else {
    error = "audio offer SDP: neither PCMA nor PS offered";
    return std::nullopt;
  }
  return o;
}

std::string build_audio_answer(const AudioOffer& o, const std::string& origin_user, const std::string& address,
                               uint16_t port) {
  SdpWriter w;
  w.head(origin_user, address, o.session_name.empty() ? std::string_view("Play") : o.session_name, {}, 0, 0);
  w.media("audio", port, o.transport, std::to_string(o.payload_type));
  w.line("a=sendonly");
  w.line(o.ps ? "a=rtpmap:" + std::to_string(o.payload_type) + " PS/90000" : std::string("a=rtpmap:8 PCMA/8000"));
  w.tcp_roles(o.transport);
  if (!o.ssrc.empty()) w.line("y=" + o.ssrc);
  w.line("f=v/////a/1/8/1");  // G.711 (1), 64 kbit/s class (8), 8 kHz (1): the document's audio f=
  return w.s;
}

std::optional<ClientOffer> parse_client_offer(std::string_view text, std::string& error) {
  auto r = sdp::parse(text);
  auto p = parse_peer_offer(r, "video", "offer SDP", error);
  if (!p) return std::nullopt;
  const sdp::Session& s = *r.session;
  for (const char* dir : {"sendonly", "sendrecv", "inactive"})
    if (p->m->has_attr(dir) || s.has_attr(dir)) {
      error = std::string("offer SDP: a=") + dir + ": the platform only sends (the client must be recvonly)";
      return std::nullopt;
    }
  if (p->media.transport == Transport::TcpActive && p->media.port == 0) {
    error = "offer SDP: a=setup:passive with port 0 (nowhere to connect)";
    return std::nullopt;
  }
  ClientOffer o;
  static_cast<PeerMedia&>(o) = p->media;
  int ps_pt = -1;
  for (auto& [pt, enc] : p->formats)
    if (enc == "PS") {
      ps_pt = pt;
      break;
    }
  if (ps_pt < 0) {
    error = "offer SDP: no PS payload type (the platform sends the channel as MPEG-PS)";
    return std::nullopt;
  }
  o.payload_type = ps_pt;
  return o;
}

std::string build_client_answer(const ClientOffer& o, const std::string& origin_user, const std::string& address,
                                uint16_t port, const std::string& ssrc) {
  SdpWriter w;
  w.head(origin_user, address, "Play", {}, 0, 0);
  std::string pt = std::to_string(o.payload_type);
  w.media("video", port, o.transport, pt);
  w.line("a=sendonly");
  w.line("a=rtpmap:" + pt + " PS/90000");
  w.tcp_roles(o.transport);
  w.line("y=" + ssrc);
  return w.s;
}

}  // namespace gb::play
