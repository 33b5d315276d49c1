// Client-initiated live view (实时预览, 客户端主动发起; the document's B2BUA flow): a SIP client (a
// GB decoder, a video wall, an NVR client, a plain SIP phone) INVITEs the platform with the
// Request-URI (or To) naming a channel and the document's SDP (recvonly, PS/96, y=, its own
// receive address; UDP, or TCP with a=setup). The platform:
//   - checks the client's digest ([clients] auth; users of [clients.users] or a provisioned
//     device's credentials), 401 / 403;
//   - finds the channel's device (404), its SDP (488), whether the device is reachable (480) and
//     the per-channel limit (486); 100 Trying is the transaction's;
//   - becomes one viewer ("sip:<Call-ID>") of the channel's shared device stream (PlayCenter:
//     play on demand, one device stream for all viewers, an IFrame asked for on join);
//   - answers 200 (sendonly, PS, y= the client's y= or one of ours, our port) when the device
//     stream is established, and after the ACK sends the channel as PS over RTP (PsOut: re-muxed
//     from the bus frames, starting at a keyframe) to the client's address;
//   - BYE from the client ends that viewer (the device stream stops after the grace when it was
//     the last), CANCEL before the 200 too; a device stream that ends (device BYE, restarts given
//     up) ends the client's call: BYE, or 480 / 503 before the 200.
#include "plugin.hpp"

#include "play/sdp.hpp"

#include <junction/proto/sdp.hpp>
#include <junction/sip/builder.hpp>
#include <junction/util/addr.hpp>

