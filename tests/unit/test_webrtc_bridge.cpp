// sdk/webrtc bridge.hpp + sdk/media vp8_rtp: bus frames -> RTP (packets captured by a fake
// transport: our SSRC and pt, SRTP tailroom, every packet stored for NACK before it is sent) and
// back to the same frames; video held until a keyframe (start, bus loss, resync); browser RTP
// with loss -> the damaged frame dropped and keyframe_wanted(); VP8 descriptors with the
// extension Chromium sends; audio one frame per packet; wrong codec / pt refused.
#include <junction/media/vp8_rtp.hpp>
#include <junction/webrtc/bridge.hpp>

#include "media_rtp_util.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <tuple>

using namespace junction::webrtc;
using namespace junction;
using media_rtp_test::Bytes;
using media_rtp_test::Frames;

namespace {

struct FakeOut : RtpOutput {
  std::vector<Bytes> sent, stored, rtcp;
  size_t min_tailroom = SIZE_MAX;
  bool accept = true;
  bool send_rtp(uint8_t* p, size_t len, size_t cap) override {
    min_tailroom = std::min(min_tailroom, cap - len);
    sent.emplace_back(p, p + len);
    return accept;
  }
  bool send_rtcp(uint8_t* p, size_t len, size_t) override {
    rtcp.emplace_back(p, p + len);
    return true;
  }
  void store_sent(const uint8_t* p, size_t len) override { stored.emplace_back(p, p + len); }
};

Codec codec(const char* name, uint8_t pt, uint32_t clock, const char* fmtp = "") {
  Codec c;
  c.name = name;
  c.pt = pt;
  c.clock_rate = clock;
  c.fmtp = fmtp;
  return c;
}

media::FrameView frame(const Bytes& b, int64_t pts, uint32_t clock, uint32_t codec_id, uint32_t seq, uint32_t flags) {
  media::FrameView f = media_rtp_test::view(b, pts, clock, flags);
  f.meta.codec = codec_id;
  f.meta.seq = seq;
  f.meta.kind = clock == 90000 ? JN_MEDIA_VIDEO : JN_MEDIA_AUDIO;
  return f;
}

// A VP8 frame: key frame tag (P bit 0) + start code, or a delta frame, then random bytes.
Bytes vp8_frame(bool key, size_t size, std::mt19937& rng) {
  Bytes b;
  if (key) b = {0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01};
  else b = {0x31, 0x01, 0x00};
  std::uniform_int_distribution<int> d(0, 255);
  while (b.size() < size) b.push_back(static_cast<uint8_t>(d(rng)));
  return b;
}

}  // namespace

