// worker-test: a test plugin for the core's worker pool (ABI 2.1 work_submit / work_cancel /
// on_work_done). Every job is recorded: the thread that submitted it, the thread its run() ran on,
// the thread its on_work_done ran on, its status, and how many completions it got (must be 1).
// A job may block in run() on a gate the plugin controls, so tests can hold jobs running or queued.
//
// Admin: "submit" {"n", "block", "loop"}: loop 0 submits n jobs from this admin hook (control
//   loop) and replies with their statuses and handles; loop k >= 1 posts to media loop k, whose
//   on_post submits them there (statuses then in "stats".media_submits).
//   "release" opens the gate (blocked jobs return), "close" closes it again,
//   "cancel" {"handle"} -> work_cancel's status, "stats" -> counts + every job's record.
// Conf: fail_start = true makes start() submit one blocking job and fail (a failed load drains it).
// State (hot reload): the counts only, saved after the core drained the jobs, so a reload that
// waited shows the old instance's completions in the new one's counts.
#include <junction/plugin.hpp>

#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>

namespace {
using junction::sdk::Host;
using junction::sdk::to_sv;
using nlohmann::json;

long tid() { return syscall(SYS_gettid); }
constexpr uint64_t kSubmitPost = 1ull << 40;  // | block << 32 | n

class WorkerTest;
struct Job {
  WorkerTest* self = nullptr;
  uint64_t id = 0;
  bool block = false;
  uint32_t loop = 0;
  jn_handle handle = 0;
  jn_status submit_status = 1;
  long submit_tid = 0, run_tid = 0, done_tid = 0;
  jn_status done_status = 1;
  int completions = 0;
};

class WorkerTest : public junction::sdk::Plugin {
 public:
  WorkerTest(Host h, const jn_create_args&) : Plugin(h) { fail_start_ = h.config().value("fail_start", false); }

  // fail_start = true: submits one blocking job, then fails, so the core must drain it.
  jn_status start() override {
    if (!fail_start_) return JN_OK;
    std::unique_lock lk(mu_);
    submit(1, true, 0, nullptr, nullptr);
    // Running, not queued, when the core sees the failure (a test plugin may block its hook).
    if (jobs_.begin()->second.submit_status == JN_OK) cv_.wait(lk, [&] { return started_ >= 1; });
    host().set_error("fail_start is set (one blocking job submitted)");
    return JN_ERR_STATE;
  }

  static void run(void* arg) {
    auto* job = static_cast<Job*>(arg);
    WorkerTest* self = job->self;
    std::unique_lock lk(self->mu_);
    job->run_tid = tid();
    ++self->started_;
    self->cv_.notify_all();  // start() of a fail_start instance waits for this
    self->cv_.wait(lk, [&] { return !job->block || self->gate_open_; });
  }

  // Caller holds mu_. Jobs live in a std::map: stable addresses for run()'s arg.
  void submit(uint32_t n, bool block, uint32_t loop, json* statuses, json* handles) {
    for (uint32_t i = 0; i < n; ++i) {
      Job& job = jobs_[next_id_];
      job.self = this;
      job.id = next_id_++;
      job.block = block;
      job.loop = loop;
      job.submit_tid = tid();
      job.submit_status = host().work_submit(&WorkerTest::run, &job, job.id, &job.handle);
      if (job.submit_status == JN_OK) ++accepted_;
      else ++refused_;
      if (statuses) statuses->push_back(job.submit_status);
      if (handles) handles->push_back(job.handle);
    }
  }

  void on_post(uint64_t cookie) override {
    if (!(cookie & kSubmitPost)) return;
    std::lock_guard lk(mu_);
    media_tid_ = tid();
    submit(static_cast<uint32_t>(cookie & 0xffffffffu), (cookie >> 32) & 1, 1, &media_submits_, nullptr);
  }

  void on_work_done(jn_handle work, uint64_t cookie, jn_status status) override {
    std::lock_guard lk(mu_);
    auto it = jobs_.find(cookie);
    if (it == jobs_.end()) {
      ++unknown_;
      return;
    }
    Job& job = it->second;
    if (job.handle != work) ++wrong_handle_;
    job.done_tid = tid();
    job.done_status = status;
    ++job.completions;
    if (status == JN_OK) ++done_ok_;
    else if (status == JN_ERR_CANCELLED) ++done_cancelled_;
    else ++done_other_;
  }

