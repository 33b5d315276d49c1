// sdk/webrtc sdp.hpp: a Chromium offer parsed (BUNDLE, ICE, fingerprint, codecs, ssrc, data
// channel), answered as ICE-lite DTLS server with the caller's codec preference (G.711 for GB /
// intercom audio, H.264 packetization-mode 1 42e01f for GB video), refusals with reasons, the
// max-compat (no BUNDLE) case with one transport per m-line, our own offer + the browser's answer,
// and the jn_media_stream mapping both ways.
#include <junction/webrtc/sdp.hpp>

#include "webrtc_sdp_samples.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace junction::webrtc;
using namespace webrtc_samples;

namespace {
LocalTransport transport(uint16_t port) {
  LocalTransport t;
  t.ice_ufrag = "srvU";
  t.ice_pwd = "serverpassword0123456789";
  t.fingerprint = "sha-256 01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F:20";
  t.address = "127.0.0.1";
  t.port = port;
  t.candidates = {"1 1 udp 2130706431 127.0.0.1 " + std::to_string(port) + " typ host"};
  return t;
}
LocalMedia gb_audio() {
  LocalMedia m;
  m.codecs = {{"PCMA", 8000, 1}, {"PCMU", 8000, 1}, {"OPUS", 48000, 0}};
  m.can_send = true;
  m.can_receive = true;
  return m;
}
LocalMedia gb_video() {
  LocalMedia m;
  m.codecs = {{"H264", 90000, 0}, {"VP8", 90000, 0}};
  m.can_send = true;
  m.can_receive = false;
  return m;
}
bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }
}  // namespace

TEST_CASE("a Chromium offer parses: BUNDLE, ICE, fingerprint, codecs, ssrc, data channel") {
  Description d;
  ParseError err;
  REQUIRE(parse_description(kChromeOffer, d, err));
  CHECK(d.bundle_mids == std::vector<std::string>{"0", "1", "2"});
  REQUIRE(d.media.size() == 3);
  auto& a = d.media[0];
  CHECK(a.kind == JN_MEDIA_AUDIO);
  CHECK(a.mid == "0");
  CHECK(a.direction == JN_DIR_SENDRECV);
  CHECK(a.rtcp_mux);
  CHECK(a.ice_ufrag == "Kb3W");
  CHECK(a.ice_pwd == "9pU4gq8MBYqLq1Ua6Xeh5lxv");
  CHECK(a.fingerprint.rfind("sha-256 7B:8B", 0) == 0);
  CHECK(a.setup == JN_SETUP_ACTPASS);
  REQUIRE(a.candidates.size() == 1);
  CHECK(a.candidates[0].rfind("1467250027 1 udp", 0) == 0);
  REQUIRE(a.codecs.size() == 8);
  CHECK(a.codecs[0].name == "opus");
  CHECK(a.codecs[0].clock_rate == 48000);
  CHECK(a.codecs[0].channels == 2);
  CHECK(a.codecs[0].fmtp == "minptime=10;useinbandfec=1");
  CHECK(a.codec_by_pt(8)->name == "PCMA");
  CHECK(a.ssrcs == std::vector<uint32_t>{1001});
  CHECK(a.cname == "abcdEFGH");
  auto& v = d.media[1];
  CHECK(v.kind == JN_MEDIA_VIDEO);
  CHECK(v.codec_by_pt(96)->has_fb("nack pli"));
  CHECK(v.codec_by_pt(106)->fmtp.find("42e01f") != std::string::npos);
  CHECK(v.ssrcs.at(0) == 2002);  // FID group's first: the media SSRC, not the RTX one
  auto& dc = d.media[2];
  CHECK(dc.kind == JN_MEDIA_DATA);
  CHECK(dc.sctp_port == 5000);
  CHECK(dc.max_message_size == 262144);
}

