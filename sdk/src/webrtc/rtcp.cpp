// RTCP builders/parsers and the retransmit buffer. See rtcp.hpp.
#include <junction/proto/rtp.hpp>
#include <junction/webrtc/rtcp.hpp>

#include <algorithm>
#include <cstring>

namespace junction::webrtc {
namespace {

// Big-endian fields: the RTP helpers (one copy in the tree).
using junction::proto::rtp::rd16;
using junction::proto::rtp::rd32;
using junction::proto::rtp::wr16;
using junction::proto::rtp::wr32;

// Common header: V=2, no padding, count, type, length in 32-bit words minus one.
void header(uint8_t* p, uint8_t count, uint8_t type, size_t len) {
  p[0] = static_cast<uint8_t>(0x80 | (count & 0x1f));
  p[1] = type;
  wr16(p + 2, static_cast<uint16_t>(len / 4 - 1));
}

void write_blocks(uint8_t* p, const RtcpReportBlock* blocks, size_t n) {
  for (size_t i = 0; i < n; ++i, p += 24) {
    const RtcpReportBlock& b = blocks[i];
    wr32(p, b.ssrc);
    int32_t lost = std::clamp<int32_t>(b.cumulative_lost, -0x800000, 0x7fffff);
    wr32(p + 4, static_cast<uint32_t>(b.fraction_lost) << 24 | (static_cast<uint32_t>(lost) & 0xffffff));
    wr32(p + 8, b.highest_seq);
    wr32(p + 12, b.jitter);
    wr32(p + 16, b.lsr);
    wr32(p + 20, b.dlsr);
  }
}

}  // namespace

size_t rtcp_build_sr(uint8_t* out, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts, uint32_t packets,
                     uint32_t octets, const RtcpReportBlock* blocks, size_t n) {
  size_t len = 28 + 24 * n;
  if (n > 31 || cap < len) return 0;
  header(out, static_cast<uint8_t>(n), kRtcpSr, len);
  wr32(out + 4, ssrc);
  wr32(out + 8, static_cast<uint32_t>(ntp >> 32));
  wr32(out + 12, static_cast<uint32_t>(ntp));
  wr32(out + 16, rtp_ts);
  wr32(out + 20, packets);
  wr32(out + 24, octets);
  write_blocks(out + 28, blocks, n);
  return len;
}

size_t rtcp_build_rr(uint8_t* out, size_t cap, uint32_t ssrc, const RtcpReportBlock* blocks, size_t n) {
  size_t len = 8 + 24 * n;
  if (n > 31 || cap < len) return 0;
  header(out, static_cast<uint8_t>(n), kRtcpRr, len);
  wr32(out + 4, ssrc);
  write_blocks(out + 8, blocks, n);
  return len;
}

size_t rtcp_build_pli(uint8_t* out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc) {
  if (cap < 12) return 0;
  header(out, 1, kRtcpPsfb, 12);
  wr32(out + 4, sender_ssrc);
  wr32(out + 8, media_ssrc);
  return 12;
}

size_t rtcp_build_fir(uint8_t* out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t seq) {
  if (cap < 20) return 0;
  header(out, 4, kRtcpPsfb, 20);
  wr32(out + 4, sender_ssrc);
  wr32(out + 8, 0);  // RFC 5104 4.3.1: media source SSRC unused
  wr32(out + 12, media_ssrc);
  out[16] = seq;
  out[17] = out[18] = out[19] = 0;
  return 20;
}

size_t rtcp_build_nack(uint8_t* out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc, const uint16_t* seqs,
                       size_t n) {
  if (n == 0 || cap < 16) return 0;
  size_t len = 12;
  // Greedy: each pair covers a PID and the 16 following numbers. Unsorted input is handled by
  // looking for a pair that can take the number (n is small: a NACK round).
  for (size_t i = 0; i < n; ++i) {
    uint16_t s = seqs[i];
    bool placed = false;
    for (size_t off = 12; off < len; off += 4) {
      uint16_t pid = static_cast<uint16_t>(out[off] << 8 | out[off + 1]);
      uint16_t d = static_cast<uint16_t>(s - pid);
      if (d == 0) {
        placed = true;
        break;
      }
      if (d <= 16) {
        uint16_t blp = static_cast<uint16_t>(out[off + 2] << 8 | out[off + 3]);
        blp = static_cast<uint16_t>(blp | (1u << (d - 1)));
        wr16(out + off + 2, blp);
        placed = true;
        break;
      }
    }
    if (placed) continue;
    if (cap < len + 4 || len + 4 > 4 * 65536) return 0;
    wr16(out + len, s);
    wr16(out + len + 2, 0);
    len += 4;
  }
  header(out, 1, kRtcpRtpfb, len);
  wr32(out + 4, sender_ssrc);
  wr32(out + 8, media_ssrc);
  return len;
}

bool rtcp_parse_sr(const RtcpPacket& p, RtcpSr& out) {
  if (p.type != kRtcpSr || p.len < 28) return false;
  out.ssrc = rd32(p.data + 4);
  out.ntp = static_cast<uint64_t>(rd32(p.data + 8)) << 32 | rd32(p.data + 12);
  out.rtp_ts = rd32(p.data + 16);
  out.packets = rd32(p.data + 20);
  out.octets = rd32(p.data + 24);
  return true;
}

bool rtcp_parse_feedback(const RtcpPacket& p, RtcpFeedback& out) {
  out = RtcpFeedback{};
  if ((p.type != kRtcpRtpfb && p.type != kRtcpPsfb) || p.len < 12) return false;
  out.sender_ssrc = rd32(p.data + 4);
  out.media_ssrc = rd32(p.data + 8);
  if (p.type == kRtcpRtpfb) {
    out.kind = p.count == 1 ? (p.len >= 16 ? RtcpFbKind::Nack : RtcpFbKind::None) : RtcpFbKind::Other;
    return out.kind != RtcpFbKind::None;
  }
  switch (p.count) {
    case 1: out.kind = RtcpFbKind::Pli; break;
    case 4: out.kind = p.len >= 20 ? RtcpFbKind::Fir : RtcpFbKind::None; break;
    case 15:  // application layer feedback: REMB is "REMB" + bitrate (ignored: no congestion control)
      out.kind = p.len >= 16 && std::memcmp(p.data + 12, "REMB", 4) == 0 ? RtcpFbKind::Remb : RtcpFbKind::Other;
      break;
    default: out.kind = RtcpFbKind::Other; break;
  }
  return out.kind != RtcpFbKind::None;
}

RetransmitBuffer::RetransmitBuffer(size_t slots, size_t max_ssrcs, size_t max_packet)
    : slots_(std::max<size_t>(slots, 1)),
      max_ssrcs_(std::max<size_t>(max_ssrcs, 1)),
      max_packet_(std::min<size_t>(max_packet, 0xffff)),
      tables_(max_ssrcs_),
      seq_(max_ssrcs_ * slots_),
      len_(max_ssrcs_ * slots_),
      data_(max_ssrcs_ * slots_ * max_packet_) {}

bool RetransmitBuffer::store(const uint8_t* rtp, size_t len) {
  if (len < 12 || len > max_packet_ || (rtp[0] >> 6) != 2) return false;
  uint32_t ssrc = rd32(rtp + 8);
  uint16_t seq = static_cast<uint16_t>(rtp[2] << 8 | rtp[3]);
  size_t t = max_ssrcs_;
  for (size_t i = 0; i < max_ssrcs_; ++i)
    if (tables_[i].used && tables_[i].ssrc == ssrc) {
      t = i;
      break;
    }
  if (t == max_ssrcs_) {
    for (size_t i = 0; i < max_ssrcs_; ++i)
      if (!tables_[i].used) {
        t = i;
        tables_[i].used = true;
        tables_[i].ssrc = ssrc;
        break;
      }
    if (t == max_ssrcs_) return false;
  }
  size_t slot = t * slots_ + seq % slots_;
  seq_[slot] = seq;
  len_[slot] = static_cast<uint16_t>(len);
  std::memcpy(data_.data() + slot * max_packet_, rtp, len);
  return true;
}

const uint8_t* RetransmitBuffer::find(uint32_t ssrc, uint16_t seq, size_t& len) const {
  for (size_t t = 0; t < max_ssrcs_; ++t) {
    if (!tables_[t].used || tables_[t].ssrc != ssrc) continue;
    size_t slot = t * slots_ + seq % slots_;
    if (len_[slot] == 0 || seq_[slot] != seq) return nullptr;
    len = len_[slot];
    return data_.data() + slot * max_packet_;
  }
  return nullptr;
}

size_t RetransmitBuffer::copy_out(uint32_t ssrc, uint16_t seq, uint8_t* out, size_t cap) const {
  size_t len = 0;
  const uint8_t* p = find(ssrc, seq, len);
  if (!p || len > cap) return 0;
  std::memcpy(out, p, len);
  return len;
}

}  // namespace junction::webrtc
