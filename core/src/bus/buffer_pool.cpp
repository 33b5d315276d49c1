#include "bus/buffer_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <new>

#if defined(__SANITIZE_ADDRESS__) && __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
// Idle slots are poisoned so a write through a stale jn_buf* is reported, not silently
// corrupting the next packet.
#define JN_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define JN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define JN_POISON(p, n) ((void)(p), (void)(n))
#define JN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace junction {

using detail::BufHeader;
using detail::kHeaderBytes;

namespace detail {
struct Slab {
  void* memory;
  size_t bytes;
  size_t index;           // position in BufferPool::slabs_
  uint32_t slots;
  uint32_t free;          // slots in free_head's list; == slots: the slab can go
  bool permanent;         // the prealloc slab: the floor, never trimmed
  BufHeader* free_head;   // LIFO: the next alloc reuses cache-warm memory
};
}  // namespace detail

namespace {

constexpr size_t kSlotAlign = 64;       // cache line: headers of neighbouring slots never share one
constexpr size_t kMinSlabSlots = 64;    // growth step bounds: big enough to amortise the malloc,
constexpr size_t kMaxSlabSlots = 4096;  // small enough not to overshoot max_buffers by much

uint8_t* storage_of(BufHeader* h) { return reinterpret_cast<uint8_t*>(h) + kHeaderBytes; }

// Slabs come straight from mmap, not the heap: a trimmed slab's munmap gives its pages back to
// the kernel at once. From malloc, glibc raises its mmap threshold after the first big free and
// serves the next slabs from the heap, where freeing them lowered the pool's capacity but not the
// process's RSS (seen in the soak). mmap memory is page aligned, more than kSlotAlign.
size_t page_round(size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}
void* map_slab(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}
void unmap_slab(void* p, size_t bytes) { munmap(p, bytes); }

// The trim's clock: vDSO, no syscall, a few ms of resolution (plenty for a seconds-long window).
uint64_t coarse_now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

}  // namespace

BufferPool::BufferPool(Config config) : config_(config) {
  assert(config_.buffer_size > 0);
  assert(uint64_t{config_.headroom} + config_.buffer_size <= UINT32_MAX);
  slot_capacity_ = config_.headroom + config_.buffer_size;
  slot_stride_ = (kHeaderBytes + slot_capacity_ + kSlotAlign - 1) & ~(kSlotAlign - 1);
  size_t initial = std::min(config_.prealloc, config_.max_buffers);
  if (initial > 0 && add_slab(initial)) slabs_.front()->permanent = true;
}

BufferPool::~BufferPool() {
  reclaim_remote_list();
  for (BufHeader* h : oversize_free_) {
    JN_UNPOISON(storage_of(h), h->capacity);
    h->magic = 0;
    ::operator delete(h, std::align_val_t{kSlotAlign});
  }
  assert(outstanding_ == 0 && "BufferPool destroyed with buffers still referenced");
  // In a release build a leak beats handing dangling memory to whoever still holds a buffer.
  if (outstanding_ != 0) return;
  for (Slab* s : slabs_) {
    JN_UNPOISON(s->memory, s->bytes);
    unmap_slab(s->memory, s->bytes);
    delete s;
  }
}

bool BufferPool::add_slab(size_t count) {
  assert(count > 0);
  size_t bytes = page_round(count * slot_stride_);
  void* memory = map_slab(bytes);
  if (!memory) return false;
  auto* slab = new (std::nothrow) Slab{memory, bytes, slabs_.size(), static_cast<uint32_t>(count), static_cast<uint32_t>(count), false, nullptr};
  if (!slab) {
    unmap_slab(memory, bytes);
    return false;
  }
  slabs_.push_back(slab);
  bump(capacity_buffers_, count);
  bump(bytes_reserved_, bytes);
  bump<size_t>(slab_count_, 1);
  free_slots_ += count;

  // Link back to front so the free list hands slots out in address order.
  auto* base = static_cast<uint8_t*>(memory);
  for (size_t i = count; i-- > 0;) {
    auto* h = new (base + i * slot_stride_) BufHeader{};
    h->pool = this;
    h->slab = slab;
    h->capacity = slot_capacity_;
    h->magic = detail::kBufMagic;
    h->next_free = slab->free_head;
    slab->free_head = h;
    JN_POISON(storage_of(h), slot_capacity_);
  }
  return true;
}