TEST_CASE("answer to Chromium: GB preferences pick PCMA and H.264 mode 1 42e01f, video sendonly, one BUNDLE port") {
  Description d;
  ParseError err;
  REQUIRE(parse_description(kChromeOffer, d, err));
  AnswerOptions o;
  o.audio = gb_audio();
  o.video = gb_video();
  o.data_channels = true;
  o.transports = {transport(40000)};
  o.session_id = "42";
  o.ssrc_seed = 5000;
  AnswerResult r;
  REQUIRE_MESSAGE(build_answer(d, o, r, err), err.reason);
  CHECK(r.bundle);
  REQUIRE(r.lines.size() == 3);
  CHECK(r.lines[0].accepted);
  CHECK(r.lines[0].codec.name == "PCMA");
  CHECK(r.lines[0].codec.pt == 8);
  CHECK(r.lines[0].telephone_event_pt == 126);  // the 8000 Hz one, matching PCMA's clock
  CHECK(r.lines[0].direction == JN_DIR_SENDRECV);
  CHECK(r.lines[0].remote_ssrc == 1001);
  CHECK(r.lines[0].local_ssrc == 5000);
  CHECK(r.lines[1].accepted);
  CHECK(r.lines[1].codec.pt == 106);
  CHECK(r.lines[1].direction == JN_DIR_SENDONLY);
  CHECK(r.lines[1].codec.has_fb("nack pli"));
  CHECK(r.lines[1].codec.has_fb("ccm fir"));
  CHECK_FALSE(r.lines[1].codec.has_fb("goog-remb"));
  CHECK(r.lines[2].accepted);
  CHECK(r.lines[2].sctp_port == 5000);
  REQUIRE(r.remotes.size() == 1);
  CHECK(r.remotes[0].ice_ufrag == "Kb3W");
  CHECK(r.remotes[0].setup == JN_SETUP_ACTPASS);

  const std::string& s = r.sdp;
  CHECK(contains(s, "a=ice-lite\r\n"));
  CHECK(contains(s, "a=group:BUNDLE 0 1 2\r\n"));
  CHECK(contains(s, "m=audio 40000 UDP/TLS/RTP/SAVPF 8 126\r\n"));
  CHECK(contains(s, "m=video 40000 UDP/TLS/RTP/SAVPF 106\r\n"));
  CHECK(contains(s, "m=application 40000 UDP/DTLS/SCTP webrtc-datachannel\r\n"));
  CHECK(contains(s, "a=setup:passive\r\n"));
  CHECK_FALSE(contains(s, "a=setup:actpass"));
  CHECK(contains(s, "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"));
  CHECK(contains(s, "a=ice-ufrag:srvU\r\n"));
  CHECK(contains(s, "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"));
  CHECK(contains(s, "a=ssrc:5000 cname:junction\r\n"));
  CHECK(contains(s, "a=sctp-port:5000\r\n"));
  CHECK_FALSE(contains(s, "rtx"));
  // Our answer is itself a WebRTC description.
  REQUIRE(r.local.media.size() == 3);
  CHECK(r.local.media[1].direction == JN_DIR_SENDONLY);
  CHECK(r.local.ice_lite);
}

TEST_CASE("browser-to-browser preferences: Opus and VP8 sendrecv") {
  Description d;
  ParseError err;
  REQUIRE(parse_description(kChromeOffer, d, err));
  AnswerOptions o;
  o.audio.codecs = {{"OPUS", 48000, 2}, {"PCMA"}};
  o.audio.can_send = true;
  o.video.codecs = {{"VP8"}, {"H264"}};
  o.video.can_send = o.video.can_receive = true;
  o.transports = {transport(40000)};
  AnswerResult r;
  REQUIRE(build_answer(d, o, r, err));
  CHECK(r.lines[0].codec.name == "opus");
  CHECK(r.lines[0].telephone_event_pt == 110);
  CHECK(r.lines[1].codec.name == "VP8");
  CHECK(r.lines[1].direction == JN_DIR_SENDRECV);
  CHECK_FALSE(r.lines[2].accepted);  // data channels not enabled
  CHECK(r.lines[2].reason == "data channels not enabled");
  CHECK(contains(r.sdp, "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n"));
  CHECK(contains(r.sdp, "a=group:BUNDLE 0 1\r\n"));
  CHECK(contains(r.sdp, "a=rtpmap:111 opus/48000/2\r\n"));
}

