// DTLS-SRTP (RFC 5763/5764) with OpenSSL: a self-signed ECDSA P-256 certificate whose sha-256
// fingerprint goes into SDP, and one DTLS 1.2 association per Transport over memory I/O (no
// sockets: datagrams in through handle(), out through DtlsIo). The peer's certificate is checked
// against the fingerprint its SDP announced (no CA). use_srtp offers AEAD_AES_128_GCM (when
// libsrtp2 can do it) and SRTP_AES128_CM_SHA1_80; the keying material is exported when the
// handshake completes. Application data (SCTP for data channels) goes both ways once connected.
//
// Certificate also holds what every association of it shares: the SSL_CTX (reference-counted by
// OpenSSL: a Dtls keeps it alive by itself). Create it once, at plugin start (or from the PEM the
// previous instance saved). Outgoing records are packed into datagrams of at most 1200 bytes
// (the DTLS MTU: a handshake flight is fragmented to fit).
#pragma once

#include <junction/webrtc/srtp.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;
typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

namespace junction::webrtc {

class Certificate {
 public:
  Certificate() = default;
  Certificate(const Certificate&) = delete;
  Certificate& operator=(const Certificate&) = delete;
  Certificate(Certificate&& o) noexcept;
  Certificate& operator=(Certificate&& o) noexcept;
  ~Certificate();

  // A fresh ECDSA P-256 key and self-signed certificate (CN "junction", valid 1 year back and
  // forward). False with *err set on failure. srtp_gcm: offer AEAD_AES_128_GCM in use_srtp
  // (pass srtp_suite_works(SrtpSuite::AeadAes128Gcm) once libsrtp2 is initialised).
  bool generate(std::string* err = nullptr, bool srtp_gcm = true);
  // Key and certificate as PEM (private key first), so a hot reload keeps the fingerprint the
  // browser already has. from_pem accepts what to_pem wrote.
  std::string to_pem() const;
  bool from_pem(std::string_view pem, std::string* err = nullptr, bool srtp_gcm = true);

  bool valid() const { return ctx_ != nullptr; }
  // "sha-256 AB:CD:..." (the a=fingerprint value).
  const std::string& fingerprint() const { return fingerprint_; }

  SSL_CTX* ssl_ctx() const { return ctx_; }

 private:
  bool build(std::string* err, bool srtp_gcm);
  void reset();
  EVP_PKEY* key_ = nullptr;
  X509* cert_ = nullptr;
  SSL_CTX* ctx_ = nullptr;
  std::string fingerprint_;
};

// "sha-256 AB:CD:..." of a certificate with the named digest ("sha-256", "sha-1", "sha-384",
// "sha-512"); empty on an unknown digest.
std::string certificate_fingerprint(X509* cert, std::string_view algorithm = "sha-256");

enum class DtlsRole : uint8_t { Client, Server };  // a=setup:active = Client, passive = Server
enum class DtlsState : uint8_t { New, Handshaking, Connected, Failed, Closed };
const char* dtls_state_name(DtlsState s);

// Where a Dtls sends and delivers. Called synchronously from inside Dtls calls.
struct DtlsIo {
  virtual ~DtlsIo() = default;
  virtual void dtls_send(const uint8_t* data, size_t len) = 0;      // one datagram to the peer
  virtual void dtls_app_data(const uint8_t* data, size_t len) = 0;  // decrypted application data
};

// SRTP keys of a connected association: local (our protect) and remote (our unprotect), each
// master key || master salt for SrtpSession::create.
struct SrtpKeys {
  SrtpSuite suite = SrtpSuite::None;
  std::string local;
  std::string remote;
};

// DTLS record framing (RFC 6347 4.1): one datagram holds one or more records, each a 13-byte
// header (type, version, epoch, sequence, length) and its body. Used to refuse garbage before it
// reaches OpenSSL.
struct DtlsRecord {
  uint8_t content_type = 0;  // 20 change_cipher_spec, 21 alert, 22 handshake, 23 application_data
  uint16_t version = 0;      // 0xfeff DTLS 1.0, 0xfefd DTLS 1.2
  uint16_t epoch = 0;
  uint64_t sequence = 0;     // 48 bits
  const uint8_t* body = nullptr;
  size_t body_len = 0;
};
// Walks the records of a datagram; fn(const DtlsRecord&) returns false to stop. Returns the
// number of records, or -1 when the framing is broken (a truncated record, an unknown content
// type, a version that is not DTLS) -- then the datagram is to be dropped whole.
template <class F>
int dtls_records(const uint8_t* data, size_t len, F&& fn);
// RFC 7983: a DTLS record starts with a byte in [20, 63].
inline bool is_dtls(const uint8_t* data, size_t len) { return len >= 13 && data[0] >= 20 && data[0] <= 63; }

struct DtlsStats {
  uint64_t datagrams_in = 0;
  uint64_t bad_framing = 0;   // dropped before OpenSSL
  uint64_t datagrams_out = 0;
  uint64_t app_in = 0;
  uint64_t app_out = 0;
};

class Dtls {
 public:
  // remote_fingerprint: "sha-256 AB:CD:..." from the peer's SDP. An empty one fails every
  // handshake (a peer we cannot authenticate), set it with set_remote_fingerprint first.
  Dtls(const Certificate& cert, DtlsRole role, std::string remote_fingerprint, DtlsIo& io);
  Dtls(const Dtls&) = delete;
  Dtls& operator=(const Dtls&) = delete;
  ~Dtls();

