#include "bus/addr.hpp"

#include <arpa/inet.h>
#include <net/if.h>

#include <charconv>
#include <cstring>

namespace junction {

bool to_sockaddr(const jn_addr& addr, sockaddr_storage& out, socklen_t& out_len) {
  if (addr.family == 4) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(addr.port);
    std::memcpy(&sin.sin_addr, addr.ip, 4);
    std::memcpy(&out, &sin, sizeof sin);
    out_len = sizeof sin;
    return true;
  }
  if (addr.family == 6) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(addr.port);
    std::memcpy(&sin6.sin6_addr, addr.ip, 16);
    sin6.sin6_scope_id = addr.scope_id;
    std::memcpy(&out, &sin6, sizeof sin6);
    out_len = sizeof sin6;
    return true;
  }
  return false;
}

jn_addr from_sockaddr(const sockaddr* sa) {
  jn_addr a{};
  if (!sa) return a;
  if (sa->sa_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, sa, sizeof sin);  // sa may be a differently aligned storage type
    a.family = 4;
    a.port = ntohs(sin.sin_port);
    std::memcpy(a.ip, &sin.sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, sa, sizeof sin6);
    a.family = 6;
    a.port = ntohs(sin6.sin6_port);
    std::memcpy(a.ip, &sin6.sin6_addr, 16);
    a.scope_id = sin6.sin6_scope_id;
  }
  return a;
}

std::string format_addr(const jn_addr& addr) {
  char ip[INET6_ADDRSTRLEN];
  if (addr.family == 4) {
    if (!inet_ntop(AF_INET, addr.ip, ip, sizeof ip)) return {};
    return std::string(ip) + ':' + std::to_string(addr.port);
  }
  if (addr.family == 6) {
    if (!inet_ntop(AF_INET6, addr.ip, ip, sizeof ip)) return {};
    std::string scope = addr.scope_id ? '%' + std::to_string(addr.scope_id) : std::string();
    return '[' + std::string(ip) + scope + "]:" + std::to_string(addr.port);
  }
  return {};
}

bool parse_addr(std::string_view text, jn_addr& out) {
  std::string_view host, port;
  int family;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return false;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    family = 6;
  } else {
    size_t colon = text.find(':');
    // More than one colon without brackets is a bare IPv6 address: ambiguous, refused.
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos)
      return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    family = 4;
  }

  // from_chars takes no sign or spaces; the length check keeps "00000080" style oddities out.
  if (port.empty() || port.size() > 5) return false;
  unsigned port_value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_value);
  if (ec != std::errc{} || end != port.data() + port.size() || port_value > 65535) return false;

  // An IPv6 zone: "%<interface index>" or "%<interface name>" (link-local addresses).
  uint32_t scope_id = 0;
  if (size_t pct = host.find('%'); family == 6 && pct != std::string_view::npos) {
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
  parsed.port = static_cast<uint16_t>(port_value);
  parsed.scope_id = scope_id;
  out = parsed;
  return true;
}

}  // namespace junction
