// MediaIngest (ingest.hpp): the host glue around StreamReceiver (receiver.hpp) and the
// broadcast/talk sender. Threads: the control loop owns the stream table (insert / erase under
// map_mu_ exclusive); a media loop looks its stream up under map_mu_ shared, once per batch, and
// works under the stream's own mutex. Sockets are closed with no lock held (abi.h: udp_close waits
// for the loop's batch). Events reach the control loop through a bounded queue + host post.
#include "ingest.hpp"

#include "receiver.hpp"

#include <junction/media/audio_rtp.hpp>
#include <junction/media/keyframe.hpp>
#include <junction/media/ps_rtp.hpp>
#include <junction/util/addr.hpp>
#include <junction/util/encoding.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

namespace gb::media {

using junction::media::FrameView;
using junction::media::KeyframeLimiter;
using junction::sdk::Host;

const char* to_string(Transport t) {
  switch (t) {
    case Transport::Udp: return "udp";
    case Transport::TcpPassive: return "tcp_passive";
    case Transport::TcpActive: return "tcp_active";
  }
  return "?";
}

bool parse_transport(std::string_view s, Transport& out) {
  if (s == "udp" || s == "UDP") out = Transport::Udp;
  else if (s == "tcp_passive" || s == "passive") out = Transport::TcpPassive;
  else if (s == "tcp_active" || s == "active") out = Transport::TcpActive;
  else return false;
  return true;
}

const char* to_string(EventType t) {
  switch (t) {
    case EventType::FirstKeyframe: return "first_keyframe";
    case EventType::KeyframeWanted: return "keyframe_wanted";
    case EventType::Timeout: return "timeout";
    case EventType::StreamEnd: return "stream_end";
    case EventType::Error: return "error";
  }
  return "?";
}

namespace {

// Cookie layout: tag (16 bits) | kind (8) | value (40).
enum Kind : uint64_t { kStream = 1, kLoopTimer = 2, kPostEvents = 3, kPostStartTimer = 4, kSenderBus = 5, kWork = 6 };
uint64_t cookie(Kind k, uint64_t v) { return kCookieTag | (static_cast<uint64_t>(k) << 40) | (v & 0xFFFFFFFFFFull); }
Kind kind_of(uint64_t c) { return static_cast<Kind>((c >> 40) & 0xFF); }
uint64_t value_of(uint64_t c) { return c & 0xFFFFFFFFFFull; }

constexpr size_t kMaxEvents = 4096;
constexpr uint64_t kTickMs = 50;
constexpr uint64_t kLogEveryMs = 1000;

std::string host_port(const std::string& ip, uint16_t port) {
  if (ip.find(':') != std::string::npos) return "[" + ip + "]:" + std::to_string(port);
  return ip + ":" + std::to_string(port);
}

constexpr size_t kRecordChunk = 256u << 10;  // PS bytes handed to one file write
constexpr size_t kMaxGopFrames = 2048;       // GOP cache entries (video + audio) per stream
constexpr size_t kMaxCatchUpName = 256;
constexpr size_t kMaxLiveLoops = 65536;       // live prefixes whose media loop is remembered

}  // namespace

// Download: the frames re-muxed to PS (whole frames only, in order) and appended to a file by the
// core's worker pool, one write in flight per file (the pool runs jobs in parallel; appends must
// stay in order). Shared by the stream and its jobs: a job may finish after the stream closed.
struct Recorder {
  std::mutex mu;
  std::string path;
  junction::media::PsMuxer mux;
  std::vector<uint8_t> chunk;                 // being filled (under the stream's mutex)
  std::deque<std::vector<uint8_t>> pending;   // full chunks waiting for the writer
  bool busy = false;
  uint64_t written = 0, errors = 0;
  int last_errno = 0;
  explicit Recorder(std::string p) : path(std::move(p)) {}
};

struct WriteJob {
  std::shared_ptr<Recorder> rec;
  std::vector<uint8_t> data;
  bool ok = false;
  int err = 0;
  std::atomic<bool> finished{false};
  static void run(void* arg) {
    auto* j = static_cast<WriteJob*>(arg);
    write(*j);
    j->finished.store(true, std::memory_order_release);
  }
  static void write(WriteJob& jr) {
    WriteJob* j = &jr;
    FILE* f = std::fopen(j->rec->path.c_str(), "ab");
    if (!f) {
      j->err = errno;
      return;
    }
    j->ok = std::fwrite(j->data.data(), 1, j->data.size(), f) == j->data.size();
    if (!j->ok) j->err = errno;
    if (std::fclose(f) != 0 && j->ok) {
      j->ok = false;
      j->err = errno;
    }
  }
};

struct Stream {
  uint32_t id = 0;
  bool sender = false;
  Transport transport = Transport::Udp;
  Purpose purpose = Purpose::Live;
  std::string device, channel, prefix;
  uint32_t loop = 0;
  uint32_t video_id = 0, audio_id = 0;  // bus ids
  jn_handle sock = 0, rtcp = 0, listener = 0, conn = 0;
  uint16_t port = 0;
  std::string peer_ip;
  uint16_t peer_port = 0;
  uint32_t offer_ssrc = 0, timeout_ms = 0;
  uint64_t opened_ms = 0;

  std::mutex mu;  // everything below: media loop (per batch) vs control
  std::unique_ptr<StreamReceiver> rx;
  bool first_key_reported = false, timeout_reported = false, ended = false;
  uint64_t last_stats_ms = 0;
  uint64_t log_ms = 0, log_suppressed = 0;
  uint64_t bus_refused = 0;
  std::shared_ptr<Recorder> rec;  // Download
  // Hot reload: frame numbering continues across the swap (see save_state).
  uint32_t seq_base[2] = {0, 0}, next_seq[2] = {0, 0};
  bool clean_restore = false, restored_seen[2] = {false, false};
  // GOP cache (IngestConf::gop_cache, live only): refs to the pool buffers published since the last
  // keyframe, in publish order; valid = starts with a keyframe and has no gap.
  bool gop_on = false, gop_valid = false;
  uint32_t gop_max_bytes = 0;
  std::vector<jn_buf*> gop;
  size_t gop_bytes = 0;
  uint64_t gop_overflows = 0, catch_ups = 0;
  // Per-viewer streams (viewer_stream()): not live until the cached GOP (burst, asked by a
  // keyframe request naming it) or a keyframe went out on it; from then on every frame.
  struct ViewerOut {
    std::string tag;
    uint32_t video_id = 0, audio_id = 0;
    bool live = false, burst = false;
  };
  std::vector<ViewerOut> viewer_outs;

  // control only
  KeyframeLimiter kf;

