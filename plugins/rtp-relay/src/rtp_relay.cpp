// rtp-relay: the media plane. An RTP/RTCP relay driven through the rtpengine "ng" protocol (so
// Kamailio's rtpengine module works unchanged), through application events from other plugins,
// through admin commands, and by the core's media anchoring. See ../README.md for the design and
// the conf keys, relay.hpp for how the sources are split and how the shards are locked.
#include "relay.hpp"

#include <stdexcept>

namespace rtp_relay {

using junction::sdk::to_sv;

// The media port source, at start and after a reload (restore_state replaces start there).
jn_status Relay::setup_ports() {
  if (!legacy_ports_) {
    // The range must exist in the core's conf: a missing one refuses the start, rather than
    // every offer failing later. A full range is fine (ports free up as calls end).
    jn_port_request r{};
    r.struct_size = sizeof r;
    r.proto = JN_PROTO_UDP;
    r.range = junction::sdk::to_jn(port_range_);
    r.ip = junction::sdk::to_jn(interface_);
    jn_handle h[2] = {0, 0};
    uint32_t port = 0;
    jn_status st = host_.api()->port_bind(host_.ctx(), &r, h, &port);
    if (st == JN_OK) {
      host_.api()->udp_close(host_.ctx(), h[0]);
    } else if (st == JN_ERR_NOT_FOUND && !port_range_set_) {
      // port_range left at its default and a core conf without [ports.media] (one written before
      // port ranges existed): the relay's own range, as before, with a warning.
      legacy_ports_ = true;
      port_used_.assign(static_cast<size_t>((port_max_ - port_min_ + 1) / 2), 0);
      host_.warn("rtp-relay: the core has no [ports." + port_range_ + "] range; using the relay's own ports " + std::to_string(port_min_) +
                 "-" + std::to_string(port_max_) + " (deprecated: add [ports." + port_range_ + "] min/max to junction.toml)");
    } else if (st != JN_ERR_LIMIT) {
      host_.set_error("rtp-relay: port_range '" + port_range_ + "': " +
                      (st == JN_ERR_NOT_FOUND ? std::string("the core has no such range (add [ports.") + port_range_ + "] min/max to junction.toml)"
                                              : "port_bind failed with status " + std::to_string(st)));
      return st;
    }
  } else {  // explicit port_min/port_max
    host_.warn("rtp-relay: port_min/port_max are deprecated: configure a [ports.NAME] range in junction.toml and port_range = \"NAME\"");
  }
  return JN_OK;
}

jn_status Relay::start() {
  if (jn_status st = setup_ports(); st != JN_OK) return st;
  if (!ng_listen_.empty()) {
    jn_status st = host_.udp_bind(ng_listen_, kNgCookie, &ng_sock_, 65535);
    if (st != JN_OK) return st;
  }
  jn_status st = host_.timer(1000, 1000, 0, &timer_);
  if (st != JN_OK) return st;
  if (!control_topic_.empty()) host_.event_subscribe(control_topic_);
  std::string ports = legacy_ports_ ? std::to_string(port_min_) + "-" + std::to_string(port_max_) : "range '" + port_range_ + "'";
  host_.info("rtp-relay: ng on " + (ng_listen_.empty() ? std::string("(off)") : ng_listen_) + ", media " + interface_ + " ports " + ports);
  return JN_OK;
}

// Once a second: the calls whose silence deadline is due, and the metrics. Nothing here takes a
// shard lock unless a deadline is due (the counters are read without one).
void Relay::on_tick() {
  expire_due(host_.now_ms());
  host_.gauge_set("rtp_relay_sessions", static_cast<double>(calls_.size()));
  report_metrics();
}

void Relay::report_metrics() {
  const Counters c = totals();
  auto bump = [&](const char* name, const char* labels, uint64_t v, uint64_t& last) {
    if (v > last) host_.counter_add(name, v - last, labels);
    last = v;
  };
  bump("rtp_relay_packets_total", "", c.rx, reported_.rx);
  bump("rtp_relay_forwarded_total", "", c.forwarded, reported_.forwarded);
  bump("rtp_relay_dropped_total", "reason=\"malformed\"", c.malformed, reported_.malformed);
  bump("rtp_relay_dropped_total", "reason=\"source\"", c.source, reported_.source);
  bump("rtp_relay_dropped_total", "reason=\"no_destination\"", c.nodest, reported_.nodest);
  bump("rtp_relay_dropped_total", "reason=\"srtp\"", c.srtp, reported_.srtp);
  bump("rtp_relay_dropped_total", "reason=\"ssrc_flood\"", c.ssrc_flood, reported_.ssrc_flood);
  bump("rtp_relay_ng_errors_total", "", c.ng_errors, reported_.ng_errors);
  bump("rtp_relay_timeouts_total", "", c.timeouts, reported_.timeouts);
}

// Other plugins drive the relay with ng dictionaries as JSON events on control_topic:
// {"reply_topic":"my-plugin.rtp", "id":"...", "command":"offer", "call-id":..., ...}; the reply
// (the ng reply dictionary plus "id") is published on reply_topic.
void Relay::on_event(std::string_view topic, std::string_view body) {
  if (topic != control_topic_) return;
  json j = json::parse(body, nullptr, false);
  if (!j.is_object()) {
    ++stats_.ng_bad;
    host_.warn("rtp-relay: control event is not a JSON object");
    return;
  }
  Value r = handle_ng(value_from_json(j), jn_addr{});
  json out = value_to_json(r);
  if (j.contains("id")) out["id"] = j["id"];
  if (j.contains("reply_topic") && j["reply_topic"].is_string()) host_.event_publish(j["reply_topic"].get<std::string>(), out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void Relay::on_admin(const jn_admin_request& req) {
  std::string verb(to_sv(req.verb));
  if (verb == "ng") {
    json j = json::parse(to_sv(req.body), nullptr, false);
    if (!j.is_object()) {
      host_.admin_reply(req.reply, 400, json{{"error", "body must be an ng dictionary as a JSON object"}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
    }
    host_.admin_reply(req.reply, 200, value_to_json(handle_ng(value_from_json(j), jn_addr{})).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (verb == "tap") {
    // A diagnostic bus subscriber: counts what a stream carries; hold=true keeps a reference
    // to the latest packet, as a recorder with a queue would (see the SRTP copy rule).
    json j = json::parse(to_sv(req.body), nullptr, false);
    if (!j.is_object() || !j.contains("stream") || !j["stream"].is_string()) {
      host_.admin_reply(req.reply, 400, json{{"error", "body: {\"stream\": name, \"hold\": bool}"}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
    }
    Tap t;
    t.stream = j["stream"].get<std::string>();
    t.hold = j.value("hold", false);
    jn_handle h = 0;
    if (host_.bus_subscribe(t.stream, 0, &h) != JN_OK) {
      host_.admin_reply(req.reply, 500, json{{"error", "bus_subscribe failed"}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
    }
    taps_[h] = t;
    host_.admin_reply(req.reply, 200, json{{"tap", h}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (verb == "taps") {
    json all = json::array();
    for (auto& [h, t] : taps_)
      all.push_back({{"tap", h}, {"stream", t.stream}, {"packets", t.packets}, {"rtcp", t.rtcp}, {"bytes", t.bytes}, {"hold", t.hold}});
    host_.admin_reply(req.reply, 200, all.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (verb == "stats") {
    host_.admin_reply(req.reply, 200, stats_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (verb == "locks") {
    host_.admin_reply(req.reply, 200, locks_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (verb == "sessions") {
    json all = json::object();
    for (auto& [id, s] : calls_) {  // one shard lock per call, never all at once
      ShardLock lock(*this, s.shard);
      all[id] = value_to_json(session_stats(s));
    }
    host_.admin_reply(req.reply, 200, all.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    host_.admin_reply(req.reply, 404, json{{"error", "unknown command '" + verb + "' (ng, stats, sessions, locks, tap, taps)"}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
}

void Relay::on_bus(jn_handle sub, jn_buf* b) {
  auto it = taps_.find(sub);
  if (it == taps_.end()) return;
  Tap& t = it->second;
  if (b->flags & JN_BUF_RTCP) ++t.rtcp;
  else ++t.packets;
  t.bytes += b->len;
  if (t.hold) {
    host_.buf_ref(b);
    if (t.held) host_.buf_unref(t.held);
    t.held = b;
  }
}

namespace {

RelayConf checked_conf(Host host) {
  RelayConf conf;
  if (auto err = parse_conf(host.config(), conf)) {
    host.config_error(err->key, err->reason);
    throw std::invalid_argument(err->key + ": " + err->reason);
  }
  return conf;
}

class RtpRelay : public junction::sdk::Plugin {
 public:
  RtpRelay(Host host, const jn_create_args&) : Plugin(host), relay_(host, checked_conf(host), host.media_loops()) {
    if (!srtp_library_init(host)) throw std::runtime_error("libsrtp2 init failed (library_pin or srtp_init)");
  }
  jn_status start() override { return relay_.start(); }
  void on_udp(jn_handle sock, uint64_t cookie, const jn_datagram* d, size_t n) override {
    if (cookie == kNgCookie) {
      for (size_t i = 0; i < n; ++i) relay_.on_ng_datagram(sock, d[i].buf);
      return;
    }
    relay_.on_media(sock, cookie, d, n);
  }
  void on_anchor(const jn_anchor_request& req) override { relay_.on_anchor(req); }
  void on_timer(jn_handle, uint64_t) override { relay_.on_tick(); }
  void on_event(std::string_view topic, std::string_view body) override { relay_.on_event(topic, body); }
  void on_admin(const jn_admin_request& req) override { relay_.on_admin(req); }
  void on_bus(jn_handle sub, uint64_t, jn_buf* b) override { relay_.on_bus(sub, b); }
  jn_status save_state(std::string& out) override { return relay_.save_state(out); }
  jn_status restore_state(uint32_t schema, std::string_view data) override { return relay_.restore_state(schema, data); }

 private:
  Relay relay_;
};

}  // namespace
}  // namespace rtp_relay

JUNCTION_PLUGIN(rtp_relay::RtpRelay, "rtp-relay", "1.0.0", "RTP/RTCP media relay driven by the rtpengine ng protocol", "", 1, 1)
