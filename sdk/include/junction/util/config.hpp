// Reads a plugin's conf table (host.config()) with type and range checks. The first problem is
// kept as (key, reason) and handed to `report` (normally host.config_error, which the core turns
// into "file:line: key: reason"); later reads are no-ops, so one bad key gives one clear line.
// A key that is absent leaves the default in place.
#pragma once

#include <nlohmann/json.hpp>

#include <climits>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace junction::util {

struct ConfigError {
  std::string key, reason;
};

class ConfigReader {
 public:
  using Report = std::function<void(const std::string& key, const std::string& reason)>;

  // A conf that is not a table (absent: null) reads as an empty one.
  explicit ConfigReader(const nlohmann::json& conf, Report report = {}, std::string prefix = {})
      : conf_(conf.is_object() ? conf : nlohmann::json::object()), report_(std::move(report)), prefix_(std::move(prefix)) {}

  // A sub-table ("[network]"): its keys are reported as "network.key". Absent: an empty table;
  // present but not a table: the problem is recorded here.
  ConfigReader table(const std::string& key) {
    if (conf_.contains(key) && !conf_[key].is_object()) fail(key, "must be a table");
    ConfigReader sub(conf_.contains(key) ? conf_[key] : nlohmann::json::object(), report_, prefix_ + key + ".");
    sub.error_ = error_;  // one problem per conf, wherever it is found
    return sub;
  }

  bool ok() const { return !*error_; }
  const std::optional<ConfigError>& error() const { return *error_; }
  bool has(const std::string& key) const { return conf_.contains(key); }
  const nlohmann::json& conf() const { return conf_; }

  // Records (and reports) a problem the caller found itself; only the first one counts.
  void fail(const std::string& key, const std::string& reason) {
    if (*error_) return;
    *error_ = ConfigError{prefix_ + key, reason};
    if (report_) report_(prefix_ + key, reason);
  }

  // Every key of the table must be one of `known`.
  bool known_keys(std::initializer_list<std::string_view> known) {
    for (auto& [k, v] : conf_.items()) {
      bool found = false;
      std::string list;
      for (std::string_view s : known) {
        found = found || k == s;
        list += (list.empty() ? "" : ", ") + std::string(s);
      }
      if (!found) fail(k, "unknown key (known: " + list + ")");
    }
    return ok();
  }

  bool str(const std::string& key, std::string& out, bool nonempty = false) {
    if (*error_ || !conf_.contains(key)) return ok();
    const auto& j = conf_[key];
    if (!j.is_string() || (nonempty && j.get_ref<const std::string&>().empty()))
      fail(key, nonempty ? "must be a non-empty string" : "must be a string");
    else out = j.get<std::string>();
    return ok();
  }

  bool boolean(const std::string& key, bool& out) {
    if (*error_ || !conf_.contains(key)) return ok();
    if (!conf_[key].is_boolean()) fail(key, "must be true or false");
    else out = conf_[key].get<bool>();
    return ok();
  }

  // An integer in lo..hi; `what` replaces "an integer from lo to hi" in the reason.
  template <class T>
  bool integer(const std::string& key, T& out, int64_t lo, int64_t hi, const char* what = nullptr) {
    if (*error_ || !conf_.contains(key)) return ok();
    const auto& j = conf_[key];
    std::string range = what ? std::string(what) : "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    if (!j.is_number_integer()) {
      fail(key, "must be " + range);
    } else if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      fail(key, "must be " + range + ", not " + std::to_string(j.get<uint64_t>()));  // beyond int64: out of range either way
    } else if (int64_t x = j.get<int64_t>(); x < lo || x > hi) {
      fail(key, "must be " + range + ", not " + std::to_string(x));
    } else {
      out = static_cast<T>(x);
    }
    return ok();
  }

  // A string that must be one of `choices`.
  bool choice(const std::string& key, std::string& out, std::initializer_list<std::string_view> choices) {
    std::string v = out;
    if (!str(key, v) || !conf_.contains(key)) return ok();
    for (std::string_view c : choices)
      if (v == c) {
        out = v;
        return true;
      }
    std::string list;
    for (std::string_view c : choices) list += (list.empty() ? "" : ", ") + std::string(c);
    fail(key, "must be one of " + list + ", not '" + printable(v) + "'");
    return false;
  }

  // A conf value quoted in a reason: printable ASCII kept, \n \r \t \\ escaped, the rest as \xNN,
  // at most 64 bytes (no conf value can forge a log line).
  static std::string printable(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < s.size() && i < 64; ++i) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c == '\n') out += "\\n";
      else if (c == '\r') out += "\\r";
      else if (c == '\t') out += "\\t";
      else if (c == '\\') out += "\\\\";
      else if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
      else out += std::string("\\x") + kHex[c >> 4] + kHex[c & 15];
    }
    if (s.size() > 64) out += "...";
    return out;
  }

 private:
  nlohmann::json conf_;
  Report report_;
  std::string prefix_;
  std::shared_ptr<std::optional<ConfigError>> error_ = std::make_shared<std::optional<ConfigError>>();
};

}  // namespace junction::util
