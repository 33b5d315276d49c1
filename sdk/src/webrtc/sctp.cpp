// SCTP data channels over usrsctp + DCEP (sctp.hpp says what and why).
#include <junction/plugin.hpp>
#include <junction/webrtc/sctp.hpp>

#include <usrsctp.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>

namespace junction::webrtc {

namespace {
constexpr uint32_t kPpidDcep = 50, kPpidString = 51, kPpidBinary = 53, kPpidStringEmpty = 56, kPpidBinaryEmpty = 57;
constexpr uint8_t kDcepOpen = 0x03, kDcepAck = 0x02;
constexpr size_t kMaxLabel = 1024;  // label and protocol, each
}  // namespace

const char* sctp_state_name(SctpState s) {
  switch (s) {
    case SctpState::New: return "new";
    case SctpState::Connecting: return "connecting";
    case SctpState::Connected: return "connected";
    case SctpState::Closed: return "closed";
    case SctpState::Failed: return "failed";
  }
  return "?";
}

// --- the stack -------------------------------------------------------------------------------

bool SctpStack::init(bool, uint64_t now_ms, std::string&) {
  // The glue registers its trampoline with usrsctp once per process; the sysctls are
  // process-wide too and setting them again is harmless.
  jn_sctp_glue_init();
  usrsctp_sysctl_set_sctp_ecn_enable(0);
  usrsctp_sysctl_set_sctp_pr_enable(1);          // partial reliability (DCEP rexmit / timed)
  usrsctp_sysctl_set_sctp_asconf_enable(0);
  usrsctp_sysctl_set_sctp_auth_enable(0);        // DTLS authenticates; browsers do not use AUTH chunks
  usrsctp_sysctl_set_sctp_delayed_sack_time_default(20);
  last_ms_ = now_ms;
  ready_ = true;
  return true;
}

void SctpStack::tick(uint64_t now_ms) {
  if (!ready_) return;
  // usrsctp expects one timer driver (its own thread, normally): two loops must not run its
  // callout queue at once. A loop that finds another one ticking leaves the span to it.
  std::unique_lock<std::mutex> g(mu_, std::try_to_lock);
  if (!g.owns_lock() || now_ms <= last_ms_) return;
  uint64_t elapsed = now_ms - last_ms_;
  last_ms_ = now_ms;
  usrsctp_handle_timers(static_cast<uint32_t>(elapsed > 0xffffffffu ? 0xffffffffu : elapsed));
}

bool sctp_library_init(const sdk::Host& host, SctpStack& stack, uint64_t now_ms, std::string& err) {
  bool first = false, glue_first = false;
  if (host.library_pin("libusrsctp.so.2", &first) != JN_OK) {
    err = "libusrsctp.so.2 cannot be pinned (see the core's log)";
    return false;
  }
  // Loaded already as this plugin's dependency: the pin makes it resident (RTLD_NODELETE), so the
  // trampoline usrsctp holds outlives this plugin's code.
  if (host.library_pin(JN_SCTP_GLUE_SONAME, &glue_first) != JN_OK) {
    err = std::string(JN_SCTP_GLUE_SONAME) + " cannot be pinned (see the core's log)";
    return false;
  }
  return stack.init(first, now_ms, err);
}

// --- DCEP ------------------------------------------------------------------------------------

bool parse_dcep_open(const uint8_t* d, size_t n, DcepOpen& out) {
  if (!d || n < 12 || d[0] != kDcepOpen) return false;
  out.channel_type = d[1];
  out.priority = static_cast<uint16_t>(d[2] << 8 | d[3]);
  out.reliability = static_cast<uint32_t>(d[4]) << 24 | static_cast<uint32_t>(d[5]) << 16 | static_cast<uint32_t>(d[6]) << 8 | d[7];
  size_t ll = static_cast<size_t>(d[8] << 8 | d[9]), pl = static_cast<size_t>(d[10] << 8 | d[11]);
  if (12 + ll + pl != n || ll > kMaxLabel || pl > kMaxLabel) return false;
  switch (out.channel_type & 0x7f) {
    case 0x00:
    case 0x01:
    case 0x02: break;
    default: return false;
  }
  out.label.assign(reinterpret_cast<const char*>(d + 12), ll);
  out.protocol.assign(reinterpret_cast<const char*>(d + 12 + ll), pl);
  return true;
}

std::vector<uint8_t> build_dcep_open(const DcepOpen& o) {
  size_t ll = std::min(o.label.size(), kMaxLabel), pl = std::min(o.protocol.size(), kMaxLabel);
  std::vector<uint8_t> m(12 + ll + pl);
  m[0] = kDcepOpen;
  m[1] = o.channel_type;
  m[2] = static_cast<uint8_t>(o.priority >> 8), m[3] = static_cast<uint8_t>(o.priority);
  for (int i = 0; i < 4; ++i) m[4 + i] = static_cast<uint8_t>(o.reliability >> (24 - 8 * i));
  m[8] = static_cast<uint8_t>(ll >> 8), m[9] = static_cast<uint8_t>(ll);
  m[10] = static_cast<uint8_t>(pl >> 8), m[11] = static_cast<uint8_t>(pl);
  std::memcpy(m.data() + 12, o.label.data(), ll);
  std::memcpy(m.data() + 12 + ll, o.protocol.data(), pl);
  return m;
}

// --- the association ---------------------------------------------------------------------------

int SctpAssociation::conn_output(void* addr, void* buf, size_t len, uint8_t, uint8_t) {
  auto* port = static_cast<Port*>(addr);
  if (!port || !buf) return EINVAL;
  std::lock_guard<std::mutex> g(port->mu);
  if (port->outbox.size() >= 1024) return ENOBUFS;  // the owner stopped draining: SCTP retransmits later
  auto* p = static_cast<const uint8_t*>(buf);
  port->outbox.emplace_back(p, p + len);
  return 0;
}

SctpAssociation::SctpAssociation(SctpStack& stack, SctpCallbacks& cb, const SctpConfig& cfg)
    : stack_(stack), cb_(cb), cfg_(cfg), port_(std::make_unique<Port>()) {
  port_->owner = this;
  next_stream_ = cfg.dtls_client ? 0 : 1;
  rbuf_.resize(static_cast<size_t>(cfg.max_message_size) + 1);
}

SctpAssociation::~SctpAssociation() { close(); }

void SctpAssociation::set_state(SctpState s) {
  if (s == state_) return;
  state_ = s;
  cb_.on_sctp_state(s);
}

bool SctpAssociation::start() {
  if (sock_ || state_ != SctpState::New) {
    error_ = "already started";
    return false;
  }
  if (!stack_.ready()) {
    error_ = "usrsctp is not initialised";
    set_state(SctpState::Failed);
    return false;
  }
  usrsctp_register_address(port_.get());
  sock_ = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, nullptr, nullptr, 0, nullptr);
  if (!sock_) {
    error_ = std::string("usrsctp_socket: ") + std::strerror(errno);
    usrsctp_deregister_address(port_.get());
    set_state(SctpState::Failed);
    return false;
  }
  usrsctp_set_non_blocking(sock_, 1);
  struct linger lg{1, 0};  // close() aborts: nothing of ours outlives the association
  usrsctp_setsockopt(sock_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  int on = 1;
  usrsctp_setsockopt(sock_, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof on);
  usrsctp_setsockopt(sock_, IPPROTO_SCTP, SCTP_RECVRCVINFO, &on, sizeof on);
  sctp_assoc_value av{SCTP_ALL_ASSOC, SCTP_ENABLE_RESET_STREAM_REQ};
  usrsctp_setsockopt(sock_, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, &av, sizeof av);
  sctp_initmsg im{};
  im.sinit_num_ostreams = cfg_.streams;
  im.sinit_max_instreams = cfg_.streams;
  usrsctp_setsockopt(sock_, IPPROTO_SCTP, SCTP_INITMSG, &im, sizeof im);
  int bufsz = static_cast<int>(std::max<uint32_t>(cfg_.max_message_size * 2, 1u << 20));
  usrsctp_setsockopt(sock_, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
  usrsctp_setsockopt(sock_, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
  for (uint16_t ev : {SCTP_ASSOC_CHANGE, SCTP_STREAM_RESET_EVENT, SCTP_SEND_FAILED_EVENT, SCTP_SHUTDOWN_EVENT}) {
    sctp_event e{};
    e.se_assoc_id = SCTP_ALL_ASSOC;
    e.se_type = ev;
    e.se_on = 1;
    usrsctp_setsockopt(sock_, IPPROTO_SCTP, SCTP_EVENT, &e, sizeof e);
  }
  sockaddr_conn sc{};
  sc.sconn_family = AF_CONN;
  sc.sconn_port = htons(cfg_.local_port);
  sc.sconn_addr = port_.get();
  if (usrsctp_bind(sock_, reinterpret_cast<sockaddr*>(&sc), sizeof sc) < 0) {
    error_ = std::string("usrsctp_bind: ") + std::strerror(errno);
    close();
    set_state(SctpState::Failed);
    return false;
  }
  sc.sconn_port = htons(cfg_.remote_port);
  set_state(SctpState::Connecting);
  if (usrsctp_connect(sock_, reinterpret_cast<sockaddr*>(&sc), sizeof sc) < 0 && errno != EINPROGRESS) {
    error_ = std::string("usrsctp_connect: ") + std::strerror(errno);
    close();
    set_state(SctpState::Failed);
    return false;
  }
  flush();
  return true;
}

void SctpAssociation::flush() {
  if (!port_) return;
  // Swap out under the lock, send outside it (a send may come back into usrsctp).
  std::vector<std::vector<uint8_t>> out;
  {
    std::lock_guard<std::mutex> g(port_->mu);
    out.swap(port_->outbox);
  }
  for (auto& p : out) {
    ++stats_.packets_out;
    cb_.sctp_send(p.data(), p.size());
  }
}

void SctpAssociation::handle_input(const uint8_t* data, size_t len) {
  if (!sock_ || !data || len == 0) return;
  ++stats_.packets_in;
  usrsctp_conninput(port_.get(), data, len, 0);
  poll();
  flush();
}

void SctpAssociation::tick(uint64_t now_ms) {
  stack_.tick(now_ms);
  if (!sock_) return;
  poll();
  flush();
}

void SctpAssociation::poll() {
  while (sock_) {
    sctp_rcvinfo info{};
    socklen_t infolen = sizeof info;
    unsigned int infotype = 0;
    int flags = 0;
    sockaddr_conn from{};
    socklen_t fromlen = sizeof from;
    size_t room = rbuf_.size() - rlen_;
    ssize_t n = usrsctp_recvv(sock_, rbuf_.data() + rlen_, room, reinterpret_cast<sockaddr*>(&from), &fromlen, &info,
                              &infolen, &infotype, &flags);
    if (n < 0) break;  // EWOULDBLOCK: nothing more
    if (n == 0 && !(flags & MSG_NOTIFICATION)) {
      // The peer shut the association down.
      set_state(SctpState::Closed);
      break;
    }
    rlen_ += static_cast<size_t>(n);
    if (!(flags & MSG_EOR)) {
      if (rlen_ == rbuf_.size()) {
        // Larger than we accept: drop what we have and skip to its end.
        ++stats_.dropped_in;
        rlen_ = 0;
      }
      continue;
    }
    size_t mlen = rlen_;
    rlen_ = 0;
    if (flags & MSG_NOTIFICATION) {
      on_notification(rbuf_.data(), mlen);
    } else if (infotype == SCTP_RECVV_RCVINFO) {
      on_data(info.rcv_sid, ntohl(info.rcv_ppid), rbuf_.data(), mlen);
    }
  }
}

void SctpAssociation::on_notification(const uint8_t* d, size_t n) {
  if (n < sizeof(uint16_t)) return;
  uint16_t type;
  std::memcpy(&type, d, sizeof type);  // sctp_notification's sn_header.sn_type
  switch (type) {
    case SCTP_ASSOC_CHANGE: {
      if (n < sizeof(sctp_assoc_change)) return;
      const auto* ac = reinterpret_cast<const sctp_assoc_change*>(d);
      if (ac->sac_state == SCTP_COMM_UP || ac->sac_state == SCTP_RESTART) {
        set_state(SctpState::Connected);
      } else if (ac->sac_state == SCTP_COMM_LOST || ac->sac_state == SCTP_CANT_STR_ASSOC) {
        error_ = ac->sac_state == SCTP_COMM_LOST ? "association lost" : "association could not be established";
        set_state(SctpState::Failed);
      } else if (ac->sac_state == SCTP_SHUTDOWN_COMP) {
        set_state(SctpState::Closed);
      }
      break;
    }
    case SCTP_SHUTDOWN_EVENT: set_state(SctpState::Closed); break;
    case SCTP_STREAM_RESET_EVENT: {
      if (n < sizeof(sctp_stream_reset_event)) return;
      const auto* ev = reinterpret_cast<const sctp_stream_reset_event*>(d);
      if (ev->strreset_flags & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED)) break;
      size_t count = (std::min<size_t>(n, ev->strreset_length) - sizeof(sctp_stream_reset_event)) / sizeof(uint16_t);
      for (size_t i = 0; i < count; ++i) {
        uint16_t sid;
        std::memcpy(&sid, d + sizeof(sctp_stream_reset_event) + i * 2, 2);
        auto it = channels_.find(sid);
        if (it == channels_.end()) continue;
        if (ev->strreset_flags & SCTP_STREAM_RESET_INCOMING_SSN) {
          // The peer closed its side: close ours (RFC 8831 6.7), unless we started it.
          if (!it->second.closing) reset_stream(sid);
          channels_.erase(it);
          cb_.on_channel_closed(sid);
        }
      }
      break;
    }
    default: break;
  }
}

void SctpAssociation::on_data(uint16_t stream, uint32_t ppid, const uint8_t* d, size_t n) {
  if (ppid == kPpidDcep) {
    if (n >= 1 && d[0] == kDcepOpen) {
      DcepOpen o;
      if (!parse_dcep_open(d, n, o) || channels_.count(stream)) {
        ++stats_.dropped_in;
        return;
      }
      Channel& c = channels_[stream];
      c.info = o;
      c.open = true;
      uint8_t ack = kDcepAck;
      raw_send(stream, kPpidDcep, &ack, 1, nullptr);
      cb_.on_channel_open(stream, c.info, true);
    } else if (n == 1 && d[0] == kDcepAck) {
      auto it = channels_.find(stream);
      if (it == channels_.end() || it->second.open) {
        ++stats_.dropped_in;
        return;
      }
      it->second.open = true;
      cb_.on_channel_open(stream, it->second.info, false);
    } else {
      ++stats_.dropped_in;
    }
    return;
  }
  auto it = channels_.find(stream);
  // RFC 8832 6: data may follow an OPEN before the ACK comes back; a channel we do not know is not.
  if (it == channels_.end() || it->second.closing) {
    ++stats_.dropped_in;
    return;
  }
  if (!it->second.open) it->second.open = true;  // data implies the peer got our OPEN
  bool binary;
  switch (ppid) {
    case kPpidString: binary = false; break;
    case kPpidBinary: binary = true; break;
    case kPpidStringEmpty: binary = false, n = 0; break;
    case kPpidBinaryEmpty: binary = true, n = 0; break;
    default: ++stats_.dropped_in; return;
  }
  ++stats_.messages_in;
  stats_.bytes_in += n;
  cb_.on_message(stream, d, n, binary);
}

bool SctpAssociation::raw_send(uint16_t stream, uint32_t ppid, const uint8_t* d, size_t n, const DcepOpen* pr) {
  if (!sock_) return false;
  sctp_sendv_spa spa{};
  spa.sendv_flags = SCTP_SEND_SNDINFO_VALID;
  spa.sendv_sndinfo.snd_sid = stream;
  spa.sendv_sndinfo.snd_ppid = htonl(ppid);
  spa.sendv_sndinfo.snd_assoc_id = SCTP_ALL_ASSOC;
  if (pr) {
    if (!pr->ordered()) spa.sendv_sndinfo.snd_flags |= SCTP_UNORDERED;
    uint8_t rel = pr->channel_type & 0x7f;
    if (rel == 0x01 || rel == 0x02) {
      spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
      spa.sendv_prinfo.pr_policy = rel == 0x01 ? SCTP_PR_SCTP_RTX : SCTP_PR_SCTP_TTL;
      spa.sendv_prinfo.pr_value = pr->reliability;
    }
  }
  ssize_t r = usrsctp_sendv(sock_, d, n, nullptr, 0, &spa, sizeof spa, SCTP_SENDV_SPA, 0);
  flush();
  if (r < 0) {
    ++stats_.send_failed;
    return false;
  }
  return true;
}

int SctpAssociation::open_channel(const DcepOpen& info) {
  if (state_ != SctpState::Connected) {
    error_ = "association not connected";
    return -1;
  }
  if (info.label.size() > kMaxLabel || info.protocol.size() > kMaxLabel) {
    error_ = "label or protocol too long";
    return -1;
  }
  uint16_t sid = next_stream_;
  while (sid < cfg_.streams && channels_.count(sid)) sid = static_cast<uint16_t>(sid + 2);
  if (sid >= cfg_.streams) {
    error_ = "no free stream";
    return -1;
  }
  next_stream_ = static_cast<uint16_t>(sid + 2);
  std::vector<uint8_t> m = build_dcep_open(info);
  Channel& c = channels_[sid];
  c.info = info;
  // The OPEN goes reliably and ordered (RFC 8832 6), whatever the channel's own rules.
  if (!raw_send(sid, kPpidDcep, m.data(), m.size(), nullptr)) {
    channels_.erase(sid);
    error_ = "could not send DATA_CHANNEL_OPEN";
    return -1;
  }
  return sid;
}

bool SctpAssociation::channel_open(uint16_t stream) const {
  auto it = channels_.find(stream);
  return it != channels_.end() && it->second.open && !it->second.closing;
}

bool SctpAssociation::send(uint16_t stream, const uint8_t* data, size_t len, bool binary) {
  auto it = channels_.find(stream);
  if (it == channels_.end() || it->second.closing || len > remote_max_ || len > cfg_.max_message_size) {
    ++stats_.send_failed;
    return false;
  }
  static const uint8_t zero = 0;
  uint32_t ppid = binary ? (len ? kPpidBinary : kPpidBinaryEmpty) : (len ? kPpidString : kPpidStringEmpty);
  if (!len) data = &zero, len = 1;  // RFC 8831 6.6: an empty message is one byte with the empty PPID
  if (!raw_send(stream, ppid, data, len, &it->second.info)) return false;
  ++stats_.messages_out;
  stats_.bytes_out += len;
  return true;
}

void SctpAssociation::reset_stream(uint16_t stream) {
  if (!sock_) return;
  uint8_t buf[sizeof(sctp_reset_streams) + sizeof(uint16_t)];
  auto* rs = reinterpret_cast<sctp_reset_streams*>(buf);
  rs->srs_assoc_id = SCTP_ALL_ASSOC;
  rs->srs_flags = SCTP_STREAM_RESET_OUTGOING;
  rs->srs_number_streams = 1;
  std::memcpy(buf + sizeof(sctp_reset_streams), &stream, sizeof stream);
  usrsctp_setsockopt(sock_, IPPROTO_SCTP, SCTP_RESET_STREAMS, buf, sizeof buf);
  flush();
}

bool SctpAssociation::close_channel(uint16_t stream) {
  auto it = channels_.find(stream);
  if (it == channels_.end() || it->second.closing) return false;
  it->second.closing = true;
  reset_stream(stream);
  return true;
}

void SctpAssociation::close() {
  if (sock_) {
    usrsctp_close(sock_);  // SO_LINGER 0: ABORT now, association freed
    sock_ = nullptr;
    flush();  // the ABORT
    usrsctp_deregister_address(port_.get());
  }
  channels_.clear();
  if (state_ != SctpState::Failed && state_ != SctpState::New) state_ = SctpState::Closed;
}

}  // namespace junction::webrtc
