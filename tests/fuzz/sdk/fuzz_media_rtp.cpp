// sdk/media depacketizers (and the reorder buffer) on arbitrary packet sequences. One source,
// one target per depacketizer (JN_FUZZ_RTP: 1 H.264, 2 H.265, 3 AAC, 4 G.711/Opus, 5 reorder).
// Input: byte 0 picks options (MTU, Opus or PCMA), then packets as [length: 2 bytes BE][bytes].
// Invariants (abort when broken): frame numbers only grow and a skipped one is followed by
// DISCONT; no frame is flagged CORRUPT; video frames are Annex-B with a start code first, KEY
// exactly when a keyframe NAL unit is inside; each frame goes through the packetizer (every
// packet within the MTU, markers on the last packet) and a fresh depacketizer back unchanged;
// the reorder buffer delivers increasing sequence numbers, never one twice, holds at most depth.
#include <junction/media/aac_rtp.hpp>
#include <junction/media/annexb.hpp>
#include <junction/media/audio_rtp.hpp>
#include <junction/media/h264_rtp.hpp>
#include <junction/media/h265_rtp.hpp>
#include <junction/media/reorder.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#ifndef JN_FUZZ_RTP
#define JN_FUZZ_RTP 1
#endif

using namespace junction::media;

namespace {

constexpr const char* kAacFmtp = "mode=AAC-hbr;sizeLength=13;indexLength=3;indexDeltaLength=3;config=1190";

std::unique_ptr<RtpDepacketizer> make_dp(uint8_t opts) {
  DepacketizerConfig c;
  c.max_frame = 64 * 1024;
  switch (JN_FUZZ_RTP) {
    case 1: return std::make_unique<H264Depacketizer>(c);
    case 2: return std::make_unique<H265Depacketizer>(c);
    case 3:
      c.clock_rate = 48000;
      c.fmtp = kAacFmtp;
      return std::make_unique<AacDepacketizer>(c);
    default: c.codec = (opts & 1) ? JN_CODEC_OPUS : JN_CODEC_PCMA; return std::make_unique<AudioDepacketizer>(c);
  }
}

std::unique_ptr<RtpPacketizer> make_pk(uint8_t opts, size_t mtu) {
  PacketizerConfig c;
  c.mtu = mtu;
  c.first_seq = 65530;
  switch (JN_FUZZ_RTP) {
    case 1: return std::make_unique<H264Packetizer>(c, 1);
    case 2: return std::make_unique<H265Packetizer>(c);
    case 3: c.clock_rate = 48000; return std::make_unique<AacPacketizer>(c);
    default: return std::make_unique<AudioPacketizer>(c, (opts & 1) ? JN_CODEC_OPUS : JN_CODEC_PCMA);
  }
}

bool has_key(const FrameView& f) {
  bool key = false;
  annexb::for_each_nal(f.data, f.size, [&](const uint8_t* p, size_t) {
    key |= JN_FUZZ_RTP == 2 ? annexb::h265::is_irap(annexb::h265::type(p[0]))
                            : annexb::h264::type(p[0]) == annexb::h264::kIdr;
    return true;
  });
  return key;
}

// The frame as for_each_nal reads it, rewritten with 4-byte start codes: the same bytes unless
// a NAL unit's payload itself holds a start code or ends in zeros (then re-parsing differs).
bool canonical(const FrameView& f) {
  size_t pos = 0;
  bool same = true;
  annexb::for_each_nal(f.data, f.size, [&](const uint8_t* p, size_t n) {
    same = same && pos + 4 + n <= f.size && p == f.data + pos + 4 && std::memcmp(f.data + pos, "\0\0\0\1", 4) == 0;
    pos += 4 + n;
    return same;
  });
  return same && pos == f.size;
}

struct Check {
  uint8_t opts;
  size_t mtu;
  bool have = false;
  uint32_t last_seq = 0;
  size_t frames = 0;

