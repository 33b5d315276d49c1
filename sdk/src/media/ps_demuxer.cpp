// MPEG-2 program stream demuxer: see junction/media/ps_demuxer.hpp for the contract.
#include <junction/media/annexb.hpp>
#include <junction/media/ps_demuxer.hpp>
#include <junction/proto/rtp.hpp>

#include "ps_common.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace junction::media {

namespace {
enum HdrPhase : uint8_t { kCode, kPack5, kPack14, kPackStuff, kLen6, kPsm, kPes9, kPesFull };

using junction::proto::rtp::rd16;

// 33-bit PTS/DTS in 5 bytes with marker bits (2.4.3.7); false when a marker bit is 0.
bool read_ts(const uint8_t* p, uint64_t* out) {
  if (!(p[0] & 1) || !(p[2] & 1) || !(p[4] & 1)) return false;
  *out = (static_cast<uint64_t>((p[0] >> 1) & 7) << 30) | (static_cast<uint64_t>(rd16(p + 1) >> 1) << 15) |
         (rd16(p + 3) >> 1);
  return true;
}

constexpr uint32_t kAacRates[16] = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050,
                                    16000, 12000, 11025, 8000,  7350,  0,     0,     0};
}  // namespace

const char* to_string(PsError e) {
  switch (e) {
    case PsError::None: return "ok";
    case PsError::Mpeg1Pack: return "MPEG-1 pack header (only MPEG-2 program streams are accepted)";
    case PsError::BadPackHeader: return "bad pack header";
    case PsError::BadStartCode: return "no start code where one should be";
    case PsError::BadPesHeader: return "bad PES header";
    case PsError::BadPsm: return "bad program stream map";
    case PsError::UnsupportedType: return "unsupported stream type";
    case PsError::FrameTooLarge: return "frame larger than the cap";
    case PsError::BadNal: return "NAL unit with forbidden_zero_bit set";
    case PsError::BadAdts: return "bad ADTS header";
    case PsError::Loss: return "transport loss";
  }
  return "?";
}

const char* to_string(MarkerMode m) {
  switch (m) {
    case MarkerMode::Learning: return "learning";
    case MarkerMode::Trusted: return "trusted";
    case MarkerMode::Ignored: return "ignored";
  }
  return "?";
}

PsDemuxer::PsDemuxer(const PsDemuxerConfig& cfg) : cfg_(cfg) {
  marker_mode_ = cfg_.marker_trust_after ? MarkerMode::Learning : MarkerMode::Trusted;
  video_.es.reserve(std::min(cfg_.initial_video_reserve, cfg_.max_video_frame));
  video_.params.reserve(kMaxParamBytes);
  audio_.buf.reserve(cfg_.max_audio_frame);
}

void PsDemuxer::reset() {
  state_ = State::Hunt;
  hunt_after_skip_ = false;
  hdr_len_ = hdr_need_ = remain_ = 0;
  hunt_window_ = 0xFFFFFFFFu;
  mpeg1_ = seen_pack_ = have_pts90_ = false;
  auto& v = video_;
  v.codec = 0, v.codec_from_psm = false, v.unsupported = false, v.stream_id = 0;
  v.params.clear();
  v.have_last = false;
  auto& a = audio_;
  a.codec = 0, a.codec_from_psm = false, a.unsupported = false, a.stream_id = 0, a.asc_sent = false;
  marker_mode_ = cfg_.marker_trust_after ? MarkerMode::Learning : MarkerMode::Trusted;  // a new source
  marker_agree_ = 0;
  drop_in_progress(false);
}

void PsDemuxer::error(const FrameSink& sink, PsError e, const char* detail) {
  ++stats_.errors;
  last_error_ = e;
  sink.fail(static_cast<int>(e), detail);
}

// Everything in progress may miss bytes: drop it, and make the gap visible (seq skips, DISCONT).
void PsDemuxer::drop_in_progress(bool count) {
  auto& v = video_;
  if (v.in_au || !v.es.empty()) {
    if (count && v.in_au) ++stats_.dropped_frames, ++v.seq;
  }
  v.es.clear();
  v.scan = 0;
  v.in_au = v.has_vcl = v.key = v.has_sps = v.has_pps = v.has_vps = v.short_codes = false;
  v.pes_pts_pending = false;
  v.pes_start = 0;
  v.discont = true;
  v.marker_end = kNoOffset;
  v.after_marker = false;
  auto& a = audio_;
  if (count && (a.ready || !a.buf.empty())) ++stats_.dropped_frames, ++a.seq;
  a.buf.clear();
  a.ready = false;
  a.overflow = false;
  a.has_pts = false;
  a.aac_pts_at = kNoOffset;
  a.discont = true;
}

void PsDemuxer::hunt() {
  hunt_after_skip_ = false;
  drop_in_progress(true);
  ++stats_.resyncs;
  state_ = State::Hunt;
  hdr_len_ = 0;
  hunt_window_ = 0xFFFFFFFFu;
}

void PsDemuxer::lose_sync(const FrameSink& sink, PsError e, const char* detail) {
  error(sink, e, detail);
  hunt();
}

void PsDemuxer::mark_loss(FrameSink sink) {
  // A G.711 PES that ended before the gap is whole: pass it on before dropping the rest.
  emit_audio_pending(sink);
  last_error_ = PsError::Loss;  // not counted in stats().errors: the input was not malformed
  sink.fail(static_cast<int>(PsError::Loss), "transport reported lost bytes");
  hunt();
}

// ---- hot reload ----------------------------------------------------------------------------

namespace {
constexpr uint32_t kDemuxBlobMagic = 0x50534431;  // "PSD1": bump when the layout changes
}

