// sdk/media RFC 4571 deframer: 2-byte length, `$` interleaved and bare PS told apart; packets
// byte-exact in any chunking; resynchronisation after corrupted lengths and inserted garbage;
// bounded buffering; and the whole GB TCP path (frames -> PS -> RTP -> RFC 4571 -> corrupted
// -> deframer -> receiver -> frames) yields only whole frames.
#include <doctest/doctest.h>

#include "media_ps_util.hpp"

#include <junction/media/rfc4571.hpp>

#include <algorithm>

using namespace jn_test;

namespace {

struct Got : Rfc4571Deframer::Sink {
  std::vector<std::vector<uint8_t>> rtp, rtcp;
  std::vector<uint8_t> ps;
  std::vector<uint8_t> channels;
  int errors = 0;
  void on_packet(Rfc4571Deframer::Kind k, const uint8_t* d, size_t n, uint8_t ch) override {
    if (k == Rfc4571Deframer::Kind::Ps) ps.insert(ps.end(), d, d + n);
    else (k == Rfc4571Deframer::Kind::Rtp ? rtp : rtcp).emplace_back(d, d + n), channels.push_back(ch);
  }
  void on_error(const char*) override { ++errors; }
};

std::vector<std::vector<uint8_t>> rtp_packets(size_t count, uint32_t ssrc, std::mt19937& rng, bool pack_starts = true) {
  std::vector<std::vector<uint8_t>> out;
  for (size_t i = 0; i < count; ++i) {
    std::vector<uint8_t> p = {0x80, 96, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i), 0, 0, 0x10, 0,
                              static_cast<uint8_t>(ssrc >> 24), static_cast<uint8_t>(ssrc >> 16),
                              static_cast<uint8_t>(ssrc >> 8), static_cast<uint8_t>(ssrc)};
    if (pack_starts && i % 4 == 0) p.insert(p.end(), {0, 0, 1, 0xBA});
    size_t n = 20 + rng() % 1400;
    for (size_t j = 0; j < n; ++j) p.push_back(static_cast<uint8_t>(rng()));
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<uint8_t> frame_len16(const std::vector<std::vector<uint8_t>>& pkts) {
  std::vector<uint8_t> out;
  for (auto& p : pkts) {
    out.push_back(static_cast<uint8_t>(p.size() >> 8));
    out.push_back(static_cast<uint8_t>(p.size()));
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

void feed_chunks(Rfc4571Deframer& d, const std::vector<uint8_t>& bytes, Rfc4571Deframer::Sink& g, std::mt19937& rng,
                 size_t max_chunk) {
  for (size_t off = 0; off < bytes.size();) {
    size_t n = std::min(bytes.size() - off, 1 + rng() % max_chunk);
    d.feed(bytes.data() + off, n, g);
    off += n;
  }
  d.finish(g);
}

// Every packet out is one packet in, byte for byte.
void check_subset(const std::vector<std::vector<uint8_t>>& got, const std::vector<std::vector<uint8_t>>& sent) {
  for (auto& p : got) CHECK(std::find(sent.begin(), sent.end(), p) != sent.end());
}

}  // namespace

TEST_CASE("RFC 4571: 2-byte framing detected, packets byte-exact in any chunking") {
  std::mt19937 rng(40);
  auto pkts = rtp_packets(200, 0xCAFEBABE, rng);
  auto bytes = frame_len16(pkts);
  for (size_t max_chunk : {size_t{1}, size_t{3}, size_t{100}, size_t{5000}, size_t{200000}}) {
    CAPTURE(max_chunk);
    Rfc4571Deframer d;
    Got g;
    feed_chunks(d, bytes, g, rng, max_chunk);
    CHECK(d.framing() == TcpFraming::Len16);
    CHECK(g.rtp == pkts);
    CHECK(g.errors == 0);
    CHECK(d.ssrc() == 0xCAFEBABEu);
    CHECK(d.stats().skipped_bytes == 0);
  }
}

TEST_CASE("RFC 4571: the `$` interleaved form (RTP on channel 0, RTCP on 1) is detected") {
  std::mt19937 rng(41);
  auto pkts = rtp_packets(50, 7, rng);
  std::vector<uint8_t> rtcp = {0x80, 200, 0, 6, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
  std::vector<uint8_t> bytes;
  for (auto& p : pkts) {
    bytes.insert(bytes.end(), {'$', 0, static_cast<uint8_t>(p.size() >> 8), static_cast<uint8_t>(p.size())});
    bytes.insert(bytes.end(), p.begin(), p.end());
    bytes.insert(bytes.end(), {'$', 1, 0, static_cast<uint8_t>(rtcp.size())});
    bytes.insert(bytes.end(), rtcp.begin(), rtcp.end());
  }
  Rfc4571Deframer d;
  Got g;
  feed_chunks(d, bytes, g, rng, 700);
  CHECK(d.framing() == TcpFraming::Interleaved);
  CHECK(g.rtp == pkts);
  CHECK(g.rtcp.size() == pkts.size());
  CHECK(g.rtcp.front() == rtcp);
  CHECK(std::count(g.channels.begin(), g.channels.end(), 1) == static_cast<long>(pkts.size()));
}

TEST_CASE("RFC 4571: bare PS over TCP (no RTP) is passed through untouched") {
  std::mt19937 rng(42);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 10, 5, rng, 4000);
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA});
  Rfc4571Deframer d;
  Got g;
  feed_chunks(d, ps, g, rng, 999);
  CHECK(d.framing() == TcpFraming::RawPs);
  CHECK(g.ps == ps);
  CHECK(g.rtp.empty());
}

TEST_CASE("RFC 4571: corrupted lengths and inserted garbage: resync on the stream's SSRC, nothing damaged passed on") {
  std::mt19937 rng(43);
  auto pkts = rtp_packets(400, 0x01020304, rng, false);  // no pack starts: the SSRC alone resyncs
  struct Damage {
    const char* name;
    int kind;
  };
  for (Damage dmg : {Damage{"length +1", 0}, Damage{"length -7", 1}, Damage{"garbage inserted", 2}, Damage{"bytes cut", 3}}) {
    CAPTURE(dmg.kind);
    std::vector<uint8_t> bytes;
    std::vector<size_t> damaged;
    for (size_t i = 0; i < pkts.size(); ++i) {
      auto& p = pkts[i];
      size_t at = bytes.size();
      bytes.push_back(static_cast<uint8_t>(p.size() >> 8));
      bytes.push_back(static_cast<uint8_t>(p.size()));
      bytes.insert(bytes.end(), p.begin(), p.end());
      if (i % 50 != 25) continue;
      damaged.push_back(i);
      if (dmg.kind == 0 || dmg.kind == 1) {
        size_t l = p.size() + (dmg.kind == 0 ? 1 : -7);
        bytes[at] = static_cast<uint8_t>(l >> 8), bytes[at + 1] = static_cast<uint8_t>(l);
      } else if (dmg.kind == 2) {
        for (int j = 0; j < 300; ++j) bytes.push_back(static_cast<uint8_t>(rng()));
      } else {
        bytes.resize(bytes.size() - 100);
      }
    }
    Rfc4571Deframer d;
    Got g;
    feed_chunks(d, bytes, g, rng, 1500);
    check_subset(g.rtp, pkts);
    CHECK(d.stats().resyncs >= damaged.size() / 2);
    CHECK(d.stats().skipped_bytes > 0);
    // Beyond the packets touched by the damage (and the one a resync may skip), all arrive.
    CHECK(g.rtp.size() >= pkts.size() - 3 * damaged.size());
    CHECK(g.errors == static_cast<int>(d.stats().resyncs));
  }
}

TEST_CASE("RFC 4571: an unknown SSRC (SSRC 0 device) resyncs on a packet whose payload starts a PS pack") {
  std::mt19937 rng(44);
  auto pkts = rtp_packets(100, 0, rng, true);
  auto bytes = frame_len16(pkts);
  // Corrupt the length of packet 10: the next packets are found again at a pack start.
  size_t at = 0;
  for (int i = 0; i < 10; ++i) at += 2 + pkts[i].size();
  bytes[at] ^= 0x40;
  Rfc4571Deframer d;
  Got g;
  feed_chunks(d, bytes, g, rng, 4000);
  check_subset(g.rtp, pkts);
  CHECK(d.stats().resyncs == 1);
  CHECK(g.rtp.size() >= 100 - 5);
}

TEST_CASE("RFC 4571: garbage alone is bounded: nothing passed on, memory fixed, counted") {
  std::mt19937 rng(45);
  Rfc4571Config cfg;
  cfg.ssrc = 0x11111111;
  cfg.ssrc_known = true;
  cfg.framing = TcpFraming::Len16;
  Rfc4571Deframer d(cfg);
  Got g;
  std::vector<uint8_t> junk(1 << 20);
  for (auto& b : junk) b = static_cast<uint8_t>(rng() & 0x3F);  // never RTP version 2
  feed_chunks(d, junk, g, rng, 65536);
  CHECK(g.rtp.empty());
  CHECK(d.stats().resyncs == 1);
  CHECK(d.stats().skipped_bytes >= junk.size() - 2 * (65535 + 4));
}

TEST_CASE("GB TCP path: frames -> PS -> RTP -> RFC 4571 -> corrupted -> deframer -> receiver -> whole frames") {
  std::mt19937 rng(46);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 150, 25, rng, 20000);
  PsRtpPacketizerConfig pc;
  pc.ssrc = 0x0BADF00D;
  pc.max_payload = 8000;  // TCP: larger payloads
  PsRtpSender tx(PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA}, pc);
  Packets pk;
  for (auto& f : s.frames) REQUIRE(tx.send(f.view(), pk));
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < pk.pkts.size(); ++i) {
    auto& p = pk.pkts[i];
    size_t at = bytes.size();
    bytes.push_back(static_cast<uint8_t>(p.size() >> 8));
    bytes.push_back(static_cast<uint8_t>(p.size()));
    bytes.insert(bytes.end(), p.begin(), p.end());
    if (i % 97 == 50) bytes[at] ^= 0x10;  // a corrupted length now and then
  }
  PsRtpReceiverConfig rc;
  rc.reorder_window = 0;  // TCP is in order
  rc.max_packet = 0;
  PsRtpReceiver rx(rc);
  Collect frames;
  struct Bridge : Rfc4571Deframer::Sink {
    PsRtpReceiver* rx;
    Collect* out;
    void on_packet(Rfc4571Deframer::Kind k, const uint8_t* d, size_t n, uint8_t) override {
      if (k == Rfc4571Deframer::Kind::Rtp) rx->on_rtp(d, n, *out);
    }
  } bridge;
  bridge.rx = &rx;
  bridge.out = &frames;
  Rfc4571Deframer d;
  feed_chunks(d, bytes, bridge, rng, 3000);
  rx.finish(frames);
  CHECK(d.stats().resyncs > 0);
  CHECK(rx.stats().lost > 0);
  for (auto& f : frames.frames) {
    bool found = false;
    for (auto& w : s.frames)
      if (w.meta.kind == f.meta.kind && w.meta.pts == f.meta.pts) found = w.data == f.data;
    CHECK(found);
  }
  CHECK(frames.frames.size() < s.frames.size());
  CHECK(frames.frames.size() > s.frames.size() / 2);
}

