// verto-ws: browsers speak Verto (JSON-RPC 2.0 over WebSocket, as FreeSWITCH's mod_verto) to
// log in, subscribe to event channels and place / take calls through the core's routing table.
// README.md documents the conf keys, the URI mapping, the error codes and every decision taken
// where the protocol document is silent.
#include "credentials.hpp"
#include "jsonrpc.hpp"
#include "media.hpp"
#include "media_desc.hpp"

#include <junction/plugin.hpp>
#include <junction/util/addr.hpp>
#include <junction/util/config.hpp>
#include <junction/util/state.hpp>
#include <junction/media_frame.h>
#include <junction/webrtc/srtp.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace {

using junction::sdk::Host;
using junction::sdk::to_jn;
using junction::sdk::to_sv;
using verto::json;

constexpr uint32_t kStateSchema = 1;
constexpr uint64_t kTickCookie = 1, kHeartbeatCookie = 2, kMediaTickCookie = 3, kDeferredCookie = 4;
constexpr uint64_t kMediaTickMs = 20;
constexpr int64_t kTickMs = 1000;
const char* const kSdpHeader = "app-verto-sdp";

// ---------------------------------------------------------------------------------------------
// conf
// ---------------------------------------------------------------------------------------------
struct Conf {
  std::string listen = "127.0.0.1:8082";
  std::string ws_path = "/verto";
  std::string tls_cert, tls_key;
  std::vector<std::string> allowed_origins = {"http://127.0.0.1", "http://localhost"};
  bool allow_no_origin = true;
  uint32_t max_message = 262144;
  uint32_t max_batch = 16;
  uint32_t login_timeout_ms = 10000;
  uint32_t idle_ping_ms = 30000;
  uint32_t idle_timeout_ms = 90000;
  uint32_t rate_per_s = 20;
  uint32_t rate_burst = 50;
  uint32_t bad_limit = 20;
  uint32_t kdf_iterations = 100000;
  uint32_t token_ttl_s = 86400;
  uint32_t detach_timeout_ms = 30000;
  uint32_t heartbeat_ms = 20000;
  std::string heartbeat_channel = "FSevent.heartbeat";
  std::vector<std::string> channels = {"FSevent.heartbeat", "chat.*"};
  std::map<std::string, std::vector<std::string>> user_channels;
  std::vector<std::string> core_events;
  std::string default_scheme = "verto";
  std::string media = "webrtc";  // webrtc: the server terminates the browser's media; none: signalling only
  verto::MediaConf media_conf;
};

bool read_list(junction::util::ConfigReader& r, const std::string& key, std::vector<std::string>& out) {
  if (!r.has(key)) return r.ok();
  const json& j = r.conf()[key];
  if (!j.is_array()) {
    r.fail(key, "must be an array of strings");
    return false;
  }
  std::vector<std::string> v;
  for (const auto& e : j) {
    if (!e.is_string()) {
      r.fail(key, "must be an array of strings");
      return false;
    }
    v.push_back(e.get<std::string>());
  }
  out = std::move(v);
  return true;
}

Conf read_conf(const Host& host) {
  Conf c;
  junction::util::ConfigReader r(host.config(), [&](const std::string& k, const std::string& why) { host.config_error(k, why); });
  r.known_keys({"listen", "ws_path", "tls_cert", "tls_key", "allowed_origins", "allow_no_origin", "max_message", "max_batch",
                "login_timeout_ms", "idle_ping_ms", "idle_timeout_ms", "rate_per_s", "rate_burst", "bad_limit", "kdf_iterations",
                "token_ttl_s", "detach_timeout_ms", "heartbeat_ms", "heartbeat_channel", "channels", "user_channels", "core_events",
                "default_scheme", "media", "media_ip", "port_range", "library"});
  r.str("listen", c.listen, true);
  r.str("ws_path", c.ws_path, true);
  r.str("tls_cert", c.tls_cert);
  r.str("tls_key", c.tls_key);
  read_list(r, "allowed_origins", c.allowed_origins);
  r.boolean("allow_no_origin", c.allow_no_origin);
  r.integer("max_message", c.max_message, 1024, 1 << 20);
  r.integer("max_batch", c.max_batch, 1, 256);
  r.integer("login_timeout_ms", c.login_timeout_ms, 100, 600000);
  r.integer("idle_ping_ms", c.idle_ping_ms, 100, 3600000);
  r.integer("idle_timeout_ms", c.idle_timeout_ms, 200, 7200000);
  r.integer("rate_per_s", c.rate_per_s, 1, 100000);
  r.integer("rate_burst", c.rate_burst, 1, 100000);
  r.integer("bad_limit", c.bad_limit, 1, 100000);
  r.integer("kdf_iterations", c.kdf_iterations, 1000, 10000000);
  r.integer("token_ttl_s", c.token_ttl_s, 1, 315360000);
  r.integer("detach_timeout_ms", c.detach_timeout_ms, 0, 3600000);
  r.integer("heartbeat_ms", c.heartbeat_ms, 0, 3600000);
  r.str("heartbeat_channel", c.heartbeat_channel, true);
  read_list(r, "channels", c.channels);
  read_list(r, "core_events", c.core_events);
  r.str("default_scheme", c.default_scheme, true);
  r.choice("media", c.media, {"webrtc", "none"});
  r.str("media_ip", c.media_conf.ip, true);
  r.str("port_range", c.media_conf.port_range, true);
  {
    jn_addr a{};
    if (!junction::util::parse_ip(c.media_conf.ip, a)) r.fail("media_ip", "must be an IP address (the candidate browsers send media to)");
  }
  if (r.has("user_channels")) {
    auto t = r.table("user_channels");
    for (auto& [user, v] : t.conf().items()) {
      std::vector<std::string> list;
      if (!verto::valid_user(user)) t.fail(user, "not a valid user name");
      else if (read_list(t, user, list)) c.user_channels[user] = list;
    }
  }
  if (c.ws_path.front() != '/') r.fail("ws_path", "must start with /");
  if (c.tls_cert.empty() != c.tls_key.empty()) r.fail("tls_cert", "tls_cert and tls_key go together");
  if (c.idle_timeout_ms <= c.idle_ping_ms) r.fail("idle_timeout_ms", "must be longer than idle_ping_ms");
  for (auto& o : c.allowed_origins)
    if (o.empty() || (o != "*" && o.find("://") == std::string::npos)) r.fail("allowed_origins", "each entry is \"*\" or scheme://host[:port], not '" + o + "'");
  if (!r.ok()) throw std::runtime_error("bad conf: " + r.error()->key + ": " + r.error()->reason);
  return c;
}

// ---------------------------------------------------------------------------------------------
// state
// ---------------------------------------------------------------------------------------------
struct Conn {
  jn_handle h = 0;
  std::string peer, origin, sessid, user;
  bool authed = false;
  bool closing = false;
  uint64_t opened_ms = 0, last_rx_ms = 0, pinged_ms = 0;
  double tokens = 0;
  uint64_t refill_ms = 0;
  uint32_t bad = 0;
  std::set<std::string> subs;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Conn, h, peer, origin, sessid, user, authed, closing, opened_ms, last_rx_ms, pinged_ms,
                                                tokens, refill_ms, bad, subs)

struct Session {
  std::string sessid, user;
  jn_handle conn = 0;  // 0: detached (socket lost), calls kept until detach_timeout_ms
  uint64_t detached_ms = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Session, sessid, user, conn, detached_ms)

enum CallState { kDialing = 0, kEarly = 1, kAnswered = 2 };

struct Call {
  uint64_t id = 0;
  std::string callid;   // Verto callID (the browser's for its calls, ours for inbound ones)
  std::string sessid, user;
  jn_handle leg = 0;
  bool inbound = false; // the core offered this leg to the browser
  int state = kDialing;
  bool held = false;
  std::string far_sdp;  // the other side's SDP (its offer for inbound calls, its answer otherwise)
  std::string own_sdp;  // the browser's SDP
  std::string peer_uri, peer_name, core_call_id;
  std::string own_name;  // the browser's caller_id_name (outbound calls)
  bool media = false;    // a MediaLeg terminates the browser's WebRTC
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Call, id, callid, sessid, user, leg, inbound, state, held, far_sdp, own_sdp, peer_uri,
                                                peer_name, core_call_id, own_name, media)

// A password check (or hash) on the worker pool: PBKDF2 takes tens of milliseconds, which no
// loop may spend.
struct KdfJob {
  enum Kind { Verify, Hash } kind = Verify;
  std::string password, record, result;
  uint32_t iterations = 0;
  bool ok = false;
  // Verify: the login waiting for it
  jn_handle conn = 0;
  json id;
  std::string user, sessid;
  // Hash: the admin request waiting for it
  jn_handle reply = 0;
  json user_record;
  static void run(void* arg) {
    auto* j = static_cast<KdfJob*>(arg);
    if (j->kind == Verify) {
      j->ok = verto::password_verify(j->password, j->record);
    } else {
      j->result = verto::password_hash(j->password, j->iterations);
      j->ok = !j->result.empty();
    }
  }
};

// Core codes <-> Verto (Q.850) causes.
struct Cause {
  int code;
  const char* name;
  int q850;
};
constexpr Cause kCauses[] = {
    {200, "NORMAL_CLEARING", 16},       {486, "USER_BUSY", 17},          {480, "NO_USER_RESPONSE", 18},
    {408, "NO_ANSWER", 19},             {603, "CALL_REJECTED", 21},      {404, "UNALLOCATED_NUMBER", 1},
    {502, "NO_ROUTE_DESTINATION", 3},   {487, "ORIGINATOR_CANCEL", 487}, {503, "NORMAL_TEMPORARY_FAILURE", 41},
    {488, "INCOMPATIBLE_DESTINATION", 88}, {500, "NORMAL_UNSPECIFIED", 31}, {410, "NUMBER_CHANGED", 22},
};
const Cause& cause_of_code(int code) {
  for (const auto& c : kCauses)
    if (c.code == code) return c;
  if (code >= 200 && code < 300) return kCauses[0];
  return kCauses[10];  // NORMAL_UNSPECIFIED
}
int code_of_cause(const json& params) {
  if (auto it = params.find("causeCode"); it != params.end() && it->is_number_integer())
    for (const auto& c : kCauses)
      if (c.q850 == it->get<int>()) return c.code;
  if (auto it = params.find("cause"); it != params.end() && it->is_string())
    for (const auto& c : kCauses)
      if (it->get_ref<const std::string&>() == c.name) return c.code;
  return 200;
}

