// Transport: ICE-lite + DTLS + SRTP/SRTCP over one selected 5-tuple (BUNDLE and rtcp-mux: one
// address carries everything), the WebRTC media transport of one PeerConnection (or of one m-line
// when the peer does not bundle). Datagrams are demultiplexed by their first byte (RFC 7983):
// [0,3] STUN, [20,63] DTLS, [128,191] RTP/RTCP; anything else is counted and dropped.
//
// No sockets, timers or threads: the plugin hands every datagram received on the media loop to
// handle_datagram(), sends what send_datagram() asks on its UDP socket, and calls tick() at
// next_timer_ms() (times are the caller's monotonic milliseconds). Everything of one Transport
// runs on one media loop. RTP is decrypted and encrypted in place (no copy, no allocation per
// packet); send_rtp/send_rtcp need srtp_tailroom bytes after the packet (kSrtpMaxTailroom is
// always enough).
//
// States: New (nothing yet) -> Checking (a valid ICE check arrived, DTLS handshaking) ->
// Connected (DTLS done, SRTP keyed) -> Closed (close() or the peer's close_notify). Failed: a
// wrong certificate fingerprint, a failed handshake, no handshake in time, or consent expired (no
// valid ICE check for consent_timeout_ms, RFC 7675). Failed and Closed are final.
//
// Media (DTLS, SRTP) is accepted only from addresses that passed a valid ICE check and is sent to
// the selected address. The libsrtp2 library must be initialised first (srtp_library_init).
#pragma once

#include <junction/abi.h>
#include <junction/webrtc/dtls.hpp>
#include <junction/webrtc/ice_lite.hpp>
#include <junction/webrtc/srtp.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace junction::webrtc {

enum class TransportState : uint8_t { New, Checking, Connected, Failed, Closed };
const char* transport_state_name(TransportState s);

struct TransportCallbacks {
  virtual ~TransportCallbacks() = default;
  virtual void send_datagram(const uint8_t* data, size_t len, const jn_addr& to) = 0;  // to the core
  virtual void on_rtp(uint8_t* packet, size_t len) = 0;               // decrypted, in place, any SSRC
  virtual void on_rtcp(uint8_t* packet, size_t len) = 0;              // decrypted compound
  virtual void on_app_data(const uint8_t* data, size_t len) = 0;      // DTLS application data (SCTP)
  virtual void on_state(TransportState s) = 0;  // New, Checking, Connected (DTLS done), Failed, Closed
};

struct TransportConfig {
  IceCredentials local_ice;          // ours (ice_random_credentials), in our SDP
  IceCredentials remote_ice;         // the peer's, from its SDP (ufrag may be empty: not known yet)
  std::string remote_fingerprint;    // "sha-256 AB:CD:..." from the peer's SDP
  DtlsRole dtls_role = DtlsRole::Server;  // we answer a=setup:passive -> Server
  uint64_t consent_timeout_ms = 30000;    // RFC 7675
  uint64_t handshake_timeout_ms = 30000;  // from the first valid ICE check to DTLS Connected
};

struct TransportStats {
  IceStats ice;
  DtlsStats dtls;
  uint64_t datagrams_in = 0;
  uint64_t unknown_in = 0;         // first byte in no RFC 7983 range, or too short: dropped
  uint64_t unvalidated_in = 0;     // DTLS/RTP from an address without a valid ICE check: dropped
  uint64_t rtp_in = 0;
  uint64_t rtcp_in = 0;
  uint64_t srtp_in_failed = 0;     // unprotect failed (auth, replay) or before Connected: dropped
  uint64_t rtp_out = 0;
  uint64_t rtcp_out = 0;
  uint64_t srtp_out_failed = 0;    // not Connected, no tailroom, protect failed
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

class Transport : private DtlsIo {
 public:
  // cert must outlive the Transport.
  Transport(const Certificate& cert, TransportCallbacks& cb, TransportConfig cfg);
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  ~Transport() override;

  // The peer's credentials and fingerprint when they come later than construction (we offered).
  void set_remote(IceCredentials remote_ice, std::string remote_fingerprint);

  // One datagram received from `from`. Decrypted RTP/RTCP is handed to the callbacks in place.
  void handle_datagram(uint8_t* data, size_t len, const jn_addr& from, uint64_t now_ms);
  // Protects in place (capacity = the buffer's size from packet) and sends to the selected
  // address. False (counted) when not Connected or the tailroom is short.
  bool send_rtp(uint8_t* packet, size_t len, size_t capacity);
  bool send_rtcp(uint8_t* packet, size_t len, size_t capacity);
  bool send_app_data(const uint8_t* data, size_t len);  // for SCTP
  // close_notify to the peer, state Closed.
  void close();

  void tick(uint64_t now_ms);
  uint64_t next_timer_ms() const;  // UINT64_MAX: nothing pending

  TransportState state() const { return state_; }
  const jn_addr& selected() const { return ice_.selected(); }
  TransportStats stats() const;
  const std::string& error() const { return error_; }  // why Failed
  const IceLite& ice() const { return ice_; }
  const Dtls& dtls() const { return dtls_; }
  SrtpSuite srtp_suite() const { return srtp_out_.suite(); }

 private:
  void dtls_send(const uint8_t* data, size_t len) override;
  void dtls_app_data(const uint8_t* data, size_t len) override;
  void set_state(TransportState s);
  void fail(std::string why);
  void after_dtls(uint64_t now_ms);

  TransportCallbacks& cb_;
  TransportConfig cfg_;
  IceLite ice_;
  Dtls dtls_;
  SrtpSession srtp_in_, srtp_out_;
  TransportState state_ = TransportState::New;
  std::string error_;
  bool dtls_started_ = false;
  TransportStats stats_;
  uint8_t stun_out_[512];
};

}  // namespace junction::webrtc
