// CallManager (with fake endpoints and a manual clock) and the jn_call_event conversion.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include <cstddef>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "routing/call_event_abi.hpp"
#include "routing/call_manager.hpp"
#include "routing/route_table.hpp"

using namespace junction;

namespace {

struct Delivered {
  std::string plugin;
  jn_handle leg;
  uint64_t cookie;
  CallEvent ev;
};

// Records every delivery; `react` lets a test play a plugin answering from inside on_call.
struct FakeEndpoints : CallEndpoints {
  std::vector<Delivered> log;
  std::function<void(const Delivered&)> react;

  void deliver(const std::string& plugin, jn_handle leg, uint64_t cookie,
               const CallEvent& ev) override {
    log.push_back({plugin, leg, cookie, ev});
    if (react) react(Delivered{plugin, leg, cookie, ev});
  }
  std::vector<Delivered> take() { return std::exchange(log, {}); }
};

// Timers fire only when the test advances the clock.
struct FakeTimers : CallTimers {
  uint64_t now = 1000;
  uint64_t next_id = 1;
  std::map<uint64_t, std::pair<uint64_t, std::function<void()>>> armed;  // id -> (due, fn)

  uint64_t start(uint64_t delay_ms, std::function<void()> fn) override {
    armed[next_id] = {now + delay_ms, std::move(fn)};
    return next_id++;
  }
  void cancel(uint64_t id) override { armed.erase(id); }
  uint64_t now_ms() override { return now; }

  void advance(uint64_t ms) {
    const uint64_t until = now + ms;
    for (;;) {
      auto next = armed.end();
      for (auto it = armed.begin(); it != armed.end(); ++it)
        if (it->second.first <= until &&
            (next == armed.end() || it->second.first < next->second.first))
          next = it;
      if (next == armed.end()) break;
      now = next->second.first;
      auto fn = std::move(next->second.second);
      armed.erase(next);
      fn();
    }
    now = until;
  }
};

const std::string kDoor = "xxxcid-gateway";
const std::string kScreen = "intercom-json";
const std::string kBrowser = "verto-ws";

struct Fixture {
  RouteTable routes;
  FakeEndpoints ep;
  FakeTimers timers;
  std::vector<nlohmann::json> cdrs;
  CallManager calls{routes, ep, timers, [this](const nlohmann::json& j) { cdrs.push_back(j); }};

  Fixture() {
    routes.set_namespace_owner("intercom", kScreen);
    routes.set_namespace_owner("xxxcid", kDoor);
    routes.set_namespace_owner("sip", kBrowser);
  }

  static CallEvent offer(std::string from, std::string to) {
    CallEvent ev;
    ev.type = JN_CALL_OFFER;
    ev.from = std::move(from);
    ev.to = std::move(to);
    MediaStream audio;
    audio.kind = JN_MEDIA_AUDIO;
    audio.format = "PCMA";
    audio.payload_type = 8;
    audio.clock_rate = 8000;
    audio.channels = 1;
    audio.transport = "rtp/avp";
    audio.ssrc = 0x1234;
    ev.media = std::vector<MediaStream>{audio};
    return ev;
  }
  static CallEvent event(uint32_t type, int32_t code = 0, std::string reason = {}) {
    CallEvent ev;
    ev.type = type;
    ev.code = code;
    ev.reason = std::move(reason);
    return ev;
  }
  static CallEvent info(std::string type, std::string body) {
    CallEvent ev = event(JN_CALL_INFO);
    ev.info_type = std::move(type);
    ev.info_body = std::move(body);
    return ev;
  }
  static CallEvent dtmf(std::string digits) {
    CallEvent ev = event(JN_CALL_DTMF);
    ev.dtmf = std::move(digits);
    return ev;
  }

  // Door calls `to`; returns the A-leg. The B-leg offers are left in ep.log.
  jn_handle call_from_door(const std::string& to, uint64_t cookie = 77) {
    jn_handle a = 0;
    REQUIRE(calls.originate(kDoor, cookie, offer("xxxcid:door/1-1", to), &a) == JN_OK);
    REQUIRE(a != JN_INVALID_HANDLE);
    return a;
  }
};

// A call id as the core mints them: "jc-" and 32 lower-case hex digits (128 random bits).
bool is_call_id(const std::string& id) {
  if (id.size() != 35 || id.rfind("jc-", 0) != 0) return false;
  return std::all_of(id.begin() + 3, id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

TEST_CASE_FIXTURE(Fixture, "call ids are random, unique and never reused") {
  std::set<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    jn_handle a = call_from_door("intercom:room/101");
    auto offers = ep.take();
    REQUIRE(offers.size() == 1);
    CHECK(is_call_id(offers[0].ev.call_id));
    ids.insert(offers[0].ev.call_id);
    CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_END, 200)) == JN_OK);
    ep.take();
  }
  CHECK(ids.size() == 200);
  // A fresh CallManager (a restart) starts no sequence again: its first id is not one of these.
  CallManager again{routes, ep, timers, [](const nlohmann::json&) {}};
  jn_handle leg = 0;
  REQUIRE(again.originate(kDoor, 1, Fixture::offer("xxxcid:door/1-1", "intercom:room/101"), &leg) == JN_OK);
  auto first = ep.take();
  REQUIRE(first.size() == 1);
  CHECK(ids.count(first[0].ev.call_id) == 0);
}

TEST_CASE_FIXTURE(Fixture, "a call across two plugins: offer, ringing, answer, dtmf/info, end") {
  timers.now = 5000;
  jn_handle a = call_from_door("intercom:room/101");
  auto offers = ep.take();
  REQUIRE(offers.size() == 1);
  const Delivered& o = offers[0];
  CHECK(o.plugin == kScreen);
  CHECK(o.cookie == 0);  // a new leg: the plugin has not set one yet
  CHECK(o.ev.type == JN_CALL_OFFER);
  const std::string call_id = o.ev.call_id;
  CHECK(is_call_id(call_id));
  CHECK(o.ev.from == "xxxcid:door/1-1");
  CHECK(o.ev.to == "intercom:room/101");
  CHECK(o.ev.target == "intercom:room/101");
  REQUIRE(o.ev.media);
  CHECK((*o.ev.media)[0].format == "PCMA");
  jn_handle b = o.leg;
  CHECK(b != a);
  CHECK(calls.active_calls() == 1);
  CHECK(calls.active_legs() == 2);
  CHECK(calls.leg_plugin(a) == kDoor);
  CHECK(calls.leg_plugin(b) == kScreen);
  CHECK(calls.set_cookie(kScreen, b, 900) == JN_OK);

  // before answer: the caller cannot answer, the callee cannot re-offer
  CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_ANSWER)) == JN_ERR_STATE);
  CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_RINGING)) == JN_ERR_STATE);
  CHECK(calls.send(kScreen, b, Fixture::offer("x:1", "y:1")) == JN_ERR_STATE);
  CHECK(ep.take().empty());

  CHECK(calls.send(kScreen, b, Fixture::event(JN_CALL_RINGING)) == JN_OK);
  CHECK(calls.send(kScreen, b, Fixture::event(JN_CALL_RINGING)) == JN_OK);  // once only
  auto ringing = ep.take();
  REQUIRE(ringing.size() == 1);
  CHECK(ringing[0].plugin == kDoor);
  CHECK(ringing[0].leg == a);
  CHECK(ringing[0].cookie == 77);
  CHECK(ringing[0].ev.type == JN_CALL_RINGING);
  CHECK(ringing[0].ev.call_id == call_id);

  // while ringing: the screen shows the door's video and may already open it
  CHECK(calls.send(kScreen, b, Fixture::info("open-door", R"({"relay":1})")) == JN_OK);
  CHECK(calls.send(kDoor, a, Fixture::dtmf("5")) == JN_OK);
  auto early = ep.take();
  REQUIRE(early.size() == 2);
  CHECK(early[0].leg == a);
  CHECK(early[0].ev.info_type == "open-door");
  CHECK(early[0].ev.info_body == R"({"relay":1})");
  CHECK(early[1].leg == b);
  CHECK(early[1].cookie == 900);
  CHECK(early[1].ev.dtmf == "5");

  timers.now = 7000;
  CallEvent answer = Fixture::event(JN_CALL_ANSWER);
  MediaStream pcma;
  pcma.kind = JN_MEDIA_AUDIO;
  pcma.format = "PCMA";
  pcma.payload_type = 8;
  pcma.clock_rate = 8000;
  pcma.channels = 1;
  pcma.transport = "rtp/avp";
  pcma.ssrc = 0x99;
  answer.media = std::vector<MediaStream>{pcma};
  CHECK(calls.send(kScreen, b, answer) == JN_OK);
  auto answered = ep.take();
  REQUIRE(answered.size() == 1);
  CHECK(answered[0].leg == a);
  CHECK(answered[0].ev.type == JN_CALL_ANSWER);
  CHECK(answered[0].ev.target == "intercom:room/101");
  REQUIRE(answered[0].ev.media);
  CHECK((*answered[0].ev.media)[0].ssrc == 0x99);
  CHECK(timers.armed.empty());  // the ring timer went with the answer

  // after answer: both directions, re-offer, and what is no longer allowed
  CHECK(calls.send(kDoor, a, Fixture::dtmf("#")) == JN_OK);
  CHECK(calls.send(kScreen, b, Fixture::info("unlock", "{}")) == JN_OK);
  CHECK(calls.send(kScreen, b, Fixture::offer("", "")) == JN_OK);  // re-offer (hold, video)
  CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_ANSWER)) == JN_OK);
  CHECK(calls.send(kScreen, b, Fixture::event(JN_CALL_REJECT, 486)) == JN_ERR_STATE);
  CHECK(calls.send(kScreen, b, Fixture::event(JN_CALL_RINGING)) == JN_ERR_STATE);
  auto mid = ep.take();
  REQUIRE(mid.size() == 4);
  CHECK((mid[0].leg == b && mid[0].ev.dtmf == "#"));
  CHECK((mid[1].leg == a && mid[1].ev.info_type == "unlock"));
  CHECK((mid[2].leg == a && mid[2].ev.type == JN_CALL_OFFER && mid[2].ev.call_id == call_id));
  CHECK((mid[3].leg == b && mid[3].ev.type == JN_CALL_ANSWER));
  CHECK(calls.to_json()[0]["state"] == "answered");

  timers.now = 10000;
  SUBCASE("the callee hangs up") {
    CHECK(calls.send(kScreen, b, Fixture::event(JN_CALL_END, 0, "bye")) == JN_OK);
    auto end = ep.take();
    REQUIRE(end.size() == 1);
    CHECK(end[0].leg == a);
    CHECK(end[0].ev.type == JN_CALL_END);
    CHECK(end[0].ev.code == 200);
    CHECK(end[0].ev.reason == "bye");
    REQUIRE(cdrs.size() == 1);
    CHECK(cdrs[0]["ended_by"] == "b");
  }
  SUBCASE("the caller hangs up") {
    CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_END, 200)) == JN_OK);
    auto end = ep.take();
    REQUIRE(end.size() == 1);
    CHECK(end[0].leg == b);
    CHECK(end[0].cookie == 900);
    CHECK(end[0].ev.code == 200);
    REQUIRE(cdrs.size() == 1);
    CHECK(cdrs[0]["ended_by"] == "a");
  }
  const nlohmann::json& cdr = cdrs.at(0);
  CHECK(cdr["call_id"] == call_id);
  CHECK(cdr["from"] == "xxxcid:door/1-1");
  CHECK(cdr["to"] == "intercom:room/101");
  CHECK(cdr["targets"] == nlohmann::json::array({"intercom:room/101"}));
  CHECK(cdr["answered_by"] == "intercom:room/101");
  CHECK(cdr["start_ms"] == 5000);
  CHECK(cdr["answer_ms"] == 7000);
  CHECK(cdr["end_ms"] == 10000);
  CHECK(cdr["duration_ms"] == 3000);
  CHECK(cdr["code"] == 200);

  // both legs are dead now
  CHECK(calls.active_calls() == 0);
  CHECK(calls.active_legs() == 0);
  CHECK(calls.send(kDoor, a, Fixture::dtmf("1")) == JN_ERR_NOT_FOUND);
  CHECK(calls.send(kScreen, b, Fixture::event(JN_CALL_END)) == JN_ERR_NOT_FOUND);
  CHECK(calls.set_cookie(kScreen, b, 1) == JN_ERR_NOT_FOUND);
  CHECK_FALSE(calls.leg_plugin(a));
  CHECK(ep.take().empty());
}

