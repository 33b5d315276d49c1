// A WebRTC endpoint on sdk/webrtc alone, for interop runs against a real browser and for benches:
//   webrtc_peer_tool OFFER_FILE VIDEO_ES SECONDS [vp8]
// reads a browser's offer, answers it (ICE-lite on 127.0.0.1, a UDP port of its own per transport:
// one for BUNDLE, one per m-line when the offer does not bundle; audio PCMA
// then Opus, video H.264 mode 1 then VP8 ("vp8": VP8 first), data channels), prints
// "ANSWER <base64 SDP>", then for SECONDS runs the PeerConnection: sends VIDEO_ES ("-": none; an
// H.264 Annex-B file, or VP8 in an .ivf file) at 25 fps in a loop and a 440 Hz A-law tone every 20 ms, echoes every
// data-channel text message back as "echo:<text>", and prints what happens (state changes,
// keyframe requests, channel events, and at the end "STATS k=v ..."). Test program: it owns its
// process, so it opens its own socket and initialises libsrtp2/usrsctp directly.
#include <junction/util/encoding.hpp>
#include <junction/webrtc/ice_lite.hpp>
#include <junction/webrtc/peer.hpp>

#include <junction/media/vp8_rtp.hpp>

#include "media_rtp_es.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

using namespace junction::webrtc;
using namespace junction;

