// sdk/webrtc peer.hpp: two PeerConnections back to back over a fake network, negotiated with
// sdp.hpp as a browser and Junction would (B offers like a browser with build_offer, A answers
// with build_answer, B applies the answer), the test playing both sides' ICE agents. ICE + DTLS
// come up; H.264 video A -> B arrives as the same frames (held until a keyframe, with a "join"
// keyframe request upstream); PCMA audio both ways; B's request_keyframe() reaches A as a PLI
// ("loss"); a lost video packet is NACKed and resent (a reordering window waits for it), or
// costs a PLI when it never comes or the window is off; a NACK is answered with the original
// packet; DTMF; renegotiation on the same transports; SR/RR flow; data channels open over the
// real DTLS and carry messages; a refused local SCTP leaves media working.
#include <junction/webrtc/peer.hpp>
#include <junction/webrtc/stun.hpp>

#include "media_rtp_util.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <deque>
#include <random>

using namespace junction::webrtc;
using namespace junction;
using media_rtp_test::Bytes;

namespace {

jn_addr v4(uint8_t last, uint16_t port) {
  jn_addr x{};
  x.family = 4;
  x.port = port;
  x.ip[0] = 127, x.ip[3] = last;
  return x;
}

SctpStack* sctp_stack() {
  static SctpStack s;
  static bool ok = [] {
    std::string err;
    return s.init(true, 0, err);
  }();
  return ok ? &s : nullptr;
}

const Certificate& cert(int which) {
  static Certificate a, b;
  static bool ok = [] {
    REQUIRE(srtp_library_init_standalone());
    return a.generate() && b.generate();
  }();
  REQUIRE(ok);
  return which == 0 ? a : b;
}

struct Net;

struct Side : PeerCallbacks {
  Net* net = nullptr;
  jn_addr addr{};
  std::unique_ptr<PeerConnection> pc;
  struct Frame {
    uint32_t kind;
    Bytes data;
    jn_media_meta meta;
  };
  std::vector<Frame> frames;
  std::vector<std::pair<uint32_t, std::string>> keyframe_requests;
  std::vector<PeerState> states;
  std::vector<uint16_t> opens;
  std::vector<std::string> texts;
  std::vector<std::pair<char, uint32_t>> dtmf;
  void send_datagram(size_t, const uint8_t* d, size_t n, const jn_addr& to) override;
  void on_frame(uint32_t kind, const media::FrameView& f) override { frames.push_back({kind, Bytes(f.data, f.data + f.size), f.meta}); }
  void on_keyframe_request(uint32_t kind, const char* reason) override { keyframe_requests.emplace_back(kind, reason); }
  void on_state(PeerState s) override { states.push_back(s); }
  void on_dtmf(char d, uint32_t ms) override { dtmf.emplace_back(d, ms); }
  void on_channel_open(uint16_t s, const DcepOpen&, bool) override { opens.push_back(s); }
  void on_channel_message(uint16_t, const uint8_t* d, size_t n, bool) override { texts.emplace_back(reinterpret_cast<const char*>(d), n); }
};

struct Packet {
  jn_addr from, to;
  Bytes data;
};

struct Net {
  std::deque<Packet> q;
  std::vector<Side*> sides;
  uint64_t now = 1000;
  size_t drop_rtp_from_a = SIZE_MAX;  // index of an RTP packet from A to drop (loss)
  size_t rtp_from_a = 0;
  std::vector<uint16_t> dropped;  // their sequence numbers (the SRTP header is clear text)
  void pump() {
    for (int i = 0; i < 10000 && !q.empty(); ++i) {
      Packet p = std::move(q.front());
      q.pop_front();
      for (Side* s : sides)
        if (addr_equal(s->addr, p.to)) s->pc->handle_datagram(0, p.data.data(), p.data.size(), p.from, now);
    }
  }
  void advance(uint64_t ms) {
    for (uint64_t t = 0; t < ms; t += 10) {
      now += 10;
      for (Side* s : sides) s->pc->tick(now);
      pump();
    }
  }
};

void Side::send_datagram(size_t, const uint8_t* d, size_t n, const jn_addr& to) {
  if (n && d[0] <= 3) return;  // STUN answers go to the test's ICE agent: not needed
  if (n && d[0] >= 128 && d[0] <= 191 && addr_equal(addr, v4(1, 40000))) {
    bool rtcp = n >= 2 && d[1] >= 192 && d[1] <= 223;
    if (!rtcp && net->rtp_from_a++ == net->drop_rtp_from_a) {
      net->dropped.push_back(static_cast<uint16_t>(d[2] << 8 | d[3]));
      return;
    }
  }
  net->q.push_back({addr, to, Bytes(d, d + n)});
}

Bytes binding(const std::string& user, const std::string& pwd) {
  Bytes buf(512);
  uint8_t txid[12];
  for (auto& b : txid) b = static_cast<uint8_t>(std::rand());
  StunBuilder b(buf.data(), buf.size(), kStunBinding, StunClass::Request, txid);
  b.username(user).priority(1845501695).ice_controlling(7).use_candidate().message_integrity(pwd).fingerprint();
  buf.resize(b.size());
  return buf;
}

// B = the "browser" (offers, DTLS client), A = Junction (answers, ICE-lite, DTLS server).
struct Call {
  Net net;
  Side a, b;
  IceCredentials ia, ib;
  AnswerResult ra, rb;
  explicit Call(bool data = true, SctpStack* stack_a = sctp_stack(), uint32_t nack_wait_ms = 80) {
    REQUIRE(ice_random_credentials(ia));
    REQUIRE(ice_random_credentials(ib));
    a.net = b.net = &net;
    a.addr = v4(1, 40000);
    b.addr = v4(2, 50000);
    net.sides = {&a, &b};
    negotiate(data, JN_DIR_SENDRECV, ra, rb);
    PeerConfig ca, cb;
    ca.local_ice = {ia};
    cb.local_ice = {ib};
    ca.sctp = stack_a;
    cb.sctp = sctp_stack();
    ca.nack_wait_ms = cb.nack_wait_ms = nack_wait_ms;
    a.pc = std::make_unique<PeerConnection>(cert(0), a, ra, ca);
    b.pc = std::make_unique<PeerConnection>(cert(1), b, rb, cb);
    REQUIRE_MESSAGE(a.pc->ok(), a.pc->error());
    REQUIRE_MESSAGE(b.pc->ok(), b.pc->error());
  }
  // B offers (audio in `audio_dir`, video recvonly, data), A answers, B applies the answer.
  void negotiate(bool data, uint32_t audio_dir, AnswerResult& out_a, AnswerResult& out_b) {
    OfferOptions oo;
    oo.lines.push_back({JN_MEDIA_AUDIO, {{"OPUS"}, {"PCMA"}}, audio_dir, ""});
    oo.lines.push_back({JN_MEDIA_VIDEO, {{"VP8"}, {"H264"}}, JN_DIR_RECVONLY, ""});
    oo.data_channels = data;
    oo.transport.ice_ufrag = ib.ufrag;
    oo.transport.ice_pwd = ib.pwd;
    oo.transport.fingerprint = cert(1).fingerprint();
    oo.transport.address = "127.0.0.2";
    oo.transport.port = 50000;
    OfferResult off;
    ParseError err;
    REQUIRE_MESSAGE(build_offer(oo, off, err), err.reason);
    Description d;
    REQUIRE(parse_description(off.sdp, d, err));
    AnswerOptions ao;  // a GB camera behind A: PCMA + H.264 to send
    ao.audio.codecs = {{"PCMA"}};
    ao.audio.can_send = true;
    ao.video.codecs = {{"H264"}};
    ao.video.can_send = true;
    ao.video.can_receive = false;
    ao.data_channels = data;
    LocalTransport lt;
    lt.ice_ufrag = ia.ufrag;
    lt.ice_pwd = ia.pwd;
    lt.fingerprint = cert(0).fingerprint();
    lt.port = 40000;
    lt.candidates = {candidate_line("1", "127.0.0.1", 40000)};
    ao.transports = {lt};
    REQUIRE_MESSAGE(build_answer(d, ao, out_a, err), err.reason);
    REQUIRE_MESSAGE(apply_answer(off.local, out_a.sdp, out_b, err), err.reason);
  }
  void connect() {
    // The ICE agents: A (the DTLS server) first, so it knows B's address before the ClientHello.
    Bytes to_a = binding(ia.ufrag + ":" + ib.ufrag, ia.pwd);
    a.pc->handle_datagram(0, to_a.data(), to_a.size(), b.addr, net.now);
    Bytes to_b = binding(ib.ufrag + ":" + ia.ufrag, ib.pwd);
    b.pc->handle_datagram(0, to_b.data(), to_b.size(), a.addr, net.now);
    net.pump();
    REQUIRE(a.pc->state() == PeerState::Connected);
    REQUIRE(b.pc->state() == PeerState::Connected);
  }
};

media::FrameView fv(const Bytes& b, int64_t pts, uint32_t clock, uint32_t codec, uint32_t seq, uint32_t flags) {
  media::FrameView f = media_rtp_test::view(b, pts, clock, flags);
  f.meta.codec = codec;
  f.meta.seq = seq;
  return f;
}

}  // namespace

