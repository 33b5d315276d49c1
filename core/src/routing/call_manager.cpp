#include "routing/call_manager.hpp"

#include <algorithm>
#include <cassert>
#include <limits>
#include <stdexcept>

#include <openssl/rand.h>

#include "util/log.hpp"

namespace junction {

struct CallManager::Call {
  uint64_t number = 0;  // creation order (listings)
  std::string id;       // "jc-" + 32 hex digits from the CSPRNG: unguessable, never repeated
  std::string from, to;
  std::string from_name;  // the offer's display name and metadata, for every B-leg's OFFER
  Headers headers;        // (a hunt offers them again to each next target)
  std::vector<CallTarget> targets;  // as resolved
  std::vector<jn_handle> b_legs;    // live B-legs; after answer only the answered one
  // The offer's media, kept only while a hunt still has targets to offer it to.
  std::unique_ptr<std::vector<MediaStream>> hunt_media;  // null: the offer had none
  jn_handle a_leg = JN_INVALID_HANDLE;
  uint64_t start_ms = 0, answer_ms = 0;
  uint64_t ring_timer = 0, hunt_timer = 0;
  std::string last_reason;
  int32_t last_code = 0;
  int32_t answered_target = -1;
  uint32_t next_target = 0;  // hunt: the next target to offer
  uint32_t per_target_timeout_ms = 0;
  Strategy strategy = Strategy::Single;
  CallState state = CallState::Ringing;
  bool ringing_forwarded = false;
  bool any_busy = false;
  bool anchored = false;  // the media anchor holds a session for this call
  // Early media: the B-leg the caller hears, and every ringing branch's latest early media
  // (the latest last), to fall back on when the heard branch drops. Cleared at answer.
  jn_handle early_leg = JN_INVALID_HANDLE;
  struct Early {
    jn_handle leg;
    std::vector<MediaStream> media;
  };
  std::vector<Early> early;
};

namespace {

// 128 random bits: unique across restarts (the CDR never repeats an id) and unguessable, so a
// call id seen by one peer names nothing another could forge. The "jc-" prefix keeps it apart
// from ids other systems mint (an rtpengine ng call-id inside rtp-relay, a SIP Call-ID).
std::string new_call_id() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed: no call id");
  static const char* const kHex = "0123456789abcdef";
  std::string id = "jc-";
  for (unsigned char b : raw) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

bool is_busy(int32_t code) { return code == 486 || code == 600; }

// A peer's URI in a log line: control characters replaced and the length capped, so a crafted
// one cannot forge or flood lines.
std::string printable(std::string_view s, size_t max = 128) {
  std::string out(s.substr(0, max));
  for (char& ch : out)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  if (s.size() > max) out += "...";
  return out;
}

const char* ended_by_name(uint8_t by) {
  static const char* const names[] = {"a", "b", "timeout", "system"};
  return names[by];
}

}  // namespace

CallManager::CallManager(RouteTable& routes, CallEndpoints& endpoints, CallTimers& timers,
                         CdrSink cdr_sink)
    : routes_(routes), endpoints_(endpoints), timers_(timers), cdr_sink_(std::move(cdr_sink)) {}

CallManager::~CallManager() {
  // The timers' callbacks point at this object.
  calls_.for_each([&](jn_handle, const Call& c) {
    if (c.ring_timer) timers_.cancel(c.ring_timer);
    if (c.hunt_timer) timers_.cancel(c.hunt_timer);
  });
}

uint32_t CallManager::intern_plugin(const std::string& plugin) {
  if (auto it = plugin_ids_.find(plugin); it != plugin_ids_.end()) return it->second;
  auto id = static_cast<uint32_t>(plugin_names_.size());
  plugin_names_.push_back(plugin);
  plugin_ids_.emplace(plugin, id);
  return id;
}

CallManager::Leg* CallManager::live_leg(jn_handle h) const {
  Leg* leg = legs_.get(h);
  return leg && is_live(*leg) ? leg : nullptr;
}

CallEvent CallManager::event_for(const Call& c, uint32_t type, int32_t code,
                                 std::string reason) const {
  CallEvent ev;
  ev.type = type;
  ev.call_id = c.id;
  ev.code = code;
  ev.reason = std::move(reason);
  return ev;
}

// --- the dispatch queue ----------------------------------------------------------------------

void CallManager::queue(jn_handle h, CallEvent ev, bool final) {
  Leg* leg = legs_.get(h);
  assert(leg && is_live(*leg));  // nothing is sent to a leg after its final event
  ++leg->pending;
  if (final) {
    leg->state = LegState::Doomed;
    --live_legs_;
  }
  queue_.push_back(Delivery{h, std::move(ev), final});
}

void CallManager::kill(jn_handle h) {
  Leg* leg = legs_.get(h);
  assert(leg && leg->state != LegState::Dead);
  if (is_live(*leg)) --live_legs_;
  leg->state = LegState::Dead;
  if (leg->pending == 0) legs_.erase(h);
}

void CallManager::drain() {
  if (draining_) return;  // an outer frame is draining; it will reach what we queued
  draining_ = true;
  struct Reset {
    bool& flag;
    ~Reset() { flag = false; }
  } reset{draining_};
  drain_events_ = drain_refused_ = 0;

  while (!queue_.empty()) {
    Delivery d = std::move(queue_.front());
    queue_.pop_front();
    Leg* leg = legs_.get(d.leg);
    assert(leg && leg->pending > 0);  // legs stay in the table while anything is queued
    --leg->pending;
    // A leg that ended itself (or whose plugin left) hears nothing more.
    const bool skip = leg->state == LegState::Dead;
    if (d.final) leg->state = LegState::Dead;
    const std::string& plugin = plugin_names_[leg->plugin_id];
    const uint64_t cookie = leg->cookie;  // read now: an earlier delivery may have set it
    if (leg->state == LegState::Dead && leg->pending == 0) legs_.erase(d.leg);
    if (skip) continue;
    if (d.ev.type == JN_CALL_OFFER && !d.final && !endpoints_.available(plugin)) {
      CallEvent reject;
      reject.type = JN_CALL_REJECT;
      reject.code = 503;
      reject.reason = "target plugin unavailable";
      const std::string owner = plugin;  // send() may grow plugin_names_
      send(owner, d.leg, reject);       // re-entrant: changes state now, queues behind us
      continue;
    }
    endpoints_.deliver(plugin, d.leg, cookie, d.ev);
  }
  if (drain_refused_ > 1)
    JN_LOG_WRN("calls: {} events refused in one drain (re-entrancy limits), counted in junction_call_events_refused_total",
               drain_refused_);
}

bool CallManager::within_drain_limits(const std::string& plugin, const Call* c, jn_handle from, bool settles) {
  if (settles) return true;
  const bool over_drain = draining_ && events_per_drain_ && drain_events_ >= events_per_drain_;
  // The queue toward the party (or parties) the event goes to. Per leg rather than per call:
  // a fork's offers fill the queue toward its B-legs, not toward the caller.
  bool over_queue = false;
  if (!over_drain && c && queued_per_leg_) {
    auto full = [&](jn_handle h) {
      const Leg* l = legs_.get(h);
      return l && l->pending >= queued_per_leg_;
    };
    if (from != c->a_leg) over_queue = full(c->a_leg);
    else over_queue = std::any_of(c->b_legs.begin(), c->b_legs.end(), full);
  }
  if (!over_drain && !over_queue) return true;
  (over_drain ? refused_events_drain_ : refused_events_queue_)++;
  // Once per drain: a ping-pong would otherwise write a line per refused event.
  if (drain_refused_++ == 0) {
    const std::string what = c ? "an event on call " + c->id : std::string("a call_originate");
    if (over_drain)
      JN_LOG_WRN("calls: refused {} from '{}' (JN_ERR_LIMIT): {} events already sent from inside on_call in this "
                 "drain, the limit; a plugin chain (e.g. INFO answered with INFO) is cut here",
                 what, plugin, events_per_drain_);
    else
      JN_LOG_WRN("calls: refused {} from '{}' (JN_ERR_LIMIT): {} deliveries already queued for the other leg, the limit",
                 what, plugin, queued_per_leg_);
  }
  return false;
}

// --- originate -------------------------------------------------------------------------------

jn_status CallManager::originate(const std::string& plugin, uint64_t cookie, const CallEvent& offer,
                                 jn_handle* out_leg) {
  if (!out_leg) return JN_ERR_INVALID;
  *out_leg = JN_INVALID_HANDLE;
  if (plugin.empty() || offer.type != JN_CALL_OFFER || offer.from.empty() || offer.to.empty())
    return JN_ERR_INVALID;
  if (max_calls_ && calls_.size() >= max_calls_) {
    ++refused_calls_;
    // Once per burst: the burst ends when the calls in progress fall clear of the limit.
    if (call_limit_burst_++ == 0)
      JN_LOG_WRN("calls: refused a call_originate from '{}' to '{}' (JN_ERR_LIMIT): {} calls in progress, "
                 "server.max_calls; calls up are unaffected, further refusals are counted in junction_calls_refused_total",
                 plugin, printable(offer.to), max_calls_);
    return JN_ERR_LIMIT;
  }
  if (!within_drain_limits(plugin, nullptr, JN_INVALID_HANDLE, false)) return JN_ERR_LIMIT;
  std::optional<Resolution> route = routes_.resolve(offer.to);
  if (!route) return JN_ERR_NOT_FOUND;
  if (draining_) ++drain_events_;
  assert(!route->targets.empty());
  assert(route->targets.size() <= std::numeric_limits<uint16_t>::max());

  auto owned = std::make_unique<Call>();
  owned->number = ++call_serial_;
  owned->id = new_call_id();
  owned->from = offer.from;
  owned->to = offer.to;
  owned->from_name = offer.from_name;
  owned->headers = offer.headers;
  owned->start_ms = timers_.now_ms();
  owned->strategy = route->strategy;
  owned->targets.reserve(route->targets.size());
  for (RouteTarget& t : route->targets)
    owned->targets.push_back(CallTarget{std::move(t.uri), intern_plugin(t.plugin)});
  const jn_handle ch = calls_.insert(std::move(owned));
  Call& c = *calls_.get(ch);

  c.a_leg = legs_.insert(std::make_unique<Leg>(
      Leg{ch, cookie, intern_plugin(plugin), 0, 0, 0, Role::A, LegState::Offered}));
  ++live_legs_;
  *out_leg = c.a_leg;

  // Fork: timeout_ms bounds the whole ring. Hunt/Single: it is per target.
  uint64_t ring_ms = ring_timeout_ms_;
  if (route->strategy == Strategy::Fork && route->timeout_ms > 0)
    ring_ms = ring_ms ? std::min<uint64_t>(ring_ms, route->timeout_ms) : route->timeout_ms;
  else
    c.per_target_timeout_ms = route->timeout_ms;
  if (ring_ms) c.ring_timer = timers_.start(ring_ms, [this, ch] { on_ring_timeout(ch); });

  const std::vector<MediaStream>* media = offer.media ? &*offer.media : nullptr;
  std::optional<std::vector<MediaStream>> anchored;
  if (anchor_ && media) {
    anchored = anchor_->anchor(MediaAnchor::Offer, c.id, media, 0);
    if (anchored) {
      c.anchored = true;
      media = &*anchored;  // every B-leg is offered the anchor's addresses
    }
  }
  if (route->strategy == Strategy::Fork) {
    for (uint32_t i = 0; i < c.targets.size(); ++i) offer_target(c, ch, i, media);
  } else {
    if (c.targets.size() > 1 && media)
      c.hunt_media = std::make_unique<std::vector<MediaStream>>(*media);
    offer_target(c, ch, c.next_target++, media);
    if (c.per_target_timeout_ms) {
      jn_handle b = c.b_legs.back();
      c.hunt_timer =
          timers_.start(c.per_target_timeout_ms, [this, ch, b] { on_hunt_timeout(ch, b); });
    }
  }
  drain();  // `c` may be gone after this
  return JN_OK;
}

void CallManager::offer_target(Call& c, jn_handle ch, uint32_t target_index,
                               const std::vector<MediaStream>* media) {
  const CallTarget& target = c.targets[target_index];
  uint64_t age = timers_.now_ms() - c.start_ms;
  jn_handle b = legs_.insert(std::make_unique<Leg>(
      Leg{ch, 0, target.plugin_id, 0,
          static_cast<uint32_t>(std::min<uint64_t>(age, std::numeric_limits<uint32_t>::max())),
          static_cast<uint16_t>(target_index), Role::B, LegState::Offered}));
  ++live_legs_;
  c.b_legs.push_back(b);
  CallEvent ev = event_for(c, JN_CALL_OFFER);
  ev.from = c.from;
  ev.to = c.to;
  ev.target = target.uri;
  ev.from_name = c.from_name;
  ev.headers = c.headers;
  if (media) ev.media = *media;
  queue(b, std::move(ev), false);
}

void CallManager::offer_next_hunt_target(Call& c, jn_handle ch) {
  assert(c.next_target < c.targets.size() && c.b_legs.empty());
  offer_target(c, ch, c.next_target++, c.hunt_media.get());
  if (c.next_target >= c.targets.size()) c.hunt_media.reset();  // nobody left to offer it to
  if (c.per_target_timeout_ms) {
    jn_handle b = c.b_legs.back();
    c.hunt_timer =
        timers_.start(c.per_target_timeout_ms, [this, ch, b] { on_hunt_timeout(ch, b); });
  }
}

// --- state changes ---------------------------------------------------------------------------

void CallManager::end_b_legs(Call& c, int32_t code, const std::string& reason) {
  for (jn_handle b : c.b_legs) queue(b, event_for(c, JN_CALL_END, code, reason), true);
  c.b_legs.clear();
}

// A B-leg left before answer (rejected, timed out, its plugin went away): try the next hunt
// target, or wait for the other fork branches, or fail the call.
void CallManager::b_leg_dropped(Call& c, jn_handle ch, jn_handle b, int32_t code,
                                const std::string& reason, EndedBy by) {
  c.b_legs.erase(std::remove(c.b_legs.begin(), c.b_legs.end(), b), c.b_legs.end());
  early_media_dropped(c, b);
  if (c.hunt_timer) {  // only a hunt/single call has one, and it belongs to its one B-leg
    timers_.cancel(c.hunt_timer);
    c.hunt_timer = 0;
  }
  if (is_busy(code)) c.any_busy = true;
  c.last_code = code;
  c.last_reason = reason;
  if (!c.b_legs.empty()) return;
  if (c.strategy != Strategy::Fork && c.next_target < c.targets.size()) {
    offer_next_hunt_target(c, ch);
    return;
  }
  // Busy somewhere is the most useful thing to tell the caller.
  const int32_t final_code = c.any_busy ? 486 : c.last_code;
  const std::string final_reason = c.any_busy && !is_busy(c.last_code) ? "busy" : c.last_reason;
  queue(c.a_leg, event_for(c, JN_CALL_REJECT, final_code, final_reason), true);
  finish(ch, final_code, final_reason, by);
}

void CallManager::early_media(Call& c, jn_handle b, CallEvent ev) {
  auto it = std::find_if(c.early.begin(), c.early.end(), [&](const Call::Early& e) { return e.leg == b; });
  if (it != c.early.end()) c.early.erase(it);
  c.early.push_back(Call::Early{b, *ev.media});
  c.early_leg = b;
  c.ringing_forwarded = true;  // a plain RINGING after this would only confuse the caller
  ev.target = c.targets[legs_.get(b)->target_index].uri;  // whose early media the caller hears
  queue(c.a_leg, anchored_to_a(c, std::move(ev), MediaAnchor::Answer), false);
}

// The heard branch left while others ring: the caller hears the latest other early media again
// (anchored again, so the anchor stops sending the caller's media to a leg that is gone).
void CallManager::early_media_dropped(Call& c, jn_handle b) {
  auto it = std::find_if(c.early.begin(), c.early.end(), [&](const Call::Early& e) { return e.leg == b; });
  if (it == c.early.end()) return;
  c.early.erase(it);
  if (c.early_leg != b) return;
  c.early_leg = JN_INVALID_HANDLE;
  if (c.early.empty() || c.b_legs.empty()) return;
  const Call::Early& back = c.early.back();
  c.early_leg = back.leg;
  CallEvent ev = event_for(c, JN_CALL_RINGING);
  ev.media = back.media;
  ev.target = c.targets[legs_.get(back.leg)->target_index].uri;
  queue(c.a_leg, anchored_to_a(c, std::move(ev), MediaAnchor::Answer), false);
}

// What a B-leg's media becomes for the A-leg: the anchor's addresses when the call is anchored
// (an anchor that refuses leaves it as it is).
CallEvent CallManager::anchored_to_a(const Call& c, CallEvent ev, MediaAnchor::Op op) {
  ev.call_id = c.id;
  if (c.anchored && anchor_ && ev.media) {
    if (auto m = anchor_->anchor(op, c.id, &*ev.media, 1)) ev.media = std::move(*m);
  }
  return ev;
}

void CallManager::answer(Call& c, jn_handle b, const CallEvent& ev) {
  Leg* winner = legs_.get(b);
  c.state = CallState::Answered;
  c.answer_ms = timers_.now_ms();
  c.answered_target = winner->target_index;
  c.hunt_media.reset();
  cancel_timers(c);
  winner->state = LegState::Answered;
  legs_.get(c.a_leg)->state = LegState::Answered;

  for (jn_handle other : c.b_legs)
    if (other != b) queue(other, event_for(c, JN_CALL_END, 487, "answered elsewhere"), true);
  c.b_legs.assign(1, b);

  CallEvent to_a = ev;
  to_a.target = c.targets[winner->target_index].uri;  // tells the caller who picked up
  // An answer without media from a branch that sent early media means that media (as a SIP 200
  // without SDP after a 183 with it); when the caller was hearing another branch it must be
  // told, and the anchor re-pointed.
  if (!to_a.media && c.early_leg != b) {
    for (Call::Early& e : c.early)
      if (e.leg == b) to_a.media = std::move(e.media);
  }
  c.early.clear();
  c.early_leg = JN_INVALID_HANDLE;
  queue(c.a_leg, anchored_to_a(c, std::move(to_a), MediaAnchor::Answer), false);
}

void CallManager::cancel_timers(Call& c) {
  if (c.ring_timer) timers_.cancel(c.ring_timer);
  if (c.hunt_timer) timers_.cancel(c.hunt_timer);
  c.ring_timer = c.hunt_timer = 0;
}

void CallManager::finish(jn_handle ch, int32_t code, const std::string& reason, EndedBy by) {
  std::unique_ptr<Call> c = calls_.take(ch);
  assert(c);
  cancel_timers(*c);
  // A refusal burst ends once a tenth of the limit is free again (so a server hovering at the
  // limit does not log a line per call).
  if (call_limit_burst_ &&
      (!max_calls_ || calls_.size() + std::max<uint32_t>(1, max_calls_ / 10) <= max_calls_)) {
    JN_LOG_INF("calls: {} in progress, below server.max_calls ({}) again; {} call_originate(s) were refused",
               calls_.size(), max_calls_, call_limit_burst_);
    call_limit_burst_ = 0;
  }
  if (c->anchored && anchor_) anchor_->anchor(MediaAnchor::Delete, c->id, nullptr, 0);
  if (!cdr_sink_) return;
  const uint64_t end_ms = timers_.now_ms();
  const bool answered = c->answered_target >= 0;
  nlohmann::json targets = nlohmann::json::array();
  for (const CallTarget& t : c->targets) targets.push_back(t.uri);
  nlohmann::json cdr = {
      {"call_id", c->id},
      {"from", c->from},
      {"to", c->to},
      {"targets", std::move(targets)},
      {"answered_by", answered ? nlohmann::json(c->targets[c->answered_target].uri) : nullptr},
      {"start_ms", c->start_ms},
      {"answer_ms", answered ? nlohmann::json(c->answer_ms) : nullptr},
      {"end_ms", end_ms},
      {"duration_ms", answered ? end_ms - c->answer_ms : 0},
      {"code", code},
      {"reason", reason},
      {"ended_by", ended_by_name(static_cast<uint8_t>(by))}};
  cdr_sink_(cdr);
}

// --- send ------------------------------------------------------------------------------------

jn_status CallManager::send(const std::string& plugin, jn_handle h, const CallEvent& ev) {
  Leg* leg = legs_.get(h);
  if (!leg || leg->state == LegState::Dead) return JN_ERR_NOT_FOUND;
  if (plugin_names_[leg->plugin_id] != plugin) return JN_ERR_INVALID;
  if (ev.type < JN_CALL_OFFER || ev.type > JN_CALL_INFO) return JN_ERR_INVALID;

  if (leg->state == LegState::Doomed) {
    // Its END/REJECT is queued: a hangup crossing ours ends it now; a late answer changes
    // nothing (the END is on its way); anything else is too late.
    if (ev.type == JN_CALL_END || ev.type == JN_CALL_REJECT) {
      kill(h);
      return JN_OK;
    }
    return ev.type == JN_CALL_ANSWER ? JN_OK : JN_ERR_STATE;
  }

  Call* c = calls_.get(leg->call);
  assert(c);  // a live leg always has its call
  // What ends a leg or settles the call is said once per leg: never refused.
  const bool settles = ev.type == JN_CALL_END || ev.type == JN_CALL_REJECT ||
                       (ev.type == JN_CALL_ANSWER && leg->role == Role::B && c->state == CallState::Ringing);
  if (!within_drain_limits(plugin, c, h, settles)) return JN_ERR_LIMIT;
  jn_status status =
      leg->role == Role::A ? from_a_leg(*c, leg->call, h, ev) : from_b_leg(*c, leg->call, h, ev);
  if (status == JN_OK && draining_ && !settles) ++drain_events_;
  drain();
  return status;
}

jn_status CallManager::from_a_leg(Call& c, jn_handle ch, jn_handle a, const CallEvent& ev) {
  if (c.state == CallState::Answered) {
    assert(c.b_legs.size() == 1);
    return in_answered_call(c, ch, a, c.b_legs[0], ev, EndedBy::A);
  }
  switch (ev.type) {
    case JN_CALL_END:
    case JN_CALL_REJECT: {  // a cancel
      const std::string reason = ev.reason.empty() ? "cancelled" : ev.reason;
      kill(a);
      end_b_legs(c, 487, reason);
      finish(ch, 487, reason, EndedBy::A);
      return JN_OK;
    }
    case JN_CALL_DTMF:
    case JN_CALL_INFO:  // e.g. an intercom screen opening the door while it rings
      for (jn_handle b : c.b_legs) {
        CallEvent copy = ev;
        copy.call_id = c.id;
        queue(b, std::move(copy), false);
      }
      return JN_OK;
    default:  // OFFER, RINGING, ANSWER: the A-leg has nothing to say about them yet
      return JN_ERR_STATE;
  }
}

jn_status CallManager::from_b_leg(Call& c, jn_handle ch, jn_handle b, const CallEvent& ev) {
  if (c.state == CallState::Answered) {
    assert(c.b_legs.size() == 1 && c.b_legs[0] == b);  // the losers are doomed or dead
    return in_answered_call(c, ch, b, c.a_leg, ev, EndedBy::B);
  }
  Leg& leg = *legs_.get(b);
  switch (ev.type) {
    case JN_CALL_RINGING:
      leg.state = LegState::Ringing;
      if (ev.media && !ev.media->empty()) {
        early_media(c, b, ev);
        return JN_OK;
      }
      if (!c.ringing_forwarded) {  // the caller hears one ringing, however many branches ring
        c.ringing_forwarded = true;
        CallEvent copy = ev;
        copy.call_id = c.id;
        queue(c.a_leg, std::move(copy), false);
      }
      return JN_OK;
    case JN_CALL_ANSWER:
      answer(c, b, ev);
      return JN_OK;
    case JN_CALL_REJECT:
    case JN_CALL_END: {  // a B-leg giving up before answer is a reject
      const int32_t code = ev.code ? ev.code : 480;
      kill(b);
      b_leg_dropped(c, ch, b, code, ev.reason, EndedBy::B);
      return JN_OK;
    }
    case JN_CALL_DTMF:
    case JN_CALL_INFO: {
      CallEvent copy = ev;
      copy.call_id = c.id;
      queue(c.a_leg, std::move(copy), false);
      return JN_OK;
    }
    default:  // OFFER: no re-offer before the call is up
      return JN_ERR_STATE;
  }
}

jn_status CallManager::in_answered_call(Call& c, jn_handle ch, jn_handle from, jn_handle peer,
                                        const CallEvent& ev, EndedBy by) {
  switch (ev.type) {
    case JN_CALL_OFFER:
    case JN_CALL_ANSWER:
    case JN_CALL_DTMF:
    case JN_CALL_INFO: {
      CallEvent copy = ev;
      copy.call_id = c.id;
      // A re-offer (either side) and its answer go through the anchor too, so a changed
      // address or a new stream keeps flowing through the relay.
      if (c.anchored && anchor_ && copy.media && (ev.type == JN_CALL_OFFER || ev.type == JN_CALL_ANSWER)) {
        auto op = ev.type == JN_CALL_OFFER ? MediaAnchor::Offer : MediaAnchor::Answer;
        if (auto m = anchor_->anchor(op, copy.call_id, &*copy.media, from == c.a_leg ? 0 : 1)) copy.media = std::move(*m);
      }
      queue(peer, std::move(copy), false);
      return JN_OK;
    }
    case JN_CALL_END: {
      const int32_t code = ev.code ? ev.code : 200;
      kill(from);
      queue(peer, event_for(c, JN_CALL_END, code, ev.reason), true);
      finish(ch, code, ev.reason, by);
      return JN_OK;
    }
    default:  // RINGING, REJECT: too late
      return JN_ERR_STATE;
  }
}

jn_status CallManager::end_anchored(const std::string& call_id, int32_t code, const std::string& reason) {
  jn_handle found = JN_INVALID_HANDLE;
  calls_.for_each([&](jn_handle h, const Call& c) {
    if (c.anchored && c.id == call_id) found = h;
  });
  if (!found) return JN_ERR_NOT_FOUND;
  Call& c = *calls_.get(found);
  const int32_t status = code ? code : 408;
  if (c.state == CallState::Ringing) {
    end_b_legs(c, status, reason);
    queue(c.a_leg, event_for(c, JN_CALL_REJECT, status, reason), true);
  } else {
    queue(c.a_leg, event_for(c, JN_CALL_END, status, reason), true);
    for (jn_handle b : c.b_legs) queue(b, event_for(c, JN_CALL_END, status, reason), true);
  }
  finish(found, status, reason, EndedBy::System);
  drain();
  return JN_OK;
}

// --- timers ----------------------------------------------------------------------------------

void CallManager::on_ring_timeout(jn_handle ch) {
  Call* c = calls_.get(ch);
  if (!c || c->state != CallState::Ringing) return;
  c->ring_timer = 0;
  end_b_legs(*c, 408, "ring timeout");
  queue(c->a_leg, event_for(*c, JN_CALL_REJECT, 408, "ring timeout"), true);
  finish(ch, 408, "ring timeout", EndedBy::Timeout);
  drain();
}

void CallManager::on_hunt_timeout(jn_handle ch, jn_handle b) {
  Call* c = calls_.get(ch);
  if (!c || c->state != CallState::Ringing || !live_leg(b)) return;
  c->hunt_timer = 0;
  queue(b, event_for(*c, JN_CALL_END, 408, "no answer"), true);
  b_leg_dropped(*c, ch, b, 408, "no answer", EndedBy::Timeout);
  drain();
}

// --- the rest --------------------------------------------------------------------------------

jn_status CallManager::set_cookie(const std::string& plugin, jn_handle h, uint64_t cookie) {
  Leg* leg = legs_.get(h);
  if (!leg || leg->state == LegState::Dead) return JN_ERR_NOT_FOUND;
  if (plugin_names_[leg->plugin_id] != plugin) return JN_ERR_INVALID;
  leg->cookie = cookie;
  return JN_OK;
}

size_t CallManager::end_plugin_legs(const std::string& plugin, int32_t code, std::string reason) {
  auto id = plugin_ids_.find(plugin);
  if (id == plugin_ids_.end()) return 0;
  std::vector<jn_handle> owned;
  legs_.for_each([&](jn_handle h, const Leg& leg) {
    if (leg.plugin_id == id->second && leg.state != LegState::Dead) owned.push_back(h);
  });

  size_t ended = 0;
  for (jn_handle h : owned) {
    Leg* leg = legs_.get(h);
    if (!leg || leg->state == LegState::Dead) continue;  // a peer of one ended just before
    const bool was_live = is_live(*leg);
    const Role role = leg->role;
    const jn_handle ch = leg->call;
    kill(h);  // also drops anything still queued for it: the plugin is going away
    ++ended;
    if (!was_live) continue;  // its call already ended; it only awaited its final event
    Call* c = calls_.get(ch);
    assert(c);
    if (c->state == CallState::Answered) {
      jn_handle peer = role == Role::A ? c->b_legs[0] : c->a_leg;
      queue(peer, event_for(*c, JN_CALL_END, code, reason), true);
      finish(ch, code, reason, EndedBy::System);
    } else if (role == Role::A) {
      end_b_legs(*c, code, reason);
      finish(ch, code, reason, EndedBy::System);
    } else {
      b_leg_dropped(*c, ch, h, code, reason, EndedBy::System);
    }
  }
  drain();
  return ended;
}

std::optional<std::string> CallManager::leg_plugin(jn_handle h) const {
  const Leg* leg = legs_.get(h);
  if (!leg || leg->state == LegState::Dead) return std::nullopt;
  return plugin_names_[leg->plugin_id];
}

nlohmann::json CallManager::to_json() const {
  static const char* const leg_states[] = {"offered", "ringing", "answered", "ending", "dead"};
  const uint64_t now = timers_.now_ms();
  nlohmann::json calls = nlohmann::json::array();
  calls_.for_each([&](jn_handle, const Call& c) {
    nlohmann::json legs = nlohmann::json::array();
    auto add_leg = [&](jn_handle h) {
      const Leg* leg = legs_.get(h);
      if (!leg) return;
      nlohmann::json j = {{"id", h},
                          {"plugin", plugin_names_[leg->plugin_id]},
                          {"role", leg->role == Role::A ? "a" : "b"},
                          {"state", leg_states[static_cast<int>(leg->state)]},
                          {"age_ms", now - c.start_ms - leg->age_offset_ms}};
      if (leg->role == Role::B) j["target"] = c.targets[leg->target_index].uri;
      legs.push_back(std::move(j));
    };
    add_leg(c.a_leg);
    for (jn_handle b : c.b_legs) add_leg(b);
    calls.push_back({{"id", c.id},
                     {"from", c.from},
                     {"to", c.to},
                     {"state", c.state == CallState::Answered ? "answered" : "ringing"},
                     {"strategy", to_string(c.strategy)},
                     {"age_ms", now - c.start_ms},
                     {"legs", std::move(legs)}});
  });
  return calls;
}

}  // namespace junction
