// Unit tests of the plugin's pure parts: ng framing, the SDP rewrite, the SRTP wrapper (the sdk's
// junction/webrtc/srtp.hpp, as rtp-relay uses it: SDES keys, both AES-CM suites, ROC restore).
#include "ng.hpp"
#include "sdp_rewrite.hpp"

#include <doctest/doctest.h>
#include <junction/proto/rtp.hpp>
#include <junction/webrtc/srtp.hpp>

#include <vector>

using namespace rtp_relay;
using namespace junction::webrtc;

TEST_CASE("ng: cookie + dictionary") {
  auto r = ng::parse("5323_1 d7:command4:pinge");
  REQUIRE(r.ok);
  CHECK(r.msg.cookie == "5323_1");
  CHECK(r.msg.dict.get_str("command") == "ping");
  ng::bencode::Value pong = ng::bencode::Value::dict();
  pong.set("result", "pong");
  CHECK(ng::format("5323_1", pong) == "5323_1 d6:result4:ponge");
  auto bad = ng::parse("abc d7:command");
  CHECK(!bad.ok);
  CHECK(bad.have_cookie);
  CHECK(bad.error.find("bad bencode") == 0);
  CHECK(!ng::parse("nocookie").have_cookie);
  CHECK(!ng::parse(" d1:ai1ee").have_cookie);
  auto notdict = ng::parse("c l1:ae");
  CHECK(!notdict.ok);
  CHECK(notdict.error == "message is not a dictionary");
  CHECK(ng::format("c", ng::error_reply("x")) == "c d6:result5:error12:error-reason1:xe");
  auto f = ng::parse("c d5:flagsl3:fooe7:replacel6:origine3:ICE6:removee");
  REQUIRE(f.ok);
  CHECK(ng::has_item(f.msg.dict, "flags", "foo"));
  CHECK(ng::has_item(f.msg.dict, "replace", "origin"));
  CHECK(!ng::has_item(f.msg.dict, "flags", "bar"));
}

