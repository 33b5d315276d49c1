// libsrtp2 wrapper: one direction of SDES-keyed SRTP/SRTCP (RFC 3711 / RFC 4568).
// In place: protect grows the packet by the auth tag (and the SRTCP index), so the buffer needs
// that much tailroom; unprotect shrinks it.
//
// libsrtp2's library-wide state is initialised once per process and never shut down (see
// srtp_library_init).
#pragma once

#include <junction/plugin.hpp>
#include <srtp2/srtp.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rtp_relay {

enum class SrtpSuite : uint8_t { None = 0, AesCm128Sha1_80 = 1, AesCm128Sha1_32 = 2 };

inline SrtpSuite suite_from_name(std::string_view s) {
  if (s == "AES_CM_128_HMAC_SHA1_80") return SrtpSuite::AesCm128Sha1_80;
  if (s == "AES_CM_128_HMAC_SHA1_32") return SrtpSuite::AesCm128Sha1_32;
  return SrtpSuite::None;
}
inline const char* suite_name(SrtpSuite s) {
  switch (s) {
    case SrtpSuite::AesCm128Sha1_80: return "AES_CM_128_HMAC_SHA1_80";
    case SrtpSuite::AesCm128Sha1_32: return "AES_CM_128_HMAC_SHA1_32";
    default: return "";
  }
}
constexpr size_t kSrtpKeyLen = 30;  // 16-byte master key + 14-byte master salt

// libsrtp2 keeps process-wide state (its crypto kernel and, in Debian's build, NSS) that has no
// complete shutdown, and srtp_init() succeeds once per process. So it follows the ABI's rule for
// such libraries: pinned through the core (library_pin: resident for the life of the process,
// shared by every instance across hot reloads and by any other plugin that uses it), initialised
// only by its first user, never shut down. The plugin itself still unloads normally. Then prove
// the crypto kernel works by creating a throwaway session.
inline bool srtp_works() {
  srtp_policy_t p{};
  srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
  srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
  unsigned char key[30] = {0};
  p.key = key;
  p.ssrc.type = ssrc_any_inbound;
  srtp_t s = nullptr;
  if (srtp_create(&s, &p) != srtp_err_status_ok) return false;
  srtp_dealloc(s);
  return true;
}
inline bool srtp_library_init(const junction::sdk::Host& host) {
  bool first = false;
  if (host.library_pin("libsrtp2.so.1", &first) != JN_OK) return false;
  if (first && srtp_init() != srtp_err_status_ok) return false;
  return srtp_works();
}
// Programs that are not plugins (the test tools) own their process: they just initialise it.
inline bool srtp_library_init_standalone() {
  (void)srtp_init();
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

  // inbound: unprotect packets from any SSRC; else protect packets of any SSRC.
  // known: (ssrc, roc) pairs to recreate with their rollover counters (after a reload).
  bool create(SrtpSuite suite, std::string_view key, bool inbound, const std::vector<std::pair<uint32_t, uint32_t>>& known = {}) {
    reset();
    if (suite == SrtpSuite::None || key.size() != kSrtpKeyLen) return false;
    suite_ = suite;
    key_.assign(key.data(), key.size());
    inbound_ = inbound;
    std::vector<srtp_policy_t> pol(known.size() + 1);
    for (size_t i = 0; i < pol.size(); ++i) {
      srtp_policy_t& p = pol[i];
      p = srtp_policy_t{};
      if (suite == SrtpSuite::AesCm128Sha1_80)
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
      else
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p.rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);  // RFC 4568: SRTCP always 80
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

  // len in/out. protect needs SRTP_MAX_TRAILER_LEN bytes of room after the packet.
  bool protect(uint8_t* d, uint32_t& len, bool rtcp) {
    int n = static_cast<int>(len);
    srtp_err_status_t st = rtcp ? srtp_protect_rtcp(ctx_, d, &n) : srtp_protect(ctx_, d, &n);
    if (st != srtp_err_status_ok) return false;
    len = static_cast<uint32_t>(n);
    return true;
  }
  bool unprotect(uint8_t* d, uint32_t& len, bool rtcp) {
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

}  // namespace rtp_relay
