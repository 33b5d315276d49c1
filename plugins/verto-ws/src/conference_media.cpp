// verto-ws conferences: the media. Each room has a junction::audio::Mixer ticked every 20 ms by a
// timer of one media loop (room serial modulo server.media_loops; the control loop when there are
// none). The mixer belongs to that loop alone (no lock): members' audio arrives on the control
// loop (bus subscriptions to the A-legs' streams) and is handed over by reference through the
// mixer's single-producer ring, which the tick drains; members joining and leaving, mute and deaf
// go to the loop as tasks (VertoWs::to_loop). The tick decodes, detects talkers, mixes and
// publishes each member's mix-minus (re-encoded to its codec) by interned id from the media loop.
// Talking changes go back to the control loop as a report (LiveArray modify, audio floor); the
// statistics the admin API shows are atomics the tick writes. Video is the floor's: its frames
// are republished (the same buffer, no copy, no transcoding) to every other member's video
// stream, and a floor change asks the new holder for a keyframe.
#include "conference.hpp"

#include "verto_ws.hpp"

#include <junction/media/frame.hpp>

#ifdef JN_VERTO_MIXER
#include <junction/audio/mixer.hpp>
#endif

#include <atomic>
#include <cstring>
#include <unordered_map>

namespace verto::ws {

#ifdef JN_VERTO_MIXER
class ConfMix final : public junction::audio::MixerSink {
 public:
  ConfMix(Host h, const junction::audio::MixerConfig& cfg, uint32_t l, size_t capacity)
      : host(h), mixer(cfg), loop(l), slots_n(capacity ? capacity : 1), slots(new Slot[slots_n]) {
    talk.reserve(64);
  }
  ~ConfMix() override {
    Fed f;
    while (in.pop(f)) host.buf_unref(f.buf);
  }
  struct Out {
    uint32_t bus_id = 0, seq = 0, clock = 8000, codec = JN_CODEC_PCMA, step = 160;
    int64_t pts = 0;
  };
  using Talk = TalkEvent;
  struct Fed {  // a member's audio frame, by reference
    uint32_t member = 0;
    jn_buf* buf = nullptr;
  };
  // What the admin API reads (control loop) of what the tick counts (mixer loop): atomics.
  struct Slot {
    std::atomic<uint32_t> member{0};  // 0: free
    std::atomic<uint64_t> frames_in{0}, frames_missing{0}, frames_out{0};
    std::atomic<int> energy{0};
    std::atomic<bool> talking{false};
  };
  Host host;
  verto::Owner owner;               // the mixer's loop, from its adoption on
  bool restored = false;            // built by restore_mixes (loops paused): adopted by its first tick
  // --- the mixer's loop only ---
  junction::audio::Mixer mixer;
  uint32_t loop = 0;
  jn_handle timer = 0;
  std::unordered_map<uint32_t, Out> outs;
  std::vector<Talk> talk;
  uint64_t last_ms = 0;
  // --- control loop only ---
  bool stopping = false;
  // --- between them ---
  verto::SpscRing<Fed, 1024> in;    // control loop -> the tick
  size_t slots_n;
  std::unique_ptr<Slot[]> slots;
  std::atomic<uint64_t> ticks{0}, late{0}, busy_us{0}, fed_dropped{0};

