// An RTMP publisher (client side of "publish"), transport-free: the caller owns the TCP
// connection (the core's tcp_connect/tcp_send, or a socket in a test tool) and feeds it.
//
//   on_connected()  -> C0+C1 (plain handshake: version 3, C1 time + zero version field)
//   S0+S1+S2        -> C2, Set Chunk Size, Window Acknowledgement Size, connect(app, tcUrl)
//   connect _result -> releaseStream, FCPublish, createStream
//   createStream _result (stream id) -> publish(stream, "live")
//   onStatus NetStream.Publish.Start -> Publishing, @setDataFrame onMetaData
// then media as FLV tag bodies (junction/rtmp/flv.hpp). The server's Window Acknowledgement Size
// is honoured (Acknowledgements sent), Ping Requests answered, Set Chunk Size applied; _error,
// an onStatus of level "error", or a protocol error make it Failed with the reason.
//
// Timestamps: ms on one clock for audio and video (the caller aligns them, e.g. from RTCP SR);
// the first frame sent after Publishing becomes 0 and each track is kept monotonic.
//
// Backlog: the publisher announces a window (Window Acknowledgement Size) so the server
// acknowledges what it has read; bytes sent but not yet acknowledged are the queue. While they
// exceed max_queue_bytes, frames are dropped (counted) and video then waits for the next
// keyframe. A server that never acknowledges leaves the bound unenforced (the core's own TCP
// queue limit still applies: a tcp_send refused with JN_ERR_LIMIT means the stream is broken,
// so the caller closes the connection and calls on_disconnected()).
//
// One Publisher per connection: after Failed or Closed, a reconnect makes a new one.
//
// Not thread-safe: one thread (the connection's loop) calls everything. Callbacks run inside the
// calls (send() from any of them, on_status() from on_connected/on_bytes/on_disconnected/
// unpublish); a callback must not destroy the Publisher. Nothing thrown on the media path; media
// buffers are reused (no allocation per frame once they have grown to the largest frame).
#pragma once

#include <junction/media/frame.hpp>
#include <junction/rtmp/amf0.hpp>
#include <junction/rtmp/chunk.hpp>
#include <junction/rtmp/flv.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace junction::rtmp {

enum class PublisherStatus {
  Connecting,  // created / TCP up, handshake and commands under way
  Publishing,  // NetStream.Publish.Start seen: frames go out
  Failed,      // refused (_error, onStatus error), bad URL or protocol error; reason says which
  Closed,      // the connection ended (on_disconnected) or unpublish() was called
};
const char* to_string(PublisherStatus s);

struct PublisherCallbacks {
  virtual void send(const uint8_t* data, size_t len) = 0;  // to the TCP connection (the core)
  virtual void on_status(PublisherStatus s, std::string_view reason) = 0;

 protected:
  ~PublisherCallbacks() = default;
};

struct PublisherConfig {
  std::string url;     // rtmp://host[:port]/app[/inst]/stream, or rtmp://host[:port]/app[/inst] + stream
  std::string stream;  // the stream name (may carry "?key=..."); empty: the URL's last path element
  size_t max_queue_bytes = 4 << 20;  // bound on unacknowledged bytes (see Backlog); 0 = none
  // Optional (defaults suit nginx-rtmp and most CDNs):
  uint32_t chunk_size = 4096;  // announced with Set Chunk Size after the handshake
  flv::Metadata metadata;      // what onMetaData announces (default: the encoder name only)
  // Media messages wait in the publisher until flush() (counted as sent): the owner writes them
  // in batches, with no copy of its own. Any other message takes what waits out with it, in order.
  bool hold_media = false;
};

// rtmp://host[:port]/app[/inst]/stream split into its parts. IPv6 hosts as [::1].
struct RtmpUrl {
  std::string host;   // without brackets
  uint16_t port = 1935;
  std::string app;    // "live" or "live/inst"
  std::string stream; // may be empty when the URL has only host/app
  std::string tc_url; // rtmp://host[:port]/app, sent in connect
};
// stream_override non-empty: the whole path is the app and stream_override the stream.
// False (and *error) for a scheme other than rtmp, no host, a bad port, no app, or no stream.
bool parse_url(std::string_view url, std::string_view stream_override, RtmpUrl* out, std::string* error);

struct PublisherStats {
  uint64_t bytes_sent = 0;         // handed to send(), handshake included
  uint64_t bytes_received = 0;     // fed to on_bytes()
  uint64_t bytes_acknowledged = 0; // by the server's Acknowledgements (since the handshake)
  uint64_t video_frames = 0;       // sent
  uint64_t audio_frames = 0;       // sent
  uint64_t video_dropped = 0;      // total, for any reason below
  uint64_t audio_dropped = 0;
  uint64_t dropped_not_publishing = 0;  // pushed before Publishing (or after the end)
  uint64_t dropped_backlog = 0;         // unacknowledged bytes over max_queue_bytes
  uint64_t dropped_wait_keyframe = 0;   // video before a keyframe with SPS/PPS (start, after a drop)
  uint64_t dropped_invalid = 0;         // unsupported codec, AAC before its config, no NAL unit
  uint64_t sequence_headers = 0;        // AVC / AAC sequence headers sent
  uint64_t acks_sent = 0;
  uint64_t pings_answered = 0;
  uint32_t server_window = 0;           // the server's Window Acknowledgement Size
  uint32_t window = 0;                  // ours (announced after the handshake: max_queue_bytes / 4,
                                        // 32 KiB..2.5 MB): the server acknowledges every `window` bytes
  uint32_t server_chunk_size = 0;
  uint32_t stream_id = 0;               // from createStream
};

