// Hot reload (state codec): the stack's transactions, the env's handles (sockets, listener, TCP
// connections, timer), every device's live state, the redirect assignments. Provisioning is not
// in it: the new instance reads the store.
#include "plugin.hpp"

#include <junction/util/state.hpp>

namespace gb {

jn_status GbPlugin::save_state(std::string& out) {
  junction::util::StateOut s;
  s["stack"] = stack_->save();
  s["env"] = env_.save();
  s["live"] = reg_.live_to_json();
  s["redirect"] = redirect_->to_json();
  s["counters"] = {{"keepalives", keepalives_}, {"keepalive_refused", keepalive_refused_}, {"offline", offline_events_}};
  out = s.encode();
  return JN_OK;
}

jn_status GbPlugin::restore_state(uint32_t schema, std::string_view data) {
  junction::util::StateIn in;
  std::string err;
  jn_status st = in.parse(schema, 1, 1, data, err);
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
  redirect_->from_json(in["redirect"]);
  const auto& c = in["counters"];
  if (c.is_object()) {
    keepalives_ = c.value("keepalives", uint64_t(0));
    keepalive_refused_ = c.value("keepalive_refused", uint64_t(0));
    offline_events_ = c.value("offline", uint64_t(0));
  }
  host().info("gb28181: restored " + std::to_string(reg_.registered()) + " registration(s) of " + std::to_string(n) +
              " device(s), " + std::to_string(stack_->transactions().size()) + " transaction(s)");
  update_gauges();
  sweep();
  arm();
  return JN_OK;
}

}  // namespace gb