TEST_CASE("peer: negotiated like a browser call, ICE + DTLS up, H.264 video and PCMA audio through, keyframes both ways") {
  Call c;
  CHECK(c.ra.lines[1].codec.name == "H264");
  CHECK(c.rb.lines[1].direction == JN_DIR_RECVONLY);
  c.connect();
  CHECK(c.a.states.back() == PeerState::Connected);
  REQUIRE(c.a.pc->sender(JN_MEDIA_VIDEO));
  CHECK(c.a.pc->receiver(JN_MEDIA_VIDEO) == nullptr);  // sendonly: nothing to receive
  REQUIRE(c.b.pc->receiver(JN_MEDIA_VIDEO));

  std::mt19937 rng(5);
  using media_rtp_test::nal;
  Bytes key = media_rtp_test::au({nal({0x67, 0x42, 0xe0, 0x1f}, 10, rng), nal({0x68}, 4, rng), nal({0x65}, 6000, rng)});
  Bytes delta = media_rtp_test::au({nal({0x41}, 900, rng)});
  // A delta first: held, the producer is asked for a keyframe ("join").
  CHECK_FALSE(c.a.pc->send_frame(JN_MEDIA_VIDEO, fv(delta, 0, 90000, JN_CODEC_H264, 0, 0), c.net.now));
  REQUIRE(c.a.keyframe_requests.size() == 1);
  CHECK(c.a.keyframe_requests[0] == std::pair<uint32_t, std::string>{JN_MEDIA_VIDEO, "join"});
  CHECK(c.a.pc->send_frame(JN_MEDIA_VIDEO, fv(key, 3000, 90000, JN_CODEC_H264, 1, JN_MF_KEY | JN_MF_CONFIG), c.net.now));
  CHECK(c.a.pc->send_frame(JN_MEDIA_VIDEO, fv(delta, 6000, 90000, JN_CODEC_H264, 2, 0), c.net.now));
  Bytes pcma(160, 0xd5);
  CHECK(c.a.pc->send_frame(JN_MEDIA_AUDIO, fv(pcma, 0, 8000, JN_CODEC_PCMA, 0, 0), c.net.now));
  Bytes pcma_b(160, 0x2a);
  CHECK(c.b.pc->send_frame(JN_MEDIA_AUDIO, fv(pcma_b, 0, 8000, JN_CODEC_PCMA, 0, 0), c.net.now));
  c.net.pump();
  REQUIRE(c.b.frames.size() == 3);
  CHECK(c.b.frames[0].kind == JN_MEDIA_VIDEO);
  CHECK(c.b.frames[0].data == key);
  CHECK((c.b.frames[0].meta.frame_flags & JN_MF_KEY) != 0);
  CHECK(c.b.frames[1].data == delta);
  CHECK(c.b.frames[2].kind == JN_MEDIA_AUDIO);
  CHECK(c.b.frames[2].data == pcma);
  REQUIRE(c.a.frames.size() == 1);
  CHECK(c.a.frames[0].data == pcma_b);
  CHECK(c.a.frames[0].meta.codec == JN_CODEC_PCMA);
  CHECK(c.b.pc->stats().pli_sent == 0);  // B had its keyframe first

  // B's consumer asks for a keyframe: a PLI reaches A, which asks its producer ("loss").
  c.net.advance(600);  // past the keyframe-request interval of the "join" above
  c.b.pc->request_keyframe(c.net.now);
  c.net.pump();
  CHECK(c.b.pc->stats().pli_sent == 1);
  CHECK(c.a.pc->stats().pli_fir_in == 1);
  REQUIRE(c.a.keyframe_requests.size() == 2);
  CHECK(c.a.keyframe_requests[1] == std::pair<uint32_t, std::string>{JN_MEDIA_VIDEO, "loss"});
  // A second one within 500 ms is held back by the limiter, then sent by tick().
  c.b.pc->request_keyframe(c.net.now);
  c.net.pump();
  CHECK(c.b.pc->stats().pli_sent == 1);
  c.net.advance(600);
  CHECK(c.b.pc->stats().pli_sent == 2);
}