void PsDemuxer::save(std::vector<uint8_t>& out) const {
  BlobWriter w{out};
  w.put(kDemuxBlobMagic);
  w.put(stats_);
  w.put(last_error_), w.put(state_), w.put(hdr_len_), w.put(hdr_need_), w.put(hdr_phase_), w.put(remain_);
  w.bytes(hdr_, hdr_len_);
  w.put(pes_kind_), w.put(hunt_window_), w.put(hunt_after_skip_), w.put(mpeg1_), w.put(seen_pack_);
  w.put(last_pts90_), w.put(have_pts90_), w.put(marker_mode_), w.put(marker_agree_);
  const Video& v = video_;
  w.put(v.codec), w.put(v.codec_from_psm), w.put(v.unsupported), w.put(v.stream_id);
  w.bytes(v.es);
  w.put(v.scan), w.put(v.in_au), w.put(v.has_vcl), w.put(v.key), w.put(v.has_sps), w.put(v.has_pps), w.put(v.has_vps);
  w.put(v.damaged), w.put(v.short_codes), w.put(v.discont), w.put(v.au_pts), w.put(v.au_dts), w.put(v.au_has_pts);
  w.put(v.pes_pts_pending), w.put(v.pes_pts), w.put(v.pes_dts), w.put(v.pes_start);
  w.put(v.last_pts), w.put(v.last_dts), w.put(v.last_delta), w.put(v.have_last), w.put(v.seq);
  w.bytes(v.params);
  w.put(v.marker_end), w.put(v.after_marker);
  const Audio& a = audio_;
  w.put(a.codec), w.put(a.codec_from_psm), w.put(a.unsupported), w.put(a.overflow), w.put(a.stream_id);
  w.bytes(a.buf);
  w.put(a.ready), w.put(a.damaged), w.put(a.discont), w.put(a.pts), w.put(a.next_pts), w.put(a.has_pts);
  w.put(a.pes_pts), w.put(a.aac_pts_at), w.put(a.rate), w.put(a.seq), w.put(a.asc), w.put(a.asc_sent), w.put(a.aac_next_pts);
}

bool PsDemuxer::restore(const uint8_t* data, size_t size) {
  BlobReader r{data, size};
  auto fail = [&] {
    stats_ = {};
    reset();
    return false;
  };
  if (r.get<uint32_t>() != kDemuxBlobMagic) return fail();
  stats_ = r.get<PsDemuxerStats>();
  last_error_ = r.small_enum(PsError::Loss);
  state_ = r.small_enum(State::Skip);
  hdr_len_ = r.get<size_t>(), hdr_need_ = r.get<size_t>(), hdr_phase_ = r.get<uint8_t>(), remain_ = r.get<size_t>();
  std::vector<uint8_t> hdr;  // once per reload
  if (!r.bytes(hdr, sizeof hdr_) || hdr.size() != hdr_len_ || hdr_need_ > sizeof hdr_ || hdr_len_ > hdr_need_ ||
      static_cast<uint8_t>(state_) > static_cast<uint8_t>(State::Skip) || hdr_phase_ > kPesFull)
    return fail();
  if (!hdr.empty()) std::memcpy(hdr_, hdr.data(), hdr.size());
  pes_kind_ = r.get<uint8_t>(), hunt_window_ = r.get<uint32_t>(), hunt_after_skip_ = r.flag();
  mpeg1_ = r.flag(), seen_pack_ = r.flag();
  last_pts90_ = r.get<int64_t>(), have_pts90_ = r.flag();
  marker_mode_ = r.small_enum(MarkerMode::Ignored), marker_agree_ = r.get<uint32_t>();
  Video& v = video_;
  v.codec = r.get<uint32_t>(), v.codec_from_psm = r.flag(), v.unsupported = r.flag(), v.stream_id = r.get<uint8_t>();
  if (!r.bytes(v.es, cfg_.max_video_frame)) return fail();
  v.scan = r.get<size_t>(), v.in_au = r.flag(), v.has_vcl = r.flag(), v.key = r.flag();
  v.has_sps = r.flag(), v.has_pps = r.flag(), v.has_vps = r.flag();
  v.damaged = r.flag(), v.short_codes = r.flag(), v.discont = r.flag();
  v.au_pts = r.get<int64_t>(), v.au_dts = r.get<int64_t>(), v.au_has_pts = r.flag();
  v.pes_pts_pending = r.flag(), v.pes_pts = r.get<int64_t>(), v.pes_dts = r.get<int64_t>(), v.pes_start = r.get<size_t>();
  v.last_pts = r.get<int64_t>(), v.last_dts = r.get<int64_t>(), v.last_delta = r.get<int64_t>();
  v.have_last = r.flag(), v.seq = r.get<uint32_t>();
  if (!r.bytes(v.params, kMaxParamBytes)) return fail();
  v.marker_end = r.get<size_t>(), v.after_marker = r.flag();
  Audio& a = audio_;
  a.codec = r.get<uint32_t>(), a.codec_from_psm = r.flag(), a.unsupported = r.flag();
  a.overflow = r.flag(), a.stream_id = r.get<uint8_t>();
  if (!r.bytes(a.buf, cfg_.max_audio_frame)) return fail();
  a.ready = r.flag(), a.damaged = r.flag(), a.discont = r.flag();
  a.pts = r.get<int64_t>(), a.next_pts = r.get<int64_t>(), a.has_pts = r.flag();
  a.pes_pts = r.get<int64_t>(), a.aac_pts_at = r.get<size_t>(), a.rate = r.get<uint32_t>(), a.seq = r.get<uint32_t>();
  auto asc = r.get<std::array<uint8_t, 2>>();
  a.asc[0] = asc[0], a.asc[1] = asc[1];
  a.asc_sent = r.flag(), a.aac_next_pts = r.get<int64_t>();
  bool sane = r.ok && r.n == 0 && v.scan <= v.es.size() && v.pes_start <= v.es.size() &&
              (v.marker_end == kNoOffset || v.marker_end <= v.es.size()) && pes_kind_ <= 2 &&
              static_cast<uint8_t>(marker_mode_) <= static_cast<uint8_t>(MarkerMode::Ignored) &&
              (a.aac_pts_at == kNoOffset || a.aac_pts_at <= a.buf.size()) && remain_ <= 0xFFFF;
  if (!sane) return fail();
  return true;
}

