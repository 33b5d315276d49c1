#include "net/dns_resolver.hpp"

#include "bus/addr.hpp"
#include "util/log.hpp"

#include <ares.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <junction/util/text.hpp>

using junction::util::ascii_iequals;

namespace junction {

namespace {

constexpr size_t kMaxSrvTargets = 16;  // address lookups one SIP resolution may start

const char* type_name(DnsType t) {
  switch (t) {
    case DnsType::kA: return "A";
    case DnsType::kAAAA: return "AAAA";
    case DnsType::kSRV: return "SRV";
    case DnsType::kNAPTR: return "NAPTR";
  }
  return "?";
}

// Letters, digits, '-' and '_' (SRV owner names), labels of 1..63, at most 253 characters
// without the optional final dot.
bool valid_dns_name(std::string_view n) {
  if (!n.empty() && n.back() == '.') n.remove_suffix(1);
  if (n.empty() || n.size() > 253) return false;
  size_t label = 0;
  for (char c : n) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

// An IP literal ("1.2.3.4", "::1", "[::1]"), port 0.
bool parse_literal(std::string_view name, jn_addr& out) {
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']')
    name = name.substr(1, name.size() - 2);
  if (name.empty() || name.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, name.data(), name.size());
  buf[name.size()] = 0;
  jn_addr a{};
  if (inet_pton(AF_INET, buf, a.ip) == 1) {
    a.family = 4;
  } else if (inet_pton(AF_INET6, buf, a.ip) == 1) {
    a.family = 6;
  } else {
    return false;
  }
  out = a;
  return true;
}

// A name for a log line: a peer-given or caller-given name may hold anything.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 100)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 100) out += "...";
  return out;
}

bool is_localhost(std::string_view n) {
  if (!n.empty() && n.back() == '.') n.remove_suffix(1);
  if (n.size() != 9) return false;
  for (size_t i = 0; i < 9; ++i)
    if (std::tolower(static_cast<unsigned char>(n[i])) != "localhost"[i]) return false;
  return true;
}

// Skips a (possibly compressed) name; nullptr when it runs past the end.
const unsigned char* skip_name(const unsigned char* p, const unsigned char* end) {
  while (p < end) {
    unsigned l = *p;
    if (l == 0) return p + 1;
    if ((l & 0xC0) == 0xC0) return p + 2 <= end ? p + 2 : nullptr;
    if (l & 0xC0) return nullptr;
    p += l + 1;
  }
  return nullptr;
}

// The smallest TTL of the answer records of `type` (c-ares's SRV/NAPTR parsers drop TTLs).
uint32_t min_ttl(const unsigned char* abuf, int alen, uint16_t type) {
  if (alen < 12) return 0;
  const unsigned char* end = abuf + alen;
  unsigned qd = abuf[4] << 8 | abuf[5], an = abuf[6] << 8 | abuf[7];
  const unsigned char* p = abuf + 12;
  for (unsigned i = 0; i < qd; ++i) {
    p = skip_name(p, end);
    if (!p || end - p < 4) return 0;
    p += 4;
  }
  bool any = false;
  uint32_t ttl = 0;
  for (unsigned i = 0; i < an; ++i) {
    p = skip_name(p, end);
    if (!p || end - p < 10) break;
    uint16_t rtype = p[0] << 8 | p[1];
    uint32_t t = uint32_t(p[4]) << 24 | uint32_t(p[5]) << 16 | uint32_t(p[6]) << 8 | p[7];
    size_t rdlen = p[8] << 8 | p[9];
    p += 10;
    if (size_t(end - p) < rdlen) break;
    p += rdlen;
    if (rtype == type) {
      ttl = any ? std::min(ttl, t) : t;
      any = true;
    }
  }
  return ttl;
}

DnsStatus status_of(int ares_status) {
  switch (ares_status) {
    case ARES_SUCCESS: return DnsStatus::kOk;
    case ARES_ENODATA: return DnsStatus::kNoData;
    case ARES_ENOTFOUND: return DnsStatus::kNxDomain;
    case ARES_ETIMEOUT: return DnsStatus::kTimeout;
    case ARES_ESERVFAIL: return DnsStatus::kServFail;
    case ARES_EBADNAME: return DnsStatus::kBadName;
    default: return DnsStatus::kError;
  }
}

// Parses an answer into r (status and records).
void parse_answer(DnsResult& r, const unsigned char* abuf, int alen) {
  int st = ARES_EBADRESP;
  switch (r.type) {
    case DnsType::kA: {
      ares_addrttl ttls[64];
      int n = 64;
      st = ares_parse_a_reply(abuf, alen, nullptr, ttls, &n);
      if (st == ARES_SUCCESS) {
        for (int i = 0; i < n; ++i) {
          jn_addr a{};
          a.family = 4;
          std::memcpy(a.ip, &ttls[i].ipaddr, 4);
          r.addresses.push_back(a);
        }
      }
      break;
    }
    case DnsType::kAAAA: {
      ares_addr6ttl ttls[64];
      int n = 64;
      st = ares_parse_aaaa_reply(abuf, alen, nullptr, ttls, &n);
      if (st == ARES_SUCCESS) {
        for (int i = 0; i < n; ++i) {
          jn_addr a{};
          a.family = 6;
          std::memcpy(a.ip, &ttls[i].ip6addr, 16);
          r.addresses.push_back(a);
        }
      }
      break;
    }
    case DnsType::kSRV: {
      ares_srv_reply* srv = nullptr;
      st = ares_parse_srv_reply(abuf, alen, &srv);
      if (st == ARES_SUCCESS) {
        for (auto* s = srv; s; s = s->next)
          r.srv.push_back({s->priority, s->weight, s->port, s->host ? s->host : ""});
      }
      if (srv) ares_free_data(srv);
      break;
    }
    case DnsType::kNAPTR: {
      ares_naptr_reply* naptr = nullptr;
      st = ares_parse_naptr_reply(abuf, alen, &naptr);
      if (st == ARES_SUCCESS) {
        auto str = [](const unsigned char* s) {
          return s ? std::string(reinterpret_cast<const char*>(s)) : std::string();
        };
        for (auto* n = naptr; n; n = n->next)
          r.naptr.push_back({n->order, n->preference, str(n->flags), str(n->service),
                             str(n->regexp), n->replacement ? n->replacement : ""});
        std::stable_sort(r.naptr.begin(), r.naptr.end(), [](const DnsNaptr& a, const DnsNaptr& b) {
          return a.order != b.order ? a.order < b.order : a.preference < b.preference;
        });
      }
      if (naptr) ares_free_data(naptr);
      break;
    }
  }
  bool empty = r.addresses.empty() && r.srv.empty() && r.naptr.empty();
  if (st == ARES_SUCCESS && empty) st = ARES_ENODATA;
  r.status = status_of(st);
  if (st == ARES_SUCCESS) {
    r.ttl = min_ttl(abuf, alen, static_cast<uint16_t>(r.type));
  } else {
    r.error = st == ARES_ENODATA ? "no records" : std::string("bad answer: ") + ares_strerror(st);
    if (r.status == DnsStatus::kOk || r.status == DnsStatus::kBadName) r.status = DnsStatus::kError;
  }
}

uint16_t default_port(SipTransport t) { return t == SipTransport::kTls ? 5061 : 5060; }

const char* srv_prefix(SipTransport t) {
  switch (t) {
    case SipTransport::kUdp: return "_sip._udp.";
    case SipTransport::kTcp: return "_sip._tcp.";
    case SipTransport::kTls: return "_sips._tcp.";
    case SipTransport::kSctp: return "_sip._sctp.";
    case SipTransport::kAny: break;
  }
  return "_sip._udp.";
}

// A NAPTR service field to a transport (RFC 3263 section 4.1); kAny when not a SIP service.
SipTransport naptr_transport(std::string_view service) {
  if (ascii_iequals(service, "SIP+D2U")) return SipTransport::kUdp;
  if (ascii_iequals(service, "SIP+D2T")) return SipTransport::kTcp;
  if (ascii_iequals(service, "SIPS+D2T")) return SipTransport::kTls;
  if (ascii_iequals(service, "SIP+D2S")) return SipTransport::kSctp;
  return SipTransport::kAny;
}

}  // namespace