TEST_CASE_FIXTURE(Fixture, "fork: first answer wins, the others end 487") {
  routes.set_static({StaticRoute{"exact",
                                 "room:101",
                                 {"intercom:room/101", "xxxcid:room/101", "sip:alice@x"},
                                 Strategy::Fork,
                                 0,
                                 "t:1"}});
  jn_handle a = call_from_door("room:101");
  auto offers = ep.take();
  REQUIRE(offers.size() == 3);
  CHECK(offers[0].plugin == kScreen);
  CHECK(offers[1].plugin == kDoor);  // the door plugin may be a callee too
  CHECK(offers[2].plugin == kBrowser);
  CHECK(is_call_id(offers[0].ev.call_id));
  for (const auto& o : offers) {
    CHECK(o.ev.to == "room:101");
    CHECK(o.ev.call_id == offers[0].ev.call_id);  // one call, one id on every leg
  }
  CHECK(offers[2].ev.target == "sip:alice@x");

  auto json = calls.to_json();
  REQUIRE(json.size() == 1);
  CHECK(json[0]["state"] == "ringing");
  CHECK(json[0]["strategy"] == "fork");
  REQUIRE(json[0]["legs"].size() == 4);
  CHECK(json[0]["legs"][0]["role"] == "a");
  CHECK(json[0]["legs"][3]["target"] == "sip:alice@x");
  CHECK(json[0]["legs"][3]["plugin"] == kBrowser);

  CHECK(calls.send(kScreen, offers[0].leg, Fixture::event(JN_CALL_RINGING)) == JN_OK);
  CHECK(calls.send(kDoor, offers[1].leg, Fixture::event(JN_CALL_RINGING)) == JN_OK);
  CHECK(ep.take().size() == 1);  // one RINGING to the caller

  CHECK(calls.send(kBrowser, offers[2].leg, Fixture::event(JN_CALL_ANSWER)) == JN_OK);
  auto after = ep.take();
  REQUIRE(after.size() == 3);
  for (int i = 0; i < 2; ++i) {
    CHECK(after[i].leg == offers[i].leg);
    CHECK(after[i].ev.type == JN_CALL_END);
    CHECK(after[i].ev.code == 487);
    CHECK(after[i].ev.reason == "answered elsewhere");
  }
  CHECK(after[2].leg == a);
  CHECK(after[2].ev.type == JN_CALL_ANSWER);
  CHECK(after[2].ev.target == "sip:alice@x");
  CHECK(calls.active_legs() == 2);

  // a late answer from a loser: its END has been delivered, the leg is gone
  CHECK(calls.send(kScreen, offers[0].leg, Fixture::event(JN_CALL_ANSWER)) == JN_ERR_NOT_FOUND);

  CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_END)) == JN_OK);
  REQUIRE(cdrs.size() == 1);
  CHECK(cdrs[0]["answered_by"] == "sip:alice@x");
  CHECK(cdrs[0]["targets"].size() == 3);
}

TEST_CASE_FIXTURE(Fixture, "fork: every branch rejects; busy is what the caller hears") {
  routes.set_static({StaticRoute{"exact",
                                 "room:101",
                                 {"intercom:room/101", "xxxcid:room/101", "sip:alice@x"},
                                 Strategy::Fork,
                                 0,
                                 "t:1"}});
  jn_handle a = call_from_door("room:101");
  auto offers = ep.take();
  REQUIRE(offers.size() == 3);
  CHECK(calls.send(kScreen, offers[0].leg, Fixture::event(JN_CALL_REJECT, 603, "decline")) ==
        JN_OK);
  CHECK(calls.send(kDoor, offers[1].leg, Fixture::event(JN_CALL_REJECT, 486, "busy here")) ==
        JN_OK);
  CHECK(ep.take().empty());  // still one branch ringing
  CHECK(calls.active_calls() == 1);
  CHECK(calls.send(kBrowser, offers[2].leg, Fixture::event(JN_CALL_REJECT, 480, "offline")) ==
        JN_OK);
  auto rejected = ep.take();
  REQUIRE(rejected.size() == 1);
  CHECK(rejected[0].leg == a);
  CHECK(rejected[0].ev.type == JN_CALL_REJECT);
  CHECK(rejected[0].ev.code == 486);
  CHECK(calls.active_calls() == 0);
  CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_END)) == JN_ERR_NOT_FOUND);
  REQUIRE(cdrs.size() == 1);
  CHECK(cdrs[0]["code"] == 486);
  CHECK(cdrs[0]["ended_by"] == "b");
  CHECK(cdrs[0]["answered_by"].is_null());
  CHECK(cdrs[0]["answer_ms"].is_null());
  CHECK(cdrs[0]["duration_ms"] == 0);
}

TEST_CASE_FIXTURE(Fixture, "fork with nobody busy: the last code") {
  routes.set_static(
      {StaticRoute{"exact", "pair", {"intercom:1", "intercom:2"}, Strategy::Fork, 0, "t:1"}});
  jn_handle a = call_from_door("pair");
  auto offers = ep.take();
  calls.send(kScreen, offers[1].leg, Fixture::event(JN_CALL_REJECT, 603, "decline"));
  calls.send(kScreen, offers[0].leg, Fixture::event(JN_CALL_REJECT, 404, "gone"));
  auto r = ep.take();
  REQUIRE(r.size() == 1);
  CHECK(r[0].leg == a);
  CHECK(r[0].ev.code == 404);
  CHECK(r[0].ev.reason == "gone");
}

