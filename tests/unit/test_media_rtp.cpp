// sdk/media RTP <-> frames for video: H.264 (RFC 6184) and H.265 (RFC 7798) round trips, byte for
// byte, with loss, reordering, duplicates and wrap; marker bits, timestamps, the MTU; parameter
// set injection; malformed payloads.
// Designated initializers name only the fields a test sets.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "media_rtp_util.hpp"

#include <junction/media/h264_rtp.hpp>
#include <junction/media/h265_rtp.hpp>
#include <junction/media/reorder.hpp>
#include <junction/media/annexb.hpp>
#include <junction/util/encoding.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>

using namespace junction::media;
using namespace media_rtp_test;

namespace {

// A GOP of H.264 access units: keyframe with SPS/PPS/SEI, P frames of varied sizes (some larger
// than the MTU, some made of several small slices that aggregate).
std::vector<Bytes> h264_gop(std::mt19937& rng, size_t frames) {
  std::vector<Bytes> aus;
  Bytes sps = nal({0x67, 0x42, 0xc0, 0x1f}, 12, rng), pps = nal({0x68, 0xce}, 3, rng);
  for (size_t i = 0; i < frames; ++i) {
    if (i % 10 == 0)
      aus.push_back(au({sps, pps, nal({0x06, 0x05}, 40, rng), nal({0x65, 0x88}, 4000 + i * 7, rng)}));
    else if (i % 3 == 0)
      aus.push_back(au({nal({0x41, 0x9a}, 60, rng), nal({0x41, 0x9b}, 70, rng), nal({0x41, 0x9c}, 80, rng)}));
    else
      aus.push_back(au({nal({0x41, 0x9a}, 300 + (i * 131) % 2500, rng)}));
  }
  return aus;
}

std::vector<Bytes> h265_gop(std::mt19937& rng, size_t frames) {
  std::vector<Bytes> aus;
  Bytes vps = nal({0x40, 0x01}, 20, rng), sps = nal({0x42, 0x01}, 30, rng), pps = nal({0x44, 0x01}, 5, rng);
  for (size_t i = 0; i < frames; ++i) {
    if (i % 10 == 0)
      aus.push_back(au({vps, sps, pps, nal({0x4e, 0x01}, 30, rng), nal({0x26, 0x01}, 5000 + i, rng)}));
    else if (i % 3 == 0)
      aus.push_back(au({nal({0x02, 0x01}, 50, rng), nal({0x02, 0x01}, 90, rng)}));
    else
      aus.push_back(au({nal({0x02, 0x01}, 200 + (i * 211) % 3000, rng)}));
  }
  return aus;
}

bool is_key(const Bytes& au, bool hevc) {
  bool key = false;
  annexb::for_each_nal(au.data(), au.size(), [&](const uint8_t* p, size_t) {
    key |= hevc ? annexb::h265::is_irap(annexb::h265::type(p[0])) : annexb::h264::type(p[0]) == annexb::h264::kIdr;
    return true;
  });
  return key;
}

constexpr int64_t kFrameTicks = 3000;  // 30 fps at 90 kHz

Packets packetize(RtpPacketizer& pk, const std::vector<Bytes>& aus, int64_t pts0 = 1000) {
  Packets out;
  for (size_t i = 0; i < aus.size(); ++i) {
    RtpError e = pk.packetize(view(aus[i], pts0 + static_cast<int64_t>(i) * kFrameTicks, 90000), packet_sink(out));
    REQUIRE(e == RtpError::None);
  }
  return out;
}

Frames depacketize(RtpDepacketizer& dp, const std::vector<Bytes>& pkts) {
  Frames out;
  for (const Bytes& p : pkts) {
    RtpError e = dp.push(p.data(), p.size(), frame_sink(out));
    CHECK((e == RtpError::None || e == RtpError::Duplicate));
  }
  dp.flush(frame_sink(out));
  return out;
}

// Markers on the last packet of each frame only, one timestamp per frame, consecutive sequence
// numbers, every packet within the MTU.
void check_packets(const Packets& p, size_t frames, size_t mtu, uint16_t seq0, uint32_t ts0) {
  size_t markers = 0;
  for (size_t i = 0; i < p.list.size(); ++i) {
    const Bytes& pk = p.list[i];
    CHECK(pk.size() <= mtu);
    CHECK(seq_of(pk) == static_cast<uint16_t>(seq0 + i));
    bool last_of_frame = i + 1 == p.list.size() || ts_of(p.list[i + 1]) != ts_of(pk);
    CHECK(marker_of(pk) == last_of_frame);
    markers += marker_of(pk);
    CHECK(static_cast<uint32_t>(ts_of(pk) - ts0) % kFrameTicks == 0);
  }
  CHECK(markers == frames);
}

void check_exact(const Frames& got, const std::vector<Bytes>& aus, bool hevc, int64_t pts0) {
  REQUIRE(got.list.size() == aus.size());
  for (size_t i = 0; i < aus.size(); ++i) {
    CHECK(got.list[i].data == aus[i]);
    CHECK(got.list[i].meta.pts == pts0 + static_cast<int64_t>(i) * kFrameTicks);
    CHECK(got.list[i].meta.seq == i);
    CHECK(got.list[i].meta.clock_rate == 90000);
    CHECK(got.list[i].meta.kind == JN_MEDIA_VIDEO);
    CHECK(((got.list[i].meta.frame_flags & JN_MF_KEY) != 0) == is_key(aus[i], hevc));
    CHECK(((got.list[i].meta.frame_flags & JN_MF_CONFIG) != 0) == is_key(aus[i], hevc));
    CHECK((got.list[i].meta.frame_flags & JN_MF_DISCONT) == 0);
  }
}

size_t count_type(const Packets& p, bool hevc, uint8_t type) {
  size_t n = 0;
  for (const Bytes& pk : p.list) n += (hevc ? annexb::h265::type(pk[12]) : annexb::h264::type(pk[12])) == type;
  return n;
}

}  // namespace

