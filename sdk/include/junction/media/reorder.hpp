// A small RTP reordering buffer with loss detection, in front of a depacketizer: packets go in
// as they arrive, come out in sequence order (16-bit wrap handled), duplicates and packets older
// than what was already delivered are dropped. The wait for a missing packet is bounded twice:
// by the window (a packet `depth` or more ahead of the gap releases it) and by time (a gap older
// than max_wait_ns is given up at the next pop). A new SSRC, or a sequence jump (kMaxJump ahead,
// or more than 100 behind) confirmed by the packet after it, restarts the buffer (what it held is
// counted as dropped; the unconfirmed first packet of the jump is refused as Bad). The first packet sets the
// sequence: one that was sent before it but arrives after it is dropped as late. Packets are copied into slots
// allocated once (depth x max_packet bytes); nothing is allocated per packet; nothing thrown.
// take_next() is the in-order fast path (the caller keeps the packet, nothing copied); save() /
// restore() carry the whole state (held packets included) across a plugin's hot reload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace junction::media {

struct ReorderStats {
  uint64_t pushed = 0;
  uint64_t popped = 0;
  uint64_t duplicates = 0;  // already buffered, or behind the delivered sequence
  uint64_t lost = 0;        // sequence numbers given up
  uint64_t bad = 0;         // not RTP, larger than max_packet, or an unconfirmed sequence jump
  uint64_t restarts = 0;    // sequence jump or SSRC change
  uint64_t dropped = 0;     // buffered packets thrown away by a restart
};

class ReorderBuffer {
 public:
  static constexpr uint16_t kMaxJump = 3000;  // RFC 3550 A.1 MAX_DROPOUT

  // depth: slots (rounded up to a power of two, 2..1024); max_packet: largest packet kept.
  // Call pop() until it returns false after every push(): a packet beyond the window waits in
  // one overflow slot until pop() has given up enough of the gap for it.
  ReorderBuffer(size_t depth, size_t max_packet, uint64_t max_wait_ns);
  bool ok() const { return slots_ != nullptr; }

  enum class Push : uint8_t { Queued, Duplicate, Bad };
  Push push(const uint8_t* pkt, size_t len, uint64_t now_ns);
  // The packet due next (or the first one, or the first of a new SSRC, which restarts the
  // buffer): true, and the sequence moves past it, the caller delivers it from its own bytes
  // (whatever its size: nothing is copied); then pop() what it freed. False: push() it instead.
  // With gap set, a packet ahead (less than half the sequence space) is taken too: the sequence
  // numbers before it are given up (*gap: how many, counted lost; drain() what is held first).
  // For a gap nothing will fill: an ordered transport (TCP), a packet too large to wait.
  bool take_next(const uint8_t* pkt, size_t len, uint32_t* gap = nullptr);
  // The sequence number due next (meaningful once a packet came).
  uint16_t next_seq() const { return next_; }
  size_t max_packet() const { return max_packet_; }
  size_t depth() const { return depth_; }

  // The next packet in order, if one is due: in sequence, or after a gap the window or the
  // wait bound gave up on (lost_before: how many sequence numbers were skipped). The bytes stay
  // valid until the next push or pop.
  struct Packet {
    const uint8_t* data = nullptr;
    size_t len = 0;
    uint16_t seq = 0;
    uint32_t lost_before = 0;
  };
  bool pop(uint64_t now_ns, Packet& out);
  // Releases everything held, in order, skipping gaps (end of stream).
  bool drain(Packet& out) { return pop(UINT64_MAX, out); }
  // When the oldest held packet's wait runs out (UINT64_MAX: nothing waits): a timer for pop.
  uint64_t deadline_ns() const;
  size_t held() const { return held_; }
  const ReorderStats& stats() const { return stats_; }

  // Hot reload: sequence state, counters and the held packets appended to out (an opaque blob of
  // this build), taken back by a buffer of the same depth and max_packet. False (and a fresh
  // buffer) on a blob it cannot take.
  void save(std::vector<uint8_t>& out) const;
  bool restore(const uint8_t* data, size_t size);

 private:
  struct Slot {
    bool used = false;
    uint16_t seq = 0;
    uint32_t len = 0;
    uint64_t arrival_ns = 0;
  };
  uint8_t* slot_data(size_t i) { return data_.get() + i * max_packet_; }
  void restart(uint16_t seq, uint32_t ssrc);

  size_t depth_;
  size_t max_packet_;
  uint64_t max_wait_ns_;
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<uint8_t[]> data_;
  bool started_ = false;
  uint16_t next_ = 0;  // the next sequence number to deliver
  uint32_t ssrc_ = 0;
  size_t held_ = 0;
  uint32_t skipped_ = 0;
  bool have_jump_ = false;
  uint16_t jump_next_ = 0;  // the packet that confirms a sequence jump  // given up since the last delivered packet
  // The one packet beyond the window, waiting for pop() to make room.
  bool pending_ = false;
  Slot pending_slot_;
  std::unique_ptr<uint8_t[]> pending_data_;
  std::unique_ptr<uint8_t[]> out_data_;  // the delivered packet (its slot is reused at once)
  ReorderStats stats_;
};

}  // namespace junction::media
