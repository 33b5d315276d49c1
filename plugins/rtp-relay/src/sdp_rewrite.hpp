// The relay's SDP rewrite: point every relayed m= section at the relay's ports, fix a=rtcp,
// decide a=rtcp-mux, convert the transport (RTP <-> SRTP with SDES keys), drop ICE. Pure
// function over junction::proto::sdp, unit-tested on its own.
#pragma once

#include <junction/proto/sdp.hpp>

#include <string>
#include <vector>

namespace rtp_relay {

namespace sdp = junction::proto::sdp;

struct MediaPlan {
  bool relay = false;       // false: the section is left alone (e.g. a rejected m= with port 0)
  uint16_t port = 0;        // the relay's RTP port for the recipient of this SDP
  bool is_answer = false;
  bool mux = false;         // emit a=rtcp-mux
  std::string proto;        // non-empty: replace the m= transport
  bool strip_crypto = false;
  std::string crypto;       // non-empty: add this a=crypto value (after any strip)
};

struct RewriteOptions {
  sdp::Connection addr;        // the relay's advertised address
  bool replace_origin = false; // rewrite o='s address as well
  bool remove_ice = true;      // candidates would let the peers bypass the relay
};

inline void rewrite_sdp(sdp::Session& s, const RewriteOptions& o, const std::vector<MediaPlan>& plans) {
  if (o.remove_ice) sdp::remove_ice(s);
  if (o.replace_origin) s.set_origin_address(o.addr);
  bool session_c = s.first('c') != nullptr;
  if (session_c) s.set_connection(o.addr, false);
  for (size_t i = 0; i < s.media.size() && i < plans.size(); ++i) {
    const MediaPlan& p = plans[i];
    sdp::Media& m = s.media[i];
    if (!p.relay) continue;
    m.port = p.port;
    m.nports = 0;
    if (!p.proto.empty()) m.proto = p.proto;
    m.set_connection(o.addr, !session_c);
    m.remove_attr("rtcp");
    m.remove_attr("rtcp-mux");
    if (p.strip_crypto) m.remove_attr("crypto");
    uint32_t rtcp_port = (p.mux && p.is_answer) ? p.port : p.port + 1u;
    // a=rtcp goes first among the attributes, a=rtcp-mux right after it.
    size_t at = m.lines.size();
    for (size_t k = 0; k < m.lines.size(); ++k)
      if (m.lines[k].type == 'a') {
        at = k;
        break;
      }
    std::vector<sdp::Line> add;
    add.push_back({'a', "rtcp:" + std::to_string(rtcp_port)});
    if (p.mux) add.push_back({'a', "rtcp-mux"});
    m.lines.insert(m.lines.begin() + static_cast<long>(at), add.begin(), add.end());
    if (!p.crypto.empty()) m.add_attr("crypto", p.crypto);
  }
}

// RTP clock rate of a media section's first format: static payload types (RFC 3551) or a=rtpmap.
inline uint32_t clock_rate_of(const sdp::Media& m) {
  if (m.formats.empty()) return 0;
  const std::string& pt = m.formats[0];
  for (auto v : m.attrs("rtpmap")) {
    // "96 opus/48000/2"
    size_t sp = v.find(' ');
    if (sp == std::string_view::npos || v.substr(0, sp) != pt) continue;
    std::string_view enc = v.substr(sp + 1);
    size_t sl = enc.find('/');
    if (sl == std::string_view::npos) return 0;
    std::string_view rate = enc.substr(sl + 1);
    rate = rate.substr(0, rate.find('/'));
    uint32_t r = 0;
    for (char c : rate) {
      if (c < '0' || c > '9' || r > 10000000) return 0;
      r = r * 10 + static_cast<uint32_t>(c - '0');
    }
    return r;
  }
  static const uint32_t kStatic[35] = {8000, 0, 0, 8000, 8000, 8000, 16000, 8000, 8000, 8000, 44100, 44100, 8000, 8000,
                                       90000, 8000, 11025, 22050, 8000, 0, 0, 0, 0, 0, 0, 90000, 90000, 0, 90000, 0,
                                       0, 90000, 90000, 90000, 90000};
  uint32_t n = 0;
  if (pt.empty() || pt.size() > 3) return 0;
  for (char c : pt) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  return n < 35 ? kStatic[n] : 0;
}

}  // namespace rtp_relay
