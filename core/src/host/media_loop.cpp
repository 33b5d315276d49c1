#include "host/media_loop.hpp"

#include "bus/packet_bus.hpp"
#include "host/plugin_host.hpp"
#include "host/resources.hpp"
#include "util/log.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <future>

namespace junction {
namespace {
// Which media loop the calling thread runs (nullptr: not a media loop). A plain pointer, so no
// destructor runs at thread exit.
thread_local MediaLoop* t_current = nullptr;
}  // namespace

MediaLoop::MediaLoop(uint32_t index, int cpu, BufferPoolConfig pool_conf)
    : index_(index), cpu_(cpu), pool_(std::make_unique<BufferPool>(pool_conf)), read_scratch_(new char[kReadScratch]) {}

MediaLoop::~MediaLoop() {
  assert(!thread_.joinable() && "media loop destroyed while running");
  assert(sockets_.empty() && "media loop destroyed with sockets");
  assert(held_.empty());
  assert(timers_live_ == 0 && "media loop destroyed with timers");
  assert(tcp_.empty() && "media loop destroyed with TCP connections");
}

MediaLoop* MediaLoop::current() { return t_current; }

UdpRes* MediaLoop::SocketTable::find(jn_handle h) const {
  auto index = static_cast<uint32_t>(h);
  if (index >= by_index_.size()) return nullptr;
  UdpRes* r = by_index_[index];
  return r && r->handle == h ? r : nullptr;
}

void MediaLoop::SocketTable::put(jn_handle h, UdpRes* r) {
  auto index = static_cast<uint32_t>(h);
  if (index >= by_index_.size()) by_index_.resize(std::max<size_t>(index + 1, by_index_.size() * 2), nullptr);
  if (!by_index_[index]) ++count_;
  by_index_[index] = r;
}

bool MediaLoop::SocketTable::erase(jn_handle h, UdpRes* r) {
  auto index = static_cast<uint32_t>(h);
  if (index >= by_index_.size() || by_index_[index] != r) return false;
  by_index_[index] = nullptr;
  --count_;
  return true;
}

std::string MediaLoop::start(std::function<void()> wake_control) {
  wake_control_ = std::move(wake_control);
  std::promise<std::string> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, &started] {
    t_current = this;
    pool_->adopt_current_thread();
    std::string why;
    if (cpu_ >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu_, &set);
      int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
      pinned_ = rc == 0;
      if (rc != 0) JN_LOG_WRN("media loop {}: cannot pin to CPU {}: {} (runs unpinned)", index_, cpu_, strerror(rc));
    }
    pthread_setname_np(pthread_self(), fmt::format("jn-media-{}", index_).c_str());
    int rc = uv_loop_init(&loop_);
    if (rc == 0) rc = uv_async_init(&loop_, &inbox_async_, on_inbox);
    if (rc != 0) why = fmt::format("media loop {}: {}", index_, uv_strerror(rc));
    inbox_async_.data = this;
    if (rc == 0) {
      // An idle loop gives its pool's spare slabs back too (releases and inbox wakes drive the
      // trim while traffic flows). Unreferenced: it never keeps the loop alive on its own.
      uv_timer_init(&loop_, &trim_timer_);
      trim_timer_.data = this;
      uv_timer_start(&trim_timer_, [](uv_timer_t* t) { static_cast<MediaLoop*>(t->data)->pool_->maybe_trim(); }, 5000, 5000);
      uv_unref(reinterpret_cast<uv_handle_t*>(&trim_timer_));
    }
    started.set_value(why);
    if (!why.empty()) return;
    run();
  });
  std::string why = ready.get();
  if (!why.empty()) thread_.join();
  return why;
}

void MediaLoop::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  // Stopped: the async handle was closed in on_inbox; finish the close callbacks.
  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop_);
  if (rc != 0) JN_LOG_ERR("media loop {} closed with handles open ({})", index_, uv_strerror(rc));
  t_current = nullptr;
}

void MediaLoop::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    stopping_ = true;
  }
  signal();
  thread_.join();
  // Hand-offs the control loop never drained (stop races a last packet): release them.
  std::vector<Handoff> left;
  take_handoffs(left);
  for (auto& h : left)
    if (h.buf) BufferPool::unref(h.buf);
  // Connections freed during the last turns: their proxies went with their plugins' unload.
  std::vector<TcpRelease> released;
  take_tcp_releases(released);
  pool_->adopt_current_thread();  // the pool is destroyed on this thread
}

// --- control thread -------------------------------------------------------------------------
void MediaLoop::add_socket(UdpRes* r) {
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    inbox_.push_back({Command::Add, r});
  }
  signal();
}

