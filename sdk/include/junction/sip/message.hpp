// A parsed SIP message (RFC 3261 7): views into the received bytes, nothing copied, no heap
// allocation. The header index has a fixed capacity (kMaxHeaders); a message with more headers,
// a longer header line or more bytes than the limits is refused with a clear error, so a hostile
// peer costs bounded work.
//
// parse() eagerly reads what every SIP element needs to route a message (top Via, From/To tags,
// Call-ID, CSeq, Content-Length, Max-Forwards) and refuses a message where those are missing or
// malformed; the other headers are indexed (name, id, value) and parsed on demand with the typed
// parsers of headers.hpp.
//
// Tolerances (documented in tests/unit/test_sip_rfc4475.cpp): leading CRLFs before the start
// line are skipped (RFC 3261 7.5); bare LF line ends are accepted; a missing Max-Forwards is
// accepted (max_forwards() = -1; the caller may insert 70 when it forwards); a Request-URI or
// From/To URI of an unknown scheme parses (the caller answers 416 if it cares). Refused beyond
// the grammar: single spaces only in the request line, no headers in a SIP Request-URI, one
// From / To / Call-ID / CSeq / Max-Forwards each, a tag with a value, CSeq method = method,
// CSeq < 2^31, Max-Forwards <= 255, every Content-Length the same.
//
// The body: on a stream transport Content-Length is mandatory and parse() says Incomplete until
// the whole body has arrived. On a datagram (RFC 3261 18.3) a missing Content-Length means "the
// rest of the packet", bytes beyond Content-Length are dropped, and a Content-Length beyond the
// packet is an error (BodyTruncated: the caller answers a request with 400, drops a response).
#pragma once

#include <junction/sip/headers.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace junction::sip {

// Headers parse() knows by name (compact forms map here too). Other: any other header.
enum class HeaderId : uint8_t {
  Other,
  Via,
  From,
  To,
  CallId,
  CSeq,
  Contact,
  MaxForwards,
  ContentLength,
  ContentType,
  ContentEncoding,
  Route,
  RecordRoute,
  Expires,
  MinExpires,
  WWWAuthenticate,
  Authorization,
  ProxyAuthenticate,
  ProxyAuthorization,
  Date,
  Subject,
  Allow,
  Supported,
  Require,
  ProxyRequire,
  Unsupported,
  Event,
  SubscriptionState,
  UserAgent,
  Server,
  Accept,
  ReferTo,
  AllowEvents,     // compact u (RFC 6665)
  SessionExpires,  // compact x (RFC 4028)
  ReferredBy,      // compact b (RFC 3892)
  kCount
};
// HeaderId of a header name (full or compact form, any case).
HeaderId header_id(std::string_view name);
// Canonical name of a known header ("Call-ID"); empty for Other.
std::string_view header_name(HeaderId id);

struct Header {
  HeaderId id = HeaderId::Other;
  std::string_view name;   // as written (may be a compact form)
  std::string_view value;  // trimmed; folding kept inside (see headers.hpp)
};

enum class ParseStatus : uint8_t {
  Ok,
  Incomplete,        // stream only: more bytes needed (nothing consumed)
  TooLarge,          // message above Limits::max_message
  TooManyHeaders,    // more than Limits::max_headers (<= kMaxHeaders)
  HeaderTooLong,     // one header line (with its folded continuations) above max_header_line
  BadStartLine,      // request or status line outside the grammar
  BadVersion,        // not SIP/2.0 (a server answers 505)
  BadHeader,         // a header line without a name or ':' or with a bad name
  BadHeaderValue,    // a header parse() reads (Via, CSeq, Call-ID, From, To, ...) is malformed
  MissingHeader,     // Via, From, To, Call-ID or CSeq missing
  BadContentLength,  // not a number, above the limit, or two different values
  BodyTruncated,     // datagram: fewer body bytes than Content-Length
  CSeqMismatch,      // request whose CSeq method differs from its method
  Unterminated,      // datagram: no empty line after the headers
};
// A short English description ("too many headers").
const char* to_string(ParseStatus s);

struct Limits {
  size_t max_message = 65535;     // bytes, start line to end of body
  size_t max_headers = 128;       // at most kMaxHeaders
  size_t max_header_line = 8192;  // one header, folded continuations included
};

enum class Framing : uint8_t { Datagram, Stream };

class Message {
 public:
  static constexpr size_t kMaxHeaders = 128;

