// sdk/sip subscriptions (RFC 6665): subscriber refresh timing, NOTIFY Subscription-State,
// notifier grants (min/max/default, 423, Expires: 0), the NOTIFY it sends, expiry, state.
#include <junction/sip/subscription.hpp>

#include "sip_fake_env.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace junction::sip;
using junction::sip::testing::FakeEnv;
using junction::sip::testing::udp_flow;

namespace {
struct NullUser : StackUser {
  void on_request(TxnId, const Message&, const Flow&) override {}
  void on_response(TxnId, int, const Message*) override {}
};
Message parsed(const std::string& bytes) {
  Message m;
  REQUIRE(parse(bytes, m) == ParseStatus::Ok);
  return m;
}
std::string response(int code, std::string_view extra) {
  return "SIP/2.0 " + std::to_string(code) + " X\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKs\r\n"
         "From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>;tag=b\r\nCall-ID: sub-1\r\nCSeq: 1 SUBSCRIBE\r\n"
         "Contact: <sip:b@127.0.0.1:5070>\r\n" + std::string(extra) + "Content-Length: 0\r\n\r\n";
}
std::string notify(std::string_view state) {
  return "NOTIFY sip:a@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKn\r\n"
         "From: <sip:b@127.0.0.1>;tag=b\r\nTo: <sip:a@127.0.0.1>;tag=a\r\nCall-ID: sub-1\r\nCSeq: 1 NOTIFY\r\n"
         "Event: presence\r\nSubscription-State: " + std::string(state) + "\r\nContent-Length: 0\r\n\r\n";
}
std::string subscribe(std::string_view expires_header) {
  return "SUBSCRIBE sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKsub\r\n"
         "From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: sub-2\r\nCSeq: 1 SUBSCRIBE\r\n"
         "Contact: <sip:a@127.0.0.1:5070>\r\nEvent: Catalog;id=7\r\n" + std::string(expires_header) +
         "Content-Length: 0\r\n\r\n";
}
}  // namespace

TEST_CASE("sip subscription: subscriber: granted Expires arms the refresh; NOTIFY drives the state") {
  FakeEnv env;
  NullUser u;
  Stack stack(env, u);
  std::string sub = Subscription::initial_subscribe(stack, Proto::Udp, "sip:b@127.0.0.1", "sip:a@127.0.0.1", "sip:b@127.0.0.1",
                                                     "presence", 600, "a", "sub-1");
  Message sm = parsed(sub);
  CHECK(sm.method() == "SUBSCRIBE");
  CHECK(sm.find(HeaderId::Event)->value == "presence");
  CHECK(sm.find(HeaderId::Expires)->value == "600");
  Subscription s;
  s.event = "presence";
  uint64_t t0 = 10000;
  s.on_subscribe_response(parsed(response(200, "Expires: 60\r\n")), 600, t0);
  REQUIRE(Dialog::from_response(sub, parsed(response(200, "Expires: 60\r\n")), udp_flow(5070), "", s.dialog));
  CHECK(s.expires_s == 60);              // shorter than asked: the notifier's word
  CHECK(s.expires_at == t0 + 60000);
  CHECK(s.refresh_at == t0 + 30000);     // half way (at most 32 s before the end)
  CHECK(s.due(t0 + 29999) == Subscription::Due::Nothing);
  CHECK(s.due(t0 + 30000) == Subscription::Due::Refresh);
  CHECK(s.next_due() == t0 + 30000);
  CHECK(s.on_notify(parsed(notify("active;expires=20")), t0 + 1000));
  CHECK(s.state == SubState::Active);
  CHECK(s.refresh_at == t0 + 1000 + 10000);  // the notifier shortened it
  std::string refresh = s.refresh(stack, 600);
  Message rm = parsed(refresh);
  CHECK(rm.cseq().seq == 2);
  CHECK(rm.to_tag() == "b");
  CHECK(rm.find(HeaderId::Expires)->value == "600");
  CHECK(s.on_notify(parsed(notify("terminated;reason=timeout")), t0 + 2000));
  CHECK(s.state == SubState::Terminated);
  CHECK(s.terminated_reason == "timeout");
  CHECK(s.next_due() == 0);
  CHECK(!s.on_notify(parsed(notify("bogus")), t0));

  Subscription r;  // 423: the Min-Expires for a retry
  uint32_t min = 0;
  r.on_subscribe_response(parsed(response(423, "Min-Expires: 3600\r\n")), 60, t0, &min);
  CHECK(min == 3600);
  CHECK(r.state == SubState::Terminated);
}

TEST_CASE("sip subscription: notifier grants between min and max, 423 below, Expires: 0 ends it, NOTIFY says so") {
  FakeEnv env;
  NullUser u;
  Stack stack(env, u);
  uint64_t t0 = 5000;
  Subscription s;
  CHECK(s.grant(parsed(subscribe("Expires: 10\r\n")), 30, 3600, 600, t0) == 423);
  CHECK(s.grant(parsed(subscribe("Expires: x\r\n")), 30, 3600, 600, t0) == 400);
  CHECK(s.grant(parsed(subscribe("Expires: 7200\r\n")), 30, 3600, 600, t0) == 200);
  CHECK(s.expires_s == 3600);
  CHECK(s.grant(parsed(subscribe("")), 30, 3600, 600, t0) == 200);
  CHECK(s.expires_s == 600);
  CHECK(s.event == "Catalog");
  CHECK(s.event_id == "7");
  CHECK(s.state == SubState::Active);
  REQUIRE(Dialog::from_request(parsed(subscribe("")), udp_flow(5070), "n1", "<sip:b@127.0.0.1>", s.dialog));
  std::string n = s.notify(stack, t0 + 100000, "<xml/>", "application/xml");
  Message nm = parsed(n);
  CHECK(nm.method() == "NOTIFY");
  CHECK(nm.find(HeaderId::SubscriptionState)->value == "active;expires=500");
  CHECK(nm.find(HeaderId::Event)->value == "Catalog;id=7");
  CHECK(nm.body() == "<xml/>");
  CHECK(s.due(t0 + 600000 - 1) == Subscription::Due::Nothing);
  CHECK(s.due(t0 + 600000) == Subscription::Due::Expired);  // the notifier never "refreshes"
  CHECK(s.grant(parsed(subscribe("Expires: 0\r\n")), 30, 3600, 600, t0) == 200);
  CHECK(s.state == SubState::Terminated);
  CHECK(parsed(s.notify(stack, t0)).find(HeaderId::SubscriptionState)->value == "terminated;reason=timeout");
  Subscription back;
  REQUIRE(Subscription::from_json(s.to_json(), back));
  CHECK(back.state == SubState::Terminated);
  CHECK(back.event_id == "7");
  CHECK(back.dialog.key() == s.dialog.key());
}
