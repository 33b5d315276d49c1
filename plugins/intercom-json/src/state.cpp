// intercom-json: hot reload (README "Hot reload"): the state codec that carries the connections and
// calls (model.hpp) to the next generation.

#include "intercom_json.hpp"

#include <junction/util/state.hpp>

namespace intercom_json {

jn_status IntercomJson::save_state(std::string& out) {
  json conns = json::array();
  for (auto& [h, c] : conns_) conns.push_back(c);
  json calls = json::array();
  for (auto& [id, c] : calls_) calls.push_back(c);
  junction::util::StateOut st;
  st.set("listener", listener_).set("tick", tick_).set("tick_ms", tick_ms()).set("serial", serial_).set("msg_serial", msg_serial_);
  st.set("conns", conns).set("calls", calls).set("routes", routes_);
  // Call text from other plugins (URIs, reasons) need not be UTF-8: StateOut replaces it, so a
  // reload never fails on it (fuzz_intercom-json_session found the throw).
  out = st.encode();
  return JN_OK;
}

jn_status IntercomJson::restore_state(uint32_t schema, std::string_view data) {
  junction::util::StateIn s;
  std::string error;
  if (jn_status st = s.parse(schema, kStateSchema, kStateSchema, data, error); st != JN_OK) {
    host().set_error(error);
    return st;
  }
  s.read("listener", listener_);
  s.read("tick", tick_);
  s.read("serial", serial_);
  s.read("msg_serial", msg_serial_);
  for (auto& c : s["conns"]) {
    Conn conn = c.get<Conn>();
    conns_[conn.h] = conn;
  }
  for (auto& c : s["calls"]) {
    Call call = c.get<Call>();
    calls_[call.id] = call;
  }
  s.read("routes", routes_);
  rebuild_indexes();
  // Pulls are not carried over (their reader state is not saved): the old connections are
  // closed as they speak, and each answered call on the bus pulls again.
  for (auto& [id, c] : calls_)
    if (c.bus && c.answered) {
      start_pulls(c, c.a_side ? c.src : c.dest);
      if (!c.push_id.empty()) start_push(c);
    }
  // The keepalive clock is the saved last_rx/last_tx, in the loop's monotonic time: it carries
  // over. A changed keep_interval_ms takes effect with a new tick timer.
  if (s.get<uint64_t>("tick_ms", 0) != tick_ms()) {
    host().stop_timer(tick_);
    host().timer(tick_ms(), tick_ms(), kTickCookie, &tick_);
  }
  host().info("restored " + std::to_string(conns_.size()) + " connection(s) and " + std::to_string(calls_.size()) +
              " call leg(s) from generation " + std::to_string(generation_ ? generation_ - 1 : 0));
  return JN_OK;
}

}  // namespace intercom_json
