// sdk/rtmp FLV reader: the frames read from an FLV that ffmpeg wrote are byte for byte what
// ffmpeg itself extracts from it (tests/unit/data/flv/make.sh: the H.264 elementary stream as
// NAL units, the raw A-law), whatever the pieces the bytes arrive in; timestamps and flags as
// ffprobe shows them; a muxer (flv.hpp) round trip; every malformed input fails the reader once
// with its reason and reads nothing more.
#include <doctest/doctest.h>

#include <junction/media/annexb.hpp>
#include <junction/rtmp/flv.hpp>
#include <junction/rtmp/flv_reader.hpp>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace junction;
using namespace junction::rtmp;

namespace {

std::vector<uint8_t> load(const char* name) {
  std::ifstream f(std::string(JN_FLV_TEST_DATA) + "/" + name, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "missing test data ", name);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct Frame {
  std::vector<uint8_t> bytes;
  jn_media_meta meta;
};

struct Collect {
  std::vector<Frame> video, audio;
  std::vector<std::pair<int, std::string>> errors;
  void on_frame(const media::FrameView& f) {
    (f.meta.kind == JN_MEDIA_VIDEO ? video : audio).push_back({{f.data, f.data + f.size}, f.meta});
  }
  void on_error(flv::ReadError e, const char* d) { errors.emplace_back(static_cast<int>(e), d); }
};

std::vector<std::vector<uint8_t>> nal_units(const uint8_t* p, size_t n) {
  std::vector<std::vector<uint8_t>> out;
  media::annexb::for_each_nal(p, n, [&](const uint8_t* nal, size_t len) {
    out.emplace_back(nal, nal + len);
    return true;
  });
  return out;
}

// An FLV with the given tags, built with the muxer.
std::vector<uint8_t> flv_of(const std::vector<std::pair<flv::TagType, std::vector<uint8_t>>>& tags) {
  std::vector<uint8_t> out;
  flv::file_header(true, true, out);
  uint32_t ts = 0;
  for (auto& [type, body] : tags) flv::file_tag(type, ts += 20, body, out);
  return out;
}

const std::vector<uint8_t> kSps = {0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x01, 0x41, 0xFB, 0x01, 0x10, 0x00,
                                   0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xC0, 0xF1, 0x62, 0xE4, 0x80};
const std::vector<uint8_t> kPps = {0x68, 0xCB, 0x83, 0xCB, 0x20};

}  // namespace

TEST_CASE("flv reader: ffmpeg's FLV reads back as ffmpeg's own H.264 and A-law, in any pieces") {
  auto file = load("screen.flv");
  auto es = load("screen.h264");
  auto want_all = nal_units(es.data(), es.size());
  auto want_audio = load("screen.alaw");
  // ffmpeg's h264_mp4toannexb puts the parameter sets just before the IDR (after the SEI); the
  // reader puts them first in the frame. Both are Annex B: compare the other NAL units in order
  // and the parameter sets by value.
  std::vector<std::vector<uint8_t>> want_video, want_sps, want_pps;
  for (auto& n : want_all) {
    uint8_t t = n[0] & 0x1f;
    (t == 7 ? want_sps : t == 8 ? want_pps : want_video).push_back(n);
  }
  REQUIRE(want_video.size() >= 10);
  REQUIRE(want_sps.size() == 2);  // one per GOP
  REQUIRE(want_pps.size() == 2);

  for (size_t piece : {file.size(), size_t{1}, size_t{7}, size_t{4096}}) {
    CAPTURE(piece);
    flv::Reader r;
    Collect c;
    for (size_t i = 0; i < file.size(); i += piece)
      REQUIRE(r.feed(file.data() + i, std::min(piece, file.size() - i), c));
    CHECK(c.errors.empty());
    CHECK(r.buffered() == 0);
    CHECK(r.has_video_config());
    REQUIRE(c.video.size() == 18 - 8);  // ffprobe: 10 video packets, 8 audio packets
    REQUIRE(c.audio.size() == 8);

    std::vector<std::vector<uint8_t>> got_video;
    for (auto& f : c.video) {
      auto nals = nal_units(f.bytes.data(), f.bytes.size());
      for (auto& n : nals)
        if ((n[0] & 0x1f) != 7 && (n[0] & 0x1f) != 8) got_video.push_back(n);
      CHECK(f.meta.codec == JN_CODEC_H264);
      CHECK(f.meta.clock_rate == 90000);
      bool idr = false;
      for (auto& n : nals) idr |= (n[0] & 0x1f) == 5;
      CHECK(((f.meta.frame_flags & JN_MF_KEY) != 0) == idr);
      if (idr) {  // the parameter sets lead a keyframe (media_frame.h)
        CHECK((f.meta.frame_flags & JN_MF_CONFIG) != 0);
        CHECK(nals[0] == want_sps[0]);
        CHECK(nals[1] == want_pps[0]);
      }
    }
    CHECK(got_video == want_video);
    CHECK(c.video[0].bytes.size() > 1000);  // the IDR, not an empty frame

    std::vector<uint8_t> got_audio;
    for (auto& f : c.audio) {
      got_audio.insert(got_audio.end(), f.bytes.begin(), f.bytes.end());
      CHECK(f.meta.codec == JN_CODEC_PCMA);
      CHECK(f.meta.clock_rate == 8000);
      CHECK(f.meta.pts == f.meta.dts);
    }
    CHECK(got_audio == want_audio);

    // ffprobe's packets: video dts 0 pts 200 (B-frames: composition time 200 ms), then dts 100
    // pts 500; audio from 200 ms, 1024 samples (128 ms) a packet.
    CHECK(c.video[0].meta.dts == 0);
    CHECK(c.video[0].meta.pts == 200 * 90);
    CHECK(c.video[1].meta.dts == 100 * 90);
    CHECK(c.video[1].meta.pts == 500 * 90);
    CHECK(c.audio[0].meta.pts == 200 * 8);
    CHECK(c.audio[1].meta.pts == 328 * 8);
    for (size_t i = 0; i < c.video.size(); ++i) CHECK(c.video[i].meta.seq == i);
    for (size_t i = 0; i < c.audio.size(); ++i) CHECK(c.audio[i].meta.seq == i);
  }
}

TEST_CASE("flv reader: muxer round trip (Annex B with both start code lengths, AAC config and frames)") {
  std::vector<uint8_t> seq, au, aac_cfg, aac;
  const char* err = nullptr;
  REQUIRE(flv::avc_sequence_header(kSps, kPps, seq, &err));
  std::vector<uint8_t> annexb = {0, 0, 0, 1, 0x65, 0x88, 0x84, 0, 0, 1, 0x65, 0x11, 0x22};
  REQUIRE(flv::avc_nalu(annexb.data(), annexb.size(), true, -40, au, &err));
  const std::vector<uint8_t> asc = {0x12, 0x10};  // AAC LC, 44100 Hz, mono
  REQUIRE(flv::aac_sequence_header(asc, aac_cfg, &err));
  const uint8_t raw[] = {0x21, 0x10, 0x05};
  REQUIRE(flv::audio_frame(JN_CODEC_AAC, raw, sizeof raw, aac, &err));
  auto file = flv_of({{flv::kVideo, seq}, {flv::kVideo, au}, {flv::kAudio, aac_cfg}, {flv::kAudio, aac}});

  flv::Reader r;
  Collect c;
  REQUIRE(r.feed(file.data(), file.size(), c));
  REQUIRE(c.video.size() == 1);
  std::vector<uint8_t> want = {0, 0, 0, 1};
  want.insert(want.end(), kSps.begin(), kSps.end());
  want.insert(want.end(), {0, 0, 0, 1});
  want.insert(want.end(), kPps.begin(), kPps.end());
  want.insert(want.end(), {0, 0, 0, 1, 0x65, 0x88, 0x84, 0, 0, 0, 1, 0x65, 0x11, 0x22});
  CHECK(c.video[0].bytes == want);
  CHECK(c.video[0].meta.dts == 40 * 90);
  CHECK(c.video[0].meta.pts == 0);  // cts -40 ms
  REQUIRE(c.audio.size() == 2);
  CHECK(c.audio[0].bytes == asc);
  CHECK(c.audio[0].meta.frame_flags == JN_MF_CONFIG);
  CHECK(c.audio[0].meta.clock_rate == 44100);
  CHECK(c.audio[1].bytes == std::vector<uint8_t>(raw, raw + 3));
  CHECK(c.audio[1].meta.codec == JN_CODEC_AAC);
  CHECK(c.audio[1].meta.pts == 80 * 44100 / 1000);
  CHECK(r.audio_codec() == JN_CODEC_AAC);
}

TEST_CASE("flv reader: malformed input fails once with its reason, nothing read after") {
  std::vector<uint8_t> seq, au;
  const char* err = nullptr;
  REQUIRE(flv::avc_sequence_header(kSps, kPps, seq, &err));
  std::vector<uint8_t> annexb = {0, 0, 0, 1, 0x65, 0x88, 0x84};
  REQUIRE(flv::avc_nalu(annexb.data(), annexb.size(), true, 0, au, &err));
  const uint8_t pcma[] = {0xD5, 0xD5};
  std::vector<uint8_t> audio;
  REQUIRE(flv::audio_frame(JN_CODEC_PCMA, pcma, 2, audio, &err));

  auto expect_fail = [](std::vector<uint8_t> file, flv::ReadError want, size_t video_before) {
    flv::Reader r;
    Collect c;
    CHECK_FALSE(r.feed(file.data(), file.size(), c));
    CHECK(r.error() == want);
    REQUIRE(c.errors.size() == 1);
    CHECK(c.errors[0].first == static_cast<int>(want));
    CHECK(c.video.size() == video_before);
    // Once failed, nothing more is read, even a good tag.
    CHECK_FALSE(r.feed(file.data(), file.size(), c));
    CHECK(c.errors.size() == 1);
    CHECK(c.video.size() == video_before);
  };

  SUBCASE("not FLV") { expect_fail({'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P'}, flv::ReadError::kBadHeader, 0); }
  SUBCASE("a NAL length past its tag") {
    auto bad = au;
    bad[5 + 3] = 0x40;  // the first NAL length: 64 bytes in a tag that has 3
    expect_fail(flv_of({{flv::kVideo, seq}, {flv::kVideo, au}, {flv::kVideo, bad}}), flv::ReadError::kBadNalu, 1);
  }
  SUBCASE("a PreviousTagSize that does not match") {
    auto file = flv_of({{flv::kVideo, seq}, {flv::kVideo, au}, {flv::kVideo, au}});
    file[13 + (11 + seq.size() + 4) + 11 + au.size() + 3] ^= 1;  // the second tag's PreviousTagSize
    expect_fail(file, flv::ReadError::kBadPrevTagSize, 0);
  }
  SUBCASE("a decoder config with its SPS cut short") {
    auto bad = seq;
    bad[5 + 6] = 0x7f;  // SPS length past the record
    expect_fail(flv_of({{flv::kVideo, bad}, {flv::kVideo, au}}), flv::ReadError::kBadAvcConfig, 0);
  }
  SUBCASE("an unknown tag type") { expect_fail(flv_of({{flv::TagType(7), audio}}), flv::ReadError::kBadTag, 0); }
  SUBCASE("a tag over max_tag_bytes, before its body arrives") {
    std::vector<uint8_t> file;
    flv::file_header(true, true, file);
    file.insert(file.end(), {9, 0x7f, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0});  // 8 MiB video tag header only
    expect_fail(file, flv::ReadError::kTagTooLarge, 0);
  }
}

TEST_CASE("flv reader: an unsupported audio codec skips audio (reported once), video goes on") {
  std::vector<uint8_t> seq, au;
  const char* err = nullptr;
  REQUIRE(flv::avc_sequence_header(kSps, kPps, seq, &err));
  std::vector<uint8_t> annexb = {0, 0, 0, 1, 0x41, 0x9a, 0x02};
  REQUIRE(flv::avc_nalu(annexb.data(), annexb.size(), false, 0, au, &err));
  std::vector<uint8_t> mp3 = {0x2F, 0xFF, 0xFB, 0x90};  // SoundFormat 2 (MP3)
  flv::Reader r;
  Collect c;
  auto file = flv_of({{flv::kAudio, mp3}, {flv::kVideo, seq}, {flv::kAudio, mp3}, {flv::kVideo, au}});
  REQUIRE(r.feed(file.data(), file.size(), c));
  CHECK(c.audio.empty());
  REQUIRE(c.video.size() == 1);
  CHECK(c.video[0].meta.frame_flags == 0);  // not an IDR: no parameter sets prepended
  CHECK(c.video[0].bytes == annexb);
  REQUIRE(c.errors.size() == 1);
  CHECK(c.errors[0].first == static_cast<int>(flv::ReadError::kUnsupportedCodec));
}

TEST_CASE("flv reader: a split tag is buffered once; the buffer stays bounded by the tag") {
  auto file = load("screen.flv");
  flv::ReaderConfig cfg;
  cfg.max_tag_bytes = 1500;  // under the first keyframe (1639 bytes)
  flv::Reader r(cfg);
  Collect c;
  for (size_t i = 0; i < file.size(); ++i) {
    if (!r.feed(file.data() + i, 1, c)) break;
    CHECK(r.buffered() <= 11 + cfg.max_tag_bytes + 4);
  }
  CHECK(r.error() == flv::ReadError::kTagTooLarge);
  CHECK(c.video.empty());
}