TEST_CASE("media rtp h264: frames -> RTP -> frames byte for byte (mode 1: single, STAP-A, FU-A)") {
  std::mt19937 rng(1);
  auto aus = h264_gop(rng, 30);
  PacketizerConfig pc;
  pc.ssrc = 0x1234;
  pc.first_seq = 100;
  pc.mtu = 1200;
  H264Packetizer pk(pc, 1);
  REQUIRE(pk.ok());
  Packets pkts = packetize(pk, aus);
  check_packets(pkts, aus.size(), 1200, 100, 1000);
  CHECK(count_type(pkts, false, annexb::h264::kStapA) > 0);
  CHECK(count_type(pkts, false, annexb::h264::kFuA) > 0);
  CHECK(count_type(pkts, false, annexb::h264::kSlice) > 0);
  H264Depacketizer dp(DepacketizerConfig{.payload_type = 96});
  REQUIRE(dp.ok());
  Frames got = depacketize(dp, pkts.list);
  check_exact(got, aus, false, 1000);
  CHECK(dp.stats().frames_dropped == 0);
  CHECK(dp.stats().lost_packets == 0);
}

TEST_CASE("media rtp h264: packetization-mode 0 sends one NAL unit per packet and refuses larger ones") {
  std::mt19937 rng(2);
  PacketizerConfig pc;
  pc.mtu = 1200;
  H264Packetizer pk(pc, 0);
  auto small = au({nal({0x67, 0x42}, 10, rng), nal({0x68, 0xce}, 3, rng), nal({0x65, 0x88}, 1000, rng)});
  Packets out;
  CHECK(pk.packetize(view(small, 0, 90000), packet_sink(out)) == RtpError::None);
  REQUIRE(out.list.size() == 3);
  CHECK(count_type(out, false, annexb::h264::kStapA) == 0);
  auto big = au({nal({0x41, 0x9a}, 10, rng), nal({0x41, 0x9a}, 1200, rng)});
  Packets none;
  CHECK(pk.packetize(view(big, 3000, 90000), packet_sink(none)) == RtpError::NalTooLarge);
  CHECK(none.list.empty());  // nothing half sent
  CHECK(pk.stats().refused == 1);
  H264Depacketizer dp(DepacketizerConfig{.fmtp = "packetization-mode=0"});
  Frames got = depacketize(dp, out.list);
  REQUIRE(got.list.size() == 1);
  CHECK(got.list[0].data == small);
}

