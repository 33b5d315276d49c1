// The server's configuration: conf/junction.toml plus one conf/plugins/NAME.toml per enabled
// plugin. Loading is all-or-nothing: any problem throws ConfigError with "file:line: reason",
// so the server refuses to start (or a SIGHUP keeps the running conf) instead of half-applying.
#pragma once

#include "host/port_ranges.hpp"
#include "routing/route_table.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace junction {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct PluginConf {
  std::string name;
  std::string conf_path;  // conf/plugins/NAME.toml
  std::string library;    // the .so to load
  int log_level = JN_LOG_INFO;
  nlohmann::json settings = nlohmann::json::object();  // everything but the core's keys
  std::map<std::string, int> key_lines;                // "a.b" -> line, for plugin messages
  std::string text_hash;                               // to tell a changed conf on SIGHUP
};

// [limits]: caps on what peers and plugins can make the core hold (see docs/operator-guide.md).
struct Limits {
  uint32_t metric_series_per_name = 1000;  // 0 = no cap
  // Plugin TCP listeners and connections (0 = no limit / no timeout).
  uint32_t tcp_max_conns_per_listener = 1024;
  uint32_t tcp_max_conns_per_ip = 64;
  uint32_t tcp_idle_timeout_ms = 300000;  // accepted conns of a listener that sets none
  uint32_t tcp_connect_timeout_ms = 10000;
  uint32_t fd_reserve = 64;  // accepts stop this many fds short of RLIMIT_NOFILE (TCP and HTTP)
  // HTTP/WebSocket endpoints (admin API and plugins' http_listen).
  uint32_t http_max_conns_per_endpoint = 1024;
  uint32_t http_max_conns_per_ip = 64;
  uint32_t http_max_header_bytes = 8192;
  uint32_t http_max_body_bytes = 1u << 20;
};

struct CoreConfig {
  std::string path;
  std::string base_dir;  // relative paths in the conf are taken from the process's cwd
  int log_level = JN_LOG_INFO;
  std::string state_dir = "var";
  std::string plugin_dir = "build/plugins";
  std::string plugin_conf_dir = "conf/plugins";
  uint32_t stop_timeout_ms = 5000;
  uint32_t ring_timeout_ms = 60000;
  uint32_t max_calls = 10000;  // calls in progress; call_originate beyond is refused (0 = no limit)
  std::string media_anchor;  // plugin that anchors call media ("rtp-relay"), "" = none
  uint32_t media_loops = 0;  // media worker loops (threads); 0 = media on the control loop
  std::vector<int> media_loop_cpus;  // CPU of loop k at [k-1]; missing: loop k on CPU k % ncpu
  std::string admin_listen = "127.0.0.1:7600";
  std::string admin_token;  // empty: generated into state_dir/admin.token; else >= kMinAdminToken chars
  bool admin_allow_remote = false;  // admin.listen off loopback is refused unless this is set
  Limits limits;
  std::vector<PluginConf> plugins;
  std::vector<StaticRoute> routes;
  std::vector<PortRangeConf> port_ranges;  // [ports.NAME] min/max
  std::vector<std::string> dns_servers;    // [dns] servers: "ip[:port]"; empty = /etc/resolv.conf
  // [workers]: the pool behind host->work_submit (libuv's threadpool: UV_THREADPOOL_SIZE is set
  // from threads at start, so a change takes effect at the next restart).
  uint32_t workers_threads = 4;
  uint32_t workers_max_queued = 1024;  // jobs waiting for a thread; work_submit beyond: JN_ERR_LIMIT
};

// Throws ConfigError. Reads every enabled plugin's conf too, and checks listen addresses for
// duplicates across the admin API and all plugins.
CoreConfig load_config(const std::string& path);
// The same from text already in memory (path only names it in messages); nullopt reads path.
CoreConfig load_config_text(std::optional<std::string_view> text, const std::string& path);

// Reads one plugin's conf (used by load_config and by a plugin loaded at runtime).
PluginConf load_plugin_conf(const CoreConfig& core, const std::string& name);

// "ip:port" listen addresses found in a plugin's settings (keys named listen or *_listen),
// with their dotted key and line; used for the duplicate-port check.
struct ListenAddr {
  std::string addr, where;
  // From the key's name: "udp" (names with udp or ng_), "tcp" (tcp, http, ws, admin), or ""
  // (either: checked against both).
  std::string proto;
};
std::vector<ListenAddr> plugin_listen_addrs(const PluginConf& pc);
void check_duplicate_listens(const std::vector<ListenAddr>& all);  // throws ConfigError

bool valid_plugin_name(std::string_view name);

constexpr size_t kMinAdminToken = 32;
// 127.0.0.0/8, ::1 (bracketed) or "localhost"; "*", any-addresses and other names are not.
bool is_loopback_listen(const std::string& addr);

}  // namespace junction
