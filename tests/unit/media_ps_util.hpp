// Shared by test_media_ps*.cpp and test_media_rfc4571.cpp: synthetic media frames (H.264, H.265,
// G.711, AAC) with owned bytes, and sinks that collect what the sdk produces.
#pragma once

#include <junction/media/ps_demuxer.hpp>
#include <junction/media/ps_muxer.hpp>
#include <junction/media/ps_rtp.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace jn_test {

using namespace junction::media;

struct OwnedFrame {
  std::vector<uint8_t> data;
  jn_media_meta meta{};
  FrameView view() const { return FrameView{data.data(), data.size(), meta}; }
};

inline bool same_payload(const OwnedFrame& a, const OwnedFrame& b) { return a.data == b.data; }

// Bytes that cannot form a start code (no zero bytes), ending with a nonzero byte.
inline void fill_nal_body(std::vector<uint8_t>& out, size_t n, std::mt19937& rng) {
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(1 + rng() % 255));
}

inline void put_nal(std::vector<uint8_t>& out, std::initializer_list<uint8_t> head, size_t body, std::mt19937& rng) {
  out.insert(out.end(), {0, 0, 0, 1});
  out.insert(out.end(), head);
  fill_nal_body(out, body, rng);
}

// H.264 access unit: a keyframe is SPS + PPS + IDR (+ a second slice); others one or two slices.
inline OwnedFrame h264_frame(bool key, size_t size, int64_t pts, std::mt19937& rng, bool two_slices = false) {
  OwnedFrame f;
  if (key) {
    put_nal(f.data, {0x67, 0x42, 0xC0, 0x1F}, 12, rng);
    put_nal(f.data, {0x68, 0xCE}, 3, rng);
    put_nal(f.data, {0x65, 0x88}, size, rng);  // first_mb_in_slice = 0 (first bit 1)
    if (two_slices) put_nal(f.data, {0x65, 0x48}, size / 3, rng);  // first_mb != 0 (first bit 0)
  } else {
    put_nal(f.data, {0x41, 0x9A}, size, rng);
    if (two_slices) put_nal(f.data, {0x41, 0x4A}, size / 2, rng);
  }
  f.meta.pts = f.meta.dts = pts;
  f.meta.clock_rate = 90000;
  f.meta.codec = JN_CODEC_H264;
  f.meta.kind = JN_MEDIA_VIDEO;
  f.meta.frame_flags = key ? (JN_MF_KEY | JN_MF_CONFIG) : 0;
  return f;
}

inline OwnedFrame h265_frame(bool key, size_t size, int64_t pts, std::mt19937& rng) {
  OwnedFrame f;
  if (key) {
    put_nal(f.data, {0x40, 0x01, 0x0C}, 20, rng);  // VPS
    put_nal(f.data, {0x42, 0x01, 0x01}, 30, rng);  // SPS
    put_nal(f.data, {0x44, 0x01, 0xC1}, 5, rng);   // PPS
    put_nal(f.data, {0x26, 0x01, 0xAF}, size, rng);  // IDR_W_RADL, first_slice_segment_in_pic_flag 1
  } else {
    put_nal(f.data, {0x02, 0x01, 0xD0}, size, rng);  // TRAIL_R
  }
  f.meta.pts = f.meta.dts = pts;
  f.meta.clock_rate = 90000;
  f.meta.codec = JN_CODEC_H265;
  f.meta.kind = JN_MEDIA_VIDEO;
  f.meta.frame_flags = key ? (JN_MF_KEY | JN_MF_CONFIG) : 0;
  return f;
}

inline OwnedFrame g711_frame(uint32_t codec, int64_t pts8k, std::mt19937& rng, size_t n = 160) {
  OwnedFrame f;
  for (size_t i = 0; i < n; ++i) f.data.push_back(static_cast<uint8_t>(rng()));
  f.meta.pts = f.meta.dts = pts8k;
  f.meta.clock_rate = 8000;
  f.meta.codec = codec;
  f.meta.kind = JN_MEDIA_AUDIO;
  f.meta.track = 1;
  return f;
}

// Video at 25 fps (keyframe every `gop`) interleaved with 20 ms audio frames, in decode order.
struct Stream {
  std::vector<OwnedFrame> frames;
};

inline Stream make_stream(uint32_t vcodec, uint32_t acodec, int video_frames, int gop, std::mt19937& rng,
                          size_t max_video = 30000) {
  Stream s;
  int64_t v_pts = 90000, a_pts = 8000;
  for (int i = 0; i < video_frames; ++i) {
    bool key = i % gop == 0;
    size_t size = key ? max_video : 200 + rng() % (max_video / 4);
    if (vcodec == JN_CODEC_H264) s.frames.push_back(h264_frame(key, size, v_pts, rng, i % 3 == 1));
    else if (vcodec == JN_CODEC_H265) s.frames.push_back(h265_frame(key, size, v_pts, rng));
    v_pts += 3600;
    if (acodec) {
      // Audio up to the video time: 40 ms of video = two 20 ms G.711 frames.
      while (a_pts * 90000 / 8000 < v_pts) {
        s.frames.push_back(g711_frame(acodec, a_pts, rng));
        a_pts += 160;
      }
    }
  }
  // Frame counters as the demuxer numbers them: per track, from 0.
  uint32_t vs = 0, as = 0;
  for (auto& f : s.frames) {
    f.meta.seq = f.meta.kind == JN_MEDIA_VIDEO ? vs++ : as++;
    f.meta.track = f.meta.kind == JN_MEDIA_VIDEO ? 0 : 1;
  }
  return s;
}

inline std::vector<uint8_t> mux_all(const Stream& s, PsMuxerConfig cfg, std::vector<size_t>* bounds = nullptr) {
  PsMuxer mux(cfg);
  std::vector<uint8_t> out;
  for (auto& f : s.frames) {
    std::span<const uint8_t> ps;
    if (!mux.mux(f.view(), &ps)) throw std::runtime_error(std::string("mux: ") + mux.error());
    out.insert(out.end(), ps.begin(), ps.end());
    if (bounds) bounds->push_back(out.size());
  }
  return out;
}

struct Collect {  // a FrameSink (on_frame / on_error)
  std::vector<OwnedFrame> frames;
  std::vector<PsError> errors;
  void on_frame(const FrameView& f) {
    OwnedFrame o;
    o.data.assign(f.data, f.data + f.size);
    o.meta = f.meta;
    frames.push_back(std::move(o));
  }
  void on_error(PsError e, const char*) { errors.push_back(e); }
  bool saw(PsError e) const {
    for (auto x : errors)
      if (x == e) return true;
    return false;
  }
};

struct Packets : PsRtpPacketizer::Sink {
  std::vector<std::vector<uint8_t>> pkts;
  void on_packet(const uint8_t* p, size_t n) override { pkts.emplace_back(p, p + n); }
};

}  // namespace jn_test