void BufferPool::free_slab(size_t index) {
  Slab* s = slabs_[index];
  assert(s->free == s->slots && "trimming a slab with live buffers");
  slabs_.erase(slabs_.begin() + static_cast<std::ptrdiff_t>(index));
  for (size_t i = index; i < slabs_.size(); ++i) slabs_[i]->index = i;
  free_slots_ -= s->slots;
  window_min_free_ = std::min(window_min_free_, free_slots_);
  capacity_buffers_.store(capacity_buffers() - s->slots, std::memory_order_relaxed);
  bytes_reserved_.store(bytes_reserved() - s->bytes, std::memory_order_relaxed);
  slab_count_.store(slab_count() - 1, std::memory_order_relaxed);
  bump<uint64_t>(slabs_trimmed_, 1);
  bump<uint64_t>(buffers_trimmed_, s->slots);
  JN_UNPOISON(s->memory, s->bytes);
  unmap_slab(s->memory, s->bytes);
  delete s;
}

size_t BufferPool::trim(size_t keep) {
  assert(on_owner_thread());
  size_t freed = 0;
  // Newest first: the big late slabs of a burst go; the prealloc slab (the warm one) stays.
  for (size_t i = slabs_.size(); i-- > 0;) {
    Slab* s = slabs_[i];
    if (s->permanent || s->free != s->slots || capacity_buffers() - s->slots < keep) continue;
    freed += s->slots;
    free_slab(i);
  }
  first_free_slab_ = 0;
  // The oversize cache is idle memory too (up to 16 datagrams of 64 KB): drop it unless the
  // interval used it.
  if (oversize_takes_ == window_oversize_takes_) {
    for (BufHeader* h : oversize_free_) {
      bytes_reserved_.store(bytes_reserved() - (kHeaderBytes + h->capacity), std::memory_order_relaxed);
      JN_UNPOISON(storage_of(h), h->capacity);
      h->magic = 0;
      ::operator delete(h, std::align_val_t{kSlotAlign});
    }
    oversize_free_.clear();
  }
  return freed;
}

uint64_t BufferPool::now_ms() const { return config_.clock_ms ? config_.clock_ms() : coarse_now_ms(); }

size_t BufferPool::maybe_trim() {
  assert(on_owner_thread());
  if (config_.trim_interval_ms == 0) return 0;
  const uint64_t now_ms = this->now_ms();
  if (!window_open_) {
    window_open_ = true;
    window_start_ms_ = now_ms;
    window_min_free_ = free_slots_;
    window_oversize_takes_ = oversize_takes_;
    return 0;
  }
  if (now_ms - window_start_ms_ < config_.trim_interval_ms) return 0;
  // The most slots in use at once during the window (buffers released elsewhere and not yet
  // reclaimed count as in use) plus the spare: what the next window is likely to need.
  size_t peak_used = capacity_buffers() - window_min_free_;
  size_t freed = trim(std::max(config_.prealloc, peak_used + config_.trim_keep_free));
  window_start_ms_ = now_ms;
  window_min_free_ = free_slots_;
  window_oversize_takes_ = oversize_takes_;
  return freed;
}

BufHeader* BufferPool::take_slot() {
  if (free_slots_ == 0) reclaim_remote_list();
  if (free_slots_ == 0) {
    size_t room = config_.max_buffers - capacity_buffers();
    if (room == 0) return nullptr;
    // Grow by about half the current size: few slabs overall, bounded overshoot.
    size_t step = std::clamp(capacity_buffers() / 2, kMinSlabSlots, kMaxSlabSlots);
    if (!add_slab(std::min(step, room))) return nullptr;
  }
  // The oldest slab with a free slot: the newer ones drain once a burst is over, so the trim can
  // free them. first_free_slab_ only moves back on a release into an older slab.
  while (!slabs_[first_free_slab_]->free_head) ++first_free_slab_;
  Slab* s = slabs_[first_free_slab_];
  BufHeader* h = s->free_head;
  s->free_head = h->next_free;
  --s->free;
  h->next_free = nullptr;
  if (--free_slots_ < window_min_free_) window_min_free_ = free_slots_;
  return h;
}

BufHeader* BufferPool::alloc_oversize(uint32_t capacity) {
  // A recently released one that fits (without wasting more than half of it): a socket that
  // allows 64 KB datagrams (ng, SIP) would otherwise malloc and free 64 KB per datagram, which
  // fragments the heap around the long-lived small allocations made meanwhile.
  for (size_t i = 0; i < oversize_free_.size(); ++i) {
    BufHeader* h = oversize_free_[i];
    if (h->capacity >= capacity && h->capacity / 2 <= capacity) {
      oversize_free_[i] = oversize_free_.back();
      oversize_free_.pop_back();
      ++oversize_takes_;
      return h;
    }
  }
  size_t bytes = kHeaderBytes + capacity;
  void* memory = ::operator new(bytes, std::align_val_t{kSlotAlign}, std::nothrow);
  if (!memory) return nullptr;
  auto* h = new (memory) BufHeader{};
  h->pool = this;
  h->capacity = capacity;
  h->magic = detail::kBufMagic;
  h->oversize = true;
  ++oversize_takes_;
  bump<uint64_t>(oversize_allocs_, 1);
  bump(bytes_reserved_, bytes);
  return h;
}

