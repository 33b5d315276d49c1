// io-echo: a test plugin over the core's stream and web services. It echoes TCP frames (NUL
// delimited), answers HTTP requests with what it received, echoes WebSocket messages, and keeps
// its connection table across a hot reload (the connections themselves belong to the core).
//
// conf: tcp_listen, http_listen (required), max_frame (default 64), ws_path (default "/ws"),
// tls_cert + tls_key (serve HTTPS/WSS), ws_allow_origin, ws_protocol (upgrade decisions),
//       events_topic (subscribe to application events; they are echoed to every WS client),
//       tcp_framing ("delim" default, or "sip": each SIP frame is answered "sip:<cookie>:<len>\0",
//       a keepalive "pong\0"), tcp_tls_cert + tcp_tls_key (the TCP listener speaks TLS, 2.1).
// Admin "connect" {"addr", "tls", "ca_file", "server_name"}: an outgoing connection (TLS if asked).
// Admin "fetch" {"url", ..., "stream": true, "cancel_after": N} (2.3): a streamed request; the reply
// lists the pieces on_http_chunk got (or, with cancel_after, comes as soon as N body bytes arrived,
// after host().cancel). net_stats counts the pieces that came after a cancel (must stay 0).
#include <junction/plugin.hpp>

#include <cstdio>

#include <map>
#include <string>
#include <vector>

namespace {
using junction::sdk::Host;
using junction::sdk::to_sv;
using nlohmann::json;

class IoEcho : public junction::sdk::Plugin {
 public:
  IoEcho(Host h, const jn_create_args&) : Plugin(h) {
    json c = h.config();
    allow_origin_ = c.value("ws_allow_origin", "");
    tls_cert_ = c.value("tls_cert", "");
    tls_key_ = c.value("tls_key", "");
    ws_protocol_ = c.value("ws_protocol", "");
    tcp_listen_ = c.at("tcp_listen").get<std::string>();
    http_listen_ = c.at("http_listen").get<std::string>();
    max_frame_ = c.value("max_frame", 64u);
    ws_path_ = c.value("ws_path", std::string("/ws"));
    topic_ = c.value("events_topic", std::string());
    sip_framing_ = c.value("tcp_framing", std::string("delim")) == "sip";
    tcp_tls_cert_ = c.value("tcp_tls_cert", "");
    tcp_tls_key_ = c.value("tcp_tls_key", "");
    async_stop_ = c.value("async_stop", "");
  }

  // Asynchronous stop (JN_PENDING + host->stop_done()), as conf's async_stop says: "inline" (said
  // inside on_stop), "timer" (from a timer hook, then the instance is still used: it must not have
  // been destroyed inside stop_done), "twice" (from a timer, twice), "never" (the core's timeout).
  jn_status stop() override {
    if (async_stop_.empty()) return JN_OK;
    if (async_stop_ == "inline") {
      host().stop_done();
      host().log(JN_LOG_INFO, "stop_done said inside on_stop");
      return JN_PENDING;
    }
    if (async_stop_ != "never") host().timer(1, 0, kStopTimer, &stop_timer_);
    return JN_PENDING;
  }
  void on_timer(jn_handle, uint64_t cookie) override {
    if (cookie != kStopTimer) return;
    host().stop_done();
    if (async_stop_ == "twice") host().stop_done();
    host().log(JN_LOG_INFO, "stop_done said from on_timer; the instance is still alive (" + tcp_listen_ + ")");
  }

  jn_status start() override {
    jn_tcp_options to = Host::tcp_options(sip_framing_ ? JN_FRAME_SIP : JN_FRAME_DELIM, 0, max_frame_);
    if (!tcp_tls_cert_.empty()) {
      to.tls = 1;
      to.tls_cert = junction::sdk::to_jn(tcp_tls_cert_);
      to.tls_key = junction::sdk::to_jn(tcp_tls_key_);
    }
    jn_status st = host().tcp_listen(tcp_listen_, to, 0, &tcp_);
    if (st != JN_OK) return st;
    st = host().http_listen(http_listen_, ws_path_, 0, &http_, tls_cert_, tls_key_);
    if (st != JN_OK) return st;
    if (!topic_.empty()) host().event_subscribe(topic_);
    return JN_OK;
  }

