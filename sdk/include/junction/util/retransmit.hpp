// Requests that are re-sent every `interval_ms` until acknowledged or `max_resends` re-sends
// have gone unanswered (an XXXCID door or phone command, a SIP transaction over UDP). The
// helper owns no timer and touches no loop: the plugin drives it from its own host timer
// (host.timer periodic tick, or a one-shot armed at next_due()), passing host.now_ms(). The
// payload (the bytes to re-send) is kept with the entry so a resend allocates nothing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace junction::util {

template <class Key, class Payload>
class Retransmit {
 public:
  struct Entry {
    Payload payload{};
    uint64_t due = 0;   // next re-send (host.now_ms() time)
    uint32_t tries = 0; // re-sends so far (the first send is not one)
  };

  Retransmit(uint64_t interval_ms = 500, uint32_t max_resends = 8) : interval_(interval_ms), max_(max_resends) {}
  void set_policy(uint64_t interval_ms, uint32_t max_resends) { interval_ = interval_ms, max_ = max_resends; }

  // Starts (or restarts: tries back to 0) the entry for key; the caller sends the first copy.
  Entry& start(const Key& key, Payload payload, uint64_t now) {
    Entry& e = pending_[key];
    e.payload = std::move(payload);
    e.due = now + interval_;
    e.tries = 0;
    return e;
  }
  // An entry as saved by save_state (due and tries carried over a reload).
  void restore(const Key& key, Payload payload, uint64_t due, uint32_t tries) { pending_[key] = Entry{std::move(payload), due, tries}; }

  // The answer came: true when it was pending (else the answer is stale or a duplicate).
  bool ack(const Key& key) { return pending_.erase(key) != 0; }
  bool pending(const Key& key) const { return pending_.count(key) != 0; }
  void clear() { pending_.clear(); }
  bool empty() const { return pending_.empty(); }
  size_t size() const { return pending_.size(); }
  const std::map<Key, Entry>& entries() const { return pending_; }

  // The earliest due time, for a one-shot host timer.
  std::optional<uint64_t> next_due() const {
    std::optional<uint64_t> d;
    for (auto& [k, e] : pending_)
      if (!d || e.due < *d) d = e.due;
    return d;
  }

  // Re-sends what is due: resend(key, payload) for each entry with tries left (its due moves
  // on by interval), then gave_up(key) for each entry whose re-sends ran out; those are
  // removed before gave_up runs, so gave_up may start, ack or clear entries.
  template <class Resend, class GaveUp>
  void poll(uint64_t now, Resend&& resend, GaveUp&& gave_up) {
    std::vector<Key> exhausted;
    for (auto& [key, e] : pending_) {
      if (e.due > now) continue;
      if (e.tries >= max_) {
        exhausted.push_back(key);
        continue;
      }
      ++e.tries;
      e.due = now + interval_;
      resend(key, e.payload);
    }
    for (auto& key : exhausted) pending_.erase(key);
    for (auto& key : exhausted) gave_up(key);
  }

 private:
  uint64_t interval_;
  uint32_t max_;
  std::map<Key, Entry> pending_;
};

}  // namespace junction::util
