// RTP load generator for bench/rtp-relay: drives N relayed sessions in both directions at a
// total packet rate, with sendmmsg/recvmmsg on two sockets (side A and side B of every session),
// and measures loss and one-way transit through the relay (send and receive clocks are the same
// process's CLOCK_MONOTONIC).
//
//   rtp_relay_loadgen --ports FILE --a-port P --b-port P --rate PPS --seconds S [--size 200]
//                     [--warmup-ms 300] [--direct]
// FILE: one line per session "to_a to_b": the relay port side A sends to (delivered to B) and the
// relay port side B sends to. --direct sends A->B and B->A straight (baseline, no relay).
// Prints one JSON object. Besides the totals it counts, per stream (session x direction, 2N
// streams), the packets sent and received in the measurement window, so overload can be judged
// for fairness: streams_with_loss, streams_fully_lost (sent but none received),
// worst_stream_loss_pct and the p50/p99 of the per-stream loss percentage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

int make_socket(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int big = 64 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) != 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    perror("bind");
    exit(2);
  }
  return fd;
}

constexpr uint32_t kMagic = 0x4a4e4c47;  // "JNLG"

}  // namespace

int main(int argc, char** argv) {
  std::string ports_file;
  uint16_t a_port = 0, b_port = 0;
  double rate = 100000, seconds = 3;
  size_t size = 200;
  uint64_t warmup_ms = 300;
  bool direct = false;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (k == "--ports") ports_file = next();
    else if (k == "--a-port") a_port = static_cast<uint16_t>(std::stoi(next()));
    else if (k == "--b-port") b_port = static_cast<uint16_t>(std::stoi(next()));
    else if (k == "--rate") rate = std::stod(next());
    else if (k == "--seconds") seconds = std::stod(next());
    else if (k == "--size") size = std::stoul(next());
    else if (k == "--warmup-ms") warmup_ms = std::stoull(next());
    else if (k == "--direct") direct = true;
    else {
      fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  std::vector<std::pair<uint16_t, uint16_t>> sessions;
  std::ifstream in(ports_file);
  for (int x, y; in >> x >> y;) sessions.emplace_back(static_cast<uint16_t>(x), static_cast<uint16_t>(y));
  if (sessions.empty() || size < 40) {
    fprintf(stderr, "no sessions (--ports) or size < 40\n");
    return 2;
  }
  const size_t n = sessions.size();
  int fd[2] = {make_socket(a_port), make_socket(b_port)};
  std::vector<sockaddr_in> dest[2];
  for (int d = 0; d < 2; ++d) {
    dest[d].resize(n);
    for (size_t s = 0; s < n; ++s) {
      sockaddr_in& sa = dest[d][s];
      sa = sockaddr_in{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      uint16_t p = direct ? (d == 0 ? b_port : a_port) : (d == 0 ? sessions[s].first : sessions[s].second);
      sa.sin_port = htons(p);
    }
  }
  std::vector<uint16_t> seq(2 * n, 0);
  constexpr size_t kBatch = 64;
  std::vector<uint8_t> txbuf[2], rxbuf;
  txbuf[0].resize(kBatch * size);
  txbuf[1].resize(kBatch * size);
  rxbuf.resize(kBatch * 2048);
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];

  const uint64_t t0 = now_ns();
  const uint64_t t_meas = t0 + warmup_ms * 1000000ull;
  const uint64_t t_end = t_meas + static_cast<uint64_t>(seconds * 1e9);
  const uint64_t t_drain = t_end + 300000000ull;
  uint64_t due_sent = 0, sent = 0, send_fail = 0, sent_meas = 0, recv_total = 0, recv_meas = 0, bad = 0;
  uint64_t recv_dir[2] = {0, 0};
  // Per stream 2*session + direction (0 = A->B, 1 = B->A), measurement window only.
  std::vector<uint32_t> stream_sent(2 * n, 0), stream_recv(2 * n, 0);
  std::vector<uint32_t> lat;  // ns, measurement window only
  lat.reserve(static_cast<size_t>(rate * seconds * 1.1) + 1024);
  size_t cursor = 0;  // packet k: session (k/2)%n, direction k%2

  auto do_recv = [&](int d) {
    while (true) {
      for (size_t i = 0; i < kBatch; ++i) {
        iov[i] = {rxbuf.data() + i * 2048, 2048};
        std::memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int r = recvmmsg(fd[d], msgs, kBatch, MSG_DONTWAIT, nullptr);
      if (r <= 0) return;
      uint64_t now = now_ns();
      for (int i = 0; i < r; ++i) {
        const uint8_t* p = rxbuf.data() + static_cast<size_t>(i) * 2048;
        if (msgs[i].msg_len < 32) {
          ++bad;
          continue;
        }
        uint32_t magic, si;
        uint64_t ts;
        std::memcpy(&magic, p + 12, 4);
        std::memcpy(&si, p + 16, 4);
        std::memcpy(&ts, p + 24, 8);
        if (magic != kMagic || si >= n) {
          ++bad;
          continue;
        }
        ++recv_total;
        ++recv_dir[1 - d];
        if (ts >= t_meas && ts < t_end) {
          ++recv_meas;
          ++stream_recv[2 * si + static_cast<size_t>(1 - d)];
          lat.push_back(static_cast<uint32_t>(std::min<uint64_t>(now - ts, 0xffffffffull)));
        }
      }
      if (r < static_cast<int>(kBatch)) return;
    }
  };

  while (true) {
    uint64_t now = now_ns();
    if (now >= t_drain) break;
    if (now < t_end) {
      uint64_t target = static_cast<uint64_t>(rate * static_cast<double>(now - t0) / 1e9);
      // Never burst more than 2 ms worth after a stall (keeps the offered load honest).
      uint64_t cap = static_cast<uint64_t>(rate * 0.002) + kBatch;
      if (target > due_sent + cap) due_sent = target - cap;
      while (due_sent < target) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(target - due_sent, 2 * kBatch));
        // Split the run into the two directions' sockets.
        size_t cnt[2] = {0, 0};
        for (size_t k = 0; k < want; ++k) {
          size_t pk = cursor++;
          int d = static_cast<int>(pk & 1);
          size_t s = (pk >> 1) % n;
          if (cnt[d] >= kBatch) continue;
          uint8_t* p = txbuf[d].data() + cnt[d] * size;
          std::memset(p, 0, size);
          p[0] = 0x80;
          p[1] = 0;
          uint16_t sq = ++seq[2 * s + static_cast<size_t>(d)];
          p[2] = static_cast<uint8_t>(sq >> 8);
          p[3] = static_cast<uint8_t>(sq);
          uint32_t ts = htonl(static_cast<uint32_t>(sq) * 160u);
          std::memcpy(p + 4, &ts, 4);
          uint32_t ssrc = htonl(static_cast<uint32_t>(2 * s + static_cast<size_t>(d) + 1));
          std::memcpy(p + 8, &ssrc, 4);
          std::memcpy(p + 12, &kMagic, 4);
          uint32_t si = static_cast<uint32_t>(s);
          std::memcpy(p + 16, &si, 4);
          uint64_t tsend = now_ns();
          std::memcpy(p + 24, &tsend, 8);
          if (tsend >= t_meas && tsend < t_end) {
            ++sent_meas;
            ++stream_sent[2 * s + static_cast<size_t>(d)];
          }
          ++cnt[d];
          // Stash destination index in the payload tail for building the msghdr below.
          std::memcpy(p + 32, &si, 4);
        }
        for (int d = 0; d < 2; ++d) {
          if (!cnt[d]) continue;
          for (size_t i = 0; i < cnt[d]; ++i) {
            uint8_t* p = txbuf[d].data() + i * size;
            uint32_t si;
            std::memcpy(&si, p + 32, 4);
            iov[i] = {p, size};
            std::memset(&msgs[i], 0, sizeof msgs[i]);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &dest[d][si];
            msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
          }
          size_t done = 0;
          while (done < cnt[d]) {
            int r = sendmmsg(fd[d], msgs + done, static_cast<unsigned>(cnt[d] - done), MSG_DONTWAIT);
            if (r <= 0) {
              send_fail += cnt[d] - done;
              break;
            }
            done += static_cast<size_t>(r);
          }
          sent += done;
        }
        due_sent += want;
      }
    }
    do_recv(0);
    do_recv(1);
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) -> double {
    if (lat.empty()) return 0;
    size_t i = static_cast<size_t>(q * static_cast<double>(lat.size() - 1));
    return lat[i] / 1000.0;
  };
  uint64_t lost = sent_meas > recv_meas ? sent_meas - recv_meas : 0;
  // Fairness: how the loss is spread over the streams that sent in the window.
  std::vector<double> sloss;
  sloss.reserve(2 * n);
  uint64_t streams_with_loss = 0, streams_fully_lost = 0;
  for (size_t k = 0; k < 2 * n; ++k) {
    if (!stream_sent[k]) continue;
    uint32_t got = std::min(stream_recv[k], stream_sent[k]);
    if (got < stream_sent[k]) ++streams_with_loss;
    if (got == 0) ++streams_fully_lost;
    sloss.push_back(100.0 * static_cast<double>(stream_sent[k] - got) / static_cast<double>(stream_sent[k]));
  }
  std::sort(sloss.begin(), sloss.end());
  auto spct = [&](double q) -> double {
    if (sloss.empty()) return 0;
    return sloss[static_cast<size_t>(q * static_cast<double>(sloss.size() - 1))];
  };
  printf("{\"sessions\": %zu, \"rate\": %.0f, \"seconds\": %.2f, \"size\": %zu, \"sent\": %llu, \"received\": %llu, "
         "\"send_fail\": %llu, \"sent_measured\": %llu, \"received_measured\": %llu, \"lost\": %llu, \"loss_pct\": %.4f, "
         "\"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f, \"a_to_b\": %llu, \"b_to_a\": %llu, \"bad\": %llu, "
         "\"streams_total\": %zu, \"streams_with_loss\": %llu, \"streams_fully_lost\": %llu, \"worst_stream_loss_pct\": %.4f, "
         "\"stream_loss_p50_pct\": %.4f, \"stream_loss_p99_pct\": %.4f}\n",
         n, rate, seconds, size, (unsigned long long)sent, (unsigned long long)recv_total, (unsigned long long)send_fail,
         (unsigned long long)sent_meas, (unsigned long long)recv_meas, (unsigned long long)lost,
         sent_meas ? 100.0 * static_cast<double>(lost) / static_cast<double>(sent_meas) : 0.0, pct(0.5), pct(0.99), pct(0.999),
         lat.empty() ? 0.0 : lat.back() / 1000.0, (unsigned long long)recv_dir[0], (unsigned long long)recv_dir[1],
         (unsigned long long)bad, sloss.size(), (unsigned long long)streams_with_loss, (unsigned long long)streams_fully_lost,
         sloss.empty() ? 0.0 : sloss.back(), spct(0.5), spct(0.99));
  close(fd[0]);
  close(fd[1]);
  return 0;
}