TEST_CASE_FIXTURE(Fixture, "hunt: one target at a time, per-target timeout moves on") {
  routes.set_static({StaticRoute{"exact",
                                 "desk",
                                 {"intercom:1", "sip:agent@x", "xxxcid:guard"},
                                 Strategy::Hunt,
                                 5000,
                                 "t:1"}});
  jn_handle a = call_from_door("desk");
  auto first = ep.take();
  REQUIRE(first.size() == 1);
  CHECK(first[0].ev.target == "intercom:1");
  CHECK(calls.send(kScreen, first[0].leg, Fixture::event(JN_CALL_RINGING)) == JN_OK);
  CHECK(ep.take().size() == 1);

  timers.advance(4999);
  CHECK(ep.take().empty());
  timers.advance(1);
  auto second = ep.take();
  REQUIRE(second.size() == 2);
  CHECK(second[0].leg == first[0].leg);
  CHECK(second[0].ev.type == JN_CALL_END);
  CHECK(second[0].ev.code == 408);
  CHECK(second[1].plugin == kBrowser);
  CHECK(second[1].ev.type == JN_CALL_OFFER);
  CHECK(second[1].ev.target == "sip:agent@x");
  REQUIRE(second[1].ev.media);  // the offer's media reaches later targets too
  CHECK((*second[1].ev.media)[0].format == "PCMA");
  CHECK(calls.send(kScreen, first[0].leg, Fixture::event(JN_CALL_ANSWER)) == JN_ERR_NOT_FOUND);

  // a busy agent: on to the next at once, without waiting for the timer
  CHECK(calls.send(kBrowser, second[1].leg, Fixture::event(JN_CALL_REJECT, 486)) == JN_OK);
  auto third = ep.take();
  REQUIRE(third.size() == 1);
  CHECK(third[0].ev.target == "xxxcid:guard");
  CHECK(third[0].ev.media);

  SUBCASE("the last one answers") {
    timers.advance(3000);
    CHECK(calls.send(kDoor, third[0].leg, Fixture::event(JN_CALL_ANSWER)) == JN_OK);
    auto answer = ep.take();
    REQUIRE(answer.size() == 1);
    CHECK(answer[0].leg == a);
    CHECK(answer[0].ev.type == JN_CALL_ANSWER);
    CHECK(timers.armed.empty());
    timers.advance(100000);
    CHECK(ep.take().empty());
    CHECK(calls.active_calls() == 1);
  }
  SUBCASE("the last one times out too: busy was heard on the way") {
    timers.advance(5000);
    auto last = ep.take();
    REQUIRE(last.size() == 2);
    CHECK(last[0].leg == third[0].leg);
    CHECK(last[0].ev.code == 408);
    CHECK(last[1].leg == a);
    CHECK(last[1].ev.type == JN_CALL_REJECT);
    CHECK(last[1].ev.code == 486);
    REQUIRE(cdrs.size() == 1);
    CHECK(cdrs[0]["ended_by"] == "timeout");
    CHECK(timers.armed.empty());
  }
}

TEST_CASE_FIXTURE(Fixture, "the offer's display name and metadata reach every B-leg, in a fork and in a hunt") {
  for (Strategy strategy : {Strategy::Fork, Strategy::Hunt}) {
    routes.set_static({StaticRoute{"exact", "desk", {"intercom:1", "sip:agent@x"}, strategy, 0, "t:m"}});
    CallEvent o = offer("verto:1001", "desk");
    o.from_name = "Front desk";
    o.headers = {{"Subject", "visitor"}, {"X-Room", "101"}};
    jn_handle a = 0;
    REQUIRE(calls.originate(kBrowser, 5, o, &a) == JN_OK);
    auto offers = ep.take();
    REQUIRE(!offers.empty());
    if (strategy == Strategy::Hunt) {  // the next target gets them too
      REQUIRE(offers.size() == 1);
      CHECK(calls.send(kScreen, offers[0].leg, Fixture::event(JN_CALL_REJECT, 486)) == JN_OK);
      auto next = ep.take();
      REQUIRE(next.size() == 1);
      offers.push_back(next[0]);
    }
    REQUIRE(offers.size() == 2);
    for (const auto& d : offers) {
      CHECK(d.ev.type == JN_CALL_OFFER);
      CHECK(d.ev.from_name == "Front desk");
      REQUIRE(d.ev.headers.size() == 2);
      CHECK(d.ev.headers[0] == std::make_pair(std::string("Subject"), std::string("visitor")));
      CHECK(d.ev.headers[1] == std::make_pair(std::string("X-Room"), std::string("101")));
    }
    CHECK(calls.send(kBrowser, a, Fixture::event(JN_CALL_END, 487)) == JN_OK);
    ep.take();
  }
}

TEST_CASE_FIXTURE(Fixture, "ring timeout ends the whole attempt") {
  calls.set_ring_timeout_ms(30000);
  routes.set_static(
      {StaticRoute{"exact", "pair", {"intercom:1", "intercom:2"}, Strategy::Fork, 0, "t:1"}});
  timers.now = 100;
  jn_handle a = call_from_door("pair");
  auto offers = ep.take();
  REQUIRE(offers.size() == 2);
  calls.send(kScreen, offers[0].leg, Fixture::event(JN_CALL_RINGING));
  ep.take();
  timers.advance(29999);
  CHECK(ep.take().empty());
  timers.advance(1);
  auto out = ep.take();
  REQUIRE(out.size() == 3);
  CHECK((out[0].leg == offers[0].leg && out[0].ev.type == JN_CALL_END && out[0].ev.code == 408));
  CHECK((out[1].leg == offers[1].leg && out[1].ev.type == JN_CALL_END && out[1].ev.code == 408));
  CHECK((out[2].leg == a && out[2].ev.type == JN_CALL_REJECT && out[2].ev.code == 408));
  CHECK(calls.active_calls() == 0);
  CHECK(calls.active_legs() == 0);
  REQUIRE(cdrs.size() == 1);
  CHECK(cdrs[0]["ended_by"] == "timeout");
  CHECK(cdrs[0]["code"] == 408);
  CHECK(cdrs[0]["end_ms"] == 30100);
}

TEST_CASE_FIXTURE(Fixture, "a fork's timeout_ms bounds the ring when shorter") {
  routes.set_static(
      {StaticRoute{"exact", "pair", {"intercom:1", "intercom:2"}, Strategy::Fork, 2000, "t:1"}});
  call_from_door("pair");
  ep.take();
  timers.advance(2000);
  CHECK(ep.take().size() == 3);
}

TEST_CASE_FIXTURE(Fixture, "cancel before answer: every B-leg ends 487") {
  routes.set_static(
      {StaticRoute{"exact", "pair", {"intercom:1", "sip:bob@x"}, Strategy::Fork, 0, "t:1"}});
  jn_handle a = call_from_door("pair");
  auto offers = ep.take();
  CHECK(calls.send(kDoor, a, Fixture::info("snapshot", "{}")) == JN_OK);  // to every branch
  CHECK(ep.take().size() == 2);
  CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_END)) == JN_OK);
  auto out = ep.take();
  REQUIRE(out.size() == 2);
  for (int i = 0; i < 2; ++i) {
    CHECK(out[i].leg == offers[i].leg);
    CHECK(out[i].ev.type == JN_CALL_END);
    CHECK(out[i].ev.code == 487);
  }
  CHECK(calls.send(kScreen, offers[0].leg, Fixture::event(JN_CALL_ANSWER)) == JN_ERR_NOT_FOUND);
  CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_END)) == JN_ERR_NOT_FOUND);
  REQUIRE(cdrs.size() == 1);
  CHECK(cdrs[0]["ended_by"] == "a");
  CHECK(cdrs[0]["code"] == 487);
  CHECK(timers.armed.empty());
}

TEST_CASE_FIXTURE(Fixture, "re-entrant: a plugin answers from inside its OFFER") {
  routes.set_static(
      {StaticRoute{"exact", "pair", {"intercom:1", "sip:bob@x"}, Strategy::Fork, 0, "t:1"}});
  std::vector<jn_status> from_inside;
  ep.react = [&](const Delivered& d) {
    if (d.ev.type != JN_CALL_OFFER) return;
    // both callees try to answer at once; the first wins, the second is doomed but not told
    // off: its END is already queued behind this OFFER
    from_inside.push_back(calls.set_cookie(d.plugin, d.leg, 500));
    from_inside.push_back(calls.send(d.plugin, d.leg, Fixture::event(JN_CALL_RINGING)));
    from_inside.push_back(calls.send(d.plugin, d.leg, Fixture::event(JN_CALL_ANSWER)));
  };
  jn_handle a = 0;
  REQUIRE(calls.originate(kDoor, 42, Fixture::offer("xxxcid:door/1-1", "pair"), &a) == JN_OK);
  CHECK(from_inside == std::vector<jn_status>{JN_OK, JN_OK, JN_OK, JN_OK, JN_ERR_STATE, JN_OK});

  auto log = ep.take();
  REQUIRE(log.size() == 5);
  // in order: both offers (queued by originate), then what the first callee's answer caused
  CHECK((log[0].plugin == kScreen && log[0].ev.type == JN_CALL_OFFER));
  CHECK((log[1].plugin == kBrowser && log[1].ev.type == JN_CALL_OFFER));
  CHECK(log[1].cookie == 0);
  CHECK((log[2].leg == a && log[2].ev.type == JN_CALL_RINGING && log[2].cookie == 42));
  CHECK((log[3].leg == log[1].leg && log[3].ev.type == JN_CALL_END && log[3].ev.code == 487));
  CHECK(log[3].cookie == 500);  // the cookie set from inside the OFFER
  CHECK((log[4].leg == a && log[4].ev.type == JN_CALL_ANSWER && log[4].ev.target == "intercom:1"));
  CHECK(calls.active_legs() == 2);
  CHECK(calls.send(kBrowser, log[1].leg, Fixture::event(JN_CALL_ANSWER)) == JN_ERR_NOT_FOUND);

  // the caller hangs up from inside the ANSWER delivery of a second call
  ep.react = [&](const Delivered& d) {
    if (d.ev.type == JN_CALL_OFFER) calls.send(d.plugin, d.leg, Fixture::event(JN_CALL_ANSWER));
    if (d.ev.type == JN_CALL_ANSWER && d.plugin == kDoor)
      CHECK(calls.send(kDoor, d.leg, Fixture::event(JN_CALL_END, 200, "done")) == JN_OK);
  };
  jn_handle a2 = 0;
  REQUIRE(calls.originate(kDoor, 43, Fixture::offer("xxxcid:door/1-1", "intercom:9"), &a2) ==
          JN_OK);
  auto log2 = ep.take();
  REQUIRE(log2.size() == 3);
  CHECK(log2[0].ev.type == JN_CALL_OFFER);
  CHECK((log2[1].leg == a2 && log2[1].ev.type == JN_CALL_ANSWER));
  CHECK((log2[2].leg == log2[0].leg && log2[2].ev.type == JN_CALL_END &&
         log2[2].ev.reason == "done"));
  CHECK(calls.active_calls() == 1);  // only the first call
}

