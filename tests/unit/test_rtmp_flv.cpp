// sdk/rtmp FLV tags: the AVC sequence header checked byte for byte against a hand-built
// AVCDecoderConfigurationRecord, Annex B -> AVCC NALU tags (start codes of both lengths,
// parameter sets and AUDs left out, composition time signed 24-bit), G.711 and AAC audio tags,
// onMetaData as AMF0, FLV file framing.
#include <doctest/doctest.h>

#include <junction/rtmp/amf0.hpp>
#include <junction/rtmp/flv.hpp>

#include <vector>

using namespace junction::rtmp;

namespace {

// A real SPS/PPS pair (x264, baseline 3.0, 320x240).
const std::vector<uint8_t> kSps = {0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x01, 0x41, 0xFB, 0x01, 0x10, 0x00,
                                   0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xC0, 0xF1, 0x62, 0xE4, 0x80};
const std::vector<uint8_t> kPps = {0x68, 0xCB, 0x83, 0xCB, 0x20};

}  // namespace

TEST_CASE("flv: AVC sequence header equals the hand-built AVCDecoderConfigurationRecord") {
  std::vector<uint8_t> want = {
      0x17,              // FrameType 1 (key) | CodecID 7 (AVC)
      0x00,              // AVCPacketType 0: sequence header
      0x00, 0x00, 0x00,  // CompositionTime 0
      0x01,              // configurationVersion
      0x42,              // AVCProfileIndication (baseline) = SPS[1]
      0xC0,              // profile_compatibility = SPS[2]
      0x1E,              // AVCLevelIndication 3.0 = SPS[3]
      0xFF,              // 111111 + lengthSizeMinusOne 3
      0xE1,              // 111 + numOfSequenceParameterSets 1
      0x00, 0x18,        // sequenceParameterSetLength 24
  };
  want.insert(want.end(), kSps.begin(), kSps.end());
  want.insert(want.end(), {0x01, 0x00, 0x05});  // numOfPictureParameterSets 1, length 5
  want.insert(want.end(), kPps.begin(), kPps.end());
  std::vector<uint8_t> got;
  const char* err = nullptr;
  REQUIRE(flv::avc_sequence_header(kSps, kPps, got, &err));
  CHECK(got == want);
  // Appends: a second call leaves the first bytes alone.
  REQUIRE(flv::avc_sequence_header(kSps, kPps, got, &err));
  CHECK(got.size() == 2 * want.size());
}

TEST_CASE("flv: a too short SPS or a missing PPS is refused and nothing is appended") {
  std::vector<uint8_t> out = {9};
  const char* err = nullptr;
  CHECK_FALSE(flv::avc_sequence_header(std::vector<uint8_t>{0x67, 0x42}, kPps, out, &err));
  CHECK(err != nullptr);
  CHECK_FALSE(flv::avc_sequence_header(kSps, std::vector<uint8_t>{}, out, &err));
  CHECK(out == std::vector<uint8_t>{9});
}

TEST_CASE("flv: Annex B access unit -> AVCC NALU tag") {
  std::vector<uint8_t> au = {0, 0, 0, 1, 0x09, 0xF0};  // AUD: dropped
  au.insert(au.end(), {0, 0, 0, 1});
  au.insert(au.end(), kSps.begin(), kSps.end());  // SPS: dropped (sequence header)
  au.insert(au.end(), {0, 0, 1});
  au.insert(au.end(), kPps.begin(), kPps.end());  // PPS: dropped
  au.insert(au.end(), {0, 0, 1, 0x06, 0x05, 0x01, 0xAA, 0x80});  // SEI, 3-byte start code
  au.insert(au.end(), {0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x33});  // IDR slice
  std::vector<uint8_t> got;
  const char* err = nullptr;
  REQUIRE(flv::avc_nalu(au.data(), au.size(), true, 80, got, &err));
  std::vector<uint8_t> want = {0x17, 0x01, 0x00, 0x00, 0x50,                 // key, NALU, cts 80
                               0, 0, 0, 5, 0x06, 0x05, 0x01, 0xAA, 0x80,    // SEI
                               0, 0, 0, 5, 0x65, 0x88, 0x84, 0x00, 0x33};   // IDR
  CHECK(got == want);
  got.clear();
  std::vector<uint8_t> p = {0, 0, 1, 0x41, 0x9A, 0x02};
  REQUIRE(flv::avc_nalu(p.data(), p.size(), false, -40, got, &err));
  CHECK(got == std::vector<uint8_t>{0x27, 0x01, 0xFF, 0xFF, 0xD8, 0, 0, 0, 3, 0x41, 0x9A, 0x02});
  // Nothing left to send (parameter sets only), out of range cts: refused, nothing appended.
  got.clear();
  std::vector<uint8_t> ps = {0, 0, 0, 1};
  ps.insert(ps.end(), kSps.begin(), kSps.end());
  CHECK_FALSE(flv::avc_nalu(ps.data(), ps.size(), true, 0, got, &err));
  CHECK_FALSE(flv::avc_nalu(p.data(), p.size(), false, 1 << 23, got, &err));
  CHECK(got.empty());
  flv::avc_end_of_sequence(got);
  CHECK(got == std::vector<uint8_t>{0x17, 0x02, 0, 0, 0});
}

