#include "net/http_client.hpp"
#include "net/tls_session.hpp"

#include "bus/addr.hpp"
#include "util/log.hpp"

#include <arpa/inet.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cstring>
#include <junction/util/text.hpp>

using junction::util::ascii_iequals;

namespace junction {

namespace {

struct HttpUrl {
  bool tls = false;
  std::string host;  // without brackets
  bool host_is_ip = false;
  uint16_t port = 0;
  std::string target;     // path?query, at least "/"
  std::string authority;  // the Host header: host (bracketed for IPv6) [":" port]
  std::string text;       // the whole URL, normalised
  std::string for_log;    // without the query (it may carry tokens)
};

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

bool valid_value(std::string_view v) {
  for (unsigned char c : v)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && ascii_iequals(s.substr(0, prefix.size()), prefix);
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 200) out += "...";
  return out;
}

// A URL for a log line: no credentials, no query (either may carry secrets).
std::string url_for_log(std::string_view url) {
  url = url.substr(0, url.find_first_of("?#"));
  size_t sep = url.find("://");
  size_t start = sep == std::string_view::npos ? 0 : sep + 3;
  size_t at = url.find('@', start);
  size_t slash = url.find('/', start);
  if (at != std::string_view::npos && at < slash)
    return printable(url.substr(0, start)) + "***" + printable(url.substr(at));
  return printable(url);
}

}  // namespace

// Parses an absolute http(s) URL. We send the path as given, so it must already be encoded.
static bool parse_url(std::string_view text, HttpUrl& out, std::string& err);

struct HttpClient::Req {
  uint64_t id = 0;
  HttpClientRequest req;
  Callback cb;
  // Streaming: shared so a callback that cancels its own request (destroying the Req) is not
  // destroyed while it runs.
  std::shared_ptr<ChunkCallback> chunk;
  bool head_sent = false;  // streaming: the first chunk (status, headers) went out
  HttpUrl url;
  int redirects = 0;
  uint64_t deadline = 0;
  SSL_CTX* ctx = nullptr;  // a reference, for https
  uint64_t dns_id = 0;
  bool tried_aaaa = false;
  std::vector<jn_addr> addrs;
  size_t next_addr = 0;
  std::string last_error;
  Conn* conn = nullptr;
  ~Req() {
    if (ctx) SSL_CTX_free(ctx);
  }
};

struct HttpClient::Conn {
  HttpClient* client = nullptr;
  Req* req = nullptr;  // null once detached (closing)
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  std::string peer;
  std::unique_ptr<TlsSession> tls;  // https only
  std::unique_ptr<HttpResponseParser> parser;
  char buf[16384];
};

struct HttpClient::Write {
  uv_write_t w{};
  std::string data;
  Conn* conn = nullptr;
};

static bool parse_url(std::string_view text, HttpUrl& out, std::string& err) {
  for (unsigned char c : text) {
    if (c <= 0x20 || c >= 0x7f) {
      err = "URL with spaces or control characters (encode them)";
      return false;
    }
  }
  HttpUrl u;
  size_t sep = text.find("://");
  if (sep == std::string_view::npos) {
    err = "not an absolute http:// or https:// URL";
    return false;
  }
  std::string_view scheme = text.substr(0, sep);
  if (ascii_iequals(scheme, "https")) {
    u.tls = true;
  } else if (!ascii_iequals(scheme, "http")) {
    err = "unsupported URL scheme '" + printable(scheme) + "'";
    return false;
  }
  std::string_view rest = text.substr(sep + 3);
  size_t auth_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view path = auth_end == std::string_view::npos ? std::string_view() : rest.substr(auth_end);
  path = path.substr(0, path.find('#'));
  if (authority.find('@') != std::string_view::npos) {
    err = "credentials in URLs are not supported (send an Authorization header)";
    return false;
  }
  std::string_view host, port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      err = "bad IPv6 host in URL";
      return false;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        err = "bad URL authority";
        return false;
      }
      port = after.substr(1);
    }
    char buf[INET6_ADDRSTRLEN] = {};
    unsigned char ip[16];
    if (host.size() >= sizeof buf || (std::memcpy(buf, host.data(), host.size()), inet_pton(AF_INET6, buf, ip) != 1)) {
      err = "bad IPv6 host in URL";
      return false;
    }
    u.host_is_ip = true;
  } else {
    size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (host.empty()) {
      err = "URL without a host";
      return false;
    }
    for (char c : host) {
      bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
      if (!ok) {
        err = "bad host in URL";
        return false;
      }
    }
    char buf[INET_ADDRSTRLEN] = {};
    unsigned char ip[4];
    u.host_is_ip = host.size() < sizeof buf &&
                   (std::memcpy(buf, host.data(), host.size()), inet_pton(AF_INET, buf, ip) == 1);
  }
  u.port = u.tls ? 443 : 80;
  bool explicit_port = false;
  if (!port.empty()) {
    unsigned v = 0;
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        (v = static_cast<unsigned>(std::stoul(std::string(port)))) == 0 || v > 65535) {
      err = "bad port in URL";
      return false;
    }
    u.port = static_cast<uint16_t>(v);
    explicit_port = true;
  }
  u.host = std::string(host);
  std::string hostpart = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  u.authority = hostpart;
  if (explicit_port && u.port != (u.tls ? 443 : 80)) u.authority += ":" + std::to_string(u.port);
  if (path.empty() || path.front() == '?') {
    u.target = "/" + std::string(path);
  } else {
    u.target = std::string(path);
  }
  std::string origin = std::string(u.tls ? "https://" : "http://") + u.authority;
  u.text = origin + u.target;
  u.for_log = origin + u.target.substr(0, u.target.find('?'));
  out = std::move(u);
  return true;
}