TEST_CASE_FIXTURE(Fixture, "re-entrant: a callee rejects and the hunt moves on inside the drain") {
  routes.set_static({StaticRoute{
      "exact", "desk", {"intercom:1", "intercom:2", "intercom:3"}, Strategy::Hunt, 5000, "t:1"}});
  jn_handle nested = 0;
  ep.react = [&](const Delivered& d) {
    if (d.plugin == kScreen && d.ev.type == JN_CALL_OFFER && d.ev.target != "intercom:3")
      calls.send(d.plugin, d.leg, Fixture::event(JN_CALL_REJECT, 486));
    if (d.ev.type == JN_CALL_OFFER && d.ev.target == "intercom:3")  // a nested call while ringing
      CHECK(calls.originate(kScreen, 1, Fixture::offer("intercom:3", "sip:guard@x"), &nested) ==
            JN_OK);
  };
  jn_handle a = call_from_door("desk");
  auto log = ep.take();
  REQUIRE(log.size() == 4);
  CHECK(log[0].ev.target == "intercom:1");
  CHECK(log[1].ev.target == "intercom:2");
  CHECK(log[2].ev.target == "intercom:3");
  CHECK(log[3].plugin == kBrowser);
  CHECK(is_call_id(log[3].ev.call_id));
  CHECK(log[3].ev.call_id != log[0].ev.call_id);  // the nested call is another call
  CHECK(calls.active_calls() == 2);
  CHECK(nested != JN_INVALID_HANDLE);
  CHECK(calls.end_plugin_legs(kScreen, 503, "unloaded") == 2);
  auto after = ep.take();
  REQUIRE(after.size() == 2);
  CHECK((after[0].leg == a && after[0].ev.type == JN_CALL_REJECT && after[0].ev.code == 486));
  CHECK(
      (after[1].plugin == kBrowser && after[1].ev.type == JN_CALL_END && after[1].ev.code == 503));
}

TEST_CASE_FIXTURE(Fixture, "re-entrant: a leg that ended hears nothing already queued for it") {
  routes.set_static(
      {StaticRoute{"exact", "pair", {"intercom:1", "sip:bob@x"}, Strategy::Fork, 0, "t:1"}});
  ep.react = [&](const Delivered& d) {
    if (d.plugin == kScreen && d.ev.type == JN_CALL_OFFER) {
      calls.send(d.plugin, d.leg, Fixture::event(JN_CALL_RINGING));
      calls.send(d.plugin, d.leg, Fixture::event(JN_CALL_ANSWER));
    }
    // the door hangs up on hearing RINGING; the ANSWER queued behind it must not follow
    if (d.plugin == kDoor && d.ev.type == JN_CALL_RINGING)
      CHECK(calls.send(kDoor, d.leg, Fixture::event(JN_CALL_END, 0, "changed my mind")) == JN_OK);
  };
  jn_handle a = call_from_door("pair");
  auto log = ep.take();
  REQUIRE(log.size() == 5);
  CHECK((log[0].plugin == kScreen && log[0].ev.type == JN_CALL_OFFER));
  CHECK((log[1].plugin == kBrowser && log[1].ev.type == JN_CALL_OFFER));
  CHECK((log[2].leg == a && log[2].ev.type == JN_CALL_RINGING));
  CHECK((log[3].leg == log[1].leg && log[3].ev.type == JN_CALL_END && log[3].ev.code == 487));
  CHECK((log[4].leg == log[0].leg && log[4].ev.type == JN_CALL_END && log[4].ev.code == 200));
  CHECK(calls.active_legs() == 0);
  REQUIRE(cdrs.size() == 1);
  CHECK(cdrs[0]["ended_by"] == "a");
  CHECK(cdrs[0]["answered_by"] == "intercom:1");
}

TEST_CASE_FIXTURE(Fixture, "a single route's timeout_ms limits how long its one target rings") {
  routes.set_static(
      {StaticRoute{"exact", "gate", {"intercom:gate"}, Strategy::Single, 3000, "t:1"}});
  jn_handle a = call_from_door("gate");
  jn_handle b = ep.take().at(0).leg;
  timers.advance(3000);
  auto out = ep.take();
  REQUIRE(out.size() == 2);
  CHECK((out[0].leg == b && out[0].ev.type == JN_CALL_END && out[0].ev.code == 408));
  CHECK((out[1].leg == a && out[1].ev.type == JN_CALL_REJECT && out[1].ev.code == 408));
  CHECK(timers.armed.empty());
}

TEST_CASE_FIXTURE(Fixture, "refused: wrong plugin, stale or unknown legs, bad offers") {
  jn_handle a = call_from_door("intercom:room/1");
  jn_handle b = ep.take().at(0).leg;
  CHECK(calls.send(kBrowser, a, Fixture::event(JN_CALL_END)) == JN_ERR_INVALID);
  CHECK(calls.send(kDoor, b, Fixture::event(JN_CALL_ANSWER)) == JN_ERR_INVALID);
  CHECK(calls.set_cookie(kDoor, b, 1) == JN_ERR_INVALID);
  CHECK(calls.send(kScreen, b, Fixture::event(0)) == JN_ERR_INVALID);
  CHECK(calls.send(kScreen, b, Fixture::event(99)) == JN_ERR_INVALID);
  CHECK(calls.send(kScreen, JN_INVALID_HANDLE, Fixture::event(JN_CALL_ANSWER)) == JN_ERR_NOT_FOUND);
  CHECK(calls.send(kScreen, b + 1, Fixture::event(JN_CALL_ANSWER)) == JN_ERR_NOT_FOUND);
  CHECK(calls.send(kScreen, b + (1ull << 32), Fixture::event(JN_CALL_ANSWER)) == JN_ERR_NOT_FOUND);
  CHECK(ep.take().empty());
  CHECK(calls.active_legs() == 2);

  // a new call reuses the freed slots with a new generation: old handles stay refused
  calls.send(kScreen, b, Fixture::event(JN_CALL_REJECT, 486));
  ep.take();
  jn_handle a2 = call_from_door("intercom:room/1");
  jn_handle b2 = ep.take().at(0).leg;
  CHECK((a2 & 0xffffffffu) == (a & 0xffffffffu));
  CHECK(a2 != a);
  CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_END)) == JN_ERR_NOT_FOUND);
  CHECK(calls.send(kScreen, b, Fixture::event(JN_CALL_ANSWER)) == JN_ERR_NOT_FOUND);
  CHECK(calls.send(kScreen, b2, Fixture::event(JN_CALL_ANSWER)) == JN_OK);

  jn_handle out = 5;
  CHECK(calls.originate(kDoor, 0, Fixture::offer("xxxcid:door/1", "nowhere:1"), &out) ==
        JN_ERR_NOT_FOUND);
  CHECK(out == JN_INVALID_HANDLE);
  CHECK(calls.originate(kDoor, 0, Fixture::event(JN_CALL_INFO), &out) == JN_ERR_INVALID);
  CHECK(calls.originate(kDoor, 0, Fixture::offer("", "intercom:1"), &out) == JN_ERR_INVALID);
  CHECK(calls.originate(kDoor, 0, Fixture::offer("x:1", ""), &out) == JN_ERR_INVALID);
  CHECK(calls.originate(kDoor, 0, Fixture::offer("x:1", "intercom:1"), nullptr) == JN_ERR_INVALID);
  CHECK(calls.active_calls() == 1);
}

