#include "store/kv_store.hpp"

#include <sqlite3.h>

#include <stdexcept>

namespace junction {
namespace {
struct StmtReset {
  sqlite3_stmt* s;
  ~StmtReset() {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
};
void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
}  // namespace

KvStore::KvStore(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    std::string err = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open store " + path + ": " + err);
  }
  const char* schema =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
      "CREATE TABLE IF NOT EXISTS kv (owner TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
      " PRIMARY KEY(owner, key)) WITHOUT ROWID;";
  char* err = nullptr;
  if (sqlite3_exec(db_, schema, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string e = err ? err : "?";
    sqlite3_free(err);
    sqlite3_close(db_);
    throw std::runtime_error("cannot initialise store " + path + ": " + e);
  }
  auto prep = [&](const char* sql, sqlite3_stmt** s) {
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, s, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("store: ") + sqlite3_errmsg(db_));
  };
  prep("INSERT INTO kv(owner,key,value) VALUES(?,?,?) ON CONFLICT(owner,key) DO UPDATE SET value=excluded.value", &put_);
  prep("SELECT value FROM kv WHERE owner=? AND key=?", &get_);
  prep("DELETE FROM kv WHERE owner=? AND key=?", &del_);
  prep("SELECT key, value FROM kv WHERE owner=? AND key>=? ORDER BY key", &scan_);
}

KvStore::~KvStore() {
  for (auto* s : {put_, get_, del_, scan_}) sqlite3_finalize(s);
  sqlite3_close(db_);
}

bool KvStore::put(std::string_view owner, std::string_view key, std::string_view value) {
  StmtReset r{put_};
  bind_text(put_, 1, owner);
  bind_text(put_, 2, key);
  sqlite3_bind_blob(put_, 3, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  return sqlite3_step(put_) == SQLITE_DONE;
}

std::optional<std::string> KvStore::get(std::string_view owner, std::string_view key) const {
  StmtReset r{get_};
  bind_text(get_, 1, owner);
  bind_text(get_, 2, key);
  if (sqlite3_step(get_) != SQLITE_ROW) return std::nullopt;
  const void* p = sqlite3_column_blob(get_, 0);
  int n = sqlite3_column_bytes(get_, 0);
  return std::string(static_cast<const char*>(p ? p : ""), static_cast<size_t>(n));
}

bool KvStore::del(std::string_view owner, std::string_view key) {
  StmtReset r{del_};
  bind_text(del_, 1, owner);
  bind_text(del_, 2, key);
  return sqlite3_step(del_) == SQLITE_DONE && sqlite3_changes(db_) > 0;
}

std::vector<std::pair<std::string, std::string>> KvStore::scan(std::string_view owner, std::string_view prefix) const {
  std::vector<std::pair<std::string, std::string>> out;
  StmtReset r{scan_};
  bind_text(scan_, 1, owner);
  bind_text(scan_, 2, prefix);
  while (sqlite3_step(scan_) == SQLITE_ROW) {
    auto* k = reinterpret_cast<const char*>(sqlite3_column_text(scan_, 0));
    std::string key(k ? k : "", static_cast<size_t>(sqlite3_column_bytes(scan_, 0)));
    if (key.compare(0, prefix.size(), prefix) != 0) break;  // past the prefix range
    const void* p = sqlite3_column_blob(scan_, 1);
    out.emplace_back(std::move(key), std::string(static_cast<const char*>(p ? p : ""), static_cast<size_t>(sqlite3_column_bytes(scan_, 1))));
  }
  return out;
}

std::string KvStore::last_error() const { return sqlite3_errmsg(db_); }

}  // namespace junction
