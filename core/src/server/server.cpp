#include "server/server.hpp"

#include "admin/admin_api.hpp"
#include "util/log.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <filesystem>
#include <fstream>

namespace junction {

// ---------------------------------------------------------------------------------------------
struct UvCallTimers::T {
  uv_timer_t timer;
  uint64_t id;
  UvCallTimers* owner;
  std::function<void()> fn;
};

UvCallTimers::~UvCallTimers() { assert(live_.empty() && "call timers outlive the call manager"); }

uint64_t UvCallTimers::start(uint64_t delay_ms, std::function<void()> fn) {
  auto* t = new T{{}, next_++, this, std::move(fn)};
  uv_timer_init(loop_, &t->timer);
  t->timer.data = t;
  live_[t->id] = t;
  uv_timer_start(&t->timer, [](uv_timer_t* h) {
    auto* t = static_cast<T*>(h->data);
    auto fn = std::move(t->fn);
    t->owner->cancel(t->id);  // one-shot: release before running (fn may start another)
    if (fn) fn();
  }, delay_ms, 0);
  return t->id;
}

void UvCallTimers::cancel(uint64_t id) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  T* t = it->second;
  live_.erase(it);
  uv_timer_stop(&t->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&t->timer), [](uv_handle_t* h) { delete static_cast<T*>(h->data); });
}

void HostCallEndpoints::deliver(const std::string& plugin, jn_handle leg, uint64_t cookie, const CallEvent& ev) {
  if (!host_) return;
  if (PluginSlot* s = host_->find(plugin)) s->deliver_call(leg, cookie, ev);
}

bool HostCallEndpoints::available(const std::string& plugin) {
  PluginSlot* s = host_ ? host_->find(plugin) : nullptr;
  return s && !s->stopping();
}

