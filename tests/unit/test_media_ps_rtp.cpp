// sdk/media PS over RTP: frames -> PS -> RTP -> PS -> frames byte-exact with reordering and
// duplicates; with 5 % packet loss (and with loss of raw PS chunks) only whole frames come out.
// operator new/delete are replaced below (malloc/free) to count allocations; GCC flags the
// inlined free of a `new`ed pointer it cannot see through.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#include <doctest/doctest.h>

#include "media_ps_util.hpp"

#include <junction/proto/rtp.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <cstdlib>
#include <new>

using namespace jn_test;

namespace {

std::vector<std::vector<uint8_t>> send_all(const Stream& s, uint32_t vcodec, uint32_t acodec, uint16_t first_seq = 65500) {
  PsRtpPacketizerConfig rc;
  rc.ssrc = 0x12345678;
  rc.first_seq = first_seq;  // wraps during the test
  PsRtpSender tx(PsMuxerConfig{vcodec, acodec}, rc);
  Packets out;
  for (auto& f : s.frames) REQUIRE(tx.send(f.view(), out));
  return out.pkts;
}

// Every output frame is one input frame, byte for byte (same track and pts); returns how many
// input frames are missing from the output.
size_t check_whole(const std::vector<OwnedFrame>& got, const Stream& s) {
  size_t matched = 0;
  for (auto& f : got) {
    const OwnedFrame* want = nullptr;
    for (auto& w : s.frames)
      if (w.meta.kind == f.meta.kind && w.meta.pts == f.meta.pts) want = &w;
    REQUIRE(want);
    CHECK(f.data == want->data);
    matched += f.data == want->data;
  }
  CHECK(matched == got.size());
  return s.frames.size() - got.size();
}

// Per track: every frame after a gap in the input sequence carries DISCONT, and seq shows the gap.
void check_gaps_flagged(const std::vector<OwnedFrame>& got) {
  for (uint8_t kind : {uint8_t{JN_MEDIA_VIDEO}, uint8_t{JN_MEDIA_AUDIO}}) {
    int64_t prev_seq = -1;
    for (auto& f : got) {
      if (f.meta.kind != kind) continue;
      if (prev_seq >= 0 && f.meta.seq != prev_seq + 1) {
        CHECK((f.meta.frame_flags & JN_MF_DISCONT) != 0);
      }
      CHECK(static_cast<int64_t>(f.meta.seq) > prev_seq);
      prev_seq = f.meta.seq;
    }
  }
}

}  // namespace

TEST_CASE("PS/RTP: packetizer: PT 96, sequence, marker at the end of each frame, 90 kHz timestamp") {
  std::mt19937 rng(20);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 3, 3, rng, 5000);
  auto pkts = send_all(s, JN_CODEC_H264, JN_CODEC_PCMA, 65534);
  namespace rtp = junction::proto::rtp;
  size_t markers = 0;
  uint16_t seq = 65534;
  for (auto& p : pkts) {
    rtp::Header h;
    REQUIRE(rtp::parse(p.data(), p.size(), h) == rtp::Error::None);
    CHECK(h.payload_type == 96);
    CHECK(h.seq == seq++);
    CHECK(h.ssrc == 0x12345678u);
    CHECK(p.size() <= 12 + 1400);
    markers += h.marker;
  }
  CHECK(markers == s.frames.size());
  rtp::Header last;
  rtp::parse(pkts.back().data(), pkts.back().size(), last);
  CHECK(last.marker);
  auto& lf = s.frames.back();
  CHECK(last.timestamp == static_cast<uint32_t>(lf.meta.pts * 90000 / lf.meta.clock_rate));  // the last frame's time
}

