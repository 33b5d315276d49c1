// gb28181 core units: conf, device records, registry live state (the reload codec), redirect
// policy, the Date forms, liveness, and the registrar driven through a real sip::Stack on a fake
// environment (digest with DigestClient, as a device would).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "conf.hpp"
#include "liveness.hpp"
#include "redirect.hpp"
#include "registrar.hpp"
#include "registry.hpp"
#include "timefmt.hpp"
#include "sip_fake_env.hpp"

#include <junction/sip/auth.hpp>
#include <junction/sip/message.hpp>

#include <stdexcept>
#include <vector>
#include <cstdio>
#include <set>

using nlohmann::json;
namespace sip = junction::sip;
using sip::testing::FakeEnv;

static const char* kPlatform = "34020000002000000001";
static const char* kDev = "34020000001320000001";

TEST_CASE("conf: defaults from the document and the ID's domain") {
  gb::Conf c = gb::read_conf(json{{"sip_id", kPlatform}}, {});
  CHECK(c.domain == "3402000000");
  CHECK(c.realm == "3402000000");
  CHECK(c.keepalive_interval_s == 60);
  CHECK(c.keepalive_count == 3);
  CHECK(c.udp_listen == "127.0.0.1:5060");
  CHECK(c.tcp_listen == "127.0.0.1:5060");
  CHECK_FALSE(c.auto_admit);
  CHECK_FALSE(c.redirect.enabled);
}

TEST_CASE("conf: [play] and [media] defaults and refusals") {
  gb::Conf c = gb::read_conf(json{{"sip_id", kPlatform}}, {});
  CHECK(c.play.transport == "udp");
  CHECK(c.play.grace_ms == 10000);
  CHECK(c.play.restart_on_timeout);
  CHECK(c.play.backoff_initial_ms == 1000);
  CHECK(c.play.backoff_max_ms == 30000);
  CHECK(c.play.restart_attempts == 5);
  CHECK(c.play.download_speed == 4);
  CHECK(c.media.port_range == "media");
  CHECK(c.media.rtp_timeout_ms == 10000);
  gb::Conf t = gb::read_conf(json{{"sip_id", kPlatform}, {"play", {{"transport", "tcp_active"}, {"grace_ms", 0}}}}, {});
  CHECK(t.play.transport == "tcp_active");
  CHECK(t.play.grace_ms == 0);
  auto refused = [](json j) {
    j["sip_id"] = kPlatform;
    std::string key;
    try {
      gb::read_conf(j, [&](const std::string& k, const std::string&) { key = k; });
    } catch (const std::invalid_argument&) {
      return key;
    }
    return std::string("accepted");
  };
  CHECK(refused({{"play", {{"transport", "sctp"}}}}) == "play.transport");
  CHECK(refused({{"play", {{"media_ip", "host.example"}}}}) == "play.media_ip");
  CHECK(refused({{"play", {{"backoff_initial_ms", 5000}, {"backoff_max_ms", 1000}}}}) == "play.backoff_max_ms");
  CHECK(refused({{"play", {{"download_dir", "../etc"}}}}) == "play.download_dir");
  CHECK(refused({{"play", {{"colour", 1}}}}) == "play.colour");
  CHECK(refused({{"media", {{"bind_ip", "nowhere"}}}}) == "media.bind_ip");
  CHECK(refused({{"media", {{"rtp_timeout_ms", -1}}}}) == "media.rtp_timeout_ms");
  CHECK(refused({{"media", {{"port_range", ""}}}}) == "media.port_range");
}

