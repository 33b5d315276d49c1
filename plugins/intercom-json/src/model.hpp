// intercom-json: the session model (README "Source layout"): the plugin's conf, the devices'
// connections and the calls they are part of. Conn, Party and Call are what a hot reload carries
// (state.cpp), so each has its JSON mapping here.
#pragma once

#include <junction/plugin.hpp>
#include <junction/util/addr.hpp>

#include "protocol.hpp"

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace intercom_json {

using junction::sdk::Host;
using junction::sdk::to_jn;
using junction::sdk::to_sv;
using nlohmann::json;
using namespace intercom;

inline int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

inline std::string addr_text(const jn_addr& a) { return junction::util::format_addr(a); }

// The host part of "ip:port" / "[v6%zone]:port", without brackets or zone (what protocol
// fields and door_allow prefixes hold).
inline std::string peer_host(const std::string& peer) {
  std::string h = peer.substr(0, peer.rfind(':'));
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (size_t pct = h.find('%'); pct != std::string::npos) h.resize(pct);
  return h;
}

// A dotted IPv4 address (no port), as device messages carry them.
inline bool parse_ipv4(std::string_view s, jn_addr& out) {
  out = jn_addr{};
  jn_addr a{};
  if (!junction::util::parse_ip(s, a) || a.family != 4) return false;
  out = a;
  return true;
}

// --- configuration -------------------------------------------------------------------------
struct Conf {
  std::string listen = "127.0.0.1:7601";
  uint32_t max_message = 65536;
  std::string secret;
  int64_t token_ttl_s = 365LL * 86400;
  uint64_t keep_interval_ms = 5000;
  uint32_t keep_max_missed = 3;
  uint32_t bad_limit = 5;
  uint64_t bad_window_ms = 60000;
  bool require_join = true;
  // Door units never join (document 000: only screens send join_family); their unjoined call_req
  // is accepted from these prefixes even with require_join. Default: loopback only.
  std::vector<std::string> door_allow_text = {"127.0.0.0/8", "::1"};
  std::vector<Cidr> door_allow;  // parsed from door_allow_text
  // Off by default: with it, a call_req naming dest.ip/port makes the box open a TCP connection
  // to any address a device chooses.
  bool dial_out = false;
  // call_req flood limit per connection: a token bucket of call_req_burst refilled at
  // call_req_per_min (0: no limit).
  uint32_t call_req_per_min = 60;
  uint32_t call_req_burst = 10;
  int foreign_peer_type = kOuterBox;
  Network net;
  // Screen -> bus (README "Media on the bus"): a far leg that wants bus streams gets the
  // screen's HTTP-FLV streams, pulled from the stream server, as intercom-json/<sid>/video|audio.
  bool bus_media = true;
  std::string stream_pull_url = "http://127.0.0.1:954/stream/{id}";  // how the box reaches its SRS
  std::string bus_audio_codec = "PCMA";  // what a screen's audio is announced as (PCMA | PCMU)
  uint64_t pull_retry_ms = 500;          // first reconnect delay, doubled up to pull_retry_max_ms
  uint64_t pull_retry_max_ms = 8000;
  uint32_t pull_idle_ms = 10000;         // no bytes for this long: reconnect
  uint32_t pull_max_tag_bytes = 2u << 20;  // a bigger FLV tag ends the stream (bounded buffer)
  // Bus -> screen: the far leg's bus streams published by RTMP to the stream server under the
  // stream id the screen is told to pull ("" = off).
  std::string stream_push_url = "rtmp://127.0.0.1:1935/live/{id}";
  uint32_t push_max_queue_bytes = 1u << 20;  // unacknowledged RTMP bytes before frames are dropped
};

// Reads and checks the plugin's table; every problem is reported as file:line: key: reason.
Conf read_conf(const Host& host);

// --- state ---------------------------------------------------------------------------------------
// One TCP connection: a device that connected to the box, or one the box dialled (dest.ip/port).
struct Conn {
  jn_handle h = 0;
  std::string peer;
  bool outbound = false;
  bool connected = true;
  bool joined = false;
  std::string dev, room, tid;
  int type = 0;
  uint32_t bad = 0;
  uint64_t bad_since = 0;
  uint64_t dial_call = 0;  // outbound: the call it was dialled for
  bool closing = false;
  double call_tokens = -1;  // call_req token bucket (< 0: full, not used yet)
  uint64_t call_tokens_at = 0;
  bool call_limited = false;  // refusing call_req now (logged once per flood)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Conn, h, peer, outbound, connected, joined, dev, room, tid, type, bad, bad_since,
                                                dial_call, closing, call_tokens, call_tokens_at, call_limited)

// A device's part in a call: its connection and the sid it knows the call by.
struct Party {
  jn_handle conn = 0;
  std::string sid;
  int type = 0;
  std::string dev;
  uint64_t last_rx = 0;  // keepalive clock (loop ms): last call_keep (or activity) from the device
  uint64_t last_tx = 0;  // last call_keep the box sent it
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Party, conn, sid, type, dev, last_rx, last_tx)

// One core call leg of this plugin. a_side: a device here sent call_req (the leg is an A-leg);
// otherwise the core offered the call to an intercom: URI (a B-leg) and parties are the devices
// rung (every screen of a family, until one accepts).
struct Call {
  uint64_t id = 0;  // also the leg's cookie
  jn_handle leg = 0;
  bool a_side = false;
  bool answered = false;
  bool dialing = false;  // B-leg to dest.ip/port: waiting for the TCP connect
  std::string call_id, from, to, target;
  int caller_type = 0, callee_type = 0;
  std::string caller_sid;
  Endpoint src, dest;  // neutral form (stream URLs as the community network reaches them)
  std::vector<Party> parties;
  std::string exclude_dev;  // B-leg to a room: the calling screen itself is not rung
  bool bus = false;          // the far leg wants bus streams: the screen's are pulled onto the bus
  std::string bus_base;      // "intercom-json/<sid>": + "/video", "/audio"
  std::string far_audio_bus, far_video_bus;  // the far leg's own bus streams (pushed to the screen)
  std::string push_id;       // the stream id they are pushed under (the screen pulls it)
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Call, id, leg, a_side, answered, dialing, call_id, from, to, target, caller_type,
                                                callee_type, caller_sid, src, dest, parties, exclude_dev, bus, bus_base,
                                                far_audio_bus, far_video_bus, push_id)

// "reason: message" in the neutral reason text; split back on the intercom side.
inline std::string join_reason(const std::string& reason, const std::string& message) {
  if (message.empty()) return reason;
  return (reason.empty() ? std::string("rejected") : reason) + ": " + message;
}
inline void split_reason(std::string_view text, std::string& reason, std::string& message) {
  size_t p = text.find(": ");
  if (p == std::string_view::npos) {
    reason = std::string(text);
    message.clear();
  } else {
    reason = std::string(text.substr(0, p));
    message = std::string(text.substr(p + 2));
  }
}

}  // namespace intercom_json
