// libjunction_sctp_glue.so: usrsctp's process-wide output trampoline (sctp_glue.h says why).
// This library is pinned resident and never unloaded, which is the one reason its state (an
// init flag and a counter) may be process-wide.
#include <junction/webrtc/sctp_glue.h>

#include <usrsctp.h>

#include <atomic>
#include <cerrno>
#include <mutex>

namespace {

std::once_flag g_once;
std::atomic<uint64_t> g_dropped{0};

int trampoline(void* addr, void* buf, size_t len, uint8_t tos, uint8_t set_df) {
  auto* port = static_cast<jn_sctp_glue_port*>(addr);
  jn_sctp_output_fn fn = port ? port->output : nullptr;
  if (!fn) {
    g_dropped.fetch_add(1, std::memory_order_relaxed);
    return EINVAL;
  }
  return fn(addr, buf, len, tos, set_df);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int jn_sctp_glue_init(void) {
  int did = 0;
  std::call_once(g_once, [&] {
    usrsctp_init_nothreads(0, &trampoline, nullptr);
    did = 1;
  });
  return did;
}

extern "C" __attribute__((visibility("default"))) uint64_t jn_sctp_glue_dropped(void) {
  return g_dropped.load(std::memory_order_relaxed);
}
