// RFC 3261 §17 transactions (with the RFC 6026 Accepted states): client and server, INVITE and
// non-INVITE, timers A-K (+ C, L, M) on one environment timer, retransmission on UDP only,
// absorption of retransmitted requests and responses, the ACK of a non-2xx built inside the
// transaction, the UAS's 2xx retransmitted until its ACK (§13.3.1.4, on every transport),
// CANCEL (§9), timeouts and transport errors reported to the TU as 408 / 503. State saves to
// bytes and restores in a new instance (a hot reload in the middle of an INVITE loses nothing).
//
// The layer matches on a handful of fields (TxnMsg) that the stack extracts from each message
// (scan() here, or the full parser); it keeps a copy of the bytes it may have to send again.
#pragma once

#include <junction/sip/transport.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace junction::sip {

class Message;

namespace detail {
// An open-addressing multimap from a non-zero 64-bit key to a 32-bit value (linear probing,
// backward-shift deletion, no tombstones): the transaction layer's id and key indexes. One
// array of 16-byte entries instead of a node per entry: a lookup is one or two cache lines.
class FlatIndex {
 public:
  size_t size() const { return size_; }
  void clear() {
    std::vector<Entry>(16).swap(e_);
    size_ = 0;
  }
  void insert(uint64_t k, uint32_t v);
  // Calls f(v) for each value under k until it returns true; that value, or UINT32_MAX.
  template <class F>
  uint32_t find(uint64_t k, F&& f) const {
    const size_t mask = e_.size() - 1;
    for (size_t i = home(k, mask); e_[i].k; i = (i + 1) & mask)
      if (e_[i].k == k && f(e_[i].v)) return e_[i].v;
    return UINT32_MAX;
  }
  // Removes the entry (k, v); false when there is none.
  bool erase(uint64_t k, uint32_t v);
  template <class F>
  void for_each(F&& f) const {
    for (const Entry& x : e_)
      if (x.k) f(x.k, x.v);
  }

 private:
  struct Entry {
    uint64_t k = 0;  // 0: empty
    uint32_t v = 0;
  };
  static size_t home(uint64_t k, size_t mask) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return size_t(k) & mask;
  }
  std::vector<Entry> e_ = std::vector<Entry>(16);
  size_t size_ = 0;
};
}  // namespace detail

struct TimerConfig {
  uint32_t t1_ms = 500;       // RTT estimate: first retransmit interval
  uint32_t t2_ms = 4000;      // cap of the non-INVITE / response retransmit interval
  uint32_t t4_ms = 5000;      // how long a message may linger in the network (timers I, K)
  uint32_t timer_c_ms = 180000;  // an INVITE client in Proceeding gives up after this (408)
  uint32_t timer_d_ms = 32000;   // an INVITE client absorbs final-response retransmits (UDP)
};

// The fields a transaction matches on: views into the message bytes.
struct TxnMsg {
  bool is_request = false;
  std::string_view method;      // the request's method; for a response, the CSeq method
  std::string_view uri;         // the Request-URI
  int status = 0;               // a response's status code
  std::string_view reason;
  std::string_view branch;      // top Via's branch
  std::string_view sent_by;     // top Via's sent-by (host[:port])
  std::string_view via_transport;  // top Via's transport ("UDP", "TCP", "TLS")
  bool rport = false;           // the top Via asked for rport (RFC 3581)
  uint32_t cseq = 0;
  std::string_view cseq_method;
  std::string_view call_id, from_tag, to_tag;
  std::string_view to;          // the whole To value (the ACK of a non-2xx copies it)
  size_t body_offset = 0;       // where the body starts in the bytes
  bool sip20 = true;            // a request line of another SIP version (the stack answers 505)
};

// Fills m from the message's start line and headers (no copy). False with `error` when a field
// the transaction layer needs is missing or malformed (the message is dropped, or answered 400).
bool scan(std::string_view bytes, TxnMsg& m, std::string* error = nullptr);

using TxnId = uint64_t;  // 0 = none

enum class TxnKind : uint8_t { InviteClient = 1, NonInviteClient, InviteServer, NonInviteServer };
enum class TxnState : uint8_t { Calling = 1, Trying, Proceeding, Completed, Confirmed, Accepted, Terminated };
std::string_view state_name(TxnState s);