  // On the mixer's loop. A mixer restore_mixes built (loops paused) is adopted by whatever its
  // loop does first with it.
  void own() {
    if (!restored) return;
    owner.adopt();
    restored = false;
  }
  void add(uint32_t id, int codec, Out o) {
    own();
    owner.check();
    jn_status st = mixer.add_member(id, static_cast<junction::audio::Codec>(codec));
    if (st != JN_OK) {
      host.warn("conference mixer: member " + std::to_string(id) + " not mixed (status " + std::to_string(st) + ")");
      return;
    }
    outs[id] = o;
    take_slot(id);
  }
  void take_slot(uint32_t id) {
    for (size_t i = 0; i < slots_n; ++i)
      if (slots[i].member.load(std::memory_order_relaxed) == 0) {
        slots[i].frames_in = slots[i].frames_missing = slots[i].frames_out = 0;
        slots[i].energy = 0;
        slots[i].talking = false;
        slots[i].member.store(id, std::memory_order_release);
        break;
      }
  }
  void remove(uint32_t id) {
    own();
    owner.check();
    mixer.remove_member(id);
    outs.erase(id);
    for (size_t i = 0; i < slots_n; ++i)
      if (slots[i].member.load(std::memory_order_relaxed) == id) slots[i].member.store(0, std::memory_order_release);
  }
  void set_state(uint32_t id, bool muted, bool deaf) {
    own();
    owner.check();
    mixer.set_muted(id, muted);
    mixer.set_deaf(id, deaf);
  }
  // One period: the members' frames handed over since the last one, then the mix.
  void tick(uint64_t now) {
    own();
    owner.check();
    Fed f;
    while (in.pop(f)) {
      mixer.push(f.member, f.buf->data, f.buf->len);
      host.buf_unref(f.buf);
    }
    if (last_ms && now - last_ms > 30) late.fetch_add(1, std::memory_order_relaxed);  // a tick came more than 10 ms late: a frame missed its slot
    last_ms = now;
    auto t0 = std::chrono::steady_clock::now();
    mixer.tick(*this);
    busy_us.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count()),
                      std::memory_order_relaxed);
    ticks.fetch_add(1, std::memory_order_relaxed);
    for (size_t i = 0; i < slots_n; ++i) {
      uint32_t id = slots[i].member.load(std::memory_order_relaxed);
      if (!id) continue;
      const auto* st = mixer.stats(id);
      const auto* ms = mixer.state(id);
      if (!st || !ms) continue;
      slots[i].frames_in.store(st->frames_in, std::memory_order_relaxed);
      slots[i].frames_missing.store(st->frames_missing, std::memory_order_relaxed);
      slots[i].frames_out.store(st->frames_out, std::memory_order_relaxed);
      slots[i].energy.store(ms->energy, std::memory_order_relaxed);
      slots[i].talking.store(ms->talking, std::memory_order_relaxed);
    }
  }

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

// Control loop: the room's running mixer (not one being stopped).
std::shared_ptr<ConfMix> Conferences::mix_of(uint64_t room_serial) const {
  auto it = mixes_.find(room_serial);
#ifdef JN_VERTO_MIXER
  if (it != mixes_.end() && it->second->stopping) return nullptr;
#endif
  return it == mixes_.end() ? nullptr : it->second;
}

// The loop of a room's mixer (the same rule as media_room_start).
uint32_t Conferences::mix_loop(uint64_t serial) const {
  const uint64_t loops = p_.loops_.size() - 1;  // media_loops(), fixed for the process
  return loops ? 1 + static_cast<uint32_t>(serial % loops) : 0;
}

// On loop k: its mixer for the room.
ConfMix* Conferences::loop_mix(uint32_t k, uint64_t serial) const {
  auto& m = p_.loops_[k]->mixes;
  auto it = m.find(serial);
  return it == m.end() ? nullptr : it->second;
}

void Conferences::media_room_start(ConfRoom& r) {
#ifdef JN_VERTO_MIXER
  if (!p_.media_on()) return;
  const uint32_t loop = mix_loop(r.serial);
  const ConfProfile& prof = profile_of(r);
  auto mix = std::make_shared<ConfMix>(p_.host(), mixer_config(prof), loop, prof.max_members);
  mix->owner.set_stats(&p_.owner_stats_);
  mixes_[r.serial] = mix;
  ConfMix* raw = mix.get();
  const uint64_t serial = r.serial;
  p_.to_loop(loop, [this, loop, raw, serial] {  // it belongs to its loop from here; its timer is started there
    raw->owner.adopt();
    p_.loops_[loop]->mixes[serial] = raw;
    if (!raw->timer) p_.host().timer(20, 20, kTimerTag | serial, &raw->timer);
  });
#else
  (void)r;
#endif
}