// A Location header against the URL it came from (absolute, scheme-relative, absolute path or
// relative path).
static bool resolve_location(const HttpUrl& base, std::string_view loc, HttpUrl& out,
                             std::string& err) {
  loc = loc.substr(0, loc.find('#'));
  if (loc.empty()) {
    err = "empty Location";
    return false;
  }
  std::string origin = std::string(base.tls ? "https://" : "http://") + base.authority;
  if (starts_with_ci(loc, "http://") || starts_with_ci(loc, "https://")) return parse_url(loc, out, err);
  if (loc.substr(0, 2) == "//") return parse_url(std::string(base.tls ? "https:" : "http:") + std::string(loc), out, err);
  if (loc.front() == '/') return parse_url(origin + std::string(loc), out, err);
  if (loc.find("://") != std::string_view::npos) {
    err = "unsupported scheme in Location";
    return false;
  }
  std::string path = base.target.substr(0, base.target.find('?'));
  if (loc.front() == '?') return parse_url(origin + path + std::string(loc), out, err);
  return parse_url(origin + path.substr(0, path.rfind('/') + 1) + std::string(loc), out, err);
}

// The client context (TLS 1.2+, peer verification) is the one every core TLS client uses.
static SSL_CTX* make_ctx(const std::string& ca_file, std::string& err) { return TlsSession::client_context(ca_file, &err); }

HttpClient::HttpClient(uv_loop_t* loop, DnsResolver& dns, HttpClientOptions options)
    : loop_(loop), dns_(dns), options_(std::move(options)) {
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  ++open_handles_;
  // The system store is set up now (construction is control-plane time), not on the first
  // request's loop turn. Failing here only affects https requests without a ca_file.
  std::string err;
  default_ctx_ = make_ctx("", err);
  if (!default_ctx_) JN_LOG_ERR("http client: {}", err);
}

HttpClient::~HttpClient() {
  assert(state_ == State::kStopped && "HttpClient destroyed without stop()");
  assert(requests_.empty() && open_handles_ == 0);
  if (default_ctx_) SSL_CTX_free(default_ctx_);
}

uint64_t HttpClient::request(HttpClientRequest request, Callback cb, std::string* error, ChunkCallback chunk) {
  std::string err;
  std::string what = printable(request.method) + " " + url_for_log(request.url);
  auto refuse = [&](std::string why) -> uint64_t {
    JN_LOG_WRN("http client: {} refused: {}", what, why);
    if (error) *error = std::move(why);
    return 0;
  };
  if (state_ != State::kRunning) return refuse("client stopped");
  if (requests_.size() >= options_.max_concurrent)
    return refuse(fmt::format("too many requests in flight ({})", options_.max_concurrent));
  auto r = std::make_unique<Req>();
  if (!parse_url(request.url, r->url, err)) return refuse(err);
  if (!is_token(request.method)) return refuse("bad method");
  for (auto& [name, value] : request.headers) {
    if (!is_token(name)) return refuse("bad header name '" + printable(name) + "'");
    if (!valid_value(value)) return refuse("header " + name + " has CR, LF or control characters");
    for (const char* own : {"Host", "Content-Length", "Transfer-Encoding", "Connection"})
      if (ascii_iequals(name, own)) return refuse(std::string("header ") + own + " is set by the client");
  }
  if (r->url.tls || !request.ca_file.empty()) {
    if (request.ca_file.empty()) {
      if (!default_ctx_ && !(default_ctx_ = make_ctx("", err))) return refuse(err);  // retried
      SSL_CTX_up_ref(default_ctx_);
      r->ctx = default_ctx_;
    } else if (!(r->ctx = make_ctx(request.ca_file, err))) {
      return refuse(err);
    }
  }
  r->id = next_id_++;
  r->req = std::move(request);
  r->cb = std::move(cb);
  if (chunk) r->chunk = std::make_shared<ChunkCallback>(std::move(chunk));
  r->deadline = uv_now(loop_) + r->req.timeout_ms;
  if (!start_hop(*r, &err)) return refuse(err);
  uint64_t id = r->id;
  deadlines_.emplace(r->deadline, id);
  requests_.emplace(id, std::move(r));
  rearm();
  return id;
}