class Publisher {
 public:
  Publisher(PublisherConfig cfg, PublisherCallbacks& cb);

  void on_connected();                             // TCP up: starts the handshake (C0/C1)
  void on_bytes(const uint8_t* data, size_t len);  // server bytes (any split)
  void on_disconnected();                          // -> Closed (unless Failed already)

  // Frames from junction::media (FrameView: H.264 Annex B access units, G.711, AAC raw / AAC
  // config with JN_MF_CONFIG); timestamps in ms on one clock for A and V (the caller aligns
  // them); dropped (counted) until Publishing and while the queue is over its bound; video waits
  // for a keyframe with SPS/PPS (in the frame or in an earlier JN_MF_CONFIG frame), and again
  // after a video frame was dropped or one arrives with JN_MF_DISCONT (a loss upstream: what
  // follows would reference a picture the server never got).
  void push_video(const media::FrameView& f, uint32_t dts_ms, uint32_t pts_ms);
  void push_audio(const media::FrameView& f, uint32_t ts_ms);
  // hold_media: hands the waiting bytes to send() at once; held() says how many wait. Call
  // flush() before save() (save() does not carry them).
  void flush();
  size_t held() const { return out_.size(); }

  // Ends the publication politely (FCUnpublish, deleteStream) -> Closed; the caller then closes
  // the TCP connection (tcp_close flushes what was sent).
  void unpublish();

  // Hot reload (the core keeps the TCP connection; the plugin's new instance takes it over):
  // save() the state of a Publishing publisher (JSON; empty when not Publishing), restore() it
  // into a new Publisher made with the same config, before any other call. It is then
  // Publishing (no callback) and continues the same RTMP stream: chunk sizes, stream id,
  // timestamp base, sequence headers already sent (not repeated), keyframe wait, acknowledgement
  // counts, a server message half received. False (and error) for bytes it cannot use.
  std::string save() const;
  bool restore(std::string_view bytes, std::string& error);

  PublisherStatus status() const { return status_; }
  PublisherStats stats() const { return stats_; }
  const RtmpUrl& url() const { return url_; }
  // The reason given with the last status (a bad URL makes status() Failed from construction on,
  // reported through on_status at on_connected()).
  const std::string& reason() const { return reason_; }
  // Bytes sent after the handshake and not yet acknowledged (0 until the first Acknowledgement).
  uint64_t unacknowledged() const;
  // Publishing and video is being dropped until a keyframe: the moment to ask the source for one
  // (RTCP PLI/FIR, SIP INFO, media.keyframe_request; rate-limited by the caller).
  bool wants_keyframe() const { return phase_ == Phase::Publishing && need_keyframe_; }

 private:
  enum class Phase { Idle, Handshake, Connect, CreateStream, Publish, Publishing, Done };
  struct Sink;
  friend struct Sink;

  void set_status(PublisherStatus s, std::string_view reason);
  void fail(std::string_view reason);
  bool handle_message(const Message& m);
  bool handle_command(const Message& m);
  void send_out(bool media = false);  // counts out_'s new bytes and hands them to cb_.send (media + hold_media: later)
  void send_command(uint32_t stream_id, std::string_view name, double txn);  // name, txn, null, cmd_args_
  void send_body(uint32_t csid, uint8_t type, uint32_t stream_id, uint32_t ts, bool media = false);  // body_ as one message
  bool over_backlog() const;
  uint32_t rebase(uint32_t ts, uint32_t* last);
  void send_metadata();
  void drop_video(uint64_t* reason);
  void drop_audio(uint64_t* reason);

  PublisherConfig cfg_;
  PublisherCallbacks& cb_;
  RtmpUrl url_;
  std::string reason_;
  PublisherStatus status_ = PublisherStatus::Connecting;
  Phase phase_ = Phase::Idle;
  PublisherStats stats_;

  ChunkWriter writer_;
  ChunkReader reader_;
  std::vector<uint8_t> handshake_;  // S0+S1+S2 being collected
  std::vector<uint8_t> out_;        // chunked bytes of the message(s) being sent (held media first)
  size_t counted_ = 0;              // of them, already counted as sent (held)
  std::vector<uint8_t> body_;       // the message body being built
  std::vector<uint8_t> cmd_args_;   // AMF0 arguments after a command's null object
  std::vector<amf0::Value> values_; // a decoded command
  uint64_t sent_after_handshake_ = 0;
  uint64_t received_after_handshake_ = 0;
  uint64_t last_ack_sent_ = 0;
  bool acked_ = false;
  uint32_t ack_seq_ = 0;  // last Acknowledgement sequence number from the server (wraps at 2^32)
  uint32_t server_window_ = 0;

  // Media state.
  struct NalSpan {
    uint32_t off, len;
  };
  std::vector<NalSpan> nals_;          // the access unit being sent (one Annex B scan; kept capacity)
  std::vector<uint8_t> sps_, pps_;     // last seen
  std::vector<uint8_t> sent_sps_, sent_pps_;  // in the last AVC sequence header sent
  std::vector<uint8_t> aac_config_, sent_aac_config_;
  bool need_keyframe_ = true;
  bool metadata_sent_ = false;
  bool have_base_ = false;
  uint32_t base_ts_ = 0;
  uint32_t last_video_ts_ = 0, last_audio_ts_ = 0;
};

}  // namespace junction::rtmp
