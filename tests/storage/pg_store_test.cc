// PostgreSQL-only storage tests (issue 13), beside the conformance suite both backends pass: the
// schema's guards (tests/pg/schema_check.sql, run with psql on a migrated database), migrations
// at open (once; a newer schema refused), and several stores on one database, as several servers
// would be: one cartridge opened from all of them at once, exactly one wins, and the audit chain
// they wrote together verifies.
//
// In the throwaway cluster ctest starts (fixture "pg", STERITRACK_PG_URL).
#include "server/storage/pg_store.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/cartridge_service.h"
#include "server/core/commit_notifier.h"
#include "steritrack/audit_chain.h"
#include "steritrack/error.h"
#include "steritrack/site.h"
#include "steritrack/strings.h"
#include "tests/core/fake_store.h"
#include "tests/storage/pg_test_database.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

using ::testing::HasSubstr;

TEST(PgStoreTest, TheSchemaGuardsRefuseWhatTheRulesForbid) {
  PgTestDatabase db;
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(OpenPgStore({.url = db.url(), .connections = 1}).ok());
  // psql runs the script as an operator would; it stops at the first guard that is missing or
  // answers with the wrong SQLSTATE or message.
  const std::string script = StrCat(STERITRACK_SOURCE_DIR, "/tests/pg/schema_check.sql");
  const std::string command = StrCat("psql '", db.url(), "' -X -q -At -f ", script, " 2>&1");
  std::FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int status = pclose(pipe);
  EXPECT_EQ(status, 0) << out;
  EXPECT_THAT(out, HasSubstr("schema guards ok"));
}

TEST(PgStoreTest, MigrationsRunOnceAndANewerSchemaIsRefused) {
  PgTestDatabase db;
  ASSERT_TRUE(db.ok());
  std::vector<std::string> notices;
  auto first = OpenPgStore({.url = db.url(), .connections = 1, .notice = [&](const std::string& n) {
                              notices.push_back(n);
                            }});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(static_cast<int>(notices.size()), PgSchemaVersion());
  notices.clear();
  auto again = OpenPgStore({.url = db.url(), .connections = 1, .notice = [&](const std::string& n) {
                              notices.push_back(n);
                            }});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(notices.empty());
  first->reset();
  again->reset();
  PgTestDatabase::Exec(db.url(),
                       "INSERT INTO schema_migrations VALUES (999, 'from the future', 0)");
  auto newer = OpenPgStore({.url = db.url(), .connections = 1});
  EXPECT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(newer.status().message(), HasSubstr("v999"));
}

TEST(PgStoreTest, AnUnreachableDatabaseIsUnavailable) {
  auto store = OpenPgStore({.url = "postgresql:///nowhere?host=/nonexistent&port=1"});
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
}

