/* The usrsctp glue: a tiny shared library (libjunction_sctp_glue.so) that owns the one function
 * pointer usrsctp keeps for the whole process, its output callback.
 *
 * usrsctp is initialised once per process and calls the output function given then for every
 * packet of every association. If that function lived in a plugin, a hot reload (the plugin's
 * code unmapped, a new copy mapped elsewhere) would leave usrsctp calling into nothing. So the
 * function usrsctp holds is this library's trampoline, and the library is pinned resident
 * (host->library_pin, RTLD_NODELETE: it is never unmapped once loaded). The trampoline reads the
 * real output from the address usrsctp hands it: every address registered with usrsctp
 * (usrsctp_register_address / sconn_addr) must point at a jn_sctp_glue_port, first member of the
 * owner's own structure, whose `output` is the owner's current code. An association lives and
 * dies with one plugin instance, so its pointer is always valid while usrsctp may use it; a new
 * instance's associations carry the new instance's function. Several plugins can use usrsctp at
 * the same time the same way.
 *
 * C ABI, no C++ types: the library outlives every plugin that uses it. */
#ifndef JUNCTION_WEBRTC_SCTP_GLUE_H
#define JUNCTION_WEBRTC_SCTP_GLUE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JN_SCTP_GLUE_SONAME "libjunction_sctp_glue.so"

typedef int (*jn_sctp_output_fn)(void* port, void* buf, size_t len, uint8_t tos, uint8_t set_df);

typedef struct jn_sctp_glue_port {
  jn_sctp_output_fn output; /* the owner's output for packets of this address; NULL drops them */
} jn_sctp_glue_port;

/* Initialises usrsctp (no-threads mode, the trampoline as its output) once per process; later
 * calls do nothing. 1: this call initialised it; 0: it was already. Thread-safe. */
int jn_sctp_glue_init(void);

/* How many packets the trampoline dropped (an address without output). */
uint64_t jn_sctp_glue_dropped(void);

#ifdef __cplusplus
}
#endif

#endif
