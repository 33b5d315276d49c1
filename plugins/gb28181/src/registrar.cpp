#include "registrar.hpp"

#include "ids.hpp"
#include "timefmt.hpp"

#include <junction/util/addr.hpp>
#include <junction/util/random.hpp>

#include <cstdio>
#include <cstring>

namespace gb {

namespace sip = junction::sip;

Registrar::Registrar(const Conf& conf, Registry& reg, sip::Stack& stack, Redirector& redirect, RegistrarHooks& hooks,
                     std::string nonce_secret)
    : conf_(conf), reg_(reg), stack_(stack), redirect_(redirect), hooks_(hooks) {
  sip::DigestServerConfig dc;
  dc.realm = conf.realm;
  dc.secret = std::move(nonce_secret);
  dc.nonce_ttl_s = conf.nonce_ttl_s;
  dc.algorithm = sip::DigestAlgorithm::MD5;  // what GB devices do (the document's samples)
  auth_ = std::make_unique<sip::DigestServer>(dc, hooks.now_ms() / 1000);
  std::string k;
  if (!junction::util::random_bytes(16, k) || k.size() < 16) k = stack.new_tag() + stack.new_tag();  // its own random source
  std::memcpy(&tag_key_.k0, k.data(), 8);
  std::memcpy(&tag_key_.k1, k.data() + 8, 8);
}

// A To tag for a response: the stateless path derives its own (the same for a retransmission).
std::string Registrar::tag(sip::TxnId id) {
  if (sip::Stack::is_stateless(id)) return {};
  uint64_t seq = ++tag_seq_;
  uint64_t t = sip::siphash24(tag_key_, &seq, sizeof seq);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 0; i < 16; ++i) out[i] = kHex[(t >> (60 - 4 * i)) & 15];
  return out;
}

void Registrar::refuse(sip::TxnId id, int code, const std::string& reason, std::string_view who, const sip::Flow& from,
                       std::string_view extra) {
  if (code == 403) hooks_.count("gb_auth_failures_total", "reason=\"" + reason + "\"");
  // Refusals are always logged (a 401 challenge is the normal first step: only with log_each).
  if (code != 401 || conf_.log_each)
    hooks_.log(code == 401 ? JN_LOG_DEBUG : JN_LOG_INFO, "gb28181: REGISTER " + std::string(who) + " from " +
                                                             junction::util::format_addr(from.peer) + " over " +
                                                             std::string(sip::proto_name(from.proto)) + " refused " +
                                                             std::to_string(code) + " (" + reason + ")");
  std::string phrase = code == 401 ? std::string() : std::string(sip::reason_phrase(code)) + " (" + reason + ")";
  stack_.respond(id, code, phrase, tag(id), extra);
}