TEST_CASE("RFC 4571: save/restore at any byte carries a cut packet into a new deframer (hot reload)") {
  std::mt19937 rng(44);
  auto pkts = rtp_packets(60, 0x0BADF00D, rng);
  auto bytes = frame_len16(pkts);
  for (int trial = 0; trial < 40; ++trial) {
    const size_t cut = 1 + rng() % (bytes.size() - 1);
    CAPTURE(cut);
    Got g;
    Rfc4571Deframer before;
    before.feed(bytes.data(), cut, g);
    const std::vector<uint8_t> state = before.save();
    Rfc4571Deframer after;
    REQUIRE(after.restore(state.data(), state.size()));
    after.feed(bytes.data() + cut, bytes.size() - cut, g);
    after.finish(g);
    CHECK(g.rtp == pkts);  // nothing lost or doubled at the cut
    CHECK(g.errors == 0);
    CHECK(after.ssrc() == 0x0BADF00Du);
    CHECK(after.stats().packets == pkts.size());
    // Without the state the packet cut in two is lost (what the test guards against).
    if (trial == 0) {
      Got lost;
      Rfc4571Deframer fresh;
      fresh.feed(bytes.data() + cut, bytes.size() - cut, lost);
      fresh.finish(lost);
      CHECK(lost.rtp.size() < pkts.size());
    }
  }
}

