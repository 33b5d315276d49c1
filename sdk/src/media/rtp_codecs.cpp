// rtpmap encoding names -> sdk/media depacketizers and packetizers.
#include <junction/media/aac_rtp.hpp>
#include <junction/media/audio_rtp.hpp>
#include <junction/media/h264_rtp.hpp>
#include <junction/media/h265_rtp.hpp>
#include <junction/media/rtp_codecs.hpp>

#include <cctype>
#include <new>

namespace junction::media {

namespace {
bool same(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}
template <typename T, typename... A>
std::unique_ptr<T> make(A&&... a) {
  return std::unique_ptr<T>(new (std::nothrow) T(std::forward<A>(a)...));
}
}  // namespace

uint32_t codec_from_rtpmap(std::string_view e) {
  if (same(e, "H264")) return JN_CODEC_H264;
  if (same(e, "H265")) return JN_CODEC_H265;
  if (same(e, "PCMA")) return JN_CODEC_PCMA;
  if (same(e, "PCMU")) return JN_CODEC_PCMU;
  if (same(e, "opus")) return JN_CODEC_OPUS;
  if (same(e, "MPEG4-GENERIC")) return JN_CODEC_AAC;
  return JN_CODEC_NONE;
}

std::unique_ptr<RtpDepacketizer> make_depacketizer(std::string_view encoding, uint32_t clock_rate, int pt,
                                                   std::string_view fmtp, uint16_t track) {
  DepacketizerConfig c;
  c.codec = codec_from_rtpmap(encoding);
  c.clock_rate = clock_rate;
  c.payload_type = pt;
  c.fmtp = fmtp;
  c.track = track;
  switch (c.codec) {
    case JN_CODEC_H264: return make<H264Depacketizer>(c);
    case JN_CODEC_H265: return make<H265Depacketizer>(c);
    case JN_CODEC_PCMA:
    case JN_CODEC_PCMU:
    case JN_CODEC_OPUS: return make<AudioDepacketizer>(c);
    case JN_CODEC_AAC: return make<AacDepacketizer>(c);
    default: return nullptr;
  }
}

std::unique_ptr<RtpPacketizer> make_packetizer(std::string_view encoding, const PacketizerConfig& cfg,
                                               std::string_view fmtp) {
  uint32_t codec = codec_from_rtpmap(encoding);
  switch (codec) {
    case JN_CODEC_H264: {
      uint32_t mode = 0;
      if (!fmtp_uint(fmtp, "packetization-mode", 0, mode)) mode = 2;  // fails ok(): BadConfig
      return make<H264Packetizer>(cfg, static_cast<int>(mode));
    }
    case JN_CODEC_H265: return make<H265Packetizer>(cfg);
    case JN_CODEC_PCMA:
    case JN_CODEC_PCMU:
    case JN_CODEC_OPUS: return make<AudioPacketizer>(cfg, codec);
    case JN_CODEC_AAC: return make<AacPacketizer>(cfg);
    default: return nullptr;
  }
}

}  // namespace junction::media
