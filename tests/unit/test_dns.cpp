// DnsResolver tests: the real resolver (c-ares on a libuv loop) against a DNS server written in
// the test (tests/lib/dns_test_server.hpp, UDP on 127.0.0.1), all on one loop; the loop runs
// until a callback fires.
#include <doctest/doctest.h>

#include "../lib/dns_test_server.hpp"
#include "bus/addr.hpp"
#include "net/dns_resolver.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace junction;
using jntest::DnsTestServer;
using jntest::run_until;

namespace {

std::string ip_of(const jn_addr& a) {
  std::string s = format_addr(a);  // "ip:port" / "[v6]:port"
  s = s.substr(0, s.rfind(':'));
  if (!s.empty() && s.front() == '[') s = s.substr(1, s.size() - 2);
  return s;
}

std::string target_str(const SipTarget& t) {
  return std::string(sip_transport_name(t.transport)) + " " + format_addr(t.addr);
}

struct Fx {
  uv_loop_t loop{};
  std::unique_ptr<DnsTestServer> srv;
  std::unique_ptr<DnsResolver> res;

  explicit Fx(DnsResolverOptions o = {}) {
    uv_loop_init(&loop);
    srv = std::make_unique<DnsTestServer>(&loop);
    auto& s = *srv;
    s.add_a("a.test", "127.0.0.10", 300);
    s.add_a("a.test", "127.0.0.11", 60);
    s.add_aaaa("v6.test", "::1");
    s.add_aaaa("v6.test", "2001:db8::1");
    s.add_srv("_sip._udp.srv.test", 10, 60, 5060, "a.test", 120);
    s.add_srv("_sip._udp.srv.test", 20, 0, 5070, "b.test", 120);
    s.add_naptr("naptr.test", 20, 10, "s", "SIP+D2U", "", "_sip._udp.naptr.test");
    s.add_naptr("naptr.test", 10, 20, "S", "SIP+D2T", "", "_sip._tcp.naptr.test");
    s.add_naptr("naptr.test", 10, 10, "u", "E2U+sip", "!^.*$!sip:info@example.test!", ".");
    s.set_rcode("fail.test", 2);
    s.set_silent("silent.test");
    o.servers = {s.addr()};
    o.try_timeout_ms = 300;  // c-ares's own retries, so a silent name is given up on quickly
    if (!o.seed) o.seed = 1;
    res = std::make_unique<DnsResolver>(&loop, o);
  }
  ~Fx() {
    bool done = false;
    int calls = 0;
    res->stop([&] {
      done = true;
      ++calls;
    });
    srv->close();
    CHECK(run_until(&loop, [&] { return done && srv->closed(); }));
    CHECK(calls == 1);
    res.reset();
    CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    CHECK(uv_loop_close(&loop) == 0);
  }

  DnsResult resolve(const std::string& name, DnsType type, uint32_t timeout_ms = 3000) {
    std::optional<DnsResult> r;
    std::string err;
    uint64_t id = res->resolve(name, type, timeout_ms, [&](const DnsResult& x) { r = x; }, &err);
    REQUIRE_MESSAGE(id != 0, err);
    CHECK(!r);  // never from inside resolve()
    REQUIRE(run_until(&loop, [&] { return r.has_value(); }));
    return *r;
  }

  SipResolveResult resolve_sip(SipResolveRequest req) {
    std::optional<SipResolveResult> r;
    std::string err;
    uint64_t id = res->resolve_sip(std::move(req), [&](const SipResolveResult& x) { r = x; }, &err);
    REQUIRE_MESSAGE(id != 0, err);
    CHECK(!r);
    REQUIRE(run_until(&loop, [&] { return r.has_value(); }));
    return *r;
  }
  static std::vector<std::string> targets(const SipResolveResult& r) {
    std::vector<std::string> out;
    for (auto& t : r.targets) out.push_back(target_str(t));
    return out;
  }
};

}  // namespace

TEST_CASE("dns: A records with the smallest TTL") {
  Fx fx;
  DnsResult r = fx.resolve("a.test", DnsType::kA);
  CHECK(r.status == DnsStatus::kOk);
  CHECK(r.name == "a.test");
  REQUIRE(r.addresses.size() == 2);
  CHECK(r.addresses[0].family == 4);
  CHECK(ip_of(r.addresses[0]) == "127.0.0.10");
  CHECK(ip_of(r.addresses[1]) == "127.0.0.11");
  CHECK(r.ttl == 60);
  CHECK(fx.srv->count("a.test", DnsTestServer::A) == 1);
}

