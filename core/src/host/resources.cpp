#include "host/resources.hpp"

#include "bus/zero_copy_send.hpp"
#include "host/framer.hpp"
#include "host/media_loop.hpp"
#include "host/port_ranges.hpp"
#include "net/tls_session.hpp"
#include "util/log.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <unordered_map>

namespace junction {
namespace {

constexpr size_t kRecvBatch = 32;       // datagrams per recvmmsg
constexpr size_t kRecvBudget = 256;     // datagrams per socket per loop wakeup (fairness)
constexpr size_t kTcpWriteLimit = 8u << 20;  // queued bytes before tcp_send refuses

jn_status fail(PluginSlot& slot, jn_status st, std::string msg) {
  slot.log(JN_LOG_WARN, msg);
  slot.set_error(std::move(msg));
  return st;
}

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// ------------------------------------------------------------------------------------------
struct TimerRes : Resource {
  TimerRes(PluginSlot* o, uint64_t c) : Resource(Kind::Timer, o, c) {}
  uv_timer_t timer{};
  bool repeating = false;
};

void on_timer(uv_timer_t* t) {
  auto* r = static_cast<TimerRes*>(t->data);
  PluginSlot* owner = r->owner;
  jn_handle h = r->handle;
  uint64_t cookie = r->cookie;
  PluginHost& host = owner->host();
  // A one-shot timer's handle dies when it fires; the plugin learns that from the hook.
  if (!r->repeating) host.close_resource(h);
  owner->deliver_timer(h, cookie);
}

bool is_wildcard(const jn_addr& a) {
  const size_t n = a.family == 4 ? 4 : 16;
  for (size_t i = 0; i < n; ++i)
    if (a.ip[i]) return false;
  return true;
}

// The local address a datagram was sent to, from its IP_PKTINFO / IPV6_PKTINFO control message;
// the socket's own address when there is none.
jn_addr destination_of(const msghdr& msg, const jn_addr& local) {
  jn_addr out = local;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      out.family = 4;
      std::memset(out.ip, 0, sizeof out.ip);
      std::memcpy(out.ip, &pi.ipi_addr, 4);
      out.scope_id = 0;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      out.family = 6;
      std::memcpy(out.ip, &pi.ipi6_addr, 16);
      out.scope_id = IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr) ? pi.ipi6_ifindex : 0;
    }
  }
  return out;
}

bool same_peer(const jn_addr& a, const jn_addr& b) {
  return a.family == b.family && a.port == b.port && a.scope_id == b.scope_id &&
         std::memcmp(a.ip, b.ip, a.family == 4 ? 4 : 16) == 0;
}

// ------------------------------------------------------------------------------------------
}  // namespace

// The replies a plugin sends while a received batch of a control-loop socket is delivered: a
// datagram sent on that socket to the source of one of the batch's datagrams is copied into a
// pool buffer and queued; all of them leave in one sendmmsg once the plugin has seen the batch
// (flush), instead of one syscall per reply. Sends to any other address, on any other socket,
// or that cannot be queued go at once as before. A reply's status is then JN_OK (the kernel's
// refusal at flush is counted in junction_udp_tx_dropped_total and logged), as for a full
// socket buffer today.
struct ReplyBatch {
  static constexpr size_t kMax = 64;
  ReplyBatch(UdpRes& s, BufferPool& p, jn_buf* const* b, size_t bn) : sock(s), pool(p), rx(b), rx_n(bn) {}
  UdpRes& sock;
  BufferPool& pool;
  jn_buf* const* rx;  // the batch's datagrams: replies go to their sources
  size_t rx_n;
  jn_send items[kMax];  // [0, n) used; not zeroed (per batch)
  size_t n = 0;
  uint64_t* queued_total = nullptr;

  bool is_reply(const jn_send& it) const {
    constexpr uint32_t kKnown = JN_SEND_TOS | JN_SEND_FROM;
    // What udp_send_items would refuse is not queued: the plugin hears JN_ERR_INVALID as before.
    if (it.sock != sock.handle || (it.flags & ~kKnown) || (it.buf && it.buf_offset > it.buf->len)) return false;
    if ((it.flags & JN_SEND_FROM) && it.from.family != it.to.family) return false;
    for (size_t i = 0; i < rx_n; ++i)
      if (same_peer(rx[i]->src, it.to)) return true;
    return false;
  }

  // Queues a copy of a reply; false: send it now (already flushed, so the order to a peer holds).
  bool defer(const jn_send& it) {
    uint32_t rest = it.buf ? it.buf->len - it.buf_offset : 0;
    uint64_t len = uint64_t(it.head ? it.head_len : 0) + rest;
    if (n == kMax) flush();
    jn_buf* b = len <= pool.config().buffer_size ? pool.alloc(static_cast<uint32_t>(len)) : nullptr;
    if (!b) {
      flush();
      return false;
    }
    uint32_t at = 0;
    if (it.head && it.head_len) std::memcpy(b->data, it.head, at = it.head_len);
    if (rest) std::memcpy(b->data + at, it.buf->data + it.buf_offset, rest);
    b->len = static_cast<uint32_t>(len);
    jn_send& q = items[n++];
    q = it;
    q.head = nullptr;
    q.head_len = 0;
    q.buf = b;
    q.buf_offset = 0;
    ++*queued_total;
    return true;
  }

  void flush() {
    if (!n) return;
    sock.replies = nullptr;  // udp_send_items must send these, not queue them again
    jn_status st = udp_send_items(items, n, [](void* a, jn_handle) { return static_cast<UdpRes*>(a); }, &sock);
    int err = errno;
    sock.replies = this;
    for (size_t i = 0; i < n; ++i) BufferPool::unref(items[i].buf);
    n = 0;
    if (st != JN_OK && sock.owner) {
      // What the plugin would have heard from udp_send (its call already returned JN_OK).
      uint64_t e = ++sock.reply_errors;
      if (e <= 10 || e % 1000 == 0)
        sock.owner->log(JN_LOG_WARN, fmt::format("udp: replies queued on {} not sent (status {}: {}); {} time(s) so far",
                                                 format_addr(sock.local), static_cast<int>(st), strerror(err), e));
    }
  }
};

void on_udp_readable(uv_poll_t* p, int status, int events) {
  auto* r = static_cast<UdpRes*>(p->data);
  if (status < 0 || !(events & UV_READABLE)) return;
  // A media loop's socket: its loop's pool, its loop's delivery (which holds input during a
  // reload), and the loop's run lock around it all (the control loop's barrier, see
  // MediaLoop::pause).
  MediaLoop* media = r->media;
  std::unique_lock<std::mutex> run;
  if (media) run = std::unique_lock<std::mutex>(media->run_mutex());
  if (!r->owner) return;
  PluginSlot& slot = *r->owner;
  BufferPool& pool = media ? media->pool() : slot.host().services().pool;
  jn_buf* bufs[kRecvBatch];
  mmsghdr msgs[kRecvBatch];
  iovec iov[kRecvBatch];
  sockaddr_storage from[kRecvBatch];
  // Room for one IP_PKTINFO or IPV6_PKTINFO control message per datagram (wildcard binds only).
  alignas(cmsghdr) char control[kRecvBatch][CMSG_SPACE(sizeof(in6_pktinfo))];
  size_t budget = kRecvBudget;
  while (budget > 0 && r->owner) {
    // Size the batch to recent traffic: a socket that gets one datagram per wakeup should not
    // prepare 32 buffers and headers each time; a busy one doubles back up to kRecvBatch.
    size_t want = std::min<size_t>(r->batch_hint, budget);
    // Datagrams larger than a pool slot come in one-off buffers: prepare few of them.
    if (r->max_datagram > pool.config().buffer_size) want = std::min<size_t>(want, 4);
    size_t have = 0;
    for (; have < want; ++have) {
      bufs[have] = pool.alloc(r->max_datagram);
      if (!bufs[have]) break;  // pool exhausted: the kernel keeps the rest for next time
      bufs[have]->len = 0;
      iov[have] = {bufs[have]->data, r->max_datagram};
      std::memset(&msgs[have], 0, sizeof(mmsghdr));
      msgs[have].msg_hdr.msg_iov = &iov[have];
      msgs[have].msg_hdr.msg_iovlen = 1;
      msgs[have].msg_hdr.msg_name = &from[have];
      msgs[have].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      if (r->pktinfo) {
        msgs[have].msg_hdr.msg_control = control[have];
        msgs[have].msg_hdr.msg_controllen = sizeof control[have];
      }
    }
    if (have == 0) break;
    int n = recvmmsg(r->fd, msgs, static_cast<unsigned>(have), MSG_DONTWAIT, nullptr);
    size_t got = n > 0 ? static_cast<size_t>(n) : 0;
    for (size_t i = got; i < have; ++i) pool.unref(bufs[i]);
    if (got == 0) break;
    uint64_t rx = now_ns();
    size_t kept = 0;
    for (size_t i = 0; i < got; ++i) {
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        if (media) media->stats().rx_truncated.fetch_add(1, std::memory_order_relaxed);
        else ++*r->rx_truncated;
        pool.unref(bufs[i]);
        continue;
      }
      bufs[i]->len = msgs[i].msg_len;
      bufs[i]->tailroom += r->max_datagram - msgs[i].msg_len;  // room after the datagram (SRTP auth tag)
      bufs[i]->rx_ns = rx;
      bufs[i]->src = from_sockaddr(reinterpret_cast<sockaddr*>(&from[i]));
      bufs[i]->dst = r->pktinfo ? destination_of(msgs[i].msg_hdr, r->local) : r->local;
      bufs[kept++] = bufs[i];
    }
    if (media) {
      media->stats().rx_packets.fetch_add(kept, std::memory_order_relaxed);
      if (kept) media->deliver(*r, bufs, kept);
    } else {
      *r->rx_packets += kept;
      if (kept) {
        ReplyBatch batch{*r, pool, bufs, kept};
        batch.queued_total = r->tx_batched;
        r->replies = &batch;
        slot.deliver_udp(r->handle, r->cookie, bufs, kept);
        r->replies = nullptr;
        batch.flush();
        r->replies = nullptr;
      }
    }
    for (size_t i = 0; i < kept; ++i) pool.unref(bufs[i]);
    budget -= got;
    // Twice the last burst: a steady burst of b datagrams then takes one recvmmsg that returns
    // fewer than asked (drained), not a second one that finds nothing.
    r->batch_hint = got == want ? std::min<uint32_t>(r->batch_hint * 2, kRecvBatch)
                                : std::clamp<uint32_t>(static_cast<uint32_t>(got) * 2, 2, kRecvBatch);
    if (got < want) break;  // drained
  }
}

