// The VFS that gathers a WAL's writes (server/storage/wal_vfs.h), on real files through raw SQLite:
// what it saves, and that nothing reaches another connection, or the connection itself, out of
// order or late: commits seen by a reader with no sync at all, a transaction reading back the
// pages it spilled, and a write that fails when the gathered writes go out (with the fault VFS).
#include "server/storage/wal_vfs.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "steritrack/strings.h"
#ifdef STERITRACK_WAL_VFS_FAULT_TESTS
#include "server/storage/fault_vfs.h"
#endif

namespace steritrack {
namespace {

// One raw connection; every statement must succeed unless Try is used.
class Db {
 public:
  Db(const std::string& path, const char* vfs,
     int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, flags, vfs), SQLITE_OK) << path;
    sqlite3_extended_result_codes(db_, 1);
  }
  ~Db() { sqlite3_close_v2(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  int Try(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  void Exec(const std::string& sql) {
    ASSERT_EQ(Try(sql), SQLITE_OK) << sql << ": " << sqlite3_errmsg(db_);
  }
  // The first column of the first row, as text ("" for none); `rc` gets the step's result.
  std::string One(const std::string& sql, int* rc = nullptr) {
    sqlite3_stmt* stmt = nullptr;
    int step = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    std::string value;
    if (step == SQLITE_OK) {
      step = sqlite3_step(stmt);
      if (step == SQLITE_ROW) {
        const unsigned char* text = sqlite3_column_text(stmt, 0);
        if (text != nullptr) value = reinterpret_cast<const char*>(text);
      }
    }
    sqlite3_finalize(stmt);
    if (rc != nullptr) *rc = step;
    return value;
  }
  sqlite3* get() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

class WalVfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(wal_vfs::Register().ok());
    char tmpl[] = "/tmp/wal-vfs-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/wal.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string path_;
};

TEST_F(WalVfsTest, GathersACommitsWalWritesIntoOneCall) {
  Db db(path_, wal_vfs::kName);
  db.Exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
      "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, v BLOB); CREATE INDEX t_k ON t (k)");
  const wal_vfs::Counts before = wal_vfs::GetCounts();
  db.Exec("BEGIN IMMEDIATE");
  for (int i = 0; i < 100; ++i) {
    db.Exec(StrCat("INSERT INTO t (k, v) VALUES ('key-", (i * 7919) % 100, "-", i,
                   "', zeroblob(400))"));
  }
  db.Exec("COMMIT");
  const wal_vfs::Counts after = wal_vfs::GetCounts();
  // ~15 pages, each a frame header and a page written by SQLite: ~30 writes, one call out.
  EXPECT_GE(after.writes_in - before.writes_in, 20);
  EXPECT_EQ(after.writes_out - before.writes_out, 1);
  EXPECT_EQ(after.commits - before.commits, 1);

  // What was gathered is in the file: another connection, on SQLite's own VFS, reads it all.
  Db other(path_, nullptr);
  EXPECT_EQ(other.One("SELECT count(*) FROM t"), "100");
  EXPECT_EQ(other.One("PRAGMA integrity_check"), "ok");
}

// With synchronous = OFF no commit syncs the WAL, so nothing but the commit frame tells the VFS a
// commit is done. Another connection must find every commit's frames in the file all the same.
TEST_F(WalVfsTest, AnotherConnectionReadsEveryCommitWithoutASync) {
  Db writer(path_, wal_vfs::kName);
  writer.Exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;"
      "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  Db reader(path_, nullptr, SQLITE_OPEN_READONLY);
  for (int i = 1; i <= 200; ++i) {
    const std::string value = StrCat("value ", i, " ", std::string(300, 'x'));
    writer.Exec(StrCat("INSERT INTO t (v) VALUES ('", value, "')"));
    int rc = 0;
    const std::string seen = reader.One("SELECT count(*) || ':' || max(id) FROM t", &rc);
    ASSERT_EQ(rc, SQLITE_ROW) << "after commit " << i << ": " << sqlite3_errmsg(reader.get());
    ASSERT_EQ(seen, StrCat(i, ":", i));
    ASSERT_EQ(reader.One(StrCat("SELECT v FROM t WHERE id = ", i)), value);
  }
  EXPECT_EQ(reader.One("PRAGMA integrity_check"), "ok");
}

// A writer that opens a log still holding frames (another connection kept it) starts appending
// past what it has written itself; a one-page commit there (its first frame is its commit frame)
// must still be in the file before another connection reads it, with no sync.
TEST_F(WalVfsTest, AWriterReopeningALogWithFramesCommitsIntoTheFile) {
  Db reader(path_, nullptr);
  {
    Db first(path_, wal_vfs::kName);
    first.Exec(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;"
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);"
        "INSERT INTO t (v) VALUES ('one')");
    EXPECT_EQ(reader.One("SELECT count(*) FROM t"), "1");
  }
  Db writer(path_, wal_vfs::kName);
  writer.Exec("PRAGMA synchronous = OFF");
  for (int i = 2; i <= 20; ++i) {
    writer.Exec(StrCat("UPDATE t SET v = 'v", i, "' WHERE id = 1"));
    int rc = 0;
    ASSERT_EQ(reader.One("SELECT v FROM t WHERE id = 1", &rc), StrCat("v", i))
        << sqlite3_errmsg(reader.get());
    ASSERT_EQ(rc, SQLITE_ROW);
  }
  EXPECT_EQ(reader.One("PRAGMA integrity_check"), "ok");
}

// A transaction larger than its cache writes pages to the WAL before it commits and reads them
// back from there: the held writes must be in the file by then.
TEST_F(WalVfsTest, ATransactionReadsBackThePagesItSpilled) {
  Db db(path_, wal_vfs::kName);
  db.Exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = 10;"
      "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL, n INTEGER NOT NULL);"
      "CREATE INDEX t_k ON t (k)");
  db.Exec("BEGIN IMMEDIATE");
  int64_t sum = 0;
  for (int i = 0; i < 3000; ++i) {
    // Keys spread over the index, so its pages are written, spilled and read back again.
    db.Exec(StrCat("INSERT INTO t (k, n) VALUES ('", (i * 7919) % 3001, "-", std::string(150, 'k'),
                   "', ", i, ")"));
    sum += i;
  }
  EXPECT_EQ(db.One("SELECT sum(n) FROM t"), StrCat(sum));
  EXPECT_EQ(db.One("SELECT count(*) FROM t INDEXED BY t_k WHERE k > ''"), "3000");
  db.Exec("COMMIT");
  EXPECT_EQ(db.One("PRAGMA integrity_check"), "ok");
  Db other(path_, nullptr);
  EXPECT_EQ(other.One("SELECT sum(n) FROM t"), StrCat(sum));
  EXPECT_EQ(other.One("PRAGMA integrity_check"), "ok");
}

