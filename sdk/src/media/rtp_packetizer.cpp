// Frames -> RTP, the shared part: the packet buffer, the header, sequence numbers, timestamps.
#include <junction/media/rtp_packetizer.hpp>

namespace junction::media {

RtpPacketizer::RtpPacketizer(const PacketizerConfig& cfg, uint32_t default_clock) : cfg_(cfg), seq_(cfg.first_seq) {
  if (cfg_.clock_rate == 0) cfg_.clock_rate = default_clock;
  if (cfg_.clock_rate == 0 || cfg_.mtu < 64 || cfg_.mtu > 65535 || cfg_.payload_type > 127) {
    fail_init(RtpError::BadConfig);
    return;
  }
  buf_ = alloc_bytes(cfg_.mtu);
  if (!buf_) fail_init(RtpError::NoMemory);
}

RtpError RtpPacketizer::packetize(const FrameView& f, PacketSink sink) {
  if (!ok()) return init_error_;
  if (!f.data && f.size) return RtpError::BadFrame;
  int64_t pts = f.meta.pts;
  if (f.meta.clock_rate && f.meta.clock_rate != cfg_.clock_rate) {
    // Rescale without overflow for any plausible pts (seconds * rate fits easily in 64 bits).
    pts = pts / f.meta.clock_rate * cfg_.clock_rate + pts % f.meta.clock_rate * cfg_.clock_rate / f.meta.clock_rate;
  }
  uint32_t ts = static_cast<uint32_t>(static_cast<uint64_t>(pts)) + cfg_.ts_offset;
  RtpError e = on_frame(f, ts, sink);
  if (e == RtpError::None)
    ++stats_.frames;
  else
    ++stats_.refused;
  return e;
}

void RtpPacketizer::send(PacketSink sink, size_t n, uint32_t ts, bool marker) {
  uint8_t* p = buf_.get();
  p[0] = 0x80;  // version 2, no padding, no extension, no CSRC
  p[1] = static_cast<uint8_t>((marker ? 0x80 : 0) | cfg_.payload_type);
  proto::rtp::wr16(p + 2, seq_++);
  proto::rtp::wr32(p + 4, ts);
  proto::rtp::wr32(p + 8, cfg_.ssrc);
  ++stats_.packets;
  stats_.bytes += proto::rtp::kFixedHeader + n;
  sink(p, proto::rtp::kFixedHeader + n);
}

}  // namespace junction::media
