// The core's own form of a call event: owning strings, no struct_size games. Converted from and
// to jn_call_event at the plugin boundary (call_event_abi.hpp).
#pragma once

#include <junction/abi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace junction {

struct MediaStream {
  uint32_t kind = 0;  // JN_MEDIA_*
  std::string format;
  uint32_t payload_type = 0, clock_rate = 0, channels = 0;
  std::string transport;
  jn_addr addr{};
  uint32_t ssrc = 0, direction = 0;  // direction: JN_DIR_*
  std::string bus_stream, params;
};

struct CallEvent {
  uint32_t type = 0;  // JN_CALL_*; 0 = invalid (e.g. a jn_call_event that failed validation)
  std::string call_id, from, to, target;
  std::optional<std::vector<MediaStream>> media;  // nullopt = no description (NULL media)
  int32_t code = 0;
  std::string reason, dtmf, info_type, info_body;
};

}  // namespace junction
