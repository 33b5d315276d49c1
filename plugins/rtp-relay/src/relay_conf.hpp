// rtp-relay's conf keys (README "Conf keys"): types and ranges checked here, so that a bad value
// is refused with the key and the reason (the core adds file:line) instead of being read as
// something else (a negative max_sessions used to mean "unlimited", a negative timeout_s
// "never"). Pure function over the JSON the core hands over, unit-tested on its own.
#pragma once

#include "relay_util.hpp"

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
  static const char* known[] = {"ng_listen", "interface", "advertise", "port_range", "port_min", "port_max", "latching", "timeout_s",
                                "publish", "ssrc_change_limit", "rcvbuf", "max_sessions", "control_topic"};
  for (auto& [k, v] : c.items()) {
    bool ok = false;
    for (const char* s : known) ok = ok || k == s;
    if (!ok) return ConfError{k, "unknown key"};
  }
  std::optional<ConfError> err;
  auto str = [&](const char* key, std::string& v) {
    if (err || !c.contains(key)) return;
    if (!c[key].is_string()) err = ConfError{key, "must be a string"};
    else v = c[key].get<std::string>();
  };
  auto integer = [&](const char* key, int64_t lo, int64_t hi, int64_t def, const char* what = nullptr) -> int64_t {
    if (err || !c.contains(key)) return def;
    const auto& j = c[key];
    std::string range = what ? std::string(what) : "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    if (!j.is_number_integer()) {
      err = ConfError{key, "must be " + range};
      return def;
    }
    // A value beyond int64 is unsigned in the JSON: out of range either way.
    if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(hi)) {
      err = ConfError{key, "must be " + range + ", not " + std::to_string(j.get<uint64_t>())};
      return def;
    }
    int64_t x = j.get<int64_t>();
    if (x < lo || x > hi) err = ConfError{key, "must be " + range + ", not " + std::to_string(x)};
    return x;
  };
  str("ng_listen", out.ng_listen);
  str("interface", out.interface);
  str("advertise", out.advertise);
  str("control_topic", out.control_topic);
  str("port_range", out.port_range);
  out.port_range_set = c.contains("port_range");
  out.legacy_ports = c.contains("port_min") || c.contains("port_max");
  if (!err && out.legacy_ports && c.contains("port_range"))
    err = ConfError{"port_range", "cannot be combined with the deprecated port_min/port_max (use one of them)"};
  if (!err && !out.legacy_ports && out.port_range.empty()) err = ConfError{"port_range", "must name a [ports.NAME] range of the core"};
  std::string latch = "symmetric";
  str("latching", latch);
  if (!err) {
    if (latch == "symmetric") out.latch = Latch::Symmetric;
    else if (latch == "strict") out.latch = Latch::Strict;
    else if (latch == "off") out.latch = Latch::Off;
    else err = ConfError{"latching", "must be one of symmetric, strict, off, not '" + log_escape(latch, 64) + "'"};
  }
  if (!err && c.contains("publish")) {
    if (!c["publish"].is_boolean()) err = ConfError{"publish", "must be true or false"};
    else out.publish = c["publish"].get<bool>();
  }
  out.port_min = static_cast<int>(integer("port_min", 1024, 65532, out.port_min));
  out.port_max = static_cast<int>(integer("port_max", 1027, 65535, out.port_max));
  if (!err && out.port_min + 3 > out.port_max)
    err = ConfError{"port_max", "must be at least port_min + 3 (two even/odd pairs), not " + std::to_string(out.port_max)};
  if (out.port_min % 2) ++out.port_min;  // RTP on even ports (RFC 3550)
  out.timeout_s = static_cast<uint64_t>(integer("timeout_s", 0, 86400, 60, "0 (never) or seconds up to 86400"));
  out.ssrc_change_limit = static_cast<uint32_t>(integer("ssrc_change_limit", 0, 100000, out.ssrc_change_limit));
  out.rcvbuf = static_cast<uint32_t>(integer("rcvbuf", 0, 256 << 20, out.rcvbuf, "0 (the core's default) or bytes up to 268435456"));
  out.max_sessions = static_cast<uint32_t>(integer("max_sessions", 1, kMaxSessionsLimit, out.max_sessions));
  if (err) return err;
  if (out.advertise.empty()) out.advertise = out.interface;
  jn_addr probe;
  if (!make_addr(out.interface, 0, probe)) return ConfError{"interface", "must be an IP address, not '" + log_escape(out.interface, 64) + "'"};
  if (!make_addr(out.advertise, 0, probe)) return ConfError{"advertise", "must be an IP address, not '" + log_escape(out.advertise, 64) + "'"};
  return std::nullopt;
}

}  // namespace rtp_relay
