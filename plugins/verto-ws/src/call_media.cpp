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

// The far leg when it is one of ours (its bus streams are verto/<id>/...): control loop.
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
  const uint32_t k = loop_of_leg(id);
  // These run on the leg's loop (inside its PeerConnection): what they need of the control loop
  // goes there as a report (to_control), never under a shared lock.
  ev.dtmf = [this, id, k](char d) {
    to_control(k, [this, id, d] {
      Call* c = call(id);
      if (!c || !c->leg) return;
      std::string digit(1, d);
      jn_call_event e = Host::event(JN_CALL_DTMF);
      e.dtmf = to_jn(digit);
      host().call_send(c->leg, e);
    });
  };
  Call* owner = call(id);
  std::string label = owner ? owner->callid : std::to_string(id);
  ev.state = [this, label, id, k](junction::webrtc::PeerState st) {
    host().info("call " + label + " media " + junction::webrtc::peer_state_name(st));
    if (st == junction::webrtc::PeerState::Failed)  // ended from the media tick, not inside the PeerConnection
      to_control(k, [this, id] { failed_.push_back(id); });
  };
  // Our own legs through their rings, other producers through the core event.
  ev.keyframe = [this, k](const std::string& stream, const char* reason) {
    std::string body = json{{"stream", stream}, {"reason", reason}}.dump();
    to_control(k, [this, stream, body] {
      for (auto& [i, l] : media_)
        if (l->owns_stream(stream)) want_keyframe(*l);
      host().event_publish(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, body);
    });
  };
  // Data channels: what the browser opens and sends goes to the far leg when that is a browser
  // of this server too (by label): through the control loop (which knows the far leg) to the
  // far leg's loop.
  ev.channel_open = [this, id, k](const junction::webrtc::DcepOpen& info) {
    to_control(k, [this, id, info] {
      verto::MediaLeg* peer = peer_leg(id);
      if (!peer || !peer->handed()) return;
      const uint32_t pk = peer->loop();
      const uint64_t pid = peer->id();
      to_loop(pk, [this, pk, pid, info] {
        if (verto::MediaLeg* l = loop_leg(pk, pid)) l->open_channel(info);
      });
    });
  };
  ev.channel_message = [this, id, k](const std::string& label, const uint8_t* d, size_t n, bool binary) {
    std::string data(reinterpret_cast<const char*>(d), n);
    to_control(k, [this, id, label, data = std::move(data), binary]() mutable {
      verto::MediaLeg* peer = peer_leg(id);
      if (!peer || !peer->handed()) return;
      const uint32_t pk = peer->loop();
      const uint64_t pid = peer->id();
      to_loop(pk, [this, pk, pid, label, data = std::move(data), binary] {
        if (verto::MediaLeg* l = loop_leg(pk, pid)) l->send_channel(label, data, binary);
      });
    });
  };
  auto leg = std::make_unique<verto::MediaLeg>(host(), cert_, id, stream_prefix(id), std::move(ev));
  leg->set_owner_stats(&owner_stats_);
  verto::MediaConf mc = conf_.media_conf;
  mc.loop = k;
  mc.control_thread = control_thread_;
  mc.sctp = sctp_.ready() ? &sctp_ : nullptr;
  if (!leg->open(mc, why)) {
    leg->release();
    return nullptr;
  }
  return leg;
}

// Control loop -> loop k, in order. A full ring keeps the rest in the backlog (flushed first by
// the next call and by the media tick), so nothing the control loop asks for is lost.
void VertoWs::to_loop(uint32_t k, Task t) {
  if (k == 0) return t();  // no media loops: the control loop is the legs' loop
  LoopState& L = *loops_[k];
  while (!L.backlog.empty() && L.in.push(L.backlog.front())) L.backlog.erase(L.backlog.begin());
  Task* p = new Task(std::move(t));
  if (!L.backlog.empty() || !L.in.push(p)) L.backlog.push_back(p);
  // A post lost (the loop's queue full) is made up by the loop's next tick, which runs the inbox.
  host().post(k, kInboxTag | uint64_t{k} << 8);
}

