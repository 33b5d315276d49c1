// HandleTable: the core's map from opaque jn_handle values to resources.
// A handle is (generation << 32) | index. Freeing a slot bumps its generation, so a stale
// handle is refused instead of naming the slot's next occupant. Index 0 is never used, so the
// value 0 (JN_INVALID_HANDLE) is never valid.
#pragma once

#include <junction/abi.h>

#include <cassert>
#include <cstdint>
#include <memory>
#include <vector>

namespace junction {

template <typename T>
class HandleTable {
 public:
  HandleTable() { slots_.emplace_back(); }  // index 0: reserved

  jn_handle insert(std::unique_ptr<T> value) {
    uint32_t index;
    if (!free_.empty()) {
      index = free_.back();
      free_.pop_back();
    } else {
      index = static_cast<uint32_t>(slots_.size());
      slots_.emplace_back();
    }
    Slot& s = slots_[index];
    assert(!s.value);
    s.value = std::move(value);
    ++live_;
    return (static_cast<uint64_t>(s.generation) << 32) | index;
  }

  T* get(jn_handle h) const {
    uint32_t index = static_cast<uint32_t>(h & 0xffffffffu);
    uint32_t gen = static_cast<uint32_t>(h >> 32);
    if (index == 0 || index >= slots_.size()) return nullptr;
    const Slot& s = slots_[index];
    return s.generation == gen ? s.value.get() : nullptr;
  }

  // Removes and returns the resource; nullptr when the handle is stale.
  std::unique_ptr<T> take(jn_handle h) {
    if (!get(h)) return nullptr;
    uint32_t index = static_cast<uint32_t>(h & 0xffffffffu);
    Slot& s = slots_[index];
    std::unique_ptr<T> v = std::move(s.value);
    ++s.generation;
    if (s.generation == 0) s.generation = 1;
    free_.push_back(index);
    --live_;
    return v;
  }

  bool erase(jn_handle h) { return take(h) != nullptr; }
  size_t size() const { return live_; }

  // Visits every live (handle, T&) pair. The visitor must not insert or erase.
  template <typename F>
  void for_each(F&& f) const {
    for (uint32_t i = 1; i < slots_.size(); ++i)
      if (slots_[i].value) f((static_cast<uint64_t>(slots_[i].generation) << 32) | i, *slots_[i].value);
  }

 private:
  struct Slot {
    uint32_t generation = 1;
    std::unique_ptr<T> value;
  };
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  size_t live_ = 0;
};

}  // namespace junction
