// sdk/media RTP <-> frames for audio (G.711, Opus, AAC RFC 3640), the reorder buffer on its own,
// and the keyframe-request limiter.
// Designated initializers name only the fields a test sets.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "media_rtp_util.hpp"

#include <junction/media/aac_rtp.hpp>
#include <junction/media/audio_rtp.hpp>
#include <junction/media/keyframe.hpp>
#include <junction/media/reorder.hpp>
#include <junction/media/rtp_codecs.hpp>

#include <doctest/doctest.h>

#include <memory>

using namespace junction::media;
using namespace media_rtp_test;

namespace {
Bytes rand_bytes(size_t n, std::mt19937& rng) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}
Bytes rtp(uint16_t seq, uint32_t ts = 0, uint32_t ssrc = 5, size_t payload = 4) {
  Bytes p = {0x80, 0x60, static_cast<uint8_t>(seq >> 8), static_cast<uint8_t>(seq), static_cast<uint8_t>(ts >> 24),
             static_cast<uint8_t>(ts >> 16), static_cast<uint8_t>(ts >> 8), static_cast<uint8_t>(ts),
             static_cast<uint8_t>(ssrc >> 24), static_cast<uint8_t>(ssrc >> 16), static_cast<uint8_t>(ssrc >> 8),
             static_cast<uint8_t>(ssrc)};
  p.resize(12 + payload, static_cast<uint8_t>(seq));
  return p;
}
}  // namespace

TEST_CASE("media rtp g711: 20 ms frames round trip; timestamps advance by samples; marker at talkspurt start") {
  std::mt19937 rng(20);
  for (uint32_t codec : {static_cast<uint32_t>(JN_CODEC_PCMA), static_cast<uint32_t>(JN_CODEC_PCMU)}) {
    AudioPacketizer pk(PacketizerConfig{.payload_type = static_cast<uint8_t>(codec == JN_CODEC_PCMA ? 8 : 0), .ssrc = 9}, codec);
    REQUIRE(pk.ok());
    CHECK(pk.clock_rate() == 8000);
    std::vector<Bytes> frames;
    Packets pkts;
    for (int i = 0; i < 50; ++i) {
      frames.push_back(rand_bytes(160, rng));
      uint32_t flags = i == 25 ? static_cast<uint32_t>(JN_MF_DISCONT) : 0u;
      REQUIRE(pk.packetize(view(frames.back(), i * 160, 8000, flags), packet_sink(pkts)) == RtpError::None);
    }
    REQUIRE(pkts.list.size() == 50);
    for (size_t i = 0; i < 50; ++i) {
      CHECK(ts_of(pkts.list[i]) == i * 160);
      CHECK(marker_of(pkts.list[i]) == (i == 0 || i == 25));
      CHECK((pkts.list[i][1] & 0x7f) == (codec == JN_CODEC_PCMA ? 8 : 0));
    }
    AudioDepacketizer dp(DepacketizerConfig{.codec = codec});
    REQUIRE(dp.ok());
    Frames got;
    for (const Bytes& p : pkts.list) CHECK(dp.push(p.data(), p.size(), frame_sink(got)) == RtpError::None);
    REQUIRE(got.list.size() == 50);
    for (size_t i = 0; i < 50; ++i) {
      CHECK(got.list[i].data == frames[i]);
      CHECK(got.list[i].meta.pts == static_cast<int64_t>(i) * 160);
      CHECK(got.list[i].meta.codec == codec);
      CHECK(got.list[i].meta.clock_rate == 8000);
      CHECK(got.list[i].meta.kind == JN_MEDIA_AUDIO);
      CHECK(got.list[i].meta.seq == i);
    }
  }
}