  bool is_request() const { return request_; }
  bool is_response() const { return !request_; }
  // Request line.
  std::string_view method() const { return method_; }
  std::string_view request_uri() const { return request_uri_; }
  // Status line.
  int status() const { return status_; }
  std::string_view reason() const { return reason_; }

  std::span<const Header> headers() const { return {headers_.data(), count_}; }
  // First header of that id / name (case-insensitive, compact forms understood), or null.
  const Header* find(HeaderId id) const;
  const Header* find(std::string_view name) const;
  // Next header of the same id after h (h from this message), or null.
  const Header* next(const Header* h) const;
  size_t count(HeaderId id) const;

  // What parse() read eagerly.
  const Via& top_via() const { return via_; }
  std::string_view call_id() const { return call_id_; }
  const CSeq& cseq() const { return cseq_; }
  const NameAddr& from() const { return from_; }
  const NameAddr& to() const { return to_; }
  // The URIs parse() already checked, parsed (a caller need not run parse_uri() on them again):
  // the Request-URI (a request only; empty Uri for a response), From's and To's.
  const Uri& parsed_request_uri() const { return ruri_; }
  const Uri& from_uri() const { return from_uri_; }
  const Uri& to_uri() const { return to_uri_; }
  std::string_view from_tag() const { return from_tag_; }
  std::string_view to_tag() const { return to_tag_; }
  int max_forwards() const { return max_forwards_; }      // -1: absent
  int64_t content_length() const { return content_length_; }  // -1: absent (datagram only)
  std::string_view content_type() const;                  // empty when absent
  std::string_view body() const { return body_; }

  // The whole message as received (start line to end of body) and its size: on a stream, the
  // caller drops size() bytes from its buffer.
  std::string_view bytes() const { return bytes_; }
  size_t size() const { return bytes_.size() + skipped_; }

  // After a failed parse(): the header the error is about, when there is one.
  std::string_view error_header() const { return error_header_; }

  // request_fingerprint() (stack.hpp) of this message, computed on the first call after parse()
  // and kept: the stateless path asks twice per request (the user's retransmission check, then
  // the stack's To tag).
  uint64_t fingerprint() const;

 private:
  friend ParseStatus parse(std::string_view, Message&, Framing, const Limits&);
  void reset();

  bool request_ = false;
  std::string_view method_, request_uri_, reason_;
  int status_ = 0;
  std::array<Header, kMaxHeaders> headers_{};
  size_t count_ = 0;
  Via via_;
  std::string_view call_id_;
  CSeq cseq_;
  NameAddr from_, to_;
  Uri ruri_, from_uri_, to_uri_;
  std::string_view from_tag_, to_tag_;
  int max_forwards_ = -1;
  int64_t content_length_ = -1;
  std::string_view body_;
  std::string_view bytes_;
  size_t skipped_ = 0;  // leading CRLFs
  std::string_view error_header_;
  mutable uint64_t fingerprint_ = 0;
  mutable bool has_fingerprint_ = false;  // reset by parse()
};

// Every comma-separated value of every header with that id, in message order (all Vias, the
// whole route set, every Contact): f(std::string_view value) returns false to stop early.
// Returns how many values were visited.
template <class F>
size_t for_each_value(const Message& m, HeaderId id, F&& f) {
  size_t n = 0;
  for (const Header* h = m.find(id); h; h = m.next(h)) {
    std::string_view rest = h->value, v;
    while (next_value(rest, v)) {
      ++n;
      if (!f(v)) return n;
    }
  }
  return n;
}

// Parses the message at the start of bytes into out. Datagram: bytes is one packet. Stream: bytes
// is what the connection has delivered so far; Incomplete until a whole message is there (then
// out.size() is how much to consume; the rest belongs to the next message). On any other status
// out is not usable beyond error_header().
ParseStatus parse(std::string_view bytes, Message& out, Framing framing = Framing::Datagram,
                  const Limits& limits = Limits{});

// Stream framing alone (for a transport's framer): Ok with len = the size of the first whole
// message, Incomplete, or the error that makes the stream unusable (the caller closes it).
// Leading CRLFs (keep-alives, RFC 5626 "\r\n\r\n") count as a message of their own with
// keepalive = true.
ParseStatus frame_stream(std::string_view bytes, size_t& len, bool& keepalive, const Limits& limits = Limits{});

}  // namespace junction::sip
