// RFC 6665 subscriptions; see subscription.hpp.
#include <junction/sip/subscription.hpp>

#include <algorithm>

namespace junction::sip {

std::string_view sub_state_name(SubState s) {
  switch (s) {
    case SubState::Pending: return "pending";
    case SubState::Active: return "active";
    case SubState::Terminated: return "terminated";
  }
  return "?";
}

namespace {
bool header_uint(const Message& m, HeaderId id, uint64_t& out) {
  const Header* h = m.find(id);
  return h && parse_uint(trim_lws(h->value), 0xffffffffu, out);
}
uint64_t refresh_point(uint64_t now, uint32_t expires_s) {
  uint64_t span = uint64_t(expires_s) * 1000;
  uint64_t before = std::min<uint64_t>(span / 2, 32000);
  return now + span - before;
}
}  // namespace

std::string Subscription::initial_subscribe(Stack& stack, Proto proto, std::string_view target_uri, std::string_view from_uri,
                                            std::string_view to_uri, std::string_view event, uint32_t expires,
                                            std::string_view from_tag, std::string_view call_id, std::string_view extra_headers,
                                            std::string_view body, std::string_view content_type) {
  std::string out;
  Writer w(out);
  w.request_line("SUBSCRIBE", target_uri);
  stack.write_via(w, proto, stack.new_branch());
  w.header("Max-Forwards", 70);
  w.header("From", std::string("<") + std::string(from_uri) + ">;tag=" + std::string(from_tag));
  w.header("To", std::string("<") + std::string(to_uri) + ">");
  w.header("Call-ID", call_id);
  w.header("CSeq", "1 SUBSCRIBE");
  w.header("Contact", stack.contact(proto));
  w.header("Event", event);
  w.header("Expires", int64_t(expires));
  out.append(extra_headers);
  w.finish(body, content_type);
  return out;
}

std::string Subscription::refresh(Stack& stack, uint32_t expires, std::string_view extra_headers) {
  std::string hdr = "Event: " + event + (event_id.empty() ? "" : ";id=" + event_id) + "\r\nExpires: " + std::to_string(expires) + "\r\n";
  hdr.append(extra_headers);
  return dialog.request(stack, "SUBSCRIBE", hdr);
}

void Subscription::on_subscribe_response(const Message& resp, uint32_t asked, uint64_t now, uint32_t* min_expires_out) {
  subscriber = true;
  if (resp.status() < 200) return;
  if (resp.status() >= 300) {
    if (resp.status() == 423 && min_expires_out) {
      uint64_t v = 0;
      if (header_uint(resp, HeaderId::MinExpires, v)) *min_expires_out = static_cast<uint32_t>(v);
    }
    // A failed refresh ends the subscription only at its expiry (RFC 6665 §4.1.2.2); a failed
    // initial one at once.
    if (expires_at == 0) {
      state = SubState::Terminated;
      terminated_reason = "rejected " + std::to_string(resp.status());
    }
    refresh_at = 0;
    return;
  }
  uint64_t granted = asked;
  header_uint(resp, HeaderId::Expires, granted);
  granted = std::min<uint64_t>(granted, asked ? asked : granted);  // never longer than asked
  expires_s = static_cast<uint32_t>(granted);
  if (expires_s == 0) {
    refresh_at = 0;
    return;  // an unsubscribe: the final NOTIFY ends it
  }
  expires_at = now + uint64_t(expires_s) * 1000;
  refresh_at = refresh_point(now, expires_s);
}

bool Subscription::on_notify(const Message& notify, uint64_t now) {
  const Header* h = notify.find(HeaderId::SubscriptionState);
  if (!h) return false;
  std::string_view v = trim_lws(h->value);
  size_t semi = v.find(';');
  std::string_view st = trim_lws(v.substr(0, semi));
  ParamList params(semi == std::string_view::npos ? std::string_view() : v.substr(semi));
  if (iequals(st, "terminated")) {
    state = SubState::Terminated;
    terminated_reason = std::string(params.value("reason"));
    refresh_at = 0;
    return true;
  }
  if (iequals(st, "active")) state = SubState::Active;
  else if (iequals(st, "pending")) state = SubState::Pending;
  else return false;
  uint64_t e = 0;
  std::string_view ev = params.value("expires");
  if (!ev.empty() && parse_uint(ev, 0xffffffffu, e)) {
    expires_s = static_cast<uint32_t>(e);
    expires_at = now + e * 1000;
    uint64_t r = refresh_point(now, expires_s);
    if (refresh_at == 0 || r < refresh_at) refresh_at = r;  // the notifier shortened it
  }
  return true;
}

int Subscription::grant(const Message& subscribe, uint32_t min_s, uint32_t max_s, uint32_t default_s, uint64_t now) {
  subscriber = false;
  uint64_t e = default_s;
  const Header* h = subscribe.find(HeaderId::Expires);
  if (h && !parse_uint(trim_lws(h->value), 0xffffffffu, e)) return 400;
  if (e != 0 && e < min_s) return 423;
  e = std::min<uint64_t>(e, max_s);
  expires_s = static_cast<uint32_t>(e);
  if (const Header* ev = subscribe.find(HeaderId::Event)) {
    std::string_view v = trim_lws(ev->value);
    size_t semi = v.find(';');
    event = std::string(trim_lws(v.substr(0, semi)));
    if (semi != std::string_view::npos) event_id = std::string(ParamList(v.substr(semi)).value("id"));
  }
  if (e == 0) {
    state = SubState::Terminated;
    terminated_reason = "timeout";
    expires_at = now;
  } else {
    if (state != SubState::Active) state = SubState::Active;
    expires_at = now + e * 1000;
  }
  refresh_at = 0;
  return 200;
}

std::string Subscription::notify(Stack& stack, uint64_t now, std::string_view body, std::string_view content_type,
                                 std::string_view extra_headers) {
  std::string hdr = "Event: " + event + (event_id.empty() ? "" : ";id=" + event_id) + "\r\n";
  if (state == SubState::Terminated) {
    hdr += "Subscription-State: terminated;reason=" + (terminated_reason.empty() ? std::string("noresource") : terminated_reason) + "\r\n";
  } else {
    uint64_t left = expires_at > now ? (expires_at - now + 999) / 1000 : 0;
    hdr += "Subscription-State: " + std::string(sub_state_name(state)) + ";expires=" + std::to_string(left) + "\r\n";
  }
  hdr.append(extra_headers);
  return dialog.request(stack, "NOTIFY", hdr, body, content_type);
}

uint64_t Subscription::next_due() const {
  if (state == SubState::Terminated) return 0;
  uint64_t d = expires_at;
  if (refresh_at && (!d || refresh_at < d)) d = refresh_at;
  return d;
}

Subscription::Due Subscription::due(uint64_t now) const {
  if (state == SubState::Terminated) return Due::Nothing;
  if (expires_at && expires_at <= now) return Due::Expired;
  if (subscriber && refresh_at && refresh_at <= now) return Due::Refresh;
  return Due::Nothing;
}

nlohmann::json Subscription::to_json() const {
  return {{"dialog", dialog.to_json()}, {"event", event},           {"event_id", event_id},
          {"state", static_cast<int>(state)}, {"expires_s", expires_s}, {"expires_at", expires_at},
          {"refresh_at", refresh_at},   {"subscriber", subscriber}, {"reason", terminated_reason}};
}

bool Subscription::from_json(const nlohmann::json& j, Subscription& s) {
  try {
    s = Subscription{};
    if (!Dialog::from_json(j.at("dialog"), s.dialog)) return false;
    s.event = j.at("event").get<std::string>();
    s.event_id = j.value("event_id", std::string());
    int st = j.at("state").get<int>();
    if (st < 1 || st > 3) return false;
    s.state = static_cast<SubState>(st);
    s.expires_s = j.at("expires_s").get<uint32_t>();
    s.expires_at = j.at("expires_at").get<uint64_t>();
    s.refresh_at = j.at("refresh_at").get<uint64_t>();
    s.subscriber = j.at("subscriber").get<bool>();
    s.terminated_reason = j.value("reason", std::string());
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

}  // namespace junction::sip
