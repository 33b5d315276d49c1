// HttpServer on libwebsockets 4.1 with a foreign libuv loop. See http_server.hpp.
//
// Notes on lws 4.1.6 behaviour this file relies on (checked against the Debian 12 build):
//  - Each endpoint is its own lws context with one vhost. lws_vhost_destroy() in 4.1 only
//    marks the vhost and closes its listener and connections up to ~1 s later, and vhosts on
//    the same port silently share one listening socket; destroying a whole context closes
//    everything at once, so close_endpoint() takes effect immediately.
//  - With a foreign uv loop, lws_context_destroy() only starts the teardown: it closes every
//    wsi (uv_poll handles), and when the last one is freed it uv_close()s its two "static"
//    handles (an idle and a timer whose .data is the lws_context). Nothing frees the context
//    after that, so we wait until no handle with .data == context is left in the loop and
//    call lws_context_destroy() a second time, which frees everything (info.pcontext is then
//    set to NULL).
//  - lws 4.1.6 closes the fd of its event pipe (an eventfd) twice when a context is destroyed
//    on a libuv loop: once inside lws_context_destroy() and again in the uv close callback
//    one loop iteration later (fixed upstream after 4.1, warmcat/libwebsockets#2514). In
//    between, the number can be reused by anyone in the process, whose fd would then be
//    closed. We remember the eventfd's number when the context is created; right after the
//    first close we park /dev/null on that number, so that the second close closes only that.
//    User handlers are not called from inside lws_context_destroy() (WS CLOSED events are
//    delivered just before it), so the only window left is other threads opening an fd
//    during the few microseconds lws_context_destroy() runs.
//  - A WRITEABLE callback returning -1 drops a WebSocket without a close frame, even after
//    lws_close_reason(); ws_close() therefore writes the close frame itself and hangs up when
//    the peer's close arrives (LWS_CALLBACK_WS_PEER_INITIATED_CLOSE) or after 5 s.
//  - lws 4.1 does not answer "Expect: 100-continue"; we write the interim response.
//  - lws only accepts a WebSocket subprotocol that names one of the vhost's protocols. To
//    accept any subprotocol, each vhost has a spare protocol slot whose name is set to the
//    client's first offered subprotocol in LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, just before
//    lws looks the name up.
#include "http/http_server.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <libwebsockets.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

namespace junction {

namespace {

constexpr const char* kAnyProtocol = "\x01junction-any-subprotocol";
constexpr size_t kBodyChunk = 64 * 1024;
constexpr uint64_t kDrainGiveUpMs = 10000;
constexpr const char* kJson = "application/json";
// The WebSocket close opcode for lws_write(); lws keeps it out of its public enum.
constexpr auto kWriteClose = static_cast<lws_write_protocol>(4);

void lws_log_emit(int level, const char* line) {
  (void)level;
  size_t n = std::strlen(line);
  std::fprintf(stderr, "lws: %s%s", line, (n && line[n - 1] == '\n') ? "" : "\n");
}

void init_lws_logging() {
  static const bool once = [] {
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
    return true;
  }();
  (void)once;
}

std::string header(lws* wsi, lws_token_indexes t) {
  int n = lws_hdr_total_length(wsi, t);
  if (n <= 0) return {};
  // Room for the separators lws puts between repeated headers.
  std::string s(static_cast<size_t>(n) * 2 + 64, '\0');
  int m = lws_hdr_copy(wsi, s.data(), static_cast<int>(s.size()), t);
  if (m < 0) return {};
  s.resize(static_cast<size_t>(m));
  return s;
}

// Every header lws parsed by name (the standard HTTP/1.1 set; lws 4.1 cannot enumerate others),
// in token order, with lower-case names. Pseudo-headers and the request line are left out.
std::vector<std::pair<std::string, std::string>> all_headers(lws* wsi) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int t = 0; t < WSI_TOKEN_COUNT; ++t) {
    auto tok = static_cast<lws_token_indexes>(t);
    const char* name = reinterpret_cast<const char*>(lws_token_to_string(tok));
    if (!name || !*name || *name == ':') continue;
    std::string_view n(name);
    if (n.back() != ':' || n.find(' ') != std::string_view::npos) continue;  // "get " etc: the request line
    if (lws_hdr_total_length(wsi, tok) <= 0) continue;
    out.emplace_back(std::string(n.substr(0, n.size() - 1)), header(wsi, tok));
  }
  return out;
}

void pct_encode(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
}

// lws splits the query at '&' and percent-decodes each part; put it back together encoded,
// so that the consumer's own decoding gives the original values.
std::string query_of(lws* wsi) {
  int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
  if (total <= 0) return {};
  std::vector<char> buf(static_cast<size_t>(total) + 1);
  std::string out;
  for (int i = 0;; ++i) {
    int n = lws_hdr_copy_fragment(wsi, buf.data(), static_cast<int>(buf.size()),
                                  WSI_TOKEN_HTTP_URI_ARGS, i);
    if (n < 0) break;
    std::string_view frag(buf.data(), static_cast<size_t>(n));
    if (frag.empty()) continue;
    if (!out.empty()) out += '&';
    size_t eq = frag.find('=');
    if (eq == std::string_view::npos) {
      pct_encode(out, frag);
    } else {
      pct_encode(out, frag.substr(0, eq));
      out += '=';
      pct_encode(out, frag.substr(eq + 1));
    }
  }
  return out;
}

// "ip:port" ("[v6]:port"; a v4-mapped address as plain IPv4). *ip gets the address alone.
std::string peer_string(const sockaddr_storage& ss, std::string* ip = nullptr) {
  char buf[INET6_ADDRSTRLEN] = {0};
  std::string host;
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    host = buf;
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, sizeof buf);
      host = buf;
    } else {
      inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
      host = std::string("[") + buf + "]";
    }
    port = ntohs(a->sin6_port);
  } else {
    return {};
  }
  if (ip) *ip = host;
  return host + ":" + std::to_string(port);
}

std::string peer_of(lws* wsi) {
  int fd = lws_get_socket_fd(wsi);
  sockaddr_storage ss{};
  socklen_t sl = sizeof ss;
  if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0) return {};
  return peer_string(ss);
}

// "ip:port", "[v6]:port", "name:port", ":port", "*:port". host is "" for the any-address ("" and
// "*"); "0.0.0.0" and "::" stay as written (IPv4-only and IPv6-only any-addresses).
bool parse_addr(std::string_view a, std::string* host, int* port) {
  std::string_view h, p;
  if (!a.empty() && a.front() == '[') {
    size_t e = a.find(']');
    if (e == std::string_view::npos || e + 1 >= a.size() || a[e + 1] != ':') return false;
    h = a.substr(1, e - 1);
    p = a.substr(e + 2);
    in6_addr tmp{};
    if (inet_pton(AF_INET6, std::string(h).c_str(), &tmp) != 1) return false;
  } else {
    size_t c = a.rfind(':');
    if (c == std::string_view::npos) return false;
    h = a.substr(0, c);
    p = a.substr(c + 1);
    if (h.find(':') != std::string_view::npos) return false;  // bare IPv6 needs brackets
    // An IPv4 address or a host name (resolved when the socket is bound).
    for (char ch : h)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_' &&
          !(ch == '*' && h.size() == 1))
        return false;
  }
  if (p.empty() || p.size() > 5) return false;
  int v = 0;
  for (char ch : p) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  if (v > 65535) return false;
  *host = (h.empty() || h == "*") ? std::string() : std::string(h);
  *port = v;
  return true;
}

