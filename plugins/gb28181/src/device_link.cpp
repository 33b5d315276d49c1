// The plugin's side of the MANSCDP layer: DeviceLink on the SIP stack (MESSAGE and SUBSCRIBE to
// a device over the flow it registered from, their outcomes), bodies in (MESSAGE / NOTIFY ->
// body.hpp -> keepalive or CommandCenter), the NOTIFYs of our subscriptions, the timer.
#include "liveness.hpp"
#include "plugin.hpp"

#include <junction/sip/builder.hpp>
#include <junction/sip/subscription.hpp>
#include <junction/util/addr.hpp>

namespace gb {

namespace sip = junction::sip;
namespace mc = junction::gb;
using nlohmann::json;

namespace {
constexpr std::string_view kManscdp = "Application/MANSCDP+xml";
std::string_view event_name(mc::SubKind k) { return k == mc::SubKind::Catalog ? "Catalog" : "presence"; }
}  // namespace

std::string GbPlugin::sub_key(const std::string& device, mc::SubKind kind) const {
  return device + "/" + std::string(mc::sub_kind_name(kind));
}

// --- bodies in ---------------------------------------------------------------------------------
void GbPlugin::on_body(sip::TxnId id, const sip::Message& m, const sip::Flow& from, Device& d) {
  // Most traffic: the plain keepalive form is answered without the XML parse (the rule is in
  // manscdp/body.hpp; anything unusual is decoded below). A stateless MESSAGE passed that very
  // check in the stack's stateless_request (stack_config): not scanned twice.
  if (m.method() == "MESSAGE" && (sip::Stack::is_stateless(id) || mc::is_plain_keepalive(m.body()))) return on_keepalive(id, m, d);
  mc::Body body;
  std::string err;
  if (!body.decode(m.body(), m.content_type(), err)) {
    host().counter_add("gb_bad_bodies_total");
    return bad_request(id, m, from, 400, err);
  }
  if (body.is_keepalive()) {
    if (m.method() != "MESSAGE") return bad_request(id, m, from, 400, "keepalive outside a MESSAGE");
    return on_keepalive(id, m, d);
  }
  if (body.kind() == mc::RootKind::Notify && body.cmd_type() == "MediaStatus") {
    stack_->respond(id, 200, {}, stack_->new_tag());  // the document's order: 200 to the Notify, then our BYE
    media_status(body, m, d);
    return;
  }
  struct Flush {  // after the answer below is sent, whichever way this function leaves
    GbPlugin& p;
    ~Flush() {
      p.in_body_ = false;
      auto results = std::move(p.deferred_);
      p.deferred_.clear();
      try {
        for (auto& r : results) p.deliver(r);
      } catch (...) {  // a destructor must not throw; a lost admin reply times out at the core
      }
    }
  } flush{*this};
  in_body_ = true;
  mc::BodyAnswer a = cc_->on_body(d.conf.id, body);
  in_body_ = false;
  if (a.status == 0) {
    // Nothing here handles it (e.g. MediaStatus, part 2): acknowledged so the device does not retry.
    host().info("gb28181: " + std::string(m.method()) + " " + std::string(mc::root_kind_name(body.kind())) + "/" +
                body.cmd_type().substr(0, 32) + " from " + d.conf.id + " not handled (" + a.reason + ")");
    stack_->respond(id, 200, {}, stack_->new_tag());
    return;
  }
  if (a.status >= 300) return bad_request(id, m, from, a.status, a.reason.empty() ? "refused by the command layer" : a.reason);
  stack_->respond(id, a.status, {}, stack_->new_tag());
}

void GbPlugin::on_in_dialog(sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
  // The NOTIFYs of our subscriptions: the dialog's Call-ID and our From tag (their To tag).
  // A MESSAGE inside one of our INVITE dialogs (MediaStatus 121 of a playback / download).
  // Its sender is the session's device, whatever the From says (RFC 3261: the dialog's remote URI).
  if (m.method() == "MESSAGE")
    for (const auto& [_, s] : play_->sessions())
      if (s.has_dialog && s.dialog.call_id == m.call_id() && s.dialog.local_tag == m.to_tag())
        return on_message(id, m, from, &s.device);
  OutSub* s = nullptr;
  for (auto& [k, sub] : subs_)
    if (sub.call_id == m.call_id() && sub.from_tag == m.to_tag()) s = &sub;
  if (!s || m.method() != "NOTIFY") return bad_request(id, m, from, 481, "no such dialog or subscription");
  if (s->has_dialog && !s->dialog.on_request(m, from)) return bad_request(id, m, from, 500, "CSeq out of order");
  Device* d = sender(m, from);
  if (!d || !d->live.registered) return bad_request(id, m, from, 403, "device not registered");
  if (m.body().empty()) {
    stack_->respond(id, 200, {}, {});
    return;
  }
  on_body(id, m, from, *d);
}

// --- DeviceLink --------------------------------------------------------------------------------
bool GbPlugin::send_message(const std::string& device_id, const std::string& body, uint64_t msg_id, std::string& error) {
  Device* d = reg_.find(device_id);
  if (!d) {
    error = "no device " + device_id;
    return false;
  }
  if (!d->live.registered) {
    error = "device " + device_id + " is offline";
    return false;
  }
  sip::Flow flow = d->live.flow;
  std::string out;
  sip::Writer w(out);
  // To the device at the address its requests come from (NAT), named by its ID.
  w.request_line("MESSAGE", "sip:" + device_id + "@" + junction::util::format_addr(flow.peer));
  stack_->write_via(w, flow.proto, stack_->new_branch());
  w.header("Max-Forwards", 70);
  w.header("From", "<sip:" + conf_.sip_id + "@" + conf_.domain + ">;tag=" + stack_->new_tag());
  w.header("To", "<sip:" + device_id + "@" + conf_.domain + ">");
  w.header("Call-ID", stack_->new_call_id());
  w.header("CSeq", "1 MESSAGE");
  w.finish(body, kManscdp);
  sip::TxnId t = stack_->send_request(out, flow);
  if (!t) {
    error = "the MESSAGE could not be sent";
    return false;
  }
  msg_txn_[t] = msg_id;
  return true;
}

bool GbPlugin::send_subscribe(const std::string& device_id, mc::SubKind kind, uint32_t expires_s, const std::string& body,
                              std::string& error) {
  Device* d = reg_.find(device_id);
  if (!d || !d->live.registered) {
    error = "device " + device_id + (d ? " is offline" : " is unknown");
    return false;
  }
  std::string key = sub_key(device_id, kind);
  OutSub& s = subs_[key];
  std::string out;
  sip::Flow flow = d->live.flow;
  std::string ev = "Event: " + std::string(event_name(kind)) + "\r\n";
  if (s.has_dialog) {
    s.dialog.flow = flow;  // the device may have moved (NAT): the refresh goes where it is now
    out = s.dialog.request(*stack_, "SUBSCRIBE", ev + "Expires: " + std::to_string(expires_s) + "\r\n", body, kManscdp);
  } else {
    s.device = device_id;
    s.kind = kind;
    if (s.call_id.empty()) {
      s.call_id = stack_->new_call_id();
      s.from_tag = stack_->new_tag();
    }
    out = sip::Subscription::initial_subscribe(*stack_, flow.proto, "sip:" + device_id + "@" + junction::util::format_addr(flow.peer),
                                               "sip:" + conf_.sip_id + "@" + conf_.domain, "sip:" + device_id + "@" + conf_.domain,
                                               event_name(kind), expires_s, s.from_tag, s.call_id, {}, body, kManscdp);
    s.initial = out;
  }
  sip::TxnId t = stack_->send_request(out, flow);
  if (!t) {
    error = "the SUBSCRIBE could not be sent";
    if (!s.has_dialog) subs_.erase(key);
    return false;
  }
  sub_txn_[t] = {key, expires_s};
  return true;
}

mc::Charset GbPlugin::device_charset(const std::string& device_id) {
  Device* d = reg_.find(device_id);
  return d && d->conf.charset == "utf-8" ? mc::Charset::Utf8 : mc::Charset::Gb2312;
}

void GbPlugin::publish(const std::string& topic, const json& payload) {
  host().event_publish(topic, payload.dump(-1, ' ', false, json::error_handler_t::replace));
}

void GbPlugin::arm_timer(uint64_t at_ms) {
  cc_timer_at_ = at_ms;
  arm();
}

void GbPlugin::cancel_timer() {
  cc_timer_at_ = UINT64_MAX;
  arm();
}

void GbPlugin::log(mc::LogLevel level, std::string_view msg) {
  int l = level == mc::LogLevel::Error ? JN_LOG_ERROR : level == mc::LogLevel::Warn ? JN_LOG_WARN
          : level == mc::LogLevel::Info ? JN_LOG_INFO : JN_LOG_DEBUG;
  host().log(l, msg);
}

// --- outcomes of what we sent --------------------------------------------------------------------
void GbPlugin::on_response(sip::TxnId id, int status, const sip::Message* m) {
  if (play_->on_response(id, status, m)) return;  // INVITE / BYE / INFO of media sessions
  if (status < 200) return;
  if (auto it = msg_txn_.find(id); it != msg_txn_.end()) {
    uint64_t msg_id = it->second;
    msg_txn_.erase(it);
    cc_->on_message_outcome(msg_id, status);
    return;
  }
  auto it = sub_txn_.find(id);
  if (it == sub_txn_.end()) return;
  SubTxn st = it->second;
  sub_txn_.erase(it);
  auto sit = subs_.find(st.key);
  if (sit == subs_.end()) return;
  OutSub& s = sit->second;
  uint32_t granted = st.asked;
  if (m && status < 300) {
    if (const sip::Header* eh = m->find(sip::HeaderId::Expires)) {
      uint64_t v = 0;
      if (sip::parse_uint(sip::trim_lws(eh->value), 0xffffffffu, v)) granted = uint32_t(v);
    }
    if (!s.has_dialog) {
      std::string err;
      Device* d = reg_.find(s.device);
      sip::Flow flow = d ? d->live.flow : sip::Flow{};
      if (sip::Dialog::from_response(s.initial, *m, flow, stack_->contact(flow.proto), s.dialog, &err)) s.has_dialog = true;
      else host().warn("gb28181: SUBSCRIBE to " + s.device + ": no dialog from the 2xx: " + err);
    } else {
      s.dialog.on_response(*m);
    }
  }
  std::string device = s.device;
  mc::SubKind kind = s.kind;
  if (status >= 300 || st.asked == 0) subs_.erase(sit);  // refused, or unsubscribed
  cc_->on_subscribe_outcome(device, kind, status, granted);
}

// --- hot reload of the subscriptions' dialogs ------------------------------------------------------
json GbPlugin::subs_to_json() const {
  json a = json::array();
  for (auto& [k, s] : subs_)
    a.push_back({{"key", k}, {"device", s.device}, {"kind", int(s.kind)}, {"call_id", s.call_id}, {"from_tag", s.from_tag},
                 {"initial", s.initial}, {"has_dialog", s.has_dialog}, {"dialog", s.has_dialog ? s.dialog.to_json() : json()}});
  return a;
}

void GbPlugin::subs_from_json(const json& j) {
  if (!j.is_array()) return;
  for (auto& e : j) {
    if (!e.is_object()) continue;
    OutSub s;
    s.device = e.value("device", std::string());
    s.kind = e.value("kind", 0) == 1 ? mc::SubKind::Alarm : mc::SubKind::Catalog;
    s.call_id = e.value("call_id", std::string());
    s.from_tag = e.value("from_tag", std::string());
    s.initial = e.value("initial", std::string());
    s.has_dialog = e.value("has_dialog", false) && e.contains("dialog") && sip::Dialog::from_json(e["dialog"], s.dialog);
    subs_[e.value("key", sub_key(s.device, s.kind))] = std::move(s);
  }
}

}  // namespace gb
