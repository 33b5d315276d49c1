// gb28181 media (issue 14, part 2): the receivers of a channel's PS/RTP stream and the sender of
// broadcast/talk audio. Owned by the plugin; every method below is called on the CONTROL loop
// (the plugin's hooks forward the media events it does not own to the on_* methods, which run on
// whatever loop the core calls them on).
//
// Receive (live, playback, download): open() binds a socket / listener on a free port of the
// core's named port range (conf) on media loop k (round-robin over host media_loops()); the
// caller puts the returned port and SSRC in its INVITE offer. answer() tells it what the device
// answered (y= SSRC, 0 accepted; the TCP active peer to connect to; the PT map). Per stream:
//   UDP          PsRtpReceiver (SSRC policy: offer's, then the answer's, then the first seen;
//                reorder window; a loss drops only the frames it damaged)
//   tcp_passive  a listener (jn_tcp_options.loop = k, JN_FRAME_RAW), the device connects
//   tcp_active   tcp_connect(loop = k) to the answer's c=/m= address
//   TCP bytes go through the sdk's Rfc4571Deframer (JN_FRAME_RAW, not the core's LEN16 framer,
//   so a lying length is resynced and counted instead of closing the connection).
// Frames are published on the bus by id (bus_publish_id, one pool buffer per frame, the demuxer's
// reassembly is the only copy) on
//     gb28181/<device>/<channel>/video   (H.264 / H.265 Annex-B access units, JN_MF_KEY etc.)
//     gb28181/<device>/<channel>/audio   (G.711A/U, AAC)
// or on OpenRequest::stream (playback / download use their own name, e.g.
// "gb28181/<device>/<channel>/playback/<n>") + "/video" | "/audio".
//
// Events to the control loop (bounded hand-off: media loops queue them, at most kMaxEvents
// waiting, then the oldest non-terminal ones are dropped and counted; host->post(0, cookie)):
// FirstKeyframe, KeyframeWanted (a consumer sent media.keyframe_request for our stream, rate
// limited by KeyframeLimiter: the play side sends the IFrame DeviceControl), Timeout (no RTP for
// OpenRequest::rtp_timeout_ms), StreamEnd (the device closed the TCP connection / download done),
// Error. The play side closes the stream (and BYEs) on Timeout / StreamEnd.
//
// Catch-up (GOP cache, IngestConf::gop_cache): a live stream keeps refs to the pool buffers it
// published since the last keyframe (no copy; dropped at the next keyframe, at a loss, or when
// over gop_cache_max_bytes). A joining consumer subscribes to a name of its own, then publishes
//     media.keyframe_request {"stream": "<prefix>/video", "reason": "join",
//                             "catch_up": "<its own name>", "catch_up_audio": "<name>"?}
// and gets, synchronously on the control loop, the cached video frames (keyframe first) published
// on "catch_up" (the audio ones on "catch_up_audio" if named), with their original meta.seq: it
// then takes live frames whose seq is past the last one it got (the ones published meanwhile
// are in both). The bus cannot publish to one subscriber of a stream, hence the second name.
// The keyframe request itself still goes to the device (IFrame) as without the cache.
//
// Send (broadcast / talk): open_sender() binds (UDP, TCP passive) or waits for answer_sender()
// (UDP peer, TCP active: connect); it subscribes to a bus audio stream (G.711A frames, e.g. a
// WebRTC/SIP leg's "<src>/audio") and sends each frame as RTP to the device: plain RTP (PT 8
// PCMA) or PS-wrapped (PT 96, PsRtpSender), UDP datagrams or RFC 4571 over TCP.
//
// Hot reload: save_state() serialises every stream (ids, socket/listener/connection handles,
// SSRC, names, counters) into the plugin's state; restore_state() takes them back. Sockets belong
// to the core's plugin slot and survive the swap; the core holds media-loop deliveries during it,
// so no packet is lost; the demuxer restarts at the next pack header (frames in flight at the
// swap instant are the only ones that can be cut: the receiver flushes whole frames before save).
#pragma once

#include <junction/abi.h>
#include <junction/plugin.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gb::media {

enum class Transport : uint8_t { Udp = 0, TcpPassive = 1, TcpActive = 2 };
const char* to_string(Transport t);
// "udp", "tcp_passive" | "passive", "tcp_active" | "active"; false on anything else.
bool parse_transport(std::string_view s, Transport& out);

enum class Purpose : uint8_t { Live = 0, Playback = 1, Download = 2 };

