// rtp-relay's state and the functions over it, split by seam (each in its own .cpp):
//   session_model.cpp  sessions, streams and shards; offer/answer applied to a call's sides;
//                      the shard locks; silence deadlines
//   port_alloc.cpp     port pairs from the core's named range (port_bind) or the deprecated
//                      port_min/port_max range
//   media_path.cpp     on_udp: validate, latch, count, publish, SRTP, send
//   ng_commands.cpp    the ng dictionary commands (handle_ng) and the ng socket
//   anchor.cpp         the core's media anchoring (jn_media_desc in, jn_media_desc out)
//   state_codec.cpp    save_state / restore_state (hot reload)
//   stats_view.cpp     query/admin views of sessions and counters
//   rtp_relay.cpp      the Plugin: conf, start, hooks dispatched to the above
//
// Threads and locks (README "Core requests"): sessions are sharded over the core's media loops,
// one mutex per shard. The media loop of shard k takes shard k's lock once per on_udp batch.
// The control thread (ng, timer, admin, events, anchoring, save) owns the session table
// (calls_, a call-id -> shard map) and locks only the shard of the call it touches, one shard at
// a time; sockets are bound before that lock is taken and closed after it is dropped (the ABI
// forbids udp_bind/udp_close/port_bind under a lock a media loop may wait for).
#pragma once

#include "ng.hpp"
#include "relay_conf.hpp"
#include "relay_util.hpp"
#include "sdp_rewrite.hpp"

#include <junction/plugin.hpp>
#include <junction/proto/rtp.hpp>
#include <junction/util/slots.hpp>
#include <junction/webrtc/srtp.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rtp_relay {

// SDES-SRTP goes through the sdk's libsrtp2 wrapper (the one wrapper and init path of the tree).
using junction::webrtc::kSrtpKeyLen;
using junction::webrtc::SrtpSession;
using junction::webrtc::SrtpSuite;
using junction::webrtc::srtp_library_init;
using junction::webrtc::suite_from_name;
using junction::webrtc::suite_name;

using junction::sdk::Host;
using nlohmann::json;
namespace bencode = junction::proto::bencode;
using Value = bencode::Value;
namespace rtp = junction::proto::rtp;

constexpr uint64_t kNgCookie = ~uint64_t{0};
constexpr size_t kSendBatch = 64;
constexpr size_t kMaxStreams = size_t{1} << 22;  // stream ids (per shard) fit 22 bits of the cookie
constexpr size_t kMaxForwards = 16;              // extra endpoints per side

// A counter written by one thread at a time (under its shard's lock) and read by any without a
// lock (metrics, stats): a relaxed load + store, no locked read-modify-write on the media path.
struct Count {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n = 1) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
  void set(uint64_t x) { v.store(x, std::memory_order_relaxed); }
};

struct Side {
  // Written by the control thread only (readable there without the shard lock):
  std::string tag;
  jn_handle rtp = 0, rtcp = 0;
  uint16_t port = 0;  // our RTP port for this side (RTCP = port + 1)
  std::string bus;    // bus stream name
  uint32_t bus_id = 0;
  // Under the shard lock:
  jn_addr sdp_rtp{}, sdp_rtcp{};    // where this side said it receives
  jn_addr peer_rtp{}, peer_rtcp{};  // where we send to it (learned when latching)
  bool latched_rtp = false, latched_rtcp = false;
  bool offered_mux = false;  // its SDP offered a=rtcp-mux
  bool mux = false;          // RTCP to it goes to its RTP port
  bool mux_accept = false;   // rtcp-mux accept/demux flag: accept its mux offer
  Latch latch = Latch::Symmetric;
  std::string answer_proto;  // transport it offered (to restore in the answer to it)
  // SRTP terminated here (this side SRTP, the other plain). in: unprotect from it; out: protect to it.
  bool srtp = false;
  SrtpSuite suite = SrtpSuite::None;
  uint32_t crypto_tag = 1;
  SrtpSession srtp_in, srtp_out;
  std::string out_key;  // our key toward it (raw 30 bytes)
  uint64_t packets = 0, bytes = 0, rtcp_packets = 0, rtcp_bytes = 0, forwarded = 0;
  uint64_t err_malformed = 0, err_source = 0, err_nodest = 0, err_srtp = 0, err_ssrc_flood = 0;
  uint64_t last_ms = 0;
  uint32_t ssrc_window = 0;     // SSRC changes in second ssrc_window_s
  uint64_t ssrc_window_s = 0;
  rtp::ReceiverStats rs;
  // Extra endpoints that get a copy of what this side sends (ng "forward", subscribers): each
  // from a port (pair) of its own, by reference to the same buffer (no copy). The vector changes
  // under the shard lock only; its handles and tags are the control thread's.
  struct Forward {
    jn_handle rtp = 0, rtcp = 0;  // rtcp 0: RTCP goes out of the rtp socket (rtcp-mux forward)
    uint16_t port = 0;
    jn_addr to_rtp{}, to_rtcp{};  // family 0: a subscriber that has not answered yet
    uint64_t packets = 0;
    std::string tag;  // ng subscribe: the subscriber's to-tag ("" for a plain forward)
  };
  std::vector<Forward> forwards;
  uint64_t errors() const { return err_malformed + err_source + err_nodest + err_srtp + err_ssrc_flood; }
};

