// proto/sdp.hpp on arbitrary text. Invariants: a parsed description serialises to text that parses
// again and serialises to the same text (a fixed point after one round); GB helpers never fail
// their own round trip (format_gb_format of a parsed f= parses back to the same fields).
#include <junction/proto/sdp.hpp>

#include <cstdlib>

using namespace junction::proto::sdp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = parse(in);
  if (r) {
    std::string once = serialize(*r.session);
    auto again = parse(once);
    if (!again) std::abort();
    if (serialize(*again.session) != once) std::abort();
    if (auto y = gb_ssrc(*r.session)) gb_ssrc_value(*y);
    if (const Line* f = find_line(*r.session, 'f')) {
      if (auto g = parse_gb_format(f->value)) {
        auto back = parse_gb_format(format_gb_format(*g));
        if (!back) std::abort();
        for (size_t i = 0; i < back->video.size(); ++i)
          if (i < g->video.size() ? back->video[i] != g->video[i] : !back->video[i].empty()) std::abort();
      }
    }
  }
  if (auto g = parse_gb_format(in)) {
    if (!parse_gb_format(format_gb_format(*g))) std::abort();
  }
  return 0;
}