TEST_CASE("H.264: frames -> RTP with our SSRC, tailroom, stored for NACK; held until the first keyframe; back to the same frames") {
  std::mt19937 rng(1);
  using media_rtp_test::nal;
  Bytes sps = nal({0x67, 0x42, 0xe0, 0x1f}, 10, rng), pps = nal({0x68}, 4, rng);
  Bytes key = media_rtp_test::au({sps, pps, nal({0x65}, 5000, rng)});
  Bytes delta = media_rtp_test::au({nal({0x41}, 800, rng)});
  FakeOut out;
  SendConfig sc;
  sc.kind = JN_MEDIA_VIDEO;
  sc.codec = codec("H264", 106, 90000, "packetization-mode=1;profile-level-id=42e01f");
  sc.ssrc = 0x11223344;
  FrameToRtp tx(sc, out);
  REQUIRE_MESSAGE(tx.ok(), tx.error());
  // A delta before any keyframe is held back: the caller must ask the producer.
  CHECK(tx.send(frame(delta, 0, 90000, JN_CODEC_H264, 0, 0)) == FrameToRtp::Result::NeedKeyframe);
  CHECK(out.sent.empty());
  CHECK(tx.send(frame(key, 3000, 90000, JN_CODEC_H264, 1, JN_MF_KEY | JN_MF_CONFIG)) == FrameToRtp::Result::Sent);
  CHECK(tx.send(frame(delta, 6000, 90000, JN_CODEC_H264, 2, 0)) == FrameToRtp::Result::Sent);
  REQUIRE(out.sent.size() >= 6);  // 5000-byte IDR in 1200-byte packets + STAP-A + delta
  CHECK(out.stored == out.sent);  // every packet kept for NACKs, as sent
  CHECK(out.min_tailroom >= kRtpTailroom);
  for (auto& p : out.sent) {
    CHECK(p.size() <= 1200);
    CHECK((p[1] & 0x7f) == 106);
    CHECK(proto::rtp::rd32(p.data() + 8) == 0x11223344);
  }
  CHECK(tx.stats().held_for_keyframe == 1);
  CHECK(tx.last_rtp_ts() == media_rtp_test::ts_of(out.sent.back()));

  RecvConfig rc;
  rc.kind = JN_MEDIA_VIDEO;
  rc.codec = sc.codec;
  RtpToFrames rx(rc);
  REQUIRE(rx.ok());
  CHECK_FALSE(rx.keyframe_wanted());  // nothing seen yet: a browser starts with a keyframe
  Frames got;
  for (auto& p : out.sent) CHECK(rx.push(p.data(), p.size(), media::frame_sink(got)) == media::RtpError::None);
  REQUIRE(got.list.size() == 2);
  CHECK(got.list[0].data == key);
  CHECK((got.list[0].meta.frame_flags & JN_MF_KEY) != 0);
  CHECK(got.list[1].data == delta);
  CHECK(got.list[1].meta.pts - got.list[0].meta.pts == 3000);
  CHECK_FALSE(rx.keyframe_wanted());
  CHECK(rx.remote_ssrc() == 0x11223344);

  // A stream that starts with a delta frame wants a keyframe until one comes.
  RtpToFrames late(rc);
  Frames got2;
  size_t first_delta = out.sent.size() - 1;  // the delta fits one packet
  late.push(out.sent[first_delta].data(), out.sent[first_delta].size(), media::frame_sink(got2));
  REQUIRE(got2.list.size() == 1);
  CHECK(late.keyframe_wanted());
}

TEST_CASE("video: a frame lost on the bus (seq gap) or DISCONT holds deltas until the next keyframe; resync() on a PLI") {
  std::mt19937 rng(2);
  FakeOut out;
  SendConfig sc;
  sc.kind = JN_MEDIA_VIDEO;
  sc.codec = codec("VP8", 96, 90000);
  FrameToRtp tx(sc, out);
  REQUIRE(tx.ok());
  Bytes k = vp8_frame(true, 300, rng), d = vp8_frame(false, 300, rng);
  CHECK(tx.send(frame(k, 0, 90000, JN_CODEC_VP8, 0, JN_MF_KEY)) == FrameToRtp::Result::Sent);
  CHECK(tx.send(frame(d, 3000, 90000, JN_CODEC_VP8, 1, 0)) == FrameToRtp::Result::Sent);
  CHECK(tx.send(frame(d, 9000, 90000, JN_CODEC_VP8, 3, 0)) == FrameToRtp::Result::NeedKeyframe);  // seq 2 lost
  CHECK(tx.send(frame(d, 12000, 90000, JN_CODEC_VP8, 4, 0)) == FrameToRtp::Result::NeedKeyframe);
  CHECK(tx.send(frame(k, 15000, 90000, JN_CODEC_VP8, 5, JN_MF_KEY)) == FrameToRtp::Result::Sent);
  CHECK(tx.send(frame(d, 18000, 90000, JN_CODEC_VP8, 6, JN_MF_DISCONT)) == FrameToRtp::Result::NeedKeyframe);
  CHECK(tx.send(frame(k, 21000, 90000, JN_CODEC_VP8, 7, JN_MF_KEY)) == FrameToRtp::Result::Sent);
  tx.resync();
  CHECK(tx.send(frame(d, 24000, 90000, JN_CODEC_VP8, 8, 0)) == FrameToRtp::Result::NeedKeyframe);
  CHECK(tx.stats().frames == 4);
  CHECK(tx.stats().held_for_keyframe == 4);
  // Another codec than negotiated is refused, not sent.
  CHECK(tx.send(frame(k, 27000, 90000, JN_CODEC_H264, 9, JN_MF_KEY)) == FrameToRtp::Result::Refused);
  CHECK(tx.stats().wrong_codec == 1);
}

