// junction/proto/sdp.hpp: unknown lines survive a parse/serialise round trip in place; GB/T 28181's
// y= (SSRC), f= (media description) and u= lines; refusals with a line number.
#include <junction/proto/sdp.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace junction::proto::sdp;

namespace {
// A GB/T 28181 live-play answer (document 002), CRLF line ends.
const char kGbPlay[] =
    "v=0\r\n"
    "o=34020000001310000002 0 0 IN IP4 192.168.0.111\r\n"
    "s=Play\r\n"
    "i=VCam Live Video\r\n"
    "u=34020000001310000002:0\r\n"
    "c=IN IP4 192.168.0.111\r\n"
    "t=0 0\r\n"
    "m=video 9712 RTP/AVP 96\r\n"
    "a=sendonly\r\n"
    "a=rtpmap:96 PS/90000\r\n"
    "a=streamprofile:0\r\n"
    "y=0100000001\r\n"
    "f=v/2/4/25/1/4096a/1/8/1\r\n";
}  // namespace

TEST_CASE("sdp: a GB/T 28181 description round-trips byte for byte, y= f= u= included") {
  auto r = parse(kGbPlay);
  REQUIRE(r);
  CHECK(serialize(*r.session) == kGbPlay);
  REQUIRE(gb_ssrc(*r.session));
  CHECK(*gb_ssrc(*r.session) == "0100000001");
  CHECK(gb_ssrc_value("0100000001") == 100000001u);
  const Line* u = find_line(*r.session, 'u');
  REQUIRE(u);
  CHECK(u->value == "34020000001310000002:0");
  const Line* f = find_line(*r.session, 'f');
  REQUIRE(f);
  auto g = parse_gb_format(f->value);
  REQUIRE(g);
  CHECK(g->video == std::vector<std::string>{"2", "4", "25", "1", "4096"});
  CHECK(g->audio == std::vector<std::string>{"1", "8", "1"});
  CHECK(format_gb_format(*g) == f->value);
}

TEST_CASE("sdp: unknown and unusual lines keep their place through an edit") {
  std::string text =
      "v=0\r\n"
      "o=- 1 1 IN IP4 127.0.0.1\r\n"
      "s=-\r\n"
      "k=clear:secret\r\n"
      "c=IN IP4 127.0.0.1\r\n"
      "t=0 0\r\n"
      "z=2882844526 -1h 2898848070 0\r\n"
      "x=vendor line\r\n"
      "m=audio 4000 RTP/AVP 0\r\n"
      "q=unknown media-level line\r\n"
      "a=rtpmap:0 PCMU/8000\r\n"
      "y=1340200001\r\n";
  auto r = parse(text);
  REQUIRE(r);
  CHECK(serialize(*r.session) == text);
  // Rewriting the connection leaves every other line where it was.
  Connection c;
  c.address = "127.0.0.2";
  r.session->set_connection(c, false);
  set_gb_ssrc(*r.session, "1340200002");
  std::string want = text;
  want.replace(want.find("c=IN IP4 127.0.0.1"), 18, "c=IN IP4 127.0.0.2");
  want.replace(want.find("y=1340200001"), 12, "y=1340200002");
  CHECK(serialize(*r.session) == want);
}

TEST_CASE("sdp: y= is added to the last media section when missing; short and bad values") {
  auto r = parse("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=Play\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n");
  REQUIRE(r);
  CHECK_FALSE(gb_ssrc(*r.session));
  set_gb_ssrc(*r.session, "0100000009");
  CHECK(serialize(*r.session).ends_with("m=video 5000 RTP/AVP 96\r\ny=0100000009\r\n"));
  CHECK(gb_ssrc_value("001") == 1u);  // a device's short form
  CHECK_FALSE(gb_ssrc_value(""));
  CHECK_FALSE(gb_ssrc_value("12345678901"));
  CHECK_FALSE(gb_ssrc_value("9999999999"));  // above 2^32
  CHECK_FALSE(gb_ssrc_value("01x"));
}

TEST_CASE("sdp: f= forms seen in the field") {
  auto empty = parse_gb_format("v/////a///");
  REQUIRE(empty);
  CHECK(empty->video == std::vector<std::string>{"", "", "", "", ""});
  CHECK(empty->audio == std::vector<std::string>{"", "", ""});
  auto zeros = parse_gb_format("v/0/0/0/0/0a/0/0/0");
  REQUIRE(zeros);
  CHECK(zeros->video.size() == 5);
  auto shortf = parse_gb_format("v/a/1/8/1");
  REQUIRE(shortf);
  CHECK(shortf->video.empty());
  CHECK(shortf->audio == std::vector<std::string>{"1", "8", "1"});
  CHECK(format_gb_format(*shortf) == "v/////a/1/8/1");
  for (const char* bad : {"", "x/1a/1", "v/1/2", "v/1/2/3/4/5/6a/1", "v/xa/1", "v/1a/1/2/3/4"}) {
    INFO(bad);
    CHECK_FALSE(parse_gb_format(bad));
  }
}

TEST_CASE("sdp: malformed descriptions are refused with the line") {
  auto r = parse("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\nm =video 3227 RTP/AVP 31\r\n");  // RFC 4475 dblreq's body
  CHECK_FALSE(r);
  CHECK(r.line == 3);
  CHECK_FALSE(r.error.empty());
  CHECK_FALSE(parse("o=- 1 1 IN IP4 127.0.0.1\r\n"));
  CHECK_FALSE(parse("v=0\r\nM=audio 1 RTP/AVP 0\r\n"));
  CHECK_FALSE(parse("v=0\r\nm=audio 70000 RTP/AVP 0\r\n"));
}
