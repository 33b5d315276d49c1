// Annex-B byte streams (ITU-T H.264 / H.265 Annex B): start codes, NAL unit iteration and the NAL
// unit types sdk/media needs (keyframes, parameter sets). Header-only, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace junction::media::annexb {

// Position of the next start code (00 00 01, or 00 00 00 01 reported at its first zero when that
// zero is at or after `from`) at or after `from`, or `size` when there is none. *code_len gets 3
// or 4 (0 when none). 16 bytes at a time where SSE2 is there: this scan of every video byte is
// most of a demuxer's cost, and compressed video has almost no 00 00 pairs (emulation prevention
// leaves them to start codes and 00 00 03).
inline size_t find_start_code(const uint8_t* p, size_t size, size_t from, size_t* code_len) {
  auto found = [&](size_t j) {
    if (j > from && p[j - 1] == 0) {
      *code_len = 4;
      return j - 1;
    }
    *code_len = 3;
    return j;
  };
  size_t i = from;
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  while (i + 18 <= size) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
    auto pairs = static_cast<unsigned>(_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, zero), _mm_cmpeq_epi8(b, zero))));
    while (pairs) {  // each bit: p[j] == p[j + 1] == 0
      size_t j = i + static_cast<size_t>(__builtin_ctz(pairs));
      if (p[j + 2] == 1) return found(j);
      pairs &= pairs - 1;
    }
    i += 16;
  }
#endif
  for (; i + 3 <= size; ++i) {
    if (p[i + 2] > 1) {  // neither 00 nor 01: no start code can begin at i, i+1 or i+2
      i += 2;
      continue;
    }
    if (p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1) return found(i);
  }
  *code_len = 0;
  return size;
}

// Calls fn(const uint8_t* nal, size_t len) for each NAL unit (without its start code; trailing
// zero bytes before the next start code belong to the next start code). Bytes before the first
// start code are ignored. fn returns false to stop. Returns the number of NAL units visited.
template <typename Fn>
size_t for_each_nal(const uint8_t* p, size_t size, Fn&& fn) {
  size_t count = 0;
  size_t code_len = 0;
  size_t pos = find_start_code(p, size, 0, &code_len);
  while (pos < size) {
    size_t begin = pos + code_len;
    size_t next_len = 0;
    size_t next = find_start_code(p, size, begin, &next_len);
    size_t end = next;
    while (end > begin && p[end - 1] == 0 && next < size) --end;  // trailing_zero_8bits
    if (end > begin) {
      ++count;
      if (!fn(p + begin, end - begin)) break;
    }
    pos = next;
    code_len = next_len;
  }
  return count;
}

// H.264 (nal_unit_type, 5 bits)
namespace h264 {
enum : uint8_t { kSlice = 1, kIdr = 5, kSei = 6, kSps = 7, kPps = 8, kAud = 9, kStapA = 24, kFuA = 28 };
inline uint8_t type(uint8_t first_byte) { return first_byte & 0x1f; }
inline bool is_parameter_set(uint8_t t) { return t == kSps || t == kPps; }
inline bool is_vcl(uint8_t t) { return t >= 1 && t <= 5; }
}  // namespace h264

// H.265 (nal_unit_type, 6 bits after the forbidden bit)
namespace h265 {
enum : uint8_t { kBlaWLp = 16, kCraNut = 21, kVps = 32, kSps = 33, kPps = 34, kAud = 35, kSeiPrefix = 39,
                 kAp = 48, kFu = 49 };
inline uint8_t type(uint8_t first_byte) { return (first_byte >> 1) & 0x3f; }
inline bool is_parameter_set(uint8_t t) { return t == kVps || t == kSps || t == kPps; }
inline bool is_irap(uint8_t t) { return t >= kBlaWLp && t <= 23; }  // BLA, IDR, CRA (+ reserved IRAP)
inline bool is_vcl(uint8_t t) { return t < 32; }
}  // namespace h265

}  // namespace junction::media::annexb
