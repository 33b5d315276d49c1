// Character classes of the SIP grammar (RFC 3261 25.1), shared by the parsers of this library.
#pragma once

#include <cstdint>
#include <string_view>
#include <junction/util/text.hpp>

namespace junction::sip::detail {

constexpr bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
constexpr bool is_lws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
constexpr bool is_wsp(char c) { return c == ' ' || c == '\t'; }
// token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
struct TokenTable {
  bool t[256]{};
  constexpr TokenTable() {
    for (int c = 0; c < 256; ++c)
      t[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    for (char c : {'-', '.', '!', '%', '*', '_', '+', '`', '\'', '~'}) t[static_cast<unsigned char>(c)] = true;
  }
};
inline constexpr TokenTable kTokenTable;
constexpr bool is_token_char(char c) { return kTokenTable.t[static_cast<unsigned char>(c)]; }
constexpr char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }

// Case-insensitive ASCII equality, inline for the parser's inner loops.
inline bool iequal(std::string_view a, std::string_view b) { return util::ascii_iequals(a, b); }

inline std::string_view ltrim(std::string_view v) {
  size_t i = 0;
  while (i < v.size() && is_lws(v[i])) ++i;
  return v.substr(i);
}
inline std::string_view rtrim(std::string_view v) {
  while (!v.empty() && is_lws(v.back())) v.remove_suffix(1);
  return v;
}
inline std::string_view trim(std::string_view v) { return rtrim(ltrim(v)); }

// Index just past the quoted string starting at v[i] == '"', or npos when it is not terminated.
inline size_t skip_quoted(std::string_view v, size_t i) {
  for (++i; i < v.size(); ++i) {
    if (v[i] == '\\') {
      ++i;
      continue;
    }
    if (v[i] == '"') return i + 1;
  }
  return std::string_view::npos;
}

// Decimal digits to a number bounded by max; false on anything else or an overflow.
inline bool to_uint(std::string_view s, uint64_t max, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    v = v * 10 + uint64_t(c - '0');
    if (v > max) return false;
  }
  out = v;
  return true;
}

}  // namespace junction::sip::detail
