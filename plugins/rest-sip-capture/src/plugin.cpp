#include "plugin.hpp"

#include <junction/util/addr.hpp>
#include <junction/util/random.hpp>

#include <algorithm>

namespace capture {

using junction::sdk::Host;
using junction::sdk::to_jn;
using junction::sdk::to_sv;
using nlohmann::json;

namespace {
constexpr uint64_t kTickMs = 250;
}

CapturePlugin::CapturePlugin(Host h, const jn_create_args&)
    : Plugin(h), conf_(read_conf(h)), env_(h, kSipTimerCookie, kSipTcpCookie) {
  sip::StackConfig sc;
  jn_addr a{};
  junction::util::parse_addr(conf_.sip_listen, a);
  sc.host = conf_.sip_host;
  sc.udp_port = a.port;
  sc.tcp_port = a.port;
  sc.tls_port = a.port;  // our Via / Contact over TLS (a client: the connection carries the answers)
  sc.tls_ca_file = conf_.sip_tls_ca_file;
  sc.user_agent = conf_.user_agent;
  stack_ = std::make_unique<sip::Stack>(env_, *this, sc);
  env_.attach(stack_.get());
}

CapturePlugin::~CapturePlugin() {
  // A call's pushes hold its media (their lock) and the media holds its pushes: break the cycle
  // (after a reload the calls live on in the next instance; this one's copies go).
  std::lock_guard<std::mutex> g(idx_mu_);
  for (auto& [id, m] : media_) {
    std::lock_guard<std::mutex> mg(m->mu);
    m->pushes.clear();
  }
  media_.clear();
  pushes_.clear();
}

// abi.h's rule for libraries with process-wide state (AacEncoder::libraries says why).
jn_status CapturePlugin::pin_codec_libraries() {
  for (const std::string& soname : AacEncoder::libraries()) {
    bool first = false;
    if (jn_status st = host().library_pin(soname, &first); st != JN_OK) {
      host().set_error("rest-sip-capture: cannot pin " + soname + " (library_pin)");
      return st;
    }
  }
  return JN_OK;
}

jn_status CapturePlugin::start() {
  if (jn_status pin = pin_codec_libraries(); pin != JN_OK) return pin;
  jn_status st = env_.listen_udp(conf_.sip_listen);
  if (st != JN_OK) {
    host().set_error("rest-sip-capture: cannot bind SIP on " + conf_.sip_listen);
    return st;
  }
  if ((st = host().http_listen(conf_.listen, "", 0, &http_)) != JN_OK) {
    host().set_error("rest-sip-capture: cannot listen for REST on " + conf_.listen);
    return st;
  }
  if ((st = host().timer(kTickMs, kTickMs, cookie(kTickTimer, 0), &tick_)) != JN_OK) return st;
  host().event_subscribe(JN_MEDIA_KEYFRAME_REQUEST_TOPIC);
  host().info("rest-sip-capture: REST on http://" + conf_.listen + "/rest-api/, SIP on udp " + conf_.sip_listen +
              (rtmp_available() ? "" : " (built without sdk/rtmp: RTMP pushes fail)"));
  return JN_OK;
}

jn_status CapturePlugin::stop() {
  // Unload or server stop: every call gets its BYE / CANCEL (a reload keeps them: stop is not called).
  std::vector<std::string> ids;
  reg_.for_each([&](Call& c) {
    if (!is_final(c.status)) ids.push_back(c.call_id);
  });
  for (auto& id : ids)
    if (Call* c = reg_.find(id)) end_call(*c, Status::Finish, 0, "server stopping", true);
  return JN_OK;
}

// --- REST -----------------------------------------------------------------------------------

void CapturePlugin::respond(const jn_http_request& r, int status, const json& body) {
  static const std::string kOrigin = "Access-Control-Allow-Origin";
  std::vector<jn_header> hs{{to_jn(kOrigin), to_jn("*")}};
  host().http_respond(r.request, status, body.is_null() ? std::string() : body.dump(), "application/json", hs);
}

void CapturePlugin::on_http(const jn_http_request& r) {
  std::string_view path = to_sv(r.path), method = to_sv(r.method);
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (method == "OPTIONS") {  // CORS preflight for browser clients
    std::vector<jn_header> hs{{to_jn("Access-Control-Allow-Origin"), to_jn("*")},
                              {to_jn("Access-Control-Allow-Methods"), to_jn("POST, OPTIONS")},
                              {to_jn("Access-Control-Allow-Headers"), to_jn("Content-Type, Authorization")}};
    host().http_respond(r.request, 204, "", "application/json", hs);
    return;
  }
  constexpr std::string_view kPrefix = "/rest-api/";
  if (path.substr(0, kPrefix.size()) != kPrefix) {
    respond(r, 404, {{"error", "not found: the REST API is under /rest-api/"}});
    return;
  }
  std::string_view verb = path.substr(kPrefix.size());
  static const char* kVerbs[] = {"call/startup", "call/find", "call/find_all", "call/terminate", "call/send_dtmf",
                                 "push/startup", "push/terminate"};
  if (std::find(std::begin(kVerbs), std::end(kVerbs), verb) == std::end(kVerbs)) {
    respond(r, 404, {{"error", "no such method: " + std::string(verb.substr(0, 64))}});
    return;
  }
  if (method != "POST") {
    respond(r, 405, {{"error", "use POST"}});
    return;
  }
  if (!conf_.api_token.empty() && to_sv(r.authorization) != "Bearer " + conf_.api_token) {
    host().info("rest-sip-capture: REST " + std::string(verb) + " refused: bad or missing bearer token");
    std::vector<jn_header> hs{{to_jn("Access-Control-Allow-Origin"), to_jn("*")}, {to_jn("WWW-Authenticate"), to_jn("Bearer")}};
    host().http_respond(r.request, 401, R"j({"error":"a bearer token is required (Authorization: Bearer ...)"})j", "application/json", hs);
    return;
  }
  json body;
  std::string_view text = to_sv(r.body);
  if (text.find_first_not_of(" \t\r\n") != std::string_view::npos) {
    body = json::parse(text, nullptr, false);
    if (body.is_discarded()) {
      host().info("rest-sip-capture: REST " + std::string(verb) + " refused: the body is not JSON");
      respond(r, 400, {{"error", "the body is not valid JSON"}, {"field", nullptr}});
      return;
    }
  }
  if (verb == "call/startup") rest_startup(r, body);
  else if (verb == "call/find") rest_find(r, body, false);
  else if (verb == "call/find_all") rest_find(r, body, true);
  else if (verb == "call/terminate") rest_terminate(r, body);
  else if (verb == "call/send_dtmf") rest_dtmf(r, body);
  else if (verb == "push/startup") rest_push_startup(r, body);
  else rest_push_terminate(r, body);
}

namespace {
json bad_json(const BadRequest& e) { return {{"error", e.reason}, {"field", e.field.empty() ? json(nullptr) : json(e.field)}}; }
}  // namespace

void CapturePlugin::rest_startup(const jn_http_request& r, const json& body) {
  BadRequest err;
  auto req = parse_startup(body, err);
  if (!req) {
    host().info("rest-sip-capture: /call/startup refused (400): " + err.reason);
    host().counter_add("capture_rest_refused_total", 1, "reason=\"bad_request\"");
    respond(r, 400, bad_json(err));
    return;
  }
  if (std::string c = reg_.conflict(*req); !c.empty()) {
    host().info("rest-sip-capture: /call/startup refused (409): " + c);
    host().counter_add("capture_rest_refused_total", 1, "reason=\"conflict\"");
    respond(r, 409, {{"error", c}});
    return;
  }
  if (reg_.live() >= conf_.max_calls) {
    host().warn("rest-sip-capture: /call/startup refused (503): max_calls reached");
    respond(r, 503, {{"error", "max_calls (" + std::to_string(conf_.max_calls) + ") calls are up"}});
    return;
  }
  Call c;
  c.id = next_id_++;
  c.req = *req;
  c.call_id = req->call_id;
  if (c.call_id.empty()) {
    std::string hex;
    if (!junction::util::random_hex(16, hex)) {
      respond(r, 500, {{"error", "no randomness for a call id"}});
      return;
    }
    c.call_id = hex;
  }
  c.caller = req->sip_login.empty() ? conf_.default_caller : req->sip_login;
  c.created_ms = host().now_ms();
  Call& call = reg_.add(std::move(c));
  std::string merr;
  if (!media_open(call, merr)) {
    host().warn("rest-sip-capture: call " + call.call_id + " refused (503): " + merr);
    reg_.erase(call.call_id);
    respond(r, 503, {{"error", merr}});
    return;
  }
  if (req->rtmp) push_create(&call, {}, *req->rtmp, true);
  ++calls_total_;
  host().counter_add("capture_calls_total");
  host().info("rest-sip-capture: call " + call.call_id + " to " + call.req.callee + "@" + call.req.sip_domain +
              (req->rtmp ? " -> " + req->rtmp->key() : std::string(" (no RTMP)")));
  emit(call);  // NEW
  json j = call_json(call, conf_.node_id, false);
  sip_begin(call);
  respond(r, 200, j);
}

void CapturePlugin::rest_find(const jn_http_request& r, const json& body, bool all) {
  std::vector<const Call*> found;
  if (all) {
    found = reg_.all();
  } else {
    BadRequest err;
    auto f = parse_find(body, err);
    if (!f) {
      respond(r, 400, bad_json(err));
      return;
    }
    found = reg_.find(*f);
  }
  if (found.empty()) {
    respond(r, 404, {{"error", "no call found"}});
    return;
  }
  json a = json::array();
  for (const Call* c : found) {
    Call copy = *c;
    sync_push_info(copy);
    a.push_back(call_json(copy, conf_.node_id, true));
  }
  respond(r, 200, a);
}

void CapturePlugin::rest_terminate(const jn_http_request& r, const json& body) {
  std::string id;
  if (!body.is_object() || !body.contains("callId") || !body["callId"].is_string() ||
      (id = body["callId"].get<std::string>()).empty()) {
    respond(r, 400, {{"error", "callId (a string) is required"}, {"field", "callId"}});
    return;
  }
  Call* c = reg_.find(id);
  if (!c || is_final(c->status)) {
    respond(r, 404, {{"error", "no call " + id.substr(0, 128) + " in progress"}});
    return;
  }
  end_call(*c, Status::Finish, c->sip_status, "terminated by REST", true);
  respond(r, 200, nullptr);
}

void CapturePlugin::rest_dtmf(const jn_http_request& r, const json& body) {
  BadRequest err;
  auto d = parse_dtmf(body, err);
  if (!d) {
    respond(r, 400, bad_json(err));
    return;
  }
  Call* c = reg_.find(d->call_id);
  auto leg = legs_.find(c ? c->id : 0);
  if (!c || is_final(c->status) || leg == legs_.end()) {
    respond(r, 404, {{"error", "no call " + d->call_id + " in progress"}});
    return;
  }
  if (c->status != Status::Established && c->status != Status::Hold) {
    respond(r, 409, {{"error", std::string("the call is ") + to_string(c->status) + ", not ESTABLISHED"}});
    return;
  }
  if (d->info) {
    send_dtmf_info(*c, leg->second, d->digits);
  } else {
    auto m = media_of(c->id);
    if (!m || !m->audio.remote_rtp.family) {
      respond(r, 409, {{"error", "the call has no audio stream to carry RFC 2833 events (use type INFO)"}});
      return;
    }
    leg->second.dtmf_queue += d->digits;
    if (!leg->second.dtmf_timer) host().timer(0, 20, cookie(kDtmfTimer, c->id), &leg->second.dtmf_timer);
  }
  host().info("rest-sip-capture: call " + c->call_id + " DTMF " + d->digits + (d->info ? " (INFO)" : " (RFC 2833)"));
  host().counter_add("capture_dtmf_digits_total", d->digits.size());
  respond(r, 200, nullptr);
}

void CapturePlugin::rest_push_startup(const jn_http_request& r, const json& body) {
  BadRequest err;
  auto p = parse_push(body, err);
  if (!p) {
    respond(r, 400, bad_json(err));
    return;
  }
  std::string conflict = reg_.push_conflict(p->rtmp);
  if (conflict.empty() && bus_pushes_.count(p->rtmp.key())) conflict = "rtmpUrl " + p->rtmp.url + " with rtmpStream " + p->rtmp.stream + " is in use";
  if (!conflict.empty()) {
    respond(r, 409, {{"error", conflict}});
    return;
  }
  if (!p->call_id.empty()) {
    Call* c = reg_.find(p->call_id);
    if (!c || is_final(c->status)) {
      respond(r, 404, {{"error", "no call " + p->call_id + " in progress"}});
      return;
    }
    auto push = push_create(c, {}, p->rtmp, false);
    if (c->status == Status::Established || c->status == Status::Hold) push_connect(push);
    host().info("rest-sip-capture: call " + c->call_id + " pushes also to " + p->rtmp.key());
    emit(*c, &c->pushes.back());
    respond(r, 200, {{"callId", c->call_id}, {"pushId", push->id}, {"rtmpUrl", p->rtmp.url}, {"rtmpStream", p->rtmp.stream}});
    return;
  }
  auto push = push_create(nullptr, p->bus_stream, p->rtmp, false);
  if (!push) {
    respond(r, 503, {{"error", "could not subscribe to " + p->bus_stream}});
    return;
  }
  push_connect(push);
  host().info("rest-sip-capture: bus stream " + p->bus_stream + " pushed to " + p->rtmp.key());
  respond(r, 200, {{"streamName", p->bus_stream}, {"pushId", push->id}, {"rtmpUrl", p->rtmp.url}, {"rtmpStream", p->rtmp.stream}});
}

void CapturePlugin::rest_push_terminate(const jn_http_request& r, const json& body) {
  BadRequest err;
  if (!body.is_object()) {
    respond(r, 400, {{"error", "the body must be a JSON object"}, {"field", nullptr}});
    return;
  }
  std::string url, stream;
  if (body.contains("rtmpUrl") && body["rtmpUrl"].is_string()) url = body["rtmpUrl"].get<std::string>();
  if (body.contains("rtmpStream") && body["rtmpStream"].is_string()) stream = body["rtmpStream"].get<std::string>();
  RtmpTarget t;
  std::string why;
  if (!parse_rtmp_url(url, t, why)) {
    respond(r, 400, {{"error", url.empty() ? "rtmpUrl is required" : "rtmpUrl " + why}, {"field", "rtmpUrl"}});
    return;
  }
  if (stream.empty()) {
    respond(r, 400, {{"error", "rtmpStream is required"}, {"field", "rtmpStream"}});
    return;
  }
  t.stream = stream;
  std::shared_ptr<Push> found;
  {
    std::lock_guard<std::mutex> g(idx_mu_);
    for (auto& [id, p] : pushes_)
      if (!p->stopped && p->target.key() == t.key()) found = p;
  }
  if (!found) {
    respond(r, 404, {{"error", "no push to " + t.key()}});
    return;
  }
  push_stop(found, "terminated by REST");
  respond(r, 200, nullptr);
}

// --- status -------------------------------------------------------------------------------------

void CapturePlugin::set_status(Call& c, Status s, int sip_status, std::string info) {
  if (sip_status) c.sip_status = sip_status;
  if (!info.empty()) c.info = std::move(info);
  if (c.status == s) return;
  c.status = s;
  host().info("rest-sip-capture: call " + c.call_id + " " + to_string(s) + (c.sip_status ? " (" + std::to_string(c.sip_status) + ")" : "") +
              (c.info.empty() ? "" : ": " + c.info));
  emit(c);
}

void CapturePlugin::end_call(Call& c, Status s, int sip_status, const std::string& info, bool send_bye) {
  if (is_final(c.status)) return;
  auto it = legs_.find(c.id);
  if (it != legs_.end()) {
    SipLeg& leg = it->second;
    if (leg.has_dialog) {
      if (send_bye) {
        std::string bye = leg.dialog.request(*stack_, "BYE");
        if (sip::TxnId t = stack_->send_request(bye, leg.dialog.flow)) txn_call_[t] = c.id;
      }
    } else if (leg.invite_txn && !leg.cancel_sent) {
      stack_->cancel(leg.invite_txn);  // the 487 (or a 2xx that crossed it: ACK + BYE) still comes
      leg.cancel_sent = true;
    }
    if (leg.dtmf_timer) host().stop_timer(leg.dtmf_timer), leg.dtmf_timer = 0;
  }
  // Pushes end with the call; their last status is kept for find.
  auto m = media_of(c.id);
  if (m) {
    std::vector<std::shared_ptr<Push>> ps;
    {
      std::lock_guard<std::mutex> g(m->mu);
      aac_end(*m, false);  // the audio still inside the encoder goes out before the unpublish
      ps = m->pushes;
    }
    for (auto& p : ps) push_stop(p, "call ended");
  }
  media_close(c.id);
  c.ended_ms = host().now_ms();
  if (s == Status::Failed) {
    ++calls_failed_;
    host().counter_add("capture_calls_failed_total");
  }
  sync_push_info(c);
  set_status(c, s, sip_status, info);
  // Keep the leg while an INVITE may still be answered (a crossed 2xx gets ACK + BYE).
  if (it != legs_.end() && (it->second.has_dialog || !it->second.invite_txn)) legs_.erase(it);
}

// --- events to the backend ------------------------------------------------------------------------

void CapturePlugin::emit(const Call& c, const PushInfo* push) {
  if (conf_.backend_url.empty()) return;
  Call copy = c;
  sync_push_info(copy);
  json j = call_json(copy, conf_.node_id, false);
  j["appKey"] = c.req.app_key.empty() ? json("callApp") : json(c.req.app_key);
  if (push) {
    for (auto& p : copy.pushes)
      if (p.id == push->id) {
        const char* st = to_string(p.status);
        j["rtmpUrl"] = p.rtmp.url;
        j["rtmpStream"] = p.rtmp.stream;
        j["rtmpStreamStatus"] = st ? json(st) : json(nullptr);
      }
  }
  j.erase("pushes");
  if (events_.size() >= conf_.backend_queue) {
    events_.pop_front();  // the oldest gives way: a slow backend never holds memory without bound
    ++events_dropped_;
    host().counter_add("capture_backend_events_dropped_total");
    host().warn("rest-sip-capture: backend queue full (" + std::to_string(conf_.backend_queue) + "): oldest event dropped");
  }
  events_.push_back(j.dump());
  events_pump();
}

void CapturePlugin::events_pump() {
  if (event_req_ || event_timer_ || events_.empty() || conf_.backend_url.empty()) return;
  auto req = Host::http_client_request("POST", conf_.backend_url);
  req.body = to_jn(events_.front());
  req.timeout_ms = conf_.backend_timeout_ms;
  std::string auth = "Bearer " + conf_.backend_token;
  std::vector<jn_header> hs{{to_jn("Content-Type"), to_jn("application/json")}};
  if (!conf_.backend_token.empty()) hs.push_back({to_jn("Authorization"), to_jn(auth)});
  req.headers = hs.data();
  req.header_count = static_cast<uint32_t>(hs.size());
  jn_status st = host().http_request(req, cookie(kHttpEvent, 0), &event_req_);
  if (st != JN_OK) {
    event_req_ = 0;
    host().warn("rest-sip-capture: backend request not started (status " + std::to_string(st) + "): retrying");
    uint64_t delay = std::min<uint64_t>(uint64_t(conf_.backend_backoff_ms) << std::min<uint32_t>(event_attempt_, 16), conf_.backend_backoff_max_ms);
    ++event_attempt_;
    host().timer(delay, 0, cookie(kEventTimer, 0), &event_timer_);
  }
}

void CapturePlugin::on_http_response(const jn_http_client_response& r) {
  if (cookie_kind(r.cookie) != kHttpEvent) return;
  event_req_ = 0;
  bool ok = r.status >= 200 && r.status < 300;
  if (ok) {
    events_.pop_front();
    event_attempt_ = 0;
    ++events_sent_;
    host().counter_add("capture_backend_events_sent_total");
    events_pump();
    return;
  }
  std::string why = r.status ? "HTTP " + std::to_string(r.status) : std::string(to_sv(r.error));
  ++events_failed_;
  host().counter_add("capture_backend_event_failures_total");
  if (event_attempt_ >= conf_.backend_retries) {
    host().warn("rest-sip-capture: backend event dropped after " + std::to_string(event_attempt_ + 1) + " attempts: " + why);
    events_.pop_front();
    ++events_dropped_;
    host().counter_add("capture_backend_events_dropped_total");
    event_attempt_ = 0;
    events_pump();
    return;
  }
  uint64_t delay = std::min<uint64_t>(uint64_t(conf_.backend_backoff_ms) << std::min<uint32_t>(event_attempt_, 16), conf_.backend_backoff_max_ms);
  ++event_attempt_;
  host().info("rest-sip-capture: backend event failed (" + why + "): retry " + std::to_string(event_attempt_) + " in " +
              std::to_string(delay) + " ms");
  host().timer(delay, 0, cookie(kEventTimer, 0), &event_timer_);
}

// --- hooks ---------------------------------------------------------------------------------------

void CapturePlugin::on_timer(jn_handle t, uint64_t c) {
  if (env_.on_timer(t, c)) return;
  switch (cookie_kind(c)) {
    case kTickTimer: tick(); break;
    case kEventTimer:
      event_timer_ = 0;
      events_pump();
      break;
    case kReconnectTimer:
      if (auto p = push_of(cookie_id(c))) {
        p->retry_timer = 0;
        if (!p->stopped) push_connect(p);
      }
      break;
    case kDtmfTimer: dtmf_tick(cookie_id(c)); break;
    default: break;
  }
}

void CapturePlugin::on_dns(const jn_dns_result& r) {
  if (env_.on_dns(r)) return;
  if (cookie_kind(r.cookie) != kRtmpDns) return;
  auto p = push_of(cookie_id(r.cookie));
  if (!p || p->stopped) return;
  if (r.status != JN_DNS_OK || r.address_count == 0) {
    std::string why = "cannot resolve " + p->target.host + ": " + std::string(to_sv(r.error));
    host().warn("rest-sip-capture: push " + p->target.key() + ": " + why);
    push_set_status(*p, p->ever_active ? RtmpStatus::Lost : RtmpStatus::Failed, why);
    push_retry(*p);
    return;
  }
  // IPv4 first when the name has both (loopback servers listen on 127.0.0.1 far more often than ::1)
  const jn_addr* pick = &r.addresses[0];
  for (uint32_t i = 0; i < r.address_count; ++i)
    if (r.addresses[i].family == 4) {
      pick = &r.addresses[i];
      break;
    }
  push_connect_addr(p, *pick);
}

void CapturePlugin::on_event(std::string_view topic, std::string_view text) {
  if (topic != JN_MEDIA_KEYFRAME_REQUEST_TOPIC) return;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("stream") || !j["stream"].is_string()) return;
  std::string s = j["stream"].get<std::string>();
  std::string prefix = "rest-sip-capture/";
  if (s.rfind(prefix, 0) != 0) return;
  std::string call_id = s.substr(prefix.size());
  if (size_t sl = call_id.find('/'); sl != std::string::npos) call_id.resize(sl);
  if (Call* c = reg_.find(call_id)) {
    if (auto m = media_of(c->id)) {
      std::lock_guard<std::mutex> g(m->mu);
      m->want_keyframe = true;
    }
  }
}

