// The SQLite implementation of steritrack::Store: the embedded default, one file, no server.
//
// WAL mode with synchronous=FULL: a committed write survives a crash or power cut. One writer
// connection (BEGIN IMMEDIATE, serialised by a mutex) and a small pool of reader connections, each
// read a consistent snapshot. The schema is versioned; forward migrations run at open. Thread-safe.
//
// Group commit (SqliteStoreOptions::group_commit): write transactions that queue for the writer
// share one BEGIN IMMEDIATE ... COMMIT, and so one fsync. Each runs in its own SAVEPOINT on the
// writer connection, in turn as before, so one that is refused (destroyed without Commit) undoes
// only itself. Commit() releases the savepoint, lets the next writer in, and returns only once the
// whole batch is durable, with the COMMIT's error if it is not (then nothing of the batch stays).
// A transaction that ends without Commit() while the batch holds others' writes may have read
// them: it too waits for the batch to be durable before its caller is answered. The batch is
// committed by the transaction that ends its turn when no other writer is waiting for the writer
// connection, or when the batch is full; reader connections never see a batch before its COMMIT.
#ifndef STERITRACK_SERVER_STORAGE_SQLITE_STORE_H_
#define STERITRACK_SERVER_STORAGE_SQLITE_STORE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "steritrack/store.h"

namespace steritrack {

// What the single writer does, for whoever watches it (steritrackd's metrics): storage knows no
// metrics library. Each hook is optional and runs on the writing thread, so it must be quick and
// thread-safe.
struct SqliteWriterHooks {
  // +1 when a write transaction asks for the writer, -1 when it lets go (committed, rolled back,
  // or failed to begin): the running sum is the writes waiting for or holding the writer.
  std::function<void(int delta)> queue_changed;
  // How long a COMMIT took, whether it succeeded or not: one per transaction without group
  // commit, one per batch of transactions with it.
  std::function<void(absl::Duration)> committed;
};

// What the reader connections read, for whoever watches it (steritrackd's metrics). Runs on the
// reading thread as each read transaction on a pooled reader ends, so it must be quick and
// thread-safe. An in-memory store reads through its one connection and reports nothing here.
struct SqliteReaderHooks {
  // The pages that read transaction asked SQLite for (a page asked for twice counts twice):
  // found in its connection's own page cache (`cached`), or read from the database file or its
  // write-ahead log (`from_file`: from the kernel's page cache or the disk). From SQLite's own
  // counters (sqlite3_db_status, SQLITE_DBSTATUS_CACHE_HIT and _MISS). Pages read through a
  // memory map would count neither way; the store sets no mmap_size.
  std::function<void(int64_t cached, int64_t from_file)> pages_read;
};

struct SqliteStoreOptions {
  // A file, created if missing, as a path or a "file:" URI (every connection, readers included,
  // opens it as a URI); or an in-memory database: ":memory:" or "file::memory:" (private to this
  // store) or a URI with mode=memory such as "file:name?mode=memory&cache=shared" (other
  // connections of the process may open it, as tests do to tamper with it). An in-memory store has
  // one connection: its reads and writes take turns instead of running side by side, and nothing
  // survives the store.
  std::string path;
  int readers = 4;  // size of the reader pool (file databases)
  SqliteWriterHooks writer_hooks;
  SqliteReaderHooks reader_hooks;
  // Group commit (see above). Off: every write transaction is its own BEGIN IMMEDIATE ... COMMIT.
  bool group_commit = true;
  // With group commit: at most this many transactions in one batch, so that a steady stream of
  // writers cannot keep the first of them waiting for ever.
  int max_batch = 256;
  // Tests: runs just before each COMMIT of a write transaction or batch; an error is taken as the
  // COMMIT's failure (everything it would have committed is rolled back). Empty in production.
  std::function<absl::Status()> commit_fault;
  // Upgrade safety: before migrating a database file of an older schema version (not a new, empty
  // one) it is copied with SQLite's backup API to "<file>.pre-v<N>-<YYYYMMDDTHHMMSSZ>.bak" beside
  // it, N the version it is migrated to; a failed copy stops the open before anything changed.
  bool backup_before_migration = true;
  // Told what happened, in a sentence (the backup's path, the versions); may be empty.
  std::function<void(const std::string&)> notice;
  // The write-ahead log's file, in bytes, once the log restarts (PRAGMA journal_size_limit on the
  // writer). The log cannot restart while a read holds a snapshot in it, so it grows during a long
  // report or a full audit verification under writes; SQLite then reuses the file from its start
  // but, without a limit, never shrinks it, and steritrack_wal_bytes would stay at the largest
  // size ever reached. Files: after the first commit that restarts the log, the file is cut back
  // to this (or to what that commit needs). Above the log's working size (~40 MB: the automatic
  // checkpoint below at 10,000 pages), so a log that keeps up is never cut. -1: never.
  int64_t wal_size_limit_bytes = int64_t{64} << 20;
  // Files: the writer's automatic checkpoint (PRAGMA wal_autocheckpoint) runs inside the COMMIT
  // that takes the write-ahead log past this many pages, on the write lane. Above SQLite's default
  // of 1,000 pages (~4 MB): a tenth as many commits carry a checkpoint, each a longer one, and a
  // page written again and again is copied into the database a tenth as often (the figures:
  // tests/bench/RESULTS.md, "The writer's automatic checkpoint"). 0: never (the log then grows
  // without end; for tests).
  int wal_autocheckpoint_pages = 10000;
};

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options);

// The schema version this build writes. A database with a newer version is refused at open
// (FAILED_PRECONDITION naming both versions).
int SqliteSchemaVersion();

}  // namespace steritrack

#endif  // STERITRACK_SERVER_STORAGE_SQLITE_STORE_H_
