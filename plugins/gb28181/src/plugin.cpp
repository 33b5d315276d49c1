#include "plugin.hpp"

#include "ids.hpp"
#include "liveness.hpp"

#include <junction/util/addr.hpp>
#include <junction/util/random.hpp>

#include <algorithm>

namespace gb {

namespace sip = junction::sip;
namespace util = junction::util;
namespace mc = junction::gb;
using nlohmann::json;

namespace {
constexpr uint64_t kTimerCookie = 0x6742000000000001ull;
constexpr uint64_t kTcpCookie = 0x6742000000000002ull;
constexpr std::string_view kAllow = "Allow: REGISTER, MESSAGE, NOTIFY, OPTIONS, INVITE, ACK, BYE, CANCEL, INFO, SUBSCRIBE\r\n";

sip::StackConfig stack_config(const Conf& c) {
  sip::StackConfig sc;
  jn_addr a{};
  util::parse_addr(c.udp_listen, a);
  sc.host = util::format_ip(a);
  sc.udp_port = a.port;
  sc.tcp_port = a.port;
  if (!c.tcp_listen.empty() && util::parse_addr(c.tcp_listen, a)) sc.tcp_port = a.port;
  sc.timers.t1_ms = c.t1_ms;
  sc.timers.t2_ms = c.t2_ms;
  sc.timers.t4_ms = c.t4_ms;
  sc.user_agent = "junction-gb28181";
  sc.stateless_register = c.stateless_register;
  // Most of the traffic: the plain keepalive outside a dialog, without a server transaction.
  if (c.stateless_keepalive)
    sc.stateless_request = [](const sip::Message& m) {
      return m.method() == "MESSAGE" && m.to_tag().empty() && mc::is_plain_keepalive(m.body());
    };
  return sc;
}

}  // namespace

GbPlugin::GbPlugin(junction::sdk::Host h, const jn_create_args& args)
    : Plugin(h), conf_(read_conf(h.config(), [h](const std::string& k, const std::string& r) { h.config_error(k, r); })),
      env_(h, kTimerCookie, kTcpCookie) {
  // Downloads go to the slot's own directory (ABI 2.2: the same across reloads and restarts)
  // unless play.download_dir says otherwise; a core without one: the working directory.
  if (conf_.play.download_dir.empty()) {
    std::string_view sd = junction::sdk::state_dir(args);
    conf_.play.download_dir = sd.empty() ? std::string("gb28181-downloads") : std::string(sd) + "/downloads";
  }
  stack_ = std::make_unique<sip::Stack>(env_, *this, stack_config(conf_));
  env_.attach(stack_.get());
  // The nonce key: from the conf, or generated once and kept in the store, so nonces stay
  // valid across a hot reload or a restart.
  std::string secret = conf_.nonce_secret;
  if (secret.empty() && (!h.kv_get("nonce-secret", secret) || secret.size() < 16)) {
    if (!util::random_hex(32, secret)) throw std::runtime_error("no randomness for the nonce secret");
    h.kv_put("nonce-secret", secret);
  }
  load_devices();
  redirect_ = std::make_unique<Redirector>(conf_.redirect);
  registrar_ = std::make_unique<Registrar>(conf_, reg_, *stack_, *redirect_, *this, secret);
  junction::gb::CenterConfig cc;
  cc.query_timeout_ms = conf_.query_timeout_ms;
  cc.control_timeout_ms = conf_.query_timeout_ms;
  // An admin reply is due within 30 s: an aggregation ends (with what arrived) before that.
  cc.query_max_ms = std::min<uint32_t>(25000, std::max<uint32_t>(conf_.query_timeout_ms, 25000));
  cc_ = std::make_unique<junction::gb::CommandCenter>(*this, cc);
  // Media sessions: the receivers and the INVITE sessions on top of them.
  media_ = play::make_play_media(h);
  media_->configure(conf_.media);
  play_ = std::make_unique<play::PlayCenter>(*stack_, *media_, *this, conf_.sip_id, conf_.domain, play_conf());
  media_->attach(play_.get());
  // Client-initiated live view: the PS senders and the clients' digest (a nonce state of its own).
  ps_out_ = std::make_unique<play::PsOut>(h, conf_.media.port_range, conf_.media.bind_ip);
  sip::DigestServerConfig dc;
  dc.realm = conf_.realm;
  dc.secret = secret;
  dc.nonce_ttl_s = conf_.nonce_ttl_s;
  dc.algorithm = sip::DigestAlgorithm::MD5;
  client_auth_ = std::make_unique<sip::DigestServer>(dc, h.now_ms() / 1000);
}

jn_status GbPlugin::start() {
  jn_status st = env_.listen_udp(conf_.udp_listen);
  if (st != JN_OK) {
    host().set_error("udp_listen " + conf_.udp_listen + " failed");
    return st;
  }
  if (!conf_.tcp_listen.empty() && (st = env_.listen_tcp(conf_.tcp_listen)) != JN_OK) {
    host().set_error("tcp_listen " + conf_.tcp_listen + " failed");
    return st;
  }
  if ((st = media_->start()) != JN_OK) {
    host().set_error("media ingest did not start");
    return st;
  }
  if (!media_->available()) host().warn("gb28181: built without the media ingest: play/playback/download are refused");
  if (!conf_.snapshot_listen.empty()) {
    jn_handle h = 0;
    if ((st = host().http_listen(conf_.snapshot_listen, "", 0, &h)) != JN_OK) {
      host().set_error("snapshot_listen " + conf_.snapshot_listen + " failed");
      return st;
    }
    host().info("gb28181: snapshot uploads on " + conf_.snapshot_url + "/snapshot/");
  }
  host().info("gb28181: platform " + conf_.sip_id + " (domain " + conf_.domain + ", realm " + conf_.realm + ") listening on udp " +
              conf_.udp_listen + (conf_.tcp_listen.empty() ? "" : " and tcp " + conf_.tcp_listen) + "; " +
              std::to_string(reg_.size()) + " device(s) provisioned");
  update_gauges();
  return JN_OK;
}

// --- requests ----------------------------------------------------------------------------------
void GbPlugin::on_request(sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
  std::string_view method = m.method();
  if (method == "ACK") {  // a 2xx ACK of a client's call (the ACK of a non-2xx is the transaction's)
    client_ack(m);
    return;
  }
  if (method == "REGISTER") return registrar_->on_register(id, m, from);
  // In-dialog: only the NOTIFYs of our subscriptions belong to a dialog of ours.
  if (!m.to_tag().empty()) {
    if (play_->on_request(id, m, from)) return;  // BYE / INFO of our INVITE sessions
    if (broadcast_in_dialog(id, m, from)) return;
    if (client_in_dialog(id, m, from)) return;  // BYE of a client viewing a channel
    return on_in_dialog(id, m, from);
  }
  if (method == "MESSAGE") return on_message(id, m, from);
  if (method == "INVITE") {
    if (is_client_invite(m)) return on_client_invite(id, m, from);  // a SIP client asking for a channel
    return on_invite(id, m, from);                                   // a device asking for broadcast audio
  }
  if (method == "OPTIONS") {
    stack_->respond(id, 200, {}, stack_->new_tag(), kAllow);
    return;
  }
  if (method == "NOTIFY") return bad_request(id, m, from, 481, "NOTIFY outside a subscription");
  if (method == "SUBSCRIBE") return bad_request(id, m, from, 489, "the platform accepts no subscriptions");
  if (method == "BYE" || method == "INFO") return bad_request(id, m, from, 481, "no such dialog");
  bad_request(id, m, from, 405, "method not served", kAllow);
}

void GbPlugin::bad_request(sip::TxnId id, const sip::Message& m, const sip::Flow& from, int code, const std::string& why,
                           std::string_view extra) {
  host().counter_add("gb_bad_requests_total", 1, "code=\"" + std::to_string(code) + "\"");
  sip::NameAddr fr = m.from();
  sip::Uri u;
  std::string who = sip::parse_uri(fr.uri_text, u) ? std::string(u.user).substr(0, 32) : std::string("?");
  host().info("gb28181: " + std::string(m.method()).substr(0, 16) + " from " + who + " at " + util::format_addr(from.peer) + " over " +
              std::string(sip::proto_name(from.proto)) + " refused " + std::to_string(code) + " (" + why + ")");
  stack_->respond(id, code, std::string(sip::reason_phrase(code)) + " (" + why + ")", stack_->new_tag(), extra);
}

Device* GbPlugin::sender(const sip::Message& m, const sip::Flow& from) {
  // parse() checked and parsed the From URI: no second parse per keepalive.
  return touch(reg_.find(m.from_uri().user), from);
}

Device* GbPlugin::touch(Device* d, const sip::Flow& from) {
  if (!d || !d->live.registered) return d;
  // NAT: the device is reached where its requests come from, refreshed on every request.
  DeviceLive& l = d->live;
  if (!l.flow.same_peer(from) || l.flow.conn != from.conn) {
    if (conf_.log_each)
      host().info("gb28181: device " + d->conf.id + " address changed " + util::format_addr(l.flow.peer) + " -> " +
                  util::format_addr(from.peer) + " over " + std::string(sip::proto_name(from.proto)));
    l.flow = from;
    index_conn(*d);
  }
  l.last_seen = host().now_ms();
  return d;
}

void GbPlugin::on_message(sip::TxnId id, const sip::Message& m, const sip::Flow& from, const std::string* dialog_device) {
  const sip::Uri& ruri = m.parsed_request_uri();  // parse() refused a bad one
  if (!ruri.user.empty() && ruri.user != conf_.sip_id) return bad_request(id, m, from, 404, "not this platform");
  Device* d = dialog_device ? touch(reg_.find(*dialog_device), from) : sender(m, from);
  if (!d) return bad_request(id, m, from, 403, "unknown device");
  if (!d->live.registered) {
    // A keepalive (or anything) from a device that is not registered: 403 makes it register again.
    ++keepalive_refused_;
    return bad_request(id, m, from, 403, "device not registered");
  }
  if (m.body().empty()) return bad_request(id, m, from, 400, "empty MESSAGE body");
  on_body(id, m, from, *d);
}

void GbPlugin::on_keepalive(sip::TxnId id, const sip::Message& m, Device& d) {
  // Stateless (stateless_keepalive): a retransmission reaches us again; it is answered again (the
  // same bytes: the stack derives the tag from the request) but counted once.
  if (sip::Stack::is_stateless(id)) {
    uint64_t fp = sip::request_fingerprint(m);
    if (fp == d.live.ka_fp) {
      stack_->respond(id, 200, {}, {});
      return;
    }
    d.live.ka_fp = fp;
  }
  uint64_t now = host().now_ms();
  d.live.last_keepalive = now;
  ++d.live.keepalives;
  ++keepalives_;
  host().counter_add("gb_keepalives_total");
  if (conf_.log_each) host().debug("gb28181: keepalive from " + d.conf.id);
  stack_->respond(id, 200, {}, registrar_->tag(id));
  Due due = offline_due(conf_, d.live);
  if (due.at < sweep_at_) schedule_sweep(due.at);
}

void GbPlugin::index_conn(const Device& d) {
  if (d.live.flow.proto == sip::Proto::Tcp && d.live.flow.conn) by_conn_[d.live.flow.conn].insert(d.conf.id);
}

void GbPlugin::on_connection_closed(jn_handle conn) {
  auto it = by_conn_.find(conn);
  if (it == by_conn_.end()) return;
  std::unordered_set<std::string> ids = std::move(it->second);
  by_conn_.erase(it);
  size_t n = 0;
  for (const std::string& id : ids) {
    Device* d = reg_.find(id);  // still there, still on this connection (it may have moved since)
    if (d && d->live.registered && d->live.flow.proto == sip::Proto::Tcp && d->live.flow.conn == conn) {
      offline(*d, "connection closed");
      ++n;
    }
  }
  if (n) host().info("gb28181: TCP connection closed: " + std::to_string(n) + " device(s) offline");
}

// --- registrar hooks ---------------------------------------------------------------------------
void GbPlugin::registered(Device& d, bool fresh) {
  reg_.set_registered(d, true);
  index_conn(d);
  if (fresh) {
    d.live.offline_reason.clear();
    json ev = {{"device", d.conf.id},
               {"name", d.conf.name},
               {"address", util::format_addr(d.live.flow.peer)},
               {"transport", std::string(sip::proto_name(d.live.flow.proto))}};
    host().event_publish("gb/device/online", ev.dump(-1, ' ', false, json::error_handler_t::replace));
    update_gauges();
  }
  Due due = offline_due(conf_, d.live);
  if (due.at < sweep_at_) schedule_sweep(due.at);
}

void GbPlugin::offline(Device& d, std::string_view reason) {
  if (!d.live.registered) return;
  reg_.set_registered(d, false);
  d.live.offline_reason = std::string(reason);
  ++offline_events_;
  host().counter_add("gb_offline_total", 1, "reason=\"" + std::string(reason) + "\"");
  host().info("gb28181: device " + d.conf.id + " offline (" + std::string(reason) + ")");
  json ev = {{"device", d.conf.id}, {"name", d.conf.name}, {"reason", reason}};
  host().event_publish("gb/device/offline", ev.dump(-1, ' ', false, json::error_handler_t::replace));
  update_gauges();
}

Device* GbPlugin::admit(std::string_view id) {
  if (reg_.size() >= conf_.max_devices) return nullptr;
  DeviceConf c;
  c.id = std::string(id);
  c.auto_admitted = true;
  if (!store_device(c)) return nullptr;
  host().info("gb28181: device " + c.id + " admitted (auto_admit)");
  return &reg_.put(c);
}

void GbPlugin::update_gauges() {
  host().gauge_set("gb_devices_registered", double(reg_.registered()));
  host().gauge_set("gb_devices_online", double(reg_.registered()));
  host().gauge_set("gb_devices_provisioned", double(reg_.size()));
}

// --- liveness ----------------------------------------------------------------------------------
void GbPlugin::schedule_sweep(uint64_t at) {
  // One pass over the registry at most every sweep_granularity_ms: many devices due at nearby
  // times cost one pass, not one each.
  at = std::max(at, last_sweep_ + sweep_granularity_ms(conf_));
  if (at >= sweep_at_) return;
  sweep_at_ = at;
  arm();
}

void GbPlugin::arm() { stack_->wake_user_at(std::min({sweep_at_, cc_timer_at_, play_timer_at_})); }

void GbPlugin::on_wake() {
  uint64_t now = host().now_ms();
  if (sweep_at_ <= now) sweep();
  if (cc_timer_at_ <= now) {
    cc_timer_at_ = UINT64_MAX;
    cc_->on_timer();  // may arm it again
  }
  if (play_timer_at_ <= now) {
    play_timer_at_ = UINT64_MAX;
    play_->on_tick();  // re-arms through arm_play
  }
  arm();
}

void GbPlugin::sweep() {
  uint64_t now = host().now_ms();
  last_sweep_ = now;
  sweep_at_ = UINT64_MAX;
  uint64_t next = UINT64_MAX;
  reg_.for_each([&](Device& d) {
    if (!d.live.registered) return;
    Due due = offline_due(conf_, d.live);
    if (due.at <= now) offline(d, due.reason);
    else next = std::min(next, due.at);
  });
  if (next != UINT64_MAX) schedule_sweep(next);
}

}  // namespace gb

JUNCTION_PLUGIN(gb::GbPlugin, "gb28181", "0.1", "GB/T 28181 platform: registration, keepalive, MANSCDP queries and control, media sessions", "gb",
                2, 1)
