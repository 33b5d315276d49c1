// Metrics registry exported as Prometheus text on GET /metrics. Counters and gauges are keyed by
// (name, labels); the core's own metrics and every plugin's live here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace junction {

class Metrics {
 public:
  // Returns a stable pointer: hot paths keep it and increment without a lookup.
  uint64_t* counter(std::string_view name, std::string_view labels = {}, std::string_view help = {});
  double* gauge(std::string_view name, std::string_view labels = {}, std::string_view help = {});
  void add(std::string_view name, std::string_view labels, uint64_t delta) { *counter(name, labels) += delta; }
  void set(std::string_view name, std::string_view labels, double v) { *gauge(name, labels) = v; }
  // A value computed when /metrics is read (pool sizes, active calls): a gauge, or a counter
  // when the name ends in _total (a count kept elsewhere, e.g. the pool's payload copies).
  void computed(std::string name, std::string labels, std::function<double()> fn, std::string help = {});
  // Drops every series whose labels contain `label_fragment` (a plugin's series on unload).
  void remove_matching(std::string_view label_fragment);
  std::string prometheus_text() const;
  uint64_t counter_value(std::string_view name, std::string_view labels = {}) const;

  static bool valid_name(std::string_view name);

 private:
  struct Family {
    std::string type;  // "counter" | "gauge"
    std::string help;
    std::map<std::string, uint64_t, std::less<>> counters;  // labels -> value
    std::map<std::string, double, std::less<>> gauges;
    std::map<std::string, std::function<double()>, std::less<>> computed;
  };
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace junction
