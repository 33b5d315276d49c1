#include "protocol.hpp"

#include <junction/util/addr.hpp>
#include <junction/util/encoding.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

namespace intercom {

using nlohmann::json;

const char* peer_type_name(int t) {
  switch (t) {
    case kInnerBox: return "inner-box";
    case kInnerScreen: return "inner-screen";
    case kOuterBox: return "outer-box";
    case kPropertyApp: return "property-app";
    case kPropertyCenter: return "property-center";
    default: return "unknown";
  }
}

bool blank(std::string_view frame) {
  for (char c : frame)
    if (!std::isspace(static_cast<unsigned char>(c))) return false;
  return true;
}

bool parse_message(std::string_view frame, Message& out, Error& err) {
  err = Error{};
  json j = json::parse(frame.begin(), frame.end(), nullptr, false);
  if (j.is_discarded()) {
    err.code = 400;
    err.reason = "bad-json";
    err.message = "the message is not valid JSON";
    return false;
  }
  if (!j.is_object()) {
    err.code = 400;
    err.reason = "bad-message";
    err.message = "a message is a JSON object {\"id\",\"name\",\"values\"}";
    return false;
  }
  out = Message{};
  if (auto it = j.find("id"); it != j.end()) {
    if (it->is_string()) out.id = it->get<std::string>();
    else if (it->is_number_integer()) out.id = it->dump();
    else if (!it->is_null()) {
      err.code = 400;
      err.reason = "bad-message";
      err.message = "'id' must be a string";
      return false;
    }
  }
  err.id = out.id;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
    err.code = 400;
    err.reason = "bad-message";
    err.message = "'name' (string) is missing";
    return false;
  }
  out.name = name->get<std::string>();
  auto values = j.find("values");
  if (values == j.end() || !(values->is_object() || values->is_array())) {
    err.code = 400;
    err.reason = "bad-message";
    err.message = "'values' (object or array) is missing";
    return false;
  }
  out.values = std::move(*values);
  return true;
}

std::string encode(std::string_view id, std::string_view name, const json& values) {
  json j = json::object();
  j["id"] = std::string(id);
  j["name"] = std::string(name);
  j["values"] = values;
  // Invalid UTF-8 from a peer is replaced, never a throw (and never a NUL: dump escapes it).
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_error(const Error& e) {
  return encode(e.id, "error", json{{"code", e.code}, {"reason", e.reason}, {"message", e.message}});
}

bool read_text(const json& obj, std::string_view key, std::string& out) {
  out.clear();
  if (!obj.is_object()) return true;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (it->is_string()) {
    out = it->get<std::string>();
    return true;
  }
  if (it->is_number_integer()) {
    out = it->dump();
    return true;
  }
  return false;
}

namespace {

bool read_int(const json& obj, std::string_view key, int& out, std::string& why) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (it->is_number_integer()) {
    long long v = it->get<long long>();
    if (v < 0 || v > 65535) {
      why = std::string(key) + " is out of range";
      return false;
    }
    out = static_cast<int>(v);
    return true;
  }
  if (it->is_string()) {  // "port": "5060" is common in the field
    const std::string& s = it->get_ref<const std::string&>();
    if (s.empty()) return true;
    int v = 0;
    for (char c : s) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || v > 65535) {
        why = std::string(key) + " must be an integer";
        return false;
      }
      v = v * 10 + (c - '0');
    }
    if (v > 65535) {
      why = std::string(key) + " is out of range";
      return false;
    }
    out = v;
    return true;
  }
  why = std::string(key) + " must be an integer";
  return false;
}

// The first spelling present wins; the document uses all three.
bool read_stream(const json& obj, const char* const* names, std::string& out, std::string& why) {
  for (const char* const* n = names; *n; ++n) {
    if (!obj.contains(*n)) continue;
    if (!read_text(obj, *n, out)) {
      why = std::string(*n) + " must be a string";
      return false;
    }
    if (!out.empty()) return true;
  }
  return true;
}

constexpr const char* kAudioNames[] = {"audiostreamid", "audio_stream_id", "audio_tream_id", "audioStreamId", nullptr};
constexpr const char* kVideoNames[] = {"videostreamid", "video_stream_id", "video_tream_id", "videoStreamId", nullptr};

}  // namespace

