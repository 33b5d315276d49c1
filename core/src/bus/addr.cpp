#include "bus/addr.hpp"

#include <junction/util/addr.hpp>

#include <arpa/inet.h>
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

// The grammar lives in the SDK, shared with the plugins.
std::string format_addr(const jn_addr& addr) { return util::format_addr(addr); }

bool parse_addr(std::string_view text, jn_addr& out) { return util::parse_addr(text, out); }

}  // namespace junction
