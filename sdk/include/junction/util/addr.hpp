// jn_addr <-> text, the one copy for plugins and the core (core/src/bus/addr.cpp calls it).
// Text form: "1.2.3.4:5" and "[::1]:5" (brackets required for IPv6 with a port, decimal port
// 0..65535); a link-local IPv6 address may carry its zone: "[fe80::1%2]:5" or "[fe80::1%eth0]:5"
// (a name is turned into its interface index). Allocates: for conf, logs, state and admin
// output, not the per-packet path.
#pragma once

#include <junction/abi.h>

#include <arpa/inet.h>
#include <net/if.h>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace junction::util {

// The address without port or brackets ("192.0.2.1", "::1"); "" for family 0. No zone: this is
// what goes into SDP and protocol fields.
inline std::string format_ip(const jn_addr& a) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (a.family == 4) {
    if (!inet_ntop(AF_INET, a.ip, buf, sizeof buf)) return {};
  } else if (a.family == 6) {
    if (!inet_ntop(AF_INET6, a.ip, buf, sizeof buf)) return {};
  }
  return buf;
}

// "ip:port" / "[v6%zone]:port"; "" for family 0 (or a family that is neither 4 nor 6).
inline std::string format_addr(const jn_addr& a) {
  if (a.family != 4 && a.family != 6) return {};
  std::string ip = format_ip(a);
  if (ip.empty()) return {};
  if (a.family == 4) return ip + ':' + std::to_string(a.port);
  std::string scope = a.scope_id ? '%' + std::to_string(a.scope_id) : std::string();
  return '[' + ip + scope + "]:" + std::to_string(a.port);
}

// An address without port: "192.0.2.1", "::1", "[::1]", "fe80::1%eth0" (zone only on IPv6:
// "%<index>" or "%<interface name>"). Family, ip and scope_id are set, port is 0. False (out
// untouched) for anything else.
inline bool parse_ip(std::string_view host, jn_addr& out) {
  int family = 4;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    family = 6;
  } else if (host.find(':') != std::string_view::npos) {
    family = 6;
  }
  uint32_t scope_id = 0;
  if (size_t pct = host.find('%'); pct != std::string_view::npos) {
    if (family != 6) return false;
    std::string_view zone = host.substr(pct + 1);
    host = host.substr(0, pct);
    if (zone.empty() || zone.size() >= IF_NAMESIZE) return false;
    auto [zend, zec] = std::from_chars(zone.data(), zone.data() + zone.size(), scope_id);
    if (zec != std::errc{} || zend != zone.data() + zone.size()) {
      char name[IF_NAMESIZE];
      std::memcpy(name, zone.data(), zone.size());
      name[zone.size()] = '\0';
      scope_id = if_nametoindex(name);
      if (scope_id == 0) return false;
    }
  }
  char host_z[INET6_ADDRSTRLEN];  // inet_pton needs a NUL-terminated string
  if (host.empty() || host.size() >= sizeof host_z) return false;
  std::memcpy(host_z, host.data(), host.size());
  host_z[host.size()] = '\0';
  jn_addr parsed{};
  if (inet_pton(family == 4 ? AF_INET : AF_INET6, host_z, parsed.ip) != 1) return false;
  parsed.family = static_cast<uint8_t>(family);
  parsed.scope_id = scope_id;
  out = parsed;
  return true;
}

// "ip:port" and "[v6]:port" (with an optional zone inside the brackets); false (out untouched)
// for anything else, including a bare IPv6 address with a port (ambiguous).
inline bool parse_addr(std::string_view text, jn_addr& out) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = text.substr(0, close + 1);  // brackets kept: parse_ip then insists on IPv6
    port = text.substr(close + 2);
  } else {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  // from_chars takes no sign or spaces; the length check keeps "00000080" style oddities out.
  if (port.empty() || port.size() > 5) return false;
  unsigned port_value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_value);
  if (ec != std::errc{} || end != port.data() + port.size() || port_value > 65535) return false;
  jn_addr parsed{};
  if (!parse_ip(host, parsed)) return false;
  if (host.front() == '[' && parsed.family != 6) return false;
  parsed.port = static_cast<uint16_t>(port_value);
  out = parsed;
  return true;
}

}  // namespace junction::util
