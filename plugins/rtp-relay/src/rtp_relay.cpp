// rtp-relay: the media plane. An RTP/RTCP relay driven through the rtpengine "ng" protocol (so
// Kamailio's rtpengine module works unchanged), through application events from other plugins,
// and through admin commands. See ../README.md for the design and the conf keys.
#include "ng.hpp"
#include "relay_conf.hpp"
#include "relay_util.hpp"
#include "sdp_rewrite.hpp"
#include "srtp_session.hpp"

#include <junction/plugin.hpp>
#include <junction/proto/rtp.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace rtp_relay {
namespace {

using junction::sdk::Host;
using junction::sdk::to_sv;
using nlohmann::json;
namespace bencode = junction::proto::bencode;
using Value = bencode::Value;
namespace rtp = junction::proto::rtp;

constexpr uint64_t kNgCookie = ~uint64_t{0};
constexpr size_t kSendBatch = 64;

// --- JSON <-> bencode (events and admin commands carry ng dictionaries as JSON) ----------------
Value value_from_json(const json& j, int depth = 0) {
  if (depth > 8) return Value::string("");
  if (j.is_object()) {
    Value d = Value::dict();
    for (auto& [k, v] : j.items()) d.set(k, value_from_json(v, depth + 1));
    return d;
  }
  if (j.is_array()) {
    Value l = Value::list();
    for (auto& v : j) l.push(value_from_json(v, depth + 1));
    return l;
  }
  if (j.is_number_integer() || j.is_number_unsigned()) return Value::integer(j.get<int64_t>());
  if (j.is_string()) return Value::string(j.get<std::string>());
  if (j.is_boolean()) return Value::string(j.get<bool>() ? "yes" : "no");
  return Value::string(j.dump());
}
json value_to_json(const Value& v) {
  switch (v.type()) {
    case Value::Type::Int: return v.as_int();
    case Value::Type::Str: return v.as_str();
    case Value::Type::List: {
      json a = json::array();
      for (auto& x : v.as_list()) a.push_back(value_to_json(x));
      return a;
    }
    case Value::Type::Dict: {
      json o = json::object();
      for (auto& [k, x] : v.as_dict()) o[k] = value_to_json(x);
      return o;
    }
  }
  return nullptr;
}

// --- sessions ----------------------------------------------------------------------------------
struct Side {
  std::string tag;
  jn_handle rtp = 0, rtcp = 0;
  uint16_t port = 0;               // our RTP port for this side (RTCP = port + 1)
  jn_addr sdp_rtp{}, sdp_rtcp{};   // where this side said it receives
  jn_addr peer_rtp{}, peer_rtcp{}; // where we send to it (learned when latching)
  bool latched_rtp = false, latched_rtcp = false;
  bool offered_mux = false;        // its SDP offered a=rtcp-mux
  bool mux = false;                // RTCP to it goes to its RTP port
  bool mux_accept = false;         // rtcp-mux accept/demux flag: accept its mux offer
  Latch latch = Latch::Symmetric;
  std::string answer_proto;        // transport it offered (to restore in the answer to it)
  // SRTP terminated here (this side SRTP, the other plain). in: unprotect from it; out: protect to it.
  bool srtp = false;
  SrtpSuite suite = SrtpSuite::None;
  uint32_t crypto_tag = 1;
  SrtpSession srtp_in, srtp_out;
  std::string out_key;             // our key toward it (raw 30 bytes)
  // stats
  uint64_t packets = 0, bytes = 0, rtcp_packets = 0, rtcp_bytes = 0, forwarded = 0;
  uint64_t err_malformed = 0, err_source = 0, err_nodest = 0, err_srtp = 0, err_ssrc_flood = 0;
  uint64_t last_ms = 0;
  uint32_t ssrc_window = 0;  // SSRC changes in the current second
  rtp::ReceiverStats rs;
  // Extra endpoints that get a copy of what this side sends (ng "forward"): each from a port
  // pair of its own, by reference to the same buffer (no copy).
  struct Forward {
    jn_handle rtp = 0, rtcp = 0;
    uint16_t port = 0;          // our source port (RTCP from port + 1)
    jn_addr to_rtp{}, to_rtcp{};  // family 0: a subscriber that has not answered yet
    uint64_t packets = 0;
    std::string tag;            // ng subscribe: the subscriber's to-tag ("" for a plain forward)
  };
  std::vector<Forward> forwards;
  std::string bus;           // bus stream name
  uint32_t bus_id = 0;       // its interned id (0: publish by name, an older core)
  uint64_t errors() const { return err_malformed + err_source + err_nodest + err_srtp + err_ssrc_flood; }
};

struct Stream {
  uint32_t id = 0;
  uint32_t gen = 0;
  uint32_t shard = 0;  // 0: the control loop; k: media loop k (its sockets, its thread)
  uint32_t index = 0;  // m= line index
  std::string call_id;
  std::string media;
  Side side[2];
};

struct Session {
  std::string call_id;
  uint64_t created_ms = 0, last_signal_ms = 0;
  std::vector<uint32_t> streams;
  bool answered = false;
  std::map<std::string, std::string> sdp_by_tag;  // the last SDP each side sent (for subscribe request)
};

struct Counters {
  uint64_t rx = 0, forwarded = 0, malformed = 0, source = 0, nodest = 0, srtp = 0, ssrc_flood = 0, stale = 0;
  uint64_t ng_requests = 0, ng_errors = 0, ng_bad = 0, ng_retransmits = 0, timeouts = 0, payload_copies = 0;
  void add(const Counters& o) {
    rx += o.rx, forwarded += o.forwarded, malformed += o.malformed, source += o.source, nodest += o.nodest, srtp += o.srtp;
    ssrc_flood += o.ssrc_flood, stale += o.stale, ng_requests += o.ng_requests, ng_errors += o.ng_errors, ng_bad += o.ng_bad;
    ng_retransmits += o.ng_retransmits, timeouts += o.timeouts, payload_copies += o.payload_copies;
  }
};

// Sessions are sharded over the core's media loops (one shard per loop; shard 0 = the control
// loop, used when the core runs none). A shard's lock is taken by its loop once per on_udp
// batch; control hooks (ng, timer, admin, anchor, save) take every shard's lock, in order, for
// the whole hook (a few µs; control traffic is rare next to media). Sockets are closed only
// after the locks are dropped: udp_close waits for the socket's loop to finish its batch, which
// may be waiting for a lock we hold.
struct Shard {
  std::mutex mu;
  Counters stats;              // media-path counters of this shard's streams
  std::vector<jn_send> out;    // this loop's send batch
  std::vector<jn_buf*> copies;
  uint32_t streams = 0;        // live streams, for placement
};

class RtpRelay : public junction::sdk::Plugin {
 public:
  RtpRelay(Host host, const jn_create_args&) : Plugin(host) {
    RelayConf conf;
    if (auto err = parse_conf(host.config(), conf)) {
      host.config_error(err->key, err->reason);
      throw std::invalid_argument(err->key + ": " + err->reason);
    }
    ng_listen_ = conf.ng_listen;
    interface_ = conf.interface;
    advertise_ = conf.advertise;
    port_min_ = conf.port_min;
    port_max_ = conf.port_max;
    latch_ = conf.latch;
    timeout_ms_ = conf.timeout_s * 1000;
    publish_ = conf.publish;
    ssrc_limit_ = conf.ssrc_change_limit;
    rcvbuf_ = conf.rcvbuf;
    max_sessions_ = conf.max_sessions;
    control_topic_ = conf.control_topic;
    jn_addr probe;
    make_addr(advertise_, 0, probe);  // checked by parse_conf
    adv_ = sdp::Connection{"IN", probe.family == 6 ? "IP6" : "IP4", advertise_};
    port_used_.assign(static_cast<size_t>((port_max_ - port_min_ + 1) / 2), 0);
    if (!srtp_library_init()) throw std::runtime_error("libsrtp2 init failed");
    // One shard per media loop the core runs (fixed for the process), or just the control loop.
    loops_ = host.media_loops();
    if (loops_ > 255) loops_ = 255;  // the shard travels in 8 bits of the socket cookie
    for (uint32_t i = 0; i <= loops_; ++i) {
      shards_.push_back(std::make_unique<Shard>());
      shards_.back()->out.reserve(kSendBatch);
    }
  }

  // Every shard's lock, for a control hook; sockets released meanwhile are closed after.
  // Re-entrant (control thread only): a hook may run inside another (an event this plugin
  // publishes and also subscribes to is delivered synchronously).
  class ControlLock {
   public:
    explicit ControlLock(RtpRelay& r) : r_(r) {
      if (r_.control_depth_++ == 0)
        for (auto& sh : r_.shards_) sh->mu.lock();
    }
    ~ControlLock() {
      if (--r_.control_depth_ != 0) return;
      for (auto it = r_.shards_.rbegin(); it != r_.shards_.rend(); ++it) (*it)->mu.unlock();
      r_.close_released();
    }
    ControlLock(const ControlLock&) = delete;
    ControlLock& operator=(const ControlLock&) = delete;

   private:
    RtpRelay& r_;
  };
  void close_released() {
    auto socks = std::move(to_close_);
    to_close_.clear();
    for (jn_handle h : socks) host().api()->udp_close(host().ctx(), h);
    auto ids = std::move(to_release_);
    to_release_.clear();
    for (uint32_t id : ids) host().bus_release_id(id);
  }
  Counters totals() const {
    Counters t = stats_;
    for (auto& sh : shards_) t.add(sh->stats);
    return t;
  }

  ~RtpRelay() override {
    for (auto& [h, t] : taps_)
      if (t.held) host().buf_unref(t.held);
  }

  jn_status start() override {
    if (!ng_listen_.empty()) {
      jn_status st = host().udp_bind(ng_listen_, kNgCookie, &ng_sock_, 65535);
      if (st != JN_OK) return st;
    }
    jn_status st = host().timer(1000, 1000, 0, &timer_);
    if (st != JN_OK) return st;
    if (!control_topic_.empty()) host().event_subscribe(control_topic_);
    host().info("rtp-relay: ng on " + (ng_listen_.empty() ? std::string("(off)") : ng_listen_) + ", media " + interface_ +
                " ports " + std::to_string(port_min_) + "-" + std::to_string(port_max_));
    return JN_OK;
  }