const char* dns_status_name(DnsStatus s) {
  switch (s) {
    case DnsStatus::kOk: return "ok";
    case DnsStatus::kNoData: return "nodata";
    case DnsStatus::kNxDomain: return "nxdomain";
    case DnsStatus::kTimeout: return "timeout";
    case DnsStatus::kServFail: return "servfail";
    case DnsStatus::kBadName: return "bad name";
    case DnsStatus::kError: return "error";
  }
  return "?";
}

const char* sip_transport_name(SipTransport t) {
  switch (t) {
    case SipTransport::kAny: return "any";
    case SipTransport::kUdp: return "udp";
    case SipTransport::kTcp: return "tcp";
    case SipTransport::kTls: return "tls";
    case SipTransport::kSctp: return "sctp";
  }
  return "?";
}

struct DnsResolver::Query {
  uint64_t id = 0;
  std::string name;
  DnsType type = DnsType::kA;
  uint64_t deadline = 0;
  bool counted = false;  // a caller's query (not a resolve_sip step)
  bool completed = false;
  std::function<void(uint64_t id, DnsResult&&)> cb;
};

// The argument c-ares hands back; outlives the Query when the caller gave up first (c-ares
// cannot cancel one query), so it names the query by id.
struct DnsResolver::AresCall {
  DnsResolver* self;
  uint64_t id;
};

