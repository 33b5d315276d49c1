// DTLS-SRTP with OpenSSL over memory BIOs. See dtls.hpp.
#include <junction/webrtc/dtls.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <sys/time.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace junction::webrtc {
namespace {

constexpr size_t kDtlsMtu = 1200;  // fits any path a browser uses (its own DTLS MTU is 1200 too)
constexpr char kSrtpLabel[] = "EXTRACTOR-dtls_srtp";

std::string openssl_error(const char* what) {
  std::string s = what;
  unsigned long e = ERR_get_error();
  if (e) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    s += ": ";
    s += buf;
  }
  ERR_clear_error();
  return s;
}

bool set_err(std::string* err, std::string why) {
  if (err) *err = std::move(why);
  return false;
}

// "sha-256 AB:CD" vs "SHA-256 ab:cd": the same.
bool fingerprint_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

}  // namespace

// ---- Certificate -------------------------------------------------------------------------------

Certificate::Certificate(Certificate&& o) noexcept { *this = std::move(o); }
Certificate& Certificate::operator=(Certificate&& o) noexcept {
  if (this != &o) {
    reset();
    key_ = std::exchange(o.key_, nullptr);
    cert_ = std::exchange(o.cert_, nullptr);
    ctx_ = std::exchange(o.ctx_, nullptr);
    fingerprint_ = std::move(o.fingerprint_);
  }
  return *this;
}
Certificate::~Certificate() { reset(); }

void Certificate::reset() {
  SSL_CTX_free(ctx_);
  X509_free(cert_);
  EVP_PKEY_free(key_);
  ctx_ = nullptr;
  cert_ = nullptr;
  key_ = nullptr;
  fingerprint_.clear();
}

std::string certificate_fingerprint(X509* cert, std::string_view algorithm) {
  const EVP_MD* md = nullptr;
  if (algorithm == "sha-256" || algorithm == "SHA-256") md = EVP_sha256();
  else if (algorithm == "sha-1" || algorithm == "SHA-1") md = EVP_sha1();
  else if (algorithm == "sha-384" || algorithm == "SHA-384") md = EVP_sha384();
  else if (algorithm == "sha-512" || algorithm == "SHA-512") md = EVP_sha512();
  if (!md || !cert) return {};
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, md, d, &n) != 1) return {};
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string s(algorithm);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  s += ' ';
  for (unsigned i = 0; i < n; ++i) {
    if (i) s += ':';
    s += kHex[d[i] >> 4];
    s += kHex[d[i] & 15];
  }
  return s;
}

bool Certificate::generate(std::string* err, bool srtp_gcm) {
  reset();
  key_ = EVP_EC_gen("P-256");
  if (!key_) return set_err(err, openssl_error("ECDSA P-256 key generation failed"));
  cert_ = X509_new();
  if (!cert_) return set_err(err, openssl_error("X509_new failed"));
  uint64_t serial = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial) != 1)
    return set_err(err, openssl_error("no randomness for the certificate serial"));
  serial >>= 1;  // positive
  X509_NAME* name = X509_NAME_new();
  bool ok = name && X509_set_version(cert_, 2) == 1 &&
            ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert_), serial) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(cert_), -365L * 86400) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(cert_), 365L * 86400) != nullptr &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("junction"), -1, -1, 0) == 1 &&
            X509_set_subject_name(cert_, name) == 1 && X509_set_issuer_name(cert_, name) == 1 &&
            X509_set_pubkey(cert_, key_) == 1 && X509_sign(cert_, key_, EVP_sha256()) > 0;
  X509_NAME_free(name);
  if (!ok) return set_err(err, openssl_error("self-signed certificate creation failed"));
  return build(err, srtp_gcm);
}

std::string Certificate::to_pem() const {
  if (!key_ || !cert_) return {};
  BIO* b = BIO_new(BIO_s_mem());
  if (!b) return {};
  std::string out;
  if (PEM_write_bio_PrivateKey(b, key_, nullptr, nullptr, 0, nullptr, nullptr) == 1 && PEM_write_bio_X509(b, cert_) == 1) {
    char* p = nullptr;
    long n = BIO_get_mem_data(b, &p);
    if (n > 0) out.assign(p, static_cast<size_t>(n));
  }
  BIO_free(b);
  return out;
}

