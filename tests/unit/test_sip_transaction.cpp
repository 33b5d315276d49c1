// sdk/sip transactions (RFC 3261 §17, RFC 6026): timer sequences under a fake clock with loss,
// duplication and reordering; CANCEL; 2xx retransmission until ACK; Via received/rport; 408/503
// reports; save/restore in the middle of an INVITE.
#include <junction/sip/message.hpp>
#include <junction/sip/transaction.hpp>

#include "sip_fake_env.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <unordered_map>
#include <string>
#include <vector>

using namespace junction::sip;
using junction::sip::testing::FakeEnv;
using junction::sip::testing::tcp_flow;
using junction::sip::testing::tls_flow;
using junction::sip::testing::udp_flow;

namespace {

struct Event {
  std::string what;  // "req METHOD", "resp 200", "cancelled", "ack_timeout", "stray 200"
  TxnId id = 0;
  std::string bytes;
};

struct RecTu : TxnUser {
  std::vector<Event> ev;
  void on_request(TxnId id, const TxnMsg& m, std::string_view b, const Flow&) override {
    ev.push_back({"req " + std::string(m.method), id, std::string(b)});
  }
  void on_response(TxnId id, const TxnMsg& m, std::string_view b) override {
    ev.push_back({"resp " + std::to_string(m.status), id, std::string(b)});
  }
  void on_cancelled(TxnId id) override { ev.push_back({"cancelled", id, {}}); }
  void on_ack_timeout(TxnId id) override { ev.push_back({"ack_timeout", id, {}}); }
  void on_stray_response(const TxnMsg& m, std::string_view b, const Flow&) override {
    ev.push_back({"stray " + std::to_string(m.status), 0, std::string(b)});
  }
  size_t count(std::string_view what) const {
    size_t n = 0;
    for (auto& e : ev)
      if (e.what == what) ++n;
    return n;
  }
};

std::string request(std::string_view method, std::string_view branch, uint32_t cseq = 1,
                    std::string_view call_id = "call-1@test", std::string_view to_tag = "",
                    std::string_view via_host = "127.0.0.1:5070", std::string_view via_params = "") {
  std::string r = std::string(method) + " sip:bob@127.0.0.1 SIP/2.0\r\n";
  r += "Via: SIP/2.0/UDP " + std::string(via_host) + ";branch=" + std::string(branch) + std::string(via_params) + "\r\n";
  r += "Max-Forwards: 70\r\n";
  r += "From: <sip:alice@127.0.0.1>;tag=fromtag\r\n";
  r += "To: <sip:bob@127.0.0.1>" + (to_tag.empty() ? std::string() : ";tag=" + std::string(to_tag)) + "\r\n";
  r += "Call-ID: " + std::string(call_id) + "\r\n";
  r += "CSeq: " + std::to_string(cseq) + " " + std::string(method) + "\r\n";
  r += "Content-Length: 0\r\n\r\n";
  return r;
}

std::string response(int status, std::string_view method, std::string_view branch, uint32_t cseq = 1,
                     std::string_view to_tag = "totag", std::string_view call_id = "call-1@test") {
  std::string r = "SIP/2.0 " + std::to_string(status) + " Whatever\r\n";
  r += "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=" + std::string(branch) + "\r\n";
  r += "From: <sip:alice@127.0.0.1>;tag=fromtag\r\n";
  r += "To: <sip:bob@127.0.0.1>" + (to_tag.empty() ? std::string() : ";tag=" + std::string(to_tag)) + "\r\n";
  r += "Call-ID: " + std::string(call_id) + "\r\n";
  r += "CSeq: " + std::to_string(cseq) + " " + std::string(method) + "\r\n";
  r += "Content-Length: 0\r\n\r\n";
  return r;
}

struct Rig {
  FakeEnv env;
  RecTu tu;
  TransactionLayer layer{env, tu};
  Rig() { env.on_wake = [this] { layer.on_timer(); }; }
  void deliver(const std::string& bytes, const Flow& from = udp_flow(5070)) {
    TxnMsg m;
    std::string err;
    REQUIRE_MESSAGE(scan(bytes, m, &err), err);
    layer.receive(m, bytes, from);
  }
  std::vector<uint64_t> rel_times(std::string_view prefix, uint64_t t0) const {
    std::vector<uint64_t> out;
    for (auto t : env.times(prefix)) out.push_back(t - t0);
    return out;
  }
};

}  // namespace

