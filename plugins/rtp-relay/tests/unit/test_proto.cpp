// Unit tests of the shared protocol headers: junction/proto/bencode.hpp, rtp.hpp, sdp.hpp.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <junction/proto/bencode.hpp>
#include <junction/proto/rtp.hpp>
#include <junction/proto/sdp.hpp>

#include <vector>

namespace be = junction::proto::bencode;
namespace rtp = junction::proto::rtp;
namespace sdp = junction::proto::sdp;

TEST_CASE("bencode: parse and serialise round trip") {
  auto r = be::parse_all("d7:command5:offer5:flagsl13:trust-addresse5:limiti-12ee");
  REQUIRE(r);
  CHECK(r.value->get_str("command") == "offer");
  CHECK(r.value->get_int("limit") == -12);
  CHECK(r.value->find("flags")->as_list().size() == 1);
  CHECK(be::serialize(*r.value) == "d7:command5:offer5:flagsl13:trust-addresse5:limiti-12ee");
  be::Value v;
  v.set("b", "x");
  v.set_int("a", 3);
  v.sort_keys();
  CHECK(be::serialize(v) == "d1:ai3e1:b1:xe");
  auto bin = be::parse_all(std::string("3:\0\1\2", 5));
  REQUIRE(bin);
  CHECK(bin.value->as_str().size() == 3);
}

TEST_CASE("bencode: malformed input is refused with a reason") {
  for (const char* bad : {"", "d", "i01e", "i-0e", "ie", "5:abc", "d3:keye", "di1ei2ee", "x", "l", "99999999999999999999:x", "i1"}) {
    auto r = be::parse_all(bad);
    CHECK_MESSAGE(!r, bad);
    CHECK(!r.error.empty());
  }
  CHECK(!be::parse_all("i1ei2e"));  // trailing bytes
  CHECK(be::parse_prefix("i1ei2e").consumed == 3);
  std::string deep(100, 'l');
  deep += std::string(100, 'e');
  auto r = be::parse_all(deep);
  CHECK(!r);
  CHECK(r.error == "nesting too deep");
  be::Limits lim;
  lim.max_items = 3;
  CHECK(!be::parse_all("li1ei2ei3ee", lim));
}

std::vector<uint8_t> rtp_packet(uint16_t seq, uint32_t ts, uint32_t ssrc, size_t payload = 160) {
  std::vector<uint8_t> p(12 + payload, 0xd5);
  p[0] = 0x80;
  p[1] = 0;
  rtp::wr16(&p[2], seq);
  rtp::wr32(&p[4], ts);
  rtp::wr32(&p[8], ssrc);
  return p;
}

TEST_CASE("rtp: header parse, validation and rewrite") {
  auto p = rtp_packet(7, 1120, 0xdeadbeef);
  rtp::Header h;
  REQUIRE(rtp::parse(p.data(), p.size(), h) == rtp::Error::None);
  CHECK(h.seq == 7);
  CHECK(h.timestamp == 1120);
  CHECK(h.ssrc == 0xdeadbeef);
  CHECK(h.header_len == 12);
  CHECK(h.payload_len == 160);
  rtp::set_ssrc(p.data(), 42);
  rtp::set_seq(p.data(), 9);
  rtp::set_marker(p.data(), true);
  REQUIRE(rtp::parse(p.data(), p.size(), h) == rtp::Error::None);
  CHECK(h.ssrc == 42);
  CHECK(h.seq == 9);
  CHECK(h.marker);
  CHECK(rtp::parse(p.data(), 11, h) == rtp::Error::TooShort);
  p[0] = 0x40;
  CHECK(rtp::parse(p.data(), p.size(), h) == rtp::Error::BadVersion);
  p[0] = 0x8f;  // 15 CSRCs = 60 bytes: fits in 172
  CHECK(rtp::parse(p.data(), p.size(), h) == rtp::Error::None);
  CHECK(rtp::parse(p.data(), 40, h) == rtp::Error::BadCsrc);
  p[0] = 0x90;  // extension with a huge length
  rtp::wr16(&p[14], 0xffff);
  CHECK(rtp::parse(p.data(), p.size(), h) == rtp::Error::BadExtension);
  p[0] = 0xa0;  // padding larger than the payload
  p.back() = 200;
  CHECK(rtp::parse(p.data(), p.size(), h) == rtp::Error::BadPadding);
  p.back() = 4;
  REQUIRE(rtp::parse(p.data(), p.size(), h) == rtp::Error::None);
  CHECK(h.payload_len == 156);
}

TEST_CASE("rtp: RTCP compound walk and RFC 5761 demux") {
  std::vector<uint8_t> sr(28 + 8, 0);
  sr[0] = 0x80, sr[1] = 200, rtp::wr16(&sr[2], 6), rtp::wr32(&sr[4], 0x11223344);
  sr[28] = 0x80, sr[29] = 203, rtp::wr16(&sr[30], 1), rtp::wr32(&sr[32], 0x11223344);
  CHECK(rtp::looks_like_rtcp(sr.data(), sr.size()));
  auto p = rtp_packet(1, 1, 1);
  CHECK(!rtp::looks_like_rtcp(p.data(), p.size()));
  rtp::RtcpInfo ri;
  REQUIRE(rtp::parse_rtcp(sr.data(), sr.size(), ri) == rtp::Error::None);
  CHECK(ri.packets == 2);
  CHECK(ri.first_type == 200);
  CHECK(ri.sender_ssrc == 0x11223344);
  CHECK(ri.has_bye);
  CHECK(rtp::parse_rtcp(sr.data(), sr.size() - 4, ri) == rtp::Error::BadLength);
  CHECK(rtp::parse_rtcp(p.data(), p.size(), ri) != rtp::Error::None);
}

