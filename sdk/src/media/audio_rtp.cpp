// G.711 (RFC 3551) and Opus (RFC 7587) <-> RTP: one codec frame per packet.
#include <junction/media/audio_rtp.hpp>

#include <cstring>

namespace junction::media {

namespace {
uint32_t audio_clock(uint32_t codec) {
  switch (codec) {
    case JN_CODEC_PCMA:
    case JN_CODEC_PCMU: return 8000;
    case JN_CODEC_OPUS: return 48000;  // RFC 7587 4.1: always 48000, whatever the audio rate
    default: return 0;
  }
}
}  // namespace

AudioDepacketizer::AudioDepacketizer(const DepacketizerConfig& cfg)
    : RtpDepacketizer(cfg, JN_MEDIA_AUDIO, audio_clock(cfg.codec)) {
  if (audio_clock(cfg.codec) == 0) fail_init(RtpError::BadConfig);
}

RtpError AudioDepacketizer::on_payload(const proto::rtp::Header&, int64_t pts, const uint8_t* p, size_t n, bool,
                                       FrameSink sink) {
  // Each lost packet was one whole frame: the frame numbers skip them.
  if (lost_before_) skip_frames(lost_before_);
  emit(sink, p, n, pts, 0);
  return RtpError::None;
}

AudioPacketizer::AudioPacketizer(const PacketizerConfig& cfg, uint32_t codec)
    : RtpPacketizer(cfg, audio_clock(codec)), codec_(codec) {
  if (audio_clock(codec) == 0) fail_init(RtpError::BadConfig);
}

RtpError AudioPacketizer::on_frame(const FrameView& f, uint32_t ts, PacketSink sink) {
  if (f.size == 0) return RtpError::BadFrame;
  const size_t r = room();
  if (codec_ == JN_CODEC_OPUS && f.size > r) return RtpError::TooLarge;  // an Opus packet is never split
  if (f.meta.frame_flags & JN_MF_DISCONT) talkspurt_ = true;
  // G.711: one byte per sample, so a long frame splits at any byte; the timestamp follows.
  for (size_t off = 0; off < f.size;) {
    size_t take = f.size - off < r ? f.size - off : r;
    std::memcpy(payload(), f.data + off, take);
    send(sink, take, ts + static_cast<uint32_t>(off), talkspurt_);
    talkspurt_ = false;
    off += take;
  }
  return RtpError::None;
}

}  // namespace junction::media