TEST_CASE("media rtp h265: frames -> RTP -> frames byte for byte (single, AP, FU)") {
  std::mt19937 rng(3);
  auto aus = h265_gop(rng, 30);
  PacketizerConfig pc;
  pc.first_seq = 7;
  pc.mtu = 1000;
  H265Packetizer pk(pc);
  Packets pkts = packetize(pk, aus);
  check_packets(pkts, aus.size(), 1000, 7, 1000);
  CHECK(count_type(pkts, true, annexb::h265::kAp) > 0);
  CHECK(count_type(pkts, true, annexb::h265::kFu) > 0);
  H265Depacketizer dp(DepacketizerConfig{});
  REQUIRE(dp.ok());
  check_exact(depacketize(dp, pkts.list), aus, true, 1000);
}

TEST_CASE("media rtp: sequence number and timestamp wrap") {
  std::mt19937 rng(4);
  auto aus = h264_gop(rng, 40);
  PacketizerConfig pc;
  pc.first_seq = 65500;
  pc.ts_offset = 0xffffffffu - 20 * kFrameTicks;  // the timestamp wraps half way
  H264Packetizer pk(pc);
  Packets pkts = packetize(pk, aus, 0);
  CHECK(seq_of(pkts.list.back()) < 1000);  // the sequence wrapped too
  H264Depacketizer dp(DepacketizerConfig{});
  Frames got = depacketize(dp, pkts.list);
  REQUIRE(got.list.size() == aus.size());
  for (size_t i = 0; i < aus.size(); ++i) {
    CHECK(got.list[i].data == aus[i]);
    // pts continue past 2^32: the unwrapped RTP timestamp.
    CHECK(got.list[i].meta.pts == static_cast<int64_t>(pc.ts_offset) + static_cast<int64_t>(i) * kFrameTicks);
  }
}

TEST_CASE("media rtp h264: reordered and duplicated packets through the reorder buffer come out whole") {
  std::mt19937 rng(5);
  auto aus = h264_gop(rng, 60);
  H264Packetizer pk(PacketizerConfig{.first_seq = 65000});
  Packets pkts = packetize(pk, aus);
  // Swap neighbours at random, send some packets twice (one of them much later).
  std::vector<Bytes> wire = pkts.list;
  for (size_t i = 0; i + 1 < wire.size(); i += 2)
    if (rng() % 2) std::swap(wire[i], wire[i + 1]);
  for (size_t i = 0; i < wire.size(); i += 7) wire.insert(wire.begin() + static_cast<long>(i), wire[i]);
  wire.insert(wire.begin() + 40, wire[30]);
  ReorderBuffer rb(32, 1500, 50'000'000);
  REQUIRE(rb.ok());
  H264Depacketizer dp(DepacketizerConfig{});
  Frames got;
  uint64_t now = 1;
  ReorderBuffer::Packet out;
  size_t lost_reported = 0;
  for (const Bytes& p : wire) {
    rb.push(p.data(), p.size(), now);
    while (rb.pop(now, out)) {
      lost_reported += out.lost_before;
      dp.push(out.data, out.len, frame_sink(got));
    }
    now += 1000;  // well inside the wait bound
  }
  while (rb.drain(out)) dp.push(out.data, out.len, frame_sink(got));
  CHECK(rb.stats().duplicates >= wire.size() - pkts.list.size());
  CHECK(lost_reported == 0);
  CHECK(rb.stats().lost == 0);
  check_exact(got, aus, false, 1000);
}

