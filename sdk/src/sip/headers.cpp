#include <junction/sip/headers.hpp>

#include <array>

#include "chars.hpp"

namespace junction::sip {

using namespace detail;

std::string_view trim_lws(std::string_view v) { return trim(v); }

std::string unfold(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\r' || v[i] == '\n') {
      while (!out.empty() && is_wsp(out.back())) out.pop_back();
      while (i + 1 < v.size() && is_lws(v[i + 1])) ++i;
      out += ' ';
      continue;
    }
    out += v[i];
  }
  return std::string(trim(out));
}

bool next_value(std::string_view& rest, std::string_view& value) {
  size_t i = 0;
  while (i < rest.size() && (is_lws(rest[i]) || rest[i] == ',')) ++i;
  if (i >= rest.size()) {
    rest = {};
    return false;
  }
  size_t v0 = i;
  bool angle = false;
  while (i < rest.size()) {
    char c = rest[i];
    if (c == '"') {
      size_t e = skip_quoted(rest, i);
      if (e == std::string_view::npos) {
        i = rest.size();
        break;
      }
      i = e;
      continue;
    }
    if (c == '<') angle = true;
    else if (c == '>') angle = false;
    else if (c == ',' && !angle) break;
    ++i;
  }
  value = rtrim(rest.substr(v0, i - v0));
  rest = rest.substr(i);
  return true;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_token_char(c)) return false;
  return true;
}

bool parse_uint(std::string_view value, uint64_t max, uint64_t& out) { return to_uint(trim(value), max, out); }

bool valid_call_id(std::string_view v) {
  // callid = word [ "@" word ]; word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" /
  // "'" / "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}" )
  if (v.empty()) return false;
  size_t ats = 0;
  for (char c : v) {
    if (c == '@') {
      ++ats;
      continue;
    }
    if (is_token_char(c)) continue;
    switch (c) {
      case '(': case ')': case '<': case '>': case ':': case '\\': case '"': case '/': case '[': case ']':
      case '?': case '{': case '}':
        continue;
      default:
        return false;
    }
  }
  return ats <= 1 && v.front() != '@' && v.back() != '@';
}

namespace {

// Reads a token at v[i] (after LWS); i moves past it.
std::string_view read_token(std::string_view v, size_t& i) {
  while (i < v.size() && is_lws(v[i])) ++i;
  size_t t0 = i;
  while (i < v.size() && is_token_char(v[i])) ++i;
  return v.substr(t0, i - t0);
}

bool expect(std::string_view v, size_t& i, char c) {
  while (i < v.size() && is_lws(v[i])) ++i;
  if (i >= v.size() || v[i] != c) return false;
  ++i;
  return true;
}

// Parameters from v[i] on: LWS then nothing, or ';' params. Each must have a name.
bool read_params(std::string_view v, size_t i, ParamList& out) {
  while (i < v.size() && is_lws(v[i])) ++i;
  if (i == v.size()) {
    out = ParamList();
    return true;
  }
  if (v[i] != ';') return false;
  std::string_view raw = v.substr(i);
  // Structure check: names are tokens, values tokens / hosts / quoted strings.
  size_t j = 0;
  while (j < raw.size()) {
    while (j < raw.size() && is_lws(raw[j])) ++j;
    if (j >= raw.size()) break;
    if (raw[j] != ';') return false;
    ++j;
    std::string_view name = read_token(raw, j);
    if (name.empty()) return false;
    while (j < raw.size() && is_lws(raw[j])) ++j;
    if (j < raw.size() && raw[j] == '=') {
      ++j;
      while (j < raw.size() && is_lws(raw[j])) ++j;
      if (j < raw.size() && raw[j] == '"') {
        size_t e = skip_quoted(raw, j);
        if (e == std::string_view::npos) return false;
        j = e;
      } else {
        size_t v0 = j;
        // gen-value = token / host / quoted-string (IPv6 references keep their brackets and colons)
        while (j < raw.size() && (is_token_char(raw[j]) || raw[j] == ':' || raw[j] == '[' || raw[j] == ']')) ++j;
        if (j == v0) return false;
      }
    }
  }
  out = ParamList(raw);
  return true;
}

}  // namespace

