// sdk/rtmp AMF0: every type round trips, encoder bytes match the spec's layout, a real connect
// command decodes, every truncation and bad marker is refused with a reason, nesting is bounded.
#include <doctest/doctest.h>

#include <junction/rtmp/amf0.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace junction::rtmp;
using amf0::Value;

namespace {

Value roundtrip(const Value& v) {
  std::vector<uint8_t> buf;
  amf0::encode(buf, v);
  Value back;
  size_t pos = 0;
  const char* err = nullptr;
  REQUIRE(amf0::decode(buf.data(), buf.size(), &pos, &back, &err));
  CHECK(pos == buf.size());
  return back;
}

Value sample() {
  return Value::object({
      {"app", Value::str("live")},
      {"flashVer", Value::str("FMLE/3.0")},
      {"audioCodecs", Value::num(3575)},
      {"fpad", Value::boolean_(false)},
      {"nested", Value::ecma_array({{"a", Value::num(-1.5)}, {"b", Value::null()}, {"c", Value::undefined()}})},
      {"list", Value::strict_array({Value::num(1), Value::str(""), Value::object()})},
      {"", Value::str("empty key")},
  });
}

}  // namespace

TEST_CASE("amf0: scalars round trip, including edge numbers and long strings") {
  for (double d : {0.0, -0.0, 1.0, -1.0, 3.14159, 1e308, -1e-308, std::numeric_limits<double>::infinity(),
                   std::numeric_limits<double>::quiet_NaN(), 4294967296.0}) {
    CHECK(roundtrip(Value::num(d)) == Value::num(d));
  }
  CHECK(roundtrip(Value::boolean_(true)) == Value::boolean_(true));
  CHECK(roundtrip(Value::boolean_(false)) == Value::boolean_(false));
  CHECK(roundtrip(Value::null()) == Value::null());
  CHECK(roundtrip(Value::undefined()) == Value::undefined());
  CHECK(roundtrip(Value::str("")) == Value::str(""));
  std::string big(70000, 'x');  // over 65535: a long string (0x0C, 32-bit length)
  std::vector<uint8_t> buf;
  amf0::put_string(buf, big);
  CHECK(buf[0] == amf0::kLongString);
  CHECK(buf.size() == 1 + 4 + big.size());
  CHECK(roundtrip(Value::str(big)).string == big);
  CHECK_FALSE(Value::num(1) == Value::str("1"));
}

TEST_CASE("amf0: objects, ECMA arrays and strict arrays round trip in order") {
  Value v = sample();
  Value back = roundtrip(v);
  CHECK(back == v);
  REQUIRE(back.props.size() == 7);
  CHECK(back.props[0].first == "app");
  CHECK(back.get_string("app") == "live");
  CHECK(back.get_number("audioCodecs") == 3575);
  CHECK(back.get_number("missing", 7) == 7);
  CHECK(back.get_string("audioCodecs", "fallback") == "fallback");  // a number, not a string
  REQUIRE(back.get("nested"));
  CHECK(back.get("nested")->type == amf0::Type::EcmaArray);
  CHECK(back.get("list")->items.size() == 3);
}

TEST_CASE("amf0: encoder bytes follow the spec") {
  std::vector<uint8_t> b;
  amf0::put_number(b, 1.0);
  CHECK(b == std::vector<uint8_t>{0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0});
  b.clear();
  amf0::put_string(b, "connect");
  CHECK(b == std::vector<uint8_t>{0x02, 0x00, 0x07, 'c', 'o', 'n', 'n', 'e', 'c', 't'});
  b.clear();
  amf0::put_object_begin(b);
  amf0::put_key(b, "a");
  amf0::put_boolean(b, true);
  amf0::put_object_end(b);
  CHECK(b == std::vector<uint8_t>{0x03, 0x00, 0x01, 'a', 0x01, 0x01, 0x00, 0x00, 0x09});
  b.clear();
  amf0::put_ecma_array_begin(b, 2);
  amf0::put_object_end(b);
  CHECK(b == std::vector<uint8_t>{0x08, 0, 0, 0, 2, 0, 0, 9});
}

