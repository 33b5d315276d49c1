// A generational slot table: values live in a vector, addressed by a 64-bit handle
// (generation << 32 | index). A freed index goes on a free list and is reused with the next
// generation, so a stale handle (a late packet, a timer for a call that ended) finds nothing
// instead of the slot's new owner. Handle 0 is never issued. Growth allocates; lookups do not.
//
// IdPool is the index part alone (free list + next index + a cap), for tables that keep the
// values elsewhere (rtp-relay's per-shard streams).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace junction::util {

class IdPool {
 public:
  explicit IdPool(uint32_t max = UINT32_MAX) : max_(max) {}
  // The lowest freed index first reused last-in first-out; nullopt when max indexes are in use.
  std::optional<uint32_t> acquire() {
    if (!free_.empty()) {
      uint32_t id = free_.back();
      free_.pop_back();
      return id;
    }
    if (next_ >= max_) return std::nullopt;
    return next_++;
  }
  void release(uint32_t id) { free_.push_back(id); }
  // After a restore: indexes below `next` not in use go back on the free list.
  template <class InUse>
  void rebuild(uint32_t next, InUse&& in_use) {
    next_ = next;
    free_.clear();
    for (uint32_t i = 0; i < next; ++i)
      if (!in_use(i)) free_.push_back(i);
  }
  uint32_t next() const { return next_; }
  size_t free_count() const { return free_.size(); }

 private:
  uint32_t max_;
  uint32_t next_ = 0;
  std::vector<uint32_t> free_;
};

template <class T>
class SlotTable {
 public:
  using Handle = uint64_t;

  explicit SlotTable(uint32_t max = UINT32_MAX - 1) : ids_(max) {}

  static uint32_t index_of(Handle h) { return static_cast<uint32_t>(h); }
  static uint32_t generation_of(Handle h) { return static_cast<uint32_t>(h >> 32); }

  // 0 when the table is full.
  Handle insert(T value) {
    auto id = ids_.acquire();
    if (!id) return 0;
    if (*id >= slots_.size()) slots_.resize(*id + 1);
    Slot& s = slots_[*id];
    if (++s.gen == 0) s.gen = 1;  // generation 0 never issued: handle 0 stays invalid
    s.value = std::move(value);
    ++size_;
    return make(*id, s.gen);
  }

  // Puts a value back at the handle it had (state restore); false when that slot is taken.
  // Call rebuild_free_list() once every value is back.
  bool insert_at(Handle h, T value) {
    uint32_t i = index_of(h), g = generation_of(h);
    if (g == 0 || i == UINT32_MAX) return false;
    if (i >= slots_.size()) slots_.resize(i + 1);
    Slot& s = slots_[i];
    if (s.value) return false;
    s.gen = g;
    s.value = std::move(value);
    ++size_;
    return true;
  }
  void rebuild_free_list() {
    ids_.rebuild(static_cast<uint32_t>(slots_.size()), [&](uint32_t i) { return slots_[i].value.has_value(); });
  }

  T* get(Handle h) {
    uint32_t i = index_of(h);
    if (i >= slots_.size() || !slots_[i].value || slots_[i].gen != generation_of(h)) return nullptr;
    return &*slots_[i].value;
  }
  const T* get(Handle h) const { return const_cast<SlotTable*>(this)->get(h); }

  bool erase(Handle h) {
    if (!get(h)) return false;
    uint32_t i = index_of(h);
    slots_[i].value.reset();
    ids_.release(i);
    --size_;
    return true;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // f(handle, value&) for every live slot, in index order. f must not insert or erase.
  template <class F>
  void for_each(F&& f) {
    for (uint32_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].value) f(make(i, slots_[i].gen), *slots_[i].value);
  }

 private:
  struct Slot {
    uint32_t gen = 0;
    std::optional<T> value;
  };
  static Handle make(uint32_t index, uint32_t gen) { return (static_cast<Handle>(gen) << 32) | index; }
  std::vector<Slot> slots_;
  IdPool ids_;
  size_t size_ = 0;
};

}  // namespace junction::util
