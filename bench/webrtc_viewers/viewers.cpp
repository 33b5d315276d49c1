// N WebRTC receivers in one process on sdk/webrtc's Transport (ICE + DTLS client + SRTP
// unprotect), for bench/webrtc_viewers/run.py (docs/benchmarks.md, "WebRTC viewers per core").
// Each viewer has its own UDP socket on 127.0.0.1 and counts the RTP it decrypts, and the loss by
// sequence number, per SSRC.
//
// Driven by lines on stdin, answers on stdout (SDPs in base64):
//   offer ID            -> "OFFER ID <sdp>": we offer (Verto: the browser offers) recvonly H.264
//                          video (setup:actpass, a full ICE agent: we are the controlling side)
//   answer ID <sdp>     the server's answer: ICE checks (USE-CANDIDATE) start towards its
//                          candidate, DTLS in the role its a=setup leaves us
//   remote ID <sdp>     -> "ANSWER ID <sdp>": the server offered (Janus): we answer recvonly,
//                          setup:active, a=ice-lite (the full agent that offered checks us)
//   reset               -> "RESET": loss and packet counters restart (the measured window)
//   stats               -> "STATS {json}"
//   close               closes every viewer (DTLS close_notify), then "CLOSED"
// EOF quits.
//
// The sdk's Transport is an ICE-lite responder: it starts DTLS on the first valid check it
// receives. Facing an ICE-lite server we are the controlling agent and receive no checks, so each
// success response to one of our checks is fed to the Transport as a check of its own (same
// credentials, from the server's address): that is exactly what the response proves, and it also
// keeps the Transport's consent clock going. Its reply to that synthetic check is dropped.
#include <junction/util/encoding.hpp>
#include <junction/webrtc/ice_lite.hpp>
#include <junction/webrtc/stun.hpp>
#include <junction/webrtc/transport.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace junction::webrtc;
using namespace junction;

namespace {

uint64_t now_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

const uint8_t kFakeTx[12] = {'j', 'n', 'b', 'e', 'n', 'c', 'h', 'f', 'a', 'k', 'e', '!'};

struct SeqTrack {  // loss by RTP sequence number for one SSRC
  uint32_t ssrc = 0;
  bool started = false;
  uint64_t base = 0, highest = 0, received = 0;  // extended sequence numbers
  void add(uint16_t seq) {
    if (!started) {
      started = true;
      base = highest = seq;
      received = 1;
      return;
    }
    // extend relative to the highest seen (wrap-around)
    uint64_t cycle = highest & ~0xffffull;
    uint64_t ext = cycle | seq;
    if (ext + 0x8000 < highest) ext += 0x10000;
    else if (ext > highest + 0x8000 && ext >= 0x10000) ext -= 0x10000;
    if (ext > highest) highest = ext;
    if (ext >= base) ++received;
  }
  uint64_t expected() const { return started ? highest - base + 1 : 0; }
  uint64_t lost() const { return expected() > received ? expected() - received : 0; }
  void reset() {  // the window starts after the last packet seen
    if (started) base = highest + 1, received = 0;
  }
};

struct Viewer : TransportCallbacks {
  int id = 0;
  int fd = -1;
  uint16_t port = 0;
  IceCredentials local, remote;
  std::string remote_fp;
  DtlsRole role = DtlsRole::Client;
  bool controlling = false;  // we send checks (the server is ICE-lite)
  jn_addr server{};
  std::unique_ptr<Transport> t;
  uint64_t next_check = 0;
  bool check_ok = false;
  uint64_t tiebreaker = 0;
  double t_answer = 0, t_connected = 0;
  TransportState state = TransportState::New;
  SeqTrack tracks[2];
  uint64_t rtp = 0, frames = 0, bytes = 0, kernel_drops = 0, drops_base = 0;  // kernel_drops: the socket's total