// The listening socket is ours, not lws's: lws 4.1 (Debian 12, built with IPv6) binds a vhost
// with vi.iface = "127.0.0.1" to [::] -- it creates an AF_INET6 socket and writes the IPv4
// address where a sockaddr_in keeps it, which in a sockaddr_in6 is sin6_flowinfo (seen with
// strace: bind(AF_INET6, sin6_flowinfo=htonl(2130706433), "::")), so the endpoint answered
// on every interface. We bind exactly the configured address and hand each accepted socket to
// lws (lws_adopt_socket_vhost), which also lets us refuse connections before lws sees them.
// Returns the fd (non-blocking, listening) or -1 with *why set.
int open_listener(const std::string& host, int port, std::string* why) {
  sockaddr_storage ss{};
  socklen_t sl = 0;
  bool v6only = false;
  auto set4 = [&](in_addr a) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_addr = a;
    s4->sin_port = htons(static_cast<uint16_t>(port));
    sl = sizeof *s4;
  };
  auto set6 = [&](const in6_addr& a) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_addr = a;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    sl = sizeof *s6;
  };
  in_addr a4{};
  in6_addr a6{};
  if (host.empty()) {
    set6(in6addr_any);  // "*": every interface, IPv4 and IPv6
  } else if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    set4(a4);
  } else if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    set6(a6);
    v6only = true;
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0 || !res) {
      *why = "cannot resolve '" + host + "': " + gai_strerror(rc);
      return -1;
    }
    // The first address the resolver gives (e.g. "localhost" -> 127.0.0.1 or ::1).
    if (res->ai_family == AF_INET) {
      set4(reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr);
    } else {
      set6(reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr);
      v6only = true;
    }
    freeaddrinfo(res);
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = std::string("cannot listen: ") + std::strerror(errno);
    return -1;
  }
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? &one : &zero, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0 || ::listen(fd, 511) != 0) {
    int err = errno;
    close(fd);
    switch (err) {
      case EADDRINUSE: *why = "address in use"; break;
      case EADDRNOTAVAIL: *why = "address not available"; break;
      case EACCES: *why = "permission denied"; break;
      default: *why = std::string("cannot listen: ") + std::strerror(err);
    }
    return -1;
  }
  return fd;
}

int bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t sl = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

std::vector<uv_handle_t*> poll_handles(uv_loop_t* loop) {
  std::vector<uv_handle_t*> out;
  uv_walk(
      loop,
      [](uv_handle_t* h, void* arg) {
        if (h->type == UV_POLL && !uv_is_closing(h))
          static_cast<std::vector<uv_handle_t*>*>(arg)->push_back(h);
      },
      &out);
  return out;
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& ch : r) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return r;
}

}  // namespace

struct HttpServer::Endpoint {
  enum class Phase { kLive, kRetiring, kDraining, kDone };
  HttpServer* server = nullptr;
  lws_context* ctx = nullptr;  // lws sets it to NULL when it frees the context
  Phase phase = Phase::kLive;
  uint64_t drain_deadline = 0;
  int pipe_fd = -1;  // lws's eventfd (see the notes at the top)
  uint64_t id = 0;
  HttpHandlers handlers;
  std::string ws_path;
  std::string name;
  std::string any_name;  // the client subprotocol currently named by the spare slot
  lws_protocols protocols[3]{};
  lws_protocols* any_slot = nullptr;  // lws's copy of protocols[1]
  lws_vhost* vhost = nullptr;
  int port = 0;
  bool closing = false;
  bool tls = false;  // HTTPS/WSS: lws reads the (encrypted) request head itself
  // Our listening socket (see open_listener); its poll handle is closed before the endpoint
  // is released.
  int listen_fd = -1;
  uv_poll_t listen_poll{};
  bool poll_open = false;
  int spare_fd = -1;  // given up on EMFILE to accept and close a connection we cannot serve
  bool paused = false;  // out of fds and no spare: polling resumes at resume_at (tick)
  uint64_t resume_at = 0;
  uint32_t conns = 0;  // accepted and not closed: heads being read + lws connections
  std::unordered_map<std::string, uint32_t> per_ip;
  uint32_t pending_open = 0;  // Pending poll handles not yet closed
  bool use_fd_reserve = true;
};

// An accepted socket whose request head has not fully arrived. lws 4.1 closes a connection
// whose head exceeds its header space without an answer ("Ran out of header data space"), so
// the core looks at the head first (MSG_PEEK, nothing consumed): a complete head within
// max_header_bytes goes to lws, a longer one gets a JSON 431. SO_RCVLOWAT keeps the level-
// triggered poll quiet until more bytes than already seen have arrived.
struct HttpServer::Pending {
  HttpServer* server = nullptr;
  Endpoint* ep = nullptr;
  int fd = -1;
  uv_poll_t poll{};
  std::string ip, peer;
  uint64_t deadline = 0;
  bool closing = false;
};

struct HttpServer::Conn {
  ~Conn() {
    if (!counted) return;  // counted at accept (see accept_ready)
    --ep->conns;
    auto it = ep->per_ip.find(ip);
    if (it != ep->per_ip.end() && --it->second == 0) ep->per_ip.erase(it);
  }
  bool counted = false;
  uint64_t id = 0;
  lws* wsi = nullptr;
  Endpoint* ep = nullptr;
  std::string peer;
  std::string ip;  // the peer's address without the port
  // HTTP: one transaction at a time (req.id != 0 while one is in progress).
  HttpRequest req;
  bool receiving_body = false;
  uint32_t body_completions = 0;  // LWS_CALLBACK_HTTP_BODY_COMPLETION calls for this request
  bool too_large = false;
  bool head = false;
  bool resp_ready = false;
  bool headers_sent = false;
  bool close_after = false;
  int status = 0;
  std::string resp_type;
  std::string resp_body;
  std::vector<std::pair<std::string, std::string>> resp_headers;
  size_t body_off = 0;
  // WebSocket
  std::unique_ptr<WsUpgrade> upgrade;  // the upgrade request, kept for the plugin's OPEN
  bool ws_open = false;
  bool ws_closed = false;
  bool in_msg = false;
  bool rx_binary = false;
  bool close_req = false;
  bool close_sent = false;
  std::string rx;
  std::deque<std::pair<std::string, bool>> txq;  // payloads with LWS_PRE bytes of headroom
  size_t tx_bytes = 0;

  void reset_http() {
    req = HttpRequest{};
    receiving_body = too_large = head = false;
    body_completions = 0;
    resp_ready = headers_sent = close_after = false;
    status = 0;
    std::string().swap(resp_type);
    std::string().swap(resp_body);
    resp_headers.clear();
    body_off = 0;
  }
};

