// AAC <-> RTP, RFC 3640 mpeg4-generic (AAC-hbr / AAC-lbr): AU headers, fragmented AUs, config.
#include <junction/media/aac_rtp.hpp>
#include <junction/util/encoding.hpp>

#include <cctype>
#include <cstring>
#include <string>

namespace junction::media {

namespace {
struct BitReader {
  const uint8_t* p;
  size_t bits;
  size_t pos = 0;
  uint32_t read(uint32_t n) {
    uint32_t v = 0;
    for (uint32_t i = 0; i < n; ++i, ++pos) v = (v << 1) | ((p[pos >> 3] >> (7 - (pos & 7))) & 1u);
    return v;
  }
};
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}
constexpr size_t kMaxAus = 64;  // AU headers per packet
}  // namespace

AacDepacketizer::AacDepacketizer(const DepacketizerConfig& cfg) : RtpDepacketizer(cfg, JN_MEDIA_AUDIO, 0) {
  cfg_.codec = JN_CODEC_AAC;
  if (!ok()) return;  // the sample rate is required
  std::string_view mode = fmtp_value(cfg.fmtp, "mode");
  uint32_t def_size = 13, def_index = 3;
  if (iequals(mode, "AAC-lbr")) {
    def_size = 6;
    def_index = 2;
  } else if (!mode.empty() && !iequals(mode, "AAC-hbr")) {
    { fail_init(RtpError::Unsupported); return; }  // CELP, generic and the other modes
  }
  std::string_view fmtp = cfg.fmtp;
  if (!fmtp_uint(fmtp, "sizeLength", def_size, size_len_) || !fmtp_uint(fmtp, "indexLength", def_index, index_len_) ||
      !fmtp_uint(fmtp, "indexDeltaLength", def_index, delta_len_) ||
      !fmtp_uint(fmtp, "constantDuration", 1024, duration_))
    { fail_init(RtpError::BadConfig); return; }
  if (size_len_ == 0 || size_len_ > 16 || index_len_ > 8 || delta_len_ > 8 || duration_ == 0)
    { fail_init(RtpError::BadConfig); return; }
  for (const char* key : {"CTSDeltaLength", "DTSDeltaLength", "randomAccessIndication", "streamStateIndication",
                          "auxiliaryDataSizeLength"}) {
    uint32_t v = 0;
    if (!fmtp_uint(fmtp, key, 0, v)) { fail_init(RtpError::BadConfig); return; }
    if (v) { fail_init(RtpError::Unsupported); return; }
  }
  std::string conf;
  std::string_view hex = fmtp_value(fmtp, "config");
  if (!hex.empty() && (!util::hex_decode(hex, conf) || conf.size() > kMaxConfig)) { fail_init(RtpError::BadConfig); return; }
  std::memcpy(config_, conf.data(), conf.size());
  config_len_ = conf.size();
  frag_cap_ = cfg.max_frame ? cfg.max_frame : kDefaultMaxFrame;
  frag_ = alloc_bytes(frag_cap_);
  if (!frag_) fail_init(RtpError::NoMemory);
}

void AacDepacketizer::emit_au(FrameSink sink, const uint8_t* d, size_t n, int64_t pts) {
  if (!config_sent_ && config_len_) {
    emit(sink, config_, config_len_, pts, JN_MF_CONFIG);
  }
  config_sent_ = true;
  emit(sink, d, n, pts, 0);
}

void AacDepacketizer::on_reset() {
  if (frag_total_) drop_frame();
  frag_total_ = 0;
  config_sent_ = false;
}