// --- admin -------------------------------------------------------------------------------------

json CapturePlugin::capture_list() {
  json a = json::array();
  reg_.for_each([&](Call& c) {
    Call copy = c;
    sync_push_info(copy);
    json j = call_json(copy, conf_.node_id, false);
    j["videoKbps"] = copy.video_kbps;
    j["audioKbps"] = copy.audio_kbps;
    j["videoFrames"] = copy.video_frames;
    j["audioFrames"] = copy.audio_frames;
    j["videoPackets"] = copy.video_packets;
    j["audioPackets"] = copy.audio_packets;
    j["droppedPackets"] = copy.dropped_packets;
    j["badPackets"] = copy.bad_packets;
    j["avAlignedBySr"] = copy.av_aligned;
    j["avShiftMs"] = copy.av_shift_ms;
    json ps = json::array();
    {
      std::lock_guard<std::mutex> g(idx_mu_);
      for (auto& [id, p] : pushes_)
        if (p->call == c.id) ps.push_back({{"id", id}, {"rtmp", p->target.key()}, {"kbps", p->kbps}, {"bytes", p->bytes_out}});
    }
    j["pushRates"] = ps;
    a.push_back(j);
  });
  json bus = json::array();
  {
    std::lock_guard<std::mutex> g(idx_mu_);
    for (auto& [id, p] : pushes_)
      if (!p->call)
        bus.push_back({{"id", id}, {"streamName", p->bus_stream}, {"rtmp", p->target.key()}, {"status", to_string(p->status) ? to_string(p->status) : ""},
                       {"kbps", p->kbps}, {"bytes", p->bytes_out}});
  }
  return {{"calls", a}, {"busPushes", bus}};
}

