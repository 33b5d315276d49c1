// A fix-up of our own offers' SDP text (string work only, unit-tested on its own).
#pragma once

#include <string>

namespace verto {

// build_offer numbers dynamic payload types from 96 in every m-line, so audio and video of one
// BUNDLE group can share a pt, which BUNDLE's demultiplexing by pt cannot tell apart (opus 96 and
// VP8 96). Until the SDK numbers them across the group, later m-lines get fresh numbers here
// (their m= formats and a=rtpmap / a=fmtp / a=rtcp-fb lines).
std::string unique_bundle_pts(const std::string& sdp);

}  // namespace verto
