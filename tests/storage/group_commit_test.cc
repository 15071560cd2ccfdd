// Storage-tier tests of group commit in the SQLite store (SqliteStoreOptions::group_commit): write
// transactions that queue for the writer share one COMMIT, a refused one undoes only itself, and
// no caller is answered before its batch is durable. Each test works on a real database file in a
// fresh temporary directory and checks what is stored through a connection of its own, outside
// the store. Batches are made deterministic by holding the writer until the writers under test are
// seen waiting for it (the queue_changed hook), never by sleeping.
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/cartridge_service.h"
#include "server/storage/sqlite_store.h"
#include "steritrack/clock.h"
#include "steritrack/commit_deferral.h"
#include "steritrack/error.h"
#include "steritrack/model.h"
#include "steritrack/store.h"
#include "steritrack/strings.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

constexpr std::string_view kGtin = "09506000134352";
const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 11, 26, 10, 0, 0), absl::UTCTimeZone());

Lot MakeLot(std::string_view lot) {
  return Lot{.gtin = std::string(kGtin),
             .lot = std::string(lot),
             .expiry = absl::CivilDay(2027, 12, 31),
             .created_at = kNow};
}

class FixedClock final : public Clock {
 public:
  absl::Time Now() const override { return kNow; }
};

// Counts what the writer does, through the store's hooks.
class WriterWatch {
 public:
  SqliteWriterHooks Hooks() {
    return {.queue_changed =
                [this](int delta) {
                  absl::MutexLock lock(&mu_);
                  depth_ += delta;
                },
            .committed =
                [this](absl::Duration) {
                  absl::MutexLock lock(&mu_);
                  ++commits_;
                }};
  }
  // Blocks until `n` write transactions hold or wait for the writer, or wait for their batch.
  void AwaitDepth(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return depth_ == n; };
    mu_.Await(absl::Condition(&reached));
  }
  int commits() {
    absl::MutexLock lock(&mu_);
    return commits_;
  }

 private:
  absl::Mutex mu_;
  int depth_ ABSL_GUARDED_BY(mu_) = 0;
  int commits_ ABSL_GUARDED_BY(mu_) = 0;
};

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = StrCat(::testing::TempDir(), "group_commit_test.XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    dir_ = pattern;
    path_ = StrCat(dir_, "/steritrack.db");
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  Store& Open(SqliteStoreOptions options) {
    options.path = path_;
    options.writer_hooks = watch_.Hooks();
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(options);
    EXPECT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    return *store_;
  }

  // Opens the store with group commit; its first COMMIT fails as a failed fsync would, the later
  // ones succeed.
  Store& OpenFailingTheFirstCommit() {
    return Open({.group_commit = true, .commit_fault = [this]() -> absl::Status {
                   if (fail_first_commit_.exchange(false)) {
                     return absl::UnavailableError("injected: fsync failed");
                   }
                   return absl::OkStatus();
                 }});
  }

  // Begins a write, inserts lot `name`, and commits it, or, with `refuse`, drops it uncommitted
  // (as core drops a refused write) once `depth_before_end` writes are in the writer's hands.
  // `holding`, if given, is counted down once this write holds the writer (its depth counts from
  // BeginWrite's start, before it holds anything: awaiting depth 1 would race with the next one).
  absl::Status WriteLot(std::string_view name, bool refuse = false, int depth_before_end = 0,
                        std::latch* holding = nullptr) {
    absl::StatusOr<std::unique_ptr<WriteTransaction>> tx = store_->BeginWrite();
    if (holding != nullptr) holding->count_down();
    if (!tx.ok()) return tx.status();
    if (absl::Status s = (*tx)->cartridges().InsertLot(MakeLot(name)).status(); !s.ok()) return s;
    if (depth_before_end > 0) watch_.AwaitDepth(depth_before_end);
    if (refuse) return absl::FailedPreconditionError("refused");
    return (*tx)->Commit();
  }

  // Whether lot `name` is stored, read through a connection of its own: what a restarted server,
  // or any other reader, finds durable.
  bool StoredOutside(std::string_view name) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(
        sqlite3_prepare_v2(db, "SELECT count(*) FROM lots WHERE lot = ?1", -1, &stmt, nullptr),
        SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_bind_text(stmt, 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
    int64_t count = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) count = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close_v2(db);
    return count == 1;
  }

  std::string dir_;
  std::string path_;
  std::atomic<bool> fail_first_commit_{true};
  WriterWatch watch_;
  std::unique_ptr<Store> store_;
};