// ------------------------------------------------------------------------------------------
// What a listener's limits count ([limits] tcp_max_conns_*): shared by the listener and the
// connections it accepted, so a connection outliving its listener still gives its place back.
struct TcpAccounting {
  uint32_t conns = 0;
  std::unordered_map<std::string, uint32_t> per_ip;  // raw address bytes -> open connections
  uint64_t refusals = 0;                              // for the log's rate limit
};

struct TcpRes : Resource {
  TcpRes(Kind k, PluginSlot* o, uint64_t c) : Resource(k, o, c) {}
  ~TcpRes() override {
    if (accepted_fd >= 0) ::close(accepted_fd);  // a loop connection abandoned before its loop opened it
    if (acct && !ip_key.empty()) {
      --acct->conns;
      auto it = acct->per_ip.find(ip_key);
      if (it != acct->per_ip.end() && --it->second == 0) acct->per_ip.erase(it);
    }
    // A listener's fds; its poll handle is already closed (this runs from its close callback).
    if (lfd >= 0) ::close(lfd);
    if (spare_fd >= 0) ::close(spare_fd);
    if (tls_ctx) SSL_CTX_free(tls_ctx);
  }
  uv_tcp_t tcp{};  // connections only
  jn_tcp_options opts{};
  jn_handle listener = 0;
  jn_addr peer{};
  std::unique_ptr<StreamFramer> framer;
  bool closing = false;
  bool shutting_down = false;
  bool connected = false;
  jn_status close_status = JN_OK;
  uv_timer_t* idle = nullptr;     // connection: idle timeout; listener: accept retry after EMFILE
  uv_timer_t* connect_timer = nullptr;
  uv_connect_t connect_req{};
  uv_shutdown_t shutdown_req{};
  std::shared_ptr<TcpAccounting> acct;
  std::string ip_key;  // connection: its peer's address (counted in acct)
  // Listener: the core accepts itself (poll + accept4) to apply the limits before a connection
  // costs anything, and keeps a spare fd for EMFILE (see on_tcp_acceptable).
  uv_poll_t lpoll{};
  int lfd = -1;
  int spare_fd = -1;
  std::string addr_text;
  // TLS (jn_tcp_options.tls, 2.1). A listener holds the server context its connections share; a
  // connection its session. ACCEPTED / CONNECTED reach the plugin once the handshake completed
  // (announced); a server-side handshake that fails closes without the plugin ever hearing of it.
  SSL_CTX* tls_ctx = nullptr;
  std::unique_ptr<TlsSession> tls;
  std::string tls_ca_file, tls_server_name;  // a client connection's, until it connects
  bool announced = true;                     // false while a TLS handshake is pending
  // A connection on a media loop (opts.loop = k, see media_loop.hpp) has two halves, both with
  // `media` set. The proxy sits in the host's handle table and is touched by the control thread
  // only (it holds the listener's accounting); the other is the connection itself, owned by loop
  // k: its uv_tcp_t, framer and timers live there, and only that thread (or the control thread
  // under the loop's run lock) touches it, `owner` included.
  MediaLoop* media = nullptr;
  MediaLoop* accept_to = nullptr;  // a listener's: the loop its accepted connections go to
  bool proxy = false;
  PluginHost* host = nullptr;     // loop connection: where its handle goes back when it is freed
  PluginSlot* origin = nullptr;   // loop connection: the slot that opened it (owner is cleared at unload)
  int accepted_fd = -1;           // loop connection accepted on the control loop, opened on loop k
  sockaddr_storage connect_to{};  // loop connection that loop k connects
  uint32_t connect_timeout_ms = 0;
  uint64_t rx_ns = 0;             // loop connection: when the read being framed arrived
  bool read_paused = false;       // loop connection: reading stopped while its plugin is swapped
};

namespace {

struct WriteReq {
  uv_write_t req;
  std::string data;
};

void tcp_emit(TcpRes& c, uint32_t type, const uint8_t* data, size_t len, jn_status st = JN_OK, jn_buf* buf = nullptr) {
  if (!c.owner) return;
  jn_tcp_event ev{};
  ev.struct_size = sizeof ev;
  ev.type = type;
  ev.conn = c.handle;
  ev.listener = c.listener;
  ev.cookie = c.cookie;
  ev.data = data;
  ev.len = len;
  ev.peer = c.peer;
  ev.status = st;
  ev.buf = buf;
  if (c.media) c.media->deliver_tcp(*c.owner, ev);  // on loop k (held during a swap)
  else c.owner->deliver_tcp(ev);
}

// A loop connection's callbacks run under its loop's run lock, like every media-loop callback:
// the control thread's barrier (reload) and tcp_abandon (unload) rely on it.
std::unique_lock<std::mutex> loop_lock(TcpRes& c) {
  return c.media ? std::unique_lock<std::mutex>(c.media->run_mutex()) : std::unique_lock<std::mutex>();
}

void tcp_begin_close(TcpRes& c, jn_status st);

// A frame of a media-loop connection: copied once, from the loop's read buffer into a buffer of
// the loop's pool, which the plugin may keep (buf_ref) or publish on the bus as is.
bool tcp_loop_frame(TcpRes& c, std::string_view frame) {
  MediaLoop& m = *c.media;
  jn_buf* b = m.pool().alloc(static_cast<uint32_t>(frame.size()));
  if (!b) {
    // A stream cannot skip a frame and stay meaningful: the connection goes, the loop stays.
    if (c.owner)
      c.owner->log(JN_LOG_WARN, fmt::format("tcp on media loop {}: the loop's buffer pool is exhausted; closing the connection with {}",
                                            m.index(), format_addr(c.peer)));
    tcp_begin_close(c, JN_ERR_NOMEM);
    return false;
  }
  if (!frame.empty()) std::memcpy(b->data, frame.data(), frame.size());
  b->len = static_cast<uint32_t>(frame.size());
  b->rx_ns = c.rx_ns;
  b->src = c.peer;
  m.stats().tcp_rx_frames.fetch_add(1, std::memory_order_relaxed);
  tcp_emit(c, JN_TCP_FRAME, b->data, b->len, JN_OK, b);
  BufferPool::unref(b);  // the plugin took its own reference if it keeps the frame
  return !c.closing && c.owner;
}

void tcp_frame_input(TcpRes& c, const char* data, size_t n) {
  auto alive = [&c] { return !c.closing && c.owner; };
  c.framer->feed(
      data, n,
      [&](std::string_view frame) {
        if (c.media) return tcp_loop_frame(c, frame);
        tcp_emit(c, JN_TCP_FRAME, reinterpret_cast<const uint8_t*>(frame.data()), frame.size());
        return alive();
      },
      [&](size_t len) {
        tcp_emit(c, JN_TCP_OVERSIZE, nullptr, len);
        // On a media loop a length over max_frame closes the connection (as the ABI says of
        // LEN16): a peer that lies about a length is not trusted with the rest of its stream.
        if (c.media && c.opts.framing == JN_FRAME_LEN16 && alive()) {
          c.media->stats().tcp_bad_streams.fetch_add(1, std::memory_order_relaxed);
          c.owner->log(JN_LOG_WARN, fmt::format("tcp on media loop {}: closing the connection with {}: a frame length of {} "
                                                "is over max_frame {}", c.media->index(), format_addr(c.peer), len, c.opts.max_frame));
          tcp_begin_close(c, JN_ERR_INVALID);
        }
        return alive();
      });
  if (c.framer->broken() && alive()) {
    if (c.media) c.media->stats().tcp_bad_streams.fetch_add(1, std::memory_order_relaxed);
    if (c.owner)
      c.owner->log(JN_LOG_WARN, fmt::format("tcp: closing the connection from {}: {}", format_addr(c.peer),
                                            c.framer->broken_reason()));
    tcp_begin_close(c, JN_ERR_INVALID);
  }
}

void tcp_touch_idle(TcpRes& c) {
  if (c.idle) uv_timer_again(c.idle);
}

// Writes raw bytes (already framed / encrypted) to the socket.
jn_status tcp_write_raw(TcpRes& c, std::string data) {
  if (data.empty()) return JN_OK;
  auto* w = new WriteReq;
  w->data = std::move(data);
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c.tcp), &b, 1, [](uv_write_t* req, int) { delete reinterpret_cast<WriteReq*>(req); });
  if (rc != 0) {
    delete w;
    return JN_ERR_IO;
  }
  return JN_OK;
}

