#include <junction/audio/g711.hpp>
#include <junction/audio/mixer.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace junction::audio {

struct Mixer::Member {
  uint32_t id = 0;
  Codec codec = Codec::PCMA;
  MemberState st;
  MemberStats stats;
  OpusDec dec;
  OpusEnc enc;
  // Jitter queue: a ring of fixed slots, so push() never allocates.
  std::vector<uint8_t> slots;
  std::vector<uint16_t> slot_len;
  size_t head = 0, count = 0;
  std::vector<int16_t> pcm;    // this tick's frame at the mixing rate
  std::vector<int16_t> pcm8k;  // G.711: the decoded 8 kHz frame before upsampling
  int16_t up_last = 0;
  uint32_t voiced_run = 0, unvoiced_run = 0, missing_run = 0;
  bool has_audio = false, in_mix = false;
};

namespace {
inline int16_t saturate(int32_t v) {
  return static_cast<int16_t>(std::clamp<int32_t>(v, INT16_MIN, INT16_MAX));
}
}  // namespace

void upsample(const int16_t* in, size_t n, uint32_t factor, int16_t& last, int16_t* out) {
  for (size_t i = 0; i < n; ++i) {
    const int32_t x0 = last, x1 = in[i];
    for (uint32_t k = 0; k < factor; ++k)
      out[i * factor + k] = static_cast<int16_t>(x0 + (x1 - x0) * static_cast<int32_t>(k + 1) / static_cast<int32_t>(factor));
    last = in[i];
  }
}

void downsample(const int16_t* in, size_t n_out, uint32_t factor, int16_t* out) {
  for (size_t i = 0; i < n_out; ++i) {
    int32_t sum = 0;
    for (uint32_t k = 0; k < factor; ++k) sum += in[i * factor + k];
    out[i] = static_cast<int16_t>(sum / static_cast<int32_t>(factor));
  }
}

Mixer::Mixer(MixerConfig cfg) : cfg_(cfg) {
  const bool rate_ok = cfg_.rate == 8000 || cfg_.rate == 16000 || cfg_.rate == 48000;
  const bool ptime_ok = cfg_.ptime_ms == 10 || cfg_.ptime_ms == 20 || cfg_.ptime_ms == 40 || cfg_.ptime_ms == 60;
  valid_ = rate_ok && ptime_ok && cfg_.jitter_frames > 0;
  if (!valid_) return;
  frame_ = cfg_.rate * cfg_.ptime_ms / 1000;
  frame8k_ = 8 * cfg_.ptime_ms;
  total_.assign(frame_, 0);
  scratch_.assign(frame_, 0);
  scratch8k_.assign(frame8k_, 0);
  out_.assign(kMaxPayload, 0);
  for (auto& s : shared_out_) s.assign(kMaxPayload, 0);
}

Mixer::~Mixer() = default;