TEST_CASE("peer: a lost video packet is NACKed by the receiver, resent from the sender's buffer, and the frame arrives whole") {
  Call c(false);
  c.connect();
  std::mt19937 rng(6);
  using media_rtp_test::nal;
  Bytes key = media_rtp_test::au({nal({0x67, 0x42, 0xe0, 0x1f}, 10, rng), nal({0x68}, 4, rng), nal({0x65}, 5000, rng)});
  Bytes delta = media_rtp_test::au({nal({0x41}, 3000, rng)});
  CHECK(c.a.pc->send_frame(JN_MEDIA_VIDEO, fv(key, 0, 90000, JN_CODEC_H264, 0, JN_MF_KEY), c.net.now));
  c.net.pump();
  REQUIRE(c.b.frames.size() == 1);
  c.net.drop_rtp_from_a = c.net.rtp_from_a + 1;  // the second packet of the next frame
  CHECK(c.a.pc->send_frame(JN_MEDIA_VIDEO, fv(delta, 3000, 90000, JN_CODEC_H264, 1, 0), c.net.now));
  c.net.pump();  // B sees the gap when the third packet comes, NACKs it; A resends it at once
  REQUIRE(c.net.dropped.size() == 1);
  CHECK(c.b.pc->stats().nack_sent == 1);
  CHECK(c.a.pc->stats().nack_in == 1);
  CHECK(c.a.pc->stats().retransmitted == 1);
  REQUIRE(c.b.frames.size() == 2);
  CHECK(c.b.frames[1].data == delta);
  CHECK((c.b.frames[1].meta.frame_flags & JN_MF_DISCONT) == 0);
  CHECK(c.b.pc->stats().pli_sent == 0);  // nothing was lost in the end

  // A packet that never comes: the window gives up after nack_wait_ms, the frame is dropped and
  // a keyframe asked for (PLI); the next frames go on.
  c.net.drop_rtp_from_a = c.net.rtp_from_a + 1;
  CHECK(c.a.pc->send_frame(JN_MEDIA_VIDEO, fv(delta, 6000, 90000, JN_CODEC_H264, 2, 0), c.net.now));
  c.net.drop_rtp_from_a = c.net.rtp_from_a;  // and the resend of it too
  c.net.pump();
  CHECK(c.b.frames.size() == 2);  // held in the window
  c.net.advance(100);
  CHECK(c.b.frames.size() == 2);  // the damaged frame dropped, not passed on half
  CHECK(c.b.pc->stats().pli_sent == 1);
  CHECK(c.a.keyframe_requests.back().second == "loss");
}

