// Media frames -> RTP: the part every packetizer shares (sdk/media). A packetizer turns one frame
// (junction/media_frame.h conventions) into RTP packets no larger than the MTU, each handed to a
// sink during the call, with consecutive sequence numbers, the frame's timestamp and the marker
// bit the payload format asks for. One packet buffer of `mtu` bytes is allocated at construction;
// nothing per packet; nothing thrown.
#pragma once

#include <junction/media/rtp_depacketizer.hpp>

namespace junction::media {

// Receives each packet; the bytes are valid only during the call.
struct PacketSink {
  void* ctx = nullptr;
  void (*fn)(void* ctx, const uint8_t* pkt, size_t len) = nullptr;
  void operator()(const uint8_t* p, size_t n) const {
    if (fn) fn(ctx, p, n);
  }
};
template <typename F>
PacketSink packet_sink(F& f) {
  return PacketSink{&f, [](void* c, const uint8_t* p, size_t n) { (*static_cast<F*>(c))(p, n); }};
}

struct PacketizerConfig {
  uint8_t payload_type = 96;
  uint32_t ssrc = 0;
  uint16_t first_seq = 0;   // pick it at random for a real session (RFC 3550 5.1)
  uint32_t ts_offset = 0;   // added to every timestamp (random for a real session)
  uint32_t clock_rate = 0;  // the RTP clock; 0: the codec's (90000 video, 8000 G.711, 48000 Opus)
  size_t mtu = 1200;        // largest RTP packet (header + payload), at least 64
};

struct PacketizerStats {
  uint64_t frames = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t refused = 0;  // frames refused (empty, too large for the mode)
};

class RtpPacketizer {
 public:
  explicit RtpPacketizer(const PacketizerConfig& cfg, uint32_t default_clock);
  virtual ~RtpPacketizer() = default;
  RtpPacketizer(const RtpPacketizer&) = delete;
  RtpPacketizer& operator=(const RtpPacketizer&) = delete;

  bool ok() const { return init_error_ == RtpError::None; }
  RtpError error() const { return init_error_; }
  // Packetizes one frame. The RTP timestamp is meta.pts (rescaled when meta.clock_rate differs
  // from the RTP clock) + ts_offset. Returns None, or why the frame was refused (nothing sent).
  RtpError packetize(const FrameView& f, PacketSink sink);
  uint16_t next_seq() const { return seq_; }
  uint32_t clock_rate() const { return cfg_.clock_rate; }
  const PacketizerStats& stats() const { return stats_; }

 protected:
  virtual RtpError on_frame(const FrameView& f, uint32_t ts, PacketSink sink) = 0;
  // Payload room of one packet and where it starts in the packet buffer.
  size_t room() const { return cfg_.mtu - proto::rtp::kFixedHeader; }
  uint8_t* payload() { return buf_.get() + proto::rtp::kFixedHeader; }
  // Sends the packet buffer with `n` payload bytes.
  void send(PacketSink sink, size_t n, uint32_t ts, bool marker);
  void fail_init(RtpError e) { init_error_ = e; }

  PacketizerConfig cfg_;
  PacketizerStats stats_;

 private:
  std::unique_ptr<uint8_t[]> buf_;
  RtpError init_error_ = RtpError::None;
  uint16_t seq_ = 0;
};

}  // namespace junction::media