  void send_datagram(const uint8_t* d, size_t n, const jn_addr& to) override {
    // The Transport's reply to our synthetic check stays here.
    if (n >= 20 && d[0] < 4 && std::memcmp(d + 8, kFakeTx, 12) == 0) return;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(to.port);
    std::memcpy(&sa.sin_addr, to.ip, 4);
    sendto(fd, d, n, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  }
  void on_rtp(uint8_t* p, size_t n) override {
    ++rtp;
    bytes += n;
    if (p[1] & 0x80) ++frames;  // the marker bit ends a video frame
    uint32_t ssrc = static_cast<uint32_t>(p[8]) << 24 | static_cast<uint32_t>(p[9]) << 16 | static_cast<uint32_t>(p[10]) << 8 | p[11];
    uint16_t seq = static_cast<uint16_t>(p[2] << 8 | p[3]);
    for (auto& tr : tracks) {
      if (tr.started && tr.ssrc == ssrc) return tr.add(seq);
      if (!tr.started) {
        tr.ssrc = ssrc;
        return tr.add(seq);
      }
    }
  }
  void on_rtcp(uint8_t*, size_t) override {}
  void on_app_data(const uint8_t*, size_t) override {}
  void on_state(TransportState s) override {
    state = s;
    if (s == TransportState::Connected) t_connected = now_s();
    if (s == TransportState::Failed) std::fprintf(stderr, "viewer %d failed: %s\n", id, t->error().c_str());
  }

  void send_check(uint64_t now) {
    uint8_t b[256], tx[12];
    RAND_bytes(tx, sizeof tx);
    StunBuilder s(b, sizeof b, kStunBinding, StunClass::Request, tx);
    s.username(remote.ufrag + ":" + local.ufrag).priority(1853824767u).ice_controlling(tiebreaker).use_candidate();
    s.message_integrity(remote.pwd).fingerprint();
    send_datagram(b, s.size(), server);
    (void)now;
  }
  void inject_check(uint64_t now) {
    uint8_t b[256];
    StunBuilder s(b, sizeof b, kStunBinding, StunClass::Request, kFakeTx);
    s.username(local.ufrag + ":" + remote.ufrag).priority(1853824767u).ice_controlled(1).use_candidate();
    s.message_integrity(local.pwd).fingerprint();
    t->handle_datagram(b, s.size(), server, now);
  }
};

// Minimal SDP reading: what a receiver needs from the server's session description.
struct RemoteSdp {
  std::string ufrag, pwd, fingerprint, setup, mid, ip;
  uint16_t port = 0;
  int h264_pt = -1;
  std::string h264_fmtp;
};

bool read_sdp(const std::string& sdp, RemoteSdp& r) {
  std::istringstream in(sdp);
  std::string line;
  bool video = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto val = [&](const char* key) -> std::string { return line.substr(std::strlen(key)); };
    if (line.rfind("m=", 0) == 0) video = line.rfind("m=video", 0) == 0;
    else if (line.rfind("a=ice-ufrag:", 0) == 0) r.ufrag = val("a=ice-ufrag:");
    else if (line.rfind("a=ice-pwd:", 0) == 0) r.pwd = val("a=ice-pwd:");
    else if (line.rfind("a=fingerprint:", 0) == 0) r.fingerprint = val("a=fingerprint:");
    else if (line.rfind("a=setup:", 0) == 0) r.setup = val("a=setup:");
    else if (video && line.rfind("a=mid:", 0) == 0) r.mid = val("a=mid:");
    else if (line.rfind("a=candidate:", 0) == 0 && r.port == 0) {
      // foundation component transport priority ip port typ type
      std::istringstream c(val("a=candidate:"));
      std::string f, comp, tr, prio, ip, port;
      c >> f >> comp >> tr >> prio >> ip >> port;
      if ((tr == "udp" || tr == "UDP") && ip.rfind("127.", 0) == 0) r.ip = ip, r.port = static_cast<uint16_t>(std::stoi(port));
    } else if (video && line.rfind("a=rtpmap:", 0) == 0 && r.h264_pt < 0 && line.find(" H264/90000") != std::string::npos) {
      r.h264_pt = std::stoi(val("a=rtpmap:"));
    } else if (video && r.h264_pt >= 0 && r.h264_fmtp.empty() && line.rfind("a=fmtp:" + std::to_string(r.h264_pt) + " ", 0) == 0) {
      r.h264_fmtp = line.substr(line.find(' ') + 1);
    }
  }
  return !r.ufrag.empty() && !r.pwd.empty() && !r.fingerprint.empty() && r.port != 0;
}

struct App {
  Certificate cert;
  std::string local_ip = "127.0.0.1";  // argv[1]: the viewers' address (a 127.0.0.0/8 one)
  int ep = -1;
  std::map<int, std::unique_ptr<Viewer>> viewers;
  double t_reset = now_s();

