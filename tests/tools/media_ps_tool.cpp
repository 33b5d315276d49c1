// Drives sdk/media's PS muxer/demuxer and PS-over-RTP over real ffmpeg output, for
// tests/integration/test_media_ps_ffmpeg.py.
//
//   media_ps_tool roundtrip --vcodec h264|h265 --video ES [--acodec pcma|pcmu --audio RAW]
//                 [--shuffle] [--ps-out FILE] --out-video ES --out-audio RAW
//     ES (Annex-B with an AUD before every access unit, as ffmpeg's h264_metadata/hevc_metadata
//     aud=insert write it) -> frames (25 fps) + G.711 frames (20 ms) -> PsRtpSender -> RTP
//     packets (reordered and duplicated with --shuffle) -> PsRtpReceiver -> frames -> files.
//     --ps-out also writes the muxed PS (for ffmpeg to read back).
//   media_ps_tool packetize --vcodec h264|h265 --video ES [--acodec pcma|pcmu --audio RAW]
//                 --rtp-out FILE --index-out FILE [--ssrc N]
//     The same frames -> PsRtpSender -> FILE: the RTP packets in RFC 4571 framing (a 16-bit
//     length before each), and the index: one line per frame ("v"/"a", its packet count,
//     "k" on keyframes). The GB device simulator (tests/lib/gb_media_sim.py) streams them.
//   media_ps_tool demux --in PS [--out-video ES] [--out-audio RAW]
//     A PS file (e.g. written by ffmpeg -f vob) through PsDemuxer in 1..4096-byte chunks.
// Prints one JSON line with the counts the test asserts.
#include <junction/media/annexb.hpp>
#include <junction/media/ps_demuxer.hpp>
#include <junction/media/ps_rtp.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace junction::media;

namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Frame {
  std::vector<uint8_t> data;
  jn_media_meta meta{};
};

// Splits an Annex-B stream at its AUDs; every NAL unit gets a 4-byte start code (media_frame.h).
std::vector<Frame> split_at_aud(const std::vector<uint8_t>& es, bool h265) {
  std::vector<Frame> out;
  annexb::for_each_nal(es.data(), es.size(), [&](const uint8_t* nal, size_t n) {
    uint8_t t = h265 ? annexb::h265::type(nal[0]) : annexb::h264::type(nal[0]);
    bool aud = h265 ? t == annexb::h265::kAud : t == annexb::h264::kAud;
    if (aud || out.empty()) out.emplace_back();
    Frame& f = out.back();
    f.data.insert(f.data.end(), {0, 0, 0, 1});
    f.data.insert(f.data.end(), nal, nal + n);
    if (h265 ? annexb::h265::is_irap(t) : t == annexb::h264::kIdr) f.meta.frame_flags |= JN_MF_KEY;
    if (h265 ? annexb::h265::is_parameter_set(t) : annexb::h264::is_parameter_set(t)) f.meta.frame_flags |= JN_MF_CONFIG;
    return true;
  });
  return out;
}

struct Collect : PsRtpPacketizer::Sink {  // and a FrameSink (on_frame / on_error)
  std::vector<uint8_t> video, audio;
  size_t video_frames = 0, audio_frames = 0, keyframes = 0, discont = 0;
  uint32_t vcodec = 0, acodec = 0;
  std::map<std::string, int> errors;
  std::vector<std::vector<uint8_t>> packets;
  void on_frame(const FrameView& f) {
    if (f.meta.kind == JN_MEDIA_VIDEO) {
      video.insert(video.end(), f.data, f.data + f.size);
      ++video_frames;
      vcodec = f.meta.codec;
      keyframes += (f.meta.frame_flags & JN_MF_KEY) != 0;
    } else {
      audio.insert(audio.end(), f.data, f.data + f.size);
      ++audio_frames;
      acodec = f.meta.codec;
    }
    discont += (f.meta.frame_flags & JN_MF_DISCONT) != 0;
  }
  void on_error(PsError e, const char*) { ++errors[to_string(e)]; }
  void on_packet(const uint8_t* p, size_t n) override { packets.emplace_back(p, p + n); }
};

