// Storage-tier tamper tests of the audit trail (PRODUCT.md rule 9): a realistic day of changes is
// written through core's CartridgeService over the SQLite store; then each test tampers with its
// own copy of the database file the way an attacker with file access could (raw sqlite3 API,
// dropping the append-only triggers first) and expects verification to catch it, naming the first
// bad entry.
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/audit_service.h"
#include "server/core/cartridge_service.h"
#include "server/storage/schema.h"
#include "server/storage/sqlite_store.h"
#include "steritrack/audit_chain.h"
#include "steritrack/clock.h"
#include "steritrack/model.h"
#include "steritrack/store.h"
#include "steritrack/strings.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kGtin = "09506000134352";
constexpr char kClientRef[] = "client-secret-0042";

class SteppingClock final : public Clock {
 public:
  absl::Time Now() const override {
    now_ += absl::Minutes(1);
    return now_;
  }

 private:
  mutable absl::Time now_ =
      absl::FromCivil(absl::CivilSecond(2026, 11, 26, 9, 0, 0), absl::UTCTimeZone());
};

std::string Unit(std::string_view serial) {
  return StrCat("(01)", kGtin, "(17)271231(10)LOT-A(21)", serial);
}

// A connection through the plain sqlite3 C API, outside the store: what an attacker has.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
  }
  ~RawDb() { sqlite3_close(db_); }
  void Exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error ? error : "");
    sqlite3_free(error);
  }
  // Exec, expecting a refusal.
  int TryExec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  int64_t Int(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    std::string v;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
      v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return v;
  }
  // What an attacker does first: lift the append-only guards.
  void DropGuards() {
    Exec(
        "DROP TRIGGER IF EXISTS events_are_final; DROP TRIGGER IF EXISTS events_are_kept; "
        "DROP TRIGGER IF EXISTS events_no_replace; DROP TRIGGER IF EXISTS audit_head_is_kept; "
        "DROP TRIGGER IF EXISTS audit_head_moves_forward;");
  }

 private:
  sqlite3* db_ = nullptr;
};

class AuditTrailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = StrCat(::testing::TempDir(), "audit_trail_test.XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    original_ = StrCat(dir_, "/original.db");
    {
      absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore({.path = original_});
      ASSERT_TRUE(store.ok()) << store.status();
      CartridgeService core({.store = store->get(), .sha256 = TestSha256(), .clock = &clock_});
      const WriteContext nurse{.actor = "nurse.kim", .request_id = ""};
      const WriteContext clerk{.actor = "clerk.ana", .request_id = ""};
      ASSERT_TRUE(core.Receive({.actor = "clerk.ana", .request_id = "delivery-1"},
                               {Unit("S1"), Unit("S2"), Unit("S3"), Unit("S4")})
                      .ok());
      absl::StatusOr<Treatment> t1 = core.StartTreatment(nurse, "3", "dr.lee", kClientRef);
      ASSERT_TRUE(t1.ok()) << t1.status();
      ASSERT_TRUE(core.Open(nurse, Unit("S1"), t1->id).ok());
      ASSERT_TRUE(core.Dispose(nurse, Unit("S1"), "SHARPS-7").ok());
      ASSERT_TRUE(core.Discard(clerk, Unit("S2"), "box crushed").ok());
      absl::StatusOr<Treatment> t2 = core.StartTreatment(nurse, "5", "dr.lee", "client-0043");
      ASSERT_TRUE(t2.ok());
      ASSERT_TRUE(core.Open(nurse, Unit("S3"), t2->id).ok());
      ASSERT_TRUE(core.EndTreatment(nurse, t1->id).ok());
      ASSERT_TRUE(core.EndTreatment(nurse, t2->id).ok());
      ASSERT_TRUE(core.RecallLot(clerk, kGtin, "LOT-A", "supplier notice 12").ok());
      std::unique_ptr<ReadTransaction> tx = *(*store)->BeginRead();
      entries_ = *tx->audit().ListAuditEntries({.limit = 1000});
    }  // closing the store checkpoints the WAL into the file
    ASSERT_GE(entries_.size(), 12u);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  int64_t n() const { return static_cast<int64_t>(entries_.size()); }

  std::string Copy(const std::string& name) {
    std::string path = StrCat(dir_, "/", name, ".db");
    std::filesystem::copy_file(original_, path);
    return path;
  }

  static AuditChainCheck Verify(const std::string& path) {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore({.path = path});
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return {.intact = false, .problem = "cannot open"};
    AuditService audit({.store = store->get(), .sha256 = TestSha256()});
    absl::StatusOr<AuditChainCheck> check = audit.Verify();
    EXPECT_TRUE(check.ok()) << check.status();
    return check.ok() ? *check : AuditChainCheck{.intact = false, .problem = "verify failed"};
  }

  void ExpectBrokenAt(const std::string& path, int64_t seq, std::string_view what = "") {
    AuditChainCheck check = Verify(path);
    EXPECT_FALSE(check.intact) << path;
    EXPECT_EQ(check.first_bad_seq, seq) << check.problem;
    EXPECT_THAT(check.problem, HasSubstr(StrCat("entry ", seq))) << check.problem;
    if (!what.empty()) {
      EXPECT_THAT(check.problem, HasSubstr(what));
    }
  }

  SteppingClock clock_;
  std::string dir_;
  std::string original_;
  std::vector<Event> entries_;
};

