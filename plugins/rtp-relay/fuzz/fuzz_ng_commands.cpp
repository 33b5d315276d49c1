// Fuzz: the ng command handling above the parser (handle_ng over a stub host, no sockets).
// The input is a sequence of ng messages ("cookie bencode-dict") separated by NUL bytes, run
// against one relay: offers, answers, forwards, subscriptions, queries, deletes in any order and
// with any content. Invariants: every parsed request gets a dictionary reply with a "result";
// after deleting every call the relay holds no socket (nothing leaked on any error path).
#include "ng.hpp"
#include "relay.hpp"

#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

namespace {

using rtp_relay::Value;

struct Stub {
  std::set<jn_handle> open;
  jn_handle next = 100;
  uint32_t next_port = 20000;
  int ports_left = 64;
  uint32_t next_bus = 1;
};
Stub& stub(jn_host_ctx* c) { return *reinterpret_cast<Stub*>(c); }

jn_host_api stub_api() {
  jn_host_api api{};
  api.struct_size = sizeof api;
  api.abi_major = JN_ABI_MAJOR;
  api.abi_minor = JN_ABI_MINOR;
  api.log = [](jn_host_ctx*, int, jn_str) {};
  api.log_level = [](jn_host_ctx*) { return static_cast<int>(JN_LOG_ERROR); };
  api.set_error = [](jn_host_ctx*, jn_str) {};
  api.now_ms = [](jn_host_ctx*) -> uint64_t { return 1000; };
  api.port_bind = [](jn_host_ctx* c, const jn_port_request* r, jn_handle* out, uint32_t* port) -> jn_status {
    Stub& k = stub(c);
    if (k.ports_left-- <= 0) return JN_ERR_LIMIT;  // exhaustion half-way through a call, too
    out[0] = k.next++;
    out[1] = r->pair ? k.next++ : 0;
    k.open.insert(out[0]);
    if (out[1]) k.open.insert(out[1]);
    *port = k.next_port;
    k.next_port += 2;
    return JN_OK;
  };
  api.udp_close = [](jn_host_ctx* c, jn_handle h) -> jn_status {
    if (!stub(c).open.erase(h)) abort();  // closing a socket twice, or one never bound
    return JN_OK;
  };
  api.bus_intern = [](jn_host_ctx* c, jn_str, uint32_t* id) -> jn_status {
    *id = stub(c).next_bus++;
    return JN_OK;
  };
  api.bus_release_id = [](jn_host_ctx*, uint32_t) -> jn_status { return JN_OK; };
  api.event_publish = [](jn_host_ctx*, jn_str, jn_str) -> jn_status { return JN_OK; };
  api.counter_add = [](jn_host_ctx*, jn_str, jn_str, uint64_t) {};
  api.gauge_set = [](jn_host_ctx*, jn_str, jn_str, double) {};
  return api;
}

void check_reply(const Value& rep) {
  if (!rep.is_dict() || !rep.get_str("result")) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const jn_host_api api = stub_api();
  Stub k;
  rtp_relay::RelayConf conf;
  {
    rtp_relay::Relay relay(junction::sdk::Host(&api, reinterpret_cast<jn_host_ctx*>(&k)), conf, 2);
    std::string_view in(reinterpret_cast<const char*>(data), size);
    size_t n = 0;
    while (!in.empty() && n++ < 64) {
      size_t end = in.find('\0');
      std::string_view msg = in.substr(0, end);
      in = end == std::string_view::npos ? std::string_view() : in.substr(end + 1);
      auto parsed = rtp_relay::ng::parse(msg);
      if (!parsed.ok) continue;
      jn_addr from{};
      from.family = 4;
      from.ip[0] = 127;
      from.ip[3] = 1;
      from.port = 5000;
      check_reply(rtp_relay::handle_ng(relay, parsed.msg.dict, from));
    }
    // Delete every call: nothing may stay bound.
    Value list = Value::dict();
    list.set("command", "list");
    list.set("limit", Value::integer(1000000));
    Value calls = rtp_relay::handle_ng(relay, list);
    check_reply(calls);
    if (const Value* ids = calls.find("calls"); ids && ids->is_list()) {
      for (const Value& id : ids->as_list()) {
        Value del = Value::dict();
        del.set("command", "delete");
        del.set("call-id", Value::string(id.as_str()));
        check_reply(rtp_relay::handle_ng(relay, del));
      }
    }
    if (!k.open.empty()) abort();  // a socket leaked by some error path
  }
  return 0;
}
