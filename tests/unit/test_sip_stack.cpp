// junction/sip/stack.hpp: the stateless REGISTER path (StackConfig::stateless_register, RFC 3261
// §8.2.7): no transaction, a retransmission re-runs the user's logic and gets the same answer
// (same To tag), final responses only, answered during on_request only; other methods keep
// their transactions.
#include <junction/sip/stack.hpp>

#include "sip_fake_env.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

using namespace junction::sip;
using junction::sip::testing::FakeEnv;
using junction::sip::testing::udp_flow;

namespace {

struct Registrar : StackUser {
  Stack* stack = nullptr;
  std::vector<TxnId> ids;
  std::vector<jn_status> answers;  // what each respond() returned
  int code = 200;
  void on_request(TxnId id, const Message& m, const Flow&) override {
    ids.push_back(id);
    if (m.method() != "REGISTER" && m.method() != "MESSAGE") return;
    answers.push_back(stack->respond(id, 100));  // refused: no provisional when stateless
    answers.push_back(stack->respond(id, code, {}, "ignored", "Contact: <sip:a@127.0.0.1:4000>;expires=3600\r\n"));
    answers.push_back(stack->respond(id, code));  // refused: already answered
  }
  void on_response(TxnId, int, const Message*) override {}
};

struct Rig {
  FakeEnv env;
  Registrar user;
  Stack stack;
  explicit Rig(bool stateless, uint64_t rnd = 0, std::function<bool(const Message&)> pick = nullptr)
      : stack(env, user, [&] {
          env.rnd = rnd;  // the stack draws its tag key at construction
          StackConfig c{"127.0.0.1", 5060, 5060, {}, {}, "test-ua"};
          c.stateless_register = stateless;
          c.stateless_request = pick;
          return c;
        }()) {
    user.stack = &stack;
    env.on_wake = [this] { stack.on_timer(); };
  }
};

std::string reg(std::string_view branch, int cseq) {
  return "REGISTER sip:127.0.0.1 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 10.0.0.9:4000;branch=" + std::string(branch) + ";rport\r\n"
         "From: <sip:a@127.0.0.1>;tag=ft\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: c1\r\n"
         "CSeq: " + std::to_string(cseq) + " REGISTER\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
}

std::string to_of(const std::string& resp) {
  Message m;
  REQUIRE(parse(resp, m) == ParseStatus::Ok);
  return std::string(m.find(HeaderId::To)->value);
}

}  // namespace

TEST_CASE("sip stack: stateless REGISTER: no transaction, a retransmission is answered identically") {
  Rig r(true);
  r.stack.on_datagram(reg("z9hG4bKr1", 1), udp_flow(4000));
  r.stack.on_datagram(reg("z9hG4bKr1", 1), udp_flow(4000));  // the retransmission
  REQUIRE(r.user.ids.size() == 2);                          // the user ran twice
  CHECK(Stack::is_stateless(r.user.ids[0]));
  CHECK(r.user.ids[0] != r.user.ids[1]);
  CHECK(r.stack.transactions().size() == 0);
  CHECK(r.stack.counters().rx_stateless == 2);
  CHECK(r.user.answers == std::vector<jn_status>{JN_ERR_INVALID, JN_OK, JN_ERR_STATE, JN_ERR_INVALID, JN_OK, JN_ERR_STATE});
  REQUIRE(r.env.sent.size() == 2);
  CHECK(r.env.sent[0].bytes == r.env.sent[1].bytes);  // same To tag, same everything
  const std::string& resp = r.env.sent[0].bytes;
  CHECK(resp.substr(0, 15) == "SIP/2.0 200 OK\r");
  CHECK(resp.find("Via: SIP/2.0/UDP 10.0.0.9:4000;branch=z9hG4bKr1;rport=4000;received=127.0.0.1\r\n") != std::string::npos);
  CHECK(resp.find("Server: test-ua\r\n") != std::string::npos);
  CHECK(resp.find("Contact: <sip:a@127.0.0.1:4000>;expires=3600\r\n") != std::string::npos);
  std::string to = to_of(resp);
  CHECK(to.find(";tag=") != std::string::npos);
  CHECK(to.find("ignored") == std::string::npos);  // the derived tag, not the user's
  CHECK(r.env.sent[0].flow.peer.port == 4000);

  // Another request (new branch and CSeq) gets another tag; nothing is kept for either.
  r.stack.on_datagram(reg("z9hG4bKr2", 2), udp_flow(4000));
  REQUIRE(r.env.sent.size() == 3);
  CHECK(to_of(r.env.sent[2].bytes) != to);
  CHECK(r.stack.transactions().size() == 0);

  // The id is gone after on_request: a late answer is refused, nothing is sent.
  CHECK(r.stack.respond(r.user.ids[0], 200) == JN_ERR_NOT_FOUND);
  CHECK(r.env.sent.size() == 3);

  // Other methods keep their transactions (a retransmission is absorbed, the user runs once).
  std::string opt = reg("z9hG4bKo1", 5);
  opt.replace(0, 8, "OPTIONS");
  opt.replace(opt.find("5 REGISTER"), 10, "5 OPTIONS");
  r.stack.on_datagram(opt, udp_flow(4000));
  r.stack.on_datagram(opt, udp_flow(4000));
  CHECK(r.user.ids.size() == 4);
  CHECK(!Stack::is_stateless(r.user.ids[3]));
  CHECK(r.stack.transactions().size() == 1);
}