// ---------------------------------------------------------------------------------------------
Server::Server(CoreConfig conf) : conf_(std::move(conf)) {
  set_core_log_level(conf_.log_level);
  metrics_.set_series_cap(conf_.limits.metric_series_per_name);
  uv_loop_init(&loop_);
  std::filesystem::create_directories(conf_.state_dir);
  store_ = std::make_unique<KvStore>(conf_.state_dir + "/store.db");
  pool_ = std::make_unique<BufferPool>();
  bus_ = std::make_unique<PacketBus>();
  media_ = std::make_unique<MediaLoops>(&loop_, *bus_, conf_.media_loops, conf_.media_loop_cpus);
  call_timers_ = std::make_unique<UvCallTimers>(&loop_);
  calls_ = std::make_unique<CallManager>(routes_, call_endpoints_, *call_timers_, [this](const nlohmann::json& j) { write_cdr(j); });
  calls_->set_ring_timeout_ms(conf_.ring_timeout_ms);
  calls_->set_max_calls(conf_.max_calls);
  HttpServerOptions http_opts;
  http_opts.max_conns_per_endpoint = conf_.limits.http_max_conns_per_endpoint;
  http_opts.max_conns_per_ip = conf_.limits.http_max_conns_per_ip;
  http_opts.fd_reserve = conf_.limits.fd_reserve;
  http_opts.max_header_bytes = conf_.limits.http_max_header_bytes;
  http_opts.max_body = conf_.limits.http_max_body_bytes;
  http_ = std::make_unique<HttpServer>(&loop_, http_opts);
  ports_ = std::make_unique<PortRanges>(conf_.port_ranges);
  DnsResolverOptions dns_opts;
  dns_opts.servers = conf_.dns_servers;
  dns_ = std::make_unique<DnsResolver>(&loop_, dns_opts);
  http_client_ = std::make_unique<HttpClient>(&loop_, *dns_);
  // libuv reads UV_THREADPOOL_SIZE at its pool's first use, which is the first work_submit.
  WorkerPool::set_threadpool_size(conf_.workers_threads);
  workers_ = std::make_unique<WorkerPool>(&loop_, conf_.workers_max_queued, metrics_);
  services_.reset(new Services{&loop_, metrics_, *store_, *pool_, *bus_, routes_, *calls_, *http_, conf_.state_dir, media_.get(),
                               ports_.get(), dns_.get(), http_client_.get(), workers_.get()});
  host_ = std::make_unique<PluginHost>(*services_, conf_);
  call_endpoints_.attach(host_.get());
  admin_ = std::make_unique<AdminApi>(*this);
  set_anchor(conf_.media_anchor);

  BufferPool* pool = pool_.get();
  MediaLoops* media = media_.get();
  metrics_.computed("junction_bus_payload_copies_total", "", [pool, media] {
    uint64_t n = pool->payload_copies();
    for (auto& l : media->all()) n += l->pool().payload_copies();
    return static_cast<double>(n); },
                    "Payload copies made by the packet path (buf_copy); 0 on a zero-copy relay");
  metrics_.computed("junction_buffers_outstanding", "", [pool] { return static_cast<double>(pool->outstanding()); }, "Packet buffers in use");
  metrics_.computed("junction_buffers_capacity", "", [pool] { return static_cast<double>(pool->capacity_buffers()); }, "Packet buffers allocated in slabs");
  metrics_.computed("junction_buffer_pool_exhausted_total", "", [pool] { return static_cast<double>(pool->exhausted_count()); }, "Allocations refused: pool full");
  for (auto& l : media_->all()) {
    MediaLoop* m = l.get();
    std::string lab = fmt::format("loop=\"{}\",cpu=\"{}\"", m->index(), m->cpu());
    auto stat = [&](const char* name, std::atomic<uint64_t>& v, const char* help) {
      metrics_.computed(name, lab, [&v] { return static_cast<double>(v.load(std::memory_order_relaxed)); }, help);
    };
    stat("junction_media_rx_packets_total", m->stats().rx_packets, "Datagrams received on a media loop's sockets");
    stat("junction_media_tx_packets_total", m->stats().tx_packets, "Datagrams sent from a media loop");
    stat("junction_media_posts_total", m->stats().posts, "Posts (host->post) delivered on a media loop");
    stat("junction_media_post_dropped_total", m->stats().post_dropped, "Posts refused: 65536 already queued for the loop");
    stat("junction_media_timer_fires_total", m->stats().timer_fires, "Media-loop timers that fired");
    metrics_.computed("junction_media_buffers_capacity", lab, [m] { return static_cast<double>(m->pool().capacity_buffers()); },
                      "Packet buffers a media loop's pool holds (grows under load; idle slabs are given back every 10 s)");
    stat("junction_media_handoff_dropped_total", m->stats().handoff_dropped,
         "Bus packets a media loop dropped because 65536 already waited for the control loop");
    stat("junction_media_tx_dropped_total", m->stats().tx_dropped, "Datagrams a media loop's kernel socket refused");
    stat("junction_media_rx_truncated_total", m->stats().rx_truncated, "Datagrams longer than the socket's max_datagram, dropped");
    stat("junction_media_bus_handoffs_total", m->stats().bus_handoffs, "Packets handed to the control loop's bus subscribers");
    stat("junction_media_local_deliveries_total", m->stats().local_deliveries,
         "Bus packets delivered to loop-local subscribers on their publisher's media loop (by reference)");
    stat("junction_media_held_total", m->stats().held, "Datagrams held on a media loop during a plugin swap");
    stat("junction_media_replayed_total", m->stats().replayed, "Held datagrams replayed after a plugin swap");
    metrics_.computed("junction_media_sockets", lab, [m] { return static_cast<double>(m->stats().sockets.load(std::memory_order_relaxed)); },
                      "Sockets a media loop polls");
    metrics_.computed("junction_media_tcp_connections", lab, [m] { return static_cast<double>(m->stats().tcp_conns.load(std::memory_order_relaxed)); },
                      "TCP connections a media loop runs (jn_tcp_options.loop)");
    stat("junction_media_tcp_rx_frames_total", m->stats().tcp_rx_frames, "Frames read from a media loop's TCP connections");
    stat("junction_media_tcp_tx_refused_total", m->stats().tcp_tx_refused,
         "tcp_send calls refused on a media loop's connections: 8 MiB already waited for a slow peer");
    stat("junction_media_tcp_bad_streams_total", m->stats().tcp_bad_streams,
         "A media loop's TCP connections closed for a bad stream (a lying length, an oversize frame)");
    metrics_.computed("junction_media_buffers_outstanding", lab, [m] { return static_cast<double>(m->pool().outstanding()); },
                      "A media loop's packet buffers in use");
  }
  HttpServer* http = http_.get();
  for (size_t r = 0; r < static_cast<size_t>(HttpRefusal::kCount); ++r) {
    auto why = static_cast<HttpRefusal>(r);
    metrics_.computed("junction_http_refused_total", fmt::format("reason=\"{}\"", http_refusal_name(why)),
                      [http, why] { return static_cast<double>(http->refused(why)); },
                      "HTTP/WebSocket connections or requests turned away by [limits]");
  }
  CallManager* calls = calls_.get();
  metrics_.computed("junction_calls_active", "", [calls] { return static_cast<double>(calls->active_calls()); }, "Calls in progress");
  metrics_.computed("junction_legs_active", "", [calls] { return static_cast<double>(calls->active_legs()); }, "Call legs in progress");
  metrics_.computed("junction_calls_refused_total", "reason=\"max_calls\"", [calls] { return static_cast<double>(calls->refused_calls()); },
                    "call_originate refused (JN_ERR_LIMIT): server.max_calls calls in progress");
  metrics_.computed("junction_call_events_refused_total", "reason=\"events_per_drain\"",
                    [calls] { return static_cast<double>(calls->refused_events_drain()); },
                    "Call events (and originates) a plugin sent from inside on_call, refused by the re-entrancy limits");
  metrics_.computed("junction_call_events_refused_total", "reason=\"queued_per_leg\"",
                    [calls] { return static_cast<double>(calls->refused_events_queue()); },
                    "Call events (and originates) a plugin sent from inside on_call, refused by the re-entrancy limits");
  RouteTable* routes = &routes_;
  metrics_.computed("junction_routes_dynamic", "", [routes] { return static_cast<double>(routes->dynamic_count()); }, "Routes registered by plugins");
}

