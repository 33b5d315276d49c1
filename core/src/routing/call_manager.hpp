// CallManager: the neutral call model. A call is one A-leg (the plugin that originated it) and
// the B-legs its destination routed to; legs exchange CallEvents (offer, ringing, answer,
// reject, end, dtmf, info) and the manager enforces who may say what, when.
//
// Re-entrancy: deliveries go through a FIFO queue that is drained after each state change by
// the outermost entry point only. A plugin may call send()/originate()/set_cookie() from inside
// CallEndpoints::deliver(); that call changes state at once and queues its own deliveries
// behind the ones already waiting, so no plugin ever sees a half-updated call. The stack never
// grows with the chain, but a chain can be endless (two legs answering every INFO with an
// INFO): so one drain accepts at most events_per_drain events sent from inside deliver(), and
// the queue toward one leg holds at most queued_per_leg deliveries. Beyond either, send() or
// originate() is refused with JN_ERR_LIMIT (counted, logged once per drain) and the chain stops
// there. What ends or settles a leg (END, REJECT, a B-leg's first ANSWER) is never refused: a
// leg says it once, and refusing it would leave a call hanging.
//
// Early media: a RINGING with media from a B-leg is the early media the caller hears. The
// caller hears one branch at a time (a phone behind a forking proxy can usefully play only one
// early media stream; RFC 3960 leaves the choice to it), the one that sent early media last:
// each such RINGING is forwarded to the A-leg through the media anchor like an answer, which
// re-points the anchor at that branch. When that branch drops while others still ring, the latest other branch that
// sent early media is heard again (forwarded and anchored once more). The winning ANSWER
// replaces it (one without media takes the winner's early media). A RINGING without media is
// forwarded once per call, and not after early media.
//
// Leg lifetime: a leg is dead once it sends END/REJECT, or once an END/REJECT sent to it has
// been delivered; its handle is then refused with JN_ERR_NOT_FOUND. Between the queueing and
// the delivery of that final event the leg is "doomed": a late ANSWER from it is accepted and
// ignored (its END is on the way), its own END/REJECT is accepted (and the queued one dropped).
//
// Single-threaded: used from the core's control loop only.
#pragma once

#include <junction/abi.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "handles.hpp"
#include "routing/call_event.hpp"
#include "routing/route_table.hpp"
#include "routing/string_map.hpp"

namespace junction {

// Hands an event to the plugin owning a leg (the plugin host implements this with on_call).
// Must not throw. May re-enter the CallManager.
struct CallEndpoints {
  virtual ~CallEndpoints() = default;
  virtual void deliver(const std::string& plugin, jn_handle leg, uint64_t cookie,
                       const CallEvent& ev) = 0;
  // Whether the plugin can take new offers (loaded and not stopping). An offer to a plugin
  // that cannot fails like a REJECT 503, so a hunt moves on and a fork does not wait for it.
  virtual bool available(const std::string& /*plugin*/) { return true; }
};

// One-shot timers on the control loop. Ids are nonzero; cancel() of a fired or unknown id is
// a no-op. fn runs on the loop, never from inside start().
struct CallTimers {
  virtual ~CallTimers() = default;
  virtual uint64_t start(uint64_t delay_ms, std::function<void()> fn) = 0;
  virtual void cancel(uint64_t id) = 0;
  virtual uint64_t now_ms() = 0;
};

// Passes a call's media through a media anchor (a relay) when one is configured: the A-leg's
// offer before the B-legs see it, the answer before the A-leg sees it, a delete at the end.
// Returns the media the other side must use, or nullopt to leave it as it is. Must not re-enter
// the CallManager.
struct MediaAnchor {
  enum Op : uint32_t { Offer = JN_ANCHOR_OFFER, Answer = JN_ANCHOR_ANSWER, Delete = JN_ANCHOR_DELETE };
  virtual ~MediaAnchor() = default;
  // sender: whose media it is (0 = the A-leg's side, 1 = the B-leg's); see jn_anchor_request.
  virtual std::optional<std::vector<MediaStream>> anchor(Op op, const std::string& call_id,
                                                         const std::vector<MediaStream>* media, uint32_t sender) = 0;
};

class CallManager {
 public:
  using CdrSink = std::function<void(const nlohmann::json&)>;

