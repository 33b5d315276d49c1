// Building a sendmsg/sendmmsg message from a jn_send without copying the payload: the
// (per-subscriber) header bytes are one iovec, the shared buffer's bytes after buf_offset the
// other. Used by the core's UDP send path; header-only so it inlines into the batch loop.
#pragma once

#include <junction/abi.h>

#include "bus/addr.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstring>

namespace junction {

// Fills sa, iov and msg (msg points at sa and iov, so keep them alive until the send).
// Returns the number of iovecs used (0 = an empty datagram), or -1 when item.to is not a
// usable destination (family unset or port 0) or buf_offset is past the end of buf.
inline int fill_msghdr(const jn_send& item, struct sockaddr_storage& sa, struct iovec (&iov)[2],
                       struct msghdr& msg) {
  socklen_t sa_len = 0;
  if (item.to.port == 0 || !to_sockaddr(item.to, sa, sa_len)) return -1;
  int count = 0;
  if (item.head && item.head_len > 0) {
    // iovec is not const-correct; the kernel only reads from it on send.
    iov[count++] = {const_cast<uint8_t*>(item.head), item.head_len};
  }
  if (item.buf) {
    if (item.buf_offset > item.buf->len) return -1;
    uint32_t rest = item.buf->len - item.buf_offset;
    if (rest > 0) iov[count++] = {item.buf->data + item.buf_offset, rest};
  }
  msg = {};
  msg.msg_name = &sa;
  msg.msg_namelen = sa_len;
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<size_t>(count);
  return count;
}

// Control-message room per datagram for jn_send's flags: a TOS / traffic class and a source address.
constexpr size_t kSendControl = CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(in6_pktinfo));

// Adds the control messages item.flags asks for to msg (buf must outlive the send). false for an
// unknown flag, or a source address of another family than the destination's.
inline bool fill_send_control(const jn_send& item, char (&buf)[kSendControl], struct msghdr& msg) {
  constexpr uint32_t kKnown = JN_SEND_TOS | JN_SEND_FROM;
  if (!item.flags) return true;
  if (item.flags & ~kKnown) return false;
  const bool v6 = item.to.family == 6;
  std::memset(buf, 0, sizeof buf);
  msg.msg_control = buf;
  msg.msg_controllen = sizeof buf;
  size_t used = 0;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (item.flags & JN_SEND_TOS) {
    int tos = item.tos;
    c->cmsg_level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
    c->cmsg_type = v6 ? IPV6_TCLASS : IP_TOS;
    c->cmsg_len = CMSG_LEN(sizeof tos);
    std::memcpy(CMSG_DATA(c), &tos, sizeof tos);
    used += CMSG_SPACE(sizeof tos);
    c = CMSG_NXTHDR(&msg, c);
  }
  if (item.flags & JN_SEND_FROM) {
    if (item.from.family != item.to.family || !c) return false;
    if (v6) {
      struct in6_pktinfo pi{};
      std::memcpy(&pi.ipi6_addr, item.from.ip, 16);
      pi.ipi6_ifindex = item.from.scope_id;
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof pi);
      std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
      used += CMSG_SPACE(sizeof pi);
    } else {
      struct in_pktinfo pi{};
      std::memcpy(&pi.ipi_spec_dst, item.from.ip, 4);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof pi);
      std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
      used += CMSG_SPACE(sizeof pi);
    }
  }
  msg.msg_controllen = used;
  return true;
}

}  // namespace junction
