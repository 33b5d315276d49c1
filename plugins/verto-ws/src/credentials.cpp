#include "credentials.hpp"

#include <junction/util/encoding.hpp>
#include <junction/util/random.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <charconv>

namespace verto {

namespace {

bool derive(std::string_view password, std::string_view salt, uint32_t iterations, std::string& out) {
  out.assign(32, '\0');
  return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                           reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                           static_cast<int>(iterations), EVP_sha256(), 32, reinterpret_cast<unsigned char*>(out.data())) == 1;
}

}  // namespace

std::string password_hash(std::string_view password, uint32_t iterations) {
  std::string salt, key;
  if (iterations == 0 || password.size() > 4096 || !junction::util::random_bytes(16, salt) || !derive(password, salt, iterations, key))
    return {};
  return "pbkdf2-sha256$" + std::to_string(iterations) + "$" + junction::util::hex_encode(salt) + "$" + junction::util::hex_encode(key);
}

bool password_verify(std::string_view password, std::string_view record) {
  constexpr std::string_view kTag = "pbkdf2-sha256$";
  if (record.substr(0, kTag.size()) != kTag || password.size() > 4096) return false;
  record.remove_prefix(kTag.size());
  size_t a = record.find('$');
  if (a == std::string_view::npos) return false;
  size_t b = record.find('$', a + 1);
  if (b == std::string_view::npos) return false;
  uint32_t iterations = 0;
  auto [p, ec] = std::from_chars(record.data(), record.data() + a, iterations);
  if (ec != std::errc() || p != record.data() + a || iterations == 0 || iterations > 10'000'000) return false;
  std::string salt, want, got;
  if (!junction::util::hex_decode(record.substr(a + 1, b - a - 1), salt) || !junction::util::hex_decode(record.substr(b + 1), want) ||
      want.size() != 32 || !derive(password, salt, iterations, got))
    return false;
  return CRYPTO_memcmp(got.data(), want.data(), 32) == 0;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[32];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr) != 1) return {};
  return junction::util::hex_encode(std::string_view(reinterpret_cast<const char*>(md), n));
}

std::string new_uuid() {
  std::string raw;
  if (!junction::util::random_bytes(16, raw)) return {};
  raw[6] = static_cast<char>((raw[6] & 0x0f) | 0x40);  // version 4
  raw[8] = static_cast<char>((raw[8] & 0x3f) | 0x80);  // variant 10
  std::string h = junction::util::hex_encode(raw);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

std::string new_token() { return new_uuid(); }

bool valid_user(std::string_view user) {
  if (user.empty() || user.size() > 64) return false;
  for (char c : user)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

std::string user_of_login(std::string_view login) {
  size_t at = login.find('@');
  return std::string(at == std::string_view::npos ? login : login.substr(0, at));
}

bool valid_channel(std::string_view ch) {
  if (ch.empty() || ch.size() > 128) return false;
  for (char c : ch)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  return true;
}

bool channel_allowed(const std::vector<std::string>& patterns, std::string_view ch) {
  for (const auto& p : patterns) {
    if (p == ch) return true;
    if (!p.empty() && p.back() == '*' && ch.substr(0, p.size() - 1) == std::string_view(p).substr(0, p.size() - 1)) return true;
  }
  return false;
}

}  // namespace verto
