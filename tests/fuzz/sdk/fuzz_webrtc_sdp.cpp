// sdk/webrtc sdp.hpp on arbitrary text as a browser's offer and as a browser's answer to our
// offer. Invariants: nothing crashes; an offer that parses is answered with SDP that parses again
// (build_answer re-parses its own output: an "internal" error aborts); the ABI mapping of a parsed
// description names every codec it lists.
#include <junction/webrtc/sdp.hpp>

#include <cstdlib>

using namespace junction::webrtc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  LocalTransport t;
  t.ice_ufrag = "fuzz";
  t.ice_pwd = "fuzzpassword0123456789ab";
  t.fingerprint = "sha-256 00:11";
  t.port = 40000;
  t.candidates = {"1 1 udp 2130706431 127.0.0.1 40000 typ host"};
  Description d;
  ParseError err;
  if (parse_description(in, d, err)) {
    AnswerOptions o;
    o.audio.codecs = {{"PCMA"}, {"OPUS"}};
    o.audio.can_send = true;
    o.video.codecs = {{"H264"}, {"VP8"}};
    o.video.can_send = true;
    o.data_channels = true;
    o.transports = {t, t};
    o.session_id = "1";
    o.ssrc_seed = 1;
    AnswerResult r;
    if (!build_answer(d, o, r, err) && err.reason.rfind("internal", 0) == 0) std::abort();
    MediaStreams ms;
    to_media_streams(d, ms);
    for (uint32_t i = 0; i < ms.desc()->count; ++i) {
      const jn_media_stream* s = ms.desc()->streams[i];
      for (uint32_t k = 0; k < s->codec_count; ++k)
        if (s->codecs[k].name.len == 0) std::abort();  // codecs without an rtpmap name are dropped
    }
  }
  // The same text as the answer to an offer of ours.
  OfferOptions oo;
  oo.lines.push_back({JN_MEDIA_AUDIO, {{"PCMA"}, {"OPUS"}}, JN_DIR_SENDRECV, ""});
  oo.lines.push_back({JN_MEDIA_VIDEO, {{"H264"}}, JN_DIR_SENDONLY, ""});
  oo.data_channels = true;
  oo.transport = t;
  oo.session_id = "1";
  oo.ssrc_seed = 1;
  OfferResult off;
  if (!build_offer(oo, off, err)) std::abort();
  AnswerResult r;
  apply_answer(off.local, in, r, err);
  return 0;
}
