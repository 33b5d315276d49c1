// sdk/webrtc Transport costs, both ends in this process over an in-memory "network":
//   bench_webrtc_transport [HANDSHAKES] [PACKETS] [cm]     (cm: offer AES_CM_128_HMAC_SHA1_80 only)
// 1. HANDSHAKES pairs (a DTLS client and a server Transport) from construction to Connected
//    (ICE check each way, DTLS 1.2 with ECDHE, SRTP key export): pairs per second (each pair is
//    both ends' work on one core).
// 2. Heap per connected Transport (glibc mallinfo2 over all the pairs kept alive, one RTP stream
//    each way), sizeof(Transport).
// 3. PACKETS 1200-byte RTP packets protected by one Transport and unprotected by the other:
//    us per packet (both ends), and the C++ heap allocations made in that loop (operator new is
//    counted by this program; the target is 0. libsrtp2 and OpenSSL use malloc, not counted here;
//    they allocate per new SSRC, not per packet).
#include <junction/webrtc/stun.hpp>
#include <junction/webrtc/transport.hpp>

#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

static std::atomic<uint64_t> g_allocs{0};
void* operator new(size_t n) {
  ++g_allocs;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

using namespace junction::webrtc;

namespace {

jn_addr addr(int i) {
  jn_addr a{};
  a.family = 4;
  a.ip[0] = 127;
  a.ip[3] = static_cast<uint8_t>(1 + i);
  a.port = static_cast<uint16_t>(40000 + i);
  return a;
}

// The network: a fixed ring of datagrams (no allocation per packet).
struct Wire {
  struct Slot {
    int to;
    size_t len;
    uint8_t data[1600];
  };
  std::vector<Slot> ring = std::vector<Slot>(64);
  size_t head = 0, tail = 0;
  bool push(int to, const uint8_t* d, size_t n) {
    if (n > sizeof(Slot::data) || tail - head == ring.size()) return false;
    Slot& s = ring[tail++ % ring.size()];
    s.to = to;
    s.len = n;
    std::memcpy(s.data, d, n);
    return true;
  }
  Slot* pop() { return head == tail ? nullptr : &ring[head++ % ring.size()]; }
};

struct End : TransportCallbacks {
  Wire* wire = nullptr;
  int id = 0;
  std::unique_ptr<Transport> t;
  uint64_t rtp = 0;
  void send_datagram(const uint8_t* d, size_t n, const jn_addr&) override {
    if (d[0] > 3) wire->push(1 - id, d, n);  // ICE answers go to the (absent) controlling agent
  }
  void on_rtp(uint8_t*, size_t) override { ++rtp; }
  void on_rtcp(uint8_t*, size_t) override {}
  void on_app_data(const uint8_t*, size_t) override {}
  void on_state(TransportState) override {}
};

// One wire for every pair (pairs are driven one at a time), so it does not count as their memory.
struct Pair {
  explicit Pair(Wire& w) : wire(w) {}
  Wire& wire;
  End e[2];
};

std::vector<uint8_t> check(const IceCredentials& to, const IceCredentials& from) {
  std::vector<uint8_t> b(256);
  uint8_t tx[12] = {1, 2, 3};
  StunBuilder s(b.data(), b.size(), kStunBinding, StunClass::Request, tx);
  s.username(to.ufrag + ":" + from.ufrag).use_candidate().message_integrity(to.pwd).fingerprint();
  b.resize(s.size());
  return b;
}

void pump(Pair& p) {
  while (Wire::Slot* s = p.wire.pop()) p.e[s->to].t->handle_datagram(s->data, s->len, addr(1 - s->to), 1);
}

bool connect(Pair& p, const Certificate& ca, const Certificate& cb) {
  IceCredentials ia, ib;
  if (!ice_random_credentials(ia) || !ice_random_credentials(ib)) return false;
  for (int i = 0; i < 2; ++i) p.e[i].wire = &p.wire, p.e[i].id = i;
  p.e[0].t = std::make_unique<Transport>(ca, p.e[0], TransportConfig{ia, ib, cb.fingerprint(), DtlsRole::Client});
  p.e[1].t = std::make_unique<Transport>(cb, p.e[1], TransportConfig{ib, ia, ca.fingerprint(), DtlsRole::Server});
  auto c1 = check(ib, ia);
  p.e[1].t->handle_datagram(c1.data(), c1.size(), addr(0), 1);
  auto c0 = check(ia, ib);
  p.e[0].t->handle_datagram(c0.data(), c0.size(), addr(1), 1);
  pump(p);
  return p.e[0].t->state() == TransportState::Connected && p.e[1].t->state() == TransportState::Connected;
}

}  // namespace

int main(int argc, char** argv) {
  int handshakes = argc > 1 ? std::atoi(argv[1]) : 500;
  int packets = argc > 2 ? std::atoi(argv[2]) : 200000;
  if (!srtp_library_init_standalone()) return 1;
  Certificate ca, cb;
  bool gcm = !(argc > 3 && std::strcmp(argv[3], "cm") == 0);
  if (!ca.generate(nullptr, gcm) || !cb.generate(nullptr, gcm)) return 1;

  Wire wire;
  std::vector<std::unique_ptr<Pair>> pairs;
  pairs.reserve(static_cast<size_t>(handshakes));
  malloc_trim(0);
  size_t heap0 = mallinfo2().uordblks;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < handshakes; ++i) {
    pairs.push_back(std::make_unique<Pair>(wire));
    if (!connect(*pairs.back(), ca, cb)) {
      std::fprintf(stderr, "handshake %d failed\n", i);
      return 1;
    }
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("handshakes: %d pairs in %.2f s = %.0f pairs/s (both ends on one core), suite %s\n", handshakes, s,
              handshakes / s, suite_name(pairs[0]->e[0].t->srtp_suite()));
  // One RTP packet each way so every Transport holds its SRTP streams, then the heap.
  uint8_t buf[1200 + kSrtpMaxTailroom] = {0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
  for (auto& p : pairs)
    for (int d = 0; d < 2; ++d) {
      buf[0] = 0x80, buf[1] = 96, buf[8] = 0, buf[11] = static_cast<uint8_t>(1 + d);
      p->e[d].t->send_rtp(buf, 200, sizeof buf);
      pump(*p);
    }
  size_t heap1 = mallinfo2().uordblks;
  std::printf("memory: %.1f KiB heap per connected Transport (sizeof %zu bytes)\n",
              (heap1 - heap0) / 1024.0 / (2.0 * handshakes), sizeof(Transport));

  Pair& p = *pairs[0];
  uint64_t allocs0 = g_allocs.load();
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < packets; ++i) {
    buf[0] = 0x80, buf[1] = 96, buf[2] = static_cast<uint8_t>(i >> 8), buf[3] = static_cast<uint8_t>(i);
    buf[8] = 0, buf[11] = 7;
    p.e[0].t->send_rtp(buf, 1200, sizeof buf);
    pump(p);
  }
  s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t allocs = g_allocs.load() - allocs0;
  std::printf("srtp: %d x 1200-byte RTP protect + unprotect in %.2f s = %.2f us per packet, %.0f Mb/s; received %llu; "
              "C++ heap allocations in the loop: %llu\n",
              packets, s, s / packets * 1e6, packets * 1200.0 * 8 / s / 1e6,
              static_cast<unsigned long long>(p.e[1].rtp - 1), static_cast<unsigned long long>(allocs));
  return 0;
}