  // ------------------------------------------------------------------------------------------
  // Media path
  // Socket cookie: gen << 32 | shard << 24 | stream id << 2 | side << 1 | rtcp (ids < 2^22).
  void on_udp(jn_handle sock, uint64_t cookie, const jn_datagram* d, size_t n) override {
    if (cookie == kNgCookie) {
      ControlLock lock(*this);
      for (size_t i = 0; i < n; ++i) on_ng(sock, d[i].buf);
      return;
    }
    uint32_t shard = static_cast<uint32_t>(cookie >> 24) & 0xff;
    if (shard >= shards_.size()) return;  // a socket of a shard this process does not run
    Shard& sh = *shards_[shard];
    std::lock_guard<std::mutex> lock(sh.mu);
    uint32_t id = static_cast<uint32_t>(cookie >> 2) & 0x3fffff;
    uint32_t gen = static_cast<uint32_t>(cookie >> 32);
    Stream* st = id < streams_.size() ? streams_[id].get() : nullptr;
    if (!st || st->gen != gen) {
      sh.stats.stale += n;
      return;
    }
    int s = static_cast<int>((cookie >> 1) & 1);
    bool rtcp_sock = (cookie & 1) != 0;
    Side& in = st->side[s];
    Side& out = st->side[1 - s];
    uint64_t now = host().now_ms();
    in.last_ms = now;
    for (size_t i = 0; i < n; ++i) relay_one(sh, in, out, rtcp_sock, d[i].buf);
    flush(sh);
  }

  void relay_one(Shard& sh, Side& in, Side& out, bool rtcp_sock, jn_buf* b) {
    Counters& stats_ = sh.stats;  // this loop's counters (shadowing the control ones on purpose)
    ++stats_.rx;
    bool is_rtcp = rtcp_sock || rtp::looks_like_rtcp(b->data, b->len);
    // 1. SRTP terminated here: authenticate and decrypt in place (sole owner needed).
    if (in.srtp && in.srtp_in.valid()) {
      if (b->len < 12 || (b->data[0] >> 6) != 2) return drop(in.err_malformed, stats_.malformed);
      jn_buf* w = writable(sh, b);
      if (!w) return drop(in.err_srtp, stats_.srtp);
      b = w;
      uint32_t len = b->len;
      if (!in.srtp_in.unprotect(b->data, len, is_rtcp)) return drop(in.err_srtp, stats_.srtp);
      b->len = len;
    }
    // 2. Validate.
    rtp::Header h;
    if (is_rtcp) {
      rtp::RtcpInfo ri;
      if (rtp::parse_rtcp(b->data, b->len, ri, 0) != rtp::Error::None) return drop(in.err_malformed, stats_.malformed);
    } else if (rtp::parse(b->data, b->len, h) != rtp::Error::None) {
      return drop(in.err_malformed, stats_.malformed);
    }
    // 3. Source: latch the first, then hold on to it (or require the SDP address).
    bool on_rtcp_port = rtcp_sock;
    jn_addr& peer = on_rtcp_port ? in.peer_rtcp : in.peer_rtp;
    bool& latched = on_rtcp_port ? in.latched_rtcp : in.latched_rtp;
    switch (in.latch) {
      case Latch::Symmetric:
        if (!latched) {
          peer = b->src;
          latched = true;
          if (!on_rtcp_port && !in.latched_rtcp && in.mux) in.peer_rtcp = b->src;
        } else if (!addr_eq(peer, b->src)) {
          return drop(in.err_source, stats_.source);
        }
        break;
      case Latch::Strict:
        if (!addr_eq(on_rtcp_port ? in.sdp_rtcp : in.sdp_rtp, b->src)) return drop(in.err_source, stats_.source);
        break;
      case Latch::Off: break;
    }
    // 4. Stats (and SSRC flood control: many new SSRCs per second are dropped, not tracked).
    if (is_rtcp) {
      ++in.rtcp_packets;
      in.rtcp_bytes += b->len;
      b->flags |= JN_BUF_RTCP;
    } else {
      if (in.rs.received() && h.ssrc != in.rs.ssrc() && ++in.ssrc_window > ssrc_limit_)
        return drop(in.err_ssrc_flood, stats_.ssrc_flood);
      ++in.packets;
      in.bytes += b->len;
      in.rs.update(h.seq, h.ssrc, h.timestamp, b->rx_ns);
    }
    // 5. Publish the plain packet on the bus (by reference).
    if (publish_) {
      if (in.bus_id) host().bus_publish_id(in.bus_id, b);
      else host().bus_publish(in.bus, b);
    }
    // 6. Extra endpoints get the plain packet (the same buffer: sent by reference).
    for (auto& f : in.forwards) {
      const jn_addr& fto = is_rtcp ? f.to_rtcp : f.to_rtp;
      if (!fto.family) continue;  // a subscriber still to answer, or one without an RTCP address
      jn_send& fo = sh.out.emplace_back();
      fo = jn_send{};
      fo.sock = is_rtcp ? f.rtcp : f.rtp;
      fo.to = fto;
      fo.buf = b;
      ++f.packets;
    }
    if (sh.out.size() >= kSendBatch) flush(sh);
    // 7. Destination.
    jn_handle sock;
    const jn_addr* to;
    if (is_rtcp && !out.mux) {
      sock = out.rtcp;
      to = &out.peer_rtcp;
    } else {
      sock = out.rtp;
      to = &out.peer_rtp;
    }
    if (!to->family || !sock) return drop(in.err_nodest, stats_.nodest);
    if (out.srtp) {
      // Never plain toward an SRTP side: without a protect context yet (before the answer) the
      // packet is dropped.
      if (!out.srtp_out.valid()) return drop(in.err_srtp, stats_.srtp);
      // Protect in place when nobody else holds the buffer; a bus subscriber that kept a
      // reference makes it shared, and then (only then) the packet is copied.
      // Forwarded copies of this packet are still queued: they must stay plain.
      jn_buf* w = in.forwards.empty() ? writable(sh, b) : copy_of(sh, b);
      // No room for the auth tag (a near-MTU packet; or, today, every received buffer: the
      // core's receive path does not report its tailroom, see README): a counted copy has it.
      if (w && w->tailroom < SRTP_MAX_TRAILER_LEN) w = copy_of(sh, w);
      if (!w || w->tailroom < SRTP_MAX_TRAILER_LEN) return drop(in.err_srtp, stats_.srtp);
      b = w;
      uint32_t len = b->len;
      if (!out.srtp_out.protect(b->data, len, is_rtcp)) return drop(in.err_srtp, stats_.srtp);
      b->tailroom -= len - b->len;
      b->len = len;
    }
    jn_send& o = sh.out.emplace_back();
    o = jn_send{};
    o.sock = sock;
    o.to = *to;
    o.buf = b;
    ++in.forwarded;
    ++stats_.forwarded;
    if (sh.out.size() == kSendBatch) flush(sh);
  }

  // The buffer itself when this plugin is its only holder, else a counted private copy.
  jn_buf* writable(Shard& sh, jn_buf* b) {
    if (!host().buf_is_shared(b)) return b;
    return copy_of(sh, b);
  }
  jn_buf* copy_of(Shard& sh, jn_buf* b) {
    jn_buf* c = host().api()->buf_copy(host().ctx(), b);
    if (!c) return nullptr;
    ++sh.stats.payload_copies;
    sh.copies.push_back(c);
    return c;
  }
  void drop(uint64_t& side_counter, uint64_t& total) {
    ++side_counter;
    ++total;
  }
  void flush(Shard& sh) {
    if (!sh.out.empty()) host().udp_send(sh.out.data(), sh.out.size());
    sh.out.clear();
    for (auto* c : sh.copies) host().buf_unref(c);
    sh.copies.clear();
  }

  // ------------------------------------------------------------------------------------------
  // ng control
  void on_ng(jn_handle sock, const jn_buf* b) {
    ++stats_.ng_requests;
    std::string_view dgram(reinterpret_cast<const char*>(b->data), b->len);
    auto pr = ng::parse(dgram);
    if (!pr.have_cookie) {
      ++stats_.ng_bad;
      host().warn("ng: dropped datagram from " + addr_str(b->src) + ": " + log_escape(pr.error));
      return;
    }
    // A retransmission (same cookie from the same peer) gets the cached reply, not a redo.
    std::string key = pr.msg.cookie + "|" + addr_str(b->src);
    if (auto it = reply_cache_.find(key); it != reply_cache_.end()) {
      ++stats_.ng_retransmits;
      host().udp_send(sock, b->src, it->second.reply);
      return;
    }
    if (host().enabled(JN_LOG_DEBUG)) host().debug("rtp-relay: ng request from " + addr_str(b->src) + ": " + log_escape(dgram, 4000));
    Value reply;
    if (!pr.ok) {
      ++stats_.ng_bad;
      host().warn("ng: " + log_escape(pr.error) + " (from " + addr_str(b->src) + ")");
      reply = ng::error_reply(pr.error);
    } else {
      reply = handle(pr.msg.dict, b->src);
    }
    std::string out = ng::format(pr.msg.cookie, reply);
    host().udp_send(sock, b->src, out);
    remember(key, out);
  }

  void remember(const std::string& key, const std::string& reply) {
    uint64_t now = host().now_ms();
    while (!cache_order_.empty() && (cache_order_.size() >= 4096 || now - cache_order_.front().second > 30000)) {
      reply_cache_.erase(cache_order_.front().first);
      cache_order_.pop_front();
    }
    if (reply_cache_.emplace(key, CachedReply{reply}).second) cache_order_.emplace_back(key, now);
  }

  Value handle(const Value& d, const jn_addr& from) {
    auto cmd = d.get_str("command");
    Value r;
    if (cmd && *cmd == "ping") host().info("rtp-relay: ng ping from " + addr_str(from));
    else if (cmd && (*cmd == "offer" || *cmd == "answer" || *cmd == "delete"))
      host().info("rtp-relay: ng " + std::string(*cmd) + " call-id '" + log_escape(d.get_str("call-id").value_or("")) + "' from " +
                  addr_str(from));
    auto ng_call = d.get_str("call-id");
    if (!cmd) r = ng::error_reply("No command given");
    else if (ng_call && *cmd != "query" && anchor_pos_.count(std::string(*ng_call)))
      // The core's anchored calls and ng clients' calls share the session table; an ng client
      // may read an anchored call but never change it.
      r = ng::error_reply("call-id belongs to a call the core anchors");
    else if (*cmd == "ping") {
      r = Value::dict();
      r.set("result", "pong");
    } else if (*cmd == "offer") r = offer_answer(d, false, from);
    else if (*cmd == "answer") r = offer_answer(d, true, from);
    else if (*cmd == "delete") r = cmd_delete(d);
    else if (*cmd == "query") r = cmd_query(d);
    else if (*cmd == "list") r = cmd_list(d);
    else if (*cmd == "forward") r = cmd_forward(d, true);
    else if (*cmd == "subscribe request") r = cmd_subscribe_request(d);
    else if (*cmd == "subscribe answer") r = cmd_subscribe_answer(d);
    else if (*cmd == "unsubscribe") r = cmd_unsubscribe(d);
    else if (*cmd == "unforward") r = cmd_forward(d, false);
    else r = ng::error_reply("Unrecognized command '" + std::string(*cmd) + "'");
    if (auto res = r.get_str("result"); res && *res == "error") {
      ++stats_.ng_errors;
      host().info("ng " + log_escape(cmd.value_or("?"), 64) + " call-id '" + log_escape(d.get_str("call-id").value_or("")) +
                  "': " + log_escape(r.get_str("error-reason").value_or(""), 512));
    }
    return r;
  }