std::string str_of(const json& o, const char* key) {
  if (!o.is_object()) return {};
  auto it = o.find(key);
  if (it == o.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  return {};
}

// callID from params.dialogParams.callID or params.callID (the document's bye sample has neither:
// then the connection's only call).
std::string callid_of(const json& params) {
  std::string id;
  if (auto d = params.find("dialogParams"); d != params.end()) id = str_of(*d, "callID");
  if (id.empty()) id = str_of(params, "callID");
  return id;
}

uint64_t unix_now() { return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()); }

class VertoWs : public junction::sdk::Plugin {
 public:
  VertoWs(Host host, const jn_create_args& args) : Plugin(host), conf_(read_conf(host)), generation_(args.generation) {}

  // --- lifecycle ---------------------------------------------------------------------------------
  jn_status start() override {
    jn_status st = host().http_listen(conf_.listen, conf_.ws_path, 0, &endpoint_, conf_.tls_cert, conf_.tls_key);
    if (st != JN_OK) {
      host().set_error("cannot listen on " + conf_.listen + " (status " + std::to_string(st) + ")");
      return st;
    }
    started_ms_ = host().now_ms();
    if (media_on() && !init_media("")) return JN_ERR_INTERNAL;
    start_timers();
    for (auto& p : conf_.core_events) host().event_subscribe(p);
    host().info(std::string("verto listening on ") + (conf_.tls_cert.empty() ? "ws://" : "wss://") + conf_.listen + conf_.ws_path +
                " (origins: " + join(conf_.allowed_origins) + (conf_.allow_no_origin ? " + none" : "") + ")");
    return JN_OK;
  }

  bool media_on() const { return conf_.media == "webrtc"; }

  // libsrtp2 through the core's pin, then our DTLS certificate: a fresh one, or the previous
  // instance's (a hot reload keeps the fingerprint browsers have).
  bool init_media(const std::string& pem) {
    if (!junction::webrtc::srtp_library_init(host())) {
      host().set_error("libsrtp2 could not be initialised");
      return false;
    }
    std::string err;
    bool gcm = junction::webrtc::srtp_suite_works(junction::webrtc::SrtpSuite::AeadAes128Gcm);
    if (!(pem.empty() ? cert_.generate(&err, gcm) : cert_.from_pem(pem, &err, gcm))) {
      host().set_error("DTLS certificate: " + err);
      return false;
    }
    host().event_subscribe(JN_MEDIA_KEYFRAME_REQUEST_TOPIC);
    host().info("WebRTC media on " + conf_.media_conf.ip + " (ports from [ports." + conf_.media_conf.port_range + "]), DTLS " + cert_.fingerprint());
    return true;
  }

  void start_timers() {
    host().timer(kTickMs, kTickMs, kTickCookie, &tick_);
    if (media_on()) host().timer(kMediaTickMs, kMediaTickMs, kMediaTickCookie, &media_tick_);
    if (conf_.heartbeat_ms) host().timer(conf_.heartbeat_ms, conf_.heartbeat_ms, kHeartbeatCookie, &heartbeat_);
  }

  jn_status save_state(std::string& out) override {
    junction::util::StateOut st;
    json conns = json::array(), sessions = json::array(), calls = json::array();
    for (auto& [h, c] : conns_) conns.push_back(c);
    for (auto& [id, s] : sessions_) sessions.push_back(s);
    for (auto& [id, c] : calls_) calls.push_back(c);
    st.set("endpoint", endpoint_).set("tick", tick_).set("heartbeat", heartbeat_).set("heartbeat_ms", conf_.heartbeat_ms);
    st.set("serial", serial_).set("server_id", server_id_).set("event_serno", event_serno_).set("started_ms", started_ms_);
    st.set("conns", conns).set("sessions", sessions).set("calls", calls);
    st.set("media_tick", media_tick_);
    json legs = json::object();
    for (auto& [id, leg] : media_) legs[std::to_string(id)] = leg->save();
    json graves = json::array();
    for (auto& g : graveyard_) graves.push_back(g->save());
    st.set("media_legs", legs).set("media_graves", graves);
    if (cert_.valid()) st.set("cert", cert_.to_pem());
    out = st.encode();
    return JN_OK;
  }

  jn_status restore_state(uint32_t schema, std::string_view data) override {
    junction::util::StateIn s;
    std::string error;
    if (jn_status st = s.parse(schema, kStateSchema, kStateSchema, data, error); st != JN_OK) {
      host().set_error(error);
      return st;
    }
    s.read("endpoint", endpoint_);
    s.read("tick", tick_);
    s.read("heartbeat", heartbeat_);
    s.read("serial", serial_);
    s.read("server_id", server_id_);
    s.read("event_serno", event_serno_);
    s.read("started_ms", started_ms_);
    s.read("media_tick", media_tick_);
    if (media_on()) {
      if (!init_media(s.get<std::string>("cert", ""))) return JN_ERR_INTERNAL;
      if (!media_tick_) host().timer(kMediaTickMs, kMediaTickMs, kMediaTickCookie, &media_tick_);
    }
    for (auto& c : s["conns"]) {
      Conn conn = c.get<Conn>();
      conns_[conn.h] = conn;
    }
    for (auto& c : s["sessions"]) {
      Session ss = c.get<Session>();
      sessions_[ss.sessid] = ss;
    }
    for (auto& c : s["calls"]) {
      Call call = c.get<Call>();
      by_callid_[call.callid] = call.id;
      calls_[call.id] = call;
    }
    // A PeerConnection does not cross a reload: the old legs' sockets and subscriptions are
    // closed, and each answered call gets a fresh offer (verto.attach) on the next media tick.
    for (auto& g : s["media_graves"]) verto::MediaLeg::close_saved(host(), g);
    if (s["media_legs"].is_object())
      for (auto& [k, saved] : s["media_legs"].items()) {
        verto::MediaLeg::close_saved(host(), saved);
        uint64_t id = std::strtoull(k.c_str(), nullptr, 10);
        Call* cl = call(id);
        if (!cl || !media_on()) continue;
        junction::webrtc::LocalMedia a, v;
        if (cl->state == kAnswered && verto::MediaLeg::far_from_saved(saved, a, v)) reoffer_.push_back({id, std::move(a), std::move(v)});
        else cl->media = false;
      }
    if (s.get<uint32_t>("heartbeat_ms", 0) != conf_.heartbeat_ms) {
      if (heartbeat_) host().stop_timer(heartbeat_);
      heartbeat_ = 0;
      if (conf_.heartbeat_ms) host().timer(conf_.heartbeat_ms, conf_.heartbeat_ms, kHeartbeatCookie, &heartbeat_);
    }
    for (auto& p : conf_.core_events) host().event_subscribe(p);
    host().info("restored " + std::to_string(conns_.size()) + " connection(s), " + std::to_string(sessions_.size()) + " session(s), " +
                std::to_string(calls_.size()) + " call(s) from generation " + std::to_string(generation_ ? generation_ - 1 : 0));
    return JN_OK;
  }

  // --- WebSocket ----------------------------------------------------------------------------------
  void on_ws(const jn_ws_event& ev) override {
    switch (ev.type) {
      case JN_WS_UPGRADE: return on_upgrade(ev);
      case JN_WS_OPEN: {
        Conn c;
        c.h = ev.conn;
        c.peer = junction::util::format_addr(ev.peer);
        c.origin = header(ev, "origin");
        c.opened_ms = c.last_rx_ms = c.refill_ms = host().now_ms();
        c.tokens = conf_.rate_burst;
        conns_[ev.conn] = c;
        host().debug("connection from " + c.peer + (c.origin.empty() ? "" : " (origin " + c.origin + ")"));
        gauges();
        return;
      }
      case JN_WS_TEXT: return on_text(ev.conn, std::string_view(reinterpret_cast<const char*>(ev.data), ev.len));
      case JN_WS_BINARY: {
        Conn* c = conn(ev.conn);
        if (!c) return;
        bad(*c, "binary message of " + std::to_string(ev.len) + " bytes (Verto is text)");
        send(ev.conn, verto::make_error(nullptr, verto::kInvalidRequest, "Invalid Request: binary message"));
        return;
      }
      case JN_WS_CLOSED: return on_closed(ev.conn);
      default: return;
    }
  }

  static std::string header(const jn_ws_event& ev, std::string_view name) {
    for (uint32_t i = 0; i < ev.header_count; ++i)
      if (to_sv(ev.headers[i].name) == name) return std::string(to_sv(ev.headers[i].value));
    return {};
  }

  void on_upgrade(const jn_ws_event& ev) {
    std::string origin = header(ev, "origin");
    bool ok = origin.empty() ? conf_.allow_no_origin : false;
    for (auto& o : conf_.allowed_origins) ok = ok || o == "*" || o == origin;
    if (!ok) {
      host().warn("refused a WebSocket from " + junction::util::format_addr(ev.peer) + ": origin '" + verto::printable(origin) +
                  "' is not in allowed_origins (cross-site WebSocket hijacking)");
      host().counter_add("verto_refused_total", 1, "reason=\"origin\"");
      host().ws_upgrade_reply(ev.conn, 403);
      return;
    }
    // Browser Verto clients offer no subprotocol; one that does gets its first.
    host().ws_upgrade_reply(ev.conn, 101, ev.subprotocol_count ? to_sv(ev.subprotocols[0]) : std::string_view());
  }

  Conn* conn(jn_handle h) {
    auto it = conns_.find(h);
    return it == conns_.end() ? nullptr : &it->second;
  }
  Call* call(uint64_t id) {
    auto it = calls_.find(id);
    return it == calls_.end() ? nullptr : &it->second;
  }
  Call* call_by_callid(const std::string& callid) {
    auto it = by_callid_.find(callid);
    return it == by_callid_.end() ? nullptr : call(it->second);
  }