// Loop k -> the control loop. A full ring (the control loop far behind) drops the report, counted.
void VertoWs::to_control(uint32_t k, Task t) {
  if (on_control()) {
    deferred_.push_back(std::move(t));
  } else {
    Task* p = new Task(std::move(t));
    if (!loops_[k]->out.push(p)) {
      delete p;
      loops_[k]->out_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  host().post(0, kDeferredCookie);
}

void VertoWs::run_inbox(uint32_t k) {
  Task* t = nullptr;
  while (loops_[k]->in.pop(t)) {
    (*t)();
    delete t;
  }
}

void VertoWs::run_outboxes() {
  std::vector<Task> todo;
  todo.swap(deferred_);
  for (auto& f : todo) f();
  for (uint32_t k = 1; k < loops_.size(); ++k) {
    Task* t = nullptr;
    while (loops_[k]->out.pop(t)) {
      (*t)();
      delete t;
    }
  }
}

verto::MediaLeg* VertoWs::loop_leg(uint32_t k, uint64_t id) {
  auto& legs = loops_[k]->legs;
  auto it = legs.find(id);
  return it == legs.end() ? nullptr : it->second;
}

// The leg's PeerConnection is made: from now on its loop owns it. The control loop keeps the
// leg object alive (media_, then graveyard_) until the loop hands it back (retire).
void VertoWs::hand_off(verto::MediaLeg& leg) {
  leg.set_handed();
  const uint32_t k = leg.loop();
  verto::MediaLeg* p = &leg;
  to_loop(k, [this, k, p] {
    p->adopt();
    loops_[k]->legs[p->id()] = p;
    p->drain(host().now_ms());  // frames pushed before it got here
  });
}

// Hold / unhold: the control loop's flag now, the PeerConnection's on its loop.
void VertoWs::set_hold(verto::MediaLeg& leg, bool on) {
  leg.ctl_held = on;
  if (!leg.handed()) return leg.hold(on);
  const uint32_t k = leg.loop();
  const uint64_t id = leg.id();
  to_loop(k, [this, k, id, on] {
    if (verto::MediaLeg* l = loop_leg(k, id)) l->hold(on);
  });
}

void VertoWs::wake(verto::MediaLeg& leg) {
  if (!leg.loop()) return leg.drain(host().now_ms());
  // A post lost (the loop's queue full) is made up by the loop's next tick, which drains too.
  host().post(leg.loop(), kDrainTag | leg.id() << 8);
}

void VertoWs::on_post(uint64_t cookie) {
  if (confs_->on_post(cookie)) return;  // conference mixers (any loop)
  const uint64_t tag = cookie & 0xff, value = cookie >> 8;
  if (tag == kDrainTag) {  // on the leg's loop
    const uint32_t k = loop_of_leg(value);
    if (verto::MediaLeg* leg = loop_leg(k, value)) leg->drain(host().now_ms());
    return;
  }
  if (tag == kInboxTag || tag == kLoopTickTag) {  // on media loop `value`
    if (value == 0 || value >= loops_.size()) return;
    const uint32_t k = static_cast<uint32_t>(value);
    run_inbox(k);
    if (tag == kInboxTag) return;
    const uint64_t now = host().now_ms();
    for (auto& [id, leg] : loops_[k]->legs) {
      leg->drain(now);
      leg->tick(now);
    }
    return;
  }
  if (cookie == kDeferredCookie) run_outboxes();
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
  // Not handed off yet: the control loop builds its PeerConnection.
  if (!leg->answer(offer, leg->far_audio_media, leg->far_video_media, sdp, why)) {
    leg->release();
    return false;
  }
  leg->subscribe(leg->far_audio_media.bus_stream, leg->far_video_media.bus_stream);
  host().info("call " + cl->callid + " media: " + leg->summary());
  verto::MediaLeg& ref = *leg;
  media_[id] = std::move(leg);
  hand_off(ref);
  cl->media = true;
  return true;
}

void VertoWs::media_failed(uint64_t id, const std::string& why) {
  Call* cl = call(id);
  host().info("call " + (cl ? cl->callid : std::to_string(id)) + " ended: media: " + why);
  end_call(id, 488, "media: " + why);
}

// A leg's media is torn down by its own loop (outside the PeerConnection's callbacks), which
// then hands it back; its sockets are closed on the next media tick after that.
void VertoWs::retire(uint64_t id) {
  auto it = media_.find(id);
  if (it == media_.end()) return;
  verto::MediaLeg* leg = it->second.get();
  graveyard_.push_back({std::move(it->second), false});
  media_.erase(it);
  if (!leg->handed() || leg->loop() == 0) {  // the control loop owns it
    if (leg->handed()) loops_[0]->legs.erase(id);
    leg->close_pc();
    graveyard_.back().ready = true;
    return;
  }
  const uint32_t k = leg->loop();
  to_loop(k, [this, k, leg] {
    auto& legs = loops_[k]->legs;
    if (auto li = legs.find(leg->id()); li != legs.end() && li->second == leg) legs.erase(li);
    leg->close_pc();
    to_control(k, [this, leg] {
      for (auto& g : graveyard_)
        if (g.leg.get() == leg) g.ready = true;
    });
  });
}

// Releases the graves whose loop let go of them.
void VertoWs::graves_ready() {
  std::vector<Grave> keep;
  for (auto& g : graveyard_) {
    if (g.ready) g.leg->release();
    else keep.push_back(std::move(g));
  }
  graveyard_.swap(keep);
}

void VertoWs::media_tick() {
  if (!reoffer_.empty()) reoffer_after_reload();
  graves_ready();
  uint64_t now = host().now_ms();
  // Each PeerConnection's timers run on its own loop: legs of the control loop here, the
  // others' loops get a tick post (which runs their inbox and drains their rings too).
  for (auto& [id, leg] : loops_[0]->legs) leg->tick(now);
  std::vector<uint64_t> failed;
  failed.swap(failed_);
  for (uint32_t k = 1; k <= host().media_loops(); ++k) {
    LoopState& L = *loops_[k];
    while (!L.backlog.empty() && L.in.push(L.backlog.front())) L.backlog.erase(L.backlog.begin());
    host().post(k, kLoopTickTag | uint64_t{k} << 8);
  }
  for (uint64_t id : failed)
    if (call(id)) media_failed(id, "ICE/DTLS failed or consent expired");
}

// On the leg's media loop: its own map, no lock.
void VertoWs::on_udp(jn_handle, uint64_t cookie, const jn_datagram* d, size_t n) {
  if (verto::MediaLeg* leg = loop_leg(loop_of_leg(cookie), cookie)) leg->on_udp(d, n, host().now_ms());
}

// The far leg's frames, on the control loop (bus subscriptions deliver here): handed to the
// leg's media loop by reference through its ring, so its PeerConnection sends them there.
void VertoWs::on_bus(jn_handle, uint64_t cookie, jn_buf* buf) {
  if (confs_->on_bus(cookie, buf)) return;  // a conference member's media
  verto::MediaLeg* leg = leg_of(cookie / 4);
  if (!leg) return;
  const uint32_t kind = static_cast<uint32_t>(cookie % 4);
  if (!leg->loop()) return leg->on_bus(kind, buf, host().now_ms());  // no media loops: the control loop is the leg's loop
  if (leg->push(kind, buf)) host().post(leg->loop(), kDrainTag | leg->id() << 8);
}

}  // namespace verto::ws
