// ICE-lite + DTLS + SRTP over one 5-tuple. See transport.hpp.
#include <junction/webrtc/rtcp.hpp>
#include <junction/webrtc/stun.hpp>
#include <junction/webrtc/transport.hpp>

#include <junction/util/addr.hpp>
#include <junction/util/encoding.hpp>

#include <nlohmann/json.hpp>

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

Transport::Transport(const Certificate& cert, TransportCallbacks& cb, const TransportSnapshot& snap, uint64_t now_ms)
    : cb_(cb),
      cfg_{snap.local_ice, snap.remote_ice, snap.remote_fingerprint, snap.dtls_role, snap.consent_timeout_ms, 30000},
      ice_(cfg_.local_ice, cfg_.remote_ice, cfg_.consent_timeout_ms),
      dtls_(cert, cfg_.dtls_role, cfg_.remote_fingerprint, *this),
      restored_(true) {
  ice_.restore(snap.selected, snap.nominated, now_ms);
  dtls_started_ = true;
  if (snap.selected.family == 0 || !srtp_out_.create(snap.suite, snap.srtp_local_key, false, snap.out_rocs) ||
      !srtp_in_.create(snap.suite, snap.srtp_remote_key, true, snap.in_rocs)) {
    error_ = "transport snapshot without a selected address or valid SRTP keys";
    srtp_in_.reset();
    srtp_out_.reset();
    state_ = TransportState::Failed;
    return;
  }
  for (size_t i = 0; i < snap.out_rocs.size() && i < kMaxSsrcs; ++i) ssrc_out_[i] = snap.out_rocs[i].first;
  for (size_t i = 0; i < snap.in_rocs.size() && i < kMaxSsrcs; ++i) ssrc_in_[i] = snap.in_rocs[i].first;
  state_ = TransportState::Connected;
}

Transport::~Transport() = default;

void Transport::note_ssrc(uint32_t* list, uint32_t ssrc) {
  for (size_t i = 0; i < kMaxSsrcs; ++i) {
    if (list[i] == ssrc) return;
    if (list[i] == 0) {
      list[i] = ssrc;
      return;
    }
  }
}

bool Transport::snapshot(TransportSnapshot& out) const {
  if (state_ != TransportState::Connected) return false;
  out = TransportSnapshot{};
  out.local_ice = cfg_.local_ice;
  out.remote_ice = ice_.remote();
  out.remote_fingerprint = cfg_.remote_fingerprint;
  out.dtls_role = cfg_.dtls_role;
  out.consent_timeout_ms = cfg_.consent_timeout_ms;
  out.selected = ice_.selected();
  out.nominated = ice_.nominated();
  out.suite = srtp_out_.suite();
  out.srtp_local_key = srtp_out_.key();
  out.srtp_remote_key = srtp_in_.key();
  uint32_t roc = 0;
  for (uint32_t s : ssrc_out_)
    if (s && srtp_out_.roc(s, roc)) out.out_rocs.emplace_back(s, roc);
  for (uint32_t s : ssrc_in_)
    if (s && srtp_in_.roc(s, roc)) out.in_rocs.emplace_back(s, roc);
  return true;
}

nlohmann::json snapshot_to_json(const TransportSnapshot& s) {
  using util::hex_encode;
  nlohmann::json j;
  j["ufrag"] = s.local_ice.ufrag;
  j["pwd"] = s.local_ice.pwd;
  j["remote_ufrag"] = s.remote_ice.ufrag;
  j["remote_pwd"] = s.remote_ice.pwd;
  j["fingerprint"] = s.remote_fingerprint;
  j["client"] = s.dtls_role == DtlsRole::Client;
  j["consent_ms"] = s.consent_timeout_ms;
  j["selected"] = util::format_addr(s.selected);
  j["nominated"] = s.nominated;
  j["suite"] = suite_name(s.suite);
  j["key_local"] = hex_encode(s.srtp_local_key);
  j["key_remote"] = hex_encode(s.srtp_remote_key);
  auto rocs = [](const std::vector<std::pair<uint32_t, uint32_t>>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (auto& [ssrc, roc] : v) a.push_back({ssrc, roc});
    return a;
  };
  j["out_rocs"] = rocs(s.out_rocs);
  j["in_rocs"] = rocs(s.in_rocs);
  return j;
}