void tcp_tls_flush(TcpRes& c) {
  std::string out;
  if (c.tls && c.tls->take_output(out)) tcp_write_raw(c, std::move(out));
}

void tcp_announce(TcpRes& c) {
  if (c.announced) return;
  c.announced = true;
  tcp_emit(c, c.listener ? JN_TCP_ACCEPTED : JN_TCP_CONNECTED, nullptr, 0);
}

// Ciphertext from the socket: decrypted bytes go through the framer; the handshake's and the
// session's own output go back to the peer.
void tcp_tls_input(TcpRes& c, const char* data, size_t n) {
  auto alive = [&c] { return !c.closing && c.owner; };
  TlsSession::Status st = c.tls->feed(data, n, [&](const char* p, size_t len) {
    tcp_announce(c);  // the handshake completed in this very read: the plugin hears it first
    if (alive()) tcp_frame_input(c, p, len);
    return alive();
  });
  tcp_tls_flush(c);
  if (!alive()) return;
  switch (st) {
    case TlsSession::Status::kConnected:
      tcp_announce(c);
      break;
    case TlsSession::Status::kClosed:
      tcp_begin_close(c, JN_OK);
      break;
    case TlsSession::Status::kError:
      if (c.owner) {
        c.owner->host().services().metrics.add("junction_tcp_tls_failures_total", fmt::format("plugin=\"{}\"", c.owner->name()), 1);
        c.owner->log(JN_LOG_WARN, fmt::format("tcp {} {}: {}", c.listener ? "from" : "to", format_addr(c.peer), c.tls->error()));
      }
      tcp_begin_close(c, JN_ERR_IO);
      break;
    case TlsSession::Status::kOk:
      break;
  }
}

void on_tcp_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<TcpRes*>(h->data);
  if (c->media) {  // the loop's own read buffer (reads are synchronous in the read callback)
    *buf = uv_buf_init(c->media->read_scratch(), MediaLoop::kReadScratch);
    return;
  }
  *buf = uv_buf_init(c->owner ? c->owner->host().read_scratch() : nullptr, c->owner ? PluginHost::kReadScratch : 0);
}

void on_tcp_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<TcpRes*>(s->data);
  auto lock = loop_lock(*c);
  if (n > 0) {
    tcp_touch_idle(*c);
    if (c->media) c->rx_ns = now_ns();
    if (c->tls) tcp_tls_input(*c, buf->base, static_cast<size_t>(n));
    else tcp_frame_input(*c, buf->base, static_cast<size_t>(n));
    // Its plugin is being swapped: this read's frames are held; the rest waits in the kernel (TCP
    // flow control) until the loop replays them, instead of piling up in the loop's pool.
    if (c->media && c->owner && !c->closing && !c->shutting_down && !c->read_paused && c->media->holding(*c->owner)) {
      uv_read_stop(s);
      c->read_paused = true;
      c->media->tcp_pause_reading(c->handle);
    }
  } else if (n < 0) {
    tcp_begin_close(*c, n == UV_EOF ? JN_OK : JN_ERR_IO);
  }
}

void on_tcp_closed(uv_handle_t* h) {
  auto* c = static_cast<TcpRes*>(h->data);
  if (c->media) {
    // On loop k: CLOSED there, then the connection is freed here, on the thread that owns it, and
    // its handle goes back to the control loop (which drops the proxy).
    auto lock = loop_lock(*c);
    if (c->announced) tcp_emit(*c, JN_TCP_CLOSED, nullptr, 0, c->close_status);
    c->media->tcp_forget(c->handle, c->host, c->origin);
    delete c;
    return;
  }
  PluginHost* host = c->owner ? &c->owner->host() : nullptr;
  // A TLS connection accepted but never announced (its handshake failed) closes unheard.
  if (c->kind == Resource::Kind::TcpConn && (c->announced || !c->listener)) tcp_emit(*c, JN_TCP_CLOSED, nullptr, 0, c->close_status);
  if (c->owner) c->owner->resources().erase(c->handle);
  if (host) host->forget_resource(c->handle);  // frees c
  else delete c;                               // detached: nobody's table holds it
}

void on_idle_closed(uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); }

void tcp_begin_close(TcpRes& c, jn_status st) {
  if (c.closing) return;
  c.closing = true;
  c.close_status = st;
  for (uv_timer_t** t : {&c.idle, &c.connect_timer}) {
    if (*t) {
      uv_close(reinterpret_cast<uv_handle_t*>(*t), on_idle_closed);
      *t = nullptr;
    }
  }
  if (c.kind == Resource::Kind::TcpListener) {
    uv_close(reinterpret_cast<uv_handle_t*>(&c.lpoll), on_tcp_closed);  // the fds close in ~TcpRes
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&c.tcp), on_tcp_closed);
}

// Orderly close asked by the plugin: queued writes are flushed first (uv_shutdown).
void tcp_graceful_close(TcpRes& c) {
  if (c.closing || c.shutting_down) return;
  if (!c.connected) {
    tcp_begin_close(c, JN_OK);
    return;
  }
  c.shutting_down = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c.tcp));
  c.shutdown_req.data = &c;
  if (uv_shutdown(&c.shutdown_req, reinterpret_cast<uv_stream_t*>(&c.tcp), [](uv_shutdown_t* req, int) {
        auto* c = static_cast<TcpRes*>(req->data);
        auto lock = loop_lock(*c);
        tcp_begin_close(*c, JN_OK);
      }) != 0)
    tcp_begin_close(c, JN_OK);
}

void on_tcp_idle(uv_timer_t* t) {
  auto* c = static_cast<TcpRes*>(t->data);
  auto lock = loop_lock(*c);
  tcp_begin_close(*c, JN_ERR_TIMEOUT);
}

void on_tcp_connect_timeout(uv_timer_t* t) {
  auto* c = static_cast<TcpRes*>(t->data);
  auto lock = loop_lock(*c);
  if (c->owner) {
    // The metrics registry is the control loop's; a media loop's timeouts are in the log only.
    if (!c->media)
      c->owner->host().services().metrics.add("junction_tcp_connect_timeouts_total", fmt::format("plugin=\"{}\"", c->owner->name()), 1);
    c->owner->log(JN_LOG_WARN, fmt::format("tcp_connect {}: no answer within limits.tcp_connect_timeout_ms", format_addr(c->peer)));
  }
  tcp_begin_close(*c, JN_ERR_TIMEOUT);  // JN_TCP_CLOSED with status JN_ERR_TIMEOUT
}

void tcp_start(TcpRes& c, uv_loop_t* loop) {
  c.connected = true;
  if (c.opts.idle_timeout_ms) {
    c.idle = new uv_timer_t;
    uv_timer_init(loop, c.idle);
    c.idle->data = &c;
    uv_timer_start(c.idle, on_tcp_idle, c.opts.idle_timeout_ms, c.opts.idle_timeout_ms);
  }
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c.tcp), on_tcp_alloc, on_tcp_read);
}

