// The worker pool behind host->work_submit (ABI 2.1): blocking plugin work (file writes, encoders,
// SQLite) runs on libuv's threadpool, and on_work_done comes back on the loop that submitted the
// job (the control loop, or the calling media loop), exactly once: JN_OK after run() returned,
// JN_ERR_CANCELLED when it was cancelled before it started.
//
// Threads: [workers] threads becomes UV_THREADPOOL_SIZE (set_threadpool_size, before the first
// uv_queue_work in the process). The core itself queues nothing on that pool.
//
// Reload/unload safety: a job's run() is code of the plugin's .so, and its on_work_done goes to
// the instance that submitted it. So the host drains a slot before it saves state (reload) or
// destroys the instance (unload): drain() refuses new submissions of the slot, cancels its queued
// jobs, and calls back on the control loop once every job of the slot has had its on_work_done.
// It never blocks the control loop.
#pragma once

#include "handles.hpp"

#include <junction/abi.h>
#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace junction {

class Metrics;
class MediaLoop;
class PluginSlot;

class WorkerPool {
 public:
  // control: the control loop (drain callbacks run there). Registers junction_work_* metrics.
  WorkerPool(uv_loop_t* control, uint32_t max_queued, Metrics& metrics);
  ~WorkerPool();  // after close()
  // Sets UV_THREADPOOL_SIZE; only the first uv_queue_work in the process reads it.
  static void set_threadpool_size(uint32_t threads);

  // The calling loop's thread (media: MediaLoop::current(), nullptr = the control loop).
  jn_status submit(PluginSlot& slot, MediaLoop* loop, const jn_work& work, jn_handle* out);
  // Any loop thread. JN_OK: it will not run (on_work_done(JN_ERR_CANCELLED) follows);
  // JN_ERR_STATE: running or run already; JN_ERR_NOT_FOUND: no such live job of this slot.
  jn_status cancel(PluginSlot& slot, jn_handle h);

  // --- control thread: the reload/unload drain -----------------------------------------------
  // Refuses the slot's new submissions and cancels its queued jobs. true: nothing of the slot is
  // in flight (done is not called); false: done() runs on the control loop once the last of its
  // jobs has delivered on_work_done.
  bool drain(PluginSlot* slot, std::function<void()> done);
  // Refuses new submissions if nothing is in flight (a synchronous reload's guard); false if busy.
  bool block_if_idle(PluginSlot* slot);
  void unblock(PluginSlot* slot);  // after a reload: the new instance may submit
  void forget(PluginSlot* slot);   // the slot is gone (nothing of it in flight)
  size_t in_flight(PluginSlot* slot);
  bool close();  // true if it started closing; closes the wake-up handle (server stop, after every plugin is unloaded)

 private:
  struct Job {
    uv_work_t req{};
    WorkerPool* pool = nullptr;
    PluginSlot* slot = nullptr;
    MediaLoop* loop = nullptr;  // nullptr: the control loop
    jn_handle handle = 0;
    void (*run)(void*) = nullptr;
    void* arg = nullptr;
    uint64_t cookie = 0;
    enum class State : uint8_t { Queued, Running, Ran, Cancelled } state = State::Queued;
  };
  struct SlotState {
    size_t in_flight = 0;  // submitted, on_work_done not yet returned
    bool blocked = false;  // reload/unload in progress: submissions refused
    std::vector<std::function<void()>> waiters;  // drain callbacks (control loop)
  };
  static void work_cb(uv_work_t* req);
  static void after_cb(uv_work_t* req, int status);
  void finished(Job* job);  // after on_work_done: drop the handle, count, wake a drain
  void run_waiters();       // control loop

  uv_loop_t* control_;
  const uint32_t max_queued_;
  std::mutex mu_;  // everything below; never held while plugin code runs
  HandleTable<Job> jobs_;
  std::unordered_map<PluginSlot*, SlotState> slots_;
  size_t queued_ = 0;
  std::atomic<uint64_t> submitted_{0}, refused_{0}, cancelled_{0}, completed_{0};
  uv_async_t* wake_ = nullptr;  // media loop -> control loop: a drain may be complete
};

}  // namespace junction
