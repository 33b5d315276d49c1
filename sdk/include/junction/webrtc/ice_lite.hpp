// ICE-lite (RFC 8445 2.5): we only answer connectivity checks. A Binding request from an address
// is valid when USERNAME is "<local ufrag>:<remote ufrag>" and MESSAGE-INTEGRITY verifies with the
// local password; it is answered with XOR-MAPPED-ADDRESS (signed with the local password and
// fingerprinted). Bad requests get 400 (USERNAME or MESSAGE-INTEGRITY missing), 401 (wrong
// credentials) or 420 (unknown comprehension-required attribute), or nothing (not parseable).
// The selected address is the latest one that nominated (USE-CANDIDATE); before any nomination,
// the latest address with a valid check (browsers facing a lite agent nominate, but an aggressive
// controller may send media first). Consent freshness (RFC 7675): no valid check for
// consent_timeout_ms -> expired.
#pragma once

#include <junction/abi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace junction::webrtc {

struct IceCredentials {
  std::string ufrag;  // ice-char, 4..256 chars (we make 8)
  std::string pwd;    // ice-char, 22..256 chars (we make 24)
};

// Random credentials from OpenSSL's CSPRNG (ICE rules: ice-char = ALPHA / DIGIT / "+" / "/").
// False when the CSPRNG cannot deliver.
bool ice_random_credentials(IceCredentials& out);

// An a=candidate value (without "a=candidate:"): host type, UDP, component 1 by default, priority
// from RFC 8445 5.1.2.1 (type preference 126, local preference 65535 - index so the first
// configured address is preferred).
// candidate_line("1", "127.0.0.1", 40000) = "1 1 udp 2130706431 127.0.0.1 40000 typ host"
std::string candidate_line(std::string_view foundation, std::string_view ip, uint16_t port,
                           uint32_t component = 1, uint16_t local_index = 0);

struct IceStats {
  uint64_t requests = 0;        // Binding requests seen
  uint64_t valid = 0;           // answered with success
  uint64_t bad_request = 0;     // answered 400
  uint64_t unauthorized = 0;    // answered 401
  uint64_t unknown_attr = 0;    // answered 420
  uint64_t malformed = 0;       // not parseable, bad fingerprint: dropped
  uint64_t ignored = 0;         // responses, indications, other methods: dropped
};

// What handle() did with one datagram.
struct IceCheck {
  size_t reply_len = 0;         // bytes of reply written to out (0: nothing to send)
  bool valid = false;           // a valid check from `from`
  bool nominated = false;       // ... with USE-CANDIDATE
  bool selected_changed = false;// selected() is now `from` and was something else
};

class IceLite {
 public:
  IceLite(IceCredentials local, IceCredentials remote, uint64_t consent_timeout_ms = 30000);

  // Remote credentials learnt later (we offered first) or changed (ICE restart). An empty remote
  // ufrag accepts any remote part of USERNAME (the local ufrag and password still must match).
  void set_remote(IceCredentials remote) { remote_ = std::move(remote); }
  const IceCredentials& local() const { return local_; }
  const IceCredentials& remote() const { return remote_; }

  // A STUN datagram from `from`. The reply (if any) is written into out[0..cap) and goes back to
  // `from`. now_ms is the caller's monotonic clock.
  IceCheck handle(const uint8_t* data, size_t len, const jn_addr& from, uint64_t now_ms, uint8_t* out, size_t cap);

  bool has_selected() const { return selected_.family != 0; }
  const jn_addr& selected() const { return selected_; }
  bool nominated() const { return nominated_; }
  // True when `a` has passed a valid check (media from it is accepted). The last few addresses.
  bool validated(const jn_addr& a) const;

  // Consent: the clock starts at the first call of start() (or the first handle()).
  void start(uint64_t now_ms) {
    if (!started_) started_ = true, last_valid_ms_ = now_ms;
  }
  bool started() const { return started_; }
  bool consent_expired(uint64_t now_ms) const { return started_ && now_ms >= consent_deadline_ms(); }
  uint64_t consent_deadline_ms() const { return last_valid_ms_ + consent_timeout_ms_; }

  const IceStats& stats() const { return stats_; }

 private:
  size_t error_reply(const uint8_t* txid, uint16_t code, std::string_view reason, uint8_t* out, size_t cap,
                     const uint16_t* unknown = nullptr, size_t n_unknown = 0);
  void remember(const jn_addr& a);

  IceCredentials local_, remote_;
  uint64_t consent_timeout_ms_;
  uint64_t last_valid_ms_ = 0;
  bool started_ = false;
  bool nominated_ = false;
  jn_addr selected_{};
  static constexpr size_t kValidated = 8;
  jn_addr validated_[kValidated]{};
  size_t validated_next_ = 0;
  IceStats stats_;
};

bool addr_equal(const jn_addr& a, const jn_addr& b);

}  // namespace junction::webrtc