TEST_CASE("dns: AAAA records") {
  Fx fx;
  DnsResult r = fx.resolve("V6.test.", DnsType::kAAAA);  // case and the final dot do not matter
  CHECK(r.status == DnsStatus::kOk);
  REQUIRE(r.addresses.size() == 2);
  CHECK(r.addresses[0].family == 6);
  CHECK(ip_of(r.addresses[0]) == "::1");
  CHECK(ip_of(r.addresses[1]) == "2001:db8::1");
  CHECK(r.ttl == 300);
}

TEST_CASE("dns: SRV records") {
  Fx fx;
  DnsResult r = fx.resolve("_sip._udp.srv.test", DnsType::kSRV);
  CHECK(r.status == DnsStatus::kOk);
  REQUIRE(r.srv.size() == 2);
  CHECK(r.srv[0].priority == 10);
  CHECK(r.srv[0].weight == 60);
  CHECK(r.srv[0].port == 5060);
  CHECK(r.srv[0].target == "a.test");
  CHECK(r.srv[1].priority == 20);
  CHECK(r.srv[1].port == 5070);
  CHECK(r.srv[1].target == "b.test");
  CHECK(r.ttl == 120);
}

TEST_CASE("dns: NAPTR records sorted by order then preference") {
  Fx fx;
  DnsResult r = fx.resolve("naptr.test", DnsType::kNAPTR);
  CHECK(r.status == DnsStatus::kOk);
  REQUIRE(r.naptr.size() == 3);
  CHECK(r.naptr[0].order == 10);
  CHECK(r.naptr[0].preference == 10);
  CHECK(r.naptr[0].flags == "u");
  CHECK(r.naptr[0].service == "E2U+sip");
  CHECK(r.naptr[0].regexp == "!^.*$!sip:info@example.test!");
  CHECK(r.naptr[1].preference == 20);
  CHECK(r.naptr[1].flags == "S");
  CHECK(r.naptr[1].service == "SIP+D2T");
  CHECK(r.naptr[1].replacement == "_sip._tcp.naptr.test");
  CHECK(r.naptr[2].order == 20);
  CHECK(r.naptr[2].service == "SIP+D2U");
  CHECK(r.naptr[2].regexp.empty());
}

TEST_CASE("dns: NXDOMAIN, no data, SERVFAIL") {
  Fx fx;
  CHECK(fx.resolve("nx.test", DnsType::kA).status == DnsStatus::kNxDomain);
  DnsResult nodata = fx.resolve("a.test", DnsType::kAAAA);
  CHECK(nodata.status == DnsStatus::kNoData);
  CHECK(nodata.addresses.empty());
  DnsResult fail = fx.resolve("fail.test", DnsType::kA);
  CHECK(fail.status == DnsStatus::kServFail);
  CHECK(!fail.error.empty());
}

TEST_CASE("dns: a server that never answers times out") {
  Fx fx;
  DnsResult r = fx.resolve("silent.test", DnsType::kA, 200);
  CHECK(r.status == DnsStatus::kTimeout);
  CHECK(fx.srv->count("silent.test", DnsTestServer::A) >= 1);  // it was asked
  // The resolver still answers afterwards.
  CHECK(fx.resolve("a.test", DnsType::kA).status == DnsStatus::kOk);
}

TEST_CASE("dns: bad names are refused without a query") {
  Fx fx;
  for (const char* name : {"", "a..test", ".", "a.test..", "exa mple.test", "x/y.test"}) {
    CAPTURE(name);
    CHECK(fx.resolve(name, DnsType::kA).status == DnsStatus::kBadName);
  }
  std::string long_label(64, 'a');
  CHECK(fx.resolve(long_label + ".test", DnsType::kA).status == DnsStatus::kBadName);
  CHECK(fx.srv->queries.empty());
}

TEST_CASE("dns: literal IPs and localhost answer on the next turn without a query") {
  Fx fx;
  DnsResult v4 = fx.resolve("127.0.0.5", DnsType::kA);
  CHECK(v4.status == DnsStatus::kOk);
  REQUIRE(v4.addresses.size() == 1);
  CHECK(ip_of(v4.addresses[0]) == "127.0.0.5");
  DnsResult v6 = fx.resolve("[::1]", DnsType::kAAAA);
  CHECK(v6.status == DnsStatus::kOk);
  REQUIRE(v6.addresses.size() == 1);
  CHECK(ip_of(v6.addresses[0]) == "::1");
  CHECK(fx.resolve("::1", DnsType::kA).status == DnsStatus::kNoData);
  CHECK(fx.resolve("127.0.0.5", DnsType::kSRV).status == DnsStatus::kBadName);
  DnsResult lh = fx.resolve("localhost", DnsType::kA);
  REQUIRE(lh.addresses.size() == 1);
  CHECK(ip_of(lh.addresses[0]) == "127.0.0.1");
  CHECK(fx.srv->queries.empty());
}

