#include "ctl/ctl.hpp"

#include "config/config.hpp"

#include <fmt/format.h>
#include <netdb.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace junction::ctl {
namespace {

using nlohmann::json;

constexpr const char* kUsage =
    "usage: junction [--config FILE]                 run the server (default conf/junction.toml)\n"
    "       junction --check [--config FILE]         validate the configuration and exit\n"
    "       junction ctl [--config FILE] [--json] COMMAND   talk to a running server's admin API\n"
    "commands (tables; --json prints the API's JSON instead):\n"
    "  health | plugins | plugin NAME | routes | lookup URI | calls | media | bus | devices [PLUGIN]\n"
    "  load NAME | reload NAME | unload NAME | log-level NAME LEVEL | config-reload\n"
    "  cmd PLUGIN VERB [JSON] | event TOPIC [JSON] | metrics\n"
    "exit: 0 done, 1 the server refused (HTTP 4xx/5xx), 2 bad usage or conf, 3 server not reachable\n";

// --- HTTP --------------------------------------------------------------------------------------
struct Reply {
  int status = 0;      // 0: no usable reply (see error)
  std::string body;
  std::string error;   // why there is no reply
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The body of a complete response, with a chunked body decoded; nullopt while incomplete.
std::optional<std::string> complete_body(const std::string& resp, bool eof) {
  size_t hdr_end = resp.find("\r\n\r\n");
  if (hdr_end == std::string::npos) return std::nullopt;
  std::string headers = lower(resp.substr(0, hdr_end));
  std::string body = resp.substr(hdr_end + 4);
  if (headers.find("transfer-encoding: chunked") != std::string::npos) {
    std::string out;
    size_t i = 0;
    for (;;) {
      size_t eol = body.find("\r\n", i);
      if (eol == std::string::npos) return eof ? std::optional<std::string>(out) : std::nullopt;
      size_t n = std::strtoul(body.substr(i, eol - i).c_str(), nullptr, 16);
      if (n == 0) return out;
      if (body.size() < eol + 2 + n + 2) return eof ? std::optional<std::string>(out + body.substr(eol + 2)) : std::nullopt;
      out += body.substr(eol + 2, n);
      i = eol + 2 + n + 2;
    }
  }
  if (auto cl = headers.find("content-length:"); cl != std::string::npos) {
    size_t n = std::strtoul(headers.c_str() + cl + 15, nullptr, 10);
    if (body.size() >= n) return body.substr(0, n);
    return eof ? std::optional<std::string>(body) : std::nullopt;
  }
  return eof ? std::optional<std::string>(body) : std::nullopt;
}

// One blocking request (Connection: close) to the admin API.
Reply http_call(const std::string& addr, const std::string& token, const std::string& method, const std::string& path,
                const std::string& body) {
  Reply r;
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) {
    r.error = "admin.listen '" + addr + "' is not host:port";
    return r;
  }
  std::string host = addr.substr(0, colon), port = addr.substr(colon + 1);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    r.error = "cannot resolve the admin API address " + addr;
    return r;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    r.error = fmt::format("cannot connect to the admin API at {}: {} (is junction running?)", addr, strerror(errno));
    freeaddrinfo(res);
    if (fd >= 0) close(fd);
    return r;
  }
  freeaddrinfo(res);
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string req = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n", method, path, addr, token);
  if (!body.empty() || method != "GET") req += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  req += "\r\n" + body;
  for (size_t sent = 0; sent < req.size();) {
    ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      r.error = fmt::format("sending to the admin API at {} failed: {}", addr, n < 0 ? strerror(errno) : "connection closed");
      close(fd);
      return r;
    }
    sent += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[16384];
  std::optional<std::string> got;
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      r.error = fmt::format("no reply from the admin API at {} within 30 s", addr);
      close(fd);
      return r;
    }
    if (n <= 0) {
      got = complete_body(resp, true);
      break;
    }
    resp.append(buf, static_cast<size_t>(n));
    if ((got = complete_body(resp, false))) break;  // the server may keep the connection open
  }
  close(fd);
  if (resp.compare(0, 5, "HTTP/") != 0 || !got) {
    r.error = fmt::format("no valid HTTP reply from the admin API at {}", addr);
    return r;
  }
  r.status = std::atoi(resp.c_str() + resp.find(' ') + 1);
  r.body = std::move(*got);
  return r;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
  }
  return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "";
}

