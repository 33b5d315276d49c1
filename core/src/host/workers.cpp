#include "host/workers.hpp"

#include "host/media_loop.hpp"
#include "host/plugin_host.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <cstdlib>
#include <string>

namespace junction {

namespace {
// Work handles carry bit 62 so one is never mistaken for a resource or loop handle of equal value.
constexpr jn_handle kWorkTag = 1ull << 62;
}  // namespace

void WorkerPool::set_threadpool_size(uint32_t threads) {
  setenv("UV_THREADPOOL_SIZE", std::to_string(threads).c_str(), 1);
}

WorkerPool::WorkerPool(uv_loop_t* control, uint32_t max_queued, Metrics& metrics) : control_(control), max_queued_(max_queued) {
  wake_ = new uv_async_t;
  uv_async_init(control_, wake_, [](uv_async_t* a) { static_cast<WorkerPool*>(a->data)->run_waiters(); });
  wake_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(wake_));  // never what keeps the server running
  // Counted on any loop thread: exported as computed counters (Metrics itself is control-only).
  metrics.computed("junction_work_submitted_total", "", [this] { return static_cast<double>(submitted_.load()); },
                   "Jobs accepted by work_submit");
  metrics.computed("junction_work_refused_total", "", [this] { return static_cast<double>(refused_.load()); },
                   "work_submit refused: [workers] max_queued jobs were waiting already");
  metrics.computed("junction_work_cancelled_total", "", [this] { return static_cast<double>(cancelled_.load()); },
                   "Jobs cancelled before they ran (work_cancel, reload, unload)");
  metrics.computed("junction_work_completed_total", "", [this] { return static_cast<double>(completed_.load()); },
                   "Jobs whose run() returned");
}

WorkerPool::~WorkerPool() = default;  // close() ran (the server's stop or destructor)