TEST_CASE("amf0: a server's _result for connect decodes (hand-built bytes)") {
  // "_result", 1, {fmsVer: "FMS/3,0,1,123", capabilities: 31}, {level: "status", code: "...Success"}
  std::vector<uint8_t> b = {0x02, 0x00, 0x07, '_', 'r', 'e', 's', 'u', 'l', 't', 0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0};
  auto key = [&](const char* k) {
    std::string s(k);
    b.push_back(0);
    b.push_back(static_cast<uint8_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
  };
  auto str = [&](const char* v) {
    std::string s(v);
    b.push_back(2);
    b.push_back(0);
    b.push_back(static_cast<uint8_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
  };
  b.push_back(3);
  key("fmsVer");
  str("FMS/3,0,1,123");
  key("capabilities");
  b.insert(b.end(), {0x00, 0x40, 0x3F, 0, 0, 0, 0, 0, 0});  // 31.0
  b.insert(b.end(), {0, 0, 9});
  b.push_back(3);
  key("level");
  str("status");
  key("code");
  str("NetConnection.Connect.Success");
  b.insert(b.end(), {0, 0, 9});
  std::vector<Value> vals;
  const char* err = nullptr;
  REQUIRE(amf0::decode_all(b.data(), b.size(), &vals, &err));
  REQUIRE(vals.size() == 4);
  CHECK(vals[0] == Value::str("_result"));
  CHECK(vals[1] == Value::num(1));
  CHECK(vals[2].get_number("capabilities") == 31);
  CHECK(vals[3].get_string("code") == "NetConnection.Connect.Success");
}

TEST_CASE("amf0: every truncation of a valid encoding is refused with a reason") {
  std::vector<uint8_t> buf;
  amf0::encode(buf, sample());
  for (size_t n = 0; n < buf.size(); ++n) {
    Value v;
    size_t pos = 0;
    const char* err = nullptr;
    CHECK_FALSE(amf0::decode(buf.data(), n, &pos, &v, &err));
    CHECK(err != nullptr);
  }
}

TEST_CASE("amf0: bad markers, stray end markers, absurd counts and deep nesting are refused") {
  auto refused = [](std::vector<uint8_t> b) {
    std::vector<Value> vals;
    const char* err = nullptr;
    bool ok = amf0::decode_all(b.data(), b.size(), &vals, &err);
    return !ok && err != nullptr;
  };
  CHECK(refused({0x11}));                        // AVM+ switch: AMF3 not supported here
  CHECK(refused({0x04}));                        // movieclip
  CHECK(refused({0x09}));                        // object end outside an object
  CHECK(refused({0x0A, 0xFF, 0xFF, 0xFF, 0xFF}));  // strict array of 4 billion
  std::vector<uint8_t> deep;
  for (int i = 0; i <= amf0::kMaxDepth + 1; ++i) deep.insert(deep.end(), {0x0A, 0, 0, 0, 1});
  deep.push_back(0x05);
  CHECK(refused(deep));
  // Exactly kMaxDepth levels of nesting are fine.
  std::vector<uint8_t> ok;
  for (int i = 0; i < amf0::kMaxDepth; ++i) ok.insert(ok.end(), {0x0A, 0, 0, 0, 1});
  ok.push_back(0x05);
  CHECK_FALSE(refused(ok));
}

TEST_CASE("amf0: date, reference, typed object decode and re-encode identically") {
  std::vector<uint8_t> b = {0x0B, 0x42, 0x77, 0, 0, 0, 0, 0, 0, 0, 0,   // date + tz
                            0x07, 0x00, 0x02,                          // reference 2
                            0x10, 0x00, 0x01, 'C', 0x00, 0x01, 'k', 0x05, 0x00, 0x00, 0x09};
  std::vector<Value> vals;
  const char* err = nullptr;
  REQUIRE(amf0::decode_all(b.data(), b.size(), &vals, &err));
  REQUIRE(vals.size() == 3);
  CHECK(vals[0].type == amf0::Type::Date);
  CHECK(vals[1].type == amf0::Type::Reference);
  CHECK(vals[1].number == 2);
  CHECK(vals[2].string == "C");
  CHECK(vals[2].get("k")->type == amf0::Type::Null);
  std::vector<uint8_t> again;
  for (const auto& v : vals) amf0::encode(again, v);
  CHECK(again == b);
}