jn_addr peer_of(uv_tcp_t* t) {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(t, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
}

void count_refusal(TcpRes& l, PluginHost& host, const char* reason, const std::string& peer_ip) {
  host.services().metrics.add("junction_tcp_refused_total", fmt::format("plugin=\"{}\",reason=\"{}\"", l.owner->name(), reason), 1);
  uint64_t n = ++l.acct->refusals;
  if (n <= 10 || n % 1000 == 0)
    l.owner->log(JN_LOG_WARN, fmt::format("tcp_listen {}: refused a connection{}{} ({}; {} refused so far)", l.addr_text,
                                          peer_ip.empty() ? "" : " from ", peer_ip, reason, n));
}

void on_accept_retry(uv_timer_t* t);

// EMFILE/ENFILE: the process is out of fds, so the pending connection cannot even be accepted
// and the listener would stay readable (a busy loop). Give up the spare fd, accept the
// connection and close it at once, take the spare again.
// Returns true when the caller may accept again.
bool tcp_shed_one(TcpRes& l, PluginHost& host) {
  if (l.spare_fd >= 0) {
    ::close(l.spare_fd);
    l.spare_fd = -1;
    // accept() takes an fd before it looks at the queue: EMFILE says nothing about a pending
    // connection, so an empty queue (EAGAIN) is the normal way out of here.
    int fd = accept4(l.lfd, nullptr, nullptr, SOCK_CLOEXEC);
    int err = errno;
    if (fd >= 0) ::close(fd);
    l.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      count_refusal(l, host, "fd_exhausted", {});
      return l.spare_fd >= 0;
    }
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED) return false;
  }
  // No spare (something else took the fd): stop polling for a second instead of spinning.
  if (!l.idle) {
    l.owner->log(JN_LOG_WARN, fmt::format("tcp_listen {}: out of file descriptors; accepting again in 1 s", l.addr_text));
    uv_poll_stop(&l.lpoll);
    l.idle = new uv_timer_t;
    uv_timer_init(host.services().loop, l.idle);
    l.idle->data = &l;
    uv_timer_start(l.idle, on_accept_retry, 1000, 0);
  }
  return false;
}

void on_tcp_acceptable(uv_poll_t* p, int status, int events);

void on_accept_retry(uv_timer_t* t) {
  auto* l = static_cast<TcpRes*>(t->data);
  uv_close(reinterpret_cast<uv_handle_t*>(l->idle), on_idle_closed);
  l->idle = nullptr;
  if (l->spare_fd < 0) l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  uv_poll_start(&l->lpoll, UV_READABLE, on_tcp_acceptable);
}

std::string ip_key_of(const sockaddr_storage& ss, std::string* text) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    *text = buf;
    return std::string(reinterpret_cast<const char*>(&a->sin_addr), sizeof a->sin_addr);
  }
  auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
  *text = buf;
  if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))  // the same peer as its plain IPv4 form
    return std::string(reinterpret_cast<const char*>(&a->sin6_addr.s6_addr[12]), 4);
  return std::string(reinterpret_cast<const char*>(&a->sin6_addr), sizeof a->sin6_addr);
}

void on_tcp_connect(uv_connect_t* req, int status);

// An accepted connection for media loop k: the proxy joins the handle table here (it carries the
// listener's accounting), the connection itself goes to the loop, which opens the fd there and
// reports ACCEPTED on its thread.
void tcp_accept_on_loop(TcpRes& l, PluginSlot& slot, int fd, const sockaddr_storage& ss, std::string key) {
  PluginHost& host = slot.host();
  auto p = std::make_unique<TcpRes>(Resource::Kind::TcpConn, &slot, l.cookie);
  p->proxy = true;
  p->media = l.accept_to;
  p->acct = l.acct;
  p->ip_key = std::move(key);
  ++p->acct->conns;
  ++p->acct->per_ip[p->ip_key];
  p->opts = l.opts;
  if (p->opts.idle_timeout_ms == 0) p->opts.idle_timeout_ms = host.core_conf().limits.tcp_idle_timeout_ms;
  p->listener = l.handle;
  p->peer = from_sockaddr(reinterpret_cast<const sockaddr*>(&ss));
  auto* c = new TcpRes(Resource::Kind::TcpConn, &slot, l.cookie);
  c->media = l.accept_to;
  c->host = &host;
  c->origin = &slot;
  c->accepted_fd = fd;
  c->opts = p->opts;
  c->framer = std::make_unique<StreamFramer>(c->opts.framing, c->opts.delimiter, c->opts.max_frame);
  c->listener = l.handle;
  c->peer = p->peer;
  jn_handle h = host.add_resource(std::move(p));
  slot.resources().insert(h);
  c->handle = h;
  l.accept_to->tcp_add(c);
}

void on_tcp_acceptable(uv_poll_t* p, int status, int) {
  auto* l = static_cast<TcpRes*>(p->data);
  if (status < 0 || !l->owner || l->closing) return;
  PluginSlot& slot = *l->owner;
  PluginHost& host = slot.host();
  const Limits& lim = host.core_conf().limits;
  // A bounded batch per wakeup, so that a flood on one listener does not starve the loop.
  for (int i = 0; i < 64 && l->owner && !l->closing; ++i) {
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    int fd = accept4(l->lfd, reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        if (!tcp_shed_one(*l, host)) return;
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        slot.log(JN_LOG_WARN, fmt::format("tcp_listen {}: accept: {}", l->addr_text, strerror(errno)));
      return;
    }
    std::string ip;
    std::string key = ip_key_of(ss, &ip);
    // The lowest free fd number is what accept returns: fd N means N fds are in use. Keep
    // limits.fd_reserve of them for everything else (other plugins' binds, the admin API).
    rlimit rl{};
    const char* refuse = nullptr;
    if (lim.fd_reserve && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        static_cast<rlim_t>(fd) + lim.fd_reserve >= rl.rlim_cur)
      refuse = "fd_limit";
    else if (lim.tcp_max_conns_per_listener && l->acct->conns >= lim.tcp_max_conns_per_listener)
      refuse = "listener_limit";
    else if (lim.tcp_max_conns_per_ip) {
      auto it = l->acct->per_ip.find(key);
      if (it != l->acct->per_ip.end() && it->second >= lim.tcp_max_conns_per_ip) refuse = "ip_limit";
    }
    if (refuse) {
      ::close(fd);
      count_refusal(*l, host, refuse, ip);
      continue;
    }
    if (l->accept_to) {
      tcp_accept_on_loop(*l, slot, fd, ss, std::move(key));
      continue;
    }
    auto c = std::make_unique<TcpRes>(Resource::Kind::TcpConn, &slot, l->cookie);
    uv_tcp_init(host.services().loop, &c->tcp);
    c->tcp.data = c.get();
    if (uv_tcp_open(&c->tcp, fd) != 0) {
      ::close(fd);
      uv_close(reinterpret_cast<uv_handle_t*>(&c.release()->tcp), [](uv_handle_t* h) { delete static_cast<TcpRes*>(h->data); });
      continue;
    }
    c->acct = l->acct;
    c->ip_key = std::move(key);
    ++c->acct->conns;
    ++c->acct->per_ip[c->ip_key];
    uv_tcp_nodelay(&c->tcp, 1);
    c->opts = l->opts;
    // A listener without an idle timeout of its own gets the core's: a peer that connects and
    // stays silent must not hold its place forever.
    if (c->opts.idle_timeout_ms == 0) c->opts.idle_timeout_ms = lim.tcp_idle_timeout_ms;
    c->framer = std::make_unique<StreamFramer>(c->opts.framing, c->opts.delimiter, c->opts.max_frame);
    c->listener = l->handle;
    c->peer = from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
    if (l->tls_ctx) {
      c->tls = std::make_unique<TlsSession>(l->tls_ctx, TlsSession::Role::kServer, std::string());
      c->announced = false;
    }
    TcpRes* raw = c.get();
    jn_handle h = host.add_resource(std::move(c));
    slot.resources().insert(h);
    tcp_start(*raw, host.services().loop);
    if (raw->tls) {
      std::string why;
      if (!raw->tls->start(&why)) {
        l->owner->log(JN_LOG_WARN, fmt::format("tcp_listen {}: TLS: {}", l->addr_text, why));
        tcp_begin_close(*raw, JN_ERR_IO);
      }
      continue;  // ACCEPTED once the handshake completes
    }
    tcp_emit(*raw, JN_TCP_ACCEPTED, nullptr, 0);
  }
}

