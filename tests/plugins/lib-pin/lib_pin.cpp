// lib-pin: a test plugin for the rule on libraries with process-wide state (abi.h, library_pin).
// It links libsrtp2 (whose srtp_init() succeeds once per process and has no complete shutdown),
// pins it through the core at start, calls srtp_init() only when it is the first pin, and proves
// libsrtp2 works in every instance by protecting a packet with a throwaway session.
// conf: lib (default "libsrtp2.so.1"). Admin "state" -> {"first", "pin_status", "srtp_ok",
// "generation", "nss"}. nss: whether libsrtp2's NSS was initialised right after the pin, before
// this plugin's srtp_init (the core sets it up for speed at the first pin); null when libsrtp2 is
// not built on NSS. Looked up here only to observe it (a test plugin; real ones never do this).
#include <junction/plugin.hpp>

#include <srtp2/srtp.h>

#include <dlfcn.h>

#include <cstring>

namespace {
using junction::sdk::Host;
using nlohmann::json;

bool srtp_works() {
  srtp_policy_t p{};
  srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
  srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
  unsigned char key[30] = {1, 2, 3};
  p.key = key;
  p.ssrc.type = ssrc_any_outbound;
  srtp_t s = nullptr;
  if (srtp_create(&s, &p) != srtp_err_status_ok) return false;
  unsigned char pkt[12 + 20 + 16] = {0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7};
  int len = 32;
  bool ok = srtp_protect(s, pkt, &len) == srtp_err_status_ok && len == 32 + 10;
  srtp_dealloc(s);
  return ok;
}

class LibPin : public junction::sdk::Plugin {
 public:
  LibPin(Host h, const jn_create_args& a) : Plugin(h), generation_(a.generation) {
    lib_ = h.config().value("lib", "libsrtp2.so.1");
  }
  jn_status start() override { return init(); }
  jn_status restore_state(uint32_t, std::string_view) override { return init(); }
  void on_admin(const jn_admin_request& r) override {
    host().admin_reply(r.reply, 200,
                       json{{"first", first_}, {"pin_status", pin_status_}, {"srtp_ok", srtp_ok_}, {"generation", generation_},
                            {"nss", nss_}}.dump());
  }

 private:
  jn_status init() {
    pin_status_ = host().library_pin(lib_, &first_);
    if (pin_status_ != JN_OK) return JN_OK;  // reported through admin "state"; the test checks it
    if (void* h = dlopen(lib_.c_str(), RTLD_NOLOAD | RTLD_LAZY)) {
      if (auto is_init = reinterpret_cast<int (*)()>(dlsym(h, "NSS_IsInitialized"))) nss_ = is_init() != 0;
      dlclose(h);
    }
    if (first_ && srtp_init() != srtp_err_status_ok) return JN_ERR_INTERNAL;
    srtp_ok_ = srtp_works();
    return JN_OK;
  }
  std::string lib_;
  bool first_ = false, srtp_ok_ = false;
  jn_status pin_status_ = 1;
  json nss_;  // null: not NSS
  uint64_t generation_ = 0;
};

}  // namespace

JUNCTION_PLUGIN(LibPin, "lib-pin", "1.0.0", "test plugin: a library with process-wide state, pinned", "", 1, 1)