struct HttpServerGlue {
  static void on_head(uv_poll_t* h, int, int events) {
    auto* p = static_cast<HttpServer::Pending*>(h->data);
    if (!p->closing) p->server->head_ready(p, (events & UV_DISCONNECT) != 0);
  }
  static void on_pending_closed(uv_handle_t* h) {
    auto* p = static_cast<HttpServer::Pending*>(h->data);
    --p->ep->pending_open;
    p->server->pending_.erase(p);  // frees p
  }
  static void on_accept(uv_poll_t* h, int status, int) {
    auto* ep = static_cast<HttpServer::Endpoint*>(h->data);
    if (status == 0) ep->server->accept_ready(ep);
  }
  static int cb(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
    lws_context* ctx = wsi ? lws_get_context(wsi) : nullptr;
    auto* ep = ctx ? static_cast<HttpServer::Endpoint*>(lws_context_user(ctx)) : nullptr;
    HttpServer* self = ep ? ep->server : nullptr;
    if (!self) return lws_callback_http_dummy(wsi, reason, user, in, len);
    ++self->depth_;
    int r;
    try {
      r = self->callback(ep, wsi, reason, user, in, len);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "http: handler threw: %s\n", e.what());
      r = -1;
    } catch (...) {
      r = -1;
    }
    --self->depth_;
    return r;
  }
};

// ---------------------------------------------------------------------------------------------

HttpServer::HttpServer(uv_loop_t* loop) : HttpServer(loop, HttpServerOptions{}) {}

HttpServer::HttpServer(uv_loop_t* loop, HttpServerOptions options)
    : loop_(loop), opt_(std::move(options)) {
  init_lws_logging();
}

HttpServer::~HttpServer() {
  // A server that never listened owns no handle and may be destroyed without stop().
  assert((state_ == State::kStopped || !timer_open_) &&
         "HttpServer destroyed before stop() completed");
}

void HttpServer::open_timer() {
  if (timer_open_) return;
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  timer_open_ = true;
}

uint64_t HttpServer::listen(std::string_view addr, std::string_view ws_path,
                            HttpHandlers handlers, std::string* error, bool use_fd_reserve,
                            std::string_view tls_cert, std::string_view tls_key) {
  auto fail = [&](std::string msg) -> uint64_t {
    if (error) *error = std::move(msg);
    return 0;
  };
  try {
    if (state_ != State::kRunning) return fail("server is stopping");
    std::string host;
    int port = 0;
    if (!parse_addr(addr, &host, &port)) return fail("invalid address '" + std::string(addr) + "'");
    if (!ws_path.empty() && ws_path.front() != '/') return fail("ws_path must start with '/'");
    const bool tls = !tls_cert.empty() || !tls_key.empty();
    if (tls) {
      // Checked here so a bad path is a clear error at listen, not a silent plain endpoint.
      if (tls_cert.empty() || tls_key.empty()) return fail("TLS needs both a certificate and a key file");
      for (std::string_view f : {tls_cert, tls_key})
        if (access(std::string(f).c_str(), R_OK) != 0)
          return fail("cannot read TLS file '" + std::string(f) + "': " + std::strerror(errno));
    }
    std::string why;
    int lfd = open_listener(host, port, &why);
    if (lfd < 0) return fail(std::move(why));
    open_timer();

    auto ep = std::make_unique<Endpoint>();
    ep->server = this;
    ep->id = next_id_++;
    ep->handlers = std::move(handlers);
    ep->ws_path = std::string(ws_path);
    ep->name = "junction-" + std::to_string(ep->id);
    ep->listen_fd = lfd;  // closed with the endpoint from here on
    ep->use_fd_reserve = use_fd_reserve;
    ep->protocols[0].name = "http";
    ep->protocols[0].callback = &HttpServerGlue::cb;
    ep->protocols[1].name = kAnyProtocol;
    ep->protocols[1].callback = &HttpServerGlue::cb;

    lws_context_creation_info ci;
    std::memset(&ci, 0, sizeof ci);
    void* loops[1] = {loop_};
    ci.port = CONTEXT_PORT_NO_LISTEN;
    ci.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                 LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    if (tls) ci.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    ci.foreign_loops = loops;
    ci.user = ep.get();
    ci.pcontext = &ep->ctx;
    ci.gid = -1;
    ci.uid = -1;
    ci.max_http_header_data = static_cast<unsigned short>(std::clamp<uint32_t>(opt_.max_header_bytes, 1024, 65535));
    ci.timeout_secs = opt_.lws_timeout_s;
    std::vector<uv_handle_t*> before = poll_handles(loop_);
    ep->ctx = lws_create_context(&ci);
    if (ep->ctx) {
      std::vector<uv_handle_t*> added;
      for (uv_handle_t* h : poll_handles(loop_))
        if (std::find(before.begin(), before.end(), h) == before.end()) added.push_back(h);
      uv_os_fd_t fd = -1;
      if (added.size() == 1 && uv_fileno(added[0], &fd) == 0) ep->pipe_fd = fd;
    }
    if (!ep->ctx) {
      close(ep->listen_fd);
      ep->listen_fd = -1;
      return fail(
          "cannot create a libwebsockets context (is the libuv event lib plugin, package "
          "libwebsockets-evlib-uv, installed?)");
    }

    lws_context_creation_info vi;
    std::memset(&vi, 0, sizeof vi);
    vi.port = CONTEXT_PORT_NO_LISTEN_SERVER;  // a serving vhost without a listener of its own
    vi.protocols = ep->protocols;
    vi.vhost_name = ep->name.c_str();
    vi.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    vi.keepalive_timeout = opt_.keepalive_timeout_s;
    vi.timeout_secs = opt_.lws_timeout_s;
    std::string cert(tls_cert), key(tls_key);
    if (tls) {
      vi.ssl_cert_filepath = cert.c_str();
      vi.ssl_private_key_filepath = key.c_str();
      vi.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    }
    lws_vhost* vh = lws_create_vhost(ep->ctx, &vi);
    if (!vh) {
      retire(std::move(ep));
      return fail(tls ? "cannot create a TLS vhost (certificate and key unreadable, not PEM, or not a pair?)"
                      : "cannot create a libwebsockets vhost");
    }
    ep->tls = tls;
    ep->vhost = vh;
    ep->port = bound_port(ep->listen_fd);
    ep->any_slot = const_cast<lws_protocols*>(lws_vhost_name_to_protocol(vh, kAnyProtocol));
    if (uv_poll_init(loop_, &ep->listen_poll, ep->listen_fd) != 0) {
      retire(std::move(ep));
      return fail("cannot poll the listening socket");
    }
    ep->listen_poll.data = ep.get();
    ep->poll_open = true;
    ep->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    uv_poll_start(&ep->listen_poll, UV_READABLE, &HttpServerGlue::on_accept);
    uint64_t id = ep->id;
    endpoints_.emplace(id, std::move(ep));
    return id;
  } catch (const std::exception& e) {
    return fail(e.what());
  } catch (...) {
    return fail("internal error");
  }
}

int HttpServer::port(uint64_t endpoint) const {
  auto it = endpoints_.find(endpoint);
  return it == endpoints_.end() ? -1 : it->second->port;
}

