// The plugin's side of the media sessions: PlayLink (device routes, IFrame keyframes, ending
// viewers, the timer), MediaStatus from devices, and the admin verbs play / stop / streams /
// playback / download / playback_control. README.md lists the verbs and the [play] keys.
#include "plugin.hpp"

#include <junction/util/addr.hpp>

#include <cmath>
#include <filesystem>

namespace gb {

namespace sip = junction::sip;
namespace mc = junction::gb;
using nlohmann::json;

jn_status GbPlugin::stop() {
  std::vector<std::string> clients;
  for (auto& [vid, c] : clients_) clients.push_back(vid);
  for (auto& vid : clients) end_client(vid, "platform stopping", true, 503);
  play_->stop_all("platform stopping");
  std::vector<std::string> chs;
  for (auto& [ch, b] : broadcasts_) chs.push_back(ch);
  for (auto& ch : chs) end_broadcast(ch, "platform stopping", true);
  return JN_OK;
}

play::PlayConf GbPlugin::play_conf() const {
  play::PlayConf p;
  p.transport = conf_.play.transport;
  p.media_ip = conf_.play.media_ip;
  p.download_speed = conf_.play.download_speed;
  p.viewers.grace_ms = conf_.play.grace_ms;
  p.viewers.restart_on_timeout = conf_.play.restart_on_timeout;
  p.viewers.backoff_initial_ms = conf_.play.backoff_initial_ms;
  p.viewers.backoff_max_ms = conf_.play.backoff_max_ms;
  p.viewers.restart_attempts = conf_.play.restart_attempts;
  return p;
}

bool GbPlugin::device_flow(const std::string& device, sip::Flow& flow, std::string& error) {
  Device* d = reg_.find(device);
  if (!d) {
    error = "no device " + device;
    return false;
  }
  if (!d->live.registered) {
    error = "device " + device + " is offline";
    return false;
  }
  flow = d->live.flow;
  return true;
}

std::optional<play::Transport> GbPlugin::device_transport(const std::string& device) {
  // Provisioned devices say theirs; auto-admitted ones take [play] transport.
  Device* d = reg_.find(device);
  if (!d || d->conf.auto_admitted) return std::nullopt;
  return play::transport_from(d->conf.media_transport);
}

void GbPlugin::request_keyframe(const std::string& device, const std::string& channel) {
  // The IFrame DeviceControl; its outcome reaches no admin caller (deliver() logs it).
  mc::StartResult r = cc_->iframe(device, channel, next_tag_++);
  if (!r.ok) host().info("gb28181: IFrame for " + channel + " of " + device + " not sent: " + r.error);
}

void GbPlugin::session_changed(uint64_t id, const json& view) {
  json ev = view;
  ev["id"] = id;
  publish("gb28181.session", ev);
  host().gauge_set("gb_sessions", static_cast<double>(play_ ? play_->sessions().size() : 0));
  // Calls waiting on this channel's live stream are answered once it is established.
  if (view.value("kind", std::string()) == "Play" && view.value("state", std::string()) == "active") {
    answer_calls(view.value("channel", std::string()));
    answer_clients(view.value("channel", std::string()));
  }
  else if (view.value("kind", std::string()) != "Play")
    playback_call_changed(id, view);
}

void GbPlugin::arm_play(uint64_t at_ms) {
  play_timer_at_ = at_ms;
  arm();
}

bool GbPlugin::media_status(const mc::Body& body, const sip::Message& m, Device& d) {
  std::string type = body.text("NotifyType");
  std::string channel = body.text("DeviceID");
  size_t n = play_->media_status(d.conf.id, channel, type, m.call_id());
  host().info("gb28181: MediaStatus " + type.substr(0, 8) + " from " + d.conf.id + " for " + channel.substr(0, 32) + ": " +
              std::to_string(n) + " session(s) ended");
  return true;
}

json GbPlugin::session_view(const play::PlaySession& s) {
  json j = play_->view_of(s);
  if (!s.stream.empty()) j["bus"] = {{"video", s.stream + "/video"}, {"audio", s.stream + "/audio"}};
  if (s.kind == play::Kind::Download && s.filesize && *s.filesize && j.contains("media") && j["media"].is_object()) {
    // a=filesize counts the file as the device stores it (PS): the bytes received measure it
    double done = static_cast<double>(j["media"].value("bytes", uint64_t{0})) / static_cast<double>(*s.filesize);
    j["progress"] = std::min(1.0, done);
  }
  return j;
}

namespace {
// A 20-digit id field of an admin body; empty with the reason in err when missing / malformed.
std::string id_field(const json& b, const char* key, std::string& err) {
  if (!b.contains(key) || !b[key].is_string()) {
    err = std::string(key) + " is required (a 20-digit GB code)";
    return {};
  }
  std::string v = b[key].get<std::string>();
  if (v.size() != 20 || v.find_first_not_of("0123456789") != std::string::npos) {
    err = std::string(key) + " must be 20 digits";
    return {};
  }
  return v;
}
}  // namespace

bool GbPlugin::play_admin(const std::string& verb, const json& body, const jn_admin_request& req) {
  static const char* kVerbs[] = {"play", "stop", "streams", "playback", "download", "playback_control"};
  if (std::find(std::begin(kVerbs), std::end(kVerbs), verb) == std::end(kVerbs)) return false;
  if (!body.is_object()) {
    reply(req, 400, {{"error", "body must be a JSON object"}});
    return true;
  }
  std::string err;
  if (verb == "streams") {
    json a = json::array();
    for (auto& [id, s] : play_->sessions())
      if (s.state != play::SessionState::Ended) a.push_back(session_view(s));
    reply(req, 200, {{"sessions", a}, {"media", media_->available()}, {"clients", clients_view()}});
    return true;
  }
  if (verb == "stop") {
    uint64_t id = body.value("id", uint64_t{0});
    if (!id && body.contains("channel") && body["channel"].is_string()) id = play_->live_session(body["channel"].get<std::string>());
    if (!id || !play_->stop(id, "stopped by the operator")) {
      reply(req, 404, {{"error", "no such session (give id, or channel for a live stream)"}});
      return true;
    }
    reply(req, 200, {{"stopped", id}});
    return true;
  }
  if (verb == "playback_control") {
    uint64_t id = body.value("id", uint64_t{0});
    std::string action = body.value("action", std::string());
    play::RtspRequest r;
    if (action == "play") r.method = play::RtspMethod::Play;
    else if (action == "pause") r.method = play::RtspMethod::Pause;
    else if (action == "teardown") r.method = play::RtspMethod::Teardown;
    else {
      reply(req, 400, {{"error", "action must be play, pause or teardown"}});
      return true;
    }
    try {
      if (body.contains("scale")) r.scale = body["scale"].get<double>();
      if (body.contains("range_start")) r.range_start = body["range_start"].get<double>();
      if (body.contains("range_end")) r.range_end = body["range_end"].get<double>();
    } catch (const json::exception&) {
      reply(req, 400, {{"error", "scale / range_start / range_end must be numbers"}});
      return true;
    }
    r.range_given = r.method == play::RtspMethod::Play;
    if (!play_->control(id, r, err)) {
      reply(req, 400, {{"error", err}});
      return true;
    }
    const play::PlaySession* s = play_->find(id);
    reply(req, 200, s ? session_view(*s) : json{{"id", id}, {"state", "ended"}});
    return true;
  }
  // play / playback / download
  std::string device = id_field(body, "device", err);
  std::string channel = err.empty() ? id_field(body, "channel", err) : std::string();
  if (!err.empty()) {
    reply(req, 400, {{"error", err}});
    return true;
  }
  Device* d = reg_.find(device);
  if (!d) {
    reply(req, 404, {{"error", "no device " + device}});
    return true;
  }
  std::optional<play::Transport> t;
  if (body.contains("transport")) {
    if (!body["transport"].is_string() || !(t = play::transport_from(body["transport"].get<std::string>()))) {
      reply(req, 400, {{"error", "transport must be udp, tcp_passive or tcp_active"}});
      return true;
    }
  }
  if (verb == "play") {
    // The operator is one more viewer of the channel's live stream (play on demand shares it).
    if (!play_->view(device, channel, "admin", err, body.contains("transport") ? t : std::nullopt)) {
      reply(req, 502, {{"error", err}});
      return true;
    }
    uint64_t id = play_->live_session(channel);
    const play::PlaySession* s = play_->find(id);
    reply(req, 200, s ? session_view(*s) : json{{"channel", channel}, {"state", "waiting"}});
    return true;
  }
  play::StartRequest r;
  r.kind = verb == "playback" ? play::Kind::Playback : play::Kind::Download;
  r.device = device;
  r.channel = channel;
  r.transport = t;
  r.start = body.value("start", uint64_t{0});
  r.end = body.value("end", uint64_t{0});
  r.download_speed = body.value("speed", uint32_t{0});
  if (r.kind == play::Kind::Download) {
    // The directory is made on demand (once per download, on the admin path, not the media one).
    std::error_code ec;
    std::filesystem::create_directories(conf_.play.download_dir, ec);
    if (ec) {
      host().info("gb28181: download refused: " + conf_.play.download_dir + ": " + ec.message());
      reply(req, 500, {{"error", "download directory " + conf_.play.download_dir + ": " + ec.message()}});
      return true;
    }
    r.record_path = conf_.play.download_dir + "/" + channel + "-" + std::to_string(r.start) + "-" + std::to_string(r.end) + ".ps";
  }
  uint64_t id = play_->start(r, err);
  if (!id) {
    reply(req, 502, {{"error", err}});
    return true;
  }
  reply(req, 200, session_view(*play_->find(id)));
  return true;
}

}  // namespace gb
