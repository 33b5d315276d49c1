// media-echo: a test plugin for the core's media loops. It binds `sockets` UDP sockets on
// 127.0.0.1 (socket i on media loop (i % media_loops) + 1, or the control loop when the core
// runs none), echoes every datagram back to its sender from the same socket (the same buffer:
// zero copy), publishes it on the bus stream "media-echo/<i>" by interned id, and records which
// thread ran each socket's on_udp. On the first datagram it also calls a control-only service
// (event_publish) from the media loop, to show the core refuses it.
//
// Loop services: "post" {"loop", "n"} posts n cookies to a loop; each on_post records its thread
// name. Cookie kStartTimer (sent by "timer" {"loop", "ms"}) makes on_post start a one-shot timer
// on that loop; its on_timer records its thread and posts kTimerFired back to the control loop.
// "stop_timer" tries to stop that loop timer from the control loop (must be refused).
//
// Admin: "ports" -> [{port, loop}], "stats" -> counts + thread ids, "tap" {"stream"} subscribes
// on the control loop and counts deliveries (and on which thread they ran).
// Loop-local bus (ABI 2.1): "local_tap" {"socket": i} posts to socket i's loop, whose on_post
// subscribes there to the socket's own stream; each on_bus of it checks it runs on that loop and
// gets the very jn_buf* on_udp is publishing (by reference: 0 copies), shared (read-only).
// "local_untap" {"socket": i} ends it the same way; "local_tap_control" tries it from the control
// loop (must be refused).
// State (hot reload): the sockets (core-owned handles), counts, taps.
#include <junction/plugin.hpp>

