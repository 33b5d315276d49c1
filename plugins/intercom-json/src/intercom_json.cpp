// intercom-json: the building-intercom box of ../shared/seeds/000_820875a89618f866.txt (v0.4).
// Screens, door units (outer boxes), property apps and the property center connect over TCP and
// speak {"id","name","values"} JSON messages separated by \0. The box registers devices
// (join_family with a token it signed), routes call_req through the core's routing table, rings
// every screen of a family at once, relays accept/reject/end/open_door, enforces call_keep, and
// sends seczone_emergency alarms. See README.md beside this folder for every decision.
#include <junction/plugin.hpp>
#include <junction/util/addr.hpp>
#include <junction/util/config.hpp>
#include <junction/util/random.hpp>
#include <junction/util/state.hpp>

#include "flv_pull.hpp"

#include <junction/rtmp/publisher.hpp>
#include "protocol.hpp"
#include "token.hpp"

#include <arpa/inet.h>

#include <cctype>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using junction::sdk::Host;
using junction::sdk::to_jn;
using junction::sdk::to_sv;
using nlohmann::json;
using namespace intercom;

constexpr uint32_t kStateSchema = 1;
constexpr uint64_t kListenerCookie = 1;
constexpr uint64_t kTickCookie = 2;
// Stream pulls (screen -> bus): their TCP connections' cookie, and their retry timers' cookies
// (kPullTimerBase + the pull's id).
constexpr uint64_t kPullCookie = 3;
constexpr uint64_t kPullTimerBase = uint64_t{1} << 40;
// Pushes (bus -> screen): TCP cookie, retry timers (kPushTimerBase + id), bus subscriptions
// (kPushBusBase + id * 2 + 0 video / 1 audio).
constexpr uint64_t kPushCookie = 4;
constexpr uint64_t kPushTimerBase = uint64_t{2} << 40;
constexpr uint64_t kPushBusBase = uint64_t{3} << 40;
constexpr std::string_view kScheme = "intercom:";

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string addr_text(const jn_addr& a) { return junction::util::format_addr(a); }

// The host part of "ip:port" / "[v6%zone]:port", without brackets or zone (what protocol
// fields and door_allow prefixes hold).
std::string peer_host(const std::string& peer) {
  std::string h = peer.substr(0, peer.rfind(':'));
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (size_t pct = h.find('%'); pct != std::string::npos) h.resize(pct);
  return h;
}

