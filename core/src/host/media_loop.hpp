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
class PluginSlot;
struct UdpRes;

struct MediaLoopStats {
  // Written by the loop thread, read anywhere (relaxed).
  std::atomic<uint64_t> rx_packets{0}, rx_truncated{0}, tx_packets{0}, tx_dropped{0};
  std::atomic<uint64_t> bus_handoffs{0}, bus_unsubscribed{0}, held{0}, replayed{0};
  std::atomic<uint32_t> sockets{0};
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
  int cpu() const { return cpu_; }           // -1: not pinned
  bool pinned() const { return pinned_; }
  BufferPool& pool() { return *pool_; }
  MediaLoopStats& stats() { return stats_; }
  std::mutex& run_mutex() { return run_mu_; }
  // The media loop whose thread is calling, or nullptr on any other thread.
  static MediaLoop* current();
  uint64_t now_ms() const { return uv_now(const_cast<uv_loop_t*>(&loop_)); }  // loop thread

  // --- control thread --------------------------------------------------------------------
  void add_socket(UdpRes* r);     // r is bound and registered; the loop starts polling it
  void remove_socket(UdpRes* r);  // takes ownership; no delivery of r after this returns
  void pause(PluginSlot* slot);   // barrier after slot->media_held was set
  void resume();                  // replay held input of slots no longer held
  void forget(PluginSlot* slot);  // drop (unref) held input for a slot being unloaded
  struct Handoff {
    uint32_t stream_id;  // 0: by name
    std::string stream;
    jn_buf* buf;  // one reference, owned by the hand-off
  };
  void take_handoffs(std::vector<Handoff>& out);
  void wake();  // run the inbox (and reclaim remote releases) soon
  uint64_t& misuse_count() { return misuse_count_; }  // loop thread: refused sends, for rate-limited logs

  // --- loop thread ------------------------------------------------------------------------
  UdpRes* socket(jn_handle h);  // this loop's live socket, or nullptr
  void deliver(UdpRes& r, jn_buf* const* bufs, size_t n);  // to the plugin, or held
  void handoff(uint32_t stream_id, std::string_view stream, jn_buf* buf);  // takes a ref

 private:
  struct Command {
    enum Kind { Add, Remove, Replay } kind;
    UdpRes* sock = nullptr;
  };
  struct Held {
    PluginSlot* slot;
    jn_handle sock;
    uint64_t cookie;
    jn_buf* buf;  // one reference
  };
  void run();
  static void on_inbox(uv_async_t* a);
  void drain_inbox(bool inside_plugin);  // loop thread, under run_mu_
  void replay_held();  // loop thread, under run_mu_
  void call_plugin(PluginSlot& slot, jn_handle sock, uint64_t cookie, jn_buf* const* bufs, size_t n);

  const uint32_t index_;
  const int cpu_;
  bool pinned_ = false;
  std::unique_ptr<BufferPool> pool_;
  MediaLoopStats stats_;
  uv_loop_t loop_{};
  uv_async_t inbox_async_{};
  std::thread thread_;
  std::function<void()> wake_control_;

  std::mutex run_mu_;
  std::mutex inbox_mu_;
  std::vector<Command> inbox_;           // under inbox_mu_
  std::vector<Handoff> outbox_;          // under inbox_mu_
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
  std::vector<Held> held_;               // under run_mu_
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

 private:
  static void on_handoff(uv_async_t* a);
  uv_loop_t* control_;
  PacketBus& bus_;
  std::vector<std::unique_ptr<MediaLoop>> loops_;
  uv_async_t async_{};
  bool async_open_ = false;
  std::vector<MediaLoop::Handoff> scratch_;
};

}  // namespace junction
