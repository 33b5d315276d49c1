// Media anchoring: the core passes a call's offer/answer media through the relay as a neutral
// jn_media_desc. Each relayable stream becomes a MediaInput for the same session model the ng
// path uses (call-id = the core's call id, side "a" = the A-leg's, "b" = the B-leg's), and the
// reply is the same description with the relayed streams' addresses replaced by the relay's.
// No SDP text on the way.
#include "relay.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace rtp_relay {

using junction::sdk::to_sv;

namespace {

bool anchorable(const jn_media_stream& s) {
  if (s.addr.family != 4 && s.addr.family != 6) return false;
  if (s.addr.port == 0) return false;
  std::string t(to_sv(s.transport));
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return t == "rtp/avp" || t == "rtp/savp" || t == "rtp/avpf" || t == "rtp/savpf";
}

std::string upper(std::string_view s) {
  std::string o(s);
  for (auto& c : o) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return o;
}

// A stream of the neutral description as the session model's input. A non-relayable stream
// (a rejected line) is left alone. RTCP: rtcp_addr when the core gives one, the RTP address
// with rtcp-mux, else RTP port + 1.
MediaInput anchor_input(const jn_media_stream* s) {
  MediaInput in;
  if (!s || !anchorable(*s)) return in;
  in.relayable = true;
  in.media = s->kind == JN_MEDIA_VIDEO ? "video" : s->kind == JN_MEDIA_DATA ? "application" : "audio";
  in.proto = upper(to_sv(s->transport));
  in.port = s->addr.port;
  in.ip = addr_ip(s->addr);
  in.rtp = s->addr;
  in.rtcp_mux = JN_HAS_FIELD(s, jn_media_stream, flags) && (s->flags & JN_MS_RTCP_MUX);
  if (in.rtcp_mux) {
    in.rtcp = s->addr;
  } else if (JN_HAS_FIELD(s, jn_media_stream, rtcp_addr) && s->rtcp_addr.family && s->rtcp_addr.port) {
    in.rtcp = s->rtcp_addr;
  } else if (uint16_t rp = rtcp_port_after(s->addr.port)) {
    in.rtcp = s->addr;
    in.rtcp.port = rp;
  }
  in.clock_rate = s->clock_rate;
  if (!in.clock_rate && s->payload_type < 35) {
    sdp::Media m;
    m.formats.push_back(std::to_string(s->payload_type));
    in.clock_rate = clock_rate_of(m);
  }
  return in;
}

jn_status anchor_status(std::string_view reason) {
  if (reason.find("Unknown call") != std::string_view::npos) return JN_ERR_NOT_FOUND;
  if (reason.find("ports") != std::string_view::npos || reason.find("limit") != std::string_view::npos) return JN_ERR_LIMIT;
  return JN_ERR_INVALID;
}

}  // namespace

