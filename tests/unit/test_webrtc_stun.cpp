// sdk/webrtc STUN (RFC 5389, the RFC 5769 test vectors) and the ICE-lite responder.
#include <doctest/doctest.h>
#include <junction/webrtc/ice_lite.hpp>
#include <junction/webrtc/stun.hpp>

#include <cstring>
#include <string>
#include <vector>

using namespace junction::webrtc;

namespace {

// RFC 5769 2.1: Binding request, USERNAME "evtj:h6vY", password "VOkJxbRl1RmTxUk/WvJxBt".
const uint8_t kReq[] = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
    0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f,
    0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
    0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf};
// RFC 5769 2.2: Binding success, XOR-MAPPED-ADDRESS 192.0.2.1:32853.
const uint8_t kResp4[] = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
    0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91,
    0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96};
const char kPwd[] = "VOkJxbRl1RmTxUk/WvJxBt";

jn_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  jn_addr x{};
  x.family = 4;
  x.port = port;
  x.ip[0] = a, x.ip[1] = b, x.ip[2] = c, x.ip[3] = d;
  return x;
}

// A Binding request as a browser sends it to a lite agent.
std::vector<uint8_t> check(std::string_view user, std::string_view pwd, bool nominate, uint8_t tx = 1) {
  std::vector<uint8_t> buf(512);
  uint8_t txid[12];
  std::memset(txid, tx, sizeof txid);
  StunBuilder b(buf.data(), buf.size(), kStunBinding, StunClass::Request, txid);
  b.username(user).priority(1845501695).ice_controlling(0x1122334455667788ull);
  if (nominate) b.use_candidate();
  b.message_integrity(pwd).fingerprint();
  REQUIRE(b.ok());
  buf.resize(b.size());
  return buf;
}

}  // namespace

TEST_CASE("stun: RFC 5769 sample request parses and verifies") {
  StunMessage m;
  REQUIRE(is_stun(kReq, sizeof kReq));
  REQUIRE(stun_parse(kReq, sizeof kReq, m) == StunParse::Ok);
  CHECK(m.method == kStunBinding);
  CHECK(m.cls == StunClass::Request);
  CHECK(m.username == "evtj:h6vY");
  CHECK(m.has_priority);
  CHECK(m.priority == 0x6e0001ffu);
  CHECK(m.has_controlled);
  CHECK(m.tiebreaker == 0x932ff9b151263b36ull);
  CHECK(m.has_fingerprint);
  CHECK(m.unknown_required == 0);
  CHECK(stun_check_integrity(kReq, sizeof kReq, m, kPwd));
  CHECK_FALSE(stun_check_integrity(kReq, sizeof kReq, m, "VOkJxbRl1RmTxUk/WvJxBT"));

  // One flipped bit anywhere before FINGERPRINT breaks it.
  std::vector<uint8_t> bad(kReq, kReq + sizeof kReq);
  bad[30] ^= 1;
  CHECK(stun_parse(bad.data(), bad.size(), m) == StunParse::BadFingerprint);
}

TEST_CASE("stun: RFC 5769 IPv4 response: XOR-MAPPED-ADDRESS, integrity, and our builder reproduces it") {
  StunMessage m;
  REQUIRE(stun_parse(kResp4, sizeof kResp4, m) == StunParse::Ok);
  CHECK(m.cls == StunClass::Success);
  REQUIRE(m.has_xor_mapped);
  jn_addr want = v4(192, 0, 2, 1, 32853);
  CHECK(addr_equal(m.xor_mapped, want));
  CHECK(stun_check_integrity(kResp4, sizeof kResp4, m, kPwd));

  // Built without SOFTWARE the bytes differ, but it must verify the same way and round-trip.
  uint8_t out[256];
  StunBuilder b(out, sizeof out, kStunBinding, StunClass::Success, m.txid);
  b.xor_mapped_address(want).message_integrity(kPwd).fingerprint();
  REQUIRE(b.ok());
  StunMessage r;
  REQUIRE(stun_parse(out, b.size(), r) == StunParse::Ok);
  CHECK(r.has_fingerprint);
  CHECK(addr_equal(r.xor_mapped, want));
  CHECK(stun_check_integrity(out, b.size(), r, kPwd));
  CHECK(std::memcmp(r.txid, m.txid, 12) == 0);
}

