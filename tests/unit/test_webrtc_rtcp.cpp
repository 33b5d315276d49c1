// sdk/webrtc RTCP: compound walk, SR/RR, PLI, FIR, NACK, REMB, and the retransmit buffer.
#include <doctest/doctest.h>
#include <junction/webrtc/rtcp.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

using namespace junction::webrtc;

namespace {

std::vector<uint8_t> rtp(uint32_t ssrc, uint16_t seq, size_t payload, uint8_t fill) {
  std::vector<uint8_t> p(12 + payload, fill);
  p[0] = 0x80;
  p[1] = 96;
  p[2] = static_cast<uint8_t>(seq >> 8);
  p[3] = static_cast<uint8_t>(seq);
  std::memset(p.data() + 4, 0, 4);
  p[8] = static_cast<uint8_t>(ssrc >> 24);
  p[9] = static_cast<uint8_t>(ssrc >> 16);
  p[10] = static_cast<uint8_t>(ssrc >> 8);
  p[11] = static_cast<uint8_t>(ssrc);
  return p;
}

}  // namespace

TEST_CASE("rtcp: SR + RR + PLI + FIR + NACK compound walks back") {
  uint8_t buf[512];
  size_t off = 0;
  RtcpReportBlock blk;
  blk.ssrc = 0xAABBCCDD;
  blk.fraction_lost = 12;
  blk.cumulative_lost = -3;
  blk.highest_seq = 0x10005;
  blk.jitter = 77;
  off += rtcp_build_sr(buf + off, sizeof buf - off, 0x11111111, 0x0102030405060708ull, 9000, 10, 1000, &blk, 1);
  off += rtcp_build_rr(buf + off, sizeof buf - off, 0x22222222);
  off += rtcp_build_pli(buf + off, sizeof buf - off, 0x33333333, 0x44444444);
  off += rtcp_build_fir(buf + off, sizeof buf - off, 0x33333333, 0x55555555, 7);
  const uint16_t seqs[] = {100, 101, 116, 117, 200, 65535, 0};
  off += rtcp_build_nack(buf + off, sizeof buf - off, 0x33333333, 0x66666666, seqs, 7);

  std::vector<uint8_t> types;
  int pli = 0, fir = 0, nack = 0;
  std::vector<uint16_t> nacked;
  int n = rtcp_walk(buf, off, [&](const RtcpPacket& p) {
    types.push_back(p.type);
    if (p.type == kRtcpSr) {
      RtcpSr sr;
      REQUIRE(rtcp_parse_sr(p, sr));
      CHECK(sr.ssrc == 0x11111111);
      CHECK(sr.ntp == 0x0102030405060708ull);
      CHECK(sr.packets == 10);
      int blocks = rtcp_report_blocks(p, [&](const RtcpReportBlock& b) {
        CHECK(b.ssrc == 0xAABBCCDD);
        CHECK(b.cumulative_lost == -3);
        CHECK(b.highest_seq == 0x10005);
        CHECK(b.jitter == 77);
      });
      CHECK(blocks == 1);
    }
    RtcpFeedback fb;
    if (rtcp_parse_feedback(p, fb)) {
      if (fb.kind == RtcpFbKind::Pli) {
        ++pli;
        CHECK(fb.media_ssrc == 0x44444444);
      } else if (fb.kind == RtcpFbKind::Fir) {
        rtcp_fir_for_each(p, [&](uint32_t ssrc, uint8_t seq) {
          CHECK(ssrc == 0x55555555);
          CHECK(seq == 7);
          ++fir;
        });
      } else if (fb.kind == RtcpFbKind::Nack) {
        ++nack;
        CHECK(fb.media_ssrc == 0x66666666);
        rtcp_nack_for_each(p, [&](uint16_t s) { nacked.push_back(s); });
      }
    }
    return true;
  });
  CHECK(n == 5);
  CHECK(types == std::vector<uint8_t>{kRtcpSr, kRtcpRr, kRtcpPsfb, kRtcpPsfb, kRtcpRtpfb});
  CHECK(pli == 1);
  CHECK(fir == 1);
  CHECK(nack == 1);
  std::sort(nacked.begin(), nacked.end());
  CHECK(nacked == std::vector<uint16_t>{0, 100, 101, 116, 117, 200, 65535});

  // Broken framing: a length past the end, a wrong version.
  CHECK(rtcp_walk(buf, off - 4, [](const RtcpPacket&) { return true; }) == -1);
  buf[0] = 0x40;
  CHECK(rtcp_walk(buf, off, [](const RtcpPacket&) { return true; }) == -1);
}

TEST_CASE("rtcp: REMB is recognised (and can be ignored), builders refuse small buffers") {
  uint8_t remb[24] = {0x8f, 206, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 'R', 'E', 'M', 'B', 1, 0, 0, 0, 0, 0, 0, 2};
  RtcpFeedback fb;
  int n = rtcp_walk(remb, sizeof remb, [&](const RtcpPacket& p) {
    CHECK(rtcp_parse_feedback(p, fb));
    return true;
  });
  CHECK(n == 1);
  CHECK(fb.kind == RtcpFbKind::Remb);
  uint8_t small[8];
  CHECK(rtcp_build_pli(small, sizeof small, 1, 2) == 0);
  CHECK(rtcp_build_sr(small, sizeof small, 1, 0, 0, 0, 0) == 0);
  CHECK(is_rtcp(remb, sizeof remb));
}

TEST_CASE("rtcp: RetransmitBuffer answers NACKs with the original packet, forgets old ones") {
  RetransmitBuffer rb(64, 2, 1200);
  for (uint16_t s = 65500; s != 30; ++s) {
    auto p = rtp(0xCAFE, s, 100, static_cast<uint8_t>(s));
    REQUIRE(rb.store(p.data(), p.size()));
  }
  uint8_t out[1500];
  // The last 64 (65503 .. 29 across the wrap) are there, byte for byte.
  for (uint16_t s = 65503; s != 30; ++s) {
    size_t n = rb.copy_out(0xCAFE, s, out, sizeof out);
    REQUIRE(n == 112);
    auto want = rtp(0xCAFE, s, 100, static_cast<uint8_t>(s));
    CHECK(std::memcmp(out, want.data(), n) == 0);
  }
  // Older ones were overwritten, unknown SSRCs have nothing.
  CHECK(rb.copy_out(0xCAFE, 65500, out, sizeof out) == 0);
  CHECK(rb.copy_out(0xBEEF, 10, out, sizeof out) == 0);
  // A second SSRC fits, a third does not; oversize and non-RTP are refused.
  auto v = rtp(0xBEEF, 1, 10, 1);
  CHECK(rb.store(v.data(), v.size()));
  auto w = rtp(0xF00D, 1, 10, 1);
  CHECK_FALSE(rb.store(w.data(), w.size()));
  auto big = rtp(0xCAFE, 31, 1300, 1);
  CHECK_FALSE(rb.store(big.data(), big.size()));
  CHECK(rb.copy_out(0xCAFE, 29, out, 50) == 0);  // does not fit the caller's buffer
}