TEST_CASE_FIXTURE(Fixture, "end_plugin_legs: peers get END 503, the plugin hears nothing") {
  SUBCASE("answered call, callee plugin unloaded") {
    jn_handle a = call_from_door("intercom:room/1");
    jn_handle b = ep.take().at(0).leg;
    calls.send(kScreen, b, Fixture::event(JN_CALL_ANSWER));
    ep.take();
    CHECK(calls.end_plugin_legs(kScreen, 503, "plugin unloaded") == 1);
    auto out = ep.take();
    REQUIRE(out.size() == 1);
    CHECK((out[0].leg == a && out[0].ev.type == JN_CALL_END && out[0].ev.code == 503));
    CHECK(out[0].ev.reason == "plugin unloaded");
    REQUIRE(cdrs.size() == 1);
    CHECK(cdrs[0]["ended_by"] == "system");
    CHECK(calls.send(kScreen, b, Fixture::event(JN_CALL_END)) == JN_ERR_NOT_FOUND);
  }
  SUBCASE("ringing fork, one branch's plugin unloaded: the call goes on") {
    routes.set_static(
        {StaticRoute{"exact", "pair", {"intercom:1", "sip:bob@x"}, Strategy::Fork, 0, "t:1"}});
    jn_handle a = call_from_door("pair");
    auto offers = ep.take();
    CHECK(calls.end_plugin_legs(kScreen, 503, "plugin unloaded") == 1);
    CHECK(ep.take().empty());
    CHECK(calls.active_calls() == 1);
    CHECK(calls.send(kBrowser, offers[1].leg, Fixture::event(JN_CALL_ANSWER)) == JN_OK);
    CHECK(ep.take().at(0).leg == a);
  }
  SUBCASE("ringing, caller plugin unloaded") {
    routes.set_static(
        {StaticRoute{"exact", "pair", {"intercom:1", "sip:bob@x"}, Strategy::Fork, 0, "t:1"}});
    call_from_door("pair");
    auto offers = ep.take();
    CHECK(calls.end_plugin_legs(kDoor, 503, "plugin unloaded") == 1);
    auto out = ep.take();
    REQUIRE(out.size() == 2);
    CHECK((out[0].leg == offers[0].leg && out[0].ev.code == 503));
    CHECK((out[1].leg == offers[1].leg && out[1].ev.code == 503));
    CHECK(calls.active_legs() == 0);
    CHECK(timers.armed.empty());
  }
  SUBCASE("a plugin calling itself: both legs go, nothing is delivered") {
    jn_handle a = 0;
    CHECK(calls.originate(kScreen, 1, Fixture::offer("intercom:1", "intercom:2"), &a) == JN_OK);
    calls.send(kScreen, ep.take().at(0).leg, Fixture::event(JN_CALL_ANSWER));
    ep.take();
    CHECK(calls.end_plugin_legs(kScreen, 503, "bye") == 2);
    CHECK(ep.take().empty());
    CHECK(calls.active_legs() == 0);
  }
  CHECK(calls.end_plugin_legs("never-loaded", 503, "x") == 0);
}

TEST_CASE("2.0 call metadata and media attributes survive the ABI both ways") {
  CallEvent ev = Fixture::offer("sip:alice@x", "gb:34020000001320000001");
  ev.from_name = "Alice \"A\"";
  ev.headers = {{"Subject", "34020000001320000001:0,34020000002000000001:0"}, {"X-Tenant", "7"}, {"X-Tenant", "8"}};
  MediaStream& m = (*ev.media)[0];
  m.codecs = {{"PCMA", 8, 8000, 1, "", ""}, {"telephone-event", 101, 8000, 0, "0-15", ""}};
  m.setup = JN_SETUP_ACTPASS;
  m.flags = JN_MS_RTCP_MUX | JN_MS_ICE_LITE;
  m.mid = "0";
  m.ice_ufrag = "uf";
  m.ice_pwd = "pw";
  m.candidates = {"1 1 udp 2130706431 127.0.0.1 4000 typ host", "2 1 udp 1 127.0.0.2 4002 typ host"};
  m.crypto = {"1 AES_CM_128_HMAC_SHA1_80 inline:abc"};
  m.fingerprint = "sha-256 AB:CD";
  m.rtcp_addr.family = 4;
  m.rtcp_addr.port = 4005;
  AbiCallEvent abi(ev);
  const jn_call_event* c = abi.get();
  REQUIRE(c->header_count == 3);
  CHECK(std::string(c->headers[2].name.ptr, c->headers[2].name.len) == "X-Tenant");
  const jn_media_stream* s = c->media->streams[0];
  REQUIRE(s->codec_count == 2);
  CHECK(std::string(s->codecs[1].fmtp.ptr, s->codecs[1].fmtp.len) == "0-15");
  REQUIRE(s->candidate_count == 2);
  REQUIRE(s->crypto_count == 1);
  CHECK(std::string(s->crypto[0].ptr, s->crypto[0].len) == "1 AES_CM_128_HMAC_SHA1_80 inline:abc");

  CallEvent back;
  REQUIRE(from_abi(*c, back) == JN_OK);
  CHECK(back.from_name == ev.from_name);
  CHECK(back.headers == ev.headers);  // order and repeats kept
  const MediaStream& b = (*back.media)[0];
  REQUIRE(b.codecs.size() == 2);
  CHECK(b.codecs[1].name == "telephone-event");
  CHECK(b.codecs[1].payload_type == 101);
  CHECK(b.format == "PCMA");  // the chosen codec is codecs[0]
  CHECK(b.setup == JN_SETUP_ACTPASS);
  CHECK(b.flags == (JN_MS_RTCP_MUX | JN_MS_ICE_LITE));
  CHECK(b.candidates == m.candidates);
  CHECK(b.crypto == m.crypto);
  CHECK(b.fingerprint == "sha-256 AB:CD");
  CHECK(b.ice_pwd == "pw");
  CHECK(b.mid == "0");
  CHECK(b.rtcp_addr.port == 4005);

  // The chosen-codec fields follow codecs[0] when a plugin set them apart.
  jn_media_stream raw = *s;
  raw.format = jn_str{"H264", 4};
  jn_media_stream* rp = &raw;
  jn_media_desc desc{sizeof desc, 1, &rp};
  std::vector<MediaStream> read;
  REQUIRE(read_media(desc, read) == JN_OK);
  CHECK(read[0].format == "PCMA");

  // Bad lists are refused, not half read.
  jn_call_event bad = *c;
  bad.header_count = 2;
  bad.headers = nullptr;
  CHECK(from_abi(bad, back) == JN_ERR_INVALID);
  jn_header unnamed{{nullptr, 0}, {"v", 1}};
  bad.headers = &unnamed;
  bad.header_count = 1;
  CHECK(from_abi(bad, back) == JN_ERR_INVALID);
  raw = *s;
  raw.setup = 99;
  CHECK(read_media(desc, read) == JN_ERR_INVALID);
  raw = *s;
  raw.candidate_count = 100000;
  CHECK(read_media(desc, read) == JN_ERR_INVALID);

  // A stream from a plugin built before codecs existed (struct_size ends at params): defaults.
  raw = *s;
  raw.struct_size = offsetof(jn_media_stream, params) + sizeof(jn_str);
  raw.codec_count = 12345;  // beyond its struct_size: never read
  REQUIRE(read_media(desc, read) == JN_OK);
  CHECK(read[0].codecs.empty());
  CHECK(read[0].candidates.empty());
}

TEST_CASE("from_abi / AbiCallEvent round trip") {
  CallEvent ev = Fixture::offer("xxxcid:door/1-1", "intercom:room/101");
  ev.call_id = "c-9";
  ev.target = "intercom:room/101";
  ev.code = 180;
  ev.reason = "r";
  ev.dtmf = "12";
  ev.info_type = "open-door";
  ev.info_body = "{}";
  (*ev.media)[0].addr.family = 4;
  (*ev.media)[0].addr.port = 4000;
  (*ev.media)[0].params = "setup=active";
  AbiCallEvent abi(ev);
  const jn_call_event* c = abi.get();
  CHECK(c->struct_size == sizeof(jn_call_event));
  REQUIRE(c->media);
  REQUIRE(c->media->count == 1);
  CHECK(c->media->streams[0]->struct_size == sizeof(jn_media_stream));
  CHECK(std::string(c->media->streams[0]->format.ptr, c->media->streams[0]->format.len) == "PCMA");

  CallEvent back;
  REQUIRE(from_abi(*c, back) == JN_OK);
  CHECK(back.type == ev.type);
  CHECK(back.call_id == "c-9");
  CHECK(back.from == ev.from);
  CHECK(back.to == ev.to);
  CHECK(back.target == ev.target);
  CHECK(back.code == 180);
  CHECK(back.dtmf == "12");
  CHECK(back.info_type == "open-door");
  CHECK(back.info_body == "{}");
  REQUIRE(back.media);
  const MediaStream& m = (*back.media)[0];
  CHECK(m.kind == JN_MEDIA_AUDIO);
  CHECK(m.payload_type == 8);
  CHECK(m.clock_rate == 8000);
  CHECK(m.transport == "rtp/avp");
  CHECK(m.addr.port == 4000);
  CHECK(m.ssrc == 0x1234);
  CHECK(m.params == "setup=active");

  CallEvent none;
  none.type = JN_CALL_END;
  AbiCallEvent no_media(none);
  CHECK(no_media.get()->headers == nullptr);
  CHECK(no_media.get()->header_count == 0);
  CHECK(no_media.get()->media == nullptr);
  CHECK(no_media.get()->reason.ptr != nullptr);  // empty but never NULL
  CallEvent empty_media = none;
  empty_media.media.emplace();
  AbiCallEvent zero(empty_media);
  REQUIRE(zero.get()->media);
  CHECK(zero.get()->media->count == 0);
  CHECK(from_abi(*zero.get()).media->empty());
}

