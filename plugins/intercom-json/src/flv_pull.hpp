// Pulling a screen's HTTP-FLV stream from the box's stream server (SRS, document 000 section 5:
// http://ADDR:954/stream/ID). The HTTP is the core's: a streamed http_request (ABI 2.3) hands over
// the status and headers, then the body as it arrives with the transfer coding removed. What is
// left here: the pull URL, and the status and body into sdk/rtmp's FLV reader, whose frames go to
// the caller's sink. Pure.
#pragma once

#include <junction/rtmp/flv_reader.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace intercom {

// "http://127.0.0.1:954/stream/56780" -> host_port "127.0.0.1:954", path "/stream/56780". Only
// http:// with an IPv4 literal host (the box's own stream server; no name to resolve); port 80 by
// default.
bool parse_pull_url(std::string_view url, std::string& host_port, std::string& path, std::string& why);

// The stream server's URL of stream `id`: `pattern` with "{id}" replaced (or id appended).
std::string pull_url_for(std::string_view pattern, std::string_view id);

class FlvPull {
 public:
  explicit FlvPull(junction::rtmp::flv::ReaderConfig cfg = {}) : reader_(cfg) {}

  // The response's status: false (the pull is over, why in error()) unless 200.
  bool head(int status);
  // Body bytes as they arrive. False once the stream is over for good: a bad FLV, or no head yet
  // (why in error()). Frames go to sink; the reader's non-fatal notes (an unsupported codec) too,
  // through sink.fail.
  bool feed(const uint8_t* p, size_t n, junction::media::FrameSink sink);

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  bool head_done() const { return head_ok_; }
  const junction::rtmp::flv::Reader& reader() const { return reader_; }

 private:
  bool fail(std::string why);

  junction::rtmp::flv::Reader reader_;
  bool head_ok_ = false;
  std::string error_;
};

}  // namespace intercom
