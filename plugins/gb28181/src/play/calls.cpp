// gb: routing: a call from any plugin to `gb:<channel>` (or `gb:<device>/<channel>`) comes here
// (the plugin owns the "gb" URI namespace). The caller is one viewer of the channel's live
// stream: RINGING at once, ANSWER (media streams naming the channel's bus streams, sendonly) when
// the device's stream is established, REJECT / END with the reason when it cannot be or ends.
// The caller's END releases its viewer (the stream is BYEd after the grace when it was the last).
#include "plugin.hpp"

#include <junction/util/addr.hpp>

#include <cstdlib>

namespace gb {

using junction::sdk::Host;
using junction::sdk::to_jn;
using junction::sdk::to_sv;
using nlohmann::json;

namespace {
std::string viewer_id(jn_handle leg) { return "call:" + std::to_string(leg); }
bool digits20(std::string_view s) { return s.size() == 20 && s.find_first_not_of("0123456789") == std::string_view::npos; }
}  // namespace

bool GbPlugin::resolve_channel(std::string_view uri, std::string& device, std::string& channel, std::string& err) {
  if (uri.substr(0, 3) != "gb:") {
    err = "not a gb: URI";
    return false;
  }
  std::string_view rest = uri.substr(3);
  if (size_t at = rest.find_first_of("@;?"); at != std::string_view::npos) rest = rest.substr(0, at);
  if (size_t sl = rest.find('/'); sl != std::string_view::npos) {
    device = std::string(rest.substr(0, sl));
    channel = std::string(rest.substr(sl + 1));
    if (!digits20(device) || !digits20(channel)) {
      err = "gb:<device>/<channel> needs two 20-digit codes";
      return false;
    }
    return true;
  }
  if (!digits20(rest)) {
    err = "gb:<channel> needs a 20-digit channel code";
    return false;
  }
  channel = std::string(rest);
  // The device whose catalog lists the channel (or the device itself: a one-channel camera).
  if (reg_.find(channel)) {
    device = channel;
    return true;
  }
  device.clear();
  reg_.for_each([&](Device& d) {
    if (!device.empty()) return;
    if (const junction::gb::DeviceCatalog* c = cc_->catalog(d.conf.id); c && c->channels.count(channel)) device = d.conf.id;
  });
  if (device.empty()) {
    err = "no device lists channel " + channel + " in its catalog (query the Catalog, or call gb:<device>/<channel>)";
    return false;
  }
  return true;
}

void GbPlugin::on_call(jn_handle leg, uint64_t, const jn_call_event& ev) {
  auto it = call_viewers_.find(leg);
  if (ev.type == JN_CALL_OFFER && it == call_viewers_.end()) {
    std::string uri(to_sv(ev.target).empty() ? to_sv(ev.to) : to_sv(ev.target));
    std::string device, channel, err;
    if (!resolve_channel(uri, device, channel, err)) {
      host().info("gb28181: call to " + uri.substr(0, 64) + " refused: " + err);
      host().call_send(leg, JN_CALL_REJECT, 404, err);
      return;
    }
    call_viewers_[leg] = CallViewer{device, channel, false};
    if (!play_->view(device, channel, viewer_id(leg), err)) {
      call_viewers_.erase(leg);
      host().info("gb28181: call to " + uri + " refused: " + err);
      host().call_send(leg, JN_CALL_REJECT, err.find("offline") != std::string::npos ? 480 : 503, err);
      return;
    }
    host().info("gb28181: call " + std::string(to_sv(ev.call_id)) + " from " + std::string(to_sv(ev.from)).substr(0, 64) +
                " views " + channel + " of " + device);
    host().call_send(leg, JN_CALL_RINGING);
    answer_calls(channel);  // at once when the stream already runs
    return;
  }
  if (it == call_viewers_.end()) {
    if (ev.type == JN_CALL_OFFER) host().call_send(leg, JN_CALL_REJECT, 488, "re-offer not supported");
    return;
  }
  switch (ev.type) {
    case JN_CALL_END:
    case JN_CALL_REJECT: {
      std::string ch = it->second.channel;
      call_viewers_.erase(it);
      play_->unview(ch, viewer_id(leg));
      break;
    }
    case JN_CALL_INFO:
      // Keyframe on demand from the viewer's side ("keyframe"/"iframe"); other app events are not ours.
      if (to_sv(ev.info_type) == "keyframe" || to_sv(ev.info_type) == "iframe") request_keyframe(it->second.device, it->second.channel);
      break;
    default:
      break;
  }
}

void GbPlugin::answer_calls(const std::string& channel) {
  uint64_t id = play_->live_session(channel);
  const play::PlaySession* s = id ? play_->find(id) : nullptr;
  if (!s || s->state != play::SessionState::Active) return;
  std::string vs = s->stream + "/video", as = s->stream + "/audio", params = "y=" + s->answer_ssrc;
  jn_media_stream streams[2]{};
  streams[0].struct_size = streams[1].struct_size = sizeof(jn_media_stream);
  streams[0].kind = JN_MEDIA_VIDEO;
  streams[0].format = to_jn("H264");
  streams[0].clock_rate = 90000;
  streams[0].direction = JN_DIR_SENDONLY;
  streams[0].bus_stream = to_jn(vs);
  streams[0].params = to_jn(params);
  streams[1].kind = JN_MEDIA_AUDIO;
  streams[1].format = to_jn("PCMA");
  streams[1].clock_rate = 8000;
  streams[1].channels = 1;
  streams[1].direction = JN_DIR_SENDONLY;
  streams[1].bus_stream = to_jn(as);
  const jn_media_stream* ptrs[2] = {&streams[0], &streams[1]};
  jn_media_desc desc{sizeof(jn_media_desc), 2, ptrs};
  std::vector<jn_handle> legs;
  for (auto& [leg, cv] : call_viewers_)
    if (cv.channel == channel && !cv.answered) legs.push_back(leg);
  for (jn_handle leg : legs) {
    call_viewers_[leg].answered = true;
    jn_call_event ev = Host::event(JN_CALL_ANSWER);
    ev.media = &desc;
    host().call_send(leg, ev);
  }
}

void GbPlugin::end_viewers(const std::vector<std::string>& viewers, const std::string& reason) {
  for (auto& v : viewers) {
    host().info("gb28181: viewer " + v + " ended: " + reason);
    if (v.rfind("call:", 0) != 0) continue;  // the operator's "admin" viewer holds nothing
    jn_handle leg = std::strtoull(v.c_str() + 5, nullptr, 10);
    auto it = call_viewers_.find(leg);
    if (it == call_viewers_.end()) continue;
    bool answered = it->second.answered;
    call_viewers_.erase(it);
    if (answered) host().call_send(leg, JN_CALL_END, 503, reason);
    else host().call_send(leg, JN_CALL_REJECT, 503, reason);
  }
  host().counter_add("gb_viewers_ended_total", static_cast<double>(viewers.size()));
}

json GbPlugin::calls_to_json() const {
  json a = json::array();
  for (auto& [leg, cv] : call_viewers_) a.push_back({{"leg", leg}, {"device", cv.device}, {"channel", cv.channel}, {"answered", cv.answered}});
  return a;
}

void GbPlugin::calls_from_json(const json& j) {
  call_viewers_.clear();
  if (!j.is_array()) return;
  for (auto& e : j)
    if (e.is_object())
      call_viewers_[e.value("leg", jn_handle{0})] = CallViewer{e.value("device", std::string()), e.value("channel", std::string()),
                                                               e.value("answered", false)};
}

}  // namespace gb
