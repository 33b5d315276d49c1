// libopus, one mono stream each way, owned RAII; status codes, no exceptions. Opus decodes and
// encodes at any of 8/12/16/24/48 kHz directly (the RTP clock stays 48 kHz whatever the rate), so
// a mixer runs its Opus members at its own rate with no resampler.
#pragma once

#include <junction/abi.h>

#include <cstddef>
#include <cstdint>

struct OpusDecoder;
struct OpusEncoder;

namespace junction::audio {

class OpusDec {
 public:
  OpusDec() = default;
  OpusDec(const OpusDec&) = delete;
  OpusDec& operator=(const OpusDec&) = delete;
  OpusDec(OpusDec&& o) noexcept : dec_(o.dec_), rate_(o.rate_) { o.dec_ = nullptr; }
  OpusDec& operator=(OpusDec&& o) noexcept;
  ~OpusDec();
  jn_status open(uint32_t rate);  // 8000, 12000, 16000, 24000 or 48000
  // Decodes one packet into at most `max_samples`; a null/empty packet conceals a lost one
  // (PLC). Returns the samples written, or < 0 for a corrupt packet.
  int decode(const uint8_t* packet, size_t len, int16_t* pcm, int max_samples);
  bool is_open() const { return dec_ != nullptr; }

 private:
  OpusDecoder* dec_ = nullptr;
  uint32_t rate_ = 0;
};

class OpusEnc {
 public:
  OpusEnc() = default;
  OpusEnc(const OpusEnc&) = delete;
  OpusEnc& operator=(const OpusEnc&) = delete;
  OpusEnc(OpusEnc&& o) noexcept : enc_(o.enc_) { o.enc_ = nullptr; }
  OpusEnc& operator=(OpusEnc&& o) noexcept;
  ~OpusEnc();
  // VoIP application, mono, `bitrate` bits/s (0 = libopus's choice), complexity 0..10.
  jn_status open(uint32_t rate, int bitrate = 32000, int complexity = 5);
  // One frame of `samples` (2.5..60 ms at the open rate). Returns bytes written or < 0.
  int encode(const int16_t* pcm, int samples, uint8_t* out, size_t cap);
  bool is_open() const { return enc_ != nullptr; }

 private:
  OpusEncoder* enc_ = nullptr;
};

}  // namespace junction::audio
