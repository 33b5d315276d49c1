#include "config/config.hpp"

#include "util/log.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

namespace junction {
namespace {

std::string where(const std::string& file, const toml::node& n) {
  return fmt::format("{}:{}", file, n.source().begin.line);
}

[[noreturn]] void fail(const std::string& file, const toml::node& n, std::string_view reason) {
  throw ConfigError(fmt::format("{}: {}", where(file, n), reason));
}

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    default: return "date/time";
  }
}

toml::table parse_text(std::string_view text, const std::string& path) {
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw ConfigError(fmt::format("{}:{}:{}: {}", path, e.source().begin.line, e.source().begin.column, e.description()));
  }
}

toml::table parse_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("{}: cannot read the file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_text(ss.str(), path);
}

// Typed readers that name the file, the line and the key on a mismatch.
struct Reader {
  const std::string& file;
  const toml::table& table;
  std::string section;
  std::set<std::string> allowed;

  const toml::node* node(const std::string& key) {
    allowed.insert(key);
    return table.get(key);
  }
  std::string key_name(const std::string& key) const { return section.empty() ? key : section + "." + key; }
  void expect(const toml::node& n, toml::node_type t, const std::string& key, const char* want) {
    if (n.type() != t) fail(file, n, fmt::format("'{}' must be {}, not {}", key_name(key), want, type_name(n)));
  }
  void str(const std::string& key, std::string& out) {
    if (auto* n = node(key)) {
      expect(*n, toml::node_type::string, key, "a string");
      out = n->value<std::string>().value();
    }
  }
  void u32(const std::string& key, uint32_t& out, int64_t lo, int64_t hi) {
    if (auto* n = node(key)) {
      expect(*n, toml::node_type::integer, key, "an integer");
      int64_t v = n->value<int64_t>().value();
      if (v < lo || v > hi) fail(file, *n, fmt::format("'{}' must be between {} and {}", key_name(key), lo, hi));
      out = static_cast<uint32_t>(v);
    }
  }
  void boolean(const std::string& key, bool& out) {
    if (auto* n = node(key)) {
      expect(*n, toml::node_type::boolean, key, "true or false");
      out = n->value<bool>().value();
    }
  }
  void level(const std::string& key, int& out) {
    std::string s;
    str(key, s);
    if (s.empty()) return;
    int l = parse_log_level(s);
    if (l < 0) fail(file, *table.get(key), fmt::format("'{}': unknown log level '{}' (error, warn, info, debug, trace)", key_name(key), s));
    out = l;
  }
  // Unknown keys are refused: a typo must not silently become a default.
  void finish() {
    for (auto& [k, v] : table)
      if (!allowed.count(std::string(k.str())))
        fail(file, v, fmt::format("unknown key '{}'", key_name(std::string(k.str()))));
  }
};

const toml::table& subtable(const std::string& file, const toml::table& root, const char* key, const toml::table& empty) {
  auto* n = root.get(key);
  if (!n) return empty;
  if (!n->is_table()) fail(file, *n, fmt::format("'{}' must be a table", key));
  return *n->as_table();
}

nlohmann::json to_json(const toml::node& n, const std::string& path, std::map<std::string, int>& lines) {
  lines[path] = static_cast<int>(n.source().begin.line);
  switch (n.type()) {
    case toml::node_type::table: {
      nlohmann::json j = nlohmann::json::object();
      for (auto& [k, v] : *n.as_table()) {
        std::string key(k.str());
        j[key] = to_json(v, path.empty() ? key : path + "." + key, lines);
      }
      return j;
    }
    case toml::node_type::array: {
      nlohmann::json j = nlohmann::json::array();
      size_t i = 0;
      for (auto& v : *n.as_array()) j.push_back(to_json(v, fmt::format("{}[{}]", path, i++), lines));
      return j;
    }
    case toml::node_type::string: return n.value<std::string>().value();
    case toml::node_type::integer: return n.value<int64_t>().value();
    case toml::node_type::floating_point: return n.value<double>().value();
    case toml::node_type::boolean: return n.value<bool>().value();
    default: {
      std::ostringstream os;
      n.visit([&](auto&& v) { os << v; });
      return os.str();
    }
  }
}

