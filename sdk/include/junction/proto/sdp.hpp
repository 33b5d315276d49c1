// SDP (RFC 8866) parse / serialise / rewrite. Header-only, C++20 standard library only.
//
// The model keeps every line in order so an untouched description serialises back to the same
// lines (CRLF line ends; a bare LF on input is accepted). What media relays and gateways
// rewrite has helpers: connection (c=), origin (o=) address, m= port/proto/formats, a=rtcp,
// a=rtcp-mux, a=crypto (RFC 4568 SDES) and ICE attributes (RFC 8839) removal.
//
// parse() is strict where a wrong guess would be dangerous (lines must be "x=value" with a
// lower-case letter type, m= needs "media port proto fmt...", ports are numbers <= 65535) and
// lenient elsewhere: lines of a type it does not know (k=, z=, GB/T 28181's y= and f=, any other
// letter) are kept in place and serialise back unchanged. Limits bound the work on hostile input.
#pragma once

#include <junction/util/encoding.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace junction::proto::sdp {

struct Line {
  char type = 0;       // 'v', 'o', 's', 'c', 'a', ...
  std::string value;   // text after "x="
};

struct Connection {
  std::string nettype = "IN";
  std::string addrtype = "IP4";  // IP4 or IP6
  std::string address;           // without TTL / count suffixes
};

inline std::optional<Connection> parse_connection(std::string_view v) {
  // "IN IP4 1.2.3.4[/ttl[/n]]"
  Connection c;
  size_t a = v.find(' ');
  if (a == std::string_view::npos) return std::nullopt;
  size_t b = v.find(' ', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  c.nettype = std::string(v.substr(0, a));
  c.addrtype = std::string(v.substr(a + 1, b - a - 1));
  std::string_view addr = v.substr(b + 1);
  if (size_t s = addr.find('/'); s != std::string_view::npos) addr = addr.substr(0, s);
  while (!addr.empty() && addr.back() == ' ') addr.remove_suffix(1);
  if (addr.empty() || c.nettype.empty() || c.addrtype.empty()) return std::nullopt;
  c.address = std::string(addr);
  return c;
}
inline std::string format_connection(const Connection& c) { return c.nettype + " " + c.addrtype + " " + c.address; }

// Attribute helpers over a line list: "a=name:value" or "a=name".
inline std::string_view attr_name(const Line& l) {
  std::string_view v(l.value);
  size_t c = v.find(':');
  return c == std::string_view::npos ? v : v.substr(0, c);
}
inline std::string_view attr_value(const Line& l) {
  std::string_view v(l.value);
  size_t c = v.find(':');
  return c == std::string_view::npos ? std::string_view() : v.substr(c + 1);
}

class LineList {
 public:
  std::vector<Line> lines;

  const Line* first(char type) const {
    for (auto& l : lines)
      if (l.type == type) return &l;
    return nullptr;
  }
  Line* first(char type) {
    for (auto& l : lines)
      if (l.type == type) return &l;
    return nullptr;
  }
  bool has_attr(std::string_view name) const { return find_attr(name) != nullptr; }
  const Line* find_attr(std::string_view name) const {
    for (auto& l : lines)
      if (l.type == 'a' && attr_name(l) == name) return &l;
    return nullptr;
  }
  std::optional<std::string_view> attr(std::string_view name) const {
    const Line* l = find_attr(name);
    if (!l) return std::nullopt;
    return attr_value(*l);
  }
  std::vector<std::string_view> attrs(std::string_view name) const {
    std::vector<std::string_view> out;
    for (auto& l : lines)
      if (l.type == 'a' && attr_name(l) == name) out.push_back(attr_value(l));
    return out;
  }
  // Removes every a= line whose name satisfies pred; returns how many.
  template <typename Pred>
  size_t remove_attrs_if(Pred pred) {
    size_t before = lines.size();
    std::erase_if(lines, [&](const Line& l) { return l.type == 'a' && pred(attr_name(l)); });
    return before - lines.size();
  }
  size_t remove_attr(std::string_view name) {
    return remove_attrs_if([&](std::string_view n) { return n == name; });
  }
  // Replaces the first a=name (or appends one) with a=name[:value].
  void set_attr(std::string_view name, std::optional<std::string_view> value) {
    std::string text(name);
    if (value) {
      text += ':';
      text += *value;
    }
    for (auto& l : lines)
      if (l.type == 'a' && attr_name(l) == name) {
        l.value = std::move(text);
        return;
      }
    lines.push_back(Line{'a', std::move(text)});
  }
  void add_attr(std::string_view name, std::optional<std::string_view> value) {
    std::string text(name);
    if (value) {
      text += ':';
      text += *value;
    }
    lines.push_back(Line{'a', std::move(text)});
  }
  std::optional<Connection> connection() const {
    const Line* l = first('c');
    if (!l) return std::nullopt;
    return parse_connection(l->value);
  }
  // Sets the c= line (inserting it at the RFC 8866 position: after i=/u=/e=/p=, before b=/t=/a=).
  void set_connection(const Connection& c, bool insert_if_missing) {
    if (Line* l = first('c')) {
      l->value = format_connection(c);
      return;
    }
    if (!insert_if_missing) return;
    size_t at = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
      char t = lines[i].type;
      if (t == 'v' || t == 'o' || t == 's' || t == 'i' || t == 'u' || t == 'e' || t == 'p') at = i + 1;
    }
    lines.insert(lines.begin() + static_cast<long>(at), Line{'c', format_connection(c)});
  }
};

