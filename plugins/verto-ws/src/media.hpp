// The media glue of one Verto call leg: a junction::webrtc::PeerConnection that terminates the
// browser's WebRTC (ICE-lite, DTLS-SRTP) on a UDP socket of the core, publishes the browser's
// frames on the bus ("verto/<leg>/audio|video") and sends the far leg's bus frames to the
// browser. Negotiation: build_answer() to a browser's offer (outbound calls, once the far leg's
// media is known), build_offer() + apply_answer() for calls the core offers to a browser.
//
// Threads, single owner, no lock: the control loop builds the leg (open, offer / answer / apply:
// its PeerConnection is made there), then hands it to its media loop (MediaConf::loop; 0 = the
// control loop) with adopt(). From then on only that loop touches the PeerConnection and what it
// drives (on_udp, drain, tick, hold, update, data channels, close_pc); owner_.check() in each of
// them asserts it (debug builds) and counts a violation (every build). The control loop keeps the
// fields it set before the hand-off (sockets, stream names, the far leg's media) and its own copy
// of what it needs afterwards (ctl_negotiated_, ctl_held). Bus frames and keyframe requests cross
// through a lock-free single-producer ring (push / want_keyframe); anything else the plugin sends
// to the loop, and what the loop reports (Events), goes through the plugin's per-loop rings.
#pragma once

#include <junction/plugin.hpp>
#include <junction/webrtc/dtls.hpp>
#include <junction/webrtc/ice_lite.hpp>
#include <junction/webrtc/peer.hpp>
#include <junction/webrtc/sdp.hpp>

#include "loop_ring.hpp"

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

namespace verto {

namespace wrtc = junction::webrtc;

struct MediaConf {
  std::string ip = "127.0.0.1";  // our candidate address (and the socket's bind address)
  std::string port_range = "media";
  uint32_t loop = 0;             // the media loop of the sockets (0: the control loop)
  std::thread::id control_thread;  // to count media sent from the control loop (must stay 0)
  wrtc::SctpStack* sctp = nullptr;  // data channels (null or not ready: refused)
};

// The codecs the bridges carry without transcoding, in the order we prefer them.
bool bridgeable(const std::string& canonical_name);

class MediaLeg final : public wrtc::PeerCallbacks {
 public:
  struct Events {  // what the plugin does with what the browser sends
    std::function<void(char digit)> dtmf;
    std::function<void(wrtc::PeerState)> state;
    std::function<void(const std::string& stream, const char* reason)> keyframe;  // a keyframe wanted from this bus stream
    // Data channels: the browser opened one / sent a message on one (on the leg's loop): the
    // plugin passes them to the far leg by label, through the control loop.
    std::function<void(const wrtc::DcepOpen& info)> channel_open;
    std::function<void(const std::string& label, const uint8_t* data, size_t len, bool binary)> channel_message;
  };
  MediaLeg(const junction::sdk::Host& host, const wrtc::Certificate& cert, uint64_t id, std::string stream_prefix, Events ev);
  ~MediaLeg() override;
  MediaLeg(const MediaLeg&) = delete;
  MediaLeg& operator=(const MediaLeg&) = delete;

  // Binds the UDP socket (cookie = the leg's id) and makes our ICE credentials.
  bool open(const MediaConf& conf, std::string& why);
  // Outbound: answers the browser's offer with what the far leg has (its streams).
  bool answer(const wrtc::Description& offer, const wrtc::LocalMedia& audio, const wrtc::LocalMedia& video, std::string& sdp,
              std::string& why);
  // Inbound: our offer to the browser for what the far leg offered; then its answer.
  bool offer(const wrtc::LocalMedia& audio, const wrtc::LocalMedia& video, std::string& sdp, std::string& why);
  bool apply(const std::string& answer_sdp, std::string& why);
  // verto.modify updateMedia: the browser's new offer in the answered call, answered with what
  // the far leg has. The running PeerConnection takes it when the browser's certificate is the
  // same (an ICE restart included); else a new one starts with fresh ICE credentials on the same
  // socket. On the leg's loop. new_transport: which of the two happened.
  bool update(const wrtc::Description& offer, std::string& sdp, bool& new_transport, std::string& why);
  // Hold: no frame of the far leg goes to the browser and none of the browser's is published
  // (both directions stop, as `inactive`); unhold asks both producers for a keyframe so video
  // resumes at once. On the leg's loop; the control loop keeps its own flag in ctl_held.
  void hold(bool on);  // unhold: a keyframe wanted both ways (the caller wakes the loop)
  bool ctl_held = false;  // control loop only: what it last asked for
  // The negotiated result as the core's media description (our bus streams as bus_stream): the
  // control loop's copy (set by answer / apply, and by set_ctl_negotiated after an update).
  void to_core(wrtc::MediaStreams& out) const;
  const wrtc::AnswerResult& negotiated() const { return negotiated_; }  // on the leg's loop
  void set_ctl_negotiated(const wrtc::AnswerResult& a) { ctl_negotiated_ = a; }  // control loop
  // The hand-off: handed() on the control loop once it gave the leg away; adopt() on the leg's
  // loop as it takes it.
  bool handed() const { return handed_; }
  void set_handed() { handed_ = true; }
  void adopt() { owner_.adopt(); }
  void set_owner_stats(OwnerStats* s) { owner_.set_stats(s); }
  uint64_t owner_checks() const { return owner_.checks(); }
  // Sends the far leg's bus streams to the browser (subscriptions with cookie id*4+kind).
  void subscribe(const std::string& audio_stream, const std::string& video_stream);

