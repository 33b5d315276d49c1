// Helpers shared by the sdk/media RTP unit tests: synthetic access units, packet and frame capture.
#pragma once

#include <junction/media/rtp_packetizer.hpp>

#include <cstdint>
#include <random>
#include <vector>

namespace media_rtp_test {

using Bytes = std::vector<uint8_t>;

struct Frame {
  Bytes data;
  jn_media_meta meta{};
};

// A NAL unit: header bytes then `size` random bytes without zeros (so no start code emulation).
inline Bytes nal(std::initializer_list<uint8_t> header, size_t size, std::mt19937& rng) {
  Bytes n(header);
  std::uniform_int_distribution<int> d(1, 255);
  for (size_t i = 0; i < size; ++i) n.push_back(static_cast<uint8_t>(d(rng)));
  return n;
}

// Annex-B: every NAL unit behind 00 00 00 01 (the frame convention).
inline Bytes au(std::initializer_list<Bytes> nals) {
  Bytes out;
  for (const Bytes& n : nals) {
    out.insert(out.end(), {0, 0, 0, 1});
    out.insert(out.end(), n.begin(), n.end());
  }
  return out;
}

inline junction::media::FrameView view(const Bytes& b, int64_t pts, uint32_t clock, uint32_t flags = 0) {
  junction::media::FrameView f;
  f.data = b.data();
  f.size = b.size();
  f.meta.pts = f.meta.dts = pts;
  f.meta.clock_rate = clock;
  f.meta.frame_flags = flags;
  return f;
}

struct Packets {
  std::vector<Bytes> list;
  void operator()(const uint8_t* p, size_t n) { list.emplace_back(p, p + n); }
};

struct Frames {
  std::vector<Frame> list;
  void operator()(const junction::media::FrameView& f) { list.push_back(Frame{Bytes(f.data, f.data + f.size), f.meta}); }
};

inline uint16_t seq_of(const Bytes& p) { return static_cast<uint16_t>((p[2] << 8) | p[3]); }
inline uint32_t ts_of(const Bytes& p) {
  return (static_cast<uint32_t>(p[4]) << 24) | (static_cast<uint32_t>(p[5]) << 16) | (static_cast<uint32_t>(p[6]) << 8) | p[7];
}
inline bool marker_of(const Bytes& p) { return (p[1] & 0x80) != 0; }

}  // namespace media_rtp_test
