// 语音广播 (broadcast): the platform tells a device's audio output (MESSAGE Notify/Broadcast with
// SourceID = the platform, TargetID = the audio channel); the device answers Response/Broadcast
// and INVITEs the platform for audio; we answer with our sender's port (sendonly, PCMA or PS as
// the device offered, UDP or TCP) and gb-media's sender carries the bus audio `source` to it.
// Talk (对讲) = a live view of the channel + a broadcast. BYE from either side ends it.
#include "plugin.hpp"

#include "play/sdp.hpp"

#include <junction/proto/sdp.hpp>
#include <junction/sip/builder.hpp>
#include <junction/util/addr.hpp>

namespace gb {

namespace sip = junction::sip;
using nlohmann::json;

namespace {
bool digits20(std::string_view s) { return s.size() == 20 && s.find_first_not_of("0123456789") == std::string_view::npos; }
}  // namespace

bool GbPlugin::broadcast_admin(const std::string& verb, const json& body, const jn_admin_request& req) {
  if (verb != "broadcast" && verb != "broadcast_stop" && verb != "broadcasts") return false;
  if (verb == "broadcasts") {
    json a = json::array();
    for (auto& [ch, b] : broadcasts_)
      a.push_back({{"device", b.device}, {"channel", ch}, {"source", b.source}, {"state", b.has_dialog ? "active" : "notified"},
                   {"sender", b.sender}});
    reply(req, 200, {{"broadcasts", a}});
    return true;
  }
  std::string channel = body.value("channel", std::string());
  if (!digits20(channel)) {
    reply(req, 400, {{"error", "channel (the device's audio output, 20 digits) is required"}});
    return true;
  }
  if (verb == "broadcast_stop") {
    auto it = broadcasts_.find(channel);
    if (it == broadcasts_.end()) {
      reply(req, 404, {{"error", "no broadcast to " + channel}});
      return true;
    }
    end_broadcast(it->first, "stopped by the operator", true);
    reply(req, 200, {{"stopped", channel}});
    return true;
  }
  std::string device = body.value("device", std::string());
  std::string source = body.value("source", std::string());
  if (!digits20(device) || source.empty()) {
    reply(req, 400, {{"error", "device (20 digits) and source (a bus audio stream of G.711A frames) are required"}});
    return true;
  }
  if (broadcasts_.count(channel)) {
    reply(req, 409, {{"error", "a broadcast to " + channel + " is already on"}});
    return true;
  }
  std::string xml = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Broadcast</CmdType>\r\n<SN>" +
                    std::to_string(next_tag_++ % 1000000) + "</SN>\r\n<SourceID>" + conf_.sip_id + "</SourceID>\r\n<TargetID>" +
                    channel + "</TargetID>\r\n</Notify>\r\n";
  std::string err;
  if (!send_message(device, xml, 0, err)) {
    reply(req, err.find("offline") != std::string::npos ? 409 : 404, {{"error", err}});
    return true;
  }
  Broadcast b;
  b.device = device;
  b.source = source;
  broadcasts_[channel] = b;
  host().info("gb28181: Broadcast to " + channel + " of " + device + " from " + source + ": waiting for the device's INVITE");
  reply(req, 200, {{"device", device}, {"channel", channel}, {"source", source}, {"state", "notified"}});
  return true;
}

void GbPlugin::on_invite(sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
  sip::Uri u;
  std::string who = sip::parse_uri(m.from().uri_text, u) ? std::string(u.user) : std::string();
  // The audio output channel (From) of a device told to expect a broadcast, or the device itself.
  auto it = broadcasts_.find(who);
  if (it == broadcasts_.end())
    for (auto b = broadcasts_.begin(); b != broadcasts_.end(); ++b)
      if (b->second.device == who && !b->second.has_dialog) it = b;
  if (it == broadcasts_.end() || it->second.has_dialog)
    return bad_request(id, m, from, 403, "no broadcast waits for an INVITE from " + who.substr(0, 32));
  Broadcast& b = it->second;
  std::string err;
  auto offer = play::parse_audio_offer(m.body(), err);
  if (!offer) return bad_request(id, m, from, 488, err);
  uint32_t ssrc = offer->ssrc.empty() ? 0 : junction::proto::sdp::gb_ssrc_value(offer->ssrc).value_or(0);
  play::MediaOpened o = media_->open_sender(b.device, it->first, offer->transport, b.source, offer->ps, offer->payload_type, ssrc);
  if (!o.id) return bad_request(id, m, from, 503, "media: " + o.error);
  if (offer->transport != play::Transport::TcpPassive &&
      !media_->answer_sender(o.id, offer->address, offer->port, offer->ps, offer->payload_type, err)) {
    media_->close(o.id, err);
    return bad_request(id, m, from, 488, "media: " + err);
  }
  std::string ip = o.ip;
  if (ip.empty() || ip == "0.0.0.0") ip = conf_.play.media_ip.empty() ? stack_->config().host : conf_.play.media_ip;
  std::string sdp = play::build_audio_answer(*offer, conf_.sip_id, ip, o.port);
  std::string tag = stack_->new_tag();
  std::string contact = stack_->contact(from.proto, conf_.sip_id);
  if (!sip::Dialog::from_request(m, from, tag, contact, b.dialog, &err)) {
    media_->close(o.id, err);
    return bad_request(id, m, from, 400, err);
  }
  b.dialog.confirm();
  b.has_dialog = true;
  b.sender = o.id;
  stack_->respond(id, 200, {}, tag, "Contact: " + contact + "\r\n", sdp, "APPLICATION/SDP");
  host().counter_add("gb_broadcasts_total", 1);
  host().info("gb28181: Broadcast to " + it->first + " established (" + offer->address + ":" + std::to_string(offer->port) + ", " +
              std::string(play::transport_name(offer->transport)) + ", " + (offer->ps ? "PS" : "PCMA") + ")");
}

bool GbPlugin::broadcast_in_dialog(sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
  for (auto& [ch, b] : broadcasts_) {
    if (!b.has_dialog || b.dialog.call_id != m.call_id() || b.dialog.local_tag != m.to_tag()) continue;
    if (m.method() == "BYE") {
      b.dialog.on_request(m, from);
      stack_->respond(id, 200);
      end_broadcast(ch, "device BYE", false);
      return true;
    }
    stack_->respond(id, 200);  // INFO / re-INVITE refresh: acknowledged
    return true;
  }
  return false;
}

void GbPlugin::end_broadcast(const std::string& channel, const std::string& reason, bool send_bye) {
  auto it = broadcasts_.find(channel);
  if (it == broadcasts_.end()) return;
  Broadcast& b = it->second;
  if (send_bye && b.has_dialog) stack_->send_request(b.dialog.request(*stack_, "BYE"), b.dialog.flow);
  if (b.sender) media_->close(b.sender, reason);
  host().info("gb28181: Broadcast to " + channel + " ended: " + reason);
  broadcasts_.erase(it);
}

json GbPlugin::broadcasts_to_json() const {
  json a = json::array();
  for (auto& [ch, b] : broadcasts_) {
    json j = {{"channel", ch}, {"device", b.device}, {"source", b.source}, {"sender", b.sender}};
    if (b.has_dialog) j["dialog"] = b.dialog.to_json();
    a.push_back(std::move(j));
  }
  return a;
}

void GbPlugin::broadcasts_from_json(const json& j) {
  broadcasts_.clear();
  if (!j.is_array()) return;
  for (auto& e : j) {
    if (!e.is_object()) continue;
    Broadcast b;
    b.device = e.value("device", std::string());
    b.source = e.value("source", std::string());
    b.sender = e.value("sender", uint32_t{0});
    if (e.contains("dialog")) b.has_dialog = sip::Dialog::from_json(e["dialog"], b.dialog);
    broadcasts_[e.value("channel", std::string())] = std::move(b);
  }
}

}  // namespace gb