#ifdef JN_VERTO_MIXER
// On loop k: the mixer stops ticking and leaves the loop; the control loop then drops it.
void Conferences::loop_stop_mix(uint32_t k, uint64_t serial) {
  ConfMix* mix = loop_mix(k, serial);
  if (!mix) return;
  mix->own();
  mix->owner.check();
  if (mix->timer) p_.host().stop_timer(mix->timer);
  mix->timer = 0;
  p_.loops_[k]->mixes.erase(serial);
  p_.to_control(k, [this, serial, mix] {
    auto it = mixes_.find(serial);
    if (it != mixes_.end() && it->second.get() == mix) mixes_.erase(it);
  });
}
#endif

void Conferences::media_room_stop(ConfRoom& r) {
#ifdef JN_VERTO_MIXER
  auto it = mixes_.find(r.serial);
  if (it == mixes_.end() || it->second->stopping) return;
  it->second->stopping = true;
  const uint32_t loop = it->second->loop;
  const uint64_t serial = r.serial;
  p_.to_loop(loop, [this, loop, serial] { loop_stop_mix(loop, serial); });  // only its loop may stop its timer
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
    const uint32_t loop = mix->loop, id = m.id;
    const uint64_t serial = r.serial;
    const int codec = m.audio_codec;
    ConfMix::Out o = out_for(codec, bus_ids_[m.audio_out]);
    p_.to_loop(loop, [this, loop, serial, id, codec, o] {
      if (ConfMix* lm = loop_mix(loop, serial)) lm->add(id, codec, o);
    });
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
  std::vector<uint32_t> ids;  // our output streams: released once the mixer publishes on them no more
  for (const std::string* s : {&m.audio_out, &m.video_out})
    if (auto it = bus_ids_.find(*s); it != bus_ids_.end()) {
      ids.push_back(it->second);
      bus_ids_.erase(it);
    }
  auto release = [this, ids] {
    for (uint32_t id : ids) p_.host().bus_release_id(id);
  };
  auto it = mixes_.find(r.serial);
  if (it == mixes_.end()) return release();
  const uint32_t loop = it->second->loop, id = m.id;
  const uint64_t serial = r.serial;
  p_.to_loop(loop, [this, loop, serial, id, release] {
    if (ConfMix* lm = loop_mix(loop, serial)) lm->remove(id);
    p_.to_control(loop, release);
  });
#else
  (void)r, (void)m;
#endif
}

void Conferences::media_state(ConfRoom& r, ConfMember& m) {
#ifdef JN_VERTO_MIXER
  std::shared_ptr<ConfMix> mix = mix_of(r.serial);
  if (!mix) return;
  const uint32_t loop = mix->loop, id = m.id;
  const uint64_t serial = r.serial;
  const bool muted = m.muted || m.hold, deaf = m.deaf || m.hold;
  p_.to_loop(loop, [this, loop, serial, id, muted, deaf] {
    if (ConfMix* lm = loop_mix(loop, serial)) lm->set_state(id, muted, deaf);
  });
#else
  (void)r, (void)m;
#endif
}

// The video floor moved (or a member joined): a keyframe from the holder, so every member can
// start decoding at once. Our own browsers directly; other producers by the core event.
void Conferences::media_floor(ConfRoom& r, uint32_t) {
  ConfMember* f = member(r, r.video_floor());
  if (!f || f->video_in.empty()) return;
  for (auto& [i, l] : p_.media_)
    if (l->owns_stream(f->video_in)) p_.want_keyframe(*l);  // sent by the leg's loop
  p_.host().event_publish(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, json{{"stream", f->video_in}, {"reason", "join"}}.dump());
}

// Control loop: a member's audio or video frame (no lock: the audio goes through the mixer's ring).
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
    p_.host().buf_ref(buf);  // by reference to the mixer's loop: its next tick takes it
    if (!mix->in.push({id, buf})) {
      p_.host().buf_unref(buf);
      mix->fed_dropped.fetch_add(1, std::memory_order_relaxed);
    }
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

