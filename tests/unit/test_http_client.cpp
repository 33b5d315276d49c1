// HttpClient tests: the real client on a libuv loop (names through the real DnsResolver and the
// test DNS server) against HTTP/HTTPS test servers on 127.0.0.1 (tests/lib/http_test_server.hpp),
// with a CA and server certificates made at test time. The loop runs until the callback fires.
#include <doctest/doctest.h>

#include "../lib/dns_test_server.hpp"
#include "../lib/http_test_server.hpp"
#include "net/dns_resolver.hpp"
#include "net/http_client.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

using namespace junction;
using jntest::DnsTestServer;
using jntest::http_response;
using jntest::HttpTestRequest;
using jntest::HttpTestServer;
using jntest::run_until;
using jntest::TestPki;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string header(const HttpClientResponse& r, const std::string& name) {
  for (auto& [n, v] : r.headers)
    if (strcasecmp(n.c_str(), name.c_str()) == 0) return v;
  return {};
}

// The routes most tests use.
std::optional<std::string> routes(const HttpTestRequest& q) {
  std::string t = q.target.substr(0, q.target.find('?'));
  if (t == "/ok") return http_response(200, "OK", "hello", "Content-Type: text/plain\r\nX-B: 2\r\nX-A: 1\r\n");
  if (t == "/echo")
    return http_response(201, "Created", q.method + " " + q.body + " " + q.header("X-Token") + " " +
                                             q.header("Content-Type") + " " + q.header("Authorization"));
  if (t == "/chunked")
    return std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") +
           "5;name=value\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
  if (t == "/close") return std::string("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
  if (t == "/continue")
    return std::string("HTTP/1.1 100 Continue\r\n\r\n") + http_response(200, "OK", "after 100");
  if (t == "/500") return http_response(500, "Internal Server Error", "oops");
  if (t == "/redir") return http_response(302, "Found", "", "Location: /ok\r\n");
  if (t == "/redir-rel") return http_response(301, "Moved", "", "Location: ok\r\n");
  if (t == "/see-other") return http_response(303, "See Other", "", "Location: /echo\r\n");
  if (t == "/temp") return http_response(307, "Temporary Redirect", "", "Location: /echo\r\n");
  if (t == "/loop") return http_response(302, "Found", "", "Location: /loop\r\n");
  if (t == "/big") return http_response(200, "OK", std::string(5000, 'x'));
  if (t == "/big-chunked")
    return std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") + "400\r\n" +
           std::string(1024, 'y') + "\r\n400\r\n" + std::string(1024, 'y') + "\r\n0\r\n\r\n";
  if (t == "/big-close") return "HTTP/1.1 200 OK\r\n\r\n" + std::string(5000, 'z');
  if (t == "/bad") return std::string("HTTP/1.1 2x0 OK\r\n\r\n");
  if (t == "/bad-chunk") return std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
  if (t == "/truncated") return std::string("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  if (t == "/nothing") return std::string();
  if (t == "/hang") return std::nullopt;
  return http_response(404, "Not Found", "");
}

struct Fx {
  uv_loop_t loop{};
  std::unique_ptr<DnsTestServer> dns_srv;
  std::unique_ptr<DnsResolver> dns;
  std::unique_ptr<HttpClient> http;
  uv_async_t wake{};  // the test servers' threads wake the loop through it

  explicit Fx(HttpClientOptions o = {}) {
    uv_loop_init(&loop);
    uv_async_init(&loop, &wake, [](uv_async_t*) {});
    dns_srv = std::make_unique<DnsTestServer>(&loop);
    dns_srv->add_a("good.test", "127.0.0.1");
    dns_srv->add_a("other.test", "127.0.0.1");
    DnsResolverOptions d;
    d.servers = {dns_srv->addr()};
    dns = std::make_unique<DnsResolver>(&loop, d);
    http = std::make_unique<HttpClient>(&loop, *dns, o);
  }
  ~Fx() {
    int done = 0;
    http->stop([&] {
      ++done;
      dns->stop([&] { ++done; });
    });
    dns_srv->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
    CHECK(run_until(&loop, [&] { return done == 2 && dns_srv->closed(); }));
    http.reset();
    dns.reset();
    CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    CHECK(uv_loop_close(&loop) == 0);
  }

  HttpClientResponse run(HttpClientRequest req) {
    std::optional<HttpClientResponse> r;
    std::string err;
    uint64_t id = http->request(std::move(req), [&](const HttpClientResponse& x) { r = x; }, &err);
    REQUIRE_MESSAGE(id != 0, err);
    CHECK(!r);  // never from inside request()
    REQUIRE(run_until(&loop, [&] { return r.has_value(); }));
    return *r;
  }
  HttpClientResponse get(const std::string& url, uint32_t timeout_ms = 5000) {
    HttpClientRequest q;
    q.url = url;
    q.timeout_ms = timeout_ms;
    return run(q);
  }
};

}  // namespace

TEST_CASE("http client: 200 with Content-Length, headers in order") {
  Fx fx;
  HttpTestServer srv(routes, nullptr, &fx.wake);
  HttpClientResponse r = fx.get(srv.url("/ok"));
  CHECK(r.error == "");
  CHECK(r.status == 200);
  CHECK(r.reason == "OK");
  CHECK(r.body == "hello");
  REQUIRE(r.headers.size() == 4);
  CHECK(r.headers[0].first == "Content-Length");
  CHECK(r.headers[1] == std::make_pair(std::string("Content-Type"), std::string("text/plain")));
  CHECK(r.headers[2].first == "X-B");
  CHECK(r.headers[3].first == "X-A");
  CHECK(r.url == srv.url("/ok"));
  auto reqs = srv.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].method == "GET");
  CHECK(reqs[0].header("Host") == "127.0.0.1:" + std::to_string(srv.port()));
  CHECK(reqs[0].header("Connection") == "close");
  CHECK(reqs[0].header("User-Agent") == "junction");
  CHECK(!reqs[0].has_header("Content-Length"));
}

