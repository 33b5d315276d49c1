// verto-ws: reading the plugin's conf (keys and defaults: README.md, verto-ws.toml).
#include "verto_ws.hpp"

#include <stdexcept>

namespace verto::ws {
namespace {

bool read_list(junction::util::ConfigReader& r, const std::string& key, std::vector<std::string>& out) {
  if (!r.has(key)) return r.ok();
  const json& j = r.conf()[key];
  if (!j.is_array()) {
    r.fail(key, "must be an array of strings");
    return false;
  }
  std::vector<std::string> v;
  for (const auto& e : j) {
    if (!e.is_string()) {
      r.fail(key, "must be an array of strings");
      return false;
    }
    v.push_back(e.get<std::string>());
  }
  out = std::move(v);
  return true;
}

}  // namespace

Conf read_conf(const Host& host) {
  Conf c;
  junction::util::ConfigReader r(host.config(), [&](const std::string& k, const std::string& why) { host.config_error(k, why); });
  r.known_keys({"listen", "ws_path", "tls_cert", "tls_key", "allowed_origins", "allow_no_origin", "max_message", "max_batch",
                "login_timeout_ms", "idle_ping_ms", "idle_timeout_ms", "rate_per_s", "rate_burst", "bad_limit", "kdf_iterations",
                "token_ttl_s", "detach_timeout_ms", "heartbeat_ms", "heartbeat_channel", "channels", "user_channels", "core_events",
                "default_scheme", "media", "media_ip", "port_range", "data_channels", "library", "conference"});
  r.str("listen", c.listen, true);
  r.str("ws_path", c.ws_path, true);
  r.str("tls_cert", c.tls_cert);
  r.str("tls_key", c.tls_key);
  read_list(r, "allowed_origins", c.allowed_origins);
  r.boolean("allow_no_origin", c.allow_no_origin);
  r.integer("max_message", c.max_message, 1024, 1 << 20);
  r.integer("max_batch", c.max_batch, 1, 256);
  r.integer("login_timeout_ms", c.login_timeout_ms, 100, 600000);
  r.integer("idle_ping_ms", c.idle_ping_ms, 100, 3600000);
  r.integer("idle_timeout_ms", c.idle_timeout_ms, 200, 7200000);
  r.integer("rate_per_s", c.rate_per_s, 1, 100000);
  r.integer("rate_burst", c.rate_burst, 1, 100000);
  r.integer("bad_limit", c.bad_limit, 1, 100000);
  r.integer("kdf_iterations", c.kdf_iterations, 1000, 10000000);
  r.integer("token_ttl_s", c.token_ttl_s, 1, 315360000);
  r.integer("detach_timeout_ms", c.detach_timeout_ms, 0, 3600000);
  r.integer("heartbeat_ms", c.heartbeat_ms, 0, 3600000);
  r.str("heartbeat_channel", c.heartbeat_channel, true);
  read_list(r, "channels", c.channels);
  read_list(r, "core_events", c.core_events);
  r.str("default_scheme", c.default_scheme, true);
  r.choice("media", c.media, {"webrtc", "none"});
  r.str("media_ip", c.media_conf.ip, true);
  r.str("port_range", c.media_conf.port_range, true);
  r.boolean("data_channels", c.data_channels);
  {
    jn_addr a{};
    if (!junction::util::parse_ip(c.media_conf.ip, a)) r.fail("media_ip", "must be an IP address (the candidate browsers send media to)");
  }
  if (r.has("user_channels")) {
    auto t = r.table("user_channels");
    for (auto& [user, v] : t.conf().items()) {
      std::vector<std::string> list;
      if (!verto::valid_user(user)) t.fail(user, "not a valid user name");
      else if (read_list(t, user, list)) c.user_channels[user] = list;
    }
  }
  if (r.has("conference") && !r.conf()["conference"].is_object()) r.fail("conference", "must be a table");
  else if (r.ok()) read_conference_conf(r.conf().value("conference", json::object()), [&](const std::string& k, const std::string& why) { host.config_error(k, why); }, c.conference);
  if (c.ws_path.front() != '/') r.fail("ws_path", "must start with /");
  if (c.tls_cert.empty() != c.tls_key.empty()) r.fail("tls_cert", "tls_cert and tls_key go together");
  if (c.idle_timeout_ms <= c.idle_ping_ms) r.fail("idle_timeout_ms", "must be longer than idle_ping_ms");
  for (auto& o : c.allowed_origins)
    if (o.empty() || (o != "*" && o.find("://") == std::string::npos)) r.fail("allowed_origins", "each entry is \"*\" or scheme://host[:port], not '" + o + "'");
  if (!r.ok()) throw std::runtime_error("bad conf: " + r.error()->key + ": " + r.error()->reason);
  return c;
}

}  // namespace verto::ws