// On the mixer's loop: its tick.
bool Conferences::on_timer(jn_handle h, uint64_t cookie) {
  if ((cookie & (0xFFull << 56)) != kTimerTag) return false;
#ifdef JN_VERTO_MIXER
  const uint64_t serial = cookie & ~(0xFFull << 56);
  const uint32_t k = mix_loop(serial);
  ConfMix* mix = loop_mix(k, serial);
  const Host& host = p_.host();
  if (!mix) {  // a room gone (or not carried over a reload): its timer with it
    host.stop_timer(h);
    return true;
  }
  if (!mix->timer) mix->timer = h;  // a timer that crossed a hot reload
  mix->tick(host.now_ms());
  if (!mix->talk.empty()) {
    std::vector<ConfMix::Talk> events;
    events.swap(mix->talk);  // only when somebody starts or stops talking
    mix->talk.reserve(64);
    p_.to_control(k, [this, serial, events = std::move(events)] { talking_events(serial, events); });
  }
#else
  (void)h;
#endif
  return true;
}

bool Conferences::on_post(uint64_t cookie) {
  const uint64_t tag = cookie & (0xFFull << 56), serial = cookie & ~(0xFFull << 56);
  if (tag != kStartTag && tag != kStopTag && tag != kTalkPost) return false;
#ifdef JN_VERTO_MIXER
  // Posts of a previous instance (or of restore_mixes), on the mixer's loop: the mixer is in that
  // loop's map already (restored while the loops were paused).
  if (tag == kTalkPost) return true;  // talking is reported by a task now
  const uint32_t k = mix_loop(serial);
  ConfMix* mix = loop_mix(k, serial);
  if (!mix) return true;
  if (tag == kStartTag) {
    if (!mix->timer) p_.host().timer(20, 20, kTimerTag | serial, &mix->timer);
  } else {
    loop_stop_mix(k, serial);
  }
#endif
  return true;
}

// Control loop: who started or stopped talking in a room. LiveArray modify (talking,
// energyScore), and the audio floor follows the last member who started talking.
void Conferences::talking_events(uint64_t serial, const std::vector<TalkEvent>& events) {
  ConfRoom* r = nullptr;
  for (auto& [n, rr] : rooms_)
    if (rr.serial == serial) r = &rr;
  if (!r) return;
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

// Control loop: what the mixer's tick counted (atomics, no lock).
json Conferences::mix_stats(uint64_t serial) const {
#ifdef JN_VERTO_MIXER
  auto it = mixes_.find(serial);
  if (it == mixes_.end()) return nullptr;
  ConfMix& mix = *it->second;
  json members = json::object();
  for (size_t i = 0; i < mix.slots_n; ++i) {
    const ConfMix::Slot& sl = mix.slots[i];
    uint32_t id = sl.member.load(std::memory_order_acquire);
    if (!id) continue;
    members[std::to_string(id)] = {{"frames_in", sl.frames_in.load(std::memory_order_relaxed)},
                                   {"frames_missing", sl.frames_missing.load(std::memory_order_relaxed)},
                                   {"frames_out", sl.frames_out.load(std::memory_order_relaxed)},
                                   {"energy", sl.energy.load(std::memory_order_relaxed)},
                                   {"talking", sl.talking.load(std::memory_order_relaxed)}};
  }
  return json{{"loop", mix.loop}, {"ticks", mix.ticks.load(std::memory_order_relaxed)}, {"late_ticks", mix.late.load(std::memory_order_relaxed)},
              {"busy_us", mix.busy_us.load(std::memory_order_relaxed)}, {"fed_dropped", mix.fed_dropped.load(std::memory_order_relaxed)},
              {"owner_checks", mix.owner.checks()}, {"members", members}};
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
  // A hot reload: the loops are paused, so the mixers' own state can be read here.
  json mixes = json::object();
  for (auto& [serial, mix] : mixes_) {
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
    if (loop != mix_loop(serial)) continue;  // another number of media loops: not a reload's (fixed per process)
    const ConfProfile& prof = r ? profile_of(*r) : p_.conf_.conference.defaults;
    auto mix = std::make_shared<ConfMix>(p_.host(), mixer_config(prof), loop, prof.max_members);
    mix->restored = true;
    mix->owner.set_stats(&p_.owner_stats_);
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
        mix->take_slot(id);
      }
    // The loops are paused (restore_state): the mixer goes into its loop's map directly.
    mixes_[serial] = mix;
    p_.loops_[loop]->mixes[serial] = mix.get();
    if (mix->stopping) p_.host().post(loop, kStopTag | serial);
  }
#endif
}

}  // namespace verto::ws