void Server::set_anchor(const std::string& plugin) {
  calls_->set_media_anchor(nullptr);
  anchor_.reset();
  if (plugin.empty()) return;
  anchor_ = std::make_unique<HostMediaAnchor>(*host_, plugin);
  calls_->set_media_anchor(anchor_.get());
}

Server::~Server() {
  calls_->set_media_anchor(nullptr);
  admin_.reset();
  host_.reset();
  services_.reset();
  http_client_.reset();  // both stopped in stop()
  dns_.reset();
  if (workers_ && workers_->close()) uv_run(&loop_, UV_RUN_NOWAIT);  // its close callback (no stop())
  workers_.reset();
  http_.reset();
  calls_.reset();
  call_timers_.reset();
  if (cdr_file_) std::fclose(cdr_file_);
  int rc = uv_loop_close(&loop_);
  if (rc != 0) JN_LOG_ERR("libuv loop closed with handles still open ({})", uv_strerror(rc));
}

std::string Server::load_token() {
  if (!conf_.admin_token.empty()) return conf_.admin_token;
  std::string path = conf_.state_dir + "/admin.token";
  std::ifstream in(path);
  std::string tok;
  if (in && std::getline(in, tok) && tok.size() >= 32) return tok;
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("cannot generate an admin token (RAND_bytes)");
  tok.clear();
  for (unsigned char c : raw) tok += fmt::format("{:02x}", c);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot write {}: {}", path, strerror(errno)));
  fchmod(fd, 0600);
  std::string line = tok + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + path);
  JN_LOG_INF("generated an admin token in {} (mode 0600)", path);
  return tok;
}

void Server::write_cdr(const nlohmann::json& cdr) {
  if (!cdr_file_) cdr_file_ = std::fopen((conf_.state_dir + "/cdr.jsonl").c_str(), "a");
  std::string line = cdr.dump() + "\n";
  if (cdr_file_) {
    std::fwrite(line.data(), 1, line.size(), cdr_file_);
    std::fflush(cdr_file_);
  }
  JN_LOG_DBG("cdr {}", cdr.dump());
}

