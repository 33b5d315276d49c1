// Key-value store persisted in SQLite (the embedded default). Keys are namespaced by owner
// (a plugin's name, or "core"), so plugins never see each other's keys. Writes are synchronous
// and small (control-plane data: bindings, tokens, devices), in WAL mode.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace junction {

class KvStore {
 public:
  // path ":memory:" for tests. Throws std::runtime_error when the file cannot be opened.
  explicit KvStore(const std::string& path);
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  bool put(std::string_view owner, std::string_view key, std::string_view value);
  std::optional<std::string> get(std::string_view owner, std::string_view key) const;
  bool del(std::string_view owner, std::string_view key);  // true if a row was removed
  // Keys starting with prefix, in key order.
  std::vector<std::pair<std::string, std::string>> scan(std::string_view owner, std::string_view prefix) const;
  std::string last_error() const;

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* put_ = nullptr;
  sqlite3_stmt* get_ = nullptr;
  sqlite3_stmt* del_ = nullptr;
  sqlite3_stmt* scan_ = nullptr;
};

}  // namespace junction
