// PsOut: a channel's bus frames re-muxed to MPEG-PS over RTP, sent to a SIP client that INVITEd
// the platform for the channel (客户端主动发起, as a GB decoder expects it): the receive side
// (src/media/) publishes <stream>/video and <stream>/audio, PsOut subscribes to both, starts at
// the next video keyframe (audio waits for it too), muxes each frame into one pack (PsMuxer, a
// system header + PSM before every keyframe) and sends it as RTP (PsRtpPacketizer, the client's
// PT and the answer's y= SSRC): UDP datagrams from a port of the media range, or RFC 4571 over
// TCP (we listen: the client connects; or we connect to the client).
//
// Threads: a sender lives on the media loop of its channel's live stream (MediaIngest::live_loop,
// the same loop across the stream's restarts), as the receive side does: its UDP socket / TCP
// listener / connection are on that loop, and start() posts to the loop, which subscribes
// loop-locally (bus_subscribe_local) to the stream's video and audio: frames come straight from
// the receiver's bus_publish_id on that thread, are muxed and sent there (no hand-off to the
// control loop). The control loop opens, starts, closes and reads stats; mu_ orders the two, and
// no host call that waits for a media loop (udp_close) is made under it. Without media loops (or
// a core without loop-local subscriptions) the sender subscribes on the control loop as before.
// Nothing is allocated per packet: the muxer's and packetizer's storage grows to the largest
// frame, then is reused.
// Cookies carry kCookieTag in their top 16 bits: the plugin's hooks route them here first.
#pragma once

#include "play/session.hpp"

#include <junction/media/ps_rtp.hpp>
#include <junction/plugin.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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

  // Binds our side on media loop `loop` (0: the control loop) (UDP: a port pair of the range; TCP
  // passive: a listener of the range; TCP active: nothing yet). Nothing is sent before start().
  Opened open(Transport t, uint32_t loop = 0);
  // The client's ACK came: subscribe to `stream`/video and /audio, send to peer (UDP) / connect
  // (TCP active; TCP passive: to whoever connected). False + error on a bad address or a failed
  // subscription / connect.
  bool start(uint32_t id, const std::string& stream, const std::string& peer_ip, uint16_t peer_port, uint8_t pt,
             uint32_t ssrc, std::string& error);
  void close(uint32_t id);
  nlohmann::json stats(uint32_t id) const;

  // Hooks (true: it was ours). on_bus, on_tcp, on_udp and on_post run on the sender's loop.
  bool on_bus(jn_handle sub, uint64_t cookie, jn_buf* buf);
  bool on_post(uint64_t cookie);
  bool on_tcp(const jn_tcp_event& ev);
  bool on_udp(jn_handle sock, uint64_t cookie);  // something a client sent to our port (RTCP): ignored

  // Hot reload: handles, addresses, SSRC and the RTP sequence (the muxer restarts at a keyframe).
  nlohmann::json to_json() const;
  void from_json(const nlohmann::json& j);

 private:
  struct Out {
    Transport transport = Transport::Udp;
    uint32_t loop = 0;                      // 0: the control loop
    jn_handle sock = 0, rtcp = 0, listener = 0, conn = 0;
    jn_handle sub_video = 0, sub_audio = 0;
    bool local = false;                     // the subs are loop-local (made on `loop`)
    uint32_t video_id = 0, audio_id = 0;    // interned stream ids (loop-local subscriptions)
    uint16_t port = 0;
    jn_addr to{};
    bool have_to = false, started = false, keyed = false;
    uint8_t pt = 96;
    uint32_t ssrc = 0, video_codec = 0;
    uint16_t seq = 0;
    std::string stream;
    std::unique_ptr<junction::media::PsRtpSender> tx;
    uint64_t frames = 0, packets = 0, bytes = 0, send_errors = 0, skipped = 0, mux_errors = 0;
    // Where frames were sent from: the thread of `loop` (learnt where the loop-local subscription
    // was made) or another one (the control loop's hand-off). The proof that sending is on the loop.
    std::thread::id loop_thread{};
    uint64_t frames_on_loop = 0, frames_off_loop = 0;
  };
  struct Unsub {  // loop-local subscriptions of closed senders, ended on their loop
    uint32_t loop = 0;
    jn_handle sub = 0;
  };
  struct Sink;
  uint64_t cookie(uint32_t id, uint32_t kind) const { return kCookieTag | (uint64_t(kind) << 32) | id; }
  Out* find(uint32_t id);
  void send_frame(Out& o, const junction::media::FrameView& f);
  void subscribe_local(uint32_t id);
  bool subscribe_control(uint32_t id, Out& o, std::string& error);

  junction::sdk::Host host_;
  std::string range_, bind_ip_;
  mutable std::mutex mu_;  // outs_, unsubs_, next_id_: the control loop vs the senders' media loops
  std::map<uint32_t, Out> outs_;
  std::vector<Unsub> unsubs_;
  uint32_t next_id_ = 1;
};

}  // namespace gb::play
