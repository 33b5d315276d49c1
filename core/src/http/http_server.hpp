// HttpServer: the core's HTTP and WebSocket endpoints, served by libwebsockets (4.1) running
// as a guest on the core's libuv loop ("foreign loop"). Each listen() is its own lws context
// (one vhost, one listening socket) with its own handlers.
//
// Threading: everything (including every handler call) happens on the loop thread.
// Re-entrancy: handlers may call any method, including close_endpoint() and stop(); the
// lws-level work of those two is deferred to a loop callback when called from inside lws.
//
// Link: libwebsockets + libuv (pkg-config libwebsockets libuv). At run time lws 4.1 loads its
// libuv glue as a plugin: /usr/lib/x86_64-linux-gnu/libwebsockets-evlib_uv.so (Debian package
// libwebsockets-evlib-uv).
#pragma once

#include <junction/abi.h>

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

struct lws;
struct lws_context;
struct lws_vhost;

namespace junction {

struct HttpRequest {
  uint64_t id = 0;        // answer with HttpServer::respond(id, ...)
  uint64_t endpoint = 0;  // the listen() id
  std::string method;     // "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"
  std::string path;       // percent-decoded by lws, without the query string
  std::string query;      // without '?'; "k=v&k2=v2", each part re-percent-encoded
  std::string body;
  std::string content_type;
  std::string authorization;  // the Authorization header, empty if none
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names (see all_headers)
  std::string peer;           // "ip:port" ("[v6]:port" for IPv6)
};

// A WebSocket upgrade request, before the 101: what a plugin decides on (Origin, subprotocols).
struct WsUpgrade {
  uint64_t conn = 0;  // the id the connection keeps once open
  uint64_t endpoint = 0;
  std::string path, query, peer;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::vector<std::string> offered;  // Sec-WebSocket-Protocol, in the client's order
  std::string subprotocol;           // the one accepted ("" = none)
};
struct WsDecision {
  int status = 101;         // 101 accepts; 4xx/5xx refuses with that HTTP status
  std::string subprotocol;  // with 101: one of the offered, or "" (the first offered is used
                            // when the client offered some and nobody chose)
};

struct HttpHandlers {
  // Must lead to respond(id, ...) now or later (else the server answers 504 after the timeout).
  std::function<void(const HttpRequest&)> on_request;
  // type: JN_WS_OPEN / JN_WS_TEXT / JN_WS_BINARY / JN_WS_CLOSED (exactly once per connection).
  std::function<void(uint64_t conn, uint64_t endpoint, int type, std::string_view data,
                     const std::string& peer)>
      on_ws;
  // Called before a WebSocket upgrade is accepted (synchronously); unset = accept.
  std::function<WsDecision(const WsUpgrade&)> on_ws_upgrade;
};

struct HttpServerOptions {
  size_t max_body = 1u << 20;        // larger request bodies get 413 {"error":"body too large"}
  size_t max_ws_message = 1u << 20;  // larger reassembled messages close the WS with 1009
  size_t max_ws_queue = 16u << 20;   // bytes queued per WS connection before ws_send refuses
  uint32_t request_timeout_ms = 30000;  // unanswered requests get 504
  int keepalive_timeout_s = 15;         // idle HTTP/1.1 keep-alive connections are closed
  unsigned lws_timeout_s = 20;          // lws's own network round-trip timeouts (body upload...)
  // Connection limits, checked at accept before lws sees the socket (0 = none). A refused
  // connection gets a JSON 503 (endpoint full, fds short) or 429 (its address has too many).
  uint32_t max_conns_per_endpoint = 1024;
  uint32_t max_conns_per_ip = 64;
  uint32_t fd_reserve = 64;           // accepts stop this many fds short of RLIMIT_NOFILE
  uint32_t max_header_bytes = 8192;   // request line + headers; larger gets 431
};

// Why a connection or request was turned away (counted; see HttpServer::refused()).
enum class HttpRefusal { kEndpointLimit, kIpLimit, kFdLimit, kFdExhausted, kHeaderTooLarge, kHeaderTimeout, kBodyTooLarge, kCount };
const char* http_refusal_name(HttpRefusal r);  // "endpoint_limit", "ip_limit", ...

class HttpServer {
 public:
  explicit HttpServer(uv_loop_t* loop);  // nothing listens yet; lws contexts come with listen()
  HttpServer(uv_loop_t* loop, HttpServerOptions options);
  ~HttpServer();  // asserts stop() completed (unless listen() was never called)
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Opens a listening endpoint (its own lws context + vhost) on "ip:port", "[ipv6]:port",
  // "name:port" (resolved now; the first address), ":port" or "*:port" (every interface, IPv4
  // and IPv6); "0.0.0.0:port" is IPv4 only, "[::]:port" IPv6 only. port 0 = any: read it back
  // with port(). The socket is bound to exactly that address. ws_path empty = no WebSocket. Returns an endpoint id > 0, or 0
  // with *error set ("address in use", ...). Never throws.
  // use_fd_reserve = false: this endpoint may take the fds that fd_reserve keeps free (the
  // admin API, so that the operator still gets in during a connection flood).
  // tls_cert/tls_key (PEM files, both or neither): the endpoint serves HTTPS and WSS only.
  uint64_t listen(std::string_view addr, std::string_view ws_path, HttpHandlers handlers,
                  std::string* error, bool use_fd_reserve = true, std::string_view tls_cert = {},
                  std::string_view tls_key = {});
  int port(uint64_t endpoint) const;  // -1 if unknown / closed

