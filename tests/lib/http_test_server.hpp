// Test peers for HTTP clients: a small HTTP/1.1 server on 127.0.0.1 (a port picked by the
// kernel) with plain blocking sockets on its own threads, optionally TLS (OpenSSL), answering
// each request with the raw bytes a handler returns (so a test can send anything, malformed
// included) or never answering. And TestPki: a CA and a server certificate made at test time
// with OpenSSL's C API, the CA written as PEM into a temporary directory.
#pragma once

#include <uv.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace jntest {

struct HttpTestRequest {
  std::string method, target, body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(const std::string& name) const {
    for (auto& [n, v] : headers) {
      if (n.size() != name.size()) continue;
      bool eq = true;
      for (size_t i = 0; i < n.size(); ++i)
        eq &= std::tolower(static_cast<unsigned char>(n[i])) == std::tolower(static_cast<unsigned char>(name[i]));
      if (eq) return v;
    }
    return {};
  }
  bool has_header(const std::string& name) const {
    for (auto& [n, v] : headers)
      if (strcasecmp(n.c_str(), name.c_str()) == 0) return true;
    return false;
  }
};

// The raw response bytes (the connection is closed after them), or nullopt: never answer (the
// connection is held until the client leaves).
using HttpTestHandler = std::function<std::optional<std::string>(const HttpTestRequest&)>;

inline std::string http_response(int status, const std::string& reason, const std::string& body,
                                 const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

class HttpTestServer {
 public:
  // tls: a server context (the server takes a reference) or null for plain HTTP.
  // wake: an async handle of the test's loop, sent after each request, closed connection and
  // failed handshake, so a loop waiting on the server's counters wakes up (it must outlive the
  // server).
  explicit HttpTestServer(HttpTestHandler handler, SSL_CTX* tls = nullptr, uv_async_t* wake = nullptr)
      : handler_(std::move(handler)), tls_(tls), wake_(wake) {
    signal(SIGPIPE, SIG_IGN);  // a client that leaves early must not kill the test
    if (tls_) SSL_CTX_up_ref(tls_);
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 || listen(fd_, 64) != 0)
      throw std::runtime_error("http test server: bind/listen");
    socklen_t len = sizeof sin;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &len);
    port_ = ntohs(sin.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~HttpTestServer() {
    stopping_ = true;
    shutdown(fd_, SHUT_RDWR);  // wakes accept()
    acceptor_.join();
    {
      std::lock_guard<std::mutex> lk(mu_);
      for (int c : live_) shutdown(c, SHUT_RDWR);  // wakes held connections
    }
    for (auto& t : conns_) t.join();
    close(fd_);
    if (tls_) SSL_CTX_free(tls_);
  }
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  uint16_t port() const { return port_; }
  std::string url(const std::string& path, const std::string& host = "127.0.0.1") const {
    return std::string(tls_ ? "https://" : "http://") + host + ":" + std::to_string(port_) + path;
  }

  std::atomic<int> accepted{0};
  std::atomic<int> closed{0};        // connections finished (answered, held and left, or failed)
  std::atomic<int> tls_failures{0};  // handshakes that failed
  std::vector<HttpTestRequest> requests() const {
    std::lock_guard<std::mutex> lk(mu_);
    return log_;
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (stopping_ || errno == EINVAL || errno == EBADF) return;
        continue;
      }
      ++accepted;
      std::lock_guard<std::mutex> lk(mu_);
      live_.insert(c);
      conns_.emplace_back([this, c] { serve(c); });
    }
  }

  void serve(int c) {
    timeval tv{10, 0};  // bounds a broken test, never a synchronisation
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL* ssl = nullptr;
    if (tls_) {
      ssl = SSL_new(tls_);
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) != 1) {
        ++tls_failures;
        notify();
        finish(c, ssl);
        return;
      }
    }
    auto rd = [&](char* buf, size_t n) -> long {
      return ssl ? SSL_read(ssl, buf, static_cast<int>(n)) : recv(c, buf, n, 0);
    };
    auto wr = [&](const std::string& s) {
      size_t off = 0;
      while (off < s.size()) {
        long n = ssl ? SSL_write(ssl, s.data() + off, static_cast<int>(s.size() - off))
                     : send(c, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return;
        off += static_cast<size_t>(n);
      }
    };
    std::string in;
    char buf[4096];
    size_t head_end;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      long n = rd(buf, sizeof buf);
      if (n <= 0) return finish(c, ssl);
      in.append(buf, static_cast<size_t>(n));
    }
    HttpTestRequest req;
    std::string head = in.substr(0, head_end);
    size_t eol = head.find("\r\n");
    std::string first = head.substr(0, eol);
    size_t sp1 = first.find(' '), sp2 = first.rfind(' ');
    req.method = first.substr(0, sp1);
    req.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = eol == std::string::npos ? head.size() : eol + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(pos, e - pos);
      size_t colon = line.find(':');
      std::string v = colon == std::string::npos ? "" : line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      req.headers.emplace_back(line.substr(0, colon), v);
      pos = e + 2;
    }
    size_t want = req.has_header("Content-Length") ? std::stoul(req.header("Content-Length")) : 0;
    req.body = in.substr(head_end + 4);
    while (req.body.size() < want) {
      long n = rd(buf, sizeof buf);
      if (n <= 0) break;
      req.body.append(buf, static_cast<size_t>(n));
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      log_.push_back(req);
    }
    notify();
    std::optional<std::string> out = handler_(req);
    if (out) {
      wr(*out);
      if (ssl) SSL_shutdown(ssl);
      shutdown(c, SHUT_WR);  // the end of a close-delimited body
    }
    // Until the client leaves (or the server stops).
    while (rd(buf, sizeof buf) > 0) {
    }
    finish(c, ssl);
  }

  void finish(int c, SSL* ssl) {
    if (ssl) SSL_free(ssl);
    {
      std::lock_guard<std::mutex> lk(mu_);
      live_.erase(c);
    }
    close(c);
    ++closed;
    notify();
  }

  void notify() {
    if (wake_) uv_async_send(wake_);
  }

  HttpTestHandler handler_;
  SSL_CTX* tls_;
  uv_async_t* wake_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::set<int> live_;
  std::vector<std::thread> conns_;
  std::vector<HttpTestRequest> log_;
};

