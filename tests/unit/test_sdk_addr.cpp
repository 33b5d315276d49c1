// junction/util/addr.hpp: the one jn_addr text form shared by the core and the plugins.
#include <junction/util/addr.hpp>

#include <doctest/doctest.h>
#include <net/if.h>

using namespace junction::util;

TEST_CASE("sdk addr: parse_addr / format_addr round trip the core's grammar") {
  for (const char* text : {"1.2.3.4:5", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:5", "[2001:db8::1]:5060", "[::]:0",
                           "[::ffff:1.2.3.4]:80", "[fe80::1%2]:5060"}) {
    INFO(text);
    jn_addr a{};
    REQUIRE(parse_addr(text, a));
    CHECK(format_addr(a) == text);
  }
  jn_addr a{};
  REQUIRE(parse_addr("[fe80::1%lo]:9", a));
  CHECK(a.scope_id == if_nametoindex("lo"));
  CHECK(a.scope_id != 0);
  CHECK(format_addr(jn_addr{}) == "");
  jn_addr odd{};
  odd.family = 5;
  CHECK(format_addr(odd) == "");
}

TEST_CASE("sdk addr: parse_addr refuses malformed text and leaves the output alone") {
  for (const char* text : {"1.2.3.4", "1.2.3.4:70000", "[::1", "abc:1", "", ":5", "1.2.3.4:", "1.2.3.4:-1", "1.2.3.4:+5",
                           "1.2.3.4: 5", " 1.2.3.4:5", "1.2.3.4:5x", "1.2.3:5", "256.1.1.1:5", "::1:5", "[::1]5", "[::1]:",
                           "[1.2.3.4]:5", "[]:5", "[::1]:99999", "1.2.3.4:123456", "[fe80::1%]:5", "[fe80::1%no-such-if0]:5",
                           "1.2.3.4%1:5"}) {
    INFO(text);
    jn_addr a{};
    a.family = 9;
    CHECK_FALSE(parse_addr(text, a));
    CHECK(a.family == 9);
  }
}

TEST_CASE("sdk addr: parse_ip / format_ip take an address without port") {
  jn_addr a{};
  REQUIRE(parse_ip("192.0.2.7", a));
  CHECK(a.family == 4);
  CHECK(a.port == 0);
  CHECK(format_ip(a) == "192.0.2.7");
  REQUIRE(parse_ip("[::1]", a));
  CHECK(a.family == 6);
  CHECK(format_ip(a) == "::1");
  REQUIRE(parse_ip("::1", a));
  CHECK(a.family == 6);
  REQUIRE(parse_ip("fe80::1%3", a));
  CHECK(a.scope_id == 3);
  CHECK(format_ip(a) == "fe80::1");  // no zone in the bare form (SDP, protocol fields)
  for (const char* bad : {"", "[]", "1.2.3", "1.2.3.4%1", "example.org", "[1.2.3.4]", "1.2.3.4:5", "::1%"}) {
    INFO(bad);
    jn_addr b{};
    b.family = 9;
    CHECK_FALSE(parse_ip(bad, b));
    CHECK(b.family == 9);
  }
}
