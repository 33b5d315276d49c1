// The sdk/media RTP packetizers against real streams (tests/integration/test_media_rtp_ffmpeg.py):
//   media_rtp_tool roundtrip CODEC ES OUT [--reorder] [--loss PCT]
//       ES (an ffmpeg elementary stream: Annex-B H.264/H.265, raw A-law/mu-law) -> frames -> RTP
//       (MTU 1200) -> [reorder buffer] -> frames, written to OUT; prints one JSON line of counts.
//       --reorder swaps neighbouring packets and sends some twice (through a ReorderBuffer);
//       --loss drops PCT % of the packets and checks each frame that comes out equals its input;
//       --seed N picks the loss / reorder pattern.
//   media_rtp_tool sdp CODEC ES PORT      prints an SDP for the stream sent to 127.0.0.1:PORT
//   media_rtp_tool send CODEC ES PORT     sends the stream as RTP to 127.0.0.1:PORT
//   media_rtp_tool recv CODEC PORT OUT [FMTP]
//       receives RTP (and RTCP, muxed) on 127.0.0.1:PORT from ffmpeg's RTP muxer (another
//       implementation) until its RTCP BYE, depacketizes, writes the frames to OUT; prints one
//       JSON line when listening and one of counts at the end.
// CODEC: h264 | h265 | pcma | pcmu. Frames: one access unit (video, 90 kHz, 25 fps) or 160
// samples (G.711, 20 ms).
#include "media_rtp_es.hpp"

#include <junction/media/audio_rtp.hpp>
#include <junction/media/h264_rtp.hpp>
#include <junction/media/h265_rtp.hpp>
#include <junction/media/reorder.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace junction::media;
namespace proto = junction::proto;