TEST_CASE("sip scan: the fields a transaction matches on, compact and folded headers") {
  std::string msg =
      "INVITE sip:bob@example.com SIP/2.0\r\n"
      "v: SIP/2.0/UDP host.example.com:5060;rport;branch=z9hG4bK776asdhds , SIP/2.0/TCP other;branch=z9hG4bKx\r\n"
      "f: \"Alice, A\" <sip:alice@example.com>;tag=1928301774\r\n"
      "t: <sip:bob@example.com>\r\n"
      "i: a84b4c76e66710\r\n"
      "CSeq:\r\n 314159 INVITE\r\n"
      "l: 4\r\n\r\nbody";
  TxnMsg m;
  std::string err;
  REQUIRE_MESSAGE(scan(msg, m, &err), err);
  CHECK(m.is_request);
  CHECK(m.method == "INVITE");
  CHECK(m.uri == "sip:bob@example.com");
  CHECK(m.branch == "z9hG4bK776asdhds");
  CHECK(m.sent_by == "host.example.com:5060");
  CHECK(m.via_transport == "UDP");
  CHECK(m.rport);
  CHECK(m.cseq == 314159);
  CHECK(m.cseq_method == "INVITE");
  CHECK(m.call_id == "a84b4c76e66710");
  CHECK(m.from_tag == "1928301774");
  CHECK(m.to_tag.empty());
  CHECK(msg.substr(m.body_offset) == "body");

  TxnMsg r;
  std::string ringing = response(180, "INVITE", "z9hG4bKabc", 7);  // r views into it
  REQUIRE(scan(ringing, r));
  CHECK(!r.is_request);
  CHECK(r.status == 180);
  CHECK(r.method == "INVITE");
  CHECK(r.to_tag == "totag");

  // What the layer cannot work without is refused with a reason.
  CHECK(!scan("INVITE sip:x SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n", m, &err));
  CHECK(err == "no Via");
  CHECK(!scan(request("INVITE", "z9hG4bK1").replace(request("INVITE", "z9hG4bK1").find("CSeq: 1 INVITE"), 14, "CSeq: 1 BYE"), m, &err));
  CHECK(err == "CSeq method differs from the request's");
  CHECK(!scan("SIP/2.0 99 Low\r\n\r\n", m, &err));
  CHECK(!scan("garbage", m, &err));
  CHECK(!scan(request("OPTIONS", "z9hG4bK1").substr(0, 60), m, &err));  // cut in the headers
}

TEST_CASE("sip txn: non-INVITE client over UDP retransmits E = T1, 2T1 .. T2, times out (F) with one 408") {
  Rig r;
  uint64_t t0 = r.env.now;
  TxnId id = r.layer.send_request(request("OPTIONS", "z9hG4bKnic1"), udp_flow(5060));
  REQUIRE(id != 0);
  r.env.advance(64 * 500 + 1);
  // sends at 0, then 500, 1500, 3500, 7500, 11500, ... every 4000 until 32000
  std::vector<uint64_t> want = {0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500};
  CHECK(r.rel_times("OPTIONS", t0) == want);
  REQUIRE(r.tu.ev.size() == 1);
  CHECK(r.tu.ev[0].what == "resp 408");
  CHECK(r.tu.ev[0].bytes.empty());
  CHECK(!r.layer.exists(id));
  r.env.advance(100000);
  CHECK(r.env.count("OPTIONS") == want.size());  // nothing after the timeout
}

TEST_CASE("sip txn: non-INVITE client: loss, a 100 then duplicated 200, timer K, a late stray") {
  Rig r;
  uint64_t t0 = r.env.now;
  TxnId id = r.layer.send_request(request("REGISTER", "z9hG4bKreg1"), udp_flow(5060));
  r.env.advance(600);  // first copy lost: one retransmission at 500
  r.deliver(response(100, "REGISTER", "z9hG4bKreg1"));
  CHECK(r.layer.state_of(id) == TxnState::Proceeding);
  r.env.advance(4000);  // Proceeding: E fires at T2 intervals
  auto times = r.rel_times("REGISTER", t0);
  REQUIRE(times.size() >= 3);
  CHECK(times[0] == 0);
  CHECK(times[1] == 500);
  CHECK(times[2] == 1500);  // timer E was armed (1000) before the 100 came; the next is T2 later
  r.deliver(response(200, "REGISTER", "z9hG4bKreg1"));
  r.deliver(response(200, "REGISTER", "z9hG4bKreg1"));  // duplicated
  r.deliver(response(100, "REGISTER", "z9hG4bKreg1"));  // reordered, late
  CHECK(r.tu.count("resp 100") == 1);
  CHECK(r.tu.count("resp 200") == 1);
  size_t sends = r.env.count("REGISTER");
  r.env.advance(4999);
  CHECK(r.layer.exists(id));  // timer K: T4 absorbing retransmitted responses
  r.env.advance(2);
  CHECK(!r.layer.exists(id));
  CHECK(r.env.count("REGISTER") == sends);  // no retransmission after the final response
  r.deliver(response(200, "REGISTER", "z9hG4bKreg1"));
  CHECK(r.tu.count("stray 200") == 1);
}

TEST_CASE("sip txn: over TCP nothing is retransmitted; timer F still reports 408; K is zero") {
  Rig r;
  TxnId id = r.layer.send_request(request("MESSAGE", "z9hG4bKtcp1"), tcp_flow(5060, 7));
  r.env.advance(31999);
  CHECK(r.env.count("MESSAGE") == 1);
  r.env.advance(2);
  CHECK(r.tu.count("resp 408") == 1);
  CHECK(!r.layer.exists(id));

  TxnId id2 = r.layer.send_request(request("MESSAGE", "z9hG4bKtcp2"), tcp_flow(5060, 7));
  r.deliver(response(200, "MESSAGE", "z9hG4bKtcp2"), tcp_flow(5060, 7));
  r.env.advance(1);
  CHECK(!r.layer.exists(id2));
}