TEST_CASE("http client: POST with a body and headers, by name") {
  Fx fx;
  HttpTestServer srv(routes, nullptr, &fx.wake);
  HttpClientRequest q;
  q.method = "POST";
  q.url = srv.url("/echo?x=1", "good.test");
  q.headers = {{"X-Token", "t1"}, {"Content-Type", "application/json"}};
  q.body = "{\"a\":1}";
  HttpClientResponse r = fx.run(q);
  CHECK(r.error == "");
  CHECK(r.status == 201);
  CHECK(r.body == "POST {\"a\":1} t1 application/json ");
  auto reqs = srv.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].target == "/echo?x=1");
  CHECK(reqs[0].header("Host") == "good.test:" + std::to_string(srv.port()));
  CHECK(reqs[0].header("Content-Length") == "7");
  CHECK(fx.dns_srv->count("good.test", DnsTestServer::A) == 1);
}

TEST_CASE("http client: chunked, close-delimited and 100 Continue bodies") {
  Fx fx;
  HttpTestServer srv(routes, nullptr, &fx.wake);
  HttpClientResponse c = fx.get(srv.url("/chunked"));
  CHECK(c.error == "");
  CHECK(c.status == 200);
  CHECK(c.body == "hello, world");
  HttpClientResponse e = fx.get(srv.url("/close"));
  CHECK(e.error == "");
  CHECK(e.body == "until the end");
  HttpClientResponse k = fx.get(srv.url("/continue"));
  CHECK(k.error == "");
  CHECK(k.status == 200);
  CHECK(k.body == "after 100");
}

TEST_CASE("http client: a 500 is a response, not an error") {
  Fx fx;
  HttpTestServer srv(routes, nullptr, &fx.wake);
  HttpClientResponse r = fx.get(srv.url("/500"));
  CHECK(r.error == "");
  CHECK(r.status == 500);
  CHECK(r.body == "oops");
}

TEST_CASE("http client: redirects returned as they are, or followed") {
  Fx fx;
  HttpTestServer srv(routes, nullptr, &fx.wake);
  HttpClientResponse not_followed = fx.get(srv.url("/redir"));
  CHECK(not_followed.error == "");
  CHECK(not_followed.status == 302);
  CHECK(header(not_followed, "Location") == "/ok");
  CHECK(not_followed.redirects == 0);

  HttpClientRequest q;
  q.url = srv.url("/redir");
  q.follow_redirects = true;
  HttpClientResponse followed = fx.run(q);
  CHECK(followed.error == "");
  CHECK(followed.status == 200);
  CHECK(followed.body == "hello");
  CHECK(followed.redirects == 1);
  CHECK(followed.url == srv.url("/ok"));

  q.url = srv.url("/redir-rel");
  CHECK(fx.run(q).body == "hello");

  // 303 turns a POST into a GET without its body; 307 keeps both.
  HttpClientRequest post;
  post.method = "POST";
  post.url = srv.url("/see-other");
  post.body = "data";
  post.headers = {{"Content-Type", "text/plain"}};
  post.follow_redirects = true;
  HttpClientResponse see_other = fx.run(post);
  CHECK(see_other.status == 201);
  CHECK(see_other.body == "GET    ");
  post.url = srv.url("/temp");
  CHECK(fx.run(post).body == "POST data  text/plain ");

  q.url = srv.url("/loop");
  HttpClientResponse loop = fx.run(q);
  CHECK(contains(loop.error, "too many redirects"));
  CHECK(loop.status == 0);
}

