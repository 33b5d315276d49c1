// SIP / SIPS / tel URIs (RFC 3261 19.1, RFC 3966) as views into the text they were parsed from.
// Nothing is unescaped or copied: fields keep their %XX escapes; unescape() makes a copy when a
// caller needs the plain text (comparison, display). Any other scheme ("http:", "urn:") parses as
// Scheme::Other with only scheme and opaque part, so a Request-URI of an unknown scheme can be
// answered 416 instead of 400.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace junction::sip {

// ";name=value;flag" parameters (URI, Via, name-addr, Contact). Lazy: the raw text is kept and
// searched on demand; names compare case-insensitively, values may be quoted strings (returned
// with their quotes, see unquote()).
class ParamList {
 public:
  ParamList() = default;
  explicit ParamList(std::string_view raw) : raw_(raw) {}  // raw starts with ';' or is empty
  std::string_view raw() const { return raw_; }
  bool empty() const { return raw_.empty(); }
  // True when the parameter is present (with or without a value); value is empty for a flag.
  bool get(std::string_view name, std::string_view& value) const;
  bool has(std::string_view name) const {
    std::string_view v;
    return get(name, v);
  }
  std::string_view value(std::string_view name) const {
    std::string_view v;
    get(name, v);
    return v;
  }
  // Walk every parameter in order: cursor starts at 0; false at the end.
  bool next(size_t& cursor, std::string_view& name, std::string_view& value) const;

 private:
  std::string_view raw_;
};

enum class Scheme : uint8_t { Sip, Sips, Tel, Other };

struct Uri {
  Scheme scheme = Scheme::Other;
  std::string_view scheme_text;  // as written ("SIP" and "sip" are the same scheme)
  std::string_view user;         // sip/sips: user part, escaped; tel: the number
  std::string_view password;
  std::string_view host;         // IPv6 without its brackets
  bool ipv6 = false;
  bool has_port = false;
  uint16_t port = 0;
  ParamList params;              // ";transport=tcp;lr"
  std::string_view headers;      // after '?', without it ("subject=x&priority=urgent")
  std::string_view opaque;       // Scheme::Other: everything after "scheme:"
  std::string_view text;         // the whole URI

  std::string_view transport() const { return params.value("transport"); }
  bool lr() const { return params.has("lr"); }
  std::string_view maddr() const { return params.value("maddr"); }
  std::string_view user_param() const { return params.value("user"); }
};

// Parses one URI (no surrounding '<' '>', no LWS). False on anything outside the grammar.
bool parse_uri(std::string_view text, Uri& out);

// %XX-decoded copy; false (out holds what was decoded) on a broken escape.
bool unescape(std::string_view in, std::string& out);

// RFC 3261 19.1.4 equivalence of two SIP/SIPS URIs: scheme, user and password (case-sensitive,
// after unescaping), host (case-insensitive), port, the user/ttl/method/maddr/transport
// parameters when either side has them, other parameters when both have them, and headers.
bool uri_equal(const Uri& a, const Uri& b);

// Case-insensitive ASCII comparison (header names, parameter names, hosts).
bool iequals(std::string_view a, std::string_view b);

// A quoted-string's content with its backslash escapes undone ("\"a\\\"b\"" -> a"b); a value
// that is not quoted comes back as it is.
std::string unquote(std::string_view v);

}  // namespace junction::sip
