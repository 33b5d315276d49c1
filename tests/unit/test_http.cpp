// HttpServer tests: a real uv loop on the test thread, real clients (raw sockets) on std::threads.
#include <doctest/doctest.h>

#include "http/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace junction;
using namespace std::chrono_literals;

namespace {

// ---- the loop -----------------------------------------------------------------------------

struct Loop {
  uv_loop_t loop{};
  Loop() { uv_loop_init(&loop); }

  template <class Pred>
  bool run_until(Pred pred, int ms = 10000) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > end) return false;
      uv_run(&loop, UV_RUN_NOWAIT);
      if (!pred()) std::this_thread::sleep_for(1ms);
    }
    return true;
  }
  void run_for(int ms) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    run_until([&] { return std::chrono::steady_clock::now() > end; }, ms + 1000);
  }
  // Runs the loop while a client thread works; returns its result.
  template <class T>
  T wait(std::future<T>& f, int ms = 15000) {
    bool ok = run_until([&] { return f.wait_for(0s) == std::future_status::ready; }, ms);
    REQUIRE(ok);
    return f.get();
  }
  // stop() then the loop must drain to nothing and close.
  void stop_and_close(HttpServer& s) {
    bool done = false;
    int calls = 0;
    s.stop([&] {
      done = true;
      ++calls;
    });
    CHECK(run_until([&] { return done; }));
    CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    CHECK(calls == 1);
    CHECK(uv_loop_close(&loop) == 0);
  }
};

// A loop and a server that is stopped even when a test bails out early (REQUIRE).
struct Fx {
  Loop L;
  std::unique_ptr<HttpServer> srv;
  bool stopped = false;
  explicit Fx(HttpServerOptions o = {}) : srv(std::make_unique<HttpServer>(&L.loop, o)) {}
  ~Fx() {
    if (stopped) return;
    bool done = false;
    srv->stop([&] { done = true; });
    L.run_until([&] { return done; }, 5000);
  }
  void stop_and_close() {
    stopped = true;
    L.stop_and_close(*srv);
  }
};

// ---- a raw HTTP/1.1 + WebSocket client ------------------------------------------------------

