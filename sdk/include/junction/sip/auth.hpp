// HTTP Digest authentication for SIP (RFC 3261 22, RFC 2617, RFC 7616): a server that challenges
// and verifies, and a client that answers 401 / 407 challenges.
//
// Server nonces are self-verifying: hex(issue time, serial) + a 128-bit SipHash-2-4 MAC over them
// and the realm, keyed from the server's secret (SHA-256 of it, once), so no table entry is made
// per challenge and a nonce costs no libcrypto call. An expired nonce gives
// Verdict::Stale (answer 401 with stale=true). Replay protection (RFC 7616 3.3 nonce-count) uses
// a fixed table of nonce slots (DigestServerConfig::nc_slots): each nonce's highest nc is kept;
// an nc not above it is refused. When a slot is reused for a newer nonce, every nonce issued up to
// the evicted one counts as stale (a fresh challenge), so a forgotten nonce can never be replayed.
// A legacy answer without qop (RFC 2069 form) carries no nc: its nonce is good for one request.
// The server keeps no clock: callers pass now (seconds, monotonic or wall) to every call.
#pragma once

#include <junction/sip/builder.hpp>
#include <junction/sip/headers.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace junction::sip {

// SipHash-2-4 (Aumasson and Bernstein), a keyed PRF for short inputs: the nonce MAC, and cheap
// unpredictable tokens (tags) where a CSPRNG call per message would cost more than the message.
struct SipKey {
  uint64_t k0 = 0, k1 = 0;
};
uint64_t siphash24(const SipKey& k, const void* data, size_t len);
// The 128-bit output variant (out: 16 bytes).
void siphash24_128(const SipKey& k, const void* data, size_t len, unsigned char out[16]);

enum class DigestAlgorithm : uint8_t { MD5, MD5Sess, SHA256, SHA256Sess };
// "MD5", "MD5-sess", "SHA-256", "SHA-256-sess" (case-insensitive); false for anything else.
bool parse_algorithm(std::string_view name, DigestAlgorithm& out);
std::string_view algorithm_name(DigestAlgorithm a);

// Lowercase hex digest of text with the algorithm's hash (MD5 or SHA-256).
std::string digest_hash(DigestAlgorithm a, std::string_view text);
// H(user:realm:password) (HA1 before the -sess step).
std::string digest_ha1(DigestAlgorithm a, std::string_view user, std::string_view realm, std::string_view password);
// The request-digest (RFC 7616 3.4.1) from HA1 (as from digest_ha1). qop empty: the legacy form
// H(HA1:nonce:HA2) (nc and cnonce unused unless the algorithm is -sess).
std::string digest_response(DigestAlgorithm a, std::string_view ha1, std::string_view nonce, std::string_view nc,
                            std::string_view cnonce, std::string_view qop, std::string_view method,
                            std::string_view uri);

struct DigestServerConfig {
  std::string realm;
  std::string secret;              // key of the nonces' MAC; shorter than 16 bytes (or empty): the
                                   // server draws 32 random bytes itself (nonces then die with it)
  uint64_t nonce_ttl_s = 300;      // a nonce older than this is stale
  bool qop_auth = true;            // offer qop="auth"; false: the legacy RFC 2069 form only
  DigestAlgorithm algorithm = DigestAlgorithm::MD5;
  std::string opaque;              // sent and required back when not empty
  size_t nc_slots = 8192;          // replay table size (24 bytes a slot: 192 KiB by default)
  uint32_t retransmit_window_s = 32;  // verify() with a request fingerprint: how long the request
                                      // that used an nc may come again (64*T1: timer J's span)
};

// What verify() concluded. Only Ok is a pass.
enum class Verdict : uint8_t {
  Ok,
  Malformed,      // not Digest, a required field missing, bad nc / qop / algorithm syntax -> 401
  BadRealm,       // realm is not ours -> 401 (a fresh challenge for our realm)
  BadNonce,       // not a nonce of ours (bad MAC, from the future, opaque mismatch) -> 401
  Stale,          // our nonce, expired or forgotten -> 401 with stale=true
  UnknownUser,    // the lookup has no such user -> 403
  BadResponse,    // wrong password (or a tampered field) -> 403
  Replay,         // nc already used with this nonce -> 403
};
const char* to_string(Verdict v);
// 401 or 403 (see above); 200 for Ok.
int status_for(Verdict v);

// The user's secret: the password, or HA1 (lowercase hex of H(user:realm:password) for the
// algorithm in use) when the store keeps only that.
struct DigestSecret {
  std::string password;
  std::string ha1;
};
// False: no such user.
using DigestLookup = std::function<bool(std::string_view user, DigestSecret& out)>;

