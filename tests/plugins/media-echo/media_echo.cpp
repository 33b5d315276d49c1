// media-echo: a test plugin for the core's media loops. It binds `sockets` UDP sockets on
// 127.0.0.1 (socket i on media loop (i % media_loops) + 1, or the control loop when the core
// runs none), echoes every datagram back to its sender from the same socket (the same buffer:
// zero copy), publishes it on the bus stream "media-echo/<i>" by interned id, and records which
// thread ran each socket's on_udp. On the first datagram it also calls a control-only service
// (timer_start) from the media loop, to show the core refuses it.
//
// Admin: "ports" -> [{port, loop}], "stats" -> counts + thread ids, "tap" {"stream"} subscribes
// on the control loop and counts deliveries (and on which thread they ran).
// State (hot reload): the sockets (core-owned handles), counts, taps.
#include <junction/plugin.hpp>

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <vector>

namespace {
using junction::sdk::Host;
using junction::sdk::to_sv;
using nlohmann::json;

long tid() { return syscall(SYS_gettid); }

struct Sock {
  jn_handle h = 0;
  uint16_t port = 0;
  uint32_t loop = 0;
  uint32_t bus_id = 0;
  // Written on the socket's loop thread, read by admin under mu_.
  uint64_t echoed = 0;
  long thread = 0;
};

class MediaEcho : public junction::sdk::Plugin {
 public:
  MediaEcho(Host h, const jn_create_args&) : Plugin(h) {
    json c = h.config();
    count_ = c.value("sockets", 4u);
    loops_ = h.media_loops();
  }

  jn_status start() override {
    for (uint32_t i = 0; i < count_; ++i) {
      Sock s;
      s.loop = loops_ ? (i % loops_) + 1 : 0;
      jn_status st = host().udp_bind("127.0.0.1:0", i, &s.h, 0, s.loop);
      if (st != JN_OK) return st;
      jn_addr a{};
      host().api()->udp_local_addr(host().ctx(), s.h, &a);
      s.port = a.port;
      host().bus_intern("media-echo/" + std::to_string(i), &s.bus_id);
      socks_.push_back(s);
    }
    return JN_OK;
  }

  void on_udp(jn_handle sock, uint64_t cookie, const jn_datagram* d, size_t n) override {
    std::lock_guard<std::mutex> g(mu_);
    if (cookie >= socks_.size()) return;
    Sock& s = socks_[cookie];
    s.thread = tid();
    if (!probed_.exchange(true)) {
      jn_handle t = 0;
      control_only_status_ = host().api()->timer_start(host().ctx(), 1000, 0, 0, &t);
      if (control_only_status_ == JN_OK) host().stop_timer(t);
    }
    std::vector<jn_send> out(n);
    for (size_t i = 0; i < n; ++i) {
      out[i] = jn_send{};
      out[i].sock = sock;
      out[i].to = d[i].buf->src;
      out[i].buf = d[i].buf;
      if (s.bus_id) host().bus_publish_id(s.bus_id, d[i].buf);
    }
    send_status_ = host().udp_send(out.data(), out.size());
    s.echoed += n;
  }

  void on_bus(jn_handle sub, uint64_t, jn_buf*) override {
    auto it = taps_.find(sub);
    if (it == taps_.end()) return;
    ++it->second;
    bus_thread_ = tid();
  }

  void on_admin(const jn_admin_request& r) override {
    std::string verb(to_sv(r.verb));
    std::lock_guard<std::mutex> g(mu_);
    if (verb == "ports") {
      json a = json::array();
      for (auto& s : socks_) a.push_back({{"port", s.port}, {"loop", s.loop}});
      host().admin_reply(r.reply, 200, a.dump());
    } else if (verb == "stats") {
      json socks = json::array();
      for (auto& s : socks_) socks.push_back({{"port", s.port}, {"loop", s.loop}, {"echoed", s.echoed}, {"thread", s.thread}});
      uint64_t taps = 0;
      for (auto& [h, n] : taps_) taps += n;
      host().admin_reply(r.reply, 200,
                         json{{"loops", loops_}, {"control_thread", tid()}, {"sockets", socks}, {"control_only_status", control_only_status_},
                              {"send_status", send_status_}, {"tap_deliveries", taps}, {"bus_thread", bus_thread_}, {"generation", generation_}}
                             .dump());
    } else if (verb == "tap") {
      json j = json::parse(to_sv(r.body), nullptr, false);
      jn_handle h = 0;
      if (!j.is_object() || host().bus_subscribe(j.value("stream", std::string()), 0, &h) != JN_OK) {
        host().admin_reply(r.reply, 400, R"({"error":"body: {\"stream\": name}"})");
        return;
      }
      taps_[h] = 0;
      host().admin_reply(r.reply, 200, json{{"tap", h}}.dump());
    } else {
      host().admin_reply(r.reply, 404, R"({"error":"ports, stats, tap"})");
    }
  }

  jn_status save_state(std::string& out) override {
    std::lock_guard<std::mutex> g(mu_);
    json socks = json::array();
    for (auto& s : socks_) socks.push_back({s.h, s.port, s.loop, s.bus_id, s.echoed, s.thread});
    json taps = json::array();
    for (auto& [h, n] : taps_) taps.push_back({h, n});
    out = json{{"socks", socks}, {"taps", taps}, {"probe", control_only_status_}, {"generation", generation_}}.dump();
    return JN_OK;
  }
  jn_status restore_state(uint32_t, std::string_view data) override {
    json j = json::parse(data, nullptr, false);
    if (!j.is_object()) return JN_ERR_INVALID;
    for (auto& a : j.at("socks")) {
      Sock s;
      s.h = a[0], s.port = a[1], s.loop = a[2], s.bus_id = a[3], s.echoed = a[4], s.thread = a[5];
      socks_.push_back(s);
    }
    for (auto& t : j.at("taps")) taps_[t[0].get<jn_handle>()] = t[1];
    control_only_status_ = j.at("probe");
    probed_ = true;
    generation_ = j.at("generation").get<int>() + 1;
    return JN_OK;
  }

 private:
  uint32_t count_ = 4, loops_ = 0;
  std::mutex mu_;  // on_udp runs on several media loops at once
  std::vector<Sock> socks_;
  std::map<jn_handle, uint64_t> taps_;  // control loop only
  std::atomic<bool> probed_{false};
  jn_status control_only_status_ = 1;
  jn_status send_status_ = 0;
  long bus_thread_ = 0;
  int generation_ = 0;
};

}  // namespace

JUNCTION_PLUGIN(MediaEcho, "media-echo", "1.0.0", "test plugin: UDP echo on the core's media loops", "", 1, 1)