TEST_CASE("PS/RTP: frames -> PS -> RTP -> reordered + duplicated -> frames, byte-exact") {
  std::mt19937 rng(21);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 50, 10, rng, 60000);
  auto pkts = send_all(s, JN_CODEC_H264, JN_CODEC_PCMA);
  // Shuffle within groups of 5 packets, duplicate 3 %. The first packet stays first: a receiver
  // cannot know about packets sent before the first one it gets.
  std::vector<std::vector<uint8_t>> net{pkts[0]};
  for (size_t i = 1; i < pkts.size(); i += 5) {
    size_t end = std::min(pkts.size(), i + 5);
    std::vector<std::vector<uint8_t>> group(pkts.begin() + i, pkts.begin() + end);
    std::shuffle(group.begin(), group.end(), rng);
    for (auto& p : group) {
      net.push_back(p);
      if (rng() % 100 < 3) net.push_back(p);
    }
  }
  PsRtpReceiver rx;
  Collect c;
  for (auto& p : net) rx.on_rtp(p.data(), p.size(), c);
  rx.finish(c);
  CHECK(rx.stats().lost == 0);
  CHECK(rx.stats().reordered > 0);
  CHECK(rx.stats().duplicates + rx.stats().late > 0);
  CHECK(rx.stats().late + rx.stats().duplicates == net.size() - pkts.size());
  CHECK(c.errors.empty());
  // Same frames, same order per track, DISCONT only on the first of each.
  REQUIRE(c.frames.size() == s.frames.size());
  CHECK(check_whole(c.frames, s) == 0);
  for (auto& f : c.frames) CHECK(((f.meta.frame_flags & JN_MF_DISCONT) != 0) == (f.meta.seq == 0));
}

TEST_CASE("PS/RTP: 5 % packet loss with reordering: only whole frames, the gaps flagged") {
  for (uint32_t seed : {22u, 23u, 24u}) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    Stream s = make_stream(seed == 24 ? JN_CODEC_H265 : JN_CODEC_H264, JN_CODEC_PCMU, 150, 25, rng, 20000);
    auto pkts = send_all(s, seed == 24 ? JN_CODEC_H265 : JN_CODEC_H264, JN_CODEC_PCMU);
    std::vector<std::vector<uint8_t>> net;
    size_t dropped = 0;
    for (size_t i = 0; i < pkts.size(); ++i) {
      if (rng() % 100 < 5) {
        ++dropped;
        continue;
      }
      net.push_back(pkts[i]);
      if (net.size() >= 2 && rng() % 10 == 0) std::swap(net[net.size() - 1], net[net.size() - 2]);
    }
    REQUIRE(dropped > 0);
    PsRtpReceiver rx;
    Collect c;
    for (auto& p : net) rx.on_rtp(p.data(), p.size(), c);
    rx.finish(c);
    CHECK(rx.stats().lost == dropped);
    size_t missing = check_whole(c.frames, s);
    CHECK(missing > 0);
    CHECK(rx.demuxer().stats().dropped_frames > 0);
    CHECK(c.frames.size() > s.frames.size() / 2);  // loss of 5 % of packets does not lose everything
    check_gaps_flagged(c.frames);
  }
}

TEST_CASE("PS: a stream cut at random byte boundaries with 5 % of the chunks lost yields only whole frames") {
  std::mt19937 rng(25);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 200, 25, rng, 15000);
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA});
  SUBCASE("the transport reports the loss (mark_loss)") {
    PsDemuxer d;
    Collect c;
    size_t lost = 0;
    for (size_t off = 0; off < ps.size();) {
      size_t n = std::min(ps.size() - off, 1 + rng() % 1500);
      if (rng() % 100 < 5) {
        ++lost;
        d.mark_loss(c);
      } else {
        d.feed(ps.data() + off, n, c);
      }
      off += n;
    }
    d.flush(c);
    REQUIRE(lost > 0);
    CHECK(check_whole(c.frames, s) > 0);
    CHECK(d.stats().dropped_frames > 0);
    CHECK(c.frames.size() > s.frames.size() / 2);
    check_gaps_flagged(c.frames);
  }
  SUBCASE("nobody reports it (raw bytes over a broken TCP relay)") {
    PsDemuxer d;
    Collect c;
    for (size_t off = 0; off < ps.size();) {
      size_t n = std::min(ps.size() - off, 1 + rng() % 1500);
      if (rng() % 100 >= 5) d.feed(ps.data() + off, n, c);
      off += n;
    }
    d.flush(c);
    CHECK(check_whole(c.frames, s) > 0);
    CHECK(d.stats().resyncs > 0);
    CHECK(c.frames.size() > s.frames.size() / 3);
  }
}

