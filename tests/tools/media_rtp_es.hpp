// Elementary streams read from files for the media RTP tool and bench: an H.264 / H.265 Annex-B
// byte stream split into access units (ITU-T H.264 7.4.1.2.3, H.265 7.4.2.4.4: a unit begins at
// an AUD, a parameter set, a prefix SEI, or a slice that starts a picture, once a slice was seen).
#pragma once

#include <junction/media/annexb.hpp>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace media_rtp_es {

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Whether NAL unit `nal` (without start code) begins a new access unit, given that the current
// one already has a slice.
inline bool starts_au(const uint8_t* nal, size_t n, bool hevc) {
  namespace ab = junction::media::annexb;
  if (hevc) {
    uint8_t t = ab::h265::type(nal[0]);
    if (t == ab::h265::kVps || t == ab::h265::kSps || t == ab::h265::kPps || t == ab::h265::kAud ||
        t == ab::h265::kSeiPrefix || (t >= 41 && t <= 44) || (t >= 48 && t <= 55))
      return true;
    return ab::h265::is_vcl(t) && n > 2 && (nal[2] & 0x80);  // first_slice_segment_in_pic_flag
  }
  uint8_t t = ab::h264::type(nal[0]);
  if (t == ab::h264::kAud || t == ab::h264::kSps || t == ab::h264::kPps || t == ab::h264::kSei || (t >= 14 && t <= 18))
    return true;
  return ab::h264::is_vcl(t) && n > 1 && (nal[1] & 0x80);  // first_mb_in_slice == 0
}

inline bool is_vcl(uint8_t first, bool hevc) {
  namespace ab = junction::media::annexb;
  return hevc ? ab::h265::is_vcl(ab::h265::type(first)) : ab::h264::is_vcl(ab::h264::type(first));
}

// Access units as (offset, length) into `es`, each beginning at its first start code.
inline std::vector<std::pair<size_t, size_t>> split_aus(const std::vector<uint8_t>& es, bool hevc) {
  std::vector<std::pair<size_t, size_t>> aus;
  const uint8_t* p = es.data();
  size_t size = es.size(), code = 0;
  size_t pos = junction::media::annexb::find_start_code(p, size, 0, &code);
  size_t au_start = pos;
  bool have_vcl = false;
  while (pos < size) {
    size_t begin = pos + code, next_code = 0;
    size_t next = junction::media::annexb::find_start_code(p, size, begin, &next_code);
    if (next > begin) {
      if (have_vcl && starts_au(p + begin, next - begin, hevc)) {
        aus.emplace_back(au_start, pos - au_start);
        au_start = pos;
        have_vcl = false;
      }
      if (is_vcl(p[begin], hevc)) have_vcl = true;
    }
    pos = next;
    code = next_code;
  }
  if (au_start < size) aus.emplace_back(au_start, size - au_start);
  return aus;
}

}  // namespace media_rtp_es