RtpError AacDepacketizer::on_payload(const proto::rtp::Header& h, int64_t pts, const uint8_t* p, size_t n, bool gap,
                                     FrameSink sink) {
  bool dropped = false;
  if (frag_total_ && h.timestamp != frag_ts_) {
    // The fragmented AU's last fragment never came.
    drop_frame();
    frag_total_ = 0;
    dropped = true;
  } else if (frag_total_ && gap) {
    frag_damaged_ = true;  // a middle fragment is missing: dropped (and counted) at its end
    dropped = true;
  }
  // Each lost packet held at least one whole AU: skip that many frame numbers, flag DISCONT.
  if (lost_before_ && !dropped) skip_frames(lost_before_);
  if (n < 2) return RtpError::BadPayload;
  size_t hdr_bits = proto::rtp::rd16(p);
  size_t hdr_bytes = (hdr_bits + 7) / 8;
  if (hdr_bits == 0 || hdr_bytes > n - 2) return RtpError::BadPayload;
  BitReader br{p + 2, hdr_bits};
  uint32_t sizes[kMaxAus];
  size_t count = 0, sum = 0;
  while (br.pos < hdr_bits) {
    uint32_t idx_len = count == 0 ? index_len_ : delta_len_;
    if (hdr_bits - br.pos < size_len_ + idx_len) return RtpError::BadPayload;
    if (count == kMaxAus) return RtpError::Unsupported;
    uint32_t size = br.read(size_len_);
    uint32_t idx = br.read(idx_len);
    if (count > 0 && idx != 0) return RtpError::Unsupported;  // interleaving
    if (size == 0) return RtpError::BadPayload;
    sizes[count++] = size;
    sum += size;
  }
  const uint8_t* data = p + 2 + hdr_bytes;
  size_t data_len = n - 2 - hdr_bytes;
  if (count == 1 && (sizes[0] > data_len || frag_total_)) {
    // RFC 3640 3.2.3: one AU over several packets, each with the whole AU's size.
    if (!frag_total_) {
      if (sizes[0] > frag_cap_) {
        drop_frame();
        return RtpError::TooLarge;
      }
      frag_total_ = sizes[0];
      frag_len_ = 0;
      frag_ts_ = h.timestamp;
      // After a loss the first fragment may be missing: the AU cannot be trusted.
      frag_damaged_ = gap;
      frag_pts_ = pts;
    }
    RtpError err = RtpError::None;
    if (sizes[0] != frag_total_ || data_len > frag_total_ - frag_len_) {
      frag_damaged_ = true;
      err = RtpError::BadPayload;
    } else {
      std::memcpy(frag_.get() + frag_len_, data, data_len);
      frag_len_ += data_len;
    }
    // A damaged AU stays open until its end, so its remaining fragments are not taken for a
    // new one (and it is counted once).
    if (h.marker || frag_len_ == frag_total_) {
      if (frag_damaged_ || frag_len_ != frag_total_)
        drop_frame();
      else
        emit_au(sink, frag_.get(), frag_len_, frag_pts_);
      frag_total_ = 0;
    }
    return err;
  }
  if (sum != data_len) return RtpError::BadPayload;
  for (size_t i = 0; i < count; ++i) {
    emit_au(sink, data, sizes[i], pts + static_cast<int64_t>(i) * duration_);
    data += sizes[i];
  }
  return RtpError::None;
}

AacPacketizer::AacPacketizer(const PacketizerConfig& cfg) : RtpPacketizer(cfg, 0) {}

std::string AacPacketizer::config_hex() const {
  return util::hex_encode(std::string_view(reinterpret_cast<const char*>(config_), config_len_));
}

RtpError AacPacketizer::on_frame(const FrameView& f, uint32_t ts, PacketSink sink) {
  if (f.meta.frame_flags & JN_MF_CONFIG) {
    if (f.size > sizeof config_) return RtpError::TooLarge;
    if (f.size) std::memcpy(config_, f.data, f.size);
    config_len_ = f.size;
    return RtpError::None;
  }
  if (f.size == 0) return RtpError::BadFrame;
  if (f.size >= (1u << 13)) return RtpError::TooLarge;  // sizeLength 13
  // AU-headers-length 16 bits, one AU header: size (13) + index (3) = 0.
  const size_t hdr = 4;
  const size_t chunk = room() - hdr;
  for (size_t off = 0; off < f.size;) {
    size_t take = f.size - off < chunk ? f.size - off : chunk;
    uint8_t* w = payload();
    proto::rtp::wr16(w, 16);
    proto::rtp::wr16(w + 2, static_cast<uint16_t>(f.size << 3));
    std::memcpy(w + hdr, f.data + off, take);
    off += take;
    send(sink, hdr + take, ts, off == f.size);  // M: the last fragment / a whole AU
  }
  return RtpError::None;
}

}  // namespace junction::media
