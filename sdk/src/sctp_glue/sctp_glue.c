/* libjunction_sctp_glue.so: usrsctp's process-wide output trampoline (sctp_glue.h says why).
 * This library is pinned resident and never unloaded, which is the one reason its state (an init
 * flag and a counter) may be process-wide. Plain C with no C++ runtime: nothing in it has a
 * destructor or thread-local state, so keeping it resident changes nothing at process exit. */
#include <junction/webrtc/sctp_glue.h>

#include <usrsctp.h>

#include <errno.h>
#include <pthread.h>

#define JN_GLUE_API __attribute__((visibility("default")))

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_did = 0; /* 1: initialised, not reported yet; 2: reported */
static uint64_t g_dropped = 0;

static int trampoline(void* addr, void* buf, size_t len, uint8_t tos, uint8_t set_df) {
  jn_sctp_glue_port* port = (jn_sctp_glue_port*)addr;
  jn_sctp_output_fn fn = port ? port->output : NULL;
  if (!fn) {
    __atomic_fetch_add(&g_dropped, 1, __ATOMIC_RELAXED);
    return EINVAL;
  }
  return fn(addr, buf, len, tos, set_df);
}

static void init_once(void) {
  usrsctp_init_nothreads(0, &trampoline, NULL);
  g_did = 1;
}

JN_GLUE_API int jn_sctp_glue_init(void) {
  pthread_once(&g_once, init_once);
  /* 1 once: to the first caller after the initialisation (informative only) */
  return __atomic_exchange_n(&g_did, 2, __ATOMIC_ACQ_REL) == 1;
}

JN_GLUE_API uint64_t jn_sctp_glue_dropped(void) { return __atomic_load_n(&g_dropped, __ATOMIC_RELAXED); }
