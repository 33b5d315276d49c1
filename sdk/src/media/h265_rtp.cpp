// H.265 over RTP (RFC 7798): configuration from the fmtp; the rest is video_rtp.cpp.
#include <junction/media/h265_rtp.hpp>


namespace junction::media {

namespace {
DepacketizerConfig hevc_config(DepacketizerConfig c) {
  c.codec = JN_CODEC_H265;
  return c;
}
}  // namespace

H265Depacketizer::H265Depacketizer(const DepacketizerConfig& cfg) : VideoDepacketizer(hevc_config(cfg), true) {
  if (!ok()) return;
  uint32_t don = 0;
  if (!fmtp_uint(cfg.fmtp, "sprop-max-don-diff", 0, don)) { fail_init(RtpError::BadConfig); return; }
  if (don > 0) { fail_init(RtpError::Unsupported); return; }  // DONL fields in every packet
  for (const char* key : {"sprop-vps", "sprop-sps", "sprop-pps"})
    if (!store_sprop(fmtp_value(cfg.fmtp, key))) { fail_init(RtpError::BadConfig); return; }
}

H265Packetizer::H265Packetizer(const PacketizerConfig& cfg) : VideoPacketizer(cfg, true, true) {}

}  // namespace junction::media
