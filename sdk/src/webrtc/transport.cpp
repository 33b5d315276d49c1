// ICE-lite + DTLS + SRTP over one 5-tuple. See transport.hpp.
#include <junction/webrtc/rtcp.hpp>
#include <junction/webrtc/stun.hpp>
#include <junction/webrtc/transport.hpp>

#include <algorithm>

namespace junction::webrtc {

const char* transport_state_name(TransportState s) {
  switch (s) {
    case TransportState::New: return "new";
    case TransportState::Checking: return "checking";
    case TransportState::Connected: return "connected";
    case TransportState::Failed: return "failed";
    case TransportState::Closed: return "closed";
  }
  return "?";
}

Transport::Transport(const Certificate& cert, TransportCallbacks& cb, TransportConfig cfg)
    : cb_(cb),
      cfg_(std::move(cfg)),
      ice_(cfg_.local_ice, cfg_.remote_ice, cfg_.consent_timeout_ms),
      dtls_(cert, cfg_.dtls_role, cfg_.remote_fingerprint, *this) {}

Transport::~Transport() = default;

void Transport::set_remote(IceCredentials remote_ice, std::string remote_fingerprint) {
  cfg_.remote_ice = remote_ice;
  cfg_.remote_fingerprint = remote_fingerprint;
  ice_.set_remote(std::move(remote_ice));
  dtls_.set_remote_fingerprint(std::move(remote_fingerprint));
}

void Transport::set_state(TransportState s) {
  if (s == state_) return;
  state_ = s;
  cb_.on_state(s);
}

void Transport::fail(std::string why) {
  if (state_ == TransportState::Failed || state_ == TransportState::Closed) return;
  error_ = std::move(why);
  srtp_in_.reset();
  srtp_out_.reset();
  set_state(TransportState::Failed);
}

void Transport::dtls_send(const uint8_t* data, size_t len) {
  if (!ice_.has_selected()) return;
  stats_.bytes_out += len;
  cb_.send_datagram(data, len, ice_.selected());
}

void Transport::dtls_app_data(const uint8_t* data, size_t len) { cb_.on_app_data(data, len); }

void Transport::after_dtls(uint64_t /*now_ms*/) {
  switch (dtls_.state()) {
    case DtlsState::Connected: {
      if (state_ == TransportState::Connected || state_ == TransportState::Failed || state_ == TransportState::Closed) return;
      SrtpKeys k;
      if (!dtls_.srtp_keys(k)) return fail("DTLS connected but no SRTP keying material");
      if (!srtp_out_.create(k.suite, k.local, false) || !srtp_in_.create(k.suite, k.remote, true))
        return fail(std::string("SRTP session creation failed (") + suite_name(k.suite) + "; libsrtp2 initialised?)");
      set_state(TransportState::Connected);
      return;
    }
    case DtlsState::Failed:
      return fail(dtls_.error());
    case DtlsState::Closed:
      if (state_ != TransportState::Failed && state_ != TransportState::Closed) {
        srtp_in_.reset();
        srtp_out_.reset();
        set_state(TransportState::Closed);
      }
      return;
    default:
      return;
  }
}

void Transport::handle_datagram(uint8_t* data, size_t len, const jn_addr& from, uint64_t now_ms) {
  ++stats_.datagrams_in;
  stats_.bytes_in += len;
  ice_.start(now_ms);
  if (state_ == TransportState::Failed || state_ == TransportState::Closed) return;
  if (len == 0) {
    ++stats_.unknown_in;
    return;
  }
  uint8_t b = data[0];
  if (b <= 3) {  // STUN
    if (!is_stun(data, len)) {
      ++stats_.unknown_in;
      return;
    }
    IceCheck c = ice_.handle(data, len, from, now_ms, stun_out_, sizeof stun_out_);
    if (c.reply_len) {
      stats_.bytes_out += c.reply_len;
      cb_.send_datagram(stun_out_, c.reply_len, from);
    }
    if (c.valid) {
      if (state_ == TransportState::New) set_state(TransportState::Checking);
      if (!dtls_started_) {
        // The client's ClientHello goes to the address just selected.
        dtls_started_ = true;
        dtls_.start(now_ms, cfg_.handshake_timeout_ms);
        after_dtls(now_ms);
      }
    }
    return;
  }
  if (b >= 20 && b <= 63) {  // DTLS
    if (!ice_.validated(from)) {
      ++stats_.unvalidated_in;
      return;
    }
    if (!dtls_started_) {
      dtls_started_ = true;
      dtls_.start(now_ms, cfg_.handshake_timeout_ms);
    }
    dtls_.handle(data, len, now_ms);
    after_dtls(now_ms);
    return;
  }
  if (b >= 128 && b <= 191) {  // RTP / RTCP
    if (!ice_.validated(from)) {
      ++stats_.unvalidated_in;
      return;
    }
    bool rtcp = is_rtcp(data, len);
    uint32_t n = static_cast<uint32_t>(len);
    if (state_ != TransportState::Connected || len < (rtcp ? 8u : 12u) || !srtp_in_.unprotect(data, n, rtcp)) {
      ++stats_.srtp_in_failed;
      return;
    }
    if (rtcp) {
      ++stats_.rtcp_in;
      cb_.on_rtcp(data, n);
    } else {
      ++stats_.rtp_in;
      cb_.on_rtp(data, n);
    }
    return;
  }
  ++stats_.unknown_in;
}

bool Transport::send_rtp(uint8_t* packet, size_t len, size_t capacity) {
  uint32_t n = static_cast<uint32_t>(len);
  if (state_ != TransportState::Connected || len < 12 || len > 0xffff ||
      capacity < len + srtp_tailroom(srtp_out_.suite(), false) || !srtp_out_.protect(packet, n, false)) {
    ++stats_.srtp_out_failed;
    return false;
  }
  ++stats_.rtp_out;
  stats_.bytes_out += n;
  cb_.send_datagram(packet, n, ice_.selected());
  return true;
}

bool Transport::send_rtcp(uint8_t* packet, size_t len, size_t capacity) {
  uint32_t n = static_cast<uint32_t>(len);
  if (state_ != TransportState::Connected || len < 8 || len > 0xffff ||
      capacity < len + srtp_tailroom(srtp_out_.suite(), true) || !srtp_out_.protect(packet, n, true)) {
    ++stats_.srtp_out_failed;
    return false;
  }
  ++stats_.rtcp_out;
  stats_.bytes_out += n;
  cb_.send_datagram(packet, n, ice_.selected());
  return true;
}

bool Transport::send_app_data(const uint8_t* data, size_t len) {
  if (state_ != TransportState::Connected) return false;
  return dtls_.send(data, len);
}

void Transport::close() {
  if (state_ == TransportState::Failed || state_ == TransportState::Closed) return;
  dtls_.close();
  srtp_in_.reset();
  srtp_out_.reset();
  set_state(TransportState::Closed);
}

void Transport::tick(uint64_t now_ms) {
  ice_.start(now_ms);
  if (state_ == TransportState::Failed || state_ == TransportState::Closed) return;
  if (ice_.consent_expired(now_ms))
    return fail("ICE consent expired: no valid connectivity check for " + std::to_string(cfg_.consent_timeout_ms) + " ms");
  if (dtls_started_) {
    dtls_.tick(now_ms);
    after_dtls(now_ms);
  }
}

uint64_t Transport::next_timer_ms() const {
  if (state_ == TransportState::Failed || state_ == TransportState::Closed) return UINT64_MAX;
  if (!ice_.started()) return 0;  // tick once now: it starts the consent clock
  return std::min(ice_.consent_deadline_ms(), dtls_started_ ? dtls_.next_timeout_ms() : UINT64_MAX);
}

TransportStats Transport::stats() const {
  TransportStats s = stats_;
  s.ice = ice_.stats();
  s.dtls = dtls_.stats();
  return s;
}

}  // namespace junction::webrtc
