// Pulling a screen's HTTP-FLV stream from the box's stream server (SRS, document 000 section 5:
// http://ADDR:954/stream/ID): the GET request, the response's status line and headers, its body
// (plain until close, or chunked) into sdk/rtmp's FLV reader, whose frames go to the caller's
// sink. Pure: the bytes come from and go to the plugin's connection through the core.
#pragma once

#include <junction/rtmp/flv_reader.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace intercom {

// "http://127.0.0.1:954/stream/56780" -> host_port "127.0.0.1:954", path "/stream/56780". Only
// http:// with an IPv4 literal host (plugins resolve nothing here); port 80 by default.
bool parse_pull_url(std::string_view url, std::string& host_port, std::string& path, std::string& why);

// The stream server's URL of stream `id`: `pattern` with "{id}" replaced (or id appended).
std::string pull_url_for(std::string_view pattern, std::string_view id);

class HttpFlvPull {
 public:
  explicit HttpFlvPull(junction::rtmp::flv::ReaderConfig cfg = {}) : reader_(cfg) {}

  static std::string request(std::string_view host_port, std::string_view path);

  // Response bytes as they arrive. False once the stream is over for good: a status other than
  // 200, headers over 8 KiB, a bad chunk, a bad FLV (why in error()). Frames go to sink; the
  // reader's non-fatal notes (an unsupported codec) too, through sink.fail.
  bool feed(const uint8_t* p, size_t n, junction::media::FrameSink sink);

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  bool headers_done() const { return state_ != State::kHeaders; }
  const junction::rtmp::flv::Reader& reader() const { return reader_; }

 private:
  enum class State { kHeaders, kBody, kChunkSize, kChunkData, kChunkCrlf, kDone };
  bool fail(std::string why);
  bool headers(std::string_view text);
  bool body(const uint8_t* p, size_t n, junction::media::FrameSink& sink);

  junction::rtmp::flv::Reader reader_;
  State state_ = State::kHeaders;
  std::string head_;   // status line + headers so far (bounded), then the chunk-size line
  uint64_t chunk_left_ = 0;
  uint8_t crlf_left_ = 0;
  std::string error_;
};

}  // namespace intercom