  void send(jn_handle h, const json& j) {
    std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
    if (jn_status st = host().ws_send(h, text); st != JN_OK) host().debug("ws_send to " + std::to_string(h) + " failed (status " + std::to_string(st) + ")");
  }
  // A server request (integer id) to a connection.
  void request(jn_handle h, const std::string& method, json params) { send(h, verto::make_request(++server_id_, method, std::move(params))); }

  void bad(Conn& c, const std::string& why) {
    host().warn("bad input from " + c.peer + (c.user.empty() ? "" : " (" + c.user + ")") + ": " + why);
    host().counter_add("verto_bad_input_total");
    if (++c.bad >= conf_.bad_limit && !c.closing) {
      host().warn("closing " + c.peer + ": " + std::to_string(c.bad) + " bad messages (bad_limit)");
      c.closing = true;
      host().ws_close(c.h);
    }
  }

  bool take_token(Conn& c) {
    uint64_t now = host().now_ms();
    c.tokens = std::min<double>(conf_.rate_burst, c.tokens + (now - c.refill_ms) * conf_.rate_per_s / 1000.0);
    c.refill_ms = now;
    if (c.tokens < 1) return false;
    c.tokens -= 1;
    return true;
  }

  void on_text(jn_handle h, std::string_view text) {
    Conn* c = conn(h);
    if (!c || c->closing) return;
    c->last_rx_ms = host().now_ms();
    c->pinged_ms = 0;
    if (text.size() > conf_.max_message) {
      bad(*c, "message of " + std::to_string(text.size()) + " bytes over max_message " + std::to_string(conf_.max_message));
      send(h, verto::make_error(nullptr, verto::kInvalidRequest, "Invalid Request: message too large"));
      return;
    }
    verto::Limits lim;
    lim.max_batch = conf_.max_batch;
    verto::Frame f = verto::parse_frame(text, lim);
    json replies = json::array();
    for (auto& m : f.messages) {
      json r = handle(h, m);
      if (!r.is_null()) replies.push_back(std::move(r));
      if (!conn(h)) return;  // closed while handling (a punt of itself cannot happen; a bad_limit can)
    }
    if (replies.empty()) return;
    if (f.batch) send(h, replies);
    else for (auto& r : replies) send(h, r);
  }

  // One message; returns the reply (null when none: a response from the client, or a reply
  // that comes later).
  json handle(jn_handle h, verto::Message& m) {
    Conn* c = conn(h);
    if (m.kind == verto::Message::Invalid) {
      bad(*c, m.why);
      return verto::make_error(m.id, verto::kInvalidRequest, "Invalid Request: " + m.why);
    }
    if (m.kind == verto::Message::Response) return nullptr;  // answers to our requests (ping, invite, event): the activity counts
    if (!take_token(*c)) {
      host().counter_add("verto_rate_limited_total");
      host().debug("rate limited " + c->peer + ": " + m.method);
      return verto::make_error(m.id, verto::kRateLimited, "Rate limited");
    }
    if (m.method == "login") return login(h, m);
    if (m.method == "echo") return verto::make_result(m.id, m.params, c->sessid);
    if (!c->authed) {
      host().info("request " + verto::printable(m.method) + " from " + c->peer + " before login: -32000");
      return verto::make_error(m.id, verto::kAuthRequired, "Authentication Required");
    }
    if (m.method == "verto.subscribe") return subscribe(*c, m, true);
    if (m.method == "verto.unsubscribe") return subscribe(*c, m, false);
    if (m.method == "verto.broadcast") return broadcast(*c, m);
    if (m.method == "verto.invite") return invite(h, m);
    if (m.method == "verto.answer") return answer(h, m);
    if (m.method == "verto.bye") return bye(h, m);
    if (m.method == "verto.info") return info(h, m);
    if (m.method == "verto.modify") return modify(h, m);
    if (m.method == "verto.display") return display(h, m);
    if (m.method == "verto.attach") return attach_answer(h, m);
    if (m.method == "verto.ping") return verto::make_result(m.id, json::object(), c->sessid);
    bad(*c, "unknown method " + verto::printable(m.method));
    return verto::make_error(m.id, verto::kMethodNotFound, "Invalid Method");
  }

  // --- login ----------------------------------------------------------------------------------------
  json login(jn_handle h, verto::Message& m) {
    Conn* c = conn(h);
    const json& p = m.params;
    std::string sessid = str_of(p, "sessid");
    std::string login = str_of(p, "login"), passwd = str_of(p, "passwd");
    std::string token;
    if (auto lp = p.find("loginParams"); lp != p.end()) token = str_of(*lp, "xui_sessid");
    if (sessid.empty() || sessid.size() > 128 || !verto::valid_channel(sessid)) {
      bad(*c, "login without a valid sessid");
      return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: sessid");
    }
    if (c->authed && c->sessid != sessid) return verto::make_error(m.id, verto::kLoginFailed, "Already logged in with another sessid");
    if (login.empty() && token.empty()) {
      // Verto clients send this first on reconnect: the answer makes them send credentials.
      host().debug("credential-less login from " + c->peer + ": -32000");
      return verto::make_error(m.id, verto::kAuthRequired, "Authentication Required");
    }
    std::string user = verto::user_of_login(login);
    if (!token.empty()) {
      std::string rec;
      json t = host().kv_get("token/" + verto::sha256_hex(token), rec) ? json::parse(rec, nullptr, false) : json();
      if (!t.is_object() || t.value("exp", uint64_t{0}) <= unix_now() || (!user.empty() && t.value("user", "") != user)) {
        host().info("login refused for " + c->peer + ": " + (t.is_object() ? (t.value("exp", uint64_t{0}) <= unix_now() ? "token expired" : "token of another user") : "unknown token"));
        host().counter_add("verto_logins_total", 1, "result=\"refused\"");
        return verto::make_error(m.id, verto::kLoginFailed, "Login Incorrect");
      }
      return finish_login(h, m.id, t.value("user", ""), sessid, "token");
    }
    std::string rec;
    json u = verto::valid_user(user) && host().kv_get("user/" + user, rec) ? json::parse(rec, nullptr, false) : json();
    auto job = std::make_unique<KdfJob>();
    job->kind = KdfJob::Verify;
    job->password = passwd;
    // An unknown user is hashed against a dummy record all the same: the answer takes as long.
    job->record = u.is_object() ? u.value("hash", "") : dummy_record();
    job->conn = h;
    job->id = m.id;
    job->user = u.is_object() ? user : "";
    job->sessid = sessid;
    uint64_t cookie = ++serial_;
    jn_handle work = 0;
    KdfJob* raw = job.get();
    jobs_[cookie] = std::move(job);
    if (jn_status st = host().work_submit(&KdfJob::run, raw, cookie, &work); st != JN_OK) {
      jobs_.erase(cookie);
      host().warn("login of " + user + " not checked: worker pool refused (status " + std::to_string(st) + ")");
      return verto::make_error(m.id, verto::kLoginFailed, "Login Incorrect: server busy");
    }
    return nullptr;  // answered in on_work_done
  }

  std::string dummy_record() {
    if (dummy_.empty()) dummy_ = verto::password_hash("dummy", conf_.kdf_iterations);
    return dummy_;
  }

  void on_work_done(jn_handle, uint64_t cookie, jn_status status) override {
    auto it = jobs_.find(cookie);
    if (it == jobs_.end()) return;
    std::unique_ptr<KdfJob> job = std::move(it->second);
    jobs_.erase(it);
    if (job->kind == KdfJob::Hash) {
      if (status != JN_OK || !job->ok) {
        host().admin_reply(job->reply, 500, json{{"error", "hashing failed"}}.dump());
        return;
      }
      json rec = job->user_record;
      rec["hash"] = job->result;
      std::string user = rec["user"];
      host().kv_put("user/" + user, rec.dump());
      host().info("user " + user + " stored (pbkdf2-sha256, " + std::to_string(conf_.kdf_iterations) + " iterations)");
      host().admin_reply(job->reply, 200, json{{"user", user}, {"stored", true}}.dump());
      return;
    }
    Conn* c = conn(job->conn);
    if (!c || c->closing) return;
    if (status != JN_OK || !job->ok || job->user.empty()) {
      host().info("login refused for " + c->peer + ": " + (job->user.empty() ? "unknown user" : "wrong password"));
      host().counter_add("verto_logins_total", 1, "result=\"refused\"");
      send(job->conn, verto::make_error(job->id, verto::kLoginFailed, "Login Incorrect"));
      return;
    }
    json r = finish_login(job->conn, job->id, job->user, job->sessid, "password");
    if (!r.is_null()) send(job->conn, r);
  }