void on_tcp_connect(uv_connect_t* req, int status) {
  auto* c = static_cast<TcpRes*>(req->data);
  auto lock = loop_lock(*c);
  if (c->closing) return;
  if (c->connect_timer) {
    uv_close(reinterpret_cast<uv_handle_t*>(c->connect_timer), on_idle_closed);
    c->connect_timer = nullptr;
  }
  if (status < 0) {
    tcp_begin_close(*c, JN_ERR_IO);
    return;
  }
  c->peer = peer_of(&c->tcp);
  tcp_start(*c, c->tcp.loop);
  if (!c->tls_server_name.empty()) {  // TLS: CONNECTED once the handshake completes
    std::string why;
    SSL_CTX* ctx = TlsSession::client_context(c->tls_ca_file, &why);
    if (ctx) {
      c->tls = std::make_unique<TlsSession>(ctx, TlsSession::Role::kClient, c->tls_server_name);
      SSL_CTX_free(ctx);  // the session holds its own reference
      c->announced = false;
      if (c->tls->start(&why)) {
        tcp_tls_flush(*c);
        return;
      }
    }
    if (c->owner) c->owner->log(JN_LOG_WARN, fmt::format("tcp_connect {}: {}", format_addr(c->peer), why));
    tcp_begin_close(*c, JN_ERR_IO);
    return;
  }
  tcp_emit(*c, JN_TCP_CONNECTED, nullptr, 0);
}

bool valid_tcp_options(const jn_tcp_options* o, jn_tcp_options& out) {
  out = {};
  out.struct_size = sizeof out;
  out.framing = JN_FRAME_RAW;
  out.max_frame = 65536;
  if (!o) return true;
  if (!JN_HAS_FIELD(o, jn_tcp_options, max_frame)) return false;
  out.framing = o->framing;
  out.delimiter = o->delimiter;
  out.max_frame = o->max_frame ? o->max_frame : 65536;
  if (JN_HAS_FIELD(o, jn_tcp_options, idle_timeout_ms)) out.idle_timeout_ms = o->idle_timeout_ms;
  if (JN_HAS_FIELD(o, jn_tcp_options, loop)) out.loop = o->loop;  // 2.1: a media loop (see new_tcp)
  if (JN_HAS_FIELD(o, jn_tcp_options, tls)) out.tls = o->tls ? 1 : 0;  // its files: read_tls_options
  if (out.framing > JN_FRAME_SIP) return false;
  if (out.framing == JN_FRAME_LEN16 && out.max_frame > 65535) out.max_frame = 65535;
  return true;
}

// A media loop's write: tried at once without a copy; what the kernel does not take now waits in
// the stream's queue (a copy, the caller's bytes being borrowed), bounded like every connection.
jn_status tcp_loop_writev(TcpRes& c, uv_buf_t* iov, unsigned n) {
  auto* s = reinterpret_cast<uv_stream_t*>(&c.tcp);
  size_t total = 0;
  for (unsigned i = 0; i < n; ++i) total += iov[i].len;
  if (total == 0) return JN_OK;
  if (uv_stream_get_write_queue_size(s) > kTcpWriteLimit) {
    c.media->stats().tcp_tx_refused.fetch_add(1, std::memory_order_relaxed);
    return JN_ERR_LIMIT;
  }
  size_t done = 0;
  int rc = uv_try_write(s, iov, n);
  if (rc >= 0) done = static_cast<size_t>(rc);
  else if (rc != UV_EAGAIN) return JN_ERR_IO;
  tcp_touch_idle(c);
  if (done == total) return JN_OK;
  auto* w = new WriteReq;
  w->data.reserve(total - done);
  for (unsigned i = 0; i < n; ++i) {
    size_t skip = std::min<size_t>(done, iov[i].len);
    done -= skip;
    w->data.append(iov[i].base + skip, iov[i].len - skip);
  }
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, s, &b, 1, [](uv_write_t* req, int) { delete reinterpret_cast<WriteReq*>(req); }) != 0) {
    delete w;
    return JN_ERR_IO;
  }
  return JN_OK;
}

// tcp_send on the connection's own loop: the framing's prefix or delimiter goes as its own iovec.
jn_status tcp_loop_send(TcpRes& c, const uint8_t* data, size_t len) {
  if (c.closing || c.shutting_down || !c.connected) return JN_ERR_STATE;
  uint8_t head[2];
  char delim = static_cast<char>(c.opts.delimiter);
  uv_buf_t iov[2];
  unsigned n = 0;
  char* payload = reinterpret_cast<char*>(const_cast<uint8_t*>(data));
  switch (c.opts.framing) {
    case JN_FRAME_LEN16:
      if (len > 65535) return JN_ERR_INVALID;
      head[0] = static_cast<uint8_t>(len >> 8);
      head[1] = static_cast<uint8_t>(len & 0xff);
      iov[n++] = uv_buf_init(reinterpret_cast<char*>(head), 2);
      iov[n++] = uv_buf_init(payload, static_cast<unsigned>(len));
      break;
    case JN_FRAME_DELIM:
      if (len && std::memchr(data, c.opts.delimiter, len)) return JN_ERR_INVALID;  // would split the frame
      iov[n++] = uv_buf_init(payload, static_cast<unsigned>(len));
      iov[n++] = uv_buf_init(&delim, 1);
      break;
    default:
      iov[n++] = uv_buf_init(payload, static_cast<unsigned>(len));
  }
  return tcp_loop_writev(c, iov, n);
}

// A TCP service called on a media loop with a handle that is not this plugin's connection on this
// loop (closed, on the control loop, or on another loop): refused, logged with a rate limit (a
// plugin bug that may repeat per frame).
jn_status loop_misuse(PluginSlot& slot, MediaLoop& m, const char* what) {
  uint64_t n = ++m.misuse_count();
  if (n <= 10 || n % 1000 == 0)
    slot.log(JN_LOG_WARN, fmt::format("{} on media loop {}: not this plugin's connection on this loop (closed, or on another loop); "
                                      "refused {} time(s) so far",
                                      what, m.index(), n));
  return JN_ERR_WRONG_THREAD;
}

}  // namespace

// ==========================================================================================
jn_status create_timer(PluginSlot& slot, uint64_t delay_ms, uint64_t repeat_ms, uint64_t cookie, jn_handle* out) {
  if (!out) return JN_ERR_INVALID;
  PluginHost& host = slot.host();
  auto t = std::make_unique<TimerRes>(&slot, cookie);
  uv_timer_init(host.services().loop, &t->timer);
  t->timer.data = t.get();
  t->repeating = repeat_ms > 0;
  TimerRes* raw = t.get();
  *out = host.add_resource(std::move(t));
  slot.resources().insert(*out);
  uv_timer_start(&raw->timer, on_timer, delay_ms, repeat_ms);
  return JN_OK;
}