bool parse_via(std::string_view v, Via& out) {
  out = Via{};
  size_t i = 0;
  out.protocol = read_token(v, i);
  if (out.protocol.empty() || !expect(v, i, '/')) return false;
  out.version = read_token(v, i);
  if (out.version.empty() || !expect(v, i, '/')) return false;
  out.transport = read_token(v, i);
  if (out.transport.empty()) return false;
  size_t before = i;
  while (i < v.size() && is_lws(v[i])) ++i;
  if (i == before || i >= v.size()) return false;  // LWS then sent-by
  // host
  const size_t sent_by_start = i;
  if (v[i] == '[') {
    size_t e = v.find(']', i);
    if (e == std::string_view::npos) return false;
    out.host = v.substr(i + 1, e - i - 1);
    out.ipv6 = true;
    if (out.host.size() < 2 || out.host.find(':') == std::string_view::npos) return false;
    for (char c : out.host)
      if (!is_digit(c) && !(lower(c) >= 'a' && lower(c) <= 'f') && c != ':' && c != '.') return false;
    i = e + 1;
  } else {
    size_t h0 = i;
    while (i < v.size() && (is_alnum(v[i]) || v[i] == '-' || v[i] == '.' || v[i] == '_')) ++i;
    out.host = v.substr(h0, i - h0);
    if (out.host.empty()) return false;
  }
  size_t save = i;
  if (expect(v, i, ':')) {
    while (i < v.size() && is_lws(v[i])) ++i;
    size_t p0 = i;
    while (i < v.size() && is_digit(v[i])) ++i;
    uint64_t port;
    if (!to_uint(v.substr(p0, i - p0), 65535, port)) return false;
    out.has_port = true;
    out.port = uint16_t(port);
  } else {
    i = save;
  }
  out.sent_by = v.substr(sent_by_start, i - sent_by_start);
  // A trailing comment "(...)" is allowed by the grammar of the whole header; not after params.
  if (!read_params(v, i, out.params)) return false;
  size_t cur = 0;
  std::string_view n, val;
  while (out.params.next(cur, n, val)) {
    if (iequal(n, "branch")) {
      if (val.empty()) return false;
      out.branch = val;
    } else if (iequal(n, "received")) {
      if (val.empty()) return false;
      out.received = val;
    } else if (iequal(n, "maddr")) {
      out.maddr = val;
    } else if (iequal(n, "rport")) {
      out.has_rport = true;
      if (!val.empty()) {
        uint64_t p;
        if (!to_uint(val, 65535, p)) return false;
        out.rport_value = true;
        out.rport = uint16_t(p);
      }
    } else if (iequal(n, "ttl")) {
      uint64_t t;
      if (!to_uint(val, 255, t)) return false;
      out.ttl = int(t);
    }
  }
  return true;
}

bool parse_name_addr(std::string_view v, NameAddr& out) {
  out = NameAddr{};
  v = trim(v);
  if (v.empty()) return false;
  size_t i = 0;
  if (v[0] == '"') {
    size_t e = skip_quoted(v, 0);
    if (e == std::string_view::npos) return false;
    out.display = v.substr(0, e);
    i = e;
    while (i < v.size() && is_lws(v[i])) ++i;
    if (i >= v.size() || v[i] != '<') return false;
  } else {
    size_t lt = v.find('<');
    if (lt != std::string_view::npos) {
      out.display = trim(v.substr(0, lt));
      // unquoted display-name = *(token LWS)
      for (char c : out.display)
        if (!is_token_char(c) && !is_lws(c)) return false;
      i = lt;
    }
  }
  if (i < v.size() && v[i] == '<') {
    size_t gt = v.find('>', i);
    if (gt == std::string_view::npos) return false;
    out.uri_text = v.substr(i + 1, gt - i - 1);
    out.angle = true;
    i = gt + 1;
  } else {
    // addr-spec: the URI ends at the first ';' or LWS; what follows are header parameters.
    size_t e = 0;
    while (e < v.size() && v[e] != ';' && !is_lws(v[e])) ++e;
    out.uri_text = v.substr(0, e);
    for (char c : out.uri_text)
      // RFC 3261 20.10: a URI with ',', '?' or ';' must be in <> (RFC 4475 regbadct).
      if (c == '<' || c == '>' || c == '"' || c == ',' || c == '?') return false;
    i = e;
  }
  if (out.uri_text.empty()) return false;
  return read_params(v, i, out.params);
}

bool parse_contact(std::string_view v, Contact& out) {
  out = Contact{};
  v = trim(v);
  if (v == "*") {
    out.star = true;
    return true;
  }
  if (!parse_name_addr(v, out.addr)) return false;
  std::string_view e;
  if (out.addr.params.get("expires", e)) {
    uint64_t n;
    if (!to_uint(e, 0xffffffffu, n)) return false;
    out.expires = int64_t(n);
  }
  std::string_view q;
  if (out.addr.params.get("q", q)) {
    // qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
    if (q.empty() || (q[0] != '0' && q[0] != '1') || q.size() > 5) return false;
    int val = (q[0] - '0') * 1000;
    if (q.size() > 1) {
      if (q[1] != '.') return false;
      int scale = 100;
      for (size_t k = 2; k < q.size(); ++k, scale /= 10) {
        if (!is_digit(q[k])) return false;
        val += (q[k] - '0') * scale;
      }
    }
    if (val > 1000) return false;
    out.q1000 = val;
  }
  return true;
}

bool parse_cseq(std::string_view v, CSeq& out) {
  out = CSeq{};
  v = trim(v);
  size_t i = 0;
  while (i < v.size() && is_digit(v[i])) ++i;
  uint64_t n;
  if (!to_uint(v.substr(0, i), 0x7fffffffu, n)) return false;
  size_t before = i;
  while (i < v.size() && is_lws(v[i])) ++i;
  if (i == before) return false;
  std::string_view m = v.substr(i);
  if (!is_token(m)) return false;
  out.seq = uint32_t(n);
  out.method = m;
  return true;
}