  static bool flag(const Value& d, std::string_view f) { return ng::has_item(d, "flags", f); }

  Value offer_answer(const Value& d, bool answer, const jn_addr& from) {
    auto call_id = d.get_str("call-id");
    auto from_tag = d.get_str("from-tag");
    auto to_tag = d.get_str("to-tag");
    auto sdp_text = d.get_str("sdp");
    if (!call_id || call_id->empty()) return ng::error_reply("No call-id in message");
    if (!from_tag || from_tag->empty()) return ng::error_reply("No from-tag in message");
    if (!sdp_text) return ng::error_reply("No SDP body in message");
    if (answer && (!to_tag || to_tag->empty())) return ng::error_reply("No to-tag in message");
    auto parsed = sdp::parse(*sdp_text);
    if (!parsed) return ng::error_reply("Failed to parse SDP: " + parsed.error + " (line " + std::to_string(parsed.line) + ")");
    sdp::Session& sd = *parsed.session;

    auto it = calls_.find(std::string(*call_id));
    if (answer && it == calls_.end()) return ng::error_reply("Unknown call-id");
    bool created = false;
    if (it == calls_.end()) {
      if (calls_.size() >= max_sessions_) return ng::error_reply("Session limit reached");
      Session s;
      s.call_id = std::string(*call_id);
      s.created_ms = host().now_ms();
      it = calls_.emplace(s.call_id, std::move(s)).first;
      created = true;
    }
    Session& sess = it->second;
    sess.last_signal_ms = host().now_ms();
    sess.sdp_by_tag[std::string(answer ? *to_tag : *from_tag)] = std::string(*sdp_text);

    // Which side sent this SDP: the offerer's from-tag, the answerer's to-tag.
    std::string_view sender_tag = answer ? *to_tag : *from_tag;
    int S = -1;
    if (!sess.streams.empty()) {
      Stream& s0 = *streams_[sess.streams[0]];
      if (s0.side[0].tag == sender_tag) S = 0;
      else if (s0.side[1].tag == sender_tag) S = 1;
      else if (answer) S = (s0.side[0].tag == *from_tag) ? 1 : (s0.side[1].tag == *from_tag ? 0 : 1);
      else S = 0;
    } else {
      S = answer ? 1 : 0;
    }
    int R = 1 - S;

    std::string transport(d.get_str("transport-protocol").value_or(""));
    for (const char* t : {"RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF"})
      if (flag(d, t)) transport = t;
    bool mux_demux = ng::has_item(d, "rtcp-mux", "demux");
    bool mux_reject = ng::has_item(d, "rtcp-mux", "reject");
    bool mux_offer = ng::has_item(d, "rtcp-mux", "offer");
    bool mux_accept = ng::has_item(d, "rtcp-mux", "accept") || mux_demux;
    std::string ice(d.get_str("ICE").value_or("remove"));
    if (ice != "remove") ++ice_unsupported_;
    Latch latch = latch_;
    if (flag(d, "asymmetric")) latch = Latch::Off;
    if (flag(d, "strict-source")) latch = Latch::Strict;
    std::string src_ip;
    if (flag(d, "SIP-source-address")) {
      const Value* rf = d.find("received-from");
      if (rf && rf->is_list() && rf->as_list().size() == 2 && rf->as_list()[1].is_str()) src_ip = rf->as_list()[1].as_str();
      else src_ip = addr_ip(from);
    }

    std::vector<MediaPlan> plans(sd.media.size());
    std::string error;
    for (size_t i = 0; i < sd.media.size() && error.empty(); ++i) {
      sdp::Media& m = sd.media[i];
      MediaPlan& p = plans[i];
      if (m.port == 0 || !m.is_rtp()) continue;  // rejected or not RTP: left alone
      Stream* st = nullptr;
      if (i < sess.streams.size()) {
        st = streams_[sess.streams[i]].get();
      } else if (answer) {
        continue;  // the answer has more m= lines than the offer: not relayed
      } else {
        st = new_stream(sess, static_cast<uint32_t>(i), m.media);
        if (!st) {
          error = "Ran out of ports";
          break;
        }
      }
      Side& snd = st->side[S];
      Side& oth = st->side[R];
      snd.tag = std::string(sender_tag);
      if (!answer && to_tag && !to_tag->empty() && oth.tag.empty()) oth.tag = std::string(*to_tag);
      snd.latch = latch;
      // Where the sender receives.
      auto conn = sd.media_connection(m);
      std::string ip = !src_ip.empty() ? src_ip : (conn ? conn->address : std::string());
      RecvAddrs ra = sdp_receive_addrs(ip, m.port, m, src_ip.empty());
      const jn_addr& a_rtp = ra.rtp;
      const jn_addr& a_rtcp = ra.rtcp;
      if (!a_rtp.family || !a_rtcp.family)
        host().info("rtp-relay: call '" + log_escape(sess.call_id) + "' m=" + std::to_string(i) + ": " +
                    (!a_rtp.family ? "no usable RTP address in the SDP ('" + log_escape(ip, 64) + "' port " + std::to_string(m.port) + ")"
                                   : "no usable RTCP address in the SDP (RTP port " + std::to_string(m.port) + ")") +
                    ", nothing is sent there until the side's own packets latch an address");
      bool changed = !addr_eq(a_rtp, snd.sdp_rtp) || !addr_eq(a_rtcp, snd.sdp_rtcp);
      snd.sdp_rtp = a_rtp;
      snd.sdp_rtcp = a_rtcp;
      if (changed || !snd.latched_rtp) {
        snd.peer_rtp = a_rtp;
        snd.latched_rtp = false;
      }
      if (changed || !snd.latched_rtcp) {
        snd.peer_rtcp = a_rtcp;
        snd.latched_rtcp = false;
      }
      if (uint32_t cr = clock_rate_of(m)) snd.rs.set_clock_rate(cr);
      p.relay = true;
      p.port = oth.port;
      p.is_answer = answer;

      if (!answer) {
        snd.offered_mux = m.rtcp_mux();
        snd.mux_accept = mux_accept;
        p.mux = mux_offer || (snd.offered_mux && !mux_demux && !mux_reject);
        // Transport conversion.
        bool snd_srtp = m.is_srtp();
        snd.answer_proto.clear();
        if (!transport.empty() && transport != m.proto) {
          snd.answer_proto = m.proto;
          p.proto = transport;
          bool want_srtp = transport.find("SAVP") != std::string::npos;
          if (snd_srtp && !want_srtp) {
            // SRTP offerer, plain recipient: use the offerer's key to decrypt what it sends.
            if (!adopt_crypto(m, snd, true)) {
              error = "No supported SDES crypto suite in SRTP offer (AES_CM_128_HMAC_SHA1_80/32)";
              break;
            }
            snd.srtp = true;
            oth.srtp = false;
            p.strip_crypto = true;
          } else if (!snd_srtp && want_srtp) {
            // Plain offerer, SRTP recipient: offer our key; its answer brings its key.
            snd.srtp = false;
            oth.srtp = true;
            oth.suite = SrtpSuite::AesCm128Sha1_80;
            oth.crypto_tag = 1;
            if (const char* why = make_out_key(oth)) {
              error = why;
              break;
            }
            p.strip_crypto = true;
            p.crypto = "1 AES_CM_128_HMAC_SHA1_80 inline:" +
                       sdp::base64_encode(reinterpret_cast<const uint8_t*>(oth.out_key.data()), oth.out_key.size());
          } else {
            snd.srtp = oth.srtp = false;
          }
        } else if (transport.empty()) {
          snd.srtp = oth.srtp = false;
        }
      } else {
        // Answer from S to the offerer R.
        Side& off = oth;
        snd.mux = m.rtcp_mux();
        p.mux = off.offered_mux && (snd.mux || off.mux_accept || mux_accept);
        off.mux = p.mux;
        if (!off.answer_proto.empty()) p.proto = off.answer_proto;
        if (off.srtp) {
          if (const char* why = make_out_key(off)) {
            error = why;
            break;
          }
          p.strip_crypto = true;
          p.crypto = std::to_string(off.crypto_tag) + " " + suite_name(off.suite) + " inline:" +
                     sdp::base64_encode(reinterpret_cast<const uint8_t*>(off.out_key.data()), off.out_key.size());
        } else if (snd.srtp) {
          if (!adopt_crypto(m, snd, false)) {
            error = "No supported SDES crypto in SRTP answer";
            break;
          }
          p.strip_crypto = true;
        }
        sess.answered = true;
      }
    }
    if (!error.empty()) {
      if (created) destroy(sess.call_id);
      return ng::error_reply(error);
    }
    RewriteOptions ro;
    ro.addr = adv_;
    ro.replace_origin = ng::has_item(d, "replace", "origin");
    ro.remove_ice = true;
    rewrite_sdp(sd, ro, plans);
    Value r = Value::dict();
    r.set("result", "ok");
    r.set("sdp", sdp::serialize(sd));
    if (created) announce(sess);
    return r;
  }

  // A session's streams share one shard: the least loaded media loop at its first stream.
  uint32_t place(const Session& sess) const {
    if (!sess.streams.empty() && streams_[sess.streams[0]]) return streams_[sess.streams[0]]->shard;
    if (loops_ == 0) return 0;
    uint32_t best = 1;
    for (uint32_t k = 2; k <= loops_; ++k)
      if (shards_[k]->streams < shards_[best]->streams) best = k;
    return best;
  }

  Stream* new_stream(Session& sess, uint32_t index, const std::string& media) {
    uint32_t id;
    if (free_ids_.empty() && streams_.size() >= kMaxStreams) return nullptr;
    if (!free_ids_.empty()) {
      id = free_ids_.back();
      free_ids_.pop_back();
    } else {
      id = static_cast<uint32_t>(streams_.size());
      streams_.emplace_back();
    }
    auto st = std::make_unique<Stream>();
    st->id = id;
    st->gen = ++gen_counter_;
    st->shard = place(sess);
    st->index = index;
    st->call_id = sess.call_id;
    st->media = media;
    for (int s = 0; s < 2; ++s) {
      if (!alloc_ports(*st, s)) {
        for (int k = 0; k < s; ++k) release_ports(st->side[k]);
        free_ids_.push_back(id);
        return nullptr;
      }
      st->side[s].bus = "rtp-relay/" + std::to_string(id) + "-" + std::to_string(st->gen) + "/" + (s ? "b" : "a");
      if (publish_ && host().bus_intern(st->side[s].bus, &st->side[s].bus_id) != JN_OK) st->side[s].bus_id = 0;
    }
    ++shards_[st->shard]->streams;
    streams_[id] = std::move(st);
    sess.streams.push_back(id);
    return streams_[id].get();
  }

