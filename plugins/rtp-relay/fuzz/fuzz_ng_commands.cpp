// Fuzz: the ng command handling above the parser (handle_ng over a stub host, no sockets).
// The input is a sequence of ng messages ("cookie bencode-dict") separated by NUL bytes, run
// against one relay: offers, answers, forwards, subscriptions, queries, deletes in any order and
// with any content. Invariants: every parsed request gets a dictionary reply with a "result";
// after deleting every call the relay holds no socket (nothing leaked on any error path).
#include "ng.hpp"
#include "relay.hpp"
#include "../tests/stub_core.hpp"

#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

namespace {

using rtp_relay::Value;

using rtp_relay::testing::StubCore;

void check_reply(const Value& rep) {
  if (!rep.is_dict() || !rep.get_str("result")) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const jn_host_api api = rtp_relay::testing::stub_api(JN_LOG_ERROR);
  StubCore k;
  k.ports_left = 64;  // exhaustion half-way through a call, too
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
    if (!k.open.empty() || k.bad_closes) abort();  // a socket leaked, or closed twice, on some path
  }
  return 0;
}