TEST_CASE("http client: a redirect to another host drops the credentials") {
  Fx fx;
  HttpTestServer b(routes, nullptr, &fx.wake);
  HttpTestServer redirector([&](const HttpTestRequest&) -> std::optional<std::string> {
    return http_response(302, "Found", "", "Location: " + b.url("/echo", "other.test") + "\r\n");
  }, nullptr, &fx.wake);
  HttpClientRequest q;
  q.url = redirector.url("/", "good.test");
  q.headers = {{"Authorization", "Bearer secret"}, {"X-Token", "kept"}};
  q.follow_redirects = true;
  HttpClientResponse r = fx.run(q);
  CHECK(r.error == "");
  CHECK(r.body == "GET  kept  ");
  CHECK(r.url == b.url("/echo", "other.test"));
}

TEST_CASE("http client: a server that never answers times out") {
  Fx fx;
  HttpTestServer srv(routes, nullptr, &fx.wake);
  HttpClientResponse r = fx.get(srv.url("/hang"), 300);
  CHECK(r.status == 0);
  CHECK(contains(r.error, "timeout"));
  // The connection was closed: the server sees the client leave.
  CHECK(run_until(&fx.loop, [&] { return srv.closed == 1; }));
}

TEST_CASE("http client: connection refused") {
  // A port nothing listens on: bound, then closed.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  socklen_t len = sizeof sin;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  close(fd);
  Fx fx;
  HttpClientResponse r = fx.get("http://127.0.0.1:" + std::to_string(ntohs(sin.sin_port)) + "/");
  CHECK(r.status == 0);
  CHECK(contains(r.error, "connection refused"));
}

TEST_CASE("http client: a name that does not resolve") {
  Fx fx;
  HttpClientResponse r = fx.get("http://nx.test:8080/");
  CHECK(contains(r.error, "dns: nx.test: nxdomain"));
}

TEST_CASE("http client: bodies over the limit are refused") {
  Fx fx;
  HttpTestServer srv(routes, nullptr, &fx.wake);
  for (const char* path : {"/big", "/big-chunked", "/big-close"}) {
    CAPTURE(path);
    HttpClientRequest q;
    q.url = srv.url(path);
    q.max_response_body = 1000;
    HttpClientResponse r = fx.run(q);
    CHECK(contains(r.error, "too large"));
    CHECK(r.body.empty());
  }
  HttpClientRequest q;
  q.url = srv.url("/big");
  q.max_response_body = 5000;  // exactly the size: fine
  CHECK(fx.run(q).body.size() == 5000);
}

TEST_CASE("http client: malformed or truncated responses are errors") {
  Fx fx;
  HttpTestServer srv(routes, nullptr, &fx.wake);
  CHECK(contains(fx.get(srv.url("/bad")).error, "bad response: bad status line"));
  CHECK(contains(fx.get(srv.url("/bad-chunk")).error, "bad response: bad chunk size"));
  CHECK(contains(fx.get(srv.url("/truncated")).error, "closed before the end"));
  CHECK(contains(fx.get(srv.url("/nothing")).error, "closed without a response"));
}