bool HttpClient::start_hop(Req& r, std::string* error) {
  r.addrs.clear();
  r.next_addr = 0;
  r.tried_aaaa = false;
  r.last_error.clear();
  uint64_t now = uv_now(loop_);
  uint32_t left = r.deadline > now ? static_cast<uint32_t>(r.deadline - now) : 1;
  std::string err;
  uint64_t id = r.id;
  r.dns_id = dns_.resolve(r.url.host, DnsType::kA, left, [this, id](const DnsResult& res) { on_dns(id, res); }, &err);
  if (!r.dns_id) {
    *error = "dns: " + err;
    return false;
  }
  return true;
}

void HttpClient::on_dns(uint64_t req_id, const DnsResult& res) {
  auto it = requests_.find(req_id);
  if (it == requests_.end()) return;
  Req& r = *it->second;
  r.dns_id = 0;
  if (res.status == DnsStatus::kOk) {
    r.addrs.insert(r.addrs.end(), res.addresses.begin(), res.addresses.end());
    connect_next(r);
    return;
  }
  if (res.type == DnsType::kA && res.status == DnsStatus::kNoData && !r.tried_aaaa) {
    // No IPv4 address: try IPv6.
    r.tried_aaaa = true;
    uint64_t now = uv_now(loop_);
    uint32_t left = r.deadline > now ? static_cast<uint32_t>(r.deadline - now) : 1;
    std::string err;
    r.dns_id = dns_.resolve(r.url.host, DnsType::kAAAA, left,
                            [this, req_id](const DnsResult& x) { on_dns(req_id, x); }, &err);
    if (!r.dns_id) fail(r, "dns: " + err);
    return;
  }
  fail(r, fmt::format("dns: {}: {} ({})", r.url.host, dns_status_name(res.status), res.error));
}

void HttpClient::connect_next(Req& r) {
  while (r.next_addr < r.addrs.size()) {
    jn_addr a = r.addrs[r.next_addr++];
    a.port = r.url.port;
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (!to_sockaddr(a, ss, len)) continue;
    auto* c = new Conn;
    c->client = this;
    c->req = &r;
    c->peer = format_addr(a);
    uv_tcp_init(loop_, &c->tcp);
    c->tcp.data = c;
    c->connect.data = c;
    ++open_handles_;
    int rc = uv_tcp_connect(&c->connect, &c->tcp, reinterpret_cast<const sockaddr*>(&ss), &HttpClient::on_connect);
    if (rc == 0) {
      r.conn = c;
      return;
    }
    r.last_error = fmt::format("connect {}: {}", c->peer, uv_strerror(rc));
    c->req = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), &HttpClient::on_conn_closed);
  }
  fail(r, r.last_error.empty() ? "no usable address for " + r.url.host : r.last_error);
}

void HttpClient::on_connect(uv_connect_t* creq, int status) {
  auto* c = static_cast<Conn*>(creq->data);
  if (!c->req || status == UV_ECANCELED) return;
  HttpClient* self = c->client;
  Req& r = *c->req;
  if (status < 0) {
    // Try the next address of the name, if any.
    r.last_error = fmt::format("connect {}: {}", c->peer, uv_strerror(status));
    c->req = nullptr;
    r.conn = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), &HttpClient::on_conn_closed);
    self->connect_next(r);
    return;
  }
  self->on_connected(*c);
}

