// REGISTER (注册 / 注销 / 注册重定向): identity checks, strict digest, expiry rules, the binding
// (the flow a device's requests come over is how it is reached), Date for time sync, redirect.
//
// Order of checks, each refusal with its reason in the status line and a log line:
//   Request-URI user is another platform ID           -> 403 (not this platform)
//   To user is not a GB code                          -> 400
//   unknown device and no auto-admission              -> 403 (unknown device)
//   no Authorization                                  -> 401 challenge
//   digest: bad nonce / stale / malformed             -> 401 (fresh challenge; stale=true when old)
//   digest: wrong password, other username, replay    -> 403
//   Expires below min_expires_s                       -> 423 with Min-Expires
//   redirect policy picks a server                    -> 302 Contact: <sip:A@ip:port>, Expires
//   Expires: 0                                        -> 200, the device is unregistered (offline)
//   otherwise                                         -> 200 (+ Date), registered / refreshed
// A REGISTER with a new Call-ID, or the same Call-ID with a CSeq not above the last one (a
// device that rebooted), is a new registration, not an error: it passed the digest.
#pragma once

#include "conf.hpp"
#include "redirect.hpp"
#include "registry.hpp"

#include <junction/sip/auth.hpp>
#include <junction/sip/stack.hpp>

#include <memory>
#include <string_view>

namespace gb {

class RegistrarHooks {
 public:
  virtual ~RegistrarHooks() = default;
  virtual uint64_t now_ms() = 0;
  virtual void log(int level, const std::string& msg) = 0;
  virtual void count(std::string_view metric, std::string_view labels = {}) = 0;
  // A device registered (fresh = it was not registered) or refreshed.
  virtual void registered(Device& d, bool fresh) = 0;
  // A device left (Expires 0, keepalive timeout, TCP drop, expiry, deletion).
  virtual void offline(Device& d, std::string_view reason) = 0;
  // auto_admit: create (and store) a device for an unknown ID; nullptr when it cannot.
  virtual Device* admit(std::string_view id) = 0;
};

class Registrar {
 public:
  Registrar(const Conf& conf, Registry& reg, junction::sip::Stack& stack, Redirector& redirect, RegistrarHooks& hooks,
            std::string nonce_secret);
  void on_register(junction::sip::TxnId id, const junction::sip::Message& m, const junction::sip::Flow& from);
  // A To tag for a response to this request: empty for the stateless path (the stack derives
  // one), else a fresh one (SipHash of a counter under a random key: unpredictable, unique, and
  // no CSPRNG call per keepalive 200, which the profile showed at 15 % of that path).
  std::string tag(junction::sip::TxnId id);

 private:
  void refuse(junction::sip::TxnId id, int code, const std::string& reason, std::string_view who,
              const junction::sip::Flow& from, std::string_view extra = {});

  const Conf& conf_;
  Registry& reg_;
  junction::sip::Stack& stack_;
  Redirector& redirect_;
  RegistrarHooks& hooks_;
  std::unique_ptr<junction::sip::DigestServer> auth_;
  junction::sip::SipKey tag_key_;
  uint64_t tag_seq_ = 0;
};

}  // namespace gb