// Cookies the plugin's hooks route here: every cookie MediaIngest gives the core has this tag
// in its top 16 bits (the SIP stack's HostEnv uses 0x5150...).
constexpr uint64_t kCookieTag = 0x4D45ull << 48;  // "ME"
constexpr uint64_t kCookieTagMask = 0xFFFFull << 48;
inline bool owns_cookie(uint64_t cookie) { return (cookie & kCookieTagMask) == kCookieTag; }

struct IngestConf {
  std::string port_range = "gb28181";   // the core's [ports.NAME] range media ports come from
  std::string bind_ip = "0.0.0.0";      // local address of media sockets / listeners
  uint32_t rtp_timeout_ms = 10000;      // no RTP for this long: Timeout event (0 = never)
  uint32_t reorder_window = 16;         // UDP packets held waiting for a missing one
  uint32_t reorder_flush_ms = 100;      // a gap older than this is declared lost
  uint32_t max_video_frame = 4u << 20;  // bytes of one access unit; larger ones are dropped
  uint32_t stats_interval_ms = 1000;    // fps / bitrate window
  // GOP cache (live streams): refs to the frames published since the last keyframe, replayed to a
  // joining consumer that asks for it (see "Catch-up" above). Costs one GOP of pool buffers per
  // playing stream; a GOP over gop_cache_max_bytes is not cached (counted in gop_overflows).
  bool gop_cache = false;
  uint32_t gop_cache_max_bytes = 4u << 20;
};

struct OpenRequest {
  std::string device_id, channel_id;
  Transport transport = Transport::Udp;
  Purpose purpose = Purpose::Live;
  uint32_t ssrc = 0;          // the offer's y= (0: take the first one seen)
  std::string stream;         // bus name prefix; empty: "gb28181/<device>/<channel>"
  std::string record_path;    // Download: the frames, re-muxed to PS (whole frames only), are
                              // appended here by the core's worker pool (created/truncated at open)
  uint32_t rtp_timeout_ms = 0;  // 0: IngestConf's
};

struct Opened {
  uint32_t id = 0;            // 0: failed (error says why)
  uint16_t port = 0;          // local port for the offer's m= line
  std::string ip;             // the bound address (IngestConf::bind_ip)
  std::string stream;         // the bus name prefix frames go to
  std::string error;
};

struct PayloadMap {
  uint8_t pt = 96;
  std::string encoding;       // "PS", "MPEG4", "H264", "H265", "PCMA"... (answer's a=rtpmap)
};

struct Answer {
  bool has_ssrc = false;      // the answer had y=
  uint32_t ssrc = 0;          // adopted even when it differs from the offer's; 0: learn from RTP
  std::vector<PayloadMap> pts;  // empty: PT 96 = PS
  std::string peer_ip;        // c= (TCP active: where to connect; UDP: the device, for logs)
  uint16_t peer_port = 0;     // m= port
};

enum class EventType : uint8_t { FirstKeyframe, KeyframeWanted, Timeout, StreamEnd, Error };
const char* to_string(EventType t);

struct Event {
  EventType type;
  uint32_t id = 0;
  std::string device_id, channel_id, stream;
  std::string detail;         // human text: why (timeout after N ms, peer closed, ...)
};

struct Stats {
  uint32_t id = 0;
  Transport transport = Transport::Udp;
  std::string stream;
  uint32_t ssrc = 0;
  uint64_t packets = 0, bytes = 0, lost = 0, reordered = 0, duplicates = 0, late = 0;
  uint64_t wrong_ssrc = 0, wrong_pt = 0, malformed = 0, oversized = 0;
  uint64_t tcp_resyncs = 0, tcp_skipped_bytes = 0;
  uint64_t video_frames = 0, audio_frames = 0, keyframes = 0, dropped_frames = 0, demux_resyncs = 0;
  uint32_t video_codec = 0, audio_codec = 0;  // JN_CODEC_*
  uint32_t width = 0, height = 0;             // from the SPS
  double fps = 0, bitrate_bps = 0;            // over the last stats window
  uint64_t last_packet_ms = 0;
  uint64_t recorded_bytes = 0, record_errors = 0;  // Download: PS bytes written to record_path
  uint64_t gop_cache_frames = 0, gop_cache_bytes = 0;  // held now (IngestConf::gop_cache)
  uint64_t gop_overflows = 0, catch_ups = 0;           // GOPs too large to cache; joins served from it
  uint64_t marker_frames = 0;                          // video frames closed on the RTP marker
  std::string marker_mode;                             // "none" (no marker seen) | "trusted" | "ignored"
};

