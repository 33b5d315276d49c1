// From an SDP's rtpmap to the sdk/media converter for it: one call a plugin makes when a
// session's media is negotiated (setup time: the objects are allocated here, never per packet).
#pragma once

#include <junction/media/rtp_packetizer.hpp>

#include <memory>
#include <string_view>

namespace junction::media {

// The JN_CODEC_* for an rtpmap encoding name ("H264", "H265", "PCMA", "PCMU", "opus",
// "MPEG4-GENERIC"; any case), or JN_CODEC_NONE.
uint32_t codec_from_rtpmap(std::string_view encoding);

// A depacketizer for the payload type `pt` with rtpmap `encoding`/`clock_rate` and the fmtp's
// parameters; null for an encoding sdk/media does not handle. Check ok() on the result (a
// broken fmtp fails it; error() says why).
std::unique_ptr<RtpDepacketizer> make_depacketizer(std::string_view encoding, uint32_t clock_rate, int pt,
                                                   std::string_view fmtp, uint16_t track = 0);
// A packetizer for `encoding` (cfg.clock_rate: the rtpmap's); H.264 in the fmtp's
// packetization-mode (0 when absent, as RFC 6184 says). Null for an unknown encoding.
std::unique_ptr<RtpPacketizer> make_packetizer(std::string_view encoding, const PacketizerConfig& cfg,
                                               std::string_view fmtp = {});

}  // namespace junction::media
