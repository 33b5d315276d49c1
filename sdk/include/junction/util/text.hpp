// ASCII text helpers shared by the core and the plugins (protocol names, header names, tokens:
// never locale-dependent, never allocating).
#pragma once

#include <string_view>

namespace junction::util {

constexpr char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Case-insensitive equality of ASCII text (bytes >= 0x80 compare exactly).
constexpr bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

}  // namespace junction::util
