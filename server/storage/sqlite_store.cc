#include "server/storage/sqlite_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/storage/schema.h"
#include "server/storage/sqlite.h"
#include "server/storage/sqlite_process.h"
#include "server/storage/sqlite_repositories.h"
#include "server/storage/sqlite_rows.h"
#include "server/storage/wal_vfs.h"
#include "steritrack/audit_chain.h"
#include "steritrack/commit_deferral.h"
#include "steritrack/sha256.h"
#include "steritrack/site.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

// A SQLite database is one site, the default (steritrack/site.h): a call for any other is refused
// here too, not only by the rpc layer's check.
absl::Status RequireDefaultSite() {
  const std::string_view site = SiteScope::CurrentOr(kDefaultSite);
  if (site == kDefaultSite) return absl::OkStatus();
  return SiteNotFound(site, StrCat("this database holds no site '", site,
                                   "': a SQLite database holds only the default site"));
}

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

// One group commit: the write transactions whose savepoints were released into the writer
// connection's open BEGIN IMMEDIATE, and the outcome of its COMMIT.
struct Batch {
  int members = 0;      // released savepoints; written only while the store's writer_mu_ is held
  absl::Status status;  // set once, before `done` is notified
  absl::Notification done;  // committed durably, or failed and rolled back
};

class SqliteReadTransaction final : public ReadTransaction {
 public:
  // A pooled reader connection, returned to `store` at the end.
  SqliteReadTransaction(SqliteStore* store, std::unique_ptr<Connection> conn)
      : store_(store), owned_(std::move(conn)), conn_(owned_.get()), repos_(conn_) {}
  // The in-memory store's only connection. REQUIRES: `mu` is held; released at the end.
  SqliteReadTransaction(absl::Mutex* mu, Connection* conn)
      : store_(nullptr), conn_(conn), shared_mu_(mu), repos_(conn_) {}
  // A write lane's read on the writer's connection (SqliteStore::BeginLaneRead), inside the open
  // `batch`, or in a BEGIN of its own when `batch` is null; `deferral` is the lane's. REQUIRES:
  // the store's writer mutex is held; released at the end.
  SqliteReadTransaction(SqliteStore* store, Connection* writer, std::shared_ptr<Batch> batch,
                        CommitDeferral* deferral)
      : store_(store),
        conn_(writer),
        batch_(std::move(batch)),
        deferral_(deferral),
        repos_(conn_) {}
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
  const std::shared_ptr<Batch> batch_;  // a lane read's: the batch it reads inside, if any
  // Set for a lane read only, which reads on the writer's connection.
  CommitDeferral* const deferral_ = nullptr;
  SqliteRepositories repos_;
};

class SqliteWriteTransaction final : public WriteTransaction {
 public:
  // REQUIRES: the store's writer mutex is held by the caller; this transaction lets it go when
  // committed or destroyed. `batch`: the open batch this transaction runs in, as the savepoint
  // SqliteStore::kSavepointSql; null without group commit (the transaction is the connection's
  // own). After Commit() it must not be used.
  SqliteWriteTransaction(SqliteStore* store, Connection* conn, std::shared_ptr<Batch> batch)
      : store_(store), conn_(conn), batch_(std::move(batch)), repos_(conn) {}
  ~SqliteWriteTransaction() override;

  CartridgeWrites& cartridges() override { return *repos_.cartridges; }
  SterilizationWrites& sterilization() override { return *repos_.sterilization; }
  AuditLogWrites& audit() override { return *repos_.audit; }
  ReportReads& reports() override { return *repos_.reports; }
  AccessWrites& access() override { return *repos_.access; }

  absl::Status Commit() override;

 private:
  SqliteStore* const store_;
  Connection* const conn_;
  const std::shared_ptr<Batch> batch_;
  SqliteRepositories repos_;
  bool done_ = false;
};

