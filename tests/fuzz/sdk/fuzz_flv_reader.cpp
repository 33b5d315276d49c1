// Fuzz target: stream bytes into sdk/rtmp's FLV reader (junction/rtmp/flv_reader.hpp).
// Input: byte 0 = the piece size the rest is fed in (1..256, 0 = all at once) and, bit 0 of
// byte 1, whether PreviousTagSize is checked; the rest = FLV bytes. Invariants, abort() when one
// breaks:
//  - the frames (bytes, metadata), errors and final state are the same whether the bytes come
//    all at once or in pieces;
//  - every video frame is Annex B (starts with 00 00 00 01), a keyframe carries JN_MF_CONFIG
//    and starts with its SPS; per-track seq counts 0, 1, 2...;
//  - a failed reader reports exactly one fatal error, returns false forever and hands on nothing
//    more; buffered() never exceeds 11 + max_tag_bytes + 4.
#include <junction/rtmp/flv_reader.hpp>

#include <cstdint>
#include <cstdlib>
#include <vector>

using namespace junction;
using namespace junction::rtmp;

namespace {

struct Digest {
  uint64_t h = 1469598103934665603ull;
  uint32_t vseq = 0, aseq = 0;
  size_t fatal = 0, frames_after_fail = 0;
  const flv::Reader* r = nullptr;
  void mix(uint64_t v) { h = (h ^ v) * 1099511628211ull; }
  void on_frame(const media::FrameView& f) {
    if (r->failed()) ++frames_after_fail;
    mix(f.size);
    for (size_t i = 0; i < f.size; ++i) mix(f.data[i]);
    mix(static_cast<uint64_t>(f.meta.pts));
    mix(static_cast<uint64_t>(f.meta.dts));
    mix(f.meta.codec);
    mix(f.meta.frame_flags);
    mix(f.meta.clock_rate);
    if (f.meta.kind == JN_MEDIA_VIDEO) {
      if (f.meta.seq != vseq++) abort();
      if (f.size < 5 || f.data[0] || f.data[1] || f.data[2] || f.data[3] != 1) abort();
      if ((f.meta.frame_flags & JN_MF_KEY) && (!(f.meta.frame_flags & JN_MF_CONFIG) || (f.data[4] & 0x1f) != 7)) abort();
    } else if (f.meta.kind == JN_MEDIA_AUDIO) {
      if (f.meta.seq != aseq++) abort();
      if (f.size == 0) abort();
    } else {
      abort();
    }
  }
  void on_error(flv::ReadError e, const char*) {
    mix(1000 + static_cast<int>(e));
    if (e != flv::ReadError::kUnsupportedCodec && !(e == flv::ReadError::kBadNalu && !r->failed())) ++fatal;
  }
};

uint64_t run(const uint8_t* p, size_t n, size_t piece, bool check_pts, bool* failed) {
  flv::ReaderConfig cfg;
  cfg.max_tag_bytes = 1u << 16;
  cfg.check_prev_tag_size = check_pts;
  flv::Reader r(cfg);
  Digest d;
  d.r = &r;
  if (piece == 0) piece = n ? n : 1;
  bool ok = true;
  for (size_t i = 0; i < n; i += piece) {
    bool fed = r.feed(p + i, piece < n - i ? piece : n - i, d);
    if (!ok && fed) abort();  // a failed reader stays failed
    ok = fed;
    if (r.buffered() > 11 + cfg.max_tag_bytes + 4) abort();
  }
  if (ok == r.failed()) abort();
  if (d.fatal != (r.failed() ? 1u : 0u) || d.frames_after_fail) abort();
  *failed = r.failed();
  d.mix(r.failed() ? 1 : 0);
  return d.h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t piece = data[0];
  bool check_pts = data[1] & 1;
  bool f1 = false, f2 = false;
  uint64_t whole = run(data + 2, size - 2, 0, check_pts, &f1);
  uint64_t pieces = run(data + 2, size - 2, piece, check_pts, &f2);
  if (whole != pieces || f1 != f2) abort();
  return 0;
}