void Relay::on_anchor(const jn_anchor_request& req) {
  std::string call_id(to_sv(req.call_id));
  const char* op = req.op == JN_ANCHOR_OFFER ? "offer" : req.op == JN_ANCHOR_ANSWER ? "answer" : req.op == JN_ANCHOR_DELETE ? "delete" : "?";
  auto fail = [&](jn_status st, const std::string& why) {
    ++anchor_stats_.errors;
    host_.warn("rtp-relay: anchor " + std::string(op) + " call '" + log_escape(call_id) + "': " + log_escape(why) + " (media passed through)");
    host_.anchor_reply(req.reply, st, nullptr);
  };
  if (call_id.empty()) return fail(JN_ERR_INVALID, "no call id");
  if (req.op == JN_ANCHOR_DELETE) {
    ++anchor_stats_.deletes;
    // Only an anchored call: an ng client's call of the same id is not the core's to delete.
    bool known = anchor_pos_.count(call_id) && calls_.count(call_id);
    if (known) destroy(call_id, "anchor delete");
    anchor_pos_.erase(call_id);
    if (!known && host_.enabled(JN_LOG_DEBUG)) host_.debug("rtp-relay: anchor delete of unknown call '" + log_escape(call_id) + "'");
    host_.anchor_reply(req.reply, JN_OK, nullptr);
    return;
  }
  if (req.op != JN_ANCHOR_OFFER && req.op != JN_ANCHOR_ANSWER) return fail(JN_ERR_UNSUPPORTED, "unknown op " + std::to_string(req.op));
  bool answer = req.op == JN_ANCHOR_ANSWER;
  if (answer) ++anchor_stats_.answers;
  else ++anchor_stats_.offers;
  // Whose media: side "a" is the A-leg's, "b" the B-leg's. A re-offer may come from either;
  // the session model matches the tags to the session's sides.
  uint32_t sender = JN_HAS_FIELD(&req, jn_anchor_request, sender) ? req.sender : (answer ? 1u : 0u);
  const char* sender_tag = sender ? "b" : "a";
  const char* other_tag = sender ? "a" : "b";
  if (calls_.count(call_id) && !anchor_pos_.count(call_id)) return fail(JN_ERR_EXISTS, "call id '" + call_id + "' is an ng client's call");
  bool reoffer = !answer && calls_.count(call_id) != 0;
  const jn_media_desc* in = req.media;
  uint32_t count = (in && in->streams) ? in->count : 0;

  // Which streams are the session's lines: on the offer the relayable ones; on the answer the
  // same positions as the offer (an answer stream that is not relayable is a rejected line).
  std::vector<uint32_t> pos;
  if (!answer) {
    for (uint32_t i = 0; i < count; ++i)
      if (in->streams[i] && anchorable(*in->streams[i])) pos.push_back(i);
    if (pos.empty() && calls_.count(call_id) == 0) {
      // Nothing to relay (no RTP stream, or no addresses yet): no session; the error status
      // makes the core pass this call's media through (and not anchor its answer).
      host_.info("rtp-relay: anchor offer call '" + log_escape(call_id) + "': no relayable stream, media passed through");
      host_.anchor_reply(req.reply, JN_ERR_UNSUPPORTED, nullptr);
      return;
    }
  } else {
    auto it = anchor_pos_.find(call_id);
    if (it == anchor_pos_.end() || calls_.count(call_id) == 0) return fail(JN_ERR_NOT_FOUND, "Unknown call-id");
    pos = it->second;
  }
  std::vector<MediaInput> lines;
  lines.reserve(pos.size());
  for (uint32_t p : pos) lines.push_back(anchor_input(p < count ? in->streams[p] : nullptr));

  OfferAnswer oa;
  oa.answer = answer;
  oa.call_id = call_id;
  // offer: from-tag = the offerer; answer: to-tag = the answerer, from-tag = the offerer.
  oa.from_tag = answer ? other_tag : sender_tag;
  if (answer || reoffer) oa.to_tag = answer ? sender_tag : other_tag;
  oa.latch = latch_;
  OfferAnswerResult res = apply_offer_answer(oa, lines);
  if (!res.error.empty()) return fail(anchor_status(res.error), res.error);
  if (!answer) anchor_pos_[call_id] = pos;

  // Same streams, same order; relayed ones point at the relay (RTCP on the next port).
  std::vector<jn_media_stream> out(count);
  std::vector<const jn_media_stream*> ptrs(count, nullptr);
  for (uint32_t i = 0; i < count; ++i) {
    if (!in->streams[i]) continue;
    std::memcpy(&out[i], in->streams[i], std::min<size_t>(sizeof(jn_media_stream), in->streams[i]->struct_size));
    out[i].struct_size = sizeof(jn_media_stream);
    ptrs[i] = &out[i];
  }
  std::string moved;
  for (size_t k = 0; k < pos.size(); ++k) {
    const MediaPlan& p = res.plans[k];
    if (!p.relay || pos[k] >= count || !ptrs[pos[k]]) continue;
    jn_addr a{};
    if (!make_addr(advertise_, p.port, a)) continue;
    moved += " " + std::to_string(pos[k]) + ":" + addr_str(in->streams[pos[k]]->addr) + "->" + addr_str(a);
    jn_media_stream& o = out[pos[k]];
    o.addr = a;
    o.rtcp_addr = jn_addr{};  // the relay's RTCP is on the next port
    if (!p.mux) o.flags &= ~static_cast<uint32_t>(JN_MS_RTCP_MUX);
  }
  jn_media_desc desc{};
  desc.struct_size = sizeof desc;
  desc.count = count;
  desc.streams = ptrs.data();
  if (res.created) announce(call_id);
  host_.info("rtp-relay: anchor " + std::string(op) + " call '" + log_escape(call_id) + "':" + (moved.empty() ? std::string(" nothing relayed") : moved));
  host_.anchor_reply(req.reply, JN_OK, &desc);
}

}  // namespace rtp_relay
