// sdk/media PS demuxer and muxer: frames -> PS -> frames byte-exact (whole, in random chunks),
// PSM absent, MPEG-1 refused, pack stuffing, AUs spread over many PES and PES spanning AUs,
// parameter sets repeated, 3-byte start codes, H.265, AAC, caps, loss.
#include <doctest/doctest.h>

#include <memory>

#include "media_ps_util.hpp"

#include <algorithm>
#include <map>

using namespace jn_test;

namespace {

// Every field a demuxer reproduces, DISCONT excepted (checked separately).
void check_same(const OwnedFrame& got, const OwnedFrame& want) {
  CHECK(got.data == want.data);
  CHECK(got.meta.pts == want.meta.pts);
  CHECK(got.meta.dts == want.meta.dts);
  CHECK(got.meta.codec == want.meta.codec);
  CHECK(got.meta.clock_rate == want.meta.clock_rate);
  CHECK(got.meta.kind == want.meta.kind);
  CHECK(got.meta.track == want.meta.track);
  CHECK(got.meta.seq == want.meta.seq);
  CHECK((got.meta.frame_flags & ~uint32_t{JN_MF_DISCONT}) == want.meta.frame_flags);
}

void check_stream(const std::vector<OwnedFrame>& got, const Stream& s) {
  REQUIRE(got.size() == s.frames.size());
  bool first_v = true, first_a = true;
  for (size_t i = 0; i < got.size(); ++i) {
    check_same(got[i], s.frames[i]);
    bool& first = got[i].meta.kind == JN_MEDIA_VIDEO ? first_v : first_a;
    CHECK(((got[i].meta.frame_flags & JN_MF_DISCONT) != 0) == first);  // only the first of a track
    first = false;
  }
}

// The demuxer completes a video AU when the next one starts, so frames of the two tracks come
// out in a slightly different order than muxed: compare per track.
std::vector<OwnedFrame> track(const std::vector<OwnedFrame>& v, uint8_t kind) {
  std::vector<OwnedFrame> out;
  for (auto& f : v)
    if (f.meta.kind == kind) out.push_back(f);
  return out;
}
Stream track(const Stream& s, uint8_t kind) { return Stream{track(s.frames, kind)}; }

void check_tracks(const std::vector<OwnedFrame>& got, const Stream& s) {
  check_stream(track(got, JN_MEDIA_VIDEO), track(s, JN_MEDIA_VIDEO));
  check_stream(track(got, JN_MEDIA_AUDIO), track(s, JN_MEDIA_AUDIO));
}

// Removes every program stream map from a muxed stream (devices that never send one).
std::vector<uint8_t> strip_psm(const std::vector<uint8_t>& ps) {
  std::vector<uint8_t> out;
  size_t i = 0;
  while (i + 4 <= ps.size()) {
    REQUIRE((ps[i] == 0 && ps[i + 1] == 0 && ps[i + 2] == 1));
    uint8_t id = ps[i + 3];
    size_t len;
    if (id == 0xBA) len = 14 + (ps[i + 13] & 7);
    else len = 6 + ((ps[i + 4] << 8) | ps[i + 5]);
    if (id != 0xBC) out.insert(out.end(), ps.begin() + i, ps.begin() + i + len);
    i += len;
  }
  return out;
}

}  // namespace

TEST_CASE("PS: H.264 + G.711A frames -> PS -> frames, byte-exact, whole and in random chunks") {
  std::mt19937 rng(1);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 60, 12, rng, 150000);  // keyframes > 2 PES
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA});
  {
    PsDemuxer d;
    Collect c;
    d.feed(ps.data(), ps.size(), c);
    d.flush(c);
    check_tracks(c.frames, s);
    CHECK(c.errors.empty());
    CHECK(d.video_codec() == JN_CODEC_H264);
    CHECK(d.audio_codec() == JN_CODEC_PCMA);
    CHECK(d.stats().dropped_frames == 0);
  }
  for (int round = 0; round < 5; ++round) {
    PsDemuxer d;
    Collect c;
    size_t max_chunk = round == 0 ? 1 : round == 1 ? 7 : 3000;  // 1-byte chunks split every header
    for (size_t off = 0; off < ps.size();) {
      size_t n = std::min(ps.size() - off, 1 + rng() % max_chunk);
      d.feed(ps.data() + off, n, c);
      off += n;
    }
    d.flush(c);
    check_tracks(c.frames, s);
    CHECK(c.errors.empty());
  }
}

