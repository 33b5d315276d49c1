// handle_ng without sockets: the ng commands driven through a stub host whose port_bind hands out
// fake handles. Checks what a fuzz target of the command handling relies on (every request gets
// a reply dictionary, nothing leaks) and that a command locks only its call's shard; and the
// anchor adapter over the same stub (a jn_media_desc in, the relay's addresses out).
#include "relay.hpp"
#include "../stub_core.hpp"

#include <doctest/doctest.h>

#include <set>
#include <vector>

namespace {

using rtp_relay::Value;

using rtp_relay::testing::StubCore;
using rtp_relay::testing::stub;
jn_host_api make_api() { return rtp_relay::testing::stub_api(); }

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
  // Ids that are not UTF-8 text are refused before anything is bound (found by fuzzing: such an
  // id made the session announcement throw half-way through an offer).
  Value bad = cmd(r, "offer", {{"call-id", std::string("c\xf4\x32", 3)}, {"from-tag", "f"}, {"sdp", sdp_offer(5000)}});
  CHECK(result(bad) == "error");
  CHECK(std::string(bad.get_str("error-reason").value_or("")) == "call-id, from-tag and to-tag must be UTF-8 text");
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

namespace {
jn_media_stream media(const char* transport, uint16_t port, uint32_t flags = 0) {
  jn_media_stream m{};
  m.struct_size = sizeof m;
  m.kind = JN_MEDIA_AUDIO;
  m.format = junction::sdk::to_jn("PCMA");
  m.payload_type = 8;
  m.clock_rate = 8000;
  m.transport = junction::sdk::to_jn(transport);
  rtp_relay::make_addr("127.0.0.1", port, m.addr);
  m.flags = flags;
  return m;
}
void anchor(rtp_relay::Relay& r, uint32_t op, uint32_t sender, std::vector<const jn_media_stream*> streams) {
  jn_media_desc d{};
  d.struct_size = sizeof d;
  d.count = static_cast<uint32_t>(streams.size());
  d.streams = streams.data();
  jn_anchor_request req{};
  req.struct_size = sizeof req;
  req.op = op;
  req.reply = 1;
  req.call_id = junction::sdk::to_jn("jc-1");
  req.media = op == JN_ANCHOR_DELETE ? nullptr : &d;
  req.sender = sender;
  r.on_anchor(req);
}
}  // namespace

TEST_CASE("anchor: the neutral description goes into the session model directly; the relay's addresses come back") {
  StubCore k;
  jn_host_api api = make_api();
  rtp_relay::RelayConf conf;
  rtp_relay::Relay r(junction::sdk::Host(&api, reinterpret_cast<jn_host_ctx*>(&k)), conf, 0);

  // A: an RTP audio stream with its RTCP in a=rtcp-mux, and a DTLS stream the relay leaves alone.
  jn_media_stream a_audio = media("rtp/avp", 30000, JN_MS_RTCP_MUX), a_dtls = media("udp/tls/rtp/savpf", 30010);
  anchor(r, JN_ANCHOR_OFFER, 0, {&a_audio, &a_dtls});
  REQUIRE(k.anchor_status == JN_OK);
  REQUIRE(k.anchor_out.size() == 2);
  uint16_t to_b = k.anchor_out[0].addr.port;  // the relay's port toward B (B sends its media here)
  CHECK(to_b >= 20000);
  CHECK((k.anchor_out[0].flags & JN_MS_RTCP_MUX) != 0);  // A's mux offer passed on
  CHECK(k.anchor_out[1].addr.port == 30010);             // not relayable: unchanged
  CHECK(k.open.size() == 4);

  jn_media_stream b_audio = media("RTP/AVP", 40000, JN_MS_RTCP_MUX), b_dtls = media("udp/tls/rtp/savpf", 40010);
  anchor(r, JN_ANCHOR_ANSWER, 1, {&b_audio, &b_dtls});
  REQUIRE(k.anchor_status == JN_OK);
  REQUIRE(k.anchor_out.size() == 2);
  CHECK(k.anchor_out[0].addr.port != to_b);  // the relay's port toward A
  CHECK(k.anchor_out[1].addr.port == 40010);

  // The anchored call is an ordinary session: ng query sees both sides, with A's RTCP muxed
  // (answered with mux) and the addresses the description gave.
  Value q = cmd(r, "query", {{"call-id", "jc-1"}});
  REQUIRE(result(q) == "ok");
  const Value* medias = q.find("medias");
  REQUIRE((medias && medias->as_list().size() == 1));
  const auto& sides = medias->as_list()[0].find("streams")->as_list();
  CHECK(sides[0].get_str("tag") == std::optional<std::string_view>("a"));
  CHECK(sides[1].get_str("tag") == std::optional<std::string_view>("b"));
  CHECK(sides[0].get_str("rtcp-mux") == std::optional<std::string_view>("yes"));
  CHECK(sides[0].find("advertised endpoint")->get_int("port") == std::optional<int64_t>(30000));
  CHECK(sides[1].find("advertised endpoint")->get_int("port") == std::optional<int64_t>(40000));
  CHECK(result(cmd(r, "delete", {{"call-id", "jc-1"}})) == "error");  // the core's call, not an ng client's

  anchor(r, JN_ANCHOR_DELETE, 0, {});
  CHECK(k.anchor_status == JN_OK);
  CHECK(k.open.empty());
  CHECK(result(cmd(r, "query", {{"call-id", "jc-1"}})) == "error");
}