TEST_F(AuditTrailTest, UntouchedCopyVerifiesIntactWithEveryEntryCounted) {
  AuditChainCheck check = Verify(Copy("untouched"));
  EXPECT_TRUE(check.intact) << check.problem;
  EXPECT_EQ(check.entries, n());
  EXPECT_EQ(check.first_bad_seq, 0);
}

TEST_F(AuditTrailTest, EntriesCarryBeforeAndAfterButNoClientReference) {
  bool saw_open = false;
  for (const Event& e : entries_) {
    for (const std::string* field : {&e.detail, &e.before, &e.after, &e.actor, &e.action}) {
      EXPECT_THAT(*field, Not(HasSubstr(kClientRef))) << e.action;
    }
    EXPECT_EQ(e.hash.size(), 64u);
    if (e.action == "CARTRIDGE_OPENED" && !saw_open) {
      saw_open = true;
      EXPECT_EQ(e.before, "state=RECEIVED");
      EXPECT_THAT(e.after, HasSubstr("state=OPENED treatment="));
      EXPECT_THAT(e.after, HasSubstr("room=3"));
    }
  }
  EXPECT_TRUE(saw_open);
}

TEST_F(AuditTrailTest, TheDatabaseRefusesUpdateAndDeleteOfEntriesAndHead) {
  RawDb db(Copy("guarded"));
  EXPECT_NE(db.TryExec("UPDATE events SET detail = 'x' WHERE seq = 2"), SQLITE_OK);
  EXPECT_NE(db.TryExec("DELETE FROM events WHERE seq = 2"), SQLITE_OK);
  EXPECT_NE(db.TryExec("DELETE FROM audit_head"), SQLITE_OK);
  EXPECT_NE(db.TryExec("UPDATE audit_head SET seq = 1"), SQLITE_OK);
}

TEST_F(AuditTrailTest, AlteringAnyFieldOfOneEntryIsCaughtAtThatEntry) {
  const char* alterations[] = {
      "detail = 'nothing happened'",
      "actor = 'someone.else'",
      "action = 'CARTRIDGE_RECEIVED'",
      "at = at + 1",
      "before = 'state=RECEIVED'",
      "after = 'state=DISPOSED'",
      "request_id = 'forged'",
      "treatment_id = NULL",
      "cartridge_id = 3",
      "prev_hash = hash",
  };
  int i = 0;
  for (const char* set : alterations) {
    const int64_t seq = 5 + (i % 4);
    std::string path = Copy(StrCat("altered", i++));
    {
      RawDb db(path);
      db.DropGuards();
      db.Exec(StrCat("UPDATE events SET ", set, " WHERE seq = ", seq));
    }
    SCOPED_TRACE(set);
    ExpectBrokenAt(path, seq);
  }
}

TEST_F(AuditTrailTest, DeletingAMiddleEntryIsCaughtAsMissing) {
  std::string path = Copy("deleted");
  {
    RawDb db(path);
    db.DropGuards();
    db.Exec("DELETE FROM events WHERE seq = 6");
  }
  ExpectBrokenAt(path, 6, "missing");
}