TEST_CASE("PS: video frames come out as soon as the next one starts, audio at the next start code") {
  std::mt19937 rng(2);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMU, 5, 5, rng);
  std::vector<size_t> bounds;
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMU}, &bounds);
  PsDemuxer d;
  Collect c;
  size_t off = 0;
  for (size_t i = 0; i < s.frames.size(); ++i) {
    d.feed(ps.data() + off, bounds[i] - off, c);
    off = bounds[i];
  }
  // Everything but the last video AU (its end is not known before the next AU or flush) and the
  // last audio PES (passed on once the start code after it shows its length was right).
  REQUIRE(s.frames.back().meta.kind == JN_MEDIA_AUDIO);
  CHECK(c.frames.size() == s.frames.size() - 2);
  d.flush(c);
  check_tracks(c.frames, s);
}

TEST_CASE("PS: H.265 + G.711U, and the codecs guessed from the data when no PSM is sent") {
  std::mt19937 rng(3);
  Stream s = make_stream(JN_CODEC_H265, JN_CODEC_PCMU, 30, 10, rng);
  // mu-law near silence (0xFF/0x7F), so the guess has something to go on.
  for (auto& f : s.frames)
    if (f.meta.kind == JN_MEDIA_AUDIO)
      for (auto& b : f.data) b = static_cast<uint8_t>(0x7C + (b & 3)) | (b & 0x80);
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H265, JN_CODEC_PCMU});
  SUBCASE("with PSM") {
    PsDemuxer d;
    Collect c;
    d.feed(ps.data(), ps.size(), c);
    d.flush(c);
    check_tracks(c.frames, s);
    CHECK(d.stats().psm > 0);
  }
  SUBCASE("without PSM") {
    auto bare = strip_psm(ps);
    REQUIRE(bare.size() < ps.size());
    PsDemuxer d;
    Collect c;
    d.feed(bare.data(), bare.size(), c);
    d.flush(c);
    CHECK(d.stats().psm == 0);
    CHECK(d.video_codec() == JN_CODEC_H265);
    CHECK(d.audio_codec() == JN_CODEC_PCMU);
    check_tracks(c.frames, s);
  }
}

TEST_CASE("PS: no PSM, H.264 and A-law guessed") {
  std::mt19937 rng(4);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 10, 5, rng);
  for (auto& f : s.frames)
    if (f.meta.kind == JN_MEDIA_AUDIO)
      for (auto& b : f.data) b = static_cast<uint8_t>(0x54 + (b & 1)) | (b & 0x80);  // A-law near 0
  auto bare = strip_psm(mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA}));
  PsDemuxer d;
  Collect c;
  d.feed(bare.data(), bare.size(), c);
  d.flush(c);
  CHECK(d.video_codec() == JN_CODEC_H264);
  CHECK(d.audio_codec() == JN_CODEC_PCMA);
  check_tracks(c.frames, s);
}

TEST_CASE("PS: an MPEG-1 system stream is refused cleanly; the MPEG-2 stream after it decodes") {
  std::mt19937 rng(5);
  // MPEG-1 pack (2.5.3.3 of 11172-1: '0010' SCR) + an MPEG-1 video packet (no '10' PES flags).
  std::vector<uint8_t> in = {0x00, 0x00, 0x01, 0xBA, 0x21, 0x00, 0x01, 0x00, 0x01, 0x80, 0x00, 0x01,
                             0x00, 0x00, 0x01, 0xE0, 0x00, 0x08, 0x0F, 0x00, 0x00, 0x01, 0x67, 0x42, 0x11, 0x22};
  Stream s = make_stream(JN_CODEC_H264, 0, 6, 3, rng);
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_NONE});
  in.insert(in.end(), ps.begin(), ps.end());
  PsDemuxer d;
  Collect c;
  d.feed(in.data(), in.size(), c);
  d.flush(c);
  CHECK(c.saw(PsError::Mpeg1Pack));
  CHECK(d.stats().mpeg1_packs == 1);
  check_tracks(c.frames, s);
}

