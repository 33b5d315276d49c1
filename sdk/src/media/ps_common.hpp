// Helpers shared by the PS demuxer and muxer (private to sdk/src/media).
#pragma once

#include <cstddef>
#include <cstdint>

namespace junction::media {

// v * to / from, rounded to nearest (half away from zero): 90 kHz <-> an audio sample rate.
// Round-to-nearest both ways makes rate -> 90 kHz -> rate exact for rates <= 90 kHz.
inline int64_t rescale(int64_t v, uint32_t to, uint32_t from) {
  if (to == from || from == 0) return v;
  __int128 num = static_cast<__int128>(v) * to;
  __int128 half = from / 2;
  return static_cast<int64_t>(num >= 0 ? (num + half) / from : -((-num + half) / from));
}

// CRC-32/MPEG-2 (polynomial 0x04C11DB7, init ~0, not reflected, no final xor), for the PSM.
inline uint32_t crc32_mpeg2(const uint8_t* p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= static_cast<uint32_t>(p[i]) << 24;
    for (int b = 0; b < 8; ++b) crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
  }
  return crc;
}

}  // namespace junction::media