TEST_CASE("http client: bad requests are refused at once") {
  Fx fx;
  auto refused = [&](HttpClientRequest q) {
    std::string err;
    bool called = false;
    uint64_t id = fx.http->request(q, [&](const HttpClientResponse&) { called = true; }, &err);
    CHECK(id == 0);
    CHECK(!called);
    return err;
  };
  HttpClientRequest q;
  q.url = "ftp://127.0.0.1/";
  CHECK(contains(refused(q), "scheme"));
  q.url = "127.0.0.1/x";
  CHECK(contains(refused(q), "absolute"));
  q.url = "http://user:pw@127.0.0.1/";
  CHECK(contains(refused(q), "credentials"));
  q.url = "http://127.0.0.1:99999/";
  CHECK(contains(refused(q), "port"));
  q.url = "http://127.0.0.1/a b";
  CHECK(contains(refused(q), "spaces"));
  q.url = "http://127.0.0.1/";
  q.headers = {{"X-Evil", "a\r\nInjected: 1"}};
  CHECK(contains(refused(q), "CR, LF"));
  q.headers = {{"Host", "elsewhere"}};
  CHECK(contains(refused(q), "set by the client"));
  q.headers = {{"Bad Name", "x"}};
  CHECK(contains(refused(q), "bad header name"));
  q.headers = {};
  q.method = "GE T";
  CHECK(contains(refused(q), "bad method"));
  q.method = "GET";
  q.url = "https://127.0.0.1/";
  q.ca_file = "/nonexistent/ca.pem";
  CHECK(contains(refused(q), "ca_file"));
}

TEST_CASE("http client: cancel closes the connection without a callback") {
  Fx fx;
  HttpTestServer srv(routes, nullptr, &fx.wake);
  bool called = false;
  HttpClientRequest q;
  q.url = srv.url("/hang");
  uint64_t id = fx.http->request(q, [&](const HttpClientResponse&) { called = true; });
  REQUIRE(id);
  REQUIRE(run_until(&fx.loop, [&] { return srv.requests().size() == 1; }));
  CHECK(fx.http->cancel(id));
  CHECK(!fx.http->cancel(id));
  CHECK(fx.http->active() == 0);
  CHECK(run_until(&fx.loop, [&] { return srv.closed == 1; }));
  CHECK(!called);
}

TEST_CASE("http client: concurrent requests are capped; stop drops them without callbacks") {
  HttpClientOptions o;
  o.max_concurrent = 2;
  int calls = 0;
  {
    Fx fx(o);
    HttpTestServer srv(routes, nullptr, &fx.wake);
    HttpClientRequest q;
    q.url = srv.url("/hang");
    REQUIRE(fx.http->request(q, [&](const HttpClientResponse&) { ++calls; }));
    REQUIRE(fx.http->request(q, [&](const HttpClientResponse&) { ++calls; }));
    std::string err;
    CHECK(fx.http->request(q, [&](const HttpClientResponse&) { ++calls; }, &err) == 0);
    CHECK(contains(err, "too many"));
    REQUIRE(run_until(&fx.loop, [&] { return srv.requests().size() == 2; }));
    // ~Fx stops the client with both in flight.
  }
  CHECK(calls == 0);
}

TEST_CASE("http client: HTTPS verified against ca_file; unknown CA and wrong names refused") {
  TestPki pki;
  SSL_CTX* ctx = pki.server_ctx("DNS:good.test");
  Fx fx;
  HttpTestServer srv(routes, ctx, &fx.wake);
  SSL_CTX_free(ctx);
  HttpClientRequest q;
  q.url = srv.url("/ok", "good.test");
  q.ca_file = pki.ca_file();
  HttpClientResponse ok = fx.run(q);
  CHECK(ok.error == "");
  CHECK(ok.status == 200);
  CHECK(ok.body == "hello");
  q.url = srv.url("/chunked", "good.test");
  CHECK(fx.run(q).body == "hello, world");
  q.url = srv.url("/close", "good.test");
  CHECK(fx.run(q).body == "until the end");
  CHECK(srv.requests().size() == 3);

  // The system store does not know the test CA.
  HttpClientRequest unknown;
  unknown.url = srv.url("/ok", "good.test");
  HttpClientResponse u = fx.run(unknown);
  CHECK(u.status == 0);
  CHECK(contains(u.error, "certificate verification failed"));
  CHECK(contains(u.error, "local issuer"));

  // Another CA is no better.
  TestPki other("another CA");
  unknown.ca_file = other.ca_file();
  CHECK(contains(fx.run(unknown).error, "certificate verification failed"));

  // A name (or an address) the certificate does not carry.
  HttpClientRequest wrong;
  wrong.url = srv.url("/ok", "other.test");
  wrong.ca_file = pki.ca_file();
  HttpClientResponse w = fx.run(wrong);
  CHECK(contains(w.error, "hostname mismatch"));
  wrong.url = srv.url("/ok", "127.0.0.1");
  CHECK(contains(fx.run(wrong).error, "IP address mismatch"));
  CHECK(srv.requests().size() == 3);  // no request went out over an unverified connection
  CHECK(run_until(&fx.loop, [&] { return srv.tls_failures == 4; }));
}