TEST_CASE("PS: pack headers with stuffing bytes") {
  std::mt19937 rng(6);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 8, 4, rng);
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA});
  std::vector<uint8_t> stuffed;
  for (size_t i = 0; i < ps.size();) {
    if (i + 14 <= ps.size() && ps[i] == 0 && ps[i + 1] == 0 && ps[i + 2] == 1 && ps[i + 3] == 0xBA) {
      stuffed.insert(stuffed.end(), ps.begin() + i, ps.begin() + i + 13);
      stuffed.push_back(0xF8 | 7);
      stuffed.insert(stuffed.end(), 7, 0xFF);
      i += 14;
    } else {
      stuffed.push_back(ps[i++]);
    }
  }
  PsDemuxer d;
  Collect c;
  for (size_t off = 0; off < stuffed.size(); off += 5) d.feed(stuffed.data() + off, std::min<size_t>(5, stuffed.size() - off), c);
  d.flush(c);
  check_tracks(c.frames, s);
  CHECK(c.errors.empty());
}

TEST_CASE("PS: PES that split AUs anywhere (a foreign muxer): AUs found from the elementary stream") {
  std::mt19937 rng(7);
  Stream s = make_stream(JN_CODEC_H264, 0, 40, 10, rng, 9000);
  // One ES; PES of 2000 bytes, each with the PTS of the first AU that starts in it (2.4.3.7).
  std::vector<uint8_t> es;
  std::vector<std::pair<size_t, int64_t>> starts;
  for (auto& f : s.frames) {
    starts.emplace_back(es.size(), f.meta.pts);
    es.insert(es.end(), f.data.begin(), f.data.end());
  }
  std::vector<uint8_t> ps;
  PsMuxer pack_writer(PsMuxerConfig{JN_CODEC_H264, JN_CODEC_NONE});
  size_t k = 0;
  for (size_t off = 0; off < es.size(); off += 2000) {
    size_t n = std::min<size_t>(2000, es.size() - off);
    while (k < starts.size() && starts[k].first < off) ++k;
    bool has_pts = k < starts.size() && starts[k].first < off + n;
    std::vector<uint8_t> pes = {0, 0, 1, 0xBA, 0x44, 0, 4, 0, 4, 1, 0, 0, 3, 0xF8, 0, 0, 1, 0xE0};
    size_t hl = has_pts ? 5 : 0;
    pes.push_back(static_cast<uint8_t>((3 + hl + n) >> 8));
    pes.push_back(static_cast<uint8_t>(3 + hl + n));
    pes.push_back(0x80);
    pes.push_back(has_pts ? 0x80 : 0x00);
    pes.push_back(static_cast<uint8_t>(hl));
    if (has_pts) {
      uint64_t t = static_cast<uint64_t>(starts[k].second);
      pes.push_back(static_cast<uint8_t>(0x21 | ((t >> 29) & 0x0E)));
      pes.push_back(static_cast<uint8_t>(t >> 22));
      pes.push_back(static_cast<uint8_t>((t >> 14) | 1));
      pes.push_back(static_cast<uint8_t>(t >> 7));
      pes.push_back(static_cast<uint8_t>((t << 1) | 1));
    }
    pes.insert(pes.end(), es.begin() + off, es.begin() + off + n);
    ps.insert(ps.end(), pes.begin(), pes.end());
  }
  PsDemuxer d;
  Collect c;
  d.feed(ps.data(), ps.size(), c);
  d.flush(c);
  CHECK(c.errors.empty());
  REQUIRE(c.frames.size() == s.frames.size());
  for (size_t i = 0; i < c.frames.size(); ++i) {
    CHECK(c.frames[i].data == s.frames[i].data);
    CHECK((c.frames[i].meta.frame_flags & JN_MF_KEY) == (s.frames[i].meta.frame_flags & JN_MF_KEY));
  }
  // AUs starting in a PES with a PTS carry it exactly; the rest are extrapolated by 3600.
  for (size_t i = 0; i < c.frames.size(); ++i) CHECK(c.frames[i].meta.pts == s.frames[i].meta.pts);
}