TEST_CASE("sip txn: over TLS (a stream like TCP) nothing is retransmitted: no timer A / E / G; B reports 408; D and K are zero") {
  Rig r;
  Flow tls = tls_flow(5061, 9);
  CHECK(tls.reliable());
  TxnId inv = r.layer.send_request(request("INVITE", "z9hG4bKtls1"), tls);
  TxnId msg = r.layer.send_request(request("MESSAGE", "z9hG4bKtls2"), tls);
  REQUIRE(inv != 0);
  REQUIRE(msg != 0);
  r.env.advance(31999);
  CHECK(r.env.count("INVITE") == 1);  // over UDP: 7 by now (timer A)
  CHECK(r.env.count("MESSAGE") == 1);
  CHECK(r.env.sent[0].flow.proto == Proto::Tls);
  CHECK(r.env.sent[0].flow.conn == 9);
  r.deliver(response(200, "MESSAGE", "z9hG4bKtls2"), tls);
  r.deliver(response(486, "INVITE", "z9hG4bKtls1"), tls);
  CHECK(r.env.count("ACK") == 1);  // the non-2xx is ACKed on the connection
  r.env.advance(1);
  CHECK(!r.layer.exists(msg));  // timer K = 0
  CHECK(!r.layer.exists(inv));  // timer D = 0

  TxnId late = r.layer.send_request(request("INVITE", "z9hG4bKtls3"), tls);
  r.env.advance(32001);
  CHECK(r.tu.count("resp 408") == 1);  // timer B still runs
  CHECK(!r.layer.exists(late));
  CHECK(r.env.count("INVITE") == 2);

  // A server transaction over TLS: its final response is sent once (no timer G), then it ends.
  r.deliver(request("INVITE", "z9hG4bKtlsin", 7), tls_flow(5070, 9));
  TxnId in = r.tu.ev.back().id;
  REQUIRE(r.layer.respond(in, 486, "Busy Here", "t") == JN_OK);
  r.env.advance(10000);
  CHECK(r.env.count("SIP/2.0 486") == 1);
  CHECK(r.env.sent.back().flow.conn == 9);
}

TEST_CASE("sip txn: a connection that closes ends its client transactions at once with 503 (TLS and TCP), nothing else") {
  Rig r;
  TxnId inv = r.layer.send_request(request("INVITE", "z9hG4bKcl1"), tls_flow(5061, 9));
  TxnId opt = r.layer.send_request(request("OPTIONS", "z9hG4bKcl2"), tls_flow(5061, 9));
  TxnId other = r.layer.send_request(request("OPTIONS", "z9hG4bKcl3"), tcp_flow(5060, 7));
  TxnId udp = r.layer.send_request(request("OPTIONS", "z9hG4bKcl4"), udp_flow(5060));
  r.deliver(response(180, "INVITE", "z9hG4bKcl1"), tls_flow(5061, 9));  // Proceeding: ended too
  r.deliver(request("MESSAGE", "z9hG4bKsrv", 3), tls_flow(5070, 9));     // a server transaction
  TxnId srv = r.tu.ev.back().id;
  r.layer.on_connection_closed(9);
  CHECK(r.tu.count("resp 503") == 2);
  CHECK(!r.layer.exists(inv));
  CHECK(!r.layer.exists(opt));
  CHECK(r.layer.exists(other));  // another connection
  CHECK(r.layer.exists(udp));
  CHECK(r.layer.exists(srv));    // left to its timers
  r.layer.on_connection_closed(9);  // again: nothing more to end
  CHECK(r.tu.count("resp 503") == 2);
  r.layer.on_connection_closed(7);
  CHECK(r.tu.count("resp 503") == 3);
  CHECK(!r.layer.exists(other));
  CHECK(r.tu.count("resp 408") == 0);
}

TEST_CASE("sip txn: save/restore keeps a transaction's TLS flow (no retransmission after the reload)") {
  Rig r;
  TxnId id = r.layer.send_request(request("INVITE", "z9hG4bKtlss"), tls_flow(5061, 9));
  std::string saved = r.layer.save();
  Rig r2;
  std::string err;
  REQUIRE_MESSAGE(r2.layer.restore(saved, err), err);
  REQUIRE(r2.layer.flow_of(id) != nullptr);
  CHECK(r2.layer.flow_of(id)->proto == Proto::Tls);
  CHECK(r2.layer.flow_of(id)->conn == 9);
  r2.deliver(response(486, "INVITE", "z9hG4bKtlss"), tls_flow(5061, 9));
  CHECK(r2.env.count("ACK") == 1);
  r2.env.advance(1);
  CHECK(!r2.layer.exists(id));  // read back as UDP it would absorb retransmissions for timer D (32 s)
}

TEST_CASE("sip txn: INVITE client over UDP: timer A doubles without cap, B gives 408 at 64*T1") {
  Rig r;
  uint64_t t0 = r.env.now;
  TxnId id = r.layer.send_request(request("INVITE", "z9hG4bKinv1"), udp_flow(5060));
  r.env.advance(32001);
  CHECK(r.rel_times("INVITE", t0) == std::vector<uint64_t>{0, 500, 1500, 3500, 7500, 15500, 31500});
  CHECK(r.tu.count("resp 408") == 1);
  CHECK(!r.layer.exists(id));
}

TEST_CASE("sip txn: T1/T2 are configurable") {
  Rig r;
  r.layer.set_timers({100, 400, 1000});
  uint64_t t0 = r.env.now;
  r.layer.send_request(request("OPTIONS", "z9hG4bKcfg"), udp_flow(5060));
  r.env.advance(64 * 100 + 1);
  CHECK(r.rel_times("OPTIONS", t0) ==
        std::vector<uint64_t>{0, 100, 300, 700, 1100, 1500, 1900, 2300, 2700, 3100, 3500, 3900, 4300, 4700, 5100, 5500, 5900, 6300});
  CHECK(r.tu.count("resp 408") == 1);
}