// A dotted IPv4 address (no port), as device messages carry them.
bool parse_ipv4(std::string_view s, jn_addr& out) {
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
Conf read_conf(const Host& host) {
  Conf c;
  auto bad = [&](const std::string& key, const std::string& why) {
    host.config_error(key, why);
    throw std::invalid_argument(key + ": " + why);
  };
  // The first problem throws out of read_conf (bad reports it through config_error).
  junction::util::ConfigReader r(host.config(), bad);
  r.known_keys({"listen", "max_message", "secret", "token_ttl_s", "keep_interval_ms", "keep_max_missed", "bad_limit",
                "bad_window_ms", "require_join", "door_allow", "dial_out", "call_req_per_min", "call_req_burst",
                "foreign_peer_type", "network", "bus_media", "stream_pull_url", "bus_audio_codec", "pull_retry_ms",
                "pull_retry_max_ms", "pull_idle_ms", "pull_max_tag_bytes", "stream_push_url", "push_max_queue_bytes"});
  r.str("listen", c.listen, true);
  r.integer("max_message", c.max_message, 256, 16 << 20);
  r.str("secret", c.secret);
  if (!c.secret.empty() && c.secret.size() < 16) bad("secret", "must be at least 16 characters (or empty: generated)");
  r.integer("token_ttl_s", c.token_ttl_s, 1, 100LL * 365 * 86400);
  r.integer("keep_interval_ms", c.keep_interval_ms, 50, 3600000);
  r.integer("keep_max_missed", c.keep_max_missed, 1, 1000);
  r.integer("bad_limit", c.bad_limit, 1, 1000000);
  r.integer("bad_window_ms", c.bad_window_ms, 1, 86400000);
  r.boolean("require_join", c.require_join);
  if (r.has("door_allow")) {
    const json& v = r.conf()["door_allow"];
    if (!v.is_array()) bad("door_allow", "must be an array of addresses or prefixes (\"127.0.0.0/8\", \"::1\")");
    c.door_allow_text.clear();
    for (auto& e : v) {
      Cidr cidr;
      if (!e.is_string() || !parse_cidr(e.get<std::string>(), cidr))
        bad("door_allow", "'" + (e.is_string() ? e.get<std::string>() : e.dump()) +
                              "' is not an IPv4/IPv6 address or prefix (\"10.0.0.0/8\", \"fd00::/8\")");
      c.door_allow_text.push_back(e.get<std::string>());
    }
  }
  r.boolean("dial_out", c.dial_out);
  r.integer("call_req_per_min", c.call_req_per_min, 0, 6000000);
  r.integer("call_req_burst", c.call_req_burst, 1, 100000);
  r.integer("foreign_peer_type", c.foreign_peer_type, 1, 5);
  r.boolean("bus_media", c.bus_media);
  r.str("stream_pull_url", c.stream_pull_url, true);
  {
    std::string hp, path, why;
    if (!parse_pull_url(pull_url_for(c.stream_pull_url, "1"), hp, path, why))
      bad("stream_pull_url", why + " (\"http://127.0.0.1:954/stream/{id}\")");
  }
  r.str("bus_audio_codec", c.bus_audio_codec, true);
  if (c.bus_audio_codec != "PCMA" && c.bus_audio_codec != "PCMU") bad("bus_audio_codec", "must be \"PCMA\" or \"PCMU\"");
  r.integer("pull_retry_ms", c.pull_retry_ms, 10, 600000);
  r.integer("pull_retry_max_ms", c.pull_retry_max_ms, 10, 3600000);
  if (c.pull_retry_max_ms < c.pull_retry_ms) bad("pull_retry_max_ms", "must be at least pull_retry_ms");
  r.integer("pull_idle_ms", c.pull_idle_ms, 100, 3600000);
  r.integer("pull_max_tag_bytes", c.pull_max_tag_bytes, 4096, 64u << 20);
  r.str("stream_push_url", c.stream_push_url);
  if (!c.stream_push_url.empty()) {
    junction::rtmp::RtmpUrl u;
    std::string why;
    int family = 0;
    uint8_t ip[16];
    if (!junction::rtmp::parse_url(pull_url_for(c.stream_push_url, "1"), "", &u, &why))
      bad("stream_push_url", why + " (\"rtmp://127.0.0.1:1935/live/{id}\", or \"\" for no push)");
    if (!parse_ip(u.host, family, ip)) bad("stream_push_url", "the host must be an IP address");
  }
  r.integer("push_max_queue_bytes", c.push_max_queue_bytes, 65536, 256u << 20);
  junction::util::ConfigReader net = r.table("network");
  net.known_keys({"home_addr", "community_addr", "stream_port", "stream_path", "center_stream"});
  net.str("home_addr", c.net.home_addr, true);
  net.str("community_addr", c.net.community_addr, true);
  net.integer("stream_port", c.net.stream_port, 1, 65535);
  if (net.str("stream_path", c.net.stream_path, true) && net.has("stream_path") &&
      (c.net.stream_path.front() != '/' || c.net.stream_path.back() != '/'))
    bad("network.stream_path", "must start and end with '/'");
  if (net.str("center_stream", c.net.center_stream, true) && net.has("center_stream") && !is_url(c.net.center_stream))
    bad("network.center_stream", "must be a URL prefix such as \"http://11.0.0.10:954/stream/\"");
  for (auto& t : c.door_allow_text) {
    Cidr cidr;
    if (!parse_cidr(t, cidr)) bad("door_allow", "'" + t + "' is not an address or prefix");
    c.door_allow.push_back(cidr);
  }
  if (c.secret.empty()) {
    // No secret in the conf: use the one generated on first start and kept in the core's store,
    // so a shipped conf never carries a known signing key and tokens survive restarts.
    if (!host.kv_get("token-secret", c.secret) || c.secret.size() < 16) {
      if (!junction::util::random_hex(32, c.secret)) bad("secret", "not set, and no random secret could be generated");
      if (host.kv_put("token-secret", c.secret) != JN_OK) bad("secret", "not set, and the generated one could not be stored");
      host.info("generated a token signing secret (kept in the store; set 'secret' to choose one)");
    }
  }
  return c;
}

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

// One RTMP push of a far leg's bus streams to the stream server (bus -> screen).
struct Push final : junction::rtmp::PublisherCallbacks {
  std::function<void(const uint8_t*, size_t)> on_send;
  std::function<void(junction::rtmp::PublisherStatus, std::string_view)> on_state;
  uint64_t call = 0;
  std::string url, addr, video_stream, audio_stream;
  jn_handle conn = 0, timer = 0, vsub = 0, asub = 0;
  std::unique_ptr<junction::rtmp::Publisher> pub;
  uint64_t backoff_ms = 0, connects = 0, start_ms = 0, last_keyframe_req = 0;
  bool published = false, ended = false;
  // Per track (0 video, 1 audio): the first frame's pts and its ms since the push started, so
  // both tracks land on one ms clock by arrival.
  int64_t first_pts[2] = {-1, -1};
  uint64_t first_ms[2] = {0, 0};
  uint64_t video_frames = 0, audio_frames = 0;
  std::string last_error;
  void send(const uint8_t* p, size_t n) override { on_send(p, n); }
  void on_status(junction::rtmp::PublisherStatus st, std::string_view why) override { on_state(st, why); }
};

// One HTTP-FLV pull of a screen's stream onto the bus (a stream id may carry audio, video or both).
struct Pull {
  uint64_t call = 0;
  std::string url, host_port, path;
  bool audio = false, video = false;
  std::string audio_stream, video_stream;  // bus names
  jn_handle conn = 0, timer = 0;
  uint64_t backoff_ms = 0;
  bool got_frame = false;  // on this connection: the backoff restarts after a working one
  bool discont = false;    // the next frame of each track follows a reconnect
  bool ended = false;      // a bad stream: not retried
  uint32_t vseq = 0, aseq = 0;
  uint64_t video_frames = 0, audio_frames = 0, connects = 0;
  std::string last_error;
  std::unique_ptr<HttpFlvPull> http;
};

// The neutral media description built for an OFFER/ANSWER: storage stays alive while it is sent.
struct MediaOut {
  std::deque<std::string> strs;
  std::vector<jn_media_stream> streams;
  std::vector<const jn_media_stream*> ptrs;
  jn_media_desc desc{};
  jn_str keep(std::string s) {
    strs.push_back(std::move(s));
    return to_jn(strs.back());
  }
  void add(uint32_t kind, const std::string& url, const std::string& side, Server server, uint32_t direction) {
    if (url.empty()) return;
    jn_media_stream m{};
    m.struct_size = sizeof m;
    m.kind = kind;
    m.format = to_jn("FLV");
    m.transport = is_url(url) ? keep(url.substr(0, url.find("://"))) : to_jn("");
    jn_addr a{};
    if (parse_ipv4(url_host(url), a)) {
      a.port = static_cast<uint16_t>(url_port(url));
      m.addr = a;
    }
    m.direction = direction;
    m.params = keep("intercom=stream;side=" + side + ";id=" + param_escape(bare_id(url)) + ";url=" + param_escape(url) +
                    ";server=" + server_name(server));
    streams.push_back(m);
  }
  // A stream this plugin publishes on the bus (our side sends it: the direction is our own).
  void add_bus(uint32_t kind, const char* format, uint32_t clock_rate, const std::string& bus_stream, uint32_t direction) {
    jn_media_stream m{};
    m.struct_size = sizeof m;
    m.kind = kind;
    m.format = to_jn(format);
    m.clock_rate = clock_rate;
    if (kind == JN_MEDIA_AUDIO) m.channels = 1;
    m.direction = direction;
    m.bus_stream = keep(bus_stream);
    m.params = to_jn("intercom=bus");
    streams.push_back(m);
  }
  void add_data(const std::string& params) {
    jn_media_stream m{};
    m.struct_size = sizeof m;
    m.kind = JN_MEDIA_DATA;
    m.format = to_jn("intercom-call");
    m.transport = to_jn("tcp");
    m.direction = JN_DIR_SENDRECV;
    m.params = keep(params);
    streams.push_back(m);
  }
  const jn_media_desc* finish() {
    ptrs.clear();
    for (auto& s : streams) ptrs.push_back(&s);
    desc.struct_size = sizeof desc;
    desc.count = static_cast<uint32_t>(ptrs.size());
    desc.streams = ptrs.data();
    return &desc;
  }
};

// What an incoming neutral description says, in intercom terms.
struct MediaIn {
  Endpoint src, dest;
  std::string sid, src_dev;
  int src_type = 0, dest_type = 0;
  bool intercom = false;  // it came from this plugin (has the intercom-call data stream)
};

MediaIn read_media(const jn_media_desc* m, bool is_answer) {
  MediaIn in;
  if (!m) return in;
  for (uint32_t i = 0; i < m->count; ++i) {
    const jn_media_stream* s = m->streams[i];
    if (!s || !JN_HAS_FIELD(s, jn_media_stream, params)) continue;
    std::string_view params = to_sv(s->params);
    if (s->kind == JN_MEDIA_DATA && to_sv(s->format) == "intercom-call") {
      in.intercom = true;
      in.sid = param_get(params, "sid");
      in.src_dev = param_get(params, "src_dev");
      in.src.id = param_get(params, "src_id");
      in.src.ip = param_get(params, "src_ip");
      in.dest.id = param_get(params, "dest_id");
      in.dest.ip = param_get(params, "dest_ip");
      auto toi = [](const std::string& v) { return v.empty() ? 0 : std::atoi(v.c_str()); };
      in.src_type = toi(param_get(params, "src_type"));
      in.dest_type = toi(param_get(params, "dest_type"));
      in.src.port = toi(param_get(params, "src_port"));
      in.dest.port = toi(param_get(params, "dest_port"));
      continue;
    }
    if (s->kind != JN_MEDIA_AUDIO && s->kind != JN_MEDIA_VIDEO) continue;
    std::string url, side;
    if (param_get(params, "intercom") == "stream") {
      url = param_get(params, "url");
      side = param_get(params, "side");
    } else if (s->addr.family == 4) {
      // Another plugin's media: where it receives, as a URL ("rtp://127.0.0.1:40000").
      std::string t(to_sv(s->transport));
      url = (t.find("rtp") != std::string::npos || t.empty() ? "rtp" : t.substr(0, t.find('/'))) + "://" + addr_text(s->addr);
      side = is_answer ? "dest" : "src";
    }
    if (url.empty()) continue;
    Endpoint& e = side == "dest" ? in.dest : in.src;
    (s->kind == JN_MEDIA_AUDIO ? e.audio : e.video) = url;
  }
  return in;
}

// Whether the far leg of a call wants its media on the packet bus (README "Media on the bus"):
// it is not intercom-json itself (no intercom-call data stream), and it either names a bus
// stream of its own (verto-ws, a conference) or offers no audio/video at a network address (a
// viewer such as a recorder). A peer with RTP at an address (a SIP gateway) keeps the URLs.
bool wants_bus(const jn_media_desc* m) {
  if (!m) return true;
  bool addr_media = false;
  for (uint32_t i = 0; i < m->count; ++i) {
    const jn_media_stream* s = m->streams[i];
    if (!s) continue;
    if (s->kind == JN_MEDIA_DATA && to_sv(s->format) == "intercom-call") return false;
    if (s->kind != JN_MEDIA_AUDIO && s->kind != JN_MEDIA_VIDEO) continue;
    if (JN_HAS_FIELD(s, jn_media_stream, bus_stream) && s->bus_stream.len) return true;
    if (s->addr.family) addr_media = true;
  }
  return !addr_media;
}

// A bus stream name element from a sid: [A-Za-z0-9._-], anything else becomes '_'.
std::string bus_name(std::string_view sid) {
  std::string out;
  for (char c : sid.substr(0, 64))
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  return out.empty() ? "_" : out;
}

// "reason: message" in the neutral reason text; split back on the intercom side.
std::string join_reason(const std::string& reason, const std::string& message) {
  if (message.empty()) return reason;
  return (reason.empty() ? std::string("rejected") : reason) + ": " + message;
}
void split_reason(std::string_view text, std::string& reason, std::string& message) {
  size_t p = text.find(": ");
  if (p == std::string_view::npos) {
    reason = std::string(text);
    message.clear();
  } else {
    reason = std::string(text.substr(0, p));
    message = std::string(text.substr(p + 2));
  }
}

class IntercomJson : public junction::sdk::Plugin {
 public:
  IntercomJson(Host host, const jn_create_args& args) : Plugin(host), conf_(read_conf(host)), generation_(args.generation) {}

  // --- lifecycle ---------------------------------------------------------------------------------
  jn_status start() override {
    jn_status st = host().tcp_listen(conf_.listen, JN_FRAME_DELIM, 0, conf_.max_message, kListenerCookie, &listener_);
    if (st != JN_OK) {
      host().set_error("cannot listen on " + conf_.listen + " (status " + std::to_string(st) + ")");
      return st;
    }
    st = host().timer(tick_ms(), tick_ms(), kTickCookie, &tick_);
    if (st != JN_OK) return st;
    host().event_subscribe("alarm/");
    host().info("intercom box listening on " + conf_.listen + " (max message " + std::to_string(conf_.max_message) +
                " bytes, keepalive " + std::to_string(conf_.keep_interval_ms) + " ms x " + std::to_string(conf_.keep_max_missed) + ")");
    return JN_OK;
  }

  jn_status save_state(std::string& out) override {
    json conns = json::array();
    for (auto& [h, c] : conns_) conns.push_back(c);
    json calls = json::array();
    for (auto& [id, c] : calls_) calls.push_back(c);
    junction::util::StateOut st;
    st.set("listener", listener_).set("tick", tick_).set("tick_ms", tick_ms()).set("serial", serial_).set("msg_serial", msg_serial_);
    st.set("conns", conns).set("calls", calls).set("routes", routes_);
    // Call text from other plugins (URIs, reasons) need not be UTF-8: StateOut replaces it, so a
    // reload never fails on it (fuzz_intercom-json_session found the throw).
    out = st.encode();
    return JN_OK;
  }

  jn_status restore_state(uint32_t schema, std::string_view data) override {
    junction::util::StateIn s;
    std::string error;
    if (jn_status st = s.parse(schema, kStateSchema, kStateSchema, data, error); st != JN_OK) {
      host().set_error(error);
      return st;
    }
    s.read("listener", listener_);
    s.read("tick", tick_);
    s.read("serial", serial_);
    s.read("msg_serial", msg_serial_);
    for (auto& c : s["conns"]) {
      Conn conn = c.get<Conn>();
      conns_[conn.h] = conn;
    }
    for (auto& c : s["calls"]) {
      Call call = c.get<Call>();
      calls_[call.id] = call;
    }
    s.read("routes", routes_);
    rebuild_indexes();
    // Pulls are not carried over (their reader state is not saved): the old connections are
    // closed as they speak, and each answered call on the bus pulls again.
    for (auto& [id, c] : calls_)
      if (c.bus && c.answered) {
        start_pulls(c, c.a_side ? c.src : c.dest);
        if (!c.push_id.empty()) start_push(c);
      }
    // The keepalive clock is the saved last_rx/last_tx, in the loop's monotonic time: it carries
    // over. A changed keep_interval_ms takes effect with a new tick timer.
    if (s.get<uint64_t>("tick_ms", 0) != tick_ms()) {
      host().stop_timer(tick_);
      host().timer(tick_ms(), tick_ms(), kTickCookie, &tick_);
    }
    host().info("restored " + std::to_string(conns_.size()) + " connection(s) and " + std::to_string(calls_.size()) +
                " call leg(s) from generation " + std::to_string(generation_ ? generation_ - 1 : 0));
    return JN_OK;
  }

  // --- TCP -------------------------------------------------------------------------------------
  void on_tcp(const jn_tcp_event& ev) override {
    if (ev.cookie == kPullCookie) return on_pull_tcp(ev);
    if (ev.cookie == kPushCookie) return on_push_tcp(ev);
    switch (ev.type) {
      case JN_TCP_ACCEPTED: {
        Conn c;
        c.h = ev.conn;
        c.peer = addr_text(ev.peer);
        conns_[ev.conn] = c;
        host().debug("connection from " + c.peer);
        gauge();
        return;
      }
      case JN_TCP_CONNECTED: return on_connected(ev.conn, ev.peer);
      case JN_TCP_FRAME: return on_frame(ev.conn, std::string_view(reinterpret_cast<const char*>(ev.data), ev.len));
      case JN_TCP_OVERSIZE: {
        Error e;
        e.code = 413;
        e.reason = "oversized";
        e.message = "message of " + std::to_string(ev.len) + "+ bytes exceeds the limit of " + std::to_string(conf_.max_message) +
                    " bytes; skipped up to the next \\0";
        return bad_input(ev.conn, e);
      }
      case JN_TCP_CLOSED: return on_closed(ev.conn, ev.status);
      default: return;
    }
  }

  // --- timers ------------------------------------------------------------------------------------
  void on_timer(jn_handle, uint64_t cookie) override {
    if (cookie == kTickCookie) keepalive_tick();
    if (cookie >= kPushTimerBase && cookie < kPushBusBase) return push_retry_due(cookie - kPushTimerBase);
    if (cookie >= kPullTimerBase && cookie < kPushTimerBase) return pull_retry_due(cookie - kPullTimerBase);
  }

  // --- alarms from other plugins (and POST /api/v1/events) ---------------------------------------
  void on_event(std::string_view topic, std::string_view text) override {
    json j = json::parse(text, nullptr, false);
    if (!j.is_object()) {
      host().warn("alarm event " + std::string(topic) + " ignored: the data is not a JSON object");
      return;
    }
    json r = raise_alarm(j, std::string(topic));
    host().info("alarm " + std::string(topic) + " sent to " + std::to_string(r["sent"].get<int>()) + " screen(s)");
  }

  // --- calls from the core ---------------------------------------------------------------------------
  void on_call(jn_handle leg, uint64_t cookie, const jn_call_event& ev) override {
    if (cookie == 0 && ev.type == JN_CALL_OFFER) return incoming_offer(leg, ev);
    auto it = calls_.find(cookie);
    if (it == calls_.end()) {
      host().debug("event " + std::to_string(ev.type) + " for a call leg no longer known here (cookie " + std::to_string(cookie) + ")");
      return;
    }
    if (it->second.a_side) return a_leg_event(it->second.id, ev);
    return b_leg_event(it->second.id, ev);
  }

  // --- admin ---------------------------------------------------------------------------------------
  void on_admin(const jn_admin_request& req) override {
    std::string verb(to_sv(req.verb));
    std::string_view text = to_sv(req.body);
    json body = text.empty() ? json::object() : json::parse(text, nullptr, false);
    if (!body.is_object()) return reply(req, 400, {{"error", "the body must be a JSON object"}});
    try {
      if (verb == "issue-token") return issue_token(req, body);
      if (verb == "revoke-token") return revoke_token(req, body);
      if (verb == "list-devices") return reply(req, 200, list_devices());
      if (verb == "list-tokens") return reply(req, 200, list_tokens());
      if (verb == "alarm") {
        json r = raise_alarm(body, "admin");
        return reply(req, 200, r);
      }
      if (verb == "calls") {
        json arr = json::array();
        for (auto& [id, c] : calls_) {
          json j = c;
          j["server"] = server_name(server_for(c.caller_type, c.callee_type));
          arr.push_back(j);
        }
        return reply(req, 200, arr);
      }
      if (verb == "pulls") return reply(req, 200, list_pulls());
      if (verb == "pushes") return reply(req, 200, list_pushes());
      if (verb == "info") {
        return reply(req, 200, {{"generation", generation_}, {"listen", conf_.listen}, {"connections", conns_.size()},
                                {"joined", devices_.size()}, {"calls", calls_.size()}, {"routes", routes_}});
      }
    } catch (const json::exception& e) {
      return reply(req, 400, {{"error", std::string("bad body: ") + e.what()}});
    }
    reply(req, 404, {{"error", "unknown command '" + verb +
                                   "' (issue-token, revoke-token, list-devices, list-tokens, alarm, calls, pulls, pushes, info)"}});
  }

 private:
  // ================================================================================================
  // helpers
  // ================================================================================================
  uint64_t tick_ms() const { return std::clamp<uint64_t>(conf_.keep_interval_ms / 4, 20, 1000); }
  bool door_allowed(const std::string& peer) const {
    int family = 0;
    uint8_t ip[16];
    if (!parse_ip(peer_host(peer), family, ip)) return false;
    for (const Cidr& c : conf_.door_allow)
      if (cidr_match(c, family, ip)) return true;
    return false;
  }
  uint64_t now() { return host().now_ms(); }
  std::string next_msg_id() { return "box-" + std::to_string(++msg_serial_); }

  void reply(const jn_admin_request& req, int status, const json& j) {
    host().admin_reply(req.reply, status, j.dump(-1, ' ', false, json::error_handler_t::replace));  // see save_state
  }

  void gauge() {
    host().gauge_set("intercom_connections", static_cast<double>(conns_.size()));
    host().gauge_set("intercom_call_legs", static_cast<double>(calls_.size()));
  }

  Conn* conn(jn_handle h) {
    auto it = conns_.find(h);
    return it == conns_.end() ? nullptr : &it->second;
  }
  Call* call(uint64_t id) {
    auto it = calls_.find(id);
    return it == calls_.end() ? nullptr : &it->second;
  }

  void send(jn_handle h, std::string_view name, const json& values, std::string_view id = {}) {
    Conn* c = conn(h);
    if (!c || !c->connected) return;
    std::string frame = encode(id.empty() ? next_msg_id() : std::string(id), name, values);
    jn_status st = host().tcp_send(h, frame);
    if (st != JN_OK) host().warn("send " + std::string(name) + " to " + c->peer + " failed (status " + std::to_string(st) + ")");
    host().counter_add("intercom_messages_sent_total", 1, "name=\"" + std::string(name) + "\"");
  }

  void send_error(jn_handle h, const Error& e) {
    Conn* c = conn(h);
    if (!c || !c->connected) return;
    host().tcp_send(h, encode_error(e));
  }

  // Bad input: an error reply, a log line, a counter; too many within the window -> disconnect.
  void bad_input(jn_handle h, const Error& e) {
    Conn* c = conn(h);
    if (!c) return;
    host().counter_add("intercom_bad_messages_total", 1, "reason=\"" + e.reason + "\"");
    host().warn("bad message from " + c->peer + (c->dev.empty() ? "" : " (" + c->dev + ")") + ": " + e.reason + ": " + e.message);
    send_error(h, e);
    uint64_t t = now();
    if (c->bad == 0 || t - c->bad_since > conf_.bad_window_ms) {
      c->bad = 0;
      c->bad_since = t;
    }
    if (++c->bad >= conf_.bad_limit && !c->closing) {
      Error bye;
      bye.code = 429;
      bye.reason = "too-many-errors";
      bye.message = std::to_string(c->bad) + " bad messages within " + std::to_string(conf_.bad_window_ms) + " ms: disconnecting";
      send_error(h, bye);
      host().warn("disconnecting " + c->peer + ": " + bye.message);
      c->closing = true;
      host().tcp_close(h);
    }
  }

  // An error that is not the peer's fault (a stale sid, a call that just ended): replied, not counted.
  void soft_error(jn_handle h, const std::string& id, int code, const std::string& reason, const std::string& message) {
    Error e;
    e.id = id;
    e.code = code;
    e.reason = reason;
    e.message = message;
    host().debug("error to " + (conn(h) ? conn(h)->peer : std::string("?")) + ": " + reason + ": " + message);
    send_error(h, e);
  }

  void rebuild_indexes() {
    by_party_.clear();
    devices_.clear();
    rooms_.clear();
    for (auto& [h, c] : conns_) {
      if (!c.joined) continue;
      devices_[c.dev] = h;
      if (c.type == kInnerScreen) rooms_[c.room].insert(h);
    }
    for (auto& [id, c] : calls_)
      for (auto& p : c.parties) by_party_[{p.conn, p.sid}] = id;
  }

  void add_route(const std::string& uri) {
    if (routes_.count(uri)) return;
    jn_handle h = 0;
    jn_status st = host().route_add(uri, &h);
    if (st == JN_OK) routes_[uri] = h;
    else host().warn("route_add " + uri + " failed (status " + std::to_string(st) + "); calls still reach it through the intercom namespace");
  }
  void remove_route(const std::string& uri) {
    auto it = routes_.find(uri);
    if (it == routes_.end()) return;
    host().route_remove(it->second);
    routes_.erase(it);
  }

  // ================================================================================================
  // frames
  // ================================================================================================
  void on_frame(jn_handle h, std::string_view frame) {
    Conn* c = conn(h);
    if (!c || c->closing) return;
    if (blank(frame)) return;
    Message m;
    Error e;
    if (!parse_message(frame, m, e)) return bad_input(h, e);
    // The label is one of the protocol's names or "unknown": a remote peer (joined or not) must
    // not create metric series at will.
    host().counter_add("intercom_messages_received_total", 1, "name=\"" + std::string(name_label(m.name)) + "\"");
    if (m.name == "join_family") return on_join(h, m);
    if (m.name == "call_req") return on_call_req(h, m);
    if (m.name == "call_accept" || m.name == "call_reject" || m.name == "call_end" || m.name == "call_keep" ||
        m.name == "open_door")
      return on_call_message(h, m);
    if (m.name == "error") {
      host().info("error message from " + c->peer + ": " + m.values.dump());
      return;
    }
    e.id = m.id;
    if (m.name == "call_in" || m.name == "call_out") {
      e.code = 404;
      e.reason = "unknown-name";
      e.message = m.name + " was removed in v0.4: use call_req";
    } else if (m.name == "join_accept" || m.name == "join_reject" || m.name == "seczone_emergency") {
      e.code = 405;
      e.reason = "unexpected-name";
      e.message = m.name + " is sent by the box, not to it";
    } else {
      e.code = 404;
      e.reason = "unknown-name";
      e.message = "unknown message name '" + (m.name.size() <= 64 ? m.name : m.name.substr(0, 64) + "...") + "'";
    }
    bad_input(h, e);
  }

  Error values_error(const Message& m, const std::string& why) {
    Error e;
    e.id = m.id;
    e.code = 422;
    e.reason = "bad-values";
    e.message = m.name + ": " + why;
    return e;
  }

  // ================================================================================================
  // registration (section 3)
  // ================================================================================================
  void on_join(jn_handle h, const Message& m) {
    std::string token;
    // A missing or non-string token is a malformed message; an empty one is a bad token
    // (join_reject, like any other token that does not verify).
    if (!m.values.is_object() || !m.values.contains("token") || !m.values["token"].is_string() || !read_text(m.values, "token", token))
      return bad_input(h, values_error(m, "'token' (string) is required"));
    Conn* c = conn(h);
    if (c->outbound) return bad_input(h, values_error(m, "join_family on a connection the box dialled"));
    TokenClaims claims;
    TokenCheck check = token_verify(conf_.secret, token, unix_now(), claims);
    std::string reason = check == TokenCheck::Ok ? "" : token_check_reason(check);
    if (reason.empty()) {
      std::string rec;
      if (host().kv_get("token/" + claims.tid, rec)) {
        json r = json::parse(rec, nullptr, false);
        if (r.is_object() && r.value("revoked", false)) reason = "revoked";
      }
    }
    if (!reason.empty()) {
      host().counter_add("intercom_join_rejected_total", 1, "reason=\"" + reason + "\"");
      host().warn("join_family from " + c->peer + " rejected: " + reason);
      send(h, "join_reject", {{"reason", reason}});
      return;
    }
    if (c->joined) unjoin(h);  // the connection re-joins (another token): drop the old identity first
    // The same device on another connection: the newer connection wins, the old one is closed.
    if (auto it = devices_.find(claims.dev); it != devices_.end() && it->second != h) {
      jn_handle old = it->second;
      host().info("device " + claims.dev + " joined again from " + c->peer + "; closing its older connection");
      unjoin(old);
      if (Conn* oc = conn(old); oc && !oc->closing) {
        oc->closing = true;
        host().tcp_close(old);
      }
    }
    c = conn(h);
    c->joined = true;
    c->dev = claims.dev;
    c->room = claims.room;
    c->type = claims.type;
    c->tid = claims.tid;
    devices_[claims.dev] = h;
    add_route("intercom:device/" + claims.dev);
    if (claims.type == kInnerScreen) {
      rooms_[claims.room].insert(h);
      add_route("intercom:room/" + claims.room);
    }
    // The family and the device persist in the store.
    std::string fam;
    if (!claims.room.empty() && !host().kv_get("family/" + claims.room, fam))
      host().kv_put("family/" + claims.room, json{{"room", claims.room}, {"created", unix_now()}}.dump());
    host().kv_put("device/" + claims.dev, json{{"id", claims.dev}, {"type", claims.type}, {"room", claims.room},
                                               {"token_id", claims.tid}, {"last_join", unix_now()}, {"peer", c->peer}}
                                              .dump());
    host().counter_add("intercom_joins_total", 1);
    host().info("device " + claims.dev + " (" + peer_type_name(claims.type) + ") joined family " + claims.room + " from " + c->peer);
    send(h, "join_accept", {{"room_id", claims.room}});
  }

  void unjoin(jn_handle h) {
    Conn* c = conn(h);
    if (!c || !c->joined) return;
    if (auto it = devices_.find(c->dev); it != devices_.end() && it->second == h) {
      devices_.erase(it);
      remove_route("intercom:device/" + c->dev);
    }
    if (c->type == kInnerScreen) {
      auto r = rooms_.find(c->room);
      if (r != rooms_.end()) {
        r->second.erase(h);
        if (r->second.empty()) {
          rooms_.erase(r);
          remove_route("intercom:room/" + c->room);
        }
      }
    }
    c->joined = false;
  }

  // ================================================================================================
  // call_req from a device: an A-leg through the core
  // ================================================================================================
  // dest -> URI: dest.id "scheme:..." as is; dest.id of a screen/box (or untyped) -> the family's
  // room; dest.id of another type -> the device; no id -> dest.ip/port (the box dials it).
  std::string dest_uri(const Endpoint& d, int& guessed_type) const {
    guessed_type = d.type;
    if (!d.id.empty()) {
      if (d.id.find(':') != std::string::npos) {
        if (!guessed_type) guessed_type = conf_.foreign_peer_type;
        return d.id;
      }
      if (d.type == 0 || d.type == kInnerScreen || d.type == kInnerBox) {
        if (!guessed_type) guessed_type = kInnerScreen;
        return "intercom:room/" + d.id;
      }
      return "intercom:device/" + d.id;
    }
    if (!d.ip.empty()) {
      if (!guessed_type) guessed_type = kOuterBox;
      return "intercom:addr/" + d.ip + ":" + std::to_string(d.port);
    }
    return {};
  }

  // One token of the connection's call_req bucket, refilled at call_req_per_min up to call_req_burst.
  bool take_call_token(Conn& c) {
    if (conf_.call_req_per_min == 0) return true;
    const uint64_t t = now();
    const double burst = conf_.call_req_burst;
    if (c.call_tokens < 0) c.call_tokens = burst;
    else c.call_tokens = std::min(burst, c.call_tokens + double(t - c.call_tokens_at) * conf_.call_req_per_min / 60000.0);
    c.call_tokens_at = t;
    if (c.call_tokens < 1) return false;
    c.call_tokens -= 1;
    return true;
  }

  void on_call_req(jn_handle h, const Message& m) {
    if (Conn* fc = conn(h); !take_call_token(*fc)) {
      // A flood: each excess call_req gets the error message and is counted; the log line is
      // written once per flood (it would flood the log too). Not counted toward bad_limit: the
      // messages are well formed.
      host().counter_add("intercom_call_req_limited_total", 1);
      if (!fc->call_limited) {
        fc->call_limited = true;
        host().warn("call_req flood from " + fc->peer + (fc->dev.empty() ? "" : " (" + fc->dev + ")") + ": refusing beyond " +
                    std::to_string(conf_.call_req_burst) + " at once and " + std::to_string(conf_.call_req_per_min) +
                    " per minute (intercom_call_req_limited_total counts the refusals)");
      }
      soft_error(h, m.id, 429, "rate-limited",
                 "more than " + std::to_string(conf_.call_req_per_min) + " call_req per minute (burst " +
                     std::to_string(conf_.call_req_burst) + ") on this connection");
      return;
    }
    conn(h)->call_limited = false;
    if (!m.values.is_object()) return bad_input(h, values_error(m, "values must be an object"));
    std::string sid, why;
    if (!read_text(m.values, "sid", sid) || sid.empty()) return bad_input(h, values_error(m, "'sid' (string) is required"));
    Endpoint src, dest;
    if (!read_endpoint(m.values.value("src", json()), src, why) || !read_endpoint(m.values.value("dest", json()), dest, why))
      return bad_input(h, values_error(m, why));
    Conn* c = conn(h);
    bool allowed_door = false;
    if (!c->joined && conf_.require_join && !c->outbound) {
      allowed_door = door_allowed(c->peer);
      if (!allowed_door) {
        host().info("call_req " + sid + " from " + c->peer + " refused: not joined, and not a door address of door_allow");
        host().counter_add("intercom_calls_refused_total", 1, "reason=\"not-joined\"");
        send(h, "call_reject", {{"sid", sid}, {"reason", "not-joined"}, {"message", "send join_family with a token first"}});
        return;
      }
    }
    if (by_party_.count({h, sid})) return soft_error(h, m.id, 409, "duplicate-sid", "a call with sid " + sid + " is already up on this connection");

    Call call;
    call.id = ++serial_;
    call.a_side = true;
    call.caller_sid = sid;
    // An allow-listed unjoined peer is a door unit, whatever src.type it claims.
    call.caller_type = c->joined ? c->type : (allowed_door || !src.type ? kOuterBox : src.type);
    if (c->joined) {
      call.from = c->type == kInnerScreen ? "intercom:room/" + c->room : "intercom:device/" + c->dev;
      if (src.id.empty()) src.id = c->type == kInnerScreen ? c->room : c->dev;
    } else {
      call.from = "intercom:addr/" + c->peer;
    }
    src.type = call.caller_type;
    if (src.ip.empty() && !c->peer.empty()) {
      src.ip = peer_host(c->peer);
    }
    int guessed = 0;
    call.to = dest_uri(dest, guessed);
    if (call.to.empty()) {
      send(h, "call_reject", {{"sid", sid}, {"reason", "no-dest"}, {"message", "dest.id or dest.ip/port is required"}});
      return;
    }
    call.callee_type = guessed;
    Server server = server_for(call.caller_type, guessed);
    call.src = neutral_endpoint(src, server, conf_.net);
    call.dest = neutral_endpoint(dest, server, conf_.net);
    Party p;
    p.conn = h;
    p.sid = sid;
    p.type = call.caller_type;
    p.dev = c->dev;
    p.last_rx = p.last_tx = now();
    call.parties.push_back(p);

    MediaOut media;
    // To another plugin (not an intercom: address) the screen's streams are also offered as bus
    // streams; they are pulled only if the answer shows the far leg wants them.
    if (conf_.bus_media && call.to.compare(0, kScheme.size(), kScheme) != 0 && call.src.any_stream()) {
      call.bus_base = unique_bus_base(sid, call.id);
      add_bus_streams(media, call, call.src, true);
    }
    add_streams(media, call.src, call.dest, server);
    media.add_data(data_params(sid, call.src, call.dest, call.caller_type, guessed, c->dev));
    const uint64_t id = call.id;
    const std::string to = call.to, from = call.from;  // the event points at these, not at `call`
    jn_call_event ev = Host::event(JN_CALL_OFFER);
    ev.from = to_jn(from);
    ev.to = to_jn(to);
    ev.media = media.finish();
    calls_[id] = std::move(call);
    by_party_[{h, sid}] = id;
    gauge();
    host().info("call_req " + sid + " from " + from + " to " + to);
    jn_handle leg = 0;
    // The core may deliver events for this leg (even its REJECT) before call_originate returns.
    jn_status st = host().call_originate(ev, id, &leg);
    Call* now_call = this->call(id);
    if (st != JN_OK) {
      if (now_call) drop_call(id);
      std::string reason = st == JN_ERR_NOT_FOUND ? "no-route" : "error";
      send(h, "call_reject", {{"sid", sid}, {"reason", reason}, {"message", "nothing routes " + to + " (status " + std::to_string(st) + ")"}});
      return;
    }
    if (now_call) now_call->leg = leg;
  }

  static void add_streams(MediaOut& media, const Endpoint& src, const Endpoint& dest, Server server) {
    // src.* are pushed by the caller, dest.* by the callee; directions are the caller's view.
    media.add(JN_MEDIA_AUDIO, src.audio, "src", server, JN_DIR_SENDONLY);
    media.add(JN_MEDIA_VIDEO, src.video, "src", server, JN_DIR_SENDONLY);
    media.add(JN_MEDIA_AUDIO, dest.audio, "dest", server, JN_DIR_RECVONLY);
    media.add(JN_MEDIA_VIDEO, dest.video, "dest", server, JN_DIR_RECVONLY);
  }

  static std::string data_params(const std::string& sid, const Endpoint& src, const Endpoint& dest, int src_type, int dest_type,
                                 const std::string& src_dev) {
    return "sid=" + param_escape(sid) + ";src_id=" + param_escape(src.id) + ";src_type=" + std::to_string(src_type) +
           ";src_ip=" + param_escape(src.ip) + ";src_port=" + std::to_string(src.port) + ";src_dev=" + param_escape(src_dev) +
           ";dest_id=" + param_escape(dest.id) + ";dest_type=" + std::to_string(dest_type) + ";dest_ip=" + param_escape(dest.ip) +
           ";dest_port=" + std::to_string(dest.port);
  }

  // Forget a call locally (its leg is dead or was never made).
  void drop_call(uint64_t id) {
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    stop_pulls(id);
    stop_push(id);
    for (auto& p : it->second.parties) by_party_.erase({p.conn, p.sid});
    std::vector<jn_handle> dialled;
    for (auto& p : it->second.parties)
      if (Conn* c = conn(p.conn); c && c->outbound && c->dial_call == id) dialled.push_back(p.conn);
    calls_.erase(it);
    // A connection the box dialled for this call is closed with it (after the queued call_end).
    for (jn_handle h : dialled)
      if (Conn* c = conn(h); c && !c->closing) {
        c->closing = true;
        host().tcp_close(h);
      }
    gauge();
  }

  // The caller's leg hears from the core.
  void a_leg_event(uint64_t id, const jn_call_event& ev) {
    Call* c = call(id);
    const Party p = c->parties.front();
    if (ev.call_id.len && c->call_id.empty()) c->call_id = std::string(to_sv(ev.call_id));
    switch (ev.type) {
      case JN_CALL_RINGING: return;  // the document has no ringing message
      case JN_CALL_ANSWER: {
        MediaIn in = read_media(ev.media, true);
        c->answered = true;
        c->target = std::string(to_sv(ev.target));
        c->callee_type = in.dest_type ? in.dest_type : (in.intercom ? c->callee_type : conf_.foreign_peer_type);
        Server server = server_for(c->caller_type, c->callee_type);
        // What the callee answered with (or what was offered, when it added nothing).
        Endpoint src = c->src, dest = c->dest;
        if (!in.src.audio.empty()) src.audio = in.src.audio;
        if (!in.src.video.empty()) src.video = in.src.video;
        if (!in.dest.audio.empty()) dest.audio = in.dest.audio;
        if (!in.dest.video.empty()) dest.video = in.dest.video;
        c->src = neutral_endpoint(src, server, conf_.net);
        c->dest = neutral_endpoint(dest, server, conf_.net);
        // The far leg wants bus streams: the calling screen's streams (src) go on the bus, under
        // the names the offer announced.
        if (conf_.bus_media && !in.intercom && wants_bus(ev.media) && !c->bus_base.empty()) {
          c->bus = true;
          start_pulls(*c, c->src);
          // Its own bus streams go to the screen under the dest id the screen named (or one of
          // ours, told in call_accept).
          if (!conf_.stream_push_url.empty()) {
            far_bus_streams(ev.media, *c);
            if (!c->far_audio_bus.empty() || !c->far_video_bus.empty()) {
              const std::string& named = !c->dest.video.empty() ? c->dest.video : c->dest.audio;
              c->push_id = named.empty() ? "jn" + bus_name(c->call_id.empty() ? std::to_string(c->id) : c->call_id) : bare_id(named);
              Endpoint d = c->dest;
              if (!c->far_audio_bus.empty() && d.audio.empty()) d.audio = c->push_id;
              if (!c->far_video_bus.empty() && d.video.empty()) d.video = c->push_id;
              c->dest = neutral_endpoint(d, server, conf_.net);
              start_push(*c);
            }
          }
        }
        c->parties.front().last_rx = c->parties.front().last_tx = now();
        json values = {{"sid", p.sid}};
        Endpoint vs = view_endpoint(c->src, server, p.type, conf_.net), vd = view_endpoint(c->dest, server, p.type, conf_.net);
        if (vs.any_stream()) values["src"] = stream_fields(vs);
        if (vd.any_stream()) values["dest"] = stream_fields(vd);
        host().info("call " + p.sid + " answered by " + c->target);
        send(p.conn, "call_accept", values);
        return;
      }
      case JN_CALL_REJECT:
      case JN_CALL_END: {
        std::string reason, message;
        split_reason(to_sv(ev.reason), reason, message);
        if (reason.empty()) reason = ev.type == JN_CALL_REJECT ? "rejected" : "hangup";
        json values = {{"sid", p.sid}, {"reason", reason}, {"message", message}, {"code", ev.code}};
        send(p.conn, ev.type == JN_CALL_REJECT ? "call_reject" : "call_end", values);
        drop_call(id);
        return;
      }
      case JN_CALL_INFO:
        if (to_sv(ev.info_type) == "open-door") send(p.conn, "open_door", {{"sid", p.sid}});
        return;
      default: return;
    }
  }

  static json stream_fields(const Endpoint& e) {
    json j = json::object();
    if (!e.audio.empty()) j["audiostreamid"] = e.audio;
    if (!e.video.empty()) j["videostreamid"] = e.video;
    return j;
  }

  // ================================================================================================
  // an OFFER to an intercom: URI: a B-leg; ring the family's screens, the device, or dial dest.ip
  // ================================================================================================
  void incoming_offer(jn_handle leg, const jn_call_event& ev) {
    std::string target(to_sv(ev.target));
    std::string from(to_sv(ev.from));
    MediaIn in = read_media(ev.media, false);
    Call call;
    call.id = ++serial_;
    call.leg = leg;
    call.call_id = std::string(to_sv(ev.call_id));
    call.from = from;
    call.to = std::string(to_sv(ev.to));
    call.target = target;
    call.caller_type = in.src_type ? in.src_type : conf_.foreign_peer_type;
    call.caller_sid = in.sid.empty() ? call.call_id : in.sid;
    call.src = in.src;
    call.dest = in.dest;
    if (!in.intercom) call.src.id = from;  // a caller of another plugin is named by its URI
    call.src.type = call.caller_type;
    call.exclude_dev = in.src_dev;
    call.bus = conf_.bus_media && !in.intercom && wants_bus(ev.media);
    if (call.bus && !conf_.stream_push_url.empty()) {
      // The far leg's own bus streams (a browser's microphone and camera) go to the screen by RTMP
      // under a stream id of ours, told to the screen as the caller's (src) streams.
      far_bus_streams(ev.media, call);
      if ((!call.far_audio_bus.empty() || !call.far_video_bus.empty()) && !call.src.any_stream()) {
        call.push_id = "jn" + bus_name(call.call_id.empty() ? std::to_string(call.id) : call.call_id);
        if (!call.far_audio_bus.empty()) call.src.audio = call.push_id;
        if (!call.far_video_bus.empty()) call.src.video = call.push_id;
      }
    }
    host().leg_set_cookie(leg, call.id);

    auto reject = [&](int code, const std::string& reason) {
      host().info("call " + call.call_id + " to " + target + " rejected: " + reason);
      host().call_send(leg, JN_CALL_REJECT, code, reason);
    };
    if (target.compare(0, kScheme.size(), kScheme) != 0) return reject(404, "not-intercom");
    std::string rest = target.substr(kScheme.size());
    std::vector<jn_handle> ring;
    if (rest.compare(0, 5, "room/") == 0) {
      std::string room = rest.substr(5);
      call.callee_type = kInnerScreen;
      if (call.dest.id.empty()) call.dest.id = room;
      if (auto r = rooms_.find(room); r != rooms_.end())
        for (jn_handle h : r->second) {
          Conn* c = conn(h);
          if (c && c->connected && !c->closing && (call.exclude_dev.empty() || c->dev != call.exclude_dev)) ring.push_back(h);
        }
      if (ring.empty()) {
        std::string fam;
        return reject(host().kv_get("family/" + room, fam) ? 480 : 404, host().kv_get("family/" + room, fam) ? "offline" : "no-such-family");
      }
    } else if (rest.compare(0, 7, "device/") == 0) {
      std::string dev = rest.substr(7);
      auto d = devices_.find(dev);
      if (d == devices_.end()) {
        std::string rec;
        return reject(host().kv_get("device/" + dev, rec) ? 480 : 404, host().kv_get("device/" + dev, rec) ? "offline" : "no-such-device");
      }
      Conn* c = conn(d->second);
      call.callee_type = c->type;
      if (call.dest.id.empty()) call.dest.id = c->type == kInnerScreen ? c->room : dev;
      ring.push_back(d->second);
    } else if (rest.compare(0, 5, "addr/") == 0) {
      if (!conf_.dial_out) return reject(403, "dial-out-disabled");
      std::string addr = rest.substr(5);
      jn_addr a{};
      size_t colon = addr.rfind(':');
      int port = colon == std::string::npos ? 0 : std::atoi(addr.c_str() + colon + 1);
      if (colon == std::string::npos || !parse_ipv4(addr.substr(0, colon), a) || port <= 0 || port > 65535)
        return reject(404, "bad-address");
      call.callee_type = valid_peer_type(in.dest_type) && !home_side(in.dest_type) ? in.dest_type : kOuterBox;
      if (call.dest.ip.empty()) call.dest.ip = addr.substr(0, colon);
      if (!call.dest.port) call.dest.port = port;
      jn_handle h = 0;
      jn_status st = host().tcp_connect(addr, JN_FRAME_DELIM, 0, conf_.max_message, 101, &h);
      if (st != JN_OK) return reject(503, "unreachable");
      Conn c;
      c.h = h;
      c.peer = addr;
      c.outbound = true;
      c.connected = false;
      c.type = call.callee_type;
      c.dev = "addr/" + addr;
      c.dial_call = call.id;
      conns_[h] = c;
      call.dialing = true;
      ring.push_back(h);
    } else {
      return reject(404, "unknown-intercom-address");
    }
    if (!call.dest.type) call.dest.type = call.callee_type;
    Server server = server_for(call.caller_type, call.callee_type);
    call.src = neutral_endpoint(call.src, server, conf_.net);
    call.dest = neutral_endpoint(call.dest, server, conf_.net);
    const uint64_t now_ms = now();
    for (jn_handle h : ring) {
      Conn* c = conn(h);
      Party p;
      p.conn = h;
      p.type = c->type;
      p.dev = c->dev;
      p.sid = by_party_.count({h, call.caller_sid}) ? call.call_id : call.caller_sid;
      p.last_rx = p.last_tx = now_ms;
      call.parties.push_back(p);
    }
    const uint64_t id = call.id;
    calls_[id] = std::move(call);
    Call& c = calls_[id];
    for (auto& p : c.parties) by_party_[{p.conn, p.sid}] = id;
    gauge();
    host().info("call " + c.call_id + " from " + from + " to " + target + ": ringing " + std::to_string(c.parties.size()) + " device(s)" +
                (c.dialing ? " (dialling)" : ""));
    if (!c.dialing)
      for (auto& p : c.parties) send_call_req(c, p);
    host().call_send(leg, JN_CALL_RINGING);
  }

  void send_call_req(const Call& c, const Party& p) {
    Server server = server_for(c.caller_type, c.callee_type);
    Endpoint src = view_endpoint(c.src, server, p.type, conf_.net);
    Endpoint dest = view_endpoint(c.dest, server, p.type, conf_.net);
    send(p.conn, "call_req", {{"sid", p.sid}, {"src", write_endpoint(src)}, {"dest", write_endpoint(dest)}});
  }

  void on_connected(jn_handle h, const jn_addr& peer) {
    Conn* cn = conn(h);
    if (!cn) return;
    cn->connected = true;
    if (peer.family) cn->peer = addr_text(peer);
    Call* c = call(cn->dial_call);
    if (!c) {
      cn->closing = true;
      host().tcp_close(h);
      return;
    }
    c->dialing = false;
    for (auto& p : c->parties)
      if (p.conn == h) send_call_req(*c, p);
  }

  // The callee's leg hears from the core (the caller hung up, the ring timed out, open_door...).
  void b_leg_event(uint64_t id, const jn_call_event& ev) {
    Call* c = call(id);
    switch (ev.type) {
      case JN_CALL_END:
      case JN_CALL_REJECT: {
        std::string reason, message;
        split_reason(to_sv(ev.reason), reason, message);
        if (reason.empty()) reason = "hangup";
        for (auto& p : c->parties)
          send(p.conn, "call_end", {{"sid", p.sid}, {"reason", reason}, {"message", message}, {"code", ev.code}});
        drop_call(id);
        return;
      }
      case JN_CALL_INFO:
        if (to_sv(ev.info_type) == "open-door")
          for (auto& p : c->parties) send(p.conn, "open_door", {{"sid", p.sid}});
        return;
      default: return;
    }
  }

  // ================================================================================================
  // call_accept / call_reject / call_end / call_keep / open_door from a device
  // ================================================================================================
  void on_call_message(jn_handle h, const Message& m) {
    std::string sid;
    if (!m.values.is_object() || !read_text(m.values, "sid", sid) || sid.empty())
      return bad_input(h, values_error(m, "'sid' (string) is required"));
    auto idx = by_party_.find({h, sid});
    if (idx == by_party_.end()) {
      if (m.name == "call_end" || m.name == "call_reject") return;  // it already ended here: nothing to do
      return soft_error(h, m.id, 404, "unknown-sid", "no call " + sid + " on this connection");
    }
    const uint64_t id = idx->second;
    Call* c = call(id);
    auto pit = std::find_if(c->parties.begin(), c->parties.end(), [&](const Party& p) { return p.conn == h && p.sid == sid; });
    pit->last_rx = now();  // any message about the call proves the device alive
    if (m.name == "call_keep") return;
    std::string reason, message;
    read_text(m.values, "reason", reason);
    read_text(m.values, "message", message);
    if (m.name == "open_door") {
      jn_call_event ev = Host::event(JN_CALL_INFO);
      ev.info_type = to_jn("open-door");
      std::string body = json{{"sid", sid}, {"by", conn(h)->dev}}.dump();
      ev.info_body = to_jn(body);
      jn_status st = host().call_send(c->leg, ev);
      host().info("open_door on call " + sid + " from " + conn(h)->dev + " (status " + std::to_string(st) + ")");
      return;
    }
    if (c->a_side) {
      if (m.name == "call_accept") return soft_error(h, m.id, 409, "bad-state", "the caller cannot accept its own call");
      // call_end / call_reject from the caller: hang up (or cancel while it rings).
      const jn_handle leg = c->leg;
      const int code = c->answered ? 200 : 487;
      std::string text = join_reason(reason.empty() ? (c->answered ? "hangup" : "cancelled") : reason, message);
      drop_call(id);
      host().call_send(leg, JN_CALL_END, code, text);
      return;
    }
    // B side: the device is a callee.
    if (m.name == "call_accept") {
      if (c->answered) return;  // a repeated accept from the winner
      Endpoint src, dest;
      std::string why;
      if (!read_endpoint(m.values.value("src", json()), src, why) || !read_endpoint(m.values.value("dest", json()), dest, why))
        return bad_input(h, values_error(m, why));
      return answer(id, h, sid, src, dest);
    }
    // call_reject, or call_end before answer (a reject), or call_end after answer (a hangup).
    if (!c->answered) {
      Party gone = *pit;
      c->parties.erase(pit);
      by_party_.erase({gone.conn, gone.sid});
      if (!c->parties.empty()) {
        host().info("call " + c->call_id + ": " + gone.dev + " declined; " + std::to_string(c->parties.size()) + " still ringing");
        return;
      }
      const jn_handle leg = c->leg;
      int code = reason == "busy" ? 486 : 603;
      std::string text = join_reason(reason.empty() ? "rejected" : reason, message);
      drop_call(id);
      host().call_send(leg, JN_CALL_REJECT, code, text);
      return;
    }
    const jn_handle leg = c->leg;
    std::string text = join_reason(reason.empty() ? "hangup" : reason, message);
    drop_call(id);
    host().call_send(leg, JN_CALL_END, 200, text);
  }

  // First call_accept wins: the other screens get call_end, the core gets ANSWER.
  void answer(uint64_t id, jn_handle h, const std::string& sid, const Endpoint& asrc, const Endpoint& adest) {
    Call* c = call(id);
    c->answered = true;
    std::vector<Party> losers;
    Party winner;
    for (auto& p : c->parties) {
      if (p.conn == h && p.sid == sid) winner = p;
      else losers.push_back(p);
    }
    c->parties.assign(1, winner);
    c->parties.front().last_rx = c->parties.front().last_tx = now();
    for (auto& p : losers) {
      by_party_.erase({p.conn, p.sid});
      send(p.conn, "call_end", {{"sid", p.sid}, {"reason", "answered-elsewhere"}, {"message", "answered by " + winner.dev}, {"code", 487}});
    }
    // Streams the callee named in its accept override the offered ones.
    Server server = server_for(c->caller_type, c->callee_type);
    if (!asrc.audio.empty()) c->src.audio = neutral_url(asrc.audio, server, conf_.net);
    if (!asrc.video.empty()) c->src.video = neutral_url(asrc.video, server, conf_.net);
    if (!adest.audio.empty()) c->dest.audio = neutral_url(adest.audio, server, conf_.net);
    if (!adest.video.empty()) c->dest.video = neutral_url(adest.video, server, conf_.net);
    MediaOut media;
    // A far leg on the bus: the screen's streams (dest: the callee pushes them) come first, as bus
    // streams, so a browser's leg picks them before the FLV descriptions.
    if (c->bus && start_pulls(*c, c->dest)) add_bus_streams(media, *c);
    if (c->bus && !c->push_id.empty()) start_push(*c);
    add_streams(media, c->src, c->dest, server);
    Endpoint dest = c->dest;
    dest.id = winner.dev;
    media.add_data(data_params(sid, c->src, dest, c->caller_type, c->callee_type, ""));
    jn_call_event ev = Host::event(JN_CALL_ANSWER);
    ev.media = media.finish();
    host().info("call " + c->call_id + " answered by " + winner.dev + (losers.empty() ? "" : ", " + std::to_string(losers.size()) + " other(s) ended"));
    host().call_send(c->leg, ev);  // may deliver to our own A-leg at once
  }

  // ================================================================================================
  // screen -> bus: HTTP-FLV pulls from the stream server (README "Media on the bus")
  // ================================================================================================
  std::string unique_bus_base(const std::string& sid, uint64_t call_id) const {
    std::string base = "intercom-json/" + bus_name(sid);
    for (auto& [id, c] : calls_)
      if (id != call_id && c.bus_base == base) return base + "-" + std::to_string(call_id);
    return base;
  }

  // offer: an OFFER (the far leg's streams are not known yet): sendrecv whenever pushes are on.
  void add_bus_streams(MediaOut& media, const Call& c, const Endpoint& e, bool offer = false) const {
    // sendrecv where the far leg's own stream of that kind is pushed to the screen.
    const bool push = offer ? !conf_.stream_push_url.empty() : !c.push_id.empty();
    if (!e.video.empty())
      media.add_bus(JN_MEDIA_VIDEO, "H264", 90000, c.bus_base + JN_MEDIA_VIDEO_SUFFIX,
                    push && (offer || !c.far_video_bus.empty()) ? JN_DIR_SENDRECV : JN_DIR_SENDONLY);
    if (!e.audio.empty())
      media.add_bus(JN_MEDIA_AUDIO, conf_.bus_audio_codec.c_str(), 8000, c.bus_base + JN_MEDIA_AUDIO_SUFFIX,
                    push && (offer || !c.far_audio_bus.empty()) ? JN_DIR_SENDRECV : JN_DIR_SENDONLY);
  }
  void add_bus_streams(MediaOut& media, const Call& c) const { add_bus_streams(media, c, c.dest); }

  // The far leg's own bus streams (the first audio and the first video that name one).
  static void far_bus_streams(const jn_media_desc* media, Call& c) {
    for (uint32_t i = 0; media && i < media->count; ++i) {
      const jn_media_stream* m = media->streams[i];
      if (!m || !JN_HAS_FIELD(m, jn_media_stream, bus_stream) || !m->bus_stream.len) continue;
      if (m->kind == JN_MEDIA_VIDEO && c.far_video_bus.empty()) c.far_video_bus = std::string(to_sv(m->bus_stream));
      if (m->kind == JN_MEDIA_AUDIO && c.far_audio_bus.empty()) c.far_audio_bus = std::string(to_sv(m->bus_stream));
    }
  }

  // Where the box pulls a stream: one of ours (a bare id, a URL on the box) through
  // stream_pull_url; another server's http:// URL as it is.
  std::string pull_url_of(const std::string& v) const {
    if (!is_url(v) || ours(v, conf_.net)) return pull_url_for(conf_.stream_pull_url, bare_id(v));
    return v;
  }

  // Starts pulling the screen's streams of e (one pull per distinct URL). False when e names none.
  bool start_pulls(Call& c, const Endpoint& e) {
    if (e.audio.empty() && e.video.empty()) return false;
    if (c.bus_base.empty()) c.bus_base = unique_bus_base(c.caller_sid, c.id);
    std::vector<uint64_t> made;
    auto add = [&](const std::string& v, bool audio) {
      if (v.empty()) return;
      std::string url = pull_url_of(v);
      for (uint64_t pid : made)
        if (pulls_[pid].url == url) {
          (audio ? pulls_[pid].audio : pulls_[pid].video) = true;
          return;
        }
      uint64_t pid = ++pull_serial_;
      Pull& p = pulls_[pid];
      p.call = c.id;
      p.url = url;
      (audio ? p.audio : p.video) = true;
      p.audio_stream = c.bus_base + JN_MEDIA_AUDIO_SUFFIX;
      p.video_stream = c.bus_base + JN_MEDIA_VIDEO_SUFFIX;
      made.push_back(pid);
    };
    add(e.video, false);
    add(e.audio, true);
    for (uint64_t pid : made) {
      Pull& p = pulls_[pid];
      host().info("call " + c.call_id + ": pulling " + p.url + " onto the bus as " + (p.video ? p.video_stream : "") +
                  (p.video && p.audio ? " and " : "") + (p.audio ? p.audio_stream : ""));
      pull_connect(pid);
    }
    return true;
  }

  void stop_pulls(uint64_t call_id) {
    for (auto it = pulls_.begin(); it != pulls_.end();) {
      if (it->second.call != call_id) {
        ++it;
        continue;
      }
      Pull& p = it->second;
      if (p.timer) host().stop_timer(p.timer);
      if (p.conn) {
        pull_conns_.erase(p.conn);
        host().tcp_close(p.conn);
      }
      host().debug("pull " + p.url + " stopped (" + std::to_string(p.video_frames) + " video, " + std::to_string(p.audio_frames) +
                   " audio frames)");
      it = pulls_.erase(it);
    }
  }

  void pull_connect(uint64_t pid) {
    Pull& p = pulls_[pid];
    std::string why;
    if (!parse_pull_url(p.url, p.host_port, p.path, why)) {
      p.ended = true;
      p.last_error = why;
      host().warn("pull " + p.url + " not started: " + why);
      return;
    }
    jn_tcp_options o = Host::tcp_options(JN_FRAME_RAW, 0, 1 << 16);
    o.idle_timeout_ms = conf_.pull_idle_ms;  // a stalled server: closed, then retried
    jn_handle h = 0;
    if (jn_status st = host().tcp_connect(p.host_port, o, kPullCookie, &h); st != JN_OK) {
      p.last_error = "connect failed (status " + std::to_string(st) + ")";
      return pull_retry_later(pid);
    }
    junction::rtmp::flv::ReaderConfig rc;
    rc.max_tag_bytes = conf_.pull_max_tag_bytes;
    p.http = std::make_unique<HttpFlvPull>(rc);
    p.conn = h;
    p.got_frame = false;
    pull_conns_[h] = pid;
  }

  void pull_retry_later(uint64_t pid) {
    Pull& p = pulls_[pid];
    if (p.ended || p.timer) return;
    // Backoff: from pull_retry_ms, doubled per failed attempt up to pull_retry_max_ms; a
    // connection that delivered frames starts over.
    p.backoff_ms = p.got_frame || !p.backoff_ms ? conf_.pull_retry_ms : std::min(conf_.pull_retry_max_ms, p.backoff_ms * 2);
    p.got_frame = false;
    p.discont = true;
    host().timer(p.backoff_ms, 0, kPullTimerBase + pid, &p.timer);
  }

  void pull_retry_due(uint64_t pid) {
    auto it = pulls_.find(pid);
    if (it == pulls_.end()) return;
    it->second.timer = 0;
    if (!it->second.ended && !it->second.conn) pull_connect(pid);
  }

  // Closes a pull's connection; retry = reconnect later (else the stream is over: a bad FLV).
  void pull_close(uint64_t pid, bool retry) {
    Pull& p = pulls_[pid];
    if (p.conn) {
      pull_conns_.erase(p.conn);
      host().tcp_close(p.conn);
      p.conn = 0;
    }
    p.http.reset();
    if (retry) pull_retry_later(pid);
    else p.ended = true;
  }

  void on_pull_tcp(const jn_tcp_event& ev) {
    auto it = pull_conns_.find(ev.conn);
    if (it == pull_conns_.end()) {
      // A pull of an earlier instance (hot reload) or of a call that ended: not ours any more.
      if (ev.type != JN_TCP_CLOSED) host().tcp_close(ev.conn);
      return;
    }
    const uint64_t pid = it->second;
    Pull& p = pulls_[pid];
    switch (ev.type) {
      case JN_TCP_CONNECTED: {
        ++p.connects;
        std::string req = HttpFlvPull::request(p.host_port, p.path);
        if (host().tcp_send(ev.conn, req) != JN_OK) pull_close(pid, true);
        return;
      }
      case JN_TCP_FRAME: {
        auto on_frame = [this, pid](const junction::media::FrameView& f) { publish_frame(pid, f); };
        junction::media::FrameSink sink = junction::media::frame_sink(on_frame);
        if (p.http->feed(ev.data, ev.len, sink)) return;
        const bool bad_flv = p.http->reader().failed();
        p.last_error = p.http->error();
        host().warn("pull " + p.url + ": " + p.last_error + (bad_flv ? ": stream ended" : ": retrying"));
        host().counter_add("intercom_pull_errors_total", 1, bad_flv ? "reason=\"flv\"" : "reason=\"http\"");
        return pull_close(pid, !bad_flv);
      }
      case JN_TCP_CLOSED: {
        pull_conns_.erase(ev.conn);
        p.conn = 0;
        p.http.reset();
        p.last_error = "closed by the stream server (status " + std::to_string(ev.status) + ")";
        host().info("pull " + p.url + ": " + p.last_error + "; retrying");
        return pull_retry_later(pid);
      }
      default: return;
    }
  }

  // One frame of a pull onto its bus stream (copied into a pool buffer: the reader's view is
  // borrowed). Per-track seq continues over reconnects; the first frame after one says DISCONT.
  void publish_frame(uint64_t pid, const junction::media::FrameView& f) {
    Pull& p = pulls_[pid];
    const bool video = f.meta.kind == JN_MEDIA_VIDEO;
    if (video ? !p.video : !p.audio) return;
    jn_buf* b = host().buf_alloc(static_cast<uint32_t>(f.size));
    if (!b) {
      host().counter_add("intercom_pull_dropped_total", 1);
      return;
    }
    std::memcpy(b->data, f.data, f.size);
    b->len = static_cast<uint32_t>(f.size);
    b->flags |= JN_BUF_MEDIA;
    b->meta = f.meta;
    b->meta.seq = video ? p.vseq++ : p.aseq++;
    if (p.discont) b->meta.frame_flags |= JN_MF_DISCONT;
    if (video) p.discont = false;  // video carries the discontinuity; audio just resumes
    p.got_frame = true;
    ++(video ? p.video_frames : p.audio_frames);
    host().bus_publish(video ? p.video_stream : p.audio_stream, b);
    host().buf_unref(b);
  }

  json list_pulls() const {
    json arr = json::array();
    for (auto& [pid, p] : pulls_) {
      auto c = calls_.find(p.call);
      arr.push_back({{"call", c == calls_.end() ? "" : c->second.call_id}, {"url", p.url},
                     {"video_stream", p.video ? p.video_stream : ""}, {"audio_stream", p.audio ? p.audio_stream : ""},
                     {"connected", p.conn != 0}, {"connects", p.connects}, {"video_frames", p.video_frames},
                     {"audio_frames", p.audio_frames}, {"ended", p.ended}, {"last_error", p.last_error}});
    }
    return arr;
  }

  // ================================================================================================
  // bus -> screen: the far leg's bus streams pushed by RTMP to the stream server
  // ================================================================================================
  void start_push(Call& c) {
    if (c.far_audio_bus.empty() && c.far_video_bus.empty()) return;
    const uint64_t pid = ++push_serial_;
    auto p = std::make_unique<Push>();
    p->call = c.id;
    p->url = pull_url_for(conf_.stream_push_url, c.push_id);
    p->video_stream = c.far_video_bus;
    p->audio_stream = c.far_audio_bus;
    p->start_ms = now();
    p->on_send = [this, pid](const uint8_t* d, size_t n) {
      Push* q = push(pid);
      if (!q || !q->conn) return;
      if (host().tcp_send(q->conn, std::string_view(reinterpret_cast<const char*>(d), n)) != JN_OK) host().tcp_close(q->conn);
    };
    p->on_state = [this, pid](junction::rtmp::PublisherStatus st, std::string_view why) { push_state(pid, st, why); };
    if (!p->video_stream.empty()) host().bus_subscribe(p->video_stream, kPushBusBase + pid * 2, &p->vsub);
    if (!p->audio_stream.empty()) host().bus_subscribe(p->audio_stream, kPushBusBase + pid * 2 + 1, &p->asub);
    host().info("call " + c.call_id + ": pushing " + (p->video_stream.empty() ? "" : p->video_stream + " ") +
                (p->audio_stream.empty() ? "" : p->audio_stream + " ") + "to " + p->url);
    pushes_[pid] = std::move(p);
    push_connect(pid);
  }

  Push* push(uint64_t pid) {
    auto it = pushes_.find(pid);
    return it == pushes_.end() ? nullptr : it->second.get();
  }

  void stop_push(uint64_t call_id) {
    for (auto it = pushes_.begin(); it != pushes_.end();) {
      Push& p = *it->second;
      if (p.call != call_id) {
        ++it;
        continue;
      }
      if (p.vsub) host().bus_unsubscribe(p.vsub);
      if (p.asub) host().bus_unsubscribe(p.asub);
      if (p.timer) host().stop_timer(p.timer);
      p.ended = true;
      if (p.conn) {
        if (p.pub) p.pub->unpublish();  // FCUnpublish + deleteStream go out before the close
        push_conns_.erase(p.conn);
        host().tcp_close(p.conn);
      }
      it = pushes_.erase(it);
    }
  }

  void push_connect(uint64_t pid) {
    Push& p = *push(pid);
    junction::rtmp::RtmpUrl u;
    std::string why;
    if (!junction::rtmp::parse_url(p.url, "", &u, &why)) {
      p.ended = true;
      p.last_error = why;
      host().warn("push " + p.url + " not started: " + why);
      return;
    }
    p.addr = (u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host) + ":" + std::to_string(u.port);
    jn_handle h = 0;
    if (jn_status st = host().tcp_connect(p.addr, Host::tcp_options(JN_FRAME_RAW, 0, 1 << 16), kPushCookie, &h); st != JN_OK) {
      p.last_error = "connect failed (status " + std::to_string(st) + ")";
      return push_retry_later(pid);
    }
    junction::rtmp::PublisherConfig pc;
    pc.url = p.url;
    pc.max_queue_bytes = conf_.push_max_queue_bytes;
    pc.metadata.video_codec = p.video_stream.empty() ? 0 : JN_CODEC_H264;
    pc.metadata.audio_codec = p.audio_stream.empty() ? 0 : (conf_.bus_audio_codec == "PCMU" ? JN_CODEC_PCMU : JN_CODEC_PCMA);
    pc.metadata.encoder = "Junction intercom-json";
    p.pub = std::make_unique<junction::rtmp::Publisher>(pc, p);
    p.conn = h;
    p.first_pts[0] = p.first_pts[1] = -1;
    push_conns_[h] = pid;
  }

  void push_retry_later(uint64_t pid) {
    Push& p = *push(pid);
    if (p.ended || p.timer) return;
    p.backoff_ms = p.published || !p.backoff_ms ? conf_.pull_retry_ms : std::min(conf_.pull_retry_max_ms, p.backoff_ms * 2);
    p.published = false;
    host().timer(p.backoff_ms, 0, kPushTimerBase + pid, &p.timer);
  }

  void push_retry_due(uint64_t pid) {
    Push* p = push(pid);
    if (!p) return;
    p->timer = 0;
    if (!p->ended && !p->conn) push_connect(pid);
  }

  void push_state(uint64_t pid, junction::rtmp::PublisherStatus st, std::string_view why) {
    Push* p = push(pid);
    if (!p) return;
    if (st == junction::rtmp::PublisherStatus::Publishing) {
      p->published = true;
      host().info("push " + p->url + ": publishing");
    } else if (st == junction::rtmp::PublisherStatus::Failed) {
      p->last_error = std::string(why);
      host().warn("push " + p->url + " failed: " + p->last_error + "; retrying");
      if (p->conn) host().tcp_close(p->conn);  // JN_TCP_CLOSED follows: retried from there
    }
  }

  void on_push_tcp(const jn_tcp_event& ev) {
    auto it = push_conns_.find(ev.conn);
    if (it == push_conns_.end()) {
      if (ev.type != JN_TCP_CLOSED) host().tcp_close(ev.conn);
      return;
    }
    const uint64_t pid = it->second;
    Push& p = *push(pid);
    switch (ev.type) {
      case JN_TCP_CONNECTED:
        ++p.connects;
        p.pub->on_connected();
        return;
      case JN_TCP_FRAME: p.pub->on_bytes(ev.data, ev.len); return;
      case JN_TCP_CLOSED:
        push_conns_.erase(ev.conn);
        p.conn = 0;
        p.pub->on_disconnected();
        if (p.last_error.empty() || p.published) p.last_error = "closed by the stream server (status " + std::to_string(ev.status) + ")";
        host().info("push " + p.url + ": " + p.last_error);
        return push_retry_later(pid);
      default: return;
    }
  }

  void on_bus(jn_handle, uint64_t cookie, jn_buf* buf) override {
    if (cookie < kPushBusBase) return;
    Push* p = push((cookie - kPushBusBase) / 2);
    auto f = junction::media::frame_of(buf);
    if (!p || !p->pub || !f.data || !f.meta.clock_rate) return;
    const int track = static_cast<int>((cookie - kPushBusBase) % 2);  // 0 video, 1 audio
    if (p->first_pts[track] < 0) {
      p->first_pts[track] = f.meta.pts;
      p->first_ms[track] = now() - p->start_ms;
    }
    auto ms = [&](int64_t t) {
      return static_cast<uint32_t>(p->first_ms[track] + (t - p->first_pts[track]) * 1000 / static_cast<int64_t>(f.meta.clock_rate));
    };
    if (track == 0) {
      p->pub->push_video(f, ms(f.meta.dts), ms(f.meta.pts));
      ++p->video_frames;
      // Video waits for a keyframe (the start, a drop): ask the far leg, at most once a second.
      if (p->pub->wants_keyframe() && now() - p->last_keyframe_req >= 1000) {
        p->last_keyframe_req = now();
        host().event_publish(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, json{{"stream", p->video_stream}, {"reason", "join"}}.dump());
      }
    } else {
      p->pub->push_audio(f, ms(f.meta.pts));
      ++p->audio_frames;
    }
  }

  json list_pushes() {
    json arr = json::array();
    for (auto& [pid, pp] : pushes_) {
      Push& p = *pp;
      auto c = calls_.find(p.call);
      json j = {{"call", c == calls_.end() ? "" : c->second.call_id}, {"url", p.url}, {"video_stream", p.video_stream},
                {"audio_stream", p.audio_stream}, {"connects", p.connects}, {"video_frames", p.video_frames},
                {"audio_frames", p.audio_frames}, {"last_error", p.last_error}};
      if (p.pub) {
        auto st = p.pub->stats();
        j["status"] = junction::rtmp::to_string(p.pub->status());
        j["sent_video"] = st.video_frames;
        j["sent_audio"] = st.audio_frames;
      }
      arr.push_back(j);
    }
    return arr;
  }

  // ================================================================================================
  // connection lost: every call it was part of ends, on both sides
  // ================================================================================================
  void on_closed(jn_handle h, jn_status status) {
    Conn* cn = conn(h);
    if (!cn) return;
    const bool was_dialing = cn->outbound && !cn->connected;
    host().info("connection " + cn->peer + (cn->dev.empty() ? "" : " (" + cn->dev + ")") + " closed" +
                (status == JN_OK ? "" : " (status " + std::to_string(status) + ")"));
    unjoin(h);
    cn->connected = false;
    std::vector<std::pair<uint64_t, std::string>> involved;
    for (auto& [key, id] : by_party_)
      if (key.first == h) involved.emplace_back(id, key.second);
    for (auto& [id, sid] : involved) {
      Call* c = call(id);
      if (!c) continue;
      const jn_handle leg = c->leg;
      if (c->a_side) {
        const int code = c->answered ? 503 : 487;
        drop_call(id);
        host().call_send(leg, JN_CALL_END, code, "connection-lost");
        continue;
      }
      // sid by name, not the structured binding: clang before 16 cannot capture those (fuzz build).
      auto pit = std::find_if(c->parties.begin(), c->parties.end(), [&, &sid = sid](const Party& p) { return p.conn == h && p.sid == sid; });
      if (pit == c->parties.end()) continue;
      if (!c->answered && c->parties.size() > 1) {
        by_party_.erase({pit->conn, pit->sid});
        c->parties.erase(pit);
        continue;
      }
      const bool answered = c->answered;
      drop_call(id);
      if (answered) host().call_send(leg, JN_CALL_END, 503, "connection-lost");
      else host().call_send(leg, JN_CALL_REJECT, was_dialing ? 503 : 480, was_dialing ? "unreachable" : "connection-lost");
    }
    conns_.erase(h);
    gauge();
  }

  // ================================================================================================
  // call_keep: sent to every device in an answered call each keep_interval_ms; a device silent for
  // keep_interval_ms * keep_max_missed ends its call on both sides.
  // ================================================================================================
  void keepalive_tick() {
    const uint64_t t = now();
    const uint64_t limit = conf_.keep_interval_ms * conf_.keep_max_missed;
    std::vector<std::pair<uint64_t, Party>> expired;
    for (auto& [id, c] : calls_) {
      if (!c.answered) continue;
      for (auto& p : c.parties) {
        if (t - p.last_rx >= limit) {
          expired.emplace_back(id, p);
          continue;
        }
        if (t - p.last_tx >= conf_.keep_interval_ms) {
          p.last_tx = t;
          send(p.conn, "call_keep", {{"sid", p.sid}});
        }
      }
    }
    for (auto& [id, p] : expired) {
      Call* c = call(id);
      if (!c) continue;
      host().warn("call " + c->call_id + ": no call_keep from " + p.dev + " for " + std::to_string(t - p.last_rx) + " ms: ending it");
      host().counter_add("intercom_keep_timeouts_total", 1);
      send(p.conn, "call_end", {{"sid", p.sid}, {"reason", "keep-timeout"}, {"message", "no call_keep for " + std::to_string(t - p.last_rx) + " ms"}, {"code", 408}});
      const jn_handle leg = c->leg;
      drop_call(id);
      host().call_send(leg, JN_CALL_END, 408, "keep-timeout");
    }
  }

  // ================================================================================================
  // alarms (section 4)
  // ================================================================================================
  // {"room": "101"} | {"rooms": [...]} | neither = every family; port|zone|source, name|type,
  // message|description.
  json raise_alarm(const json& j, const std::string& origin) {
    auto text = [&](std::initializer_list<const char*> keys) {
      for (const char* k : keys) {
        std::string v;
        if (read_text(j, k, v) && !v.empty()) return v;
      }
      return std::string();
    };
    std::set<std::string> rooms;
    if (j.contains("room")) rooms.insert(text({"room"}));
    if (j.contains("rooms") && j["rooms"].is_array())
      for (auto& r : j["rooms"])
        if (r.is_string()) rooms.insert(r.get<std::string>());
    const bool all = rooms.empty() && !j.contains("room") && !j.contains("rooms");
    json values = {{"port", text({"port", "zone", "source", "device"})},
                   {"name", text({"name", "type", "alarm_type"})},
                   {"message", text({"message", "description"})}};
    int sent = 0;
    json to = json::array();
    for (auto& [room, members] : rooms_) {
      if (!all && !rooms.count(room)) continue;
      for (jn_handle h : members) {
        send(h, "seczone_emergency", values);
        ++sent;
      }
      to.push_back(room);
    }
    host().counter_add("intercom_alarms_total", 1);
    host().info("seczone_emergency (" + origin + ") " + values.dump() + " to " + std::to_string(sent) + " screen(s)");
    return {{"sent", sent}, {"rooms", to}, {"values", values}};
  }

  // ================================================================================================
  // tokens and devices (admin)
  // ================================================================================================
  void issue_token(const jn_admin_request& req, const json& b) {
    TokenClaims c;
    if (!read_text(b, "device", c.dev) || c.dev.empty() || c.dev.find('/') != std::string::npos || c.dev.find(':') != std::string::npos)
      return reply(req, 400, {{"error", "'device' (string without '/' or ':') is required"}});
    if (!read_text(b, "room", c.room) || c.room.find('/') != std::string::npos || c.room.find(':') != std::string::npos)
      return reply(req, 400, {{"error", "'room' must be a string without '/' or ':'"}});
    c.type = b.value("type", static_cast<int>(kInnerScreen));
    if (!valid_peer_type(c.type)) return reply(req, 400, {{"error", "'type' must be a CallPeerType 1..5"}});
    if (c.type == kInnerScreen && c.room.empty()) return reply(req, 400, {{"error", "a screen's token needs 'room'"}});
    c.iat = unix_now();
    if (b.contains("expires_at")) c.exp = b["expires_at"].get<int64_t>();
    else c.exp = c.iat + b.value("ttl_s", conf_.token_ttl_s);
    c.tid = random_hex(8);
    std::string token = token_sign(conf_.secret, c);
    host().kv_put("token/" + c.tid, json{{"tid", c.tid}, {"device", c.dev}, {"type", c.type}, {"room", c.room}, {"iat", c.iat},
                                          {"exp", c.exp}, {"revoked", false}}
                                         .dump());
    host().info("token " + c.tid + " issued for device " + c.dev + " (" + peer_type_name(c.type) + ", room " + c.room + ")");
    reply(req, 200, {{"token", token}, {"token_id", c.tid}, {"device", c.dev}, {"type", c.type}, {"room", c.room}, {"expires_at", c.exp}});
  }

  // {"token_id"} | {"token"} | {"device"} (every token of the device). Joined devices holding a
  // revoked token get join_reject{reason:"revoked"} and are disconnected.
  void revoke_token(const jn_admin_request& req, const json& b) {
    std::set<std::string> tids;
    std::string v;
    if (read_text(b, "token_id", v) && !v.empty()) tids.insert(v);
    if (read_text(b, "token", v) && !v.empty()) {
      TokenClaims c;
      TokenCheck check = token_verify(conf_.secret, v, 0, c);
      if (check == TokenCheck::Ok || check == TokenCheck::Expired) tids.insert(c.tid);
      else return reply(req, 400, {{"error", std::string("not a token of this box: ") + token_check_reason(check)}});
    }
    if (read_text(b, "device", v) && !v.empty())
      for (auto& [k, rec] : host().kv_scan("token/")) {
        json r = json::parse(rec, nullptr, false);
        if (r.is_object() && r.value("device", "") == v) tids.insert(r.value("tid", ""));
      }
    if (tids.empty()) return reply(req, 400, {{"error", "give 'token_id', 'token' or 'device'"}});
    json revoked = json::array();
    for (const std::string& tid : tids) {
      std::string rec;
      json r = host().kv_get("token/" + tid, rec) ? json::parse(rec, nullptr, false) : json::object();
      if (!r.is_object()) r = json::object();
      r["tid"] = tid;
      r["revoked"] = true;
      r["revoked_at"] = unix_now();
      host().kv_put("token/" + tid, r.dump());
      revoked.push_back(tid);
    }
    int kicked = 0;
    std::vector<jn_handle> hs;
    for (auto& [h, c] : conns_)
      if (c.joined && tids.count(c.tid)) hs.push_back(h);
    for (jn_handle h : hs) {
      send(h, "join_reject", {{"reason", "revoked"}});
      unjoin(h);
      if (Conn* c = conn(h); c && !c->closing) {
        c->closing = true;
        host().tcp_close(h);
      }
      ++kicked;
    }
    host().info("revoked " + revoked.dump() + "; disconnected " + std::to_string(kicked) + " device(s)");
    reply(req, 200, {{"revoked", revoked}, {"disconnected", kicked}});
  }

  json list_devices() {
    json families = json::object();
    for (auto& [k, rec] : host().kv_scan("family/")) {
      json r = json::parse(rec, nullptr, false);
      std::string room = k.substr(7);
      families[room] = {{"room", room}, {"created", r.is_object() ? r.value("created", int64_t{0}) : 0}, {"devices", json::array()}};
    }
    json loose = json::array();
    for (auto& [k, rec] : host().kv_scan("device/")) {
      json r = json::parse(rec, nullptr, false);
      if (!r.is_object()) continue;
      std::string id = r.value("id", k.substr(7));
      auto online = devices_.find(id);
      r["online"] = online != devices_.end();
      if (online != devices_.end()) r["peer"] = conn(online->second)->peer;
      std::string room = r.value("room", "");
      if (!room.empty() && families.contains(room)) families[room]["devices"].push_back(r);
      else loose.push_back(r);
    }
    json arr = json::array();
    for (auto& [room, f] : families.items()) arr.push_back(f);
    return {{"families", arr}, {"devices_without_family", loose}, {"connections", conns_.size()}};
  }

  json list_tokens() {
    json arr = json::array();
    for (auto& [k, rec] : host().kv_scan("token/")) {
      json r = json::parse(rec, nullptr, false);
      if (r.is_object()) arr.push_back(r);
    }
    return arr;
  }

  // ================================================================================================
  Conf conf_;
  uint64_t generation_ = 0;
  jn_handle listener_ = 0;
  jn_handle tick_ = 0;
  uint64_t serial_ = 0;
  uint64_t msg_serial_ = 0;
  std::map<jn_handle, Conn> conns_;
  std::map<uint64_t, Call> calls_;
  std::map<uint64_t, Pull> pulls_;         // screen -> bus pulls, by id (not kept over a reload: restarted)
  std::map<jn_handle, uint64_t> pull_conns_;
  uint64_t pull_serial_ = 0;
  std::map<uint64_t, std::unique_ptr<Push>> pushes_;  // bus -> screen pushes, by id (restarted after a reload)
  std::map<jn_handle, uint64_t> push_conns_;
  uint64_t push_serial_ = 0;
  std::map<std::string, jn_handle> routes_;
  // Indexes, rebuilt from conns_/calls_ after a reload.
  std::map<std::pair<jn_handle, std::string>, uint64_t> by_party_;
  std::map<std::string, jn_handle> devices_;               // joined device id -> connection
  std::map<std::string, std::set<jn_handle>> rooms_;       // room -> joined screens
};

}  // namespace

JUNCTION_PLUGIN(IntercomJson, "intercom-json", "0.4.0", "Building intercom box: JSON call control over TCP (v0.4)", "intercom",
                kStateSchema, kStateSchema)
