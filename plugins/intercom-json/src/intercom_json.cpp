// intercom-json: the building-intercom box of ../shared/seeds/000_820875a89618f866.txt (v0.4).
// Screens, door units (outer boxes), property apps and the property center connect over TCP and
// speak {"id","name","values"} JSON messages separated by \0. The box registers devices
// (join_family with a token it signed), routes call_req through the core's routing table, rings
// every screen of a family at once, relays accept/reject/end/open_door, enforces call_keep, and
// sends seczone_emergency alarms. See README.md beside this folder for every decision.
//
// This file: the plugin's lifecycle and event dispatch, and its factory. The class is declared in
// intercom_json.hpp; README "Source layout" maps the other files.

#include "intercom_json.hpp"

namespace intercom_json {

jn_status IntercomJson::start() {
  jn_status st = host().tcp_listen(conf_.listen, JN_FRAME_DELIM, 0, conf_.max_message, kListenerCookie, &listener_);
  if (st != JN_OK) {
    host().set_error("cannot listen on " + conf_.listen + " (status " + std::to_string(st) + ")");
    return st;
  }
  st = host().timer(tick_ms(), tick_ms(), kTickCookie, &tick_);
  if (st != JN_OK) return st;
  host().event_subscribe("alarm/");
  host().info("intercom box listening on " + conf_.listen + " (max message " + std::to_string(conf_.max_message) +
              " bytes, keepalive " + std::to_string(conf_.keep_interval_ms) + " ms x " + std::to_string(conf_.keep_max_missed) + ")");
  return JN_OK;
}

void IntercomJson::on_tcp(const jn_tcp_event& ev) {
  if (ev.cookie == kPushCookie) return on_push_tcp(ev);
  switch (ev.type) {
    case JN_TCP_ACCEPTED: {
      Conn c;
      c.h = ev.conn;
      c.peer = addr_text(ev.peer);
      conns_[ev.conn] = c;
      host().debug("connection from " + c.peer);
      gauge();
      return;
    }
    case JN_TCP_CONNECTED: return on_connected(ev.conn, ev.peer);
    case JN_TCP_FRAME: return on_frame(ev.conn, std::string_view(reinterpret_cast<const char*>(ev.data), ev.len));
    case JN_TCP_OVERSIZE: {
      Error e;
      e.code = 413;
      e.reason = "oversized";
      e.message = "message of " + std::to_string(ev.len) + "+ bytes exceeds the limit of " + std::to_string(conf_.max_message) +
                  " bytes; skipped up to the next \\0";
      return bad_input(ev.conn, e);
    }
    case JN_TCP_CLOSED: return on_closed(ev.conn, ev.status);
    default: return;
  }
}

void IntercomJson::on_timer(jn_handle, uint64_t cookie) {
  if (cookie == kTickCookie) keepalive_tick();
  if (cookie >= kPushTimerBase && cookie < kPushBusBase) return push_retry_due(cookie - kPushTimerBase);
  if (cookie >= kPullTimerBase && cookie < kPushTimerBase) return pull_retry_due(cookie - kPullTimerBase);
}

void IntercomJson::on_event(std::string_view topic, std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) {
    host().warn("alarm event " + std::string(topic) + " ignored: the data is not a JSON object");
    return;
  }
  json r = raise_alarm(j, std::string(topic));
  host().info("alarm " + std::string(topic) + " sent to " + std::to_string(r["sent"].get<int>()) + " screen(s)");
}

void IntercomJson::on_call(jn_handle leg, uint64_t cookie, const jn_call_event& ev) {
  if (cookie == 0 && ev.type == JN_CALL_OFFER) return incoming_offer(leg, ev);
  auto it = calls_.find(cookie);
  if (it == calls_.end()) {
    host().debug("event " + std::to_string(ev.type) + " for a call leg no longer known here (cookie " + std::to_string(cookie) + ")");
    return;
  }
  if (it->second.a_side) return a_leg_event(it->second.id, ev);
  return b_leg_event(it->second.id, ev);
}

}  // namespace intercom_json

JUNCTION_PLUGIN(intercom_json::IntercomJson, "intercom-json", "0.4.0",
                "Building intercom box: JSON call control over TCP (v0.4)", "intercom", intercom_json::kStateSchema,
                intercom_json::kStateSchema)