TEST_CASE("http client: HTTPS by IP address; https->http redirects refused, http->https followed") {
  TestPki pki;
  SSL_CTX* ctx = pki.server_ctx("IP:127.0.0.1");
  Fx fx;
  HttpTestServer plain(routes, nullptr, &fx.wake);
  HttpTestServer tls([&](const HttpTestRequest& q) -> std::optional<std::string> {
    if (q.target == "/down") return http_response(302, "Found", "", "Location: " + plain.url("/ok") + "\r\n");
    return routes(q);
  }, ctx, &fx.wake);
  HttpTestServer up([&](const HttpTestRequest&) -> std::optional<std::string> {
    return http_response(301, "Moved", "", "Location: " + tls.url("/ok") + "\r\n");
  }, nullptr, &fx.wake);
  SSL_CTX_free(ctx);
  HttpClientRequest q;
  q.url = tls.url("/ok");
  q.ca_file = pki.ca_file();
  CHECK(fx.run(q).body == "hello");

  q.url = tls.url("/down");
  q.follow_redirects = true;
  HttpClientResponse down = fx.run(q);
  CHECK(contains(down.error, "https to http refused"));
  CHECK(plain.requests().empty());

  q.url = up.url("/");
  HttpClientResponse r = fx.run(q);
  CHECK(r.error == "");
  CHECK(r.body == "hello");
  CHECK(r.url == tls.url("/ok"));
}

// ---- streaming (ABI 2.3: jn_http_client_request.stream, on_http_chunk) ---------------------------

namespace {

// A server for streamed responses that the test drives step by step: it accepts one connection,
// reads the request head, then does the steps the test pushes, in order: send bytes, close (FIN),
// reset (RST), or wait for the client to leave. So a test sees a piece arrive before the next one
// is even sent. Blocking sockets on its own thread; the test's loop is woken after each step.
class StreamServer {
 public:
  enum class Op { kSend, kClose, kReset, kAwaitClientClose };

  explicit StreamServer(uv_async_t* wake) : wake_(wake) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(fd_, 4) == 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~StreamServer() {
    push(Op::kClose);
    shutdown(fd_, SHUT_RDWR);  // wakes accept() if no client came
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  void push(Op op, std::string data = {}) {
    std::lock_guard<std::mutex> lk(mu_);
    steps_.emplace_back(op, std::move(data));
    cv_.notify_one();
  }
  void send(std::string data) { push(Op::kSend, std::move(data)); }

  std::atomic<int> requests{0};  // request heads read
  std::atomic<int> done{0};      // the connection ended (closed, reset, or the client left)
  std::atomic<int> sent{0};      // kSend steps written

 private:
  void serve() {
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    timeval tv{10, 0};  // bounds a broken test, never a synchronisation
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string in;
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos) {
      long n = recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
    }
    ++requests;
    notify();
    for (;;) {
      std::pair<Op, std::string> step;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return !steps_.empty(); });
        step = std::move(steps_.front());
        steps_.pop_front();
      }
      if (step.first == Op::kSend) {
        ::send(c, step.second.data(), step.second.size(), MSG_NOSIGNAL);
        ++sent;
        notify();
        continue;
      }
      if (step.first == Op::kReset) {
        linger l{1, 0};  // close() sends RST
        setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      } else if (step.first == Op::kAwaitClientClose) {
        while (recv(c, buf, sizeof buf, 0) > 0) {
        }
      }
      break;
    }
    ::close(c);
    ++done;
    notify();
  }
  void notify() {
    if (wake_) uv_async_send(wake_);
  }

  uv_async_t* wake_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Op, std::string>> steps_;
};

// What a streamed request delivered: the pieces in order, then the end.
struct Streamed {
  int calls = 0;
  int heads = 0;
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string data;
  std::optional<HttpClientResponse> end;
  int calls_after_end = 0;
  uint64_t id = 0;

