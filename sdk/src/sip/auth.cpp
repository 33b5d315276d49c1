#include <junction/sip/auth.hpp>

#include "chars.hpp"

#include <junction/util/encoding.hpp>
#include <junction/util/random.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <initializer_list>

namespace junction::sip {

using namespace detail;

namespace {

const EVP_MD* md_of(DigestAlgorithm a) {
  return (a == DigestAlgorithm::SHA256 || a == DigestAlgorithm::SHA256Sess) ? EVP_sha256() : EVP_md5();
}
bool is_sess(DigestAlgorithm a) { return a == DigestAlgorithm::MD5Sess || a == DigestAlgorithm::SHA256Sess; }

}  // namespace

struct detail::DigestCrypto {
  EVP_MD* md5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
  EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  SipKey nonce_key;  // the nonce MAC's key, derived from the secret once
  DigestCrypto() = default;
  DigestCrypto(const DigestCrypto&) = delete;
  DigestCrypto& operator=(const DigestCrypto&) = delete;
  ~DigestCrypto() {
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(sha256);
    EVP_MD_free(md5);
  }
  const EVP_MD* md(DigestAlgorithm a) const {
    const EVP_MD* m = (a == DigestAlgorithm::SHA256 || a == DigestAlgorithm::SHA256Sess) ? sha256 : md5;
    return m ? m : md_of(a);  // a failed fetch: the implicit one
  }
};

// ---- SipHash-2-4 (reference: https://github.com/veorq/SipHash) ----

namespace {
inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
inline uint64_t load_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
struct SipState {
  uint64_t v0, v1, v2, v3;
  void round() {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
};
// Absorbs data (with the length byte of the final block); the state is ready for finalisation.
SipState sip_absorb(const SipKey& k, const void* data, size_t len, bool wide) {
  SipState s{0x736f6d6570736575ull ^ k.k0, 0x646f72616e646f6dull ^ k.k1, 0x6c7967656e657261ull ^ k.k0,
             0x7465646279746573ull ^ k.k1};
  if (wide) s.v1 ^= 0xee;
  const auto* p = static_cast<const unsigned char*>(data);
  size_t full = len & ~size_t(7);
  for (size_t i = 0; i < full; i += 8) {
    uint64_t m = load_le64(p + i);
    s.v3 ^= m;
    s.round();
    s.round();
    s.v0 ^= m;
  }
  uint64_t b = uint64_t(len) << 56;
  for (size_t i = 0; i < (len & 7); ++i) b |= uint64_t(p[full + i]) << (8 * i);
  s.v3 ^= b;
  s.round();
  s.round();
  s.v0 ^= b;
  return s;
}
void store_le64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
}  // namespace

uint64_t siphash24(const SipKey& k, const void* data, size_t len) {
  SipState s = sip_absorb(k, data, len, false);
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

void siphash24_128(const SipKey& k, const void* data, size_t len, unsigned char out[16]) {
  SipState s = sip_absorb(k, data, len, true);
  s.v2 ^= 0xee;
  for (int i = 0; i < 4; ++i) s.round();
  store_le64(out, s.v0 ^ s.v1 ^ s.v2 ^ s.v3);
  s.v1 ^= 0xdd;
  for (int i = 0; i < 4; ++i) s.round();
  store_le64(out + 8, s.v0 ^ s.v1 ^ s.v2 ^ s.v3);
}

namespace {

// A lowercase hex digest in place (the server's checks allocate nothing); n = 0 after a failure.
struct Hex {
  char s[2 * EVP_MAX_MD_SIZE];
  size_t n = 0;
  std::string_view view() const { return {s, n}; }
};

void to_hex(const unsigned char* p, size_t len, Hex& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < len; ++i) {
    out.s[2 * i] = kHex[p[i] >> 4];
    out.s[2 * i + 1] = kHex[p[i] & 15];
  }
  out.n = 2 * len;
}

// Lowercase hex of H(p1:p2:...). crypto: a server's fetched algorithms (null: fetched per call).
bool hash_hex(DigestAlgorithm a, std::initializer_list<std::string_view> parts, detail::DigestCrypto* crypto, Hex& out) {
  out.n = 0;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const bool own = !crypto || !crypto->ctx;
  EVP_MD_CTX* ctx = own ? EVP_MD_CTX_new() : crypto->ctx;
  bool ok = ctx && EVP_DigestInit_ex(ctx, own ? md_of(a) : crypto->md(a), nullptr) == 1;
  bool first = true;
  for (std::string_view p : parts) {
    if (!first) ok = ok && EVP_DigestUpdate(ctx, ":", 1) == 1;
    first = false;
    ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(ctx, md, &len) == 1;
  if (own) EVP_MD_CTX_free(ctx);
  if (!ok) return false;  // libcrypto failure: an empty digest matches nothing
  to_hex(md, len, out);
  return true;
}

std::string hash_join(DigestAlgorithm a, std::initializer_list<std::string_view> parts,
                      detail::DigestCrypto* crypto = nullptr) {
  Hex h;
  if (!hash_hex(a, parts, crypto, h)) return {};
  return std::string(h.view());
}

// v (a quoted-string's content, escapes kept) with its escapes undone: v itself when it has
// none (the usual case: no copy), else in buf.
std::string_view unescaped(std::string_view v, std::string& buf) {
  if (v.find('\\') == std::string_view::npos) return v;
  buf.clear();
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) ++i;
    buf += v[i];
  }
  return buf;
}

// A quoted-string's content (escapes kept, as AuthHeader returns it) with its escapes undone.
std::string unescape_quoted(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) ++i;
    out += v[i];
  }
  return out;
}

