// rtp_relay_floor: the kernel floor for any userspace RTP relay that uses one UDP socket per
// session side.
//
// Why it exists: Junction's rtp-relay and rtpengine (userspace) both spend most of their CPU in
// the kernel: at 50 pps per socket every packet costs one wakeup, one receive syscall and one
// send syscall on its own socket, and nothing can be batched across sessions with the classic
// socket API. This program does exactly that and nothing else (no parsing, no session lookup,
// no stats, no bus), so its CPU per packet is the lower bound a relay with this socket layout
// can reach on this kernel. A real relay's cost minus this floor is its application overhead;
// the floor itself only moves with a different kernel interface or socket layout. The
// `uring` mode checks whether io_uring (one submission for the sends of many sockets) lowers
// the floor; `epoll-connect` what connect()ed sockets (no per-send route lookup) save.
// Driven by bench/rtp-relay/run.py --relay floor-epoll|floor-connect|floor-uring.
//
//   rtp_relay_floor --mode epoll|epoll-connect|uring --sessions N --a-port P --b-port P
//                   [--port-base 20000] [--ports-out FILE] [--seconds S] [--rcvbuf 262144]
//
// Session i has an A-side socket (port-base + 2i, 0 = kernel-chosen) that receives from
// 127.0.0.1:a-port and whose packets leave through the B-side socket (port-base + 2i + 1) to
// 127.0.0.1:b-port, and the reverse. No RTCP sockets (a real relay has 4 fds per session).
// --ports-out writes the loadgen's ports file ("to_a to_b" per line, atomically via rename)
// once every socket is bound. Runs --seconds (0 = until SIGTERM/SIGINT), then prints one JSON
// line: packets received and relayed, send failures, its own CPU seconds (getrusage).
// --rcvbuf sets SO_RCVBUF and SO_SNDBUF per socket (default = rtp-relay's default rcvbuf).
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#ifdef FLOOR_HAVE_URING
#include <liburing.h>
#endif

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

double mono_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

long self_status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key, 0) == 0) return std::strtol(line.c_str() + std::strlen(key), nullptr, 10);
  return 0;
}

long open_fds() {
  long n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
    --n;  // the directory's own fd
  }
  return n;
}

struct Stats {
  uint64_t received = 0, relayed = 0, send_fail = 0, recv_err = 0;
};

struct Relay {
  int sessions = 0;
  bool connected = false;
  std::vector<int> fd;       // 2*sessions: [2i] A side, [2i+1] B side
  sockaddr_in peer[2]{};     // [0] = A (loadgen a-port), [1] = B
  // A packet read on socket i leaves through socket i^1 to the peer of that side.
  const sockaddr_in* out_peer(size_t i) const { return &peer[(i ^ 1) & 1]; }
};

bool deadline_passed(double end) { return end > 0 && mono_s() >= end; }

// --- epoll + recvmmsg + sendmmsg: what Junction's core and rtpengine do per ready socket ---------

constexpr int kBatch = 8;  // at 50 pps per socket a wakeup almost always finds 1 datagram