TEST_CASE("VP8: round trip of multi-packet frames; a lost packet drops its frame and asks for a keyframe") {
  std::mt19937 rng(3);
  FakeOut out;
  SendConfig sc;
  sc.kind = JN_MEDIA_VIDEO;
  sc.codec = codec("VP8", 96, 90000);
  sc.random_start = false;
  sc.first_seq = 65530;  // wraps during the test
  FrameToRtp tx(sc, out);
  std::vector<Bytes> frames = {vp8_frame(true, 4000, rng), vp8_frame(false, 2500, rng), vp8_frame(false, 900, rng),
                               vp8_frame(true, 3000, rng)};
  std::vector<size_t> first_packet;
  for (size_t i = 0; i < frames.size(); ++i) {
    first_packet.push_back(out.sent.size());
    uint32_t flags = media::vp8_is_keyframe(frames[i].data(), frames[i].size()) ? JN_MF_KEY : 0;
    REQUIRE(tx.send(frame(frames[i], static_cast<int64_t>(i) * 3000, 90000, JN_CODEC_VP8, static_cast<uint32_t>(i), flags)) ==
            FrameToRtp::Result::Sent);
  }
  // Descriptor: S on each frame's first packet only; marker on its last.
  for (size_t i = 0; i < out.sent.size(); ++i) {
    bool first = std::find(first_packet.begin(), first_packet.end(), i) != first_packet.end();
    CHECK(out.sent[i][12] == (first ? 0x10 : 0x00));
    bool last = i + 1 == out.sent.size() || std::find(first_packet.begin(), first_packet.end(), i + 1) != first_packet.end();
    CHECK(((out.sent[i][1] & 0x80) != 0) == last);
  }

  RecvConfig rc;
  rc.kind = JN_MEDIA_VIDEO;
  rc.codec = sc.codec;
  {
    RtpToFrames rx(rc);
    Frames got;
    for (auto& p : out.sent) rx.push(p.data(), p.size(), media::frame_sink(got));
    REQUIRE(got.list.size() == 4);
    for (size_t i = 0; i < 4; ++i) CHECK(got.list[i].data == frames[i]);
    CHECK((got.list[0].meta.frame_flags & JN_MF_KEY) != 0);
    CHECK((got.list[1].meta.frame_flags & JN_MF_KEY) == 0);
    CHECK(got.list[0].meta.codec == JN_CODEC_VP8);
    CHECK_FALSE(rx.keyframe_wanted());
  }
  {
    // The second packet of frame 1 lost: frame 1 dropped, frame 2 comes with DISCONT and a
    // keyframe is wanted until frame 3.
    RtpToFrames rx(rc);
    Frames got;
    bool wanted_after_loss = false;
    for (size_t i = 0; i < out.sent.size(); ++i) {
      if (i == first_packet[1] + 1) continue;
      rx.push(out.sent[i].data(), out.sent[i].size(), media::frame_sink(got));
      if (i == first_packet[3] - 1) wanted_after_loss = rx.keyframe_wanted();
    }
    REQUIRE(got.list.size() == 3);
    CHECK(got.list[0].data == frames[0]);
    CHECK(got.list[1].data == frames[2]);
    CHECK((got.list[1].meta.frame_flags & JN_MF_DISCONT) != 0);
    CHECK(wanted_after_loss);
    CHECK(got.list[2].data == frames[3]);
    CHECK_FALSE(rx.keyframe_wanted());
    CHECK(rx.depacketizer_stats()->frames_dropped == 1);
  }
}