void append_quoted(std::string& out, std::string_view v) {
  out += '"';
  for (char c : v) {
    if (c == '\r' || c == '\n') c = ' ';
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

// Case-insensitive, in time independent of where they differ.
bool ct_equal_hex(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || a.empty()) return false;
  unsigned diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= unsigned(uint8_t(lower(a[i])) ^ uint8_t(lower(b[i])));
  return diff == 0;
}

}  // namespace

bool parse_algorithm(std::string_view n, DigestAlgorithm& out) {
  if (iequals(n, "MD5")) out = DigestAlgorithm::MD5;
  else if (iequals(n, "MD5-sess")) out = DigestAlgorithm::MD5Sess;
  else if (iequals(n, "SHA-256")) out = DigestAlgorithm::SHA256;
  else if (iequals(n, "SHA-256-sess")) out = DigestAlgorithm::SHA256Sess;
  else return false;
  return true;
}

std::string_view algorithm_name(DigestAlgorithm a) {
  switch (a) {
    case DigestAlgorithm::MD5: return "MD5";
    case DigestAlgorithm::MD5Sess: return "MD5-sess";
    case DigestAlgorithm::SHA256: return "SHA-256";
    case DigestAlgorithm::SHA256Sess: return "SHA-256-sess";
  }
  return "MD5";
}

std::string digest_hash(DigestAlgorithm a, std::string_view text) { return hash_join(a, {text}); }

std::string digest_ha1(DigestAlgorithm a, std::string_view user, std::string_view realm, std::string_view password) {
  return hash_join(a, {user, realm, password});
}

namespace {
// The request-digest into out (n = 0 on a libcrypto failure: matches nothing).
void response_with(detail::DigestCrypto* crypto, DigestAlgorithm a, std::string_view ha1, std::string_view nonce,
                   std::string_view nc, std::string_view cnonce, std::string_view qop, std::string_view method,
                   std::string_view uri, Hex& out) {
  out.n = 0;
  Hex sess, h2;
  std::string_view h1 = ha1;
  if (is_sess(a)) {
    if (!hash_hex(a, {ha1, nonce, cnonce}, crypto, sess)) return;
    h1 = sess.view();
  }
  if (!hash_hex(a, {method, uri}, crypto, h2)) return;
  if (qop.empty())
    hash_hex(a, {h1, nonce, h2.view()}, crypto, out);
  else
    hash_hex(a, {h1, nonce, nc, cnonce, qop, h2.view()}, crypto, out);
}
}  // namespace

