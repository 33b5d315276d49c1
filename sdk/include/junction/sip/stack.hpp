// The SIP stack a plugin holds: parsing (message.hpp), transactions (transaction.hpp) and the
// transport glue over an Env (host_env.hpp on the core, a fake in tests). The plugin feeds it
// what the core delivers (datagrams, SIP frames of TCP connections, timer firings, connection
// closes) and implements StackUser to receive requests and responses; dialogs (dialog.hpp) and
// subscriptions (subscription.hpp) are helpers the plugin keeps beside it.
//
// Every received request comes with its real source (Flow: the packet's address and, on TCP,
// the connection), so a registrar can bind a contact to the flow it came over and reach a NATed
// device through it. Bad input is answered (400 with the reason, 505 for another SIP version)
// or dropped with a log line and a counter; it never disturbs another transaction.
#pragma once

#include <junction/sip/builder.hpp>
#include <junction/sip/message.hpp>
#include <junction/sip/transaction.hpp>
#include <junction/sip/transport.hpp>

#include <cstdint>
#include <string>
#include <functional>
#include <string_view>
#include <vector>

namespace junction::sip {

struct StackConfig {
  std::string host = "127.0.0.1";  // our address in Via sent-by and Contact
  uint16_t udp_port = 5060;
  uint16_t tcp_port = 5060;
  TimerConfig timers;
  Limits limits;
  std::string user_agent;  // a User-Agent / Server header when not empty
  // RFC 3261 §8.2.7 stateless UAS for REGISTER (the trade-off of a stateless registrar such as
  // Kamailio with sl_send_reply): no server transaction is made, so a retransmitted REGISTER
  // reaches the user again and is answered by re-running the same (idempotent) logic. The user
  // must answer during on_request (Stack::respond with that id; afterwards the id is gone), with
  // final responses only; the To tag is derived from the request (the same for a
  // retransmission), whatever to_tag says. Other methods keep their transactions.
  bool stateless_register = false;
  // The same stateless handling for the requests this predicate picks (e.g. gb28181's plain
  // keepalive MESSAGE; never INVITE or ACK, which keep the transaction layer whatever it says).
  // The user owns the retransmission rule: request_fingerprint() tells a retransmission apart,
  // and the response is the same bytes for it (the To tag is derived from the request).
  std::function<bool(const Message&)> stateless_request = nullptr;
  // Last (positional initialisers of the fields above stay valid):
  uint16_t tls_port = 5061;  // our Via sent-by / Contact port over TLS (a client: where we would listen)
  // TLS client connections (HostEnv): PEM CAs trusted instead of the system's ("" = the system's).
  // The server's certificate is always verified, against the name that was resolved.
  std::string tls_ca_file = {};
};

struct StackCounters {
  uint64_t rx_requests = 0, rx_responses = 0, rx_bad = 0, rx_keepalives = 0;
  uint64_t tx_stateless = 0;
  uint64_t rx_stateless = 0;  // requests answered without a transaction (stateless_register / stateless_request)
};

// A 64-bit fingerprint of a request that its retransmissions share and another request (a new
// branch, Call-ID, CSeq or From tag) does not: top Via branch and sent-by, Call-ID, CSeq, method,
// From tag. Not a MAC: it tells retransmissions apart from new requests, nothing more.
uint64_t request_fingerprint(const Message& m);

class StackUser {
 public:
  virtual ~StackUser() = default;
  // A new request (not a retransmission). id is its server transaction (answer with
  // Stack::respond); 0 for an ACK. msg views the received bytes: valid during the call only.
  virtual void on_request(TxnId id, const Message& msg, const Flow& from) = 0;
  // A response of client transaction id. msg is null for a timeout (408) or a transport error
  // (503) reported by the stack itself.
  virtual void on_response(TxnId id, int status, const Message* msg) = 0;
  // A CANCEL ended INVITE server transaction id (already answered 487).
  virtual void on_cancelled(TxnId id) { (void)id; }
  // The final response of INVITE server transaction id was never acknowledged.
  virtual void on_ack_timeout(TxnId id) { (void)id; }
  // A TCP / TLS connection the stack knew is gone (registrations bound to it are dead). Client
  // transactions over it were ended first (on_response 503).
  virtual void on_connection_closed(jn_handle conn) { (void)conn; }
  // The answer to Stack::resolve: where to send, in order (empty with error on failure).
  virtual void on_resolved(uint64_t cookie, const std::vector<Flow>& targets, std::string_view error) {
    (void)cookie, (void)targets, (void)error;
  }
  // The time asked with Stack::wake_user_at has come.
  virtual void on_wake() {}
};

class Stack : private TxnUser {
 public:
  Stack(Env& env, StackUser& user, StackConfig cfg = {});
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  const StackConfig& config() const { return cfg_; }
  const StackCounters& counters() const { return counters_; }
  TransactionLayer& transactions() { return layer_; }
  Env& env() { return env_; }
  // Ids of requests handled statelessly (StackConfig::stateless_register) have this bit set. Such
  // an id names its request during on_request only (a restored stack may hand it out again).
  static constexpr TxnId kStatelessBit = TxnId(1) << 63;
  static bool is_stateless(TxnId id) { return (id & kStatelessBit) != 0; }