struct DnsResolver::Poll {
  uv_poll_t handle{};
  DnsResolver* self = nullptr;
  int fd = -1;
};

struct DnsResolver::SipJob {
  uint64_t id = 0;
  SipResolveRequest req;
  SipCallback cb;
  uint64_t deadline = 0;
  std::string host;  // without brackets
  std::set<uint64_t> pending;  // sub-queries in flight
  enum class Stage { kNaptr, kSrv, kAddr } stage = Stage::kNaptr;
  bool fallback = false;  // SRV names guessed because the domain had no usable NAPTR
  struct SrvSet {
    SipTransport transport;
    std::string name;
    DnsResult result;
  };
  std::vector<SrvSet> srv;
  struct AddrSlot {
    SipTransport transport;
    std::string host;
    uint16_t port;
    DnsResult a, aaaa;
  };
  std::vector<AddrSlot> addr;
};

DnsResolver::DnsResolver(uv_loop_t* loop, DnsResolverOptions options)
    : loop_(loop), options_(std::move(options)) {
  // ares_library_init() is a no-op on Linux (it initialises WinSock) and process-wide, so it is
  // not called: each resolver owns just its channel.
  ares_options o{};
  o.sock_state_cb = &DnsResolver::on_sock_state;
  o.sock_state_cb_data = this;
  o.timeout = static_cast<int>(std::max<uint32_t>(options_.try_timeout_ms, 1));
  o.tries = std::max(options_.tries, 1);
  // NOCHECKRESP: a SERVFAIL/REFUSED answer is reported as such (c-ares would otherwise retry
  // it and end with a vague "could not contact DNS servers").
  o.flags = ARES_FLAG_NOCHECKRESP;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
  ares_channel ch = nullptr;
  int st = ares_init_options(&ch, &o, mask);
  if (st != ARES_SUCCESS) throw std::runtime_error(std::string("dns: c-ares init: ") + ares_strerror(st));
  channel_ = ch;
  if (!options_.servers.empty()) {
    std::string csv;
    for (auto& s : options_.servers) {
      jn_addr a{};
      // "ip:port" / "[v6]:port" / a bare IP, checked here so a typo names itself.
      if (!parse_addr(s, a) && !parse_literal(s, a)) {
        ares_destroy(channel_);
        throw std::runtime_error("dns: bad server address '" + s + "' (want ip:port or [v6]:port)");
      }
      if (a.port == 0) a.port = 53;
      if (!csv.empty()) csv += ',';
      csv += format_addr(a);
    }
    st = ares_set_servers_ports_csv(channel_, csv.c_str());
    if (st != ARES_SUCCESS) {
      ares_destroy(channel_);
      throw std::runtime_error("dns: servers '" + csv + "': " + ares_strerror(st));
    }
  }
  rng_.seed(options_.seed ? options_.seed : std::random_device{}());
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  timer_open_ = true;
  ++open_handles_;
}

