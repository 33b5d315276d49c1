// libsrtp2 wrapper: one direction of SRTP/SRTCP (RFC 3711), keyed by SDES (RFC 4568, rtp-relay)
// or by DTLS-SRTP (RFC 5764, Transport). The one libsrtp2 wrapper of the tree.
// In place: protect grows the packet by the auth tag (and the SRTCP index), so the buffer needs
// that much tailroom (srtp_tailroom()); unprotect shrinks it.
//
// Header-only on purpose: a plugin that only needs SRTP (rtp-relay) links libsrtp2 alone, not the
// rest of junction::webrtc (OpenSSL SSL, usrsctp).
//
// libsrtp2's library-wide state is initialised once per process and never shut down (see
// srtp_library_init).
#pragma once

#include <junction/plugin.hpp>
#include <srtp2/srtp.h>

#include <dlfcn.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace junction::webrtc {

// AeadAes128Gcm: RFC 7714 (DTLS-SRTP profile SRTP_AEAD_AES_128_GCM), 16-byte key + 12-byte salt.
enum class SrtpSuite : uint8_t { None = 0, AesCm128Sha1_80 = 1, AesCm128Sha1_32 = 2, AeadAes128Gcm = 3 };

inline SrtpSuite suite_from_name(std::string_view s) {
  if (s == "AES_CM_128_HMAC_SHA1_80") return SrtpSuite::AesCm128Sha1_80;
  if (s == "AES_CM_128_HMAC_SHA1_32") return SrtpSuite::AesCm128Sha1_32;
  if (s == "AEAD_AES_128_GCM") return SrtpSuite::AeadAes128Gcm;
  return SrtpSuite::None;
}
inline const char* suite_name(SrtpSuite s) {
  switch (s) {
    case SrtpSuite::AesCm128Sha1_80: return "AES_CM_128_HMAC_SHA1_80";
    case SrtpSuite::AesCm128Sha1_32: return "AES_CM_128_HMAC_SHA1_32";
    case SrtpSuite::AeadAes128Gcm: return "AEAD_AES_128_GCM";
    default: return "";
  }
}
constexpr size_t kSrtpKeyLen = 30;  // AES-CM: 16-byte master key + 14-byte master salt
// Master key and salt lengths of a suite (key || salt is what create() takes).
inline size_t srtp_master_key_len(SrtpSuite) { return 16; }
inline size_t srtp_master_salt_len(SrtpSuite s) { return s == SrtpSuite::AeadAes128Gcm ? 12 : 14; }
inline size_t srtp_master_len(SrtpSuite s) {
  return s == SrtpSuite::None ? 0 : srtp_master_key_len(s) + srtp_master_salt_len(s);
}
// Bytes protect() appends: the tag (RTP), the tag + the 4-byte SRTCP index (RTCP). SRTCP uses the
// 80-bit tag for the 32-bit RTP suite (RFC 4568 / RFC 5764).
inline size_t srtp_tailroom(SrtpSuite s, bool rtcp) {
  size_t tag = s == SrtpSuite::AeadAes128Gcm ? 16 : (s == SrtpSuite::AesCm128Sha1_32 && !rtcp ? 4 : 10);
  return rtcp ? tag + 4 : tag;
}
// What any suite may append: size buffers with this much room after the packet.
constexpr size_t kSrtpMaxTailroom = 20;

inline void srtp_set_policy(SrtpSuite suite, srtp_policy_t& p) {
  switch (suite) {
    case SrtpSuite::AeadAes128Gcm:
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtp);
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtcp);
      break;
    case SrtpSuite::AesCm128Sha1_32:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p.rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);  // RFC 4568: SRTCP always 80
      break;
    default:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
      break;
  }
}

// True when libsrtp2 can create a session of this suite (its crypto kernel is up and, for GCM,
// built with a backend that has AES-GCM).
inline bool srtp_suite_works(SrtpSuite suite) {
  srtp_policy_t p{};
  srtp_set_policy(suite, p);
  unsigned char key[32] = {0};
  p.key = key;
  p.ssrc.type = ssrc_any_inbound;
  srtp_t s = nullptr;
  if (srtp_create(&s, &p) != srtp_err_status_ok) return false;
  srtp_dealloc(s);
  return true;
}
inline bool srtp_works() { return srtp_suite_works(SrtpSuite::AesCm128Sha1_80); }

// Debian builds libsrtp2 on NSS, and libsrtp2 initialises NSS optimised for space
// (NSS_INIT_OPTIMIZESPACE, in every cipher it allocates): the softoken's session-object hash then
// has 32 buckets, every SRTP packet looks its key up there, and the cost per packet grows with the
// number of SRTP sessions in the process (bench/webrtc_transport, GCM, protect + unprotect: 3.4 us
// per packet with one Transport pair, 116 us with 1000 pairs). Initialising NSS first, optimised
// for time (1024 buckets), makes libsrtp2's own NSS_InitContext calls share that initialisation:
// 12 us with 1000 pairs. In the server the core does this when a plugin first pins libsrtp2
// (library_pin), so plugins never reach around the ABI for it; programs that own their process
// (unit tests, tools, benchmarks) call this once before srtp_init (srtp_library_init_standalone).
// NSS_InitContext is found through libsrtp2's own dependencies (nothing is loaded or linked); a
// libsrtp2 built on OpenSSL just skips this. The context is never shut down.
inline void srtp_nss_for_time() {
  void* h = dlopen("libsrtp2.so.1", RTLD_NOLOAD | RTLD_LAZY);
  if (!h) return;
  using InitContext = void* (*)(const char*, const char*, const char*, const char*, void*, uint32_t);
  if (auto init = reinterpret_cast<InitContext>(dlsym(h, "NSS_InitContext"))) {
    constexpr uint32_t kReadOnly = 0x1, kNoCertDb = 0x2, kNoModDb = 0x4, kForceOpen = 0x8, kNoRootInit = 0x10;
    (void)init("", "", "", "", nullptr, kReadOnly | kNoCertDb | kNoModDb | kForceOpen | kNoRootInit);
  }
  dlclose(h);
}