namespace gb {

namespace sip = junction::sip;
using nlohmann::json;

namespace {
constexpr std::string_view kClientPrefix = "sip:";
bool digits20(std::string_view s) { return s.size() == 20 && s.find_first_not_of("0123456789") == std::string_view::npos; }
}  // namespace

std::string GbPlugin::client_viewer_id(std::string_view call_id) { return std::string(kClientPrefix) + std::string(call_id); }

bool GbPlugin::is_client_invite(const sip::Message& m) {
  // A device's INVITE for broadcast audio is addressed to the platform (or names a broadcast
  // waiting for it); a client's names a channel.
  sip::Uri ru;
  if (!sip::parse_uri(m.request_uri(), ru) || ru.user.empty() || ru.user == conf_.sip_id) return false;
  sip::Uri u;
  std::string who = sip::parse_uri(m.from().uri_text, u) ? std::string(u.user) : std::string();
  if (broadcasts_.count(who)) return false;
  for (auto& [ch, b] : broadcasts_)
    if (b.device == who && !b.has_dialog) return false;
  return true;
}

void GbPlugin::client_refuse(sip::TxnId id, const sip::Message& m, const sip::Flow& from, int code, const std::string& why,
                             std::string_view extra) {
  host().counter_add("gb_client_refusals_total", 1, "code=\"" + std::to_string(code) + "\"");
  bad_request(id, m, from, code, why, extra);
}

// Digest of a client: [clients.users], or a provisioned device's ID (its username) and password
// (or the platform's). True when it passed; otherwise the request has been answered.
bool GbPlugin::client_authorized(sip::TxnId id, const sip::Message& m, const sip::Flow& from, std::string& user_out) {
  if (!conf_.clients.auth) return true;
  uint64_t now_s = host().now_ms() / 1000;
  const sip::Header* ah = m.find(sip::HeaderId::Authorization);
  std::string challenge;
  if (!ah) {
    client_auth_->challenge(challenge, now_s);
    stack_->respond(id, 401, {}, stack_->new_tag(), "WWW-Authenticate: " + challenge + "\r\n");
    return false;
  }
  std::string_view user;
  sip::Verdict v = client_auth_->verify(
      ah->value, "INVITE", now_s,
      [&](std::string_view u, sip::DigestSecret& out) {
        if (auto it = conf_.clients.users.find(std::string(u)); it != conf_.clients.users.end()) {
          out.password = it->second;
          return true;
        }
        Device* d = reg_.find(u);
        if (!d) {  // a device whose digest username is not its ID (some sign as "admin")
          reg_.for_each([&](Device& x) {
            if (!d && x.conf.auth_user() == u) d = &x;
          });
        }
        if (!d || d->conf.auth_user() != u) return false;
        out.password = d->conf.password.empty() ? conf_.password : d->conf.password;
        return !out.password.empty();
      },
      &user);
  if (v == sip::Verdict::Ok) {
    user_out = std::string(user);
    return true;
  }
  int code = sip::status_for(v);
  host().counter_add("gb_client_auth_failures_total", 1, "reason=\"" + std::string(sip::to_string(v)) + "\"");
  if (code == 401) {
    client_auth_->challenge(challenge, now_s, v == sip::Verdict::Stale);
    stack_->respond(id, 401, {}, stack_->new_tag(), "WWW-Authenticate: " + challenge + "\r\n");
    return false;
  }
  std::string why = v == sip::Verdict::UnknownUser ? "unknown user" : v == sip::Verdict::BadResponse ? "wrong password" : sip::to_string(v);
  client_refuse(id, m, from, 403, "client " + std::string(user).substr(0, 64) + ": " + why);
  return false;
}

void GbPlugin::on_client_invite(sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
  std::string user;
  if (!client_authorized(id, m, from, user)) return;
  std::string vid = client_viewer_id(m.call_id());
  if (clients_.count(vid)) return client_refuse(id, m, from, 482, "this Call-ID already views a channel");
  // The channel: the Request-URI user, else the To user (the document's samples name it in both).
  sip::Uri ru, to;
  std::string target;
  if (sip::parse_uri(m.request_uri(), ru) && digits20(ru.user)) target = std::string(ru.user);
  else if (sip::parse_uri(m.to().uri_text, to) && digits20(to.user)) target = std::string(to.user);
  if (target.empty()) return client_refuse(id, m, from, 404, "the Request-URI names no 20-digit channel");
  if (target == conf_.sip_id) return client_refuse(id, m, from, 404, "the platform itself is not a channel");
  std::string device, channel, err;
  if (!resolve_channel("gb:" + target, device, channel, err)) return client_refuse(id, m, from, 404, err);
  auto offer = play::parse_client_offer(m.body(), err);
  if (!offer) return client_refuse(id, m, from, 488, err);
  if (!offer->session_name.empty() && offer->session_name != "Play")
    return client_refuse(id, m, from, 488, "s=" + offer->session_name.substr(0, 16) + ": only live view (s=Play) is served to clients");
  sip::Flow dev_flow;
  if (!device_flow(device, dev_flow, err)) return client_refuse(id, m, from, 480, err);
  if (conf_.clients.max_per_channel) {
    size_t n = 0;
    for (auto& [v, c] : clients_) n += c.channel == channel;
    if (n >= conf_.clients.max_per_channel)
      return client_refuse(id, m, from, 486, std::to_string(n) + " client(s) already view " + channel + " (clients.max_per_channel)");
  }
  // The sender's sockets go on the media loop of the channel's live stream: it sends from there.
  play::PsOut::Opened o = ps_out_->open(offer->transport, media_->live_loop(device, channel));
  if (!o.id) return client_refuse(id, m, from, 503, "media: " + o.error);
  ClientViewer c;
  c.device = device;
  c.channel = channel;
  c.user = user;
  c.txn = id;
  c.out = o.id;
  c.offer = *offer;
  c.local_port = o.port;
  c.local_ip = o.ip;
  if (c.local_ip.empty() || c.local_ip == "0.0.0.0") c.local_ip = conf_.play.media_ip.empty() ? stack_->config().host : conf_.play.media_ip;
  if (!offer->ssrc.empty()) {
    c.ssrc = offer->ssrc;  // a GB decoder filters on the y= it offered
  } else {
    // "0" (live) + digits 4..8 of the domain + a sequence of our own
    c.ssrc = "0" + conf_.domain.substr(3, 5) + std::to_string(1000 + (next_client_ssrc_++ % 9000));
  }
  c.local_tag = stack_->new_tag();
  std::string contact = stack_->contact(from.proto, conf_.sip_id);
  if (!sip::Dialog::from_request(m, from, c.local_tag, contact, c.dialog, &err)) {
    ps_out_->close(o.id);
    return client_refuse(id, m, from, 400, err);
  }
  c.created_ms = host().now_ms();
  clients_[vid] = std::move(c);
  if (!play_->view(device, channel, vid, err)) {
    ps_out_->close(o.id);
    clients_.erase(vid);
    return client_refuse(id, m, from, err.find("offline") != std::string::npos ? 480 : 503, err);
  }
  host().info("gb28181: client " + user.substr(0, 64) + " at " + junction::util::format_addr(from.peer) + " (call " +
              std::string(m.call_id()).substr(0, 64) + ") views " + channel + " of " + device + " -> " + offer->address + ":" +
              std::to_string(offer->port) + " " + std::string(play::transport_name(offer->transport)));
  host().counter_add("gb_client_invites_total", 1);
  answer_clients(channel);  // at once when the device stream already runs
}

void GbPlugin::answer_clients(const std::string& channel) {
  uint64_t sid = play_->live_session(channel);
  const play::PlaySession* s = sid ? play_->find(sid) : nullptr;
  if (!s || s->state != play::SessionState::Active) return;
  for (auto& [vid, c] : clients_) {
    if (c.channel != channel) continue;
    // media.gop_cache: the client's PS sender reads streams of its own that start from the cached
    // GOP (client_ack asks for it), as a call's viewer does (calls.cpp); a restarted device stream
    // takes the answered client's names back.
    bool own_names = c.out && (!c.answered || c.stream.find("/viewer/client-") != std::string::npos);
    std::string own = own_names ? media_->viewer_stream(s->media, "client-" + std::to_string(c.out)) : std::string();
    if (c.answered || !c.txn) continue;
    c.stream = own.empty() ? s->stream : own;
    std::string sdp = play::build_client_answer(c.offer, conf_.sip_id, c.local_ip, c.local_port, c.ssrc);
    std::string contact = stack_->contact(c.dialog.flow.proto, conf_.sip_id);
    stack_->respond(c.txn, 200, {}, c.local_tag, "Contact: " + contact + "\r\n", sdp, "application/sdp");
    c.dialog.confirm();
    c.answered = true;
    c.answered_ms = host().now_ms();
    host().info("gb28181: client call " + c.dialog.call_id.substr(0, 64) + " answered for " + channel + " (y=" + c.ssrc + ", port " +
                std::to_string(c.local_port) + ")");
  }
}

// The ACK of our 200: media starts.
bool GbPlugin::client_ack(const sip::Message& m) {
  auto it = clients_.find(client_viewer_id(m.call_id()));
  if (it == clients_.end() || m.to_tag() != it->second.local_tag) return false;
  ClientViewer& c = it->second;
  if (!c.answered || c.acked) return true;  // a retransmitted ACK
  c.acked = true;
  c.txn = 0;
  std::string err;
  uint32_t ssrc = junction::proto::sdp::gb_ssrc_value(c.ssrc).value_or(0);
  if (!ps_out_->start(c.out, c.stream, c.offer.address, c.offer.port, static_cast<uint8_t>(c.offer.payload_type), ssrc, err)) {
    host().info("gb28181: client call " + c.dialog.call_id.substr(0, 64) + ": media not started: " + err);
    end_client(it->first, "media: " + err, true);
    return true;
  }
  if (c.stream.find("/viewer/client-") != std::string::npos)  // its own streams: start them from the cache
    media_->on_event(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, json{{"stream", c.stream + "/video"}, {"reason", "join"}}.dump());
  return true;
}

bool GbPlugin::client_in_dialog(sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
  auto it = clients_.find(client_viewer_id(m.call_id()));
  if (it == clients_.end() || m.to_tag() != it->second.local_tag) return false;
  if (m.method() == "BYE") {
    it->second.dialog.on_request(m, from);
    stack_->respond(id, 200);
    end_client(it->first, "client BYE", false);
    return true;
  }
  // INFO / re-INVITE / OPTIONS in the dialog: acknowledged; the stream goes on as it is.
  stack_->respond(id, 200);
  return true;
}

void GbPlugin::on_cancelled(sip::TxnId id) {
  for (auto& [vid, c] : clients_)
    if (c.txn == id && !c.answered) {
      c.txn = 0;  // the stack answered 487
      end_client(vid, "client CANCEL", false);
      return;
    }
}

void GbPlugin::on_ack_timeout(sip::TxnId id) {
  for (auto& [vid, c] : clients_)
    if (c.txn == id) {
      end_client(vid, "no ACK for our 200", true);
      return;
    }
}

// Ends one client: its answer (before the 200), or a BYE (send_bye), its sender, its viewer.
void GbPlugin::end_client(std::string vid, std::string reason, bool send_bye, int code, bool unview) {
  auto it = clients_.find(vid);
  if (it == clients_.end()) return;
  ClientViewer c = std::move(it->second);
  clients_.erase(it);
  if (!c.answered && c.txn) stack_->respond(c.txn, code, std::string(sip::reason_phrase(code)) + " (" + reason + ")", c.local_tag);
  else if (send_bye && c.answered) stack_->send_request(c.dialog.request(*stack_, "BYE"), c.dialog.flow);
  if (c.out) ps_out_->close(c.out);
  if (c.out && c.stream.find("/viewer/client-") != std::string::npos)
    if (uint64_t live = play_->live_session(c.channel))
      if (const play::PlaySession* s = play_->find(live)) media_->drop_viewer_stream(s->media, "client-" + std::to_string(c.out));
  if (unview) play_->unview(c.channel, vid);
  host().info("gb28181: client call " + c.dialog.call_id.substr(0, 64) + " for " + c.channel + " ended: " + reason);
}

json GbPlugin::clients_view() {
  json a = json::array();
  for (auto& [vid, c] : clients_) {
    json j = {{"viewer", vid},
              {"call_id", c.dialog.call_id},
              {"user", c.user},
              {"device", c.device},
              {"channel", c.channel},
              {"state", c.acked ? "sending" : c.answered ? "answered" : "waiting"},
              {"transport", std::string(play::transport_name(c.offer.transport))},
              {"to", c.offer.address + ":" + std::to_string(c.offer.port)},
              {"ssrc", c.ssrc},
              {"stream", c.stream},  // the bus streams its sender reads (its own with media.gop_cache)
              {"local_port", c.local_port}};
    json st = ps_out_->stats(c.out);
    if (!st.is_null()) j["media"] = st;
    a.push_back(std::move(j));
  }
  return a;
}

json GbPlugin::clients_to_json() const {
  json a = json::array();
  for (auto& [vid, c] : clients_)
    a.push_back({{"viewer", vid},
                 {"device", c.device},
                 {"channel", c.channel},
                 {"user", c.user},
                 {"txn", c.txn},
                 {"out", c.out},
                 {"address", c.offer.address},
                 {"port", c.offer.port},
                 {"transport", std::string(play::transport_name(c.offer.transport))},
                 {"pt", c.offer.payload_type},
                 {"ssrc", c.ssrc},
                 {"local_ip", c.local_ip},
                 {"local_port", c.local_port},
                 {"local_tag", c.local_tag},
                 {"stream", c.stream},
                 {"answered", c.answered},
                 {"acked", c.acked},
                 {"created_ms", c.created_ms},
                 {"dialog", c.dialog.to_json()}});
  return {{"clients", a}, {"next_ssrc", next_client_ssrc_}, {"out", ps_out_->to_json()}};
}

void GbPlugin::clients_from_json(const json& j) {
  clients_.clear();
  if (!j.is_object()) return;
  next_client_ssrc_ = j.value("next_ssrc", 0u);
  if (j.contains("out")) ps_out_->from_json(j["out"]);
  if (!j.contains("clients") || !j["clients"].is_array()) return;
  for (auto& e : j["clients"]) {
    if (!e.is_object()) continue;
    ClientViewer c;
    c.device = e.value("device", std::string());
    c.channel = e.value("channel", std::string());
    c.user = e.value("user", std::string());
    c.txn = e.value("txn", sip::TxnId{0});
    c.out = e.value("out", 0u);
    c.offer.address = e.value("address", std::string());
    c.offer.port = e.value("port", uint16_t{0});
    c.offer.transport = play::transport_from(e.value("transport", std::string("udp"))).value_or(play::Transport::Udp);
    c.offer.payload_type = e.value("pt", 96);
    c.ssrc = e.value("ssrc", std::string());
    c.local_ip = e.value("local_ip", std::string());
    c.local_port = e.value("local_port", uint16_t{0});
    c.local_tag = e.value("local_tag", std::string());
    c.stream = e.value("stream", std::string());
    c.answered = e.value("answered", false);
    c.acked = e.value("acked", false);
    c.created_ms = e.value("created_ms", uint64_t{0});
    if (e.contains("dialog")) sip::Dialog::from_json(e["dialog"], c.dialog);
    clients_[e.value("viewer", std::string())] = std::move(c);
  }
}

}  // namespace gb