DnsResolver::~DnsResolver() {
  assert(state_ == State::kStopped && "DnsResolver destroyed without stop()");
  assert(queries_.empty() && sip_jobs_.empty() && polls_.empty() && open_handles_ == 0);
}

uint64_t DnsResolver::resolve(std::string name, DnsType type, uint32_t timeout_ms, Callback cb,
                              std::string* error) {
  if (state_ != State::kRunning) {
    if (error) *error = "resolver stopped";
    return 0;
  }
  if (counted_ >= options_.max_outstanding) {
    if (error) *error = fmt::format("too many outstanding DNS queries ({})", options_.max_outstanding);
    JN_LOG_WRN("dns: {} {} refused: too many outstanding queries ({})", type_name(type), printable(name),
               options_.max_outstanding);
    return 0;
  }
  return start_query(std::move(name), type, timeout_ms,
                     [cb = std::move(cb)](uint64_t, DnsResult&& r) { cb(r); }, true);
}

uint64_t DnsResolver::start_query(std::string name, DnsType type, uint32_t timeout_ms,
                                  std::function<void(uint64_t, DnsResult&&)> cb, bool counted) {
  uint64_t id = next_id_++;
  auto q = std::make_unique<Query>();
  q->id = id;
  q->name = name;
  q->type = type;
  q->counted = counted;
  q->cb = std::move(cb);
  q->deadline = uv_now(loop_) + timeout_ms;
  queries_.emplace(id, std::move(q));
  if (counted) ++counted_;

  DnsResult r;
  r.name = name;
  r.type = type;
  jn_addr lit{};
  bool literal = parse_literal(name, lit);
  if (literal || is_localhost(name)) {
    // Answered without a query, on the next loop turn like any other answer.
    if (type == DnsType::kSRV || type == DnsType::kNAPTR) {
      r.status = DnsStatus::kBadName;
      r.error = "an IP literal or localhost has no SRV/NAPTR records";
    } else if (!literal) {
      jn_addr a{};
      a.family = type == DnsType::kA ? 4 : 6;
      if (a.family == 4) {
        a.ip[0] = 127;
        a.ip[3] = 1;
      } else {
        a.ip[15] = 1;
      }
      r.status = DnsStatus::kOk;
      r.addresses.push_back(a);
    } else if ((lit.family == 4) == (type == DnsType::kA)) {
      r.status = DnsStatus::kOk;
      r.addresses.push_back(lit);
    } else {
      r.status = DnsStatus::kNoData;
      r.error = "an IP literal of the other family";
    }
    complete(id, std::move(r));
    return id;
  }
  if (!valid_dns_name(name)) {
    r.status = DnsStatus::kBadName;
    r.error = "not a valid DNS name";
    complete(id, std::move(r));
    return id;
  }
  deadlines_.emplace(queries_[id]->deadline, id);
  auto* call = new AresCall{this, id};
  // May call on_ares_answer at once (e.g. out of memory): it only queues the result.
  ares_query(channel_, name.c_str(), 1 /* C_IN */, static_cast<int>(type), &DnsResolver::on_ares_answer,
             call);
  rearm();
  return id;
}

void DnsResolver::on_ares_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<AresCall> call(static_cast<AresCall*>(arg));
  if (status == ARES_ECANCELLED || status == ARES_EDESTRUCTION) return;  // stop()
  DnsResolver* self = call->self;
  auto it = self->queries_.find(call->id);
  if (it == self->queries_.end() || it->second->completed) return;  // cancelled or timed out
  Query& q = *it->second;
  DnsResult r;
  r.name = q.name;
  r.type = q.type;
  if (status == ARES_SUCCESS && abuf) {
    parse_answer(r, abuf, alen);
  } else {
    r.status = status_of(status);
    r.error = ares_strerror(status);
  }
  self->complete(call->id, std::move(r));
}

void DnsResolver::complete(uint64_t id, DnsResult&& result) {
  auto it = queries_.find(id);
  if (it == queries_.end() || it->second->completed) return;
  Query& q = *it->second;
  q.completed = true;
  deadlines_.erase({q.deadline, id});
  if (result.status != DnsStatus::kOk) {
    int level = result.status == DnsStatus::kNoData || result.status == DnsStatus::kNxDomain
                    ? JN_LOG_DEBUG
                    : JN_LOG_INFO;
    log_core(level, "dns: {} {}: {} ({})", type_name(q.type), printable(q.name), dns_status_name(result.status),
             result.error);
  }
  ready_.emplace_back(id, std::move(result));
  rearm();
}