TEST_CASE("PS/RTP receiver: wrong payload type, other SSRC, RTCP and garbage are ignored; a restarted source is followed") {
  std::mt19937 rng(26);
  Stream s = make_stream(JN_CODEC_H264, 0, 10, 5, rng, 3000);
  auto pkts = send_all(s, JN_CODEC_H264, 0, 100);
  PsRtpReceiver rx;
  Collect c;
  std::vector<uint8_t> rtcp = {0x80, 201, 0, 1, 1, 2, 3, 4};
  std::vector<uint8_t> junk = {0x00, 0x01, 0x02};
  for (size_t i = 0; i < pkts.size(); ++i) {
    rx.on_rtp(pkts[i].data(), pkts[i].size(), c);
    auto other = pkts[i];
    other[1] = static_cast<uint8_t>((other[1] & 0x80) | 8);  // PT 8
    rx.on_rtp(other.data(), other.size(), c);
    other = pkts[i];
    other[11] ^= 0xFF;  // another SSRC, a few packets only
    if (i < 5) rx.on_rtp(other.data(), other.size(), c);
    rx.on_rtp(rtcp.data(), rtcp.size(), c);
    rx.on_rtp(junk.data(), junk.size(), c);
  }
  rx.finish(c);
  CHECK(c.frames.size() == s.frames.size());
  CHECK(check_whole(c.frames, s) == 0);
  CHECK(rx.stats().wrong_pt == pkts.size());
  CHECK(rx.stats().wrong_ssrc == 5);
  CHECK(rx.stats().rtcp == pkts.size());
  CHECK(rx.stats().malformed == pkts.size());
  // The device restarts: new SSRC, new sequence numbers. Followed after ssrc_switch_after packets.
  Stream s2 = make_stream(JN_CODEC_H264, 0, 60, 5, rng, 3000);
  auto again = send_all(s2, JN_CODEC_H264, 0, 7);
  REQUIRE(again.size() > 2 * 32);
  for (auto& p : again) p[11] ^= 0x55;
  Collect c2;
  for (auto& p : again) rx.on_rtp(p.data(), p.size(), c2);
  rx.finish(c2);
  CHECK(rx.stats().ssrc_changes == 1);
  CHECK(c2.frames.size() > 0);
  check_whole(c2.frames, s2);
  CHECK((c2.frames.front().meta.frame_flags & JN_MF_DISCONT) != 0);
}

// Heap allocations, counted for the test below (this executable only).
static std::atomic<uint64_t> g_news{0};
void* operator new(size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

TEST_CASE("PS/RTP: no heap allocation per packet or frame once the buffers are sized") {
  std::mt19937 rng(27);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 100, 25, rng, 40000);
  auto pkts = send_all(s, JN_CODEC_H264, JN_CODEC_PCMA);
  struct Count : PsDemuxer::Sink {
    size_t frames = 0;
    void on_frame(const FrameView&) override { ++frames; }
  } count;
  PsRtpReceiver rx;
  // First pass sizes the buffers (the largest keyframe); the second must not allocate, with
  // reordering and a loss on the way.
  for (auto& p : pkts) rx.on_rtp(p.data(), p.size(), count);
  std::vector<const std::vector<uint8_t>*> order;
  for (auto& p : pkts) order.push_back(&p);
  for (size_t i = 1; i + 1 < order.size(); i += 7) std::swap(order[i], order[i + 1]);
  order.erase(order.begin() + static_cast<ptrdiff_t>(order.size() / 2));
  // Same stream again, sequence numbers and timestamps continuing (a rewritten header per copy).
  std::vector<std::vector<uint8_t>> again;
  for (auto* p : order) {
    auto q = *p;
    junction::proto::rtp::set_seq(q.data(), static_cast<uint16_t>(junction::proto::rtp::rd16(q.data() + 2) + pkts.size()));
    again.push_back(std::move(q));
  }
  size_t before_frames = count.frames;
  uint64_t before = g_news.load();
  for (auto& p : again) rx.on_rtp(p.data(), p.size(), count);
  rx.finish(count);
  uint64_t allocations = g_news.load() - before;
  CHECK(count.frames - before_frames > s.frames.size() / 2);
  CHECK(rx.stats().lost == 1);
  CHECK(allocations == 0);
  uint64_t probe = g_news.load();
  auto counted = std::make_unique<int>(1);  // the counter does count
  CHECK(g_news.load() > probe);
}