TEST_CASE("media rtp g711: a frame larger than the MTU splits at sample boundaries; loss skips frame numbers") {
  std::mt19937 rng(21);
  AudioPacketizer pk(PacketizerConfig{.payload_type = 8, .mtu = 212}, JN_CODEC_PCMA);
  Bytes big = rand_bytes(480, rng);  // 60 ms, 200 bytes per packet
  Packets pkts;
  REQUIRE(pk.packetize(view(big, 800, 8000), packet_sink(pkts)) == RtpError::None);
  REQUIRE(pkts.list.size() == 3);
  CHECK(ts_of(pkts.list[0]) == 800);
  CHECK(ts_of(pkts.list[1]) == 1000);
  CHECK(ts_of(pkts.list[2]) == 1200);
  for (const Bytes& p : pkts.list) CHECK(p.size() <= 212);
  AudioDepacketizer dp(DepacketizerConfig{.codec = JN_CODEC_PCMA});
  Frames got;
  dp.push(pkts.list[0].data(), pkts.list[0].size(), frame_sink(got));
  dp.push(pkts.list[2].data(), pkts.list[2].size(), frame_sink(got));  // [1] lost
  REQUIRE(got.list.size() == 2);
  CHECK(got.list[1].meta.seq == 2);
  CHECK((got.list[1].meta.frame_flags & JN_MF_DISCONT) != 0);
  CHECK(got.list[1].data == Bytes(big.begin() + 400, big.end()));
  CHECK(dp.stats().lost_packets == 1);
  // A duplicate is dropped.
  CHECK(dp.push(pkts.list[2].data(), pkts.list[2].size(), frame_sink(got)) == RtpError::Duplicate);
  CHECK(got.list.size() == 2);
}

TEST_CASE("media rtp opus: packets round trip at 48 kHz; an Opus packet larger than the MTU is refused") {
  std::mt19937 rng(22);
  AudioPacketizer pk(PacketizerConfig{.payload_type = 111}, JN_CODEC_OPUS);
  CHECK(pk.clock_rate() == 48000);
  std::vector<Bytes> frames;
  Packets pkts;
  for (int i = 0; i < 20; ++i) {
    frames.push_back(rand_bytes(20 + (i * 37) % 300, rng));
    REQUIRE(pk.packetize(view(frames.back(), i * 960, 48000), packet_sink(pkts)) == RtpError::None);
  }
  // A frame timed in another clock is rescaled (20 ms at 1 kHz -> 960 at 48 kHz).
  Bytes ms = rand_bytes(50, rng);
  REQUIRE(pk.packetize(view(ms, 400, 1000), packet_sink(pkts)) == RtpError::None);
  CHECK(ts_of(pkts.list.back()) == 400u * 48);
  Bytes huge = rand_bytes(1300, rng);
  Packets none;
  CHECK(pk.packetize(view(huge, 0, 48000), packet_sink(none)) == RtpError::TooLarge);
  CHECK(none.list.empty());
  AudioDepacketizer dp(DepacketizerConfig{.codec = JN_CODEC_OPUS, .payload_type = 111});
  Frames got;
  for (const Bytes& p : pkts.list) dp.push(p.data(), p.size(), frame_sink(got));
  REQUIRE(got.list.size() == 21);
  for (size_t i = 0; i < 20; ++i) {
    CHECK(got.list[i].data == frames[i]);
    CHECK(got.list[i].meta.pts == static_cast<int64_t>(i) * 960);
    CHECK(got.list[i].meta.clock_rate == 48000);
  }
  AudioDepacketizer bad(DepacketizerConfig{.codec = JN_CODEC_H264});
  CHECK(!bad.ok());
}

TEST_CASE("media rtp aac: config + AUs round trip (AAC-hbr), a large AU fragmented, config from the fmtp first") {
  std::mt19937 rng(23);
  AacPacketizer pk(PacketizerConfig{.payload_type = 97, .clock_rate = 44100, .mtu = 1200});
  REQUIRE(pk.ok());
  Bytes config = {0x12, 0x10};  // AAC-LC, 44.1 kHz, stereo
  Packets pkts;
  REQUIRE(pk.packetize(view(config, 0, 44100, JN_MF_CONFIG), packet_sink(pkts)) == RtpError::None);
  CHECK(pkts.list.empty());  // the config travels in the SDP
  CHECK(pk.config_hex() == "1210");
  std::vector<Bytes> aus;
  for (int i = 0; i < 10; ++i) {
    aus.push_back(rand_bytes(i == 4 ? 3000 : 150 + i * 40, rng));
    REQUIRE(pk.packetize(view(aus.back(), i * 1024, 44100), packet_sink(pkts)) == RtpError::None);
  }
  CHECK(pkts.list.size() == 12);  // 9 whole + 3 fragments
  for (size_t i = 0; i < pkts.list.size(); ++i) {
    CHECK(pkts.list[i].size() <= 1200);
    bool last_of_au = i + 1 == pkts.list.size() || ts_of(pkts.list[i + 1]) != ts_of(pkts.list[i]);
    CHECK(marker_of(pkts.list[i]) == last_of_au);
  }
  std::string fmtp = "streamtype=5; profile-level-id=15; mode=AAC-hbr; sizelength=13; indexlength=3; "
                     "indexdeltalength=3; config=" + pk.config_hex();
  AacDepacketizer dp(DepacketizerConfig{.clock_rate = 44100, .payload_type = 97, .fmtp = fmtp});
  REQUIRE(dp.ok());
  Frames got;
  for (const Bytes& p : pkts.list) CHECK(dp.push(p.data(), p.size(), frame_sink(got)) == RtpError::None);
  REQUIRE(got.list.size() == 11);
  CHECK(got.list[0].data == config);
  CHECK(got.list[0].meta.frame_flags == JN_MF_CONFIG);
  for (size_t i = 0; i < 10; ++i) {
    CHECK(got.list[i + 1].data == aus[i]);
    CHECK(got.list[i + 1].meta.pts == static_cast<int64_t>(i) * 1024);
    CHECK(got.list[i + 1].meta.codec == JN_CODEC_AAC);
  }
}

