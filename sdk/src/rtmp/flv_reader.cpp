// FLV reader (junction/rtmp/flv_reader.hpp).
#include <junction/rtmp/flv_reader.hpp>

#include <algorithm>

namespace junction::rtmp::flv {

namespace {

uint32_t u16(const uint8_t* p) { return uint32_t{p[0]} << 8 | p[1]; }
uint32_t u24(const uint8_t* p) { return uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | p[2]; }
uint32_t u32(const uint8_t* p) { return u24(p) << 8 | p[3]; }

constexpr uint8_t kStartCode[4] = {0, 0, 0, 1};
constexpr size_t kTagHeader = 11;

// ISO/IEC 14496-3 samplingFrequencyIndex.
constexpr uint32_t kAacRates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                    22050, 16000, 12000, 11025, 8000,  7350};

}  // namespace

const char* to_string(ReadError e) {
  switch (e) {
    case ReadError::kNone: return "none";
    case ReadError::kBadHeader: return "bad FLV header";
    case ReadError::kTagTooLarge: return "tag too large";
    case ReadError::kBadPrevTagSize: return "PreviousTagSize mismatch";
    case ReadError::kBadTag: return "bad tag";
    case ReadError::kBadAvcConfig: return "bad AVC decoder configuration";
    case ReadError::kBadNalu: return "bad AVC NALU";
    case ReadError::kUnsupportedCodec: return "unsupported codec";
  }
  return "?";
}

bool Reader::fail(ReadError e, const char* detail, media::FrameSink& sink) {
  if (failed()) return false;
  error_ = e;
  detail_ = detail;
  buf_.clear();
  sink.fail(static_cast<int>(e), detail);
  return false;
}

bool Reader::feed(const uint8_t* p, size_t n, media::FrameSink sink) {
  // The size of the unit starting at q (the file header, or a whole tag with its
  // PreviousTagSize), or the bytes needed to know it; 0 after a failure.
  auto unit_size = [&](const uint8_t* q, size_t m) -> size_t {
    if (state_ == State::kHeader) return 9;
    if (m < kTagHeader) return kTagHeader;
    size_t body = u24(q + 1);
    if (body > cfg_.max_tag_bytes) {
      fail(ReadError::kTagTooLarge, "tag body larger than max_tag_bytes", sink);
      return 0;
    }
    return kTagHeader + body + 4;
  };
  // Handles one whole unit.
  auto consume = [&](const uint8_t* q, size_t m) -> bool {
    if (state_ == State::kHeader) {
      if (q[0] != 'F' || q[1] != 'L' || q[2] != 'V' || q[3] != 1)
        return fail(ReadError::kBadHeader, "not an FLV version 1 stream", sink);
      uint32_t offset = u32(q + 5);
      if (offset < 9 || offset > 9 + 4096) return fail(ReadError::kBadHeader, "DataOffset out of range", sink);
      skip_ = offset - 9 + 4;  // the rest of the header, then PreviousTagSize0
      state_ = State::kSkipHeader;
      return true;
    }
    size_t body = m - kTagHeader - 4;
    if (cfg_.check_prev_tag_size && u32(q + kTagHeader + body) != kTagHeader + body)
      return fail(ReadError::kBadPrevTagSize, "PreviousTagSize does not match the tag", sink);
    ++tags_;
    uint32_t ts = u24(q + 4) | uint32_t{q[7]} << 24;
    return on_tag(q[0], ts, q + kTagHeader, body, sink);
  };

  if (failed()) return false;
  for (;;) {
    if (failed()) return false;
    if (state_ == State::kSkipHeader) {
      size_t k = std::min(skip_, n);
      skip_ -= k, p += k, n -= k;
      if (skip_ == 0) state_ = State::kTags;
      if (n == 0) return true;
      continue;
    }
    if (buf_.empty()) {
      if (n == 0) return true;
      size_t want = unit_size(p, n);
      if (want == 0) return false;
      if (want <= n) {
        if (!consume(p, want)) return false;
        p += want, n -= want;
        continue;
      }
      buf_.insert(buf_.end(), p, p + n);  // n < want: bounded by the tag size check
      return true;
    }
    size_t want = unit_size(buf_.data(), buf_.size());
    if (want == 0) return false;
    if (buf_.size() >= want) {
      bool ok = consume(buf_.data(), want);
      buf_.clear();  // keeps its capacity: reused for the next split tag
      if (!ok) return false;
      continue;
    }
    if (n == 0) return true;
    size_t k = std::min(want - buf_.size(), n);
    buf_.insert(buf_.end(), p, p + k);
    p += k, n -= k;
  }
}