// What the transaction layer tells its user (the stack, then the plugin).
class TxnUser {
 public:
  virtual ~TxnUser() = default;
  // A new request: `id` is its server transaction (0 for an ACK, which has none; an ACK that
  // matched a 2xx the layer was retransmitting comes here too). `from` is the real source.
  virtual void on_request(TxnId id, const TxnMsg& m, std::string_view bytes, const Flow& from) = 0;
  // A response of client transaction id: each provisional and final once, 2xx retransmissions
  // of an INVITE too (the TU ACKs each). bytes is empty for a timeout (408) or a transport
  // error (503) reported by the layer itself.
  virtual void on_response(TxnId id, const TxnMsg& m, std::string_view bytes) = 0;
  // A CANCEL matched INVITE server transaction `invite`; the layer already answered the CANCEL
  // 200 and the INVITE 487.
  virtual void on_cancelled(TxnId invite) { (void)invite; }
  // A server INVITE's final response was never acknowledged (Timer H, or the 2xx for 64*T1):
  // the TU should end the dialog (BYE).
  virtual void on_ack_timeout(TxnId id) { (void)id; }
  // A response that matched no transaction (a late retransmission, a stray).
  virtual void on_stray_response(const TxnMsg& m, std::string_view bytes, const Flow& from) {
    (void)m, (void)bytes, (void)from;
  }
};

class TransactionLayer {
 public:
  TransactionLayer(Env& env, TxnUser& tu, TimerConfig timers = {}) : env_(env), tu_(tu), t_(timers) {}
  const TimerConfig& timers() const { return t_; }
  void set_timers(const TimerConfig& t) { t_ = t; }

  // A received message (already scanned into m). Routes it to its transaction or the TU.
  void receive(const TxnMsg& m, std::string_view bytes, const Flow& from);

  // Starts a client transaction and sends the request (its top Via carries the branch). 0 when
  // the request cannot be sent (the TU is told nothing: the caller sees 0).
  TxnId send_request(std::string request, const Flow& to);
  // A response from the TU on server transaction id (bytes built by the caller). JN_ERR_NOT_FOUND
  // when the transaction is gone, JN_ERR_STATE when a final response was already sent.
  jn_status respond_with(TxnId id, int status, std::string response);
  // Builds a response to id's request (Via, From, To (+ to_tag unless the To has one), Call-ID,
  // CSeq copied; extra_headers "Name: value\r\n" lines; body with Content-Length) and sends it.
  jn_status respond(TxnId id, int status, std::string_view reason, std::string_view to_tag = {},
                    std::string_view extra_headers = {}, std::string_view body = {},
                    std::string_view content_type = {});
  // The same for a request the caller still holds parsed (the stack, while it delivers it): the
  // response is built from `request` (id's request) without scanning the stored bytes again.
  // server: a Server header's value (empty: none).
  jn_status respond(TxnId id, const Message& request, int status, std::string_view reason, std::string_view to_tag,
                    std::string_view server, std::string_view extra_headers, std::string_view body,
                    std::string_view content_type);
  // Sends a CANCEL for INVITE client transaction id (now if a provisional came, else when one
  // does). The INVITE then ends with 487 (or whatever the UAS sends); after 64*T1 without one,
  // with a 408.
  jn_status cancel(TxnId id);
  // Sends bytes outside any transaction (the ACK of a 2xx, a stateless answer).
  jn_status send_stateless(std::string_view bytes, const Flow& to);

  // The request a server transaction holds (empty when gone, and once a final response was sent:
  // it is not kept for the rest of timer J / H / L), its kind and state.
  std::string_view request_of(TxnId id) const;
  const Flow* flow_of(TxnId id) const;
  bool exists(TxnId id) const { return find(id) != nullptr; }
  TxnState state_of(TxnId id) const;
  size_t size() const { return ids_.size(); }

  // The environment timer fired (or the test clock moved): runs every timer due by now.
  void on_timer();
  // A TCP / TLS connection is gone (closed, refused, a failed TLS handshake or certificate
  // check): RFC 3261 §17.1.4, every client transaction still waiting for a final response over
  // it ends now with a 503 (no message) instead of waiting for timer B / F. Server transactions
  // are left to their timers (their responses can no longer be sent anyway).
  void on_connection_closed(jn_handle conn);

  // Save/restore: the whole table as bytes (hot reload). restore() replaces the table, re-arms
  // the timer and returns false (with error) on bytes this build cannot read.
  std::string save() const;
  bool restore(std::string_view bytes, std::string& error);

