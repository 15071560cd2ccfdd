// Storage-tier tests of the SQLite Store: each test works on a real database file in a fresh
// temporary directory. Besides the Store interface, they open the same file with the raw sqlite3 C
// API to show that the schema itself (constraints and triggers) keeps the single-use and
// append-only rules, and run core's CartridgeService over the SQLite store where the rule depends
// on the store's locking.
#include "server/storage/sqlite_store.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <latch>
#include <memory>
#include <optional>
#include <set>
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
#include "server/storage/schema.h"
#include "server/storage/sqlite_admin.h"
#include "server/storage/sqlite_process.h"
#include "server/storage/wal_vfs.h"
#include "steritrack/audit_chain.h"
#include "steritrack/clock.h"
#include "steritrack/error.h"
#include "steritrack/model.h"
#include "steritrack/site.h"
#include "steritrack/store.h"
#include "steritrack/strings.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr std::string_view kGtin = "09506000134352";
constexpr std::string_view kGtinB = "09521234543213";

absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss), absl::UTCTimeZone());
}

const absl::Time kNow = Utc(2026, 11, 26, 10, 0, 0);

std::string ReasonOf(const absl::Status& s) {
  std::optional<ErrorInfo> info = GetErrorInfo(s);
  return info ? info->reason : "<no ErrorInfo>";
}

std::string MetaOf(const absl::Status& s, const std::string& key) {
  std::optional<ErrorInfo> info = GetErrorInfo(s);
  if (!info) return "<no ErrorInfo>";
  auto it = info->metadata.find(key);
  return it == info->metadata.end() ? StrCat("<no ", key, ">") : it->second;
}

class FixedClock final : public Clock {
 public:
  explicit FixedClock(absl::Time t) : micros_(absl::ToUnixMicros(t)) {}
  absl::Time Now() const override { return absl::FromUnixMicros(micros_.load()); }
  void Set(absl::Time t) { micros_.store(absl::ToUnixMicros(t)); }

 private:
  std::atomic<int64_t> micros_;
};

// A connection to the database file through the plain sqlite3 C API, outside the store: what any
// other program (or a careless script) could do to the file.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr);
    EXPECT_EQ(rc, SQLITE_OK) << "raw open " << path << ": " << sqlite3_errstr(rc);
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 10000);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // Runs `sql`; returns the extended result code (SQLITE_OK on success).
  int Exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    last_error_ = error != nullptr ? error : "";
    sqlite3_free(error);
    return rc == SQLITE_OK ? rc : sqlite3_extended_errcode(db_);
  }
  const std::string& last_error() const { return last_error_; }

  // The first column of the first row of `sql` as text ("" when there is no row).
  std::string QueryText(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << sqlite3_errmsg(db_);
    std::string out;
    if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      if (text != nullptr) out = reinterpret_cast<const char*>(text);
    }
    sqlite3_finalize(stmt);
    return out;
  }
  int64_t QueryInt(const std::string& sql) {
    std::string text = QueryText(sql);
    return text.empty() ? -1 : std::stoll(text);
  }

 private:
  sqlite3* db_ = nullptr;
  std::string last_error_;
};

// Collects the handle of every SQLite connection this process opens while it is alive, through
// sqlite3_auto_extension: the only way to look at the store's own connections from outside.
class ConnectionSpy {
 public:
  ConnectionSpy() {
    handles().clear();
    sqlite3_auto_extension(reinterpret_cast<void (*)(void)>(&ConnectionSpy::OnOpen));
  }
  ~ConnectionSpy() {
    sqlite3_cancel_auto_extension(reinterpret_cast<void (*)(void)>(&ConnectionSpy::OnOpen));
  }
  static std::vector<sqlite3*>& handles() {
    static std::vector<sqlite3*> h;
    return h;
  }

  static std::string Pragma(sqlite3* db, const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out = "<error>";
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      out = text != nullptr ? reinterpret_cast<const char*>(text) : "";
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  static int OnOpen(sqlite3* db, char**, const void*) {
    handles().push_back(db);
    return SQLITE_OK;
  }
};

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = StrCat(::testing::TempDir(), "sqlite_store_test.XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    dir_ = pattern;
    path_ = StrCat(dir_, "/steritrack.db");
  }

  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  Store& OpenStore(int readers = 4) {
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenSqliteStore({.path = path_, .readers = readers});
    EXPECT_TRUE(store.ok()) << store.status();
    if (store.ok()) store_ = *std::move(store);
    return *store_;
  }
  void CloseStore() { store_.reset(); }
  Store& store() { return *store_; }

  std::unique_ptr<WriteTransaction> MustBeginWrite() {
    absl::StatusOr<std::unique_ptr<WriteTransaction>> tx = store().BeginWrite();
    EXPECT_TRUE(tx.ok()) << tx.status();
    return tx.ok() ? *std::move(tx) : nullptr;
  }
  std::unique_ptr<ReadTransaction> MustBeginRead() {
    absl::StatusOr<std::unique_ptr<ReadTransaction>> tx = store().BeginRead();
    EXPECT_TRUE(tx.ok()) << tx.status();
    return tx.ok() ? *std::move(tx) : nullptr;
  }

  static Lot MakeLot(std::string_view lot, std::string_view gtin = kGtin) {
    return Lot{.gtin = std::string(gtin),
               .lot = std::string(lot),
               .expiry = absl::CivilDay(2027, 12, 31),
               .created_at = kNow};
  }
  static Cartridge MakeCartridge(std::string_view serial, int64_t lot_id,
                                 std::string_view gtin = kGtin) {
    Cartridge c{.gtin = std::string(gtin),
                .serial = std::string(serial),
                .received_at = kNow,
                .received_by = "nurse.kim"};
    c.lot.id = lot_id;
    return c;
  }
  // Writes `units` new units in one write transaction on `store`: of lot LOT-A, made by the first
  // call (its id kept in *lot_id), serials numbered on from *serial.
  static void WriteUnits(Store& store, int64_t* lot_id, int* serial, int units) {
    absl::StatusOr<std::unique_ptr<WriteTransaction>> tx = store.BeginWrite();
    ASSERT_TRUE(tx.ok()) << tx.status();
    if (*lot_id == 0) {
      absl::StatusOr<int64_t> lot = (*tx)->cartridges().InsertLot(MakeLot("LOT-A"));
      ASSERT_TRUE(lot.ok()) << lot.status();
      *lot_id = *lot;
    }
    for (int i = 0; i < units; ++i) {
      absl::Status inserted = (*tx)
                                  ->cartridges()
                                  .InsertCartridge(MakeCartridge(StrCat("S", ++*serial), *lot_id))
                                  .status();
      ASSERT_TRUE(inserted.ok()) << inserted;
    }
    ASSERT_TRUE((*tx)->Commit().ok());
  }
  static Treatment MakeTreatment(std::string_view room) {
    return Treatment{.room = std::string(room),
                     .clinician = "dr.lee",
                     .client_ref = "client-0042",
                     .started_at = kNow,
                     .started_by = "nurse.kim"};
  }
  static CartridgeUse MakeUse(int64_t treatment_id, std::string_view room = "Room 1") {
    return CartridgeUse{.treatment_id = treatment_id,
                        .room = std::string(room),
                        .at = kNow + absl::Minutes(5),
                        .by = "nurse.kim"};
  }

  // One lot, one treatment and `units` cartridges (serials S1..Sn), committed.
  struct Fixture {
    int64_t lot_id = 0;
    int64_t treatment_id = 0;
    std::vector<int64_t> cartridge_ids;
  };
  Fixture MustInsertBasics(int units = 1) {
    Fixture f;
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    if (tx == nullptr) return f;
    absl::StatusOr<int64_t> lot = tx->cartridges().InsertLot(MakeLot("LOT-A"));
    EXPECT_TRUE(lot.ok()) << lot.status();
    f.lot_id = lot.value_or(0);
    absl::StatusOr<int64_t> t = tx->cartridges().InsertTreatment(MakeTreatment("Room 1"));
    EXPECT_TRUE(t.ok()) << t.status();
    f.treatment_id = t.value_or(0);
    for (int i = 1; i <= units; ++i) {
      absl::StatusOr<int64_t> c =
          tx->cartridges().InsertCartridge(MakeCartridge(StrCat("S", i), f.lot_id));
      EXPECT_TRUE(c.ok()) << c.status();
      f.cartridge_ids.push_back(c.value_or(0));
    }
    EXPECT_TRUE(tx->Commit().ok());
    return f;
  }

  std::optional<Cartridge> Find(std::string_view serial, std::string_view gtin = kGtin) {
    std::unique_ptr<ReadTransaction> tx = MustBeginRead();
    if (tx == nullptr) return std::nullopt;
    absl::StatusOr<std::optional<Cartridge>> c = tx->cartridges().FindCartridge(gtin, serial);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : std::nullopt;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

std::vector<int64_t> IdsOf(const std::vector<Cartridge>& cs) {
  std::vector<int64_t> ids;
  for (const Cartridge& c : cs) ids.push_back(c.id);
  return ids;
}

std::vector<int64_t> SeqsOf(const std::vector<Event>& es) {
  std::vector<int64_t> seqs;
  for (const Event& e : es) seqs.push_back(e.seq);
  return seqs;
}

// ---------------------------------------------------------------------------------------------------
// Opening: schema, migrations, connection settings

TEST_F(SqliteStoreTest, OpenCreatesTheSchemaAndRecordsItsVersion) {
  OpenStore();
  CloseStore();
  RawDb raw(path_);
  for (const char* table :
       {"lots", "cartridges", "treatments", "cartridge_uses", "cartridge_disposals",
        "cartridge_discards", "events", "requests", "schema_migrations"}) {
    EXPECT_EQ(raw.QueryInt(StrCat("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                  "name = '",
                                  table, "'")),
              1)
        << table;
  }
  EXPECT_EQ(raw.QueryInt("SELECT max(version) FROM schema_migrations"), SqliteSchemaVersion());
  EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM schema_migrations"), SqliteSchemaVersion());
}

TEST_F(SqliteStoreTest, ReopeningAnExistingFileKeepsDataAndDoesNotRerunMigrations) {
  OpenStore();
  Fixture f = MustInsertBasics(2);
  CloseStore();
  std::string applied_at;
  {
    RawDb raw(path_);
    applied_at = raw.QueryText(
        "SELECT group_concat(version || ':' || applied_at) FROM "
        "(SELECT * FROM schema_migrations ORDER BY version)");
    ASSERT_FALSE(applied_at.empty());
  }

  OpenStore();
  std::optional<Cartridge> s1 = Find("S1");
  ASSERT_TRUE(s1.has_value());
  EXPECT_EQ(s1->id, f.cartridge_ids[0]);
  EXPECT_EQ(s1->lot.id, f.lot_id);
  EXPECT_EQ(s1->lot.lot, "LOT-A");
  EXPECT_EQ(s1->received_at, kNow);
  EXPECT_TRUE(Find("S2").has_value());
  CloseStore();

  RawDb raw(path_);
  EXPECT_EQ(raw.QueryText("SELECT group_concat(version || ':' || applied_at) FROM "
                          "(SELECT * FROM schema_migrations ORDER BY version)"),
            applied_at);
}

TEST_F(SqliteStoreTest, ADatabaseWithANewerSchemaIsRefusedAtOpen) {
  OpenStore();
  CloseStore();
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec("INSERT INTO schema_migrations (version, description, applied_at) "
                       "VALUES (999, 'from the future', 0)"),
              SQLITE_OK)
        << raw.last_error();
  }
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore({.path = path_});
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  // Both versions, and what to do.
  EXPECT_THAT(std::string(store.status().message()),
              ::testing::AllOf(::testing::HasSubstr("999"),
                               ::testing::HasSubstr(StrCat("(", SqliteSchemaVersion(), ")")),
                               ::testing::HasSubstr("upgrade steritrack")));
}