struct Stream {
  uint32_t id = 0;     // index in its shard's table
  uint32_t gen = 0;    // unique per process lifetime (and across reloads): part of the cookie
  uint32_t shard = 0;  // 0: the control loop; k: media loop k (its sockets, its thread)
  uint32_t index = 0;  // m= line index
  std::string call_id;
  std::string media;
  Side side[2];
};

// Control thread only.
struct Session {
  std::string call_id;
  uint32_t shard = 0;
  uint64_t created_ms = 0, last_signal_ms = 0;
  uint64_t deadline_ms = 0;       // its entry in Relay::deadlines_ (0: none)
  std::vector<uint32_t> streams;  // stream ids in its shard
  bool answered = false;
  std::map<std::string, std::string> sdp_by_tag;  // the last SDP each side sent (for subscribe request)
};

// Media-path counters of one shard.
struct MediaCounters {
  Count rx, forwarded, malformed, source, nodest, srtp, ssrc_flood, stale, payload_copies;
};
// Plain totals (control counters + a snapshot of every shard's).
struct Counters {
  uint64_t rx = 0, forwarded = 0, malformed = 0, source = 0, nodest = 0, srtp = 0, ssrc_flood = 0, stale = 0;
  uint64_t ng_requests = 0, ng_errors = 0, ng_bad = 0, ng_retransmits = 0, timeouts = 0, payload_copies = 0;
};

struct Shard {
  std::mutex mu;
  // Under mu (resized by the control thread, read by the media loop):
  std::vector<std::unique_ptr<Stream>> streams;
  MediaCounters stats;
  // The media loop's, under mu:
  std::vector<jn_send> out;
  std::vector<jn_buf*> copies;
  // Control thread only:
  junction::util::IdPool ids{static_cast<uint32_t>(kMaxStreams)};  // stream ids: free list, then the next new one
  uint32_t live = 0;  // live streams, for placement
  // How often each thread kind took mu (admin cmd/locks): the proof that a control command for
  // one shard's call leaves the other shards alone.
  Count control_locks, media_locks;
};

// One m= line of an offer or answer, whichever way it came (ng SDP or the core's neutral
// description): what the session model needs to know about the side that sent it.
struct MediaInput {
  bool relayable = false;  // port != 0 and an RTP transport
  std::string media;       // "audio", "video", ...
  std::string proto;       // "RTP/AVP", "RTP/SAVP", ...
  uint32_t port = 0;
  std::string ip;          // as given (for the log line when unusable)
  jn_addr rtp{}, rtcp{};   // where the sender receives; family 0 = unusable
  bool rtcp_mux = false;
  uint32_t clock_rate = 0;
  std::vector<std::string> crypto;  // a=crypto values
  bool is_srtp() const { return proto.find("SAVP") != std::string::npos; }
};

struct OfferAnswer {
  bool answer = false;
  std::string call_id, from_tag, to_tag;
  std::string sdp_text;   // remembered per tag (subscribe request); "" for the anchor path
  std::string transport;  // ng transport-protocol: convert to this
  bool mux_demux = false, mux_reject = false, mux_offer = false, mux_accept = false;
  Latch latch = Latch::Symmetric;
};
struct OfferAnswerResult {
  std::string error;  // non-empty: nothing was created (a new call is gone again)
  std::vector<MediaPlan> plans;
  bool created = false;
};

// An RTP/RTCP port pair (or a single port) bound for a stream side or a forward.
struct BoundPorts {
  jn_handle rtp = 0, rtcp = 0;
  uint16_t port = 0;
};

class Relay {
 public:
  Relay(Host host, const RelayConf& conf, uint32_t media_loops);
  ~Relay();
  Host& host() { return host_; }

  // --- ng (ng_commands.cpp) ---
  Value handle_ng(const Value& request, const jn_addr& from);
  void on_ng_datagram(jn_handle sock, const jn_buf* b);

  // --- media path (media_path.cpp) ---
  void on_media(jn_handle sock, uint64_t cookie, const jn_datagram* d, size_t n);

  // --- anchoring (anchor.cpp) ---
  void on_anchor(const jn_anchor_request& req);

  // --- timer, admin, events (rtp_relay.cpp / stats_view.cpp) ---
  void on_tick();
  void on_event(std::string_view topic, std::string_view body);
  void on_admin(const jn_admin_request& req);
  void on_bus(jn_handle sub, jn_buf* b);
  json stats_json() const;
  json locks_json() const;

