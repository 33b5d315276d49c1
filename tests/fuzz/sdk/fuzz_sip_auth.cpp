// Digest authentication on arbitrary header values. Invariants: the server never passes a header
// that does not carry a nonce it issued (it can only be answered by knowing the password); the
// client, once it accepts a challenge, always produces an Authorization the parser reads back
// with the realm and nonce of the challenge; auth-param walks stay inside the input.
#include <junction/sip/auth.hpp>

#include <cstdlib>
#include <string>

using namespace junction::sip;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
bool fixed_random(void*, size_t n, std::string& out) {
  out.assign(n, 'r');
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  AuthHeader a;
  if (parse_auth(in, a)) {
    size_t cur = 0;
    std::string_view n, v;
    int guard = 0;
    while (a.next(cur, n, v) && ++guard < 1000)
      check(n.data() >= in.data() && v.data() + v.size() <= in.data() + in.size());
  }

  DigestServerConfig cfg;
  cfg.realm = "fuzz.test";
  cfg.secret = "fuzz-secret-0123456789";
  cfg.nc_slots = 16;
  for (bool qop : {true, false}) {
    cfg.qop_auth = qop;
    DigestServer srv(cfg, 1000);
    std::string chal;
    srv.challenge(chal, 1000);
    std::string params = chal.substr(7);  // after "Digest "
    std::string nonce(AuthHeader{"Digest", params}.value("nonce"));
    auto lookup = [](std::string_view, DigestSecret& s) {
      s.password = "pw";
      return true;
    };
    Verdict v = srv.verify(in, "REGISTER", 1001, lookup);
    if (v == Verdict::Ok) check(in.find(nonce) != std::string_view::npos);
    check(status_for(v) == 200 || status_for(v) == 401 || status_for(v) == 403);
  }

  DigestClient cli;
  if (cli.set_challenge(in)) {
    std::string out;
    check(cli.authorize("INVITE", "sip:b@127.0.0.1", "user", "pw", out, fixed_random, nullptr));
    AuthHeader back;
    check(parse_auth(out, back));
    check(unquote("\"" + std::string(back.value("realm")) + "\"") == cli.realm());
  }
  return 0;
}
