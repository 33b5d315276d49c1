// verto-ws: event channels. verto.subscribe / unsubscribe with per-user permissions,
// verto.broadcast, core events exposed as channels and the heartbeat channel.
#include "verto_ws.hpp"

namespace verto::ws {

const std::vector<std::string>& VertoWs::patterns_of(const std::string& user) const {
  auto it = conf_.user_channels.find(user);
  return it == conf_.user_channels.end() ? conf_.channels : it->second;
}

json VertoWs::subscribe(Conn& c, verto::Message& m, bool on) {
  json ch = m.params.contains("eventChannel") ? m.params["eventChannel"] : json();
  std::vector<std::string> list;
  if (ch.is_string()) list.push_back(ch.get<std::string>());
  else if (ch.is_array())
    for (auto& e : ch)
      if (e.is_string()) list.push_back(e.get<std::string>());
  if (list.empty() || list.size() > 64) {
    bad(c, "verto." + std::string(on ? "" : "un") + "subscribe without eventChannel (a string or an array of strings, at most 64)");
    return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: eventChannel");
  }
  json done = json::array(), unauthorized = json::array(), already = json::array();
  for (auto& name : list) {
    if (!verto::valid_channel(name) || (on && !verto::channel_allowed(patterns_of(c.user), name) && !confs_->channel_allowed(c, name))) {
      unauthorized.push_back(name);
      continue;
    }
    if (on) {
      if (c.subs.count(name)) already.push_back(name);
      else {
        if (c.subs.size() >= 256) {
          unauthorized.push_back(name);
          continue;
        }
        c.subs.insert(name);
        done.push_back(name);
        confs_->subscribed(c.h, name);  // a conference info channel: layout-info
      }
    } else {
      if (c.subs.erase(name)) done.push_back(name);
      else unauthorized.push_back(name);  // mod_verto: not subscribed = unauthorized
    }
  }
  json r = json::object();
  if (!done.empty()) r[on ? "subscribedChannels" : "unsubscribedChannels"] = done;
  if (!unauthorized.empty()) r["unauthorizedChannels"] = unauthorized;
  if (!already.empty()) r["alreadySubscribedChannels"] = already;
  host().debug(c.user + (on ? " subscribed " : " unsubscribed ") + done.dump() + (unauthorized.empty() ? "" : " refused " + unauthorized.dump()));
  return verto::make_result(m.id, r, c.sessid);
}

// Delivers verto.event to every connection subscribed to `channel` (or to a prefix channel
// ending in '/' for core topics). Returns how many got it.
size_t VertoWs::deliver(const std::string& channel, json params) {
  params["eventChannel"] = channel;
  params["eventSerno"] = ++event_serno_;
  size_t n = 0;
  std::vector<jn_handle> to;
  for (auto& [h, c] : conns_) {
    if (!c.authed || c.closing) continue;
    bool sub = c.subs.count(channel) > 0;
    for (size_t p = channel.find('/'); !sub && p != std::string::npos; p = channel.find('/', p + 1)) sub = c.subs.count(channel.substr(0, p + 1)) > 0;
    if (sub) to.push_back(h);
  }
  for (jn_handle h : to) {
    request(h, "verto.event", params);
    ++n;
  }
  return n;
}

json VertoWs::broadcast(Conn& c, verto::Message& m) {
  std::string ch = str_of(m.params, "eventChannel");
  if (json reply; confs_->broadcast(c.h, c, m, reply)) return reply;  // conference channels, cman.bootstrap
  if (ch.empty() || !verto::valid_channel(ch)) {
    bad(c, "verto.broadcast without a valid eventChannel");
    return verto::make_error(m.id, verto::kInvalidParams, "Invalid params: eventChannel");
  }
  if (!verto::channel_allowed(patterns_of(c.user), ch) || ch == conf_.heartbeat_channel) {
    host().info(c.user + " may not broadcast on " + verto::printable(ch));
    return verto::make_error(m.id, verto::kLoginFailed, "Permission Denied");
  }
  json params = m.params;
  params.erase("eventSerno");
  params["userid"] = c.user;
  params["sessid"] = c.sessid;
  std::string sessid = c.sessid;
  size_t n = deliver(ch, params);
  return verto::make_result(m.id, json{{"message", "Broadcast sent"}, {"eventChannel", ch}, {"delivered", n}}, sessid);
}

void VertoWs::on_event(std::string_view topic, std::string_view text) {
  json data = json::parse(text, nullptr, false);
  if (topic == JN_MEDIA_KEYFRAME_REQUEST_TOPIC) {  // a consumer of a browser's video wants a keyframe
    std::string stream = data.is_object() ? data.value("stream", "") : "";
    for (auto& [i, l] : media_)
      if (l->owns_stream(stream)) want_keyframe(*l);
    bool exposed = false;
    for (auto& p : conf_.core_events) exposed = exposed || topic.substr(0, p.size()) == p;
    if (!exposed) return;
  }
  if (data.is_discarded()) data = std::string(text);
  deliver(std::string(topic), json{{"data", data}});
}

void VertoWs::heartbeat() {
  uint64_t up = host().now_ms() - started_ms_;
  size_t logged_in = 0;
  for (auto& [h, c] : conns_) logged_in += c.authed;
  json data = {{"Event-Name", "HEARTBEAT"}, {"Event-Info", "System Ready"}, {"Event-Date-Timestamp", std::to_string(unix_now() * 1000000)},
               {"Uptime-msec", std::to_string(up)}, {"Session-Count", std::to_string(calls_.size())},
               {"Verto-Connections", std::to_string(conns_.size())}, {"Verto-Logged-In", std::to_string(logged_in)},
               {"Verto-Sessions", std::to_string(sessions_.size())}, {"Core-Plugin", "verto-ws"}};
  deliver(conf_.heartbeat_channel, json{{"data", data}});
}

}  // namespace verto::ws
