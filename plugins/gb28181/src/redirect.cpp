#include "redirect.hpp"

namespace gb {

Redirector::Redirector(const RedirectConf& c) : conf_(c) {}

const RedirectServer* Redirector::pick(std::string_view device_id, uint64_t now_ms) {
  if (!conf_.enabled || conf_.servers.empty()) return nullptr;
  std::string id(device_id);
  auto it = assigned_.find(id);
  if (it != assigned_.end() && it->second.until > now_ms && it->second.server < conf_.servers.size()) {
    it->second.until = now_ms + uint64_t(conf_.expires_s) * 1000;
    return &conf_.servers[it->second.server];
  }
  size_t best = SIZE_MAX;
  if (conf_.policy == "prefix") {
    size_t best_len = 0;
    for (size_t i = 0; i < conf_.servers.size(); ++i)
      for (auto& p : conf_.servers[i].prefixes)
        if (p.size() > best_len && device_id.substr(0, p.size()) == p) {
          best = i;
          best_len = p.size();
        }
    if (best == SIZE_MAX) {
      if (it != assigned_.end()) assigned_.erase(it);
      return nullptr;
    }
  } else {
    std::vector<size_t> l = loads(now_ms);
    if (it != assigned_.end() && it->second.server < l.size() && l[it->second.server]) --l[it->second.server];
    for (size_t i = 0; i < l.size(); ++i)
      if (best == SIZE_MAX || l[i] < l[best]) best = i;
  }
  // Expired assignments are dropped as they are met; bounded by the devices that register.
  if (assigned_.size() > 4096 && assigned_.size() % 1024 == 0)
    std::erase_if(assigned_, [&](const auto& kv) { return kv.second.until <= now_ms; });
  assigned_[id] = {best, now_ms + uint64_t(conf_.expires_s) * 1000};
  return &conf_.servers[best];
}

std::vector<size_t> Redirector::loads(uint64_t now_ms) const {
  std::vector<size_t> l(conf_.servers.size(), 0);
  for (auto& [id, a] : assigned_)
    if (a.until > now_ms && a.server < l.size()) ++l[a.server];
  return l;
}

nlohmann::json Redirector::to_json() const {
  nlohmann::json o = nlohmann::json::object();
  for (auto& [id, a] : assigned_)
    if (a.server < conf_.servers.size()) o[id] = {{"server", conf_.servers[a.server].id}, {"until", a.until}};
  return o;
}

void Redirector::from_json(const nlohmann::json& j) {
  if (!j.is_object()) return;
  for (auto& [id, v] : j.items()) {
    if (!v.is_object()) continue;
    std::string sid = v.value("server", std::string());
    for (size_t i = 0; i < conf_.servers.size(); ++i)
      if (conf_.servers[i].id == sid) assigned_[id] = {i, v.value("until", uint64_t(0))};
  }
}

}  // namespace gb
