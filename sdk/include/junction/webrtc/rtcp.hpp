// RTCP (RFC 3550, RFC 4585, RFC 5104): walk a compound packet, build SR/RR, PLI, FIR and generic
// NACK, parse the feedback a browser sends (PLI, FIR, NACK; REMB recognised and ignored), and a
// RetransmitBuffer answering NACKs from the last packets sent. No allocation per packet: builders
// write into caller buffers, parsers return views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace junction::webrtc {

enum RtcpType : uint8_t { kRtcpSr = 200, kRtcpRr = 201, kRtcpSdes = 202, kRtcpBye = 203, kRtcpApp = 204,
                          kRtcpRtpfb = 205, kRtcpPsfb = 206 };

// One packet of a compound: the header's count/format field, type, and the whole packet
// (header included, padding included).
struct RtcpPacket {
  uint8_t count = 0;  // RC / SC / FMT
  uint8_t type = 0;
  const uint8_t* data = nullptr;
  size_t len = 0;
};

// RFC 7983: RTP/RTCP start with a byte in [128, 191]; RTCP (with rtcp-mux, RFC 5761) has a
// payload type in [192, 223] in the second byte.
inline bool is_rtp_or_rtcp(const uint8_t* d, size_t len) { return len >= 4 && d[0] >= 128 && d[0] <= 191; }
inline bool is_rtcp(const uint8_t* d, size_t len) { return is_rtp_or_rtcp(d, len) && len >= 8 && d[1] >= 192 && d[1] <= 223; }

// Walks a compound packet; fn(const RtcpPacket&) returns false to stop. Returns the number of
// packets, or -1 when the framing is broken (version not 2, a length past the end).
template <class F>
int rtcp_walk(const uint8_t* data, size_t len, F&& fn) {
  int n = 0;
  size_t off = 0;
  while (off < len) {
    if (len - off < 4) return -1;
    const uint8_t* h = data + off;
    if ((h[0] >> 6) != 2) return -1;
    size_t plen = (static_cast<size_t>(h[2] << 8 | h[3]) + 1) * 4;
    if (plen > len - off) return -1;
    RtcpPacket p{static_cast<uint8_t>(h[0] & 0x1f), h[1], h, plen};
    off += plen;
    ++n;
    if (!fn(static_cast<const RtcpPacket&>(p))) break;
  }
  return n;
}

struct RtcpReportBlock {
  uint32_t ssrc = 0;
  uint8_t fraction_lost = 0;
  int32_t cumulative_lost = 0;  // 24-bit signed
  uint32_t highest_seq = 0;     // extended
  uint32_t jitter = 0;
  uint32_t lsr = 0;
  uint32_t dlsr = 0;
};

// Builders: the bytes written, 0 when cap is too small. At most 31 report blocks.
size_t rtcp_build_sr(uint8_t* out, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts, uint32_t packets,
                     uint32_t octets, const RtcpReportBlock* blocks = nullptr, size_t n = 0);
size_t rtcp_build_rr(uint8_t* out, size_t cap, uint32_t ssrc, const RtcpReportBlock* blocks = nullptr, size_t n = 0);
size_t rtcp_build_pli(uint8_t* out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc);
size_t rtcp_build_fir(uint8_t* out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t seq);
// Generic NACK: the sequence numbers (any order) packed into PID/BLP pairs.
size_t rtcp_build_nack(uint8_t* out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc, const uint16_t* seqs,
                       size_t n);

// SR sender info.
struct RtcpSr {
  uint32_t ssrc = 0;
  uint64_t ntp = 0;
  uint32_t rtp_ts = 0;
  uint32_t packets = 0;
  uint32_t octets = 0;
};
bool rtcp_parse_sr(const RtcpPacket& p, RtcpSr& out);
// Report blocks of an SR or RR: fn(const RtcpReportBlock&). Returns the count, -1 if malformed.
template <class F>
int rtcp_report_blocks(const RtcpPacket& p, F&& fn);

