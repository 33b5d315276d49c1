// Server-side HTTP request handling, end to end: the bytes are what a client sends on a TCP
// connection to a real junction Server (core/src/server) running on its own thread, so they go
// through the HttpServer's accept and head peek (http_server.cpp), libwebsockets' parser, the
// request/WebSocket glue, and the admin API's auth, routing and JSON bodies (admin_api.cpp).
//
// Byte 0 picks the endpoint: even = the admin API (bearer token kToken; the seeds carry it),
// odd = a second endpoint on the same HttpServer with WebSocket upgrades on /ws, whose handlers
// echo (a request gets 200 with what the server parsed; a WebSocket message comes back; the
// text "close" closes). The rest is sent as is, then the client half-closes and reads until the
// server closes. One server for the whole run (started on the first input): per input one
// loopback connection, no process or server start.
//
// Invariants (abort = a finding):
//  - the server closes a half-closed connection promptly (kCloseWithinS): no input leaves it
//    waiting, or spinning, on a client that cannot send anything more;
//  - whatever the server sends starts with an HTTP/1.x status line;
//  - the admin API never answers 500 (its handler threw on a client's input);
//  - the server keeps accepting connections.
#include "config/config.hpp"
#include "http/http_server.hpp"
#include "server/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

namespace {

constexpr const char* kToken = "fuzz-http-request-token-0123456789abcdef";  // >= 32 characters
constexpr int kCloseWithinS = 3;  // under run_all.py's -timeout=5

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_http_request: %s\n", what);
  std::abort();
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    fail("cannot find a free loopback port");
  close(fd);
  return ntohs(a.sin_port);
}

// A connected blocking client socket with kCloseWithinS timeouts, or -1 (refused).
int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket()");
  timeval tv{kCloseWithinS, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Close with a reset: no TIME_WAIT per input (thousands of inputs a second would use up the
  // ephemeral ports). The server has closed its side by then.
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

struct Harness {
  std::string dir;
  std::unique_ptr<junction::Server> server;
  std::thread loop;
  int admin_port = 0;
  int app_port = 0;
};

// The app endpoint's handlers: run on the server's loop thread.
junction::HttpHandlers echo_handlers(junction::HttpServer& http) {
  junction::HttpHandlers h;
  h.on_request = [&http](const junction::HttpRequest& r) {
    nlohmann::json j = {{"method", r.method},
                        {"path", r.path},
                        {"query", r.query},
                        {"body_bytes", r.body.size()},
                        {"content_type", r.content_type},
                        {"headers", r.headers.size()}};
    http.respond(r.id, 200, "application/json", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                 {{"X-Echo", "1"}});
  };
  h.on_ws = [&http](uint64_t conn, uint64_t, int type, std::string_view data, const std::string&) {
    if (type != JN_WS_TEXT && type != JN_WS_BINARY) return;
    if (data == "close") {
      http.ws_close(conn);
      return;
    }
    http.ws_send(conn, data, type == JN_WS_BINARY);
  };
  h.on_ws_upgrade = [](const junction::WsUpgrade& u) {
    junction::WsDecision d;
    if (u.query.find("refuse") != std::string::npos) d.status = 403;
    for (const auto& p : u.offered)
      if (p == "echo") d.subprotocol = p;
    return d;
  };
  return h;
}

std::string& the_dir() {
  static std::string dir;
  return dir;
}

Harness* start() {
  auto* hx = new Harness;  // lives for the process (the server thread never stops)
  char tmpl[] = "/tmp/fuzz-http-request-XXXXXX";
  if (!mkdtemp(tmpl)) fail("mkdtemp");
  hx->dir = tmpl;
  // The server runs until the process exits (its thread is never joined); its files go then.
  // the_dir() is set first: a static constructed after the atexit registration would be
  // destroyed before the handler runs.
  the_dir() = hx->dir;
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(the_dir(), ec);
  });
  hx->admin_port = free_port();
  std::string conf_path = hx->dir + "/junction.toml";
  {
    std::ofstream out(conf_path);
    out << "[server]\nlog_level = \"error\"\nstate_dir = \"" << hx->dir << "/var\"\nmedia_loops = 0\n"
        << "[admin]\nlisten = \"127.0.0.1:" << hx->admin_port << "\"\ntoken = \"" << kToken << "\"\n"
        << "[plugins]\ndir = \"" << hx->dir << "\"\nconf_dir = \"" << hx->dir << "\"\nenabled = []\n";
  }
  junction::CoreConfig conf;
  try {
    conf = junction::load_config(conf_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_http_request: conf: %s\n", e.what());
    std::abort();
  }
  hx->server = std::make_unique<junction::Server>(conf);
  // The second endpoint, opened before the loop thread starts (nothing runs on the loop yet).
  junction::HttpServer& http = hx->server->services().http;
  std::string error;
  uint64_t ep = http.listen("127.0.0.1:0", "/ws", echo_handlers(http), &error);
  if (!ep) fail(("app endpoint: " + error).c_str());
  hx->app_port = http.port(ep);
  hx->loop = std::thread([s = hx->server.get()] { s->run(); });
  hx->loop.detach();
  // Ready once the admin API accepts (run() opens it first thing).
  for (int i = 0; i < 5000; ++i) {
    int fd = connect_to(hx->admin_port);
    if (fd >= 0) {
      close(fd);
      return hx;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // startup only, not per input
  }
  fail("the admin API never started listening");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness* hx = start();
  if (size < 1) return 0;
  const bool admin = (data[0] & 1) == 0;
  int fd = connect_to(admin ? hx->admin_port : hx->app_port);
  if (fd < 0) fail("the server stopped accepting connections");
  const char* p = reinterpret_cast<const char*>(data + 1);
  size_t left = size - 1;
  while (left > 0) {
    ssize_t n = send(fd, p, left, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server closed early (431, 413, a bad request): read its answer
    p += n;
    left -= static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string reply;
  char buf[16384];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      if (reply.size() < 64) reply.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) fail("the server kept a half-closed connection open");
    if (n < 0 && errno == EINTR) continue;
    break;  // 0: closed; ECONNRESET: closed with data unread
  }
  close(fd);
  const std::string_view status_line("HTTP/1.");
  if (!reply.empty() && std::string_view(reply).substr(0, status_line.size()) != status_line.substr(0, std::min(reply.size(), status_line.size())))
    fail("the server sent something that is not an HTTP/1.x response");
  if (admin && reply.compare(0, 13, "HTTP/1.1 500 ") == 0) fail("the admin API answered 500 (its handler threw)");
  return 0;
}
