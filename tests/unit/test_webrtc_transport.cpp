// sdk/webrtc Transport: two Transports back to back in one process over a fake network (one DTLS
// client, one server), the test playing the controlling ICE agent of each side. ICE + DTLS
// complete, SRTP/SRTCP and DTLS application data flow both ways; a wrong fingerprint fails; bad
// MESSAGE-INTEGRITY gets 401 and no state change; garbage is counted and disturbs nothing;
// consent expiry fails the transport; close_notify closes the peer.
#include <doctest/doctest.h>
#include <junction/webrtc/rtcp.hpp>
#include <junction/webrtc/stun.hpp>
#include <junction/webrtc/transport.hpp>

#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

using namespace junction::webrtc;

namespace {

jn_addr v4(uint8_t last, uint16_t port) {
  jn_addr x{};
  x.family = 4;
  x.port = port;
  x.ip[0] = 127, x.ip[1] = 0, x.ip[2] = 0, x.ip[3] = last;
  return x;
}

struct Net;

struct Peer : TransportCallbacks {
  Net* net = nullptr;
  jn_addr addr{};
  std::unique_ptr<Transport> t;
  std::vector<std::vector<uint8_t>> rtp, rtcp, app;
  std::vector<TransportState> states;
  std::vector<std::vector<uint8_t>> stun_replies;  // what the transport answered to checks
  void send_datagram(const uint8_t* data, size_t len, const jn_addr& to) override;
  void on_rtp(uint8_t* p, size_t n) override { rtp.emplace_back(p, p + n); }
  void on_rtcp(uint8_t* p, size_t n) override { rtcp.emplace_back(p, p + n); }
  void on_app_data(const uint8_t* p, size_t n) override { app.emplace_back(p, p + n); }
  void on_state(TransportState s) override { states.push_back(s); }
};

struct Packet {
  jn_addr from, to;
  std::vector<uint8_t> data;
};

struct Net {
  std::deque<Packet> queue;
  std::vector<Peer*> peers;
  uint64_t now = 1000;
  size_t delivered = 0;
  void pump() {
    while (!queue.empty()) {
      Packet p = std::move(queue.front());
      queue.pop_front();
      for (Peer* peer : peers)
        if (addr_equal(peer->addr, p.to)) {
          ++delivered;
          peer->t->handle_datagram(p.data.data(), p.data.size(), p.from, now);
        }
    }
  }
};

void Peer::send_datagram(const uint8_t* data, size_t len, const jn_addr& to) {
  if (len >= 1 && data[0] <= 3) {
    stun_replies.emplace_back(data, data + len);  // ICE answers go to the test's "agent"
    return;
  }
  net->queue.push_back({addr, to, std::vector<uint8_t>(data, data + len)});
}

std::vector<uint8_t> binding(std::string_view user, std::string_view pwd, bool nominate = true) {
  std::vector<uint8_t> buf(512);
  uint8_t txid[12];
  for (auto& b : txid) b = static_cast<uint8_t>(std::rand());
  StunBuilder b(buf.data(), buf.size(), kStunBinding, StunClass::Request, txid);
  b.username(user).priority(1845501695).ice_controlling(42);
  if (nominate) b.use_candidate();
  b.message_integrity(pwd).fingerprint();
  buf.resize(b.size());
  return buf;
}

const Certificate& cert_a() {
  static Certificate c = [] {
    Certificate x;
    REQUIRE(x.generate());
    return x;
  }();
  return c;
}
const Certificate& cert_b() {
  static Certificate c = [] {
    Certificate x;
    REQUIRE(x.generate());
    return x;
  }();
  return c;
}

// A (DTLS client, 127.0.0.1:40001) and B (DTLS server, 127.0.0.2:40002).
struct Pair {
  Net net;
  Peer a, b;
  IceCredentials ia, ib;
  Pair(std::string fp_of_b_for_a = cert_b().fingerprint(), std::string fp_of_a_for_b = cert_a().fingerprint(),
       const Certificate& ca = cert_a(), const Certificate& cb = cert_b()) {
    REQUIRE(srtp_library_init_standalone());
    REQUIRE(ice_random_credentials(ia));
    REQUIRE(ice_random_credentials(ib));
    a.net = b.net = &net;
    a.addr = v4(1, 40001);
    b.addr = v4(2, 40002);
    net.peers = {&a, &b};
    TransportConfig c1;
    c1.local_ice = ia;
    c1.remote_ice = ib;
    c1.remote_fingerprint = fp_of_b_for_a;
    c1.dtls_role = DtlsRole::Client;
    TransportConfig c2;
    c2.local_ice = ib;
    c2.remote_ice = ia;
    c2.remote_fingerprint = fp_of_a_for_b;
    c2.dtls_role = DtlsRole::Server;
    a.t = std::make_unique<Transport>(ca, a, c1);
    b.t = std::make_unique<Transport>(cb, b, c2);
  }
  // The test's ICE agents check each side from the other's address (B first, so it knows A's
  // address before A's ClientHello arrives).
  void check_both(bool nominate = true) {
    auto to_b = binding(ib.ufrag + ":" + ia.ufrag, ib.pwd, nominate);
    b.t->handle_datagram(to_b.data(), to_b.size(), a.addr, net.now);
    auto to_a = binding(ia.ufrag + ":" + ib.ufrag, ia.pwd, nominate);
    a.t->handle_datagram(to_a.data(), to_a.size(), b.addr, net.now);
    net.pump();
  }
  void connect() {
    check_both();
    REQUIRE(a.t->state() == TransportState::Connected);
    REQUIRE(b.t->state() == TransportState::Connected);
  }
};

std::vector<uint8_t> rtp_packet(uint32_t ssrc, uint16_t seq, size_t payload) {
  std::vector<uint8_t> p(12 + payload + kSrtpMaxTailroom);
  p[0] = 0x80;
  p[1] = 111;
  p[2] = static_cast<uint8_t>(seq >> 8);
  p[3] = static_cast<uint8_t>(seq);
  p[8] = static_cast<uint8_t>(ssrc >> 24);
  p[9] = static_cast<uint8_t>(ssrc >> 16);
  p[10] = static_cast<uint8_t>(ssrc >> 8);
  p[11] = static_cast<uint8_t>(ssrc);
  for (size_t i = 0; i < payload; ++i) p[12 + i] = static_cast<uint8_t>(i * 7 + seq);
  return p;
}

// Sends one RTP packet from `from` and checks `to` got exactly the plaintext.
void rtp_flows(Pair& pr, Peer& from, Peer& to, uint32_t ssrc, uint16_t seq) {
  auto p = rtp_packet(ssrc, seq, 160);
  std::vector<uint8_t> plain(p.begin(), p.begin() + 12 + 160);
  size_t before = to.rtp.size();
  REQUIRE(from.t->send_rtp(p.data(), plain.size(), p.size()));
  // Encrypted on the wire: the payload differs and the tag was appended.
  REQUIRE(pr.net.queue.size() == 1);
  CHECK(pr.net.queue.front().data.size() > plain.size());
  CHECK(std::memcmp(pr.net.queue.front().data.data() + 12, plain.data() + 12, 160) != 0);
  pr.net.pump();
  REQUIRE(to.rtp.size() == before + 1);
  CHECK(to.rtp.back() == plain);
}

}  // namespace