TEST_CASE("media rtp aac: several AUs in one packet; a lost fragment drops that AU only") {
  std::mt19937 rng(24);
  AacDepacketizer dp(DepacketizerConfig{.clock_rate = 48000, .fmtp = "mode=AAC-hbr;sizeLength=13;indexLength=3;indexDeltaLength=3"});
  REQUIRE(dp.ok());
  Bytes a = rand_bytes(100, rng), b = rand_bytes(7, rng), c = rand_bytes(300, rng);
  Bytes p = rtp(1, 5000, 5, 0);
  p[1] |= 0x80;
  p.insert(p.end(), {0x00, 0x30});  // 48 bits of AU headers
  for (const Bytes* x : {&a, &b, &c}) {
    uint16_t h = static_cast<uint16_t>(x->size() << 3);
    p.insert(p.end(), {static_cast<uint8_t>(h >> 8), static_cast<uint8_t>(h)});
  }
  for (const Bytes* x : {&a, &b, &c}) p.insert(p.end(), x->begin(), x->end());
  Frames got;
  REQUIRE(dp.push(p.data(), p.size(), frame_sink(got)) == RtpError::None);
  REQUIRE(got.list.size() == 3);
  CHECK(got.list[0].data == a);
  CHECK(got.list[1].data == b);
  CHECK(got.list[2].data == c);
  CHECK(got.list[2].meta.pts == 5000 + 2048);
  // A fragmented AU whose middle fragment is lost, then a whole AU.
  AacPacketizer pk(PacketizerConfig{.first_seq = 2, .ts_offset = 6024, .clock_rate = 48000, .mtu = 200});
  Bytes big = rand_bytes(500, rng), small = rand_bytes(60, rng);
  Packets pkts;
  pk.packetize(view(big, 0, 48000), packet_sink(pkts));
  pk.packetize(view(small, 1024, 48000), packet_sink(pkts));
  REQUIRE(pkts.list.size() == 4);
  pkts.list.erase(pkts.list.begin() + 1);
  for (const Bytes& q : pkts.list) dp.push(q.data(), q.size(), frame_sink(got));
  REQUIRE(got.list.size() == 4);
  CHECK(got.list[3].data == small);
  CHECK((got.list[3].meta.frame_flags & JN_MF_DISCONT) != 0);
  CHECK(dp.stats().frames_dropped == 1);
  // Interleaving, unsupported modes.
  Bytes inter = rtp(7, 9000, 5, 0);
  inter.insert(inter.end(), {0x00, 0x20, 0x00, 0x08, 0x00, 0x09, 1, 1});  // second AU delta 1
  CHECK(dp.push(inter.data(), inter.size(), frame_sink(got)) == RtpError::Unsupported);
  AacDepacketizer celp(DepacketizerConfig{.clock_rate = 8000, .fmtp = "mode=CELP-cbr"});
  CHECK(celp.error() == RtpError::Unsupported);
  AacDepacketizer cts(DepacketizerConfig{.clock_rate = 8000, .fmtp = "mode=AAC-hbr;CTSDeltaLength=3"});
  CHECK(cts.error() == RtpError::Unsupported);
  AacDepacketizer norate(DepacketizerConfig{.fmtp = "mode=AAC-hbr"});
  CHECK(norate.error() == RtpError::BadConfig);
}

