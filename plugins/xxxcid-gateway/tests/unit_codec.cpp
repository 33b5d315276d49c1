// Unit tests of the XXXCID codec: the document's example packets and orders, round trips,
// and every rejection reason.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "../src/codec.hpp"

#include <cstring>
#include <string>

using namespace xxxcid;

namespace {
std::string pad(std::string a) {
  a.resize(20, '\0');
  return a;
}
std::string ip(int a, int b, int c, int d) { return std::string{char(a), char(b), char(c), char(d)}; }
std::optional<Packet> P(const std::string& s, Error* e = nullptr) {
  return parse(reinterpret_cast<const uint8_t*>(s.data()), s.size(), e);
}
// The document's step (3): the door calls S00010108090.
std::string doc_call() {
  return std::string("XXXCID") + char(150) + char(1) + char(1) + pad("M00010100") + ip(192, 168, 31, 189) +
         pad("S00010108090") + ip(192, 168, 31, 223) + char(0) + ip(0, 0, 0, 0);
}
}  // namespace

TEST_CASE("the document's call packet (step 3) parses field by field") {
  std::string raw = doc_call();
  CHECK(raw.size() == kCallMcastLen);
  auto p = P(raw);
  REQUIRE(p);
  CHECK(p->cmd == 150);
  CHECK(p->type == 1);
  CHECK(p->op == kOpCall);
  CHECK(p->caller.addr == "M00010100");
  CHECK(ip_text(p->caller.ip) == "192.168.31.189");
  CHECK(p->callee.addr == "S00010108090");
  CHECK(ip_text(p->callee.ip) == "192.168.31.223");
  CHECK(p->has_mcast);
  CHECK(p->mcast == 0);
  CHECK(serialise(*p) == raw);
}

TEST_CASE("cmd 150 without the multicast fields (busy, talk, unlock, hang-up)") {
  for (uint8_t op : {kOpBusy, kOpTalk, kOpUnlock, kOpHangup})
    for (uint8_t type : {kTypeRequest, kTypeReply}) {
      Packet p;
      p.cmd = kCmdCall;
      p.type = type;
      p.op = op;
      p.caller = {"M00010100", {192, 168, 31, 189}};
      p.callee = {"S00010108090", {192, 168, 31, 223}};
      std::string raw = serialise(p);
      CHECK(raw.size() == kCallLen);
      auto q = P(raw);
      REQUIRE(q);
      CHECK(*q == p);
    }
}

TEST_CASE("cmd 154 resolve request and answer (steps 1, 2)") {
  std::string req = std::string("XXXCID") + char(154) + char(1) + pad("M00010100") + ip(192, 168, 31, 189) +
                    pad("S00010108090") + ip(0, 0, 0, 0);
  CHECK(req.size() == kResolveLen);
  auto p = P(req);
  REQUIRE(p);
  CHECK(p->cmd == kCmdResolve);
  CHECK(p->callee.addr == "S00010108090");
  CHECK(serialise(*p) == req);

  Packet a;
  a.cmd = kCmdResolve;
  a.type = kTypeReply;
  a.caller = p->caller;
  a.resolved = {{"S00010108090", {192, 168, 31, 223}}};
  std::string raw = serialise(a);
  CHECK(raw.size() == 33 + 24);
  CHECK(uint8_t(raw[32]) == 1);
  auto q = P(raw);
  REQUIRE(q);
  CHECK(*q == a);
}

TEST_CASE("space padding is accepted, like NUL padding") {
  std::string raw = doc_call();
  std::memset(raw.data() + 9 + 9, ' ', 11);
  auto p = P(raw);
  REQUIRE(p);
  CHECK(p->caller.addr == "M00010100");
}

