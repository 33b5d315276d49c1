// PlayCenter's MediaPort over MediaIngest (src/media/) (src/media/ingest.hpp): open/answer/close,
// stats as JSON, and its events turned into PlayCenter calls. Built when the plugin has the
// MediaIngest implementation (CMakeLists.txt checks).
#include "play/media_port.hpp"

#include "ingest.hpp"

namespace gb::play {

namespace media = gb::media;

namespace {
media::Transport to_media(Transport t) {
  switch (t) {
    case Transport::Udp: return media::Transport::Udp;
    case Transport::TcpPassive: return media::Transport::TcpPassive;
    case Transport::TcpActive: return media::Transport::TcpActive;
  }
  return media::Transport::Udp;
}

class IngestMedia final : public PlayMedia, public media::IngestListener {
 public:
  explicit IngestMedia(junction::sdk::Host h) : ingest_(h, *this) {}
  bool available() const override { return true; }
  void configure(const MediaConfKeys& k) override {
    media::IngestConf c;
    c.port_range = k.port_range;
    c.bind_ip = k.bind_ip;
    c.rtp_timeout_ms = k.rtp_timeout_ms;
    c.reorder_window = k.reorder_window;
    c.reorder_flush_ms = k.reorder_flush_ms;
    c.max_video_frame = k.max_video_frame;
    c.stats_interval_ms = k.stats_interval_ms;
    c.gop_cache = k.gop_cache;
    c.gop_cache_max_bytes = k.gop_cache_max_bytes;
    ingest_.configure(c);
  }
  jn_status start() override { return ingest_.start(); }

  MediaOpened open(const std::string& device, const std::string& channel, Transport t, Kind k, uint32_t ssrc,
                   const std::string& record_path) override {
    media::OpenRequest r;
    r.device_id = device;
    r.channel_id = channel;
    r.transport = to_media(t);
    r.purpose = k == Kind::Playback ? media::Purpose::Playback : k == Kind::Download ? media::Purpose::Download : media::Purpose::Live;
    r.ssrc = ssrc;
    if (k == Kind::Playback || k == Kind::Download)
      r.stream = "gb28181/" + device + "/" + channel + "/" + (k == Kind::Download ? "download/" : "playback/") + std::to_string(++seq_);
    r.record_path = record_path;
    media::Opened o = ingest_.open(r);
    MediaOpened m;
    m.id = o.id;
    m.ip = o.ip;
    m.port = o.port;
    m.stream = o.stream;
    m.error = o.error;
    return m;
  }
  bool answer(uint32_t id, const Answer& a, std::string& error) override {
    media::Answer m;
    m.has_ssrc = a.ssrc_value.has_value();
    m.ssrc = a.ssrc_value.value_or(0);
    for (auto& [pt, enc] : a.payloads) m.pts.push_back(media::PayloadMap{static_cast<uint8_t>(pt), enc});
    m.peer_ip = a.address;
    m.peer_port = a.port;
    return ingest_.answer(id, m, error);
  }
  void close(uint32_t id, const std::string& reason) override { ingest_.close(id, reason); }
  nlohmann::json stats(uint32_t id) override {
    media::Stats s;
    if (!ingest_.stats(id, s)) return nullptr;
    return {{"transport", media::to_string(s.transport)},
            {"ssrc", s.ssrc},
            {"packets", s.packets},
            {"bytes", s.bytes},
            {"lost", s.lost},
            {"reordered", s.reordered},
            {"duplicates", s.duplicates},
            {"wrong_ssrc", s.wrong_ssrc},
            {"malformed", s.malformed},
            {"tcp_resyncs", s.tcp_resyncs},
            {"video_frames", s.video_frames},
            {"audio_frames", s.audio_frames},
            {"keyframes", s.keyframes},
            {"dropped_frames", s.dropped_frames},
            {"video_codec", s.video_codec},
            {"audio_codec", s.audio_codec},
            {"width", s.width},
            {"height", s.height},
            {"fps", s.fps},
            {"bitrate_bps", s.bitrate_bps},
            {"recorded_bytes", s.recorded_bytes},
            {"record_errors", s.record_errors},
            // docs/media-latency.md: frames closed on the RTP marker, and the GOP cache of late joiners
            {"marker_mode", s.marker_mode},
            {"marker_frames", s.marker_frames},
            {"gop_cache_frames", s.gop_cache_frames},
            {"gop_cache_bytes", s.gop_cache_bytes},
            {"gop_overflows", s.gop_overflows},
            {"catch_ups", s.catch_ups}};
  }