  // sender
  SenderRequest sreq;
  jn_handle sub = 0;
  jn_addr to{};
  bool have_to = false, ps = true;
  uint8_t pt = 96;
  uint32_t ssrc = 0;
  uint16_t seq = 0;
  uint64_t sent = 0, send_errors = 0, not_pcma = 0;
  std::unique_ptr<junction::media::PsRtpSender> ps_tx;
  std::vector<uint8_t> scratch;  // TCP: one RTP packet (sender)
};

struct MediaIngest::Impl {
  Host host;
  IngestListener& listener;
  IngestConf conf;  // control loop
  // What the media loops' housekeeping reads (configure() may run meanwhile, on a reload of the conf).
  std::atomic<uint32_t> flush_ms{100}, stats_ms{1000};
  mutable std::shared_mutex map_mu;
  std::unordered_map<uint32_t, std::shared_ptr<Stream>> streams;
  uint32_t next_id = 1;
  uint32_t next_loop = 0;
  // A live stream's media loop, by bus prefix (control loop): a restarted stream comes back on the
  // loop it had, where its loop-local consumers (PsOut's client senders) subscribed.
  std::unordered_map<std::string, uint32_t> live_loops;
  bool timers_started = false;
  std::mutex ev_mu;
  std::deque<Event> events;
  bool ev_posted = false;
  uint64_t ev_dropped = 0;

  std::mutex job_mu;
  std::unordered_map<uint64_t, std::unique_ptr<WriteJob>> jobs;
  uint64_t next_job = 1;

  Impl(Host h, IngestListener& l) : host(h), listener(l) {}

  // Queues the recorder's current chunk; starts a write when none is in flight.
  void record_flush(const std::shared_ptr<Recorder>& rec) {
    std::lock_guard lk(rec->mu);
    if (!rec->chunk.empty()) {
      rec->pending.push_back(std::move(rec->chunk));
      rec->chunk = {};
      rec->chunk.reserve(kRecordChunk + (64u << 10));
    }
    if (!rec->busy) start_write(rec);
  }
  // rec->mu held.
  void start_write(const std::shared_ptr<Recorder>& rec) {
    if (rec->pending.empty()) return;
    auto job = std::make_unique<WriteJob>();
    job->rec = rec;
    job->data = std::move(rec->pending.front());
    rec->pending.pop_front();
    WriteJob* raw = job.get();
    uint64_t id;
    {
      std::lock_guard jl(job_mu);
      id = next_job++;
      jobs[id] = std::move(job);
    }
    jn_handle h = 0;
    if (host.work_submit(&WriteJob::run, raw, cookie(kWork, id), &h) != JN_OK) {
      ++rec->errors;  // pool full: this chunk is lost, said in stats and the log
      host.warn("gb28181 media: download " + rec->path + ": the worker pool refused a write (chunk dropped)");
      std::lock_guard jl(job_mu);
      jobs.erase(id);
      return;
    }
    rec->busy = true;
  }
  void write_done(uint64_t id) {
    std::unique_ptr<WriteJob> job;
    {
      std::lock_guard jl(job_mu);
      auto it = jobs.find(id);
      if (it == jobs.end()) return;
      job = std::move(it->second);
      jobs.erase(it);
    }
    std::lock_guard lk(job->rec->mu);
    job->rec->busy = false;
    if (job->ok) {
      job->rec->written += job->data.size();
    } else {
      ++job->rec->errors;
      host.warn("gb28181 media: download " + job->rec->path + ": write failed: " + std::strerror(job->err));
    }
    start_write(job->rec);
  }

  std::shared_ptr<Stream> find(uint32_t id) const {
    std::shared_lock lk(map_mu);
    auto it = streams.find(id);
    return it == streams.end() ? nullptr : it->second;
  }

  void push_event(EventType t, const Stream& s, std::string detail) {
    bool post = false;
    {
      std::lock_guard lk(ev_mu);
      bool terminal = t == EventType::Timeout || t == EventType::StreamEnd;
      if (events.size() >= kMaxEvents && !terminal) {
        ++ev_dropped;
        return;
      }
      events.push_back(Event{t, s.id, s.device, s.channel, s.prefix, std::move(detail)});
      if (!ev_posted) post = ev_posted = true;
    }
    if (post && host.post(0, cookie(kPostEvents, 0)) != JN_OK) {
      std::lock_guard lk(ev_mu);
      ev_posted = false;  // the next event tries again
    }
  }

  void deliver_events() {
    std::deque<Event> batch;
    {
      std::lock_guard lk(ev_mu);
      batch.swap(events);
      ev_posted = false;
    }
    for (auto& ev : batch) {
      if (ev.type == EventType::KeyframeWanted) {
        auto s = find(ev.id);
        if (!s || !s->kf.request(host.now_ms() * 1000000ull)) continue;
      }
      listener.on_ingest_event(ev);
    }
  }

  void ensure_timers() {
    if (timers_started) return;
    timers_started = true;
    uint32_t loops = host.media_loops();
    if (loops == 0) {
      jn_handle t = 0;
      host.timer(kTickMs, kTickMs, cookie(kLoopTimer, 0), &t);
      return;
    }
    for (uint32_t k = 1; k <= loops; ++k) host.post(k, cookie(kPostStartTimer, k));
  }

  uint32_t pick_loop() {
    uint32_t loops = host.media_loops();
    if (loops == 0) return 0;
    return 1 + (next_loop++ % loops);
  }
  uint32_t live_loop(const std::string& prefix) {
    uint32_t loops = host.media_loops();
    if (loops == 0) return 0;
    auto it = live_loops.find(prefix);
    if (it != live_loops.end() && it->second >= 1 && it->second <= loops) return it->second;
    if (live_loops.size() >= kMaxLiveLoops) live_loops.clear();  // bounded: stickiness is lost, nothing else
    return live_loops[prefix] = pick_loop();
  }

  void tick(uint32_t loop);
  void catch_up(Stream& s, const nlohmann::json& req);

  // Stream mutex held.
  void gop_clear(Stream& s) {
    for (jn_buf* b : s.gop) host.buf_unref(b);
    s.gop.clear();
    s.gop_bytes = 0;
  }
  // A frame just published (stream mutex held, media loop): a keyframe starts a new GOP, a video gap
  // spoils the one being cached (its frames would not decode), too much is dropped and counted.
  void gop_add(Stream& s, jn_buf* b, bool video, uint32_t flags) {
    if (video && (flags & JN_MF_KEY)) {
      gop_clear(s);
      s.gop_valid = true;
    } else if (video && (flags & JN_MF_DISCONT)) {
      gop_clear(s);
      s.gop_valid = false;
    }
    if (!s.gop_valid) return;
    if (s.gop_bytes + b->len > s.gop_max_bytes || s.gop.size() >= kMaxGopFrames) {
      gop_clear(s);
      s.gop_valid = false;
      ++s.gop_overflows;
      host.warn("gb28181 media " + s.prefix + ": GOP over media.gop_cache_max_bytes (" + std::to_string(s.gop_max_bytes) +
                ") or " + std::to_string(kMaxGopFrames) + " frames: not cached until the next keyframe");
      return;
    }
    host.buf_ref(b);
    s.gop.push_back(b);
    s.gop_bytes += b->len;
  }
};

// Publishes a receiver's frames on the bus (media loop, under the stream's mutex).
struct PubSink final : StreamReceiver::Sink {
  MediaIngest::Impl& im;
  Stream& s;
  uint64_t now;
  PubSink(MediaIngest::Impl& i, Stream& st, uint64_t n) : im(i), s(st), now(n) {}

