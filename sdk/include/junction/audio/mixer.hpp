// A conference audio mixer for one media loop: members send encoded 20 ms frames (G.711 A-law,
// µ-law or Opus), every tick() decodes one frame per member, detects who is talking by energy,
// mixes the talkers, and gives each member the mix minus its own voice, encoded to its codec.
//
// Cost model (bench/audio_mix): decoding is per member; encoding is per *talker* plus one per
// codec: a member who is not in the mix (silent, muted) hears exactly the full mix, so all such
// members of one codec share one encoded frame. With K talkers among N members a tick costs N
// decodes + K + codecs encodes instead of N + N. For G.711 the shared frame is bit-identical to a
// per-member encode; for Opus a member moving between its own and the shared stream switches
// encoder state (a decoder copes, like a stream switch; config `share_encodes` turns it off).
//
// Not thread-safe: every call on the loop that owns the mixer. No allocation in push() or
// tick(): buffers and codec states are made in add_member().
#pragma once

#include <junction/abi.h>
#include <junction/audio/opus.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace junction::audio {

enum class Codec : uint8_t { PCMA = 0, PCMU = 1, Opus = 2 };
constexpr int kCodecCount = 3;

struct MixerConfig {
  uint32_t rate = 16000;       // mixing rate: 8000, 16000 or 48000
  uint32_t ptime_ms = 20;      // frame length (10, 20, 40, 60 for Opus; G.711 any multiple of 1 ms)
  int talk_threshold = 250;    // mean |sample| above which a frame counts as voice
  uint32_t talk_on_frames = 2; // consecutive voiced frames to start talking
  uint32_t talk_hangover_frames = 25;  // unvoiced frames before talking stops (500 ms at 20 ms)
  uint32_t max_talkers = 0;    // 0: every talker is mixed; K: only the K loudest
  uint32_t jitter_frames = 3;  // frames queued per member before the oldest is dropped
  uint32_t plc_frames = 5;     // Opus: concealed frames after a loss before silence
  bool share_encodes = true;   // members not in the mix share one encoded frame per codec
  int opus_bitrate = 32000;
  int opus_complexity = 5;
};

struct MemberStats {
  uint64_t frames_in = 0, frames_missing = 0, frames_dropped = 0, frames_corrupt = 0;
  uint64_t frames_out = 0, frames_shared = 0;
};

struct MemberState {
  bool muted = false, deaf = false, talking = false;
  int energy = 0;  // mean |sample| of the last frame (0..32767)
};

// Where the mixer's results go. Called from tick(), on the mixer's loop.
class MixerSink {
 public:
  virtual ~MixerSink() = default;
  // One encoded frame for `member` (`shared`: the same bytes went to other members too).
  // The bytes are valid until the callback returns.
  virtual void on_audio(uint32_t member, const uint8_t* data, size_t len, bool shared) = 0;
  // Talking started or stopped (energy: the frame that decided it).
  virtual void on_talking(uint32_t member, bool talking, int energy) = 0;
};

class Mixer {
 public:
  explicit Mixer(MixerConfig cfg = {});
  ~Mixer();
  Mixer(const Mixer&) = delete;
  Mixer& operator=(const Mixer&) = delete;

  // JN_ERR_EXISTS (id taken), JN_ERR_INVALID (bad config: rate/ptime), JN_ERR_INTERNAL (codec).
  jn_status add_member(uint32_t id, Codec codec);
  jn_status remove_member(uint32_t id);
  jn_status set_muted(uint32_t id, bool muted);
  jn_status set_deaf(uint32_t id, bool deaf);

  // One encoded frame from a member (RTP payload). JN_ERR_NOT_FOUND for an unknown member,
  // JN_ERR_LIMIT for a payload larger than a frame can be (dropped). A full queue drops its
  // oldest frame (counted): a member never delays the others.
  jn_status push(uint32_t id, const uint8_t* payload, size_t len);

  // One frame period: decode, detect, mix, encode, deliver.
  void tick(MixerSink& sink);

  const MixerConfig& config() const { return cfg_; }
  size_t samples_per_frame() const { return frame_; }
  size_t member_count() const { return members_.size(); }
  const MemberState* state(uint32_t id) const;
  const MemberStats* stats(uint32_t id) const;
  // Encodes done in the last tick (per-member + shared): what the sharing saves.
  uint32_t last_tick_encodes() const { return last_encodes_; }

  static constexpr size_t kMaxPayload = 1500;

 private:
  struct Member;
  Member* find(uint32_t id);
  const Member* find(uint32_t id) const;
  void decode(Member& m);
  size_t encode(Codec codec, OpusEnc* enc, const int16_t* pcm, uint8_t* out);

  MixerConfig cfg_;
  size_t frame_ = 0;      // samples per frame at the mixing rate
  size_t frame8k_ = 0;    // samples per frame at 8 kHz (G.711)
  bool valid_ = false;
  std::vector<std::unique_ptr<Member>> members_;
  std::unordered_map<uint32_t, Member*> by_id_;  // changed only by add/remove (control work)
  std::vector<int32_t> total_;         // the sum of the mixed members
  std::vector<int16_t> scratch_;       // a member's output PCM at the mixing rate
  std::vector<int16_t> scratch8k_;
  std::vector<uint8_t> out_;
  std::vector<Member*> talkers_;       // reserved to the member count: no allocation in tick
  // One shared encoder and output per codec (made with the first member of that codec).
  OpusEnc shared_opus_;
  std::vector<uint8_t> shared_out_[kCodecCount];
  size_t shared_len_[kCodecCount] = {};
  uint32_t last_encodes_ = 0;
};

// Integer-ratio rate conversion for G.711 (8 kHz) members of a 16/48 kHz mix: linear
// interpolation up, a box average down. Voice-grade, cheap, no state beyond one sample.
void upsample(const int16_t* in, size_t n, uint32_t factor, int16_t& last, int16_t* out);
void downsample(const int16_t* in, size_t n_out, uint32_t factor, int16_t* out);

}  // namespace junction::audio