StaticRoute read_route(const std::string& file, const toml::node& n, size_t index) {
  if (!n.is_table()) fail(file, n, fmt::format("routes[{}] must be a table", index));
  Reader r{file, *n.as_table(), fmt::format("routes[{}]", index), {}};
  StaticRoute route;
  route.origin = where(file, n);
  r.str("match", route.match);
  r.str("pattern", route.pattern);
  std::string strategy = "single";
  r.str("strategy", strategy);
  r.u32("timeout_ms", route.timeout_ms, 0, 3600000);
  if (auto* t = r.node("targets")) {
    if (auto* s = t->as_string()) {
      route.targets.push_back(s->get());
    } else if (auto* a = t->as_array()) {
      for (auto& e : *a) {
        if (!e.is_string()) fail(file, e, "route targets must be strings");
        route.targets.push_back(e.value<std::string>().value());
      }
    } else {
      fail(file, *t, "'targets' must be a string or an array of strings");
    }
  }
  r.finish();
  if (route.match.empty()) fail(file, n, "route needs 'match' (exact, prefix or regex)");
  if (route.pattern.empty()) fail(file, n, "route needs 'pattern'");
  if (route.targets.empty()) fail(file, n, "route needs 'targets'");
  if (strategy == "single") route.strategy = Strategy::Single;
  else if (strategy == "fork") route.strategy = Strategy::Fork;
  else if (strategy == "hunt") route.strategy = Strategy::Hunt;
  else fail(file, *n.as_table()->get("strategy"), fmt::format("unknown strategy '{}' (single, fork, hunt)", strategy));
  return route;
}

uint16_t port_of(const std::string& addr) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) return 0;
  try {
    return static_cast<uint16_t>(std::stoi(addr.substr(colon + 1)));
  } catch (...) {
    return 0;
  }
}

std::string host_of(const std::string& addr) {
  auto colon = addr.rfind(':');
  return colon == std::string::npos ? addr : addr.substr(0, colon);
}

}  // namespace

bool is_loopback_listen(const std::string& addr) {
  std::string host = host_of(addr);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") return true;
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
  return false;  // "*", "0.0.0.0", "::", other names
}

bool valid_plugin_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
  return true;
}

PluginConf load_plugin_conf(const CoreConfig& core, const std::string& name) {
  PluginConf pc;
  pc.name = name;
  pc.conf_path = core.plugin_conf_dir + "/" + name + ".toml";
  pc.library = core.plugin_dir + "/" + name + ".so";
  toml::table t;
  if (std::filesystem::exists(pc.conf_path)) {
    t = parse_file(pc.conf_path);
  } else {
    throw ConfigError(fmt::format("{}: plugin '{}' is enabled but its conf file is missing", pc.conf_path, name));
  }
  // Keys the core reads from every plugin's conf; the rest belongs to the plugin.
  if (auto* n = t.get("library")) {
    if (!n->is_string()) fail(pc.conf_path, *n, "'library' must be a string");
    pc.library = n->value<std::string>().value();
  }
  if (auto* n = t.get("log_level")) {
    if (!n->is_string()) fail(pc.conf_path, *n, "'log_level' must be a string");
    int l = parse_log_level(n->value<std::string>().value());
    if (l < 0) fail(pc.conf_path, *n, fmt::format("unknown log level '{}'", n->value<std::string>().value()));
    pc.log_level = l;
  }
  t.erase("library");
  t.erase("log_level");
  pc.settings = to_json(t, "", pc.key_lines);
  pc.text_hash = pc.settings.dump() + "|" + pc.library + "|" + std::to_string(pc.log_level);
  if (!std::filesystem::exists(pc.library))
    throw ConfigError(fmt::format("{}: plugin '{}': library {} not found (built?)", pc.conf_path, name, pc.library));
  return pc;
}