bool Certificate::from_pem(std::string_view pem, std::string* err, bool srtp_gcm) {
  reset();
  if (pem.size() > 64 * 1024) return set_err(err, "certificate PEM too large");
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (b) key_ = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (b) cert_ = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  if (!key_ || !cert_) {
    reset();
    return set_err(err, openssl_error("PEM without a private key and a certificate"));
  }
  return build(err, srtp_gcm);
}

struct DtlsAccess {
  // OpenSSL's verification of the peer chain: a self-signed certificate fails it by design; what
  // authenticates the peer is the fingerprint its SDP carried (RFC 5763 5). Checked on the leaf
  // so a mismatch aborts the handshake with an alert.
  static int verify(int /*preverify_ok*/, X509_STORE_CTX* store) {
    if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
    SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    Dtls* d = ssl ? static_cast<Dtls*>(SSL_get_app_data(ssl)) : nullptr;
    if (!d) return 0;
    std::string_view fp = d->remote_fp_;
    size_t sp = fp.find(' ');
    if (sp == std::string_view::npos) return 0;
    std::string mine = certificate_fingerprint(X509_STORE_CTX_get_current_cert(store), fp.substr(0, sp));
    return !mine.empty() && fingerprint_equal(mine, fp) ? 1 : 0;
  }
};

bool Certificate::build(std::string* err, bool srtp_gcm) {
  ERR_clear_error();
  fingerprint_ = certificate_fingerprint(cert_, "sha-256");
  ctx_ = SSL_CTX_new(DTLS_method());
  if (!ctx_) return set_err(err, openssl_error("SSL_CTX_new(DTLS) failed"));
  bool ok = SSL_CTX_set_min_proto_version(ctx_, DTLS1_2_VERSION) == 1 && SSL_CTX_use_certificate(ctx_, cert_) == 1 &&
            SSL_CTX_use_PrivateKey(ctx_, key_) == 1 && SSL_CTX_check_private_key(ctx_) == 1 &&
            SSL_CTX_set_cipher_list(ctx_,
                                    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                                    "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA") == 1 &&
            SSL_CTX_set1_groups_list(ctx_, "X25519:P-256:P-384") == 1 &&
            // 0 is success for this one.
            SSL_CTX_set_tlsext_use_srtp(ctx_, srtp_gcm ? "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80" : "SRTP_AES128_CM_SHA1_80") == 0;
  if (!ok) {
    std::string why = openssl_error("DTLS context setup failed");
    reset();
    return set_err(err, why);
  }
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, &DtlsAccess::verify);
  SSL_CTX_set_verify_depth(ctx_, 4);
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx_, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_read_ahead(ctx_, 1);
  return true;
}

// ---- Dtls --------------------------------------------------------------------------------------

const char* dtls_state_name(DtlsState s) {
  switch (s) {
    case DtlsState::New: return "new";
    case DtlsState::Handshaking: return "handshaking";
    case DtlsState::Connected: return "connected";
    case DtlsState::Failed: return "failed";
    case DtlsState::Closed: return "closed";
  }
  return "?";
}

Dtls::Dtls(const Certificate& cert, DtlsRole role, std::string remote_fingerprint, DtlsIo& io)
    : role_(role), remote_fp_(std::move(remote_fingerprint)), io_(io) {
  if (!cert.valid()) {
    fail("no certificate");
    return;
  }
  ssl_ = SSL_new(cert.ssl_ctx());
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  if (!ssl_ || !rbio_ || !wbio_) {
    BIO_free(rbio_);
    BIO_free(wbio_);
    rbio_ = wbio_ = nullptr;
    fail(openssl_error("SSL_new failed"));
    return;
  }
  BIO_set_mem_eof_return(rbio_, -1);
  BIO_set_mem_eof_return(wbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);  // owned by ssl_ now
  SSL_set_app_data(ssl_, this);
  SSL_set_mtu(ssl_, kDtlsMtu);
  DTLS_set_link_mtu(ssl_, kDtlsMtu);
  if (role_ == DtlsRole::Client)
    SSL_set_connect_state(ssl_);
  else
    SSL_set_accept_state(ssl_);
}