namespace {

uint64_t now_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

uint8_t alaw(int16_t pcm) {  // ITU-T G.711 A-law
  int sign = (pcm >> 8) & 0x80;
  if (sign) pcm = static_cast<int16_t>(-pcm - 1);
  int v = pcm >> 3, exp = 0;
  if (v > 31) {
    exp = 1;
    while (v > 63 && exp < 7) v >>= 1, ++exp;
    v &= 31;
    v >>= 1;
  } else {
    v >>= 1;
  }
  uint8_t a = static_cast<uint8_t>((exp << 4) | (v & 0x0f));
  return static_cast<uint8_t>((a | (sign ? 0x00 : 0x80)) ^ 0x55);
}

struct Tool : PeerCallbacks {
  std::vector<int> fds;  // one UDP socket per transport (BUNDLE: one)
  std::unique_ptr<PeerConnection> pc;
  uint64_t frames_in[4] = {};
  uint64_t keyframes_in = 0;
  uint64_t channel_msgs = 0;
  void send_datagram(size_t transport, const uint8_t* d, size_t n, const jn_addr& to) override {
    int fd = fds[transport < fds.size() ? transport : 0];
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(to.port);
    std::memcpy(&sa.sin_addr, to.ip, 4);
    sendto(fd, d, n, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  }
  void on_frame(uint32_t kind, const media::FrameView& f) override {
    if (kind < 4) ++frames_in[kind];
    if (kind == JN_MEDIA_VIDEO && (f.meta.frame_flags & JN_MF_KEY)) {
      if (!keyframes_in) std::printf("VIDEO_IN first keyframe codec=%u size=%zu\n", f.meta.codec, f.size);
      ++keyframes_in;
    }
  }
  void on_keyframe_request(uint32_t kind, const char* reason) override {
    std::printf("KEYFRAME_REQUEST kind=%u reason=%s\n", kind, reason);
  }
  void on_dtmf(char d, uint32_t ms) override { std::printf("DTMF %c %u\n", d, ms); }
  void on_state(PeerState s) override { std::printf("STATE %s\n", peer_state_name(s)); }
  void on_channel_open(uint16_t s, const DcepOpen& i, bool remote) override {
    std::printf("CHANNEL_OPEN stream=%u label=%s remote=%d\n", s, i.label.c_str(), remote ? 1 : 0);
  }
  void on_channel_message(uint16_t s, const uint8_t* d, size_t n, bool binary) override {
    ++channel_msgs;
    std::string text(reinterpret_cast<const char*>(d), n);
    std::printf("CHANNEL_MSG stream=%u binary=%d text=%s\n", s, binary ? 1 : 0, binary ? "" : text.c_str());
    std::string echo = "echo:" + text;
    pc->send_channel(s, reinterpret_cast<const uint8_t*>(echo.data()), echo.size(), binary);
  }
  void on_channel_closed(uint16_t s) override { std::printf("CHANNEL_CLOSED stream=%u\n", s); }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: webrtc_peer_tool OFFER_FILE VIDEO_ES|- SECONDS [vp8]\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::ifstream f(argv[1]);
  std::stringstream ss;
  ss << f.rdbuf();
  std::vector<uint8_t> es;
  std::vector<std::pair<size_t, size_t>> aus;
  std::string vpath = argv[2];
  bool ivf = vpath.size() > 4 && vpath.compare(vpath.size() - 4, 4, ".ivf") == 0;
  if (vpath != "-") {
    es = media_rtp_es::read_file(vpath);
    if (ivf) {
      // IVF (VP8): a 32-byte file header, then per frame a 12-byte header (size LE32, pts LE64).
      for (size_t off = es.size() >= 32 ? 32 : es.size(); off + 12 <= es.size();) {
        size_t n = es[off] | es[off + 1] << 8 | es[off + 2] << 16 | static_cast<size_t>(es[off + 3]) << 24;
        if (n > es.size() - off - 12) break;
        aus.emplace_back(off + 12, n);
        off += 12 + n;
      }
    } else {
      aus = media_rtp_es::split_aus(es, false);
    }
  }
  uint64_t seconds = std::strtoull(argv[3], nullptr, 10);
  bool vp8_first = argc > 4 && std::string(argv[4]) == "vp8";

  if (!srtp_library_init_standalone()) {
    std::fprintf(stderr, "libsrtp2 init failed\n");
    return 1;
  }
  SctpStack stack;
  std::string err;
  if (!stack.init(true, now_ms(), err)) std::fprintf(stderr, "sctp: %s\n", err.c_str());
  Certificate cert;
  if (!cert.generate(&err, srtp_suite_works(SrtpSuite::AeadAes128Gcm))) {
    std::fprintf(stderr, "certificate: %s\n", err.c_str());
    return 1;
  }

  Tool tool;


  Description offer;
  ParseError perr;
  if (!parse_description(ss.str(), offer, perr)) {
    std::printf("OFFER_ERROR %s\n", perr.reason.c_str());
    return 1;
  }
  // One socket (and ICE credentials) per m-line: BUNDLE uses the first, a peer that does not
  // bundle (max-compat) gets a transport per accepted m-line.
  std::vector<IceCredentials> ices;
  std::vector<LocalTransport> transports;
  for (size_t i = 0; i < offer.media.size() && i < 8; ++i) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return 1;
    socklen_t sl = sizeof sa;
    getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &sl);
    uint16_t port = ntohs(sa.sin_port);
    tool.fds.push_back(fd);
    IceCredentials ice;
    ice_random_credentials(ice);
    ices.push_back(ice);
    LocalTransport lt;
    lt.ice_ufrag = ice.ufrag;
    lt.ice_pwd = ice.pwd;
    lt.fingerprint = cert.fingerprint();
    lt.address = "127.0.0.1";
    lt.port = port;
    lt.candidates = {candidate_line("1", "127.0.0.1", port)};
    transports.push_back(lt);
  }
  AnswerOptions o;
  o.audio.codecs = {{"PCMA"}, {"OPUS"}};
  o.audio.can_send = o.audio.can_receive = true;
  o.video.codecs = vp8_first ? std::vector<CodecPref>{{"VP8"}, {"H264"}} : std::vector<CodecPref>{{"H264"}, {"VP8"}};
  o.video.can_send = !aus.empty();
  o.video.can_receive = true;
  o.data_channels = stack.ready();
  o.transports = transports;
  AnswerResult ans;
  if (!build_answer(offer, o, ans, perr)) {
    std::printf("ANSWER_ERROR %s\n", perr.reason.c_str());
    return 1;
  }
  std::printf("NEGOTIATED %s\n", ans.summary().c_str());
  std::printf("ANSWER %s\n", util::base64_encode(ans.sdp).c_str());
  PeerConfig pcfg;
  pcfg.local_ice = ices;
  pcfg.sctp = stack.ready() ? &stack : nullptr;
  tool.pc = std::make_unique<PeerConnection>(cert, tool, ans, pcfg);
  if (!tool.pc->ok()) {
    std::printf("PEER_ERROR %s\n", tool.pc->error().c_str());
    return 1;
  }

