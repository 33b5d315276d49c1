// WebRTC data channels: SCTP over DTLS (RFC 8261) with usrsctp, and the Data Channel
// Establishment Protocol (DCEP, RFC 8832) on top: channels opened by either side, text and
// binary messages (PPID 51/53, empty ones 56/57), ordered or not, partial reliability (max
// retransmits / lifetime), closing by stream reset (RFC 8831 6.7).
//
// usrsctp has process-wide state. It runs in its no-threads mode (usrsctp_init_nothreads): no
// timer or receive thread of its own; its timers advance only when someone calls
// SctpStack::tick(), and they are process-wide (one tick serves every association). So:
//   - SctpStack: one per plugin instance; init() once (sctp_library_init() pins the library
//     through the core and initialises it only for the first pinner); tick(now) may be called
//     from any media loop: one loop at a time runs usrsctp's callout queue (it is not made for
//     two drivers) and the elapsed time is counted once, so usrsctp's clock follows real time
//     however many loops drive it.
//   - A timer that fires during another loop's tick may make usrsctp emit a packet for an
//     association of ours from that thread. So packets usrsctp emits are queued (a small locked
//     outbox per association) and sent by the owning loop right after each of its own calls
//     (handle_input, send, tick, ...): the Transport is only ever touched from its loop. For the
//     same reason messages and notifications are read by polling usrsctp_recvv on the owning
//     loop, never through a callback from inside usrsctp.
//   - usrsctp's output callback is registered once per process. It is the trampoline of
//     libjunction_sctp_glue.so (sctp_glue.h), pinned resident through the core, which calls the
//     output stored in the address usrsctp hands it: each association's Port starts with a
//     jn_sctp_glue_port pointing at this code. So a hot reload (this code unmapped, a new copy
//     loaded) leaves usrsctp nothing stale to call, and the next instance uses usrsctp as the
//     first did; several plugins can too.
//
// Everything of one association runs on one media loop. Allocation happens at open/close and in
// usrsctp itself (it mallocs per packet); this is not the RTP path.
#pragma once

#include <junction/webrtc/sctp_glue.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct socket;  // usrsctp's

namespace junction::sdk {
class Host;
}

namespace junction::webrtc {

class SctpStack {
 public:
  SctpStack() = default;
  SctpStack(const SctpStack&) = delete;
  SctpStack& operator=(const SctpStack&) = delete;
  // Initialises usrsctp through the glue (once per process, whoever comes first; `first` is
  // only informative now) and sets its sysctls. False + err when usrsctp cannot be used.
  bool init(bool first, uint64_t now_ms, std::string& err);
  bool ready() const { return ready_; }
  // Advances usrsctp's timers to now_ms (any loop; the elapsed time is counted once).
  void tick(uint64_t now_ms);
  // How often tick() should run while associations exist.
  static constexpr uint64_t kTickMs = 10;

 private:
  bool ready_ = false;
  std::mutex mu_;         // one loop at a time runs usrsctp's timers
  uint64_t last_ms_ = 0;  // under mu_
};

// Pins usrsctp and the glue through the core (host->library_pin) and initialises stack. False +
// err when it cannot (a library missing).
bool sctp_library_init(const sdk::Host& host, SctpStack& stack, uint64_t now_ms, std::string& err);

enum class SctpState : uint8_t { New, Connecting, Connected, Closed, Failed };
const char* sctp_state_name(SctpState s);

// DCEP DATA_CHANNEL_OPEN (RFC 8832 5.1).
struct DcepOpen {
  uint8_t channel_type = 0;   // 0x00 reliable, 0x80 unordered, 0x01/0x81 rexmit, 0x02/0x82 timed
  uint16_t priority = 0;
  uint32_t reliability = 0;   // retransmits or ms
  std::string label, protocol;
  bool ordered() const { return !(channel_type & 0x80); }
};
// Parses a DATA_CHANNEL_OPEN message; false on a short or inconsistent one.
bool parse_dcep_open(const uint8_t* d, size_t n, DcepOpen& out);
std::vector<uint8_t> build_dcep_open(const DcepOpen& o);

struct SctpCallbacks {
  virtual ~SctpCallbacks() = default;
  // An SCTP packet for the peer: DTLS application data (Transport::send_app_data).
  virtual void sctp_send(const uint8_t* data, size_t len) = 0;
  virtual void on_sctp_state(SctpState) {}
  // A channel is open: the peer opened it (remote=true) or the peer acknowledged ours.
  virtual void on_channel_open(uint16_t stream, const DcepOpen& info, bool remote) = 0;
  virtual void on_message(uint16_t stream, const uint8_t* data, size_t len, bool binary) = 0;
  virtual void on_channel_closed(uint16_t stream) = 0;
};

struct SctpConfig {
  uint16_t local_port = 5000;   // a=sctp-port (ours)
  uint16_t remote_port = 5000;  // the peer's a=sctp-port
  bool dtls_client = false;     // stream ids: the DTLS client uses even ones, the server odd (RFC 8832 6)
  uint32_t max_message_size = 262144;  // largest message we accept and send
  uint16_t streams = 1024;      // inbound/outbound streams negotiated
};

struct SctpStats {
  uint64_t packets_in = 0;
  uint64_t packets_out = 0;
  uint64_t messages_in = 0;
  uint64_t messages_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t dropped_in = 0;  // too large, on an unknown channel, bad DCEP
  uint64_t send_failed = 0;
};

class SctpAssociation {
 public:
  SctpAssociation(SctpStack& stack, SctpCallbacks& cb, const SctpConfig& cfg);
  ~SctpAssociation();
  SctpAssociation(const SctpAssociation&) = delete;
  SctpAssociation& operator=(const SctpAssociation&) = delete;

