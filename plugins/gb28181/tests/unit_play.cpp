// gb28181 media-session units: the SSRC rule, SDP offers checked line by line against the
// document's samples (实时预览 UDP / TCP被动 / TCP主动, 回放, 下载), the devices' answers from the
// document parsed (y= adopted, a=filesize, f=), bad answers refused with their reason, the
// broadcast audio offer/answer, MANSRTSP requests and answers, and the viewer refcount with its
// grace and restart backoff on a fake clock.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "play/center.hpp"
#include "play/mansrtsp.hpp"
#include "play/sdp.hpp"
#include "play/session.hpp"
#include "play/viewers.hpp"

#include "sip_fake_env.hpp"

#include <junction/sip/message.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

using namespace gb::play;

static std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p < s.size()) {
    size_t e = s.find("\r\n", p);
    REQUIRE(e != std::string::npos);  // every line CRLF-terminated
    out.push_back(s.substr(p, e - p));
    p = e + 2;
  }
  return out;
}

static Offer live(Transport t, uint16_t port) {
  Offer o;
  o.kind = Kind::Play;
  o.transport = t;
  o.origin_user = "34020000002000000001";
  o.address = "192.168.0.107";
  o.port = port;
  o.ssrc = "0100000001";
  return o;
}

TEST_CASE("ssrc: 0/1 + digits 4..8 of the domain + a 4-digit sequence, reused only when released") {
  SsrcAllocator a("3402000000");
  CHECK(a.allocate(false) == "0200000001");
  CHECK(a.allocate(true) == "1200000002");
  CHECK(a.allocate(false) == "0200000003");
  a.release("0200000001");
  CHECK(a.in_use() == 2);
  SsrcAllocator b("4401061234");
  CHECK(b.allocate(false) == "0106120001");
  // A restored y= is not handed out again.
  SsrcAllocator c("3402000000");
  c.reserve("0200000001");
  CHECK(c.allocate(false) == "0200000002");
}

TEST_CASE("ssrc: all 9999 sequences in use -> empty, a release frees one") {
  SsrcAllocator a("3402000000");
  for (int i = 0; i < 9999; ++i) REQUIRE_FALSE(a.allocate(false).empty());
  CHECK(a.allocate(false).empty());
  a.release("0200000500");
  CHECK(a.allocate(false) == "0200000500");
}

TEST_CASE("offer: live over UDP is the document's sample") {
  auto l = lines(build_offer(live(Transport::Udp, 36000)));
  std::vector<std::string> want = {"v=0",
                                   "o=34020000002000000001 0 0 IN IP4 192.168.0.107",
                                   "s=Play",
                                   "c=IN IP4 192.168.0.107",
                                   "t=0 0",
                                   "m=video 36000 RTP/AVP 96 98 97",
                                   "a=recvonly",
                                   "a=rtpmap:96 PS/90000",
                                   "a=rtpmap:98 H264/90000",
                                   "a=rtpmap:97 MPEG4/90000",
                                   "y=0100000001"};
  CHECK(l == want);
}

TEST_CASE("offer: TCP passive / active carry TCP/RTP/AVP, a=setup and a=connection:new") {
  auto p = lines(build_offer(live(Transport::TcpPassive, 36000)));
  CHECK(p[5] == "m=video 36000 TCP/RTP/AVP 96 98 97");
  CHECK(std::find(p.begin(), p.end(), "a=setup:passive") != p.end());
  CHECK(std::find(p.begin(), p.end(), "a=connection:new") != p.end());
  CHECK(p.back() == "y=0100000001");
  auto a = lines(build_offer(live(Transport::TcpActive, 38000)));
  CHECK(a[5] == "m=video 38000 TCP/RTP/AVP 96 98 97");
  CHECK(std::find(a.begin(), a.end(), "a=setup:active") != a.end());
  CHECK(std::find(a.begin(), a.end(), "a=setup:passive") == a.end());
}

TEST_CASE("offer: playback and download carry u=, t= and a=downloadspeed") {
  Offer o = live(Transport::Udp, 36000);
  o.kind = Kind::Playback;
  o.channel = "34020000001310000001";
  o.start = 1697264152;
  o.end = 1697266715;
  o.ssrc = "1100000001";
  auto l = lines(build_offer(o));
  CHECK(l[2] == "s=Playback");
  CHECK(l[3] == "u=34020000001310000001:0");
  CHECK(l[5] == "t=1697264152 1697266715");
  CHECK(std::find(l.begin(), l.end(), "a=downloadspeed:8") == l.end());
  o.kind = Kind::Download;
  o.download_speed = 8;
  l = lines(build_offer(o));
  CHECK(l[2] == "s=Download");
  CHECK(std::find(l.begin(), l.end(), "a=downloadspeed:8") != l.end());
}

// The device answers from the document (its "# ..." annotations removed).
static const char* kUdpAnswer =
    "v=0\r\no=34020000001310000002 0 0 IN IP4 192.168.0.111\r\ns=Play\r\ni=VCam Live Video\r\n"
    "c=IN IP4 192.168.0.111\r\nt=0 0\r\nm=video 9712 RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\n"
    "a=streamprofile:0\r\ny=0100000001\r\nf=v/0/0/0/0/0a/0/0/0\r\n";
static const char* kTcpActiveDevice =  // the device connects: it answers our passive offer
    "v=0\no=xxx 0 0 IN IP4 192.168.0.111\ns=Play\ni=VCam Live Video\nc=IN IP4 192.168.0.111\nt=0 0\n"
    "m=video 9724 TCP/RTP/AVP 96\na=sendonly\na=rtpmap:96 PS/90000\na=streamprofile:0\na=setup:active\n"
    "a=connection:new\ny=0100000001\nf=v/0/0/0/0/0a/0/0/0\n";
