// StreamFramer: cuts a TCP byte stream into frames (the core's framing service for plugins).
// Pure (no I/O), so it is unit-tested and fuzzed on its own.
//   RAW    every chunk is a frame;
//   DELIM  frames end with a delimiter byte; an oversized frame is reported once and skipped
//          up to the next delimiter (the stream resynchronises there);
//   LEN16  RFC 4571: a 2-byte big-endian length before each frame; an oversized frame is
//          reported and its bytes skipped (the length keeps the stream in sync). A frame that
//          lies wholly inside one fed chunk is passed on as a view of that chunk (no copy).
//   SIP    RFC 3261 section 18.3: a message is its header block up to the first empty line plus
//          Content-Length body bytes (compact form "l" too; absent = 0). CRLFCRLF between messages
//          is an RFC 5626 keepalive ping, delivered as the 4-byte frame "\r\n\r\n" (the plugin
//          answers with a CRLF pong); a lone CRLF (a pong, or the empty lines RFC 3261 7.5 allows
//          before a message) is skipped. A stream that cannot be framed -- a header block or
//          message over max_frame, a Content-Length that is not a number or appears twice with
//          different values -- is *broken*: it is reported once through on_oversize and the
//          framer ignores everything after it (the core closes the connection: a stream that lies
//          about its length cannot be trusted to resynchronise).
#pragma once

#include <junction/abi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <junction/util/text.hpp>

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
  // SIP framing only: the stream could not be framed (see above) and must be closed.
  bool broken() const { return broken_; }
  const char* broken_reason() const { return broken_reason_; }

  // The bytes to send for one frame (prefix or delimiter added). false if it cannot be framed.
  bool encode(std::string_view frame, std::string& out) const;

 private:
  uint32_t framing_;
  char delimiter_;
  uint32_t max_frame_;
  std::string rx_;
  bool skipping_ = false;
  size_t skip_left_ = 0;
  bool broken_ = false;
  const char* broken_reason_ = "";

  template <typename OnFrame, typename OnOversize>
  void feed_sip(const char* data, size_t n, OnFrame& on_frame, OnOversize& on_oversize);
  // The message length (header block + body) of the header block rx_[pos, pos+header_len), or
  // 0 with broken_reason_ set.
  size_t sip_message_length(size_t pos, size_t header_len);
};


inline size_t StreamFramer::sip_message_length(size_t pos, size_t header_len) {
  std::string_view block(rx_.data() + pos, header_len);  // ends with CRLFCRLF
  size_t content_length = 0;
  bool seen = false;
  size_t line_start = block.find("\r\n");
  if (line_start == std::string_view::npos) line_start = block.size();  // cannot happen
  // Skip the start line; every following line up to the empty one is a header (or a fold).
  while (line_start + 2 < block.size()) {
    size_t begin = line_start + 2;
    size_t end = block.find("\r\n", begin);
    if (end == std::string_view::npos || end == begin) break;
    std::string_view line = block.substr(begin, end - begin);
    line_start = end;
    if (line.front() == ' ' || line.front() == '\t') continue;  // a folded continuation
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // the parser reports it; framing needs no more
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (!util::ascii_iequals(name, "content-length") && !util::ascii_iequals(name, "l")) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (value.empty() || value.size() > 9) {
      broken_reason_ = "Content-Length is not a number below 10^9";
      return 0;
    }
    size_t v = 0;
    for (char ch : value) {
      if (ch < '0' || ch > '9') {
        broken_reason_ = "Content-Length is not a number";
        return 0;
      }
      v = v * 10 + static_cast<size_t>(ch - '0');
    }
    if (seen && v != content_length) {
      broken_reason_ = "two different Content-Length values";
      return 0;
    }
    seen = true;
    content_length = v;
  }
  return header_len + content_length;
}

template <typename OnFrame, typename OnOversize>
void StreamFramer::feed_sip(const char* data, size_t n, OnFrame& on_frame, OnOversize& on_oversize) {
  if (broken_) return;
  rx_.append(data, n);
  size_t pos = 0;
  auto fail = [&](size_t len, const char* reason) {
    if (!*broken_reason_) broken_reason_ = reason;
    broken_ = true;
    rx_.clear();
    on_oversize(len);
  };
  for (;;) {
    size_t avail = rx_.size() - pos;
    if (avail >= 4 && rx_.compare(pos, 4, "\r\n\r\n") == 0) {
      pos += 4;
      if (!on_frame(std::string_view("\r\n\r\n", 4))) {
        rx_.clear();
        return;
      }
      continue;
    }
    if (avail >= 2 && rx_.compare(pos, 2, "\r\n") == 0) {
      // A pong or an empty line before a message; wait when it may still become a ping.
      if (avail < 4 && (avail == 2 || rx_[pos + 2] == '\r')) break;
      pos += 2;
      continue;
    }
    if (avail == 0) break;
    size_t end = rx_.find("\r\n\r\n", pos);
    if (end == std::string::npos) {
      if (avail > max_frame_) fail(avail, "header block longer than max_frame");
      break;
    }
    size_t header_len = end + 4 - pos;
    size_t total = sip_message_length(pos, header_len);
    if (total == 0) {
      fail(header_len, broken_reason_);
      return;
    }
    if (total > max_frame_) {
      fail(total, "message longer than max_frame");
      return;
    }
    if (avail < total) break;
    if (!on_frame(std::string_view(rx_.data() + pos, total))) {
      rx_.clear();
      return;
    }
    pos += total;
  }
  if (!broken_) rx_.erase(0, pos);
}

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
  if (framing_ == JN_FRAME_SIP) {
    feed_sip(data, n, on_frame, on_oversize);
    return;
  }
  // LEN16. A frame wholly inside `data` is handed out as a view of it (no copy: a media loop
  // copies it once, into its pool buffer); only a frame split across reads is reassembled in
  // rx_, from just the bytes it lacks.
  size_t pos = 0;
  for (;;) {
    if (skip_left_) {
      size_t k = std::min(skip_left_, n - pos);
      pos += k;
      skip_left_ -= k;
      if (skip_left_) return;
    }
    if (!rx_.empty()) {  // a header or frame begun in an earlier read
      if (rx_.size() < 2) {
        size_t k = std::min<size_t>(2 - rx_.size(), n - pos);
        rx_.append(data + pos, k);
        pos += k;
        if (rx_.size() < 2) return;
      }
      size_t len = (static_cast<uint8_t>(rx_[0]) << 8) | static_cast<uint8_t>(rx_[1]);
      if (len > max_frame_) {
        rx_.clear();
        skip_left_ = len;
        if (!on_oversize(len)) return;
        continue;
      }
      size_t k = std::min(2 + len - rx_.size(), n - pos);
      rx_.append(data + pos, k);
      pos += k;
      if (rx_.size() < 2 + len) return;
      bool go = on_frame(std::string_view(rx_.data() + 2, len));
      rx_.clear();
      if (!go) return;
      continue;
    }
    if (n - pos < 2) {
      rx_.append(data + pos, n - pos);
      return;
    }
    size_t len = (static_cast<uint8_t>(data[pos]) << 8) | static_cast<uint8_t>(data[pos + 1]);
    if (len > max_frame_) {
      pos += 2;
      skip_left_ = len;
      if (!on_oversize(len)) return;
      continue;
    }
    if (n - pos - 2 < len) {
      rx_.append(data + pos, n - pos);
      return;
    }
    if (!on_frame(std::string_view(data + pos + 2, len))) return;
    pos += 2 + len;
  }
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
