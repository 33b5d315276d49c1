// HttpResponseParser: an incremental HTTP/1.x response parser for the outbound client (status
// line, headers, Content-Length, chunked transfer coding, close-delimited bodies, 1xx interim
// responses skipped), whole or streamed (HttpResponseLimits::stream). Bounded: header bytes, header count and body size; anything malformed is
// an error with a reason, never a crash (fuzzed: tests/fuzz/fuzz_http_response.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace junction {

struct HttpResponseLimits {
  size_t max_header_bytes = 64 * 1024;  // status line + headers (and chunked trailers)
  size_t max_headers = 100;
  size_t max_body = 1 << 20;
  // Streaming (2.3): the caller takes the body bytes after each feed() (body(), clear_body()), so
  // body() holds only what the last feed decoded; max_body is not checked (a stream never ends).
  bool stream = false;
};

class HttpResponseParser {
 public:
  enum class Result { kNeedMore, kDone, kError };

  // no_body: the request was HEAD (the response has headers only).
  explicit HttpResponseParser(HttpResponseLimits limits = {}, bool no_body = false)
      : limits_(limits), no_body_(no_body) {}

  // Consumes bytes; once kDone or kError, later calls return the same and ignore their input.
  Result feed(std::string_view data);
  // The peer closed the connection: ends a close-delimited body; an error anywhere else.
  Result finish();

  Result result() const { return result_; }
  int status() const { return status_; }
  const std::string& reason() const { return reason_; }
  // In arrival order, names as sent; a 1xx response's headers are dropped.
  const std::vector<std::pair<std::string, std::string>>& headers() const { return headers_; }
  const std::string& body() const { return body_; }
  std::string take_body() { return std::move(body_); }
  void clear_body() { body_.clear(); }  // keeps the capacity: no allocation per read when streaming
  const std::string& error() const { return error_; }
  bool too_large() const { return too_large_; }  // the error is a limit (headers or body)
  bool head_complete() const { return phase_ > Phase::kHeaders; }

 private:
  enum class Phase { kStatus, kHeaders, kBody, kChunkSize, kChunkData, kChunkDataEnd, kTrailers, kDone };
  enum class Framing { kNone, kLength, kChunked, kClose };

  Result fail(std::string why, bool limit = false);
  Result line(std::string_view l);  // a complete head/chunk/trailer line without its CR LF
  Result end_of_head();
  Result body_bytes(std::string_view data, size_t& used);

  HttpResponseLimits limits_;
  bool no_body_;
  Result result_ = Result::kNeedMore;
  Phase phase_ = Phase::kStatus;
  Framing framing_ = Framing::kNone;
  std::string line_;        // a partial line
  size_t head_bytes_ = 0;   // head + trailer bytes seen
  uint64_t remaining_ = 0;  // Content-Length or chunk bytes still to come
  bool any_input_ = false;
  int status_ = 0;
  std::string reason_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string body_;
  std::string error_;
  bool too_large_ = false;
};

}  // namespace junction