void PsDemuxer::marker_mismatch() {
  ++stats_.marker_mismatches;
  marker_mode_ = MarkerMode::Ignored;
  video_.marker_end = kNoOffset;
  video_.after_marker = false;
}

void PsDemuxer::frame_end(FrameSink sink) {
  ++stats_.markers;
  if (!cfg_.close_on_marker || marker_mode_ == MarkerMode::Ignored) return;
  if (state_ == State::Hunt || (state_ == State::Skip && hunt_after_skip_)) return;  // resyncing: nothing to learn
  auto& v = video_;
  // A frame's PS bytes end with a whole structure: a marker inside one is not a frame boundary.
  bool boundary = state_ == State::Header && hdr_len_ == 0;
  if (!boundary) {
    marker_mismatch();
    return;
  }
  if (!v.in_au || !v.has_vcl) {
    // No picture in progress (an audio-only RTP frame, or the AU was closed already): the audio
    // PES is whole, the rest has nothing to check.
    if (marker_mode_ == MarkerMode::Trusted) emit_audio_pending(sink);
    return;
  }
  // Bytes that end on a start code, or on a NAL unit too short to hold its header: the NAL unit is
  // still to come (checked before the scan, which would otherwise step over that start code).
  size_t n = v.es.size();
  const uint8_t* e = v.es.data();
  size_t need = v.codec == JN_CODEC_H265 ? 3 : 2;
  for (size_t i = n >= 3 + need ? n - 2 - need : 0; i + 3 <= n; ++i) {
    if (e[i] == 0 && e[i + 1] == 0 && e[i + 2] == 1) {
      marker_mismatch();
      return;
    }
  }
  // The AU may end on a NAL unit whose header is not classified yet: do it now.
  scan_video(sink, true);
  if (state_ != State::Header || !v.in_au || !v.has_vcl) return;  // damage found: dropped
  n = v.es.size();
  if (marker_mode_ == MarkerMode::Learning) {
    v.marker_end = n;  // verified when the next NAL unit shows up (check_marker)
    return;
  }
  emit_audio_pending(sink);
  emit_video(sink, n);
  v.in_au = false;
  v.scan = 0;
  v.after_marker = true;
  ++stats_.marker_frames;
}

// The first NAL unit after a marker: its start code [sc, sc + cl) must begin right at the marker
// (trailing zero bytes before it allowed) and the NAL unit must start an AU.
void PsDemuxer::check_marker(size_t sc, size_t cl, bool starts) {
  auto& v = video_;
  if (v.after_marker) {
    v.after_marker = false;
    if (!starts || sc != 0) {
      // The AU closed on the marker went out short: the rest of it is skipped (not an AU start),
      // and the next frame shows the gap.
      marker_mismatch();
      ++stats_.dropped_frames, ++v.seq;
      v.discont = true;
    }
    return;
  }
  if (v.marker_end == kNoOffset || sc + cl <= v.marker_end) return;
  bool ok = starts && sc <= v.marker_end && sc + cl >= v.marker_end + 3;
  v.marker_end = kNoOffset;
  if (!ok) {
    marker_mismatch();
    return;
  }
  if (++marker_agree_ >= cfg_.marker_trust_after) marker_mode_ = MarkerMode::Trusted;
}

void PsDemuxer::flush(FrameSink sink) {
  // Only at a structure boundary is the data in progress known to be whole.
  bool boundary = state_ == State::Header && hdr_len_ == 0;
  if (!boundary) {
    if (state_ != State::Hunt) drop_in_progress(true);
    return;
  }
  emit_audio_pending(sink);
  auto& v = video_;
  if (v.in_au) {
    scan_video(sink, true);
    if (v.in_au && v.has_vcl) emit_video(sink, v.es.size());
  }
  v.es.clear();
  v.scan = 0;
  v.in_au = false;
}

int64_t PsDemuxer::unwrap(uint64_t pts33) {
  constexpr int64_t kMod = int64_t{1} << 33;
  if (!have_pts90_) {
    have_pts90_ = true;
    last_pts90_ = static_cast<int64_t>(pts33);
    return last_pts90_;
  }
  int64_t d = (static_cast<int64_t>(pts33) - last_pts90_) & (kMod - 1);
  if (d >= kMod / 2) d -= kMod;  // nearest: a small step back (audio before video) or a wrap
  last_pts90_ += d;
  return last_pts90_;
}

void PsDemuxer::feed(const uint8_t* p, size_t n, FrameSink sink) {
  stats_.bytes += n;
  while (n) {
    switch (state_) {
      case State::Hunt: {
        // A pack header is the only safe place to resume: 00 00 01 BA cannot occur inside an
        // H.264/H.265 NAL unit (emulation prevention) and is checked by its marker bits.
        uint32_t w = hunt_window_;
        size_t i = 0;
        bool found = false;
        for (; i < n; ++i) {
          w = (w << 8) | p[i];
          if (w == 0x000001BAu) {
            found = true;
            ++i;
            break;
          }
        }
        hunt_window_ = w;
        stats_.skipped_bytes += i;
        if (found) {
          stats_.skipped_bytes -= std::min<uint64_t>(4, stats_.skipped_bytes);
          hdr_[0] = 0, hdr_[1] = 0, hdr_[2] = 1, hdr_[3] = 0xBA;
          hdr_len_ = 4;
          hdr_need_ = 5;
          hdr_phase_ = kPack5;
          state_ = State::Header;
          hunt_window_ = 0xFFFFFFFFu;
        }
        p += i, n -= i;
        break;
      }
      case State::Header: {
        if (hdr_len_ == 0) hdr_need_ = 4, hdr_phase_ = kCode;
        size_t k = std::min(hdr_need_ - hdr_len_, n);
        std::memcpy(hdr_ + hdr_len_, p, k);
        hdr_len_ += k, p += k, n -= k;
        while (state_ == State::Header && hdr_len_ == hdr_need_) parse_header(sink);
        break;
      }
      case State::Payload: {
        size_t k = std::min(remain_, n);
        remain_ -= k;
        const uint8_t* chunk = p;
        p += k, n -= k;
        if (pes_kind_ == 1) video_payload(sink, chunk, k);
        else audio_payload(sink, chunk, k);
        if (state_ == State::Payload && remain_ == 0) {
          if (pes_kind_ == 2) audio_pes_end(sink);
          state_ = State::Header;
          hdr_len_ = 0;
        }
        break;
      }
      case State::Skip: {
        size_t k = std::min(remain_, n);
        remain_ -= k, p += k, n -= k;
        if (hunt_after_skip_) stats_.skipped_bytes += k;
        if (remain_ == 0) {
          state_ = hunt_after_skip_ ? State::Hunt : State::Header;
          hdr_len_ = 0;
          hunt_after_skip_ = false;
        }
        break;
      }
    }
  }
}