// A transaction that ended without Commit() was answered from what it read; if that included
// writes of its batch that were then lost, its answer (a replayed OK, say) may be false, and
// nothing can take it back once it is sent. Stop before it is sent, as PostgreSQL stops on a
// failed fsync: after a restart the database is the truth again.
[[noreturn]] void StopForALostBatch(const absl::Status& status) {
  std::fprintf(stderr,
               "steritrackd: a group commit failed after a transaction had read its writes; "
               "stopping so that no answer rests on a lost write: %s\n",
               std::string(status.message()).c_str());
  std::fflush(stderr);
  std::abort();
}

class SqliteStore final : public Store {
 public:
  // No `readers`: an in-memory database, read through the writer's connection in turn.
  SqliteStore(std::unique_ptr<Connection> writer, std::vector<std::unique_ptr<Connection>> readers,
              const SqliteStoreOptions& options)
      : writer_(std::move(writer)),
        shared_(readers.empty()),
        hooks_(options.writer_hooks),
        reader_hooks_(options.reader_hooks),
        group_commit_(options.group_commit),
        max_batch_(options.max_batch),
        commit_fault_(options.commit_fault),
        readers_(std::move(readers)) {}

  ~SqliteStore() override {
    // Every transaction has ended (they must not outlive the store); a batch still open has no
    // members left to wait for it, but is settled all the same.
    absl::MutexLock lock(&writer_mu_);
    SettleBatchLocked(/*force=*/true);
  }

  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginRead() override {
    RETURN_IF_ERROR(RequireDefaultSite());
    if (shared_) {
      writer_mu_.Lock();
      // The one connection's open batch is committed first: a read sees only durable writes, and
      // BEGIN needs the connection outside a transaction.
      SettleBatchLocked(/*force=*/true);
      if (absl::Status status = writer_->ExecCached("BEGIN"); !status.ok()) {
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
    absl::Status status = conn->ExecCached("BEGIN");
    if (!status.ok()) {
      ReturnReader(std::move(conn));
      return status;
    }
    return std::make_unique<SqliteReadTransaction>(this, std::move(conn));
  }

  // On the write lane, on the writer's connection: inside the batch the lane keeps open between
  // its calls, where the pages it reads are in the writer's cache (a pooled reader's cache is
  // emptied by every commit, and its BEGIN takes a lock of the write-ahead log's index).
  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginLaneRead() override {
    CommitDeferral* deferral = CommitDeferral::OnThisThread();
    if (deferral == nullptr || !CanDefer() || !group_commit_) return BeginRead();
    RETURN_IF_ERROR(RequireDefaultSite());
    RETURN_IF_ERROR(RequireNoLaneRead("a second lane read"));
    writer_mu_.Lock();
    EndRolledBackBatchLocked();
    if (batch_ == nullptr) {
      if (absl::Status status = writer_->ExecCached("BEGIN"); !status.ok()) {
        writer_mu_.Unlock();
        return status;
      }
    }
    lane_read_held_ = true;
    return std::make_unique<SqliteReadTransaction>(this, writer_.get(), batch_, deferral);
  }

  // Ends a read of BeginLaneRead on the writer's connection. One inside a batch with members read
  // their writes: its thread's answer waits until they are durable, as a write's would.
  void EndLaneRead(const std::shared_ptr<Batch>& batch, CommitDeferral* deferral)
      ABSL_UNLOCK_FUNCTION(writer_mu_);

  // The writer's mutex is not reentrant: a thread holding a lane read that began a write, another
  // lane read, or settled a batch would wait for itself for ever. Refused instead.
  static absl::Status RequireNoLaneRead(std::string_view what) {
    if (!lane_read_held_) return absl::OkStatus();
    return absl::InternalError(
        StrCat(what, " on a thread that holds a lane read (steritrack/store.h: BeginLaneRead)"));
  }

  absl::StatusOr<std::unique_ptr<WriteTransaction>> BeginWrite() override {
    RETURN_IF_ERROR(RequireDefaultSite());
    RETURN_IF_ERROR(RequireNoLaneRead("a write"));
    // Counted as waiting before anyone can see it queued (the hook), so that a transaction that
    // sees it queued also sees it waiting, and leaves the batch open for it.
    waiting_writers_.fetch_add(1, std::memory_order_seq_cst);
    QueueChanged(+1);
    writer_mu_.Lock();
    waiting_writers_.fetch_sub(1, std::memory_order_seq_cst);
    EndRolledBackBatchLocked();
    if (group_commit_ && batch_ != nullptr) {
      // The batch is open: this transaction joins it.
      if (absl::Status status = writer_->ExecCached(kSavepointSql); !status.ok()) {
        EndTurnAndUnlock();
        QueueChanged(-1);
        return status;
      }
      return std::make_unique<SqliteWriteTransaction>(this, writer_.get(), batch_);
    }
    // IMMEDIATE takes the database's write lock now, so a transaction never fails half-way
    // because another process wrote first.
    if (absl::Status status = writer_->ExecCached("BEGIN IMMEDIATE"); !status.ok()) {
      writer_mu_.Unlock();
      QueueChanged(-1);
      return status;
    }
    if (!group_commit_) {
      return std::make_unique<SqliteWriteTransaction>(this, writer_.get(), nullptr);
    }
    batch_ = std::make_shared<Batch>();
    if (absl::Status status = writer_->ExecCached(kSavepointSql); !status.ok()) {
      EndTurnAndUnlock();
      QueueChanged(-1);
      return status;
    }
    return std::make_unique<SqliteWriteTransaction>(this, writer_.get(), batch_);
  }

  // Tells the reader hooks what the pooled connection `conn` read since it last did, after its
  // transaction ended.
  void CountPagesRead(Connection& conn) const {
    if (!reader_hooks_.pages_read) return;
    int cached = 0;
    int from_file = 0;
    int unused = 0;
    // resetFlg = 1: SQLite's pager sets these two counters back to zero (its documentation
    // promises only the high-water mark; the storage test holds it to the counts), so the next
    // call reports only its own. Both are only ever SQLITE_OK for an open connection; a
    // failure reports nothing rather than a wrong count.
    if (sqlite3_db_status(conn.raw(), SQLITE_DBSTATUS_CACHE_HIT, &cached, &unused, 1) !=
            SQLITE_OK ||
        sqlite3_db_status(conn.raw(), SQLITE_DBSTATUS_CACHE_MISS, &from_file, &unused, 1) !=
            SQLITE_OK) {
      return;
    }
    reader_hooks_.pages_read(cached, from_file);
  }

  void ReturnReader(std::unique_ptr<Connection> conn) {
    absl::MutexLock lock(&pool_mu_);
    readers_.push_back(std::move(conn));
  }

  // ---- For SqliteWriteTransaction.

  static constexpr const char* kSavepointSql = "SAVEPOINT steritrack_write";
  static constexpr const char* kReleaseSql = "RELEASE steritrack_write";
  static constexpr const char* kRollbackToSql = "ROLLBACK TO steritrack_write";

  void QueueChanged(int delta) const {
    if (hooks_.queue_changed) hooks_.queue_changed(delta);
  }

  // COMMITs the writer connection's transaction, timed for the hooks. On failure the transaction
  // may still be open: the caller rolls it back.
  absl::Status CommitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_) {
    const auto start = std::chrono::steady_clock::now();
    absl::Status status = commit_fault_ ? commit_fault_() : absl::OkStatus();
    if (status.ok()) status = writer_->ExecCached("COMMIT");
    if (hooks_.committed) {
      hooks_.committed(absl::FromChrono(std::chrono::steady_clock::now() - start));
    }
    return status;
  }

  // Ends the turn of the transaction holding the writer: the open batch is committed unless
  // another writer is waiting to join it (and it is not full), then the writer is let go. Every
  // path that lets go of a batched writer comes through here, so a batch is never left open
  // without a writer that will settle it: a waiting writer counts itself before it waits and
  // takes itself off only once it holds the writer.
  void EndTurnAndUnlock() ABSL_UNLOCK_FUNCTION(writer_mu_) {
    SettleBatchLocked(/*force=*/false);
    writer_mu_.Unlock();
  }

  // Rolls the open batch back and fails its members with `status`.
  void AbandonBatchLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_) {
    writer_->Exec("ROLLBACK").IgnoreError();
    FinishBatchLocked(std::move(status));
  }