TEST_CASE("sip txn: INVITE client: 180 stops A; a non-2xx is ACKed in the transaction, again on each retransmission") {
  Rig r;
  TxnId id = r.layer.send_request(request("INVITE", "z9hG4bKinv2"), udp_flow(5060));
  r.deliver(response(180, "INVITE", "z9hG4bKinv2"));
  r.env.advance(10000);
  CHECK(r.env.count("INVITE") == 1);  // no retransmission once a provisional came
  r.deliver(response(486, "INVITE", "z9hG4bKinv2", 1, "busytag"));
  REQUIRE(r.env.count("ACK") == 1);
  std::string ack = r.env.sent.back().bytes;
  TxnMsg am;
  REQUIRE(scan(ack, am));
  CHECK(am.uri == "sip:bob@127.0.0.1");
  CHECK(am.branch == "z9hG4bKinv2");  // same branch as the INVITE (§17.1.1.3)
  CHECK(am.cseq == 1);
  CHECK(am.cseq_method == "ACK");
  CHECK(am.to_tag == "busytag");  // the To of the response
  r.deliver(response(486, "INVITE", "z9hG4bKinv2", 1, "busytag"));  // our ACK was lost
  CHECK(r.env.count("ACK") == 2);
  CHECK(r.tu.count("resp 486") == 1);  // the TU sees it once
  CHECK(r.tu.count("resp 180") == 1);
  r.env.advance(32001);  // timer D
  CHECK(!r.layer.exists(id));
  CHECK(r.tu.count("resp 408") == 0);
}

TEST_CASE("sip txn: INVITE client: every 2xx goes to the TU (it ACKs), a late 180 after the 200 does not") {
  Rig r;
  TxnId id = r.layer.send_request(request("INVITE", "z9hG4bKinv3"), udp_flow(5060));
  r.deliver(response(200, "INVITE", "z9hG4bKinv3"));
  r.deliver(response(180, "INVITE", "z9hG4bKinv3"));  // reordered
  r.deliver(response(200, "INVITE", "z9hG4bKinv3"));  // retransmitted by the UAS
  CHECK(r.tu.count("resp 200") == 2);
  CHECK(r.tu.count("resp 180") == 0);
  CHECK(r.env.count("ACK") == 0);  // the ACK of a 2xx is the TU's (a new transaction-less request)
  CHECK(r.layer.state_of(id) == TxnState::Accepted);
  r.env.advance(32001);  // timer M
  CHECK(!r.layer.exists(id));
  CHECK(r.env.count("INVITE") == 1);
}

TEST_CASE("sip txn: INVITE client in Proceeding gives up after timer C with 408") {
  Rig r;
  r.layer.set_timers({500, 4000, 5000, 60000});
  TxnId id = r.layer.send_request(request("INVITE", "z9hG4bKinvC"), udp_flow(5060));
  r.deliver(response(183, "INVITE", "z9hG4bKinvC"));
  r.env.advance(59999);
  CHECK(r.layer.exists(id));
  r.env.advance(2);
  CHECK(r.tu.count("resp 408") == 1);
  CHECK(!r.layer.exists(id));
}

TEST_CASE("sip txn: INVITE server: 100 at once, retransmissions answered not passed on, G/H, the ACK stops G") {
  Rig r;
  std::string inv = request("INVITE", "z9hG4bKsrv1");
  r.deliver(inv);
  REQUIRE(r.tu.ev.size() == 1);
  TxnId id = r.tu.ev[0].id;
  CHECK(r.env.count("SIP/2.0 100 Trying") == 1);
  r.deliver(inv);  // retransmission: the 100 again
  CHECK(r.env.count("SIP/2.0 100 Trying") == 2);
  CHECK(r.tu.count("req INVITE") == 1);
  uint64_t t0 = r.env.now;
  REQUIRE(r.layer.respond(id, 486, "Busy Here", "uas1") == JN_OK);
  CHECK(r.layer.respond(id, 200, "OK", "uas1") == JN_ERR_STATE);
  r.env.advance(7600);
  CHECK(r.rel_times("SIP/2.0 486", t0) == std::vector<uint64_t>{0, 500, 1500, 3500, 7500});
  r.deliver(inv);  // INVITE retransmitted in Completed: the 486 again
  CHECK(r.env.count("SIP/2.0 486") == 6);
  r.deliver(request("ACK", "z9hG4bKsrv1", 1, "call-1@test", "uas1"));
  CHECK(r.layer.state_of(id) == TxnState::Confirmed);
  CHECK(r.tu.count("req ACK") == 0);  // the ACK of a non-2xx stays in the transaction
  r.env.advance(4000);
  CHECK(r.env.count("SIP/2.0 486") == 6);  // G stopped
  r.env.advance(1001);                      // timer I = T4
  CHECK(!r.layer.exists(id));
  CHECK(r.tu.count("ack_timeout") == 0);
}

TEST_CASE("sip txn: INVITE server: no ACK for the non-2xx: timer H tells the TU") {
  Rig r;
  r.deliver(request("INVITE", "z9hG4bKsrvH"));
  TxnId id = r.tu.ev[0].id;
  r.layer.respond(id, 603, "Decline", "t");
  r.env.advance(32001);
  CHECK(r.tu.count("ack_timeout") == 1);
  CHECK(!r.layer.exists(id));
  CHECK(r.env.count("SIP/2.0 603") == 11);  // 0 .5 1.5 3.5 7.5 11.5 ... 31.5
}

