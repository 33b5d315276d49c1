// AAC over RTP, RFC 3640 mpeg4-generic (mode=AAC-hbr: sizeLength=13, indexLength=3,
// indexDeltaLength=3; the AU header sizes are read from the fmtp, so AAC-lbr works too).
// Receive: each AU header's access unit becomes one raw AAC frame (pts = RTP timestamp + i *
// constantDuration, default 1024); an AU fragmented over packets of one timestamp is reassembled;
// the fmtp's config= (AudioSpecificConfig, hex) is emitted first as a JN_MF_CONFIG frame.
// Interleaving (a nonzero index delta) and the optional CTS/DTS/RAP fields are refused.
// Send: one AU per packet (fragmented when larger than the MTU, marker on the last fragment);
// JN_MF_CONFIG frames are kept for config_hex() and not sent (they travel in the SDP).
#pragma once

#include <junction/media/rtp_packetizer.hpp>

#include <string>

namespace junction::media {

class AacDepacketizer : public RtpDepacketizer {
 public:
  static constexpr size_t kMaxConfig = 64;
  static constexpr size_t kDefaultMaxFrame = 8192;
  explicit AacDepacketizer(const DepacketizerConfig& cfg);

 private:
  RtpError on_payload(const proto::rtp::Header& h, int64_t pts, const uint8_t* p, size_t n, bool gap,
                      FrameSink sink) override;
  void on_reset() override;
  void emit_au(FrameSink sink, const uint8_t* d, size_t n, int64_t pts);

  uint32_t size_len_ = 13, index_len_ = 3, delta_len_ = 3, duration_ = 1024;
  uint8_t config_[kMaxConfig];
  size_t config_len_ = 0;
  bool config_sent_ = false;
  std::unique_ptr<uint8_t[]> frag_;
  size_t frag_cap_ = 0;
  size_t frag_len_ = 0;
  size_t frag_total_ = 0;  // the fragmented AU's size (0: none open)
  uint32_t frag_ts_ = 0;
  int64_t frag_pts_ = 0;
  bool frag_damaged_ = false;
};

class AacPacketizer : public RtpPacketizer {
 public:
  // cfg.clock_rate: the sample rate (required).
  explicit AacPacketizer(const PacketizerConfig& cfg);
  // The AudioSpecificConfig last seen in a JN_MF_CONFIG frame, as the fmtp's config= hex.
  std::string config_hex() const;

 private:
  RtpError on_frame(const FrameView& f, uint32_t ts, PacketSink sink) override;
  uint8_t config_[AacDepacketizer::kMaxConfig];
  size_t config_len_ = 0;
};

}  // namespace junction::media