namespace {

// 1: a parameter, 0: end, -1: malformed.
int next_auth(std::string_view r, size_t& i, std::string_view& name, std::string_view& value) {
  while (i < r.size() && (is_lws(r[i]) || r[i] == ',')) ++i;
  if (i >= r.size()) return 0;
  name = read_token(r, i);
  if (name.empty()) return -1;
  if (!expect(r, i, '=')) return -1;
  while (i < r.size() && is_lws(r[i])) ++i;
  if (i < r.size() && r[i] == '"') {
    size_t e = skip_quoted(r, i);
    if (e == std::string_view::npos) return -1;
    value = r.substr(i + 1, e - i - 2);
    i = e;
  } else {
    size_t v0 = i;
    while (i < r.size() && r[i] != ',' && !is_lws(r[i])) {
      // an unquoted value is a token-like word: no quotes, no control characters
      if (r[i] == '"' || uint8_t(r[i]) < 0x20 || r[i] == 0x7f) return -1;
      ++i;
    }
    value = r.substr(v0, i - v0);
    if (value.empty()) return -1;
  }
  while (i < r.size() && is_lws(r[i])) ++i;
  if (i < r.size() && r[i] != ',') return -1;
  return 1;
}

}  // namespace

bool AuthHeader::next(size_t& cursor, std::string_view& name, std::string_view& value) const {
  return next_auth(params, cursor, name, value) == 1;
}

bool AuthHeader::get(std::string_view want, std::string_view& value) const {
  size_t cur = 0;
  std::string_view n, v;
  while (next_auth(params, cur, n, v) == 1) {
    if (iequal(n, want)) {
      value = v;
      return true;
    }
  }
  value = {};
  return false;
}

bool parse_auth(std::string_view v, AuthHeader& out) {
  out = AuthHeader{};
  v = trim(v);
  size_t i = 0;
  out.scheme = read_token(v, i);
  if (out.scheme.empty()) return false;
  if (i < v.size() && !is_lws(v[i])) return false;
  out.params = trim(v.substr(i));
  size_t cur = 0;
  std::string_view n, val;
  int r;
  // a duplicate parameter is ambiguous: refuse it (names compared with those before, one pass)
  std::array<std::string_view, 32> names;
  size_t count = 0;
  while ((r = next_auth(out.params, cur, n, val)) == 1) {
    if (count == names.size()) return false;
    for (size_t k = 0; k < count; ++k)
      if (iequals(names[k], n)) return false;
    names[count++] = n;
  }
  return r == 0;
}

namespace {
bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!is_digit(s[i])) return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}
// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}
bool valid_ymdhms(int y, int mo, int d, int h, int mi, int s) {
  return y >= 1970 && y <= 9999 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60;
}
}  // namespace

bool parse_date(std::string_view v, int64_t& unix_s, int& millis) {
  v = trim(v);
  millis = 0;
  int y, mo, d, h, mi, s;
  // GB/T 28181: 2010-11-11T19:46:17[.123] (local time of the platform, no zone)
  if (v.size() >= 19 && v[4] == '-' && v[7] == '-' && v[10] == 'T' && v[13] == ':' && v[16] == ':') {
    if (!digits(v, 0, 4, y) || !digits(v, 5, 2, mo) || !digits(v, 8, 2, d) || !digits(v, 11, 2, h) ||
        !digits(v, 14, 2, mi) || !digits(v, 17, 2, s))
      return false;
    if (v.size() > 19) {
      if (v[19] != '.' || v.size() < 21 || v.size() > 23) return false;
      int frac = 0;
      if (!digits(v, 20, v.size() - 20, frac)) return false;
      for (size_t k = v.size() - 20; k < 3; ++k) frac *= 10;
      millis = frac;
    }
  } else {
    // RFC 3261 rfc1123-date: "Sat, 13 Nov 2010 23:29:00 GMT" (GMT only; RFC 4475 baddate)
    if (v.size() != 29 || v[3] != ',' || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' || v[19] != ':' ||
        v[22] != ':' || v.substr(25) != " GMT")
      return false;
    static constexpr std::string_view kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    bool day_ok = false;
    for (auto dn : kDays) day_ok = day_ok || v.substr(0, 3) == dn;
    static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    mo = 0;
    for (int k = 0; k < 12; ++k)
      if (v.substr(8, 3) == kMonths[k]) mo = k + 1;
    if (!day_ok || !mo || !digits(v, 5, 2, d) || !digits(v, 12, 4, y) || !digits(v, 17, 2, h) ||
        !digits(v, 20, 2, mi) || !digits(v, 23, 2, s))
      return false;
  }
  if (!valid_ymdhms(y, mo, d, h, mi, s)) return false;
  unix_s = days_from_civil(y, unsigned(mo), unsigned(d)) * 86400 + h * 3600 + mi * 60 + s;
  return true;
}

}  // namespace junction::sip
