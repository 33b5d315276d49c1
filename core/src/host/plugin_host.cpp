#include "host/plugin_host.hpp"

#include "bus/zero_copy_send.hpp"
#include "host/media_loop.hpp"
#include "host/resources.hpp"
#include "host/workers.hpp"
#include "routing/call_event_abi.hpp"
#include "util/log.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cassert>
#include <chrono>
#include <filesystem>

namespace junction {

namespace {
uint64_t mono_us() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
}  // namespace

const char* resource_kind_name(Resource::Kind k) {
  switch (k) {
    case Resource::Kind::Timer: return "timer";
    case Resource::Kind::Udp: return "udp";
    case Resource::Kind::TcpListener: return "tcp-listener";
    case Resource::Kind::TcpConn: return "tcp";
    case Resource::Kind::HttpEndpoint: return "http-endpoint";
    case Resource::Kind::WsConn: return "ws";
    case Resource::Kind::HttpRequest: return "http-request";
    case Resource::Kind::BusSub: return "bus-subscription";
    case Resource::Kind::Route: return "route";
    case Resource::Kind::AdminReply: return "admin-reply";
    case Resource::Kind::StateSink: return "state-sink";
    case Resource::Kind::AnchorReply: return "anchor-reply";
    case Resource::Kind::DnsQuery: return "dns-query";
    case Resource::Kind::HttpCall: return "http-call";
    case Resource::Kind::WsUpgrade: return "ws-upgrade";
  }
  return "?";
}

nlohmann::json ReloadResult::to_json(const std::string& name) const {
  nlohmann::json j{{"plugin", name}, {"ok", ok}};
  if (!ok) j["error"] = error;
  else {
    j["generation"] = generation;
    j["cutover_us"] = cutover_us;
    j["load_us"] = load_us;
    j["held_events"] = held;
    j["state_bytes"] = state_bytes;
    j["old_unloaded"] = old_unloaded;
  }
  return j;
}

// =========================================================================================
// PluginSlot: delivery, with holding during a swap
// =========================================================================================
PluginSlot::PluginSlot(PluginHost& host, PluginConf conf)
    : host_(host), name_(conf.name), conf_(std::move(conf)), log_level_(conf_.log_level) {}

PluginSlot::~PluginSlot() {
  assert(!instance_ && "slot destroyed with a live instance");
  assert(resources_.empty() && "slot destroyed with open resources");
  assert(held_.empty());
}

void PluginSlot::log(int level, std::string_view msg) {
  if (level <= log_level()) log_write(level, name_, msg);
}

template <typename F>
void PluginSlot::dispatch(F&& call) {
  if (quiesced_) {
    held_.emplace_back(std::forward<F>(call));
    ++held_total_;
    return;
  }
  if (!instance_) return;
  call();
}

void PluginSlot::deliver_post(uint64_t cookie) {
  dispatch([this, cookie] {
    if (auto f = JN_HOOK(instance_, on_post)) f(instance_->self, cookie);
  });
}

static_assert(static_cast<uint32_t>(DnsStatus::kOk) == JN_DNS_OK && static_cast<uint32_t>(DnsStatus::kNoData) == JN_DNS_NODATA &&
              static_cast<uint32_t>(DnsStatus::kNxDomain) == JN_DNS_NXDOMAIN && static_cast<uint32_t>(DnsStatus::kTimeout) == JN_DNS_TIMEOUT &&
              static_cast<uint32_t>(DnsStatus::kServFail) == JN_DNS_SERVFAIL && static_cast<uint32_t>(DnsStatus::kBadName) == JN_DNS_BADNAME &&
              static_cast<uint32_t>(DnsStatus::kError) == JN_DNS_ERROR,
              "DnsStatus and JN_DNS_* must agree");
static_assert(static_cast<uint32_t>(DnsType::kA) == JN_DNS_A && static_cast<uint32_t>(DnsType::kAAAA) == JN_DNS_AAAA &&
              static_cast<uint32_t>(DnsType::kSRV) == JN_DNS_SRV && static_cast<uint32_t>(DnsType::kNAPTR) == JN_DNS_NAPTR,
              "DnsType and JN_DNS_* must agree");

void PluginSlot::deliver_dns(jn_handle query, uint64_t cookie, const DnsResult& r, const SipResolveResult* sip) {
  std::optional<SipResolveResult> sip_copy;
  if (sip) sip_copy = *sip;
  dispatch([this, query, cookie, r, sip_copy] {
    auto f = JN_HOOK(instance_, on_dns);
    if (!f) return;
    auto view = [](const std::string& x) { return jn_str{x.data(), x.size()}; };
    std::vector<jn_dns_srv> srv;
    for (const DnsSrv& x : r.srv) srv.push_back({x.priority, x.weight, x.port, 0, view(x.target)});
    std::vector<jn_dns_naptr> naptr;
    for (const DnsNaptr& x : r.naptr)
      naptr.push_back({x.order, x.preference, 0, view(x.flags), view(x.service), view(x.regexp), view(x.replacement)});
    std::vector<jn_sip_target> targets;
    auto sip_transport = [](SipTransport t) -> uint32_t {
      switch (t) {
        case SipTransport::kUdp: return JN_SIP_UDP;
        case SipTransport::kTcp: return JN_SIP_TCP;
        case SipTransport::kTls: return JN_SIP_TLS;
        default: return JN_SIP_ANY;
      }
    };
    if (sip_copy)
      for (const SipTarget& t : sip_copy->targets) targets.push_back({sip_transport(t.transport), 0, t.addr, view(t.target)});
    jn_dns_result out{};
    out.struct_size = sizeof out;
    DnsStatus status = sip_copy ? sip_copy->status : r.status;
    out.status = static_cast<uint32_t>(status);  // DnsStatus follows the JN_DNS_* order
    out.query = query;
    out.cookie = cookie;
    out.name = view(r.name);
    out.error = view(sip_copy ? sip_copy->error : r.error);
    out.ttl = r.ttl;
    out.addresses = r.addresses.data();
    out.address_count = static_cast<uint32_t>(r.addresses.size());
    out.srv = srv.data();
    out.srv_count = static_cast<uint32_t>(srv.size());
    out.naptr = naptr.data();
    out.naptr_count = static_cast<uint32_t>(naptr.size());
    out.targets = targets.data();
    out.target_count = static_cast<uint32_t>(targets.size());
    f(instance_->self, &out);
  });
}

void PluginSlot::deliver_http_response(jn_handle request, uint64_t cookie, const HttpClientResponse& r) {
  dispatch([this, request, cookie, r] {
    auto f = JN_HOOK(instance_, on_http_response);
    if (!f) return;
    auto view = [](const std::string& x) { return jn_str{x.data(), x.size()}; };
    std::vector<jn_header> headers;
    for (const auto& [n, v] : r.headers) headers.push_back({view(n), view(v)});
    jn_http_client_response out{};
    out.struct_size = sizeof out;
    out.status = r.error.empty() ? r.status : 0;
    out.request = request;
    out.cookie = cookie;
    out.error = view(r.error);
    out.headers = headers.data();
    out.header_count = static_cast<uint32_t>(headers.size());
    out.redirects = static_cast<uint32_t>(r.redirects);
    out.body = view(r.body);
    out.url = view(r.url);
    f(instance_->self, &out);
  });
}

static void call_on_http_chunk(PluginInstance* inst, jn_handle request, uint64_t cookie, const HttpClientChunk& c) {
  auto f = inst ? JN_HOOK(inst, on_http_chunk) : nullptr;
  if (!f) return;
  jn_header headers[100];  // HttpClientOptions::max_headers: a response head holds no more
  uint32_t n = 0;
  if (c.headers)
    for (const auto& [name, value] : *c.headers) {
      if (n == std::size(headers)) break;
      headers[n++] = {{name.data(), name.size()}, {value.data(), value.size()}};
    }
  jn_http_client_chunk out{};
  out.struct_size = sizeof out;
  out.status = c.status;
  out.request = request;
  out.cookie = cookie;
  out.headers = c.head ? headers : nullptr;
  out.header_count = n;
  out.head = c.head ? 1 : 0;
  out.data = {c.data.data(), c.data.size()};
  out.url = {c.url->data(), c.url->size()};
  f(inst->self, &out);
}

void PluginSlot::deliver_http_chunk(jn_handle request, uint64_t cookie, const HttpClientChunk& c,
                                    const std::shared_ptr<const bool>& ended) {
  if (!quiesced_) {
    call_on_http_chunk(instance_.get(), request, cookie, c);  // no copy on the usual path
    return;
  }
  struct Held {
    bool head;
    int status;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string data, url;
  };
  auto h = std::make_shared<Held>(Held{c.head, c.status, c.headers ? *c.headers : decltype(Held::headers){},
                                       std::string(c.data), *c.url});
  dispatch([this, request, cookie, h, ended] {
    // Cancelled after this was held (by the new instance's on_restore_state): nothing follows it.
    // A handle gone because the response ended meanwhile (its end is held behind this) is fine.
    if (!*ended && !host_.resource(request, Resource::Kind::HttpCall, this)) return;
    HttpClientChunk copy;
    copy.head = h->head;
    copy.status = h->status;
    copy.headers = h->head ? &h->headers : nullptr;
    copy.data = h->data;
    copy.url = &h->url;
    call_on_http_chunk(instance_.get(), request, cookie, copy);
  });
}

void PluginSlot::deliver_timer(jn_handle timer, uint64_t cookie) {
  dispatch([this, timer, cookie] {
    if (auto f = JN_HOOK(instance_, on_timer)) f(instance_->self, timer, cookie);
  });
}

void call_on_udp(PluginInstance* inst, jn_handle sock, uint64_t cookie, jn_buf* const* bufs, size_t n) {
  if (!inst) return;
  auto f = JN_HOOK(inst, on_udp);
  if (!f) return;
  // jn_datagram is a thin wrapper of the buffer pointer; build the array on the stack.
  jn_datagram dg[64];
  for (size_t done = 0; done < n;) {
    size_t k = std::min<size_t>(n - done, 64);
    for (size_t i = 0; i < k; ++i) dg[i].buf = bufs[done + i];
    f(inst->self, sock, cookie, dg, k);
    done += k;
  }
}

void PluginSlot::deliver_udp(jn_handle sock, uint64_t cookie, jn_buf* const* bufs, size_t n) {
  if (!quiesced_) {
    call_on_udp(instance_.get(), sock, cookie, bufs, n);
    return;
  }
  // Held: keep references (no copy) and replay the same buffers, in order, to the new instance.
  BufferPool& pool = host_.services().pool;
  std::vector<jn_buf*> kept(bufs, bufs + n);
  for (auto* b : kept) pool.ref(b);
  held_total_ += n - 1;  // dispatch counts one
  dispatch([this, sock, cookie, kept = std::move(kept)] {
    BufferPool& pool = host_.services().pool;
    if (instance_) {
      if (auto f = JN_HOOK(instance_, on_udp)) {
        std::vector<jn_datagram> dg(kept.size());
        for (size_t i = 0; i < kept.size(); ++i) dg[i].buf = kept[i];
        f(instance_->self, sock, cookie, dg.data(), dg.size());
      }
    }
    for (auto* b : kept) pool.unref(b);
  });
}

void PluginSlot::deliver_tcp(const jn_tcp_event& ev) {
  if (!quiesced_) {
    if (instance_)
      if (auto f = JN_HOOK(instance_, on_tcp)) f(instance_->self, &ev);
    return;
  }
  std::string data(reinterpret_cast<const char*>(ev.data ? ev.data : reinterpret_cast<const uint8_t*>("")), ev.data ? ev.len : 0);
  jn_tcp_event copy = ev;
  dispatch([this, copy, data = std::move(data)]() mutable {
    if (copy.data) copy.data = reinterpret_cast<const uint8_t*>(data.data());
    if (auto f = JN_HOOK(instance_, on_tcp)) f(instance_->self, &copy);
  });
}

void PluginSlot::deliver_http(jn_handle request, jn_handle endpoint, uint64_t cookie, const HttpRequest& req) {
  dispatch([this, request, endpoint, cookie, req] {
    auto f = JN_HOOK(instance_, on_http);
    if (!f) {
      host_.services().http.respond(req.id, 501, "application/json", R"({"error":"plugin does not serve HTTP"})");
      return;
    }
    jn_http_request r{};
    r.struct_size = sizeof r;
    r.request = request;
    r.endpoint = endpoint;
    r.cookie = cookie;
    r.method = {req.method.data(), req.method.size()};
    r.path = {req.path.data(), req.path.size()};
    r.query = {req.query.data(), req.query.size()};
    r.body = {req.body.data(), req.body.size()};
    r.content_type = {req.content_type.data(), req.content_type.size()};
    r.authorization = {req.authorization.data(), req.authorization.size()};
    parse_addr(req.peer, r.peer);
    std::vector<jn_header> headers;
    headers.reserve(req.headers.size());
    for (const auto& [name, value] : req.headers)
      headers.push_back({{name.data(), name.size()}, {value.data(), value.size()}});
    r.headers = headers.data();
    r.header_count = static_cast<uint32_t>(headers.size());
    f(instance_->self, &r);
  });
}

namespace {
// Fills the UPGRADE/OPEN fields of ev from u; the vectors hold what ev points to.
void fill_upgrade(jn_ws_event& ev, const WsUpgrade& u, std::vector<jn_header>& headers, std::vector<jn_str>& protos) {
  auto view = [](const std::string& x) { return jn_str{x.data(), x.size()}; };
  for (const auto& [n, v] : u.headers) headers.push_back({view(n), view(v)});
  for (const std::string& p : u.offered) protos.push_back(view(p));
  ev.path = view(u.path);
  ev.query = view(u.query);
  ev.headers = headers.data();
  ev.header_count = static_cast<uint32_t>(headers.size());
  ev.subprotocols = protos.data();
  ev.subprotocol_count = static_cast<uint32_t>(protos.size());
  ev.subprotocol = view(u.subprotocol);
}
}  // namespace

void PluginSlot::deliver_ws(jn_handle conn, jn_handle endpoint, uint64_t cookie, int type, std::string_view data, const std::string& peer,
                            const WsUpgrade* upgrade) {
  std::optional<WsUpgrade> up;
  if (upgrade) up = *upgrade;
  dispatch([this, conn, endpoint, cookie, type, data = std::string(data), peer, up] {
    auto f = JN_HOOK(instance_, on_ws);
    if (!f) return;
    jn_ws_event ev{};
    ev.struct_size = sizeof ev;
    ev.type = static_cast<uint32_t>(type);
    ev.conn = conn;
    ev.endpoint = endpoint;
    ev.cookie = cookie;
    ev.data = reinterpret_cast<const uint8_t*>(data.data());
    ev.len = data.size();
    parse_addr(peer, ev.peer);
    std::vector<jn_header> headers;
    std::vector<jn_str> protos;
    if (up) fill_upgrade(ev, *up, headers, protos);
    f(instance_->self, &ev);
  });
}

bool PluginSlot::call_ws_upgrade(jn_handle upgrade, jn_handle endpoint, uint64_t cookie, const WsUpgrade& u) {
  if (quiesced_ || !instance_) return false;
  auto f = JN_HOOK(instance_, on_ws);
  if (!f) return true;
  jn_ws_event ev{};
  ev.struct_size = sizeof ev;
  ev.type = JN_WS_UPGRADE;
  ev.conn = upgrade;
  ev.endpoint = endpoint;
  ev.cookie = cookie;
  parse_addr(u.peer, ev.peer);
  std::vector<jn_header> headers;
  std::vector<jn_str> protos;
  fill_upgrade(ev, u, headers, protos);
  f(instance_->self, &ev);
  return true;
}

void PluginSlot::deliver_call(jn_handle leg, uint64_t cookie, const CallEvent& ev) {
  dispatch([this, leg, cookie, ev] {
    auto f = JN_HOOK(instance_, on_call);
    if (!f) return;
    AbiCallEvent abi(ev);
    f(instance_->self, leg, cookie, abi.get());
  });
}

void PluginSlot::deliver_event(const std::string& topic, const std::string& json) {
  dispatch([this, topic, json] {
    if (auto f = JN_HOOK(instance_, on_event)) f(instance_->self, {topic.data(), topic.size()}, {json.data(), json.size()});
  });
}

void PluginSlot::deliver_admin(jn_handle reply, const std::string& verb, const std::string& body) {
  dispatch([this, reply, verb, body] {
    auto f = JN_HOOK(instance_, on_admin);
    if (!f) {
      if (auto* r = static_cast<ValueResource*>(host_.resource(reply, Resource::Kind::AdminReply, this))) {
        auto cb = std::move(r->reply);
        resources_.erase(reply);
        host_.close_resource(reply);
        cb(404, R"({"error":"this plugin has no admin commands"})");
      }
      return;
    }
    jn_admin_request req{};
    req.struct_size = sizeof req;
    req.reply = reply;
    req.verb = {verb.data(), verb.size()};
    req.body = {body.data(), body.size()};
    f(instance_->self, &req);
  });
}

void PluginSlot::on_bus_packet(uint64_t /*subscription*/, uint64_t bus_cookie, jn_buf* buf) {
  // BusSub resources subscribe with their own handle as the bus cookie (see host_api.cpp), so
  // the plugin sees its handle and its own cookie.
  jn_handle handle = bus_cookie;
  Resource* r = host_.resource(handle, Resource::Kind::BusSub, this);
  if (!r) return;
  uint64_t cookie = r->cookie;
  if (!quiesced_) {
    if (instance_)
      if (auto f = JN_HOOK(instance_, on_bus)) f(instance_->self, handle, cookie, buf);
    return;
  }
  host_.services().pool.ref(buf);
  dispatch([this, handle, cookie, buf] {
    if (instance_)
      if (auto f = JN_HOOK(instance_, on_bus)) f(instance_->self, handle, cookie, buf);
    host_.services().pool.unref(buf);
  });
}

// =========================================================================================
// PluginHost
// =========================================================================================
PluginHost::PluginHost(Services& services, const CoreConfig& conf)
    : services_(services), core_conf_(conf), read_scratch_(new char[kReadScratch]) {
  std::filesystem::create_directories(std::filesystem::path(services_.state_dir) / "staged");
  services_.metrics.computed("junction_plugins_loaded", "", [this] { return static_cast<double>(slots_.size()); }, "Plugins loaded");
  services_.metrics.computed("junction_resources_open", "", [this] { return static_cast<double>(resources_.size()); }, "Core-owned resources held by plugins");
  services_.metrics.computed("junction_plugin_unload_failures", "", [this] { return static_cast<double>(unload_failures_); },
                             "Old plugin copies still mapped after a reload or unload");
}

PluginHost::~PluginHost() {
  assert(slots_.empty() && "PluginHost destroyed with plugins loaded: call stop_all first");
  assert(resources_.size() == 0 && "PluginHost destroyed with open resources");
}

PluginSlot* PluginHost::find(std::string_view name) {
  auto it = slots_.find(name);
  return it == slots_.end() ? nullptr : it->second.get();
}

jn_handle PluginHost::add_resource(std::unique_ptr<Resource> r) {
  Resource* raw = r.get();
  jn_handle h = resources_.insert(std::move(r));
  raw->handle = h;
  return h;
}

Resource* PluginHost::resource(jn_handle h, Resource::Kind kind, PluginSlot* owner) {
  Resource* r = resources_.get(h);
  if (!r || r->kind != kind || r->owner != owner) return nullptr;
  return r;
}

void PluginHost::close_resource(jn_handle h) {
  std::unique_ptr<Resource> r = resources_.take(h);
  if (!r) return;
  if (r->owner) r->owner->resources().erase(h);
  Resource* raw = r.release();
  switch (raw->kind) {
    case Resource::Kind::Timer:
    case Resource::Kind::Udp:
    case Resource::Kind::TcpListener:
    case Resource::Kind::TcpConn:
      close_io_resource(*this, raw);
      return;
    default: break;
  }
  auto* v = static_cast<ValueResource*>(raw);
  switch (raw->kind) {
    case Resource::Kind::HttpEndpoint: services_.http.close_endpoint(v->id); break;
    case Resource::Kind::WsConn:
      services_.http.ws_close(v->id);
      ws_conns_.erase(v->id);
      break;
    case Resource::Kind::HttpRequest: services_.http.respond(v->id, 503, "application/json", R"({"error":"plugin unloaded"})"); break;
    case Resource::Kind::BusSub: services_.bus.unsubscribe(v->id); break;
    case Resource::Kind::Route:
      if (v->owner) v->owner->routes_by_inner().erase(v->inner);
      services_.routes.remove_dynamic(v->inner);
      break;
    case Resource::Kind::AdminReply:
      if (v->reply) v->reply(503, R"({"error":"plugin unloaded before replying"})");
      break;
    case Resource::Kind::DnsQuery:  // cancelled or unloaded: no on_dns after this
      if (services_.dns) services_.dns->cancel(v->id);
      break;
    case Resource::Kind::HttpCall:
      if (services_.http_client) services_.http_client->cancel(v->id);
      break;
    default: break;
  }
  delete v;
}

void PluginHost::forget_resource(jn_handle h) { resources_.erase(h); }

void PluginHost::admin_command(PluginSlot& slot, const std::string& verb, const std::string& body,
                               std::function<void(int, std::string)> reply) {
  auto rr = std::make_unique<ValueResource>(Resource::Kind::AdminReply, &slot, 0);
  rr->reply = std::move(reply);
  jn_handle h = add_resource(std::move(rr));
  slot.resources().insert(h);
  slot.deliver_admin(h, verb, body);
}

std::optional<std::vector<MediaStream>> PluginHost::anchor_media(const std::string& plugin, uint32_t op,
                                                                 const std::string& call_id,
                                                                 const std::vector<MediaStream>* media, uint32_t sender) {
  PluginSlot* slot = find(plugin);
  if (!slot || slot->stopping_ || slot->quiesced_ || !slot->instance_) {
    JN_LOG_WRN("media anchor '{}' is not available: call {} media passes through unanchored", plugin, call_id);
    return std::nullopt;
  }
  auto hook = JN_HOOK(slot->instance_, on_anchor);
  if (!hook) {
    JN_LOG_WRN("plugin '{}' cannot anchor media (built for an ABI without on_anchor)", plugin);
    return std::nullopt;
  }
  CallEvent carrier;  // AbiCallEvent builds the jn_media_desc with storage it owns
  if (media) carrier.media = *media;
  AbiCallEvent abi(std::move(carrier));
  std::optional<std::vector<MediaStream>> result;
  auto r = std::make_unique<ValueResource>(Resource::Kind::AnchorReply, slot, 0);
  r->anchored = &result;
  ValueResource* raw = r.get();
  jn_handle h = add_resource(std::move(r));
  jn_anchor_request req{};
  req.struct_size = sizeof req;
  req.op = op;
  req.reply = h;
  req.call_id = {call_id.data(), call_id.size()};
  req.media = media ? abi.get()->media : nullptr;
  req.sender = sender;
  hook(slot->instance_->self, &req);
  bool answered = raw->answered;
  resources_.erase(h);  // the reply handle lives only during the hook
  if (!answered) JN_LOG_WRN("plugin '{}' did not answer the anchor request for call {}", plugin, call_id);
  return result;
}

void PluginHost::publish_event(const std::string& topic, const std::string& json) {
  for (auto& name : order_) {
    PluginSlot* s = find(name);
    if (!s) continue;
    for (auto& prefix : s->event_topics())
      if (topic.compare(0, prefix.size(), prefix) == 0) {
        s->deliver_event(topic, json);
        break;
      }
  }
}

// Loads a unique staged copy of the plugin's .so, checks its info symbol and ABI version.
std::unique_ptr<PluginInstance> PluginHost::open_instance(const PluginConf& conf, uint64_t generation, std::string* error) {
  namespace fs = std::filesystem;
  auto inst = std::make_unique<PluginInstance>();
  inst->generation = generation;
  // A fresh file per load: dlopen of a path already mapped would return the old copy.
  fs::path staged = fs::path(services_.state_dir) / "staged" /
                    fmt::format("{}.{}.{}.{}.so", conf.name, getpid(), generation, ++stage_counter_);
  std::error_code ec;
  fs::copy_file(conf.library, staged, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    *error = fmt::format("cannot stage {}: {}", conf.library, ec.message());
    return nullptr;
  }
  inst->staged_path = staged.string();
  auto cleanup = [&] { fs::remove(staged, ec); };
  try {
    inst->library.load(boost::dll::fs::path(inst->staged_path),
                       boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    *error = fmt::format("{}: cannot load: {}", conf.library, e.what());
    cleanup();
    return nullptr;
  }
  if (!inst->library.has(JN_PLUGIN_INFO_SYMBOL)) {
    *error = fmt::format("{}: not a Junction plugin (no {} symbol)", conf.library, JN_PLUGIN_INFO_SYMBOL);
    inst->library.unload();
    cleanup();
    return nullptr;
  }
  const auto& info = inst->library.get<const jn_plugin_info>(JN_PLUGIN_INFO_SYMBOL);
  inst->info = &info;
  std::string why;
  // The version first, from the fields every major since 1.0 has at the same place, so a plugin
  // of another major is named as such even if the rest of its info differs.
  if (!JN_HAS_FIELD(&info, jn_plugin_info, abi_minor))
    why = fmt::format("info struct too small ({} bytes)", info.struct_size);
  else if (info.abi_major != JN_ABI_MAJOR)
    why = fmt::format("built for ABI {}.{}, this core speaks ABI {}.{} (major versions must match)", info.abi_major,
                      info.abi_minor, JN_ABI_MAJOR, JN_ABI_MINOR);
  else if (!JN_HAS_FIELD(&info, jn_plugin_info, state_schema_min))
    why = fmt::format("info struct too small ({} bytes)", info.struct_size);
  else if (!info.name || conf.name != info.name)
    why = fmt::format("the library says its name is '{}', the conf says '{}'", info.name ? info.name : "", conf.name);
  else if (!inst->library.has(JN_PLUGIN_FACTORY_SYMBOL))
    why = fmt::format("no {} symbol", JN_PLUGIN_FACTORY_SYMBOL);
  if (!why.empty()) {
    *error = fmt::format("{}: refused: {}", conf.library, why);
    inst->info = nullptr;
    inst->library.unload();
    cleanup();
    return nullptr;
  }
  inst->build_id = info.build_id ? info.build_id : "";
  return inst;
}

// `<server.state_dir>/plugins/<name>` (absolute), created; empty (and logged) when it cannot be.
std::string PluginHost::plugin_state_dir(const std::string& name) const {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::absolute(fs::path(services_.state_dir) / "plugins" / name, ec);
  if (!ec) fs::create_directories(dir, ec);
  if (ec) {
    JN_LOG_WRN("plugin '{}': state directory {} not created: {}", name, dir.string(), ec.message());
    return {};
  }
  return dir.lexically_normal().string();
}

// Runs the factory. On failure the instance is left without `self` and the reason returned.
std::string PluginHost::create_instance(PluginSlot& slot, PluginInstance& inst, bool restoring) {
  auto factory = inst.library.get<jn_status(const jn_host_api*, jn_host_ctx*, const jn_create_args*, jn_plugin**, const jn_plugin_vtable**)>(
      JN_PLUGIN_FACTORY_SYMBOL);
  jn_create_args args{};
  args.struct_size = sizeof args;
  args.restoring = restoring ? 1 : 0;
  args.generation = inst.generation;
  args.conf_path = {slot.conf().conf_path.data(), slot.conf().conf_path.size()};
  // 2.2: the slot's own directory, the same path for every instance (reloads, restarts).
  std::string state_dir = plugin_state_dir(slot.name());
  args.state_dir = {state_dir.data(), state_dir.size()};
  jn_plugin* self = nullptr;
  const jn_plugin_vtable* vt = nullptr;
  slot.take_error();
  // The instance being created is not yet current; hooks cannot reach it.
  jn_status st = factory(api(), slot.ctx(), &args, &self, &vt);
  std::string err = slot.take_error();
  if (st != JN_OK || !self || !vt) {
    if (self && vt && vt->on_destroy) vt->on_destroy(self);
    return fmt::format("init failed (status {}){}{}", st, err.empty() ? "" : ": ", err);
  }
  if (!JN_HAS_FIELD(vt, jn_plugin_vtable, on_destroy) || !vt->on_destroy) {
    return "vtable too small or without on_destroy";
  }
  inst.self = self;
  inst.vtable = vt;
  return {};
}

bool PluginHost::release_instance(std::unique_ptr<PluginInstance> inst) {
  if (!inst) return true;
  if (inst->self && inst->vtable) inst->vtable->on_destroy(inst->self);
  inst->self = nullptr;
  inst->info = nullptr;
  std::string staged = inst->staged_path;
  inst->library.unload();
  inst.reset();
  // Verify the copy really left the address space: RTLD_NOLOAD finds it only if still mapped.
  bool unloaded = true;
  if (void* h = dlopen(staged.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
    dlclose(h);
    unloaded = false;
    ++unload_failures_;
    JN_LOG_WRN("{} is still mapped after dlclose (a static with a destructor or a unique symbol pins it)", staged);
  }
  std::error_code ec;
  std::filesystem::remove(staged, ec);
  return unloaded;
}

std::string PluginHost::load(const PluginConf& conf) {
  if (!valid_plugin_name(conf.name)) return fmt::format("'{}' is not a valid plugin name", conf.name);
  if (find(conf.name)) return fmt::format("plugin '{}' is already loaded", conf.name);
  std::string error;
  auto inst = open_instance(conf, 0, &error);
  if (!inst) {
    JN_LOG_ERR("plugin {}: {}", conf.name, error);
    return error;
  }
  auto slot_ptr = std::make_unique<PluginSlot>(*this, conf);
  PluginSlot& slot = *slot_ptr;
  slots_.emplace(conf.name, std::move(slot_ptr));
  order_.push_back(conf.name);
  error = create_instance(slot, *inst, false);
  if (error.empty()) {
    slot.instance_ = std::move(inst);
    if (auto ns = slot.instance_->info->namespaces)
      for (std::string_view rest = ns; !rest.empty();) {
        auto comma = rest.find(',');
        std::string scheme(rest.substr(0, comma));
        if (!scheme.empty()) services_.routes.set_namespace_owner(scheme, conf.name);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
    if (auto start = JN_HOOK(slot.instance_, on_start)) {
      slot.take_error();
      jn_status st = start(slot.instance_->self);
      if (st != JN_OK) {
        std::string why = slot.take_error();
        error = fmt::format("start failed (status {}){}{}", st, why.empty() ? "" : ": ", why);
      }
    }
  } else {
    slot.instance_ = std::move(inst);  // released below
  }
  if (!error.empty()) {
    JN_LOG_ERR("plugin {}: {}", conf.name, error);
    std::string name = conf.name;
    auto discard = [this, name] {
      PluginSlot* s = find(name);
      if (!s) return;
      close_slot_resources(*s);
      release_instance(std::move(s->instance_));
      if (services_.workers) services_.workers->forget(s);
      services_.routes.remove_plugin(name);
      slots_.erase(name);
      std::erase(order_, name);
      if (auto next = std::exchange(stop_all_waiting_, nullptr)) next();
    };
    // Jobs submitted before the failure keep the code mapped and the slot (stopping) until they
    // are drained; the name stays taken meanwhile.
    slot.stopping_ = true;
    if (services_.workers && !services_.workers->drain(&slot, [discard, name] {
          discard();
          JN_LOG_INF("plugin {}: the worker jobs of its failed start are drained; slot released", name);
        }))
      return error;
    discard();
    return error;
  }
  JN_LOG_INF("plugin {} {} loaded (build {}, ABI {}.{})", conf.name, slot.instance_->info->version ? slot.instance_->info->version : "?",
             slot.instance_->build_id, slot.instance_->info->abi_major, slot.instance_->info->abi_minor);
  return {};
}

ReloadResult PluginHost::reload(const std::string& name, const PluginConf* new_conf) {
  ReloadResult res;
  PluginSlot* slot = find(name);
  if (!slot) {
    res.http_status = 404;
    res.error = fmt::format("no plugin named '{}' is loaded", name);
    return res;
  }
  if (slot->stopping_) {
    res.http_status = 409;
    res.error = "the plugin is being unloaded";
    return res;
  }
  // Drain rule: no worker job of the slot may be in flight across the swap (run() is the old
  // .so's code, on_work_done goes to the old instance). Submissions stay refused until the swap is
  // over, so a media loop cannot start one meanwhile.
  WorkerPool* workers = services_.workers;
  if (workers && !workers->block_if_idle(slot)) {
    res.http_status = 409;
    res.error = fmt::format("{} worker job(s) in flight (a reload through the admin API waits for them)", workers->in_flight(slot));
    return res;
  }
  res = reload_now(slot, name, new_conf);
  if (workers) workers->unblock(slot);
  return res;
}

void PluginHost::reload_async(const std::string& name, const PluginConf* new_conf, std::function<void(ReloadResult)> done) {
  PluginSlot* slot = find(name);
  WorkerPool* workers = services_.workers;
  std::optional<PluginConf> conf;
  if (new_conf) conf = *new_conf;
  // The "drain work" step: cancel the queued jobs, wait (on the loop, not blocking it) for the
  // running ones; the reload continues from the last on_work_done.
  auto cont = [this, name, conf, done]() { done(reload(name, conf ? &*conf : nullptr)); };
  if (!slot || slot->stopping_ || !workers || workers->drain(slot, cont)) cont();
}

ReloadResult PluginHost::reload_now(PluginSlot* slot, const std::string& name, const PluginConf* new_conf) {
  ReloadResult res;
  PluginConf old_conf = slot->conf();
  if (new_conf) slot->set_conf(*new_conf);
  auto fail = [&](int status, std::string why) {
    slot->set_conf(old_conf);
    res.ok = false;
    res.http_status = status;
    res.error = std::move(why);
    services_.metrics.add("junction_plugin_reload_failures_total", fmt::format("plugin=\"{}\"", name), 1);
    JN_LOG_ERR("reload of {} rolled back, the old instance keeps serving: {}", name, res.error);
    return res;
  };
  uint64_t t_load = mono_us();
  std::string error;
  // Loading happens while the old instance keeps serving: nothing is held yet.
  auto next = open_instance(slot->conf(), slot->generation_ + 1, &error);
  res.load_us = mono_us() - t_load;
  if (!next) return fail(422, error);
  PluginInstance& old = *slot->instance_;
  uint32_t old_schema = old.info->state_schema;
  if (old_schema < next->info->state_schema_min || old_schema > next->info->state_schema) {
    std::string why = fmt::format("state schema {} of the running copy is outside what the new copy reads ({}..{})", old_schema,
                                  next->info->state_schema_min, next->info->state_schema);
    release_instance(std::move(next));
    return fail(422, why);
  }

  // ---- cut-over: from here until replay, the slot's input is held in order ----
  uint64_t t0 = mono_us();
  slot->quiesced_ = true;
  if (services_.media) services_.media->pause(slot);  // media loops hold this slot's input too
  uint64_t held_before = slot->held_total_;
  std::string state;
  if (auto save = JN_HOOK(slot->instance_, on_save_state)) {
    auto sink = std::make_unique<ValueResource>(Resource::Kind::StateSink, slot, 0);
    sink->sink = &state;
    jn_handle sh = add_resource(std::move(sink));
    slot->take_error();
    jn_status st = save(old.self, sh);
    resources_.erase(sh);
    if (st != JN_OK) {
      std::string why = slot->take_error();
      release_instance(std::move(next));
      slot->quiesced_ = false;
    if (services_.media) services_.media->resume(slot);
      auto held = std::move(slot->held_);
      for (auto& f : held) f();  // back to the old instance, in order
      return fail(500, fmt::format("save_state failed (status {}){}{}", st, why.empty() ? "" : ": ", why));
    }
  }
  error = create_instance(*slot, *next, true);
  if (error.empty()) {
    if (auto restore = JN_HOOK(next, on_restore_state)) {
      slot->take_error();
      jn_status st = restore(next->self, old_schema, reinterpret_cast<const uint8_t*>(state.data()), state.size());
      if (st != JN_OK) {
        std::string why = slot->take_error();
        error = fmt::format("restore_state refused (status {}){}{}", st, why.empty() ? "" : ": ", why);
      }
    } else if (!state.empty()) {
      error = "the new copy has no on_restore_state but the old one saved state";
    }
  }
  if (!error.empty()) {
    release_instance(std::move(next));
    slot->quiesced_ = false;
    if (services_.media) services_.media->resume(slot);
    auto held = std::move(slot->held_);
    for (auto& f : held) f();
    return fail(422, error);
  }
  std::unique_ptr<PluginInstance> retired = std::move(slot->instance_);
  slot->instance_ = std::move(next);
  slot->quiesced_ = false;
    if (services_.media) services_.media->resume(slot);
  // Replay held input to the new instance. Anything a replayed hook triggers is delivered
  // directly (the slot is no longer quiesced), after everything already held.
  while (!slot->held_.empty()) {
    auto f = std::move(slot->held_.front());
    slot->held_.pop_front();
    f();
  }
  res.cutover_us = mono_us() - t0;
  res.held = slot->held_total_ - held_before;
  res.state_bytes = state.size();
  slot->generation_++;
  slot->reloads_++;
  res.generation = slot->generation_;
  res.old_unloaded = release_instance(std::move(retired));
  res.ok = true;
  std::string labels = fmt::format("plugin=\"{}\"", name);
  services_.metrics.add("junction_plugin_reloads_total", labels, 1);
  services_.metrics.set("junction_plugin_reload_cutover_us", labels, static_cast<double>(res.cutover_us));
  JN_LOG_INF("plugin {} reloaded: generation {}, cut-over {} us, {} events held, {} state bytes, old copy {}", name,
             res.generation, res.cutover_us, res.held, res.state_bytes, res.old_unloaded ? "unloaded" : "STILL MAPPED");
  return res;
}

namespace {
// Process-wide set-up the core does once, at the first pin of a library, before the plugin's own
// global init. libsrtp2 on NSS (Debian's build) initialises NSS optimised for space in every
// cipher it allocates: the softoken's session-object hash then has 32 buckets, each SRTP packet
// looks its key up there, and the cost per packet grows with the number of SRTP sessions in the
// process (bench/webrtc_transport, GCM protect + unprotect with 1000 pairs: 116 us instead of
// 12 us). An NSS context opened first, optimised for time (1024 buckets), is the one libsrtp2's
// own NSS_InitContext calls then share, and NSS is no longer shut down and set up again each
// time the last SRTP session goes. NSS_InitContext is looked up in libsrtp2's own dependencies
// (nothing more is loaded or linked); a libsrtp2 built on OpenSSL has none and skips this. The
// context is never shut down (the pin rule). Returns what was done, for the log line.
const char* process_wide_setup(const std::string& soname, void* handle) {
  if (soname.rfind("libsrtp2.so", 0) != 0) return "";
  using InitContext = void* (*)(const char*, const char*, const char*, const char*, void*, uint32_t);
  auto init = reinterpret_cast<InitContext>(dlsym(handle, "NSS_InitContext"));
  if (!init) return "";
  constexpr uint32_t kReadOnly = 0x1, kNoCertDb = 0x2, kNoModDb = 0x4, kForceOpen = 0x8, kNoRootInit = 0x10;
  if (!init("", "", "", "", nullptr, kReadOnly | kNoCertDb | kNoModDb | kForceOpen | kNoRootInit))
    return "; its NSS could not be initialised for speed (SRTP cost per packet will grow with the session count)";
  return "; its NSS initialised for speed (SRTP key lookups stay flat with the session count)";
}
}  // namespace

jn_status PluginHost::pin_library(const std::string& soname, bool* first, std::string* error) {
  // RTLD_NODELETE on an already loaded library (the plugin's own DT_NEEDED) marks it resident
  // too; the handle itself is not needed afterwards.
  void* h = dlopen(soname.c_str(), RTLD_NOW | RTLD_NODELETE);
  if (!h) {
    const char* e = dlerror();
    *error = e ? e : "dlopen failed";
    return JN_ERR_NOT_FOUND;
  }
  *first = pinned_libraries_.insert(soname).second;
  if (*first) JN_LOG_INF("library {} pinned: resident for the life of the process{}", soname, process_wide_setup(soname, h));
  dlclose(h);
  return JN_OK;
}

void PluginHost::close_slot_resources(PluginSlot& slot) {
  std::vector<jn_handle> hs(slot.resources().begin(), slot.resources().end());
  for (jn_handle h : hs) {
    if (Resource* r = resources_.get(h)) {
      if (r->kind == Resource::Kind::TcpConn || r->kind == Resource::Kind::TcpListener) r->owner = nullptr;
    }
    close_resource(h);
  }
  slot.resources().clear();
  if (services_.media) {
    services_.media->forget(&slot);  // input held by a media loop for this slot
    services_.media->drain_handoffs();
  }
  for (auto& [id, count] : slot.interned())
    for (uint32_t i = 0; i < count; ++i) services_.bus.release(id);
  slot.interned().clear();
  services_.bus.unsubscribe_all(&slot);
  services_.routes.remove_plugin(slot.name());
  services_.calls.end_plugin_legs(slot.name(), 503, "plugin unloaded");
  slot.event_topics().clear();
}

void PluginHost::unload(const std::string& name, std::function<void(std::string)> done) {
  PluginSlot* slot = find(name);
  if (!slot) {
    done(fmt::format("no plugin named '{}' is loaded", name));
    return;
  }
  if (slot->stopping_) {
    done("the plugin is already being unloaded");
    return;
  }
  slot->stopping_ = true;
  slot->stop_done_called_ = false;
  jn_status st = JN_OK;
  if (auto stop = JN_HOOK(slot->instance_, on_stop)) st = stop(slot->instance_->self);
  if (st != JN_PENDING) {
    finish_unload(name, std::move(done));
    return;
  }
  // Asynchronous stop: wait for stop_done() or the conf's timeout, whichever comes first. Both
  // end in this timer's callback, outside any plugin hook (stop_done() re-arms it to 0 ms).
  slot->stop_continuation_ = [this, name, done = std::move(done)]() mutable { finish_unload(name, std::move(done)); };
  slot->stop_timer_ = new uv_timer_t;
  uv_timer_init(services_.loop, slot->stop_timer_);
  slot->stop_timer_->data = slot;
  uv_timer_start(slot->stop_timer_, PluginSlot::on_stop_timer,
                 slot->stop_done_called_ ? 0 : core_conf_.stop_timeout_ms, 0);  // stop_done() inside on_stop: next turn
}

void PluginSlot::on_stop_timer(uv_timer_t* t) {
  auto* s = static_cast<PluginSlot*>(t->data);
  if (!s->stop_done_called_) s->log(JN_LOG_WARN, "did not finish stopping in time; closing its resources anyway");
  auto cont = std::move(s->stop_continuation_);
  if (cont) cont();  // destroys the slot (and closes this timer)
}

void PluginSlot::stop_done() {
  if (!stopping_ || stop_done_called_) return;  // not stopping, or said twice: nothing to do
  stop_done_called_ = true;
  // Inside on_stop the timer does not exist yet: unload() arms it to 0 ms when on_stop returns.
  if (stop_timer_) uv_timer_start(stop_timer_, on_stop_timer, 0, 0);
}

void PluginHost::finish_unload(const std::string& name, std::function<void(std::string)> done) {
  PluginSlot* slot = find(name);
  if (!slot) {
    done({});
    return;
  }
  if (slot->stop_timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(slot->stop_timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    slot->stop_timer_ = nullptr;
  }
  slot->stop_continuation_ = nullptr;
  // Drain work: the plugin's queued worker jobs are cancelled and its running ones waited for
  // (without blocking the loop), each on_work_done delivered to this instance, before anything
  // is closed or destroyed. finish_unload runs again from the last completion.
  if (services_.workers && !services_.workers->drain(slot, [this, name, done] { finish_unload(name, done); })) return;
  // Close before destroy: the instance may not be called again, but its legs' peers hear END.
  assert(slot->held_.empty() && "events are held only inside a synchronous reload");
  close_slot_resources(*slot);
  bool unloaded = release_instance(std::move(slot->instance_));
  if (services_.workers) services_.workers->forget(slot);
  services_.metrics.remove_matching(fmt::format("plugin=\"{}\"", name));
  slots_.erase(name);
  std::erase(order_, name);
  JN_LOG_INF("plugin {} unloaded{}", name, unloaded ? "" : " (but its code is still mapped)");
  done({});
  if (auto next = std::exchange(stop_all_waiting_, nullptr)) next();
}

void PluginHost::stop_all(std::function<void()> done) {
  if (order_.empty()) {
    done();
    return;
  }
  std::string last = order_.back();
  if (PluginSlot* s = find(last); s && s->stopping_) {
    // Its unload is under way (draining worker jobs, or an asynchronous stop): continue when it
    // is gone rather than asking again (which would answer "already being unloaded" at once).
    stop_all_waiting_ = [this, done = std::move(done)]() mutable { stop_all(std::move(done)); };
    return;
  }
  unload(last, [this, done = std::move(done)](std::string) mutable { stop_all(std::move(done)); });
}

nlohmann::json PluginHost::slot_json(const PluginSlot& s) const {
  nlohmann::json j{{"name", s.name()}, {"conf", s.conf().conf_path}, {"library", s.conf().library},
                   {"generation", s.generation_}, {"reloads", s.reloads_}, {"held_events_total", s.held_total_},
                   {"resources", s.resources_.size()}, {"log_level", log_level_name(s.log_level())}, {"stopping", s.stopping_}};
  if (s.instance_ && s.instance_->info) {
    const auto& i = *s.instance_->info;
    j["version"] = i.version ? i.version : "";
    j["build_id"] = s.instance_->build_id;
    j["description"] = i.description ? i.description : "";
    j["abi"] = fmt::format("{}.{}", i.abi_major, i.abi_minor);
    j["state_schema"] = i.state_schema;
    j["namespaces"] = i.namespaces ? i.namespaces : "";
  }
  return j;
}

nlohmann::json PluginHost::to_json() const {
  nlohmann::json arr = nlohmann::json::array();
  for (auto& n : order_) arr.push_back(slot_json(*slots_.find(n)->second));
  return arr;
}

}  // namespace junction