// The protocol a listen key names: "udp_listen", "sip_udp_listen", "ng_listen" are UDP;
// "tcp_listen", "http_listen", "ws_listen" TCP; a plain "listen" could be either.
static std::string listen_proto(const std::string& key) {
  if (key.find("udp") != std::string::npos || key.rfind("ng_", 0) == 0) return "udp";
  for (const char* t : {"tcp", "http", "ws"})
    if (key.find(t) != std::string::npos) return "tcp";
  return "";
}

std::vector<ListenAddr> plugin_listen_addrs(const PluginConf& pc) {
  std::vector<ListenAddr> out;
  std::function<void(const nlohmann::json&, const std::string&)> walk = [&](const nlohmann::json& j, const std::string& path) {
    if (!j.is_object()) return;
    for (auto& [k, v] : j.items()) {
      std::string p = path.empty() ? k : path + "." + k;
      bool is_listen = k == "listen" || (k.size() > 7 && k.compare(k.size() - 7, 7, "_listen") == 0);
      if (is_listen && v.is_string()) {
        auto line = pc.key_lines.find(p);
        out.push_back({v.get<std::string>(), fmt::format("{}:{} ({})", pc.conf_path, line == pc.key_lines.end() ? 0 : line->second, p),
                       listen_proto(k)});
      }
      walk(v, p);
    }
  };
  walk(pc.settings, "");
  return out;
}

void check_duplicate_listens(const std::vector<ListenAddr>& all) {
  for (size_t i = 0; i < all.size(); ++i)
    for (size_t j = i + 1; j < all.size(); ++j) {
      uint16_t pi = port_of(all[i].addr), pj = port_of(all[j].addr);
      if (pi == 0 || pi != pj) continue;
      // UDP and TCP ports are separate (SIP on UDP and TCP 5060 is the normal case).
      const std::string &ti = all[i].proto, &tj = all[j].proto;
      if (!ti.empty() && !tj.empty() && ti != tj) continue;
      std::string hi = host_of(all[i].addr), hj = host_of(all[j].addr);
      bool overlap = hi == hj || hi == "0.0.0.0" || hj == "0.0.0.0" || hi == "[::]" || hj == "[::]";
      if (overlap)
        throw ConfigError(fmt::format("{}: duplicate listen address {} (also used at {})", all[j].where, all[j].addr, all[i].where));
    }
}

namespace {

// [ports.NAME] min = .., max = ..: named ranges, 1024..65535, no two overlapping.
std::vector<PortRangeConf> read_port_ranges(const std::string& path, const toml::table& root) {
  std::vector<PortRangeConf> out;
  const toml::node* n = root.get("ports");
  if (!n) return out;
  if (!n->is_table()) fail(path, *n, "'ports' must be a table of ranges ([ports.NAME] min = .., max = ..)");
  for (auto& [k, v] : *n->as_table()) {
    std::string name(k.str());
    if (!valid_plugin_name(name)) fail(path, v, fmt::format("'{}' is not a valid range name ([a-z0-9-_])", name));
    if (!v.is_table()) fail(path, v, fmt::format("'ports.{}' must be a table with min and max", name));
    Reader r{path, *v.as_table(), "ports." + name, {}};
    uint32_t lo = 0, hi = 0;
    r.u32("min", lo, 1024, 65535);
    r.u32("max", hi, 1024, 65535);
    r.finish();
    if (!v.as_table()->get("min") || !v.as_table()->get("max")) fail(path, v, fmt::format("'ports.{}' needs both min and max", name));
    if (lo > hi) fail(path, v, fmt::format("'ports.{}': min {} is above max {}", name, lo, hi));
    for (const PortRangeConf& o : out)
      if (lo <= o.max && o.min <= hi)
        fail(path, v, fmt::format("'ports.{}' ({}-{}) overlaps 'ports.{}' ({}-{})", name, lo, hi, o.name, o.min, o.max));
    out.push_back({name, static_cast<uint16_t>(lo), static_cast<uint16_t>(hi)});
  }
  return out;
}

// A fixed listen port inside a range would be taken from it at random by port_bind.
void check_listens_outside_ranges(const std::vector<ListenAddr>& listens, const std::vector<PortRangeConf>& ranges) {
  for (const ListenAddr& l : listens) {
    uint16_t port = port_of(l.addr);
    for (const PortRangeConf& r : ranges)
      if (port && port >= r.min && port <= r.max)
        throw ConfigError(fmt::format("{}: listen port {} lies in port range '{}' ({}-{})", l.where, port, r.name, r.min, r.max));
  }
}

}  // namespace

