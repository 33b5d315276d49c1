// handle_ng without sockets: the ng commands driven through a stub host whose port_bind hands out
// fake handles. Checks what a fuzz target of the command handling relies on (every request gets
// a reply dictionary, nothing leaks) and that a command locks only its call's shard.
#include "relay.hpp"

#include <doctest/doctest.h>

#include <set>

namespace {

using rtp_relay::Value;

// The stub core: sockets are numbers; port_bind fails once `ports_left` pairs are out.
struct StubCore {
  std::set<jn_handle> open;
  jn_handle next = 100;
  uint32_t next_port = 20000;
  int ports_left = 1000;
  uint32_t next_bus = 1;
  int events = 0;
  uint64_t now = 1000;
};

StubCore& core(jn_host_ctx* ctx) { return *reinterpret_cast<StubCore*>(ctx); }

jn_host_api make_api() {
  jn_host_api api{};
  api.struct_size = sizeof api;
  api.log = [](jn_host_ctx*, int, jn_str) {};
  api.log_level = [](jn_host_ctx*) { return static_cast<int>(JN_LOG_DEBUG); };
  api.set_error = [](jn_host_ctx*, jn_str) {};
  api.now_ms = [](jn_host_ctx* c) { return core(c).now; };
  api.port_bind = [](jn_host_ctx* c, const jn_port_request* r, jn_handle* out, uint32_t* port) -> jn_status {
    StubCore& k = core(c);
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
    core(c).open.erase(h);
    return JN_OK;
  };
  api.bus_intern = [](jn_host_ctx* c, jn_str, uint32_t* id) -> jn_status {
    *id = core(c).next_bus++;
    return JN_OK;
  };
  api.bus_release_id = [](jn_host_ctx*, uint32_t) -> jn_status { return JN_OK; };
  api.event_publish = [](jn_host_ctx* c, jn_str, jn_str) -> jn_status {
    ++core(c).events;
    return JN_OK;
  };
  return api;
}

Value cmd(rtp_relay::Relay& r, const char* command, std::initializer_list<std::pair<const char*, std::string>> kv = {}) {
  Value d = Value::dict();
  d.set("command", command);
  for (auto& [k, v] : kv) d.set(k, v);
  return rtp_relay::handle_ng(r, d);
}
std::string sdp_offer(int port) {
  return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio " + std::to_string(port) +
         " RTP/AVP 0\r\na=sendrecv\r\n";
}
std::string result(const Value& v) { return std::string(v.get_str("result").value_or("")); }

}  // namespace

TEST_CASE("handle_ng: commands over a stub host, shard-local locking, no leaked sockets") {
  StubCore k;
  jn_host_api api = make_api();
  rtp_relay::RelayConf conf;
  rtp_relay::Relay r(junction::sdk::Host(&api, reinterpret_cast<jn_host_ctx*>(&k)), conf, 2);

  CHECK(result(cmd(r, "ping")) == "pong");
  CHECK(result(rtp_relay::handle_ng(r, Value::string("not a dict"))) == "error");
  CHECK(result(cmd(r, "frob")) == "error");
  CHECK(result(cmd(r, "offer", {{"call-id", "c1"}, {"from-tag", "f"}, {"sdp", "garbage"}})) == "error");
  CHECK(k.open.empty());

  Value o1 = cmd(r, "offer", {{"call-id", "c1"}, {"from-tag", "f1"}, {"sdp", sdp_offer(5000)}});
  REQUIRE(result(o1) == "ok");
  CHECK(k.open.size() == 4);  // two sides, an RTP/RTCP pair each
  CHECK(k.events == 1);       // rtp-relay.session.created
  Value o2 = cmd(r, "offer", {{"call-id", "c2"}, {"from-tag", "f2"}, {"sdp", sdp_offer(5002)}});
  REQUIRE(result(o2) == "ok");
  int64_t loop1 = cmd(r, "query", {{"call-id", "c1"}}).get_int("media loop").value_or(-1);
  int64_t loop2 = cmd(r, "query", {{"call-id", "c2"}}).get_int("media loop").value_or(-1);
  CHECK(std::set<int64_t>{loop1, loop2} == std::set<int64_t>{1, 2});

  // Commands for c1 take c1's shard only.
  uint64_t other_before = r.shards_[static_cast<size_t>(loop2)]->control_locks.get();
  uint64_t own_before = r.shards_[static_cast<size_t>(loop1)]->control_locks.get();
  CHECK(result(cmd(r, "answer", {{"call-id", "c1"}, {"from-tag", "f1"}, {"to-tag", "t1"}, {"sdp", sdp_offer(6000)}})) == "ok");
  CHECK(result(cmd(r, "forward", {{"call-id", "c1"}, {"from-tag", "f1"}, {"address", "127.0.0.1:7000"}})) == "ok");
  CHECK(k.open.size() == 10);
  CHECK(result(cmd(r, "unforward", {{"call-id", "c1"}, {"from-tag", "f1"}, {"address", "127.0.0.1:7000"}})) == "ok");
  CHECK(k.open.size() == 8);
  CHECK(result(cmd(r, "subscribe request", {{"call-id", "c1"}, {"from-tag", "f1"}, {"to-tag", "s"}})) == "ok");
  CHECK(result(cmd(r, "unsubscribe", {{"call-id", "c1"}, {"to-tag", "s"}})) == "ok");
  CHECK(result(cmd(r, "delete", {{"call-id", "c1"}})) == "ok");
  CHECK(r.shards_[static_cast<size_t>(loop2)]->control_locks.get() == other_before);
  CHECK(r.shards_[static_cast<size_t>(loop1)]->control_locks.get() > own_before);
  CHECK(k.open.size() == 4);  // c1's sockets all closed
  CHECK(result(cmd(r, "query", {{"call-id", "c1"}})) == "error");

  // Out of ports half-way through a call's streams: an error, the call gone, nothing left open.
  k.ports_left = 1;
  Value o3 = cmd(r, "offer", {{"call-id", "c3"}, {"from-tag", "f3"}, {"sdp", sdp_offer(5004)}});
  CHECK(result(o3) == "error");
  CHECK(std::string(o3.get_str("error-reason").value_or("")) == "Ran out of ports");
  CHECK(k.open.size() == 4);
  CHECK(result(cmd(r, "query", {{"call-id", "c3"}})) == "error");
  CHECK(result(cmd(r, "delete", {{"call-id", "c2"}})) == "ok");
  CHECK(k.open.empty());
}
