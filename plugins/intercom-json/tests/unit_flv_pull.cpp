// HTTP-FLV pull framing (src/flv_pull.*): the stream server's response (SRS: 200, chunked
// video/x-flv) read in any split gives the same frames as the FLV itself; a refusal, oversized
// headers, a bad chunk or a bad FLV end the pull with the reason; pull URLs are checked.
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

std::string chunked(const std::vector<uint8_t>& data, size_t piece) {
  std::string out = "HTTP/1.1 200 OK\r\nServer: SRS/4.0.0\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\n\r\n";
  char hex[16];
  for (size_t i = 0; i < data.size(); i += piece) {
    size_t n = std::min(piece, data.size() - i);
    std::snprintf(hex, sizeof hex, "%zx", n);
    out += std::string(hex) + ";ext=1\r\n";
    out.append(reinterpret_cast<const char*>(data.data() + i), n);
    out += "\r\n";
  }
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

bool feed(HttpFlvPull& pull, const std::string& bytes, size_t piece, Collect& c) {
  bool ok = true;
  for (size_t i = 0; i < bytes.size() && ok; i += piece)
    ok = pull.feed(reinterpret_cast<const uint8_t*>(bytes.data() + i), std::min(piece, bytes.size() - i), c);
  return ok;
}

}  // namespace

TEST_CASE("flv pull: a chunked or plain 200 response gives the FLV's frames, in any split") {
  auto data = small_flv();
  Collect want;
  flv::Reader r;
  REQUIRE(r.feed(data.data(), data.size(), want));
  REQUIRE(want.frames.size() == 4);
  std::string plain = "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\n\r\n" + std::string(data.begin(), data.end());
  for (const std::string& response : {chunked(data, 7), chunked(data, 4096), plain}) {
    for (size_t piece : {size_t{1}, size_t{3}, size_t{100}, response.size()}) {
      CAPTURE(piece);
      HttpFlvPull pull;
      Collect got;
      CHECK(feed(pull, response, piece, got));
      CHECK(pull.headers_done());
      CHECK_FALSE(pull.failed());
      CHECK(got.frames == want.frames);
      CHECK(got.kinds == want.kinds);
    }
  }
}

TEST_CASE("flv pull: what ends a pull, with its reason") {
  auto data = small_flv();
  auto fails = [](const std::string& response, const char* why) {
    HttpFlvPull pull;
    Collect c;
    CHECK_FALSE(feed(pull, response, 5, c));
    CHECK(pull.failed());
    CHECK(pull.error().find(why) != std::string::npos);
    CHECK_FALSE(pull.feed(reinterpret_cast<const uint8_t*>("x"), 1, c));  // over for good
  };
  fails("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "answered 404 Not Found");
  fails("SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP response");
  fails("HTTP/1.1 200 OK\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", "headers over 8 KiB");
  fails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size line");
  fails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nFLVxx", "chunk not followed by CRLF");
  fails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "ended the stream");
  std::string bad = chunked(data, 1000);
  bad[bad.find("FLV")] = 'G';
  fails(bad, "bad FLV: bad FLV header");
}

TEST_CASE("flv pull: pull URLs and the request") {
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
  CHECK(HttpFlvPull::request("127.0.0.1:954", "/stream/1") ==
        "GET /stream/1 HTTP/1.1\r\nHost: 127.0.0.1:954\r\nUser-Agent: junction-intercom-json\r\nAccept: */*\r\nConnection: close\r\n\r\n");
}