TEST_CASE("refusals: no video to send -> port 0 with the reason; no common codec named") {
  Description d;
  ParseError err;
  REQUIRE(parse_description(kChromeOffer, d, err));
  AnswerOptions o;
  o.audio.codecs = {{"PCMA"}};
  o.audio.can_send = true;
  o.video.codecs = {{"H264"}};
  o.video.can_send = false;  // an intercom leg with audio only
  o.transports = {transport(40000)};
  AnswerResult r;
  REQUIRE(build_answer(d, o, r, err));
  CHECK_FALSE(r.lines[1].accepted);
  CHECK(r.lines[1].reason == "no video to send");
  CHECK(contains(r.sdp, "m=video 0 UDP/TLS/RTP/SAVPF"));
  CHECK(contains(r.sdp, "a=group:BUNDLE 0\r\n"));
  CHECK(contains(r.summary(), "video(1): refused (no video to send)"));

  o.video.can_send = true;
  o.video.codecs = {{"H265"}};
  REQUIRE(build_answer(d, o, r, err));
  CHECK_FALSE(r.lines[1].accepted);
  CHECK(contains(r.lines[1].reason, "no common codec (offer: VP8, H264, AV1; wanted: H265)"));

  // Nothing acceptable at all: false, every line says why.
  o.audio.codecs = {{"AAC"}};
  CHECK_FALSE(build_answer(d, o, r, err));
  CHECK(contains(err.reason, "nothing in the offer can be accepted"));
  CHECK_FALSE(r.lines[0].accepted);
}

TEST_CASE("H.264 fmtp acceptance: packetization-mode 1 and a constrained-baseline profile") {
  CHECK(h264_fmtp_acceptable("packetization-mode=1;profile-level-id=42e01f"));
  CHECK(h264_fmtp_acceptable("profile-level-id=42001f; packetization-mode=1"));
  CHECK(h264_fmtp_acceptable("packetization-mode=1;profile-level-id=4de01f"));  // constraint_set1
  CHECK(h264_fmtp_acceptable("packetization-mode=1"));
  CHECK_FALSE(h264_fmtp_acceptable("packetization-mode=0;profile-level-id=42e01f"));
  CHECK_FALSE(h264_fmtp_acceptable("profile-level-id=42e01f"));  // mode 0 by default
  CHECK_FALSE(h264_fmtp_acceptable("packetization-mode=1;profile-level-id=640c1f"));
  CHECK_FALSE(h264_fmtp_acceptable("packetization-mode=1;profile-level-id=zz"));
}

TEST_CASE("max-compat offer: no BUNDLE, session-level ICE, one transport per m-line, recvonly video answered sendonly") {
  Description d;
  ParseError err;
  REQUIRE(parse_description(kMaxCompatOffer, d, err));
  CHECK(d.bundle_mids.empty());
  CHECK(d.media[0].ice_ufrag == "abcd");  // from the session level
  CHECK(d.media[1].direction == JN_DIR_RECVONLY);
  CHECK(d.media[0].codecs.size() == 3);  // 0 and 8 static, 101 mapped
  AnswerOptions o;
  o.audio = gb_audio();
  o.video = gb_video();
  o.transports = {transport(41000), transport(41002)};
  AnswerResult r;
  REQUIRE(build_answer(d, o, r, err));
  CHECK_FALSE(r.bundle);
  CHECK(r.lines[0].transport == 0);
  CHECK(r.lines[1].transport == 1);
  CHECK(r.lines[1].direction == JN_DIR_SENDONLY);
  CHECK(r.lines[1].codec.name == "VP8");  // the only video codec offered
  CHECK(r.remotes.size() == 2);
  CHECK(contains(r.sdp, "m=audio 41000 UDP/TLS/RTP/SAVPF 8 101\r\n"));
  CHECK(contains(r.sdp, "m=video 41002 UDP/TLS/RTP/SAVPF 96\r\n"));
  CHECK(contains(r.sdp, "a=candidate:1 1 udp 2130706431 127.0.0.1 41002 typ host\r\n"));
  CHECK_FALSE(contains(r.sdp, "a=group:BUNDLE"));
}

TEST_CASE("a browser that wants to be the DTLS server (setup:passive) gets setup:active") {
  std::string offer = kMaxCompatOffer;
  for (size_t p; (p = offer.find("a=setup:actpass")) != std::string::npos;) offer.replace(p, 15, "a=setup:passive");
  Description d;
  ParseError err;
  REQUIRE(parse_description(offer, d, err));
  AnswerOptions o;
  o.audio = gb_audio();
  o.video = gb_video();
  o.transports = {transport(41000)};
  AnswerResult r;
  REQUIRE(build_answer(d, o, r, err));
  CHECK(r.remotes[0].setup == JN_SETUP_PASSIVE);
  CHECK(contains(r.sdp, "a=setup:active\r\n"));
  CHECK_FALSE(contains(r.sdp, "a=setup:passive"));
}