  // Without group commit: lets the writer go.
  void UnlockWriter() ABSL_UNLOCK_FUNCTION(writer_mu_) { writer_mu_.Unlock(); }

  // Whether a batched commit may be deferred (steritrack/commit_deferral.h): not in memory, where
  // readers share the writer's connection and would read the open batch.
  bool CanDefer() const { return !shared_; }

  // Ends a deferred transaction's turn: the batch stays open for the deferring thread's next
  // writes, unless SQLite already rolled it back (an I/O error) or it is full.
  void LeaveBatchOpenAndUnlock() ABSL_UNLOCK_FUNCTION(writer_mu_) {
    if (sqlite3_get_autocommit(writer_->raw()) != 0 || batch_->members >= max_batch_) {
      SettleBatchLocked(/*force=*/true);
    }
    writer_mu_.Unlock();
  }

  // Commits `batch` if it is still the open one, then waits until it is durable or failed.
  absl::Status SettleDeferred(const std::shared_ptr<Batch>& batch) ABSL_LOCKS_EXCLUDED(writer_mu_) {
    RETURN_IF_ERROR(RequireNoLaneRead("settling a batch"));
    {
      absl::MutexLock lock(&writer_mu_);
      if (batch_ == batch) SettleBatchLocked(/*force=*/true);
    }
    batch->done.WaitForNotification();
    return batch->status;
  }