  // --- input (what the core delivered) -----------------------------------------------------
  // One UDP datagram. from.peer is the packet's source, from.sock the socket.
  void on_datagram(std::string_view bytes, const Flow& from);
  // One frame of a TCP / TLS connection framed by the core (JN_FRAME_SIP): a whole message, or the
  // "\r\n\r\n" keepalive (answered "\r\n", RFC 5626 §4.4.1).
  void on_stream_message(std::string_view bytes, const Flow& from);
  void on_connection_closed(jn_handle conn);
  // The env's timer fired.
  void on_timer();
  // The env's answer to a resolve (status JN_DNS_*).
  void on_resolved(uint64_t cookie, const std::vector<Flow>& targets, std::string_view error) {
    user_.on_resolved(cookie, targets, error);
  }

  // --- output -----------------------------------------------------------------------------
  // Starts a client transaction (the request's top Via must carry a fresh z9hG4bK branch).
  TxnId send_request(std::string request, const Flow& to) { return layer_.send_request(std::move(request), to); }
  // Answers server transaction id (Via/From/To/Call-ID/CSeq copied, the To tag added above 100,
  // received/rport filled). extra_headers: whole "Name: value\r\n" lines.
  jn_status respond(TxnId id, int code, std::string_view reason = {}, std::string_view to_tag = {},
                    std::string_view extra_headers = {}, std::string_view body = {},
                    std::string_view content_type = {});
  jn_status cancel(TxnId id) { return layer_.cancel(id); }
  // The ACK of a 2xx (no transaction) or any other stateless message.
  jn_status send_stateless(std::string_view bytes, const Flow& to) {
    ++counters_.tx_stateless;
    return layer_.send_stateless(bytes, to);
  }
  // RFC 3263 resolution of host through the env (an IP literal is answered at once, without a
  // query, on port or proto's default port): the answer comes in StackUser::on_resolved. TLS:
  // _sips._tcp SRV, else A/AAAA on 5061 (the core's resolver).
  jn_status resolve(std::string_view host, uint16_t port, Proto proto, uint64_t cookie);
  // on_wake() at at_ms (UINT64_MAX: never). One deadline; a new call replaces it.
  void wake_user_at(uint64_t at_ms);

  // --- building messages ----------------------------------------------------------------------
  std::string new_branch();  // "z9hG4bK" + 20 hex
  std::string new_tag();     // 16 hex
  std::string new_call_id(); // 32 hex @ host
  // Writes our Via for a request over proto (with ;rport).
  void write_via(Writer& w, Proto proto, std::string_view branch) const;
  // "<sip:user@host:port[;transport=tcp|tls]>"
  std::string contact(Proto proto, std::string_view user = {}) const;
  // "sip:host:port" of ours
  std::string local_uri(Proto proto, std::string_view user = {}) const;
  // Our port over proto (udp_port / tcp_port / tls_port).
  uint16_t port_of(Proto proto) const;

  // --- hot reload -----------------------------------------------------------------------------
  std::string save() const { return layer_.save(); }
  bool restore(std::string_view bytes, std::string& error) { return layer_.restore(bytes, error); }

 private:
  // Forwards to the real env, multiplexing its one timer between the layer and the user.
  class TimerMux : public Env {
   public:
    explicit TimerMux(Stack& s) : s_(s) {}
    uint64_t now_ms() override { return s_.env_.now_ms(); }
    jn_status send(Flow& f, std::string_view b) override { return s_.env_.send(f, b); }
    void wake_at(uint64_t at) override {
      s_.layer_wake_ = at;
      s_.rearm();
    }
    void log(int l, std::string_view m) override { s_.env_.log(l, m); }
    bool log_enabled(int l) override { return s_.env_.log_enabled(l); }
    std::string random_hex(size_t n) override { return s_.env_.random_hex(n); }
    jn_status resolve(std::string_view h, uint16_t p, uint8_t t, uint64_t c) override { return s_.env_.resolve(h, p, t, c); }

   private:
    Stack& s_;
  };

  void on_request(TxnId id, const TxnMsg& m, std::string_view bytes, const Flow& from) override;
  void on_response(TxnId id, const TxnMsg& m, std::string_view bytes) override;
  void on_cancelled(TxnId id) override { user_.on_cancelled(id); }
  void on_ack_timeout(TxnId id) override { user_.on_ack_timeout(id); }
  void on_stray_response(const TxnMsg& m, std::string_view bytes, const Flow& from) override;
  void input(std::string_view bytes, const Flow& from, Framing framing);
  static void txn_fields(const Message& msg, TxnMsg& m);
  bool stateless(const Message& m) const;
  void bad(std::string_view bytes, const Flow& from, const std::string& why, int code);
  void rearm();
  jn_status respond_stateless(TxnId id, int code, std::string_view reason, std::string_view extra_headers,
                              std::string_view body, std::string_view content_type);
  void log(int level, const std::string& msg) {
    if (env_.log_enabled(level)) env_.log(level, msg);
  }

  Env& env_;
  StackUser& user_;
  StackConfig cfg_;
  StackCounters counters_;
  TimerMux mux_{*this};
  TransactionLayer layer_;
  Message msg_;  // the message being delivered (fixed size: no allocation per message)
  uint64_t layer_wake_ = UINT64_MAX, user_wake_ = UINT64_MAX, armed_ = UINT64_MAX;
  // The stateless request being delivered (0: none), whether it was answered, where from, and
  // the key that makes its To tag (drawn once: tags are not guessable from the request alone).
  TxnId delivering_ = 0;  // the request in msg_ being delivered (respond builds from msg_)
  TxnId stateless_id_ = 0;
  uint64_t stateless_seq_ = 0;
  bool stateless_answered_ = false;
  const Flow* stateless_from_ = nullptr;
  uint64_t tag_key_ = 0;
  std::string tx_buf_, received_;  // the stateless answer being built (reused: no allocation per answer)
};

}  // namespace junction::sip