#include <pthread.h>
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
std::string thread_name() {
  char n[32] = {0};
  pthread_getname_np(pthread_self(), n, sizeof n);
  return n;
}
constexpr uint64_t kStartTimer = 1u << 30, kTimerFired = 1u << 31, kFromSave = 1u << 29;
constexpr uint64_t kLocalTap = 1ull << 40, kLocalUntap = 1ull << 41;  // | socket index
constexpr size_t kMaxSocks = 16;

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
    count_ = std::min<uint32_t>(c.value("sockets", 4u), kMaxSocks);
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
      (void)t;
      control_only_status_ = host().event_publish("media-echo/probe", "{}");
    }
    std::vector<jn_send> out(n);
    for (size_t i = 0; i < n; ++i) {
      out[i] = jn_send{};
      out[i].sock = sock;
      out[i].to = d[i].buf->src;
      out[i].buf = d[i].buf;
      publishing_[cookie] = d[i].buf;  // what a loop-local subscriber must get, by reference
      if (s.bus_id) host().bus_publish_id(s.bus_id, d[i].buf);
      publishing_[cookie] = nullptr;
    }
    send_status_ = host().udp_send(out.data(), out.size());
    s.echoed += n;
  }

  void on_post(uint64_t cookie) override {
    std::lock_guard<std::mutex> g(mu_);
    if (cookie & (kLocalTap | kLocalUntap)) {  // on the socket's own media loop
      size_t i = cookie & 0xff;
      if (i >= socks_.size()) return;
      if (cookie & kLocalTap) {
        jn_handle h = 0;
        local_status_ = host().bus_subscribe_local(socks_[i].bus_id, kLocalTap | i, &h);
        local_sub_[i] = h;
      } else {
        local_status_ = host().bus_unsubscribe_local(local_sub_[i]);
        local_sub_[i] = 0;
      }
      ++local_ops_;
      return;
    }
    if (cookie == kTimerFired) {
      timer_echo_thread_ = thread_name();
      return;
    }
    if (cookie & kFromSave) {  // posted by an earlier instance while it was being swapped out
      int poster = static_cast<int>((cookie >> 8) & 0xffff);
      ++from_save_[poster < generation_ ? "successor" : "same-instance"];
      return;
    }
    ++posts_by_thread_[thread_name()];
    if (cookie & kStartTimer) {
      timer_start_status_ = host().timer(cookie & 0xffff, 0, 42, &loop_timer_);
    }
  }

  void on_timer(jn_handle t, uint64_t cookie) override {
    std::lock_guard<std::mutex> g(mu_);
    if (t != loop_timer_ || cookie != 42) return;
    timer_thread_ = thread_name();
    ++timer_fires_;
    timer_post_back_ = host().post(0, kTimerFired);
  }

  void on_bus(jn_handle sub, uint64_t cookie, jn_buf* buf) override {
    if (cookie & kLocalTap) {  // a loop-local delivery, inside on_udp's publish on this thread
      size_t i = cookie & 0xff;
      if (i >= kMaxSocks) return;
      local_deliveries_.fetch_add(1);
      if (buf == publishing_[i]) local_same_buffer_.fetch_add(1);
      if (host().buf_is_shared(buf)) local_shared_.fetch_add(1);
      if (thread_name() != "jn-media-" + std::to_string(socks_[i].loop)) local_wrong_thread_.fetch_add(1);
      (void)sub;
      return;
    }
    auto it = taps_.find(sub);
    if (it == taps_.end()) return;
    ++it->second;
    bus_thread_ = tid();
  }

  void on_admin(const jn_admin_request& r) override {
    std::string verb(to_sv(r.verb));
    std::lock_guard<std::mutex> g(mu_);
    if (verb == "post" || verb == "timer") {
      json j = json::parse(to_sv(r.body), nullptr, false);
      uint32_t loop = j.value("loop", 0u);
      uint64_t n = verb == "timer" ? 1 : j.value("n", 1u);
      jn_status st = JN_OK;
      uint64_t sent = 0;
      for (; sent < n && st == JN_OK; ++sent) st = host().post(loop, verb == "timer" ? (kStartTimer | j.value("ms", 10u)) : sent);
      host().admin_reply(r.reply, 200, json{{"status", st}, {"sent", st == JN_OK ? sent : sent - 1}, {"control", thread_name()}}.dump());
      return;
    }
    if (verb == "local_tap" || verb == "local_untap") {
      json j = json::parse(to_sv(r.body), nullptr, false);
      uint64_t i = j.is_object() ? j.value("socket", 0u) : 0;
      jn_status st = i < socks_.size() ? host().post(socks_[i].loop, (verb == "local_tap" ? kLocalTap : kLocalUntap) | i) : JN_ERR_INVALID;
      host().admin_reply(r.reply, 200, json{{"status", st}}.dump());
      return;
    }
    if (verb == "local_tap_control") {  // on the control loop: refused
      jn_handle h = 0;
      jn_status st = socks_.empty() ? JN_ERR_INVALID : host().bus_subscribe_local(socks_[0].bus_id, kLocalTap, &h);
      host().admin_reply(r.reply, 200, json{{"status", st}}.dump());
      return;
    }
    if (verb == "stop_timer") {  // a loop timer stopped from the control loop: refused
      host().admin_reply(r.reply, 200, json{{"status", host().stop_timer(loop_timer_)}}.dump());
      return;
    }
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
                         json{{"loops", loops_}, {"control_thread", tid()}, {"control_name", thread_name()},
                              {"posts_by_thread", posts_by_thread_}, {"from_save", from_save_}, {"timer_thread", timer_thread_}, {"timer_fires", timer_fires_},
                              {"timer_start_status", timer_start_status_}, {"timer_echo_thread", timer_echo_thread_},
                              {"timer_post_back", timer_post_back_}, {"sockets", socks}, {"control_only_status", control_only_status_},
                              {"send_status", send_status_}, {"tap_deliveries", taps}, {"bus_thread", bus_thread_}, {"generation", generation_},
                              {"local", {{"ops", local_ops_}, {"status", local_status_}, {"deliveries", local_deliveries_.load()},
                                         {"same_buffer", local_same_buffer_.load()}, {"shared", local_shared_.load()},
                                         {"wrong_thread", local_wrong_thread_.load()}}}}
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
    // Posts made while the swap is under way must reach the next instance (held, then replayed).
    for (uint32_t loop = 1; loop <= loops_; ++loop)
      for (int i = 0; i < 100; ++i) host().post(loop, kFromSave | (static_cast<uint64_t>(generation_) << 8) | i);
    out = json{{"socks", socks}, {"taps", taps}, {"probe", control_only_status_}, {"generation", generation_},
               {"posts", posts_by_thread_}, {"loop_timer", loop_timer_}, {"from_save", from_save_},
               {"local", {local_deliveries_.load(), local_same_buffer_.load(), local_shared_.load(), local_wrong_thread_.load(), local_ops_,
                          std::vector<jn_handle>(local_sub_, local_sub_ + kMaxSocks)}}}.dump();
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
    posts_by_thread_ = j.at("posts").get<std::map<std::string, uint64_t>>();
    loop_timer_ = j.at("loop_timer");
    from_save_ = j.at("from_save").get<std::map<std::string, uint64_t>>();
    probed_ = true;
    generation_ = j.at("generation").get<int>() + 1;
    if (j.contains("local")) {
      const json& l = j.at("local");
      local_deliveries_ = l[0].get<uint64_t>(), local_same_buffer_ = l[1].get<uint64_t>();
      local_shared_ = l[2].get<uint64_t>(), local_wrong_thread_ = l[3].get<uint64_t>();
      local_ops_ = l[4].get<uint64_t>();
      for (size_t i = 0; i < kMaxSocks && i < l[5].size(); ++i) local_sub_[i] = l[5][i].get<jn_handle>();
    }
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
  std::map<std::string, uint64_t> posts_by_thread_;  // under mu_
  std::map<std::string, uint64_t> from_save_;        // posts made by a save: reached a successor / the same instance
  jn_handle loop_timer_ = 0;
  std::string timer_thread_, timer_echo_thread_;
  uint64_t timer_fires_ = 0;
  jn_status timer_start_status_ = 1, timer_post_back_ = 1;
  int generation_ = 0;
  // Loop-local subscriptions: on_bus runs inside on_udp's publish (mu_ held by that same thread),
  // so these are atomics, not under mu_.
  jn_buf* publishing_[kMaxSocks] = {};
  jn_handle local_sub_[kMaxSocks] = {};
  jn_status local_status_ = 1;
  uint64_t local_ops_ = 0;
  std::atomic<uint64_t> local_deliveries_{0}, local_same_buffer_{0}, local_shared_{0}, local_wrong_thread_{0};
};

}  // namespace

JUNCTION_PLUGIN(MediaEcho, "media-echo", "1.0.0", "test plugin: UDP echo on the core's media loops", "", 1, 1)
