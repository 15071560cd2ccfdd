#include "server/storage/sqlite.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "server/storage/sqlite_process.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack::sqlite {

absl::Status ToStatus(int rc, sqlite3* db, std::string_view what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return absl::OkStatus();
  std::string message = StrCat(what, ": ", db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_CONSTRAINT:
      // The schema's no-replace triggers report a collision as "already exists: ...".
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
          (rc == SQLITE_CONSTRAINT_TRIGGER &&
           message.find("already exists:") != std::string::npos)) {
        return absl::AlreadyExistsError(message);
      }
      return absl::FailedPreconditionError(message);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_IOERR:
      // A failed read, write or sync of the file: SQLite rolled the transaction back (or the
      // caller does), nothing of it stays, and the same call may succeed once the disk recovers.
      return absl::UnavailableError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    default:
      return absl::InternalError(message);
  }
}

Statement::~Statement() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Statement& Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = ToStatus(rc, db_, "bind");
  return *this;
}

Statement& Statement::Bind(int index, std::string_view value) {
  // An empty view may have a null data pointer, which SQLite would bind as NULL, not ''.
  int rc = sqlite3_bind_text(stmt_, index, value.data() != nullptr ? value.data() : "",
                             static_cast<int>(value.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = ToStatus(rc, db_, "bind");
  return *this;
}

Statement& Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = ToStatus(rc, db_, "bind");
  return *this;
}

Statement& Statement::BindReal(int index, double value) {
  int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = ToStatus(rc, db_, "bind");
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_status_.ok()) return bind_status_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return ToStatus(sqlite3_extended_errcode(db_), db_, "step");
}

absl::Status Statement::Run() {
  absl::StatusOr<bool> row = Step();
  if (!row.ok()) return row.status();
  return absl::OkStatus();
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::Real(int column) const { return sqlite3_column_double(stmt_, column); }

std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

namespace {

// Every connection is opened here, with SQLITE_OPEN_NOMUTEX, and with SQLite configured as
// steritrack runs it (sqlite_process.h) if this is the process's first call into SQLite. A refusal
// is the store's to tell (OpenSqliteStore's notice).
int OpenDatabase(const std::string& path, int flags, const char* vfs, sqlite3** db) {
  static_cast<void>(sqlite_process::Configure());
  return sqlite3_open_v2(path.c_str(), db, flags | SQLITE_OPEN_NOMUTEX, vfs);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& path, int flags,
                                                             const char* vfs) {
  sqlite3* db = nullptr;
  int rc = OpenDatabase(path, flags, vfs, &db);
  if (rc != SQLITE_OK) {
    absl::Status status = ToStatus(rc, db, StrCat("open ", path));
    sqlite3_close_v2(db);
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Connection>(new Connection(db));
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

absl::Status Connection::Exec(const char* sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error != nullptr ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    return ToStatus(sqlite3_extended_errcode(db_), nullptr, message);
  }
  return absl::OkStatus();
}

absl::Status Connection::ExecCached(const char* sql) {
  absl::StatusOr<sqlite3_stmt*> cached = Cached(sql);
  if (!cached.ok()) return Exec(sql);  // its refusal, worded as Exec words it
  sqlite3_stmt* stmt = *cached;
  int rc = sqlite3_step(stmt);
  while (rc == SQLITE_ROW) rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(stmt);
    return absl::OkStatus();
  }
  // As Exec reports it: SQLite's message, then the extended code's text.
  const int code = sqlite3_extended_errcode(db_);
  std::string message = sqlite3_errmsg(db_);
  sqlite3_reset(stmt);
  return ToStatus(code, nullptr, message);
}

std::string Connection::FileName() {
  const char* name = sqlite3_db_filename(db_, "main");
  return name != nullptr ? name : "";
}

absl::Status Connection::BackupTo(const std::string& dest_path) {
  sqlite3* dest = nullptr;
  int rc = OpenDatabase(dest_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr, &dest);
  if (rc != SQLITE_OK) {
    absl::Status status = ToStatus(rc, dest, StrCat("open ", dest_path));
    sqlite3_close_v2(dest);
    return status;
  }
  sqlite3_backup* backup = sqlite3_backup_init(dest, "main", db_, "main");
  if (backup == nullptr) {
    absl::Status status = ToStatus(sqlite3_errcode(dest), dest, "backup");
    sqlite3_close_v2(dest);
    return status;
  }
  // All pages in one step: a single read of the source, so the copy is one consistent state.
  rc = sqlite3_backup_step(backup, -1);
  const int finish_rc = sqlite3_backup_finish(backup);
  absl::Status status = rc == SQLITE_DONE
                            ? ToStatus(finish_rc, dest, StrCat("backup to ", dest_path))
                            : ToStatus(rc, dest, StrCat("backup to ", dest_path));
  // The copy carries the source's WAL flag; a copy in rollback-journal mode is one self-contained
  // file, which opens (read-only too) without creating a log and an index beside it.
  if (status.ok()) {
    status = ToStatus(sqlite3_exec(dest, "PRAGMA journal_mode = DELETE", nullptr, nullptr, nullptr),
                      dest, StrCat("journal mode of ", dest_path));
  }
  if (const int close_rc = sqlite3_close_v2(dest); status.ok() && close_rc != SQLITE_OK) {
    status = ToStatus(close_rc, nullptr, StrCat("close ", dest_path));
  }
  if (!status.ok()) return status;
  const int fd = open(dest_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    status = absl::UnavailableError(StrCat("sync ", dest_path, ": ", std::strerror(errno)));
  }
  if (fd >= 0) close(fd);
  return status;
}

absl::StatusOr<sqlite3_stmt*> Connection::Cached(const char* sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return ToStatus(rc, db_, "prepare");
    }
    it = cache_.emplace(sql, stmt).first;
  }
  return it->second;
}

absl::StatusOr<std::unique_ptr<Statement>> Connection::Prepare(const char* sql) {
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Cached(sql));
  return std::make_unique<Statement>(db_, stmt);
}

}  // namespace steritrack::sqlite
