// The state a plugin hands to its next instance on a hot reload, by one idiom: one JSON object
// of named fields (written as JSON text or CBOR), whose schema number is the one the plugin
// declares in JUNCTION_PLUGIN and the core passes to restore_state. Reading is tolerant: a
// field the older instance did not write (or wrote with another type) keeps the new
// instance's default, so adding a field needs no schema bump; removing or changing the
// meaning of one does.
#pragma once

#include <junction/abi.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace junction::util {

enum class StateEncoding { Json, Cbor };

class StateOut {
 public:
  nlohmann::json& operator[](const std::string& field) { return j_[field]; }
  template <class T>
  StateOut& set(const std::string& field, T&& value) {
    j_[field] = std::forward<T>(value);
    return *this;
  }
  std::string encode(StateEncoding enc = StateEncoding::Json) const {
    // Text from peers and other plugins (URIs, reasons) need not be UTF-8: replaced (U+FFFD) in
    // JSON, so a reload never fails on it. CBOR carries the bytes as they are.
    if (enc == StateEncoding::Json) return j_.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto bytes = nlohmann::json::to_cbor(j_);
    return std::string(bytes.begin(), bytes.end());
  }

 private:
  nlohmann::json j_ = nlohmann::json::object();
};

class StateIn {
 public:
  // JN_OK, or with `error` set: JN_ERR_ABI when the schema is not one this build reads
  // (min..max), JN_ERR_INVALID when the data is not an object in the given encoding. Empty data
  // is an empty state (nothing to restore).
  jn_status parse(uint32_t schema, uint32_t min_schema, uint32_t max_schema, std::string_view data, std::string& error,
             StateEncoding enc = StateEncoding::Json) {
    schema_ = schema;
    if (schema < min_schema || schema > max_schema) {
      error = "state schema " + std::to_string(schema) + " is not one this build reads (" + std::to_string(min_schema) + ".." +
              std::to_string(max_schema) + ")";
      return JN_ERR_ABI;
    }
    if (data.empty()) {
      j_ = nlohmann::json::object();
      return JN_OK;
    }
    j_ = enc == StateEncoding::Json ? nlohmann::json::parse(data, nullptr, false)
                                    : nlohmann::json::from_cbor(data.begin(), data.end(), true, false);
    if (j_.is_discarded() || !j_.is_object()) {
      error = std::string("state is not the ") + (enc == StateEncoding::Json ? "JSON" : "CBOR") + " object this plugin writes";
      j_ = nlohmann::json::object();
      return JN_ERR_INVALID;
    }
    return JN_OK;
  }

  uint32_t schema() const { return schema_; }
  bool has(const std::string& field) const { return j_.contains(field); }
  const nlohmann::json& json() const { return j_; }
  // The field, or null when it is missing.
  const nlohmann::json& operator[](const std::string& field) const {
    auto it = j_.find(field);
    return it == j_.end() ? null_ : *it;
  }

  // The field into out when present and convertible; else out keeps its value and false.
  template <class T>
  bool read(const std::string& field, T& out) const {
    auto it = j_.find(field);
    if (it == j_.end() || it->is_null()) return false;
    try {
      T v = it->template get<T>();
      out = std::move(v);
      return true;
    } catch (const nlohmann::json::exception&) {
      return false;
    }
  }
  template <class T>
  T get(const std::string& field, T fallback) const {
    read(field, fallback);
    return fallback;
  }

 private:
  uint32_t schema_ = 0;
  nlohmann::json j_ = nlohmann::json::object();
  nlohmann::json null_;
};

}  // namespace junction::util
