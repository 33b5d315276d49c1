// intercom-json: media on the bus (README "Media on the bus"): reading neutral descriptions,
// screen -> bus HTTP-FLV pulls, bus -> screen RTMP pushes.

#include "intercom_json.hpp"

#include <algorithm>
#include <cstring>

namespace intercom_json {

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

std::string IntercomJson::unique_bus_base(const std::string& sid, uint64_t call_id) const {
  std::string base = "intercom-json/" + bus_name(sid);
  for (auto& [id, c] : calls_)
    if (id != call_id && c.bus_base == base) return base + "-" + std::to_string(call_id);
  return base;
}

// offer: an OFFER (the far leg's streams are not known yet): sendrecv whenever pushes are on.
void IntercomJson::add_bus_streams(MediaOut& media, const Call& c, const Endpoint& e, bool offer) const {
  // sendrecv where the far leg's own stream of that kind is pushed to the screen.
  const bool push = offer ? !conf_.stream_push_url.empty() : !c.push_id.empty();
  if (!e.video.empty())
    media.add_bus(JN_MEDIA_VIDEO, "H264", 90000, c.bus_base + JN_MEDIA_VIDEO_SUFFIX,
                  push && (offer || !c.far_video_bus.empty()) ? JN_DIR_SENDRECV : JN_DIR_SENDONLY);
  if (!e.audio.empty())
    media.add_bus(JN_MEDIA_AUDIO, conf_.bus_audio_codec.c_str(), 8000, c.bus_base + JN_MEDIA_AUDIO_SUFFIX,
                  push && (offer || !c.far_audio_bus.empty()) ? JN_DIR_SENDRECV : JN_DIR_SENDONLY);
}

// The far leg's own bus streams (the first audio and the first video that name one).
void IntercomJson::far_bus_streams(const jn_media_desc* media, Call& c) {
  for (uint32_t i = 0; media && i < media->count; ++i) {
    const jn_media_stream* m = media->streams[i];
    if (!m || !JN_HAS_FIELD(m, jn_media_stream, bus_stream) || !m->bus_stream.len) continue;
    if (m->kind == JN_MEDIA_VIDEO && c.far_video_bus.empty()) c.far_video_bus = std::string(to_sv(m->bus_stream));
    if (m->kind == JN_MEDIA_AUDIO && c.far_audio_bus.empty()) c.far_audio_bus = std::string(to_sv(m->bus_stream));
  }
}

// Where the box pulls a stream: one of ours (a bare id, a URL on the box) through
// stream_pull_url; another server's http:// URL as it is.
std::string IntercomJson::pull_url_of(const std::string& v) const {
  if (!is_url(v) || ours(v, conf_.net)) return pull_url_for(conf_.stream_pull_url, bare_id(v));
  return v;
}

// Starts pulling the screen's streams of e (one pull per distinct URL). False when e names none.
bool IntercomJson::start_pulls(Call& c, const Endpoint& e) {
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

void IntercomJson::stop_pulls(uint64_t call_id) {
  for (auto it = pulls_.begin(); it != pulls_.end();) {
    if (it->second.call != call_id) {
      ++it;
      continue;
    }
    Pull& p = it->second;
    if (p.timer) host().stop_timer(p.timer);
    if (p.req) {
      pull_reqs_.erase(p.req);
      host().cancel(p.req);
    }
    host().debug("pull " + p.url + " stopped (" + std::to_string(p.video_frames) + " video, " + std::to_string(p.audio_frames) +
                 " audio frames)");
    it = pulls_.erase(it);
  }
}

void IntercomJson::pull_connect(uint64_t pid) {
  Pull& p = pulls_[pid];
  std::string why;
  if (!parse_pull_url(p.url, p.host_port, p.path, why)) {
    p.ended = true;
    p.last_error = why;
    host().warn("pull " + p.url + " not started: " + why);
    return;
  }
  if (!host().has_http_stream()) {  // a 2.2 core would buffer the endless body
    p.ended = true;
    p.last_error = "the core has no streamed HTTP (ABI 2.3 needed)";
    host().warn("pull " + p.url + " not started: " + p.last_error);
    return;
  }
  // The core's streamed HTTP client: the head, then the body dechunked, as it comes.
  const jn_header headers[] = {{to_jn("User-Agent"), to_jn("junction-intercom-json")}, {to_jn("Accept"), to_jn("*/*")}};
  jn_http_client_request q = Host::http_client_request("GET", p.url);
  q.headers = headers;
  q.header_count = 2;
  q.timeout_ms = conf_.pull_idle_ms;  // the head, then each silence: a stalled server ends it, then retried
  q.stream = 1;
  jn_handle h = 0;
  if (jn_status st = host().http_request(q, kPullCookie, &h); st != JN_OK) {
    p.last_error = "request refused (status " + std::to_string(st) + ")";
    return pull_retry_later(pid);
  }
  junction::rtmp::flv::ReaderConfig rc;
  rc.max_tag_bytes = conf_.pull_max_tag_bytes;
  p.flv = std::make_unique<FlvPull>(rc);
  p.req = h;
  p.got_frame = false;
  pull_reqs_[h] = pid;
}

void IntercomJson::pull_retry_later(uint64_t pid) {
  Pull& p = pulls_[pid];
  if (p.ended || p.timer) return;
  // Backoff: from pull_retry_ms, doubled per failed attempt up to pull_retry_max_ms; a
  // connection that delivered frames starts over.
  p.backoff_ms = p.got_frame || !p.backoff_ms ? conf_.pull_retry_ms : std::min(conf_.pull_retry_max_ms, p.backoff_ms * 2);
  p.got_frame = false;
  p.discont = true;
  host().timer(p.backoff_ms, 0, kPullTimerBase + pid, &p.timer);
}

void IntercomJson::pull_retry_due(uint64_t pid) {
  auto it = pulls_.find(pid);
  if (it == pulls_.end()) return;
  it->second.timer = 0;
  if (!it->second.ended && !it->second.req) pull_connect(pid);
}

// Ends a pull's request; retry = pull again later (else the stream is over: a bad FLV).
void IntercomJson::pull_close(uint64_t pid, bool retry) {
  Pull& p = pulls_[pid];
  if (p.req) {
    pull_reqs_.erase(p.req);
    host().cancel(p.req);  // nothing more of it arrives
    p.req = 0;
  }
  p.flv.reset();
  if (retry) pull_retry_later(pid);
  else p.ended = true;
}

// A pull's response as the core reads it: the head (status), then FLV bytes, dechunked.
void IntercomJson::on_http_chunk(const jn_http_client_chunk& c) {
  if (c.cookie != kPullCookie) return;
  auto it = pull_reqs_.find(c.request);
  if (it == pull_reqs_.end()) {
    // A pull of an earlier instance (hot reload) or of a call that ended: not ours any more.
    host().cancel(c.request);
    return;
  }
  const uint64_t pid = it->second;
  Pull& p = pulls_[pid];
  if (c.head) {
    ++p.connects;
    if (!p.flv->head(c.status)) {
      p.last_error = p.flv->error();
      host().warn("pull " + p.url + ": " + p.last_error + ": retrying");
      host().counter_add("intercom_pull_errors_total", 1, "reason=\"http\"");
      return pull_close(pid, true);
    }
  }
  auto on_frame = [this, pid](const junction::media::FrameView& f) { publish_frame(pid, f); };
  junction::media::FrameSink sink = junction::media::frame_sink(on_frame);
  if (p.flv->feed(reinterpret_cast<const uint8_t*>(c.data.ptr), c.data.len, sink)) return;
  p.last_error = p.flv->error();
  host().warn("pull " + p.url + ": " + p.last_error + ": stream ended");
  host().counter_add("intercom_pull_errors_total", 1, "reason=\"flv\"");
  pull_close(pid, false);
}

// A pull's request ended (the server closed or ended the body, a reset, a refused connection, no
// byte for pull_idle_ms): pulled again with backoff.
void IntercomJson::on_http_response(const jn_http_client_response& r) {
  if (r.cookie != kPullCookie) return;
  auto it = pull_reqs_.find(r.request);
  if (it == pull_reqs_.end()) return;  // an earlier instance's, or a call that ended
  const uint64_t pid = it->second;
  pull_reqs_.erase(it);
  Pull& p = pulls_[pid];
  p.req = 0;
  p.flv.reset();
  p.last_error = "closed by the stream server (" + (r.error.len ? std::string(to_sv(r.error)) : std::string("end of the stream")) + ")";
  host().info("pull " + p.url + ": " + p.last_error + "; retrying");
  pull_retry_later(pid);
}

// One frame of a pull onto its bus stream (copied into a pool buffer: the reader's view is
// borrowed). Per-track seq continues over reconnects; the first frame after one says DISCONT.
void IntercomJson::publish_frame(uint64_t pid, const junction::media::FrameView& f) {
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

json IntercomJson::list_pulls() const {
  json arr = json::array();
  for (auto& [pid, p] : pulls_) {
    auto c = calls_.find(p.call);
    arr.push_back({{"call", c == calls_.end() ? "" : c->second.call_id}, {"url", p.url},
                   {"video_stream", p.video ? p.video_stream : ""}, {"audio_stream", p.audio ? p.audio_stream : ""},
                   {"connected", p.req != 0}, {"connects", p.connects}, {"video_frames", p.video_frames},
                   {"audio_frames", p.audio_frames}, {"ended", p.ended}, {"last_error", p.last_error}});
  }
  return arr;
}

void IntercomJson::start_push(Call& c) {
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

Push* IntercomJson::push(uint64_t pid) {
  auto it = pushes_.find(pid);
  return it == pushes_.end() ? nullptr : it->second.get();
}

void IntercomJson::stop_push(uint64_t call_id) {
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

void IntercomJson::push_connect(uint64_t pid) {
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

void IntercomJson::push_retry_later(uint64_t pid) {
  Push& p = *push(pid);
  if (p.ended || p.timer) return;
  p.backoff_ms = p.published || !p.backoff_ms ? conf_.pull_retry_ms : std::min(conf_.pull_retry_max_ms, p.backoff_ms * 2);
  p.published = false;
  host().timer(p.backoff_ms, 0, kPushTimerBase + pid, &p.timer);
}

void IntercomJson::push_retry_due(uint64_t pid) {
  Push* p = push(pid);
  if (!p) return;
  p->timer = 0;
  if (!p->ended && !p->conn) push_connect(pid);
}

void IntercomJson::push_state(uint64_t pid, junction::rtmp::PublisherStatus st, std::string_view why) {
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

void IntercomJson::on_push_tcp(const jn_tcp_event& ev) {
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

void IntercomJson::on_bus(jn_handle, uint64_t cookie, jn_buf* buf) {
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

json IntercomJson::list_pushes() {
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

}  // namespace intercom_json