TEST_CASE("RFC 4571: restore refuses states it did not write, and keeps its own") {
  std::mt19937 rng(45);
  auto pkts = rtp_packets(5, 0x01020304, rng);
  auto bytes = frame_len16(pkts);
  Got g;
  Rfc4571Deframer d;
  d.feed(bytes.data(), bytes.size() / 2, g);
  std::vector<uint8_t> state = d.save();
  REQUIRE(state.size() > 44);
  std::vector<uint8_t> bad = state;
  bad[0] = 9;  // version
  Rfc4571Deframer other;
  CHECK_FALSE(other.restore(bad.data(), bad.size()));
  bad = state;
  bad[1] = 7;  // framing
  CHECK_FALSE(other.restore(bad.data(), bad.size()));
  CHECK_FALSE(other.restore(state.data(), state.size() - 1));  // truncated
  bad = state;
  bad[43] = 0x7F;  // a held length far over any deframer's bound
  CHECK_FALSE(other.restore(bad.data(), bad.size()));
  CHECK_FALSE(other.restore(nullptr, 0));
  for (size_t i = 0; i < 200; ++i) {  // random bytes never crash and never half-apply
    std::vector<uint8_t> junk(rng() % 80);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    other.restore(junk.data(), junk.size());
  }
  Rfc4571Deframer fresh;
  REQUIRE(fresh.restore(state.data(), state.size()));
  fresh.feed(bytes.data() + bytes.size() / 2, bytes.size() - bytes.size() / 2, g);
  fresh.finish(g);
  CHECK(g.rtp == pkts);
}
