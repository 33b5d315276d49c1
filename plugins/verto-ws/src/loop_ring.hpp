// verto-ws: the hand-offs between the control loop and a media loop without a shared lock.
// SpscRing: a fixed ring with one producer thread and one consumer thread (atomics only, nothing
// allocated once built). Owner: "this state belongs to one loop", checked where it is touched
// (assert in debug builds, counted in every build so the tests can look at it).
#pragma once

#include <array>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <thread>

namespace verto {

template <typename T, size_t N>
class SpscRing {
  static_assert((N & (N - 1)) == 0, "N must be a power of two");

 public:
  // Producer side. False when full (the item is not taken).
  bool push(const T& v) {
    const size_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_.load(std::memory_order_acquire) == N) return false;
    slots_[t & (N - 1)] = v;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  // Consumer side. False when empty.
  bool pop(T& out) {
    const size_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_.load(std::memory_order_acquire)) return false;
    out = slots_[h & (N - 1)];
    head_.store(h + 1, std::memory_order_release);
    return true;
  }
  bool empty() const { return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire); }

 private:
  std::array<T, N> slots_{};
  alignas(64) std::atomic<size_t> head_{0};
  alignas(64) std::atomic<size_t> tail_{0};
};

// Which thread owns a piece of media state: the control thread while it is being set up, then
// the loop it was handed to (adopt(), called on that loop). check() is called by every function
// that touches the state; a call from any other thread is a bug (the lock this design removed
// would have been needed), so it asserts in debug builds and is counted in every build
// (violations: shared, rare; checks: per owner, written by the owner thread only).
struct OwnerStats {
  std::atomic<uint64_t> violations{0};
};

class Owner {
 public:
  void set_stats(OwnerStats* s) { stats_ = s; }
  void adopt() { id_.store(std::this_thread::get_id(), std::memory_order_release); }
  bool check() {
    const bool ok = id_.load(std::memory_order_acquire) == std::this_thread::get_id();
    if (ok) {
      checks_.store(checks_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    } else if (stats_) {
      stats_->violations.fetch_add(1, std::memory_order_relaxed);
    }
    assert(ok && "media state touched off its owner loop");
    return ok;
  }
  uint64_t checks() const { return checks_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::thread::id> id_{std::this_thread::get_id()};
  std::atomic<uint64_t> checks_{0};
  OwnerStats* stats_ = nullptr;
};

}  // namespace verto
