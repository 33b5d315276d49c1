// STUN parse/build (RFC 5389) for ICE. See stun.hpp.
#include <junction/proto/rtp.hpp>
#include <junction/webrtc/stun.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstring>

namespace junction::webrtc {
namespace {

// Big-endian fields: the RTP helpers (one copy in the tree).
using junction::proto::rtp::rd16;
using junction::proto::rtp::rd32;
using junction::proto::rtp::wr16;
using junction::proto::rtp::wr32;
constexpr uint32_t kFingerprintXor = 0x5354554eu;

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();


// HMAC-SHA1 over data with key; out has 20 bytes.
bool hmac_sha1(std::string_view key, const uint8_t* data, size_t len, uint8_t* out) {
  unsigned int out_len = 0;
  return HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), data, len, out, &out_len) != nullptr && out_len == 20;
}

}  // namespace

uint32_t stun_crc32(const uint8_t* data, size_t len) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; ++i) c = kCrcTable[(c ^ data[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

bool is_stun(const uint8_t* data, size_t len) {
  if (len < kStunHeaderLen || data[0] > 3) return false;
  size_t body = rd16(data + 2);
  return (body & 3) == 0 && body + kStunHeaderLen == len && rd32(data + 4) == kStunMagicCookie;
}

const char* stun_parse_name(StunParse p) {
  switch (p) {
    case StunParse::Ok: return "ok";
    case StunParse::NotStun: return "not STUN";
    case StunParse::Malformed: return "malformed attributes";
    case StunParse::BadFingerprint: return "bad FINGERPRINT";
  }
  return "?";
}

StunParse stun_parse(const uint8_t* data, size_t len, StunMessage& m) {
  m = StunMessage{};
  if (!is_stun(data, len)) return StunParse::NotStun;
  uint16_t type = rd16(data);
  // Method bits M0-M11 interleaved with class bits C0 (bit 4) and C1 (bit 8).
  m.method = static_cast<uint16_t>((type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2));
  m.cls = static_cast<StunClass>(((type >> 4) & 1) | ((type >> 7) & 2));
  std::memcpy(m.txid, data + 8, 12);
  size_t off = kStunHeaderLen;
  bool after_integrity = false;
  while (off < len) {
    if (len - off < 4) return StunParse::Malformed;
    uint16_t at = rd16(data + off);
    size_t alen = rd16(data + off + 2);
    size_t padded = (alen + 3) & ~size_t{3};
    if (padded > len - off - 4) return StunParse::Malformed;
    const uint8_t* v = data + off + 4;
    if (at == kStunAttrFingerprint) {
      // FINGERPRINT is last; CRC over everything before it, with the length as sent (it already
      // counts the FINGERPRINT attribute).
      if (alen != 4 || off + 8 != len) return StunParse::Malformed;
      if ((stun_crc32(data, off) ^ kFingerprintXor) != rd32(v)) return StunParse::BadFingerprint;
      m.has_fingerprint = true;
      break;
    }
    if (after_integrity) {
      // RFC 5389 15.4: attributes after MESSAGE-INTEGRITY (other than FINGERPRINT) are ignored.
      off += 4 + padded;
      continue;
    }
    switch (at) {
      case kStunAttrUsername:
        if (alen > 513) return StunParse::Malformed;
        m.username = std::string_view(reinterpret_cast<const char*>(v), alen);
        m.has_username = true;
        break;
      case kStunAttrMessageIntegrity:
        if (alen != 20) return StunParse::Malformed;
        m.has_integrity = true;
        m.integrity_offset = off;
        after_integrity = true;
        break;
      case kStunAttrPriority:
        if (alen != 4) return StunParse::Malformed;
        m.has_priority = true;
        m.priority = rd32(v);
        break;
      case kStunAttrUseCandidate:
        if (alen != 0) return StunParse::Malformed;
        m.use_candidate = true;
        break;
      case kStunAttrIceControlling:
      case kStunAttrIceControlled:
        if (alen != 8) return StunParse::Malformed;
        (at == kStunAttrIceControlling ? m.has_controlling : m.has_controlled) = true;
        m.tiebreaker = static_cast<uint64_t>(rd32(v)) << 32 | rd32(v + 4);
        break;
      case kStunAttrErrorCode: {
        if (alen < 4 || alen > 4 + 763) return StunParse::Malformed;
        unsigned cls = v[2] & 7, num = v[3];
        if (cls < 3 || cls > 6 || num > 99) return StunParse::Malformed;
        m.has_error = true;
        m.error_code = static_cast<uint16_t>(cls * 100 + num);
        m.error_reason = std::string_view(reinterpret_cast<const char*>(v + 4), alen - 4);
        break;
      }
      case kStunAttrXorMappedAddress: {
        if (alen < 8) return StunParse::Malformed;
        uint8_t fam = v[1];
        jn_addr a{};
        a.port = static_cast<uint16_t>(rd16(v + 2) ^ (kStunMagicCookie >> 16));
        if (fam == 1 && alen == 8) {
          a.family = 4;
          for (int i = 0; i < 4; ++i) a.ip[i] = static_cast<uint8_t>(v[4 + i] ^ data[4 + i]);
        } else if (fam == 2 && alen == 20) {
          a.family = 6;
          for (int i = 0; i < 16; ++i) a.ip[i] = static_cast<uint8_t>(v[4 + i] ^ data[4 + i]);  // cookie || txid
        } else {
          return StunParse::Malformed;
        }
        m.has_xor_mapped = true;
        m.xor_mapped = a;
        break;
      }
      default:
        if (at < 0x8000 && at != kStunAttrMappedAddress && at != kStunAttrUnknownAttributes) ++m.unknown_required;
        break;
    }
    off += 4 + padded;
  }
  return StunParse::Ok;
}

bool stun_check_integrity(const uint8_t* data, size_t len, const StunMessage& m, std::string_view key) {
  if (!m.has_integrity || m.integrity_offset + 24 > len || m.integrity_offset < kStunHeaderLen) return false;
  // The HMAC covers the header (its length counting up to and including MESSAGE-INTEGRITY) and
  // the attributes before MESSAGE-INTEGRITY. Copied to the stack to patch the length (ICE checks
  // are a few hundred bytes; longer ones are refused).
  uint8_t buf[1280];
  if (m.integrity_offset > sizeof buf) return false;
  std::memcpy(buf, data, m.integrity_offset);
  wr16(buf + 2, static_cast<uint16_t>(m.integrity_offset + 24 - kStunHeaderLen));
  uint8_t mac[20];
  return hmac_sha1(key, buf, m.integrity_offset, mac) && CRYPTO_memcmp(mac, data + m.integrity_offset + 4, 20) == 0;
}

StunBuilder::StunBuilder(uint8_t* buf, size_t cap, uint16_t method, StunClass cls, const uint8_t txid[12])
    : buf_(buf), cap_(cap) {
  if (cap < kStunHeaderLen) {
    ok_ = false;
    return;
  }
  unsigned c = static_cast<unsigned>(cls);
  uint16_t type = static_cast<uint16_t>((method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) |
                                        ((c & 1) << 4) | ((c & 2) << 7));
  wr16(buf_, type);
  wr16(buf_ + 2, 0);
  wr32(buf_ + 4, kStunMagicCookie);
  std::memcpy(buf_ + 8, txid, 12);
}

void StunBuilder::set_length(size_t body_len) { wr16(buf_ + 2, static_cast<uint16_t>(body_len)); }

uint8_t* StunBuilder::attr(uint16_t type, size_t value_len) {
  size_t padded = (value_len + 3) & ~size_t{3};
  if (!ok_ || value_len > 0xffff || cap_ - len_ < 4 + padded) {
    ok_ = false;
    return nullptr;
  }
  uint8_t* p = buf_ + len_;
  wr16(p, type);
  wr16(p + 2, static_cast<uint16_t>(value_len));
  std::memset(p + 4 + value_len, 0, padded - value_len);
  len_ += 4 + padded;
  set_length(len_ - kStunHeaderLen);
  return p + 4;
}

StunBuilder& StunBuilder::username(std::string_view u) {
  if (uint8_t* v = attr(kStunAttrUsername, u.size())) std::memcpy(v, u.data(), u.size());
  return *this;
}

StunBuilder& StunBuilder::xor_mapped_address(const jn_addr& a) {
  bool v6 = a.family == 6;
  if (a.family != 4 && a.family != 6) {
    ok_ = false;
    return *this;
  }
  if (uint8_t* v = attr(kStunAttrXorMappedAddress, v6 ? 20 : 8)) {
    v[0] = 0;
    v[1] = v6 ? 2 : 1;
    wr16(v + 2, static_cast<uint16_t>(a.port ^ (kStunMagicCookie >> 16)));
    for (int i = 0; i < (v6 ? 16 : 4); ++i) v[4 + i] = static_cast<uint8_t>(a.ip[i] ^ buf_[4 + i]);
  }
  return *this;
}

StunBuilder& StunBuilder::priority(uint32_t p) {
  if (uint8_t* v = attr(kStunAttrPriority, 4)) wr32(v, p);
  return *this;
}

StunBuilder& StunBuilder::use_candidate() {
  attr(kStunAttrUseCandidate, 0);
  return *this;
}

StunBuilder& StunBuilder::ice_controlling(uint64_t t) {
  if (uint8_t* v = attr(kStunAttrIceControlling, 8)) wr32(v, static_cast<uint32_t>(t >> 32)), wr32(v + 4, static_cast<uint32_t>(t));
  return *this;
}

StunBuilder& StunBuilder::ice_controlled(uint64_t t) {
  if (uint8_t* v = attr(kStunAttrIceControlled, 8)) wr32(v, static_cast<uint32_t>(t >> 32)), wr32(v + 4, static_cast<uint32_t>(t));
  return *this;
}

StunBuilder& StunBuilder::error_code(uint16_t code, std::string_view reason) {
  if (code < 300 || code > 699) {
    ok_ = false;
    return *this;
  }
  if (reason.size() > 763) reason = reason.substr(0, 763);
  if (uint8_t* v = attr(kStunAttrErrorCode, 4 + reason.size())) {
    v[0] = v[1] = 0;
    v[2] = static_cast<uint8_t>(code / 100);
    v[3] = static_cast<uint8_t>(code % 100);
    std::memcpy(v + 4, reason.data(), reason.size());
  }
  return *this;
}

StunBuilder& StunBuilder::unknown_attributes(const uint16_t* types, size_t n) {
  if (uint8_t* v = attr(kStunAttrUnknownAttributes, 2 * n))
    for (size_t i = 0; i < n; ++i) wr16(v + 2 * i, types[i]);
  return *this;
}

StunBuilder& StunBuilder::message_integrity(std::string_view key) {
  // The length counts MESSAGE-INTEGRITY when the HMAC is computed: attr() sets it first.
  size_t before = len_;
  if (uint8_t* v = attr(kStunAttrMessageIntegrity, 20)) {
    if (!hmac_sha1(key, buf_, before, v)) ok_ = false;
  }
  return *this;
}

StunBuilder& StunBuilder::fingerprint() {
  size_t before = len_;
  if (uint8_t* v = attr(kStunAttrFingerprint, 4)) wr32(v, stun_crc32(buf_, before) ^ kFingerprintXor);
  return *this;
}

}  // namespace junction::webrtc
