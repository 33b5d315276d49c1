// SUBSCRIBE / NOTIFY (RFC 6665) on top of dialogs: the subscriber side (its SUBSCRIBE, the
// granted Expires, a refresh before it runs out, NOTIFY with Subscription-State) and the
// notifier side (granting an Expires between min and max, 423 below min, refreshes, Expires: 0
// as an unsubscribe, the NOTIFY it owes). Time is passed in (ms, the env's clock); the plugin
// asks next_due() and wakes through Stack::wake_user_at.
#pragma once

#include <junction/sip/dialog.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace junction::sip {

enum class SubState : uint8_t { Pending = 1, Active = 2, Terminated = 3 };
std::string_view sub_state_name(SubState s);

struct Subscription {
  Dialog dialog;
  std::string event;        // the Event package ("presence", "Catalog")
  std::string event_id;     // the Event's id= parameter
  SubState state = SubState::Pending;
  uint32_t expires_s = 0;   // last granted
  uint64_t expires_at = 0;  // ms (env clock)
  uint64_t refresh_at = 0;  // subscriber: when to send the refresh (0 = notifier side)
  bool subscriber = false;
  std::string terminated_reason;

  // --- subscriber ---
  // The SUBSCRIBE that starts (or, with a dialog, refreshes / with expires 0 ends) it.
  static std::string initial_subscribe(Stack& stack, Proto proto, std::string_view target_uri, std::string_view from_uri,
                                       std::string_view to_uri, std::string_view event, uint32_t expires,
                                       std::string_view from_tag, std::string_view call_id,
                                       std::string_view extra_headers = {}, std::string_view body = {},
                                       std::string_view content_type = {});
  std::string refresh(Stack& stack, uint32_t expires, std::string_view extra_headers = {});
  // A 2xx to our SUBSCRIBE: the granted Expires (header; missing: the one asked) arms the
  // refresh at half the time (at most 32 s before the end). A non-2xx ends it (a 423 gives the
  // Min-Expires in min_expires_out for a retry).
  void on_subscribe_response(const Message& resp, uint32_t asked, uint64_t now, uint32_t* min_expires_out = nullptr);
  // A NOTIFY in the subscription: its Subscription-State drives the state and the expiry.
  // False when it has no (or a bad) Subscription-State (answer 400).
  bool on_notify(const Message& notify, uint64_t now);

  // --- notifier ---
  // Grants a received SUBSCRIBE: the Expires (0..max, the default when absent) or 423 when it is
  // below min (returns 423; the caller answers with Min-Expires). 200 otherwise, 0 granted =
  // an unsubscribe (terminated after the final NOTIFY).
  int grant(const Message& subscribe, uint32_t min_s, uint32_t max_s, uint32_t default_s, uint64_t now);
  // The NOTIFY to send now (Event, Subscription-State with the remaining expires or the reason).
  std::string notify(Stack& stack, uint64_t now, std::string_view body = {}, std::string_view content_type = {},
                     std::string_view extra_headers = {});

  // The next time something is due (refresh or expiry), 0 when none.
  uint64_t next_due() const;
  // What is due at now: Refresh (subscriber: send refresh()), Expired (terminate: the notifier
  // sends a final NOTIFY, the subscriber forgets it), or Nothing.
  enum class Due : uint8_t { Nothing, Refresh, Expired };
  Due due(uint64_t now) const;

  nlohmann::json to_json() const;
  static bool from_json(const nlohmann::json& j, Subscription& out);
};

}  // namespace junction::sip