TEST_CASE("dns: a cancelled query never calls back") {
  Fx fx;
  bool first = false, second = false, literal = false;
  uint64_t id1 = fx.res->resolve("a.test", DnsType::kA, 3000, [&](const DnsResult&) { first = true; });
  uint64_t id3 = fx.res->resolve("127.0.0.1", DnsType::kA, 3000, [&](const DnsResult&) { literal = true; });
  REQUIRE(id1);
  REQUIRE(id3);
  CHECK(fx.res->cancel(id1));
  CHECK(fx.res->cancel(id3));
  CHECK(!fx.res->cancel(id1));
  CHECK(!fx.res->cancel(987654));
  // The answer to the cancelled query arrives before this one (same socket, answered in order).
  uint64_t id2 = fx.res->resolve("v6.test", DnsType::kAAAA, 3000, [&](const DnsResult&) { second = true; });
  REQUIRE(id2);
  REQUIRE(run_until(&fx.loop, [&] { return second; }));
  CHECK(fx.srv->answered == 2);
  CHECK(fx.srv->count("a.test", DnsTestServer::A) == 1);
  CHECK(!first);
  CHECK(!literal);
  CHECK(fx.res->outstanding() == 0);
}

TEST_CASE("dns: outstanding queries are capped") {
  DnsResolverOptions o;
  o.max_outstanding = 2;
  Fx fx(o);
  int calls = 0;
  auto cb = [&](const DnsResult&) { ++calls; };
  uint64_t a = fx.res->resolve("silent.test", DnsType::kA, 60000, cb);
  uint64_t b = fx.res->resolve("silent.test", DnsType::kAAAA, 60000, cb);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(fx.res->outstanding() == 2);
  std::string err;
  CHECK(fx.res->resolve("a.test", DnsType::kA, 1000, cb, &err) == 0);
  CHECK(err.find("too many") != std::string::npos);
  err.clear();
  CHECK(fx.res->resolve_sip({.host = "a.test"}, [](const SipResolveResult&) {}, &err) == 0);
  CHECK(err.find("too many") != std::string::npos);
  CHECK(fx.res->cancel(a));
  std::optional<DnsResult> r;
  REQUIRE(fx.res->resolve("a.test", DnsType::kA, 3000, [&](const DnsResult& x) { r = x; }));
  REQUIRE(run_until(&fx.loop, [&] { return r.has_value(); }));
  CHECK(r->status == DnsStatus::kOk);
  CHECK(calls == 0);
  // b is still outstanding: stop() (in ~Fx) drops it without a callback.
  CHECK(fx.res->outstanding() == 1);
}

TEST_CASE("dns: stop drops outstanding queries and refuses new ones") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  DnsTestServer srv(&loop);
  srv.set_silent("silent.test");
  DnsResolverOptions o;
  o.servers = {srv.addr()};
  int calls = 0;
  {
    DnsResolver res(&loop, o);
    res.resolve("silent.test", DnsType::kA, 60000, [&](const DnsResult&) { ++calls; });
    res.resolve_sip({.host = "silent.test"}, [&](const SipResolveResult&) { ++calls; });
    REQUIRE(run_until(&loop, [&] { return srv.count("silent.test", DnsTestServer::A) == 1; }));
    res.resolve("127.0.0.1", DnsType::kA, 60000, [&](const DnsResult&) { ++calls; });  // ready, not delivered
    bool done = false;
    res.stop([&] { done = true; });
    std::string err;
    CHECK(res.resolve("a.test", DnsType::kA, 1000, [&](const DnsResult&) { ++calls; }, &err) == 0);
    CHECK(!err.empty());
    REQUIRE(run_until(&loop, [&] { return done; }));
  }
  srv.close();
  CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
  CHECK(calls == 0);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("dns: bad server addresses are refused") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  DnsResolverOptions o;
  o.servers = {"not-an-ip:53"};
  CHECK_THROWS_AS(DnsResolver(&loop, o), std::runtime_error);
  CHECK(uv_loop_close(&loop) == 0);
}

