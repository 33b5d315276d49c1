// Building SIP messages into a caller-owned std::string (reused across messages, it stops
// allocating once its capacity is reached). The writer adds Content-Length itself in finish().
//
//   std::string buf;
//   sip::Writer w(buf);
//   w.request_line("REGISTER", "sip:example.com")
//    .via("UDP", "127.0.0.1", 5060, branch)
//    .header("From", "<sip:alice@example.com>;tag=" + tag) ...;
//   w.finish();  // or finish(body, "application/sdp")
//
// A response to a request: start_response() writes the status line and copies every Via, From,
// To (adding the To tag when the request had none and the status is above 100), Call-ID and CSeq
// (RFC 3261 8.2.6.2); the caller adds its own headers and finishes.
#pragma once

#include <junction/sip/message.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace junction::sip {

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) { out_.clear(); }

  Writer& request_line(std::string_view method, std::string_view uri);
  // reason empty: the RFC 3261 phrase for the code ("Ringing"), or "Unknown".
  Writer& status_line(int code, std::string_view reason = {});
  // "Name: value" as given (the caller owns its syntax; CR/LF in it are replaced by spaces so a
  // value can never inject a header).
  Writer& header(std::string_view name, std::string_view value);
  Writer& header(std::string_view name, int64_t value);
  // "Via: SIP/2.0/<transport> host[:port];branch=<branch>[;rport]" (IPv6 hosts get brackets).
  Writer& via(std::string_view transport, std::string_view host, uint16_t port, std::string_view branch,
              bool rport = true);
  // "Name: <uri>[;tag=t]" with an optional display name (quoted and escaped here).
  Writer& name_addr(std::string_view name, std::string_view display, std::string_view uri, std::string_view tag = {});
  // Content-Type (when given and the body is not empty), Content-Length, the blank line, body.
  std::string& finish(std::string_view body = {}, std::string_view content_type = {});

  std::string& out() { return out_; }

 private:
  std::string& out_;
};

// The RFC 3261 reason phrase of a status code, or "Unknown".
std::string_view reason_phrase(int code);

// Writes the status line and the copied headers of a response to request (see above). to_tag is
// added to To when To has none and code > 100; it may be empty (100 Trying).
void start_response(Writer& w, const Message& request, int code, std::string_view reason = {},
                    std::string_view to_tag = {});

// The same, as a server transport answers (RFC 3261 18.2.1 / RFC 3581 4): the top Via value gets
// received=<source_ip> and, when the client asked with a bare rport, rport=<source_port>; any
// received / rport it carried are replaced. So the response finds its way back through a NAT.
void start_response(Writer& w, const Message& request, int code, std::string_view reason, std::string_view to_tag,
                    std::string_view source_ip, uint16_t source_port);

// A source of random bytes (tests inject a fixed one). Fills out with n bytes; false when it
// cannot (the caller refuses rather than use a weak value).
using RandomSource = bool (*)(void* ctx, size_t n, std::string& out);
// OpenSSL's CSPRNG (junction/util/random.hpp).
bool system_random(void* ctx, size_t n, std::string& out);

// "z9hG4bK" + 20 hex digits (RFC 3261 8.1.1.7 magic cookie, 80 random bits).
bool new_branch(std::string& out, RandomSource rnd = system_random, void* ctx = nullptr);
// A tag (16 hex digits) or a Call-ID (32 hex digits, "@host" appended when host is not empty).
bool new_tag(std::string& out, RandomSource rnd = system_random, void* ctx = nullptr);
bool new_call_id(std::string& out, std::string_view host = {}, RandomSource rnd = system_random, void* ctx = nullptr);

}  // namespace junction::sip
