// Keepalive (保活) and registration expiry: when a registered device is due to go offline, and why.
// A device is offline once interval x count seconds passed without a keepalive (the document:
// 60 s x 3), or when its registration runs out. A device that never sent a keepalive since it
// registered is held to the same rule from its registration ("strict", the document's rule), or
// stays online while registered ("registration": a tolerance for devices that send none; one
// that sends a keepalive once is held to the rule from then on).
#pragma once

#include "conf.hpp"
#include "registry.hpp"

#include <cstdint>

namespace gb {

struct Due {
  uint64_t at = UINT64_MAX;  // ms
  const char* reason = "";
};

inline Due offline_due(const Conf& c, const DeviceLive& l) {
  Due d;
  if (!l.registered) return d;
  d = {l.expires_at, "registration expired"};
  uint64_t window = uint64_t(c.keepalive_interval_s) * c.keepalive_count * 1000;
  uint64_t since = l.last_keepalive ? l.last_keepalive : l.registered_at;
  bool held = l.last_keepalive != 0 || c.keepalive_policy == "strict";
  if (held && since + window < d.at) d = {since + window, "keepalive timeout"};
  return d;
}

// How often at most the plugin sweeps the registry (one pass over the registered devices).
inline uint64_t sweep_granularity_ms(const Conf& c) {
  uint64_t g = uint64_t(c.keepalive_interval_s) * 1000 / 4;
  return g < 250 ? 250 : g > 1000 ? 1000 : g;
}

}  // namespace gb