// Percent-encodes everything but RFC 3986's unreserved characters.
std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += '%', out += hex[c >> 4], out += hex[c & 15];
  }
  return out;
}

// --- text output -------------------------------------------------------------------------------
// Values come from the server and, through plugins, from peers (device ids, call URIs): nothing
// in them may move the cursor, start a line or drive the terminal.
std::string clean(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += "\\x", out += hex[c >> 4], out += hex[c & 15];
    else out += static_cast<char>(c);
  }
  return out;
}

// Display width in code points (good enough for alignment: no wide-glyph table).
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

std::string duration(double ms) {
  if (ms < 0) return "-";
  uint64_t s = static_cast<uint64_t>(ms / 1000);
  if (s < 60) return fmt::format("{:.1f}s", ms / 1000);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

std::string unix_time(int64_t t) {
  if (t <= 0) return "-";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string cell(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>().empty() ? "-" : clean(v.get<std::string>());
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_array()) {
    std::string out;
    for (auto& x : v) out += (out.empty() ? "" : ", ") + cell(x);
    return out.empty() ? "-" : out;
  }
  if (v.is_object()) return clean(v.dump());
  return v.dump();
}
std::string field(const json& o, const char* key) { return o.is_object() && o.contains(key) ? cell(o[key]) : "-"; }
double number(const json& o, const char* key) {
  return o.is_object() && o.contains(key) && o[key].is_number() ? o[key].get<double>() : -1;
}

struct Table {
  std::vector<std::string> head;
  std::vector<std::vector<std::string>> rows;
  std::string render() const {
    // Runs of spaces inside a cell would read as a column break: one space each.
    auto squeeze = [](const std::string& c) {
      std::string o;
      for (char ch : c)
        if (!(ch == ' ' && !o.empty() && o.back() == ' ')) o += ch;
      return o;
    };
    std::vector<std::vector<std::string>> rows;
    for (auto& r : this->rows) {
      rows.emplace_back();
      for (auto& c : r) rows.back().push_back(squeeze(c));
    }
    std::vector<size_t> w(head.size());
    for (size_t i = 0; i < head.size(); ++i) w[i] = width(head[i]);
    for (auto& r : rows)
      for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], width(r[i]));
    auto line = [&](const std::vector<std::string>& r) {
      std::string out;
      for (size_t i = 0; i < w.size(); ++i) {
        const std::string& c = i < r.size() ? r[i] : std::string();
        out += c;
        if (i + 1 < w.size()) out += std::string(w[i] - width(c) + 2, ' ');
      }
      while (!out.empty() && out.back() == ' ') out.pop_back();
      return out + "\n";
    };
    std::string out = line(head);
    for (auto& r : rows) out += line(r);
    return out;
  }
};

// "key  value" lines.
std::string pairs(const std::vector<std::pair<std::string, std::string>>& kv) {
  size_t w = 0;
  for (auto& [k, v] : kv) w = std::max(w, width(k));
  std::string out;
  for (auto& [k, v] : kv) out += k + std::string(w - width(k) + 2, ' ') + v + "\n";
  return out;
}

const json& array_or_empty(const json& j, const char* key) {
  static const json empty = json::array();
  return j.is_object() && j.contains(key) && j[key].is_array() ? j[key] : empty;
}

// --- renderers, one per listing --------------------------------------------------------------------
std::string render_health(const json& j) {
  return pairs({{"status", field(j, "status")}, {"uptime", duration(number(j, "uptime_ms"))}, {"plugins", field(j, "plugins")},
                {"calls", field(j, "calls")}, {"abi", field(j, "abi")}});
}

