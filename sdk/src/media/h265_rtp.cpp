// H.265 over RTP (RFC 7798): configuration from the fmtp; the rest is video_rtp.cpp.
#include <junction/media/h265_rtp.hpp>

#include <functional>

namespace junction::media {

bool store_sprop_list(std::string_view list, const std::function<void(const uint8_t*, size_t)>& store);

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
  auto store = [this](const uint8_t* p, size_t n) { store_param_set(p, n); };
  for (const char* key : {"sprop-vps", "sprop-sps", "sprop-pps"})
    if (!store_sprop_list(fmtp_value(cfg.fmtp, key), store)) { fail_init(RtpError::BadConfig); return; }
}

H265Packetizer::H265Packetizer(const PacketizerConfig& cfg) : VideoPacketizer(cfg, true, true) {}

}  // namespace junction::media