void DnsResolver::deliver_ready() {
  // Only what was ready on entry: a literal resolved from inside a callback waits a turn.
  size_t n = ready_.size();
  while (n-- > 0 && !ready_.empty() && state_ == State::kRunning) {
    auto [id, result] = std::move(ready_.front());
    ready_.pop_front();
    auto it = queries_.find(id);
    if (it == queries_.end()) continue;  // cancelled after it completed
    auto cb = std::move(it->second->cb);
    if (it->second->counted) --counted_;
    queries_.erase(it);
    cb(id, std::move(result));
  }
}

void DnsResolver::expire_deadlines() {
  uint64_t now = uv_now(loop_);
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    uint64_t id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    auto it = queries_.find(id);
    if (it == queries_.end()) continue;
    DnsResult r;
    r.name = it->second->name;
    r.type = it->second->type;
    r.status = DnsStatus::kTimeout;
    r.error = "no answer in time";
    complete(id, std::move(r));
  }
}

bool DnsResolver::cancel(uint64_t id) {
  if (auto it = queries_.find(id); it != queries_.end()) {
    if (!it->second->completed) deadlines_.erase({it->second->deadline, id});
    if (it->second->counted) --counted_;
    queries_.erase(it);  // a late c-ares answer finds no query and is dropped
    return true;
  }
  if (auto it = sip_jobs_.find(id); it != sip_jobs_.end()) {
    auto job = std::move(it->second);
    sip_jobs_.erase(it);
    --counted_;
    for (uint64_t sub : job->pending) cancel(sub);
    return true;
  }
  return false;
}

void DnsResolver::rearm() {
  if (state_ != State::kRunning) return;
  if (!ready_.empty()) {
    uv_timer_start(&timer_, &DnsResolver::on_timer, 0, 0);
    return;
  }
  int64_t ms = -1;
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv)) ms = int64_t(tv.tv_sec) * 1000 + (tv.tv_usec + 999) / 1000;
  if (!deadlines_.empty()) {
    uint64_t now = uv_now(loop_), d = deadlines_.begin()->first;
    int64_t left = d > now ? int64_t(d - now) : 0;
    ms = ms < 0 ? left : std::min(ms, left);
  }
  if (ms < 0) {
    uv_timer_stop(&timer_);
  } else {
    uv_timer_start(&timer_, &DnsResolver::on_timer, static_cast<uint64_t>(ms), 0);
  }
}

void DnsResolver::on_timer(uv_timer_t* t) {
  auto* self = static_cast<DnsResolver*>(t->data);
  if (self->state_ != State::kRunning) return;
  ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // c-ares retransmissions
  self->expire_deadlines();
  self->deliver_ready();
  self->rearm();
}

void DnsResolver::on_sock_state(void* data, int fd, int readable, int writable) {
  auto* self = static_cast<DnsResolver*>(data);
  auto it = self->polls_.find(fd);
  if (!readable && !writable) {
    if (it == self->polls_.end()) return;
    // c-ares closes the socket right after this: stop polling it now.
    uv_poll_stop(&it->second->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&it->second->handle), &DnsResolver::on_poll_closed);
    self->polls_.erase(it);
    return;
  }
  Poll* p;
  if (it == self->polls_.end()) {
    p = new Poll;
    p->self = self;
    p->fd = fd;
    int rc = uv_poll_init_socket(self->loop_, &p->handle, fd);
    if (rc != 0) {
      // Its queries time out; c-ares's own schedule bounds them.
      JN_LOG_ERR("dns: cannot poll c-ares socket {}: {}", fd, uv_strerror(rc));
      delete p;
      return;
    }
    p->handle.data = p;
    ++self->open_handles_;
    self->polls_.emplace(fd, p);
  } else {
    p = it->second;
  }
  uv_poll_start(&p->handle, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                &DnsResolver::on_poll);
}

