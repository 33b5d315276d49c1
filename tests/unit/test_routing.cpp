// RouteTable: static rules, rewrites, forking, dynamic routes, namespaces.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "routing/route_table.hpp"

using namespace junction;

namespace {

StaticRoute route(std::string match, std::string pattern, std::vector<std::string> targets,
                  Strategy strategy = Strategy::Single, uint32_t timeout_ms = 0,
                  std::string origin = "conf/junction.toml:1") {
  return StaticRoute{std::move(match), std::move(pattern), std::move(targets),
                     strategy,         timeout_ms,         std::move(origin)};
}

// The usual plugins owning their schemes.
void own_namespaces(RouteTable& t) {
  t.set_namespace_owner("intercom", "intercom-json");
  t.set_namespace_owner("xxxcid", "xxxcid-gateway");
  t.set_namespace_owner("gb", "gb28181");
  t.set_namespace_owner("sip", "rest-sip-capture");
}

std::vector<std::string> uris(const Resolution& r) {
  std::vector<std::string> out;
  for (const auto& t : r.targets) out.push_back(t.uri);
  return out;
}

std::string error_of(RouteTable& t, std::vector<StaticRoute> routes) {
  try {
    t.set_static(std::move(routes));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("namespace owner takes a URI nobody else claims, unchanged") {
  RouteTable t;
  own_namespaces(t);
  auto r = t.resolve("intercom:room/101");
  REQUIRE(r);
  CHECK(r->strategy == Strategy::Single);
  REQUIRE(r->targets.size() == 1);
  CHECK(r->targets[0] == RouteTarget{"intercom:room/101", "intercom-json"});
  CHECK(r->via == "namespace 'intercom'");
  CHECK_FALSE(t.resolve("verto:1000"));  // nobody owns verto
  CHECK_FALSE(t.resolve("no-scheme"));   // no scheme at all
  CHECK_FALSE(t.resolve(":empty-scheme"));
  t.clear_namespace("intercom");
  CHECK_FALSE(t.resolve("intercom:room/101"));
  CHECK(t.namespace_owner("gb") == "gb28181");
}

TEST_CASE("exact static route rewrites to another namespace") {
  RouteTable t;
  own_namespaces(t);
  t.set_static({route("exact", "room:101", {"intercom:room/101"})});
  auto r = t.resolve("room:101");
  REQUIRE(r);
  CHECK(uris(*r) == std::vector<std::string>{"intercom:room/101"});
  CHECK(r->targets[0].plugin == "intercom-json");
  CHECK(r->via.find("static exact 'room:101'") != std::string::npos);
  CHECK_FALSE(t.resolve("room:102"));  // exact means exact; no owner for "room"
}

TEST_CASE("prefix: the longest matching prefix wins, ${rest} carries the tail") {
  RouteTable t;
  own_namespaces(t);
  t.set_static({
      route("prefix", "tel:", {"sip:${rest}@trunk"}),
      route("prefix", "tel:+86", {"gb:${rest}"}),
      route("prefix", "tel:+8610", {"intercom:beijing/${rest}"}),
  });
  CHECK(uris(*t.resolve("tel:+1555")) == std::vector<std::string>{"sip:+1555@trunk"});
  CHECK(uris(*t.resolve("tel:+8621999")) == std::vector<std::string>{"gb:21999"});
  CHECK(uris(*t.resolve("tel:+8610123")) == std::vector<std::string>{"intercom:beijing/123"});
  // the URI equal to the prefix: empty rest
  CHECK(uris(*t.resolve("tel:+8610")) == std::vector<std::string>{"intercom:beijing/"});
  CHECK_FALSE(t.resolve("te"));
}

TEST_CASE("regex: whole-string match, conf order, $N and $0 rewrites") {
  RouteTable t;
  own_namespaces(t);
  t.set_static({
      route("regex", R"(door:(\d+)-(\d+))", {"xxxcid:door/$1-$2"}),
      route("regex", R"(door:.*)", {"intercom:lobby"}),
      route("regex", R"(cam:(\d{20}))", {"gb:$1"}),
      route("regex", R"(echo:.*)", {"sip:x@y;orig=$0"}),
      route("regex", R"(n:(\d))", {"intercom:n/${1}0$$"}),
  });
  CHECK(uris(*t.resolve("door:1-1")) == std::vector<std::string>{"xxxcid:door/1-1"});
  CHECK(uris(*t.resolve("door:front")) == std::vector<std::string>{"intercom:lobby"});
  CHECK(uris(*t.resolve("cam:34020000001320000001")) ==
        std::vector<std::string>{"gb:34020000001320000001"});
  CHECK_FALSE(t.resolve("cam:123"));                    // partial matches do not count
  CHECK_FALSE(t.resolve("xcam:34020000001320000001"));  // nor a match inside the string
  CHECK(uris(*t.resolve("echo:z")) == std::vector<std::string>{"sip:x@y;orig=echo:z"});
  CHECK(uris(*t.resolve("n:7")) == std::vector<std::string>{"intercom:n/70$"});
}

TEST_CASE("prefixes with and without a scheme: still the longest wins") {
  RouteTable t;
  own_namespaces(t);
  t.set_static({
      route("prefix", "te", {"intercom:short/${rest}"}),
      route("prefix", "tel:", {"intercom:long/${rest}"}),
      route("prefix", "tel:+1", {"intercom:us/${rest}"}),
  });
  CHECK(uris(*t.resolve("tel:+1555")) == std::vector<std::string>{"intercom:us/555"});
  CHECK(uris(*t.resolve("tel:+44")) == std::vector<std::string>{"intercom:long/+44"});
  CHECK(uris(*t.resolve("telex:9")) == std::vector<std::string>{"intercom:short/lex:9"});
  CHECK(uris(*t.resolve("tea")) == std::vector<std::string>{"intercom:short/a"});
}

TEST_CASE("regex rules skipped by their literal prefix still match what they should") {
  RouteTable t;
  own_namespaces(t);
  t.set_static({
      route("regex", R"(^door:(\d+))", {"intercom:caret/$1"}),
      route("regex", R"(ab?c:(.*))", {"intercom:optional/$1"}),
      route("regex", R"(x{0}yz:(.*))", {"intercom:counted/$1"}),
      route("regex", R"(gate:1|lift:(\d+))", {"intercom:alt/$1"}),
      route("regex", R"((cam|nvr):(\d+))", {"intercom:group/$2"}),
      route("regex", R"(a\.b:(.*))", {"intercom:escaped/$1"}),
  });
  CHECK(uris(*t.resolve("door:7")) == std::vector<std::string>{"intercom:caret/7"});
  CHECK(uris(*t.resolve("ac:1")) == std::vector<std::string>{"intercom:optional/1"});
  CHECK(uris(*t.resolve("abc:2")) == std::vector<std::string>{"intercom:optional/2"});
  CHECK(uris(*t.resolve("yz:3")) == std::vector<std::string>{"intercom:counted/3"});
  CHECK(uris(*t.resolve("lift:4")) == std::vector<std::string>{"intercom:alt/4"});
  CHECK(uris(*t.resolve("nvr:5")) == std::vector<std::string>{"intercom:group/5"});
  CHECK(uris(*t.resolve("a.b:6")) == std::vector<std::string>{"intercom:escaped/6"});
  CHECK_FALSE(t.resolve("axb:6"));
}

TEST_CASE("order: exact before prefix before regex before dynamic before namespace") {
  RouteTable t;
  own_namespaces(t);
  t.add_dynamic("intercom:room/1", "device-registrar");
  CHECK(t.resolve("intercom:room/1")->targets[0].plugin == "device-registrar");  // dynamic > ns
  t.set_static({route("regex", "intercom:room/.*", {"xxxcid:regex"})});
  CHECK(t.resolve("intercom:room/1")->targets[0].uri == "xxxcid:regex");  // static > dynamic
  t.set_static({route("regex", "intercom:room/.*", {"xxxcid:regex"}),
                route("prefix", "intercom:room/", {"xxxcid:prefix"})});
  CHECK(t.resolve("intercom:room/1")->targets[0].uri == "xxxcid:prefix");
  t.set_static({route("regex", "intercom:room/.*", {"xxxcid:regex"}),
                route("prefix", "intercom:room/", {"xxxcid:prefix"}),
                route("exact", "intercom:room/1", {"xxxcid:exact"})});
  CHECK(t.resolve("intercom:room/1")->targets[0].uri == "xxxcid:exact");
}

TEST_CASE("fork targets resolve recursively; nested forks flatten; duplicates go") {
  RouteTable t;
  own_namespaces(t);
  t.add_dynamic("sip:alice@x", "verto-ws");
  t.set_static({
      route("exact", "room:101", {"intercom:room/101", "xxxcid:room/101"}, Strategy::Fork, 0,
            "routes.toml:1"),
      route("exact", "group:all", {"room:101", "sip:alice@x", "intercom:room/101"}, Strategy::Fork,
            30000, "routes.toml:2"),
  });
  auto room = t.resolve("room:101");
  REQUIRE(room);
  CHECK(room->strategy == Strategy::Fork);
  REQUIRE(room->targets.size() == 2);
  CHECK(room->targets[0] == RouteTarget{"intercom:room/101", "intercom-json"});
  CHECK(room->targets[1] == RouteTarget{"xxxcid:room/101", "xxxcid-gateway"});

  auto all = t.resolve("group:all");
  REQUIRE(all);
  CHECK(all->strategy == Strategy::Fork);
  CHECK(all->timeout_ms == 30000);
  // room:101's two targets flattened in, alice via her dynamic route, the repeat dropped
  CHECK(uris(*all) ==
        std::vector<std::string>{"intercom:room/101", "xxxcid:room/101", "sip:alice@x"});
  CHECK(all->targets[2].plugin == "verto-ws");
  CHECK(all->via.find("routes.toml:2") != std::string::npos);
}

TEST_CASE("a single rule is an alias: it takes on what its target resolves to") {
  RouteTable t;
  own_namespaces(t);
  t.set_static({
      route("exact", "front-desk", {"desk:1"}),
      route("exact", "desk:1", {"intercom:a", "intercom:b"}, Strategy::Hunt, 5000),
  });
  auto r = t.resolve("front-desk");
  REQUIRE(r);
  CHECK(r->strategy == Strategy::Hunt);
  CHECK(r->timeout_ms == 5000);
  CHECK(uris(*r) == std::vector<std::string>{"intercom:a", "intercom:b"});
}

TEST_CASE("hunt keeps target order and per-target timeout") {
  RouteTable t;
  own_namespaces(t);
  t.set_static({route("prefix", "support:", {"sip:agent1@x", "sip:agent2@x", "intercom:desk"},
                      Strategy::Hunt, 15000)});
  auto r = t.resolve("support:line1");
  REQUIRE(r);
  CHECK(r->strategy == Strategy::Hunt);
  CHECK(r->timeout_ms == 15000);
  CHECK(uris(*r) == std::vector<std::string>{"sip:agent1@x", "sip:agent2@x", "intercom:desk"});
}

TEST_CASE("targets that resolve to nothing are dropped; none left is no route") {
  RouteTable t;
  t.set_namespace_owner("intercom", "intercom-json");
  t.set_static({route("exact", "room:1", {"nowhere:1", "intercom:1"}, Strategy::Fork),
                route("exact", "room:2", {"nowhere:1", "nowhere:2"}, Strategy::Fork)});
  CHECK(uris(*t.resolve("room:1")) == std::vector<std::string>{"intercom:1"});
  CHECK_FALSE(t.resolve("room:2"));
  CHECK_FALSE(t.lookup_json("room:2"));
}

TEST_CASE("loop protection: a rule is used once per path") {
  RouteTable t;
  own_namespaces(t);
  SUBCASE("rewrite into its own namespace") {
    t.set_static({route("prefix", "sip:", {"sip:${rest};via=gw"})});
    auto r = t.resolve("sip:bob@x");
    REQUIRE(r);
    CHECK(r->targets[0] == RouteTarget{"sip:bob@x;via=gw", "rest-sip-capture"});
  }
  SUBCASE("two rules pointing at each other") {
    t.set_static({route("prefix", "a:", {"b:${rest}"}), route("prefix", "b:", {"a:${rest}"})});
    t.set_namespace_owner("a", "plugin-a");
    auto r = t.resolve("a:1");
    REQUIRE(r);
    CHECK(r->targets[0] == RouteTarget{"a:1", "plugin-a"});  // a: -> b: -> a:, then the owner
  }
  SUBCASE("a skipped rule lets a shorter prefix apply") {
    t.set_static({route("prefix", "intercom:room/", {"intercom:${rest}"}),
                  route("prefix", "intercom:", {"xxxcid:${rest}"})});
    // intercom:room/7 -> intercom:7 (first rule), whose longest match is now the second rule
    CHECK(uris(*t.resolve("intercom:room/7")) == std::vector<std::string>{"xxxcid:7"});
  }
  SUBCASE("depth is limited to kMaxDepth chained rules") {
    std::vector<StaticRoute> chain;
    for (int i = 0; i < RouteTable::kMaxDepth; ++i)
      chain.push_back(route("exact", "hop:" + std::to_string(i), {"hop:" + std::to_string(i + 1)}));
    t.set_namespace_owner("hop", "hopper");
    t.set_static(chain);
    // 8 rules then the namespace: fine
    CHECK(t.resolve("hop:0")->targets[0].uri == "hop:" + std::to_string(RouteTable::kMaxDepth));
    chain.push_back(route("exact", "hop:8", {"hop:9"}));
    t.set_static(chain);
    CHECK_FALSE(t.resolve("hop:0"));  // a 9th rule is one too many
    CHECK(t.resolve("hop:1"));
  }
}

TEST_CASE("set_static validation names the origin and keeps the old table") {
  RouteTable t;
  own_namespaces(t);
  t.set_static({route("exact", "room:1", {"intercom:1"})});

  auto bad = [&](StaticRoute r) {
    r.origin = "conf/junction.toml:42";
    std::string err = error_of(t, {route("exact", "room:2", {"intercom:2"}), r});
    CAPTURE(err);
    CHECK(err.rfind("conf/junction.toml:42: ", 0) == 0);
    // unchanged: room:1 still routes, room:2 (valid, in the same batch) does not
    CHECK(t.resolve("room:1"));
    CHECK_FALSE(t.resolve("room:2"));
    CHECK(t.static_routes().size() == 1);
    return err;
  };
  CHECK(bad(route("regex", "door:(\\d+", {"x:$1"})).find("bad regex") != std::string::npos);
  CHECK(bad(route("glob", "door:*", {"x:1"})).find("unknown match 'glob'") != std::string::npos);
  CHECK(bad(route("exact", "door:1", {})).find("no targets") != std::string::npos);
  CHECK(bad(route("exact", "door:1", {"a:1", "b:1"})).find("single") != std::string::npos);
  CHECK(bad(route("exact", "", {"a:1"})).find("empty pattern") != std::string::npos);
  CHECK(bad(route("exact", "door:1", {""})).find("empty target") != std::string::npos);
  CHECK(bad(route("regex", "d:(\\d)", {"a:$2"})).find("1 group") != std::string::npos);
  CHECK(bad(route("exact", "d:1", {"a:$1"})).find("regex route") != std::string::npos);
  CHECK(bad(route("exact", "d:1", {"a:${rest}"})).find("prefix route") != std::string::npos);
  CHECK(bad(route("prefix", "d:", {"a:${tail}"})).find("unknown reference") != std::string::npos);
  CHECK(bad(route("prefix", "d:", {"a:$"})).find("'$' at the end") != std::string::npos);
  CHECK(bad(route("exact", "room:2", {"a:1"}))
            .find("duplicate exact pattern 'room:2' (first at conf/junction.toml:1)") !=
        std::string::npos);
  CHECK(error_of(t, {route("prefix", "tel:", {"a:1"}, Strategy::Single, 0, "f:1"),
                     route("prefix", "tel:", {"b:1"}, Strategy::Single, 0, "f:2")}) ==
        "f:2: duplicate prefix pattern 'tel:' (first at f:1)");
}

TEST_CASE("dynamic routes: conflicts between plugins, re-registration, removal") {
  RouteTable t;
  jn_handle h = t.add_dynamic("sip:alice@x", "verto-ws");
  CHECK(h != JN_INVALID_HANDLE);
  CHECK(t.add_dynamic("sip:alice@x", "verto-ws") == h);  // same plugin: same handle
  CHECK(t.add_dynamic("sip:alice@x", "gb28181") == JN_INVALID_HANDLE);
  jn_handle out = 1;
  CHECK(t.add_dynamic("sip:alice@x", "gb28181", &out) == JN_ERR_EXISTS);
  CHECK(out == JN_INVALID_HANDLE);
  CHECK(t.add_dynamic("", "gb28181", &out) == JN_ERR_INVALID);
  CHECK(t.dynamic_count() == 1);
  CHECK(t.resolve("sip:alice@x")->targets[0].plugin == "verto-ws");

  CHECK(t.remove_dynamic(h, "gb28181") == JN_ERR_INVALID);  // not theirs
  CHECK(t.remove_dynamic(h, "verto-ws") == JN_OK);
  CHECK_FALSE(t.remove_dynamic(h));  // stale
  CHECK(t.remove_dynamic(h, "verto-ws") == JN_ERR_NOT_FOUND);
  CHECK_FALSE(t.resolve("sip:alice@x"));

  // now the other plugin may take it, and the old handle does not name the new route
  jn_handle h2 = t.add_dynamic("sip:alice@x", "gb28181");
  CHECK(h2 != JN_INVALID_HANDLE);
  CHECK(h2 != h);
  CHECK_FALSE(t.remove_dynamic(h));
  CHECK(t.dynamic_count() == 1);
}

TEST_CASE("many dynamic routes each resolve to their own plugin") {
  RouteTable t;
  for (int i = 0; i < 10000; ++i) t.add_dynamic("dev:" + std::to_string(i), i % 2 ? "odd" : "even");
  CHECK(t.dynamic_count() == 10000);
  CHECK(t.resolve("dev:4242")->targets[0] == RouteTarget{"dev:4242", "even"});
  CHECK(t.resolve("dev:9999")->targets[0].plugin == "odd");
  CHECK_FALSE(t.resolve("dev:10000"));
}

TEST_CASE("remove_plugin drops its dynamic routes and namespaces only") {
  RouteTable t;
  own_namespaces(t);
  t.set_namespace_owner("room", "xxxcid-gateway");
  t.add_dynamic("sip:a@x", "xxxcid-gateway");
  t.add_dynamic("sip:b@x", "xxxcid-gateway");
  jn_handle keep = t.add_dynamic("sip:c@x", "verto-ws");
  CHECK(t.remove_plugin("xxxcid-gateway") == 2);
  CHECK(t.dynamic_count() == 1);
  CHECK_FALSE(t.namespace_owner("xxxcid"));
  CHECK_FALSE(t.namespace_owner("room"));
  CHECK(t.namespace_owner("intercom") == "intercom-json");
  CHECK(t.resolve("sip:a@x")->targets[0].plugin == "rest-sip-capture");  // back to the owner
  CHECK(t.resolve("sip:c@x")->targets[0].plugin == "verto-ws");
  CHECK(t.remove_dynamic(keep));
  CHECK(t.remove_plugin("never-loaded") == 0);
}

TEST_CASE("lookup_json and to_json") {
  RouteTable t;
  own_namespaces(t);
  t.set_static({route("exact", "room:101", {"intercom:room/101", "xxxcid:room/101"}, Strategy::Fork,
                      20000, "conf/junction.toml:7")});
  jn_handle h = t.add_dynamic("sip:alice@x", "verto-ws");

  auto text = t.lookup_json("room:101");
  REQUIRE(text);
  auto j = nlohmann::json::parse(*text);
  CHECK(j["strategy"] == "fork");
  CHECK(j["timeout_ms"] == 20000);
  CHECK(j["via"].get<std::string>().find("conf/junction.toml:7") != std::string::npos);
  REQUIRE(j["targets"].size() == 2);
  CHECK(j["targets"][1]["uri"] == "xxxcid:room/101");
  CHECK(j["targets"][1]["plugin"] == "xxxcid-gateway");

  auto all = t.to_json();
  REQUIRE(all["static"].size() == 1);
  CHECK(all["static"][0]["match"] == "exact");
  CHECK(all["static"][0]["strategy"] == "fork");
  CHECK(all["static"][0]["origin"] == "conf/junction.toml:7");
  CHECK(all["static"][0]["targets"].size() == 2);
  REQUIRE(all["dynamic"].size() == 1);
  CHECK(all["dynamic"][0]["id"] == h);
  CHECK(all["dynamic"][0]["uri"] == "sip:alice@x");
  CHECK(all["dynamic"][0]["plugin"] == "verto-ws");
  CHECK(all["namespaces"]["gb"] == "gb28181");
}

TEST_CASE("strategy names") {
  CHECK(to_string(Strategy::Hunt) == "hunt");
  CHECK(strategy_from_string("fork") == Strategy::Fork);
  CHECK_FALSE(strategy_from_string("ring-all"));
}