TEST_F(GroupCommitTest, ARefusedMemberOfABatchDoesNotUndoItsNeighbours) {
  Open({.group_commit = true});
  absl::Status a, b, c;
  // A holds the writer until B waits for it; B, refused, holds it until C waits: one batch.
  std::latch a_holds(1);
  std::thread ta(
      [&] { a = WriteLot("LOT-A", /*refuse=*/false, /*depth_before_end=*/2, &a_holds); });
  a_holds.wait();
  std::latch b_holds(1);
  std::thread tb([&] {
    absl::StatusOr<std::unique_ptr<WriteTransaction>> tx = store_->BeginWrite();
    ASSERT_TRUE(tx.ok()) << tx.status();
    b_holds.count_down();
    b = (*tx)->cartridges().InsertLot(MakeLot("LOT-B")).status();
    watch_.AwaitDepth(3);
    // Dropped without a commit, as core drops a refused write.
  });
  b_holds.wait();
  std::thread tc([&] { c = WriteLot("LOT-C"); });
  ta.join();
  tb.join();
  tc.join();
  EXPECT_TRUE(a.ok()) << a;
  EXPECT_TRUE(b.ok()) << b;
  EXPECT_TRUE(c.ok()) << c;
  EXPECT_EQ(watch_.commits(), 1) << "A and C should have shared one COMMIT";
  EXPECT_TRUE(StoredOutside("LOT-A"));
  EXPECT_FALSE(StoredOutside("LOT-B"));
  EXPECT_TRUE(StoredOutside("LOT-C"));
  watch_.AwaitDepth(0);
}

TEST_F(GroupCommitTest, AFailedCommitFailsEveryMemberAndKeepsNoneOfTheirWrites) {
  OpenFailingTheFirstCommit();
  absl::Status a, b;
  std::atomic<bool> a_answered{false};
  std::latch a_holds(1);
  std::thread ta([&] {
    a = WriteLot("LOT-A", /*refuse=*/false, /*depth_before_end=*/2, &a_holds);
    a_answered = true;
  });
  a_holds.wait();
  std::thread tb([&] {
    // A is not answered while its batch is still open (B's turn).
    absl::StatusOr<std::unique_ptr<WriteTransaction>> tx = store_->BeginWrite();
    ASSERT_TRUE(tx.ok()) << tx.status();
    EXPECT_FALSE(a_answered.load()) << "A was answered before its batch was committed";
    ASSERT_TRUE((*tx)->cartridges().InsertLot(MakeLot("LOT-B")).ok());
    b = (*tx)->Commit();
  });
  ta.join();
  tb.join();
  EXPECT_EQ(a.code(), absl::StatusCode::kUnavailable) << a;
  EXPECT_EQ(b.code(), absl::StatusCode::kUnavailable) << b;
  EXPECT_EQ(watch_.commits(), 1);
  EXPECT_FALSE(StoredOutside("LOT-A"));
  EXPECT_FALSE(StoredOutside("LOT-B"));
  // The store goes on: the next write stands, and neither lost write shows through the store.
  EXPECT_TRUE(WriteLot("LOT-C").ok());
  EXPECT_TRUE(StoredOutside("LOT-C"));
  std::unique_ptr<ReadTransaction> read = *store_->BeginRead();
  EXPECT_FALSE(read->cartridges().FindLot(kGtin, "LOT-A")->has_value());
  EXPECT_FALSE(read->cartridges().FindLot(kGtin, "LOT-B")->has_value());
}

TEST_F(GroupCommitTest, WritersWaitingForTheWriterShareOneCommit) {
  constexpr int kWaiting = 32;
  Open({.group_commit = true});
  absl::Status held;
  std::vector<absl::Status> results(kWaiting);
  std::latch holding(1);
  std::thread holder(
      [&] { held = WriteLot("HELD", false, /*depth_before_end=*/kWaiting + 1, &holding); });
  holding.wait();
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiting; ++i) {
    threads.emplace_back([&, i] { results[static_cast<size_t>(i)] = WriteLot(StrCat("W", i)); });
  }
  holder.join();
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(held.ok()) << held;
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(watch_.commits(), 1);
  EXPECT_TRUE(StoredOutside("HELD"));
  for (int i = 0; i < kWaiting; ++i) EXPECT_TRUE(StoredOutside(StrCat("W", i))) << i;
}