static const char* kTcpPassiveDevice =  // the device listens on 9704: we connect
    "v=0\no=xxx 0 0 IN IP4 192.168.0.111\ns=Play\ni=VCam Live Video\nc=IN IP4 192.168.0.111\nt=0 0\n"
    "m=video 9704 TCP/RTP/AVP 96\na=sendonly\na=rtpmap:96 PS/90000\na=streamprofile:0\na=setup:passive\n"
    "a=connection:new\ny=0100000001\nf=v/0/0/0/0/0a/0/0/0\n";

TEST_CASE("answer: the document's UDP answer") {
  std::string err;
  auto a = parse_answer(kUdpAnswer, live(Transport::Udp, 36000), err);
  REQUIRE_MESSAGE(a, err);
  CHECK(a->address == "192.168.0.111");
  CHECK(a->port == 9712);
  CHECK(a->transport == Transport::Udp);
  CHECK(a->ssrc == "0100000001");
  CHECK(a->ssrc_value == 100000001u);
  CHECK(a->payloads.at(96) == "PS");
  CHECK(a->format == "v/0/0/0/0/0a/0/0/0");
  CHECK_FALSE(a->filesize);
}

TEST_CASE("answer: the document's TCP answers, each to its own offer; a crossed a=setup is refused") {
  std::string err;
  auto p = parse_answer(kTcpActiveDevice, live(Transport::TcpPassive, 36000), err);
  REQUIRE_MESSAGE(p, err);
  CHECK(p->transport == Transport::TcpPassive);
  CHECK(p->port == 9724);
  auto a = parse_answer(kTcpPassiveDevice, live(Transport::TcpActive, 38000), err);
  REQUIRE_MESSAGE(a, err);
  CHECK(a->transport == Transport::TcpActive);
  CHECK(a->address == "192.168.0.111");
  CHECK(a->port == 9704);  // where we connect
  // Both sides passive: nobody connects.
  CHECK_FALSE(parse_answer(kTcpPassiveDevice, live(Transport::TcpPassive, 36000), err));
  CHECK(err.find("a=setup:passive") != std::string::npos);
  // A TCP answer to a UDP offer.
  CHECK_FALSE(parse_answer(kTcpPassiveDevice, live(Transport::Udp, 36000), err));
  CHECK(err.find("transport") != std::string::npos);
}

TEST_CASE("answer: y= adopted as the device writes it (short forms), a=filesize for downloads") {
  std::string err;
  std::string s =
      "v=0\r\no=x 0 0 IN IP4 10.0.0.2\r\ns=Download\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=video 6000 RTP/AVP 96\r\n"
      "a=sendonly\r\na=rtpmap:96 PS/90000\r\na=filesize:62224924\r\ny=001\r\n";
  Offer o = live(Transport::Udp, 36000);
  o.kind = Kind::Download;
  auto a = parse_answer(s, o, err);
  REQUIRE_MESSAGE(a, err);
  CHECK(a->ssrc == "001");
  CHECK(a->ssrc_value == 1u);
  CHECK(a->filesize == 62224924u);
  // y=0 (some devices): SSRC 0, the receiver accepts any.
  auto z = parse_answer(std::string(kUdpAnswer).replace(std::string(kUdpAnswer).find("y=0100000001"), 12, "y=0"), o, err);
  REQUIRE(z);
  CHECK(z->ssrc_value == 0u);
}

