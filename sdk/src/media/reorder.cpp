// RTP reordering with loss detection: slots indexed by sequence number modulo the depth.
#include <junction/media/reorder.hpp>
#include <junction/media/rtp_depacketizer.hpp>

#include "ps_common.hpp"

#include <cstring>
#include <new>

namespace junction::media {

ReorderBuffer::ReorderBuffer(size_t depth, size_t max_packet, uint64_t max_wait_ns)
    : depth_(2), max_packet_(max_packet), max_wait_ns_(max_wait_ns) {
  while (depth_ < depth && depth_ < 1024) depth_ <<= 1;
  if (max_packet_ < proto::rtp::kFixedHeader) return;
  data_ = alloc_bytes(depth_ * max_packet_);
  pending_data_ = alloc_bytes(max_packet_);
  out_data_ = alloc_bytes(max_packet_);
  if (data_ && pending_data_ && out_data_) slots_.reset(new (std::nothrow) Slot[depth_]);
}

void ReorderBuffer::restart(uint16_t seq, uint32_t ssrc) {
  if (started_) ++stats_.restarts;
  stats_.dropped += held_ + (pending_ ? 1 : 0);
  for (size_t i = 0; i < depth_; ++i) slots_[i].used = false;
  held_ = 0;
  pending_ = false;
  skipped_ = 0;
  started_ = true;
  next_ = seq;
  ssrc_ = ssrc;
}

ReorderBuffer::Push ReorderBuffer::push(const uint8_t* pkt, size_t len, uint64_t now_ns) {
  if (!ok() || !pkt || len < proto::rtp::kFixedHeader || len > max_packet_ || (pkt[0] >> 6) != 2) {
    ++stats_.bad;
    return Push::Bad;
  }
  ++stats_.pushed;
  uint16_t seq = proto::rtp::rd16(pkt + 2);
  uint32_t ssrc = proto::rtp::rd32(pkt + 8);
  if (!started_ || ssrc != ssrc_) restart(seq, ssrc);
  uint16_t ahead = static_cast<uint16_t>(seq - next_);
  if (ahead >= 0x8000) {
    // Behind what was delivered: late or duplicate, unless so far behind the source restarted.
    if (0x10000u - ahead <= 100u) {
      ++stats_.duplicates;
      return Push::Duplicate;
    }
  }
  if (ahead >= kMaxJump) {
    // Far from the sequence: a stray packet, or the sender restarted. RFC 3550 A.1: believe it
    // when the next packet follows it.
    if (!have_jump_ || seq != jump_next_) {
      have_jump_ = true;
      jump_next_ = static_cast<uint16_t>(seq + 1);
      ++stats_.bad;
      return Push::Bad;
    }
    restart(seq, ssrc);
    ahead = 0;
  }
  have_jump_ = false;
  if (ahead >= depth_) {
    if (pending_) {
      if (pending_slot_.seq == seq) {
        ++stats_.duplicates;
        return Push::Duplicate;
      }
      // pop() was not called in between: give up everything before the waiting packet.
      uint16_t target = static_cast<uint16_t>(pending_slot_.seq - depth_ + 1);
      while (next_ != target) {
        Slot& s = slots_[next_ & (depth_ - 1)];
        if (s.used && s.seq == next_) {
          s.used = false;
          --held_;
          ++stats_.dropped;
        } else {
          ++stats_.lost;
        }
        ++next_;
      }
      Slot& dst = slots_[pending_slot_.seq & (depth_ - 1)];
      dst = pending_slot_;
      std::memcpy(slot_data(pending_slot_.seq & (depth_ - 1)), pending_data_.get(), pending_slot_.len);
      ++held_;
      pending_ = false;
      ahead = static_cast<uint16_t>(seq - next_);
      if (ahead < depth_) goto store;
    }
    pending_slot_ = Slot{true, seq, static_cast<uint32_t>(len), now_ns};
    std::memcpy(pending_data_.get(), pkt, len);
    pending_ = true;
    return Push::Queued;
  }
store:
  {
    size_t i = seq & (depth_ - 1);
    Slot& s = slots_[i];
    if (s.used && s.seq == seq) {
      ++stats_.duplicates;
      return Push::Duplicate;
    }
    s = Slot{true, seq, static_cast<uint32_t>(len), now_ns};
    std::memcpy(slot_data(i), pkt, len);
    ++held_;
  }
  return Push::Queued;
}

bool ReorderBuffer::take_next(const uint8_t* pkt, size_t len, uint32_t* gap) {
  if (gap) *gap = 0;
  if (!ok() || !pkt || len < proto::rtp::kFixedHeader || (pkt[0] >> 6) != 2) return false;
  uint16_t seq = proto::rtp::rd16(pkt + 2);
  uint32_t ssrc = proto::rtp::rd32(pkt + 8);
  if (!started_ || ssrc != ssrc_) restart(seq, ssrc);
  if (seq != next_) {
    uint16_t ahead = static_cast<uint16_t>(seq - next_);
    if (!gap || ahead >= 0x8000) return false;
    // Given up: whatever is still held (drain() was not called) goes with the gap.
    stats_.dropped += held_ + (pending_ ? 1 : 0);
    for (size_t i = 0; i < depth_; ++i) slots_[i].used = false;
    held_ = 0;
    pending_ = false;
    stats_.lost += ahead;
    *gap = ahead;
    next_ = seq;
  }
  // What pop() would hand out first: nothing can be held at next_ (pop() ran after every push).
  ++stats_.pushed;
  ++stats_.popped;
  ++next_;
  skipped_ = 0;
  have_jump_ = false;
  return true;
}

bool ReorderBuffer::pop(uint64_t now_ns, Packet& out) {
  if (!ok() || !started_) return false;
  for (;;) {
    size_t i = next_ & (depth_ - 1);
    Slot& s = slots_[i];
    if (s.used && s.seq == next_) {
      // Copied out so the slot is free for the packet a window ahead at once.
      std::memcpy(out_data_.get(), slot_data(i), s.len);
      out = Packet{out_data_.get(), s.len, s.seq, skipped_};
      s.used = false;
      --held_;
      skipped_ = 0;
      ++next_;
      ++stats_.popped;
      return true;
    }
    if (pending_ && static_cast<uint16_t>(pending_slot_.seq - next_) < depth_) {
      size_t j = pending_slot_.seq & (depth_ - 1);
      slots_[j] = pending_slot_;
      std::memcpy(slot_data(j), pending_data_.get(), pending_slot_.len);
      pending_ = false;
      ++held_;
      continue;
    }
    if (held_ == 0 && !pending_) return false;
    // next_ is missing and something waits behind it: give up on it if the window is full or
    // the oldest waiting packet has waited long enough.
    bool give_up = pending_;
    if (!give_up) {
      uint64_t oldest = UINT64_MAX;
      for (size_t k = 0; k < depth_; ++k)
        if (slots_[k].used && slots_[k].arrival_ns < oldest) oldest = slots_[k].arrival_ns;
      give_up = now_ns >= oldest && now_ns - oldest >= max_wait_ns_;
    }
    if (!give_up) return false;
    ++next_;
    ++skipped_;
    ++stats_.lost;
  }
}

uint64_t ReorderBuffer::deadline_ns() const {
  if (!ok() || (held_ == 0 && !pending_)) return UINT64_MAX;
  const Slot& s = slots_[next_ & (depth_ - 1)];
  if ((s.used && s.seq == next_) || pending_) return 0;
  uint64_t oldest = UINT64_MAX;
  for (size_t k = 0; k < depth_; ++k)
    if (slots_[k].used && slots_[k].arrival_ns < oldest) oldest = slots_[k].arrival_ns;
  return oldest > UINT64_MAX - max_wait_ns_ ? UINT64_MAX : oldest + max_wait_ns_;
}

namespace {
constexpr uint32_t kBlobMagic = 0x524F4231;  // "ROB1"
}

void ReorderBuffer::save(std::vector<uint8_t>& out) const {
  BlobWriter w{out};
  w.put(kBlobMagic);
  w.put(static_cast<uint64_t>(depth_)), w.put(static_cast<uint64_t>(max_packet_));
  w.put(started_), w.put(next_), w.put(ssrc_), w.put(skipped_), w.put(have_jump_), w.put(jump_next_), w.put(stats_);
  w.put(static_cast<uint64_t>(ok() ? held_ : 0));
  for (size_t i = 0; ok() && i < depth_; ++i) {
    if (!slots_[i].used) continue;
    w.put(slots_[i].seq), w.put(slots_[i].arrival_ns);
    w.bytes(data_.get() + i * max_packet_, slots_[i].len);
  }
  w.put(pending_);
  if (pending_) {
    w.put(pending_slot_.seq), w.put(pending_slot_.arrival_ns);
    w.bytes(pending_data_.get(), pending_slot_.len);
  }
}

bool ReorderBuffer::restore(const uint8_t* data, size_t size) {
  auto fresh = [&] {
    if (ok())
      for (size_t i = 0; i < depth_; ++i) slots_[i].used = false;
    started_ = pending_ = have_jump_ = false;
    held_ = 0;
    skipped_ = 0;
    stats_ = {};
    return false;
  };
  if (!ok()) return false;
  BlobReader r{data, size};
  if (r.get<uint32_t>() != kBlobMagic || r.get<uint64_t>() != depth_ || r.get<uint64_t>() != max_packet_) return fresh();
  started_ = r.flag(), next_ = r.get<uint16_t>(), ssrc_ = r.get<uint32_t>(), skipped_ = r.get<uint32_t>();
  have_jump_ = r.flag(), jump_next_ = r.get<uint16_t>(), stats_ = r.get<ReorderStats>();
  auto held = r.get<uint64_t>();
  if (!r.ok || held > depth_) return fresh();
  for (size_t i = 0; i < depth_; ++i) slots_[i].used = false;
  held_ = 0;
  for (uint64_t k = 0; k < held; ++k) {
    auto seq = r.get<uint16_t>();
    auto arrival = r.get<uint64_t>();
    const uint8_t* p = nullptr;
    size_t n = 0;
    if (!r.view(&p, &n, max_packet_)) return fresh();
    size_t i = seq & (depth_ - 1);
    // A held packet is within the window ahead of next_, one per slot: anything else is not ours.
    if (static_cast<uint16_t>(seq - next_) >= depth_ || slots_[i].used) return fresh();
    slots_[i] = Slot{true, seq, static_cast<uint32_t>(n), arrival};
    std::memcpy(slot_data(i), p, n);
    ++held_;
  }
  pending_ = r.flag();
  if (pending_) {
    auto seq = r.get<uint16_t>();
    auto arrival = r.get<uint64_t>();
    const uint8_t* p = nullptr;
    size_t n = 0;
    if (!r.view(&p, &n, max_packet_)) return fresh();
    pending_slot_ = Slot{true, seq, static_cast<uint32_t>(n), arrival};
    std::memcpy(pending_data_.get(), p, n);
  }
  if (!r.ok || r.n != 0) return fresh();
  return true;
}

}  // namespace junction::media