TEST_CASE("VP8: Chromium's extended descriptor (PictureID 15 bits, TL0PICIDX, TID) is skipped") {
  // X=1 S=1 PID=0 | I L T | M=1 PictureID 0x1234 | TL0PICIDX | TID
  Bytes pkt = {0x80, 96, 0x00, 0x01, 0, 0, 0x0b, 0xb8, 0xde, 0xad, 0xbe, 0xef, 0x90, 0xe0, 0x92, 0x34, 0x05, 0x40};
  Bytes payload = {0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x01, 0x02};
  pkt.insert(pkt.end(), payload.begin(), payload.end());
  pkt[1] |= 0x80;  // marker: one-packet frame
  RecvConfig rc;
  rc.kind = JN_MEDIA_VIDEO;
  rc.codec = codec("VP8", 96, 90000);
  RtpToFrames rx(rc);
  Frames got;
  CHECK(rx.push(pkt.data(), pkt.size(), media::frame_sink(got)) == media::RtpError::None);
  REQUIRE(got.list.size() == 1);
  CHECK(got.list[0].data == payload);
  CHECK((got.list[0].meta.frame_flags & JN_MF_KEY) != 0);
  // Truncated descriptors are refused, not read past the end.
  Bytes bad = {0x80, 96 | 0x80, 0x00, 0x02, 0, 0, 0x0b, 0xb8, 0xde, 0xad, 0xbe, 0xef, 0x90, 0xe0};
  CHECK(rx.push(bad.data(), bad.size(), media::frame_sink(got)) == media::RtpError::BadPayload);
  CHECK(got.list.size() == 1);
}

TEST_CASE("audio: PCMA and Opus one frame per packet both ways; another pt is ignored") {
  for (auto [name, pt, clock, id] : {std::tuple{"PCMA", 8, 8000u, JN_CODEC_PCMA}, std::tuple{"opus", 111, 48000u, JN_CODEC_OPUS}}) {
    CAPTURE(name);
    FakeOut out;
    SendConfig sc;
    sc.kind = JN_MEDIA_AUDIO;
    sc.codec = codec(name, static_cast<uint8_t>(pt), clock);
    sc.ssrc = 77;
    FrameToRtp tx(sc, out);
    REQUIRE(tx.ok());
    Bytes a(160, 0xd5), b(160, 0x55);
    uint32_t step = clock / 50;
    CHECK(tx.send(frame(a, 0, clock, static_cast<uint32_t>(id), 0, 0)) == FrameToRtp::Result::Sent);  // audio is never held
    CHECK(tx.send(frame(b, step, clock, static_cast<uint32_t>(id), 1, 0)) == FrameToRtp::Result::Sent);
    REQUIRE(out.sent.size() == 2);
    CHECK(media_rtp_test::ts_of(out.sent[1]) - media_rtp_test::ts_of(out.sent[0]) == step);
    RecvConfig rc;
    rc.kind = JN_MEDIA_AUDIO;
    rc.track = 1;
    rc.codec = sc.codec;
    RtpToFrames rx(rc);
    Frames got;
    for (auto& p : out.sent) rx.push(p.data(), p.size(), media::frame_sink(got));
    REQUIRE(got.list.size() == 2);
    CHECK(got.list[0].data == a);
    CHECK(got.list[1].data == b);
    CHECK(got.list[1].meta.track == 1);
    CHECK(got.list[0].meta.codec == static_cast<uint32_t>(id));
    CHECK_FALSE(rx.keyframe_wanted());
    Bytes other = out.sent[0];
    other[1] = static_cast<uint8_t>((other[1] & 0x80) | 126);  // telephone-event
    CHECK(rx.push(other.data(), other.size(), media::frame_sink(got)) == media::RtpError::PayloadType);
    CHECK(rx.stats().wrong_pt == 1);
  }
}

TEST_CASE("a codec without a payload format is refused at construction with a reason") {
  FakeOut out;
  SendConfig sc;
  sc.codec = codec("G729", 18, 8000);
  FrameToRtp tx(sc, out);
  CHECK_FALSE(tx.ok());
  CHECK(tx.error() == "no packetizer for G729");
  std::mt19937 rng(1);
  Bytes x = vp8_frame(true, 10, rng);
  CHECK(tx.send(frame(x, 0, 8000, 0, 0, 0)) == FrameToRtp::Result::Refused);
  RecvConfig rc;
  rc.codec = codec("AV1", 45, 90000);
  RtpToFrames rx(rc);
  CHECK_FALSE(rx.ok());
  CHECK(rx.error() == "no depacketizer for AV1");
}
