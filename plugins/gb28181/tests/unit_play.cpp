// gb28181 media-session units: the SSRC rule, SDP offers checked line by line against the
// document's samples (实时预览 UDP / TCP被动 / TCP主动, 回放, 下载), the devices' answers from the
// document parsed (y= adopted, a=filesize, f=), bad answers refused with their reason, the
// broadcast audio offer/answer, MANSRTSP requests and answers, and the viewer refcount with its
// grace and restart backoff on a fake clock.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "play/mansrtsp.hpp"
#include "play/sdp.hpp"
#include "play/session.hpp"
#include "play/viewers.hpp"

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
