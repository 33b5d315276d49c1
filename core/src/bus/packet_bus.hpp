// PacketBus: publish/subscribe by stream name, fanning a jn_buf out by reference.
//
// Delivery is synchronous on the publishing thread; each sink borrows the buffer for the call
// (buf_ref to keep it). The payload is never copied: every sink gets the same jn_buf*. The bus
// holds its own reference for the whole fan-out, so every sink sees the buffer as shared
// (read-only), as the ABI promises for on_bus.
//
// Re-entrancy: a sink may subscribe, unsubscribe (itself or others) or publish from inside
// on_bus_packet. While a stream is being fanned out its subscriber list is only appended to
// and tombstoned, never erased from; it is compacted when the outermost fan-out ends. A
// subscription made during a fan-out first receives the next packet; one removed during a
// fan-out receives nothing more, not even the rest of the current one.
//
// Streams exist while they have subscribers or are pinned by intern(); a stream entry is
// dropped when neither holds and no fan-out is running on it. Publishing to a stream that does
// not exist delivers nothing and is only counted (unrouted_packets), so the table stays bounded.
//
// Single-threaded, like the BufferPool whose buffers it carries (publish requires pool buffers).
#pragma once

#include <junction/abi.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace junction {

struct BusSink {
  virtual ~BusSink() = default;
  // buf is borrowed and shared (read-only); call BufferPool::ref to keep it past the call.
  virtual void on_bus_packet(uint64_t subscription, uint64_t cookie, jn_buf* buf) = 0;
};

class PacketBus {
 public:
  struct StreamStats {
    uint64_t packets = 0;     // publishes that found the stream
    uint64_t bytes = 0;       // sum of buf->len over those publishes
    uint64_t deliveries = 0;  // on_bus_packet calls
    size_t subscribers = 0;   // live subscriptions now
  };

  PacketBus();
  ~PacketBus();
  PacketBus(const PacketBus&) = delete;
  PacketBus& operator=(const PacketBus&) = delete;

  // Nonzero subscription id; 0 for an empty stream name or a null sink.
  uint64_t subscribe(std::string_view stream, BusSink* sink, uint64_t cookie);
  bool unsubscribe(uint64_t subscription);  // false when unknown or already removed
  size_t unsubscribe_all(BusSink* sink);    // how many were removed

  // Number of deliveries. The caller keeps its reference; buf must come from a BufferPool.
  size_t publish(std::string_view stream, jn_buf* buf);

  // Fast path for a long-lived publisher: resolve the name once, then publish by id with no
  // hashing per packet. intern() pins the stream (it survives having no subscribers) and
  // returns a nonzero id, valid until the matching release(). Each intern() needs one release().
  uint32_t intern(std::string_view stream);
  void release(uint32_t stream_id);
  size_t publish(uint32_t stream_id, jn_buf* buf);

  // --- introspection -----------------------------------------------------------------------
  bool stream_stats(std::string_view stream, StreamStats& out) const;  // false if no such stream
  size_t stream_count() const { return by_name_.size(); }
  size_t subscription_count() const { return subscriptions_.size(); }
  // The same, readable from a media loop's thread (relaxed; a stale answer only delays or
  // drops one hand-off around a subscribe/unsubscribe).
  size_t subscription_count_any_thread() const { return subscription_count_atomic_.load(std::memory_order_relaxed); }
  // Does the stream with this id have a live subscriber? Any thread (a media loop asks before
  // handing a packet to the control loop). Backed by a grow-only chunked array of flags that is
  // never reallocated, so a reader never sees freed memory.
  bool has_subscribers_any_thread(uint32_t stream_id) const {
    uint32_t chunk = stream_id / kFlagChunk;
    if (chunk >= kFlagChunks) return true;  // beyond the table: let the control loop decide
    const std::atomic<uint32_t>* c = flags_[chunk].load(std::memory_order_acquire);
    return c && (c[stream_id % kFlagChunk].load(std::memory_order_relaxed) & kSubscribedBit) != 0;
  }
  // Loop-local subscriptions (MediaLoop) pin a stream id from a media loop's thread, so the id is
  // not dropped and reused for another stream while a loop still delivers it. false: no stream
  // has this id (the caller gets JN_ERR_NOT_FOUND). Each successful pin needs one unpin.
  bool local_pin_any_thread(uint32_t stream_id);
  // true when this was the last local pin: the caller asks the control loop to settle_id().
  bool local_unpin_any_thread(uint32_t stream_id);
  // Control loop: drop the stream if nothing holds it any more (after the last local unpin).
  void settle_id(uint32_t stream_id) {
    if (lookup(stream_id)) settle(stream_id);
  }
  uint64_t unrouted_packets() const { return unrouted_packets_; }
  uint64_t total_deliveries() const { return total_deliveries_; }
  // {"streams":[{"name","subscribers","packets","bytes","deliveries","pinned"}...] (by name),
  //  "subscriptions", "unrouted_packets", "deliveries"}
  nlohmann::json to_json() const;

 private:
  struct Subscriber {
    uint64_t id;
    BusSink* sink;  // nullptr: a tombstone left by an unsubscribe during fan-out
    uint64_t cookie;
  };
  struct Stream {
    std::string name;
    std::vector<Subscriber> subscribers;
    size_t live = 0;            // non-tombstone entries
    uint32_t fanout_depth = 0;  // nested publishes running on this stream
    uint32_t pins = 0;          // outstanding intern() calls
    bool has_tombstones = false;
    uint64_t packets = 0, bytes = 0, deliveries = 0;
  };
  struct Subscription {
    uint32_t stream_id;
    BusSink* sink;
  };
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  uint32_t find_or_create(std::string_view stream);
  Stream* lookup(uint32_t stream_id) const;
  void settle(uint32_t stream_id);  // compact tombstones, drop the stream if unused

  // Index = stream id; slot 0 unused so 0 is never a valid id. unique_ptr keeps a Stream in
  // place while a nested call grows this vector.
  std::vector<std::unique_ptr<Stream>> streams_;
  std::vector<uint32_t> free_stream_ids_;
  std::unordered_map<std::string, uint32_t, NameHash, std::equal_to<>> by_name_;
  std::unordered_map<uint64_t, Subscription> subscriptions_;
  uint64_t next_subscription_ = 1;
  std::atomic<size_t> subscription_count_atomic_{0};
  static constexpr uint32_t kFlagChunk = 4096, kFlagChunks = 4096;  // 16M stream ids
  // Per stream id: bit 0 has control-loop subscribers, bit 1 the stream exists, bits 2.. the
  // number of loop-local pins (kLocalPin each).
  static constexpr uint32_t kSubscribedBit = 1, kExistsBit = 2, kLocalPin = 4;
  std::unique_ptr<std::atomic<std::atomic<uint32_t>*>[]> flags_;
  std::atomic<uint32_t>* flag(uint32_t stream_id, bool create);  // create: control thread only
  void set_subscribed_flag(uint32_t stream_id, bool on);  // control thread
  uint64_t unrouted_packets_ = 0;
  uint64_t total_deliveries_ = 0;
};

}  // namespace junction