int Server::run() {
  started_ms_ = uv_now(&loop_);
  try {
    routes_.set_static(conf_.routes);
    admin_token_ = load_token();
  } catch (const std::exception& e) {
    JN_LOG_ERR("{}", e.what());
    return 2;
  }
  std::string error;
  if (!admin_->start(&error)) {
    JN_LOG_ERR("admin API on {}: {}", conf_.admin_listen, error);
    exit_code_ = 1;
  }
  if (exit_code_ == 0) {
    std::string why = media_->start();
    if (!why.empty()) {
      JN_LOG_ERR("refusing to start: {}", why);
      exit_code_ = 1;
    }
  }
  for (size_t i = 0; exit_code_ == 0 && i < conf_.plugins.size(); ++i) {
    std::string why = host_->load(conf_.plugins[i]);
    if (!why.empty()) {
      // All or nothing: a server that would run without one of its enabled plugins stops.
      JN_LOG_ERR("refusing to start: plugin {}: {}", conf_.plugins[i].name, why);
      exit_code_ = 1;
    }
  }
  uv_signal_init(&loop_, &sigterm_);
  uv_signal_init(&loop_, &sigint_);
  uv_signal_init(&loop_, &sighup_);
  sigterm_.data = sigint_.data = sighup_.data = this;
  signals_open_ = true;
  if (exit_code_ != 0) {
    stop();
  } else {
    uv_signal_start(&sigterm_, [](uv_signal_t* s, int) { static_cast<Server*>(s->data)->stop(); }, SIGTERM);
    uv_signal_start(&sigint_, [](uv_signal_t* s, int) { static_cast<Server*>(s->data)->stop(); }, SIGINT);
    uv_signal_start(&sighup_, [](uv_signal_t* s, int) {
      std::string why = static_cast<Server*>(s->data)->reload_config();
      if (!why.empty()) JN_LOG_ERR("SIGHUP: configuration not applied, the running one stays: {}", why);
    }, SIGHUP);
    JN_LOG_INF("junction ready: admin on {}, {} plugin(s)", conf_.admin_listen, conf_.plugins.size());
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  JN_LOG_INF("junction stopped");
  return exit_code_;
}

void Server::stop() {
  if (stopping_) return;
  stopping_ = true;
  JN_LOG_INF("stopping: draining plugins");
  host_->stop_all([this] {
    media_->stop();  // every plugin (and so every media socket) is gone
    workers_->close();  // every plugin drained its jobs at unload
    admin_->stop();
    // The client before the resolver it asks; both after every plugin (nothing is outstanding).
    http_client_->stop([this] { dns_->stop([] {}); });
    http_->stop([this] {
      if (signals_open_) {
        for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_}) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
        signals_open_ = false;
      }
    });
  });
}

std::string Server::reload_config() {
  CoreConfig next;
  try {
    next = load_config(conf_.path);
    RouteTable probe;  // validate routes without touching the live table
    probe.set_static(next.routes);
  } catch (const std::exception& e) {
    return e.what();
  }
  if (next.admin_listen != conf_.admin_listen || next.admin_token != conf_.admin_token || next.state_dir != conf_.state_dir)
    JN_LOG_WRN("SIGHUP: admin and state_dir changes take effect at the next restart");
  // Apply: levels and routes, then plugins removed, added, changed.
  set_core_log_level(next.log_level);
  routes_.set_static(next.routes);
  calls_->set_ring_timeout_ms(next.ring_timeout_ms);
  calls_->set_max_calls(next.max_calls);
  if (next.media_anchor != conf_.media_anchor) set_anchor(next.media_anchor);
  if (next.media_loops != conf_.media_loops || next.media_loop_cpus != conf_.media_loop_cpus)
    JN_LOG_WRN("SIGHUP: server.media_loops / media_loop_cpus changes take effect at the next restart");
  conf_.media_anchor = next.media_anchor;
  std::vector<std::string> problems;
  for (const auto& name : host_->names()) {
    bool still = std::any_of(next.plugins.begin(), next.plugins.end(), [&](auto& p) { return p.name == name; });
    if (!still) host_->unload(name, [](std::string) {});
  }
  for (const auto& pc : next.plugins) {
    PluginSlot* slot = host_->find(pc.name);
    if (!slot) {
      std::string why = host_->load(pc);
      if (!why.empty()) problems.push_back(pc.name + ": " + why);
    } else if (slot->conf().text_hash != pc.text_hash) {
      slot->set_log_level(pc.log_level);
      if (workers_->in_flight(slot)) {  // the reload waits for its worker jobs; the outcome is logged
        host_->reload_async(pc.name, &pc, [name = pc.name](ReloadResult r) {
          if (!r.ok) JN_LOG_ERR("SIGHUP: reload of {} failed: {}", name, r.error);
        });
        continue;
      }
      ReloadResult r = host_->reload(pc.name, &pc);
      if (!r.ok) problems.push_back(pc.name + ": " + r.error);
    }
  }
  conf_.routes = next.routes;
  conf_.plugins = next.plugins;
  conf_.log_level = next.log_level;
  conf_.ring_timeout_ms = next.ring_timeout_ms;
  host_->set_core_conf(conf_);
  JN_LOG_INF("configuration re-read from {}", conf_.path);
  std::string out;
  for (auto& p : problems) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace junction
