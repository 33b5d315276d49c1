// rtp-relay's conf keys (README "Conf keys"): types and ranges checked here, so that a bad value
// is refused with the key and the reason (the core adds file:line) instead of being read as
// something else (a negative max_sessions used to mean "unlimited", a negative timeout_s
// "never"). Pure function over the JSON the core hands over, unit-tested on its own.
#pragma once

#include "relay_util.hpp"

#include <junction/util/config.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace rtp_relay {

enum class Latch : uint8_t { Symmetric = 0, Strict = 1, Off = 2 };

constexpr int64_t kMaxSessionsLimit = int64_t{1} << 22;  // stream ids fit 22 bits of the socket cookie

struct RelayConf {
  std::string ng_listen = "127.0.0.1:2223";
  std::string interface = "127.0.0.1";
  std::string advertise;  // "" = interface
  std::string port_range = "media";  // the core's [ports.NAME] range the media sockets come from
  bool port_range_set = false;       // given explicitly (else a core without the range falls back)
  bool legacy_ports = false;         // port_min/port_max given (deprecated): the relay's own range
  int port_min = 30000, port_max = 39999;
  Latch latch = Latch::Symmetric;
  uint64_t timeout_s = 60;
  bool publish = true;
  uint32_t ssrc_change_limit = 8;
  uint32_t rcvbuf = 256 * 1024;
  uint32_t max_sessions = 20000;
  std::string control_topic = "rtp-relay.ng";
};

struct ConfError {
  std::string key, reason;
};

inline std::optional<ConfError> parse_conf(const nlohmann::json& c, RelayConf& out) {
  out = RelayConf{};
  if (!c.is_object()) return ConfError{"", "the plugin conf is not a table"};
  junction::util::ConfigReader r(c);
  r.known_keys({"ng_listen", "interface", "advertise", "port_range", "port_min", "port_max", "latching", "timeout_s", "publish",
                "ssrc_change_limit", "rcvbuf", "max_sessions", "control_topic"});
  r.str("ng_listen", out.ng_listen);
  r.str("interface", out.interface);
  r.str("advertise", out.advertise);
  r.str("control_topic", out.control_topic);
  r.str("port_range", out.port_range);
  out.port_range_set = r.has("port_range");
  out.legacy_ports = r.has("port_min") || r.has("port_max");
  if (out.legacy_ports && r.has("port_range"))
    r.fail("port_range", "cannot be combined with the deprecated port_min/port_max (use one of them)");
  if (!out.legacy_ports && out.port_range.empty()) r.fail("port_range", "must name a [ports.NAME] range of the core");
  std::string latch = "symmetric";
  r.choice("latching", latch, {"symmetric", "strict", "off"});
  out.latch = latch == "strict" ? Latch::Strict : latch == "off" ? Latch::Off : Latch::Symmetric;
  r.boolean("publish", out.publish);
  r.integer("port_min", out.port_min, 1024, 65532);
  r.integer("port_max", out.port_max, 1027, 65535);
  if (r.ok() && out.port_min + 3 > out.port_max)
    r.fail("port_max", "must be at least port_min + 3 (two even/odd pairs), not " + std::to_string(out.port_max));
  if (out.port_min % 2) ++out.port_min;  // RTP on even ports (RFC 3550)
  r.integer("timeout_s", out.timeout_s, 0, 86400, "0 (never) or seconds up to 86400");
  r.integer("ssrc_change_limit", out.ssrc_change_limit, 0, 100000);
  r.integer("rcvbuf", out.rcvbuf, 0, 256 << 20, "0 (the core's default) or bytes up to 268435456");
  r.integer("max_sessions", out.max_sessions, 1, kMaxSessionsLimit);
  if (!r.ok()) return ConfError{r.error()->key, r.error()->reason};
  if (out.advertise.empty()) out.advertise = out.interface;
  jn_addr probe;
  if (!make_addr(out.interface, 0, probe)) return ConfError{"interface", "must be an IP address, not '" + log_escape(out.interface, 64) + "'"};
  if (!make_addr(out.advertise, 0, probe)) return ConfError{"advertise", "must be an IP address, not '" + log_escape(out.advertise, 64) + "'"};
  return std::nullopt;
}

}  // namespace rtp_relay
