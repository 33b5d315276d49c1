// G.711 per ITU-T G.711 tables 1a/2a: A-law quantises the top 13 bits of a sample into a sign, a
// 3-bit segment and a 4-bit step (even bits inverted, 0x55); µ-law the top 14 bits with a bias of
// 33 (0x84 >> 2) so segments are powers of two (all bits inverted).
#include <junction/audio/g711.hpp>

#include <array>

namespace junction::audio::g711 {
namespace {

constexpr int segment(int value, const int (&ends)[8]) {
  for (int s = 0; s < 8; ++s)
    if (value <= ends[s]) return s;
  return 8;
}

constexpr int kAlawSegEnd[8] = {0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF};
constexpr int kUlawSegEnd[8] = {0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF};
constexpr int kUlawBias = 0x84;
constexpr int kUlawClip = 8159;

constexpr uint8_t alaw_ref(int16_t pcm) {
  int v = pcm >> 3;  // 13 significant bits
  int mask;
  if (v >= 0) {
    mask = 0xD5;
  } else {
    mask = 0x55;
    v = -v - 1;
  }
  const int seg = segment(v, kAlawSegEnd);
  if (seg >= 8) return static_cast<uint8_t>(0x7F ^ mask);
  int a = seg << 4;
  a |= (seg < 2 ? (v >> 1) : (v >> seg)) & 0x0F;
  return static_cast<uint8_t>(a ^ mask);
}

constexpr uint8_t ulaw_ref(int16_t pcm) {
  int v = pcm >> 2;  // 14 significant bits
  int mask;
  if (v < 0) {
    v = -v;
    mask = 0x7F;
  } else {
    mask = 0xFF;
  }
  if (v > kUlawClip) v = kUlawClip;
  v += kUlawBias >> 2;
  const int seg = segment(v, kUlawSegEnd);
  if (seg >= 8) return static_cast<uint8_t>(0x7F ^ mask);
  return static_cast<uint8_t>(((seg << 4) | ((v >> (seg + 1)) & 0x0F)) ^ mask);
}

constexpr int16_t alaw_dec(uint8_t a) {
  a ^= 0x55;
  int t = (a & 0x0F) << 4;
  const int seg = (a & 0x70) >> 4;
  if (seg == 0) {
    t += 8;
  } else {
    t += 0x108;
    t <<= seg - 1;
  }
  return static_cast<int16_t>((a & 0x80) ? t : -t);
}

constexpr int16_t ulaw_dec(uint8_t u) {
  u = static_cast<uint8_t>(~u);
  int t = ((u & 0x0F) << 3) + kUlawBias;
  t <<= (u & 0x70) >> 4;
  return static_cast<int16_t>((u & 0x80) ? (kUlawBias - t) : (t - kUlawBias));
}

struct Tables {
  std::array<int16_t, 256> alaw_to_pcm{};
  std::array<int16_t, 256> ulaw_to_pcm{};
  std::array<uint8_t, 8192> pcm13_to_alaw{};   // index: (pcm >> 3) + 4096
  std::array<uint8_t, 16384> pcm14_to_ulaw{};  // index: (pcm >> 2) + 8192
};

constexpr Tables build() {
  Tables t;
  for (int i = 0; i < 256; ++i) {
    t.alaw_to_pcm[i] = alaw_dec(static_cast<uint8_t>(i));
    t.ulaw_to_pcm[i] = ulaw_dec(static_cast<uint8_t>(i));
  }
  // The encoders only look at the top bits, so one sample per index stands for all of them.
  for (int i = 0; i < 8192; ++i) t.pcm13_to_alaw[i] = alaw_ref(static_cast<int16_t>((i - 4096) * 8));
  for (int i = 0; i < 16384; ++i) t.pcm14_to_ulaw[i] = ulaw_ref(static_cast<int16_t>((i - 8192) * 4));
  return t;
}

constexpr Tables kTables = build();

}  // namespace

int16_t alaw_decode(uint8_t a) { return kTables.alaw_to_pcm[a]; }
int16_t ulaw_decode(uint8_t u) { return kTables.ulaw_to_pcm[u]; }
uint8_t alaw_encode(int16_t pcm) { return kTables.pcm13_to_alaw[(pcm >> 3) + 4096]; }
uint8_t ulaw_encode(int16_t pcm) { return kTables.pcm14_to_ulaw[(pcm >> 2) + 8192]; }
uint8_t alaw_encode_reference(int16_t pcm) { return alaw_ref(pcm); }
uint8_t ulaw_encode_reference(int16_t pcm) { return ulaw_ref(pcm); }

void alaw_decode(const uint8_t* in, size_t n, int16_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = kTables.alaw_to_pcm[in[i]];
}
void ulaw_decode(const uint8_t* in, size_t n, int16_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = kTables.ulaw_to_pcm[in[i]];
}
void alaw_encode(const int16_t* in, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = kTables.pcm13_to_alaw[(in[i] >> 3) + 4096];
}
void ulaw_encode(const int16_t* in, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = kTables.pcm14_to_ulaw[(in[i] >> 2) + 8192];
}

}  // namespace junction::audio::g711