namespace {

struct Stream {
  uint32_t codec = 0;
  bool video = false;
  std::vector<uint8_t> es;
  std::vector<std::pair<size_t, size_t>> frames;  // (offset, length)
  uint32_t clock = 0;
  int64_t ticks = 0;  // per frame
};

bool load(const std::string& codec, const std::string& path, Stream& s) {
  s.es = media_rtp_es::read_file(path);
  if (s.es.empty()) return false;
  if (codec == "h264" || codec == "h265") {
    s.codec = codec == "h264" ? JN_CODEC_H264 : JN_CODEC_H265;
    s.video = true;
    s.clock = 90000;
    s.ticks = 3600;
    s.frames = media_rtp_es::split_aus(s.es, codec == "h265");
  } else if (codec == "pcma" || codec == "pcmu") {
    s.codec = codec == "pcma" ? JN_CODEC_PCMA : JN_CODEC_PCMU;
    s.clock = 8000;
    s.ticks = 160;
    for (size_t off = 0; off < s.es.size(); off += 160) s.frames.emplace_back(off, std::min<size_t>(160, s.es.size() - off));
  } else {
    return false;
  }
  return !s.frames.empty();
}

std::unique_ptr<RtpPacketizer> packetizer(const Stream& s, uint16_t seq0) {
  PacketizerConfig pc;
  pc.ssrc = 0x4a4e4354;
  pc.first_seq = seq0;
  pc.ts_offset = 0x12345678;
  pc.mtu = 1200;
  pc.payload_type = s.codec == JN_CODEC_PCMA ? 8 : s.codec == JN_CODEC_PCMU ? 0 : 96;
  if (s.codec == JN_CODEC_H264) return std::make_unique<H264Packetizer>(pc, 1);
  if (s.codec == JN_CODEC_H265) return std::make_unique<H265Packetizer>(pc);
  return std::make_unique<AudioPacketizer>(pc, s.codec);
}

std::unique_ptr<RtpDepacketizer> depacketizer(const Stream& s) {
  DepacketizerConfig dc;
  dc.codec = s.codec;
  if (s.codec == JN_CODEC_H264) return std::make_unique<H264Depacketizer>(dc);
  if (s.codec == JN_CODEC_H265) return std::make_unique<H265Depacketizer>(dc);
  return std::make_unique<AudioDepacketizer>(dc);
}

FrameView frame(const Stream& s, size_t i) {
  FrameView f;
  f.data = s.es.data() + s.frames[i].first;
  f.size = s.frames[i].second;
  f.meta.pts = f.meta.dts = static_cast<int64_t>(i) * s.ticks;
  f.meta.clock_rate = s.clock;
  f.meta.codec = s.codec;
  return f;
}

// The frame as the depacketizer must give it back: every NAL unit behind a 4-byte start code.
std::vector<uint8_t> normalized(const Stream& s, size_t i) {
  if (!s.video) return std::vector<uint8_t>(s.es.begin() + s.frames[i].first, s.es.begin() + s.frames[i].first + s.frames[i].second);
  std::vector<uint8_t> out;
  annexb::for_each_nal(s.es.data() + s.frames[i].first, s.frames[i].second, [&](const uint8_t* p, size_t n) {
    out.insert(out.end(), {0, 0, 0, 1});
    out.insert(out.end(), p, p + n);
    return true;
  });
  return out;
}

int roundtrip(const Stream& s, const std::string& out_path, bool reorder, int loss_pct, unsigned seed) {
  auto pk = packetizer(s, 65000);  // wraps within the first seconds
  std::vector<std::vector<uint8_t>> pkts;
  size_t max_len = 0, markers = 0, bad_markers = 0;
  auto on_packet = [&](const uint8_t* p, size_t n) {
    pkts.emplace_back(p, p + n);
    max_len = std::max(max_len, n);
  };
  for (size_t i = 0; i < s.frames.size(); ++i) {
    size_t before = pkts.size();
    RtpError e = pk->packetize(frame(s, i), packet_sink(on_packet));
    if (e != RtpError::None) {
      std::fprintf(stderr, "frame %zu refused: %s\n", i, to_string(e));
      return 1;
    }
    // Video: the marker on the last packet of each unit, nowhere else.
    for (size_t k = before; k < pkts.size(); ++k) {
      bool m = pkts[k][1] & 0x80;
      markers += m;
      if (s.video && m != (k + 1 == pkts.size())) ++bad_markers;
    }
  }
  std::mt19937 rng(seed);
  std::vector<std::vector<uint8_t>> wire;
  size_t dropped = 0;
  for (auto& p : pkts) {
    // The first packet stays: a loss before the first packet a receiver sees cannot be told from
    // a stream that starts later (the unit it opens would look whole).
    if (loss_pct && &p != &pkts.front() && static_cast<int>(rng() % 100) < loss_pct) {
      ++dropped;
      continue;
    }
    wire.push_back(p);
    if (reorder && rng() % 10 == 0) wire.push_back(p);  // a duplicate
  }
  if (reorder)
    for (size_t i = 2; i + 1 < wire.size(); i += 2)  // the first stays first: it sets the sequence
      if (rng() % 3 == 0) std::swap(wire[i], wire[i + 1]);

  auto dp = depacketizer(s);
  std::vector<uint8_t> out;
  size_t frames_out = 0, mismatched = 0;
  int64_t pts0 = 0x12345678;
  auto on_frame = [&](const FrameView& f) {
    size_t idx = static_cast<size_t>((f.meta.pts - pts0) / s.ticks);
    if (idx >= s.frames.size() || normalized(s, idx) != std::vector<uint8_t>(f.data, f.data + f.size)) {
      ++mismatched;
      std::fprintf(stderr, "frame %zu (pts %lld, seq %u) differs: %zu bytes, expected %zu\n", idx,
                   static_cast<long long>(f.meta.pts), f.meta.seq, f.size, idx < s.frames.size() ? normalized(s, idx).size() : 0);
    }
    out.insert(out.end(), f.data, f.data + f.size);
    ++frames_out;
  };
  ReorderBuffer rb(64, 1500, 100'000'000);
  ReorderBuffer::Packet rp;
  for (auto& p : wire) {
    if (reorder) {
      rb.push(p.data(), p.size(), 1);
      while (rb.pop(1, rp)) dp->push(rp.data, rp.len, frame_sink(on_frame));
    } else {
      dp->push(p.data(), p.size(), frame_sink(on_frame));
    }
  }
  while (reorder && rb.drain(rp)) dp->push(rp.data, rp.len, frame_sink(on_frame));
  dp->flush(frame_sink(on_frame));
  FILE* f = std::fopen(out_path.c_str(), "wb");
  if (!f || std::fwrite(out.data(), 1, out.size(), f) != out.size()) return 1;
  std::fclose(f);
  std::printf(
      "{\"frames_in\": %zu, \"frames_out\": %zu, \"packets\": %zu, \"max_packet\": %zu, \"markers\": %zu, "
      "\"bad_markers\": %zu, \"lost\": %zu, \"frames_dropped\": %llu, \"mismatched\": %zu, \"duplicates\": %llu}\n",
      s.frames.size(), frames_out, pkts.size(), max_len, markers, bad_markers, dropped,
      static_cast<unsigned long long>(dp->stats().frames_dropped), mismatched,
      static_cast<unsigned long long>(rb.stats().duplicates));
  return 0;
}

int sdp(const Stream& s, int port) {
  std::printf("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=junction media_rtp_tool\nc=IN IP4 127.0.0.1\nt=0 0\n");
  if (s.codec == JN_CODEC_H264) {
    // The first keyframe's parameter sets for the fmtp (x264 also repeats them in band).
    std::string sprop;
    for (size_t i = 0; i < s.frames.size() && sprop.empty(); ++i)
      sprop = h264_sprop_parameter_sets(s.es.data() + s.frames[i].first, s.frames[i].second);
    std::printf("m=video %d RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=1;sprop-parameter-sets=%s\n",
                port, sprop.c_str());
  } else if (s.codec == JN_CODEC_H265) {
    std::string sprop;
    for (size_t i = 0; i < s.frames.size() && sprop.empty(); ++i)
      sprop = h265_sprop_parameters(s.es.data() + s.frames[i].first, s.frames[i].second);
    std::printf("m=video %d RTP/AVP 96\na=rtpmap:96 H265/90000\na=fmtp:96 %s\n", port, sprop.c_str());
  } else {
    int pt = s.codec == JN_CODEC_PCMA ? 8 : 0;
    std::printf("m=audio %d RTP/AVP %d\na=rtpmap:%d %s/8000\n", port, pt, pt, pt == 8 ? "PCMA" : "PCMU");
  }
  return 0;
}

int send(const Stream& s, int port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only
  auto pk = packetizer(s, 65500);
  size_t sent = 0;
  auto on_packet = [&](const uint8_t* p, size_t n) {
    if (::sendto(fd, p, n, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == static_cast<ssize_t>(n)) ++sent;
    // Pacing, not synchronisation: the receiver's socket buffer must not overflow.
    if (sent % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
  };
  for (size_t i = 0; i < s.frames.size(); ++i) {
    if (pk->packetize(frame(s, i), packet_sink(on_packet)) != RtpError::None) return 1;
    std::this_thread::sleep_for(std::chrono::microseconds(s.video ? 2000 : 300));
  }
  if (s.video) {
    // ffmpeg's parser closes an access unit when the next one begins: an AUD after the last
    // unit lets it decode that one now instead of at the end of input (a UDP timeout away).
    static const uint8_t aud264[] = {0, 0, 0, 1, 0x09, 0xf0}, aud265[] = {0, 0, 0, 1, 0x46, 0x01, 0x50};
    FrameView f = frame(s, 0);
    f.data = s.codec == JN_CODEC_H264 ? aud264 : aud265;
    f.size = s.codec == JN_CODEC_H264 ? sizeof aud264 : sizeof aud265;
    f.meta.pts = f.meta.dts = static_cast<int64_t>(s.frames.size()) * s.ticks;
    if (pk->packetize(f, packet_sink(on_packet)) != RtpError::None) return 1;
  }
  ::close(fd);
  std::printf("{\"frames\": %zu, \"packets\": %zu}\n", s.frames.size(), sent);
  return 0;
}

int recv(const std::string& codec, int port, const std::string& out_path, const std::string& fmtp) {
  DepacketizerConfig dc;
  dc.fmtp = fmtp;
  std::unique_ptr<RtpDepacketizer> dp;
  if (codec == "h264") dp = std::make_unique<H264Depacketizer>(dc);
  if (codec == "h265") dp = std::make_unique<H265Depacketizer>(dc);
  if (codec == "pcma" || codec == "pcmu") {
    dc.codec = codec == "pcma" ? JN_CODEC_PCMA : JN_CODEC_PCMU;
    dp = std::make_unique<AudioDepacketizer>(dc);
  }
  if (!dp || !dp->ok()) return 2;
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  int rcvbuf = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in me{};
  me.sin_family = AF_INET;
  me.sin_port = htons(static_cast<uint16_t>(port));
  me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof me) != 0) return 1;
  timeval tv{5, 0};  // the end of the stream: an RTCP BYE (or 5 s without packets)
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::printf("{\"listening\": %d}\n", port);
  std::fflush(stdout);
  std::vector<uint8_t> out, pkt(65536);
  size_t frames = 0, keys = 0, packets = 0, refused = 0;
  auto on_frame = [&](const FrameView& f) {
    out.insert(out.end(), f.data, f.data + f.size);
    ++frames;
    keys += (f.meta.frame_flags & JN_MF_KEY) != 0;
  };
  bool started = false;
  for (;;) {
    ssize_t n = ::recv(fd, pkt.data(), pkt.size(), 0);
    if (n <= 0) {
      if (started) break;
      continue;  // wait for the sender's first packet
    }
    started = true;
    if (proto::rtp::looks_like_rtcp(pkt.data(), static_cast<size_t>(n))) {
      proto::rtp::RtcpInfo info;
      if (proto::rtp::parse_rtcp(pkt.data(), static_cast<size_t>(n), info) == proto::rtp::Error::None && info.has_bye) break;
      continue;
    }
    ++packets;
    RtpError e = dp->push(pkt.data(), static_cast<size_t>(n), frame_sink(on_frame));
    if (e != RtpError::None) {
      ++refused;
      std::fprintf(stderr, "packet %zu refused: %s\n", packets, to_string(e));
    }
  }
  dp->flush(frame_sink(on_frame));
  ::close(fd);
  FILE* f = std::fopen(out_path.c_str(), "wb");
  if (!f || std::fwrite(out.data(), 1, out.size(), f) != out.size()) return 1;
  std::fclose(f);
  std::printf("{\"packets\": %zu, \"frames\": %zu, \"keyframes\": %zu, \"refused\": %zu, \"lost\": %llu, \"dropped\": %llu}\n",
              packets, frames, keys, refused, static_cast<unsigned long long>(dp->stats().lost_packets),
              static_cast<unsigned long long>(dp->stats().frames_dropped));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: media_rtp_tool roundtrip|sdp|send CODEC ES [OUT|PORT] [--reorder] [--loss PCT]\n");
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "recv" && argc >= 5) return recv(argv[2], std::atoi(argv[3]), argv[4], argc > 5 ? argv[5] : "");
  Stream s;
  if (!load(argv[2], argv[3], s)) {
    std::fprintf(stderr, "cannot read %s as %s\n", argv[3], argv[2]);
    return 2;
  }
  if (cmd == "roundtrip" && argc >= 5) {
    bool reorder = false;
    int loss = 0;
    unsigned seed = 42;
    for (int i = 5; i < argc; ++i) {
      if (std::strcmp(argv[i], "--reorder") == 0) reorder = true;
      if (std::strcmp(argv[i], "--loss") == 0 && i + 1 < argc) loss = std::atoi(argv[++i]);
      if (std::strcmp(argv[i], "--seed") == 0 && i + 1 < argc) seed = static_cast<unsigned>(std::atoi(argv[++i]));
    }
    return roundtrip(s, argv[4], reorder, loss, seed);
  }
  if (cmd == "sdp" && argc >= 5) return sdp(s, std::atoi(argv[4]));
  if (cmd == "send" && argc >= 5) return send(s, std::atoi(argv[4]));
  return 2;
}
