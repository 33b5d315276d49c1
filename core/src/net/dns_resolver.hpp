// DnsResolver: asynchronous DNS (A, AAAA, SRV, NAPTR) with c-ares, driven by a libuv loop (the
// control loop or a media loop's), and RFC 3263 section 4 server location for SIP URIs.
//
// Threading: one resolver per loop; every method and every callback runs on that loop's thread.
// Nothing blocks: c-ares sockets are polled with uv_poll, its retransmissions and the per-query
// deadlines run on one uv_timer.
// Callbacks: always from a later loop turn (never from inside resolve()), exactly once per
// accepted query unless cancel()ed or stop()ped first. A callback may call resolve(), cancel()
// and stop().
// Ownership: the resolver owns its c-ares channel and its uv handles (freed in close callbacks);
// stop(done) must complete before destruction (the destructor asserts it).
#pragma once

#include <junction/abi.h>

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

struct ares_channeldata;

namespace junction {

enum class DnsType : uint16_t { kA = 1, kAAAA = 28, kSRV = 33, kNAPTR = 35 };

enum class DnsStatus {
  kOk,        // at least one record of the asked type
  kNoData,    // the name exists but has no record of that type
  kNxDomain,  // the name does not exist
  kTimeout,   // no answer within timeout_ms (or c-ares's own retries ran out)
  kServFail,  // the server(s) answered SERVFAIL
  kBadName,   // not a valid DNS name (or an IP literal asked for SRV/NAPTR)
  kError,     // anything else (refused, malformed answer, ...): see DnsResult::error
};
const char* dns_status_name(DnsStatus s);

struct DnsSrv {
  uint16_t priority = 0;
  uint16_t weight = 0;
  uint16_t port = 0;
  std::string target;  // "." = the service is decidedly not available there (RFC 2782)
};

struct DnsNaptr {
  uint16_t order = 0;
  uint16_t preference = 0;
  std::string flags;    // e.g. "s"
  std::string service;  // e.g. "SIP+D2U"
  std::string regexp;
  std::string replacement;  // e.g. "_sip._udp.example.com"
};

struct DnsResult {
  DnsStatus status = DnsStatus::kError;
  std::string error;  // a reason when status != kOk
  std::string name;   // as asked
  DnsType type = DnsType::kA;
  std::vector<jn_addr> addresses;  // A / AAAA (port 0), in answer order
  std::vector<DnsSrv> srv;         // in answer order (see DnsResolver::order_srv)
  std::vector<DnsNaptr> naptr;     // sorted by (order, preference)
  uint32_t ttl = 0;                // smallest TTL of the answer records (0 for literals)
};

enum class SipTransport : uint8_t { kAny, kUdp, kTcp, kTls, kSctp };
const char* sip_transport_name(SipTransport t);  // "udp", "tcp", "tls", "sctp", "any"

struct SipTarget {
  SipTransport transport = SipTransport::kUdp;
  jn_addr addr{};      // ip + port
  std::string target;  // the host name the address came from ("" for a literal)
};

struct SipResolveRequest {
  std::string host;  // the URI's host: a name, an IPv4 literal or "[IPv6]" (brackets optional)
  uint16_t port = 0;  // the URI's port, 0 when it has none
  SipTransport transport = SipTransport::kAny;  // the URI's transport parameter, kAny if none
  bool sips = false;                            // a sips: URI (TLS only)
  uint32_t timeout_ms = 5000;                   // the whole resolution
  // The transports the caller can use, in its order of preference (used to filter NAPTR
  // services and to order the SRV fallback when the domain has no NAPTR records).
  std::vector<SipTransport> supported{SipTransport::kUdp, SipTransport::kTcp, SipTransport::kTls};
};

struct SipResolveResult {
  DnsStatus status = DnsStatus::kError;  // kOk when targets is not empty
  std::string error;
  std::vector<SipTarget> targets;  // in the order to try them (RFC 3263 section 4)
};

struct DnsResolverOptions {
  // "ip:port" / "[v6]:port" / "ip" entries; empty = the system's (/etc/resolv.conf).
  std::vector<std::string> servers;
  size_t max_outstanding = 256;  // resolve()/resolve_sip() calls in flight; more are refused
  // c-ares's own retransmission schedule (per try; doubled each round): bounds how long a query
  // whose caller already gave up (timeout_ms, cancel) keeps a c-ares slot.
  uint32_t try_timeout_ms = 2000;
  int tries = 2;
  uint32_t seed = 0;  // SRV weighted selection; 0 = random
};

class DnsResolver {
 public:
  using Callback = std::function<void(const DnsResult&)>;
  using SipCallback = std::function<void(const SipResolveResult&)>;

