// The core's own form of a call event: owning strings, no struct_size games. Converted from and
// to jn_call_event at the plugin boundary (call_event_abi.hpp).
#pragma once

#include <junction/abi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace junction {

struct Codec {
  std::string name;
  uint32_t payload_type = 0, clock_rate = 0, channels = 0;
  std::string fmtp, rtcp_fb;
};

struct MediaStream {
  uint32_t kind = 0;  // JN_MEDIA_*
  std::string format;
  uint32_t payload_type = 0, clock_rate = 0, channels = 0;
  std::string transport;
  jn_addr addr{};
  uint32_t ssrc = 0, direction = 0;  // direction: JN_DIR_*
  std::string bus_stream, params;
  std::vector<Codec> codecs;  // in preference order; codecs[0] is format/payload_type/...
  uint32_t setup = 0, flags = 0;  // JN_SETUP_*, JN_MS_*
  jn_addr rtcp_addr{};
  std::string mid, ice_ufrag, ice_pwd, fingerprint;
  std::vector<std::string> candidates, crypto;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

struct CallEvent {
  uint32_t type = 0;  // JN_CALL_*; 0 = invalid (e.g. a jn_call_event that failed validation)
  std::string call_id, from, to, target;
  std::optional<std::vector<MediaStream>> media;  // nullopt = no description (NULL media)
  int32_t code = 0;
  std::string reason, dtmf, info_type, info_body;
  std::string from_name;  // the caller's display name
  Headers headers;        // call metadata, in order (Subject, X-*, app-*)
};

}  // namespace junction
