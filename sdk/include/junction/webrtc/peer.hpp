// PeerConnection: what a plugin holds per browser call leg. It composes, from the negotiated SDP
// (sdp.hpp's AnswerResult, from build_answer or apply_answer):
//   - one Transport (ICE-lite + DTLS + SRTP) for the BUNDLE group, or one per accepted m-line
//     when the browser did not bundle (max-compat): datagrams come in and go out per transport
//     index, each on its own UDP port the plugin bound;
//   - per audio/video m-line a FrameToRtp (bus -> browser) when we send and an RtpToFrames
//     (browser -> bus) when we receive, demultiplexed by the SSRC the SDP announced, else by
//     payload type (distinct in a BUNDLE group); telephone-event packets turned into DTMF digits;
//     the browser's video goes through a short reordering window and its gaps are NACKed;
//   - RTCP: the browser's PLI/FIR for our video -> PeerCallbacks::on_keyframe_request (the plugin
//     publishes media.keyframe_request for the bus stream it sends from) and the sender waits for
//     the next keyframe; NACK answered from a RetransmitBuffer (the original packet again, no
//     RTX); a keyframe needed from the browser (start, loss, or request_keyframe() from a bus
//     consumer) -> PLI, rate-limited (KeyframeLimiter); SR/RR once a second;
//   - optionally an SctpAssociation (data channels) on the transport of the application m-line,
//     started when that transport's DTLS is up.
//
// No sockets, no timers, no threads: the plugin feeds handle_datagram() from its UDP sockets on
// one media loop, sends what PeerCallbacks::send_datagram asks, calls tick() at next_timer_ms()
// and hands bus frames to send_frame(). Nothing is allocated per RTP packet; nothing thrown.
#pragma once

#include <junction/media/keyframe.hpp>
#include <junction/webrtc/bridge.hpp>
#include <junction/webrtc/rtcp.hpp>
#include <junction/webrtc/sctp.hpp>
#include <junction/webrtc/sdp.hpp>
#include <junction/webrtc/transport.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace junction::webrtc {

enum class PeerState : uint8_t { New, Connecting, Connected, Failed, Closed };
const char* peer_state_name(PeerState s);

struct PeerCallbacks {
  virtual ~PeerCallbacks() = default;
  // A datagram for the browser on transport `transport` (the plugin's UDP socket for it).
  virtual void send_datagram(size_t transport, const uint8_t* data, size_t len, const jn_addr& to) = 0;
  // A whole frame from the browser (publish it on the bus stream for its kind).
  virtual void on_frame(uint32_t kind, const media::FrameView& frame) = 0;
  // The browser needs a keyframe of the video we send (PLI/FIR, reason "loss"), or our sender
  // holds frames until one comes ("join"): ask the producer (media.keyframe_request).
  virtual void on_keyframe_request(uint32_t /*kind*/, const char* /*reason*/) {}
  // A DTMF digit from the browser's telephone-event packets ('0'-'9', '*', '#', 'A'-'D').
  virtual void on_dtmf(char /*digit*/, uint32_t /*duration_ms*/) {}
  virtual void on_state(PeerState /*s*/) {}
  // Data channels (when enabled).
  virtual void on_channel_open(uint16_t /*stream*/, const DcepOpen& /*info*/, bool /*remote*/) {}
  virtual void on_channel_message(uint16_t /*stream*/, const uint8_t* /*data*/, size_t /*len*/, bool /*binary*/) {}
  virtual void on_channel_closed(uint16_t /*stream*/) {}
};

struct PeerConfig {
  // Our ICE credentials per transport, as put in our SDP (one for BUNDLE; else per accepted
  // m-line in order, the last one repeated when fewer). AnswerResult::remotes has the peer's.
  std::vector<IceCredentials> local_ice;
  size_t mtu = 1200;                    // RTP packets we send (before SRTP)
  uint64_t consent_timeout_ms = 30000;
  uint64_t handshake_timeout_ms = 30000;
  SctpStack* sctp = nullptr;            // data channels: null = refused even if negotiated
  uint32_t max_message_size = 262144;
  size_t nack_slots = 256;              // RetransmitBuffer per video sender (0: no NACK answers)
  // Browser video with NACK negotiated: packets wait in a reordering window up to this long for
  // a gap to fill, and a gap is NACKed at once (0: no window, no NACKs: a loss costs a PLI).
  uint32_t nack_wait_ms = 80;
  uint64_t keyframe_interval_ms = 500;  // PLIs to the browser at most this often
  size_t max_video_frame = 1u << 20;    // largest browser video frame taken (its buffer is this big)
};

struct PeerStats {
  uint64_t rtp_in = 0;
  uint64_t rtp_unknown_pt = 0;   // no m-line with that payload type: dropped
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t pli_sent = 0;
  uint64_t pli_fir_in = 0;
  uint64_t nack_in = 0;          // sequence numbers asked
  uint64_t nack_sent = 0;        // sequence numbers we asked the browser for
  uint64_t retransmitted = 0;
  uint64_t dtmf = 0;
  uint64_t ice_restarts = 0;     // renegotiations that changed the browser's ICE credentials
};

class PeerConnection {
 public:
  // cert must outlive the PeerConnection. Check ok() (error() says why not).
  PeerConnection(const Certificate& cert, PeerCallbacks& cb, const AnswerResult& negotiated, const PeerConfig& cfg);
  ~PeerConnection();
  PeerConnection(const PeerConnection&) = delete;
  PeerConnection& operator=(const PeerConnection&) = delete;