TEST_CASE("peer: without the window (nack_wait_ms 0) a loss drops the frame and asks for a keyframe; a NACK is still answered") {
  Call c(false, sctp_stack(), 0);
  c.connect();
  std::mt19937 rng(6);
  using media_rtp_test::nal;
  Bytes key = media_rtp_test::au({nal({0x67, 0x42, 0xe0, 0x1f}, 10, rng), nal({0x68}, 4, rng), nal({0x65}, 5000, rng)});
  Bytes delta = media_rtp_test::au({nal({0x41}, 3000, rng)});
  CHECK(c.a.pc->send_frame(JN_MEDIA_VIDEO, fv(key, 0, 90000, JN_CODEC_H264, 0, JN_MF_KEY), c.net.now));
  c.net.pump();
  REQUIRE(c.b.frames.size() == 1);
  c.net.drop_rtp_from_a = c.net.rtp_from_a + 1;
  CHECK(c.a.pc->send_frame(JN_MEDIA_VIDEO, fv(delta, 3000, 90000, JN_CODEC_H264, 1, 0), c.net.now));
  c.net.pump();
  CHECK(c.b.frames.size() == 1);  // the damaged frame is dropped, not passed on half
  CHECK(c.b.pc->receiver(JN_MEDIA_VIDEO)->keyframe_wanted());
  CHECK(c.b.pc->stats().pli_sent == 1);
  CHECK(c.b.pc->stats().nack_sent == 0);
  CHECK(c.a.keyframe_requests.back().second == "loss");
  REQUIRE(c.net.dropped.size() == 1);

  // A NACK built by hand (SRTCP through B's transport, as a browser would): A resends the original.
  const FrameToRtp* tx = c.a.pc->sender(JN_MEDIA_VIDEO);
  REQUIRE(tx);
  uint8_t buf[64 + kRtpTailroom];
  uint16_t lost = c.net.dropped[0];
  size_t n = rtcp_build_nack(buf, 64, 0x5555, tx->ssrc(), &lost, 1);
  REQUIRE(n);
  REQUIRE(c.b.pc->send_rtcp(0, buf, n, sizeof buf));
  c.net.pump();
  CHECK(c.a.pc->stats().nack_in == 1);
  CHECK(c.a.pc->stats().retransmitted == 1);
  // A NACK for a packet never sent gets nothing.
  uint16_t never = static_cast<uint16_t>(lost + 1000);
  n = rtcp_build_nack(buf, 64, 0x5555, tx->ssrc(), &never, 1);
  REQUIRE(c.b.pc->send_rtcp(0, buf, n, sizeof buf));
  c.net.pump();
  CHECK(c.a.pc->stats().nack_in == 2);
  CHECK(c.a.pc->stats().retransmitted == 1);
}