TEST_F(SqliteStoreTest, FileIsInWalModeAndEveryStoreConnectionHasFullSyncAndForeignKeys) {
  std::vector<sqlite3*> handles;
  {
    ConnectionSpy spy;
    OpenStore(/*readers=*/3);
    handles = ConnectionSpy::handles();
  }
  ASSERT_THAT(handles, SizeIs(4));  // one writer, three readers
  for (sqlite3* db : handles) {
    EXPECT_EQ(ConnectionSpy::Pragma(db, "PRAGMA journal_mode"), "wal");
    EXPECT_EQ(ConnectionSpy::Pragma(db, "PRAGMA synchronous"), "2");  // FULL
    EXPECT_EQ(ConnectionSpy::Pragma(db, "PRAGMA foreign_keys"), "1");
  }
  // WAL mode is a property of the file: any other connection sees it too.
  {
    RawDb raw(path_);
    EXPECT_EQ(raw.QueryText("PRAGMA journal_mode"), "wal");
  }
  // And behaviour: a cartridge of a lot that does not exist is refused (foreign keys are on), and
  // a committed write lands in the write-ahead log next to the file.
  std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
  ASSERT_NE(tx, nullptr);
  absl::StatusOr<int64_t> orphan =
      tx->cartridges().InsertCartridge(MakeCartridge("S1", /*lot_id=*/4242));
  EXPECT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.status().code(), absl::StatusCode::kFailedPrecondition) << orphan.status();
  ASSERT_TRUE(tx->cartridges().InsertLot(MakeLot("LOT-A")).ok());
  ASSERT_TRUE(tx->Commit().ok());
  EXPECT_TRUE(std::filesystem::exists(StrCat(path_, "-wal")));
}