TEST_CASE("sip stack: stateless REGISTER tags differ between stacks (keyed), a stateful stack keeps its transaction") {
  Rig a(true), b(true, 77);  // another key
  a.stack.on_datagram(reg("z9hG4bKk", 1), udp_flow(4000));
  b.stack.on_datagram(reg("z9hG4bKk", 1), udp_flow(4000));
  REQUIRE(a.env.sent.size() == 1);
  REQUIRE(b.env.sent.size() == 1);
  CHECK(to_of(a.env.sent[0].bytes) != to_of(b.env.sent[0].bytes));

  Rig s(false);
  s.stack.on_datagram(reg("z9hG4bKk", 1), udp_flow(4000));
  s.stack.on_datagram(reg("z9hG4bKk", 1), udp_flow(4000));
  CHECK(s.user.ids.size() == 1);  // the retransmission absorbed by the transaction
  CHECK(!Stack::is_stateless(s.user.ids[0]));
  CHECK(s.stack.transactions().size() == 1);
  CHECK(s.user.answers == std::vector<jn_status>{JN_OK, JN_OK, JN_ERR_STATE});  // 100 allowed when stateful
}

TEST_CASE("sip stack: stateless_request picks other requests (a keepalive MESSAGE); never INVITE") {
  // The predicate sees the parsed request: here, requests whose body says Keepalive.
  Rig r(false, 0, [](const Message& m) { return m.body().find("Keepalive") != std::string_view::npos; });
  auto req = [](std::string_view method, std::string_view branch, std::string_view body) {
    return std::string(method) + " sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:4000;branch=" + std::string(branch) +
           ";rport\r\nFrom: <sip:a@127.0.0.1>;tag=ft\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: m1\r\nCSeq: 1 " +
           std::string(method) + "\r\nMax-Forwards: 70\r\nContent-Type: Application/MANSCDP+xml\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
  };
  std::string ka = req("MESSAGE", "z9hG4bKm1", "<CmdType>Keepalive</CmdType>");
  r.stack.on_datagram(ka, udp_flow(4000));
  r.stack.on_datagram(ka, udp_flow(4000));  // the retransmission reaches the user again
  REQUIRE(r.user.ids.size() == 2);
  CHECK(Stack::is_stateless(r.user.ids[0]));
  CHECK(Stack::is_stateless(r.user.ids[1]));
  CHECK(r.stack.transactions().size() == 0);
  CHECK(r.stack.counters().rx_stateless == 2);
  REQUIRE(r.env.sent.size() == 2);
  CHECK(r.env.sent[0].bytes == r.env.sent[1].bytes);  // answered again with the same bytes

  // A MESSAGE the predicate does not pick keeps its transaction (the retransmission absorbed).
  std::string other = req("MESSAGE", "z9hG4bKm2", "<CmdType>Catalog</CmdType>");
  r.stack.on_datagram(other, udp_flow(4000));
  r.stack.on_datagram(other, udp_flow(4000));
  REQUIRE(r.user.ids.size() == 3);
  CHECK(!Stack::is_stateless(r.user.ids[2]));
  CHECK(r.stack.transactions().size() == 1);

  // INVITE never goes stateless, whatever the predicate says; nor REGISTER without stateless_register.
  r.stack.on_datagram(req("INVITE", "z9hG4bKi1", "<CmdType>Keepalive</CmdType>"), udp_flow(4000));
  REQUIRE(r.user.ids.size() == 4);
  CHECK(!Stack::is_stateless(r.user.ids[3]));
  r.stack.on_datagram(reg("z9hG4bKr9", 9), udp_flow(4000));
  REQUIRE(r.user.ids.size() == 5);
  CHECK(!Stack::is_stateless(r.user.ids[4]));
}

