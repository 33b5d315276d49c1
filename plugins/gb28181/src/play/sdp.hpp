// SDP offer/answer of GB/T 28181 media sessions (the document's 实时预览 / 回放 / 下载 / 语音广播
// samples): the platform's offer to a device (recvonly, PS/96 MPEG4/97 H264/98, y=, u=, t=,
// a=setup / a=connection for TCP, a=downloadspeed), the device's answer (its address, port,
// transport, y= to adopt, a=filesize, f=), the device's audio offer for broadcast and our answer.
// Built on junction::proto::sdp; errors are strings for the log and the admin reply.
#pragma once

#include "play/session.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace gb::play {

struct Offer {
  Kind kind = Kind::Play;
  Transport transport = Transport::Udp;
  std::string origin_user;   // o= username: the platform's ID
  std::string address;       // c= / o= address: where the device sends (or connects) to
  uint16_t port = 0;         // our receive port (TCP active: a placeholder port, the device listens)
  std::string ssrc;          // y=
  std::string channel;       // u=<channel>:0 for Playback / Download
  uint64_t start = 0, end = 0;  // t= (Playback / Download: unix seconds; live: 0 0)
  uint32_t download_speed = 0;  // a=downloadspeed (Download; 0 = not sent, the device's 1x)
};

// The offer's SDP text (CRLF lines), in the document's line order.
std::string build_offer(const Offer& o);

struct Answer {
  std::string address;        // the device's media address (media c= or session c=)
  uint16_t port = 0;          // the device's port (UDP: it sends from; TCP active: it listens on)
  Transport transport = Transport::Udp;  // from m= proto and the device's a=setup (our side of it)
  std::string ssrc;           // y= as written ("" = none)
  std::optional<uint32_t> ssrc_value;  // y= as the RTP SSRC (0 = the device does not say: accept any)
  std::map<int, std::string> payloads;  // a=rtpmap PT -> encoding name ("PS", "H264", "PCMA", ...)
  std::optional<uint64_t> filesize;     // a=filesize (download progress)
  std::string format;          // f= as written
  std::string media;           // "video" / "audio"
};

// Parses a device's answer to `offer`. A missing c=, no m=, port 0, a transport that is not the
// one offered, or a y= that is not digits is refused with its reason in `error`.
std::optional<Answer> parse_answer(std::string_view sdp, const Offer& offer, std::string& error);

// A device's INVITE for audio (语音广播: it asks for the platform's audio after the Broadcast
// Response): where to send, how, and what it accepts.
// What a peer's offer (a device's audio INVITE, a client's INVITE) says of where we send.
struct PeerMedia {
  std::string address;        // where we send (UDP) / connect to (TCP, the peer passive)
  uint16_t port = 0;
  Transport transport = Transport::Udp;  // our side: TcpActive when the peer says a=setup:passive,
                                         // else TcpPassive (it connects)
  std::string ssrc;           // y= as written ("" = none); we send with this SSRC
  std::string session_name;   // s=
};

struct AudioOffer : PeerMedia {
  bool ps = false;            // the device wants PS-wrapped audio (PT 96 PS) rather than plain G.711A
  int payload_type = 8;       // the PT we will send with
};
std::optional<AudioOffer> parse_audio_offer(std::string_view sdp, std::string& error);

// Our answer to the device's audio offer: sendonly, from `address`:`port`.
std::string build_audio_answer(const AudioOffer& o, const std::string& origin_user, const std::string& address,
                               uint16_t port);

// A SIP client's INVITE for a channel (实时预览, 客户端主动发起): it receives the channel as PS
// over RTP. recvonly (or no direction), m=video with a PS payload type, its c= / m= address.
struct ClientOffer : PeerMedia {  // s= "Play" (anything else is refused by the caller); no y=: we choose one
  int payload_type = 96;      // the client's PS payload type
};
// Refused with the reason: not SDP, no m=video, no c=, port 0 over UDP, no PS payload type, a
// direction other than recvonly (a client that wants to send), a y= that is not decimal.
std::optional<ClientOffer> parse_client_offer(std::string_view sdp, std::string& error);

// Our answer: sendonly PS from `address`:`port` with SSRC `ssrc` (the document's sample 9).
std::string build_client_answer(const ClientOffer& o, const std::string& origin_user, const std::string& address,
                                uint16_t port, const std::string& ssrc);

}  // namespace gb::play