  // Credentials are good: bind the sessid (punting an older socket of the same user, refusing
  // another user's), answer, then clientReady with the calls re-attached.
  json finish_login(jn_handle h, const json& id, const std::string& user, const std::string& sessid, const char* how) {
    Conn* c = conn(h);
    auto sit = sessions_.find(sessid);
    if (sit != sessions_.end() && sit->second.user != user) {
      host().warn("login of " + user + " from " + c->peer + " refused: sessid " + verto::printable(sessid) + " belongs to another user");
      host().counter_add("verto_logins_total", 1, "result=\"session_in_use\"");
      return verto::make_error(id, verto::kLoginFailed, "Session in use");
    }
    if (sit != sessions_.end() && sit->second.conn && sit->second.conn != h) {
      jn_handle old = sit->second.conn;
      if (Conn* o = conn(old)) {
        host().info("sessid " + verto::printable(sessid) + " of " + user + " taken over by " + c->peer + ": verto.punt to " + o->peer);
        request(old, "verto.punt", json::object());
        o->sessid.clear();
        o->authed = false;
        o->closing = true;
        host().ws_close(old);
      }
    }
    Session& s = sessions_[sessid];
    s.sessid = sessid;
    s.user = user;
    s.conn = h;
    s.detached_ms = 0;
    c = conn(h);
    c->authed = true;
    c->user = user;
    c->sessid = sessid;
    host().info("login " + user + " (" + how + ") from " + c->peer + " sessid " + verto::printable(sessid));
    host().counter_add("verto_logins_total", 1, "result=\"ok\"");
    send(h, verto::make_result(id, json{{"message", "logged in"}}, sessid));
    json reattached = json::array();
    std::vector<uint64_t> ids;
    for (auto& [cid, call] : calls_)
      if (call.sessid == sessid && call.state == kAnswered) ids.push_back(cid);
    for (uint64_t cid : ids) {
      Call* cl = call(cid);
      reattached.push_back(cl->callid);
      std::string sdp = cl->far_sdp;
      if (verto::MediaLeg* old = leg_of(cid)) {
        // The page's PeerConnection is gone: a new leg, a fresh offer for what the far leg has.
        std::string why, offer;
        auto leg = new_leg(cid, why);
        if (leg) {
          leg->far_audio_media = old->far_audio_media;
          leg->far_video_media = old->far_video_media;
        }
        if (!leg || !leg->offer(leg->far_audio_media, leg->far_video_media, offer, why)) {
          if (leg) leg->release();
          host().warn("call " + cl->callid + ": no fresh offer for verto.attach: " + why);
        } else {
          retire(cid);
          std::lock_guard<std::recursive_mutex> g(media_mu_);
          media_[cid] = std::move(leg);
          sdp = offer;
        }
        cl = call(cid);
      }
      request(h, "verto.attach", json{{"callID", cl->callid}, {"sdp", sdp}, {"caller_id_name", cl->peer_name},
                                      {"caller_id_number", cl->peer_uri}, {"callee_id_name", user}, {"callee_id_number", user},
                                      {"display_direction", cl->inbound ? "inbound" : "outbound"}});
      host().info("call " + cl->callid + " re-attached to " + user);
    }
    request(h, "verto.clientReady", json{{"reattached_sessions", reattached}});
    gauges();
    return nullptr;
  }

  void on_closed(jn_handle h) {
    auto it = conns_.find(h);
    if (it == conns_.end()) return;
    Conn c = it->second;
    conns_.erase(it);
    host().debug("connection " + c.peer + " closed");
    if (!c.sessid.empty()) {
      auto sit = sessions_.find(c.sessid);
      if (sit != sessions_.end() && sit->second.conn == h) {
        sit->second.conn = 0;
        sit->second.detached_ms = host().now_ms();
        // Calls not yet answered cannot survive the socket: end them; answered ones wait for
        // a reconnect with the same sessid (verto.attach) until detach_timeout_ms.
        std::vector<uint64_t> ids;
        for (auto& [cid, call] : calls_)
          if (call.sessid == c.sessid && (call.state != kAnswered || conf_.detach_timeout_ms == 0)) ids.push_back(cid);
        for (uint64_t cid : ids) end_call(cid, 503, "connection-lost");
        host().info("session " + verto::printable(c.sessid) + " of " + c.user + " detached");
      }
    }
    gauges();
  }

  // --- subscriptions and events ----------------------------------------------------------------------
  const std::vector<std::string>& patterns_of(const std::string& user) const {
    auto it = conf_.user_channels.find(user);
    return it == conf_.user_channels.end() ? conf_.channels : it->second;
  }

  json subscribe(Conn& c, verto::Message& m, bool on) {
    json ch = m.params.contains("eventChannel") ? m.params["eventChannel"] : json();
    std::vector<std::string> list;
    if (ch.is_string()) list.push_back(ch.get<std::string>());
    else if (ch.is_array())
      for (auto& e : ch)
        if (e.is_string()) list.push_back(e.get<std::string>());
    if (list.empty() || list.size() > 64) {
      bad(c, "verto." + std::string(on ? "" : "un") + "subscribe without eventChannel (a string or an array of strings, at most 64)");
      return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: eventChannel");
    }
    json done = json::array(), unauthorized = json::array(), already = json::array();
    for (auto& name : list) {
      if (!verto::valid_channel(name) || (on && !verto::channel_allowed(patterns_of(c.user), name))) {
        unauthorized.push_back(name);
        continue;
      }
      if (on) {
        if (c.subs.count(name)) already.push_back(name);
        else {
          if (c.subs.size() >= 256) {
            unauthorized.push_back(name);
            continue;
          }
          c.subs.insert(name);
          done.push_back(name);
        }
      } else {
        if (c.subs.erase(name)) done.push_back(name);
        else unauthorized.push_back(name);  // mod_verto: not subscribed = unauthorized
      }
    }
    json r = json::object();
    if (!done.empty()) r[on ? "subscribedChannels" : "unsubscribedChannels"] = done;
    if (!unauthorized.empty()) r["unauthorizedChannels"] = unauthorized;
    if (!already.empty()) r["alreadySubscribedChannels"] = already;
    host().debug(c.user + (on ? " subscribed " : " unsubscribed ") + done.dump() + (unauthorized.empty() ? "" : " refused " + unauthorized.dump()));
    return verto::make_result(m.id, r, c.sessid);
  }

  // Delivers verto.event to every connection subscribed to `channel` (or to a prefix channel
  // ending in '/' for core topics). Returns how many got it.
  size_t deliver(const std::string& channel, json params) {
    params["eventChannel"] = channel;
    params["eventSerno"] = ++event_serno_;
    size_t n = 0;
    std::vector<jn_handle> to;
    for (auto& [h, c] : conns_) {
      if (!c.authed || c.closing) continue;
      bool sub = c.subs.count(channel) > 0;
      for (size_t p = channel.find('/'); !sub && p != std::string::npos; p = channel.find('/', p + 1)) sub = c.subs.count(channel.substr(0, p + 1)) > 0;
      if (sub) to.push_back(h);
    }
    for (jn_handle h : to) {
      request(h, "verto.event", params);
      ++n;
    }
    return n;
  }

  json broadcast(Conn& c, verto::Message& m) {
    std::string ch = str_of(m.params, "eventChannel");
    if (ch.empty() || !verto::valid_channel(ch)) {
      bad(c, "verto.broadcast without a valid eventChannel");
      return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: eventChannel");
    }
    if (!verto::channel_allowed(patterns_of(c.user), ch) || ch == conf_.heartbeat_channel) {
      host().info(c.user + " may not broadcast on " + verto::printable(ch));
      return verto::make_error(m.id, verto::kLoginFailed, "Permission Denied");
    }
    json params = m.params;
    params.erase("eventSerno");
    params["userid"] = c.user;
    params["sessid"] = c.sessid;
    std::string sessid = c.sessid;
    size_t n = deliver(ch, params);
    return verto::make_result(m.id, json{{"message", "Broadcast sent"}, {"eventChannel", ch}, {"delivered", n}}, sessid);
  }

  void on_event(std::string_view topic, std::string_view text) override {
    json data = json::parse(text, nullptr, false);
    if (topic == JN_MEDIA_KEYFRAME_REQUEST_TOPIC) {  // a consumer of a browser's video wants a keyframe
      std::string stream = data.is_object() ? data.value("stream", "") : "";
      std::lock_guard<std::recursive_mutex> g(media_mu_);
      for (auto& [i, l] : media_)
        if (l->owns_stream(stream)) l->request_keyframe(host().now_ms());
      bool exposed = false;
      for (auto& p : conf_.core_events) exposed = exposed || topic.substr(0, p.size()) == p;
      if (!exposed) return;
    }
    if (data.is_discarded()) data = std::string(text);
    deliver(std::string(topic), json{{"data", data}});
  }

  void heartbeat() {
    uint64_t up = host().now_ms() - started_ms_;
    size_t logged_in = 0;
    for (auto& [h, c] : conns_) logged_in += c.authed;
    json data = {{"Event-Name", "HEARTBEAT"}, {"Event-Info", "System Ready"}, {"Event-Date-Timestamp", std::to_string(unix_now() * 1000000)},
                 {"Uptime-msec", std::to_string(up)}, {"Session-Count", std::to_string(calls_.size())},
                 {"Verto-Connections", std::to_string(conns_.size())}, {"Verto-Logged-In", std::to_string(logged_in)},
                 {"Verto-Sessions", std::to_string(sessions_.size())}, {"Core-Plugin", "verto-ws"}};
    deliver(conf_.heartbeat_channel, json{{"data", data}});
  }

  // --- timers ----------------------------------------------------------------------------------------
  void on_timer(jn_handle, uint64_t cookie) override {
    if (cookie == kHeartbeatCookie) return heartbeat();
    if (cookie == kMediaTickCookie) return media_tick();
    if (cookie != kTickCookie) return;
    uint64_t now = host().now_ms();
    std::vector<jn_handle> close, ping;
    for (auto& [h, c] : conns_) {
      if (c.closing) continue;
      if (!c.authed && now - c.opened_ms > conf_.login_timeout_ms) close.push_back(h);
      else if (now - c.last_rx_ms > conf_.idle_timeout_ms) close.push_back(h);
      else if (c.authed && now - c.last_rx_ms > conf_.idle_ping_ms && !c.pinged_ms) ping.push_back(h);
    }
    for (jn_handle h : ping) {
      conn(h)->pinged_ms = now;
      request(h, "verto.ping", json{{"serno", server_id_ + 1}});
    }
    for (jn_handle h : close) {
      Conn* c = conn(h);
      host().info("closing " + c->peer + ": " + (c->authed ? "idle for " + std::to_string(now - c->last_rx_ms) + " ms" : "no login within login_timeout_ms"));
      c->closing = true;
      host().ws_close(h);
    }
    std::vector<std::string> expired;
    for (auto& [sid, s] : sessions_)
      if (!s.conn && now - s.detached_ms >= conf_.detach_timeout_ms) expired.push_back(sid);
    for (auto& sid : expired) {
      std::vector<uint64_t> ids;
      for (auto& [cid, call] : calls_)
        if (call.sessid == sid) ids.push_back(cid);
      for (uint64_t cid : ids) {
        host().info("call " + call(cid)->callid + " ended: not re-attached within detach_timeout_ms");
        end_call(cid, 408, "detach-timeout");
      }
      sessions_.erase(sid);
    }
  }

