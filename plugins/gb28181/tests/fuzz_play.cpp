// Fuzz target of the media-session parsers (what devices and SIP clients send): a device's SDP
// answer (against each offered transport), a device's audio offer, MANSRTSP requests and
// answers, a SIP client's offer for a channel (first byte 0xC0). The first byte picks the parser;
// every input must be refused or accepted, never crash.
#include "play/mansrtsp.hpp"
#include "play/sdp.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string err;
  if (data[0] == 0xC0) {  // a client's INVITE offer (客户端主动发起) and our answer to it
    if (auto o = gb::play::parse_client_offer(in, err)) (void)gb::play::build_client_answer(*o, "p", "127.0.0.1", 1, o->ssrc);
    return 0;
  }
  switch (data[0] % 4) {
    case 0:
      for (auto t : {gb::play::Transport::Udp, gb::play::Transport::TcpPassive, gb::play::Transport::TcpActive}) {
        gb::play::Offer o;
        o.transport = t;
        if (auto a = gb::play::parse_answer(in, o, err)) (void)a->payloads.size();
      }
      break;
    case 1:
      if (auto a = gb::play::parse_audio_offer(in, err)) (void)gb::play::build_audio_answer(*a, "p", "127.0.0.1", 1);
      break;
    case 2:
      if (auto r = gb::play::parse_rtsp_request(in, err)) (void)gb::play::build_rtsp(*r, err);
      break;
    default:
      (void)gb::play::parse_rtsp_response(in, err);
      break;
  }
  return 0;
}