bool snapshot_from_json(const nlohmann::json& j, TransportSnapshot& out) {
  out = TransportSnapshot{};
  if (!j.is_object()) return false;
  auto str = [&](const char* k, std::string& v) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return false;
    v = it->get<std::string>();
    return true;
  };
  std::string selected, suite, kl, kr;
  if (!str("ufrag", out.local_ice.ufrag) || !str("pwd", out.local_ice.pwd) || !str("remote_ufrag", out.remote_ice.ufrag) ||
      !str("remote_pwd", out.remote_ice.pwd) || !str("fingerprint", out.remote_fingerprint) || !str("selected", selected) ||
      !str("suite", suite) || !str("key_local", kl) || !str("key_remote", kr))
    return false;
  auto b = j.find("client");
  auto n = j.find("nominated");
  auto c = j.find("consent_ms");
  if (b == j.end() || !b->is_boolean() || n == j.end() || !n->is_boolean() || c == j.end() || !c->is_number_unsigned())
    return false;
  out.dtls_role = b->get<bool>() ? DtlsRole::Client : DtlsRole::Server;
  out.nominated = n->get<bool>();
  out.consent_timeout_ms = c->get<uint64_t>();
  out.suite = suite_from_name(suite);
  if (out.suite == SrtpSuite::None || !util::parse_addr(selected, out.selected) ||
      !util::hex_decode(kl, out.srtp_local_key) || !util::hex_decode(kr, out.srtp_remote_key) ||
      out.srtp_local_key.size() != srtp_master_len(out.suite) || out.srtp_remote_key.size() != srtp_master_len(out.suite))
    return false;
  auto rocs = [&](const char* k, std::vector<std::pair<uint32_t, uint32_t>>& v) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_array()) return false;
    for (auto& e : *it) {
      if (!e.is_array() || e.size() != 2 || !e[0].is_number_unsigned() || !e[1].is_number_unsigned()) return false;
      uint64_t ssrc = e[0].get<uint64_t>(), roc = e[1].get<uint64_t>();
      if (ssrc > UINT32_MAX || roc > UINT32_MAX) return false;
      v.emplace_back(static_cast<uint32_t>(ssrc), static_cast<uint32_t>(roc));
    }
    return true;
  };
  return rocs("out_rocs", out.out_rocs) && rocs("in_rocs", out.in_rocs);
}

void Transport::set_remote(IceCredentials remote_ice, std::string remote_fingerprint) {
  cfg_.remote_ice = remote_ice;
  cfg_.remote_fingerprint = remote_fingerprint;
  ice_.set_remote(std::move(remote_ice));
  dtls_.set_remote_fingerprint(std::move(remote_fingerprint));
  if (state_ == TransportState::Checking) maybe_start_dtls(last_now_ms_);
}

void Transport::set_remote(IceCredentials remote_ice, std::string remote_fingerprint, DtlsRole role) {
  if (!dtls_started_) {
    cfg_.dtls_role = role;
    dtls_.set_role(role);
  }
  set_remote(std::move(remote_ice), std::move(remote_fingerprint));
}

void Transport::maybe_start_dtls(uint64_t now_ms) {
  if (dtls_started_ || !checked_ || cfg_.remote_fingerprint.empty() || restored_) return;
  // The client's ClientHello goes to the address just selected.
  dtls_started_ = true;
  dtls_.start(now_ms, cfg_.handshake_timeout_ms);
  after_dtls(now_ms);
  if (!pending_dtls_.empty() && dtls_.role() == DtlsRole::Server && dtls_.state() == DtlsState::Handshaking) {
    dtls_.handle(pending_dtls_.data(), pending_dtls_.size(), now_ms);
    after_dtls(now_ms);
  }
  pending_dtls_.clear();
  pending_dtls_.shrink_to_fit();
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
  last_now_ms_ = now_ms;
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
      checked_ = true;
      if (state_ == TransportState::New) set_state(TransportState::Checking);
      maybe_start_dtls(now_ms);
    }
    return;
  }
  if (b >= 20 && b <= 63) {  // DTLS
    if (!ice_.validated(from)) {
      ++stats_.unvalidated_in;
      return;
    }
    if (restored_) {
      ++stats_.dtls_ignored;
      return;
    }
    if (!dtls_started_) {
      // The peer's answer (its fingerprint) has not reached us yet: keep its latest flight (a
      // ClientHello) for when it does, instead of failing a handshake we cannot verify.
      ++stats_.dtls_early;
      pending_dtls_.assign(data, data + std::min<size_t>(len, 2048));
      return;
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
      note_ssrc(ssrc_in_, static_cast<uint32_t>(data[8]) << 24 | static_cast<uint32_t>(data[9]) << 16 |
                              static_cast<uint32_t>(data[10]) << 8 | data[11]);
      cb_.on_rtp(data, n);
    }
    return;
  }
  ++stats_.unknown_in;
}

bool Transport::send_rtp(uint8_t* packet, size_t len, size_t capacity) {
  uint32_t n = static_cast<uint32_t>(len);
  if (state_ != TransportState::Connected || len < 12 || len > 0xffff ||
      capacity < len + srtp_tailroom(srtp_out_.suite(), false)) {
    ++stats_.srtp_out_failed;
    return false;
  }
  note_ssrc(ssrc_out_, static_cast<uint32_t>(packet[8]) << 24 | static_cast<uint32_t>(packet[9]) << 16 |
                           static_cast<uint32_t>(packet[10]) << 8 | packet[11]);
  if (!srtp_out_.protect(packet, n, false)) {
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
  if (state_ != TransportState::Connected || restored_) return false;
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
  last_now_ms_ = now_ms;
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