TEST_CASE("sdp rewrite: offer toward the relay, mux, crypto, ICE") {
  auto r = sdp::parse(
      "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
      "m=audio 5000 RTP/SAVP 0\r\na=rtcp:5001\r\na=rtcp-mux\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n"
      "a=candidate:1 1 udp 1 10.0.0.1 5000 typ host\r\na=sendrecv\r\nm=video 0 RTP/AVP 96\r\n");
  REQUIRE(r);
  sdp::Session s = *r.session;
  std::vector<MediaPlan> plans(2);
  plans[0].relay = true;
  plans[0].port = 30002;
  plans[0].proto = "RTP/AVP";
  plans[0].strip_crypto = true;
  plans[0].mux = false;
  RewriteOptions o;
  o.addr = {"IN", "IP4", "127.0.0.1"};
  o.replace_origin = true;
  rewrite_sdp(s, o, plans);
  std::string out = sdp::serialize(s);
  CHECK(out ==
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 30002 RTP/AVP 0\r\na=rtcp:30003\r\na=sendrecv\r\nm=video 0 RTP/AVP 96\r\n");
  // Answer with mux: a=rtcp is the RTP port; a crypto line is added.
  sdp::Session a = *r.session;
  plans[0].proto = "RTP/SAVP";
  plans[0].mux = true;
  plans[0].is_answer = true;
  plans[0].crypto = "1 AES_CM_128_HMAC_SHA1_80 inline:BBBB";
  o.replace_origin = false;
  rewrite_sdp(a, o, plans);
  out = sdp::serialize(a);
  CHECK(out.find("o=- 1 1 IN IP4 10.0.0.1\r\n") != std::string::npos);
  CHECK(out.find("m=audio 30002 RTP/SAVP 0\r\na=rtcp:30002\r\na=rtcp-mux\r\n") != std::string::npos);
  CHECK(out.find("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:BBBB\r\n") != std::string::npos);
  CHECK(out.find("AAAA") == std::string::npos);
  CHECK(out.find("candidate") == std::string::npos);
  // Media-level c= only: it is rewritten, no session c= is invented.
  auto m = sdp::parse("v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\nc=IN IP4 1.1.1.1\r\n");
  REQUIRE(m);
  std::vector<MediaPlan> p1(1);
  p1[0].relay = true;
  p1[0].port = 31000;
  rewrite_sdp(*m.session, o, p1);
  CHECK(sdp::serialize(*m.session) == "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nt=0 0\r\nm=audio 31000 RTP/AVP 8\r\nc=IN IP4 127.0.0.1\r\na=rtcp:31001\r\n");
}

TEST_CASE("clock rate from static payload types and rtpmap") {
  auto r = sdp::parse("v=0\r\nm=audio 1 RTP/AVP 96 0\r\na=rtpmap:96 opus/48000/2\r\nm=audio 1 RTP/AVP 8\r\nm=video 1 RTP/AVP 97\r\n");
  REQUIRE(r);
  CHECK(clock_rate_of(r.session->media[0]) == 48000);
  CHECK(clock_rate_of(r.session->media[1]) == 8000);
  CHECK(clock_rate_of(r.session->media[2]) == 0);
}

TEST_CASE("srtp: protect / unprotect round trip, tamper detection, ROC restore") {
  REQUIRE(srtp_library_init_standalone());
  std::string key(30, '\x42');
  SrtpSession tx, rx;
  REQUIRE(tx.create(SrtpSuite::AesCm128Sha1_80, key, false));
  REQUIRE(rx.create(SrtpSuite::AesCm128Sha1_80, key, true));
  for (uint16_t seq = 1; seq < 5; ++seq) {
    std::vector<uint8_t> p(12 + 160 + SRTP_MAX_TRAILER_LEN, 0x55);
    p[0] = 0x80, p[1] = 0;
    junction::proto::rtp::wr16(&p[2], seq);
    junction::proto::rtp::wr32(&p[8], 0xabcdef01);
    uint32_t len = 172;
    REQUIRE(tx.protect(p.data(), len, false));
    CHECK(len == 182);
    CHECK(p[20] != 0x55);
    std::vector<uint8_t> bad = p;
    bad[30] ^= 1;
    uint32_t blen = len;
    CHECK(!rx.unprotect(bad.data(), blen, false));
    REQUIRE(rx.unprotect(p.data(), len, false));
    CHECK(len == 172);
    CHECK(p[20] == 0x55);
  }
  uint32_t roc = 99;
  CHECK(rx.roc(0xabcdef01, roc));
  CHECK(roc == 0);
  // Rollover counters restored after a reload: a sender at ROC 3 is only understood by a
  // receiver restored with ROC 3 (libsrtp applies a set ROC on the next packet).
  SrtpSession tx3, rx3, rx0, rx2;
  REQUIRE(tx3.create(SrtpSuite::AesCm128Sha1_32, key, false, {{0xabcdef01u, 3u}}));
  REQUIRE(rx3.create(SrtpSuite::AesCm128Sha1_32, key, true, {{0xabcdef01u, 3u}}));
  REQUIRE(rx0.create(SrtpSuite::AesCm128Sha1_32, key, true));
  std::vector<uint8_t> p(12 + 160 + SRTP_MAX_TRAILER_LEN, 0x55);
  p[0] = 0x80, p[1] = 0;
  junction::proto::rtp::wr16(&p[2], 100);
  junction::proto::rtp::wr32(&p[8], 0xabcdef01);
  uint32_t len = 172;
  REQUIRE(tx3.protect(p.data(), len, false));
  CHECK(len == 176);
  std::vector<uint8_t> q = p;
  uint32_t qlen = len;
  CHECK(!rx0.unprotect(q.data(), qlen, false));
  REQUIRE(rx3.unprotect(p.data(), len, false));
  CHECK(rx3.roc(0xabcdef01, roc));
  CHECK(roc == 3);
  CHECK(!rx2.create(SrtpSuite::AesCm128Sha1_80, "short", true));
  CHECK(suite_from_name("AES_CM_128_HMAC_SHA1_32") == SrtpSuite::AesCm128Sha1_32);
  CHECK(suite_from_name("F8_128_HMAC_SHA1_80") == SrtpSuite::None);
}
