#include "net/tls_session.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

namespace junction {
namespace {

std::string ssl_error_text() {
  unsigned long e = ERR_get_error();
  if (!e) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

bool is_ip_literal(const std::string& s) {
  unsigned char tmp[16];
  return inet_pton(AF_INET, s.c_str(), tmp) == 1 || inet_pton(AF_INET6, s.c_str(), tmp) == 1;
}

}  // namespace

SSL_CTX* TlsSession::client_context(const std::string& ca_file, std::string* err) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    *err = "TLS: cannot create a context: " + ssl_error_text();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx) : SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
  if (ok != 1) {
    *err = ca_file.empty() ? "TLS: cannot load the system CA store: " + ssl_error_text()
                           : "TLS: cannot load ca_file '" + ca_file + "': " + ssl_error_text();
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

SSL_CTX* TlsSession::server_context(const std::string& cert_file, const std::string& key_file, std::string* err) {
  ERR_clear_error();
  if (cert_file.empty() || key_file.empty()) {
    *err = "TLS needs both a certificate and a key file";
    return nullptr;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    *err = "TLS: cannot create a context: " + ssl_error_text();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    *err = "TLS: cannot load certificate '" + cert_file + "': " + ssl_error_text();
  } else if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    *err = "TLS: cannot load key '" + key_file + "': " + ssl_error_text();
  } else if (SSL_CTX_check_private_key(ctx) != 1) {
    *err = "TLS: the key does not match the certificate: " + ssl_error_text();
  } else {
    return ctx;
  }
  SSL_CTX_free(ctx);
  return nullptr;
}

TlsSession::TlsSession(SSL_CTX* ctx, Role role, std::string expected_name)
    : role_(role), expected_name_(std::move(expected_name)) {
  ERR_clear_error();
  ssl_ = SSL_new(ctx);
  if (!ssl_) return;
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl_, rbio_, wbio_);
}

TlsSession::~TlsSession() {
  if (ssl_) SSL_free(ssl_);
}

bool TlsSession::start(std::string* err) {
  if (!ssl_) {
    *err = "TLS: cannot create a session: " + ssl_error_text();
    return false;
  }
  if (role_ == Role::kServer) {
    SSL_set_accept_state(ssl_);
    return true;
  }
  SSL_set_connect_state(ssl_);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  int ok;
  if (expected_name_.empty()) {
    *err = "TLS: no name to verify the server against";
    return false;
  }
  if (is_ip_literal(expected_name_)) {
    ok = X509_VERIFY_PARAM_set1_ip_asc(param, expected_name_.c_str());  // no SNI for an address
  } else {
    ok = X509_VERIFY_PARAM_set1_host(param, expected_name_.c_str(), 0) && SSL_set_tlsext_host_name(ssl_, expected_name_.c_str());
  }
  if (ok != 1) {
    *err = "TLS: cannot set the expected name '" + expected_name_ + "': " + ssl_error_text();
    return false;
  }
  SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
  if (pump_handshake() == Status::kError) {
    *err = error_;
    return false;
  }
  return true;
}

TlsSession::Status TlsSession::fail(const char* what) {
  failed_ = true;
  long v = SSL_get_verify_result(ssl_);
  if (role_ == Role::kClient && v != X509_V_OK) {
    error_ = "TLS: certificate verification failed for " + expected_name_ + ": " + X509_verify_cert_error_string(v);
  } else {
    unsigned long e = ERR_peek_error();
    error_ = std::string("TLS ") + what + " failed: " + (e ? ssl_error_text() : std::string("protocol violation"));
  }
  return Status::kError;
}

TlsSession::Status TlsSession::pump_handshake() {
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    connected_ = true;
    if (!pending_plain_.empty()) {
      std::string queued;
      queued.swap(pending_plain_);
      if (!write(queued)) return Status::kError;
    }
    return Status::kConnected;
  }
  int e = SSL_get_error(ssl_, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Status::kOk;
  return fail("handshake");
}

TlsSession::Status TlsSession::feed_impl(const char* data, size_t n, bool (*cb)(void*, const char*, size_t), void* arg) {
  if (failed_ || !ssl_) return Status::kError;
  if (n && BIO_write(rbio_, data, static_cast<int>(n)) != static_cast<int>(n)) return fail("buffer");
  Status result = Status::kOk;
  if (!connected_) {
    result = pump_handshake();
    if (result != Status::kConnected) return result;
  }
  char plain[16384];
  for (;;) {
    ERR_clear_error();
    int got = SSL_read(ssl_, plain, sizeof plain);
    if (got > 0) {
      if (!cb(arg, plain, static_cast<size_t>(got))) return result;
      continue;
    }
    int e = SSL_get_error(ssl_, got);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return result;
    if (e == SSL_ERROR_ZERO_RETURN) return Status::kClosed;
    return fail("read");
  }
}

bool TlsSession::write(std::string_view plain) {
  if (failed_ || !ssl_) return false;
  if (!connected_) {
    pending_plain_.append(plain);
    return true;
  }
  while (!plain.empty()) {
    ERR_clear_error();
    int n = SSL_write(ssl_, plain.data(), static_cast<int>(std::min<size_t>(plain.size(), 1 << 30)));
    if (n <= 0) {
      fail("write");
      return false;
    }
    plain.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool TlsSession::take_output(std::string& out) {
  if (!wbio_) return false;
  size_t pending = BIO_ctrl_pending(wbio_);
  if (pending == 0) return false;
  size_t at = out.size();
  out.resize(at + pending);
  int n = BIO_read(wbio_, out.data() + at, static_cast<int>(pending));
  out.resize(at + (n > 0 ? static_cast<size_t>(n) : 0));
  return n > 0;
}

}  // namespace junction