// libsrtp2 keeps process-wide state (its crypto kernel and, in Debian's build, NSS) that has no
// complete shutdown, and srtp_init() succeeds once per process. So it follows the ABI's rule for
// such libraries: pinned through the core (library_pin: resident for the life of the process,
// shared by every instance across hot reloads and by any other plugin that uses it), initialised
// only by its first user, never shut down. The plugin itself still unloads normally. Then prove
// the crypto kernel works by creating a throwaway session. Every plugin using SRTP (rtp-relay,
// anything holding a webrtc::Transport) calls this at start, before its first session.
inline bool srtp_library_init(const junction::sdk::Host& host) {
  bool first = false;
  if (host.library_pin("libsrtp2.so.1", &first) != JN_OK) return false;  // the core sets NSS up for speed
  if (first && srtp_init() != srtp_err_status_ok) return false;
  return srtp_works();
}
// Programs that are not plugins (unit tests, test tools, benchmarks) own their process: they
// just initialise it.
inline bool srtp_library_init_standalone() {
  static const bool once = [] {
    srtp_nss_for_time();
    return srtp_init() == srtp_err_status_ok;
  }();
  (void)once;
  return srtp_works();
}

class SrtpSession {
 public:
  SrtpSession() = default;
  SrtpSession(const SrtpSession&) = delete;
  SrtpSession& operator=(const SrtpSession&) = delete;
  SrtpSession(SrtpSession&& o) noexcept { *this = std::move(o); }
  SrtpSession& operator=(SrtpSession&& o) noexcept {
    if (this != &o) {
      reset();
      ctx_ = std::exchange(o.ctx_, nullptr);
      suite_ = o.suite_;
      key_ = std::move(o.key_);
      inbound_ = o.inbound_;
    }
    return *this;
  }
  ~SrtpSession() { reset(); }

  // key = master key || master salt (srtp_master_len(suite) bytes).
  // inbound: unprotect packets from any SSRC; else protect packets of any SSRC.
  // known: (ssrc, roc) pairs to recreate with their rollover counters (after a reload).
  // Retransmissions (same SSRC and sequence number protected again: NACK answers) are allowed.
  bool create(SrtpSuite suite, std::string_view key, bool inbound, const std::vector<std::pair<uint32_t, uint32_t>>& known = {}) {
    reset();
    if (suite == SrtpSuite::None || key.size() != srtp_master_len(suite)) return false;
    suite_ = suite;
    key_.assign(key.data(), key.size());
    inbound_ = inbound;
    std::vector<srtp_policy_t> pol(known.size() + 1);
    for (size_t i = 0; i < pol.size(); ++i) {
      srtp_policy_t& p = pol[i];
      p = srtp_policy_t{};
      srtp_set_policy(suite, p);
      p.key = reinterpret_cast<unsigned char*>(key_.data());
      p.window_size = 1024;
      p.allow_repeat_tx = 1;
      if (i < known.size()) {
        p.ssrc.type = ssrc_specific;
        p.ssrc.value = known[i].first;
      } else {
        p.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
      }
      p.next = i + 1 < pol.size() ? &pol[i + 1] : nullptr;
    }
    if (srtp_create(&ctx_, pol.data()) != srtp_err_status_ok) {
      ctx_ = nullptr;
      return false;
    }
    for (auto& [ssrc, roc] : known) srtp_set_stream_roc(ctx_, ssrc, roc);
    return true;
  }
  void reset() {
    if (ctx_) srtp_dealloc(ctx_);
    ctx_ = nullptr;
  }
  bool valid() const { return ctx_ != nullptr; }
  SrtpSuite suite() const { return suite_; }
  const std::string& key() const { return key_; }
  bool inbound() const { return inbound_; }

  // len in/out. protect needs srtp_tailroom(suite(), rtcp) bytes of room after the packet (the
  // caller checks: libsrtp2 does not know the buffer's size).
  bool protect(uint8_t* d, uint32_t& len, bool rtcp) {
    if (!ctx_) return false;
    int n = static_cast<int>(len);
    srtp_err_status_t st = rtcp ? srtp_protect_rtcp(ctx_, d, &n) : srtp_protect(ctx_, d, &n);
    if (st != srtp_err_status_ok) return false;
    len = static_cast<uint32_t>(n);
    return true;
  }
  bool unprotect(uint8_t* d, uint32_t& len, bool rtcp) {
    if (!ctx_) return false;
    int n = static_cast<int>(len);
    srtp_err_status_t st = rtcp ? srtp_unprotect_rtcp(ctx_, d, &n) : srtp_unprotect(ctx_, d, &n);
    if (st != srtp_err_status_ok) return false;
    len = static_cast<uint32_t>(n);
    return true;
  }
  bool roc(uint32_t ssrc, uint32_t& out) const { return ctx_ && srtp_get_stream_roc(ctx_, ssrc, &out) == srtp_err_status_ok; }

 private:
  srtp_t ctx_ = nullptr;
  SrtpSuite suite_ = SrtpSuite::None;
  std::string key_;
  bool inbound_ = true;
};

}  // namespace junction::webrtc