void MediaLoop::remove_socket(UdpRes* r) {
  {
    // After this block the loop is not inside a callback for r and never delivers it again:
    // owner cleared under the run lock, the loop checks it under the same lock.
    std::lock_guard<std::mutex> run(run_mu_);
    r->owner = nullptr;
    std::lock_guard<std::mutex> g(inbox_mu_);
    inbox_.push_back({Command::Remove, r});
  }
  signal();
}

void MediaLoop::pause(PluginSlot*) {
  // The slot's media_held flag is already set: once the loop's current callback (if any) has
  // returned, every later one sees it.
  std::lock_guard<std::mutex> run(run_mu_);
}

void MediaLoop::resume() {
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    inbox_.push_back({Command::Replay, nullptr});
  }
  signal();
}

void MediaLoop::forget(PluginSlot* slot, PacketBus& bus) {
  bool had_timers = false;
  {
    std::lock_guard<std::mutex> run(run_mu_);
    // Its loop-local subscriptions end (the loop is not inside a hook: we hold its run lock).
    for (uint32_t i = 0; i < local_subs_.size(); ++i)
      if (local_subs_[i].slot == slot) end_local_sub(i, &bus);
    compact_local();
    size_t kept = 0;
    for (auto& h : held_) {
      if (h.slot == slot) {
        if (h.buf) BufferPool::unref(h.buf);
      } else {
        held_[kept++] = h;
      }
    }
    held_.resize(kept);
    // Its timers go dead now (the loop closes them at the next reap) and its queued posts are
    // dropped: after this returns the loop never calls into slot again.
    for (LoopTimer* t : timers_)
      if (t && t->slot == slot) {
        t->slot = nullptr;
        had_timers = true;
      }
    std::lock_guard<std::mutex> g(inbox_mu_);
    size_t k = 0;
    for (auto& c : inbox_) {
      if (c.kind == Command::Post && c.slot == slot) --posts_queued_;
      else inbox_[k++] = c;
    }
    inbox_.resize(k);
    if (had_timers) inbox_.push_back({Command::ReapTimers, nullptr});
  }
  if (had_timers) signal();
}

jn_status MediaLoop::post(PluginSlot* slot, uint64_t cookie) {
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    if (posts_queued_ >= kMaxPosts) {
      stats_.post_dropped.fetch_add(1, std::memory_order_relaxed);
      return JN_ERR_LIMIT;
    }
    ++posts_queued_;
    Command c{Command::Post, nullptr};
    c.slot = slot;
    c.cookie = cookie;
    inbox_.push_back(c);
  }
  signal();
  return JN_OK;
}

// --- TCP connections (control thread side) ------------------------------------------------------
void MediaLoop::tcp_add(TcpRes* c) {
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    Command cmd{Command::TcpStart};
    cmd.tcp = c;
    cmd.handle = tcp_loop_handle(c);
    inbox_.push_back(std::move(cmd));
  }
  signal();
}

jn_status MediaLoop::tcp_send_control(jn_handle h, std::string framed) {
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    // Bounded like a connection's own queue: a control loop writing faster than the loop drains.
    if (tcp_control_bytes_ + framed.size() > kTcpControlBytes) {
      stats_.tcp_tx_refused.fetch_add(1, std::memory_order_relaxed);
      return JN_ERR_LIMIT;
    }
    tcp_control_bytes_ += framed.size();
    Command cmd{Command::TcpSend};
    cmd.handle = h;
    cmd.data = std::move(framed);
    inbox_.push_back(std::move(cmd));
  }
  signal();
  return JN_OK;
}

void MediaLoop::tcp_close_control(jn_handle h) {
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    Command cmd{Command::TcpClose};
    cmd.handle = h;
    inbox_.push_back(std::move(cmd));
  }
  signal();
}

void MediaLoop::tcp_cookie_control(jn_handle h, uint64_t cookie) {
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    Command cmd{Command::TcpCookie};
    cmd.handle = h;
    cmd.cookie = cookie;
    inbox_.push_back(std::move(cmd));
  }
  signal();
}

void MediaLoop::tcp_abandon(jn_handle h) {
  {
    // Under the run lock the loop is in no callback: detached now, the connection reaches its
    // plugin no more (a started one from the table, one not started yet from its TcpStart).
    std::lock_guard<std::mutex> run(run_mu_);
    auto it = tcp_.find(h);
    if (it != tcp_.end()) tcp_loop_detach(it->second);
    std::lock_guard<std::mutex> g(inbox_mu_);
    for (Command& c : inbox_)
      if (c.kind == Command::TcpStart && c.handle == h) tcp_loop_detach(c.tcp);
    Command cmd{Command::TcpClose};
    cmd.handle = h;
    inbox_.push_back(std::move(cmd));
  }
  signal();
}