jn_status create_udp(PluginSlot& slot, std::string_view addr, const jn_udp_options* opts, uint64_t cookie, jn_handle* out,
                     bool quiet_in_use) {
  if (!out) return JN_ERR_INVALID;
  jn_addr a{};
  if (!parse_addr(addr, a)) return fail(slot, JN_ERR_INVALID, fmt::format("udp_bind: '{}' is not ip:port", addr));
  sockaddr_storage ss{};
  socklen_t sl = 0;
  to_sockaddr(a, ss, sl);
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(slot, JN_ERR_IO, fmt::format("udp_bind {}: socket: {}", addr, strerror(errno)));
  uint32_t rcvbuf = 4u << 20, sndbuf = 4u << 20, max_dgram = 2048;
  bool reuse_port = false;
  if (opts && JN_HAS_FIELD(opts, jn_udp_options, rcvbuf) && opts->rcvbuf) rcvbuf = opts->rcvbuf;
  if (opts && JN_HAS_FIELD(opts, jn_udp_options, sndbuf) && opts->sndbuf) sndbuf = opts->sndbuf;
  if (opts && JN_HAS_FIELD(opts, jn_udp_options, reuse_port)) reuse_port = opts->reuse_port != 0;
  if (opts && JN_HAS_FIELD(opts, jn_udp_options, max_datagram) && opts->max_datagram)
    max_dgram = std::min<uint32_t>(opts->max_datagram, 65535);
  uint32_t loop_index = 0;
  if (opts && JN_HAS_FIELD(opts, jn_udp_options, loop)) loop_index = opts->loop;
  MediaLoop* media = slot.host().services().media ? slot.host().services().media->at(loop_index) : nullptr;
  // A media loop's pool holds the datagrams: they must fit its buffers (no oversize on the hot path).
  if (media) max_dgram = std::min<uint32_t>(max_dgram, media->pool().config().buffer_size);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  // A wildcard bind learns each datagram's local destination (jn_buf.dst) from IP_PKTINFO; a
  // socket bound to one address knows it already and skips the control message per packet.
  const bool wildcard = is_wildcard(a);
  if (wildcard) {
    if (a.family == 4) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    else setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0) {
    int e = errno;
    close(fd);
    if (e == EADDRINUSE && quiet_in_use) return JN_ERR_EXISTS;
    return fail(slot, e == EADDRINUSE ? JN_ERR_EXISTS : JN_ERR_IO, fmt::format("udp_bind {}: {}", addr, strerror(e)));
  }
  PluginHost& host = slot.host();
  auto u = std::make_unique<UdpRes>(&slot, cookie);
  u->fd = fd;
  u->max_datagram = max_dgram;
  sockaddr_storage local{};
  socklen_t ll = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll);
  u->local = from_sockaddr(reinterpret_cast<sockaddr*>(&local));
  u->pktinfo = wildcard;
  std::string labels = fmt::format("plugin=\"{}\"", slot.name());
  u->rx_packets = host.services().metrics.counter("junction_udp_rx_packets_total", labels, "Datagrams received on plugin sockets");
  u->rx_truncated = host.services().metrics.counter("junction_udp_truncated_total", labels, "Datagrams longer than the socket's max_datagram, dropped");
  u->tx_dropped = host.services().metrics.counter("junction_udp_tx_dropped_total", labels, "Datagrams the kernel refused to send");
  u->tx_batched = host.services().metrics.counter("junction_udp_tx_batched_total", labels,
                                                  "Replies queued while their request's batch was delivered, then sent in one sendmmsg");
  UdpRes* raw = u.get();
  if (media) {
    raw->media = media;
    *out = host.add_resource(std::move(u));
    slot.resources().insert(*out);
    media->add_socket(raw);  // the loop's thread starts polling it
    return JN_OK;
  }
  uv_poll_init(host.services().loop, &u->poll, fd);
  u->poll.data = u.get();
  *out = host.add_resource(std::move(u));
  slot.resources().insert(*out);
  uv_poll_start(&raw->poll, UV_READABLE, on_udp_readable);
  return JN_OK;
}

jn_status udp_local_addr(PluginSlot& slot, jn_handle sock, jn_addr* out) {
  auto* u = static_cast<UdpRes*>(slot.host().resource(sock, Resource::Kind::Udp, &slot));
  if (!u || !out) return JN_ERR_NOT_FOUND;
  *out = u->local;
  return JN_OK;
}

jn_status udp_send_items(const jn_send* items, size_t count, UdpRes* (*resolve)(void*, jn_handle), void* arg) {
  if (!items && count) return JN_ERR_INVALID;
  constexpr size_t kBatch = 64;
  mmsghdr msgs[kBatch];
  iovec iov[kBatch][2];
  sockaddr_storage sa[kBatch];
  alignas(cmsghdr) char control[kBatch][kSendControl];
  jn_status result = JN_OK;
  size_t i = 0;
  while (i < count) {
    UdpRes* u = resolve(arg, items[i].sock);
    if (!u) {
      result = JN_ERR_NOT_FOUND;
      ++i;
      continue;
    }
    // A reply to a datagram being delivered: queued, sent after the batch (ReplyBatch).
    if (u->replies && u->replies->is_reply(items[i]) && u->replies->defer(items[i])) {
      ++i;
      continue;
    }
    // One sendmmsg per run of items on the same socket.
    size_t n = 0;
    while (i + n < count && n < kBatch && items[i + n].sock == items[i].sock) {
      if (n > 0 && u->replies && u->replies->is_reply(items[i + n])) break;  // queued by the next round
      std::memset(&msgs[n], 0, sizeof(mmsghdr));
      int iovcnt = fill_msghdr(items[i + n], sa[n], iov[n], msgs[n].msg_hdr);
      if (iovcnt < 0 || !fill_send_control(items[i + n], control[n], msgs[n].msg_hdr)) {
        result = JN_ERR_INVALID;
        break;
      }
      ++n;
    }
    size_t sent = 0;
    while (sent < n) {
      int r = sendmmsg(u->fd, msgs + sent, static_cast<unsigned>(n - sent), MSG_DONTWAIT);
      if (r <= 0) {
        // The media path never blocks: a full socket buffer drops the rest of this run.
        if (u->media) u->media->stats().tx_dropped.fetch_add(n - sent, std::memory_order_relaxed);
        else *u->tx_dropped += n - sent;
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) result = JN_ERR_IO;
        break;
      }
      sent += static_cast<size_t>(r);
    }
    if (u->media && sent) u->media->stats().tx_packets.fetch_add(sent, std::memory_order_relaxed);
    i += std::max<size_t>(n, 1);
  }
  return result;
}

jn_status udp_send(PluginSlot& slot, const jn_send* items, size_t count) {
  if (MediaLoop* loop = MediaLoop::current()) {
    // On a media loop: that loop's sockets only (the control loop may close its own at any time).
    struct Arg { MediaLoop* loop; PluginSlot* slot; bool foreign = false; } arg{loop, &slot};
    jn_status st = udp_send_items(items, count, [](void* a, jn_handle h) -> UdpRes* {
      auto* x = static_cast<Arg*>(a);
      UdpRes* u = x->loop->socket(h);
      if (!u || u->owner != x->slot) {
        x->foreign = true;
        return nullptr;
      }
      return u;
    }, &arg);
    if (arg.foreign) {
      // A plugin bug that may repeat per packet: the first few and then every 1000th are logged.
      uint64_t n = ++loop->misuse_count();
      if (n <= 10 || n % 1000 == 0)
        slot.log(JN_LOG_WARN, fmt::format("udp_send on media loop {}: a socket that is not this plugin's socket on this loop (closed, "
                                          "or bound on another loop); refused {} time(s) so far",
                                          loop->index(), n));
      return JN_ERR_WRONG_THREAD;
    }
    return st;
  }
  struct Arg { PluginSlot* slot; } arg{&slot};
  return udp_send_items(items, count, [](void* a, jn_handle h) -> UdpRes* {
    auto* x = static_cast<Arg*>(a);
    return static_cast<UdpRes*>(x->slot->host().resource(h, Resource::Kind::Udp, x->slot));
  }, &arg);
}