  void on_admin(const jn_admin_request& r) override {
    std::string verb(to_sv(r.verb));
    json j = json::parse(to_sv(r.body), nullptr, false);
    if (!j.is_object()) j = json::object();
    std::unique_lock lk(mu_);
    control_tid_ = tid();
    if (verb == "submit") {
      uint32_t n = j.value("n", 1u), loop = j.value("loop", 0u);
      bool block = j.value("block", false);
      if (loop == 0) {
        json statuses = json::array(), handles = json::array();
        submit(n, block, 0, &statuses, &handles);
        host().admin_reply(r.reply, 200, json{{"statuses", statuses}, {"handles", handles}}.dump());
      } else {
        jn_status st = host().post(loop, kSubmitPost | (block ? 1ull << 32 : 0) | n);
        host().admin_reply(r.reply, 200, json{{"post", st}}.dump());
      }
    } else if (verb == "release" || verb == "close") {
      gate_open_ = verb == "release";
      lk.unlock();
      cv_.notify_all();
      host().admin_reply(r.reply, 200, "{}");
    } else if (verb == "cancel") {
      jn_status st = host().work_cancel(j.value("handle", jn_handle{0}));
      host().admin_reply(r.reply, 200, json{{"status", st}}.dump());
    } else if (verb == "stats") {
      json jobs = json::array();
      for (auto& [id, job] : jobs_)
        jobs.push_back({{"id", id}, {"loop", job.loop}, {"submit_status", job.submit_status}, {"handle", job.handle},
                        {"submit_tid", job.submit_tid}, {"run_tid", job.run_tid}, {"done_tid", job.done_tid},
                        {"done_status", job.done_status}, {"completions", job.completions}});
      host().admin_reply(r.reply, 200,
                         json{{"started", started_}, {"accepted", accepted_}, {"refused", refused_}, {"done_ok", done_ok_},
                              {"done_cancelled", done_cancelled_}, {"done_other", done_other_}, {"unknown", unknown_},
                              {"wrong_handle", wrong_handle_}, {"control_tid", control_tid_}, {"media_tid", media_tid_},
                              {"media_submits", media_submits_}, {"generation", generation_}, {"saved_in_flight", saved_in_flight_}, {"jobs", jobs}}
                             .dump());
    } else {
      host().admin_reply(r.reply, 404, R"({"error":"submit, release, close, cancel, stats"})");
    }
  }

  jn_status save_state(std::string& out) override {
    std::lock_guard lk(mu_);
    out = json{{"done_ok", done_ok_}, {"done_cancelled", done_cancelled_}, {"generation", generation_},
               {"in_flight", accepted_ - done_ok_ - done_cancelled_ - done_other_}}.dump();
    return JN_OK;
  }
  jn_status restore_state(uint32_t, std::string_view data) override {
    json j = json::parse(data, nullptr, false);
    if (!j.is_object()) return JN_ERR_INVALID;
    done_ok_ = j.value("done_ok", 0ull);
    done_cancelled_ = j.value("done_cancelled", 0ull);
    generation_ = j.value("generation", 0) + 1;
    saved_in_flight_ = j.value("in_flight", 0ull);
    return JN_OK;
  }

 private:
  std::mutex mu_;  // admin (control), on_post/on_work_done (media loop), run() (workers)
  std::condition_variable cv_;
  bool gate_open_ = false;
  bool fail_start_ = false;
  std::map<uint64_t, Job> jobs_;
  uint64_t next_id_ = 1;
  uint64_t started_ = 0, accepted_ = 0, refused_ = 0, done_ok_ = 0, done_cancelled_ = 0, done_other_ = 0, unknown_ = 0,
           wrong_handle_ = 0, saved_in_flight_ = 0;
  long control_tid_ = 0, media_tid_ = 0;
  json media_submits_ = json::array();
  int generation_ = 0;
};

}  // namespace

JUNCTION_PLUGIN(WorkerTest, "worker-test", "1.0.0", "test plugin: the core's worker pool", "", 1, 1)
