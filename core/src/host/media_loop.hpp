// Media loops: core threads, each with its own libuv loop and buffer pool, pinned to a CPU,
// that poll the UDP sockets plugins bind with jn_udp_options.loop = k and run those sockets'
// on_udp there. A plugin shards its sessions across them (the relay: one loop per session);
// everything else (timers, control sockets, HTTP, the bus's subscribers) stays on the control
// loop.
//
// Threads and locks (the only cross-thread machinery in the core):
//   - run_mu_: held by the loop thread around every callback it runs (socket readable, inbox).
//     The control thread takes it to be sure the loop is not inside a plugin right now: pause
//     (hot reload, unload) and remove_socket. Never taken by the loop while waiting in epoll.
//   - inbox_mu_: a leaf lock around the command queue the control thread fills (add a socket,
//     close a socket, replay held input) and the bus hand-off queue the loop fills.
//   - Sockets: the control thread creates and binds the fd (so errors return synchronously),
//     queues it; the loop thread polls it. Closing hands the UdpRes to the loop, which stops
//     polling, closes the fd and frees it in the poll handle's close callback.
//   - Hot reload: PluginSlot::media_held is set, then every loop's run_mu_ is taken once (a
//     barrier: no loop is inside the plugin after that); input arriving meanwhile is kept by
//     reference on its loop and replayed there, in order, before anything newer (resume).
//   - TCP connections (jn_tcp_options.loop = k, resources.cpp): listeners stay on the control
//     loop. An accepted fd (or a connect's address) is wrapped in a TcpRes that the control thread
//     queues (TcpStart); from then on only loop k touches it: its uv_tcp_t, framer, timers and
//     events. The host's handle table holds a small proxy TcpRes (control thread only); the
//     control loop reaches the connection by handle through the inbox (TcpSend, TcpClose,
//     TcpCookie). The loop frees the connection in its uv close callback and hands the handle
//     back (released_), and the control loop then drops the proxy. Unload: tcp_abandon, under the
//     run lock, so no event of the connection reaches the plugin after it returns.
#pragma once

#include "bus/buffer_pool.hpp"

#include <junction/abi.h>
#include <nlohmann/json.hpp>
#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace junction {

class PacketBus;
class PluginHost;
class PluginSlot;
struct UdpRes;
struct TcpRes;

struct MediaLoopStats {
  // Written by the loop thread, read anywhere (relaxed).
  std::atomic<uint64_t> rx_packets{0}, rx_truncated{0}, tx_packets{0}, tx_dropped{0};
  std::atomic<uint64_t> bus_handoffs{0}, bus_unsubscribed{0}, held{0}, replayed{0};
  std::atomic<uint64_t> posts{0}, post_dropped{0}, timer_fires{0};
  std::atomic<uint64_t> handoff_dropped{0};  // bus packets for the control loop beyond kMaxHandoffs
  std::atomic<uint64_t> local_deliveries{0};  // on_bus calls of loop-local subscriptions
  std::atomic<uint32_t> sockets{0};
  // TCP connections on the loop (jn_tcp_options.loop).
  std::atomic<uint32_t> tcp_conns{0};
  std::atomic<uint64_t> tcp_rx_frames{0}, tcp_tx_refused{0}, tcp_bad_streams{0};
};

class MediaLoop {
 public:
  MediaLoop(uint32_t index, int cpu, BufferPoolConfig pool_conf);
  ~MediaLoop();  // asserts: stopped, no socket left
  MediaLoop(const MediaLoop&) = delete;
  MediaLoop& operator=(const MediaLoop&) = delete;

  // Control thread. start() returns "" once the loop runs, or the reason it could not.
  std::string start(std::function<void()> wake_control);
  void stop();  // joins the thread; every socket must have been removed

  uint32_t index() const { return index_; }  // 1-based, as in jn_udp_options.loop
  void set_bus(PacketBus* bus) { bus_ = bus; }  // before start(); local subscriptions pin its ids
  int cpu() const { return cpu_; }           // -1: not pinned
  bool pinned() const { return pinned_; }
  BufferPool& pool() { return *pool_; }
  MediaLoopStats& stats() { return stats_; }
  std::mutex& run_mutex() { return run_mu_; }
  // The media loop whose thread is calling, or nullptr on any other thread.
  static MediaLoop* current();
  uint64_t now_ms() const { return uv_now(const_cast<uv_loop_t*>(&loop_)); }  // loop thread
  uv_loop_t* uv_loop() { return &loop_; }  // loop thread: the worker pool queues jobs on it (workers.cpp)

