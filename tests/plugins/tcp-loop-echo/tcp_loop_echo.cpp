// tcp-loop-echo: a test plugin for TCP connections on the core's media loops (ABI 2.1,
// jn_tcp_options.loop). Two listeners on media loop `listen_loop` (default 1): `len16_listen`
// (RFC 4571 frames) and `sip_listen` (JN_FRAME_SIP); every frame is echoed byte-exact on the
// connection's own loop (tcp_send from on_tcp), except the frame "close", which makes the plugin
// close the connection from its side. Each frame is also published on the bus stream
// "tcp-loop-echo/frames" (by interned id) after a buf_ref; the plugin's own control-loop
// subscription checks that the very jn_buf* the loop published arrives (by reference) and unrefs it.
// Every event records the thread that ran it, and whether ev.buf is the frame (data == buf->data).
//
// Admin: "connect" {"addr", "loop", "framing": "len16"|"sip", "tls"} -> {status, conn};
//   "send" {"conn", "data"} sends from the control loop -> {status};
//   "cross_send" {"conn", "loop"} posts to `loop`, whose on_post tries tcp_send, tcp_close and
//   tcp_set_cookie on conn there (statuses in stats.cross);
//   "close" {"conn"} closes from the control loop; "conns" -> [{conn, thread, listener}];
//   "stats" -> counts (the control thread's name in "control").
// State (hot reload): counts, connections, the bus stream and subscription, the buffers in flight.
#include <junction/plugin.hpp>

#include <pthread.h>

#include <map>
#include <mutex>
#include <set>

namespace {
using junction::sdk::Host;
using junction::sdk::to_sv;
using nlohmann::json;

std::string thread_name() {
  char n[32] = {0};
  pthread_getname_np(pthread_self(), n, sizeof n);
  return n;
}

const char* type_name(uint32_t t) {
  switch (t) {
    case JN_TCP_ACCEPTED: return "accepted";
    case JN_TCP_CONNECTED: return "connected";
    case JN_TCP_FRAME: return "frame";
    case JN_TCP_OVERSIZE: return "oversize";
    case JN_TCP_CLOSED: return "closed";
  }
  return "?";
}

constexpr uint64_t kCross = 1ull << 40;

class TcpLoopEcho : public junction::sdk::Plugin {
 public:
  TcpLoopEcho(Host h, const jn_create_args&) : Plugin(h) {
    json c = h.config();
    len16_listen_ = c.value("len16_listen", std::string());
    sip_listen_ = c.value("sip_listen", std::string());
    listen_loop_ = c.value("listen_loop", 1u);
    max_frame_ = c.value("max_frame", 1500u);
  }

  jn_status start() override {
    if (!len16_listen_.empty()) {
      jn_tcp_options o = Host::tcp_options(JN_FRAME_LEN16, 0, max_frame_);
      o.loop = listen_loop_;
      if (jn_status st = host().tcp_listen(len16_listen_, o, 1, &l16_); st != JN_OK) return st;
    }
    if (!sip_listen_.empty()) {
      jn_tcp_options o = Host::tcp_options(JN_FRAME_SIP, 0, 4096);
      o.loop = listen_loop_;
      if (jn_status st = host().tcp_listen(sip_listen_, o, 2, &lsip_); st != JN_OK) return st;
    }
    if (jn_status st = host().bus_intern("tcp-loop-echo/frames", &bus_id_); st != JN_OK) return st;
    return host().bus_subscribe("tcp-loop-echo/frames", 7, &sub_);
  }

