// H.264 over RTP (RFC 6184): single NAL unit packets, STAP-A and FU-A; packetization-mode 0
// (single NAL units only) and 1. The modes 2 structures (STAP-B, MTAP16/24, FU-B) are refused
// with RtpError::Unsupported. The fmtp's sprop-parameter-sets seed the SPS/PPS injected before
// keyframes (video_rtp.hpp).
#pragma once

#include <junction/media/video_rtp.hpp>

#include <string>

namespace junction::media {

class H264Depacketizer : public VideoDepacketizer {
 public:
  // cfg.fmtp: sprop-parameter-sets (base64, comma-separated) is read; a broken one fails ok().
  explicit H264Depacketizer(const DepacketizerConfig& cfg);
};

class H264Packetizer : public VideoPacketizer {
 public:
  // packetization_mode 0: one NAL unit per packet, a NAL unit larger than the MTU refuses the
  // frame (NalTooLarge); 1: STAP-A aggregation and FU-A fragmentation.
  H264Packetizer(const PacketizerConfig& cfg, int packetization_mode = 1);
};

// "sprop-parameter-sets" value for an SDP (base64 SPS,PPS) from an Annex-B frame that carries
// them; empty when it has none. Setup-time helper (allocates).
std::string h264_sprop_parameter_sets(const uint8_t* annexb, size_t size);

}  // namespace junction::media
