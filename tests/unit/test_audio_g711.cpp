// G.711: the tables agree with the ITU algorithm for every 16-bit sample, code words round-trip,
// and the quantisation error stays inside one step of the sample's segment.
#include <doctest/doctest.h>
#include <junction/audio/g711.hpp>

#include <algorithm>
#include <cstdlib>

using namespace junction::audio::g711;

TEST_CASE("g711: known code words") {
  CHECK(alaw_encode(0) == 0xD5);
  CHECK(ulaw_encode(0) == 0xFF);
  CHECK(ulaw_decode(0xFF) == 0);
  CHECK(alaw_decode(0xD5) == 8);
  CHECK(alaw_decode(0x55) == -8);
  CHECK(alaw_encode(32767) == 0xAA);   // positive full scale
  CHECK(alaw_encode(-32768) == 0x2A);  // negative full scale
  CHECK(ulaw_encode(32767) == 0x80);
  CHECK(ulaw_encode(-32768) == 0x00);
  CHECK(ulaw_decode(0x80) == 32124);
  CHECK(alaw_decode(0xAA) == 32256);
}

TEST_CASE("g711: tables equal the reference algorithm for every sample") {
  int mismatches = 0;
  for (int v = -32768; v <= 32767; ++v) {
    const auto s = static_cast<int16_t>(v);
    if (alaw_encode(s) != alaw_encode_reference(s)) ++mismatches;
    if (ulaw_encode(s) != ulaw_encode_reference(s)) ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("g711: code words round-trip; error within a segment step") {
  for (int c = 0; c < 256; ++c) {
    const auto b = static_cast<uint8_t>(c);
    CHECK(alaw_encode(alaw_decode(b)) == b);
    if (b != 0x7F) CHECK(ulaw_encode(ulaw_decode(b)) == b);  // 0x7F is µ-law's negative zero
  }
  int worst_a = 0, worst_u = 0;
  for (int v = -32000; v <= 32000; v += 7) {
    const auto s = static_cast<int16_t>(v);
    const int ea = std::abs(v - alaw_decode(alaw_encode(s)));
    const int eu = std::abs(v - ulaw_decode(ulaw_encode(s)));
    // Half a step of the segment the sample is in: steps double per segment (A-law 16..1024,
    // µ-law 8..1024 in 16-bit units), so the error is below 1/32 of the magnitude plus the floor.
    CHECK(ea <= std::abs(v) / 32 + 16);
    CHECK(eu <= std::abs(v) / 32 + 16);
    worst_a = std::max(worst_a, ea);
    worst_u = std::max(worst_u, eu);
  }
  CHECK(worst_a > 0);  // it does quantise
  CHECK(worst_u > 0);
}

TEST_CASE("g711: buffer forms equal the sample forms") {
  int16_t pcm[64];
  for (int i = 0; i < 64; ++i) pcm[i] = static_cast<int16_t>((i - 32) * 997);
  uint8_t a[64], u[64];
  int16_t back[64];
  alaw_encode(pcm, 64, a);
  ulaw_encode(pcm, 64, u);
  for (int i = 0; i < 64; ++i) {
    CHECK(a[i] == alaw_encode(pcm[i]));
    CHECK(u[i] == ulaw_encode(pcm[i]));
  }
  alaw_decode(a, 64, back);
  for (int i = 0; i < 64; ++i) CHECK(back[i] == alaw_decode(a[i]));
  ulaw_decode(u, 64, back);
  for (int i = 0; i < 64; ++i) CHECK(back[i] == ulaw_decode(u[i]));
}