TEST_CASE("media rtp aac: a fragment whose AU size disagrees damages its AU, which is dropped once at its end") {
  std::mt19937 rng(27);
  AacPacketizer pk(PacketizerConfig{.clock_rate = 48000, .mtu = 200});
  Bytes big = rand_bytes(700, rng), next = rand_bytes(90, rng);
  Packets pkts;
  pk.packetize(view(big, 0, 48000), packet_sink(pkts));
  pk.packetize(view(next, 1024, 48000), packet_sink(pkts));
  REQUIRE(pkts.list.size() == 5);
  pkts.list[1][15] ^= 0x08;  // the second fragment's AU-size (low bits of the 13)
  AacDepacketizer dp(DepacketizerConfig{.clock_rate = 48000, .fmtp = "mode=AAC-hbr"});
  Frames got;
  std::vector<RtpError> errs;
  for (const Bytes& p : pkts.list) errs.push_back(dp.push(p.data(), p.size(), frame_sink(got)));
  CHECK(errs[1] == RtpError::BadPayload);
  CHECK(errs[2] == RtpError::None);  // the rest of the damaged AU: quietly part of it
  CHECK(dp.stats().frames_dropped == 1);
  REQUIRE(got.list.size() == 1);
  CHECK(got.list[0].data == next);
  CHECK((got.list[0].meta.frame_flags & JN_MF_DISCONT) != 0);
}

TEST_CASE("media rtp aac: an AU header that promises more than the packet holds opens a fragment that never completes") {
  AacDepacketizer dp(DepacketizerConfig{.clock_rate = 48000, .fmtp = "mode=AAC-hbr"});
  Bytes broken = rtp(1, 100, 5, 0);
  broken[1] |= 0x80;
  broken.insert(broken.end(), {0x00, 0x10, 0xff, 0xf8, 1, 2});  // 8191 bytes announced, 2 carried, marker
  Frames got;
  dp.push(broken.data(), broken.size(), frame_sink(got));
  CHECK(got.list.empty());
  CHECK(dp.stats().frames_dropped == 1);
  Bytes hdr_past_end = rtp(2, 1124, 5, 0);
  hdr_past_end.insert(hdr_past_end.end(), {0x00, 0x40, 0x00});
  CHECK(dp.push(hdr_past_end.data(), hdr_past_end.size(), frame_sink(got)) == RtpError::BadPayload);
}

TEST_CASE("media reorder: in-order, swapped, duplicate, wrap") {
  ReorderBuffer rb(8, 1500, 1'000'000);
  ReorderBuffer::Packet out;
  std::vector<uint16_t> seen;
  auto feed = [&](uint16_t s, uint64_t now) {
    Bytes p = rtp(s);
    auto r = rb.push(p.data(), p.size(), now);
    while (rb.pop(now, out)) {
      CHECK(out.len == 16);
      CHECK(out.data[12] == static_cast<uint8_t>(out.seq));
      seen.push_back(out.seq);
    }
    return r;
  };
  feed(65533, 0);
  feed(65535, 0);  // 65534 missing
  CHECK(seen.size() == 1);
  CHECK(rb.deadline_ns() == 1'000'000);
  feed(65534, 10);
  CHECK(feed(65534, 10) == ReorderBuffer::Push::Duplicate);
  feed(0, 10);
  CHECK(feed(65535, 10) == ReorderBuffer::Push::Duplicate);  // already delivered
  CHECK(seen == std::vector<uint16_t>{65533, 65534, 65535, 0});
  CHECK(rb.stats().lost == 0);
  CHECK(rb.stats().duplicates == 2);
}