struct Media : LineList {
  std::string media;   // audio, video, application, ...
  uint32_t port = 0;
  uint32_t nports = 0;  // 0 = not given
  std::string proto;   // RTP/AVP, RTP/SAVP, UDP/TLS/RTP/SAVPF, ...
  std::vector<std::string> formats;

  std::string m_line() const {
    std::string s = media + " " + std::to_string(port);
    if (nports) s += "/" + std::to_string(nports);
    s += " " + proto;
    for (auto& f : formats) s += " " + f;
    return s;
  }
  bool is_rtp() const { return proto.find("RTP/") != std::string::npos; }
  bool is_srtp() const { return proto.find("SAVP") != std::string::npos; }
  bool rtcp_mux() const { return has_attr("rtcp-mux"); }
};

struct Session : LineList {  // session-level lines (v= o= s= c= t= a= ...)
  std::vector<Media> media;

  // o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>
  bool set_origin_address(const Connection& c) {
    Line* o = first('o');
    if (!o) return false;
    std::vector<std::string> f;
    std::string_view v(o->value);
    size_t p = 0;
    while (p <= v.size()) {
      size_t s = v.find(' ', p);
      if (s == std::string_view::npos) s = v.size();
      f.emplace_back(v.substr(p, s - p));
      p = s + 1;
    }
    if (f.size() != 6) return false;
    f[3] = c.nettype, f[4] = c.addrtype, f[5] = c.address;
    o->value = f[0] + " " + f[1] + " " + f[2] + " " + f[3] + " " + f[4] + " " + f[5];
    return true;
  }
  // The effective connection of a media section: its own c= or the session's.
  std::optional<Connection> media_connection(const Media& m) const {
    if (auto c = m.connection()) return c;
    return connection();
  }
};

struct Limits {
  size_t max_bytes = 64 * 1024;
  size_t max_lines = 2000;
  size_t max_media = 64;
};

struct ParseResult {
  std::optional<Session> session;
  std::string error;
  size_t line = 0;  // 1-based line of the error
  explicit operator bool() const { return session.has_value(); }
};

namespace detail {
inline bool parse_u32(std::string_view s, uint32_t& out, uint32_t max) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return false;
  out = static_cast<uint32_t>(v);
  return true;
}
inline std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}
}  // namespace detail

inline bool parse_m_line(std::string_view v, Media& m) {
  auto f = detail::split_ws(v);
  if (f.size() < 3) return false;
  m.media = std::string(f[0]);
  std::string_view port = f[1];
  m.nports = 0;
  if (size_t s = port.find('/'); s != std::string_view::npos) {
    if (!detail::parse_u32(port.substr(s + 1), m.nports, 65535)) return false;
    port = port.substr(0, s);
  }
  if (!detail::parse_u32(port, m.port, 65535)) return false;
  m.proto = std::string(f[2]);
  m.formats.clear();
  for (size_t i = 3; i < f.size(); ++i) m.formats.emplace_back(f[i]);
  return true;
}