void CapturePlugin::on_admin(const jn_admin_request& r) {
  std::string_view verb = to_sv(r.verb);
  if (verb == "captures" || verb == "list") {
    host().admin_reply(r.reply, 200, capture_list().dump());
  } else if (verb == "stats") {
    json j = {{"calls", reg_.size()},
              {"live", reg_.live()},
              {"calls_total", calls_total_},
              {"calls_failed", calls_failed_},
              {"events_queued", events_.size()},
              {"events_sent", events_sent_},
              {"events_failed", events_failed_},
              {"events_dropped", events_dropped_},
              {"rtmp_reconnects", rtmp_reconnects_},
              {"rtp_timeouts", rtp_timeouts_},
              {"keyframe_requests", keyframe_requests_},
              {"rtmp_available", rtmp_available()},
              {"sip", {{"rx_requests", stack_->counters().rx_requests}, {"rx_responses", stack_->counters().rx_responses}, {"rx_bad", stack_->counters().rx_bad}}}};
    host().admin_reply(r.reply, 200, j.dump());
  } else if (verb == "terminate") {
    json b = json::parse(to_sv(r.body), nullptr, false);
    std::string id = b.is_object() && b.contains("callId") && b["callId"].is_string() ? b["callId"].get<std::string>() : "";
    Call* c = reg_.find(id);
    if (!c || is_final(c->status)) {
      host().admin_reply(r.reply, 404, json{{"error", "no call " + id + " in progress"}}.dump());
      return;
    }
    end_call(*c, Status::Finish, c->sip_status, "terminated by admin", true);
    host().admin_reply(r.reply, 200, R"({"ok":true})");
  } else {
    host().admin_reply(r.reply, 404, R"j({"error":"unknown command (captures, stats, terminate)"})j");
  }
}

}  // namespace capture

JUNCTION_PLUGIN(capture::CapturePlugin, "rest-sip-capture", "1.0.0",
                "REST-driven SIP calls captured to RTMP (Flashphoner WCS SIP-as-RTMP API)", "", 1, 1)
