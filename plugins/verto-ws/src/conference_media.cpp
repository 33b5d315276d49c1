// verto-ws conferences: the media. Each room has a junction::audio::Mixer ticked every 20 ms by a
// timer of one media loop (room serial modulo server.media_loops; the control loop when there are
// none). Members' audio arrives on the control loop (bus subscriptions to the A-legs' streams) and
// is pushed under the room's lock; the tick decodes, detects talkers, mixes and publishes each
// member's mix-minus (re-encoded to its codec) by interned id from the media loop. Talking changes
// go back to the control loop by a post (LiveArray modify, audio floor). Video is the floor's:
// its frames are republished (the same buffer, no copy, no transcoding) to every other member's
// video stream, and a floor change asks the new holder for a keyframe.
#include "conference.hpp"

#include "verto_ws.hpp"

#include <junction/media/frame.hpp>

#ifdef JN_VERTO_MIXER
#include <junction/audio/mixer.hpp>
#endif

#include <cstring>
#include <unordered_map>

namespace verto::ws {

#ifdef JN_VERTO_MIXER
class ConfMix final : public junction::audio::MixerSink {
 public:
  ConfMix(Host h, const junction::audio::MixerConfig& cfg, uint32_t l) : host(h), mixer(cfg), loop(l) { talk.reserve(64); }
  struct Out {
    uint32_t bus_id = 0, seq = 0, clock = 8000, codec = JN_CODEC_PCMA, step = 160;
    int64_t pts = 0;
  };
  struct Talk {
    uint32_t member;
    bool talking;
    int energy;
  };
  Host host;
  std::mutex mu;  // the mixer, outs and talk: the control loop pushes, the media loop ticks
  junction::audio::Mixer mixer;
  uint32_t loop = 0;
  jn_handle timer = 0;  // belongs to `loop`
  bool stopping = false;
  std::unordered_map<uint32_t, Out> outs;
  std::vector<Talk> talk;
  uint64_t ticks = 0, late = 0, last_ms = 0, busy_us = 0;