TEST_CASE("sip txn: INVITE server: the 2xx is retransmitted until its ACK (a new branch), which goes to the TU") {
  Rig r;
  std::string inv = request("INVITE", "z9hG4bKsrv2", 5, "call-2@test");
  r.deliver(inv);
  TxnId id = r.tu.ev[0].id;
  uint64_t t0 = r.env.now;
  r.layer.respond(id, 200, "OK", "uas2");
  r.env.advance(1600);
  CHECK(r.rel_times("SIP/2.0 200", t0) == std::vector<uint64_t>{0, 500, 1500});
  r.deliver(inv);  // a retransmitted INVITE is answered with the 2xx, not passed on
  CHECK(r.tu.count("req INVITE") == 1);
  CHECK(r.env.count("SIP/2.0 200") == 4);
  r.deliver(request("ACK", "z9hG4bKackbranch", 5, "call-2@test", "uas2"));
  CHECK(r.tu.count("req ACK") == 1);
  r.env.advance(20000);
  CHECK(r.env.count("SIP/2.0 200") == 4);  // stopped by the ACK
  CHECK(r.tu.count("ack_timeout") == 0);
  r.env.advance(20000);
  CHECK(!r.layer.exists(id));

  // Over TCP too (§13.3.1.4: independent of the transport), and no ACK: the TU is told.
  Rig t;
  t.deliver(request("INVITE", "z9hG4bKsrv3"), tcp_flow(5070, 9));
  TxnId id3 = t.tu.ev[0].id;
  t.layer.respond(id3, 200, "OK", "x");
  t.env.advance(32001);
  CHECK(t.env.count("SIP/2.0 200") == 11);
  CHECK(t.tu.count("ack_timeout") == 1);
  for (auto& s : t.env.sent) CHECK(s.flow.conn == 9);  // answered on the connection it came on
}

TEST_CASE("sip txn: non-INVITE server: Trying absorbs, the final response is resent, J ends it") {
  Rig r;
  std::string reg = request("REGISTER", "z9hG4bKnis1");
  r.deliver(reg);
  TxnId id = r.tu.ev[0].id;
  r.deliver(reg);  // Trying: absorbed, nothing to resend
  CHECK(r.env.sent.empty());
  CHECK(r.tu.count("req REGISTER") == 1);
  r.layer.respond(id, 401, "Unauthorized", "t1", "WWW-Authenticate: Digest realm=\"x\", nonce=\"n\"\r\n");
  r.deliver(reg);
  r.deliver(reg);
  CHECK(r.env.count("SIP/2.0 401") == 3);
  CHECK(r.env.sent.back().bytes.find("WWW-Authenticate: Digest realm=\"x\"") != std::string::npos);
  r.env.advance(31999);
  CHECK(r.layer.exists(id));
  r.env.advance(2);
  CHECK(!r.layer.exists(id));
  CHECK(r.env.count("SIP/2.0 401") == 3);  // responses are never retransmitted on their own
}

TEST_CASE("sip txn: a response copies Via/From/To/Call-ID/CSeq, adds the To tag, received and rport") {
  Rig r;
  r.deliver(request("OPTIONS", "z9hG4bKvia", 3, "c@x", "", "10.0.0.9:5070", ";rport"), udp_flow(40000));
  TxnId id = r.tu.ev[0].id;
  r.layer.respond(id, 200, "OK", "mytag", "Allow: INVITE, ACK\r\n", "v=0\r\n", "application/sdp");
  std::string resp = r.env.sent.back().bytes;
  CHECK(resp.substr(0, 15) == "SIP/2.0 200 OK\r");
  CHECK(resp.find("Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKvia;rport=40000;received=127.0.0.1\r\n") != std::string::npos);
  CHECK(resp.find("To: <sip:bob@127.0.0.1>;tag=mytag\r\n") != std::string::npos);
  CHECK(resp.find("From: <sip:alice@127.0.0.1>;tag=fromtag\r\n") != std::string::npos);
  CHECK(resp.find("Call-ID: c@x\r\n") != std::string::npos);
  CHECK(resp.find("CSeq: 3 OPTIONS\r\n") != std::string::npos);
  CHECK(resp.find("Allow: INVITE, ACK\r\n") != std::string::npos);
  CHECK(resp.find("Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n") != std::string::npos);
  // answered where it came from, not where the Via says
  CHECK(r.env.sent.back().flow.peer.port == 40000);

  // A sent-by that is the source already, no rport: the Via is left alone.
  Rig q;
  q.deliver(request("OPTIONS", "z9hG4bKvia2", 1, "c2@x", "", "127.0.0.1:5070"), udp_flow(5070));
  q.layer.respond(q.tu.ev[0].id, 200, "OK");
  CHECK(q.env.sent.back().bytes.find("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKvia2\r\n") != std::string::npos);
}

TEST_CASE("sip txn: CANCEL received: 200 to the CANCEL, 487 to the INVITE, the TU is told; unknown: 481") {
  Rig r;
  r.deliver(request("INVITE", "z9hG4bKcan1"));
  TxnId inv = r.tu.ev[0].id;
  r.layer.respond(inv, 180, "Ringing", "ring1");
  r.deliver(request("CANCEL", "z9hG4bKcan1"));
  CHECK(r.env.count("SIP/2.0 200 OK") == 1);
  REQUIRE(r.env.count("SIP/2.0 487") == 1);
  TxnMsg m;
  for (auto& s : r.env.sent)
    if (s.bytes.rfind("SIP/2.0 487", 0) == 0) REQUIRE(scan(s.bytes, m));
  CHECK(m.to_tag == "ring1");  // the tag of the earlier provisional
  CHECK(m.cseq_method == "INVITE");
  CHECK(r.tu.count("cancelled") == 1);
  r.deliver(request("CANCEL", "z9hG4bKcan1"));  // retransmitted CANCEL: its 200 again, no new event
  CHECK(r.env.count("SIP/2.0 200 OK") == 2);
  CHECK(r.tu.count("cancelled") == 1);
  r.deliver(request("ACK", "z9hG4bKcan1", 1, "call-1@test", "ring1"));
  CHECK(r.layer.state_of(inv) == TxnState::Confirmed);

  r.deliver(request("CANCEL", "z9hG4bKnothing", 1, "other@test"));
  CHECK(r.env.count("SIP/2.0 481") == 1);
}