Mixer::Member* Mixer::find(uint32_t id) {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}
const Mixer::Member* Mixer::find(uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

jn_status Mixer::add_member(uint32_t id, Codec codec) {
  if (!valid_) return JN_ERR_INVALID;
  if (find(id)) return JN_ERR_EXISTS;
  auto m = std::make_unique<Member>();
  m->id = id;
  m->codec = codec;
  m->slots.assign(cfg_.jitter_frames * kMaxPayload, 0);
  m->slot_len.assign(cfg_.jitter_frames, 0);
  m->pcm.assign(frame_, 0);
  if (codec == Codec::Opus) {
    if (m->dec.open(cfg_.rate) != JN_OK) return JN_ERR_INTERNAL;
    if (m->enc.open(cfg_.rate, cfg_.opus_bitrate, cfg_.opus_complexity) != JN_OK) return JN_ERR_INTERNAL;
    if (cfg_.share_encodes && !shared_opus_.is_open() &&
        shared_opus_.open(cfg_.rate, cfg_.opus_bitrate, cfg_.opus_complexity) != JN_OK)
      return JN_ERR_INTERNAL;
  } else {
    m->pcm8k.assign(frame8k_, 0);
  }
  by_id_.emplace(id, m.get());
  members_.push_back(std::move(m));
  talkers_.reserve(members_.size());
  return JN_OK;
}

jn_status Mixer::remove_member(uint32_t id) {
  auto it = std::find_if(members_.begin(), members_.end(), [&](auto& m) { return m->id == id; });
  if (it == members_.end()) return JN_ERR_NOT_FOUND;
  by_id_.erase(id);
  members_.erase(it);
  return JN_OK;
}

jn_status Mixer::set_muted(uint32_t id, bool muted) {
  Member* m = find(id);
  if (!m) return JN_ERR_NOT_FOUND;
  m->st.muted = muted;
  return JN_OK;
}

jn_status Mixer::set_deaf(uint32_t id, bool deaf) {
  Member* m = find(id);
  if (!m) return JN_ERR_NOT_FOUND;
  m->st.deaf = deaf;
  return JN_OK;
}

const MemberState* Mixer::state(uint32_t id) const {
  const Member* m = find(id);
  return m ? &m->st : nullptr;
}
const MemberStats* Mixer::stats(uint32_t id) const {
  const Member* m = find(id);
  return m ? &m->stats : nullptr;
}

jn_status Mixer::push(uint32_t id, const uint8_t* payload, size_t len) {
  Member* m = find(id);
  if (!m) return JN_ERR_NOT_FOUND;
  if (len > kMaxPayload) {
    ++m->stats.frames_dropped;
    return JN_ERR_LIMIT;
  }
  const size_t cap = m->slot_len.size();
  if (m->count == cap) {  // the oldest goes: a member that bursts never delays the mix
    m->head = (m->head + 1) % cap;
    --m->count;
    ++m->stats.frames_dropped;
  }
  const size_t slot = (m->head + m->count) % cap;
  if (len) std::memcpy(m->slots.data() + slot * kMaxPayload, payload, len);
  m->slot_len[slot] = static_cast<uint16_t>(len);
  ++m->count;
  ++m->stats.frames_in;
  return JN_OK;
}

void Mixer::decode(Member& m) {
  m.has_audio = false;
  const uint8_t* p = nullptr;
  size_t len = 0;
  bool got = false;
  if (m.count) {
    p = m.slots.data() + m.head * kMaxPayload;
    len = m.slot_len[m.head];
    m.head = (m.head + 1) % m.slot_len.size();
    --m.count;
    got = true;
  }
  if (m.codec == Codec::Opus) {
    int n = -1;
    if (got && len) {
      n = m.dec.decode(p, len, m.pcm.data(), static_cast<int>(frame_));
      if (n < 0) ++m.stats.frames_corrupt;
    } else {
      ++m.stats.frames_missing;
      if (m.missing_run < cfg_.plc_frames) n = m.dec.decode(nullptr, 0, m.pcm.data(), static_cast<int>(frame_));
      ++m.missing_run;
    }
    if (n > 0) {
      if (got) m.missing_run = 0;
      std::fill(m.pcm.begin() + n, m.pcm.end(), 0);
      m.has_audio = true;
    } else {
      std::fill(m.pcm.begin(), m.pcm.end(), 0);
    }
    return;
  }
  if (!got || !len) {
    ++m.stats.frames_missing;
    std::fill(m.pcm.begin(), m.pcm.end(), 0);
    return;
  }
  // G.711: a frame shorter than ptime is padded with silence, a longer one is cut (counted).
  const size_t use = std::min(len, frame8k_);
  if (len > frame8k_) ++m.stats.frames_corrupt;
  if (m.codec == Codec::PCMA)
    g711::alaw_decode(p, use, m.pcm8k.data());
  else
    g711::ulaw_decode(p, use, m.pcm8k.data());
  std::fill(m.pcm8k.begin() + use, m.pcm8k.end(), 0);
  if (cfg_.rate == 8000)
    std::copy(m.pcm8k.begin(), m.pcm8k.end(), m.pcm.begin());
  else
    upsample(m.pcm8k.data(), frame8k_, cfg_.rate / 8000, m.up_last, m.pcm.data());
  m.has_audio = true;
}

size_t Mixer::encode(Codec codec, OpusEnc* enc, const int16_t* pcm, uint8_t* out) {
  if (codec == Codec::Opus) {
    const int n = enc->encode(pcm, static_cast<int>(frame_), out, kMaxPayload);
    return n > 0 ? static_cast<size_t>(n) : 0;
  }
  const int16_t* at8k = pcm;
  if (cfg_.rate != 8000) {
    downsample(pcm, frame8k_, cfg_.rate / 8000, scratch8k_.data());
    at8k = scratch8k_.data();
  }
  if (codec == Codec::PCMA)
    g711::alaw_encode(at8k, frame8k_, out);
  else
    g711::ulaw_encode(at8k, frame8k_, out);
  return frame8k_;
}

void Mixer::tick(MixerSink& sink) {
  if (!valid_) return;
  last_encodes_ = 0;
  talkers_.clear();
  // 1. Decode and detect.
  for (auto& up : members_) {
    Member& m = *up;
    decode(m);
    int64_t sum = 0;
    if (m.has_audio)
      for (int16_t s : m.pcm) sum += std::abs(static_cast<int32_t>(s));
    const int energy = static_cast<int>(sum / static_cast<int64_t>(frame_));
    m.st.energy = energy;
    const bool voiced = m.has_audio && energy > cfg_.talk_threshold && !m.st.muted;
    if (voiced) {
      ++m.voiced_run;
      m.unvoiced_run = 0;
    } else {
      ++m.unvoiced_run;
      m.voiced_run = 0;
    }
    const bool was = m.st.talking;
    if (!was && m.voiced_run >= cfg_.talk_on_frames) m.st.talking = true;
    if (was && (m.st.muted || m.unvoiced_run > cfg_.talk_hangover_frames)) m.st.talking = false;
    if (was != m.st.talking) sink.on_talking(m.id, m.st.talking, energy);
    // A voiced frame is mixed at once (no clipped onset); the hangover keeps a talker's pauses.
    m.in_mix = !m.st.muted && m.has_audio && (voiced || m.st.talking);
    if (m.in_mix) talkers_.push_back(&m);
  }
  // 2. Keep only the loudest when the conference caps its talkers.
  if (cfg_.max_talkers && talkers_.size() > cfg_.max_talkers) {
    std::nth_element(talkers_.begin(), talkers_.begin() + cfg_.max_talkers, talkers_.end(),
                     [](const Member* a, const Member* b) { return a->st.energy > b->st.energy; });
    for (size_t i = cfg_.max_talkers; i < talkers_.size(); ++i) talkers_[i]->in_mix = false;
    talkers_.resize(cfg_.max_talkers);
  }
  // 3. Mix.
  std::fill(total_.begin(), total_.end(), 0);
  for (Member* m : talkers_)
    for (size_t i = 0; i < frame_; ++i) total_[i] += m->pcm[i];
  // 4. Each member: the mix minus itself; members outside the mix share one frame per codec.
  for (size_t& l : shared_len_) l = SIZE_MAX;
  for (auto& up : members_) {
    Member& m = *up;
    if (m.st.deaf) continue;
    if (m.in_mix || !cfg_.share_encodes) {
      for (size_t i = 0; i < frame_; ++i) scratch_[i] = saturate(total_[i] - (m.in_mix ? m.pcm[i] : 0));
      const size_t n = encode(m.codec, &m.enc, scratch_.data(), out_.data());
      ++last_encodes_;
      if (!n) continue;
      ++m.stats.frames_out;
      sink.on_audio(m.id, out_.data(), n, false);
      continue;
    }
    const int c = static_cast<int>(m.codec);
    if (shared_len_[c] == SIZE_MAX) {
      for (size_t i = 0; i < frame_; ++i) scratch_[i] = saturate(total_[i]);
      shared_len_[c] = encode(m.codec, &shared_opus_, scratch_.data(), shared_out_[c].data());
      ++last_encodes_;
    }
    if (!shared_len_[c]) continue;
    ++m.stats.frames_out;
    ++m.stats.frames_shared;
    sink.on_audio(m.id, shared_out_[c].data(), shared_len_[c], true);
  }
}

}  // namespace junction::audio
