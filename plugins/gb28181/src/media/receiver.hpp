// One received GB/T 28181 stream, transport-agnostic and pure (no host, no I/O): UDP datagrams or
// TCP bytes in, whole media frames out, with the counters MediaIngest reports (ingest.hpp).
//   UDP: PsRtpReceiver (reorder window; a gap drops only the frames it damaged).
//   TCP: Rfc4571Deframer on the raw bytes (RFC 4571 / RTSP-interleaved / bare PS detected; a lying
//        length is resynced and counted) -> PsRtpReceiver with no reorder window (TCP is ordered).
// SSRC policy (the document: the answer's y= may differ from the offer's; some devices send 0):
// before the answer the first SSRC seen is taken; adopt_answer(ssrc != 0) pins the answer's when no
// packet came yet; 0 keeps learning from the stream. Another SSRC is counted and ignored until it
// persists (PsRtpReceiver's ssrc_switch_after: a device that restarted).
// The Sink sees frames (borrowed, valid for the call) and problems (for a rate-limited log).
#pragma once

#include "ingest.hpp"

#include <junction/media/ps_rtp.hpp>
#include <junction/media/rfc4571.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace gb::media {

enum class Problem : uint8_t { WrongSsrc, WrongPt, Malformed, TcpResync, Demux, Oversized };
const char* to_string(Problem p);

struct ReceiverConfig {
  Transport transport = Transport::Udp;
  uint32_t ssrc = 0;           // the offer's y=; only a hint until the answer (see above)
  int payload_type = 96;       // PS
  size_t reorder_window = 16;  // UDP only
  size_t max_video_frame = 4u << 20;
};

// H.264 / H.265 SPS -> picture size (cropping applied); false when it cannot be parsed.
// nal: the NAL unit without its start code (header included).
bool sps_resolution(uint32_t codec, const uint8_t* nal, size_t size, uint32_t& width, uint32_t& height);

class StreamReceiver {
 public:
  class Sink {
   public:
    virtual void on_frame(const junction::media::FrameView& f) = 0;
    virtual void on_problem(Problem, const char* /*detail*/) {}
    // The PS bytes of the stream, in order (download writes them to a file).
    virtual void on_ps_bytes(const uint8_t*, size_t) {}

   protected:
    ~Sink() = default;
  };

  explicit StreamReceiver(const ReceiverConfig& cfg);

  void on_datagram(const uint8_t* data, size_t size, uint64_t now_ms, Sink& sink);
  void on_tcp_bytes(const uint8_t* data, size_t size, uint64_t now_ms, Sink& sink);
  // A housekeeping tick (media loop timer): gaps older than the tick are declared lost.
  void flush_reorder(Sink& sink);
  // End of stream (TCP closed, stream closed): the last whole frames are passed on.
  void finish(Sink& sink);
  void adopt_answer(bool has_ssrc, uint32_t ssrc, int payload_type);
  // Hot reload: everything needed to go on where this one stopped -- the RTP receiver (sequence,
  // packets held for reordering, the demuxer with the frame in progress) and this layer's
  // counters, and on TCP the deframer's held bytes (a packet the swap cut in two, the packet
  // waiting for the header after it) -- as an opaque blob (same build on both sides).
  std::string save(Sink& sink);
  // Into a receiver built with the same config (after adopt_answer). False: a fresh receiver.
  bool restore(std::string_view blob);

  // Counters into out (the fields this layer owns); fps / bitrate over [window start, now_ms].
  void fill(Stats& out) const;
  void roll_window(uint64_t now_ms);  // call every stats interval
  bool first_keyframe_seen() const { return keyframes_ > 0; }
  uint64_t keyframes() const { return keyframes_; }
  uint64_t last_packet_ms() const { return last_packet_ms_; }
  uint64_t packets() const;
  uint32_t ssrc() const { return rtp_->ssrc(); }

 private:
  struct DemuxSink;
  struct TcpSink;
  void rebuild(uint32_t ssrc, bool pinned, int pt);
  void rtp_packet(const uint8_t* data, size_t size, junction::media::FrameSink ds, Sink& out);

  ReceiverConfig cfg_;
  std::unique_ptr<junction::media::PsRtpReceiver> rtp_;
  std::unique_ptr<junction::media::Rfc4571Deframer> tcp_;
  uint64_t bytes_ = 0, tcp_bytes_ = 0, keyframes_ = 0, last_packet_ms_ = 0;
  uint64_t video_frames_ = 0, audio_frames_ = 0;
  uint64_t oversized_ = 0, demux_errors_ = 0;
  uint64_t carried_packets_ = 0, carried_wrong_ssrc_ = 0, carried_wrong_pt_ = 0, carried_malformed_ = 0;
  uint32_t width_ = 0, height_ = 0, video_codec_ = 0, audio_codec_ = 0;
  // stats window
  uint64_t win_start_ms_ = 0, win_frames_ = 0, win_bytes_ = 0;
  double fps_ = 0, bitrate_ = 0;
  bool win_started_ = false;
};

}  // namespace gb::media