  CallManager(RouteTable& routes, CallEndpoints& endpoints, CallTimers& timers, CdrSink cdr_sink);
  ~CallManager();  // cancels the timers of calls still up
  CallManager(const CallManager&) = delete;
  CallManager& operator=(const CallManager&) = delete;

  // How long B-legs may ring before the whole attempt ends with 408 (0 = forever).
  void set_ring_timeout_ms(uint32_t ms) { ring_timeout_ms_ = ms; }
  // Media anchoring (nullptr = none). Not owned.
  void set_media_anchor(MediaAnchor* anchor) { anchor_ = anchor; }
  // server.max_calls: originate() with this many calls in progress is refused (0 = no limit).
  void set_max_calls(uint32_t n) { max_calls_ = n; }
  // The re-entrancy bounds (see above); 0 = no limit. Defaults kEventsPerDrain, kQueuedPerLeg.
  void set_drain_limits(uint32_t events_per_drain, uint32_t queued_per_leg) {
    events_per_drain_ = events_per_drain;
    queued_per_leg_ = queued_per_leg;
  }
  static constexpr uint32_t kEventsPerDrain = 1000;
  static constexpr uint32_t kQueuedPerLeg = 256;

  // A new call from `plugin`: offer.type OFFER with from and to. Events for the A-leg carry
  // `cookie` (they may arrive before this returns, when a B plugin answers synchronously).
  //   JN_ERR_INVALID (bad offer or out_leg NULL), JN_ERR_NOT_FOUND (nothing routes `to`),
  //   JN_ERR_LIMIT (server.max_calls calls in progress, or from inside deliver() once the drain
  //   has accepted events_per_drain events).
  jn_status originate(const std::string& plugin, uint64_t cookie, const CallEvent& offer,
                      jn_handle* out_leg);
  // An event from one of `plugin`'s legs.
  //   JN_ERR_NOT_FOUND unknown, stale or dead leg; JN_ERR_INVALID another plugin's leg or an
  //   unknown type; JN_ERR_STATE not allowed now (ANSWER from the A-leg, REJECT after answer,
  //   a B-leg re-offer before answer, ...); JN_ERR_LIMIT a re-entrancy bound (see above).
  jn_status send(const std::string& plugin, jn_handle leg, const CallEvent& ev);
  jn_status set_cookie(const std::string& plugin, jn_handle leg, uint64_t cookie);

  // The plugin is going away: its legs die without further deliveries to it, their peers get
  // END (or the A-leg a REJECT, or a hunt moves on) with code/reason. Returns legs ended.
  size_t end_plugin_legs(const std::string& plugin, int32_t code, std::string reason);

  size_t active_calls() const { return calls_.size(); }
  // The media anchor lost this call's media: END to both legs, CDR ended by "system".
  // JN_ERR_NOT_FOUND when no anchored call has this id.
  jn_status end_anchored(const std::string& call_id, int32_t code, const std::string& reason);
  size_t active_legs() const { return live_legs_; }
  // Refusals, for the metrics: originates over server.max_calls; events over events_per_drain
  // (including originates from inside deliver()) and over queued_per_leg.
  uint64_t refused_calls() const { return refused_calls_; }
  uint64_t refused_events_drain() const { return refused_events_drain_; }
  uint64_t refused_events_queue() const { return refused_events_queue_; }
  // For GET /api/v1/calls: [{id, from, to, state, strategy, age_ms, legs:[{id, plugin, role,
  // target, state, age_ms}]}]
  nlohmann::json to_json() const;
  // The owner of a live leg.
  std::optional<std::string> leg_plugin(jn_handle leg) const;

 private:
  enum class Role : uint8_t { A, B };
  enum class LegState : uint8_t { Offered, Ringing, Answered, Doomed, Dead };
  enum class CallState : uint8_t { Ringing, Answered };
  enum class EndedBy : uint8_t { A, B, Timeout, System };