bool read_endpoint(const json& v, Endpoint& out, std::string& why) {
  out = Endpoint{};
  if (v.is_null()) return true;
  if (!v.is_object()) {
    why = "src/dest must be an object";
    return false;
  }
  if (!read_text(v, "id", out.id)) {
    why = "id must be a string";
    return false;
  }
  if (!read_int(v, "type", out.type, why)) return false;
  if (out.type != 0 && !valid_peer_type(out.type)) {
    why = "type must be a CallPeerType (1..5)";
    return false;
  }
  if (!read_text(v, "ip", out.ip)) {
    why = "ip must be a string";
    return false;
  }
  if (!read_int(v, "port", out.port, why)) return false;
  if (!read_stream(v, kAudioNames, out.audio, why)) return false;
  if (!read_stream(v, kVideoNames, out.video, why)) return false;
  return true;
}

json write_endpoint(const Endpoint& e) {
  json j = json::object();
  if (!e.id.empty()) j["id"] = e.id;
  if (e.type) j["type"] = e.type;
  if (!e.ip.empty()) j["ip"] = e.ip;
  if (e.port) j["port"] = e.port;
  if (!e.audio.empty()) j["audiostreamid"] = e.audio;
  if (!e.video.empty()) j["videostreamid"] = e.video;
  return j;
}

// --- stream addresses ------------------------------------------------------------------------
Server server_for(int caller_type, int callee_type) {
  const bool a = home_side(caller_type), b = home_side(callee_type);
  if (a && b) return Server::Center;
  if (a || b) return Server::Box;
  return Server::Caller;
}

const char* server_name(Server s) {
  switch (s) {
    case Server::Box: return "box";
    case Server::Center: return "center";
    case Server::Caller: return "caller";
  }
  return "?";
}

bool is_url(std::string_view v) { return v.find("://") != std::string_view::npos; }

namespace {
// "host:port" part of a URL (after the scheme, before the path).
std::string_view authority(std::string_view url) {
  size_t s = url.find("://");
  if (s == std::string_view::npos) return {};
  std::string_view rest = url.substr(s + 3);
  size_t end = rest.find_first_of("/?#");
  rest = rest.substr(0, end);
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  return rest;
}
}  // namespace

std::string url_host(std::string_view url) {
  std::string_view a = authority(url);
  if (a.empty()) return {};
  if (a.front() == '[') {
    size_t close = a.find(']');
    return std::string(close == std::string_view::npos ? a.substr(1) : a.substr(1, close - 1));
  }
  return std::string(a.substr(0, a.find(':')));
}

int url_port(std::string_view url) {
  std::string_view a = authority(url);
  size_t colon = a.rfind(':');
  if (colon != std::string_view::npos && a.find(']', colon) == std::string_view::npos) {
    int v = 0;
    std::string_view p = a.substr(colon + 1);
    if (p.empty() || p.size() > 5) return 0;
    for (char c : p) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return 0;
      v = v * 10 + (c - '0');
    }
    return v <= 65535 ? v : 0;
  }
  std::string_view scheme = url.substr(0, url.find("://"));
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  if (scheme == "rtmp") return 1935;
  if (scheme == "rtsp") return 554;
  return 0;
}

std::string bare_id(std::string_view v) {
  if (!is_url(v)) return std::string(v);
  std::string_view rest = v.substr(v.find("://") + 3);
  rest = rest.substr(0, rest.find_first_of("?#"));
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return {};
  rest = rest.substr(slash);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  size_t last = rest.rfind('/');
  return std::string(rest.substr(last + 1));
}

bool ours(std::string_view v, const Network& n) {
  if (!is_url(v)) return false;
  if (!n.center_stream.empty() && v.substr(0, n.center_stream.size()) == n.center_stream) return true;
  std::string host = url_host(v);
  return !host.empty() && (host == n.home_addr || host == n.community_addr);
}

namespace {
// The stream id inside one of our URLs: what follows the center prefix or the box's stream path
// (ids may contain '/'), else the last path segment.
std::string our_id(std::string_view v, const Network& n) {
  if (!n.center_stream.empty() && v.substr(0, n.center_stream.size()) == n.center_stream)
    return std::string(v.substr(n.center_stream.size()));
  std::string_view rest = v.substr(v.find("://") + 3);
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return {};
  std::string_view path = rest.substr(slash);
  if (path.substr(0, n.stream_path.size()) == n.stream_path) return std::string(path.substr(n.stream_path.size()));
  return bare_id(v);
}

std::string box_url(const Network& n, std::string_view id) {
  return "http://" + n.community_addr + ":" + std::to_string(n.stream_port) + n.stream_path + std::string(id);
}
}  // namespace

