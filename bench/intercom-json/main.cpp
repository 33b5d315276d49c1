// intercom-json load generator: a single-threaded epoll client that plays door units and
// screens against a running junction with the intercom-json plugin (run.sh starts one).
//
//   bench_intercom_json calls PORT SECRET [pairs=64] [seconds=10] [server_pid]
//     `pairs` door units each call their own family's screen in a loop: call_req -> the screen
//     gets call_req -> call_accept -> the door gets call_accept -> call_end -> the screen gets
//     call_end -> next call. Reports calls set up (and torn down) per second, the setup latency
//     percentiles, and, given the server's pid, the server's CPU use, so calls/s per core.
//   bench_intercom_json conns PORT SECRET [n=10000] [server_pid]
//     Opens n connections that each join as a screen (n/2 families of two), holds them, checks
//     every one is still served (a seczone_emergency to all families reaches every one), and
//     reports the server's RSS per connection.
//
// Tokens are minted with the box's secret (the plugin's token format), so no admin call is
// needed per device. Only loopback addresses are used.
#include "protocol.hpp"
#include "token.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Client {
  int fd = -1;
  std::string rx, tx;
  bool screen = false;
  int pair = 0;
  bool joined = false;
  int alarms = 0;
  Clock::time_point sent;
  uint64_t serial = 0;
};

std::vector<Client> clients;
int ep = -1;
std::string secret;

int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("socket");
    std::exit(1);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    perror("connect");
    std::exit(1);
  }
  return fd;
}

