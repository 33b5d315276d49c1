// RFC 3261 §12 dialogs; see dialog.hpp.
#include <junction/sip/dialog.hpp>

#include <junction/util/addr.hpp>

#include <algorithm>

namespace junction::sip {

namespace {
bool fail(std::string* e, const char* why) {
  if (e) *e = why;
  return false;
}

// Every value of every header `id`, in order.
std::vector<std::string> values_of(const Message& m, HeaderId id) {
  std::vector<std::string> out;
  for (const Header* h = m.find(id); h; h = m.next(h)) {
    std::string_view rest = h->value, v;
    while (next_value(rest, v)) out.emplace_back(unfold(v));
  }
  return out;
}

// The URI of the first Contact, empty when none (or "*").
std::string contact_uri(const Message& m) {
  const Header* h = m.find(HeaderId::Contact);
  if (!h) return {};
  std::string_view rest = h->value, v;
  if (!next_value(rest, v)) return {};
  Contact c;
  if (!parse_contact(v, c) || c.star) return {};
  return std::string(c.addr.uri_text);
}

bool is_target_refresh(std::string_view method) {
  return method == "INVITE" || method == "UPDATE" || method == "SUBSCRIBE" || method == "NOTIFY" || method == "REFER";
}

Flow flow_from_json(const nlohmann::json& j) {
  Flow f;
  f.proto = proto_from_int(j.value("proto", 1));
  util::parse_addr(j.value("peer", std::string()), f.peer);
  f.sock = j.value("sock", jn_handle(0));
  f.conn = j.value("conn", jn_handle(0));
  return f;
}
nlohmann::json flow_to_json(const Flow& f) {
  return {{"proto", static_cast<int>(f.proto)}, {"peer", util::format_addr(f.peer)}, {"sock", f.sock}, {"conn", f.conn}};
}
}  // namespace

std::string without_tag(const NameAddr& a) {
  std::string out;
  if (!a.display.empty()) out.append(a.display).append(" ");
  out.append("<").append(a.uri_text).append(">");
  size_t cur = 0;
  std::string_view n, v;
  while (a.params.next(cur, n, v)) {
    if (iequals(n, "tag")) continue;
    out.append(";").append(n);
    if (!v.empty()) out.append("=").append(v);
  }
  return out;
}

bool Dialog::from_request(const Message& req, const Flow& from, std::string_view local_tag, std::string_view local_contact,
                          Dialog& out, std::string* error) {
  if (!req.is_request()) return fail(error, "not a request");
  if (req.from_tag().empty()) return fail(error, "the request's From has no tag");
  std::string target = contact_uri(req);
  if (target.empty()) return fail(error, "a dialog-creating request needs a Contact");
  out = Dialog{};
  out.uac = false;
  out.call_id = std::string(req.call_id());
  out.local_tag = std::string(local_tag);
  out.remote_tag = std::string(req.from_tag());
  out.local_uri = without_tag(req.to());
  out.remote_uri = without_tag(req.from());
  out.remote_target = std::move(target);
  out.route_set = values_of(req, HeaderId::RecordRoute);  // as they came (§12.1.1)
  out.remote_cseq = req.cseq().seq;
  out.remote_cseq_set = true;
  out.local_contact = std::string(local_contact);
  out.secure = iequals(req.request_uri().substr(0, 5), "sips:");
  out.flow = from;
  out.state = DialogState::Early;
  return true;
}

bool Dialog::from_response(std::string_view request_sent, const Message& resp, const Flow& to, std::string_view local_contact,
                           Dialog& out, std::string* error) {
  Message req;
  if (parse(request_sent, req) != ParseStatus::Ok) return fail(error, "the request sent does not parse");
  if (!resp.is_response() || resp.status() <= 100 || resp.status() >= 300) return fail(error, "not a 101-299 response");
  if (resp.to_tag().empty()) return fail(error, "the response's To has no tag");
  out = Dialog{};
  out.uac = true;
  out.call_id = std::string(req.call_id());
  out.local_tag = std::string(req.from_tag());
  out.remote_tag = std::string(resp.to_tag());
  out.local_uri = without_tag(req.from());
  out.remote_uri = without_tag(resp.to());
  out.remote_target = contact_uri(resp);
  if (out.remote_target.empty()) out.remote_target = std::string(req.request_uri());
  out.route_set = values_of(resp, HeaderId::RecordRoute);
  std::reverse(out.route_set.begin(), out.route_set.end());  // §12.1.2: reversed on the UAC
  out.local_cseq = req.cseq().seq;
  out.local_contact = std::string(local_contact);
  out.secure = iequals(req.request_uri().substr(0, 5), "sips:");
  out.flow = to;
  out.state = resp.status() >= 200 ? DialogState::Confirmed : DialogState::Early;
  return true;
}

void Dialog::on_response(const Message& resp) {
  if (resp.status() < 101 || resp.status() >= 300) return;
  if (is_target_refresh(resp.cseq().method)) {
    std::string t = contact_uri(resp);
    if (!t.empty()) remote_target = std::move(t);
  }
  if (state == DialogState::Early && resp.status() >= 200 && resp.cseq().method == "INVITE") {
    state = DialogState::Confirmed;
    route_set = values_of(resp, HeaderId::RecordRoute);  // the 2xx's route set wins (§13.2.2.4)
    std::reverse(route_set.begin(), route_set.end());
  }
}

bool Dialog::on_request(const Message& req, const Flow& from) {
  std::string_view method = req.method();
  if (method != "ACK" && method != "CANCEL") {
    if (remote_cseq_set && req.cseq().seq <= remote_cseq) return false;
    remote_cseq = req.cseq().seq;
    remote_cseq_set = true;
  }
  if (is_target_refresh(method)) {
    std::string t = contact_uri(req);
    if (!t.empty()) remote_target = std::move(t);
  }
  flow = from;  // the peer's real source: where it is reached now
  return true;
}

std::string Dialog::request(Stack& stack, std::string_view method, std::string_view extra_headers, std::string_view body,
                            std::string_view content_type, uint32_t cseq) {
  if (cseq == 0) cseq = ++local_cseq;
  std::string out;
  Writer w(out);
  // §12.2.1.1: loose routing (first route has ;lr) keeps the target as Request-URI; strict
  // routing puts the first route there and the target at the end of Route.
  bool strict = false;
  std::string first_route_uri;
  if (!route_set.empty()) {
    NameAddr na;
    if (parse_name_addr(route_set.front(), na)) {
      Uri u;
      first_route_uri = std::string(na.uri_text);
      strict = parse_uri(na.uri_text, u) && !u.lr();
    }
  }
  w.request_line(method, strict ? std::string_view(first_route_uri) : std::string_view(remote_target));
  stack.write_via(w, flow.proto, stack.new_branch());
  w.header("Max-Forwards", 70);
  for (size_t i = strict ? 1 : 0; i < route_set.size(); ++i) w.header("Route", route_set[i]);
  if (strict) w.header("Route", "<" + remote_target + ">");
  w.header("From", local_uri + ";tag=" + local_tag);
  w.header("To", remote_uri + (remote_tag.empty() ? std::string() : ";tag=" + remote_tag));
  w.header("Call-ID", call_id);
  w.header("CSeq", std::to_string(cseq) + " " + std::string(method));
  if (is_target_refresh(method) && !local_contact.empty()) w.header("Contact", local_contact);
  if (!stack.config().user_agent.empty()) w.header("User-Agent", stack.config().user_agent);
  out.append(extra_headers);
  w.finish(body, content_type);
  return out;
}

nlohmann::json Dialog::to_json() const {
  return {{"call_id", call_id},     {"local_tag", local_tag},       {"remote_tag", remote_tag},
          {"local_uri", local_uri}, {"remote_uri", remote_uri},     {"target", remote_target},
          {"routes", route_set},    {"contact", local_contact},     {"lseq", local_cseq},
          {"rseq", remote_cseq},    {"rseq_set", remote_cseq_set},  {"state", static_cast<int>(state)},
          {"uac", uac},             {"secure", secure},             {"flow", flow_to_json(flow)}};
}

bool Dialog::from_json(const nlohmann::json& j, Dialog& d) {
  try {
    d = Dialog{};
    d.call_id = j.at("call_id").get<std::string>();
    d.local_tag = j.at("local_tag").get<std::string>();
    d.remote_tag = j.at("remote_tag").get<std::string>();
    d.local_uri = j.at("local_uri").get<std::string>();
    d.remote_uri = j.at("remote_uri").get<std::string>();
    d.remote_target = j.at("target").get<std::string>();
    d.route_set = j.at("routes").get<std::vector<std::string>>();
    d.local_contact = j.value("contact", std::string());
    d.local_cseq = j.at("lseq").get<uint32_t>();
    d.remote_cseq = j.at("rseq").get<uint32_t>();
    d.remote_cseq_set = j.value("rseq_set", false);
    int st = j.at("state").get<int>();
    if (st < 1 || st > 3) return false;
    d.state = static_cast<DialogState>(st);
    d.uac = j.at("uac").get<bool>();
    d.secure = j.value("secure", false);
    d.flow = flow_from_json(j.at("flow"));
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

Dialog* DialogSet::add(Dialog d) {
  std::string k = d.key();
  auto [it, fresh] = dialogs_.insert_or_assign(std::move(k), std::move(d));
  (void)fresh;
  return &it->second;
}

Dialog* DialogSet::find(std::string_view call_id, std::string_view local_tag, std::string_view remote_tag) {
  std::string k;
  k.append(call_id).append(1, '\x1f').append(local_tag).append(1, '\x1f').append(remote_tag);
  auto it = dialogs_.find(k);
  return it == dialogs_.end() ? nullptr : &it->second;
}

Dialog* DialogSet::find(const Message& m) {
  if (m.is_request()) return find(m.call_id(), m.to_tag(), m.from_tag());
  return find(m.call_id(), m.from_tag(), m.to_tag());
}

nlohmann::json DialogSet::to_json() const {
  nlohmann::json a = nlohmann::json::array();
  for (auto& [k, d] : dialogs_) a.push_back(d.to_json());
  return a;
}

bool DialogSet::from_json(const nlohmann::json& j) {
  if (!j.is_array()) return false;
  std::unordered_map<std::string, Dialog> m;
  for (auto& e : j) {
    Dialog d;
    if (!Dialog::from_json(e, d)) return false;
    m.emplace(d.key(), std::move(d));
  }
  dialogs_ = std::move(m);
  return true;
}

}  // namespace junction::sip
