// A fake environment for the SIP stack's unit tests and fuzz target: a clock the test moves,
// every send captured (with optional loss), one timer that fires when the clock passes it.
#pragma once

#include <junction/sip/transport.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace junction::sip::testing {

struct Sent {
  Flow flow;
  std::string bytes;
  uint64_t at = 0;
};

class FakeEnv : public Env {
 public:
  uint64_t now = 1000;
  uint64_t wake = UINT64_MAX;
  std::vector<Sent> sent;
  std::vector<std::string> logs;
  int fail_sends = 0;       // the next n sends fail (a dead connection)
  uint64_t next_conn = 100; // TCP connections the env "opens"
  uint64_t rnd = 0;
  std::function<void()> on_wake;  // called when the clock passes the armed deadline

  uint64_t now_ms() override { return now; }
  jn_status send(Flow& flow, std::string_view bytes) override {
    if (fail_sends > 0) {
      --fail_sends;
      return JN_ERR_IO;
    }
    if (flow.reliable() && flow.conn == 0) flow.conn = next_conn++;
    sent.push_back({flow, std::string(bytes), now});
    return JN_OK;
  }
  void wake_at(uint64_t at) override { wake = at; }
  void log(int, std::string_view m) override { logs.emplace_back(m); }
  bool log_enabled(int) override { return true; }
  std::string random_hex(size_t n) override {
    std::string s = std::to_string(++rnd);
    while (s.size() < 2 * n) s = "0" + s;
    return s;
  }

  // Moves the clock to t, firing the timer at each armed deadline on the way.
  void advance_to(uint64_t t) {
    while (wake != UINT64_MAX && wake <= t) {
      now = std::max(now, wake);
      wake = UINT64_MAX;
      if (on_wake) on_wake();
    }
    now = t;
  }
  void advance(uint64_t ms) { advance_to(now + ms); }
  // How many captured sends start with prefix (a start line).
  size_t count(std::string_view prefix) const {
    size_t n = 0;
    for (auto& s : sent)
      if (std::string_view(s.bytes).substr(0, prefix.size()) == prefix) ++n;
    return n;
  }
  std::vector<uint64_t> times(std::string_view prefix) const {
    std::vector<uint64_t> t;
    for (auto& s : sent)
      if (std::string_view(s.bytes).substr(0, prefix.size()) == prefix) t.push_back(s.at);
    return t;
  }
};

inline jn_addr loopback(uint16_t port) {
  jn_addr a{};
  a.family = 4;
  a.port = port;
  a.ip[0] = 127;
  a.ip[3] = 1;
  return a;
}
inline Flow udp_flow(uint16_t port) {
  Flow f;
  f.proto = Proto::Udp;
  f.peer = loopback(port);
  return f;
}
inline Flow tcp_flow(uint16_t port, jn_handle conn) {
  Flow f;
  f.proto = Proto::Tcp;
  f.peer = loopback(port);
  f.conn = conn;
  return f;
}
inline Flow tls_flow(uint16_t port, jn_handle conn) {
  Flow f = tcp_flow(port, conn);
  f.proto = Proto::Tls;
  return f;
}

}  // namespace junction::sip::testing