void BufferPool::init_buffer(BufHeader* h, uint32_t headroom, uint32_t len) {
  assert(uint64_t{headroom} + len <= h->capacity);
  JN_UNPOISON(storage_of(h), h->capacity);
  h->refcount.store(1, std::memory_order_relaxed);
  jn_buf& b = h->buf;
  b.data = storage_of(h) + headroom;
  b.len = len;
  b.headroom = headroom;
  b.tailroom = h->capacity - headroom - len;
  b.flags = 0;
  b.rx_ns = 0;
  b.src = jn_addr{};
  b.dst = jn_addr{};
  b.meta = jn_media_meta{};
  bump<size_t>(outstanding_, 1);
}

jn_buf* BufferPool::alloc(uint32_t len) {
  BufHeader* h;
  if (len <= config_.buffer_size) {
    h = take_slot();
  } else if (uint64_t{config_.headroom} + len <= UINT32_MAX) {
    h = alloc_oversize(config_.headroom + len);
  } else {
    h = nullptr;  // would not fit jn_buf's 32-bit fields
  }
  if (!h) {
    bump<uint64_t>(exhausted_, 1);
    return nullptr;
  }
  init_buffer(h, config_.headroom, len);
  return &h->buf;
}

jn_buf* BufferPool::copy(const jn_buf* src) {
  detail::header_of(src);  // asserts src is a pool buffer
  uint64_t needed = uint64_t{src->headroom} + src->len;
  BufHeader* h;
  if (needed <= slot_capacity_) {
    h = take_slot();
  } else if (needed <= UINT32_MAX) {
    h = alloc_oversize(static_cast<uint32_t>(needed));
  } else {
    h = nullptr;
  }
  if (!h) {
    bump<uint64_t>(exhausted_, 1);
    return nullptr;
  }
  init_buffer(h, src->headroom, src->len);
  jn_buf& dst = h->buf;
  if (src->len) std::memcpy(dst.data, src->data, src->len);
  dst.flags = src->flags;
  dst.rx_ns = src->rx_ns;
  dst.src = src->src;
  dst.dst = src->dst;
  dst.meta = src->meta;
  bump<uint64_t>(payload_copies_, 1);
  return &dst;
}

void BufferPool::release_from_any_thread(BufHeader* h) {
  if (on_owner_thread()) return release(h);
  // Treiber push: many producers, one consumer that takes the whole list at once (no ABA).
  BufHeader* head = remote_head_.load(std::memory_order_relaxed);
  do {
    h->next_free = head;
  } while (!remote_head_.compare_exchange_weak(head, h, std::memory_order_release, std::memory_order_relaxed));
}

size_t BufferPool::reclaim_remote() {
  size_t n = reclaim_remote_list();
  maybe_trim();
  return n;
}

size_t BufferPool::reclaim_remote_list() {
  BufHeader* list = remote_head_.exchange(nullptr, std::memory_order_acquire);
  size_t n = 0;
  while (list) {
    BufHeader* next = list->next_free;
    release(list);
    list = next;
    ++n;
  }
  return n;
}

void BufferPool::release(BufHeader* h) {
  assert(h->pool == this && "buffer returned to the wrong pool");
  assert(outstanding() > 0);
  outstanding_.store(outstanding() - 1, std::memory_order_relaxed);
  if (h->oversize) {
    if (oversize_free_.size() < kOversizeCache) {
      JN_POISON(storage_of(h), h->capacity);
      oversize_free_.push_back(h);
      return;
    }
    bytes_reserved_.store(bytes_reserved() - (kHeaderBytes + h->capacity), std::memory_order_relaxed);
    h->magic = 0;
    ::operator delete(h, std::align_val_t{kSlotAlign});
    return;
  }
  JN_POISON(storage_of(h), h->capacity);
  Slab* s = h->slab;
  h->next_free = s->free_head;
  s->free_head = h;
  ++s->free;
  ++free_slots_;
  if (s->index < first_free_slab_) first_free_slab_ = s->index;
  // The trim check rides on the releases (a media loop has no timer of its own): a clock read
  // per kTrimCheckEvery packets.
  if (++releases_ % kTrimCheckEvery == 0) maybe_trim();
}

}  // namespace junction