void DnsResolver::on_poll(uv_poll_t* handle, int status, int events) {
  auto* p = static_cast<Poll*>(handle->data);
  DnsResolver* self = p->self;
  if (self->state_ != State::kRunning) return;
  // On a poll error let c-ares read the socket: it sees the error and fails over.
  ares_socket_t rd = (status < 0 || (events & UV_READABLE)) ? p->fd : ARES_SOCKET_BAD;
  ares_socket_t wr = (status >= 0 && (events & UV_WRITABLE)) ? p->fd : ARES_SOCKET_BAD;
  ares_process_fd(self->channel_, rd, wr);
  self->rearm();
}

void DnsResolver::on_poll_closed(uv_handle_t* h) {
  auto* p = static_cast<Poll*>(h->data);
  DnsResolver* self = p->self;
  delete p;
  --self->open_handles_;
  self->finish_stop_if_idle();
}

void DnsResolver::on_timer_closed(uv_handle_t* h) {
  auto* self = static_cast<DnsResolver*>(h->data);
  --self->open_handles_;
  self->finish_stop_if_idle();
}

void DnsResolver::stop(std::function<void()> done) {
  assert(state_ == State::kRunning && "DnsResolver::stop() called twice");
  state_ = State::kStopping;
  stop_done_ = std::move(done);
  // No callback runs from here on.
  queries_.clear();
  sip_jobs_.clear();
  deadlines_.clear();
  ready_.clear();
  counted_ = 0;
  // Never called from inside c-ares (callbacks run from the timer), so destroying is safe. It
  // ends the in-flight c-ares calls (EDESTRUCTION) and closes its sockets (on_sock_state).
  ares_destroy(channel_);
  channel_ = nullptr;
  for (auto& [fd, p] : polls_) {
    uv_poll_stop(&p->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), &DnsResolver::on_poll_closed);
  }
  polls_.clear();
  if (timer_open_) {
    timer_open_ = false;
    uv_timer_stop(&timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &DnsResolver::on_timer_closed);
  }
  finish_stop_if_idle();
}

void DnsResolver::finish_stop_if_idle() {
  if (state_ != State::kStopping || open_handles_ != 0) return;
  state_ = State::kStopped;
  auto done = std::move(stop_done_);
  if (done) done();
}

std::vector<DnsSrv> DnsResolver::order_srv(std::vector<DnsSrv> records) {
  std::erase_if(records, [](const DnsSrv& s) { return s.target.empty() || s.target == "."; });
  std::stable_sort(records.begin(), records.end(),
                   [](const DnsSrv& a, const DnsSrv& b) { return a.priority < b.priority; });
  std::vector<DnsSrv> out;
  out.reserve(records.size());
  size_t i = 0;
  while (i < records.size()) {
    size_t j = i;
    while (j < records.size() && records[j].priority == records[i].priority) ++j;
    // RFC 2782: zero weights first, then pick by running sum against a uniform random number.
    std::vector<DnsSrv> group(records.begin() + i, records.begin() + j);
    std::stable_partition(group.begin(), group.end(), [](const DnsSrv& s) { return s.weight == 0; });
    while (!group.empty()) {
      uint32_t sum = 0;
      for (auto& s : group) sum += s.weight;
      uint32_t pick = std::uniform_int_distribution<uint32_t>(0, sum)(rng_);
      size_t k = 0;
      uint32_t run = 0;
      for (; k < group.size(); ++k) {
        run += group[k].weight;
        if (run >= pick) break;
      }
      if (k == group.size()) k = group.size() - 1;
      out.push_back(std::move(group[k]));
      group.erase(group.begin() + k);
    }
    i = j;
  }
  return out;
}

// ---- RFC 3263 -------------------------------------------------------------------------------