  void on_tcp(const jn_tcp_event& ev) override {
    switch (ev.type) {
      case JN_TCP_ACCEPTED:
        conns_[ev.conn] = 0;
        host().tcp_set_cookie(ev.conn, ++next_cookie_);
        break;
      case JN_TCP_FRAME: {
        ++conns_[ev.conn];
        std::string_view frame(reinterpret_cast<const char*>(ev.data), ev.len);
        if (sip_framing_) {  // the SIP framer's output, told back as lengths (the reply is raw bytes)
          std::string reply = frame == "\r\n\r\n" ? std::string("pong") : "sip:" + std::to_string(ev.cookie) + ":" + std::to_string(ev.len);
          reply.push_back('\0');
          host().tcp_send(ev.conn, reply);
        } else if (frame == "close") {
          host().tcp_send(ev.conn, "bye");
          host().tcp_close(ev.conn);
        } else if (frame == "stats") {
          host().tcp_send(ev.conn, stats().dump());
        } else {
          host().tcp_send(ev.conn, "echo:" + std::to_string(ev.cookie) + ":" + std::string(frame));
        }
        break;
      }
      case JN_TCP_OVERSIZE:
        ++oversize_;
        host().tcp_send(ev.conn, "error:oversize:" + std::to_string(ev.len) + (sip_framing_ ? std::string(1, '\0') : std::string()));
        break;
      case JN_TCP_CONNECTED:
        conns_[ev.conn] = 0;
        host().tcp_send(ev.conn, "hello-from-plugin");
        break;
      case JN_TCP_CLOSED:
        if (!conns_.count(ev.conn)) {  // an outgoing connect that never connected
          ++connect_failures_;
          host().warn("outgoing connection failed (status " + std::to_string(ev.status) + ")");
        }
        conns_.erase(ev.conn);
        ++closed_;
        break;
    }
  }

  void on_http(const jn_http_request& r) override {
    json j{{"method", to_sv(r.method)}, {"path", to_sv(r.path)}, {"query", to_sv(r.query)}, {"body", to_sv(r.body)}};
    if (to_sv(r.path) == "/later") {
      pending_ = r.request;  // answered by the next WebSocket message (asynchronous reply)
      return;
    }
    if (to_sv(r.path) == "/headers") {
      // Request headers in, response headers out (ABI 2.0).
      json h = json::object();
      for (uint32_t i = 0; i < r.header_count; ++i) h[std::string(to_sv(r.headers[i].name))] = to_sv(r.headers[i].value);
      std::vector<jn_header> out = {{junction::sdk::to_jn("X-Echo"), junction::sdk::to_jn("yes")}, {junction::sdk::to_jn("Location"), junction::sdk::to_jn("/elsewhere")}};
      host().http_respond(r.request, 302, json{{"headers", h}}.dump(), "application/json", out);
      return;
    }
    if (to_sv(r.path) == "/bad-header") {
      // A header with CR/LF (response splitting) is refused; the request is still answered.
      std::vector<jn_header> bad = {{junction::sdk::to_jn("X-Evil"), junction::sdk::to_jn("a\r\nSet-Cookie: x=1")}};
      jn_status st = host().http_respond(r.request, 200, "{}", "application/json", bad);
      host().http_respond(r.request, 200, json{{"refused_status", st}}.dump());
      return;
    }
    host().http_respond(r.request, to_sv(r.path) == "/missing" ? 404 : 200, j.dump());
  }

  void on_ws(const jn_ws_event& ev) override {
    std::string_view data(reinterpret_cast<const char*>(ev.data), ev.len);
    switch (ev.type) {
      case JN_WS_UPGRADE: {
        // conf ws_allow_origin: refuse any other Origin (cross-site WebSocket hijacking) with 403;
        // conf ws_protocol: pick that subprotocol when offered.
        std::string origin;
        for (uint32_t i = 0; i < ev.header_count; ++i)
          if (to_sv(ev.headers[i].name) == "origin") origin = std::string(to_sv(ev.headers[i].value));
        if (!allow_origin_.empty() && origin != allow_origin_) {
          host().ws_upgrade_reply(ev.conn, 403);
          return;
        }
        for (uint32_t i = 0; i < ev.subprotocol_count; ++i)
          if (to_sv(ev.subprotocols[i]) == ws_protocol_) host().ws_upgrade_reply(ev.conn, 101, ws_protocol_);
        return;
      }
      case JN_WS_OPEN:
        ws_[ev.conn] = 0;
        last_open_ = json{{"path", to_sv(ev.path)}, {"query", to_sv(ev.query)}, {"subprotocol", to_sv(ev.subprotocol)},
                          {"headers", ev.header_count}};
        break;
      case JN_WS_TEXT:
      case JN_WS_BINARY:
        ++ws_[ev.conn];
        if (pending_) {
          host().http_respond(pending_, 200, json{{"later", data}}.dump());
          pending_ = 0;
        }
        host().ws_send(ev.conn, "echo:" + std::string(data), ev.type == JN_WS_BINARY);
        break;
      case JN_WS_CLOSED: ws_.erase(ev.conn); break;
    }
  }

