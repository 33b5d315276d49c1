// Unit tests of relay_util.hpp (addresses, the RTCP address an SDP implies, CSPRNG secrets, log
// escaping) and relay_conf.hpp (conf types and ranges).
// RAND_set_rand_method is deprecated in OpenSSL 3 but still honoured by RAND_bytes: the test
// uses it to prove where the relay's secrets come from (defined before any OpenSSL header).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/rand.h>

#include "relay_conf.hpp"
#include "relay_util.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <set>
#include <string>

using namespace rtp_relay;
using nlohmann::json;

namespace {
jn_addr poisoned() {
  jn_addr a;
  std::memset(&a, 0xab, sizeof a);
  return a;
}
bool is_zero(const jn_addr& a) {
  jn_addr z{};
  return std::memcmp(&a, &z, sizeof a) == 0;
}
sdp::Media media(const std::string& text) {
  auto r = sdp::parse("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n" + text);
  REQUIRE(r);
  REQUIRE(r.session->media.size() == 1);
  return r.session->media[0];
}
}  // namespace

TEST_CASE("make_addr: a failure leaves no half-filled address") {
  jn_addr a = poisoned();
  CHECK(make_addr("192.0.2.7", 5004, a));
  CHECK((a.family == 4 && a.port == 5004 && a.ip[0] == 192 && a.ip[3] == 7));
  CHECK(make_addr("[::1]", 9, a));
  CHECK((a.family == 6 && a.port == 9 && a.ip[15] == 1));
  // A port past 65535 used to set the family and truncate the port (65536 -> 0).
  for (uint32_t port : {65536u, 131072u, 0xffffffffu}) {
    a = poisoned();
    CHECK(!make_addr("192.0.2.7", port, a));
    CHECK(is_zero(a));
  }
  for (const char* bad : {"", "example.com", "192.0.2", "[192.0.2.1", "1.2.3.4.5", "::g"}) {
    a = poisoned();
    CHECK_MESSAGE(!make_addr(bad, 5000, a), bad);
    CHECK(is_zero(a));
  }
}

TEST_CASE("parse_addr_str: ports are bounded before they can wrap") {
  jn_addr a = poisoned();
  CHECK(parse_addr_str("", a));
  CHECK(is_zero(a));
  CHECK(parse_addr_str("127.0.0.1:65535", a));
  CHECK(a.port == 65535);
  CHECK(parse_addr_str("[::1]:5000", a));
  CHECK((a.family == 6 && a.port == 5000));
  // 4294967297 wrapped to port 1 in 32 bits; 65536 to 0.
  for (const char* bad : {"127.0.0.1:4294967297", "127.0.0.1:65536", "127.0.0.1:0", "127.0.0.1:", "127.0.0.1", "127.0.0.1:5x",
                          "nowhere:5000"}) {
    a = poisoned();
    CHECK_MESSAGE(!parse_addr_str(bad, a), bad);
    CHECK(is_zero(a));
  }
}