TEST_CASE("bad offers are refused with a reason") {
  Description d;
  ParseError err;
  CHECK_FALSE(parse_description("", d, err));
  CHECK_FALSE(parse_description("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n", d, err));
  CHECK(err.reason == "SDP has no m= line");
  std::string no_fp = kMaxCompatOffer;
  no_fp.erase(no_fp.find("a=fingerprint"), no_fp.find("\r\n", no_fp.find("a=fingerprint")) + 2 - no_fp.find("a=fingerprint"));
  CHECK_FALSE(parse_description(no_fp, d, err));
  CHECK(contains(err.reason, "no DTLS fingerprint"));
  std::string bad_pt = kMaxCompatOffer;
  bad_pt.replace(bad_pt.find("0 8 101"), 7, "0 8 999");
  CHECK_FALSE(parse_description(bad_pt, d, err));
  CHECK(contains(err.reason, "payload type '999'"));
  std::string bad_map = kMaxCompatOffer;
  bad_map.replace(bad_map.find("telephone-event/8000"), 20, "telephone-event/x");
  CHECK_FALSE(parse_description(bad_map, d, err));
  CHECK(contains(err.reason, "bad rtpmap"));
  // Plain RTP in a WebRTC call: refused per m-line.
  std::string avp = kMaxCompatOffer;
  avp.replace(avp.find("40000 UDP/TLS/RTP/SAVPF"), 23, "40000 RTP/AVP");
  REQUIRE(parse_description(avp, d, err));
  AnswerOptions o;
  o.audio = gb_audio();
  o.video = gb_video();
  o.transports = {transport(41000)};
  AnswerResult r;
  REQUIRE(build_answer(d, o, r, err));
  CHECK_FALSE(r.lines[0].accepted);
  CHECK(contains(r.lines[0].reason, "not DTLS-SRTP"));
  o.transports.clear();
  CHECK_FALSE(build_answer(d, o, r, err));
}

TEST_CASE("our own offer (actpass, BUNDLE) and the browser's answer to it") {
  OfferOptions o;
  o.lines.push_back({JN_MEDIA_AUDIO, {{"PCMA"}, {"OPUS"}}, JN_DIR_SENDRECV, ""});
  o.lines.push_back({JN_MEDIA_VIDEO, {{"H264"}, {"VP8"}}, JN_DIR_SENDONLY, ""});
  o.data_channels = true;
  o.transport = transport(42000);
  o.ssrc_seed = 7000;
  o.session_id = "9";
  OfferResult off;
  ParseError err;
  REQUIRE_MESSAGE(build_offer(o, off, err), err.reason);
  CHECK(contains(off.sdp, "a=setup:actpass\r\n"));
  CHECK(contains(off.sdp, "a=group:BUNDLE 0 1 2\r\n"));
  CHECK(contains(off.sdp, "m=audio 42000 UDP/TLS/RTP/SAVPF 8 96 101\r\n"));
  CHECK(contains(off.sdp, "a=rtpmap:96 opus/48000/2\r\n"));
  CHECK(contains(off.sdp, "m=video 42000 UDP/TLS/RTP/SAVPF 96 97\r\n"));
  CHECK(contains(off.sdp, "a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"));
  CHECK(contains(off.sdp, "a=rtcp-fb:96 nack pli\r\n"));
  CHECK(off.ssrcs == std::vector<uint32_t>{7000, 7001, 0});

  // The browser answers: audio PCMA, video H.264 recvonly, data channel.
  std::string ans =
      "v=0\r\no=- 5 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 8 101\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:brws\r\na=ice-pwd:browserpassword012345678\r\n"
      "a=fingerprint:sha-256 AA:BB\r\na=setup:active\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n"
      "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ssrc:3333 cname:x\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:brws\r\na=ice-pwd:browserpassword012345678\r\n"
      "a=fingerprint:sha-256 AA:BB\r\na=setup:active\r\na=mid:1\r\na=recvonly\r\na=rtcp-mux\r\n"
      "a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\na=rtcp-fb:96 nack pli\r\n"
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:brws\r\n"
      "a=ice-pwd:browserpassword012345678\r\na=fingerprint:sha-256 AA:BB\r\na=setup:active\r\na=mid:2\r\na=sctp-port:5000\r\n";
  AnswerResult r;
  REQUIRE_MESSAGE(apply_answer(off.local, ans, r, err), err.reason);
  CHECK(r.lines[0].codec.name == "PCMA");
  CHECK(r.lines[0].direction == JN_DIR_SENDRECV);
  CHECK(r.lines[0].remote_ssrc == 3333);
  CHECK(r.lines[0].local_ssrc == 7000);
  CHECK(r.lines[0].telephone_event_pt == 101);
  CHECK(r.lines[1].codec.name == "H264");
  CHECK(r.lines[1].direction == JN_DIR_SENDONLY);
  CHECK(r.lines[2].accepted);
  CHECK(r.remotes[0].setup == JN_SETUP_ACTIVE);

  // An answer that is not one (m-line count differs, setup actpass) is refused.
  std::string two = ans.substr(0, ans.find("m=application"));
  CHECK_FALSE(apply_answer(off.local, two, r, err));
  std::string actpass = ans;
  for (size_t p; (p = actpass.find("a=setup:active")) != std::string::npos;) actpass.replace(p, 14, "a=setup:actpass");
  CHECK_FALSE(apply_answer(off.local, actpass, r, err));
  CHECK(contains(err.reason, "active or passive"));
}

