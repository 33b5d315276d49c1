// StreamReceiver (src/media/receiver.hpp): PS/RTP over UDP and TCP to whole frames, the SSRC
// policy, TCP resync, stats. Streams are synthetic (tests/unit/media_ps_util.hpp) or real SPS.
#include "receiver.hpp"

#include "media_ps_util.hpp"

#include <doctest/doctest.h>

#include <map>
#include <random>

using namespace gb::media;
using namespace jn_test;

namespace {

struct Out : StreamReceiver::Sink {
  std::vector<OwnedFrame> frames;
  std::map<Problem, int> problems;
  void on_frame(const FrameView& f) override {
    OwnedFrame o;
    o.data.assign(f.data, f.data + f.size);
    o.meta = f.meta;
    frames.push_back(std::move(o));
  }
  void on_problem(Problem p, const char*) override { ++problems[p]; }
};

// A GB stream (H.264 + G.711A) as RTP packets of the given SSRC.
std::vector<std::vector<uint8_t>> rtp_stream(const Stream& s, uint32_t ssrc, uint16_t first_seq = 1000) {
  PsRtpPacketizerConfig pc;
  pc.ssrc = ssrc;
  pc.first_seq = first_seq;
  PsRtpSender tx(PsMuxerConfig{}, pc);
  Packets pk;
  for (auto& f : s.frames) REQUIRE(tx.send(f.view(), pk));
  return pk.pkts;
}

// Every frame out is byte-identical to the source frame of its track and timestamp.
void check_whole(const Stream& src, const std::vector<OwnedFrame>& got) {
  std::map<std::pair<int, int64_t>, const OwnedFrame*> by;
  for (auto& f : src.frames) by[{f.meta.track, f.meta.pts}] = &f;
  for (auto& g : got) {
    auto it = by.find({g.meta.track, g.meta.pts});
    REQUIRE(it != by.end());
    CHECK(it->second->data == g.data);
  }
}

std::vector<uint8_t> rfc4571(const std::vector<std::vector<uint8_t>>& pkts) {
  std::vector<uint8_t> out;
  for (auto& p : pkts) {
    out.push_back(static_cast<uint8_t>(p.size() >> 8));
    out.push_back(static_cast<uint8_t>(p.size()));
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

}  // namespace

TEST_CASE("gb media: UDP with 5 % loss and reordering publishes only whole frames and counts the loss") {
  std::mt19937 rng(14);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 100, 25, rng, 8000);
  auto pkts = rtp_stream(s, 100000001);
  // Drop 5 %, swap some neighbours.
  std::vector<std::vector<uint8_t>> sent;
  for (size_t i = 0; i < pkts.size(); ++i)
    if (rng() % 100 >= 5) sent.push_back(pkts[i]);
  for (size_t i = 1; i + 1 < sent.size(); i += 7) std::swap(sent[i], sent[i + 1]);
  ReceiverConfig cfg;
  cfg.ssrc = 100000001;
  StreamReceiver r(cfg);
  Out out;
  uint64_t t = 1000;
  for (auto& p : sent) r.on_datagram(p.data(), p.size(), t++, out);
  r.finish(out);
  Stats st;
  r.fill(st);
  CHECK(st.lost > 0);
  CHECK(st.reordered > 0);
  CHECK(out.frames.size() < s.frames.size());
  CHECK(out.frames.size() > s.frames.size() / 2);
  check_whole(s, out.frames);
  // After a loss the next frame of the track says so (a consumer waits for a keyframe).
  bool discont = false;
  for (auto& f : out.frames) discont |= (f.meta.frame_flags & JN_MF_DISCONT) && f.meta.seq > 0;
  CHECK(discont);
}

TEST_CASE("gb media: the answer's SSRC differs from the offer's: the answer's is the stream's") {
  std::mt19937 rng(1);
  Stream s = make_stream(JN_CODEC_H264, 0, 30, 10, rng, 4000);
  ReceiverConfig cfg;
  cfg.ssrc = 111;  // offer's y=
  StreamReceiver r(cfg);
  r.adopt_answer(true, 222, 96);
  Out out;
  // Two packets of the offer's SSRC (a stale source) first: ignored and counted.
  auto stale = rtp_stream(s, 111, 5);
  for (int i = 0; i < 2; ++i) r.on_datagram(stale[i].data(), stale[i].size(), 1, out);
  for (auto& p : rtp_stream(s, 222)) r.on_datagram(p.data(), p.size(), 2, out);
  r.finish(out);
  CHECK(r.ssrc() == 222);
  Stats st;
  r.fill(st);
  CHECK(st.wrong_ssrc == 2);
  CHECK(out.problems[Problem::WrongSsrc] == 2);
  CHECK(out.frames.size() == s.frames.size());
  check_whole(s, out.frames);
}

TEST_CASE("gb media: an answer with y=0 learns the SSRC from the stream") {
  std::mt19937 rng(2);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 20, 10, rng, 4000);
  ReceiverConfig cfg;
  cfg.ssrc = 100000005;
  StreamReceiver r(cfg);
  r.adopt_answer(true, 0, 96);
  Out out;
  for (auto& p : rtp_stream(s, 0x0BADF00D)) r.on_datagram(p.data(), p.size(), 1, out);
  r.finish(out);
  CHECK(r.ssrc() == 0x0BADF00D);
  CHECK(out.frames.size() == s.frames.size());
  check_whole(s, out.frames);
}