  // --- calls: the browser's side -------------------------------------------------------------------
  // destination_number -> URI: a number with a scheme goes as it is ("gb:dev/ch",
  // "intercom:room/101"); any other is a Verto user of this server ("1001" -> "verto:1001").
  std::string dest_uri(const std::string& number) const {
    if (number.find(':') != std::string::npos) return number;
    return conf_.default_scheme + ":" + number;
  }

  json invite(jn_handle h, verto::Message& m) {
    Conn* c = conn(h);
    const json& p = m.params;
    json dp = p.contains("dialogParams") && p["dialogParams"].is_object() ? p["dialogParams"] : json::object();
    std::string callid = str_of(dp, "callID"), number = str_of(dp, "destination_number"), sdp = str_of(p, "sdp");
    if (callid.empty() || callid.size() > 128 || number.empty() || number.size() > 256) {
      bad(*c, "verto.invite without dialogParams.callID or destination_number");
      return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: callID and destination_number are required");
    }
    if (by_callid_.count(callid)) return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: callID in use");
    verto::MediaDesc media;
    junction::webrtc::MediaStreams wmedia;
    std::string why;
    const uint64_t new_id = serial_ + 1;
    std::vector<std::string> bus_names;
    if (media_on()) {
      // The browser's offer as the core sees it: its codecs, and where its media will be on the
      // bus once we answer it (verto/<id>/audio|video).
      junction::webrtc::Description d;
      junction::webrtc::ParseError err;
      if (!junction::webrtc::parse_description(sdp, d, err)) {
        bad(*c, "verto.invite " + callid + ": " + err.reason);
        return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: " + err.reason);
      }
      junction::webrtc::to_media_streams(d, wmedia);
      for (size_t i = 0; i < wmedia.size(); ++i) {
        uint32_t k = wmedia[i].kind;
        wmedia.entries_[i]->bus_stream = k == JN_MEDIA_AUDIO || k == JN_MEDIA_VIDEO ? stream_prefix(new_id) + (k == JN_MEDIA_AUDIO ? JN_MEDIA_AUDIO_SUFFIX : JN_MEDIA_VIDEO_SUFFIX) : "";
      }
      wmedia.finish();
    } else if (!media.parse(sdp, why)) {
      bad(*c, "verto.invite " + callid + ": " + why);
      return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: " + why);
    }
    Call call;
    call.id = ++serial_;
    call.callid = callid;
    call.sessid = c->sessid;
    call.user = c->user;
    call.own_sdp = sdp;
    call.peer_uri = dest_uri(number);
    call.peer_name = str_of(dp, "remote_caller_id_name");
    std::string from = conf_.default_scheme + ":" + c->user, name = str_of(dp, "caller_id_name");
    call.own_name = name;
    std::string sessid = c->sessid;
    const uint64_t id = call.id;
    const std::string to = call.peer_uri;
    by_callid_[callid] = id;
    calls_[id] = std::move(call);
    // Acknowledged at once (clients close the socket after 10 s without an answer); the
    // outcome comes as verto.media / verto.answer / verto.bye requests.
    send(h, verto::make_result(m.id, json{{"message", "CALL CREATED"}, {"callID", callid}}, sessid));
    host().info("verto.invite " + callid + " from " + from + " to " + to);
    std::vector<jn_header> hdr;
    if (!media_on()) hdr.push_back({to_jn(kSdpHeader), to_jn(sdp)});  // signalling only: the SDP goes to the other browser
    hdr.push_back({to_jn("app-verto-callid"), to_jn(callid)});
    jn_call_event ev = Host::event(JN_CALL_OFFER);
    ev.from = to_jn(from);
    ev.to = to_jn(to);
    ev.from_name = to_jn(name);
    ev.media = media_on() ? wmedia.desc() : media.desc();
    ev.headers = hdr.data();
    ev.header_count = static_cast<uint32_t>(hdr.size());
    jn_handle leg = 0;
    originating_ = id;  // a B-leg offered to this plugin while the core routes it is this call's
    jn_status st = host().call_originate(ev, id, &leg);  // may deliver events (even REJECT) before it returns
    originating_ = 0;
    Call* now = this->call(id);
    if (st != JN_OK) {
      host().info("call " + callid + " to " + to + " not placed: " + (st == JN_ERR_NOT_FOUND ? "nothing routes it" : "status " + std::to_string(st)));
      if (now) {
        request(h, "verto.bye", json{{"callID", callid}, {"cause", st == JN_ERR_NOT_FOUND ? "NO_ROUTE_DESTINATION" : "NORMAL_TEMPORARY_FAILURE"},
                                     {"causeCode", st == JN_ERR_NOT_FOUND ? 3 : 41}});
        forget(id);
      }
      return nullptr;
    }
    if (now) now->leg = leg;
    gauges();
    return nullptr;
  }

  // Finds the call a request names (and that belongs to this connection's session).
  Call* named_call(Conn& c, const json& params) {
    std::string callid = callid_of(params);
    if (callid.empty()) {  // the document's bye sample names none: the session's only call
      Call* only = nullptr;
      for (auto& [id, cl] : calls_)
        if (cl.sessid == c.sessid) {
          if (only) return nullptr;
          only = &cl;
        }
      return only;
    }
    Call* cl = call_by_callid(callid);
    return cl && cl->sessid == c.sessid ? cl : nullptr;
  }

  json no_call(Conn& c, verto::Message& m) {
    host().info(m.method + " from " + c.user + " for unknown call " + verto::printable(callid_of(m.params)));
    return verto::make_error(m.id, verto::kCallNotFound, "CALL DOES NOT EXIST");
  }

  json answer(jn_handle h, verto::Message& m) {
    Conn* c = conn(h);
    Call* cl = named_call(*c, m.params);
    if (!cl || !cl->inbound || cl->state == kAnswered) return cl ? verto::make_error(m.id, verto::kInvalidParams, "Invalid params: not an unanswered inbound call") : no_call(*c, m);
    std::string sdp = str_of(m.params, "sdp");
    verto::MediaDesc media;
    junction::webrtc::MediaStreams wmedia;
    std::string why;
    if (verto::MediaLeg* leg = leg_of(cl->id)) {
      bool applied;
      {
        std::lock_guard<std::recursive_mutex> g(media_mu_);
        applied = leg->apply(sdp, why);
      }
      if (!applied) {
        // An answer we cannot use ends the call cleanly (488 to the caller), nothing else.
        bad(*c, "verto.answer " + cl->callid + ": " + why);
        json err = verto::make_error(m.id, verto::kInvalidParams, "Invalid params: " + why);
        send(h, err);
        end_call(cl->id, 488, "media: " + why);
        return nullptr;
      }
      leg->subscribe(leg->far_audio_media.bus_stream, leg->far_video_media.bus_stream);
      leg->to_core(wmedia);
      host().info("call " + cl->callid + " media: " + leg->summary());
    } else if (!media.parse(sdp, why)) {
      bad(*c, "verto.answer: " + why);
      return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: " + why);
    }
    cl->own_sdp = sdp;
    cl->state = kAnswered;
    std::string callid = cl->callid, sessid = c->sessid;
    jn_handle leg = cl->leg;
    send(h, verto::make_result(m.id, json{{"message", "CALL ANSWERED"}, {"callID", callid}}, sessid));
    host().info("call " + callid + " answered by " + c->user);
    jn_header hdr{to_jn(kSdpHeader), to_jn(sdp)};
    jn_call_event ev = Host::event(JN_CALL_ANSWER);
    bool terminated = wmedia.size() > 0;
    ev.media = terminated ? wmedia.desc() : media.desc();
    ev.headers = terminated ? nullptr : &hdr;
    ev.header_count = terminated ? 0 : 1;
    host().call_send(leg, ev);
    return nullptr;
  }

  json bye(jn_handle h, verto::Message& m) {
    Conn* c = conn(h);
    Call* cl = named_call(*c, m.params);
    if (!cl) return no_call(*c, m);
    int code = code_of_cause(m.params);
    const Cause& cause = cause_of_code(code);
    std::string callid = cl->callid;
    json r = verto::make_result(m.id, json{{"callID", callid}, {"message", "CALL ENDED"}, {"causeCode", cause.q850}, {"cause", cause.name}}, c->sessid);
    send(h, r);
    host().info("verto.bye " + callid + " from " + c->user + " (" + cause.name + ")");
    uint64_t id = cl->id;
    // An inbound call not yet answered is declined; any other is hung up.
    if (cl->inbound && cl->state != kAnswered && code == 200) code = 603;
    end_call(id, code, cause.name, /*tell_browser=*/false);
    return nullptr;
  }

  json info(jn_handle h, verto::Message& m) {
    Conn* c = conn(h);
    const json& p = m.params;
    if (p.contains("msg") && p["msg"].is_object()) {
      const json& msg = p["msg"];
      Call* cl = callid_of(p).empty() ? nullptr : named_call(*c, p);
      std::string sessid = c->sessid, user = c->user;
      if (cl && cl->leg) {
        jn_call_event ev = Host::event(JN_CALL_INFO);
        std::string body = json{{"from", user}, {"body", msg.value("body", json())}, {"type", msg.value("type", json())}}.dump(-1, ' ', false, json::error_handler_t::replace);
        ev.info_type = to_jn("chat");
        ev.info_body = to_jn(body);
        host().call_send(cl->leg, ev);
        return verto::make_result(m.id, json{{"message", "MESSAGE SENT"}}, sessid);
      }
      // No call: a chat to a user of this server ("to": "1001" or "1001@domain").
      std::string to = verto::user_of_login(str_of(msg, "to"));
      size_t n = 0;
      std::vector<jn_handle> targets;
      for (auto& [ch, cc] : conns_)
        if (cc.authed && cc.user == to && ch != h) targets.push_back(ch);
      json out = msg;
      out["from"] = user;
      for (jn_handle t : targets) {
        request(t, "verto.info", json{{"msg", out}});
        ++n;
      }
      if (!n) return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: nobody to deliver to");
      return verto::make_result(m.id, json{{"message", "MESSAGE SENT"}, {"delivered", n}}, sessid);
    }
    std::string dtmf = str_of(p, "dtmf");
    if (!dtmf.empty()) {
      for (char d : dtmf)
        if (!((d >= '0' && d <= '9') || d == '*' || d == '#' || (d >= 'A' && d <= 'D') || d == 'w' || d == 'W')) {
          bad(*c, "verto.info dtmf with '" + verto::printable(std::string(1, d)) + "'");
          return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: dtmf");
        }
      Call* cl = named_call(*c, p);
      if (!cl) return no_call(*c, m);
      std::string sessid = c->sessid;
      jn_call_event ev = Host::event(JN_CALL_DTMF);
      ev.dtmf = to_jn(dtmf);
      host().info("dtmf " + dtmf + " on " + cl->callid);
      host().call_send(cl->leg, ev);
      return verto::make_result(m.id, json{{"message", "SENT"}}, sessid);
    }
    // An application event for the other leg (e.g. {"type":"open-door"} to a door station).
    if (auto it = p.find("info"); it != p.end() && it->is_object() && it->contains("type") && (*it)["type"].is_string()) {
      std::string type = (*it)["type"];
      if (type.empty() || type.size() > 64) return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: info.type");
      Call* cl = named_call(*c, p);
      if (!cl) return no_call(*c, m);
      std::string sessid = c->sessid;
      json b = it->value("body", json());
      std::string body = b.is_string() ? b.get<std::string>() : b.is_null() ? std::string() : b.dump(-1, ' ', false, json::error_handler_t::replace);
      jn_call_event ev = Host::event(JN_CALL_INFO);
      ev.info_type = to_jn(type);
      ev.info_body = to_jn(body);
      host().info("info " + verto::printable(type) + " on " + cl->callid + " from " + c->user);
      host().call_send(cl->leg, ev);
      return verto::make_result(m.id, json{{"message", "SENT"}}, sessid);
    }
    return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: verto.info needs msg, dtmf or info");
  }