TEST_CASE("every malformed packet is refused with its reason") {
  Error e;
  CHECK_FALSE(P("", &e));
  CHECK(e == Error::kShort);
  CHECK_FALSE(P("XXXCID", &e));
  CHECK(e == Error::kShort);
  std::string raw = doc_call();
  std::string bad = raw;
  bad[0] = 'Y';
  CHECK_FALSE(P(bad, &e));
  CHECK(e == Error::kHeader);
  bad = raw;
  bad[6] = char(151);
  CHECK_FALSE(P(bad, &e));
  CHECK(e == Error::kCmd);
  bad = raw;
  bad[7] = 3;
  CHECK_FALSE(P(bad, &e));
  CHECK(e == Error::kType);
  bad = raw;
  bad[8] = 5;
  CHECK_FALSE(P(bad, &e));
  CHECK(e == Error::kOp);
  CHECK_FALSE(P(raw.substr(0, 56), &e));
  CHECK(e == Error::kLength);
  CHECK_FALSE(P(raw + "x", &e));
  CHECK(e == Error::kLength);
  CHECK_FALSE(P(raw + std::string(2000, 'x'), &e));
  CHECK(e == Error::kLength);
  bad = raw;
  bad[10] = '/';  // a bad character inside the caller address
  CHECK_FALSE(P(bad, &e));
  CHECK(e == Error::kAddress);
  bad = raw;
  bad[9 + 15] = 'Z';  // a character after the NUL padding
  CHECK_FALSE(P(bad, &e));
  CHECK(e == Error::kAddress);
  bad = raw;
  bad[9] = '\0';  // empty address
  CHECK_FALSE(P(bad, &e));
  CHECK(e == Error::kAddress);
  bad = raw;
  bad[9 + 24 + 3] = char(0xe8);  // non-ASCII in the callee address
  CHECK_FALSE(P(bad, &e));
  CHECK(e == Error::kAddress);
  std::string ans = std::string("XXXCID") + char(154) + char(2) + pad("M1") + ip(1, 2, 3, 4) + char(0);
  CHECK_FALSE(P(ans, &e));
  CHECK(e == Error::kCount);
}

TEST_CASE("serialise refuses addresses that do not fit or have bad characters") {
  Packet p;
  p.cmd = kCmdCall;
  p.type = 1;
  p.op = kOpCall;
  p.caller = {std::string(21, 'A'), {}};
  p.callee = {"S1", {}};
  CHECK(serialise(p).empty());
  p.caller.addr = "M 1";
  CHECK(serialise(p).empty());
  p.caller.addr = std::string(20, 'A');
  CHECK(serialise(p).size() == kCallLen);
}

TEST_CASE("phone orders: the document's samples") {
  auto o = parse_order(R"({"order":"call ok", "doorAddress":"M00010100", "roomAddress":"Y00010108090", "uid":"359608060142756", "community":"花苑"})");
  REQUIRE(o);
  CHECK(o->order == "call ok");
  CHECK(o->door == "M00010100");
  CHECK(o->room == "Y00010108090");
  CHECK(o->uid == "359608060142756");
  CHECK(o->community == "花苑");
  // Step (11) spells the key "communit y".
  auto u = parse_order(R"({"order":"unlock","doorAddress":"M00010100","roomAddress":"Y00010108090","uid":"359608060142756","communit y":"花苑"})");
  REQUIRE(u);
  CHECK(u->community == "花苑");
  auto back = parse_order(serialise_order(*o));
  REQUIRE(back);
  CHECK(*back == *o);
  CHECK(parse_order(R"({"order":"heartbeat","uid":"1"})"));
}

TEST_CASE("phone garbage is refused with its reason") {
  OrderError e;
  CHECK_FALSE(parse_order("", &e));
  CHECK(e == OrderError::kJson);
  CHECK_FALSE(parse_order("{\"order\":", &e));
  CHECK(e == OrderError::kJson);
  CHECK_FALSE(parse_order("[1]", &e));
  CHECK(e == OrderError::kNotObject);
  CHECK_FALSE(parse_order(R"({"order":"dance","uid":"1"})", &e));
  CHECK(e == OrderError::kOrder);
  CHECK_FALSE(parse_order(R"({"order":"call","uid":"1"})", &e));  // server-to-phone only
  CHECK(e == OrderError::kOrder);
  CHECK_FALSE(parse_order(R"({"order":"talk","uid":1})", &e));
  CHECK(e == OrderError::kField);
  CHECK_FALSE(parse_order(R"({"order":"talk"})", &e));
  CHECK(e == OrderError::kUid);
  CHECK_FALSE(parse_order(R"({"order":"talk","uid":"a b"})", &e));
  CHECK(e == OrderError::kUid);
  CHECK_FALSE(parse_order(R"({"order":"talk","uid":"1","doorAddress":"M/1"})", &e));
  CHECK(e == OrderError::kAddress);
  CHECK_FALSE(parse_order(R"({"order":"talk","uid":"1","roomAddress":"Y000000000000000000001"})", &e));
  CHECK(e == OrderError::kAddress);
  CHECK_FALSE(parse_order("{\"order\":\"talk\",\"uid\":\"1\",\"community\":\"a\\u0001\"}", &e));
  CHECK(e == OrderError::kCommunity);
  CHECK_FALSE(parse_order("{\"order\":\"talk\",\"uid\":\"1\",\"community\":\"\xff\"}", &e));
  CHECK(e == OrderError::kJson);
}