  Viewer* create(int id) {
    auto v = std::make_unique<Viewer>();
    v->id = id;
    v->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int big = 4 << 20, one = 1;
    setsockopt(v->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(v->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);  // kernel drops on our side
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, local_ip.c_str(), &sa.sin_addr);
    if (v->fd < 0 || bind(v->fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return nullptr;
    socklen_t sl = sizeof sa;
    getsockname(v->fd, reinterpret_cast<sockaddr*>(&sa), &sl);
    v->port = ntohs(sa.sin_port);
    ice_random_credentials(v->local);
    RAND_bytes(reinterpret_cast<uint8_t*>(&v->tiebreaker), sizeof v->tiebreaker);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(id);
    epoll_ctl(ep, EPOLL_CTL_ADD, v->fd, &ev);
    Viewer* p = v.get();
    viewers[id] = std::move(v);
    return p;
  }

  std::string offer(Viewer& v) {
    std::ostringstream s;
    s << "v=0\r\no=- " << 1000 + v.id << " 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
      << "a=msid-semantic: WMS\r\nm=video " << v.port << " UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 " << local_ip << "\r\n"
      << "a=candidate:1 1 udp 2130706431 " << local_ip << " " << v.port << " typ host\r\n"
      << "a=ice-ufrag:" << v.local.ufrag << "\r\na=ice-pwd:" << v.local.pwd << "\r\n"
      << "a=fingerprint:" << cert.fingerprint() << "\r\na=setup:actpass\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n"
      << "a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\n"
      << "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";
    return s.str();
  }

  std::string answer(Viewer& v, const RemoteSdp& r) {
    int pt = r.h264_pt < 0 ? 96 : r.h264_pt;
    std::string mid = r.mid.empty() ? "0" : r.mid;
    std::ostringstream s;
    s << "v=0\r\no=- " << 1000 + v.id << " 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE " << mid << "\r\n"
      << "a=ice-lite\r\na=msid-semantic: WMS\r\nm=video " << v.port << " UDP/TLS/RTP/SAVPF " << pt << "\r\nc=IN IP4 " << local_ip << "\r\n"
      << "a=candidate:1 1 udp 2130706431 " << local_ip << " " << v.port << " typ host\r\na=end-of-candidates\r\n"
      << "a=ice-ufrag:" << v.local.ufrag << "\r\na=ice-pwd:" << v.local.pwd << "\r\n"
      << "a=fingerprint:" << cert.fingerprint() << "\r\na=setup:active\r\na=mid:" << mid << "\r\na=recvonly\r\na=rtcp-mux\r\n"
      << "a=rtpmap:" << pt << " H264/90000\r\n";
    if (!r.h264_fmtp.empty()) s << "a=fmtp:" << pt << " " << r.h264_fmtp << "\r\n";
    return s.str();
  }

  void start(Viewer& v, const RemoteSdp& r, DtlsRole role, bool controlling) {
    v.remote = IceCredentials{r.ufrag, r.pwd};
    v.remote_fp = r.fingerprint;
    v.role = role;
    v.controlling = controlling;
    v.server.family = 4;
    inet_pton(AF_INET, r.ip.c_str(), v.server.ip);
    v.server.port = r.port;
    TransportConfig cfg{v.local, v.remote, v.remote_fp, role};
    // A full agent that offered (Janus) keeps the path up with STUN indications, not checks: the
    // viewer then does not hold it to consent freshness (the server side still does its own).
    if (!controlling) cfg.consent_timeout_ms = 24ull * 3600 * 1000;
    v.t = std::make_unique<Transport>(cert, v, cfg);
    v.t_answer = now_s();
    v.next_check = 0;
  }

  void command(const std::string& line) {
    std::istringstream in(line);
    std::string cmd, b64, sdp;
    int id = -1;
    in >> cmd >> id >> b64;
    if (cmd == "offer") {
      Viewer* v = create(id);
      if (!v) return (void)std::printf("ERROR %d socket\n", id);
      std::printf("OFFER %d %s\n", id, util::base64_encode(offer(*v)).c_str());
    } else if (cmd == "answer" || cmd == "remote") {
      RemoteSdp r;
      if (!util::base64_decode(b64, sdp) || !read_sdp(sdp, r)) return (void)std::printf("ERROR %d sdp\n", id);
      Viewer* v = cmd == "remote" ? create(id) : (viewers.count(id) ? viewers[id].get() : nullptr);
      if (!v) return (void)std::printf("ERROR %d viewer\n", id);
      if (cmd == "remote") {
        start(*v, r, DtlsRole::Client, false);
        std::printf("ANSWER %d %s\n", id, util::base64_encode(answer(*v, r)).c_str());
      } else {
        start(*v, r, r.setup == "active" ? DtlsRole::Server : DtlsRole::Client, true);
      }
    } else if (cmd == "reset") {
      for (auto& [_, v] : viewers) {
        for (auto& t : v->tracks) t.reset();
        v->rtp = v->bytes = v->frames = 0;
        v->drops_base = v->kernel_drops;
      }
      t_reset = now_s();
      std::printf("RESET\n");
    } else if (cmd == "stats") {
      stats();
    } else if (cmd == "close") {
      for (auto& [_, v] : viewers)
        if (v->t) v->t->close();
      std::printf("CLOSED\n");
    }
  }

  void stats() {
    size_t connected = 0, failed = 0, with_loss = 0, silent = 0;
    uint64_t rtp = 0, bytes = 0, lost = 0, expected = 0, srtp_failed = 0, drops = 0;
    uint64_t frames = 0, min_frames = UINT64_MAX;
    uint64_t ice_req = 0, ice_valid = 0, ice_bad = 0, dgrams = 0, unvalidated = 0;
    double first_answer = 0, last_connected = 0;
    for (auto& [_, v] : viewers) {
      if (v->state == TransportState::Connected) ++connected;
      if (v->state == TransportState::Failed) ++failed;
      uint64_t l = 0;
      for (auto& t : v->tracks) l += t.lost(), expected += t.expected();
      lost += l;
      if (l) ++with_loss;
      if (v->state == TransportState::Connected && v->rtp == 0) ++silent;
      rtp += v->rtp;
      frames += v->frames;
      if (v->frames < min_frames) min_frames = v->frames;
      bytes += v->bytes;
      drops += v->kernel_drops - v->drops_base;
      if (v->t) {
        TransportStats ts = v->t->stats();
        srtp_failed += ts.srtp_in_failed;
        ice_req += ts.ice.requests, ice_valid += ts.ice.valid, dgrams += ts.datagrams_in, unvalidated += ts.unvalidated_in;
        ice_bad += ts.ice.bad_request + ts.ice.unauthorized + ts.ice.unknown_attr + ts.ice.malformed;
      }
      if (v->t_answer && (!first_answer || v->t_answer < first_answer)) first_answer = v->t_answer;
      if (v->t_connected > last_connected) last_connected = v->t_connected;
    }
    std::printf("STATS {\"frames\":%llu,\"min_frames\":%llu,\"viewers\":%zu,\"connected\":%zu,\"failed\":%zu,\"silent\":%zu,\"rtp\":%llu,\"bytes\":%llu,"
                "\"expected\":%llu,\"lost\":%llu,\"viewers_with_loss\":%zu,\"srtp_failed\":%llu,\"receiver_kernel_drops\":%llu,"
                "\"ice_requests\":%llu,\"ice_valid\":%llu,\"ice_bad\":%llu,\"datagrams\":%llu,\"unvalidated\":%llu,"
                "\"window_s\":%.3f,\"first_answer\":%.6f,\"last_connected\":%.6f}\n",
                (unsigned long long)frames, (unsigned long long)(viewers.empty() ? 0 : min_frames), viewers.size(), connected, failed, silent, (unsigned long long)rtp, (unsigned long long)bytes,
                (unsigned long long)expected, (unsigned long long)lost, with_loss, (unsigned long long)srtp_failed,
                (unsigned long long)drops, (unsigned long long)ice_req, (unsigned long long)ice_valid, (unsigned long long)ice_bad,
                (unsigned long long)dgrams, (unsigned long long)unvalidated, now_s() - t_reset, first_answer, last_connected);
  }

  // recvmmsg in batches of 32: this process must stay far cheaper than the server it measures.
  static constexpr int kBatch = 32;
  uint8_t bufs[kBatch][2048];
  sockaddr_in froms[kBatch];
  iovec iovs[kBatch];
  mmsghdr msgs[kBatch];
  alignas(cmsghdr) char ctrls[kBatch][64];

  void receive(Viewer& v) {
    for (int round = 0; round < 8; ++round) {
      for (int k = 0; k < kBatch; ++k) {
        iovs[k] = iovec{bufs[k], sizeof bufs[k]};
        msgs[k].msg_hdr = msghdr{};
        msgs[k].msg_hdr.msg_name = &froms[k];
        msgs[k].msg_hdr.msg_namelen = sizeof froms[k];
        msgs[k].msg_hdr.msg_iov = &iovs[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
        msgs[k].msg_hdr.msg_control = ctrls[k];
        msgs[k].msg_hdr.msg_controllen = sizeof ctrls[k];
      }
      int got = recvmmsg(v.fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
      if (got <= 0) return;
      uint64_t now = now_ms();
      for (int k = 0; k < got; ++k) {
        msghdr& m = msgs[k].msg_hdr;
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            uint32_t total;
            std::memcpy(&total, CMSG_DATA(c), sizeof total);
            v.kernel_drops = total;  // cumulative for the socket
          }
        if (!v.t) continue;
        uint8_t* buf = bufs[k];
        size_t n = msgs[k].msg_len;
        jn_addr a{};
        a.family = 4;
        a.port = ntohs(froms[k].sin_port);
        std::memcpy(a.ip, &froms[k].sin_addr, 4);
        if (v.controlling && n >= 20 && buf[0] == 0x01 && buf[1] == 0x01) {  // Binding success: our check
          StunMessage sm;
          if (stun_parse(buf, n, sm) == StunParse::Ok && sm.has_integrity && stun_check_integrity(buf, n, sm, v.remote.pwd)) {
            v.check_ok = true;
            v.inject_check(now);
          }
          continue;
        }
        v.t->handle_datagram(buf, n, a, now);
      }
      if (got < kBatch) return;
    }
  }

  void timers() {
    uint64_t now = now_ms();
    for (auto& [_, v] : viewers) {
      if (!v->t) continue;
      if (v->controlling && now >= v->next_check && v->state != TransportState::Failed && v->state != TransportState::Closed) {
        v->send_check(now);
        v->next_check = now + (v->check_ok ? 2500 : 200);  // consent every 2.5 s once it answered
      }
      if (v->t->next_timer_ms() <= now) v->t->tick(now);
    }
  }

  int run() {
    ep = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = UINT32_MAX;
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    std::string pending;
    uint64_t last_timers = 0;
    for (;;) {
      epoll_event evs[256];
      int n = epoll_wait(ep, evs, 256, 20);
      for (int i = 0; i < n; ++i) {
        if (evs[i].data.u32 == UINT32_MAX) {
          char b[65536];
          ssize_t r = read(0, b, sizeof b);
          if (r <= 0) return 0;
          pending.append(b, static_cast<size_t>(r));
          for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
            command(pending.substr(0, nl));
            pending.erase(0, nl + 1);
          }
          std::fflush(stdout);
          continue;
        }
        auto it = viewers.find(static_cast<int>(evs[i].data.u32));
        if (it != viewers.end()) receive(*it->second);
      }
      uint64_t now = now_ms();
      if (now - last_timers >= 10) {
        timers();
        last_timers = now;
      }
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (!srtp_library_init_standalone()) {
    std::fprintf(stderr, "libsrtp2 init failed\n");
    return 1;
  }
  App app;
  if (argc > 1) app.local_ip = argv[1];
  std::string err;
  if (!app.cert.generate(&err, srtp_suite_works(SrtpSuite::AeadAes128Gcm))) {
    std::fprintf(stderr, "certificate: %s\n", err.c_str());
    return 1;
  }
  std::printf("READY\n");
  std::fflush(stdout);
  return app.run();
}