TEST_F(AuditTrailTest, SwappingTwoEntriesIsCaughtAtTheFirst) {
  std::string path = Copy("swapped");
  {
    RawDb db(path);
    db.DropGuards();
    db.Exec("PRAGMA foreign_keys = OFF");
    // Reorder: entry 4 takes entry 8's place and the other way round.
    db.Exec(
        "UPDATE events SET seq = -4 WHERE seq = 4; UPDATE events SET seq = 4 WHERE seq = 8; "
        "UPDATE events SET seq = 8 WHERE seq = -4;");
  }
  ExpectBrokenAt(path, 4);
}

TEST_F(AuditTrailTest, TruncatingTheTailIsCaughtByTheSequenceCounterAndTheHead) {
  const int64_t k = 3;
  const int64_t keep = n() - k;
  {
    std::string path = Copy("truncated");
    {
      RawDb db(path);
      db.DropGuards();
      db.Exec(StrCat("DELETE FROM events WHERE seq > ", keep));
    }
    ExpectBrokenAt(path, keep + 1, "cut off");
  }
  {
    // The attacker also winds SQLite's AUTOINCREMENT counter back: the chain head still knows.
    std::string path = Copy("truncated_sequence_fixed");
    {
      RawDb db(path);
      db.DropGuards();
      db.Exec(StrCat("DELETE FROM events WHERE seq > ", keep));
      db.Exec(StrCat("UPDATE sqlite_sequence SET seq = ", keep, " WHERE name = 'events'"));
    }
    ExpectBrokenAt(path, keep + 1, "cut off");
  }
  {
    // ... or rewrites the chain head to the new last entry: the counter still knows.
    std::string path = Copy("truncated_head_fixed");
    {
      RawDb db(path);
      db.DropGuards();
      db.Exec(StrCat("DELETE FROM events WHERE seq > ", keep));
      db.Exec(StrCat("UPDATE audit_head SET seq = ", keep,
                     ", hash = (SELECT hash FROM events WHERE seq = ", keep, ")"));
    }
    ExpectBrokenAt(path, keep + 1, "cut off");
  }
}

TEST_F(AuditTrailTest, AForgedHashForAnAlteredEntryIsCaughtAtThatEntry) {
  const int64_t seq = 7;
  Event forged = entries_[seq - 1];
  ASSERT_EQ(forged.seq, seq);
  forged.detail = "opened for nobody";
  const std::string prev = entries_[seq - 2].hash;
  const std::string hash = audit_chain::EntryHash(*TestSha256(), prev, forged);
  std::string path = Copy("forged");
  {
    RawDb db(path);
    db.DropGuards();
    db.Exec(StrCat("UPDATE events SET detail = 'opened for nobody', hash = '", hash,
                   "' WHERE seq = ", seq));
  }
  ExpectBrokenAt(path, seq, "rewritten");
}

TEST_F(AuditTrailTest, ForgingTheLastEntryIsCaughtByTheChainHead) {
  const int64_t seq = n();
  Event forged = entries_[seq - 1];
  forged.detail = "nothing recalled";
  const std::string hash = audit_chain::EntryHash(*TestSha256(), entries_[seq - 2].hash, forged);
  std::string path = Copy("forged_last");
  {
    RawDb db(path);
    db.DropGuards();
    db.Exec(StrCat("UPDATE events SET detail = 'nothing recalled', hash = '", hash,
                   "' WHERE seq = ", seq));
  }
  ExpectBrokenAt(path, seq, "chain head");
}

TEST_F(AuditTrailTest, NewEntriesAfterReopeningExtendTheSameChain) {
  std::string path = Copy("reopened");
  {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore({.path = path});
    ASSERT_TRUE(store.ok());
    CartridgeService core({.store = store->get(), .sha256 = TestSha256(), .clock = &clock_});
    ASSERT_TRUE(
        core.Receive({.actor = "clerk.ana"}, {StrCat("(01)", kGtin, "(17)281231(10)LOT-B(21)T1")})
            .ok());
  }
  AuditChainCheck check = Verify(path);
  EXPECT_TRUE(check.intact) << check.problem;
  EXPECT_EQ(check.entries, n() + 2);  // LOT_CREATED, CARTRIDGE_RECEIVED
}

