// Conversion between the plugin ABI's jn_call_event and the core's CallEvent.
#pragma once

#include <junction/abi.h>

#include <vector>

#include "routing/call_event.hpp"

namespace junction {

// Reads a plugin's event. Fields beyond the plugin's struct_size (an older plugin) keep their
// defaults; fields the core does not know (a newer plugin) are ignored.
//   JN_ERR_ABI      struct_size too small to hold `type` (or a media struct's basics);
//   JN_ERR_INVALID  a NULL pointer with a length, a NULL stream, too many streams.
jn_status from_abi(const jn_call_event& in, CallEvent& out);
// A plugin's media description alone (for anchor replies).
jn_status read_media(const jn_media_desc& in, std::vector<MediaStream>& out);
// The same, for callers that let send()/originate() refuse it: type 0 when invalid.
CallEvent from_abi(const jn_call_event& in);

// A jn_call_event (with its media description) built from a CallEvent, valid as long as this
// holder lives. It keeps its own copy of the event, so every pointer it hands out is its own.
class AbiCallEvent {
 public:
  explicit AbiCallEvent(const CallEvent& ev);
  explicit AbiCallEvent(CallEvent&& ev);
  AbiCallEvent(const AbiCallEvent&) = delete;  // pointers refer to this object's members
  AbiCallEvent& operator=(const AbiCallEvent&) = delete;

  const jn_call_event* get() const { return &abi_; }

 private:
  void build();

  CallEvent event_;
  jn_call_event abi_{};
  jn_media_desc desc_{};
  std::vector<jn_media_stream> streams_;
  std::vector<const jn_media_stream*> stream_ptrs_;
  std::vector<std::vector<jn_codec>> codecs_;  // per stream
  std::vector<std::vector<jn_str>> strs_;      // per stream: candidates, then crypto lines
  std::vector<jn_header> headers_;
};

}  // namespace junction