  void on_event(std::string_view topic, std::string_view body) override {
    for (auto& [conn, n] : ws_) host().ws_send(conn, "event:" + std::string(topic) + ":" + std::string(body));
  }

  void on_admin(const jn_admin_request& r) override {
    if (to_sv(r.verb) == "connect") {
      json b = json::parse(to_sv(r.body));
      jn_handle h = 0;
      jn_tcp_options o = Host::tcp_options(JN_FRAME_DELIM, 0, max_frame_);
      std::string ca = b.value("ca_file", ""), name = b.value("server_name", "");
      if (b.value("tls", false)) {
        o.tls = 1;
        o.tls_ca_file = junction::sdk::to_jn(ca);
        o.tls_server_name = junction::sdk::to_jn(name);
      }
      jn_status st = host().tcp_connect(b.at("addr").get<std::string>(), o, 0, &h);
      host().admin_reply(r.reply, st == JN_OK ? 200 : 400, json{{"status", st}, {"conn", h}}.dump());
      return;
    }
    if (to_sv(r.verb) == "port_bind") {  // {"range","ip","pair"|"tcp"}: a socket from a core port range
      json b = json::parse(to_sv(r.body));
      jn_handle h[2] = {0, 0};
      uint32_t port = 0;
      jn_status st;
      if (b.value("tcp", false)) {
        jn_tcp_options o{};
        o.struct_size = sizeof o;
        o.framing = JN_FRAME_DELIM;
        o.max_frame = max_frame_;
        st = host().port_bind_tcp(b.at("range").get<std::string>(), b.at("ip").get<std::string>(), o, 0, &h[0], &port);
      } else {
        st = host().port_bind_udp(b.at("range").get<std::string>(), b.at("ip").get<std::string>(), b.value("pair", false), 0, h, &port);
      }
      host().admin_reply(r.reply, 200, json{{"status", st}, {"port", port}, {"handles", {h[0], h[1]}}}.dump());
      return;
    }
    if (to_sv(r.verb) == "count") {  // {"name","value"}: a counter labelled with a value a peer chose
      json b = json::parse(to_sv(r.body));
      std::string v = b.at("value").get<std::string>(), esc;
      for (char c : v) {  // the label text a careful plugin writes (Prometheus escaping)
        if (c == '\\' || c == '"') esc += '\\';
        if (c == '\n') {
          esc += "\\n";
          continue;
        }
        esc += c;
      }
      host().counter_add(b.at("name").get<std::string>(), 1, "name=\"" + esc + "\"");
      host().admin_reply(r.reply, 200, "{}");
      return;
    }
    if (to_sv(r.verb) == "resolve") {  // {"name","type"(A|AAAA|SRV|NAPTR|SIP),"port"}: answered from on_dns
      json b = json::parse(to_sv(r.body));
      std::string type = b.value("type", "A"), name = b.at("name").get<std::string>();
      jn_handle q = 0;
      jn_status st;
      if (type == "SIP") {
        st = host().dns_resolve_sip(name, b.value("port", 0), JN_SIP_ANY, false, r.reply, &q);
      } else {
        uint32_t t = type == "AAAA" ? JN_DNS_AAAA : type == "SRV" ? JN_DNS_SRV : type == "NAPTR" ? JN_DNS_NAPTR : JN_DNS_A;
        st = host().dns_resolve(name, t, r.reply, &q, b.value("timeout_ms", 0u));
      }
      if (st != JN_OK) host().admin_reply(r.reply, 200, json{{"status", st}}.dump());
      return;  // the admin reply waits for on_dns (its handle is the cookie)
    }
    if (to_sv(r.verb) == "fetch") {  // {"url","method","body","headers","follow","timeout_ms","ca_file","cancel"}
      json b = json::parse(to_sv(r.body));
      std::string url = b.at("url"), method = b.value("method", "GET"), body = b.value("body", ""), ca = b.value("ca_file", "");
      std::vector<std::pair<std::string, std::string>> hs;
      if (b.contains("headers"))
        for (auto it = b["headers"].begin(); it != b["headers"].end(); ++it) hs.emplace_back(it.key(), it.value().get<std::string>());
      std::vector<jn_header> headers;
      for (auto& [k, v] : hs) headers.push_back({junction::sdk::to_jn(k), junction::sdk::to_jn(v)});
      jn_http_client_request q = Host::http_client_request(method, url);
      q.body = junction::sdk::to_jn(body);
      q.headers = headers.data();
      q.header_count = static_cast<uint32_t>(headers.size());
      q.follow_redirects = b.value("follow", false) ? 1 : 0;
      q.timeout_ms = b.value("timeout_ms", 0u);
      q.ca_file = junction::sdk::to_jn(ca);
      bool detach = b.value("detach", false);  // answer now with the handle; cancel it with "cancel"
      q.stream = b.value("stream", false) ? 1 : 0;
      jn_handle h = 0;
      jn_status st = host().http_request(q, detach ? kDetached : r.reply, &h);
      if (st == JN_OK && q.stream) {
        Streamed& s = streams_[r.reply];
        s.handle = h;
        s.cancel_after = b.value("cancel_after", size_t(0));
      }
      if (st == JN_OK && detach) {
        host().admin_reply(r.reply, 200, json{{"status", st}, {"handle", h}}.dump());
        return;
      }
      if (st != JN_OK) host().admin_reply(r.reply, 200, json{{"status", st}}.dump());
      return;  // answered from on_http_response
    }
    if (to_sv(r.verb) == "cancel") {  // {"handle"}: twice, the second must find nothing
      jn_handle h = json::parse(to_sv(r.body)).at("handle");
      jn_status c1 = host().cancel(h), c2 = host().cancel(h);
      host().admin_reply(r.reply, 200, json{{"cancel", c1}, {"cancel_again", c2}}.dump());
      return;
    }
    if (to_sv(r.verb) == "last_open") {
      host().admin_reply(r.reply, 200, last_open_.dump());
      return;
    }
    if (to_sv(r.verb) == "net_stats") {
      host().admin_reply(r.reply, 200,
                         json{{"dns_answers", dns_answers_}, {"http_answers", http_answers_}, {"detached", detached_answers_},
                              {"chunks_after_cancel", chunks_after_cancel_}}.dump());
      return;
    }
    if (to_sv(r.verb) == "udp_close") {
      json b = json::parse(to_sv(r.body));
      jn_status st = host().api()->udp_close(host().ctx(), b.at("handle").get<uint64_t>());
      host().admin_reply(r.reply, 200, json{{"status", st}}.dump());
      return;
    }
    host().admin_reply(r.reply, 200, stats().dump());
  }