bool HttpServer::respond(uint64_t request_id, int status, std::string_view content_type,
                         std::string_view body,
                         std::vector<std::pair<std::string, std::string>> extra_headers) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return false;
  Conn* c = it->second;
  requests_.erase(it);
  if (status < 100 || status > 599) status = 500;
  queue_response(c, status, content_type, body, std::move(extra_headers), false);
  schedule();
  return true;
}

bool HttpServer::ws_send(uint64_t conn, std::string_view data, bool binary) {
  auto it = ws_.find(conn);
  if (it == ws_.end() || state_ != State::kRunning) return false;
  Conn* c = it->second;
  if (c->close_req || c->tx_bytes + data.size() > opt_.max_ws_queue) return false;
  std::string buf;
  buf.reserve(LWS_PRE + data.size());
  buf.assign(LWS_PRE, '\0');
  buf.append(data);
  c->txq.emplace_back(std::move(buf), binary);
  c->tx_bytes += data.size();
  lws_callback_on_writable(c->wsi);
  return true;
}

bool HttpServer::ws_close(uint64_t conn) {
  auto it = ws_.find(conn);
  if (it == ws_.end()) return false;
  Conn* c = it->second;
  if (!c->close_req) {
    c->close_req = true;
    // A peer that never reads must not keep the connection open forever.
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 10);
    lws_callback_on_writable(c->wsi);
  }
  return true;
}

void HttpServer::close_endpoint(uint64_t endpoint) {
  auto it = endpoints_.find(endpoint);
  if (it == endpoints_.end()) return;
  std::unique_ptr<Endpoint> ep = std::move(it->second);
  endpoints_.erase(it);
  retire(std::move(ep));
}

void HttpServer::stop(std::function<void()> done) {
  if (state_ == State::kStopped) {
    if (done) done();
    return;
  }
  if (state_ == State::kRunning && !timer_open_) {  // never listened: nothing to close
    state_ = State::kStopped;
    if (done) done();
    return;
  }
  done_.push_back(std::move(done));
  if (state_ != State::kRunning) return;
  state_ = State::kStopping;
  requests_.clear();
  deadlines_.clear();
  std::vector<std::unique_ptr<Endpoint>> all;
  for (auto& [id, ep] : endpoints_) all.push_back(std::move(ep));
  endpoints_.clear();
  for (auto& ep : all) retire(std::move(ep));
  schedule();
}

// ---------------------------------------------------------------------------------------------
// lws callbacks