TEST_CASE("conf: every bad value is refused with its key") {
  auto refused = [](json j) {
    std::string key;
    try {
      gb::read_conf(j, [&](const std::string& k, const std::string&) { key = k; });
    } catch (const std::invalid_argument&) {
      return key;
    }
    return std::string("accepted");
  };
  CHECK(refused(json::object()) == "sip_id");
  CHECK(refused({{"sip_id", "3402000000200000000"}}) == "sip_id");         // 19 digits
  CHECK(refused({{"sip_id", "3402000000200000000x"}}) == "sip_id");
  CHECK(refused({{"sip_id", kPlatform}, {"udp_listen", "nowhere"}}) == "udp_listen");
  CHECK(refused({{"sip_id", kPlatform}, {"auto_admit", true}}) == "auto_admit");  // no platform password
  CHECK(refused({{"sip_id", kPlatform}, {"keepalive_policy", "lax"}}) == "keepalive_policy");
  CHECK(refused({{"sip_id", kPlatform}, {"min_expires_s", 100}, {"max_expires_s", 50}}) == "max_expires_s");
  CHECK(refused({{"sip_id", kPlatform}, {"bogus", 1}}) == "bogus");
  CHECK(refused({{"sip_id", kPlatform}, {"redirect", {{"enabled", true}}}}) == "redirect.servers");
  CHECK(refused({{"sip_id", kPlatform},
                 {"redirect", {{"servers", json::array({{{"id", "1"}, {"address", "127.0.0.1:5070"}}})}}}}) == "redirect.servers[0].id");
  CHECK(refused({{"sip_id", kPlatform}, {"password", "pw"}, {"auto_admit", true}}) == "accepted");
  CHECK(refused({{"sip_id", kPlatform}, {"snapshot_listen", "here"}}) == "snapshot_listen");
  CHECK(refused({{"sip_id", kPlatform}, {"snapshot_url", "ftp://x"}}) == "snapshot_url");
  gb::Conf c = gb::read_conf(json{{"sip_id", kPlatform}, {"snapshot_listen", "127.0.0.1:7620"}}, {});
  CHECK(c.snapshot_url == "http://127.0.0.1:7620");
  c = gb::read_conf(json{{"sip_id", kPlatform}, {"snapshot_listen", "127.0.0.1:7620"}, {"snapshot_url", "https://cam.example/up/"}}, {});
  CHECK(c.snapshot_url == "https://cam.example/up");
}

TEST_CASE("device records: validation, update keeps the id, the view hides the password") {
  gb::DeviceConf d;
  std::string err;
  CHECK_FALSE(gb::device_conf_from_json({{"id", "123"}}, d, err));
  CHECK(err.find("20 digits") != std::string::npos);
  CHECK_FALSE(gb::device_conf_from_json({{"id", kDev}, {"charset", "latin1"}}, d, err));
  CHECK_FALSE(gb::device_conf_from_json({{"id", kDev}, {"colour", "red"}}, d, err));
  REQUIRE(gb::device_conf_from_json({{"id", kDev}, {"password", "pw"}, {"name", "gate"}, {"date", "off"}}, d, err));
  CHECK(d.auth_user() == kDev);
  CHECK_FALSE(gb::device_conf_from_json({{"id", "34020000001320000002"}}, d, err, true));
  REQUIRE(gb::device_conf_from_json({{"username", "admin"}}, d, err, true));
  CHECK(d.auth_user() == "admin");
  CHECK(d.password == "pw");
  json view = gb::device_conf_to_json(d, false);
  CHECK_FALSE(view.contains("password"));
  CHECK(view["password_set"] == true);
  gb::DeviceConf back;
  REQUIRE(gb::device_conf_from_json(gb::device_conf_to_json(d, true), back, err));
  CHECK(back.password == "pw");
  CHECK(back.username == "admin");
  CHECK(back.date == "off");
}

