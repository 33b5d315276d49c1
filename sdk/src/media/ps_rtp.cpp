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

PsRtpReceiver::PsRtpReceiver(const PsRtpReceiverConfig& cfg) : cfg_(cfg), demux_(cfg.demux) {
  have_ssrc_ = !cfg_.ssrc_from_first;
  ssrc_ = cfg_.ssrc;
  if (cfg_.reorder_window) {
    slots_.resize(cfg_.reorder_window * cfg_.max_packet);
    slot_len_.assign(cfg_.reorder_window, 0);
    slot_seq_.assign(cfg_.reorder_window, -1);
    slot_marker_.assign(cfg_.reorder_window, 0);
  }
}

void PsRtpReceiver::deliver(const uint8_t* payload, size_t size, bool marker, PsDemuxer::Sink& sink) {
  demux_.feed(payload, size, sink);
  if (marker) demux_.frame_end(sink);
}

void PsRtpReceiver::drain(PsDemuxer::Sink& sink) {
  while (held_) {
    size_t slot = expected_ % cfg_.reorder_window;
    if (slot_seq_[slot] != expected_) break;
    slot_seq_[slot] = -1;
    --held_;
    ++expected_;
    deliver(slots_.data() + slot * cfg_.max_packet, slot_len_[slot], slot_marker_[slot] != 0, sink);
  }
}

// Gives up on the packet at expected_: the next held one follows a loss.
void PsRtpReceiver::skip_gap(PsDemuxer::Sink& sink) {
  for (size_t i = 1; i < cfg_.reorder_window; ++i) {
    uint16_t s = static_cast<uint16_t>(expected_ + i);
    if (slot_seq_[s % cfg_.reorder_window] == s) {
      stats_.lost += i;
      expected_ = s;
      demux_.mark_loss(sink);
      drain(sink);
      return;
    }
  }
}

void PsRtpReceiver::flush_reorder(PsDemuxer::Sink& sink) {
  while (held_) skip_gap(sink);
}

void PsRtpReceiver::finish(PsDemuxer::Sink& sink) {
  flush_reorder(sink);
  demux_.flush(sink);
}

namespace {
constexpr uint32_t kRtpBlobMagic = 0x50535231;  // "PSR1"
}

void PsRtpReceiver::save(std::vector<uint8_t>& out) const {
  BlobWriter w{out};
  w.put(kRtpBlobMagic);
  w.put(stats_), w.put(have_ssrc_), w.put(ssrc_), w.put(other_ssrc_), w.put(other_count_), w.put(started_), w.put(expected_);
  w.put(static_cast<uint64_t>(held_));
  for (size_t i = 0; i < slot_seq_.size(); ++i) {
    if (slot_seq_[i] < 0) continue;
    w.put(static_cast<uint16_t>(slot_seq_[i]));
    w.put(slot_marker_[i]);
    w.bytes(slots_.data() + i * cfg_.max_packet, slot_len_[i]);
  }
  std::vector<uint8_t> d;
  demux_.save(d);
  w.bytes(d);
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
  started_ = r.flag(), expected_ = r.get<uint16_t>();
  auto held = r.get<uint64_t>();
  if (!r.ok || held > 65536) return fail();
  held_ = 0;
  std::fill(slot_seq_.begin(), slot_seq_.end(), -1);
  for (uint64_t k = 0; k < held; ++k) {
    auto seq = r.get<uint16_t>();
    auto marker = r.get<uint8_t>();
    const uint8_t* p = nullptr;
    size_t n = 0;
    if (!r.view(&p, &n, 65535)) return fail();
    // Held packets fit this receiver's window if its configuration is the same; one that does
    // not is given up (its gap is then declared lost, as a reorder flush would).
    auto d = static_cast<uint16_t>(seq - expected_);
    if (cfg_.reorder_window == 0 || d == 0 || d >= cfg_.reorder_window || n > cfg_.max_packet) continue;
    size_t slot = seq % cfg_.reorder_window;
    if (slot_seq_[slot] >= 0) continue;
    std::memcpy(slots_.data() + slot * cfg_.max_packet, p, n);
    slot_len_[slot] = static_cast<uint32_t>(n);
    slot_seq_[slot] = seq;
    slot_marker_[slot] = marker;
    ++held_;
  }
  const uint8_t* dp = nullptr;
  size_t dn = 0;
  if (!r.view(&dp, &dn, size) || r.n != 0) return fail();
  if (!demux_.restore(dp, dn)) return fail();
  return true;
}

void PsRtpReceiver::on_rtp(const uint8_t* pkt, size_t size, PsDemuxer::Sink& sink) {
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
  if (h.ssrc != ssrc_) {
    // Another source: ignored, unless it keeps coming (the device restarted with a new SSRC).
    other_count_ = h.ssrc == other_ssrc_ ? other_count_ + 1 : 1;
    other_ssrc_ = h.ssrc;
    if (other_count_ < cfg_.ssrc_switch_after) {
      ++stats_.wrong_ssrc;
      return;
    }
    ++stats_.ssrc_changes;
    ssrc_ = h.ssrc;
    other_count_ = 0;
    started_ = false;
    held_ = 0;
    std::fill(slot_seq_.begin(), slot_seq_.end(), -1);
    demux_.reset();
  }
  other_count_ = 0;
  const uint8_t* payload = pkt + h.header_len;
  size_t len = h.payload_len;
  ++stats_.packets;
  if (!started_) {
    started_ = true;
    expected_ = h.seq;
  }
  auto d = static_cast<int16_t>(static_cast<uint16_t>(h.seq - expected_));
  if (d < 0 && d > -512) {  // already delivered, or given up on
    ++stats_.late;
    return;
  }
  if (d == 0) {
    ++expected_;
    deliver(payload, len, h.marker, sink);
    drain(sink);
    return;
  }
  size_t window = cfg_.reorder_window;
  if (d > 0 && window) {
    // Too far ahead to wait for everything before it: give up the oldest gaps first.
    while (static_cast<size_t>(d) >= window && held_) {
      skip_gap(sink);
      d = static_cast<int16_t>(static_cast<uint16_t>(h.seq - expected_));
    }
    if (d == 0) {
      ++expected_;
      deliver(payload, len, h.marker, sink);
      drain(sink);
      return;
    }
  }
  if (d > 0 && static_cast<size_t>(d) < window) {
    size_t slot = h.seq % window;
    if (slot_seq_[slot] == h.seq) {
      ++stats_.duplicates;
      return;
    }
    if (len > cfg_.max_packet) {
      ++stats_.too_large;  // cannot wait: its gap will be declared lost
      return;
    }
    std::memcpy(slots_.data() + slot * cfg_.max_packet, payload, len);
    slot_len_[slot] = static_cast<uint32_t>(len);
    slot_seq_[slot] = h.seq;
    slot_marker_[slot] = h.marker ? 1 : 0;
    ++held_;
    ++stats_.reordered;
    // Waiting longer than the window holds would reorder nothing more: give up the oldest gap.
    if (held_ + 1 >= window) skip_gap(sink);
    return;
  }
  // Beyond the window (or no window, or a restart far back): what is held goes first, then the
  // gap up to this packet is lost.
  flush_reorder(sink);
  auto gap = static_cast<int16_t>(static_cast<uint16_t>(h.seq - expected_));
  if (gap != 0) {
    stats_.lost += gap > 0 ? static_cast<uint64_t>(gap) : 0;
    demux_.mark_loss(sink);
  }
  expected_ = static_cast<uint16_t>(h.seq + 1);
  deliver(payload, len, h.marker, sink);
}

}  // namespace junction::media