enum class RtcpFbKind : uint8_t { None, Nack, Pli, Fir, Remb, Other };
struct RtcpFeedback {
  RtcpFbKind kind = RtcpFbKind::None;
  uint32_t sender_ssrc = 0;
  uint32_t media_ssrc = 0;  // FIR: 0 in the header; the FCI names the SSRCs (rtcp_fir_for_each)
};
// RTPFB / PSFB packets: what they ask. False when p is not feedback or is malformed.
bool rtcp_parse_feedback(const RtcpPacket& p, RtcpFeedback& out);
// Every sequence number a generic NACK asks for: fn(uint16_t seq).
template <class F>
void rtcp_nack_for_each(const RtcpPacket& p, F&& fn) {
  if (p.type != kRtcpRtpfb || p.count != 1 || p.len < 12) return;
  for (size_t off = 12; off + 4 <= p.len; off += 4) {
    uint16_t pid = static_cast<uint16_t>(p.data[off] << 8 | p.data[off + 1]);
    uint16_t blp = static_cast<uint16_t>(p.data[off + 2] << 8 | p.data[off + 3]);
    fn(pid);
    for (int i = 0; i < 16; ++i)
      if (blp & (1u << i)) fn(static_cast<uint16_t>(pid + i + 1));
  }
}
// Every (media SSRC, command sequence number) a FIR asks for: fn(uint32_t ssrc, uint8_t seq).
template <class F>
void rtcp_fir_for_each(const RtcpPacket& p, F&& fn) {
  if (p.type != kRtcpPsfb || p.count != 4 || p.len < 12) return;
  for (size_t off = 12; off + 8 <= p.len; off += 8)
    fn(static_cast<uint32_t>(p.data[off]) << 24 | static_cast<uint32_t>(p.data[off + 1]) << 16 |
           static_cast<uint32_t>(p.data[off + 2]) << 8 | p.data[off + 3],
       p.data[off + 4]);
}

template <class F>
int rtcp_report_blocks(const RtcpPacket& p, F&& fn) {
  size_t off;
  if (p.type == kRtcpSr)
    off = 28;
  else if (p.type == kRtcpRr)
    off = 8;
  else
    return -1;
  if (off + static_cast<size_t>(p.count) * 24 > p.len) return -1;
  for (int i = 0; i < p.count; ++i, off += 24) {
    const uint8_t* b = p.data + off;
    RtcpReportBlock r;
    r.ssrc = static_cast<uint32_t>(b[0]) << 24 | static_cast<uint32_t>(b[1]) << 16 | static_cast<uint32_t>(b[2]) << 8 | b[3];
    r.fraction_lost = b[4];
    int32_t lost = static_cast<int32_t>(static_cast<uint32_t>(b[5]) << 16 | static_cast<uint32_t>(b[6]) << 8 | b[7]);
    if (lost & 0x800000) lost -= 0x1000000;
    r.cumulative_lost = lost;
    auto u32 = [&](size_t o) {
      return static_cast<uint32_t>(b[o]) << 24 | static_cast<uint32_t>(b[o + 1]) << 16 | static_cast<uint32_t>(b[o + 2]) << 8 | b[o + 3];
    };
    r.highest_seq = u32(8);
    r.jitter = u32(12);
    r.lsr = u32(16);
    r.dlsr = u32(20);
    fn(static_cast<const RtcpReportBlock&>(r));
  }
  return p.count;
}

// The last `slots` RTP packets sent per SSRC (up to `max_ssrcs` SSRCs), kept by sequence number
// in preallocated slots: store() copies the plaintext packet before it is protected in place, a
// NACK is answered with copy_out() into a send buffer (then protected and sent again: the
// original packet, no RTX). All memory is allocated in the constructor (slots * max_ssrcs *
// max_packet bytes: 256 slots are about 1.3 s of a 2 Mb/s video stream).
class RetransmitBuffer {
 public:
  explicit RetransmitBuffer(size_t slots = 256, size_t max_ssrcs = 2, size_t max_packet = 1400);
  // False when the packet is not RTP, too big, or a new SSRC finds no free table.
  bool store(const uint8_t* rtp, size_t len);
  // The stored packet (plaintext) or nullptr.
  const uint8_t* find(uint32_t ssrc, uint16_t seq, size_t& len) const;
  // Copies it into out (cap bytes); its length, 0 when not stored or cap too small.
  size_t copy_out(uint32_t ssrc, uint16_t seq, uint8_t* out, size_t cap) const;
  size_t slots() const { return slots_; }

 private:
  struct Table {
    uint32_t ssrc = 0;
    bool used = false;
  };
  size_t slots_, max_ssrcs_, max_packet_;
  std::vector<Table> tables_;
  std::vector<uint16_t> seq_;   // per slot: seq stored there
  std::vector<uint16_t> len_;   // per slot: 0 = empty
  std::vector<uint8_t> data_;   // max_ssrcs * slots * max_packet
};

}  // namespace junction::webrtc