TEST_CASE("peer: telephone-event packets from the browser become one DTMF digit per event") {
  Call c(false);
  c.connect();
  const uint8_t te = static_cast<uint8_t>(c.ra.lines[0].telephone_event_pt);
  REQUIRE(te == 97);  // after opus 96 in B's offer
  // RFC 4733: updates without E, then the end packet three times (same timestamp).
  auto event = [&](uint8_t ev, uint32_t ts, uint16_t seq, bool end, uint16_t dur) {
    uint8_t p[16 + kRtpTailroom] = {0x80, te, static_cast<uint8_t>(seq >> 8), static_cast<uint8_t>(seq), 0, 0, 0, 0,
                                    0, 0, 0x12, 0x34, ev, static_cast<uint8_t>(end ? 0x8a : 0x0a),
                                    static_cast<uint8_t>(dur >> 8), static_cast<uint8_t>(dur)};
    proto::rtp::wr32(p + 4, ts);
    REQUIRE(c.b.pc->send_rtp(0, p, 16, sizeof p));
  };
  uint16_t seq = 100;
  event(5, 8000, seq++, false, 400);
  event(5, 8000, seq++, false, 800);
  for (int i = 0; i < 3; ++i) event(5, 8000, seq++, true, 1600);
  event(11, 9600, seq++, false, 160);
  for (int i = 0; i < 3; ++i) event(11, 9600, seq++, true, 800);
  c.net.pump();
  REQUIRE(c.a.dtmf.size() == 2);
  CHECK(c.a.dtmf[0] == std::pair<char, uint32_t>{'5', 200});  // 1600 samples at 8 kHz
  CHECK(c.a.dtmf[1] == std::pair<char, uint32_t>{'#', 100});
  CHECK(c.a.pc->stats().dtmf == 2);
  CHECK(c.a.frames.empty());  // not audio frames
}

