// MPEG-2 program stream muxer (ISO/IEC 13818-1, 2.5), GB/T 28181 style: every frame is one pack
// (pack header, then on the first frame, on every video keyframe and at least every psm_interval
// a system header and a program stream map, then the frame's PES packets, split so that no PES
// is longer than 65535 bytes). Used to send audio to devices (GB broadcast / talk) and by tests.
//
// Input: media frames (junction/media_frame.h): Annex-B H.264/H.265 access units (written as they
// are), G.711 A/mu-law frames, AAC raw access units (an ADTS header is added from the
// AudioSpecificConfig given in a JN_MF_CONFIG frame). Timestamps are converted to 90 kHz.
// Output: the PS bytes of one frame, in storage the muxer reuses (valid until the next call).
// Pure code, nothing thrown; storage grows to the largest frame seen (capped), not per frame.
#pragma once

#include <junction/media/frame.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace junction::media {

struct PsMuxerConfig {
  uint32_t video_codec = JN_CODEC_H264;  // JN_CODEC_H264 / JN_CODEC_H265 / JN_CODEC_NONE (no video)
  uint32_t audio_codec = JN_CODEC_PCMA;  // JN_CODEC_PCMA / PCMU / AAC / NONE (no audio)
  uint32_t psm_interval = 90000;         // 90 kHz ticks between PSM repeats when no keyframe came
  size_t max_frame = 4u << 20;           // larger frames are refused
  uint8_t video_stream_id = 0xE0;
  uint8_t audio_stream_id = 0xC0;
};

class PsMuxer {
 public:
  explicit PsMuxer(const PsMuxerConfig& cfg = {});

  // Muxes one frame. On success *out holds its PS bytes (empty for an AAC config frame, which is
  // only remembered). On failure returns false and error() says why (codec not configured,
  // frame too large, AAC before its config).
  bool mux(const FrameView& frame, std::span<const uint8_t>* out);
  const char* error() const { return error_; }
  // Forces a system header + PSM in the next pack (a new receiver, a device that asked).
  void repeat_psm() { psm_due_ = true; }

 private:
  void put_pack_header(int64_t scr90);
  void put_system_header();
  void put_psm();
  void put_pes(uint8_t stream_id, const uint8_t* prefix, size_t prefix_len, const uint8_t* data, size_t size,
               int64_t pts90, int64_t dts90, bool aligned);

  PsMuxerConfig cfg_;
  std::vector<uint8_t> out_;
  const char* error_ = "";
  bool psm_due_ = true;
  bool have_last_psm_ = false;
  int64_t last_psm90_ = 0;
  uint8_t psm_version_ = 0;
  uint8_t asc_[2] = {0, 0};
  bool have_asc_ = false;
};

}  // namespace junction::media