TEST_F(AuditTrailTest, ListEntriesFiltersByActionActorAndTimeAndPages) {
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore({.path = Copy("list")});
  ASSERT_TRUE(store.ok());
  AuditService audit({.store = store->get(), .sha256 = TestSha256()});
  absl::StatusOr<Page<Event>> received =
      audit.ListEntries({.page = {.page_size = 3}, .action = "CARTRIDGE_RECEIVED"});
  ASSERT_TRUE(received.ok()) << received.status();
  ASSERT_EQ(received->items.size(), 3u);
  EXPECT_FALSE(received->next_page_token.empty());
  absl::StatusOr<Page<Event>> rest =
      audit.ListEntries({.page = {.page_size = 3, .page_token = received->next_page_token},
                         .action = "CARTRIDGE_RECEIVED"});
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_TRUE(rest->next_page_token.empty());

  absl::StatusOr<Page<Event>> by_clerk = audit.ListEntries({.actor = "clerk.ana"});
  ASSERT_TRUE(by_clerk.ok());
  for (const Event& e : by_clerk->items) EXPECT_EQ(e.actor, "clerk.ana");

  const absl::Time from = entries_[3].at;
  const absl::Time to = entries_[6].at;
  absl::StatusOr<Page<Event>> window = audit.ListEntries({.from = from, .to = to});
  ASSERT_TRUE(window.ok());
  for (const Event& e : window->items) {
    EXPECT_GE(e.at, from);
    EXPECT_LT(e.at, to);
  }
  EXPECT_FALSE(window->items.empty());
  EXPECT_FALSE(audit.ListEntries({.from = to, .to = from}).ok());
}

// A database written before the trail was hash-chained: its entries get their hashes when the
// migration runs at open, and the chain then continues from them.
TEST(AuditTrailMigrationTest, EntriesWrittenBeforeTheChainAreChainedAtOpen) {
  std::string pattern = StrCat(::testing::TempDir(), "audit_migration_test.XXXXXX");
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  const std::string dir = pattern;
  const std::string path = StrCat(dir, "/old.db");
  int chain_version = 0;
  for (const sqlite::Migration& m : sqlite::Migrations()) {
    if (std::string_view(m.description).starts_with("audit trail")) chain_version = m.version;
  }
  ASSERT_GT(chain_version, 1);
  {
    RawDb db(path);
    db.Exec(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
        "description TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    for (const sqlite::Migration& m : sqlite::Migrations()) {
      if (m.version >= chain_version) break;
      db.Exec(m.sql);
      db.Exec(StrCat("INSERT INTO schema_migrations VALUES (", m.version, ", 'old', 0)"));
    }
    for (int i = 1; i <= 5; ++i) {
      db.Exec(StrCat("INSERT INTO events (at, actor, action, detail) VALUES (", i * 1000000,
                     ", 'clerk.old', 'LOT_CREATED', 'old entry ", i, "')"));
    }
  }
  {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore({.path = path});
    ASSERT_TRUE(store.ok()) << store.status();
    AuditService audit({.store = store->get(), .sha256 = TestSha256()});
    absl::StatusOr<AuditChainCheck> check = audit.Verify();
    ASSERT_TRUE(check.ok()) << check.status();
    EXPECT_TRUE(check->intact) << check->problem;
    EXPECT_EQ(check->entries, 5);
    SteppingClock clock;
    CartridgeService core({.store = store->get(), .sha256 = TestSha256(), .clock = &clock});
    ASSERT_TRUE(core.Receive({.actor = "clerk.new"}, {Unit("NEW-1")}).ok());
    check = audit.Verify();
    ASSERT_TRUE(check.ok());
    EXPECT_TRUE(check->intact) << check->problem;
    EXPECT_EQ(check->entries, 7);
  }
  {
    // The append-only guard is back after the migration lifted it.
    RawDb db(path);
    EXPECT_NE(db.TryExec("UPDATE events SET detail = 'x' WHERE seq = 1"), SQLITE_OK);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace steritrack