  // Opens the association (both sides connect: SCTP handles the simultaneous INIT). Call once
  // DTLS is connected. False + error() when usrsctp refuses.
  bool start();
  // One DTLS application-data record from the peer (Transport::on_app_data).
  void handle_input(const uint8_t* data, size_t len);
  // Opens a channel; its stream id, or -1 (not connected, no free stream, label too long).
  int open_channel(const DcepOpen& info);
  // Sends one message; false when the channel is not open, the message is larger than the
  // peer's max-message-size, or usrsctp's buffer is full (counted).
  bool send(uint16_t stream, const uint8_t* data, size_t len, bool binary);
  bool send_text(uint16_t stream, std::string_view text) {
    return send(stream, reinterpret_cast<const uint8_t*>(text.data()), text.size(), false);
  }
  // Closes a channel (outgoing stream reset; the peer resets its side, on_channel_closed follows).
  bool close_channel(uint16_t stream);
  // Ends the association (ABORT), no callbacks after it.
  void close();
  // Drives usrsctp's timers (through the stack) and sends what they produced.
  void tick(uint64_t now_ms);
  uint64_t next_timer_ms(uint64_t now_ms) const { return state_ == SctpState::Closed ? UINT64_MAX : now_ms + SctpStack::kTickMs; }

  void set_remote_max_message_size(uint32_t n) { remote_max_ = n; }
  SctpState state() const { return state_; }
  const std::string& error() const { return error_; }
  const SctpStats& stats() const { return stats_; }
  bool channel_open(uint16_t stream) const;
  size_t channel_count() const { return channels_.size(); }

  // The output of this association's packets (through the glue's trampoline): queues into the
  // association's outbox.
  static int conn_output(void* addr, void* buf, size_t len, uint8_t tos, uint8_t set_df);

 private:
  struct Channel {
    DcepOpen info;
    bool open = false;       // acked (ours) or accepted (theirs)
    bool closing = false;
  };
  // The part usrsctp points at (sconn_addr): lives as long as usrsctp may call us.
  struct Port {
    jn_sctp_glue_port glue{&SctpAssociation::conn_output};  // first member: the trampoline reads it
    std::mutex mu;
    std::vector<std::vector<uint8_t>> outbox;
    SctpAssociation* owner = nullptr;
  };
  void flush();            // outbox -> cb_.sctp_send, on the owning loop
  void poll();             // usrsctp_recvv until nothing is left
  void on_notification(const uint8_t* d, size_t n);
  void on_data(uint16_t stream, uint32_t ppid, const uint8_t* d, size_t n);
  bool raw_send(uint16_t stream, uint32_t ppid, const uint8_t* d, size_t n, const DcepOpen* pr);
  void reset_stream(uint16_t stream);
  void set_state(SctpState s);

  SctpStack& stack_;
  SctpCallbacks& cb_;
  SctpConfig cfg_;
  std::unique_ptr<Port> port_;
  struct socket* sock_ = nullptr;
  SctpState state_ = SctpState::New;
  std::string error_;
  uint32_t remote_max_ = 65536;
  std::map<uint16_t, Channel> channels_;
  uint16_t next_stream_;
  std::vector<uint8_t> rbuf_;      // one message being received (max_message_size + slack)
  size_t rlen_ = 0;
  SctpStats stats_;
};

}  // namespace junction::webrtc