TEST_CASE("the RTCP address an SDP implies never wraps to port 0") {
  CHECK(rtcp_port_after(5000) == 5001);
  CHECK(rtcp_port_after(65534) == 65535);
  CHECK(rtcp_port_after(65535) == 0);
  CHECK(rtcp_port_after(0) == 0);
  // RTP + 1 by default.
  RecvAddrs r = sdp_receive_addrs("192.0.2.1", 5000, media("m=audio 5000 RTP/AVP 0\r\n"), true);
  CHECK(addr_str(r.rtp) == "192.0.2.1:5000");
  CHECK(addr_str(r.rtcp) == "192.0.2.1:5001");
  // RTP on 65535: no RTCP port after it (it used to be 192.0.2.1:0).
  r = sdp_receive_addrs("192.0.2.1", 65535, media("m=audio 65535 RTP/AVP 0\r\n"), true);
  CHECK(addr_str(r.rtp) == "192.0.2.1:65535");
  CHECK(is_zero(r.rtcp));
  // ... unless a=rtcp names one.
  r = sdp_receive_addrs("192.0.2.1", 65535, media("m=audio 65535 RTP/AVP 0\r\na=rtcp:40001\r\n"), true);
  CHECK(addr_str(r.rtcp) == "192.0.2.1:40001");
  // a=rtcp with an address: used unless the source address overrides the SDP's.
  auto with_addr = media("m=audio 5000 RTP/AVP 0\r\na=rtcp:6001 IN IP4 198.51.100.9\r\n");
  CHECK(addr_str(sdp_receive_addrs("192.0.2.1", 5000, with_addr, true).rtcp) == "198.51.100.9:6001");
  CHECK(addr_str(sdp_receive_addrs("192.0.2.1", 5000, with_addr, false).rtcp) == "192.0.2.1:6001");
  // An unusable a=rtcp address keeps the RTP address; a=rtcp:0 is no RTCP address.
  r = sdp_receive_addrs("192.0.2.1", 5000, media("m=audio 5000 RTP/AVP 0\r\na=rtcp:6001 IN IP4 rtcp.example\r\n"), true);
  CHECK(addr_str(r.rtcp) == "192.0.2.1:6001");
  r = sdp_receive_addrs("192.0.2.1", 5000, media("m=audio 5000 RTP/AVP 0\r\na=rtcp:0\r\n"), true);
  CHECK(addr_str(r.rtp) == "192.0.2.1:5000");
  CHECK(is_zero(r.rtcp));
  // No usable RTP address: nothing at all (not a half address).
  for (const char* ip : {"", "host.example"}) {
    r = sdp_receive_addrs(ip, 5000, media("m=audio 5000 RTP/AVP 0\r\n"), true);
    CHECK((is_zero(r.rtp) && is_zero(r.rtcp)));
  }
}

namespace {
// A RAND method whose bytes are a known pattern, or that fails: RAND_bytes goes through it.
int fake_fail = 0;
int fake_bytes(unsigned char* buf, int n) {
  if (fake_fail) return 0;
  for (int i = 0; i < n; ++i) buf[i] = static_cast<unsigned char>(0xa0 + i);
  return 1;
}
int fake_status() { return fake_fail ? 0 : 1; }
const RAND_METHOD kFake = {nullptr, fake_bytes, nullptr, nullptr, fake_bytes, fake_status};
}  // namespace

TEST_CASE("secrets (SRTP keys, tags) come from OpenSSL's CSPRNG, and its failure is reported") {
  std::string k1, k2;
  REQUIRE(random_bytes(30, k1));
  REQUIRE(random_bytes(30, k2));
  CHECK(k1.size() == 30);
  CHECK(k1 != k2);
  // Whatever RAND_bytes delivers is the key: it is the source, not std::random_device.
  REQUIRE(RAND_set_rand_method(&kFake) == 1);
  std::string k;
  bool ok = random_bytes(30, k);
  fake_fail = 1;
  std::string failed = "left over";
  bool ok_when_failing = random_bytes(30, failed);
  fake_fail = 0;
  RAND_set_rand_method(nullptr);  // back to OpenSSL's default
  CHECK(ok);
  REQUIRE(k.size() == 30);
  for (size_t i = 0; i < k.size(); ++i) CHECK(static_cast<unsigned char>(k[i]) == 0xa0 + i);
  CHECK(!ok_when_failing);
  CHECK(failed.empty());
  std::string after;
  REQUIRE(random_bytes(30, after));
  CHECK(after != k);
}

