// The intercom wire protocol (../shared/seeds/000_820875a89618f866.txt, v0.4), without I/O:
// message parsing and encoding, the src/dest endpoint fields with every spelling the document
// uses, and the stream-address rules of its section 5. Pure, so it is fuzzed and unit-tested
// on its own (fuzz/fuzz_message.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace intercom {

// CallPeerType, section 2.1.
enum PeerType : int { kInnerBox = 1, kInnerScreen = 2, kOuterBox = 3, kPropertyApp = 4, kPropertyCenter = 5 };
inline bool valid_peer_type(int t) { return t >= kInnerBox && t <= kPropertyCenter; }
// Home side: a device of a household (a screen, or another household's box); a call between two
// home sides streams through the center stream server (case 5).
inline bool home_side(int t) { return t == kInnerBox || t == kInnerScreen; }
// Only screens sit on the home network behind the box; everyone else is on the community network.
inline bool on_home_network(int t) { return t == kInnerScreen; }
const char* peer_type_name(int t);

// --- messages ----------------------------------------------------------------------------
struct Message {
  std::string id;
  std::string name;
  nlohmann::json values;  // object or array
};

// The one error message the box sends (documented in the plugin README):
//   {"id": <id of the offending message or "">, "name": "error",
//    "values": {"code": <int>, "reason": <word>, "message": <text>}}
struct Error {
  int code = 400;
  std::string reason;
  std::string message;
  std::string id;
};

// Parses one frame (without its \0). Whitespace around the JSON is allowed (the document's own
// example puts newlines around the separators). false with err filled on: bad JSON (bad-json),
// not an object / no string name / values neither object nor array / id not a string or number
// (bad-message).
bool parse_message(std::string_view frame, Message& out, Error& err);
// True when the frame holds only whitespace (ignored, not an error).
bool blank(std::string_view frame);

std::string encode(std::string_view id, std::string_view name, const nlohmann::json& values);
std::string encode_error(const Error& e);

// A string field that may arrive as a string or a number (ids, sids, ports); "" when absent.
// false when present with another type.
bool read_text(const nlohmann::json& obj, std::string_view key, std::string& out);

// --- endpoints (values.src / values.dest) ------------------------------------------------
struct Endpoint {
  std::string id;
  int type = 0;  // 0 = not given
  std::string ip;
  int port = 0;
  std::string audio;  // a stream id ("56780") or a stream URL ("http://11.0.1.22:954/stream/56780")
  std::string video;
  bool any_stream() const { return !audio.empty() || !video.empty(); }
  bool empty() const { return id.empty() && type == 0 && ip.empty() && port == 0 && !any_stream(); }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Endpoint, id, type, ip, port, audio, video)

// Reads an endpoint object, accepting every spelling of the stream fields the document uses
// (audiostreamid, audio_stream_id, audio_tream_id, and the same for video). false + why when
// the value or one of its fields has the wrong type.
bool read_endpoint(const nlohmann::json& v, Endpoint& out, std::string& why);
// Writes it with the v0.4 table's spelling (audiostreamid, videostreamid); empty fields omitted.
nlohmann::json write_endpoint(const Endpoint& e);

// --- stream addresses (section 5) ---------------------------------------------------------
// Which stream server carries a call's media:
//   Box    the box's own SRS, reachable from both networks: exactly one side is a home side
//          (cases 1-4: screen <-> outer box / property app);
//   Center the center stream server, through the box's NAT: both sides are home sides (case 5);
//   Caller the caller's own stream server S: neither side is (cases 6, 7).
enum class Server { Box, Center, Caller };
Server server_for(int caller_type, int callee_type);
const char* server_name(Server s);

struct Network {
  std::string home_addr = "192.168.1.22";     // the box on the home network (screens)
  std::string community_addr = "11.0.1.22";   // the box on the community network
  int stream_port = 954;                      // the box's SRS
  std::string stream_path = "/stream/";
  std::string center_stream = "http://11.0.0.10:954/stream/";  // center server URL prefix
};

bool is_url(std::string_view v);
std::string url_host(std::string_view url);  // "11.0.1.22" of "http://11.0.1.22:954/x"; "" if none
int url_port(std::string_view url);          // 954, or the scheme's default, or 0
std::string bare_id(std::string_view v);     // the last path segment of a URL, or v itself
// A URL that points at this box (either address) or at the center stream server: its stream is
// one of ours, re-derived from its id whenever the server of the call is known.
bool ours(std::string_view v, const Network& n);

// The stream as a device on the community network reaches it (the neutral form other plugins see).
std::string neutral_url(std::string_view v, Server s, const Network& n);
// The value to send to a device of peer_type: a screen gets the bare stream id (it prefixes its
// own home-network address R, section 5), a community device gets the full community URL.
std::string view_for(std::string_view v, Server s, int peer_type, const Network& n);
Endpoint view_endpoint(const Endpoint& e, Server s, int peer_type, const Network& n);
Endpoint neutral_endpoint(const Endpoint& e, Server s, const Network& n);

// --- address prefixes (the door allow-list) -----------------------------------------------------
// "127.0.0.0/8", "10.1.2.3", "::1", "fd00::/8". IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match
// IPv4 prefixes, as a dual-stack listener reports IPv4 peers that way.
struct Cidr {
  int family = 0;  // 4 or 6
  uint8_t addr[16] = {};
  int bits = 0;
};
bool parse_ip(std::string_view text, int& family, uint8_t out[16]);  // no brackets, no port
bool parse_cidr(std::string_view text, Cidr& out);
bool cidr_match(const Cidr& c, int family, const uint8_t ip[16]);

// The fixed vocabulary of message names used as a metric label: a name of the protocol, or
// "unknown" (remote input never becomes a label of its own).
std::string_view name_label(std::string_view name);

// --- k=v;k=v params (jn_media_stream.params), values percent-encoded -----------------------
std::string param_escape(std::string_view v);
std::string param_get(std::string_view params, std::string_view key);

}  // namespace intercom
