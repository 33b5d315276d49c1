// The plugin host: loads plugins through the C ABI, owns every resource they use (timers,
// sockets, endpoints, subscriptions, routes), delivers events to them, and swaps an instance
// for a new one (hot reload) without closing any of those resources.
//
// Ownership: resources belong to a PluginSlot (one per enabled plugin name), never to a loaded
// instance, so they outlive reloads. A slot's resources are closed when the plugin is unloaded.
#pragma once

#include "bus/buffer_pool.hpp"
#include "bus/packet_bus.hpp"
#include "config/config.hpp"
#include "net/dns_resolver.hpp"
#include "net/http_client.hpp"
#include "handles.hpp"
#include "http/http_server.hpp"
#include "routing/call_manager.hpp"
#include "routing/route_table.hpp"
#include "store/kv_store.hpp"
#include "util/metrics.hpp"

#include <junction/abi.h>
#include <uv.h>

#include <boost/dll/shared_library.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <unordered_map>
#include <string>

namespace junction {

class PluginHost;
class PluginSlot;

// What the host needs from the rest of the core: passed in, never global.
class MediaLoops;
class WorkerPool;

struct Services {
  uv_loop_t* loop;
  Metrics& metrics;
  KvStore& store;
  BufferPool& pool;
  PacketBus& bus;
  RouteTable& routes;
  CallManager& calls;
  HttpServer& http;
  std::string state_dir;
  MediaLoops* media = nullptr;  // server.media_loops; count() may be 0
  PortRanges* ports = nullptr;  // [ports.NAME]; may hold no range
  DnsResolver* dns = nullptr;    // the control loop's resolver ([dns] servers)
  HttpClient* http_client = nullptr;
  WorkerPool* workers = nullptr;  // host->work_submit; nullptr: JN_ERR_UNSUPPORTED
};

// A core-owned resource named by a jn_handle. Closing is explicit: close() starts it, and the
// object is freed when the OS/libuv side is done (for libuv handles, in the close callback).
struct Resource {
  enum class Kind : uint8_t { Timer, Udp, TcpListener, TcpConn, HttpEndpoint, WsConn, HttpRequest, BusSub, Route, AdminReply, StateSink, AnchorReply,
                              DnsQuery, HttpCall, WsUpgrade };
  Resource(Kind k, PluginSlot* o, uint64_t c) : kind(k), owner(o), cookie(c) {}
  virtual ~Resource() = default;
  Kind kind;
  PluginSlot* owner;  // nullptr once the owning slot is gone (close in progress)
  uint64_t cookie;
  jn_handle handle = JN_INVALID_HANDLE;
};

const char* resource_kind_name(Resource::Kind k);

// A hook of an instance's vtable, or nullptr when the plugin's (older, shorter) vtable lacks it.
#define JN_HOOK(inst, name) (JN_HAS_FIELD((inst)->vtable, jn_plugin_vtable, name) ? (inst)->vtable->name : nullptr)

struct PluginInstance;
class PortRanges;
class DnsResolver;
class HttpClient;
struct HttpClientChunk;
// Calls inst's on_udp (if it has one) with bufs, in batches of at most 64.
void call_on_udp(PluginInstance* inst, jn_handle sock, uint64_t cookie, jn_buf* const* bufs, size_t n);

// One loaded copy of a plugin's shared object.
struct PluginInstance {
  boost::dll::shared_library library;
  std::string staged_path;  // the unique copy that was dlopen'ed
  const jn_plugin_info* info = nullptr;
  const jn_plugin_vtable* vtable = nullptr;
  jn_plugin* self = nullptr;
  uint64_t generation = 0;
  std::string build_id;
};

struct ReloadResult {
  bool ok = false;
  int http_status = 200;
  std::string error;
  uint64_t generation = 0;
  uint64_t cutover_us = 0;
  uint64_t load_us = 0;
  uint64_t held = 0;
  size_t state_bytes = 0;
  bool old_unloaded = false;
  nlohmann::json to_json(const std::string& name) const;
};

class PluginSlot : public BusSink {
 public:
  PluginSlot(PluginHost& host, PluginConf conf);
  ~PluginSlot() override;

  // Immutable copy: media loops log through it while a reload may replace conf_.
  const std::string& name() const { return name_; }
  const PluginConf& conf() const { return conf_; }
  void set_conf(PluginConf c) { conf_ = std::move(c); }
  PluginHost& host() { return host_; }
  PluginInstance* instance() { return instance_.get(); }
  int log_level() const { return log_level_.load(std::memory_order_relaxed); }
  void set_log_level(int l) { log_level_.store(l, std::memory_order_relaxed); }
  void log(int level, std::string_view msg);
  jn_host_ctx* ctx() { return reinterpret_cast<jn_host_ctx*>(this); }
  static PluginSlot* from(jn_host_ctx* ctx) { return reinterpret_cast<PluginSlot*>(ctx); }

