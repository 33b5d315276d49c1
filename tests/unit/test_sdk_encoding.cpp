// junction/util/encoding.hpp and random.hpp: base64, base64url, hex and CSPRNG bytes.
#include <junction/util/random.hpp>

#include <doctest/doctest.h>

#include <set>

using namespace junction::util;

TEST_CASE("sdk encoding: base64 follows the RFC 4648 test vectors") {
  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) {
    INFO(plain[i]);
    CHECK(base64_encode(plain[i]) == enc[i]);
    std::string back;
    REQUIRE(base64_decode(enc[i], back));
    CHECK(back == plain[i]);
  }
  std::string out = "stale";
  CHECK_FALSE(base64_decode("Zm9v-_", out));  // url alphabet is not standard base64
  CHECK(out.empty());
  CHECK_FALSE(base64_decode("Z", out));  // one dangling sextet is no byte
  CHECK_FALSE(base64_decode("Zm 9v", out));
}

TEST_CASE("sdk encoding: base64url is unpadded and reads either alphabet") {
  std::string bytes("\xfb\xff\xfe", 3);
  CHECK(base64url_encode(bytes) == "-__-");
  CHECK(base64_encode(bytes) == "+//+");
  CHECK(base64url_encode("fo") == "Zm8");
  std::string back;
  REQUIRE(base64url_decode("-__-", back));
  CHECK(back == bytes);
  REQUIRE(base64url_decode("+//+", back));
  CHECK(back == bytes);
  REQUIRE(base64url_decode("Zm8=", back));
  CHECK(back == "fo");
  CHECK_FALSE(base64url_decode("Zm8*", back));
}

TEST_CASE("sdk encoding: hex round trips and refuses odd or foreign text") {
  std::string bytes("\x00\x01\xab\xff", 4);
  CHECK(hex_encode(bytes) == "0001abff");
  std::string back;
  REQUIRE(hex_decode("0001ABff", back));
  CHECK(back == bytes);
  CHECK_FALSE(hex_decode("abc", back));
  CHECK(back.empty());
  CHECK_FALSE(hex_decode("zz", back));
  CHECK(hex_digit('F') == 15);
  CHECK(hex_digit('g') == -1);
}

TEST_CASE("sdk random: bytes of the asked length, different each time") {
  std::string a, b, h;
  REQUIRE(random_bytes(32, a));
  REQUIRE(random_bytes(32, b));
  CHECK(a.size() == 32);
  CHECK(a != b);  // 2^-256 chance of a false failure
  REQUIRE(random_bytes(0, a));
  CHECK(a.empty());
  REQUIRE(random_hex(8, h));
  CHECK(h.size() == 16);
  std::string raw;
  CHECK(hex_decode(h, raw));
}