TEST_CASE("from_abi reads only what an older plugin's struct has") {
  jn_call_event old{};
  old.struct_size = offsetof(jn_call_event, to) + sizeof(jn_str);  // up to `to`
  old.type = JN_CALL_OFFER;
  old.from = jn_str{"a:1", 3};
  old.to = jn_str{"b:1", 3};
  old.target = jn_str{nullptr, 999};  // beyond struct_size: never read
  old.code = 7;
  CallEvent ev;
  REQUIRE(from_abi(old, ev) == JN_OK);
  CHECK(ev.from == "a:1");
  CHECK(ev.to == "b:1");
  CHECK(ev.target.empty());
  CHECK(ev.code == 0);
  CHECK_FALSE(ev.media);

  jn_call_event tiny{};
  tiny.struct_size = 4;
  CHECK(from_abi(tiny, ev) == JN_ERR_ABI);
  CHECK(from_abi(tiny).type == 0);  // send() refuses type 0

  jn_call_event bad{};
  bad.struct_size = sizeof bad;
  bad.type = JN_CALL_INFO;
  bad.info_body = jn_str{nullptr, 3};
  CHECK(from_abi(bad, ev) == JN_ERR_INVALID);

  // an older jn_media_stream (up to `channels`) inside a current event
  jn_media_stream s{};
  s.struct_size = offsetof(jn_media_stream, channels) + sizeof(uint32_t);
  s.kind = JN_MEDIA_VIDEO;
  s.format = jn_str{"H264", 4};
  s.payload_type = 96;
  s.clock_rate = 90000;
  s.ssrc = 55;  // beyond its size
  const jn_media_stream* ptrs[] = {&s};
  jn_media_desc desc{sizeof(jn_media_desc), 1, ptrs};
  jn_call_event cur{};
  cur.struct_size = sizeof cur;
  cur.type = JN_CALL_ANSWER;
  cur.media = &desc;
  REQUIRE(from_abi(cur, ev) == JN_OK);
  REQUIRE(ev.media->size() == 1);
  CHECK((*ev.media)[0].format == "H264");
  CHECK((*ev.media)[0].clock_rate == 90000);
  CHECK((*ev.media)[0].ssrc == 0);

  const jn_media_stream* null_ptrs[] = {nullptr};
  desc.streams = null_ptrs;
  CHECK(from_abi(cur, ev) == JN_ERR_INVALID);
  desc.streams = nullptr;
  CHECK(from_abi(cur, ev) == JN_ERR_INVALID);
  desc.streams = ptrs;
  s.struct_size = 4;
  CHECK(from_abi(cur, ev) == JN_ERR_ABI);
  desc.struct_size = 8;
  CHECK(from_abi(cur, ev) == JN_ERR_ABI);
}

TEST_CASE_FIXTURE(Fixture,
                  "random traffic keeps the books straight: one CDR per call, nothing leaks") {
  routes.set_static({
      StaticRoute{
          "exact", "fork", {"intercom:1", "sip:bob@x", "xxxcid:2"}, Strategy::Fork, 0, "t:1"},
      StaticRoute{
          "exact", "hunt", {"intercom:3", "sip:carol@x", "xxxcid:4"}, Strategy::Hunt, 700, "t:2"},
  });
  calls.set_ring_timeout_ms(2000);
  std::mt19937 rng(7);
  const std::string plugins[] = {kDoor, kScreen, kBrowser};
  const char* destinations[] = {"fork", "hunt", "intercom:9", "sip:dave@x", "nowhere:1"};
  std::vector<jn_handle> seen;  // every leg handle ever delivered or returned, live or not
  size_t originated = 0;
  auto random_event = [&]() {
    static const uint32_t types[] = {JN_CALL_OFFER,
                                     JN_CALL_RINGING,
                                     JN_CALL_ANSWER,
                                     JN_CALL_REJECT,
                                     JN_CALL_END,
                                     JN_CALL_DTMF,
                                     JN_CALL_INFO,
                                     0,
                                     42};
    CallEvent ev = Fixture::event(types[rng() % 9], rng() % 2 ? 486 : 0);
    return ev;
  };
  // plugins sometimes answer or hang up from inside a delivery
  ep.react = [&](const Delivered& d) {
    seen.push_back(d.leg);
    if (rng() % 4 == 0) calls.send(d.plugin, d.leg, random_event());
  };
  for (int step = 0; step < 20000; ++step) {
    switch (rng() % 6) {
      case 0: {
        jn_handle a = 0;
        const std::string& from = plugins[rng() % 3];
        if (calls.originate(from, step, Fixture::offer("x:caller", destinations[rng() % 5]), &a) ==
            JN_OK) {
          ++originated;
          seen.push_back(a);
        }
        break;
      }
      case 1:
        timers.advance(rng() % 800);
        break;
      default:
        if (!seen.empty()) {
          // mostly recent legs, so calls get answered and ended, not only timed out
          jn_handle leg =
              seen[seen.size() - 1 - rng() % std::min<size_t>(seen.size(), rng() % 4 ? 12 : 4000)];
          const std::string& who =
              rng() % 8 ? calls.leg_plugin(leg).value_or(kDoor) : plugins[rng() % 3];
          calls.send(who, leg, random_event());
        }
    }
    if (seen.size() > 4000) seen.erase(seen.begin(), seen.begin() + 2000);
    CHECK(calls.active_legs() >= calls.active_calls());
  }
  CHECK(calls.to_json().size() == calls.active_calls());
  ep.react = nullptr;
  for (const auto& p : plugins) calls.end_plugin_legs(p, 503, "shutdown");
  CHECK(calls.active_calls() == 0);
  CHECK(calls.active_legs() == 0);
  CHECK(cdrs.size() == originated);
  CHECK(timers.armed.empty());
}

namespace {
// Rewrites every stream's port to 30000 + n and records what it was asked.
struct FakeAnchor : MediaAnchor {
  std::vector<std::pair<Op, std::string>> asked;
  std::vector<uint32_t> senders;
  std::vector<uint16_t> in_ports;  // the first stream's port of each request's media (0: none)
  uint16_t next_port = 30000;
  bool refuse = false;
  std::optional<std::vector<MediaStream>> anchor(Op op, const std::string& call_id, const std::vector<MediaStream>* media,
                                                 uint32_t sender) override {
    asked.emplace_back(op, call_id);
    senders.push_back(sender);
    in_ports.push_back(media && !media->empty() ? (*media)[0].addr.port : 0);
    if (refuse || !media) return std::nullopt;
    std::vector<MediaStream> out = *media;
    for (auto& s : out) {
      s.addr.family = 4;
      s.addr.port = next_port;
      next_port += 2;
    }
    return out;
  }
};
// An audio stream received at 127.0.0.1:port.
MediaStream audio_at(uint16_t port) {
  MediaStream m;
  m.kind = JN_MEDIA_AUDIO;
  m.addr.family = 4;
  m.addr.port = port;
  return m;
}
}  // namespace

TEST_CASE_FIXTURE(Fixture, "media anchor: offer and answer rewritten, deleted when the call ends") {
  FakeAnchor anchor;
  calls.set_media_anchor(&anchor);
  jn_handle a = call_from_door("intercom:room/101");
  auto offers = ep.take();
  REQUIRE(offers.size() == 1);
  REQUIRE(offers[0].ev.media);
  CHECK((*offers[0].ev.media)[0].addr.port == 30000);  // the callee is told the anchor's port
  jn_handle b = offers[0].leg;
  CallEvent ans = Fixture::event(JN_CALL_ANSWER);
  MediaStream m;
  m.kind = JN_MEDIA_AUDIO;
  m.addr.family = 4;
  m.addr.port = 40002;
  ans.media = std::vector<MediaStream>{m};
  CHECK(calls.send(kScreen, b, ans) == JN_OK);
  auto answered = ep.take();
  REQUIRE(answered.size() == 1);
  CHECK(answered[0].leg == a);
  REQUIRE(answered[0].ev.media);
  CHECK((*answered[0].ev.media)[0].addr.port == 30002);  // the caller is told the anchor's other port
  CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_END, 200)) == JN_OK);
  REQUIRE(anchor.asked.size() == 3);
  const std::string call_id = offers[0].ev.call_id;
  CHECK(anchor.asked[0] == std::make_pair(MediaAnchor::Offer, call_id));
  CHECK(anchor.asked[1] == std::make_pair(MediaAnchor::Answer, call_id));
  CHECK(anchor.asked[2] == std::make_pair(MediaAnchor::Delete, call_id));
}

// An anchored door -> screen call, answered; returns {A-leg, B-leg}.
std::pair<jn_handle, jn_handle> answered_anchored_call(Fixture& f, FakeAnchor& anchor) {
  f.calls.set_media_anchor(&anchor);
  jn_handle a = f.call_from_door("intercom:room/101");
  auto offers = f.ep.take();
  REQUIRE(offers.size() == 1);
  jn_handle b = offers[0].leg;
  CallEvent ans = Fixture::event(JN_CALL_ANSWER);
  ans.media = std::vector<MediaStream>{audio_at(40002)};
  REQUIRE(f.calls.send(kScreen, b, ans) == JN_OK);
  f.ep.take();
  return {a, b};
}

TEST_CASE_FIXTURE(Fixture, "media anchor: re-offers from either side and their answers are anchored too") {
  FakeAnchor anchor;
  auto [a, b] = answered_anchored_call(*this, anchor);
  // B re-offers (e.g. adds video or moves): A is told the anchor's address, not B's.
  CallEvent reoffer = Fixture::event(JN_CALL_OFFER);
  reoffer.media = std::vector<MediaStream>{audio_at(41000)};
  REQUIRE(calls.send(kScreen, b, reoffer) == JN_OK);
  auto to_a = ep.take();
  REQUIRE(to_a.size() == 1);
  CHECK(to_a[0].leg == a);
  REQUIRE(to_a[0].ev.media);
  CHECK((*to_a[0].ev.media)[0].addr.port == 30004);
  // A answers it: B is told the anchor's address too.
  CallEvent reans = Fixture::event(JN_CALL_ANSWER);
  reans.media = std::vector<MediaStream>{audio_at(42000)};
  REQUIRE(calls.send(kDoor, a, reans) == JN_OK);
  auto to_b = ep.take();
  REQUIRE(to_b.size() == 1);
  CHECK(to_b[0].leg == b);
  CHECK((*to_b[0].ev.media)[0].addr.port == 30006);
  REQUIRE(anchor.senders.size() == 4);
  CHECK(anchor.senders == std::vector<uint32_t>{0, 1, 1, 0});  // offer A, answer B, re-offer B, its answer A
  CHECK(anchor.asked[2].first == MediaAnchor::Offer);
  CHECK(anchor.asked[3].first == MediaAnchor::Answer);
}

