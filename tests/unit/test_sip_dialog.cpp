// sdk/sip dialogs (RFC 3261 §12) and the Stack over a fake environment: UAS and UAC dialogs,
// early -> confirmed, route sets (loose and strict), target refresh, CSeq rules, in-dialog
// requests, state round trip; the stack's answers to bad input and keepalives.
#include <junction/sip/dialog.hpp>
#include <junction/sip/stack.hpp>

#include "sip_fake_env.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace junction::sip;
using junction::sip::testing::FakeEnv;
using junction::sip::testing::tcp_flow;
using junction::sip::testing::tls_flow;
using junction::sip::testing::udp_flow;

namespace {

struct NullUser : StackUser {
  std::vector<std::string> seen;
  std::vector<TxnId> ids;
  void on_request(TxnId id, const Message& m, const Flow&) override {
    seen.push_back("req " + std::string(m.method()));
    ids.push_back(id);
  }
  void on_response(TxnId, int status, const Message*) override { seen.push_back("resp " + std::to_string(status)); }
  void on_wake() override { seen.push_back("wake"); }
};

struct Rig {
  FakeEnv env;
  NullUser user;
  Stack stack;
  Rig() : stack(env, user, StackConfig{"127.0.0.1", 5060, 5060, {}, {}, {}}) { env.on_wake = [this] { stack.on_timer(); }; }
};

Message parsed(const std::string& bytes) {
  Message m;
  REQUIRE(parse(bytes, m) == ParseStatus::Ok);
  return m;
}

const std::string kInvite =
    "INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKaaa;rport\r\n"
    "Record-Route: <sip:p1.example.com;lr>\r\n"
    "Record-Route: <sip:p2.example.com;lr>\r\n"
    "From: \"Alice\" <sip:alice@127.0.0.1>;tag=atag\r\n"
    "To: <sip:bob@127.0.0.1>\r\n"
    "Call-ID: dlg-1\r\n"
    "CSeq: 10 INVITE\r\n"
    "Contact: <sip:alice@127.0.0.1:5070>\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n";

std::string header_of(const std::string& msg, std::string_view name) {
  Message m = parsed(msg);
  const Header* h = m.find(name);
  return h ? std::string(h->value) : std::string();
}
std::vector<std::string> all_of(const std::string& msg, HeaderId id) {
  Message m = parsed(msg);
  std::vector<std::string> out;
  for (const Header* h = m.find(id); h; h = m.next(h)) out.emplace_back(h->value);
  return out;
}

}  // namespace

TEST_CASE("sip dialog: UAS from an INVITE: route set as received, BYE goes to the Contact through the routes") {
  Rig r;
  Message inv = parsed(kInvite);
  Dialog d;
  std::string err;
  REQUIRE_MESSAGE(Dialog::from_request(inv, udp_flow(5070), "btag", "<sip:bob@127.0.0.1:5060>", d, &err), err);
  CHECK(!d.uac);
  CHECK(d.state == DialogState::Early);
  CHECK(d.remote_target == "sip:alice@127.0.0.1:5070");
  CHECK(d.route_set == std::vector<std::string>{"<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"});
  CHECK(d.remote_cseq == 10);
  CHECK(d.local_uri == "<sip:bob@127.0.0.1>");
  CHECK(d.remote_uri == "\"Alice\" <sip:alice@127.0.0.1>");
  d.confirm();
  std::string bye = d.request(r.stack, "BYE");
  Message b = parsed(bye);
  CHECK(b.method() == "BYE");
  CHECK(b.request_uri() == "sip:alice@127.0.0.1:5070");  // loose routing: the target stays
  CHECK(all_of(bye, HeaderId::Route) == std::vector<std::string>{"<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"});
  CHECK(b.from_tag() == "btag");
  CHECK(b.to_tag() == "atag");
  CHECK(b.call_id() == "dlg-1");
  CHECK(b.cseq().seq == 1);  // the UAS's own CSeq space starts fresh
  CHECK(b.top_via().rfc3261_branch());
  std::string bye2 = d.request(r.stack, "INFO", "Info-Package: x\r\n", "hello", "text/plain");
  CHECK(parsed(bye2).cseq().seq == 2);
  CHECK(parsed(bye2).body() == "hello");
  CHECK(header_of(bye2, "Info-Package") == "x");
  CHECK(parsed(bye2).top_via().branch != b.top_via().branch);

  // Missing pieces are refused with a reason.
  std::string no_contact = kInvite;
  no_contact.erase(no_contact.find("Contact:"), std::string("Contact: <sip:alice@127.0.0.1:5070>\r\n").size());
  CHECK(!Dialog::from_request(parsed(no_contact), udp_flow(5070), "t", "", d, &err));
  CHECK(err == "a dialog-creating request needs a Contact");
}

