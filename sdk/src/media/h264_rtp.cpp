// H.264 over RTP (RFC 6184): configuration from the fmtp; the rest is video_rtp.cpp.
#include <junction/media/annexb.hpp>
#include <junction/media/h264_rtp.hpp>
#include <junction/util/encoding.hpp>

namespace junction::media {

namespace {
DepacketizerConfig with_codec(DepacketizerConfig c, uint32_t codec) {
  c.codec = codec;
  return c;
}
}  // namespace

H264Depacketizer::H264Depacketizer(const DepacketizerConfig& cfg) : VideoDepacketizer(with_codec(cfg, JN_CODEC_H264), false) {
  if (!ok()) return;
  uint32_t mode = 0;
  if (!fmtp_uint(cfg.fmtp, "packetization-mode", 0, mode)) { fail_init(RtpError::BadConfig); return; }
  if (mode > 1) { fail_init(RtpError::Unsupported); return; }  // interleaved mode 2
  if (!store_sprop(fmtp_value(cfg.fmtp, "sprop-parameter-sets"))) fail_init(RtpError::BadConfig);
}

H264Packetizer::H264Packetizer(const PacketizerConfig& cfg, int packetization_mode)
    : VideoPacketizer(cfg, false, packetization_mode == 1) {
  if (packetization_mode != 0 && packetization_mode != 1) fail_init(RtpError::BadConfig);
}

std::string h264_sprop_parameter_sets(const uint8_t* annexb, size_t size) {
  std::string sps, pps;
  annexb::for_each_nal(annexb, size, [&](const uint8_t* p, size_t n) {
    std::string_view nal(reinterpret_cast<const char*>(p), n);
    uint8_t t = annexb::h264::type(p[0]);
    if (t == annexb::h264::kSps && sps.empty()) sps = util::base64_encode(nal);
    if (t == annexb::h264::kPps && pps.empty()) pps = util::base64_encode(nal);
    return true;
  });
  if (sps.empty() || pps.empty()) return {};
  return sps + "," + pps;
}

}  // namespace junction::media
