// RTP -> frames, the shared part: header checks, sequence gaps, timestamp unwrap, frame numbering.
#include <junction/media/rtp_depacketizer.hpp>
#include <junction/proto/sdp.hpp>

#include <cctype>
#include <new>

namespace junction::media {

const char* to_string(RtpError e) {
  switch (e) {
    case RtpError::None: return "ok";
    case RtpError::BadHeader: return "not a valid RTP packet";
    case RtpError::PayloadType: return "unexpected payload type";
    case RtpError::Duplicate: return "duplicate or late packet";
    case RtpError::Empty: return "empty payload";
    case RtpError::BadPayload: return "malformed payload";
    case RtpError::Unsupported: return "unsupported payload structure";
    case RtpError::TooLarge: return "frame larger than the maximum";
    case RtpError::BadConfig: return "invalid fmtp / configuration";
    case RtpError::BadFrame: return "empty frame or no NAL unit";
    case RtpError::NalTooLarge: return "NAL unit larger than the MTU in packetization-mode 0";
    case RtpError::NoMemory: return "out of memory";
    case RtpError::SeqJump: return "sequence number jump (held until the next packet confirms it)";
  }
  return "?";
}

std::unique_ptr<uint8_t[]> alloc_bytes(size_t n) { return std::unique_ptr<uint8_t[]>(new (std::nothrow) uint8_t[n]); }

static std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string_view fmtp_value(std::string_view fmtp, std::string_view key) {
  while (!fmtp.empty()) {
    size_t semi = fmtp.find(';');
    std::string_view item = trim(fmtp.substr(0, semi));
    fmtp = semi == std::string_view::npos ? std::string_view{} : fmtp.substr(semi + 1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view k = trim(item.substr(0, eq));
    if (k.size() != key.size()) continue;
    bool same = true;
    for (size_t i = 0; i < k.size() && same; ++i)
      same = std::tolower(static_cast<unsigned char>(k[i])) == std::tolower(static_cast<unsigned char>(key[i]));
    if (same) return trim(item.substr(eq + 1));
  }
  return {};
}

bool fmtp_uint(std::string_view fmtp, std::string_view key, uint32_t def, uint32_t& out) {
  std::string_view v = fmtp_value(fmtp, key);
  if (v.empty()) {
    out = def;
    return true;
  }
  return proto::sdp::detail::parse_u32(v, out, UINT32_MAX);
}

RtpDepacketizer::RtpDepacketizer(const DepacketizerConfig& cfg, uint8_t kind, uint32_t default_clock)
    : cfg_(cfg), kind_(kind) {
  if (cfg_.clock_rate == 0) cfg_.clock_rate = default_clock;
  if (cfg_.clock_rate == 0) fail_init(RtpError::BadConfig);
}

RtpError RtpDepacketizer::push(const uint8_t* pkt, size_t len, FrameSink sink) {
  if (!ok()) return init_error_;
  proto::rtp::Header h;
  if (!pkt || proto::rtp::parse(pkt, len, h) != proto::rtp::Error::None) {
    ++stats_.bad_packets;
    return RtpError::BadHeader;
  }
  if (cfg_.payload_type >= 0 && h.payload_type != cfg_.payload_type) return RtpError::PayloadType;
  bool restart = have_seq_ && h.ssrc != ssrc_;
  bool have_seq_restart = false;
  if (restart) ++stats_.ssrc_changes;
  if (have_seq_ && !restart) {
    int d = static_cast<int16_t>(static_cast<uint16_t>(h.seq - next_seq_));
    if (d < -kMaxMisorder || d > kMaxDropout) {
      if (!have_jump_ || h.seq != jump_next_) {
        have_jump_ = true;
        jump_next_ = static_cast<uint16_t>(h.seq + 1);
        ++stats_.bad_packets;
        return RtpError::SeqJump;
      }
      restart = have_seq_restart = true;  // two in a row: the sender restarted its sequence
      ++stats_.seq_restarts;
    }
  }
  have_jump_ = false;
  if (restart) {
    // A new source: whatever was open belongs to the old one.
    on_reset();
    have_seq_ = false;
    discont_ = true;
    // A confirmed jump: the packet before this one was refused, its unit is not whole.
    gap_carry_ = have_seq_restart;
    lost_carry_ = have_seq_restart ? 1 : 0;
  }
  bool gap = gap_carry_;
  if (!have_seq_) {
    have_seq_ = true;
    ssrc_ = h.ssrc;
    last_ts_ = h.timestamp;
    ext_ts_ = h.timestamp;
  } else {
    int16_t d = static_cast<int16_t>(static_cast<uint16_t>(h.seq - next_seq_));
    if (d < 0) {
      ++stats_.duplicates;
      return RtpError::Duplicate;
    }
    if (d > 0) {
      stats_.lost_packets += static_cast<uint64_t>(d);
      lost_carry_ += static_cast<uint32_t>(d);
      gap = true;
    }
    ext_ts_ += static_cast<int32_t>(h.timestamp - last_ts_);
    last_ts_ = h.timestamp;
  }
  next_seq_ = static_cast<uint16_t>(h.seq + 1);
  ++stats_.packets;
  const uint8_t* payload = pkt + h.header_len;
  if (h.payload_len == 0) {
    // Padding-only packets are legal keep-alives; a gap before one applies to the next packet.
    gap_carry_ = gap;
    return RtpError::Empty;
  }
  gap_carry_ = false;
  lost_before_ = lost_carry_;
  lost_carry_ = 0;
  RtpError e = on_payload(h, ext_ts_, payload, h.payload_len, gap, sink);
  if (e != RtpError::None && e != RtpError::TooLarge) ++stats_.bad_packets;
  return e;
}

void RtpDepacketizer::flush(FrameSink sink) {
  if (ok()) on_flush(sink);
}

void RtpDepacketizer::emit(FrameSink sink, const uint8_t* data, size_t size, int64_t pts, uint32_t flags) {
  FrameView f;
  f.data = data;
  f.size = size;
  f.meta.pts = pts;
  f.meta.dts = pts;  // RTP carries no decode time
  f.meta.clock_rate = cfg_.clock_rate;
  f.meta.codec = cfg_.codec;
  f.meta.frame_flags = flags | (discont_ ? static_cast<uint32_t>(JN_MF_DISCONT) : 0u);
  f.meta.seq = frame_seq_++;
  f.meta.track = cfg_.track;
  f.meta.kind = kind_;
  discont_ = false;
  ++stats_.frames;
  sink(f);
}

void RtpDepacketizer::skip_frames(uint32_t n) {
  frame_seq_ += n;
  discont_ = true;
}

void RtpDepacketizer::drop_frame() {
  ++stats_.frames_dropped;
  ++frame_seq_;
  discont_ = true;
}

}  // namespace junction::media
