#include "aac.hpp"

#include <junction/audio/g711.hpp>

#if __has_include(<libavcodec/avcodec.h>) && defined(CAPTURE_HAVE_LAVC)
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/frame.h>
}
#define CAPTURE_AAC 1
#else
#define CAPTURE_AAC 0
#endif

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace capture {

#if CAPTURE_AAC
namespace {

class LavcAac final : public AacEncoder {
 public:
  ~LavcAac() override {
    av_packet_free(&pkt_);
    av_frame_free(&frame_);
    avcodec_free_context(&ctx_);
  }

  bool init(uint32_t rate, std::string& why) {
    const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!codec) return why = "libavcodec has no AAC encoder", false;
    ctx_ = avcodec_alloc_context3(codec);
    frame_ = av_frame_alloc();
    pkt_ = av_packet_alloc();
    if (!ctx_ || !frame_ || !pkt_) return why = "out of memory", false;
    ctx_->sample_rate = static_cast<int>(rate);
    ctx_->sample_fmt = AV_SAMPLE_FMT_FLTP;
    av_channel_layout_default(&ctx_->ch_layout, 1);
    ctx_->bit_rate = 32000;
    ctx_->profile = FF_PROFILE_AAC_LOW;
    ctx_->time_base = AVRational{1, static_cast<int>(rate)};
    ctx_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;  // the AudioSpecificConfig in extradata
    int rc = avcodec_open2(ctx_, codec, nullptr);
    if (rc < 0) return why = "avcodec_open2 (AAC, " + std::to_string(rate) + " Hz) failed: " + err(rc), false;
    if (!ctx_->extradata || ctx_->extradata_size < 2) return why = "the AAC encoder gave no AudioSpecificConfig", false;
    frame_->nb_samples = ctx_->frame_size ? ctx_->frame_size : 1024;
    frame_->format = AV_SAMPLE_FMT_FLTP;
    frame_->sample_rate = ctx_->sample_rate;
    av_channel_layout_copy(&frame_->ch_layout, &ctx_->ch_layout);
    if ((rc = av_frame_get_buffer(frame_, 0)) < 0) return why = "av_frame_get_buffer: " + err(rc), false;
    rate_ = rate;
    pcm_.resize(static_cast<size_t>(frame_->nb_samples));
    config_.assign(ctx_->extradata, ctx_->extradata + ctx_->extradata_size);
    return true;
  }

  junction::media::FrameView config() const override {
    junction::media::FrameView f;
    f.data = config_.data();
    f.size = config_.size();
    f.meta.codec = JN_CODEC_AAC;
    f.meta.clock_rate = rate_;
    f.meta.frame_flags = JN_MF_CONFIG;
    f.meta.kind = JN_MEDIA_AUDIO;
    return f;
  }

  void push_g711(uint32_t codec, const uint8_t* data, size_t n, uint32_t ts_ms, AacSink& sink) override {
    if (done_) return;
    // The output clock: base + samples fed. A gap (or a step back) of over 1 s rebases it.
    int64_t expect = static_cast<int64_t>(base_ms_) + static_cast<int64_t>(fed_ * 1000 / rate_);
    if (!have_base_ || std::llabs(static_cast<int64_t>(ts_ms) - expect) > 1000) {
      have_base_ = true;
      base_ms_ = static_cast<int64_t>(ts_ms) - static_cast<int64_t>(fed_ * 1000 / rate_);
    }
    while (n) {
      size_t take = std::min(n, pcm_.size() - fill_);
      if (codec == JN_CODEC_PCMU) junction::audio::g711::ulaw_decode(data, take, pcm_.data() + fill_);
      else junction::audio::g711::alaw_decode(data, take, pcm_.data() + fill_);
      fill_ += take, data += take, n -= take;
      if (fill_ < pcm_.size()) break;
      fill_ = 0;
      if (av_frame_make_writable(frame_) < 0) continue;  // the encoder still holds it: drop this block
      auto* out = reinterpret_cast<float*>(frame_->data[0]);
      for (size_t i = 0; i < pcm_.size(); ++i) out[i] = static_cast<float>(pcm_[i]) / 32768.0f;
      frame_->pts = static_cast<int64_t>(fed_);
      fed_ += pcm_.size();
      if (avcodec_send_frame(ctx_, frame_) < 0) continue;
      receive(sink);
    }
  }

  void finish(AacSink& sink) override {
    if (done_) return;
    done_ = true;
    // The partial block as a short last frame (the native encoder takes one: SMALL_LAST_FRAME).
    if (fill_ && av_frame_make_writable(frame_) >= 0) {
      int full = frame_->nb_samples;
      frame_->nb_samples = static_cast<int>(fill_);
      auto* out = reinterpret_cast<float*>(frame_->data[0]);
      for (size_t i = 0; i < fill_; ++i) out[i] = static_cast<float>(pcm_[i]) / 32768.0f;
      frame_->pts = static_cast<int64_t>(fed_);
      fed_ += fill_;
      fill_ = 0;
      if (avcodec_send_frame(ctx_, frame_) >= 0) receive(sink);
      frame_->nb_samples = full;
    }
    if (avcodec_send_frame(ctx_, nullptr) >= 0) receive(sink);  // drain: the frame inside its delay
  }

  std::string suspend(AacSink& sink) override {
    if (done_) return {};
    done_ = true;
    if (avcodec_send_frame(ctx_, nullptr) >= 0) receive(sink);
    // "<next frame's ms> <samples as int16 little-endian, raw>": small (under one block)
    std::string out = std::to_string(base_ms_ + static_cast<int64_t>(fed_ * 1000 / rate_)) + " ";
    for (size_t i = 0; i < fill_; ++i) {
      auto v = static_cast<uint16_t>(pcm_[i]);
      out += static_cast<char>(v & 0xff);
      out += static_cast<char>(v >> 8);
    }
    return out;
  }

  bool resume(std::string_view r) {
    size_t sp = r.find(' ');
    if (sp == std::string_view::npos || sp == 0) return false;
    int64_t next = 0;
    auto res = std::from_chars(r.data(), r.data() + sp, next);
    if (res.ec != std::errc() || res.ptr != r.data() + sp) return false;
    std::string_view samples = r.substr(sp + 1);
    if (samples.size() % 2 || samples.size() / 2 >= pcm_.size()) return false;
    for (size_t i = 0; i < samples.size() / 2; ++i)
      pcm_[i] = static_cast<int16_t>(static_cast<uint8_t>(samples[2 * i]) | (static_cast<uint8_t>(samples[2 * i + 1]) << 8));
    fill_ = samples.size() / 2;
    // The next frame starts where the previous encoder's last one ended; this encoder's priming
    // frame (audio before its first sample) is not sent: it would overlap that frame.
    have_base_ = true;
    base_ms_ = next;
    skip_priming_ = true;
    return true;
  }

 private:
  void receive(AacSink& sink) {
    while (avcodec_receive_packet(ctx_, pkt_) == 0) {
      if (pkt_->pts < 0 && skip_priming_) {
        av_packet_unref(pkt_);
        continue;
      }
      int64_t pts = pkt_->pts < 0 ? 0 : pkt_->pts;
      junction::media::FrameView f;
      f.data = pkt_->data;
      f.size = static_cast<size_t>(pkt_->size);
      f.meta.codec = JN_CODEC_AAC;
      f.meta.clock_rate = rate_;
      f.meta.pts = f.meta.dts = pts;
      f.meta.kind = JN_MEDIA_AUDIO;
      f.meta.seq = static_cast<uint32_t>(frames_);
      ++frames_;
      int64_t ms = base_ms_ + pts * 1000 / rate_;
      sink.aac_frame(f, static_cast<uint32_t>(ms < 0 ? 0 : ms));
      av_packet_unref(pkt_);
    }
  }

 public:
  uint64_t frames_out() const override { return frames_; }

 private:
  static std::string err(int rc) {
    char b[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(rc, b, sizeof b);
    return b;
  }
  AVCodecContext* ctx_ = nullptr;
  AVFrame* frame_ = nullptr;
  AVPacket* pkt_ = nullptr;
  uint32_t rate_ = 8000;
  std::vector<int16_t> pcm_;
  size_t fill_ = 0;
  uint64_t fed_ = 0, frames_ = 0;
  bool have_base_ = false, done_ = false, skip_priming_ = false;
  int64_t base_ms_ = 0;
  std::vector<uint8_t> config_;
};

}  // namespace

bool AacEncoder::available() { return true; }
std::vector<std::string> AacEncoder::libraries() {
  return {"libavcodec.so." + std::to_string(LIBAVCODEC_VERSION_MAJOR), "libavutil.so." + std::to_string(LIBAVUTIL_VERSION_MAJOR)};
}
std::unique_ptr<AacEncoder> AacEncoder::open(uint32_t rate, std::string& why, std::string_view resume) {
  auto e = std::make_unique<LavcAac>();
  if (!e->init(rate, why)) return nullptr;
  if (!resume.empty() && !e->resume(resume)) return why = "the saved AAC encoder state is unreadable", nullptr;
  return e;
}
#else
bool AacEncoder::available() { return false; }
std::vector<std::string> AacEncoder::libraries() { return {}; }
std::unique_ptr<AacEncoder> AacEncoder::open(uint32_t, std::string& why, std::string_view) {
  why = "this build has no libavcodec (AAC encoder)";
  return nullptr;
}
#endif

}  // namespace capture