  json modify(jn_handle h, verto::Message& m) {
    Conn* c = conn(h);
    Call* cl = named_call(*c, m.params);
    if (!cl) return no_call(*c, m);
    std::string action = str_of(m.params, "action");
    if (cl->state != kAnswered) return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: call not answered");
    bool hold;
    if (action == "hold") hold = true;
    else if (action == "unhold") hold = false;
    else if (action == "toggleHold") hold = !cl->held;
    else {
      // updateMedia needs the server's own PeerConnection (README, "Media").
      return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: action must be hold, unhold or toggleHold");
    }
    cl->held = hold;
    std::string callid = cl->callid, sessid = c->sessid;
    jn_call_event ev = Host::event(JN_CALL_INFO);
    std::string body = json{{"holdState", hold ? "held" : "active"}}.dump();
    ev.info_type = to_jn("hold");
    ev.info_body = to_jn(body);
    host().info("call " + callid + (hold ? " held" : " resumed") + " by " + c->user);
    host().call_send(cl->leg, ev);
    return verto::make_result(m.id, json{{"callID", callid}, {"action", action}, {"holdState", hold ? "held" : "active"}}, sessid);
  }

  json display(jn_handle h, verto::Message& m) {
    Conn* c = conn(h);
    Call* cl = named_call(*c, m.params);
    if (!cl) return no_call(*c, m);
    std::string sessid = c->sessid;
    std::string body = json{{"display_name", str_of(m.params, "display_name")}, {"display_number", str_of(m.params, "display_number")}}.dump(-1, ' ', false, json::error_handler_t::replace);
    jn_call_event ev = Host::event(JN_CALL_INFO);
    ev.info_type = to_jn("display");
    ev.info_body = to_jn(body);
    host().call_send(cl->leg, ev);
    return verto::make_result(m.id, json{{"message", "SENT"}}, sessid);
  }

  // The browser's answer to our verto.attach (its fresh SDP for a re-attached call).
  json attach_answer(jn_handle h, verto::Message& m) {
    Conn* c = conn(h);
    Call* cl = named_call(*c, m.params);
    if (!cl) return no_call(*c, m);
    cl->own_sdp = str_of(m.params, "sdp");
    if (verto::MediaLeg* leg = leg_of(cl->id); leg && !leg->pc()) {
      std::string why;
      bool applied;
      {
        std::lock_guard<std::recursive_mutex> g(media_mu_);
        applied = leg->apply(cl->own_sdp, why);
      }
      if (!applied) {
        bad(*c, "verto.attach " + cl->callid + ": " + why);
        return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: " + why);
      }
      leg->subscribe(leg->far_audio_media.bus_stream, leg->far_video_media.bus_stream);
      host().info("call " + cl->callid + " media re-attached: " + leg->summary());
    }
    host().info("call " + cl->callid + " re-attached by " + c->user);
    return verto::make_result(m.id, json{{"message", "CALL ANSWERED"}, {"callID", cl->callid}}, c->sessid);
  }

  // Ends a call from our side: tells the core (END after answer, REJECT before), the browser
  // (verto.bye) unless it asked, and forgets it.
  void end_call(uint64_t id, int code, const std::string& reason, bool tell_browser = true) {
    Call* cl = call(id);
    if (!cl) return;
    Call copy = *cl;
    forget(id);
    if (tell_browser) {
      auto sit = sessions_.find(copy.sessid);
      if (sit != sessions_.end() && sit->second.conn) {
        const Cause& cause = cause_of_code(code);
        request(sit->second.conn, "verto.bye", json{{"callID", copy.callid}, {"cause", cause.name}, {"causeCode", cause.q850}});
      }
    }
    if (copy.leg) {
      bool answered = copy.state == kAnswered || !copy.inbound;  // an A-leg ends with END (a cancel before answer)
      host().call_send(copy.leg, answered ? JN_CALL_END : JN_CALL_REJECT, code, reason);
    }
  }

  void forget(uint64_t id) {
    retire(id);
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    by_callid_.erase(it->second.callid);
    calls_.erase(it);
    gauges();
  }

  static std::string header_of(const jn_call_event& ev, std::string_view name) {
    if (!JN_HAS_FIELD(&ev, jn_call_event, header_count)) return {};
    for (uint32_t i = 0; i < ev.header_count; ++i)
      if (to_sv(ev.headers[i].name) == name) return std::string(to_sv(ev.headers[i].value));
    return {};
  }

  jn_handle conn_of_session(const std::string& sessid) {
    auto it = sessions_.find(sessid);
    return it == sessions_.end() ? 0 : it->second.conn;
  }

  // --- calls: the core's side ------------------------------------------------------------------------
  void on_call(jn_handle leg, uint64_t cookie, const jn_call_event& ev) override {
    if (cookie == 0 && ev.type == JN_CALL_OFFER) return incoming(leg, ev);
    Call* cl = call(cookie);
    if (!cl) {
      host().debug("event " + std::to_string(ev.type) + " for a call no longer known (cookie " + std::to_string(cookie) + ")");
      return;
    }
    if (ev.call_id.len && cl->core_call_id.empty()) cl->core_call_id = std::string(to_sv(ev.call_id));
    jn_handle h = conn_of_session(cl->sessid);
    std::string callid = cl->callid;
    switch (ev.type) {
      case JN_CALL_RINGING: {
        // Early media: a RINGING that carries media (its SDP from a verto leg; other plugins'
        // media gets its SDP from the PeerConnection glue, README "Media").
        std::string sdp = header_of(ev, kSdpHeader);
        if ((!sdp.empty() || (ev.media && ev.media->count)) && cl->state == kDialing) {
          if (media_on() && !cl->inbound && !leg_of(cookie) && has_av(ev.media)) {
            std::string why;
            if (!start_outbound_media(cookie, ev.media, sdp, why)) return media_failed(cookie, why);
            cl = call(cookie);
          }
          cl->state = kEarly;
          cl->far_sdp = sdp;
          if (h) request(h, "verto.media", json{{"callID", callid}, {"sdp", sdp}});
        }
        return;
      }
      case JN_CALL_ANSWER: {
        std::string sdp = header_of(ev, kSdpHeader);
        if (media_on() && !cl->inbound && has_av(ev.media)) {
          if (!leg_of(cookie)) {
            std::string why;
            if (!start_outbound_media(cookie, ev.media, sdp, why)) return media_failed(cookie, why);
            cl = call(cookie);
          } else {
            sdp.clear();  // answered in verto.media already (early media)
          }
        }
        if (!sdp.empty()) cl->far_sdp = sdp;
        cl->state = kAnswered;
        if (ev.target.len) cl->peer_uri = std::string(to_sv(ev.target));
        json p = {{"callID", callid}};
        if (!sdp.empty()) p["sdp"] = sdp;
        host().info("call " + callid + " answered by " + cl->peer_uri);
        if (h) request(h, "verto.answer", p);
        return;
      }
      case JN_CALL_REJECT:
      case JN_CALL_END: {
        const Cause& cause = cause_of_code(ev.code);
        host().info("call " + callid + " ended by the far side: " + std::to_string(ev.code) + " " + std::string(to_sv(ev.reason)) + " -> " + cause.name);
        forget(cookie);
        if (h) request(h, "verto.bye", json{{"callID", callid}, {"cause", cause.name}, {"causeCode", cause.q850}});
        return;
      }
      case JN_CALL_DTMF:
        if (h) request(h, "verto.info", json{{"callID", callid}, {"dtmf", std::string(to_sv(ev.dtmf))}});
        return;
      case JN_CALL_INFO: {
        std::string type(to_sv(ev.info_type));
        json body = json::parse(to_sv(ev.info_body), nullptr, false);
        if (!h) return;
        if (type == "chat" && body.is_object()) request(h, "verto.info", json{{"callID", callid}, {"msg", body}});
        else if (type == "display" && body.is_object())
          request(h, "verto.display", json{{"callID", callid}, {"display_name", body.value("display_name", "")}, {"display_number", body.value("display_number", "")}});
        else if (type == "hold" && body.is_object())
          request(h, "verto.info", json{{"callID", callid}, {"holdState", body.value("holdState", "")}});
        else request(h, "verto.info", json{{"callID", callid}, {"info", {{"type", type}, {"body", body.is_discarded() ? json(std::string(to_sv(ev.info_body))) : body}}}});
        return;
      }
      case JN_CALL_OFFER:  // a re-offer: needs the server's PeerConnection (README, "Media")
        host().debug("re-offer on " + callid + " ignored");
        return;
      default: return;
    }
  }

