// TCP framing (frame_stream) on a byte stream delivered in arbitrary pieces. The first input byte
// seeds the piece sizes; the rest is the stream. Invariants: the frames found while the bytes
// trickle in are exactly the frames found on the whole stream at once (same lengths, same
// keep-alives, same final error); a frame is never longer than what has arrived; a frame that
// parse() accepts as a stream message has the same size, and parse() never calls it incomplete.
#include <junction/sip/message.hpp>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace junction::sip;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
struct Frame {
  size_t len;
  bool keepalive;
};
// Frames everything framable in buf (consuming it); returns the status that stopped it.
ParseStatus drain(std::string& buf, std::vector<Frame>& out, Message& m) {
  for (;;) {
    size_t len = 0;
    bool ka = false;
    ParseStatus st = frame_stream(buf, len, ka);
    if (st != ParseStatus::Ok) return st;
    check(len > 0 && len <= buf.size());
    if (!ka) {
      ParseStatus ps = parse(std::string_view(buf).substr(0, len), m, Framing::Stream);
      check(ps != ParseStatus::Incomplete);
      if (ps == ParseStatus::Ok) check(m.size() == len);
    }
    out.push_back({len, ka});
    buf.erase(0, len);
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint32_t seed = data[0] * 2654435761u + 1;
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  auto m = std::make_unique<Message>();

  std::string whole(stream);
  std::vector<Frame> a;
  ParseStatus end_a = drain(whole, a, *m);

  std::string buf;
  std::vector<Frame> b;
  ParseStatus end_b = ParseStatus::Incomplete;
  size_t pos = 0;
  while (pos < stream.size()) {
    seed = seed * 1103515245u + 12345u;
    size_t piece = 1 + (seed >> 16) % 97;
    buf.append(stream.substr(pos, piece));
    pos += piece;
    end_b = drain(buf, b, *m);
    if (end_b != ParseStatus::Incomplete) break;  // the stream is unusable: the transport closes it
  }
  if (stream.empty()) end_b = drain(buf, b, *m);

  // Keep-alive runs may be split differently when CRLFs arrive piecewise; compare the messages.
  std::vector<size_t> ma, mb;
  for (auto& f : a)
    if (!f.keepalive) ma.push_back(f.len);
  for (auto& f : b)
    if (!f.keepalive) mb.push_back(f.len);
  check(ma == mb);
  check(end_a == end_b);
  return 0;
}
