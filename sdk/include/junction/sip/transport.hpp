// The SIP stack's view of the outside world: where a message came from or goes to (a Flow) and
// the environment that sends bytes, keeps time and arms the stack's one timer (Env). The stack
// owns no socket, no timer and no thread: host_env.hpp implements Env on a plugin's jn_host_api,
// the unit tests implement it with a fake clock and captured sends.
#pragma once

#include <junction/abi.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace junction::sip {

// TLS is a stream like TCP (framed by the core's JN_FRAME_SIP, no retransmission timers): only
// the Via / transport= names, the default port and how the env opens a connection differ.
enum class Proto : uint8_t { Udp = 1, Tcp = 2, Tls = 3 };

// The Via transport token: "UDP", "TCP", "TLS".
inline std::string_view proto_name(Proto p) { return p == Proto::Tls ? "TLS" : p == Proto::Tcp ? "TCP" : "UDP"; }
// A URI's transport= value ("" for UDP, the default that needs none).
inline std::string_view proto_param(Proto p) { return p == Proto::Tls ? "tls" : p == Proto::Tcp ? "tcp" : ""; }
// RFC 3261 §19.1.2: 5061 for TLS, 5060 otherwise.
inline uint16_t default_port(Proto p) { return p == Proto::Tls ? 5061 : 5060; }
inline bool is_stream(Proto p) { return p == Proto::Tcp || p == Proto::Tls; }
// A saved integer back to a Proto (hot reload state); anything unknown reads as UDP.
inline Proto proto_from_int(int v) { return v == 3 ? Proto::Tls : v == 2 ? Proto::Tcp : Proto::Udp; }
// The core's JN_SIP_* transport of a Proto and back (0 = not one we speak).
inline uint8_t proto_to_jn(Proto p) { return p == Proto::Tls ? JN_SIP_TLS : p == Proto::Tcp ? JN_SIP_TCP : JN_SIP_UDP; }
inline bool proto_from_jn(uint32_t t, Proto& out) {
  if (t == JN_SIP_UDP) out = Proto::Udp;
  else if (t == JN_SIP_TCP) out = Proto::Tcp;
  else if (t == JN_SIP_TLS) out = Proto::Tls;
  else return false;
  return true;
}

// Where a message came from (the real source: the packet's address, not what its Via claims) or
// where one goes. A TCP / TLS flow names the core's connection, so a peer that registered over
// TCP is answered and reached over that same connection (devices behind NAT accept nothing else).
struct Flow {
  Proto proto = Proto::Udp;
  jn_addr peer{};      // the remote address (a received message: its source)
  jn_handle sock = 0;  // UDP: the socket it came in on / leaves by (0 = the stack's default)
  jn_handle conn = 0;  // TCP / TLS: the connection (0 = none yet: the transport connects)
  bool reliable() const { return is_stream(proto); }
  bool same_peer(const Flow& o) const {
    return proto == o.proto && peer.family == o.peer.family && peer.port == o.peer.port &&
           std::memcmp(peer.ip, o.peer.ip, peer.family == 6 ? 16 : 4) == 0;
  }
};

// The stack's environment. Every call happens on the plugin's control loop.
class Env {
 public:
  virtual ~Env() = default;
  // Monotonic milliseconds (host.now_ms()); survives a hot reload (same process clock).
  virtual uint64_t now_ms() = 0;
  // Sends one whole message. UDP: flow.sock (0 = default socket) to flow.peer. TCP / TLS: on
  // flow.conn, or (conn 0) on a new connection to flow.peer, which the env opens (TLS: verifying
  // the server's certificate) and reports back through Stack::on_tcp_* (the bytes wait until it
  // is connected). Not JN_OK: the message was not sent (a connection that died, TLS on a core
  // without it): the transaction reports a transport error.
  virtual jn_status send(Flow& flow, std::string_view bytes) = 0;
  // The stack's single timer: fire (Stack::on_timer) at at_ms; UINT64_MAX disarms it. Re-arming
  // replaces the previous deadline.
  virtual void wake_at(uint64_t at_ms) = 0;
  virtual void log(int level, std::string_view msg) = 0;
  virtual bool log_enabled(int level) = 0;
  // n random bytes as hex (branches, tags, Call-IDs); empty when no randomness is available.
  virtual std::string random_hex(size_t n) = 0;
  // RFC 3263 resolution of a SIP host through the core (JN_DNS_SIP); the answer comes back through
  // Stack::on_resolved(cookie, ...). JN_ERR_UNSUPPORTED: the env cannot resolve names.
  virtual jn_status resolve(std::string_view host, uint16_t port, uint8_t transport, uint64_t cookie) {
    (void)host, (void)port, (void)transport, (void)cookie;
    return JN_ERR_UNSUPPORTED;
  }
};

}  // namespace junction::sip