  // Takes the first supported a=crypto line of a side's SDP as the key that side sends with (our
  // inbound SRTP context for it). On an offer the suite and tag are remembered for the answer.
  static bool adopt_crypto(const sdp::Media& m, Side& side, bool remember_suite) {
    for (auto v : m.attrs("crypto")) {
      auto c = sdp::parse_crypto(v);
      if (!c) continue;
      SrtpSuite su = suite_from_name(c->suite);
      auto key = sdp::base64_decode(c->key_b64);
      if (su == SrtpSuite::None || !key || key->size() != kSrtpKeyLen) continue;
      if (!side.srtp_in.valid() || side.srtp_in.key() != *key) side.srtp_in.create(su, *key, true);
      if (remember_suite) {
        side.suite = su;
        side.crypto_tag = c->tag;
      }
      return side.srtp_in.valid();
    }
    return false;
  }

  // Our SRTP key toward a side (kept across re-offers) and its protect context. The key comes
  // from OpenSSL's CSPRNG; without one the offer/answer is refused, never sent with a weak key.
  static const char* make_out_key(Side& side) {
    if (side.out_key.empty() && !random_bytes(kSrtpKeyLen, side.out_key)) return "Cannot generate an SRTP key (no randomness available)";
    if (!side.srtp_out.valid() && !side.srtp_out.create(side.suite, side.out_key, false)) return "Cannot create the SRTP context";
    return nullptr;
  }

  bool alloc_ports(Stream& st, int s) {
    Side& side = st.side[s];
    uint64_t base = (static_cast<uint64_t>(st.gen) << 32) | (static_cast<uint64_t>(st.shard) << 24) | (static_cast<uint64_t>(st.id) << 2) |
                    (static_cast<uint64_t>(s) << 1);
    return alloc_pair(st.shard, base, side.rtp, side.rtcp, side.port);
  }
  // An even/odd port pair from the range, bound on the given media loop with cookies base, base|1.
  bool alloc_pair(uint32_t shard, uint64_t base, jn_handle& rtp_out, jn_handle& rtcp_out, uint16_t& port_out) {
    size_t slots = port_used_.size();
    jn_udp_options o{};
    o.struct_size = sizeof o;
    o.rcvbuf = rcvbuf_;
    o.sndbuf = rcvbuf_;
    o.max_datagram = 2048;
    o.loop = shard;
    for (size_t tries = 0; tries < slots; ++tries) {
      size_t slot = port_cursor_++ % slots;
      if (port_used_[slot]) continue;
      uint32_t port = static_cast<uint32_t>(port_min_) + 2 * static_cast<uint32_t>(slot);
      jn_handle a = 0, b = 0;
      std::string ip = interface_.find(':') != std::string::npos ? "[" + interface_ + "]" : interface_;
      if (host().api()->udp_bind(host().ctx(), junction::sdk::to_jn(ip + ":" + std::to_string(port)), &o, base, &a) != JN_OK)
        continue;
      if (host().api()->udp_bind(host().ctx(), junction::sdk::to_jn(ip + ":" + std::to_string(port + 1)), &o, base | 1, &b) != JN_OK) {
        to_close_.push_back(a);  // closed once the shard locks are dropped
        continue;
      }
      port_used_[slot] = 1;
      rtp_out = a;
      rtcp_out = b;
      port_out = static_cast<uint16_t>(port);
      return true;
    }
    return false;
  }
  void release_forward(Side::Forward& f) {
    if (f.rtp) to_close_.push_back(f.rtp);
    if (f.rtcp) to_close_.push_back(f.rtcp);
    if (size_t slot; port_slot(f.port, slot)) port_used_[slot] = 0;
    f = Side::Forward{};
  }
  void release_ports(Side& side) {
    for (auto& f : side.forwards) release_forward(f);
    side.forwards.clear();
    if (side.rtp) to_close_.push_back(side.rtp);
    if (side.rtcp) to_close_.push_back(side.rtcp);
    if (side.bus_id) to_release_.push_back(side.bus_id);
    side.bus_id = 0;
    if (size_t slot; port_slot(side.port, slot)) port_used_[slot] = 0;
    side.rtp = side.rtcp = 0;
    side.port = 0;
  }

  bool port_slot(uint32_t port, size_t& slot) const {
    if (port < static_cast<uint32_t>(port_min_)) return false;
    slot = (port - static_cast<uint32_t>(port_min_)) / 2;
    return slot < port_used_.size();
  }

  void destroy(const std::string& call_id, const char* why = nullptr) {
    auto it = calls_.find(call_id);
    if (it == calls_.end()) return;
    if (why) {
      std::string m = "rtp-relay: call '" + log_escape(call_id) + "' deleted by " + why;
      if (!it->second.streams.empty()) {
        const Stream& st = *streams_[it->second.streams[0]];
        m += ": a packets " + std::to_string(st.side[0].packets) + " forwarded " + std::to_string(st.side[0].forwarded) +
             "; b packets " + std::to_string(st.side[1].packets) + " forwarded " + std::to_string(st.side[1].forwarded);
      }
      host().info(m);
    }
    for (uint32_t id : it->second.streams) {
      if (id >= streams_.size() || !streams_[id]) continue;
      for (auto& s : streams_[id]->side) release_ports(s);
      --shards_[streams_[id]->shard]->streams;
      streams_[id].reset();
      free_ids_.push_back(id);
    }
    // call_id may be a reference into the session being erased (destroy(sess.call_id)): drop the
    // anchor entry while it is still valid.
    anchor_pos_.erase(call_id);
    calls_.erase(it);
  }

  void announce(const Session& sess) {
    json streams = json::array();
    for (uint32_t id : sess.streams) {
      Stream& st = *streams_[id];
      streams.push_back({{"index", st.index}, {"media", st.media}, {"a", st.side[0].bus}, {"b", st.side[1].bus}});
    }
    host().event_publish("rtp-relay.session.created", json{{"call_id", sess.call_id}, {"streams", streams}}.dump());
  }

  Value side_stats(const Side& s, uint64_t now) const {
    Value v = Value::dict();
    v.set("tag", s.tag);
    v.set_int("local port", s.port);
    Value ep = Value::dict();
    ep.set("family", s.peer_rtp.family == 6 ? "IPv6" : "IPv4");
    ep.set("address", addr_ip(s.peer_rtp));
    ep.set_int("port", s.peer_rtp.port);
    v.set("endpoint", ep);
    Value adv = Value::dict();
    adv.set("address", addr_ip(s.sdp_rtp));
    adv.set_int("port", s.sdp_rtp.port);
    v.set("advertised endpoint", adv);
    v.set("latched", s.latched_rtp ? "yes" : "no");
    v.set("rtcp-mux", s.mux ? "yes" : "no");
    v.set("SRTP", s.srtp ? "yes" : "no");
    Value st = Value::dict();
    st.set_int("packets", static_cast<int64_t>(s.packets));
    st.set_int("bytes", static_cast<int64_t>(s.bytes));
    st.set_int("errors", static_cast<int64_t>(s.errors()));
    st.set_int("rtcp packets", static_cast<int64_t>(s.rtcp_packets));
    st.set_int("forwarded", static_cast<int64_t>(s.forwarded));
    st.set_int("lost", s.rs.lost());
    st.set_int("expected", static_cast<int64_t>(s.rs.expected()));
    st.set_int("jitter us", static_cast<int64_t>(s.rs.jitter_us()));
    st.set_int("ssrc", s.rs.ssrc());
    st.set_int("ssrc changes", static_cast<int64_t>(s.rs.ssrc_changes()));
    st.set_int("last packet ms ago", s.last_ms ? static_cast<int64_t>(now - s.last_ms) : -1);
    st.set_int("dropped malformed", static_cast<int64_t>(s.err_malformed));
    st.set_int("dropped source", static_cast<int64_t>(s.err_source));
    st.set_int("dropped no destination", static_cast<int64_t>(s.err_nodest));
    st.set_int("dropped srtp", static_cast<int64_t>(s.err_srtp));
    st.set_int("dropped ssrc flood", static_cast<int64_t>(s.err_ssrc_flood));
    v.set("stats", st);
    v.set("bus stream", s.bus);
    if (!s.forwards.empty()) {
      Value fw = Value::list();
      for (auto& f : s.forwards) {
        Value x = Value::dict();
        x.set("address", addr_str(f.to_rtp));
        x.set_int("local port", f.port);
        x.set_int("packets", static_cast<int64_t>(f.packets));
        if (!f.tag.empty()) x.set("tag", f.tag);
        fw.push(x);
      }
      v.set("forwards", fw);
    }
    return v;
  }

  Value session_stats(const Session& sess) const {
    uint64_t now = host_now();
    Value r = Value::dict();
    r.set("result", "ok");
    r.set_int("created", static_cast<int64_t>(sess.created_ms / 1000));
    r.set_int("age ms", static_cast<int64_t>(now - sess.created_ms));
    uint64_t pk = 0, by = 0, er = 0, rpk = 0, rby = 0;
    Value streams = Value::list();
    for (uint32_t id : sess.streams) {
      const Stream& st = *streams_[id];
      Value sv = Value::dict();
      sv.set_int("index", st.index);
      sv.set("type", st.media);
      Value sides = Value::list();
      for (auto& s : st.side) {
        pk += s.packets, by += s.bytes, er += s.errors(), rpk += s.rtcp_packets, rby += s.rtcp_bytes;
        sides.push(side_stats(s, now));
      }
      sv.set("streams", sides);
      streams.push(sv);
    }
    Value totals = Value::dict();
    Value rtpv = Value::dict();
    rtpv.set_int("packets", static_cast<int64_t>(pk));
    rtpv.set_int("bytes", static_cast<int64_t>(by));
    rtpv.set_int("errors", static_cast<int64_t>(er));
    Value rtcpv = Value::dict();
    rtcpv.set_int("packets", static_cast<int64_t>(rpk));
    rtcpv.set_int("bytes", static_cast<int64_t>(rby));
    rtcpv.set_int("errors", 0);
    totals.set("RTP", rtpv);
    totals.set("RTCP", rtcpv);
    r.set("totals", totals);
    r.set("medias", streams);
    return r;
  }
  uint64_t host_now() const { return const_cast<RtpRelay*>(this)->host().now_ms(); }