  // The A-leg of this plugin that placed a call from `from` to `to`: the one being originated
  // right now, else the newest unanswered one that matches.
  const Call* caller_leg(const std::string& from, const std::string& to) {
    std::string prefix = conf_.default_scheme + ":";
    if (from.rfind(prefix, 0) != 0) return nullptr;
    if (originating_) return call(originating_);
    const Call* best = nullptr;
    for (auto& [id, c] : calls_)
      if (!c.inbound && c.state != kAnswered && c.user == from.substr(prefix.size()) && c.peer_uri == to) best = &c;
    return best;
  }

  void incoming(jn_handle leg, const jn_call_event& ev) {
    std::string target(to_sv(ev.target.len ? ev.target : ev.to));
    std::string user = target.substr(target.find(':') == std::string::npos ? 0 : target.find(':') + 1);
    user = verto::user_of_login(user);
    // The newest logged-in connection of the user takes the call.
    jn_handle h = 0;
    std::string sessid;
    for (auto& [sid, s] : sessions_)
      if (s.user == user && s.conn) {
        Conn* c = conn(s.conn);
        if (c && c->authed && !c->closing && (!h || c->opened_ms >= conn(h)->opened_ms)) {
          h = s.conn;
          sessid = sid;
        }
      }
    if (!h) {
      host().info("call to " + target + " rejected: " + verto::printable(user) + " is not logged in");
      host().call_send(leg, JN_CALL_REJECT, 480, "offline");
      return;
    }
    Call cl;
    cl.id = ++serial_;
    cl.callid = verto::new_uuid();
    cl.sessid = sessid;
    cl.user = user;
    cl.leg = leg;
    cl.inbound = true;
    cl.far_sdp = header_of(ev, kSdpHeader);
    cl.peer_uri = std::string(to_sv(ev.from));
    cl.peer_name = std::string(to_sv(ev.from_name));
    // The core does not carry an OFFER's metadata (headers, from_name) to the B-leg yet: a call
    // between two browsers of this server takes the caller's SDP and name from its A-leg here.
    if (const Call* a = caller_leg(cl.peer_uri, std::string(to_sv(ev.to)))) {
      if (cl.far_sdp.empty()) cl.far_sdp = a->own_sdp;
      if (cl.peer_name.empty()) cl.peer_name = a->own_name;
    }
    cl.core_call_id = std::string(to_sv(ev.call_id));
    if (cl.peer_name.empty()) cl.peer_name = cl.peer_uri;
    host().leg_set_cookie(leg, cl.id);
    if (media_on() && has_av(ev.media)) {
      // We terminate the browser's WebRTC: our own offer for what the caller has.
      std::string why, offer;
      auto ml = new_leg(cl.id, why);
      if (ml) far_media(ev.media, ml->far_audio_media, ml->far_video_media);
      if (!ml || !ml->offer(ml->far_audio_media, ml->far_video_media, offer, why)) {
        if (ml) ml->release();
        host().info("call to " + target + " rejected: media: " + why);
        host().call_send(leg, JN_CALL_REJECT, 488, "media: " + why);
        return;
      }
      cl.far_sdp = offer;
      cl.media = true;
      std::lock_guard<std::recursive_mutex> g(media_mu_);
      media_[cl.id] = std::move(ml);
    }
    std::string callid = cl.callid;
    json p = {{"callID", callid}, {"sdp", cl.far_sdp}, {"caller_id_name", cl.peer_name}, {"caller_id_number", cl.peer_uri},
              {"callee_id_name", user}, {"callee_id_number", user}, {"display_direction", "outbound"}};
    by_callid_[callid] = cl.id;
    calls_[cl.id] = std::move(cl);
    host().info("call from " + std::string(to_sv(ev.from)) + " offered to " + user + " as " + callid);
    request(h, "verto.invite", p);
    host().call_send(leg, JN_CALL_RINGING);
    gauges();
  }

  // --- media glue ------------------------------------------------------------------------------
  std::string stream_prefix(uint64_t id) const { return "verto/" + std::to_string(id); }

  verto::MediaLeg* leg_of(uint64_t id) {
    auto it = media_.find(id);
    return it == media_.end() ? nullptr : it->second.get();
  }

  static bool has_av(const jn_media_desc* d) {
    if (!d) return false;
    for (uint32_t i = 0; i < d->count; ++i)
      if (d->streams[i] && (d->streams[i]->kind == JN_MEDIA_AUDIO || d->streams[i]->kind == JN_MEDIA_VIDEO)) return true;
    return false;
  }

  // The first audio and the first video stream of the far leg's media.
  static void far_media(const jn_media_desc* d, junction::webrtc::LocalMedia& audio, junction::webrtc::LocalMedia& video) {
    bool a = false, v = false;
    for (uint32_t i = 0; d && i < d->count; ++i) {
      const jn_media_stream* s = d->streams[i];
      if (!s) continue;
      if (s->kind == JN_MEDIA_AUDIO && !a) audio = junction::webrtc::LocalMedia::from_media_stream(*s), a = true;
      if (s->kind == JN_MEDIA_VIDEO && !v) video = junction::webrtc::LocalMedia::from_media_stream(*s), v = true;
    }
  }

  std::unique_ptr<verto::MediaLeg> new_leg(uint64_t id, std::string& why) {
    verto::MediaLeg::Events ev;
    // Runs on the leg's media loop (inside on_udp): the call event waits for the control loop.
    ev.dtmf = [this, id](char d) {
      defer([this, id, d] {
        Call* c = call(id);
        if (!c || !c->leg) return;
        std::string digit(1, d);
        jn_call_event e = Host::event(JN_CALL_DTMF);
        e.dtmf = to_jn(digit);
        host().call_send(c->leg, e);
      });
    };
    // May run on the media loop: it touches no call state, only the log and failed_ (under the lock).
    Call* owner = call(id);
    std::string label = owner ? owner->callid : std::to_string(id);
    ev.state = [this, label, id](junction::webrtc::PeerState st) {
      host().info("call " + label + " media " + junction::webrtc::peer_state_name(st));
      if (st == junction::webrtc::PeerState::Failed) failed_.push_back(id);  // ended from the media tick, not inside the PeerConnection
    };
    // Under the media lock already (a PeerConnection callback): our own legs directly, other
    // producers through the core event, from the control loop.
    ev.keyframe = [this](const std::string& stream, const char* reason) {
      for (auto& [i, l] : media_)
        if (l->owns_stream(stream)) l->request_keyframe(host().now_ms());
      std::string body = json{{"stream", stream}, {"reason", reason}}.dump();
      defer([this, body] { host().event_publish(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, body); });
    };
    auto leg = std::make_unique<verto::MediaLeg>(host(), cert_, id, stream_prefix(id), std::move(ev));
    verto::MediaConf mc = conf_.media_conf;
    mc.loop = host().media_loops() ? 1 + static_cast<uint32_t>(id % host().media_loops()) : 0;
    if (!leg->open(mc, why)) {
      leg->release();
      return nullptr;
    }
    return leg;
  }

  // Work for the control loop, from any thread (a media loop's PeerConnection callbacks).
  void defer(std::function<void()> f) {
    {
      std::lock_guard<std::mutex> g(deferred_mu_);
      deferred_.push_back(std::move(f));
    }
    host().post(0, kDeferredCookie);
  }

  void on_post(uint64_t cookie) override {
    if (cookie != kDeferredCookie) return;
    std::vector<std::function<void()>> todo;
    {
      std::lock_guard<std::mutex> g(deferred_mu_);
      todo.swap(deferred_);
    }
    for (auto& f : todo) f();
  }

  // An outbound call's far leg has media (early or answered): answer the browser's offer with it.
  bool start_outbound_media(uint64_t id, const jn_media_desc* d, std::string& sdp, std::string& why) {
    Call* cl = call(id);
    junction::webrtc::Description offer;
    junction::webrtc::ParseError err;
    if (!junction::webrtc::parse_description(cl->own_sdp, offer, err)) {
      why = err.reason;
      return false;
    }
    auto leg = new_leg(id, why);
    if (!leg) return false;
    far_media(d, leg->far_audio_media, leg->far_video_media);
    // Not in the map yet: no other thread sees this leg, no lock needed to build its PeerConnection.
    if (!leg->answer(offer, leg->far_audio_media, leg->far_video_media, sdp, why)) {
      leg->release();
      return false;
    }
    leg->subscribe(leg->far_audio_media.bus_stream, leg->far_video_media.bus_stream);
    host().info("call " + cl->callid + " media: " + leg->summary());
    std::lock_guard<std::recursive_mutex> g(media_mu_);
    media_[id] = std::move(leg);
    cl->media = true;
    return true;
  }

  void media_failed(uint64_t id, const std::string& why) {
    Call* cl = call(id);
    host().info("call " + (cl ? cl->callid : std::to_string(id)) + " ended: media: " + why);
    end_call(id, 488, "media: " + why);
  }

  // A leg's media is torn down outside the PeerConnection's own callbacks: on the next media tick.
  void retire(uint64_t id) {
    std::lock_guard<std::recursive_mutex> g(media_mu_);
    auto it = media_.find(id);
    if (it == media_.end()) return;
    it->second->close_pc();
    graveyard_.push_back(std::move(it->second));
    media_.erase(it);
  }

  // After a hot reload: new media for each answered call, offered to its browser like a re-attach.
  void reoffer_after_reload() {
    std::vector<Reoffer> todo;
    todo.swap(reoffer_);
    for (auto& r : todo) {
      Call* cl = call(r.id);
      if (!cl) continue;
      jn_handle h = conn_of_session(cl->sessid);
      std::string why, offer;
      auto leg = new_leg(r.id, why);
      if (leg) {
        leg->far_audio_media = r.audio;
        leg->far_video_media = r.video;
      }
      if (!leg || !leg->offer(leg->far_audio_media, leg->far_video_media, offer, why)) {
        if (leg) leg->release();
        host().warn("call " + cl->callid + ": no media after the reload: " + why);
        cl->media = false;
        continue;
      }
      {
        std::lock_guard<std::recursive_mutex> g(media_mu_);
        media_[r.id] = std::move(leg);
      }
      cl = call(r.id);
      if (h) request(h, "verto.attach", json{{"callID", cl->callid}, {"sdp", offer}, {"caller_id_name", cl->peer_name},
                                             {"caller_id_number", cl->peer_uri}, {"display_direction", cl->inbound ? "inbound" : "outbound"}});
      host().info("call " + cl->callid + ": fresh media offered after the reload");
    }
  }