  // Kept small on purpose: a busy server holds hundreds of thousands of these.
  struct Leg {
    jn_handle call;
    uint64_t cookie;
    uint32_t plugin_id;
    uint32_t pending;        // queued deliveries; a dead leg is erased when this reaches 0
    uint32_t age_offset_ms;  // created at call start + this
    uint16_t target_index;   // B-legs: index in Call::targets
    Role role;
    LegState state;
  };
  static_assert(sizeof(Leg) <= 32, "one per party per call: keep it small");
  struct CallTarget {
    std::string uri;
    uint32_t plugin_id;
  };
  struct Call;
  struct Delivery {
    jn_handle leg;
    CallEvent ev;
    bool final;  // END/REJECT: the leg is dead once this is delivered
  };

  uint32_t intern_plugin(const std::string& plugin);
  Leg* live_leg(jn_handle h) const;
  static bool is_live(const Leg& leg) { return leg.state < LegState::Doomed; }
  CallEvent event_for(const Call& c, uint32_t type, int32_t code = 0,
                      std::string reason = {}) const;

  void queue(jn_handle leg, CallEvent ev, bool final);
  // Whether a plugin's event (or originate, c == nullptr) is within the re-entrancy bounds;
  // counts and logs a refusal.
  bool within_drain_limits(const std::string& plugin, const Call* c, jn_handle from, bool settles);
  void kill(jn_handle leg);  // sent its own END/REJECT (or its plugin left): no more deliveries
  void drain();

  void offer_target(Call& c, jn_handle call, uint32_t target_index,
                    const std::vector<MediaStream>* media);
  void offer_next_hunt_target(Call& c, jn_handle call);
  void end_b_legs(Call& c, int32_t code, const std::string& reason);
  void b_leg_dropped(Call& c, jn_handle call, jn_handle b_leg, int32_t code,
                     const std::string& reason, EndedBy by);
  void answer(Call& c, jn_handle b_leg, const CallEvent& ev);
  void early_media(Call& c, jn_handle b_leg, CallEvent ev);
  void early_media_dropped(Call& c, jn_handle b_leg);
  CallEvent anchored_to_a(const Call& c, CallEvent ev, MediaAnchor::Op op);
  void cancel_timers(Call& c);
  void finish(jn_handle call, int32_t code, const std::string& reason, EndedBy by);

  jn_status from_a_leg(Call& c, jn_handle call, jn_handle leg, const CallEvent& ev);
  jn_status from_b_leg(Call& c, jn_handle call, jn_handle leg, const CallEvent& ev);
  jn_status in_answered_call(Call& c, jn_handle call, jn_handle from, jn_handle peer,
                             const CallEvent& ev, EndedBy by);

  void on_ring_timeout(jn_handle call);
  void on_hunt_timeout(jn_handle call, jn_handle b_leg);

  RouteTable& routes_;
  CallEndpoints& endpoints_;
  CallTimers& timers_;
  CdrSink cdr_sink_;
  MediaAnchor* anchor_ = nullptr;
  uint32_t ring_timeout_ms_ = 60000;
  uint32_t max_calls_ = 0;
  uint32_t events_per_drain_ = kEventsPerDrain;
  uint32_t queued_per_leg_ = kQueuedPerLeg;
  uint64_t refused_calls_ = 0, refused_events_drain_ = 0, refused_events_queue_ = 0;
  uint64_t call_limit_burst_ = 0;  // refused since the limit was last hit (0 = not in a burst)

  HandleTable<Call> calls_;
  HandleTable<Leg> legs_;
  size_t live_legs_ = 0;
  uint64_t call_serial_ = 0;

  std::deque<Delivery> queue_;
  bool draining_ = false;  // the depth guard: only the outermost entry point drains
  uint32_t drain_events_ = 0;   // events accepted from inside deliver() in this drain
  uint32_t drain_refused_ = 0;  // ... and refused

  // deque: deliver() gets a reference that must survive a re-entrant intern_plugin().
  std::deque<std::string> plugin_names_;
  StringMap<uint32_t> plugin_ids_;
};

}  // namespace junction
