// RTP -> media frames: the part every depacketizer shares (sdk/media). A depacketizer takes RTP
// packets of one stream in sequence order (put a ReorderBuffer in front when the network may
// reorder) and hands whole frames (junction/media_frame.h conventions) to a sink during the call.
//
// Loss: a gap in the RTP sequence numbers marks the access unit the missing packets could belong
// to as damaged; a damaged unit is dropped, never passed on half-written, its frame number is
// skipped (meta.seq gap) and the next frame carries JN_MF_DISCONT. Duplicate and late packets are
// dropped. (Packets lost before the first one received cannot be seen: a stream is taken to
// start at its first packet.) Nothing is thrown; storage is allocated once at construction (check ok()).
#pragma once

#include <junction/media/frame.hpp>
#include <junction/proto/rtp.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace junction::media {

// Why a packet or a frame was refused (a caller logs to_string() with its own context).
enum class RtpError : uint8_t {
  None = 0,
  BadHeader,     // not a valid RTP packet (RFC 3550 5.1)
  PayloadType,   // another payload type than the configured one: not for this depacketizer
  Duplicate,     // a duplicate or late packet (behind the sequence already delivered): dropped
  Empty,         // no payload
  BadPayload,    // the payload format is broken (aggregate sizes, FU header, AU headers)
  Unsupported,   // a valid structure this implementation does not take (STAP-B, MTAP, DONL, interleaving)
  TooLarge,      // a frame larger than the configured maximum (dropped)
  BadConfig,     // the fmtp / configuration is invalid (construction)
  BadFrame,      // packetizer: the frame is empty or has no NAL unit
  NalTooLarge,   // packetizer: a NAL unit does not fit one packet in packetization-mode 0
  NoMemory,      // construction could not get its buffers
  SeqJump        // a sequence number far from the expected one: dropped unless the next packet
                 // follows it (then the source restarted: RFC 3550 A.1's two-packet rule)
};
const char* to_string(RtpError e);

// Frames go to a FrameSink (junction/media/frame.hpp).

struct DepacketizerConfig {
  uint32_t codec = JN_CODEC_NONE;  // set by the codec's class
  uint32_t clock_rate = 0;         // the RTP clock (rtpmap), 0: the codec's (90000 video, 8000 G.711,
                                   // 48000 Opus; AAC has none); frames carry it as meta.clock_rate
  int payload_type = -1;           // -1: any; else packets with another PT return PayloadType
  uint16_t track = 0;              // meta.track of the frames
  size_t max_frame = 0;            // largest frame in bytes (0: the codec's default)
  std::string_view fmtp;           // the a=fmtp parameters ("packetization-mode=1;sprop-...")
};

struct DepacketizerStats {
  uint64_t packets = 0;         // accepted packets
  uint64_t bad_packets = 0;     // refused (bad header, broken payload)
  uint64_t lost_packets = 0;    // sequence gaps
  uint64_t duplicates = 0;      // duplicate / late packets dropped
  uint64_t frames = 0;          // frames emitted
  uint64_t frames_dropped = 0;  // damaged units dropped
  uint64_t ssrc_changes = 0;
  uint64_t seq_restarts = 0;    // sequence jumps confirmed by a second packet
};

class RtpDepacketizer {
 public:
  static constexpr int kMaxMisorder = 100;   // RFC 3550 A.1: older than this is not "late"
  static constexpr int kMaxDropout = 3000;   // RFC 3550 A.1: a larger step is a jump
  RtpDepacketizer(const DepacketizerConfig& cfg, uint8_t kind, uint32_t default_clock);
  virtual ~RtpDepacketizer() = default;
  RtpDepacketizer(const RtpDepacketizer&) = delete;
  RtpDepacketizer& operator=(const RtpDepacketizer&) = delete;

  // False when construction failed (bad fmtp, no memory): error() says why; push refuses all.
  bool ok() const { return init_error_ == RtpError::None; }
  RtpError error() const { return init_error_; }

  // Feeds one RTP packet (header included). Whole frames go to `sink` during the call (zero,
  // one or several). Returns None or why the packet was refused; a refused packet may still
  // have damaged the frame in progress (it is then dropped at its end).
  RtpError push(const uint8_t* pkt, size_t len, FrameSink sink);
  // End of stream: a frame still open (its marker never came) is emitted if nothing is missing.
  void flush(FrameSink sink);
  const DepacketizerStats& stats() const { return stats_; }

 protected:
  // One packet's payload (padding removed). gap: packets were lost right before this one.
  virtual RtpError on_payload(const proto::rtp::Header& h, int64_t pts, const uint8_t* p, size_t n, bool gap,
                              FrameSink sink) = 0;
  virtual void on_flush(FrameSink) {}
  // The source changed (new SSRC): drop whatever is open.
  virtual void on_reset() {}

  void emit(FrameSink sink, const uint8_t* data, size_t size, int64_t pts, uint32_t flags);
  void drop_frame();  // counts it, skips its frame number, flags the next frame DISCONT
  void skip_frames(uint32_t n);  // n frames were lost whole: skip their numbers, next is DISCONT
  void fail_init(RtpError e) { init_error_ = e; }

  DepacketizerConfig cfg_;
  DepacketizerStats stats_;
  uint32_t lost_before_ = 0;  // packets missing right before the one on_payload gets

 private:
  uint8_t kind_;
  RtpError init_error_ = RtpError::None;
  bool have_seq_ = false;
  uint16_t next_seq_ = 0;
  uint32_t ssrc_ = 0;
  uint32_t last_ts_ = 0;
  int64_t ext_ts_ = 0;
  uint32_t frame_seq_ = 0;
  bool discont_ = false;
  bool gap_carry_ = false;
  bool have_jump_ = false;
  uint16_t jump_next_ = 0;  // the packet that confirms a jump
  uint32_t lost_carry_ = 0;
};

// Owned byte storage allocated once, without throwing (null on failure).
std::unique_ptr<uint8_t[]> alloc_bytes(size_t n);

// The value of `key` in an fmtp parameter list ("a=b; c=d"), keys compared without case; empty
// when absent.
std::string_view fmtp_value(std::string_view fmtp, std::string_view key);
// An unsigned decimal fmtp value, or `def` when absent; false on garbage.
bool fmtp_uint(std::string_view fmtp, std::string_view key, uint32_t def, uint32_t& out);

}  // namespace junction::media
