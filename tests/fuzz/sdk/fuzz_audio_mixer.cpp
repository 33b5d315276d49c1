// The mixer fed what members send: the input is a script of (member, length, bytes) records
// pushed to a PCMA, a PCMU and two Opus members, with a tick after each record whose first byte
// is odd. Invariants: pushes are accepted or refused with a status (never more than kMaxPayload
// taken), every delivered frame is non-empty and G.711 frames are exactly one ptime long.
#include <junction/audio/mixer.hpp>

#include <cstdlib>

using namespace junction::audio;

namespace {
struct CheckSink : MixerSink {
  const Mixer* mx = nullptr;
  void on_audio(uint32_t member, const uint8_t*, size_t n, bool) override {
    if (n == 0 || n > Mixer::kMaxPayload) std::abort();
    if (member < 2 && n != 8 * mx->config().ptime_ms) std::abort();
  }
  void on_talking(uint32_t, bool, int energy) override {
    if (energy < 0) std::abort();
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Mixer mx({.rate = 16000, .max_talkers = 2});
  mx.add_member(0, Codec::PCMA);
  mx.add_member(1, Codec::PCMU);
  mx.add_member(2, Codec::Opus);
  mx.add_member(3, Codec::Opus);
  CheckSink sink;
  sink.mx = &mx;
  size_t i = 0;
  while (i + 3 <= size) {
    const uint8_t ctl = data[i];
    const uint32_t member = ctl >> 6;
    const size_t len = (size_t(data[i + 1]) << 8 | data[i + 2]) % 1600;
    i += 3;
    const size_t take = len <= size - i ? len : size - i;
    const jn_status st = mx.push(member, data + i, take);
    if (st != JN_OK && st != JN_ERR_LIMIT) std::abort();
    if (st == JN_ERR_LIMIT && take <= Mixer::kMaxPayload) std::abort();
    i += take;
    if (ctl & 1) mx.tick(sink);
    if ((ctl & 0x3E) == 0x3E) mx.set_muted(member, !mx.state(member)->muted);
  }
  mx.tick(sink);
  return 0;
}