// Called each time hdr_ holds hdr_need_ bytes: decides what comes next.
void PsDemuxer::parse_header(const FrameSink& sink) {
  const uint8_t* h = hdr_;
  auto next = [&] {
    hdr_len_ = 0;
    hdr_need_ = 4;
    hdr_phase_ = kCode;
  };
  switch (hdr_phase_) {
    case kCode: {
      if (h[0] != 0 || h[1] != 0 || h[2] != 1 || h[3] < 0xB9) {
        lose_sync(sink, PsError::BadStartCode, "expected a pack, system header, PSM or PES start code");
        return;
      }
      // The previous structure ended exactly where it said: a pending audio PES is whole.
      emit_audio_pending(sink);
      if (h[3] == 0xB9) {  // MPEG_program_end_code
        next();
      } else if (h[3] == 0xBA) {
        hdr_need_ = 5, hdr_phase_ = kPack5;
      } else {
        hdr_need_ = 6, hdr_phase_ = kLen6;
      }
      return;
    }
    case kPack5:
      if ((h[4] & 0xC0) == 0x40) {
        hdr_need_ = 14, hdr_phase_ = kPack14;
      } else if ((h[4] & 0xF0) == 0x20) {
        ++stats_.mpeg1_packs;
        if (!mpeg1_) {
          mpeg1_ = true;
          lose_sync(sink, PsError::Mpeg1Pack, "MPEG-1 system stream refused; skipping to the next MPEG-2 pack");
        } else {
          drop_in_progress(false);
          state_ = State::Hunt;
          hdr_len_ = 0;
        }
      } else {
        lose_sync(sink, PsError::BadPackHeader, "pack header: neither MPEG-2 ('01') nor MPEG-1 ('0010')");
      }
      return;
    case kPack14: {
      bool markers = (h[4] & 0x04) && (h[6] & 0x04) && (h[8] & 0x04) && (h[9] & 0x01) && (h[12] & 0x03) == 0x03;
      if (!markers) {
        lose_sync(sink, PsError::BadPackHeader, "pack header marker bits");
        return;
      }
      mpeg1_ = false;
      seen_pack_ = true;
      ++stats_.packs;
      size_t stuffing = h[13] & 7;
      if (stuffing) {
        hdr_need_ = 14 + stuffing, hdr_phase_ = kPackStuff;
      } else {
        next();
      }
      return;
    }
    case kPackStuff:
      next();
      return;
    case kLen6: {
      uint8_t id = h[3];
      size_t len = rd16(h + 4);
      if (id == 0xBC) {
        if (len < 10 || len > kMaxPsmLen) {
          lose_sync(sink, PsError::BadPsm, "program_stream_map_length out of range");
          return;
        }
        hdr_need_ = 6 + len, hdr_phase_ = kPsm;
        return;
      }
      uint8_t kind = 0;
      if (id >= 0xE0 && id <= 0xEF && !video_.unsupported && (video_.stream_id == 0 || video_.stream_id == id)) kind = 1;
      if (id >= 0xC0 && id <= 0xDF && !audio_.unsupported && (audio_.stream_id == 0 || audio_.stream_id == id)) kind = 2;
      if (kind) {
        if (len < 3) {
          lose_sync(sink, PsError::BadPesHeader, "PES_packet_length shorter than its header");
          return;
        }
        pes_kind_ = kind;
        remain_ = len;  // bytes after the length field
        hdr_need_ = 9, hdr_phase_ = kPes9;
        return;
      }
      // System header, padding, private streams, streams not taken: skipped by their length.
      remain_ = len;
      hdr_len_ = 0;
      state_ = remain_ ? State::Skip : State::Header;
      return;
    }
    case kPsm:
      parse_psm(sink, h, hdr_len_);
      if (state_ == State::Header) next();
      return;
    case kPes9: {
      if ((h[6] & 0xC0) != 0x80) {
        lose_sync(sink, PsError::BadPesHeader, "PES header without the '10' marker (MPEG-1 PES?)");
        return;
      }
      size_t hl = h[8];
      if (3 + hl > remain_) {
        lose_sync(sink, PsError::BadPesHeader, "PES_header_data_length past the packet end");
        return;
      }
      hdr_need_ = 9 + hl, hdr_phase_ = kPesFull;
      return;
    }
    case kPesFull:
      begin_pes(sink, h, hdr_len_);
      return;
  }
}