void run_epoll(const Relay& r, int ep, double end, Stats& st) {
  constexpr int kEvents = 512;
  epoll_event evs[kEvents];
  static char buf[kBatch][2048];
  mmsghdr m[kBatch];
  iovec io[kBatch];
  sockaddr_in from[kBatch];
  while (!g_stop && !deadline_passed(end)) {
    int n = epoll_wait(ep, evs, kEvents, 200);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return;
    }
    for (int k = 0; k < n; ++k) {
      const size_t i = evs[k].data.u32;
      for (int j = 0; j < kBatch; ++j) {
        io[j] = {buf[j], sizeof buf[j]};
        std::memset(&m[j], 0, sizeof m[j]);
        m[j].msg_hdr.msg_iov = &io[j];
        m[j].msg_hdr.msg_iovlen = 1;
        m[j].msg_hdr.msg_name = &from[j];  // a real relay needs the source (latching/validation)
        m[j].msg_hdr.msg_namelen = sizeof from[j];
      }
      int got = recvmmsg(r.fd[i], m, kBatch, MSG_DONTWAIT, nullptr);
      if (got <= 0) {
        // EAGAIN, or a pending ICMP error (ECONNREFUSED on connected sockets once the load
        // generator has gone): reading it clears it.
        if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ++st.recv_err;
        continue;
      }
      st.received += static_cast<uint64_t>(got);
      for (int j = 0; j < got; ++j) {
        io[j].iov_len = m[j].msg_len;
        m[j].msg_hdr.msg_name = r.connected ? nullptr : const_cast<sockaddr_in*>(r.out_peer(i));
        m[j].msg_hdr.msg_namelen = r.connected ? 0 : sizeof(sockaddr_in);
      }
      int done = 0, retried = 0;
      while (done < got) {
        int s = sendmmsg(r.fd[i ^ 1], m + done, static_cast<unsigned>(got - done), MSG_DONTWAIT);
        if (s < 0 && errno == ECONNREFUSED && !retried++) continue;  // stale ICMP error, reported once
        if (s <= 0) break;
        done += s;
      }
      st.relayed += static_cast<uint64_t>(done);
      st.send_fail += static_cast<uint64_t>(got - done);
    }
  }
}

// --- io_uring: multishot recvmsg into a provided-buffer ring, the sends of every socket that had
// --- data batched into one submission (IORING_OP_SENDMSG), SINGLE_ISSUER|DEFER_TASKRUN --------

#ifdef FLOOR_HAVE_URING
constexpr unsigned kBufs = 4096;  // power of two (buffer ring); bounds packets in flight
constexpr unsigned kBufSize = 2048;
constexpr uint16_t kGroup = 1;
constexpr uint64_t kSendTag = 1ull << 62;

struct Uring {
  io_uring ring{};
  io_uring_buf_ring* br = nullptr;
  char* mem = nullptr;
  msghdr recv_tmpl{};  // layout of multishot recvmsg buffers: source address, no control
  struct Send {
    msghdr h;
    iovec v;
  };
  std::vector<Send> sends = std::vector<Send>(kBufs);  // indexed by buffer id
  unsigned pending_returns = 0;

  bool init() {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    int rc = io_uring_queue_init_params(4096, &ring, &p);
    if (rc) {
      fprintf(stderr, "io_uring_queue_init_params: %s\n", strerror(-rc));
      return false;
    }
    mem = static_cast<char*>(aligned_alloc(4096, static_cast<size_t>(kBufs) * kBufSize));
    br = static_cast<io_uring_buf_ring*>(aligned_alloc(4096, kBufs * sizeof(io_uring_buf)));
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<unsigned long>(br);
    reg.ring_entries = kBufs;
    reg.bgid = kGroup;
    rc = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rc) {
      fprintf(stderr, "io_uring_register_buf_ring: %s\n", strerror(-rc));
      return false;
    }
    for (unsigned b = 0; b < kBufs; ++b) give_back(b);
    flush_returns();
    recv_tmpl.msg_namelen = sizeof(sockaddr_in);
    return true;
  }
  void give_back(unsigned bid) {
    io_uring_buf_ring_add(br, mem + static_cast<size_t>(bid) * kBufSize, kBufSize, static_cast<unsigned short>(bid),
                          io_uring_buf_ring_mask(kBufs), static_cast<int>(pending_returns++));
  }
  void flush_returns() {
    if (pending_returns) io_uring_buf_ring_advance(br, static_cast<int>(pending_returns));
    pending_returns = 0;
  }
  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    if (!s) {
      io_uring_submit(&ring);
      s = io_uring_get_sqe(&ring);
    }
    return s;
  }
  void arm_recv(int fd, size_t idx) {
    io_uring_sqe* s = sqe();
    io_uring_prep_recvmsg_multishot(s, fd, &recv_tmpl, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = kGroup;
    s->user_data = idx;
  }
  ~Uring() {
    if (ring.ring_fd > 0) io_uring_queue_exit(&ring);
    free(mem);
    free(br);
  }
};

