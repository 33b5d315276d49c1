// BufferPool: pooled, refcounted packet buffers handed to plugins as the ABI's jn_buf.
//
// Every buffer is a detail::BufHeader followed by its storage (headroom, then payload).
// jn_buf is the header's first member, so the jn_buf* a plugin holds converts back to the
// header with a cast. Buffers are carved from slabs and recycled through a free list: after
// warm-up an alloc/unref pair does no malloc. A request larger than buffer_size gets a one-off
// heap buffer with the same header, freed on its last unref.
//
// Threading: a pool belongs to one loop thread (its owner: the control loop, or one media
// loop), which alone allocates from it. Buffers may travel: the refcount is atomic (an
// uncontended RMW, a few ns against the microseconds a datagram costs in the kernel), and a
// buffer whose last reference is dropped on another thread goes onto the pool's lock-free
// remote list, which the owner reclaims when its own free list runs dry.
#pragma once

#include <junction/abi.h>

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace junction {

class BufferPool;

namespace detail {

inline constexpr uint32_t kBufMagic = 0x4a4e4246;  // "JNBF": catches foreign jn_buf pointers

// Standard layout so &header == &header.buf.
struct BufHeader {
  jn_buf buf;              // must stay first
  BufferPool* pool;        // the pool that accounts for this buffer
  BufHeader* next_free;    // free-list link while idle
  std::atomic<uint32_t> refcount;  // atomic: buffers may be released on another thread
  uint32_t capacity;       // storage bytes after the header (headroom + payload room)
  uint32_t magic;
  bool oversize;           // a one-off heap buffer, not a slab slot

  static BufHeader* from(jn_buf* b) { return reinterpret_cast<BufHeader*>(b); }
  static const BufHeader* from(const jn_buf* b) { return reinterpret_cast<const BufHeader*>(b); }
};

static_assert(std::is_standard_layout_v<BufHeader> && offsetof(BufHeader, buf) == 0);

// Storage starts this many bytes after the header, 16-byte aligned.
inline constexpr size_t kHeaderBytes = (sizeof(BufHeader) + 15) & ~size_t{15};

inline BufHeader* header_of(jn_buf* buf) {
  assert(buf && BufHeader::from(buf)->magic == kBufMagic && "not a BufferPool buffer");
  return BufHeader::from(buf);
}
inline const BufHeader* header_of(const jn_buf* buf) {
  assert(buf && BufHeader::from(buf)->magic == kBufMagic && "not a BufferPool buffer");
  return BufHeader::from(buf);
}

}  // namespace detail

struct BufferPoolConfig {
  uint32_t headroom = 128;      // bytes before data, for prepending headers in place
  uint32_t buffer_size = 2048;  // payload capacity after headroom
  size_t max_buffers = 262144;  // slab slots ever allocated; alloc fails beyond this
  size_t prealloc = 1024;       // slots allocated up front
};

class BufferPool {
 public:
  // Declared outside the class: g++ refuses a nested struct's default member initializers in a
  // default argument of the enclosing class.
  using Config = BufferPoolConfig;

  explicit BufferPool(Config config = {});
  ~BufferPool();  // asserts that no buffer is outstanding
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // refcount 1, data = storage + headroom, len = len, flags/rx_ns/src/dst/meta cleared.
  // nullptr when the pool is at max_buffers (or the heap refuses an oversize buffer).
  jn_buf* alloc(uint32_t len);

  // ref/unref work on any pool's buffer from any thread (the buffer knows its pool).
  static void ref(jn_buf* buf) {
    detail::BufHeader* h = detail::header_of(buf);
    [[maybe_unused]] uint32_t before = h->refcount.fetch_add(1, std::memory_order_relaxed);
    assert(before > 0 && "ref of a released buffer");
  }
  static void unref(jn_buf* buf) {
    detail::BufHeader* h = detail::header_of(buf);
    uint32_t before = h->refcount.fetch_sub(1, std::memory_order_acq_rel);
    assert(before > 0 && "unref of a released buffer");
    if (before == 1) h->pool->release_from_any_thread(h);
  }
  static bool is_shared(const jn_buf* buf) { return detail::header_of(buf)->refcount.load(std::memory_order_acquire) > 1; }

  // The owner thread is the constructing thread until adopted by another (a media loop's pool
  // is built on the control thread and adopted by the loop's thread before first use).
  void adopt_current_thread() { owner_ = std::this_thread::get_id(); }
  bool on_owner_thread() const { return std::this_thread::get_id() == owner_; }
  // Owner thread: take back buffers released on other threads. Returns how many.
  size_t reclaim_remote();

  // A private copy (refcount 1) of any pool's buffer, allocated from this pool, with data at
  // the same headroom offset and the same flags/rx_ns/src/dst/meta. nullptr when allocation fails.
  jn_buf* copy(const jn_buf* buf);

  // The pool a buffer must be returned to (ref/unref go through it).
  static BufferPool* owner(const jn_buf* buf) { return detail::header_of(buf)->pool; }

  // --- stats -----------------------------------------------------------------------------
  // Readable from any thread (relaxed atomics written by the owner only).
  uint64_t payload_copies() const { return payload_copies_.load(std::memory_order_relaxed); }
  size_t outstanding() const { return outstanding_.load(std::memory_order_relaxed); }  // live, incl. oversize and not yet reclaimed
  size_t capacity_buffers() const { return capacity_buffers_.load(std::memory_order_relaxed); }  // slab slots allocated
  uint64_t exhausted_count() const { return exhausted_.load(std::memory_order_relaxed); }  // allocs that returned nullptr
  uint64_t oversize_allocs() const { return oversize_allocs_.load(std::memory_order_relaxed); }
  size_t bytes_reserved() const { return bytes_reserved_.load(std::memory_order_relaxed); }  // slabs + live oversize buffers
  const Config& config() const { return config_; }

 private:
  struct Slab {
    void* memory;
    size_t bytes;
  };

  detail::BufHeader* take_slot();  // from the free list, growing by a slab if allowed
  detail::BufHeader* alloc_oversize(uint32_t capacity);
  bool add_slab(size_t count);
  void init_buffer(detail::BufHeader* h, uint32_t headroom, uint32_t len);
  void release(detail::BufHeader* h);  // owner thread
  void release_from_any_thread(detail::BufHeader* h);
  // Single-writer counters: the owner updates them without a locked RMW.
  template <typename T>
  static void bump(std::atomic<T>& c, T delta) { c.store(c.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed); }

  Config config_;
  size_t slot_stride_;       // bytes per slab slot (header + storage, cache-line rounded)
  uint32_t slot_capacity_;   // headroom + buffer_size
  std::vector<Slab> slabs_;
  detail::BufHeader* free_head_ = nullptr;

  static constexpr size_t kOversizeCache = 16;  // released oversize buffers kept for reuse
  std::vector<detail::BufHeader*> oversize_free_;
  std::thread::id owner_ = std::this_thread::get_id();
  std::atomic<detail::BufHeader*> remote_head_{nullptr};  // released elsewhere, not yet reclaimed

  std::atomic<uint64_t> payload_copies_{0};
  std::atomic<size_t> outstanding_{0};
  std::atomic<size_t> capacity_buffers_{0};
  std::atomic<uint64_t> exhausted_{0};
  std::atomic<uint64_t> oversize_allocs_{0};
  std::atomic<size_t> bytes_reserved_{0};
};

}  // namespace junction
