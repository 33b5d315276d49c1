// The SIP stack's environment on jn_host_api; see host_env.hpp.
#include <junction/sip/host_env.hpp>

#include <junction/util/addr.hpp>
#include <junction/util/random.hpp>

namespace junction::sip {

namespace {
constexpr uint32_t kFrameSip = 3;  // JN_FRAME_SIP (ABI 2.1)
#if JN_ABI_MINOR >= 1
static_assert(JN_FRAME_SIP == kFrameSip);
#endif
}  // namespace

HostEnv::HostEnv(const sdk::Host& host, uint64_t timer_cookie, uint64_t tcp_cookie)
    : host_(host), timer_cookie_(timer_cookie), tcp_cookie_(tcp_cookie) {}

jn_status HostEnv::listen_udp(std::string_view addr, jn_handle* out) {
  jn_handle h = 0;
  jn_status st = host_.udp_bind(addr, 0, &h, max_message);
  if (st != JN_OK) return st;
  if (!udp_) udp_ = h;
  if (out) *out = h;
  return JN_OK;
}

jn_status HostEnv::listen_tcp(std::string_view addr, jn_handle* out) {
  jn_handle h = 0;
  jn_status st = host_.tcp_listen(addr, sip_framing() ? kFrameSip : static_cast<uint32_t>(JN_FRAME_RAW), 0, max_message, tcp_cookie_, &h);
  if (st != JN_OK) return st;
  if (!listener_) listener_ = h;
  if (out) *out = h;
  return JN_OK;
}

jn_status HostEnv::send(Flow& flow, std::string_view bytes) {
  if (flow.proto == Proto::Udp) {
    jn_handle s = flow.sock ? flow.sock : udp_;
    if (!s) return JN_ERR_STATE;
    return host_.udp_send(s, flow.peer, bytes);
  }
  if (flow.conn) {
    auto p = pending_.find(flow.conn);
    if (p != pending_.end()) {  // still connecting
      p->second.append(bytes);
      return JN_OK;
    }
    return host_.tcp_send(flow.conn, bytes);
  }
  // No connection to this peer yet: open one; the bytes wait for JN_TCP_CONNECTED.
  jn_status st = connect(flow);
  if (st != JN_OK) return st;
  pending_[flow.conn].assign(bytes);
  return JN_OK;
}

jn_status HostEnv::connect(Flow& flow, std::string_view server_name) {
  if (!flow.reliable()) return JN_ERR_UNSUPPORTED;
  std::string addr = util::format_addr(flow.peer);
  jn_tcp_options o = sdk::Host::tcp_options(sip_framing() ? kFrameSip : static_cast<uint32_t>(JN_FRAME_RAW), 0, max_message);
  std::string name, ca;
  if (flow.proto == Proto::Tls) {
    // A 2.0 core ignores the TLS fields: it would open a plain connection.
    if (!sip_framing()) {
      host_.warn("sip: cannot connect to " + addr + " over TLS: the core has no TLS for plugins (ABI 2.0)");
      return JN_ERR_UNSUPPORTED;
    }
    name = server_name;
    if (name.empty()) {
      auto n = tls_names_.find(addr);
      if (n != tls_names_.end()) name = n->second;
    }
    if (stack_) ca = stack_->config().tls_ca_file;
    o.tls = 1;
    o.tls_ca_file = sdk::to_jn(ca);
    o.tls_server_name = sdk::to_jn(name);  // RFC 5922: the certificate names the domain asked for
  }
  jn_handle c = 0;
  jn_status st = host_.tcp_connect(addr, o, tcp_cookie_, &c);
  if (st != JN_OK) {
    host_.warn("sip: cannot open a " + std::string(proto_name(flow.proto)) + " connection to " + addr + " (status " +
               std::to_string(st) + ")");
    return st;
  }
  flow.conn = c;
  pending_[c];  // connecting: sends queue until JN_TCP_CONNECTED
  if (flow.proto == Proto::Tls) tls_conns_.insert(c);
  return JN_OK;
}

void HostEnv::wake_at(uint64_t at_ms) {
  if (at_ms == timer_at_ && timer_) return;
  if (timer_) {
    host_.stop_timer(timer_);
    timer_ = 0;
  }
  timer_at_ = at_ms;
  if (at_ms == UINT64_MAX) return;
  uint64_t now = host_.now_ms();
  jn_status st = host_.timer(at_ms > now ? at_ms - now : 0, 0, timer_cookie_, &timer_);
  if (st != JN_OK) host_.error("sip: cannot start the stack's timer (status " + std::to_string(st) + ")");
}

bool HostEnv::on_timer(jn_handle timer, uint64_t cookie) {
  if (cookie != timer_cookie_) return false;
  if (timer != timer_) return true;  // a timer we already replaced
  timer_ = 0;
  timer_at_ = UINT64_MAX;
  if (stack_) stack_->on_timer();
  return true;
}

std::string HostEnv::random_hex(size_t n) {
  std::string s;
  util::random_hex(n, s);
  return s;
}

jn_status HostEnv::resolve(std::string_view host, uint16_t port, uint8_t transport, uint64_t cookie) {
  jn_handle q = 0;
  jn_status st = host_.dns_resolve_sip(host, port, transport, false, cookie, &q);
  if (st == JN_OK) dns_[q] = Query{cookie, std::string(host)};
  return st;
}

bool HostEnv::on_dns(const jn_dns_result& r) {
  auto it = dns_.find(r.query);
  if (it == dns_.end()) return false;
  Query q = std::move(it->second);
  dns_.erase(it);
  std::vector<Flow> out;
  if (r.status == JN_DNS_OK && JN_HAS_FIELD(&r, jn_dns_result, target_count)) {
    for (uint32_t i = 0; i < r.target_count; ++i) {
      const jn_sip_target& t = r.targets[i];
      Flow f;
      if (!proto_from_jn(t.transport, f.proto)) continue;  // SCTP and the like: not ours
      f.peer = t.addr;
      out.push_back(f);
      if (f.proto == Proto::Tls) {  // the name a later connect verifies the certificate against
        if (tls_names_.size() >= kMaxTlsNames) tls_names_.clear();
        tls_names_[util::format_addr(t.addr)] = q.host;
      }
    }
  }
  uint64_t cookie = q.cookie;
  if (stack_) stack_->on_resolved(cookie, out, r.status == JN_DNS_OK ? std::string_view() : sdk::to_sv(r.error));
  return true;
}

bool HostEnv::on_udp(jn_handle sock, const jn_datagram* d, size_t n) {
  if (!stack_) return false;
  for (size_t i = 0; i < n; ++i) {
    const jn_buf* b = d[i].buf;
    Flow f;
    f.proto = Proto::Udp;
    f.peer = b->src;
    f.sock = sock;
    stack_->on_datagram(std::string_view(reinterpret_cast<const char*>(b->data), b->len), f);
  }
  return true;
}

bool HostEnv::on_tcp(const jn_tcp_event& ev) {
  if (ev.cookie != tcp_cookie_ && !conns_.count(ev.conn) && !pending_.count(ev.conn)) return false;
  switch (ev.type) {
    case JN_TCP_ACCEPTED:
      conns_.insert(ev.conn);
      break;
    case JN_TCP_CONNECTED: {
      conns_.insert(ev.conn);
      auto p = pending_.find(ev.conn);
      if (p != pending_.end()) {
        std::string bytes = std::move(p->second);
        pending_.erase(p);
        if (!bytes.empty()) host_.tcp_send(ev.conn, bytes);
      }
      break;
    }
    case JN_TCP_FRAME: {
      Flow f;
      f.proto = tls_conns_.count(ev.conn) ? Proto::Tls : Proto::Tcp;
      f.peer = ev.peer;
      f.conn = ev.conn;
      std::string_view data(reinterpret_cast<const char*>(ev.data), ev.len);
      if (sip_framing()) {
        if (stack_) stack_->on_stream_message(data, f);
        break;
      }
      // A 2.0 core: frame here (Content-Length is mandatory on a stream; a lie closes it).
      std::string& buf = rxbuf_[ev.conn];
      buf.append(data);
      size_t off = 0;
      while (off < buf.size()) {
        size_t len = 0;
        bool keepalive = false;
        ParseStatus st = frame_stream(std::string_view(buf).substr(off), len, keepalive);
        if (st == ParseStatus::Incomplete) break;
        if (st != ParseStatus::Ok) {
          host_.warn(std::string("sip: TCP stream from ") + util::format_addr(ev.peer) + " cannot be framed (" +
                     to_string(st) + "): closing it");
          rxbuf_.erase(ev.conn);
          host_.tcp_close(ev.conn);
          return true;
        }
        if (stack_) stack_->on_stream_message(std::string_view(buf).substr(off, len), f);
        off += len;
      }
      if (buf.size() > max_message * 2ull) {
        host_.warn("sip: TCP stream buffer overflow: closing it");
        rxbuf_.erase(ev.conn);
        host_.tcp_close(ev.conn);
        return true;
      }
      buf.erase(0, off);
      break;
    }
    case JN_TCP_OVERSIZE:
      host_.warn("sip: a TCP stream from " + util::format_addr(ev.peer) + " sent a message over the limit or a bad Content-Length");
      break;
    case JN_TCP_CLOSED:
      if (pending_.count(ev.conn) && tls_conns_.count(ev.conn))
        host_.warn("sip: TLS connection to " + util::format_addr(ev.peer) +
                   " failed: TCP connect, TLS handshake or certificate verification (status " + std::to_string(ev.status) + ")");
      tls_conns_.erase(ev.conn);
      pending_.erase(ev.conn);
      rxbuf_.erase(ev.conn);
      conns_.erase(ev.conn);
      if (stack_) stack_->on_connection_closed(ev.conn);
      break;
  }
  return true;
}

nlohmann::json HostEnv::save() const {
  nlohmann::json conns = nlohmann::json::array();
  for (auto c : conns_) conns.push_back(c);
  nlohmann::json tls = nlohmann::json::array();
  for (auto c : tls_conns_) tls.push_back(c);
  return {{"udp", udp_}, {"listener", listener_}, {"timer", timer_}, {"timer_at", timer_at_}, {"conns", conns}, {"tls_conns", tls}};
}

void HostEnv::restore(const nlohmann::json& j) {
  udp_ = j.value("udp", jn_handle(0));
  listener_ = j.value("listener", jn_handle(0));
  timer_ = j.value("timer", jn_handle(0));
  timer_at_ = j.value("timer_at", UINT64_MAX);
  if (j.contains("conns") && j["conns"].is_array())
    for (auto& c : j["conns"]) conns_.insert(c.get<jn_handle>());
  if (j.contains("tls_conns") && j["tls_conns"].is_array())
    for (auto& c : j["tls_conns"]) tls_conns_.insert(c.get<jn_handle>());
}

}  // namespace junction::sip