TEST_CASE("registry: the flat index finds every device through growth and erasures; addresses stay put") {
  gb::Registry r;
  gb::DeviceConf c;
  std::vector<std::string> ids;
  std::vector<gb::Device*> at;
  for (int i = 0; i < 5000; ++i) {  // several doublings of the index
    char b[24];
    std::snprintf(b, sizeof b, "3402000000132%07d", i);
    ids.push_back(b);
    c.id = b;
    at.push_back(&r.put(c));
  }
  c.id = "340200000013200001";  // an 18-digit (2011) code and a long non-GB key share the index
  gb::Device* short_id = &r.put(c);
  c.id = std::string(40, '7');
  gb::Device* long_id = &r.put(c);
  CHECK(r.size() == 5002);
  for (size_t i = 0; i < ids.size(); ++i) REQUIRE(r.find(ids[i]) == at[i]);  // same address after growth
  CHECK(r.find("340200000013200001") == short_id);
  CHECK(r.find(std::string(40, '7')) == long_id);
  CHECK(r.find("34020000001329999999") == nullptr);
  CHECK(r.find("") == nullptr);
  CHECK(r.find(std::string_view(ids[0]).substr(0, 19)) == nullptr);
  // Erase every third: the rest are still found (backward-shift deletion keeps probe chains whole).
  size_t erased = 0;
  for (size_t i = 0; i < ids.size(); i += 3) {
    CHECK(r.erase(ids[i]));
    ++erased;
  }
  CHECK_FALSE(r.erase(ids[0]));
  CHECK(r.size() == 5002 - erased);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i % 3 == 0) CHECK(r.find(ids[i]) == nullptr);
    else REQUIRE(r.find(ids[i]) == at[i]);
  }
  size_t seen = 0;
  r.for_each([&](gb::Device&) { ++seen; });
  CHECK(seen == r.size());
  // A re-added device reuses a freed entry and starts with no live state.
  c.id = ids[0];
  gb::Device& again = r.put(c);
  CHECK(r.find(ids[0]) == &again);
  CHECK_FALSE(again.live.registered);
  CHECK(again.live.registrations == 0);
  auto [slots, longest] = r.shape();
  CHECK(slots >= 2 * r.size());
  CHECK(longest >= 1);
  // Replacing the provisioning keeps the live state and drops the cached HA1.
  gb::Device* d = r.find(ids[1]);
  d->live.registrations = 3;
  d->ha1.set = true;
  c.id = ids[1];
  c.password = "new";
  CHECK(&r.put(c) == d);
  CHECK(d->live.registrations == 3);
  CHECK_FALSE(d->ha1.set);
}

TEST_CASE("registry: live state round trip (the hot-reload codec) keeps counts and flows") {
  gb::Registry r;
  gb::DeviceConf c;
  c.id = kDev;
  gb::Device& d = r.put(c);
  d.live.flow = sip::testing::tcp_flow(5061, 77);
  d.live.contact = "sip:x@127.0.0.1:5061";
  d.live.call_id = "abc";
  d.live.cseq = 9;
  d.live.expires_at = 123456;
  d.live.last_keepalive = 999;
  d.live.registrations = 2;
  r.set_registered(d, true);
  c.id = "34020000001320000002";
  r.put(c);  // never registered: not in the state
  CHECK(r.registered() == 1);
  json j = r.live_to_json();
  CHECK(j.size() == 1);

  gb::Registry r2;
  c.id = kDev;
  r2.put(c);
  c.id = "34020000001320000002";
  r2.put(c);
  CHECK(r2.live_from_json(j) == 1);
  CHECK(r2.registered() == 1);
  gb::Device* d2 = r2.find(kDev);
  REQUIRE(d2);
  CHECK(d2->live.registered);
  CHECK(d2->live.flow.proto == sip::Proto::Tcp);
  CHECK(d2->live.flow.conn == 77);
  CHECK(d2->live.flow.peer.port == 5061);
  CHECK(d2->live.call_id == "abc");
  CHECK(d2->live.cseq == 9);
  CHECK(d2->live.expires_at == 123456);
  CHECK(d2->live.registrations == 2);
  // A restore over an instance with a deleted device skips it; a second restore does not double-count.
  CHECK(r2.live_from_json(j) == 1);
  CHECK(r2.registered() == 1);
  CHECK(r2.erase(kDev));
  CHECK(r2.registered() == 0);
  CHECK(r2.live_from_json(j) == 0);
}

