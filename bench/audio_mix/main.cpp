// Mixing cost per member: N members (3 of them talking: distinct tones; the rest silent, as in a
// real conference) send one frame each per 20 ms tick; the mixer decodes all, mixes the talkers
// and encodes the mix-minus for the talkers plus one shared frame per codec for the listeners.
// Reported: CPU µs per tick and per member per tick (thread CPU clock), for Opus and for G.711,
// with sharing on (the default) and off (every member encoded: what a mixer without sharing
// pays); the floor: one libopus decode + encode of a 20 ms frame in this program; and the largest
// conference one core holds in real time (the slowest of 500 ticks under 20 ms).
//
//   bench_audio_mix [--members 10,50,200] [--ticks 500] [--rate 16000] [--talkers 3]
#include <junction/audio/g711.hpp>
#include <junction/audio/mixer.hpp>
#include <junction/audio/opus.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

using namespace junction::audio;

namespace {

double cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

struct NullSink : MixerSink {
  size_t bytes = 0;
  void on_audio(uint32_t, const uint8_t*, size_t n, bool) override { bytes += n; }
  void on_talking(uint32_t, bool, int) override {}
};

// 50 frames (1 s) of encoded input per distinct source, cycled.
struct Clip {
  std::vector<std::vector<uint8_t>> frames;
};

Clip make_clip(Codec codec, double freq, double amp) {
  Clip c;
  OpusEnc enc;
  if (codec == Codec::Opus) enc.open(48000);
  uint64_t n = 0;
  for (int f = 0; f < 50; ++f) {
    if (codec == Codec::Opus) {
      int16_t pcm[960];
      for (int i = 0; i < 960; ++i, ++n) pcm[i] = static_cast<int16_t>(amp * std::sin(2 * M_PI * freq * n / 48000.0));
      uint8_t out[1500];
      const int len = enc.encode(pcm, 960, out, sizeof out);
      c.frames.emplace_back(out, out + std::max(len, 0));
    } else {
      int16_t pcm[160];
      for (int i = 0; i < 160; ++i, ++n) pcm[i] = static_cast<int16_t>(amp * std::sin(2 * M_PI * freq * n / 8000.0));
      std::vector<uint8_t> out(160);
      if (codec == Codec::PCMA) g711::alaw_encode(pcm, 160, out.data());
      else g711::ulaw_encode(pcm, 160, out.data());
      c.frames.push_back(std::move(out));
    }
  }
  return c;
}

struct Result {
  double mean_tick_us, max_tick_us, p99_tick_us;
  double encodes;
};

Result run(Codec codec, uint32_t members, uint32_t talkers, uint32_t ticks, uint32_t rate, bool share) {
  MixerConfig cfg;
  cfg.rate = rate;
  cfg.share_encodes = share;
  Mixer mx(cfg);
  for (uint32_t i = 0; i < members; ++i)
    if (mx.add_member(i, codec) != JN_OK) std::abort();
  std::vector<Clip> clips;
  for (uint32_t t = 0; t < talkers; ++t) clips.push_back(make_clip(codec, 300 + 170 * t, 6000));
  const Clip silence = make_clip(codec, 0, 0);
  NullSink sink;
  std::vector<double> tick_us;
  double encodes = 0;
  for (uint32_t k = 0; k < ticks + 20; ++k) {
    for (uint32_t i = 0; i < members; ++i) {
      const Clip& c = i < talkers ? clips[i] : silence;
      const auto& f = c.frames[k % c.frames.size()];
      mx.push(i, f.data(), f.size());
    }
    const double t0 = cpu_us();
    mx.tick(sink);
    const double t1 = cpu_us();
    if (k >= 20) {  // the first 20 ticks warm caches and the talkers' detection
      tick_us.push_back(t1 - t0);
      encodes += mx.last_tick_encodes();
    }
  }
  std::sort(tick_us.begin(), tick_us.end());
  double sum = 0;
  for (double v : tick_us) sum += v;
  return {sum / tick_us.size(), tick_us.back(), tick_us[tick_us.size() * 99 / 100], encodes / ticks};
}

double opus_floor_us(uint32_t rate, int frames) {
  // One member's worth of codec work with no mixer: decode its frame, encode a frame for it.
  const Clip clip = make_clip(Codec::Opus, 440, 6000);
  OpusDec dec;
  OpusEnc enc;
  dec.open(rate);
  enc.open(rate, 32000, 5);
  const int n = static_cast<int>(rate / 50);
  std::vector<int16_t> pcm(n);
  uint8_t out[1500];
  const double t0 = cpu_us();
  for (int f = 0; f < frames; ++f) {
    const auto& p = clip.frames[f % clip.frames.size()];
    dec.decode(p.data(), p.size(), pcm.data(), n);
    enc.encode(pcm.data(), n, out, sizeof out);
  }
  return (cpu_us() - t0) / frames;
}

const char* name(Codec c) { return c == Codec::Opus ? "Opus" : c == Codec::PCMA ? "G.711A" : "G.711u"; }

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::vector<uint32_t> sizes = {10, 50, 200};
  uint32_t ticks = 500, rate = 16000, talkers = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--members") {
      sizes.clear();
      for (char* s = argv[i + 1]; *s;) {
        sizes.push_back(static_cast<uint32_t>(std::strtoul(s, &s, 10)));
        if (*s == ',') ++s;
      }
    } else if (a == "--ticks") ticks = static_cast<uint32_t>(std::atoi(argv[i + 1]));
    else if (a == "--rate") rate = static_cast<uint32_t>(std::atoi(argv[i + 1]));
    else if (a == "--talkers") talkers = static_cast<uint32_t>(std::atoi(argv[i + 1]));
  }
  const double floor = opus_floor_us(rate, 2000);
  std::printf("floor: libopus decode + encode of one 20 ms mono frame at %u Hz: %.1f us\n", rate, floor);
  std::printf("%-7s %7s %6s %12s %14s %12s %9s\n", "codec", "members", "share", "tick_us", "us/member", "max_tick_us", "encodes");
  for (Codec codec : {Codec::Opus, Codec::PCMA}) {
    for (uint32_t n : sizes) {
      for (bool share : {true, false}) {
        const Result r = run(codec, n, std::min(talkers, n), ticks, rate, share);
        std::printf("%-7s %7u %6s %12.1f %14.2f %12.1f %9.1f\n", name(codec), n, share ? "on" : "off",
                    r.mean_tick_us, r.mean_tick_us / n, r.max_tick_us, r.encodes);
      }
    }
  }
  // The largest conference one core holds: the 99th-percentile tick under 20 ms (a missed frame
  // otherwise), doubling then bisecting the member count.
  for (Codec codec : {Codec::Opus, Codec::PCMA}) {
    uint32_t lo = 1, hi = 2;
    auto fits = [&](uint32_t n) { return run(codec, n, std::min(talkers, n), 100, rate, true).p99_tick_us < 20000; };
    while (hi <= 8192 && fits(hi)) {
      lo = hi;
      hi *= 2;
    }
    while (hi - lo > std::max<uint32_t>(1, lo / 50)) {
      const uint32_t mid = (lo + hi) / 2;
      (fits(mid) ? lo : hi) = mid;
    }
    std::printf("largest %s conference per core in real time (p99 tick < 20 ms, %u talkers): ~%u members\n",
                name(codec), talkers, lo);
  }
  return 0;
}