int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, std::string_view d) {
  while (!d.empty()) {
    ssize_t n = send(fd, d.data(), d.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    d.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads more bytes into buf; false on EOF / error / timeout.
bool read_more(int fd, std::string& buf) {
  char tmp[65536];
  ssize_t n = recv(fd, tmp, sizeof tmp, 0);
  if (n <= 0) return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

struct Response {
  int status = 0;  // 0: no (complete) response
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// Reads one response from fd (buf keeps bytes that follow it, for keep-alive).
Response read_response(int fd, std::string& buf, bool head_request = false) {
  Response r;
  size_t he;
  while ((he = buf.find("\r\n\r\n")) == std::string::npos)
    if (!read_more(fd, buf)) return r;
  std::string head = buf.substr(0, he);
  buf.erase(0, he + 4);
  size_t eol = head.find("\r\n");
  std::string status_line = head.substr(0, eol);
  if (status_line.size() < 12) return r;
  int status = std::atoi(status_line.c_str() + 9);
  size_t pos = eol == std::string::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    std::string line = head.substr(pos, e - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(' '));
      r.headers[lower(line.substr(0, colon))] = v;
    }
    pos = e + 2;
  }
  if (status == 101 || status == 100 || head_request) {
    r.status = status;
    return r;
  }
  auto cl = r.headers.find("content-length");
  if (cl != r.headers.end()) {
    size_t n = std::stoul(cl->second);
    while (buf.size() < n)
      if (!read_more(fd, buf)) return r;
    r.body = buf.substr(0, n);
    buf.erase(0, n);
  } else {
    while (read_more(fd, buf)) {
    }
    r.body.swap(buf);
  }
  r.status = status;
  return r;
}

// One request on a fresh connection.
Response http(int port, const std::string& raw) {
  int fd = connect_to(port);
  if (fd < 0) return {};
  std::string buf;
  Response r;
  if (send_all(fd, raw)) r = read_response(fd, buf);
  close(fd);
  return r;
}

std::string request(const std::string& method, const std::string& target,
                    const std::string& body = {}, const std::string& extra = {}) {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra;
  if (!body.empty() || method == "POST" || method == "PUT")
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

struct WsClient {
  int fd = -1;
  std::string buf;
  Response handshake;

  ~WsClient() {
    if (fd >= 0) close(fd);
  }
  bool open(int port, const std::string& path, const std::string& subprotocols = {}) {
    fd = connect_to(port);
    if (fd < 0) return false;
    std::string req = "GET " + path +
                      " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n";
    if (!subprotocols.empty()) req += "Sec-WebSocket-Protocol: " + subprotocols + "\r\n";
    req += "\r\n";
    if (!send_all(fd, req)) return false;
    handshake = read_response(fd, buf);
    return handshake.status == 101;
  }
  bool send_frame(int opcode, std::string_view payload, bool fin = true) {
    std::string f;
    f += static_cast<char>((fin ? 0x80 : 0) | opcode);
    size_t n = payload.size();
    if (n < 126) {
      f += static_cast<char>(0x80 | n);
    } else if (n < 65536) {
      f += static_cast<char>(0x80 | 126);
      f += static_cast<char>(n >> 8);
      f += static_cast<char>(n & 255);
    } else {
      f += static_cast<char>(0x80 | 127);
      for (int i = 7; i >= 0; --i) f += static_cast<char>((n >> (8 * i)) & 255);
    }
    const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    f.append(reinterpret_cast<const char*>(mask), 4);
    for (size_t i = 0; i < n; ++i) f += static_cast<char>(payload[i] ^ mask[i & 3]);
    return send_all(fd, f);
  }
  // One frame from the server (unmasked). false on EOF / error.
  bool read_frame(int* opcode, std::string* payload, bool* fin = nullptr) {
    while (buf.size() < 2)
      if (!read_more(fd, buf)) return false;
    auto b = [&](size_t i) { return static_cast<unsigned char>(buf[i]); };
    if (b(1) & 0x80) return false;  // servers must not mask
    size_t len = b(1) & 0x7f, hdr = 2;
    if (len == 126) hdr = 4;
    if (len == 127) hdr = 10;
    while (buf.size() < hdr)
      if (!read_more(fd, buf)) return false;
    if (len == 126) len = (static_cast<size_t>(b(2)) << 8) | b(3);
    if (len == 127) {
      len = 0;
      for (int i = 2; i < 10; ++i) len = (len << 8) | b(static_cast<size_t>(i));
    }
    while (buf.size() < hdr + len)
      if (!read_more(fd, buf)) return false;
    *opcode = b(0) & 0x0f;
    if (fin) *fin = (b(0) & 0x80) != 0;
    *payload = buf.substr(hdr, len);
    buf.erase(0, hdr + len);
    return true;
  }
  // Reads until EOF; true if the peer closed the TCP connection.
  bool wait_eof() {
    while (read_more(fd, buf)) buf.clear();
    return true;
  }
};

HttpHandlers echo_handlers(HttpServer& srv, std::vector<HttpRequest>* seen) {
  HttpHandlers h;
  h.on_request = [&srv, seen](const HttpRequest& r) {
    if (seen) seen->push_back(r);
    if (r.path == "/missing") {
      srv.respond(r.id, 404, "application/json", R"({"error":"not found"})");
      return;
    }
    std::string out = r.method + " " + r.path + "?" + r.query + " ct=" + r.content_type +
                      " auth=" + r.authorization + " body=" + r.body;
    srv.respond(r.id, 200, "text/plain", out, {{"X-Junction", "yes"}});
  };
  return h;
}

uint64_t must_listen(HttpServer& srv, HttpHandlers h, std::string_view ws_path = {}) {
  std::string err;
  uint64_t ep = srv.listen("127.0.0.1:0", ws_path, std::move(h), &err);
  INFO(err);
  REQUIRE(ep > 0);
  REQUIRE(srv.port(ep) > 0);
  return ep;
}

}  // namespace

TEST_CASE("http: GET, POST, PUT, DELETE round trip with query, headers and body") {
  Fx fx;
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;
  std::vector<HttpRequest> seen;
  uint64_t ep = must_listen(srv, echo_handlers(srv, &seen));
  int port = srv.port(ep);

  auto f = std::async(std::launch::async, [port] {
    std::vector<Response> rs;
    rs.push_back(http(port, request("GET", "/hello/world?a=1&b=x%20y&c=%26",
                                    {}, "Authorization: Bearer tok123\r\nConnection: close\r\n")));
    rs.push_back(http(port, request("POST", "/submit", R"({"k":"v"})",
                                    "Content-Type: application/json\r\n")));
    rs.push_back(http(port, request("PUT", "/thing/7", "put-body")));
    rs.push_back(http(port, request("DELETE", "/thing/7", "del")));
    return rs;
  });
  auto rs = L.wait(f);
  REQUIRE(rs.size() == 4);

  CHECK(rs[0].status == 200);
  CHECK(rs[0].headers["content-type"] == "text/plain");
  CHECK(rs[0].headers["x-junction"] == "yes");
  CHECK(rs[0].headers["content-length"] == std::to_string(rs[0].body.size()));
  CHECK(rs[0].body == "GET /hello/world?a=1&b=x%20y&c=%26 ct= auth=Bearer tok123 body=");
  CHECK(rs[1].status == 200);
  CHECK(rs[1].body == R"(POST /submit? ct=application/json auth= body={"k":"v"})");
  CHECK(rs[2].body == "PUT /thing/7? ct= auth= body=put-body");
  CHECK(rs[3].body == "DELETE /thing/7? ct= auth= body=del");

  REQUIRE(seen.size() == 4);
  CHECK(seen[0].endpoint == ep);
  CHECK(seen[0].peer.rfind("127.0.0.1:", 0) == 0);
  CHECK(seen[0].id != seen[1].id);
  CHECK(srv.pending_requests() == 0);
  CHECK(L.run_until([&] { return srv.connections() == 0; }));  // per-connection state freed
  fx.stop_and_close();
}

TEST_CASE("http: keep-alive serves sequential requests on one connection") {
  Fx fx;
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;
  uint64_t ep = must_listen(srv, echo_handlers(srv, nullptr));
  int port = srv.port(ep);
  auto f = std::async(std::launch::async, [port] {
    std::vector<Response> rs;
    int fd = connect_to(port);
    std::string buf;
    for (int i = 0; i < 3; ++i) {
      if (!send_all(fd, request("POST", "/n" + std::to_string(i), "b" + std::to_string(i))))
        break;
      rs.push_back(read_response(fd, buf));
    }
    close(fd);
    return rs;
  });
  auto rs = L.wait(f);
  REQUIRE(rs.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(rs[static_cast<size_t>(i)].status == 200);
    CHECK(rs[static_cast<size_t>(i)].body ==
          "POST /n" + std::to_string(i) + "? ct= auth= body=b" + std::to_string(i));
  }
  fx.stop_and_close();
}

TEST_CASE("http: respond later from a uv timer; 404 from the handler") {
  Fx fx;
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;
  uv_timer_t timer;
  uv_timer_init(&L.loop, &timer);
  struct Ctx {
    HttpServer* srv;
    uint64_t id = 0;
    bool responded = false;
  } ctx{&srv};
  timer.data = &ctx;
  HttpHandlers h;
  h.on_request = [&](const HttpRequest& r) {
    if (r.path == "/missing") {
      srv.respond(r.id, 404, "application/json", R"({"error":"not found"})");
      return;
    }
    ctx.id = r.id;
    uv_timer_start(
        &timer,
        [](uv_timer_t* t) {
          auto* c = static_cast<Ctx*>(t->data);
          c->responded = c->srv->respond(c->id, 201, "application/json", R"({"late":true})");
        },
        150, 0);
  };
  uint64_t ep = must_listen(srv, std::move(h));
  int port = srv.port(ep);

  auto f = std::async(std::launch::async, [port] { return http(port, request("GET", "/slow")); });
  CHECK(L.run_until([&] { return ctx.id != 0; }));
  CHECK(srv.pending_requests() == 1);
  Response r = L.wait(f);
  CHECK(ctx.responded);
  CHECK(r.status == 201);
  CHECK(r.headers["content-type"] == "application/json");
  CHECK(r.body == R"({"late":true})");
  CHECK(srv.pending_requests() == 0);
  CHECK_FALSE(srv.respond(ctx.id, 200, "text/plain", "twice"));  // already answered

  auto f2 = std::async(std::launch::async, [port] { return http(port, request("GET", "/missing")); });
  Response r2 = L.wait(f2);
  CHECK(r2.status == 404);
  CHECK(r2.body == R"({"error":"not found"})");

  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  fx.stop_and_close();
}

TEST_CASE("http: a late answer outlives lws's own idle timeouts") {
  HttpServerOptions opt;
  opt.keepalive_timeout_s = 1;
  opt.lws_timeout_s = 1;
  Fx fx(opt);
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;
  uint64_t id = 0;
  HttpHandlers h;
  h.on_request = [&](const HttpRequest& r) { id = r.id; };
  uint64_t ep = must_listen(srv, std::move(h));
  int port = srv.port(ep);
  auto f = std::async(std::launch::async, [port] { return http(port, request("POST", "/x", "abc")); });
  CHECK(L.run_until([&] { return id != 0; }));
  L.run_for(2500);
  CHECK(srv.respond(id, 200, "text/plain", "finally"));
  Response r = L.wait(f);
  CHECK(r.status == 200);
  CHECK(r.body == "finally");
  fx.stop_and_close();
}

TEST_CASE("http: HEAD, Expect: 100-continue, a throwing handler") {
  Fx fx;
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;
  HttpHandlers h = echo_handlers(srv, nullptr);
  auto inner = h.on_request;
  h.on_request = [inner](const HttpRequest& r) {
    if (r.path == "/throw") throw std::runtime_error("boom");
    inner(r);
  };
  uint64_t ep = must_listen(srv, std::move(h));
  int port = srv.port(ep);
  struct Out {
    Response head, after_head, interim, upload, thrown;
  };
  auto f = std::async(std::launch::async, [port] {
    Out o;
    int fd = connect_to(port);
    std::string buf;
    send_all(fd, request("HEAD", "/h"));
    o.head = read_response(fd, buf, true);
    send_all(fd, request("GET", "/after"));  // same connection
    o.after_head = read_response(fd, buf);
    close(fd);

    fd = connect_to(port);
    buf.clear();
    std::string body(3000, 'u');
    send_all(fd, "POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3000\r\n\r\n");
    o.interim = read_response(fd, buf);  // the server must not wait for the body first
    send_all(fd, body);
    o.upload = read_response(fd, buf);
    close(fd);
    o.thrown = http(port, request("GET", "/throw"));
    return o;
  });
  Out o = L.wait(f);
  CHECK(o.head.status == 200);
  CHECK(o.head.headers["content-length"] == std::to_string(std::string("HEAD /h? ct= auth= body=").size()));
  CHECK(o.after_head.status == 200);
  CHECK(o.after_head.body == "GET /after? ct= auth= body=");
  CHECK(o.interim.status == 100);
  CHECK(o.upload.status == 200);
  CHECK(o.upload.body == "POST /up? ct= auth= body=" + std::string(3000, 'u'));
  CHECK(o.thrown.status == 500);
  CHECK(srv.pending_requests() == 0);
  fx.stop_and_close();
}

TEST_CASE("http: body over the limit gets 413 and never reaches the handler") {
  Fx fx;
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;  // default limit: 1 MiB
  int calls = 0;
  HttpHandlers h = echo_handlers(srv, nullptr);
  auto inner = h.on_request;
  h.on_request = [&calls, inner](const HttpRequest& r) {
    ++calls;
    inner(r);
  };
  uint64_t ep = must_listen(srv, std::move(h));
  int port = srv.port(ep);
  auto f = std::async(std::launch::async, [port] {
    std::vector<Response> rs;
    rs.push_back(http(port, request("POST", "/big", std::string((1u << 20) + 1, 'x'))));
    rs.push_back(http(port, request("POST", "/fits", std::string(1u << 20, 'y'))));
    return rs;
  });
  auto rs = L.wait(f);
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 413);
  CHECK(rs[0].headers["content-type"] == "application/json");
  CHECK(rs[0].body == R"({"error":"body too large"})");
  CHECK(rs[1].status == 200);
  CHECK(rs[1].body.size() == std::string("POST /fits? ct= auth= body=").size() + (1u << 20));
  CHECK(calls == 1);
  fx.stop_and_close();
}

TEST_CASE("http: client leaving before the answer drops the request") {
  Fx fx;
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;
  std::atomic<bool> got{false};
  uint64_t id = 0;
  HttpHandlers h;
  h.on_request = [&](const HttpRequest& r) {
    id = r.id;
    got = true;
  };
  uint64_t ep = must_listen(srv, std::move(h));
  int port = srv.port(ep);
  auto f = std::async(std::launch::async, [port, &got] {
    int fd = connect_to(port);
    bool ok = send_all(fd, request("POST", "/wait", "payload"));
    for (int i = 0; i < 5000 && !got; ++i) std::this_thread::sleep_for(1ms);
    close(fd);
    return ok;
  });
  CHECK(L.wait(f));
  CHECK(L.run_until([&] { return srv.pending_requests() == 0; }));
  CHECK_FALSE(srv.respond(id, 200, "text/plain", "too late"));
  CHECK(L.run_until([&] { return srv.connections() == 0; }));
  fx.stop_and_close();
}

TEST_CASE("http: unanswered request gets 504 after the timeout") {
  HttpServerOptions opt;
  opt.request_timeout_ms = 200;
  Fx fx(opt);
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;
  uint64_t id = 0;
  HttpHandlers h;
  h.on_request = [&](const HttpRequest& r) { id = r.id; };
  uint64_t ep = must_listen(srv, std::move(h));
  int port = srv.port(ep);
  auto t0 = std::chrono::steady_clock::now();
  auto f = std::async(std::launch::async, [port] { return http(port, request("GET", "/never")); });
  Response r = L.wait(f);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - t0)
                .count();
  CHECK(r.status == 504);
  CHECK(ms >= 150);
  CHECK(srv.pending_requests() == 0);
  CHECK_FALSE(srv.respond(id, 200, "text/plain", "late"));
  fx.stop_and_close();
}

TEST_CASE("http: two endpoints on two ports; bad and busy addresses; close_endpoint") {
  Fx fx;
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;
  auto tagged = [&srv](std::string tag) {
    HttpHandlers h;
    h.on_request = [&srv, tag](const HttpRequest& r) {
      srv.respond(r.id, 200, "text/plain", tag + ":" + r.path);
    };
    return h;
  };
  uint64_t a = must_listen(srv, tagged("A"));
  uint64_t b = must_listen(srv, tagged("B"));
  CHECK(a != b);
  int pa = srv.port(a), pb = srv.port(b);
  CHECK(pa != pb);

  std::string err;
  CHECK(srv.listen("127.0.0.1:" + std::to_string(pa), "", tagged("C"), &err) == 0);
  CHECK(err == "address in use");
  // A port held by another socket (not ours).
  int busy = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(busy, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::listen(busy, 1) == 0);
  socklen_t sl = sizeof sa;
  getsockname(busy, reinterpret_cast<sockaddr*>(&sa), &sl);
  err.clear();
  CHECK(srv.listen("127.0.0.1:" + std::to_string(ntohs(sa.sin_port)), "", tagged("D"), &err) == 0);
  CHECK(err == "address in use");
  close(busy);
  err.clear();
  CHECK(srv.listen("not-an-ip:80", "", tagged("E"), &err) == 0);
  CHECK(!err.empty());
  err.clear();
  CHECK(srv.listen("127.0.0.1:99999", "", tagged("E"), &err) == 0);
  CHECK(!err.empty());

  auto f = std::async(std::launch::async, [pa, pb] {
    return std::make_pair(http(pa, request("GET", "/x")), http(pb, request("GET", "/y")));
  });
  auto [ra, rb] = L.wait(f);
  CHECK(ra.body == "A:/x");
  CHECK(rb.body == "B:/y");

  srv.close_endpoint(a);
  CHECK(srv.port(a) == -1);
  L.run_for(50);
  auto f2 = std::async(std::launch::async, [pa, pb] {
    int fd = connect_to(pa);
    bool refused = fd < 0;
    if (fd >= 0) close(fd);
    return std::make_pair(refused, http(pb, request("GET", "/still")));
  });
  auto [refused, rb2] = L.wait(f2);
  CHECK(refused);
  CHECK(rb2.body == "B:/still");

  // Endpoints can be opened again at run time (same port, now free).
  err.clear();
  uint64_t c = srv.listen("127.0.0.1:" + std::to_string(pa), "", tagged("C"), &err);
  INFO(err);
  CHECK(c > 0);
  if (c) {
    auto f3 = std::async(std::launch::async, [pa] { return http(pa, request("GET", "/again")); });
    CHECK(L.wait(f3).body == "C:/again");
  }
  fx.stop_and_close();
}

struct WsLog {
  struct Ev {
    uint64_t conn;
    int type;
    std::string data;
  };
  std::vector<Ev> events;
  int count(int type) const {
    int n = 0;
    for (auto& e : events) n += e.type == type;
    return n;
  }
};

HttpHandlers ws_echo(HttpServer& srv, WsLog* log, uint64_t* ep_seen) {
  HttpHandlers h = echo_handlers(srv, nullptr);
  h.on_ws = [&srv, log, ep_seen](uint64_t conn, uint64_t ep, int type, std::string_view data,
                                 const std::string& peer) {
    *ep_seen = ep;
    log->events.push_back({conn, type, std::string(data)});
    CHECK(peer.rfind("127.0.0.1:", 0) == 0);
    if (type == JN_WS_TEXT && data == "close-me") {
      CHECK(srv.ws_send(conn, "bye", false));
      CHECK(srv.ws_close(conn));
      CHECK_FALSE(srv.ws_send(conn, "after close", false));
    } else if (type == JN_WS_TEXT || type == JN_WS_BINARY) {
      CHECK(srv.ws_send(conn, data, type == JN_WS_BINARY));
    }
  };
  return h;
}

TEST_CASE("websocket: handshake, fragmented text echo, binary echo, server-initiated close") {
  Fx fx;
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;
  WsLog log;
  uint64_t ep_seen = 0;
  uint64_t ep = must_listen(srv, ws_echo(srv, &log, &ep_seen), "/ws");
  int port = srv.port(ep);

  struct Out {
    bool opened = false;
    std::string accept, proto;
    int op0 = -1, op1 = 0, op2 = 0, op3 = 0, op4 = 0;
    std::string m0 = "x", m1, m2, m3, m4;
    bool eof = false;
    Response plain;
  };
  std::string big(70000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  auto f = std::async(std::launch::async, [port, big] {
    Out o;
    WsClient c;
    o.opened = c.open(port, "/ws?token=abc");
    if (!o.opened) return o;
    o.accept = c.handshake.headers["sec-websocket-accept"];
    o.proto = c.handshake.headers["sec-websocket-protocol"];
    c.send_frame(0x1, "hello ", false);  // text, not final
    c.send_frame(0x0, "world", true);    // continuation, final
    c.read_frame(&o.op1, &o.m1);
    c.send_frame(0x2, big);
    c.read_frame(&o.op2, &o.m2);
    c.send_frame(0x1, "");  // an empty message is a message too
    c.read_frame(&o.op0, &o.m0);
    c.send_frame(0x1, "close-me");
    c.read_frame(&o.op3, &o.m3);  // "bye"
    c.read_frame(&o.op4, &o.m4);  // close frame
    c.send_frame(0x8, o.m4.substr(0, 2));
    o.eof = c.wait_eof();
    o.plain = http(port, request("GET", "/ws"));  // no upgrade: plain HTTP on the ws path
    return o;
  });
  Out o = L.wait(f);
  REQUIRE(o.opened);
  CHECK(o.accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  CHECK(o.proto.empty());
  CHECK(o.op1 == 0x1);
  CHECK(o.m1 == "hello world");
  CHECK(o.op2 == 0x2);
  CHECK(o.m2 == big);
  CHECK(o.op0 == 0x1);
  CHECK(o.m0.empty());
  CHECK(o.op3 == 0x1);
  CHECK(o.m3 == "bye");
  CHECK(o.op4 == 0x8);
  REQUIRE(o.m4.size() >= 2);
  CHECK(((static_cast<unsigned char>(o.m4[0]) << 8) | static_cast<unsigned char>(o.m4[1])) == 1000);
  CHECK(o.eof);
  CHECK(o.plain.status == 200);

  CHECK(L.run_until([&] { return log.count(JN_WS_CLOSED) == 1; }));
  CHECK(ep_seen == ep);
  REQUIRE(log.events.size() == 6);
  CHECK(log.events[0].type == JN_WS_OPEN);
  CHECK(log.events[1].type == JN_WS_TEXT);
  CHECK(log.events[1].data == "hello world");
  CHECK(log.events[2].type == JN_WS_BINARY);
  CHECK(log.events[2].data == big);
  CHECK(log.events[3].type == JN_WS_TEXT);
  CHECK(log.events[3].data.empty());
  CHECK(log.events[4].data == "close-me");
  CHECK(log.events[5].type == JN_WS_CLOSED);
  for (auto& e : log.events) CHECK(e.conn == log.events[0].conn);
  CHECK(srv.ws_connections() == 0);
  CHECK(L.run_until([&] { return srv.connections() == 0; }));
  CHECK_FALSE(srv.ws_send(log.events[0].conn, "gone", false));
  CHECK_FALSE(srv.ws_close(log.events[0].conn));
  fx.stop_and_close();
}

TEST_CASE("websocket: any subprotocol is accepted; other paths are refused") {
  Fx fx;
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;
  WsLog log;
  uint64_t ep_seen = 0;
  uint64_t ep = must_listen(srv, ws_echo(srv, &log, &ep_seen), "/sig");
  uint64_t no_ws = must_listen(srv, echo_handlers(srv, nullptr));  // no ws_path
  int port = srv.port(ep), port2 = srv.port(no_ws);
  struct Out {
    bool sip = false, other = false, wrong_path = true, no_ws = true;
    int wrong_status = 0, no_ws_status = 0;
    bool client_close_answered = false;
    std::string sip_proto, other_proto, echo;
  };
  auto f = std::async(std::launch::async, [port, port2] {
    Out o;
    {
      WsClient c;
      o.sip = c.open(port, "/sig", "sip");
      o.sip_proto = c.handshake.headers["sec-websocket-protocol"];
      int op = 0;
      c.send_frame(0x1, "ping?");
      c.read_frame(&op, &o.echo);
      c.send_frame(0x8, std::string("\x03\xe8", 2));  // client-initiated close
      std::string why;
      o.client_close_answered = c.read_frame(&op, &why) && op == 0x8 && c.wait_eof();
    }
    {
      WsClient c;
      o.other = c.open(port, "/sig", "x-custom.v2, json");
      o.other_proto = c.handshake.headers["sec-websocket-protocol"];
    }
    {
      WsClient c;
      o.wrong_path = c.open(port, "/elsewhere");
      o.wrong_status = c.handshake.status;
    }
    {
      WsClient c;
      o.no_ws = c.open(port2, "/sig");
      o.no_ws_status = c.handshake.status;
    }
    return o;
  });
  Out o = L.wait(f);
  CHECK(o.sip);
  CHECK(o.sip_proto == "sip");
  CHECK(o.echo == "ping?");
  CHECK(o.client_close_answered);
  CHECK(o.other);
  CHECK(o.other_proto == "x-custom.v2");
  CHECK_FALSE(o.wrong_path);
  CHECK(o.wrong_status == 404);
  CHECK_FALSE(o.no_ws);
  CHECK(o.no_ws_status == 404);
  CHECK(L.run_until([&] { return log.count(JN_WS_CLOSED) == 2; }));
  CHECK(log.count(JN_WS_OPEN) == 2);
  fx.stop_and_close();
}

TEST_CASE("websocket: oversized message closes with 1009; client drop and stop() each close once") {
  HttpServerOptions opt;
  opt.max_ws_message = 1000;
  Fx fx(opt);
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;
  WsLog log;
  uint64_t ep_seen = 0;
  uint64_t ep = must_listen(srv, ws_echo(srv, &log, &ep_seen), "/ws");
  int port = srv.port(ep);

  // 1) too large (in fragments): close 1009, CLOSED once.
  auto f = std::async(std::launch::async, [port] {
    WsClient c;
    if (!c.open(port, "/ws")) return -1;
    c.send_frame(0x1, std::string(600, 'a'), false);
    c.send_frame(0x0, std::string(600, 'b'), true);
    int op = 0;
    std::string m;
    if (!c.read_frame(&op, &m) || op != 0x8 || m.size() < 2) return -2;
    return (static_cast<unsigned char>(m[0]) << 8) | static_cast<unsigned char>(m[1]);
  });
  CHECK(L.wait(f) == 1009);
  CHECK(L.run_until([&] { return log.count(JN_WS_CLOSED) == 1; }));
  CHECK(log.count(JN_WS_TEXT) == 0);

  // 2) the client just drops the TCP connection.
  auto f2 = std::async(std::launch::async, [port] {
    WsClient c;
    return c.open(port, "/ws");
  });
  CHECK(L.wait(f2));
  CHECK(L.run_until([&] { return log.count(JN_WS_CLOSED) == 2; }));

  // 3) open when the server stops: CLOSED delivered by stop(), client sees EOF.
  std::atomic<bool> opened{false};
  auto f3 = std::async(std::launch::async, [port, &opened] {
    WsClient c;
    if (!c.open(port, "/ws")) return false;
    opened = true;
    return c.wait_eof();
  });
  CHECK(L.run_until([&] { return opened && srv.ws_connections() == 1; }));
  CHECK(log.count(JN_WS_OPEN) == 3);
  bool done = false;
  fx.stopped = true;
  srv.stop([&] { done = true; });
  CHECK(log.count(JN_WS_CLOSED) == 3);
  CHECK(L.run_until([&] { return done; }));
  CHECK(f3.get());
  CHECK(uv_run(&L.loop, UV_RUN_DEFAULT) == 0);
  CHECK(uv_loop_close(&L.loop) == 0);
}

TEST_CASE("http: stop() with a pending request and from inside a handler") {
  Fx fx;
  Loop& L = fx.L;
  HttpServer& srv = *fx.srv;
  bool done = false;
  uint64_t pending = 0;
  HttpHandlers h;
  h.on_request = [&](const HttpRequest& r) {
    if (r.path == "/stop") {
      srv.respond(r.id, 200, "text/plain", "stopping");
      srv.stop([&] { done = true; });  // deferred: we are inside lws
      return;
    }
    pending = r.id;
  };
  uint64_t ep = must_listen(srv, std::move(h));
  int port = srv.port(ep);
  fx.stopped = true;
  std::atomic<bool> first_sent{false};
  auto f = std::async(std::launch::async, [port, &first_sent] {
    int fd = connect_to(port);  // stays pending
    send_all(fd, request("GET", "/hang"));
    first_sent = true;
    std::string buf;
    Response hang = read_response(fd, buf);  // EOF when the server stops
    close(fd);
    return hang;
  });
  CHECK(L.run_until([&] { return pending != 0; }));
  auto f2 = std::async(std::launch::async, [port] { return http(port, request("GET", "/stop")); });
  CHECK(L.run_until([&] { return done; }));
  CHECK_FALSE(srv.respond(pending, 200, "text/plain", "x"));
  CHECK(L.wait(f).status == 0);
  (void)f2.get();  // the /stop answer may or may not make it out before the teardown
  CHECK(uv_run(&L.loop, UV_RUN_DEFAULT) == 0);
  CHECK(uv_loop_close(&L.loop) == 0);
}

TEST_CASE("http: stop() without endpoints; nothing works after stop") {
  Loop L;
  auto srv = std::make_unique<HttpServer>(&L.loop);
  int calls = 0;
  srv->stop([&] { ++calls; });
  srv->stop([&] { ++calls; });  // a second stop() while stopping: also called once
  CHECK(L.run_until([&] { return calls == 2; }));
  std::string err;
  CHECK(srv->listen("127.0.0.1:0", "", HttpHandlers{}, &err) == 0);
  CHECK(!err.empty());
  CHECK_FALSE(srv->respond(1, 200, "text/plain", "x"));
  srv->stop([&] { ++calls; });  // already stopped: called at once
  CHECK(calls == 3);
  srv.reset();
  { HttpServer unused(&L.loop); }  // never listened: may go without stop()
  CHECK(uv_run(&L.loop, UV_RUN_DEFAULT) == 0);
  CHECK(uv_loop_close(&L.loop) == 0);
}

// ---- limits and binding ([limits] http_*) -----------------------------------------------------

namespace {
int connect_from_to(const char* to_ip, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, to_ip, &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}
}  // namespace

TEST_CASE("http: an endpoint on 127.0.0.1 does not answer on another address") {
  Fx fx;
  HttpServer& srv = *fx.srv;
  uint64_t ep = must_listen(srv, echo_handlers(srv, nullptr));
  int port = srv.port(ep);
  // lws 4.1 bound vi.iface = 127.0.0.1 to [::] (every interface); the core binds it itself now.
  auto f = std::async(std::launch::async, [port] { return connect_from_to("127.0.0.2", port); });
  CHECK(fx.L.wait(f) == -ECONNREFUSED);
  auto g = std::async(std::launch::async, [port] { return http(port, request("GET", "/a")).status; });
  CHECK(fx.L.wait(g) == 200);
  std::string err;
  CHECK(srv.listen("no.such.host.invalid:0", "", echo_handlers(srv, nullptr), &err) == 0);
  CHECK(err.find("cannot resolve") != std::string::npos);
  fx.stop_and_close();
}

TEST_CASE("http: a second connection from one address over max_conns_per_ip gets a JSON 429") {
  HttpServerOptions o;
  o.max_conns_per_ip = 1;
  Fx fx(o);
  HttpServer& srv = *fx.srv;
  uint64_t ep = must_listen(srv, echo_handlers(srv, nullptr));
  int port = srv.port(ep);
  auto f = std::async(std::launch::async, [port] {
    int held = connect_to(port);  // holds 127.0.0.1's one place (its head never comes)
    Response r = http(port, request("GET", "/second"));
    close(held);
    return r;
  });
  Response r = fx.L.wait(f);
  CHECK(r.status == 429);
  CHECK(r.headers["content-type"] == "application/json");
  CHECK(r.body == R"({"error":"too many connections from your address"})");
  CHECK(srv.refused(HttpRefusal::kIpLimit) == 1);
  fx.stop_and_close();
}

TEST_CASE("http: a request head over max_header_bytes gets a JSON 431 (lws alone hangs up)") {
  HttpServerOptions o;
  o.max_header_bytes = 1024;
  Fx fx(o);
  HttpServer& srv = *fx.srv;
  uint64_t ep = must_listen(srv, echo_handlers(srv, nullptr));
  int port = srv.port(ep);
  auto f = std::async(std::launch::async, [port] {
    std::vector<Response> rs;
    rs.push_back(http(port, request("GET", "/h", {}, "X-Pad: " + std::string(2000, 'a') + "\r\n")));
    rs.push_back(http(port, request("GET", "/h", {}, "X-Pad: " + std::string(900, 'a') + "\r\n")));
    return rs;
  });
  auto rs = fx.L.wait(f);
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].status == 431);
  CHECK(rs[0].body == R"({"error":"request header too large"})");
  CHECK(rs[1].status == 200);
  CHECK(srv.refused(HttpRefusal::kHeaderTooLarge) == 1);
  fx.stop_and_close();
}

TEST_CASE("http: a request head that never completes gets a JSON 408 and frees its place") {
  HttpServerOptions o;
  o.lws_timeout_s = 1;  // also the head timeout
  o.max_conns_per_ip = 1;
  Fx fx(o);
  HttpServer& srv = *fx.srv;
  uint64_t ep = must_listen(srv, echo_handlers(srv, nullptr));
  int port = srv.port(ep);
  auto f = std::async(std::launch::async, [port] {
    std::vector<Response> rs;
    int fd = connect_to(port);
    std::string buf;
    send_all(fd, "GET /slow HTTP/1.1\r\nHost: x\r\n");  // and nothing more
    rs.push_back(read_response(fd, buf));
    close(fd);
    return rs;
  });
  auto rs = fx.L.wait(f);
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].status == 408);
  CHECK(rs[0].body == R"({"error":"request header timeout"})");
  CHECK(srv.refused(HttpRefusal::kHeaderTimeout) == 1);
  // Its place is free: the next connection from the same address is served.
  auto g = std::async(std::launch::async, [port] { return http(port, request("GET", "/next")).status; });
  CHECK(fx.L.wait(g) == 200);
  fx.stop_and_close();
}