TEST_F(GroupCommitTest, AFullBatchIsCommittedEvenWhileWritersWait) {
  constexpr int kWaiting = 10;
  Open({.group_commit = true, .max_batch = 4});
  absl::Status held;
  std::vector<absl::Status> results(kWaiting);
  std::latch holding(1);
  std::thread holder(
      [&] { held = WriteLot("HELD", false, /*depth_before_end=*/kWaiting + 1, &holding); });
  holding.wait();
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiting; ++i) {
    threads.emplace_back([&, i] { results[static_cast<size_t>(i)] = WriteLot(StrCat("W", i)); });
  }
  holder.join();
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(held.ok()) << held;
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(watch_.commits(), 3);  // 4 + 4 + 3 transactions
  for (int i = 0; i < kWaiting; ++i) EXPECT_TRUE(StoredOutside(StrCat("W", i))) << i;
}

TEST_F(GroupCommitTest, SwitchedOffEveryTransactionCommitsAlone) {
  constexpr int kWaiting = 8;
  Open({.group_commit = false});
  absl::Status held;
  std::vector<absl::Status> results(kWaiting);
  std::latch holding(1);
  std::thread holder(
      [&] { held = WriteLot("HELD", false, /*depth_before_end=*/kWaiting + 1, &holding); });
  holding.wait();
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiting; ++i) {
    threads.emplace_back([&, i] { results[static_cast<size_t>(i)] = WriteLot(StrCat("W", i)); });
  }
  holder.join();
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(held.ok()) << held;
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(watch_.commits(), kWaiting + 1);
}

// Free-running writers (and, in memory, readers on the same connection): every acknowledged write
// is stored, and no more COMMITs ran than transactions.
class GroupCommitModesTest : public GroupCommitTest, public ::testing::WithParamInterface<bool> {};

TEST_P(GroupCommitModesTest, ManyConcurrentWritersAllCommitAndAreReadableOutside) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 25;
  Open({.group_commit = GetParam()});
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        // Every fifth write is refused: it must take none of its neighbours with it.
        absl::Status s = WriteLot(StrCat("T", t, "-", i), /*refuse=*/i % 5 == 4);
        if (!s.ok() && i % 5 != 4) {
          ADD_FAILURE() << s;
          ++failed;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  const int committed = kThreads * (kPerThread - kPerThread / 5);
  EXPECT_LE(watch_.commits(), committed);
  if (!GetParam()) {
    EXPECT_EQ(watch_.commits(), committed);
  }
  std::printf("%d transactions committed in %d COMMITs\n", committed, watch_.commits());
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      EXPECT_EQ(StoredOutside(StrCat("T", t, "-", i)), i % 5 != 4) << t << "-" << i;
    }
  }
}

TEST_P(GroupCommitModesTest, InMemoryReadsSeeOnlyCommittedBatches) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20;
  absl::StatusOr<std::unique_ptr<Store>> opened = OpenSqliteStore(
      {.path = ":memory:", .writer_hooks = watch_.Hooks(), .group_commit = GetParam()});
  ASSERT_TRUE(opened.ok()) << opened.status();
  store_ = *std::move(opened);
  std::latch start(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        EXPECT_TRUE(WriteLot(StrCat("T", t, "-", i), /*refuse=*/i % 4 == 3).ok() || i % 4 == 3);
      }
    });
  }
  threads.emplace_back([&] {
    start.arrive_and_wait();
    size_t last = 0;
    for (int i = 0; i < 50; ++i) {
      absl::StatusOr<std::unique_ptr<ReadTransaction>> read = store_->BeginRead();
      ASSERT_TRUE(read.ok()) << read.status();
      absl::StatusOr<std::vector<Lot>> lots = (*read)->cartridges().ListLots({.limit = 10000});
      ASSERT_TRUE(lots.ok()) << lots.status();
      EXPECT_GE(lots->size(), last);
      last = lots->size();
    }
  });
  for (std::thread& t : threads) t.join();
  std::unique_ptr<ReadTransaction> read = *store_->BeginRead();
  EXPECT_EQ(read->cartridges().ListLots({.limit = 10000})->size(),
            static_cast<size_t>(kThreads * (kPerThread - kPerThread / 4)));
}

