// Media between a WebRTC transport and the bus, one m-line each way, no transcoding.
//
// FrameToRtp: bus frames (junction/media_frame.h) -> RTP for the browser with sdk/media's
// packetizers (H.264 packetization-mode 1, VP8, G.711, Opus passed through), our own SSRC,
// random first sequence number and timestamp offset. Each packet is built once into a buffer
// allocated at construction with SRTP tailroom, handed to RtpOutput::store_sent (the
// RetransmitBuffer, for NACKs) and then to RtpOutput::send_rtp, which protects it in place. Video
// waits for a keyframe: before the first one, and after a frame lost on the bus (a meta.seq gap
// or JN_MF_DISCONT), frames are held back and send() says NeedKeyframe so the caller asks the
// producer (media.keyframe_request) for one.
//
// RtpToFrames: the browser's decrypted RTP of one m-line -> whole frames (H.264 via sdk/media's
// depacketizer, VP8, Opus / G.711 one frame per packet) handed to a sink the plugin publishes on
// the bus. keyframe_wanted() turns true for video when a delta frame comes before any keyframe
// and after a damaged frame, until the next keyframe; the caller then sends a PLI
// (PeerConnection does, rate-limited). A browser starts with a keyframe: no PLI at the start.
//
// Both build their objects at construction; nothing is allocated or thrown per packet.
#pragma once

#include <junction/media/rtp_packetizer.hpp>
#include <junction/webrtc/sdp.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace junction::webrtc {

// Room after a packet for what SRTP/SRTCP protection appends (auth tag up to 16 bytes, SRTCP
// index 4, MKI): the Transport refuses a buffer without enough.
inline constexpr size_t kRtpTailroom = 64;

// Where packets for the browser go: the PeerConnection adapts its Transport (and its
// RetransmitBuffer) to this; tests capture.
struct RtpOutput {
  virtual ~RtpOutput() = default;
  // Protects in place (capacity: the whole buffer from packet) and sends; false when it could not.
  virtual bool send_rtp(uint8_t* packet, size_t len, size_t capacity) = 0;
  virtual bool send_rtcp(uint8_t* packet, size_t len, size_t capacity) = 0;
  // The plaintext packet, just before send_rtp protects it (keep it for NACKs).
  virtual void store_sent(const uint8_t*, size_t) {}
};

// JN_CODEC_* for a canonical codec name ("H264", "VP8", "OPUS", "PCMA", "PCMU"); 0 otherwise.
uint32_t codec_id(std::string_view canonical_name);

struct SendConfig {
  uint32_t kind = JN_MEDIA_AUDIO;
  Codec codec;              // the negotiated codec (the browser's pt)
  uint32_t ssrc = 0;        // ours (MLineResult::local_ssrc)
  size_t mtu = 1200;        // RTP packet size (header + payload) before SRTP
  uint16_t first_seq = 0;   // 0 with random_start: random
  uint32_t ts_offset = 0;
  bool random_start = true; // RFC 3550: random first seq and timestamp offset
};

struct FrameToRtpStats {
  uint64_t frames = 0;            // sent
  uint64_t packets = 0;
  uint64_t bytes = 0;             // RTP bytes before SRTP
  uint64_t held_for_keyframe = 0; // video frames not sent while waiting for a keyframe
  uint64_t wrong_codec = 0;       // frames of another codec than negotiated: refused
  uint64_t refused = 0;           // the packetizer refused (empty, too large)
  uint64_t send_failed = 0;       // the transport did not take the packet (not connected yet, ...)
};

class FrameToRtp {
 public:
  enum class Result : uint8_t { Sent, NeedKeyframe, Refused };

  FrameToRtp(const SendConfig& cfg, RtpOutput& out);
  FrameToRtp(const FrameToRtp&) = delete;
  FrameToRtp& operator=(const FrameToRtp&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }  // why !ok()

  // One frame from the bus. NeedKeyframe: held back (video before a keyframe): ask the producer.
  Result send(const media::FrameView& f);
  // Make the next frames wait for a keyframe (the browser asked with PLI/FIR: the producer is
  // asked too, and a decoder that lost its state is not fed deltas meanwhile). Not used for audio.
  void resync() { waiting_key_ = cfg_.kind == JN_MEDIA_VIDEO; }
  bool waiting_for_keyframe() const { return waiting_key_; }

  uint32_t ssrc() const { return cfg_.ssrc; }
  uint32_t clock_rate() const { return clock_; }
  uint32_t last_rtp_ts() const { return last_ts_; }  // of the last packet sent (for SR)
  const FrameToRtpStats& stats() const { return stats_; }

 private:
  void on_packet(const uint8_t* p, size_t n);

  SendConfig cfg_;
  RtpOutput& out_;
  uint32_t codec_ = 0;
  uint32_t clock_ = 0;
  std::unique_ptr<media::RtpPacketizer> pk_;
  std::unique_ptr<uint8_t[]> buf_;  // mtu + kRtpTailroom: the packet protected in place
  size_t cap_ = 0;
  bool ok_ = false;
  std::string error_;
  bool waiting_key_ = false;
  bool have_seq_ = false;
  uint32_t next_frame_seq_ = 0;
  uint32_t last_ts_ = 0;
  FrameToRtpStats stats_;
};

struct RecvConfig {
  uint32_t kind = JN_MEDIA_AUDIO;
  Codec codec;            // the negotiated codec (pt, clock, fmtp)
  uint16_t track = 0;     // meta.track of the frames (0 video, 1 audio by convention)
  size_t max_frame = 0;   // 0: the codec's default
};

struct RtpToFramesStats {
  uint64_t packets = 0;
  uint64_t frames = 0;
  uint64_t wrong_pt = 0;      // another payload type than negotiated: ignored
  uint64_t bad = 0;           // refused by the depacketizer
  uint64_t keyframes = 0;
};

class RtpToFrames {
 public:
  explicit RtpToFrames(const RecvConfig& cfg);
  RtpToFrames(const RtpToFrames&) = delete;
  RtpToFrames& operator=(const RtpToFrames&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

  // One decrypted RTP packet of this m-line; whole frames go to sink during the call.
  media::RtpError push(const uint8_t* pkt, size_t len, media::FrameSink sink);
  // Video: a delta before any keyframe, or a frame damaged since the last keyframe (ask with a PLI).
  bool keyframe_wanted() const { return want_key_; }
  uint32_t remote_ssrc() const { return ssrc_; }
  uint8_t payload_type() const { return cfg_.codec.pt; }
  const RtpToFramesStats& stats() const { return stats_; }
  const media::DepacketizerStats* depacketizer_stats() const { return dp_ ? &dp_->stats() : nullptr; }

 private:
  RecvConfig cfg_;
  std::unique_ptr<media::RtpDepacketizer> dp_;
  bool ok_ = false;
  std::string error_;
  bool want_key_ = false;
  uint32_t ssrc_ = 0;
  media::FrameSink sink_;  // the caller's, during push()
  RtpToFramesStats stats_;
};

}  // namespace junction::webrtc
