// The REST bodies and an answer's SDP come from outside. Invariants: a body either parses or
// names why (a reason, never an empty one); an accepted startup's RTMP key re-parses to itself; an
// accepted answer has a payload type and a port on each stream it says is present.
#include "model.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_discarded()) {
    capture::BadRequest e;
    auto r = capture::parse_startup(j, e);
    if (!r && e.reason.empty()) std::abort();
    if (r && r->rtmp) {
      capture::RtmpTarget t;
      std::string why;
      if (!capture::parse_rtmp_url(r->rtmp->url, t, why) || t.url != r->rtmp->url) std::abort();
    }
    e = {};
    if (!capture::parse_dtmf(j, e) && e.reason.empty()) std::abort();
    e = {};
    if (!capture::parse_push(j, e) && e.reason.empty()) std::abort();
  }
  std::string why;
  if (auto a = capture::parse_answer(in, why)) {
    for (auto* s : {&a->audio, &a->video})
      if (s->present && (s->pt < 0 || s->ip.empty())) std::abort();
  } else if (why.empty()) {
    std::abort();
  }
  return 0;
}