// --- TCP connections (loop thread, run lock held) ------------------------------------------------
TcpRes* MediaLoop::tcp_conn(jn_handle h) {
  auto it = tcp_.find(h);
  return it == tcp_.end() ? nullptr : it->second;
}

void MediaLoop::tcp_forget(jn_handle h, PluginHost* host, PluginSlot* origin) {
  if (tcp_.erase(h)) stats_.tcp_conns.fetch_sub(1, std::memory_order_relaxed);
  bool first;
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    first = tcp_released_.empty() && outbox_.empty();
    tcp_released_.push_back({host, origin, h});
  }
  if (first && wake_control_) wake_control_();
}

void MediaLoop::take_tcp_releases(std::vector<TcpRelease>& out) {
  std::lock_guard<std::mutex> g(inbox_mu_);
  out.swap(tcp_released_);
}

bool MediaLoop::holding(PluginSlot& slot) const {
  return slot.media_held.load(std::memory_order_acquire) || slot_behind(slot);
}

void MediaLoop::tcp_resume_reading() {
  size_t kept = 0;
  for (jn_handle h : tcp_paused_) {
    TcpRes* c = tcp_conn(h);
    if (!c) continue;  // closed meanwhile
    if (!tcp_loop_resume_reading(c)) tcp_paused_[kept++] = h;  // its plugin is still held
  }
  tcp_paused_.resize(kept);
}

void MediaLoop::deliver_tcp(PluginSlot& slot, const jn_tcp_event& ev) {
  // Older input of this slot held here keeps the order: this goes behind it (a frame by reference).
  if (slot_behind(slot) || slot.media_held.load(std::memory_order_acquire)) {
    if (ev.buf) BufferPool::ref(ev.buf);
    Held h{Held::Tcp, &slot, ev.conn, ev.cookie, ev.buf, false};
    h.tcp = ev;
    held_.push_back(h);
    stats_.held.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  PluginInstance* inst = slot.instance();
  if (!inst) return;
  if (auto f = JN_HOOK(inst, on_tcp)) f(inst->self, &ev);
}

// --- loop timers ------------------------------------------------------------------------------
jn_status MediaLoop::timer_start(PluginSlot& slot, uint64_t delay_ms, uint64_t repeat_ms, uint64_t cookie, jn_handle* out) {
  if (!out) return JN_ERR_INVALID;
  uint32_t idx;
  if (!free_timers_.empty()) {
    idx = free_timers_.back();
    free_timers_.pop_back();
  } else {
    if (timers_.size() >= (1u << 22)) return JN_ERR_LIMIT;  // bit 22 marks local subscriptions
    idx = static_cast<uint32_t>(timers_.size());
    timers_.push_back(nullptr);
    timer_gen_.push_back(0);
  }
  uint32_t gen = ++timer_gen_[idx];
  if (gen == 0) gen = timer_gen_[idx] = 1;  // a handle is never 0
  auto* t = new LoopTimer;
  t->loop = this;
  t->slot = &slot;
  t->cookie = cookie;
  t->repeating = repeat_ms > 0;
  t->handle = (static_cast<uint64_t>(gen) << 32) | 0x80000000u | (index_ << 23) | idx;
  uv_timer_init(&loop_, &t->timer);
  t->timer.data = t;
  uv_timer_start(&t->timer, on_loop_timer, delay_ms, repeat_ms);
  timers_[idx] = t;
  ++timers_live_;
  *out = t->handle;
  return JN_OK;
}

jn_status MediaLoop::timer_stop(PluginSlot& slot, jn_handle h) {
  uint32_t idx = static_cast<uint32_t>(h) & 0x7FFFFFu;
  LoopTimer* t = idx < timers_.size() ? timers_[idx] : nullptr;
  if (!t || t->handle != h || t->closing || t->slot != &slot) return JN_ERR_NOT_FOUND;
  close_timer(t);
  return JN_OK;
}

void MediaLoop::close_timer(LoopTimer* t) {
  t->closing = true;
  uv_timer_stop(&t->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&t->timer), [](uv_handle_t* h) {
    auto* t = static_cast<LoopTimer*>(h->data);
    MediaLoop* self = t->loop;
    std::lock_guard<std::mutex> run(self->run_mu_);
    uint32_t idx = static_cast<uint32_t>(t->handle) & 0x7FFFFFu;
    self->timers_[idx] = nullptr;
    self->free_timers_.push_back(idx);
    --self->timers_live_;
    delete t;
  });
}

