// Fuzz: SDP parse, the relay's rewrite, serialise, re-parse; crypto and rtcp attribute parsers.
#include "sdp_rewrite.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace sdp = junction::proto::sdp;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = sdp::parse(in);
  (void)sdp::parse_crypto(in);
  (void)sdp::parse_rtcp_attr(in);
  (void)sdp::base64_decode(in);
  if (!r) return 0;
  sdp::Session s = *r.session;
  std::vector<rtp_relay::MediaPlan> plans(s.media.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    plans[i].relay = (i % 2) == 0;
    plans[i].port = static_cast<uint16_t>(30000 + 2 * i);
    plans[i].mux = (i % 3) == 0;
    plans[i].is_answer = (i % 4) == 0;
    plans[i].strip_crypto = true;
    if (i == 0) plans[i].crypto = "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA";
    (void)rtp_relay::clock_rate_of(s.media[i]);
    for (auto v : s.media[i].attrs("crypto")) (void)sdp::parse_crypto(v);
    for (auto v : s.media[i].attrs("rtcp")) (void)sdp::parse_rtcp_attr(v);
    (void)s.media_connection(s.media[i]);
  }
  rtp_relay::RewriteOptions o;
  o.addr = sdp::Connection{"IN", "IP4", "127.0.0.1"};
  o.replace_origin = true;
  rtp_relay::rewrite_sdp(s, o, plans);
  std::string out = sdp::serialize(s);
  auto again = sdp::parse(out);
  if (!again || again.session->media.size() != s.media.size()) abort();
  if (sdp::serialize(*again.session) != out) abort();
  return 0;
}
