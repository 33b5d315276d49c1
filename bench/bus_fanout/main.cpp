// bench_bus_fanout: what a PacketBus fan-out costs per packet per subscriber when every
// subscriber rewrites the 12-byte RTP header (own SSRC and sequence) and sends header + shared
// payload to loopback UDP through fill_msghdr, next to bare sendto/sendmmsg loops sending the
// same datagrams from prebuilt contiguous packets.
//
//   bench_bus_fanout [--packets N]     N packets published per row (default 200000)
//
// The receiving socket is bound but never read: once its buffer fills the kernel drops
// datagrams on receive, so every row pays the same sender-side and loopback path.
#include "bus/buffer_pool.hpp"
#include "bus/packet_bus.hpp"
#include "bus/zero_copy_send.hpp"

#include <arpa/inet.h>
#include <fmt/core.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

using namespace junction;

namespace {

constexpr uint32_t kRtpHeader = 12;
constexpr uint32_t kPayload = 160;  // 20 ms of G.711
constexpr uint32_t kPacket = kRtpHeader + kPayload;
constexpr size_t kBatch = 64;  // messages per sendmmsg

enum class Mode { kBareSendto, kBusSendmsg, kBareSendmmsg, kBusSendmmsg, kBusNoSend };

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kBareSendto: return "bare sendto";
    case Mode::kBusSendmsg: return "bus + sendmsg";
    case Mode::kBareSendmmsg: return "bare sendmmsg";
    case Mode::kBusSendmmsg: return "bus + sendmmsg";
    case Mode::kBusNoSend: return "bus, no syscall";
  }
  return "?";
}

void write_rtp_header(uint8_t* h, uint16_t seq, uint32_t timestamp, uint32_t ssrc) {
  h[0] = 0x80;  // V=2
  h[1] = 8;     // PT 8 (PCMA)
  h[2] = static_cast<uint8_t>(seq >> 8);
  h[3] = static_cast<uint8_t>(seq);
  uint32_t ts = htonl(timestamp), s = htonl(ssrc);
  std::memcpy(h + 4, &ts, 4);
  std::memcpy(h + 8, &s, 4);
}

// Per-subscriber header rewrite: same timestamp, own sequence and SSRC.
void rewrite_rtp_header(uint8_t* out, const uint8_t* in, uint16_t seq, uint32_t ssrc) {
  std::memcpy(out, in, kRtpHeader);
  out[2] = static_cast<uint8_t>(seq >> 8);
  out[3] = static_cast<uint8_t>(seq);
  uint32_t s = htonl(ssrc);
  std::memcpy(out + 8, &s, 4);
}

// The send side the core's udp_send would be: one sendmsg per item, or items queued (header
// bytes copied into the batch, a ref taken on the buffer) and flushed with sendmmsg.
class Sender {
 public:
  Sender(int fd, BufferPool& pool) : fd_(fd), pool_(pool), slots_(kBatch) {}

  void send_now(const jn_send& item) {
    sockaddr_storage sa;
    iovec iov[2];
    msghdr msg;
    if (fill_msghdr(item, sa, iov, msg) < 0 || sendmsg(fd_, &msg, 0) < 0) ++errors_;
  }

  void queue(const jn_send& item) {
    Slot& slot = slots_[queued_];
    std::memcpy(slot.head, item.head, item.head_len);
    jn_send own = item;
    own.head = slot.head;
    if (fill_msghdr(own, slot.sa, slot.iov, msgs_[queued_].msg_hdr) < 0) {
      ++errors_;
      return;
    }
    pool_.ref(item.buf);
    slot.buf = item.buf;
    if (++queued_ == kBatch) flush();
  }

  // fill_msghdr only: the cost of the bus and the message build without the kernel.
  void build_only(const jn_send& item) {
    sockaddr_storage sa;
    iovec iov[2];
    msghdr msg;
    int n = fill_msghdr(item, sa, iov, msg);
    for (int i = 0; i < n; ++i) checksum_ += iov[i].iov_len + static_cast<const uint8_t*>(iov[i].iov_base)[0];
  }

