// junction/util/config.hpp: typed, ranged conf reads that report the first problem once.
#include <junction/util/config.hpp>

#include <doctest/doctest.h>

#include <vector>

using junction::util::ConfigReader;
using nlohmann::json;

TEST_CASE("sdk config: values of the right type and range are read, absent keys keep defaults") {
  std::vector<std::string> reports;
  ConfigReader r(json{{"listen", "127.0.0.1:1"}, {"n", 7}, {"on", false}, {"mode", "strict"}},
                 [&](const std::string& k, const std::string& why) { reports.push_back(k + ": " + why); });
  std::string listen, other = "keep", mode = "symmetric";
  uint32_t n = 0;
  uint64_t absent = 42;
  bool on = true;
  CHECK(r.known_keys({"listen", "n", "on", "mode"}));
  CHECK(r.str("listen", listen, true));
  CHECK(r.str("other", other));
  CHECK(r.integer("n", n, 1, 10));
  CHECK(r.integer("absent", absent, 0, 100));
  CHECK(r.boolean("on", on));
  CHECK(r.choice("mode", mode, {"symmetric", "strict", "off"}));
  CHECK(r.ok());
  CHECK(reports.empty());
  CHECK(listen == "127.0.0.1:1");
  CHECK(other == "keep");
  CHECK(n == 7);
  CHECK(absent == 42);
  CHECK(!on);
  CHECK(mode == "strict");
}

TEST_CASE("sdk config: the first problem is reported once with key and reason") {
  struct Case {
    json conf;
    std::string key, reason;
  };
  const std::vector<Case> cases = {
      {{{"n", -1}}, "n", "must be an integer from 1 to 10, not -1"},
      {{{"n", 11}}, "n", "must be an integer from 1 to 10, not 11"},
      {{{"n", 1.5}}, "n", "must be an integer from 1 to 10"},
      {{{"n", "5"}}, "n", "must be an integer from 1 to 10"},
      {{{"n", 18446744073709551615ull}}, "n", "must be an integer from 1 to 10, not 18446744073709551615"},
      {{{"s", 5}}, "s", "must be a string"},
      {{{"ne", ""}}, "ne", "must be a non-empty string"},
      {{{"b", "yes"}}, "b", "must be true or false"},
      {{{"mode", "some\ntimes\x01"}}, "mode", "must be one of a, b, not 'some\\ntimes\\x01'"},
      {{{"typo", 1}}, "typo", "unknown key (known: n, s, ne, b, mode, net)"},
      {{{"net", 1}}, "net", "must be a table"},
      {{{"net", {{"port", 0}}}}, "net.port", "must be an integer from 1 to 65535, not 0"},
  };
  for (const auto& c : cases) {
    INFO(c.conf.dump());
    int calls = 0;
    std::string key, reason;
    ConfigReader r(c.conf, [&](const std::string& k, const std::string& why) { ++calls, key = k, reason = why; });
    uint32_t n = 3;
    std::string s = "d", ne = "d", mode = "a";
    bool b = true;
    r.known_keys({"n", "s", "ne", "b", "mode", "net"});
    int port = 1;
    auto net = r.table("net");
    net.integer("port", port, 1, 65535);
    r.integer("n", n, 1, 10);
    r.str("s", s);
    r.str("ne", ne, true);
    r.boolean("b", b);
    r.choice("mode", mode, {"a", "b"});
    r.fail("later", "never reported: only the first problem counts");
    CHECK(!r.ok());
    CHECK(calls == 1);
    CHECK(key == c.key);
    CHECK(reason == c.reason);
    REQUIRE(r.error());
    CHECK(r.error()->key == c.key);
    // A refused value leaves the default.
    CHECK(n == 3);
    CHECK(mode == "a");
  }
}

TEST_CASE("sdk config: a conf that is not a table reads as empty") {
  ConfigReader r(json(nullptr));
  uint32_t n = 5;
  CHECK(r.integer("n", n, 0, 9));
  CHECK(r.known_keys({}));
  CHECK(n == 5);
  CHECK(r.ok());
}