TEST_CASE("redirect: longest prefix, no match registers here, least-loaded balances and sticks") {
  gb::RedirectConf rc;
  rc.enabled = true;
  rc.expires_s = 60;
  rc.servers = {{"34020000002000000002", "127.0.0.1:5070", {"3402"}}, {"34020000002000000003", "127.0.0.1:5080", {"340201"}}};
  gb::Redirector p(rc);
  REQUIRE(p.pick("34020100001320000001", 0));
  CHECK(p.pick("34020100001320000001", 0)->id == "34020000002000000003");
  CHECK(p.pick("34029900001320000001", 0)->id == "34020000002000000002");
  CHECK(p.pick("11010000001320000001", 0) == nullptr);
  rc.policy = "least_loaded";
  gb::Redirector l(rc);
  std::vector<std::string> got;
  for (int i = 0; i < 4; ++i) got.push_back(l.pick("1101000000132000000" + std::to_string(i), 0)->id);
  CHECK(got[0] != got[1]);
  CHECK(l.loads(0) == std::vector<size_t>{2, 2});
  // The same device comes back (server A refused it): the same server while the assignment lives.
  CHECK(l.pick("11010000001320000000", 1000)->id == got[0]);
  CHECK(l.loads(0) == std::vector<size_t>{2, 2});
  // The assignments survive a reload.
  gb::Redirector l2(rc);
  l2.from_json(l.to_json());
  CHECK(l2.loads(1000) == std::vector<size_t>{2, 2});
  CHECK(l2.loads(1000000).at(0) == 0);  // and expire
}

TEST_CASE("Date: the GB form with the conf's zone, the RFC form in GMT") {
  // 2013-09-10T06:04:41.123Z
  int64_t t = 1378793081123;
  CHECK(gb::gb_date(t, 480) == "2013-09-10T14:04:41.123");
  CHECK(gb::gb_date(t, 0) == "2013-09-10T06:04:41.123");
  CHECK(gb::rfc_date(t) == "Tue, 10 Sep 2013 06:04:41 GMT");
  int64_t s = 0;
  int ms = 0;
  CHECK(sip::parse_date(gb::gb_date(t, 0), s, ms));
  CHECK(s == t / 1000);
  CHECK(ms == 123);
}

TEST_CASE("liveness: interval x count after the last keepalive; the policy for devices that send none") {
  gb::Conf c = gb::read_conf(json{{"sip_id", kPlatform}, {"keepalive_interval_s", 10}, {"keepalive_count", 3}}, {});
  gb::DeviceLive l;
  CHECK(gb::offline_due(c, l).at == UINT64_MAX);  // not registered
  l.registered = true;
  l.registered_at = 1000;
  l.expires_at = 1000 + 3600000;
  CHECK(gb::offline_due(c, l).at == 31000);
  CHECK(std::string(gb::offline_due(c, l).reason) == "keepalive timeout");
  l.last_keepalive = 20000;
  CHECK(gb::offline_due(c, l).at == 50000);
  c.keepalive_policy = "registration";
  l.last_keepalive = 0;
  CHECK(gb::offline_due(c, l).at == l.expires_at);
  CHECK(std::string(gb::offline_due(c, l).reason) == "registration expired");
  l.last_keepalive = 20000;  // it sent one: held to the rule from then on
  CHECK(gb::offline_due(c, l).at == 50000);
}

// --- registrar over a real stack -----------------------------------------------------------------
namespace {
struct Hooks : gb::RegistrarHooks {
  FakeEnv& env;
  gb::Registry& reg;
  std::vector<std::string> events, logs;
  explicit Hooks(FakeEnv& e, gb::Registry& r) : env(e), reg(r) {}
  uint64_t now_ms() override { return env.now; }
  void log(int, const std::string& m) override { logs.push_back(m); }
  void count(std::string_view, std::string_view) override {}
  void registered(gb::Device& d, bool fresh) override {
    reg.set_registered(d, true);
    if (fresh) events.push_back("online " + d.conf.id);
  }
  void offline(gb::Device& d, std::string_view reason) override {
    reg.set_registered(d, false);
    events.push_back("offline " + d.conf.id + " " + std::string(reason));
  }
  gb::Device* admit(std::string_view id) override {
    gb::DeviceConf c;
    c.id = std::string(id);
    c.auto_admitted = true;
    return &reg.put(c);
  }
};
struct NullUser : sip::StackUser {
  std::function<void(sip::TxnId, const sip::Message&, const sip::Flow&)> req;
  void on_request(sip::TxnId id, const sip::Message& m, const sip::Flow& f) override { req(id, m, f); }
  void on_response(sip::TxnId, int, const sip::Message*) override {}
};

struct Rig {
  FakeEnv env;
  gb::Conf conf;
  gb::Registry reg;
  NullUser user;
  sip::Stack stack{env, user};
  std::unique_ptr<gb::Redirector> redirect;
  Hooks hooks{env, reg};
  std::unique_ptr<gb::Registrar> registrar;
  std::string call_id = "c1";
  uint32_t cseq = 0;
  sip::DigestClient client;

