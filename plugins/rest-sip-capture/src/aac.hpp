// G.711 -> AAC-LC for RTMP outputs (conf rtmp_audio = "aac": most CDNs want AAC). libavcodec's
// native AAC encoder, mono at the call's 8 kHz (no resampling: AAC-LC allows 8 kHz). CPU work
// only (it never blocks), run on the call's media loop under the call's lock. Everything is
// allocated at open(); per frame the encoder copies samples into its one AVFrame (libavcodec's
// own packet buffer is its business). A build without libavcodec has no encoder (available()
// false): the conf refuses "aac" then.
#pragma once

#include <junction/media/frame.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace capture {

class AacSink {
 public:
  // One raw AAC access unit (no ADTS), its first sample's time in ms on the call's clock.
  virtual void aac_frame(const junction::media::FrameView& f, uint32_t ts_ms) = 0;

 protected:
  ~AacSink() = default;
};

class AacEncoder {
 public:
  static bool available();
  // The sonames of the codec libraries this build links (empty without libavcodec). They keep
  // process-wide state made when they load (their own and their dependencies' allocations), so
  // they follow abi.h's rule for such libraries: pinned through the core (library_pin) at start,
  // never unloaded with the plugin -- unloaded, that state shows as a leak and is remade on
  // every reload.
  static std::vector<std::string> libraries();
  // Null and why when libavcodec has no AAC encoder or refuses the parameters. resume: what
  // suspend() of the previous encoder of the stream returned (a hot reload): the output goes on
  // from where that one stopped, with its unencoded samples first and without a priming frame.
  static std::unique_ptr<AacEncoder> open(uint32_t sample_rate, std::string& why, std::string_view resume = {});
  virtual ~AacEncoder() = default;
  // The AudioSpecificConfig (FLV's AAC sequence header), as a JN_MF_CONFIG frame.
  virtual junction::media::FrameView config() const = 0;
  // G.711 bytes (codec JN_CODEC_PCMA / PCMU) at ts_ms: decoded, buffered to 1024 samples, encoded;
  // each AAC frame out goes to sink. A jump of the input clock (a gap over 1 s) rebases the output's.
  virtual void push_g711(uint32_t codec, const uint8_t* data, size_t n, uint32_t ts_ms, AacSink& sink) = 0;
  virtual uint64_t frames_out() const = 0;
  // The end of the stream (the call ends): the last partial block is encoded as a short frame and
  // the encoder drained, so every sample fed reaches the sink. The encoder takes nothing after.
  virtual void finish(AacSink& sink) = 0;
  // A hot reload: the encoder is drained of every full block (those frames go to sink) and the
  // rest -- the samples of the partial block and the time the next frame starts -- returned for
  // open(..., resume) in the next instance. The encoder takes nothing after.
  virtual std::string suspend(AacSink& sink) = 0;
};

}  // namespace capture
