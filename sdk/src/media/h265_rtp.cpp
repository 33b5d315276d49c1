// H.265 over RTP (RFC 7798): configuration from the fmtp; the rest is video_rtp.cpp.
#include <junction/media/annexb.hpp>
#include <junction/media/h265_rtp.hpp>
#include <junction/util/encoding.hpp>


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

std::string h265_sprop_parameters(const uint8_t* annexb, size_t size) {
  std::string vps, sps, pps;
  annexb::for_each_nal(annexb, size, [&](const uint8_t* p, size_t n) {
    std::string_view nal(reinterpret_cast<const char*>(p), n);
    uint8_t t = annexb::h265::type(p[0]);
    if (t == annexb::h265::kVps && vps.empty()) vps = util::base64_encode(nal);
    if (t == annexb::h265::kSps && sps.empty()) sps = util::base64_encode(nal);
    if (t == annexb::h265::kPps && pps.empty()) pps = util::base64_encode(nal);
    return true;
  });
  if (vps.empty() || sps.empty() || pps.empty()) return {};
  return "sprop-vps=" + vps + ";sprop-sps=" + sps + ";sprop-pps=" + pps;
}

}  // namespace junction::media