std::string digest_response(DigestAlgorithm a, std::string_view ha1, std::string_view nonce, std::string_view nc,
                            std::string_view cnonce, std::string_view qop, std::string_view method,
                            std::string_view uri) {
  Hex out;
  response_with(nullptr, a, ha1, nonce, nc, cnonce, qop, method, uri, out);
  return std::string(out.view());
}

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::Ok: return "ok";
    case Verdict::Malformed: return "malformed or incomplete credentials";
    case Verdict::BadRealm: return "wrong realm";
    case Verdict::BadNonce: return "nonce not issued by this server";
    case Verdict::Stale: return "stale nonce";
    case Verdict::UnknownUser: return "unknown user";
    case Verdict::BadResponse: return "wrong credentials";
    case Verdict::Replay: return "nonce-count replayed";
  }
  return "unknown";
}

int status_for(Verdict v) {
  switch (v) {
    case Verdict::Ok: return 200;
    case Verdict::UnknownUser:
    case Verdict::BadResponse:
    case Verdict::Replay: return 403;
    default: return 401;
  }
}

// ---- server ----

DigestServer::DigestServer(DigestServerConfig cfg, uint64_t now_s)
    : cfg_(std::move(cfg)), crypto_(std::make_shared<detail::DigestCrypto>()) {
  if (cfg_.nc_slots == 0) cfg_.nc_slots = 1;
  // A short secret would make nonces guessable: use a random one. If even the CSPRNG fails, the
  // secret stays empty-ish and weak, but nonces still expire and nc replays are still refused.
  if (cfg_.secret.size() < 16) {
    std::string rnd;
    if (util::random_bytes(32, rnd)) cfg_.secret = std::move(rnd);
  }
  // The MAC key: the secret's SHA-256 (any length of secret counts in full), first 16 bytes.
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  if (EVP_Digest(cfg_.secret.data(), cfg_.secret.size(), d, &dl, EVP_sha256(), nullptr) != 1 || dl < 16) {
    // No SHA-256: the secret's own bytes (at least 16 unless even the CSPRNG failed above).
    std::memset(d, 0, 16);
    std::memcpy(d, cfg_.secret.data(), cfg_.secret.size() < 16 ? cfg_.secret.size() : 16);
  }
  crypto_->nonce_key.k0 = load_le64(d);
  crypto_->nonce_key.k1 = load_le64(d + 8);
  slots_.resize(cfg_.nc_slots);
  // Serials are (time << 20 | count): a nonce of an earlier instance is at or below this.
  serial_ = watermark_ = (now_s + 1) << 20;
}

namespace {
void put64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (56 - 8 * i));
}
uint64_t get64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | uint8_t(p[i]);
  return v;
}
// SipHash-2-4-128(key, ts || serial || realm): the nonce's MAC. A PRF under a 128-bit key drawn
// from the secret, as unforgeable for this as the HMAC it replaced, at a fraction of its cost
// (no libcrypto call per nonce: the REGISTER path makes one and checks one).
void nonce_mac(const DigestServerConfig& cfg, const unsigned char* ts_serial, unsigned char* mac16, const SipKey& key) {
  unsigned char buf[16 + 256];
  std::memcpy(buf, ts_serial, 16);
  size_t n = cfg.realm.size() < 256 ? cfg.realm.size() : 256;  // a realm is short; the cap only bounds the stack buffer
  std::memcpy(buf + 16, cfg.realm.data(), n);
  siphash24_128(key, buf, 16 + n, mac16);
}
}  // namespace

