// GB/T 28181 identifiers: the 20-digit codes of platforms, devices and channels (centre code 8,
// industry 2, type 3, network 1, serial 6). The first 10 digits are the SIP domain.
#pragma once

#include <string_view>

namespace gb {

// A GB code: 20 decimal digits. Older devices (GB/T 28181-2011 samples) use 18: accepted too.
inline bool is_gb_id(std::string_view s) {
  if (s.size() != 20 && s.size() != 18) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// The 3-digit type code (digits 11-13): 111-130 devices, 131-199 channels, 200 platform, 216
// virtual organisation, 215 business group.
inline std::string_view type_code(std::string_view id) { return id.size() >= 13 ? id.substr(10, 3) : std::string_view(); }

}  // namespace gb
