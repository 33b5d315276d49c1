// Pure helpers of the relay, unit-tested on their own (no host, no I/O): addresses and the RTCP
// address an SDP implies, secrets from the CSPRNG, and peer-supplied strings made safe for logs.
#pragma once

#include <junction/abi.h>
#include <junction/proto/sdp.hpp>
#include <junction/util/addr.hpp>
#include <junction/util/random.hpp>


#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace rtp_relay {

namespace sdp = junction::proto::sdp;

// --- addresses ---------------------------------------------------------------------------------
inline bool addr_eq(const jn_addr& a, const jn_addr& b) {
  if (a.family != b.family || a.port != b.port) return false;
  return std::memcmp(a.ip, b.ip, a.family == 4 ? 4 : 16) == 0;
}
inline std::string addr_ip(const jn_addr& a) { return junction::util::format_ip(a); }
// Without the IPv6 zone: the ng/state form parse_addr_str reads back (a zone means nothing there).
inline std::string addr_str(const jn_addr& a) {
  jn_addr b = a;
  b.scope_id = 0;
  return junction::util::format_addr(b);
}

// ip ("192.0.2.1", "::1" or "[::1]") and port into out. On failure out is all zero (family 0:
// "no address", which the media path drops as no destination), never half filled: a port above
// 65535 used to leave the family set and the port truncated (65536 -> 0). No IPv6 zone: the
// relay's addresses come from SDP and ng, where a zone has no meaning.
inline bool make_addr(std::string_view ip, uint32_t port, jn_addr& out) {
  out = jn_addr{};
  if (port > 65535 || ip.find('%') != std::string_view::npos) return false;
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);  // "[192.0.2.1]" too
  jn_addr a{};
  if (!junction::util::parse_ip(ip, a)) return false;
  a.port = static_cast<uint16_t>(port);
  out = a;
  return true;
}

// "ip:port" / "[v6]:port" (what addr_str writes); "" is no address (true, family 0). Port 0 is
// not a destination: false (a state saved by an older copy may hold one).
inline bool parse_addr_str(std::string_view s, jn_addr& out) {
  out = jn_addr{};
  if (s.empty()) return true;
  size_t c = s.rfind(':');
  if (c == std::string_view::npos || c + 1 == s.size()) return false;
  uint32_t port = 0;
  for (char ch : s.substr(c + 1)) {
    if (ch < '0' || ch > '9') return false;
    port = port * 10 + static_cast<uint32_t>(ch - '0');
    if (port > 65535) return false;  // before it can wrap around
  }
  return port != 0 && make_addr(s.substr(0, c), port, out);
}

// The RTCP port next to an RTP port (RFC 3550: RTP + 1), or 0 when there is none (65535 + 1).
inline uint16_t rtcp_port_after(uint32_t rtp_port) { return rtp_port >= 1 && rtp_port < 65535 ? static_cast<uint16_t>(rtp_port + 1) : 0; }

// Where a side receives, from its SDP: RTP at ip:port; RTCP at a=rtcp's port (RFC 3605) and
// address (when use_rtcp_addr), else at RTP port + 1. Each is family 0 when it is unusable (no
// or bad address, port 0, an RTP port of 65535 without a=rtcp); RTCP toward a side without an
// RTCP address is dropped as "no destination" until its own RTCP latches one.
struct RecvAddrs {
  jn_addr rtp{}, rtcp{};
};
inline RecvAddrs sdp_receive_addrs(std::string_view ip, uint32_t port, const sdp::Media& m, bool use_rtcp_addr) {
  RecvAddrs r;
  if (ip.empty() || port == 0 || !make_addr(ip, port, r.rtp)) return RecvAddrs{};
  uint32_t rport = rtcp_port_after(port);
  std::string rip(ip);
  if (auto ra = m.attr("rtcp")) {
    if (auto rtcp = sdp::parse_rtcp_attr(*ra)) {
      rport = rtcp->port;
      if (rtcp->addr && use_rtcp_addr) {
        jn_addr probe;
        if (make_addr(rtcp->addr->address, 0, probe)) rip = rtcp->addr->address;  // else keep the RTP address
      }
    }
  }
  if (rport != 0) make_addr(rip, rport, r.rtcp);
  return r;
}

// --- secrets -----------------------------------------------------------------------------------
// n bytes from OpenSSL's CSPRNG (as every other secret in Junction: admin token, intercom tokens).
// False (and out empty) when it cannot deliver: the caller refuses rather than use a weak key.
inline bool random_bytes(size_t n, std::string& out) { return junction::util::random_bytes(n, out); }

// --- logging peer input ------------------------------------------------------------------------
// A string a peer chose (call-id, tags, commands, addresses, reasons that quote them) made safe
// for one log line: C0/C1 controls, DEL, U+2028/U+2029, bytes that are not UTF-8 and the
// backslash are written as escapes (\n, \r, \t, \\, \xNN); at most
// `max` input bytes are kept, the rest is counted. No peer can start a new log line or drive a
// terminal with escape sequences.
inline std::string log_escape(std::string_view s, size_t max = 256) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  size_t n = s.size() < max ? s.size() : max;
  out.reserve(n + 8);
  auto esc = [&](unsigned char c) {
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 15];
  };
  for (size_t i = 0; i < n;) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\\': out += "\\\\"; break;
        default:
          if (c < 0x20 || c == 0x7f) esc(c);
          else out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence (no overlong form, no surrogate, <= U+10FFFF) is kept whole.
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    uint32_t cp = len == 4 ? c & 0x07u : len == 3 ? c & 0x0fu : c & 0x1fu;
    bool ok = len != 0 && c <= 0xf4 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    if (ok) {
      static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) && !(cp >= 0x80 && cp <= 0x9f) &&
           cp != 0x2028 && cp != 0x2029;
    }
    if (ok) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      esc(c);
      ++i;
    }
  }
  if (s.size() > n) out += "...(+" + std::to_string(s.size() - n) + " bytes)";
  return out;
}

}  // namespace rtp_relay