  void on_frame(const FrameView& f) override {
    int t = f.meta.kind == JN_MEDIA_VIDEO ? 0 : 1;
    jn_media_meta meta = f.meta;
    meta.seq += s.seq_base[t];
    if (s.clean_restore && !s.restored_seen[t]) {
      // The swap fell between two frames: nothing was lost, so no discontinuity to announce.
      s.restored_seen[t] = true;
      meta.frame_flags &= ~JN_MF_DISCONT;
    }
    s.next_seq[t] = meta.seq + 1;
    if (t == 0 && (meta.frame_flags & JN_MF_KEY) && !s.first_key_reported) {
      s.first_key_reported = true;
      im.push_event(EventType::FirstKeyframe, s, "first keyframe");
    }
    if (t == 0 && (meta.frame_flags & JN_MF_DISCONT) && meta.seq > 0 && !(meta.frame_flags & JN_MF_KEY))
      im.push_event(EventType::KeyframeWanted, s, "loss");
    if (s.rec) {
      std::span<const uint8_t> ps;
      if (s.rec->mux.mux(FrameView{f.data, f.size, meta}, &ps)) {
        bool full;
        {
          std::lock_guard lk(s.rec->mu);
          s.rec->chunk.insert(s.rec->chunk.end(), ps.begin(), ps.end());
          full = s.rec->chunk.size() >= kRecordChunk;
        }
        if (full) im.record_flush(s.rec);
      }
    }
    uint32_t id = t == 0 ? s.video_id : s.audio_id;
    if (!id) return;
    jn_buf* b = im.host.buf_alloc(static_cast<uint32_t>(f.size));
    if (!b) {
      ++s.bus_refused;
      problem("no pool buffer for a frame (dropped)");
      return;
    }
    std::memcpy(b->data, f.data, f.size);
    b->len = static_cast<uint32_t>(f.size);
    b->flags |= JN_BUF_MEDIA;
    b->meta = meta;
    im.host.bus_publish_id(id, b);
    if (s.gop_on) im.gop_add(s, b, t == 0, meta.frame_flags);
    for (auto& v : s.viewer_outs) viewer_publish(v, b, t == 0, meta.frame_flags);
    im.host.buf_unref(b);
  }
  // Under s.mu on the media loop: one thread orders the burst and the live frames, so the viewer
  // gets the GOP then the frame after it, no gap, no duplicate (b is already in the cache).
  void viewer_publish(Stream::ViewerOut& v, jn_buf* b, bool video, uint32_t flags) {
    if (!v.live) {
      if (v.burst && s.gop_valid && !s.gop.empty()) {
        for (jn_buf* g : s.gop) im.host.bus_publish_id(g->meta.kind == JN_MEDIA_VIDEO ? v.video_id : v.audio_id, g);
        v.live = true;
        return;
      }
      if (!video || !(flags & JN_MF_KEY)) return;  // nothing decodable before a keyframe
      v.live = true;
    }
    im.host.bus_publish_id(video ? v.video_id : v.audio_id, b);
  }
  void on_problem(Problem p, const char* detail) override {
    std::string msg = std::string(to_string(p)) + ": " + (detail ? detail : "");
    problem(msg);
  }
  void problem(std::string_view what) {
    // One line per stream per second, with how many were not logged.
    if (s.log_ms && now - s.log_ms < kLogEveryMs) {
      ++s.log_suppressed;
      return;
    }
    s.log_ms = now ? now : 1;
    std::string line = "gb28181 media " + s.prefix + ": " + std::string(what);
    if (s.log_suppressed) line += " (+" + std::to_string(s.log_suppressed) + " more since the last line)";
    s.log_suppressed = 0;
    im.host.warn(line);
  }
};

void MediaIngest::Impl::tick(uint32_t loop) {
  std::vector<std::shared_ptr<Stream>> mine;
  {
    std::shared_lock lk(map_mu);
    for (auto& [id, s] : streams)
      if (s->loop == loop && !s->sender) mine.push_back(s);
  }
  uint64_t now = host.now_ms();
  for (auto& s : mine) {
    std::lock_guard lk(s->mu);
    PubSink sink(*this, *s, now);
    uint64_t last = s->rx->last_packet_ms();
    uint32_t flush = flush_ms.load(std::memory_order_relaxed), every = stats_ms.load(std::memory_order_relaxed);
    if (last && now - last >= flush) s->rx->flush_reorder(sink);
    if (every && now - s->last_stats_ms >= every) {
      s->rx->roll_window(now);
      s->last_stats_ms = now;
    }
    uint64_t since = std::max(last, s->opened_ms);
    if (s->timeout_ms && !s->timeout_reported && !s->ended && now - since >= s->timeout_ms) {
      s->timeout_reported = true;
      push_event(EventType::Timeout, *s, "no RTP for " + std::to_string(now - since) + " ms");
    }
  }
}

// A joining consumer asked for the cached GOP on its own stream name(s) (ingest.hpp, Catch-up).
// The refs are taken under the stream's mutex, published without it (a subscriber may call back
// into the plugin); frames the media loop publishes meanwhile go live and carry later seqs.
void MediaIngest::Impl::catch_up(Stream& s, const nlohmann::json& req) {
  auto name_of = [&](const char* key) -> std::string {
    if (!req.contains(key)) return {};
    const auto& v = req[key];
    if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().size() > kMaxCatchUpName) {
      host.warn(std::string("gb28181 media ") + s.prefix + ": media.keyframe_request: \"" + key +
                "\" must be a stream name of 1.." + std::to_string(kMaxCatchUpName) + " bytes (ignored)");
      return {};
    }
    std::string n = v.get<std::string>();
    if (n == s.prefix + JN_MEDIA_VIDEO_SUFFIX || n == s.prefix + JN_MEDIA_AUDIO_SUFFIX) {
      host.warn("gb28181 media " + s.prefix + ": catch-up refused on the live stream name " + n);
      return {};
    }
    return n;
  };
  std::string vname = name_of("catch_up"), aname = name_of("catch_up_audio");
  if (vname.empty() && aname.empty()) return;
  std::vector<jn_buf*> bufs;
  {
    std::lock_guard lk(s.mu);
    if (!s.gop_on) {
      host.info("gb28181 media " + s.prefix + ": catch-up asked, but media.gop_cache is off (nothing replayed)");
      return;
    }
    if (!s.gop_valid || s.gop.empty()) return;  // no whole GOP yet: the consumer waits for a keyframe
    bufs.reserve(s.gop.size());
    for (jn_buf* b : s.gop) {
      host.buf_ref(b);
      bufs.push_back(b);
    }
    ++s.catch_ups;
  }
  host.counter_add("gb_catch_ups_total", 1);  // control loop (on_event): metrics are allowed here
  for (jn_buf* b : bufs) {
    bool video = b->meta.kind == JN_MEDIA_VIDEO;
    const std::string& to = video ? vname : aname;
    if (!to.empty()) host.bus_publish(to, b);
    host.buf_unref(b);
  }
}