TEST_CASE("transport: ICE + DTLS complete, SRTP and SRTCP and app data flow both ways") {
  Pair pr;
  CHECK(pr.a.t->next_timer_ms() == 0);  // not started: tick now
  pr.connect();
  CHECK(pr.a.states == std::vector<TransportState>{TransportState::Checking, TransportState::Connected});
  CHECK(pr.b.states == std::vector<TransportState>{TransportState::Checking, TransportState::Connected});
  CHECK(addr_equal(pr.a.t->selected(), pr.b.addr));
  CHECK(addr_equal(pr.b.t->selected(), pr.a.addr));
  // Both checks were answered with a success carrying the checker's address.
  REQUIRE(pr.b.stun_replies.size() == 1);
  StunMessage r;
  REQUIRE(stun_parse(pr.b.stun_replies[0].data(), pr.b.stun_replies[0].size(), r) == StunParse::Ok);
  CHECK(r.cls == StunClass::Success);
  CHECK(addr_equal(r.xor_mapped, pr.a.addr));
  // Both ends agree on the suite: GCM when libsrtp2 has it, else AES-CM.
  CHECK(pr.a.t->srtp_suite() == pr.b.t->srtp_suite());
  CHECK(pr.a.t->srtp_suite() ==
        (srtp_suite_works(SrtpSuite::AeadAes128Gcm) ? SrtpSuite::AeadAes128Gcm : SrtpSuite::AesCm128Sha1_80));

  for (uint16_t s = 0; s < 5; ++s) {
    rtp_flows(pr, pr.a, pr.b, 0x1234, s);
    rtp_flows(pr, pr.b, pr.a, 0x9999, static_cast<uint16_t>(1000 + s));
  }
  // SRTCP: a PLI each way.
  for (Peer* from : {&pr.a, &pr.b}) {
    Peer* to = from == &pr.a ? &pr.b : &pr.a;
    uint8_t buf[12 + kSrtpMaxTailroom];
    size_t n = rtcp_build_pli(buf, sizeof buf, 1, 2);
    std::vector<uint8_t> plain(buf, buf + n);
    REQUIRE(from->t->send_rtcp(buf, n, sizeof buf));
    pr.net.pump();
    REQUIRE(to->rtcp.size() == 1);
    CHECK(to->rtcp[0] == plain);
  }
  // DTLS application data (SCTP's carrier) both ways.
  const uint8_t msg1[] = "hello from the client";
  const uint8_t msg2[] = "hello from the server";
  REQUIRE(pr.a.t->send_app_data(msg1, sizeof msg1));
  REQUIRE(pr.b.t->send_app_data(msg2, sizeof msg2));
  pr.net.pump();
  REQUIRE(pr.b.app.size() == 1);
  REQUIRE(pr.a.app.size() == 1);
  CHECK(std::memcmp(pr.b.app[0].data(), msg1, sizeof msg1) == 0);
  CHECK(std::memcmp(pr.a.app[0].data(), msg2, sizeof msg2) == 0);

  TransportStats st = pr.b.t->stats();
  CHECK(st.rtp_in == 5);
  CHECK(st.rtp_out == 5);
  CHECK(st.rtcp_in == 1);
  CHECK(st.srtp_in_failed == 0);
  CHECK(st.ice.valid == 1);
  CHECK(st.dtls.app_in == 1);
}

