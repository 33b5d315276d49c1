// The conference mixer: each member hears the others and not itself (mix-minus), members outside
// the mix share one encoded frame per codec, mute/deaf/max_talkers/talking detection, the jitter
// queue bound, Opus and G.711 members in one mix.
#include <doctest/doctest.h>
#include <junction/audio/g711.hpp>
#include <junction/audio/mixer.hpp>

#include <cmath>
#include <map>
#include <vector>

using namespace junction::audio;

namespace {

constexpr double kPi = 3.14159265358979323846;

// Power of one frequency in a block (Goertzel), normalised by the block length.
double tone_power(const std::vector<int16_t>& x, double freq, double rate) {
  const double w = 2 * kPi * freq / rate, c = 2 * std::cos(w);
  double s1 = 0, s2 = 0;
  for (int16_t v : x) {
    const double s = v + c * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  const double p = s1 * s1 + s2 * s2 - c * s1 * s2;
  return p / (static_cast<double>(x.size()) * x.size());
}

struct Tone {
  double freq, amp, rate;
  uint64_t n = 0;
  void fill(int16_t* out, size_t count) {
    for (size_t i = 0; i < count; ++i, ++n)
      out[i] = static_cast<int16_t>(amp * std::sin(2 * kPi * freq * static_cast<double>(n) / rate));
  }
};

struct Sink : MixerSink {
  std::map<uint32_t, std::vector<uint8_t>> last;
  std::map<uint32_t, bool> shared;
  std::map<uint32_t, int> frames;
  std::vector<std::pair<uint32_t, bool>> talking;
  void on_audio(uint32_t m, const uint8_t* d, size_t n, bool sh) override {
    last[m].assign(d, d + n);
    shared[m] = sh;
    ++frames[m];
  }
  void on_talking(uint32_t m, bool t, int) override { talking.emplace_back(m, t); }
  void clear() {
    last.clear();
    shared.clear();
  }
};

std::vector<int16_t> decode_alaw(const std::vector<uint8_t>& b) {
  std::vector<int16_t> pcm(b.size());
  g711::alaw_decode(b.data(), b.size(), pcm.data());
  return pcm;
}

void push_alaw(Mixer& mx, uint32_t id, Tone& t) {
  int16_t pcm[160];
  uint8_t a[160];
  t.fill(pcm, 160);
  g711::alaw_encode(pcm, 160, a);
  REQUIRE(mx.push(id, a, 160) == JN_OK);
}

void push_silence(Mixer& mx, uint32_t id) {
  uint8_t a[160];
  for (auto& b : a) b = g711::alaw_encode(0);
  REQUIRE(mx.push(id, a, 160) == JN_OK);
}

}  // namespace

TEST_CASE("mixer: mix-minus, shared frames for listeners, three G.711 members at 16 kHz") {
  Mixer mx({.rate = 16000});
  REQUIRE(mx.add_member(1, Codec::PCMA) == JN_OK);
  REQUIRE(mx.add_member(2, Codec::PCMA) == JN_OK);
  for (uint32_t id = 3; id <= 12; ++id) REQUIRE(mx.add_member(id, Codec::PCMA) == JN_OK);
  CHECK(mx.add_member(2, Codec::PCMA) == JN_ERR_EXISTS);
  Tone a{1000, 6000, 8000}, b{500, 6000, 8000};
  Sink sink;
  for (int tick = 0; tick < 10; ++tick) {
    push_alaw(mx, 1, a);
    push_alaw(mx, 2, b);
    for (uint32_t id = 3; id <= 12; ++id) push_silence(mx, id);
    sink.clear();
    mx.tick(sink);
  }
  const auto heard1 = decode_alaw(sink.last[1]), heard2 = decode_alaw(sink.last[2]),
             heard3 = decode_alaw(sink.last[3]);
  // 1 hears 2's 500 Hz, not its own 1 kHz; 2 the other way round; 3 (silent) hears both.
  CHECK(tone_power(heard1, 500, 8000) > 100 * tone_power(heard1, 1000, 8000));
  CHECK(tone_power(heard2, 1000, 8000) > 100 * tone_power(heard2, 500, 8000));
  CHECK(tone_power(heard3, 1000, 8000) > 1e5);
  CHECK(tone_power(heard3, 500, 8000) > 1e5);
  CHECK_FALSE(sink.shared[1]);
  CHECK_FALSE(sink.shared[2]);
  CHECK(sink.shared[3]);
  CHECK(sink.last[3] == sink.last[12]);  // the ten listeners got one frame
  CHECK(mx.last_tick_encodes() == 3);    // two talkers + one shared, not twelve
  CHECK(mx.state(1)->talking);
  CHECK_FALSE(mx.state(3)->talking);
  CHECK(mx.stats(3)->frames_shared == 10);
}

TEST_CASE("mixer: without sharing every member is encoded, the shared bytes are identical for G.711") {
  for (bool share : {true, false}) {
    Mixer mx({.rate = 8000, .share_encodes = share});
    for (uint32_t id = 1; id <= 4; ++id) REQUIRE(mx.add_member(id, Codec::PCMA) == JN_OK);
    Tone a{700, 5000, 8000};
    Sink sink;
    for (int tick = 0; tick < 3; ++tick) {
      push_alaw(mx, 1, a);
      for (uint32_t id = 2; id <= 4; ++id) push_silence(mx, id);
      mx.tick(sink);
    }
    CHECK(mx.last_tick_encodes() == (share ? 2u : 4u));
    CHECK(sink.last[2] == sink.last[4]);
    CHECK(tone_power(decode_alaw(sink.last[2]), 700, 8000) > 1e5);
  }
}

TEST_CASE("mixer: mute, deaf, talking events with hangover") {
  Mixer mx({.rate = 8000, .talk_on_frames = 2, .talk_hangover_frames = 3});
  REQUIRE(mx.add_member(1, Codec::PCMA) == JN_OK);
  REQUIRE(mx.add_member(2, Codec::PCMA) == JN_OK);
  REQUIRE(mx.add_member(3, Codec::PCMA) == JN_OK);
  REQUIRE(mx.set_deaf(3, true) == JN_OK);
  Tone a{1000, 8000, 8000};
  Sink sink;
  push_alaw(mx, 1, a);
  mx.tick(sink);
  CHECK(sink.talking.empty());  // one voiced frame: mixed, but not yet "talking"
  CHECK(tone_power(decode_alaw(sink.last[2]), 1000, 8000) > 1e5);
  push_alaw(mx, 1, a);
  mx.tick(sink);
  REQUIRE(sink.talking.size() == 1);
  CHECK(sink.talking[0] == std::make_pair(1u, true));
  CHECK(sink.frames.count(3) == 0);  // deaf: nothing sent
  // Muted: out of the mix and not talking, at once.
  REQUIRE(mx.set_muted(1, true) == JN_OK);
  push_alaw(mx, 1, a);
  mx.tick(sink);
  CHECK(tone_power(decode_alaw(sink.last[2]), 1000, 8000) < 1.0);
  REQUIRE(sink.talking.size() == 2);
  CHECK(sink.talking[1] == std::make_pair(1u, false));
  // Unmuted then silent: talking again, then off only after the hangover (3 unvoiced frames).
  REQUIRE(mx.set_muted(1, false) == JN_OK);
  push_alaw(mx, 1, a);
  mx.tick(sink);
  push_alaw(mx, 1, a);
  mx.tick(sink);
  REQUIRE(sink.talking.size() == 3);
  for (int i = 0; i < 3; ++i) {
    push_silence(mx, 1);
    mx.tick(sink);
  }
  CHECK(sink.talking.size() == 3);  // still in the hangover
  push_silence(mx, 1);
  mx.tick(sink);
  REQUIRE(sink.talking.size() == 4);
  CHECK(sink.talking[3] == std::make_pair(1u, false));
}

TEST_CASE("mixer: max_talkers keeps the loudest") {
  Mixer mx({.rate = 8000, .max_talkers = 1});
  for (uint32_t id = 1; id <= 3; ++id) REQUIRE(mx.add_member(id, Codec::PCMA) == JN_OK);
  Tone loud{1000, 9000, 8000}, soft{500, 2000, 8000};
  Sink sink;
  for (int tick = 0; tick < 3; ++tick) {
    push_alaw(mx, 1, loud);
    push_alaw(mx, 2, soft);
    push_silence(mx, 3);
    mx.tick(sink);
  }
  const auto heard = decode_alaw(sink.last[3]);
  CHECK(tone_power(heard, 1000, 8000) > 1e5);
  CHECK(tone_power(heard, 500, 8000) < 1e-2 * tone_power(heard, 1000, 8000));
  // The soft talker, out of the mix, hears the loud one in the shared frame.
  CHECK(sink.shared[2]);
}

TEST_CASE("mixer: bad input is refused or counted, the jitter queue is bounded") {
  Mixer bad({.rate = 11025});
  CHECK(bad.add_member(1, Codec::PCMA) == JN_ERR_INVALID);
  Mixer mx({.rate = 8000, .jitter_frames = 3});
  REQUIRE(mx.add_member(1, Codec::PCMA) == JN_OK);
  REQUIRE(mx.add_member(2, Codec::Opus) == JN_OK);
  uint8_t big[Mixer::kMaxPayload + 1] = {};
  CHECK(mx.push(9, big, 10) == JN_ERR_NOT_FOUND);
  CHECK(mx.push(1, big, sizeof big) == JN_ERR_LIMIT);
  for (int i = 0; i < 5; ++i) CHECK(mx.push(1, big, 160) == JN_OK);
  CHECK(mx.stats(1)->frames_dropped == 3);  // the oversize one and two pushed out of the queue
  uint8_t garbage[40];
  for (int i = 0; i < 40; ++i) garbage[i] = static_cast<uint8_t>(0xFF - i);
  CHECK(mx.push(2, garbage, sizeof garbage) == JN_OK);
  Sink sink;
  mx.tick(sink);  // a corrupt Opus packet: counted, the tick goes on
  CHECK(sink.frames[1] == 1);
  mx.tick(sink);  // nothing queued for 2: missing, concealed
  CHECK(mx.stats(2)->frames_missing == 1);
  CHECK(mx.remove_member(2) == JN_OK);
  CHECK(mx.remove_member(2) == JN_ERR_NOT_FOUND);
}

TEST_CASE("mixer: Opus and G.711 members in one 16 kHz mix") {
  Mixer mx({.rate = 16000});
  REQUIRE(mx.add_member(1, Codec::Opus) == JN_OK);
  REQUIRE(mx.add_member(2, Codec::PCMA) == JN_OK);
  REQUIRE(mx.add_member(3, Codec::Opus) == JN_OK);
  OpusEnc browser;
  REQUIRE(browser.open(48000) == JN_OK);
  OpusDec listener;
  REQUIRE(listener.open(48000) == JN_OK);
  Tone t{800, 7000, 48000};
  Tone g{400, 7000, 8000};
  Sink sink;
  std::vector<int16_t> heard3, heard1;
  for (int tick = 0; tick < 15; ++tick) {
    int16_t pcm[960];
    uint8_t pkt[1500];
    t.fill(pcm, 960);
    const int n = browser.encode(pcm, 960, pkt, sizeof pkt);
    REQUIRE(n > 0);
    REQUIRE(mx.push(1, pkt, static_cast<size_t>(n)) == JN_OK);
    push_alaw(mx, 2, g);
    mx.tick(sink);
    int16_t out[960];
    const auto& b3 = sink.last[3];
    const int m3 = listener.decode(b3.data(), b3.size(), out, 960);
    REQUIRE(m3 == 960);
    if (tick >= 10) heard3.insert(heard3.end(), out, out + 960);
  }
  // The Opus listener (3) hears the Opus talker's 800 Hz and the G.711 talker's 400 Hz.
  CHECK(tone_power(heard3, 800, 48000) > 1e5);
  CHECK(tone_power(heard3, 400, 48000) > 1e5);
  // The G.711 member hears the Opus member, not itself.
  const auto heard2 = decode_alaw(sink.last[2]);
  CHECK(tone_power(heard2, 800, 8000) > 100 * tone_power(heard2, 400, 8000));
  CHECK(sink.shared[3]);
  CHECK_FALSE(sink.shared[1]);
}