void flush(Client& c) {
  while (!c.tx.empty()) {
    ssize_t n = ::send(c.fd, c.tx.data(), c.tx.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
    c.tx.erase(0, static_cast<size_t>(n));
  }
  epoll_event ev{};
  ev.events = EPOLLIN | (c.tx.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
  ev.data.u32 = static_cast<uint32_t>(&c - clients.data());
  epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
}

void send_msg(Client& c, const char* name, const json& values) {
  c.tx += intercom::encode("b" + std::to_string(++c.serial), name, values);
  c.tx.push_back('\0');
  flush(c);
}

std::string mint(const std::string& dev, int type, const std::string& room) {
  intercom::TokenClaims t;
  t.tid = "bench-" + dev;
  t.dev = dev;
  t.type = type;
  t.room = room;
  t.iat = std::time(nullptr);
  t.exp = t.iat + 86400;
  return intercom::token_sign(secret, t);
}

void add_client(Client c) {
  clients.push_back(std::move(c));
}

void register_all() {
  for (size_t i = 0; i < clients.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, clients[i].fd, &ev);
  }
}

// Reads what arrived; calls on_msg for each message.
template <typename F>
bool pump(int timeout_ms, F&& on_msg) {
  epoll_event evs[256];
  int n = epoll_wait(ep, evs, 256, timeout_ms);
  char buf[65536];
  for (int i = 0; i < n; ++i) {
    Client& c = clients[evs[i].data.u32];
    if (evs[i].events & EPOLLOUT) flush(c);
    if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
    for (;;) {
      ssize_t r = recv(c.fd, buf, sizeof buf, 0);
      if (r == 0) {
        std::fprintf(stderr, "connection %u closed by the server\n", evs[i].data.u32);
        std::exit(1);
      }
      if (r < 0) break;
      c.rx.append(buf, static_cast<size_t>(r));
    }
    size_t pos;
    while ((pos = c.rx.find('\0')) != std::string::npos) {
      std::string frame = c.rx.substr(0, pos);
      c.rx.erase(0, pos + 1);
      intercom::Message m;
      intercom::Error e;
      if (!intercom::parse_message(frame, m, e)) continue;
      on_msg(c, m);
    }
  }
  return n > 0;
}

double cpu_seconds(int pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long rss_kb(int pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

void join_all(size_t expect) {
  for (auto& c : clients) {
    std::string dev = (c.screen ? "bench-screen-" : "bench-door-") + std::to_string(&c - clients.data());
    send_msg(c, "join_family", {{"token", mint(dev, c.screen ? intercom::kInnerScreen : intercom::kOuterBox,
                                                c.screen ? "bench-" + std::to_string(c.pair) : "")}});
  }
  size_t joined = 0;
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (joined < expect && Clock::now() < deadline)
    pump(1000, [&](Client& c, const intercom::Message& m) {
      if (m.name == "join_accept" && !c.joined) {
        c.joined = true;
        ++joined;
      } else if (m.name == "join_reject") {
        std::fprintf(stderr, "join rejected: %s\n", m.values.dump().c_str());
        std::exit(1);
      }
    });
  if (joined < expect) {
    std::fprintf(stderr, "only %zu of %zu joined\n", joined, expect);
    std::exit(1);
  }
}

int run_calls(int port, int pairs, int seconds, int pid) {
  for (int i = 0; i < pairs; ++i) {
    Client door, screen;
    door.fd = connect_to(port);
    door.pair = i;
    screen.fd = connect_to(port);
    screen.screen = true;
    screen.pair = i;
    add_client(std::move(door));
    add_client(std::move(screen));
  }
  register_all();
  join_all(clients.size());
  std::vector<double> setup_us;
  setup_us.reserve(1 << 20);
  uint64_t done = 0;
  auto start_call = [&](Client& door) {
    door.sent = Clock::now();
    send_msg(door, "call_req", {{"sid", "s" + std::to_string(door.serial)},
                                {"src", {{"type", 3}, {"video_stream_id", "v" + std::to_string(door.pair)}}},
                                {"dest", {{"id", "bench-" + std::to_string(door.pair)}, {"type", 2}}}});
  };
  const double cpu0 = cpu_seconds(pid);
  const auto t0 = Clock::now();
  const auto t_end = t0 + std::chrono::seconds(seconds);
  for (auto& c : clients)
    if (!c.screen) start_call(c);
  bool stopping = false;
  size_t in_flight = static_cast<size_t>(pairs);
  while (in_flight > 0) {
    if (!stopping && Clock::now() >= t_end) stopping = true;
    pump(100, [&](Client& c, const intercom::Message& m) {
      if (c.screen) {
        if (m.name == "call_req") send_msg(c, "call_accept", {{"sid", m.values.value("sid", "")}});
        else if (m.name == "call_end") {
          Client& door = clients[&c - clients.data() - 1];
          ++done;
          if (stopping) --in_flight;
          else start_call(door);
        }
      } else {
        if (m.name == "call_accept") {
          setup_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - c.sent).count());
          send_msg(c, "call_end", {{"sid", m.values.value("sid", "")}});
        } else if (m.name == "call_reject" || m.name == "error") {
          std::fprintf(stderr, "unexpected %s %s\n", m.name.c_str(), m.values.dump().c_str());
          std::exit(1);
        }
      }
    });
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = cpu_seconds(pid) - cpu0;
  std::sort(setup_us.begin(), setup_us.end());
  auto pct = [&](double p) { return setup_us.empty() ? 0.0 : setup_us[static_cast<size_t>(p * (setup_us.size() - 1))]; };
  json out = {{"mode", "calls"}, {"pairs", pairs}, {"seconds", wall}, {"calls", done}, {"calls_per_s", done / wall},
              {"setup_us_p50", pct(0.5)}, {"setup_us_p99", pct(0.99)}, {"server_cpu_s", cpu},
              {"server_cpu_util", pid > 0 ? cpu / wall : 0}, {"calls_per_s_per_core", pid > 0 && cpu > 0 ? done / cpu : 0}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int run_conns(int port, int n, int pid) {
  const long rss0 = rss_kb(pid);
  for (int i = 0; i < n; ++i) {
    Client screen;
    screen.fd = connect_to(port);
    screen.screen = true;
    screen.pair = i / 2;
    add_client(std::move(screen));
  }
  register_all();
  const auto t0 = Clock::now();
  const double cpu0 = cpu_seconds(pid);
  join_all(clients.size());
  const double join_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double join_cpu = cpu_seconds(pid) - cpu0;
  const long rss1 = rss_kb(pid);
  std::printf("{\"progress\":\"%d joined in %.2f s; now ask for an alarm to every family\"}\n", n, join_s);
  std::fflush(stdout);
  // Wait for the alarm the driver triggers (admin `alarm` with no room): every screen must get it.
  size_t got = 0;
  const auto a0 = Clock::now();
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (got < clients.size() && Clock::now() < deadline)
    pump(1000, [&](Client& c, const intercom::Message& m) {
      if (m.name == "seczone_emergency" && c.alarms++ == 0) ++got;
    });
  const double alarm_s = std::chrono::duration<double>(Clock::now() - a0).count();
  json out = {{"mode", "conns"}, {"connections", n}, {"joined", n}, {"alarm_delivered_to", got},
              {"join_s", join_s}, {"joins_per_s", n / join_s}, {"server_join_cpu_s", join_cpu},
              {"server_rss_kb_before", rss0}, {"server_rss_kb_after", rss1},
              {"server_kb_per_conn", n ? static_cast<double>(rss1 - rss0) / n : 0}, {"alarm_wait_s", alarm_s}};
  std::printf("%s\n", out.dump().c_str());
  return got == clients.size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s calls PORT SECRET [pairs] [seconds] [server_pid]\n"
                         "       %s conns PORT SECRET [n] [server_pid]\n", argv[0], argv[0]);
    return 2;
  }
  std::string mode = argv[1];
  int port = std::atoi(argv[2]);
  secret = argv[3];
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (mode == "calls") {
    int pairs = argc > 4 ? std::atoi(argv[4]) : 64;
    int seconds = argc > 5 ? std::atoi(argv[5]) : 10;
    int pid = argc > 6 ? std::atoi(argv[6]) : 0;
    clients.reserve(static_cast<size_t>(pairs) * 2);
    return run_calls(port, pairs, seconds, pid);
  }
  if (mode == "conns") {
    int n = argc > 4 ? std::atoi(argv[4]) : 10000;
    int pid = argc > 5 ? std::atoi(argv[5]) : 0;
    clients.reserve(static_cast<size_t>(n));
    return run_conns(port, n, pid);
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