  Value cmd_delete(const Value& d) {
    auto call_id = d.get_str("call-id");
    if (!call_id || call_id->empty()) return ng::error_reply("No call-id in message");
    auto it = calls_.find(std::string(*call_id));
    if (it == calls_.end()) return ng::error_reply("Call-ID not found or tags didn't match");
    Value r = session_stats(it->second);
    destroy(it->first, "ng delete");
    return r;
  }
  // Junction extension: "forward" sends a copy of what the side with `from-tag` sends to one
  // more endpoint, `address` ("ip:port"; RTCP to port + 1, or to the same port with the flag
  // rtcp-mux), from a port pair of its own; "unforward" with the same keys stops it. Every
  // stream (m= line) of the call is forwarded unless `index` picks one. Packets that arrive on a
  // forward's ports are counted as stale and dropped (a recorder or monitor does not talk back).
  Value cmd_forward(const Value& d, bool start) {
    auto call_id = d.get_str("call-id");
    auto from_tag = d.get_str("from-tag");
    auto address = d.get_str("address");
    if (!call_id || call_id->empty()) return ng::error_reply("No call-id in message");
    if (!from_tag || from_tag->empty()) return ng::error_reply("No from-tag in message");
    if (!address || address->empty()) return ng::error_reply("No address in message");
    jn_addr to{};
    if (!parse_addr_str(*address, to) || to.port == 0) return ng::error_reply("Bad address '" + std::string(*address) + "'");
    bool mux = flag(d, "rtcp-mux");
    jn_addr to_rtcp = to;
    to_rtcp.port = mux ? to.port : rtcp_port_after(to.port);
    if (start && to_rtcp.port == 0)
      return ng::error_reply("Bad address '" + std::string(*address) + "': no RTCP port after 65535 (use the flag rtcp-mux)");
    auto it = calls_.find(std::string(*call_id));
    if (it == calls_.end()) return ng::error_reply("Call-ID not found or tags didn't match");
    std::optional<int64_t> index = d.get_int("index");
    Value list = Value::list();
    size_t matched = 0;
    for (uint32_t sid : it->second.streams) {
      Stream& st = *streams_[sid];
      if (index && st.index != *index) continue;
      for (auto& side : st.side) {
        if (side.tag != *from_tag) continue;
        ++matched;
        if (!start) {
          remove_forwards(side, [&](const Side::Forward& f) { return addr_eq(f.to_rtp, to); });
          continue;
        }
        Side::Forward f;
        if (const char* why = open_forward(st, side, f)) return ng::error_reply(why);
        f.to_rtp = to;
        f.to_rtcp = to_rtcp;
        Value v = Value::dict();
        v.set_int("index", st.index);
        v.set_int("local port", f.port);
        list.push(v);
        side.forwards.push_back(f);
      }
    }
    if (matched == 0) return ng::error_reply("No stream with from-tag '" + std::string(*from_tag) + "'");
    Value r = Value::dict();
    r.set("result", "ok");
    if (start) r.set("forwards", list);
    return r;
  }

  // rtpengine's subscriptions: "subscribe request" (call-id, from-tag = whose media, optional
  // to-tag = the subscriber's) answers with an SDP offer for the subscriber: the source's media,
  // send-only, plain RTP, from relay ports of its own; "subscribe answer" (call-id, to-tag, sdp)
  // gives the subscriber's address; "unsubscribe" (call-id, to-tag) ends it. Underneath a
  // subscriber is a forward with a tag (see cmd_forward).
  Value cmd_subscribe_request(const Value& d) {
    auto call_id = d.get_str("call-id");
    auto from_tag = d.get_str("from-tag");
    if (!call_id || call_id->empty()) return ng::error_reply("No call-id in message");
    if (!from_tag || from_tag->empty()) return ng::error_reply("No from-tag in message");
    auto it = calls_.find(std::string(*call_id));
    if (it == calls_.end()) return ng::error_reply("Call-ID not found or tags didn't match");
    Session& sess = it->second;
    auto src = sess.sdp_by_tag.find(std::string(*from_tag));
    if (src == sess.sdp_by_tag.end()) return ng::error_reply("No SDP known from from-tag '" + std::string(*from_tag) + "'");
    std::string to_tag(d.get_str("to-tag").value_or(""));
    if (to_tag.empty()) {
      static const char* hex = "0123456789abcdef";
      std::string raw;
      if (!random_bytes(8, raw)) return ng::error_reply("Cannot generate a to-tag (no randomness available)");
      to_tag = "sub-";
      for (unsigned char c : raw) to_tag += hex[c >> 4], to_tag += hex[c & 15];
    }
    if (has_subscriber(sess, to_tag)) return ng::error_reply("to-tag '" + to_tag + "' already subscribes");
    auto parsed = sdp::parse(src->second);
    if (!parsed) return ng::error_reply("Stored SDP unreadable");
    sdp::Session& sd = *parsed.session;
    std::vector<MediaPlan> plans(sd.media.size());
    size_t made = 0;
    for (size_t i = 0; i < sd.media.size() && i < sess.streams.size(); ++i) {
      Stream& st = *streams_[sess.streams[i]];
      for (auto& side : st.side) {
        if (side.tag != *from_tag || sd.media[i].port == 0 || !sd.media[i].is_rtp()) continue;
        Side::Forward f;
        if (const char* why = open_forward(st, side, f)) {
          drop_subscriber(sess, to_tag);  // all or nothing: no half subscription stays behind
          return ng::error_reply(why);
        }
        f.tag = to_tag;
        side.forwards.push_back(f);
        MediaPlan& p = plans[i];
        p.relay = true;
        p.port = f.port;
        p.strip_crypto = true;  // the subscriber gets what the relay forwards: plain RTP
        if (sd.media[i].is_srtp()) p.proto = sd.media[i].proto.find("AVPF") != std::string::npos ? "RTP/AVPF" : "RTP/AVP";
        ++made;
      }
    }
    if (made == 0) return ng::error_reply("No stream with from-tag '" + std::string(*from_tag) + "'");
    RewriteOptions ro;
    ro.addr = adv_;
    ro.replace_origin = true;
    rewrite_sdp(sd, ro, plans);
    for (size_t i = 0; i < sd.media.size(); ++i) {
      if (!plans[i].relay) continue;
      for (const char* dir : {"sendrecv", "recvonly", "sendonly", "inactive"}) sd.media[i].remove_attr(dir);
      sd.media[i].add_attr("sendonly", std::nullopt);
    }
    Value r = Value::dict();
    r.set("result", "ok");
    r.set("sdp", sdp::serialize(sd));
    r.set("from-tag", std::string(*from_tag));
    r.set("to-tag", to_tag);
    return r;
  }
  Value cmd_subscribe_answer(const Value& d) {
    auto call_id = d.get_str("call-id");
    auto to_tag = d.get_str("to-tag");
    auto sdp_text = d.get_str("sdp");
    if (!call_id || call_id->empty()) return ng::error_reply("No call-id in message");
    if (!to_tag || to_tag->empty()) return ng::error_reply("No to-tag in message");
    if (!sdp_text) return ng::error_reply("No SDP body in message");
    auto it = calls_.find(std::string(*call_id));
    if (it == calls_.end()) return ng::error_reply("Call-ID not found or tags didn't match");
    Session& sess = it->second;
    if (!has_subscriber(sess, *to_tag)) return ng::error_reply("Unknown to-tag '" + std::string(*to_tag) + "'");
    auto parsed = sdp::parse(*sdp_text);
    if (!parsed) return ng::error_reply("Failed to parse SDP: " + parsed.error + " (line " + std::to_string(parsed.line) + ")");
    const sdp::Session& sd = *parsed.session;
    for (size_t i = 0; i < sd.media.size() && i < sess.streams.size(); ++i) {
      const sdp::Media& m = sd.media[i];
      auto conn = sd.media_connection(m);
      if (m.port == 0 || !conn) continue;
      RecvAddrs to = sdp_receive_addrs(conn->address, m.port, m, true);
      if (!to.rtp.family) continue;
      if (m.rtcp_mux()) to.rtcp = to.rtp;
      for (auto& side : streams_[sess.streams[i]]->side)
        for (auto& f : side.forwards) {
          if (f.tag != *to_tag) continue;
          f.to_rtp = to.rtp;
          f.to_rtcp = to.rtcp;  // family 0 (no RTCP port): RTCP is not forwarded to it
        }
    }
    Value r = Value::dict();
    r.set("result", "ok");
    return r;
  }
  Value cmd_unsubscribe(const Value& d) {
    auto call_id = d.get_str("call-id");
    auto to_tag = d.get_str("to-tag");
    if (!call_id || call_id->empty()) return ng::error_reply("No call-id in message");
    if (!to_tag || to_tag->empty()) return ng::error_reply("No to-tag in message");
    auto it = calls_.find(std::string(*call_id));
    if (it == calls_.end()) return ng::error_reply("Call-ID not found or tags didn't match");
    if (!drop_subscriber(it->second, *to_tag)) return ng::error_reply("Unknown to-tag '" + std::string(*to_tag) + "'");
    Value r = Value::dict();
    r.set("result", "ok");
    return r;
  }
  bool has_subscriber(const Session& sess, std::string_view tag) const {
    for (uint32_t sid : sess.streams)
      for (auto& side : streams_[sid]->side)
        for (auto& f : side.forwards)
          if (f.tag == tag) return true;
    return false;
  }
  bool drop_subscriber(Session& sess, std::string_view tag) {
    size_t dropped = 0;
    for (uint32_t sid : sess.streams)
      for (auto& side : streams_[sid]->side) dropped += remove_forwards(side, [&](const Side::Forward& f) { return f.tag == tag; });
    return dropped != 0;
  }
  // A forward's port pair on the stream's loop, or why there is none. Its cookies carry
  // generation 0, which is never a stream's: what arrives on them is counted stale and dropped.
  const char* open_forward(const Stream& st, const Side& side, Side::Forward& f) {
    if (side.forwards.size() >= kMaxForwards) return "Too many forwards for this side";
    uint64_t base = (static_cast<uint64_t>(st.shard) << 24) | (static_cast<uint64_t>(st.id) << 2);
    if (!alloc_pair(st.shard, base, f.rtp, f.rtcp, f.port)) return "Ran out of ports";
    return nullptr;
  }
  template <typename Pred>
  size_t remove_forwards(Side& side, Pred match) {
    size_t n = 0;
    for (auto f = side.forwards.begin(); f != side.forwards.end();) {
      if (match(*f)) {
        release_forward(*f);
        f = side.forwards.erase(f);
        ++n;
      } else {
        ++f;
      }
    }
    return n;
  }

  Value cmd_query(const Value& d) {
    auto call_id = d.get_str("call-id");
    if (!call_id || call_id->empty()) return ng::error_reply("No call-id in message");
    auto it = calls_.find(std::string(*call_id));
    if (it == calls_.end()) return ng::error_reply("Call-ID not found or tags didn't match");
    return session_stats(it->second);
  }
  Value cmd_list(const Value& d) {
    int64_t limit = d.get_int("limit").value_or(32);
    Value r = Value::dict();
    r.set("result", "ok");
    Value calls = Value::list();
    for (auto& [id, s] : calls_) {
      if (static_cast<int64_t>(calls.as_list().size()) >= limit) break;
      calls.push(Value::string(id));
    }
    r.set("calls", calls);
    return r;
  }