// Sites: a schema each, created once, found by every store, each with its own records and audit
// chain; a site the database does not hold is NOT_FOUND.
TEST(PgStoreTest, EachSiteIsASchemaOfItsOwnWithItsOwnRecords) {
  PgTestDatabase db;
  ASSERT_TRUE(db.ok());
  auto store = OpenPgStore({.url = db.url(), .connections = 2});
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::vector<std::string>> sites = (*store)->ListSites();
  ASSERT_TRUE(sites.ok()) << sites.status();
  EXPECT_THAT(*sites, ::testing::ElementsAre("default"));
  ASSERT_TRUE((*store)->CreateSite("north").ok());
  absl::Status twice = (*store)->CreateSite("north");
  EXPECT_EQ(twice.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(GetErrorInfo(twice)->reason, "SITE_EXISTS");
  EXPECT_EQ((*store)->CreateSite("North").code(), absl::StatusCode::kInvalidArgument);
  sites = (*store)->ListSites();
  ASSERT_TRUE(sites.ok()) << sites.status();
  EXPECT_THAT(*sites, ::testing::ElementsAre("default", "north"));
  // Another store (another server) finds the site created here, by its first look.
  auto other = OpenPgStore({.url = db.url(), .connections = 1});
  ASSERT_TRUE(other.ok()) << other.status();
  absl::StatusOr<bool> has_north = (*other)->HasSite("north");
  absl::StatusOr<bool> has_south = (*other)->HasSite("south");
  ASSERT_TRUE(has_north.ok() && has_south.ok()) << has_north.status() << has_south.status();
  EXPECT_TRUE(*has_north);
  EXPECT_FALSE(*has_south);
  EXPECT_EQ(PgSchemaOfSite("north"), "site_north");
  EXPECT_EQ(PgSchemaOfSite("default"), "public");

  FakeClock clock(absl::FromUnixSeconds(1796112000));  // 2026-12-01
  CartridgeService core({.store = store->get(), .sha256 = TestSha256(), .clock = &clock});
  const WriteContext ctx{.actor = "spd.sam"};
  {
    SiteScope north("north");
    ASSERT_TRUE(core.Receive(ctx, {"(01)09506000134352(17)301231(10)LOT-N(21)N1"}).ok());
    EXPECT_TRUE(core.GetCartridge("(01)09506000134352(21)N1").ok());
  }
  // The default site (no scope) neither sees the unit nor shares the audit chain.
  EXPECT_EQ(core.GetCartridge("(01)09506000134352(21)N1").status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(core.Receive(ctx, {"(01)09506000134352(17)301231(10)LOT-N(21)N1"}).ok());
  for (const char* site : {"default", "north"}) {
    SiteScope scope(site);
    auto tx = (*store)->BeginRead();
    ASSERT_TRUE(tx.ok()) << tx.status();
    EXPECT_EQ(*(*tx)->audit().LastEventSeq(), 2) << site;  // the lot and its unit, in each
  }
  // A site the database does not hold: NOT_FOUND, for reads and writes.
  SiteScope south("south");
  absl::StatusOr<std::unique_ptr<ReadTransaction>> read = (*store)->BeginRead();
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetErrorInfo(read.status())->reason, "SITE_NOT_FOUND");
  EXPECT_EQ((*store)->BeginWrite().status().code(), absl::StatusCode::kNotFound);
}

// Several servers, one truth: four stores on one database (four servers' connection pools), each
// with its own CartridgeService, open one cartridge at the same moment in four treatments.
TEST(PgStoreTest, OneCartridgeOpenedFromSeveralServersAtOnceIsOpenedOnce) {
  PgTestDatabase db;
  ASSERT_TRUE(db.ok());
  constexpr int kServers = 4;
  constexpr int kRounds = 5;
  FakeClock clock(absl::FromUnixSeconds(1796112000));  // 2026-12-01
  std::vector<std::unique_ptr<Store>> stores;
  std::vector<std::unique_ptr<CartridgeService>> servers;
  for (int i = 0; i < kServers; ++i) {
    auto store = OpenPgStore({.url = db.url(), .connections = 2});
    ASSERT_TRUE(store.ok()) << store.status();
    stores.push_back(*std::move(store));
    servers.push_back(std::make_unique<CartridgeService>(CartridgeServiceOptions{
        .store = stores.back().get(), .sha256 = TestSha256(), .clock = &clock}));
  }
  const WriteContext ctx{.actor = "nurse.kim"};
  for (int round = 0; round < kRounds; ++round) {
    const std::string unit = StrCat("(01)09506000134352(17)301231(10)LOT-R(21)RACE", round);
    ASSERT_TRUE(servers[round % kServers]->Receive(ctx, {unit}).ok());
    std::vector<int64_t> treatments;
    for (int i = 0; i < kServers; ++i) {
      absl::StatusOr<Treatment> t = servers[i]->StartTreatment(ctx, StrCat("Room ", i), "dr.lee",
                                                               StrCat("C-", round, "-", i));
      ASSERT_TRUE(t.ok()) << t.status();
      treatments.push_back(t->id);
    }
    std::atomic<int> ready{0};
    std::vector<absl::Status> results(kServers);
    std::vector<std::thread> threads;
    for (int i = 0; i < kServers; ++i) {
      threads.emplace_back([&, i] {
        ++ready;
        while (ready.load() < kServers) {
        }
        results[i] = servers[i]->Open(ctx, unit, treatments[i]).status();
      });
    }
    for (std::thread& t : threads) t.join();
    int won = 0;
    for (const absl::Status& s : results) {
      if (s.ok()) {
        ++won;
      } else {
        EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
        EXPECT_EQ(GetErrorInfo(s)->reason, "CARTRIDGE_ALREADY_USED") << s;
      }
    }
    EXPECT_EQ(won, 1) << "round " << round;
  }
  // The chain all four wrote into verifies end to end.
  auto tx = stores[0]->BeginRead();
  ASSERT_TRUE(tx.ok());
  absl::StatusOr<AuditChainCheck> check = audit_chain::Verify((*tx)->audit(), *TestSha256());
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_TRUE(check->intact) << check->problem;
  EXPECT_GT(check->entries, kRounds * (kServers + 1));
}

// The writers' lock: while one server's write transaction is open, another server's cannot begin
// (writes are serialised by the database, as SQLite's one writer serialises them); it begins as
// soon as the first ends. Without the lock both would run at once.
TEST(PgStoreTest, AWriteOnOneServerWaitsForAnotherServersWrite) {
  PgTestDatabase db;
  ASSERT_TRUE(db.ok());
  auto a = OpenPgStore({.url = db.url(), .connections = 1});
  auto b = OpenPgStore({.url = db.url(), .connections = 1});
  ASSERT_TRUE(a.ok() && b.ok());
  auto first = (*a)->BeginWrite();
  ASSERT_TRUE(first.ok()) << first.status();
  std::atomic<bool> began{false};
  std::thread other([&] {
    auto second = (*b)->BeginWrite();
    EXPECT_TRUE(second.ok()) << second.status();
    began = true;
  });
  // However long the first stays open, the second waits (a second here, well inside the 30 s
  // lock_timeout).
  absl::SleepFor(absl::Seconds(1));
  EXPECT_FALSE(began.load()) << "a second writer began while the first was open";
  ASSERT_TRUE((*first)->Commit().ok());
  first->reset();
  other.join();
  EXPECT_TRUE(began.load());
  // Reads never wait for writers.
  auto writing = (*a)->BeginWrite();
  ASSERT_TRUE(writing.ok());
  auto reading = (*b)->BeginRead();
  EXPECT_TRUE(reading.ok()) << reading.status();
}

// Event streams on one server wake for another server's commits: store B is told of a write
// committed through store A (LISTEN/NOTIFY), not only of its own.
TEST(PgStoreTest, ACommitOnOneServerWakesTheOthers) {
  PgTestDatabase db;
  ASSERT_TRUE(db.ok());
  auto a = OpenPgStore({.url = db.url(), .connections = 1});
  ASSERT_TRUE(a.ok()) << a.status();
  CommitNotifier woken;
  auto b =
      OpenPgStore({.url = db.url(), .connections = 1, .on_commit = [&woken] { woken.Notify(); }});
  ASSERT_TRUE(b.ok()) << b.status();
  // B's listener starts on a thread of its own: a commit before its LISTEN is not heard, so the
  // write is repeated until one is (each a real commit on A).
  bool heard = false;
  for (int attempt = 0; attempt < 20 && !heard; ++attempt) {
    const uint64_t seen = woken.count();
    auto tx = (*a)->BeginWrite();
    ASSERT_TRUE(tx.ok()) << tx.status();
    ASSERT_TRUE((*tx)
                    ->cartridges()
                    .InsertTreatment(Treatment{.room = "Room 1",
                                               .clinician = "dr.lee",
                                               .client_ref = StrCat("C-", attempt),
                                               .started_at = absl::Now(),
                                               .started_by = "nurse.kim"})
                    .ok());
    ASSERT_TRUE((*tx)->Commit().ok());
    heard = woken.WaitForCommitAfter(seen, absl::Seconds(1)) != seen;
  }
  EXPECT_TRUE(heard) << "store B never heard of store A's commits";
  // A transaction rolled back is not announced.
  absl::SleepFor(absl::Milliseconds(200));
  const uint64_t seen = woken.count();
  {
    auto tx = (*a)->BeginWrite();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*tx)
                    ->cartridges()
                    .InsertTreatment(Treatment{.room = "Room 1",
                                               .clinician = "dr.lee",
                                               .client_ref = "C-rolled-back",
                                               .started_at = absl::Now(),
                                               .started_by = "nurse.kim"})
                    .ok());
  }  // destroyed without Commit(): ROLLBACK
  EXPECT_EQ(woken.WaitForCommitAfter(seen, absl::Milliseconds(500)), seen);
}

}  // namespace
}  // namespace steritrack
