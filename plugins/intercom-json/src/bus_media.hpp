// intercom-json: media on the packet bus (README "Media on the bus"): the HTTP-FLV pulls of a
// screen's stream onto the bus, the RTMP pushes of a far leg's bus streams to the screen, and the
// neutral media descriptions exchanged with the core (MediaOut built, MediaIn read).
#pragma once

#include <junction/rtmp/publisher.hpp>

#include "flv_pull.hpp"
#include "model.hpp"

#include <cctype>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace intercom_json {

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
  jn_handle req = 0, timer = 0;  // req: the core's streamed http_request (ABI 2.3) in flight
  uint64_t backoff_ms = 0;
  bool got_frame = false;  // on this request: the backoff restarts after a working one
  bool discont = false;    // the next frame of each track follows a reconnect
  bool ended = false;      // a bad stream: not retried
  uint32_t vseq = 0, aseq = 0;
  uint64_t video_frames = 0, audio_frames = 0, connects = 0;
  std::string last_error;
  std::unique_ptr<FlvPull> flv;
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

MediaIn read_media(const jn_media_desc* m, bool is_answer);

// Whether the far leg of a call wants its media on the packet bus (README "Media on the bus"):
// it is not intercom-json itself (no intercom-call data stream), and it either names a bus
// stream of its own (verto-ws, a conference) or offers no audio/video at a network address (a
// viewer such as a recorder). A peer with RTP at an address (a SIP gateway) keeps the URLs.
bool wants_bus(const jn_media_desc* m);

// A bus stream name element from a sid: [A-Za-z0-9._-], anything else becomes '_'.
inline std::string bus_name(std::string_view sid) {
  std::string out;
  for (char c : sid.substr(0, 64))
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  return out.empty() ? "_" : out;
}

}  // namespace intercom_json