int HttpServer::callback(Endpoint* ep, lws* wsi, int reason_, void* user, void* in,
                         size_t len) {
  auto reason = static_cast<lws_callback_reasons>(reason_);
  switch (reason) {
    case LWS_CALLBACK_HTTP:
      return on_http(wsi, ep);
    case LWS_CALLBACK_HTTP_BODY:
      return on_http_body(wsi, static_cast<const char*>(in), len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
      return on_http_body_done(wsi);
    case LWS_CALLBACK_HTTP_WRITEABLE:
      return on_http_writeable(wsi);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
      // Not `in` (the protocol name): lws 4.1 can pass it pointing into a header buffer it has
      // just reallocated (pipelined requests; a heap use-after-free under ASan, found by
      // fuzz_http_request). The Upgrade header, read from the wsi now, says the same.
      if (lower(header(wsi, WSI_TOKEN_UPGRADE)) != "websocket") return -1;
      return on_confirm_upgrade(wsi, ep);
    case LWS_CALLBACK_ESTABLISHED:
      return on_ws_established(wsi, ep);
    case LWS_CALLBACK_RECEIVE:
      return on_ws_receive(wsi, static_cast<const char*>(in), len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
      return on_ws_writeable(wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
      // Our close frame went out already: this is the answer, hang up. Else lws echoes it.
      Conn* c = conn_of(wsi);
      return (c && c->close_sent) ? -1 : 0;
    }
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_CLOSED:
      on_wsi_gone(wsi, false);
      return 0;
    case LWS_CALLBACK_WSI_DESTROY:
      on_wsi_gone(wsi, true);
      return 0;
    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

HttpServer::Conn* HttpServer::conn_of(lws* wsi) const {
  return static_cast<Conn*>(lws_get_opaque_user_data(wsi));
}

HttpServer::Conn* HttpServer::new_conn(lws* wsi, Endpoint* ep) {
  auto c = std::make_unique<Conn>();
  c->id = next_id_++;
  c->wsi = wsi;
  c->ep = ep;
  c->peer = peer_of(wsi);
  Conn* raw = c.get();
  conns_.emplace(c->id, std::move(c));
  lws_set_opaque_user_data(wsi, raw);
  return raw;
}

int HttpServer::on_http(lws* wsi, Endpoint* ep) {
  if (!ep || ep->closing || state_ != State::kRunning) return -1;
  Conn* c = conn_of(wsi);
  if (!c) c = new_conn(wsi, ep);
  if (c->req.id || c->resp_ready) return -1;  // a transaction is still in progress

  char* uri = nullptr;
  int ulen = 0;
  int m = lws_http_get_uri_and_method(wsi, &uri, &ulen);
  static const char* const kMethods[] = {"GET",   "POST",   "OPTIONS", "PUT",
                                         "PATCH", "DELETE", "CONNECT", "HEAD"};
  HttpRequest& q = c->req;
  q = HttpRequest{};
  q.id = next_id_++;
  q.endpoint = ep->id;
  if (m >= 0 && m <= LWSHUMETH_HEAD)
    q.method = kMethods[m];
  else
    q.method = header(wsi, WSI_TOKEN_HTTP_COLON_METHOD);
  if (uri && ulen > 0) q.path.assign(uri, static_cast<size_t>(ulen));
  q.query = query_of(wsi);
  q.content_type = header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
  q.authorization = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
  q.headers = all_headers(wsi);
  q.peer = c->peer;
  c->head = m == LWSHUMETH_HEAD;

  std::string cl = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
  unsigned long long n = 0;
  if (!cl.empty()) {
    for (char ch : cl) {
      if (ch < '0' || ch > '9' || n > (1ull << 50)) {
        queue_response(c, 400, kJson, R"({"error":"bad content-length"})", {}, true);
        return 0;
      }
      n = n * 10 + static_cast<unsigned>(ch - '0');
    }
  } else if (!header(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING).empty()) {
    // lws 4.1 does not de-chunk request bodies.
    queue_response(c, 411, kJson, R"({"error":"length required"})", {}, true);
    return 0;
  }
  if (n > opt_.max_body) {
    c->receiving_body = true;
    c->too_large = true;
    count(HttpRefusal::kBodyTooLarge);
    queue_response(c, 413, kJson, R"({"error":"body too large"})", {}, true);
    return 0;
  }
  if (n > 0) {
    c->receiving_body = true;
    q.body.reserve(static_cast<size_t>(n));
    // lws 4.1 does not answer "Expect: 100-continue" (clients then wait ~1 s to send).
    if (lower(header(wsi, WSI_TOKEN_HTTP_EXPECT)).find("100-continue") != std::string::npos) {
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      unsigned char buf[LWS_PRE + sizeof kContinue];
      std::memcpy(buf + LWS_PRE, kContinue, sizeof kContinue - 1);
      if (lws_write(wsi, buf + LWS_PRE, sizeof kContinue - 1, LWS_WRITE_HTTP_HEADERS) <
          static_cast<int>(sizeof kContinue - 1))
        return -1;
    }
    return 0;
  }
  dispatch_request(c);
  return 0;
}

int HttpServer::on_http_body(lws* wsi, const char* data, size_t len) {
  Conn* c = conn_of(wsi);
  if (!c || !c->receiving_body || c->too_large) return 0;
  if (c->req.body.size() + len > opt_.max_body) {
    c->too_large = true;
    std::string().swap(c->req.body);
    count(HttpRefusal::kBodyTooLarge);
    queue_response(c, 413, kJson, R"({"error":"body too large"})", {}, true);
    return 0;
  }
  c->req.body.append(data, len);
  return 0;
}

constexpr uint32_t kMaxBodyCompletions = 16;

int HttpServer::on_http_body_done(lws* wsi) {
  Conn* c = conn_of(wsi);
  if (!c) return 0;
  if (++c->body_completions > kMaxBodyCompletions) {
    // lws 4.1 repeats the completion forever, inside one service call, for a body that came
    // pipelined behind an earlier request on the connection (found by fuzz_http_request: the
    // control loop spun at 100 % and served nothing else). A request followed by a pipelined
    // one gets it twice, harmlessly. Hang up: the earlier answers went out; this request is
    // lost, which a client that pipelines must expect of a server.
    if (pipelined_body_closes_++ % 1000 == 0)
      std::fprintf(stderr, "http: closing a connection from %s that pipelined a request body (%llu so far)\n", c->peer.c_str(),
                   static_cast<unsigned long long>(pipelined_body_closes_));
    return -1;
  }
  if (!c->receiving_body) return 0;
  c->receiving_body = false;
  if (c->too_large) return 0;  // the 413 is already on its way
  dispatch_request(c);
  return 0;
}

void HttpServer::dispatch_request(Conn* c) {
  uint64_t id = c->req.id;
  requests_[id] = c;
  deadlines_.emplace_back(uv_now(loop_) + opt_.request_timeout_ms, id);
  lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);  // our own timeout (504) applies now
  schedule();
  Endpoint* ep = c->ep;
  try {
    if (ep->handlers.on_request)
      ep->handlers.on_request(c->req);
    else
      respond(id, 404, kJson, R"({"error":"not found"})");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http: request handler threw: %s\n", e.what());
    respond(id, 500, kJson, R"({"error":"internal error"})");
  } catch (...) {
    respond(id, 500, kJson, R"({"error":"internal error"})");
  }
}

void HttpServer::queue_response(Conn* c, int status, std::string_view content_type,
                                std::string_view body,
                                std::vector<std::pair<std::string, std::string>> headers,
                                bool close_after) {
  if (c->req.id) requests_.erase(c->req.id);
  c->resp_ready = true;
  c->headers_sent = false;
  c->status = status;
  c->resp_type = std::string(content_type);
  c->resp_body = std::string(body);
  c->resp_headers = std::move(headers);
  c->body_off = 0;
  c->close_after = close_after;
  lws_callback_on_writable(c->wsi);
}

int HttpServer::on_http_writeable(lws* wsi) {
  Conn* c = conn_of(wsi);
  if (!c || !c->resp_ready) return 0;
  const bool has_body = !c->head && !c->resp_body.empty();
  if (!c->headers_sent) {
    size_t need = 512 + c->resp_type.size();
    for (auto& [k, v] : c->resp_headers) need += k.size() + v.size() + 8;
    std::vector<unsigned char> buf(LWS_PRE + need);
    unsigned char* start = buf.data() + LWS_PRE;
    unsigned char* p = start;
    unsigned char* end = buf.data() + buf.size();
    if (lws_add_http_common_headers(
            wsi, static_cast<unsigned>(c->status) | LWSAHH_FLAG_NO_SERVER_NAME,
            c->resp_type.empty() ? nullptr : c->resp_type.c_str(),
            static_cast<lws_filepos_t>(c->resp_body.size()), &p,
            end))
      return -1;
    for (auto& [k, v] : c->resp_headers) {
      std::string name = lower(k) + ":";
      if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>(name.c_str()),
                                      reinterpret_cast<const unsigned char*>(v.data()),
                                      static_cast<int>(v.size()), &p, end))
        return -1;
    }
    if (c->close_after &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                     reinterpret_cast<const unsigned char*>("close"), 5, &p, end))
      return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end)) return -1;
    c->headers_sent = true;
    if (has_body) {
      lws_callback_on_writable(wsi);
      return 0;
    }
  } else if (has_body && c->body_off < c->resp_body.size()) {
    size_t n = std::min(kBodyChunk, c->resp_body.size() - c->body_off);
    bool fin = c->body_off + n == c->resp_body.size();
    std::vector<unsigned char> buf(LWS_PRE + n);
    std::memcpy(buf.data() + LWS_PRE, c->resp_body.data() + c->body_off, n);
    if (lws_write(wsi, buf.data() + LWS_PRE, n, fin ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) <
        static_cast<int>(n))
      return -1;
    c->body_off += n;
    if (!fin) {
      lws_callback_on_writable(wsi);
      return 0;
    }
  }
  bool close = c->close_after;
  c->reset_http();
  if (close) return -1;
  if (lws_http_transaction_completed(wsi)) return -1;
  return 0;
}

int HttpServer::on_confirm_upgrade(lws* wsi, Endpoint* ep) {
  if (!ep || ep->closing || state_ != State::kRunning) return -1;
  char* uri = nullptr;
  int ulen = 0;
  if (ep->ws_path.empty() || lws_http_get_uri_and_method(wsi, &uri, &ulen) < 0 || !uri ||
      std::string_view(uri, static_cast<size_t>(std::max(ulen, 0))) != ep->ws_path) {
    // Not a WebSocket path: answer 404 (lws then ends the transaction).
    if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, nullptr)) return -1;
    return 1;
  }
  Conn* c = conn_of(wsi);
  if (!c) c = new_conn(wsi, ep);
  auto up = std::make_unique<WsUpgrade>();
  up->conn = c->id;
  up->endpoint = ep->id;
  up->path.assign(uri, static_cast<size_t>(std::max(ulen, 0)));
  up->query = query_of(wsi);
  up->peer = c->peer;
  up->headers = all_headers(wsi);
  std::string offered = header(wsi, WSI_TOKEN_PROTOCOL);
  for (size_t b = offered.find_first_not_of(", \t"); b != std::string::npos; b = offered.find_first_not_of(", \t", b)) {
    size_t e = offered.find_first_of(", \t", b);
    std::string p = offered.substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (!p.empty() && p != "http" && up->offered.size() < 16) up->offered.push_back(std::move(p));
    b = e;
  }
  WsDecision d;
  if (ep->handlers.on_ws_upgrade) d = ep->handlers.on_ws_upgrade(*up);
  if (d.status != 101) {
    // Refused: an HTTP status with a JSON body, and no WebSocket.
    int st = d.status >= 400 && d.status <= 599 ? d.status : 403;
    std::string body = fmt::format(R"({{"error":"websocket upgrade refused","status":{}}})", st);
    if (lws_return_http_status(wsi, static_cast<unsigned>(st), body.c_str())) return -1;
    return 1;
  }
  if (!d.subprotocol.empty() &&
      std::find(up->offered.begin(), up->offered.end(), d.subprotocol) == up->offered.end()) {
    JN_LOG_WRN("websocket upgrade on {}: the plugin chose subprotocol '{}', which the client did not offer: refused", ep->name,
               d.subprotocol);
    if (lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, R"({"error":"no acceptable subprotocol"})")) return -1;
    return 1;
  }
  // lws only accepts a subprotocol one of the vhost's protocols names: the spare slot takes it.
  up->subprotocol = !d.subprotocol.empty() ? d.subprotocol : (up->offered.empty() ? std::string() : up->offered.front());
  if (!up->subprotocol.empty() && ep->any_slot) {
    ep->any_name = up->subprotocol;
    ep->any_slot->name = ep->any_name.c_str();
  }
  c->upgrade = std::move(up);
  return 0;
}