// With synchronous = NORMAL a commit is not synced, only written: a process that dies after it
// loses nothing (SQLite recovers the log from the file at the next open). A transaction that spills
// pages and changes them again has SQLite rewrite them in place and rewrite the frames' checksums
// after the commit frame: those writes too must be in the file by the time the commit returns.
// A copy of the database and its log taken then (without the WAL index, as after a crash) must
// recover the whole commit.
TEST_F(WalVfsTest, ACommitWithoutASyncIsWhollyInTheFileWhenItReturns) {
  Db db(path_, wal_vfs::kName);
  db.Exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = 10;"
      "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL, pad TEXT NOT NULL);"
      "CREATE INDEX t_k ON t (k)");
  for (int round = 1; round <= 3; ++round) {
    db.Exec("BEGIN IMMEDIATE");
    for (int i = 0; i < 1000; ++i) {
      db.Exec(StrCat("INSERT INTO t (k, pad) VALUES ('", (i * 7919) % 1009, "-", round, "-",
                     std::string(100, 'k'), "', 'a')"));
    }
    // Pages spilled above are changed again: rewritten in place in the log.
    db.Exec(StrCat("UPDATE t SET pad = '", std::string(60, 'b'), "' WHERE id % 3 = 0"));
    db.Exec("COMMIT");

    const std::string copy = StrCat(dir_, "/copy-", round, ".db");
    std::filesystem::copy_file(path_, copy);
    std::filesystem::copy_file(StrCat(path_, "-wal"), StrCat(copy, "-wal"));
    Db recovered(copy, nullptr);
    EXPECT_EQ(recovered.One("SELECT count(*) FROM t"), StrCat(round * 1000)) << "round " << round;
    EXPECT_EQ(recovered.One("SELECT count(*) FROM t WHERE length(pad) = 60"),
              db.One("SELECT count(*) FROM t WHERE length(pad) = 60"));
    EXPECT_EQ(recovered.One("PRAGMA integrity_check"), "ok");
  }
}

