// The whole intercom-json plugin (every src/ file of the plugin, its state machine included) driven
// without sockets: the plugin is compiled into this program and talks to a fake core (a
// jn_host_api of its own) that accepts connections, delivers frames, closes, timer ticks, call
// events from other legs, hot reloads (save_state -> a new instance -> restore_state), alarm
// events and admin commands, in the order the input says.
//
// The input is a script of operations (see run()); messages are either raw bytes (the parser's
// paths) or built from a few bytes into well-formed ones with valid or bad tokens (the state
// machine's paths: joins, calls rung to whole families, answers, hangups, keepalive timeouts).
//
// Oracle: no crash, leak or UB; no exception escapes a hook (plugin.hpp's guard would turn it into
// set_error); every frame the box sends parses as a protocol message and holds no NUL; every call
// event it sends is one the core's reader accepts (from_abi); it never uses a connection after
// its CLOSED, nor a leg after its END/REJECT; and after every operation its state (the JSON of
// save_state) has no ghost: each call's parties are live connections, each call's leg is live in
// the core and each live leg belongs to exactly one of its calls.
#include <junction/plugin.hpp>

#include "protocol.hpp"
#include "routing/call_event_abi.hpp"
#include "token.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

extern "C" jn_status junction_plugin_create(const jn_host_api*, jn_host_ctx*, const jn_create_args*, jn_plugin**,
                                            const jn_plugin_vtable**);

namespace {

using nlohmann::json;

constexpr const char* kSecret = "fuzz-secret-0123456789";
constexpr uint64_t kTickCookie = 2;  // the plugin's timer cookie (intercom_json.hpp)

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "fuzz_session: %s\n", why.c_str());
  std::abort();
}

std::string sv(jn_str s) { return s.ptr ? std::string(s.ptr, s.len) : std::string(); }

