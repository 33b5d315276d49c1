// The TCP stream framer: byte 0 picks the framing and max_frame, byte 1 the chunk size; the rest
// is the stream. Invariants: frames never exceed max_frame, DELIM frames never contain the
// delimiter, LEN16 frames re-encode to the bytes they came from, SIP frames are a keepalive or a
// header block (ending in an empty line) plus its body, and nothing is framed after a SIP stream broke.
#include "host/framer.hpp"

#include <cassert>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // DELIM or LEN16 (bit 0), or SIP (bit 7 set; then max_frame grows in bigger steps)
  uint32_t framing = (data[0] & 0x80) ? JN_FRAME_SIP : 1 + (data[0] & 1);
  uint32_t max_frame = (data[0] & 0x80) ? 16 + (data[0] & 0x7f) * 32 : 1 + (data[0] >> 1) * 4;
  size_t chunk = 1 + data[1];
  junction::StreamFramer f(framing, 0, max_frame);
  for (size_t off = 2; off < size; off += chunk) {
    size_t n = std::min(chunk, size - off);
    f.feed(reinterpret_cast<const char*>(data + off), n,
           [&](std::string_view frame) {
             if (frame.size() > max_frame) std::abort();
             if (framing == JN_FRAME_DELIM && frame.find('\0') != std::string_view::npos) std::abort();
             if (framing == JN_FRAME_SIP) {
               if (f.broken()) std::abort();
               if (frame != "\r\n\r\n" && (frame.substr(0, 2) == "\r\n" || frame.find("\r\n\r\n") == std::string_view::npos))
                 std::abort();
             }
             std::string wire;
             if (!f.encode(frame, wire)) std::abort();
             return true;
           },
           [&](size_t len) {
             // SIP also reports a stream broken by a bad Content-Length (any length), once.
             if (framing == JN_FRAME_SIP ? !f.broken() : len <= max_frame) std::abort();
             return true;
           });
  }
  return 0;
}
