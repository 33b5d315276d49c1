// One sdk/webrtc Transport on a UDP socket bound to 127.0.0.1, for interop with a real browser
// (tests/integration/test_webrtc_transport_chromium.py). Protocol on stdio:
//   out: "PORT p", "UFRAG u", "PWD p", "FP sha-256 ..."   (for the SDP answer the test builds)
//   in:  "<role> <browser fingerprint>"  role = server (we answer a=setup:passive) | client (active)
//   out: "RESULT {json}" once RTP and RTCP have come (or after the time limit), then it keeps
//        serving until stdin closes, so the browser's stats can see the echo.
// Every RTP packet received is decrypted and sent back re-encrypted with our own SSRC 0x11223344
// and sequence numbers: the browser counts it as inbound RTP (our SRTP works for it), we count
// what we decrypted (its SRTP works for us). Datagrams from outside 127.0.0.0/8 are ignored and
// nothing is ever sent outside it.
#include <junction/webrtc/transport.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

using namespace junction::webrtc;

namespace {

uint64_t now_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}
bool loopback(const sockaddr_in& a) { return (ntohl(a.sin_addr.s_addr) >> 24) == 127; }
// Safe inside a JSON string.
std::string sanitized(std::string s) {
  for (char& c : s)
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '\'';
  return s;
}

struct Peer : TransportCallbacks {
  int fd = -1;
  Transport* t = nullptr;
  size_t rtp = 0, rtcp = 0, echoed = 0;
  uint16_t seq = 0;
  uint8_t out[1500 + kSrtpMaxTailroom];
  void send_datagram(const uint8_t* d, size_t n, const jn_addr& to) override {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(to.port);
    std::memcpy(&sa.sin_addr, to.ip, 4);
    if (to.family != 4 || !loopback(sa)) return;
    (void)sendto(fd, d, n, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  }
  void on_rtp(uint8_t* p, size_t n) override {
    ++rtp;
    if (n > 1500) return;
    std::memcpy(out, p, n);
    out[2] = static_cast<uint8_t>(seq >> 8);
    out[3] = static_cast<uint8_t>(seq);
    ++seq;
    out[8] = 0x11, out[9] = 0x22, out[10] = 0x33, out[11] = 0x44;
    if (t->send_rtp(out, n, sizeof out)) ++echoed;
  }
  void on_rtcp(uint8_t*, size_t) override { ++rtcp; }
  void on_app_data(const uint8_t*, size_t) override {}
  void on_state(TransportState s) override {
    std::fprintf(stderr, "state %s %s\n", transport_state_name(s), t ? t->error().c_str() : "");
  }
};

}  // namespace

int main() {
  if (!srtp_library_init_standalone()) return 1;
  Peer peer;
  peer.fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(0x7f000001);
  socklen_t sl = sizeof sa;
  if (peer.fd < 0 || bind(peer.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      getsockname(peer.fd, reinterpret_cast<sockaddr*>(&sa), &sl) != 0)
    return 1;
  Certificate cert;
  IceCredentials ice;
  std::string err;
  if (!cert.generate(&err) || !ice_random_credentials(ice)) return 1;
  std::printf("PORT %d\nUFRAG %s\nPWD %s\nFP %s\n", ntohs(sa.sin_port), ice.ufrag.c_str(), ice.pwd.c_str(),
              cert.fingerprint().c_str());
  std::fflush(stdout);

  // Built before the browser's answer is known, as an offerer's would be: checks are answered at
  // once, DTLS waits for the fingerprint.
  TransportConfig cfg;
  cfg.local_ice = ice;
  Transport t(cert, peer, cfg);
  peer.t = &t;
  bool configured = false, reported = false;
  uint64_t deadline = now_ms() + 30000;
  uint8_t buf[2048];
  for (;;) {
    pollfd p[2] = {{peer.fd, POLLIN, 0}, {0, POLLIN, 0}};
    uint64_t next = t.next_timer_ms(), now = now_ms();
    int wait = static_cast<int>(std::min<uint64_t>(200, next > now ? next - now : 0));
    if (poll(p, 2, wait) < 0) break;
    if (p[1].revents & (POLLIN | POLLHUP)) {
      std::string line;
      if (!std::getline(std::cin, line)) break;  // stdin closed: done
      if (!configured) {
        size_t sp = line.find(' ');
        DtlsRole role = line.substr(0, sp) == "client" ? DtlsRole::Client : DtlsRole::Server;
        t.set_remote({}, sp == std::string::npos ? "" : line.substr(sp + 1), role);
        configured = true;
      }
    }
    if (p[0].revents & POLLIN) {
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      ssize_t r = recvfrom(peer.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (r > 0 && loopback(from)) {
        jn_addr a{};
        a.family = 4;
        a.port = ntohs(from.sin_port);
        std::memcpy(a.ip, &from.sin_addr, 4);
        t.handle_datagram(buf, static_cast<size_t>(r), a, now_ms());
      }
    }
    t.tick(now_ms());
    if (!reported && ((peer.rtp >= 100 && peer.rtcp >= 1) || now_ms() > deadline ||
                      t.state() == TransportState::Failed)) {
      reported = true;
      TransportStats st = t.stats();
      std::printf("RESULT {\"state\": \"%s\", \"error\": \"%s\", \"suite\": \"%s\", \"rtp_in\": %zu, \"rtcp_in\": %zu, "
                  "\"echoed\": %zu, \"srtp_in_failed\": %llu, \"checks\": %llu, \"unauthorized\": %llu}\n",
                  transport_state_name(t.state()), sanitized(t.error()).c_str(), suite_name(t.srtp_suite()), peer.rtp, peer.rtcp,
                  peer.echoed, static_cast<unsigned long long>(st.srtp_in_failed),
                  static_cast<unsigned long long>(st.ice.valid), static_cast<unsigned long long>(st.ice.unauthorized));
      std::fflush(stdout);
    }
  }
  close(peer.fd);
  return 0;
}