bool WorkerPool::close() {
  std::lock_guard lk(mu_);
  if (!wake_) return false;
  uv_close(reinterpret_cast<uv_handle_t*>(wake_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  wake_ = nullptr;
  return true;
}

jn_status WorkerPool::submit(PluginSlot& slot, MediaLoop* loop, const jn_work& work, jn_handle* out) {
  auto job = std::make_unique<Job>();
  job->pool = this;
  job->slot = &slot;
  job->loop = loop;
  job->run = work.run;
  job->arg = work.arg;
  job->cookie = work.cookie;
  Job* raw = job.get();
  raw->req.data = raw;
  {
    std::lock_guard lk(mu_);
    SlotState& ss = slots_[&slot];
    if (ss.blocked) {
      slot.log(JN_LOG_WARN, "work_submit refused: the plugin is being reloaded or unloaded (its jobs are draining)");
      return JN_ERR_STATE;
    }
    if (queued_ >= max_queued_) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      slot.log(JN_LOG_WARN, fmt::format("work_submit refused: {} jobs wait for a worker already ([workers] max_queued)", queued_));
      return JN_ERR_LIMIT;
    }
    raw->handle = jobs_.insert(std::move(job));
    // Queued under mu_: a drain or cancel on another thread sees the job only once libuv has it.
    int rc = uv_queue_work(loop ? loop->uv_loop() : control_, &raw->req, work_cb, after_cb);
    if (rc != 0) {
      jobs_.erase(raw->handle);
      slot.log(JN_LOG_ERROR, fmt::format("work_submit: uv_queue_work failed: {}", uv_strerror(rc)));
      return JN_ERR_INTERNAL;
    }
    ++queued_;
    ++ss.in_flight;
    *out = raw->handle | kWorkTag;
  }
  submitted_.fetch_add(1, std::memory_order_relaxed);
  return JN_OK;
}

jn_status WorkerPool::cancel(PluginSlot& slot, jn_handle h) {
  if (!(h & kWorkTag)) return JN_ERR_NOT_FOUND;
  std::lock_guard lk(mu_);
  Job* job = jobs_.get(h & ~kWorkTag);
  if (!job || job->slot != &slot) return JN_ERR_NOT_FOUND;
  if (job->state != Job::State::Queued) return JN_ERR_STATE;
  // uv_cancel only takes libuv's own locks; after_cb (UV_ECANCELED) needs mu_, held here, so the
  // job outlives this call.
  if (uv_cancel(reinterpret_cast<uv_req_t*>(&job->req)) != 0) return JN_ERR_STATE;  // a worker took it
  job->state = Job::State::Cancelled;
  --queued_;
  return JN_OK;
}

void WorkerPool::work_cb(uv_work_t* req) {
  Job* job = static_cast<Job*>(req->data);
  WorkerPool* pool = job->pool;
  {
    std::lock_guard lk(pool->mu_);
    job->state = Job::State::Running;
    --pool->queued_;
  }
  job->run(job->arg);  // plugin code; its .so stays mapped until on_work_done (see drain)
  // libuv's pool threads outlive OpenSSL's own cleanup at exit, so the per-thread state a job
  // made (error queue, per-thread DRBGs: a KDF, a signature) would never be freed by OpenSSL's
  // thread-exit handler (LSan saw it). Freed after each job; the next one recreates what it uses.
  OPENSSL_thread_stop();
  std::lock_guard lk(pool->mu_);
  job->state = Job::State::Ran;
}

// On the submitting loop's thread.
void WorkerPool::after_cb(uv_work_t* req, int status) {
  Job* job = static_cast<Job*>(req->data);
  WorkerPool* pool = job->pool;
  jn_status st = status == UV_ECANCELED ? JN_ERR_CANCELLED : JN_OK;
  (st == JN_OK ? pool->completed_ : pool->cancelled_).fetch_add(1, std::memory_order_relaxed);
  PluginSlot* slot = job->slot;
  jn_handle h = job->handle | kWorkTag;
  // The slot and its instance are alive: unload and reload wait for this (drain).
  auto call = [&] {
    PluginInstance* inst = slot->instance();
    if (!inst || !inst->self) return;  // a factory that failed after submitting: no instance to tell
    if (auto f = JN_HOOK(inst, on_work_done)) f(inst->self, h, job->cookie, st);
  };
  if (job->loop) {
    std::lock_guard run(job->loop->run_mutex());  // hooks on a media loop run under its run lock
    call();
  } else {
    call();
  }
  pool->finished(job);
}

void WorkerPool::finished(Job* job) {
  uv_async_t* wake = nullptr;
  {
    std::lock_guard lk(mu_);
    auto it = slots_.find(job->slot);
    if (it != slots_.end() && --it->second.in_flight == 0 && !it->second.waiters.empty()) wake = wake_;
    jobs_.erase(job->handle);  // job is freed here
  }
  // A drain waits on the control loop; an async send from either thread gets it there.
  if (wake) uv_async_send(wake);
}

void WorkerPool::run_waiters() {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lk(mu_);
    for (auto& [slot, ss] : slots_)
      if (ss.in_flight == 0 && !ss.waiters.empty()) {
        for (auto& w : ss.waiters) ready.push_back(std::move(w));
        ss.waiters.clear();
      }
  }
  for (auto& f : ready) f();  // may reload or unload (and forget) slots
}

bool WorkerPool::drain(PluginSlot* slot, std::function<void()> done) {
  std::lock_guard lk(mu_);
  SlotState& ss = slots_[slot];
  ss.blocked = true;
  if (ss.in_flight == 0) return true;
  size_t cancelled = 0;
  jobs_.for_each([&](jn_handle, Job& job) {
    if (job.slot != slot || job.state != Job::State::Queued) return;
    if (uv_cancel(reinterpret_cast<uv_req_t*>(&job.req)) == 0) {
      job.state = Job::State::Cancelled;
      --queued_;
      ++cancelled;
    }
  });
  slot->log(JN_LOG_INFO, fmt::format("draining worker jobs: {} cancelled, {} to wait for", cancelled, ss.in_flight - cancelled));
  ss.waiters.push_back(std::move(done));
  return false;
}

bool WorkerPool::block_if_idle(PluginSlot* slot) {
  std::lock_guard lk(mu_);
  SlotState& ss = slots_[slot];
  if (ss.in_flight != 0) return false;
  ss.blocked = true;
  return true;
}

void WorkerPool::unblock(PluginSlot* slot) {
  std::lock_guard lk(mu_);
  auto it = slots_.find(slot);
  if (it != slots_.end()) it->second.blocked = false;
}

void WorkerPool::forget(PluginSlot* slot) {
  std::lock_guard lk(mu_);
  slots_.erase(slot);
}

size_t WorkerPool::in_flight(PluginSlot* slot) {
  std::lock_guard lk(mu_);
  auto it = slots_.find(slot);
  return it == slots_.end() ? 0 : it->second.in_flight;
}

}  // namespace junction