// Without power-safe overwrite (psow=0) a commit with synchronous = FULL pads the log to the next
// sector boundary with copies of its commit frame, and SQLite splits the copy that crosses the
// boundary into two writes with a sync between them. With 1 KiB pages and 4 KiB sectors, frame
// 468 of a log (and every 512th after it) crosses a boundary 24 bytes before its page ends: that
// 24-byte slice of a page must not pass for a frame header (its bytes 4-7 are zero here, as a
// non-commit header's would be), or the VFS would hold it while SQLite publishes the padding
// frame, and another connection reads a page whose end is not in the file. Each commit is read
// back at once by a connection on SQLite's own VFS.
TEST_F(WalVfsTest, ASectorPaddingFramesSliceIsNotTakenForAFrameHeader) {
  Db writer(StrCat("file:", path_, "?psow=0"), wal_vfs::kName);
  writer.Exec(
      "PRAGMA page_size = 1024; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
      "PRAGMA wal_autocheckpoint = 0;"
      "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
  Db reader(path_, nullptr, SQLITE_OPEN_READONLY);
  for (int i = 1; i <= 600; ++i) {
    // A row ends in zeros, and so does the leaf page holding it at its end.
    writer.Exec(StrCat("INSERT INTO t (v) VALUES (zeroblob(", 40 + i % 50, "))"));
    int rc = 0;
    const std::string seen = reader.One("SELECT count(*) || ':' || sum(length(v)) FROM t", &rc);
    ASSERT_EQ(rc, SQLITE_ROW) << "after commit " << i << ": " << sqlite3_errmsg(reader.get());
    ASSERT_EQ(seen.substr(0, seen.find(':')), StrCat(i)) << "after commit " << i;
  }
  EXPECT_GE(writer.One("PRAGMA wal_checkpoint(PASSIVE)").size(), 1u);
  // The log went past frame 980, so frames 468 and 980 were written.
  sqlite3_int64 size = 0;
  ASSERT_NO_THROW(size = static_cast<sqlite3_int64>(std::filesystem::file_size(path_ + "-wal")));
  EXPECT_GT(size, 32 + 981 * (24 + 1024));
  EXPECT_EQ(reader.One("PRAGMA integrity_check"), "ok");
}

// The same slice, met by a writer that appends to a log it neither started nor recovered (another
// connection keeps the log, with 466 frames): its first commit is two frames (the database's
// header page and the row's), and the copy of it that pads the log to the sector boundary is frame
// 468, the one split 24 bytes before its page ends. The writer never wrote the log's header, so it
// must read the page size from the file.
TEST_F(WalVfsTest, AWriterAppendingToALogItDidNotStartKnowsWhereFramesStart) {
  Db keeper(path_, nullptr);
  {
    Db first(path_, nullptr);
    first.Exec(
        "PRAGMA page_size = 1024; PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;"
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL);"
        "INSERT INTO t (v) VALUES (zeroblob(100))");
    ASSERT_EQ(keeper.One("SELECT count(*) FROM t"), "1");
    const auto frames = [&] {
      return (std::filesystem::file_size(path_ + "-wal") - 32) / (24 + 1024);
    };
    // One frame each (a change of the row's first byte; an update that changes nothing writes
    // nothing).
    for (int i = 0; frames() < 466; ++i) {
      first.Exec(StrCat("UPDATE t SET v = x'0", i % 2, "' || zeroblob(99) WHERE id = 1"));
    }
    ASSERT_EQ(frames(), 466u);
  }
  Db writer(StrCat("file:", path_, "?psow=0"), wal_vfs::kName);
  writer.Exec("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0");
  // Frames 468, 980 and 1492 are each met by a commit's padding, split 24 bytes before its end.
  for (int i = 1; i <= 400; ++i) {
    writer.Exec(StrCat("UPDATE t SET v = zeroblob(", 100 - i % 2, ") WHERE id = 1"));
    int rc = 0;
    ASSERT_EQ(keeper.One("SELECT length(v) FROM t WHERE id = 1", &rc), StrCat(100 - i % 2))
        << "after commit " << i << ": " << sqlite3_errmsg(keeper.get());
    ASSERT_EQ(rc, SQLITE_ROW);
  }
  EXPECT_EQ(keeper.One("PRAGMA integrity_check"), "ok");
}

