// udp-counter: the SDK's example plugin. Counts datagrams on a UDP port (optionally echoing
// them back and publishing them on the packet bus), keeps its counters across hot reloads, and
// answers admin commands. Everything a vendor plugin needs is shown here once.
//
// conf/plugins/udp-counter.toml:
//   listen = "127.0.0.1:7700"   # required
//   echo = false                 # send every datagram back to its source (zero-copy)
//   publish = ""                 # bus stream to publish every datagram on ("" = none)
//   tick_ms = 1000               # how often the rate gauge is updated
//   fail_init = ""               # test aid: refuse to initialise with this reason
//
// Datagrams that start with an 8-byte big-endian sequence number are checked for order.
#include <junction/plugin.hpp>

#include <string>

namespace {

using junction::sdk::Host;
using nlohmann::json;

class UdpCounter : public junction::sdk::Plugin {
 public:
  UdpCounter(Host host, const jn_create_args&) : Plugin(host) {
    json conf = host.config();
    for (auto& [key, value] : conf.items())
      if (key != "listen" && key != "echo" && key != "publish" && key != "tick_ms" && key != "fail_init") {
        host.config_error(key, "unknown key");
        throw std::invalid_argument("unknown key '" + key + "'");
      }
    if (!conf.contains("listen") || !conf["listen"].is_string()) {
      host.config_error("listen", "required: \"ip:port\"");
      throw std::invalid_argument("'listen' is required");
    }
    listen_ = conf["listen"].get<std::string>();
    echo_ = conf.value("echo", false);
    publish_ = conf.value("publish", std::string());
    tick_ms_ = conf.value("tick_ms", 1000);
    if (std::string why = conf.value("fail_init", std::string()); !why.empty()) throw std::runtime_error(why);
  }

  jn_status start() override {
    jn_status st = host().udp_bind(listen_, 0, &sock_);
    if (st != JN_OK) return st;
    st = host().timer(tick_ms_, tick_ms_, 0, &timer_);
    if (st != JN_OK) return st;
    host().info("counting datagrams on " + listen_);
    return JN_OK;
  }

  void on_udp(jn_handle sock, uint64_t, const jn_datagram* dgrams, size_t n) override {
    jn_send replies[64];
    size_t r = 0;
    for (size_t i = 0; i < n; ++i) {
      const jn_buf* b = dgrams[i].buf;
      ++received_;
      bytes_ += b->len;
      if (b->len >= 8) {
        uint64_t seq = 0;
        for (int k = 0; k < 8; ++k) seq = (seq << 8) | b->data[k];
        if (received_ > 1 && seq != last_seq_ + 1) ++out_of_order_;
        last_seq_ = seq;
      }
      if (!publish_.empty()) host().bus_publish(publish_, dgrams[i].buf);
      if (echo_ && r < 64) {
        replies[r] = jn_send{};
        replies[r].sock = sock;
        replies[r].to = b->src;
        replies[r].buf = dgrams[i].buf;  // the received buffer itself: no copy
        ++r;
      }
    }
    if (r) host().udp_send(replies, r);
  }

  void on_timer(jn_handle, uint64_t) override {
    ++ticks_;
    host().gauge_set("udp_counter_received", static_cast<double>(received_));
  }

  void on_admin(const jn_admin_request& req) override {
    std::string verb(junction::sdk::to_sv(req.verb));
    if (verb == "stats") {
      host().admin_reply(req.reply, 200, stats().dump());
    } else if (verb == "reset") {
      received_ = bytes_ = out_of_order_ = last_seq_ = 0;
      host().admin_reply(req.reply, 200, stats().dump());
    } else {
      host().admin_reply(req.reply, 404, json{{"error", "unknown command '" + verb + "' (stats, reset)"}}.dump());
    }
  }

  // Hot reload: the next instance keeps counting where this one stopped, on the same socket
  // and timer (handles survive a reload; only this object is replaced).
  jn_status save_state(std::string& out) override {
    out = stats().dump();
    return JN_OK;
  }
  jn_status restore_state(uint32_t schema, std::string_view data) override {
    if (schema != 1) return JN_ERR_ABI;
    json s = json::parse(data, nullptr, false);
    if (s.is_discarded()) {
      host().set_error("state is not JSON");
      return JN_ERR_INVALID;
    }
    received_ = s.at("received");
    bytes_ = s.at("bytes");
    out_of_order_ = s.at("out_of_order");
    last_seq_ = s.at("last_seq");
    ticks_ = s.at("ticks");
    sock_ = s.at("sock");
    timer_ = s.at("timer");
    instance_reloads_ = s.value("reloads", 0ull) + 1;
    return JN_OK;
  }

 private:
  json stats() const {
    return json{{"received", received_}, {"bytes", bytes_},  {"out_of_order", out_of_order_}, {"last_seq", last_seq_},
                {"ticks", ticks_},       {"sock", sock_},    {"timer", timer_},               {"reloads", instance_reloads_},
                {"listen", listen_}};
  }

  std::string listen_;
  bool echo_ = false;
  std::string publish_;
  int tick_ms_ = 1000;
  jn_handle sock_ = JN_INVALID_HANDLE;
  jn_handle timer_ = JN_INVALID_HANDLE;
  uint64_t received_ = 0, bytes_ = 0, out_of_order_ = 0, last_seq_ = 0, ticks_ = 0, instance_reloads_ = 0;
};

}  // namespace

JUNCTION_PLUGIN(UdpCounter, "udp-counter", "1.0.0", "Counts UDP datagrams; the SDK example", "", 1, 1)
