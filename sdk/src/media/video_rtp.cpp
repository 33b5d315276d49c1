// H.264 / H.265 access units <-> RTP (RFC 6184, RFC 7798): the shared assembly and split.
#include <junction/media/annexb.hpp>
#include <junction/media/video_rtp.hpp>
#include <junction/util/encoding.hpp>

#include <cstring>
#include <string>

namespace junction::media {

namespace {
constexpr uint8_t kStartCode[4] = {0, 0, 0, 1};
// NAL unit types RTP can carry: the others are the payload formats' own structures (STAP, FU,
// AP, PACI) or unspecified, and a single NAL unit packet of such a type would be misread.
bool carriable(uint8_t type, bool hevc) { return hevc ? type < annexb::h265::kAp : type >= 1 && type <= 23; }
// A NAL unit that holds a start code (emulation prevention makes it impossible in a conforming
// stream) would re-parse as other NAL units in the Annex-B frame: a consumer would see units,
// parameter sets or keyframes this depacketizer did not.
bool reparses_same(const uint8_t* nal, size_t n) {
  size_t code_len = 0;
  return annexb::find_start_code(nal, n, 0, &code_len) == n;
}
// Zero bytes at the end are the byte stream's trailing_zero_8bits, not the NAL unit's (H.264 /
// H.265 Annex B): senders that split a byte stream on 3-byte start codes (ffmpeg) send them.
size_t trim_zeros(const uint8_t* nal, size_t n) {
  while (n > 0 && nal[n - 1] == 0) --n;
  return n;
}
}

VideoDepacketizer::VideoDepacketizer(const DepacketizerConfig& cfg, bool hevc)
    : RtpDepacketizer(cfg, JN_MEDIA_VIDEO, 90000), hevc_(hevc), hdr_len_(hevc ? 2 : 1), ps_count_(hevc ? 3 : 2) {
  if (hevc) {
    ps_[0].type = annexb::h265::kVps;
    ps_[1].type = annexb::h265::kSps;
    ps_[2].type = annexb::h265::kPps;
  } else {
    ps_[0].type = annexb::h264::kSps;
    ps_[1].type = annexb::h264::kPps;
  }
  // Injected parameter sets (and an AUD moved in front of them) are written into the headroom,
  // so a keyframe gets them without moving the unit.
  headroom_ = 3 * (kMaxParamSet + 4);
  cap_ = cfg.max_frame ? cfg.max_frame : kDefaultMaxFrame;
  buf_ = alloc_bytes(headroom_ + cap_);
  if (!buf_) fail_init(RtpError::NoMemory);
}

uint8_t VideoDepacketizer::nal_type(const uint8_t* nal) const {
  return hevc_ ? annexb::h265::type(nal[0]) : annexb::h264::type(nal[0]);
}

void VideoDepacketizer::store_param_set(const uint8_t* nal, size_t n) {
  if (n < hdr_len_ || n > kMaxParamSet) return;
  uint8_t t = nal_type(nal);
  for (size_t i = 0; i < ps_count_; ++i) {
    if (ps_[i].type == t) {
      std::memcpy(ps_[i].data, nal, n);
      ps_[i].len = n;
    }
  }
}

bool VideoDepacketizer::store_sprop(std::string_view list) {
  std::string bytes;  // setup time: the fmtp is read once
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (item.empty()) continue;
    if (!util::base64_decode(item, bytes) || bytes.empty()) return false;
    store_param_set(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  return true;
}

std::string_view VideoDepacketizer::param_set(uint8_t t) const {
  for (size_t i = 0; i < ps_count_; ++i)
    if (ps_[i].type == t) return {reinterpret_cast<const char*>(ps_[i].data), ps_[i].len};
  return {};
}

// Bookkeeping for a NAL unit now whole in the unit: keyframe, parameter sets, leading AUD.
void VideoDepacketizer::note_nal(const uint8_t* nal, size_t n) {
  uint8_t t = nal_type(nal);
  bool first = nal == buf_.get() + headroom_ + 4;
  if (hevc_) {
    if (annexb::h265::is_irap(t)) key_ = true;
    if (annexb::h265::is_parameter_set(t)) {
      has_ps_ = true;
      store_param_set(nal, n);
    }
    if (t == annexb::h265::kAud && first) aud_len_ = 4 + n;
  } else {
    if (t == annexb::h264::kIdr) key_ = true;
    if (annexb::h264::is_parameter_set(t)) {
      has_ps_ = true;
      store_param_set(nal, n);
    }
    if (t == annexb::h264::kAud && first) aud_len_ = 4 + n;
  }
}

RtpError VideoDepacketizer::append_nal(const uint8_t* nal, size_t n) {
  n = trim_zeros(nal, n);
  // Too short for a header, forbidden_zero_bit set, or a type RTP cannot carry.
  if (n < hdr_len_ || (nal[0] & 0x80) || !carriable(nal_type(nal), hevc_) || !reparses_same(nal, n)) {
    damaged_ = true;
    return RtpError::BadPayload;
  }
  if (n + 4 > cap_ - len_) {
    damaged_ = true;
    return RtpError::TooLarge;
  }
  uint8_t* w = buf_.get() + headroom_ + len_;
  std::memcpy(w, kStartCode, 4);
  std::memcpy(w + 4, nal, n);
  len_ += 4 + n;
  note_nal(w + 4, n);
  return RtpError::None;
}

RtpError VideoDepacketizer::on_payload(const proto::rtp::Header& h, int64_t pts, const uint8_t* p, size_t n,
                                       bool gap, FrameSink sink) {
  // Lost packets may have been the tail of the open unit (marker lost) or the head of this one.
  if (gap && open_) damaged_ = true;
  if (open_ && h.timestamp != ts_) finish_au(sink);  // the sender left the marker out
  if (!open_) {
    open_ = true;
    len_ = 0;
    damaged_ = gap;
    key_ = has_ps_ = fu_open_ = false;
    aud_len_ = 0;
    ts_ = h.timestamp;
    pts_ = pts;
  }
  RtpError err = RtpError::None;
  const size_t agg_hdr = hdr_len_;
  uint8_t t = nal_type(p);
  if (n < hdr_len_ || (p[0] & 0x80)) {
    err = RtpError::BadPayload;
  } else if ((!hevc_ && t >= 1 && t <= 23) || (hevc_ && t < annexb::h265::kAp)) {
    if (fu_open_) {  // the fragmented unit never ended
      fu_open_ = false;
      damaged_ = true;
    }
    err = append_nal(p, n);
  } else if ((!hevc_ && t == annexb::h264::kStapA) || (hevc_ && t == annexb::h265::kAp)) {
    if (fu_open_) {
      fu_open_ = false;
      damaged_ = true;
    }
    size_t off = agg_hdr;
    if (off >= n) err = RtpError::BadPayload;
    while (err == RtpError::None && off < n) {
      if (n - off < 2) {
        err = RtpError::BadPayload;
        break;
      }
      size_t sz = proto::rtp::rd16(p + off);
      off += 2;
      if (sz == 0 || sz > n - off) {
        err = RtpError::BadPayload;
        break;
      }
      err = append_nal(p + off, sz);
      off += sz;
    }
  } else if ((!hevc_ && t == annexb::h264::kFuA) || (hevc_ && t == annexb::h265::kFu)) {
    size_t fu_hdr_at = hdr_len_;      // FU header after the payload header
    size_t data_at = hdr_len_ + 1;    // fragment bytes
    if (n <= data_at) {
      err = RtpError::BadPayload;
    } else {
      uint8_t fu = p[fu_hdr_at];
      bool start = fu & 0x80, end = fu & 0x40;
      if ((start && end) || !carriable(hevc_ ? (fu & 0x3f) : (fu & 0x1f), hevc_)) {
        err = RtpError::BadPayload;  // RFC 6184 5.8 / RFC 7798 4.4.3: never both
      } else if (start) {
        if (fu_open_) damaged_ = true;
        uint8_t hdr[2];
        if (hevc_) {
          hdr[0] = static_cast<uint8_t>((p[0] & 0x81) | ((fu & 0x3f) << 1));
          hdr[1] = p[1];
        } else {
          hdr[0] = static_cast<uint8_t>((p[0] & 0xe0) | (fu & 0x1f));
        }
        size_t need = 4 + hdr_len_ + (n - data_at);
        if (need > cap_ - len_) {
          damaged_ = true;
          fu_open_ = false;
          err = RtpError::TooLarge;
        } else {
          uint8_t* w = buf_.get() + headroom_ + len_;
          std::memcpy(w, kStartCode, 4);
          std::memcpy(w + 4, hdr, hdr_len_);
          std::memcpy(w + 4 + hdr_len_, p + data_at, n - data_at);
          fu_start_ = len_ + 4;
          len_ += need;
          fu_open_ = true;
        }
      } else if (!fu_open_) {
        // A fragment whose start is missing: expected after a loss, malformed otherwise.
        if (!damaged_) err = RtpError::BadPayload;
        damaged_ = true;
      } else if (n - data_at > cap_ - len_) {
        damaged_ = true;
        fu_open_ = false;
        err = RtpError::TooLarge;
      } else {
        std::memcpy(buf_.get() + headroom_ + len_, p + data_at, n - data_at);
        len_ += n - data_at;
      }
      if (err == RtpError::None && end && fu_open_) {
        fu_open_ = false;
        const uint8_t* nal = buf_.get() + headroom_ + fu_start_;
        len_ = fu_start_ + trim_zeros(nal, len_ - fu_start_);
        if (len_ - fu_start_ > hdr_len_ && reparses_same(nal, len_ - fu_start_))
          note_nal(nal, len_ - fu_start_);
        else
          err = RtpError::BadPayload;
      }
    }
  } else {
    // H.264 STAP-B, MTAP16/24, FU-B (interleaved mode); H.265 PACI; reserved types.
    bool interleaved = hevc_ ? t == 50 : (t >= 25 && t <= 27) || t == 29;
    err = interleaved ? RtpError::Unsupported : RtpError::BadPayload;
  }
  if (err != RtpError::None) damaged_ = true;
  if (h.marker) finish_au(sink);
  return err;
}

void VideoDepacketizer::finish_au(FrameSink sink) {
  open_ = false;
  if (fu_open_) damaged_ = true;
  fu_open_ = false;
  if (damaged_) {
    drop_frame();
    return;
  }
  if (len_ == 0) return;
  uint8_t* au = buf_.get() + headroom_;
  uint8_t* out = au;
  size_t total = len_;
  uint32_t flags = key_ ? static_cast<uint32_t>(JN_MF_KEY) : 0u;
  if (has_ps_) {
    flags |= JN_MF_CONFIG;
  } else if (key_) {
    size_t inj = 0;
    for (size_t i = 0; i < ps_count_; ++i)
      if (ps_[i].len) inj += 4 + ps_[i].len;
    if (inj) {
      // AUD first (it must open the unit), then the parameter sets, then the rest in place.
      out = au - inj;
      std::memmove(out, au, aud_len_);
      uint8_t* w = out + aud_len_;
      for (size_t i = 0; i < ps_count_; ++i) {
        if (!ps_[i].len) continue;
        std::memcpy(w, kStartCode, 4);
        std::memcpy(w + 4, ps_[i].data, ps_[i].len);
        w += 4 + ps_[i].len;
      }
      total += inj;
      flags |= JN_MF_CONFIG;
    }
  }
  emit(sink, out, total, pts_, flags);
}

void VideoDepacketizer::on_flush(FrameSink sink) {
  if (open_) finish_au(sink);
}

void VideoDepacketizer::on_reset() {
  if (open_ && (len_ || damaged_)) drop_frame();
  open_ = fu_open_ = false;
}

// --- send ---------------------------------------------------------------------------------

VideoPacketizer::VideoPacketizer(const PacketizerConfig& cfg, bool hevc, bool aggregate)
    : RtpPacketizer(cfg, 90000), hevc_(hevc), aggregate_(aggregate), hdr_len_(hevc ? 2 : 1) {
  nals_.reset(new (std::nothrow) Nal[kMaxNals]);
  if (!nals_) fail_init(RtpError::NoMemory);
}

RtpError VideoPacketizer::on_frame(const FrameView& f, uint32_t ts, PacketSink sink) {
  size_t count = 0;
  bool overflow = false, bad = false;
  annexb::for_each_nal(f.data, f.size, [&](const uint8_t* p, size_t n) {
    if (count == kMaxNals) {
      overflow = true;
      return false;
    }
    // No room for the NAL unit header, or a type a receiver would take for a payload structure.
    if (n < hdr_len_ || !carriable(hevc_ ? annexb::h265::type(p[0]) : annexb::h264::type(p[0]), hevc_)) bad = true;
    nals_[count++] = Nal{p, n};
    return true;
  });
  if (count == 0 || bad) return RtpError::BadFrame;
  if (overflow) return RtpError::TooLarge;
  const size_t r = room();
  if (!aggregate_) {
    for (size_t i = 0; i < count; ++i)
      if (nals_[i].n > r) return RtpError::NalTooLarge;  // checked first: nothing half sent
  }
  size_t i = 0;
  while (i < count) {
    bool last = i + 1 == count;
    if (nals_[i].n > r) {
      send_fragments(sink, nals_[i].p, nals_[i].n, ts, last);
      ++i;
      continue;
    }
    if (aggregate_) {
      size_t j = i, size = hdr_len_;
      while (j < count && nals_[j].n <= r && size + 2 + nals_[j].n <= r) size += 2 + nals_[j++].n;
      if (j - i >= 2) {
        send_aggregate(sink, i, j - i, ts, j == count);
        i = j;
        continue;
      }
    }
    std::memcpy(payload(), nals_[i].p, nals_[i].n);
    send(sink, nals_[i].n, ts, last);
    ++i;
  }
  return RtpError::None;
}

void VideoPacketizer::send_aggregate(PacketSink sink, size_t first, size_t count, uint32_t ts, bool marker) {
  uint8_t* w = payload();
  if (hevc_) {
    // RFC 7798 4.4.2: F is the OR of the units' F bits, LayerId and TID the lowest of theirs.
    uint8_t f = 0, layer = 63, tid = 7;
    for (size_t k = first; k < first + count; ++k) {
      const uint8_t* h = nals_[k].p;
      f |= h[0] & 0x80;
      uint8_t l = static_cast<uint8_t>(((h[0] & 1) << 5) | (h[1] >> 3));
      if (l < layer) layer = l;
      if ((h[1] & 7) < tid) tid = h[1] & 7;
    }
    w[0] = static_cast<uint8_t>(f | (annexb::h265::kAp << 1) | (layer >> 5));
    w[1] = static_cast<uint8_t>(((layer & 0x1f) << 3) | tid);
  } else {
    // RFC 6184 5.7.1: F is the OR of the units' F bits, NRI the highest.
    uint8_t f = 0, nri = 0;
    for (size_t k = first; k < first + count; ++k) {
      f |= nals_[k].p[0] & 0x80;
      if ((nals_[k].p[0] & 0x60) > nri) nri = nals_[k].p[0] & 0x60;
    }
    w[0] = static_cast<uint8_t>(f | nri | annexb::h264::kStapA);
  }
  size_t off = hdr_len_;
  for (size_t k = first; k < first + count; ++k) {
    proto::rtp::wr16(w + off, static_cast<uint16_t>(nals_[k].n));
    std::memcpy(w + off + 2, nals_[k].p, nals_[k].n);
    off += 2 + nals_[k].n;
  }
  send(sink, off, ts, marker);
}

void VideoPacketizer::send_fragments(PacketSink sink, const uint8_t* nal, size_t n, uint32_t ts, bool marker) {
  uint8_t* w = payload();
  size_t hdr = hdr_len_ + 1;  // payload header + FU header
  uint8_t type;
  if (hevc_) {
    type = annexb::h265::type(nal[0]);
    w[0] = static_cast<uint8_t>((nal[0] & 0x81) | (annexb::h265::kFu << 1));
    w[1] = nal[1];
  } else {
    type = annexb::h264::type(nal[0]);
    w[0] = static_cast<uint8_t>((nal[0] & 0xe0) | annexb::h264::kFuA);
  }
  const size_t chunk = room() - hdr;
  size_t off = hdr_len_;  // the NAL header is carried by the payload and FU headers
  bool first = true;
  while (off < n) {
    size_t take = n - off < chunk ? n - off : chunk;
    bool end = off + take == n;
    w[hdr_len_] = static_cast<uint8_t>((first ? 0x80 : 0) | (end ? 0x40 : 0) | type);
    std::memcpy(w + hdr, nal + off, take);
    send(sink, hdr + take, ts, end && marker);
    off += take;
    first = false;
  }
}

}  // namespace junction::media