void PsDemuxer::begin_pes(const FrameSink& sink, const uint8_t* h, size_t len) {
  uint8_t flags = h[7] >> 6;
  uint64_t pts = 0, dts = 0;
  bool has_pts = false;
  if (flags == 1) {
    lose_sync(sink, PsError::BadPesHeader, "PTS_DTS_flags = '01' (forbidden)");
    return;
  }
  if (flags >= 2) {
    if (len < 14 || !read_ts(h + 9, &pts) || (flags == 3 && (len < 19 || !read_ts(h + 14, &dts)))) {
      lose_sync(sink, PsError::BadPesHeader, "PTS/DTS field short or marker bits wrong");
      return;
    }
    has_pts = true;
    if (flags == 2) dts = pts;
  }
  ++stats_.pes;
  remain_ -= 3 + h[8];
  int64_t pts90 = has_pts ? unwrap(pts) : 0;
  int64_t dts90 = has_pts ? pts90 - ((pts - dts) & ((uint64_t{1} << 33) - 1)) : 0;
  if (has_pts && flags == 3 && pts90 - dts90 > 90000 * 10) dts90 = pts90;  // a nonsense DTS
  if (pes_kind_ == 1) {
    auto& v = video_;
    if (v.stream_id == 0) v.stream_id = h[3];
    if (has_pts) {
      v.pes_pts_pending = true;
      v.pes_pts = pts90;
      v.pes_dts = dts90;
      v.pes_start = v.es.size();
    }
  } else {
    auto& a = audio_;
    if (a.stream_id == 0) a.stream_id = h[3];
    a.overflow = false;  // a new PES: whatever overflowed ended with the previous one
    if (a.codec != JN_CODEC_AAC) {
      a.buf.clear();  // (a pending frame was emitted at this PES's start code)
      a.ready = false;
      if (has_pts) {
        a.pts = pts90, a.has_pts = true;
      } else if (a.has_pts) {
        a.pts = a.next_pts;  // continue from the previous frame's duration
      }
    } else if (has_pts) {
      a.pes_pts = pts90;
      a.aac_pts_at = a.buf.size();
    }
  }
  state_ = State::Payload;
  hdr_len_ = 0;
  if (remain_ == 0) {
    if (pes_kind_ == 2) audio_pes_end(sink);
    state_ = State::Header;
  }
}

void PsDemuxer::parse_psm(const FrameSink& sink, const uint8_t* h, size_t len) {
  // 00 00 01 BC len(2) | cni/ver | reserved/marker | info_length(2) | info | es_map_length(2) | entries | CRC
  size_t info_len = rd16(h + 8);
  size_t off = 10 + info_len;
  if (off + 2 > len) {
    lose_sync(sink, PsError::BadPsm, "program_stream_info_length past the map");
    return;
  }
  size_t map_len = rd16(h + off);
  off += 2;
  if (off + map_len + 4 > len) {
    lose_sync(sink, PsError::BadPsm, "elementary_stream_map_length past the map");
    return;
  }
  ++stats_.psm;
  size_t end = off + map_len;
  bool got_video = false, got_audio = false;
  while (off + 4 <= end) {
    uint8_t type = h[off], id = h[off + 1];
    size_t es_info = rd16(h + off + 2);
    off += 4 + es_info;
    if (off > end) {
      lose_sync(sink, PsError::BadPsm, "elementary_stream_info_length past the map");
      return;
    }
    if (id >= 0xE0 && id <= 0xEF && !got_video) {
      got_video = true;
      video_.stream_id = id;
      set_video_type(sink, type);
    } else if (id >= 0xC0 && id <= 0xDF && !got_audio) {
      got_audio = true;
      audio_.stream_id = id;
      set_audio_type(sink, type);
    }
  }
  // The CRC_32 is not checked: many devices write a wrong one, and the map is bounded anyway.
}

void PsDemuxer::set_video_type(const FrameSink& sink, uint8_t type) {
  auto& v = video_;
  uint32_t codec = type == kPsTypeH264 ? JN_CODEC_H264 : type == kPsTypeH265 ? JN_CODEC_H265 : 0;
  if (!codec) {
    if (!v.unsupported) error(sink, PsError::UnsupportedType, "video stream type is not H.264 (0x1B) or H.265 (0x24): skipped");
    v.unsupported = true;
    v.codec = 0;
    return;
  }
  v.unsupported = false;
  if (v.codec && v.codec != codec) {  // the device switched codec: restart the stream cleanly
    if (v.in_au) ++stats_.dropped_frames, ++v.seq;
    v.es.clear(), v.scan = 0, v.in_au = false, v.params.clear(), v.discont = true;
  }
  v.codec = codec;
  v.codec_from_psm = true;
}

void PsDemuxer::set_audio_type(const FrameSink& sink, uint8_t type) {
  auto& a = audio_;
  uint32_t codec = type == kPsTypeG711A ? JN_CODEC_PCMA
                 : type == kPsTypeG711U ? JN_CODEC_PCMU
                 : type == kPsTypeAac   ? JN_CODEC_AAC
                                        : 0;
  if (!codec) {
    if (!a.unsupported) error(sink, PsError::UnsupportedType, "audio stream type is not G.711A/U (0x90/0x91) or AAC (0x0F): skipped");
    a.unsupported = true;
    a.codec = 0;
    return;
  }
  a.unsupported = false;
  if (a.codec && a.codec != codec) {
    a.buf.clear(), a.ready = false, a.asc_sent = false, a.discont = true;
  }
  a.codec = codec;
  a.codec_from_psm = true;
  a.rate = codec == JN_CODEC_AAC ? a.rate : 8000;
}

// ---- video -------------------------------------------------------------------------------

void PsDemuxer::video_payload(const FrameSink& sink, const uint8_t* p, size_t n) {
  auto& v = video_;
  while (n) {
    // Appended up to the cap, scanning as it goes: the AU in progress may end in this chunk.
    size_t room = cfg_.max_video_frame - std::min(v.es.size(), cfg_.max_video_frame);
    if (room == 0) {
      error(sink, PsError::FrameTooLarge, "video access unit over max_video_frame: dropped");
      if (v.in_au) ++stats_.dropped_frames, ++v.seq;
      // What follows belongs to the dropped AU until the next AU start (skipped by the scan).
      v.es.clear(), v.scan = 0, v.in_au = false, v.discont = true;
      v.pes_pts_pending = false;
      v.marker_end = kNoOffset;
      room = cfg_.max_video_frame;
    }
    size_t k = std::min(room, n);
    v.es.insert(v.es.end(), p, p + k);
    p += k, n -= k;
    scan_video(sink, false);
    if (state_ != State::Payload) return;  // the scan found damage and dropped everything
  }
}