CoreConfig load_config(const std::string& path) { return load_config_text(std::nullopt, path); }

CoreConfig load_config_text(std::optional<std::string_view> text, const std::string& path) {
  CoreConfig c;
  c.path = path;
  toml::table root = text ? parse_text(*text, path) : parse_file(path);
  const toml::table empty;
  {
    Reader top{path, root, "", {"server", "admin", "limits", "plugins", "routes", "ports", "dns", "workers"}};
    top.finish();
  }
  {
    Reader r{path, subtable(path, root, "server", empty), "server", {}};
    r.level("log_level", c.log_level);
    r.str("state_dir", c.state_dir);
    r.u32("stop_timeout_ms", c.stop_timeout_ms, 0, 600000);
    r.u32("ring_timeout_ms", c.ring_timeout_ms, 1000, 3600000);
    r.u32("max_calls", c.max_calls, 0, 10000000);
    r.str("media_anchor", c.media_anchor);
    r.u32("media_loops", c.media_loops, 0, 255);  // a media-loop timer's handle carries it in 8 bits
    if (auto* n = r.node("media_loop_cpus")) {
      if (!n->is_array()) fail(path, *n, "'server.media_loop_cpus' must be an array of CPU numbers");
      for (auto& e : *n->as_array()) {
        if (!e.is_integer() || e.value<int64_t>().value() < 0 || e.value<int64_t>().value() > 4095)
          fail(path, e, "CPU numbers are integers 0..4095");
        c.media_loop_cpus.push_back(static_cast<int>(e.value<int64_t>().value()));
      }
    }
    r.finish();
  }
  std::vector<ListenAddr> listens;
  {
    const toml::table& t = subtable(path, root, "admin", empty);
    Reader r{path, t, "admin", {}};
    r.str("listen", c.admin_listen);
    r.str("token", c.admin_token);
    r.boolean("allow_remote", c.admin_allow_remote);
    r.finish();
    auto* n = t.get("listen");
    if (port_of(c.admin_listen) == 0) throw ConfigError(fmt::format("{}: admin.listen '{}' must be ip:port", path, c.admin_listen));
    // A short token can be guessed; the generated one is 64 hex digits.
    if (!c.admin_token.empty() && c.admin_token.size() < kMinAdminToken)
      fail(path, *t.get("token"), fmt::format("admin.token is {} characters, at least {} are required (or leave it empty: one is generated into {}/admin.token)",
                                              c.admin_token.size(), kMinAdminToken, c.state_dir));
    // The admin API has no TLS yet: off loopback, the token and every answer travel in clear.
    if (!is_loopback_listen(c.admin_listen) && !c.admin_allow_remote)
      throw ConfigError(fmt::format("{}: admin.listen '{}' is not a loopback address; the admin API has no TLS, so its token would cross the "
                                    "network in clear. Set admin.allow_remote = true to accept that (behind a firewall or a VPN)",
                                    n ? where(path, *n) : path, c.admin_listen));
    listens.push_back({c.admin_listen, n ? where(path, *n) + " (admin.listen)" : path + " (admin.listen default)", "tcp"});
  }
  {
    Reader r{path, subtable(path, root, "limits", empty), "limits", {}};
    r.u32("metric_series_per_name", c.limits.metric_series_per_name, 0, 1000000);
    r.u32("tcp_max_conns_per_listener", c.limits.tcp_max_conns_per_listener, 0, 10000000);
    r.u32("tcp_max_conns_per_ip", c.limits.tcp_max_conns_per_ip, 0, 10000000);
    r.u32("tcp_idle_timeout_ms", c.limits.tcp_idle_timeout_ms, 0, 86400000);
    r.u32("tcp_connect_timeout_ms", c.limits.tcp_connect_timeout_ms, 0, 600000);
    r.u32("fd_reserve", c.limits.fd_reserve, 0, 100000);
    r.u32("http_max_conns_per_endpoint", c.limits.http_max_conns_per_endpoint, 0, 10000000);
    r.u32("http_max_conns_per_ip", c.limits.http_max_conns_per_ip, 0, 10000000);
    r.u32("http_max_header_bytes", c.limits.http_max_header_bytes, 1024, 65535);
    r.u32("http_max_body_bytes", c.limits.http_max_body_bytes, 1024, 1u << 30);
    r.finish();
  }
  std::vector<std::string> enabled;
  {
    const toml::table& t = subtable(path, root, "plugins", empty);
    Reader r{path, t, "plugins", {}};
    r.str("dir", c.plugin_dir);
    r.str("conf_dir", c.plugin_conf_dir);
    if (auto* n = r.node("enabled")) {
      if (!n->is_array()) fail(path, *n, "'plugins.enabled' must be an array of plugin names");
      std::set<std::string> seen;
      for (auto& e : *n->as_array()) {
        if (!e.is_string()) fail(path, e, "plugin names must be strings");
        std::string name = e.value<std::string>().value();
        if (!valid_plugin_name(name)) fail(path, e, fmt::format("'{}' is not a valid plugin name ([a-z0-9-_])", name));
        if (!seen.insert(name).second) fail(path, e, fmt::format("plugin '{}' is enabled twice", name));
        enabled.push_back(name);
      }
    }
    r.finish();
  }
  if (auto* n = root.get("routes")) {
    if (!n->is_array()) fail(path, *n, "'routes' must be an array of tables ([[routes]])");
    size_t i = 0;
    for (auto& e : *n->as_array()) c.routes.push_back(read_route(path, e, i++));
  }
  if (!c.media_anchor.empty() && std::find(enabled.begin(), enabled.end(), c.media_anchor) == enabled.end()) {
    const toml::node* n = root.get("server") && root.get("server")->is_table() ? root.get("server")->as_table()->get("media_anchor") : nullptr;
    throw ConfigError(fmt::format("{}: server.media_anchor names '{}', which is not in plugins.enabled",
                                  n ? where(path, *n) : path, c.media_anchor));
  }
  for (auto& name : enabled) {
    c.plugins.push_back(load_plugin_conf(c, name));
    for (auto& l : plugin_listen_addrs(c.plugins.back())) listens.push_back(l);
  }
  check_duplicate_listens(listens);
  c.port_ranges = read_port_ranges(path, root);
  {
    Reader r{path, subtable(path, root, "dns", empty), "dns", {}};
    if (auto* n = r.node("servers")) {
      if (!n->is_array()) fail(path, *n, "'dns.servers' must be an array of \"ip[:port]\" strings");
      for (auto& e : *n->as_array()) {
        if (!e.is_string()) fail(path, e, "DNS servers are \"ip[:port]\" strings");
        c.dns_servers.push_back(e.value<std::string>().value());
      }
    }
    r.finish();
  }
  {
    Reader r{path, subtable(path, root, "workers", empty), "workers", {}};
    r.u32("threads", c.workers_threads, 1, 1024);  // libuv's threadpool cap
    r.u32("max_queued", c.workers_max_queued, 1, 1000000);
    r.finish();
  }
  check_listens_outside_ranges(listens, c.port_ranges);
  return c;
}

}  // namespace junction