bool Reader::on_tag(uint8_t type, uint32_t ts, const uint8_t* body, size_t len, media::FrameSink& sink) {
  if (type & 0x20) return fail(ReadError::kBadTag, "encrypted tag (Filter bit set)", sink);
  switch (type & 0x1f) {
    case kVideo: return on_video(ts, body, len, sink);
    case kAudio: return on_audio(ts, body, len, sink);
    case kScript: return true;  // onMetaData: the codecs are read from the tags themselves
    default: return fail(ReadError::kBadTag, "unknown tag type", sink);
  }
}

bool Reader::on_video(uint32_t ts, const uint8_t* body, size_t len, media::FrameSink& sink) {
  if (len < 1) return fail(ReadError::kBadTag, "empty video tag", sink);
  if ((body[0] & 0x0f) != kAvc) {
    if (!warned_video_) sink.fail(static_cast<int>(ReadError::kUnsupportedCodec), "video codec is not H.264: video skipped");
    warned_video_ = true;
    return true;
  }
  if ((body[0] >> 4) == 5) return true;  // video info / command frame: no picture
  if (len < 5) return fail(ReadError::kBadTag, "AVC video tag shorter than 5 bytes", sink);
  uint8_t packet = body[1];
  auto cts = static_cast<int32_t>(u24(body + 2) << 8) >> 8;  // signed 24-bit
  const uint8_t* p = body + 5;
  size_t n = len - 5;
  if (packet == 2) return true;  // end of sequence
  if (packet == 0) {
    // AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.2.4.1): the first SPS and PPS.
    if (n < 7 || p[0] != 1) return fail(ReadError::kBadAvcConfig, "AVC decoder config too short or not version 1", sink);
    uint8_t ls = static_cast<uint8_t>((p[4] & 3) + 1);
    if (ls == 3) return fail(ReadError::kBadAvcConfig, "NAL length size 3", sink);
    size_t pos = 6;
    const uint8_t* sps = nullptr;
    size_t sps_len = 0;
    for (unsigned i = 0, count = p[5] & 0x1f; i < count; ++i) {
      if (pos + 2 > n || pos + 2 + u16(p + pos) > n) return fail(ReadError::kBadAvcConfig, "SPS past the end of the record", sink);
      size_t l = u16(p + pos);
      if (!sps && l > 0) sps = p + pos + 2, sps_len = l;
      pos += 2 + l;
    }
    if (pos >= n) return fail(ReadError::kBadAvcConfig, "no PPS count in the record", sink);
    const uint8_t* pps = nullptr;
    size_t pps_len = 0;
    for (unsigned i = 0, count = p[pos++]; i < count; ++i) {
      if (pos + 2 > n || pos + 2 + u16(p + pos) > n) return fail(ReadError::kBadAvcConfig, "PPS past the end of the record", sink);
      size_t l = u16(p + pos);
      if (!pps && l > 0) pps = p + pos + 2, pps_len = l;
      pos += 2 + l;
    }
    if (!sps || !pps) return fail(ReadError::kBadAvcConfig, "record without an SPS or a PPS", sink);
    if ((sps[0] & 0x1f) != 7 || (pps[0] & 0x1f) != 8)
      return fail(ReadError::kBadAvcConfig, "parameter set of the wrong NAL type", sink);
    sps_.assign(sps, sps + sps_len);  // once per sequence header, not per frame
    pps_.assign(pps, pps + pps_len);
    nal_len_size_ = ls;
    return true;
  }
  if (packet != 1) return fail(ReadError::kBadTag, "unknown AVCPacketType", sink);
  if (!has_video_config()) {
    if (!warned_video_) sink.fail(static_cast<int>(ReadError::kBadNalu), "AVC NALU before the sequence header: dropped");
    warned_video_ = true;
    return true;
  }
  // One pass to check the lengths and find an IDR, one to write the Annex-B frame.
  bool key = false;
  size_t nals = 0;
  for (size_t pos = 0; pos < n;) {
    if (n - pos < nal_len_size_) return fail(ReadError::kBadNalu, "NAL length field past the end of the tag", sink);
    size_t l = 0;
    for (unsigned i = 0; i < nal_len_size_; ++i) l = l << 8 | p[pos + i];
    pos += nal_len_size_;
    if (l > n - pos) return fail(ReadError::kBadNalu, "NAL unit past the end of the tag", sink);
    if (l > 0) {
      ++nals;
      if ((p[pos] & 0x1f) == 5) key = true;
    }
    pos += l;
  }
  if (nals == 0) return true;
  out_.clear();
  if (key) {
    out_.insert(out_.end(), kStartCode, kStartCode + 4);
    out_.insert(out_.end(), sps_.begin(), sps_.end());
    out_.insert(out_.end(), kStartCode, kStartCode + 4);
    out_.insert(out_.end(), pps_.begin(), pps_.end());
  }
  for (size_t pos = 0; pos < n;) {
    size_t l = 0;
    for (unsigned i = 0; i < nal_len_size_; ++i) l = l << 8 | p[pos + i];
    pos += nal_len_size_;
    if (l > 0) {
      out_.insert(out_.end(), kStartCode, kStartCode + 4);
      out_.insert(out_.end(), p + pos, p + pos + l);
    }
    pos += l;
  }
  media::FrameView f;
  f.data = out_.data();
  f.size = out_.size();
  f.meta.dts = int64_t{ts} * 90;
  f.meta.pts = (int64_t{ts} + cts) * 90;
  f.meta.clock_rate = 90000;
  f.meta.codec = JN_CODEC_H264;
  f.meta.frame_flags = key ? (JN_MF_KEY | JN_MF_CONFIG) : 0;
  f.meta.seq = video_seq_++;
  f.meta.track = 0;
  f.meta.kind = JN_MEDIA_VIDEO;
  sink(f);
  return true;
}