  void on_tcp(const jn_tcp_event& ev) override {
    std::lock_guard<std::mutex> g(mu_);
    const std::string t = thread_name();
    ++events_[type_name(ev.type)][t];
    switch (ev.type) {
      case JN_TCP_ACCEPTED:
      case JN_TCP_CONNECTED:
        conns_[ev.conn] = {t, ev.listener};
        break;
      case JN_TCP_FRAME: {
        if (ev.buf && ev.data == ev.buf->data && ev.len == ev.buf->len) ++buf_ok_;
        else ++buf_bad_;
        std::string_view frame(reinterpret_cast<const char*>(ev.data), ev.len);
        if (frame == "close") {
          close_status_ = host().tcp_close(ev.conn);
          break;
        }
        if (ev.buf) {  // kept past the hook and handed to the bus by reference
          host().buf_ref(ev.buf);
          inflight_.insert(ev.buf);
          if (host().bus_publish_id(bus_id_, ev.buf) != JN_OK) ++publish_failed_;
        }
        jn_status st = host().tcp_send(ev.conn, frame);
        if (st == JN_OK) ++echoed_;
        else ++send_failed_, last_send_status_ = st;
        break;
      }
      case JN_TCP_OVERSIZE:
        ++oversize_;
        break;
      case JN_TCP_CLOSED:
        closed_.push_back(ev.status);
        conns_.erase(ev.conn);
        break;
    }
  }

  void on_bus(jn_handle, uint64_t cookie, jn_buf* buf) override {
    std::lock_guard<std::mutex> g(mu_);
    if (cookie != 7) return;
    ++bus_deliveries_;
    bus_threads_[thread_name()]++;
    auto it = inflight_.find(buf);
    if (it == inflight_.end()) return;
    ++same_buffer_;
    inflight_.erase(it);
    host().buf_unref(buf);
  }

  void on_post(uint64_t cookie) override {
    if (!(cookie & kCross)) return;
    std::lock_guard<std::mutex> g(mu_);
    jn_handle conn = cross_conn_;
    cross_ = {{"thread", thread_name()}, {"send", host().tcp_send(conn, "x")}, {"cookie", host().tcp_set_cookie(conn, 5)},
              {"close", host().tcp_close(conn)}};
  }

  void on_admin(const jn_admin_request& r) override {
    std::string verb(to_sv(r.verb));
    json j = json::parse(to_sv(r.body), nullptr, false);
    if (!j.is_object()) j = json::object();
    if (verb == "connect") {
      jn_tcp_options o = Host::tcp_options(j.value("framing", std::string("len16")) == "sip" ? JN_FRAME_SIP : JN_FRAME_LEN16, 0,
                                           j.value("framing", std::string("len16")) == "sip" ? 4096 : max_frame_);
      o.loop = j.value("loop", 0u);
      o.tls = j.value("tls", false) ? 1 : 0;
      jn_handle h = 0;
      jn_status st = host().tcp_connect(j.value("addr", std::string()), o, 3, &h);
      host().admin_reply(r.reply, 200, json{{"status", st}, {"conn", h}}.dump());
      return;
    }
    std::lock_guard<std::mutex> g(mu_);
    if (verb == "send") {
      jn_status st = host().tcp_send(j.value("conn", jn_handle{0}), j.value("data", std::string()));
      host().admin_reply(r.reply, 200, json{{"status", st}}.dump());
    } else if (verb == "close") {
      host().admin_reply(r.reply, 200, json{{"status", host().tcp_close(j.value("conn", jn_handle{0}))}}.dump());
    } else if (verb == "cross_send") {
      cross_conn_ = j.value("conn", jn_handle{0});
      host().admin_reply(r.reply, 200, json{{"status", host().post(j.value("loop", 0u), kCross)}}.dump());
    } else if (verb == "conns") {
      json a = json::array();
      for (auto& [h, c] : conns_) a.push_back({{"conn", h}, {"thread", c.first}, {"listener", c.second == l16_ ? "len16" : c.second == lsip_ ? "sip" : ""}});
      host().admin_reply(r.reply, 200, a.dump());
    } else if (verb == "stats") {
      host().admin_reply(r.reply, 200,
                         json{{"control", thread_name()}, {"events", events_}, {"buf_ok", buf_ok_}, {"buf_bad", buf_bad_},
                              {"echoed", echoed_}, {"send_failed", send_failed_}, {"last_send_status", last_send_status_},
                              {"oversize", oversize_}, {"closed", closed_}, {"close_status", close_status_},
                              {"bus_deliveries", bus_deliveries_}, {"bus_threads", bus_threads_}, {"same_buffer", same_buffer_},
                              {"inflight", inflight_.size()}, {"publish_failed", publish_failed_}, {"cross", cross_},
                              {"generation", generation_}}
                             .dump());
    } else {
      host().admin_reply(r.reply, 404, R"({"error":"connect, send, close, cross_send, conns, stats"})");
    }
  }

