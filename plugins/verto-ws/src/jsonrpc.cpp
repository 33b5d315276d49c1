#include "jsonrpc.hpp"

namespace verto {

namespace {

// Nesting depth of a JSON text, counted on the raw bytes (strings skipped), so a deeply nested
// frame is refused without recursing into it.
bool depth_ok(std::string_view t, size_t max) {
  size_t depth = 0;
  bool in_str = false, esc = false;
  for (char c : t) {
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '{' || c == '[') {
      if (++depth > max) return false;
    } else if ((c == '}' || c == ']') && depth) --depth;
  }
  return true;
}

Message classify(const json& j) {
  Message m;
  if (!j.is_object()) {
    m.why = "a message must be a JSON object";
    return m;
  }
  if (auto it = j.find("jsonrpc"); it != j.end() && !(it->is_string() && it->get_ref<const std::string&>() == "2.0")) {
    m.why = "jsonrpc must be \"2.0\"";
    if (auto id = j.find("id"); id != j.end()) m.id = *id;
    return m;
  }
  if (auto id = j.find("id"); id != j.end()) m.id = *id;
  auto method = j.find("method");
  if (method == j.end()) {
    bool has_result = j.contains("result"), has_error = j.contains("error");
    if (has_result || has_error) {
      m.kind = Message::Response;
      if (has_result) m.result = j["result"];
      if (has_error) m.error = j["error"];
      return m;
    }
    m.why = "no method, result or error";
    return m;
  }
  if (!method->is_string() || method->get_ref<const std::string&>().empty()) {
    m.why = "method must be a non-empty string";
    return m;
  }
  m.method = method->get<std::string>();
  auto params = j.find("params");
  if (params == j.end() || params->is_null()) {
    m.params = json::object();
  } else if (!params->is_object()) {
    m.why = "params must be an object";
    return m;
  } else {
    m.params = *params;
  }
  m.kind = Message::Request;
  return m;
}

}  // namespace

Frame parse_frame(std::string_view text, const Limits& lim) {
  Frame f;
  if (!depth_ok(text, lim.max_depth)) {
    Message m;
    m.why = "JSON nested deeper than " + std::to_string(lim.max_depth);
    f.messages.push_back(std::move(m));
    return f;
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    Message m;
    m.why = "not JSON";
    f.messages.push_back(std::move(m));
    return f;
  }
  if (j.is_array()) {
    f.batch = true;
    if (j.empty() || j.size() > lim.max_batch) {
      Message m;
      m.why = j.empty() ? "empty batch" : "batch of " + std::to_string(j.size()) + " messages (limit " + std::to_string(lim.max_batch) + ")";
      f.batch = false;
      f.messages.push_back(std::move(m));
      return f;
    }
    for (const auto& e : j) f.messages.push_back(classify(e));
    return f;
  }
  f.messages.push_back(classify(j));
  return f;
}

json make_result(const json& id, json result, const std::string& sessid) {
  if (!result.is_object()) result = json{{"message", std::move(result)}};
  if (!sessid.empty()) result["sessid"] = sessid;
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json make_error(const json& id, int code, const std::string& message) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

json make_request(int64_t id, const std::string& method, json params) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}};
}

std::string printable(std::string_view s, size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < max; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') out += static_cast<char>(c);
    else out += std::string("\\x") + kHex[c >> 4] + kHex[c & 15];
  }
  if (out.size() >= max && s.size() > max) out += "...";
  return out;
}

}  // namespace verto
