/* LD_PRELOAD for Janus in the bench's network namespace: libnice pins each ICE socket to the
 * interface of its address (IP_UNICAST_IF). The bench gives Janus 127.0.0.2 on a veth (Janus
 * gathers nothing on a loopback interface), and the kernel refuses (EINVAL) to send a 127.0.0.0/8
 * source out of a non-loopback device, so the pin is skipped here: the datagrams then take the
 * local route like any loopback traffic. Nothing else changes (routing, not the per-packet work).
 * Built by run.py: gcc -shared -fPIC -O2 -o no_unicast_if.so no_unicast_if.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>

int setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  static int (*real)(int, int, int, const void*, socklen_t);
  if (!real) real = (int (*)(int, int, int, const void*, socklen_t))dlsym(RTLD_NEXT, "setsockopt");
  if ((level == IPPROTO_IP && name == IP_UNICAST_IF) || (level == IPPROTO_IPV6 && name == IPV6_UNICAST_IF)) return 0;
  return real(fd, level, name, val, len);
}