TEST_F(SqliteStoreTest, OpenRefusesAnEmptyPathAndAnEmptyReaderPool) {
  EXPECT_EQ(OpenSqliteStore({.path = ""}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenSqliteStore({.path = path_, .readers = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A SQLite database is one site, the default: a transaction for any other site is refused, even
// if a caller got past the rpc layer's check (steritrack/site.h).
TEST_F(SqliteStoreTest, OnlyTheDefaultSiteIsServed) {
  OpenStore(/*readers=*/2);
  MustInsertBasics(1);
  {
    SiteScope north("north");
    absl::StatusOr<std::unique_ptr<ReadTransaction>> read = store().BeginRead();
    EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(GetErrorInfo(read.status())->reason, "SITE_NOT_FOUND");
    EXPECT_EQ(store().BeginWrite().status().code(), absl::StatusCode::kNotFound);
  }
  SiteScope named{std::string(kDefaultSite)};
  EXPECT_TRUE(Find("S1").has_value());
}

// A "file:" URI names the same database for the writer and every reader: the readers, too, open
// it as a URI (without the flag a reader would look for a file literally named "file:...").
TEST_F(SqliteStoreTest, AFileUriIsOneDatabaseForTheWriterAndEveryReader) {
  path_ = StrCat("file:", dir_, "/uri.db?cache=private");
  OpenStore(/*readers=*/2);
  ASSERT_NE(store_, nullptr);
  MustInsertBasics(1);
  for (int i = 0; i < 3; ++i) {  // more reads than readers: each pooled connection is used
    EXPECT_TRUE(Find("S1").has_value()) << "read " << i;
  }
  EXPECT_TRUE(std::filesystem::exists(StrCat(dir_, "/uri.db")));
}

// Every in-memory form is one store with one connection: what was written is read back, and no
// reader opens a second, empty database (or looks for a file named after the URI).
TEST_F(SqliteStoreTest, EveryInMemoryFormReadsBackWhatWasWritten) {
  static std::atomic<int> next{0};
  const std::string shared_name = StrCat("sqlite_store_test_", getpid(), "_", next++);
  for (const std::string& path :
       {std::string(":memory:"), std::string("file::memory:"),
        std::string("file::memory:?cache=shared"), StrCat("file:", shared_name, "?mode=memory"),
        StrCat("file:", shared_name, "?cache=shared&mode=memory")}) {
    SCOPED_TRACE(path);
    path_ = path;
    OpenStore(/*readers=*/2);
    ASSERT_NE(store_, nullptr);
    MustInsertBasics(1);
    EXPECT_TRUE(Find("S1").has_value());
    CloseStore();
  }
}

// ---------------------------------------------------------------------------------------------------
// Uniqueness and the single-use rule through the Store interface

TEST_F(SqliteStoreTest, DuplicateLotIsAlreadyExists) {
  OpenStore();
  std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
  ASSERT_TRUE(tx->cartridges().InsertLot(MakeLot("LOT-A")).ok());
  EXPECT_EQ(tx->cartridges().InsertLot(MakeLot("LOT-A")).status().code(),
            absl::StatusCode::kAlreadyExists);
  // The same lot name under another GTIN is another lot.
  EXPECT_TRUE(tx->cartridges().InsertLot(MakeLot("LOT-A", kGtinB)).ok());
  ASSERT_TRUE(tx->Commit().ok());
}

TEST_F(SqliteStoreTest, DuplicateCartridgeIsAlreadyExists) {
  OpenStore();
  Fixture f = MustInsertBasics(1);
  std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
  EXPECT_EQ(tx->cartridges().InsertCartridge(MakeCartridge("S1", f.lot_id)).status().code(),
            absl::StatusCode::kAlreadyExists);
  // The same serial under another GTIN is another unit.
  EXPECT_TRUE(tx->cartridges().InsertCartridge(MakeCartridge("S1", f.lot_id, kGtinB)).ok());
  ASSERT_TRUE(tx->Commit().ok());
}

TEST_F(SqliteStoreTest, SecondRecordUseIsRefusedAsAlreadyUsedEvenWithoutCore) {
  OpenStore();
  Fixture f = MustInsertBasics(1);
  int64_t second_treatment = 0;
  {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    ASSERT_TRUE(
        tx->cartridges().RecordUse(f.cartridge_ids[0], MakeUse(f.treatment_id, "Room 1")).ok());
    second_treatment = *tx->cartridges().InsertTreatment(MakeTreatment("Room 2"));
    ASSERT_TRUE(tx->Commit().ok());
  }
  std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
  absl::Status again =
      tx->cartridges().RecordUse(f.cartridge_ids[0], MakeUse(second_treatment, "Room 2"));
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_EQ(ReasonOf(again), "CARTRIDGE_ALREADY_USED");
  // Also within one transaction.
  EXPECT_EQ(ReasonOf(tx->cartridges().RecordUse(f.cartridge_ids[0], MakeUse(f.treatment_id))),
            "CARTRIDGE_ALREADY_USED");
  ASSERT_TRUE(tx->Commit().ok());
  std::optional<Cartridge> c = Find("S1");
  ASSERT_TRUE(c.has_value() && c->use.has_value());
  EXPECT_EQ(c->use->treatment_id, f.treatment_id);
  EXPECT_EQ(c->use->room, "Room 1");
  EXPECT_EQ(c->state, CartridgeState::kOpened);
}

TEST_F(SqliteStoreTest, DisposalWithoutAUseIsRefusedByTheForeignKey) {
  OpenStore();
  Fixture f = MustInsertBasics(1);
  std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
  absl::Status status = tx->cartridges().RecordDisposal(
      f.cartridge_ids[0], Disposal{.container_id = "SHARPS-1", .at = kNow, .by = "nurse.kim"});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  ASSERT_TRUE(tx->Commit().ok());
  std::optional<Cartridge> c = Find("S1");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->state, CartridgeState::kReceived);
  EXPECT_FALSE(c->disposal.has_value());
}

TEST_F(SqliteStoreTest, SecondDisposalIsRefusedAsDisposed) {
  OpenStore();
  Fixture f = MustInsertBasics(1);
  std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
  ASSERT_TRUE(tx->cartridges().RecordUse(f.cartridge_ids[0], MakeUse(f.treatment_id)).ok());
  Disposal d{.container_id = "SHARPS-1", .at = kNow + absl::Minutes(30), .by = "nurse.kim"};
  ASSERT_TRUE(tx->cartridges().RecordDisposal(f.cartridge_ids[0], d).ok());
  EXPECT_EQ(ReasonOf(tx->cartridges().RecordDisposal(f.cartridge_ids[0], d)), "CARTRIDGE_DISPOSED");
  ASSERT_TRUE(tx->Commit().ok());
  std::optional<Cartridge> c = Find("S1");
  ASSERT_TRUE(c.has_value() && c->disposal.has_value());
  EXPECT_EQ(c->state, CartridgeState::kDisposed);
  EXPECT_EQ(c->disposal->container_id, "SHARPS-1");
  EXPECT_EQ(c->disposal->at, kNow + absl::Minutes(30));
}

TEST_F(SqliteStoreTest, DiscardAfterUseIsRefusedByATrigger) {
  OpenStore();
  Fixture f = MustInsertBasics(1);
  std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
  ASSERT_TRUE(tx->cartridges().RecordUse(f.cartridge_ids[0], MakeUse(f.treatment_id)).ok());
  absl::Status status = tx->cartridges().RecordDiscard(
      f.cartridge_ids[0], Discard{.reason = "dropped", .at = kNow, .by = "nurse.kim"});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  ASSERT_TRUE(tx->Commit().ok());
  std::optional<Cartridge> c = Find("S1");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->state, CartridgeState::kOpened);
  EXPECT_FALSE(c->discard.has_value());
}

TEST_F(SqliteStoreTest, UseAfterDiscardIsRefusedByATrigger) {
  OpenStore();
  Fixture f = MustInsertBasics(1);
  std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
  ASSERT_TRUE(tx->cartridges()
                  .RecordDiscard(f.cartridge_ids[0],
                                 Discard{.reason = "dropped", .at = kNow, .by = "nurse.kim"})
                  .ok());
  absl::Status status = tx->cartridges().RecordUse(f.cartridge_ids[0], MakeUse(f.treatment_id));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(ReasonOf(tx->cartridges().RecordDiscard(
                f.cartridge_ids[0], Discard{.reason = "again", .at = kNow, .by = "nurse.kim"})),
            "CARTRIDGE_DISCARDED");
  ASSERT_TRUE(tx->Commit().ok());
  std::optional<Cartridge> c = Find("S1");
  ASSERT_TRUE(c.has_value() && c->discard.has_value());
  EXPECT_EQ(c->state, CartridgeState::kDiscarded);
  EXPECT_EQ(c->discard->reason, "dropped");
  EXPECT_FALSE(c->use.has_value());
}

// ---------------------------------------------------------------------------------------------------
// The schema on its own, through the raw C API

TEST_F(SqliteStoreTest, SecondUseIsRefusedByTheSchemaItself) {
  OpenStore();
  Fixture f = MustInsertBasics(1);
  {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    ASSERT_TRUE(
        tx->cartridges().RecordUse(f.cartridge_ids[0], MakeUse(f.treatment_id, "Room 1")).ok());
    ASSERT_TRUE(audit_chain::Append(tx->audit(), *TestSha256(),
                                    Event{.at = kNow,
                                          .actor = "nurse.kim",
                                          .action = "CARTRIDGE_OPENED",
                                          .lot_id = f.lot_id,
                                          .cartridge_id = f.cartridge_ids[0],
                                          .treatment_id = f.treatment_id,
                                          .detail = "opened"})
                    .ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  CloseStore();

  RawDb raw(path_);
  const std::string id = StrCat(f.cartridge_ids[0]);
  const std::string t = StrCat(f.treatment_id);
  // A second use of the same unit, for the same or any other treatment.
  // Refused by the no-replace trigger (or, without it, the primary key): a constraint either way.
  EXPECT_EQ(raw.Exec(StrCat("INSERT INTO cartridge_uses (cartridge_id, treatment_id, room, at, by) "
                            "VALUES (",
                            id, ", ", t, ", 'Room 9', 1, 'mallory')")) &
                0xff,
            SQLITE_CONSTRAINT)
      << raw.last_error();
  // Rewriting or erasing the first use.
  EXPECT_EQ(raw.Exec(StrCat("UPDATE cartridge_uses SET room = 'Room 9' WHERE cartridge_id = ", id)),
            SQLITE_CONSTRAINT_TRIGGER)
      << raw.last_error();
  EXPECT_EQ(
      raw.Exec(StrCat("UPDATE cartridge_uses SET cartridge_id = 999 WHERE cartridge_id = ", id)),
      SQLITE_CONSTRAINT_TRIGGER)
      << raw.last_error();
  EXPECT_EQ(raw.Exec(StrCat("DELETE FROM cartridge_uses WHERE cartridge_id = ", id)),
            SQLITE_CONSTRAINT_TRIGGER)
      << raw.last_error();
  // Rewriting or erasing history.
  EXPECT_EQ(raw.Exec("UPDATE events SET actor = 'mallory'"), SQLITE_CONSTRAINT_TRIGGER)
      << raw.last_error();
  EXPECT_EQ(raw.Exec("DELETE FROM events"), SQLITE_CONSTRAINT_TRIGGER) << raw.last_error();

  EXPECT_EQ(raw.QueryText(StrCat("SELECT room || '|' || treatment_id || '|' || by FROM "
                                 "cartridge_uses WHERE cartridge_id = ",
                                 id)),
            StrCat("Room 1|", t, "|nurse.kim"));
  EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM cartridge_uses"), 1);
  EXPECT_EQ(raw.QueryText("SELECT group_concat(actor) FROM events"), "nurse.kim");
}

// INSERT OR REPLACE deletes the conflicting row without firing DELETE triggers (SQLite only fires
// them for REPLACE with recursive_triggers on), so it must be stopped by something else.
TEST_F(SqliteStoreTest, ReplacingTheUseRecordIsRefusedByTheSchemaItself) {
  OpenStore();
  Fixture f = MustInsertBasics(1);
  {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    ASSERT_TRUE(
        tx->cartridges().RecordUse(f.cartridge_ids[0], MakeUse(f.treatment_id, "Room 1")).ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  CloseStore();
  RawDb raw(path_);
  const std::string id = StrCat(f.cartridge_ids[0]);
  EXPECT_NE(raw.Exec(StrCat("INSERT OR REPLACE INTO cartridge_uses "
                            "(cartridge_id, treatment_id, room, at, by) VALUES (",
                            id, ", ", f.treatment_id, ", 'Room 9', 1, 'mallory')")),
            SQLITE_OK);
  EXPECT_EQ(raw.QueryText(StrCat("SELECT room || '|' || by FROM cartridge_uses WHERE "
                                 "cartridge_id = ",
                                 id)),
            "Room 1|nurse.kim");
}

TEST_F(SqliteStoreTest, ReplacingAnEventIsRefusedByTheSchemaItself) {
  OpenStore();
  Fixture f = MustInsertBasics(0);
  int64_t seq = 0;
  {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    seq = *audit_chain::Append(tx->audit(), *TestSha256(),
                               Event{.at = kNow,
                                     .actor = "nurse.kim",
                                     .action = "LOT_CREATED",
                                     .lot_id = f.lot_id,
                                     .detail = "lot LOT-A"});
    ASSERT_TRUE(tx->Commit().ok());
  }
  CloseStore();
  RawDb raw(path_);
  EXPECT_NE(raw.Exec(StrCat("INSERT OR REPLACE INTO events (seq, at, actor, action, detail) "
                            "VALUES (",
                            seq, ", 1, 'mallory', 'NOTHING_HAPPENED', '')")),
            SQLITE_OK);
  EXPECT_EQ(raw.QueryText(StrCat("SELECT actor || '|' || action FROM events WHERE seq = ", seq)),
            "nurse.kim|LOT_CREATED");
}

// ---------------------------------------------------------------------------------------------------
// Transactions

TEST_F(SqliteStoreTest, WriteTransactionDestroyedWithoutCommitLeavesNothing) {
  OpenStore();
  {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    int64_t lot_id = *tx->cartridges().InsertLot(MakeLot("LOT-A"));
    ASSERT_TRUE(tx->cartridges().InsertCartridge(MakeCartridge("S1", lot_id)).ok());
    ASSERT_TRUE(audit_chain::Append(
                    tx->audit(), *TestSha256(),
                    Event{.at = kNow, .actor = "a", .action = "X", .lot_id = lot_id, .detail = ""})
                    .ok());
    ASSERT_TRUE(tx->audit()
                    .SaveRequest(StoredRequest{.request_id = "r1",
                                               .operation = "Op",
                                               .fingerprint = "f",
                                               .response = "x",
                                               .at = kNow})
                    .ok());
    // Seen inside the transaction itself.
    EXPECT_TRUE(tx->cartridges().FindCartridge(kGtin, "S1")->has_value());
  }
  std::unique_ptr<ReadTransaction> read = MustBeginRead();
  EXPECT_FALSE(read->cartridges().FindLot(kGtin, "LOT-A")->has_value());
  EXPECT_FALSE(read->cartridges().FindCartridge(kGtin, "S1")->has_value());
  EXPECT_FALSE(read->audit().FindRequest("r1")->has_value());
  EXPECT_THAT(*read->cartridges().ListLots({}), IsEmpty());
  read.reset();
  // The writer is free again, and the same rows can now be written for real.
  std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
  ASSERT_NE(tx, nullptr);
  EXPECT_TRUE(tx->cartridges().InsertLot(MakeLot("LOT-A")).ok());
  EXPECT_TRUE(tx->Commit().ok());
}

TEST_F(SqliteStoreTest, CommitTwiceIsRefused) {
  OpenStore();
  std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
  ASSERT_TRUE(tx->Commit().ok());
  EXPECT_EQ(tx->Commit().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SqliteStoreTest, ReadersDoNotSeeUncommittedWrites) {
  OpenStore();
  std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
  ASSERT_TRUE(tx->cartridges().InsertLot(MakeLot("LOT-A")).ok());
  {
    std::unique_ptr<ReadTransaction> read = MustBeginRead();
    EXPECT_FALSE(read->cartridges().FindLot(kGtin, "LOT-A")->has_value());
  }
  ASSERT_TRUE(tx->Commit().ok());
  std::unique_ptr<ReadTransaction> read = MustBeginRead();
  EXPECT_TRUE(read->cartridges().FindLot(kGtin, "LOT-A")->has_value());
}

TEST_F(SqliteStoreTest, AReadTransactionKeepsItsSnapshotAcrossALaterCommit) {
  OpenStore();
  std::unique_ptr<ReadTransaction> before = MustBeginRead();
  ASSERT_THAT(*before->cartridges().ListLots({}),
              IsEmpty());  // the snapshot is taken by the first read
  {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    ASSERT_TRUE(tx->cartridges().InsertLot(MakeLot("LOT-A")).ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  EXPECT_FALSE(before->cartridges().FindLot(kGtin, "LOT-A")->has_value());
  EXPECT_THAT(*before->cartridges().ListLots({}), IsEmpty());
  std::unique_ptr<ReadTransaction> after = MustBeginRead();
  EXPECT_TRUE(after->cartridges().FindLot(kGtin, "LOT-A")->has_value());
  EXPECT_THAT(*after->cartridges().ListLots({}), SizeIs(1));
}

// A read that holds its snapshot (a long report, a full audit verification) keeps the write-ahead
// log from restarting, so the log's file grows under the writes meanwhile. Once the read is over,
// a checkpoint copies the log and the next write restarts it: with a limit, that commit cuts the
// file back (steritrack_wal_bytes falls back after a long report); without one, the file keeps
// the largest size it reached.
TEST_F(SqliteStoreTest, TheLogFileIsCutBackToItsLimitOnceALongReadIsOver) {
  static constexpr int64_t kGrown = int64_t{6} << 20;
  auto wal_bytes_after_a_long_read = [](const std::string& path, int64_t limit) -> int64_t {
    absl::StatusOr<std::unique_ptr<Store>> opened =
        OpenSqliteStore({.path = path,
                         .readers = 2,
                         .wal_size_limit_bytes = limit,
                         .wal_autocheckpoint_pages = 1000});
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return -1;
    Store& store = **opened;
    const std::string wal = StrCat(path, "-wal");
    int64_t lot_id = 0;
    int serial = 0;
    auto write_units = [&](int units) { WriteUnits(store, &lot_id, &serial, units); };
    write_units(1);
    {
      absl::StatusOr<std::unique_ptr<ReadTransaction>> report = store.BeginRead();
      EXPECT_TRUE(report.ok()) << report.status();
      if (!report.ok()) return -1;
      EXPECT_TRUE((*report)->cartridges().ListLots({}).ok());  // takes the snapshot
      // Past the automatic checkpoint (1,000 pages here, ~4 MB), which cannot restart the log now.
      int64_t grown = 0;
      for (int round = 0; round < 400 && grown <= kGrown; ++round) {
        write_units(200);
        grown = static_cast<int64_t>(std::filesystem::file_size(wal));
      }
      EXPECT_GT(grown, kGrown) << "the log did not grow under the held snapshot";
    }
    // The read is over: the next commit's checkpoint copies the whole log, and a later write
    // restarts it.
    for (int i = 0; i < 3; ++i) write_units(1);
    return static_cast<int64_t>(std::filesystem::file_size(wal));
  };
  const int64_t limit = int64_t{1} << 20;
  const int64_t with_limit = wal_bytes_after_a_long_read(path_, limit);
  EXPECT_GT(with_limit, 0);
  EXPECT_LE(with_limit, limit);
  // The same without a limit: the file stays as large as it grew (what the limit is for).
  EXPECT_GT(wal_bytes_after_a_long_read(StrCat(dir_, "/unlimited.db"), -1), kGrown);
}

// The writer's automatic checkpoint runs once the write-ahead log passes wal_autocheckpoint_pages:
// the log's file then restarts from its beginning and stays about that size, while with the
// checkpoint off it grows with every commit.
TEST_F(SqliteStoreTest, TheWriterCheckpointsOnceTheLogPassesItsPages) {
  auto wal_bytes_after_writes = [&](const std::string& path, int pages) -> int64_t {
    absl::StatusOr<std::unique_ptr<Store>> opened =
        OpenSqliteStore({.path = path, .readers = 1, .wal_autocheckpoint_pages = pages});
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return -1;
    int64_t lot_id = 0;
    int serial = 0;
    int64_t largest = 0;
    for (int round = 0; round < 60; ++round) {
      WriteUnits(**opened, &lot_id, &serial, 100);
      largest =
          std::max(largest, static_cast<int64_t>(std::filesystem::file_size(StrCat(path, "-wal"))));
    }
    return largest;
  };
  const int64_t with_checkpoints = wal_bytes_after_writes(path_, 100);
  const int64_t without = wal_bytes_after_writes(StrCat(dir_, "/no-checkpoint.db"), 0);
  ASSERT_GT(with_checkpoints, 0);
  // 60 commits of 100 units each: the log holds them all without a checkpoint, and at most the
  // last few (100 pages and what one commit adds past them) with one.
  EXPECT_GT(without, 4 * with_checkpoints) << "with " << with_checkpoints;
  EXPECT_LT(with_checkpoints, int64_t{2} << 20);
}

// The writer connection runs on the VFS that gathers the WAL's writes (server/storage/wal_vfs.h):
// a commit of a hundred units, which SQLite writes as a dozen or more frame headers and pages, goes
// to the file in a call or two, and what it wrote is there for a connection of its own.
TEST_F(SqliteStoreTest, TheWriterGathersEachCommitsWalWritesIntoFewCalls) {
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore({.path = path_, .readers = 1});
  ASSERT_TRUE(store.ok()) << store.status();
  int64_t lot_id = 0;
  int serial = 0;
  WriteUnits(**store, &lot_id, &serial, 1);
  const wal_vfs::Counts before = wal_vfs::GetCounts();
  for (int round = 0; round < 5; ++round) WriteUnits(**store, &lot_id, &serial, 100);
  const wal_vfs::Counts after = wal_vfs::GetCounts();
  EXPECT_EQ(after.commits - before.commits, 5);
  EXPECT_GE(after.writes_in - before.writes_in, 5 * 12);
  EXPECT_LE(after.writes_out - before.writes_out, 5 * 2);

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* count = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM cartridges", -1, &count, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(count), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(count, 0), 501);
  sqlite3_finalize(count);
  sqlite3_close_v2(db);
}

// SQLite's memory statistics are off in the store's process (sqlite_process.h): with them on,
// every allocation and free SQLite makes takes one process-wide mutex, 6-9% of the write lane's
// time under 64 opens in flight. The store's first call into SQLite is the writer VFS's
// registration, which starts SQLite; from 66274b5 to 1bb33e0 that came before the option was set,
// and SQLite refused it (SQLITE_MISUSE) without a word. Checked in a fresh process (the
// "threadsafe" death-test style re-executes this binary, where a fork would inherit whatever an
// earlier test in this one started), with what it found on stderr.
TEST_F(SqliteStoreTest, SqlitesMemoryStatisticsAreOffInAProcessWhoseFirstUseOfSqliteIsTheStore) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        int64_t lot_id = 0;
        int serial = 0;
        WriteUnits(OpenStore(2), &lot_id, &serial, 10);
        const int rc = sqlite_process::Configure();
        const int64_t used = sqlite3_memory_used();
        const int64_t highwater = sqlite3_memory_highwater(/*resetFlag=*/0);
        std::fprintf(stderr, "configure=%d memory_used=%lld highwater=%lld\n", rc,
                     static_cast<long long>(used), static_cast<long long>(highwater));
        TearDown();  // the fresh process ran SetUp too
        std::exit(rc == SQLITE_OK && used == 0 && highwater == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "configure=0 memory_used=0 highwater=0");
}

// Where something else in the process started SQLite first, the store still opens and works, and
// says, through its notice, that SQLite refused its settings (instead of the silence above).
TEST_F(SqliteStoreTest, AStoreOpenedAfterSomethingElseStartedSqliteSaysSqliteRefusedItsSettings) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        sqlite3_initialize();
        std::vector<std::string> notices;
        absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(
            {.path = path_, .readers = 1, .notice = [&notices](const std::string& what) {
               notices.push_back(what);
             }});
        for (const std::string& notice : notices)
          std::fprintf(stderr, "notice: %s\n", notice.c_str());
        int exit_code = store.ok() ? 0 : 1;
        if (!store.ok()) std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
        if (store.ok()) {
          int64_t lot_id = 0;
          int serial = 0;
          WriteUnits(**store, &lot_id, &serial, 1);
          store->reset();
        }
        TearDown();
        std::exit(exit_code);
      },
      ::testing::ExitedWithCode(0),
      "notice: SQLite was started in this process before steritrack could configure it: its "
      "memory statistics stay on");
}

// The reader hooks (steritrack_reader_pages_total): each read transaction on a pooled reader tells
// them, as it ends, the pages it asked for: read from the file while the connection's cache is
// cold, from the cache when the same read comes again, and from the file again once a write has
// changed the database (SQLite then empties a reader's cache at its next read).
TEST_F(SqliteStoreTest, TheReaderHooksCountEachReadsPagesFromTheFileOrTheCache) {
  struct Pages {
    int64_t reads = 0;
    int64_t cached = 0;
    int64_t from_file = 0;
  };
  absl::Mutex mu;
  Pages total;
  SqliteReaderHooks hooks{.pages_read = [&](int64_t cached, int64_t from_file) {
    absl::MutexLock lock(&mu);
    ++total.reads;
    total.cached += cached;
    total.from_file += from_file;
  }};
  absl::StatusOr<std::unique_ptr<Store>> opened =
      OpenSqliteStore({.path = path_, .readers = 1, .reader_hooks = hooks});
  ASSERT_TRUE(opened.ok()) << opened.status();
  store_ = *std::move(opened);
  auto write_unit = [&](std::string_view serial) {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    ASSERT_NE(tx, nullptr);
    absl::StatusOr<std::optional<Lot>> lot = tx->cartridges().FindLot(kGtin, "LOT-A");
    ASSERT_TRUE(lot.ok()) << lot.status();
    int64_t lot_id = lot->has_value() ? (*lot)->id : 0;
    if (lot_id == 0) {
      absl::StatusOr<int64_t> inserted = tx->cartridges().InsertLot(MakeLot("LOT-A"));
      ASSERT_TRUE(inserted.ok()) << inserted.status();
      lot_id = *inserted;
    }
    ASSERT_TRUE(tx->cartridges().InsertCartridge(MakeCartridge(serial, lot_id)).ok());
    ASSERT_TRUE(tx->Commit().ok());
  };
  // One read: the unit with its lot. Returns what the hooks were told of it.
  auto read_unit = [&](std::string_view serial) -> Pages {
    Pages before;
    {
      absl::MutexLock lock(&mu);
      before = total;
    }
    {
      std::unique_ptr<ReadTransaction> tx = MustBeginRead();
      if (tx == nullptr) return {};
      absl::StatusOr<std::optional<Cartridge>> found =
          tx->cartridges().FindCartridge(kGtin, serial);
      EXPECT_TRUE(found.ok() && found->has_value()) << serial;
    }
    absl::MutexLock lock(&mu);
    return Pages{.reads = total.reads - before.reads,
                 .cached = total.cached - before.cached,
                 .from_file = total.from_file - before.from_file};
  };
  write_unit("S1");
  write_unit("S2");

  const Pages cold = read_unit("S1");
  EXPECT_EQ(cold.reads, 1);
  EXPECT_GT(cold.from_file, 0);
  const Pages again = read_unit("S1");
  EXPECT_EQ(again.reads, 1);
  EXPECT_GT(again.cached, 0);
  EXPECT_EQ(again.from_file, 0) << "nothing changed since the same read";
  write_unit("S3");
  const Pages after_a_write = read_unit("S1");
  EXPECT_EQ(after_a_write.reads, 1);
  EXPECT_GT(after_a_write.from_file, 0);
}

TEST_F(SqliteStoreTest, TheWriterHasTheLogSizeLimitByDefault) {
  std::vector<sqlite3*> handles;
  {
    ConnectionSpy spy;
    OpenStore(/*readers=*/1);
    handles = ConnectionSpy::handles();
  }
  ASSERT_THAT(handles, SizeIs(2));
  EXPECT_EQ(ConnectionSpy::Pragma(handles[0], "PRAGMA journal_size_limit"),
            std::to_string(int64_t{64} << 20));
}

// ---------------------------------------------------------------------------------------------------
// Queries

class SqliteStoreQueryTest : public SqliteStoreTest {
 protected:
  // Lot A: S1..S6; lot B: B1, B2. Treatment 1 opens S1 (disposed) and S2; treatment 2 opens B1;
  // S3 is written off. Everything else is in stock.
  void SetUp() override {
    SqliteStoreTest::SetUp();
    OpenStore();
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    lot_a_ = *tx->cartridges().InsertLot(MakeLot("LOT-A"));
    lot_b_ = *tx->cartridges().InsertLot(MakeLot("LOT-B", kGtinB));
    t1_ = *tx->cartridges().InsertTreatment(MakeTreatment("Room 1"));
    t2_ = *tx->cartridges().InsertTreatment(MakeTreatment("Room 2"));
    for (int i = 1; i <= 6; ++i) {
      a_.push_back(*tx->cartridges().InsertCartridge(MakeCartridge(StrCat("S", i), lot_a_)));
    }
    b_.push_back(*tx->cartridges().InsertCartridge(MakeCartridge("B1", lot_b_, kGtinB)));
    b_.push_back(*tx->cartridges().InsertCartridge(MakeCartridge("B2", lot_b_, kGtinB)));
    ASSERT_TRUE(tx->cartridges().RecordUse(a_[0], MakeUse(t1_, "Room 1")).ok());
    ASSERT_TRUE(tx->cartridges()
                    .RecordDisposal(
                        a_[0], Disposal{.container_id = "SHARPS-1", .at = kNow, .by = "nurse.kim"})
                    .ok());
    ASSERT_TRUE(tx->cartridges().RecordUse(a_[1], MakeUse(t1_, "Room 1")).ok());
    ASSERT_TRUE(tx->cartridges().RecordUse(b_[0], MakeUse(t2_, "Room 2")).ok());
    ASSERT_TRUE(
        tx->cartridges()
            .RecordDiscard(a_[2], Discard{.reason = "dropped", .at = kNow, .by = "nurse.kim"})
            .ok());
    ASSERT_TRUE(tx->Commit().ok());
  }

  std::vector<int64_t> List(const CartridgeFilter& filter) {
    std::unique_ptr<ReadTransaction> tx = MustBeginRead();
    absl::StatusOr<std::vector<Cartridge>> got = tx->cartridges().ListCartridges(filter);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? IdsOf(*got) : std::vector<int64_t>{};
  }

  // Appends an audit entry about these ids (0: none) through core's hash chain; its seq, 0 (and a
  // failure) when it could not.
  static int64_t AppendEntry(WriteTransaction& tx, int64_t lot, int64_t cartridge,
                             int64_t treatment, std::string action = "X", absl::Time at = kNow) {
    absl::StatusOr<int64_t> seq = audit_chain::Append(tx.audit(), *TestSha256(),
                                                      Event{.at = at,
                                                            .actor = "nurse.kim",
                                                            .action = std::move(action),
                                                            .lot_id = lot,
                                                            .cartridge_id = cartridge,
                                                            .treatment_id = treatment,
                                                            .detail = "d",
                                                            .request_id = "r"});
    EXPECT_TRUE(seq.ok()) << seq.status();
    return seq.value_or(0);
  }

  // Reopens the store with one reader whose reads are counted in the pages they asked SQLite for
  // (found in its cache or read from the file): what PagesOf measures.
  void ReopenCountingPages() {
    CloseStore();
    SqliteReaderHooks hooks{
        .pages_read = [this](int64_t cached, int64_t from_file) { pages_ += cached + from_file; }};
    absl::StatusOr<std::unique_ptr<Store>> opened =
        OpenSqliteStore({.path = path_, .readers = 1, .reader_hooks = hooks});
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
  }

  // The pages of one read transaction that runs `read`.
  template <typename Read>
  int64_t PagesOf(Read read) {
    const int64_t before = pages_.load();
    {
      std::unique_ptr<ReadTransaction> tx = MustBeginRead();
      if (tx == nullptr) return -1;
      read(*tx);
    }
    return pages_.load() - before;
  }

  int64_t lot_a_ = 0, lot_b_ = 0, t1_ = 0, t2_ = 0;
  std::vector<int64_t> a_, b_;
  std::atomic<int64_t> pages_{0};
};

TEST_F(SqliteStoreQueryTest, ListCartridgesFiltersByDerivedState) {
  EXPECT_THAT(List({.state = CartridgeState::kReceived}), ElementsAre(a_[3], a_[4], a_[5], b_[1]));
  EXPECT_THAT(List({.state = CartridgeState::kOpened}), ElementsAre(a_[1], b_[0]));
  EXPECT_THAT(List({.state = CartridgeState::kDisposed}), ElementsAre(a_[0]));
  EXPECT_THAT(List({.state = CartridgeState::kDiscarded}), ElementsAre(a_[2]));
  EXPECT_THAT(List({}), SizeIs(8));
}

TEST_F(SqliteStoreQueryTest, ListCartridgesFiltersByLotAndTreatment) {
  EXPECT_THAT(List({.lot_id = lot_b_}), ElementsAre(b_[0], b_[1]));
  EXPECT_THAT(List({.treatment_id = t1_}), ElementsAre(a_[0], a_[1]));
  EXPECT_THAT(List({.treatment_id = t2_}), ElementsAre(b_[0]));
  EXPECT_THAT(List({.state = CartridgeState::kOpened, .lot_id = lot_a_}), ElementsAre(a_[1]));
  EXPECT_THAT(List({.state = CartridgeState::kReceived, .treatment_id = t1_}), IsEmpty());
}

TEST_F(SqliteStoreQueryTest, ListCartridgesPagesByKeyInIdOrder) {
  std::vector<int64_t> seen;
  int64_t after = 0;
  int pages = 0;
  while (true) {
    std::vector<int64_t> page = List({.after_id = after, .limit = 3});
    if (page.empty()) break;
    ++pages;
    EXPECT_LE(page.size(), 3u);
    seen.insert(seen.end(), page.begin(), page.end());
    after = page.back();
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  std::vector<int64_t> all = a_;
  all.insert(all.end(), b_.begin(), b_.end());
  EXPECT_EQ(seen, all);
  // Filters and pagination together.
  EXPECT_THAT(List({.lot_id = lot_a_, .after_id = a_[1], .limit = 2}), ElementsAre(a_[2], a_[3]));
}

TEST_F(SqliteStoreQueryTest, ListCartridgesReturnsTheLifeRecordsOfEachUnit) {
  std::unique_ptr<ReadTransaction> tx = MustBeginRead();
  std::vector<Cartridge> got = *tx->cartridges().ListCartridges({.lot_id = lot_a_, .limit = 3});
  ASSERT_THAT(got, SizeIs(3));
  EXPECT_EQ(got[0].lot.lot, "LOT-A");
  EXPECT_EQ(got[0].lot.expiry, absl::CivilDay(2027, 12, 31));
  ASSERT_TRUE(got[0].use.has_value() && got[0].disposal.has_value());
  EXPECT_EQ(got[0].use->treatment_id, t1_);
  EXPECT_EQ(got[0].disposal->container_id, "SHARPS-1");
  ASSERT_TRUE(got[2].discard.has_value());
  EXPECT_EQ(got[2].discard->reason, "dropped");
  EXPECT_FALSE(got[2].use.has_value());
}

TEST_F(SqliteStoreQueryTest, ListEventsByLotCartridgeOrTreatmentAfterASequenceNumber) {
  std::vector<int64_t> seqs;
  {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    auto append = [&](int64_t lot, int64_t cartridge, int64_t treatment) {
      seqs.push_back(AppendEntry(*tx, lot, cartridge, treatment));
    };
    append(lot_a_, 0, 0);        // 0: lot A only
    append(lot_a_, a_[0], 0);    // 1: unit S1
    append(lot_a_, a_[0], t1_);  // 2: S1 in treatment 1
    append(0, 0, t1_);           // 3: treatment 1 only
    append(lot_b_, b_[0], t2_);  // 4: B1 in treatment 2
    append(lot_a_, a_[1], t1_);  // 5: S2 in treatment 1
    ASSERT_TRUE(tx->Commit().ok());
  }
  std::unique_ptr<ReadTransaction> tx = MustBeginRead();
  auto list = [&](const EventFilter& f) {
    absl::StatusOr<std::vector<Event>> got = tx->audit().ListEvents(f);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? SeqsOf(*got) : std::vector<int64_t>{};
  };
  EXPECT_THAT(list({.lot_id = lot_a_}), ElementsAre(seqs[0], seqs[1], seqs[2], seqs[5]));
  EXPECT_THAT(list({.cartridge_id = a_[0]}), ElementsAre(seqs[1], seqs[2]));
  EXPECT_THAT(list({.treatment_id = t1_}), ElementsAre(seqs[2], seqs[3], seqs[5]));
  EXPECT_THAT(list({.lot_id = lot_a_, .after_seq = seqs[1]}), ElementsAre(seqs[2], seqs[5]));
  EXPECT_THAT(list({.lot_id = lot_a_, .after_seq = seqs[1], .limit = 1}), ElementsAre(seqs[2]));
  // Any of the ids: B1's events or treatment 1's.
  EXPECT_THAT(list({.cartridge_id = b_[0], .treatment_id = t1_}),
              ElementsAre(seqs[2], seqs[3], seqs[4], seqs[5]));
  // No id: every event (store.h; the conformance suite pins the same for every backend).
  EXPECT_THAT(list({}), ElementsAre(seqs[0], seqs[1], seqs[2], seqs[3], seqs[4], seqs[5]));

  std::vector<Event> one = *tx->audit().ListEvents({.cartridge_id = b_[0]});
  ASSERT_THAT(one, SizeIs(1));
  EXPECT_EQ(one[0].lot_id, lot_b_);
  EXPECT_EQ(one[0].treatment_id, t2_);
  EXPECT_EQ(one[0].at, kNow);
  EXPECT_EQ(one[0].actor, "nurse.kim");
  EXPECT_EQ(one[0].request_id, "r");
  std::vector<Event> no_ids =
      *tx->audit().ListEvents({.treatment_id = t1_, .after_seq = seqs[2], .limit = 1});
  ASSERT_THAT(no_ids, SizeIs(1));
  EXPECT_EQ(no_ids[0].lot_id, 0);  // NULL in the database reads back as "none"
  EXPECT_EQ(no_ids[0].cartridge_id, 0);
}

// A cartridge's history, a lot's, a treatment's: each is a few index ranges, however long the
// audit trail. The statement behind them ORs one arm per kind of id, and SQLite can look that up
// through the partial indexes only if every arm has an index: drop one (events_lot, say) and every
// such listing walks the whole trail from its first entry. Counted in pages, not timed.
TEST_F(SqliteStoreQueryTest, EventListingsByIdReadAFewPagesNotTheWholeTrail) {
  constexpr int kFiller = 4000;
  std::vector<int64_t> seqs;
  {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    auto append = [&](int64_t lot, int64_t cartridge, int64_t treatment) {
      seqs.push_back(AppendEntry(*tx, lot, cartridge, treatment));
    };
    for (int i = 0; i < kFiller; ++i) append(lot_b_, b_[1], t2_);  // another lot's unit
    append(lot_a_, 0, 0);                                          // kFiller + 0: lot A as a whole
    append(lot_a_, a_[3], 0);                                      // kFiller + 1: unit S4
    append(lot_a_, a_[3], t1_);                                    // kFiller + 2: S4 in treatment 1
    ASSERT_TRUE(tx->Commit().ok());
  }
  ReopenCountingPages();
  // The events the filter lists, and the pages its read asked for.
  auto list = [&](const EventFilter& f) -> std::pair<std::vector<int64_t>, int64_t> {
    std::vector<int64_t> got;
    const int64_t pages = PagesOf([&](ReadTransaction& tx) {
      absl::StatusOr<std::vector<Event>> events = tx.audit().ListEvents(f);
      EXPECT_TRUE(events.ok()) << events.status();
      if (events.ok()) got = SeqsOf(*events);
    });
    return {got, pages};
  };
  const int64_t a = seqs[kFiller], s4 = seqs[kFiller + 1], s4_t1 = seqs[kFiller + 2];

  // The whole trail, for scale: what a scan costs.
  const auto [all, all_pages] = list({.limit = kFiller + 10});
  ASSERT_THAT(all, SizeIs(kFiller + 3));
  ASSERT_GT(all_pages, 150);

  for (const auto& [name, filter, want] : {
           std::tuple{"unit S4", EventFilter{.cartridge_id = a_[3]}, std::vector{s4, s4_t1}},
           std::tuple{"lot A", EventFilter{.lot_id = lot_a_}, std::vector{a, s4, s4_t1}},
           std::tuple{"treatment 1", EventFilter{.treatment_id = t1_}, std::vector{s4_t1}},
           std::tuple{"lot A as a whole", EventFilter{.lot_id = lot_a_, .lot_wide_only = true},
                      std::vector{a}},
           std::tuple{"unit S4 or treatment 1",
                      EventFilter{.cartridge_id = a_[3], .treatment_id = t1_},
                      std::vector{s4, s4_t1}},
       }) {
    const auto [got, read] = list(filter);
    EXPECT_THAT(got, ElementsAreArray(want)) << name;
    EXPECT_LT(read, 30) << name << ": " << read << " pages, against " << all_pages
                        << " for the whole trail";
  }
}

// The other reads a scan does at every turn: the unit scanned (with its lot, use, disposal and
// write-off), a recalled lot's units and a treatment's (the look-back), and a rare action's audit
// entries (a report's refusals and stock alerts). Each is a few pages of its index, among 6,000
// other units and 4,000 other entries.
TEST_F(SqliteStoreQueryTest, AUnitALotsUnitsAndARareActionAreReadThroughTheirIndexes) {
  constexpr int kUnits = 6000, kEntries = 4000;
  std::vector<int64_t> rare;
  {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    for (int i = 0; i < kUnits; ++i) {
      ASSERT_TRUE(tx->cartridges()
                      .InsertCartridge(MakeCartridge(StrCat("FILLER", i), lot_b_, kGtinB))
                      .ok());
    }
    for (int i = 0; i < kEntries; ++i) AppendEntry(*tx, 0, 0, 0, "X");
    rare = {AppendEntry(*tx, 0, 0, 0, "RARE"), AppendEntry(*tx, 0, 0, 0, "RARE")};
    ASSERT_TRUE(tx->Commit().ok());
  }
  ReopenCountingPages();

  // For scale: every unit of lot B, every entry.
  const int64_t all_units = PagesOf([&](ReadTransaction& tx) {
    EXPECT_THAT(tx.cartridges().ListCartridges({.lot_id = lot_b_, .limit = kUnits + 10}).value(),
                SizeIs(kUnits + 2));
  });
  const int64_t all_entries = PagesOf([&](ReadTransaction& tx) {
    EXPECT_THAT(tx.audit().ListAuditEntries({.limit = kEntries + 10}).value(),
                SizeIs(kEntries + 2));
  });
  ASSERT_GT(all_units, 60);
  ASSERT_GT(all_entries, 150);

  const std::pair<const char*, int64_t> reads[] = {
      {"the unit by its barcode", PagesOf([&](ReadTransaction& tx) {
         absl::StatusOr<std::optional<Cartridge>> s1 = tx.cartridges().FindCartridge(kGtin, "S1");
         ASSERT_TRUE(s1.ok() && s1->has_value());
         EXPECT_EQ((*s1)->disposal->container_id, "SHARPS-1");
       })},
      {"the unit by its id", PagesOf([&](ReadTransaction& tx) {
         absl::StatusOr<std::optional<Cartridge>> s3 = tx.cartridges().FindCartridgeById(a_[2]);
         ASSERT_TRUE(s3.ok() && s3->has_value());
         EXPECT_TRUE((*s3)->discard.has_value());
       })},
      {"lot A's units", PagesOf([&](ReadTransaction& tx) {
         EXPECT_THAT(tx.cartridges().ListCartridges({.lot_id = lot_a_}).value(), SizeIs(6));
       })},
      {"treatment 1's units", PagesOf([&](ReadTransaction& tx) {
         EXPECT_THAT(IdsOf(tx.cartridges().ListCartridges({.treatment_id = t1_}).value()),
                     ElementsAre(a_[0], a_[1]));
       })},
      {"the rare action's entries", PagesOf([&](ReadTransaction& tx) {
         EXPECT_THAT(SeqsOf(tx.audit().ListAuditEntries({.action = "RARE"}).value()),
                     ElementsAreArray(rare));
       })},
  };
  for (const auto& [name, pages] : reads) {
    EXPECT_GE(pages, 1) << name;
    EXPECT_LT(pages, 30) << name << ": " << pages << " pages, against " << all_units
                         << " for every unit of a lot and " << all_entries << " for every entry";
  }
}

// A period's audit entries, among 4,000 before it and 4,000 after it in a long trail: listed with
// no action, a common one or a rare one, each read is a few pages of the period's index and the
// entries themselves, not a walk of the trail from its start to its end (a day of a 54M-entry
// trail took 30 s that way).
TEST_F(SqliteStoreQueryTest, APeriodsAuditEntriesAreReadWhereTheyLieNotByWalkingTheTrail) {
  constexpr int kAround = 4000;
  const absl::Time from = kNow + absl::Hours(2), to = kNow + absl::Hours(3);
  std::vector<int64_t> in_period, x_in_period, y_in_period;
  {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    for (int i = 0; i < kAround; ++i) AppendEntry(*tx, 0, 0, 0, "X", kNow + absl::Seconds(i));
    for (int i = 0; i < 6; ++i) {
      const std::string action = i % 3 == 0 ? "Y" : "X";
      const int64_t seq = AppendEntry(*tx, 0, 0, 0, action, from + absl::Minutes(i));
      in_period.push_back(seq);
      (action == "X" ? x_in_period : y_in_period).push_back(seq);
    }
    for (int i = 0; i < kAround; ++i) AppendEntry(*tx, 0, 0, 0, "X", to + absl::Seconds(i));
    ASSERT_TRUE(tx->Commit().ok());
  }
  ReopenCountingPages();
  const int64_t all_entries = PagesOf([&](ReadTransaction& tx) {
    EXPECT_THAT(tx.audit().ListAuditEntries({.limit = 2 * kAround + 10}).value(),
                SizeIs(2 * kAround + 6));
  });
  ASSERT_GT(all_entries, 300);
  for (const auto& [action, want] :
       {std::pair{"", in_period}, std::pair{"X", x_in_period}, std::pair{"Y", y_in_period}}) {
    const int64_t pages = PagesOf([&](ReadTransaction& tx) {
      EXPECT_THAT(
          SeqsOf(tx.audit()
                     .ListAuditEntries({.action = action, .from = from, .to = to, .limit = 10})
                     .value()),
          ElementsAreArray(want))
          << "action '" << action << "'";
    });
    EXPECT_LT(pages, 30) << "action '" << action << "': " << pages << " pages, against "
                         << all_entries << " for every entry";
  }
  // A next page, full and then short (the last): from a cursor in the period.
  for (const auto& [limit, want] :
       {std::pair{2, std::vector{in_period[2], in_period[3]}},
        std::pair{10, std::vector{in_period[2], in_period[3], in_period[4], in_period[5]}}}) {
    const int64_t pages = PagesOf([&](ReadTransaction& tx) {
      EXPECT_THAT(
          SeqsOf(tx.audit()
                     .ListAuditEntries(
                         {.after_seq = in_period[1], .from = from, .to = to, .limit = limit})
                     .value()),
          ElementsAreArray(want))
          << "pages of " << limit;
    });
    EXPECT_LT(pages, 30) << "a next page of " << limit << ": " << pages << " pages, against "
                         << all_entries << " for every entry";
  }
}

TEST_F(SqliteStoreTest, SavedRequestRoundTripsByteForByte) {
  OpenStore();
  // The encoded answer is binary: NUL bytes and high bytes must survive.
  const std::string response("v1\0\x01\xff\xfe tail", 12);
  {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();
    ASSERT_TRUE(tx->audit()
                    .SaveRequest(StoredRequest{.request_id = "req-42",
                                               .operation = "OpenCartridge",
                                               .fingerprint = "gtin|serial|7",
                                               .response = response,
                                               .at = kNow})
                    .ok());
    EXPECT_EQ(tx->audit()
                  .SaveRequest(StoredRequest{.request_id = "req-42",
                                             .operation = "Other",
                                             .fingerprint = "",
                                             .response = "y",
                                             .at = kNow})
                  .code(),
              absl::StatusCode::kAlreadyExists);
    ASSERT_TRUE(tx->Commit().ok());
  }
  std::unique_ptr<ReadTransaction> tx = MustBeginRead();
  absl::StatusOr<std::optional<StoredRequest>> got = tx->audit().FindRequest("req-42");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->request_id, "req-42");
  EXPECT_EQ((*got)->operation, "OpenCartridge");
  EXPECT_EQ((*got)->fingerprint, "gtin|serial|7");
  EXPECT_EQ((*got)->response, response);
  EXPECT_EQ((*got)->at, kNow);
  EXPECT_FALSE(tx->audit().FindRequest("req-43")->has_value());
}

// ---------------------------------------------------------------------------------------------------
// Concurrency

TEST_F(SqliteStoreTest, ConcurrentWritersAllCommit) {
  OpenStore();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  std::atomic<int> errors{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        absl::StatusOr<std::unique_ptr<WriteTransaction>> tx = store().BeginWrite();
        if (!tx.ok()) {
          ADD_FAILURE() << tx.status();
          ++errors;
          continue;
        }
        absl::StatusOr<int64_t> id = (*tx)->cartridges().InsertLot(MakeLot(StrCat("T", t, "-", i)));
        absl::Status commit = id.ok() ? (*tx)->Commit() : id.status();
        if (!commit.ok()) {
          ADD_FAILURE() << commit;
          ++errors;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  std::unique_ptr<ReadTransaction> read = MustBeginRead();
  std::vector<Lot> lots = *read->cartridges().ListLots({.limit = 10000});
  EXPECT_THAT(lots, SizeIs(kThreads * kPerThread));
  std::set<std::string> names;
  for (const Lot& l : lots) names.insert(l.lot);
  EXPECT_EQ(names.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_TRUE(read->cartridges()
                  .FindLot(kGtin, StrCat("T", kThreads - 1, "-", kPerThread - 1))
                  ->has_value());
}

TEST_F(SqliteStoreTest, MoreReadersThanThePoolWhileAWriterWritesAllSucceed) {
  constexpr int kPool = 2;
  constexpr int kReaders = 12;
  constexpr int kReads = 40;
  constexpr int kWrites = 100;
  OpenStore(kPool);
  std::atomic<int> errors{0};
  std::latch start(kReaders + 1);
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    start.arrive_and_wait();
    for (int i = 0; i < kWrites; ++i) {
      absl::StatusOr<std::unique_ptr<WriteTransaction>> tx = store().BeginWrite();
      absl::Status status =
          tx.ok() ? (*tx)->cartridges().InsertLot(MakeLot(StrCat("W", i))).status() : tx.status();
      if (status.ok()) status = (*tx)->Commit();
      if (!status.ok()) {
        ADD_FAILURE() << "writer: " << status;
        ++errors;
      }
    }
  });
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      size_t last = 0;
      for (int i = 0; i < kReads; ++i) {
        absl::StatusOr<std::unique_ptr<ReadTransaction>> tx = store().BeginRead();
        if (!tx.ok()) {
          ADD_FAILURE() << "reader: " << tx.status();
          ++errors;
          continue;
        }
        absl::StatusOr<std::vector<Lot>> lots = (*tx)->cartridges().ListLots({.limit = 1000});
        absl::StatusOr<std::optional<Lot>> first = (*tx)->cartridges().FindLot(kGtin, "W0");
        if (!lots.ok() || !first.ok()) {
          ADD_FAILURE() << "reader: " << lots.status() << " " << first.status();
          ++errors;
          continue;
        }
        // Committed lots never disappear from a later snapshot.
        if (lots->size() < last) {
          ADD_FAILURE() << "snapshot went back from " << last << " to " << lots->size();
          ++errors;
        }
        last = lots->size();
        if (!lots->empty() && !first->has_value()) {
          ADD_FAILURE() << "W0 missing from a snapshot that has " << lots->size() << " lots";
          ++errors;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  std::unique_ptr<ReadTransaction> read = MustBeginRead();
  EXPECT_THAT(*read->cartridges().ListLots({.limit = 1000}), SizeIs(kWrites));
}

// ---------------------------------------------------------------------------------------------------
// Core's CartridgeService over the SQLite store

class CoreOverSqliteTest : public SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    OpenStore();
    StartService();
  }
  void TearDown() override {
    service_.reset();
    SqliteStoreTest::TearDown();
  }
  void StartService() {
    service_ = std::make_unique<CartridgeService>(
        CartridgeServiceOptions{.store = &store(), .sha256 = TestSha256(), .clock = &clock_});
  }
  CartridgeService& service() { return *service_; }

  static WriteContext Ctx(std::string request_id = "") {
    return WriteContext{.actor = "nurse.kim", .request_id = std::move(request_id)};
  }
  static std::string Unit(std::string_view serial) {
    return StrCat("(01)", kGtin, "(17)271231(10)LOT-A(21)", serial);
  }

  std::vector<Event> EventsOf(std::string_view serial) {
    std::optional<Cartridge> c = Find(serial);
    if (!c.has_value()) return {};
    std::unique_ptr<ReadTransaction> tx = MustBeginRead();
    return *tx->audit().ListEvents({.cartridge_id = c->id});
  }

  FixedClock clock_{kNow};
  std::unique_ptr<CartridgeService> service_;
};

TEST_F(CoreOverSqliteTest, TwelveRoomsOpeningTheSameUnitAtOnceExactlyOneWins) {
  constexpr int kRooms = 12;
  ASSERT_TRUE(service().Receive(Ctx(), {Unit("S1")}).ok());
  std::vector<int64_t> treatments;
  for (int i = 0; i < kRooms; ++i) {
    absl::StatusOr<Treatment> t =
        service().StartTreatment(Ctx(), StrCat("Room ", i + 1), "dr.lee", StrCat("client-", i));
    ASSERT_TRUE(t.ok()) << t.status();
    treatments.push_back(t->id);
  }

  std::vector<absl::StatusOr<Cartridge>> results(kRooms, absl::UnknownError("not run"));
  std::latch go(kRooms);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRooms; ++i) {
    threads.emplace_back([&, i] {
      go.arrive_and_wait();
      results[static_cast<size_t>(i)] =
          service().Open(Ctx(), Unit("S1"), treatments[static_cast<size_t>(i)]);
    });
  }
  for (std::thread& t : threads) t.join();

  int ok = 0;
  int64_t winner = 0;
  for (const auto& r : results) {
    if (r.ok()) {
      ++ok;
      winner = r->use->treatment_id;
    }
  }
  ASSERT_EQ(ok, 1);
  for (const auto& r : results) {
    if (r.ok()) continue;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
    EXPECT_EQ(ReasonOf(r.status()), "CARTRIDGE_ALREADY_USED") << r.status();
    EXPECT_EQ(MetaOf(r.status(), "treatment"), StrCat(winner));
  }
  std::optional<Cartridge> stored = Find("S1");
  ASSERT_TRUE(stored.has_value() && stored->use.has_value());
  EXPECT_EQ(stored->use->treatment_id, winner);
  int opened = 0;
  for (const Event& e : EventsOf("S1")) opened += e.action == "CARTRIDGE_OPENED" ? 1 : 0;
  EXPECT_EQ(opened, 1);
}

TEST_F(CoreOverSqliteTest, RequestIdReplayAfterReopeningTheStoreGivesTheSameAnswer) {
  ASSERT_TRUE(service().Receive(Ctx(), {Unit("S1")}).ok());
  absl::StatusOr<Treatment> t = service().StartTreatment(Ctx(), "Room 3", "dr.lee", "client-7");
  ASSERT_TRUE(t.ok()) << t.status();
  absl::StatusOr<Cartridge> first = service().Open(Ctx("open-S1-once"), Unit("S1"), t->id);
  ASSERT_TRUE(first.ok()) << first.status();
  const size_t events_before = EventsOf("S1").size();

  // The server restarts: a new store over the same file, a new service, and the clock has moved.
  service_.reset();
  CloseStore();
  OpenStore();
  StartService();
  clock_.Set(kNow + absl::Minutes(7));

  absl::StatusOr<Cartridge> again = service().Open(Ctx("open-S1-once"), Unit("S1"), t->id);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, first->id);
  EXPECT_EQ(again->gtin, first->gtin);
  EXPECT_EQ(again->serial, first->serial);
  EXPECT_EQ(again->state, CartridgeState::kOpened);
  EXPECT_EQ(again->lot.id, first->lot.id);
  EXPECT_EQ(again->lot.expiry, first->lot.expiry);
  ASSERT_TRUE(again->use.has_value());
  EXPECT_EQ(again->use->treatment_id, first->use->treatment_id);
  EXPECT_EQ(again->use->room, first->use->room);
  EXPECT_EQ(again->use->at, first->use->at);
  EXPECT_EQ(again->use->by, first->use->by);
  EXPECT_EQ(EventsOf("S1").size(), events_before);

  // Without the request id, the same scan is a second use and is refused: no second use, only
  // exactly one CARTRIDGE_OPEN_REFUSED entry.
  absl::StatusOr<Cartridge> fresh = service().Open(Ctx(), Unit("S1"), t->id);
  EXPECT_EQ(ReasonOf(fresh.status()), "CARTRIDGE_ALREADY_USED");
  std::vector<Event> after = EventsOf("S1");
  ASSERT_EQ(after.size(), events_before + 1);
  EXPECT_EQ(after.back().action, "CARTRIDGE_OPEN_REFUSED");
  EXPECT_EQ(after.back().after, "reason=CARTRIDGE_ALREADY_USED");
}

// The writer hooks (steritrackd's metrics): a write that waits for the single writer counts as
// queued from the moment it asks, every way of letting go takes it off, and only COMMITs are timed.
TEST_F(SqliteStoreTest, WriterHooksSeeWritesWaitingForTheWriterAndEachCommit) {
  absl::Mutex mu;
  int depth = 0;
  int commits = 0;
  SqliteWriterHooks hooks{.queue_changed =
                              [&](int delta) {
                                absl::MutexLock lock(&mu);
                                depth += delta;
                              },
                          .committed =
                              [&](absl::Duration took) {
                                absl::MutexLock lock(&mu);
                                EXPECT_GE(took, absl::ZeroDuration());
                                ++commits;
                              }};
  absl::StatusOr<std::unique_ptr<Store>> opened =
      OpenSqliteStore({.path = path_, .writer_hooks = hooks});
  ASSERT_TRUE(opened.ok()) << opened.status();
  store_ = *std::move(opened);
  auto depth_is = [&](int want) {
    absl::MutexLock lock(&mu);
    return depth == want;
  };
  EXPECT_TRUE(depth_is(0));  // the migrations at open are not writes through the queue

  std::unique_ptr<WriteTransaction> holder = MustBeginWrite();
  ASSERT_NE(holder, nullptr);
  EXPECT_TRUE(depth_is(1));
  std::thread waiter([&] {
    std::unique_ptr<WriteTransaction> tx = MustBeginWrite();  // waits for `holder`
    // Dropped without a commit: rolled back, and off the queue.
  });
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* d) { return *d == 2; }, &depth));
  }
  ASSERT_TRUE(holder->cartridges().InsertLot(MakeLot("LOT-A")).ok());
  ASSERT_TRUE(holder->Commit().ok());
  waiter.join();
  holder.reset();
  EXPECT_TRUE(depth_is(0));
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(commits, 1);  // the rollback was not a commit
  }
}