  explicit Rig(json conf_json = json::object()) {
    conf_json["sip_id"] = kPlatform;
    conf = gb::read_conf(conf_json, {});
    redirect = std::make_unique<gb::Redirector>(conf.redirect);
    registrar = std::make_unique<gb::Registrar>(conf, reg, stack, *redirect, hooks, "0123456789abcdef0123456789abcdef");
    user.req = [this](sip::TxnId id, const sip::Message& m, const sip::Flow& f) { registrar->on_register(id, m, f); };
    gb::DeviceConf d;
    d.id = kDev;
    d.password = "12345678";
    reg.put(d);
  }
  std::string request(const std::string& ruri, const std::string& dev, int expires, const std::string& auth) {
    ++cseq;
    std::string m = "REGISTER " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;rport;branch=z9hG4bK" + call_id +
                    std::to_string(cseq) + "\r\nFrom: <sip:" + dev + "@3402000000>;tag=1\r\nTo: <sip:" + dev +
                    "@3402000000>\r\nCall-ID: " + call_id + "\r\nCSeq: " + std::to_string(cseq) +
                    " REGISTER\r\nContact: <sip:" + dev + "@127.0.0.1:5061>\r\nMax-Forwards: 70\r\nExpires: " +
                    std::to_string(expires) + "\r\n" + (auth.empty() ? "" : "Authorization: " + auth + "\r\n") +
                    "Content-Length: 0\r\n\r\n";
    return m;
  }
  // Sends one REGISTER; returns the response's status line and keeps it in last.
  std::string last;
  int send(const std::string& bytes, uint16_t port = 5061) {
    size_t before = env.sent.size();
    stack.on_datagram(bytes, sip::testing::udp_flow(port));
    REQUIRE(env.sent.size() == before + 1);
    last = env.sent.back().bytes;
    sip::Message m;
    REQUIRE(sip::parse(last, m) == sip::ParseStatus::Ok);
    return m.status();
  }
  // The whole exchange: REGISTER, 401, REGISTER with digest. Returns the final status.
  int register_(const std::string& password, int expires = 3600, const std::string& dev = kDev,
                const std::string& ruri = std::string("sip:") + kPlatform + "@3402000000", const std::string& user = "") {
    int st = send(request(ruri, dev, expires, ""));
    if (st != 401) return st;
    sip::Message m;
    sip::parse(last, m);
    const sip::Header* h = m.find(sip::HeaderId::WWWAuthenticate);
    REQUIRE(h);
    REQUIRE(client.set_challenge(h->value));
    std::string authz;
    REQUIRE(client.authorize("REGISTER", ruri, user.empty() ? dev : user, password, authz));
    return send(request(ruri, dev, expires, authz));
  }
  bool has(std::string_view text) const { return last.find(text) != std::string::npos; }
};
}  // namespace

TEST_CASE("registrar: 401 then 200 with Contact, Expires and the GB Date; refresh; Expires 0") {
  Rig r;
  CHECK(r.register_("12345678") == 200);
  CHECK(r.has("Expires: 3600"));
  CHECK(r.has(";expires=3600"));
  CHECK(r.has("Date: 20"));
  CHECK(r.has("T"));
  REQUIRE(r.reg.find(kDev)->live.registered);
  CHECK(r.hooks.events == std::vector<std::string>{std::string("online ") + kDev});
  CHECK(r.reg.find(kDev)->live.registrations == 1);
  // Refresh in the same Call-ID: no new registration, no new online event.
  CHECK(r.register_("12345678") == 200);
  CHECK(r.reg.find(kDev)->live.registrations == 1);
  CHECK(r.hooks.events.size() == 1);
  // Unregister.
  CHECK(r.register_("12345678", 0) == 200);
  CHECK_FALSE(r.reg.find(kDev)->live.registered);
  CHECK(r.hooks.events.back() == std::string("offline ") + kDev + " unregistered");
}