TEST_CASE("media reorder: a gap is given up by the wait bound or by the window, reported as lost_before") {
  ReorderBuffer rb(8, 1500, 1'000'000);
  ReorderBuffer::Packet out;
  Bytes p10 = rtp(10), p12 = rtp(12);
  rb.push(p10.data(), p10.size(), 0);
  REQUIRE(rb.pop(0, out));
  rb.push(p12.data(), p12.size(), 100);
  CHECK(!rb.pop(500'000, out));  // still waiting for 11
  REQUIRE(rb.pop(1'000'100, out));
  CHECK(out.seq == 12);
  CHECK(out.lost_before == 1);
  // The window: 14 missing, 15..30 arrive at once (depth 8): 14 is given up without waiting.
  std::vector<uint16_t> seen;
  for (uint16_t s = 15; s <= 30; ++s) {
    Bytes p = rtp(s);
    rb.push(p.data(), p.size(), 2'000'000);
    while (rb.pop(2'000'000, out)) seen.push_back(out.seq);
  }
  REQUIRE(!seen.empty());
  CHECK(seen.front() == 15);
  CHECK(rb.stats().lost == 3);  // 11, 13, 14
  while (rb.drain(out)) seen.push_back(out.seq);
  CHECK(seen.back() == 30);
  CHECK(seen.size() == 16);
}

TEST_CASE("media reorder: a large jump or a new SSRC restarts; bad packets refused") {
  ReorderBuffer rb(16, 200, 1'000'000);
  ReorderBuffer::Packet out;
  Bytes a = rtp(100), b = rtp(102), c = rtp(9000), d = rtp(9001, 0, 77), big = rtp(1, 0, 5, 300), v1 = rtp(3);
  v1[0] = 0x40;
  rb.push(a.data(), a.size(), 0);
  rb.pop(0, out);
  rb.push(b.data(), b.size(), 0);  // waits for 101
  Bytes stray = rtp(40000);
  CHECK(rb.push(stray.data(), stray.size(), 0) == ReorderBuffer::Push::Bad);  // a jump, unconfirmed
  CHECK(rb.stats().restarts == 0);
  Bytes c0 = rtp(8999);
  CHECK(rb.push(c0.data(), c0.size(), 0) == ReorderBuffer::Push::Bad);
  rb.push(c.data(), c.size(), 0);  // 9000 follows 8999: the source restarted
  CHECK(rb.stats().restarts == 1);
  CHECK(rb.stats().dropped == 1);
  REQUIRE(rb.pop(0, out));
  CHECK(out.seq == 9000);
  rb.push(d.data(), d.size(), 0);
  CHECK(rb.stats().restarts == 2);
  REQUIRE(rb.pop(0, out));
  CHECK(out.seq == 9001);
  CHECK(rb.push(big.data(), big.size(), 0) == ReorderBuffer::Push::Bad);
  CHECK(rb.push(v1.data(), v1.size(), 0) == ReorderBuffer::Push::Bad);
  CHECK(rb.stats().bad == 4);
}

TEST_CASE("media keyframe limiter: one request per interval, the suppressed one sent when due") {
  KeyframeLimiter k;  // 500 ms
  CHECK(k.request(1'000'000'000));
  CHECK(!k.request(1'100'000'000));
  CHECK(!k.request(1'200'000'000));
  CHECK(k.suppressed() == 2);
  CHECK(k.next_due_ns() == 1'500'000'000);
  CHECK(!k.due(1'499'999'999));
  CHECK(k.due(1'500'000'000));
  CHECK(!k.due(2'100'000'000));  // answered: nothing pending
  CHECK(k.next_due_ns() == UINT64_MAX);
  CHECK(!k.request(1'600'000'000));
  k.keyframe_seen();  // a keyframe came anyway: the pending request is moot
  CHECK(!k.due(3'000'000'000));
  CHECK(k.request(3'000'000'000));
}

TEST_CASE("media rtp audio: PCMU, Opus and AAC through the reorder buffer with swaps and duplicates come out whole") {
  std::mt19937 rng(25);
  for (uint32_t codec : {static_cast<uint32_t>(JN_CODEC_PCMU), static_cast<uint32_t>(JN_CODEC_OPUS),
                         static_cast<uint32_t>(JN_CODEC_AAC)}) {
    CAPTURE(codec);
    std::unique_ptr<RtpPacketizer> pk;
    std::unique_ptr<RtpDepacketizer> dp;
    uint32_t step = 160;
    if (codec == JN_CODEC_AAC) {
      pk = std::make_unique<AacPacketizer>(PacketizerConfig{.first_seq = 65530, .clock_rate = 48000});
      dp = std::make_unique<AacDepacketizer>(DepacketizerConfig{.clock_rate = 48000, .fmtp = "mode=AAC-hbr"});
      step = 1024;
    } else {
      pk = std::make_unique<AudioPacketizer>(PacketizerConfig{.first_seq = 65530}, codec);
      dp = std::make_unique<AudioDepacketizer>(DepacketizerConfig{.codec = codec});
      if (codec == JN_CODEC_OPUS) step = 960;
    }
    std::vector<Bytes> frames;
    Packets pkts;
    for (int i = 0; i < 100; ++i) {
      frames.push_back(rand_bytes(codec == JN_CODEC_PCMU ? 160 : 30 + static_cast<size_t>(rng() % (codec == JN_CODEC_OPUS ? 1000 : 3000)), rng));
      REQUIRE(pk->packetize(view(frames.back(), i * step, pk->clock_rate()), packet_sink(pkts)) == RtpError::None);
    }
    std::vector<Bytes> wire;
    for (size_t i = 0; i < pkts.list.size(); ++i) {
      wire.push_back(pkts.list[i]);
      if (rng() % 8 == 0) wire.push_back(pkts.list[i]);
    }
    for (size_t i = 1; i + 1 < wire.size(); i += 3) std::swap(wire[i], wire[i + 1]);
    ReorderBuffer rb(16, 1500, 1'000'000);
    ReorderBuffer::Packet out;
    Frames got;
    for (const Bytes& p : wire) {
      rb.push(p.data(), p.size(), 0);
      while (rb.pop(0, out)) dp->push(out.data, out.len, frame_sink(got));
    }
    REQUIRE(got.list.size() == frames.size());
    for (size_t i = 0; i < frames.size(); ++i) {
      CHECK(got.list[i].data == frames[i]);
      CHECK(got.list[i].meta.pts == static_cast<int64_t>(i) * step);
      CHECK(got.list[i].meta.seq == i);
    }
  }
}

TEST_CASE("media rtp codecs: rtpmap names make the right converters; unknown names and broken fmtp are refused") {
  CHECK(codec_from_rtpmap("h264") == JN_CODEC_H264);
  CHECK(codec_from_rtpmap("mpeg4-generic") == JN_CODEC_AAC);
  CHECK(codec_from_rtpmap("VP8") == JN_CODEC_NONE);
  CHECK(make_depacketizer("VP8", 90000, 96, "") == nullptr);
  CHECK(make_packetizer("G729", PacketizerConfig{}) == nullptr);
  auto dp = make_depacketizer("MPEG4-GENERIC", 44100, 97, "mode=AAC-hbr;sizeLength=13;indexLength=3;indexDeltaLength=3;config=1210", 1);
  REQUIRE(dp);
  CHECK(dp->ok());
  auto bad = make_depacketizer("H264", 90000, 96, "packetization-mode=2");
  REQUIRE(bad);
  CHECK(bad->error() == RtpError::Unsupported);
  // A G.711 round trip through the factories, PT and clock from the rtpmap.
  auto pk = make_packetizer("PCMU", PacketizerConfig{.payload_type = 0});
  auto rx = make_depacketizer("PCMU", 8000, 0, "", 1);
  REQUIRE(pk);
  REQUIRE(rx);
  std::mt19937 rng(26);
  Bytes frame = rand_bytes(160, rng);
  Packets pkts;
  REQUIRE(pk->packetize(view(frame, 320, 8000), packet_sink(pkts)) == RtpError::None);
  Frames got;
  REQUIRE(rx->push(pkts.list[0].data(), pkts.list[0].size(), frame_sink(got)) == RtpError::None);
  REQUIRE(got.list.size() == 1);
  CHECK(got.list[0].data == frame);
  CHECK(got.list[0].meta.codec == JN_CODEC_PCMU);
  CHECK(got.list[0].meta.track == 1);
  // H.264 mode 0 from the fmtp: a NAL unit over the MTU is refused rather than fragmented.
  auto m0 = make_packetizer("H264", PacketizerConfig{.mtu = 200}, "packetization-mode=0");
  Bytes big = au({rand_bytes(300, rng)});
  big[4] = 0x41;
  for (size_t i = 5; i < big.size(); ++i) big[i] |= 1;  // no zero bytes: no start code inside
  Packets none;
  CHECK(m0->packetize(view(big, 0, 90000), packet_sink(none)) == RtpError::NalTooLarge);
}
