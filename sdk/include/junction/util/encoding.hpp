// Byte <-> text encodings shared by the plugins (no allocation beyond the result): base64 and
// base64url (RFC 4648 sections 4 and 5) and lowercase hex.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace junction::util {

namespace detail {
inline std::string base64_encode(std::string_view in, const char* alpha, bool pad) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    out += alpha[(v >> 18) & 63];
    out += alpha[(v >> 12) & 63];
    out += alpha[(v >> 6) & 63];
    out += alpha[v & 63];
  }
  if (size_t rest = in.size() - i; rest) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out += alpha[(v >> 18) & 63];
    out += alpha[(v >> 12) & 63];
    if (rest == 2) out += alpha[(v >> 6) & 63];
    if (pad) out.append(rest == 1 ? 2 : 1, '=');
  }
  return out;
}
// url: '-' and '_' for 62 and 63; both: either alphabet (tokens written by either kind of tool).
inline bool base64_decode(std::string_view in, std::string& out, bool std_alpha, bool url_alpha) {
  out.clear();
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);  // padding is optional
  if (in.size() % 4 == 1) return false;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if ((c == '+' && std_alpha) || (c == '-' && url_alpha)) v = 62;
    else if ((c == '/' && std_alpha) || (c == '_' && url_alpha)) v = 63;
    else {
      out.clear();
      return false;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return true;
}
}  // namespace detail

// Standard alphabet, padded ("Zm8=").
inline std::string base64_encode(std::string_view bytes) {
  return detail::base64_encode(bytes, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", true);
}
// Standard alphabet, padding optional; false (out empty) on any other character.
inline bool base64_decode(std::string_view text, std::string& out) { return detail::base64_decode(text, out, true, false); }

// URL alphabet, unpadded ("Zm8"), as in JWT-style tokens.
inline std::string base64url_encode(std::string_view bytes) {
  return detail::base64_encode(bytes, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", false);
}
// Either alphabet, padding optional; false (out empty) on any other character.
inline bool base64url_decode(std::string_view text, std::string& out) { return detail::base64_decode(text, out, true, true); }

// Lowercase hex ("00ff").
inline std::string hex_encode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    out += kHex[uint8_t(c) >> 4];
    out += kHex[uint8_t(c) & 15];
  }
  return out;
}
// The value of one hex digit (either case), or -1.
inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
// Either case; false (out empty) on an odd length or a non-hex character.
inline bool hex_decode(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() % 2) return false;
  out.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    int h = hex_digit(text[i]), l = hex_digit(text[i + 1]);
    if (h < 0 || l < 0) {
      out.clear();
      return false;
    }
    out += static_cast<char>(h * 16 + l);
  }
  return true;
}

}  // namespace junction::util
