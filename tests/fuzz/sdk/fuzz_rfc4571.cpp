// Fuzz target: the RFC 4571 / interleaved / raw-PS TCP deframer (sdk/media). Invariants, abort()
// when one breaks: every byte fed is accounted for exactly once (framing header + packet bytes
// passed on + bare PS passed on + bytes skipped); every packet passed on is RTP/RTCP version 2
// within max_frame; an RTP packet passed on carries the SSRC the deframer holds.
#include <junction/media/rfc4571.hpp>

#include <cstdint>
#include <cstdlib>

using namespace junction::media;

namespace {
struct Count : Rfc4571Deframer::Sink {
  Rfc4571Deframer* d = nullptr;
  uint64_t bytes = 0;
  void on_packet(Rfc4571Deframer::Kind k, const uint8_t* p, size_t n, uint8_t) override {
    if (k == Rfc4571Deframer::Kind::Ps) {
      bytes += n;
      return;
    }
    if (d->framing() != TcpFraming::Len16 && d->framing() != TcpFraming::Interleaved) abort();
    bytes += n + (d->framing() == TcpFraming::Interleaved ? 4 : 2);
    if (n < 8 || n > 65535 || (p[0] >> 6) != 2) abort();
    bool rtcp = p[1] >= 192 && p[1] <= 223;
    if (!rtcp) {
      if (n < 12 || !d->ssrc_known()) abort();
      uint32_t ssrc = (uint32_t{p[8]} << 24) | (uint32_t{p[9]} << 16) | (uint32_t{p[10]} << 8) | p[11];
      if (ssrc != d->ssrc()) abort();
    }
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  Rfc4571Config cfg;
  cfg.framing = static_cast<TcpFraming>(data[0] & 3);
  cfg.max_frame = 64 + (data[1] << 4);  // small: full buffers are reached
  if (data[0] & 4) {
    cfg.ssrc_known = true;
    cfg.ssrc = 0;
  }
  Rfc4571Deframer d(cfg);
  Count c;
  c.d = &d;
  const uint8_t* p = data + 2;
  size_t n = size - 2;
  size_t step = 1 + (data[0] >> 3);
  for (size_t off = 0; off < n; off += step) d.feed(p + off, step < n - off ? step : n - off, c);
  d.finish(c);
  if (c.bytes + d.stats().skipped_bytes != n) abort();
  return 0;
}