 private:
  // Ends the open batch, failed, when SQLite rolled its transaction back after an error (an I/O
  // error, a full disk), so that no write joins a batch that is no longer there; its members
  // learn it from their Settle() or their wait.
  void EndRolledBackBatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_) {
    if (batch_ != nullptr && sqlite3_get_autocommit(writer_->raw()) != 0) {
      SettleBatchLocked(/*force=*/true);
    }
  }

  void SettleBatchLocked(bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_) {
    if (batch_ == nullptr) return;
    if (sqlite3_get_autocommit(writer_->raw()) != 0) {
      // SQLite rolled the whole transaction back after an error (an I/O error, a full disk):
      // the batch is gone with it.
      FinishBatchLocked(absl::AbortedError(
          "the write was rolled back with its group commit after a storage error; retry it"));
      return;
    }
    const bool waited_for =
        waiting_writers_.load(std::memory_order_seq_cst) > 0 && batch_->members < max_batch_;
    if (!force && waited_for) return;  // the next writer joins the batch and settles it
    if (batch_->members == 0) {
      // Nothing to keep: no fsync for an empty batch.
      FinishBatchLocked(writer_->Exec("ROLLBACK"));
      return;
    }
    absl::Status status = CommitLocked();
    if (!status.ok() && sqlite3_get_autocommit(writer_->raw()) == 0) {
      writer_->Exec("ROLLBACK").IgnoreError();  // nothing of the batch may remain
    }
    FinishBatchLocked(status);
  }

  void FinishBatchLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_) {
    std::shared_ptr<Batch> batch = std::move(batch_);
    batch_ = nullptr;
    batch->status = std::move(status);
    batch->done.Notify();
  }

  absl::Mutex writer_mu_;
  std::unique_ptr<Connection> writer_;  // used only while writer_mu_ is held
  const bool shared_;                   // in memory: the writer's connection also serves reads
  const SqliteWriterHooks hooks_;
  const SqliteReaderHooks reader_hooks_;
  const bool group_commit_;
  const int max_batch_;
  const std::function<absl::Status()> commit_fault_;
  // With group commit: the batch open on the writer connection (BEGIN IMMEDIATE done), if any.
  std::shared_ptr<Batch> batch_ ABSL_GUARDED_BY(writer_mu_);
  // Writers in BeginWrite that wait for writer_mu_.
  std::atomic<int> waiting_writers_{0};
  // Whether this thread holds a lane read (BeginLaneRead) of a store.
  static inline thread_local bool lane_read_held_ = false;
  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> readers_ ABSL_GUARDED_BY(pool_mu_);
};