// ---- RFC 3263 -------------------------------------------------------------------------------

TEST_CASE("dns: resolve_sip follows NAPTR, then SRV priorities, then A/AAAA") {
  Fx fx;
  auto& s = *fx.srv;
  // NAPTR: UDP (order 10, pref 10) before TCP (order 10, pref 20) before TLS (order 30); an
  // unsupported SCTP service and a non-SIP service are skipped.
  s.add_naptr("example.test", 30, 10, "s", "SIPS+D2T", "", "_sips._tcp.example.test");
  s.add_naptr("example.test", 10, 20, "s", "SIP+D2T", "", "_sip._tcp.example.test");
  s.add_naptr("example.test", 10, 10, "s", "SIP+D2U", "", "_sip._udp.example.test");
  s.add_naptr("example.test", 5, 10, "s", "SIP+D2S", "", "_sip._sctp.example.test");
  s.add_naptr("example.test", 1, 10, "u", "E2U+sip", "!^.*$!sip:x@y!", ".");
  // SRV: priority 10 before 20, whatever the answer order.
  s.add_srv("_sip._udp.example.test", 20, 0, 5070, "b.example.test");
  s.add_srv("_sip._udp.example.test", 10, 0, 5060, "a.example.test");
  s.add_srv("_sip._tcp.example.test", 10, 0, 5080, "a.example.test");
  s.add_srv("_sips._tcp.example.test", 10, 0, 5061, "tls.example.test");
  s.add_a("a.example.test", "127.0.0.21");
  s.add_a("b.example.test", "127.0.0.22");
  s.add_aaaa("b.example.test", "::1");
  s.add_a("tls.example.test", "127.0.0.23");

  SipResolveResult r = fx.resolve_sip({.host = "example.test"});
  CHECK(r.status == DnsStatus::kOk);
  std::vector<std::string> want = {"udp 127.0.0.21:5060", "udp 127.0.0.22:5070", "udp [::1]:5070",
                                   "tcp 127.0.0.21:5080", "tls 127.0.0.23:5061"};
  CHECK(Fx::targets(r) == want);
  REQUIRE(!r.targets.empty());
  CHECK(r.targets[0].target == "a.example.test");
  CHECK(s.count("_sip._sctp.example.test", DnsTestServer::SRV) == 0);

  // A sips: URI keeps only the TLS service.
  SipResolveResult sips = fx.resolve_sip({.host = "example.test", .sips = true});
  CHECK(Fx::targets(sips) == std::vector<std::string>{"tls 127.0.0.23:5061"});

  // With SCTP supported (and preferred), its NAPTR (order 5) comes first.
  s.add_srv("_sip._sctp.example.test", 10, 0, 5090, "a.example.test");
  SipResolveResult sctp = fx.resolve_sip(
      {.host = "example.test",
       .supported = {SipTransport::kSctp, SipTransport::kUdp, SipTransport::kTcp, SipTransport::kTls}});
  REQUIRE(!sctp.targets.empty());
  CHECK(target_str(sctp.targets[0]) == "sctp 127.0.0.21:5090");
}

TEST_CASE("dns: resolve_sip without NAPTR tries SRV per supported transport, then A") {
  Fx fx;
  auto& s = *fx.srv;
  s.add_empty("srvonly.test");
  s.add_srv("_sip._tcp.srvonly.test", 10, 0, 5080, "h.srvonly.test");
  s.add_srv("_sip._udp.srvonly.test", 10, 0, 5070, "h.srvonly.test");
  s.add_a("h.srvonly.test", "127.0.0.31");
  SipResolveResult r = fx.resolve_sip({.host = "srvonly.test"});
  CHECK(r.status == DnsStatus::kOk);
  CHECK(Fx::targets(r) == std::vector<std::string>{"udp 127.0.0.31:5070", "tcp 127.0.0.31:5080"});
  CHECK(s.count("srvonly.test", DnsTestServer::NAPTR) == 1);
  CHECK(s.count("_sips._tcp.srvonly.test", DnsTestServer::SRV) == 1);

  // TCP preferred by the caller comes first.
  SipResolveResult tcp_first = fx.resolve_sip(
      {.host = "srvonly.test", .supported = {SipTransport::kTcp, SipTransport::kUdp}});
  CHECK(Fx::targets(tcp_first) == std::vector<std::string>{"tcp 127.0.0.31:5080", "udp 127.0.0.31:5070"});

  // Neither NAPTR nor SRV: A/AAAA of the domain, UDP on 5060 (TLS on 5061 for sips:).
  s.add_a("plain.test", "127.0.0.32");
  CHECK(Fx::targets(fx.resolve_sip({.host = "plain.test"})) ==
        std::vector<std::string>{"udp 127.0.0.32:5060"});
  CHECK(Fx::targets(fx.resolve_sip({.host = "plain.test", .sips = true})) ==
        std::vector<std::string>{"tls 127.0.0.32:5061"});
}