// The play side implements it (GbPlugin): events, always on the control loop.
class IngestListener {
 public:
  virtual void on_ingest_event(const Event& ev) = 0;

 protected:
  ~IngestListener() = default;
};

// --- send side (broadcast / talk) ---
struct SenderRequest {
  std::string device_id, channel_id;
  Transport transport = Transport::Udp;
  std::string source;         // bus stream of G.711A frames to send ("<src>/audio")
  bool ps = true;             // PS-wrapped (PT 96) or plain RTP (PT 8, PCMA)
  uint8_t payload_type = 96;
  uint32_t ssrc = 0;          // y= of our SDP
};

struct SenderAnswer {
  std::string peer_ip;        // the device's c=
  uint16_t peer_port = 0;     // the device's m= port (UDP target; TCP active: connect there)
  bool has_ps = true;         // answer's rtpmap: PS (96) or PCMA (8)
  uint8_t payload_type = 96;
};

struct Recorder;

class MediaIngest {
 public:
  MediaIngest(junction::sdk::Host host, IngestListener& listener);
  ~MediaIngest();  // closes nothing (hot reload keeps the sockets): close() each stream at stop
  MediaIngest(const MediaIngest&) = delete;
  MediaIngest& operator=(const MediaIngest&) = delete;

  void configure(const IngestConf& conf);  // start / reload; affects streams opened after it
  // Subscribes to media.keyframe_request (call once from start()).
  jn_status start();

  // --- receive ---
  Opened open(const OpenRequest& req);
  // false + error: unknown id, unsupported PT map (no PS), TCP active without a peer address.
  bool answer(uint32_t id, const Answer& ans, std::string& error);
  // Closes sockets / connection, flushes the last whole frame, unsubscribes. Unknown id: false.
  bool close(uint32_t id, std::string_view reason);
  bool stats(uint32_t id, Stats& out) const;
  std::vector<Stats> all_stats() const;
  size_t size() const;

  // The media loop (0: the control loop, no media loops) the live stream of bus prefix `prefix`
  // ("gb28181/<device>/<channel>") runs on, or will run on when opened: a live prefix keeps the
  // loop it was first given (round-robin), across restarts and hot reloads, so a loop-local consumer
  // (bus_subscribe_local, its sockets on that loop) can be set up before the stream opens. Control loop.
  uint32_t live_loop(const std::string& prefix);

  // --- per-viewer streams (a call's viewer, GOP cache on): "<stream>/viewer/<tag>/video|audio"
  // carry the live stream's frames (the same pool buffers) from the viewer's start on: the cached
  // GOP, keyframe first, when a media.keyframe_request names the viewer's video stream (a
  // consumer's join), else the next keyframe; then every live frame. Returns the names' prefix
  // ("<stream>/viewer/<tag>"), or "" (unknown id, not a live stream, media.gop_cache off, bad tag):
  // the caller then names the live streams. Idempotent per tag. Control loop.
  std::string viewer_stream(uint32_t id, const std::string& tag);
  void drop_viewer_stream(uint32_t id, const std::string& tag);

  // --- send ---
  Opened open_sender(const SenderRequest& req);
  bool answer_sender(uint32_t id, const SenderAnswer& ans, std::string& error);
  // close(id) closes a sender too.

  // --- hooks the plugin forwards (true: it was ours, the plugin does nothing else) ---
  bool on_udp(jn_handle sock, uint64_t cookie, const jn_datagram* d, size_t n);   // media loop
  bool on_tcp(const jn_tcp_event& ev);                                            // media loop
  bool on_timer(jn_handle timer, uint64_t cookie);                                // any loop
  bool on_post(uint64_t cookie);                                                  // any loop
  bool on_bus(jn_handle sub, uint64_t cookie, jn_buf* buf);                       // sender source
  bool on_work_done(jn_handle work, uint64_t cookie, jn_status status);           // download file
  // topic media.keyframe_request: KeyframeWanted for the stream named in json (if ours).
  bool on_event(std::string_view topic, std::string_view json);

  // --- hot reload: a JSON value the plugin embeds in its own state ---
  std::string save_state();
  bool restore_state(std::string_view saved, std::string& error);

  struct Impl;

 private:
  void save_recorder(const std::shared_ptr<Recorder>& rec);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gb::media