  void on_udp(const jn_datagram* d, size_t n, uint64_t now_ms);
  // Bus -> browser, in two halves so the PeerConnection only ever runs on the leg's loop: push()
  // on the control loop (where bus subscriptions deliver) puts a reference to the frame in a
  // single-producer ring (no copy, no lock; a full ring drops it, counted) and says whether the
  // loop must be woken (one post per batch, not per frame); drain() on the leg's loop sends what
  // is queued and the keyframe request asked for meanwhile.
  bool push(uint32_t kind, jn_buf* buf);
  void on_bus(uint32_t kind, jn_buf* buf, uint64_t now_ms);  // sends one frame now (the leg's loop)
  void drain(uint64_t now_ms);
  // Buffers still queued go back to the pool (release, hot reload): only when no loop drains
  // the ring any more (the leg retired by its loop, or the loops paused for a reload).
  void drop_queued();
  // A keyframe from the browser is wanted (PLI), sent by the next drain() on the leg's loop.
  // Returns like push(): true when the loop must be woken.
  bool want_keyframe();
  // On the leg's loop: opens a channel toward the browser (once its SCTP is up), sends on the
  // open channel with that label (false when there is none: counted).
  void open_channel(const wrtc::DcepOpen& info);
  bool send_channel(const std::string& label, const std::string& data, bool binary);
  bool data_channels() const { return conf_.sctp && conf_.sctp->ready(); }
  uint32_t loop() const { return conf_.loop; }
  uint64_t id() const { return id_; }
  void tick(uint64_t now_ms);
  bool owns_stream(const std::string& s) const { return s == audio_name_ || s == video_name_; }
  const std::string& far_stream(uint32_t kind) const { return kind == JN_MEDIA_VIDEO ? far_video_ : far_audio_; }
  const std::string& our_stream(uint32_t kind) const { return kind == JN_MEDIA_VIDEO ? video_name_ : audio_name_; }
  std::string summary() const { return ctl_negotiated_.summary(); }  // control loop
  // What the far leg has (kept for a fresh offer on verto.attach).
  wrtc::LocalMedia far_audio_media, far_video_media;
  void close_pc();  // on the leg's loop: no PeerConnection activity after
  void release();   // control loop, once the loop let go of it: socket, subscriptions and stream ids given back
  nlohmann::json stats_json();  // for the `sessions` admin verb, on the leg's loop
  // Hot reload: what the next instance needs to close this leg's resources and offer the
  // browser fresh media (the PeerConnection itself does not cross a reload).
  nlohmann::json save() const;
  static void close_saved(const junction::sdk::Host& host, const nlohmann::json& saved);
  static bool far_from_saved(const nlohmann::json& saved, wrtc::LocalMedia& audio, wrtc::LocalMedia& video);

  // PeerCallbacks
  void send_datagram(size_t transport, const uint8_t* data, size_t len, const jn_addr& to) override;
  void on_frame(uint32_t kind, const junction::media::FrameView& frame) override;
  void on_keyframe_request(uint32_t kind, const char* reason) override;
  void on_dtmf(char digit, uint32_t duration_ms) override;
  void on_state(wrtc::PeerState s) override;
  void on_channel_open(uint16_t stream, const wrtc::DcepOpen& info, bool remote) override;
  void on_channel_message(uint16_t stream, const uint8_t* data, size_t len, bool binary) override;
  void on_channel_closed(uint16_t stream) override;

 private:
  bool start(const wrtc::AnswerResult& negotiated, std::string& why);
  wrtc::LocalTransport local_transport() const;
  // Our answer to an offer (answer() and update()): one BUNDLE transport, what the bridges carry.
  bool build_answer(const wrtc::Description& offer, const wrtc::LocalMedia& audio, const wrtc::LocalMedia& video,
                    wrtc::AnswerResult& ans, std::string& why) const;

  junction::sdk::Host host_;
  const wrtc::Certificate& cert_;
  uint64_t id_;
  Events ev_;
  std::string audio_name_, video_name_, far_audio_, far_video_, summary_;
  uint32_t audio_id_ = 0, video_id_ = 0;
  jn_handle sock_ = 0, sub_audio_ = 0, sub_video_ = 0;
  uint16_t port_ = 0;
  MediaConf conf_;
  wrtc::IceCredentials ice_;
  wrtc::Description our_offer_;
  wrtc::AnswerResult negotiated_;
  std::unique_ptr<wrtc::PeerConnection> pc_;
  bool closed_ = false;
  bool held_ = false;
  bool handed_ = false;  // control loop only
  wrtc::AnswerResult ctl_negotiated_;  // control loop only
  Owner owner_;
  uint64_t bus_frames_ = 0;
  // The hand-off ring (control loop -> the leg's loop). Fixed size: nothing allocated per frame.
  struct Queued {
    uint32_t kind = 0;
    jn_buf* buf = nullptr;
  };
  static constexpr size_t kQueue = 256;
  SpscRing<Queued, kQueue> q_;
  std::atomic<bool> q_woken_{false};  // a drain is posted and has not emptied the ring yet
  std::atomic<bool> kf_wanted_{false};
  std::map<uint16_t, std::string> channels_;  // open channels: stream -> label
  std::vector<wrtc::DcepOpen> pending_opens_; // asked before the SCTP association was up
  uint64_t dc_in_ = 0, dc_out_ = 0, dc_dropped_ = 0;
  std::atomic<uint64_t> q_dropped_{0};
  std::atomic<uint64_t> control_rtp_{0};  // RTP/RTCP datagrams sent from the control thread while the leg has a media loop
  uint64_t held_out_ = 0, held_in_ = 0;  // frames not sent to / not published from the browser while held
};

}  // namespace verto
