// Bus frames <-> RTP for one m-line (bridge.hpp says what and why).
#include <junction/media/audio_rtp.hpp>
#include <junction/media/h264_rtp.hpp>
#include <junction/media/vp8_rtp.hpp>
#include <junction/util/random.hpp>
#include <junction/webrtc/bridge.hpp>

#include <cstring>
#include <new>

namespace junction::webrtc {

namespace {
template <typename T, typename... A>
std::unique_ptr<T> make(A&&... a) {
  return std::unique_ptr<T>(new (std::nothrow) T(std::forward<A>(a)...));
}
}  // namespace

uint32_t codec_id(std::string_view n) {
  if (n == "H264") return JN_CODEC_H264;
  if (n == "VP8") return JN_CODEC_VP8;
  if (n == "OPUS") return JN_CODEC_OPUS;
  if (n == "PCMA") return JN_CODEC_PCMA;
  if (n == "PCMU") return JN_CODEC_PCMU;
  return JN_CODEC_NONE;
}

FrameToRtp::FrameToRtp(const SendConfig& cfg, RtpOutput& out) : cfg_(cfg), out_(out) {
  std::string name = canonical_codec_name(cfg.codec.name);
  codec_ = codec_id(name);
  media::PacketizerConfig pc;
  pc.payload_type = cfg.codec.pt;
  pc.ssrc = cfg.ssrc;
  pc.mtu = cfg.mtu;
  pc.clock_rate = cfg.codec.clock_rate;
  pc.first_seq = cfg.first_seq;
  pc.ts_offset = cfg.ts_offset;
  if (cfg.random_start) {
    std::string r;
    if (util::random_bytes(6, r)) {
      std::memcpy(&pc.first_seq, r.data(), 2);
      std::memcpy(&pc.ts_offset, r.data() + 2, 4);
    }
  }
  switch (codec_) {
    case JN_CODEC_H264: pk_ = make<media::H264Packetizer>(pc, 1); break;  // sdp.cpp accepts mode 1 only
    case JN_CODEC_VP8: pk_ = make<media::Vp8Packetizer>(pc); break;
    case JN_CODEC_OPUS:
    case JN_CODEC_PCMA:
    case JN_CODEC_PCMU: pk_ = make<media::AudioPacketizer>(pc, codec_); break;
    default: error_ = "no packetizer for " + name; return;
  }
  if (!pk_ || !pk_->ok()) {
    error_ = std::string("packetizer: ") + (pk_ ? media::to_string(pk_->error()) : "out of memory");
    return;
  }
  clock_ = pk_->clock_rate();
  cap_ = cfg.mtu + kRtpTailroom;
  buf_ = media::alloc_bytes(cap_);
  if (!buf_) {
    error_ = "out of memory";
    return;
  }
  waiting_key_ = cfg.kind == JN_MEDIA_VIDEO;
  ok_ = true;
}

void FrameToRtp::on_packet(const uint8_t* p, size_t n) {
  // The packetizer's buffer has no tailroom: the one copy into ours, protected in place there.
  std::memcpy(buf_.get(), p, n);
  out_.store_sent(buf_.get(), n);
  last_ts_ = proto::rtp::rd32(buf_.get() + 4);
  ++stats_.packets;
  stats_.bytes += n;
  if (!out_.send_rtp(buf_.get(), n, cap_)) ++stats_.send_failed;
}

FrameToRtp::Result FrameToRtp::send(const media::FrameView& f) {
  if (!ok_) return Result::Refused;
  if (f.meta.codec && f.meta.codec != codec_) {
    ++stats_.wrong_codec;
    return Result::Refused;
  }
  if (cfg_.kind == JN_MEDIA_VIDEO) {
    // A frame lost on the bus (seq gap) or a discontinuity breaks the decoder's references.
    bool lost = have_seq_ && f.meta.seq != next_frame_seq_;
    if (lost || (f.meta.frame_flags & JN_MF_DISCONT)) waiting_key_ = true;
    have_seq_ = true;
    next_frame_seq_ = f.meta.seq + 1;
    if (f.meta.frame_flags & JN_MF_KEY) waiting_key_ = false;
    if (waiting_key_) {
      ++stats_.held_for_keyframe;
      return Result::NeedKeyframe;
    }
  }
  auto sink = [this](const uint8_t* p, size_t n) { on_packet(p, n); };
  media::RtpError e = pk_->packetize(f, media::packet_sink(sink));
  if (e != media::RtpError::None) {
    ++stats_.refused;
    return Result::Refused;
  }
  ++stats_.frames;
  return Result::Sent;
}

RtpToFrames::RtpToFrames(const RecvConfig& cfg) : cfg_(cfg) {
  std::string name = canonical_codec_name(cfg.codec.name);
  media::DepacketizerConfig dc;
  dc.codec = codec_id(name);
  dc.clock_rate = cfg.codec.clock_rate;
  dc.payload_type = cfg.codec.pt;
  dc.track = cfg.track;
  dc.max_frame = cfg.max_frame;
  dc.fmtp = cfg_.codec.fmtp;  // cfg_ owns the text the depacketizer may keep a view of
  switch (dc.codec) {
    case JN_CODEC_H264: dp_ = make<media::H264Depacketizer>(dc); break;
    case JN_CODEC_VP8: dp_ = make<media::Vp8Depacketizer>(dc); break;
    case JN_CODEC_OPUS:
    case JN_CODEC_PCMA:
    case JN_CODEC_PCMU: dp_ = make<media::AudioDepacketizer>(dc); break;
    default: error_ = "no depacketizer for " + name; return;
  }
  if (!dp_ || !dp_->ok()) {
    error_ = std::string("depacketizer: ") + (dp_ ? media::to_string(dp_->error()) : "out of memory");
    return;
  }
  ok_ = true;
}

media::RtpError RtpToFrames::push(const uint8_t* pkt, size_t len, media::FrameSink sink) {
  if (!ok_) return media::RtpError::BadConfig;
  if (len >= proto::rtp::kFixedHeader) ssrc_ = proto::rtp::rd32(pkt + 8);
  sink_ = sink;
  auto on_frame = [this](const media::FrameView& f) {
    ++stats_.frames;
    if (cfg_.kind == JN_MEDIA_VIDEO) {
      if (f.meta.frame_flags & JN_MF_KEY) {
        ++stats_.keyframes;
        want_key_ = false;
      } else if ((f.meta.frame_flags & JN_MF_DISCONT) || stats_.keyframes == 0) {
        // A frame was lost before this one, or the stream did not start with a keyframe: the
        // picture is broken until the next keyframe.
        want_key_ = true;
      }
    }
    sink_(f);
  };
  uint64_t dropped_before = dp_->stats().frames_dropped;
  media::RtpError e = dp_->push(pkt, len, media::frame_sink(on_frame));
  sink_ = {};
  if (e == media::RtpError::PayloadType) {
    ++stats_.wrong_pt;
    return e;
  }
  ++stats_.packets;
  if (e != media::RtpError::None && e != media::RtpError::Duplicate && e != media::RtpError::Empty) ++stats_.bad;
  if (cfg_.kind == JN_MEDIA_VIDEO && dp_->stats().frames_dropped != dropped_before) want_key_ = true;
  return e;
}

}  // namespace junction::webrtc