// ---- Upgrade, backup and restore support (issue 10).

// The files in the test's directory whose names start with `prefix`.
std::vector<std::string> FilesStartingWith(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0) found.push_back(entry.path().string());
  }
  return found;
}

TEST_F(SqliteStoreTest, AnOlderDatabaseIsBackedUpBesideItBeforeItIsMigrated) {
  const int old_version = SqliteSchemaVersion() - 1;
  {
    // The database an older steritrack left: every migration but the last.
    std::FILE* empty = std::fopen(path_.c_str(), "wb");  // an empty file is an empty database
    ASSERT_NE(empty, nullptr);
    std::fclose(empty);
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                       "description TEXT NOT NULL, applied_at INTEGER NOT NULL)"),
              SQLITE_OK);
    for (const sqlite::Migration& m : sqlite::Migrations()) {
      if (m.version > old_version) break;
      ASSERT_EQ(raw.Exec(m.sql), SQLITE_OK) << m.version << ": " << raw.last_error();
      ASSERT_EQ(raw.Exec(StrCat("INSERT INTO schema_migrations VALUES (", m.version, ", 'v",
                                m.version, "', 0)")),
                SQLITE_OK);
    }
    ASSERT_EQ(raw.Exec("INSERT INTO lots (gtin, lot, expiry, created_at) "
                       "VALUES ('09506000134352', 'OLD-LOT', '2030-01-01', 0)"),
              SQLITE_OK)
        << raw.last_error();
  }
  std::vector<std::string> notices;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(
      {.path = path_, .notice = [&](const std::string& what) { notices.push_back(what); }});
  ASSERT_TRUE(store.ok()) << store.status();
  store->reset();

  const std::vector<std::string> backups =
      FilesStartingWith(dir_, StrCat("steritrack.db.pre-v", SqliteSchemaVersion(), "-"));
  ASSERT_EQ(backups.size(), 1u);
  EXPECT_TRUE(backups[0].ends_with(".bak")) << backups[0];
  // The raw connection above started SQLite before the store, so the store may also say SQLite
  // refused its settings (AStoreOpenedAfterSomethingElseStartedSqlite... above); that one is not
  // about the backup.
  std::erase_if(notices, [](const std::string& what) {
    return what.starts_with("SQLite was started in this process before steritrack");
  });
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_THAT(notices[0], ::testing::AllOf(::testing::HasSubstr(backups[0]),
                                           ::testing::HasSubstr(StrCat("v", old_version))));
  // The backup is the database as it was: the old version, with its data, and sound.
  EXPECT_EQ(DatabaseFileSchemaVersion(backups[0]).value_or(-1), old_version);
  EXPECT_TRUE(CheckDatabaseIntegrity(backups[0]).ok());
  RawDb backup(backups[0]);
  EXPECT_EQ(backup.QueryText("SELECT lot FROM lots"), "OLD-LOT");
  RawDb migrated(path_);
  EXPECT_EQ(migrated.QueryInt("SELECT max(version) FROM schema_migrations"), SqliteSchemaVersion());
}

