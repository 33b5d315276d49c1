#include "conf.hpp"

#include "ids.hpp"

#include <junction/util/addr.hpp>
#include <junction/util/config.hpp>

#include <stdexcept>

namespace gb {

Conf read_conf(const nlohmann::json& j, const ConfReport& report) {
  Conf c;
  auto bad = [&](const std::string& key, const std::string& why) {
    if (report) report(key, why);
    throw std::invalid_argument(key + ": " + why);
  };
  junction::util::ConfigReader r(j, bad);
  r.known_keys({"sip_id", "domain", "udp_listen", "tcp_listen", "realm", "password", "auto_admit", "keepalive_interval_s",
                "keepalive_count", "keepalive_policy", "min_expires_s", "max_expires_s", "default_expires_s", "date_header",
                "date_utc_offset_min", "nonce_ttl_s", "nonce_secret", "t1_ms", "t2_ms", "t4_ms", "query_timeout_ms",
                "max_devices", "log_each", "stateless_register", "stateless_keepalive", "snapshot_listen", "snapshot_url", "snapshot_session_ttl_s", "redirect", "play", "media", "clients"});
  if (!r.has("sip_id")) bad("sip_id", "is required: the platform's 20-digit GB code (e.g. \"34020000002000000001\")");
  r.str("sip_id", c.sip_id, true);
  if (c.sip_id.size() != 20 || !is_gb_id(c.sip_id)) bad("sip_id", "must be 20 digits, not '" + r.printable(c.sip_id) + "'");
  c.domain = c.sip_id.substr(0, 10);
  r.str("domain", c.domain, true);
  r.str("udp_listen", c.udp_listen, true);
  r.str("tcp_listen", c.tcp_listen);
  jn_addr a{};
  if (!junction::util::parse_addr(c.udp_listen, a)) bad("udp_listen", "must be ip:port, not '" + r.printable(c.udp_listen) + "'");
  if (!c.tcp_listen.empty() && !junction::util::parse_addr(c.tcp_listen, a))
    bad("tcp_listen", "must be ip:port or empty, not '" + r.printable(c.tcp_listen) + "'");
  c.realm = c.domain;
  r.str("realm", c.realm, true);
  r.str("password", c.password);
  r.boolean("auto_admit", c.auto_admit);
  if (c.auto_admit && c.password.empty()) bad("auto_admit", "needs the platform-wide 'password' (admitted devices use it)");
  r.integer("keepalive_interval_s", c.keepalive_interval_s, 1, 3600);
  r.integer("keepalive_count", c.keepalive_count, 1, 100);
  r.choice("keepalive_policy", c.keepalive_policy, {"strict", "registration"});
  r.integer("min_expires_s", c.min_expires_s, 1, 86400);
  r.integer("max_expires_s", c.max_expires_s, 1, 604800);
  r.integer("default_expires_s", c.default_expires_s, 1, 604800);
  if (c.max_expires_s < c.min_expires_s) bad("max_expires_s", "must not be below min_expires_s");
  r.boolean("date_header", c.date_header);
  r.integer("date_utc_offset_min", c.date_utc_offset_min, -720, 840);
  r.integer("nonce_ttl_s", c.nonce_ttl_s, 10, 86400);
  r.str("nonce_secret", c.nonce_secret);
  if (!c.nonce_secret.empty() && c.nonce_secret.size() < 16) bad("nonce_secret", "must be at least 16 characters (or absent)");
  r.integer("t1_ms", c.t1_ms, 10, 10000);
  r.integer("t2_ms", c.t2_ms, 100, 60000);
  r.integer("t4_ms", c.t4_ms, 100, 60000);
  r.integer("query_timeout_ms", c.query_timeout_ms, 100, 600000);
  r.integer("max_devices", c.max_devices, 1, 10000000);
  r.boolean("log_each", c.log_each);
  r.boolean("stateless_register", c.stateless_register);
  r.boolean("stateless_keepalive", c.stateless_keepalive);
  r.str("snapshot_listen", c.snapshot_listen);
  if (!c.snapshot_listen.empty() && !junction::util::parse_addr(c.snapshot_listen, a))
    bad("snapshot_listen", "must be ip:port or empty, not '" + r.printable(c.snapshot_listen) + "'");
  r.str("snapshot_url", c.snapshot_url);
  if (c.snapshot_url.empty() && !c.snapshot_listen.empty()) c.snapshot_url = "http://" + c.snapshot_listen;
  if (!c.snapshot_url.empty() && c.snapshot_url.rfind("http://", 0) != 0 && c.snapshot_url.rfind("https://", 0) != 0)
    bad("snapshot_url", "must be an http:// or https:// URL");
  while (!c.snapshot_url.empty() && c.snapshot_url.back() == '/') c.snapshot_url.pop_back();
  r.integer("snapshot_session_ttl_s", c.snapshot_session_ttl_s, 10, 7 * 86400);

  junction::util::ConfigReader rd = r.table("redirect");
  rd.known_keys({"enabled", "policy", "expires_s", "servers"});
  rd.boolean("enabled", c.redirect.enabled);
  rd.choice("policy", c.redirect.policy, {"prefix", "least_loaded"});
  rd.integer("expires_s", c.redirect.expires_s, 1, 604800);
  if (rd.has("servers")) {
    const auto& v = rd.conf()["servers"];
    if (!v.is_array()) bad("redirect.servers", "must be an array of tables ([[redirect.servers]])");
    for (size_t i = 0; i < v.size(); ++i) {
      std::string key = "redirect.servers[" + std::to_string(i) + "]";
      if (!v[i].is_object()) bad(key, "must be a table with id, address, prefixes");
      junction::util::ConfigReader s(v[i], bad, key + ".");
      s.known_keys({"id", "address", "prefixes"});
      RedirectServer srv;
      s.str("id", srv.id, true);
      s.str("address", srv.address, true);
      if (!is_gb_id(srv.id)) bad(key + ".id", "must be a GB code (20 digits), not '" + r.printable(srv.id) + "'");
      if (!junction::util::parse_addr(srv.address, a)) bad(key + ".address", "must be ip:port, not '" + r.printable(srv.address) + "'");
      if (s.has("prefixes")) {
        const auto& p = v[i]["prefixes"];
        if (!p.is_array()) bad(key + ".prefixes", "must be an array of digit strings");
        for (auto& e : p) {
          if (!e.is_string() || e.get<std::string>().empty() || e.get<std::string>().find_first_not_of("0123456789") != std::string::npos)
            bad(key + ".prefixes", "must be an array of digit strings (ID prefixes / civil codes), not " + e.dump());
          srv.prefixes.push_back(e.get<std::string>());
        }
      }
      c.redirect.servers.push_back(std::move(srv));
    }
  }
  if (c.redirect.enabled && c.redirect.servers.empty()) bad("redirect.servers", "redirect.enabled needs at least one server");

  junction::util::ConfigReader pl = r.table("play");
  pl.known_keys({"transport", "media_ip", "download_speed", "grace_ms", "restart_on_timeout", "backoff_initial_ms",
                 "backoff_max_ms", "restart_attempts", "download_dir"});
  pl.choice("transport", c.play.transport, {"udp", "tcp_passive", "tcp_active"});
  pl.str("media_ip", c.play.media_ip);
  if (!c.play.media_ip.empty() && !junction::util::parse_ip(c.play.media_ip, a))
    bad("play.media_ip", "must be an IP address or empty, not '" + r.printable(c.play.media_ip) + "'");
  pl.integer("download_speed", c.play.download_speed, 0, 256);
  pl.integer("grace_ms", c.play.grace_ms, 0, 3600000);
  pl.boolean("restart_on_timeout", c.play.restart_on_timeout);
  pl.integer("backoff_initial_ms", c.play.backoff_initial_ms, 10, 600000);
  pl.integer("backoff_max_ms", c.play.backoff_max_ms, 10, 3600000);
  if (c.play.backoff_max_ms < c.play.backoff_initial_ms) bad("play.backoff_max_ms", "must not be below play.backoff_initial_ms");
  pl.integer("restart_attempts", c.play.restart_attempts, 0, 1000000);
  pl.str("download_dir", c.play.download_dir);
  if (c.play.download_dir.find("..") != std::string::npos)
    bad("play.download_dir", "must be a directory path without '..' (or empty: the plugin's state dir/downloads)");

  junction::util::ConfigReader md = r.table("media");
  md.known_keys({"port_range", "bind_ip", "rtp_timeout_ms", "reorder_window", "reorder_flush_ms", "max_video_frame",
                 "stats_interval_ms", "gop_cache", "gop_cache_max_bytes"});
  md.str("port_range", c.media.port_range, true);
  md.str("bind_ip", c.media.bind_ip, true);
  if (!junction::util::parse_ip(c.media.bind_ip, a)) bad("media.bind_ip", "must be an IP address, not '" + r.printable(c.media.bind_ip) + "'");
  md.integer("rtp_timeout_ms", c.media.rtp_timeout_ms, 0, 3600000);
  md.integer("reorder_window", c.media.reorder_window, 0, 1024);
  md.integer("reorder_flush_ms", c.media.reorder_flush_ms, 1, 10000);
  md.integer("max_video_frame", c.media.max_video_frame, 65536, 64u << 20);
  md.boolean("gop_cache", c.media.gop_cache);
  md.integer("gop_cache_max_bytes", c.media.gop_cache_max_bytes, 65536, 64u << 20);
  md.integer("stats_interval_ms", c.media.stats_interval_ms, 100, 60000);

  junction::util::ConfigReader cl = r.table("clients");
  cl.known_keys({"auth", "users", "max_per_channel"});
  cl.boolean("auth", c.clients.auth);
  cl.integer("max_per_channel", c.clients.max_per_channel, 0, 100000);
  if (cl.has("users")) {
    const nlohmann::json& u = cl.conf()["users"];
    if (!u.is_object()) bad("clients.users", "must be a table of username = \"password\"");
    for (auto& [name, pw] : u.items()) {
      if (name.empty() || name.size() > 64 || !pw.is_string() || pw.get<std::string>().empty())
        bad("clients.users", "each entry is a username (1..64 chars) = a non-empty password string");
      c.clients.users[name] = pw.get<std::string>();
    }
  }
  return c;
}

}  // namespace gb