TEST_CASE("PS: a keyframe without parameter sets gets the last ones; 3-byte start codes become 4-byte") {
  std::mt19937 rng(8);
  OwnedFrame k1 = h264_frame(true, 500, 90000, rng);
  OwnedFrame p1 = h264_frame(false, 300, 93600, rng);
  // A second IDR without SPS/PPS, NAL units behind 3-byte start codes.
  OwnedFrame k2;
  k2.data = {0, 0, 1, 0x65, 0x88};
  fill_nal_body(k2.data, 400, rng);
  k2.data.insert(k2.data.end(), {0, 0, 1, 0x65, 0x48});
  fill_nal_body(k2.data, 100, rng);
  k2.meta = k1.meta;
  k2.meta.pts = k2.meta.dts = 97200;
  k2.meta.frame_flags = JN_MF_KEY;
  Stream s{{k1, p1, k2}};
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_NONE});
  PsDemuxer d;
  Collect c;
  d.feed(ps.data(), ps.size(), c);
  d.flush(c);
  REQUIRE(c.frames.size() == 3);
  CHECK(c.frames[0].data == k1.data);
  CHECK(c.frames[1].data == p1.data);
  // Expected: k1's SPS + PPS, then k2's NAL units with 4-byte start codes.
  std::vector<uint8_t> want;
  size_t idr = 0;
  for (size_t i = 0; i + 4 < k1.data.size(); ++i)
    if (k1.data[i] == 0 && k1.data[i + 1] == 0 && k1.data[i + 2] == 0 && k1.data[i + 3] == 1 && (k1.data[i + 4] & 0x1f) == 5) {
      idr = i;
      break;
    }
  want.assign(k1.data.begin(), k1.data.begin() + idr);
  for (size_t i = 0; i < k2.data.size(); ++i) {
    if (i + 2 < k2.data.size() && k2.data[i] == 0 && k2.data[i + 1] == 0 && k2.data[i + 2] == 1) {
      want.insert(want.end(), {0, 0, 0, 1});
      i += 2;
    } else {
      want.push_back(k2.data[i]);
    }
  }
  CHECK(c.frames[2].data == want);
  CHECK(c.frames[2].meta.frame_flags == (JN_MF_KEY | JN_MF_CONFIG));
}

TEST_CASE("PS: AAC (ADTS in PES) <-> raw access units + AudioSpecificConfig") {
  std::mt19937 rng(9);
  PsMuxer mux(PsMuxerConfig{JN_CODEC_NONE, JN_CODEC_AAC});
  OwnedFrame cfg;
  cfg.data = {0x12, 0x10};  // AAC LC, 44.1 kHz, stereo
  cfg.meta.codec = JN_CODEC_AAC;
  cfg.meta.clock_rate = 44100;
  cfg.meta.kind = JN_MEDIA_AUDIO;
  cfg.meta.frame_flags = JN_MF_CONFIG;
  cfg.meta.track = 1;
  cfg.meta.pts = cfg.meta.dts = 44100;
  std::span<const uint8_t> out;
  OwnedFrame raw = cfg;
  raw.meta.frame_flags = 0;
  raw.data = {1, 2, 3};
  CHECK_FALSE(mux.mux(raw.view(), &out));  // no config yet
  REQUIRE(mux.mux(cfg.view(), &out));
  CHECK(out.empty());
  std::vector<OwnedFrame> frames;
  std::vector<uint8_t> ps;
  for (int i = 0; i < 20; ++i) {
    OwnedFrame f = raw;
    f.data.clear();
    for (size_t j = 0, n = 100 + rng() % 400; j < n; ++j) f.data.push_back(static_cast<uint8_t>(rng()));
    f.meta.pts = f.meta.dts = 44100 + 1024 * i;
    REQUIRE(mux.mux(f.view(), &out));
    ps.insert(ps.end(), out.begin(), out.end());
    frames.push_back(f);
  }
  PsDemuxer d;
  Collect c;
  for (size_t off = 0; off < ps.size(); off += 13) d.feed(ps.data() + off, std::min<size_t>(13, ps.size() - off), c);
  d.flush(c);
  REQUIRE(c.frames.size() == 21);
  CHECK(c.frames[0].data == cfg.data);
  CHECK(c.frames[0].meta.frame_flags == (JN_MF_CONFIG | JN_MF_DISCONT));
  CHECK(c.frames[0].meta.clock_rate == 44100);
  for (int i = 0; i < 20; ++i) {
    CHECK(c.frames[i + 1].data == frames[i].data);
    CHECK(c.frames[i + 1].meta.pts == frames[i].meta.pts);
    CHECK(c.frames[i + 1].meta.codec == JN_CODEC_AAC);
  }
}

