// Pushes an H.264 Annex-B elementary stream (+ optionally G.711 A-law / mu-law or nothing) to an
// RTMP server through sdk/rtmp's Publisher over a plain blocking TCP socket, for
// tests/integration/test_rtmp_nginx.py. Frames go out as fast as the socket takes them, with
// timestamps from the frame rate (video) and 20 ms per 160 samples (audio); the server's bytes
// are read between frames (acknowledgements, pings). At the end: FCUnpublish/deleteStream, the
// write side shut, and the server's bytes read until it closes (so it has processed everything).
// Prints one JSON line of stats on stdout; status changes on stderr.
//
//   rtmp_push_tool --url rtmp://127.0.0.1:PORT/live/NAME --h264 clip.h264 [--fps 25]
//                  [--alaw clip.alaw | --mulaw clip.ulaw] [--flv out.flv] [--hold]
//                  [--max-queue BYTES] [--drain]
// --flv also writes the same tags to a local FLV file (no server needed with --url none).
// --hold: after Publishing, waits for stdin to close before pushing (a test holds a stream).
// --drain: before unpublishing, waits for the server's Acknowledgements to cover all but less
// than one window of what was sent.
// Exit status: 0 when every frame was sent and the stream was unpublished, 1 otherwise.
#include "media_rtp_es.hpp"

#include <junction/rtmp/flv.hpp>
#include <junction/rtmp/publisher.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

using namespace junction;

namespace {

struct Conn final : rtmp::PublisherCallbacks {
  int fd = -1;
  bool write_failed = false;
  rtmp::PublisherStatus last = rtmp::PublisherStatus::Connecting;
  void send(const uint8_t* data, size_t len) override {
    while (len > 0 && !write_failed) {
      ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::fprintf(stderr, "send: %s\n", std::strerror(errno));
        write_failed = true;
        return;
      }
      data += n;
      len -= static_cast<size_t>(n);
    }
  }
  void on_status(rtmp::PublisherStatus s, std::string_view reason) override {
    last = s;
    std::fprintf(stderr, "status %s: %.*s\n", rtmp::to_string(s), static_cast<int>(reason.size()), reason.data());
  }
};

// Reads what the server sent within timeout_ms into the publisher. False at EOF or an error.
bool pump(int fd, rtmp::Publisher& pub, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int r = ::poll(&p, 1, timeout_ms);
  if (r <= 0) return r == 0;
  uint8_t buf[16384];
  ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (n <= 0) return false;
  pub.on_bytes(buf, static_cast<size_t>(n));
  return true;
}

int connect_to(const rtmp::RtmpUrl& u) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;  // tests use loopback literals only
  addrinfo* res = nullptr;
  std::string port = std::to_string(u.port);
  if (getaddrinfo(u.host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    std::fprintf(stderr, "bad host %s (a numeric address is expected)\n", u.host.c_str());
    return -1;
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM, 0);
  if (fd < 0 || ::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    std::fprintf(stderr, "connect %s:%u: %s\n", u.host.c_str(), u.port, std::strerror(errno));
    freeaddrinfo(res);
    if (fd >= 0) ::close(fd);
    return -1;
  }
  freeaddrinfo(res);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

struct Frame {
  bool video;
  uint32_t ts;
  size_t off, len;
  bool key;
};

}  // namespace

