// Fuzz: RTP header and compound RTCP parsers and the RFC 3550 receiver statistics.
#include <junction/proto/rtp.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace rtp = junction::proto::rtp;
  rtp::Header h;
  if (rtp::parse(data, size, h) == rtp::Error::None) {
    if (h.header_len + h.payload_len + h.padding_len != size) abort();
  }
  rtp::RtcpInfo ri;
  (void)rtp::parse_rtcp(data, size, ri);
  (void)rtp::parse_rtcp(data, size, ri, 14);
  (void)rtp::looks_like_rtcp(data, size);
  // Treat the input as a sequence of (seq, ssrc, ts) triples.
  rtp::ReceiverStats rs;
  rs.set_clock_rate(8000);
  for (size_t i = 0; i + 10 <= size; i += 10) {
    rs.update(rtp::rd16(data + i), rtp::rd32(data + i + 2), rtp::rd32(data + i + 6), i * 20000000ull);
    if (rs.lost() < 0) abort();
  }
  (void)rs.jitter_us();
  return 0;
}