TEST_CASE("registrar: the device's Date form is switchable, and off") {
  Rig r;
  r.reg.find(kDev)->conf.date = "rfc";
  CHECK(r.register_("12345678") == 200);
  CHECK(r.has(" GMT\r\n"));
  r.reg.find(kDev)->conf.date = "off";
  CHECK(r.register_("12345678") == 200);
  CHECK_FALSE(r.has("Date:"));
}

TEST_CASE("registrar: refusals") {
  Rig r;
  SUBCASE("wrong password: 403") {
    CHECK(r.register_("wrong") == 403);
    CHECK(r.has("wrong password"));
  }
  SUBCASE("unknown device: 403 without a challenge") {
    CHECK(r.register_("12345678", 3600, "34020000001320000099") == 403);
    CHECK(r.has("unknown device"));
  }
  SUBCASE("another platform's ID in the Request-URI: 403") {
    CHECK(r.register_("12345678", 3600, kDev, "sip:34020000002000000999@127.0.0.1:5060") == 403);
    CHECK(r.has("other platform"));
  }
  SUBCASE("digest username other than the device's: 403") {
    CHECK(r.register_("12345678", 3600, kDev, std::string("sip:") + kPlatform + "@3402000000", "admin") == 403);
  }
  SUBCASE("To user not a GB code: 400") { CHECK(r.register_("12345678", 3600, "alice") == 400); }
  SUBCASE("below Min-Expires: 423 with Min-Expires") {
    CHECK(r.register_("12345678", 30) == 423);
    CHECK(r.has("Min-Expires: 60"));
  }
  CHECK_FALSE(r.reg.find(kDev)->live.registered);
  CHECK(r.hooks.events.empty());
}

TEST_CASE("registrar: response tags for stateful requests are 16 hex digits and never repeat") {
  Rig a, b;  // two instances: each its own key
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    for (Rig* r : {&a, &b}) {
      std::string t = r->registrar->tag(sip::TxnId(1));
      REQUIRE(t.size() == 16);
      CHECK(t.find_first_not_of("0123456789abcdef") == std::string::npos);
      CHECK(seen.insert(t).second);
    }
  }
}

TEST_CASE("registrar: both Request-URI forms; the digest username may be provisioned ('admin')") {
  Rig r;
  CHECK(r.register_("12345678", 3600, kDev, "sip:34020000002000000001@127.0.0.1:5060") == 200);
  r.reg.find(kDev)->conf.username = "admin";
  CHECK(r.register_("12345678", 3600, kDev, "sip:3402000000", "admin") == 200);
}

TEST_CASE("registrar: a reboot (new Call-ID, CSeq from 1) is a new registration; the address follows") {
  Rig r;
  CHECK(r.register_("12345678") == 200);
  r.call_id = "c2";
  r.cseq = 0;
  // From another port (NAT rebinding after the reboot).
  int st = r.send(r.request(std::string("sip:") + kPlatform + "@3402000000", kDev, 3600, ""), 6000);
  CHECK(st == 401);
  sip::Message m;
  sip::parse(r.last, m);
  REQUIRE(r.client.set_challenge(m.find(sip::HeaderId::WWWAuthenticate)->value));
  std::string authz;
  REQUIRE(r.client.authorize("REGISTER", std::string("sip:") + kPlatform + "@3402000000", kDev, "12345678", authz));
  CHECK(r.send(r.request(std::string("sip:") + kPlatform + "@3402000000", kDev, 3600, authz), 6000) == 200);
  gb::Device* d = r.reg.find(kDev);
  CHECK(d->live.registrations == 2);
  CHECK(d->live.call_id == "c2");
  CHECK(d->live.flow.peer.port == 6000);
  CHECK(r.has("received=127.0.0.1"));
}