  // --- hot reload (state_codec.cpp) ---
  jn_status save_state(std::string& out);
  jn_status restore_state(uint32_t schema, std::string_view data);

  jn_status start();
  jn_status setup_ports();

  // --- session model (session_model.cpp) ---
  OfferAnswerResult apply_offer_answer(const OfferAnswer& oa, const std::vector<MediaInput>& in);
  void destroy(const std::string& call_id, const char* why = nullptr);
  void announce(const std::string& call_id);
  Session* find(std::string_view call_id);
  // The shard lock for a control hook. Counted; the last one dropped closes released sockets.
  class ShardLock {
   public:
    ShardLock(Relay& r, uint32_t shard);
    ~ShardLock();
    ShardLock(const ShardLock&) = delete;
    ShardLock& operator=(const ShardLock&) = delete;

   private:
    Relay& r_;
    Shard& sh_;
  };
  Stream* stream(const Session& s, size_t k) const { return shards_[s.shard]->streams[s.streams[k]].get(); }

  // --- ports (port_alloc.cpp); never under a shard lock ---
  bool bind_ports(uint32_t shard, uint64_t cookie, bool pair, BoundPorts& out);
  void close_ports(const BoundPorts& p);
  void release_forward(Side::Forward& f);  // its sockets are closed after the lock is dropped
  void release_side(Side& s);

  // --- views (stats_view.cpp), under the session's shard lock ---
  Value session_stats(const Session& sess) const;
  Value side_stats(const Side& s, uint64_t now) const;
  Counters totals() const;

 private:
  friend class ShardLock;

  uint32_t place() const;
  std::unique_ptr<Stream> prepare_stream(uint32_t shard, uint32_t index, const std::string& media, std::string& error);
  void discard_prepared(std::unique_ptr<Stream> st);
  void insert_stream(Session& sess, std::unique_ptr<Stream> st);
  void schedule(Session& sess, uint64_t at);
  void unschedule(Session& sess);
  void expire_due(uint64_t now);
  void close_released();
  void relay_one(Shard& sh, Side& in, Side& out, bool rtcp_sock, jn_buf* b);
  jn_buf* writable(Shard& sh, jn_buf* b);
  jn_buf* copy_of(Shard& sh, jn_buf* b);
  void flush(Shard& sh);
  void report_metrics();

 public:
  // Conf.
  std::string ng_listen_, interface_, advertise_, control_topic_, port_range_;
  sdp::Connection adv_;
  bool legacy_ports_ = false;  // port_min/port_max (deprecated) instead of the core's range
  bool port_range_set_ = false;
  int port_min_ = 30000, port_max_ = 39999;
  Latch latch_ = Latch::Symmetric;
  uint64_t timeout_ms_ = 60000;
  bool publish_ = true;
  uint32_t ssrc_limit_ = 8;
  uint32_t rcvbuf_ = 256 * 1024;
  uint32_t max_sessions_ = 20000;

  jn_handle ng_sock_ = 0, timer_ = 0;
  std::map<std::string, Session> calls_;
  uint32_t gen_counter_ = 0;
  std::vector<uint8_t> port_used_;  // legacy range only
  size_t port_cursor_ = 0;
  uint32_t loops_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;
  int locks_held_ = 0;                // ShardLocks alive on the control thread (0 or 1)
  std::vector<jn_handle> to_close_;   // sockets to close once the shard lock is dropped
  std::vector<uint32_t> to_release_;  // bus ids likewise
  std::set<std::pair<uint64_t, std::string>> deadlines_;  // (silence deadline, call-id)
  struct CachedReply {
    std::string reply;
  };
  std::unordered_map<std::string, CachedReply> reply_cache_;
  std::deque<std::pair<std::string, uint64_t>> cache_order_;
  Counters stats_, reported_;  // stats_: the control thread's counters (ng, timeouts)
  uint64_t ice_unsupported_ = 0, reloads_ = 0, deadline_checks_ = 0;
  // Anchored calls: which streams of the core's media description are the session's m= lines.
  std::map<std::string, std::vector<uint32_t>> anchor_pos_;
  struct {
    uint64_t offers = 0, answers = 0, deletes = 0, errors = 0;
  } anchor_stats_;
  struct Tap {
    std::string stream;
    bool hold = false;
    uint64_t packets = 0, rtcp = 0, bytes = 0;
    jn_buf* held = nullptr;
  };
  std::map<jn_handle, Tap> taps_;

 private:
  Host host_;
};

// JSON <-> bencode (events and admin commands carry ng dictionaries as JSON).
Value value_from_json(const json& j, int depth = 0);
json value_to_json(const Value& v);

// The ng command handling without the socket: a request dictionary in, the reply dictionary
// out (also errors). What a fuzz target drives.
inline Value handle_ng(Relay& relay, const Value& request, const jn_addr& from = jn_addr{}) { return relay.handle_ng(request, from); }

}  // namespace rtp_relay