namespace {
void loss_test(bool hevc, uint32_t seed) {
  std::mt19937 rng(seed);
  auto aus = hevc ? h265_gop(rng, 300) : h264_gop(rng, 300);
  std::unique_ptr<RtpPacketizer> pk;
  std::unique_ptr<RtpDepacketizer> dpp;
  if (hevc) {
    pk = std::make_unique<H265Packetizer>(PacketizerConfig{.mtu = 900});
    dpp = std::make_unique<H265Depacketizer>(DepacketizerConfig{});
  } else {
    pk = std::make_unique<H264Packetizer>(PacketizerConfig{.mtu = 900});
    dpp = std::make_unique<H264Depacketizer>(DepacketizerConfig{});
  }
  RtpDepacketizer& dp = *dpp;
  Packets pkts = packetize(*pk, aus, 0);
  std::vector<Bytes> wire;
  size_t lost = 0;
  for (const Bytes& p : pkts.list) {
    // The first and last packets stay: a loss before the first or after the last is invisible.
    if (&p != &pkts.list.front() && &p != &pkts.list.back() && rng() % 100 < 5) {
      ++lost;
      continue;
    }
    wire.push_back(p);
  }
  REQUIRE(lost > 10);
  Frames got = depacketize(dp, wire);
  CHECK(dp.stats().lost_packets == lost);
  CHECK(dp.stats().frames_dropped > 0);
  CHECK(got.list.size() + dp.stats().frames_dropped <= aus.size());
  CHECK(got.list.size() > aus.size() / 2);
  uint32_t prev_seq = UINT32_MAX;
  for (const Frame& f : got.list) {
    size_t idx = static_cast<size_t>(f.meta.pts / kFrameTicks);
    REQUIRE(idx < aus.size());
    CHECK(f.data == aus[idx]);  // never half written
    if (prev_seq != UINT32_MAX && f.meta.seq != prev_seq + 1) CHECK((f.meta.frame_flags & JN_MF_DISCONT) != 0);
    prev_seq = f.meta.seq;
  }
  // Every frame whose packets all arrived and whose neighbours' did too came out: the count of
  // emitted + dropped covers each unit that received at least one packet.
  std::map<uint32_t, int> ts_seen;
  for (const Bytes& p : wire) ts_seen[ts_of(p)] = 1;
  CHECK(got.list.size() + dp.stats().frames_dropped == ts_seen.size());
}
}  // namespace

TEST_CASE("media rtp video: 5% loss yields only whole frames; after a dropped unit comes DISCONT and a seq gap") {
  for (uint32_t seed = 6; seed < 11; ++seed) {
    loss_test(false, seed);
    loss_test(true, seed);
  }
}

TEST_CASE("media rtp h265: reordered and duplicated packets through the reorder buffer come out whole") {
  std::mt19937 rng(14);
  auto aus = h265_gop(rng, 60);
  H265Packetizer pk(PacketizerConfig{.first_seq = 65400, .mtu = 700});
  Packets pkts = packetize(pk, aus);
  std::vector<Bytes> wire;
  for (size_t i = 0; i < pkts.list.size(); ++i) {
    wire.push_back(pkts.list[i]);
    if (i % 5 == 0) wire.push_back(pkts.list[i]);
  }
  for (size_t i = 2; i + 3 < wire.size(); i += 4) std::swap(wire[i], wire[i + 3]);
  ReorderBuffer rb(16, 1500, 1'000'000);
  H265Depacketizer dp(DepacketizerConfig{});
  Frames got;
  ReorderBuffer::Packet out;
  for (const Bytes& p : wire) {
    rb.push(p.data(), p.size(), 0);
    while (rb.pop(0, out)) dp.push(out.data, out.len, frame_sink(got));
  }
  CHECK(rb.stats().lost == 0);
  check_exact(got, aus, true, 1000);
}

