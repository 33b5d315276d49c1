// Secrets from OpenSSL's CSPRNG, as every secret in Junction (admin token, call ids, intercom
// tokens, SRTP keys, tags). The plugin links OpenSSL::Crypto. False (out empty) when the CSPRNG
// cannot deliver: the caller refuses rather than use a weak secret.
#pragma once

#include <junction/util/encoding.hpp>

#include <openssl/rand.h>

#include <climits>
#include <cstddef>
#include <string>

namespace junction::util {

inline bool random_bytes(size_t n, std::string& out) {
  out.assign(n, '\0');
  if (n == 0) return true;
  if (n > static_cast<size_t>(INT_MAX) || RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    out.clear();
    return false;
  }
  return true;
}

// n random bytes as 2n lowercase hex digits.
inline bool random_hex(size_t n, std::string& out) {
  std::string raw;
  if (!random_bytes(n, raw)) {
    out.clear();
    return false;
  }
  out = hex_encode(raw);
  return true;
}

}  // namespace junction::util
