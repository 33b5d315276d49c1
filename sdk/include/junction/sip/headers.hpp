// Typed parsers for single header values, as views into the message (no allocation). A header
// value from Message keeps any folding (CRLF + WSP) inside it; every parser here treats CR and LF
// like spaces, so folded values parse the same as unfolded ones.
//
// Several values in one header ("Via: a, b", "Contact: <x>, <y>") are split with next_value(),
// which ignores commas inside quoted strings and <...>.
#pragma once

#include <junction/sip/uri.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace junction::sip {

// Next comma-separated value of a header (trimmed). rest shrinks; false when nothing is left.
bool next_value(std::string_view& rest, std::string_view& value);

// Value with surrounding LWS (SP, HT, CR, LF) removed.
std::string_view trim_lws(std::string_view v);

// A copy with each folded line break (and the spaces around it) replaced by one space.
std::string unfold(std::string_view v);

// Via: SIP/2.0/UDP host[:port];branch=...;received=...;rport[=n];maddr=...;ttl=n
struct Via {
  std::string_view protocol;   // "SIP"
  std::string_view version;    // "2.0"
  std::string_view transport;  // "UDP", "TCP", "TLS", "SCTP", "WS"... as written
  std::string_view host;       // IPv6 without brackets
  bool ipv6 = false;
  bool has_port = false;
  uint16_t port = 0;
  ParamList params;
  std::string_view sent_by;    // host[:port] as written (brackets and any LWS around ':' kept)
  std::string_view branch;     // empty when absent
  std::string_view received;
  std::string_view maddr;
  bool has_rport = false;      // RFC 3581: present (the sender asks for it)...
  bool rport_value = false;    // ...and carries a number (set by a server that handled it)
  uint16_t rport = 0;
  int ttl = -1;                // -1: absent
  // RFC 3261 branch cookie: this branch identifies the transaction on its own.
  bool rfc3261_branch() const { return branch.size() > 7 && branch.substr(0, 7) == "z9hG4bK"; }
};
bool parse_via(std::string_view one_value, Via& out);

// name-addr ("Bob" <sip:bob@x>;tag=1) or addr-spec (sip:bob@x;tag=1): From, To, Contact, Route,
// Record-Route, Reply-To... In the addr-spec form the parameters after the URI belong to the
// header (RFC 3261 20.10), not to the URI.
struct NameAddr {
  std::string_view display;  // as written, quotes included when quoted (see unquote())
  std::string_view uri_text; // without '<' '>'
  bool angle = false;        // written in name-addr form
  ParamList params;
  std::string_view tag() const { return params.value("tag"); }
};
bool parse_name_addr(std::string_view one_value, NameAddr& out);

// Contact: "*" or name-addr with expires / q.
struct Contact {
  bool star = false;
  NameAddr addr;
  int64_t expires = -1;  // -1: absent
  int q1000 = -1;        // q in thousandths (q=0.5 -> 500); -1: absent
};
bool parse_contact(std::string_view one_value, Contact& out);

// CSeq: 1*DIGIT LWS Method; the number is < 2^31 (RFC 3261 8.1.1.5).
struct CSeq {
  uint32_t seq = 0;
  std::string_view method;
};
bool parse_cseq(std::string_view value, CSeq& out);

// A decimal header value (Content-Length, Max-Forwards, Expires, Min-Expires); false on anything
// but digits or a value above max.
bool parse_uint(std::string_view value, uint64_t max, uint64_t& out);

// Call-ID: word ["@" word], no spaces.
bool valid_call_id(std::string_view value);

// Method / header name token (RFC 3261 25.1 token).
bool is_token(std::string_view s);

// WWW-Authenticate / Proxy-Authenticate / Authorization / Proxy-Authorization:
// scheme followed by comma-separated auth-params (name=token or name="quoted").
struct AuthHeader {
  std::string_view scheme;  // "Digest"
  std::string_view params;  // the raw auth-param list
  // Value of one parameter (quotes removed; escapes kept); false when absent.
  bool get(std::string_view name, std::string_view& value) const;
  std::string_view value(std::string_view name) const {
    std::string_view v;
    get(name, v);
    return v;
  }
  // Walk the parameters in order; cursor starts at 0.
  bool next(size_t& cursor, std::string_view& name, std::string_view& value) const;
};
// False on a malformed list (unterminated quote, parameter without '=', duplicate parameter).
bool parse_auth(std::string_view value, AuthHeader& out);

// Date: the RFC 3261 form "Sat, 13 Nov 2010 23:29:00 GMT" (GMT only), or the GB/T 28181 form
// "2010-11-11T19:46:17.123" (no zone: the caller decides which clock it is). unix_s: seconds since
// 1970 as if the time were UTC; millis: the fraction (0 when absent).
bool parse_date(std::string_view value, int64_t& unix_s, int& millis);

}  // namespace junction::sip