  bool ok() const { return error_.empty(); }
  // A new offer/answer in the answered call (hold, verto.modify updateMedia, a re-offer) with the
  // same transports (same fingerprint per transport): the media lines are rebuilt (codecs,
  // directions, SSRCs), transports and data channels go on. An ICE restart (new remote ICE
  // credentials) is applied to the running transports (the DTLS association stays, as a
  // browser's does). False + err when the transports changed (another certificate, BUNDLE
  // on/off): build a new one.
  bool renegotiate(const AnswerResult& negotiated, std::string& err);
  const std::string& error() const { return error_; }
  size_t transport_count() const { return legs_.size(); }

  // One datagram the plugin received on transport `transport`'s socket. Decrypts in place.
  void handle_datagram(size_t transport, uint8_t* data, size_t len, const jn_addr& from, uint64_t now_ms);
  // A bus frame for the browser (audio or video m-line of that kind). False when not sent
  // (no such sender, held for a keyframe, refused): see stats.
  bool send_frame(uint32_t kind, const media::FrameView& frame, uint64_t now_ms);
  // A consumer of the browser's video wants a keyframe: PLI (rate-limited).
  void request_keyframe(uint64_t now_ms);
  // RTP / RTCP of the plugin's own making on transport `transport` (e.g. RFC 4733 events),
  // protected in place (capacity: kRtpTailroom after len). False when it is not connected.
  bool send_rtp(size_t transport, uint8_t* packet, size_t len, size_t capacity);
  bool send_rtcp(size_t transport, uint8_t* packet, size_t len, size_t capacity);

  // Data channels (SctpAssociation); -1 / false when there are none or it is not up yet.
  int open_channel(const DcepOpen& info);
  bool send_channel(uint16_t stream, const uint8_t* data, size_t len, bool binary);
  bool close_channel(uint16_t stream);
  SctpAssociation* sctp() { return sctp_.get(); }

  void tick(uint64_t now_ms);
  uint64_t next_timer_ms() const;
  void close();  // close_notify on every transport, SCTP aborted; no callbacks after

  PeerState state() const { return state_; }
  const PeerStats& stats() const { return stats_; }
  const Transport& transport(size_t i) const;
  // The sender / receiver of the m-line of that kind (null when there is none).
  const FrameToRtp* sender(uint32_t kind) const;
  const RtpToFrames* receiver(uint32_t kind) const;

 private:
  struct Leg;
  struct Line {
    uint32_t kind = 0;
    size_t leg = 0;
    std::unique_ptr<FrameToRtp> tx;
    std::unique_ptr<RtpToFrames> rx;
    uint8_t pt = 0;
    int te_pt = -1;
    uint32_t te_clock = 8000;
    uint32_t remote_ssrc = 0;
    uint32_t local_ssrc = 0;
    bool nack = false;
    media::KeyframeLimiter pli_limit;      // PLIs we send to the browser
    media::KeyframeLimiter upstream_limit; // keyframe requests we pass to the bus producer
    // RTCP receiver state for RR.
    bool have_in = false;
    uint16_t max_seq = 0;
    uint32_t cycles = 0;
    uint64_t packets_in = 0;
    uint32_t sr_ntp_mid = 0;  // middle 32 bits of the last SR's NTP time (LSR)
    uint64_t sr_at_ms = 0;
    // DTMF: the event whose end we reported (RFC 4733 ends are sent three times).
    uint32_t dtmf_ts = 0;
    bool dtmf_done = false;
    explicit Line(uint64_t kf_ns) : pli_limit(kf_ns), upstream_limit(kf_ns) {}
  };
  struct Out;  // RtpOutput of one line

  void on_rtp(size_t leg, uint8_t* p, size_t n);
  void on_rtcp(size_t leg, uint8_t* p, size_t n);
  void on_app_data(size_t leg, const uint8_t* p, size_t n);
  void on_transport_state(size_t leg, TransportState s);
  void send_pli(Line& l, uint64_t now_ms);
  void send_reports(uint64_t now_ms);
  void on_dtmf_packet(Line& l, const uint8_t* p, size_t n);
  void deliver(Line& l, const media::FrameView& f);
  void after_receive(Line& l);
  void update_state();
  std::string build_lines(const AnswerResult& neg);  // "" or why not

  const Certificate& cert_;
  PeerCallbacks& cb_;
  PeerConfig cfg_;
  std::string error_;
  std::vector<std::unique_ptr<Leg>> legs_;
  std::vector<std::string> remote_fp_;  // per transport, as negotiated
  std::vector<std::unique_ptr<Line>> lines_;
  std::vector<std::unique_ptr<Out>> outs_;
  std::unique_ptr<SctpAssociation> sctp_;
  struct SctpGlue;
  std::unique_ptr<SctpGlue> sctp_glue_;
  size_t sctp_leg_ = 0;
  uint16_t sctp_remote_port_ = 5000;
  uint32_t sctp_remote_max_ = 65536;
  PeerState state_ = PeerState::New;
  PeerStats stats_;
  uint64_t now_ms_ = 0;
  uint64_t next_report_ms_ = 0;
  uint32_t rtcp_ssrc_ = 0;  // sender SSRC of our RTCP when we send no media
  uint8_t rtcp_buf_[1500 + kRtpTailroom];
  uint8_t rtx_buf_[1500 + kRtpTailroom];
  bool closed_ = false;
  bool closing_ = false;
};

}  // namespace junction::webrtc