inline ParseResult parse(std::string_view text, const Limits& lim = {}) {
  ParseResult r;
  if (text.size() > lim.max_bytes) {
    r.error = "SDP larger than " + std::to_string(lim.max_bytes) + " bytes";
    return r;
  }
  Session s;
  Media* cur = nullptr;
  size_t pos = 0, lineno = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++lineno;
    if (line.empty()) continue;  // tolerate blank lines (trailing CRLF CRLF)
    if (lineno > lim.max_lines) {
      r.error = "too many lines";
      r.line = lineno;
      return r;
    }
    if (line.size() < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z') {
      r.error = "line is not type=value";
      r.line = lineno;
      return r;
    }
    Line l{line[0], std::string(line.substr(2))};
    if (s.lines.empty() && !cur && l.type != 'v') {
      r.error = "first line must be v=";
      r.line = lineno;
      return r;
    }
    if (l.type == 'm') {
      if (s.media.size() >= lim.max_media) {
        r.error = "too many media sections";
        r.line = lineno;
        return r;
      }
      Media m;
      if (!parse_m_line(l.value, m)) {
        r.error = "bad m= line";
        r.line = lineno;
        return r;
      }
      s.media.push_back(std::move(m));
      cur = &s.media.back();
      continue;
    }
    if (l.type == 'c' && !parse_connection(l.value)) {
      r.error = "bad c= line";
      r.line = lineno;
      return r;
    }
    (cur ? cur->lines : s.lines).push_back(std::move(l));
  }
  if (s.lines.empty()) {
    r.error = "empty SDP";
    return r;
  }
  r.session = std::move(s);
  return r;
}

inline std::string serialize(const Session& s) {
  std::string out;
  out.reserve(512);
  auto put = [&](char t, std::string_view v) {
    out += t;
    out += '=';
    out += v;
    out += "\r\n";
  };
  for (auto& l : s.lines) put(l.type, l.value);
  for (auto& m : s.media) {
    put('m', m.m_line());
    for (auto& l : m.lines) put(l.type, l.value);
  }
  return out;
}

// --- a=rtcp (RFC 3605): "port [nettype addrtype address]" -----------------------------------
struct RtcpAttr {
  uint32_t port = 0;
  std::optional<Connection> addr;
};
inline std::optional<RtcpAttr> parse_rtcp_attr(std::string_view v) {
  auto f = detail::split_ws(v);
  RtcpAttr a;
  if (f.empty() || !detail::parse_u32(f[0], a.port, 65535)) return std::nullopt;
  if (f.size() >= 4) a.addr = Connection{std::string(f[1]), std::string(f[2]), std::string(f[3])};
  return a;
}

// --- ICE (RFC 8839) -------------------------------------------------------------------------
inline bool is_ice_attr(std::string_view name) {
  return name == "candidate" || name == "ice-ufrag" || name == "ice-pwd" || name == "ice-options" ||
         name == "ice-lite" || name == "ice-mismatch" || name == "remote-candidates" || name == "end-of-candidates" ||
         name == "ice-pacing";
}
// Removes ICE attributes at session level and in every media section; returns how many.
inline size_t remove_ice(Session& s) {
  size_t n = s.remove_attrs_if(is_ice_attr);
  for (auto& m : s.media) n += m.remove_attrs_if(is_ice_attr);
  return n;
}

// --- SDES crypto (RFC 4568): "tag suite inline:key||[lifetime]|[MKI:len] [session params]" ----
struct Crypto {
  uint32_t tag = 0;
  std::string suite;        // AES_CM_128_HMAC_SHA1_80, ...
  std::string key_b64;      // master key || salt, base64
  std::string lifetime;     // optional, as written ("2^20")
  std::string mki;          // optional "1:4"
  std::string session_params;
};

inline std::optional<Crypto> parse_crypto(std::string_view v) {
  auto f = detail::split_ws(v);
  if (f.size() < 3) return std::nullopt;
  Crypto c;
  if (!detail::parse_u32(f[0], c.tag, 999999999)) return std::nullopt;
  c.suite = std::string(f[1]);
  std::string_view kp = f[2];
  // Only the first key parameter is used (multiple ";"-separated keys are rare).
  if (size_t semi = kp.find(';'); semi != std::string_view::npos) kp = kp.substr(0, semi);
  if (kp.substr(0, 7) != "inline:") return std::nullopt;
  kp.remove_prefix(7);
  size_t bar = kp.find('|');
  c.key_b64 = std::string(kp.substr(0, bar));
  if (c.key_b64.empty()) return std::nullopt;
  if (bar != std::string_view::npos) {
    std::string_view rest = kp.substr(bar + 1);
    size_t bar2 = rest.find('|');
    std::string_view first = rest.substr(0, bar2);
    if (first.find(':') != std::string_view::npos) {
      c.mki = std::string(first);
    } else {
      c.lifetime = std::string(first);
      if (bar2 != std::string_view::npos) c.mki = std::string(rest.substr(bar2 + 1));
    }
  }
  for (size_t i = 3; i < f.size(); ++i) {
    if (!c.session_params.empty()) c.session_params += ' ';
    c.session_params += f[i];
  }
  return c;
}
inline std::string format_crypto(const Crypto& c) {
  std::string s = std::to_string(c.tag) + " " + c.suite + " inline:" + c.key_b64;
  if (!c.lifetime.empty()) s += "|" + c.lifetime;
  if (!c.mki.empty()) s += "|" + c.mki;
  if (!c.session_params.empty()) s += " " + c.session_params;
  return s;
}

