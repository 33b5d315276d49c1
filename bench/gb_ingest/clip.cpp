// gb_ingest_clip: H.264 Annex-B (with AUDs) -> the clip gbgen replays (../shared/peers/zlmediakit/
// gbgen.c): PREFIX.ps, one PS pack per video frame from sdk/media's PsMuxer (system header + PSM on
// keyframes), and PREFIX.idx, one line per frame "offset length key pts_off" (pts_off: the byte
// offset of the first PES's 5-byte PTS inside the unit).
//   gb_ingest_clip IN.h264 PREFIX
#include <junction/media/ps_muxer.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

using namespace junction::media;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: gb_ingest_clip IN.h264 PREFIX\n");
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<uint8_t> es((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Start codes of AUD NAL units (type 9) cut the stream into access units.
  std::vector<size_t> cuts;
  for (size_t i = 0; i + 4 < es.size(); ++i)
    if (es[i] == 0 && es[i + 1] == 0 && es[i + 2] == 1 && (es[i + 3] & 0x1F) == 9) cuts.push_back(i > 0 && es[i - 1] == 0 ? i - 1 : i);
  if (cuts.empty()) {
    std::fprintf(stderr, "no access unit delimiters (encode with -bsf:v h264_metadata=aud=insert)\n");
    return 1;
  }
  cuts.push_back(es.size());
  PsMuxerConfig mc;
  mc.audio_codec = JN_CODEC_NONE;
  PsMuxer mux(mc);
  std::ofstream ps(std::string(argv[2]) + ".ps", std::ios::binary);
  std::ofstream idx(std::string(argv[2]) + ".idx");
  size_t off = 0, frames = 0;
  for (size_t k = 0; k + 1 < cuts.size(); ++k) {
    std::vector<uint8_t> au;
    // 4-byte start codes throughout (media_frame.h's convention).
    for (size_t i = cuts[k]; i < cuts[k + 1];) {
      if (es[i] == 0 && es[i + 1] == 0 && es[i + 2] == 1) {
        au.insert(au.end(), {0, 0, 0, 1});
        i += 3;
      } else if (i + 3 < cuts[k + 1] && es[i] == 0 && es[i + 1] == 0 && es[i + 2] == 0 && es[i + 3] == 1) {
        au.insert(au.end(), {0, 0, 0, 1});
        i += 4;
      } else {
        au.push_back(es[i++]);
      }
    }
    bool key = false;
    for (size_t i = 0; i + 4 < au.size(); ++i)
      if (au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 && (au[i + 3] & 0x1F) == 5) key = true;
    FrameView f{au.data(), au.size(), {}};
    f.meta.pts = f.meta.dts = 90000 + static_cast<int64_t>(k) * 3600;
    f.meta.clock_rate = 90000;
    f.meta.codec = JN_CODEC_H264;
    f.meta.kind = JN_MEDIA_VIDEO;
    f.meta.frame_flags = key ? (JN_MF_KEY | JN_MF_CONFIG) : 0;
    std::span<const uint8_t> out;
    if (!mux.mux(f, &out)) {
      std::fprintf(stderr, "mux: %s\n", mux.error());
      return 1;
    }
    size_t pts_off = 0;
    for (size_t i = 0; i + 9 < out.size(); ++i)
      if (out[i] == 0 && out[i + 1] == 0 && out[i + 2] == 1 && out[i + 3] == 0xE0) {
        pts_off = i + 9;
        break;
      }
    ps.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
    idx << off << ' ' << out.size() << ' ' << (key ? 1 : 0) << ' ' << pts_off << '\n';
    off += out.size();
    ++frames;
  }
  std::printf("%zu frames, %zu bytes\n", frames, off);
  return 0;
}
