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
// The tag of a call's own catch-up streams (media.gop_cache): "<stream>/viewer/call-<leg>/video|audio".
std::string viewer_tag(jn_handle leg) { return "call-" + std::to_string(leg); }
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
    // gb:<device>/<channel>;playback=<start>-<end> (unix seconds): a playback of its own,
    // controlled by the caller's INFO events (play / pause / teardown, JSON body: scale, range_start).
    if (size_t p = uri.find(";playback="); p != std::string::npos) {
      play::StartRequest r;
      r.kind = play::Kind::Playback;
      r.device = device;
      r.channel = channel;
      std::string span = uri.substr(p + 10);
      size_t dash = span.find('-');
      r.start = std::strtoull(span.c_str(), nullptr, 10);
      r.end = dash == std::string::npos ? 0 : std::strtoull(span.c_str() + dash + 1, nullptr, 10);
      uint64_t id = play_->start(r, err);
      if (!id) {
        host().info("gb28181: playback call to " + uri.substr(0, 96) + " refused: " + err);
        host().call_send(leg, JN_CALL_REJECT, err.find("offline") != std::string::npos ? 480 : 503, err);
        return;
      }
      call_viewers_[leg] = CallViewer{device, channel, false, id};
      host().call_send(leg, JN_CALL_RINGING);
      return;
    }
    call_viewers_[leg] = CallViewer{device, channel, false, 0};
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
      uint64_t session = it->second.session;
      call_viewers_.erase(it);
      if (session) play_->stop(session, "the caller ended");
      else {
        if (uint64_t live = play_->live_session(ch))
          if (const play::PlaySession* s = play_->find(live)) media_->drop_viewer_stream(s->media, viewer_tag(leg));
        play_->unview(ch, viewer_id(leg));
      }
      break;
    }
    case JN_CALL_INFO:
      if (uint64_t session = it->second.session) {
        // MANSRTSP from the caller's app events: info_type play / pause / teardown, body {"scale", "range_start"}.
        std::string_view type = to_sv(ev.info_type);
        play::RtspRequest r;
        if (type == "play") r.method = play::RtspMethod::Play, r.range_given = true;
        else if (type == "pause") r.method = play::RtspMethod::Pause;
        else if (type == "teardown") r.method = play::RtspMethod::Teardown;
        else break;
        json b = json::parse(to_sv(ev.info_body), nullptr, false);
        if (b.is_object()) {
          if (b.contains("scale") && b["scale"].is_number()) r.scale = b["scale"].get<double>();
          if (b.contains("range_start") && b["range_start"].is_number()) r.range_start = b["range_start"].get<double>();
        }
        std::string err;
        if (!play_->control(session, r, err)) host().info("gb28181: playback control from call refused: " + err);
        break;
      }
      // Keyframe on demand from the viewer's side ("keyframe"/"iframe"); other app events are not ours.
      if (to_sv(ev.info_type) == "keyframe" || to_sv(ev.info_type) == "iframe") request_keyframe(it->second.device, it->second.channel);
      break;
    default:
      break;
  }
}

void GbPlugin::answer_call(jn_handle leg, const play::PlaySession& s) {
  // A live viewer gets streams of its own when the GOP cache is on: they start with the cached GOP
  // as soon as its consumer joins (media.keyframe_request naming them), docs/media-latency.md.
  std::string base = s.kind == play::Kind::Play ? media_->viewer_stream(s.media, viewer_tag(leg)) : std::string();
  if (base.empty()) base = s.stream;
  else host().info("gb28181: call leg " + std::to_string(leg) + " views " + s.channel + " on its own streams " + base + "/video|audio");
  std::string vs = base + "/video", as = base + "/audio", params = "y=" + s.answer_ssrc;
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
  jn_call_event ev = Host::event(JN_CALL_ANSWER);
  ev.media = &desc;
  host().call_send(leg, ev);
}

// A playback call's session changed: answered when established, ended with it.
void GbPlugin::playback_call_changed(uint64_t id, const json& view) {
  for (auto it = call_viewers_.begin(); it != call_viewers_.end(); ++it) {
    if (it->second.session != id) continue;
    jn_handle leg = it->first;
    std::string state = view.value("state", std::string());
    if (state == "active" && !it->second.answered) {
      it->second.answered = true;
      if (const play::PlaySession* s = play_->find(id)) answer_call(leg, *s);
    } else if (state == "ended") {
      bool answered = it->second.answered;
      std::string reason = view.value("end_reason", std::string("ended"));
      call_viewers_.erase(it);
      host().call_send(leg, answered ? JN_CALL_END : JN_CALL_REJECT, answered ? 200 : 503, reason);
    }
    return;
  }
}

void GbPlugin::answer_calls(const std::string& channel) {
  uint64_t id = play_->live_session(channel);
  const play::PlaySession* s = id ? play_->find(id) : nullptr;
  if (!s || s->state != play::SessionState::Active) return;
  std::vector<jn_handle> legs;
  for (auto& [leg, cv] : call_viewers_) {
    if (cv.channel != channel || cv.session) continue;
    if (!cv.answered) legs.push_back(leg);
    else media_->viewer_stream(s->media, viewer_tag(leg));  // a restarted stream: the answered names carry on
  }
  for (jn_handle leg : legs) {
    call_viewers_[leg].answered = true;
    answer_call(leg, *s);
  }
}

void GbPlugin::end_viewers(const std::vector<std::string>& viewers, const std::string& reason) {
  for (auto& v : viewers) {
    host().info("gb28181: viewer " + v + " ended: " + reason);
    if (clients_.count(v)) {  // a SIP client's call (client_invite.cpp)
      end_client(v, reason, true, 480, false);
      continue;
    }
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
  for (auto& [leg, cv] : call_viewers_)
    a.push_back({{"leg", leg}, {"device", cv.device}, {"channel", cv.channel}, {"answered", cv.answered}, {"session", cv.session}});
  return a;
}

void GbPlugin::calls_from_json(const json& j) {
  call_viewers_.clear();
  if (!j.is_array()) return;
  for (auto& e : j)
    if (e.is_object())
      call_viewers_[e.value("leg", jn_handle{0})] = CallViewer{e.value("device", std::string()), e.value("channel", std::string()),
                                                               e.value("answered", false), e.value("session", uint64_t{0})};
}

}  // namespace gb
