#include <junction/sip/uri.hpp>

#include "chars.hpp"

#include <junction/util/encoding.hpp>

namespace junction::sip {

using namespace detail;

bool iequals(std::string_view a, std::string_view b) { return iequal(a, b); }

std::string unquote(std::string_view v) {
  v = trim(v);
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  std::string out;
  out.reserve(v.size() - 2);
  for (size_t i = 1; i + 1 < v.size(); ++i) {
    if (v[i] == '\\' && i + 2 < v.size()) ++i;
    out += v[i];
  }
  return out;
}

bool unescape(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int h = util::hex_digit(in[i + 1]), l = util::hex_digit(in[i + 2]);
    if (h < 0 || l < 0) return false;
    out += char(h * 16 + l);
    i += 2;
  }
  return true;
}

bool ParamList::next(size_t& cursor, std::string_view& name, std::string_view& value) const {
  std::string_view r = raw_;
  size_t i = cursor;
  while (i < r.size() && (is_lws(r[i]) || r[i] == ';')) ++i;
  if (i >= r.size()) {
    cursor = r.size();
    return false;
  }
  size_t n0 = i;
  while (i < r.size() && r[i] != '=' && r[i] != ';') ++i;
  name = rtrim(r.substr(n0, i - n0));
  value = {};
  if (i < r.size() && r[i] == '=') {
    ++i;
    while (i < r.size() && is_lws(r[i])) ++i;
    size_t v0 = i;
    if (i < r.size() && r[i] == '"') {
      size_t e = skip_quoted(r, i);
      i = e == std::string_view::npos ? r.size() : e;
      value = r.substr(v0, i - v0);
      while (i < r.size() && r[i] != ';') ++i;
    } else {
      while (i < r.size() && r[i] != ';') ++i;
      value = rtrim(r.substr(v0, i - v0));
    }
  }
  cursor = i;
  return true;
}

bool ParamList::get(std::string_view want, std::string_view& value) const {
  size_t cur = 0;
  std::string_view n, v;
  while (next(cur, n, v)) {
    if (iequal(n, want)) {
      value = v;
      return true;
    }
  }
  value = {};
  return false;
}

namespace {

// Character classes of RFC 3261 25.1 as one constant table (no per-character string search).
enum : uint8_t { kUnreserved = 1, kUserX = 2, kPassX = 4, kParamX = 8, kHeaderX = 16, kTelX = 32 };
struct CharTable {
  uint8_t t[256]{};
  constexpr CharTable() {
    for (int c = 0; c < 256; ++c) {
      bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (alnum) t[c] |= kUnreserved;
    }
    for (char c : std::string_view("-_.!~*'()")) t[uint8_t(c)] |= kUnreserved;
    for (char c : std::string_view("&=+$,;?/")) t[uint8_t(c)] |= kUserX;
    for (char c : std::string_view("&=+$,")) t[uint8_t(c)] |= kPassX;
    for (char c : std::string_view(";=[]/:&+$")) t[uint8_t(c)] |= kParamX;
    for (char c : std::string_view("[]/?:+$&=")) t[uint8_t(c)] |= kHeaderX;
    for (char c : std::string_view("+#;=[]/:&$%")) t[uint8_t(c)] |= kTelX;
  }
};
constexpr CharTable kChars;

// Every character is unreserved, a valid %XX escape, or in the extra class.
bool chars_ok(std::string_view s, uint8_t extra) {
  const uint8_t mask = uint8_t(kUnreserved | extra);
  for (size_t i = 0; i < s.size(); ++i) {
    uint8_t c = uint8_t(s[i]);
    if (kChars.t[c] & mask) continue;
    if (c == '%' && i + 2 < s.size() && util::hex_digit(s[i + 1]) >= 0 && util::hex_digit(s[i + 2]) >= 0) {
      i += 2;
      continue;
    }
    return false;
  }
  return true;
}

bool valid_hostname(std::string_view h) {
  if (h.empty()) return false;
  for (char c : h)
    if (!is_alnum(c) && c != '-' && c != '.' && c != '_') return false;
  return true;
}

bool valid_ipv6(std::string_view h) {
  if (h.size() < 2) return false;
  for (char c : h)
    if (util::hex_digit(c) < 0 && c != ':' && c != '.') return false;
  return h.find(':') != std::string_view::npos;
}

// host[:port] (IPv6 in brackets) at the start of s; n = the characters consumed.
bool parse_hostport(std::string_view s, std::string_view& host, bool& ipv6, bool& has_port, uint16_t& port,
                    size_t& n) {
  size_t i = 0;
  if (!s.empty() && s[0] == '[') {
    size_t e = s.find(']');
    if (e == std::string_view::npos) return false;
    host = s.substr(1, e - 1);
    if (!valid_ipv6(host)) return false;
    ipv6 = true;
    i = e + 1;
  } else {
    while (i < s.size() && s[i] != ':' && s[i] != ';' && s[i] != '?' && s[i] != '>' && !is_lws(s[i]) && s[i] != ',') ++i;
    host = s.substr(0, i);
    if (!valid_hostname(host)) return false;
    ipv6 = false;
  }
  has_port = false;
  port = 0;
  if (i < s.size() && s[i] == ':') {
    size_t p0 = ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
    uint64_t v;
    if (!to_uint(s.substr(p0, i - p0), 65535, v)) return false;
    has_port = true;
    port = uint16_t(v);
  }
  n = i;
  return true;
}

}  // namespace

