// rest-sip-capture's pure parts: REST validation (400 naming the field), the 409 rules, the
// document's SDP (sendrecv vs recvonly), the answer reader, RTCP and RFC 4733 packets.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "media.hpp"
#include "model.hpp"

#include <junction/proto/rtp.hpp>

using namespace capture;
using nlohmann::json;

namespace {
json good() {
  return json::parse(R"({"callId":"123456711","callee":"10000","toStream":"stream1","rtmpUrl":"rtmp://localhost:1935/live/",
    "rtmpStream":"rtmp_stream1","hasAudio":true,"hasVideo":true,"sipLogin":"10009","sipAuthenticationName":"10009",
    "sipPassword":"1234","sipDomain":"127.0.0.1","sipOutboundProxy":"127.0.0.1","sipPort":"5060","appKey":"defaultApp",
    "sipRegisterRequired":false})");
}
}  // namespace

TEST_CASE("the document's /call/startup sample is accepted as written") {
  BadRequest e;
  auto r = parse_startup(good(), e);
  REQUIRE(r);
  CHECK(r->call_id == "123456711");
  CHECK(r->sip_port == 5060);  // a string in the document
  REQUIRE(r->rtmp);
  CHECK(r->rtmp->url == "rtmp://localhost:1935/live");
  CHECK(r->rtmp->host == "localhost");
  CHECK(r->rtmp->port == 1935);
  CHECK(r->rtmp->key() == "rtmp://localhost:1935/live/rtmp_stream1");
}

TEST_CASE("bad bodies name their field") {
  auto refused = [](json b, const char* field) {
    BadRequest e;
    CHECK_FALSE(parse_startup(b, e));
    CHECK(e.field == field);
    CHECK_FALSE(e.reason.empty());
  };
  json b = good();
  b["hasAudio"] = "true";
  refused(b, "hasAudio");
  b = good();
  b["hasVideo"] = 1;
  refused(b, "hasVideo");
  b = good();
  b["sipRegisterRequired"] = "false";
  refused(b, "sipRegisterRequired");
  b = good();
  b["sipLogin"] = "Ralf C12441@host.com";  // the document's known issue 3
  refused(b, "sipLogin");
  b = good();
  b["sipAuthenticationName"] = "<Ralf_C>";
  refused(b, "sipAuthenticationName");
  b = good();
  b.erase("callee");
  refused(b, "callee");
  b = good();
  b["rtmpUrl"] = "http://x/live";
  refused(b, "rtmpUrl");
  b = good();
  b["rtmpStream"] = "";
  refused(b, "rtmpStream");
  b = good();
  b["sipPort"] = "50x";
  refused(b, "sipPort");
  b = good();
  b["callId"] = "a b";
  refused(b, "callId");
  b = good();
  b.erase("sipDomain");
  refused(b, "sipDomain");
  b = good();
  b["sipTransport"] = "SCTP";
  refused(b, "sipTransport");
  b = good();
  b["sipTransport"] = true;
  refused(b, "sipTransport");
  BadRequest e;
  CHECK_FALSE(parse_startup(json::array(), e));
  // the proper forms of the document's sample pass
  b = good();
  b["sipLogin"] = "Ralf_C12441";
  b["sipAuthenticationName"] = "Ralf_C";
  b["visibleName"] = "Ralf C";
  CHECK(parse_startup(b, e));
}

TEST_CASE("sipTransport: UDP / TCP / TLS in any case, absent = the conf's") {
  BadRequest e;
  json b = good();
  auto r = parse_startup(b, e);
  REQUIRE(r);
  CHECK(r->transport == SipTransport::Default);
  for (auto [text, want] : {std::pair{"udp", SipTransport::Udp}, {"TCP", SipTransport::Tcp}, {"Tls", SipTransport::Tls}}) {
    b["sipTransport"] = text;
    r = parse_startup(b, e);
    REQUIRE(r);
    CHECK(r->transport == want);
  }
}

TEST_CASE("callee as user@host gives the domain (a long host: no small-string luck)") {
  BadRequest e;
  json b = good();
  b.erase("sipDomain");
  b["callee"] = "sip:10000@a-rather-long-sip-domain-name.example.com";
  auto r = parse_startup(b, e);
  REQUIRE(r);
  CHECK(r->callee == "10000");
  CHECK(r->sip_domain == "a-rather-long-sip-domain-name.example.com");
}

TEST_CASE("409: a duplicate callId and an rtmpUrl + rtmpStream in use") {
  Registry reg;
  BadRequest e;
  auto r = parse_startup(good(), e);
  REQUIRE(r);
  CHECK(reg.conflict(*r).empty());
  Call c;
  c.id = 1;
  c.call_id = r->call_id;
  c.req = *r;
  c.status = Status::Established;
  c.pushes.push_back(PushInfo{7, *r->rtmp, RtmpStatus::Active, {}, true});
  reg.add(c);
  CHECK(reg.conflict(*r).find("callId") != std::string::npos);
  auto r2 = *r;
  r2.call_id = "other";
  CHECK(reg.conflict(r2).find("in use by call 123456711") != std::string::npos);
  r2.rtmp->stream = "rtmp_stream2";
  CHECK(reg.conflict(r2).empty());
  // an ended call gives way
  reg.find("123456711")->status = Status::Finish;
  CHECK(reg.conflict(*r).empty());
  // find by criteria
  FindRequest f;
  f.rtmp_url = "rtmp://localhost:1935/live";
  CHECK(reg.find(f).size() == 1);
  f.status = "ESTABLISHED";
  CHECK(reg.find(f).empty());
}