void Registrar::on_register(sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
  hooks_.count("gb_register_requests_total");
  uint64_t now = hooks_.now_ms();
  // Both Request-URI forms are the platform: sip:<platform id>@<domain> and sip:<platform id>@ip:port
  // (and a bare sip:domain). Another platform's ID is not ours to register to.
  // parse() checked and parsed both URIs (a malformed one never reaches us): no second parse.
  const sip::Uri& ruri = m.parsed_request_uri();
  const sip::Uri& to = m.to_uri();
  if (ruri.scheme == sip::Scheme::Other) return refuse(id, 400, "bad Request-URI", "?", from);
  if (to.scheme == sip::Scheme::Other) return refuse(id, 400, "bad To URI", "?", from);
  std::string_view dev_id = to.user;  // the request outlives this call: no copy
  if (!ruri.user.empty() && ruri.user != conf_.sip_id)
    return refuse(id, 403, "other platform " + std::string(ruri.user).substr(0, 32), dev_id.substr(0, 32), from);
  if (!is_gb_id(dev_id)) return refuse(id, 400, "To user is not a GB device ID", dev_id.substr(0, 32), from);

  Device* d = reg_.find(dev_id);
  bool admitting = false;
  if (!d) {
    if (!conf_.auto_admit) return refuse(id, 403, "unknown device", dev_id.substr(0, 32), from);
    admitting = true;  // created only once its digest (with the platform password) checks out
  }
  const sip::Header* ah = m.find(sip::HeaderId::Authorization);
  std::string challenge;
  if (!ah) {
    auth_->challenge(challenge, now / 1000);
    return refuse(id, 401, "challenge", dev_id, from, "WWW-Authenticate: " + challenge + "\r\n");
  }
  std::string_view user;
  // Stateless (stateless_register): a retransmission reaches us again; its fingerprint lets the
  // digest accept the same nc once more and keeps it from looking like a reboot below.
  uint64_t fp = sip::Stack::is_stateless(id) ? sip::request_fingerprint(m) : 0;
  std::string_view password = d ? (d->conf.password.empty() ? conf_.password : d->conf.password) : conf_.password;
  std::string_view expect_user = d ? d->conf.auth_user() : dev_id;
  sip::Verdict v = auth_->verify(ah->value, "REGISTER", now / 1000,
                                 [&](std::string_view u, sip::DigestSecret& out) {
                                   if (u != expect_user || password.empty()) return false;
                                   if (!d) {
                                     out.password.assign(password);
                                     return true;
                                   }
                                   uint64_t cred_fp = sip::siphash24(tag_key_, u.data(), u.size()) ^
                                                 (sip::siphash24(tag_key_, password.data(), password.size()) * 0x9E3779B97F4A7C15ull);
                                   if (!d->ha1.set || d->ha1.fp != cred_fp) {
                                     std::string h = auth_->ha1(expect_user, password);
                                     if (h.size() != sizeof d->ha1.hex) {  // libcrypto failed: the password path
                                       out.password.assign(password);
                                       return true;
                                     }
                                     std::memcpy(d->ha1.hex, h.data(), h.size());
                                     d->ha1.fp = cred_fp;
                                     d->ha1.set = true;
                                   }
                                   out.ha1.assign(d->ha1.hex, sizeof d->ha1.hex);
                                   return true;
                                 },
                                 &user, fp);
  if (v != sip::Verdict::Ok) {
    int code = sip::status_for(v);
    std::string why = v == sip::Verdict::UnknownUser
                          ? (password.empty() ? std::string("no password for the device") : "username is not the device's")
                          : v == sip::Verdict::BadResponse ? std::string("wrong password") : std::string(sip::to_string(v));
    if (code == 401) {
      auth_->challenge(challenge, now / 1000, v == sip::Verdict::Stale);
      return refuse(id, 401, why, dev_id, from, "WWW-Authenticate: " + challenge + "\r\n");
    }
    return refuse(id, code, why, dev_id, from);
  }
  // Expiry: the Contact's expires= wins over the Expires header (RFC 3261 10.3 step 6).
  uint64_t expires = conf_.default_expires_s;
  if (const sip::Header* eh = m.find(sip::HeaderId::Expires)) {
    if (!sip::parse_uint(sip::trim_lws(eh->value), 0xffffffffu, expires)) return refuse(id, 400, "bad Expires", dev_id, from);
  }
  std::string_view contact;
  bool star = false;
  for (const sip::Header* h = m.find(sip::HeaderId::Contact); h; h = m.next(h)) {
    std::string_view rest = h->value, val;
    while (sip::next_value(rest, val)) {
      sip::Contact c;
      if (!sip::parse_contact(val, c)) return refuse(id, 400, "bad Contact", dev_id, from);
      if (c.star) {
        star = true;
        continue;
      }
      if (contact.empty()) {
        contact = c.addr.uri_text;
        if (c.expires >= 0) expires = uint64_t(c.expires);
      }
    }
  }
  if (star && expires != 0) return refuse(id, 400, "Contact * needs Expires: 0", dev_id, from);
  if (contact.empty() && expires != 0) return refuse(id, 400, "no Contact", dev_id, from);
  if (expires != 0 && expires < conf_.min_expires_s)
    return refuse(id, 423, "below " + std::to_string(conf_.min_expires_s) + " s", dev_id, from,
                  "Min-Expires: " + std::to_string(conf_.min_expires_s) + "\r\n");
  expires = std::min<uint64_t>(expires, conf_.max_expires_s);

  if (expires != 0 && redirect_.enabled()) {
    if (const RedirectServer* srv = redirect_.pick(dev_id, now)) {
      hooks_.count("gb_redirects_total");
      hooks_.log(JN_LOG_INFO, "gb28181: REGISTER " + std::string(dev_id) + " from " + junction::util::format_addr(from.peer) + " -> 302 to " +
                                  srv->id + "@" + srv->address);
      std::string extra = "Contact: <sip:" + srv->id + "@" + srv->address + ">\r\nExpires: " +
                          std::to_string(conf_.redirect.expires_s) + "\r\n";
      stack_.respond(id, 302, {}, tag(id), extra);
      return;
    }
  }
  if (admitting) {
    d = hooks_.admit(dev_id);
    if (!d) return refuse(id, 403, "device limit reached", dev_id, from);
  }
  std::string_view proto = sip::proto_name(from.proto);
  if (expires == 0) {
    bool was = d->live.registered;
    d->live.flow = from;
    d->live.last_seen = now;
    if (was) hooks_.offline(*d, "unregistered");
    if (conf_.log_each)
      hooks_.log(JN_LOG_INFO, "gb28181: REGISTER " + std::string(dev_id) + " from " + junction::util::format_addr(from.peer) + " over " + std::string(proto) +
                                  " -> 200 (unregistered)");
    stack_.respond(id, 200, {}, tag(id), "Expires: 0\r\n");
    return;
  }
  DeviceLive& l = d->live;
  bool fresh = !l.registered;
  // A new Call-ID, or the same one with a CSeq that went back: the device rebooted.
  bool retransmission = fp != 0 && l.registered && fp == l.reg_fp;
  bool rebooted = l.registered && !retransmission && (l.call_id != m.call_id() || m.cseq().seq <= l.cseq);
  bool moved = l.registered && !l.flow.same_peer(from);
  l.call_id.assign(m.call_id());  // assign: the strings keep their capacity across refreshes
  l.cseq = m.cseq().seq;
  l.reg_fp = fp;
  l.contact.assign(contact);
  l.flow = from;
  l.expires_at = now + expires * 1000;
  l.last_seen = now;
  if (fresh || rebooted) {
    l.registered_at = now;
    l.last_keepalive = 0;
    ++l.registrations;
    hooks_.count("gb_registrations_total");
  }
  if (conf_.log_each || fresh)
    hooks_.log(JN_LOG_INFO, "gb28181: REGISTER " + std::string(dev_id) + " from " + junction::util::format_addr(from.peer) + " over " + std::string(proto) +
                                " -> 200 (" + (fresh ? "new" : rebooted ? "new registration: rebooted" : "refresh") +
                                (moved ? ", address changed" : "") + ", expires " + std::to_string(expires) + ")");
  hooks_.registered(*d, fresh);
  std::string extra;
  extra.reserve(contact.size() + 96);
  char num[24];
  int nlen = std::snprintf(num, sizeof num, "%llu", static_cast<unsigned long long>(expires));
  std::string_view exp(num, size_t(nlen));
  extra.append("Contact: <").append(contact).append(">;expires=").append(exp).append("\r\nExpires: ").append(exp).append("\r\n");
  bool date = conf_.date_header && d->conf.date != "off";
  if (date)
    extra.append("Date: ")
        .append(d->conf.date == "rfc" ? rfc_date(wall_ms()) : gb_date(wall_ms(), conf_.date_utc_offset_min))
        .append("\r\n");
  stack_.respond(id, 200, {}, tag(id), extra);
}

}  // namespace gb