  // --- event delivery: call the current instance's hook now, or hold it during a swap ---------
  void deliver_timer(jn_handle timer, uint64_t cookie);
  void deliver_udp(jn_handle sock, uint64_t cookie, jn_buf* const* bufs, size_t n);
  void deliver_tcp(const jn_tcp_event& ev);
  void deliver_http(jn_handle request, jn_handle endpoint, uint64_t cookie, const HttpRequest& req);
  void deliver_ws(jn_handle conn, jn_handle endpoint, uint64_t cookie, int type, std::string_view data, const std::string& peer,
                  const WsUpgrade* upgrade = nullptr);
  // A WebSocket upgrade, decided now (not held): false when the plugin is being swapped.
  bool call_ws_upgrade(jn_handle upgrade, jn_handle endpoint, uint64_t cookie, const WsUpgrade& u);
  void deliver_call(jn_handle leg, uint64_t cookie, const CallEvent& ev);
  void deliver_event(const std::string& topic, const std::string& json);
  void deliver_admin(jn_handle reply, const std::string& verb, const std::string& body);
  void deliver_post(uint64_t cookie);  // a post to the control loop
  void deliver_dns(jn_handle query, uint64_t cookie, const DnsResult& r, const SipResolveResult* sip);
  void deliver_http_response(jn_handle request, uint64_t cookie, const HttpClientResponse& r);
  // 2.3: a piece of a streamed response; called now, or copied and held during a swap (then
  // dropped at replay if the request was cancelled meanwhile: its handle is gone and *ended, set
  // when the response ended, is still false).
  void deliver_http_chunk(jn_handle request, uint64_t cookie, const HttpClientChunk& c,
                          const std::shared_ptr<const bool>& ended);
  void on_bus_packet(uint64_t subscription, uint64_t cookie, jn_buf* buf) override;

  // The error the plugin reported for the hook in progress (host->set_error).
  // host->stop_done(): the plugin finished an asynchronous stop. Called from inside one of the
  // plugin's hooks (on_stop itself, a timer, a post), so the unload it completes (destroy the
  // instance, maybe unmap its code) must not run before that hook returns: it is finished from
  // the stop timer, re-armed to fire on the loop's next turn (PluginHost::unload).
  void stop_done();
  static void on_stop_timer(uv_timer_t* t);  // the stop timeout, or stop_done() on the next turn
  std::string take_error() { return std::exchange(error_, {}); }
  void set_error(std::string e) { error_ = std::move(e); }
  std::string last_error() const { return error_; }

  // Resource bookkeeping, so unload closes everything the slot holds.
  std::set<jn_handle>& resources() { return resources_; }
  std::set<std::string>& event_topics() { return event_topics_; }
  // The route table's handle -> this slot's Route resource, so re-registering a URI is O(1).
  std::unordered_map<jn_handle, jn_handle>& routes_by_inner() { return routes_by_inner_; }

  uint64_t held_total() const { return held_total_; }
  uint64_t reloads() const { return reloads_; }
  // Set (control thread) while the instance is being swapped or unloaded: media loops hold this
  // slot's input instead of calling it (see MediaLoop).
  std::atomic<bool> media_held{false};
  // Stream ids this slot interned (bus_intern), released at unload.
  std::unordered_map<uint32_t, uint32_t>& interned() { return interned_; }
  // counter_add's series by (name, labels as the plugin spells them): a hot counter costs one
  // hash lookup instead of label formatting and two map walks. Only canonical, existing series
  // are kept (invalid or overflowing labels take the slow path, which counts them); the pointers
  // stay valid until unload drops the slot's series, just before the slot itself goes.
  static constexpr size_t kCounterCacheMax = 256;
  uint64_t* cached_counter(std::string_view key) {
    auto it = counter_cache_.find(key);
    return it == counter_cache_.end() ? nullptr : it->second;
  }
  void cache_counter(std::string_view key, uint64_t* c) {
    if (counter_cache_.size() < kCounterCacheMax) counter_cache_.emplace(std::string(key), c);
  }
  bool stopping() const { return stopping_; }

 private:
  friend class PluginHost;
  template <typename F>
  void dispatch(F&& call);  // now, or appended to the hold queue while quiesced

  PluginHost& host_;
  const std::string name_;
  PluginConf conf_;
  std::unique_ptr<PluginInstance> instance_;
  std::atomic<int> log_level_;  // read by media loops too
  std::string error_;
  std::set<jn_handle> resources_;
  std::set<std::string> event_topics_;
  std::unordered_map<jn_handle, jn_handle> routes_by_inner_;
  std::unordered_map<uint32_t, uint32_t> interned_;  // stream id -> intern count
  struct SvHash {
    using is_transparent = void;
    size_t operator()(std::string_view v) const { return std::hash<std::string_view>{}(v); }
  };
  std::unordered_map<std::string, uint64_t*, SvHash, std::equal_to<>> counter_cache_;  // name '\n' labels
  bool quiesced_ = false;
  bool stopping_ = false;
  std::deque<std::function<void()>> held_;
  uint64_t held_total_ = 0;
  uint64_t reloads_ = 0;
  uint64_t generation_ = 0;
  uv_timer_t* stop_timer_ = nullptr;
  bool stop_done_called_ = false;  // stop_done() came: the stop timer finishes the unload, quietly
  std::function<void()> stop_continuation_;
};

class PluginHost {
 public:
  PluginHost(Services& services, const CoreConfig& conf);
  ~PluginHost();  // asserts: no slots, no resources left