TEST_CASE("sip dialog: UAC: early on 180, confirmed by the 200 whose route set wins, ACK keeps the INVITE's CSeq") {
  Rig r;
  std::string inv =
      "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKuac\r\n"
      "From: <sip:alice@127.0.0.1>;tag=mine\r\nTo: <sip:bob@example.com>\r\nCall-ID: dlg-2\r\nCSeq: 5 INVITE\r\n"
      "Contact: <sip:alice@127.0.0.1:5060>\r\nContent-Length: 0\r\n\r\n";
  std::string ringing =
      "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKuac\r\n"
      "Record-Route: <sip:early.example.com;lr>\r\n"
      "From: <sip:alice@127.0.0.1>;tag=mine\r\nTo: <sip:bob@example.com>;tag=theirs\r\nCall-ID: dlg-2\r\nCSeq: 5 INVITE\r\n"
      "Contact: <sip:bob@10.0.0.2:5062>\r\nContent-Length: 0\r\n\r\n";
  std::string ok =
      "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKuac\r\n"
      "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n"
      "From: <sip:alice@127.0.0.1>;tag=mine\r\nTo: <sip:bob@example.com>;tag=theirs\r\nCall-ID: dlg-2\r\nCSeq: 5 INVITE\r\n"
      "Contact: <sip:bob@10.0.0.2:5064>\r\nContent-Length: 0\r\n\r\n";
  Dialog d;
  std::string err;
  REQUIRE_MESSAGE(Dialog::from_response(inv, parsed(ringing), udp_flow(5062), "<sip:alice@127.0.0.1:5060>", d, &err), err);
  CHECK(d.uac);
  CHECK(d.state == DialogState::Early);
  CHECK(d.route_set == std::vector<std::string>{"<sip:early.example.com;lr>"});
  d.on_response(parsed(ok));
  CHECK(d.state == DialogState::Confirmed);
  CHECK(d.remote_target == "sip:bob@10.0.0.2:5064");  // refreshed by the 2xx
  // reversed on the UAC (§12.1.2): p1 is next to us
  CHECK(d.route_set == std::vector<std::string>{"<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"});
  std::string ack = d.ack(r.stack, 5);
  Message a = parsed(ack);
  CHECK(a.method() == "ACK");
  CHECK(a.cseq().seq == 5);
  CHECK(a.cseq().method == "ACK");
  CHECK(a.top_via().branch != "z9hG4bKuac");  // the ACK of a 2xx is a new transaction
  CHECK(parsed(d.request(r.stack, "BYE")).cseq().seq == 6);

  DialogSet set;
  set.add(d);
  CHECK(set.find(parsed(ok)) != nullptr);  // a response: From tag is ours
  std::string bye_in =
      "BYE sip:alice@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5064;branch=z9hG4bKbye\r\n"
      "From: <sip:bob@example.com>;tag=theirs\r\nTo: <sip:alice@127.0.0.1>;tag=mine\r\nCall-ID: dlg-2\r\nCSeq: 7 BYE\r\n"
      "Content-Length: 0\r\n\r\n";
  Dialog* found = set.find(parsed(bye_in));  // a request: To tag is ours
  REQUIRE(found != nullptr);
  CHECK(found->on_request(parsed(bye_in), udp_flow(5064)));
  CHECK(!found->on_request(parsed(bye_in), udp_flow(5064)));  // same CSeq again: out of order (500)

  // a 2xx without a To tag makes no dialog
  std::string notag = ok;
  notag.replace(notag.find(";tag=theirs"), 11, "");
  CHECK(!Dialog::from_response(inv, parsed(notag), udp_flow(5062), "", d, &err));
}

TEST_CASE("sip dialog: strict routing puts the first route in the Request-URI and the target last") {
  Rig r;
  Dialog d;
  d.call_id = "c";
  d.local_tag = "l";
  d.remote_tag = "rt";
  d.local_uri = "<sip:a@x>";
  d.remote_uri = "<sip:b@y>";
  d.remote_target = "sip:b@10.0.0.9";
  d.route_set = {"<sip:strict.example.com>", "<sip:p2.example.com;lr>"};
  d.state = DialogState::Confirmed;
  std::string req = d.request(r.stack, "MESSAGE");
  CHECK(parsed(req).request_uri() == "sip:strict.example.com");
  CHECK(all_of(req, HeaderId::Route) == std::vector<std::string>{"<sip:p2.example.com;lr>", "<sip:b@10.0.0.9>"});
}