TEST_CASE("sip txn: CANCEL sent: held until a provisional, same branch and CSeq number; no final: 408") {
  Rig r;
  TxnId id = r.layer.send_request(request("INVITE", "z9hG4bKuc1", 9), udp_flow(5060));
  REQUIRE(r.layer.cancel(id) == JN_OK);
  CHECK(r.env.count("CANCEL") == 0);  // §9.1: not before a provisional response
  r.deliver(response(180, "INVITE", "z9hG4bKuc1", 9));
  REQUIRE(r.env.count("CANCEL") == 1);
  TxnMsg c;
  REQUIRE(scan(r.env.sent.back().bytes, c));
  CHECK(c.branch == "z9hG4bKuc1");
  CHECK(c.cseq == 9);
  CHECK(c.cseq_method == "CANCEL");
  CHECK(c.to_tag.empty());  // the INVITE's To
  r.deliver(response(200, "CANCEL", "z9hG4bKuc1", 9));
  CHECK(r.tu.count("resp 200") == 1);
  r.deliver(response(487, "INVITE", "z9hG4bKuc1", 9));
  CHECK(r.tu.count("resp 487") == 1);
  CHECK(r.env.count("ACK") == 1);

  // A UAS that never answers the INVITE after the CANCEL: 408 after 64*T1.
  Rig q;
  TxnId id2 = q.layer.send_request(request("INVITE", "z9hG4bKuc2"), udp_flow(5060));
  q.deliver(response(100, "INVITE", "z9hG4bKuc2"));
  q.layer.cancel(id2);
  q.deliver(response(200, "CANCEL", "z9hG4bKuc2"));
  q.env.advance(32001);
  CHECK(q.tu.count("resp 408") == 1);
  CHECK(!q.layer.exists(id2));
}

TEST_CASE("sip txn: transport errors: refused first send returns 0; a failed retransmission reports 503") {
  Rig r;
  r.env.fail_sends = 1;
  CHECK(r.layer.send_request(request("OPTIONS", "z9hG4bKerr1"), udp_flow(5060)) == 0);
  CHECK(r.layer.size() == 0);
  TxnId id = r.layer.send_request(request("OPTIONS", "z9hG4bKerr2"), udp_flow(5060));
  r.env.fail_sends = 1;
  r.env.advance(501);
  CHECK(r.tu.count("resp 503") == 1);
  CHECK(!r.layer.exists(id));
  // requests the layer refuses to start
  CHECK(r.layer.send_request(request("ACK", "z9hG4bKerr3"), udp_flow(5060)) == 0);
  CHECK(r.layer.send_request(request("OPTIONS", "oldbranch"), udp_flow(5060)) == 0);
  TxnId a = r.layer.send_request(request("OPTIONS", "z9hG4bKdup"), udp_flow(5060));
  CHECK(a != 0);
  CHECK(r.layer.send_request(request("OPTIONS", "z9hG4bKdup"), udp_flow(5060)) == 0);
}

TEST_CASE("sip txn: save/restore in the middle of INVITEs: timers, retransmissions and matching go on") {
  FakeEnv env;
  RecTu tu1;
  auto layer1 = std::make_unique<TransactionLayer>(env, tu1);
  env.on_wake = [&] { layer1->on_timer(); };
  uint64_t t0 = env.now;
  TxnId uac = layer1->send_request(request("INVITE", "z9hG4bKsave1"), udp_flow(5060));
  {
    std::string inv = request("INVITE", "z9hG4bKsave2", 1, "call-s@test");
    TxnMsg m;
    REQUIRE(scan(inv, m));
    layer1->receive(m, inv, udp_flow(5070));
  }
  TxnId uas = tu1.ev.at(0).id;
  layer1->respond(uas, 200, "OK", "s2");
  env.advance(600);  // one INVITE retransmission (500), one 200 retransmission (500)
  std::string saved = layer1->save();
  layer1.reset();  // the old instance is gone (a reload)

  RecTu tu2;
  TransactionLayer layer2(env, tu2);
  env.on_wake = [&] { layer2.on_timer(); };
  std::string err;
  REQUIRE_MESSAGE(layer2.restore(saved, err), err);
  CHECK(layer2.size() == 2);
  CHECK(layer2.state_of(uac) == TxnState::Calling);
  CHECK(layer2.state_of(uas) == TxnState::Accepted);
  env.advance(1000);  // timer A's next firing: 1500 after the start
  std::vector<uint64_t> inv_times;
  for (auto t : env.times("INVITE")) inv_times.push_back(t - t0);
  CHECK(inv_times == std::vector<uint64_t>{0, 500, 1500});
  std::string resp = response(180, "INVITE", "z9hG4bKsave1");
  TxnMsg m;
  REQUIRE(scan(resp, m));
  layer2.receive(m, resp, udp_flow(5060));
  CHECK(tu2.count("resp 180") == 1);
  std::string ack = request("ACK", "z9hG4bKnewone", 1, "call-s@test", "s2");
  REQUIRE(scan(ack, m));
  layer2.receive(m, ack, udp_flow(5070));
  CHECK(tu2.count("req ACK") == 1);
  size_t oks = env.count("SIP/2.0 200");
  env.advance(20000);
  CHECK(env.count("SIP/2.0 200") == oks);  // the restored 2xx retransmission stopped at its ACK
  // a new transaction gets a fresh id
  TxnId fresh = layer2.send_request(request("OPTIONS", "z9hG4bKfresh"), udp_flow(5060));
  CHECK(fresh > uas);
  CHECK(fresh > uac);
  CHECK(!layer2.restore("{\"v\":9}", err));
  CHECK(!layer2.restore("not json", err));
}