TEST_CASE("jn_media_stream mapping: the browser's offer out, a far leg's streams in") {
  Description d;
  ParseError err;
  REQUIRE(parse_description(kChromeOffer, d, err));
  MediaStreams ms;
  to_media_streams(d, ms);
  const jn_media_desc* desc = ms.desc();
  REQUIRE(desc->count == 3);
  const jn_media_stream& a = *desc->streams[0];
  CHECK(a.struct_size == sizeof(jn_media_stream));
  CHECK(a.kind == JN_MEDIA_AUDIO);
  CHECK(std::string(a.format.ptr, a.format.len) == "OPUS");
  CHECK(a.payload_type == 111);
  CHECK(a.codec_count == 8);
  CHECK(std::string(a.codecs[3].name.ptr, a.codecs[3].name.len) == "PCMU");
  CHECK(std::string(a.transport.ptr, a.transport.len) == "udp/tls/rtp/savpf");
  CHECK(std::string(a.mid.ptr, a.mid.len) == "0");
  CHECK(std::string(a.ice_ufrag.ptr, a.ice_ufrag.len) == "Kb3W");
  CHECK(a.candidate_count == 1);
  CHECK((a.flags & JN_MS_RTCP_MUX) != 0);
  CHECK(a.setup == JN_SETUP_ACTPASS);
  CHECK(a.ssrc == 1001);
  const jn_media_stream& v = *desc->streams[1];
  CHECK(std::string(v.codecs[2].fmtp.ptr, v.codecs[2].fmtp.len) ==
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f");
  CHECK(std::string(v.codecs[0].rtcp_fb.ptr, v.codecs[0].rtcp_fb.len) == "goog-remb;transport-cc;ccm fir;nack;nack pli");
  CHECK(desc->streams[2]->kind == JN_MEDIA_DATA);

  // A GB leg's answer (the shape plugins/gb28181 sends) becomes the preference list.
  jn_media_stream gbv{};
  gbv.struct_size = sizeof(gbv);
  gbv.kind = JN_MEDIA_VIDEO;
  gbv.format = {"H264", 4};
  gbv.clock_rate = 90000;
  gbv.direction = JN_DIR_SENDONLY;
  gbv.bus_stream = {"gb28181/x/video", 15};
  LocalMedia lm = LocalMedia::from_media_stream(gbv);
  REQUIRE(lm.codecs.size() == 1);
  CHECK(lm.codecs[0].name == "H264");
  CHECK(lm.can_send);
  CHECK_FALSE(lm.can_receive);
  CHECK(lm.bus_stream == "gb28181/x/video");

  // The answer's outcome for the core.
  AnswerOptions o;
  o.audio = gb_audio();
  o.video = lm;
  o.transports = {transport(40000)};
  AnswerResult r;
  REQUIRE(build_answer(d, o, r, err));
  std::string bus_a = "verto/1/audio";
  MediaStreams out;
  to_media_streams(r, out, &bus_a, nullptr);
  REQUIRE(out.desc()->count == 2);
  CHECK(std::string(out[0].format.ptr, out[0].format.len) == "PCMA");
  CHECK(std::string(out[0].bus_stream.ptr, out[0].bus_stream.len) == "verto/1/audio");
  CHECK(out[1].payload_type == 106);
  CHECK(out[1].direction == JN_DIR_SENDONLY);
  CHECK(out[1].codec_count == 1);
}