jn_status udp_join_multicast(PluginSlot& slot, jn_handle sock, std::string_view group, std::string_view iface) {
  auto* u = static_cast<UdpRes*>(slot.host().resource(sock, Resource::Kind::Udp, &slot));
  if (!u) return JN_ERR_NOT_FOUND;
  ip_mreq mreq{};
  std::string g(group), i(iface);
  if (inet_pton(AF_INET, g.c_str(), &mreq.imr_multiaddr) != 1)
    return fail(slot, JN_ERR_INVALID, fmt::format("udp_join_multicast: '{}' is not an IPv4 group", group));
  mreq.imr_interface.s_addr = htonl(INADDR_ANY);
  if (!i.empty() && inet_pton(AF_INET, i.c_str(), &mreq.imr_interface) != 1)
    return fail(slot, JN_ERR_INVALID, fmt::format("udp_join_multicast: '{}' is not an IPv4 interface address", iface));
  if (setsockopt(u->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0)
    return fail(slot, JN_ERR_IO, fmt::format("udp_join_multicast {}: {}", group, strerror(errno)));
  return JN_OK;
}

// The part tcp_listen and tcp_connect share: address, options, an initialised uv_tcp_t.
std::unique_ptr<TcpRes> new_tcp(PluginSlot& slot, Resource::Kind kind, const char* what, std::string_view addr,
                                const jn_tcp_options* opts, uint64_t cookie, sockaddr_storage& ss, jn_status* st) {
  jn_addr a{};
  if (!parse_addr(addr, a)) {
    *st = fail(slot, JN_ERR_INVALID, fmt::format("{}: '{}' is not ip:port", what, addr));
    return nullptr;
  }
  auto t = std::make_unique<TcpRes>(kind, &slot, cookie);
  if (!valid_tcp_options(opts, t->opts)) {
    *st = fail(slot, JN_ERR_INVALID, fmt::format("{}: bad options", what));
    return nullptr;
  }
  socklen_t sl = 0;
  to_sockaddr(a, ss, sl);
  t->peer = a;
  // 2.1: a media loop k in 1..media_loops(); beyond that (none configured) the control loop, as
  // for UDP sockets.
  MediaLoops* loops = slot.host().services().media;
  MediaLoop* media = loops ? loops->at(t->opts.loop) : nullptr;
  if (media && t->opts.tls) {
    *st = fail(slot, JN_ERR_UNSUPPORTED, fmt::format("{} {}: TLS is not available on a media loop (loop {}); use loop 0 for TLS", what, addr,
                                                     t->opts.loop));
    return nullptr;
  }
  if (kind == Resource::Kind::TcpListener) t->accept_to = media;
  else t->media = media;
  if (kind == Resource::Kind::TcpConn && !t->media) {
    uv_tcp_init(slot.host().services().loop, &t->tcp);
    t->tcp.data = t.get();
  }
  return t;
}

static std::string jn_string(jn_str s) { return s.ptr ? std::string(s.ptr, s.len) : std::string(); }

jn_status create_tcp_listener(PluginSlot& slot, std::string_view addr, const jn_tcp_options* opts, uint64_t cookie, jn_handle* out,
                              bool quiet_in_use) {
  if (!out) return JN_ERR_INVALID;
  sockaddr_storage ss{};
  jn_status st = JN_OK;
  auto l = new_tcp(slot, Resource::Kind::TcpListener, "tcp_listen", addr, opts, cookie, ss, &st);
  if (!l) return st;
  l->peer = {};
  l->addr_text = std::string(addr);
  if (l->opts.tls) {
    std::string why;
    l->tls_ctx = JN_HAS_FIELD(opts, jn_tcp_options, tls_key)
                     ? TlsSession::server_context(jn_string(opts->tls_cert), jn_string(opts->tls_key), &why)
                     : nullptr;
    if (!l->tls_ctx) return fail(slot, JN_ERR_INVALID, fmt::format("tcp_listen {}: {}", addr, why.empty() ? "TLS needs tls_cert and tls_key" : why));
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t sl = ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0 || ::listen(fd, 511) != 0) {
      err = errno;
      ::close(fd);
      fd = -1;
    }
  }
  if (fd < 0) {
    if (err == EADDRINUSE && quiet_in_use) return JN_ERR_EXISTS;  // port_bind tries the next port
    return fail(slot, err == EADDRINUSE ? JN_ERR_EXISTS : JN_ERR_IO, fmt::format("tcp_listen {}: {}", addr, strerror(err)));
  }
  l->lfd = fd;  // closed by ~TcpRes from here on
  l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  l->acct = std::make_shared<TcpAccounting>();
  if (uv_poll_init(slot.host().services().loop, &l->lpoll, fd) != 0)
    return fail(slot, JN_ERR_IO, fmt::format("tcp_listen {}: cannot poll the socket", addr));
  l->lpoll.data = l.get();
  uv_poll_start(&l->lpoll, UV_READABLE, on_tcp_acceptable);
  *out = slot.host().add_resource(std::move(l));
  slot.resources().insert(*out);
  return JN_OK;
}

jn_status create_tcp_connection(PluginSlot& slot, std::string_view addr, const jn_tcp_options* opts, uint64_t cookie, jn_handle* out) {
  if (!out) return JN_ERR_INVALID;
  sockaddr_storage ss{};
  jn_status st = JN_OK;
  auto c = new_tcp(slot, Resource::Kind::TcpConn, "tcp_connect", addr, opts, cookie, ss, &st);
  if (!c) return st;
  if (c->opts.tls) {
    if (JN_HAS_FIELD(opts, jn_tcp_options, tls_server_name)) {
      c->tls_ca_file = jn_string(opts->tls_ca_file);
      c->tls_server_name = jn_string(opts->tls_server_name);
    }
    if (c->tls_server_name.empty()) {  // verify against the address itself (an IP SAN)
      char ip[INET6_ADDRSTRLEN] = {0};
      if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in&>(ss).sin_addr, ip, sizeof ip);
      else inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6&>(ss).sin6_addr, ip, sizeof ip);
      c->tls_server_name = ip;
    }
  }
  c->framer = std::make_unique<StreamFramer>(c->opts.framing, c->opts.delimiter, c->opts.max_frame);
  c->connect_req.data = c.get();
  PluginHost& host = slot.host();
  if (c->media) {
    // On media loop k: c stays here as the proxy; the connection proper is connected by the loop,
    // which reports CONNECTED (or CLOSED) on its thread.
    auto* real = new TcpRes(Resource::Kind::TcpConn, &slot, cookie);
    real->media = c->media;
    real->host = &host;
    real->origin = &slot;
    real->opts = c->opts;
    real->framer = std::move(c->framer);
    real->peer = c->peer;
    real->connect_to = ss;
    real->connect_timeout_ms = host.core_conf().limits.tcp_connect_timeout_ms;
    real->connect_req.data = real;
    c->proxy = true;
    MediaLoop* media = c->media;
    *out = host.add_resource(std::move(c));
    slot.resources().insert(*out);
    real->handle = *out;
    media->tcp_add(real);
    return JN_OK;
  }
  TcpRes* raw = c.get();
  *out = host.add_resource(std::move(c));
  slot.resources().insert(*out);
  int rc = uv_tcp_connect(&raw->connect_req, &raw->tcp, reinterpret_cast<sockaddr*>(&ss), on_tcp_connect);
  if (rc != 0) {
    tcp_begin_close(*raw, JN_ERR_IO);  // the plugin hears JN_TCP_CLOSED
    return JN_OK;
  }
  // A peer that never answers the SYN would otherwise keep the handle for the kernel's ~2 min.
  if (uint32_t ms = host.core_conf().limits.tcp_connect_timeout_ms) {
    raw->connect_timer = new uv_timer_t;
    uv_timer_init(host.services().loop, raw->connect_timer);
    raw->connect_timer->data = raw;
    uv_timer_start(raw->connect_timer, on_tcp_connect_timeout, ms, 0);
  }
  return JN_OK;
}

jn_status tcp_send(PluginSlot& slot, jn_handle conn, const uint8_t* data, size_t len) {
  if (MediaLoop* m = MediaLoop::current()) {
    TcpRes* c = m->tcp_conn(conn);
    if (!c || c->owner != &slot) return loop_misuse(slot, *m, "tcp_send");
    if (!data && len) return JN_ERR_INVALID;
    return tcp_loop_send(*c, data, len);
  }
  auto* c = static_cast<TcpRes*>(slot.host().resource(conn, Resource::Kind::TcpConn, &slot));
  if (!c) return JN_ERR_NOT_FOUND;
  if (c->proxy) {
    // A media loop's connection, from the control loop: framed and copied to its loop, which
    // writes it in order with the loop's own sends (dropped, counted, if it closed meanwhile).
    if (!data && len) return JN_ERR_INVALID;
    std::string framed;
    StreamFramer enc(c->opts.framing, c->opts.delimiter, c->opts.max_frame);
    if (!enc.encode(std::string_view(reinterpret_cast<const char*>(data), len), framed)) return JN_ERR_INVALID;
    return c->media->tcp_send_control(conn, std::move(framed));
  }
  if (c->closing || !c->connected) return JN_ERR_STATE;
  if (!data && len) return JN_ERR_INVALID;
  if (uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&c->tcp)) > kTcpWriteLimit) return JN_ERR_LIMIT;
  std::string framed;
  if (!c->framer->encode(std::string_view(reinterpret_cast<const char*>(data), len), framed))
    return JN_ERR_INVALID;  // too long for LEN16, or contains the delimiter
  if (c->tls) {
    if (!c->tls->write(framed)) return JN_ERR_IO;
    tcp_tls_flush(*c);
  } else if (jn_status st = tcp_write_raw(*c, std::move(framed)); st != JN_OK) {
    return st;
  }
  tcp_touch_idle(*c);
  return JN_OK;
}

jn_status tcp_close(PluginSlot& slot, jn_handle h) {
  if (MediaLoop* m = MediaLoop::current()) {
    TcpRes* c = m->tcp_conn(h);
    if (!c || c->owner != &slot) return loop_misuse(slot, *m, "tcp_close");
    tcp_graceful_close(*c);
    return JN_OK;
  }
  PluginHost& host = slot.host();
  if (auto* c = static_cast<TcpRes*>(host.resource(h, Resource::Kind::TcpConn, &slot))) {
    if (c->proxy) c->media->tcp_close_control(h);  // flushed and closed on its loop; CLOSED there
    else tcp_graceful_close(*c);
    return JN_OK;
  }
  if (host.resource(h, Resource::Kind::TcpListener, &slot)) {
    slot.resources().erase(h);
    host.close_resource(h);
    return JN_OK;
  }
  return JN_ERR_NOT_FOUND;
}