TEST_CASE_FIXTURE(Fixture, "media anchor ends the call when it loses the media") {
  FakeAnchor anchor;
  answered_anchored_call(*this, anchor);
  const std::string call_id = anchor.asked.at(0).second;
  CHECK(calls.end_anchored("jc-00000000000000000000000000000000", 408, "media timeout") == JN_ERR_NOT_FOUND);
  REQUIRE(calls.end_anchored(call_id, 408, "media timeout") == JN_OK);
  auto ends = ep.take();
  REQUIRE(ends.size() == 2);
  for (auto& e : ends) {
    CHECK(e.ev.type == JN_CALL_END);
    CHECK(e.ev.code == 408);
    CHECK(e.ev.reason == "media timeout");
  }
  CHECK(calls.active_calls() == 0);
  CHECK(anchor.asked.back().first == MediaAnchor::Delete);
  CHECK(calls.end_anchored(call_id, 408, "media timeout") == JN_ERR_NOT_FOUND);  // once
}

TEST_CASE_FIXTURE(Fixture, "media anchor that refuses: media passes through, no delete") {
  FakeAnchor anchor;
  anchor.refuse = true;
  calls.set_media_anchor(&anchor);
  jn_handle a = call_from_door("intercom:room/101");
  auto offers = ep.take();
  REQUIRE(offers.size() == 1);
  CHECK((*offers[0].ev.media)[0].addr.port == 0);  // untouched
  CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_END, 487)) == JN_OK);
  CHECK(anchor.asked.size() == 1);  // the offer only: nothing anchored, nothing to delete
}

// --- hardening: server.max_calls ---------------------------------------------------------------

TEST_CASE_FIXTURE(Fixture, "max_calls: originate beyond it is refused with JN_ERR_LIMIT, calls up are unaffected") {
  calls.set_max_calls(2);
  jn_handle a1 = call_from_door("intercom:room/101", 1);
  jn_handle a2 = call_from_door("intercom:room/102", 2);
  auto offers = ep.take();
  REQUIRE(offers.size() == 2);
  CHECK(calls.refused_calls() == 0);

  jn_handle refused = 12345;
  CHECK(calls.originate(kDoor, 3, Fixture::offer("xxxcid:door/1-1", "intercom:room/103"), &refused) == JN_ERR_LIMIT);
  CHECK(refused == JN_INVALID_HANDLE);
  CHECK(calls.originate(kBrowser, 4, Fixture::offer("sip:x@y", "intercom:room/104"), &refused) == JN_ERR_LIMIT);
  CHECK(ep.take().empty());  // nobody was offered anything
  CHECK(calls.refused_calls() == 2);
  CHECK(calls.active_calls() == 2);
  CHECK(cdrs.empty());  // a refused originate is no call: no CDR

  // The calls up go on: answered, events both ways, ended.
  CHECK(calls.send(kScreen, offers[0].leg, Fixture::event(JN_CALL_ANSWER)) == JN_OK);
  CHECK(calls.send(kDoor, a1, Fixture::info("door", "open")) == JN_OK);
  auto up = ep.take();
  REQUIRE(up.size() == 2);
  CHECK((up[0].leg == a1 && up[0].ev.type == JN_CALL_ANSWER));
  CHECK((up[1].leg == offers[0].leg && up[1].ev.type == JN_CALL_INFO));
  CHECK(calls.send(kDoor, a1, Fixture::event(JN_CALL_END, 200)) == JN_OK);
  ep.take();

  // A slot is free again: the next originate goes through; then the limit holds again.
  jn_handle a3 = call_from_door("intercom:room/103", 3);
  CHECK(a3 != JN_INVALID_HANDLE);
  CHECK(calls.originate(kDoor, 5, Fixture::offer("xxxcid:door/1-1", "intercom:room/105"), &refused) == JN_ERR_LIMIT);
  CHECK(calls.refused_calls() == 3);
  // Bad input is still told apart from the limit.
  CHECK(calls.originate(kDoor, 5, Fixture::event(JN_CALL_RINGING), &refused) == JN_ERR_INVALID);

  // 0 = no limit.
  calls.set_max_calls(0);
  for (int i = 0; i < 10; ++i) call_from_door("intercom:room/200", 100 + i);
  CHECK(calls.active_calls() == 12);
  CHECK(calls.refused_calls() == 3);
  (void)a2;
}

// --- hardening: re-entrancy bounds -------------------------------------------------------------

// An answered door -> screen call; returns {A-leg, B-leg}.
std::pair<jn_handle, jn_handle> answered_call(Fixture& f, const std::string& to = "intercom:room/101") {
  jn_handle a = f.call_from_door(to);
  auto offers = f.ep.take();
  REQUIRE(offers.size() == 1);
  REQUIRE(f.calls.send(kScreen, offers[0].leg, Fixture::event(JN_CALL_ANSWER)) == JN_OK);
  f.ep.take();
  return {a, offers[0].leg};
}

TEST_CASE_FIXTURE(Fixture, "re-entrant: two legs answering every INFO with an INFO are cut off, not looped forever") {
  auto [a, b] = answered_call(*this);
  auto [other_a, other_b] = answered_call(*this, "intercom:room/102");
  std::map<jn_status, int> echo_status;
  int echoes = 0;
  ep.react = [&](const Delivered& d) {
    if (d.ev.type != JN_CALL_INFO) return;
    if (++echoes > 100000) return;  // the test's own guard: without the bound this never ends
    jn_status st = calls.send(d.plugin, d.leg, Fixture::info(d.ev.info_type, d.ev.info_body));
    ++echo_status[st];
    // Cut off, the plugin hangs up: what ends a leg is never refused.
    if (st == JN_ERR_LIMIT) CHECK(calls.send(d.plugin, d.leg, Fixture::event(JN_CALL_END, 200, "loop")) == JN_OK);
  };
  CHECK(calls.send(kDoor, a, Fixture::info("ping", "1")) == JN_OK);
  auto log = ep.take();
  // The first INFO came from outside; the drain accepted kEventsPerDrain echoes and refused the next.
  const size_t infos = std::count_if(log.begin(), log.end(), [](const Delivered& d) { return d.ev.type == JN_CALL_INFO; });
  CHECK(infos == CallManager::kEventsPerDrain + 1);
  CHECK(echo_status[JN_OK] == static_cast<int>(CallManager::kEventsPerDrain));
  CHECK(echo_status[JN_ERR_LIMIT] == 1);
  CHECK(echo_status.size() == 2);
  CHECK(calls.refused_events_drain() == 1);
  CHECK(calls.refused_events_queue() == 0);
  REQUIRE(!log.empty());
  CHECK((log.back().ev.type == JN_CALL_END && log.back().ev.reason == "loop"));
  CHECK(calls.active_calls() == 1);  // the looping call ended; the other one is up

  // The other call proceeds, and a new stimulus gets a fresh budget.
  ep.react = nullptr;
  CHECK(calls.send(kScreen, other_b, Fixture::dtmf("5")) == JN_OK);
  auto dtmf = ep.take();
  REQUIRE(dtmf.size() == 1);
  CHECK((dtmf[0].leg == other_a && dtmf[0].ev.dtmf == "5"));
  CHECK(calls.send(kDoor, other_a, Fixture::event(JN_CALL_END)) == JN_OK);
  CHECK(calls.active_calls() == 0);
  (void)b;
}

TEST_CASE_FIXTURE(Fixture, "re-entrant: a plugin flooding from inside on_call fills the queue toward its peer and is refused") {
  calls.set_drain_limits(1000, 8);
  auto [a, b] = answered_call(*this);
  std::vector<jn_status> sent;
  ep.react = [&](const Delivered& d) {
    if (d.ev.type != JN_CALL_INFO || d.plugin != kScreen) return;
    for (int i = 0; i < 20; ++i) sent.push_back(calls.send(kScreen, d.leg, Fixture::dtmf(std::to_string(i % 10))));
    sent.push_back(calls.send(kScreen, d.leg, Fixture::event(JN_CALL_END, 200)));  // never refused
  };
  CHECK(calls.send(kDoor, a, Fixture::info("go", "")) == JN_OK);
  REQUIRE(sent.size() == 21);
  CHECK(std::count(sent.begin(), sent.begin() + 8, JN_OK) == 8);
  CHECK(std::count(sent.begin() + 8, sent.begin() + 20, JN_ERR_LIMIT) == 12);
  CHECK(sent[20] == JN_OK);
  CHECK(calls.refused_events_queue() == 12);
  CHECK(calls.refused_events_drain() == 0);
  auto log = ep.take();
  REQUIRE(log.size() == 1 + 8 + 1);  // the INFO to B, 8 DTMF and the END to A
  CHECK(log.back().ev.type == JN_CALL_END);
  CHECK(calls.active_calls() == 0);
  (void)b;
}

