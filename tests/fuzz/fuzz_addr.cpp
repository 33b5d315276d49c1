// The address grammar (bus/addr.hpp) on arbitrary text: accepted addresses format back to text
// that parses to the same jn_addr, and go through the socket API's form (to_sockaddr ->
// from_sockaddr) unchanged. The same bytes, read as a sockaddr of either family, come back
// unchanged through jn_addr (the receive path's conversion).
#include "bus/addr.hpp"

#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  jn_addr a{};
  if (junction::parse_addr(text, a)) {
    jn_addr b{};
    if (!junction::parse_addr(junction::format_addr(a), b)) std::abort();
    if (std::memcmp(&a, &b, sizeof a) != 0) std::abort();
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (!junction::to_sockaddr(a, ss, len)) std::abort();
    jn_addr c = junction::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss));
    if (std::memcmp(&a, &c, sizeof a) != 0) std::abort();
  }

  // Raw bytes as a sockaddr: byte 0 picks the family.
  sockaddr_storage raw{};
  std::memcpy(&raw, data, std::min(size, sizeof raw));
  raw.ss_family = size && (data[0] & 1) ? AF_INET6 : AF_INET;
  jn_addr d = junction::from_sockaddr(reinterpret_cast<const sockaddr*>(&raw));
  if (d.family != (raw.ss_family == AF_INET6 ? 6 : 4)) std::abort();
  sockaddr_storage back{};
  socklen_t back_len = 0;
  if (!junction::to_sockaddr(d, back, back_len)) std::abort();
  jn_addr e = junction::from_sockaddr(reinterpret_cast<const sockaddr*>(&back));
  if (std::memcmp(&d, &e, sizeof d) != 0) std::abort();
  if (junction::format_addr(d).empty()) std::abort();
  return 0;
}