// A deferred write's batch (steritrack/commit_deferral.h).
class SqlitePendingCommit final : public PendingCommit {
 public:
  SqlitePendingCommit(SqliteStore* store, std::shared_ptr<Batch> batch)
      : store_(store), batch_(std::move(batch)) {}
  absl::Status Settle() override { return store_->SettleDeferred(batch_); }

 private:
  SqliteStore* const store_;
  const std::shared_ptr<Batch> batch_;
};

absl::Status SqliteWriteTransaction::Commit() {
  if (done_) return absl::FailedPreconditionError("transaction already finished");
  if (batch_ == nullptr) {
    absl::Status status = store_->CommitLocked();
    if (status.ok()) {
      done_ = true;
      store_->UnlockWriter();  // the next writer need not wait for this object's destruction
      store_->QueueChanged(-1);
    }
    return status;  // on failure, the destructor rolls back and lets go
  }
  // Into the batch: from here this transaction's writes stand or fall with it.
  RETURN_IF_ERROR(conn_->ExecCached(SqliteStore::kReleaseSql));  // else the destructor undoes it
  done_ = true;
  ++batch_->members;
  if (CommitDeferral* deferral = CommitDeferral::OnThisThread();
      deferral != nullptr && store_->CanDefer()) {
    // The thread settles the batch itself once it has no more writes to add to it
    // (steritrack/commit_deferral.h): the batch stays open for them.
    store_->LeaveBatchOpenAndUnlock();
    store_->QueueChanged(-1);
    deferral->Add(std::make_shared<SqlitePendingCommit>(store_, batch_));
    return absl::OkStatus();
  }
  store_->EndTurnAndUnlock();
  batch_->done.WaitForNotification();  // the caller is answered only once the batch is durable
  store_->QueueChanged(-1);
  return batch_->status;
}

SqliteWriteTransaction::~SqliteWriteTransaction() {
  if (done_) return;
  if (batch_ == nullptr) {
    // Not committed: nothing of this transaction may remain.
    conn_->Exec("ROLLBACK").IgnoreError();
    store_->UnlockWriter();
    store_->QueueChanged(-1);
    return;
  }
  // Not committed: this transaction's savepoint is undone, its neighbours' writes stay.
  absl::Status undone = conn_->ExecCached(SqliteStore::kRollbackToSql);
  if (undone.ok()) undone = conn_->ExecCached(SqliteStore::kReleaseSql);
  // When SQLite rolled the whole batch back during this turn, this transaction's own statement
  // failed, and that error is its answer.
  bool lost_in_this_turn = sqlite3_get_autocommit(conn_->raw()) != 0;
  if (!undone.ok() && !lost_in_this_turn) {
    // Its writes could not be taken out of the batch: then none of the batch may be committed.
    store_->AbandonBatchLocked(undone);
    lost_in_this_turn = true;
  }
  // Others' writes were in the batch: this transaction may have read them (a stored answer to
  // replay, a unit already opened), so its answer waits until they are durable.
  const bool read_the_batch = batch_->members > 0;
  if (CommitDeferral* deferral = CommitDeferral::OnThisThread();
      deferral != nullptr && store_->CanDefer() && !lost_in_this_turn && read_the_batch) {
    // The deferring thread settles the batch; this transaction's answer waits for it there, and
    // is replaced by the batch's failure if it fails (nothing has been answered yet). A batch
    // without members is not left open: EndTurnAndUnlock below ends it, or leaves it to the
    // writer waiting to join it.
    store_->LeaveBatchOpenAndUnlock();
    store_->QueueChanged(-1);
    deferral->Add(std::make_shared<SqlitePendingCommit>(store_, batch_));
    return;
  }
  store_->EndTurnAndUnlock();
  if (read_the_batch) {
    batch_->done.WaitForNotification();
    if (!batch_->status.ok() && !lost_in_this_turn) StopForALostBatch(batch_->status);
  }
  store_->QueueChanged(-1);
}