  // Throws std::runtime_error when c-ares cannot be initialised or a server entry is invalid.
  DnsResolver(uv_loop_t* loop, DnsResolverOptions options = {});
  ~DnsResolver();  // asserts stop() completed
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // Starts a query; returns its id (> 0), or 0 with *error set when refused (too many
  // outstanding, stopping). A literal IP (or "localhost") answers without a query.
  uint64_t resolve(std::string name, DnsType type, uint32_t timeout_ms, Callback cb,
                   std::string* error = nullptr);
  // RFC 3263 section 4: literal IP as is; explicit port -> A/AAAA; explicit transport -> SRV
  // for it; else NAPTR -> SRV -> A/AAAA, with the SRV fallback (_sip._udp, _sip._tcp,
  // _sips._tcp in `supported` order) when the domain has no usable NAPTR, and A/AAAA on the
  // default port (5060, 5061 for TLS) when it has no SRV either. Same id space as resolve().
  uint64_t resolve_sip(SipResolveRequest request, SipCallback cb, std::string* error = nullptr);
  // Forgets a query: its callback is never called. false if unknown or already completed.
  bool cancel(uint64_t id);
  // Async: drops every outstanding query (no callbacks), destroys the channel, closes the uv
  // handles; done runs once they are all closed. Later resolve() calls are refused.
  void stop(std::function<void()> done);

  // resolve() and resolve_sip() calls in flight (what max_outstanding caps).
  size_t outstanding() const { return counted_; }

  // RFC 2782 ordering: ascending priority, weighted random order inside a priority (uses the
  // resolver's generator); "." targets are dropped.
  std::vector<DnsSrv> order_srv(std::vector<DnsSrv> records);

 private:
  struct Query;
  struct AresCall;
  struct SipJob;
  struct Poll;
  enum class State { kRunning, kStopping, kStopped };

  uint64_t start_query(std::string name, DnsType type, uint32_t timeout_ms,
                       std::function<void(uint64_t id, DnsResult&&)> cb, bool counted);
  void complete(uint64_t id, DnsResult&& result);  // queues the result for the next turn
  void deliver_ready();
  void expire_deadlines();
  void rearm();
  void finish_stop_if_idle();

  // RFC 3263 steps.
  void sip_step(uint64_t job_id);
  void sip_lookup_addresses(SipJob& job, size_t slot);
  void sip_finish(uint64_t job_id, SipResolveResult&& result);

  static void on_sock_state(void* data, int fd, int readable, int writable);
  static void on_ares_answer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  static void on_poll(uv_poll_t* handle, int status, int events);
  static void on_timer(uv_timer_t* t);
  static void on_timer_closed(uv_handle_t* h);
  static void on_poll_closed(uv_handle_t* h);

  uv_loop_t* loop_;
  DnsResolverOptions options_;
  ares_channeldata* channel_ = nullptr;
  uv_timer_t timer_{};
  bool timer_open_ = false;
  State state_ = State::kRunning;
  std::function<void()> stop_done_;
  size_t open_handles_ = 0;  // timer + polls not yet closed

  uint64_t next_id_ = 1;
  size_t counted_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<Query>> queries_;
  std::unordered_map<uint64_t, std::unique_ptr<SipJob>> sip_jobs_;
  std::set<std::pair<uint64_t, uint64_t>> deadlines_;  // (uv_now ms, query id)
  std::deque<std::pair<uint64_t, DnsResult>> ready_;  // (query id, result) for the next turn
  std::unordered_map<int, Poll*> polls_;               // c-ares socket -> its uv_poll
  std::mt19937 rng_;
};

}  // namespace junction
