#include "server/storage/sqlite_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "server/storage/schema.h"
#include "server/storage/sqlite.h"
#include "server/storage/sqlite_repositories.h"
#include "server/storage/sqlite_rows.h"
#include "steritrack/audit_chain.h"
#include "steritrack/sha256.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

using sqlite::Connection;
using sqlite::Statement;
using namespace sqlite;  // row mapping helpers (server/storage/sqlite_rows.h)

// Migration 5's step in C++: stores the chain core computes over the entries written before the
// trail was hash-chained (audit_chain::ChainExisting). Runs in the migration's transaction; the
// append-only trigger is lifted only inside it.
absl::Status HashExistingEvents(Connection& conn) {
  std::vector<Event> events;
  {
    static constexpr const char* kSql = "SELECT " EVENT_COLUMNS " FROM events ORDER BY seq";
    ASSIGN_OR_RETURN(auto st, conn.Prepare(kSql));
    ASSIGN_OR_RETURN(events, Collect<Event>(*st, [](const Statement& s) -> absl::StatusOr<Event> {
                       return ReadEventRow(s);
                     }));
  }
  if (events.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(audit_chain::ChainExisting(*NewSha256(), events));
  RETURN_IF_ERROR(conn.Exec("DROP TRIGGER events_are_final"));
  for (const Event& e : events) {
    static constexpr const char* kSql =
        "UPDATE events SET prev_hash = ?2, hash = ?3 WHERE seq = ?1";
    ASSIGN_OR_RETURN(auto st, conn.Prepare(kSql));
    st->Bind(1, e.seq).Bind(2, e.prev_hash).Bind(3, e.hash);
    RETURN_IF_ERROR(st->Run());
  }
  RETURN_IF_ERROR(
      conn.Exec("CREATE TRIGGER events_are_final BEFORE UPDATE ON events "
                "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"));
  return WriteAuditHead(conn, events.back().seq, events.back().hash);
}

// Whether `path` names an in-memory database in any form SQLite accepts (every connection is
// opened with SQLITE_OPEN_URI): ":memory:", "file::memory:" with or without parameters, or a
// "file:" URI whose parameters include mode=memory. Such a store gets one connection: a private
// in-memory database cannot be opened twice, and a shared-cache one takes table locks that fail
// readers at once (SQLITE_LOCKED) instead of giving them a snapshot beside the writer.
bool IsInMemory(std::string_view path) {
  if (path == ":memory:") return true;
  if (!path.starts_with("file:")) return false;
  std::string_view rest = path.substr(5);
  rest = rest.substr(0, rest.find('#'));
  const size_t query = rest.find('?');
  if (rest.substr(0, query) == ":memory:") return true;
  if (query == std::string_view::npos) return false;
  for (std::string_view params = rest.substr(query + 1); !params.empty();) {
    const size_t amp = params.find('&');
    if (params.substr(0, amp) == "mode=memory") return true;
    if (amp == std::string_view::npos) break;
    params.remove_prefix(amp + 1);
  }
  return false;
}

// The migration whose SQL adds the hash chain (schema.cc); its C++ step chains older entries.
constexpr int kAuditChainMigration = 5;

class SqliteStore;

// The repositories of one transaction, over the connection the transaction holds.
struct SqliteRepositories {
  explicit SqliteRepositories(Connection* conn)
      : cartridges(NewCartridgeRepository(conn)),
        sterilization(NewSterilizationRepository(conn)),
        audit(NewAuditLogRepository(conn)),
        reports(NewReportRepository(conn)),
        access(NewAccessRepository(conn)) {}
  std::unique_ptr<CartridgeWrites> cartridges;
  std::unique_ptr<SterilizationWrites> sterilization;
  std::unique_ptr<AuditLogWrites> audit;
  std::unique_ptr<ReportReads> reports;
  std::unique_ptr<AccessWrites> access;
};

class SqliteReadTransaction final : public ReadTransaction {
 public:
  // A pooled reader connection, returned to `store` at the end.
  SqliteReadTransaction(SqliteStore* store, std::unique_ptr<Connection> conn)
      : store_(store), owned_(std::move(conn)), conn_(owned_.get()), repos_(conn_) {}
  // The in-memory store's only connection. REQUIRES: `mu` is held; released at the end.
  SqliteReadTransaction(absl::Mutex* mu, Connection* conn)
      : store_(nullptr), conn_(conn), shared_mu_(mu), repos_(conn_) {}
  ~SqliteReadTransaction() override;

  CartridgeReads& cartridges() override { return *repos_.cartridges; }
  SterilizationReads& sterilization() override { return *repos_.sterilization; }
  AuditLogReads& audit() override { return *repos_.audit; }
  ReportReads& reports() override { return *repos_.reports; }
  AccessReads& access() override { return *repos_.access; }

 private:
  SqliteStore* store_;
  std::unique_ptr<Connection> owned_;
  Connection* conn_;
  absl::Mutex* shared_mu_ = nullptr;
  SqliteRepositories repos_;
};

class SqliteWriteTransaction final : public WriteTransaction {
 public:
  // REQUIRES: `mu` is held by the caller; this transaction releases it when committed or
  // destroyed. After Commit() it must not be used.
  SqliteWriteTransaction(absl::Mutex* mu, Connection* conn, const SqliteWriterHooks* hooks)
      : conn_(conn), mu_(mu), hooks_(hooks), repos_(conn) {}
  ~SqliteWriteTransaction() override {
    if (!done_) {
      // Not committed: nothing of this transaction may remain.
      conn_->Exec("ROLLBACK").IgnoreError();
      Release();
    }
  }

  CartridgeWrites& cartridges() override { return *repos_.cartridges; }
  SterilizationWrites& sterilization() override { return *repos_.sterilization; }
  AuditLogWrites& audit() override { return *repos_.audit; }
  ReportReads& reports() override { return *repos_.reports; }
  AccessWrites& access() override { return *repos_.access; }

  absl::Status Commit() override {
    if (done_) return absl::FailedPreconditionError("transaction already finished");
    const auto start = std::chrono::steady_clock::now();
    absl::Status status = conn_->Exec("COMMIT");
    if (hooks_->committed) {
      hooks_->committed(absl::FromChrono(std::chrono::steady_clock::now() - start));
    }
    if (status.ok()) {
      done_ = true;
      Release();  // the next writer need not wait for this object's destruction
    }
    return status;
  }

 private:
  void Release() {
    mu_->Unlock();
    if (hooks_->queue_changed) hooks_->queue_changed(-1);
  }

  Connection* const conn_;
  absl::Mutex* mu_;
  const SqliteWriterHooks* const hooks_;
  SqliteRepositories repos_;
  bool done_ = false;
};

class SqliteStore final : public Store {
 public:
  // No `readers`: an in-memory database, read through the writer's connection in turn.
  SqliteStore(std::unique_ptr<Connection> writer, std::vector<std::unique_ptr<Connection>> readers,
              SqliteWriterHooks hooks)
      : writer_(std::move(writer)),
        shared_(readers.empty()),
        hooks_(std::move(hooks)),
        readers_(std::move(readers)) {}

  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginRead() override {
    if (shared_) {
      writer_mu_.Lock();
      if (absl::Status status = writer_->Exec("BEGIN"); !status.ok()) {
        writer_mu_.Unlock();
        return status;
      }
      return std::make_unique<SqliteReadTransaction>(&writer_mu_, writer_.get());
    }
    std::unique_ptr<Connection> conn;
    {
      absl::MutexLock lock(&pool_mu_);
      pool_mu_.Await(absl::Condition(
          +[](std::vector<std::unique_ptr<Connection>>* pool) { return !pool->empty(); },
          &readers_));
      conn = std::move(readers_.back());
      readers_.pop_back();
    }
    absl::Status status = conn->Exec("BEGIN");
    if (!status.ok()) {
      ReturnReader(std::move(conn));
      return status;
    }
    return std::make_unique<SqliteReadTransaction>(this, std::move(conn));
  }

  absl::StatusOr<std::unique_ptr<WriteTransaction>> BeginWrite() override {
    if (hooks_.queue_changed) hooks_.queue_changed(+1);
    writer_mu_.Lock();
    // IMMEDIATE takes the database's write lock now, so a transaction never fails half-way
    // because another process wrote first.
    absl::Status status = writer_->Exec("BEGIN IMMEDIATE");
    if (!status.ok()) {
      writer_mu_.Unlock();
      if (hooks_.queue_changed) hooks_.queue_changed(-1);
      return status;
    }
    return std::make_unique<SqliteWriteTransaction>(&writer_mu_, writer_.get(), &hooks_);
  }

  void ReturnReader(std::unique_ptr<Connection> conn) {
    absl::MutexLock lock(&pool_mu_);
    readers_.push_back(std::move(conn));
  }

 private:
  absl::Mutex writer_mu_;
  std::unique_ptr<Connection> writer_;  // used only while writer_mu_ is held
  const bool shared_;                   // in memory: the writer's connection also serves reads
  const SqliteWriterHooks hooks_;
  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> readers_ ABSL_GUARDED_BY(pool_mu_);
};

SqliteReadTransaction::~SqliteReadTransaction() {
  // A read transaction changes nothing; ending it releases the snapshot.
  conn_->Exec("COMMIT").IgnoreError();
  if (shared_mu_ != nullptr) {
    shared_mu_->Unlock();
  } else {
    store_->ReturnReader(std::move(owned_));
  }
}

absl::Status Configure(Connection& conn) {
  RETURN_IF_ERROR(conn.Exec("PRAGMA busy_timeout = 5000"));
  RETURN_IF_ERROR(conn.Exec("PRAGMA foreign_keys = ON"));
  RETURN_IF_ERROR(conn.Exec("PRAGMA synchronous = FULL"));
  return absl::OkStatus();
}

// Refuses a database written by a newer steritrack, whose schema this build cannot know.
absl::Status CheckNotNewer(int current) {
  if (current <= SqliteSchemaVersion()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      StrCat("the database has schema version ", current, ", newer than this build's (",
             SqliteSchemaVersion(), "): it was written by a newer steritrack; upgrade steritrack ",
             "to open it (or restore a backup taken with this version)"));
}

// Copies the database, before migrating it from `current`, to a backup file beside it.
absl::Status BackupBeforeMigration(Connection& conn, int current,
                                   const SqliteStoreOptions& options) {
  const std::string file = conn.FileName();
  const std::string backup =
      StrCat(file, ".pre-v", SqliteSchemaVersion(), "-",
             absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone()), ".bak");
  if (struct stat st; stat(backup.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(StrCat("pre-migration backup ", backup, " exists already"));
  }
  if (absl::Status status = conn.BackupTo(backup); !status.ok()) {
    unlink(backup.c_str());
    return absl::Status(status.code(), StrCat("backup before migrating the schema from v", current,
                                              " failed, nothing migrated: ", status.message()));
  }
  if (options.notice) {
    options.notice(StrCat("database ", file, " has schema v", current, ": backed up to ", backup,
                          " before migrating it to v", SqliteSchemaVersion()));
  }
  return absl::OkStatus();
}

absl::Status Migrate(Connection& conn) {
  RETURN_IF_ERROR(
      conn.Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at INTEGER NOT NULL)"));
  ASSIGN_OR_RETURN(const int current, sqlite::StoredSchemaVersion(conn));
  RETURN_IF_ERROR(CheckNotNewer(current));
  for (const sqlite::Migration& m : sqlite::Migrations()) {
    if (m.version <= current) continue;
    RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
    absl::Status status = conn.Exec(m.sql);
    if (status.ok() && m.version == kAuditChainMigration) status = HashExistingEvents(conn);
    if (status.ok()) {
      ASSIGN_OR_RETURN(auto st, conn.Prepare("INSERT INTO schema_migrations VALUES (?1, ?2, ?3)"));
      st->Bind(1, int64_t{m.version}).Bind(2, m.description).Bind(3, Micros(absl::Now()));
      status = st->Run();
    }
    if (status.ok()) status = conn.Exec("COMMIT");
    if (!status.ok()) {
      conn.Exec("ROLLBACK").IgnoreError();
      return absl::Status(status.code(), StrCat("migration ", m.version,
                                                " failed: ", std::string(status.message())));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int SqliteSchemaVersion() { return sqlite::Migrations().back().version; }

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("database path is empty");
  if (options.readers < 1) return absl::InvalidArgumentError("at least one reader connection");
  const bool in_memory = IsInMemory(options.path);
  ASSIGN_OR_RETURN(
      std::unique_ptr<Connection> writer,
      Connection::Open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI));
  if (!in_memory) RETURN_IF_ERROR(writer->Exec("PRAGMA journal_mode = WAL"));
  RETURN_IF_ERROR(Configure(*writer));
  ASSIGN_OR_RETURN(const int current, sqlite::StoredSchemaVersion(*writer));
  RETURN_IF_ERROR(CheckNotNewer(current));
  if (!in_memory && options.backup_before_migration && current > 0 &&
      current < SqliteSchemaVersion()) {
    RETURN_IF_ERROR(BackupBeforeMigration(*writer, current, options));
  }
  RETURN_IF_ERROR(Migrate(*writer));
  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; !in_memory && i < options.readers; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                     Connection::Open(options.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI));
    RETURN_IF_ERROR(Configure(*reader));
    readers.push_back(std::move(reader));
  }
  return std::make_unique<SqliteStore>(std::move(writer), std::move(readers), options.writer_hooks);
}

}  // namespace steritrack
