// The rtpengine ng protocol: the socket (cookie, retransmission cache) and the commands. Each
// command locks only the shard of the call it names, after binding whatever sockets it needs.
#include "relay.hpp"

namespace rtp_relay {

Value value_from_json(const json& j, int depth) {
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
  return Value::string(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
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

namespace {

bool flag(const Value& d, std::string_view f) { return ng::has_item(d, "flags", f); }
Value ok_reply() {
  Value r = Value::dict();
  r.set("result", "ok");
  return r;
}

// An SDP m= line as the session model's input.
MediaInput media_input(const sdp::Session& sd, const sdp::Media& m, const std::string& src_ip) {
  MediaInput in;
  in.relayable = m.port != 0 && m.is_rtp();
  in.media = m.media;
  in.proto = m.proto;
  in.port = m.port;
  if (!in.relayable) return in;
  auto conn = sd.media_connection(m);
  in.ip = !src_ip.empty() ? src_ip : (conn ? conn->address : std::string());
  RecvAddrs ra = sdp_receive_addrs(in.ip, m.port, m, src_ip.empty());
  in.rtp = ra.rtp;
  in.rtcp = ra.rtcp;
  in.rtcp_mux = m.rtcp_mux();
  in.clock_rate = clock_rate_of(m);
  for (auto v : m.attrs("crypto")) in.crypto.emplace_back(v);
  return in;
}

}  // namespace

struct NgCommands {
  Relay& r;

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

    OfferAnswer oa;
    oa.answer = answer;
    oa.call_id = std::string(*call_id);
    oa.from_tag = std::string(*from_tag);
    oa.to_tag = std::string(to_tag.value_or(""));
    oa.sdp_text = std::string(*sdp_text);
    oa.transport = std::string(d.get_str("transport-protocol").value_or(""));
    for (const char* t : {"RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF"})
      if (flag(d, t)) oa.transport = t;
    oa.mux_demux = ng::has_item(d, "rtcp-mux", "demux");
    oa.mux_reject = ng::has_item(d, "rtcp-mux", "reject");
    oa.mux_offer = ng::has_item(d, "rtcp-mux", "offer");
    oa.mux_accept = ng::has_item(d, "rtcp-mux", "accept") || oa.mux_demux;
    if (std::string(d.get_str("ICE").value_or("remove")) != "remove") ++r.ice_unsupported_;
    oa.latch = r.latch_;
    if (flag(d, "asymmetric")) oa.latch = Latch::Off;
    if (flag(d, "strict-source")) oa.latch = Latch::Strict;
    std::string src_ip;
    if (flag(d, "SIP-source-address")) {
      const Value* rf = d.find("received-from");
      if (rf && rf->is_list() && rf->as_list().size() == 2 && rf->as_list()[1].is_str()) src_ip = rf->as_list()[1].as_str();
      else src_ip = addr_ip(from);
    }
    std::vector<MediaInput> in;
    in.reserve(sd.media.size());
    for (auto& m : sd.media) in.push_back(media_input(sd, m, src_ip));

    OfferAnswerResult res = r.apply_offer_answer(oa, in);
    if (!res.error.empty()) return ng::error_reply(res.error);
    RewriteOptions ro;
    ro.addr = r.adv_;
    ro.replace_origin = ng::has_item(d, "replace", "origin");
    ro.remove_ice = true;
    rewrite_sdp(sd, ro, res.plans);
    Value rep = ok_reply();
    rep.set("sdp", sdp::serialize(sd));
    if (res.created) r.announce(oa.call_id);
    return rep;
  }

  Value cmd_delete(const Value& d) {
    auto call_id = d.get_str("call-id");
    if (!call_id || call_id->empty()) return ng::error_reply("No call-id in message");
    Session* sess = r.find(*call_id);
    if (!sess) return ng::error_reply("Call-ID not found or tags didn't match");
    Value rep;
    {
      Relay::ShardLock lock(r, sess->shard);
      rep = r.session_stats(*sess);
    }
    r.destroy(sess->call_id, "ng delete");
    return rep;
  }

  Value cmd_query(const Value& d) {
    auto call_id = d.get_str("call-id");
    if (!call_id || call_id->empty()) return ng::error_reply("No call-id in message");
    Session* sess = r.find(*call_id);
    if (!sess) return ng::error_reply("Call-ID not found or tags didn't match");
    Relay::ShardLock lock(r, sess->shard);
    return r.session_stats(*sess);
  }

  Value cmd_list(const Value& d) {
    int64_t limit = d.get_int("limit").value_or(32);
    Value rep = ok_reply();
    Value calls = Value::list();
    for (auto& [id, s] : r.calls_) {
      if (static_cast<int64_t>(calls.as_list().size()) >= limit) break;
      calls.push(Value::string(id));
    }
    rep.set("calls", calls);
    return rep;
  }

  // Port pairs for n new forwards of one shard's streams, all or none (bound before the lock).
  bool bind_forwards(uint32_t shard, const std::vector<std::pair<Stream*, Side*>>& targets, bool pair, std::vector<BoundPorts>& out) {
    for (auto& [st, side] : targets) {
      // Generation 0 is never a stream's: what arrives on a forward's ports is counted stale.
      uint64_t cookie = (static_cast<uint64_t>(shard) << 24) | (static_cast<uint64_t>(st->id) << 2);
      BoundPorts p;
      if (!r.bind_ports(shard, cookie, pair, p)) {
        for (auto& q : out) r.close_ports(q);
        out.clear();
        return false;
      }
      out.push_back(p);
    }
    return true;
  }
  static const char* too_many(const std::vector<std::pair<Stream*, Side*>>& targets) {
    for (auto& [st, side] : targets)
      if (side->forwards.size() >= kMaxForwards) return "Too many forwards for this side";
    return nullptr;
  }
  template <typename Pred>
  size_t remove_forwards(Side& side, Pred match) {  // under the shard lock
    size_t n = 0;
    for (auto f = side.forwards.begin(); f != side.forwards.end();) {
      if (match(*f)) {
        r.release_forward(*f);
        f = side.forwards.erase(f);
        ++n;
      } else {
        ++f;
      }
    }
    return n;
  }

  // Junction extension: "forward" sends a copy of what the side with `from-tag` sends to one
  // more endpoint, `address` ("ip:port"; RTCP to port + 1, or to the same port with the flag
  // rtcp-mux, then from one relay port), from ports of its own; "unforward" with the same keys
  // stops it. Every stream (m= line) of the call is forwarded unless `index` picks one. Packets
  // that arrive on a forward's ports are counted as stale and dropped.
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
    Session* sess = r.find(*call_id);
    if (!sess) return ng::error_reply("Call-ID not found or tags didn't match");
    std::optional<int64_t> index = d.get_int("index");
    // Tags, ids and forward lists change on this thread only: read without the lock.
    std::vector<std::pair<Stream*, Side*>> targets;
    for (size_t k = 0; k < sess->streams.size(); ++k) {
      Stream* st = r.stream(*sess, k);
      if (index && st->index != *index) continue;
      for (auto& side : st->side)
        if (side.tag == *from_tag) targets.emplace_back(st, &side);
    }
    if (targets.empty()) return ng::error_reply("No stream with from-tag '" + std::string(*from_tag) + "'");
    if (!start) {
      Relay::ShardLock lock(r, sess->shard);
      for (auto& [st, side] : targets) remove_forwards(*side, [&](const Side::Forward& f) { return addr_eq(f.to_rtp, to); });
      return ok_reply();
    }
    if (const char* why = too_many(targets)) return ng::error_reply(why);
    std::vector<BoundPorts> ports;
    if (!bind_forwards(sess->shard, targets, !mux, ports)) return ng::error_reply("Ran out of ports");
    Value list = Value::list();
    {
      Relay::ShardLock lock(r, sess->shard);
      for (size_t k = 0; k < targets.size(); ++k) {
        auto [st, side] = targets[k];
        Side::Forward f;
        f.rtp = ports[k].rtp, f.rtcp = ports[k].rtcp, f.port = ports[k].port;
        f.to_rtp = to;
        f.to_rtcp = to_rtcp;
        side->forwards.push_back(f);
        Value v = Value::dict();
        v.set_int("index", st->index);
        v.set_int("local port", f.port);
        list.push(v);
      }
    }
    Value rep = ok_reply();
    rep.set("forwards", list);
    return rep;
  }

  bool has_subscriber(const Session& sess, std::string_view tag) {
    for (size_t k = 0; k < sess.streams.size(); ++k)
      for (auto& side : r.stream(sess, k)->side)
        for (auto& f : side.forwards)
          if (f.tag == tag) return true;
    return false;
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
    Session* sess = r.find(*call_id);
    if (!sess) return ng::error_reply("Call-ID not found or tags didn't match");
    auto src = sess->sdp_by_tag.find(std::string(*from_tag));
    if (src == sess->sdp_by_tag.end()) return ng::error_reply("No SDP known from from-tag '" + std::string(*from_tag) + "'");
    std::string to_tag(d.get_str("to-tag").value_or(""));
    if (to_tag.empty()) {
      std::string tag;
      if (!junction::util::random_hex(8, tag)) return ng::error_reply("Cannot generate a to-tag (no randomness available)");
      to_tag = "sub-" + tag;
    }
    if (has_subscriber(*sess, to_tag)) return ng::error_reply("to-tag '" + to_tag + "' already subscribes");
    auto parsed = sdp::parse(src->second);
    if (!parsed) return ng::error_reply("Stored SDP unreadable");
    sdp::Session& sd = *parsed.session;
    std::vector<std::pair<Stream*, Side*>> targets;
    std::vector<size_t> lines;
    for (size_t i = 0; i < sd.media.size() && i < sess->streams.size(); ++i) {
      Stream* st = r.stream(*sess, i);
      for (auto& side : st->side) {
        if (side.tag != *from_tag || sd.media[i].port == 0 || !sd.media[i].is_rtp()) continue;
        targets.emplace_back(st, &side);
        lines.push_back(i);
      }
    }
    if (targets.empty()) return ng::error_reply("No stream with from-tag '" + std::string(*from_tag) + "'");
    if (const char* why = too_many(targets)) return ng::error_reply(why);
    std::vector<BoundPorts> ports;  // all or nothing: no half subscription stays behind
    if (!bind_forwards(sess->shard, targets, true, ports)) return ng::error_reply("Ran out of ports");
    std::vector<MediaPlan> plans(sd.media.size());
    {
      Relay::ShardLock lock(r, sess->shard);
      for (size_t k = 0; k < targets.size(); ++k) {
        Side::Forward f;
        f.rtp = ports[k].rtp, f.rtcp = ports[k].rtcp, f.port = ports[k].port;
        f.tag = to_tag;
        targets[k].second->forwards.push_back(f);
      }
    }
    for (size_t k = 0; k < targets.size(); ++k) {
      size_t i = lines[k];
      MediaPlan& p = plans[i];
      p.relay = true;
      p.port = ports[k].port;
      p.strip_crypto = true;  // the subscriber gets what the relay forwards: plain RTP
      if (sd.media[i].is_srtp()) p.proto = sd.media[i].proto.find("AVPF") != std::string::npos ? "RTP/AVPF" : "RTP/AVP";
    }
    RewriteOptions ro;
    ro.addr = r.adv_;
    ro.replace_origin = true;
    rewrite_sdp(sd, ro, plans);
    for (size_t i = 0; i < sd.media.size(); ++i) {
      if (!plans[i].relay) continue;
      for (const char* dir : {"sendrecv", "recvonly", "sendonly", "inactive"}) sd.media[i].remove_attr(dir);
      sd.media[i].add_attr("sendonly", std::nullopt);
    }
    Value rep = ok_reply();
    rep.set("sdp", sdp::serialize(sd));
    rep.set("from-tag", std::string(*from_tag));
    rep.set("to-tag", to_tag);
    return rep;
  }

  Value cmd_subscribe_answer(const Value& d) {
    auto call_id = d.get_str("call-id");
    auto to_tag = d.get_str("to-tag");
    auto sdp_text = d.get_str("sdp");
    if (!call_id || call_id->empty()) return ng::error_reply("No call-id in message");
    if (!to_tag || to_tag->empty()) return ng::error_reply("No to-tag in message");
    if (!sdp_text) return ng::error_reply("No SDP body in message");
    Session* sess = r.find(*call_id);
    if (!sess) return ng::error_reply("Call-ID not found or tags didn't match");
    if (!has_subscriber(*sess, *to_tag)) return ng::error_reply("Unknown to-tag '" + std::string(*to_tag) + "'");
    auto parsed = sdp::parse(*sdp_text);
    if (!parsed) return ng::error_reply("Failed to parse SDP: " + parsed.error + " (line " + std::to_string(parsed.line) + ")");
    const sdp::Session& sd = *parsed.session;
    Relay::ShardLock lock(r, sess->shard);
    for (size_t i = 0; i < sd.media.size() && i < sess->streams.size(); ++i) {
      const sdp::Media& m = sd.media[i];
      auto conn = sd.media_connection(m);
      if (m.port == 0 || !conn) continue;
      RecvAddrs to = sdp_receive_addrs(conn->address, m.port, m, true);
      if (!to.rtp.family) continue;
      if (m.rtcp_mux()) to.rtcp = to.rtp;
      for (auto& side : r.stream(*sess, i)->side)
        for (auto& f : side.forwards) {
          if (f.tag != *to_tag) continue;
          f.to_rtp = to.rtp;
          f.to_rtcp = to.rtcp;  // family 0 (no RTCP port): RTCP is not forwarded to it
        }
    }
    return ok_reply();
  }

  Value cmd_unsubscribe(const Value& d) {
    auto call_id = d.get_str("call-id");
    auto to_tag = d.get_str("to-tag");
    if (!call_id || call_id->empty()) return ng::error_reply("No call-id in message");
    if (!to_tag || to_tag->empty()) return ng::error_reply("No to-tag in message");
    Session* sess = r.find(*call_id);
    if (!sess) return ng::error_reply("Call-ID not found or tags didn't match");
    size_t dropped = 0;
    {
      Relay::ShardLock lock(r, sess->shard);
      for (size_t k = 0; k < sess->streams.size(); ++k)
        for (auto& side : r.stream(*sess, k)->side)
          dropped += remove_forwards(side, [&](const Side::Forward& f) { return f.tag == *to_tag; });
    }
    if (!dropped) return ng::error_reply("Unknown to-tag '" + std::string(*to_tag) + "'");
    return ok_reply();
  }
};

namespace {
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
    if (n == 9 || i + n >= s.size() + (n ? 0 : 1)) return false;
    if (n == 1 && c < 0xC2) return false;  // overlong
    for (size_t k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n + 1;
  }
  return true;
}
bool utf8_ids(const Value& d) {
  for (const char* key : {"call-id", "from-tag", "to-tag"})
    if (auto v = d.get_str(key); v && !valid_utf8(*v)) return false;
  return true;
}
}  // namespace

