// PeerConnection: Transport(s) + bridges + RTCP feedback + data channels (peer.hpp says what and why).
#include <junction/util/random.hpp>
#include <junction/webrtc/peer.hpp>

#include <algorithm>
#include <cstring>

namespace junction::webrtc {

namespace {
constexpr uint64_t kReportIntervalMs = 1000;
uint64_t ns(uint64_t ms) { return ms * 1'000'000ull; }
uint64_t ntp_of(uint64_t now_ms) {
  uint64_t secs = now_ms / 1000 + 2208988800ull;
  uint64_t frac = ((now_ms % 1000) << 32) / 1000;
  return secs << 32 | frac;
}
uint32_t rand32() {
  std::string r;
  uint32_t v = 0x4a4e5052u;
  if (util::random_bytes(4, r)) std::memcpy(&v, r.data(), 4);
  return v ? v : 1;
}
}  // namespace

const char* peer_state_name(PeerState s) {
  switch (s) {
    case PeerState::New: return "new";
    case PeerState::Connecting: return "connecting";
    case PeerState::Connected: return "connected";
    case PeerState::Failed: return "failed";
    case PeerState::Closed: return "closed";
  }
  return "?";
}

struct PeerConnection::Leg : TransportCallbacks {
  PeerConnection* pc = nullptr;
  size_t index = 0;
  DtlsRole role = DtlsRole::Server;
  std::unique_ptr<Transport> t;
  TransportState state = TransportState::New;
  void send_datagram(const uint8_t* d, size_t n, const jn_addr& to) override {
    if (!pc->closed_) pc->cb_.send_datagram(index, d, n, to);
  }
  void on_rtp(uint8_t* p, size_t n) override { pc->on_rtp(index, p, n); }
  void on_rtcp(uint8_t* p, size_t n) override { pc->on_rtcp(index, p, n); }
  void on_app_data(const uint8_t* p, size_t n) override { pc->on_app_data(index, p, n); }
  void on_state(TransportState s) override { pc->on_transport_state(index, s); }
};

struct PeerConnection::Out : RtpOutput {
  Transport* t = nullptr;
  std::unique_ptr<RetransmitBuffer> rb;
  bool send_rtp(uint8_t* p, size_t len, size_t cap) override { return t->send_rtp(p, len, cap); }
  bool send_rtcp(uint8_t* p, size_t len, size_t cap) override { return t->send_rtcp(p, len, cap); }
  void store_sent(const uint8_t* p, size_t len) override {
    if (rb) rb->store(p, len);
  }
};

struct PeerConnection::SctpGlue : SctpCallbacks {
  PeerConnection* pc = nullptr;
  void sctp_send(const uint8_t* d, size_t n) override {
    if (!pc->closed_) pc->legs_[pc->sctp_leg_]->t->send_app_data(d, n);
  }
  void on_channel_open(uint16_t s, const DcepOpen& i, bool remote) override { pc->cb_.on_channel_open(s, i, remote); }
  void on_message(uint16_t s, const uint8_t* d, size_t n, bool b) override { pc->cb_.on_channel_message(s, d, n, b); }
  void on_channel_closed(uint16_t s) override { pc->cb_.on_channel_closed(s); }
};

PeerConnection::PeerConnection(const Certificate& cert, PeerCallbacks& cb, const AnswerResult& neg, const PeerConfig& cfg)
    : cert_(cert), cb_(cb), cfg_(cfg) {
  if (cfg_.mtu < 200 || cfg_.mtu > 1500) {
    error_ = "mtu must be 200..1500";
    return;
  }
  if (neg.remotes.empty()) {
    error_ = "negotiation has no transport";
    return;
  }
  if (cfg_.local_ice.empty()) {
    error_ = "no local ICE credentials";
    return;
  }
  rtcp_ssrc_ = rand32();
  for (size_t i = 0; i < neg.remotes.size(); ++i) {
    auto leg = std::make_unique<Leg>();
    leg->pc = this;
    leg->index = i;
    const auto& rem = neg.remotes[i];
    // We are the DTLS server unless the browser is (its a=setup:passive).
    leg->role = rem.setup == JN_SETUP_PASSIVE ? DtlsRole::Client : DtlsRole::Server;
    TransportConfig tc;
    tc.local_ice = cfg_.local_ice[std::min(i, cfg_.local_ice.size() - 1)];
    tc.remote_ice = IceCredentials{rem.ice_ufrag, rem.ice_pwd};
    tc.remote_fingerprint = rem.fingerprint;
    remote_fp_.push_back(rem.fingerprint);
    tc.dtls_role = leg->role;
    tc.consent_timeout_ms = cfg_.consent_timeout_ms;
    tc.handshake_timeout_ms = cfg_.handshake_timeout_ms;
    leg->t = std::make_unique<Transport>(cert_, *leg, tc);
    legs_.push_back(std::move(leg));
  }
  error_ = build_lines(neg);
}

std::string PeerConnection::build_lines(const AnswerResult& neg) {
  lines_.clear();
  outs_.clear();
  const uint64_t kf = ns(cfg_.keyframe_interval_ms);
  for (auto& r : neg.lines) {
    if (!r.accepted) continue;
    if (r.transport >= legs_.size()) {
      return "m-line " + std::to_string(r.index) + " names transport " + std::to_string(r.transport);
    }
    if (r.kind == JN_MEDIA_DATA) {
      if (!cfg_.sctp || !cfg_.sctp->ready() || sctp_) continue;  // refused locally, or running already
      sctp_leg_ = r.transport;
      sctp_remote_port_ = r.sctp_port ? r.sctp_port : 5000;
      sctp_remote_max_ = r.max_message_size ? r.max_message_size : 65536;
      sctp_glue_ = std::make_unique<SctpGlue>();
      sctp_glue_->pc = this;
      SctpConfig sc;
      sc.remote_port = sctp_remote_port_;
      if (r.index < neg.local.media.size() && neg.local.media[r.index].sctp_port)
        sc.local_port = neg.local.media[r.index].sctp_port;
      sc.dtls_client = legs_[r.transport]->role == DtlsRole::Client;
      sc.max_message_size = cfg_.max_message_size;
      sctp_ = std::make_unique<SctpAssociation>(*cfg_.sctp, *sctp_glue_, sc);
      sctp_->set_remote_max_message_size(sctp_remote_max_);
      continue;
    }
    auto line = std::make_unique<Line>(kf);
    line->kind = r.kind;
    line->leg = r.transport;
    line->pt = r.codec.pt;
    line->te_pt = r.telephone_event_pt;
    line->te_clock = r.codec.clock_rate;  // telephone-event is matched at the codec's clock
    line->remote_ssrc = r.remote_ssrc;
    line->local_ssrc = r.local_ssrc;
    line->nack = r.codec.has_fb("nack") && r.kind == JN_MEDIA_VIDEO;
    bool we_send = r.direction == JN_DIR_SENDRECV || r.direction == JN_DIR_SENDONLY;
    bool we_recv = r.direction == JN_DIR_SENDRECV || r.direction == JN_DIR_RECVONLY;
    if (we_send && r.local_ssrc) {
      auto out = std::make_unique<Out>();
      out->t = legs_[r.transport]->t.get();
      if (line->nack && cfg_.nack_slots) out->rb = std::make_unique<RetransmitBuffer>(cfg_.nack_slots, 1, cfg_.mtu);
      SendConfig sc;
      sc.kind = r.kind;
      sc.codec = r.codec;
      sc.ssrc = r.local_ssrc;
      sc.mtu = cfg_.mtu;
      line->tx = std::make_unique<FrameToRtp>(sc, *out);
      if (!line->tx->ok()) {
        return std::string(r.kind == JN_MEDIA_VIDEO ? "video" : "audio") + " sender: " + line->tx->error();
      }
      outs_.push_back(std::move(out));
    }
    if (we_recv) {
      RecvConfig rc;
      rc.kind = r.kind;
      rc.codec = r.codec;
      rc.track = r.kind == JN_MEDIA_VIDEO ? 0 : 1;
      if (r.kind == JN_MEDIA_VIDEO) rc.max_frame = cfg_.max_video_frame;
      if (line->nack) rc.reorder_ms = cfg_.nack_wait_ms;
      line->rx = std::make_unique<RtpToFrames>(rc);
      if (!line->rx->ok()) {
        return std::string(r.kind == JN_MEDIA_VIDEO ? "video" : "audio") + " receiver: " + line->rx->error();
      }
    }
    lines_.push_back(std::move(line));
  }
  return {};
}

bool PeerConnection::renegotiate(const AnswerResult& neg, std::string& err) {
  if (closed_ || !ok()) {
    err = "peer connection is closed";
    return false;
  }
  // Same transports (same certificate, same count): keep them, rebuild the media lines. An ICE
  // restart (new remote ufrag/pwd, same fingerprint) is taken in place: a browser keeps its DTLS
  // association across one (JSEP), so only the ICE checks change credentials; a new DTLS peer
  // needs a new PeerConnection.
  if (neg.remotes.size() != legs_.size()) {
    err = "the number of transports changed: a new PeerConnection is needed";
    return false;
  }
  for (size_t i = 0; i < legs_.size(); ++i) {
    if (neg.remotes[i].fingerprint != remote_fp_[i]) {
      err = "a new certificate on transport " + std::to_string(i) + ": a new PeerConnection is needed";
      return false;
    }
  }
  for (size_t i = 0; i < legs_.size(); ++i) {
    Transport& t = *legs_[i]->t;
    const auto& rem = neg.remotes[i];
    if (rem.ice_ufrag != t.ice().remote().ufrag || rem.ice_pwd != t.ice().remote().pwd) {
      t.set_remote(IceCredentials{rem.ice_ufrag, rem.ice_pwd}, rem.fingerprint);
      ++stats_.ice_restarts;
    }
  }
  std::string e = build_lines(neg);
  if (!e.empty()) {
    err = e;
    error_ = e;
    return false;
  }
  return true;
}

PeerConnection::~PeerConnection() {
  closed_ = true;  // no callbacks while the members go
  sctp_.reset();
}

const Transport& PeerConnection::transport(size_t i) const { return *legs_[i]->t; }

const FrameToRtp* PeerConnection::sender(uint32_t kind) const {
  for (auto& l : lines_)
    if (l->kind == kind && l->tx) return l->tx.get();
  return nullptr;
}
const RtpToFrames* PeerConnection::receiver(uint32_t kind) const {
  for (auto& l : lines_)
    if (l->kind == kind && l->rx) return l->rx.get();
  return nullptr;
}

void PeerConnection::handle_datagram(size_t transport, uint8_t* data, size_t len, const jn_addr& from, uint64_t now_ms) {
  if (closed_ || !ok() || transport >= legs_.size()) return;
  now_ms_ = now_ms;
  legs_[transport]->t->handle_datagram(data, len, from, now_ms);
}

void PeerConnection::on_rtp(size_t leg, uint8_t* p, size_t n) {
  if (n < proto::rtp::kFixedHeader) return;
  ++stats_.rtp_in;
  const uint8_t pt = p[1] & 0x7f;
  const uint32_t ssrc = proto::rtp::rd32(p + 8);
  // The m-line: by the SSRC its SDP announced, else by payload type (unique in a BUNDLE group).
  Line* line = nullptr;
  for (int pass = 0; pass < 2 && !line; ++pass)
    for (auto& lp : lines_) {
      Line& l = *lp;
      if (l.leg != leg || (pass == 0 && (!l.remote_ssrc || l.remote_ssrc != ssrc))) continue;
      if ((l.rx && pt == l.pt) || (l.te_pt >= 0 && pt == l.te_pt)) {
        line = &l;
        break;
      }
    }
  if (!line) {
    ++stats_.rtp_unknown_pt;
    return;
  }
  Line& l = *line;
  if (l.te_pt >= 0 && pt == l.te_pt) {
    on_dtmf_packet(l, p, n);
    return;
  }
  // Receiver statistics for our RR; a gap ahead of the highest sequence number is NACKed at once
  // when a reordering window waits for the resent packets.
  uint16_t seq = proto::rtp::rd16(p + 2);
  if (!l.have_in) {
    l.have_in = true;
    l.max_seq = seq;
  } else {
    uint16_t d = static_cast<uint16_t>(seq - l.max_seq);
    if (d && d < 0x8000) {
      if (d > 1 && d <= 33 && l.rx->reordering()) {
        uint16_t missing[32];
        size_t k = 0;
        for (uint16_t s = static_cast<uint16_t>(l.max_seq + 1); s != seq; ++s) missing[k++] = s;
        size_t len = rtcp_build_nack(rtcp_buf_, sizeof rtcp_buf_ - kRtpTailroom, l.local_ssrc ? l.local_ssrc : rtcp_ssrc_, ssrc,
                                     missing, k);
        if (len && legs_[l.leg]->t->send_rtcp(rtcp_buf_, len, sizeof rtcp_buf_)) stats_.nack_sent += k;
      }
      if (seq < l.max_seq) l.cycles += 1;
      l.max_seq = seq;
    }
  }
  ++l.packets_in;
  auto sink = [this, &l](const media::FrameView& f) { deliver(l, f); };
  l.rx->push(p, n, now_ms_, media::frame_sink(sink));
  after_receive(l);
}

void PeerConnection::deliver(Line& l, const media::FrameView& f) {
  ++stats_.frames_in;
  if (f.meta.frame_flags & JN_MF_KEY) l.pli_limit.keyframe_seen();
  cb_.on_frame(l.kind, f);
}

void PeerConnection::after_receive(Line& l) {
  if (l.kind == JN_MEDIA_VIDEO && l.rx->keyframe_wanted() && l.pli_limit.request(ns(now_ms_))) send_pli(l, now_ms_);
}

void PeerConnection::on_dtmf_packet(Line& l, const uint8_t* p, size_t n) {
  proto::rtp::Header h;
  if (proto::rtp::parse(p, n, h) != proto::rtp::Error::None || h.payload_len < 4) return;
  const uint8_t* e = p + h.header_len;
  if (!(e[1] & 0x80)) return;  // report at the end of the event (E bit), once
  if (l.dtmf_done && l.dtmf_ts == h.timestamp) return;
  l.dtmf_done = true;
  l.dtmf_ts = h.timestamp;
  static const char kDigits[] = "0123456789*#ABCD";
  if (e[0] > 15) return;
  uint32_t clock = l.te_clock ? l.te_clock : 8000;
  uint32_t dur = static_cast<uint32_t>(e[2] << 8 | e[3]);
  ++stats_.dtmf;
  cb_.on_dtmf(kDigits[e[0]], dur * 1000 / clock);
}

void PeerConnection::send_pli(Line& l, uint64_t) {
  uint32_t media_ssrc = l.rx && l.rx->remote_ssrc() ? l.rx->remote_ssrc() : l.remote_ssrc;
  if (!media_ssrc) return;
  size_t n = rtcp_build_pli(rtcp_buf_, sizeof rtcp_buf_ - kRtpTailroom, l.local_ssrc ? l.local_ssrc : rtcp_ssrc_, media_ssrc);
  if (n && legs_[l.leg]->t->send_rtcp(rtcp_buf_, n, sizeof rtcp_buf_)) ++stats_.pli_sent;
}

void PeerConnection::request_keyframe(uint64_t now_ms) {
  if (closed_) return;
  now_ms_ = now_ms;
  for (auto& l : lines_)
    if (l->kind == JN_MEDIA_VIDEO && l->rx && l->pli_limit.request(ns(now_ms))) send_pli(*l, now_ms);
}

bool PeerConnection::send_rtp(size_t transport, uint8_t* p, size_t len, size_t cap) {
  if (closed_ || !ok() || transport >= legs_.size()) return false;
  return legs_[transport]->t->send_rtp(p, len, cap);
}

bool PeerConnection::send_rtcp(size_t transport, uint8_t* p, size_t len, size_t cap) {
  if (closed_ || !ok() || transport >= legs_.size()) return false;
  return legs_[transport]->t->send_rtcp(p, len, cap);
}

void PeerConnection::on_rtcp(size_t leg, uint8_t* p, size_t n) {
  rtcp_walk(p, n, [&](const RtcpPacket& pk) {
    if (pk.type == kRtcpSr) {
      RtcpSr sr;
      if (rtcp_parse_sr(pk, sr))
        for (auto& l : lines_)
          if (l->leg == leg && l->rx && l->rx->remote_ssrc() == sr.ssrc) {
            l->sr_ntp_mid = static_cast<uint32_t>(sr.ntp >> 16);
            l->sr_at_ms = now_ms_;
          }
      return true;
    }
    RtcpFeedback fb;
    if (!rtcp_parse_feedback(pk, fb)) return true;
    auto keyframe_for = [&](uint32_t ssrc) {
      for (auto& l : lines_)
        if (l->leg == leg && l->tx && l->local_ssrc == ssrc) {
          ++stats_.pli_fir_in;
          if (l->upstream_limit.request(ns(now_ms_))) cb_.on_keyframe_request(l->kind, "loss");
        }
    };
    switch (fb.kind) {
      case RtcpFbKind::Pli: keyframe_for(fb.media_ssrc); break;
      case RtcpFbKind::Fir: rtcp_fir_for_each(pk, [&](uint32_t ssrc, uint8_t) { keyframe_for(ssrc); }); break;
      case RtcpFbKind::Nack:
        for (size_t i = 0; i < lines_.size(); ++i) {
          Line& l = *lines_[i];
          if (l.leg != leg || !l.tx || l.local_ssrc != fb.media_ssrc) continue;
          Out* out = nullptr;
          for (auto& o : outs_)
            if (o->t == legs_[leg]->t.get() && o->rb) out = o.get();
          rtcp_nack_for_each(pk, [&](uint16_t seq) {
            ++stats_.nack_in;
            if (!out) return;
            size_t len = out->rb->copy_out(fb.media_ssrc, seq, rtx_buf_, sizeof rtx_buf_ - kRtpTailroom);
            if (len && legs_[leg]->t->send_rtp(rtx_buf_, len, sizeof rtx_buf_)) ++stats_.retransmitted;
          });
        }
        break;
      default: break;  // REMB and others: ignored
    }
    return true;
  });
}

void PeerConnection::on_app_data(size_t leg, const uint8_t* p, size_t n) {
  if (sctp_ && leg == sctp_leg_) sctp_->handle_input(p, n);
}

void PeerConnection::on_transport_state(size_t leg, TransportState s) {
  legs_[leg]->state = s;
  if (s == TransportState::Connected && sctp_ && leg == sctp_leg_ && sctp_->state() == SctpState::New) sctp_->start();
  update_state();
}

void PeerConnection::update_state() {
  if (closed_ || closing_) return;
  bool all_connected = true, any_failed = false, all_closed = true, any_started = false;
  for (auto& l : legs_) {
    all_connected = all_connected && l->state == TransportState::Connected;
    any_failed = any_failed || l->state == TransportState::Failed;
    all_closed = all_closed && l->state == TransportState::Closed;
    any_started = any_started || l->state != TransportState::New;
  }
  PeerState s = any_failed ? PeerState::Failed
                : all_closed ? PeerState::Closed
                : all_connected ? PeerState::Connected
                : any_started ? PeerState::Connecting
                              : PeerState::New;
  if (s == state_) return;
  state_ = s;
  cb_.on_state(s);
}

bool PeerConnection::send_frame(uint32_t kind, const media::FrameView& f, uint64_t now_ms) {
  if (closed_ || !ok()) return false;
  now_ms_ = now_ms;
  for (auto& l : lines_) {
    if (l->kind != kind || !l->tx) continue;
    switch (l->tx->send(f)) {
      case FrameToRtp::Result::Sent: ++stats_.frames_out; return true;
      case FrameToRtp::Result::NeedKeyframe:
        if (l->upstream_limit.request(ns(now_ms))) cb_.on_keyframe_request(kind, "join");
        return false;
      case FrameToRtp::Result::Refused: return false;
    }
  }
  return false;
}

void PeerConnection::send_reports(uint64_t now_ms) {
  for (size_t li = 0; li < legs_.size(); ++li) {
    Transport& t = *legs_[li]->t;
    if (t.state() != TransportState::Connected) continue;
    size_t off = 0;
    const size_t cap = sizeof rtcp_buf_ - kRtpTailroom;
    RtcpReportBlock blocks[8];
    size_t nb = 0;
    for (auto& l : lines_) {
      if (l->leg != li || !l->rx || !l->have_in || nb == 8) continue;
      RtcpReportBlock& b = blocks[nb++];
      b.ssrc = l->rx->remote_ssrc();
      const media::DepacketizerStats* ds = l->rx->depacketizer_stats();
      b.cumulative_lost = ds ? static_cast<int32_t>(std::min<uint64_t>(ds->lost_packets, 0x7fffff)) : 0;
      b.highest_seq = l->cycles << 16 | l->max_seq;
      if (l->sr_at_ms) {
        b.lsr = l->sr_ntp_mid;
        b.dlsr = static_cast<uint32_t>((now_ms - l->sr_at_ms) * 65536 / 1000);
      }
    }
    bool first = true;
    for (auto& l : lines_) {
      if (l->leg != li || !l->tx || !l->tx->stats().packets) continue;
      const auto& st = l->tx->stats();
      size_t w = rtcp_build_sr(rtcp_buf_ + off, cap - off, l->local_ssrc, ntp_of(now_ms), l->tx->last_rtp_ts(),
                               static_cast<uint32_t>(st.packets), static_cast<uint32_t>(st.bytes - 12 * st.packets),
                               first ? blocks : nullptr, first ? nb : 0);
      if (!w) break;
      off += w;
      first = false;
    }
    if (first && nb) off += rtcp_build_rr(rtcp_buf_, cap, rtcp_ssrc_, blocks, nb);  // we send nothing here
    if (off) t.send_rtcp(rtcp_buf_, off, sizeof rtcp_buf_);
  }
}

void PeerConnection::tick(uint64_t now_ms) {
  if (closed_ || !ok()) return;
  now_ms_ = now_ms;
  for (auto& l : legs_) l->t->tick(now_ms);
  if (sctp_) sctp_->tick(now_ms);
  for (auto& lp : lines_) {
    Line& l = *lp;
    if (l.rx && l.rx->next_deadline_ms() <= now_ms) {  // a gap given up: what waited behind it goes on
      auto sink = [this, &l](const media::FrameView& f) { deliver(l, f); };
      l.rx->poll(now_ms, media::frame_sink(sink));
      after_receive(l);
    }
    if (l.kind == JN_MEDIA_VIDEO && l.rx && l.pli_limit.due(ns(now_ms))) send_pli(l, now_ms);
  }
  if (now_ms >= next_report_ms_) {
    if (next_report_ms_) send_reports(now_ms);
    next_report_ms_ = now_ms + kReportIntervalMs;
  }
}

uint64_t PeerConnection::next_timer_ms() const {
  if (closed_ || !ok()) return UINT64_MAX;
  uint64_t t = next_report_ms_ ? next_report_ms_ : now_ms_ + kReportIntervalMs;
  for (auto& l : legs_) t = std::min(t, l->t->next_timer_ms());
  if (sctp_ && sctp_->state() != SctpState::New) t = std::min(t, sctp_->next_timer_ms(now_ms_));
  for (auto& l : lines_) {
    uint64_t d = l->pli_limit.next_due_ns();
    if (d != UINT64_MAX) t = std::min<uint64_t>(t, d / 1'000'000u);
    if (l->rx) t = std::min(t, l->rx->next_deadline_ms());
  }
  return t;
}

int PeerConnection::open_channel(const DcepOpen& info) { return sctp_ ? sctp_->open_channel(info) : -1; }
bool PeerConnection::send_channel(uint16_t s, const uint8_t* d, size_t n, bool binary) {
  return sctp_ && sctp_->send(s, d, n, binary);
}
bool PeerConnection::close_channel(uint16_t s) { return sctp_ && sctp_->close_channel(s); }

void PeerConnection::close() {
  if (closed_) return;
  closing_ = true;  // the close_notify still goes out; no state callbacks on the way down
  if (sctp_) sctp_->close();
  for (auto& l : legs_) l->t->close();
  closed_ = true;
  state_ = PeerState::Closed;
}

}  // namespace junction::webrtc