const WsUpgrade* HttpServer::upgrade_of(uint64_t conn) const {
  auto it = ws_.find(conn);
  return it == ws_.end() ? nullptr : it->second->upgrade.get();
}

int HttpServer::on_ws_established(lws* wsi, Endpoint* ep) {
  if (!ep || ep->closing || state_ != State::kRunning) return -1;
  Conn* c = conn_of(wsi);
  if (!c) c = new_conn(wsi, ep);
  if (c->req.id) requests_.erase(c->req.id);
  c->reset_http();
  c->ws_open = true;
  ws_[c->id] = c;
  if (ep->handlers.on_ws) ep->handlers.on_ws(c->id, ep->id, JN_WS_OPEN, {}, c->peer);
  return 0;
}

int HttpServer::on_ws_receive(lws* wsi, const char* data, size_t len) {
  Conn* c = conn_of(wsi);
  if (!c || !c->ws_open || c->ws_closed || c->close_sent) return 0;
  if (!c->in_msg) {
    c->in_msg = true;
    c->rx_binary = lws_frame_is_binary(wsi) != 0;
    c->rx.clear();
  }
  if (c->rx.size() + len > opt_.max_ws_message) {
    static const char kWhy[] = "message too large";
    lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                     reinterpret_cast<unsigned char*>(const_cast<char*>(kWhy)), sizeof kWhy - 1);
    return -1;
  }
  if (len) c->rx.append(data, len);
  if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
    c->in_msg = false;
    std::string msg;
    msg.swap(c->rx);
    Endpoint* ep = c->ep;
    if (ep->handlers.on_ws)
      ep->handlers.on_ws(c->id, ep->id, c->rx_binary ? JN_WS_BINARY : JN_WS_TEXT, msg, c->peer);
  }
  return 0;
}

int HttpServer::on_ws_writeable(lws* wsi) {
  Conn* c = conn_of(wsi);
  if (!c || !c->ws_open || c->ws_closed) return 0;
  if (!c->txq.empty()) {
    auto& [buf, binary] = c->txq.front();
    size_t n = buf.size() - LWS_PRE;
    int w = lws_write(wsi, reinterpret_cast<unsigned char*>(buf.data()) + LWS_PRE, n,
                      binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    if (w < static_cast<int>(n)) return -1;
    c->tx_bytes -= n;
    c->txq.pop_front();
    if (!c->txq.empty() || c->close_req) lws_callback_on_writable(wsi);
    return 0;
  }
  if (c->close_req && !c->close_sent) {
    // lws 4.1 drops the connection without a close frame when a WRITEABLE callback returns
    // -1, even after lws_close_reason(); so send the close frame here and finish the closing
    // handshake when the peer answers (LWS_CALLBACK_WS_PEER_INITIATED_CLOSE).
    unsigned char frame[LWS_PRE + 2];
    frame[LWS_PRE] = static_cast<unsigned char>(LWS_CLOSE_STATUS_NORMAL >> 8);
    frame[LWS_PRE + 1] = static_cast<unsigned char>(LWS_CLOSE_STATUS_NORMAL & 0xff);
    if (lws_write(wsi, frame + LWS_PRE, 2, kWriteClose) < 2) return -1;
    c->close_sent = true;
    lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, 5);  // the peer's answer
  }
  return 0;
}

void HttpServer::on_wsi_gone(lws* wsi, bool destroy) {
  Conn* c = conn_of(wsi);
  if (!c) return;
  if (c->req.id) requests_.erase(c->req.id);  // the client left before the answer
  c->reset_http();
  deliver_ws_closed(c);
  if (destroy) {
    lws_set_opaque_user_data(wsi, nullptr);
    conns_.erase(c->id);
  }
}

void HttpServer::deliver_ws_closed(Conn* c) {
  if (!c->ws_open || c->ws_closed) return;
  c->ws_closed = true;
  ws_.erase(c->id);
  c->txq.clear();
  c->tx_bytes = 0;
  std::string().swap(c->rx);
  Endpoint* ep = c->ep;
  if (ep && ep->handlers.on_ws) ep->handlers.on_ws(c->id, ep->id, JN_WS_CLOSED, {}, c->peer);
}

// ---------------------------------------------------------------------------------------------
// endpoint teardown, request deadlines (one uv timer does both)

void HttpServer::retire(std::unique_ptr<Endpoint> ep) {
  ep->closing = true;
  ep->phase = Endpoint::Phase::kRetiring;
  Endpoint* raw = ep.get();
  dying_.push_back(std::move(ep));
  if (depth_ == 0) begin_destroy(raw);  // never from inside an lws callback
  schedule();
}

void HttpServer::begin_destroy(Endpoint* ep) {
  ep->phase = Endpoint::Phase::kDraining;
  ep->drain_deadline = uv_now(loop_) + kDrainGiveUpMs;
  // Tell the handlers first, so that none of their code runs inside lws_context_destroy().
  std::vector<Conn*> mine;
  for (auto& [id, c] : conns_)
    if (c->ep == ep) mine.push_back(c.get());
  for (Conn* c : mine) {
    if (c->req.id) requests_.erase(c->req.id);
    deliver_ws_closed(c);  // may run handler code, which may even retire more endpoints
  }
  close_listener(ep);
  for (auto& [raw, p] : pending_)
    if (p->ep == ep) drop_pending(p.get(), nullptr);
  if (!ep->ctx) return;
  int parking = open("/dev/null", O_RDONLY | O_CLOEXEC);
  // First phase: closes the listener and every connection; the uv handles finish closing over
  // the next loop iterations.
  lws_context_destroy(ep->ctx);
  if (parking >= 0) {
    if (ep->pipe_fd >= 0 && fcntl(ep->pipe_fd, F_GETFD) == -1 && errno == EBADF)
      dup2(parking, ep->pipe_fd);  // lws closes this number once more, later
    close(parking);
  }
  ep->pipe_fd = -1;
}