MediaIngest::MediaIngest(Host host, IngestListener& listener) : impl_(std::make_unique<Impl>(host, listener)) {}

// Nothing is closed here: on a hot reload the old instance goes away while its sockets, listeners,
// connections and bus ids carry on in the new one (the core closes what an unloaded slot holds).
MediaIngest::~MediaIngest() = default;

void MediaIngest::configure(const IngestConf& conf) {
  impl_->conf = conf;
  impl_->flush_ms.store(conf.reorder_flush_ms, std::memory_order_relaxed);
  impl_->stats_ms.store(conf.stats_interval_ms, std::memory_order_relaxed);
}

uint32_t MediaIngest::live_loop(const std::string& prefix) { return impl_->live_loop(prefix); }

jn_status MediaIngest::start() { return impl_->host.event_subscribe(JN_MEDIA_KEYFRAME_REQUEST_TOPIC); }

size_t MediaIngest::size() const {
  std::shared_lock lk(impl_->map_mu);
  return impl_->streams.size();
}

Opened MediaIngest::open(const OpenRequest& req) {
  auto& im = *impl_;
  Opened out;
  if (req.device_id.empty() || req.channel_id.empty()) {
    out.error = "device and channel ids are required";
    return out;
  }
  auto s = std::make_shared<Stream>();
  s->id = im.next_id++;
  s->transport = req.transport;
  s->purpose = req.purpose;
  s->device = req.device_id;
  s->channel = req.channel_id;
  s->prefix = req.stream.empty() ? "gb28181/" + req.device_id + "/" + req.channel_id : req.stream;
  s->offer_ssrc = req.ssrc;
  s->timeout_ms = req.rtp_timeout_ms ? req.rtp_timeout_ms : im.conf.rtp_timeout_ms;
  s->opened_ms = im.host.now_ms();
  s->last_stats_ms = s->opened_ms;
  s->loop = req.purpose == Purpose::Live ? im.live_loop(s->prefix) : im.pick_loop();
  ReceiverConfig rc;
  rc.transport = req.transport;
  rc.ssrc = req.ssrc;
  rc.reorder_window = im.conf.reorder_window;
  rc.max_video_frame = im.conf.max_video_frame;
  s->rx = std::make_unique<StreamReceiver>(rc);
  s->gop_on = im.conf.gop_cache && req.purpose == Purpose::Live;
  s->gop_max_bytes = im.conf.gop_cache_max_bytes;
  if (s->gop_on) s->gop.reserve(256);
  if (!req.record_path.empty()) {
    if (req.purpose != Purpose::Download) {
      out.error = "record_path is for downloads";
      return out;
    }
    FILE* f = std::fopen(req.record_path.c_str(), "wb");  // once, at open: fail early, truncate
    if (!f) {
      out.error = "cannot create " + req.record_path + ": " + std::strerror(errno);
      return out;
    }
    std::fclose(f);
    s->rec = std::make_shared<Recorder>(req.record_path);
  }

  if (im.host.bus_intern(s->prefix + JN_MEDIA_VIDEO_SUFFIX, &s->video_id) != JN_OK ||
      im.host.bus_intern(s->prefix + JN_MEDIA_AUDIO_SUFFIX, &s->audio_id) != JN_OK) {
    out.error = "bad stream name " + s->prefix;
    if (s->video_id) im.host.bus_release_id(s->video_id);
    return out;
  }
  uint64_t c = cookie(kStream, s->id);
  uint32_t port = 0;
  jn_status st = JN_OK;
  if (req.transport == Transport::Udp) {
    jn_handle h[2] = {0, 0};
    st = im.host.port_bind_udp(im.conf.port_range, im.conf.bind_ip, true, c, h, &port, s->loop);
    s->sock = h[0];
    s->rtcp = h[1];
  } else if (req.transport == Transport::TcpPassive) {
    jn_tcp_options o = Host::tcp_options(JN_FRAME_RAW, 0, 65536);
    o.loop = s->loop;
    st = im.host.port_bind_tcp(im.conf.port_range, im.conf.bind_ip, o, c, &s->listener, &port);
  } else {
    port = 9;  // TCP active: we connect; RFC 4145's discard port in our m= line
  }
  if (st != JN_OK) {
    out.error = std::string("no media port in range ") + im.conf.port_range + " (status " + std::to_string(st) + ")";
    im.host.bus_release_id(s->video_id);
    im.host.bus_release_id(s->audio_id);
    im.host.warn("gb28181 media: open " + s->prefix + ": " + out.error);
    return out;
  }
  s->port = static_cast<uint16_t>(port);
  im.ensure_timers();
  {
    std::unique_lock lk(im.map_mu);
    im.streams[s->id] = s;
  }
  out.id = s->id;
  out.port = s->port;
  out.ip = im.conf.bind_ip;
  out.stream = s->prefix;
  im.host.info("gb28181 media: stream " + std::to_string(s->id) + " " + s->prefix + " " + to_string(s->transport) +
               " port " + std::to_string(s->port) + " loop " + std::to_string(s->loop));
  return out;
}

bool MediaIngest::answer(uint32_t id, const Answer& ans, std::string& error) {
  auto& im = *impl_;
  auto s = im.find(id);
  if (!s || s->sender) {
    error = "no such stream";
    return false;
  }
  int pt = 96;
  if (!ans.pts.empty()) {
    pt = -1;
    for (auto& m : ans.pts)
      if (m.encoding == "PS" || m.encoding == "ps" || m.encoding == "MP2P") pt = m.pt;
    if (pt < 0) {
      error = "the answer offers no PS payload type";
      return false;
    }
  }
  {
    std::lock_guard lk(s->mu);
    s->rx->adopt_answer(ans.has_ssrc, ans.ssrc, pt);
    s->pt = static_cast<uint8_t>(pt);
    s->peer_ip = ans.peer_ip;
    s->peer_port = ans.peer_port;
  }
  if (s->transport == Transport::TcpActive) {
    if (ans.peer_ip.empty() || ans.peer_port == 0) {
      error = "TCP active needs the answer's address and port";
      return false;
    }
    jn_tcp_options o = Host::tcp_options(JN_FRAME_RAW, 0, 65536);
    o.loop = s->loop;
    jn_handle conn = 0;
    jn_status st = im.host.tcp_connect(host_port(ans.peer_ip, ans.peer_port), o, cookie(kStream, s->id), &conn);
    if (st != JN_OK) {
      error = "connect to " + host_port(ans.peer_ip, ans.peer_port) + " failed (status " + std::to_string(st) + ")";
      return false;
    }
    std::lock_guard lk(s->mu);
    s->conn = conn;
  }
  return true;
}