void run_uring(const Relay& r, Uring& u, double end, Stats& st) {
  for (size_t i = 0; i < r.fd.size(); ++i) u.arm_recv(r.fd[i], i);
  while (!g_stop && !deadline_passed(end)) {
    __kernel_timespec ts{0, 200000000};
    io_uring_cqe* cqe;
    int rc = io_uring_submit_and_wait_timeout(&u.ring, &cqe, 1, &ts, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR) {
      fprintf(stderr, "io_uring_submit_and_wait_timeout: %s\n", strerror(-rc));
      return;
    }
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&u.ring, head, cqe) {
      ++seen;
      const uint64_t ud = cqe->user_data;
      if (ud & kSendTag) {  // send completion: the buffer goes back to the receive pool
        if (cqe->res > 0) ++st.relayed;
        else ++st.send_fail;
        u.give_back(static_cast<unsigned>(ud & 0xffff));
        continue;
      }
      const size_t i = static_cast<size_t>(ud);
      // Multishot ended (ENOBUFS when every buffer is in flight, or an error): re-arm.
      if (!(cqe->flags & IORING_CQE_F_MORE)) u.arm_recv(r.fd[i], i);
      if (!(cqe->flags & IORING_CQE_F_BUFFER)) {
        if (cqe->res < 0 && cqe->res != -ENOBUFS) ++st.recv_err;
        continue;
      }
      const unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
      char* b = u.mem + static_cast<size_t>(bid) * kBufSize;
      io_uring_recvmsg_out* o = cqe->res > 0 ? io_uring_recvmsg_validate(b, cqe->res, &u.recv_tmpl) : nullptr;
      if (!o) {
        ++st.recv_err;
        u.give_back(bid);
        continue;
      }
      ++st.received;
      Uring::Send& sd = u.sends[bid];
      sd.v.iov_base = io_uring_recvmsg_payload(o, &u.recv_tmpl);
      sd.v.iov_len = io_uring_recvmsg_payload_length(o, cqe->res, &u.recv_tmpl);
      std::memset(&sd.h, 0, sizeof sd.h);
      sd.h.msg_iov = &sd.v;
      sd.h.msg_iovlen = 1;
      sd.h.msg_name = const_cast<sockaddr_in*>(r.out_peer(i));
      sd.h.msg_namelen = sizeof(sockaddr_in);
      io_uring_sqe* s = u.sqe();
      io_uring_prep_sendmsg(s, r.fd[i ^ 1], &sd.h, 0);
      s->user_data = kSendTag | bid;
    }
    io_uring_cq_advance(&u.ring, seen);
    u.flush_returns();
  }
}
#endif

int usage() {
  fprintf(stderr,
          "usage: rtp_relay_floor --mode epoll|epoll-connect|uring --sessions N --a-port P --b-port P\n"
          "                       [--port-base 20000] [--ports-out FILE] [--seconds S (0 = until SIGTERM)] [--rcvbuf BYTES]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode, ports_out;
  int sessions = 1000, port_base = 20000, rcvbuf = 262144;
  uint16_t a_port = 0, b_port = 0;
  double seconds = 0;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) return usage();
    std::string v = argv[++i];
    if (k == "--mode") mode = v;
    else if (k == "--sessions") sessions = std::stoi(v);
    else if (k == "--port-base") port_base = std::stoi(v);
    else if (k == "--a-port") a_port = static_cast<uint16_t>(std::stoi(v));
    else if (k == "--b-port") b_port = static_cast<uint16_t>(std::stoi(v));
    else if (k == "--ports-out") ports_out = v;
    else if (k == "--seconds") seconds = std::stod(v);
    else if (k == "--rcvbuf") rcvbuf = std::stoi(v);
    else return usage();
  }
  if ((mode != "epoll" && mode != "epoll-connect" && mode != "uring") || sessions <= 0 || !a_port || !b_port ||
      (port_base && port_base + 2 * sessions > 65536))
    return usage();
#ifndef FLOOR_HAVE_URING
  if (mode == "uring") {
    fprintf(stderr, "built without liburing: mode uring unavailable\n");
    return 2;
  }
