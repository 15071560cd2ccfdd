#include "server/storage/sqlite_admin.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "server/storage/schema.h"
#include "server/storage/sqlite.h"
#include "server/storage/sqlite_repositories.h"
#include "steritrack/sha256.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

using sqlite::Connection;

int64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

absl::StatusOr<std::unique_ptr<Connection>> OpenReader(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                   Connection::Open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI));
  RETURN_IF_ERROR(conn->Exec("PRAGMA busy_timeout = 5000"));
  return conn;
}

// Size and SHA-256 of a file, read in pieces.
absl::Status HashFile(const std::string& path, int64_t* bytes, std::string* sha256) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(StrCat("read ", path, ": ", std::strerror(errno)));
  std::unique_ptr<Sha256Stream> hash = NewSha256Stream();
  std::vector<char> buffer(1 << 20);
  *bytes = 0;
  while (true) {
    const ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      close(fd);
      return absl::UnavailableError(StrCat("read ", path, ": ", std::strerror(error)));
    }
    if (n == 0) break;
    hash->Update(std::string_view(buffer.data(), static_cast<size_t>(n)));
    *bytes += n;
  }
  close(fd);
  *sha256 = hash->HexFinal();
  if (sha256->empty()) return absl::InternalError(StrCat("cannot hash ", path));
  return absl::OkStatus();
}

class SqliteSnapshot final : public DatabaseSnapshot {
 public:
  using DatabaseSnapshot::DatabaseSnapshot;
  ~SqliteSnapshot() override { unlink(path().c_str()); }
};

class SqliteDatabaseAdmin final : public DatabaseAdmin {
 public:
  explicit SqliteDatabaseAdmin(std::string path) : path_(std::move(path)) {}

  absl::StatusOr<DatabaseStatus> Status() override {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenReader(path_));
    DatabaseStatus status;
    status.path = conn->FileName();
    if (status.path.empty()) {
      return absl::FailedPreconditionError("the database is in memory: it has no files");
    }
    RETURN_IF_ERROR(conn->Exec("BEGIN"));
    ASSIGN_OR_RETURN(status.schema_version, sqlite::StoredSchemaVersion(*conn));
    ASSIGN_OR_RETURN(status.audit_head, sqlite::NewAuditLogRepository(conn.get())->ReadHead());
    RETURN_IF_ERROR(conn->Exec("COMMIT"));
    status.build_schema_version = sqlite::Migrations().back().version;
    status.database_bytes = FileSize(status.path);
    status.wal_bytes = FileSize(status.path + "-wal");
    return status;
  }

  absl::StatusOr<std::unique_ptr<DatabaseSnapshot>> TakeSnapshot() override {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenReader(path_));
    const std::string file = conn->FileName();
    if (file.empty()) {
      return absl::FailedPreconditionError(
          "the database is in memory: there is no file to back up");
    }
    // Beside the database: the one directory a hardened service may surely write, and the same
    // file system, with room for a copy as long as the database could grow there.
    std::string dest = file + ".snapshot-XXXXXX";
    const int fd = mkstemp(dest.data());
    if (fd < 0) {
      return absl::UnavailableError(
          StrCat("cannot create a snapshot file beside ", file, ": ", std::strerror(errno)));
    }
    close(fd);
    // Removed on every way out but success, where the snapshot object takes it over.
    struct RemoveOnError {
      ~RemoveOnError() {
        if (!path.empty()) unlink(path.c_str());
      }
      std::string path;
    } remove_on_error{dest};
    // One read transaction for the figures and the copy: they describe the same state.
    RETURN_IF_ERROR(conn->Exec("BEGIN"));
    ASSIGN_OR_RETURN(int version, sqlite::StoredSchemaVersion(*conn));
    ASSIGN_OR_RETURN(AuditHead head, sqlite::NewAuditLogRepository(conn.get())->ReadHead());
    RETURN_IF_ERROR(conn->BackupTo(dest));
    RETURN_IF_ERROR(conn->Exec("COMMIT"));
    int64_t bytes = 0;
    std::string sha256;
    RETURN_IF_ERROR(HashFile(dest, &bytes, &sha256));
    remove_on_error.path.clear();
    return std::make_unique<SqliteSnapshot>(dest, bytes, std::move(sha256), version,
                                            std::move(head));
  }

 private:
  const std::string path_;
};

class SqliteFileLock final : public DatabaseFileLock {
 public:
  explicit SqliteFileLock(std::unique_ptr<Connection> conn) : conn_(std::move(conn)) {}
  ~SqliteFileLock() override { conn_->Exec("ROLLBACK").IgnoreError(); }

 private:
  std::unique_ptr<Connection> conn_;
};

}  // namespace

std::unique_ptr<DatabaseAdmin> NewSqliteDatabaseAdmin(std::string path) {
  return std::make_unique<SqliteDatabaseAdmin>(std::move(path));
}

absl::Status CheckDatabaseIntegrity(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Connection>> conn =
      Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI);
  std::vector<std::string> problems;
  absl::Status status = conn.status();
  if (status.ok()) {
    status = [&]() -> absl::Status {
      // At most 10 problems: enough to say what is wrong.
      ASSIGN_OR_RETURN(auto st, (*conn)->Prepare("PRAGMA integrity_check(10)"));
      while (true) {
        ASSIGN_OR_RETURN(bool row, st->Step());
        if (!row) break;
        problems.push_back(st->Text(0));
      }
      return absl::OkStatus();
    }();
  }
  if (!status.ok()) {
    return absl::FailedPreconditionError(StrCat("integrity check failed: ", status.message()));
  }
  if (problems.size() == 1 && problems.front() == "ok") return absl::OkStatus();
  std::string listed;
  for (const std::string& p : problems) StrAppend(&listed, listed.empty() ? "" : "; ", p);
  return absl::FailedPreconditionError(StrCat("integrity check failed: ", listed));
}

absl::Status CopyDatabaseFile(const std::string& from, const std::string& to) {
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> source,
                   Connection::Open(from, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI));
  return source->BackupTo(to);
}

absl::StatusOr<int> DatabaseFileSchemaVersion(const std::string& path) {
  absl::StatusOr<int> version = [&]() -> absl::StatusOr<int> {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                     Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI));
    return sqlite::StoredSchemaVersion(*conn);
  }();
  if (!version.ok()) {
    return absl::FailedPreconditionError(
        StrCat("cannot read its schema version: ", version.status().message()));
  }
  if (*version == 0) {
    return absl::FailedPreconditionError("not a steritrack database (no schema migrations)");
  }
  return version;
}

absl::StatusOr<std::unique_ptr<DatabaseFileLock>> LockDatabaseFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                   Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI));
  RETURN_IF_ERROR(conn->Exec("PRAGMA busy_timeout = 1000"));
  // Leaving WAL mode needs the only connection to the file: it fails while any other, in any
  // process, has it open, and on success checkpoints the log into the file and removes it.
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto st, conn->Prepare("PRAGMA journal_mode = DELETE"));
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row || st->Text(0) != "delete") {
      return absl::UnavailableError("it stays in WAL mode");
    }
    return absl::OkStatus();
  }();
  // In rollback-journal mode an exclusive transaction keeps every other connection out.
  if (status.ok()) status = conn->Exec("BEGIN EXCLUSIVE");
  if (!status.ok()) {
    return absl::FailedPreconditionError(
        StrCat(path, " is in use by another process (a running steritrackd?): stop it first (",
               status.message(), ")"));
  }
  return std::make_unique<SqliteFileLock>(std::move(conn));
}

}  // namespace steritrack