bool MediaIngest::close(uint32_t id, std::string_view reason) {
  auto& im = *impl_;
  std::shared_ptr<Stream> s;
  {
    std::unique_lock lk(im.map_mu);
    auto it = im.streams.find(id);
    if (it == im.streams.end()) return false;
    s = it->second;
    im.streams.erase(it);
  }
  jn_handle sock, rtcp, listener, conn;
  std::vector<Stream::ViewerOut> outs;
  {
    std::lock_guard lk(s->mu);
    if (s->rx) {
      PubSink sink(im, *s, im.host.now_ms());
      s->rx->finish(sink);  // the last whole frames
    }
    sock = s->sock;
    rtcp = s->rtcp;
    listener = s->listener;
    conn = s->conn;
    s->ended = true;
    im.gop_clear(*s);
    s->gop_on = false;
    outs.swap(s->viewer_outs);
  }
  if (s->rec) im.record_flush(s->rec);  // the rest of the file; its writes finish on their own
  // No lock held: closing waits for the media loop's batch.
  if (sock) im.host.api()->udp_close(im.host.ctx(), sock);
  if (rtcp) im.host.api()->udp_close(im.host.ctx(), rtcp);
  if (listener) im.host.tcp_close(listener);
  if (conn) im.host.tcp_close(conn);
  if (s->sub) im.host.bus_unsubscribe(s->sub);
  if (s->video_id) im.host.bus_release_id(s->video_id);
  if (s->audio_id) im.host.bus_release_id(s->audio_id);
  for (auto& v : outs) {
    im.host.bus_release_id(v.video_id);
    im.host.bus_release_id(v.audio_id);
  }
  im.host.info("gb28181 media: stream " + std::to_string(id) + " " + s->prefix + " closed: " + std::string(reason));
  return true;
}

bool MediaIngest::stats(uint32_t id, Stats& out) const {
  auto s = impl_->find(id);
  if (!s) return false;
  std::lock_guard lk(s->mu);
  out = Stats{};
  out.id = s->id;
  out.transport = s->transport;
  out.stream = s->prefix;
  if (s->rx) s->rx->fill(out);
  out.gop_cache_frames = s->gop.size();
  out.gop_cache_bytes = s->gop_bytes;
  out.gop_overflows = s->gop_overflows;
  out.catch_ups = s->catch_ups;
  if (s->rec) {
    std::lock_guard rl(s->rec->mu);
    out.recorded_bytes = s->rec->written;
    out.record_errors = s->rec->errors;
  }
  if (s->sender) {
    out.ssrc = s->ssrc;
    out.packets = s->sent;
    out.malformed = s->not_pcma;
  }
  return true;
}

std::vector<Stats> MediaIngest::all_stats() const {
  std::vector<uint32_t> ids;
  {
    std::shared_lock lk(impl_->map_mu);
    for (auto& [id, s] : impl_->streams) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  std::vector<Stats> out;
  for (uint32_t id : ids) {
    Stats st;
    if (stats(id, st)) out.push_back(st);
  }
  return out;
}

// --- hooks ---

bool MediaIngest::on_udp(jn_handle sock, uint64_t c, const jn_datagram* d, size_t n) {
  if (!owns_cookie(c)) return false;
  auto s = impl_->find(static_cast<uint32_t>(value_of(c)));
  if (!s || sock != s->sock || !s->rx) return true;  // closed meanwhile, or RTCP (ignored)
  uint64_t now = impl_->host.now_ms();
  std::lock_guard lk(s->mu);
  PubSink sink(*impl_, *s, now);
  for (size_t i = 0; i < n; ++i) {
    const jn_buf* b = d[i].buf;
    s->rx->on_datagram(b->data, b->len, now, sink);
  }
  return true;
}

bool MediaIngest::on_tcp(const jn_tcp_event& ev) {
  if (!owns_cookie(ev.cookie)) return false;
  auto& im = *impl_;
  auto s = im.find(static_cast<uint32_t>(value_of(ev.cookie)));
  if (!s) {
    if (ev.type == JN_TCP_ACCEPTED || ev.type == JN_TCP_CONNECTED) im.host.tcp_close(ev.conn);
    return true;
  }
  uint64_t now = im.host.now_ms();
  std::unique_lock lk(s->mu);
  PubSink sink(im, *s, now);
  switch (ev.type) {
    case JN_TCP_ACCEPTED:
      if (s->conn && s->conn != ev.conn) {
        lk.unlock();
        im.host.warn("gb28181 media " + s->prefix + ": a second connection from " +
                     junction::util::format_addr(ev.peer) + " refused (one per stream)");
        im.host.tcp_close(ev.conn);
        return true;
      }
      s->conn = ev.conn;
      break;
    case JN_TCP_CONNECTED:
      s->conn = ev.conn;
      break;
    case JN_TCP_FRAME:
      if (ev.conn == s->conn && s->rx) s->rx->on_tcp_bytes(ev.data, ev.len, now, sink);
      break;
    case JN_TCP_CLOSED:
      if (ev.conn == s->conn) {
        if (s->rx) s->rx->finish(sink);
        s->conn = 0;
        s->ended = true;
        im.push_event(EventType::StreamEnd, *s,
                      ev.status == JN_OK ? "the device closed the connection"
                                         : "connection lost (status " + std::to_string(ev.status) + ")");
      }
      break;
    default:
      break;
  }
  return true;
}

bool MediaIngest::on_timer(jn_handle, uint64_t c) {
  if (!owns_cookie(c)) return false;
  if (kind_of(c) == kLoopTimer) impl_->tick(static_cast<uint32_t>(value_of(c)));
  return true;
}

bool MediaIngest::on_post(uint64_t c) {
  if (!owns_cookie(c)) return false;
  if (kind_of(c) == kPostEvents) {
    impl_->deliver_events();
  } else if (kind_of(c) == kPostStartTimer) {
    jn_handle t = 0;
    impl_->host.timer(kTickMs, kTickMs, cookie(kLoopTimer, value_of(c)), &t);
  }
  return true;
}

bool MediaIngest::on_work_done(jn_handle, uint64_t c, jn_status) {
  if (!owns_cookie(c)) return false;
  if (kind_of(c) == kWork) impl_->write_done(value_of(c));
  return true;
}

bool MediaIngest::on_event(std::string_view topic, std::string_view json) {
  if (topic.substr(0, std::strlen(JN_MEDIA_KEYFRAME_REQUEST_TOPIC)) != JN_MEDIA_KEYFRAME_REQUEST_TOPIC) return false;
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_object() || !j.contains("stream") || !j["stream"].is_string()) return false;
  std::string name = j["stream"].get<std::string>();
  std::string reason = j.value("reason", std::string("join"));
  std::shared_ptr<Stream> hit;
  std::string viewer;  // a per-viewer stream's tag (viewer_stream())
  {
    std::shared_lock lk(impl_->map_mu);
    for (auto& [id, s] : impl_->streams) {
      if (s->sender) continue;
      if (name == s->prefix + JN_MEDIA_VIDEO_SUFFIX) hit = s;
      else if (std::string vp = s->prefix + "/viewer/"; name.size() > vp.size() + std::strlen(JN_MEDIA_VIDEO_SUFFIX) &&
               name.compare(0, vp.size(), vp) == 0 && name.ends_with(JN_MEDIA_VIDEO_SUFFIX)) {
        hit = s;
        viewer = name.substr(vp.size(), name.size() - vp.size() - std::strlen(JN_MEDIA_VIDEO_SUFFIX));
      }
    }
  }
  if (!hit) return false;
  if (!viewer.empty()) {
    // The viewer's consumer joined: its stream starts from the cached GOP (at the next frame).
    bool served = false;
    {
      std::lock_guard lk(hit->mu);
      for (auto& v : hit->viewer_outs)
        if (v.tag == viewer && !v.live && !v.burst) {
          v.burst = true;
          served = hit->gop_valid && !hit->gop.empty();
          if (served) ++hit->catch_ups;
        }
    }
    if (served) impl_->host.counter_add("gb_catch_ups_total", 1);
  }
  if (viewer.empty() && j.contains("catch_up")) impl_->catch_up(*hit, j);  // a viewer stream gets it in line
  if (hit->kf.request(impl_->host.now_ms() * 1000000ull))
    impl_->listener.on_ingest_event(Event{EventType::KeyframeWanted, hit->id, hit->device, hit->channel, hit->prefix, reason});
  return true;
}