void HttpClient::on_connected(Conn& c) {
  Req& r = *c.req;
  HttpResponseLimits limits{options_.max_header_bytes, options_.max_headers, r.req.max_response_body, r.chunk != nullptr};
  c.parser = std::make_unique<HttpResponseParser>(limits, ascii_iequals(r.req.method, "HEAD"));
  int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&c.tcp), &HttpClient::on_alloc, &HttpClient::on_read);
  if (rc != 0) {
    fail(r, fmt::format("read from {}: {}", c.peer, uv_strerror(rc)));
    return;
  }
  if (r.url.tls) {
    tls_start(c);
  } else {
    send_request(c);
  }
}

void HttpClient::send_request(Conn& c) {
  const Req& r = *c.req;
  const HttpClientRequest& q = r.req;
  std::string s;
  s.reserve(256 + q.body.size());
  s += q.method + " " + r.url.target + " HTTP/1.1\r\nHost: " + r.url.authority + "\r\n";
  bool ua = false;
  for (auto& [name, value] : q.headers) {
    s += name + ": " + value + "\r\n";
    ua |= ascii_iequals(name, "User-Agent");
  }
  if (!ua && !options_.user_agent.empty()) s += "User-Agent: " + options_.user_agent + "\r\n";
  if (!q.body.empty() || ascii_iequals(q.method, "POST") || ascii_iequals(q.method, "PUT") || ascii_iequals(q.method, "PATCH"))
    s += "Content-Length: " + std::to_string(q.body.size()) + "\r\n";
  s += "Connection: close\r\n\r\n";
  s += q.body;
  if (!c.tls) {
    write(c, std::move(s));
    return;
  }
  // Before the handshake completes the session queues it, and sends it once it does.
  if (!c.tls->write(s)) {
    tls_fail(c);
    return;
  }
  tls_flush(c);
}

void HttpClient::write(Conn& c, std::string data) {
  auto* w = new Write;
  w->data = std::move(data);
  w->conn = &c;
  w->w.data = w;
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->w, reinterpret_cast<uv_stream_t*>(&c.tcp), &b, 1, &HttpClient::on_write);
  if (rc != 0) {
    delete w;
    if (c.req) fail(*c.req, fmt::format("write to {}: {}", c.peer, uv_strerror(rc)));
  }
}

void HttpClient::on_write(uv_write_t* wr, int status) {
  std::unique_ptr<Write> w(static_cast<Write*>(wr->data));
  Conn* c = w->conn;  // alive: a closing stream cancels its writes before its close callback
  if (status < 0 && status != UV_ECANCELED && c->req)
    c->client->fail(*c->req, fmt::format("write to {}: {}", c->peer, uv_strerror(status)));
}

void HttpClient::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(h->data);
  *buf = uv_buf_init(c->buf, sizeof c->buf);
}

void HttpClient::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(s->data);
  if (!c->req) return;
  if (n > 0) {
    c->client->on_data(*c, buf->base, static_cast<size_t>(n));
  } else if (n == UV_EOF) {
    c->client->on_eof(*c);
  } else if (n < 0) {
    c->client->fail(*c->req, fmt::format("read from {}: {}", c->peer, uv_strerror(static_cast<int>(n))));
  }
}

void HttpClient::on_data(Conn& c, const char* data, size_t len) {
  auto res = HttpResponseParser::Result::kNeedMore;
  if (!c.tls) {
    consume(c, {data, len}, res);
    if (c.req) parsed(c, res);  // null: cancelled or redirected from a chunk callback
    return;
  }
  TlsSession::Status st = c.tls->feed(data, len, [&](const char* plain, size_t n) { return consume(c, {plain, n}, res); });
  if (!c.req) return;
  if (st == TlsSession::Status::kError) {
    tls_fail(c);
    return;
  }
  tls_flush(c);  // handshake flights, the queued request, key update answers
  if (!c.req) return;
  if (res != HttpResponseParser::Result::kNeedMore) {
    parsed(c, res);
  } else if (st == TlsSession::Status::kClosed) {  // close_notify
    parsed(c, c.parser->finish());
  }
}

// Feeds response bytes; when streaming, hands over what they decoded. false: stop feeding (the
// parse ended, or a chunk callback cancelled the request, or its head was a redirect taken).
bool HttpClient::consume(Conn& c, std::string_view bytes, HttpResponseParser::Result& res) {
  res = c.parser->feed(bytes);
  if (c.req->chunk && res != HttpResponseParser::Result::kError) stream_out(c);
  return c.req && res == HttpResponseParser::Result::kNeedMore;
}