  // On the media loop, from tick(): one pool buffer per frame, published by id.
  void on_audio(uint32_t member, const uint8_t* data, size_t len, bool) override {
    auto it = outs.find(member);
    if (it == outs.end() || !it->second.bus_id) return;
    Out& o = it->second;
    jn_buf* b = host.buf_alloc(static_cast<uint32_t>(len));
    if (!b) return;
    std::memcpy(b->data, data, len);
    b->len = static_cast<uint32_t>(len);
    b->flags |= JN_BUF_MEDIA;
    b->meta.pts = b->meta.dts = o.pts;
    b->meta.clock_rate = o.clock;
    b->meta.codec = o.codec;
    b->meta.seq = o.seq++;
    b->meta.kind = JN_MEDIA_AUDIO;
    b->meta.track = 1;
    o.pts += o.step;
    host.bus_publish_id(o.bus_id, b);
    host.buf_unref(b);
  }
  void on_talking(uint32_t member, bool talking, int energy) override {
    if (talk.size() < 4096) talk.push_back({member, talking, energy});
  }
};

static ConfMix::Out out_for(int codec, uint32_t bus_id) {
  ConfMix::Out o;
  o.bus_id = bus_id;
  if (codec == 2) o.clock = 48000, o.codec = JN_CODEC_OPUS, o.step = 960;
  else if (codec == 1) o.codec = JN_CODEC_PCMU;
  return o;
}

static junction::audio::MixerConfig mixer_config(const ConfProfile& p) {
  junction::audio::MixerConfig cfg;
  cfg.rate = p.rate;
  cfg.talk_threshold = p.talk_threshold;
  return cfg;
}
#else
class ConfMix {};  // built without libopus: conferences carry signalling only (README)
#endif

std::shared_ptr<ConfMix> Conferences::mix_of(uint64_t room_serial) const {
  std::lock_guard<std::mutex> g(mix_mu_);
  auto it = mixes_.find(room_serial);
  return it == mixes_.end() ? nullptr : it->second;
}

void Conferences::media_room_start(ConfRoom& r) {
#ifdef JN_VERTO_MIXER
  if (!p_.media_on()) return;
  uint32_t loops = p_.host().media_loops();
  uint32_t loop = loops ? 1 + static_cast<uint32_t>(r.serial % loops) : 0;
  auto mix = std::make_shared<ConfMix>(p_.host(), mixer_config(profile_of(r)), loop);
  {
    std::lock_guard<std::mutex> g(mix_mu_);
    mixes_[r.serial] = mix;
  }
  p_.host().post(loop, kStartTag | r.serial);  // its timer is started on its loop
#else
  (void)r;
#endif
}

void Conferences::media_room_stop(ConfRoom& r) {
#ifdef JN_VERTO_MIXER
  std::lock_guard<std::mutex> g(mix_mu_);
  auto it = mixes_.find(r.serial);
  if (it == mixes_.end()) return;
  it->second->stopping = true;
  p_.host().post(it->second->loop, kStopTag | r.serial);  // only its loop may stop its timer
#else
  (void)r;
#endif
}

void Conferences::media_join(ConfRoom& r, ConfMember& m) {
#ifdef JN_VERTO_MIXER
  std::shared_ptr<ConfMix> mix = mix_of(r.serial);
  if (!mix) return;
  const Host& host = p_.host();
  for (const std::string* s : {&m.audio_out, &m.video_out}) {
    if (s->empty() || bus_ids_.count(*s)) continue;
    uint32_t id = 0;
    if (host.bus_intern(*s, &id) == JN_OK) bus_ids_[*s] = id;
  }
  if (m.audio_codec >= 0) {
    std::lock_guard<std::mutex> g(mix->mu);
    jn_status st = mix->mixer.add_member(m.id, static_cast<junction::audio::Codec>(m.audio_codec));
    if (st != JN_OK) host.warn("conference " + r.name + ": member " + std::to_string(m.id) + " not mixed (status " + std::to_string(st) + ")");
    else mix->outs[m.id] = out_for(m.audio_codec, bus_ids_[m.audio_out]);
  }
  auto sub = [&](const std::string& stream, uint32_t kind) {
    if (stream.empty()) return;
    jn_handle h = 0;
    uint64_t key = m.cookie * 4 + kind;
    if (host.bus_subscribe(stream, kBusBit | key, &h) == JN_OK) bus_subs_[key] = h;
    else host.warn("conference " + r.name + ": cannot subscribe to " + stream);
  };
  sub(m.audio_in, JN_MEDIA_AUDIO);
  sub(m.video_in, JN_MEDIA_VIDEO);
  media_state(r, m);
#else
  (void)r, (void)m;
#endif
}

void Conferences::media_leave(ConfRoom& r, ConfMember& m) {
#ifdef JN_VERTO_MIXER
  const Host& host = p_.host();
  for (uint32_t kind : {uint32_t{JN_MEDIA_AUDIO}, uint32_t{JN_MEDIA_VIDEO}}) {
    auto it = bus_subs_.find(m.cookie * 4 + kind);
    if (it == bus_subs_.end()) continue;
    host.bus_unsubscribe(it->second);
    bus_subs_.erase(it);
  }
  std::shared_ptr<ConfMix> mix = mix_of(r.serial);
  if (mix) {
    std::lock_guard<std::mutex> g(mix->mu);
    mix->mixer.remove_member(m.id);
    mix->outs.erase(m.id);
  }
  for (const std::string* s : {&m.audio_out, &m.video_out})
    if (auto it = bus_ids_.find(*s); it != bus_ids_.end()) {
      host.bus_release_id(it->second);
      bus_ids_.erase(it);
    }
#else
  (void)r, (void)m;
#endif
}

void Conferences::media_state(ConfRoom& r, ConfMember& m) {
#ifdef JN_VERTO_MIXER
  std::shared_ptr<ConfMix> mix = mix_of(r.serial);
  if (!mix) return;
  std::lock_guard<std::mutex> g(mix->mu);
  mix->mixer.set_muted(m.id, m.muted || m.hold);
  mix->mixer.set_deaf(m.id, m.deaf || m.hold);
#else
  (void)r, (void)m;
#endif
}

// The video floor moved (or a member joined): a keyframe from the holder, so every member can
// start decoding at once. Our own browsers directly; other producers by the core event.
void Conferences::media_floor(ConfRoom& r, uint32_t) {
  ConfMember* f = member(r, r.video_floor());
  if (!f || f->video_in.empty()) return;
  {
    std::lock_guard<std::recursive_mutex> g(p_.media_mu_);
    for (auto& [i, l] : p_.media_)
      if (l->owns_stream(f->video_in)) p_.want_keyframe(*l);  // sent by the leg's loop
  }
  p_.host().event_publish(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, json{{"stream", f->video_in}, {"reason", "join"}}.dump());
}

// Control loop: a member's audio or video frame.
bool Conferences::on_bus(uint64_t cookie, jn_buf* buf) {
  if (!(cookie & kBusBit)) return false;
#ifdef JN_VERTO_MIXER
  uint64_t key = cookie & ~kBusBit;
  auto it = by_cookie_.find(key / 4);
  if (it == by_cookie_.end() || !buf) return true;
  ConfRoom* r = room(it->second.first);
  if (!r) return true;
  const uint32_t id = it->second.second;
  if (key % 4 == JN_MEDIA_AUDIO) {
    // A buffer without media meta is taken as the raw codec frame the OFFER named, for G.711
    // only (xxxcid-gateway relays a door's audio datagrams untouched; its format is PCMA).
    if (!(buf->flags & JN_BUF_MEDIA)) {
      auto mi = r->members.find(id);
      if (mi == r->members.end() || (mi->second.audio_codec != 0 && mi->second.audio_codec != 1)) return true;
    }
    std::shared_ptr<ConfMix> mix = mix_of(r->serial);
    if (!mix) return true;
    std::lock_guard<std::mutex> g(mix->mu);
    mix->mixer.push(id, buf->data, buf->len);
    return true;
  }
  if (!(buf->flags & JN_BUF_MEDIA) || r->video_floor() != id) return true;  // only the floor's frames are seen
  for (auto& [mid, m] : r->members) {
    if (mid == id || m.video_out.empty()) continue;
    auto bi = bus_ids_.find(m.video_out);
    if (bi != bus_ids_.end()) p_.host().bus_publish_id(bi->second, buf);  // borrowed: the same frame to each
  }
#endif
  return true;
}

bool Conferences::on_timer(jn_handle h, uint64_t cookie) {
  if ((cookie & (0xFFull << 56)) != kTimerTag) return false;
#ifdef JN_VERTO_MIXER
  const uint64_t serial = cookie & ~(0xFFull << 56);
  std::shared_ptr<ConfMix> mix = mix_of(serial);
  const Host& host = p_.host();
  if (!mix) {  // a room gone (or not carried over a reload): its timer with it
    host.stop_timer(h);
    return true;
  }
  bool talk;
  {
    std::lock_guard<std::mutex> g(mix->mu);
    if (!mix->timer) mix->timer = h;  // a timer that crossed a hot reload
    uint64_t now = host.now_ms();
    if (mix->last_ms && now - mix->last_ms > 30) ++mix->late;  // a tick came more than 10 ms late: a frame missed its slot
    mix->last_ms = now;
    auto t0 = std::chrono::steady_clock::now();
    mix->mixer.tick(*mix);
    mix->busy_us += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
    ++mix->ticks;
    talk = !mix->talk.empty();
  }
  if (talk) host.post(0, kTalkPost);
#else
  (void)h;
#endif
  return true;
}

bool Conferences::on_post(uint64_t cookie) {
  const uint64_t tag = cookie & (0xFFull << 56), serial = cookie & ~(0xFFull << 56);
  if (tag != kStartTag && tag != kStopTag && tag != kTalkPost) return false;
#ifdef JN_VERTO_MIXER
  if (tag == kTalkPost) {
    talking_events();
    return true;
  }
  std::lock_guard<std::mutex> g(mix_mu_);
  auto it = mixes_.find(serial);
  if (it == mixes_.end()) return true;
  ConfMix& mix = *it->second;
  if (tag == kStartTag) {
    if (!mix.stopping && !mix.timer) p_.host().timer(20, 20, kTimerTag | serial, &mix.timer);
  } else {
    if (mix.timer) p_.host().stop_timer(mix.timer);
    mixes_.erase(it);
  }
#endif
  return true;
}

// Control loop: who started or stopped talking. LiveArray modify (talking, energyScore), and the
// audio floor follows the last member who started talking.
void Conferences::talking_events() {
#ifdef JN_VERTO_MIXER
  std::vector<std::pair<uint64_t, std::vector<ConfMix::Talk>>> all;
  {
    std::lock_guard<std::mutex> g(mix_mu_);
    for (auto& [serial, mix] : mixes_) {
      std::lock_guard<std::mutex> g2(mix->mu);
      if (mix->talk.empty()) continue;
      all.push_back({serial, mix->talk});
      mix->talk.clear();
    }
  }
  for (auto& [serial, events] : all) {
    ConfRoom* r = nullptr;
    for (auto& [n, rr] : rooms_)
      if (rr.serial == serial) r = &rr;
    if (!r) continue;
    for (auto& e : events) {
      ConfMember* m = member(*r, e.member);
      if (!m || m->talking == e.talking) continue;
      m->talking = e.talking;
      m->energy = e.energy;
      if (e.talking) set_floor(*r, m->id);
      m = member(*r, e.member);
      if (m) la_change(*r, *m, "modify");
    }
  }
#endif
}

json Conferences::mix_stats(uint64_t serial) const {
#ifdef JN_VERTO_MIXER
  std::lock_guard<std::mutex> g(mix_mu_);
  auto it = mixes_.find(serial);
  if (it == mixes_.end()) return nullptr;
  ConfMix& mix = *it->second;
  std::lock_guard<std::mutex> g2(mix.mu);
  json members = json::object();
  for (auto& [id, o] : mix.outs) {
    const auto* st = mix.mixer.stats(id);
    const auto* ms = mix.mixer.state(id);
    if (!st || !ms) continue;
    members[std::to_string(id)] = {{"frames_in", st->frames_in}, {"frames_missing", st->frames_missing}, {"frames_out", st->frames_out},
                                   {"energy", ms->energy}, {"talking", ms->talking}};
  }
  return json{{"loop", mix.loop}, {"ticks", mix.ticks}, {"late_ticks", mix.late}, {"busy_us", mix.busy_us}, {"members", members}};
#else
  (void)serial;
  return nullptr;
#endif
}

json Conferences::save_mixes() const {
  json j = json::object();
  json ids = json::object();
  for (auto& [s, id] : bus_ids_) ids[s] = id;
  j["bus_ids"] = ids;
#ifdef JN_VERTO_MIXER
  std::lock_guard<std::mutex> g(mix_mu_);
  json mixes = json::object();
  for (auto& [serial, mix] : mixes_) {
    std::lock_guard<std::mutex> g2(mix->mu);
    json outs = json::object();
    for (auto& [id, o] : mix->outs) outs[std::to_string(id)] = {{"seq", o.seq}, {"pts", o.pts}};
    mixes[std::to_string(serial)] = {{"loop", mix->loop}, {"timer", mix->timer}, {"stopping", mix->stopping}, {"outs", outs}};
  }
  j["mixes"] = mixes;
#endif
  return j;
}

// After a hot reload: a fresh mixer per room with its members (codec state restarts: one frame of
// silence at most), fed by the subscriptions and ticked by the timer the old instance left running.
void Conferences::restore_mixes(const json& saved) {
  if (saved.contains("bus_ids") && saved["bus_ids"].is_object())
    for (auto& [s, id] : saved["bus_ids"].items()) bus_ids_[s] = id.get<uint32_t>();
#ifdef JN_VERTO_MIXER
  json mixes = saved.value("mixes", json::object());
  for (auto& [k, v] : mixes.items()) {
    uint64_t serial = std::strtoull(k.c_str(), nullptr, 10);
    ConfRoom* r = nullptr;
    for (auto& [n, rr] : rooms_)
      if (rr.serial == serial) r = &rr;
    uint32_t loop = v.value("loop", 0u);
    auto mix = std::make_shared<ConfMix>(p_.host(), mixer_config(r ? profile_of(*r) : p_.conf_.conference.defaults), loop);
    mix->timer = v.value("timer", jn_handle{0});
    mix->stopping = v.value("stopping", false) || !r;
    if (r)
      for (auto& [id, m] : r->members) {
        if (m.audio_codec < 0 || mix->mixer.add_member(id, static_cast<junction::audio::Codec>(m.audio_codec)) != JN_OK) continue;
        mix->mixer.set_muted(id, m.muted || m.hold);
        mix->mixer.set_deaf(id, m.deaf || m.hold);
        ConfMix::Out o = out_for(m.audio_codec, bus_ids_.count(m.audio_out) ? bus_ids_[m.audio_out] : 0);
        json so = v.value("outs", json::object()).value(std::to_string(id), json::object());
        o.seq = so.value("seq", 0u);
        o.pts = so.value("pts", int64_t{0});
        mix->outs[id] = o;
      }
    std::lock_guard<std::mutex> g(mix_mu_);
    mixes_[serial] = mix;
    if (mix->stopping) p_.host().post(loop, kStopTag | serial);
  }
#endif
}

}  // namespace verto::ws
