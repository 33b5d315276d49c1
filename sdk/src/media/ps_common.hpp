// Helpers shared by the PS demuxer and muxer (private to sdk/src/media).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

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

// Hot-reload blobs (PsDemuxer::save, PsRtpReceiver::save): fixed-size values as their bytes
// (same process, same build on both sides of a reload), byte vectors length-prefixed.
struct BlobWriter {
  std::vector<uint8_t>& out;
  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof v);
  }
  void bytes(const uint8_t* p, size_t n) {
    put(static_cast<uint64_t>(n));
    out.insert(out.end(), p, p + n);
  }
  void bytes(const std::vector<uint8_t>& v) { bytes(v.data(), v.size()); }
};

struct BlobReader {
  const uint8_t* p;
  size_t n;
  bool ok = true;
  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    T v{};
    if (!ok || n < sizeof v) {
      ok = false;
      return v;
    }
    std::memcpy(&v, p, sizeof v);
    p += sizeof v, n -= sizeof v;
    return v;
  }
  // A bool written by put(bool): anything but 0 / 1 is a bad blob (not loaded as a bool).
  bool flag() {
    auto b = get<uint8_t>();
    if (b > 1) ok = false;
    return b == 1;
  }
  // An enum (uint8_t underlying) up to max.
  template <class E>
  E small_enum(E max) {
    auto b = get<uint8_t>();
    if (b > static_cast<uint8_t>(max)) ok = false;
    return static_cast<E>(ok ? b : 0);
  }
  // A length-prefixed byte string of at most cap bytes into out (nothing on failure).
  bool bytes(std::vector<uint8_t>& out, size_t cap) {
    auto len = get<uint64_t>();
    if (!ok || len > cap || len > n) return ok = false;
    out.assign(p, p + len);
    p += len, n -= len;
    return true;
  }
  // A length-prefixed byte string left in place (a view valid as long as the input).
  bool view(const uint8_t** data, size_t* len, size_t cap) {
    auto l = get<uint64_t>();
    if (!ok || l > cap || l > n) return ok = false;
    *data = p, *len = static_cast<size_t>(l);
    p += l, n -= l;
    return true;
  }
};

}  // namespace junction::media