struct Input {
  const uint8_t* p;
  size_t n, i = 0;
  bool empty() const { return i >= n; }
  uint8_t u8() { return i < n ? p[i++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  std::string bytes(size_t len) {
    len = std::min(len, n - std::min(i, n));
    std::string s(reinterpret_cast<const char*>(p + i), len);
    i += len;
    return s;
  }
  template <typename T, size_t N>
  const T& pick(const T (&a)[N]) { return a[u8() % N]; }
};

// --- the fake core ----------------------------------------------------------------------------
struct Conn {
  bool closed = false;       // CLOSED delivered: the handle is dead
  bool close_asked = false;  // the plugin called tcp_close (CLOSED follows), or CLOSED is being delivered
  bool outbound = false, connected = true;
};
struct Leg {
  uint64_t cookie = 0;
  bool alive = true;
};

struct Core {
  const jn_plugin_vtable* vt = nullptr;
  jn_plugin* self = nullptr;
  uint64_t generation = 0;
  uint64_t clock = 1000;
  uint64_t next = 1;
  std::string conf;
  std::string hook;       // the hook running, for messages
  std::string state;      // the save_state sink
  std::map<jn_handle, Conn> conns;
  std::map<jn_handle, Leg> legs;
  std::map<jn_handle, uint64_t> timers;
  std::map<std::string, std::string> kv;
  std::map<jn_handle, std::string> routes;
  std::deque<jn_handle> to_close;
  jn_handle listener = 0;
  int call_serial = 0;

  jn_handle handle() { return (uint64_t(1) << 32) | next++; }
  static Core& of(jn_host_ctx* c) { return *reinterpret_cast<Core*>(c); }
  jn_host_ctx* ctx() { return reinterpret_cast<jn_host_ctx*>(this); }

  // An event the plugin hands the core must be one the core's reader accepts.
  void check_event(const jn_call_event* ev, const char* what) {
    junction::CallEvent out;
    if (!ev) fail(std::string(what) + " with a NULL event");
    if (junction::from_abi(*ev, out) != JN_OK) fail(std::string(what) + ": an event the core refuses");
  }

  void deliver_call(jn_handle leg, const junction::CallEvent& e) {
    Leg& l = legs.at(leg);
    if (e.type == JN_CALL_END || e.type == JN_CALL_REJECT) l.alive = false;
    junction::AbiCallEvent abi(e);
    run_hook("on_call", [&] { vt->on_call(self, leg, l.cookie, abi.get()); });
  }

  template <typename F>
  void run_hook(const char* name, F&& f) {
    std::string outer = hook;
    hook = name;
    f();
    hook = outer;
  }

  // CLOSED for every connection the plugin closed, as the core's close callback would.
  void settle() {
    while (!to_close.empty()) {
      jn_handle h = to_close.front();
      to_close.pop_front();
      tcp_event(h, JN_TCP_CLOSED, {}, JN_OK);
    }
  }

  void tcp_event(jn_handle h, uint32_t type, std::string_view data = {}, jn_status status = JN_OK) {
    Conn& c = conns.at(h);
    if (c.closed) return;
    jn_tcp_event ev{};
    ev.struct_size = sizeof ev;
    ev.type = type;
    ev.conn = h;
    ev.listener = c.outbound ? 0 : listener;
    ev.cookie = 1;
    ev.data = reinterpret_cast<const uint8_t*>(data.data());
    ev.len = type == JN_TCP_OVERSIZE ? 70000 : data.size();
    ev.peer.family = 4;
    ev.peer.ip[0] = 127;
    ev.peer.ip[3] = 1;
    ev.peer.port = static_cast<uint16_t>(40000 + (h & 0xff));
    ev.status = status;
    // The handle dies when its CLOSED hook returns (abi.h): until then, tcp_send and tcp_close
    // on it are harmless.
    if (type == JN_TCP_CLOSED) c.close_asked = true;
    run_hook("on_tcp", [&] { vt->on_tcp(self, &ev); });
    if (type == JN_TCP_CLOSED) conns.at(h).closed = true;
  }
  void accept(int peer_kind) {
    jn_handle h = handle();
    conns[h] = Conn{};
    jn_tcp_event ev{};
    ev.struct_size = sizeof ev;
    ev.type = JN_TCP_ACCEPTED;
    ev.conn = h;
    ev.listener = listener;
    ev.cookie = 1;
    if (peer_kind == 2) {
      ev.peer.family = 6;
      ev.peer.ip[15] = 1;  // ::1
    } else {
      ev.peer.family = 4;
      ev.peer.ip[0] = peer_kind == 0 ? 127 : 10;
      ev.peer.ip[3] = 1;
    }
    ev.peer.port = static_cast<uint16_t>(40000 + (h & 0xff));
    run_hook("on_tcp", [&] { vt->on_tcp(self, &ev); });
  }

  bool create(bool restoring) {
    jn_create_args args{};
    args.struct_size = sizeof args;
    args.restoring = restoring ? 1 : 0;
    args.generation = generation;
    args.conf_path = {"fuzz.toml", 9};
    hook = "create";
    jn_status st = junction_plugin_create(api(), ctx(), &args, &self, &vt);
    hook.clear();
    return st == JN_OK;
  }
  void destroy() {
    if (self) vt->on_destroy(self);
    self = nullptr;
  }
  // A hot reload: what the core does on `junction ctl reload intercom-json`.
  void reload() {
    state.clear();
    hook = "save_state";
    if (vt->on_save_state(self, 1) != JN_OK) fail("save_state failed");
    destroy();
    ++generation;
    if (!create(true)) fail("the reloaded instance refused to be created");
    hook = "restore_state";
    if (vt->on_restore_state(self, 1, reinterpret_cast<const uint8_t*>(state.data()), state.size()) != JN_OK)
      fail("restore_state refused the state save_state wrote");
    hook.clear();
  }

  // No ghost after an operation: read the plugin's state as save_state writes it.
  void check_state() {
    state.clear();
    hook = "save_state";
    if (vt->on_save_state(self, 1) != JN_OK) fail("save_state failed");
    hook.clear();
    json s = json::parse(state, nullptr, false);
    if (!s.is_object()) fail("save_state wrote no JSON object");
    std::set<jn_handle> conn_handles;
    for (auto& c : s["conns"]) {
      jn_handle h = c["h"].get<jn_handle>();
      auto it = conns.find(h);
      if (it == conns.end() || it->second.closed) fail("the plugin keeps a connection whose CLOSED it was given");
      conn_handles.insert(h);
    }
    std::map<jn_handle, int> leg_calls;
    std::set<std::pair<jn_handle, std::string>> parties;
    for (auto& c : s["calls"]) {
      for (auto& p : c["parties"]) {
        jn_handle h = p["conn"].get<jn_handle>();
        if (!conn_handles.count(h)) fail("a call has a party on a connection the plugin forgot");
        if (!parties.insert({h, p["sid"].get<std::string>()}).second) fail("two parties share a connection and sid");
      }
      jn_handle leg = c["leg"].get<jn_handle>();
      auto it = legs.find(leg);
      if (it == legs.end() || !it->second.alive) fail("a call whose leg has ended (or never was) is still kept");
      ++leg_calls[leg];
    }
    for (auto& [leg, l] : legs)
      if (l.alive && leg_calls[leg] != 1) fail("a live leg belongs to " + std::to_string(leg_calls[leg]) + " calls of the plugin");
  }

  static const jn_host_api* api();
};

// --- the host API the plugin sees -------------------------------------------------------------
jn_status unsupported() { return JN_ERR_UNSUPPORTED; }

const jn_host_api* Core::api() {
  static const jn_host_api a = [] {
    jn_host_api t{};
    t.struct_size = sizeof t;
    t.abi_major = JN_ABI_MAJOR;
    t.abi_minor = JN_ABI_MINOR;
    t.log = [](jn_host_ctx*, int, jn_str) {};
    t.log_level = [](jn_host_ctx*) { return int(JN_LOG_DEBUG); };  // build every message
    t.set_error = [](jn_host_ctx* c, jn_str m) {
      Core& k = of(c);
      // create and restore_state may refuse with a reason; anywhere else it is the guard of
      // plugin.hpp reporting an exception that escaped a hook.
      if (k.hook != "create" && k.hook != "restore_state") fail("exception escaped " + k.hook + ": " + sv(m));
    };
    t.now_ms = [](jn_host_ctx* c) { return of(c).clock; };
    t.config_json = [](jn_host_ctx* c, char* out, size_t cap, size_t* needed) -> jn_status {
      const std::string& s = of(c).conf;
      if (needed) *needed = s.size() + 1;
      if (!out || cap < s.size() + 1) return JN_ERR_LIMIT;
      std::memcpy(out, s.data(), s.size());
      out[s.size()] = '\0';
      return JN_OK;
    };
    t.config_error = [](jn_host_ctx*, jn_str, jn_str) {};
    t.timer_start = [](jn_host_ctx* c, uint64_t, uint64_t, uint64_t cookie, jn_handle* out) -> jn_status {
      *out = of(c).handle();
      of(c).timers[*out] = cookie;
      return JN_OK;
    };
    t.timer_stop = [](jn_host_ctx* c, jn_handle h) -> jn_status { return of(c).timers.erase(h) ? JN_OK : JN_ERR_NOT_FOUND; };
    t.udp_bind = [](jn_host_ctx*, jn_str, const jn_udp_options*, uint64_t, jn_handle*) { return unsupported(); };
    t.udp_local_addr = [](jn_host_ctx*, jn_handle, jn_addr*) { return unsupported(); };
    t.udp_send = [](jn_host_ctx*, const jn_send*, size_t) { return unsupported(); };
    t.udp_join_multicast = [](jn_host_ctx*, jn_handle, jn_str, jn_str) { return unsupported(); };
    t.udp_close = [](jn_host_ctx*, jn_handle) { return unsupported(); };
    t.tcp_listen = [](jn_host_ctx* c, jn_str, const jn_tcp_options*, uint64_t, jn_handle* out) -> jn_status {
      *out = of(c).listener = of(c).handle();
      return JN_OK;
    };
    t.tcp_connect = [](jn_host_ctx* c, jn_str, const jn_tcp_options*, uint64_t, jn_handle* out) -> jn_status {
      *out = of(c).handle();
      Conn conn;
      conn.outbound = true;
      conn.connected = false;
      of(c).conns[*out] = conn;
      return JN_OK;
    };
    t.tcp_send = [](jn_host_ctx* c, jn_handle h, const uint8_t* data, size_t len) -> jn_status {
      auto it = of(c).conns.find(h);
      if (it == of(c).conns.end() || it->second.closed) fail("tcp_send on a connection that is not (or no longer) there");
      std::string_view frame(reinterpret_cast<const char*>(data), len);
      if (frame.find('\0') != std::string_view::npos) fail("a frame sent with a NUL inside");
      intercom::Message m;
      intercom::Error e;
      if (!intercom::parse_message(frame, m, e)) fail("the box sent a frame that does not parse: " + std::string(frame));
      if (it->second.close_asked || !it->second.connected) return JN_ERR_STATE;
      return JN_OK;
    };
    t.tcp_set_cookie = [](jn_host_ctx*, jn_handle, uint64_t) -> jn_status { return JN_OK; };
    t.tcp_close = [](jn_host_ctx* c, jn_handle h) -> jn_status {
      auto it = of(c).conns.find(h);
      if (it == of(c).conns.end() || it->second.closed) fail("tcp_close on a connection that is not (or no longer) there");
      if (!it->second.close_asked) of(c).to_close.push_back(h);
      it->second.close_asked = true;
      return JN_OK;
    };
    t.http_listen = [](jn_host_ctx*, jn_str, const jn_http_options*, uint64_t, jn_handle*) { return unsupported(); };
    // Pulls (streamed http_request, 2.3) are not driven here: refused, so they back off.
    t.http_request = [](jn_host_ctx*, const jn_http_client_request*, uint64_t, jn_handle*) { return unsupported(); };
    t.cancel = [](jn_host_ctx*, jn_handle) -> jn_status { return JN_ERR_NOT_FOUND; };
    t.http_respond = [](jn_host_ctx*, jn_handle, const jn_http_response*) { return unsupported(); };
    t.ws_send = [](jn_host_ctx*, jn_handle, jn_str, int) { return unsupported(); };
    t.ws_set_cookie = [](jn_host_ctx*, jn_handle, uint64_t) { return unsupported(); };
    t.ws_close = [](jn_host_ctx*, jn_handle) { return unsupported(); };
    t.buf_alloc = [](jn_host_ctx*, uint32_t) -> jn_buf* { return nullptr; };
    t.buf_ref = [](jn_host_ctx*, jn_buf*) {};
    t.buf_unref = [](jn_host_ctx*, jn_buf*) {};
    t.buf_is_shared = [](jn_host_ctx*, const jn_buf*) { return 0; };
    t.buf_copy = [](jn_host_ctx*, const jn_buf*) -> jn_buf* { return nullptr; };
    t.bus_publish = [](jn_host_ctx*, jn_str, jn_buf*) { return unsupported(); };
    t.bus_subscribe = [](jn_host_ctx*, jn_str, uint64_t, jn_handle*) { return unsupported(); };
    t.bus_unsubscribe = [](jn_host_ctx*, jn_handle) { return unsupported(); };
    t.route_add = [](jn_host_ctx* c, jn_str uri, jn_handle* out) -> jn_status {
      for (auto& [h, u] : of(c).routes)
        if (u == sv(uri)) return JN_ERR_EXISTS;
      *out = of(c).handle();
      of(c).routes[*out] = sv(uri);
      return JN_OK;
    };
    t.route_remove = [](jn_host_ctx* c, jn_handle h) -> jn_status { return of(c).routes.erase(h) ? JN_OK : JN_ERR_NOT_FOUND; };
    t.route_lookup = [](jn_host_ctx*, jn_str, char*, size_t, size_t*) { return unsupported(); };
    t.call_originate = [](jn_host_ctx* c, const jn_call_event* ev, uint64_t cookie, jn_handle* out) -> jn_status {
      Core& k = of(c);
      k.check_event(ev, "call_originate");
      if (ev->type != JN_CALL_OFFER) fail("call_originate without an OFFER");
      std::string to = sv(ev->to);
      if (to.find("nowhere") != std::string::npos) return JN_ERR_NOT_FOUND;  // no route
      *out = k.handle();
      k.legs[*out] = Leg{cookie, true};
      // The core may deliver the leg's first events before call_originate returns.
      if (to.find("busy") != std::string::npos) {
        junction::CallEvent rej;
        rej.type = JN_CALL_REJECT;
        rej.code = 486;
        rej.reason = "busy: the line is busy";
        rej.call_id = "c-sync";
        k.deliver_call(*out, rej);
      }
      return JN_OK;
    };
    t.call_send = [](jn_host_ctx* c, jn_handle leg, const jn_call_event* ev) -> jn_status {
      Core& k = of(c);
      k.check_event(ev, "call_send");
      auto it = k.legs.find(leg);
      if (it == k.legs.end()) fail("call_send on a leg the core never gave");
      if (!it->second.alive) fail("call_send on a leg that has ended");
      if (ev->type == JN_CALL_END || ev->type == JN_CALL_REJECT) it->second.alive = false;
      return JN_OK;
    };
    t.leg_set_cookie = [](jn_host_ctx* c, jn_handle leg, uint64_t cookie) -> jn_status {
      auto it = of(c).legs.find(leg);
      if (it == of(c).legs.end()) return JN_ERR_NOT_FOUND;
      it->second.cookie = cookie;
      return JN_OK;
    };
    t.event_publish = [](jn_host_ctx*, jn_str, jn_str) -> jn_status { return JN_OK; };
    t.event_subscribe = [](jn_host_ctx*, jn_str) -> jn_status { return JN_OK; };
    t.counter_add = [](jn_host_ctx*, jn_str, jn_str, uint64_t) {};
    t.gauge_set = [](jn_host_ctx*, jn_str, jn_str, double) {};
    t.kv_put = [](jn_host_ctx* c, jn_str key, const uint8_t* v, size_t n) -> jn_status {
      of(c).kv[sv(key)] = std::string(reinterpret_cast<const char*>(v), n);
      return JN_OK;
    };
    t.kv_get = [](jn_host_ctx* c, jn_str key, uint8_t* out, size_t cap, size_t* needed) -> jn_status {
      auto it = of(c).kv.find(sv(key));
      if (it == of(c).kv.end()) return JN_ERR_NOT_FOUND;
      if (needed) *needed = it->second.size();
      if (cap < it->second.size() || (!out && !it->second.empty())) return JN_ERR_LIMIT;
      if (!it->second.empty()) std::memcpy(out, it->second.data(), it->second.size());
      return JN_OK;
    };
    t.kv_del = [](jn_host_ctx* c, jn_str key) -> jn_status { return of(c).kv.erase(sv(key)) ? JN_OK : JN_ERR_NOT_FOUND; };
    t.kv_scan = [](jn_host_ctx* c, jn_str prefix, jn_kv_visit visit, void* arg) -> jn_status {
      std::string p = sv(prefix);
      for (auto& [k, v] : of(c).kv)
        if (k.compare(0, p.size(), p) == 0)
          visit(arg, jn_str{k.data(), k.size()}, reinterpret_cast<const uint8_t*>(v.data()), v.size());
      return JN_OK;
    };
    t.state_append = [](jn_host_ctx* c, jn_handle, const uint8_t* d, size_t n) -> jn_status {
      of(c).state.append(reinterpret_cast<const char*>(d), n);
      return JN_OK;
    };
    t.stop_done = [](jn_host_ctx*) {};
    t.admin_reply = [](jn_host_ctx*, jn_handle, int status, jn_str body) -> jn_status {
      if (status < 100 || status > 599) fail("admin reply with status " + std::to_string(status));
      if (!json::accept(sv(body))) fail("admin reply that is not JSON: " + sv(body));
      return JN_OK;
    };
    t.anchor_reply = [](jn_host_ctx*, jn_handle, jn_status, const jn_media_desc*) { return unsupported(); };
    t.media_loops = [](jn_host_ctx*) { return uint32_t{0}; };
    t.bus_intern = [](jn_host_ctx*, jn_str, uint32_t*) { return unsupported(); };
    t.bus_release_id = [](jn_host_ctx*, uint32_t) { return unsupported(); };
    t.bus_publish_id = [](jn_host_ctx*, uint32_t, jn_buf*) { return unsupported(); };
    t.anchor_end = [](jn_host_ctx*, jn_str, int32_t, jn_str) { return unsupported(); };
    t.port_bind = [](jn_host_ctx*, const jn_port_request*, jn_handle*, uint32_t*) { return unsupported(); };
    return t;
  }();
  return &a;
}

// --- building inputs ----------------------------------------------------------------------------
const char* const kIds[] = {"r0", "r1", "d0", "d1", "d2", "sip:bob@127.0.0.1", "nowhere", "busy", ""};
const char* const kStreams[] = {"", "56780", "http://11.0.1.22:954/stream/56780", "http://192.168.1.22:954/stream/7",
                                "http://11.0.0.10:954/stream/9", "rtp://127.0.0.1:4000", "http://[::1]:1/x", "x://"};
const char* const kSids[] = {"s0", "s1", "s2", "c1", "c2"};

json endpoint(Input& in) {
  json e = json::object();
  uint8_t mask = in.u8();
  if (mask & 1) e["id"] = in.pick(kIds);
  if (mask & 2) e["type"] = in.u8() % 7;
  if (mask & 4) e["ip"] = in.u8() & 1 ? "127.0.0.1" : "11.0.1.30";
  if (mask & 8) e["port"] = in.u8() & 1 ? 7000 : in.u16();
  if (mask & 16) e[in.u8() & 1 ? "audiostreamid" : "audio_stream_id"] = in.pick(kStreams);
  if (mask & 32) e[in.u8() & 1 ? "videostreamid" : "video_tream_id"] = in.pick(kStreams);
  if (mask & 64) e["id"] = in.u16();  // a number where text is expected
  return e;
}

std::string token(Input& in) {
  uint8_t mode = in.u8() % 6;
  if (mode == 5) return in.bytes(in.u8() % 64);
  intercom::TokenClaims c;
  c.tid = "t" + std::to_string(in.u8() % 4);
  c.dev = "d" + std::to_string(in.u8() % 3);
  c.type = 1 + in.u8() % 5;
  c.room = c.type == intercom::kInnerScreen || in.u8() & 1 ? "r" + std::to_string(in.u8() % 2) : "";
  c.iat = std::time(nullptr) - 10;
  c.exp = mode == 4 ? c.iat + 1 : c.iat + 86400;  // mode 4: expired
  return intercom::token_sign(mode == 3 ? "another-secret-0123456" : kSecret, c);
}

// A well-formed message of the protocol (or a near miss), from a few bytes.
std::string message(Input& in) {
  static const char* const kNames[] = {"join_family", "call_req", "call_accept", "call_reject", "call_end", "call_keep",
                                       "open_door", "error", "call_in", "join_accept", "call_req", "call_accept"};
  std::string name = in.pick(kNames);
  json values = json::object();
  if (name == "join_family") {
    values["token"] = token(in);
  } else {
    values["sid"] = in.pick(kSids);
    uint8_t mask = in.u8();
    if (mask & 1) values["src"] = endpoint(in);
    if (mask & 2) values["dest"] = endpoint(in);
    if (mask & 4) values["reason"] = in.u8() & 1 ? "busy" : "";
    if (mask & 8) values["message"] = "m";
    if (mask & 32) values.erase("sid");
    if (mask & 16) values = json::array({1, 2});
  }
  json m = {{"id", in.u8() & 1 ? json(std::to_string(in.u8())) : json(in.u8())}, {"name", name}, {"values", values}};
  return m.dump(-1, ' ', false, json::error_handler_t::replace);  // a raw token may not be UTF-8
}

jn_media_stream stream_of(Input& in, std::deque<std::string>& keep) {
  jn_media_stream s{};
  s.struct_size = sizeof s;
  uint8_t kind = in.u8() % 4;
  auto str = [&](std::string v) {
    keep.push_back(std::move(v));
    return junction::sdk::to_jn(keep.back());
  };
  if (kind == 0) {
    s.kind = JN_MEDIA_DATA;
    s.format = str("intercom-call");
    s.params = str("sid=" + std::string(in.pick(kSids)) + ";src_id=" + in.pick(kIds) + ";src_type=" + std::to_string(in.u8() % 7) +
                   ";src_dev=d" + std::to_string(in.u8() % 3) + ";dest_type=" + std::to_string(in.u8() % 7) + ";dest_port=7000");
  } else {
    s.kind = kind == 1 ? JN_MEDIA_AUDIO : JN_MEDIA_VIDEO;
    s.format = str("PCMA");
    if (in.u8() & 1) {
      s.params = str("intercom=stream;side=" + std::string(in.u8() & 1 ? "src" : "dest") + ";url=" +
                     intercom::param_escape(in.pick(kStreams)));
    } else {
      s.transport = str(in.u8() & 1 ? "rtp/avp" : "");
      s.addr.family = 4;
      s.addr.ip[0] = 127;
      s.addr.ip[3] = 1;
      s.addr.port = in.u16();
    }
  }
  return s;
}

junction::CallEvent core_event(Input& in, uint32_t type) {
  junction::CallEvent e;
  e.type = type;
  // Text from other plugins is bytes: not always UTF-8 (a SIP peer's URI, a reason phrase).
  auto text = [&](std::string usual) { return in.u8() % 8 ? usual : in.bytes(in.u8() % 16); };
  e.call_id = text("c" + std::to_string(in.u8() % 3));
  if (type == JN_CALL_OFFER || type == JN_CALL_ANSWER) {
    static const char* const kTargets[] = {"intercom:room/r0", "intercom:room/r1", "intercom:device/d0", "intercom:device/d1",
                                           "intercom:addr/127.0.0.1:7000", "intercom:addr/bad", "intercom:elsewhere", "sip:x@y"};
    e.from = text("sip:alice@127.0.0.1");
    e.to = e.target = in.pick(kTargets);
    if (in.u8() % 4) {
      std::deque<std::string> keep;
      std::vector<jn_media_stream> streams;
      for (int n = in.u8() % 4; n > 0; --n) streams.push_back(stream_of(in, keep));
      std::vector<const jn_media_stream*> ptrs;
      for (auto& s : streams) ptrs.push_back(&s);
      jn_media_desc d{sizeof d, static_cast<uint32_t>(ptrs.size()), ptrs.data()};
      e.media.emplace();
      junction::read_media(d, *e.media);
    }
  }
  if (type == JN_CALL_REJECT || type == JN_CALL_END) {
    e.code = in.u8() & 1 ? 486 : 200;
    e.reason = text(in.u8() & 1 ? "busy: line busy" : "");
  }
  if (type == JN_CALL_INFO) e.info_type = in.u8() & 1 ? "open-door" : "ptz";
  return e;
}

template <typename M>
typename M::key_type nth(const M& m, uint8_t k, bool (*ok)(const typename M::mapped_type&)) {
  std::vector<typename M::key_type> keys;
  for (auto& [key, v] : m)
    if (ok(v)) keys.push_back(key);
  return keys.empty() ? typename M::key_type{} : keys[k % keys.size()];
}

void run(Input& in) {
  Core core;
  // The conf: byte 0 picks the switches that change the state machine's paths.
  uint8_t flags = in.u8();
  json conf = {{"secret", kSecret}, {"keep_interval_ms", 100}, {"keep_max_missed", 2},
               {"bad_limit", flags & 1 ? 3 : 1000}, {"require_join", (flags & 2) == 0}, {"dial_out", (flags & 4) != 0},
               {"call_req_per_min", flags & 8 ? 60 : 0}, {"call_req_burst", 2}};
  if (flags & 16) conf["door_allow"] = json::array({"10.0.0.0/8"});
  core.conf = conf.dump();
  if (!core.create(false)) fail("the plugin refused the fuzz conf");
  core.hook = "start";
  if (core.vt->on_start(core.self) != JN_OK) fail("start failed");
  core.hook.clear();

  for (int ops = 0; ops < 32 && !in.empty(); ++ops) {
    auto open = [](const Conn& c) { return !c.closed; };
    auto alive = [](const Leg& l) { return l.alive; };
    auto dialing = [](const Conn& c) { return !c.closed && c.outbound && !c.connected; };
    switch (in.u8() % 13) {
      case 0: core.accept(in.u8() % 3); break;
      case 1: case 2: {  // a message: built (mostly) or raw bytes
        jn_handle h = nth(core.conns, in.u8(), +open);
        if (!h) break;
        std::string frame = in.u8() % 4 ? message(in) : in.bytes(in.u8());
        core.tcp_event(h, JN_TCP_FRAME, frame);
        break;
      }
      case 3: {
        jn_handle h = nth(core.conns, in.u8(), +open);
        if (h) core.tcp_event(h, JN_TCP_CLOSED, {}, in.u8() & 1 ? JN_OK : JN_ERR_IO);
        break;
      }
      case 4: {
        jn_handle h = nth(core.conns, in.u8(), +open);
        if (h) core.tcp_event(h, JN_TCP_OVERSIZE);
        break;
      }
      case 5: {  // time passes; the keepalive tick fires
        core.clock += 1 + in.u8() * 4;
        for (const auto& t : std::map<jn_handle, uint64_t>(core.timers))
          if (t.second == kTickCookie) core.run_hook("on_timer", [&] { core.vt->on_timer(core.self, t.first, t.second); });
        break;
      }
      case 6: {  // another plugin calls an intercom: URI
        jn_handle leg = core.handle();
        core.legs[leg] = Leg{0, true};
        core.deliver_call(leg, core_event(in, JN_CALL_OFFER));
        break;
      }
      case 7: {  // the other side of a call: ringing, answer, reject, hangup, open-door
        jn_handle leg = nth(core.legs, in.u8(), +alive);
        static const uint32_t kTypes[] = {JN_CALL_RINGING, JN_CALL_ANSWER, JN_CALL_REJECT, JN_CALL_END, JN_CALL_INFO, JN_CALL_DTMF};
        if (leg) core.deliver_call(leg, core_event(in, in.pick(kTypes)));
        break;
      }
      case 8: {  // an outgoing connection (dial_out) connects or fails
        jn_handle h = nth(core.conns, in.u8(), +dialing);
        if (!h) break;
        if (in.u8() & 1) {
          core.conns[h].connected = true;
          core.tcp_event(h, JN_TCP_CONNECTED);
        } else {
          core.tcp_event(h, JN_TCP_CLOSED, {}, JN_ERR_IO);
        }
        break;
      }
      case 9: core.reload(); break;
      case 10: {  // an alarm from another plugin
        static const char* const kAlarms[] = {R"({"room":"r0","zone":"1","type":"fire"})", R"({"rooms":["r0","r1",5]})",
                                              R"({})", R"({"room":7,"message":3})", R"([1])"};
        std::string body = in.u8() % 4 ? in.pick(kAlarms) : in.bytes(in.u8() % 32);
        core.run_hook("on_event", [&] { core.vt->on_event(core.self, {"alarm/x", 7}, {body.data(), body.size()}); });
        break;
      }
      case 11: {  // an admin command
        static const char* const kVerbs[] = {"issue-token", "revoke-token", "list-devices", "list-tokens", "alarm", "calls", "info", "nope"};
        static const char* const kBodies[] = {R"({"device":"d0","room":"r0","type":2})", R"({"device":"d1","type":3})",
                                              R"({"device":"d0"})", R"({"token_id":"t1"})", R"({"token":"x.y"})",
                                              R"({"device":"d0","room":"r0","expires_at":"soon"})", R"({"device":5})", ""};
        std::string verb = in.pick(kVerbs);
        std::string body = in.u8() % 4 ? in.pick(kBodies) : in.bytes(in.u8() % 32);
        jn_admin_request r{};
        r.struct_size = sizeof r;
        r.reply = core.handle();
        r.verb = {verb.data(), verb.size()};
        r.body = {body.data(), body.size()};
        core.run_hook("on_admin", [&] { core.vt->on_admin(core.self, &r); });
        break;
      }
      case 12: {  // a token revoked behind the plugin's back (the store is the core's)
        core.kv["token/t" + std::to_string(in.u8() % 4)] = R"({"revoked":true})";
        break;
      }
    }
    core.settle();
    core.check_state();
  }
  core.destroy();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  run(in);
  return 0;
}