// nonce = hex(issue time 8 bytes, serial 8 bytes, MAC 16 bytes): 64 hex digits.
std::string DigestServer::make_nonce(uint64_t now_s) {
  uint64_t cand = now_s << 20;
  serial_ = cand > serial_ ? cand : serial_ + 1;
  unsigned char buf[32];
  put64(buf, now_s);
  put64(buf + 8, serial_);
  nonce_mac(cfg_, buf, buf + 16, crypto_->nonce_key);
  return util::hex_encode(std::string_view(reinterpret_cast<const char*>(buf), 32));
}

uint64_t DigestServer::check_nonce(std::string_view nonce, uint64_t& ts) const {
  if (nonce.size() != 64) return 0;
  unsigned char raw[32];
  for (size_t i = 0; i < 32; ++i) {
    int h = util::hex_digit(nonce[2 * i]), l = util::hex_digit(nonce[2 * i + 1]);
    if (h < 0 || l < 0) return 0;
    raw[i] = static_cast<unsigned char>(h << 4 | l);
  }
  unsigned char mac[16];
  nonce_mac(cfg_, raw, mac, crypto_->nonce_key);
  if (CRYPTO_memcmp(mac, raw + 16, 16) != 0) return 0;
  ts = get64(reinterpret_cast<const char*>(raw));
  return get64(reinterpret_cast<const char*>(raw) + 8);
}

std::string DigestServer::ha1(std::string_view user, std::string_view password) const {
  Hex h;
  if (!hash_hex(cfg_.algorithm, {user, cfg_.realm, password}, crypto_.get(), h)) return {};
  return std::string(h.view());
}

void DigestServer::challenge(std::string& out, uint64_t now_s, bool stale) {
  out.assign("Digest realm=");
  append_quoted(out, cfg_.realm);
  out.append(", nonce=\"");
  out.append(make_nonce(now_s));
  out += '"';
  if (!cfg_.opaque.empty()) {
    out.append(", opaque=");
    append_quoted(out, cfg_.opaque);
  }
  out.append(", algorithm=");
  out.append(algorithm_name(cfg_.algorithm));
  if (cfg_.qop_auth) out.append(", qop=\"auth\"");
  if (stale) out.append(", stale=true");
}

Verdict DigestServer::verify(std::string_view header_value, std::string_view method, uint64_t now_s,
                             const DigestLookup& lookup, std::string_view* user_out) {
  return verify(header_value, method, now_s, lookup, user_out, 0);
}

