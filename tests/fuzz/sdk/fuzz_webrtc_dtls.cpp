// DTLS record framing, a server Dtls and a Transport fed arbitrary datagrams. The input is a
// sequence of datagrams, each a 2-byte length and its bytes (the whole input when shorter than 2).
// Invariants: dtls_records either refuses a datagram or its records tile it exactly; a Dtls never
// reaches Connected (nothing here holds the peer's private key; the expected fingerprint is one no
// certificate has) and never delivers application data; a Transport that passed a real ICE check
// from `peer` (DTLS server or client by the first byte) never connects, never delivers RTP, RTCP
// or application data, and sends only to `peer`.
#include <junction/webrtc/dtls.hpp>
#include <junction/webrtc/stun.hpp>
#include <junction/webrtc/transport.hpp>

#include <cstdlib>
#include <cstring>
#include <vector>

using namespace junction::webrtc;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}

// One certificate per process: key generation per input would be most of the run time.
const Certificate& cert() {
  static Certificate c = [] {
    Certificate x;
    check(x.generate());
    return x;
  }();
  return c;
}

constexpr char kNoCert[] =
    "sha-256 00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00";

struct SinkIo : DtlsIo {
  size_t sent = 0, app = 0;
  void dtls_send(const uint8_t* d, size_t n) override {
    check(n > 0 && n <= 1200 && is_dtls(d, n));
    ++sent;
  }
  void dtls_app_data(const uint8_t*, size_t) override { ++app; }
};

struct SinkCb : TransportCallbacks {
  jn_addr peer{};
  size_t media = 0;
  void send_datagram(const uint8_t*, size_t n, const jn_addr& to) override { check(n > 0 && addr_equal(to, peer)); }
  void on_rtp(uint8_t*, size_t) override { ++media; }
  void on_rtcp(uint8_t*, size_t) override { ++media; }
  void on_app_data(const uint8_t*, size_t) override { ++media; }
  void on_state(TransportState s) override { check(s != TransportState::Connected); }
};

template <class F>
void datagrams(const uint8_t* data, size_t size, F&& fn) {
  if (size < 2) {
    fn(data, size);
    return;
  }
  size_t off = 0;
  while (off + 2 <= size) {
    size_t n = static_cast<size_t>(data[off] << 8 | data[off + 1]) % 1500;
    off += 2;
    n = std::min(n, size - off);
    fn(data + off, n);
    off += n;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Framing alone.
  datagrams(data, size, [](const uint8_t* d, size_t n) {
    size_t covered = 0;
    int records = dtls_records(d, n, [&](const DtlsRecord& r) {
      check(r.body >= d + 13 && r.body + r.body_len <= d + n);
      covered += 13 + r.body_len;
      return true;
    });
    if (records >= 0) check(covered == n);
  });

  // A server Dtls.
  SinkIo io;
  Dtls server(cert(), DtlsRole::Server, kNoCert, io);
  uint64_t now = 1000;
  datagrams(data, size, [&](const uint8_t* d, size_t n) {
    server.handle(d, n, now);
    now += 10;
    server.tick(now);
    check(server.state() != DtlsState::Connected);
  });
  SrtpKeys k;
  check(!server.srtp_keys(k) && io.app == 0);

  // A Transport that passed a real ICE check from peer.
  SinkCb cb;
  cb.peer.family = 4;
  cb.peer.port = 5000;
  cb.peer.ip[0] = 127, cb.peer.ip[3] = 1;
  TransportConfig cfg;
  cfg.local_ice = {"LOCL", "localpasswordlocalpass"};
  cfg.remote_ice = {"REMO", "remotepasswordremotepa"};
  cfg.remote_fingerprint = kNoCert;
  cfg.dtls_role = size > 0 && (data[0] & 1) ? DtlsRole::Client : DtlsRole::Server;
  Transport t(cert(), cb, cfg);
  uint8_t req[256];
  uint8_t txid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  StunBuilder b(req, sizeof req, kStunBinding, StunClass::Request, txid);
  b.username("LOCL:REMO").use_candidate().message_integrity("localpasswordlocalpass").fingerprint();
  check(b.ok());
  t.handle_datagram(req, b.size(), cb.peer, now);
  check(t.state() == TransportState::Checking);
  std::vector<uint8_t> buf;
  datagrams(data, size, [&](const uint8_t* d, size_t n) {
    buf.assign(d, d + n);  // handle_datagram decrypts in place: give it a writable copy
    t.handle_datagram(buf.data(), buf.size(), cb.peer, now);
    now += 10;
    t.tick(now);
  });
  check(t.state() != TransportState::Connected && cb.media == 0);
  return 0;
}
