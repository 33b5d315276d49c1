// VP8 over RTP (RFC 7741). A bus frame is one raw VP8 frame (the compressed frame a decoder
// takes, no IVF or other container); JN_MF_KEY when its frame tag says key frame (P bit 0).
//
// Receive: the payload descriptor (X, N, S, PartID and the I/L/T/K extension: PictureID 7 or 15
// bits, TL0PICIDX, TID/KEYIDX) is skipped; a frame starts at S=1 with PartID 0 and ends at the
// marker bit (or when the timestamp changes, for a sender that lost its marker). A frame with a
// missing packet, or whose start was lost, is dropped whole (loss rules of rtp_depacketizer.hpp).
// Send: one descriptor byte per packet (S on the first, PartID 0, no extension), the frame cut
// at the MTU, the marker on the last packet.
#pragma once

#include <junction/media/rtp_packetizer.hpp>

namespace junction::media {

class Vp8Depacketizer : public RtpDepacketizer {
 public:
  static constexpr size_t kDefaultMaxFrame = 2u << 20;
  explicit Vp8Depacketizer(const DepacketizerConfig& cfg);

 private:
  RtpError on_payload(const proto::rtp::Header& h, int64_t pts, const uint8_t* p, size_t n, bool gap,
                      FrameSink sink) override;
  void on_flush(FrameSink sink) override;
  void on_reset() override;
  void finish(FrameSink sink);

  std::unique_ptr<uint8_t[]> buf_;
  size_t cap_ = 0;
  size_t len_ = 0;
  bool open_ = false;     // a frame is being assembled (or skipped: damaged_)
  bool damaged_ = false;
  bool key_ = false;
  uint32_t ts_ = 0;
  int64_t pts_ = 0;
};

class Vp8Packetizer : public RtpPacketizer {
 public:
  explicit Vp8Packetizer(const PacketizerConfig& cfg);

 private:
  RtpError on_frame(const FrameView& f, uint32_t ts, PacketSink sink) override;
};

// Whether a VP8 frame (the first bytes of its first partition) is a key frame (RFC 6386 9.1).
inline bool vp8_is_keyframe(const uint8_t* frame, size_t n) { return n >= 3 && (frame[0] & 0x01) == 0; }

}  // namespace junction::media
