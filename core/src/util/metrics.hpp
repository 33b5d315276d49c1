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
  // Label strings are `k="v",k2="v2"` (what plugins pass through counter_add/gauge_set). They are
  // parsed and stored in canonical form: names [a-zA-Z_][a-zA-Z0-9_]* (not "__"-prefixed, no
  // repeats), values re-escaped per the Prometheus text format (\\, \", \n). Inside a value a
  // backslash escape (\\, \", \n) is decoded first, and a bare '"' ends the value only when
  // followed by ',' or the end. A string that does not parse is refused: the sample goes nowhere
  // visible and junction_metric_labels_invalid_total counts it.
  //
  // A metric name holds at most series_cap() series (0 = no cap); beyond it, samples of new
  // label sets go to the one series {overflow="true"} of that name and
  // junction_metric_series_dropped_total counts them.
  static constexpr size_t kDefaultSeriesCap = 1000;
  void set_series_cap(size_t cap) { series_cap_ = cap; }
  size_t series_cap() const { return series_cap_; }

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
  // The series (name, labels) exactly as given (canonical labels), or nullptr: no side effect.
  uint64_t* find_counter(std::string_view name, std::string_view labels);

  static bool valid_name(std::string_view name);
  // Canonical form of a label string (see above); false with *why when it does not parse.
  static bool normalize_labels(std::string_view labels, std::string* out, std::string* why);
  static std::string escape_label_value(std::string_view v);

 private:
  struct Family {
    std::string type;  // "counter" | "gauge"
    std::string help;
    std::map<std::string, uint64_t, std::less<>> counters;  // labels -> value
    std::map<std::string, double, std::less<>> gauges;
    std::map<std::string, std::function<double()>, std::less<>> computed;
  };
  // The key a new sample of (family, labels) is stored under: canonical labels, the overflow
  // series, or nullopt for labels that do not parse (counted and logged here).
  const std::string* series_key(std::string_view name, const Family& f, std::string_view labels, std::string& scratch);
  static size_t series_count(const Family& f) { return f.counters.size() + f.gauges.size() + f.computed.size(); }

  std::map<std::string, Family, std::less<>> families_;
  size_t series_cap_ = kDefaultSeriesCap;
  uint64_t invalid_sink_ = 0;  // where samples with unparseable labels go (never exported)
  double invalid_gauge_sink_ = 0;
  uint64_t invalid_labels_ = 0;
  uint64_t series_dropped_ = 0;
};

}  // namespace junction
