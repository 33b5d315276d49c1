// MPEG-PS over RTP as GB/T 28181 carries it (a=rtpmap:96 PS/90000): the PS byte stream is cut
// into RTP payloads in order; the marker bit ends a frame's PS bytes; the timestamp is the frame's
// 90 kHz time. The receiving side concatenates payloads by sequence number, so a gap is a loss
// the demuxer must know about (PsDemuxer::mark_loss) before it gets the next payload.
//
// PsRtpPacketizer: PS bytes of one frame -> RTP packets (sequence, marker, timestamp).
// PsRtpSender:     frames -> PsMuxer -> PsRtpPacketizer.
// PsRtpReceiver:   RTP packets (UDP datagrams or RFC 4571 frames) -> ReorderBuffer (reorder.hpp:
//                  duplicates dropped, late packets dropped, gaps reported as loss; packets in
//                  order go straight through, uncopied) -> PsDemuxer;
//                  a packet with the marker bit is followed by PsDemuxer::frame_end (the frame's
//                  PS bytes are all there: with a trusted marker the frame goes out at once).
// Pure code: storage is sized at construction; nothing is allocated per packet.
#pragma once

#include <junction/media/ps_demuxer.hpp>
#include <junction/media/ps_muxer.hpp>
#include <junction/media/reorder.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace junction::media {

struct PsRtpPacketizerConfig {
  uint8_t payload_type = 96;
  uint32_t ssrc = 0;
  uint16_t first_seq = 0;
  size_t max_payload = 1400;  // bytes of PS per RTP packet (the MTU minus IP/UDP/RTP headers)
};

class PsRtpPacketizer {
 public:
  class Sink {
   public:
    // One RTP packet (header + payload); valid during the call.
    virtual void on_packet(const uint8_t* packet, size_t size) = 0;

   protected:
    ~Sink() = default;
  };

  explicit PsRtpPacketizer(const PsRtpPacketizerConfig& cfg = {});
  // Splits one frame's PS bytes into packets carrying timestamp ts90; marker on the last one.
  // Returns the number of packets.
  size_t packetize(const uint8_t* ps, size_t size, uint32_t ts90, Sink& sink);
  uint16_t next_seq() const { return seq_; }

 private:
  PsRtpPacketizerConfig cfg_;
  uint16_t seq_;
  std::vector<uint8_t> pkt_;
};

// Frames -> PS -> RTP in one object (GB talk / broadcast: audio frames to a device).
class PsRtpSender {
 public:
  PsRtpSender(const PsMuxerConfig& mux, const PsRtpPacketizerConfig& rtp) : mux_(mux), rtp_(rtp) {}
  // False (and error()) when the muxer refuses the frame; nothing is sent then.
  bool send(const FrameView& frame, PsRtpPacketizer::Sink& sink);
  const char* error() const { return mux_.error(); }
  PsMuxer& muxer() { return mux_; }
  PsRtpPacketizer& packetizer() { return rtp_; }

 private:
  PsMuxer mux_;
  PsRtpPacketizer rtp_;
};

struct PsRtpReceiverConfig {
  int payload_type = 96;       // -1: any (devices that answer with another PT)
  uint32_t ssrc = 0;           // expected SSRC; with ssrc_from_first, the first packet's SSRC is adopted
  bool ssrc_from_first = true; // GB: the answer's y= may differ from the offer; some devices send 0
  uint32_t ssrc_switch_after = 32;  // consecutive packets of another SSRC that mean a restarted source
  size_t reorder_window = 16;  // packets held while waiting for a missing one, rounded up to a power
                               // of two (0: TCP, in order: a gap is given up at once)
  size_t max_packet = 1500;    // largest packet that can wait (out of order) in the reordering
                               // buffer, RTP header included; one in order goes through at any size
  PsDemuxerConfig demux;
};

struct PsRtpReceiverStats {
  uint64_t packets = 0;        // accepted RTP packets of the stream
  uint64_t lost = 0;           // sequence numbers never received
  uint64_t duplicates = 0;
  uint64_t late = 0;           // arrived after their gap was declared lost
  uint64_t reordered = 0;      // arrived out of order and were put back in order
  uint64_t malformed = 0;      // not RTP (rtp::parse refused it)
  uint64_t rtcp = 0;           // RTCP on the RTP port (ignored here)
  uint64_t wrong_pt = 0;
  uint64_t wrong_ssrc = 0;
  uint64_t too_large = 0;      // out-of-order packet larger than max_packet (counted as lost)
  uint64_t ssrc_changes = 0;
  uint64_t stray = 0;          // a far sequence jump the next packet did not confirm (dropped)
  uint64_t restarts = 0;       // a far sequence jump confirmed: the source restarted its sequence
};

class PsRtpReceiver {
 public:
  explicit PsRtpReceiver(const PsRtpReceiverConfig& cfg = {});

  // One RTP packet. Frames completed go to sink.
  void on_rtp(const uint8_t* packet, size_t size, FrameSink sink);
  // Stop waiting for missing packets (call from a timer, ~100 ms after the last packet): what is
  // held is passed on, gaps count as lost.
  void flush_reorder(FrameSink sink);
  // End of stream: flush_reorder, then the demuxer's last frame.
  void finish(FrameSink sink);

  const PsRtpReceiverStats& stats() const { return stats_; }
  PsDemuxer& demuxer() { return demux_; }
  const PsDemuxer& demuxer() const { return demux_; }
  // Hot reload: sequence state, SSRC, the packets held for reordering and the demuxer's state
  // (PsDemuxer::save) as one blob; restore() into a receiver of the same configuration. False
  // (and a fresh receiver) on a blob it cannot take.
  void save(std::vector<uint8_t>& out) const;
  bool restore(const uint8_t* data, size_t size);
  uint32_t ssrc() const { return ssrc_; }

 private:
  void deliver(const uint8_t* payload, size_t size, bool marker, const FrameSink& sink);
  // Passes on what the reordering buffer has due (now: UINT64_MAX gives every gap up).
  void pop_due(uint64_t now, const FrameSink& sink);

  PsRtpReceiverConfig cfg_;
  PsRtpReceiverStats stats_;
  PsDemuxer demux_;
  ReorderBuffer rb_;
  bool have_ssrc_ = false;
  uint32_t ssrc_ = 0;
  uint32_t other_ssrc_ = 0, other_count_ = 0;
};

}  // namespace junction::media
