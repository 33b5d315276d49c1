// Unit tests of the pure protocol parts: parsing, spellings, the section-5 rules, tokens.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "protocol.hpp"
#include "token.hpp"

using namespace intercom;
using nlohmann::json;

TEST_CASE("parse_message: valid, whitespace, and every kind of malformed input") {
  Message m;
  Error e;
  CHECK(parse_message(" \n{\"id\":\"1\",\"name\":\"call_keep\",\"values\":{\"sid\":\"a\"}}\n", m, e));
  CHECK(m.id == "1");
  CHECK(m.name == "call_keep");
  CHECK(parse_message(R"({"id":7,"name":"call_keep","values":[]})", m, e));
  CHECK(m.id == "7");
  CHECK(!parse_message(R"({"id":"1","name":"x","values":{"a":1 "b":2}})", m, e));  // the sample's missing comma
  CHECK(e.reason == "bad-json");
  CHECK(!parse_message("[1]", m, e));
  CHECK(e.reason == "bad-message");
  CHECK(!parse_message(R"({"id":"9","values":{}})", m, e));
  CHECK(e.reason == "bad-message");
  CHECK(e.id == "9");
  CHECK(!parse_message(R"({"id":"9","name":"call_req"})", m, e));
  CHECK(e.reason == "bad-message");
  CHECK(!parse_message(R"({"id":"9","name":"call_req","values":"x"})", m, e));
  CHECK(!parse_message(R"({"id":{},"name":"call_req","values":{}})", m, e));
  CHECK(blank(" \r\n\t"));
  CHECK(!blank(" x"));
}

TEST_CASE("endpoints: every spelling in, the v0.4 spelling out") {
  Endpoint ep;
  std::string why;
  for (const char* a : {"audiostreamid", "audio_stream_id", "audio_tream_id"}) {
    REQUIRE(read_endpoint(json{{a, "56781"}, {"id", "101"}, {"type", 2}, {"port", "7000"}}, ep, why));
    CHECK(ep.audio == "56781");
    CHECK(ep.port == 7000);
    json out = write_endpoint(ep);
    CHECK(out["audiostreamid"] == "56781");
    CHECK(!out.contains("audio_stream_id"));
  }
  for (const char* v : {"videostreamid", "video_stream_id", "video_tream_id"}) {
    REQUIRE(read_endpoint(json{{v, 567801}}, ep, why));
    CHECK(ep.video == "567801");
    CHECK(write_endpoint(ep)["videostreamid"] == "567801");
  }
  CHECK(!read_endpoint(json{{"type", 9}}, ep, why));
  CHECK(!read_endpoint(json{{"port", 70000}}, ep, why));
  CHECK(!read_endpoint(json{{"audiostreamid", json::array()}}, ep, why));
  CHECK(!read_endpoint(json("x"), ep, why));
}

TEST_CASE("section 5: which server, and what each side is told") {
  Network n;  // home 192.168.1.22, community 11.0.1.22, port 954, /stream/, center 11.0.0.10
  CHECK(server_for(kInnerScreen, kOuterBox) == Server::Box);     // 1
  CHECK(server_for(kOuterBox, kInnerScreen) == Server::Box);     // 2
  CHECK(server_for(kInnerScreen, kPropertyApp) == Server::Box);  // 3
  CHECK(server_for(kPropertyApp, kInnerScreen) == Server::Box);  // 4
  CHECK(server_for(kInnerScreen, kInnerScreen) == Server::Center);  // 5
  CHECK(server_for(kOuterBox, kPropertyApp) == Server::Caller);  // 6
  CHECK(server_for(kPropertyApp, kOuterBox) == Server::Caller);  // 7

  // 1: the screen's bare ids become the box's community URLs for the outer box...
  CHECK(neutral_url("56780", Server::Box, n) == "http://11.0.1.22:954/stream/56780");
  CHECK(view_for("http://11.0.1.22:954/stream/56780", Server::Box, kOuterBox, n) == "http://11.0.1.22:954/stream/56780");
  // ... a home-network URL is moved to the community address, and the screen gets bare ids back.
  CHECK(neutral_url("http://192.168.1.22:954/stream/56780", Server::Box, n) == "http://11.0.1.22:954/stream/56780");
  CHECK(view_for("http://11.0.1.22:954/stream/56780", Server::Box, kInnerScreen, n) == "56780");
  // 5: through the center stream server.
  CHECK(neutral_url("56780", Server::Center, n) == "http://11.0.0.10:954/stream/56780");
  CHECK(view_for("http://11.0.0.10:954/stream/56780", Server::Center, kInnerScreen, n) == "56780");
  CHECK(view_for("http://11.0.0.10:954/stream/56780", Server::Center, kInnerBox, n) == "http://11.0.0.10:954/stream/56780");
  // 6/7: the caller's own server, untouched.
  CHECK(neutral_url("http://11.0.11.1:954/stream/56780", Server::Caller, n) == "http://11.0.11.1:954/stream/56780");
  CHECK(view_for("http://11.0.11.1:954/stream/56780", Server::Caller, kPropertyApp, n) == "http://11.0.11.1:954/stream/56780");
  // A foreign URL stays as it is even on the box path.
  CHECK(neutral_url("rtp://127.0.0.1:40000", Server::Box, n) == "rtp://127.0.0.1:40000");
  // Ids may contain '/': the rules are idempotent.
  std::string u = neutral_url("a/b", Server::Box, n);
  CHECK(neutral_url(u, Server::Box, n) == u);
  CHECK(view_for(u, Server::Box, kInnerScreen, n) == "a/b");
  CHECK(url_host("http://[::1]:954/x") == "::1");
  CHECK(url_port("http://h/x") == 80);
  CHECK(bare_id("http://h:1/stream/42/") == "42");
}