TEST_CASE("PS: the muxer splits PES at 65535 bytes and writes PSM on keyframes and periodically") {
  std::mt19937 rng(10);
  OwnedFrame k = h264_frame(true, 200000, 90000, rng);
  PsMuxer mux(PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA});
  std::span<const uint8_t> out;
  REQUIRE(mux.mux(k.view(), &out));
  std::vector<uint8_t> ps(out.begin(), out.end());
  size_t pes = 0, psm = 0;
  for (size_t i = 0; i + 6 <= ps.size();) {
    REQUIRE((ps[i] == 0 && ps[i + 1] == 0 && ps[i + 2] == 1));
    size_t len = ps[i + 3] == 0xBA ? 14 : 6 + ((ps[i + 4] << 8) | ps[i + 5]);
    if (ps[i + 3] == 0xE0) {
      ++pes;
      CHECK(len - 6 <= 65535);
    }
    if (ps[i + 3] == 0xBC) ++psm;
    i += len;
  }
  CHECK(pes == 4);  // 200k + headers over 65522-byte PES payloads
  CHECK(psm == 1);
  // Audio only (GB talk): a PSM in the first pack, then again after psm_interval.
  PsMuxer talk(PsMuxerConfig{JN_CODEC_NONE, JN_CODEC_PCMA, 90000});
  int with_psm = 0;
  for (int i = 0; i < 100; ++i) {  // 2 s of 20 ms frames
    OwnedFrame a = g711_frame(JN_CODEC_PCMA, 160 * i, rng);
    REQUIRE(talk.mux(a.view(), &out));
    bool has = false;
    for (size_t j = 0; j + 4 <= out.size(); ++j)
      if (out[j] == 0 && out[j + 1] == 0 && out[j + 2] == 1 && out[j + 3] == 0xBC) has = true;
    with_psm += has;
  }
  CHECK(with_psm == 2);
  // Video + audio, 4 s, keyframe every 2 s: a PSM with each keyframe and once a second, not with
  // the audio frames that run a little behind a keyframe.
  Stream av = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 100, 50, rng, 2000);
  for (auto& f : av.frames)
    if (f.meta.kind == JN_MEDIA_AUDIO) f.meta.pts = f.meta.dts = f.meta.pts - 240;  // 30 ms behind the video
  auto avps = mux_all(av, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA});
  size_t psms = 0;
  for (size_t j = 0; j + 4 <= avps.size(); ++j)
    if (avps[j] == 0 && avps[j + 1] == 0 && avps[j + 2] == 1 && avps[j + 3] == 0xBC) ++psms;
  CHECK(psms >= 4);
  CHECK(psms <= 6);
  // A frame of a codec it was not configured for is refused with a reason.
  OwnedFrame h5 = h265_frame(false, 10, 0, rng);
  CHECK_FALSE(mux.mux(h5.view(), &out));
  CHECK(std::string(mux.error()).find("codec") != std::string::npos);
}

TEST_CASE("PS: an access unit over the cap is dropped, the next carries DISCONT and seq skips") {
  std::mt19937 rng(11);
  Stream s = make_stream(JN_CODEC_H264, 0, 6, 3, rng, 20000);
  s.frames[3] = h264_frame(true, 80000, s.frames[3].meta.pts, rng);  // too large for the cap below
  s.frames[3].meta.seq = 3;
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_NONE});
  PsDemuxerConfig cfg;
  cfg.max_video_frame = 50000;
  PsDemuxer d(cfg);
  Collect c;
  d.feed(ps.data(), ps.size(), c);
  d.flush(c);
  CHECK(c.saw(PsError::FrameTooLarge));
  REQUIRE(c.frames.size() == 5);
  CHECK(c.frames[3].data == s.frames[4].data);
  CHECK((c.frames[3].meta.frame_flags & JN_MF_DISCONT) != 0);
  CHECK(c.frames[3].meta.seq == 4);  // 3 was dropped: the consumer sees the gap
}