TEST_CASE("dns: resolve_sip with an explicit port, transport or a literal") {
  Fx fx;
  auto& s = *fx.srv;
  s.add_a("host.test", "127.0.0.41");
  s.add_srv("_sip._tcp.host.test", 10, 0, 5099, "host.test");
  s.add_naptr("host.test", 10, 10, "s", "SIP+D2U", "", "_sip._udp.host.test");

  // Explicit port: A/AAAA only, no NAPTR or SRV.
  SipResolveResult port = fx.resolve_sip({.host = "host.test", .port = 5088});
  CHECK(Fx::targets(port) == std::vector<std::string>{"udp 127.0.0.41:5088"});
  CHECK(s.count("host.test", DnsTestServer::NAPTR) == 0);
  CHECK(s.count("_sip._tcp.host.test", DnsTestServer::SRV) == 0);

  // Explicit transport: the SRV of that transport, no NAPTR.
  SipResolveResult tcp = fx.resolve_sip({.host = "host.test", .transport = SipTransport::kTcp});
  CHECK(Fx::targets(tcp) == std::vector<std::string>{"tcp 127.0.0.41:5099"});
  CHECK(s.count("host.test", DnsTestServer::NAPTR) == 0);

  // Numeric hosts are used as they are, without any query.
  size_t before = s.queries.size();
  CHECK(Fx::targets(fx.resolve_sip({.host = "127.0.0.9"})) == std::vector<std::string>{"udp 127.0.0.9:5060"});
  CHECK(Fx::targets(fx.resolve_sip({.host = "[::1]", .port = 5070, .transport = SipTransport::kTcp})) ==
        std::vector<std::string>{"tcp [::1]:5070"});
  CHECK(Fx::targets(fx.resolve_sip({.host = "127.0.0.9", .sips = true})) ==
        std::vector<std::string>{"tls 127.0.0.9:5061"});
  CHECK(Fx::targets(fx.resolve_sip({.host = "localhost", .transport = SipTransport::kTcp})) ==
        std::vector<std::string>{"tcp 127.0.0.1:5060", "tcp [::1]:5060"});
  CHECK(s.queries.size() == before);

  // A domain that does not exist ends at its NAPTR.
  SipResolveResult nx = fx.resolve_sip({.host = "nx.test"});
  CHECK(nx.status == DnsStatus::kNxDomain);
  CHECK(nx.targets.empty());
  CHECK(s.count("_sip._udp.nx.test", DnsTestServer::SRV) == 0);

  SipResolveResult bad = fx.resolve_sip({.host = "bad..name"});
  CHECK(bad.status == DnsStatus::kBadName);
}

TEST_CASE("dns: resolve_sip cancel and timeout") {
  Fx fx;
  fx.srv->set_silent("slow.test");
  bool called = false;
  uint64_t id = fx.res->resolve_sip({.host = "slow.test"}, [&](const SipResolveResult&) { called = true; });
  REQUIRE(id);
  REQUIRE(run_until(&fx.loop, [&] { return fx.srv->count("slow.test", DnsTestServer::NAPTR) >= 1; }));
  CHECK(fx.res->cancel(id));
  CHECK(fx.res->outstanding() == 0);
  SipResolveResult r = fx.resolve_sip({.host = "slow.test", .timeout_ms = 200});
  CHECK(r.status == DnsStatus::kTimeout);
  CHECK(!called);
}

TEST_CASE("dns: order_srv sorts by priority and drops '.' targets") {
  Fx fx;
  std::vector<DnsSrv> in = {{30, 0, 1, "c"}, {10, 5, 2, "a"}, {20, 0, 3, "."}, {10, 5, 4, "b"}};
  for (int i = 0; i < 20; ++i) {
    auto out = fx.res->order_srv(in);
    REQUIRE(out.size() == 3);
    CHECK(out[0].priority == 10);
    CHECK(out[1].priority == 10);
    CHECK(out[0].target != out[1].target);
    CHECK(out[2].target == "c");
  }
}