  void operator()(const FrameView& f) {
    ++frames;
    if (f.meta.frame_flags & JN_MF_CORRUPT) std::abort();
    if (have) {
      if (f.meta.seq <= last_seq) std::abort();
      if (f.meta.seq != last_seq + 1 && !(f.meta.frame_flags & JN_MF_DISCONT)) std::abort();
    }
    have = true;
    last_seq = f.meta.seq;
    if (f.size == 0 || !f.data) std::abort();
    if (JN_FUZZ_RTP <= 2) {
      if (f.size < 5 || std::memcmp(f.data, "\0\0\0\1", 4) != 0) std::abort();
      // The depacketizer refuses NAL units that would re-parse differently (a start code inside,
      // a trailing zero): every frame is its own canonical Annex-B form.
      if (!canonical(f)) std::abort();
      if (((f.meta.frame_flags & JN_MF_KEY) != 0) != has_key(f)) {
        std::fprintf(stderr, "frame of %zu bytes: flags %u, keyframe NAL unit inside: %d\n", f.size, f.meta.frame_flags,
                     has_key(f));
        for (size_t k = 0; k < f.size; ++k) std::fprintf(stderr, "%02x", f.data[k]);
        std::fprintf(stderr, "\n");
        std::abort();
      }
    }
    if (JN_FUZZ_RTP == 3 && (f.meta.frame_flags & JN_MF_CONFIG)) return;
    if (JN_FUZZ_RTP == 3 && f.size >= 8192) return;  // AAC-hbr sizes are 13 bits
    // Round trip through the packetizer and a fresh depacketizer.
    auto pk = make_pk(opts, mtu);
    std::vector<std::vector<uint8_t>> pkts;
    auto on_pkt = [&](const uint8_t* p, size_t n) {
      if (n > mtu) std::abort();
      pkts.emplace_back(p, p + n);
    };
    FrameView in = f;
    in.meta.frame_flags &= ~static_cast<uint32_t>(JN_MF_DISCONT);
    RtpError e = pk->packetize(in, packet_sink(on_pkt));
    if (e != RtpError::None) {
      // Refusals the format allows: an Opus packet larger than the MTU, a H.265 NAL unit of its
      // header alone (nothing to fragment).
      if (e == RtpError::TooLarge || e == RtpError::BadFrame) return;
      std::abort();
    }
    if (pkts.empty()) std::abort();
    if (JN_FUZZ_RTP <= 2 && !(pkts.back()[1] & 0x80)) std::abort();
    for (size_t i = 0; i + 1 < pkts.size() && JN_FUZZ_RTP <= 3; ++i)
      if (pkts[i][1] & 0x80) std::abort();
    auto dp = make_dp(opts);
    std::vector<uint8_t> back;
    size_t n_back = 0;
    auto on_frame = [&](const FrameView& g) {
      if (JN_FUZZ_RTP == 3 && (g.meta.frame_flags & JN_MF_CONFIG)) return;
      back.insert(back.end(), g.data, g.data + g.size);
      ++n_back;
    };
    for (auto& p : pkts) {
      RtpError e2 = dp->push(p.data(), p.size(), frame_sink(on_frame));
      if (e2 != RtpError::None) {
        std::fprintf(stderr, "own packet of %zu bytes (of %zu) refused: %s\n", p.size(), pkts.size(), to_string(e2));
        std::abort();
      }
    }
    dp->flush(frame_sink(on_frame));
    // Audio frames larger than the MTU come back as several (G.711 splits at any byte).
    if (JN_FUZZ_RTP != 4 && n_back != 1) std::abort();
    if (back.size() != f.size || std::memcmp(back.data(), f.data, f.size) != 0) std::abort();
  }
};

void fuzz_reorder(const uint8_t* data, size_t size) {
  ReorderBuffer rb(16, 256, 1000);
  ReorderBuffer::Packet out;
  uint64_t now = 0;
  bool have = false;
  uint16_t last = 0;
  uint64_t restarts = 0;
  size_t off = 1;
  auto check = [&](const ReorderBuffer::Packet& p) {
    if (rb.stats().restarts != restarts) {  // a restart starts a new sequence
      restarts = rb.stats().restarts;
      have = false;
    }
    if (have && static_cast<uint16_t>(p.seq - last) != 1 + p.lost_before) std::abort();
    if (p.len < 12 || (static_cast<uint16_t>((p.data[2] << 8) | p.data[3])) != p.seq) std::abort();
    have = true;
    last = p.seq;
  };
  while (off + 2 <= size) {
    size_t n = static_cast<size_t>((data[off] << 8) | data[off + 1]);
    off += 2;
    if (n > size - off) n = size - off;
    now += data[off - 1] * 10;
    rb.push(data + off, n, now);
    if (rb.held() > 16) std::abort();
    while (rb.pop(now, out)) check(out);
    off += n;
  }
  while (rb.drain(out)) check(out);
  if (rb.held() != 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  if (JN_FUZZ_RTP == 5) {
    fuzz_reorder(data, size);
    return 0;
  }
  uint8_t opts = data[0];
  size_t mtu = 64 + static_cast<size_t>(opts >> 1) * 12;  // 64 .. 1588
  auto dp = make_dp(opts);
  if (!dp->ok()) std::abort();
  Check check{opts, mtu};
  size_t off = 1;
  while (off + 2 <= size) {
    size_t n = static_cast<size_t>((data[off] << 8) | data[off + 1]);
    off += 2;
    if (n > size - off) n = size - off;
    dp->push(data + off, n, frame_sink(check));
    off += n;
  }
  dp->flush(frame_sink(check));
  return 0;
}
