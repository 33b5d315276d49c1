// Building a sendmsg/sendmmsg message from a jn_send without copying the payload: the
// (per-subscriber) header bytes are one iovec, the shared buffer's bytes after buf_offset the
// other. Used by the core's UDP send path; header-only so it inlines into the batch loop.
#pragma once

#include <junction/abi.h>

#include "bus/addr.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

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

}  // namespace junction
