// The SIP stack's environment on a plugin's jn_host_api: UDP sockets and TCP connections of the
// core (TCP framed by the core's JN_FRAME_SIP framer on a 2.1 core; on a 2.0 core raw chunks
// framed here with frame_stream), TLS client connections (the core's TCP with TLS, ABI 2.1:
// the server's certificate verified against the resolved name and StackConfig::tls_ca_file),
// one host timer, the core's RFC 3263 DNS, OpenSSL randomness.
//
// The plugin forwards its hooks: on_udp / on_tcp / on_timer / on_dns return true when the event
// was the stack's. Handles (sockets, listeners, the timer) belong to the plugin's slot and
// survive a hot reload: save() / restore() carry them to the next instance.
#pragma once

#include <junction/plugin.hpp>
#include <junction/sip/stack.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <unordered_map>
#include <unordered_set>

namespace junction::sip {

class HostEnv : public Env {
 public:
  // timer_cookie / tcp_cookie / dns_cookie_base: cookie values the plugin reserves for the stack.
  explicit HostEnv(const sdk::Host& host, uint64_t timer_cookie = 0x5150000000000001ull,
                   uint64_t tcp_cookie = 0x5150000000000002ull);
  void attach(Stack* stack) { stack_ = stack; }

  // Binds the stack's UDP socket / TCP listener ("ip:port"). The first UDP socket is the default
  // one requests leave by.
  jn_status listen_udp(std::string_view addr, jn_handle* out = nullptr);
  jn_status listen_tcp(std::string_view addr, jn_handle* out = nullptr);
  jn_handle udp_socket() const { return udp_; }
  jn_handle tcp_listener() const { return listener_; }
  uint32_t max_message = 65535;

  // Opens a TCP or TLS (flow.proto) client connection to flow.peer and sets flow.conn; what is
  // sent on it waits until it is connected. TLS: server_name is the name the certificate must
  // carry (SNI too): empty = the name flow.peer was resolved from (Stack::resolve), else its IP.
  // JN_ERR_UNSUPPORTED: TLS on a 2.0 core, or a UDP flow. A failed connect or TLS handshake /
  // certificate check is a JN_TCP_CLOSED later (logged; client transactions on it end with 503).
  jn_status connect(Flow& flow, std::string_view server_name = {});
  bool is_tls(jn_handle conn) const { return tls_conns_.count(conn) != 0; }

  // Hook forwarding: true when the event was the stack's.
  bool on_udp(jn_handle sock, const jn_datagram* dgrams, size_t n);
  bool on_tcp(const jn_tcp_event& ev);
  bool on_timer(jn_handle timer, uint64_t cookie);
  bool on_dns(const jn_dns_result& r);

  // Env
  uint64_t now_ms() override { return host_.now_ms(); }
  jn_status send(Flow& flow, std::string_view bytes) override;
  void wake_at(uint64_t at_ms) override;
  void log(int level, std::string_view msg) override { host_.log(level, msg); }
  bool log_enabled(int level) override { return host_.enabled(level); }
  std::string random_hex(size_t n) override;
  jn_status resolve(std::string_view host, uint16_t port, uint8_t transport, uint64_t cookie) override;

  // Hot reload: the handles the next instance keeps using.
  nlohmann::json save() const;
  void restore(const nlohmann::json& j);

 private:
  bool sip_framing() const { return host_.api()->abi_minor >= 1; }
  sdk::Host host_;
  Stack* stack_ = nullptr;
  uint64_t timer_cookie_, tcp_cookie_;
  jn_handle udp_ = 0, listener_ = 0, timer_ = 0;
  uint64_t timer_at_ = UINT64_MAX;
  std::unordered_map<jn_handle, std::string> pending_;  // connecting: bytes waiting
  std::unordered_map<jn_handle, std::string> rxbuf_;    // 2.0 core: raw bytes not yet framed
  std::unordered_set<jn_handle> conns_;
  struct Query {
    uint64_t cookie;
    std::string host;  // what was asked: the name a TLS server's certificate must carry
  };
  std::unordered_map<jn_handle, Query> dns_;            // query -> the stack's cookie
  std::unordered_set<jn_handle> tls_conns_;             // connections that are TLS
  // "ip:port" of a resolved TLS target -> the name it was resolved from (bounded: kMaxTlsNames).
  std::unordered_map<std::string, std::string> tls_names_;
  static constexpr size_t kMaxTlsNames = 1024;
};

}  // namespace junction::sip
