// Credentials of Verto users: passwords hashed with PBKDF2-HMAC-SHA256 (random 16-byte salt,
// iterations from the conf, stored as "pbkdf2-sha256$ITER$SALT_HEX$HASH_HEX" in the core's store),
// login tokens (random, stored by their SHA-256 only), channel permission patterns.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace verto {

// "" when the CSPRNG or the KDF fails (the caller refuses rather than store a weak hash).
std::string password_hash(std::string_view password, uint32_t iterations);
// Constant-time comparison of the derived key; false for a malformed record.
bool password_verify(std::string_view password, std::string_view record);

std::string sha256_hex(std::string_view data);
// A fresh token in UUID form (what XSwitch's xui_sessid looks like); "" when the CSPRNG fails.
std::string new_token();
std::string new_uuid();

// User names: 1..64 of [A-Za-z0-9._-]. "alice@example.com" logs in as "alice" (the domain part
// of a Verto login is ignored: one domain per server).
bool valid_user(std::string_view user);
std::string user_of_login(std::string_view login);

// A channel pattern: the exact name, or a prefix ending in '*' ("chat.*"), or "*" for any.
bool channel_allowed(const std::vector<std::string>& patterns, std::string_view channel);
// A channel name: 1..128 printable ASCII bytes without spaces.
bool valid_channel(std::string_view channel);

}  // namespace verto
