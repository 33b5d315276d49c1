// A stub core for driving the relay without sockets (the handle_ng unit tests and the ng fuzz
// target): sockets are numbers, port_bind hands out pairs until `ports_left` runs out, and
// closing a socket that is not open is recorded (the fuzz target aborts on it).
#pragma once

#include <junction/abi.h>

#include <set>
#include <vector>

namespace rtp_relay::testing {

struct StubCore {
  std::set<jn_handle> open;
  jn_handle next = 100;
  uint32_t next_port = 20000;
  int ports_left = 1000;
  uint32_t next_bus = 1;
  int events = 0;
  int bad_closes = 0;  // udp_close of a socket not open (twice, or never bound)
  uint64_t now = 1000;
  // The last anchor reply: its status and a copy of the streams it returned.
  jn_status anchor_status = 1;
  std::vector<jn_media_stream> anchor_out;
};

inline StubCore& stub(jn_host_ctx* ctx) { return *reinterpret_cast<StubCore*>(ctx); }
inline jn_host_ctx* ctx_of(StubCore& k) { return reinterpret_cast<jn_host_ctx*>(&k); }

inline jn_host_api stub_api(int log_level = JN_LOG_DEBUG) {
  jn_host_api api{};
  api.struct_size = sizeof api;
  api.abi_major = JN_ABI_MAJOR;
  api.abi_minor = JN_ABI_MINOR;
  api.log = [](jn_host_ctx*, int, jn_str) {};
  api.log_level = log_level == JN_LOG_DEBUG ? [](jn_host_ctx*) { return static_cast<int>(JN_LOG_DEBUG); }
                                            : [](jn_host_ctx*) { return static_cast<int>(JN_LOG_ERROR); };
  api.set_error = [](jn_host_ctx*, jn_str) {};
  api.now_ms = [](jn_host_ctx* c) { return stub(c).now; };
  api.port_bind = [](jn_host_ctx* c, const jn_port_request* r, jn_handle* out, uint32_t* port) -> jn_status {
    StubCore& k = stub(c);
    if (k.ports_left-- <= 0) return JN_ERR_LIMIT;
    out[0] = k.next++;
    out[1] = r->pair ? k.next++ : 0;
    k.open.insert(out[0]);
    if (out[1]) k.open.insert(out[1]);
    *port = k.next_port;
    k.next_port += 2;
    return JN_OK;
  };
  api.udp_close = [](jn_host_ctx* c, jn_handle h) -> jn_status {
    if (!stub(c).open.erase(h)) ++stub(c).bad_closes;
    return JN_OK;
  };
  api.bus_intern = [](jn_host_ctx* c, jn_str, uint32_t* id) -> jn_status {
    *id = stub(c).next_bus++;
    return JN_OK;
  };
  api.bus_release_id = [](jn_host_ctx*, uint32_t) -> jn_status { return JN_OK; };
  api.event_publish = [](jn_host_ctx* c, jn_str, jn_str) -> jn_status {
    ++stub(c).events;
    return JN_OK;
  };
  api.counter_add = [](jn_host_ctx*, jn_str, jn_str, uint64_t) {};
  api.gauge_set = [](jn_host_ctx*, jn_str, jn_str, double) {};
  api.anchor_reply = [](jn_host_ctx* c, jn_handle, jn_status st, const jn_media_desc* d) -> jn_status {
    StubCore& k = stub(c);
    k.anchor_status = st;
    k.anchor_out.clear();
    for (uint32_t i = 0; d && i < d->count; ++i) k.anchor_out.push_back(d->streams[i] ? *d->streams[i] : jn_media_stream{});
    return JN_OK;
  };
  return api;
}

}  // namespace rtp_relay::testing