TEST_CASE("media rtp h264: a lost middle fragment drops exactly that unit") {
  std::mt19937 rng(7);
  auto aus = h264_gop(rng, 5);  // frame 0 is a 4000-byte IDR in FU-A
  H264Packetizer pk(PacketizerConfig{.mtu = 1200});
  Packets pkts = packetize(pk, aus, 0);
  std::vector<Bytes> wire = pkts.list;
  size_t fu_mid = 0;
  for (size_t i = 0; i < wire.size(); ++i)
    if (annexb::h264::type(wire[i][12]) == annexb::h264::kFuA && !(wire[i][13] & 0xc0)) {
      fu_mid = i;
      break;
    }
  REQUIRE(fu_mid > 0);
  wire.erase(wire.begin() + static_cast<long>(fu_mid));
  H264Depacketizer dp(DepacketizerConfig{});
  Frames got = depacketize(dp, wire);
  REQUIRE(got.list.size() == 4);
  CHECK(dp.stats().frames_dropped == 1);
  CHECK(got.list[0].data == aus[1]);
  CHECK(got.list[0].meta.seq == 1);  // frame number 0 was the dropped unit
  CHECK((got.list[0].meta.frame_flags & JN_MF_DISCONT) != 0);
  CHECK((got.list[1].meta.frame_flags & JN_MF_DISCONT) == 0);
}

TEST_CASE("media rtp h264: sprop-parameter-sets are injected before a keyframe that lacks them (after its AUD)") {
  std::mt19937 rng(8);
  Bytes sps = nal({0x67, 0x42, 0xc0, 0x1f}, 9, rng), pps = nal({0x68, 0xce}, 3, rng);
  Bytes with_ps = au({sps, pps, nal({0x65}, 10, rng)});
  std::string sprop = h264_sprop_parameter_sets(with_ps.data(), with_ps.size());
  REQUIRE(!sprop.empty());
  std::string fmtp = "profile-level-id=42c01f; packetization-mode=1; sprop-parameter-sets=" + sprop;
  H264Depacketizer dp(DepacketizerConfig{.fmtp = fmtp});
  REQUIRE(dp.ok());
  CHECK(dp.param_set(annexb::h264::kSps) == std::string_view(reinterpret_cast<const char*>(sps.data()), sps.size()));
  Bytes aud = {0x09, 0xf0};
  Bytes idr = nal({0x65, 0x88}, 3000, rng), p = nal({0x41, 0x9a}, 500, rng);
  H264Packetizer pk(PacketizerConfig{});
  Packets pkts = packetize(pk, std::vector<Bytes>{au({aud, idr}), au({p}), au({idr})});
  Frames got = depacketize(dp, pkts.list);
  REQUIRE(got.list.size() == 3);
  CHECK(got.list[0].data == au({aud, sps, pps, idr}));
  CHECK(got.list[0].meta.frame_flags == (JN_MF_KEY | JN_MF_CONFIG));
  CHECK(got.list[1].data == au({p}));
  CHECK(got.list[1].meta.frame_flags == 0);
  CHECK(got.list[2].data == au({sps, pps, idr}));
  // In-band parameter sets replace the fmtp's.
  Bytes sps2 = nal({0x67, 0x4d}, 12, rng);
  Packets more;
  H264Packetizer pk2(PacketizerConfig{.first_seq = pk.next_seq()});
  pk2.packetize(view(au({sps2, pps, idr}), 9000, 90000), packet_sink(more));
  pk2.packetize(view(au({idr}), 12000, 90000), packet_sink(more));
  Frames got2 = depacketize(dp, more.list);
  REQUIRE(got2.list.size() == 2);
  CHECK(got2.list[1].data == au({sps2, pps, idr}));
}