std::string render_plugins(const json& j) {
  Table t{{"NAME", "VERSION", "ABI", "GEN", "RELOADS", "RESOURCES", "HELD", "LOG", "NAMESPACES", "BUILD"}, {}};
  for (auto& p : j) {
    std::string name = field(p, "name");
    if (p.value("stopping", false)) name += " (stopping)";
    t.rows.push_back({name, field(p, "version"), field(p, "abi"), field(p, "generation"), field(p, "reloads"), field(p, "resources"),
                      field(p, "held_events_total"), field(p, "log_level"), field(p, "namespaces"), field(p, "build_id")});
  }
  if (t.rows.empty()) return "no plugins loaded\n";
  return t.render();
}

std::string render_plugin(const json& p) {
  std::vector<std::pair<std::string, std::string>> kv;
  for (auto& [k, v] : p.items()) kv.emplace_back(clean(k), cell(v));
  return pairs(kv);
}

std::string render_routes(const json& j) {
  std::string out = "static routes\n";
  Table s{{"MATCH", "PATTERN", "TARGETS", "STRATEGY", "TIMEOUT", "ORIGIN"}, {}};
  for (auto& r : array_or_empty(j, "static"))
    s.rows.push_back({field(r, "match"), field(r, "pattern"), field(r, "targets"), field(r, "strategy"),
                      number(r, "timeout_ms") > 0 ? duration(number(r, "timeout_ms")) : "-", field(r, "origin")});
  out += s.rows.empty() ? "  (none)\n" : s.render();
  out += "\ndynamic routes\n";
  Table d{{"URI", "PLUGIN", "ID"}, {}};
  for (auto& r : array_or_empty(j, "dynamic")) d.rows.push_back({field(r, "uri"), field(r, "plugin"), field(r, "id")});
  out += d.rows.empty() ? "  (none)\n" : d.render();
  out += "\nnamespaces\n";
  Table n{{"SCHEME", "PLUGIN"}, {}};
  if (j.is_object() && j.contains("namespaces") && j["namespaces"].is_object())
    for (auto& [k, v] : j["namespaces"].items()) n.rows.push_back({clean(k), cell(v)});
  out += n.rows.empty() ? "  (none)\n" : n.render();
  return out;
}

std::string render_lookup(const json& j) {
  std::string out = pairs({{"strategy", field(j, "strategy")},
                           {"timeout", number(j, "timeout_ms") > 0 ? duration(number(j, "timeout_ms")) : "-"},
                           {"via", field(j, "via")}});
  Table t{{"TARGET", "PLUGIN"}, {}};
  for (auto& x : array_or_empty(j, "targets")) t.rows.push_back({field(x, "uri"), field(x, "plugin")});
  return out + "\n" + t.render();
}

std::string render_calls(const json& j) {
  Table t{{"CALL", "FROM", "TO", "STATE", "STRATEGY", "AGE", "LEGS"}, {}};
  for (auto& c : j) {
    std::string legs;
    for (auto& l : array_or_empty(c, "legs")) {
      if (!legs.empty()) legs += "; ";
      legs += field(l, "role") + ":" + field(l, "plugin") + " " + field(l, "state");
      if (l.contains("target")) legs += " -> " + field(l, "target");
    }
    t.rows.push_back({field(c, "id"), field(c, "from"), field(c, "to"), field(c, "state"), field(c, "strategy"),
                      duration(number(c, "age_ms")), legs.empty() ? "-" : legs});
  }
  if (t.rows.empty()) return "no calls in progress\n";
  return t.render();
}

std::string render_media(const json& j) {
  Table t{{"LOOP", "CPU", "PINNED", "SOCKETS", "RX", "TX", "TX-DROPPED", "TRUNCATED", "BUS-HANDOFFS", "HELD", "REPLAYED", "BUFFERS"}, {}};
  for (auto& l : array_or_empty(j, "loops"))
    t.rows.push_back({field(l, "loop"), field(l, "cpu"), field(l, "pinned"), field(l, "sockets"), field(l, "rx_packets"),
                      field(l, "tx_packets"), field(l, "tx_dropped"), field(l, "rx_truncated"), field(l, "bus_handoffs"),
                      field(l, "held"), field(l, "replayed"), field(l, "buffers_outstanding")});
  if (t.rows.empty()) return "no media loops (server.media_loops = 0: media runs on the control loop)\n";
  return t.render();
}