  // --- control thread --------------------------------------------------------------------
  void add_socket(UdpRes* r);     // r is bound and registered; the loop starts polling it
  void remove_socket(UdpRes* r);  // takes ownership; no delivery of r after this returns
  void pause(PluginSlot* slot);   // barrier after slot->media_held was set
  void resume();                  // replay held input of slots no longer held
  // Drop (unref) held input for a slot being unloaded; its loop-local subscriptions end (their
  // stream pins are released on bus, which the control thread owns).
  void forget(PluginSlot* slot, PacketBus& bus);
  struct Handoff {
    uint32_t stream_id;  // 0: by name
    std::string stream;
    jn_buf* buf;  // one reference, owned by the hand-off
  };
  void take_handoffs(std::vector<Handoff>& out);
  // TCP connections this loop has freed: their handles, for the control loop to drop.
  struct TcpRelease {
    PluginHost* host;
    PluginSlot* slot;  // compared, never dereferenced unless the handle is still its (see resources.cpp)
    jn_handle handle;
  };
  void take_tcp_releases(std::vector<TcpRelease>& out);
  void wake();  // run the inbox (and reclaim remote releases) soon
  uint64_t& misuse_count() { return misuse_count_; }  // loop thread: refused sends, for rate-limited logs

  // Any thread: on_post(cookie) for slot on this loop, soon. JN_ERR_LIMIT when kMaxPosts are
  // queued already.
  jn_status post(PluginSlot* slot, uint64_t cookie);
  static constexpr size_t kMaxPosts = 65536;

  // TCP (resources.cpp). Control thread: c is new and owned by the loop from here on (TcpStart).
  void tcp_add(TcpRes* c);
  // Control thread, by handle; the loop drops a command for a connection that is gone.
  // tcp_send_control: framed bytes (copied); JN_ERR_LIMIT when kTcpControlBytes wait already.
  jn_status tcp_send_control(jn_handle h, std::string framed);
  void tcp_close_control(jn_handle h);
  void tcp_cookie_control(jn_handle h, uint64_t cookie);
  // Control thread (unload, close_resource): no event of h reaches its plugin after this returns;
  // the loop closes it at once and frees it.
  void tcp_abandon(jn_handle h);
  static constexpr size_t kTcpControlBytes = 8u << 20;
  // Loop thread (run lock held).
  TcpRes* tcp_conn(jn_handle h);  // this loop's live connection, or nullptr
  // Its uv handle closed (the caller frees it): out of the table, its handle handed back to the
  // control loop (origin: the slot that opened it, for the owner check there).
  void tcp_forget(jn_handle h, PluginHost* host, PluginSlot* origin);
  void deliver_tcp(PluginSlot& slot, const jn_tcp_event& ev);  // to the plugin, or held (ev.buf ref'd)
  // A connection whose plugin is being swapped stops reading after the read in progress (TCP flow
  // control keeps the rest in the kernel) and reads again after the replay: a reload holds at most
  // one read per connection, not a whole stream.
  void tcp_pause_reading(jn_handle h) { tcp_paused_.push_back(h); }
  // Input of slot is being held on this loop (a swap, or its replay not done yet).
  bool holding(PluginSlot& slot) const;
  char* read_scratch() { return read_scratch_.get(); }
  static constexpr size_t kReadScratch = 64 * 1024;

  // --- loop thread, inside a hook of slot (run lock held) --------------------------------------
  // Loop timers: handles of their own namespace (see loop_handle), valid on this loop only.
  jn_status timer_start(PluginSlot& slot, uint64_t delay_ms, uint64_t repeat_ms, uint64_t cookie, jn_handle* out);
  jn_status timer_stop(PluginSlot& slot, jn_handle h);
  // A loop timer's handle: index bit 31 set, bits 30..23 the loop (1..255), bit 22 clear, 21..0
  // its slot. A loop-local bus subscription's: the same with bit 22 set.
  static bool is_loop_handle(jn_handle h) { return (static_cast<uint32_t>(h) & 0x80000000u) != 0; }
  static uint32_t loop_of(jn_handle h) { return (static_cast<uint32_t>(h) >> 23) & 0xFFu; }
  size_t timer_count() const { return timers_live_; }  // loop thread (and tests)