// H.264 / H.265 codec from the first NAL unit that tells them apart (no PSM).
bool PsDemuxer::guess_video_codec(const uint8_t* nal, size_t avail) {
  if (avail < 2) return false;
  uint8_t t5 = nal[0] & 0x1f, t6 = (nal[0] >> 1) & 0x3f;
  bool h265 = (nal[0] & 0x81) == 0 && nal[1] == 0x01 &&
              (t6 == 32 || t6 == 33 || t6 == 34 || t6 == 35 || t6 == 39 || (t6 >= 16 && t6 <= 21));
  if (h265) {
    video_.codec = JN_CODEC_H265;
    return true;
  }
  if ((nal[0] & 0x80) == 0 && (t5 == 1 || t5 == 5 || t5 == 6 || t5 == 7 || t5 == 8 || t5 == 9)) {
    video_.codec = JN_CODEC_H264;
    return true;
  }
  return false;
}

void PsDemuxer::scan_video(const FrameSink& sink, bool at_end) {
  auto& v = video_;
  for (;;) {
    const uint8_t* p = v.es.data();
    size_t len = v.es.size();
    size_t cl = 0;
    size_t sc = annexb::find_start_code(p, len, v.scan, &cl);
    if (sc >= len) {
      if (v.after_marker && len > 3) check_marker(len, 0, false);  // no start code right after the marker
      // Keep the last two bytes: a start code may straddle the next chunk.
      if (len >= 2 && v.scan < len - 2) v.scan = len - 2;
      if (!v.in_au && len > 3) {  // no AU has begun: keep only what may start a 4-byte start code
        v.es.erase(v.es.begin(), v.es.end() - 3);
        v.pes_start = v.pes_start > len - 3 ? v.pes_start - (len - 3) : 0;
        v.scan = 0;
      }
      return;
    }
    if (cl == 3 && sc > 0 && p[sc - 1] == 0) --sc, cl = 4;  // 00 00 00 01 found from its second zero
    size_t nal = sc + cl;
    size_t need = v.codec == JN_CODEC_H265 ? 3 : 2;
    if (nal + need > len && !at_end) {
      v.scan = sc;  // classify when the NAL header and the next byte are here
      return;
    }
    size_t avail = len - nal;
    if (avail == 0) {  // at end: a bare start code
      v.scan = len;
      return;
    }
    uint8_t b0 = p[nal];
    if (b0 & 0x80) {  // forbidden_zero_bit: these bytes are not video (a PES length lied)
      bool in_pes = state_ == State::Payload;
      lose_sync(sink, PsError::BadNal, "NAL unit header with forbidden_zero_bit: stream damaged");
      if (in_pes && remain_) {
        // Hunt from the end of this PES, wherever in it the damage showed: the same bytes are
        // skipped however the input was cut.
        state_ = State::Skip;
        hunt_after_skip_ = true;
      }
      return;
    }
    if (b0 == 0 && (avail < 2 || p[nal + 1] == 0)) {
      // 00 00 01 00 00 ...: no NAL unit here (the next start code follows). Its start code is
      // still rewritten to 4 bytes with the AU's others.
      if (cl == 3 && v.in_au) v.short_codes = true;
      v.scan = nal;
      continue;
    }
    if (!v.codec) {
      if (!guess_video_codec(p + nal, avail)) {
        v.scan = nal;  // undecided: skip this NAL unit
        continue;
      }
      if (v.codec == JN_CODEC_H265 && avail < 3 && !at_end) {
        v.scan = sc;  // H.265 needs one more byte to classify
        return;
      }
    }
    bool starts = false, vcl = false, key = false, param = false;
    uint8_t ptype = 0;
    if (v.codec == JN_CODEC_H264) {
      uint8_t t = annexb::h264::type(b0);
      vcl = annexb::h264::is_vcl(t);
      key = t == annexb::h264::kIdr;
      param = annexb::h264::is_parameter_set(t);
      ptype = t;
      if (vcl) starts = avail >= 2 && (p[nal + 1] & 0x80);  // first_mb_in_slice == 0
      else starts = t == annexb::h264::kAud || param || t == annexb::h264::kSei || (t >= 14 && t <= 18);
    } else {
      uint8_t t = annexb::h265::type(b0);
      vcl = annexb::h265::is_vcl(t);
      key = annexb::h265::is_irap(t);
      param = annexb::h265::is_parameter_set(t);
      ptype = t;
      if (vcl) starts = avail >= 3 && (p[nal + 2] & 0x80);  // first_slice_segment_in_pic_flag
      else starts = t == annexb::h265::kAud || param || t == annexb::h265::kSeiPrefix || (t >= 41 && t <= 44) ||
                    (t >= 48 && t <= 55);
    }
    if (v.after_marker || v.marker_end != kNoOffset) check_marker(sc, cl, starts);
    if (starts && v.in_au && v.has_vcl) {
      emit_video(sink, sc);  // the AU before this NAL is whole
      // emit_video removed [0, sc): this NAL now starts at 0.
      p = v.es.data();
      nal -= sc;
      sc = 0;
      v.in_au = false;
    }
    if (!v.in_au) {
      if (!starts) {  // the rest of an AU whose start was lost: skip
        v.scan = nal;
        continue;
      }
      if (sc > 0) {
        v.es.erase(v.es.begin(), v.es.begin() + static_cast<ptrdiff_t>(sc));
        v.pes_start = v.pes_start > sc ? v.pes_start - sc : 0;
        nal -= sc;
        sc = 0;
      }
      v.in_au = true;
      v.has_vcl = v.key = v.has_sps = v.has_pps = v.has_vps = v.short_codes = false;
      // The PTS of a PES belongs to the first AU that starts in its payload (2.4.3.7).
      if (v.pes_pts_pending && nal >= v.pes_start + 1) {
        v.au_pts = v.pes_pts, v.au_dts = v.pes_dts;
        v.pes_pts_pending = false;
        if (v.have_last && v.au_dts > v.last_dts && v.au_dts - v.last_dts < 90000 * 10) v.last_delta = v.au_dts - v.last_dts;
      } else if (v.have_last) {
        v.au_pts = v.last_pts + v.last_delta, v.au_dts = v.last_dts + v.last_delta;
      } else {
        v.au_pts = v.au_dts = 0;
      }
      v.last_pts = v.au_pts, v.last_dts = v.au_dts, v.have_last = true;
    }
    if (cl == 3) v.short_codes = true;
    v.has_vcl |= vcl;
    v.key |= key;
    if (param) {
      if (v.codec == JN_CODEC_H264) (ptype == annexb::h264::kSps ? v.has_sps : v.has_pps) = true;
      else (ptype == annexb::h265::kVps ? v.has_vps : ptype == annexb::h265::kSps ? v.has_sps : v.has_pps) = true;
    }
    v.scan = nal;
  }
}