std::string neutral_url(std::string_view v, Server s, const Network& n) {
  if (v.empty()) return {};
  switch (s) {
    case Server::Box:
      if (!is_url(v)) return box_url(n, v);
      if (ours(v, n)) {
        std::string id = our_id(v, n);
        return id.empty() ? std::string(v) : box_url(n, id);
      }
      return std::string(v);
    case Server::Center:
      if (!is_url(v)) return n.center_stream + std::string(v);
      if (ours(v, n)) {
        std::string id = our_id(v, n);
        return id.empty() ? std::string(v) : n.center_stream + id;
      }
      return std::string(v);
    case Server::Caller: return std::string(v);
  }
  return std::string(v);
}

std::string view_for(std::string_view v, Server s, int peer_type, const Network& n) {
  if (v.empty()) return {};
  if (on_home_network(peer_type)) {
    if (s == Server::Caller || !is_url(v)) return std::string(v);
    if (ours(v, n)) {
      std::string id = our_id(v, n);
      return id.empty() ? std::string(v) : id;
    }
    return std::string(v);
  }
  return neutral_url(v, s, n);
}

Endpoint view_endpoint(const Endpoint& e, Server s, int peer_type, const Network& n) {
  Endpoint out = e;
  out.audio = view_for(e.audio, s, peer_type, n);
  out.video = view_for(e.video, s, peer_type, n);
  return out;
}

Endpoint neutral_endpoint(const Endpoint& e, Server s, const Network& n) {
  Endpoint out = e;
  out.audio = neutral_url(e.audio, s, n);
  out.video = neutral_url(e.video, s, n);
  return out;
}

// --- params ------------------------------------------------------------------------------------
std::string param_escape(std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (c == ';' || c == '=' || c == '%' || u < 0x20) {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

std::string param_get(std::string_view params, std::string_view key) {
  while (!params.empty()) {
    size_t semi = params.find(';');
    std::string_view part = params.substr(0, semi);
    params = semi == std::string_view::npos ? std::string_view{} : params.substr(semi + 1);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos || part.substr(0, eq) != key) continue;
    std::string_view v = part.substr(eq + 1);
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == '%' && i + 2 < v.size()) {
        int h = junction::util::hex_digit(v[i + 1]), l = junction::util::hex_digit(v[i + 2]);
        if (h >= 0 && l >= 0) {
          out += static_cast<char>(h * 16 + l);
          i += 2;
          continue;
        }
      }
      out += v[i];
    }
    return out;
  }
  return {};
}

bool parse_ip(std::string_view text, int& family, uint8_t out[16]) {
  std::memset(out, 0, 16);
  // The shared parser also takes "[::1]" and zones; a prefix or peer address has neither.
  if (text.empty() || text.size() > 45 || text.front() == '[' || text.find('%') != std::string_view::npos) return false;
  jn_addr a{};
  if (!junction::util::parse_ip(text, a)) return false;
  family = a.family;
  std::memcpy(out, a.ip, 16);
  if (family == 4) return true;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(out, kMapped, 12) == 0) {  // ::ffff:a.b.c.d is the IPv4 address a.b.c.d
    std::memmove(out, out + 12, 4);
    std::memset(out + 4, 0, 12);
    family = 4;
  }
  return true;
}

bool parse_cidr(std::string_view text, Cidr& out) {
  out = Cidr{};
  size_t slash = text.find('/');
  if (!parse_ip(text.substr(0, slash), out.family, out.addr)) return false;
  const int max = out.family == 4 ? 32 : 128;
  out.bits = max;
  if (slash != std::string_view::npos) {
    std::string_view b = text.substr(slash + 1);
    int bits = -1;
    auto [end, ec] = std::from_chars(b.data(), b.data() + b.size(), bits);
    if (b.empty() || b.size() > 3 || ec != std::errc{} || end != b.data() + b.size() || bits < 0 || bits > max) return false;
    out.bits = bits;
  }
  // Host bits set ("127.0.0.1/8") are cleared: the prefix is what counts.
  for (int i = 0; i < 16; ++i) {
    int keep = std::clamp(out.bits - 8 * i, 0, 8);
    out.addr[i] &= static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  return true;
}

bool cidr_match(const Cidr& c, int family, const uint8_t ip[16]) {
  if (c.family != family) return false;
  for (int i = 0; i < 16; ++i) {
    int keep = std::clamp(c.bits - 8 * i, 0, 8);
    uint8_t mask = static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
    if ((ip[i] & mask) != c.addr[i]) return false;
  }
  return true;
}

std::string_view name_label(std::string_view name) {
  static constexpr std::string_view kNames[] = {"call_req", "call_accept", "call_reject", "call_end", "call_keep", "open_door",
                                                "join_family", "join_accept", "join_reject", "seczone_emergency", "error",
                                                "call_in", "call_out"};
  for (std::string_view n : kNames)
    if (n == name) return n;
  return "unknown";
}

}  // namespace intercom
