#include "util/metrics.hpp"

#include <fmt/format.h>

namespace junction {

bool Metrics::valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

uint64_t* Metrics::counter(std::string_view name, std::string_view labels, std::string_view help) {
  auto it = families_.find(name);
  if (it == families_.end()) it = families_.emplace(std::string(name), Family{"counter", std::string(help), {}, {}, {}}).first;
  auto& c = it->second.counters;
  auto ci = c.find(labels);
  if (ci == c.end()) ci = c.emplace(std::string(labels), 0).first;
  return &ci->second;  // std::map nodes are stable
}

double* Metrics::gauge(std::string_view name, std::string_view labels, std::string_view help) {
  auto it = families_.find(name);
  if (it == families_.end()) it = families_.emplace(std::string(name), Family{"gauge", std::string(help), {}, {}, {}}).first;
  auto& g = it->second.gauges;
  auto gi = g.find(labels);
  if (gi == g.end()) gi = g.emplace(std::string(labels), 0.0).first;
  return &gi->second;
}

void Metrics::computed(std::string name, std::string labels, std::function<double()> fn, std::string help) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    // A value read from elsewhere is a counter when its name says so (Prometheus: "_total").
    bool counter = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    it = families_.emplace(name, Family{counter ? "counter" : "gauge", std::move(help), {}, {}, {}}).first;
  }
  it->second.computed[labels] = std::move(fn);
}

void Metrics::remove_matching(std::string_view fragment) {
  for (auto& [name, f] : families_) {
    std::erase_if(f.counters, [&](auto& kv) { return kv.first.find(fragment) != std::string::npos; });
    std::erase_if(f.gauges, [&](auto& kv) { return kv.first.find(fragment) != std::string::npos; });
    std::erase_if(f.computed, [&](auto& kv) { return kv.first.find(fragment) != std::string::npos; });
  }
}

uint64_t Metrics::counter_value(std::string_view name, std::string_view labels) const {
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  auto ci = it->second.counters.find(labels);
  return ci == it->second.counters.end() ? 0 : ci->second;
}

std::string Metrics::prometheus_text() const {
  std::string out;
  auto series = [](const std::string& name, const std::string& labels) {
    return labels.empty() ? name : fmt::format("{}{{{}}}", name, labels);
  };
  for (const auto& [name, f] : families_) {
    if (f.counters.empty() && f.gauges.empty() && f.computed.empty()) continue;
    if (!f.help.empty()) out += fmt::format("# HELP {} {}\n", name, f.help);
    out += fmt::format("# TYPE {} {}\n", name, f.type);
    for (const auto& [l, v] : f.counters) out += fmt::format("{} {}\n", series(name, l), v);
    for (const auto& [l, v] : f.gauges) out += fmt::format("{} {}\n", series(name, l), v);
    for (const auto& [l, fn] : f.computed) out += fmt::format("{} {}\n", series(name, l), fn());
  }
  return out;
}

}  // namespace junction
