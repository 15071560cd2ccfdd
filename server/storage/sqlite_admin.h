// Operations on a SQLite database file as a whole: the DatabaseAdmin a running server offers
// (status, online snapshots), and the checks and the lock `steritrackd restore` needs on a file no
// server may be using. Thread-safe; each call opens connections of its own.
#ifndef STERITRACK_SERVER_STORAGE_SQLITE_ADMIN_H_
#define STERITRACK_SERVER_STORAGE_SQLITE_ADMIN_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "steritrack/database_admin.h"

namespace steritrack {

// The database at `path`, as SqliteStoreOptions::path names it. Snapshots are written beside the
// database file (its directory is the one a hardened service may write) and removed after use.
std::unique_ptr<DatabaseAdmin> NewSqliteDatabaseAdmin(std::string path);

// SQLite's `PRAGMA integrity_check` over the database file at `path`. FAILED_PRECONDITION naming
// the first problems found, or why the file is not a database at all.
absl::Status CheckDatabaseIntegrity(const std::string& path);

// The schema version of the database file at `path`. FAILED_PRECONDITION for a file that is not a
// steritrack database.
absl::StatusOr<int> DatabaseFileSchemaVersion(const std::string& path);

// Copies the database file `from` (with what a write-ahead log beside it holds) into the new file
// `to` with SQLite's backup API, page for page, without judging the pages; `to` is synced.
// DATA_LOSS for a file that is not a database at all.
absl::Status CopyDatabaseFile(const std::string& from, const std::string& to);

// Held while a database file is replaced; released when destroyed.
class DatabaseFileLock {
 public:
  virtual ~DatabaseFileLock() = default;
};

// Takes the database file at `path` for this process alone: its write-ahead log is checkpointed
// into it and removed (it is left in rollback-journal mode, which steritrackd turns back to WAL at
// start), and an exclusive lock is held until the returned object is destroyed, so that no server
// can open it meanwhile. FAILED_PRECONDITION when another connection has it open (a running
// steritrackd holds its connections for as long as it runs).
absl::StatusOr<std::unique_ptr<DatabaseFileLock>> LockDatabaseFile(const std::string& path);

}  // namespace steritrack

#endif  // STERITRACK_SERVER_STORAGE_SQLITE_ADMIN_H_