// A CA and server certificates signed by it (P-256, SHA-256), made now; the CA certificate is
// written to ca_file() in a temporary directory removed at destruction.
class TestPki {
 public:
  explicit TestPki(const std::string& ca_name = "junction test CA") {
    char tmpl[] = "/tmp/jn-pki-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    ca_key_ = EVP_EC_gen("P-256");
    ca_ = make_cert(ca_key_, ca_key_, nullptr, ca_name, true, "");
    ca_file_ = dir_ + "/ca.pem";
    FILE* f = std::fopen(ca_file_.c_str(), "w");
    PEM_write_X509(f, ca_);
    std::fclose(f);
  }
  ~TestPki() {
    X509_free(ca_);
    EVP_PKEY_free(ca_key_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  const std::string& ca_file() const { return ca_file_; }

  // A server context with a fresh key and a certificate for `san` ("DNS:a.test,IP:127.0.0.1").
  // The caller owns the returned reference.
  SSL_CTX* server_ctx(const std::string& san) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = make_cert(key, ca_key_, ca_, "junction test server", false, san);
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx, cert);
    SSL_CTX_use_PrivateKey(ctx, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
  }

 private:
  X509* make_cert(EVP_PKEY* key, EVP_PKEY* signer, X509* issuer, const std::string& cn, bool ca,
                  const std::string& san) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial_++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, nullptr, nullptr, 0);
    auto ext = [&](int nid, const std::string& value) {
      X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
      if (!e) throw std::runtime_error("x509 extension " + value);
      X509_add_ext(x, e, -1);
      X509_EXTENSION_free(e);
    };
    ext(NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    ext(NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    ext(NID_subject_key_identifier, "hash");
    if (!ca) ext(NID_ext_key_usage, "serverAuth");
    if (!san.empty()) ext(NID_subject_alt_name, san);
    X509_sign(x, signer, EVP_sha256());
    return x;
  }

  std::string dir_, ca_file_;
  EVP_PKEY* ca_key_ = nullptr;
  X509* ca_ = nullptr;
  long serial_ = 1;
};

}  // namespace jntest
