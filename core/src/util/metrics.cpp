#include "util/metrics.hpp"

#include "util/log.hpp"

#include <fmt/format.h>

#include <cctype>
#include <set>

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

std::string Metrics::escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

bool Metrics::normalize_labels(std::string_view in, std::string* out, std::string* why) {
  out->clear();
  std::set<std::string_view> seen;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < in.size() && (in[i] == ' ' || in[i] == '\t')) ++i;
  };
  auto bad = [&](std::string msg) {
    *why = fmt::format("{} at offset {}", msg, i);
    return false;
  };
  skip_ws();
  if (i == in.size()) return true;
  for (;;) {
    size_t start = i;
    while (i < in.size() && (std::isalnum(static_cast<unsigned char>(in[i])) || in[i] == '_')) ++i;
    std::string_view name = in.substr(start, i - start);
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return bad("a label name must match [a-zA-Z_][a-zA-Z0-9_]*");
    if (name.size() >= 2 && name[0] == '_' && name[1] == '_') return bad("label names starting with __ are reserved");
    if (!seen.insert(name).second) return bad(fmt::format("label '{}' given twice", name));
    skip_ws();
    if (i >= in.size() || in[i] != '=') return bad("expected '='");
    ++i;
    skip_ws();
    if (i >= in.size() || in[i] != '"') return bad("expected '\"' (label values are quoted)");
    ++i;
    std::string value;
    bool closed = false;
    while (i < in.size()) {
      char c = in[i];
      if (c == '\\' && i + 1 < in.size() && (in[i + 1] == '\\' || in[i + 1] == '"' || in[i + 1] == 'n')) {
        value += in[i + 1] == 'n' ? '\n' : in[i + 1];
        i += 2;
        continue;
      }
      if (c == '"') {
        size_t j = i + 1;
        while (j < in.size() && (in[j] == ' ' || in[j] == '\t')) ++j;
        if (j == in.size() || in[j] == ',') {  // the closing quote
          i = j;
          closed = true;
          break;
        }
      }
      value += c;  // a bare quote inside the value, a lone backslash, anything else
      ++i;
    }
    if (!closed) return bad("unterminated label value");
    if (!out->empty()) *out += ',';
    *out += name;
    *out += "=\"";
    *out += escape_label_value(value);
    *out += '"';
    if (i == in.size()) return true;
    ++i;  // ','
    skip_ws();
    if (i == in.size()) return true;  // a trailing comma is allowed
  }
}

const std::string* Metrics::series_key(std::string_view name, const Family& f, std::string_view labels, std::string& key) {
  std::string why;
  if (!normalize_labels(labels, &key, &why)) {
    ++invalid_labels_;
    *counter("junction_metric_labels_invalid_total", {}, "Metric samples refused for label strings that do not parse") = invalid_labels_;
    if (invalid_labels_ <= 10 || invalid_labels_ % 1000 == 0)
      JN_LOG_WRN("metric {}: labels '{}' refused ({}); {} refused so far", name, labels, why, invalid_labels_);
    return nullptr;
  }
  if (f.counters.count(key) || f.gauges.count(key) || f.computed.count(key)) return &key;
  if (series_cap_ && series_count(f) >= series_cap_) {
    ++series_dropped_;
    *counter("junction_metric_series_dropped_total", {}, "Metric samples sent to an {overflow=\"true\"} series: their name had reached limits.metric_series_per_name") = series_dropped_;
    if (series_dropped_ <= 10 || series_dropped_ % 1000 == 0)
      JN_LOG_WRN("metric {}: {} series reached (limits.metric_series_per_name); new label sets go to {{overflow=\"true\"}} ({} samples so far)",
                 name, series_cap_, series_dropped_);
    key = "overflow=\"true\"";
  }
  return &key;
}

uint64_t* Metrics::counter(std::string_view name, std::string_view labels, std::string_view help) {
  auto it = families_.find(name);
  if (it == families_.end()) it = families_.emplace(std::string(name), Family{"counter", std::string(help), {}, {}, {}}).first;
  auto& c = it->second.counters;
  auto ci = c.find(labels);  // fast path: a known series given in canonical form
  if (ci != c.end()) return &ci->second;
  std::string key;
  if (!series_key(name, it->second, labels, key)) return &invalid_sink_;
  ci = c.find(key);
  if (ci == c.end()) ci = c.emplace(std::move(key), 0).first;
  return &ci->second;  // std::map nodes are stable
}

double* Metrics::gauge(std::string_view name, std::string_view labels, std::string_view help) {
  auto it = families_.find(name);
  if (it == families_.end()) it = families_.emplace(std::string(name), Family{"gauge", std::string(help), {}, {}, {}}).first;
  auto& g = it->second.gauges;
  auto gi = g.find(labels);
  if (gi != g.end()) return &gi->second;
  std::string key;
  if (!series_key(name, it->second, labels, key)) return &invalid_gauge_sink_;
  gi = g.find(key);
  if (gi == g.end()) gi = g.emplace(std::move(key), 0.0).first;
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

uint64_t* Metrics::find_counter(std::string_view name, std::string_view labels) {
  auto it = families_.find(name);
  if (it == families_.end()) return nullptr;
  auto ci = it->second.counters.find(labels);
  return ci == it->second.counters.end() ? nullptr : &ci->second;
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