uint64_t DnsResolver::resolve_sip(SipResolveRequest request, SipCallback cb, std::string* error) {
  if (state_ != State::kRunning) {
    if (error) *error = "resolver stopped";
    return 0;
  }
  if (counted_ >= options_.max_outstanding) {
    if (error) *error = fmt::format("too many outstanding DNS queries ({})", options_.max_outstanding);
    JN_LOG_WRN("dns: SIP {} refused: too many outstanding queries ({})", printable(request.host),
               options_.max_outstanding);
    return 0;
  }
  uint64_t id = next_id_++;
  auto job = std::make_unique<SipJob>();
  job->id = id;
  job->cb = std::move(cb);
  job->deadline = uv_now(loop_) + request.timeout_ms;
  job->host = request.host;
  if (job->host.size() >= 2 && job->host.front() == '[' && job->host.back() == ']')
    job->host = job->host.substr(1, job->host.size() - 2);
  if (request.sips) request.supported = {SipTransport::kTls};
  if (request.supported.empty()) request.supported = {SipTransport::kUdp};
  job->req = std::move(request);
  SipJob& j = *job;
  sip_jobs_.emplace(id, std::move(job));
  ++counted_;

  const auto& req = j.req;
  jn_addr lit{};
  bool literal = parse_literal(j.host, lit) || is_localhost(j.host);
  SipTransport fallback_t = req.sips ? SipTransport::kTls : SipTransport::kUdp;
  if (literal || req.port != 0) {
    // Section 4.1/4.2: a numeric host (or localhost) or an explicit port skips NAPTR and SRV.
    SipTransport t = req.transport != SipTransport::kAny ? req.transport : fallback_t;
    j.stage = SipJob::Stage::kAddr;
    j.addr.push_back({t, j.host, req.port ? req.port : default_port(t), {}, {}});
    sip_lookup_addresses(j, 0);
  } else if (req.transport != SipTransport::kAny) {
    j.stage = SipJob::Stage::kSrv;
    j.fallback = true;
    j.srv.push_back({req.transport, srv_prefix(req.transport) + j.host, {}});
  } else {
    j.stage = SipJob::Stage::kNaptr;
  }
  if (j.stage != SipJob::Stage::kAddr) sip_step(id);
  return id;
}

// Starts the lookups of the current stage.
void DnsResolver::sip_step(uint64_t job_id) {
  auto it = sip_jobs_.find(job_id);
  if (it == sip_jobs_.end()) return;
  SipJob& j = *it->second;
  uint64_t now = uv_now(loop_);
  uint32_t left = j.deadline > now ? static_cast<uint32_t>(j.deadline - now) : 0;
  if (j.stage == SipJob::Stage::kNaptr) {
    uint64_t sub = start_query(j.host, DnsType::kNAPTR, left, [this, job_id](uint64_t, DnsResult&& r) {
      auto it = sip_jobs_.find(job_id);
      if (it == sip_jobs_.end()) return;
      SipJob& j = *it->second;
      j.pending.clear();
      if (r.status == DnsStatus::kNxDomain || r.status == DnsStatus::kBadName) {
        sip_finish(job_id, {r.status, r.error, {}});
        return;
      }
      std::set<SipTransport> seen;
      for (auto& n : r.naptr) {
        SipTransport t = naptr_transport(n.service);
        bool supported = std::find(j.req.supported.begin(), j.req.supported.end(), t) != j.req.supported.end();
        if (t == SipTransport::kAny || !supported || !ascii_iequals(n.flags, "s") || n.replacement.empty() ||
            n.replacement == "." || !seen.insert(t).second)
          continue;
        j.srv.push_back({t, n.replacement, {}});
      }
      if (j.srv.empty()) {
        // No usable NAPTR: SRV for each supported transport, in the caller's preference.
        j.fallback = true;
        for (SipTransport t : j.req.supported)
          if (t != SipTransport::kAny) j.srv.push_back({t, srv_prefix(t) + j.host, {}});
      }
      if (uv_now(loop_) >= j.deadline) {
        sip_finish(job_id, {DnsStatus::kTimeout, "no answer in time (NAPTR)", {}});
        return;
      }
      j.stage = SipJob::Stage::kSrv;
      sip_step(job_id);
    }, false);
    j.pending.insert(sub);
    return;
  }
  if (j.stage == SipJob::Stage::kSrv) {
    for (size_t k = 0; k < j.srv.size(); ++k) {
      uint64_t sub = start_query(j.srv[k].name, DnsType::kSRV, left, [this, job_id, k](uint64_t sub, DnsResult&& r) {
        auto it = sip_jobs_.find(job_id);
        if (it == sip_jobs_.end()) return;
        SipJob& j = *it->second;
        j.srv[k].result = std::move(r);
        j.pending.erase(sub);
        if (!j.pending.empty()) return;  // more SRV answers to come
        // All SRV answers are in: their targets, in NAPTR/preference order, then RFC 2782 order.
        for (auto& s : j.srv) {
          if (s.result.status != DnsStatus::kOk) continue;
          for (auto& rec : order_srv(s.result.srv)) {
            if (j.addr.size() >= kMaxSrvTargets) break;
            j.addr.push_back({s.transport, rec.target, rec.port, {}, {}});
          }
        }
        if (j.addr.empty()) {
          // No SRV: A/AAAA of the domain on the default port (section 4.2).
          SipTransport t = j.req.transport != SipTransport::kAny ? j.req.transport
                           : j.req.sips                          ? SipTransport::kTls
                                                                 : SipTransport::kUdp;
          j.addr.push_back({t, j.host, default_port(t), {}, {}});
        }
        if (uv_now(loop_) >= j.deadline) {
          sip_finish(job_id, {DnsStatus::kTimeout, "no answer in time (SRV)", {}});
          return;
        }
        j.stage = SipJob::Stage::kAddr;
        for (size_t a = 0; a < j.addr.size(); ++a) sip_lookup_addresses(j, a);
      }, false);
      j.pending.insert(sub);
    }
  }
}

