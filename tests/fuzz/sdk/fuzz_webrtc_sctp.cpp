// SCTP input into sdk/webrtc's SctpAssociation (usrsctp + DCEP). Checksums are not verified
// (usrsctp's crc32c "offload"), so mutated packets reach the chunk parsers.
//   First byte even: the rest is a list of packets (2-byte big-endian length, bytes) fed to a
//   fresh association that has only sent its INIT (the handshake parsers).
//   First byte odd: the rest is a list of chunk bundles, each wrapped in a common header with the
//   right ports and verification tag and fed to one side of a connected pair with an open
//   channel; a leading DATA chunk gets the TSN B expects next (DATA / DCEP / SACK / RE-CONFIG / SHUTDOWN parsers, the message layer).
// Also: the DCEP OPEN parser on the raw input. Invariant: nothing crashes or leaks.
#include <junction/webrtc/sctp.hpp>

#include <usrsctp.h>

#include <deque>
#include <string>
#include <vector>

using namespace junction::webrtc;

namespace {
using Bytes = std::vector<uint8_t>;

SctpStack& stack() {
  static SctpStack s;
  static bool ok = [] {
    std::string err;
    bool r = s.init(true, 0, err);
    usrsctp_enable_crc32c_offload();  // no checksum check on input: the fuzzer reaches the chunks
    return r;
  }();
  (void)ok;
  return s;
}

struct Side : SctpCallbacks {
  std::deque<Bytes>* wire = nullptr;
  uint16_t opened = 0xffff;
  void sctp_send(const uint8_t* d, size_t n) override {
    if (wire) wire->emplace_back(d, d + n);
  }
  void on_channel_open(uint16_t s, const DcepOpen&, bool) override { opened = s; }
  void on_message(uint16_t, const uint8_t*, size_t, bool) override {}
  void on_channel_closed(uint16_t) override {}
};

uint64_t g_now = 0;  // simulated time only moves forward across inputs (usrsctp's clock is global)

template <typename F>
void for_each_record(const uint8_t* d, size_t n, F f) {
  size_t off = 0;
  for (int i = 0; i < 64 && off + 2 <= n; ++i) {
    size_t len = static_cast<size_t>(d[off] << 8 | d[off + 1]);
    off += 2;
    if (len > n - off) len = n - off;
    f(d + off, len);
    off += len;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  DcepOpen o;
  parse_dcep_open(data, size, o);
  if (size < 1) return 0;
  SctpStack& st = stack();
  if (!st.ready()) return 0;
  std::deque<Bytes> to_a, to_b;
  Side a, b;
  a.wire = &to_b;
  b.wire = &to_a;
  SctpConfig ca, cb;
  ca.dtls_client = true;
  ca.max_message_size = cb.max_message_size = 65536;
  if ((data[0] & 1) == 0) {
    SctpAssociation B(st, b, cb);
    B.start();
    for_each_record(data + 1, size - 1, [&](const uint8_t* p, size_t n) { B.handle_input(p, n); });
    g_now += 50;
    B.tick(g_now);
    return 0;
  }
  SctpAssociation A(st, a, ca), B(st, b, cb);
  A.start();
  B.start();
  Bytes last_a;  // a packet A sent: its verification tag is the one B expects
  uint32_t next_tsn = 0;  // after the last DATA chunk A sent: what B takes next
  auto note = [&](const Bytes& p) {
    last_a = p;
    if (p.size() >= 12 + 16 && p[12] == 0)  // a DATA chunk first
      next_tsn = (static_cast<uint32_t>(p[16]) << 24 | static_cast<uint32_t>(p[17]) << 16 | static_cast<uint32_t>(p[18]) << 8 | p[19]) + 1;
  };
  for (int i = 0; i < 200 && !(A.state() == SctpState::Connected && B.state() == SctpState::Connected); ++i) {
    if (!to_b.empty()) {
      note(to_b.front());
      B.handle_input(to_b.front().data(), to_b.front().size());
      to_b.pop_front();
    } else if (!to_a.empty()) {
      A.handle_input(to_a.front().data(), to_a.front().size());
      to_a.pop_front();
    } else {
      g_now += SctpStack::kTickMs;
      A.tick(g_now);
      B.tick(g_now);
    }
  }
  if (B.state() != SctpState::Connected) return 0;
  DcepOpen c;
  c.label = "f";
  A.open_channel(c);
  for (int i = 0; i < 20 && (!to_a.empty() || !to_b.empty()); ++i) {
    if (!to_b.empty()) {
      note(to_b.front());
      B.handle_input(to_b.front().data(), to_b.front().size());
      to_b.pop_front();
    }
    if (!to_a.empty()) {
      A.handle_input(to_a.front().data(), to_a.front().size());
      to_a.pop_front();
    }
  }
  if (last_a.size() < 12) return 0;
  for_each_record(data + 1, size - 1, [&](const uint8_t* p, size_t n) {
    Bytes pkt(last_a.begin(), last_a.begin() + 12);  // ports + vtag B expects; checksum ignored
    pkt.insert(pkt.end(), p, p + n);
    // A leading DATA chunk gets the TSN B expects next, so its payload reaches the message layer.
    if (n >= 8 && p[0] == 0) {
      for (int k = 0; k < 4; ++k) pkt[16 + k] = static_cast<uint8_t>(next_tsn >> (24 - 8 * k));
      ++next_tsn;
    }
    B.handle_input(pkt.data(), pkt.size());
  });
  g_now += 50;
  B.tick(g_now);
  return 0;
}