TEST_CASE("peer: a re-offer on the same transports (hold: the browser's audio sendonly) rebuilds the media lines only") {
  Call c(true);
  c.connect();
  c.net.advance(200);
  REQUIRE(c.a.pc->sctp());
  REQUIRE(c.a.pc->sctp()->state() == SctpState::Connected);
  AnswerResult ra2, rb2;
  c.negotiate(true, JN_DIR_SENDONLY, ra2, rb2);
  CHECK(ra2.lines[0].direction == JN_DIR_RECVONLY);
  std::string err;
  REQUIRE_MESSAGE(c.a.pc->renegotiate(ra2, err), err);
  REQUIRE_MESSAGE(c.b.pc->renegotiate(rb2, err), err);
  CHECK(c.a.pc->state() == PeerState::Connected);
  CHECK(c.a.pc->sctp()->state() == SctpState::Connected);  // data channels go on
  Bytes pcma(160, 0xd5);
  CHECK_FALSE(c.a.pc->send_frame(JN_MEDIA_AUDIO, fv(pcma, 0, 8000, JN_CODEC_PCMA, 0, 0), c.net.now));  // held: A only receives
  CHECK(c.b.pc->send_frame(JN_MEDIA_AUDIO, fv(pcma, 0, 8000, JN_CODEC_PCMA, 0, 0), c.net.now));
  c.net.pump();
  CHECK(c.a.frames.size() == 1);
  CHECK(c.b.frames.empty());
  // An ICE restart (new credentials on B's side, same certificate) is taken in place: checks
  // with the old credentials are refused from now on, DTLS and SRTP go on.
  IceCredentials old_ib = c.ib;
  REQUIRE(ice_random_credentials(c.ib));
  AnswerResult ra3, rb3;
  c.negotiate(true, JN_DIR_SENDRECV, ra3, rb3);
  REQUIRE_MESSAGE(c.a.pc->renegotiate(ra3, err), err);
  CHECK(c.a.pc->stats().ice_restarts == 1);
  REQUIRE_MESSAGE(c.b.pc->renegotiate(rb3, err), err);  // B sends and receives again
  CHECK(c.a.pc->transport(0).ice().remote().ufrag == c.ib.ufrag);
  const uint64_t valid = c.a.pc->transport(0).stats().ice.valid;
  Bytes stale = binding(c.ia.ufrag + ":" + old_ib.ufrag, c.ia.pwd);
  c.a.pc->handle_datagram(0, stale.data(), stale.size(), c.b.addr, c.net.now);
  CHECK(c.a.pc->transport(0).stats().ice.valid == valid);
  Bytes fresh = binding(c.ia.ufrag + ":" + c.ib.ufrag, c.ia.pwd);
  c.a.pc->handle_datagram(0, fresh.data(), fresh.size(), c.b.addr, c.net.now);
  CHECK(c.a.pc->transport(0).stats().ice.valid == valid + 1);
  CHECK(c.a.pc->state() == PeerState::Connected);
  CHECK(c.a.pc->send_frame(JN_MEDIA_AUDIO, fv(pcma, 20, 8000, JN_CODEC_PCMA, 1, 0), c.net.now));
  c.net.pump();
  CHECK(c.b.frames.size() == 1);
  // A new certificate (another DTLS peer) cannot be taken in place.
  AnswerResult ra4 = ra3;
  ra4.remotes[0].fingerprint = cert(0).fingerprint();
  CHECK_FALSE(c.a.pc->renegotiate(ra4, err));
  CHECK(err.find("new certificate") != std::string::npos);
  CHECK(c.a.pc->ok());  // the running call is untouched
}

