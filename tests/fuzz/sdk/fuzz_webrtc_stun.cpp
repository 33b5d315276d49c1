// STUN parser and the ICE-lite responder on arbitrary datagrams. Invariants: a parsed message is
// is_stun and its views lie inside the input; its fields rebuilt with StunBuilder parse back to the
// same values, with MESSAGE-INTEGRITY verifying under the builder's key only; the responder answers
// only parseable requests, every answer parses with a FINGERPRINT and the request's transaction
// id, and a success (signed with the local password, XOR-MAPPED-ADDRESS = the sender) is given
// only to a request whose MESSAGE-INTEGRITY verifies with the local password.
#include <junction/webrtc/ice_lite.hpp>
#include <junction/webrtc/stun.hpp>

#include <cstdlib>
#include <cstring>

using namespace junction::webrtc;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
bool inside(const uint8_t* d, size_t n, std::string_view v) {
  auto p = reinterpret_cast<const uint8_t*>(v.data());
  return v.empty() || (p >= d && p + v.size() <= d + n);
}
constexpr char kLocalPwd[] = "localpasswordlocalpass";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  StunMessage m;
  StunParse p = stun_parse(data, size, m);
  if (p == StunParse::Ok) {
    check(is_stun(data, size));
    check(inside(data, size, m.username) && inside(data, size, m.error_reason));
    check(!m.has_integrity || m.integrity_offset + 24 <= size);
    uint8_t out[2048];
    StunBuilder b(out, sizeof out, m.method, m.cls, m.txid);
    if (m.has_username) b.username(m.username);
    if (m.has_priority) b.priority(m.priority);
    if (m.use_candidate) b.use_candidate();
    if (m.has_controlling) b.ice_controlling(m.tiebreaker);
    if (m.has_xor_mapped) b.xor_mapped_address(m.xor_mapped);
    if (m.has_error) b.error_code(m.error_code, m.error_reason);
    b.message_integrity("key").fingerprint();
    check(b.ok());
    StunMessage r;
    check(stun_parse(out, b.size(), r) == StunParse::Ok);
    check(r.method == m.method && r.cls == m.cls && std::memcmp(r.txid, m.txid, 12) == 0);
    check(r.has_username == m.has_username && r.username == m.username);
    check(r.has_priority == m.has_priority && r.priority == m.priority && r.use_candidate == m.use_candidate);
    check(r.has_xor_mapped == m.has_xor_mapped && (!m.has_xor_mapped || addr_equal(r.xor_mapped, m.xor_mapped)));
    check(r.has_error == m.has_error && r.error_code == m.error_code && r.error_reason == m.error_reason);
    check(r.has_fingerprint && r.unknown_required == 0);
    check(stun_check_integrity(out, b.size(), r, "key"));
    check(!stun_check_integrity(out, b.size(), r, "kez"));
  }

  IceLite ice({"LOCL", kLocalPwd}, {"REMO", "remotepasswordremotepa"});
  jn_addr from{};
  from.family = 4;
  from.port = 5000;
  from.ip[0] = 127, from.ip[3] = 1;
  uint8_t reply[512];
  IceCheck c = ice.handle(data, size, from, 1000, reply, sizeof reply);
  if (p != StunParse::Ok) check(c.reply_len == 0 && !c.valid);
  if (c.valid) check(stun_check_integrity(data, size, m, kLocalPwd) && m.cls == StunClass::Request);
  check(ice.has_selected() == c.valid && ice.validated(from) == c.valid);
  if (c.reply_len) {
    StunMessage r;
    check(stun_parse(reply, c.reply_len, r) == StunParse::Ok);
    check(r.has_fingerprint && std::memcmp(r.txid, m.txid, 12) == 0 && r.method == kStunBinding);
    if (c.valid) {
      check(r.cls == StunClass::Success && addr_equal(r.xor_mapped, from));
      check(stun_check_integrity(reply, c.reply_len, r, kLocalPwd));
    } else {
      check(r.cls == StunClass::Error && r.has_error);
    }
  }
  return 0;
}