TEST_CASE("tokens: sign, verify, tamper, expire") {
  TokenClaims c;
  c.tid = "t1";
  c.dev = "screen-1";
  c.type = kInnerScreen;
  c.room = "101";
  c.iat = 1000;
  c.exp = 2000;
  std::string t = token_sign("0123456789abcdef", c);
  TokenClaims out;
  CHECK(token_verify("0123456789abcdef", t, 1500, out) == TokenCheck::Ok);
  CHECK(out.dev == "screen-1");
  CHECK(out.room == "101");
  CHECK(token_verify("0123456789abcdef", t, 2000, out) == TokenCheck::Expired);
  CHECK(token_verify("another-secret-xx", t, 1500, out) == TokenCheck::BadSignature);
  std::string tampered = t;
  tampered[2] = tampered[2] == 'A' ? 'B' : 'A';
  CHECK(token_verify("0123456789abcdef", tampered, 1500, out) == TokenCheck::BadSignature);
  CHECK(token_verify("0123456789abcdef", "garbage", 1500, out) == TokenCheck::Malformed);
  CHECK(token_verify("0123456789abcdef", "a.b.c", 1500, out) == TokenCheck::Malformed);
  std::string dec;
  CHECK(base64url_decode(base64url("hello world!?"), dec));
  CHECK(dec == "hello world!?");
  CHECK(random_hex(8).size() == 16);
  CHECK(param_get("a=1;url=http%3A//x%3Bq;b=2", "url") == "http://x;q");
  CHECK(param_get("a=" + param_escape("x;y=z%"), "a") == "x;y=z%");
}

TEST_CASE("door allow-list prefixes: IPv4, IPv6, mapped addresses, bad input") {
  Cidr c;
  int fam = 0;
  uint8_t ip[16];
  REQUIRE(parse_cidr("127.0.0.0/8", c));
  CHECK((parse_ip("127.1.2.3", fam, ip) && cidr_match(c, fam, ip)));
  CHECK((parse_ip("128.0.0.1", fam, ip) && !cidr_match(c, fam, ip)));
  CHECK((parse_ip("::ffff:127.0.0.1", fam, ip) && fam == 4 && cidr_match(c, fam, ip)));
  CHECK((parse_ip("::1", fam, ip) && !cidr_match(c, fam, ip)));  // another family
  REQUIRE(parse_cidr("::1", c));
  CHECK((c.family == 6 && c.bits == 128));
  CHECK((parse_ip("::1", fam, ip) && cidr_match(c, fam, ip)));
  CHECK((parse_ip("::2", fam, ip) && !cidr_match(c, fam, ip)));
  REQUIRE(parse_cidr("fd00::/8", c));
  CHECK((parse_ip("fd12:3456::1", fam, ip) && cidr_match(c, fam, ip)));
  CHECK((parse_ip("fe80::1", fam, ip) && !cidr_match(c, fam, ip)));
  REQUIRE(parse_cidr("10.1.2.3/16", c));  // host bits are cleared
  CHECK((parse_ip("10.1.200.1", fam, ip) && cidr_match(c, fam, ip)));
  REQUIRE(parse_cidr("0.0.0.0/0", c));
  CHECK((parse_ip("8.8.8.8", fam, ip) && cidr_match(c, fam, ip)));
  REQUIRE(parse_cidr("192.168.1.22", c));
  CHECK((parse_ip("192.168.1.22", fam, ip) && cidr_match(c, fam, ip)));
  CHECK((parse_ip("192.168.1.23", fam, ip) && !cidr_match(c, fam, ip)));
  for (const char* bad : {"", "/8", "127.0.0.0/33", "::1/129", "127.0.0.0/", "127.0.0.0/-1", "127.0.0.0/8x", "localhost",
                          "1.2.3", "[::1]", "127.0.0.1:80", "::1/08a"})
    CHECK_MESSAGE(!parse_cidr(bad, c), bad);
}

TEST_CASE("name_label: the protocol's names, anything else is unknown") {
  CHECK(name_label("call_req") == "call_req");
  CHECK(name_label("seczone_emergency") == "seczone_emergency");
  CHECK(name_label("call_reqx") == "unknown");
  CHECK(name_label("x\"} 1\nevil{") == "unknown");
  CHECK(name_label("") == "unknown");
}

TEST_CASE("parse_ip (on the shared SDK parser) keeps its narrow grammar: no brackets, no zone, no port") {
  int fam = 0;
  uint8_t ip[16];
  CHECK((parse_ip("192.0.2.1", fam, ip) && fam == 4 && ip[0] == 192 && ip[3] == 1));
  for (const char* bad : {"[::1]", "fe80::1%1", "fe80::1%lo", "192.0.2.1:80", "", "1.2.3", "example.org"}) {
    INFO(bad);
    CHECK_FALSE(parse_ip(bad, fam, ip));
  }
}
