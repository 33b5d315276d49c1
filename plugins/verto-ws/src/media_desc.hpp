// Signalling-level media description of a browser's SDP: the jn_media_desc the core carries
// (kind, first codec, direction, mid, ICE credentials, fingerprint, setup), read with the SDK's
// generic SDP parser. The SDP itself travels beside it as call metadata ("app-verto-sdp") so a
// verto leg on the other side gets the browser's text unchanged. The WebRTC termination
// (sdk/webrtc PeerConnection per leg) replaces this once it lands (README, "Media").
#pragma once

#include <junction/abi.h>

#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace verto {

class MediaDesc {
 public:
  // false (with why) when the text is not SDP; an empty text gives an empty description.
  bool parse(std::string_view sdp, std::string& why);
  const jn_media_desc* desc() const { return count_ ? &desc_ : nullptr; }
  size_t size() const { return count_; }

 private:
  std::deque<std::string> text_;  // stable storage for every jn_str
  std::vector<jn_media_stream> streams_;
  std::vector<const jn_media_stream*> ptrs_;
  jn_media_desc desc_{};
  size_t count_ = 0;
  jn_str keep(std::string_view s);
};

}  // namespace verto