  const MLineResult* video = ans.first(JN_MEDIA_VIDEO);
  bool send_video = video && tool.pc->sender(JN_MEDIA_VIDEO) && !aus.empty() &&
                    canonical_codec_name(video->codec.name) == (ivf ? "VP8" : "H264");
  uint64_t start = now_ms(), end = start + seconds * 1000;
  uint64_t next_video = start, next_audio = start;
  size_t au = 0;
  uint32_t vseq = 0, aseq = 0;
  int64_t vpts = 0, apts = 0;
  double phase = 0;
  uint8_t pkt[2048];
  for (;;) {
    uint64_t now = now_ms();
    if (now >= end) break;
    if (tool.pc->state() == PeerState::Connected) {
      while (send_video && now >= next_video) {
        auto [off, len] = aus[au % aus.size()];
        const uint8_t* d = es.data() + off;
        bool key = false;
        if (ivf) {
          key = media::vp8_is_keyframe(d, len);
        } else {
          media::annexb::for_each_nal(d, len, [&](const uint8_t* nal, size_t) {
            if (media::annexb::h264::type(nal[0]) == media::annexb::h264::kIdr) key = true;
            return true;
          });
        }
        media::FrameView fv;
        fv.data = d;
        fv.size = len;
        fv.meta.pts = fv.meta.dts = vpts;
        fv.meta.clock_rate = 90000;
        fv.meta.codec = ivf ? uint32_t{JN_CODEC_VP8} : uint32_t{JN_CODEC_H264};
        fv.meta.seq = vseq++;
        fv.meta.frame_flags = key ? uint32_t{JN_MF_KEY} : 0u;
        tool.pc->send_frame(JN_MEDIA_VIDEO, fv, now);
        ++au;
        vpts += 3600;
        next_video += 40;
      }
      while (now >= next_audio) {
        uint8_t pcm[160];
        for (auto& s : pcm) {
          s = alaw(static_cast<int16_t>(8000 * std::sin(phase)));
          phase += 2 * M_PI * 440 / 8000;
        }
        media::FrameView fa;
        fa.data = pcm;
        fa.size = sizeof pcm;
        fa.meta.pts = fa.meta.dts = apts;
        fa.meta.clock_rate = 8000;
        fa.meta.codec = JN_CODEC_PCMA;
        fa.meta.seq = aseq++;
        tool.pc->send_frame(JN_MEDIA_AUDIO, fa, now);
        apts += 160;
        next_audio += 20;
      }
    } else {
      next_video = next_audio = now;
    }
    uint64_t t = std::min<uint64_t>({tool.pc->next_timer_ms(), next_video, next_audio, end});
    int wait = t > now ? static_cast<int>(std::min<uint64_t>(t - now, 100)) : 0;
    pollfd p[8];
    size_t nfd = std::min<size_t>(tool.fds.size(), tool.pc->transport_count());
    for (size_t i = 0; i < nfd; ++i) p[i] = pollfd{tool.fds[i], POLLIN, 0};
    if (poll(p, static_cast<nfds_t>(nfd), wait) > 0) {
      for (size_t i = 0; i < nfd; ++i) {
        for (;;) {
          sockaddr_in from{};
          socklen_t fl = sizeof from;
          ssize_t n = recvfrom(tool.fds[i], pkt, sizeof pkt, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fl);
          if (n <= 0) break;
          jn_addr a{};
          a.family = 4;
          a.port = ntohs(from.sin_port);
          std::memcpy(a.ip, &from.sin_addr, 4);
          tool.pc->handle_datagram(i, pkt, static_cast<size_t>(n), a, now_ms());
        }
      }
    }
    tool.pc->tick(now_ms());
  }
  const auto& st = tool.pc->stats();
  uint64_t srtp_failed = 0;
  for (size_t i = 0; i < tool.pc->transport_count(); ++i) srtp_failed += tool.pc->transport(i).stats().srtp_in_failed;
  const Transport& tr = tool.pc->transport(0);
  std::printf("STATS state=%s audio_in=%llu video_in=%llu video_keyframes_in=%llu frames_out=%llu pli_sent=%llu pli_fir_in=%llu "
              "nack_in=%llu retransmitted=%llu channel_msgs=%llu srtp_suite=%s srtp_in_failed=%llu rtp_unknown_pt=%llu transports=%zu\n",
              peer_state_name(tool.pc->state()), (unsigned long long)tool.frames_in[JN_MEDIA_AUDIO],
              (unsigned long long)tool.frames_in[JN_MEDIA_VIDEO], (unsigned long long)tool.keyframes_in,
              (unsigned long long)st.frames_out, (unsigned long long)st.pli_sent, (unsigned long long)st.pli_fir_in,
              (unsigned long long)st.nack_in, (unsigned long long)st.retransmitted, (unsigned long long)tool.channel_msgs,
              suite_name(tr.srtp_suite()), (unsigned long long)srtp_failed,
              (unsigned long long)st.rtp_unknown_pt, tool.pc->transport_count());
  tool.pc->close();
  for (int fd : tool.fds) close(fd);
  return 0;
}