void write_file(const std::string& path, const std::vector<uint8_t>& b) {
  if (path.empty()) return;
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

const char* codec_name(uint32_t c) {
  switch (c) {
    case JN_CODEC_H264: return "h264";
    case JN_CODEC_H265: return "h265";
    case JN_CODEC_PCMA: return "pcma";
    case JN_CODEC_PCMU: return "pcmu";
    case JN_CODEC_AAC: return "aac";
  }
  return "none";
}

void print(const Collect& c, const char* extra) {
  std::printf("{\"video_frames\": %zu, \"audio_frames\": %zu, \"keyframes\": %zu, \"discont\": %zu, "
              "\"vcodec\": \"%s\", \"acodec\": \"%s\", \"errors\": {",
              c.video_frames, c.audio_frames, c.keyframes, c.discont, codec_name(c.vcodec), codec_name(c.acodec));
  bool first = true;
  for (auto& [k, v] : c.errors) std::printf("%s\"%s\": %d", first ? "" : ", ", k.c_str(), v), first = false;
  std::printf("}%s}\n", extra);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: media_ps_tool roundtrip|demux ...\n");
    return 2;
  }
  std::string mode = argv[1];
  std::map<std::string, std::string> opt;
  bool shuffle = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--shuffle") shuffle = true;
    else if (i + 1 < argc) opt[a] = argv[++i];
  }
  Collect c;
  if (mode == "demux") {
    auto ps = read_file(opt["--in"]);
    PsDemuxer d;
    std::mt19937 rng(7);
    for (size_t off = 0; off < ps.size();) {
      size_t n = std::min<size_t>(ps.size() - off, 1 + rng() % 4096);
      d.feed(ps.data() + off, n, c);
      off += n;
    }
    d.flush(c);
    write_file(opt["--out-video"], c.video);
    write_file(opt["--out-audio"], c.audio);
    char extra[128];
    std::snprintf(extra, sizeof extra, ", \"packs\": %llu", static_cast<unsigned long long>(d.stats().packs));
    print(c, extra);
    return 0;
  }
  if (mode != "roundtrip" && mode != "packetize") return 2;
  bool h265 = opt["--vcodec"] == "h265";
  uint32_t vcodec = h265 ? JN_CODEC_H265 : JN_CODEC_H264;
  uint32_t acodec = opt["--acodec"] == "pcmu" ? JN_CODEC_PCMU : opt.count("--audio") ? JN_CODEC_PCMA : JN_CODEC_NONE;
  auto video = split_at_aud(read_file(opt["--video"]), h265);
  std::vector<uint8_t> audio = opt.count("--audio") ? read_file(opt["--audio"]) : std::vector<uint8_t>{};
  // Frames in time order: video at 25 fps from 1 s, audio 20 ms frames from 1 s.
  std::vector<Frame> frames;
  size_t a_off = 0;
  int64_t a_pts = 8000;
  auto next_audio = [&] {  // the next 20 ms of G.711
    Frame a;
    size_t n = std::min<size_t>(160, audio.size() - a_off);
    a.data.assign(audio.begin() + static_cast<ptrdiff_t>(a_off), audio.begin() + static_cast<ptrdiff_t>(a_off + n));
    a.meta.pts = a.meta.dts = a_pts;
    a.meta.clock_rate = 8000;
    a.meta.codec = acodec;
    a.meta.kind = JN_MEDIA_AUDIO;
    a.meta.track = 1;
    frames.push_back(std::move(a));
    a_off += n;
    a_pts += 160;
  };
  for (size_t i = 0; i < video.size(); ++i) {
    Frame& v = video[i];
    v.meta.pts = v.meta.dts = 90000 + 3600 * static_cast<int64_t>(i);
    v.meta.clock_rate = 90000;
    v.meta.codec = vcodec;
    v.meta.kind = JN_MEDIA_VIDEO;
    frames.push_back(v);
    while (acodec && a_off < audio.size() && a_pts * 90000 / 8000 <= v.meta.pts) next_audio();
  }
  // Audio after the last video frame.
  while (acodec && a_off < audio.size()) next_audio();
  PsRtpPacketizerConfig pc;
  pc.ssrc = opt.count("--ssrc") ? static_cast<uint32_t>(std::stoul(opt["--ssrc"])) : 0x34020000;
  PsMuxerConfig mc{vcodec, acodec};
  PsRtpSender tx(mc, pc);
  PsMuxer file_mux(mc);
  std::vector<uint8_t> ps_file;
  for (auto& f : frames) {
    FrameView fv{f.data.data(), f.data.size(), f.meta};
    if (!tx.send(fv, c)) {
      std::fprintf(stderr, "mux refused a frame: %s\n", tx.error());
      return 1;
    }
    std::span<const uint8_t> out;
    file_mux.mux(fv, &out);
    ps_file.insert(ps_file.end(), out.begin(), out.end());
  }
  write_file(opt["--ps-out"], ps_file);
  if (mode == "packetize") {
    std::vector<uint8_t> rtp;
    std::string index;
    size_t packets_before = 0;
    for (auto& p : c.packets) {
      rtp.push_back(static_cast<uint8_t>(p.size() >> 8));
      rtp.push_back(static_cast<uint8_t>(p.size()));
      rtp.insert(rtp.end(), p.begin(), p.end());
    }
    // Count each frame's packets again by the markers (the packetizer ends every frame with one).
    size_t fi = 0, n = 0;
    for (auto& p : c.packets) {
      ++n;
      if (p.size() > 1 && (p[1] & 0x80)) {
        const Frame& f = frames[fi++];
        index += f.meta.kind == JN_MEDIA_VIDEO ? "v " : "a ";
        index += std::to_string(n);
        if (f.meta.frame_flags & JN_MF_KEY) index += " k";
        index += "\n";
        packets_before += n;
        n = 0;
      }
    }
    write_file(opt["--rtp-out"], rtp);
    std::ofstream(opt["--index-out"]) << index;
    std::printf("{\"frames\": %zu, \"video_frames\": %zu, \"packets\": %zu, \"indexed_packets\": %zu}\n", frames.size(),
                video.size(), c.packets.size(), packets_before);
    return fi == frames.size() && packets_before == c.packets.size() ? 0 : 1;
  }
  auto packets = std::move(c.packets);
  std::vector<std::vector<uint8_t>> net;
  std::mt19937 rng(11);
  if (shuffle) {  // reorder within groups of 6 after the first packet, duplicate 2 %
    net.push_back(packets[0]);
    for (size_t i = 1; i < packets.size(); i += 6) {
      std::vector<std::vector<uint8_t>> g(packets.begin() + i, packets.begin() + std::min(packets.size(), i + 6));
      std::shuffle(g.begin(), g.end(), rng);
      for (auto& p : g) {
        net.push_back(p);
        if (rng() % 100 < 2) net.push_back(p);
      }
    }
  } else {
    net = packets;
  }
  PsRtpReceiver rx;
  for (auto& p : net) rx.on_rtp(p.data(), p.size(), c);
  rx.finish(c);
  write_file(opt["--out-video"], c.video);
  write_file(opt["--out-audio"], c.audio);
  char extra[256];
  std::snprintf(extra, sizeof extra, ", \"frames_in_video\": %zu, \"packets\": %zu, \"sent\": %zu, \"lost\": %llu, \"reordered\": %llu",
                video.size(), packets.size(), net.size(), static_cast<unsigned long long>(rx.stats().lost),
                static_cast<unsigned long long>(rx.stats().reordered));
  print(c, extra);
  return 0;
}
