// verto-ws: glue between the calls and their WebRTC media (media.cpp's MediaLeg): legs created
// and retired, work deferred from media loops to the control loop, UDP and bus input.
#include "verto_ws.hpp"

namespace verto::ws {

// libsrtp2 through the core's pin, then our DTLS certificate: a fresh one, or the previous
// instance's (a hot reload keeps the fingerprint browsers have).
bool VertoWs::init_media(const std::string& pem) {
  if (!junction::webrtc::srtp_library_init(host())) {
    host().set_error("libsrtp2 could not be initialised");
    return false;
  }
  std::string err;
  bool gcm = junction::webrtc::srtp_suite_works(junction::webrtc::SrtpSuite::AeadAes128Gcm);
  if (!(pem.empty() ? cert_.generate(&err, gcm) : cert_.from_pem(pem, &err, gcm))) {
    host().set_error("DTLS certificate: " + err);
    return false;
  }
  host().event_subscribe(JN_MEDIA_KEYFRAME_REQUEST_TOPIC);
  // Data channels (usrsctp through the sdk's pinned glue, so a reloaded instance has them too);
  // without them calls go on with audio and video only.
  if (conf_.data_channels && !junction::webrtc::sctp_library_init(host(), sctp_, host().now_ms(), err))
    host().warn("data channels off: " + err);
  host().info("WebRTC media on " + conf_.media_conf.ip + " (ports from [ports." + conf_.media_conf.port_range + "]), DTLS " + cert_.fingerprint());
  return true;
}

// The far leg when it is one of ours (its bus streams are verto/<id>/...): under the lock.
verto::MediaLeg* VertoWs::peer_leg(uint64_t id) {
  verto::MediaLeg* leg = leg_of(id);
  if (!leg) return nullptr;
  const std::string& far = leg->far_stream(JN_MEDIA_AUDIO).empty() ? leg->far_stream(JN_MEDIA_VIDEO) : leg->far_stream(JN_MEDIA_AUDIO);
  if (far.rfind("verto/", 0) != 0) return nullptr;
  uint64_t peer = std::strtoull(far.c_str() + 6, nullptr, 10);
  return peer && peer != id ? leg_of(peer) : nullptr;
}

verto::MediaLeg* VertoWs::leg_of(uint64_t id) {
  auto it = media_.find(id);
  return it == media_.end() ? nullptr : it->second.get();
}

bool VertoWs::has_av(const jn_media_desc* d) {
  if (!d) return false;
  for (uint32_t i = 0; i < d->count; ++i)
    if (d->streams[i] && (d->streams[i]->kind == JN_MEDIA_AUDIO || d->streams[i]->kind == JN_MEDIA_VIDEO)) return true;
  return false;
}

// The first audio and the first video stream of the far leg's media.
void VertoWs::far_media(const jn_media_desc* d, junction::webrtc::LocalMedia& audio, junction::webrtc::LocalMedia& video) {
  bool a = false, v = false;
  for (uint32_t i = 0; d && i < d->count; ++i) {
    const jn_media_stream* s = d->streams[i];
    if (!s) continue;
    if (s->kind == JN_MEDIA_AUDIO && !a) audio = junction::webrtc::LocalMedia::from_media_stream(*s), a = true;
    if (s->kind == JN_MEDIA_VIDEO && !v) video = junction::webrtc::LocalMedia::from_media_stream(*s), v = true;
  }
}

std::unique_ptr<verto::MediaLeg> VertoWs::new_leg(uint64_t id, std::string& why) {
  verto::MediaLeg::Events ev;
  // Runs on the leg's media loop (inside on_udp): the call event waits for the control loop.
  ev.dtmf = [this, id](char d) {
    defer([this, id, d] {
      Call* c = call(id);
      if (!c || !c->leg) return;
      std::string digit(1, d);
      jn_call_event e = Host::event(JN_CALL_DTMF);
      e.dtmf = to_jn(digit);
      host().call_send(c->leg, e);
    });
  };
  // May run on the media loop: it touches no call state, only the log and failed_ (under the lock).
  Call* owner = call(id);
  std::string label = owner ? owner->callid : std::to_string(id);
  ev.state = [this, label, id](junction::webrtc::PeerState st) {
    host().info("call " + label + " media " + junction::webrtc::peer_state_name(st));
    if (st == junction::webrtc::PeerState::Failed) failed_.push_back(id);  // ended from the media tick, not inside the PeerConnection
  };
  // Under the media lock already (a PeerConnection callback): our own legs directly, other
  // producers through the core event, from the control loop.
  ev.keyframe = [this](const std::string& stream, const char* reason) {
    for (auto& [i, l] : media_)
      if (l->owns_stream(stream)) want_keyframe(*l);
    std::string body = json{{"stream", stream}, {"reason", reason}}.dump();
    defer([this, body] { host().event_publish(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, body); });
  };
  // Data channels: what the browser opens and sends goes to the far leg when that is a browser
  // of this server too (by label), run on the far leg's loop.
  ev.channel_open = [this, id](const junction::webrtc::DcepOpen& info) {
    verto::MediaLeg* peer = peer_leg(id);
    if (!peer) return;
    junction::webrtc::DcepOpen copy = info;
    if (peer->post_task([peer, copy] { peer->open_channel(copy); })) wake(*peer);
  };
  ev.channel_message = [this, id](const std::string& label, const uint8_t* d, size_t n, bool binary) {
    verto::MediaLeg* peer = peer_leg(id);
    if (!peer) return;
    std::string data(reinterpret_cast<const char*>(d), n);
    if (peer->post_task([peer, label, data = std::move(data), binary] { peer->send_channel(label, data, binary); })) wake(*peer);
  };
  auto leg = std::make_unique<verto::MediaLeg>(host(), cert_, id, stream_prefix(id), std::move(ev));
  verto::MediaConf mc = conf_.media_conf;
  mc.loop = host().media_loops() ? 1 + static_cast<uint32_t>(id % host().media_loops()) : 0;
  mc.control_thread = std::this_thread::get_id();  // new_leg runs on the control loop
  mc.sctp = sctp_.ready() ? &sctp_ : nullptr;
  if (!leg->open(mc, why)) {
    leg->release();
    return nullptr;
  }
  return leg;
}

// Work for the control loop, from any thread (a media loop's PeerConnection callbacks).
void VertoWs::defer(std::function<void()> f) {
  {
    std::lock_guard<std::mutex> g(deferred_mu_);
    deferred_.push_back(std::move(f));
  }
  host().post(0, kDeferredCookie);
}

void VertoWs::wake(verto::MediaLeg& leg) {
  if (!leg.loop()) return leg.drain(host().now_ms());
  // A post lost (the loop's queue full) is made up by the loop's next tick, which drains too.
  host().post(leg.loop(), kDrainTag | leg.id() << 8);
}

void VertoWs::on_post(uint64_t cookie) {
  if (confs_->on_post(cookie)) return;  // conference mixers (any loop)
  const uint64_t tag = cookie & 0xff, value = cookie >> 8;
  if (tag == kDrainTag || tag == kLoopTickTag) {  // on a media loop: its legs' PeerConnections
    std::lock_guard<std::recursive_mutex> g(media_mu_);
    const uint64_t now = host().now_ms();
    if (tag == kDrainTag) {
      if (verto::MediaLeg* leg = leg_of(value)) leg->drain(now);
      return;
    }
    for (auto& [id, leg] : media_)
      if (leg->loop() == value) {
        leg->drain(now);
        leg->tick(now);
      }
    return;
  }
  if (cookie != kDeferredCookie) return;
  std::vector<std::function<void()>> todo;
  {
    std::lock_guard<std::mutex> g(deferred_mu_);
    todo.swap(deferred_);
  }
  for (auto& f : todo) f();
}

// An outbound call's far leg has media (early or answered): answer the browser's offer with it.
bool VertoWs::start_outbound_media(uint64_t id, const jn_media_desc* d, std::string& sdp, std::string& why) {
  Call* cl = call(id);
  junction::webrtc::Description offer;
  junction::webrtc::ParseError err;
  if (!junction::webrtc::parse_description(cl->own_sdp, offer, err)) {
    why = err.reason;
    return false;
  }
  auto leg = new_leg(id, why);
  if (!leg) return false;
  far_media(d, leg->far_audio_media, leg->far_video_media);
  // Not in the map yet: no other thread sees this leg, no lock needed to build its PeerConnection.
  if (!leg->answer(offer, leg->far_audio_media, leg->far_video_media, sdp, why)) {
    leg->release();
    return false;
  }
  leg->subscribe(leg->far_audio_media.bus_stream, leg->far_video_media.bus_stream);
  host().info("call " + cl->callid + " media: " + leg->summary());
  std::lock_guard<std::recursive_mutex> g(media_mu_);
  media_[id] = std::move(leg);
  cl->media = true;
  return true;
}

void VertoWs::media_failed(uint64_t id, const std::string& why) {
  Call* cl = call(id);
  host().info("call " + (cl ? cl->callid : std::to_string(id)) + " ended: media: " + why);
  end_call(id, 488, "media: " + why);
}

// A leg's media is torn down outside the PeerConnection's own callbacks: on the next media tick.
void VertoWs::retire(uint64_t id) {
  std::lock_guard<std::recursive_mutex> g(media_mu_);
  auto it = media_.find(id);
  if (it == media_.end()) return;
  it->second->close_pc();
  graveyard_.push_back(std::move(it->second));
  media_.erase(it);
}

void VertoWs::media_tick() {
  if (!reoffer_.empty()) reoffer_after_reload();
  for (auto& g : graveyard_) g->release();  // closed under the lock by retire(); sockets outside it
  graveyard_.clear();
  uint64_t now = host().now_ms();
  std::vector<uint64_t> failed;
  {
    // Each PeerConnection's timers run on its own loop: legs of the control loop here, the
    // others' loops get a tick post (which drains their hand-off queues too).
    std::lock_guard<std::recursive_mutex> g(media_mu_);
    for (auto& [id, leg] : media_)
      if (!leg->loop()) leg->tick(now);
    failed.swap(failed_);
  }
  for (uint32_t k = 1; k <= host().media_loops(); ++k) host().post(k, kLoopTickTag | uint64_t{k} << 8);
  for (uint64_t id : failed)
    if (call(id)) media_failed(id, "ICE/DTLS failed or consent expired");
}

// On the leg's media loop: one lock per batch.
void VertoWs::on_udp(jn_handle, uint64_t cookie, const jn_datagram* d, size_t n) {
  std::lock_guard<std::recursive_mutex> g(media_mu_);
  if (verto::MediaLeg* leg = leg_of(cookie)) leg->on_udp(d, n, host().now_ms());
}

// The far leg's frames, on the control loop (bus subscriptions deliver here): handed to the
// leg's media loop by reference, so its PeerConnection sends them there. media_ changes only on
// this loop: the lookup needs no lock, the hand-off has its own.
void VertoWs::on_bus(jn_handle, uint64_t cookie, jn_buf* buf) {
  if (confs_->on_bus(cookie, buf)) return;  // a conference member's media
  verto::MediaLeg* leg = leg_of(cookie / 4);
  if (!leg) return;
  const uint32_t kind = static_cast<uint32_t>(cookie % 4);
  if (!leg->loop()) {  // no media loops: the control loop is the leg's loop
    std::lock_guard<std::recursive_mutex> g(media_mu_);
    return leg->on_bus(kind, buf, host().now_ms());
  }
  if (leg->push(kind, buf)) host().post(leg->loop(), kDrainTag | leg->id() << 8);
}

}  // namespace verto::ws