TEST_CASE("transport: AES_CM_128_HMAC_SHA1_80 when one side does not offer GCM") {
  REQUIRE(srtp_library_init_standalone());
  Certificate no_gcm;
  REQUIRE(no_gcm.generate(nullptr, false));
  Pair pr(no_gcm.fingerprint(), cert_a().fingerprint(), cert_a(), no_gcm);
  pr.connect();
  CHECK(pr.a.t->srtp_suite() == SrtpSuite::AesCm128Sha1_80);
  rtp_flows(pr, pr.a, pr.b, 7, 1);
  rtp_flows(pr, pr.b, pr.a, 8, 1);
}

TEST_CASE("transport: wrong remote fingerprint fails the handshake (either side)") {
  SUBCASE("the client sees a server certificate it was not told about") {
    Pair pr(cert_a().fingerprint() /* not B's */);
    pr.check_both();
    CHECK(pr.a.t->state() == TransportState::Failed);
    CHECK(pr.a.t->error().find("fingerprint") != std::string::npos);
    CHECK(pr.b.t->state() != TransportState::Connected);
    auto p = rtp_packet(1, 1, 10);
    CHECK_FALSE(pr.a.t->send_rtp(p.data(), 22, p.size()));
  }
  SUBCASE("the server sees a client certificate it was not told about") {
    Pair pr(cert_b().fingerprint(), cert_b().fingerprint() /* not A's */);
    pr.check_both();
    CHECK(pr.b.t->state() == TransportState::Failed);
    CHECK(pr.b.t->error().find("fingerprint") != std::string::npos);
    CHECK(pr.a.t->state() != TransportState::Connected);
  }
  SUBCASE("a fingerprint of another digest length never matches") {
    Pair pr("sha-256 AB:CD");
    pr.check_both();
    CHECK(pr.a.t->state() == TransportState::Failed);
  }
}