jn_status tcp_set_cookie(PluginSlot& slot, jn_handle conn, uint64_t cookie) {
  if (MediaLoop* m = MediaLoop::current()) {
    TcpRes* c = m->tcp_conn(conn);
    if (!c || c->owner != &slot) return loop_misuse(slot, *m, "tcp_set_cookie");
    c->cookie = cookie;
    return JN_OK;
  }
  auto* c = static_cast<TcpRes*>(slot.host().resource(conn, Resource::Kind::TcpConn, &slot));
  if (!c) return JN_ERR_NOT_FOUND;
  c->cookie = cookie;
  if (c->proxy) c->media->tcp_cookie_control(conn, cookie);  // events on its loop carry it from then on
  return JN_OK;
}

// --- media-loop connections: the loop's side ----------------------------------------------------
jn_handle tcp_loop_handle(const TcpRes* c) { return c->handle; }
void tcp_loop_set_cookie(TcpRes* c, uint64_t cookie) { c->cookie = cookie; }
void tcp_loop_detach(TcpRes* c) { c->owner = nullptr; }

void tcp_loop_start(TcpRes* c) {
  uv_loop_t* loop = c->media->uv_loop();
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  if (!c->owner) {  // its plugin unloaded before the loop got to it: closed unheard
    c->announced = false;
    tcp_begin_close(*c, JN_OK);
    return;
  }
  if (c->accepted_fd >= 0) {
    int fd = std::exchange(c->accepted_fd, -1);
    if (uv_tcp_open(&c->tcp, fd) != 0) {
      ::close(fd);
      c->announced = false;  // the plugin never heard of it
      c->owner->log(JN_LOG_WARN, fmt::format("tcp on media loop {}: cannot take the connection from {}", c->media->index(), format_addr(c->peer)));
      tcp_begin_close(*c, JN_ERR_IO);
      return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    tcp_start(*c, loop);
    tcp_emit(*c, JN_TCP_ACCEPTED, nullptr, 0);
    return;
  }
  int rc = uv_tcp_connect(&c->connect_req, &c->tcp, reinterpret_cast<const sockaddr*>(&c->connect_to), on_tcp_connect);
  if (rc != 0) {
    c->owner->log(JN_LOG_WARN, fmt::format("tcp_connect {}: {}", format_addr(c->peer), uv_strerror(rc)));
    tcp_begin_close(*c, JN_ERR_IO);  // the plugin hears JN_TCP_CLOSED, on this loop
    return;
  }
  if (c->connect_timeout_ms) {
    c->connect_timer = new uv_timer_t;
    uv_timer_init(loop, c->connect_timer);
    c->connect_timer->data = c;
    uv_timer_start(c->connect_timer, on_tcp_connect_timeout, c->connect_timeout_ms, 0);
  }
}

void tcp_loop_write_framed(TcpRes* c, const std::string& bytes) {
  if (c->closing || c->shutting_down || !c->connected) {
    c->media->stats().tcp_tx_refused.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  uv_buf_t b = uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
  if (tcp_loop_writev(*c, &b, 1) != JN_OK) c->media->stats().tcp_tx_refused.fetch_add(1, std::memory_order_relaxed);
}

bool tcp_loop_resume_reading(TcpRes* c) {
  if (c->owner && c->media->holding(*c->owner)) return false;
  c->read_paused = false;
  if (!c->closing && !c->shutting_down) uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_tcp_alloc, on_tcp_read);
  return true;
}

void tcp_loop_close(TcpRes* c) {
  if (!c->owner) tcp_begin_close(*c, JN_OK);  // abandoned (unload): at once, nothing to tell
  else tcp_graceful_close(*c);
}

void tcp_loop_released(PluginHost& host, PluginSlot* origin, jn_handle h) {
  // The handle is still origin's proxy only while origin is loaded (an unload takes its proxies
  // out of the table first), so origin is dereferenced only then.
  auto* p = static_cast<TcpRes*>(host.resource(h, Resource::Kind::TcpConn, origin));
  if (!p || !p->proxy) return;
  origin->resources().erase(h);
  host.forget_resource(h);  // frees the proxy: the listener's counts go down
}

jn_status port_bind(PluginSlot& slot, const jn_port_request* req, jn_handle* out, uint32_t* out_port) {
  if (!req || !out || !out_port || !JN_HAS_FIELD(req, jn_port_request, cookie)) return JN_ERR_INVALID;
  std::string_view name(req->range.ptr ? req->range.ptr : "", req->range.ptr ? req->range.len : 0);
  std::string_view ip(req->ip.ptr ? req->ip.ptr : "", req->ip.ptr ? req->ip.len : 0);
  const bool udp = req->proto == JN_PROTO_UDP, pair = udp && req->pair;
  if (!udp && req->proto != JN_PROTO_TCP) return fail(slot, JN_ERR_INVALID, fmt::format("port_bind: unknown proto {}", req->proto));
  if (req->proto == JN_PROTO_TCP && req->pair) return fail(slot, JN_ERR_INVALID, "port_bind: a pair is UDP only");
  jn_addr probe{};
  const bool v6 = ip.find(':') != std::string_view::npos;
  std::string host = v6 && (ip.empty() || ip.front() != '[') ? "[" + std::string(ip) + "]" : std::string(ip);
  if (!parse_addr(host + ":0", probe)) return fail(slot, JN_ERR_INVALID, fmt::format("port_bind: '{}' is not an IP address", ip));
  PortRanges* ranges = slot.host().services().ports;
  PortRanges::Range* range = ranges ? ranges->find(name) : nullptr;
  if (!range) return fail(slot, JN_ERR_NOT_FOUND, fmt::format("port_bind: no port range '{}' in the core's conf ([ports.{}])", name, name));
  out[0] = out[1] = JN_INVALID_HANDLE;
  jn_status hard = JN_OK;
  uint32_t port = ranges->allocate(*range, pair, [&](uint32_t p, bool* busy) {
    jn_handle a = 0, b = 0;
    jn_status st = udp ? create_udp(slot, fmt::format("{}:{}", host, p), req->udp, req->cookie, &a, true)
                       : create_tcp_listener(slot, fmt::format("{}:{}", host, p), req->tcp, req->cookie, &a, true);
    if (st == JN_OK && pair) {
      st = create_udp(slot, fmt::format("{}:{}", host, p + 1), req->udp, req->cookie, &b, true);
      if (st != JN_OK) slot.host().close_resource(a);  // RTCP's port taken: the pair moves on
    }
    if (st == JN_OK) {
      out[0] = a;
      out[1] = b;
      return true;
    }
    *busy = st == JN_ERR_EXISTS;
    if (!*busy) hard = st;
    return false;
  });
  if (port == 0) {
    if (hard != JN_OK) return hard;  // create_* put the reason in the slot's error
    slot.host().services().metrics.counter("junction_port_range_exhausted_total", fmt::format("range=\"{}\"", range->conf.name),
                                           "port_bind requests that found no free port in a range")[0] += 1;
    return fail(slot, JN_ERR_LIMIT, fmt::format("port_bind: no free {} in range '{}' ({}-{})", pair ? "port pair" : "port",
                                                range->conf.name, range->conf.min, range->conf.max));
  }
  *out_port = port;
  return JN_OK;
}

void close_io_resource(PluginHost& host, Resource* r) {
  switch (r->kind) {
    case Resource::Kind::Timer: {
      auto* t = static_cast<TimerRes*>(r);
      uv_timer_stop(&t->timer);
      uv_close(reinterpret_cast<uv_handle_t*>(&t->timer), [](uv_handle_t* h) { delete static_cast<TimerRes*>(h->data); });
      break;
    }
    case Resource::Kind::Udp: {
      auto* u = static_cast<UdpRes*>(r);
      if (u->media) {
        u->media->remove_socket(u);  // closed and freed on its loop's thread
        break;
      }
      uv_poll_stop(&u->poll);
      uv_close(reinterpret_cast<uv_handle_t*>(&u->poll), [](uv_handle_t* h) {
        auto* u = static_cast<UdpRes*>(h->data);
        ::close(u->fd);
        delete u;
      });
      break;
    }
    case Resource::Kind::TcpListener:
    case Resource::Kind::TcpConn: {
      auto* c = static_cast<TcpRes*>(r);
      if (c->proxy) {
        // A media loop's connection: the loop closes and frees it; the proxy goes now.
        c->media->tcp_abandon(c->handle);
        delete c;
        break;
      }
      // The table no longer holds it (the host took it out): the close callback deletes.
      c->owner = nullptr;
      tcp_begin_close(*c, JN_OK);  // no-op when its close is already on the way
      break;
    }
    default:
      delete r;
  }
  (void)host;
}

}  // namespace junction