void HttpClient::stream_out(Conn& c) {
  Req& r = *c.req;
  HttpResponseParser& p = *c.parser;
  if (!p.head_complete()) return;
  if (!r.head_sent) {
    const std::string* location = nullptr;
    for (auto& [name, value] : p.headers())
      if (ascii_iequals(name, "Location")) location = &value;
    if (follow(r, p.status(), location)) return;  // the next hop's head is the one delivered
  }
  // From the head on, timeout_ms is an idle timeout: any bytes push the deadline out (the set's
  // node is reused: no allocation per read).
  if (auto node = deadlines_.extract(std::make_pair(r.deadline, r.id))) {
    r.deadline = uv_now(loop_) + r.req.timeout_ms;
    node.value() = {r.deadline, r.id};
    deadlines_.insert(std::move(node));
    rearm();
  }
  if (r.head_sent && p.body().empty()) return;  // framing only (a chunk size line)
  HttpClientChunk ch;
  ch.head = !r.head_sent;
  ch.status = p.status();
  ch.headers = ch.head ? &p.headers() : nullptr;
  ch.data = p.body();
  ch.url = &r.url.text;
  r.head_sent = true;
  std::shared_ptr<ChunkCallback> cb = r.chunk;  // r may be gone when it returns (cancel)
  (*cb)(ch);
  if (c.req) p.clear_body();
}

void HttpClient::on_eof(Conn& c) {
  if (c.tls && !c.tls->connected()) {
    fail(*c.req, fmt::format("TLS: {} closed the connection during the handshake", c.peer));
    return;
  }
  // A TLS peer that closes without close_notify is taken like a plain close: the framing
  // (Content-Length, chunked) still tells whether the body is complete.
  parsed(c, c.parser->finish());
}

void HttpClient::parsed(Conn& c, HttpResponseParser::Result res) {
  if (res == HttpResponseParser::Result::kNeedMore) return;
  Req& r = *c.req;
  HttpResponseParser& p = *c.parser;
  if (res == HttpResponseParser::Result::kError) {
    fail(r, p.too_large() ? "response too large: " + p.error() : "bad response: " + p.error());
    return;
  }
  int st = p.status();
  const std::string* location = nullptr;
  for (auto& [name, value] : p.headers())
    if (ascii_iequals(name, "Location")) location = &value;
  if (r.head_sent || !follow(r, st, location)) {
    HttpClientResponse resp;
    resp.status = st;
    resp.reason = p.reason();
    resp.headers = p.headers();
    resp.body = p.take_body();  // streaming: empty (handed over already)
    resp.url = r.url.text;
    resp.redirects = r.redirects;
    finish(r, std::move(resp));
  }
}

// A redirect to follow: the next hop starts (or the request fails) and true is returned.
bool HttpClient::follow(Req& r, int st, const std::string* location) {
  bool redirect = st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
  if (!(r.req.follow_redirects && redirect && location)) return false;
  if (r.redirects >= options_.max_redirects) {
    fail(r, fmt::format("too many redirects (more than {})", options_.max_redirects));
    return true;
  }
  HttpUrl next;
  std::string err;
  if (!resolve_location(r.url, *location, next, err)) {
    fail(r, "bad redirect Location: " + err);
    return true;
  }
  if (r.url.tls && !next.tls) {
    fail(r, "redirect from https to http refused (" + next.for_log + ")");
    return true;
  }
  if (st == 303 && !ascii_iequals(r.req.method, "HEAD")) {
    r.req.method = "GET";
    r.req.body.clear();
    std::erase_if(r.req.headers, [](auto& h) { return ascii_iequals(h.first, "Content-Type"); });
  }
  if (next.host != r.url.host || next.port != r.url.port || next.tls != r.url.tls) {
    // Credentials meant for one origin are not handed to another.
    std::erase_if(r.req.headers, [](auto& h) {
      return ascii_iequals(h.first, "Authorization") || ascii_iequals(h.first, "Cookie") ||
             ascii_iequals(h.first, "Proxy-Authorization");
    });
  }
  JN_LOG_DBG("http client: {} {} -> {} {}", r.req.method, r.url.for_log, st, next.for_log);
  ++r.redirects;
  detach(r);
  r.url = std::move(next);
  if (r.url.tls && !r.ctx) {
    if (r.req.ca_file.empty()) {
      if (!default_ctx_ && !(default_ctx_ = make_ctx("", err))) {
        fail(r, err);
        return true;
      }
      SSL_CTX_up_ref(default_ctx_);
      r.ctx = default_ctx_;
    } else if (!(r.ctx = make_ctx(r.req.ca_file, err))) {
      fail(r, err);
      return true;
    }
  }
  if (!start_hop(r, &err)) fail(r, err);
  return true;
}