TEST_CASE("media rtp h265: sprop-vps/sps/pps injected before an IRAP; DONL refused") {
  std::mt19937 rng(9);
  Bytes vps = nal({0x40, 0x01}, 10, rng), sps = nal({0x42, 0x01}, 20, rng), pps = nal({0x44, 0x01}, 4, rng);
  auto b64 = [](const Bytes& b) { return junction::util::base64_encode(std::string_view(reinterpret_cast<const char*>(b.data()), b.size())); };
  std::string fmtp = "sprop-vps=" + b64(vps) + ";sprop-sps=" + b64(sps) + ";sprop-pps=" + b64(pps);
  Bytes with_ps = au({vps, sps, pps, nal({0x26, 0x01}, 10, rng)});
  CHECK(h265_sprop_parameters(with_ps.data(), with_ps.size()) == fmtp);  // what a producer puts in its SDP
  CHECK(h265_sprop_parameters(with_ps.data() + 4 + vps.size(), with_ps.size() - 4 - vps.size()).empty());
  H265Depacketizer dp(DepacketizerConfig{.fmtp = fmtp});
  REQUIRE(dp.ok());
  Bytes cra = nal({0x2a, 0x01}, 2500, rng);  // CRA_NUT (21)
  H265Packetizer pk(PacketizerConfig{});
  Packets pkts = packetize(pk, std::vector<Bytes>{au({cra})});
  Frames got = depacketize(dp, pkts.list);
  REQUIRE(got.list.size() == 1);
  CHECK(got.list[0].data == au({vps, sps, pps, cra}));
  CHECK(got.list[0].meta.frame_flags == (JN_MF_KEY | JN_MF_CONFIG));
  CHECK(got.list[0].meta.codec == JN_CODEC_H265);
  H265Depacketizer don(DepacketizerConfig{.fmtp = "sprop-max-don-diff=2"});
  CHECK(!don.ok());
  CHECK(don.error() == RtpError::Unsupported);
  H264Depacketizer bad(DepacketizerConfig{.fmtp = "sprop-parameter-sets=Z0IA*H5Wo"});
  CHECK(!bad.ok());
  Bytes any(20, 0x80);
  Frames none;
  CHECK(bad.push(any.data(), any.size(), frame_sink(none)) == RtpError::BadConfig);
}

TEST_CASE("media rtp h264: malformed and unsupported payloads are refused and damage only their unit") {
  std::mt19937 rng(10);
  auto aus = h264_gop(rng, 4);
  H264Packetizer pk(PacketizerConfig{.first_seq = 0});
  Packets pkts = packetize(pk, aus, 0);
  H264Depacketizer dp(DepacketizerConfig{.payload_type = 96});
  Frames got;
  auto sink = frame_sink(got);
  // Replace the first packet of frame 1 (single NAL) by a STAP-A whose size runs past the end.
  size_t first1 = 0;
  while (ts_of(pkts.list[first1]) != kFrameTicks) ++first1;
  std::vector<Bytes> wire = pkts.list;
  Bytes broken(wire[first1].begin(), wire[first1].begin() + 12);
  broken.insert(broken.end(), {0x18, 0x00, 0x40, 0x41, 0x01});
  broken[1] = wire[first1][1];
  wire[first1] = broken;
  std::vector<RtpError> errors;
  for (const Bytes& p : wire) errors.push_back(dp.push(p.data(), p.size(), sink));
  CHECK(errors[first1] == RtpError::BadPayload);
  REQUIRE(got.list.size() == 3);
  CHECK(got.list[0].data == aus[0]);
  CHECK(got.list[1].data == aus[2]);
  CHECK((got.list[1].meta.frame_flags & JN_MF_DISCONT) != 0);
  CHECK(got.list[1].meta.seq == 2);
  // Interleaved-mode structures, a forbidden bit, a bad header, another payload type.
  Bytes stapb = {0x80, 0xe0, 0, 50, 0, 0, 0, 1, 0, 0, 0, 0, 0x19, 0, 0, 0, 2, 0x41, 0x01};
  CHECK(dp.push(stapb.data(), stapb.size(), sink) == RtpError::Unsupported);
  Bytes forbidden = {0x80, 0xe0, 0, 51, 0, 0, 0, 2, 0, 0, 0, 0, 0xc1, 0x01};
  CHECK(dp.push(forbidden.data(), forbidden.size(), sink) == RtpError::BadPayload);
  Bytes v1 = {0x40, 0xe0, 0, 52, 0, 0, 0, 2, 0, 0, 0, 0, 0x41};
  CHECK(dp.push(v1.data(), v1.size(), sink) == RtpError::BadHeader);
  Bytes pt0 = {0x80, 0x80, 0, 53, 0, 0, 0, 3, 0, 0, 0, 0, 0x41, 0x01};
  CHECK(dp.push(pt0.data(), pt0.size(), sink) == RtpError::PayloadType);
  CHECK(got.list.size() == 3);  // nothing damaged came out
  // An FU with both start and end bits; an FU continuation without a start.
  Bytes se = {0x80, 0xe0, 0, 54, 0, 0, 0, 4, 0, 0, 0, 0, 0x7c, 0xc5, 0x01};
  CHECK(dp.push(se.data(), se.size(), sink) == RtpError::BadPayload);
  Bytes cont = {0x80, 0xe0, 0, 55, 0, 0, 0, 5, 0, 0, 0, 0, 0x7c, 0x45, 0x01};
  CHECK(dp.push(cont.data(), cont.size(), sink) == RtpError::BadPayload);
  // A STAP-A carrying a NAL unit of type 28 (an FU-A's type): sent on alone it would be misread.
  Bytes stap28 = {0x80, 0xe0, 0, 56, 0, 0, 0, 6, 0, 0, 0, 0, 0x18, 0x00, 0x02, 0x7c, 0x85};
  CHECK(dp.push(stap28.data(), stap28.size(), sink) == RtpError::BadPayload);
  CHECK(got.list.size() == 3);
  // A NAL unit holding a start code would re-parse as two: refused. Trailing zero bytes (the
  // byte stream's, which ffmpeg sends) are left out of the frame.
  Bytes embedded = {0x80, 0xe0, 0, 57, 0, 0, 0, 7, 0, 0, 0, 0, 0x41, 0x01, 0x00, 0x00, 0x01, 0x67, 0x42};
  CHECK(dp.push(embedded.data(), embedded.size(), sink) == RtpError::BadPayload);
  CHECK(got.list.size() == 3);
  Bytes trailing = {0x80, 0xe0, 0, 58, 0, 0, 0, 8, 0, 0, 0, 0, 0x41, 0x01, 0x02, 0x00, 0x00};
  CHECK(dp.push(trailing.data(), trailing.size(), sink) == RtpError::None);
  REQUIRE(got.list.size() == 4);
  CHECK(got.list[3].data == au({Bytes{0x41, 0x01, 0x02}}));
  // ...and the packetizer refuses a frame with an uncarriable NAL unit type whole.
  Packets none;
  Bytes bad = au({Bytes{0x41, 0x01}, Bytes{0x7c, 0x85}});
  CHECK(pk.packetize(view(bad, 0, 90000), packet_sink(none)) == RtpError::BadFrame);
  CHECK(none.list.empty());
}

