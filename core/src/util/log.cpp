#include "util/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace junction {
namespace {
// The only process-wide state in the core: the level the core's own messages are filtered at.
// An atomic int, so reading it needs no services object on every log call.
std::atomic<int> g_core_level{JN_LOG_INFO};
}  // namespace

const char* log_level_name(int level) {
  switch (level) {
    case JN_LOG_ERROR: return "error";
    case JN_LOG_WARN: return "warn";
    case JN_LOG_INFO: return "info";
    case JN_LOG_DEBUG: return "debug";
    case JN_LOG_TRACE: return "trace";
  }
  return "?";
}

int parse_log_level(std::string_view name) {
  for (int l = JN_LOG_ERROR; l <= JN_LOG_TRACE; ++l)
    if (name == log_level_name(l)) return l;
  return -1;
}

int core_log_level() { return g_core_level.load(std::memory_order_relaxed); }
void set_core_log_level(int level) { g_core_level.store(level, std::memory_order_relaxed); }

void log_write(int level, std::string_view component, std::string_view message) {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t t = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string line = fmt::format("{}.{:03d}Z {:5} [{}] {}\n", ts, ms, log_level_name(level), component, message);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace junction