TEST_CASE("gb media: TCP (RFC 4571) cut at random byte boundaries yields every frame, byte-exact") {
  std::mt19937 rng(3);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 60, 25, rng, 20000);
  auto bytes = rfc4571(rtp_stream(s, 7));
  ReceiverConfig cfg;
  cfg.transport = Transport::TcpPassive;
  StreamReceiver r(cfg);
  Out out;
  for (size_t i = 0; i < bytes.size();) {
    size_t n = std::min<size_t>(bytes.size() - i, 1 + rng() % 3000);
    r.on_tcp_bytes(bytes.data() + i, n, 1, out);
    i += n;
  }
  r.finish(out);
  CHECK(out.frames.size() == s.frames.size());
  check_whole(s, out.frames);
  Stats st;
  r.fill(st);
  CHECK(st.tcp_resyncs == 0);
  CHECK(st.lost == 0);
}

TEST_CASE("gb media: a lying RFC 4571 length is resynced and counted; later frames come through whole") {
  std::mt19937 rng(4);
  Stream s = make_stream(JN_CODEC_H264, 0, 50, 10, rng, 6000);
  auto pkts = rtp_stream(s, 9);
  auto bytes = rfc4571(pkts);
  // Corrupt the length of a packet about a third in.
  size_t off = 0, k = pkts.size() / 3;
  for (size_t i = 0; i < k; ++i) off += 2 + pkts[i].size();
  bytes[off] = 0x7F;  // claims ~32 KB
  bytes[off + 1] = 0x10;
  ReceiverConfig cfg;
  cfg.transport = Transport::TcpActive;
  StreamReceiver r(cfg);
  Out out;
  for (size_t i = 0; i < bytes.size(); i += 1000) r.on_tcp_bytes(bytes.data() + i, std::min<size_t>(1000, bytes.size() - i), 1, out);
  r.finish(out);
  Stats st;
  r.fill(st);
  CHECK(st.tcp_resyncs >= 1);
  CHECK(out.problems[Problem::TcpResync] >= 1);
  CHECK(out.frames.size() < s.frames.size());
  check_whole(s, out.frames);
  // Frames after the damage arrive (the last keyframe and what follows it).
  CHECK(out.frames.back().meta.pts == s.frames.back().meta.pts);
}

