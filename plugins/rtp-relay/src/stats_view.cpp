// What the relay shows: a call's stats (ng query/delete, admin sessions), the totals (admin
// stats, metrics) and the per-shard lock counts (admin locks).
#include "relay.hpp"

namespace rtp_relay {

Value Relay::side_stats(const Side& s, uint64_t now) const {
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

// Under the session's shard lock.
Value Relay::session_stats(const Session& sess) const {
  uint64_t now = host_.now_ms();
  Value r = Value::dict();
  r.set("result", "ok");
  r.set_int("created", static_cast<int64_t>(sess.created_ms / 1000));
  r.set_int("age ms", static_cast<int64_t>(now - sess.created_ms));
  r.set_int("media loop", sess.shard);
  uint64_t pk = 0, by = 0, er = 0, rpk = 0, rby = 0;
  Value streams = Value::list();
  for (size_t k = 0; k < sess.streams.size(); ++k) {
    const Stream& st = *stream(sess, k);
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

// The control counters plus every shard's media counters (relaxed reads, no lock).
Counters Relay::totals() const {
  Counters t = stats_;
  for (auto& sh : shards_) {
    const MediaCounters& c = sh->stats;
    t.rx += c.rx.get(), t.forwarded += c.forwarded.get(), t.malformed += c.malformed.get(), t.source += c.source.get();
    t.nodest += c.nodest.get(), t.srtp += c.srtp.get(), t.ssrc_flood += c.ssrc_flood.get(), t.stale += c.stale.get();
    t.payload_copies += c.payload_copies.get();
  }
  return t;
}

json Relay::locks_json() const {
  json a = json::array();
  for (size_t k = 0; k < shards_.size(); ++k)
    a.push_back({{"loop", k}, {"control", shards_[k]->control_locks.get()}, {"media", shards_[k]->media_locks.get()}});
  return json{{"shards", a}, {"deadline_checks", deadline_checks_}};
}

// Takes the shards one at a time (for the per-session sums), never all at once.
json Relay::stats_json() const {
  const Counters c = totals();
  uint64_t pk = 0, fw = 0, lost = 0;
  Relay& self = const_cast<Relay&>(*this);
  for (uint32_t k = 0; k < shards_.size(); ++k) {
    if (!shards_[k]->live) continue;
    ShardLock lock(self, k);
    for (auto& st : shards_[k]->streams)
      if (st)
        for (auto& side : st->side) {
          pk += side.packets;
          fw += side.forwarded;
          lost += static_cast<uint64_t>(side.rs.lost());
        }
  }
  json shards = json::array();
  for (size_t k = 0; k < shards_.size(); ++k)
    shards.push_back({{"loop", k}, {"streams", shards_[k]->live}, {"rx", shards_[k]->stats.rx.get()}, {"forwarded", shards_[k]->stats.forwarded.get()}});
  return json{{"sessions", calls_.size()},
              {"rx", c.rx},
              {"forwarded", c.forwarded},
              {"session_rtp_packets", pk},
              {"session_forwarded", fw},
              {"session_lost", lost},
              {"dropped",
               {{"malformed", c.malformed},
                {"source", c.source},
                {"no_destination", c.nodest},
                {"srtp", c.srtp},
                {"ssrc_flood", c.ssrc_flood},
                {"stale", c.stale}}},
              {"payload_copies", c.payload_copies},
              {"ng", {{"requests", c.ng_requests}, {"errors", c.ng_errors}, {"bad", c.ng_bad}, {"retransmits", c.ng_retransmits}}},
              {"timeouts", c.timeouts},
              {"anchor", {{"sessions", anchor_pos_.size()}, {"offers", anchor_stats_.offers}, {"answers", anchor_stats_.answers},
                          {"deletes", anchor_stats_.deletes}, {"errors", anchor_stats_.errors}}},
              {"reloads", reloads_},
              {"media_loops", loops_},
              {"port_range", legacy_ports_ ? json(nullptr) : json(port_range_)},
              {"shards", shards}};
}

}  // namespace rtp_relay
