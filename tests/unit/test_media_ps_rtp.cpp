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

// This binary replaces the global operator new/delete with malloc/free (to count allocations);
// GCC 12 at -O1 inlines the pair and warns that free() meets a pointer from operator new, which
// is exactly the replacement: a known false positive of -Wmismatched-new-delete.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

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
  struct Count {
    size_t frames = 0;
    void on_frame(const FrameView&) { ++frames; }
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

// --- the RTP marker closes a frame (PsDemuxer::frame_end) ---------------------------------------
namespace {

struct MarkerRun {
  Collect c;
  size_t on_time = 0, late = 0;  // video frames out by the end of their own packets / later
  MarkerMode mode = MarkerMode::Learning;
  PsDemuxerStats st;
};

// Sends the stream frame by frame through PsRtpSender; `edit` may change each frame's packets
// (marker bits) before the receiver gets them.
template <class Edit>
MarkerRun run_marker(const Stream& s, Edit edit) {
  PsRtpPacketizerConfig rc;
  rc.ssrc = 0x4D4B;
  PsRtpSender tx(PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA}, rc);
  PsRtpReceiver rx;
  MarkerRun r;
  size_t i = 0;
  for (auto& f : s.frames) {
    Packets out;
    REQUIRE(tx.send(f.view(), out));
    edit(i++, f, out.pkts);
    for (auto& p : out.pkts) rx.on_rtp(p.data(), p.size(), r.c);
    if (f.meta.kind != JN_MEDIA_VIDEO) continue;
    bool out_now = false;
    for (auto& g : r.c.frames)
      if (g.meta.kind == JN_MEDIA_VIDEO && g.meta.pts == f.meta.pts) out_now = true;
    ++(out_now ? r.on_time : r.late);
  }
  rx.finish(r.c);
  r.mode = rx.demuxer().marker_mode();
  r.st = rx.demuxer().stats();
  return r;
}

size_t video_count(const Stream& s) {
  return static_cast<size_t>(std::count_if(s.frames.begin(), s.frames.end(),
                                           [](const OwnedFrame& f) { return f.meta.kind == JN_MEDIA_VIDEO; }));
}

}  // namespace

TEST_CASE("PS/RTP marker: by default every video frame (the first keyframe included) comes out with its own last packet") {
  std::mt19937 rng(30);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 30, 10, rng, 20000);
  MarkerRun r = run_marker(s, [](size_t, const OwnedFrame&, std::vector<std::vector<uint8_t>>&) {});
  CHECK(r.late == 0);
  CHECK(r.on_time == 30);
  CHECK(r.mode == MarkerMode::Trusted);
  CHECK(r.st.marker_frames == 30);
  CHECK(r.st.marker_mismatches == 0);
  REQUIRE(r.c.frames.size() == s.frames.size());
  CHECK(check_whole(r.c.frames, s) == 0);
  // Audio too: each G.711 PES at its own marker, not at the next start code.
  for (auto& f : r.c.frames) CHECK(((f.meta.frame_flags & JN_MF_DISCONT) != 0) == (f.meta.seq == 0));
}

TEST_CASE("PS/RTP marker: marker_trust_after 3: frames close by the old rule until 3 markers were verified on AU boundaries") {
  std::mt19937 rng(30);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 30, 10, rng, 20000);
  PsRtpPacketizerConfig rc;
  PsRtpSender tx(PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA}, rc);
  PsRtpReceiverConfig cfg;
  cfg.demux.marker_trust_after = 3;
  PsRtpReceiver rx(cfg);
  Collect c;
  size_t late = 0, on_time = 0;
  for (auto& f : s.frames) {
    Packets out;
    REQUIRE(tx.send(f.view(), out));
    for (auto& p : out.pkts) rx.on_rtp(p.data(), p.size(), c);
    if (f.meta.kind != JN_MEDIA_VIDEO) continue;
    bool out_now = !c.frames.empty() && c.frames.back().meta.kind == JN_MEDIA_VIDEO && c.frames.back().meta.pts == f.meta.pts;
    ++(out_now ? on_time : late);
  }
  rx.finish(c);
  // Frames 0..2 close by the old rule while their markers are checked; from frame 3 on, at the marker.
  CHECK(late == 3);
  CHECK(on_time == 27);
  CHECK(rx.demuxer().marker_mode() == MarkerMode::Trusted);
  CHECK(rx.demuxer().stats().marker_frames == 27);
  CHECK(rx.demuxer().stats().marker_mismatches == 0);
  REQUIRE(c.frames.size() == s.frames.size());
  CHECK(check_whole(c.frames, s) == 0);
  for (auto& f : c.frames) CHECK(((f.meta.frame_flags & JN_MF_DISCONT) != 0) == (f.meta.seq == 0));
}

