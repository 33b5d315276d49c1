// Logging: one line per event, "LEVEL [component] message", to stderr. The level of each
// component (the core, each plugin) is set separately from conf and the admin API.
#pragma once

#include <junction/abi.h>

#include <fmt/format.h>

#include <string_view>

namespace junction {

const char* log_level_name(int level);
int parse_log_level(std::string_view name);  // -1 when unknown

void log_write(int level, std::string_view component, std::string_view message);

// The core's own level; plugins carry theirs in their slot.
int core_log_level();
void set_core_log_level(int level);

template <typename... Args>
void log_core(int level, fmt::format_string<Args...> f, Args&&... args) {
  if (level > core_log_level()) return;
  log_write(level, "core", fmt::format(f, std::forward<Args>(args)...));
}

#define JN_LOG_ERR(...) ::junction::log_core(JN_LOG_ERROR, __VA_ARGS__)
#define JN_LOG_WRN(...) ::junction::log_core(JN_LOG_WARN, __VA_ARGS__)
#define JN_LOG_INF(...) ::junction::log_core(JN_LOG_INFO, __VA_ARGS__)
#define JN_LOG_DBG(...) ::junction::log_core(JN_LOG_DEBUG, __VA_ARGS__)

}  // namespace junction