TEST_CASE("gb media: garbage datagrams and another payload type are counted, never disturb the stream") {
  std::mt19937 rng(5);
  Stream s = make_stream(JN_CODEC_H264, 0, 20, 10, rng, 3000);
  auto pkts = rtp_stream(s, 42);
  StreamReceiver r(ReceiverConfig{});
  Out out;
  std::vector<uint8_t> junk(200, 0xAB);
  auto other_pt = pkts[0];
  other_pt[1] = (other_pt[1] & 0x80) | 97;
  for (size_t i = 0; i < pkts.size(); ++i) {
    if (i % 5 == 2) r.on_datagram(junk.data(), junk.size(), 1, out);
    if (i % 7 == 3) r.on_datagram(other_pt.data(), other_pt.size(), 1, out);
    r.on_datagram(pkts[i].data(), pkts[i].size(), 1, out);
  }
  r.finish(out);
  Stats st;
  r.fill(st);
  CHECK(st.malformed > 0);
  CHECK(st.wrong_pt > 0);
  CHECK(out.frames.size() == s.frames.size());
  check_whole(s, out.frames);
}

TEST_CASE("gb media: SPS resolution of real encoder output (x264 1080p with cropping, x265 720p)") {
  const uint8_t h264[] = {0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00,
                          0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc6, 0x58};
  const uint8_t h265[] = {0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
                          0x00, 0x03, 0x00, 0x5d, 0xa0, 0x02, 0x80, 0x80, 0x2d, 0x16, 0x59, 0x59, 0xa4, 0x93,
                          0x2b, 0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10};
  uint32_t w = 0, h = 0;
  REQUIRE(sps_resolution(JN_CODEC_H264, h264, sizeof h264, w, h));
  CHECK(w == 1920);
  CHECK(h == 1080);
  REQUIRE(sps_resolution(JN_CODEC_H265, h265, sizeof h265, w, h));
  CHECK(w == 1280);
  CHECK(h == 720);
  uint8_t cut[4] = {0x67, 0x64, 0x00, 0x28};
  CHECK_FALSE(sps_resolution(JN_CODEC_H264, cut, sizeof cut, w, h));
}

TEST_CASE("gb media: stats: fps and bitrate over the window, codec and resolution from the stream") {
  const uint8_t sps[] = {0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00,
                         0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc6, 0x58};
  std::mt19937 rng(6);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 51, 25, rng, 3000);
  // Give the keyframes the real SPS (replacing the synthetic one).
  for (auto& f : s.frames) {
    if (!(f.meta.frame_flags & JN_MF_KEY)) continue;
    std::vector<uint8_t> d{0, 0, 0, 1};
    d.insert(d.end(), sps, sps + sizeof sps);
    size_t pps = 4 + 4 + 12;  // skip the synthetic SPS NAL (start code + 4 header + 12 body)
    d.insert(d.end(), f.data.begin() + pps, f.data.end());
    f.data = d;
  }
  auto pkts = rtp_stream(s, 1);
  StreamReceiver r(ReceiverConfig{});
  Out out;
  r.roll_window(0);
  // 2 seconds of 25 fps: packets spread evenly over [0, 2000) ms.
  uint64_t bytes = 0;
  for (size_t i = 0; i < pkts.size(); ++i) {
    r.on_datagram(pkts[i].data(), pkts[i].size(), i * 2000 / pkts.size(), out);
    bytes += pkts[i].size();
  }
  r.roll_window(2000);
  Stats st;
  r.fill(st);
  // 51 frames sent, all out (the RTP marker closes the last one): 51 video frames in 2 s.
  CHECK(st.video_frames == 51);
  CHECK(st.fps == doctest::Approx(25.5));
  CHECK(st.bitrate_bps == doctest::Approx(bytes * 8 / 2.0));
  CHECK(st.video_codec == JN_CODEC_H264);
  CHECK(st.audio_codec == JN_CODEC_PCMA);
  CHECK(st.width == 1920);
  CHECK(st.height == 1080);
  CHECK(st.keyframes == 3);  // frames 0, 25 and 50
  CHECK(r.first_keyframe_seen());
}
