// PsOut: a channel's bus frames re-muxed to MPEG-PS over RTP, sent to a SIP client that INVITEd
// the platform for the channel (客户端主动发起, as a GB decoder expects it): the receive side
// (src/media/) publishes <stream>/video and <stream>/audio, PsOut subscribes to both, starts at
// the next video keyframe (audio waits for it too), muxes each frame into one pack (PsMuxer, a
// system header + PSM before every keyframe) and sends it as RTP (PsRtpPacketizer, the client's
// PT and the answer's y= SSRC): UDP datagrams from a port of the media range, or RFC 4571 over
// TCP (we listen: the client connects; or we connect to the client).
//
// Threads: everything here runs on the control loop (bus subscriptions are the control loop's;
// a media-loop publisher hands frames over by reference). Nothing is allocated per packet: the
// muxer's and packetizer's storage grows to the largest frame, then is reused.
// Cookies carry kCookieTag in their top 16 bits: the plugin's hooks route them here first.
#pragma once

#include "play/session.hpp"

#include <junction/media/ps_rtp.hpp>
#include <junction/plugin.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace gb::play {

class PsOut {
 public:
  static constexpr uint64_t kCookieTag = 0x504Full << 48;  // "PO"
  static constexpr uint64_t kCookieMask = 0xFFFFull << 48;
  static bool owns(uint64_t cookie) { return (cookie & kCookieMask) == kCookieTag; }

  struct Opened {
    uint32_t id = 0;  // 0: failed (error)
    uint16_t port = 0;
    std::string ip, error;
  };

  PsOut(junction::sdk::Host host, std::string port_range, std::string bind_ip);
  ~PsOut() = default;  // closes nothing: a hot reload keeps the sockets (close() each at stop)
  void configure(std::string port_range, std::string bind_ip) {
    range_ = std::move(port_range);
    bind_ip_ = std::move(bind_ip);
  }

  // Binds our side (UDP: a port pair of the range; TCP passive: a listener of the range; TCP
  // active: nothing yet). Nothing is sent before start().
  Opened open(Transport t);
  // The client's ACK came: subscribe to `stream`/video and /audio, send to peer (UDP) / connect
  // (TCP active; TCP passive: to whoever connected). False + error on a bad address or a failed
  // subscription / connect.
  bool start(uint32_t id, const std::string& stream, const std::string& peer_ip, uint16_t peer_port, uint8_t pt,
             uint32_t ssrc, std::string& error);
  void close(uint32_t id);
  nlohmann::json stats(uint32_t id) const;

  // Hooks (true: it was ours).
  bool on_bus(jn_handle sub, uint64_t cookie, jn_buf* buf);
  bool on_tcp(const jn_tcp_event& ev);
  bool on_udp(jn_handle sock, uint64_t cookie);  // something a client sent to our port (RTCP): ignored

  // Hot reload: handles, addresses, SSRC and the RTP sequence (the muxer restarts at a keyframe).
  nlohmann::json to_json() const;
  void from_json(const nlohmann::json& j);

 private:
  struct Out {
    Transport transport = Transport::Udp;
    jn_handle sock = 0, rtcp = 0, listener = 0, conn = 0;
    jn_handle sub_video = 0, sub_audio = 0;
    uint16_t port = 0;
    jn_addr to{};
    bool have_to = false, started = false, keyed = false;
    uint8_t pt = 96;
    uint32_t ssrc = 0, video_codec = 0;
    uint16_t seq = 0;
    std::string stream;
    std::unique_ptr<junction::media::PsRtpSender> tx;
    uint64_t frames = 0, packets = 0, bytes = 0, send_errors = 0, skipped = 0, mux_errors = 0;
  };
  struct Sink;
  uint64_t cookie(uint32_t id, uint32_t kind) const { return kCookieTag | (uint64_t(kind) << 32) | id; }
  Out* find(uint32_t id);
  void send_frame(Out& o, const junction::media::FrameView& f);

  junction::sdk::Host host_;
  std::string range_, bind_ip_;
  std::map<uint32_t, Out> outs_;
  uint32_t next_id_ = 1;
};

}  // namespace gb::play
