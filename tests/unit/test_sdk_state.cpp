// junction/util/state.hpp: one versioned, tolerant state envelope for save_state/restore_state.
#include <junction/util/state.hpp>

#include <doctest/doctest.h>

#include <map>

using namespace junction::util;

TEST_CASE("sdk state: fields round trip in JSON and CBOR") {
  for (auto enc : {StateEncoding::Json, StateEncoding::Cbor}) {
    StateOut out;
    out.set("sock", uint64_t{42}).set("name", "x");
    out["routes"] = std::map<std::string, int>{{"a", 1}};
    std::string data = out.encode(enc);
    StateIn in;
    std::string error;
    REQUIRE(in.parse(1, 1, 1, data, error, enc) == JN_OK);
    CHECK(in.schema() == 1);
    CHECK(in.get<uint64_t>("sock", 0) == 42);
    CHECK(in.get<std::string>("name", "") == "x");
    CHECK(in["routes"]["a"] == 1);
  }
}

TEST_CASE("sdk state: a missing or mistyped field keeps the default") {
  StateIn in;
  std::string error;
  REQUIRE(in.parse(2, 1, 2, R"({"old":1,"n":"not a number"})", error) == JN_OK);
  uint64_t n = 7;
  CHECK(!in.read("n", n));
  CHECK(n == 7);
  CHECK(in.get<uint64_t>("added_later", 5) == 5);
  CHECK(in["added_later"].is_null());
  CHECK(in.get<int>("old", 0) == 1);
}

TEST_CASE("sdk state: a schema out of range or data that is not an object is refused with a reason") {
  StateIn in;
  std::string error;
  CHECK(in.parse(3, 1, 2, "{}", error) == JN_ERR_ABI);
  CHECK(error == "state schema 3 is not one this build reads (1..2)");
  error.clear();
  CHECK(in.parse(1, 1, 1, "[1,2]", error) == JN_ERR_INVALID);
  CHECK(error == "state is not the JSON object this plugin writes");
  CHECK(in.parse(1, 1, 1, "\xff\x00", error, StateEncoding::Cbor) == JN_ERR_INVALID);
  CHECK(error == "state is not the CBOR object this plugin writes");
  CHECK(in.parse(1, 1, 1, "", error) == JN_OK);  // nothing saved: nothing to restore
  CHECK(in.get<int>("x", 3) == 3);
}

TEST_CASE("sdk state: text that is not UTF-8 does not make save_state throw") {
  StateOut out;
  out.set("reason", std::string("bad \xff byte"));
  std::string data;
  CHECK_NOTHROW(data = out.encode());
  StateIn in;
  std::string error;
  REQUIRE(in.parse(1, 1, 1, data, error) == JN_OK);
  CHECK(in.get<std::string>("reason", "") == "bad \xef\xbf\xbd byte");
}
