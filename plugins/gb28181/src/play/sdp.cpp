#include "play/sdp.hpp"

#include <junction/proto/sdp.hpp>

namespace gb::play {

namespace sdp = junction::proto::sdp;

static bool is_tcp(Transport t) { return t != Transport::Udp; }

std::string build_offer(const Offer& o) {
  std::string s;
  auto line = [&](std::string_view l) {
    s += l;
    s += "\r\n";
  };
  line("v=0");
  line("o=" + o.origin_user + " 0 0 IN IP4 " + o.address);
  line(std::string("s=") + (o.kind == Kind::Talk ? "Play" : std::string(kind_name(o.kind))));
  if (o.kind == Kind::Playback || o.kind == Kind::Download) line("u=" + o.channel + ":0");
  line("c=IN IP4 " + o.address);
  line("t=" + std::to_string(o.start) + " " + std::to_string(o.end));
  const char* proto = is_tcp(o.transport) ? "TCP/RTP/AVP" : "RTP/AVP";
  if (o.kind == Kind::Talk) {
    line("m=audio " + std::to_string(o.port) + " " + proto + " 8 96");
    line("a=recvonly");
    line("a=rtpmap:8 PCMA/8000");
    line("a=rtpmap:96 PS/90000");
  } else {
    line("m=video " + std::to_string(o.port) + " " + proto + " 96 98 97");
    line("a=recvonly");
    line("a=rtpmap:96 PS/90000");
    line("a=rtpmap:98 H264/90000");
    line("a=rtpmap:97 MPEG4/90000");
  }
  if (o.transport == Transport::TcpPassive) line("a=setup:passive");
  if (o.transport == Transport::TcpActive) line("a=setup:active");
  if (is_tcp(o.transport)) line("a=connection:new");
  if (o.kind == Kind::Download && o.download_speed) line("a=downloadspeed:" + std::to_string(o.download_speed));
  line("y=" + o.ssrc);
  return s;
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

std::optional<AudioOffer> parse_audio_offer(std::string_view text, std::string& error) {
  auto r = sdp::parse(text);
  if (!r) {
    error = "audio offer SDP: " + r.error;
    return std::nullopt;
  }
  const sdp::Session& s = *r.session;
  const sdp::Media* m = nullptr;
  for (auto& x : s.media)
    if (x.media == "audio") {
      m = &x;
      break;
    }
  if (!m) {
    error = "audio offer SDP: no m=audio";
    return std::nullopt;
  }
  AudioOffer o;
  if (const sdp::Line* sl = s.first('s')) o.session_name = sl->value;
  auto c = s.media_connection(*m);
  if (!c || c->address.empty()) {
    error = "audio offer SDP: no c= address";
    return std::nullopt;
  }
  o.address = c->address;
  o.port = static_cast<uint16_t>(m->port);
  bool tcp = m->proto.find("TCP") != std::string::npos;
  if (!tcp && o.port == 0) {
    error = "audio offer SDP: m=audio port 0";
    return std::nullopt;
  }
  if (tcp) {
    auto setup = m->attr("setup");
    if (!setup) setup = s.attr("setup");
    // The device passive: it listens and we connect. Active (or unspecified): we listen.
    o.transport = (setup && *setup == "passive") ? Transport::TcpActive : Transport::TcpPassive;
  }
  auto pts = rtpmaps(*m);
  // Plain G.711A (PT 8, named or static) is preferred; PS only when it is all the device takes.
  bool pcma = false;
  int ps_pt = -1;
  for (auto& f : m->formats) {
    uint32_t pt = 0;
    if (!sdp::detail::parse_u32(f, pt, 127)) continue;
    auto it = pts.find(static_cast<int>(pt));
    std::string enc = it == pts.end() ? (pt == 8 ? "PCMA" : "") : it->second;
    if (enc == "PCMA") pcma = true;
    if (enc == "PS" && ps_pt < 0) ps_pt = static_cast<int>(pt);
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
  if (auto y = sdp::gb_ssrc(s)) {
    if (!sdp::gb_ssrc_value(*y)) {
      error = "audio offer SDP: y=" + std::string(*y) + " is not a decimal SSRC";
      return std::nullopt;
    }
    o.ssrc = std::string(*y);
  }
  return o;
}

std::string build_audio_answer(const AudioOffer& o, const std::string& origin_user, const std::string& address,
                               uint16_t port) {
  std::string s;
  auto line = [&](std::string_view l) {
    s += l;
    s += "\r\n";
  };
  line("v=0");
  line("o=" + origin_user + " 0 0 IN IP4 " + address);
  line("s=" + (o.session_name.empty() ? std::string("Play") : o.session_name));
  line("c=IN IP4 " + address);
  line("t=0 0");
  bool tcp = o.transport != Transport::Udp;
  line("m=audio " + std::to_string(port) + (tcp ? " TCP/RTP/AVP " : " RTP/AVP ") + std::to_string(o.payload_type));
  line("a=sendonly");
  line(o.ps ? "a=rtpmap:" + std::to_string(o.payload_type) + " PS/90000" : std::string("a=rtpmap:8 PCMA/8000"));
  if (tcp) {
    line(o.transport == Transport::TcpActive ? "a=setup:active" : "a=setup:passive");
    line("a=connection:new");
  }
  if (!o.ssrc.empty()) line("y=" + o.ssrc);
  line("f=v/////a/1/8/1");  // G.711 (1), 64 kbit/s class (8), 8 kHz (1): the document's audio f=
  return s;
}

std::optional<ClientOffer> parse_client_offer(std::string_view text, std::string& error) {
  auto r = sdp::parse(text);
  if (!r) {
    error = "offer SDP: " + r.error + (r.line ? " (line " + std::to_string(r.line) + ")" : "");
    return std::nullopt;
  }
  const sdp::Session& s = *r.session;
  const sdp::Media* m = nullptr;
  for (auto& x : s.media)
    if (x.media == "video") {
      m = &x;
      break;
    }
  if (!m) {
    error = "offer SDP: no m=video";
    return std::nullopt;
  }
  ClientOffer o;
  if (const sdp::Line* sl = s.first('s')) o.session_name = sl->value;
  auto c = s.media_connection(*m);
  if (!c || c->address.empty()) {
    error = "offer SDP: no c= address";
    return std::nullopt;
  }
  o.address = c->address;
  o.port = static_cast<uint16_t>(m->port);
  bool tcp = m->proto.find("TCP") != std::string::npos;
  if (!tcp && o.port == 0) {
    error = "offer SDP: m=video port 0";
    return std::nullopt;
  }
  for (const char* dir : {"sendonly", "sendrecv", "inactive"})
    if (m->has_attr(dir) || s.has_attr(dir)) {
      error = std::string("offer SDP: a=") + dir + ": the platform only sends (the client must be recvonly)";
      return std::nullopt;
    }
  if (tcp) {
    auto setup = m->attr("setup");
    if (!setup) setup = s.attr("setup");
    // The client passive: it listens and we connect. Active (or unspecified): we listen.
    o.transport = (setup && *setup == "passive") ? Transport::TcpActive : Transport::TcpPassive;
    if (o.transport == Transport::TcpActive && o.port == 0) {
      error = "offer SDP: a=setup:passive with port 0 (nowhere to connect)";
      return std::nullopt;
    }
  }
  auto pts = rtpmaps(*m);
  int ps_pt = -1;
  for (auto& f : m->formats) {
    uint32_t pt = 0;
    if (!sdp::detail::parse_u32(f, pt, 127)) continue;
    auto it = pts.find(static_cast<int>(pt));
    if (it != pts.end() && it->second == "PS") {
      ps_pt = static_cast<int>(pt);
      break;
    }
  }
  if (ps_pt < 0) {
    error = "offer SDP: no PS payload type (the platform sends the channel as MPEG-PS)";
    return std::nullopt;
  }
  o.payload_type = ps_pt;
  if (auto y = sdp::gb_ssrc(s)) {
    if (!sdp::gb_ssrc_value(*y)) {
      error = "offer SDP: y=" + std::string(*y) + " is not a decimal SSRC";
      return std::nullopt;
    }
    o.ssrc = std::string(*y);
  }
  return o;
}

std::string build_client_answer(const ClientOffer& o, const std::string& origin_user, const std::string& address,
                                uint16_t port, const std::string& ssrc) {
  std::string s;
  auto line = [&](std::string_view l) {
    s += l;
    s += "\r\n";
  };
  line("v=0");
  line("o=" + origin_user + " 0 0 IN IP4 " + address);
  line("s=Play");
  line("c=IN IP4 " + address);
  line("t=0 0");
  bool tcp = o.transport != Transport::Udp;
  std::string pt = std::to_string(o.payload_type);
  line("m=video " + std::to_string(port) + (tcp ? " TCP/RTP/AVP " : " RTP/AVP ") + pt);
  line("a=sendonly");
  line("a=rtpmap:" + pt + " PS/90000");
  if (tcp) {
    line(o.transport == Transport::TcpActive ? "a=setup:active" : "a=setup:passive");
    line("a=connection:new");
  }
  line("y=" + ssrc);
  return s;
}

}  // namespace gb::play