TEST_F(SqliteStoreTest, ANewOrCurrentDatabaseIsNotBackedUpAtOpen) {
  OpenStore();
  CloseStore();
  OpenStore();
  CloseStore();
  EXPECT_THAT(FilesStartingWith(dir_, "steritrack.db.pre-"), ::testing::IsEmpty());
}

TEST_F(SqliteStoreTest, ASnapshotHoldsWhatWasCommittedAndNothingOfAnOpenWrite) {
  OpenStore();
  MustInsertBasics(2);
  std::unique_ptr<DatabaseAdmin> admin = NewSqliteDatabaseAdmin(path_);
  std::string snapshot_path;
  {
    // A write in progress while the snapshot is taken: neither blocks the other.
    std::unique_ptr<WriteTransaction> open_write = MustBeginWrite();
    ASSERT_TRUE(open_write->cartridges().InsertLot(MakeLot("LOT-UNCOMMITTED")).ok());
    absl::StatusOr<std::unique_ptr<DatabaseSnapshot>> snapshot = admin->TakeSnapshot();
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    ASSERT_TRUE(open_write->Commit().ok());
    snapshot_path = (*snapshot)->path();
    EXPECT_EQ((*snapshot)->schema_version(), SqliteSchemaVersion());
    EXPECT_EQ((*snapshot)->bytes(),
              static_cast<int64_t>(std::filesystem::file_size(snapshot_path)));
    EXPECT_EQ((*snapshot)->sha256().size(), 64u);
    EXPECT_TRUE(CheckDatabaseIntegrity(snapshot_path).ok());
    {
      RawDb raw(snapshot_path);
      EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM cartridges"), 2);
      EXPECT_EQ(raw.QueryInt("SELECT count(*) FROM lots WHERE lot = 'LOT-UNCOMMITTED'"), 0);
    }
  }
  // Removed with its object.
  EXPECT_FALSE(std::filesystem::exists(snapshot_path));
  absl::StatusOr<DatabaseStatus> status = admin->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->schema_version, SqliteSchemaVersion());
  EXPECT_EQ(status->build_schema_version, SqliteSchemaVersion());
  EXPECT_GT(status->database_bytes, 0);
  EXPECT_TRUE(status->path.ends_with("/steritrack.db")) << status->path;
}