TEST_CASE("sip stack: request_fingerprint is kept per parsed message, never carried over to the next") {
  std::string a = reg("z9hG4bKfa", 1), b = reg("z9hG4bKfb", 1);
  Message m1, m2;
  REQUIRE(parse(b, m2) == ParseStatus::Ok);
  const uint64_t fb = request_fingerprint(m2);
  REQUIRE(parse(a, m1) == ParseStatus::Ok);
  const uint64_t fa = request_fingerprint(m1);
  CHECK(fa != fb);
  CHECK(request_fingerprint(m1) == fa);  // asked again: the same (the kept value)
  CHECK(m1.fingerprint() == fa);
  // The same Message parses another request: its own fingerprint, not the one kept for the first.
  REQUIRE(parse(b, m1) == ParseStatus::Ok);
  CHECK(request_fingerprint(m1) == fb);
  REQUIRE(parse(a, m1) == ParseStatus::Ok);  // a retransmission of the first: its fingerprint again
  CHECK(request_fingerprint(m1) == fa);
}

TEST_CASE("sip stack: stateless answers built in the stack's buffer: each as built from its own request") {
  struct Answer : StackUser {
    Stack* stack = nullptr;
    void on_request(TxnId id, const Message& m, const Flow&) override {
      // A long answer, then short ones: nothing of an earlier answer may show in a later one.
      bool big = m.cseq().seq == 1;
      stack->respond(id, 200, {}, {}, big ? "Contact: <sip:a@127.0.0.1:4000>;expires=3600\r\n" : "",
                     big ? std::string(600, 'b') : std::string(), big ? "text/plain" : "");
    }
    void on_response(TxnId, int, const Message*) override {}
  } user;
  FakeEnv env;
  StackConfig c{"127.0.0.1", 5060, 5060, {}, {}, "test-ua"};
  c.stateless_register = true;
  Stack stack(env, user, c);
  user.stack = &stack;
  for (int seq : {1, 2, 3}) stack.on_datagram(reg("z9hG4bKbuf" + std::to_string(seq), seq), udp_flow(4000));
  REQUIRE(env.sent.size() == 3);
  for (int seq : {1, 2, 3}) {
    const std::string& got = env.sent[size_t(seq - 1)].bytes;
    std::string req = reg("z9hG4bKbuf" + std::to_string(seq), seq);
    Message m;
    REQUIRE(parse(req, m) == ParseStatus::Ok);
    Message r;
    REQUIRE(parse(got, r) == ParseStatus::Ok);
    bool big = seq == 1;
    std::string want = TransactionLayer::build_response(
        m, 200, "OK", r.to_tag(), "test-ua", big ? "Contact: <sip:a@127.0.0.1:4000>;expires=3600\r\n" : "",
        big ? std::string(600, 'b') : std::string(), big ? "text/plain" : "", "127.0.0.1", 4000);
    CHECK(got == want);
    CHECK(r.body().size() == (big ? 600u : 0u));
  }
}