#ifdef STERITRACK_WAL_VFS_FAULT_TESTS
// The gathered writes reach a disk that fails: the commit fails (its caller is told), what was
// committed before stays, and once the disk is back the next commit goes through.
TEST_F(WalVfsTest, AWriteThatFailsWhenTheWritesGoOutFailsTheCommit) {
  ASSERT_TRUE(fault_vfs::Register().ok());
  Db db(fault_vfs::UriFor(path_), nullptr);
  db.Exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
      "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  db.Exec("INSERT INTO t (v) VALUES ('kept')");

  const fault_vfs::Counts before = fault_vfs::GetCounts();
  fault_vfs::Arm(fault_vfs::Fault::kWriteError, 0);
  db.Exec("BEGIN IMMEDIATE");
  db.Exec(StrCat("INSERT INTO t (v) VALUES ('", std::string(5000, 'y'), "')"));
  const int rc = db.Try("COMMIT");
  fault_vfs::Disarm();
  EXPECT_EQ(rc & 0xff, SQLITE_IOERR) << sqlite3_errmsg(db.get());
  db.Try("ROLLBACK");
  // One write reached the disk for the whole commit (and failed): SQLite wrote ~6.
  EXPECT_EQ(fault_vfs::GetCounts().writes - before.writes, 1);
  EXPECT_EQ(fault_vfs::GetCounts().injected - before.injected, 1);

  EXPECT_EQ(db.One("SELECT group_concat(v) FROM t"), "kept");
  db.Exec("INSERT INTO t (v) VALUES ('after')");
  Db other(path_, nullptr);
  EXPECT_EQ(other.One("SELECT group_concat(v) FROM t"), "kept,after");
  EXPECT_EQ(other.One("PRAGMA integrity_check"), "ok");
}

// A commit whose gathered writes fail, in a log SQLite had started again over older frames, and
// then the WAL index lost (zeroed here, as when a process dies mid-update): the same connection
// recovers the log from the file, reading every frame up to the file's end, across the range that
// failed. Recovery takes only frames whose salts and checksums hold, so the connection reads on,
// with what was committed before, and commits again.
TEST_F(WalVfsTest, AConnectionRecoversTheLogAfterACommitsWritesFailed) {
  ASSERT_TRUE(fault_vfs::Register().ok());
  Db db(fault_vfs::UriFor(path_), nullptr);
  db.Exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;"
      "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  for (int i = 0; i < 50; ++i) {
    db.Exec(StrCat("INSERT INTO t (v) VALUES ('", std::string(2000, 'a'), "')"));
  }
  // Every frame checkpointed: the next write starts the log again at its header.
  db.Exec("PRAGMA wal_checkpoint(PASSIVE)");

  // The log's new header and its sync reach the disk; the frames after it fail.
  fault_vfs::Arm(fault_vfs::Fault::kWriteError, 1);
  const int rc = db.Try(StrCat("INSERT INTO t (v) VALUES ('", std::string(5000, 'y'), "')"));
  fault_vfs::Disarm();
  ASSERT_EQ(rc & 0xff, SQLITE_IOERR) << sqlite3_errmsg(db.get());

  {
    std::FILE* shm = std::fopen((path_ + "-shm").c_str(), "r+b");
    ASSERT_NE(shm, nullptr);
    const std::string zeros(136, '\0');  // both copies of the index's header and the checkpoint's
    ASSERT_EQ(std::fwrite(zeros.data(), 1, zeros.size(), shm), zeros.size());
    std::fclose(shm);
  }
  int read = 0;
  EXPECT_EQ(db.One("SELECT count(*) FROM t", &read), "50") << sqlite3_errmsg(db.get());
  EXPECT_EQ(read, SQLITE_ROW);
  db.Exec("INSERT INTO t (v) VALUES ('after')");
  Db other(path_, nullptr);
  EXPECT_EQ(other.One("SELECT count(*) FROM t"), "51");
  EXPECT_EQ(other.One("PRAGMA integrity_check"), "ok");
}

