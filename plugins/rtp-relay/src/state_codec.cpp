// Hot reload: every session, its sockets (handles), latches, SRTP keys + rollover counters, and
// stats go to the next instance as JSON; libsrtp contexts are rebuilt from the keys. save_state
// takes one shard lock at a time (per call), never all of them.
#include "relay.hpp"

#include <junction/util/state.hpp>

namespace rtp_relay {

namespace {

json rs_json(const rtp::ReceiverStats& rs) {
  auto s = rs.snapshot();
  return json::array({s.ssrc, s.base_seq, s.cycles, s.bad_seq, s.probation, s.clock_rate, s.max_seq, s.have_ssrc, s.have_transit,
                      s.received, s.received_in_seq, s.bad, s.ssrc_changes, s.transit, s.jitter});
}
void rs_restore(rtp::ReceiverStats& rs, const json& a) {
  rtp::ReceiverStats::Snapshot s{};
  s.ssrc = a[0], s.base_seq = a[1], s.cycles = a[2], s.bad_seq = a[3], s.probation = a[4], s.clock_rate = a[5];
  s.max_seq = a[6], s.have_ssrc = a[7], s.have_transit = a[8], s.received = a[9], s.received_in_seq = a[10];
  s.bad = a[11], s.ssrc_changes = a[12], s.transit = a[13], s.jitter = a[14];
  rs.restore(s);
}
std::string b64(const std::string& s) { return sdp::base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

json side_json(const Side& s) {
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
  if (s.rs.received() && s.srtp_in.roc(s.rs.ssrc(), roc)) j["in_roc"] = {s.rs.ssrc(), roc};
  return j;
}

void side_restore(Side& s, const json& sj) {
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
    s.forwards.push_back(x);
  }
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
}

}  // namespace

jn_status Relay::save_state(std::string& out) {
  const Counters c = totals();
  json j;
  j["ng_sock"] = ng_sock_;
  j["timer"] = timer_;
  j["gen"] = gen_counter_;
  j["cursor"] = port_cursor_;
  j["reloads"] = reloads_;
  j["stats"] = {c.rx, c.forwarded, c.malformed, c.source, c.nodest, c.srtp, c.ssrc_flood,
                c.stale, c.ng_requests, c.ng_errors, c.ng_bad, c.ng_retransmits, c.timeouts, c.payload_copies};
  json sessions = json::array();
  for (auto& [id, sess] : calls_) {
    json js = {{"call_id", sess.call_id}, {"created", sess.created_ms}, {"signal", sess.last_signal_ms}, {"answered", sess.answered},
               {"sdp_by_tag", sess.sdp_by_tag}, {"shard", sess.shard}};
    json streams = json::array();
    {
      ShardLock lock(*this, sess.shard);
      for (size_t k = 0; k < sess.streams.size(); ++k) {
        const Stream& st = *stream(sess, k);
        json sides = json::array();
        for (int s = 0; s < 2; ++s) {
          json sj = side_json(st.side[s]);
          // Outbound SRTP toward side s carries side (1-s)'s SSRC.
          uint32_t roc = 0;
          const Side& src = st.side[1 - s];
          if (src.rs.received() && st.side[s].srtp_out.roc(src.rs.ssrc(), roc)) sj["out_roc"] = {src.rs.ssrc(), roc};
          sides.push_back(std::move(sj));
        }
        streams.push_back({{"id", st.id}, {"gen", st.gen}, {"shard", st.shard}, {"index", st.index}, {"media", st.media}, {"sides", sides}});
      }
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
  out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // read back with junction::util::StateIn
  return JN_OK;
}

jn_status Relay::restore_state(uint32_t schema, std::string_view data) {
  junction::util::StateIn in;
  std::string error;
  if (jn_status st = in.parse(schema, 1, 1, data, error); st != JN_OK) {
    host_.set_error("rtp-relay: " + error);
    return st;
  }
  if (jn_status st = setup_ports(); st != JN_OK) return st;
  const json& j = in.json();
  ng_sock_ = j.at("ng_sock");
  timer_ = j.at("timer");
  gen_counter_ = j.at("gen");
  port_cursor_ = j.at("cursor");
  reloads_ = j.value("reloads", 0ull) + 1;
  auto& c = j.at("stats");
  // The totals so far continue in the control counters (the shards start from 0).
  uint64_t* fields[] = {&stats_.rx, &stats_.forwarded, &stats_.malformed, &stats_.source, &stats_.nodest, &stats_.srtp,
                        &stats_.ssrc_flood, &stats_.stale, &stats_.ng_requests, &stats_.ng_errors, &stats_.ng_bad,
                        &stats_.ng_retransmits, &stats_.timeouts, &stats_.payload_copies};
  for (size_t i = 0; i < std::size(fields) && i < c.size(); ++i) *fields[i] = c[i];
  reported_ = stats_;
  uint64_t now = host_.now_ms();
  for (auto& js : j.at("sessions")) {
    Session sess;
    sess.call_id = js.at("call_id");
    sess.created_ms = js.at("created");
    sess.last_signal_ms = js.at("signal");
    sess.answered = js.at("answered");
    sess.shard = js.value("shard", 0u);
    if (js.contains("sdp_by_tag")) sess.sdp_by_tag = js["sdp_by_tag"].get<std::map<std::string, std::string>>();
    std::vector<std::unique_ptr<Stream>> streams;
    for (auto& jst : js.at("streams")) {
      auto st = std::make_unique<Stream>();
      st->id = jst.at("id");
      st->gen = jst.at("gen");
      // The sockets stay on the loop they were bound on; a copy running fewer loops than that
      // cannot serve them.
      st->shard = jst.value("shard", 0u);
      if (st->shard >= shards_.size() || st->id >= kMaxStreams) {
        host_.set_error("rtp-relay: saved state has streams on media loop " + std::to_string(st->shard) + " but the core runs " +
                        std::to_string(loops_));
        return JN_ERR_STATE;
      }
      sess.shard = st->shard;  // a session's streams share one shard
      st->index = jst.at("index");
      st->media = jst.at("media");
      st->call_id = sess.call_id;
      for (int k = 0; k < 2; ++k) {
        Side& s = st->side[k];
        side_restore(s, jst.at("sides")[k]);
        if (!s.bus_id && publish_ && host_.bus_intern(s.bus, &s.bus_id) != JN_OK) s.bus_id = 0;
        // The legacy range's slots in use (the range may have changed).
        if (legacy_ports_) {
          auto mark = [&](uint32_t port) {
            if (port < static_cast<uint32_t>(port_min_)) return;
            size_t slot = (port - static_cast<uint32_t>(port_min_)) / 2;
            if (slot < port_used_.size()) port_used_[slot] = 1;
          };
          mark(s.port);
          for (auto& f : s.forwards) mark(f.port);
        }
      }
      streams.push_back(std::move(st));
    }
    std::string key = sess.call_id;
    Session& placed = calls_.emplace(key, std::move(sess)).first->second;
    {
      ShardLock lock(*this, placed.shard);
      for (auto& st : streams) insert_stream(placed, std::move(st));
    }
    if (timeout_ms_) schedule(placed, std::max(now, placed.last_signal_ms) + timeout_ms_);
  }
  for (auto& sh : shards_)
    sh->ids.rebuild(static_cast<uint32_t>(sh->streams.size()), [&](uint32_t i) { return sh->streams[i] != nullptr; });
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
  if (!control_topic_.empty()) host_.event_subscribe(control_topic_);
  return JN_OK;
}

}  // namespace rtp_relay

