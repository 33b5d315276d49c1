// The outbound HTTP client's response parser: byte 0 picks the limits and whether the request
// was HEAD, byte 1 the chunk size the rest is fed in (as TCP would split it); then finish() (the
// peer closed). Invariants: the body never exceeds max_body, a complete response has a final
// status (200..599, or a 1xx never surfaces), a finished parse never changes its result.
// Then the same bytes again in streaming mode (ABI 2.3: the body taken after every feed, no body
// limit): it must agree with the whole parse -- same result unless the whole one hit the body
// limit, and on success the same status, headers and, concatenated, the same body.
#include "net/http_response_parser.hpp"

#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  junction::HttpResponseLimits limits;
  limits.max_body = 16u << (data[0] & 7);         // 16 .. 2048 bytes
  limits.max_header_bytes = 64u << ((data[0] >> 3) & 7);  // 64 .. 8192 bytes
  limits.max_headers = 1 + ((data[0] >> 3) & 7) * 4;
  bool head = data[0] & 0x80;
  size_t chunk = 1 + data[1];
  junction::HttpResponseParser p(limits, head);
  using R = junction::HttpResponseParser::Result;
  R last = R::kNeedMore;
  for (size_t off = 2; off < size; off += chunk) {
    size_t n = std::min(chunk, size - off);
    R r = p.feed(std::string_view(reinterpret_cast<const char*>(data + off), n));
    if (last != R::kNeedMore && r != last) std::abort();
    last = r;
    if (p.body().size() > limits.max_body) std::abort();
  }
  R r = p.finish();
  if (last != R::kNeedMore && r != last) std::abort();
  if (r == R::kDone) {
    if (p.status() < 200 || p.status() > 599) std::abort();
    if (head && !p.body().empty()) std::abort();
    if (p.headers().size() > limits.max_headers) std::abort();
  }
  if (r == R::kError && p.error().empty()) std::abort();
  if (p.body().size() > limits.max_body) std::abort();

  junction::HttpResponseLimits slimits = limits;
  slimits.stream = true;
  junction::HttpResponseParser s(slimits, head);
  std::string streamed;
  for (size_t off = 2; off < size; off += chunk) {
    size_t n = std::min(chunk, size - off);
    s.feed(std::string_view(reinterpret_cast<const char*>(data + off), n));
    if (s.result() != R::kError) streamed += s.body();
    s.clear_body();
  }
  R sr = s.finish();
  if (sr == R::kError && s.error().empty()) std::abort();
  if (!(r == R::kError && p.too_large())) {
    if (sr != r) std::abort();
    if (r == R::kDone && (s.status() != p.status() || s.headers() != p.headers() || streamed != p.body())) std::abort();
  }
  return 0;
}