bool parse_uri(std::string_view text, Uri& out) {
  out = Uri{};
  out.text = text;
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view scheme = text.substr(0, colon);
  if (!is_alpha(scheme[0])) return false;
  for (char c : scheme)
    if (!is_alnum(c) && c != '+' && c != '-' && c != '.') return false;
  out.scheme_text = scheme;
  std::string_view rest = text.substr(colon + 1);
  if (rest.empty()) return false;
  if (iequal(scheme, "sip")) out.scheme = Scheme::Sip;
  else if (iequal(scheme, "sips")) out.scheme = Scheme::Sips;
  else if (iequal(scheme, "tel")) out.scheme = Scheme::Tel;
  else {
    // absoluteURI: printable, no space, no <, >, " (the character classes below cover sip/tel)
    for (char c : text)
      if (uint8_t(c) <= 0x20 || uint8_t(c) >= 0x7f || c == '<' || c == '>' || c == '"') return false;
    out.scheme = Scheme::Other;
    out.opaque = rest;
    return true;
  }

  if (out.scheme == Scheme::Tel) {
    size_t semi = rest.find(';');
    out.user = rest.substr(0, semi);
    if (out.user.empty() || !chars_ok(out.user, kTelX)) return false;
    if (semi != std::string_view::npos) {
      out.params = ParamList(rest.substr(semi));
      if (!chars_ok(rest.substr(semi), kTelX)) return false;
    }
    return true;
  }

  // userinfo: up to the first '@' (params and headers cannot hold one).
  size_t at = rest.find('@');
  if (at != std::string_view::npos) {
    std::string_view ui = rest.substr(0, at);
    size_t pc = ui.find(':');
    out.user = ui.substr(0, pc);
    if (pc != std::string_view::npos) out.password = ui.substr(pc + 1);
    if (out.user.empty()) return false;
    if (!chars_ok(out.user, kUserX)) return false;
    if (!chars_ok(out.password, kPassX)) return false;
    rest = rest.substr(at + 1);
  }
  size_t n = 0;
  if (!parse_hostport(rest, out.host, out.ipv6, out.has_port, out.port, n)) return false;
  rest = rest.substr(n);
  size_t q = rest.find('?');
  std::string_view params = rest.substr(0, q);
  if (!params.empty()) {
    if (params[0] != ';') return false;
    if (!chars_ok(params, kParamX)) return false;
    // every parameter needs a name: no ";;", ";=" or a trailing ';'
    if (params.back() == ';' || params.find(";;") != std::string_view::npos || params.find(";=") != std::string_view::npos)
      return false;
    out.params = ParamList(params);
  }
  if (q != std::string_view::npos) {
    out.headers = rest.substr(q + 1);
    if (!chars_ok(out.headers, kHeaderX)) return false;
  }
  return true;
}

namespace {

bool unescaped_equal(std::string_view a, std::string_view b, bool icase) {
  std::string ua, ub;
  if (!unescape(a, ua) || !unescape(b, ub)) return a == b;
  return icase ? iequals(ua, ub) : ua == ub;
}

bool param_in(const ParamList& p, std::string_view name, std::string_view& v) { return p.get(name, v); }

}  // namespace

bool uri_equal(const Uri& a, const Uri& b) {
  if (a.scheme != b.scheme) return false;
  if (a.scheme == Scheme::Other) return iequals(a.scheme_text, b.scheme_text) && a.opaque == b.opaque;
  if (!unescaped_equal(a.user, b.user, false)) return false;
  if (a.scheme == Scheme::Tel) {
    // RFC 3966 5: parameters compare as a set; here: same raw parameter list, case-insensitively.
    return iequals(a.params.raw(), b.params.raw());
  }
  if (!unescaped_equal(a.password, b.password, false)) return false;
  if (!iequals(a.host, b.host)) return false;
  if (a.has_port != b.has_port || a.port != b.port) return false;
  // user, ttl, method, maddr, transport: present on one side only -> different.
  for (std::string_view name : {"user", "ttl", "method", "maddr", "transport"}) {
    std::string_view va, vb;
    bool ha = param_in(a.params, name, va), hb = param_in(b.params, name, vb);
    if (ha != hb) return false;
    if (ha && !unescaped_equal(va, vb, true)) return false;
  }
  // Any other parameter present on both sides must match (a repeated name: its first value, on
  // both sides, so the comparison stays symmetric and reflexive).
  size_t cur = 0;
  std::string_view n, v;
  while (a.params.next(cur, n, v)) {
    std::string_view va, vb;
    a.params.get(n, va);
    if (b.params.get(n, vb) && !unescaped_equal(va, vb, true)) return false;
  }
  // Headers: each side's headers all present on the other with the same value.
  auto headers_in = [](std::string_view x, std::string_view y) {
    while (!x.empty()) {
      size_t amp = x.find('&');
      std::string_view h = x.substr(0, amp);
      x = amp == std::string_view::npos ? std::string_view() : x.substr(amp + 1);
      size_t eq = h.find('=');
      std::string_view hn = h.substr(0, eq), hv = eq == std::string_view::npos ? std::string_view() : h.substr(eq + 1);
      bool found = false;
      std::string_view yy = y;
      while (!yy.empty() && !found) {
        size_t a2 = yy.find('&');
        std::string_view g = yy.substr(0, a2);
        yy = a2 == std::string_view::npos ? std::string_view() : yy.substr(a2 + 1);
        size_t e2 = g.find('=');
        std::string_view gn = g.substr(0, e2), gv = e2 == std::string_view::npos ? std::string_view() : g.substr(e2 + 1);
        found = unescaped_equal(hn, gn, true) && unescaped_equal(hv, gv, false);
      }
      if (!found) return false;
    }
    return true;
  };
  return headers_in(a.headers, b.headers) && headers_in(b.headers, a.headers);
}

}  // namespace junction::sip