TEST_CASE("PS: malformed headers are reported, resynchronised at the next pack, never emitted") {
  std::mt19937 rng(12);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 20, 5, rng, 5000);
  std::vector<size_t> bounds;
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA}, &bounds);
  struct Case {
    const char* name;
    PsError error;
    void (*damage)(std::vector<uint8_t>&, size_t at);
  };
  Case cases[] = {
      {"PES flags '01'", PsError::BadPesHeader, [](std::vector<uint8_t>& b, size_t at) { b[at + 14 + 7] = 0x40; }},
      {"pack marker", PsError::BadPackHeader, [](std::vector<uint8_t>& b, size_t at) { b[at + 4] &= ~0x04; }},
      {"start code", PsError::BadStartCode, [](std::vector<uint8_t>& b, size_t at) { b[at + 14 + 2] = 0x02; }},
  };
  for (auto& cs : cases) {
    CAPTURE(cs.name);
    // Damage frame 7's pack (an audio or video frame): frames before it and from the next
    // keyframe on are exact, nothing in between is emitted damaged.
    auto bad = ps;
    size_t at = bounds[6];
    cs.damage(bad, at);
    PsDemuxer d;
    Collect c;
    d.feed(bad.data(), bad.size(), c);
    d.flush(c);
    CHECK(c.saw(cs.error));
    CHECK(d.stats().resyncs >= 1);
    for (auto& f : c.frames) {
      bool found = false;
      for (auto& w : s.frames)
        if (w.meta.kind == f.meta.kind && w.meta.pts == f.meta.pts) found = w.data == f.data;
      CHECK(found);
    }
    CHECK(c.frames.size() < s.frames.size());
    CHECK(c.frames.size() > s.frames.size() / 2);
  }
}

TEST_CASE("PS: input that ends inside a PES never yields its half frame; flush after a whole pack does") {
  std::mt19937 rng(13);
  Stream s = make_stream(JN_CODEC_H264, 0, 4, 4, rng, 8000);
  std::vector<size_t> bounds;
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_NONE}, &bounds);
  {
    PsDemuxer d;
    Collect c;
    d.feed(ps.data(), ps.size() - 100, c);  // the last frame's PES lacks 100 bytes
    d.flush(c);
    REQUIRE(c.frames.size() == 3);
    for (size_t i = 0; i < 3; ++i) CHECK(c.frames[i].data == s.frames[i].data);
    CHECK(d.stats().dropped_frames == 1);
  }
  {
    PsDemuxer d;
    Collect c;
    d.feed(ps.data(), ps.size(), c);
    d.flush(c);
    CHECK(c.frames.size() == 4);
    // reset(): a new source on the same demuxer starts over with DISCONT, seq continuing.
    d.reset();
    Collect c2;
    d.feed(ps.data(), ps.size(), c2);
    d.flush(c2);
    REQUIRE(c2.frames.size() == 4);
    CHECK((c2.frames[0].meta.frame_flags & JN_MF_DISCONT) != 0);
    CHECK(c2.frames[0].data == s.frames[0].data);
    CHECK(c2.frames[0].meta.seq == 4);
  }
}

TEST_CASE("PS: system headers, padding, private streams and a second video stream are skipped") {
  std::mt19937 rng(14);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 10, 5, rng, 3000);
  std::vector<size_t> bounds;
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA}, &bounds);
  std::vector<uint8_t> mixed;
  size_t prev = 0;
  for (size_t b : bounds) {
    mixed.insert(mixed.end(), ps.begin() + prev, ps.begin() + b);
    prev = b;
    // After each pack: padding (0xBE), private stream 1 (0xBD) and a PES of video stream 0xE1.
    mixed.insert(mixed.end(), {0, 0, 1, 0xBE, 0, 4, 0xFF, 0xFF, 0xFF, 0xFF});
    mixed.insert(mixed.end(), {0, 0, 1, 0xBD, 0, 5, 0x80, 0x00, 0x00, 0x0B, 0x77});
    mixed.insert(mixed.end(), {0, 0, 1, 0xE1, 0, 8, 0x80, 0x00, 0x00, 0, 0, 0, 1, 0x65});
  }
  mixed.insert(mixed.end(), {0, 0, 1, 0xB9});  // MPEG_program_end_code
  PsDemuxer d;
  Collect c;
  d.feed(mixed.data(), mixed.size(), c);
  d.flush(c);
  CHECK(c.errors.empty());
  check_tracks(c.frames, s);
}

TEST_CASE("PS: an oversized audio PES cut by a loss does not cost the audio after the resync") {
  std::mt19937 rng(15);
  Stream s = make_stream(JN_CODEC_NONE, 0, 0, 1, rng);
  for (int i = 0; i < 10; ++i) s.frames.push_back(g711_frame(JN_CODEC_PCMA, 8000 + 160 * i, rng, i == 3 ? 400 : 160));
  for (uint32_t i = 0; i < 10; ++i) s.frames[i].meta.seq = i, s.frames[i].meta.track = 1;
  std::vector<size_t> bounds;
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_NONE, JN_CODEC_PCMA}, &bounds);
  PsDemuxerConfig cfg;
  cfg.max_audio_frame = 300;
  PsDemuxer d(cfg);
  Collect c;
  size_t cut = bounds[2] + 100;  // inside frame 3's PES, past the cap
  REQUIRE(cut < bounds[3]);
  d.feed(ps.data(), bounds[2] + 350, c);  // frame 3 overflowed...
  d.mark_loss(c);                          // ...and the rest of its PES is lost
  d.feed(ps.data() + bounds[3], ps.size() - bounds[3], c);
  d.flush(c);
  CHECK(c.saw(PsError::FrameTooLarge));
  REQUIRE(c.frames.size() == 9);
  for (size_t i = 0; i < 9; ++i) CHECK(c.frames[i].data == s.frames[i < 3 ? i : i + 1].data);
  CHECK((c.frames[3].meta.frame_flags & JN_MF_DISCONT) != 0);
}

