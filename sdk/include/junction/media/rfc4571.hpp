// RTP (and RTCP) over a TCP byte stream: RFC 4571 framing (2-byte big-endian length before each
// packet), the 4-byte RTSP interleaved form of RFC 2326 10.12 (`$`, channel, 2-byte length), and
// bare MPEG-PS without RTP (some GB/T 28181 devices in TCP mode), told apart from the first bytes.
//
// Use it on the raw bytes of a TCP connection (the core's JN_FRAME_RAW), not on JN_FRAME_LEN16
// frames: after a corrupted length the core's framer cannot find its way back, this one can. On a
// frame that does not look like RTP (version, payload type, the stream's SSRC) it scans forward
// for the next plausible header: a length, then an RTP header with the stream's SSRC or whose
// payload starts with a PS pack header (00 00 01 BA), then (when the bytes are there) a second
// plausible header right after that packet. Bytes skipped are counted, never passed on. A packet
// is passed on only once the header after it checks out too (a length off by a few bytes shows
// only there): one packet of latency, and finish() releases the last packet of a closed stream.
//
// Bounded: at most 2 x (max_frame + 4) bytes are held. Pure code; no allocation after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace junction::media {

enum class TcpFraming : uint8_t { Detect = 0, Len16, Interleaved, RawPs };
const char* to_string(TcpFraming f);

struct Rfc4571Config {
  TcpFraming framing = TcpFraming::Detect;
  size_t max_frame = 65535;  // largest packet accepted (RFC 4571 allows 65535)
  int payload_type = -1;     // the stream's RTP payload type, -1: any
  uint32_t ssrc = 0;         // the stream's SSRC when known (ssrc_known); else learnt from the first packet
  bool ssrc_known = false;
};

struct Rfc4571Stats {
  uint64_t packets = 0;        // RTP/RTCP packets passed on
  uint64_t ps_bytes = 0;       // bare-PS bytes passed on
  uint64_t resyncs = 0;        // times the framing was lost
  uint64_t skipped_bytes = 0;  // bytes dropped while looking for the next header
};

class Rfc4571Deframer {
 public:
  enum class Kind : uint8_t { Rtp, Rtcp, Ps };
  class Sink {
   public:
    // One RTP/RTCP packet (kind Rtp/Rtcp; channel: the interleaved channel, 0 for RFC 4571) or a
    // chunk of bare PS bytes (kind Ps). Valid during the call. A resync is reported to on_error
    // first; the consumer treats the next packet as following a loss.
    virtual void on_packet(Kind kind, const uint8_t* data, size_t size, uint8_t channel) = 0;
    virtual void on_error(const char* /*reason*/) {}

   protected:
    ~Sink() = default;
  };

  explicit Rfc4571Deframer(const Rfc4571Config& cfg = {});
  void feed(const uint8_t* data, size_t size, Sink& sink);
  // The connection closed: passes on the last packet if it is whole (it is held until the header
  // after it checks out), drops an incomplete one.
  void finish(Sink& sink);

  // Hot reload: the bytes held (a packet cut by the swap, the packet waiting for the header after
  // it) and the learnt framing/SSRC/counters, so the next instance's deframer carries on where
  // this one stopped. restore() refuses (false, state unchanged) anything it did not write: wrong
  // version, a held length over this deframer's bound, an unknown framing.
  std::vector<uint8_t> save() const;
  bool restore(const uint8_t* data, size_t size);

  TcpFraming framing() const { return framing_; }
  uint32_t ssrc() const { return ssrc_; }
  bool ssrc_known() const { return ssrc_known_; }
  const Rfc4571Stats& stats() const { return stats_; }

 private:
  enum class Check : uint8_t { Bad, Good, NeedMore };
  void process(Sink& sink);
  Check check_header(size_t pos, TcpFraming mode, bool strict, size_t* frame_len) const;
  Check check_rtp(const uint8_t* p, size_t avail, size_t len, bool strict) const;
  bool detect();
  bool resync(Sink& sink, const char* reason);

  Rfc4571Config cfg_;
  TcpFraming framing_;
  uint32_t ssrc_;
  bool ssrc_known_;
  bool hunting_ = false;  // lost the framing: looking for a header
  bool finishing_ = false;
  Rfc4571Stats stats_;
  std::vector<uint8_t> buf_;
  size_t len_ = 0;  // bytes held in buf_
};

}  // namespace junction::media