TEST_CASE("media rtp h264: a frame over the configured maximum is dropped, the next one passes") {
  std::mt19937 rng(11);
  std::vector<Bytes> aus = {au({nal({0x41}, 5000, rng)}), au({nal({0x41}, 100, rng)})};
  H264Packetizer pk(PacketizerConfig{});
  Packets pkts = packetize(pk, aus, 0);
  H264Depacketizer dp(DepacketizerConfig{.max_frame = 2048});
  Frames got;
  bool too_large = false;
  for (const Bytes& p : pkts.list) too_large |= dp.push(p.data(), p.size(), frame_sink(got)) == RtpError::TooLarge;
  CHECK(too_large);
  REQUIRE(got.list.size() == 1);
  CHECK(got.list[0].data == aus[1]);
  CHECK((got.list[0].meta.frame_flags & JN_MF_DISCONT) != 0);
}

TEST_CASE("media rtp: a sender without marker bits: units end when the timestamp changes; a new SSRC resets") {
  std::mt19937 rng(12);
  auto aus = h264_gop(rng, 6);
  H264Packetizer pk(PacketizerConfig{.ssrc = 1});
  Packets pkts = packetize(pk, aus, 0);
  for (Bytes& p : pkts.list) p[1] &= 0x7f;
  H264Depacketizer dp(DepacketizerConfig{});
  Frames got = depacketize(dp, pkts.list);  // flush() emits the last one
  check_exact(got, aus, false, 0);
  // Another source mid-unit: the open unit is dropped, the new source's frames are DISCONT.
  H264Packetizer pk2(PacketizerConfig{.ssrc = 2, .first_seq = 999});
  Packets p2 = packetize(pk2, aus, 0);
  Frames got2;
  dp.push(pkts.list[0].data(), pkts.list[0].size(), frame_sink(got2));  // frame 0 begins (FU)
  for (const Bytes& p : p2.list) dp.push(p.data(), p.size(), frame_sink(got2));
  CHECK(dp.stats().ssrc_changes == 1);
  REQUIRE(got2.list.size() == aus.size());
  CHECK((got2.list[0].meta.frame_flags & JN_MF_DISCONT) != 0);
  CHECK(got2.list[0].data == aus[0]);
}

