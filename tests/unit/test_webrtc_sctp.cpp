// sdk/webrtc sctp.hpp: two SctpAssociations back to back in one process (the "DTLS pipe" is
// a pair of packet queues; usrsctp's timers driven by simulated time through one SctpStack):
// the association comes up, DCEP opens from each side (even/odd stream ids by DTLS role), text,
// binary, empty and large messages both ways, unordered + partially reliable channel parameters
// carried, closing by stream reset reaches both sides, oversize messages refused, garbage input
// disturbs nothing; DCEP OPEN parse/build.
#include <junction/webrtc/sctp.hpp>

#include <doctest/doctest.h>

#include <deque>
#include <string>
#include <vector>

using namespace junction::webrtc;

namespace {

using Bytes = std::vector<uint8_t>;

// usrsctp is process-wide: one stack for the whole test program, initialised once.
SctpStack& stack() {
  static SctpStack s;
  static bool done = [] {
    std::string err;
    bool ok = s.init(true, 0, err);
    REQUIRE_MESSAGE(ok, err);
    return true;
  }();
  (void)done;
  return s;
}

struct Side : SctpCallbacks {
  std::deque<Bytes>* wire = nullptr;  // packets for the other side
  std::vector<SctpState> states;
  struct Open {
    uint16_t stream;
    DcepOpen info;
    bool remote;
  };
  std::vector<Open> opens;
  struct Msg {
    uint16_t stream;
    Bytes data;
    bool binary;
  };
  std::vector<Msg> msgs;
  std::vector<uint16_t> closed;
  void sctp_send(const uint8_t* d, size_t n) override { wire->emplace_back(d, d + n); }
  void on_sctp_state(SctpState s) override { states.push_back(s); }
  void on_channel_open(uint16_t s, const DcepOpen& i, bool remote) override { opens.push_back({s, i, remote}); }
  void on_message(uint16_t s, const uint8_t* d, size_t n, bool binary) override { msgs.push_back({s, Bytes(d, d + n), binary}); }
  void on_channel_closed(uint16_t s) override { closed.push_back(s); }
};

struct Pair {
  std::deque<Bytes> to_b, to_a;
  Side a, b;
  SctpAssociation* A = nullptr;
  SctpAssociation* B = nullptr;
  uint64_t now = 0;
  std::unique_ptr<SctpAssociation> ua, ub;
  explicit Pair(uint32_t max_msg = 262144, SctpStack* st = nullptr) {
    SctpStack& use = st ? *st : stack();
    a.wire = &to_b;
    b.wire = &to_a;
    SctpConfig ca, cb;
    ca.dtls_client = true;
    cb.dtls_client = false;
    ca.max_message_size = cb.max_message_size = max_msg;
    ua = std::make_unique<SctpAssociation>(use, a, ca);
    ub = std::make_unique<SctpAssociation>(use, b, cb);
    A = ua.get();
    B = ub.get();
    A->set_remote_max_message_size(max_msg);
    B->set_remote_max_message_size(max_msg);
  }
  // Delivers packets until pred() holds; advances simulated time when the wire is idle.
  template <typename P>
  bool pump(P pred, int max_rounds = 3000) {
    for (int i = 0; i < max_rounds; ++i) {
      if (pred()) return true;
      if (!to_b.empty()) {
        Bytes p = std::move(to_b.front());
        to_b.pop_front();
        B->handle_input(p.data(), p.size());
      } else if (!to_a.empty()) {
        Bytes p = std::move(to_a.front());
        to_a.pop_front();
        A->handle_input(p.data(), p.size());
      } else {
        now += SctpStack::kTickMs;
        A->tick(now);
        B->tick(now);
      }
    }
    return pred();
  }
  bool connect() {
    REQUIRE(A->start());
    REQUIRE(B->start());
    return pump([&] { return A->state() == SctpState::Connected && B->state() == SctpState::Connected; });
  }
};

}  // namespace