// --- base64 (RFC 4648), for SDES keys: junction/util/encoding.hpp ------------------------------
inline std::string base64_encode(const uint8_t* d, size_t n) {
  return util::base64_encode(std::string_view(reinterpret_cast<const char*>(d), n));
}
// Decodes standard base64 (padding optional); nullopt on any other character.
inline std::optional<std::string> base64_decode(std::string_view s) {
  std::string out;
  if (!util::base64_decode(s, out)) return std::nullopt;
  return out;
}

// --- GB/T 28181 (document 002): y= SSRC, f= media description ------------------------------
// GB devices put y= and f= after the media lines; parse() keeps them (like any other lower-case
// type it does not know) in the last media section, in order, so they round-trip unchanged. u= is
// the standard URI line (GB playback: "u=<device id>:<type>"), at session level.

// The first line of that type: session level first, then each media section.
inline const Line* find_line(const Session& s, char type) {
  if (const Line* l = s.first(type)) return l;
  for (auto& m : s.media)
    if (const Line* l = m.first(type)) return l;
  return nullptr;
}
inline Line* find_line(Session& s, char type) {
  return const_cast<Line*>(find_line(static_cast<const Session&>(s), type));
}

// y=: "0100000001" (10 decimal digits: 0 live / 1 playback, 5 digits of the domain, a sequence).
inline std::optional<std::string_view> gb_ssrc(const Session& s) {
  const Line* l = find_line(s, 'y');
  if (!l) return std::nullopt;
  return std::string_view(l->value);
}
// The y= value as the RTP SSRC it stands for; nullopt unless it is 1 to 10 digits below 2^32
// (devices send short forms such as "001": their numeric value is used).
inline std::optional<uint32_t> gb_ssrc_value(std::string_view y) {
  uint32_t v = 0;
  if (y.size() > 10 || !detail::parse_u32(y, v, 0xffffffffu)) return std::nullopt;
  return v;
}
// Replaces y= where it is, or appends it to the last media section (the session without media).
inline void set_gb_ssrc(Session& s, std::string_view y) {
  if (Line* l = find_line(s, 'y')) {
    l->value = std::string(y);
    return;
  }
  (s.media.empty() ? s.lines : s.media.back().lines).push_back(Line{'y', std::string(y)});
}

// f=v/codec/resolution/framerate/bitrate-type/bitrate a/codec/bitrate/samplerate; any field may be
// empty ("f=v/////a///", and devices also send the short "f=v/a/1/8/1").
struct GbFormat {
  std::vector<std::string> video;  // as written, up to 5 fields
  std::vector<std::string> audio;  // up to 3 fields
};
inline std::optional<GbFormat> parse_gb_format(std::string_view v) {
  if (v.empty() || v[0] != 'v') return std::nullopt;
  size_t a = v.find('a');
  if (a == std::string_view::npos) return std::nullopt;
  auto fields = [](std::string_view part, size_t max, std::vector<std::string>& out) {
    // part starts with '/' (or is empty); each '/' opens a field
    out.clear();
    if (part.empty()) return true;
    if (part[0] != '/') return false;
    size_t i = 1;
    for (;;) {
      size_t sl = part.find('/', i);
      out.emplace_back(part.substr(i, sl == std::string_view::npos ? std::string_view::npos : sl - i));
      if (out.size() > max) return false;
      if (sl == std::string_view::npos) break;
      i = sl + 1;
    }
    for (auto& f : out)
      for (char c : f)
        if (c < '0' || c > '9') return false;
    return true;
  };
  GbFormat g;
  std::string_view vpart = v.substr(1, a - 1);
  // "v/a/..." short form: the video part is a lone '/'
  if (vpart == "/") vpart = {};
  if (!fields(vpart, 5, g.video) || !fields(v.substr(a + 1), 3, g.audio)) return std::nullopt;
  return g;
}
inline std::string format_gb_format(const GbFormat& g) {
  std::string s = "v";
  for (size_t i = 0; i < 5; ++i) s += "/" + (i < g.video.size() ? g.video[i] : std::string());
  s += "a";
  for (size_t i = 0; i < 3; ++i) s += "/" + (i < g.audio.size() ? g.audio[i] : std::string());
  return s;
}

}  // namespace junction::proto::sdp
