// StreamFramer: cuts a TCP byte stream into frames (the core's framing service for plugins).
// Pure (no I/O), so it is unit-tested and fuzzed on its own.
//   RAW    every chunk is a frame;
//   DELIM  frames end with a delimiter byte; an oversized frame is reported once and skipped
//          up to the next delimiter (the stream resynchronises there);
//   LEN16  RFC 4571: a 2-byte big-endian length before each frame; an oversized frame is
//          reported and its bytes skipped (the length keeps the stream in sync).
#pragma once

#include <junction/abi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace junction {

class StreamFramer {
 public:
  StreamFramer(uint32_t framing, uint8_t delimiter, uint32_t max_frame)
      : framing_(framing), delimiter_(static_cast<char>(delimiter)), max_frame_(max_frame) {}

  // Feeds bytes; calls on_frame(std::string_view) for each complete frame and
  // on_oversize(size_t length) for each frame over max_frame. Either callback may return false
  // to stop (the connection is closing); the rest of the input is then dropped.
  template <typename OnFrame, typename OnOversize>
  void feed(const char* data, size_t n, OnFrame&& on_frame, OnOversize&& on_oversize);

  size_t buffered() const { return rx_.size(); }

  // The bytes to send for one frame (prefix or delimiter added). false if it cannot be framed.
  bool encode(std::string_view frame, std::string& out) const;

 private:
  uint32_t framing_;
  char delimiter_;
  uint32_t max_frame_;
  std::string rx_;
  bool skipping_ = false;
  size_t skip_left_ = 0;
};

template <typename OnFrame, typename OnOversize>
void StreamFramer::feed(const char* data, size_t n, OnFrame&& on_frame, OnOversize&& on_oversize) {
  if (framing_ == JN_FRAME_RAW) {
    if (n) on_frame(std::string_view(data, n));
    return;
  }
  if (framing_ == JN_FRAME_DELIM) {
    // Search only the new bytes for delimiters; keep a partial frame in rx_.
    size_t start = 0;
    for (size_t i = 0; i < n; ++i) {
      if (data[i] != delimiter_) continue;
      std::string_view piece(data + start, i - start);
      start = i + 1;
      if (skipping_) {
        skipping_ = false;  // resynchronised at this delimiter
        rx_.clear();
        continue;
      }
      size_t total = rx_.size() + piece.size();
      bool go = true;
      if (total > max_frame_) {
        go = on_oversize(total);
      } else if (total > 0) {
        if (rx_.empty()) {
          go = on_frame(piece);
        } else {
          rx_.append(piece);
          std::string frame;
          frame.swap(rx_);
          go = on_frame(std::string_view(frame));
        }
      }
      rx_.clear();
      if (!go) return;
    }
    if (!skipping_) {
      rx_.append(data + start, n - start);
      if (rx_.size() > max_frame_) {
        size_t len = rx_.size();
        rx_.clear();
        skipping_ = true;
        on_oversize(len);
      }
    }
    return;
  }
  // LEN16
  rx_.append(data, n);
  size_t pos = 0;
  for (;;) {
    if (skip_left_) {
      size_t k = std::min(skip_left_, rx_.size() - pos);
      pos += k;
      skip_left_ -= k;
      if (skip_left_) break;
    }
    if (rx_.size() - pos < 2) break;
    size_t len = (static_cast<uint8_t>(rx_[pos]) << 8) | static_cast<uint8_t>(rx_[pos + 1]);
    if (len > max_frame_) {
      pos += 2;
      skip_left_ = len;
      if (!on_oversize(len)) {
        rx_.clear();
        return;
      }
      continue;
    }
    if (rx_.size() - pos < 2 + len) break;
    if (!on_frame(std::string_view(rx_.data() + pos + 2, len))) {
      rx_.clear();
      return;
    }
    pos += 2 + len;
  }
  rx_.erase(0, pos);
}

inline bool StreamFramer::encode(std::string_view frame, std::string& out) const {
  out.clear();
  switch (framing_) {
    case JN_FRAME_DELIM:
      if (frame.find(delimiter_) != std::string_view::npos) return false;  // would split the frame
      out.reserve(frame.size() + 1);
      out.append(frame);
      out.push_back(delimiter_);
      return true;
    case JN_FRAME_LEN16:
      if (frame.size() > 65535) return false;
      out.push_back(static_cast<char>(frame.size() >> 8));
      out.push_back(static_cast<char>(frame.size() & 0xff));
      out.append(frame);
      return true;
    default:
      out.assign(frame);
      return true;
  }
}

}  // namespace junction