  jn_status save_state(std::string& out) override {
    std::lock_guard<std::mutex> g(mu_);
    json conns = json::array();
    for (auto& [h, c] : conns_) conns.push_back({h, c.first, c.second});
    json inflight = json::array();
    for (jn_buf* b : inflight_) inflight.push_back(reinterpret_cast<uintptr_t>(b));  // same process: the refs move on
    out = json{{"l16", l16_}, {"lsip", lsip_}, {"bus_id", bus_id_}, {"sub", sub_}, {"events", events_}, {"buf_ok", buf_ok_},
               {"buf_bad", buf_bad_}, {"echoed", echoed_}, {"send_failed", send_failed_}, {"oversize", oversize_}, {"closed", closed_},
               {"bus_deliveries", bus_deliveries_}, {"bus_threads", bus_threads_}, {"same_buffer", same_buffer_},
               {"publish_failed", publish_failed_}, {"conns", conns}, {"inflight", inflight}, {"generation", generation_}}
              .dump();
    inflight_.clear();
    return JN_OK;
  }

  jn_status restore_state(uint32_t, std::string_view data) override {
    json j = json::parse(data, nullptr, false);
    if (!j.is_object()) return JN_ERR_INVALID;
    l16_ = j.at("l16"), lsip_ = j.at("lsip"), bus_id_ = j.at("bus_id"), sub_ = j.at("sub");
    events_ = j.at("events").get<decltype(events_)>();
    buf_ok_ = j.at("buf_ok"), buf_bad_ = j.at("buf_bad"), echoed_ = j.at("echoed"), send_failed_ = j.at("send_failed");
    oversize_ = j.at("oversize"), closed_ = j.at("closed").get<std::vector<jn_status>>();
    bus_deliveries_ = j.at("bus_deliveries"), same_buffer_ = j.at("same_buffer"), publish_failed_ = j.at("publish_failed");
    bus_threads_ = j.at("bus_threads").get<decltype(bus_threads_)>();
    for (auto& c : j.at("conns")) conns_[c[0].get<jn_handle>()] = {c[1].get<std::string>(), c[2].get<jn_handle>()};
    for (auto& b : j.at("inflight")) inflight_.insert(reinterpret_cast<jn_buf*>(b.get<uintptr_t>()));
    generation_ = j.at("generation").get<int>() + 1;
    return JN_OK;
  }

  ~TcpLoopEcho() override {
    for (jn_buf* b : inflight_) host().buf_unref(b);  // published but never delivered (unload)
  }

 private:
  std::string len16_listen_, sip_listen_;
  uint32_t listen_loop_ = 1, max_frame_ = 1500;
  jn_handle l16_ = 0, lsip_ = 0, sub_ = 0, cross_conn_ = 0;
  uint32_t bus_id_ = 0;
  std::mutex mu_;  // on_tcp runs on two media loops and the control loop's hooks read the counts
  std::map<std::string, std::map<std::string, uint64_t>> events_;  // type -> thread -> count
  std::map<jn_handle, std::pair<std::string, jn_handle>> conns_;   // conn -> (thread, listener)
  std::map<std::string, uint64_t> bus_threads_;
  std::set<jn_buf*> inflight_;
  uint64_t buf_ok_ = 0, buf_bad_ = 0, echoed_ = 0, send_failed_ = 0, oversize_ = 0, bus_deliveries_ = 0, same_buffer_ = 0,
           publish_failed_ = 0;
  jn_status last_send_status_ = 0, close_status_ = 1;
  std::vector<jn_status> closed_;
  json cross_ = json::object();
  int generation_ = 0;
};

}  // namespace

JUNCTION_PLUGIN(TcpLoopEcho, "tcp-loop-echo", "1.0.0", "test plugin: TCP echo on the core's media loops", "", 1, 1)