  // Loop-local bus subscriptions (ABI 2.1 bus_subscribe_local): publishes by id on this loop reach
  // them synchronously, by reference. Loop thread, inside a hook of slot (run lock held).
  jn_status local_subscribe(PluginSlot& slot, PacketBus& bus, uint32_t stream_id, uint64_t cookie, jn_handle* out);
  jn_status local_unsubscribe(PluginSlot& slot, PacketBus& bus, jn_handle h);
  bool has_local_subscribers(uint32_t stream_id) const {
    return !local_by_stream_.empty() && local_by_stream_.count(stream_id) != 0;
  }
  size_t publish_local(uint32_t stream_id, jn_buf* buf);  // deliveries (held ones included)
  size_t local_subscription_count() const { return local_live_; }
  static constexpr size_t kMaxLocalSubs = 4096;

  // --- loop thread ------------------------------------------------------------------------
  UdpRes* socket(jn_handle h);  // this loop's live socket, or nullptr
  void deliver(UdpRes& r, jn_buf* const* bufs, size_t n);  // to the plugin, or held
  // Takes a ref; false (dropped, counted) when kMaxHandoffs wait for the control loop already:
  // a control loop that falls behind must not let a media loop queue without bound.
  bool handoff(uint32_t stream_id, std::string_view stream, jn_buf* buf);
  static constexpr size_t kMaxHandoffs = 65536;

 private:
  struct Command {
    enum Kind { Add, Remove, Replay, Post, ReapTimers, TcpStart, TcpSend, TcpClose, TcpCookie } kind;
    UdpRes* sock = nullptr;
    PluginSlot* slot = nullptr;  // Post
    uint64_t cookie = 0;         // Post, TcpCookie
    TcpRes* tcp = nullptr;       // TcpStart
    jn_handle handle = 0;        // TcpSend, TcpClose, TcpCookie
    std::string data{};          // TcpSend: framed bytes
    bool is_tcp() const { return kind >= TcpStart; }
  };
  struct Held {
    enum Kind : uint8_t { Udp, Timer, Posted, Bus, Tcp } kind;
    PluginSlot* slot;
    jn_handle sock;  // Udp: the socket; Timer: the timer; Bus: the local subscription
    uint64_t cookie;
    jn_buf* buf;  // Udp, Bus, Tcp (a frame): one reference; else null
    bool one_shot;  // Timer: a one-shot (its handle is dead already)
    jn_tcp_event tcp{};  // Tcp: the event (data points into buf, re-pointed at replay)
  };
  struct LoopTimer {
    uv_timer_t timer{};
    MediaLoop* loop = nullptr;
    PluginSlot* slot = nullptr;  // nullptr: its plugin unloaded (closed at the next reap)
    jn_handle handle = 0;
    uint64_t cookie = 0;
    bool repeating = false;
    bool closing = false;
  };
  struct LocalSub {
    PluginSlot* slot = nullptr;  // nullptr: free, or ended during a fan-out (compacted after it)
    jn_handle handle = 0;
    uint32_t stream_id = 0;
    uint64_t cookie = 0;
  };
  LocalSub* local_sub(jn_handle h);  // live, or nullptr
  void end_local_sub(uint32_t idx, PacketBus* bus);  // bus null: ask the control loop to settle
  void compact_local();
  static void on_loop_timer(uv_timer_t* t);
  void close_timer(LoopTimer* t);  // loop thread, run lock held
  void reap_timers(bool all);      // loop thread: close the dead ones (all: every one, at stop)
  bool slot_behind(PluginSlot& slot) const;  // input of slot held here: keep the order
  void deliver_post(PluginSlot& slot, uint64_t cookie);
  void run();
  static void on_inbox(uv_async_t* a);
  void drain_inbox(bool inside_plugin);  // loop thread, under run_mu_
  void replay_held();  // loop thread, under run_mu_
  void call_plugin(PluginSlot& slot, jn_handle sock, uint64_t cookie, jn_buf* const* bufs, size_t n);

  const uint32_t index_;
  const int cpu_;
  PacketBus* bus_ = nullptr;
  bool pinned_ = false;
  std::unique_ptr<BufferPool> pool_;
  MediaLoopStats stats_;
  uv_loop_t loop_{};
  uv_async_t inbox_async_{};
  uv_timer_t trim_timer_{};  // the pool's idle trim
  std::thread thread_;
  std::function<void()> wake_control_;