TEST_CASE("transport: bad MESSAGE-INTEGRITY gets 401 and changes nothing") {
  Pair pr;
  auto bad = binding(pr.ib.ufrag + ":" + pr.ia.ufrag, "not-the-password-at-all", true);
  pr.b.t->handle_datagram(bad.data(), bad.size(), pr.a.addr, pr.net.now);
  REQUIRE(pr.b.stun_replies.size() == 1);
  StunMessage r;
  REQUIRE(stun_parse(pr.b.stun_replies[0].data(), pr.b.stun_replies[0].size(), r) == StunParse::Ok);
  CHECK(r.cls == StunClass::Error);
  CHECK(r.error_code == 401);
  CHECK(pr.b.t->state() == TransportState::New);
  CHECK(pr.b.states.empty());
  CHECK(pr.b.t->selected().family == 0);
  // DTLS from that address is not accepted either: the address never passed a check.
  uint8_t hello[13 + 4] = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0};
  pr.b.t->handle_datagram(hello, sizeof hello, pr.a.addr, pr.net.now);
  CHECK(pr.b.t->stats().unvalidated_in == 1);
  CHECK(pr.net.queue.empty());
  // The real check still works afterwards.
  pr.connect();
}

TEST_CASE("transport: garbage STUN, DTLS, RTP and unknown bytes are counted and disturb nothing") {
  Pair pr;
  pr.connect();
  auto& t = *pr.b.t;
  TransportStats before = t.stats();
  std::vector<std::vector<uint8_t>> junk = {
      {0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x00, 0x06, 0x01, 0x00, 1, 2, 3, 4},  // STUN, attribute overflows
      {0x01, 0x02, 0x03},                                  // short STUN-ish
      {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0},   // DTLS record longer than the datagram
      {23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4},  // application data that does not decrypt
      {21, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},     // TLS version in a DTLS slot
      {0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14},  // SRTP with a bad tag
      {0x80, 200, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8},   // SRTCP with a bad tag
      {0x50, 1, 2, 3, 4},                                   // no RFC 7983 range
      {},
  };
  for (auto& j : junk) t.handle_datagram(j.data(), j.size(), pr.a.addr, pr.net.now);
  // And garbage from an address that never passed a check.
  std::vector<uint8_t> rtp_junk = rtp_packet(5, 5, 20);
  t.handle_datagram(rtp_junk.data(), 32, v4(9, 9999), pr.net.now);
  pr.net.pump();
  TransportStats after = t.stats();
  CHECK(t.state() == TransportState::Connected);
  CHECK(pr.b.states.size() == 2);  // Checking, Connected: nothing since
  CHECK(after.ice.malformed == before.ice.malformed + 1);
  CHECK(after.dtls.bad_framing == before.dtls.bad_framing + 2);
  CHECK(after.srtp_in_failed == before.srtp_in_failed + 2);
  CHECK(after.unknown_in == before.unknown_in + 3);  // short STUN-ish, 0x50, empty
  CHECK(after.unvalidated_in == before.unvalidated_in + 1);
  CHECK(pr.b.rtp.empty());
  CHECK(pr.b.rtcp.empty());
  CHECK(pr.b.app.empty());
  // Media still flows both ways.
  rtp_flows(pr, pr.a, pr.b, 1, 1);
  rtp_flows(pr, pr.b, pr.a, 2, 1);
}

TEST_CASE("transport: consent expiry fails the transport; fresh checks keep it") {
  Pair pr;
  pr.connect();
  uint64_t t0 = pr.net.now;
  CHECK(pr.b.t->next_timer_ms() <= t0 + 30000);
  pr.net.now = t0 + 20000;
  auto refresh = binding(pr.ib.ufrag + ":" + pr.ia.ufrag, pr.ib.pwd, false);
  pr.b.t->handle_datagram(refresh.data(), refresh.size(), pr.a.addr, pr.net.now);
  pr.b.t->tick(t0 + 30000);
  pr.a.t->tick(t0 + 30000);
  CHECK(pr.b.t->state() == TransportState::Connected);  // refreshed at +20 s
  CHECK(pr.a.t->state() == TransportState::Failed);     // its last check was at +0
  CHECK(pr.a.t->error().find("consent") != std::string::npos);
  CHECK(pr.b.t->next_timer_ms() == t0 + 50000);
  pr.b.t->tick(t0 + 49999);
  CHECK(pr.b.t->state() == TransportState::Connected);
  pr.b.t->tick(t0 + 50000);
  CHECK(pr.b.t->state() == TransportState::Failed);
  CHECK(pr.b.states.back() == TransportState::Failed);
  auto p = rtp_packet(1, 1, 10);
  CHECK_FALSE(pr.b.t->send_rtp(p.data(), 22, p.size()));
  CHECK(pr.b.t->next_timer_ms() == UINT64_MAX);
}