void HttpServer::close_listener(Endpoint* ep) {
  if (ep->spare_fd >= 0) {
    close(ep->spare_fd);
    ep->spare_fd = -1;
  }
  if (ep->poll_open) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&ep->listen_poll))) {
      uv_poll_stop(&ep->listen_poll);
      uv_close(reinterpret_cast<uv_handle_t*>(&ep->listen_poll), [](uv_handle_t* h) {
        auto* ep = static_cast<Endpoint*>(h->data);
        ep->poll_open = false;
        close(ep->listen_fd);
        ep->listen_fd = -1;
      });
    }
  } else if (ep->listen_fd >= 0) {
    close(ep->listen_fd);
    ep->listen_fd = -1;
  }
}

const char* http_refusal_name(HttpRefusal r) {
  switch (r) {
    case HttpRefusal::kEndpointLimit: return "endpoint_limit";
    case HttpRefusal::kIpLimit: return "ip_limit";
    case HttpRefusal::kFdLimit: return "fd_limit";
    case HttpRefusal::kFdExhausted: return "fd_exhausted";
    case HttpRefusal::kHeaderTooLarge: return "header_too_large";
    case HttpRefusal::kHeaderTimeout: return "header_timeout";
    case HttpRefusal::kBodyTooLarge: return "body_too_large";
    default: return "?";
  }
}

// Answers a connection we will not serve with a short JSON error and closes it. The socket is
// fresh (its send buffer is empty), so the write does not block; whatever the client already
// sent is read first so that the close is a FIN, not a reset that could eat the answer.
void HttpServer::refuse_conn(Endpoint* ep, int fd, HttpRefusal why, const std::string& ip) {
  count(why);
  const bool per_ip = why == HttpRefusal::kIpLimit;
  const char* body = per_ip ? R"({"error":"too many connections from your address"})" : R"({"error":"server busy"})";
  std::string resp = std::string(per_ip ? "HTTP/1.1 429 Too Many Requests\r\n" : "HTTP/1.1 503 Service Unavailable\r\n") +
                     "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                     std::to_string(std::strlen(body)) + "\r\n\r\n" + body;
  char sink[4096];
  for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
  }
  (void)!send(fd, resp.data(), resp.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  shutdown(fd, SHUT_WR);
  close(fd);
  uint64_t n = refused(why);
  if (n <= 10 || n % 1000 == 0)
    std::fprintf(stderr, "http: port %d: refused a connection from %s (%s; %llu so far)\n", ep->port, ip.c_str(),
                 http_refusal_name(why), static_cast<unsigned long long>(n));
}

// EMFILE: accept() cannot even take the pending connection, and the listener stays readable
// (a busy loop). Give up the spare fd, accept the connection and close it, take the spare back.
// Returns true when the caller may accept again.
bool HttpServer::shed_one(Endpoint* ep) {
  if (ep->spare_fd >= 0) {
    close(ep->spare_fd);
    ep->spare_fd = -1;
    int fd = accept4(ep->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    int err = errno;
    if (fd >= 0) close(fd);
    ep->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      count(HttpRefusal::kFdExhausted);
      return ep->spare_fd >= 0;
    }
    // accept() takes an fd before it looks at the queue: an empty queue is the normal way out.
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED) return false;
  }
  // No spare: stop polling this listener; tick() tries again (the timer runs while paused).
  if (!ep->paused) {
    std::fprintf(stderr, "http: port %d: out of file descriptors, accepting again in 1 s\n", ep->port);
    ep->paused = true;
    ep->resume_at = uv_now(loop_) + 1000;
    uv_poll_stop(&ep->listen_poll);
    schedule();
  }
  return false;
}

void HttpServer::accept_ready(Endpoint* ep) {
  // A bounded batch per wakeup: a connection flood on one endpoint must not starve the loop.
  for (int i = 0; i < 64; ++i) {
    if (ep->closing || state_ != State::kRunning) return;
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    int fd = accept4(ep->listen_fd, reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        if (!shed_one(ep)) return;
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        std::fprintf(stderr, "http: accept on port %d: %s\n", ep->port, std::strerror(errno));
      return;
    }
    std::string ip;
    std::string peer = peer_string(ss, &ip);
    // accept() returns the lowest free fd: fd N means N are in use. Keep fd_reserve for the rest.
    rlimit rl{};
    if (opt_.fd_reserve && ep->use_fd_reserve && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        static_cast<rlim_t>(fd) + opt_.fd_reserve >= rl.rlim_cur) {
      refuse_conn(ep, fd, HttpRefusal::kFdLimit, ip);
      continue;
    }
    if (opt_.max_conns_per_endpoint && ep->conns >= opt_.max_conns_per_endpoint) {
      refuse_conn(ep, fd, HttpRefusal::kEndpointLimit, ip);
      continue;
    }
    auto pi = ep->per_ip.find(ip);
    if (opt_.max_conns_per_ip && pi != ep->per_ip.end() && pi->second >= opt_.max_conns_per_ip) {
      refuse_conn(ep, fd, HttpRefusal::kIpLimit, ip);
      continue;
    }
    ++ep->conns;  // counted from here; the count moves to the Conn at adoption
    ++ep->per_ip[ip];
    auto p = std::make_unique<Pending>();
    p->server = this;
    p->ep = ep;
    p->fd = fd;
    p->ip = std::move(ip);
    p->peer = std::move(peer);
    p->deadline = uv_now(loop_) + uint64_t{opt_.lws_timeout_s} * 1000;
    if (uv_poll_init(loop_, &p->poll, fd) != 0) {
      uncount(ep, p->ip);
      close(fd);
      continue;
    }
    p->poll.data = p.get();
    ++ep->pending_open;
    Pending* raw = p.get();
    pending_.emplace(raw, std::move(p));
    if (ep->tls) {
      // The head is encrypted: no peek. lws reads it after the handshake, bounded by its own
      // max_http_header_data and timeouts.
      adopt_pending(raw);
      continue;
    }
    // UV_DISCONNECT: a client that half-closes with its head incomplete leaves the socket
    // readable for good (SO_RCVLOWAT does not hold at end of stream): head_ready must see it.
    uv_poll_start(&raw->poll, UV_READABLE | UV_DISCONNECT, &HttpServerGlue::on_head);
    schedule();
  }
}

void HttpServer::uncount(Endpoint* ep, const std::string& ip) {
  --ep->conns;
  auto it = ep->per_ip.find(ip);
  if (it != ep->per_ip.end() && --it->second == 0) ep->per_ip.erase(it);
}