TEST_CASE("registrar: auto-admission with the platform password") {
  Rig r(json{{"password", "platformpw"}, {"auto_admit", true}});
  CHECK(r.register_("wrong", 3600, "34020000001320000050") == 403);
  CHECK(r.reg.find("34020000001320000050") == nullptr);  // not admitted on a failed digest
  CHECK(r.register_("platformpw", 3600, "34020000001320000050") == 200);
  REQUIRE(r.reg.find("34020000001320000050"));
  CHECK(r.reg.find("34020000001320000050")->conf.auto_admitted);
}

TEST_CASE("registrar: redirect answers 302 with the server's Contact and Expires after the digest") {
  json rd = {{"enabled", true},
             {"expires_s", 600},
             {"servers", json::array({{{"id", "34020000002000000002"}, {"address", "127.0.0.1:5070"}, {"prefixes", {"3402"}}}})}};
  Rig r(json{{"redirect", rd}});
  CHECK(r.send(r.request(std::string("sip:") + kPlatform + "@3402000000", kDev, 3600, "")) == 401);
  CHECK(r.register_("wrong") == 403);  // no redirect without a good digest
  CHECK(r.register_("12345678") == 302);
  CHECK(r.has("Contact: <sip:34020000002000000002@127.0.0.1:5070>"));
  CHECK(r.has("Expires: 600"));
  CHECK_FALSE(r.reg.find(kDev)->live.registered);
}

#include "snapshots.hpp"

TEST_CASE("snapshots: upload paths, session IDs, file names") {
  std::string dev, sid, file;
  std::string s32(32, 'a');
  CHECK(gb::parse_snapshot_path(std::string("/snapshot/") + kDev + "/" + s32, dev, sid, file));
  CHECK(dev == kDev);
  CHECK(sid == s32);
  CHECK(file.empty());
  CHECK(gb::parse_snapshot_path(std::string("/snapshot/") + kDev + "/" + s32 + "/a_1.jpg", dev, sid, file));
  CHECK(file == "a_1.jpg");
  CHECK_FALSE(gb::parse_snapshot_path(std::string("/snapshot/") + kDev + "/short", dev, sid, file));
  CHECK_FALSE(gb::parse_snapshot_path(std::string("/snapshot/") + kDev + "/" + s32 + "/../x", dev, sid, file));
  CHECK_FALSE(gb::parse_snapshot_path(std::string("/snapshot/alice/") + s32, dev, sid, file));
  CHECK_FALSE(gb::parse_snapshot_path("/other", dev, sid, file));
  CHECK_FALSE(gb::valid_session_id(std::string(33, '/')));
  CHECK(gb::valid_session_id(std::string(128, '-')));
  CHECK_FALSE(gb::valid_session_id(std::string(129, 'a')));
}

TEST_CASE("snapshots: the image of a raw or multipart upload") {
  std::string err, name;
  std::string jpeg = "\xFF\xD8\xFF\xE0rest-of-jpeg";
  CHECK(gb::upload_image(jpeg, "image/jpeg", err) == jpeg);
  CHECK(gb::is_jpeg(jpeg));
  CHECK_FALSE(gb::is_jpeg("GIF89a"));
  std::string mp = "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
                   "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"snap01.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n" +
                   jpeg + "\r\n--XyZ--\r\n";
  CHECK(gb::upload_image(mp, "multipart/form-data; boundary=XyZ", err, &name) == jpeg);
  CHECK(name == "snap01.jpg");
  CHECK(gb::upload_image(mp, "multipart/form-data; boundary=\"XyZ\"", err) == jpeg);
  CHECK(gb::upload_image(mp, "multipart/form-data", err).empty());
  CHECK(err.find("boundary") != std::string::npos);
  std::string none = "--B\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--B--\r\n";
  CHECK(gb::upload_image(none, "multipart/form-data; boundary=B", err).empty());
  CHECK(err.find("no file part") != std::string::npos);
  CHECK(gb::upload_image("--B\r\nfilename=x\r\n\r\nunterminated", "multipart/form-data; boundary=B", err).empty());
}
