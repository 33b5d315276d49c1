#include <junction/audio/opus.hpp>

#include <opus/opus.h>

namespace junction::audio {

OpusDec& OpusDec::operator=(OpusDec&& o) noexcept {
  if (this != &o) {
    if (dec_) opus_decoder_destroy(dec_);
    dec_ = o.dec_;
    rate_ = o.rate_;
    o.dec_ = nullptr;
  }
  return *this;
}
OpusDec::~OpusDec() {
  if (dec_) opus_decoder_destroy(dec_);
}
jn_status OpusDec::open(uint32_t rate) {
  if (dec_) return JN_ERR_EXISTS;
  int err = 0;
  dec_ = opus_decoder_create(static_cast<opus_int32>(rate), 1, &err);
  if (err != OPUS_OK || !dec_) {
    dec_ = nullptr;
    return JN_ERR_INVALID;
  }
  rate_ = rate;
  return JN_OK;
}
int OpusDec::decode(const uint8_t* packet, size_t len, int16_t* pcm, int max_samples) {
  if (!dec_) return -1;
  return opus_decode(dec_, len ? packet : nullptr, static_cast<opus_int32>(len), pcm, max_samples, 0);
}

OpusEnc& OpusEnc::operator=(OpusEnc&& o) noexcept {
  if (this != &o) {
    if (enc_) opus_encoder_destroy(enc_);
    enc_ = o.enc_;
    o.enc_ = nullptr;
  }
  return *this;
}
OpusEnc::~OpusEnc() {
  if (enc_) opus_encoder_destroy(enc_);
}
jn_status OpusEnc::open(uint32_t rate, int bitrate, int complexity) {
  if (enc_) return JN_ERR_EXISTS;
  int err = 0;
  enc_ = opus_encoder_create(static_cast<opus_int32>(rate), 1, OPUS_APPLICATION_VOIP, &err);
  if (err != OPUS_OK || !enc_) {
    enc_ = nullptr;
    return JN_ERR_INVALID;
  }
  if (bitrate > 0) opus_encoder_ctl(enc_, OPUS_SET_BITRATE(bitrate));
  opus_encoder_ctl(enc_, OPUS_SET_COMPLEXITY(complexity));
  return JN_OK;
}
int OpusEnc::encode(const int16_t* pcm, int samples, uint8_t* out, size_t cap) {
  if (!enc_) return -1;
  return opus_encode(enc_, pcm, samples, out, static_cast<opus_int32>(cap));
}

}  // namespace junction::audio