std::string render_bus(const json& j) {
  Table t{{"STREAM", "SUBSCRIBERS", "PACKETS", "BYTES", "DELIVERIES", "PINNED"}, {}};
  for (auto& s : array_or_empty(j, "streams"))
    t.rows.push_back({field(s, "name"), field(s, "subscribers"), field(s, "packets"), field(s, "bytes"), field(s, "deliveries"),
                      field(s, "pinned")});
  std::string out = t.rows.empty() ? "no bus streams\n" : t.render();
  return out + "\n" + pairs({{"subscriptions", field(j, "subscriptions")}, {"deliveries", field(j, "deliveries")},
                             {"unrouted packets", field(j, "unrouted_packets")}});
}

// Devices: whatever a plugin's list-devices verb returns; device records are the objects in
// arrays under keys naming devices (intercom-json: families[].devices, devices_without_family).
void collect_devices(const json& j, std::vector<const json*>& out, bool in_devices = false) {
  if (j.is_array()) {
    for (auto& x : j) {
      if (in_devices && x.is_object()) out.push_back(&x);
      else collect_devices(x, out, false);
    }
  } else if (j.is_object()) {
    for (auto& [k, v] : j.items()) collect_devices(v, out, k.find("devices") != std::string::npos && v.is_array());
  }
}
std::string render_devices(const std::vector<std::pair<std::string, json>>& by_plugin) {
  Table t{{"PLUGIN", "DEVICE", "TYPE", "ROOM", "ONLINE", "PEER", "LAST SEEN"}, {}};
  for (auto& [plugin, j] : by_plugin) {
    std::vector<const json*> devs;
    if (j.is_array()) {
      for (auto& x : j)
        if (x.is_object()) devs.push_back(&x);
    } else {
      collect_devices(j, devs);
    }
    for (const json* d : devs) {
      std::string id = d->contains("id") ? field(*d, "id") : d->contains("device") ? field(*d, "device") : field(*d, "uid");
      std::string room = d->contains("room") ? field(*d, "room") : field(*d, "family");
      std::string peer = d->contains("peer") ? field(*d, "peer") : field(*d, "addr");
      int64_t last = d->contains("last_join") && (*d)["last_join"].is_number_integer() ? (*d)["last_join"].get<int64_t>() : 0;
      t.rows.push_back({clean(plugin), id, field(*d, "type"), room, field(*d, "online"), peer, unix_time(last)});
    }
  }
  if (t.rows.empty()) return by_plugin.empty() ? "no plugin lists devices (none answers the admin verb list-devices)\n" : "no devices\n";
  return t.render();
}

std::string render_reload(const json& j) {
  return fmt::format("reloaded {}: generation {}, cut-over {} us (load {} us), {} events held, {} state bytes, old copy {}\n",
                     field(j, "plugin"), field(j, "generation"), field(j, "cutover_us"), field(j, "load_us"), field(j, "held_events"),
                     field(j, "state_bytes"), j.value("old_unloaded", false) ? "unloaded" : "STILL MAPPED");
}

// --- the command line -------------------------------------------------------------------------
struct Request {
  std::string method = "GET", path, body;
  std::string (*render)(const json&) = nullptr;  // null: print the body as it is (pretty if JSON)
  bool text = false;                               // a text body (metrics): never parsed
};

struct Usage : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