  // ------------------------------------------------------------------------------------------
  // Media anchoring: the core passes a call's offer/answer media through the relay.
  // The neutral description is turned into an SDP (one m= line per relayable stream) and run
  // through the ng offer/answer logic (call-id = the core's call id, from-tag "a", to-tag "b"),
  // so anchored calls are ordinary relay sessions (stats, timeouts, hot reload, ng query/delete).
  static bool anchorable(const jn_media_stream& s) {
    if (s.addr.family != 4 && s.addr.family != 6) return false;
    if (s.addr.port == 0) return false;
    std::string t(to_sv(s.transport));
    for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return t == "rtp/avp" || t == "rtp/savp" || t == "rtp/avpf" || t == "rtp/savpf";
  }
  static std::string upper(std::string_view s) {
    std::string o(s);
    for (auto& c : o) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return o;
  }
  // One m= section for a stream; `rejected` writes port 0 (left alone by offer_answer).
  static std::string sdp_media(const jn_media_stream& s, bool rejected) {
    const char* kind = s.kind == JN_MEDIA_VIDEO ? "video" : s.kind == JN_MEDIA_DATA ? "application" : "audio";
    uint32_t pt = s.payload_type <= 127 ? s.payload_type : 0;
    std::string proto = rejected ? std::string("RTP/AVP") : upper(to_sv(s.transport));
    std::string m = std::string("m=") + kind + " " + std::to_string(rejected ? 0 : s.addr.port) + " " + proto + " " +
                    std::to_string(pt) + "\r\n";
    if (!rejected) m += std::string("c=IN ") + (s.addr.family == 6 ? "IP6 " : "IP4 ") + addr_ip(s.addr) + "\r\n";
    std::string fmt(to_sv(s.format));
    bool fmt_ok = !fmt.empty() && fmt.find_first_of(" \r\n/") == std::string::npos;
    if (fmt_ok && s.clock_rate) {
      m += "a=rtpmap:" + std::to_string(pt) + " " + fmt + "/" + std::to_string(s.clock_rate);
      if (s.kind == JN_MEDIA_AUDIO && s.channels > 1) m += "/" + std::to_string(s.channels);
      m += "\r\n";
    }
    static const char* dirs[] = {"sendrecv", "sendonly", "recvonly", "inactive"};
    m += std::string("a=") + (s.direction <= 3 ? dirs[s.direction] : "sendrecv") + "\r\n";
    return m;
  }
  static jn_status anchor_status(std::string_view reason) {
    if (reason.find("Unknown call") != std::string_view::npos) return JN_ERR_NOT_FOUND;
    if (reason.find("ports") != std::string_view::npos || reason.find("limit") != std::string_view::npos) return JN_ERR_LIMIT;
    return JN_ERR_INVALID;
  }

  void on_anchor(const jn_anchor_request& req) override {
    ControlLock lock(*this);
    std::string call_id(to_sv(req.call_id));
    const char* op = req.op == JN_ANCHOR_OFFER ? "offer" : req.op == JN_ANCHOR_ANSWER ? "answer" : req.op == JN_ANCHOR_DELETE ? "delete" : "?";
    auto fail = [&](jn_status st, const std::string& why) {
      ++anchor_stats_.errors;
      host().warn("rtp-relay: anchor " + std::string(op) + " call '" + log_escape(call_id) + "': " + log_escape(why) + " (media passed through)");
      host().anchor_reply(req.reply, st, nullptr);
    };
    if (call_id.empty()) return fail(JN_ERR_INVALID, "no call id");
    if (req.op == JN_ANCHOR_DELETE) {
      ++anchor_stats_.deletes;
      // Only an anchored call: an ng client's call of the same id is not the core's to delete.
      bool known = anchor_pos_.count(call_id) && calls_.count(call_id);
      if (known) destroy(call_id, "anchor delete");
      anchor_pos_.erase(call_id);
      if (!known && host().enabled(JN_LOG_DEBUG)) host().debug("rtp-relay: anchor delete of unknown call '" + log_escape(call_id) + "'");
      host().anchor_reply(req.reply, JN_OK, nullptr);
      return;
    }
    if (req.op != JN_ANCHOR_OFFER && req.op != JN_ANCHOR_ANSWER) return fail(JN_ERR_UNSUPPORTED, "unknown op " + std::to_string(req.op));
    bool answer = req.op == JN_ANCHOR_ANSWER;
    if (answer) ++anchor_stats_.answers;
    else ++anchor_stats_.offers;
    // Whose media: side "a" is the A-leg's, "b" the B-leg's. A re-offer may come from
    // either; the relay's offer/answer matches the tags to the session's sides.
    uint32_t sender = JN_HAS_FIELD(&req, jn_anchor_request, sender) ? req.sender : (answer ? 1u : 0u);
    const char* sender_tag = sender ? "b" : "a";
    const char* other_tag = sender ? "a" : "b";
    if (calls_.count(call_id) && !anchor_pos_.count(call_id))
      return fail(JN_ERR_EXISTS, "call id '" + call_id + "' is an ng client's call");
    bool reoffer = !answer && calls_.count(call_id) != 0;
    const jn_media_desc* in = req.media;
    uint32_t count = (in && in->streams) ? in->count : 0;

    // Which streams become m= lines: on the offer the relayable ones; on the answer the same
    // positions as the offer (an answer stream that is not relayable is written as rejected).
    std::vector<uint32_t> pos;
    if (!answer) {
      for (uint32_t i = 0; i < count; ++i)
        if (in->streams[i] && anchorable(*in->streams[i])) pos.push_back(i);
      if (pos.empty() && calls_.count(call_id) == 0) {
        // Nothing to relay (no RTP stream, or no addresses yet): no session; the error status
        // makes the core pass this call's media through (and not anchor its answer).
        host().info("rtp-relay: anchor offer call '" + log_escape(call_id) + "': no relayable stream, media passed through");
        host().anchor_reply(req.reply, JN_ERR_UNSUPPORTED, nullptr);
        return;
      }
    } else {
      auto it = anchor_pos_.find(call_id);
      if (it == anchor_pos_.end() || calls_.count(call_id) == 0) return fail(JN_ERR_NOT_FOUND, "Unknown call-id");
      pos = it->second;
    }

    std::string origin_ip = "0.0.0.0";
    const char* origin_type = "IP4";
    for (uint32_t p : pos)
      if (p < count && in->streams[p] && anchorable(*in->streams[p])) {
        origin_ip = addr_ip(in->streams[p]->addr);
        origin_type = in->streams[p]->addr.family == 6 ? "IP6" : "IP4";
        break;
      }
    std::string text = "v=0\r\no=- 1 1 IN " + std::string(origin_type) + " " + origin_ip + "\r\ns=junction\r\nt=0 0\r\n";
    std::vector<bool> relayed(pos.size(), false);
    for (size_t k = 0; k < pos.size(); ++k) {
      const jn_media_stream* s = pos[k] < count ? in->streams[pos[k]] : nullptr;
      if (s && anchorable(*s)) {
        text += sdp_media(*s, false);
        relayed[k] = true;
      } else {
        jn_media_stream dummy{};
        text += sdp_media(s ? *s : dummy, true);
      }
    }

    Value d = Value::dict();
    d.set("command", answer ? "answer" : "offer");
    d.set("call-id", call_id);
    // offer: from-tag = the offerer; answer: to-tag = the answerer, from-tag = the offerer.
    d.set("from-tag", answer ? other_tag : sender_tag);
    if (answer || reoffer) d.set("to-tag", answer ? sender_tag : other_tag);
    d.set("sdp", text);
    Value rep = Value::list();
    rep.push(Value::string("origin"));
    d.set("replace", rep);
    Value flags = Value::list();
    flags.push(Value::string("trust-address"));
    d.set("flags", flags);
    Value r = offer_answer(d, answer, jn_addr{});
    auto res = r.get_str("result");
    if (!res || *res != "ok") {
      std::string why(r.get_str("error-reason").value_or("relay error"));
      return fail(anchor_status(why), why);
    }
    auto parsed = sdp::parse(r.get_str("sdp").value_or(""));
    if (!parsed || parsed.session->media.size() != pos.size()) {
      if (!answer && calls_.count(call_id) && !anchor_pos_.count(call_id)) destroy(call_id);
      return fail(JN_ERR_INTERNAL, "rewritten SDP unreadable");
    }
    if (!answer) anchor_pos_[call_id] = pos;

    // Same streams, same order; relayed ones point at the relay.
    std::vector<jn_media_stream> out(count);
    std::vector<const jn_media_stream*> ptrs(count, nullptr);
    for (uint32_t i = 0; i < count; ++i) {
      if (!in->streams[i]) continue;
      std::memcpy(&out[i], in->streams[i], std::min<size_t>(sizeof(jn_media_stream), in->streams[i]->struct_size));
      out[i].struct_size = sizeof(jn_media_stream);
      ptrs[i] = &out[i];
    }
    std::string moved;
    const sdp::Session& sd = *parsed.session;
    for (size_t k = 0; k < pos.size(); ++k) {
      if (!relayed[k] || pos[k] >= count || !ptrs[pos[k]]) continue;
      const sdp::Media& m = sd.media[k];
      auto conn = sd.media_connection(m);
      jn_addr a{};
      if (m.port == 0 || !conn || !make_addr(conn->address, m.port, a)) continue;
      moved += " " + std::to_string(pos[k]) + ":" + addr_str(in->streams[pos[k]]->addr) + "->" + addr_str(a);
      out[pos[k]].addr = a;
    }
    jn_media_desc desc{};
    desc.struct_size = sizeof desc;
    desc.count = count;
    desc.streams = ptrs.data();
    host().info("rtp-relay: anchor " + std::string(op) + " call '" + log_escape(call_id) + "':" + (moved.empty() ? std::string(" nothing relayed") : moved));
    host().anchor_reply(req.reply, JN_OK, &desc);
  }