TEST_CASE("sip txn: the flat index under churn agrees with a reference multimap (shared keys, backward-shift erase)") {
  junction::sip::detail::FlatIndex idx;
  std::unordered_multimap<uint64_t, uint32_t> ref;
  uint64_t x = 88172645463325252ull;  // xorshift: the same sequence every run
  auto rnd = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  std::vector<std::pair<uint64_t, uint32_t>> live;
  for (int step = 0; step < 60000; ++step) {
    // few distinct keys (collisions and runs) and a bias to grow then shrink
    bool add = live.empty() || (rnd() % 100) < (step < 30000 ? 60u : 40u);
    if (add) {
      uint64_t k = 1 + rnd() % 5000;
      uint32_t v = uint32_t(step);
      idx.insert(k, v);
      ref.emplace(k, v);
      live.emplace_back(k, v);
    } else {
      size_t at = rnd() % live.size();
      auto [k, v] = live[at];
      live[at] = live.back();
      live.pop_back();
      REQUIRE(idx.erase(k, v));
      auto range = ref.equal_range(k);
      for (auto it = range.first; it != range.second; ++it)
        if (it->second == v) {
          ref.erase(it);
          break;
        }
      CHECK(!idx.erase(k, v));  // gone
    }
    if (step % 997 == 0) {
      REQUIRE(idx.size() == ref.size());
      for (auto& [k, v] : live) {
        uint32_t want = v;
        CHECK(idx.find(k, [&](uint32_t got) { return got == want; }) == want);
      }
      CHECK(idx.find(7777, [](uint32_t) { return true; }) == UINT32_MAX);  // never inserted
    }
  }
}

TEST_CASE("sip txn: 3000 server transactions under churn: live ones absorb retransmissions, ended ones are new") {
  Rig r;
  std::vector<std::string> reqs;
  std::vector<TxnId> ids;
  for (int i = 0; i < 3000; ++i) {
    reqs.push_back(request("REGISTER", "z9hG4bKchurn" + std::to_string(i), 1, "c" + std::to_string(i)));
    r.deliver(reqs.back());
    ids.push_back(r.tu.ev.back().id);
    r.layer.respond(ids.back(), 200, "OK", "t");
    if (i % 100 == 99) r.env.advance(1000);  // 30 s in all: the first ones reach timer J
  }
  CHECK(r.layer.size() == 3000);
  r.env.advance(4500);  // t = 34.5 s: batches made at 0, 1 and 2 s have reached timer J (32 s)
  size_t ended = 0;
  for (int i = 0; i < 3000; ++i) {
    size_t before_req = r.tu.count("req REGISTER"), before_sent = r.env.count("SIP/2.0 200");
    bool live = r.layer.exists(ids[i]);
    r.deliver(reqs[i]);
    if (live) {
      CHECK(r.tu.count("req REGISTER") == before_req);  // absorbed
      CHECK(r.env.count("SIP/2.0 200") == before_sent + 1);  // answered from the transaction
    } else {
      ++ended;
      CHECK(r.tu.count("req REGISTER") == before_req + 1);  // a new transaction
      r.layer.respond(r.tu.ev.back().id, 200, "OK", "t");
    }
  }
  CHECK(ended == 300);
  r.env.advance(64000);  // everything ends; the slots are reused by the next ones
  CHECK(r.layer.size() == 0);
  r.deliver(reqs[0]);
  CHECK(r.layer.size() == 1);
  CHECK(r.layer.exists(r.tu.ev.back().id));
  CHECK(!r.layer.exists(ids[0]));  // an old id never names a reused slot's transaction
}