TEST_CASE("PS/RTP marker: a device that never sets it: every frame one late (the old rule), nothing lost") {
  std::mt19937 rng(31);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 20, 10, rng, 20000);
  MarkerRun r = run_marker(s, [](size_t, const OwnedFrame&, std::vector<std::vector<uint8_t>>& pkts) {
    for (auto& p : pkts) junction::proto::rtp::set_marker(p.data(), false);
  });
  CHECK(r.on_time == 0);
  CHECK(r.late == video_count(s));
  CHECK(r.st.markers == 0);
  CHECK(r.st.marker_frames == 0);
  REQUIRE(r.c.frames.size() == s.frames.size());
  CHECK(check_whole(r.c.frames, s) == 0);
}

TEST_CASE("PS/RTP marker: a marker on every packet is detected and ignored; frames stay whole") {
  std::mt19937 rng(32);
  // Large keyframes: several packets each, so a marker falls inside a PES.
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 20, 5, rng, 20000);
  MarkerRun r = run_marker(s, [](size_t, const OwnedFrame&, std::vector<std::vector<uint8_t>>& pkts) {
    for (auto& p : pkts) junction::proto::rtp::set_marker(p.data(), true);
  });
  REQUIRE(r.c.frames.size() == s.frames.size());
  CHECK(check_whole(r.c.frames, s) == 0);
  CHECK(r.on_time == 0);  // the first keyframe's packets already show the marker is not a frame end
  CHECK(r.mode == MarkerMode::Ignored);
  CHECK(r.st.marker_mismatches == 1);
  CHECK(r.st.marker_frames == 0);
  for (auto& f : r.c.frames) CHECK(((f.meta.frame_flags & JN_MF_DISCONT) != 0) == (f.meta.seq == 0));
}

TEST_CASE("PS/RTP marker: a trusted marker that starts lying mid-stream is dropped without losing a frame") {
  std::mt19937 rng(33);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 30, 10, rng, 20000);
  size_t lie_at = 0;
  MarkerRun r = run_marker(s, [&](size_t i, const OwnedFrame& f, std::vector<std::vector<uint8_t>>& pkts) {
    // The keyframe at 20 (several packets): marker on its first packet too.
    if (f.meta.kind == JN_MEDIA_VIDEO && f.meta.seq == 20) {
      REQUIRE(pkts.size() > 1);
      junction::proto::rtp::set_marker(pkts[0].data(), true);
      lie_at = i;
    }
  });
  CHECK(lie_at > 0);
  REQUIRE(r.c.frames.size() == s.frames.size());
  CHECK(check_whole(r.c.frames, s) == 0);
  CHECK(r.on_time == 20);  // trusted up to 19; the old rule from 20 on
  CHECK(r.mode == MarkerMode::Ignored);
  CHECK(r.st.marker_mismatches == 1);
  CHECK(r.st.marker_frames == 20);
  for (auto& f : r.c.frames) CHECK(((f.meta.frame_flags & JN_MF_DISCONT) != 0) == (f.meta.seq == 0));
}

// --- hot reload: the receiver's state carried to a new one (PsRtpReceiver::save / restore) ------