TEST_CASE("sip dialog: re-INVITE refreshes the target; ACK/CANCEL do not count in the CSeq; JSON round trip") {
  Dialog d;
  REQUIRE(Dialog::from_request(parsed(kInvite), udp_flow(5070), "btag", "<sip:bob@127.0.0.1>", d));
  std::string reinv = kInvite;
  reinv.replace(reinv.find("To: <sip:bob@127.0.0.1>"), 23, "To: <sip:bob@127.0.0.1>;tag=btag");
  reinv.replace(reinv.find("CSeq: 10"), 8, "CSeq: 11");
  reinv.replace(reinv.find("alice@127.0.0.1:5070>"), 21, "alice@127.0.0.1:6000>");
  std::string ack = kInvite;
  ack.replace(ack.find("CSeq: 10 INVITE"), 15, "CSeq: 10 ACK");
  ack.replace(0, 6, "ACK");
  CHECK(d.on_request(parsed(ack), udp_flow(5070)));
  CHECK(d.on_request(parsed(reinv), udp_flow(6000)));
  CHECK(d.remote_target == "sip:alice@127.0.0.1:6000");
  CHECK(d.remote_cseq == 11);
  CHECK(d.flow.peer.port == 6000);  // the peer's real source follows it
  Dialog back;
  REQUIRE(Dialog::from_json(d.to_json(), back));
  CHECK(back.key() == d.key());
  CHECK(back.route_set == d.route_set);
  CHECK(back.remote_cseq == 11);
  CHECK(back.flow.peer.port == 6000);
  CHECK(!Dialog::from_json(nlohmann::json::object(), back));
  DialogSet set, set2;
  set.add(d);
  REQUIRE(set2.from_json(set.to_json()));
  CHECK(set2.size() == 1);
}

TEST_CASE("sip stack: bad requests get 400 with the reason, other versions 505, responses and ACKs are only dropped") {
  Rig r;
  std::string bad = kInvite;
  bad.replace(bad.find("CSeq: 10 INVITE"), 15, "CSeq: ten INVITE");
  r.stack.on_datagram(bad, udp_flow(5070));
  CHECK(r.user.seen.empty());
  CHECK(r.stack.counters().rx_bad == 1);
  CHECK(r.env.sent.empty());  // without a CSeq nothing can be addressed: dropped, logged
  CHECK(!r.env.logs.empty());

  std::string too_short = kInvite;
  too_short.replace(too_short.find("Content-Length: 0"), 17, "Content-Length: 40");
  r.stack.on_datagram(too_short, udp_flow(5070));
  REQUIRE(r.env.count("SIP/2.0 400") == 1);
  CHECK(r.env.sent.back().bytes.find("Warning: 399 junction") != std::string::npos);
  CHECK(r.user.seen.empty());

  std::string v3 = kInvite;
  v3.replace(v3.find("SIP/2.0\r\n"), 7, "SIP/3.0");
  r.stack.on_datagram(v3, udp_flow(5070));
  CHECK(r.env.count("SIP/2.0 505") == 1);

  r.stack.on_datagram("SIP/2.0 200 OK\r\n\r\n", udp_flow(5070));  // garbage response: dropped
  CHECK(r.env.sent.size() == 2);
  CHECK(r.stack.counters().rx_bad == 4);

  r.stack.on_datagram(kInvite, udp_flow(5070));  // and a good one after all that
  CHECK(r.user.seen == std::vector<std::string>{"req INVITE"});
}

TEST_CASE("sip stack: TCP keepalive gets its pong; the user's wake and the transaction timers share one env timer") {
  Rig r;
  r.stack.on_stream_message("\r\n\r\n", tcp_flow(5070, 3));
  REQUIRE(r.env.sent.size() == 1);
  CHECK(r.env.sent[0].bytes == "\r\n");
  CHECK(r.env.sent[0].flow.conn == 3);
  CHECK(r.stack.counters().rx_keepalives == 1);

  r.stack.on_datagram(kInvite, udp_flow(5070));
  TxnId id = r.user.ids.at(0);
  r.stack.respond(id, 486, {}, "t");  // timer G at +500
  r.stack.wake_user_at(r.env.now + 200);
  CHECK(r.env.wake == r.env.now + 200);
  r.env.advance(200);
  CHECK(r.user.seen.back() == "wake");
  CHECK(r.env.wake == r.env.now + 300);  // back to the transaction's deadline
  r.env.advance(300);
  CHECK(r.env.count("SIP/2.0 486") == 2);
  // the reason phrase defaults to RFC 3261's
  CHECK(r.env.sent.back().bytes.substr(0, 22) == "SIP/2.0 486 Busy Here\r");
}