TEST_CASE("stun: IPv6 XOR-MAPPED-ADDRESS round trip, error codes, truncation") {
  jn_addr a{};
  a.family = 6;
  a.port = 32853;
  const uint8_t ip6[16] = {0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
  std::memcpy(a.ip, ip6, 16);
  uint8_t tx[12] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};
  uint8_t out[256];
  StunBuilder b(out, sizeof out, kStunBinding, StunClass::Error, tx);
  b.xor_mapped_address(a).error_code(401, "Unauthorized").fingerprint();
  REQUIRE(b.ok());
  StunMessage m;
  REQUIRE(stun_parse(out, b.size(), m) == StunParse::Ok);
  CHECK(m.cls == StunClass::Error);
  CHECK(addr_equal(m.xor_mapped, a));
  CHECK(m.error_code == 401);
  CHECK(m.error_reason == "Unauthorized");

  // Every truncation of a valid message is refused (the header length no longer matches).
  for (size_t n = 0; n < b.size(); ++n) CHECK(stun_parse(out, n, m) != StunParse::Ok);
  // A builder without room fails instead of overflowing.
  StunBuilder small(out, 30, kStunBinding, StunClass::Request, tx);
  small.username("abcdefghijkl");
  CHECK_FALSE(small.ok());
  CHECK(small.size() == 0);
}

TEST_CASE("stun: classification (RFC 7983)") {
  CHECK(is_stun(kReq, sizeof kReq));
  uint8_t dtls[20] = {22, 0xfe, 0xfd};
  CHECK_FALSE(is_stun(dtls, sizeof dtls));
  std::vector<uint8_t> wrong_cookie(kReq, kReq + sizeof kReq);
  wrong_cookie[4] = 0;
  CHECK_FALSE(is_stun(wrong_cookie.data(), wrong_cookie.size()));
  CHECK_FALSE(is_stun(kReq, sizeof kReq - 4));  // length field disagrees
}

