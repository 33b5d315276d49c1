#include "media_desc.hpp"

#include <junction/proto/sdp.hpp>

#include <algorithm>
#include <cctype>

namespace verto {

namespace sdp = junction::proto::sdp;

jn_str MediaDesc::keep(std::string_view s) {
  text_.emplace_back(s);
  return jn_str{text_.back().data(), text_.back().size()};
}

bool MediaDesc::parse(std::string_view text, std::string& why) {
  if (text.empty()) return true;
  auto r = sdp::parse(text);
  if (!r) {
    why = "bad SDP at line " + std::to_string(r.line) + ": " + r.error;
    return false;
  }
  const sdp::Session& s = *r.session;
  streams_.reserve(s.media.size());
  for (const sdp::Media& m : s.media) {
    jn_media_stream ms{};
    ms.struct_size = sizeof ms;
    ms.kind = m.media == "audio" ? JN_MEDIA_AUDIO : m.media == "video" ? JN_MEDIA_VIDEO : JN_MEDIA_DATA;
    std::string proto = m.proto;
    std::transform(proto.begin(), proto.end(), proto.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    ms.transport = keep(proto);
    ms.direction = m.has_attr("sendonly") ? JN_DIR_SENDONLY : m.has_attr("recvonly") ? JN_DIR_RECVONLY
                 : m.has_attr("inactive") ? JN_DIR_INACTIVE : JN_DIR_SENDRECV;
    if (m.port == 0) ms.direction = JN_DIR_INACTIVE;
    if (!m.formats.empty() && m.is_rtp()) {
      uint32_t pt = 0;
      for (char c : m.formats.front()) pt = pt * 10 + static_cast<uint32_t>(c - '0');
      ms.payload_type = pt;
      for (auto v : m.attrs("rtpmap")) {  // "111 opus/48000/2"
        size_t sp = v.find(' ');
        if (sp == std::string_view::npos || v.substr(0, sp) != m.formats.front()) continue;
        std::string_view enc = v.substr(sp + 1);
        size_t sl = enc.find('/');
        std::string name(enc.substr(0, sl));
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        ms.format = keep(name);
        if (sl != std::string_view::npos) {
          std::string_view rate = enc.substr(sl + 1);
          rate = rate.substr(0, rate.find('/'));
          uint32_t cr = 0;
          for (char c : rate)
            if (c >= '0' && c <= '9') cr = cr * 10 + static_cast<uint32_t>(c - '0');
          ms.clock_rate = cr;
        }
        break;
      }
    } else if (m.media == "application") {
      ms.format = keep("webrtc-datachannel");
    }
    if (auto v = m.attr("mid")) ms.mid = keep(*v);
    auto ufrag = m.attr("ice-ufrag");
    if (!ufrag) ufrag = s.attr("ice-ufrag");
    if (ufrag) ms.ice_ufrag = keep(*ufrag);
    auto pwd = m.attr("ice-pwd");
    if (!pwd) pwd = s.attr("ice-pwd");
    if (pwd) ms.ice_pwd = keep(*pwd);
    auto fp = m.attr("fingerprint");
    if (!fp) fp = s.attr("fingerprint");
    if (fp) ms.fingerprint = keep(*fp);
    auto setup = m.attr("setup");
    if (!setup) setup = s.attr("setup");
    if (setup) ms.setup = *setup == "actpass" ? JN_SETUP_ACTPASS : *setup == "active" ? JN_SETUP_ACTIVE : *setup == "passive" ? JN_SETUP_PASSIVE : JN_SETUP_NONE;
    if (m.rtcp_mux()) ms.flags |= JN_MS_RTCP_MUX;
    streams_.push_back(ms);
  }
  for (auto& ms : streams_) ptrs_.push_back(&ms);
  count_ = streams_.size();
  desc_.struct_size = sizeof desc_;
  desc_.count = static_cast<uint32_t>(count_);
  desc_.streams = ptrs_.data();
  return true;
}

}  // namespace verto
