// Conversions between the ABI's jn_addr and the socket API, and its text form.
// Text form: "1.2.3.4:5" and "[::1]:5" (brackets required for IPv6, decimal port 0..65535);
// a link-local IPv6 address may carry its zone: "[fe80::1%2]:5" or "[fe80::1%eth0]:5".
#pragma once

#include <junction/abi.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <string_view>

namespace junction {

// false (out untouched) when family is neither 4 nor 6.
bool to_sockaddr(const jn_addr& addr, sockaddr_storage& out, socklen_t& out_len);

// family 0 when sa is null or neither AF_INET nor AF_INET6. IPv4-mapped IPv6 addresses stay
// family 6 (so a reply goes out of the same dual-stack socket); the IPv6 scope id is kept.
jn_addr from_sockaddr(const sockaddr* sa);

// "" for family 0. Allocates: for logs and admin output, not the per-packet path.
std::string format_addr(const jn_addr& addr);

// Accepts "ip:port" and "[v6]:port"; false (out untouched) for anything else.
bool parse_addr(std::string_view text, jn_addr& out);

}  // namespace junction