  void on_dns(const jn_dns_result& r) override {
    ++dns_answers_;
    json addrs = json::array(), srv = json::array(), naptr = json::array(), targets = json::array();
    auto ip = [](const jn_addr& a) {
      char t[64];
      if (a.family == 4) snprintf(t, sizeof t, "%u.%u.%u.%u", a.ip[0], a.ip[1], a.ip[2], a.ip[3]);
      else snprintf(t, sizeof t, "v6");
      return std::string(t);
    };
    for (uint32_t i = 0; i < r.address_count; ++i) addrs.push_back(ip(r.addresses[i]));
    for (uint32_t i = 0; i < r.srv_count; ++i)
      srv.push_back({r.srv[i].priority, r.srv[i].weight, r.srv[i].port, std::string(to_sv(r.srv[i].target))});
    for (uint32_t i = 0; i < r.naptr_count; ++i) naptr.push_back({r.naptr[i].order, std::string(to_sv(r.naptr[i].service))});
    for (uint32_t i = 0; i < r.target_count; ++i)
      targets.push_back({r.targets[i].transport, ip(r.targets[i].addr), r.targets[i].addr.port});
    host().admin_reply(r.cookie, 200,
                       json{{"status", r.status}, {"error", to_sv(r.error)}, {"addresses", addrs}, {"srv", srv}, {"naptr", naptr},
                            {"targets", targets}, {"ttl", r.ttl}}.dump());
  }

  void on_http_chunk(const jn_http_client_chunk& c) override {
    auto it = streams_.find(c.cookie);
    if (it == streams_.end() || it->second.cancelled) {
      ++chunks_after_cancel_;
      return;
    }
    Streamed& s = it->second;
    if (c.head) {
      ++s.heads;
      s.status = c.status;
      for (uint32_t i = 0; i < c.header_count; ++i) s.headers[std::string(to_sv(c.headers[i].name))] = to_sv(c.headers[i].value);
    }
    if (c.request != s.handle) s.wrong_handle = true;
    s.pieces.push_back(std::string(to_sv(c.data)));
    s.bytes += c.data.len;
    if (s.cancel_after && s.bytes >= s.cancel_after) {
      s.cancelled = true;
      jn_status st = host().cancel(c.request);
      host().admin_reply(c.cookie, 200, json{{"status", s.status}, {"heads", s.heads}, {"pieces", s.pieces}, {"cancel", st}}.dump());
    }
  }