void DnsResolver::sip_lookup_addresses(SipJob& j, size_t slot) {
  uint64_t job_id = j.id;
  uint64_t now = uv_now(loop_);
  uint32_t left = j.deadline > now ? static_cast<uint32_t>(j.deadline - now) : 0;
  for (DnsType type : {DnsType::kA, DnsType::kAAAA}) {
    uint64_t sub = start_query(j.addr[slot].host, type, left, [this, job_id, slot, type](uint64_t sub, DnsResult&& r) {
      auto it = sip_jobs_.find(job_id);
      if (it == sip_jobs_.end()) return;
      SipJob& j = *it->second;
      (type == DnsType::kA ? j.addr[slot].a : j.addr[slot].aaaa) = std::move(r);
      j.pending.erase(sub);
      if (!j.pending.empty()) return;  // more to come
      SipResolveResult out;
      bool timeout = false, servfail = false, all_nx = true, all_bad = true;
      std::string why;
      for (auto& s : j.addr) {
        for (const DnsResult* res : {&s.a, &s.aaaa}) {
          timeout |= res->status == DnsStatus::kTimeout;
          servfail |= res->status == DnsStatus::kServFail;
          all_nx &= res->status == DnsStatus::kNxDomain;
          all_bad &= res->status == DnsStatus::kBadName;
          for (jn_addr a : res->addresses) {
            a.port = s.port;
            bool dup = false;
            for (auto& t : out.targets)
              dup |= t.transport == s.transport && std::memcmp(&t.addr, &a, sizeof a) == 0;
            if (!dup) {
              jn_addr lit{};
              out.targets.push_back({s.transport, a, parse_literal(s.host, lit) ? "" : s.host});
            }
          }
        }
        if (why.empty() && s.a.status != DnsStatus::kOk && s.aaaa.status != DnsStatus::kOk)
          why = fmt::format("{}: {}", s.host, dns_status_name(s.a.status));
      }
      if (!out.targets.empty()) {
        out.status = DnsStatus::kOk;
      } else {
        out.status = timeout    ? DnsStatus::kTimeout
                     : servfail ? DnsStatus::kServFail
                     : all_nx   ? DnsStatus::kNxDomain
                     : all_bad  ? DnsStatus::kBadName
                                : DnsStatus::kNoData;
        out.error = "no address found (" + why + ")";
      }
      sip_finish(job_id, std::move(out));
    }, false);
    j.pending.insert(sub);
  }
}

void DnsResolver::sip_finish(uint64_t job_id, SipResolveResult&& result) {
  auto it = sip_jobs_.find(job_id);
  if (it == sip_jobs_.end()) return;
  auto job = std::move(it->second);
  sip_jobs_.erase(it);
  --counted_;
  for (uint64_t sub : job->pending) cancel(sub);  // none are left in the normal course
  if (result.status != DnsStatus::kOk)
    JN_LOG_INF("dns: SIP {}: {} ({})", printable(job->req.host), dns_status_name(result.status), result.error);
  job->cb(result);
}

}  // namespace junction
