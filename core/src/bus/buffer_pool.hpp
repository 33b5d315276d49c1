// BufferPool: pooled, refcounted packet buffers handed to plugins as the ABI's jn_buf.
//
// Every buffer is a detail::BufHeader followed by its storage (headroom, then payload).
// jn_buf is the header's first member, so the jn_buf* a plugin holds converts back to the
// header with a cast. Buffers are carved from slabs and recycled through per-slab free lists:
// after warm-up an alloc/unref pair does no malloc. A request larger than buffer_size gets a
// one-off heap buffer with the same header, freed on its last unref.
//
// Giving memory back: a burst (a plugin's media held during a slow reload, thousands of datagrams
// queued) grows the pool by slabs. Allocation takes from the oldest slab that has a free slot, so
// once the burst is over the newer slabs drain completely; the trim frees whole slabs whose
// slots are all free, down to what the last trim_interval_ms needed at its peak plus
// trim_keep_free, never below prealloc. The owner drives it (maybe_trim) from work it does
// anyway: every kTrimCheckEvery releases and every reclaim_remote (a media loop's inbox wake)
// read a coarse clock; nothing else runs per packet but two counters and a compare.
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

struct Slab;  // bookkeeping of one slab (buffer_pool.cpp)

inline constexpr uint32_t kBufMagic = 0x4a4e4246;  // "JNBF": catches foreign jn_buf pointers

// Standard layout so &header == &header.buf.
struct BufHeader {
  jn_buf buf;              // must stay first
  BufferPool* pool;        // the pool that accounts for this buffer
  Slab* slab;              // the slab it was carved from; nullptr when oversize
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
  size_t prealloc = 1024;       // slots allocated up front; the trim never goes below this
  // Trim: every trim_interval_ms (0: never) the pool frees whole idle slabs beyond
  // max(prealloc, most slots in use at once during the interval + trim_keep_free).
  uint32_t trim_interval_ms = 10000;
  size_t trim_keep_free = 512;
  uint64_t (*clock_ms)() = nullptr;  // the trim's clock; nullptr: CLOCK_MONOTONIC_COARSE (tests set one)
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
  // Owner thread: take back buffers released on other threads. Returns how many. Also the
  // owner loop's periodic hook: runs maybe_trim with the coarse monotonic clock.
  size_t reclaim_remote();

  // Owner thread. Once per trim_interval_ms of the config's clock: frees the slabs the interval
  // did not need (see Config). Returns the slab slots freed.
  size_t maybe_trim();
  // Owner thread: frees, newest first, every slab whose slots are all free while capacity stays
  // >= keep. The prealloc slab always stays; a slab with a buffer still referenced anywhere
  // (remote list included) stays. Returns the slab slots freed.
  size_t trim(size_t keep);
  static constexpr uint32_t kTrimCheckEvery = 1024;  // releases between two clock reads

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
  size_t slab_count() const { return slab_count_.load(std::memory_order_relaxed); }
  uint64_t slabs_trimmed() const { return slabs_trimmed_.load(std::memory_order_relaxed); }  // slabs given back so far
  uint64_t buffers_trimmed() const { return buffers_trimmed_.load(std::memory_order_relaxed); }  // their slots
  const Config& config() const { return config_; }

 private:
  using Slab = detail::Slab;

  detail::BufHeader* take_slot();  // from the oldest slab with a free slot, growing by a slab if allowed
  detail::BufHeader* alloc_oversize(uint32_t capacity);
  bool add_slab(size_t count);
  void init_buffer(detail::BufHeader* h, uint32_t headroom, uint32_t len);
  void release(detail::BufHeader* h);  // owner thread
  void release_from_any_thread(detail::BufHeader* h);
  size_t reclaim_remote_list();  // reclaim_remote without the trim check (take_slot's refill)
  uint64_t now_ms() const;
  void free_slab(size_t index);
  // Single-writer counters: the owner updates them without a locked RMW.
  template <typename T>
  static void bump(std::atomic<T>& c, T delta) { c.store(c.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed); }

  Config config_;
  size_t slot_stride_;       // bytes per slab slot (header + storage, cache-line rounded)
  uint32_t slot_capacity_;   // headroom + buffer_size
  std::vector<Slab*> slabs_;   // oldest first; Slab::index is the position here
  size_t first_free_slab_ = 0; // no slab before this one has a free slot
  size_t free_slots_ = 0;      // in all slabs' free lists
  // Trim window: the fewest free slots seen since window_start_ (so the peak of slots in use).
  size_t window_min_free_ = 0;
  uint64_t window_start_ms_ = 0;
  bool window_open_ = false;
  uint64_t window_oversize_takes_ = 0;
  uint64_t oversize_takes_ = 0;  // oversize allocations (cache hits included)
  uint32_t releases_ = 0;        // wraps; every kTrimCheckEvery-th runs the trim check

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
  std::atomic<size_t> slab_count_{0};
  std::atomic<uint64_t> slabs_trimmed_{0};
  std::atomic<uint64_t> buffers_trimmed_{0};
};

}  // namespace junction