#endif

  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: the wait returns EINTR and the loop sees g_stop
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  Relay r;
  r.sessions = sessions;
  r.connected = mode == "epoll-connect";
  r.peer[0] = loopback(a_port);
  r.peer[1] = loopback(b_port);

  // Shared machinery first, so the memory/fd baseline below leaves only the per-session part.
  int ep = -1;
#ifdef FLOOR_HAVE_URING
  Uring u;
  if (mode == "uring" && !u.init()) return 1;
#endif
  if (mode != "uring") ep = epoll_create1(EPOLL_CLOEXEC);
  const long rss_before = self_status_kb("VmRSS:");
  const long fds_before = open_fds();

  r.fd.resize(2 * static_cast<size_t>(sessions));
  for (size_t i = 0; i < r.fd.size(); ++i) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in me = loopback(port_base ? static_cast<uint16_t>(port_base + static_cast<int>(i)) : 0);
    if (bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof me) != 0) {
      fprintf(stderr, "bind 127.0.0.1:%u: %s\n", ntohs(me.sin_port), strerror(errno));
      return 1;
    }
    // connect() pins the 4-tuple: the send path skips the route lookup and the receive path
    // only accepts the peer (what a latched relay would enforce anyway).
    if (r.connected && connect(fd, reinterpret_cast<const sockaddr*>(&r.peer[i & 1]), sizeof(sockaddr_in)) != 0) {
      perror("connect");
      return 1;
    }
    if (ep >= 0) {
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.u32 = static_cast<uint32_t>(i);
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    }
    r.fd[i] = fd;
  }
  if (!ports_out.empty()) {
    std::string tmp = ports_out + ".tmp";
    FILE* f = fopen(tmp.c_str(), "w");
    if (!f) {
      perror("ports-out");
      return 1;
    }
    for (int s = 0; s < sessions; ++s) {
      sockaddr_in a{}, b{};
      socklen_t la = sizeof a, lb = sizeof b;
      getsockname(r.fd[2 * static_cast<size_t>(s)], reinterpret_cast<sockaddr*>(&a), &la);
      getsockname(r.fd[2 * static_cast<size_t>(s) + 1], reinterpret_cast<sockaddr*>(&b), &lb);
      fprintf(f, "%u %u\n", ntohs(a.sin_port), ntohs(b.sin_port));
    }
    if (fclose(f) != 0 || rename(tmp.c_str(), ports_out.c_str()) != 0) {
      perror("ports-out");
      return 1;
    }
  }

  Stats st;
  const double t0 = mono_s();
  const double end = seconds > 0 ? t0 + seconds : 0;
  if (mode == "uring") {
#ifdef FLOOR_HAVE_URING
    run_uring(r, u, end, st);
#endif
  } else {
    run_epoll(r, ep, end, st);
  }
  const double wall = mono_s() - t0;

  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double user = static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
  const double sys = static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
  printf("{\"mode\": \"%s\", \"sessions\": %d, \"sockets\": %zu, \"received\": %llu, \"relayed\": %llu, \"send_fail\": %llu, "
         "\"recv_err\": %llu, \"wall_s\": %.3f, \"cpu_s\": %.3f, \"user_s\": %.3f, \"sys_s\": %.3f, \"cpu_us_per_packet\": %.3f, "
         "\"rss_kb_before_sockets\": %ld, \"rss_kb\": %ld, \"fds_before_sockets\": %ld, \"fds\": %ld}\n",
         mode.c_str(), sessions, r.fd.size(), (unsigned long long)st.received, (unsigned long long)st.relayed,
         (unsigned long long)st.send_fail, (unsigned long long)st.recv_err, wall, user + sys, user, sys,
         st.relayed ? (user + sys) * 1e6 / static_cast<double>(st.relayed) : 0.0, rss_before, self_status_kb("VmRSS:"),
         fds_before, open_fds());
  fflush(stdout);
  for (int fd : r.fd) close(fd);
  if (ep >= 0) close(ep);
  return 0;
}