Verdict DigestServer::verify(std::string_view header_value, std::string_view method, uint64_t now_s,
                             const DigestLookup& lookup, std::string_view* user_out, uint64_t request_fp) {
  AuthHeader a;
  if (!parse_auth(header_value, a) || !iequals(a.scheme, "Digest")) return Verdict::Malformed;
  // One walk over the parameters (parse_auth refused duplicates), not one per field.
  std::string_view username, realm, nonce, uri, response, alg_name, qop, nc, cnonce, opaque;
  enum : unsigned { kUser = 1, kRealm = 2, kNonce = 4, kUri = 8, kResponse = 16, kAlg = 32, kQop = 64, kNc = 128,
                    kCnonce = 256, kOpaque = 512 };
  unsigned present = 0;
  {
    struct Field {
      std::string_view name;
      std::string_view* out;
      unsigned bit;
    };
    const Field fields[] = {{"username", &username, kUser}, {"realm", &realm, kRealm},    {"nonce", &nonce, kNonce},
                            {"uri", &uri, kUri},             {"response", &response, kResponse},
                            {"algorithm", &alg_name, kAlg},  {"qop", &qop, kQop},         {"nc", &nc, kNc},
                            {"cnonce", &cnonce, kCnonce},    {"opaque", &opaque, kOpaque}};
    size_t cur = 0;
    std::string_view n, v;
    while (a.next(cur, n, v))
      for (const Field& f : fields)
        if (iequals(n, f.name)) {
          *f.out = v;
          present |= f.bit;
          break;
        }
  }
  const unsigned required = kUser | kRealm | kNonce | kUri | kResponse;
  if ((present & required) != required) return Verdict::Malformed;
  if (user_out) *user_out = username;
  if (username.empty() || uri.empty() || response.empty()) return Verdict::Malformed;
  DigestAlgorithm alg = DigestAlgorithm::MD5;
  if ((present & kAlg) && !parse_algorithm(alg_name, alg)) return Verdict::Malformed;
  if (alg != cfg_.algorithm) return Verdict::Malformed;
  bool has_qop = (present & kQop) != 0;
  uint32_t nc_value = 1;
  if (cfg_.qop_auth) {
    // We offered qop=auth: an answer without it would be a downgrade.
    if (!has_qop || !iequals(qop, "auth")) return Verdict::Malformed;
    if (!(present & kNc) || nc.size() != 8 || !(present & kCnonce) || cnonce.empty()) return Verdict::Malformed;
    nc_value = 0;
    for (char c : nc) {
      int d = util::hex_digit(c);
      if (d < 0) return Verdict::Malformed;
      nc_value = (nc_value << 4) | uint32_t(d);
    }
    if (nc_value == 0) return Verdict::Malformed;
  } else {
    if (has_qop) return Verdict::Malformed;  // cnonce, if any, is only used by -sess
  }
  std::string buf;  // allocated only for a value with escapes
  if (unescaped(realm, buf) != cfg_.realm) return Verdict::BadRealm;
  uint64_t ts = 0;
  uint64_t serial = check_nonce(nonce, ts);
  if (!serial) return Verdict::BadNonce;
  if (!cfg_.opaque.empty() && (!(present & kOpaque) || unescaped(opaque, buf) != cfg_.opaque))
    return Verdict::BadNonce;
  if (now_s > ts && now_s - ts > cfg_.nonce_ttl_s) return Verdict::Stale;

  std::string user_buf, uri_buf;
  std::string_view user_plain = unescaped(username, user_buf);
  DigestSecret& secret = scratch_;  // reused: its strings keep their capacity
  secret.password.clear();
  secret.ha1.clear();
  if (!lookup || !lookup(user_plain, secret)) return Verdict::UnknownUser;
  Hex ha1_hex;
  std::string_view ha1 = secret.ha1;
  if (ha1.empty()) {
    hash_hex(alg, {user_plain, cfg_.realm, secret.password}, crypto_.get(), ha1_hex);
    ha1 = ha1_hex.view();
  }
  Hex expect;
  response_with(crypto_.get(), alg, ha1, nonce, nc, cnonce, cfg_.qop_auth ? "auth" : "", method, unescaped(uri, uri_buf),
                expect);
  secret.password.assign(secret.password.size(), '\0');  // not left lying around longer than needed
  if (ha1.empty() || !ct_equal_hex(expect.view(), response)) return Verdict::BadResponse;

  // Replay: only now (a correct response) may the nonce's nc history change.
  Slot& s = slots_[size_t((serial * 0x9E3779B97F4A7C15ull) >> 20) % slots_.size()];
  if (s.serial == serial) {
    if (request_fp && nc_value == s.nc && request_fp == s.fp && uint32_t(now_s) - s.at_s <= cfg_.retransmit_window_s)
      return Verdict::Ok;  // the same request again (stateless server): what its transaction would answer
    if (nc_value <= s.nc) return cfg_.qop_auth ? Verdict::Replay : Verdict::Stale;
    s.nc = nc_value;
    s.at_s = uint32_t(now_s);
    s.fp = request_fp;
    return Verdict::Ok;
  }
  if (serial <= watermark_) return Verdict::Stale;  // forgotten (evicted) or older than this instance
  if (s.serial > serial) {
    // The slot holds a newer nonce: this one is given up for good.
    watermark_ = serial > watermark_ ? serial : watermark_;
    return Verdict::Stale;
  }
  if (s.serial) watermark_ = s.serial > watermark_ ? s.serial : watermark_;
  s.serial = serial;
  s.nc = nc_value;
  s.at_s = uint32_t(now_s);
  s.fp = request_fp;
  return Verdict::Ok;
}