  void set_remote_fingerprint(std::string fp) { remote_fp_ = std::move(fp); }
  DtlsRole role() const { return role_; }

  // Client: sends the ClientHello. Server: starts waiting (also implied by the first handle()).
  // handshake_timeout_ms: not connected by then -> Failed (tick()).
  void start(uint64_t now_ms, uint64_t handshake_timeout_ms = 30000);
  // One datagram from the peer (already classified as DTLS). False when it was refused (bad
  // framing, a failed handshake); state() tells whether that was fatal.
  bool handle(const uint8_t* data, size_t len, uint64_t now_ms);
  // Application data to the peer (one record). False unless Connected.
  bool send(const uint8_t* data, size_t len);
  // Sends close_notify; state Closed.
  void close();

  // Retransmission of handshake flights. OpenSSL keeps the DTLS timer on its own clock, so the
  // next deadline is now_ms + what OpenSSL says is left.
  void tick(uint64_t now_ms);
  uint64_t next_timeout_ms() const { return next_timeout_ms_; }  // UINT64_MAX: none

  DtlsState state() const { return state_; }
  const std::string& error() const { return error_; }  // why Failed
  // Valid once Connected.
  bool srtp_keys(SrtpKeys& out) const;
  const DtlsStats& stats() const { return stats_; }

 private:
  friend struct DtlsAccess;  // the certificate check (OpenSSL's verify callback)
  void progress();  // drive the handshake / read application data
  void flush();     // pending records out, packed into datagrams
  void fail(std::string why);
  void update_timer(uint64_t now_ms);
  bool check_peer();

  DtlsRole role_;
  std::string remote_fp_;
  DtlsIo& io_;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;
  BIO* wbio_ = nullptr;
  DtlsState state_ = DtlsState::New;
  std::string error_;
  uint64_t deadline_ms_ = UINT64_MAX;   // handshake timeout
  uint64_t next_timeout_ms_ = UINT64_MAX;
  uint8_t read_buf_[2048];
  DtlsStats stats_;
};

template <class F>
int dtls_records(const uint8_t* data, size_t len, F&& fn) {
  int n = 0;
  size_t off = 0;
  while (off < len) {
    if (len - off < 13) return -1;
    const uint8_t* h = data + off;
    DtlsRecord r;
    r.content_type = h[0];
    if (r.content_type < 20 || r.content_type > 25) return -1;  // 24 heartbeat, 25 tls12_cid
    r.version = static_cast<uint16_t>(h[1] << 8 | h[2]);
    if (r.version != 0xfeff && r.version != 0xfefd) return -1;
    r.epoch = static_cast<uint16_t>(h[3] << 8 | h[4]);
    r.sequence = 0;
    for (int i = 5; i < 11; ++i) r.sequence = r.sequence << 8 | h[i];
    r.body_len = static_cast<size_t>(h[11] << 8 | h[12]);
    if (r.body_len > len - off - 13) return -1;
    r.body = h + 13;
    off += 13 + r.body_len;
    ++n;
    if (!fn(static_cast<const DtlsRecord&>(r))) break;
  }
  return n;
}

}  // namespace junction::webrtc
