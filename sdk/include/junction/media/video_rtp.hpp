// The machinery H.264 (RFC 6184) and H.265 (RFC 7798) share: access units assembled from single
// NAL unit packets, aggregation packets (STAP-A / AP) and fragmentation units (FU-A / FU) into
// Annex-B frames, and the reverse. Use the codec classes (h264_rtp.hpp, h265_rtp.hpp).
//
// Receive: an access unit ends at the marker bit (or when the timestamp changes, for senders that
// omit the marker). A keyframe (IDR / IRAP) without parameter sets in the unit gets the last ones
// seen (in band or from the fmtp's sprop-*) injected before it (after an AUD when there is one),
// and JN_MF_CONFIG. The last VPS/SPS/PPS of each kind is kept (one each, up to kMaxParamSet bytes).
// Send: NAL units that fit are aggregated (STAP-A / AP, packetization-mode 1) while they fit the
// MTU, larger ones fragmented (FU-A / FU); the marker is on the last packet of the unit.
// Both ways, a NAL unit must re-parse as itself in an Annex-B frame: one that contains a start
// code (00 00 01) is refused (receive: BadPayload and the unit dropped), and zero bytes at its
// end (trailing_zero_8bits some senders include) are left out; NAL unit types RTP cannot carry
// (H.264 0, 24-31; H.265 48-63) are refused both ways (send: BadFrame).
#pragma once

#include <junction/media/rtp_packetizer.hpp>

namespace junction::media {

class VideoDepacketizer : public RtpDepacketizer {
 public:
  static constexpr size_t kMaxParamSet = 512;
  static constexpr size_t kDefaultMaxFrame = 4u << 20;

  // The parameter sets kept for injection (for tests and for a producer's SDP).
  std::string_view param_set(uint8_t nal_type) const;

 protected:
  VideoDepacketizer(const DepacketizerConfig& cfg, bool hevc);
  // Stores a parameter set (from the fmtp or the stream); ignores ones too large.
  void store_param_set(const uint8_t* nal, size_t n);
  // Stores each parameter set of an fmtp sprop-* value (base64, comma-separated); false on a
  // broken one.
  bool store_sprop(std::string_view list);

 private:
  RtpError on_payload(const proto::rtp::Header& h, int64_t pts, const uint8_t* p, size_t n, bool gap,
                      FrameSink sink) override;
  void on_flush(FrameSink sink) override;
  void on_reset() override;
  RtpError append_nal(const uint8_t* nal, size_t n);
  void note_nal(const uint8_t* nal, size_t n);
  void finish_au(FrameSink sink);
  uint8_t nal_type(const uint8_t* nal) const;

  struct ParamSet {
    uint8_t type = 0;
    size_t len = 0;
    uint8_t data[kMaxParamSet];
  };
  bool hevc_;
  size_t hdr_len_;  // NAL unit header: 1 (H.264) or 2 (H.265)
  ParamSet ps_[3];  // H.264: SPS, PPS; H.265: VPS, SPS, PPS
  size_t ps_count_;
  std::unique_ptr<uint8_t[]> buf_;
  size_t headroom_ = 0;  // room in front of the unit for injected parameter sets
  size_t cap_ = 0;       // bytes after the headroom
  size_t len_ = 0;
  bool open_ = false;
  bool damaged_ = false;
  bool key_ = false;
  bool has_ps_ = false;
  size_t aud_len_ = 0;  // the unit starts with an AUD of this many bytes (start code included)
  uint32_t ts_ = 0;
  int64_t pts_ = 0;
  bool fu_open_ = false;
  size_t fu_start_ = 0;  // offset of the fragmented NAL unit's header
};

class VideoPacketizer : public RtpPacketizer {
 public:
  static constexpr size_t kMaxNals = 1024;  // NAL units per access unit

 protected:
  VideoPacketizer(const PacketizerConfig& cfg, bool hevc, bool aggregate);

 private:
  RtpError on_frame(const FrameView& f, uint32_t ts, PacketSink sink) override;
  void send_aggregate(PacketSink sink, size_t first, size_t count, uint32_t ts, bool marker);
  void send_fragments(PacketSink sink, const uint8_t* nal, size_t n, uint32_t ts, bool marker);

  struct Nal {
    const uint8_t* p;
    size_t n;
  };
  bool hevc_;
  bool aggregate_;
  size_t hdr_len_;
  std::unique_ptr<Nal[]> nals_;
};

}  // namespace junction::media
