// Fuzz target for gb28181's own parsers and the registrar (the MANSCDP layer has its own):
//   byte 0 % 4 == 0: the rest is a REGISTER-ish datagram fed to a sip::Stack + Registrar on a
//                    fake env (a provisioned device, auto-admission on). Invariants: the
//                    registry's registered count matches its devices; a request gets at most
//                    one response; nothing registers without an Authorization header.
//   == 1: a snapshot upload body, "ctype\n" + body: the image is a view inside the body.
//   == 2: a snapshot path: a parsed path round-trips.
//   == 3: a device record (JSON): an accepted record survives its store round trip unchanged.
#include "conf.hpp"
#include "redirect.hpp"
#include "registrar.hpp"
#include "registry.hpp"
#include "sip_fake_env.hpp"
#include "snapshots.hpp"

#include <junction/sip/message.hpp>

#include <cstdlib>
#include <string>

namespace sip = junction::sip;
using nlohmann::json;

namespace {
struct Hooks : gb::RegistrarHooks {
  sip::testing::FakeEnv& env;
  gb::Registry& reg;
  Hooks(sip::testing::FakeEnv& e, gb::Registry& r) : env(e), reg(r) {}
  uint64_t now_ms() override { return env.now; }
  void log(int, const std::string&) override {}
  void count(std::string_view, std::string_view) override {}
  void registered(gb::Device& d, bool) override { reg.set_registered(d, true); }
  void offline(gb::Device& d, std::string_view) override { reg.set_registered(d, false); }
  gb::Device* admit(std::string_view id) override {
    if (reg.size() > 16) return nullptr;
    gb::DeviceConf c;
    c.id = std::string(id);
    c.auto_admitted = true;
    return &reg.put(c);
  }
};
struct User : sip::StackUser {
  gb::Registrar* r = nullptr;
  void on_request(sip::TxnId id, const sip::Message& m, const sip::Flow& f) override {
    if (m.method() == "REGISTER") r->on_register(id, m, f);
  }
  void on_response(sip::TxnId, int, const sip::Message*) override {}
};

void registrar(std::string_view data) {
  sip::testing::FakeEnv env;
  gb::Conf conf = gb::read_conf(json{{"sip_id", "34020000002000000001"}, {"password", "pw"}, {"auto_admit", true},
                                     {"redirect", {{"enabled", (data.size() & 1) != 0},
                                                   {"servers", json::array({{{"id", "34020000002000000002"}, {"address", "127.0.0.1:5070"},
                                                                             {"prefixes", {"3402"}}}})}}}},
                                {});
  gb::Registry reg;
  gb::DeviceConf d;
  d.id = "34020000001320000001";
  d.password = "12345678";
  reg.put(d);
  User user;
  sip::Stack stack(env, user);
  gb::Redirector redirect(conf.redirect);
  Hooks hooks(env, reg);
  gb::Registrar r(conf, reg, stack, redirect, hooks, "0123456789abcdef0123456789abcdef");
  user.r = &r;
  size_t before = env.sent.size();
  stack.on_datagram(data, sip::testing::udp_flow(5061));
  if (env.sent.size() > before + 1) abort();  // one request, at most one answer
  size_t n = 0;
  reg.for_each([&](gb::Device& x) { n += x.live.registered; });
  if (n != reg.registered()) abort();
  sip::Message m;
  if (n && !(sip::parse(data, m) == sip::ParseStatus::Ok && m.find(sip::HeaderId::Authorization))) abort();
}

void upload(std::string_view data) {
  size_t nl = data.find('\n');
  if (nl == std::string_view::npos) return;
  std::string_view ctype = data.substr(0, nl), body = data.substr(nl + 1);
  std::string err, name;
  std::string_view img = gb::upload_image(body, ctype, err, &name);
  if (!img.empty() && (img.data() < body.data() || img.data() + img.size() > body.data() + body.size())) abort();
  if (img.empty() && err.empty()) abort();  // every refusal says why
}

void path(std::string_view data) {
  std::string dev, sid, file;
  if (!gb::parse_snapshot_path(data, dev, sid, file)) return;
  std::string again = "/snapshot/" + dev + "/" + sid + (file.empty() ? "" : "/" + file);
  std::string d2, s2, f2;
  if (!gb::parse_snapshot_path(again, d2, s2, f2) || d2 != dev || s2 != sid || f2 != file) abort();
  if (!gb::valid_session_id(sid)) abort();
}

void record(std::string_view data) {
  json j = json::parse(data, nullptr, false);
  gb::DeviceConf c;
  std::string err;
  if (!gb::device_conf_from_json(j, c, err)) {
    if (err.empty()) abort();
    return;
  }
  gb::DeviceConf back;
  if (!gb::device_conf_from_json(gb::device_conf_to_json(c, true), back, err)) abort();
  if (back.id != c.id || back.password != c.password || back.username != c.username || back.name != c.name ||
      back.charset != c.charset || back.date != c.date || back.media_transport != c.media_transport)
    abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* p, size_t n) {
  if (n == 0) return 0;
  std::string_view data(reinterpret_cast<const char*>(p) + 1, n - 1);
  switch (p[0] % 4) {
    case 0: registrar(data); break;
    case 1: upload(data); break;
    case 2: path(data); break;
    case 3: record(data); break;
  }
  return 0;
}