TEST_CASE("the offer says sendrecv or recvonly per stream as the document shows") {
  OfferParams p;
  p.ip = "127.0.0.1";
  p.audio_port = 20000;
  p.video_port = 20002;
  p.call_id = "X";
  p.send_audio = true;
  p.send_video = false;
  std::string s = build_offer(p);
  CHECK(s.find("m=audio 20000 RTP/AVP 8 0 101\r\n") != std::string::npos);
  CHECK(s.find("m=video 20002 RTP/AVP 112 113\r\n") != std::string::npos);
  CHECK(s.find("a=fmtp:112 packetization-mode=1; profile-level-id=420020") != std::string::npos);
  CHECK(s.find("a=fmtp:113 packetization-mode=0; profile-level-id=420020") != std::string::npos);
  size_t v = s.find("m=video");
  CHECK(s.find("a=sendrecv") < v);
  CHECK(s.find("a=recvonly") > v);
  CHECK(s.find("a=rtcp:20001 IN IP4 127.0.0.1") != std::string::npos);
  std::string why;
  CHECK(parse_answer(s, why));  // our own offer reads back
}

TEST_CASE("the answer gives each stream its codec and address") {
  std::string sdp =
      "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
      "m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"
      "m=video 6002 RTP/AVP 113\r\na=rtpmap:113 H264/90000\r\na=fmtp:113 packetization-mode=0\r\na=rtcp:7000\r\n";
  std::string why;
  auto a = parse_answer(sdp, why);
  REQUIRE(a);
  CHECK(a->audio.encoding == "PCMU");
  CHECK(a->audio.pt == 0);
  CHECK(a->audio.dtmf_pt == 101);
  CHECK(a->audio.direction == "sendonly");
  CHECK(a->video.pt == 113);
  CHECK(a->video.rtcp_port == 7000);
  CHECK(a->video.ip == "127.0.0.2");
  CHECK_FALSE(parse_answer("v=0\r\nm=audio 6000 RTP/AVP 18\r\nc=IN IP4 1.2.3.4\r\n", why));
}

TEST_CASE("DTMF, PLI/FIR and RR packets") {
  uint8_t b[128];
  size_t n = build_dtmf(b, sizeof b, 101, true, 7, 1000, 0x11223344, static_cast<uint8_t>(dtmf_event('#')), true, 1280);
  REQUIRE(n == 16);
  CHECK(b[1] == (0x80 | 101));
  CHECK(b[12] == 11);
  CHECK((b[13] & 0x80) != 0);
  CHECK(junction::proto::rtp::rd16(b + 14) == 1280);
  CHECK(dtmf_event('D') == 15);
  CHECK(dtmf_event('x') == -1);
  n = build_pli_fir(b, sizeof b, 1, 2, 3);
  junction::proto::rtp::RtcpInfo info;
  REQUIRE(junction::proto::rtp::parse_rtcp(b, n, info) == junction::proto::rtp::Error::None);
  CHECK(info.packets == 2);
  CHECK(info.first_type == junction::proto::rtp::RTCP_PSFB);
  junction::proto::rtp::ReceiverStats st;
  st.set_clock_rate(8000);
  for (uint16_t s = 0; s < 10; ++s)
    if (s != 4) st.update(s, 99, s * 160u, s * 20000000ull);
  uint64_t pe = 0, pr = 0;
  n = build_rr(b, sizeof b, 5, st, pe, pr, 0, 0, "rtp/audio/x");
  REQUIRE(junction::proto::rtp::parse_rtcp(b, n, info) == junction::proto::rtp::Error::None);
  CHECK(info.first_type == junction::proto::rtp::RTCP_RR);
  CHECK(info.packets == 2);
  CHECK(junction::proto::rtp::rd32(b + 8) == 99);
  CHECK(b[12] > 0);  // a tenth lost
}

TEST_CASE("dtmf and push bodies") {
  BadRequest e;
  auto d = parse_dtmf(json::parse(R"({"callId":"1","dtmf":"9#","type":"RFC2833"})"), e);
  REQUIRE(d);
  CHECK_FALSE(d->info);
  CHECK_FALSE(parse_dtmf(json::parse(R"({"callId":"1","dtmf":"9x"})"), e));
  CHECK(e.field == "dtmf");
  CHECK_FALSE(parse_dtmf(json::parse(R"({"callId":"1","dtmf":"9","type":"SMS"})"), e));
  CHECK(e.field == "type");
  auto p = parse_push(json::parse(R"({"callId":"1","rtmpUrl":"rtmp://127.0.0.1:1936/live","rtmpStream":"s2"})"), e);
  REQUIRE(p);
  CHECK(p->rtmp.port == 1936);
  CHECK_FALSE(parse_push(json::parse(R"({"rtmpUrl":"rtmp://127.0.0.1/live","rtmpStream":"s2"})"), e));
  CHECK(e.field == "callId");
}