void SqliteStore::EndLaneRead(const std::shared_ptr<Batch>& batch, CommitDeferral* deferral) {
  lane_read_held_ = false;
  if (batch == nullptr) {
    // Its own BEGIN: only the snapshot ends (ROLLBACK: nothing was written, and it ends the
    // transaction whatever a statement left behind).
    writer_->ExecCached("ROLLBACK").IgnoreError();
    writer_mu_.Unlock();
    return;
  }
  const bool read_writes = batch->members > 0;
  // A statement of the read may have failed and made SQLite roll the whole batch back (an I/O
  // error, a full disk while spilling the cache).
  EndRolledBackBatchLocked();
  writer_mu_.Unlock();
  if (read_writes) deferral->Add(std::make_shared<SqlitePendingCommit>(this, batch));
}

SqliteReadTransaction::~SqliteReadTransaction() {
  if (deferral_ != nullptr) {
    store_->EndLaneRead(batch_, deferral_);
    return;
  }
  // A read transaction changes nothing; ending it releases the snapshot.
  conn_->ExecCached("COMMIT").IgnoreError();
  if (shared_mu_ != nullptr) {
    shared_mu_->Unlock();
  } else {
    store_->CountPagesRead(*owned_);
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
  // The writer, the only connection that writes the WAL, gathers its WAL writes (wal_vfs.h). Not
  // for a database in memory, which has no WAL, and whose shared cache ("cache=shared") only
  // connections on the same VFS would share.
  RETURN_IF_ERROR(wal_vfs::Register());
  if (sqlite_process::Configure() != SQLITE_OK && options.notice) {
    options.notice(
        "SQLite was started in this process before steritrack could configure it: its memory "
        "statistics stay on, so every allocation SQLite makes takes one process-wide lock "
        "(slower writes; nothing else changes)");
  }
  ASSIGN_OR_RETURN(
      std::unique_ptr<Connection> writer,
      Connection::Open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                       in_memory ? nullptr : wal_vfs::kName));
  if (!in_memory) RETURN_IF_ERROR(writer->Exec("PRAGMA journal_mode = WAL"));
  RETURN_IF_ERROR(Configure(*writer));
  ASSIGN_OR_RETURN(const int current, sqlite::StoredSchemaVersion(*writer));
  RETURN_IF_ERROR(CheckNotNewer(current));
  if (!in_memory && options.backup_before_migration && current > 0 &&
      current < SqliteSchemaVersion()) {
    RETURN_IF_ERROR(BackupBeforeMigration(*writer, current, options));
  }
  RETURN_IF_ERROR(Migrate(*writer));
  // Each write of a group-commit batch runs in its own savepoint, so SQLite keeps a page's content
  // from before the savepoint in a statement journal. That journal goes to a temporary file once
  // it passes 64 KiB, which a batch does: measured, ten times as many pwrite calls as the WAL
  // itself, and the write lane's largest cost. In memory it is a copy. Only the writer, and only
  // after migrating: its transactions are small, while a migration's index build and the readers'
  // sorts for reports may need more temporary space than memory should hold.
  RETURN_IF_ERROR(writer->Exec("PRAGMA temp_store = MEMORY"));
  if (!in_memory) {
    RETURN_IF_ERROR(writer->Exec(
        StrCat("PRAGMA journal_size_limit = ", std::max<int64_t>(-1, options.wal_size_limit_bytes))
            .c_str()));
    RETURN_IF_ERROR(writer->Exec(
        StrCat("PRAGMA wal_autocheckpoint = ", std::max(0, options.wal_autocheckpoint_pages))
            .c_str()));
  }
  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; !in_memory && i < options.readers; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                     Connection::Open(options.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI));
    RETURN_IF_ERROR(Configure(*reader));
    readers.push_back(std::move(reader));
  }
  return std::make_unique<SqliteStore>(std::move(writer), std::move(readers), options);
}

}  // namespace steritrack