// A full disk, for one write, met while a transaction spills pages to the log, reported by
// whichever operation writes the held pages out (a write, or a read of a spilled page). Each
// statement runs in a savepoint of its own, as the store's writes do. Whatever SQLite then does, it
// never commits without what the disk refused: a commit that succeeds holds every insert answered
// OK, and the file stays intact for another connection and a checkpoint.
TEST_F(WalVfsTest, AFullDiskWhileATransactionSpillsNeverCommitsWithoutWhatWasRefused) {
  ASSERT_TRUE(fault_vfs::Register().ok());
  int committed = 0;
  int refused = 0;
  for (int after = 0; after < 24; after += 2) {
    const std::string path = StrCat(dir_, "/full-", after, ".db");
    Db db(fault_vfs::UriFor(path), nullptr);
    db.Exec(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = 10;"
        "CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL, n INTEGER NOT NULL);"
        "CREATE INDEX t_k ON t (k); INSERT INTO t (k, n) VALUES ('kept', -1)");
    db.Exec("BEGIN IMMEDIATE");
    const int64_t injected = fault_vfs::GetCounts().injected;
    fault_vfs::Arm(fault_vfs::Fault::kDiskFull, after);
    int64_t sum_ok = -1;  // the kept row's
    for (int i = 0; i < 400 && !sqlite3_get_autocommit(db.get()); ++i) {
      // The disk is full for one write, then has room again (another file was deleted).
      if (fault_vfs::GetCounts().injected > injected) fault_vfs::Disarm();
      if (db.Try("SAVEPOINT w") != SQLITE_OK) break;
      const int rc = db.Try(StrCat("INSERT INTO t (k, n) VALUES ('", (i * 7919) % 401, "-",
                                   std::string(150, 'k'), "', ", i, ")"));
      if (rc == SQLITE_OK) {
        if (db.Try("RELEASE w") == SQLITE_OK) sum_ok += i;
      } else {
        db.Try("ROLLBACK TO w");
        db.Try("RELEASE w");
      }
    }
    fault_vfs::Disarm();
    const bool in_transaction = !sqlite3_get_autocommit(db.get());
    const int commit = in_transaction ? db.Try("COMMIT") : SQLITE_ABORT;
    if (commit != SQLITE_OK) db.Try("ROLLBACK");

    Db other(path, nullptr);
    EXPECT_EQ(other.One("PRAGMA integrity_check"), "ok") << "after " << after;
    const std::string expected = commit == SQLITE_OK ? StrCat(sum_ok) : "-1";
    EXPECT_EQ(other.One("SELECT sum(n) FROM t"), expected) << "after " << after;
    EXPECT_EQ(other.One("SELECT sum(n) FROM t INDEXED BY t_k WHERE k > ''"), expected);
    other.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
    EXPECT_EQ(other.One("PRAGMA integrity_check"), "ok") << "after " << after;
    EXPECT_EQ(other.One("SELECT sum(n) FROM t"), expected) << "after " << after;
    (commit == SQLITE_OK ? committed : refused) += 1;
  }
  // The sweep met the fault both before the transaction ended and not at all.
  EXPECT_GT(refused, 0);
}
#endif

}  // namespace
}  // namespace steritrack