// ---- client ----

namespace {
std::string_view opaque_view(const AuthHeader& a) { return a.value("opaque"); }
}  // namespace

bool DigestClient::set_challenge(std::string_view header_value) {
  AuthHeader a;
  if (!parse_auth(header_value, a) || !iequals(a.scheme, "Digest")) return false;
  std::string_view realm, nonce, alg_name, qop, stale, opaque;
  if (!a.get("realm", realm) || !a.get("nonce", nonce) || nonce.empty()) return false;
  DigestAlgorithm alg = DigestAlgorithm::MD5;
  if (a.get("algorithm", alg_name) && !parse_algorithm(alg_name, alg)) return false;
  bool qop_auth = false;
  if (a.get("qop", qop)) {
    // qop="auth,auth-int": pick auth; a challenge without auth in its list cannot be answered.
    std::string_view rest = qop, v;
    while (next_value(rest, v))
      if (iequals(v, "auth")) qop_auth = true;
    if (!qop_auth) return false;
  }
  // Values we echo back must be plain text: a control character (CR, LF, NUL...) in realm, nonce
  // or opaque would be an injection attempt or garbage; such a challenge is not answered.
  for (std::string_view v : {realm, nonce, opaque_view(a)})
    for (char c : v)
      if ((uint8_t(c) < 0x20 && c != '\t') || c == 0x7f) return false;
  std::string new_nonce = unescape_quoted(nonce);
  if (new_nonce != nonce_) nc_ = 0;
  nonce_ = std::move(new_nonce);
  realm_ = unescape_quoted(realm);
  opaque_ = a.get("opaque", opaque) ? unescape_quoted(opaque) : std::string();
  alg_ = alg;
  qop_auth_ = qop_auth;
  stale_ = a.get("stale", stale) && iequals(stale, "true");
  return true;
}

bool DigestClient::authorize(std::string_view method, std::string_view uri, std::string_view user,
                             std::string_view password, std::string& out, RandomSource rnd, void* ctx) {
  out.clear();
  if (nonce_.empty()) return false;
  std::string cnonce;
  if (qop_auth_ || is_sess(alg_)) {
    std::string raw;
    if (!rnd || !rnd(ctx, 8, raw) || raw.size() != 8) return false;
    cnonce = util::hex_encode(raw);
  }
  char nc[9] = {0};
  if (qop_auth_) {
    ++nc_;
    static constexpr char kHex[] = "0123456789abcdef";
    for (int i = 0; i < 8; ++i) nc[i] = kHex[(nc_ >> (28 - 4 * i)) & 15];
  }
  std::string ha1 = digest_ha1(alg_, user, realm_, password);
  std::string resp = digest_response(alg_, ha1, nonce_, qop_auth_ ? std::string_view(nc, 8) : std::string_view(), cnonce,
                                     qop_auth_ ? "auth" : "", method, uri);
  out.assign("Digest username=");
  append_quoted(out, user);
  out.append(", realm=");
  append_quoted(out, realm_);
  out.append(", nonce=");
  append_quoted(out, nonce_);
  out.append(", uri=");
  append_quoted(out, uri);
  out.append(", response=\"");
  out.append(resp);
  out.append("\", algorithm=");
  out.append(algorithm_name(alg_));
  if (!cnonce.empty()) {
    out.append(", cnonce=\"");
    out.append(cnonce);
    out += '"';
  }
  if (!opaque_.empty()) {
    out.append(", opaque=");
    append_quoted(out, opaque_);
  }
  if (qop_auth_) {
    out.append(", qop=auth, nc=");
    out.append(nc, 8);
  }
  return true;
}

}  // namespace junction::sip
