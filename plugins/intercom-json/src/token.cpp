#include "token.hpp"

#include "protocol.hpp"

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <junction/util/random.hpp>

#include <stdexcept>

namespace intercom {

const char* token_check_reason(TokenCheck c) {
  switch (c) {
    case TokenCheck::Ok: return "ok";
    case TokenCheck::Malformed: return "bad-token";
    case TokenCheck::BadSignature: return "bad-signature";
    case TokenCheck::Expired: return "expired";
  }
  return "bad-token";
}

std::string base64url(std::string_view in) { return junction::util::base64url_encode(in); }

bool base64url_decode(std::string_view in, std::string& out) { return junction::util::base64url_decode(in, out); }

std::string random_hex(size_t bytes) {
  std::string out;
  if (!junction::util::random_hex(bytes, out)) throw std::runtime_error("RAND_bytes failed");
  return out;
}

namespace {
std::string hmac(std::string_view secret, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), md, &len))
    throw std::runtime_error("HMAC failed");
  return std::string(reinterpret_cast<const char*>(md), len);
}
}  // namespace

std::string token_sign(std::string_view secret, const TokenClaims& c) {
  nlohmann::json p = {{"v", 1}, {"tid", c.tid}, {"dev", c.dev}, {"type", c.type}, {"room", c.room}, {"iat", c.iat}, {"exp", c.exp}};
  std::string body = base64url(p.dump());
  return body + "." + base64url(hmac(secret, body));
}

TokenCheck token_verify(std::string_view secret, std::string_view token, int64_t now, TokenClaims& out) {
  out = TokenClaims{};
  if (token.size() > 4096) return TokenCheck::Malformed;
  size_t dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0 || token.find('.', dot + 1) != std::string_view::npos)
    return TokenCheck::Malformed;
  std::string_view body = token.substr(0, dot);
  std::string sig, payload;
  if (!base64url_decode(token.substr(dot + 1), sig) || !base64url_decode(body, payload)) return TokenCheck::Malformed;
  std::string want = hmac(secret, body);
  if (sig.size() != want.size() || CRYPTO_memcmp(sig.data(), want.data(), want.size()) != 0) return TokenCheck::BadSignature;
  nlohmann::json p = nlohmann::json::parse(payload, nullptr, false);
  if (!p.is_object() || !p.contains("tid") || !p["tid"].is_string() || !p.contains("dev") || !p["dev"].is_string() ||
      !p.contains("type") || !p["type"].is_number_integer() || !p.contains("room") || !p["room"].is_string() ||
      !p.contains("exp") || !p["exp"].is_number_integer())
    return TokenCheck::Malformed;
  out.tid = p["tid"].get<std::string>();
  out.dev = p["dev"].get<std::string>();
  out.type = p["type"].get<int>();
  out.room = p["room"].get<std::string>();
  out.exp = p["exp"].get<int64_t>();
  out.iat = p.value("iat", int64_t{0});
  if (out.dev.empty() || !valid_peer_type(out.type)) return TokenCheck::Malformed;
  if (now >= out.exp) return TokenCheck::Expired;
  return TokenCheck::Ok;
}

}  // namespace intercom