void HttpServer::head_ready(Pending* p, bool peer_done) {
  const size_t max = std::max<size_t>(opt_.max_header_bytes, 64);
  if (head_buf_.size() != max + 1) head_buf_.assign(max + 1, '\0');
  ssize_t n = recv(p->fd, head_buf_.data(), head_buf_.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {  // the client left (or an error) before sending a request
    drop_pending(p, nullptr);
    return;
  }
  std::string_view seen(head_buf_.data(), static_cast<size_t>(n));
  size_t end = seen.find("\r\n\r\n");
  size_t end_lf = seen.find("\n\n");
  end = std::min(end == std::string_view::npos ? end : end + 4, end_lf == std::string_view::npos ? end_lf : end_lf + 2);
  if (end != std::string_view::npos && end <= max) {
    adopt_pending(p);
    return;
  }
  if (seen.size() > max) {
    HttpRefusal why = HttpRefusal::kHeaderTooLarge;
    drop_pending(p, &why);
    return;
  }
  if (peer_done) {
    // Half-closed with the head incomplete: nothing more can come. Without this the poll fires
    // again at once, forever (a busy loop until the header timeout, 20 s per such connection).
    drop_pending(p, nullptr);
    return;
  }
  int lowat = static_cast<int>(seen.size()) + 1;  // wake up when more than this has arrived
  setsockopt(p->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
}

void HttpServer::adopt_pending(Pending* p) {
  Endpoint* ep = p->ep;
  int fd = p->fd;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
  p->closing = true;
  p->fd = -1;
  // uv_close stops the poll at once (the fd leaves epoll) before lws registers it again.
  uv_close(reinterpret_cast<uv_handle_t*>(&p->poll), &HttpServerGlue::on_pending_closed);
  lws* wsi = lws_adopt_socket_vhost(ep->vhost, fd);  // closes fd when it fails
  if (!wsi) {
    uncount(ep, p->ip);
    return;
  }
  Conn* c = conn_of(wsi);
  if (!c) c = new_conn(wsi, ep);
  c->peer = p->peer;
  c->ip = p->ip;
  c->counted = true;  // given back in ~Conn
}

// Closes a pending socket; with why, answers it first (431 for a head too large, 408 timeout).
void HttpServer::drop_pending(Pending* p, HttpRefusal* why) {
  if (p->closing) return;
  p->closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&p->poll), &HttpServerGlue::on_pending_closed);
  if (why) {
    count(*why);
    const bool large = *why == HttpRefusal::kHeaderTooLarge;
    const char* body = large ? R"({"error":"request header too large"})" : R"({"error":"request header timeout"})";
    std::string resp = std::string(large ? "HTTP/1.1 431 Request Header Fields Too Large\r\n" : "HTTP/1.1 408 Request Timeout\r\n") +
                       "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                       std::to_string(std::strlen(body)) + "\r\n\r\n" + body;
    // Read what the client sent so that the close is a FIN, not a reset that eats the answer.
    char sink[16384];
    for (int i = 0; i < 64 && recv(p->fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
    }
    (void)!send(p->fd, resp.data(), resp.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(p->fd, SHUT_WR);
  }
  close(p->fd);
  p->fd = -1;
  uncount(p->ep, p->ip);
}

bool HttpServer::lws_handles_left(const lws_context* ctx) const {
  if (!ctx) return false;
  struct Walk {
    const void* ctx;
    bool found;
  } w{ctx, false};
  uv_walk(
      loop_,
      [](uv_handle_t* h, void* arg) {
        auto* w = static_cast<Walk*>(arg);
        if (h->data == w->ctx) w->found = true;
      },
      &w);
  return w.found;
}

void HttpServer::purge_conns(const Endpoint* ep) {
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (it->second->ep == ep) {
      requests_.erase(it->second->req.id);
      ws_.erase(it->second->id);
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
}

void HttpServer::schedule() {
  if (state_ == State::kClosing || state_ == State::kStopped || !timer_open_) return;
  bool retiring = false, draining = false;
  for (auto& ep : dying_) {
    retiring |= ep->phase == Endpoint::Phase::kRetiring;
    draining |= ep->phase == Endpoint::Phase::kDraining;
  }
  if (retiring || (state_ == State::kStopping && dying_.empty())) {
    uv_timer_start(&timer_, &HttpServer::on_timer, 0, 0);
    return;
  }
  if (draining) {
    uv_timer_start(&timer_, &HttpServer::on_timer, 1, 0);
    return;
  }
  while (!deadlines_.empty() && !requests_.count(deadlines_.front().second))
    deadlines_.pop_front();
  uint64_t due = deadlines_.empty() ? UINT64_MAX : deadlines_.front().first;
  for (auto& [id, ep] : endpoints_)
    if (ep->paused) due = std::min(due, ep->resume_at);
  for (auto& [raw, p] : pending_)
    if (!p->closing) due = std::min(due, p->deadline);
  if (due == UINT64_MAX) {
    uv_timer_stop(&timer_);
    return;
  }
  uint64_t now = uv_now(loop_);
  uv_timer_start(&timer_, &HttpServer::on_timer, due > now ? due - now : 0, 0);
}

void HttpServer::on_timer(uv_timer_t* t) { static_cast<HttpServer*>(t->data)->tick(); }

void HttpServer::tick() {
  if (state_ == State::kClosing || state_ == State::kStopped) return;
  uint64_t now = uv_now(loop_);
  // Indexes, not iterators: callbacks run from here may retire more endpoints.
  for (size_t i = 0; i < dying_.size(); ++i) {
    Endpoint* ep = dying_[i].get();
    if (ep->phase == Endpoint::Phase::kRetiring) {
      begin_destroy(ep);
    } else if (ep->phase == Endpoint::Phase::kDraining) {
      if (ep->poll_open || ep->pending_open) continue;  // our handles' close callbacks come next iteration
      bool left = lws_handles_left(ep->ctx);
      if (left && now < ep->drain_deadline) continue;
      if (ep->ctx) {
        if (left)
          std::fprintf(stderr, "lws: context did not finish closing its handles; leaking it\n");
        else
          lws_context_destroy(ep->ctx);  // second phase: frees the context
        ep->ctx = nullptr;
      }
      purge_conns(ep);
      ep->phase = Endpoint::Phase::kDone;
    }
  }
  dying_.erase(std::remove_if(dying_.begin(), dying_.end(),
                              [](const std::unique_ptr<Endpoint>& e) {
                                return e->phase == Endpoint::Phase::kDone;
                              }),
               dying_.end());
  if (state_ == State::kStopping) {
    if (dying_.empty()) {
      finish_stop();
      return;
    }
  } else {
    std::vector<Pending*> expired;
    for (auto& [raw, p] : pending_)
      if (!p->closing && p->deadline <= now) expired.push_back(raw);
    for (Pending* p : expired) {
      HttpRefusal why = HttpRefusal::kHeaderTimeout;
      drop_pending(p, &why);
    }
    for (auto& [id, ep] : endpoints_) {
      if (!ep->paused || ep->resume_at > now) continue;
      ep->paused = false;
      if (ep->spare_fd < 0) ep->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      uv_poll_start(&ep->listen_poll, UV_READABLE, &HttpServerGlue::on_accept);
    }
    while (!deadlines_.empty() && deadlines_.front().first <= now) {
      uint64_t id = deadlines_.front().second;
      deadlines_.pop_front();
      if (requests_.count(id)) respond(id, 504, kJson, R"({"error":"timeout"})");
    }
  }
  schedule();
}

void HttpServer::finish_stop() {
  requests_.clear();
  ws_.clear();
  deadlines_.clear();
  conns_.clear();
  endpoints_.clear();
  state_ = State::kClosing;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &HttpServer::on_timer_closed);
}

void HttpServer::on_timer_closed(uv_handle_t* h) {
  auto* self = static_cast<HttpServer*>(h->data);
  self->state_ = State::kStopped;
  std::vector<std::function<void()>> done;
  done.swap(self->done_);
  for (auto& d : done)  // `self` may be destroyed by any of these
    if (d) d();
}

}  // namespace junction