std::string MediaIngest::viewer_stream(uint32_t id, const std::string& tag) {
  auto& im = *impl_;
  if (tag.empty() || tag.size() > 64 || tag.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz-_:") != std::string::npos)
    return {};
  std::shared_ptr<Stream> s;
  {
    std::shared_lock lk(im.map_mu);
    auto it = im.streams.find(id);
    if (it != im.streams.end()) s = it->second;
  }
  if (!s || s->sender) return {};
  std::string base = s->prefix + "/viewer/" + tag;
  {
    std::lock_guard lk(s->mu);
    if (!s->gop_on || s->ended) return {};
    for (auto& v : s->viewer_outs)
      if (v.tag == tag) return base;
  }
  Stream::ViewerOut v;
  v.tag = tag;
  if (im.host.bus_intern(base + JN_MEDIA_VIDEO_SUFFIX, &v.video_id) != JN_OK ||
      im.host.bus_intern(base + JN_MEDIA_AUDIO_SUFFIX, &v.audio_id) != JN_OK) {
    if (v.video_id) im.host.bus_release_id(v.video_id);
    im.host.warn("gb28181 media " + s->prefix + ": no bus stream for viewer " + tag + " (it gets the live streams)");
    return {};
  }
  std::lock_guard lk(s->mu);
  s->viewer_outs.push_back(std::move(v));
  return base;
}

void MediaIngest::drop_viewer_stream(uint32_t id, const std::string& tag) {
  auto& im = *impl_;
  std::shared_ptr<Stream> s;
  {
    std::shared_lock lk(im.map_mu);
    auto it = im.streams.find(id);
    if (it != im.streams.end()) s = it->second;
  }
  if (!s) return;
  Stream::ViewerOut gone;
  {
    std::lock_guard lk(s->mu);
    auto it = std::find_if(s->viewer_outs.begin(), s->viewer_outs.end(), [&](auto& v) { return v.tag == tag; });
    if (it == s->viewer_outs.end()) return;
    gone = *it;
    s->viewer_outs.erase(it);
  }
  im.host.bus_release_id(gone.video_id);
  im.host.bus_release_id(gone.audio_id);
}

// --- send side (broadcast / talk) ---

namespace {
struct SendSink final : junction::media::PsRtpPacketizer::Sink {
  Host host;
  Stream& s;
  SendSink(Host h, Stream& st) : host(h), s(st) {}
  void on_packet(const uint8_t* p, size_t n) override {
    jn_status st = JN_ERR_INVALID;
    if (s.transport == Transport::Udp) {
      if (s.have_to) st = host.udp_send(s.sock, s.to, std::string_view(reinterpret_cast<const char*>(p), n));
    } else if (s.conn) {
      st = host.tcp_send(s.conn, std::string_view(reinterpret_cast<const char*>(p), n));  // LEN16 adds RFC 4571
    }
    if (st == JN_OK) ++s.sent;
    else ++s.send_errors;
  }
};
}  // namespace

Opened MediaIngest::open_sender(const SenderRequest& req) {
  auto& im = *impl_;
  Opened out;
  if (req.source.empty()) {
    out.error = "a source stream is required";
    return out;
  }
  auto s = std::make_shared<Stream>();
  s->id = im.next_id++;
  s->sender = true;
  s->transport = req.transport;
  s->device = req.device_id;
  s->channel = req.channel_id;
  s->prefix = req.source;
  s->sreq = req;
  s->ps = req.ps;
  s->pt = req.payload_type;
  s->ssrc = req.ssrc;
  uint64_t c = cookie(kStream, s->id);
  uint32_t port = 0;
  jn_status st = JN_OK;
  if (req.transport == Transport::Udp) {
    jn_handle h[2] = {0, 0};
    st = im.host.port_bind_udp(im.conf.port_range, im.conf.bind_ip, true, c, h, &port, 0);
    s->sock = h[0];
    s->rtcp = h[1];
  } else if (req.transport == Transport::TcpPassive) {
    jn_tcp_options o = Host::tcp_options(JN_FRAME_LEN16, 0, 65535);
    st = im.host.port_bind_tcp(im.conf.port_range, im.conf.bind_ip, o, c, &s->listener, &port);
  } else {
    port = 9;
  }
  if (st != JN_OK) {
    out.error = "no media port in range " + im.conf.port_range;
    return out;
  }
  s->port = static_cast<uint16_t>(port);
  {
    std::unique_lock lk(im.map_mu);
    im.streams[s->id] = s;
  }
  out.id = s->id;
  out.port = s->port;
  out.ip = im.conf.bind_ip;
  out.stream = s->prefix;
  return out;
}

bool MediaIngest::answer_sender(uint32_t id, const SenderAnswer& ans, std::string& error) {
  auto& im = *impl_;
  auto s = im.find(id);
  if (!s || !s->sender) {
    error = "no such sender";
    return false;
  }
  {
    std::lock_guard lk(s->mu);
    s->ps = ans.has_ps;
    s->pt = ans.payload_type;
    s->peer_ip = ans.peer_ip;
    s->peer_port = ans.peer_port;
    if (s->ps) {
      junction::media::PsRtpPacketizerConfig pc;
      pc.payload_type = s->pt;
      pc.ssrc = s->ssrc;
      s->ps_tx = std::make_unique<junction::media::PsRtpSender>(junction::media::PsMuxerConfig{}, pc);
    }
    if (s->transport == Transport::Udp) {
      if (!junction::util::parse_addr(host_port(ans.peer_ip, ans.peer_port), s->to)) {
        error = "bad device address " + ans.peer_ip;
        return false;
      }
      s->have_to = true;
    }
  }
  if (s->transport == Transport::TcpActive) {
    jn_tcp_options o = Host::tcp_options(JN_FRAME_LEN16, 0, 65535);
    jn_handle conn = 0;
    if (im.host.tcp_connect(host_port(ans.peer_ip, ans.peer_port), o, cookie(kStream, s->id), &conn) != JN_OK) {
      error = "connect to the device failed";
      return false;
    }
    std::lock_guard lk(s->mu);
    s->conn = conn;
  }
  jn_handle sub = 0;
  if (im.host.bus_subscribe(s->prefix, cookie(kSenderBus, s->id), &sub) != JN_OK) {
    error = "cannot subscribe to " + s->prefix;
    return false;
  }
  std::lock_guard lk(s->mu);
  s->sub = sub;
  return true;
}

bool MediaIngest::on_bus(jn_handle, uint64_t c, jn_buf* buf) {
  if (!owns_cookie(c) || kind_of(c) != kSenderBus) return false;
  auto s = impl_->find(static_cast<uint32_t>(value_of(c)));
  if (!s) return true;
  std::lock_guard lk(s->mu);
  FrameView f = junction::media::frame_of(buf);
  if (!f.data || f.meta.codec != JN_CODEC_PCMA) {
    ++s->not_pcma;  // talk/broadcast is G.711A (the document): anything else is not sent
    return true;
  }
  SendSink sink(impl_->host, *s);
  if (s->ps && s->ps_tx) {
    if (!s->ps_tx->send(f, sink)) ++s->send_errors;
    return true;
  }
  // Plain RTP, PT 8: a 12-byte header before the frame's bytes.
  uint8_t h[12];
  h[0] = 0x80;
  h[1] = static_cast<uint8_t>(0x80 | (s->pt & 0x7F));
  uint16_t seq = s->seq++;
  uint32_t ts = static_cast<uint32_t>(f.meta.pts);
  h[2] = seq >> 8, h[3] = seq & 0xFF;
  h[4] = ts >> 24, h[5] = ts >> 16, h[6] = ts >> 8, h[7] = ts;
  h[8] = s->ssrc >> 24, h[9] = s->ssrc >> 16, h[10] = s->ssrc >> 8, h[11] = s->ssrc;
  if (s->transport == Transport::Udp) {
    if (!s->have_to) return true;
    jn_send item{};
    item.sock = s->sock;
    item.to = s->to;
    item.head = h;
    item.head_len = sizeof h;
    item.buf = buf;  // the frame's bytes go out by reference
    if (impl_->host.udp_send(&item, 1) == JN_OK) ++s->sent;
    else ++s->send_errors;
  } else if (s->conn) {
    s->scratch.assign(h, h + sizeof h);
    s->scratch.insert(s->scratch.end(), f.data, f.data + f.size);
    sink.on_packet(s->scratch.data(), s->scratch.size());
  }
  return true;
}

// --- hot reload ---

// A reload with a download in progress: the write in flight is waited for (bounded), then what is
// left is appended here, synchronously -- once per reload, so the file stays in order.
void MediaIngest::save_recorder(const std::shared_ptr<Recorder>& rec) {
  auto& im = *impl_;
  std::vector<WriteJob*> mine;
  {
    std::lock_guard jl(im.job_mu);
    for (auto& [id, j] : im.jobs)
      if (j->rec == rec) mine.push_back(j.get());
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (WriteJob* j : mine)
    while (!j->finished.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::lock_guard lk(rec->mu);
  WriteJob w;
  w.rec = rec;
  for (auto& c : rec->pending) w.data.insert(w.data.end(), c.begin(), c.end());
  w.data.insert(w.data.end(), rec->chunk.begin(), rec->chunk.end());
  rec->pending.clear();
  rec->chunk.clear();
  if (w.data.empty()) return;
  WriteJob::write(w);
  if (!w.ok) im.host.warn("gb28181 media: download " + rec->path + ": write at reload failed: " + std::strerror(w.err));
}

std::string MediaIngest::save_state() {
  auto& im = *impl_;
  nlohmann::json j;
  j["next_id"] = im.next_id;
  j["next_loop"] = im.next_loop;
  j["live_loops"] = im.live_loops;
  j["timers"] = im.timers_started;
  auto arr = nlohmann::json::array();
  std::shared_lock lk(im.map_mu);
  for (auto& [id, s] : im.streams) {
    std::lock_guard sl(s->mu);
    // The media loops are held (the core's reload barrier): the receiver's whole state (the frame
    // in progress, packets held for reordering) goes to the new instance, which completes it.
    std::string rx_state;
    if (s->rx) {
      PubSink sink(im, *s, im.host.now_ms());
      rx_state = s->rx->save(sink);
    }
    nlohmann::json e;
    e["id"] = s->id;
    e["sender"] = s->sender;
    e["transport"] = static_cast<int>(s->transport);
    e["purpose"] = static_cast<int>(s->purpose);
    e["device"] = s->device;
    e["channel"] = s->channel;
    e["prefix"] = s->prefix;
    e["loop"] = s->loop;
    e["video_id"] = s->video_id;
    e["audio_id"] = s->audio_id;
    e["sock"] = s->sock;
    e["rtcp"] = s->rtcp;
    e["listener"] = s->listener;
    e["conn"] = s->conn;
    e["port"] = s->port;
    e["peer_ip"] = s->peer_ip;
    e["peer_port"] = s->peer_port;
    e["offer_ssrc"] = s->offer_ssrc;
    e["ssrc"] = s->sender ? s->ssrc : (s->rx ? s->rx->ssrc() : 0);
    e["timeout_ms"] = s->timeout_ms;
    e["first_key"] = s->first_key_reported;
    e["ended"] = s->ended;
    e["next_seq"] = {s->next_seq[0], s->next_seq[1]};
    e["clean"] = false;  // (an older instance restoring this: the frame in progress was not flushed)
    if (!rx_state.empty()) e["rx"] = junction::util::base64_encode(rx_state);
    e["seq_base"] = {s->seq_base[0], s->seq_base[1]};
    e["sub"] = s->sub;
    e["ps"] = s->ps;
    e["pt"] = s->pt;
    e["seq"] = s->seq;
    e["have_to"] = s->have_to;
    // The GOP cache's refs are not carried (the new instance caches from the next keyframe).
    im.gop_clear(*s);
    s->gop_valid = false;
    e["gop_on"] = s->gop_on;
    e["gop_max"] = s->gop_max_bytes;
    // Per-viewer streams keep their bus ids (they survive the reload) and carry on live.
    nlohmann::json vo = nlohmann::json::array();
    for (auto& v : s->viewer_outs) vo.push_back({{"tag", v.tag}, {"v", v.video_id}, {"a", v.audio_id}, {"live", v.live || v.burst}});
    e["viewers"] = std::move(vo);
    if (s->rec) {
      e["record_path"] = s->rec->path;
      save_recorder(s->rec);
    }
    arr.push_back(std::move(e));
  }
  j["streams"] = std::move(arr);
  return j.dump();
}

bool MediaIngest::restore_state(std::string_view saved, std::string& error) {
  auto& im = *impl_;
  auto j = nlohmann::json::parse(saved, nullptr, false);
  if (!j.is_object()) {
    error = "media state is not a JSON object";
    return false;
  }
  im.next_id = j.value("next_id", 1u);
  im.next_loop = j.value("next_loop", 0u);
  im.live_loops.clear();
  if (j.contains("live_loops") && j["live_loops"].is_object())
    for (auto& [k, v] : j["live_loops"].items())
      if (v.is_number_unsigned() && im.live_loops.size() < kMaxLiveLoops) im.live_loops[k] = v.get<uint32_t>();
  im.timers_started = j.value("timers", false);  // the old instance's loop timers keep running
  uint64_t now = im.host.now_ms();
  for (auto& e : j.value("streams", nlohmann::json::array())) {
    auto s = std::make_shared<Stream>();
    s->id = e.value("id", 0u);
    s->sender = e.value("sender", false);
    s->transport = static_cast<Transport>(e.value("transport", 0));
    s->purpose = static_cast<Purpose>(e.value("purpose", 0));
    s->device = e.value("device", "");
    s->channel = e.value("channel", "");
    s->prefix = e.value("prefix", "");
    s->loop = e.value("loop", 0u);
    s->video_id = e.value("video_id", 0u);
    s->audio_id = e.value("audio_id", 0u);
    s->sock = e.value("sock", jn_handle{0});
    s->rtcp = e.value("rtcp", jn_handle{0});
    s->listener = e.value("listener", jn_handle{0});
    s->conn = e.value("conn", jn_handle{0});
    s->port = e.value("port", uint16_t{0});
    s->peer_ip = e.value("peer_ip", "");
    s->peer_port = e.value("peer_port", uint16_t{0});
    s->offer_ssrc = e.value("offer_ssrc", 0u);
    s->timeout_ms = e.value("timeout_ms", 0u);
    s->first_key_reported = e.value("first_key", false);
    s->ended = e.value("ended", false);
    s->opened_ms = now;
    s->last_stats_ms = now;
    if (e.contains("next_seq") && e["next_seq"].is_array() && e["next_seq"].size() == 2) {
      s->seq_base[0] = s->next_seq[0] = e["next_seq"][0].get<uint32_t>();
      s->seq_base[1] = s->next_seq[1] = e["next_seq"][1].get<uint32_t>();
    }
    s->clean_restore = e.value("clean", false);
    s->sub = e.value("sub", jn_handle{0});
    s->ps = e.value("ps", true);
    s->pt = e.value("pt", uint8_t{96});
    s->seq = e.value("seq", uint16_t{0});
    s->gop_on = e.value("gop_on", false);
    s->gop_max_bytes = e.value("gop_max", 4u << 20);
    if (s->gop_on) s->gop.reserve(256);
    if (e.contains("viewers") && e["viewers"].is_array())
      for (auto& v : e["viewers"]) {
        if (!v.is_object()) continue;
        Stream::ViewerOut o;
        o.tag = v.value("tag", std::string());
        o.video_id = v.value("v", 0u);
        o.audio_id = v.value("a", 0u);
        o.live = v.value("live", false);
        if (!o.tag.empty() && o.video_id && o.audio_id) s->viewer_outs.push_back(std::move(o));
      }
    if (s->sender) {
      s->ssrc = e.value("ssrc", 0u);
      s->have_to = e.value("have_to", false) &&
                   junction::util::parse_addr(host_port(s->peer_ip, s->peer_port), s->to);
      if (s->ps) {
        junction::media::PsRtpPacketizerConfig pc;
        pc.payload_type = s->pt;
        pc.ssrc = s->ssrc;
        pc.first_seq = s->seq;
        s->ps_tx = std::make_unique<junction::media::PsRtpSender>(junction::media::PsMuxerConfig{}, pc);
      }
    } else {
      if (e.contains("record_path")) s->rec = std::make_shared<Recorder>(e.value("record_path", ""));
      ReceiverConfig rc;
      rc.transport = s->transport;
      rc.reorder_window = im.conf.reorder_window;
      rc.max_video_frame = im.conf.max_video_frame;
      uint32_t ssrc = e.value("ssrc", 0u);
      s->rx = std::make_unique<StreamReceiver>(rc);
      // The SSRC the old instance settled on is the stream's.
      s->rx->adopt_answer(ssrc != 0, ssrc, s->pt);
      // Its receiver state: the frame in progress completes here, numbering continues in the
      // demuxer itself (no seq_base, no DISCONT to hide). Without it (an older instance, a bad
      // blob) the demuxer starts at the next pack header.
      std::string blob;
      if (e.contains("rx") && e["rx"].is_string()) {
        if (junction::util::base64_decode(e["rx"].get<std::string>(), blob) && s->rx->restore(blob)) {
          // The demuxer's own numbering goes on: the offset to the published one stays.
          auto base = e.value("seq_base", std::vector<uint32_t>{0, 0});
          s->seq_base[0] = base.size() == 2 ? base[0] : 0;
          s->seq_base[1] = base.size() == 2 ? base[1] : 0;
          s->clean_restore = false;
        } else {
          im.host.warn("gb28181 media " + s->prefix + ": the receiver state of the old instance could not be restored "
                       "(the frame in progress at the reload is dropped)");
        }
      }
    }
    if (!s->id) continue;
    std::unique_lock lk(im.map_mu);
    im.streams[s->id] = s;
  }
  return true;
}

}  // namespace gb::media