TEST_F(SqliteStoreTest, ADatabaseFileInUseCannotBeLockedForReplacement) {
  OpenStore();
  MustInsertBasics(1);
  absl::StatusOr<std::unique_ptr<DatabaseFileLock>> lock = LockDatabaseFile(path_);
  EXPECT_EQ(lock.status().code(), absl::StatusCode::kFailedPrecondition) << lock.status();
  EXPECT_THAT(std::string(lock.status().message()), ::testing::HasSubstr("in use"));
  CloseStore();
  lock = LockDatabaseFile(path_);
  ASSERT_TRUE(lock.ok()) << lock.status();
  // Self-contained: the log was checkpointed into the file and removed.
  EXPECT_FALSE(std::filesystem::exists(path_ + "-wal"));
  // While the lock is held no store can open the file.
  EXPECT_FALSE(OpenSqliteStore({.path = path_}).ok());
  lock->reset();
  OpenStore();
  EXPECT_TRUE(Find("S1").has_value());
}

TEST_F(SqliteStoreTest, AnOverwrittenPageFailsTheIntegrityCheck) {
  OpenStore();
  MustInsertBasics(50);
  CloseStore();
  ASSERT_TRUE(CheckDatabaseIntegrity(path_).ok());
  {
    // Page 3 and on hold the tables' b-trees; garbage over one of them.
    std::FILE* f = std::fopen(path_.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, 0, SEEK_END);
    const long size = std::ftell(f);
    const long page = 4096;
    std::fseek(f, (size / page / 2) * page, SEEK_SET);
    const std::string garbage(page, '\xa5');
    std::fwrite(garbage.data(), 1, garbage.size(), f);
    std::fclose(f);
  }
  absl::Status check = CheckDatabaseIntegrity(path_);
  EXPECT_EQ(check.code(), absl::StatusCode::kFailedPrecondition) << check;
  EXPECT_THAT(std::string(check.message()), ::testing::HasSubstr("integrity check failed"));
}

}  // namespace
}  // namespace steritrack
