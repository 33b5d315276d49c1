// Hot reload (state codec): the stack's transactions, the env's handles (sockets, listener, TCP
// connections, timer), every device's live state, the redirect assignments. Provisioning is not
// in it: the new instance reads the store.
#include "plugin.hpp"

#include <junction/util/state.hpp>

namespace gb {

using nlohmann::json;

jn_status GbPlugin::save_state(std::string& out) {
  junction::util::StateOut s;
  s["stack"] = stack_->save();
  s["env"] = env_.save();
  s["live"] = reg_.live_to_json();
  s["redirect"] = redirect_->to_json();
  s["cc"] = cc_->save();
  s["subs"] = subs_to_json();
  json msgs = json::array();
  for (auto& [t, m] : msg_txn_) msgs.push_back({t, m});
  s["msg_txn"] = msgs;
  json subt = json::array();
  for (auto& [t, st] : sub_txn_) subt.push_back({{"txn", t}, {"key", st.key}, {"asked", st.asked}});
  s["sub_txn"] = subt;
  json waiting = json::array();
  for (auto& [tag, h] : admin_waiting_) waiting.push_back({tag, h});
  s["admin_waiting"] = waiting;
  s["next_tag"] = next_tag_;
  s["media"] = media_->save();
  s["play"] = play_->to_json();
  s["calls"] = calls_to_json();
  s["broadcasts"] = broadcasts_to_json();
  s["clients"] = clients_to_json();
  s["counters"] = {{"keepalives", keepalives_}, {"keepalive_refused", keepalive_refused_}, {"offline", offline_events_}};
  out = s.encode();
  return JN_OK;
}

jn_status GbPlugin::restore_state(uint32_t schema, std::string_view data) {
  junction::util::StateIn in;
  std::string err;
  // schema 1: part 1 (no media sessions); 2: + "media" and "play".
  jn_status st = in.parse(schema, 1, 2, data, err);
  if (st != JN_OK) {
    host().set_error(err);
    return st;
  }
  if (in.has("env")) env_.restore(in["env"]);
  if (in.has("stack") && !stack_->restore(in["stack"].get<std::string>(), err)) {
    host().set_error("stack: " + err);
    return JN_ERR_INVALID;
  }
  size_t n = reg_.live_from_json(in["live"]);
  reg_.for_each([&](Device& d) {
    if (d.live.registered) index_conn(d);
  });
  subs_from_json(in["subs"]);
  for (auto& e : in["msg_txn"])
    if (e.is_array() && e.size() == 2) msg_txn_[e[0].get<uint64_t>()] = e[1].get<uint64_t>();
  for (auto& e : in["sub_txn"])
    if (e.is_object()) sub_txn_[e.value("txn", uint64_t(0))] = {e.value("key", std::string()), e.value("asked", 0u)};
  for (auto& e : in["admin_waiting"])
    if (e.is_array() && e.size() == 2) admin_waiting_[e[0].get<uint64_t>()] = e[1].get<jn_handle>();
  in.read("next_tag", next_tag_);
  // The command layer last: its restore re-arms its timer through arm_timer.
  if (in.has("cc") && in["cc"].is_string() && !cc_->restore(in["cc"].get<std::string>(), err)) {
    host().set_error("commands: " + err);
    return JN_ERR_INVALID;
  }
  redirect_->from_json(in["redirect"]);
  // The receivers first (their sockets), then the sessions naming them.
  if (in.has("media") && in["media"].is_string() && !media_->restore(in["media"].get<std::string>(), err)) {
    host().set_error("media: " + err);
    return JN_ERR_INVALID;
  }
  calls_from_json(in["calls"]);
  broadcasts_from_json(in["broadcasts"]);
  if (in.has("clients")) clients_from_json(in["clients"]);
  if (in.has("play") && !play_->from_json(in["play"], err)) {
    host().set_error(err);
    return JN_ERR_INVALID;
  }
  const auto& c = in["counters"];
  if (c.is_object()) {
    keepalives_ = c.value("keepalives", uint64_t(0));
    keepalive_refused_ = c.value("keepalive_refused", uint64_t(0));
    offline_events_ = c.value("offline", uint64_t(0));
  }
  host().info("gb28181: restored " + std::to_string(reg_.registered()) + " registration(s) of " + std::to_string(n) +
              " device(s), " + std::to_string(stack_->transactions().size()) + " transaction(s), " +
              std::to_string(play_->sessions().size()) + " media session(s)");
  update_gauges();
  sweep();
  arm();
  return JN_OK;
}

}  // namespace gb