TEST_CASE("sip txn: a response built from the parsed request equals the one built from its bytes") {
  const std::string reqs[] = {
      request("INVITE", "z9hG4bKeq1", 3, "eq-1", "", "127.0.0.1:5070", ";rport"),
      "REGISTER sip:127.0.0.1 SIP/2.0\r\n"
      "v: SIP/2.0/UDP 10.0.0.9:4000\r\n ;branch=z9hG4bKfold;rport, SIP/2.0/UDP 10.0.0.8;branch=z9hG4bKtwo\r\n"
      "Via: SIP/2.0/TCP 10.0.0.7;branch=z9hG4bKthree;received=10.9.9.9\r\n"
      "f: <sip:a@x>;tag=1\r\nt: <sip:a@x>\r\ni: eq-2\r\nCSeq: 7 REGISTER\r\n"
      "Record-Route: <sip:p1;lr>\r\nRecord-Route: <sip:p2;lr>\r\nl: 0\r\n\r\n",
      "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP [::1]:5070;branch=z9hG4bKv6;received=::1\r\n"
      "From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>;tag=already\r\nCall-ID: eq-3\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
  };
  for (const std::string& req : reqs) {
    Message m;
    REQUIRE(parse(req, m) == ParseStatus::Ok);
    for (int status : {100, 180, 200, 401, 486}) {
      for (auto [received, rport] : {std::pair<std::string_view, uint16_t>{"", 0}, {"127.0.0.1", 4000}, {"192.0.2.1", 0}}) {
        std::string from_bytes = TransactionLayer::build_response(req, status, "Why", "tt", "Server: ua\r\nX-A: 1\r\n", "body",
                                                                  "text/plain", received, rport);
        std::string from_parsed =
            TransactionLayer::build_response(m, status, "Why", "tt", "ua", "X-A: 1\r\n", "body", "text/plain", received, rport);
        CHECK(from_parsed == from_bytes);
        // Into a reused buffer (the stateless answers): the same bytes, whatever it held before.
        std::string reused(700, 'x');
        TransactionLayer::build_response(reused, m, status, "Why", "tt", "ua", "X-A: 1\r\n", "body", "text/plain", received,
                                         rport);
        CHECK(reused == from_bytes);
      }
    }
  }
  // and what they build (one of them, spelled out)
  Message m;
  REQUIRE(parse(reqs[1], m) == ParseStatus::Ok);
  std::string r = TransactionLayer::build_response(m, 180, "Ringing", "tt", {}, {}, {}, {}, "127.0.0.1", 4000);
  CHECK(r ==
        "SIP/2.0 180 Ringing\r\n"
        "Via: SIP/2.0/UDP 10.0.0.9:4000\r\n ;branch=z9hG4bKfold;rport=4000;received=127.0.0.1, SIP/2.0/UDP "
        "10.0.0.8;branch=z9hG4bKtwo\r\n"
        "Via: SIP/2.0/TCP 10.0.0.7;branch=z9hG4bKthree;received=10.9.9.9\r\n"
        "From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>;tag=tt\r\nCall-ID: eq-2\r\nCSeq: 7 REGISTER\r\n"
        "Record-Route: <sip:p1;lr>\r\nRecord-Route: <sip:p2;lr>\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("sip txn: the parsed builder copies only lines written as it would write them") {
  // Another case of the name, no space or a tab after ':', bare LF ends: rewritten; a folded
  // From, a second Via and the Record-Routes of a 2xx: copied; ;rport filled, received= kept.
  const std::string lf =
      "MESSAGE sip:127.0.0.1 SIP/2.0\n"
      "Via: SIP/2.0/UDP 10.0.0.9:4000;rport;branch=z9hG4bKlf;received=10.0.0.9\n"
      "FROM: <sip:a@x>;tag=1\nTo:<sip:b@x>\nCall-Id: eq-4\nCSeq:\t2 MESSAGE\nContent-Length: 0\n\n";
  const std::string mixed =
      "MESSAGE sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:4000;branch=z9hG4bKmix;rport\r\n"
      "Via: SIP/2.0/UDP 10.0.0.8:4000;branch=z9hG4bKsecond\r\n"
      "From: <sip:a@x>\r\n ;tag=fold\r\nMax-Forwards: 70\r\nTo: <sip:b@x>\r\nCall-ID: eq-5\r\nX-Between: 1\r\n"
      "CSeq: 3 MESSAGE\r\nRecord-Route: <sip:p1;lr>\r\nrecord-route: <sip:p2;lr>\r\nContent-Length: 0\r\n\r\n";
  Message m;
  REQUIRE(parse(lf, m) == ParseStatus::Ok);
  std::string out = "an earlier, longer answer that must not show";
  TransactionLayer::build_response(out, m, 200, "OK", "tt", "ua", {}, {}, {}, "127.0.0.1", 4000);
  CHECK(out ==
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 10.0.0.9:4000;rport=4000;branch=z9hG4bKlf;received=10.0.0.9\r\n"
        "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=tt\r\nCall-ID: eq-4\r\nCSeq: 2 MESSAGE\r\n"
        "Server: ua\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(parse(mixed, m) == ParseStatus::Ok);
  TransactionLayer::build_response(out, m, 200, "OK", "tt", {}, {}, {}, {}, "127.0.0.1", 4000);
  CHECK(out ==
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 10.0.0.9:4000;branch=z9hG4bKmix;rport=4000;received=127.0.0.1\r\n"
        "Via: SIP/2.0/UDP 10.0.0.8:4000;branch=z9hG4bKsecond\r\n"
        "From: <sip:a@x>\r\n ;tag=fold\r\nTo: <sip:b@x>;tag=tt\r\nCall-ID: eq-5\r\nCSeq: 3 MESSAGE\r\n"
        "Record-Route: <sip:p1;lr>\r\nRecord-Route: <sip:p2;lr>\r\nContent-Length: 0\r\n\r\n");
  TransactionLayer::build_response(out, m, 486, "Busy Here", "tt", {}, {}, {}, {}, {}, 0);
  CHECK(out ==
        "SIP/2.0 486 Busy Here\r\n"
        "Via: SIP/2.0/UDP 10.0.0.9:4000;branch=z9hG4bKmix;rport\r\n"
        "Via: SIP/2.0/UDP 10.0.0.8:4000;branch=z9hG4bKsecond\r\n"
        "From: <sip:a@x>\r\n ;tag=fold\r\nTo: <sip:b@x>;tag=tt\r\nCall-ID: eq-5\r\nCSeq: 3 MESSAGE\r\n"
        "Content-Length: 0\r\n\r\n");
}
