// H.265 over RTP (RFC 7798): single NAL unit packets, aggregation packets (AP, type 48) and
// fragmentation units (FU, type 49). Decoding order numbers (sprop-max-don-diff > 0) and PACI
// (type 50) are not supported: such an fmtp fails ok(), such a packet returns Unsupported. The
// fmtp's sprop-vps / sprop-sps / sprop-pps seed the parameter sets injected before keyframes.
#pragma once

#include <junction/media/video_rtp.hpp>

#include <string>

namespace junction::media {

class H265Depacketizer : public VideoDepacketizer {
 public:
  explicit H265Depacketizer(const DepacketizerConfig& cfg);
};

class H265Packetizer : public VideoPacketizer {
 public:
  explicit H265Packetizer(const PacketizerConfig& cfg);
};

// "sprop-vps=...;sprop-sps=...;sprop-pps=..." for an SDP's fmtp (base64, the first of each kind)
// from an Annex-B frame that carries all three; empty otherwise. Setup-time helper (allocates).
std::string h265_sprop_parameters(const uint8_t* annexb, size_t size);

}  // namespace junction::media
