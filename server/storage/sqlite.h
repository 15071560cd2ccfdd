// Thin RAII wrappers over the SQLite C API: a connection and a prepared statement.
//
// Used only inside server/storage. SQLite result codes become absl::Status here and nowhere else.
// A Connection is used by one thread at a time (opened with SQLITE_OPEN_NOMUTEX); callers
// serialise.
#ifndef STERITRACK_SERVER_STORAGE_SQLITE_H_
#define STERITRACK_SERVER_STORAGE_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace steritrack::sqlite {

// Converts a SQLite result code to a status; `what` says which operation failed.
absl::Status ToStatus(int rc, sqlite3* db, std::string_view what);

class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  // Resets and clears bindings so that the cached statement is ready for its next use.
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view value);
  Statement& BindNull(int index);
  Statement& BindReal(int index, double value);
  Statement& Bind(int index, std::optional<int64_t> value) {
    return value ? Bind(index, *value) : BindNull(index);
  }

  // Returns true while a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps once, expecting no rows.
  absl::Status Run();

  bool IsNull(int column) const;
  int64_t Int(int column) const;
  double Real(int column) const;
  std::string Text(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  absl::Status bind_status_;
};

class Connection {
 public:
  // `vfs`: the SQLite VFS to open with (null: the default); a URI path's own vfs= wins.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& path, int flags,
                                                          const char* vfs = nullptr);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more SQL statements without parameters (schema, pragmas, BEGIN/COMMIT).
  absl::Status Exec(const char* sql);
  // Exec for one statement run again and again (BEGIN, SAVEPOINT, RELEASE, COMMIT): prepared
  // once and cached as Prepare does, so `sql` must be a string literal. Fails as Exec does.
  absl::Status ExecCached(const char* sql);
  // Returns a cached prepared statement for `sql`, which must be a string literal (the cache is
  // keyed by its address). Only one Statement per SQL text may be alive at a time.
  absl::StatusOr<std::unique_ptr<Statement>> Prepare(const char* sql);

  sqlite3* raw() { return db_; }
  // The main database's absolute file name; empty for an in-memory database.
  std::string FileName();

  // Copies this connection's main database into the file `dest_path` with SQLite's online backup
  // API, in one step: inside this connection's open transaction if it has one (the copy is then
  // exactly what that transaction sees), else in a read transaction of its own. Writers on other
  // connections go on meanwhile. The copy is left in rollback-journal mode (one self-contained
  // file) and synced before this returns.
  absl::Status BackupTo(const std::string& dest_path);

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  // The cached prepared statement for the literal `sql`, prepared on first use.
  absl::StatusOr<sqlite3_stmt*> Cached(const char* sql);
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

}  // namespace steritrack::sqlite

#endif  // STERITRACK_SERVER_STORAGE_SQLITE_H_