// The rule that matters most (a unit is opened once), over core, when the twelve opens share
// batches: exactly one wins, whichever mode.
TEST_P(GroupCommitModesTest, TwelveRoomsOpeningTheSameUnitAtOnceExactlyOneWins) {
  constexpr int kRooms = 12;
  Open({.group_commit = GetParam()});
  FixedClock clock;
  CartridgeService service(
      CartridgeServiceOptions{.store = store_.get(), .sha256 = TestSha256(), .clock = &clock});
  const WriteContext ctx{.actor = "nurse.kim"};
  const std::string unit = StrCat("(01)", kGtin, "(17)271231(10)LOT-A(21)S1");
  ASSERT_TRUE(service.Receive(ctx, {unit}).ok());
  std::vector<int64_t> treatments;
  for (int i = 0; i < kRooms; ++i) {
    absl::StatusOr<Treatment> t =
        service.StartTreatment(ctx, StrCat("Room ", i + 1), "dr.lee", StrCat("client-", i));
    ASSERT_TRUE(t.ok()) << t.status();
    treatments.push_back(t->id);
  }
  for (int round = 0; round < 5; ++round) {
    const std::string serial = StrCat("R", round);
    const std::string barcode = StrCat("(01)", kGtin, "(17)271231(10)LOT-A(21)", serial);
    ASSERT_TRUE(service.Receive(ctx, {barcode}).ok());
    std::vector<absl::StatusOr<Cartridge>> results(kRooms, absl::UnknownError("not run"));
    std::latch go(kRooms);
    std::vector<std::thread> threads;
    for (int i = 0; i < kRooms; ++i) {
      threads.emplace_back([&, i] {
        go.arrive_and_wait();
        results[static_cast<size_t>(i)] =
            service.Open(ctx, barcode, treatments[static_cast<size_t>(i)]);
      });
    }
    for (std::thread& t : threads) t.join();
    int ok = 0;
    for (const auto& r : results) {
      if (r.ok()) {
        ++ok;
        continue;
      }
      EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
      std::optional<ErrorInfo> info = GetErrorInfo(r.status());
      EXPECT_EQ(info.has_value() ? info->reason : "", "CARTRIDGE_ALREADY_USED") << r.status();
    }
    EXPECT_EQ(ok, 1) << "round " << round;
    std::unique_ptr<ReadTransaction> read = *store_->BeginRead();
    std::optional<Cartridge> stored = *read->cartridges().FindCartridge(kGtin, serial);
    ASSERT_TRUE(stored.has_value() && stored->use.has_value());
    int opened = 0;
    int refused = 0;
    absl::StatusOr<std::vector<Event>> events =
        read->audit().ListEvents({.cartridge_id = stored->id});
    ASSERT_TRUE(events.ok()) << events.status();
    for (const Event& e : *events) {
      opened += e.action == "CARTRIDGE_OPENED" ? 1 : 0;
      refused += e.action == "CARTRIDGE_OPEN_REFUSED" ? 1 : 0;
    }
    EXPECT_EQ(opened, 1);
    EXPECT_EQ(refused, kRooms - 1);
  }
}