// ---- TLS (the core's TlsSession over memory BIOs) -------------------------------------------

void HttpClient::tls_start(Conn& c) {
  Req& r = *c.req;
  // Verifies the server against r.url.host: a DNS name by SNI + host check, an IP literal
  // against the certificate's IP SANs.
  c.tls = std::make_unique<TlsSession>(r.ctx, TlsSession::Role::kClient, r.url.host);
  std::string err;
  if (!c.tls->start(&err)) {
    fail(r, err);
    return;
  }
  send_request(c);  // queued by the session until the handshake completes
}

void HttpClient::tls_flush(Conn& c) {
  std::string out;
  if (c.req && c.tls->take_output(out)) write(c, std::move(out));
}

void HttpClient::tls_fail(Conn& c) {
  tls_flush(c);  // an alert for the peer, if any
  if (!c.req) return;
  fail(*c.req, fmt::format("{} (peer {})", c.tls->error(), c.peer));
}

// ---- completion ---------------------------------------------------------------------------

void HttpClient::detach(Req& r) {
  if (r.dns_id) {
    dns_.cancel(r.dns_id);
    r.dns_id = 0;
  }
  if (Conn* c = r.conn) {
    r.conn = nullptr;
    c->req = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), &HttpClient::on_conn_closed);
  }
}

void HttpClient::fail(Req& r, std::string error) {
  HttpClientResponse resp;
  resp.error = std::move(error);
  resp.url = r.url.text;
  resp.redirects = r.redirects;
  finish(r, std::move(resp));
}

void HttpClient::finish(Req& r, HttpClientResponse&& response) {
  detach(r);
  deadlines_.erase({r.deadline, r.id});
  auto node = requests_.extract(r.id);
  if (!node) return;
  std::unique_ptr<Req> req = std::move(node.mapped());
  if (!response.error.empty())
    JN_LOG_WRN("http client: {} {}: {}", printable(req->req.method), req->url.for_log, response.error);
  auto cb = std::move(req->cb);
  rearm();
  cb(response);
}

bool HttpClient::cancel(uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return false;
  detach(*it->second);
  deadlines_.erase({it->second->deadline, id});
  requests_.erase(it);
  rearm();
  return true;
}

void HttpClient::rearm() {
  if (state_ != State::kRunning) return;
  if (deadlines_.empty()) {
    uv_timer_stop(&timer_);
    return;
  }
  uint64_t now = uv_now(loop_), d = deadlines_.begin()->first;
  uv_timer_start(&timer_, &HttpClient::on_timer, d > now ? d - now : 0, 0);
}

void HttpClient::on_timer(uv_timer_t* t) {
  auto* self = static_cast<HttpClient*>(t->data);
  uint64_t now = uv_now(self->loop_);
  while (self->state_ == State::kRunning && !self->deadlines_.empty() &&
         self->deadlines_.begin()->first <= now) {
    uint64_t id = self->deadlines_.begin()->second;
    auto it = self->requests_.find(id);
    if (it == self->requests_.end()) {
      self->deadlines_.erase(self->deadlines_.begin());
      continue;
    }
    Req& r = *it->second;
    self->fail(r, r.head_sent ? fmt::format("timeout: no data for {} ms", r.req.timeout_ms)
                              : fmt::format("timeout after {} ms", r.req.timeout_ms));
  }
  self->rearm();
}

void HttpClient::stop(std::function<void()> done) {
  assert(state_ == State::kRunning && "HttpClient::stop() called twice");
  state_ = State::kStopping;
  stop_done_ = std::move(done);
  for (auto& [id, r] : requests_) detach(*r);
  requests_.clear();
  deadlines_.clear();
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &HttpClient::on_timer_closed);
  finish_stop_if_idle();
}

void HttpClient::on_conn_closed(uv_handle_t* h) {
  auto* c = static_cast<Conn*>(h->data);
  HttpClient* self = c->client;
  delete c;
  --self->open_handles_;
  self->finish_stop_if_idle();
}

void HttpClient::on_timer_closed(uv_handle_t* h) {
  auto* self = static_cast<HttpClient*>(h->data);
  --self->open_handles_;
  self->finish_stop_if_idle();
}

void HttpClient::finish_stop_if_idle() {
  if (state_ != State::kStopping || open_handles_ != 0) return;
  state_ = State::kStopped;
  auto done = std::move(stop_done_);
  if (done) done();
}

}  // namespace junction