// Emits es[0, end) as one access unit, then removes it from es.
void PsDemuxer::emit_video(const FrameSink& sink, size_t end) {
  auto& v = video_;
  const uint8_t* p = v.es.data();
  bool h265 = v.codec == JN_CODEC_H265;
  bool has_params = v.has_sps && v.has_pps && (!h265 || v.has_vps);
  // Remember the parameter sets, to repeat them before a keyframe that comes without them. They
  // come before the first slice: the walk stops there (a keyframe is mostly slice data).
  if (has_params) {
    static constexpr uint8_t kCode[4] = {0, 0, 0, 1};
    v.params.clear();
    size_t cl = 0;
    size_t pos = annexb::find_start_code(p, end, 0, &cl);
    while (pos < end && pos + cl < end) {
      size_t nal = pos + cl;
      uint8_t t = h265 ? annexb::h265::type(p[nal]) : annexb::h264::type(p[nal]);
      if (h265 ? annexb::h265::is_vcl(t) : annexb::h264::is_vcl(t)) break;
      size_t ncl = 0;
      size_t next = annexb::find_start_code(p, end, nal, &ncl);
      if (h265 ? annexb::h265::is_parameter_set(t) : annexb::h264::is_parameter_set(t)) {
        if (v.params.size() + 4 + (next - nal) > kMaxParamBytes) {
          v.params.clear();
          break;
        }
        v.params.insert(v.params.end(), kCode, kCode + 4);
        v.params.insert(v.params.end(), p + nal, p + next);
      }
      pos = next, cl = ncl;
    }
  }
  bool inject = v.key && !has_params && !v.params.empty();
  const uint8_t* data = p;
  size_t size = end;
  if (inject || v.short_codes) {
    // Rewrite: parameter sets first, then every NAL unit behind a 4-byte start code.
    v.out.clear();
    if (inject) v.out.insert(v.out.end(), v.params.begin(), v.params.end());
    size_t pos = 0;
    for (;;) {
      size_t cl = 0;
      size_t sc = annexb::find_start_code(p, end, pos, &cl);
      v.out.insert(v.out.end(), p + pos, p + sc);
      if (sc >= end) break;
      static constexpr uint8_t kCode[4] = {0, 0, 0, 1};
      v.out.insert(v.out.end(), kCode, kCode + 4);
      pos = sc + cl;
    }
    data = v.out.data();
    size = v.out.size();
  }
  FrameView f;
  f.data = data;
  f.size = size;
  f.meta.pts = v.au_pts;
  f.meta.dts = v.au_dts;
  f.meta.clock_rate = 90000;
  f.meta.codec = v.codec;
  f.meta.frame_flags = (v.key ? uint32_t{JN_MF_KEY} : 0u) | ((has_params || inject) ? uint32_t{JN_MF_CONFIG} : 0u) |
                       (v.discont ? uint32_t{JN_MF_DISCONT} : 0u);
  f.meta.seq = v.seq++;
  f.meta.track = cfg_.video_track;
  f.meta.kind = JN_MEDIA_VIDEO;
  v.discont = false;
  ++stats_.video_frames;
  sink(f);
  v.es.erase(v.es.begin(), v.es.begin() + static_cast<ptrdiff_t>(end));
  v.scan = v.scan > end ? v.scan - end : 0;
  v.pes_start = v.pes_start > end ? v.pes_start - end : 0;
}

// ---- audio -------------------------------------------------------------------------------

void PsDemuxer::audio_payload(const FrameSink& sink, const uint8_t* p, size_t n) {
  auto& a = audio_;
  if (a.buf.size() + n > cfg_.max_audio_frame) {
    error(sink, PsError::FrameTooLarge, "audio frame over max_audio_frame: dropped");
    if (!a.buf.empty()) ++stats_.dropped_frames, ++a.seq;
    a.buf.clear();
    a.aac_pts_at = kNoOffset;
    a.discont = true;
    a.overflow = true;  // drop the rest of this PES
    return;
  }
  if (a.overflow) return;
  a.buf.insert(a.buf.end(), p, p + n);
  if (a.codec == JN_CODEC_AAC) parse_adts(sink);
}

