// The CPU the plugin and sdk/sip spend per keepalive, step by step, without the kernel's share
// (receive, wake-up, send): the keepalive MESSAGE as bench/gb_register/keepalive.xml sends it,
// 10 000 devices looked up in turn (so the index and the Device are cache misses, as in the
// server), thread CPU ns per keepalive, best of 9 rounds (docs/benchmarks.md, gb registrar).
//
//   build/bench/gb_register/bench_gb_keepalive [iterations]
#include "registry.hpp"

#include <body.hpp>
#include <junction/sip/message.hpp>
#include <junction/sip/stack.hpp>
#include <junction/sip/transaction.hpp>
#include <junction/sip/uri.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

namespace sip = junction::sip;

namespace {

// The stack's environment without a kernel: a send is counted, not sent.
struct NullEnv : sip::Env {
  size_t sent = 0, bytes = 0;
  uint64_t now_ms() override { return 1; }
  jn_status send(sip::Flow&, std::string_view b) override {
    ++sent;
    bytes += b.size();
    return JN_OK;
  }
  void wake_at(uint64_t) override {}
  void log(int, std::string_view) override {}
  bool log_enabled(int) override { return false; }
  std::string random_hex(size_t n) override { return std::string(2 * n, 'a'); }
};

// What the plugin does with a stateless keepalive (plugin.cpp on_keepalive, without the host):
// the device by the From URI parse() read, the retransmission check, the 200.
struct KaUser : sip::StackUser {
  sip::Stack* stack = nullptr;
  gb::Registry* reg = nullptr;
  void on_request(sip::TxnId id, const sip::Message& m, const sip::Flow&) override {
    gb::Device* d = reg->find(m.from_uri().user);
    if (!d) return;
    uint64_t fp = sip::request_fingerprint(m);
    if (fp != d->live.ka_fp) {
      d->live.ka_fp = fp;
      ++d->live.keepalives;
    }
    stack->respond(id, 200, {}, {});
  }
  void on_response(sip::TxnId, int, const sip::Message*) override {}
};

double cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

std::atomic<size_t> g_sink{0};

template <typename F>
double measure(size_t iters, F&& f) {
  for (size_t i = 0; i < iters / 10 + 1; ++i) f(i);
  double best = 1e18;
  for (int round = 0; round < 9; ++round) {
    double t0 = cpu_ns();
    for (size_t i = 0; i < iters; ++i) f(i);
    double ns = (cpu_ns() - t0) / double(iters);
    if (ns < best) best = ns;
  }
  return best;
}

std::string device_id(size_t i) {
  char b[24];
  std::snprintf(b, sizeof b, "3402000000132%07zu", i);
  return b;
}

// As sipp sends it (keepalive.xml), for device i.
std::string keepalive(size_t i) {
  std::string id = device_id(i);
  std::string body = "<?xml version=\"1.0\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>" + std::to_string(i + 1) +
                     "</SN>\r\n<DeviceID>" + id + "</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n";
  return "MESSAGE sip:34020000002000000001@127.0.0.1:5060 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-12345-" + std::to_string(i + 1) + "-0;rport\r\n"
         "From: <sip:" + id + "@3402000000>;tag=12345SIPpTag01" + std::to_string(i + 1) + "\r\n"
         "To: <sip:34020000002000000001@3402000000>\r\n"
         "Call-ID: " + std::to_string(i + 1) + "-12345@127.0.0.1\r\n"
         "CSeq: 20 MESSAGE\r\n"
         "Content-Type: Application/MANSCDP+xml\r\n"
         "Max-Forwards: 70\r\n"
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

int main(int argc, char** argv) {
  size_t iters = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200000;
  constexpr size_t kDevices = 10000;
  std::vector<std::string> msgs;
  gb::Registry reg;
  for (size_t i = 0; i < kDevices; ++i) {
    msgs.push_back(keepalive(i));
    gb::DeviceConf c;
    c.id = device_id(i);
    reg.put(c);
  }
  auto m = std::make_unique<sip::Message>();
  for (auto& s : msgs)
    if (sip::parse(s, *m) != sip::ParseStatus::Ok || !junction::gb::is_plain_keepalive(m->body())) {
      std::fprintf(stderr, "the keepalive does not parse\n");
      return 1;
    }
  // Each keepalive is copied into one receive buffer first, as the core's recvmmsg does: the
  // parser reads bytes that are in the cache, the device's index slot and record are not.
  std::string rx;
  rx.reserve(2048);
  auto msg = [&](size_t i) -> const std::string& {
    rx.assign(msgs[(i * 7919) % kDevices]);
    return rx;
  };

  double copy = measure(iters, [&](size_t i) { g_sink += msg(i).size(); });
  double parse = measure(iters, [&](size_t i) {
    sip::parse(msg(i), *m);
    g_sink += m->headers().size();
  });
  double lookup = measure(iters, [&](size_t i) {
    sip::parse(msg(i), *m);
    gb::Device* d = reg.find(m->from_uri().user);  // the plugin's sender(): the URI parse() read
    g_sink += d ? d->live.keepalives++ : 0;
  });
  double body = measure(iters, [&](size_t i) {
    sip::parse(msg(i), *m);
    g_sink += junction::gb::is_plain_keepalive(m->body());
  });
  sip::Flow from;
  from.peer.family = 4;
  from.peer.ip[0] = 127;
  from.peer.ip[3] = 1;
  from.peer.port = 5061;
  double build = measure(iters, [&](size_t i) {
    sip::parse(msg(i), *m);
    uint64_t fp = sip::request_fingerprint(*m);
    std::string received;
    uint16_t rport = 0;
    sip::TransactionLayer::source_of(m->top_via().sent_by, m->top_via().has_rport, from, received, rport);
    std::string r = sip::TransactionLayer::build_response(*m, 200, "OK", "0123456789abcdef", {}, {}, {}, {}, received, rport);
    g_sink += r.size() + fp;
  });
  // The whole stateless path through the stack: parse, the stateless_request predicate (the body
  // check), the user's lookup and retransmission check, the fingerprint, the 200 built and sent.
  NullEnv env;
  KaUser user;
  sip::StackConfig sc;
  sc.user_agent = "junction-gb28181";
  sc.stateless_request = [](const sip::Message& q) {
    return q.method() == "MESSAGE" && q.to_tag().empty() && junction::gb::is_plain_keepalive(q.body());
  };
  sip::Stack stack(env, user, sc);
  user.stack = &stack;
  user.reg = &reg;
  double whole = measure(iters, [&](size_t i) { stack.on_datagram(msg(i), from); });
  if (env.sent != stack.counters().rx_stateless) {
    std::fprintf(stderr, "the stack answered %zu of %llu keepalives\n", env.sent,
                 (unsigned long long)stack.counters().rx_stateless);
    return 1;
  }
  std::printf("ns per keepalive (best of 9 rounds of %zu, thread CPU):\n", iters);
  std::printf("  copy into the rx buffer    %8.1f\n", copy);
  std::printf("  + parse                    %8.1f  (%.1f)\n", parse, parse - copy);
  std::printf("  + From URI + device lookup %8.1f  (%.1f)\n", lookup, lookup - parse);
  std::printf("  + body check               %8.1f  (%.1f)\n", body, body - parse);
  std::printf("  + fingerprint + 200 built  %8.1f  (%.1f)\n", build, build - parse);
  std::printf("  the stack's stateless path %8.1f  (%.1f: parse, body check, lookup, fingerprint, 200 sent)\n", whole,
              whole - copy);
  return 0;
}