  void media_tick() {
    if (!reoffer_.empty()) reoffer_after_reload();
    for (auto& g : graveyard_) g->release();  // closed under the lock by retire(); sockets outside it
    graveyard_.clear();
    uint64_t now = host().now_ms();
    std::vector<uint64_t> failed;
    {
      std::lock_guard<std::recursive_mutex> g(media_mu_);
      for (auto& [id, leg] : media_) leg->tick(now);
      failed.swap(failed_);
    }
    for (uint64_t id : failed)
      if (call(id)) media_failed(id, "ICE/DTLS failed or consent expired");
  }

  // On the leg's media loop: one lock per batch.
  void on_udp(jn_handle, uint64_t cookie, const jn_datagram* d, size_t n) override {
    std::lock_guard<std::recursive_mutex> g(media_mu_);
    if (verto::MediaLeg* leg = leg_of(cookie)) leg->on_udp(d, n, host().now_ms());
  }

  void on_bus(jn_handle, uint64_t cookie, jn_buf* buf) override {
    std::lock_guard<std::recursive_mutex> g(media_mu_);
    if (verto::MediaLeg* leg = leg_of(cookie / 4)) leg->on_bus(static_cast<uint32_t>(cookie % 4), buf, host().now_ms());
  }

  // --- admin: users and tokens -----------------------------------------------------------------------
  void on_admin(const jn_admin_request& req) override {
    std::string verb(to_sv(req.verb));
    std::string_view text = to_sv(req.body);
    json body = text.empty() ? json::object() : json::parse(text, nullptr, false);
    auto reply = [&](int status, const json& j) { host().admin_reply(req.reply, status, j.dump(-1, ' ', false, json::error_handler_t::replace)); };
    if (!body.is_object()) return reply(400, {{"error", "the body must be a JSON object"}});
    std::string user = body.value("user", "");
    if (verb == "user-add" || verb == "user-set") {
      std::string password = body.value("password", "");
      if (!verto::valid_user(user)) return reply(400, {{"error", "user: 1-64 of A-Z a-z 0-9 . _ -"}});
      if (password.size() < 4 || password.size() > 1024) return reply(400, {{"error", "password: 4 to 1024 bytes"}});
      json rec = {{"user", user}, {"name", body.value("name", user)}, {"created", unix_now()}};
      auto job = std::make_unique<KdfJob>();
      job->kind = KdfJob::Hash;
      job->password = password;
      job->iterations = conf_.kdf_iterations;
      job->reply = req.reply;
      job->user_record = rec;
      uint64_t cookie = ++serial_;
      KdfJob* raw = job.get();
      jobs_[cookie] = std::move(job);
      jn_handle w = 0;
      if (host().work_submit(&KdfJob::run, raw, cookie, &w) != JN_OK) {
        jobs_.erase(cookie);
        return reply(503, {{"error", "worker pool busy"}});
      }
      return;  // answered in on_work_done
    }
    if (verb == "user-del") {
      std::string rec;
      if (!host().kv_get("user/" + user, rec)) return reply(404, {{"error", "no such user"}});
      host().kv_del("user/" + user);
      size_t revoked = revoke_tokens(user);
      host().info("user " + user + " deleted (" + std::to_string(revoked) + " token(s) revoked)");
      return reply(200, {{"user", user}, {"deleted", true}, {"tokens_revoked", revoked}});
    }
    if (verb == "users") {
      json list = json::array();
      for (auto& [k, rec] : host().kv_scan("user/")) {
        json u = json::parse(rec, nullptr, false);
        if (!u.is_object()) continue;
        u.erase("hash");
        size_t online = 0;
        for (auto& [h, c] : conns_) online += c.authed && c.user == u.value("user", "");
        u["connections"] = online;
        list.push_back(u);
      }
      return reply(200, {{"users", list}});
    }
    if (verb == "token-issue") {
      std::string rec;
      if (!host().kv_get("user/" + user, rec)) return reply(404, {{"error", "no such user"}});
      uint64_t ttl = body.value("ttl_s", uint64_t{conf_.token_ttl_s});
      if (ttl == 0 || ttl > 315360000) return reply(400, {{"error", "ttl_s: 1 to 315360000"}});
      std::string token = verto::new_token();
      if (token.empty()) return reply(500, {{"error", "no randomness"}});
      std::string key = verto::sha256_hex(token);
      uint64_t exp = unix_now() + ttl;
      host().kv_put("token/" + key, json{{"user", user}, {"exp", exp}, {"id", key.substr(0, 16)}}.dump());
      host().info("token " + key.substr(0, 16) + " issued to " + user + " for " + std::to_string(ttl) + " s");
      return reply(200, {{"token", token}, {"user", user}, {"expires", exp}, {"id", key.substr(0, 16)}});
    }
    if (verb == "token-revoke") {
      std::string token = body.value("token", "");
      if (!token.empty()) {
        std::string key = "token/" + verto::sha256_hex(token), rec;
        if (!host().kv_get(key, rec)) return reply(404, {{"error", "no such token"}});
        host().kv_del(key);
        return reply(200, {{"revoked", 1}});
      }
      if (!user.empty()) return reply(200, {{"revoked", revoke_tokens(user)}});
      return reply(400, {{"error", "give token or user"}});
    }
    if (verb == "sessions") {
      json list = json::array();
      for (auto& [sid, s] : sessions_) {
        json calls = json::array();
        for (auto& [id, cl] : calls_)
          if (cl.sessid == sid) {
            json e = {{"callID", cl.callid}, {"state", cl.state == kAnswered ? "answered" : cl.state == kEarly ? "early" : "dialing"},
                      {"inbound", cl.inbound}, {"peer", cl.peer_uri}, {"held", cl.held}};
            if (verto::MediaLeg* leg = leg_of(id)) {
              std::lock_guard<std::recursive_mutex> g(media_mu_);
              e["media"] = leg->stats_json();
            }
            calls.push_back(e);
          }
        Conn* c = s.conn ? conn(s.conn) : nullptr;
        list.push_back({{"sessid", sid}, {"user", s.user}, {"attached", s.conn != 0}, {"peer", c ? c->peer : ""},
                        {"subscriptions", c ? json(c->subs) : json::array()}, {"calls", calls}});
      }
      return reply(200, {{"sessions", list}, {"connections", conns_.size()}});
    }
    if (verb == "publish") {  // test / operator hook: an event on a channel, as a core event would
      std::string ch = body.value("channel", "");
      if (!verto::valid_channel(ch)) return reply(400, {{"error", "channel"}});
      return reply(200, {{"delivered", deliver(ch, json{{"data", body.value("data", json::object())}})}});
    }
    reply(404, {{"error", "unknown verb " + verb + " (user-add, user-set, user-del, users, token-issue, token-revoke, sessions, publish)"}});
  }

  size_t revoke_tokens(const std::string& user) {
    size_t n = 0;
    for (auto& [k, rec] : host().kv_scan("token/")) {
      json t = json::parse(rec, nullptr, false);
      if (t.is_object() && t.value("user", "") == user) {
        host().kv_del(k);
        ++n;
      }
    }
    return n;
  }

  jn_status stop() override {
    std::vector<uint64_t> ids;
    for (auto& [id, cl] : calls_) ids.push_back(id);
    for (uint64_t id : ids) end_call(id, 503, "server-stopping");
    std::vector<std::unique_ptr<verto::MediaLeg>> legs;
    {
      std::lock_guard<std::recursive_mutex> g(media_mu_);
      for (auto& [id, leg] : media_) {
        leg->close_pc();
        legs.push_back(std::move(leg));
      }
      media_.clear();
    }
    for (auto& l : legs) l->release();  // here, not in on_destroy (no resource services there)
    for (auto& gl : graveyard_) gl->release();
    graveyard_.clear();
    return JN_OK;
  }

  void gauges() {
    host().gauge_set("verto_connections", static_cast<double>(conns_.size()));
    host().gauge_set("verto_sessions", static_cast<double>(sessions_.size()));
    host().gauge_set("verto_calls", static_cast<double>(calls_.size()));
  }

  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (auto& e : v) s += (s.empty() ? "" : ", ") + e;
    return s;
  }

  Conf conf_;
  uint64_t generation_ = 0;
  jn_handle endpoint_ = 0, tick_ = 0, heartbeat_ = 0;
  uint64_t serial_ = 0, started_ms_ = 0, originating_ = 0;
  int64_t server_id_ = 0;
  uint64_t event_serno_ = 0;
  std::map<jn_handle, Conn> conns_;
  std::map<std::string, Session> sessions_;
  std::map<uint64_t, Call> calls_;
  std::map<std::string, uint64_t> by_callid_;
  std::map<uint64_t, std::unique_ptr<KdfJob>> jobs_;
  junction::webrtc::Certificate cert_;
  std::map<uint64_t, std::unique_ptr<verto::MediaLeg>> media_;
  jn_handle media_tick_ = 0;
  std::vector<std::unique_ptr<verto::MediaLeg>> graveyard_;
  // Guards media_ and every PeerConnection: the control loop and the legs' media loops. Recursive
  // because a PeerConnection callback (under it) reaches other legs.
  std::recursive_mutex media_mu_;
  std::mutex deferred_mu_;
  std::vector<std::function<void()>> deferred_;
  std::vector<uint64_t> failed_;
  struct Reoffer {
    uint64_t id;
    junction::webrtc::LocalMedia audio, video;
  };
  std::vector<Reoffer> reoffer_;
  std::string dummy_;
};

}  // namespace

JUNCTION_PLUGIN(VertoWs, "verto-ws", "0.1.0", "Verto (JSON-RPC over WebSocket) for browsers: login, events, calls", "verto", kStateSchema,
                kStateSchema)