TEST_CASE("PS/RTP reload: a receiver saved mid-keyframe (a packet held for reordering) and restored completes every frame") {
  std::mt19937 rng(50);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 30, 10, rng, 60000);  // 60 kB keyframes: ~43 packets
  PsRtpPacketizerConfig rc;
  PsRtpSender tx(PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA}, rc);
  Packets pk;
  size_t key_start = 0, key_end = 0;
  for (auto& f : s.frames) {
    if (f.meta.kind == JN_MEDIA_VIDEO && f.meta.seq == 20) key_start = pk.pkts.size();
    REQUIRE(tx.send(f.view(), pk));
    if (f.meta.kind == JN_MEDIA_VIDEO && f.meta.seq == 20) key_end = pk.pkts.size();
  }
  REQUIRE(key_end - key_start > 20);
  size_t cut = key_start + (key_end - key_start) / 2;
  auto net = pk.pkts;
  std::swap(net[cut - 1], net[cut]);  // the packet before the cut arrives after it: held at the swap

  Collect c;
  auto rx = std::make_unique<PsRtpReceiver>();
  for (size_t i = 0; i < cut; ++i) rx->on_rtp(net[i].data(), net[i].size(), c);
  size_t before = c.frames.size();
  std::vector<uint8_t> blob;
  rx->save(blob);
  auto mode = rx->demuxer().marker_mode();
  rx.reset();  // the old instance goes away
  auto rx2 = std::make_unique<PsRtpReceiver>();
  REQUIRE(rx2->restore(blob.data(), blob.size()));
  CHECK(rx2->demuxer().marker_mode() == mode);
  CHECK(mode == MarkerMode::Trusted);
  for (size_t i = cut; i < net.size(); ++i) rx2->on_rtp(net[i].data(), net[i].size(), c);
  rx2->finish(c);
  CHECK(before < c.frames.size());
  CHECK(rx2->stats().lost == 0);
  CHECK(rx2->stats().reordered > 0);  // counters continue
  CHECK(c.errors.empty());
  REQUIRE(c.frames.size() == s.frames.size());
  CHECK(check_whole(c.frames, s) == 0);
  for (auto& f : c.frames) CHECK(((f.meta.frame_flags & JN_MF_DISCONT) != 0) == (f.meta.seq == 0));

  // Without the state (what a reload did before): the keyframe straddling the swap is lost.
  Collect c2;
  PsRtpReceiver a, b;
  for (size_t i = 0; i < cut; ++i) a.on_rtp(net[i].data(), net[i].size(), c2);
  for (size_t i = cut; i < net.size(); ++i) b.on_rtp(net[i].data(), net[i].size(), c2);
  b.finish(c2);
  CHECK(c2.frames.size() < s.frames.size());
}

TEST_CASE("PS/RTP reload: a blob that is not a receiver state is refused; the receiver starts afresh and resyncs") {
  std::mt19937 rng(51);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 20, 10, rng, 20000);
  auto pkts = send_all(s, JN_CODEC_H264, JN_CODEC_PCMA);
  PsRtpReceiver rx;
  Collect c;
  for (size_t i = 0; i < pkts.size() / 2; ++i) rx.on_rtp(pkts[i].data(), pkts[i].size(), c);
  std::vector<uint8_t> blob;
  rx.save(blob);
  for (size_t cut : {size_t{0}, size_t{3}, blob.size() / 2, blob.size() - 1}) {
    CAPTURE(cut);
    PsRtpReceiver r2;
    CHECK_FALSE(r2.restore(blob.data(), cut));
    Collect c2;
    for (size_t i = pkts.size() / 2; i < pkts.size(); ++i) r2.on_rtp(pkts[i].data(), pkts[i].size(), c2);
    r2.finish(c2);
    CHECK(!c2.frames.empty());
    for (auto& f : c2.frames) {
      const OwnedFrame* want = nullptr;
      for (auto& w : s.frames)
        if (w.meta.kind == f.meta.kind && w.meta.pts == f.meta.pts) want = &w;
      REQUIRE(want);
      CHECK(f.data == want->data);  // whole frames only
    }
  }
  // Flipped bytes in the demuxer part: refused or taken, never a crash (ASan build).
  for (size_t i = 40; i < blob.size(); i += 97) {
    auto bad = blob;
    bad[i] ^= 0xA5;
    PsRtpReceiver r3;
    r3.restore(bad.data(), bad.size());
    Collect c3;
    for (size_t k = pkts.size() / 2; k < pkts.size(); ++k) r3.on_rtp(pkts[k].data(), pkts[k].size(), c3);
    r3.finish(c3);
  }
}