  Services& services() { return services_; }
  const CoreConfig& core_conf() const { return core_conf_; }
  void set_core_conf(const CoreConfig& c) { core_conf_ = c; }
  const jn_host_api* api() const { return api_table(); }
  // library_pin: makes soname resident; true (first) when this process pinned it for the first time.
  jn_status pin_library(const std::string& soname, bool* first, std::string* error);
  static const jn_host_api* api_table();  // the one jn_host_api every slot gets

  // Load and start a plugin. Returns "" or the reason it was refused.
  std::string load(const PluginConf& conf);
  // Stop (async), close its resources, destroy, dlclose. done(error or "") when finished.
  void unload(const std::string& name, std::function<void(std::string)> done);
  // Swap in a freshly loaded copy, keeping every resource and the plugin's state.
  // Refused (409) while the plugin has worker jobs in flight: use reload_async.
  ReloadResult reload(const std::string& name, const PluginConf* new_conf = nullptr);
  // The same after draining the plugin's worker jobs (queued ones cancelled, running ones waited
  // for, each on_work_done delivered to the old instance); done runs now when nothing is in flight.
  void reload_async(const std::string& name, const PluginConf* new_conf, std::function<void(ReloadResult)> done);
  // Stop every plugin (reverse load order), then call done.
  void stop_all(std::function<void()> done);

  PluginSlot* find(std::string_view name);
  std::vector<std::string> names() const { return order_; }
  nlohmann::json to_json() const;
  nlohmann::json slot_json(const PluginSlot& s) const;

  // Resources
  jn_handle add_resource(std::unique_ptr<Resource> r);
  Resource* resource(jn_handle h, Resource::Kind kind, PluginSlot* owner);  // owner-checked
  void close_resource(jn_handle h);                                          // starts closing
  void forget_resource(jn_handle h);  // the resource's close finished: drop it from the table
  size_t resource_count() const { return resources_.size(); }

  // A plugin-specific admin command (POST /api/v1/plugins/NAME/cmd/VERB); reply is called once.
  void admin_command(PluginSlot& slot, const std::string& verb, const std::string& body, std::function<void(int, std::string)> reply);

  // Media anchoring: runs the anchor plugin's on_anchor synchronously. nullopt when the plugin is
  // missing, stopping, reloading, lacks the hook, or answered with an error.
  std::optional<std::vector<MediaStream>> anchor_media(const std::string& plugin, uint32_t op, const std::string& call_id,
                                                       const std::vector<MediaStream>* media, uint32_t sender);

  // Application events
  void publish_event(const std::string& topic, const std::string& json);

  // The payload copies the whole core has made (buf_copy + anything the core itself copies).
  uint64_t unload_failures() const { return unload_failures_; }

  // Scratch space for TCP reads (reads are synchronous in the read callback).
  char* read_scratch() { return read_scratch_.get(); }
  static constexpr size_t kReadScratch = 64 * 1024;

  // HTTP/WS plumbing: the endpoint's handlers route here.
  std::map<uint64_t, jn_handle>& ws_conns() { return ws_conns_; }

 private:
  std::set<std::string> pinned_libraries_;  // library_pin: resident for the process's life
  friend class PluginSlot;
  std::unique_ptr<PluginInstance> open_instance(const PluginConf& conf, uint64_t generation, std::string* error);
  std::string create_instance(PluginSlot& slot, PluginInstance& inst, bool restoring);
  std::string plugin_state_dir(const std::string& name) const;  // 2.2 jn_create_args.state_dir
  bool release_instance(std::unique_ptr<PluginInstance> inst);  // destroy + dlclose + verify
  void close_slot_resources(PluginSlot& slot);
  void finish_unload(const std::string& name, std::function<void(std::string)> done);
  ReloadResult reload_now(PluginSlot* slot, const std::string& name, const PluginConf* new_conf);

  Services& services_;
  CoreConfig core_conf_;
  std::map<std::string, std::unique_ptr<PluginSlot>, std::less<>> slots_;
  std::vector<std::string> order_;
  HandleTable<Resource> resources_;
  std::map<uint64_t, jn_handle> ws_conns_;
  std::unique_ptr<char[]> read_scratch_;
  uint64_t stage_counter_ = 0;
  uint64_t unload_failures_ = 0;
  std::function<void()> stop_all_waiting_;  // stop_all, waiting for an unload already under way
};

}  // namespace junction