  void flush() {
    size_t sent = 0;
    while (sent < queued_) {
      int n = sendmmsg(fd_, msgs_ + sent, static_cast<unsigned>(queued_ - sent), 0);
      if (n <= 0) {
        errors_ += queued_ - sent;
        break;
      }
      sent += static_cast<size_t>(n);
    }
    for (size_t i = 0; i < queued_; ++i) pool_.unref(slots_[i].buf);
    queued_ = 0;
  }

  uint64_t errors() const { return errors_; }
  uint64_t checksum() const { return checksum_; }

 private:
  struct Slot {
    sockaddr_storage sa;
    iovec iov[2];
    uint8_t head[kRtpHeader];
    jn_buf* buf;
  };
  int fd_;
  BufferPool& pool_;
  std::vector<Slot> slots_;
  mmsghdr msgs_[kBatch] = {};
  size_t queued_ = 0;
  uint64_t errors_ = 0;
  uint64_t checksum_ = 0;
};

struct RtpForwarder : BusSink {
  Sender* sender;
  Mode mode;
  jn_addr to;
  uint32_t ssrc;
  uint16_t seq = 0;
  uint8_t head[kRtpHeader];

  void on_bus_packet(uint64_t, uint64_t, jn_buf* buf) override {
    rewrite_rtp_header(head, buf->data, seq++, ssrc);
    jn_send item{};
    item.to = to;
    item.head = head;
    item.head_len = kRtpHeader;
    item.buf = buf;
    item.buf_offset = kRtpHeader;  // the original header is replaced, the payload is shared
    switch (mode) {
      case Mode::kBusSendmsg: sender->send_now(item); break;
      case Mode::kBusSendmmsg: sender->queue(item); break;
      default: sender->build_only(item); break;
    }
  }
};

volatile uint64_t g_observed;

struct Result {
  double ns_per_send;
  double sends_per_sec;
  uint64_t payload_copies;
  uint64_t errors;
};

Result run_bus(Mode mode, size_t subscribers, size_t packets, int fd, const jn_addr& to) {
  BufferPool pool;
  PacketBus bus;
  Sender sender(fd, pool);
  std::vector<RtpForwarder> sinks(subscribers);
  for (size_t i = 0; i < subscribers; ++i) {
    sinks[i].sender = &sender;
    sinks[i].mode = mode;
    sinks[i].to = to;
    sinks[i].ssrc = 0x1000 + static_cast<uint32_t>(i);
    bus.subscribe("bench/cam-1/audio", &sinks[i], i);
  }
  uint32_t stream = bus.intern("bench/cam-1/audio");
  uint8_t payload[kPayload];
  std::memset(payload, 0xd5, sizeof payload);  // PCMA silence

  auto start = std::chrono::steady_clock::now();
  for (size_t p = 0; p < packets; ++p) {
    // Ingest: what a receive into a pooled buffer leaves behind.
    jn_buf* buf = pool.alloc(kPacket);
    write_rtp_header(buf->data, static_cast<uint16_t>(p), static_cast<uint32_t>(p * 160), 0xabcd);
    std::memcpy(buf->data + kRtpHeader, payload, kPayload);
    bus.publish(stream, buf);
    pool.unref(buf);
  }
  if (mode == Mode::kBusSendmmsg) sender.flush();
  auto elapsed = std::chrono::steady_clock::now() - start;

  bus.release(stream);
  for (auto& s : sinks) bus.unsubscribe_all(&s);
  double ns = std::chrono::duration<double, std::nano>(elapsed).count();
  double sends = static_cast<double>(packets * subscribers);
  g_observed = sender.checksum();  // keeps build_only's work from being optimised away
  return {ns / sends, sends / (ns * 1e-9), pool.payload_copies(), sender.errors()};
}

