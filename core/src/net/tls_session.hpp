// TlsSession: one TLS connection over memory BIOs (OpenSSL), with no I/O of its own: the owner
// feeds it the bytes its socket read and writes out the bytes it produces. Used by the core's TCP
// connections (jn_tcp_options.tls, ABI 2.1); pure enough to be unit-tested with two sessions
// wired back to back.
//
// Policy: TLS 1.2 or newer. A client always verifies its peer (the system CA store, or a CA file
// given per connection for private CAs and tests) and the name it expects (a DNS name via SNI +
// host check, an IP literal against the certificate's IP SANs); there is no switch to skip it.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace junction {

class TlsSession {
 public:
  enum class Role { kClient, kServer };

  // Contexts (refcounted by OpenSSL: SSL_CTX_free when done). nullptr with *err set on failure.
  static SSL_CTX* client_context(const std::string& ca_file, std::string* err);
  static SSL_CTX* server_context(const std::string& cert_file, const std::string& key_file, std::string* err);

  // ctx is up-ref'd. For a client, expected_name is the name (or IP literal) to verify.
  TlsSession(SSL_CTX* ctx, Role role, std::string expected_name);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Starts the handshake (a client's first flight goes to the output). false: *err says why.
  bool start(std::string* err);

  enum class Status {
    kOk,         // consumed; maybe plaintext delivered, maybe output to send
    kConnected,  // as kOk, and the handshake completed during this call
    kClosed,     // the peer sent close_notify (orderly)
    kError       // fatal: error() says why; send the output (an alert), then close
  };
  // Ciphertext from the socket. on_plain(const char*, size_t) gets the decrypted bytes; it returns
  // false to stop (the connection is closing).
  template <typename OnPlain>
  Status feed(const char* data, size_t n, OnPlain&& on_plain);

  // Plaintext to send. Before the handshake completes it is queued and sent once it does.
  // false: a fatal error (error() says why).
  bool write(std::string_view plain);
  // Moves the ciphertext waiting to be sent into out (appending). Returns whether there was any.
  bool take_output(std::string& out);

  bool connected() const { return connected_; }
  const std::string& error() const { return error_; }

 private:
  Status fail(const char* what);
  Status pump_handshake();
  bool read_plain(bool (*cb)(void*, const char*, size_t), void* arg, Status* st);
  Status feed_impl(const char* data, size_t n, bool (*cb)(void*, const char*, size_t), void* arg);

  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // owned by ssl_
  BIO* wbio_ = nullptr;
  Role role_;
  std::string expected_name_;
  bool connected_ = false;
  bool failed_ = false;
  std::string pending_plain_;  // written before the handshake completed
  std::string error_;
};

template <typename OnPlain>
TlsSession::Status TlsSession::feed(const char* data, size_t n, OnPlain&& on_plain) {
  auto thunk = [](void* arg, const char* p, size_t len) -> bool { return (*static_cast<OnPlain*>(arg))(p, len); };
  return feed_impl(data, n, thunk, &on_plain);
}

}  // namespace junction