  // ------------------------------------------------------------------------------------------
  void on_timer(jn_handle, uint64_t) override {
    ControlLock lock(*this);
    uint64_t now = host().now_ms();
    std::vector<std::string> expired;
    for (auto& [id, sess] : calls_) {
      uint64_t last = sess.last_signal_ms;
      for (uint32_t sid : sess.streams) {
        for (auto& s : streams_[sid]->side) {
          last = std::max(last, s.last_ms);
          s.ssrc_window = 0;
        }
      }
      if (timeout_ms_ && now > last + timeout_ms_) expired.push_back(id);
    }
    for (auto& id : expired) {
      host().info("rtp-relay: session '" + log_escape(id) + "' timed out (no media or signalling for " + std::to_string(timeout_ms_ / 1000) + " s)");
      ++stats_.timeouts;
      // An anchored call: the core ends the call (both legs hear END 408 "media timeout") and
      // its DELETE destroys the session; a core without anchor_end leaves it to us.
      if (anchor_pos_.count(id) && host().anchor_end(id, 408, "media timeout") == JN_OK) continue;
      destroy(id, "timeout");
    }
    host().gauge_set("rtp_relay_sessions", static_cast<double>(calls_.size()));
    const Counters stats_ = totals();  // the shards' and the control counters
    auto bump = [&](const char* name, const char* labels, uint64_t v, uint64_t& last) {
      if (v > last) host().counter_add(name, v - last, labels);
      last = v;
    };
    bump("rtp_relay_packets_total", "", stats_.rx, reported_.rx);
    bump("rtp_relay_forwarded_total", "", stats_.forwarded, reported_.forwarded);
    bump("rtp_relay_dropped_total", "reason=\"malformed\"", stats_.malformed, reported_.malformed);
    bump("rtp_relay_dropped_total", "reason=\"source\"", stats_.source, reported_.source);
    bump("rtp_relay_dropped_total", "reason=\"no_destination\"", stats_.nodest, reported_.nodest);
    bump("rtp_relay_dropped_total", "reason=\"srtp\"", stats_.srtp, reported_.srtp);
    bump("rtp_relay_dropped_total", "reason=\"ssrc_flood\"", stats_.ssrc_flood, reported_.ssrc_flood);
    bump("rtp_relay_ng_errors_total", "", stats_.ng_errors, reported_.ng_errors);
    bump("rtp_relay_timeouts_total", "", stats_.timeouts, reported_.timeouts);
  }

  // Other plugins drive the relay with ng dictionaries as JSON events on control_topic:
  // {"reply_topic":"my-plugin.rtp", "id":"...", "command":"offer", "call-id":..., ...}; the reply
  // (the ng reply dictionary plus "id") is published on reply_topic.
  void on_event(std::string_view topic, std::string_view body) override {
    if (topic != control_topic_) return;
    ControlLock lock(*this);
    json j = json::parse(body, nullptr, false);
    if (!j.is_object()) {
      ++stats_.ng_bad;
      host().warn("rtp-relay: control event is not a JSON object");
      return;
    }
    Value r = handle(value_from_json(j), jn_addr{});
    json out = value_to_json(r);
    if (j.contains("id")) out["id"] = j["id"];
    if (j.contains("reply_topic") && j["reply_topic"].is_string()) host().event_publish(j["reply_topic"].get<std::string>(), out.dump());
  }

  void on_admin(const jn_admin_request& req) override {
    ControlLock lock(*this);
    std::string verb(to_sv(req.verb));
    if (verb == "ng") {
      json j = json::parse(to_sv(req.body), nullptr, false);
      if (!j.is_object()) {
        host().admin_reply(req.reply, 400, json{{"error", "body must be an ng dictionary as a JSON object"}}.dump());
        return;
      }
      host().admin_reply(req.reply, 200, value_to_json(handle(value_from_json(j), jn_addr{})).dump());
    } else if (verb == "tap") {
      // A diagnostic bus subscriber: counts what a stream carries; hold=true keeps a reference
      // to the latest packet, as a recorder with a queue would (see the SRTP copy rule).
      json j = json::parse(to_sv(req.body), nullptr, false);
      if (!j.is_object() || !j.contains("stream") || !j["stream"].is_string()) {
        host().admin_reply(req.reply, 400, json{{"error", "body: {\"stream\": name, \"hold\": bool}"}}.dump());
        return;
      }
      Tap t;
      t.stream = j["stream"].get<std::string>();
      t.hold = j.value("hold", false);
      jn_handle h = 0;
      if (host().bus_subscribe(t.stream, 0, &h) != JN_OK) {
        host().admin_reply(req.reply, 500, json{{"error", "bus_subscribe failed"}}.dump());
        return;
      }
      taps_[h] = t;
      host().admin_reply(req.reply, 200, json{{"tap", h}}.dump());
    } else if (verb == "taps") {
      json all = json::array();
      for (auto& [h, t] : taps_) all.push_back({{"tap", h}, {"stream", t.stream}, {"packets", t.packets}, {"rtcp", t.rtcp}, {"bytes", t.bytes}, {"hold", t.hold}});
      host().admin_reply(req.reply, 200, all.dump());
    } else if (verb == "stats") {
      host().admin_reply(req.reply, 200, stats_json().dump());
    } else if (verb == "sessions") {
      json all = json::object();
      for (auto& [id, s] : calls_) all[id] = value_to_json(session_stats(s));
      host().admin_reply(req.reply, 200, all.dump());
    } else {
      host().admin_reply(req.reply, 404, json{{"error", "unknown command '" + verb + "' (ng, stats, sessions)"}}.dump());
    }
  }

  void on_bus(jn_handle sub, uint64_t, jn_buf* b) override {
    auto it = taps_.find(sub);
    if (it == taps_.end()) return;
    Tap& t = it->second;
    if (b->flags & JN_BUF_RTCP) ++t.rtcp;
    else ++t.packets;
    t.bytes += b->len;
    if (t.hold) {
      host().buf_ref(b);
      if (t.held) host().buf_unref(t.held);
      t.held = b;
    }
  }

  json stats_json() const {
    const Counters stats_ = totals();
    uint64_t pk = 0, fw = 0, lost = 0;
    for (auto& [id, s] : calls_)
      for (uint32_t sid : s.streams)
        for (auto& side : streams_[sid]->side) {
          pk += side.packets;
          fw += side.forwarded;
          lost += static_cast<uint64_t>(side.rs.lost());
        }
    return json{{"sessions", calls_.size()},
                {"rx", stats_.rx},
                {"forwarded", stats_.forwarded},
                {"session_rtp_packets", pk},
                {"session_forwarded", fw},
                {"session_lost", lost},
                {"dropped",
                 {{"malformed", stats_.malformed},
                  {"source", stats_.source},
                  {"no_destination", stats_.nodest},
                  {"srtp", stats_.srtp},
                  {"ssrc_flood", stats_.ssrc_flood},
                  {"stale", stats_.stale}}},
                {"payload_copies", stats_.payload_copies},
                {"ng", {{"requests", stats_.ng_requests}, {"errors", stats_.ng_errors}, {"bad", stats_.ng_bad}, {"retransmits", stats_.ng_retransmits}}},
                {"timeouts", stats_.timeouts},
                {"anchor", {{"sessions", anchor_pos_.size()}, {"offers", anchor_stats_.offers}, {"answers", anchor_stats_.answers},
                            {"deletes", anchor_stats_.deletes}, {"errors", anchor_stats_.errors}}},
                {"reloads", reloads_},
                {"media_loops", loops_},
                {"shards", [&] {
                   json a = json::array();
                   for (size_t k = 0; k < shards_.size(); ++k)
                     a.push_back({{"loop", k}, {"streams", shards_[k]->streams}, {"rx", shards_[k]->stats.rx},
                                  {"forwarded", shards_[k]->stats.forwarded}});
                   return a;
                 }()}};
  }