  std::mutex run_mu_;
  std::mutex inbox_mu_;
  std::vector<Command> inbox_;           // under inbox_mu_
  std::vector<Handoff> outbox_;          // under inbox_mu_
  std::vector<TcpRelease> tcp_released_; // under inbox_mu_; one per connection, so bounded by them
  size_t tcp_control_bytes_ = 0;         // under inbox_mu_: bytes of queued TcpSend commands
  bool stopping_ = false;                // under inbox_mu_
  bool async_closed_ = false;            // under inbox_mu_: inbox_async_ may not be signalled
  void signal();                         // uv_async_send(inbox_async_) unless closed
  // This loop's sockets by the index half of their handle (handles are generation << 32 | index):
  // a bounds check and a compare instead of hashing on every send. Loop thread only.
  class SocketTable {
   public:
    UdpRes* find(jn_handle h) const;
    void put(jn_handle h, UdpRes* r);
    bool erase(jn_handle h, UdpRes* r);  // false when h is not r's entry
    bool empty() const { return count_ == 0; }

   private:
    std::vector<UdpRes*> by_index_;
    size_t count_ = 0;
  };
  SocketTable sockets_;
  // TCP connections by handle, under run_mu_ (the loop's callbacks hold it; tcp_abandon takes it).
  std::unordered_map<jn_handle, TcpRes*> tcp_;
  std::unique_ptr<char[]> read_scratch_;  // loop thread: TCP reads land here, frames go to the pool
  std::vector<jn_handle> tcp_paused_;     // loop thread: connections that stopped reading for a swap
  void tcp_resume_reading();              // after a replay: those whose plugin is no longer held
  std::vector<Held> held_;               // under run_mu_
  // Loop timers by the index bits of their handles; under run_mu_ (the control thread marks a
  // forgotten slot's timers dead under it).
  std::vector<LoopTimer*> timers_;
  std::vector<uint32_t> timer_gen_;      // generation per index, bumped on reuse
  std::vector<uint32_t> free_timers_;
  size_t timers_live_ = 0;
  size_t posts_queued_ = 0;              // under inbox_mu_
  // Loop-local subscriptions, under run_mu_ (the loop runs hooks under it; forget() takes it).
  std::vector<LocalSub> local_subs_;     // by the index bits of their handles
  std::vector<uint32_t> local_gen_;
  std::vector<uint32_t> free_local_;
  std::unordered_map<uint32_t, std::vector<uint32_t>> local_by_stream_;  // stream id -> indexes
  std::vector<uint32_t> local_ended_;    // ended during a fan-out, compacted when it finishes
  uint32_t local_fanout_depth_ = 0;
  size_t local_live_ = 0;
  std::vector<Command> scratch_;         // loop thread
  uint64_t misuse_count_ = 0;            // loop thread
};

// The set of media loops (server.media_loops), plus the control-loop side of their bus
// hand-off. Count 0 is valid: media then stays on the control loop.
class MediaLoops {
 public:
  MediaLoops(uv_loop_t* control, PacketBus& bus, uint32_t count, std::vector<int> cpus);
  ~MediaLoops();
  std::string start();  // "" or the reason
  void stop();          // joins every loop; call after every plugin is unloaded

  uint32_t count() const { return static_cast<uint32_t>(loops_.size()); }
  MediaLoop* at(uint32_t index);  // 1..count, else nullptr (the control loop)
  const std::vector<std::unique_ptr<MediaLoop>>& all() const { return loops_; }
  // {"loops":[{"loop","cpu","pinned","sockets","rx_packets","tx_packets","tx_dropped",
  //  "rx_truncated","bus_handoffs","held","replayed","buffers_outstanding"}]}
  nlohmann::json to_json() const;
  void pause(PluginSlot* slot);
  void resume(PluginSlot* slot);
  void forget(PluginSlot* slot);
  // Publish what the loops handed over, now (before a stream id is released, so a queued
  // packet never reaches a stream that reuses the id).
  void drain_handoffs();
  // Any bus subscription anywhere? Media loops skip the hand-off when none (read relaxed).
  static bool bus_has_subscribers(const PacketBus& bus);
  // Any thread: on_post(cookie) for slot on the control loop, soon (host->post with loop 0).
  jn_status post_to_control(PluginSlot* slot, uint64_t cookie);
  std::atomic<uint64_t>& control_posts_dropped() { return control_posts_dropped_; }

 private:
  static void on_handoff(uv_async_t* a);
  uv_loop_t* control_;
  PacketBus& bus_;
  std::vector<std::unique_ptr<MediaLoop>> loops_;
  uv_async_t async_{};
  bool async_open_ = false;
  std::vector<MediaLoop::Handoff> scratch_;
  // Posts to the control loop: filled by any thread, drained by on_handoff.
  std::mutex posts_mu_;
  std::vector<std::pair<PluginSlot*, uint64_t>> posts_, posts_scratch_;
  std::atomic<uint64_t> control_posts_dropped_{0};
};

}  // namespace junction
