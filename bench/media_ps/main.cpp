// PS demux throughput: sdk/media's PsDemuxer vs libavformat's mpegps demuxer (av_read_frame,
// which runs its H.264 parser to cut access units, as PsDemuxer does) on the same capture.
//
//   bench_media_ps CAPTURE.ps [--iterations N] [--chunk BYTES]
//
// The capture is fed to PsDemuxer in `chunk`-byte pieces (1400: RTP payloads), N times through one
// long-lived demuxer (the first pass, which sizes its buffers, is not timed). Heap allocations
// during the timed passes are counted by replacing operator new. libavformat reads the same bytes
// from memory through a custom AVIOContext, N times. Thread CPU time, best of the N passes.
#include <junction/media/ps_demuxer.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <vector>

#ifdef BENCH_HAVE_LAVF
extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>
}
#endif

namespace {
std::atomic<uint64_t> g_allocs{0};

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Count {
  uint64_t frames = 0, video = 0, bytes = 0;
  void on_frame(const junction::media::FrameView& f) {
    ++frames;
    video += f.meta.kind == JN_MEDIA_VIDEO;
    bytes += f.size;
  }
};

#ifdef BENCH_HAVE_LAVF
struct Mem {
  const uint8_t* p;
  size_t size, pos;
};
int mem_read(void* opaque, uint8_t* buf, int n) {
  auto* m = static_cast<Mem*>(opaque);
  size_t k = std::min<size_t>(static_cast<size_t>(n), m->size - m->pos);
  if (k == 0) return AVERROR_EOF;
  std::memcpy(buf, m->p + m->pos, k);
  m->pos += k;
  return static_cast<int>(k);
}
// One pass: returns packets read (video, all).
std::pair<uint64_t, uint64_t> lavf_pass(const std::vector<uint8_t>& data) {
  Mem m{data.data(), data.size(), 0};
  auto* iobuf = static_cast<uint8_t*>(av_malloc(32768));
  AVIOContext* io = avio_alloc_context(iobuf, 32768, 0, &m, mem_read, nullptr, nullptr);
  AVFormatContext* fmt = avformat_alloc_context();
  fmt->pb = io;
  uint64_t video = 0, all = 0;
  if (avformat_open_input(&fmt, nullptr, av_find_input_format("mpeg"), nullptr) == 0) {
    AVPacket* pkt = av_packet_alloc();
    while (av_read_frame(fmt, pkt) >= 0) {
      ++all;
      if (fmt->streams[pkt->stream_index]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) ++video;
      av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
  }
  av_freep(&io->buffer);
  avio_context_free(&io);
  return {video, all};
}
#endif
}  // namespace

void* operator new(size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_media_ps CAPTURE.ps [--iterations N] [--chunk BYTES]\n");
    return 2;
  }
  int iterations = 10;
  size_t chunk = 1400;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--iterations") iterations = std::atoi(argv[i + 1]);
    if (std::string(argv[i]) == "--chunk") chunk = static_cast<size_t>(std::atoll(argv[i + 1]));
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.empty()) {
    std::fprintf(stderr, "empty capture %s\n", argv[1]);
    return 1;
  }
  junction::media::PsDemuxer demux;
  Count warm;
  for (size_t off = 0; off < data.size(); off += chunk) demux.feed(data.data() + off, std::min(chunk, data.size() - off), warm);
  demux.flush(warm);
  double best = 1e9;
  uint64_t frames = 0, video = 0, allocs = 0;
  for (int it = 0; it < iterations; ++it) {
    Count c;
    uint64_t a0 = g_allocs.load();
    double t0 = cpu_seconds();
    for (size_t off = 0; off < data.size(); off += chunk) demux.feed(data.data() + off, std::min(chunk, data.size() - off), c);
    demux.flush(c);
    double t = cpu_seconds() - t0;
    allocs += g_allocs.load() - a0;
    frames = c.frames, video = c.video;
    if (t < best) best = t;
  }
  double mb = static_cast<double>(data.size()) / 1e6;
  std::printf("capture: %.2f MB, %llu frames (%llu video) per pass\n", mb, static_cast<unsigned long long>(frames),
              static_cast<unsigned long long>(video));
  std::printf("junction PsDemuxer   : %8.1f MB/s  %7.1f ns/frame  %7.1f ns/video frame  %.3f allocations/frame  (chunk %zu B, errors %llu, dropped %llu)\n",
              mb / best, best * 1e9 / static_cast<double>(frames), best * 1e9 / static_cast<double>(video),
              static_cast<double>(allocs) / static_cast<double>(frames * static_cast<uint64_t>(iterations)), chunk,
              static_cast<unsigned long long>(demux.stats().errors), static_cast<unsigned long long>(demux.stats().dropped_frames));
#ifdef BENCH_HAVE_LAVF
  av_log_set_level(AV_LOG_QUIET);
  double lbest = 1e9;
  std::pair<uint64_t, uint64_t> got{};
  lavf_pass(data);  // warm up
  for (int it = 0; it < iterations; ++it) {
    double t0 = cpu_seconds();
    got = lavf_pass(data);
    double t = cpu_seconds() - t0;
    if (t < lbest) lbest = t;
  }
  std::printf("libavformat mpegps   : %8.1f MB/s  %7.1f ns/packet %7.1f ns/video frame  (%llu packets, %llu video)\n", mb / lbest,
              lbest * 1e9 / static_cast<double>(got.second), lbest * 1e9 / static_cast<double>(got.first),
              static_cast<unsigned long long>(got.second),
              static_cast<unsigned long long>(got.first));
  std::printf("ratio                : %.2fx\n", lbest / best);
#else
  std::printf("libavformat mpegps   : not built (libavformat not found)\n");
#endif
  return 0;
}