Dtls::~Dtls() {
  if (ssl_) SSL_free(ssl_);
}

void Dtls::fail(std::string why) {
  if (state_ == DtlsState::Failed || state_ == DtlsState::Closed) return;
  state_ = DtlsState::Failed;
  error_ = std::move(why);
  next_timeout_ms_ = UINT64_MAX;
}

void Dtls::start(uint64_t now_ms, uint64_t handshake_timeout_ms) {
  if (state_ != DtlsState::New) return;
  state_ = DtlsState::Handshaking;
  deadline_ms_ = handshake_timeout_ms == UINT64_MAX ? UINT64_MAX : now_ms + handshake_timeout_ms;
  if (role_ == DtlsRole::Client) progress();
  update_timer(now_ms);
}

bool Dtls::handle(const uint8_t* data, size_t len, uint64_t now_ms) {
  ++stats_.datagrams_in;
  if (dtls_records(data, len, [](const DtlsRecord&) { return true; }) <= 0) {
    ++stats_.bad_framing;
    return false;
  }
  if (state_ == DtlsState::Failed || state_ == DtlsState::Closed || !ssl_) return false;
  if (state_ == DtlsState::New) start(now_ms);
  (void)BIO_reset(rbio_);
  if (BIO_write(rbio_, data, static_cast<int>(len)) != static_cast<int>(len)) return false;
  progress();
  (void)BIO_reset(rbio_);  // nothing of this datagram may leak into the next
  update_timer(now_ms);
  return state_ != DtlsState::Failed;
}

bool Dtls::check_peer() {
  X509* peer = SSL_get0_peer_certificate(ssl_);
  std::string_view fp = remote_fp_;
  size_t sp = fp.find(' ');
  if (!peer || sp == std::string_view::npos) return false;
  std::string mine = certificate_fingerprint(peer, fp.substr(0, sp));
  return !mine.empty() && fingerprint_equal(mine, fp);
}

void Dtls::progress() {
  ERR_clear_error();
  if (state_ == DtlsState::Handshaking) {
    int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      if (!check_peer()) {
        flush();
        fail("peer certificate does not match the SDP fingerprint");
        return;
      }
      if (!SSL_get_selected_srtp_profile(ssl_)) {
        flush();
        fail("no use_srtp profile negotiated");
        return;
      }
      state_ = DtlsState::Connected;
      deadline_ms_ = UINT64_MAX;
    } else {
      int e = SSL_get_error(ssl_, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        long vr = SSL_get_verify_result(ssl_);
        std::string why = openssl_error("DTLS handshake failed");
        if (vr != X509_V_OK && why.find("certificate") != std::string::npos)
          why += " (peer certificate does not match the SDP fingerprint)";
        flush();  // the alert
        fail(why);
        return;
      }
    }
  }
  if (state_ == DtlsState::Connected) {
    for (;;) {
      int n = SSL_read(ssl_, read_buf_, sizeof read_buf_);
      if (n > 0) {
        ++stats_.app_in;
        io_.dtls_app_data(read_buf_, static_cast<size_t>(n));
        if (state_ != DtlsState::Connected) break;  // the callback closed us
        continue;
      }
      int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_ZERO_RETURN) {
        state_ = DtlsState::Closed;  // close_notify from the peer
        next_timeout_ms_ = UINT64_MAX;
      } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        // A fatal alert from the peer or a broken record after the handshake.
        std::string why = openssl_error("DTLS read failed");
        if (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) {
          state_ = DtlsState::Closed;
          next_timeout_ms_ = UINT64_MAX;
        } else {
          fail(why);
        }
      }
      break;
    }
  }
  ERR_clear_error();
  flush();
}