TEST_CASE("rtp: RFC 3550 loss across a sequence wrap, reordering, restart") {
  rtp::ReceiverStats rs;
  rs.set_clock_rate(8000);
  uint64_t t = 1'000'000'000;
  uint16_t seq = 65500;
  for (int i = 0; i < 100; ++i, ++seq, t += 20'000'000) {
    if (i == 50 || i == 51 || i == 70) continue;  // 3 lost
    rs.update(seq, 99, static_cast<uint32_t>(i * 160), t);
  }
  CHECK(rs.lost() == 3);
  CHECK(rs.extended_max() > 65535);  // wrapped
  CHECK(rs.jitter_us() < 1000.0);    // perfectly paced
  // A late duplicate does not make loss negative.
  rs.update(static_cast<uint16_t>(seq - 5), 99, 0, t);
  CHECK(rs.lost() >= 0);
  // Jittery arrival raises the jitter estimate.
  rtp::ReceiverStats j;
  j.set_clock_rate(8000);
  for (int i = 0; i < 200; ++i) j.update(static_cast<uint16_t>(i), 5, static_cast<uint32_t>(i * 160), 1'000'000'000ull + i * 20'000'000ull + (i % 2) * 10'000'000ull);
  CHECK(j.jitter_us() > 3000.0);
  // A new SSRC restarts the state.
  j.update(1000, 6, 0, 5'000'000'000ull);
  CHECK(j.ssrc() == 6);
  CHECK(j.ssrc_changes() == 1);
  auto snap = rs.snapshot();
  rtp::ReceiverStats copy;
  copy.restore(snap);
  CHECK(copy.lost() == rs.lost());
  CHECK(copy.expected() == rs.expected());
}

const char* kOffer =
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "a=ice-lite\r\n"
    "m=audio 49170 RTP/SAVP 0 96\r\n"
    "a=rtpmap:96 opus/48000/2\r\n"
    "a=rtcp:49171 IN IP4 192.0.2.11\r\n"
    "a=rtcp-mux\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32\r\n"
    "a=candidate:1 1 UDP 2130706431 10.0.1.1 8998 typ host\r\n"
    "a=ice-ufrag:8hhY\r\n"
    "m=video 0 RTP/AVP 31\r\n";

TEST_CASE("sdp: parse, accessors, round trip") {
  auto r = sdp::parse(kOffer);
  REQUIRE(r);
  auto& s = *r.session;
  CHECK(sdp::serialize(s) == kOffer);
  REQUIRE(s.media.size() == 2);
  auto& m = s.media[0];
  CHECK(m.media == "audio");
  CHECK(m.port == 49170);
  CHECK(m.proto == "RTP/SAVP");
  CHECK(m.formats == std::vector<std::string>{"0", "96"});
  CHECK(m.is_srtp());
  CHECK(m.rtcp_mux());
  CHECK(s.media_connection(m)->address == "192.0.2.10");
  auto rtcp = sdp::parse_rtcp_attr(*m.attr("rtcp"));
  REQUIRE(rtcp);
  CHECK(rtcp->port == 49171);
  CHECK(rtcp->addr->address == "192.0.2.11");
  auto c = sdp::parse_crypto(*m.attr("crypto"));
  REQUIRE(c);
  CHECK(c->tag == 1);
  CHECK(c->suite == "AES_CM_128_HMAC_SHA1_80");
  CHECK(c->lifetime == "2^20");
  CHECK(c->mki == "1:32");
  CHECK(sdp::base64_decode(c->key_b64)->size() == 30);
  CHECK(sdp::format_crypto(*c) == *m.attr("crypto"));
  CHECK(sdp::remove_ice(s) == 3);
  CHECK(!s.has_attr("ice-lite"));
  CHECK(!m.has_attr("candidate"));
  CHECK(s.set_origin_address({"IN", "IP4", "203.0.113.1"}));
  CHECK(s.first('o')->value == "alice 2890844526 2890844526 IN IP4 203.0.113.1");
  // LF-only input is accepted and normalised to CRLF.
  auto lf = sdp::parse("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=audio 1000/2 RTP/AVP 8\n");
  REQUIRE(lf);
  CHECK(lf.session->media[0].nports == 2);
  CHECK(sdp::serialize(*lf.session).find("\r\nm=audio 1000/2 RTP/AVP 8\r\n") != std::string::npos);
}

TEST_CASE("sdp: bad input is refused with the line") {
  CHECK(!sdp::parse(""));
  auto r = sdp::parse("v=0\r\nm=audio notaport RTP/AVP 0\r\n");
  CHECK(!r);
  CHECK(r.line == 2);
  CHECK(!sdp::parse("v=0\r\nc=IN IP4\r\n"));
  CHECK(!sdp::parse("o=- 1 1 IN IP4 1.2.3.4\r\n"));
  CHECK(!sdp::parse("v=0\r\nGARBAGE\r\n"));
  CHECK(!sdp::parse("v=0\r\nm=audio 70000 RTP/AVP 0\r\n"));
  sdp::Limits lim;
  lim.max_media = 1;
  CHECK(!sdp::parse("v=0\r\nm=audio 1 RTP/AVP 0\r\nm=audio 2 RTP/AVP 0\r\n", lim));
  CHECK(!sdp::parse_crypto("1 AES_CM_128_HMAC_SHA1_80 nokey"));
  CHECK(!sdp::base64_decode("a$=="));
}

TEST_CASE("sdp: base64") {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto e = sdp::base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    CHECK(sdp::base64_decode(e) == s);
  }
  CHECK(sdp::base64_encode(reinterpret_cast<const uint8_t*>("foobar"), 6) == "Zm9vYmFy");
}
