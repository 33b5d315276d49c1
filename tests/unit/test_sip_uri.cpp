// junction/sip/uri.hpp: sip/sips/tel URIs (user, password, IPv4 / IPv6 / names, port, params,
// headers, escapes), refusals, and the RFC 3261 19.1.4 comparison rules.
#include <junction/sip/uri.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace junction::sip;

TEST_CASE("sip uri: the parts of sip and sips URIs") {
  Uri u;
  REQUIRE(parse_uri("sip:alice:secretword@atlanta.com;transport=tcp", u));
  CHECK(u.scheme == Scheme::Sip);
  CHECK(u.user == "alice");
  CHECK(u.password == "secretword");
  CHECK(u.host == "atlanta.com");
  CHECK_FALSE(u.has_port);
  CHECK(u.transport() == "tcp");

  REQUIRE(parse_uri("SIPS:bob@192.0.2.4:5061", u));
  CHECK(u.scheme == Scheme::Sips);
  CHECK(u.scheme_text == "SIPS");
  CHECK(u.host == "192.0.2.4");
  CHECK(u.has_port);
  CHECK(u.port == 5061);

  REQUIRE(parse_uri("sip:[2001:db8::10]:5070;maddr=239.255.255.1;ttl=15;lr", u));
  CHECK(u.ipv6);
  CHECK(u.host == "2001:db8::10");
  CHECK(u.port == 5070);
  CHECK(u.maddr() == "239.255.255.1");
  CHECK(u.params.value("ttl") == "15");
  CHECK(u.lr());
  CHECK(u.user.empty());

  REQUIRE(parse_uri("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com&priority=urgent", u));
  CHECK(u.params.value("method") == "REGISTER");
  CHECK(u.headers == "to=alice%40atlanta.com&priority=urgent");

  REQUIRE(parse_uri("sip:+1-212-555-1212:1234@gateway.com;user=phone", u));
  CHECK(u.user == "+1-212-555-1212");
  CHECK(u.password == "1234");
  CHECK(u.user_param() == "phone");

  // GB/T 28181 device ids as users.
  REQUIRE(parse_uri("sip:34020000001320000001@3402000000", u));
  CHECK(u.user == "34020000001320000001");
  CHECK(u.host == "3402000000");

  // Parameter walk.
  REQUIRE(parse_uri("sip:a@b;x=1;y;Z=3", u));
  size_t cur = 0;
  std::string_view n, v;
  std::string seen;
  while (u.params.next(cur, n, v)) seen += std::string(n) + "=" + std::string(v) + "|";
  CHECK(seen == "x=1|y=|Z=3|");
  CHECK(u.params.value("z") == "3");  // names are case-insensitive
}

TEST_CASE("sip uri: tel and other schemes") {
  Uri u;
  REQUIRE(parse_uri("tel:+1-201-555-0123;phone-context=example.com", u));
  CHECK(u.scheme == Scheme::Tel);
  CHECK(u.user == "+1-201-555-0123");
  CHECK(u.params.value("phone-context") == "example.com");
  REQUIRE(parse_uri("tel:7042", u));
  CHECK(u.user == "7042");
  REQUIRE(parse_uri("urn:service:sos", u));
  CHECK(u.scheme == Scheme::Other);
  CHECK(u.opaque == "service:sos");
}

TEST_CASE("sip uri: malformed URIs are refused") {
  Uri u;
  for (const char* bad : {"", "sip:", ":x", "sip:@host", "sip:user@", "sip:user@host:", "sip:user@host:65536",
                          "sip:user@host:5x", "sip:[::1", "sip:[zz::1]", "sip:us er@host", "sip:user@ho st",
                          "sip:user@host;", "sip:user@host;=x", "sip:user@host?a=<b>", "sip:%4@host", "sip:%GG@host",
                          "sip:user@host>", "1sip:x", "sip:user@host\r\n", "tel:", "tel:12 34", "sip:a\"b@host"}) {
    INFO(std::string(bad));
    CHECK_FALSE(parse_uri(bad, u));
  }
}

TEST_CASE("sip uri: escapes") {
  std::string out;
  CHECK(unescape("sip%3Auser%40example.com", out));
  CHECK(out == "sip:user@example.com");
  CHECK_FALSE(unescape("bad%4", out));
  CHECK_FALSE(unescape("bad%zz", out));
  CHECK(unquote("\"a\\\"b\\\\c\"") == "a\"b\\c");
  CHECK(unquote("plain") == "plain");
}

TEST_CASE("sip uri: RFC 3261 19.1.4 equivalence") {
  auto eq = [](const char* a, const char* b) {
    Uri ua, ub;
    REQUIRE(parse_uri(a, ua));
    REQUIRE(parse_uri(b, ub));
    return uri_equal(ua, ub) && uri_equal(ub, ua);
  };
  // The RFC's equivalent pairs.
  CHECK(eq("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"));
  CHECK(eq("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"));
  CHECK(eq("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"));
  CHECK(eq("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
           "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"));
  CHECK(eq("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
           "sip:alice@atlanta.com?priority=urgent&subject=project%20x"));
  // The RFC's non-equivalent pairs.
  CHECK_FALSE(eq("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"));
  CHECK_FALSE(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
  CHECK_FALSE(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"));
  CHECK_FALSE(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"));
  CHECK_FALSE(eq("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"));
  CHECK_FALSE(eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
  CHECK_FALSE(eq("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"));
  CHECK_FALSE(eq("sip:alice@atlanta.com", "sips:alice@atlanta.com"));
}