TEST_CASE("sip stack: a retransmission is absorbed whatever the Via's form (IPv6, compact, folded); received/rport filled") {
  for (std::string via : {std::string("Via: SIP/2.0/UDP [::1]:5070;branch=z9hG4bKv6;rport"),
                          std::string("v: SIP/2.0/UDP 10.1.1.1:5070\r\n ;branch=z9hG4bKfold;rport"),
                          std::string("Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKname")}) {
    Rig r;
    std::string reg = "REGISTER sip:127.0.0.1 SIP/2.0\r\n" + via +
                      "\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: v6\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
    r.stack.on_datagram(reg, udp_flow(4000));
    REQUIRE(r.user.ids.size() == 1);
    r.stack.respond(r.user.ids[0], 200);
    r.stack.on_datagram(reg, udp_flow(4000));
    CHECK(r.user.ids.size() == 1);  // the retransmission did not reach the user
    CHECK(r.env.count("SIP/2.0 200") == 2);
    std::string resp = r.env.sent.back().bytes;
    if (via.find("rport") != std::string::npos) {
      CHECK(resp.find(";rport=4000") != std::string::npos);
      CHECK(resp.find(";received=127.0.0.1") != std::string::npos);
    } else {
      CHECK(resp.find("Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKname;received=127.0.0.1\r\n") != std::string::npos);
    }
  }
}

TEST_CASE("sip stack: resolve answers an IP literal at once and hands a name to the env (the core's JN_DNS_SIP)") {
  struct ResolvingEnv : FakeEnv {
    std::string asked;
    uint8_t transport = 0;
    jn_status resolve(std::string_view host, uint16_t, uint8_t t, uint64_t) override {
      asked = std::string(host);
      transport = t;
      return JN_OK;
    }
  };
  struct U : NullUser {
    std::vector<Flow> got;
    uint64_t cookie = 0;
    void on_resolved(uint64_t c, const std::vector<Flow>& t, std::string_view) override {
      cookie = c;
      got = t;
    }
  };
  ResolvingEnv env;
  U user;
  Stack stack(env, user);
  CHECK(stack.resolve("127.0.0.2", 0, Proto::Tcp, 7) == JN_OK);
  REQUIRE(user.got.size() == 1);
  CHECK(user.cookie == 7);
  CHECK(user.got[0].proto == Proto::Tcp);
  CHECK(user.got[0].peer.port == 5060);  // no port in the URI: the default
  CHECK(user.got[0].peer.ip[3] == 2);
  CHECK(env.asked.empty());  // no query for a literal
  CHECK(stack.resolve("sip.example.com", 0, Proto::Udp, 8) == JN_OK);
  CHECK(env.asked == "sip.example.com");
  CHECK(env.transport == JN_SIP_UDP);
  stack.on_resolved(8, {}, "NXDOMAIN");
  CHECK(user.cookie == 8);
  CHECK(user.got.empty());
}

TEST_CASE("sip stack: TLS names: Via SIP/2.0/TLS, Contact and URI ;transport=tls on tls_port, default port 5061") {
  CHECK(proto_name(Proto::Tls) == "TLS");
  CHECK(proto_param(Proto::Tls) == "tls");
  CHECK(default_port(Proto::Tls) == 5061);
  CHECK(default_port(Proto::Tcp) == 5060);
  CHECK(proto_to_jn(Proto::Tls) == JN_SIP_TLS);
  Proto p = Proto::Udp;
  CHECK(proto_from_jn(JN_SIP_TLS, p));
  CHECK(p == Proto::Tls);
  CHECK(!proto_from_jn(JN_SIP_ANY, p));
  CHECK(proto_from_int(3) == Proto::Tls);
  CHECK(proto_from_int(2) == Proto::Tcp);
  CHECK(proto_from_int(9) == Proto::Udp);

  FakeEnv env;
  NullUser user;
  StackConfig c;
  c.udp_port = 5070;
  c.tcp_port = 5071;
  c.tls_port = 5072;
  Stack stack(env, user, c);
  std::string out;
  Writer w(out);
  stack.write_via(w, Proto::Tls, "z9hG4bKx");
  CHECK(out == "Via: SIP/2.0/TLS 127.0.0.1:5072;branch=z9hG4bKx;rport\r\n");
  CHECK(stack.contact(Proto::Tls, "alice") == "<sip:alice@127.0.0.1:5072;transport=tls>");
  CHECK(stack.local_uri(Proto::Tls) == "sip:127.0.0.1:5072;transport=tls");
  CHECK(stack.contact(Proto::Tcp, "alice") == "<sip:alice@127.0.0.1:5071;transport=tcp>");
  CHECK(stack.contact(Proto::Udp, "alice") == "<sip:alice@127.0.0.1:5070>");
  CHECK(StackConfig{}.tls_port == 5061);
}

