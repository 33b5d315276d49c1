// MPEG-PS over RTP: see junction/media/ps_rtp.hpp.
#include <junction/media/ps_rtp.hpp>
#include <junction/proto/rtp.hpp>

#include "ps_common.hpp"

#include <algorithm>
#include <cstring>

namespace junction::media {

namespace rtp = junction::proto::rtp;

PsRtpPacketizer::PsRtpPacketizer(const PsRtpPacketizerConfig& cfg) : cfg_(cfg), seq_(cfg.first_seq) {
  if (cfg_.max_payload == 0) cfg_.max_payload = 1400;
  pkt_.resize(rtp::kFixedHeader + cfg_.max_payload);
}

size_t PsRtpPacketizer::packetize(const uint8_t* ps, size_t size, uint32_t ts90, Sink& sink) {
  size_t count = 0;
  uint8_t* h = pkt_.data();
  for (size_t off = 0; off < size;) {
    size_t n = std::min(cfg_.max_payload, size - off);
    bool last = off + n == size;
    h[0] = 0x80;
    h[1] = static_cast<uint8_t>((last ? 0x80 : 0) | (cfg_.payload_type & 0x7F));
    rtp::wr16(h + 2, seq_++);
    rtp::wr32(h + 4, ts90);
    rtp::wr32(h + 8, cfg_.ssrc);
    std::memcpy(h + rtp::kFixedHeader, ps + off, n);
    sink.on_packet(h, rtp::kFixedHeader + n);
    off += n;
    ++count;
  }
  return count;
}

bool PsRtpSender::send(const FrameView& frame, PsRtpPacketizer::Sink& sink) {
  std::span<const uint8_t> ps;
  if (!mux_.mux(frame, &ps)) return false;
  if (ps.empty()) return true;  // an AAC config frame: remembered by the muxer
  uint32_t rate = frame.meta.clock_rate ? frame.meta.clock_rate : 90000;
  uint64_t ts = static_cast<uint64_t>(frame.meta.pts) * 90000 / rate;  // PS/90000 whatever the codec
  rtp_.packetize(ps.data(), ps.size(), static_cast<uint32_t>(ts), sink);
  return true;
}

namespace {
// The reordering buffer takes whole RTP packets: room for a header with CSRCs and an extension.
constexpr size_t kHeaderRoom = 128;
}  // namespace

// No clock here: packets go in at time 0 and wait for the window (or flush_reorder), not a timer.
PsRtpReceiver::PsRtpReceiver(const PsRtpReceiverConfig& cfg)
    : cfg_(cfg), demux_(cfg.demux), rb_(std::max<size_t>(cfg.reorder_window, 2), cfg.max_packet + kHeaderRoom, UINT64_MAX) {
  have_ssrc_ = !cfg_.ssrc_from_first;
  ssrc_ = cfg_.ssrc;
}

void PsRtpReceiver::deliver(const uint8_t* payload, size_t size, bool marker, const FrameSink& sink) {
  demux_.feed(payload, size, sink);
  if (marker) demux_.frame_end(sink);
}

void PsRtpReceiver::pop_due(uint64_t now, const FrameSink& sink) {
  ReorderBuffer::Packet p;
  while (rb_.pop(now, p)) {
    if (p.lost_before) {
      stats_.lost += p.lost_before;
      demux_.mark_loss(sink);
    }
    rtp::Header h;
    if (rtp::parse(p.data, p.len, h) != rtp::Error::None) continue;  // parsed before it went in
    deliver(p.data + h.header_len, h.payload_len, h.marker, sink);
  }
}

void PsRtpReceiver::flush_reorder(FrameSink sink) { pop_due(UINT64_MAX, sink); }

void PsRtpReceiver::finish(FrameSink sink) {
  flush_reorder(sink);
  demux_.flush(sink);
}

namespace {
constexpr uint32_t kRtpBlobMagic = 0x50535232;  // "PSR2"
}

void PsRtpReceiver::save(std::vector<uint8_t>& out) const {
  BlobWriter w{out};
  w.put(kRtpBlobMagic);
  w.put(stats_), w.put(have_ssrc_), w.put(ssrc_), w.put(other_ssrc_), w.put(other_count_);
  std::vector<uint8_t> b;
  rb_.save(b);
  w.bytes(b);
  b.clear();
  demux_.save(b);
  w.bytes(b);
}

bool PsRtpReceiver::restore(const uint8_t* data, size_t size) {
  BlobReader r{data, size};
  auto fail = [&] {
    *this = PsRtpReceiver(cfg_);  // once per reload
    return false;
  };
  if (r.get<uint32_t>() != kRtpBlobMagic) return fail();
  stats_ = r.get<PsRtpReceiverStats>();
  have_ssrc_ = r.flag(), ssrc_ = r.get<uint32_t>(), other_ssrc_ = r.get<uint32_t>(), other_count_ = r.get<uint32_t>();
  const uint8_t* bp = nullptr;
  size_t bn = 0;
  if (!r.view(&bp, &bn, size) || !rb_.restore(bp, bn)) return fail();
  if (!r.view(&bp, &bn, size) || r.n != 0) return fail();
  if (!demux_.restore(bp, bn)) return fail();
  return true;
}

void PsRtpReceiver::on_rtp(const uint8_t* pkt, size_t size, FrameSink sink) {
  if (rtp::looks_like_rtcp(pkt, size)) {
    ++stats_.rtcp;
    return;
  }
  rtp::Header h;
  if (rtp::parse(pkt, size, h) != rtp::Error::None) {
    ++stats_.malformed;
    return;
  }
  if (cfg_.payload_type >= 0 && h.payload_type != cfg_.payload_type) {
    ++stats_.wrong_pt;
    return;
  }
  if (!have_ssrc_) {
    have_ssrc_ = true;
    ssrc_ = h.ssrc;
  }
  bool switched = false;
  if (h.ssrc != ssrc_) {
    // Another source: ignored, unless it keeps coming (the device restarted with a new SSRC; the
    // reordering buffer restarts on it, dropping what it held of the old one).
    other_count_ = h.ssrc == other_ssrc_ ? other_count_ + 1 : 1;
    other_ssrc_ = h.ssrc;
    if (other_count_ < cfg_.ssrc_switch_after) {
      ++stats_.wrong_ssrc;
      return;
    }
    ++stats_.ssrc_changes;
    ssrc_ = h.ssrc;
    demux_.reset();
    switched = true;
  }
  other_count_ = 0;
  ++stats_.packets;
  uint16_t ahead = static_cast<uint16_t>(h.seq - rb_.next_seq());
  bool behind = ahead >= 0x8000;
  // A gap nothing will fill: TCP (in order), or a packet too large to wait a whole window ahead.
  // What is held goes first, then this packet after the gap.
  bool give_up = !switched && stats_.packets > 1 && !behind && ahead &&
                 (cfg_.reorder_window == 0 || (size > rb_.max_packet() && ahead >= rb_.depth()));
  if (give_up) pop_due(UINT64_MAX, sink);
  uint32_t gap = 0;
  if (rb_.take_next(pkt, size, give_up ? &gap : nullptr)) {  // from the caller's bytes, then what it freed
    if (gap) {
      stats_.lost += gap;
      demux_.mark_loss(sink);
    }
    deliver(pkt + h.header_len, h.payload_len, h.marker, sink);
    pop_due(0, sink);
    return;
  }
  if (size > rb_.max_packet()) {
    ++(behind ? stats_.late : stats_.too_large);  // too large to wait: its gap will be declared lost
    return;
  }
  const ReorderStats& rs = rb_.stats();
  uint64_t restarts = rs.restarts, dropped = rs.dropped;
  switch (rb_.push(pkt, size, 0)) {
    case ReorderBuffer::Push::Duplicate:
      ++(behind ? stats_.late : stats_.duplicates);  // behind: delivered already, or given up on
      return;
    case ReorderBuffer::Push::Bad:
      ++stats_.stray;
      return;
    case ReorderBuffer::Push::Queued:
      break;
  }
  if (rs.restarts != restarts) {
    // A far jump the next packet confirmed: a new sequence; what was held of the old one is gone.
    ++stats_.restarts;
    stats_.lost += rs.dropped - dropped;
    demux_.mark_loss(sink);
  } else if (cfg_.reorder_window) {
    ++stats_.reordered;
  }
  // TCP (no window): nothing waits, a gap is a loss at once.
  pop_due(cfg_.reorder_window ? 0 : UINT64_MAX, sink);
}

}  // namespace junction::media