Request build(const std::vector<std::string>& args) {
  const std::string& cmd = args[0];
  auto need = [&](size_t min, size_t max) {
    if (args.size() < min + 1 || args.size() > max + 1)
      throw Usage(min == max ? fmt::format("'{}' takes {} argument(s)", cmd, min) : fmt::format("'{}' takes {} to {} arguments", cmd, min, max));
  };
  auto body_json = [&](size_t i) -> std::string {
    if (args.size() <= i) return "";
    json b = json::parse(args[i], nullptr, false);
    if (b.is_discarded() || !b.is_object()) throw Usage("'" + args[i] + "' is not a JSON object");
    return b.dump();
  };
  Request r;
  if (cmd == "health") need(0, 0), r.path = "/api/v1/health", r.render = render_health;
  else if (cmd == "plugins") need(0, 0), r.path = "/api/v1/plugins", r.render = render_plugins;
  else if (cmd == "plugin") need(1, 1), r.path = "/api/v1/plugins/" + url_encode(args[1]), r.render = render_plugin;
  else if (cmd == "routes") need(0, 0), r.path = "/api/v1/routes", r.render = render_routes;
  else if (cmd == "lookup") need(1, 1), r.path = "/api/v1/routes/lookup?uri=" + url_encode(args[1]), r.render = render_lookup;
  else if (cmd == "calls") need(0, 0), r.path = "/api/v1/calls", r.render = render_calls;
  else if (cmd == "media") need(0, 0), r.path = "/api/v1/media", r.render = render_media;
  else if (cmd == "bus") need(0, 0), r.path = "/api/v1/bus", r.render = render_bus;
  else if (cmd == "metrics") need(0, 0), r.path = "/metrics", r.text = true;
  else if (cmd == "devices") need(0, 1);  // several requests: see run()
  else if (cmd == "config-reload") {
    need(0, 0);
    r.method = "POST", r.path = "/api/v1/config/reload";
    r.render = [](const json& j) { return "configuration re-read from " + field(j, "reloaded") + "\n"; };
  } else if (cmd == "load") {
    need(1, 1);
    r.method = "POST", r.path = "/api/v1/plugins", r.body = json{{"name", args[1]}}.dump();
    r.render = [](const json& j) {
      return fmt::format("loaded {} {} (ABI {}), generation {}\n", field(j, "name"), field(j, "version"), field(j, "abi"), field(j, "generation"));
    };
  } else if (cmd == "reload") {
    need(1, 1);
    r.method = "POST", r.path = "/api/v1/plugins/" + url_encode(args[1]) + "/reload", r.render = render_reload;
  } else if (cmd == "unload") {
    need(1, 1);
    r.method = "POST", r.path = "/api/v1/plugins/" + url_encode(args[1]) + "/unload";
    r.render = [](const json& j) { return "unloaded " + field(j, "unloaded") + "\n"; };
  } else if (cmd == "log-level") {
    need(2, 2);
    r.method = "PUT", r.path = "/api/v1/plugins/" + url_encode(args[1]) + "/log_level", r.body = json{{"level", args[2]}}.dump();
    r.render = [](const json& j) { return "log level of " + field(j, "plugin") + ": " + field(j, "log_level") + "\n"; };
  } else if (cmd == "cmd") {
    need(2, 3);
    r.method = "POST", r.path = "/api/v1/plugins/" + url_encode(args[1]) + "/cmd/" + url_encode(args[2]), r.body = body_json(3);
  } else if (cmd == "event") {
    need(1, 2);
    r.method = "POST", r.path = "/api/v1/events";
    json data = args.size() > 2 ? json::parse(args[2], nullptr, false) : json::object();
    if (data.is_discarded()) throw Usage("event data '" + args[2] + "' is not JSON");
    r.body = json{{"topic", args[1]}, {"data", data}}.dump();
    r.render = [](const json& j) { return "published " + field(j, "published") + "\n"; };
  } else {
    throw Usage("unknown command '" + clean(cmd) + "'");
  }
  return r;
}

// One line for a refused request: "401 Unauthorized: wrong token".
std::string error_line(const Reply& rep) {
  std::string why;
  json j = json::parse(rep.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) why = j["error"].get<std::string>();
  else {
    why = rep.body.substr(0, rep.body.find('\n'));
    if (why.size() > 200) why = why.substr(0, 200) + "...";
  }
  std::string line = fmt::format("{} {}", rep.status, reason_phrase(rep.status));
  return why.empty() ? line : line + ": " + clean(why);
}

}  // namespace

const char* usage() { return kUsage; }