int main(int argc, char** argv) {
  std::string url, h264, g711, flv_path;
  uint32_t audio_codec = JN_CODEC_NONE;
  double fps = 25;
  bool hold = false, drain = false;
  size_t max_queue = 4 << 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : std::string(); };
    if (a == "--url") url = next();
    else if (a == "--h264") h264 = next();
    else if (a == "--alaw") { g711 = next(); audio_codec = JN_CODEC_PCMA; }
    else if (a == "--mulaw") { g711 = next(); audio_codec = JN_CODEC_PCMU; }
    else if (a == "--fps") fps = std::stod(next());
    else if (a == "--flv") flv_path = next();
    else if (a == "--hold") hold = true;
    else if (a == "--drain") drain = true;
    else if (a == "--max-queue") max_queue = std::stoul(next());
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (url.empty() || h264.empty() || fps <= 0) {
    std::fprintf(stderr, "usage: rtmp_push_tool --url rtmp://HOST:PORT/APP/STREAM --h264 FILE [--fps N] "
                         "[--alaw FILE|--mulaw FILE] [--flv OUT] [--hold] [--max-queue BYTES]\n");
    return 2;
  }
  auto es = media_rtp_es::read_file(h264);
  auto aus = media_rtp_es::split_aus(es, false);
  std::vector<uint8_t> pcm = g711.empty() ? std::vector<uint8_t>{} : media_rtp_es::read_file(g711);
  if (aus.empty()) {
    std::fprintf(stderr, "no access unit in %s\n", h264.c_str());
    return 2;
  }

  // Every frame with its timestamp, in timestamp order (video first on a tie).
  std::vector<Frame> frames;
  for (size_t i = 0; i < aus.size(); ++i) {
    bool key = false;
    media::annexb::for_each_nal(es.data() + aus[i].first, aus[i].second, [&](const uint8_t* nal, size_t) {
      key |= media::annexb::h264::type(nal[0]) == media::annexb::h264::kIdr;
      return true;
    });
    frames.push_back({true, static_cast<uint32_t>(i * 1000.0 / fps + 0.5), aus[i].first, aus[i].second, key});
  }
  size_t audio_frames = pcm.size() / 160;
  for (size_t j = 0; j < audio_frames; ++j) frames.push_back({false, static_cast<uint32_t>(j * 20), j * 160, 160, false});
  std::stable_sort(frames.begin(), frames.end(), [](const Frame& a, const Frame& b) { return a.ts < b.ts; });

  auto frame_view = [&](const Frame& f) {
    media::FrameView v{f.video ? es.data() + f.off : pcm.data() + f.off, f.len, {}};
    v.meta.codec = f.video ? uint32_t{JN_CODEC_H264} : audio_codec;
    v.meta.kind = static_cast<uint8_t>(f.video ? int{JN_MEDIA_VIDEO} : int{JN_MEDIA_AUDIO});
    v.meta.clock_rate = f.video ? 90000 : 8000;
    v.meta.frame_flags = f.key ? uint32_t{JN_MF_KEY} : 0u;
    return v;
  };

  // The by-product: the same tags in a local FLV file.
  if (!flv_path.empty()) {
    std::vector<uint8_t> out, body, sps, pps;
    rtmp::flv::file_header(audio_codec != JN_CODEC_NONE, true, out);
    rtmp::flv::Metadata m;
    m.video_codec = JN_CODEC_H264;
    m.audio_codec = audio_codec;
    m.framerate = fps;
    rtmp::flv::metadata(m, false, body);
    rtmp::flv::file_tag(rtmp::flv::kScript, 0, body, out);
    const char* err = nullptr;
    bool header_sent = false;
    for (const auto& f : frames) {
      body.clear();
      if (f.video) {
        media::annexb::for_each_nal(es.data() + f.off, f.len, [&](const uint8_t* nal, size_t n) {
          uint8_t t = media::annexb::h264::type(nal[0]);
          if (t == media::annexb::h264::kSps) sps.assign(nal, nal + n);
          if (t == media::annexb::h264::kPps) pps.assign(nal, nal + n);
          return true;
        });
        if (!header_sent) {
          if (!f.key || !rtmp::flv::avc_sequence_header(sps, pps, body, &err)) continue;
          rtmp::flv::file_tag(rtmp::flv::kVideo, f.ts, body, out);
          header_sent = true;
          body.clear();
        }
        if (rtmp::flv::avc_nalu(es.data() + f.off, f.len, f.key, 0, body, &err))
          rtmp::flv::file_tag(rtmp::flv::kVideo, f.ts, body, out);
      } else if (rtmp::flv::audio_frame(audio_codec, pcm.data() + f.off, f.len, body, &err)) {
        rtmp::flv::file_tag(rtmp::flv::kAudio, f.ts, body, out);
      }
    }
    std::ofstream(flv_path, std::ios::binary).write(reinterpret_cast<const char*>(out.data()),
                                                    static_cast<std::streamsize>(out.size()));
    if (url == "none") {
      std::printf("{\"flv_bytes\": %zu}\n", out.size());
      return 0;
    }
  }

  Conn conn;
  rtmp::PublisherConfig cfg;
  cfg.url = url;
  cfg.max_queue_bytes = max_queue;
  cfg.metadata.video_codec = JN_CODEC_H264;
  cfg.metadata.audio_codec = audio_codec;
  cfg.metadata.framerate = fps;
  if (audio_codec != JN_CODEC_NONE) {
    cfg.metadata.audio_sample_rate = 8000;
    cfg.metadata.audio_channels = 1;
  }
  rtmp::Publisher pub(cfg, conn);
  if (pub.status() == rtmp::PublisherStatus::Failed) {
    std::fprintf(stderr, "bad URL: %s\n", pub.reason().c_str());
    return 2;
  }
  conn.fd = connect_to(pub.url());
  if (conn.fd < 0) return 1;
  pub.on_connected();
  // Up to Publishing (or a refusal): 10 s of server silence at most.
  while (pub.status() == rtmp::PublisherStatus::Connecting && !conn.write_failed) {
    pollfd p{conn.fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) {
      std::fprintf(stderr, "timeout waiting for the server\n");
      return 1;
    }
    if (!pump(conn.fd, pub, 0)) pub.on_disconnected();
  }
  if (pub.status() != rtmp::PublisherStatus::Publishing) {
    auto s = pub.stats();
    std::printf("{\"status\": \"%s\", \"reason\": \"%s\", \"bytes_sent\": %llu}\n", rtmp::to_string(pub.status()),
                pub.reason().c_str(), static_cast<unsigned long long>(s.bytes_sent));
    return 1;
  }
  if (hold) {
    std::fprintf(stderr, "holding\n");
    // Keep answering the server while stdin stays open.
    for (;;) {
      pollfd p[2] = {{0, POLLIN, 0}, {conn.fd, POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) break;
      if (p[0].revents) {
        char c;
        if (::read(0, &c, 1) <= 0) break;
      }
      if (p[1].revents && !pump(conn.fd, pub, 0)) {
        pub.on_disconnected();
        break;
      }
    }
  }
  for (const auto& f : frames) {
    if (pub.status() != rtmp::PublisherStatus::Publishing || conn.write_failed) break;
    auto v = frame_view(f);
    if (f.video) pub.push_video(v, f.ts, f.ts);
    else pub.push_audio(v, f.ts);
    while (pump(conn.fd, pub, 0)) {
      pollfd p{conn.fd, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
    }
  }
  // --drain: until the server has acknowledged all but less than one window of what was sent.
  while (drain && pub.status() == rtmp::PublisherStatus::Publishing &&
         (pub.stats().bytes_acknowledged == 0 || pub.unacknowledged() >= pub.stats().window)) {
    pollfd p{conn.fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0 || !pump(conn.fd, pub, 0)) {
      std::fprintf(stderr, "drain: no acknowledgement from the server\n");
      break;
    }
  }
  uint64_t unacked = pub.unacknowledged();
  bool published = pub.status() == rtmp::PublisherStatus::Publishing && !conn.write_failed;
  pub.unpublish();
  ::shutdown(conn.fd, SHUT_WR);
  // The server closes after it has read everything (10 s of silence at most).
  while (pump(conn.fd, pub, 10000)) {
    pollfd p{conn.fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) break;
  }
  ::close(conn.fd);
  auto s = pub.stats();
  size_t video_total = aus.size();
  std::printf("{\"status\": \"%s\", \"reason\": \"%s\", \"video_total\": %zu, \"audio_total\": %zu, "
              "\"video_frames\": %llu, \"audio_frames\": %llu, \"video_dropped\": %llu, \"audio_dropped\": %llu, "
              "\"sequence_headers\": %llu, \"bytes_sent\": %llu, \"bytes_received\": %llu, \"acks_sent\": %llu, "
              "\"bytes_acknowledged\": %llu, \"unacknowledged\": %llu, \"window\": %u, \"stream_id\": %u, \"last_video_ts\": %u, \"last_audio_ts\": %u}\n",
              rtmp::to_string(pub.status()), pub.reason().c_str(), video_total, audio_frames,
              static_cast<unsigned long long>(s.video_frames), static_cast<unsigned long long>(s.audio_frames),
              static_cast<unsigned long long>(s.video_dropped), static_cast<unsigned long long>(s.audio_dropped),
              static_cast<unsigned long long>(s.sequence_headers), static_cast<unsigned long long>(s.bytes_sent),
              static_cast<unsigned long long>(s.bytes_received), static_cast<unsigned long long>(s.acks_sent),
              static_cast<unsigned long long>(s.bytes_acknowledged), static_cast<unsigned long long>(unacked), s.window,
              s.stream_id,
              frames.empty() ? 0u : static_cast<unsigned>(video_total ? (video_total - 1) * 1000.0 / fps + 0.5 : 0),
              static_cast<unsigned>(audio_frames ? (audio_frames - 1) * 20 : 0));
  return published && s.video_frames == video_total && s.audio_frames == audio_frames ? 0 : 1;
}
