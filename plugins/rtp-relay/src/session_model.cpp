// Sessions, streams and shards: creating a call's streams (sockets bound before the shard lock),
// applying an offer or answer to a call's sides (shared by the ng path and the anchor adapter),
// tearing a call down, and the silence deadlines.
#include "relay.hpp"

#include <cassert>

namespace rtp_relay {

// The conf's values and one shard per media loop; nothing bound yet (start / restore_state).
Relay::Relay(Host host, const RelayConf& conf, uint32_t media_loops) : host_(host) {
  ng_listen_ = conf.ng_listen;
  interface_ = conf.interface;
  advertise_ = conf.advertise;
  port_range_ = conf.port_range;
  legacy_ports_ = conf.legacy_ports;
  port_range_set_ = conf.port_range_set;
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
  if (legacy_ports_) port_used_.assign(static_cast<size_t>((port_max_ - port_min_ + 1) / 2), 0);
  // One shard per media loop the core runs (fixed for the process), or just the control loop.
  loops_ = media_loops > 255 ? 255 : media_loops;  // the shard travels in 8 bits of the socket cookie
  for (uint32_t i = 0; i <= loops_; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->out.reserve(kSendBatch);
  }
}

Relay::~Relay() {
  for (auto& [h, t] : taps_)
    if (t.held) host_.buf_unref(t.held);
}

Relay::ShardLock::ShardLock(Relay& r, uint32_t shard) : r_(r), sh_(*r.shards_[shard]) {
  assert(r_.locks_held_ == 0);  // one shard at a time: no lock order to get wrong
  sh_.mu.lock();
  sh_.control_locks.add();
  ++r_.locks_held_;
}
Relay::ShardLock::~ShardLock() {
  --r_.locks_held_;
  sh_.mu.unlock();
  r_.close_released();
}

void Relay::close_released() {
  if (locks_held_) return;
  auto socks = std::move(to_close_);
  to_close_.clear();
  for (jn_handle h : socks) host_.api()->udp_close(host_.ctx(), h);
  auto ids = std::move(to_release_);
  to_release_.clear();
  for (uint32_t id : ids) host_.bus_release_id(id);
}

Session* Relay::find(std::string_view call_id) {
  auto it = calls_.find(std::string(call_id));
  return it == calls_.end() ? nullptr : &it->second;
}

// A new call goes to the least loaded media loop (all its streams there).
uint32_t Relay::place() const {
  if (loops_ == 0) return 0;
  uint32_t best = 1;
  for (uint32_t k = 2; k <= loops_; ++k)
    if (shards_[k]->live < shards_[best]->live) best = k;
  return best;
}

// A stream with its id, generation and both sides' sockets, not yet visible to the media path.
// Packets reaching its sockets before insert_stream are counted stale (nobody was told the ports).
std::unique_ptr<Stream> Relay::prepare_stream(uint32_t shard, uint32_t index, const std::string& media, std::string& error) {
  assert(locks_held_ == 0);
  Shard& sh = *shards_[shard];
  auto acquired = sh.ids.acquire();
  if (!acquired) {
    error = "Session limit reached";
    return nullptr;
  }
  uint32_t id = *acquired;
  auto st = std::make_unique<Stream>();
  st->id = id;
  st->gen = ++gen_counter_;
  st->shard = shard;
  st->index = index;
  st->media = media;
  for (int s = 0; s < 2; ++s) {
    // Socket cookie: gen << 32 | shard << 24 | stream id << 2 | side << 1 (RTCP: by handle).
    uint64_t cookie = (static_cast<uint64_t>(st->gen) << 32) | (static_cast<uint64_t>(shard) << 24) | (static_cast<uint64_t>(id) << 2) |
                      (static_cast<uint64_t>(s) << 1);
    BoundPorts p;
    if (!bind_ports(shard, cookie, true, p)) {
      error = "Ran out of ports";
      discard_prepared(std::move(st));
      return nullptr;
    }
    Side& side = st->side[s];
    side.rtp = p.rtp, side.rtcp = p.rtcp, side.port = p.port;
    side.bus = "rtp-relay/" + std::to_string(id) + "-" + std::to_string(st->gen) + "/" + (s ? "b" : "a");
    if (publish_ && host_.bus_intern(side.bus, &side.bus_id) != JN_OK) side.bus_id = 0;
  }
  return st;
}

// A prepared stream that was not inserted (or one taken out of its table): its sockets, bus ids
// and id go back. Not under a shard lock.
void Relay::discard_prepared(std::unique_ptr<Stream> st) {
  for (auto& s : st->side) release_side(s);
  shards_[st->shard]->ids.release(st->id);
  close_released();
}

void Relay::insert_stream(Session& sess, std::unique_ptr<Stream> st) {
  Shard& sh = *shards_[st->shard];
  uint32_t id = st->id;
  st->call_id = sess.call_id;
  if (sh.streams.size() <= id) sh.streams.resize(id + 1);
  sh.streams[id] = std::move(st);
  ++sh.live;
  sess.streams.push_back(id);
}

namespace {

// Takes the first supported a=crypto value of a side's media as the key that side sends with (our
// inbound SRTP context for it). On an offer the suite and tag are remembered for the answer.
bool adopt_crypto(const std::vector<std::string>& crypto, Side& side, bool remember_suite) {
  for (auto& v : crypto) {
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
const char* make_out_key(Side& side) {
  if (side.out_key.empty() && !random_bytes(kSrtpKeyLen, side.out_key)) return "Cannot generate an SRTP key (no randomness available)";
  if (!side.srtp_out.valid() && !side.srtp_out.create(side.suite, side.out_key, false)) return "Cannot create the SRTP context";
  return nullptr;
}

std::string crypto_line(const Side& s) {
  return std::to_string(s.crypto_tag) + " " + suite_name(s.suite) + " inline:" +
         sdp::base64_encode(reinterpret_cast<const uint8_t*>(s.out_key.data()), s.out_key.size());
}

}  // namespace

// An offer or answer for a call: find or create the session, create the streams an offer adds
// (sockets first, then the lock), and under the call's shard lock update the sender's side of
// every relayed m= line. plans[i] says how to rewrite m= line i toward the recipient.
OfferAnswerResult Relay::apply_offer_answer(const OfferAnswer& oa, const std::vector<MediaInput>& in) {
  OfferAnswerResult res;
  Session* sp = find(oa.call_id);
  if (oa.answer && !sp) {
    res.error = "Unknown call-id";
    return res;
  }
  if (!sp) {
    if (calls_.size() >= max_sessions_) {
      res.error = "Session limit reached";
      return res;
    }
    Session s;
    s.call_id = oa.call_id;
    s.created_ms = host_.now_ms();
    s.shard = place();
    sp = &calls_.emplace(s.call_id, std::move(s)).first->second;
    res.created = true;
    if (timeout_ms_) schedule(*sp, sp->created_ms + timeout_ms_);
  }
  Session& sess = *sp;
  sess.last_signal_ms = host_.now_ms();
  if (!oa.sdp_text.empty()) sess.sdp_by_tag[oa.answer ? oa.to_tag : oa.from_tag] = oa.sdp_text;

  // The streams this offer adds, bound before the lock (m= line i uses the session's stream i
  // when it has one; an answer never adds streams).
  std::deque<std::unique_ptr<Stream>> fresh;
  if (!oa.answer) {
    size_t have = sess.streams.size();
    for (size_t i = 0; i < in.size(); ++i) {
      if (!in[i].relayable || i < have) continue;
      auto st = prepare_stream(sess.shard, static_cast<uint32_t>(i), in[i].media, res.error);
      if (!st) break;
      fresh.push_back(std::move(st));
      ++have;
    }
  }
  auto fail = [&] {
    while (!fresh.empty()) {
      discard_prepared(std::move(fresh.front()));
      fresh.pop_front();
    }
    if (res.created) destroy(oa.call_id);
    return res;
  };
  if (!res.error.empty()) return fail();

  res.plans.assign(in.size(), MediaPlan{});
  {
    ShardLock lock(*this, sess.shard);
    // Which side sent this: the offerer's from-tag, the answerer's to-tag.
    const std::string& sender_tag = oa.answer ? oa.to_tag : oa.from_tag;
    int S;
    if (!sess.streams.empty()) {
      Stream& s0 = *stream(sess, 0);
      if (s0.side[0].tag == sender_tag) S = 0;
      else if (s0.side[1].tag == sender_tag) S = 1;
      else if (oa.answer) S = (s0.side[0].tag == oa.from_tag) ? 1 : (s0.side[1].tag == oa.from_tag ? 0 : 1);
      else S = 0;
    } else {
      S = oa.answer ? 1 : 0;
    }
    int R = 1 - S;
    for (size_t i = 0; i < in.size() && res.error.empty(); ++i) {
      const MediaInput& m = in[i];
      MediaPlan& p = res.plans[i];
      if (!m.relayable) continue;  // rejected or not RTP: left alone
      Stream* st;
      if (i < sess.streams.size()) {
        st = stream(sess, i);
      } else if (oa.answer || fresh.empty()) {
        continue;  // the answer has more m= lines than the offer: not relayed
      } else {
        insert_stream(sess, std::move(fresh.front()));
        fresh.pop_front();
        st = stream(sess, sess.streams.size() - 1);
      }
      Side& snd = st->side[S];
      Side& oth = st->side[R];
      snd.tag = sender_tag;
      if (!oa.answer && !oa.to_tag.empty() && oth.tag.empty()) oth.tag = oa.to_tag;
      snd.latch = oa.latch;
      if (!m.rtp.family || !m.rtcp.family)
        host_.info("rtp-relay: call '" + log_escape(sess.call_id) + "' m=" + std::to_string(i) + ": " +
                   (!m.rtp.family ? "no usable RTP address in the SDP ('" + log_escape(m.ip, 64) + "' port " + std::to_string(m.port) + ")"
                                  : "no usable RTCP address in the SDP (RTP port " + std::to_string(m.port) + ")") +
                   ", nothing is sent there until the side's own packets latch an address");
      bool changed = !addr_eq(m.rtp, snd.sdp_rtp) || !addr_eq(m.rtcp, snd.sdp_rtcp);
      snd.sdp_rtp = m.rtp;
      snd.sdp_rtcp = m.rtcp;
      if (changed || !snd.latched_rtp) {
        snd.peer_rtp = m.rtp;
        snd.latched_rtp = false;
      }
      if (changed || !snd.latched_rtcp) {
        snd.peer_rtcp = m.rtcp;
        snd.latched_rtcp = false;
      }
      if (m.clock_rate) snd.rs.set_clock_rate(m.clock_rate);
      p.relay = true;
      p.port = oth.port;
      p.is_answer = oa.answer;

      if (!oa.answer) {
        snd.offered_mux = m.rtcp_mux;
        snd.mux_accept = oa.mux_accept;
        p.mux = oa.mux_offer || (snd.offered_mux && !oa.mux_demux && !oa.mux_reject);
        // Transport conversion.
        bool snd_srtp = m.is_srtp();
        snd.answer_proto.clear();
        if (!oa.transport.empty() && oa.transport != m.proto) {
          snd.answer_proto = m.proto;
          p.proto = oa.transport;
          bool want_srtp = oa.transport.find("SAVP") != std::string::npos;
          if (snd_srtp && !want_srtp) {
            // SRTP offerer, plain recipient: use the offerer's key to decrypt what it sends.
            if (!adopt_crypto(m.crypto, snd, true)) {
              res.error = "No supported SDES crypto suite in SRTP offer (AES_CM_128_HMAC_SHA1_80/32)";
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
              res.error = why;
              break;
            }
            p.strip_crypto = true;
            p.crypto = crypto_line(oth);
          } else {
            snd.srtp = oth.srtp = false;
          }
        } else if (oa.transport.empty()) {
          snd.srtp = oth.srtp = false;
        }
      } else {
        // Answer from S to the offerer R.
        Side& off = oth;
        snd.mux = m.rtcp_mux;
        p.mux = off.offered_mux && (snd.mux || off.mux_accept || oa.mux_accept);
        off.mux = p.mux;
        if (!off.answer_proto.empty()) p.proto = off.answer_proto;
        if (off.srtp) {
          if (const char* why = make_out_key(off)) {
            res.error = why;
            break;
          }
          p.strip_crypto = true;
          p.crypto = crypto_line(off);
        } else if (snd.srtp) {
          if (!adopt_crypto(m.crypto, snd, false)) {
            res.error = "No supported SDES crypto in SRTP answer";
            break;
          }
          p.strip_crypto = true;
        }
        sess.answered = true;
      }
    }
  }
  if (!res.error.empty()) return fail();
  return res;
}

void Relay::destroy(const std::string& call_id_in, const char* why) {
  auto it = calls_.find(call_id_in);
  if (it == calls_.end()) return;
  std::string call_id = call_id_in;  // the argument may live in the session being erased
  Session& sess = it->second;
  std::vector<std::unique_ptr<Stream>> gone;
  std::string m;
  {
    ShardLock lock(*this, sess.shard);
    if (why && !sess.streams.empty()) {
      const Stream& st = *stream(sess, 0);
      m = ": a packets " + std::to_string(st.side[0].packets) + " forwarded " + std::to_string(st.side[0].forwarded) + "; b packets " +
          std::to_string(st.side[1].packets) + " forwarded " + std::to_string(st.side[1].forwarded);
    }
    Shard& sh = *shards_[sess.shard];
    for (uint32_t id : sess.streams)
      if (id < sh.streams.size() && sh.streams[id]) gone.push_back(std::move(sh.streams[id]));
  }
  if (why) host_.info("rtp-relay: call '" + log_escape(call_id) + "' deleted by " + why + m);
  for (auto& st : gone) {
    --shards_[st->shard]->live;
    discard_prepared(std::move(st));
  }
  unschedule(sess);
  anchor_pos_.erase(call_id);
  calls_.erase(it);
}

void Relay::announce(const std::string& call_id) {
  Session* sess = find(call_id);
  if (!sess) return;
  json streams = json::array();
  {
    ShardLock lock(*this, sess->shard);
    for (size_t k = 0; k < sess->streams.size(); ++k) {
      const Stream& st = *stream(*sess, k);
      streams.push_back({{"index", st.index}, {"media", st.media}, {"a", st.side[0].bus}, {"b", st.side[1].bus}});
    }
  }
  // Published without a lock held: a subscriber of our own may be called right here.
  host_.event_publish("rtp-relay.session.created", json{{"call_id", call_id}, {"streams", streams}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// --- silence deadlines -------------------------------------------------------------------------
// A session's deadline is checked only when due (an ordered set, not a scan of every call each
// second): then its shard is locked once to read when media last arrived; a call that is still
// active is put back at last activity + timeout_s.
void Relay::schedule(Session& sess, uint64_t at) {
  unschedule(sess);
  sess.deadline_ms = at;
  deadlines_.emplace(at, sess.call_id);
}
void Relay::unschedule(Session& sess) {
  if (sess.deadline_ms) deadlines_.erase({sess.deadline_ms, sess.call_id});
  sess.deadline_ms = 0;
}

void Relay::expire_due(uint64_t now) {
  if (!timeout_ms_) return;
  std::vector<std::string> expired;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    auto [at, id] = *deadlines_.begin();
    deadlines_.erase(deadlines_.begin());
    Session* sess = find(id);
    if (!sess) continue;
    sess->deadline_ms = 0;
    ++deadline_checks_;
    uint64_t last = sess->last_signal_ms;
    {
      ShardLock lock(*this, sess->shard);
      for (size_t k = 0; k < sess->streams.size(); ++k)
        for (auto& s : stream(*sess, k)->side) last = std::max(last, s.last_ms);
    }
    if (now > last + timeout_ms_) expired.push_back(id);
    else schedule(*sess, last + timeout_ms_ + 1);
  }
  for (auto& id : expired) {
    host_.info("rtp-relay: session '" + log_escape(id) + "' timed out (no media or signalling for " + std::to_string(timeout_ms_ / 1000) + " s)");
    ++stats_.timeouts;
    // An anchored call: the core ends the call (both legs hear END 408 "media timeout") and
    // its DELETE destroys the session; a core without anchor_end leaves it to us. No lock held:
    // the core's DELETE comes back into on_anchor from inside anchor_end.
    if (anchor_pos_.count(id) && host_.anchor_end(id, 408, "media timeout") == JN_OK) {
      if (Session* s = find(id); s && timeout_ms_) schedule(*s, now + timeout_ms_);  // in case the DELETE never comes
      continue;
    }
    destroy(id, "timeout");
  }
}

}  // namespace rtp_relay