// A thread with a CommitDeferral (the server's write lane) adds write after write to one open
// batch: each Commit() returns at once, nothing is durable or visible to other connections until
// the thread settles, and then one COMMIT makes all of them durable.
TEST_F(GroupCommitTest, DeferredWritesShareOneCommitMadeWhenTheThreadSettles) {
  Open({.group_commit = true});
  CommitDeferral deferral;
  ASSERT_TRUE(WriteLot("LOT-A").ok());
  ASSERT_TRUE(WriteLot("LOT-B", /*refuse=*/true).code() == absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(WriteLot("LOT-C").ok());
  CommitDeferral::Taken taken = deferral.Take();
  ASSERT_FALSE(taken.pending.empty());
  EXPECT_EQ(watch_.commits(), 0) << "a deferred write was committed before the thread settled";
  EXPECT_FALSE(StoredOutside("LOT-A"));
  {
    // A reader of the store sees only what is durable.
    std::unique_ptr<ReadTransaction> read = *store_->BeginRead();
    EXPECT_FALSE(read->cartridges().FindLot(kGtin, "LOT-A")->has_value());
  }
  for (const std::shared_ptr<PendingCommit>& p : taken.pending) EXPECT_TRUE(p->Settle().ok());
  EXPECT_EQ(watch_.commits(), 1);
  EXPECT_TRUE(StoredOutside("LOT-A"));
  EXPECT_FALSE(StoredOutside("LOT-B"));
  EXPECT_TRUE(StoredOutside("LOT-C"));
  // Settling again only reports the outcome.
  for (const std::shared_ptr<PendingCommit>& p : taken.pending) EXPECT_TRUE(p->Settle().ok());
  EXPECT_EQ(watch_.commits(), 1);
  watch_.AwaitDepth(0);
}

// A deferred write refused before anything joined the batch leaves no batch open: SQLite's write
// lock is free for another process (a maintenance command, a checkpoint) at once.
TEST_F(GroupCommitTest, ARefusedDeferredWriteAloneLeavesNoBatchOpen) {
  Open({.group_commit = true});
  CommitDeferral deferral;
  ASSERT_EQ(WriteLot("LOT-R", /*refuse=*/true).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(deferral.Take().pending.empty());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE; ROLLBACK;", nullptr, nullptr, nullptr), SQLITE_OK)
      << "the database's write lock is still held: " << sqlite3_errmsg(db);
  sqlite3_close_v2(db);
  EXPECT_FALSE(StoredOutside("LOT-R"));
}

// A write from another thread (no deferral) joins the open deferred batch and, with nobody
// waiting, commits it: the deferring thread's Settle() then finds it durable.
TEST_F(GroupCommitTest, AnotherThreadsWriteCommitsTheOpenDeferredBatch) {
  Open({.group_commit = true});
  CommitDeferral deferral;
  ASSERT_TRUE(WriteLot("LOT-A").ok());
  absl::Status b;
  std::thread other([&] { b = WriteLot("LOT-B"); });
  other.join();
  EXPECT_TRUE(b.ok()) << b;
  EXPECT_EQ(watch_.commits(), 1);
  EXPECT_TRUE(StoredOutside("LOT-A"));
  EXPECT_TRUE(StoredOutside("LOT-B"));
  for (const std::shared_ptr<PendingCommit>& p : deferral.Take().pending) {
    EXPECT_TRUE(p->Settle().ok());
  }
  EXPECT_EQ(watch_.commits(), 1);
}

// A failed commit of a deferred batch fails every write deferred into it, and keeps none.
TEST_F(GroupCommitTest, AFailedDeferredBatchFailsEveryWriteInIt) {
  OpenFailingTheFirstCommit();
  {
    CommitDeferral deferral;
    ASSERT_TRUE(WriteLot("LOT-A").ok());
    ASSERT_TRUE(WriteLot("LOT-B").ok());
    CommitDeferral::Taken taken = deferral.Take();
    ASSERT_EQ(taken.pending.size(), 2u);
    for (const std::shared_ptr<PendingCommit>& p : taken.pending) {
      EXPECT_EQ(p->Settle().code(), absl::StatusCode::kUnavailable);
    }
  }
  EXPECT_FALSE(StoredOutside("LOT-A"));
  EXPECT_FALSE(StoredOutside("LOT-B"));
  EXPECT_TRUE(WriteLot("LOT-C").ok());  // no deferral now: committed before it returns
  EXPECT_TRUE(StoredOutside("LOT-C"));
}

// A full batch is committed by the write that fills it, deferral or not.
TEST_F(GroupCommitTest, ADeferredBatchIsCommittedWhenFull) {
  Open({.group_commit = true, .max_batch = 3});
  CommitDeferral deferral;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(WriteLot(StrCat("LOT-", i)).ok());
  EXPECT_EQ(watch_.commits(), 1);
  EXPECT_TRUE(StoredOutside("LOT-2"));
  EXPECT_FALSE(StoredOutside("LOT-3"));
  for (const std::shared_ptr<PendingCommit>& p : deferral.Take().pending) {
    EXPECT_TRUE(p->Settle().ok());
  }
  EXPECT_EQ(watch_.commits(), 2);
  EXPECT_TRUE(StoredOutside("LOT-3"));
}

// The write lane's token lookup (Store::BeginLaneRead) reads beside its deferred writes, on the
// writer's connection: it sees them, and its thread's answer waits until they are durable.
TEST_F(GroupCommitTest, ALaneReadSeesTheDeferredWritesAndWaitsForThem) {
  Open({.group_commit = true});
  CommitDeferral deferral;
  ASSERT_TRUE(WriteLot("LOT-A").ok());
  ASSERT_EQ(deferral.Take().pending.size(), 1u);
  {
    std::unique_ptr<ReadTransaction> read = *store_->BeginLaneRead();
    EXPECT_TRUE(read->cartridges().FindLot(kGtin, "LOT-A")->has_value());
  }
  {
    // Any other read of the store still sees only what is durable.
    std::unique_ptr<ReadTransaction> read = *store_->BeginRead();
    EXPECT_FALSE(read->cartridges().FindLot(kGtin, "LOT-A")->has_value());
  }
  CommitDeferral::Taken taken = deferral.Take();
  ASSERT_EQ(taken.pending.size(), 1u) << "the lane's read does not wait for what it read";
  EXPECT_EQ(watch_.commits(), 0);
  EXPECT_FALSE(StoredOutside("LOT-A"));
  EXPECT_TRUE(taken.pending[0]->Settle().ok());
  EXPECT_EQ(watch_.commits(), 1);
  EXPECT_TRUE(StoredOutside("LOT-A"));
}

// With no batch open, the lane's read has a snapshot of its own on the writer's connection, holds
// no answer back, and leaves the database's write lock free.
TEST_F(GroupCommitTest, ALaneReadWithNoBatchOpenReadsWhatIsDurable) {
  Open({.group_commit = true});
  ASSERT_TRUE(WriteLot("LOT-A").ok());  // no deferral: durable when it returns
  CommitDeferral deferral;
  {
    std::unique_ptr<ReadTransaction> read = *store_->BeginLaneRead();
    EXPECT_TRUE(read->cartridges().FindLot(kGtin, "LOT-A")->has_value());
    EXPECT_FALSE(read->cartridges().FindLot(kGtin, "LOT-B")->has_value());
  }
  EXPECT_TRUE(deferral.Take().pending.empty());
  // Its snapshot has ended: a checkpoint that must wait for every reader of the write-ahead log
  // runs to the end.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  int log_frames = -1;
  int checkpointed = -1;
  EXPECT_EQ(sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log_frames,
                                      &checkpointed),
            SQLITE_OK)
      << "a snapshot of the lane's read is still open: " << sqlite3_errmsg(db);
  sqlite3_close_v2(db);
  ASSERT_TRUE(WriteLot("LOT-B").ok());  // the writer is free again
  EXPECT_EQ(deferral.Take().pending.size(), 1u);
}

// What would wait for itself on the writer's mutex is refused while a lane read is held.
TEST_F(GroupCommitTest, ALaneReadRefusesAWriteOrASecondLaneReadOnItsThread) {
  Open({.group_commit = true});
  CommitDeferral deferral;
  ASSERT_TRUE(WriteLot("LOT-A").ok());
  CommitDeferral::Taken taken = deferral.Take();
  {
    std::unique_ptr<ReadTransaction> read = *store_->BeginLaneRead();
    EXPECT_EQ(store_->BeginWrite().status().code(), absl::StatusCode::kInternal);
    EXPECT_EQ(store_->BeginLaneRead().status().code(), absl::StatusCode::kInternal);
    EXPECT_EQ(taken.pending[0]->Settle().code(), absl::StatusCode::kInternal);
  }
  EXPECT_TRUE(taken.pending[0]->Settle().ok());
  EXPECT_TRUE(StoredOutside("LOT-A"));
}

// A lane read that saw writes of a batch whose COMMIT then fails gets the batch's failure: its
// answer (a token found, say) must not go out resting on a lost write.
TEST_F(GroupCommitTest, ALaneReadOfAFailedBatchGetsItsFailure) {
  OpenFailingTheFirstCommit();
  CommitDeferral deferral;
  ASSERT_TRUE(WriteLot("LOT-A").ok());
  CommitDeferral::Taken write = deferral.Take();
  { std::unique_ptr<ReadTransaction> read = *store_->BeginLaneRead(); }
  CommitDeferral::Taken read = deferral.Take();
  ASSERT_EQ(read.pending.size(), 1u);
  EXPECT_EQ(read.pending[0]->Settle().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(write.pending[0]->Settle().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(StoredOutside("LOT-A"));
}

// Off the write lane (no deferral on the thread) BeginLaneRead is BeginRead: it does not see
// another thread's deferred writes.
TEST_F(GroupCommitTest, ALaneReadOffTheLaneSeesOnlyWhatIsDurable) {
  Open({.group_commit = true});
  CommitDeferral deferral;
  ASSERT_TRUE(WriteLot("LOT-A").ok());
  bool seen = true;
  std::thread other([&] {
    std::unique_ptr<ReadTransaction> read = *store_->BeginLaneRead();
    seen = read->cartridges().FindLot(kGtin, "LOT-A")->has_value();
  });
  other.join();
  EXPECT_FALSE(seen);
  for (const std::shared_ptr<PendingCommit>& p : deferral.Take().pending) {
    EXPECT_TRUE(p->Settle().ok());
  }
  EXPECT_TRUE(StoredOutside("LOT-A"));
}

INSTANTIATE_TEST_SUITE_P(GroupCommitOnAndOff, GroupCommitModesTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Batched") : std::string("Unbatched");
                         });

}  // namespace
}  // namespace steritrack