  MediaOpened open_sender(const std::string& device, const std::string& channel, Transport t, const std::string& source, bool ps,
                          int pt, uint32_t ssrc) override {
    media::SenderRequest r;
    r.device_id = device;
    r.channel_id = channel;
    r.transport = to_media(t);
    r.source = source;
    r.ps = ps;
    r.payload_type = static_cast<uint8_t>(pt);
    r.ssrc = ssrc;
    media::Opened o = ingest_.open_sender(r);
    MediaOpened m;
    m.id = o.id;
    m.ip = o.ip;
    m.port = o.port;
    m.stream = o.stream;
    m.error = o.error;
    return m;
  }
  bool answer_sender(uint32_t id, const std::string& ip, uint16_t port, bool ps, int pt, std::string& error) override {
    media::SenderAnswer a;
    a.peer_ip = ip;
    a.peer_port = port;
    a.has_ps = ps;
    a.payload_type = static_cast<uint8_t>(pt);
    return ingest_.answer_sender(id, a, error);
  }
  bool on_udp(jn_handle s, uint64_t c, const jn_datagram* d, size_t n) override { return ingest_.on_udp(s, c, d, n); }
  bool on_tcp(const jn_tcp_event& ev) override { return ingest_.on_tcp(ev); }
  bool on_timer(jn_handle t, uint64_t c) override { return ingest_.on_timer(t, c); }
  bool on_post(uint64_t c) override { return ingest_.on_post(c); }
  bool on_bus(jn_handle s, uint64_t c, jn_buf* b) override { return ingest_.on_bus(s, c, b); }
  bool on_work_done(jn_handle w, uint64_t c, jn_status st) override { return ingest_.on_work_done(w, c, st); }
  bool on_event(std::string_view t, std::string_view j) override { return ingest_.on_event(t, j); }
  std::string viewer_stream(uint32_t id, const std::string& tag) override { return ingest_.viewer_stream(id, tag); }
  void drop_viewer_stream(uint32_t id, const std::string& tag) override { ingest_.drop_viewer_stream(id, tag); }
  uint32_t live_loop(const std::string& device, const std::string& channel) override {
    return ingest_.live_loop("gb28181/" + device + "/" + channel);  // the live prefix open() gives (req.stream empty)
  }
  std::string save() override { return ingest_.save_state(); }
  bool restore(std::string_view s, std::string& error) override { return ingest_.restore_state(s, error); }

  // IngestListener: control loop
  void on_ingest_event(const media::Event& ev) override {
    if (!center_) return;
    switch (ev.type) {
      case media::EventType::FirstKeyframe: center_->on_first_keyframe(ev.id); break;
      case media::EventType::KeyframeWanted: center_->on_keyframe_wanted(ev.id); break;
      case media::EventType::Timeout: center_->on_media_timeout(ev.id, ev.detail); break;
      case media::EventType::StreamEnd:
      case media::EventType::Error: center_->on_media_end(ev.id, ev.detail); break;
    }
  }

 private:
  media::MediaIngest ingest_;
  uint64_t seq_ = 0;
};
}  // namespace

std::unique_ptr<PlayMedia> make_play_media(junction::sdk::Host h) { return std::make_unique<IngestMedia>(h); }

}  // namespace gb::play
