#include "receiver.hpp"

#include <algorithm>
#include <cstring>

namespace gb::media {

using junction::media::FrameView;
using junction::media::PsDemuxer;
using junction::media::PsError;
using junction::media::PsRtpReceiver;
using junction::media::PsRtpReceiverConfig;
using junction::media::Rfc4571Config;
using junction::media::Rfc4571Deframer;

const char* to_string(Problem p) {
  switch (p) {
    case Problem::WrongSsrc: return "wrong_ssrc";
    case Problem::WrongPt: return "wrong_pt";
    case Problem::Malformed: return "malformed";
    case Problem::TcpResync: return "tcp_resync";
    case Problem::Demux: return "demux";
    case Problem::Oversized: return "oversized";
  }
  return "?";
}

// --- SPS parsing (resolution for stats) ---
namespace {

class Bits {
 public:
  Bits(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  uint32_t u(unsigned bits) {
    uint32_t v = 0;
    for (unsigned i = 0; i < bits; ++i) v = (v << 1) | bit();
    return v;
  }
  uint32_t ue() {
    unsigned zeros = 0;
    while (bit() == 0) {
      if (++zeros > 31 || bad_) {
        bad_ = true;
        return 0;
      }
    }
    return ((1u << zeros) - 1) + u(zeros);
  }
  int32_t se() {
    uint32_t k = ue();
    return (k & 1) ? static_cast<int32_t>((k + 1) / 2) : -static_cast<int32_t>(k / 2);
  }
  void skip(size_t bits) {
    for (size_t i = 0; i < bits; ++i) bit();
  }
  bool bad() const { return bad_; }

 private:
  uint32_t bit() {
    if (pos_ >= n_ * 8) {
      bad_ = true;
      return 0;
    }
    uint32_t b = (p_[pos_ / 8] >> (7 - pos_ % 8)) & 1;
    ++pos_;
    return b;
  }
  const uint8_t* p_;
  size_t n_, pos_ = 0;
  bool bad_ = false;
};

// Removes emulation-prevention bytes (00 00 03) into out; returns the RBSP size.
size_t unescape(const uint8_t* in, size_t n, uint8_t* out, size_t cap) {
  size_t o = 0, zeros = 0;
  for (size_t i = 0; i < n && o < cap; ++i) {
    if (zeros >= 2 && in[i] == 3) {
      zeros = 0;
      continue;
    }
    zeros = in[i] == 0 ? zeros + 1 : 0;
    out[o++] = in[i];
  }
  return o;
}

bool h264_sps(Bits& b, uint32_t& w, uint32_t& h) {
  uint32_t profile = b.u(8);
  b.skip(16);  // constraint flags, level
  b.ue();      // sps id
  uint32_t chroma = 1;
  if (profile == 100 || profile == 110 || profile == 122 || profile == 244 || profile == 44 || profile == 83 ||
      profile == 86 || profile == 118 || profile == 128 || profile == 138 || profile == 139 || profile == 134 ||
      profile == 135) {
    chroma = b.ue();
    if (chroma == 3) b.u(1);
    b.ue();
    b.ue();
    b.u(1);
    if (b.u(1)) {  // seq_scaling_matrix_present_flag
      for (int i = 0; i < (chroma != 3 ? 8 : 12); ++i) {
        if (!b.u(1)) continue;
        int size = i < 6 ? 16 : 64, last = 8, next = 8;
        for (int j = 0; j < size && !b.bad(); ++j) {
          if (next != 0) next = (last + b.se() + 256) % 256;
          last = next == 0 ? last : next;
        }
      }
    }
  }
  b.ue();  // log2_max_frame_num_minus4
  uint32_t poc = b.ue();
  if (poc == 0) {
    b.ue();
  } else if (poc == 1) {
    b.u(1);
    b.se();
    b.se();
    uint32_t n = b.ue();
    if (n > 255) return false;
    for (uint32_t i = 0; i < n; ++i) b.se();
  }
  b.ue();
  b.u(1);
  uint32_t wmb = b.ue() + 1, hmu = b.ue() + 1;
  uint32_t fmo = b.u(1);
  if (!fmo) b.u(1);
  b.u(1);
  uint32_t l = 0, r = 0, t = 0, bo = 0;
  if (b.u(1)) {
    l = b.ue();
    r = b.ue();
    t = b.ue();
    bo = b.ue();
  }
  if (b.bad() || wmb > 1024 || hmu > 1024) return false;
  uint32_t cx = chroma == 0 ? 1 : (chroma == 3 ? 1 : 2);
  uint32_t cy = (chroma == 1 ? 2 : 1) * (2 - fmo);
  uint32_t fw = wmb * 16, fh = (2 - fmo) * hmu * 16;
  if (cx * (l + r) >= fw || cy * (t + bo) >= fh) return false;
  w = fw - cx * (l + r);
  h = fh - cy * (t + bo);
  return true;
}

bool h265_sps(Bits& b, uint32_t& w, uint32_t& h) {
  b.u(4);
  uint32_t max_sub = b.u(3);
  b.u(1);
  b.skip(96);  // general profile_tier_level + level_idc
  bool prof[8] = {}, lvl[8] = {};
  for (uint32_t i = 0; i < max_sub; ++i) {
    prof[i] = b.u(1);
    lvl[i] = b.u(1);
  }
  if (max_sub > 0)
    for (uint32_t i = max_sub; i < 8; ++i) b.u(2);
  for (uint32_t i = 0; i < max_sub; ++i) {
    if (prof[i]) b.skip(88);
    if (lvl[i]) b.skip(8);
  }
  b.ue();  // sps id
  uint32_t chroma = b.ue();
  if (chroma == 3) b.u(1);
  uint32_t pw = b.ue(), ph = b.ue();
  uint32_t l = 0, r = 0, t = 0, bo = 0;
  if (b.u(1)) {
    l = b.ue();
    r = b.ue();
    t = b.ue();
    bo = b.ue();
  }
  if (b.bad() || pw == 0 || ph == 0 || pw > 16384 || ph > 16384) return false;
  uint32_t cx = (chroma == 1 || chroma == 2) ? 2 : 1, cy = chroma == 1 ? 2 : 1;
  if (cx * (l + r) >= pw || cy * (t + bo) >= ph) return false;
  w = pw - cx * (l + r);
  h = ph - cy * (t + bo);
  return true;
}

// The first SPS NAL unit of an Annex-B access unit.
bool find_sps(uint32_t codec, const uint8_t* p, size_t n, const uint8_t** nal, size_t* len) {
  size_t i = 0;
  while (i + 3 < n) {
    if (p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1) {
      size_t start = i + 3, end = start;
      while (end + 2 < n && !(p[end] == 0 && p[end + 1] == 0 && (p[end + 2] == 1 || p[end + 2] == 0))) ++end;
      if (end + 2 >= n) end = n;
      uint8_t type = codec == JN_CODEC_H265 ? (p[start] >> 1) & 0x3F : p[start] & 0x1F;
      if (start < n && type == (codec == JN_CODEC_H265 ? 33 : 7)) {
        *nal = p + start;
        *len = end - start;
        return true;
      }
      i = end;
    } else {
      ++i;
    }
  }
  return false;
}

}  // namespace

bool sps_resolution(uint32_t codec, const uint8_t* nal, size_t size, uint32_t& width, uint32_t& height) {
  uint8_t rbsp[512];
  size_t hdr = codec == JN_CODEC_H265 ? 2 : 1;
  if (size <= hdr) return false;
  size_t n = unescape(nal + hdr, size - hdr, rbsp, sizeof rbsp);
  Bits b(rbsp, n);
  if (codec == JN_CODEC_H264) return h264_sps(b, width, height);
  if (codec == JN_CODEC_H265) return h265_sps(b, width, height);
  return false;
}

// --- the receiver ---

struct StreamReceiver::DemuxSink final {  // a FrameSink
  StreamReceiver& r;
  StreamReceiver::Sink& out;
  DemuxSink(StreamReceiver& rr, StreamReceiver::Sink& o) : r(rr), out(o) {}
  void on_frame(const FrameView& f) {
    if (f.meta.kind == JN_MEDIA_VIDEO) {
      ++r.video_frames_;
      ++r.win_frames_;
      r.video_codec_ = f.meta.codec;
      if (f.meta.frame_flags & JN_MF_KEY) {
        ++r.keyframes_;
        const uint8_t* nal = nullptr;
        size_t len = 0;
        uint32_t w = 0, h = 0;
        if (find_sps(f.meta.codec, f.data, f.size, &nal, &len) && sps_resolution(f.meta.codec, nal, len, w, h)) {
          r.width_ = w;
          r.height_ = h;
        }
      }
    } else {
      ++r.audio_frames_;
      r.audio_codec_ = f.meta.codec;
    }
    out.on_frame(f);
  }
  void on_error(PsError e, const char* detail) {
    if (e == PsError::FrameTooLarge) {
      ++r.oversized_;
      out.on_problem(Problem::Oversized, detail);
    } else if (e != PsError::Loss) {
      ++r.demux_errors_;
      out.on_problem(Problem::Demux, detail);
    }
  }
};

struct StreamReceiver::TcpSink final : Rfc4571Deframer::Sink {
  StreamReceiver& r;
  StreamReceiver::Sink& out;
  TcpSink(StreamReceiver& rr, StreamReceiver::Sink& o) : r(rr), out(o) {}
  void on_packet(Rfc4571Deframer::Kind kind, const uint8_t* data, size_t size, uint8_t) override {
    DemuxSink ds(r, out);
    if (kind == Rfc4571Deframer::Kind::Rtp) {
      r.rtp_packet(data, size, ds, out);
    } else if (kind == Rfc4571Deframer::Kind::Ps) {
      out.on_ps_bytes(data, size);
      r.rtp_->demuxer().feed(data, size, ds);
    }
  }
  void on_error(const char* reason) override {
    // Bare PS has no sequence numbers: tell the demuxer bytes are gone. RTP's gap shows itself.
    if (r.tcp_->framing() == junction::media::TcpFraming::RawPs) {
      DemuxSink ds(r, out);
      r.rtp_->demuxer().mark_loss(ds);
    }
    out.on_problem(Problem::TcpResync, reason);
  }
};

StreamReceiver::StreamReceiver(const ReceiverConfig& cfg) : cfg_(cfg) {
  rebuild(cfg.ssrc, false, cfg.payload_type);
  if (cfg_.transport != Transport::Udp) {
    Rfc4571Config tc;
    tc.payload_type = cfg.payload_type;
    tcp_ = std::make_unique<Rfc4571Deframer>(tc);
  }
}

void StreamReceiver::rebuild(uint32_t ssrc, bool pinned, int pt) {
  if (rtp_) {
    const auto& s = rtp_->stats();
    carried_packets_ += s.packets;
    carried_wrong_ssrc_ += s.wrong_ssrc;
    carried_wrong_pt_ += s.wrong_pt;
    carried_malformed_ += s.malformed;
  }
  PsRtpReceiverConfig rc;
  rc.payload_type = pt;
  rc.ssrc = ssrc;
  rc.ssrc_from_first = !pinned;
  rc.reorder_window = cfg_.transport == Transport::Udp ? cfg_.reorder_window : 0;
  rc.max_packet = 1500;  // what can wait out of order (RTP header included); in-order packets go through at any size
  rc.demux.max_video_frame = cfg_.max_video_frame;
  rtp_ = std::make_unique<PsRtpReceiver>(rc);
  cfg_.payload_type = pt;
}

void StreamReceiver::adopt_answer(bool has_ssrc, uint32_t ssrc, int payload_type) {
  bool nothing_yet = rtp_->stats().packets == 0 && rtp_->stats().wrong_ssrc == 0;
  if (nothing_yet) {
    // y=0 or no y=: learn it from the stream; otherwise the answer's is the stream's.
    rebuild(ssrc, has_ssrc && ssrc != 0, payload_type);
  }
  // Packets already flow: the first SSRC was taken; a persistent other one is followed anyway.
}

uint64_t StreamReceiver::packets() const { return carried_packets_ + rtp_->stats().packets; }

void StreamReceiver::rtp_packet(const uint8_t* data, size_t size, junction::media::FrameSink ds, Sink& out) {
  const auto& s = rtp_->stats();
  uint64_t ws = s.wrong_ssrc, wp = s.wrong_pt, mf = s.malformed;
  rtp_->on_rtp(data, size, ds);
  if (s.wrong_ssrc != ws) out.on_problem(Problem::WrongSsrc, "RTP of another SSRC ignored");
  else if (s.wrong_pt != wp) out.on_problem(Problem::WrongPt, "RTP of another payload type ignored");
  else if (s.malformed != mf) out.on_problem(Problem::Malformed, "not an RTP packet");
}

void StreamReceiver::on_datagram(const uint8_t* data, size_t size, uint64_t now_ms, Sink& sink) {
  last_packet_ms_ = now_ms;
  bytes_ += size;
  win_bytes_ += size;
  DemuxSink ds(*this, sink);
  rtp_packet(data, size, ds, sink);
}

void StreamReceiver::on_tcp_bytes(const uint8_t* data, size_t size, uint64_t now_ms, Sink& sink) {
  last_packet_ms_ = now_ms;
  bytes_ += size;
  win_bytes_ += size;
  TcpSink ts(*this, sink);
  tcp_->feed(data, size, ts);
}

void StreamReceiver::flush_reorder(Sink& sink) {
  DemuxSink ds(*this, sink);
  rtp_->flush_reorder(ds);
}

void StreamReceiver::finish(Sink& sink) {
  if (tcp_) {
    TcpSink ts(*this, sink);
    tcp_->finish(ts);
  }
  DemuxSink ds(*this, sink);
  rtp_->finish(ds);
}

namespace {
constexpr uint32_t kRxBlobMagic = 0x47425232;  // "GBR2": GBR1 + the TCP deframer's state
template <class T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T>
bool get(std::string_view& in, T& v) {
  if (in.size() < sizeof v) return false;
  std::memcpy(&v, in.data(), sizeof v);
  in.remove_prefix(sizeof v);
  return true;
}
}  // namespace

std::string StreamReceiver::save(Sink& sink) {
  (void)sink;  // nothing is flushed: a TCP packet held or cut by the swap travels in the blob
  std::string out;
  put(out, kRxBlobMagic);
  for (uint64_t v : {bytes_, tcp_bytes_, keyframes_, last_packet_ms_, video_frames_, audio_frames_, oversized_,
                     demux_errors_, carried_packets_, carried_wrong_ssrc_, carried_wrong_pt_, carried_malformed_})
    put(out, v);
  for (uint32_t v : {width_, height_, video_codec_, audio_codec_}) put(out, v);
  const std::vector<uint8_t> tcp = tcp_ ? tcp_->save() : std::vector<uint8_t>{};
  put(out, static_cast<uint32_t>(tcp.size()));
  out.append(reinterpret_cast<const char*>(tcp.data()), tcp.size());
  std::vector<uint8_t> rtp;
  rtp_->save(rtp);
  out.append(reinterpret_cast<const char*>(rtp.data()), rtp.size());
  return out;
}

bool StreamReceiver::restore(std::string_view in) {
  uint32_t magic = 0, tcp_len = 0;
  uint64_t c[12];
  uint32_t d[4];
  bool ok = get(in, magic) && magic == kRxBlobMagic;
  for (auto& v : c) ok = ok && get(in, v);
  for (auto& v : d) ok = ok && get(in, v);
  ok = ok && get(in, tcp_len) && tcp_len <= in.size() && (tcp_len == 0 || tcp_);
  if (!ok) return false;
  // The deframer first (it only takes a state it wrote), then the RTP receiver on the rest.
  if (tcp_len && !tcp_->restore(reinterpret_cast<const uint8_t*>(in.data()), tcp_len)) return false;
  in.remove_prefix(tcp_len);
  if (!rtp_->restore(reinterpret_cast<const uint8_t*>(in.data()), in.size())) return false;
  bytes_ = c[0], tcp_bytes_ = c[1], keyframes_ = c[2], last_packet_ms_ = c[3], video_frames_ = c[4];
  audio_frames_ = c[5], oversized_ = c[6], demux_errors_ = c[7], carried_packets_ = c[8];
  carried_wrong_ssrc_ = c[9], carried_wrong_pt_ = c[10], carried_malformed_ = c[11];
  width_ = d[0], height_ = d[1], video_codec_ = d[2], audio_codec_ = d[3];
  return true;
}

void StreamReceiver::roll_window(uint64_t now_ms) {
  if (!win_started_) {
    win_started_ = true;
    win_start_ms_ = now_ms;
    win_frames_ = win_bytes_ = 0;
    return;
  }
  uint64_t span = now_ms - win_start_ms_;
  if (span == 0) return;
  fps_ = static_cast<double>(win_frames_) * 1000.0 / static_cast<double>(span);
  bitrate_ = static_cast<double>(win_bytes_) * 8000.0 / static_cast<double>(span);
  win_start_ms_ = now_ms;
  win_frames_ = win_bytes_ = 0;
}

void StreamReceiver::fill(Stats& o) const {
  const auto& s = rtp_->stats();
  const auto& d = rtp_->demuxer().stats();
  o.ssrc = rtp_->ssrc();
  o.packets = carried_packets_ + s.packets;
  o.bytes = bytes_;
  o.lost = s.lost;
  o.reordered = s.reordered;
  o.duplicates = s.duplicates;
  o.late = s.late;
  o.wrong_ssrc = carried_wrong_ssrc_ + s.wrong_ssrc;
  o.wrong_pt = carried_wrong_pt_ + s.wrong_pt;
  o.malformed = carried_malformed_ + s.malformed;
  o.oversized = oversized_ + s.too_large;
  if (tcp_) {
    o.tcp_resyncs = tcp_->stats().resyncs;
    o.tcp_skipped_bytes = tcp_->stats().skipped_bytes;
  }
  o.video_frames = video_frames_;
  o.audio_frames = audio_frames_;
  o.keyframes = keyframes_;
  o.dropped_frames = d.dropped_frames;
  o.demux_resyncs = d.resyncs;
  o.video_codec = video_codec_;
  o.audio_codec = audio_codec_;
  o.width = width_;
  o.height = height_;
  o.fps = fps_;
  o.bitrate_bps = bitrate_;
  o.last_packet_ms = last_packet_ms_;
  o.marker_frames = d.marker_frames;
  // "none": the device sets no marker (frames close when the next one starts).
  o.marker_mode = d.markers == 0 ? "none" : junction::media::to_string(rtp_->demuxer().marker_mode());
}

}  // namespace gb::media