TEST_CASE("log_escape: no peer string starts a log line or reaches it raw") {
  CHECK(log_escape("abc-123@host.example;tag=x") == "abc-123@host.example;tag=x");
  CHECK(log_escape("a\nb\r\tc\\d") == "a\\nb\\r\\tc\\\\d");
  CHECK(log_escape(std::string("x\0y", 3)) == "x\\x00y");
  CHECK(log_escape("\x1b[31mred\x7f") == "\\x1b[31mred\\x7f");
  // UTF-8 is kept; C1 controls, line separators, stray and overlong bytes are escaped.
  CHECK(log_escape("caf\xc3\xa9 \xe6\x9d\xb1") == "caf\xc3\xa9 \xe6\x9d\xb1");
  CHECK(log_escape("\xc2\x9b" "1m") == "\\xc2\\x9b1m");
  CHECK(log_escape("a\xe2\x80\xa8" "b") == "a\\xe2\\x80\\xa8b");
  CHECK(log_escape("\xff\xc0\xaf") == "\\xff\\xc0\\xaf");
  CHECK(log_escape("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // a surrogate
  CHECK(log_escape("\xe6\x9d") == "\\xe6\\x9d");          // cut short
  // Long values are cut, with the rest counted.
  CHECK(log_escape(std::string(300, 'a'), 10) == "aaaaaaaaaa...(+290 bytes)");
  // Nothing below 0x20 ever comes out, whatever the input.
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  for (unsigned char c : log_escape(all, 1000)) CHECK((c >= 0x20 && c != 0x7f));
}

TEST_CASE("conf: defaults, and every bad value refused with its key") {
  RelayConf c;
  REQUIRE(!parse_conf(json::object(), c));
  CHECK((c.max_sessions == 20000 && c.timeout_s == 60 && c.port_min == 30000 && c.port_max == 39999 && c.advertise == "127.0.0.1"));
  CHECK((c.port_range == "media" && !c.legacy_ports));
  REQUIRE(!parse_conf(json{{"port_range", "rtp"}}, c));
  CHECK((c.port_range == "rtp" && !c.legacy_ports));
  REQUIRE(!parse_conf(json{{"port_min", 30001}, {"max_sessions", 1}, {"timeout_s", 0}, {"rcvbuf", 0}}, c));
  CHECK((c.port_min == 30002 && c.max_sessions == 1 && c.timeout_s == 0 && c.rcvbuf == 0 && c.legacy_ports));
  struct Case {
    json conf;
    const char* key;
    const char* words;
  };
  const Case cases[] = {
      {{{"max_sessions", -1}}, "max_sessions", "must be an integer from 1 to 4194304, not -1"},
      {{{"max_sessions", 0}}, "max_sessions", "not 0"},
      {{{"max_sessions", 5000000}}, "max_sessions", "not 5000000"},
      {{{"max_sessions", 18446744073709551615ull}}, "max_sessions", "not 18446744073709551615"},
      {{{"max_sessions", "10"}}, "max_sessions", "must be an integer"},
      {{{"timeout_s", -1}}, "timeout_s", "not -1"},
      {{{"timeout_s", 1.5}}, "timeout_s", "must be 0 (never)"},
      {{{"ssrc_change_limit", -1}}, "ssrc_change_limit", "not -1"},
      {{{"rcvbuf", -4096}}, "rcvbuf", "not -4096"},
      {{{"port_min", 1023}}, "port_min", "not 1023"},
      {{{"port_max", 65536}}, "port_max", "not 65536"},
      {{{"port_min", 40000}, {"port_max", 40002}}, "port_max", "at least port_min + 3"},
      {{{"publish", 1}}, "publish", "true or false"},
      {{{"latching", "loose\n"}}, "latching", "not 'loose\\n'"},
      {{{"interface", "eth0"}}, "interface", "must be an IP address"},
      {{{"advertise", "relay.example"}}, "advertise", "must be an IP address"},
      {{{"ng_listen", 2223}}, "ng_listen", "must be a string"},
      {{{"bogus", 1}}, "bogus", "unknown key"},
      {{{"port_range", ""}}, "port_range", "must name a [ports.NAME] range"},
      {{{"port_range", 5}}, "port_range", "must be a string"},
      {{{"port_range", "media"}, {"port_max", 40000}}, "port_range", "cannot be combined with the deprecated port_min/port_max"},
  };
  for (const Case& k : cases) {
    auto err = parse_conf(k.conf, c);
    REQUIRE_MESSAGE(err, k.conf.dump());
    CHECK(err->key == k.key);
    CHECK_MESSAGE(err->reason.find(k.words) != std::string::npos, err->reason);
  }
}

TEST_CASE("addr_str writes no IPv6 zone, so a latched link-local peer survives save/restore") {
  jn_addr a{};
  REQUIRE(parse_addr_str("[fe80::1]:5004", a));
  a.scope_id = 2;  // as from_sockaddr sets it for a link-local source
  CHECK(addr_str(a) == "[fe80::1]:5004");
  jn_addr back = poisoned();
  REQUIRE(parse_addr_str(addr_str(a), back));
  CHECK((back.family == 6 && back.port == 5004 && back.ip[0] == 0xfe && back.ip[15] == 1));
  CHECK(addr_ip(a) == "fe80::1");
}