  // false if the request is gone (client left, already answered, timed out).
  bool respond(uint64_t request_id, int status, std::string_view content_type,
               std::string_view body,
               std::vector<std::pair<std::string, std::string>> extra_headers = {});
  bool ws_send(uint64_t conn, std::string_view data, bool binary);
  // The upgrade request of an open WebSocket connection (path, headers, subprotocol), or nullptr.
  const WsUpgrade* upgrade_of(uint64_t conn) const;  // queued, sent in order
  bool ws_close(uint64_t conn);  // flushes the queue, then a close frame (1000)
  void close_endpoint(uint64_t endpoint);  // closes the listener and its connections
  // Async: destroys every endpoint's lws context; calls done once every lws/uv handle it
  // created is closed (at once if listen() was never called). Pending requests are dropped;
  // open WebSockets get JN_WS_CLOSED.
  void stop(std::function<void()> done);

  size_t pending_requests() const { return requests_.size(); }
  size_t ws_connections() const { return ws_.size(); }
  size_t connections() const { return conns_.size(); }  // HTTP + WS connections known
  uint64_t refused(HttpRefusal r) const { return refused_[static_cast<size_t>(r)]; }

  // Endpoints are separate lws contexts (see http_server.cpp); a closed endpoint's context
  // is torn down in two phases on the loop before its memory is released.
 private:
  struct Endpoint;
  struct Conn;
  struct Pending;
  enum class State { kRunning, kStopping, kClosing, kStopped };

  friend struct HttpServerGlue;
  void open_timer();
  static void on_timer(uv_timer_t* t);
  static void on_timer_closed(uv_handle_t* h);

  int callback(Endpoint* ep, lws* wsi, int reason, void* user, void* in, size_t len);
  int on_http(lws* wsi, Endpoint* ep);
  int on_http_body(lws* wsi, const char* data, size_t len);
  int on_http_body_done(lws* wsi);
  int on_http_writeable(lws* wsi);
  int on_confirm_upgrade(lws* wsi, Endpoint* ep);
  int on_ws_established(lws* wsi, Endpoint* ep);
  int on_ws_receive(lws* wsi, const char* data, size_t len);
  int on_ws_writeable(lws* wsi);
  void on_wsi_gone(lws* wsi, bool destroy);

  Conn* conn_of(lws* wsi) const;
  Conn* new_conn(lws* wsi, Endpoint* ep);
  void dispatch_request(Conn* c);
  void queue_response(Conn* c, int status, std::string_view content_type, std::string_view body,
                      std::vector<std::pair<std::string, std::string>> headers, bool close_after);
  void deliver_ws_closed(Conn* c);
  void accept_ready(Endpoint* ep);
  void head_ready(Pending* p, bool peer_done);  // peer_done: the client half-closed (UV_DISCONNECT)
  void adopt_pending(Pending* p);
  void drop_pending(Pending* p, HttpRefusal* why);
  void uncount(Endpoint* ep, const std::string& ip);
  bool shed_one(Endpoint* ep);
  void refuse_conn(Endpoint* ep, int fd, HttpRefusal why, const std::string& ip);
  void count(HttpRefusal r) { ++refused_[static_cast<size_t>(r)]; }
  void close_listener(Endpoint* ep);
  void retire(std::unique_ptr<Endpoint> ep);
  void begin_destroy(Endpoint* ep);
  bool lws_handles_left(const lws_context* ctx) const;
  void purge_conns(const Endpoint* ep);
  void schedule();
  void tick();
  void finish_stop();

  uv_loop_t* loop_;
  HttpServerOptions opt_;
  uv_timer_t timer_{};
  bool timer_open_ = false;  // the timer is our only handle; opened by the first listen()
  State state_ = State::kRunning;
  int depth_ = 0;  // > 0 while inside an lws callback
  uint64_t next_id_ = 1;
  std::vector<std::function<void()>> done_;

  std::unordered_map<uint64_t, std::unique_ptr<Endpoint>> endpoints_;  // listening
  std::vector<std::unique_ptr<Endpoint>> dying_;  // contexts being torn down
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::unordered_map<uint64_t, Conn*> requests_;         // awaiting respond()
  std::unordered_map<uint64_t, Conn*> ws_;               // open WebSockets
  std::deque<std::pair<uint64_t, uint64_t>> deadlines_;  // (uv_now ms, request id), FIFO
  uint64_t refused_[static_cast<size_t>(HttpRefusal::kCount)] = {};
  // Accepted sockets whose request head is still arriving (see head_ready).
  std::unordered_map<Pending*, std::unique_ptr<Pending>> pending_;
  std::string head_buf_;  // MSG_PEEK scratch, max_header_bytes + 1
  uint64_t pipelined_body_closes_ = 0;  // see on_http_body_done
};

}  // namespace junction