  uint64_t start(Fx& fx, HttpClientRequest q, std::function<void(Streamed&, const HttpClientChunk&)> extra = {}) {
    std::string err;
    id = fx.http->request(
        std::move(q), [this](const HttpClientResponse& r) { end = r; }, &err,
        [this, extra](const HttpClientChunk& c) {
          if (end) ++calls_after_end;
          ++calls;
          if (c.head) {
            ++heads;
            status = c.status;
            headers = *c.headers;
          }
          CHECK((c.head == (calls == 1)));  // the head first, once
          data.append(c.data);
          if (extra) extra(*this, c);
        });
    REQUIRE_MESSAGE(id != 0, err);
    return id;
  }
};

}  // namespace

TEST_CASE("http client stream: chunked pieces arrive as they are sent, in order, then the end") {
  Fx fx;
  StreamServer srv(&fx.wake);
  HttpClientRequest q;
  q.url = srv.url("/live.flv");
  q.max_response_body = 4;  // no limit applies to a stream
  Streamed s;
  s.start(fx, q);
  REQUIRE(run_until(&fx.loop, [&] { return srv.requests == 1; }));
  srv.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5\r\nhello\r\n");
  REQUIRE(run_until(&fx.loop, [&] { return s.data == "hello"; }));
  CHECK(s.heads == 1);
  CHECK(s.status == 200);
  REQUIRE(s.headers.size() == 2);
  CHECK(s.headers[1] == std::make_pair(std::string("X-A"), std::string("1")));
  CHECK(!s.end);
  // The next piece is delivered when it comes, decoded (chunk sizes and extensions removed).
  srv.send("6;ext=1\r\n world\r\n");
  REQUIRE(run_until(&fx.loop, [&] { return s.data == "hello world"; }));
  CHECK(!s.end);
  srv.send("0\r\nX-Trailer: t\r\n\r\n");
  REQUIRE(run_until(&fx.loop, [&] { return s.end.has_value(); }));
  CHECK(s.end->error == "");
  CHECK(s.end->status == 200);
  CHECK(s.end->body == "");  // handed over already
  CHECK(s.data == "hello world");
  CHECK(s.calls_after_end == 0);
  CHECK(fx.http->active() == 0);
}

TEST_CASE("http client stream: a close-delimited body ends with the server's close") {
  Fx fx;
  StreamServer srv(&fx.wake);
  HttpClientRequest q;
  q.url = srv.url("/");
  q.max_response_body = 4;
  Streamed s;
  s.start(fx, q);
  srv.send("HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\n\r\nFLV\x01");
  REQUIRE(run_until(&fx.loop, [&] { return s.data == "FLV\x01"; }));
  srv.send(std::string(20000, 'x'));  // more than one read, more than max_response_body
  REQUIRE(run_until(&fx.loop, [&] { return s.data.size() == 20004; }));
  CHECK(s.calls >= 2);
  CHECK(!s.end);
  srv.push(StreamServer::Op::kClose);
  REQUIRE(run_until(&fx.loop, [&] { return s.end.has_value(); }));
  CHECK(s.end->error == "");
  CHECK(s.end->status == 200);
  CHECK(s.data == "FLV\x01" + std::string(20000, 'x'));
  CHECK(s.calls_after_end == 0);
}

TEST_CASE("http client stream: cancel from a piece stops delivery and closes the connection") {
  Fx fx;
  StreamServer srv(&fx.wake);
  HttpClientRequest q;
  q.url = srv.url("/");
  Streamed s;
  s.start(fx, q, [&](Streamed& st, const HttpClientChunk& c) {
    if (!c.data.empty()) CHECK(fx.http->cancel(st.id));
  });
  srv.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n");
  REQUIRE(run_until(&fx.loop, [&] { return s.data == "one"; }));
  srv.send("3\r\ntwo\r\n");
  srv.push(StreamServer::Op::kAwaitClientClose);
  // The server sees the client leave; nothing arrived after the cancel, and no end came.
  REQUIRE(run_until(&fx.loop, [&] { return srv.done == 1; }));
  CHECK(s.data == "one");
  CHECK(s.calls == 1);
  CHECK(!s.end);
  CHECK(!fx.http->cancel(s.id));  // gone already
  CHECK(fx.http->active() == 0);
}

TEST_CASE("http client stream: a 404 is a status, with its body, not an error") {
  Fx fx;
  StreamServer srv(&fx.wake);
  HttpClientRequest q;
  q.url = srv.url("/missing");
  Streamed s;
  s.start(fx, q);
  srv.send("HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope");
  REQUIRE(run_until(&fx.loop, [&] { return s.end.has_value(); }));
  CHECK(s.heads == 1);
  CHECK(s.status == 404);
  CHECK(s.data == "nope");
  CHECK(s.end->error == "");
  CHECK(s.end->status == 404);
}

