// HttpClient: outbound HTTP/1.1 requests (webhooks, status callbacks) over libuv TCP, with
// HTTPS through OpenSSL memory BIOs driven by the uv stream. One connection per request
// ("Connection: close"); names resolved through the core's DnsResolver.
//
// Threading: one client per loop; every method and callback runs on that loop's thread.
// Callbacks: never from inside request(); exactly once per accepted request unless cancel()ed
// or stop()ped first. A callback may call request(), cancel() and stop().
// TLS: SNI and hostname (or IP) verification against the system CA store
// (SSL_CTX_set_default_verify_paths), or against the request's ca_file alone; a failed
// verification is an error, never a silent pass. TLS 1.2 at least.
// Ownership: the client owns its uv handles (freed in close callbacks); stop(done) must complete
// before destruction (the destructor asserts it), and before the DnsResolver's stop.
#pragma once

#include "net/dns_resolver.hpp"
#include "net/http_response_parser.hpp"

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string_view>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;

namespace junction {

struct HttpClientRequest {
  std::string method = "GET";  // a token: GET, POST, PUT, PATCH, DELETE, HEAD, ...
  std::string url;             // http://host[:port]/path?query or https://...; no userinfo
  // Sent in order. Host, Content-Length, Transfer-Encoding and Connection are the client's
  // (refused here); User-Agent defaults to HttpClientOptions::user_agent.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;              // sent with Content-Length (also "0" for POST/PUT/PATCH)
  uint32_t timeout_ms = 10000;   // the whole request: DNS, connect, TLS, redirects, response
  size_t max_response_body = 1 << 20;  // a larger body is an error
  bool follow_redirects = false;  // false: a 3xx is the response
  // PEM file of trusted CAs replacing the system store ("" = the system store). Read when the
  // request starts (a small file read on the loop): meant for tests and private CAs.
  std::string ca_file;
};

struct HttpClientResponse {
  int status = 0;  // the final response's status; 0 when no response arrived
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // in arrival order, names as sent
  std::string body;
  std::string error;  // "" = success (any status); else why the request failed
  std::string url;    // the URL answered last (after redirects)
  int redirects = 0;  // redirects followed
};

// A piece of a streamed response (request() with a ChunkCallback). The first call has head set
// with the final status and headers (redirects followed, 1xx skipped); every call may carry body
// bytes, decoded (chunked removed), in order. Everything is borrowed for the call.
struct HttpClientChunk {
  bool head = false;
  int status = 0;
  const std::vector<std::pair<std::string, std::string>>* headers = nullptr;  // head only
  std::string_view data;
  const std::string* url = nullptr;  // the URL answering
};

struct HttpClientOptions {
  size_t max_concurrent = 64;  // requests in flight; more are refused
  size_t max_header_bytes = 64 * 1024;
  size_t max_headers = 100;
  std::string user_agent = "junction";
  int max_redirects = 5;
};

class HttpClient {
 public:
  using Callback = std::function<void(const HttpClientResponse&)>;
  using ChunkCallback = std::function<void(const HttpClientChunk&)>;

  HttpClient(uv_loop_t* loop, DnsResolver& dns, HttpClientOptions options = {});
  ~HttpClient();  // asserts stop() completed
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts a request; returns its id (> 0), or 0 with *error set when refused: bad URL, method
  // or header, unreadable ca_file, too many requests, stopping. Everything later (DNS, connect,
  // TLS, timeout, malformed or too large response) comes as HttpClientResponse::error.
  //
  // Streaming: with `chunk`, the response is handed over as it is read (HttpClientChunk), with no
  // size limit, and cb follows once at the end with an empty body (or an error). timeout_ms then
  // bounds the wait for the head, and after it every silence of the server (an idle timeout).
  // Delivery is synchronous with the socket reads (16 KiB at most a call): no buffering, so a slow
  // consumer slows the reading, never the memory. chunk may call cancel(): nothing follows.
  uint64_t request(HttpClientRequest request, Callback cb, std::string* error = nullptr, ChunkCallback chunk = nullptr);
  // Forgets a request and closes its connection; its callback is never called. false if unknown
  // or already completed.
  bool cancel(uint64_t id);
  // Async: drops every request (no callbacks), closes every connection and the timer; done runs
  // once they are all closed. Later request() calls are refused.
  void stop(std::function<void()> done);

  size_t active() const { return requests_.size(); }

 private:
  struct Req;
  struct Conn;
  struct Write;
  enum class State { kRunning, kStopping, kStopped };

  bool start_hop(Req& r, std::string* error);  // DNS for the current URL
  void on_dns(uint64_t req_id, const DnsResult& res);
  void connect_next(Req& r);
  void on_connected(Conn& c);
  void send_request(Conn& c);
  void on_data(Conn& c, const char* data, size_t len);
  void on_eof(Conn& c);
  void tls_start(Conn& c);
  void tls_flush(Conn& c);
  void tls_fail(Conn& c);
  bool consume(Conn& c, std::string_view bytes, HttpResponseParser::Result& res);
  void stream_out(Conn& c);
  void parsed(Conn& c, HttpResponseParser::Result res);
  bool follow(Req& r, int status, const std::string* location);  // true: a redirect was taken
  void write(Conn& c, std::string data);
  void detach(Req& r);  // closes its connection, cancels its DNS query
  void fail(Req& r, std::string error);
  void finish(Req& r, HttpClientResponse&& response);
  void rearm();
  void finish_stop_if_idle();

  static void on_connect(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_write(uv_write_t* w, int status);
  static void on_conn_closed(uv_handle_t* h);
  static void on_timer(uv_timer_t* t);
  static void on_timer_closed(uv_handle_t* h);

  uv_loop_t* loop_;
  DnsResolver& dns_;
  HttpClientOptions options_;
  State state_ = State::kRunning;
  std::function<void()> stop_done_;
  uv_timer_t timer_{};
  size_t open_handles_ = 0;  // the timer + connections not yet closed
  SSL_CTX* default_ctx_ = nullptr;  // the system CA store, made at construction
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Req>> requests_;
  std::set<std::pair<uint64_t, uint64_t>> deadlines_;  // (uv_now ms, request id)
};

}  // namespace junction