// The same datagrams from prebuilt contiguous packets (payload already in place, only the
// header written per send): no bus, no pool, no iovec split. The floor for each syscall style.
Result run_bare(Mode mode, size_t subscribers, size_t packets, int fd, const sockaddr_storage& sa,
                socklen_t sa_len) {
  // sendto: one packet per subscriber; sendmmsg: one per batch slot (queued ones stay intact).
  size_t slots = mode == Mode::kBareSendto ? subscribers : kBatch;
  std::vector<std::vector<uint8_t>> prebuilt(slots, std::vector<uint8_t>(kPacket, 0xd5));
  std::vector<mmsghdr> msgs(kBatch);
  std::vector<iovec> iovs(kBatch);
  size_t queued = 0;
  uint64_t errors = 0;
  auto flush = [&] {
    size_t sent = 0;
    while (sent < queued) {
      int n = sendmmsg(fd, msgs.data() + sent, static_cast<unsigned>(queued - sent), 0);
      if (n <= 0) {
        errors += queued - sent;
        break;
      }
      sent += static_cast<size_t>(n);
    }
    queued = 0;
  };

  auto start = std::chrono::steady_clock::now();
  for (size_t p = 0; p < packets; ++p) {
    for (size_t i = 0; i < subscribers; ++i) {
      uint8_t* pkt = prebuilt[mode == Mode::kBareSendto ? i : queued].data();
      write_rtp_header(pkt, static_cast<uint16_t>(p), static_cast<uint32_t>(p * 160),
                       0x1000 + static_cast<uint32_t>(i));
      if (mode == Mode::kBareSendto) {
        if (sendto(fd, pkt, kPacket, 0, reinterpret_cast<const sockaddr*>(&sa), sa_len) < 0)
          ++errors;
        continue;
      }
      iovs[queued] = {pkt, kPacket};
      msghdr& m = msgs[queued].msg_hdr;
      m = {};
      m.msg_name = const_cast<sockaddr_storage*>(&sa);
      m.msg_namelen = sa_len;
      m.msg_iov = &iovs[queued];
      m.msg_iovlen = 1;
      if (++queued == kBatch) flush();
    }
  }
  flush();
  auto elapsed = std::chrono::steady_clock::now() - start;
  double ns = std::chrono::duration<double, std::nano>(elapsed).count();
  double sends = static_cast<double>(packets * subscribers);
  return {ns / sends, sends / (ns * 1e-9), 0, errors};
}

}  // namespace

int main(int argc, char** argv) {
  size_t packets = 200000;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--packets" && i + 1 < argc) {
      packets = std::strtoull(argv[++i], nullptr, 10);
    } else {
      fmt::print(stderr, "usage: {} [--packets N]\n", argv[0]);
      return 2;
    }
  }
  if (packets == 0) {
    fmt::print(stderr, "--packets must be positive\n");
    return 2;
  }

  int rx = socket(AF_INET, SOCK_DGRAM, 0);
  int tx = socket(AF_INET, SOCK_DGRAM, 0);
  if (rx < 0 || tx < 0) {
    perror("socket");
    return 1;
  }
  sockaddr_in bind_addr{};
  bind_addr.sin_family = AF_INET;
  bind_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  if (bind(rx, reinterpret_cast<sockaddr*>(&bind_addr), sizeof bind_addr) != 0 ||
      getsockname(rx, reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    perror("bind");
    return 1;
  }
  jn_addr to = from_sockaddr(reinterpret_cast<sockaddr*>(&bound));

  fmt::print("bus fan-out to loopback UDP ({}): {} packets published per row, {}+{} bytes\n",
             format_addr(to), packets, kRtpHeader, kPayload);
  run_bare(Mode::kBareSendto, 1, 20000, tx, bound, bound_len);  // warm up
  run_bus(Mode::kBusSendmsg, 1, 20000, tx, to);

  fmt::print("{:>11} {:<16} {:>16} {:>12} {:>14} {:>8}\n", "subscribers", "path",
             "ns/pkt/sub", "sends/s", "payload copies", "errors");
  for (size_t subs : {1, 4, 16, 64}) {
    for (Mode mode : {Mode::kBareSendto, Mode::kBusSendmsg, Mode::kBareSendmmsg,
                      Mode::kBusSendmmsg, Mode::kBusNoSend}) {
      bool bare = mode == Mode::kBareSendto || mode == Mode::kBareSendmmsg;
      Result r = bare ? run_bare(mode, subs, packets, tx, bound, bound_len)
                      : run_bus(mode, subs, packets, tx, to);
      fmt::print("{:>11} {:<16} {:>16.1f} {:>12.0f} {:>14} {:>8}\n", subs, mode_name(mode),
                 r.ns_per_send, r.sends_per_sec, bare ? std::string("-") : std::to_string(r.payload_copies),
                 r.errors);
    }
  }
  close(rx);
  close(tx);
  return 0;
}
