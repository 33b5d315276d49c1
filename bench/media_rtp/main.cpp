// H.264 RTP packetize and depacketize cost per packet (sdk/media), on a real libx264 stream.
//   bench_media_rtp STREAM.h264 [MTU] [ROUNDS]
// Splits the Annex-B stream into access units, then times: packetizing every unit (H264Packetizer,
// mode 1), and depacketizing every packet back to units (H264Depacketizer). Reports ns per packet
// and per frame, MB/s of payload, and the heap allocations made inside the timed loops (counted
// by replacing operator new in this program; the target is 0).
#include "../../tests/tools/media_rtp_es.hpp"

#include <junction/media/h264_rtp.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

static std::atomic<uint64_t> g_allocs{0};
void* operator new(size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

using namespace junction::media;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_media_rtp STREAM.h264 [MTU] [ROUNDS]\n");
    return 2;
  }
  size_t mtu = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1200;
  int rounds = argc > 3 ? std::atoi(argv[3]) : 20;
  std::vector<uint8_t> es = media_rtp_es::read_file(argv[1]);
  auto aus = media_rtp_es::split_aus(es, false);
  if (aus.empty()) {
    std::fprintf(stderr, "no access units in %s\n", argv[1]);
    return 1;
  }
  // The packets of one pass, kept flat for the depacketize loop (built outside the timing).
  std::vector<uint8_t> flat;
  std::vector<std::pair<size_t, size_t>> pkts;
  {
    H264Packetizer pk(PacketizerConfig{.payload_type = 96, .ssrc = 1, .first_seq = 0, .ts_offset = 0, .clock_rate = 0, .mtu = mtu}, 1);
    auto keep = [&](const uint8_t* p, size_t n) {
      pkts.emplace_back(flat.size(), n);
      flat.insert(flat.end(), p, p + n);
    };
    for (size_t i = 0; i < aus.size(); ++i) {
      FrameView f{es.data() + aus[i].first, aus[i].second, {}};
      f.meta.pts = static_cast<int64_t>(i) * 3600;
      pk.packetize(f, packet_sink(keep));
    }
  }
  const double payload_mb = static_cast<double>(es.size()) / 1e6;

  // Packetize: every unit, `rounds` times; the sink only touches the packet (a real one sends it).
  H264Packetizer pk(PacketizerConfig{.payload_type = 96, .ssrc = 1, .first_seq = 0, .ts_offset = 0, .clock_rate = 0, .mtu = mtu}, 1);
  uint64_t sink_sum = 0;
  auto touch = [&](const uint8_t* p, size_t n) { sink_sum += p[n - 1] + n; };
  uint64_t a0 = g_allocs.load();
  auto t0 = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < aus.size(); ++i) {
      FrameView f{es.data() + aus[i].first, aus[i].second, {}};
      f.meta.pts = static_cast<int64_t>(r * aus.size() + i) * 3600;
      pk.packetize(f, packet_sink(touch));
    }
  }
  double pk_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  uint64_t pk_allocs = g_allocs.load() - a0;

  // Depacketize: the same packets in order, `rounds` times (sequence numbers continue).
  H264Depacketizer dp(DepacketizerConfig{});
  size_t frames_out = 0;
  auto count = [&](const FrameView& f) { frames_out += f.size > 0; };
  std::vector<uint8_t> pkt(65536);
  uint16_t seq = 0;
  a0 = g_allocs.load();
  t0 = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (auto [off, n] : pkts) {
      // Sequence numbers and timestamps must keep going across rounds: rewrite them in a copy
      // (a memcpy of one packet, which a receive path pays too).
      std::memcpy(pkt.data(), flat.data() + off, n);
      junction::proto::rtp::set_seq(pkt.data(), seq++);
      junction::proto::rtp::set_timestamp(pkt.data(), junction::proto::rtp::rd32(pkt.data() + 4) + static_cast<uint32_t>(r * aus.size() * 3600));
      dp.push(pkt.data(), n, frame_sink(count));
    }
  }
  double dp_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  uint64_t dp_allocs = g_allocs.load() - a0;

  // The Annex-B scan alone (annexb::for_each_nal over every unit): the share of packetizing
  // spent finding start codes.
  size_t nal_count = 0;
  t0 = Clock::now();
  for (int r = 0; r < rounds; ++r)
    for (auto [off, n] : aus)
      nal_count += annexb::for_each_nal(es.data() + off, n, [](const uint8_t*, size_t) { return true; });
  double scan_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();

  double n_pkts = static_cast<double>(pkts.size()) * rounds, n_frames = static_cast<double>(aus.size()) * rounds;
  std::printf("stream: %zu bytes, %zu access units, %zu packets per pass (MTU %zu), %d rounds\n", es.size(), aus.size(),
              pkts.size(), mtu, rounds);
  std::printf("packetize:   %7.1f ns/packet  %8.1f ns/frame  %7.0f MB/s  allocations in loop: %llu\n", pk_ns / n_pkts,
              pk_ns / n_frames, payload_mb * rounds / (pk_ns / 1e9), static_cast<unsigned long long>(pk_allocs));
  std::printf("depacketize: %7.1f ns/packet  %8.1f ns/frame  %7.0f MB/s  allocations in loop: %llu  (frames out %zu of %.0f, dropped %llu)\n",
              dp_ns / n_pkts, dp_ns / n_frames, payload_mb * rounds / (dp_ns / 1e9), static_cast<unsigned long long>(dp_allocs),
              frames_out, n_frames, static_cast<unsigned long long>(dp.stats().frames_dropped));
  std::printf("annex-b scan alone (for_each_nal): %7.1f ns/packet  %8.1f ns/frame  (%zu NAL units)\n", scan_ns / n_pkts,
              scan_ns / n_frames, nal_count);
  return sink_sum == 0;  // keeps the sink's work
}