bool Reader::on_audio(uint32_t ts, const uint8_t* body, size_t len, media::FrameSink& sink) {
  if (len < 1) return fail(ReadError::kBadTag, "empty audio tag", sink);
  uint8_t format = body[0] >> 4;
  media::FrameView f;
  f.meta.track = 1;
  f.meta.kind = JN_MEDIA_AUDIO;
  if (format == kPcmAlaw || format == kPcmUlaw) {
    if (len == 1) return true;
    audio_codec_ = format == kPcmAlaw ? JN_CODEC_PCMA : JN_CODEC_PCMU;
    f.data = body + 1;
    f.size = len - 1;
    f.meta.clock_rate = 8000;
    f.meta.pts = f.meta.dts = int64_t{ts} * 8;
  } else if (format == kAac) {
    if (len < 2) return fail(ReadError::kBadTag, "AAC tag without AACPacketType", sink);
    audio_codec_ = JN_CODEC_AAC;
    const uint8_t* p = body + 2;
    size_t n = len - 2;
    if (body[1] == 0) {
      if (n < 2) return fail(ReadError::kBadTag, "AudioSpecificConfig shorter than 2 bytes", sink);
      unsigned idx = (p[0] & 7u) << 1 | p[1] >> 7;
      if (idx < 13) {
        aac_rate_ = kAacRates[idx];
      } else if (idx == 15 && n >= 5) {
        aac_rate_ = (uint32_t{p[1]} & 0x7f) << 17 | uint32_t{p[2]} << 9 | uint32_t{p[3]} << 1 | p[4] >> 7;
      } else {
        return fail(ReadError::kBadTag, "AudioSpecificConfig with a bad sampling frequency", sink);
      }
      if (aac_rate_ == 0) return fail(ReadError::kBadTag, "AudioSpecificConfig with a zero sampling rate", sink);
      f.meta.frame_flags = JN_MF_CONFIG;
    } else if (body[1] == 1) {
      if (aac_rate_ == 0 || n == 0) return true;  // no config yet: a consumer could not decode it
    } else {
      return fail(ReadError::kBadTag, "unknown AACPacketType", sink);
    }
    f.data = p;
    f.size = n;
    f.meta.clock_rate = aac_rate_;
    f.meta.pts = f.meta.dts = int64_t{ts} * aac_rate_ / 1000;
  } else {
    if (!warned_audio_) sink.fail(static_cast<int>(ReadError::kUnsupportedCodec), "audio codec is not G.711 or AAC: audio skipped");
    warned_audio_ = true;
    return true;
  }
  f.meta.codec = audio_codec_;
  f.meta.seq = audio_seq_++;
  sink(f);
  return true;
}

}  // namespace junction::rtmp::flv