TEST_CASE_FIXTURE(Fixture, "re-entrant: originating from inside every OFFER is cut off by the drain's budget") {
  calls.set_drain_limits(50, 256);
  std::map<jn_status, int> statuses;
  int offers = 0;
  ep.react = [&](const Delivered& d) {
    if (d.ev.type != JN_CALL_OFFER || ++offers > 5000) return;  // guard: without the bound, endless
    jn_handle leg = 0;
    ++statuses[calls.originate(kScreen, 1, Fixture::offer("intercom:x", "intercom:room/101"), &leg)];
  };
  call_from_door("intercom:room/101");
  CHECK(offers == 51);  // the door's offer, then 50 accepted from inside
  CHECK(statuses[JN_OK] == 50);
  CHECK(statuses[JN_ERR_LIMIT] == 1);
  CHECK(calls.refused_events_drain() == 1);
  CHECK(calls.active_calls() == 51);
}

// --- hardening: early media under a fork -----------------------------------------------------

namespace {
CallEvent ringing_with(uint16_t port) {
  CallEvent ev = Fixture::event(JN_CALL_RINGING);
  ev.media = std::vector<MediaStream>{audio_at(port)};
  return ev;
}
CallEvent answer_with(uint16_t port) {
  CallEvent ev = Fixture::event(JN_CALL_ANSWER);
  ev.media = std::vector<MediaStream>{audio_at(port)};
  return ev;
}
uint16_t port_of(const Delivered& d) { return d.ev.media && !d.ev.media->empty() ? (*d.ev.media)[0].addr.port : 0; }
}  // namespace

TEST_CASE_FIXTURE(Fixture, "early media under a fork goes through the anchor; the latest branch is heard; the answer replaces it") {
  FakeAnchor anchor;
  calls.set_media_anchor(&anchor);
  routes.set_static({StaticRoute{"exact", "room:101", {"intercom:room/101", "xxxcid:room/101", "sip:alice@x"}, Strategy::Fork, 0, "t:1"}});
  jn_handle a = call_from_door("room:101");
  auto offers = ep.take();
  REQUIRE(offers.size() == 3);
  REQUIRE(anchor.asked.size() == 1);  // the offer

  // A plain RINGING: forwarded once, nothing to anchor.
  CHECK(calls.send(kScreen, offers[0].leg, Fixture::event(JN_CALL_RINGING)) == JN_OK);
  auto r0 = ep.take();
  REQUIRE(r0.size() == 1);
  CHECK((r0[0].leg == a && r0[0].ev.type == JN_CALL_RINGING && !r0[0].ev.media));
  CHECK(anchor.asked.size() == 1);

  // Branch 1's early media: anchored (its own address goes to the anchor, the caller gets the anchor's).
  CHECK(calls.send(kDoor, offers[1].leg, ringing_with(41000)) == JN_OK);
  auto r1 = ep.take();
  REQUIRE(r1.size() == 1);
  CHECK((r1[0].leg == a && r1[0].ev.type == JN_CALL_RINGING));
  CHECK(port_of(r1[0]) == 30002);
  CHECK(r1[0].ev.target == "xxxcid:room/101");
  CHECK(r1[0].ev.call_id == offers[0].ev.call_id);
  REQUIRE(anchor.asked.size() == 2);
  CHECK(anchor.asked[1].first == MediaAnchor::Answer);
  CHECK(anchor.senders[1] == 1);
  CHECK(anchor.in_ports[1] == 41000);

  // Branch 2's early media replaces it: the anchor is re-pointed at branch 2.
  CHECK(calls.send(kBrowser, offers[2].leg, ringing_with(42000)) == JN_OK);
  auto r2 = ep.take();
  REQUIRE(r2.size() == 1);
  CHECK(port_of(r2[0]) == 30004);
  CHECK(r2[0].ev.target == "sip:alice@x");
  REQUIRE(anchor.asked.size() == 3);
  CHECK((anchor.asked[2].first == MediaAnchor::Answer && anchor.in_ports[2] == 42000));

  // A plain RINGING after early media changes nothing.
  CHECK(calls.send(kScreen, offers[0].leg, Fixture::event(JN_CALL_RINGING)) == JN_OK);
  CHECK(ep.take().empty());
  CHECK(anchor.asked.size() == 3);

  // The heard branch gives up while others ring: the caller hears branch 1's early media again.
  CHECK(calls.send(kBrowser, offers[2].leg, Fixture::event(JN_CALL_REJECT, 486)) == JN_OK);
  auto r3 = ep.take();
  REQUIRE(r3.size() == 1);
  CHECK((r3[0].leg == a && r3[0].ev.type == JN_CALL_RINGING && r3[0].ev.target == "xxxcid:room/101"));
  REQUIRE(anchor.asked.size() == 4);
  CHECK((anchor.asked[3].first == MediaAnchor::Answer && anchor.in_ports[3] == 41000));
  CHECK(port_of(r3[0]) == 30006);

  // Branch 0 (no early media) answers: its answer is anchored, the others end.
  CHECK(calls.send(kScreen, offers[0].leg, answer_with(43000)) == JN_OK);
  auto r4 = ep.take();
  REQUIRE(r4.size() == 2);
  CHECK((r4[0].leg == offers[1].leg && r4[0].ev.type == JN_CALL_END && r4[0].ev.code == 487));
  CHECK((r4[1].leg == a && r4[1].ev.type == JN_CALL_ANSWER && r4[1].ev.target == "intercom:room/101"));
  CHECK(port_of(r4[1]) == 30008);
  REQUIRE(anchor.asked.size() == 5);
  CHECK((anchor.asked[4].first == MediaAnchor::Answer && anchor.in_ports[4] == 43000));
  CHECK(calls.send(kDoor, a, Fixture::event(JN_CALL_END)) == JN_OK);
  CHECK(anchor.asked.back().first == MediaAnchor::Delete);
}

TEST_CASE_FIXTURE(Fixture, "early media: an answer without media from a branch the caller was not hearing takes its early media") {
  FakeAnchor anchor;
  calls.set_media_anchor(&anchor);
  routes.set_static({StaticRoute{"exact", "pair", {"intercom:1", "sip:bob@x"}, Strategy::Fork, 0, "t:1"}});
  jn_handle a = call_from_door("pair");
  auto offers = ep.take();
  REQUIRE(offers.size() == 2);
  CHECK(calls.send(kScreen, offers[0].leg, ringing_with(41000)) == JN_OK);
  CHECK(calls.send(kBrowser, offers[1].leg, ringing_with(42000)) == JN_OK);  // the caller hears this one
  ep.take();
  CHECK(calls.send(kScreen, offers[0].leg, Fixture::event(JN_CALL_ANSWER)) == JN_OK);  // no media
  auto log = ep.take();
  REQUIRE(log.size() == 2);
  CHECK((log[1].leg == a && log[1].ev.type == JN_CALL_ANSWER));
  CHECK(port_of(log[1]) == 30006);  // anchored again
  REQUIRE(anchor.asked.size() == 4);
  CHECK((anchor.asked[3].first == MediaAnchor::Answer && anchor.in_ports[3] == 41000));  // the winner's early media

  // The same without the anchor: the caller is told the winner's own address.
  calls.set_media_anchor(nullptr);
  jn_handle a2 = call_from_door("pair", 78);
  auto offers2 = ep.take();
  REQUIRE(offers2.size() == 2);
  CHECK(calls.send(kScreen, offers2[0].leg, ringing_with(41000)) == JN_OK);
  CHECK(calls.send(kBrowser, offers2[1].leg, ringing_with(42000)) == JN_OK);
  CHECK(calls.send(kBrowser, offers2[1].leg, Fixture::event(JN_CALL_ANSWER)) == JN_OK);  // the heard one: as it is
  auto log2 = ep.take();
  REQUIRE(log2.size() == 4);
  CHECK((log2[0].leg == a2 && port_of(log2[0]) == 41000));
  CHECK((log2[1].leg == a2 && port_of(log2[1]) == 42000));  // each branch's own address, unanchored
  CHECK((log2[3].leg == a2 && log2[3].ev.type == JN_CALL_ANSWER && !log2[3].ev.media));
}

TEST_CASE_FIXTURE(Fixture, "early media in a hunt: the next target's early media replaces the one that timed out") {
  FakeAnchor anchor;
  calls.set_media_anchor(&anchor);
  routes.set_static({StaticRoute{"exact", "desk", {"intercom:1", "intercom:2"}, Strategy::Hunt, 5000, "t:1"}});
  jn_handle a = call_from_door("desk");
  auto o1 = ep.take();
  REQUIRE(o1.size() == 1);
  CHECK(calls.send(kScreen, o1[0].leg, ringing_with(41000)) == JN_OK);
  CHECK(port_of(ep.take().at(0)) == 30002);
  timers.advance(5000);
  auto o2 = ep.take();  // END 408 to the first, OFFER to the second; nothing to fall back on
  REQUIRE(o2.size() == 2);
  CHECK(o2[1].ev.type == JN_CALL_OFFER);
  CHECK(calls.send(kScreen, o2[1].leg, ringing_with(42000)) == JN_OK);
  auto r = ep.take();
  REQUIRE(r.size() == 1);
  CHECK((r[0].leg == a && port_of(r[0]) == 30004 && r[0].ev.target == "intercom:2"));
  CHECK(anchor.in_ports.back() == 42000);
}
