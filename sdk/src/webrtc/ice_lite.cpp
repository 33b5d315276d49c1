// ICE-lite responder. See ice_lite.hpp.
#include <junction/webrtc/ice_lite.hpp>
#include <junction/webrtc/stun.hpp>

#include <openssl/rand.h>

#include <cstring>

namespace junction::webrtc {

bool addr_equal(const jn_addr& a, const jn_addr& b) {
  if (a.family != b.family || a.port != b.port) return false;
  return std::memcmp(a.ip, b.ip, a.family == 4 ? 4 : 16) == 0;
}

bool ice_random_credentials(IceCredentials& out) {
  static constexpr char kIceChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return false;
  // 64 symbols: 6 bits of each byte, no bias.
  out.ufrag.resize(8);
  out.pwd.resize(24);
  for (size_t i = 0; i < 8; ++i) out.ufrag[i] = kIceChars[raw[i] & 63];
  for (size_t i = 0; i < 24; ++i) out.pwd[i] = kIceChars[raw[8 + i] & 63];
  return true;
}

std::string candidate_line(std::string_view foundation, std::string_view ip, uint16_t port, uint32_t component,
                           uint16_t local_index) {
  // RFC 8445 5.1.2.1: (2^24) * type preference (126 host) + (2^8) * local preference + (256 - component).
  uint32_t local_pref = 65535u - local_index;
  uint32_t prio = (126u << 24) + (local_pref << 8) + (256u - component);
  std::string s;
  s.reserve(64);
  s.append(foundation).append(" ").append(std::to_string(component)).append(" udp ").append(std::to_string(prio));
  s.append(" ").append(ip).append(" ").append(std::to_string(port)).append(" typ host");
  return s;
}

IceLite::IceLite(IceCredentials local, IceCredentials remote, uint64_t consent_timeout_ms)
    : local_(std::move(local)), remote_(std::move(remote)), consent_timeout_ms_(consent_timeout_ms) {}

bool IceLite::validated(const jn_addr& a) const {
  for (const jn_addr& v : validated_)
    if (v.family != 0 && addr_equal(v, a)) return true;
  return false;
}

void IceLite::remember(const jn_addr& a) {
  if (validated(a)) return;
  validated_[validated_next_] = a;
  validated_next_ = (validated_next_ + 1) % kValidated;
}

size_t IceLite::error_reply(const uint8_t* txid, uint16_t code, std::string_view reason, uint8_t* out, size_t cap,
                            const uint16_t* unknown, size_t n_unknown) {
  // Not signed: the request's credentials are what failed (RFC 5389 10.1.2).
  StunBuilder b(out, cap, kStunBinding, StunClass::Error, txid);
  b.error_code(code, reason);
  if (n_unknown) b.unknown_attributes(unknown, n_unknown);
  b.fingerprint();
  return b.size();
}

IceCheck IceLite::handle(const uint8_t* data, size_t len, const jn_addr& from, uint64_t now_ms, uint8_t* out,
                         size_t cap) {
  IceCheck r;
  start(now_ms);
  StunMessage m;
  StunParse p = stun_parse(data, len, m);
  if (p != StunParse::Ok) {
    ++stats_.malformed;
    return r;
  }
  if (m.method != kStunBinding || m.cls != StunClass::Request) {
    // Indications (keepalives) and responses: we send no requests, nothing to match.
    ++stats_.ignored;
    return r;
  }
  ++stats_.requests;
  if (m.unknown_required) {
    ++stats_.unknown_attr;
    r.reply_len = error_reply(m.txid, 420, "Unknown Attribute", out, cap);
    return r;
  }
  if (!m.has_username || !m.has_integrity) {
    ++stats_.bad_request;
    r.reply_len = error_reply(m.txid, 400, "Bad Request", out, cap);
    return r;
  }
  // USERNAME = "<our ufrag>:<their ufrag>".
  std::string_view u = m.username;
  size_t colon = u.find(':');
  bool user_ok = colon != std::string_view::npos && u.substr(0, colon) == local_.ufrag &&
                 (remote_.ufrag.empty() || u.substr(colon + 1) == remote_.ufrag);
  if (!user_ok || !stun_check_integrity(data, len, m, local_.pwd)) {
    ++stats_.unauthorized;
    r.reply_len = error_reply(m.txid, 401, "Unauthorized", out, cap);
    return r;
  }
  ++stats_.valid;
  r.valid = true;
  r.nominated = m.use_candidate;
  last_valid_ms_ = now_ms;
  remember(from);
  bool change = false;
  if (m.use_candidate) {
    change = !nominated_ || !addr_equal(selected_, from);
    nominated_ = true;
  } else if (!nominated_) {
    change = !addr_equal(selected_, from);
  }
  if (change) {
    selected_ = from;
    r.selected_changed = true;
  }
  StunBuilder b(out, cap, kStunBinding, StunClass::Success, m.txid);
  b.xor_mapped_address(from).message_integrity(local_.pwd).fingerprint();
  r.reply_len = b.size();
  return r;
}

}  // namespace junction::webrtc