// No PSM: the first whole PES tells. An ADTS sync word means AAC; otherwise G.711, A-law unless
// the bytes look like mu-law around zero (0xFF/0x7F; A-law's zero is 0xD5/0x55).
void PsDemuxer::guess_audio_codec(const FrameSink& sink) {
  auto& a = audio_;
  const uint8_t* p = a.buf.data();
  size_t n = a.buf.size();
  if (n >= 2 && p[0] == 0xFF && (p[1] & 0xF6) == 0xF0) {
    a.codec = JN_CODEC_AAC;
    a.pes_pts = a.pts;
    a.aac_pts_at = 0;
    parse_adts(sink);
    return;
  }
  if (n >= 2 && p[0] == 0xFF && (p[1] & 0xE0) == 0xE0 && (p[1] & 0x06) != 0) {
    // MPEG-1/2 audio (layer I-III: what libavformat's muxer puts on 0xC0): not a GB codec.
    error(sink, PsError::UnsupportedType, "audio stream is MPEG audio (no PSM, layer I-III sync): skipped");
    a.unsupported = true;
    a.buf.clear();
    return;
  }
  size_t mu = 0, al = 0;
  for (size_t i = 0; i < n; ++i) {
    uint8_t b = p[i] & 0x7F;
    if (b >= 0x70) ++mu;
    if (b >= 0x50 && b <= 0x57) ++al;
  }
  a.codec = mu > al * 2 ? JN_CODEC_PCMU : JN_CODEC_PCMA;
  a.rate = 8000;
}

void PsDemuxer::audio_pes_end(const FrameSink& sink) {
  auto& a = audio_;
  if (a.overflow) {
    a.overflow = false;
    return;
  }
  if (!a.codec && !a.buf.empty()) guess_audio_codec(sink);
  if (a.codec != JN_CODEC_AAC && !a.buf.empty()) a.ready = true;
}

void PsDemuxer::emit_audio_pending(const FrameSink& sink) {
  auto& a = audio_;
  if (!a.ready) return;
  a.ready = false;
  FrameView f;
  f.data = a.buf.data();
  f.size = a.buf.size();
  f.meta.clock_rate = a.rate ? a.rate : 8000;
  f.meta.pts = f.meta.dts = rescale(a.pts, f.meta.clock_rate, 90000);
  f.meta.codec = a.codec;
  f.meta.frame_flags = a.discont ? uint32_t{JN_MF_DISCONT} : 0u;
  f.meta.seq = a.seq++;
  f.meta.track = cfg_.audio_track;
  f.meta.kind = JN_MEDIA_AUDIO;
  a.discont = false;
  // One byte per sample at 8 kHz: the next PES without a PTS follows this one.
  a.next_pts = a.pts + rescale(static_cast<int64_t>(a.buf.size()), 90000, f.meta.clock_rate);
  ++stats_.audio_frames;
  sink(f);
  a.buf.clear();
}

void PsDemuxer::parse_adts(const FrameSink& sink) {
  auto& a = audio_;
  size_t pos = 0;
  while (a.buf.size() - pos >= 7) {
    const uint8_t* h = a.buf.data() + pos;
    if (h[0] != 0xFF || (h[1] & 0xF6) != 0xF0) {
      error(sink, PsError::BadAdts, "AAC data without an ADTS sync word: dropped up to the next PES");
      ++stats_.dropped_frames, ++a.seq;
      a.discont = true;
      a.overflow = true;
      a.buf.clear();
      a.aac_pts_at = kNoOffset;
      return;
    }
    size_t hl = (h[1] & 1) ? 7 : 9;
    size_t flen = (static_cast<size_t>(h[3] & 3) << 11) | (static_cast<size_t>(h[4]) << 3) | (h[5] >> 5);
    uint8_t sr_idx = (h[2] >> 2) & 0x0F;
    if (flen <= hl || kAacRates[sr_idx] == 0 || (h[6] & 3) != 0) {
      error(sink, PsError::BadAdts, "ADTS frame length, sampling index or raw_data_blocks unsupported");
      ++stats_.dropped_frames, ++a.seq;
      a.discont = true;
      a.overflow = true;
      a.buf.clear();
      a.aac_pts_at = kNoOffset;
      return;
    }
    if (a.buf.size() - pos < flen) break;
    uint32_t rate = kAacRates[sr_idx];
    if (a.aac_pts_at != kNoOffset && pos >= a.aac_pts_at) {
      a.aac_next_pts = rescale(a.pes_pts, rate, 90000);
      a.aac_pts_at = kNoOffset;
    } else if (a.rate != rate && a.rate) {
      a.aac_next_pts = rescale(rescale(a.aac_next_pts, 90000, a.rate), rate, 90000);
    }
    a.rate = rate;
    uint8_t aot = static_cast<uint8_t>((h[2] >> 6) + 1);
    uint8_t ch = static_cast<uint8_t>(((h[2] & 1) << 2) | (h[3] >> 6));
    uint8_t asc[2] = {static_cast<uint8_t>((aot << 3) | (sr_idx >> 1)),
                      static_cast<uint8_t>(((sr_idx & 1) << 7) | (ch << 3))};
    FrameView f;
    f.meta.clock_rate = rate;
    f.meta.pts = f.meta.dts = a.aac_next_pts;
    f.meta.codec = JN_CODEC_AAC;
    f.meta.track = cfg_.audio_track;
    f.meta.kind = JN_MEDIA_AUDIO;
    if (!a.asc_sent || std::memcmp(asc, a.asc, 2) != 0) {
      std::memcpy(a.asc, asc, 2);
      a.asc_sent = true;
      f.data = a.asc;
      f.size = 2;
      f.meta.frame_flags = JN_MF_CONFIG | (a.discont ? uint32_t{JN_MF_DISCONT} : 0u);
      f.meta.seq = a.seq++;
      a.discont = false;
      ++stats_.audio_frames;
      sink(f);
    }
    f.data = h + hl;
    f.size = flen - hl;
    f.meta.frame_flags = a.discont ? uint32_t{JN_MF_DISCONT} : 0u;
    f.meta.seq = a.seq++;
    a.discont = false;
    ++stats_.audio_frames;
    sink(f);
    a.aac_next_pts += 1024;
    pos += flen;
  }
  if (pos) {
    a.buf.erase(a.buf.begin(), a.buf.begin() + static_cast<ptrdiff_t>(pos));
    if (a.aac_pts_at != kNoOffset) a.aac_pts_at = a.aac_pts_at > pos ? a.aac_pts_at - pos : 0;
  }
}

}  // namespace junction::media