TEST_CASE("media rtp: a sequence jump is believed only when the next packet follows it; H.264 end-of-stream NAL units pass") {
  std::mt19937 rng(13);
  auto aus = h264_gop(rng, 6);
  aus.push_back(au({Bytes{0x0b}}));  // end of stream: a one-byte NAL unit
  H264Packetizer pk(PacketizerConfig{.first_seq = 100});
  Packets a = packetize(pk, aus, 0);
  H264Packetizer restarted(PacketizerConfig{.first_seq = 30000});
  Packets b = packetize(restarted, aus, 0);
  H264Depacketizer dp(DepacketizerConfig{});
  Frames got;
  for (const Bytes& p : a.list) dp.push(p.data(), p.size(), frame_sink(got));
  REQUIRE(got.list.size() == aus.size());
  CHECK(got.list.back().data == aus.back());
  // One stray packet far ahead is refused and changes nothing.
  Bytes stray = b.list[3];
  CHECK(dp.push(stray.data(), stray.size(), frame_sink(got)) == RtpError::SeqJump);
  CHECK(dp.stats().seq_restarts == 0);
  // The same SSRC restarting its sequence: the first packet is refused, the second confirms.
  std::vector<RtpError> errs;
  for (const Bytes& p : b.list) errs.push_back(dp.push(p.data(), p.size(), frame_sink(got)));
  CHECK(errs[0] == RtpError::SeqJump);
  CHECK(dp.stats().seq_restarts == 1);
  // Frame 0 lost its first packet: dropped; the rest come whole, the first flagged DISCONT.
  REQUIRE(got.list.size() == 2 * aus.size() - 1);
  CHECK(got.list[aus.size()].data == aus[1]);
  CHECK((got.list[aus.size()].meta.frame_flags & JN_MF_DISCONT) != 0);
}

// The start-code scan (16 bytes at a time with SSE2) against the definition, byte by byte, on
// inputs dense with 00/01 bytes (so codes fall on every offset of a 16-byte block and across
// blocks), from every starting offset.
TEST_CASE("annexb find_start_code matches a byte-by-byte reference at every offset") {
  auto reference = [](const uint8_t* p, size_t size, size_t from, size_t* cl) -> size_t {
    for (size_t i = from; i + 3 <= size; ++i)
      if (p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1) {
        *cl = (i > from && p[i - 1] == 0) ? 4 : 3;
        return *cl == 4 ? i - 1 : i;
      }
    *cl = 0;
    return size;
  };
  uint32_t seed = 12345;
  size_t codes_seen = 0;
  for (int round = 0; round < 400; ++round) {
    std::vector<uint8_t> buf(1 + round % 97);
    for (auto& b : buf) {
      seed = seed * 1664525u + 1013904223u;
      uint32_t r = seed >> 24;
      b = r < 150 ? 0 : r < 200 ? 1 : static_cast<uint8_t>(r);
    }
    for (size_t from = 0; from <= buf.size(); ++from) {
      size_t cl_fast = 9, cl_ref = 9;
      size_t fast = junction::media::annexb::find_start_code(buf.data(), buf.size(), from, &cl_fast);
      size_t ref = reference(buf.data(), buf.size(), from, &cl_ref);
      REQUIRE(fast == ref);
      REQUIRE(cl_fast == cl_ref);
      codes_seen += ref < buf.size();
    }
  }
  CHECK(codes_seen > 1000);  // the inputs really exercised found codes, not only misses
}