void MediaLoop::reap_timers(bool all) {
  for (LoopTimer* t : timers_)
    if (t && !t->closing && (all || !t->slot)) close_timer(t);
}

void MediaLoop::on_loop_timer(uv_timer_t* h) {
  auto* t = static_cast<LoopTimer*>(h->data);
  MediaLoop* self = t->loop;
  std::unique_lock<std::mutex> run(self->run_mu_);
  if (t->closing) return;
  PluginSlot* slot = t->slot;
  if (!slot) {  // its plugin unloaded before the reap
    self->close_timer(t);
    return;
  }
  const jn_handle handle = t->handle;
  const uint64_t cookie = t->cookie;
  const bool one_shot = !t->repeating;
  if (one_shot) self->close_timer(t);  // a one-shot timer's handle dies as it fires
  self->stats_.timer_fires.fetch_add(1, std::memory_order_relaxed);
  if (self->slot_behind(*slot) || slot->media_held.load(std::memory_order_acquire)) {
    self->held_.push_back({Held::Timer, slot, handle, cookie, nullptr, one_shot});
    self->stats_.held.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  PluginInstance* inst = slot->instance();
  if (!inst) return;
  if (auto f = JN_HOOK(inst, on_timer)) f(inst->self, handle, cookie);
}

bool MediaLoop::slot_behind(PluginSlot& slot) const {
  for (const Held& h : held_)
    if (h.slot == &slot) return true;
  return false;
}

// --- loop-local bus subscriptions ---------------------------------------------------------------
MediaLoop::LocalSub* MediaLoop::local_sub(jn_handle h) {
  if (!is_loop_handle(h) || !(static_cast<uint32_t>(h) & 0x400000u) || loop_of(h) != index_) return nullptr;
  uint32_t idx = static_cast<uint32_t>(h) & 0x3FFFFFu;
  if (idx >= local_subs_.size() || local_subs_[idx].handle != h || !local_subs_[idx].slot) return nullptr;
  return &local_subs_[idx];
}

jn_status MediaLoop::local_subscribe(PluginSlot& slot, PacketBus& bus, uint32_t stream_id, uint64_t cookie, jn_handle* out) {
  if (!out || stream_id == 0) return JN_ERR_INVALID;
  if (local_live_ >= kMaxLocalSubs) return JN_ERR_LIMIT;
  if (!bus.local_pin_any_thread(stream_id)) return JN_ERR_NOT_FOUND;
  uint32_t idx;
  if (!free_local_.empty()) {
    idx = free_local_.back();
    free_local_.pop_back();
  } else {
    idx = static_cast<uint32_t>(local_subs_.size());
    local_subs_.emplace_back();
    local_gen_.push_back(0);
  }
  uint32_t gen = ++local_gen_[idx];
  if (gen == 0) gen = local_gen_[idx] = 1;
  LocalSub& sub = local_subs_[idx];
  sub.slot = &slot;
  sub.stream_id = stream_id;
  sub.cookie = cookie;
  sub.handle = (static_cast<uint64_t>(gen) << 32) | 0x80000000u | (index_ << 23) | 0x400000u | idx;
  // Appending is safe during a fan-out of this stream: it walks by index up to the size it saw.
  local_by_stream_[stream_id].push_back(idx);
  ++local_live_;
  *out = sub.handle;
  return JN_OK;
}

jn_status MediaLoop::local_unsubscribe(PluginSlot& slot, PacketBus&, jn_handle h) {
  LocalSub* sub = local_sub(h);
  if (!sub || sub->slot != &slot) return JN_ERR_NOT_FOUND;
  end_local_sub(static_cast<uint32_t>(h) & 0x3FFFFFu, nullptr);
  if (local_fanout_depth_ == 0) compact_local();
  return JN_OK;
}

void MediaLoop::end_local_sub(uint32_t idx, PacketBus* bus) {
  LocalSub& sub = local_subs_[idx];
  if (!sub.slot) return;
  sub.slot = nullptr;
  --local_live_;
  local_ended_.push_back(idx);
  if (bus) {  // the control thread (forget)
    if (bus->local_unpin_any_thread(sub.stream_id)) bus->settle_id(sub.stream_id);
  } else if (bus_ && bus_->local_unpin_any_thread(sub.stream_id)) {
    // The loop thread may not touch the bus itself: the last pin's release asks the control loop
    // to drop the stream if nothing else holds it (a hand-off without a buffer; never dropped).
    bool first;
    {
      std::lock_guard<std::mutex> g(inbox_mu_);
      first = outbox_.empty();
      outbox_.push_back({sub.stream_id, std::string(), nullptr});
    }
    if (first && wake_control_) wake_control_();
  }
}

void MediaLoop::compact_local() {
  for (uint32_t idx : local_ended_) {
    LocalSub& sub = local_subs_[idx];
    auto it = local_by_stream_.find(sub.stream_id);
    if (it != local_by_stream_.end()) {
      std::erase(it->second, idx);
      if (it->second.empty()) local_by_stream_.erase(it);
    }
    sub.handle = 0;
    free_local_.push_back(idx);
  }
  local_ended_.clear();
}

size_t MediaLoop::publish_local(uint32_t stream_id, jn_buf* buf) {
  auto it = local_by_stream_.find(stream_id);
  if (it == local_by_stream_.end()) return 0;
  // The loop holds a reference for the whole fan-out, so every subscriber sees the buffer as
  // shared (read-only), as on_bus promises; the vector is only appended to while it runs.
  BufferPool::ref(buf);
  ++local_fanout_depth_;
  std::vector<uint32_t>& subs = it->second;
  const size_t n = subs.size();
  size_t delivered = 0;
  for (size_t i = 0; i < n; ++i) {
    LocalSub& sub = local_subs_[subs[i]];
    if (!sub.slot) continue;  // ended during this fan-out
    PluginSlot& slot = *sub.slot;
    ++delivered;
    if (slot_behind(slot) || slot.media_held.load(std::memory_order_acquire)) {
      BufferPool::ref(buf);
      held_.push_back({Held::Bus, &slot, sub.handle, sub.cookie, buf, false});
      stats_.held.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    PluginInstance* inst = slot.instance();
    if (!inst) continue;
    if (auto f = JN_HOOK(inst, on_bus)) f(inst->self, sub.handle, sub.cookie, buf);
  }
  if (--local_fanout_depth_ == 0 && !local_ended_.empty()) compact_local();
  BufferPool::unref(buf);
  stats_.local_deliveries.fetch_add(delivered, std::memory_order_relaxed);
  return delivered;
}

void MediaLoop::deliver_post(PluginSlot& slot, uint64_t cookie) {
  stats_.posts.fetch_add(1, std::memory_order_relaxed);
  if (slot_behind(slot) || slot.media_held.load(std::memory_order_acquire)) {
    held_.push_back({Held::Posted, &slot, 0, cookie, nullptr, false});
    stats_.held.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  PluginInstance* inst = slot.instance();
  if (!inst) return;
  if (auto f = JN_HOOK(inst, on_post)) f(inst->self, cookie);
}

void MediaLoop::wake() { signal(); }

void MediaLoop::signal() {
  // Under the inbox lock so a send never races the handle's close at stop.
  std::lock_guard<std::mutex> g(inbox_mu_);
  if (!async_closed_) uv_async_send(&inbox_async_);
}

void MediaLoop::take_handoffs(std::vector<Handoff>& out) {
  std::lock_guard<std::mutex> g(inbox_mu_);
  out.swap(outbox_);
}

// --- loop thread ------------------------------------------------------------------------------
void MediaLoop::on_inbox(uv_async_t* a) {
  auto* self = static_cast<MediaLoop*>(a->data);
  std::unique_lock<std::mutex> run(self->run_mu_);
  self->drain_inbox(false);
}

void MediaLoop::drain_inbox(bool inside_plugin) {
  bool stop = false;
  // The batch is a local: a hook run from it (on_post, ACCEPTED) may look up a socket that is not
  // polled yet, which drains the inbox again (inside_plugin) while this batch is being walked.
  // It borrows scratch_'s capacity and gives it back, so no allocation per wake.
  std::vector<Command> batch = std::move(scratch_);
  batch.clear();
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    batch.swap(inbox_);
    stop = stopping_;
    for (const Command& c : batch) {
      if (c.kind == Command::Post) --posts_queued_;
      if (c.kind == Command::TcpSend) tcp_control_bytes_ -= c.data.size();
    }
  }
  bool replay = false, reap = false;
  std::vector<Command> later;  // posts and reaps wait while a plugin's hook is on the stack
  for (Command& c : batch) {
    // A TCP command may emit an event (ACCEPTED, CONNECTED): never from inside another hook.
    if (inside_plugin && c.is_tcp()) {
      later.push_back(std::move(c));
      continue;
    }
    switch (c.kind) {
      case Command::TcpStart:
        tcp_.emplace(c.handle, c.tcp);
        stats_.tcp_conns.fetch_add(1, std::memory_order_relaxed);
        tcp_loop_start(c.tcp);
        break;
      case Command::TcpSend:
        if (TcpRes* t = tcp_conn(c.handle)) tcp_loop_write_framed(t, c.data);
        break;
      case Command::TcpClose:
        if (TcpRes* t = tcp_conn(c.handle)) tcp_loop_close(t);
        break;
      case Command::TcpCookie:
        if (TcpRes* t = tcp_conn(c.handle)) tcp_loop_set_cookie(t, c.cookie);
        break;
      case Command::Post:
        if (inside_plugin) later.push_back(c);
        else deliver_post(*c.slot, c.cookie);
        break;
      case Command::ReapTimers:
        if (inside_plugin) later.push_back(c);
        else reap = true;
        break;
      case Command::Add:
        if (!c.sock->owner) break;  // removed before the loop saw it: the Remove follows
        uv_poll_init(&loop_, &c.sock->poll, c.sock->fd);
        c.sock->poll.data = c.sock;
        uv_poll_start(&c.sock->poll, UV_READABLE, on_udp_readable);
        sockets_.put(c.sock->handle, c.sock);
        stats_.sockets.fetch_add(1, std::memory_order_relaxed);
        break;
      case Command::Remove: {
        if (sockets_.erase(c.sock->handle, c.sock)) {
          stats_.sockets.fetch_sub(1, std::memory_order_relaxed);
          uv_poll_stop(&c.sock->poll);
          uv_close(reinterpret_cast<uv_handle_t*>(&c.sock->poll), [](uv_handle_t* h) {
            auto* u = static_cast<UdpRes*>(h->data);
            ::close(u->fd);
            delete u;
          });
        } else {
          ::close(c.sock->fd);  // never polled
          delete c.sock;
        }
        break;
      }
      case Command::Replay: replay = true; break;
    }
  }
  batch.clear();
  if (scratch_.capacity() < batch.capacity()) scratch_.swap(batch);
  if (inside_plugin) {
    // Called from udp_send inside a plugin's on_udp: no nested replay, post (nor stop) from here.
    if (replay) later.push_back({Command::Replay, nullptr});
    if (!later.empty()) {
      {
        std::lock_guard<std::mutex> g(inbox_mu_);
        for (const Command& c : later) {
          if (c.kind == Command::Post) ++posts_queued_;
          if (c.kind == Command::TcpSend) tcp_control_bytes_ += c.data.size();
        }
        inbox_.insert(inbox_.begin(), later.begin(), later.end());  // before anything newer
      }
      signal();
    }
    return;
  }
  if (replay) {
    replay_held();
    tcp_resume_reading();
  }
  if (reap || stop) reap_timers(stop);
  pool_->reclaim_remote();
  if (stop) {
    assert(sockets_.empty() && "media loop stopped with sockets still polled");
    {
      std::lock_guard<std::mutex> g(inbox_mu_);
      async_closed_ = true;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&inbox_async_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&trim_timer_), nullptr);
  }
}

UdpRes* MediaLoop::socket(jn_handle h) {
  UdpRes* r = sockets_.find(h);
  if (!r) {
    // Bound on the control thread a moment ago and not polled yet: take the queue now.
    drain_inbox(true);
    r = sockets_.find(h);
    if (!r) return nullptr;
  }
  return r->owner ? r : nullptr;
}

void MediaLoop::call_plugin(PluginSlot& slot, jn_handle sock, uint64_t cookie, jn_buf* const* bufs, size_t n) {
  call_on_udp(slot.instance(), sock, cookie, bufs, n);
}

void MediaLoop::deliver(UdpRes& r, jn_buf* const* bufs, size_t n) {
  PluginSlot& slot = *r.owner;
  // Older input of this slot still held here keeps the order: this goes behind it.
  if (!slot_behind(slot) && !slot.media_held.load(std::memory_order_acquire)) {
    call_plugin(slot, r.handle, r.cookie, bufs, n);
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    BufferPool::ref(bufs[i]);
    held_.push_back({Held::Udp, &slot, r.handle, r.cookie, bufs[i], false});
  }
  stats_.held.fetch_add(n, std::memory_order_relaxed);
}

void MediaLoop::replay_held() {
  if (held_.empty()) return;
  std::vector<Held> rest;
  std::vector<Held> items;
  items.swap(held_);
  size_t i = 0;
  while (i < items.size()) {
    Held& h = items[i];
    // A slot still held (another reload started) keeps its input, in order.
    if (h.slot->media_held.load(std::memory_order_acquire) || (!rest.empty() && [&] {
          for (auto& x : rest)
            if (x.slot == h.slot) return true;
          return false;
        }())) {
      rest.push_back(h);
      ++i;
      continue;
    }
    if (h.kind == Held::Bus) {
      PluginInstance* inst = h.slot->instance();
      if (inst && local_sub(h.sock))  // still subscribed
        if (auto f = JN_HOOK(inst, on_bus)) f(inst->self, h.sock, h.cookie, h.buf);
      BufferPool::unref(h.buf);
      stats_.replayed.fetch_add(1, std::memory_order_relaxed);
      ++i;
      continue;
    }
    if (h.kind == Held::Tcp) {
      // Every event of a connection, in order, its CLOSED included (the connection may be gone).
      PluginInstance* inst = h.slot->instance();
      if (h.buf) h.tcp.data = h.buf->data;
      if (inst)
        if (auto f = JN_HOOK(inst, on_tcp)) f(inst->self, &h.tcp);
      if (h.buf) BufferPool::unref(h.buf);
      stats_.replayed.fetch_add(1, std::memory_order_relaxed);
      ++i;
      continue;
    }
    if (h.kind != Held::Udp) {
      PluginInstance* inst = h.slot->instance();
      if (h.kind == Held::Posted) {
        if (inst)
          if (auto f = JN_HOOK(inst, on_post)) f(inst->self, h.cookie);
      } else {
        // A repeating timer stopped during the swap delivers no more; a one-shot had fired.
        uint32_t idx = static_cast<uint32_t>(h.sock) & 0x7FFFFFu;
        LoopTimer* t = idx < timers_.size() ? timers_[idx] : nullptr;
        bool live = h.one_shot || (t && t->handle == h.sock && !t->closing);
        if (inst && live)
          if (auto f = JN_HOOK(inst, on_timer)) f(inst->self, h.sock, h.cookie);
      }
      stats_.replayed.fetch_add(1, std::memory_order_relaxed);
      ++i;
      continue;
    }
    // A run of datagrams of one socket goes in one call, as it would have.
    size_t j = i;
    jn_buf* run[64];
    size_t k = 0;
    while (j < items.size() && k < 64 && items[j].kind == Held::Udp && items[j].slot == h.slot && items[j].sock == h.sock)
      run[k++] = items[j++].buf;
    // The socket may have been closed meanwhile: deliver only to a live one.
    UdpRes* live = sockets_.find(h.sock);
    if (live && live->owner == h.slot) call_plugin(*h.slot, h.sock, h.cookie, run, k);
    for (size_t x = 0; x < k; ++x) BufferPool::unref(run[x]);
    stats_.replayed.fetch_add(k, std::memory_order_relaxed);
    i = j;
  }
  // Anything delivered during the replay that had to queue behind is already in held_.
  rest.insert(rest.end(), held_.begin(), held_.end());
  held_.swap(rest);
}

bool MediaLoop::handoff(uint32_t stream_id, std::string_view stream, jn_buf* buf) {
  bool first;
  {
    std::lock_guard<std::mutex> g(inbox_mu_);
    if (outbox_.size() >= kMaxHandoffs) {
      stats_.handoff_dropped.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    BufferPool::ref(buf);
    first = outbox_.empty();
    outbox_.push_back({stream_id, stream_id ? std::string() : std::string(stream), buf});
  }
  stats_.bus_handoffs.fetch_add(1, std::memory_order_relaxed);
  if (first && wake_control_) wake_control_();
  return true;
}

// =========================================================================================
MediaLoops::MediaLoops(uv_loop_t* control, PacketBus& bus, uint32_t count, std::vector<int> cpus)
    : control_(control), bus_(bus) {
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 1) ncpu = 1;
  for (uint32_t i = 0; i < count; ++i) {
    // Default placement: loop k on CPU k % ncpu (loop 1 on CPU 1: CPU 0 keeps the control loop
    // and the kernel's network softirq work of the other threads, when there are cores enough).
    int cpu = i < cpus.size() ? cpus[i] : static_cast<int>((i + 1) % ncpu);
    loops_.push_back(std::make_unique<MediaLoop>(i + 1, cpu, BufferPoolConfig{}));
    loops_.back()->set_bus(&bus_);
  }
}

MediaLoops::~MediaLoops() { assert(!async_open_ && "MediaLoops destroyed without stop()"); }

std::string MediaLoops::start() {
  // The control loop's async serves posts to the control loop too, so it exists without loops.
  uv_async_init(control_, &async_, on_handoff);
  async_.data = this;
  async_open_ = true;
  if (loops_.empty()) return {};
  for (auto& l : loops_) {
    std::string why = l->start([this] { uv_async_send(&async_); });
    if (!why.empty()) return why;
  }
  JN_LOG_INF("{} media loop(s) running", loops_.size());
  return {};
}

void MediaLoops::stop() {
  for (auto& l : loops_) l->stop();  // each releases what it handed over and nobody took
  if (async_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    async_open_ = false;
  }
}

nlohmann::json MediaLoops::to_json() const {
  nlohmann::json loops = nlohmann::json::array();
  for (auto& l : loops_) {
    MediaLoopStats& s = l->stats();
    auto v = [](const std::atomic<uint64_t>& x) { return x.load(std::memory_order_relaxed); };
    loops.push_back({{"loop", l->index()}, {"cpu", l->cpu()}, {"pinned", l->pinned()},
                     {"sockets", s.sockets.load(std::memory_order_relaxed)}, {"rx_packets", v(s.rx_packets)},
                     {"tx_packets", v(s.tx_packets)}, {"tx_dropped", v(s.tx_dropped)}, {"rx_truncated", v(s.rx_truncated)},
                     {"bus_handoffs", v(s.bus_handoffs)}, {"local_deliveries", v(s.local_deliveries)}, {"held", v(s.held)}, {"replayed", v(s.replayed)},
                     {"buffers_outstanding", l->pool().outstanding()}, {"tcp_conns", s.tcp_conns.load(std::memory_order_relaxed)},
                     {"tcp_rx_frames", v(s.tcp_rx_frames)}, {"tcp_tx_refused", v(s.tcp_tx_refused)}, {"tcp_bad_streams", v(s.tcp_bad_streams)}});
  }
  return {{"loops", loops}};
}

MediaLoop* MediaLoops::at(uint32_t index) {
  if (index == 0 || index > loops_.size()) return nullptr;
  return loops_[index - 1].get();
}

void MediaLoops::pause(PluginSlot* slot) {
  slot->media_held.store(true, std::memory_order_release);
  for (auto& l : loops_) l->pause(slot);
}

void MediaLoops::resume(PluginSlot* slot) {
  slot->media_held.store(false, std::memory_order_release);
  for (auto& l : loops_) l->resume();
}

void MediaLoops::drain_handoffs() { on_handoff(&async_); }

void MediaLoops::forget(PluginSlot* slot) {
  for (auto& l : loops_) l->forget(slot, bus_);
  std::lock_guard<std::mutex> g(posts_mu_);
  posts_.erase(std::remove_if(posts_.begin(), posts_.end(), [slot](auto& p) { return p.first == slot; }), posts_.end());
  for (auto& p : posts_scratch_)  // control thread: a delivery in progress unloaded slot
    if (p.first == slot) p.first = nullptr;
}

bool MediaLoops::bus_has_subscribers(const PacketBus& bus) { return bus.subscription_count_any_thread() > 0; }

void MediaLoops::on_handoff(uv_async_t* a) {
  auto* self = static_cast<MediaLoops*>(a->data);
  if (!self) return;
  std::vector<MediaLoop::TcpRelease> released;
  for (auto& l : self->loops_) {
    // Connections the loop freed: their proxies leave the handle table (and their listener's count).
    released.clear();
    l->take_tcp_releases(released);
    for (const auto& r : released) tcp_loop_released(*r.host, r.slot, r.handle);
    self->scratch_.clear();
    l->take_handoffs(self->scratch_);
    for (auto& h : self->scratch_) {
      if (!h.buf) {  // a loop released its last local pin of this stream
        self->bus_.settle_id(h.stream_id);
        continue;
      }
      if (h.stream_id) self->bus_.publish(h.stream_id, h.buf);
      else self->bus_.publish(h.stream, h.buf);
      BufferPool::unref(h.buf);  // back to the media loop's pool (remote release)
    }
    if (!self->scratch_.empty()) l->wake();  // let it reclaim them now, not at its next shortage
  }
  self->scratch_.clear();
  {
    std::lock_guard<std::mutex> g(self->posts_mu_);
    self->posts_scratch_.swap(self->posts_);
  }
  for (size_t i = 0; i < self->posts_scratch_.size(); ++i) {
    auto [slot, cookie] = self->posts_scratch_[i];
    if (slot) slot->deliver_post(cookie);  // nullptr: its plugin unloaded meanwhile (forget)
  }
  self->posts_scratch_.clear();
}

jn_status MediaLoops::post_to_control(PluginSlot* slot, uint64_t cookie) {
  {
    std::lock_guard<std::mutex> g(posts_mu_);
    if (posts_.size() >= MediaLoop::kMaxPosts) {
      control_posts_dropped_.fetch_add(1, std::memory_order_relaxed);
      return JN_ERR_LIMIT;
    }
    posts_.emplace_back(slot, cookie);
  }
  if (async_open_) uv_async_send(&async_);
  return JN_OK;
}

}  // namespace junction