TEST_CASE("http client stream: a reset or a truncated chunked body mid-stream ends with an error") {
  Fx fx;
  SUBCASE("reset") {
    StreamServer srv(&fx.wake);
    HttpClientRequest q;
    q.url = srv.url("/");
    Streamed s;
    s.start(fx, q);
    srv.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    REQUIRE(run_until(&fx.loop, [&] { return s.data == "abc"; }));
    srv.push(StreamServer::Op::kReset);
    REQUIRE(run_until(&fx.loop, [&] { return s.end.has_value(); }));
    CHECK(s.end->status == 0);
    CHECK_MESSAGE(contains(s.end->error, "connection reset"), s.end->error);
    CHECK(s.calls_after_end == 0);
  }
  SUBCASE("closed before the last chunk") {
    StreamServer srv(&fx.wake);
    HttpClientRequest q;
    q.url = srv.url("/");
    Streamed s;
    s.start(fx, q);
    srv.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    REQUIRE(run_until(&fx.loop, [&] { return s.data == "abc"; }));
    srv.push(StreamServer::Op::kClose);
    REQUIRE(run_until(&fx.loop, [&] { return s.end.has_value(); }));
    CHECK(s.end->status == 0);
    CHECK_MESSAGE(contains(s.end->error, "closed before the end"), s.end->error);
  }
}

TEST_CASE("http client stream: after the head, timeout_ms is an idle timeout") {
  Fx fx;
  StreamServer srv(&fx.wake);
  HttpClientRequest q;
  q.url = srv.url("/");
  q.timeout_ms = 200;
  Streamed s;
  s.start(fx, q);
  srv.send("HTTP/1.1 200 OK\r\n\r\nabc");
  srv.push(StreamServer::Op::kAwaitClientClose);
  REQUIRE(run_until(&fx.loop, [&] { return s.end.has_value() && srv.done == 1; }));
  CHECK(s.data == "abc");
  CHECK_MESSAGE(contains(s.end->error, "no data for 200 ms"), s.end->error);
}

TEST_CASE("http client stream: redirects are followed before the head; only the final one is delivered") {
  Fx fx;
  HttpTestServer srv(routes, nullptr, &fx.wake);
  HttpClientRequest q;
  q.url = srv.url("/redir");
  q.follow_redirects = true;
  Streamed s;
  s.start(fx, q);
  REQUIRE(run_until(&fx.loop, [&] { return s.end.has_value(); }));
  CHECK(s.heads == 1);
  CHECK(s.status == 200);
  CHECK(s.data == "hello");
  CHECK(s.end->redirects == 1);
  CHECK(s.end->url == srv.url("/ok"));
}

TEST_CASE("http client stream: over HTTPS, chunked and close-delimited, and a cancel from the head") {
  TestPki pki;
  SSL_CTX* ctx = pki.server_ctx("DNS:good.test");
  Fx fx;
  HttpTestServer srv(routes, ctx, &fx.wake);
  SSL_CTX_free(ctx);
  for (const char* path : {"/chunked", "/close", "/big-chunked"}) {
    HttpClientRequest q;
    q.url = srv.url(path, "good.test");
    q.ca_file = pki.ca_file();
    q.max_response_body = 4;
    Streamed s;
    s.start(fx, q);
    REQUIRE(run_until(&fx.loop, [&] { return s.end.has_value(); }));
    CHECK_MESSAGE(s.end->error == "", s.end->error);
    CHECK(s.heads == 1);
    CHECK(s.data == (std::string(path) == "/chunked" ? "hello, world"
                     : std::string(path) == "/close" ? "until the end" : std::string(2048, 'y')));
  }
  // Cancelled from the very first call: nothing follows, the connection closes.
  HttpClientRequest q;
  q.url = srv.url("/big-chunked", "good.test");
  q.ca_file = pki.ca_file();
  Streamed s;
  s.start(fx, q, [&](Streamed& st, const HttpClientChunk&) { CHECK(fx.http->cancel(st.id)); });
  REQUIRE(run_until(&fx.loop, [&] { return s.calls == 1 && srv.closed == 4; }));
  CHECK(s.calls == 1);
  CHECK(!s.end);
  CHECK(fx.http->active() == 0);
}
