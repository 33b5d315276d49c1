// The SIP UAC side of a capture: resolve the target (RFC 3263 through the core), REGISTER first
// when sipRegisterRequired, INVITE with the document's SDP, 401/407 answered with digest,
// CANCEL before an answer, BYE both ways, re-INVITEs (hold, new SDP) answered, INFO for
// picture_fast_update and DTMF.
#include "plugin.hpp"

#include <junction/util/addr.hpp>
#include <junction/util/random.hpp>

#include <algorithm>

namespace capture {

using junction::sdk::to_sv;

namespace {
constexpr const char* kAllow = "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS";

sip::Proto proto_of(SipTransport t) {
  return t == SipTransport::Tls ? sip::Proto::Tls : t == SipTransport::Tcp ? sip::Proto::Tcp : sip::Proto::Udp;
}

std::string host_port(const std::string& host, uint16_t port) {
  std::string h = host.find(':') != std::string::npos && host.front() != '[' ? "[" + host + "]" : host;
  return port ? h + ":" + std::to_string(port) : h;
}
}  // namespace

void CapturePlugin::sip_begin(Call& c) {
  SipLeg& leg = legs_[c.id];
  leg.local_tag = stack_->new_tag();
  const StartRequest& r = c.req;
  leg.transport = r.transport == SipTransport::Default ? conf_.sip_transport : r.transport;
  leg.request_uri = "sip:" + r.callee + "@" + host_port(r.sip_domain, r.sip_port);
  // Where requests go: the outbound proxy when given (with a loose Route), else the domain.
  std::string target = r.sip_proxy.empty() ? r.sip_domain : r.sip_proxy;
  if (!r.sip_proxy.empty() && r.sip_proxy != r.sip_domain) leg.route = "<sip:" + host_port(r.sip_proxy, r.sip_port) + ";lr>";
  std::string t = target;
  if (t.size() > 2 && t.front() == '[') t = t.substr(1, t.size() - 2);
  // No sipPort: SRV (_sip._udp, _sip._tcp, _sips._tcp), else the transport's default port.
  jn_status st = stack_->resolve(t, r.sip_port, proto_of(leg.transport), cookie(kSipResolve, c.id));
  if (st != JN_OK) end_call(c, Status::Failed, 0, "cannot resolve " + target + " (status " + std::to_string(st) + ")", false);
}

void CapturePlugin::on_resolved(uint64_t ck, const std::vector<sip::Flow>& targets, std::string_view error) {
  if (cookie_kind(ck) != kSipResolve) return;
  Call* c = reg_.by_id(cookie_id(ck));
  auto it = legs_.find(cookie_id(ck));
  if (!c || it == legs_.end() || is_final(c->status)) return;
  SipLeg& leg = it->second;
  sip::Proto want = proto_of(leg.transport);
  sip::Flow f;
  bool found = false;
  for (auto& t : targets)
    if (t.proto == want) {
      f = t;
      found = true;
      break;
    }
  if (!found) {
    std::string none = std::string("no ") + sip_transport_name(leg.transport) + " target";
    end_call(*c, Status::Failed, 0, "SIP target not resolved: " + (error.empty() ? none : std::string(error)), false);
    return;
  }
  leg.flow = f;
  leg.resolved = true;
  if (leg.transport != SipTransport::Udp) {
    // The call's one connection, opened before the first request (the env verifies a TLS
    // server's certificate: RFC 5922, it must name the domain): every request of the call and
    // the device's in-dialog requests use it, and its CONNECTED starts the call.
    std::string addr = junction::util::format_addr(f.peer);
    std::string server_name = c->req.sip_proxy.empty() ? c->req.sip_domain : c->req.sip_proxy;  // what was resolved
    if (server_name.size() > 2 && server_name.front() == '[') server_name = server_name.substr(1, server_name.size() - 2);
    jn_status st = env_.connect(leg.flow, server_name);
    if (st != JN_OK) {
      end_call(*c, Status::Failed, 0, std::string("cannot open a SIP ") + sip_transport_name(leg.transport) + " connection to " + addr +
                                          " (status " + std::to_string(st) + ")", false);
      return;
    }
    leg.conn_pending = true;
    sip_conns_[leg.flow.conn] = c->id;
    host().info("rest-sip-capture: call " + c->call_id + ": connecting to " + addr + " over SIP " + sip_transport_name(leg.transport));
    return;  // sip_connected goes on
  }
  sip_connected(c->id);
}

// The SIP target is reachable (UDP at once; TCP / TLS once connected): REGISTER or INVITE.
void CapturePlugin::sip_connected(uint64_t call) {
  Call* c = reg_.by_id(call);
  auto it = legs_.find(call);
  if (!c || it == legs_.end() || is_final(c->status)) return;
  SipLeg& leg = it->second;
  leg.conn_pending = false;
  if (c->req.register_required) {
    leg.reg_call_id = stack_->new_call_id();
    leg.reg_tag = stack_->new_tag();
    set_status(*c, Status::Registering, 0);
    send_register(*c, leg, {});
  } else {
    send_invite(*c, leg, {});
  }
}

// Our SIP connections' events (after the stack's env saw them).
void CapturePlugin::sip_conn_event(const jn_tcp_event& ev) {
  auto it = sip_conns_.find(ev.conn);
  if (it == sip_conns_.end()) return;
  uint64_t call = it->second;
  if (ev.type == JN_TCP_CONNECTED) {
    sip_connected(call);
    return;
  }
  if (ev.type != JN_TCP_CLOSED) return;
  sip_conns_.erase(it);
  Call* c = reg_.by_id(call);
  auto lt = legs_.find(call);
  if (!c || is_final(c->status) || lt == legs_.end()) return;
  SipLeg& leg = lt->second;
  const char* tr = sip_transport_name(leg.transport);
  std::string why = leg.conn_pending ? std::string("cannot connect to the SIP server over ") + tr +
                                           (leg.transport == SipTransport::Tls ? " (TCP connect or TLS handshake/verification failed)" : "")
                                     : std::string("the SIP ") + tr + " connection was closed";
  why += " (status " + std::to_string(ev.status) + ")";
  host().warn("rest-sip-capture: call " + c->call_id + ": " + why);
  leg.has_dialog = false;  // nothing can reach the device any more
  leg.invite_txn = 0;
  end_call(*c, Status::Failed, c->sip_status, why, false);
  legs_.erase(call);
}

// A call's connection is closed once the call is over and its last transaction (a BYE) has had
// its answer (reliable transport: no retransmissions to wait for).
void CapturePlugin::sip_conns_sweep(uint64_t now) {
  std::vector<jn_handle> done;
  for (auto& [conn, call] : sip_conns_) {
    const Call* c = reg_.by_id(call);
    if (!c || (is_final(c->status) && now >= c->ended_ms + 2000 && !legs_.count(call) &&
               std::none_of(txn_call_.begin(), txn_call_.end(), [&](const auto& t) { return t.second == call; })))
      done.push_back(conn);
  }
  for (jn_handle h : done) {
    sip_conns_.erase(h);
    host().tcp_close(h);
  }
}

void CapturePlugin::write_via(sip::Writer& w, const SipLeg& leg) { stack_->write_via(w, proto_of(leg.transport), stack_->new_branch()); }

std::string CapturePlugin::contact(const SipLeg& leg, std::string_view user) const { return stack_->contact(proto_of(leg.transport), user); }

// Our SDP's parameters (the INVITE's offer and the answer to a re-INVITE).
OfferParams CapturePlugin::offer_params(const Call& c, const SipLeg& leg) {
  OfferParams o;
  o.ip = conf_.sdp_ip;
  o.call_id = c.call_id;
  o.offer_opus = conf_.offer_opus;
  o.dtmf_pt = conf_.dtmf_payload_type;
  o.send_audio = c.req.has_audio;
  o.send_video = c.req.has_video;
  o.version = leg.sdp_version;
  if (auto m = media_of(c.id)) {
    std::lock_guard<std::mutex> g(m->mu);
    o.audio_port = m->audio.port;
    o.video_port = m->video.port;
    o.audio_ssrc = m->audio.own_ssrc;
    o.video_ssrc = m->video.own_ssrc;
  }
  return o;
}

// The one REGISTER builder: the first request (auth empty) and the answer to a challenge, whose
// header name follows it (Authorization for 401, Proxy-Authorization for 407).
void CapturePlugin::send_register(Call& c, SipLeg& leg, const std::string& auth, int challenge) {
  const StartRequest& r = c.req;
  std::string aor = "sip:" + r.sip_login + "@" + host_port(r.sip_domain, 0);
  std::string out;
  sip::Writer w(out);
  std::string ruri = "sip:" + host_port(r.sip_domain, r.sip_port);
  w.request_line("REGISTER", ruri);
  write_via(w, leg);
  w.header("Max-Forwards", 70);
  w.header("From", "<" + aor + ">;tag=" + leg.reg_tag);
  w.header("To", "<" + aor + ">");
  w.header("Call-ID", leg.reg_call_id);
  w.header("CSeq", std::to_string(++leg.reg_cseq) + " REGISTER");
  w.header("Contact", contact(leg, r.sip_login));
  w.header("Expires", static_cast<int64_t>(conf_.register_expires));
  if (!leg.route.empty()) w.header("Route", leg.route);
  if (!auth.empty()) w.header(sip::credentials_header(challenge), auth);
  if (!conf_.user_agent.empty()) w.header("User-Agent", conf_.user_agent);
  w.finish();
  leg.reg_txn = stack_->send_request(out, leg.flow);
  if (!leg.reg_txn) {
    end_call(c, Status::Failed, 0, "REGISTER could not be sent", false);
    return;
  }
  txn_call_[leg.reg_txn] = c.id;
}

void CapturePlugin::send_invite(Call& c, SipLeg& leg, const std::string& auth) {
  const StartRequest& r = c.req;
  auto m = media_of(c.id);
  if (!m) {
    end_call(c, Status::Failed, 0, "no media", false);
    return;
  }
  c.local_sdp = build_offer(offer_params(c, leg));
  std::string out;
  sip::Writer w(out);
  w.request_line("INVITE", leg.request_uri);
  write_via(w, leg);
  w.header("Max-Forwards", 70);
  w.name_addr("From", r.visible_name.empty() ? c.caller : r.visible_name, "sip:" + c.caller + "@" + host_port(r.sip_domain, 0), leg.local_tag);
  w.name_addr("To", {}, "sip:" + r.callee + "@" + host_port(r.sip_domain, 0));
  w.header("Call-ID", c.call_id);
  leg.invite_cseq = leg.invite_cseq ? leg.invite_cseq + 1 : 1;
  w.header("CSeq", std::to_string(leg.invite_cseq) + " INVITE");
  w.header("Contact", contact(leg, c.caller));
  if (!leg.route.empty()) w.header("Route", leg.route);
  w.header("Allow", kAllow);
  if (!auth.empty()) w.header(sip::credentials_header(leg.auth_tries == 407 ? 407 : 401), auth);
  if (!conf_.user_agent.empty()) w.header("User-Agent", conf_.user_agent);
  w.finish(c.local_sdp, "application/sdp");
  leg.invite = out;
  leg.provisional = false;
  leg.invite_txn = stack_->send_request(out, leg.flow);
  if (!leg.invite_txn) {
    end_call(c, Status::Failed, 0, "INVITE could not be sent", false);
    return;
  }
  txn_call_[leg.invite_txn] = c.id;
  set_status(c, Status::Trying, 0);
}

void CapturePlugin::on_response(sip::TxnId id, int status, const sip::Message* m) {
  auto t = txn_call_.find(id);
  if (t == txn_call_.end()) return;
  uint64_t call = t->second;
  if (status >= 200) txn_call_.erase(t);
  Call* c = reg_.by_id(call);
  auto it = legs_.find(call);
  if (!c || it == legs_.end()) return;
  SipLeg& leg = it->second;
  if (id == leg.invite_txn) on_invite_response(*c, leg, status, m);
  else if (id == leg.reg_txn) on_register_response(*c, leg, status, m);
  else if (status >= 300)
    host().info("rest-sip-capture: call " + c->call_id + ": in-dialog request answered " + std::to_string(status));
}

void CapturePlugin::on_register_response(Call& c, SipLeg& leg, int status, const sip::Message* m) {
  if (status < 200 || is_final(c.status)) return;
  leg.reg_txn = 0;
  if ((status == 401 || status == 407) && m && leg.reg_auth_tries < 2) {
    const sip::Header* h = m->find(status == 407 ? sip::HeaderId::ProxyAuthenticate : sip::HeaderId::WWWAuthenticate);
    std::string auth;
    std::string user = c.req.sip_auth_name.empty() ? c.req.sip_login : c.req.sip_auth_name;
    if (h && leg.reg_auth.set_challenge(h->value) &&
        leg.reg_auth.authorize("REGISTER", "sip:" + host_port(c.req.sip_domain, c.req.sip_port), user, c.req.sip_password, auth)) {
      ++leg.reg_auth_tries;
      send_register(c, leg, auth, status);
      return;
    }
  }
  if (status >= 300) {
    end_call(c, Status::Failed, status, "REGISTER refused: " + std::to_string(status) + (m ? " " + std::string(m->reason()).substr(0, 64) : std::string(" (no answer)")), false);
    return;
  }
  leg.registered = true;
  host().info("rest-sip-capture: call " + c.call_id + ": registered as " + c.req.sip_login);
  send_invite(c, leg, {});
}

void CapturePlugin::on_invite_response(Call& c, SipLeg& leg, int status, const sip::Message* m) {
  if (status < 200) {
    if (status > 100) leg.provisional = true;
    if (is_final(c.status)) return;
    if (status == 180) set_status(c, Status::Ring, status);
    else if (status == 183) set_status(c, Status::SessionProgress, status);
    else if (status > 100) c.sip_status = status;
    return;
  }
  if (status >= 300 || !m) {
    leg.invite_txn = 0;
    if (is_final(c.status)) {  // terminated while inviting: the 487 closes it
      legs_.erase(c.id);
      return;
    }
    if ((status == 401 || status == 407) && m && leg.auth_count < 2 && !c.req.sip_password.empty()) {
      const sip::Header* h = m->find(status == 407 ? sip::HeaderId::ProxyAuthenticate : sip::HeaderId::WWWAuthenticate);
      std::string auth;
      std::string user = c.req.sip_auth_name.empty() ? c.caller : c.req.sip_auth_name;
      if (h && leg.auth.set_challenge(h->value) && leg.auth.authorize("INVITE", leg.request_uri, user, c.req.sip_password, auth)) {
        leg.auth_tries = status;  // remembers which header answers it
        ++leg.auth_count;
        send_invite(c, leg, auth);
        return;
      }
    }
    std::string why = "INVITE answered " + std::to_string(status) + (m ? " " + std::string(m->reason()).substr(0, 64) : std::string(" (no answer)"));
    bool busy = status == 486 || status == 600 || status == 603;
    end_call(c, busy ? Status::Busy : Status::Failed, status, why, false);
    return;
  }
  // 2xx: every copy is ACKed (a retransmission means our ACK was lost)
  if (leg.has_dialog) {
    std::string ack = leg.dialog.ack(*stack_, leg.invite_cseq);
    stack_->send_stateless(ack, leg.dialog.flow);
    return;
  }
  std::string err;
  if (!sip::Dialog::from_response(leg.invite, *m, leg.flow, contact(leg, c.caller), leg.dialog, &err)) {
    host().warn("rest-sip-capture: call " + c.call_id + ": 2xx unusable: " + err);
    leg.invite_txn = 0;
    end_call(c, Status::Failed, status, "2xx without a usable dialog: " + err, false);
    legs_.erase(c.id);
    return;
  }
  leg.has_dialog = true;
  leg.invite_txn = 0;
  leg.dialog.confirm();
  std::string ack = leg.dialog.ack(*stack_, leg.invite_cseq);
  stack_->send_stateless(ack, leg.dialog.flow);
  if (is_final(c.status)) {  // terminated while the 2xx was on its way: ACK + BYE
    std::string bye = leg.dialog.request(*stack_, "BYE");
    stack_->send_request(bye, leg.dialog.flow);
    legs_.erase(c.id);
    return;
  }
  c.remote_sdp = std::string(m->body());
  auto a = parse_answer(m->body(), err);
  if (a && !media_apply_answer(c, *a, err)) a.reset();
  if (!a) {
    host().warn("rest-sip-capture: call " + c.call_id + ": answer refused: " + err);
    end_call(c, Status::Failed, status, "answer refused: " + err, true);
    return;
  }
  set_status(c, Status::Established, status, "");
  auto md = media_of(c.id);
  if (md) {
    std::vector<std::shared_ptr<Push>> ps;
    {
      std::lock_guard<std::mutex> g(md->mu);
      ps = md->pushes;
    }
    for (auto& p : ps) push_connect(p);
  }
}

void CapturePlugin::on_request(sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
  if (m.method() == "ACK") return;  // of our 2xx to a re-INVITE
  Call* c = reg_.find(m.call_id());
  auto it = c ? legs_.find(c->id) : legs_.end();
  if (!c || it == legs_.end() || !it->second.has_dialog || m.to_tag() != it->second.local_tag) {
    if (m.method() == "OPTIONS") {
      stack_->respond(id, 200, {}, stack_->new_tag(), std::string("Allow: ") + kAllow + "\r\n");
      return;
    }
    if (m.method() == "INVITE" && m.to_tag().empty()) {
      host().info("rest-sip-capture: incoming call refused (this plugin only places calls)");
      stack_->respond(id, 603, "Decline", stack_->new_tag());
      return;
    }
    stack_->respond(id, 481, "Call/Transaction Does Not Exist", stack_->new_tag());
    return;
  }
  in_dialog_request(*c, it->second, id, m, from);
}

void CapturePlugin::in_dialog_request(Call& c, SipLeg& leg, sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
  if (!leg.dialog.on_request(m, from)) {
    stack_->respond(id, 500, "CSeq out of order");
    return;
  }
  std::string_view method = m.method();
  if (method == "BYE") {
    stack_->respond(id, 200);
    leg.has_dialog = false;
    end_call(c, Status::Finish, c.sip_status, "BYE from the SIP side", false);
    legs_.erase(c.id);
    return;
  }
  if (method == "INVITE") {  // re-INVITE: hold / resume / new media
    std::string err;
    std::optional<Answer> offer;
    if (!m.body().empty()) {
      offer = parse_answer(m.body(), err);
      if (!offer || !media_apply_answer(c, *offer, err)) {
        host().info("rest-sip-capture: call " + c.call_id + ": re-INVITE refused: " + err);
        stack_->respond(id, 488, "Not Acceptable Here");
        return;
      }
      c.remote_sdp = std::string(m.body());
    }
    ++leg.sdp_version;
    c.local_sdp = build_offer(offer_params(c, leg));
    std::string extra = "Contact: " + leg.dialog.local_contact + "\r\nAllow: " + kAllow + "\r\n";
    stack_->respond(id, 200, {}, leg.local_tag, extra, c.local_sdp, "application/sdp");
    bool hold = offer && ((offer->audio.present ? (offer->audio.direction == "sendonly" || offer->audio.direction == "inactive") : true) &&
                          (offer->video.present ? (offer->video.direction == "sendonly" || offer->video.direction == "inactive") : true));
    set_status(c, hold ? Status::Hold : Status::Established, c.sip_status);
    return;
  }
  if (method == "INFO" || method == "OPTIONS" || method == "UPDATE" || method == "NOTIFY") {
    stack_->respond(id, 200);
    return;
  }
  stack_->respond(id, 501, "Not Implemented");
}

void CapturePlugin::send_keyframe_info(Call& c, SipLeg& leg) {
  if (!leg.has_dialog) return;
  static const char* kBody =
      "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\r\n<media_control>\r\n<vc_primitive>\r\n<to_encoder>\r\n"
      "<picture_fast_update/>\r\n</to_encoder>\r\n</vc_primitive>\r\n</media_control>\r\n";
  std::string info = leg.dialog.request(*stack_, "INFO", {}, kBody, "application/media_control+xml");
  if (sip::TxnId t = stack_->send_request(info, leg.dialog.flow)) txn_call_[t] = c.id;
}

void CapturePlugin::send_dtmf_info(Call& c, SipLeg& leg, const std::string& digits) {
  for (char d : digits) {
    std::string body = std::string("Signal=") + d + "\r\nDuration=160\r\n";
    std::string info = leg.dialog.request(*stack_, "INFO", {}, body, "application/dtmf-relay");
    if (sip::TxnId t = stack_->send_request(info, leg.dialog.flow)) txn_call_[t] = c.id;
  }
}

// RFC 4733: per digit, three packets 20 ms apart with a growing duration (the first with the
// marker), then the end packet three times; the next digit starts 40 ms later.
void CapturePlugin::dtmf_tick(uint64_t call) {
  auto it = legs_.find(call);
  auto m = media_of(call);
  if (it == legs_.end() || !m) return;
  SipLeg& leg = it->second;
  if (leg.dtmf_queue.empty()) {
    if (leg.dtmf_timer) host().stop_timer(leg.dtmf_timer);
    leg.dtmf_timer = 0;
    return;
  }
  int ev = dtmf_event(leg.dtmf_queue.front());
  int step = leg.dtmf_step++;
  constexpr int kTone = 8;  // 8 x 20 ms = 160 ms of tone
  uint8_t pkt[16];
  size_t n = 0;
  jn_addr to{};
  jn_handle sock = 0;
  {
    std::lock_guard<std::mutex> g(m->mu);
    to = m->audio.remote_rtp;
    sock = m->audio.rtp;
    if (step == 0) m->dtmf_ts += 160 * 12;  // a fresh timestamp per event
    if (step < kTone) {
      n = build_dtmf(pkt, sizeof pkt, m->dtmf_pt, step == 0, m->dtmf_seq++, m->dtmf_ts, m->audio.own_ssrc, static_cast<uint8_t>(ev), false,
                     static_cast<uint16_t>((step + 1) * 160));
    } else if (step < kTone + 3) {
      n = build_dtmf(pkt, sizeof pkt, m->dtmf_pt, false, m->dtmf_seq++, m->dtmf_ts, m->audio.own_ssrc, static_cast<uint8_t>(ev), true,
                     static_cast<uint16_t>(kTone * 160));
    }
  }
  if (n && sock && to.family) host().udp_send(sock, to, std::string_view(reinterpret_cast<const char*>(pkt), n));
  if (step >= kTone + 4) {
    leg.dtmf_queue.erase(0, 1);
    leg.dtmf_step = 0;
  }
}

}  // namespace capture