Value Relay::handle_ng(const Value& d, const jn_addr& from) {
  if (!d.is_dict()) return ng::error_reply("Request is not a dictionary");
  auto cmd = d.get_str("command");
  Value rep;
  if (cmd && *cmd == "ping") host_.info("rtp-relay: ng ping from " + addr_str(from));
  else if (cmd && (*cmd == "offer" || *cmd == "answer" || *cmd == "delete"))
    host_.info("rtp-relay: ng " + std::string(*cmd) + " call-id '" + log_escape(d.get_str("call-id").value_or("")) + "' from " + addr_str(from));
  auto ng_call = d.get_str("call-id");
  NgCommands c{*this};
  if (!cmd) rep = ng::error_reply("No command given");
  else if (!utf8_ids(d))
    // Ids key sessions, appear in events, admin JSON and the reload state: text only (a SIP
    // Call-ID and tags are ASCII tokens anyway).
    rep = ng::error_reply("call-id, from-tag and to-tag must be UTF-8 text");
  else if (ng_call && *cmd != "query" && anchor_pos_.count(std::string(*ng_call)))
    // The core's anchored calls and ng clients' calls share the session table; an ng client
    // may read an anchored call but never change it.
    rep = ng::error_reply("call-id belongs to a call the core anchors");
  else if (*cmd == "ping") {
    rep = Value::dict();
    rep.set("result", "pong");
  } else if (*cmd == "offer") rep = c.offer_answer(d, false, from);
  else if (*cmd == "answer") rep = c.offer_answer(d, true, from);
  else if (*cmd == "delete") rep = c.cmd_delete(d);
  else if (*cmd == "query") rep = c.cmd_query(d);
  else if (*cmd == "list") rep = c.cmd_list(d);
  else if (*cmd == "forward") rep = c.cmd_forward(d, true);
  else if (*cmd == "unforward") rep = c.cmd_forward(d, false);
  else if (*cmd == "subscribe request") rep = c.cmd_subscribe_request(d);
  else if (*cmd == "subscribe answer") rep = c.cmd_subscribe_answer(d);
  else if (*cmd == "unsubscribe") rep = c.cmd_unsubscribe(d);
  else rep = ng::error_reply("Unrecognized command '" + std::string(*cmd) + "'");
  if (auto res = rep.get_str("result"); res && *res == "error") {
    ++stats_.ng_errors;
    host_.info("ng " + log_escape(cmd.value_or("?"), 64) + " call-id '" + log_escape(d.get_str("call-id").value_or("")) +
               "': " + log_escape(rep.get_str("error-reason").value_or(""), 512));
  }
  return rep;
}

