// Hot reload: calls keep their SIP dialog (the stack's transactions, the dialogs), their RTP
// sockets (handles of the slot), bus stream ids and the backend queue. A publishing RTMP output
// keeps its TCP connection (the core's handle and the cookie's attempt number) and its
// Publisher's state (sdk/rtmp save/restore), and the call's A/V clock is kept too, so the RTMP
// stream goes on with no status change and monotonic timestamps. An output that was not
// publishing (connecting, backing off) is re-made by the new instance.
#include "plugin.hpp"

#include <junction/util/addr.hpp>
#include <junction/util/encoding.hpp>

#include <algorithm>
#include <unordered_set>

namespace capture {

using nlohmann::json;

namespace {

json req_json(const StartRequest& r) {
  json j = {{"callId", r.call_id}, {"callee", r.callee}, {"toStream", r.to_stream}, {"hasAudio", r.has_audio},
            {"hasVideo", r.has_video}, {"sipLogin", r.sip_login}, {"sipAuthenticationName", r.sip_auth_name},
            {"sipPassword", r.sip_password}, {"sipDomain", r.sip_domain}, {"sipOutboundProxy", r.sip_proxy},
            {"appKey", r.app_key}, {"visibleName", r.visible_name}, {"sipRegisterRequired", r.register_required},
            {"custom", r.custom}};
  if (r.sip_port) j["sipPort"] = r.sip_port;
  if (r.transport != SipTransport::Default) j["sipTransport"] = sip_transport_name(r.transport);
  if (r.rtmp) j["rtmpUrl"] = r.rtmp->url, j["rtmpStream"] = r.rtmp->stream;
  return j;
}

json addr_json(const jn_addr& a) { return a.family ? json(junction::util::format_addr(a)) : json(""); }
jn_addr addr_of(const json& j) {
  jn_addr a{};
  if (j.is_string()) junction::util::parse_addr(j.get<std::string>(), a);
  return a;
}

}  // namespace

jn_status CapturePlugin::save_state(std::string& out) {
  json calls = json::array();
  reg_.for_each([&](Call& c) {
    json ps = json::array();
    for (auto& p : c.pushes)
      ps.push_back({{"id", p.id}, {"url", p.rtmp.url}, {"stream", p.rtmp.stream}, {"status", static_cast<int>(p.status)},
                    {"reason", p.reason}, {"primary", p.primary}});
    json j = {{"id", c.id}, {"callId", c.call_id}, {"req", req_json(c.req)}, {"status", static_cast<int>(c.status)},
              {"sipStatus", c.sip_status}, {"info", c.info}, {"caller", c.caller}, {"localSdp", c.local_sdp},
              {"remoteSdp", c.remote_sdp}, {"created", c.created_ms}, {"ended", c.ended_ms}, {"pushes", ps}};
    if (auto it = legs_.find(c.id); it != legs_.end()) {
      const SipLeg& l = it->second;
      j["leg"] = {{"flowProto", static_cast<int>(l.flow.proto)}, {"flowPeer", addr_json(l.flow.peer)}, {"flowSock", l.flow.sock},
                  {"flowConn", l.flow.conn}, {"transport", sip_transport_name(l.transport)}, {"connPending", l.conn_pending},
                  {"resolved", l.resolved}, {"ruri", l.request_uri}, {"route", l.route}, {"tag", l.local_tag},
                  {"invite", l.invite}, {"inviteTxn", l.invite_txn}, {"inviteCseq", l.invite_cseq},
                  {"provisional", l.provisional}, {"cancelSent", l.cancel_sent}, {"regCallId", l.reg_call_id},
                  {"regTag", l.reg_tag}, {"regTxn", l.reg_txn}, {"regCseq", l.reg_cseq}, {"registered", l.registered},
                  {"hasDialog", l.has_dialog}, {"dialog", l.has_dialog ? l.dialog.to_json() : json()},
                  {"sdpVersion", l.sdp_version}, {"authTries", l.auth_tries}, {"authCount", l.auth_count}};
      if (l.dtmf_timer) host().stop_timer(l.dtmf_timer);
    }
    if (auto m = media_of(c.id)) {
      std::lock_guard<std::mutex> g(m->mu);
      // AAC: the frames of every full block go out now (before the publishers' state is saved
      // below), the partial block and the next frame's time go to the next instance's encoder.
      aac_end(*m, true);
      j["media"] = {{"loop", m->loop}, {"aRtp", m->audio.rtp}, {"aRtcp", m->audio.rtcp}, {"vRtp", m->video.rtp},
                    {"vRtcp", m->video.rtcp}, {"aPort", m->audio.port}, {"vPort", m->video.port},
                    {"aBus", m->audio.bus_id}, {"vBus", m->video.bus_id}, {"aSsrc", m->audio.own_ssrc},
                    {"vSsrc", m->video.own_ssrc}, {"dtmfSeq", m->dtmf_seq}, {"dtmfTs", m->dtmf_ts},
                    {"answered", m->answered}, {"publishBus", m->publish_bus},
                    {"aac", junction::util::base64_encode(m->aac_resume)},
                    // the A/V clock, so the kept RTMP outputs' timestamps go on where they were
                    {"clock", {{"t0", m->have_t0 ? json(m->t0_ms) : json()},
                               {"a", m->audio.have_base ? json::array({m->audio.base_ms, m->audio.base_pts}) : json()},
                               {"v", m->video.have_base ? json::array({m->video.base_ms, m->video.base_pts}) : json()},
                               {"srAligned", m->sr_aligned}, {"srShift", m->sr_shift_ms}, {"kfSeen", m->keyframe_seen}}},
                    // the counters `captures` shows go on too
                    {"counts", {m->audio.frames, m->audio.bytes, m->audio.packets, m->video.frames, m->video.bytes, m->video.packets}}};
    }
    calls.push_back(j);
  });
  // Every push's connection is closed here and re-made by the next instance.
  json conns = json::array(), bus = json::array(), attempts = json::object(), kept = json::object();
  {
    std::lock_guard<std::mutex> g(idx_mu_);
    for (auto& [id, p] : pushes_) {
      std::lock_guard<std::mutex> pg(p->shard->mu);
      attempts[std::to_string(id)] = p->attempt_no;  // the next instance's cookies must not name a closed attempt
      // A publishing output hands its connection and publisher state to the next instance.
      bool keepable = p->conn && p->out && !p->closed && !p->stopped && !p->pending_conn;
      if (keepable) p->flush();  // the held media goes out on the connection before the swap (save() has none of it)
      std::string pub = keepable ? p->out->save() : std::string();
      if (!pub.empty()) {
        kept[std::to_string(id)] = {{"conn", p->conn}, {"attempt", p->attempt_no}, {"pub", pub}, {"bytes", p->bytes_out}};
      } else {
        if (p->conn) conns.push_back(p->conn);
        if (p->pending_conn) conns.push_back(p->pending_conn);
      }
      if (p->retry_timer) host().stop_timer(p->retry_timer), p->retry_timer = 0;
      if (!p->call)
        bus.push_back({{"id", id}, {"stream", p->bus_stream}, {"url", p->target.url}, {"rtmpStream", p->target.stream},
                       {"subV", p->sub_video}, {"subA", p->sub_audio}, {"everActive", p->ever_active},
                       {"status", static_cast<int>(p->status)},
                       {"clock", {{"t0", p->have_t0 ? json(p->t0_ms) : json()},
                                  {"v", p->have_vbase ? json::array({p->vbase, p->vbase_ms}) : json()},
                                  {"a", p->have_abase ? json::array({p->abase, p->abase_ms}) : json()}}}});
    }
  }
  json txns = json::array();
  for (auto& [t, c] : txn_call_) txns.push_back({t, c});
  json ev = json::array();
  for (auto& e : events_) ev.push_back(e);
  json sipc = json::array();  // every SIP TCP/TLS connection, also of ended calls not yet swept
  for (auto& [conn, call] : sip_conns_) sipc.push_back({conn, call});
  json st = {{"v", 1},
             {"nextId", next_id_},
             {"nextLoop", next_loop_},
             {"http", http_},
             {"tick", tick_},
             {"env", env_.save()},
             {"stack", junction::util::base64_encode(stack_->save())},
             {"calls", calls},
             {"conns", conns},
             {"busPushes", bus},
             {"kept", kept},
             {"attempts", attempts},
             {"txns", txns},
             {"sipConns", sipc},
             {"events", ev},
             {"eventReq", event_req_},
             {"eventTimer", event_timer_},
             {"eventAttempt", event_attempt_},
             {"counters", {calls_total_, calls_failed_, events_sent_, events_dropped_, events_failed_, rtmp_reconnects_, rtp_timeouts_, keyframe_requests_}}};
  out = st.dump();
  return JN_OK;
}

jn_status CapturePlugin::restore_state(uint32_t, std::string_view data) {
  if (jn_status pin = pin_codec_libraries(); pin != JN_OK) return pin;  // already pinned: a no-op
  json st = json::parse(data, nullptr, false);
  if (!st.is_object() || st.value("v", 0) != 1) {
    host().set_error("rest-sip-capture: unreadable state");
    return JN_ERR_ABI;
  }
  next_id_ = st.value("nextId", uint64_t{1});
  next_loop_ = st.value("nextLoop", 0u);
  http_ = st.value("http", jn_handle{0});
  tick_ = st.value("tick", jn_handle{0});
  env_.restore(st["env"]);
  std::string stack_bytes, err;
  if (!junction::util::base64_decode(st.value("stack", std::string()), stack_bytes) || !stack_->restore(stack_bytes, err)) {
    host().set_error("rest-sip-capture: SIP transactions not restorable: " + err);
    return JN_ERR_ABI;
  }
  for (auto& e : st["events"]) events_.push_back(e.get<std::string>());
  if (st.contains("sipConns"))
    for (auto& e : st["sipConns"]) sip_conns_[e.at(0).get<jn_handle>()] = e.at(1).get<uint64_t>();
  event_req_ = st.value("eventReq", jn_handle{0});
  event_timer_ = st.value("eventTimer", jn_handle{0});
  event_attempt_ = st.value("eventAttempt", 0u);
  if (st["counters"].is_array() && st["counters"].size() == 8) {
    auto& k = st["counters"];
    calls_total_ = k[0], calls_failed_ = k[1], events_sent_ = k[2], events_dropped_ = k[3], events_failed_ = k[4];
    rtmp_reconnects_ = k[5], rtp_timeouts_ = k[6], keyframe_requests_ = k[7];
  }
  for (auto& t : st["txns"]) txn_call_[t[0].get<sip::TxnId>()] = t[1].get<uint64_t>();
  for (auto& h : st["conns"]) host().tcp_close(h.get<jn_handle>());
  std::vector<std::shared_ptr<Push>> reconnect;
  std::unordered_set<uint64_t> kept_ids;
  const json kept = st.value("kept", json::object());
  // Takes over a publishing output's connection and publisher state; false (connection closed,
  // the output is re-made like before) when there is none or the state is unusable.
  auto keep = [&](const std::shared_ptr<Push>& p) {
    auto it = kept.find(std::to_string(p->id));
    if (it == kept.end()) return false;
    jn_handle conn = it->value("conn", jn_handle{0});
    auto out = make_rtmp_out(p->target, conf_.rtmp_max_queue_bytes, *p, p->call != 0);
    std::string err = out ? std::string() : "no RTMP publisher in this build";
    if (!out || !conn || !out->restore(it->value("pub", std::string()), err)) {
      host().warn("rest-sip-capture: RTMP " + p->target.key() + ": publisher state not restorable (" + err + "): reconnecting");
      if (conn) host().tcp_close(conn);
      return false;
    }
    std::lock_guard<std::mutex> g(p->shard->mu);
    p->out = std::move(out);
    p->conn = conn;
    p->attempt_no = it->value("attempt", 0u);  // the connection's cookie names this attempt
    p->out_status = OutStatus::Publishing;
    p->bytes_out = it->value("bytes", uint64_t{0});
    kept_ids.insert(p->id);
    return true;
  };
  for (auto& j : st["calls"]) {
    BadRequest bad;
    auto req = parse_startup(j["req"], bad);
    if (!req) continue;
    Call c;
    c.id = j.value("id", uint64_t{0});
    c.call_id = j.value("callId", std::string());
    c.req = *req;
    c.status = static_cast<Status>(j.value("status", 0));
    c.sip_status = j.value("sipStatus", 0);
    c.info = j.value("info", std::string());
    c.caller = j.value("caller", std::string());
    c.local_sdp = j.value("localSdp", std::string());
    c.remote_sdp = j.value("remoteSdp", std::string());
    c.created_ms = j.value("created", uint64_t{0});
    c.ended_ms = j.value("ended", uint64_t{0});
    Call& call = reg_.add(std::move(c));
    if (j.contains("leg")) {
      auto& l = j["leg"];
      SipLeg& leg = legs_[call.id];
      leg.flow.proto = static_cast<sip::Proto>(l.value("flowProto", 1));
      leg.flow.peer = addr_of(l["flowPeer"]);
      leg.flow.sock = l.value("flowSock", jn_handle{0});
      // TCP / TLS: our connection (the env keeps it across the reload) and whether it still connects
      leg.flow.conn = l.value("flowConn", jn_handle{0});
      leg.transport = parse_sip_transport(l.value("transport", std::string("udp"))).value_or(SipTransport::Udp);
      leg.conn_pending = l.value("connPending", false);
      leg.resolved = l.value("resolved", false);
      leg.request_uri = l.value("ruri", std::string());
      leg.route = l.value("route", std::string());
      leg.local_tag = l.value("tag", std::string());
      leg.invite = l.value("invite", std::string());
      leg.invite_txn = l.value("inviteTxn", sip::TxnId{0});
      leg.invite_cseq = l.value("inviteCseq", 0u);
      leg.provisional = l.value("provisional", false);
      leg.cancel_sent = l.value("cancelSent", false);
      leg.reg_call_id = l.value("regCallId", std::string());
      leg.reg_tag = l.value("regTag", std::string());
      leg.reg_txn = l.value("regTxn", sip::TxnId{0});
      leg.reg_cseq = l.value("regCseq", 0u);
      leg.registered = l.value("registered", false);
      leg.has_dialog = l.value("hasDialog", false) && sip::Dialog::from_json(l["dialog"], leg.dialog);
      leg.sdp_version = l.value("sdpVersion", uint64_t{1});
      leg.auth_tries = l.value("authTries", 0);
      leg.auth_count = l.value("authCount", 0);
    }
    if (j.contains("media")) {
      auto& md = j["media"];
      auto m = std::make_shared<CallMedia>();
      m->id = call.id;
      m->call_id = call.call_id;
      m->loop = md.value("loop", 0u);
      m->audio.rtp = md.value("aRtp", jn_handle{0});
      m->audio.rtcp = md.value("aRtcp", jn_handle{0});
      m->video.rtp = md.value("vRtp", jn_handle{0});
      m->video.rtcp = md.value("vRtcp", jn_handle{0});
      m->audio.port = md.value("aPort", uint16_t{0});
      m->video.port = md.value("vPort", uint16_t{0});
      m->audio.bus_id = md.value("aBus", 0u);
      m->video.bus_id = md.value("vBus", 0u);
      m->audio.own_ssrc = md.value("aSsrc", 0u);
      m->video.own_ssrc = md.value("vSsrc", 0u);
      m->dtmf_seq = md.value("dtmfSeq", uint16_t{0});
      m->dtmf_ts = md.value("dtmfTs", 0u);
      m->publish_bus = md.value("publishBus", true);
      if (!junction::util::base64_decode(md.value("aac", std::string()), m->aac_resume)) m->aac_resume.clear();
      m->dtmf_pt = conf_.dtmf_payload_type;
      {
        std::lock_guard<std::mutex> g(idx_mu_);
        media_[call.id] = m;
      }
      if (md.value("answered", false) && !call.remote_sdp.empty()) {
        std::string why;
        auto a = parse_answer(call.remote_sdp, why);
        if (!a || !media_apply_answer(call, *a, why)) host().warn("rest-sip-capture: call " + call.call_id + ": media not restored: " + why);
      }
      for (auto& pj : j["pushes"]) {
        RtmpTarget t;
        std::string why;
        if (!parse_rtmp_url(pj.value("url", std::string()), t, why)) continue;
        t.stream = pj.value("stream", std::string());
        auto p = std::make_shared<Push>(host());
        p->id = pj.value("id", uint64_t{0});
        p->call = call.id;
        p->target = t;
        p->primary = pj.value("primary", false);
        p->shard = m;
        p->loop = m->loop;
        p->status = static_cast<RtmpStatus>(pj.value("status", 1));
        p->reason = pj.value("reason", std::string());
        p->ever_active = p->status == RtmpStatus::Active || p->status == RtmpStatus::Lost;
        if (p->status == RtmpStatus::Stopped) continue;
        call.pushes.push_back(PushInfo{p->id, t, p->status, p->reason, p->primary});
        m->pushes.push_back(p);
        {
          std::lock_guard<std::mutex> g(idx_mu_);
          pushes_[p->id] = p;
        }
        if (call.status == Status::Established || call.status == Status::Hold) {
          if (!keep(p)) reconnect.push_back(p);
        } else if (kept.contains(std::to_string(p->id))) {
          host().tcp_close(kept[std::to_string(p->id)].value("conn", jn_handle{0}));
        }
      }
      const json& ck = md.contains("clock") ? md["clock"] : json::object();
      if (ck.is_object()) {
        std::lock_guard<std::mutex> g(m->mu);
        if (ck.contains("t0") && ck["t0"].is_number()) m->have_t0 = true, m->t0_ms = ck["t0"].get<uint64_t>();
        auto base = [&](const char* k, Stream& s) {
          if (ck.contains(k) && ck[k].is_array() && ck[k].size() == 2)
            s.have_base = true, s.base_ms = ck[k][0].get<uint64_t>(), s.base_pts = ck[k][1].get<int64_t>();
        };
        base("a", m->audio);
        base("v", m->video);
        m->sr_aligned = ck.value("srAligned", false);
        m->sr_shift_ms = ck.value("srShift", int64_t{0});
        m->keyframe_seen = ck.value("kfSeen", false);
      }
      if (md.contains("counts") && md["counts"].is_array() && md["counts"].size() == 6) {
        auto& n = md["counts"];
        std::lock_guard<std::mutex> g(m->mu);
        m->audio.frames = n[0], m->audio.bytes = n[1], m->audio.packets = n[2];
        m->video.frames = n[3], m->video.bytes = n[4], m->video.packets = n[5];
      }
      // a kept output goes on without a keyframe; a re-made one needs one at once
      m->want_keyframe = !m->keyframe_seen || std::any_of(m->pushes.begin(), m->pushes.end(), [&](auto& p) { return !kept_ids.count(p->id); });
    } else {
      for (auto& pj : j["pushes"]) {
        RtmpTarget t;
        std::string why;
        if (parse_rtmp_url(pj.value("url", std::string()), t, why)) {
          t.stream = pj.value("stream", std::string());
          call.pushes.push_back(PushInfo{pj.value("id", uint64_t{0}), t, static_cast<RtmpStatus>(pj.value("status", 1)),
                                         pj.value("reason", std::string()), pj.value("primary", false)});
        }
      }
    }
  }
  for (auto& bj : st["busPushes"]) {
    RtmpTarget t;
    std::string why;
    if (!parse_rtmp_url(bj.value("url", std::string()), t, why)) continue;
    t.stream = bj.value("rtmpStream", std::string());
    auto p = std::make_shared<Push>(host());
    p->id = bj.value("id", uint64_t{0});
    p->bus_stream = bj.value("stream", std::string());
    p->target = t;
    p->shard = std::make_shared<Shard>();
    p->sub_video = bj.value("subV", jn_handle{0});
    p->sub_audio = bj.value("subA", jn_handle{0});
    p->ever_active = bj.value("everActive", false);
    if (bj.contains("status")) p->status = static_cast<RtmpStatus>(bj.value("status", 1));
    if (auto& ck = bj["clock"]; ck.is_object()) {
      if (ck.contains("t0") && ck["t0"].is_number()) p->have_t0 = true, p->t0_ms = ck["t0"].get<uint64_t>();
      if (ck.contains("v") && ck["v"].is_array() && ck["v"].size() == 2)
        p->have_vbase = true, p->vbase = ck["v"][0].get<int64_t>(), p->vbase_ms = ck["v"][1].get<uint64_t>();
      if (ck.contains("a") && ck["a"].is_array() && ck["a"].size() == 2)
        p->have_abase = true, p->abase = ck["a"][0].get<int64_t>(), p->abase_ms = ck["a"][1].get<uint64_t>();
    }
    {
      std::lock_guard<std::mutex> g(idx_mu_);
      pushes_[p->id] = p;
    }
    bus_pushes_[t.key()] = p->id;
    if (!keep(p)) reconnect.push_back(p);
  }
  if (st["attempts"].is_object()) {
    std::lock_guard<std::mutex> g(idx_mu_);
    for (auto& [id, p] : pushes_)
      if (!kept_ids.count(id)) p->attempt_no = st["attempts"].value(std::to_string(id), 0u) + 1;
  }
  for (auto& p : reconnect) {
    if (p->ever_active) push_set_status(*p, RtmpStatus::Lost, "plugin reloaded: reconnecting");
    push_connect(p);
  }
  host().info("rest-sip-capture: restored " + std::to_string(reg_.size()) + " calls, " + std::to_string(kept_ids.size()) +
              " RTMP outputs kept, " + std::to_string(reconnect.size()) + " reconnecting");
  return JN_OK;
}

}  // namespace capture
