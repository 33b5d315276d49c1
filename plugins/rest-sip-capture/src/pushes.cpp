// The media plane glue: the call's RTP/RTCP pairs on a media loop, frames to the bus and to the
// RTMP outputs, RTCP receiver reports, keyframe requests, the RTP inactivity timeout, and the
// RTMP outputs' connections (core TCP on the same media loop), their statuses and reconnects.
#include "plugin.hpp"

#include <junction/media/rtp_codecs.hpp>
#include <junction/util/addr.hpp>
#include <junction/util/random.hpp>

#include <cstring>

namespace capture {

using junction::sdk::Host;
using junction::sdk::to_jn;
using junction::sdk::to_sv;
using junction::media::FrameView;
namespace rtp = junction::proto::rtp;

namespace {
uint32_t random_u32() {
  std::string b;
  if (!junction::util::random_bytes(4, b) || b.size() != 4) return 0x4a554e43;  // only labels our RTCP
  uint32_t v;
  std::memcpy(&v, b.data(), 4);
  return v ? v : 1;
}
bool is_ip(const std::string& h) {
  jn_addr a{};
  return junction::util::parse_ip(h, a);
}
}  // namespace

std::shared_ptr<CallMedia> CapturePlugin::media_of(uint64_t call) {
  std::lock_guard<std::mutex> g(idx_mu_);
  auto it = media_.find(call);
  return it == media_.end() ? nullptr : it->second;
}

std::shared_ptr<Push> CapturePlugin::push_of(uint64_t id) {
  std::lock_guard<std::mutex> g(idx_mu_);
  auto it = pushes_.find(id);
  return it == pushes_.end() ? nullptr : it->second;
}

bool CapturePlugin::media_open(Call& c, std::string& err) {
  auto m = std::make_shared<CallMedia>();
  m->id = c.id;
  m->call_id = c.call_id;
  m->publish_bus = conf_.bus_publish;
  m->dtmf_pt = conf_.dtmf_payload_type;
  m->audio.own_ssrc = random_u32();
  m->video.own_ssrc = random_u32();
  m->dtmf_seq = static_cast<uint16_t>(random_u32());
  m->dtmf_ts = random_u32();
  uint32_t loops = host().media_loops();
  m->loop = conf_.media_loops && loops ? 1 + (next_loop_++ % loops) : 0;
  {
    std::lock_guard<std::mutex> g(idx_mu_);
    media_[c.id] = m;
  }
  jn_handle a[2] = {0, 0}, v[2] = {0, 0};
  uint32_t ap = 0, vp = 0;
  jn_status st = host().port_bind_udp(conf_.port_range, conf_.media_ip, true, cookie(kRtpAudio, c.id), a, &ap, m->loop);
  if (st == JN_OK) st = host().port_bind_udp(conf_.port_range, conf_.media_ip, true, cookie(kRtpVideo, c.id), v, &vp, m->loop);
  if (st != JN_OK) {
    err = st == JN_ERR_LIMIT ? "no free RTP port pair left in range " + conf_.port_range
                             : "cannot bind RTP ports in range " + conf_.port_range + " (status " + std::to_string(st) + ")";
    for (jn_handle h : {a[0], a[1], v[0], v[1]})
      if (h) host().api()->udp_close(host().ctx(), h);
    std::lock_guard<std::mutex> g(idx_mu_);
    media_.erase(c.id);
    return false;
  }
  uint32_t vid = 0, aid = 0;
  if (conf_.bus_publish) {
    std::string base = "rest-sip-capture/" + c.call_id;
    host().bus_intern(base + JN_MEDIA_VIDEO_SUFFIX, &vid);
    host().bus_intern(base + JN_MEDIA_AUDIO_SUFFIX, &aid);
  }
  std::lock_guard<std::mutex> g(m->mu);
  m->audio.rtp = a[0], m->audio.rtcp = a[1], m->audio.port = static_cast<uint16_t>(ap);
  m->video.rtp = v[0], m->video.rtcp = v[1], m->video.port = static_cast<uint16_t>(vp);
  m->audio.bus_id = aid, m->video.bus_id = vid;
  return true;
}

void CapturePlugin::media_close(uint64_t call) {
  std::shared_ptr<CallMedia> m;
  {
    std::lock_guard<std::mutex> g(idx_mu_);
    auto it = media_.find(call);
    if (it == media_.end()) return;
    m = it->second;
    media_.erase(it);
  }
  std::vector<jn_handle> socks;
  uint32_t ids[2];
  {
    std::lock_guard<std::mutex> g(m->mu);
    socks = {m->audio.rtp, m->audio.rtcp, m->video.rtp, m->video.rtcp};
    m->audio.rtp = m->audio.rtcp = m->video.rtp = m->video.rtcp = 0;
    ids[0] = m->audio.bus_id, ids[1] = m->video.bus_id;
    m->audio.bus_id = m->video.bus_id = 0;
    m->answered = false;
  }
  for (jn_handle h : socks)  // never under the shard's lock (the core waits for the loop's batch)
    if (h) host().api()->udp_close(host().ctx(), h);
  for (uint32_t id : ids)
    if (id) host().bus_release_id(id);
}

bool CapturePlugin::media_apply_answer(Call& c, const Answer& a, std::string& err) {
  auto m = media_of(c.id);
  if (!m) {
    err = "the call has no media";
    return false;
  }
  auto setup = [&](Stream& s, const AnswerStream& as, uint16_t track) -> bool {
    if (!as.present) return true;
    jn_addr ip{};
    if (!junction::util::parse_ip(as.ip, ip)) {
      err = "the answer's address " + as.ip + " is not an IP address";
      return false;
    }
    s.remote_rtp = ip;
    s.remote_rtp.port = as.port;
    s.remote_rtcp = ip;
    s.remote_rtcp.port = as.rtcp_port;
    if (!s.depack || s.pt != as.pt || s.encoding != as.encoding || s.fmtp != as.fmtp) {
      auto d = junction::media::make_depacketizer(as.encoding, as.clock_rate, as.pt, as.fmtp, track);
      if (!d || !d->ok()) {
        err = "no depacketizer for " + as.encoding + (d ? std::string(": ") + junction::media::to_string(d->error()) : std::string());
        return false;
      }
      s.depack = std::move(d);
      s.pt = as.pt;
      s.encoding = as.encoding;
      s.fmtp = as.fmtp;
      s.codec = junction::media::codec_from_rtpmap(as.encoding);
      s.clock = as.clock_rate ? as.clock_rate : (track == 0 ? 90000 : 8000);
      s.stats.set_clock_rate(s.clock);
      s.have_base = false;
    }
    return true;
  };
  std::lock_guard<std::mutex> g(m->mu);
  if (!setup(m->video, a.video, 0) || !setup(m->audio, a.audio, 1)) return false;
  if (a.audio.dtmf_pt >= 0) m->dtmf_pt = a.audio.dtmf_pt;
  if (!m->answered) m->last_rx_ms = host().now_ms();  // the inactivity clock starts at the answer
  m->answered = true;
  m->want_keyframe = !m->keyframe_seen || m->want_keyframe;
  return true;
}

// --- the packet path (media loop, the call's lock held) -------------------------------------------

namespace {
// Each AAC frame goes to every output with the AudioSpecificConfig first (a publisher sends its
// sequence header once, also after a reconnect).
struct AacToPushes final : AacSink {
  CallMedia& m;
  AacEncoder& enc;
  AacToPushes(CallMedia& mm, AacEncoder& e) : m(mm), enc(e) {}
  void aac_frame(const FrameView& af, uint32_t ts) override {
    for (auto& p : m.pushes) {
      if (!p->out || p->stopped) continue;
      p->out->push_audio(enc.config(), ts);
      p->out->push_audio(af, ts);
    }
  }
};
}  // namespace

// The call's AAC encoder ends (the call's lock held): at the call's end its last samples are
// encoded and sent (finish); at a hot reload the full blocks are, and the rest is kept in
// aac_resume for the next instance (suspend). Either way the outputs' bytes go out now.
void aac_end(CallMedia& m, bool reload) {
  if (!m.aac) return;
  AacToPushes sink(m, *m.aac);
  if (reload) m.aac_resume = m.aac->suspend(sink);
  else m.aac->finish(sink), m.aac_failed = true;  // the call is over: no new encoder for a late packet
  m.aac.reset();
  for (auto& p : m.pushes)
    if (p->out && !p->stopped) p->flush();
}

void CapturePlugin::deliver(CallMedia& m, Stream& s, bool video, const FrameView& f) {
  uint64_t now = host().now_ms();
  if (!m.have_t0) m.have_t0 = true, m.t0_ms = now;
  int64_t clock = s.clock ? s.clock : (video ? 90000 : 8000);
  auto rel = [&] { return static_cast<int64_t>(s.base_ms - m.t0_ms) + (f.meta.pts - s.base_pts) * 1000 / clock; };
  // Both tracks on one clock: each starts at its first frame's arrival, then follows its RTP
  // time; a jump (new SSRC, a sender restart) of more than 3 s from arrival time rebases it.
  int64_t shift = &s == &m.audio ? m.sr_shift_ms : 0;
  if (!s.have_base || std::llabs(rel() - static_cast<int64_t>(now - m.t0_ms) - shift) > 3000) {
    s.have_base = true;
    s.base_ms = now;
    s.base_pts = f.meta.pts;
  }
  // Once both senders' reports are known, the audio track moves onto the video's clock by what
  // the reports say (RFC 3550 6.4.1: one wallclock for both), correcting the arrival-time guess;
  // a correction over 2 s is taken for a broken report and ignored.
  if (!m.sr_aligned && m.audio.have_sr && m.video.have_sr && m.audio.have_base && m.video.have_base && m.audio.clock &&
      m.video.clock) {
    m.sr_aligned = true;
    auto wallclock = [](const Stream& x) {  // the sender's wallclock of the track's base frame
      int32_t d = static_cast<int32_t>(static_cast<uint32_t>(x.base_pts) - x.sr_rtp);
      return x.sr_ntp_ms + static_cast<int64_t>(d) * 1000 / static_cast<int64_t>(x.clock);
    };
    int64_t delta = (static_cast<int64_t>(m.video.base_ms) - wallclock(m.video)) -
                    (static_cast<int64_t>(m.audio.base_ms) - wallclock(m.audio));
    if (delta > -2000 && delta < 2000) {
      m.audio.base_ms = static_cast<uint64_t>(static_cast<int64_t>(m.audio.base_ms) + delta);
      m.sr_shift_ms = delta;
    }
  }
  int64_t ms = rel();
  if (ms < 0) ms = 0;
  ++s.frames;
  if (video) {
    if (f.meta.frame_flags & JN_MF_KEY) {
      m.keyframe_seen = true;
      m.want_keyframe = false;
    } else if (f.meta.frame_flags & JN_MF_DISCONT) {
      m.want_keyframe = true;  // a loss: the picture is broken until the next keyframe
    }
  }
  if (m.publish_bus && s.bus_id) {
    if (jn_buf* b = host().buf_alloc(static_cast<uint32_t>(f.size))) {
      std::memcpy(b->data, f.data, f.size);
      b->len = static_cast<uint32_t>(f.size);
      b->flags |= JN_BUF_MEDIA;
      b->meta = f.meta;
      host().bus_publish_id(s.bus_id, b);
      host().buf_unref(b);
    }
  }
  uint32_t t = static_cast<uint32_t>(ms);
  bool g711 = f.meta.codec == JN_CODEC_PCMA || f.meta.codec == JN_CODEC_PCMU;
  if (!video && g711 && conf_.rtmp_audio_aac && !m.pushes.empty()) {
    if (!m.aac && !m.aac_failed) {
      std::string why;
      m.aac = AacEncoder::open(8000, why, m.aac_resume);  // after a reload: on from the last frame
      m.aac_resume.clear();
      if (!m.aac) {
        m.aac_failed = true;
        host().warn("rest-sip-capture: call " + m.call_id + ": AAC encoder refused (" + why + "): its RTMP outputs carry no audio");
      }
    }
    if (m.aac) {
      AacToPushes sink(m, *m.aac);
      m.aac->push_g711(f.meta.codec, f.data, f.size, t, sink);
    }
  }
  for (auto& p : m.pushes) {
    if (!p->out || p->stopped) continue;
    if (video) p->out->push_video(f, t, t);
    else if (f.meta.codec != JN_CODEC_OPUS && !(g711 && conf_.rtmp_audio_aac)) p->out->push_audio(f, t);  // FLV has no Opus
    // An output's bytes are written every rtmp_write_ms (0: with every video frame), or sooner
    // past 64 KB: each write wakes the RTMP server and costs a context switch, the largest cost
    // per capture after the UDP receive (bench/sip_capture). Bytes held when the input stalls go
    // with the next frame or at the call's end (not from the control loop: its sends are handed to
    // this loop later and could pass ours).
    uint64_t since = now - p->last_flush_ms;  // 0: per video frame (audio-only: every 100 ms)
    if ((conf_.rtmp_write_ms ? since >= conf_.rtmp_write_ms : video || since >= 100) || p->out->held() >= 65536) {
      p->flush();
      p->last_flush_ms = now;
    }
  }
}

void CapturePlugin::on_udp(jn_handle sock, uint64_t ck, const jn_datagram* d, size_t n) {
  Kind k = cookie_kind(ck);
  if (k != kRtpAudio && k != kRtpVideo) {
    env_.on_udp(sock, d, n);
    return;
  }
  auto m = media_of(cookie_id(ck));
  if (!m) return;
  bool video = k == kRtpVideo;
  std::lock_guard<std::mutex> g(m->mu);
  Stream& s = video ? m->video : m->audio;
  uint64_t now = host().now_ms();
  auto sink_fn = [&](const FrameView& f) { deliver(*m, s, video, f); };
  auto sink = junction::media::frame_sink(sink_fn);
  for (size_t i = 0; i < n; ++i) {
    const jn_buf* b = d[i].buf;
    if (sock == s.rtcp || rtp::looks_like_rtcp(b->data, b->len)) {
      rtp::RtcpInfo info;
      if (rtp::parse_rtcp(b->data, b->len, info) == rtp::Error::None && info.first_type == rtp::RTCP_SR && b->len >= 20) {
        s.lsr = rtp::rd32(b->data + 10);  // the middle 32 bits of the SR's NTP time
        s.lsr_at_ms = now;
        uint64_t ntp = (static_cast<uint64_t>(rtp::rd32(b->data + 8)) << 32) | rtp::rd32(b->data + 12);
        s.sr_ntp_ms = static_cast<int64_t>((ntp >> 32) * 1000 + ((ntp & 0xffffffffull) * 1000 >> 32));
        s.sr_rtp = rtp::rd32(b->data + 16);
        s.have_sr = true;
      }
      continue;
    }
    rtp::Header h;
    if (rtp::parse(b->data, b->len, h) != rtp::Error::None) {
      ++m->bad_packets;
      continue;
    }
    m->last_rx_ms = now;
    ++s.packets;
    s.bytes += b->len;
    s.win_bytes += b->len;
    if (!s.depack || (!video && h.payload_type == m->dtmf_pt)) {
      ++m->dropped_packets;
      continue;
    }
    s.stats.update(h.seq, h.ssrc, h.timestamp, b->rx_ns);
    if (s.depack->push(b->data, b->len, sink) == junction::media::RtpError::PayloadType) ++m->dropped_packets;
  }
}

// --- RTMP outputs --------------------------------------------------------------------------------

std::shared_ptr<Push> CapturePlugin::push_create(Call* c, const std::string& bus_stream, const RtmpTarget& t, bool primary) {
  auto p = std::make_shared<Push>(host());
  p->id = next_id_++;
  p->target = t;
  p->primary = primary;
  p->bus_stream = bus_stream;
  if (c) {
    auto m = media_of(c->id);
    if (!m) return nullptr;
    p->call = c->id;
    p->shard = m;
    p->loop = m->loop;
    {
      std::lock_guard<std::mutex> g(m->mu);
      m->pushes.push_back(p);
    }
    c->pushes.push_back(PushInfo{p->id, t, RtmpStatus::Wait, {}, primary});
  } else {
    p->shard = std::make_shared<Shard>();
    p->loop = 0;  // a bus push runs where the bus delivers: the control loop
  }
  {
    std::lock_guard<std::mutex> g(idx_mu_);
    pushes_[p->id] = p;
  }
  if (!c) {
    if (host().bus_subscribe(bus_stream + JN_MEDIA_VIDEO_SUFFIX, cookie(kBusSub, p->id), &p->sub_video) != JN_OK ||
        host().bus_subscribe(bus_stream + JN_MEDIA_AUDIO_SUFFIX, cookie(kBusSub, p->id), &p->sub_audio) != JN_OK) {
      push_stop(p, "bus subscription refused");
      return nullptr;
    }
    bus_pushes_[t.key()] = p->id;
    // A late joiner needs a keyframe: ask the producer (media_frame.h).
    host().event_publish(JN_MEDIA_KEYFRAME_REQUEST_TOPIC,
                         nlohmann::json{{"stream", bus_stream + JN_MEDIA_VIDEO_SUFFIX}, {"reason", "join"}}.dump());
  }
  return p;
}

void CapturePlugin::push_connect(const std::shared_ptr<Push>& p) {
  if (p->stopped || p->retry_timer) return;
  {
    std::lock_guard<std::mutex> g(p->shard->mu);
    if (p->conn || p->pending_conn) return;  // connected or connecting
  }
  if (!rtmp_available()) {
    push_set_status(*p, RtmpStatus::Failed, "this build has no RTMP publisher (sdk/rtmp)");
    return;
  }
  if (is_ip(p->target.host)) {
    jn_addr a{};
    junction::util::parse_ip(p->target.host, a);
    push_connect_addr(p, a);
    return;
  }
  jn_handle q = 0;
  jn_status st = host().dns_resolve(p->target.host, JN_DNS_A, cookie(kRtmpDns, p->id), &q);
  if (st != JN_OK) {
    push_set_status(*p, p->ever_active ? RtmpStatus::Lost : RtmpStatus::Failed, "DNS query for " + p->target.host + " refused");
    push_retry(*p);
  }
}

void CapturePlugin::push_connect_addr(const std::shared_ptr<Push>& p, const jn_addr& ip) {
  jn_addr a = ip;
  a.port = p->target.port;
  std::string addr = junction::util::format_addr(a);
  uint64_t ck;
  {
    std::lock_guard<std::mutex> g(p->shard->mu);
    p->out = make_rtmp_out(p->target, conf_.rtmp_max_queue_bytes, *p, p->call != 0);  // a bus push writes per message
    p->closed = false;
    p->changed = false;
    p->out_status = OutStatus::Connecting;
    ++p->attempt_no;
    ck = cookie(kRtmpConn, (static_cast<uint64_t>(p->attempt_no & 0xffffff) << 32) | (p->id & 0xffffffff));
  }
  jn_tcp_options o = Host::tcp_options(JN_FRAME_RAW, 0, 65536);
  o.loop = p->loop;
  jn_handle h = 0;
  jn_status st = host().tcp_connect(addr, o, ck, &h);
  if (st != JN_OK) {
    push_set_status(*p, p->ever_active ? RtmpStatus::Lost : RtmpStatus::Failed, "cannot connect to " + addr + " (status " + std::to_string(st) + ")");
    push_retry(*p);
    return;
  }
  std::lock_guard<std::mutex> g(p->shard->mu);
  p->pending_conn = h;
}

void CapturePlugin::on_tcp(const jn_tcp_event& ev) {
  if (cookie_kind(ev.cookie) != kRtmpConn) {
    if (ev.type == JN_TCP_CLOSED) {
      sip_conn_event(ev);  // first: the call ends with the connection's reason, not the 503 of
      env_.on_tcp(ev);     // its transactions the stack then reports
      return;
    }
    env_.on_tcp(ev);
    sip_conn_event(ev);  // after the env: a connected one is the env's to send on
    return;
  }
  uint64_t id = cookie_id(ev.cookie) & 0xffffffff;
  uint32_t attempt = static_cast<uint32_t>(cookie_id(ev.cookie) >> 32);
  auto p = push_of(id);
  if (!p) {
    if (ev.type == JN_TCP_CONNECTED) host().tcp_close(ev.conn);  // a push that ended meanwhile
    return;
  }
  std::lock_guard<std::mutex> g(p->shard->mu);
  if (attempt != (p->attempt_no & 0xffffff)) {  // an earlier attempt's connection
    if (ev.type == JN_TCP_CONNECTED) host().tcp_close(ev.conn);
    return;
  }
  switch (ev.type) {
    case JN_TCP_CONNECTED:
      p->conn = ev.conn;
      p->pending_conn = 0;
      if (p->out) p->out->on_connected();
      break;
    case JN_TCP_FRAME:
      if (p->out) p->out->on_bytes(ev.data, ev.len);
      break;
    case JN_TCP_CLOSED:
      p->conn = 0;
      p->pending_conn = 0;
      p->closed = true;
      if (p->out) p->out->on_disconnected();
      if (!p->changed) {
        p->changed = true;
        host().post(0, cookie(kPushPost, p->id));
      }
      break;
    default:
      break;
  }
}

void CapturePlugin::on_post(uint64_t c) {
  if (cookie_kind(c) == kPushPost) push_changed(cookie_id(c));
}

void CapturePlugin::push_changed(uint64_t id) {
  auto p = push_of(id);
  if (!p) return;
  OutStatus st;
  std::string why;
  bool closed;
  jn_handle conn = 0;
  {
    std::lock_guard<std::mutex> g(p->shard->mu);
    p->changed = false;
    st = p->out_status;
    why = p->out_reason;
    closed = p->closed;
    if (!closed && (st == OutStatus::Failed || st == OutStatus::Closed)) {
      conn = p->conn ? p->conn : p->pending_conn;  // the publisher gave up: drop the connection
      p->conn = p->pending_conn = 0;
      ++p->attempt_no;  // its CLOSED is stale now
    }
    if (closed || st == OutStatus::Failed || st == OutStatus::Closed) p->out.reset();
  }
  if (p->stopped) return;
  if (conn) host().tcp_close(conn);
  if (!closed && st == OutStatus::Publishing) {
    p->ever_active = true;
    p->attempts = 0;
    push_set_status(*p, RtmpStatus::Active, {});
    return;
  }
  if (closed || st == OutStatus::Failed || st == OutStatus::Closed) {
    std::string reason = why.empty() ? (closed ? "connection closed" : "refused") : why;
    host().warn("rest-sip-capture: RTMP " + p->target.key() + ": " + reason);
    push_set_status(*p, p->ever_active ? RtmpStatus::Lost : RtmpStatus::Failed, reason);
    push_retry(*p);
  }
}

void CapturePlugin::push_set_status(Push& p, RtmpStatus s, const std::string& reason) {
  if (p.status == s && p.reason == reason) return;
  bool changed = p.status != s;
  p.status = s;
  p.reason = reason;
  if (!changed) return;
  const char* name = to_string(s);
  host().info("rest-sip-capture: RTMP " + p.target.key() + " " + (name ? name : "-") + (reason.empty() ? "" : ": " + reason));
  if (!p.call) return;
  Call* c = reg_.by_id(p.call);
  if (!c) return;
  for (auto& pi : c->pushes)
    if (pi.id == p.id) {
      pi.status = s;
      pi.reason = reason;
      if (!is_final(c->status)) emit(*c, &pi);
    }
}

void CapturePlugin::push_retry(Push& p) {
  if (p.stopped || p.retry_timer) return;
  if (p.call) {
    Call* c = reg_.by_id(p.call);
    if (!c || is_final(c->status)) return;
  }
  if (conf_.rtmp_max_attempts && p.attempts >= conf_.rtmp_max_attempts) {
    host().warn("rest-sip-capture: RTMP " + p.target.key() + ": giving up after " + std::to_string(p.attempts) + " attempts");
    push_set_status(p, RtmpStatus::Failed, "gave up after " + std::to_string(p.attempts) + " attempts");
    return;
  }
  uint64_t delay = std::min<uint64_t>(uint64_t(conf_.rtmp_reconnect_ms) << std::min<uint32_t>(p.attempts, 16), conf_.rtmp_reconnect_max_ms);
  ++p.attempts;
  ++rtmp_reconnects_;
  host().counter_add("capture_rtmp_reconnects_total");
  host().timer(delay, 0, cookie(kReconnectTimer, p.id), &p.retry_timer);
}

void CapturePlugin::push_stop(const std::shared_ptr<Push>& p, const std::string& why) {
  jn_handle conn = 0;
  {
    std::lock_guard<std::mutex> g(p->shard->mu);
    if (p->stopped) return;
    p->stopped = true;
    if (p->out && p->conn && p->out->publishing()) p->out->unpublish();  // the server ends the stream cleanly
    conn = p->conn ? p->conn : p->pending_conn;
    p->conn = p->pending_conn = 0;
    p->out.reset();
  }
  if (conn) host().tcp_close(conn);
  if (p->retry_timer) host().stop_timer(p->retry_timer), p->retry_timer = 0;
  if (p->sub_video) host().bus_unsubscribe(p->sub_video), p->sub_video = 0;
  if (p->sub_audio) host().bus_unsubscribe(p->sub_audio), p->sub_audio = 0;
  bool by_call = why == "call ended";
  if (!by_call) push_set_status(*p, RtmpStatus::Stopped, why);
  if (auto m = p->call ? media_of(p->call) : nullptr) {
    std::lock_guard<std::mutex> g(m->mu);
    std::erase(m->pushes, p);
  }
  if (!p->call) bus_pushes_.erase(p->target.key());
  std::lock_guard<std::mutex> g(idx_mu_);
  pushes_.erase(p->id);
}

void CapturePlugin::on_bus(jn_handle, uint64_t ck, jn_buf* b) {
  if (cookie_kind(ck) != kBusSub) return;
  auto p = push_of(cookie_id(ck));
  FrameView f = junction::media::frame_of(b);
  if (!p || !f.data) return;
  std::lock_guard<std::mutex> g(p->shard->mu);
  deliver_bus_push(*p, f, f.meta.kind == JN_MEDIA_VIDEO);
}

void CapturePlugin::deliver_bus_push(Push& p, const FrameView& f, bool video) {
  if (!p.out || p.stopped || !f.meta.clock_rate) return;
  uint64_t now = host().now_ms();
  if (!p.have_t0) p.have_t0 = true, p.t0_ms = now;
  bool& have = video ? p.have_vbase : p.have_abase;
  int64_t& base = video ? p.vbase : p.abase;
  uint64_t& base_ms = video ? p.vbase_ms : p.abase_ms;
  int64_t clock = f.meta.clock_rate;
  auto rel = [&] { return static_cast<int64_t>(base_ms - p.t0_ms) + (f.meta.dts - base) * 1000 / clock; };
  if (!have || std::llabs(rel() - static_cast<int64_t>(now - p.t0_ms)) > 3000) {
    have = true;
    base = f.meta.dts;
    base_ms = now;
  }
  int64_t dts = rel();
  int64_t pts = dts + (f.meta.pts - f.meta.dts) * 1000 / clock;
  if (dts < 0) dts = 0;
  if (pts < dts) pts = dts;
  if (video) p.out->push_video(f, static_cast<uint32_t>(dts), static_cast<uint32_t>(pts));
  else if (f.meta.codec == JN_CODEC_PCMA || f.meta.codec == JN_CODEC_PCMU || f.meta.codec == JN_CODEC_AAC)
    p.out->push_audio(f, static_cast<uint32_t>(dts));
}

// --- the control loop's tick ---------------------------------------------------------------------

void CapturePlugin::sync_push_info(Call& c) {
  auto m = media_of(c.id);
  if (!m) return;
  std::lock_guard<std::mutex> g(m->mu);
  c.video_kbps = m->video.kbps;
  c.audio_kbps = m->audio.kbps;
  c.video_frames = m->video.frames;
  c.audio_frames = m->audio.frames;
  c.video_packets = m->video.packets;
  c.audio_packets = m->audio.packets;
  c.dropped_packets = m->dropped_packets;
  c.bad_packets = m->bad_packets;
  c.av_shift_ms = m->sr_shift_ms;
  c.av_aligned = m->sr_aligned;
}

void CapturePlugin::tick() {
  uint64_t now = host().now_ms();
  ++ticks_;
  bool second = ticks_ % 4 == 0;
  uint64_t rtcp_every = std::max<uint64_t>(1, conf_.rtcp_interval_ms / 250);
  bool rtcp_due = ticks_ % rtcp_every == 0;
  std::vector<std::shared_ptr<CallMedia>> all;
  {
    std::lock_guard<std::mutex> g(idx_mu_);
    for (auto& [id, m] : media_) all.push_back(m);
  }
  struct Out {
    jn_handle sock;
    jn_addr to;
    uint8_t bytes[128];
    size_t n;
  };
  std::vector<Out> sends;
  std::vector<uint64_t> timeouts, keyframe_info;
  for (auto& m : all) {
    std::lock_guard<std::mutex> g(m->mu);
    if (second) {
      for (Stream* s : {&m->audio, &m->video}) {
        s->kbps = s->win_bytes * 8.0 / 1000.0;
        s->win_bytes = 0;
      }
      for (auto& p : m->pushes) {
        p->kbps = p->win_bytes * 8.0 / 1000.0;
        p->win_bytes = 0;
      }
    }

    if (!m->answered) continue;
    // last_rx_ms is written by the media loop: it may be a hair ahead of this loop's now
    if (now > m->last_rx_ms && now - m->last_rx_ms > conf_.rtp_timeout_ms) {
      timeouts.push_back(m->id);
      continue;
    }
    if (m->want_keyframe && m->video.depack && now - m->last_kf_req_ms >= conf_.keyframe_interval_ms) {
      m->last_kf_req_ms = now;
      keyframe_info.push_back(m->id);
      if (m->video.remote_rtcp.family && m->video.rtcp) {
        Out o{m->video.rtcp, m->video.remote_rtcp, {}, 0};
        uint32_t media_ssrc = m->video.stats.received() ? m->video.stats.ssrc() : 0;
        o.n = build_pli_fir(o.bytes, sizeof o.bytes, m->video.own_ssrc, media_ssrc, m->fir_seq++);
        if (o.n) sends.push_back(o);
      }
    }
    if (rtcp_due) {
      for (Stream* s : {&m->audio, &m->video}) {
        if (!s->depack || !s->remote_rtcp.family || !s->rtcp) continue;
        Out o{s->rtcp, s->remote_rtcp, {}, 0};
        uint32_t dlsr = s->lsr ? static_cast<uint32_t>((now - s->lsr_at_ms) * 65536 / 1000) : 0;
        o.n = build_rr(o.bytes, sizeof o.bytes, s->own_ssrc, s->stats, s->prev_expected, s->prev_received, s->lsr, dlsr,
                       "rtp/" + std::string(s == &m->audio ? "audio/" : "video/") + m->call_id.substr(0, 64));
        if (o.n) sends.push_back(o);
      }
    }
  }
  for (auto& o : sends) host().udp_send(o.sock, o.to, std::string_view(reinterpret_cast<const char*>(o.bytes), o.n));
  for (uint64_t id : keyframe_info) {
    ++keyframe_requests_;
    host().counter_add("capture_keyframe_requests_total");
    Call* c = reg_.by_id(id);
    auto leg = legs_.find(id);
    if (c && leg != legs_.end() && conf_.keyframe_sip_info && c->status == Status::Established) send_keyframe_info(*c, leg->second);
  }
  for (uint64_t id : timeouts) {
    Call* c = reg_.by_id(id);
    if (!c || is_final(c->status)) continue;
    ++rtp_timeouts_;
    host().counter_add("capture_rtp_timeouts_total");
    host().warn("rest-sip-capture: call " + c->call_id + ": no RTP for " + std::to_string(conf_.rtp_timeout_ms) + " ms");
    end_call(*c, Status::Failed, c->sip_status, "FAILED_BY_RTP_ACTIVITY", true);
  }
  if (second) {
    if (!sip_conns_.empty()) sip_conns_sweep(now);
    std::vector<std::string> gone;
    reg_.for_each([&](Call& c) {
      if (is_final(c.status) && now - c.ended_ms >= uint64_t(conf_.ended_keep_s) * 1000 && !legs_.count(c.id)) gone.push_back(c.call_id);
    });
    for (auto& id : gone) reg_.erase(id);
    host().gauge_set("capture_calls_active", static_cast<double>(reg_.live()));
    host().gauge_set("capture_backend_queue", static_cast<double>(events_.size()));
    size_t npush = 0;
    {
      std::lock_guard<std::mutex> g(idx_mu_);
      npush = pushes_.size();
    }
    host().gauge_set("capture_rtmp_pushes", static_cast<double>(npush));
  }
}

}  // namespace capture