TEST_CASE("PS: frame_end (the RTP marker) after each frame's PS bytes: every frame out at once, byte-exact") {
  std::mt19937 rng(60);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 12, 4, rng);
  std::vector<size_t> bounds;
  auto ps = mux_all(s, PsMuxerConfig{JN_CODEC_H264, JN_CODEC_PCMA}, &bounds);
  PsDemuxer d;
  Collect c;
  size_t off = 0;
  for (size_t i = 0; i < s.frames.size(); ++i) {
    d.feed(ps.data() + off, bounds[i] - off, c);
    d.frame_end(c);
    off = bounds[i];
    CHECK(c.frames.size() == i + 1);  // this frame, now
  }
  CHECK(d.marker_mode() == MarkerMode::Trusted);
  check_tracks(c.frames, s);
}

TEST_CASE("PS: a marker after each slice's PES (inside an AU): one AU goes out short and flagged, then the old rule") {
  std::mt19937 rng(61);
  Stream s = make_stream(JN_CODEC_H264, 0, 8, 4, rng, 3000);
  // Frame 1 (two slices, i % 3 == 1): its second slice in a PES (and pack) of its own, each marked.
  OwnedFrame& two = s.frames[1];
  size_t second = 0;
  for (size_t i = 4; i + 4 < two.data.size(); ++i)
    if (two.data[i] == 0 && two.data[i + 1] == 0 && two.data[i + 2] == 0 && two.data[i + 3] == 1) second = i;
  REQUIRE(second > 0);
  PsMuxer mux(PsMuxerConfig{JN_CODEC_H264, 0});
  PsDemuxer d;
  Collect c;
  auto feed = [&](const OwnedFrame& f, size_t from, size_t to) {
    FrameView v{f.data.data() + from, to - from, f.meta};
    std::span<const uint8_t> out;
    REQUIRE(mux.mux(v, &out));
    d.feed(out.data(), out.size(), c);
    d.frame_end(c);
  };
  for (size_t i = 0; i < s.frames.size(); ++i) {
    if (i == 1) {
      feed(two, 0, second);
      feed(two, second, two.data.size());
    } else {
      feed(s.frames[i], 0, s.frames[i].data.size());
    }
  }
  d.flush(c);
  CHECK(d.marker_mode() == MarkerMode::Ignored);
  CHECK(d.stats().marker_mismatches == 1);
  CHECK(d.stats().dropped_frames == 1);
  REQUIRE(c.frames.size() == s.frames.size());
  CHECK(c.frames[0].data == s.frames[0].data);
  CHECK(c.frames[1].data != s.frames[1].data);  // the first slice only: out before the lie showed
  CHECK(c.frames[1].data.size() == second);
  // The frame after it shows the gap (DISCONT, seq skips one); the rest are whole.
  CHECK((c.frames[2].meta.frame_flags & JN_MF_DISCONT) != 0);
  CHECK(c.frames[2].meta.seq == 3);
  for (size_t i = 2; i < c.frames.size(); ++i) CHECK(c.frames[i].data == s.frames[i].data);
}