  void on_http_response(const jn_http_client_response& r) override {
    ++http_answers_;
    if (r.cookie == kDetached) {
      ++detached_answers_;  // a cancelled one must never get here
      return;
    }
    if (auto it = streams_.find(r.cookie); it != streams_.end()) {
      Streamed s = std::move(it->second);
      streams_.erase(it);
      if (s.cancelled) {
        ++chunks_after_cancel_;  // nothing may follow a cancel, the end included
        return;
      }
      host().admin_reply(r.cookie, 200, json{{"status", r.status}, {"error", to_sv(r.error)}, {"body", to_sv(r.body)},
                                             {"chunk_status", s.status}, {"heads", s.heads}, {"headers", s.headers},
                                             {"pieces", s.pieces}, {"wrong_handle", s.wrong_handle}}.dump());
      return;
    }
    json h = json::object();
    for (uint32_t i = 0; i < r.header_count; ++i) h[std::string(to_sv(r.headers[i].name))] = to_sv(r.headers[i].value);
    host().admin_reply(r.cookie, 200, json{{"status", r.status}, {"error", to_sv(r.error)}, {"body", to_sv(r.body)}, {"headers", h},
                                           {"redirects", r.redirects}, {"url", to_sv(r.url)}}.dump());
  }

  jn_status save_state(std::string& out) override {
    json conns = json::array(), ws = json::array();
    for (auto& [c, n] : conns_) conns.push_back({c, n});
    for (auto& [c, n] : ws_) ws.push_back({c, n});
    out = json{{"tcp", tcp_}, {"http", http_}, {"conns", conns}, {"ws", ws}, {"closed", closed_},
               {"oversize", oversize_}, {"next_cookie", next_cookie_}, {"pending", pending_}, {"reloads", reloads_}}.dump();
    return JN_OK;
  }
  jn_status restore_state(uint32_t, std::string_view data) override {
    json s = json::parse(data);
    tcp_ = s["tcp"];
    http_ = s["http"];
    for (auto& p : s["conns"]) conns_[p[0]] = p[1];
    for (auto& p : s["ws"]) ws_[p[0]] = p[1];
    closed_ = s["closed"];
    oversize_ = s["oversize"];
    next_cookie_ = s["next_cookie"];
    pending_ = s["pending"];
    reloads_ = s["reloads"].get<uint64_t>() + 1;
    return JN_OK;
  }

 private:
  json stats() const {
    return json{{"tcp_conns", conns_.size()}, {"ws_conns", ws_.size()}, {"closed", closed_}, {"oversize", oversize_},
                {"reloads", reloads_}, {"connect_failures", connect_failures_}};
  }
  std::string tcp_listen_, http_listen_, ws_path_, topic_, allow_origin_, ws_protocol_, tls_cert_, tls_key_;
  bool sip_framing_ = false;
  std::string tcp_tls_cert_, tcp_tls_key_;
  json last_open_ = json::object();
  uint32_t max_frame_ = 64;
  jn_handle tcp_ = 0, http_ = 0, pending_ = 0, stop_timer_ = 0;
  std::string async_stop_;
  static constexpr uint64_t kStopTimer = 7;
  std::map<jn_handle, uint64_t> conns_, ws_;
  uint64_t closed_ = 0, oversize_ = 0, next_cookie_ = 0, reloads_ = 0, connect_failures_ = 0;
  static constexpr uint64_t kDetached = 1;  // admin reply handles are never 1 (generation >= 1 in the high half)
  uint64_t dns_answers_ = 0, http_answers_ = 0, detached_answers_ = 0, chunks_after_cancel_ = 0;
  struct Streamed {
    jn_handle handle = 0;
    size_t cancel_after = 0;
    bool cancelled = false, wrong_handle = false;
    int status = 0, heads = 0;
    size_t bytes = 0;
    json headers = json::object();
    std::vector<std::string> pieces;
  };
  std::map<uint64_t, Streamed> streams_;  // by cookie (the admin reply handle)
};
}  // namespace

JUNCTION_PLUGIN(IoEcho, "io-echo", "1.0.0", "test plugin: TCP/HTTP/WS echo", "", 1, 1)