TEST_CASE("transport: a transport nobody checks fails after the consent timeout") {
  Pair pr;
  pr.a.t->tick(5000);
  CHECK(pr.a.t->next_timer_ms() == 35000);
  pr.a.t->tick(35000);
  CHECK(pr.a.t->state() == TransportState::Failed);
}

TEST_CASE("transport: short tailroom refused, close_notify closes the peer") {
  Pair pr;
  pr.connect();
  auto p = rtp_packet(1, 1, 100);
  CHECK_FALSE(pr.a.t->send_rtp(p.data(), 112, 112 + 3));
  CHECK(pr.a.t->stats().srtp_out_failed == 1);
  CHECK(pr.net.queue.empty());
  pr.a.t->close();
  CHECK(pr.a.t->state() == TransportState::Closed);
  pr.net.pump();
  CHECK(pr.b.t->state() == TransportState::Closed);
  CHECK(pr.b.states.back() == TransportState::Closed);
  CHECK_FALSE(pr.b.t->send_app_data(reinterpret_cast<const uint8_t*>("x"), 1));
}

TEST_CASE("transport: DTLS handshake timeout when the peer never answers") {
  Pair pr;
  // Only A gets checked: it starts DTLS as client, B drops everything (never checked from A).
  auto to_a = binding(pr.ia.ufrag + ":" + pr.ib.ufrag, pr.ia.pwd);
  pr.a.t->handle_datagram(to_a.data(), to_a.size(), pr.b.addr, pr.net.now);
  pr.net.pump();
  CHECK(pr.a.t->state() == TransportState::Checking);
  CHECK(pr.b.t->stats().unvalidated_in == 1);  // the ClientHello
  uint64_t next = pr.a.t->next_timer_ms();
  CHECK(next > pr.net.now);
  CHECK(next <= pr.net.now + 30000);
  // Consent is kept fresh, so what fails is the handshake deadline.
  uint64_t t0 = pr.net.now;
  pr.net.now = t0 + 25000;
  auto again = binding(pr.ia.ufrag + ":" + pr.ib.ufrag, pr.ia.pwd);
  pr.a.t->handle_datagram(again.data(), again.size(), pr.b.addr, pr.net.now);
  pr.a.t->tick(t0 + 29999);
  CHECK(pr.a.t->state() == TransportState::Checking);
  pr.a.t->tick(t0 + 30000);
  CHECK(pr.a.t->state() == TransportState::Failed);
  CHECK(pr.a.t->error().find("timed out") != std::string::npos);
}

TEST_CASE("certificate: PEM round trip keeps the fingerprint; the reloaded one handshakes") {
  REQUIRE(srtp_library_init_standalone());
  Certificate c;
  REQUIRE(c.generate());
  CHECK(c.fingerprint().rfind("sha-256 ", 0) == 0);
  CHECK(c.fingerprint().size() == 8 + 32 * 3 - 1);
  std::string pem = c.to_pem();
  CHECK(pem.find("PRIVATE KEY") != std::string::npos);
  Certificate d;
  REQUIRE(d.from_pem(pem));
  CHECK(d.fingerprint() == c.fingerprint());
  Certificate other;
  REQUIRE(other.generate());
  CHECK(other.fingerprint() != c.fingerprint());
  std::string err;
  Certificate bad;
  CHECK_FALSE(bad.from_pem("-----BEGIN NOTHING-----\n", &err));
  CHECK_FALSE(err.empty());
  CHECK_FALSE(bad.valid());
  // B restarted with the saved PEM: A, which kept the old fingerprint from SDP, still connects.
  Pair pr(c.fingerprint(), cert_a().fingerprint(), cert_a(), d);
  pr.connect();
}
