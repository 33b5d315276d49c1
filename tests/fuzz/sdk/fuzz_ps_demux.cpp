// Fuzz target: the MPEG-PS demuxer (sdk/media). Invariants, abort() when one breaks:
//  - the output does not depend on how the input is cut (whole vs. chunks chosen by the input);
//  - every video frame is Annex-B with 4-byte start codes, within the cap; every audio frame has
//    a codec and a clock rate; per track meta.seq strictly increases; nothing is JN_MF_CORRUPT;
//  - every frame re-muxed by the PsMuxer and demuxed again comes back with the same bytes.
#include <junction/media/ps_demuxer.hpp>
#include <junction/media/ps_muxer.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace junction::media;

namespace {

struct Out {
  std::vector<uint8_t> data;
  jn_media_meta meta;
};

struct Collect {
  std::vector<Out> frames;
  void on_frame(const FrameView& f) {
    if (f.size && !f.data) abort();
    frames.push_back(Out{std::vector<uint8_t>(f.data, f.data + f.size), f.meta});
  }
};

PsDemuxerConfig config() {
  PsDemuxerConfig c;
  c.max_video_frame = 1 << 16;  // small caps: reached by fuzzed inputs
  c.max_audio_frame = 4096;
  c.initial_video_reserve = 1024;
  return c;
}

std::vector<Out> run(const uint8_t* d, size_t n, const uint8_t* cuts, size_t ncuts) {
  PsDemuxer dm(config());
  Collect c;
  size_t off = 0, k = 0;
  while (off < n) {
    size_t len = ncuts ? 1 + cuts[k++ % ncuts] % 64 : n;
    if (len > n - off) len = n - off;
    dm.feed(d + off, len, c);
    off += len;
  }
  dm.flush(c);
  return std::move(c.frames);
}

void check_frames(const std::vector<Out>& frames) {
  int64_t last_seq[2] = {-1, -1};
  for (auto& f : frames) {
    if (f.meta.frame_flags & JN_MF_CORRUPT) abort();
    int t = f.meta.kind == JN_MEDIA_VIDEO ? 0 : 1;
    if (static_cast<int64_t>(f.meta.seq) <= last_seq[t]) abort();
    last_seq[t] = f.meta.seq;
    if (f.meta.kind == JN_MEDIA_VIDEO) {
      if (f.meta.codec != JN_CODEC_H264 && f.meta.codec != JN_CODEC_H265) abort();
      if (f.data.size() < 5 || std::memcmp(f.data.data(), "\0\0\0\1", 4) != 0) abort();
      if (f.data.size() > (1 << 16) + 4096) abort();
      if (f.meta.clock_rate != 90000) abort();
    } else {
      if (f.meta.kind != JN_MEDIA_AUDIO || !f.meta.codec || !f.meta.clock_rate) abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t ncuts = data[0] % 8;
  if (size < 1 + ncuts) return 0;
  const uint8_t* cuts = data + 1;
  const uint8_t* ps = data + 1 + ncuts;
  size_t n = size - 1 - ncuts;
  auto whole = run(ps, n, nullptr, 0);
  check_frames(whole);
  auto cut = run(ps, n, cuts, ncuts);
  if (cut.size() != whole.size()) abort();
  for (size_t i = 0; i < whole.size(); ++i)
    if (cut[i].data != whole[i].data || std::memcmp(&cut[i].meta, &whole[i].meta, sizeof(jn_media_meta)) != 0) abort();
  // Re-mux each frame alone and demux it back: the same bytes (video needs the next AU or flush).
  for (auto& f : whole) {
    if (f.meta.codec == JN_CODEC_AAC) continue;  // needs its config frame first
    PsMuxerConfig mc;
    mc.video_codec = f.meta.kind == JN_MEDIA_VIDEO ? f.meta.codec : uint32_t{JN_CODEC_NONE};
    mc.audio_codec = f.meta.kind == JN_MEDIA_AUDIO ? f.meta.codec : uint32_t{JN_CODEC_NONE};
    PsMuxer mux(mc);
    std::span<const uint8_t> out;
    if (!mux.mux(FrameView{f.data.data(), f.data.size(), f.meta}, &out)) abort();
    auto back = run(out.data(), out.size(), nullptr, 0);
    if (back.size() != 1 || back[0].data != f.data) abort();
  }
  return 0;
}