  // Builds a response to a request (see respond()); exposed for the stateless answers. received /
  // rport: parameters added to the top Via (the request's real source).
  static std::string build_response(std::string_view request, int status, std::string_view reason,
                                    std::string_view to_tag, std::string_view extra_headers,
                                    std::string_view body, std::string_view content_type,
                                    std::string_view received = {}, uint16_t rport = 0);
  // build_response() from a parsed request (its header index, no second scan); server: a Server
  // header's value (empty: none), written before extra_headers.
  static std::string build_response(const Message& request, int status, std::string_view reason, std::string_view to_tag,
                                    std::string_view server, std::string_view extra_headers, std::string_view body,
                                    std::string_view content_type, std::string_view received, uint16_t rport);
  // The same into out (cleared first; its capacity reused: a stack answering statelessly keeps
  // one buffer instead of a new string per response). Header lines written with their canonical
  // name, ": " and CRLF are copied from the request as they are.
  static void build_response(std::string& out, const Message& request, int status, std::string_view reason,
                             std::string_view to_tag, std::string_view server, std::string_view extra_headers,
                             std::string_view body, std::string_view content_type, std::string_view received,
                             uint16_t rport);
  // The received= / rport= values our responses carry in their top Via for a request whose top
  // Via says sent_by (and ;rport when rport) that came from `from` (§18.2.1, RFC 3581): received
  // empty when not needed, rport_out 0 when not asked.
  static void source_of(std::string_view sent_by, bool rport, const Flow& from, std::string& received, uint16_t& rport_out);

 private:
  struct Txn {
    TxnId id = 0;
    TxnKind kind{};
    TxnState state{};
    std::string key;
    std::string request;  // the request (client: as sent; server: as received)
    std::string last;     // server: the last response; INVITE client: the ACK of its non-2xx
    Flow flow;
    uint64_t retx_at = 0, end_at = 0, filed = 0;  // 0 = not running
    uint32_t interval = 0;
    int status = 0;        // last response status sent (server) or received (client)
    bool cancel_wanted = false;
    std::string ack_key;   // InviteServer in Accepted: Call-ID + CSeq of the 2xx awaiting its ACK
    std::string received;  // server: received= for our responses' top Via (empty: none)
    uint16_t rport = 0;    // server: the rport= value (0: none asked)
    uint32_t slot = 0;     // where it lives in slab_
    bool keyed = false;    // indexed in keys_ under hash_key(key)
  };
  // Transaction records live in a slab (a deque: references stay valid while it grows; freed
  // slots are reused, so a busy registrar allocates no record per request), found by id through
  // ids_ and by matching key through keys_ (a hash of the key; records compared in full).
  Txn* find(TxnId id);
  const Txn* find(TxnId id) const;
  Txn& create(TxnId id);
  void erase(Txn& t);  // t is dead from here
  TxnId find_key(std::string_view key) const;
  void index_key(Txn& t);
  static uint64_t hash_key(std::string_view key);
  static uint64_t id_key(TxnId id) { return id; }  // ids are never 0
  void source_params(Txn& t, const TxnMsg& m, const Flow& from);
  std::string_view server_key(const TxnMsg& m);  // in key_buf_: valid until the next call
  static std::string client_key(std::string_view branch, std::string_view method);
  void file(Txn& t);
  void rearm();
  void terminate(Txn& t);
  void fire(Txn& t, uint64_t now);
  bool transmit(Txn& t, std::string_view bytes);
  void client_response(Txn& t, const TxnMsg& m, std::string_view bytes);
  void server_request(Txn& t, const TxnMsg& m, std::string_view bytes, const Flow& from);
  void report(Txn& t, int status, std::string_view reason);
  void handle_cancel(const TxnMsg& m, std::string_view bytes, const Flow& from);
  static std::string build_ack(std::string_view invite, const TxnMsg& resp);
  static std::string build_cancel(std::string_view invite);
  void log(int level, const std::string& msg) {
    if (env_.log_enabled(level)) env_.log(level, msg);
  }

  Env& env_;
  TxnUser& tu_;
  TimerConfig t_;
  TxnId next_id_ = 1;
  std::deque<Txn> slab_;
  std::vector<uint32_t> free_;
  detail::FlatIndex ids_, keys_;
  std::string key_buf_;  // the key of the message being matched (no allocation per message)
  std::unordered_map<std::string, TxnId> by_ack_;
  // Deadlines, one FIFO per delay (A/E/G double, B/F/H/J are 64*T1, ...): a transaction filed at
  // now + d lands at the back of queue d, so each queue stays sorted and filing is O(1). A
  // re-filed or terminated transaction leaves a stale entry, skipped when it reaches the front
  // (valid only while the transaction exists and is still filed at that time).
  struct Due {
    uint64_t at;
    TxnId id;
  };
  std::map<uint64_t, std::deque<Due>> queues_;
  bool stale(const Due& d) const;
  // The queue whose valid front is earliest (stale fronts dropped on the way), or null.
  std::deque<Due>* earliest();
  uint64_t armed_ = UINT64_MAX;
};

}  // namespace junction::sip
