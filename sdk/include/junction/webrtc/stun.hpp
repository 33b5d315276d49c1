// STUN (RFC 5389) as ICE (RFC 8445) uses it: parse and build Binding requests and responses with
// USERNAME, MESSAGE-INTEGRITY (HMAC-SHA1, short-term credentials), FINGERPRINT (CRC-32 xor
// 0x5354554e), XOR-MAPPED-ADDRESS, PRIORITY, USE-CANDIDATE, ICE-CONTROLLING/ICE-CONTROLLED and
// ERROR-CODE. No allocation: the parser returns views into the datagram, the builder writes into
// the caller's buffer.
#pragma once

#include <junction/abi.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace junction::webrtc {

constexpr uint32_t kStunMagicCookie = 0x2112A442u;
constexpr uint16_t kStunBinding = 0x0001;
constexpr size_t kStunHeaderLen = 20;

enum class StunClass : uint8_t { Request = 0, Indication = 1, Success = 2, Error = 3 };

enum StunAttr : uint16_t {
  kStunAttrMappedAddress = 0x0001,
  kStunAttrUsername = 0x0006,
  kStunAttrMessageIntegrity = 0x0008,
  kStunAttrErrorCode = 0x0009,
  kStunAttrUnknownAttributes = 0x000A,
  kStunAttrXorMappedAddress = 0x0020,
  kStunAttrPriority = 0x0024,
  kStunAttrUseCandidate = 0x0025,
  kStunAttrSoftware = 0x8022,
  kStunAttrFingerprint = 0x8028,
  kStunAttrIceControlled = 0x8029,
  kStunAttrIceControlling = 0x802A,
};

// RFC 7983 demultiplexing: a STUN message starts with a byte in [0, 3]. is_stun also wants the
// magic cookie and a sane length, so it is a reliable classifier of a whole datagram.
bool is_stun(const uint8_t* data, size_t len);

enum class StunParse : uint8_t {
  Ok,
  NotStun,         // not a STUN message (first bits, cookie, length)
  Malformed,       // attribute framing broken, attribute after FINGERPRINT, bad attribute values
  BadFingerprint,  // FINGERPRINT present but wrong
};
const char* stun_parse_name(StunParse p);

// A parsed message. Views (username, reason) point into the parsed datagram.
struct StunMessage {
  uint16_t method = 0;
  StunClass cls = StunClass::Request;
  uint8_t txid[12] = {};
  std::string_view username;
  bool has_username = false;
  // MESSAGE-INTEGRITY: offset of its attribute header in the datagram, checked by
  // stun_check_integrity (the key is not known while parsing).
  bool has_integrity = false;
  size_t integrity_offset = 0;
  bool has_fingerprint = false;  // and it matched (else the parse fails with BadFingerprint)
  bool has_priority = false;
  uint32_t priority = 0;
  bool use_candidate = false;
  bool has_controlling = false;
  bool has_controlled = false;
  uint64_t tiebreaker = 0;
  bool has_error = false;
  uint16_t error_code = 0;  // 300..699
  std::string_view error_reason;
  bool has_xor_mapped = false;
  jn_addr xor_mapped{};
  // Comprehension-required attributes (type < 0x8000) this parser does not know (RFC 5389 7.3.1:
  // a request carrying one gets 420).
  uint16_t unknown_required = 0;
};

StunParse stun_parse(const uint8_t* data, size_t len, StunMessage& out);

// HMAC-SHA1 over the message up to MESSAGE-INTEGRITY (with the length field adjusted as RFC 5389
// 15.4 says), keyed by the short-term password. False without MESSAGE-INTEGRITY.
bool stun_check_integrity(const uint8_t* data, size_t len, const StunMessage& m, std::string_view key);

// Builds a message into a caller buffer. Attributes are appended in call order; MESSAGE-INTEGRITY
// and FINGERPRINT last (in that order). Any attribute that does not fit sets !ok() and the
// message must be dropped.
class StunBuilder {
 public:
  StunBuilder(uint8_t* buf, size_t cap, uint16_t method, StunClass cls, const uint8_t txid[12]);
  StunBuilder& username(std::string_view u);
  StunBuilder& xor_mapped_address(const jn_addr& a);
  StunBuilder& priority(uint32_t p);
  StunBuilder& use_candidate();
  StunBuilder& ice_controlling(uint64_t tiebreaker);
  StunBuilder& ice_controlled(uint64_t tiebreaker);
  StunBuilder& error_code(uint16_t code, std::string_view reason);
  StunBuilder& unknown_attributes(const uint16_t* types, size_t n);
  StunBuilder& message_integrity(std::string_view key);
  StunBuilder& fingerprint();
  bool ok() const { return ok_; }
  size_t size() const { return ok_ ? len_ : 0; }

 private:
  uint8_t* attr(uint16_t type, size_t value_len);  // header written, value area returned
  void set_length(size_t body_len);
  uint8_t* buf_;
  size_t cap_;
  size_t len_ = kStunHeaderLen;
  bool ok_ = true;
};

// CRC-32 (ISO-HDLC, the one zlib computes) as FINGERPRINT needs it.
uint32_t stun_crc32(const uint8_t* data, size_t len);

}  // namespace junction::webrtc