void Dtls::flush() {
  if (!wbio_) return;
  char* p = nullptr;
  long n = BIO_get_mem_data(wbio_, &p);
  if (n <= 0 || !p) return;
  // The memory BIO holds every record OpenSSL wrote, datagram boundaries lost: pack whole records
  // into datagrams of at most kDtlsMtu (OpenSSL already fragmented the handshake to fit).
  const uint8_t* d = reinterpret_cast<const uint8_t*>(p);
  size_t len = static_cast<size_t>(n);
  size_t start = 0, end = 0;
  dtls_records(d, len, [&](const DtlsRecord& r) {
    size_t rec_end = static_cast<size_t>(r.body + r.body_len - d);
    if (rec_end - start > kDtlsMtu && end > start) {
      io_.dtls_send(d + start, end - start);
      ++stats_.datagrams_out;
      start = end;
    }
    end = rec_end;
    return true;
  });
  if (end > start) {
    io_.dtls_send(d + start, end - start);
    ++stats_.datagrams_out;
  }
  (void)BIO_reset(wbio_);
}

bool Dtls::send(const uint8_t* data, size_t len) {
  if (state_ != DtlsState::Connected || len == 0 || len > 16384) return false;
  ERR_clear_error();
  int n = SSL_write(ssl_, data, static_cast<int>(len));
  flush();
  if (n != static_cast<int>(len)) {
    ERR_clear_error();
    return false;
  }
  ++stats_.app_out;
  return true;
}

void Dtls::close() {
  if (!ssl_ || state_ == DtlsState::Closed || state_ == DtlsState::Failed) return;
  if (state_ == DtlsState::Connected) {
    ERR_clear_error();
    (void)SSL_shutdown(ssl_);
    ERR_clear_error();
    flush();
  }
  state_ = DtlsState::Closed;
  next_timeout_ms_ = UINT64_MAX;
}

void Dtls::update_timer(uint64_t now_ms) {
  next_timeout_ms_ = UINT64_MAX;
  if (state_ != DtlsState::Handshaking) return;
  struct timeval tv {};
  if (DTLSv1_get_timeout(ssl_, &tv) == 1) {
    uint64_t ms = static_cast<uint64_t>(tv.tv_sec) * 1000 + static_cast<uint64_t>(tv.tv_usec) / 1000;
    next_timeout_ms_ = now_ms + std::max<uint64_t>(ms, 1);
  }
  next_timeout_ms_ = std::min(next_timeout_ms_, deadline_ms_);
}

void Dtls::tick(uint64_t now_ms) {
  if (state_ != DtlsState::Handshaking) return;
  if (now_ms >= deadline_ms_) {
    fail("DTLS handshake timed out");
    return;
  }
  ERR_clear_error();
  if (DTLSv1_handle_timeout(ssl_) < 0) {
    fail(openssl_error("DTLS handshake retransmissions exhausted"));
    return;
  }
  ERR_clear_error();
  flush();
  update_timer(now_ms);
}

bool Dtls::srtp_keys(SrtpKeys& out) const {
  if (state_ != DtlsState::Connected) return false;
  const SRTP_PROTECTION_PROFILE* prof = SSL_get_selected_srtp_profile(ssl_);
  if (!prof) return false;
  SrtpSuite suite;
  if (prof->id == SRTP_AES128_CM_SHA1_80)
    suite = SrtpSuite::AesCm128Sha1_80;
  else if (prof->id == SRTP_AES128_CM_SHA1_32)
    suite = SrtpSuite::AesCm128Sha1_32;
  else if (prof->id == SRTP_AEAD_AES_128_GCM)
    suite = SrtpSuite::AeadAes128Gcm;
  else
    return false;
  size_t k = srtp_master_key_len(suite), s = srtp_master_salt_len(suite);
  unsigned char m[2 * (16 + 14)];
  size_t total = 2 * (k + s);
  if (SSL_export_keying_material(ssl_, m, total, kSrtpLabel, sizeof kSrtpLabel - 1, nullptr, 0, 0) != 1) {
    ERR_clear_error();
    return false;
  }
  // RFC 5764 4.2: client key | server key | client salt | server salt.
  std::string ck(reinterpret_cast<char*>(m), k), sk(reinterpret_cast<char*>(m + k), k);
  std::string cs(reinterpret_cast<char*>(m + 2 * k), s), ss(reinterpret_cast<char*>(m + 2 * k + s), s);
  out.suite = suite;
  out.local = role_ == DtlsRole::Client ? ck + cs : sk + ss;
  out.remote = role_ == DtlsRole::Client ? sk + ss : ck + cs;
  OPENSSL_cleanse(m, sizeof m);
  return true;
}

}  // namespace junction::webrtc