TEST_CASE("PS: a marker right after a start code (the NAL unit still to come) is refused before anything goes out") {
  std::mt19937 rng(61);
  Stream s = make_stream(JN_CODEC_H264, 0, 8, 4, rng, 3000);
  OwnedFrame& two = s.frames[1];
  size_t second = 0;
  for (size_t i = 4; i + 4 < two.data.size(); ++i)
    if (two.data[i] == 0 && two.data[i + 1] == 0 && two.data[i + 2] == 0 && two.data[i + 3] == 1) second = i;
  REQUIRE(second > 0);
  for (size_t cut : {second + 4, second + 5}) {  // after the start code; after one byte of the NAL header
    CAPTURE(cut);
    PsMuxer mux(PsMuxerConfig{JN_CODEC_H264, 0});
    PsDemuxer d;
    Collect c;
    auto feed = [&](const OwnedFrame& f, size_t from, size_t to) {
      FrameView v{f.data.data() + from, to - from, f.meta};
      std::span<const uint8_t> out;
      REQUIRE(mux.mux(v, &out));
      d.feed(out.data(), out.size(), c);
      d.frame_end(c);
    };
    for (size_t i = 0; i < s.frames.size(); ++i) {
      if (i == 1) {
        feed(two, 0, cut);
        feed(two, cut, two.data.size());
      } else {
        feed(s.frames[i], 0, s.frames[i].data.size());
      }
    }
    d.flush(c);
    CHECK(d.marker_mode() == MarkerMode::Ignored);
    CHECK(d.stats().marker_mismatches == 1);
    CHECK(d.stats().dropped_frames == 0);
    REQUIRE(c.frames.size() == s.frames.size());
    for (size_t i = 0; i < c.frames.size(); ++i) CHECK(c.frames[i].data == s.frames[i].data);
  }
}

// Property test of the marker and reload paths (also what the ASan build runs over them): random
// chunking, markers at the frame ends (and, when damaged, anywhere), save/restore into a new
// demuxer at random points. Clean input: the frames come out byte-exact. Damaged input: only
// well-formed frames, seq strictly increasing per track. Damaged blobs (never seen in a real
// reload: the state goes from one instance to the next in one process): nothing crashes.
TEST_CASE("PS: random markers and save/restore points over clean and damaged streams") {
  std::mt19937 rng(70);
  for (int iter = 0; iter < 120; ++iter) {
    CAPTURE(iter);
    bool damaged = iter % 3 == 2;
    bool bad_blobs = iter % 6 == 5;
    uint32_t vcodec = iter % 2 ? JN_CODEC_H265 : JN_CODEC_H264;
    uint32_t acodec = iter % 4 < 2 ? JN_CODEC_PCMA : JN_CODEC_AAC;
    Stream s = make_stream(vcodec, acodec == JN_CODEC_AAC ? 0 : acodec, 10, 4, rng, 8000);
    std::vector<size_t> bounds;
    auto ps = mux_all(s, PsMuxerConfig{vcodec, acodec == JN_CODEC_AAC ? 0u : acodec}, &bounds);
    if (damaged)
      for (int k = 0; k < 4; ++k) ps[rng() % ps.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    auto d = std::make_unique<PsDemuxer>();
    Collect c;
    size_t off = 0, b = 0;
    while (off < ps.size()) {
      size_t len = std::min<size_t>(ps.size() - off, 1 + rng() % 3000);
      if (b < bounds.size() && off + len > bounds[b]) len = bounds[b] - off;  // stop at the frame end
      d->feed(ps.data() + off, len, c);
      off += len;
      bool at_end = b < bounds.size() && off == bounds[b];
      if (at_end) ++b;
      if (at_end || (damaged && rng() % 7 == 0)) d->frame_end(c);
      if (rng() % 5 == 0) {
        std::vector<uint8_t> blob;
        d->save(blob);
        if (bad_blobs && rng() % 4 == 0 && !blob.empty()) blob[rng() % blob.size()] ^= 0x5A;
        auto next = std::make_unique<PsDemuxer>();
        bool ok = next->restore(blob.data(), blob.size());
        if (!damaged) REQUIRE(ok);
        d = std::move(next);
      }
    }
    d->flush(c);
    if (bad_blobs) continue;
    uint32_t last[2] = {0, 0};
    bool seen[2] = {false, false};
    for (auto& f : c.frames) {
      int t = f.meta.kind == JN_MEDIA_VIDEO ? 0 : 1;
      if (seen[t]) CHECK(f.meta.seq > last[t]);
      seen[t] = true, last[t] = f.meta.seq;
      if (t == 0) {
        REQUIRE(f.data.size() >= 5);
        CHECK((f.data[0] == 0 && f.data[1] == 0 && f.data[2] == 0 && f.data[3] == 1));
      }
    }
    if (!damaged) {
      CHECK(d->marker_mode() == MarkerMode::Trusted);
      CHECK(d->stats().marker_frames == 10);
      check_tracks(c.frames, s);
    }
  }
}
