#include "play/viewers.hpp"

namespace gb::play {

const char* state_name(StreamState s) {
  switch (s) {
    case StreamState::Starting: return "starting";
    case StreamState::Live: return "live";
    case StreamState::Grace: return "grace";
    case StreamState::Waiting: return "waiting";
  }
  return "starting";
}

static std::vector<std::string> list(const std::set<std::string>& v) { return {v.begin(), v.end()}; }

uint32_t Viewers::backoff_ms(uint32_t attempts) const {
  uint64_t d = conf_.backoff_initial_ms;
  for (uint32_t i = 1; i < attempts && d < conf_.backoff_max_ms; ++i) d *= 2;
  return static_cast<uint32_t>(d < conf_.backoff_max_ms ? d : conf_.backoff_max_ms);
}

std::vector<Action> Viewers::join(const std::string& channel, const std::string& viewer, uint64_t) {
  auto it = streams_.find(channel);
  if (it == streams_.end()) {
    ChannelStream s;
    s.viewers.insert(viewer);
    streams_.emplace(channel, std::move(s));
    return {Action{ActionType::Start, channel, {}, "first viewer"}};
  }
  ChannelStream& s = it->second;
  if (!s.viewers.insert(viewer).second) return {};  // the same viewer again: nothing changes
  switch (s.state) {
    case StreamState::Grace:
      s.state = StreamState::Live;
      s.deadline = 0;
      return {Action{ActionType::RequestKeyframe, channel, {viewer}, "viewer joined in grace"}};
    case StreamState::Live:
      return {Action{ActionType::RequestKeyframe, channel, {viewer}, "viewer joined"}};
    case StreamState::Starting:  // the first keyframe is on its way to everyone
    case StreamState::Waiting:   // the restart timer brings the stream
      return {};
  }
  return {};
}

std::vector<Action> Viewers::leave(const std::string& channel, const std::string& viewer, uint64_t now) {
  auto it = streams_.find(channel);
  if (it == streams_.end()) return {};
  ChannelStream& s = it->second;
  if (!s.viewers.erase(viewer) || !s.viewers.empty()) return {};
  switch (s.state) {
    case StreamState::Live:
      s.state = StreamState::Grace;
      s.deadline = now + conf_.grace_ms;
      return {};
    case StreamState::Waiting:  // nothing running: drop the pending restart
      streams_.erase(it);
      return {};
    case StreamState::Starting:  // started() moves it to grace
    case StreamState::Grace:
      return {};
  }
  return {};
}

std::vector<Action> Viewers::started(const std::string& channel, uint64_t now) {
  auto it = streams_.find(channel);
  if (it == streams_.end() || it->second.state != StreamState::Starting) return {};
  ChannelStream& s = it->second;
  if (s.viewers.empty()) {
    s.state = StreamState::Grace;
    s.deadline = now + conf_.grace_ms;
  } else {
    s.state = StreamState::Live;
    s.deadline = 0;
  }
  return {};
}

void Viewers::first_keyframe(const std::string& channel) {
  auto it = streams_.find(channel);
  if (it != streams_.end()) it->second.attempts = 0;
}

std::vector<Action> Viewers::failed(const std::string& channel, ChannelStream& s, const std::string& reason,
                                    uint64_t now) {
  std::vector<Action> out;
  if (s.viewers.empty()) {
    streams_.erase(channel);
    return out;
  }
  ++s.attempts;
  if (!conf_.restart_on_timeout || (conf_.restart_attempts && s.attempts >= conf_.restart_attempts)) {
    out.push_back(Action{ActionType::EndViewers, channel, list(s.viewers), reason});
    streams_.erase(channel);
    return out;
  }
  s.state = StreamState::Waiting;
  s.deadline = now + backoff_ms(s.attempts);
  return out;
}

std::vector<Action> Viewers::start_failed(const std::string& channel, const std::string& reason, uint64_t now) {
  auto it = streams_.find(channel);
  if (it == streams_.end() || it->second.state != StreamState::Starting) return {};
  return failed(channel, it->second, reason, now);
}

std::vector<Action> Viewers::rtp_timeout(const std::string& channel, uint64_t now) {
  auto it = streams_.find(channel);
  if (it == streams_.end()) return {};
  ChannelStream& s = it->second;
  if (s.state == StreamState::Waiting) return {};
  std::vector<Action> out{Action{ActionType::Stop, channel, {}, "RTP timeout"}};
  auto more = failed(channel, s, "RTP timeout", now);
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

std::vector<Action> Viewers::device_bye(const std::string& channel) {
  auto it = streams_.find(channel);
  if (it == streams_.end()) return {};
  std::vector<Action> out;
  if (!it->second.viewers.empty())
    out.push_back(Action{ActionType::EndViewers, channel, list(it->second.viewers), "device ended the stream"});
  streams_.erase(it);
  return out;
}

std::vector<Action> Viewers::tick(uint64_t now) {
  std::vector<Action> out;
  for (auto it = streams_.begin(); it != streams_.end();) {
    ChannelStream& s = it->second;
    if (s.state == StreamState::Grace && s.deadline <= now) {
      out.push_back(Action{ActionType::Stop, it->first, {}, "no viewers"});
      it = streams_.erase(it);
      continue;
    }
    if (s.state == StreamState::Waiting && s.deadline <= now) {
      s.state = StreamState::Starting;
      s.deadline = 0;
      ++s.restarts;
      out.push_back(Action{ActionType::Start, it->first, {}, "restart"});
    }
    ++it;
  }
  return out;
}

uint64_t Viewers::next_deadline() const {
  uint64_t d = UINT64_MAX;
  for (auto& [_, s] : streams_)
    if ((s.state == StreamState::Grace || s.state == StreamState::Waiting) && s.deadline < d) d = s.deadline;
  return d;
}

const ChannelStream* Viewers::find(const std::string& channel) const {
  auto it = streams_.find(channel);
  return it == streams_.end() ? nullptr : &it->second;
}

nlohmann::json Viewers::to_json() const {
  nlohmann::json a = nlohmann::json::array();
  for (auto& [ch, s] : streams_)
    a.push_back({{"channel", ch},
                 {"state", state_name(s.state)},
                 {"viewers", list(s.viewers)},
                 {"deadline", s.deadline},
                 {"attempts", s.attempts},
                 {"restarts", s.restarts}});
  return a;
}

bool Viewers::from_json(const nlohmann::json& j, std::string& error) {
  std::map<std::string, ChannelStream> t;
  if (!j.is_array()) {
    error = "viewers: not an array";
    return false;
  }
  try {
    for (auto& e : j) {
      ChannelStream s;
      std::string st = e.at("state").get<std::string>();
      if (st == "starting") s.state = StreamState::Starting;
      else if (st == "live") s.state = StreamState::Live;
      else if (st == "grace") s.state = StreamState::Grace;
      else if (st == "waiting") s.state = StreamState::Waiting;
      else {
        error = "viewers: unknown state " + st;
        return false;
      }
      for (auto& v : e.at("viewers")) s.viewers.insert(v.get<std::string>());
      s.deadline = e.at("deadline").get<uint64_t>();
      s.attempts = e.at("attempts").get<uint32_t>();
      s.restarts = e.value("restarts", uint64_t{0});
      t[e.at("channel").get<std::string>()] = std::move(s);
    }
  } catch (const nlohmann::json::exception& x) {
    error = std::string("viewers: ") + x.what();
    return false;
  }
  streams_ = std::move(t);
  return true;
}

}  // namespace gb::play