int run(const std::string& conf_path, std::vector<std::string> args) {
  bool raw = false;
  std::vector<std::string> rest;
  for (auto& a : args) {
    if (a == "--json") raw = true;
    else rest.push_back(a);
  }
  if (rest.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  Request req;
  try {
    req = build(rest);
  } catch (const Usage& e) {
    std::cerr << "junction ctl: " << e.what() << "\n" << kUsage;
    return 2;
  }
  CoreConfig conf;
  try {
    conf = load_config(conf_path);
  } catch (const std::exception& e) {
    std::cerr << "junction ctl: " << e.what() << "\n";
    return 2;
  }
  std::string token = conf.admin_token;
  if (token.empty()) {
    std::ifstream in(conf.state_dir + "/admin.token");
    std::getline(in, token);
  }
  if (const char* t = std::getenv("JUNCTION_TOKEN")) token = t;
  auto call = [&](const std::string& method, const std::string& path, const std::string& body) {
    return http_call(conf.admin_listen, token, method, path, body);
  };
  auto unreachable = [](const Reply& rep) {
    std::cerr << "junction ctl: " << rep.error << "\n";
    return 3;
  };

  if (rest[0] == "devices") {
    // Every plugin that answers list-devices (or the one named); the others are not asked twice.
    if (rest.size() > 2) {
      std::cerr << "junction ctl: 'devices' takes 0 to 1 arguments\n" << kUsage;
      return 2;
    }
    std::vector<std::string> names;
    if (rest.size() == 2) names.push_back(rest[1]);
    else {
      Reply p = call("GET", "/api/v1/plugins", "");
      if (!p.status) return unreachable(p);
      if (p.status < 200 || p.status > 299) {
        std::cerr << "junction ctl: " << error_line(p) << "\n";
        return 1;
      }
      json list = json::parse(p.body, nullptr, false);
      if (list.is_array())
        for (auto& x : list)
          if (x.is_object() && x.contains("name") && x["name"].is_string()) names.push_back(x["name"].get<std::string>());
    }
    std::vector<std::pair<std::string, json>> found;
    for (auto& n : names) {
      Reply d = call("POST", "/api/v1/plugins/" + url_encode(n) + "/cmd/list-devices", "");
      if (!d.status) return unreachable(d);
      bool ok = d.status >= 200 && d.status <= 299;
      if (!ok && rest.size() == 1 && (d.status == 404 || d.status == 400)) continue;  // no such verb there
      if (!ok) {
        std::cerr << "junction ctl: " << error_line(d) << "\n";
        return 1;
      }
      json j = json::parse(d.body, nullptr, false);
      if (j.is_discarded()) {
        std::cerr << "junction ctl: " << clean(n) << ": list-devices did not answer JSON\n";
        return 1;
      }
      found.emplace_back(n, std::move(j));
    }
    if (raw) {
      json all = json::object();
      for (auto& [n, j] : found) all[n] = j;
      std::cout << all.dump() << "\n";
    } else {
      std::cout << render_devices(found);
    }
    return 0;
  }

  Reply rep = call(req.method, req.path, req.body);
  if (!rep.status) return unreachable(rep);
  bool ok = rep.status >= 200 && rep.status <= 299;
  if (!ok) {
    if (raw) std::cout << rep.body << (rep.body.empty() || rep.body.back() == '\n' ? "" : "\n");
    std::cerr << "junction ctl: " << error_line(rep) << "\n";
    return 1;
  }
  if (raw || req.text) {
    std::cout << rep.body << (rep.body.empty() || rep.body.back() == '\n' ? "" : "\n");
    return 0;
  }
  json j = json::parse(rep.body, nullptr, false);
  if (j.is_discarded()) {
    std::cout << rep.body << (rep.body.empty() || rep.body.back() == '\n' ? "" : "\n");
    return 0;
  }
  try {
    std::cout << (req.render ? req.render(j) : j.dump(2) + "\n");
  } catch (const json::exception& e) {
    // A reply of another shape than this client knows (a newer server): show it as it is.
    std::cerr << "junction ctl: unexpected reply shape (" << e.what() << "), printing it as JSON\n";
    std::cout << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace junction::ctl
