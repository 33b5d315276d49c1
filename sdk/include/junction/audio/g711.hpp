// G.711 (ITU-T G.711) A-law and µ-law: 8-bit companded samples <-> 16-bit linear PCM.
// Decoding is a 256-entry table; encoding a 16 KiB table indexed by the sample's top 13/14 bits
// (both built at compile time, read-only, shared by every caller). Stateless, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace junction::audio::g711 {

int16_t alaw_decode(uint8_t a);
uint8_t alaw_encode(int16_t pcm);
int16_t ulaw_decode(uint8_t u);
uint8_t ulaw_encode(int16_t pcm);

// Whole buffers (n samples / bytes).
void alaw_decode(const uint8_t* in, size_t n, int16_t* out);
void alaw_encode(const int16_t* in, size_t n, uint8_t* out);
void ulaw_decode(const uint8_t* in, size_t n, int16_t* out);
void ulaw_encode(const int16_t* in, size_t n, uint8_t* out);

// The reference algorithms the tables are built from (segment search), for tests.
uint8_t alaw_encode_reference(int16_t pcm);
uint8_t ulaw_encode_reference(int16_t pcm);

}  // namespace junction::audio::g711
