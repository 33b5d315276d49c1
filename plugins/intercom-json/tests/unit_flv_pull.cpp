// HTTP-FLV pull (src/flv_pull.*): after a 200 head, the body (as the core's streamed http_request
// hands it over, chunked already removed) read in any split gives the same frames as the FLV
// itself; a refusal or a bad FLV ends the pull with the reason; pull URLs are checked. The HTTP
// framing itself is the core's (tests/unit/test_http_client.cpp, "http client stream: ...").
#include <doctest/doctest.h>

#include "flv_pull.hpp"

#include <junction/rtmp/flv.hpp>

#include <string>
#include <vector>

using namespace intercom;
namespace flv = junction::rtmp::flv;

namespace {

// A small FLV: AVC sequence header, an IDR, a P frame, two A-law frames.
std::vector<uint8_t> small_flv() {
  const std::vector<uint8_t> sps = {0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x01, 0x41, 0xFB};
  const std::vector<uint8_t> pps = {0x68, 0xCB, 0x83, 0xCB, 0x20};
  std::vector<uint8_t> out, body;
  const char* err = nullptr;
  flv::file_header(true, true, out);
  flv::avc_sequence_header(sps, pps, body, &err);
  flv::file_tag(flv::kVideo, 0, body, out);
  const uint8_t idr[] = {0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21};
  const uint8_t p[] = {0, 0, 0, 1, 0x41, 0x9a, 0x02};
  const uint8_t alaw[160] = {0xD5};
  body.clear();
  flv::avc_nalu(idr, sizeof idr, true, 0, body, &err);
  flv::file_tag(flv::kVideo, 0, body, out);
  body.clear();
  flv::audio_frame(JN_CODEC_PCMA, alaw, sizeof alaw, body, &err);
  flv::file_tag(flv::kAudio, 0, body, out);
  flv::file_tag(flv::kAudio, 20, body, out);
  body.clear();
  flv::avc_nalu(p, sizeof p, false, 0, body, &err);
  flv::file_tag(flv::kVideo, 40, body, out);
  return out;
}

struct Collect {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<uint32_t> kinds;
  void on_frame(const junction::media::FrameView& f) {
    frames.emplace_back(f.data, f.data + f.size);
    kinds.push_back(f.meta.kind);
  }
};

bool feed(FlvPull& pull, const std::string& bytes, size_t piece, Collect& c) {
  bool ok = true;
  for (size_t i = 0; i < bytes.size() && ok; i += piece)
    ok = pull.feed(reinterpret_cast<const uint8_t*>(bytes.data() + i), std::min(piece, bytes.size() - i), c);
  return ok;
}

}  // namespace

TEST_CASE("flv pull: after a 200 head, the body gives the FLV's frames, in any split") {
  auto data = small_flv();
  Collect want;
  flv::Reader r;
  REQUIRE(r.feed(data.data(), data.size(), want));
  REQUIRE(want.frames.size() == 4);
  std::string body(data.begin(), data.end());
  for (size_t piece : {size_t{1}, size_t{3}, size_t{100}, body.size()}) {
    CAPTURE(piece);
    FlvPull pull;
    Collect got;
    CHECK(pull.head(200));
    CHECK(pull.head_done());
    CHECK(pull.feed(nullptr, 0, got));  // a head without body bytes
    CHECK(feed(pull, body, piece, got));
    CHECK_FALSE(pull.failed());
    CHECK(got.frames == want.frames);
    CHECK(got.kinds == want.kinds);
  }
}

TEST_CASE("flv pull: what ends a pull, with its reason") {
  auto data = small_flv();
  Collect c;
  {
    FlvPull pull;
    CHECK_FALSE(pull.head(404));
    CHECK(pull.error() == "the stream server answered 404");
    CHECK_FALSE(pull.feed(data.data(), data.size(), c));  // over for good
    CHECK(c.frames.empty());
  }
  {
    FlvPull pull;
    CHECK_FALSE(pull.feed(data.data(), data.size(), c));
    CHECK(pull.error() == "body before the response head");
  }
  {
    std::string bad(data.begin(), data.end());
    bad[0] = 'G';
    FlvPull pull;
    CHECK(pull.head(200));
    CHECK_FALSE(feed(pull, bad, 5, c));
    CHECK(pull.error().find("bad FLV: bad FLV header") != std::string::npos);
    CHECK(pull.reader().failed());
    CHECK_FALSE(pull.feed(reinterpret_cast<const uint8_t*>("x"), 1, c));
  }
}

TEST_CASE("flv pull: pull URLs") {
  std::string hp, path, why;
  CHECK(parse_pull_url("http://127.0.0.1:954/stream/56780", hp, path, why));
  CHECK(hp == "127.0.0.1:954");
  CHECK(path == "/stream/56780");
  CHECK(parse_pull_url("http://10.0.0.1/live", hp, path, why));
  CHECK(hp == "10.0.0.1:80");
  CHECK_FALSE(parse_pull_url("http://srs.example:954/stream/1", hp, path, why));
  CHECK_FALSE(parse_pull_url("https://127.0.0.1/stream/1", hp, path, why));
  CHECK_FALSE(parse_pull_url("http://127.0.0.1:99999/stream/1", hp, path, why));
  CHECK_FALSE(parse_pull_url("http://127.0.0.1/stream/a b", hp, path, why));
  CHECK(pull_url_for("http://127.0.0.1:954/stream/{id}", "56780") == "http://127.0.0.1:954/stream/56780");
  CHECK(pull_url_for("http://127.0.0.1:954/stream/", "56780") == "http://127.0.0.1:954/stream/56780");
}
