// The 64-bit mix this library's hashes end with (a request's fingerprint, the stateless To tag).
#pragma once

#include <cstdint>

namespace junction::sip::detail {

inline uint64_t mix64(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace junction::sip::detail
