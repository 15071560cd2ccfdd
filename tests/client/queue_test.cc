// The CLI's offline queue with several CLIs on one queue file at once (issue 12, item 6): every CLI
// process has its own OfflineQueue, so each thread here opens its own, as concurrent CLIs do. They
// enqueue, deliver and record answers at the same time; nothing queued may be lost or stored twice,
// and a queue file from before sites is upgraded once however many CLIs open it together. Run by
// the normal suite and, built with ThreadSanitizer, by tests/tsan.sh.
#include "client/queue.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace steritrack::cli {
namespace {

class OfflineQueueConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "queue_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/queue.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // state -> count, read with a connection of its own.
  std::map<std::string, int> States() {
    std::map<std::string, int> out;
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT state, count(*) FROM queued_writes GROUP BY state", -1,
                                 &st, nullptr),
              SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
      out[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))] = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  std::string dir_;
  std::string path_;
};

QueuedWrite Dispose(const std::string& request_id) {
  return QueuedWrite{.method = "DisposeCartridge",
                     .request = "request " + request_id,
                     .request_id = request_id,
                     .description = "dispose " + request_id + " in SHARPS-01"};
}

TEST_F(OfflineQueueConcurrencyTest,
       ClisQueueingAndDeliveringAtOnceLoseNothingAndStoreNothingTwice) {
  constexpr int kClis = 6;
  constexpr int kWritesEach = 40;
  std::atomic<int> writers_left{kClis};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClis; ++c) {
    threads.emplace_back([&, c] {
      absl::StatusOr<std::unique_ptr<OfflineQueue>> queue = OfflineQueue::Open(path_);
      if (!queue.ok()) {
        ADD_FAILURE() << "CLI " << c << ": " << queue.status();
        ++failures;
        --writers_left;
        return;
      }
      for (int i = 0; i < kWritesEach; ++i) {
        // Every CLI also queues one request id that all of them share: it must be stored once.
        for (const std::string& id :
             {"cli" + std::to_string(c) + "-" + std::to_string(i), std::string("shared")}) {
          if (absl::Status s = (*queue)->Enqueue(Dispose(id)); !s.ok()) {
            ADD_FAILURE() << "CLI " << c << " enqueue " << id << ": " << s;
            ++failures;
          }
        }
      }
      --writers_left;
    });
  }
  // Two CLIs deliver while the others queue, as `steritrack queue send` run from two rooms would:
  // both may take the same write (the server's idempotency makes the second delivery harmless);
  // both record its answer.
  std::atomic<int> answers{0};
  for (int d = 0; d < 2; ++d) {
    threads.emplace_back([&, d] {
      absl::StatusOr<std::unique_ptr<OfflineQueue>> queue = OfflineQueue::Open(path_);
      if (!queue.ok()) {
        ADD_FAILURE() << "deliverer " << d << ": " << queue.status();
        ++failures;
        return;
      }
      while (true) {
        const bool last_round = writers_left.load() == 0;
        absl::StatusOr<std::vector<QueuedWrite>> pending = (*queue)->Pending(25);
        if (!pending.ok()) {
          ADD_FAILURE() << "deliverer " << d << ": " << pending.status();
          ++failures;
          return;
        }
        for (const QueuedWrite& w : *pending) {
          const absl::Status s = (w.id % 7 == 0) ? (*queue)->MarkRefused(w.id, "ALREADY_DISPOSED")
                                                 : (*queue)->MarkSent(w.id, "disposed");
          if (!s.ok()) {
            ADD_FAILURE() << "deliverer " << d << " answer " << w.id << ": " << s;
            ++failures;
          }
          ++answers;
        }
        if (last_round && pending->empty()) return;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);

  const std::map<std::string, int> states = States();
  int stored = 0;
  for (const auto& [state, count] : states) stored += count;
  EXPECT_EQ(stored, kClis * kWritesEach + 1) << "each unique request id once, the shared one once";
  EXPECT_EQ(states.count("PENDING"), 0u) << "the deliverers' last round leaves nothing pending";
  EXPECT_GE(answers.load(), stored);
  absl::StatusOr<std::unique_ptr<OfflineQueue>> reopened = OfflineQueue::Open(path_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  absl::StatusOr<int64_t> pending = (*reopened)->PendingCount();
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(*pending, 0);
}

TEST_F(OfflineQueueConcurrencyTest, ClisOpeningAQueueFromBeforeSitesTogetherUpgradeItOnce) {
  // A queue file as CLIs wrote it before sites (issue 13): no site column, one write waiting.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, R"sql(
    PRAGMA journal_mode = WAL;
    CREATE TABLE queued_writes (
      id INTEGER PRIMARY KEY, method TEXT NOT NULL, request BLOB NOT NULL,
      request_id TEXT NOT NULL UNIQUE, description TEXT NOT NULL, queued_at INTEGER NOT NULL,
      state TEXT NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'SENT', 'REFUSED')),
      outcome TEXT NOT NULL DEFAULT '', done_at INTEGER);
    INSERT INTO queued_writes (method, request, request_id, description, queued_at)
      VALUES ('DisposeCartridge', x'0a01', 'before-sites', 'dispose CRT1 in SHARPS-01', 1);
  )sql",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  constexpr int kClis = 8;
  std::atomic<int> ready{0};
  std::vector<absl::Status> opened(kClis);
  std::vector<std::thread> threads;
  for (int c = 0; c < kClis; ++c) {
    threads.emplace_back([&, c] {
      ++ready;
      while (ready.load() < kClis) std::this_thread::yield();
      absl::StatusOr<std::unique_ptr<OfflineQueue>> queue = OfflineQueue::Open(path_);
      opened[c] = queue.status();
      if (queue.ok()) {
        absl::StatusOr<std::vector<QueuedWrite>> pending = (*queue)->Pending();
        if (!pending.ok()) {
          opened[c] = pending.status();
        } else if (pending->size() != 1 || (*pending)[0].request_id != "before-sites" ||
                   !(*pending)[0].site.empty()) {
          opened[c] = absl::InternalError("the write from before sites is not as it was");
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int c = 0; c < kClis; ++c) EXPECT_TRUE(opened[c].ok()) << "CLI " << c << ": " << opened[c];
}

}  // namespace
}  // namespace steritrack::cli