TEST_CASE("flv: audio tags for G.711 and AAC") {
  CHECK(flv::audio_header(JN_CODEC_PCMA) == 0x72);  // 7 << 4 | 16-bit | mono (as ffmpeg writes)
  CHECK(flv::audio_header(JN_CODEC_PCMU) == 0x82);
  CHECK(flv::audio_header(JN_CODEC_AAC) == 0xAF);
  CHECK(flv::audio_header(JN_CODEC_OPUS) == 0);
  std::vector<uint8_t> got;
  const char* err = nullptr;
  uint8_t alaw[3] = {0xD5, 0x55, 0xD5};
  REQUIRE(flv::audio_frame(JN_CODEC_PCMA, alaw, 3, got, &err));
  CHECK(got == std::vector<uint8_t>{0x72, 0xD5, 0x55, 0xD5});
  got.clear();
  uint8_t aac[2] = {0x21, 0x10};
  REQUIRE(flv::audio_frame(JN_CODEC_AAC, aac, 2, got, &err));
  CHECK(got == std::vector<uint8_t>{0xAF, 0x01, 0x21, 0x10});
  got.clear();
  REQUIRE(flv::aac_sequence_header(std::vector<uint8_t>{0x12, 0x10}, got, &err));  // AAC-LC 44.1k stereo
  CHECK(got == std::vector<uint8_t>{0xAF, 0x00, 0x12, 0x10});
  got.clear();
  CHECK_FALSE(flv::audio_frame(JN_CODEC_OPUS, aac, 2, got, &err));
  CHECK_FALSE(flv::audio_frame(JN_CODEC_PCMU, aac, 0, got, &err));
  CHECK_FALSE(flv::aac_sequence_header(std::vector<uint8_t>{0x12}, got, &err));
  CHECK(got.empty());
}

TEST_CASE("flv: onMetaData decodes as @setDataFrame, onMetaData, ECMA array with the fields given") {
  flv::Metadata m;
  m.video_codec = JN_CODEC_H264;
  m.audio_codec = JN_CODEC_PCMA;
  m.width = 320;
  m.height = 240;
  m.audio_sample_rate = 8000;
  m.audio_channels = 1;
  std::vector<uint8_t> b;
  flv::metadata(m, true, b);
  std::vector<amf0::Value> v;
  const char* err = nullptr;
  REQUIRE(amf0::decode_all(b.data(), b.size(), &v, &err));
  REQUIRE(v.size() == 3);
  CHECK(v[0].string == "@setDataFrame");
  CHECK(v[1].string == "onMetaData");
  CHECK(v[2].type == amf0::Type::EcmaArray);
  CHECK(v[2].get_number("videocodecid") == 7);
  CHECK(v[2].get_number("audiocodecid") == 7);
  CHECK(v[2].get_number("width") == 320);
  CHECK(v[2].get_number("audiosamplerate") == 8000);
  CHECK(v[2].get("stereo")->boolean == false);
  CHECK(v[2].get_string("encoder") == "Junction");
  CHECK(v[2].get("framerate") == nullptr);  // not given: left out
  // The ECMA array's count matches its members.
  size_t count_at = 3 + 13 + 3 + 10;  // after the two strings (marker + length + text)
  CHECK(b[count_at] == 0x08);
  CHECK(b[count_at + 4] == v[2].props.size());
}

TEST_CASE("flv: file header and tag framing") {
  std::vector<uint8_t> b;
  flv::file_header(true, true, b);
  CHECK(b == std::vector<uint8_t>{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0});
  b.clear();
  std::vector<uint8_t> body = {0x72, 1, 2};
  flv::file_tag(flv::kAudio, 0x01020304, body, b);
  CHECK(b == std::vector<uint8_t>{8, 0, 0, 3, 0x02, 0x03, 0x04, 0x01, 0, 0, 0, 0x72, 1, 2, 0, 0, 0, 14});
}