TEST_CASE("peer: sender and receiver reports flow once a second") {
  Call c(false);
  c.connect();
  Bytes pcma(160, 0xd5);
  CHECK(c.a.pc->send_frame(JN_MEDIA_AUDIO, fv(pcma, 0, 8000, JN_CODEC_PCMA, 0, 0), c.net.now));
  CHECK(c.b.pc->send_frame(JN_MEDIA_AUDIO, fv(pcma, 0, 8000, JN_CODEC_PCMA, 0, 0), c.net.now));
  c.net.pump();
  uint64_t before = c.a.pc->transport(0).stats().rtcp_in;
  c.net.advance(2100);
  CHECK(c.a.pc->transport(0).stats().rtcp_in >= before + 2);
  CHECK(c.b.pc->transport(0).stats().rtcp_in >= 2);
  CHECK(c.a.pc->next_timer_ms() <= c.net.now + 1000);
}

TEST_CASE("peer: data channels over the real DTLS; without a local SCTP stack media still works") {
  REQUIRE(sctp_stack());
  Call c(true);
  CHECK(c.ra.lines[2].accepted);
  c.connect();
  c.net.advance(200);  // SCTP handshake (INIT, COOKIE) over DTLS
  REQUIRE(c.a.pc->sctp());
  CHECK(c.a.pc->sctp()->state() == SctpState::Connected);
  DcepOpen o;
  o.label = "chat";
  int s = c.b.pc->open_channel(o);
  REQUIRE(s >= 0);
  CHECK(s % 2 == 0);  // B is the DTLS client
  c.net.advance(50);
  REQUIRE(c.a.opens.size() == 1);
  CHECK(c.a.opens[0] == s);
  const char msg[] = "hello over sctp";
  CHECK(c.b.pc->send_channel(static_cast<uint16_t>(s), reinterpret_cast<const uint8_t*>(msg), sizeof msg - 1, false));
  c.net.advance(50);
  REQUIRE(c.a.texts.size() == 1);
  CHECK(c.a.texts[0] == "hello over sctp");

  Call d(true, nullptr);  // A has no usrsctp: the application m-line is negotiated but not served
  d.connect();
  CHECK(d.a.pc->sctp() == nullptr);
  CHECK(d.a.pc->open_channel(o) == -1);
  Bytes pcma(160, 0xd5);
  CHECK(d.a.pc->send_frame(JN_MEDIA_AUDIO, fv(pcma, 0, 8000, JN_CODEC_PCMA, 0, 0), d.net.now));
  d.net.pump();
  CHECK(d.b.frames.size() == 1);
}

TEST_CASE("peer: bad configuration is refused with a reason; garbage datagrams disturb nothing") {
  Call c(false);
  PeerConfig bad;
  PeerConnection p(cert(0), c.a, c.ra, bad);
  CHECK_FALSE(p.ok());
  CHECK(p.error() == "no local ICE credentials");
  c.connect();
  Bytes junk = {0x80, 0x60, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9};
  c.a.pc->handle_datagram(0, junk.data(), junk.size(), c.b.addr, c.net.now);
  Bytes junk2 = {0x17, 0xfe, 0xfd, 0, 0};
  c.a.pc->handle_datagram(0, junk2.data(), junk2.size(), c.b.addr, c.net.now);
  c.a.pc->handle_datagram(7, junk2.data(), junk2.size(), c.b.addr, c.net.now);  // no such transport
  CHECK(c.a.pc->state() == PeerState::Connected);
  Bytes pcma(160, 0xd5);
  CHECK(c.b.pc->send_frame(JN_MEDIA_AUDIO, fv(pcma, 0, 8000, JN_CODEC_PCMA, 0, 0), c.net.now));
  c.net.pump();
  CHECK(c.a.frames.size() == 1);
  c.a.pc->close();
  CHECK(c.a.pc->state() == PeerState::Closed);
  CHECK_FALSE(c.a.pc->send_frame(JN_MEDIA_AUDIO, fv(pcma, 160, 8000, JN_CODEC_PCMA, 1, 0), c.net.now));
}
