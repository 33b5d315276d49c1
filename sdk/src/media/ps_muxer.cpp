// MPEG-2 program stream muxer: see junction/media/ps_muxer.hpp.
#include <junction/media/ps_demuxer.hpp>
#include <junction/media/ps_muxer.hpp>

#include "ps_common.hpp"

namespace junction::media {

namespace {
constexpr size_t kMaxPesPayloadField = 65535;  // PES_packet_length: bytes after the length field
constexpr uint32_t kMuxRate = 50000;           // 2.5.3.4, units of 50 bytes/s: 20 Mb/s, an upper bound

void put16(std::vector<uint8_t>& o, uint32_t v) {
  o.push_back(static_cast<uint8_t>(v >> 8));
  o.push_back(static_cast<uint8_t>(v));
}

// PTS / DTS field (2.4.3.7): 4-bit prefix, 33 bits with marker bits.
void put_ts(std::vector<uint8_t>& o, uint8_t prefix, uint64_t ts) {
  ts &= (uint64_t{1} << 33) - 1;
  o.push_back(static_cast<uint8_t>((prefix << 4) | ((ts >> 29) & 0x0E) | 1));
  o.push_back(static_cast<uint8_t>(ts >> 22));
  o.push_back(static_cast<uint8_t>(((ts >> 14) & 0xFE) | 1));
  o.push_back(static_cast<uint8_t>(ts >> 7));
  o.push_back(static_cast<uint8_t>(((ts << 1) & 0xFE) | 1));
}

uint8_t stream_type_of(uint32_t codec) {
  switch (codec) {
    case JN_CODEC_H264: return kPsTypeH264;
    case JN_CODEC_H265: return kPsTypeH265;
    case JN_CODEC_PCMA: return kPsTypeG711A;
    case JN_CODEC_PCMU: return kPsTypeG711U;
    case JN_CODEC_AAC: return kPsTypeAac;
  }
  return 0;
}
}  // namespace

PsMuxer::PsMuxer(const PsMuxerConfig& cfg) : cfg_(cfg) { out_.reserve(4096); }

void PsMuxer::put_pack_header(int64_t scr90) {
  uint64_t scr = static_cast<uint64_t>(scr90 < 0 ? 0 : scr90) & ((uint64_t{1} << 33) - 1);
  auto& o = out_;
  o.insert(o.end(), {0x00, 0x00, 0x01, 0xBA});
  // '01' SCR[32..30] 1 SCR[29..28] | SCR[27..20] | SCR[19..15] 1 SCR[14..13] | SCR[12..5] |
  // SCR[4..0] 1 ext[8..7] | ext[6..0] 1  (SCR extension 0)
  o.push_back(static_cast<uint8_t>(0x44 | ((scr >> 27) & 0x38) | ((scr >> 28) & 0x03)));
  o.push_back(static_cast<uint8_t>(scr >> 20));
  o.push_back(static_cast<uint8_t>(((scr >> 12) & 0xF8) | 0x04 | ((scr >> 13) & 0x03)));
  o.push_back(static_cast<uint8_t>(scr >> 5));
  o.push_back(static_cast<uint8_t>(((scr << 3) & 0xF8) | 0x04));
  o.push_back(0x01);
  o.push_back(static_cast<uint8_t>(kMuxRate >> 14));
  o.push_back(static_cast<uint8_t>(kMuxRate >> 6));
  o.push_back(static_cast<uint8_t>(((kMuxRate << 2) & 0xFC) | 0x03));
  o.push_back(0xF8);  // reserved '11111', pack_stuffing_length 0
}

void PsMuxer::put_system_header() {
  auto& o = out_;
  bool v = cfg_.video_codec != JN_CODEC_NONE, a = cfg_.audio_codec != JN_CODEC_NONE;
  size_t streams = (v ? 1 : 0) + (a ? 1 : 0);
  o.insert(o.end(), {0x00, 0x00, 0x01, 0xBB});
  put16(o, static_cast<uint32_t>(6 + 3 * streams));
  // marker rate_bound(22) marker | audio_bound(6) fixed CSPS | lock lock marker video_bound(5) |
  // packet_rate_restriction reserved(7)
  o.push_back(static_cast<uint8_t>(0x80 | (kMuxRate >> 15)));
  o.push_back(static_cast<uint8_t>(kMuxRate >> 7));
  o.push_back(static_cast<uint8_t>(((kMuxRate << 1) & 0xFE) | 1));
  o.push_back(static_cast<uint8_t>((a ? 1 : 0) << 2));
  o.push_back(static_cast<uint8_t>(0xE0 | (v ? 1 : 0)));
  o.push_back(0x7F);
  if (v) {  // P-STD buffer: scale 1 (1024 bytes) x 400
    o.push_back(cfg_.video_stream_id);
    o.push_back(0xE0 | (400 >> 8));
    o.push_back(400 & 0xFF);
  }
  if (a) {  // scale 0 (128 bytes) x 32
    o.push_back(cfg_.audio_stream_id);
    o.push_back(0xC0);
    o.push_back(32);
  }
}

void PsMuxer::put_psm() {
  auto& o = out_;
  size_t start = o.size();
  bool v = cfg_.video_codec != JN_CODEC_NONE, a = cfg_.audio_codec != JN_CODEC_NONE;
  size_t map_len = 4 * ((v ? 1 : 0) + (a ? 1 : 0));
  o.insert(o.end(), {0x00, 0x00, 0x01, 0xBC});
  put16(o, static_cast<uint32_t>(10 + map_len));
  o.push_back(static_cast<uint8_t>(0xE0 | (psm_version_ & 0x1F)));  // current_next 1, reserved, version
  o.push_back(0xFF);                                                // reserved, marker
  put16(o, 0);                                                      // program_stream_info_length
  put16(o, static_cast<uint32_t>(map_len));
  if (v) o.insert(o.end(), {stream_type_of(cfg_.video_codec), cfg_.video_stream_id, 0x00, 0x00});
  if (a) o.insert(o.end(), {stream_type_of(cfg_.audio_codec), cfg_.audio_stream_id, 0x00, 0x00});
  uint32_t crc = crc32_mpeg2(o.data() + start, o.size() - start);
  put16(o, crc >> 16);
  put16(o, crc & 0xFFFF);
}

void PsMuxer::put_pes(uint8_t stream_id, const uint8_t* prefix, size_t prefix_len, const uint8_t* data, size_t size,
                      int64_t pts90, int64_t dts90, bool aligned) {
  auto& o = out_;
  bool first = true;
  size_t total = prefix_len + size, done = 0;
  while (first || done < total) {
    bool with_dts = first && dts90 != pts90;
    size_t hdr_data = first ? (with_dts ? 10 : 5) : 0;
    size_t room = kMaxPesPayloadField - 3 - hdr_data;
    size_t n = std::min(room, total - done);
    o.insert(o.end(), {0x00, 0x00, 0x01, stream_id});
    put16(o, static_cast<uint32_t>(3 + hdr_data + n));
    o.push_back(static_cast<uint8_t>(0x80 | ((first && aligned) ? 0x04 : 0)));  // '10', data_alignment
    o.push_back(first ? (with_dts ? 0xC0 : 0x80) : 0x00);
    o.push_back(static_cast<uint8_t>(hdr_data));
    if (first) {
      put_ts(o, with_dts ? 3 : 2, static_cast<uint64_t>(pts90));
      if (with_dts) put_ts(o, 1, static_cast<uint64_t>(dts90));
    }
    // Copy n bytes of prefix + data from offset `done`.
    size_t left = n;
    while (left) {
      if (done < prefix_len) {
        size_t k = std::min(left, prefix_len - done);
        o.insert(o.end(), prefix + done, prefix + done + k);
        done += k, left -= k;
      } else {
        size_t off = done - prefix_len;
        o.insert(o.end(), data + off, data + off + left);
        done += left, left = 0;
      }
    }
    first = false;
  }
}

bool PsMuxer::mux(const FrameView& f, std::span<const uint8_t>* out) {
  *out = {};
  out_.clear();
  bool video = f.meta.codec == JN_CODEC_H264 || f.meta.codec == JN_CODEC_H265;
  if (video ? f.meta.codec != cfg_.video_codec : f.meta.codec != cfg_.audio_codec || f.meta.codec == JN_CODEC_NONE) {
    error_ = "frame codec is not the one this muxer was configured for";
    return false;
  }
  if (f.size > cfg_.max_frame || (f.size && !f.data)) {
    error_ = "frame larger than max_frame";
    return false;
  }
  uint8_t adts[7];
  size_t prefix_len = 0;
  if (f.meta.codec == JN_CODEC_AAC) {
    if (f.meta.frame_flags & JN_MF_CONFIG) {  // AudioSpecificConfig: kept for the ADTS headers
      if (f.size < 2) {
        error_ = "AAC config shorter than 2 bytes";
        return false;
      }
      asc_[0] = f.data[0], asc_[1] = f.data[1];
      have_asc_ = true;
      return true;
    }
    if (!have_asc_) {
      error_ = "AAC frame before its AudioSpecificConfig (JN_MF_CONFIG frame)";
      return false;
    }
    uint8_t aot = asc_[0] >> 3;
    uint8_t sr_idx = static_cast<uint8_t>(((asc_[0] & 7) << 1) | (asc_[1] >> 7));
    uint8_t ch = (asc_[1] >> 3) & 0x0F;
    size_t flen = f.size + 7;
    if (aot < 1 || aot > 4 || sr_idx > 12 || flen > 0x1FFF) {
      error_ = "AAC config or frame not expressible in ADTS";
      return false;
    }
    adts[0] = 0xFF;
    adts[1] = 0xF1;  // MPEG-4, layer 0, no CRC
    adts[2] = static_cast<uint8_t>(((aot - 1) << 6) | (sr_idx << 2) | (ch >> 2));
    adts[3] = static_cast<uint8_t>(((ch & 3) << 6) | (flen >> 11));
    adts[4] = static_cast<uint8_t>(flen >> 3);
    adts[5] = static_cast<uint8_t>(((flen & 7) << 5) | 0x1F);
    adts[6] = 0xFC;  // buffer fullness 0x7FF, one raw data block
    prefix_len = 7;
  }
  uint32_t rate = f.meta.clock_rate ? f.meta.clock_rate : (video ? 90000 : 8000);
  int64_t pts90 = rescale(f.meta.pts, 90000, rate);
  int64_t dts90 = rescale(f.meta.dts, 90000, rate);
  if (f.meta.dts == 0 && f.meta.pts != 0) dts90 = pts90;  // producers that leave dts unset
  bool key = video && (f.meta.frame_flags & JN_MF_KEY);
  // Audio interleaved with video may run slightly behind the last keyframe: only a jump of more
  // than the interval either way (or the interval elapsed) brings the PSM again.
  int64_t since = dts90 - last_psm90_;
  if (!have_last_psm_ || since >= cfg_.psm_interval || -since >= cfg_.psm_interval) psm_due_ = true;
  out_.reserve(f.size + prefix_len + 64 + (f.size / 65000 + 1) * 19);
  put_pack_header(dts90);
  if (psm_due_ || key) {
    put_system_header();
    put_psm();
    psm_due_ = false;
    have_last_psm_ = true;
    last_psm90_ = dts90;
  }
  put_pes(video ? cfg_.video_stream_id : cfg_.audio_stream_id, adts, prefix_len, f.data, f.size, pts90, dts90, true);
  *out = std::span<const uint8_t>(out_.data(), out_.size());
  return true;
}

}  // namespace junction::media
