// Keyframe-request rate limiting (junction/media_frame.h: producers turn "media.keyframe_request"
// events into their protocol's request, at most one per stream per interval). A request inside
// the interval is not sent but remembered: due() tells when to send it once the interval is over,
// so the last consumer that asked is not forgotten. Time comes from the caller (host->now_ns).
#pragma once

#include <cstdint>

namespace junction::media {

class KeyframeLimiter {
 public:
  static constexpr uint64_t kDefaultIntervalNs = 500'000'000;  // 500 ms (media_frame.h)
  explicit KeyframeLimiter(uint64_t min_interval_ns = kDefaultIntervalNs) : interval_(min_interval_ns) {}

  // A consumer asked. True: send the request now. False: one went out less than the interval
  // ago; it is kept pending.
  bool request(uint64_t now_ns) {
    if (!sent_ || now_ns - last_ >= interval_) {
      mark_sent(now_ns);
      return true;
    }
    pending_ = true;
    ++suppressed_;
    return false;
  }
  // A pending request whose interval is over: true once (send it now).
  bool due(uint64_t now_ns) {
    if (!pending_ || now_ns - last_ < interval_) return false;
    mark_sent(now_ns);
    return true;
  }
  // When a pending request becomes due (UINT64_MAX: none pending): a timer for due().
  uint64_t next_due_ns() const { return pending_ ? last_ + interval_ : UINT64_MAX; }
  // A keyframe arrived: whatever was pending is answered.
  void keyframe_seen() { pending_ = false; }
  uint64_t suppressed() const { return suppressed_; }

 private:
  void mark_sent(uint64_t now_ns) {
    sent_ = true;
    last_ = now_ns;
    pending_ = false;
  }
  uint64_t interval_;
  uint64_t last_ = 0;
  uint64_t suppressed_ = 0;
  bool sent_ = false;
  bool pending_ = false;
};

}  // namespace junction::media