namespace detail {
struct DigestCrypto;  // auth.cpp
}

class DigestServer {
 public:
  // now_s: nonces issued before this instance existed are stale (their nc history is unknown).
  DigestServer(DigestServerConfig cfg, uint64_t now_s);

  // Header value for WWW-Authenticate / Proxy-Authenticate (out is replaced).
  void challenge(std::string& out, uint64_t now_s, bool stale = false);

  // Checks an Authorization / Proxy-Authorization header value of a request with this method.
  // The digest is computed over the header's uri= (RFC 3261 22.4: what the client signed), which
  // the caller may compare with the Request-URI for its own policy. user receives the username
  // (escapes kept) when the header had one.
  Verdict verify(std::string_view header_value, std::string_view method, uint64_t now_s, const DigestLookup& lookup,
                 std::string_view* user = nullptr);
  // The same for a stateless server (StackConfig::stateless_register), which sees a request's
  // retransmissions: request_fp is the request's fingerprint (sip::request_fingerprint, non-zero).
  // The request that last advanced a nonce's nc may come again within retransmit_window_s (same
  // nonce, nc and fingerprint) and is Ok again, as a transaction would have answered it again;
  // any other reuse of an nc is still a Replay.
  Verdict verify(std::string_view header_value, std::string_view method, uint64_t now_s, const DigestLookup& lookup,
                 std::string_view* user, uint64_t request_fp);

  const DigestServerConfig& config() const { return cfg_; }
  // HA1 (lowercase hex of H(user:realm:password)) for this server's realm and algorithm, with its
  // prefetched hash: for a caller that keeps HA1 per user (DigestSecret::ha1). Empty on failure.
  std::string ha1(std::string_view user, std::string_view password) const;

 private:
  struct Slot {
    uint64_t serial = 0;  // 0: free
    uint32_t nc = 0;
    uint32_t at_s = 0;    // when nc was accepted (low 32 bits of now_s)
    uint64_t fp = 0;      // fingerprint of the request that used nc (0: none given)
  };
  std::string make_nonce(uint64_t now_s);
  // 0: not ours; otherwise the serial; ts receives the issue time.
  uint64_t check_nonce(std::string_view nonce, uint64_t& ts) const;

  DigestServerConfig cfg_;
  // libcrypto objects fetched once per server: OpenSSL 3 would otherwise fetch the algorithm
  // (a name lookup under a lock) on every hash. Shared by copies; freed with the last one.
  std::shared_ptr<detail::DigestCrypto> crypto_;
  uint64_t serial_ = 0;      // last serial issued (time-based, so it grows across restarts)
  uint64_t watermark_ = 0;   // nonces with a serial <= this and not in the table are stale
  std::vector<Slot> slots_;
  DigestSecret scratch_;     // the lookup's answer, reused across verify() calls
};

// Which header carries a challenge / the answer for a 401 or 407 (RFC 3261 22.2 / 22.3):
// WWW-Authenticate + Authorization for 401, Proxy-Authenticate + Proxy-Authorization for 407.
inline std::string_view challenge_header(int status) {
  return status == 407 ? "Proxy-Authenticate" : "WWW-Authenticate";
}
inline std::string_view credentials_header(int status) {
  return status == 407 ? "Proxy-Authorization" : "Authorization";
}

// Client side: answers challenges (401 WWW-Authenticate, 407 Proxy-Authenticate) for one realm.
class DigestClient {
 public:
  // Takes a challenge header value. False (nothing changed) when it is not Digest, or asks for an
  // algorithm or qop this client does not do (only "auth"; auth-int is refused).
  bool set_challenge(std::string_view header_value);
  bool has_challenge() const { return !nonce_.empty(); }
  // The challenge said stale=true: the password was right, only the nonce is old.
  bool stale() const { return stale_; }
  std::string_view realm() const { return realm_; }

  // Authorization / Proxy-Authorization value for a request (method, Request-URI); counts nc.
  bool authorize(std::string_view method, std::string_view uri, std::string_view user, std::string_view password,
                 std::string& out, RandomSource rnd = system_random, void* ctx = nullptr);

 private:
  std::string realm_, nonce_, opaque_;
  DigestAlgorithm alg_ = DigestAlgorithm::MD5;
  bool qop_auth_ = false;
  bool stale_ = false;
  uint32_t nc_ = 0;
};

}  // namespace junction::sip
