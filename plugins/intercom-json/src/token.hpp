// Device tokens issued by the box (join_family's "token", section 3.1):
//   base64url(payload JSON) "." base64url(HMAC-SHA256(secret, first part))
// payload: {"v":1,"tid":token id,"dev":device id,"type":CallPeerType,"room":room,"iat":unix s,"exp":unix s}
// The signature is checked (constant time) before the payload is parsed. Revocation is a store
// lookup by tid, done by the plugin.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace intercom {

struct TokenClaims {
  std::string tid;
  std::string dev;
  int type = 0;
  std::string room;
  int64_t iat = 0;
  int64_t exp = 0;
};

enum class TokenCheck { Ok, Malformed, BadSignature, Expired };
const char* token_check_reason(TokenCheck c);  // the join_reject reason word

std::string token_sign(std::string_view secret, const TokenClaims& c);
// now: unix seconds. Expired when now >= exp.
TokenCheck token_verify(std::string_view secret, std::string_view token, int64_t now, TokenClaims& out);

std::string base64url(std::string_view bytes);
bool base64url_decode(std::string_view text, std::string& out);
std::string random_hex(size_t bytes);  // from the OpenSSL CSPRNG

}  // namespace intercom