void Relay::on_ng_datagram(jn_handle sock, const jn_buf* b) {
  ++stats_.ng_requests;
  std::string_view dgram(reinterpret_cast<const char*>(b->data), b->len);
  auto pr = ng::parse(dgram);
  if (!pr.have_cookie) {
    ++stats_.ng_bad;
    host_.warn("ng: dropped datagram from " + addr_str(b->src) + ": " + log_escape(pr.error));
    return;
  }
  // A retransmission (same cookie from the same peer) gets the cached reply, not a redo.
  std::string key = pr.msg.cookie + "|" + addr_str(b->src);
  if (auto it = reply_cache_.find(key); it != reply_cache_.end()) {
    ++stats_.ng_retransmits;
    host_.udp_send(sock, b->src, it->second.reply);
    return;
  }
  if (host_.enabled(JN_LOG_DEBUG)) host_.debug("rtp-relay: ng request from " + addr_str(b->src) + ": " + log_escape(dgram, 4000));
  Value reply;
  if (!pr.ok) {
    ++stats_.ng_bad;
    host_.warn("ng: " + log_escape(pr.error) + " (from " + addr_str(b->src) + ")");
    reply = ng::error_reply(pr.error);
  } else {
    reply = handle_ng(pr.msg.dict, b->src);
  }
  std::string out = ng::format(pr.msg.cookie, reply);
  host_.udp_send(sock, b->src, out);
  uint64_t now = host_.now_ms();
  while (!cache_order_.empty() && (cache_order_.size() >= 4096 || now - cache_order_.front().second > 30000)) {
    reply_cache_.erase(cache_order_.front().first);
    cache_order_.pop_front();
  }
  if (reply_cache_.emplace(key, CachedReply{out}).second) cache_order_.emplace_back(key, now);
}

}  // namespace rtp_relay
