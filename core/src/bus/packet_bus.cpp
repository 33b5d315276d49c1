#include "bus/packet_bus.hpp"

#include "bus/buffer_pool.hpp"

#include <algorithm>
#include <cassert>

namespace junction {

PacketBus::PacketBus() : flags_(new std::atomic<std::atomic<uint32_t>*>[kFlagChunks]) {
  streams_.emplace_back();  // id 0: reserved
  for (uint32_t i = 0; i < kFlagChunks; ++i) flags_[i].store(nullptr, std::memory_order_relaxed);
}

PacketBus::~PacketBus() {
#ifndef NDEBUG
  for (const auto& s : streams_) assert(!s || s->fanout_depth == 0);  // not from inside a sink
#endif
  for (uint32_t i = 0; i < kFlagChunks; ++i) delete[] flags_[i].load(std::memory_order_relaxed);
}

std::atomic<uint32_t>* PacketBus::flag(uint32_t stream_id, bool create) {
  uint32_t chunk = stream_id / kFlagChunk;
  if (chunk >= kFlagChunks) return nullptr;
  std::atomic<uint32_t>* c = flags_[chunk].load(std::memory_order_acquire);
  if (!c) {
    if (!create) return nullptr;
    c = new std::atomic<uint32_t>[kFlagChunk];
    for (uint32_t i = 0; i < kFlagChunk; ++i) c[i].store(0, std::memory_order_relaxed);
    flags_[chunk].store(c, std::memory_order_release);
  }
  return &c[stream_id % kFlagChunk];
}

void PacketBus::set_subscribed_flag(uint32_t stream_id, bool on) {
  std::atomic<uint32_t>* f = flag(stream_id, on);
  if (!f) return;
  if (on) f->fetch_or(kSubscribedBit, std::memory_order_relaxed);
  else f->fetch_and(~kSubscribedBit, std::memory_order_relaxed);
}

// The pin and the drop in settle() are a Dekker pair (both sequentially consistent): the loop adds
// its pin then checks that the stream exists; the control loop clears "exists" then checks for
// pins. At least one of them sees the other, so a stream is never dropped under a local pin.
bool PacketBus::local_pin_any_thread(uint32_t stream_id) {
  std::atomic<uint32_t>* f = flag(stream_id, false);
  if (!f) return false;
  uint32_t before = f->fetch_add(kLocalPin, std::memory_order_seq_cst);
  if (before & kExistsBit) return true;
  f->fetch_sub(kLocalPin, std::memory_order_seq_cst);
  return false;
}

bool PacketBus::local_unpin_any_thread(uint32_t stream_id) {
  std::atomic<uint32_t>* f = flag(stream_id, false);
  if (!f) return false;
  uint32_t before = f->fetch_sub(kLocalPin, std::memory_order_seq_cst);
  return before / kLocalPin == 1;
}

PacketBus::Stream* PacketBus::lookup(uint32_t stream_id) const {
  if (stream_id == 0 || stream_id >= streams_.size()) return nullptr;
  return streams_[stream_id].get();
}

uint32_t PacketBus::find_or_create(std::string_view stream) {
  if (auto it = by_name_.find(stream); it != by_name_.end()) return it->second;
  uint32_t id;
  if (!free_stream_ids_.empty()) {
    id = free_stream_ids_.back();
    free_stream_ids_.pop_back();
  } else {
    id = static_cast<uint32_t>(streams_.size());
    streams_.emplace_back();
  }
  auto s = std::make_unique<Stream>();
  s->name = std::string(stream);
  streams_[id] = std::move(s);
  if (std::atomic<uint32_t>* f = flag(id, true)) f->fetch_or(kExistsBit, std::memory_order_seq_cst);
  by_name_.emplace(std::string(stream), id);
  return id;
}

void PacketBus::settle(uint32_t stream_id) {
  Stream* s = lookup(stream_id);
  assert(s);
  if (s->fanout_depth > 0) return;  // the outermost publish settles when it ends
  if (s->has_tombstones) {
    std::erase_if(s->subscribers, [](const Subscriber& sub) { return sub.sink == nullptr; });
    s->has_tombstones = false;
  }
  assert(s->subscribers.size() == s->live);
  if (s->live == 0 && s->pins == 0) {
    if (std::atomic<uint32_t>* f = flag(stream_id, false)) {
      f->fetch_and(~kExistsBit, std::memory_order_seq_cst);
      if (f->load(std::memory_order_seq_cst) >= kLocalPin) {  // a media loop subscribes to it
        f->fetch_or(kExistsBit, std::memory_order_seq_cst);
        return;
      }
    }
    by_name_.erase(s->name);
    streams_[stream_id].reset();
    free_stream_ids_.push_back(stream_id);
  }
}

uint64_t PacketBus::subscribe(std::string_view stream, BusSink* sink, uint64_t cookie) {
  if (stream.empty() || !sink) return 0;
  uint32_t stream_id = find_or_create(stream);
  Stream* s = lookup(stream_id);
  uint64_t id = next_subscription_++;
  // Appending is safe during a fan-out of this stream: publish() walks by index up to the
  // size it saw when it started, so the newcomer starts with the next packet.
  s->subscribers.push_back({id, sink, cookie});
  ++s->live;
  subscriptions_.emplace(id, Subscription{stream_id, sink});
  subscription_count_atomic_.store(subscriptions_.size(), std::memory_order_relaxed);
  set_subscribed_flag(stream_id, true);
  return id;
}

bool PacketBus::unsubscribe(uint64_t subscription) {
  auto it = subscriptions_.find(subscription);
  if (it == subscriptions_.end()) return false;
  uint32_t stream_id = it->second.stream_id;
  subscriptions_.erase(it);
  subscription_count_atomic_.store(subscriptions_.size(), std::memory_order_relaxed);

  Stream* s = lookup(stream_id);
  assert(s);
  auto entry = std::find_if(s->subscribers.begin(), s->subscribers.end(),
                            [&](const Subscriber& sub) { return sub.id == subscription; });
  assert(entry != s->subscribers.end() && entry->sink);
  if (s->fanout_depth > 0) {
    entry->sink = nullptr;  // a running fan-out holds indexes into this vector
    s->has_tombstones = true;
  } else {
    s->subscribers.erase(entry);
  }
  --s->live;
  if (s->live == 0) set_subscribed_flag(stream_id, false);
  settle(stream_id);
  return true;
}

size_t PacketBus::unsubscribe_all(BusSink* sink) {
  std::vector<uint64_t> ids;
  for (const auto& [id, sub] : subscriptions_)
    if (sub.sink == sink) ids.push_back(id);
  for (uint64_t id : ids) unsubscribe(id);
  return ids.size();
}

uint32_t PacketBus::intern(std::string_view stream) {
  if (stream.empty()) return 0;
  uint32_t stream_id = find_or_create(stream);
  ++lookup(stream_id)->pins;
  return stream_id;
}

void PacketBus::release(uint32_t stream_id) {
  Stream* s = lookup(stream_id);
  assert(s && s->pins > 0 && "release() without a matching intern()");
  if (!s || s->pins == 0) return;
  --s->pins;
  settle(stream_id);
}

size_t PacketBus::publish(std::string_view stream, jn_buf* buf) {
  auto it = by_name_.find(stream);
  if (it == by_name_.end()) {
    ++unrouted_packets_;
    return 0;
  }
  return publish(it->second, buf);
}

size_t PacketBus::publish(uint32_t stream_id, jn_buf* buf) {
  Stream* s = lookup(stream_id);
  if (!s || !buf) {
    ++unrouted_packets_;
    return 0;
  }
  ++s->packets;
  s->bytes += buf->len;
  if (s->live == 0) return 0;

  // Our own reference makes the buffer shared for every sink (read-only, per the ABI) even
  // when the publisher holds the only other one.
  BufferPool* pool = BufferPool::owner(buf);
  pool->ref(buf);
  ++s->fanout_depth;
  const size_t count = s->subscribers.size();  // later subscribers wait for the next packet
  size_t delivered = 0;
  for (size_t i = 0; i < count; ++i) {
    // Copy: the sink may append to the vector (reallocating it) or tombstone this entry.
    const Subscriber sub = s->subscribers[i];
    if (!sub.sink) continue;
    sub.sink->on_bus_packet(sub.id, sub.cookie, buf);
    ++delivered;
  }
  --s->fanout_depth;
  s->deliveries += delivered;
  total_deliveries_ += delivered;
  pool->unref(buf);
  if (s->fanout_depth == 0 && (s->has_tombstones || s->live == 0)) settle(stream_id);
  return delivered;
}

bool PacketBus::stream_stats(std::string_view stream, StreamStats& out) const {
  auto it = by_name_.find(stream);
  if (it == by_name_.end()) return false;
  const Stream* s = lookup(it->second);
  out = {s->packets, s->bytes, s->deliveries, s->live};
  return true;
}

nlohmann::json PacketBus::to_json() const {
  std::vector<const Stream*> sorted;
  sorted.reserve(by_name_.size());
  for (const auto& [name, id] : by_name_) sorted.push_back(lookup(id));
  std::sort(sorted.begin(), sorted.end(),
            [](const Stream* a, const Stream* b) { return a->name < b->name; });

  nlohmann::json streams = nlohmann::json::array();
  for (const Stream* s : sorted) {
    streams.push_back({{"name", s->name},
                       {"subscribers", s->live},
                       {"packets", s->packets},
                       {"bytes", s->bytes},
                       {"deliveries", s->deliveries},
                       {"pinned", s->pins > 0}});
  }
  return {{"streams", std::move(streams)},
          {"subscriptions", subscriptions_.size()},
          {"unrouted_packets", unrouted_packets_},
          {"deliveries", total_deliveries_}};
}

}  // namespace junction
