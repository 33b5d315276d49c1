// The junction server: one libuv control loop and the services object every part shares.
// Construction order is dependency order; stop() is asynchronous (plugins may finish work),
// and the destructor asserts that everything was closed.
#pragma once

#include "host/port_ranges.hpp"
#include "net/dns_resolver.hpp"
#include "net/http_client.hpp"
#include "host/workers.hpp"

#include "bus/buffer_pool.hpp"
#include "bus/packet_bus.hpp"
#include "config/config.hpp"
#include "host/media_loop.hpp"
#include "host/plugin_host.hpp"
#include "http/http_server.hpp"
#include "routing/call_manager.hpp"
#include "routing/route_table.hpp"
#include "store/kv_store.hpp"
#include "util/metrics.hpp"

#include <uv.h>

#include <cstdio>
#include <memory>

namespace junction {

class AdminApi;

// Call-model timers on the control loop.
class UvCallTimers : public CallTimers {
 public:
  explicit UvCallTimers(uv_loop_t* loop) : loop_(loop) {}
  ~UvCallTimers() override;
  uint64_t start(uint64_t delay_ms, std::function<void()> fn) override;
  void cancel(uint64_t id) override;
  uint64_t now_ms() override { return uv_now(loop_); }

 private:
  struct T;
  uv_loop_t* loop_;
  uint64_t next_ = 1;
  std::unordered_map<uint64_t, T*> live_;
};

// Routes call events to plugin slots.
class HostCallEndpoints : public CallEndpoints {
 public:
  void attach(PluginHost* host) { host_ = host; }
  void deliver(const std::string& plugin, jn_handle leg, uint64_t cookie, const CallEvent& ev) override;
  bool available(const std::string& plugin) override;

 private:
  PluginHost* host_ = nullptr;
};

// Media anchoring through the plugin named by server.media_anchor.
class HostMediaAnchor : public MediaAnchor {
 public:
  HostMediaAnchor(PluginHost& host, std::string plugin) : host_(host), plugin_(std::move(plugin)) {}
  std::optional<std::vector<MediaStream>> anchor(Op op, const std::string& call_id, const std::vector<MediaStream>* media,
                                                 uint32_t sender) override {
    return host_.anchor_media(plugin_, op, call_id, media, sender);
  }

 private:
  PluginHost& host_;
  std::string plugin_;
};

class Server {
 public:
  explicit Server(CoreConfig conf);
  ~Server();

  // Starts everything and runs the loop until stopped. Returns the process exit code.
  int run();
  void stop();                      // SIGTERM / SIGINT: drain, then stop
  std::string reload_config();      // SIGHUP: validate-then-apply; "" or the reason it was refused

  PluginHost& plugins() { return *host_; }
  Services& services() { return *services_; }
  const CoreConfig& conf() const { return conf_; }
  const std::string& admin_token() const { return admin_token_; }
  uint64_t started_ms() const { return started_ms_; }

 private:
  void write_cdr(const nlohmann::json& cdr);
  std::string load_token();
  void set_anchor(const std::string& plugin);

  CoreConfig conf_;
  uv_loop_t loop_{};
  Metrics metrics_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<BufferPool> pool_;
  std::unique_ptr<PacketBus> bus_;
  std::unique_ptr<MediaLoops> media_;
  std::unique_ptr<PortRanges> ports_;
  RouteTable routes_;
  std::unique_ptr<UvCallTimers> call_timers_;
  HostCallEndpoints call_endpoints_;
  std::unique_ptr<CallManager> calls_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<DnsResolver> dns_;
  std::unique_ptr<HttpClient> http_client_;
  std::unique_ptr<WorkerPool> workers_;  // outlives the host: its jobs' completions name slots
  std::unique_ptr<Services> services_;
  std::unique_ptr<PluginHost> host_;
  std::unique_ptr<AdminApi> admin_;
  std::unique_ptr<HostMediaAnchor> anchor_;
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  bool signals_open_ = false;
  bool stopping_ = false;
  std::string admin_token_;
  std::FILE* cdr_file_ = nullptr;
  uint64_t started_ms_ = 0;
  int exit_code_ = 0;
};

}  // namespace junction