TEST_CASE("ice: random credentials follow the ICE grammar and differ") {
  IceCredentials a, b;
  REQUIRE(ice_random_credentials(a));
  REQUIRE(ice_random_credentials(b));
  CHECK(a.ufrag.size() == 8);
  CHECK(a.pwd.size() == 24);
  CHECK(a.pwd != b.pwd);
  for (char c : a.ufrag + a.pwd) CHECK((std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/'));
}

TEST_CASE("ice: candidate lines") {
  CHECK(candidate_line("1", "127.0.0.1", 40000) == "1 1 udp 2130706431 127.0.0.1 40000 typ host");
  // A second configured address gets a lower priority.
  CHECK(candidate_line("2", "::1", 40000, 1, 1) == "2 1 udp 2130706175 ::1 40000 typ host");
}

TEST_CASE("ice-lite: valid check answered with XOR-MAPPED-ADDRESS signed by the local password") {
  IceLite ice({"LOCL", "localpasswordlocalpass"}, {"REMO", "remotepasswordremotepa"});
  jn_addr from = v4(127, 0, 0, 1, 50000);
  auto req = check("LOCL:REMO", "localpasswordlocalpass", false);
  uint8_t out[512];
  IceCheck c = ice.handle(req.data(), req.size(), from, 1000, out, sizeof out);
  REQUIRE(c.valid);
  CHECK_FALSE(c.nominated);
  CHECK(c.selected_changed);  // no nomination yet: the latest valid address is selected
  CHECK(ice.validated(from));
  StunMessage r;
  REQUIRE(stun_parse(out, c.reply_len, r) == StunParse::Ok);
  CHECK(r.cls == StunClass::Success);
  CHECK(r.has_fingerprint);
  CHECK(addr_equal(r.xor_mapped, from));
  CHECK(stun_check_integrity(out, c.reply_len, r, "localpasswordlocalpass"));

  // A nomination from another address moves the selection; a later plain check does not.
  jn_addr other = v4(127, 0, 0, 2, 50002);
  auto nom = check("LOCL:REMO", "localpasswordlocalpass", true, 2);
  c = ice.handle(nom.data(), nom.size(), other, 1100, out, sizeof out);
  CHECK(c.nominated);
  CHECK(c.selected_changed);
  CHECK(addr_equal(ice.selected(), other));
  c = ice.handle(req.data(), req.size(), from, 1200, out, sizeof out);
  CHECK(c.valid);
  CHECK_FALSE(c.selected_changed);
  CHECK(addr_equal(ice.selected(), other));
  CHECK(ice.stats().valid == 3);
}

TEST_CASE("ice-lite: wrong credentials get 401, missing ones 400, garbage nothing") {
  IceLite ice({"LOCL", "localpasswordlocalpass"}, {"REMO", "remotepasswordremotepa"});
  jn_addr from = v4(127, 0, 0, 1, 50000);
  uint8_t out[512];
  auto expect_error = [&](const std::vector<uint8_t>& req, uint16_t code) {
    IceCheck c = ice.handle(req.data(), req.size(), from, 1000, out, sizeof out);
    CHECK_FALSE(c.valid);
    REQUIRE(c.reply_len > 0);
    StunMessage r;
    REQUIRE(stun_parse(out, c.reply_len, r) == StunParse::Ok);
    CHECK(r.cls == StunClass::Error);
    CHECK(r.error_code == code);
  };
  expect_error(check("LOCL:REMO", "wrongpasswordwrongpass", true), 401);  // bad MESSAGE-INTEGRITY
  expect_error(check("WRNG:REMO", "localpasswordlocalpass", true), 401);  // not our ufrag
  expect_error(check("LOCL:OTHR", "localpasswordlocalpass", true), 401);  // not the peer's ufrag
  // No MESSAGE-INTEGRITY at all.
  std::vector<uint8_t> bare(256);
  uint8_t tx[12] = {};
  StunBuilder b(bare.data(), bare.size(), kStunBinding, StunClass::Request, tx);
  b.username("LOCL:REMO").fingerprint();
  bare.resize(b.size());
  expect_error(bare, 400);
  CHECK_FALSE(ice.has_selected());
  CHECK_FALSE(ice.validated(from));
  CHECK(ice.stats().unauthorized == 3);
  CHECK(ice.stats().bad_request == 1);

  uint8_t junk[40] = {0x00, 0x01, 0x00, 0x14, 0x21, 0x12, 0xa4, 0x42};
  junk[20] = 0x00, junk[21] = 0x06, junk[22] = 0x40;  // attribute longer than the message
  IceCheck c = ice.handle(junk, sizeof junk, from, 1000, out, sizeof out);
  CHECK(c.reply_len == 0);
  CHECK(ice.stats().malformed == 1);
}

TEST_CASE("ice-lite: consent expires without fresh checks (RFC 7675)") {
  IceLite ice({"LOCL", "localpasswordlocalpass"}, {"REMO", "remotepasswordremotepa"}, 30000);
  jn_addr from = v4(127, 0, 0, 1, 50000);
  uint8_t out[512];
  auto req = check("LOCL:REMO", "localpasswordlocalpass", true);
  ice.handle(req.data(), req.size(), from, 1000, out, sizeof out);
  CHECK_FALSE(ice.consent_expired(30999));
  ice.handle(req.data(), req.size(), from, 20000, out, sizeof out);  // refreshed
  CHECK_FALSE(ice.consent_expired(49999));
  CHECK(ice.consent_expired(50000));
  // A failed check does not refresh consent.
  auto bad = check("LOCL:REMO", "wrongpasswordwrongpass", true);
  ice.handle(bad.data(), bad.size(), from, 45000, out, sizeof out);
  CHECK(ice.consent_expired(50000));
}