  // ------------------------------------------------------------------------------------------
  // Hot reload: every session, its sockets (handles), latches, SRTP keys + rollover counters,
  // and stats go to the next instance. libsrtp contexts are rebuilt from the keys.
  static json rs_json(const rtp::ReceiverStats& rs) {
    auto s = rs.snapshot();
    return json::array({s.ssrc, s.base_seq, s.cycles, s.bad_seq, s.probation, s.clock_rate, s.max_seq, s.have_ssrc,
                        s.have_transit, s.received, s.received_in_seq, s.bad, s.ssrc_changes, s.transit, s.jitter});
  }
  static void rs_restore(rtp::ReceiverStats& rs, const json& a) {
    rtp::ReceiverStats::Snapshot s{};
    s.ssrc = a[0], s.base_seq = a[1], s.cycles = a[2], s.bad_seq = a[3], s.probation = a[4], s.clock_rate = a[5];
    s.max_seq = a[6], s.have_ssrc = a[7], s.have_transit = a[8], s.received = a[9], s.received_in_seq = a[10];
    s.bad = a[11], s.ssrc_changes = a[12], s.transit = a[13], s.jitter = a[14];
    rs.restore(s);
  }
  static std::string b64(const std::string& s) { return sdp::base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

  json side_json(const Side& s) const {
    json j = {{"tag", s.tag}, {"rtp", s.rtp}, {"rtcp", s.rtcp}, {"port", s.port},
              {"sdp_rtp", addr_str(s.sdp_rtp)}, {"sdp_rtcp", addr_str(s.sdp_rtcp)},
              {"peer_rtp", addr_str(s.peer_rtp)}, {"peer_rtcp", addr_str(s.peer_rtcp)},
              {"latched", {s.latched_rtp, s.latched_rtcp}}, {"mux", {s.offered_mux, s.mux, s.mux_accept}},
              {"latch", static_cast<int>(s.latch)}, {"answer_proto", s.answer_proto},
              {"srtp", s.srtp}, {"suite", static_cast<int>(s.suite)}, {"crypto_tag", s.crypto_tag},
              {"in_key", b64(s.srtp_in.key())}, {"out_key", b64(s.out_key)},
              {"counts", {s.packets, s.bytes, s.rtcp_packets, s.rtcp_bytes, s.forwarded, s.err_malformed, s.err_source,
                          s.err_nodest, s.err_srtp, s.err_ssrc_flood, s.last_ms}},
              {"rs", rs_json(s.rs)}, {"bus", s.bus}, {"bus_id", s.bus_id}};
    json fw = json::array();
    for (auto& f : s.forwards) fw.push_back({f.rtp, f.rtcp, f.port, addr_str(f.to_rtp), addr_str(f.to_rtcp), f.packets, f.tag});
    j["forwards"] = fw;
    uint32_t roc = 0;
    if (s.rs.received()) {
      if (s.srtp_in.roc(s.rs.ssrc(), roc)) j["in_roc"] = {s.rs.ssrc(), roc};
    }
    // The outbound SSRC is the other side's; saved by the stream.
    return j;
  }

  jn_status save_state(std::string& out) override {
    ControlLock lock(*this);
    const Counters stats_ = totals();
    json j;
    j["ng_sock"] = ng_sock_;
    j["timer"] = timer_;
    j["gen"] = gen_counter_;
    j["cursor"] = port_cursor_;
    j["reloads"] = reloads_;
    j["stats"] = {stats_.rx, stats_.forwarded, stats_.malformed, stats_.source, stats_.nodest, stats_.srtp, stats_.ssrc_flood,
                  stats_.stale, stats_.ng_requests, stats_.ng_errors, stats_.ng_bad, stats_.ng_retransmits, stats_.timeouts,
                  stats_.payload_copies};
    json sessions = json::array();
    for (auto& [id, sess] : calls_) {
      json js = {{"call_id", sess.call_id}, {"created", sess.created_ms}, {"signal", sess.last_signal_ms}, {"answered", sess.answered},
                 {"sdp_by_tag", sess.sdp_by_tag}};
      json streams = json::array();
      for (uint32_t sid : sess.streams) {
        const Stream& st = *streams_[sid];
        json sides = json::array();
        for (int k = 0; k < 2; ++k) {
          json sj = side_json(st.side[k]);
          // Outbound SRTP toward side k carries side (1-k)'s SSRC.
          uint32_t roc = 0;
          const Side& src = st.side[1 - k];
          if (src.rs.received() && st.side[k].srtp_out.roc(src.rs.ssrc(), roc)) sj["out_roc"] = {src.rs.ssrc(), roc};
          sides.push_back(std::move(sj));
        }
        streams.push_back({{"id", st.id}, {"gen", st.gen}, {"shard", st.shard}, {"index", st.index}, {"media", st.media}, {"sides", sides}});
      }
      js["streams"] = std::move(streams);
      sessions.push_back(std::move(js));
    }
    j["sessions"] = std::move(sessions);
    json taps = json::array();
    for (auto& [h, t] : taps_) taps.push_back({h, t.stream, t.hold, t.packets, t.rtcp, t.bytes});
    j["taps"] = taps;
    json anchors = json::object();
    for (auto& [id, pos] : anchor_pos_) anchors[id] = pos;
    j["anchors"] = anchors;
    j["anchor_stats"] = {anchor_stats_.offers, anchor_stats_.answers, anchor_stats_.deletes, anchor_stats_.errors};
    out = j.dump();
    return JN_OK;
  }

  jn_status restore_state(uint32_t schema, std::string_view data) override {
    if (schema != 1) return JN_ERR_ABI;
    json j = json::parse(data, nullptr, false);
    if (!j.is_object()) {
      host().set_error("rtp-relay: state is not JSON");
      return JN_ERR_INVALID;
    }
    ng_sock_ = j.at("ng_sock");
    timer_ = j.at("timer");
    gen_counter_ = j.at("gen");
    port_cursor_ = j.at("cursor");
    reloads_ = j.value("reloads", 0ull) + 1;
    auto& c = j.at("stats");
    uint64_t* fields[] = {&stats_.rx, &stats_.forwarded, &stats_.malformed, &stats_.source, &stats_.nodest, &stats_.srtp,
                          &stats_.ssrc_flood, &stats_.stale, &stats_.ng_requests, &stats_.ng_errors, &stats_.ng_bad,
                          &stats_.ng_retransmits, &stats_.timeouts, &stats_.payload_copies};
    for (size_t i = 0; i < std::size(fields) && i < c.size(); ++i) *fields[i] = c[i];
    reported_ = stats_;
    for (auto& js : j.at("sessions")) {
      Session sess;
      sess.call_id = js.at("call_id");
      sess.created_ms = js.at("created");
      sess.last_signal_ms = js.at("signal");
      sess.answered = js.at("answered");
      if (js.contains("sdp_by_tag")) sess.sdp_by_tag = js["sdp_by_tag"].get<std::map<std::string, std::string>>();
      for (auto& jst : js.at("streams")) {
        auto st = std::make_unique<Stream>();
        st->id = jst.at("id");
        st->gen = jst.at("gen");
        // The sockets stay on the loop they were bound on; a copy running fewer loops than that
        // cannot serve them.
        st->shard = jst.value("shard", 0u);
        if (st->shard >= shards_.size()) {
          host().set_error("rtp-relay: saved state has streams on media loop " + std::to_string(st->shard) + " but the core runs " +
                           std::to_string(loops_));
          return JN_ERR_STATE;
        }
        st->index = jst.at("index");
        st->media = jst.at("media");
        st->call_id = sess.call_id;
        for (int k = 0; k < 2; ++k) {
          const json& sj = jst.at("sides")[k];
          Side& s = st->side[k];
          s.tag = sj.at("tag");
          s.rtp = sj.at("rtp");
          s.rtcp = sj.at("rtcp");
          s.port = sj.at("port");
          parse_addr_str(sj.at("sdp_rtp").get<std::string>(), s.sdp_rtp);
          parse_addr_str(sj.at("sdp_rtcp").get<std::string>(), s.sdp_rtcp);
          parse_addr_str(sj.at("peer_rtp").get<std::string>(), s.peer_rtp);
          parse_addr_str(sj.at("peer_rtcp").get<std::string>(), s.peer_rtcp);
          s.latched_rtp = sj.at("latched")[0];
          s.latched_rtcp = sj.at("latched")[1];
          s.offered_mux = sj.at("mux")[0];
          s.mux = sj.at("mux")[1];
          s.mux_accept = sj.at("mux")[2];
          s.latch = static_cast<Latch>(sj.at("latch").get<int>());
          s.answer_proto = sj.at("answer_proto");
          s.srtp = sj.at("srtp");
          s.suite = static_cast<SrtpSuite>(sj.at("suite").get<int>());
          s.crypto_tag = sj.at("crypto_tag");
          auto& n = sj.at("counts");
          s.packets = n[0], s.bytes = n[1], s.rtcp_packets = n[2], s.rtcp_bytes = n[3], s.forwarded = n[4];
          s.err_malformed = n[5], s.err_source = n[6], s.err_nodest = n[7], s.err_srtp = n[8], s.err_ssrc_flood = n[9];
          s.last_ms = n[10];
          rs_restore(s.rs, sj.at("rs"));
          s.bus = sj.at("bus");
          s.bus_id = sj.value("bus_id", 0u);
          for (auto& f : sj.value("forwards", json::array())) {
            Side::Forward x;
            x.rtp = f[0], x.rtcp = f[1], x.port = f[2];
            parse_addr_str(f[3].get<std::string>(), x.to_rtp);
            parse_addr_str(f[4].get<std::string>(), x.to_rtcp);
            x.packets = f[5];
            if (f.size() > 6) x.tag = f[6].get<std::string>();
            if (size_t slot; port_slot(x.port, slot)) port_used_[slot] = 1;
            s.forwards.push_back(x);
          }
          if (!s.bus_id && publish_ && host().bus_intern(s.bus, &s.bus_id) != JN_OK) s.bus_id = 0;
          if (auto k_in = sdp::base64_decode(sj.at("in_key").get<std::string>()); k_in && !k_in->empty()) {
            std::vector<std::pair<uint32_t, uint32_t>> known;
            if (sj.contains("in_roc")) known.emplace_back(sj["in_roc"][0], sj["in_roc"][1]);
            s.srtp_in.create(s.suite, *k_in, true, known);
          }
          if (auto k_out = sdp::base64_decode(sj.at("out_key").get<std::string>()); k_out && !k_out->empty()) {
            s.out_key = *k_out;
            std::vector<std::pair<uint32_t, uint32_t>> known;
            if (sj.contains("out_roc")) known.emplace_back(sj["out_roc"][0], sj["out_roc"][1]);
            s.srtp_out.create(s.suite, s.out_key, false, known);
          }
          if (size_t slot; port_slot(s.port, slot)) port_used_[slot] = 1;  // the range may have changed
        }
        uint32_t id = st->id;
        ++shards_[st->shard]->streams;
        if (streams_.size() <= id) streams_.resize(id + 1);
        streams_[id] = std::move(st);
        sess.streams.push_back(id);
      }
      std::string key = sess.call_id;
      calls_.emplace(key, std::move(sess));
    }
    for (uint32_t i = 0; i < streams_.size(); ++i)
      if (!streams_[i]) free_ids_.push_back(i);
    for (auto& t : j.value("taps", json::array())) {
      Tap tap;
      tap.stream = t[1];
      tap.hold = t[2];
      tap.packets = t[3], tap.rtcp = t[4], tap.bytes = t[5];
      taps_[t[0].get<jn_handle>()] = tap;
    }
    json anchors = j.value("anchors", json::object());
    for (auto& [id, pos] : anchors.items())
      if (calls_.count(id)) anchor_pos_[id] = pos.get<std::vector<uint32_t>>();
    if (auto as = j.value("anchor_stats", json::array()); as.size() == 4) {
      anchor_stats_.offers = as[0], anchor_stats_.answers = as[1], anchor_stats_.deletes = as[2], anchor_stats_.errors = as[3];
    }
    if (!control_topic_.empty()) host().event_subscribe(control_topic_);
    return JN_OK;
  }

 private:
  struct Tap {
    std::string stream;
    bool hold = false;
    uint64_t packets = 0, rtcp = 0, bytes = 0;
    jn_buf* held = nullptr;
  };
  std::map<jn_handle, Tap> taps_;

  struct CachedReply {
    std::string reply;
  };

  std::string ng_listen_, interface_, advertise_, control_topic_;
  sdp::Connection adv_;
  int port_min_ = 30000, port_max_ = 39999;
  Latch latch_ = Latch::Symmetric;
  uint64_t timeout_ms_ = 60000;
  bool publish_ = true;
  uint32_t ssrc_limit_ = 8;
  uint32_t rcvbuf_ = 256 * 1024;
  uint32_t max_sessions_ = 20000;

  jn_handle ng_sock_ = 0, timer_ = 0;
  std::map<std::string, Session> calls_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::vector<uint32_t> free_ids_;
  uint32_t gen_counter_ = 0;
  std::vector<uint8_t> port_used_;
  size_t port_cursor_ = 0;
  static constexpr size_t kMaxStreams = size_t{1} << 22;  // stream ids fit 22 bits of the cookie
  static constexpr size_t kMaxForwards = 16;               // extra endpoints per side
  uint32_t loops_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;
  int control_depth_ = 0;             // ControlLock nesting (control thread only)
  std::vector<jn_handle> to_close_;   // sockets to close once the shard locks are dropped
  std::vector<uint32_t> to_release_;  // bus ids likewise
  std::unordered_map<std::string, CachedReply> reply_cache_;
  std::deque<std::pair<std::string, uint64_t>> cache_order_;
  Counters stats_, reported_;
  uint64_t ice_unsupported_ = 0, reloads_ = 0;
  // Anchored calls: which streams of the core's media description are the session's m= lines.
  std::map<std::string, std::vector<uint32_t>> anchor_pos_;
  struct {
    uint64_t offers = 0, answers = 0, deletes = 0, errors = 0;
  } anchor_stats_;
};

}  // namespace
}  // namespace rtp_relay

JUNCTION_PLUGIN(rtp_relay::RtpRelay, "rtp-relay", "1.0.0", "RTP/RTCP media relay driven by the rtpengine ng protocol", "", 1, 1)