TEST_CASE("answer: each bad answer is refused with its reason") {
  Offer o = live(Transport::Udp, 36000);
  auto why = [&](std::string s) {
    std::string err;
    if (parse_answer(s, o, err)) return std::string("accepted");
    return err;
  };
  std::string good = kUdpAnswer;
  auto edit = [&](std::string from, std::string to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  CHECK(why("") .find("empty") != std::string::npos);
  CHECK(why(edit("m=video 9712", "m=video 0")).find("port 0") != std::string::npos);
  CHECK(why(edit("m=video", "m=audio")).find("no m=video") != std::string::npos);
  CHECK(why(edit("c=IN IP4 192.168.0.111\r\n", "")).find("no c=") != std::string::npos);
  CHECK(why(edit("y=0100000001", "y=01x0")).find("y=01x0") != std::string::npos);
  CHECK(why(edit("y=0100000001", "y=99999999999")).find("y=") != std::string::npos);
  CHECK(why(edit("v=0", "garbage")).find("answer SDP") != std::string::npos);
  CHECK(why(good) == "accepted");
}

TEST_CASE("broadcast: the device's audio INVITE (PCMA or PS, UDP or TCP) and our sendonly answer") {
  std::string err;
  std::string offer =
      "v=0\r\no=34020000001370000001 0 0 IN IP4 192.168.1.64\r\ns=Play\r\nc=IN IP4 192.168.1.64\r\nt=0 0\r\n"
      "m=audio 15060 RTP/AVP 8\r\na=recvonly\r\na=rtpmap:8 PCMA/8000\r\ny=0100000002\r\nf=v/////a/1/8/1\r\n";
  auto o = parse_audio_offer(offer, err);
  REQUIRE_MESSAGE(o, err);
  CHECK(o->address == "192.168.1.64");
  CHECK(o->port == 15060);
  CHECK(o->transport == Transport::Udp);
  CHECK_FALSE(o->ps);
  CHECK(o->payload_type == 8);
  CHECK(o->ssrc == "0100000002");
  auto l = lines(build_audio_answer(*o, "34020000002000000001", "127.0.0.1", 30002));
  CHECK(l[5] == "m=audio 30002 RTP/AVP 8");
  CHECK(std::find(l.begin(), l.end(), "a=sendonly") != l.end());
  CHECK(std::find(l.begin(), l.end(), "y=0100000002") != l.end());
  // PS only, TCP with the device listening: we connect and send PS.
  std::string ps =
      "v=0\r\no=d 0 0 IN IP4 192.168.1.64\r\ns=Play\r\nc=IN IP4 192.168.1.64\r\nt=0 0\r\n"
      "m=audio 15062 TCP/RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\na=setup:passive\r\ny=0100000003\r\n";
  auto p = parse_audio_offer(ps, err);
  REQUIRE_MESSAGE(p, err);
  CHECK(p->ps);
  CHECK(p->payload_type == 96);
  CHECK(p->transport == Transport::TcpActive);
  auto pl = lines(build_audio_answer(*p, "34020000002000000001", "127.0.0.1", 30004));
  CHECK(pl[5] == "m=audio 30004 TCP/RTP/AVP 96");
  CHECK(std::find(pl.begin(), pl.end(), "a=setup:active") != pl.end());
  // Neither PCMA nor PS.
  std::string g729 = "v=0\r\no=d 0 0 IN IP4 1.2.3.4\r\ns=Play\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 1 RTP/AVP 18\r\n";
  CHECK_FALSE(parse_audio_offer(g729, err));
  CHECK(err.find("neither PCMA nor PS") != std::string::npos);
}

TEST_CASE("mansrtsp: PLAY / PAUSE / TEARDOWN bodies") {
  std::string err;
  RtspRequest r;
  r.cseq = 2;
  r.scale = 2;
  r.range_given = true;
  CHECK(build_rtsp(r, err) == std::string("PLAY MANSRTSP/1.0\r\nCSeq: 2\r\nScale: 2.0\r\nRange: npt=now-\r\n"));
  r.scale = 0.5;
  r.range_start = 100;
  CHECK(build_rtsp(r, err) == std::string("PLAY MANSRTSP/1.0\r\nCSeq: 2\r\nScale: 0.5\r\nRange: npt=100.0-\r\n"));
  RtspRequest p;
  p.method = RtspMethod::Pause;
  p.cseq = 3;
  CHECK(build_rtsp(p, err) == std::string("PAUSE MANSRTSP/1.0\r\nCSeq: 3\r\nPauseTime: now\r\n"));
  RtspRequest t;
  t.method = RtspMethod::Teardown;
  t.cseq = 4;
  CHECK(build_rtsp(t, err) == std::string("TEARDOWN MANSRTSP/1.0\r\nCSeq: 4\r\n"));
  RtspRequest bad;
  bad.scale = 0;
  CHECK_FALSE(build_rtsp(bad, err));
  CHECK(err.find("scale") != std::string::npos);
  bad.scale = 1;
  bad.range_start = 10;
  bad.range_end = 5;
  CHECK_FALSE(build_rtsp(bad, err));
}

TEST_CASE("mansrtsp: requests round-trip; bad requests refused with the reason") {
  std::string err;
  auto r = parse_rtsp_request("PLAY MANSRTSP/1.0\r\nCSeq: 7\r\nScale: 4.0\r\nRange: npt=12.5-60\r\n", err);
  REQUIRE_MESSAGE(r, err);
  CHECK(r->method == RtspMethod::Play);
  CHECK(r->cseq == 7);
  CHECK(r->scale == 4.0);
  CHECK(r->range_start == 12.5);
  CHECK(r->range_end == 60.0);
  auto n = parse_rtsp_request("PLAY MANSRTSP/1.0\nCSeq: 8\nRange: npt=now-\n", err);
  REQUIRE(n);
  CHECK(n->range_given);
  CHECK_FALSE(n->range_start);
  auto p = parse_rtsp_request("PAUSE MANSRTSP/1.0\r\nCSeq: 9\r\nPauseTime: now\r\n", err);
  REQUIRE(p);
  CHECK(p->method == RtspMethod::Pause);
  auto why = [](std::string s) {
    std::string e;
    return parse_rtsp_request(s, e) ? std::string("accepted") : e;
  };
  CHECK(why("").find("empty") != std::string::npos);
  CHECK(why("RECORD MANSRTSP/1.0\r\nCSeq: 1\r\n").find("not supported") != std::string::npos);
  CHECK(why("PLAY HTTP/1.1\r\nCSeq: 1\r\n").find("MANSRTSP/1.0") != std::string::npos);
  CHECK(why("PLAY MANSRTSP/1.0\r\n").find("without CSeq") != std::string::npos);
  CHECK(why("PLAY MANSRTSP/1.0\r\nCSeq: x\r\n").find("CSeq") != std::string::npos);
  CHECK(why("PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nScale: 0\r\n").find("Scale") != std::string::npos);
  CHECK(why("PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nScale: nan\r\n").find("Scale") != std::string::npos);
  CHECK(why("PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nRange: clock=1-\r\n").find("npt") != std::string::npos);
  CHECK(why("PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nRange: npt=-5-\r\n").find("Range") != std::string::npos);
  CHECK(why(std::string(5000, 'A')).find("larger") != std::string::npos);
}

TEST_CASE("mansrtsp: the device's answers") {
  std::string err;
  auto r = parse_rtsp_response("MANSRTSP/1.0 200 OK\r\nCSeq: 2\r\nRTP-Info: seq=1;rtptime=0\r\n", err);
  REQUIRE_MESSAGE(r, err);
  CHECK(r->status == 200);
  CHECK(r->reason == "OK");
  CHECK(r->cseq == 2);
  CHECK(r->rtp_info == "seq=1;rtptime=0");
  CHECK_FALSE(parse_rtsp_response("RTSP 200 OK\r\n", err));
  CHECK_FALSE(parse_rtsp_response("MANSRTSP/1.0 abc OK\r\n", err));
  CHECK(build_rtsp_response(200, "OK", 5) == "MANSRTSP/1.0 200 OK\r\nCSeq: 5\r\n");
}

// --- viewers on a fake clock ---

static ViewerConf vconf() {
  ViewerConf c;
  c.grace_ms = 5000;
  c.backoff_initial_ms = 1000;
  c.backoff_max_ms = 8000;
  c.restart_attempts = 4;
  return c;
}
static const std::string kCh = "34020000001320000001";

TEST_CASE("viewers: the first viewer starts, others join with a keyframe request, duplicates are no-ops") {
  Viewers v(vconf());
  auto a = v.join(kCh, "call-1", 0);
  REQUIRE(a.size() == 1);
  CHECK(a[0].type == ActionType::Start);
  CHECK(v.join(kCh, "call-2", 10).empty());  // still starting: the first keyframe serves both
  CHECK(v.started(kCh, 20).empty());
  CHECK(v.find(kCh)->state == StreamState::Live);
  a = v.join(kCh, "call-3", 30);
  REQUIRE(a.size() == 1);
  CHECK(a[0].type == ActionType::RequestKeyframe);
  CHECK(a[0].viewers == std::vector<std::string>{"call-3"});
  CHECK(v.join(kCh, "call-3", 40).empty());
  CHECK(v.find(kCh)->viewers.size() == 3);
}

TEST_CASE("viewers: last viewer leaves -> BYE after the grace; a re-join in grace keeps the stream") {
  Viewers v(vconf());
  v.join(kCh, "a", 0);
  v.started(kCh, 0);
  v.join(kCh, "b", 0);
  CHECK(v.leave(kCh, "a", 100).empty());
  CHECK(v.next_deadline() == UINT64_MAX);  // b still watches
  v.leave(kCh, "b", 1000);
  CHECK(v.find(kCh)->state == StreamState::Grace);
  CHECK(v.next_deadline() == 6000);
  CHECK(v.tick(5999).empty());
  auto a = v.join(kCh, "c", 5999);  // back in time: no BYE, a keyframe for c
  REQUIRE(a.size() == 1);
  CHECK(a[0].type == ActionType::RequestKeyframe);
  CHECK(v.tick(7000).empty());
  v.leave(kCh, "c", 8000);
  a = v.tick(13000);
  REQUIRE(a.size() == 1);
  CHECK(a[0].type == ActionType::Stop);
  CHECK(v.find(kCh) == nullptr);
  CHECK(v.join(kCh, "d", 14000)[0].type == ActionType::Start);  // a fresh start afterwards
}

TEST_CASE("viewers: everyone leaves before the device answered -> grace starts at the answer") {
  Viewers v(vconf());
  v.join(kCh, "a", 0);
  v.leave(kCh, "a", 10);
  CHECK(v.find(kCh)->state == StreamState::Starting);
  v.started(kCh, 500);
  CHECK(v.find(kCh)->state == StreamState::Grace);
  CHECK(v.next_deadline() == 5500);
  CHECK(v.tick(5500)[0].type == ActionType::Stop);
}

TEST_CASE("viewers: RTP timeout -> BYE and restarts with a doubling, capped backoff; a keyframe resets it") {
  Viewers v(vconf());
  v.join(kCh, "a", 0);
  v.started(kCh, 0);
  auto a = v.rtp_timeout(kCh, 1000);
  REQUIRE(a.size() == 1);
  CHECK(a[0].type == ActionType::Stop);
  CHECK(v.find(kCh)->state == StreamState::Waiting);
  CHECK(v.next_deadline() == 2000);  // 1 s
  CHECK(v.tick(1999).empty());
  a = v.tick(2000);
  REQUIRE(a.size() == 1);
  CHECK(a[0].type == ActionType::Start);
  CHECK(v.start_failed(kCh, "408", 2100).empty());
  CHECK(v.next_deadline() == 4100);  // 2 s
  v.tick(4100);
  v.start_failed(kCh, "408", 4200);
  CHECK(v.next_deadline() == 8200);  // 4 s
  v.tick(8200);
  v.started(kCh, 8300);
  v.first_keyframe(kCh);  // working again: attempts back to 0
  v.rtp_timeout(kCh, 9000);
  CHECK(v.next_deadline() == 10000);
  CHECK(v.backoff_ms(10) == 8000);  // capped
  CHECK(v.find(kCh)->restarts == 3);
}

TEST_CASE("viewers: restart attempts exhausted -> the viewers' calls end") {
  Viewers v(vconf());
  v.join(kCh, "a", 0);
  v.join(kCh, "b", 0);
  uint64_t t = 0;
  for (int i = 0; i < 3; ++i) {
    CHECK(v.start_failed(kCh, "486 Busy", t).empty());
    t = v.next_deadline();
    REQUIRE(v.tick(t).size() == 1);
  }
  auto a = v.start_failed(kCh, "486 Busy", t);
  REQUIRE(a.size() == 1);
  CHECK(a[0].type == ActionType::EndViewers);
  CHECK(a[0].viewers == std::vector<std::string>{"a", "b"});
  CHECK(a[0].reason == "486 Busy");
  CHECK(v.find(kCh) == nullptr);
}

TEST_CASE("viewers: restart off -> a timeout ends the viewers; no viewers -> nothing restarts") {
  ViewerConf c = vconf();
  c.restart_on_timeout = false;
  Viewers v(c);
  v.join(kCh, "a", 0);
  v.started(kCh, 0);
  auto a = v.rtp_timeout(kCh, 100);
  REQUIRE(a.size() == 2);
  CHECK(a[0].type == ActionType::Stop);
  CHECK(a[1].type == ActionType::EndViewers);
  CHECK(v.find(kCh) == nullptr);
  Viewers w(vconf());
  w.join(kCh, "a", 0);
  w.started(kCh, 0);
  w.leave(kCh, "a", 10);  // grace
  a = w.rtp_timeout(kCh, 100);
  REQUIRE(a.size() == 1);
  CHECK(a[0].type == ActionType::Stop);
  CHECK(w.find(kCh) == nullptr);
}

TEST_CASE("viewers: leaving during a backoff drops the pending restart; device BYE releases everyone") {
  Viewers v(vconf());
  v.join(kCh, "a", 0);
  v.started(kCh, 0);
  v.rtp_timeout(kCh, 10);
  v.leave(kCh, "a", 20);
  CHECK(v.find(kCh) == nullptr);
  CHECK(v.tick(100000).empty());
  v.join(kCh, "a", 0);
  v.join(kCh, "b", 0);
  v.started(kCh, 0);
  auto a = v.device_bye(kCh);
  REQUIRE(a.size() == 1);
  CHECK(a[0].type == ActionType::EndViewers);
  CHECK(a[0].viewers.size() == 2);
  CHECK(v.find(kCh) == nullptr);
  CHECK(v.device_bye(kCh).empty());
}

TEST_CASE("viewers: the table survives a reload (json) and refuses a corrupt one") {
  Viewers v(vconf());
  v.join(kCh, "a", 0);
  v.started(kCh, 0);
  v.join("34020000001320000002", "b", 0);
  v.leave(kCh, "a", 100);
  Viewers w(vconf());
  std::string err;
  REQUIRE(w.from_json(v.to_json(), err));
  CHECK(w.to_json() == v.to_json());
  CHECK(w.find(kCh)->state == StreamState::Grace);
  CHECK(w.next_deadline() == 5100);
  CHECK_FALSE(w.from_json(nlohmann::json::array({{{"channel", "x"}, {"state", "zombie"}}}), err));
  CHECK(err.find("zombie") != std::string::npos);
  CHECK(w.find(kCh) != nullptr);  // a refused table leaves the old one
}

// --- PlayCenter over a real sip::Stack on a fake env, a fake media port and a fake plugin ---

namespace sip = junction::sip;
using sip::testing::FakeEnv;

namespace {
const char* kPlat = "34020000002000000001";
const char* kDevId = "34020000001320000001";
const char* kChan = "34020000001310000001";

struct FakeMedia : MediaPort {
  uint32_t next = 1;
  std::map<uint32_t, std::string> open_;  // id -> "device/channel/transport/kind/ssrc"
  std::map<uint32_t, Answer> answers;
  std::vector<std::string> closed;
  bool fail = false;
  MediaOpened open(const std::string& d, const std::string& c, Transport t, Kind k, uint32_t ssrc, const std::string&) override {
    MediaOpened o;
    if (fail) {
      o.error = "no port";
      return o;
    }
    o.id = next++;
    o.ip = "0.0.0.0";
    o.port = static_cast<uint16_t>(30000 + 2 * o.id);
    o.stream = "gb28181/" + d + "/" + c;
    open_[o.id] = d + "/" + c + "/" + std::string(transport_name(t)) + "/" + std::string(kind_name(k)) + "/" + std::to_string(ssrc);
    return o;
  }
  bool answer(uint32_t id, const Answer& a, std::string& error) override {
    if (!open_.count(id)) {
      error = "unknown";
      return false;
    }
    answers[id] = a;
    return true;
  }
  void close(uint32_t id, const std::string& reason) override {
    open_.erase(id);
    closed.push_back(std::to_string(id) + " " + reason);
  }
  nlohmann::json stats(uint32_t id) override { return {{"id", id}}; }
};

struct FakeLink : PlayLink {
  FakeEnv& env;
  bool offline = false;
  std::vector<std::string> keyframes, ended, logs;
  std::vector<nlohmann::json> changes;
  uint64_t armed = UINT64_MAX;
  explicit FakeLink(FakeEnv& e) : env(e) {}
  bool device_flow(const std::string& d, sip::Flow& f, std::string& error) override {
    if (offline) {
      error = "device " + d + " is offline";
      return false;
    }
    f = sip::testing::udp_flow(5061);
    return true;
  }
  std::optional<Transport> device_transport(const std::string&) override { return std::nullopt; }
  void request_keyframe(const std::string&, const std::string& c) override { keyframes.push_back(c); }
  void end_viewers(const std::vector<std::string>& v, const std::string& reason) override {
    for (auto& x : v) ended.push_back(x + ": " + reason);
  }
  void session_changed(uint64_t, const nlohmann::json& v) override { changes.push_back(v); }
  void log(int, const std::string& m) override { logs.push_back(m); }
  void count_event(std::string_view) override {}
  uint64_t now_ms() override { return env.now; }
  void arm_play(uint64_t at) override { armed = at; }
};

struct User : sip::StackUser {
  PlayCenter* c = nullptr;
  std::vector<std::string> unhandled;
  void on_request(sip::TxnId id, const sip::Message& m, const sip::Flow& f) override {
    if (!c->on_request(id, m, f)) unhandled.emplace_back(m.method());
  }
  void on_response(sip::TxnId id, int st, const sip::Message* m) override { c->on_response(id, st, m); }
};

std::string header_line(const std::string& msg, std::string_view name) {
  size_t p = msg.find("\r\n" + std::string(name) + ":");
  REQUIRE(p != std::string::npos);
  size_t e = msg.find("\r\n", p + 2);
  return msg.substr(p + 2, e - p - 2);
}
std::string body_of(const std::string& msg) { return msg.substr(msg.find("\r\n\r\n") + 4); }

struct PlayRig {
  FakeEnv env;
  User user;
  sip::Stack stack{env, user};
  FakeMedia media;
  FakeLink link{env};
  PlayConf conf = [] {
    PlayConf c;
    c.viewers = vconf();
    return c;
  }();
  std::unique_ptr<PlayCenter> center = std::make_unique<PlayCenter>(stack, media, link, kPlat, "3402000000", conf);
  std::string dev_tag = "devtag1";
  PlayRig() {
    user.c = center.get();
    env.on_wake = [this] { stack.on_timer(); };
  }
  // The last sent message starting with prefix.
  std::string last(std::string_view prefix) {
    for (auto it = env.sent.rbegin(); it != env.sent.rend(); ++it)
      if (std::string_view(it->bytes).substr(0, prefix.size()) == prefix) return it->bytes;
    FAIL("nothing sent starting with " << prefix);
    return {};
  }
  // The device answers a request we sent.
  void answer(const std::string& req, int code, const std::string& sdp = {}) {
    std::string r = "SIP/2.0 " + std::to_string(code) + (code == 200 ? " OK" : " Busy Here") + "\r\n" + header_line(req, "Via") + "\r\n" +
                    header_line(req, "From") + "\r\n" + header_line(req, "To") + ";tag=" + dev_tag + "\r\n" +
                    header_line(req, "Call-ID") + "\r\n" + header_line(req, "CSeq") + "\r\nContact: <sip:" + kDevId +
                    "@127.0.0.1:5061>\r\n";
    if (!sdp.empty()) r += "Content-Type: application/sdp\r\n";
    r += "Content-Length: " + std::to_string(sdp.size()) + "\r\n\r\n" + sdp;
    stack.on_datagram(r, sip::testing::udp_flow(5061));
  }
  // The device sends a request in the dialog of INVITE `inv` (its From/To swapped).
  void in_dialog(const std::string& inv, const std::string& method, uint32_t cseq, const std::string& body = {},
                 const std::string& ctype = {}) {
    std::string from = header_line(inv, "From"), to = header_line(inv, "To");
    std::string r = method + " sip:" + std::string(kPlat) + "@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;rport;branch=z9hG4bKd" +
                    method + std::to_string(cseq) + "\r\nFrom: " + to.substr(4) + ";tag=" + dev_tag + "\r\nTo: " + from.substr(6) +
                    "\r\n" + header_line(inv, "Call-ID") + "\r\nCSeq: " + std::to_string(cseq) + " " + method +
                    "\r\nMax-Forwards: 70\r\n";
    if (!ctype.empty()) r += "Content-Type: " + ctype + "\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    stack.on_datagram(r, sip::testing::udp_flow(5061));
  }
};

std::string device_answer(const std::string& y) {
  return "v=0\r\no=" + std::string(kChan) + " 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         "m=video 9712 RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\ny=" + y + "\r\nf=v/2/5/25/1/4096a///\r\n";
}
}  // namespace

TEST_CASE("center: live view INVITE -> 200 -> ACK, answer y= adopted, viewers share it, BYE after the grace") {
  PlayRig r;
  std::string err;
  REQUIRE_MESSAGE(r.center->view(kDevId, kChan, "v1", err), err);
  std::string inv = r.last("INVITE ");
  CHECK(inv.rfind(std::string("INVITE sip:") + kChan + "@127.0.0.1:5061 SIP/2.0", 0) == 0);
  CHECK(header_line(inv, "Subject") == std::string("Subject: ") + kChan + ":0200000001," + kPlat + ":0");
  auto sdp = lines(body_of(inv));
  CHECK(sdp[2] == "s=Play");
  CHECK(sdp[3] == "c=IN IP4 127.0.0.1");  // the receiver's 0.0.0.0 replaced by the SIP host
  CHECK(sdp[5] == "m=video 30002 RTP/AVP 96 98 97");
  CHECK(sdp.back() == "y=0200000001");
  CHECK(r.media.open_.at(1) == std::string(kDevId) + "/" + kChan + "/udp/Play/200000001");
  uint64_t id = r.center->live_session(kChan);
  REQUIRE(id);
  CHECK(r.center->find(id)->state == SessionState::Inviting);
  CHECK(r.center->view(kDevId, kChan, "v2", err));  // still inviting: no second INVITE, no keyframe
  CHECK(r.env.count("INVITE ") == 1);

  r.answer(inv, 200, device_answer("0100000009"));
  CHECK(r.env.count("ACK ") == 1);
  CHECK(r.center->find(id)->state == SessionState::Active);
  CHECK(r.center->find(id)->answer_ssrc == "0100000009");
  CHECK(r.media.answers.at(1).ssrc_value == 100000009u);
  CHECK(r.media.answers.at(1).port == 9712);
  // A 2xx retransmission is ACKed again.
  r.answer(inv, 200, device_answer("0100000009"));
  CHECK(r.env.count("ACK ") == 2);

  CHECK(r.center->view(kDevId, kChan, "v3", err));
  CHECK(r.link.keyframes == std::vector<std::string>{kChan});
  r.center->unview(kChan, "v1");
  r.center->unview(kChan, "v2");
  r.center->unview(kChan, "v3");
  CHECK(r.env.count("BYE ") == 0);
  CHECK(r.link.armed == r.env.now + 5000);
  r.env.now += 5000;
  r.center->on_tick();
  CHECK(r.env.count("BYE ") == 1);
  CHECK(r.media.open_.empty());
  CHECK(r.center->find(id) == nullptr);
  CHECK(r.center->live_session(kChan) == 0);
}

TEST_CASE("center: a refused INVITE closes the receiver and retries with backoff; offline fails at once") {
  PlayRig r;
  std::string err;
  r.link.offline = true;
  CHECK_FALSE(r.center->view(kDevId, kChan, "v1", err));
  CHECK(err.find("offline") != std::string::npos);
  CHECK(r.center->viewers().find(kChan) == nullptr);
  r.link.offline = false;
  REQUIRE(r.center->view(kDevId, kChan, "v1", err));
  r.answer(r.last("INVITE "), 486);
  CHECK(r.media.open_.empty());
  CHECK(r.media.closed.size() == 1);
  CHECK(r.center->viewers().find(kChan)->state == StreamState::Waiting);
  CHECK(r.link.armed == r.env.now + 1000);
  r.env.now += 1000;
  r.center->on_tick();
  CHECK(r.env.count("INVITE ") == 2);
  CHECK(r.center->live_session(kChan) != 0);
}

TEST_CASE("center: the device's BYE ends the stream and every viewer's call") {
  PlayRig r;
  std::string err;
  REQUIRE(r.center->view(kDevId, kChan, "v1", err));
  REQUIRE(r.center->view(kDevId, kChan, "v2", err));
  std::string inv = r.last("INVITE ");
  r.answer(inv, 200, device_answer("0200000001"));
  r.in_dialog(inv, "BYE", 1);
  CHECK(r.last("SIP/2.0 ").rfind("SIP/2.0 200", 0) == 0);
  CHECK(r.link.ended == std::vector<std::string>{"v1: device ended the stream", "v2: device ended the stream"});
  CHECK(r.media.open_.empty());
  CHECK(r.center->live_session(kChan) == 0);
  CHECK(r.center->viewers().find(kChan) == nullptr);
}

TEST_CASE("center: RTP timeout -> BYE and a fresh INVITE after the backoff") {
  PlayRig r;
  std::string err;
  REQUIRE(r.center->view(kDevId, kChan, "v1", err));
  r.answer(r.last("INVITE "), 200, device_answer("0200000001"));
  r.center->on_media_timeout(1, "no RTP for 10000 ms");
  CHECK(r.env.count("BYE ") == 1);
  CHECK(r.media.open_.empty());
  r.env.now += 1000;
  r.center->on_tick();
  CHECK(r.env.count("INVITE ") == 2);
  CHECK(r.media.open_.count(2) == 1);
}

TEST_CASE("center: a bad answer is ACKed then BYEd, the receiver closed") {
  PlayRig r;
  StartRequest q;
  q.device = kDevId;
  q.channel = kChan;
  std::string err;
  uint64_t id = r.center->start(q, err);
  REQUIRE(id);
  r.answer(r.last("INVITE "), 200, device_answer("12ab"));
  CHECK(r.env.count("ACK ") == 1);
  CHECK(r.env.count("BYE ") == 1);
  CHECK(r.media.open_.empty());
  REQUIRE(r.link.changes.size() == 1);
  CHECK(r.link.changes[0]["end_reason"].get<std::string>().find("y=12ab") != std::string::npos);
}

TEST_CASE("center: playback with MANSRTSP over INFO, timeouts ignored while paused, MediaStatus 121 ends it") {
  PlayRig r;
  StartRequest q;
  q.kind = Kind::Playback;
  q.device = kDevId;
  q.channel = kChan;
  q.start = 1697264152;
  q.end = 1697266715;
  q.transport = Transport::TcpPassive;
  std::string err;
  uint64_t id = r.center->start(q, err);
  REQUIRE_MESSAGE(id, err);
  std::string inv = r.last("INVITE ");
  auto sdp = lines(body_of(inv));
  CHECK(sdp[2] == "s=Playback");
  CHECK(sdp[3] == std::string("u=") + kChan + ":0");
  CHECK(sdp[5] == "t=1697264152 1697266715");
  CHECK(sdp.back() == "y=1200000001");
  std::string ans = device_answer("1200000001");
  ans.replace(ans.find("RTP/AVP"), 7, "TCP/RTP/AVP");
  ans += "a=setup:active\r\n";
  r.answer(inv, 200, ans);
  REQUIRE(r.center->find(id)->state == SessionState::Active);

  RtspRequest pause;
  pause.method = RtspMethod::Pause;
  REQUIRE_MESSAGE(r.center->control(id, pause, err), err);
  std::string info = r.last("INFO ");
  CHECK(info.find("Content-Type: Application/MANSRTSP") != std::string::npos);
  CHECK(body_of(info) == "PAUSE MANSRTSP/1.0\r\nCSeq: 1\r\nPauseTime: now\r\n");
  r.center->on_media_timeout(1, "no RTP");
  CHECK(r.center->find(id)->state == SessionState::Active);  // paused: not a timeout
  RtspRequest play;
  play.scale = 2;
  play.range_given = true;
  REQUIRE(r.center->control(id, play, err));
  CHECK(body_of(r.last("INFO ")) == "PLAY MANSRTSP/1.0\r\nCSeq: 2\r\nScale: 2.0\r\nRange: npt=now-\r\n");
  CHECK(r.center->find(id)->scale == 2.0);
  RtspRequest bad;
  bad.scale = 0;
  CHECK_FALSE(r.center->control(id, bad, err));
  CHECK(r.center->media_status(kDevId, kChan, "121", "") == 1);
  CHECK(r.env.count("BYE ") == 1);
  CHECK(r.center->find(id) == nullptr);
  // Live sessions take no MANSRTSP.
  StartRequest l;
  l.device = kDevId;
  l.channel = kChan;
  uint64_t lid = r.center->start(l, err);
  r.answer(r.last("INVITE "), 200, device_answer("0200000002"));
  CHECK_FALSE(r.center->control(lid, pause, err));
  CHECK(err.find("playback") != std::string::npos);
}

TEST_CASE("center: stop while inviting CANCELs; bad playback times refused") {
  PlayRig r;
  StartRequest q;
  q.device = kDevId;
  q.channel = kChan;
  std::string err;
  uint64_t id = r.center->start(q, err);
  r.answer(r.last("INVITE "), 100);
  CHECK(r.center->stop(id, "operator"));
  CHECK(r.env.count("CANCEL ") == 1);
  CHECK(r.media.open_.empty());
  r.answer(r.last("INVITE "), 487);
  CHECK(r.center->find(id) == nullptr);
  q.kind = Kind::Download;
  q.start = 10;
  q.end = 5;
  CHECK_FALSE(r.center->start(q, err));
  CHECK(err.find("start < end") != std::string::npos);
  r.media.fail = true;
  q.kind = Kind::Play;
  CHECK_FALSE(r.center->start(q, err));
  CHECK(err == "media: no port");
}

TEST_CASE("center: sessions and their dialogs survive a reload") {
  PlayRig r;
  std::string err;
  REQUIRE(r.center->view(kDevId, kChan, "v1", err));
  std::string inv = r.last("INVITE ");
  r.answer(inv, 200, device_answer("0200000001"));
  nlohmann::json saved = r.center->to_json();
  auto fresh = std::make_unique<PlayCenter>(r.stack, r.media, r.link, kPlat, "3402000000", r.conf);
  REQUIRE_MESSAGE(fresh->from_json(nlohmann::json::parse(saved.dump()), err), err);
  r.center = std::move(fresh);
  r.user.c = r.center.get();
  CHECK(r.center->to_json() == saved);
  uint64_t id = r.center->live_session(kChan);
  REQUIRE(id);
  CHECK(r.center->find(id)->state == SessionState::Active);
  StartRequest q;
  q.device = kDevId;
  q.channel = "34020000001310000002";
  REQUIRE(r.center->start(q, err));
  CHECK(lines(body_of(r.last("INVITE "))).back() == "y=0200000002");  // the restored y= was reserved
  r.in_dialog(inv, "BYE", 1);
  CHECK(r.link.ended == std::vector<std::string>{"v1: device ended the stream"});
  CHECK(r.center->live_session(kChan) == 0);
}

TEST_CASE("client offer (客户端主动发起): the document's SDP, TCP roles, refusals with reasons") {
  std::string err;
  // The document's message 1 (UDP, recvonly, PS/96 H264/98 MPEG4/97, y=0100000001).
  std::string doc =
      "v=0\r\no=xxx 0 0 IN IP4 192.168.0.107\r\ns=Play\r\nc=IN IP4 192.168.0.107\r\nt=0 0\r\n"
      "m=video 36000 RTP/AVP 96 98 97\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\na=rtpmap:98 H264/90000\r\n"
      "a=rtpmap:97 MPEG4/90000\r\ny=0100000001\r\n";
  auto o = parse_client_offer(doc, err);
  REQUIRE(o);
  CHECK(o->address == "192.168.0.107");
  CHECK(o->port == 36000);
  CHECK(o->transport == Transport::Udp);
  CHECK(o->payload_type == 96);
  CHECK(o->ssrc == "0100000001");
  std::string ans = build_client_answer(*o, "34020000002000000001", "10.0.0.1", 15060, o->ssrc);
  CHECK(ans.find("m=video 15060 RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\n") != std::string::npos);
  CHECK(ans.find("y=0100000001\r\n") != std::string::npos);
  // TCP: a client that connects (setup:active, or none) makes us listen; a passive one, connect.
  auto tcp = [&](const std::string& setup) {
    std::string s = "v=0\r\no=x 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                    "m=video 7000 TCP/RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n" + setup + "y=0100000002\r\n";
    return parse_client_offer(s, err);
  };
  CHECK(tcp("a=setup:active\r\n")->transport == Transport::TcpPassive);
  CHECK(tcp("")->transport == Transport::TcpPassive);
  CHECK(tcp("a=setup:passive\r\n")->transport == Transport::TcpActive);
  CHECK(build_client_answer(*tcp("a=setup:passive\r\n"), "p", "1.2.3.4", 9, "1").find("a=setup:active\r\n") != std::string::npos);
  // Refusals
  auto refused = [&](std::string from, std::string to, const char* why) {
    std::string s = doc;
    s.replace(s.find(from), from.size(), to);
    err.clear();
    CHECK_FALSE(parse_client_offer(s, err));
    CHECK_MESSAGE(err.find(why) != std::string::npos, err);
  };
  refused("a=recvonly", "a=sendrecv", "a=sendrecv");
  refused("a=recvonly", "a=sendonly", "a=sendonly");
  refused("a=rtpmap:96 PS/90000", "a=rtpmap:96 H264/90000", "no PS payload type");
  refused("m=video 36000", "m=video 0", "port 0");
  refused("m=video", "m=audio", "no m=video");
  refused("y=0100000001", "y=01000x0001", "not a decimal SSRC");
  refused("c=IN IP4 192.168.0.107\r\n", "", "no c= address");
  CHECK_FALSE(parse_client_offer("not sdp", err));
}