TEST_CASE("sip stack: resolve over TLS: a literal on 5061, a name asked as JN_SIP_TLS (_sips._tcp SRV in the core)") {
  struct ResolvingEnv : FakeEnv {
    uint8_t transport = 0;
    uint16_t port = 1;
    jn_status resolve(std::string_view, uint16_t p, uint8_t t, uint64_t) override {
      transport = t;
      port = p;
      return JN_OK;
    }
  };
  struct U : NullUser {
    std::vector<Flow> got;
    void on_resolved(uint64_t, const std::vector<Flow>& t, std::string_view) override { got = t; }
  };
  ResolvingEnv env;
  U user;
  Stack stack(env, user);
  CHECK(stack.resolve("127.0.0.2", 0, Proto::Tls, 7) == JN_OK);
  REQUIRE(user.got.size() == 1);
  CHECK(user.got[0].proto == Proto::Tls);
  CHECK(user.got[0].peer.port == 5061);
  CHECK(stack.resolve("127.0.0.2", 6000, Proto::Tls, 7) == JN_OK);
  CHECK(user.got[0].peer.port == 6000);
  CHECK(stack.resolve("sips.example.com", 0, Proto::Tls, 8) == JN_OK);
  CHECK(env.transport == JN_SIP_TLS);
  CHECK(env.port == 0);  // no port: SRV first (the core's resolver), not a fixed 5061
}

TEST_CASE("sip dialog: over a TLS flow the in-dialog requests and the ACK say TLS; the flow survives JSON; a request is answered on its connection") {
  Rig r;
  Message inv = parsed(kInvite);
  Dialog d;
  REQUIRE(Dialog::from_request(inv, tls_flow(5070, 9), "btag", r.stack.contact(Proto::Tls, "bob"), d));
  d.confirm();
  std::string bye = d.request(r.stack, "BYE");
  CHECK(parsed(bye).top_via().transport == "TLS");
  std::string ack = d.ack(r.stack, 1);
  CHECK(parsed(ack).top_via().transport == "TLS");
  Dialog back;
  REQUIRE(Dialog::from_json(d.to_json(), back));
  CHECK(back.flow.proto == Proto::Tls);
  CHECK(back.flow.conn == 9);

  r.stack.on_stream_message(kInvite, tls_flow(5070, 9));
  REQUIRE(r.user.ids.size() == 1);
  REQUIRE(r.stack.respond(r.user.ids[0], 486, {}, "t") == JN_OK);
  CHECK(r.env.sent.back().flow.proto == Proto::Tls);
  CHECK(r.env.sent.back().flow.conn == 9);
  r.env.advance(10000);
  CHECK(r.env.count("SIP/2.0 486") == 1);  // reliable: no timer G
}

TEST_CASE("sip stack: a closed TLS connection ends the user's client transaction over it with 503, then tells the user") {
  struct U : NullUser {
    std::vector<jn_handle> closed;
    void on_connection_closed(jn_handle c) override {
      seen.push_back("closed");
      closed.push_back(c);
    }
  };
  FakeEnv env;
  U user;
  Stack stack(env, user);
  std::string out;
  Writer w(out);
  w.request_line("OPTIONS", "sip:bob@127.0.0.1:5061;transport=tls");
  stack.write_via(w, Proto::Tls, stack.new_branch());
  w.header("From", "<sip:a@127.0.0.1>;tag=1");
  w.header("To", "<sip:bob@127.0.0.1>");
  w.header("Call-ID", "c-tls");
  w.header("CSeq", "1 OPTIONS");
  w.finish();
  Flow to = tls_flow(5061, 0);
  TxnId id = stack.send_request(out, to);
  REQUIRE(id != 0);
  jn_handle conn = env.sent.at(0).flow.conn;  // the env opened one (the fake: a new handle)
  CHECK(conn != 0);
  stack.on_connection_closed(conn);
  CHECK(user.seen == std::vector<std::string>{"resp 503", "closed"});
  CHECK(!stack.transactions().exists(id));
}