TEST_CASE("DCEP OPEN: build and parse round trip; broken ones refused") {
  DcepOpen o;
  o.channel_type = 0x81;
  o.priority = 256;
  o.reliability = 3;
  o.label = "chat";
  o.protocol = "verto";
  Bytes m = build_dcep_open(o);
  CHECK(m.size() == 12 + 4 + 5);
  DcepOpen p;
  REQUIRE(parse_dcep_open(m.data(), m.size(), p));
  CHECK(p.channel_type == 0x81);
  CHECK_FALSE(p.ordered());
  CHECK(p.reliability == 3);
  CHECK(p.label == "chat");
  CHECK(p.protocol == "verto");
  CHECK_FALSE(parse_dcep_open(m.data(), m.size() - 1, p));  // lengths disagree
  Bytes bad = m;
  bad[1] = 0x05;  // unknown channel type
  CHECK_FALSE(parse_dcep_open(bad.data(), bad.size(), p));
  bad = m;
  bad[0] = 0x02;
  CHECK_FALSE(parse_dcep_open(bad.data(), bad.size(), p));
  CHECK_FALSE(parse_dcep_open(nullptr, 0, p));
}

TEST_CASE("two associations connect, open channels from both sides and exchange text, binary, empty and large messages") {
  Pair t;
  REQUIRE(t.connect());
  CHECK(t.a.states.front() == SctpState::Connecting);
  CHECK(t.a.states.back() == SctpState::Connected);

  DcepOpen chat;
  chat.label = "chat";
  chat.protocol = "json";
  int sa = t.A->open_channel(chat);
  REQUIRE(sa >= 0);
  CHECK(sa % 2 == 0);  // the DTLS client's streams are even
  REQUIRE(t.pump([&] { return !t.a.opens.empty() && !t.b.opens.empty(); }));
  CHECK(t.b.opens[0].remote);
  CHECK(t.b.opens[0].stream == sa);
  CHECK(t.b.opens[0].info.label == "chat");
  CHECK(t.b.opens[0].info.protocol == "json");
  CHECK_FALSE(t.a.opens[0].remote);  // our OPEN acknowledged
  CHECK(t.A->channel_open(static_cast<uint16_t>(sa)));

  uint16_t s = static_cast<uint16_t>(sa);
  CHECK(t.A->send_text(s, "hello"));
  Bytes bin = {0, 1, 2, 255};
  CHECK(t.B->send(s, bin.data(), bin.size(), true));
  CHECK(t.A->send_text(s, ""));
  Bytes big(100000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
  CHECK(t.A->send(s, big.data(), big.size(), true));
  REQUIRE(t.pump([&] { return t.b.msgs.size() == 3 && t.a.msgs.size() == 1; }));
  CHECK(std::string(t.b.msgs[0].data.begin(), t.b.msgs[0].data.end()) == "hello");
  CHECK_FALSE(t.b.msgs[0].binary);
  CHECK(t.b.msgs[1].data.empty());  // the empty message (PPID 56), not the padding byte
  CHECK_FALSE(t.b.msgs[1].binary);
  CHECK(t.b.msgs[2].data == big);
  CHECK(t.b.msgs[2].binary);
  CHECK(t.a.msgs[0].data == bin);
  CHECK(t.a.msgs[0].binary);

  // The server side opens one too: odd stream, unordered with 2 retransmits.
  DcepOpen lossy;
  lossy.label = "telemetry";
  lossy.channel_type = 0x81;
  lossy.reliability = 2;
  int sb = t.B->open_channel(lossy);
  REQUIRE(sb >= 0);
  CHECK(sb % 2 == 1);
  REQUIRE(t.pump([&] { return t.a.opens.size() == 2 && t.b.opens.size() == 2; }));
  CHECK(t.a.opens[1].remote);
  CHECK(t.a.opens[1].info.channel_type == 0x81);
  CHECK(t.a.opens[1].info.reliability == 2);
  CHECK(t.B->send_text(static_cast<uint16_t>(sb), "t=1"));
  REQUIRE(t.pump([&] { return t.a.msgs.size() == 2; }));
  CHECK(t.a.msgs[1].stream == sb);
  CHECK(t.A->stats().messages_out == 3);
  CHECK(t.B->stats().messages_in == 3);
}

TEST_CASE("closing a channel resets the stream on both sides; the association stays up") {
  Pair t;
  REQUIRE(t.connect());
  DcepOpen c;
  c.label = "x";
  int s1 = t.A->open_channel(c), s2 = t.A->open_channel(c);
  REQUIRE(s1 >= 0);
  REQUIRE(s2 >= 0);
  CHECK(s2 != s1);
  REQUIRE(t.pump([&] { return t.b.opens.size() == 2 && t.a.opens.size() == 2; }));
  CHECK(t.A->close_channel(static_cast<uint16_t>(s1)));
  REQUIRE(t.pump([&] { return !t.a.closed.empty() && !t.b.closed.empty(); }));
  CHECK(t.a.closed == std::vector<uint16_t>{static_cast<uint16_t>(s1)});
  CHECK(t.b.closed == std::vector<uint16_t>{static_cast<uint16_t>(s1)});
  CHECK_FALSE(t.A->send_text(static_cast<uint16_t>(s1), "late"));
  // The other channel still works.
  CHECK(t.A->send_text(static_cast<uint16_t>(s2), "still here"));
  REQUIRE(t.pump([&] { return t.b.msgs.size() == 1; }));
  CHECK(t.b.msgs[0].stream == s2);
  CHECK(t.A->state() == SctpState::Connected);
}

TEST_CASE("limits and bad input: oversize messages refused, unknown stream, garbage SCTP disturbs nothing") {
  Pair t(4096);
  REQUIRE(t.connect());
  DcepOpen c;
  c.label = "small";
  int s = t.A->open_channel(c);
  REQUIRE(s >= 0);
  REQUIRE(t.pump([&] { return !t.b.opens.empty(); }));
  Bytes big(5000, 1);
  CHECK_FALSE(t.A->send(static_cast<uint16_t>(s), big.data(), big.size(), true));
  CHECK_FALSE(t.A->send_text(999, "no such channel"));
  CHECK(t.A->stats().send_failed == 2);
  // Not connected yet: no channel.
  Pair idle;
  CHECK(idle.A->open_channel(c) == -1);
  CHECK(idle.A->error() == "association not connected");
  // Garbage and truncated packets: dropped by usrsctp (checksum), nothing changes.
  Bytes junk = {0x13, 0x88, 0x13, 0x88, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x03, 0x00, 0x04};
  t.B->handle_input(junk.data(), junk.size());
  t.B->handle_input(junk.data(), 3);
  CHECK(t.B->state() == SctpState::Connected);
  CHECK(t.A->send_text(static_cast<uint16_t>(s), "after junk"));
  REQUIRE(t.pump([&] { return t.b.msgs.size() == 1; }));
  // close() ends it: no callbacks after.
  size_t states = t.a.states.size();
  t.A->close();
  CHECK(t.A->state() == SctpState::Closed);
  CHECK(t.a.states.size() == states);
  REQUIRE(t.pump([&] { return t.B->state() != SctpState::Connected; }));
  CHECK((t.B->state() == SctpState::Failed || t.B->state() == SctpState::Closed));
}

TEST_CASE("a second initialisation (a later plugin instance) works: usrsctp's output goes through the glue's trampoline") {
  // What a hot reload does: a new SctpStack initialises while usrsctp is up already. It used to
  // be refused (usrsctp's output pointed into the first instance's code); now usrsctp holds the
  // glue's trampoline and each association's Port names its own output.
  stack();
  CHECK(jn_sctp_glue_init() == 0);  // initialised once, by the first stack
  SctpStack other;
  std::string err;
  REQUIRE_MESSAGE(other.init(false, 0, err), err);
  CHECK(other.ready());
  const uint64_t dropped = jn_sctp_glue_dropped();
  Pair t(262144, &other);  // associations of the new instance
  REQUIRE(t.connect());
  int ch = t.A->open_channel(DcepOpen{});
  REQUIRE(ch >= 0);
  REQUIRE(t.pump([&] { return t.A->channel_open(static_cast<uint16_t>(ch)); }));
  CHECK(t.A->send_text(static_cast<uint16_t>(ch), "after a reload"));
  REQUIRE(t.pump([&] { return !t.b.msgs.empty(); }));
  CHECK(jn_sctp_glue_dropped() == dropped);
}
