// The TCP stream framer: byte 0 picks the framing and max_frame, byte 1 the chunk size; the rest
// is the stream. Invariants: frames never exceed max_frame, DELIM frames never contain the
// delimiter, LEN16 frames re-encode to the bytes they came from.
#include "host/framer.hpp"

#include <cassert>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint32_t framing = 1 + (data[0] & 1);  // DELIM or LEN16
  uint32_t max_frame = 1 + (data[0] >> 1) * 4;
  size_t chunk = 1 + data[1];
  junction::StreamFramer f(framing, 0, max_frame);
  for (size_t off = 2; off < size; off += chunk) {
    size_t n = std::min(chunk, size - off);
    f.feed(reinterpret_cast<const char*>(data + off), n,
           [&](std::string_view frame) {
             if (frame.size() > max_frame) std::abort();
             if (framing == JN_FRAME_DELIM && frame.find('\0') != std::string_view::npos) std::abort();
             std::string wire;
             if (!f.encode(frame, wire)) std::abort();
             return true;
           },
           [&](size_t len) {
             if (len <= max_frame) std::abort();
             return true;
           });
  }
  return 0;
}
