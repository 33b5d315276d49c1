// Audio codecs whose RTP payload is one codec frame: PCMA / PCMU (RFC 3551 4.5.14, 8000 Hz, one
// byte per sample) and Opus (RFC 7587, RTP clock always 48000, one Opus packet per RTP packet).
// Receive: each packet is one frame (pts = its timestamp). Send: an Opus packet must fit the MTU
// (else TooLarge); a G.711 frame larger than the MTU is split into packets whose timestamps
// advance by the samples before them. The marker is set on the first packet of the stream and
// after a JN_MF_DISCONT (the start of a talkspurt, RFC 3551 4.1).
#pragma once

#include <junction/media/rtp_packetizer.hpp>

namespace junction::media {

class AudioDepacketizer : public RtpDepacketizer {
 public:
  // cfg.codec: JN_CODEC_PCMA, JN_CODEC_PCMU or JN_CODEC_OPUS (others fail ok()).
  explicit AudioDepacketizer(const DepacketizerConfig& cfg);

 private:
  RtpError on_payload(const proto::rtp::Header& h, int64_t pts, const uint8_t* p, size_t n, bool gap,
                      FrameSink sink) override;
};

class AudioPacketizer : public RtpPacketizer {
 public:
  AudioPacketizer(const PacketizerConfig& cfg, uint32_t codec);

 private:
  RtpError on_frame(const FrameView& f, uint32_t ts, PacketSink sink) override;
  uint32_t codec_;
  bool talkspurt_ = true;
};

}  // namespace junction::media
