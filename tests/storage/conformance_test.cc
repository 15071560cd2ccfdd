// The storage conformance suite: one set of typed tests that every implementation of
// steritrack/store.h must pass — the in-memory fake of the core tests, SQLite on a file, SQLite in
// memory (a shared-cache URI, reachable for tampering) and SQLite's private ":memory:". Core's
// tests run against the fake, so the fake must refuse what the schema refuses; a later backend
// (PostgreSQL) joins by adding one Backend class and one line to the type list.
//
// A Backend opens a fresh store and knows how to tamper with it behind the store's back, so that
// the audit chain's tamper detection (written once, in core) is shown to work over every backend.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/storage/pg_store.h"
#include "server/storage/sqlite_store.h"
#include "steritrack/audit_chain.h"
#include "steritrack/error.h"
#include "steritrack/store.h"
#include "steritrack/strings.h"
#include "tests/core/fake_store.h"
#include "tests/storage/pg_test_database.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 11, 30, 9, 0, 0), absl::UTCTimeZone());
constexpr char kGtin[] = "09506000134352";

std::string ReasonOf(const absl::Status& status) {
  std::optional<ErrorInfo> info = GetErrorInfo(status);
  return info.has_value() ? info->reason : std::string();
}

// ---- Backends.

class FakeBackend {
 public:
  static constexpr bool kConcurrentReads = true;
  static constexpr bool kCanTamper = true;
  Store& store() { return store_; }
  void RemoveEntry(int64_t seq) { store_.RemoveEventForTest(seq); }
  void AlterEntryDetail(int64_t seq, std::string_view detail) {
    store_.AlterEventForTest(seq, detail);
  }

 private:
  FakeStore store_;
};

// Raw SQL behind the store's back, with the append-only triggers lifted as an attacker would.
void Tamper(const std::string& path, const std::string& sql, int flags) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, flags, nullptr), SQLITE_OK);
  const std::string script = StrCat(
      "DROP TRIGGER IF EXISTS events_are_final; DROP TRIGGER IF EXISTS events_are_kept; ", sql);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, script.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

class SqliteFileBackend {
 public:
  static constexpr bool kConcurrentReads = true;
  static constexpr bool kCanTamper = true;
  SqliteFileBackend() {
    static std::atomic<int> next{0};
    path_ = (std::filesystem::temp_directory_path() /
             StrCat("steritrack-conformance-", getpid(), "-", next++, ".db"))
                .string();
    store_ = *OpenSqliteStore({.path = path_, .readers = 2});
  }
  ~SqliteFileBackend() {
    store_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  }
  Store& store() { return *store_; }
  void RemoveEntry(int64_t seq) {
    Tamper(path_, StrCat("DELETE FROM events WHERE seq = ", seq, ";"), SQLITE_OPEN_READWRITE);
  }
  void AlterEntryDetail(int64_t seq, std::string_view detail) {
    Tamper(path_, StrCat("UPDATE events SET detail = '", detail, "' WHERE seq = ", seq, ";"),
           SQLITE_OPEN_READWRITE);
  }

 private:
  std::string path_;
  std::unique_ptr<Store> store_;
};

// PostgreSQL 15 (issue 13): a fresh database per test in the throwaway cluster ctest starts
// (tests/pg/cluster.sh, fixture "pg"), whose URL is in STERITRACK_PG_URL. Without it the test
// fails: the suite never passes by skipping a backend.
class PgBackend {
 public:
  static constexpr bool kConcurrentReads = true;
  static constexpr bool kCanTamper = true;
  PgBackend() : db_("conformance") {
    absl::StatusOr<std::unique_ptr<Store>> store =
        db_.ok()
            ? OpenPgStore({.url = db_.url(), .connections = 3})
            : absl::StatusOr<std::unique_ptr<Store>>(absl::FailedPreconditionError("no cluster"));
    if (!store.ok()) {
      ADD_FAILURE() << store.status();
      store_ = std::make_unique<FakeStore>();
      return;
    }
    store_ = *std::move(store);
  }
  Store& store() { return *store_; }
  // As an attacker with the database's superuser would: with the triggers off.
  void RemoveEntry(int64_t seq) {
    PgTestDatabase::Exec(db_.url(),
                         StrCat("SET session_replication_role = replica; DELETE FROM events "
                                "WHERE seq = ",
                                seq));
  }
  void AlterEntryDetail(int64_t seq, std::string_view detail) {
    PgTestDatabase::Exec(db_.url(), StrCat("SET session_replication_role = replica; UPDATE events "
                                           "SET detail = '",
                                           detail, "' WHERE seq = ", seq));
  }

 private:
  PgTestDatabase db_;             // dropped last,
  std::unique_ptr<Store> store_;  // after the store's connections are closed
};

class SqliteMemoryBackend {
 public:
  // One connection: a read transaction and a write may not be open at once on one thread.
  static constexpr bool kConcurrentReads = false;
  static constexpr bool kCanTamper = true;
  SqliteMemoryBackend() {
    static std::atomic<int> next{0};
    uri_ = StrCat("file:conformance-", next++, "?mode=memory&cache=shared");
    store_ = *OpenSqliteStore({.path = uri_});
  }
  Store& store() { return *store_; }
  void RemoveEntry(int64_t seq) {
    Tamper(uri_, StrCat("DELETE FROM events WHERE seq = ", seq, ";"),
           SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI);
  }
  void AlterEntryDetail(int64_t seq, std::string_view detail) {
    Tamper(uri_, StrCat("UPDATE events SET detail = '", detail, "' WHERE seq = ", seq, ";"),
           SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI);
  }

 private:
  std::string uri_;
  std::unique_ptr<Store> store_;
};

// SQLite's private ":memory:" database, as a server started with that path gets it. Nothing but
// the store can reach it, so the tamper-detection tests skip it (SqliteMemory covers them).
class SqlitePrivateMemoryBackend {
 public:
  static constexpr bool kConcurrentReads = false;
  static constexpr bool kCanTamper = false;
  SqlitePrivateMemoryBackend() { store_ = *OpenSqliteStore({.path = ":memory:"}); }
  Store& store() { return *store_; }
  void RemoveEntry(int64_t) { ADD_FAILURE() << "cannot tamper with a private database"; }
  void AlterEntryDetail(int64_t, std::string_view) {
    ADD_FAILURE() << "cannot tamper with a private database";
  }

 private:
  std::unique_ptr<Store> store_;
};

// ---- The suite.

template <typename Backend>
class StoreConformanceTest : public ::testing::Test {
 protected:
  Store& store() { return backend_.store(); }

  std::unique_ptr<WriteTransaction> Write() {
    absl::StatusOr<std::unique_ptr<WriteTransaction>> tx = store().BeginWrite();
    EXPECT_TRUE(tx.ok()) << tx.status();
    return *std::move(tx);
  }
  std::unique_ptr<ReadTransaction> Read() {
    absl::StatusOr<std::unique_ptr<ReadTransaction>> tx = store().BeginRead();
    EXPECT_TRUE(tx.ok()) << tx.status();
    return *std::move(tx);
  }

  static Lot MakeLot(std::string_view name) {
    return Lot{.gtin = kGtin,
               .lot = std::string(name),
               .expiry = absl::CivilDay(2027, 12, 31),
               .created_at = kNow};
  }
  static Cartridge MakeCartridge(std::string_view serial, int64_t lot_id) {
    Cartridge c{
        .gtin = kGtin, .serial = std::string(serial), .received_at = kNow, .received_by = "clerk"};
    c.lot.id = lot_id;
    return c;
  }

  // A lot with `units` cartridges S1..Sn and one treatment; returns {lot, treatment, unit ids}.
  struct Basics {
    int64_t lot_id = 0;
    int64_t treatment_id = 0;
    std::vector<int64_t> units;
  };
  Basics InsertBasics(int units) {
    Basics b;
    std::unique_ptr<WriteTransaction> tx = Write();
    b.lot_id = *tx->cartridges().InsertLot(MakeLot("LOT-A"));
    for (int i = 1; i <= units; ++i) {
      b.units.push_back(*tx->cartridges().InsertCartridge(MakeCartridge(StrCat("S", i), b.lot_id)));
    }
    b.treatment_id = *tx->cartridges().InsertTreatment(Treatment{.room = "Room 1",
                                                                 .clinician = "dr.lee",
                                                                 .client_ref = "C-1",
                                                                 .started_at = kNow,
                                                                 .started_by = "nurse.kim"});
    EXPECT_TRUE(tx->Commit().ok());
    return b;
  }
  CartridgeUse UseIn(int64_t treatment_id) {
    return CartridgeUse{.treatment_id = treatment_id, .room = "Room 1", .at = kNow, .by = "nurse"};
  }

  // A steriliser with one load (cycle 42) holding one packed item.
  struct Sterilisation {
    int64_t sterilizer_id = 0;
    int64_t item_id = 0;
    int64_t load_id = 0;
  };
  Sterilisation InsertLoad(bool bi_required) {
    Sterilisation s;
    std::unique_ptr<WriteTransaction> tx = Write();
    s.sterilizer_id = *tx->sterilization().InsertSterilizer(
        {.name = "AUTOCLAVE1", .type = SterilizerType::kPreVacuum, .created_at = kNow});
    s.item_id = *tx->sterilization().InsertItem({.serial = "HP-1",
                                                 .type = "handpiece",
                                                 .ifu_max_cycles = 500,
                                                 .state = ItemState::kPacked,
                                                 .created_at = kNow});
    s.load_id = *tx->sterilization().InsertLoad({.sterilizer_id = s.sterilizer_id,
                                                 .cycle_number = 42,
                                                 .cycle_type = "134C-4MIN",
                                                 .bi_required = bi_required,
                                                 .shelf_life_days = 30,
                                                 .operator_name = "sp",
                                                 .created_at = kNow,
                                                 .item_ids = {s.item_id}});
    EXPECT_TRUE(tx->Commit().ok());
    return s;
  }

  // Appends `n` audit entries through core's chain.
  void AppendEntries(int n) {
    std::unique_ptr<WriteTransaction> tx = Write();
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<int64_t> seq = audit_chain::Append(tx->audit(), *TestSha256(),
                                                        Event{.at = kNow + absl::Seconds(i),
                                                              .actor = "nurse.kim",
                                                              .action = "CARTRIDGE_OPENED",
                                                              .detail = StrCat("entry ", i + 1),
                                                              .before = "state=RECEIVED",
                                                              .after = "state=OPENED"});
      ASSERT_TRUE(seq.ok()) << seq.status();
    }
    ASSERT_TRUE(tx->Commit().ok());
  }
  // Appends an audit entry at `at` through core's chain, kept in timed_ for Timed().
  void AppendTimed(WriteTransaction& tx, absl::Time at, std::string_view action) {
    Event e{.at = at,
            .actor = "nurse.kim",
            .action = std::string(action),
            .detail = StrCat("entry ", timed_.size() + 1)};
    absl::StatusOr<int64_t> seq = audit_chain::Append(tx.audit(), *TestSha256(), e);
    ASSERT_TRUE(seq.ok()) << seq.status();
    e.seq = *seq;
    timed_.push_back(std::move(e));
  }
  // The seqs of the entries AppendTimed appended in [lo, hi) with `action` (empty: any).
  std::vector<int64_t> Timed(std::optional<absl::Time> lo, std::optional<absl::Time> hi,
                             std::string_view action) const {
    std::vector<int64_t> seqs;
    for (const Event& e : timed_) {
      if ((!lo || e.at >= *lo) && (!hi || e.at < *hi) && (action.empty() || e.action == action)) {
        seqs.push_back(e.seq);
      }
    }
    return seqs;
  }
  // Every entry ListAuditEntries gives for [lo, hi) and `action`, paged the two ways callers page:
  // as the audit log does (a page_size + 1 ask, the cursor at the last entry kept) and as the
  // report does (a page_size ask, the cursor at the last entry). Both must give the same seqs.
  std::vector<int64_t> ListTimed(std::optional<absl::Time> lo, std::optional<absl::Time> hi,
                                 std::string_view action, int page_size) {
    std::vector<int64_t> by_way[2];
    for (int way = 0; way < 2; ++way) {
      std::unique_ptr<ReadTransaction> tx = Read();
      const int ask = way == 0 ? page_size + 1 : page_size;
      for (int64_t after = 0;;) {
        absl::StatusOr<std::vector<Event>> page =
            tx->audit().ListAuditEntries({.after_seq = after,
                                          .action = std::string(action),
                                          .from = lo,
                                          .to = hi,
                                          .limit = ask});
        EXPECT_TRUE(page.ok()) << page.status();
        if (!page.ok()) break;
        const size_t keep = std::min(page->size(), static_cast<size_t>(page_size));
        for (size_t i = 0; i < keep; ++i) by_way[way].push_back((*page)[i].seq);
        if (static_cast<int>(page->size()) < ask || keep == 0) break;
        after = (*page)[keep - 1].seq;
      }
    }
    EXPECT_EQ(by_way[0], by_way[1]) << "paged as the audit log, then as the report";
    return by_way[0];
  }
  AuditChainCheck Verify() {
    std::unique_ptr<ReadTransaction> tx = Read();
    absl::StatusOr<AuditChainCheck> check = audit_chain::Verify(tx->audit(), *TestSha256());
    EXPECT_TRUE(check.ok()) << check.status();
    return check.value_or(AuditChainCheck{});
  }
  AuditChainCheck VerifyAfter(const AuditCheckpoint& checkpoint) {
    std::unique_ptr<ReadTransaction> tx = Read();
    absl::StatusOr<AuditChainCheck> check =
        audit_chain::VerifyAfter(tx->audit(), *TestSha256(), checkpoint);
    EXPECT_TRUE(check.ok()) << check.status();
    return check.value_or(AuditChainCheck{});
  }

  Backend backend_;
  std::vector<Event> timed_;
};

using Backends = ::testing::Types<FakeBackend, SqliteFileBackend, SqliteMemoryBackend,
                                  SqlitePrivateMemoryBackend, PgBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, FakeBackend>) return "Fake";
    if constexpr (std::is_same_v<T, SqliteFileBackend>) return "SqliteFile";
    if constexpr (std::is_same_v<T, SqliteMemoryBackend>) return "SqliteMemory";
    if constexpr (std::is_same_v<T, SqlitePrivateMemoryBackend>) return "SqlitePrivateMemory";
    if constexpr (std::is_same_v<T, PgBackend>) return "Postgres";
    return "Unknown";
  }
};
TYPED_TEST_SUITE(StoreConformanceTest, Backends, BackendNames);

// ---- Cartridges and treatments.

TYPED_TEST(StoreConformanceTest, LotsAndUnitsRoundTripWithTheirLot) {
  auto b = this->InsertBasics(3);
  auto tx = this->Read();
  std::optional<Lot> lot = *tx->cartridges().FindLot(kGtin, "LOT-A");
  ASSERT_TRUE(lot.has_value());
  EXPECT_EQ(lot->id, b.lot_id);
  EXPECT_EQ(lot->expiry, absl::CivilDay(2027, 12, 31));
  EXPECT_EQ(lot->state, LotState::kActive);
  std::optional<Cartridge> c = *tx->cartridges().FindCartridge(kGtin, "S2");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->lot.lot, "LOT-A");
  EXPECT_EQ(c->state, CartridgeState::kReceived);
  EXPECT_EQ(c->received_by, "clerk");
  EXPECT_FALSE(tx->cartridges().FindCartridge(kGtin, "S9")->has_value());
  EXPECT_EQ(*tx->cartridges().CountUnitsInStock(b.lot_id), 3);
}

TYPED_TEST(StoreConformanceTest, ListsPageByKeyInIdOrder) {
  auto b = this->InsertBasics(5);
  auto tx = this->Read();
  std::vector<Cartridge> first = *tx->cartridges().ListCartridges({.limit = 2});
  ASSERT_THAT(first, SizeIs(2));
  EXPECT_EQ(first[0].id, b.units[0]);
  EXPECT_EQ(first[1].id, b.units[1]);
  std::vector<Cartridge> rest =
      *tx->cartridges().ListCartridges({.after_id = first[1].id, .limit = 10});
  ASSERT_THAT(rest, SizeIs(3));
  EXPECT_EQ(rest[2].serial, "S5");
}

TYPED_TEST(StoreConformanceTest, DuplicateLotAndUnitAreAlreadyExists) {
  auto b = this->InsertBasics(1);
  auto tx = this->Write();
  EXPECT_EQ(tx->cartridges().InsertLot(this->MakeLot("LOT-A")).status().code(),
            absl::StatusCode::kAlreadyExists);
  absl::Status unit =
      tx->cartridges().InsertCartridge(this->MakeCartridge("S1", b.lot_id)).status();
  EXPECT_EQ(unit.code(), absl::StatusCode::kAlreadyExists) << unit;
}

TYPED_TEST(StoreConformanceTest, ASecondUseIsRefusedEvenWithoutCore) {
  auto b = this->InsertBasics(1);
  {
    auto tx = this->Write();
    ASSERT_TRUE(tx->cartridges().RecordUse(b.units[0], this->UseIn(b.treatment_id)).ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto tx = this->Write();
  absl::Status again = tx->cartridges().RecordUse(b.units[0], this->UseIn(b.treatment_id));
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_EQ(ReasonOf(again), "CARTRIDGE_ALREADY_USED");
}

TYPED_TEST(StoreConformanceTest, DisposalNeedsAUseAndIsWrittenOnce) {
  auto b = this->InsertBasics(1);
  auto tx = this->Write();
  Disposal d{.container_id = "SHARPS-1", .at = kNow, .by = "nurse"};
  EXPECT_EQ(tx->cartridges().RecordDisposal(b.units[0], d).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(tx->cartridges().RecordUse(b.units[0], this->UseIn(b.treatment_id)).ok());
  ASSERT_TRUE(tx->cartridges().RecordDisposal(b.units[0], d).ok());
  EXPECT_EQ(ReasonOf(tx->cartridges().RecordDisposal(b.units[0], d)), "CARTRIDGE_DISPOSED");
  ASSERT_TRUE(tx->Commit().ok());
  std::optional<Cartridge> c = *this->Read()->cartridges().FindCartridge(kGtin, "S1");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->state, CartridgeState::kDisposed);
}

TYPED_TEST(StoreConformanceTest, AUsedUnitCannotBeDiscardedNorADiscardedOneUsed) {
  auto b = this->InsertBasics(2);
  auto tx = this->Write();
  ASSERT_TRUE(tx->cartridges().RecordUse(b.units[0], this->UseIn(b.treatment_id)).ok());
  EXPECT_EQ(tx->cartridges()
                .RecordDiscard(b.units[0], Discard{.reason = "dropped", .at = kNow, .by = "n"})
                .code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(tx->cartridges()
                  .RecordDiscard(b.units[1], Discard{.reason = "dropped", .at = kNow, .by = "n"})
                  .ok());
  EXPECT_EQ(tx->cartridges().RecordUse(b.units[1], this->UseIn(b.treatment_id)).code(),
            absl::StatusCode::kFailedPrecondition);
}

TYPED_TEST(StoreConformanceTest, LotStockCountsUnitsInStockPerLotByExpiry) {
  auto b = this->InsertBasics(4);  // LOT-A, 2027-12-31
  {
    auto tx = this->Write();
    Lot early = this->MakeLot("LOT-E");
    early.expiry = absl::CivilDay(2026, 12, 15);
    const int64_t early_id = *tx->cartridges().InsertLot(early);
    ASSERT_TRUE(tx->cartridges().InsertCartridge(this->MakeCartridge("E1", early_id)).ok());
    Lot gone = this->MakeLot("LOT-G");  // expired before the day asked about
    gone.expiry = absl::CivilDay(2026, 11, 1);
    const int64_t gone_id = *tx->cartridges().InsertLot(gone);
    ASSERT_TRUE(tx->cartridges().InsertCartridge(this->MakeCartridge("G1", gone_id)).ok());
    Lot empty = this->MakeLot("LOT-X");  // no unit left in stock
    const int64_t empty_id = *tx->cartridges().InsertLot(empty);
    const int64_t x1 = *tx->cartridges().InsertCartridge(this->MakeCartridge("X1", empty_id));
    ASSERT_TRUE(tx->cartridges().RecordUse(x1, this->UseIn(b.treatment_id)).ok());
    ASSERT_TRUE(tx->cartridges().RecordUse(b.units[0], this->UseIn(b.treatment_id)).ok());
    ASSERT_TRUE(tx->cartridges()
                    .RecordDiscard(b.units[1], Discard{.reason = "dropped", .at = kNow, .by = "n"})
                    .ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto tx = this->Read();
  absl::StatusOr<std::vector<LotStock>> stock =
      tx->cartridges().ListLotStock(kGtin, absl::CivilDay(2026, 11, 30));
  ASSERT_TRUE(stock.ok()) << stock.status();
  ASSERT_THAT(*stock, SizeIs(2));
  EXPECT_EQ((*stock)[0].lot.lot, "LOT-E");
  EXPECT_EQ((*stock)[0].lot.expiry, absl::CivilDay(2026, 12, 15));
  EXPECT_EQ((*stock)[0].units_in_stock, 1);
  EXPECT_EQ((*stock)[1].lot.lot, "LOT-A");
  EXPECT_EQ((*stock)[1].lot.id, b.lot_id);
  EXPECT_EQ((*stock)[1].units_in_stock, 2);  // S3, S4
  // The first day counts: a lot expiring on it is listed.
  stock = tx->cartridges().ListLotStock(kGtin, absl::CivilDay(2026, 12, 15));
  ASSERT_TRUE(stock.ok());
  EXPECT_THAT(*stock, SizeIs(2));
  stock = tx->cartridges().ListLotStock(kGtin, absl::CivilDay(2026, 12, 16));
  ASSERT_TRUE(stock.ok());
  EXPECT_THAT(*stock, SizeIs(1));
  stock = tx->cartridges().ListLotStock("09521234543213", absl::CivilDay(2026, 11, 30));
  ASSERT_TRUE(stock.ok());
  EXPECT_THAT(*stock, IsEmpty());
}

TYPED_TEST(StoreConformanceTest, AParLevelIsSavedReplacedListedAndDeleted) {
  const ParLevel first{.gtin = kGtin,
                       .min_units = 10,
                       .expiry_window_days = 30,
                       .below_par = false,
                       .set_at = kNow,
                       .set_by = "mgr.ana"};
  {
    auto tx = this->Write();
    ASSERT_TRUE(tx->cartridges().SaveParLevel(first).ok());
    ParLevel other = first;
    other.gtin = "09521234543213";
    other.below_par = true;
    ASSERT_TRUE(tx->cartridges().SaveParLevel(other).ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  {
    auto tx = this->Read();
    std::optional<ParLevel> found = *tx->cartridges().FindParLevel(kGtin);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->min_units, 10);
    EXPECT_EQ(found->expiry_window_days, 30);
    EXPECT_FALSE(found->below_par);
    EXPECT_EQ(found->set_at, kNow);
    EXPECT_EQ(found->set_by, "mgr.ana");
    std::vector<ParLevel> all = *tx->cartridges().ListParLevels();
    ASSERT_THAT(all, SizeIs(2));
    EXPECT_EQ(all[0].gtin, kGtin);  // by GTIN
    EXPECT_TRUE(all[1].below_par);
    EXPECT_FALSE(tx->cartridges().FindParLevel("09501101530003")->has_value());
  }
  {
    auto tx = this->Write();
    ParLevel replaced = first;
    replaced.min_units = 3;
    replaced.expiry_window_days = 0;
    replaced.below_par = true;
    replaced.set_at = kNow + absl::Hours(1);
    ASSERT_TRUE(tx->cartridges().SaveParLevel(replaced).ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  {
    auto tx = this->Read();
    std::optional<ParLevel> found = *tx->cartridges().FindParLevel(kGtin);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->min_units, 3);
    EXPECT_EQ(found->expiry_window_days, 0);
    EXPECT_TRUE(found->below_par);
    EXPECT_EQ(found->set_at, kNow + absl::Hours(1));
    EXPECT_THAT(*tx->cartridges().ListParLevels(), SizeIs(2));
  }
  {
    auto tx = this->Write();
    ASSERT_TRUE(tx->cartridges().DeleteParLevel(kGtin).ok());
    EXPECT_EQ(tx->cartridges().DeleteParLevel(kGtin).code(), absl::StatusCode::kNotFound);
    // Not committed: the par level stays.
  }
  EXPECT_TRUE(this->Read()->cartridges().FindParLevel(kGtin)->has_value());
}

TYPED_TEST(StoreConformanceTest, LotWideEventsAreTheLotsOwnWithoutItsUnits) {
  auto b = this->InsertBasics(2);
  {
    auto tx = this->Write();
    for (const auto& [action, cartridge] :
         std::vector<std::pair<std::string, int64_t>>{{"LOT_CREATED", 0},
                                                      {"CARTRIDGE_RECEIVED", b.units[0]},
                                                      {"CARTRIDGE_RECEIVED", b.units[1]},
                                                      {"LOT_RECALLED", 0},
                                                      {"CARTRIDGE_OPENED", b.units[0]}}) {
      ASSERT_TRUE(audit_chain::Append(tx->audit(), *TestSha256(),
                                      Event{.at = kNow,
                                            .actor = "clerk",
                                            .action = action,
                                            .lot_id = b.lot_id,
                                            .cartridge_id = cartridge,
                                            .detail = action})
                      .ok());
    }
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto tx = this->Read();
  absl::StatusOr<std::vector<Event>> lot_wide =
      tx->audit().ListEvents({.lot_id = b.lot_id, .lot_wide_only = true});
  ASSERT_TRUE(lot_wide.ok()) << lot_wide.status();
  std::vector<std::string> actions;
  for (const Event& e : *lot_wide) actions.push_back(e.action);
  EXPECT_THAT(actions, ElementsAre("LOT_CREATED", "LOT_RECALLED"));
  // Paged: after the first, the second.
  lot_wide = tx->audit().ListEvents(
      {.lot_id = b.lot_id, .lot_wide_only = true, .after_seq = (*lot_wide)[0].seq, .limit = 1});
  ASSERT_TRUE(lot_wide.ok());
  ASSERT_THAT(*lot_wide, SizeIs(1));
  EXPECT_EQ((*lot_wide)[0].action, "LOT_RECALLED");
  // Without lot_wide_only, every event of the lot and its units.
  EXPECT_THAT(*tx->audit().ListEvents({.lot_id = b.lot_id}), SizeIs(5));
}

TYPED_TEST(StoreConformanceTest, AWriteNotCommittedLeavesNothing) {
  {
    auto tx = this->Write();
    ASSERT_TRUE(tx->cartridges().InsertLot(this->MakeLot("LOT-A")).ok());
    ASSERT_TRUE(tx->audit()
                    .SaveRequest({.request_id = "r1",
                                  .operation = "Op",
                                  .fingerprint = "f",
                                  .response = "x",
                                  .at = kNow})
                    .ok());
  }
  auto tx = this->Read();
  EXPECT_FALSE(tx->cartridges().FindLot(kGtin, "LOT-A")->has_value());
  EXPECT_FALSE(tx->audit().FindRequest("r1")->has_value());
}

TYPED_TEST(StoreConformanceTest, CommitTwiceIsRefused) {
  auto tx = this->Write();
  ASSERT_TRUE(tx->Commit().ok());
  EXPECT_FALSE(tx->Commit().ok());
}

TYPED_TEST(StoreConformanceTest, AReadKeepsItsSnapshotAcrossALaterCommit) {
  if constexpr (!TypeParam::kConcurrentReads) {
    GTEST_SKIP() << "one connection: reads and writes take turns";
  } else {
    auto before = this->Read();
    ASSERT_THAT(*before->cartridges().ListLots({}), IsEmpty());
    this->InsertBasics(1);
    EXPECT_FALSE(before->cartridges().FindLot(kGtin, "LOT-A")->has_value());
    EXPECT_TRUE(this->Read()->cartridges().FindLot(kGtin, "LOT-A")->has_value());
  }
}

TYPED_TEST(StoreConformanceTest, ARequestIsStoredOnceAndReadBackByteForByte) {
  const std::string response("\x00\x01answer\xff", 9);
  // Core joins some fingerprints' fields with NUL (ReceiveCartridges): every byte must come back.
  const std::string fingerprint("unit-1\x00unit-2", 13);
  auto tx = this->Write();
  ASSERT_TRUE(tx->audit()
                  .SaveRequest({.request_id = "r1",
                                .operation = "OpenCartridge",
                                .fingerprint = fingerprint,
                                .response = response,
                                .at = kNow})
                  .ok());
  EXPECT_EQ(tx->audit()
                .SaveRequest({.request_id = "r1",
                              .operation = "OpenCartridge",
                              .fingerprint = "g|s|1",
                              .response = response,
                              .at = kNow})
                .code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(tx->Commit().ok());
  std::optional<StoredRequest> got = *this->Read()->audit().FindRequest("r1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->response, response);
  EXPECT_EQ(got->fingerprint, fingerprint);
  EXPECT_EQ(got->operation, "OpenCartridge");
  EXPECT_EQ(got->at, kNow);
}

// ---- Sterilisation: results written once, cycle numbers unique, release only on results.

TYPED_TEST(StoreConformanceTest, LoadRoundTripsWithContents) {
  auto s = this->InsertLoad(/*bi_required=*/false);
  auto tx = this->Read();
  std::optional<Load> load = *tx->sterilization().FindLoad(s.load_id);
  ASSERT_TRUE(load.has_value());
  EXPECT_EQ(load->sterilizer_name, "AUTOCLAVE1");
  EXPECT_THAT(load->item_serials, ElementsAre("HP-1"));
  EXPECT_EQ(load->release_state, ReleaseState::kOpen);
  EXPECT_EQ(*tx->sterilization().FindOpenLoadOfItem(s.item_id), std::optional<int64_t>(s.load_id));
  EXPECT_EQ(tx->sterilization().FindLoadByCycle(s.sterilizer_id, 42)->value_or(Load{}).id,
            s.load_id);
}

TYPED_TEST(StoreConformanceTest, EachLoadResultIsWrittenOnceAndCycleNumbersAreUnique) {
  auto s = this->InsertLoad(/*bi_required=*/false);
  auto tx = this->Write();
  CycleParameters p{.started_at = kNow,
                    .ended_at = kNow + absl::Minutes(30),
                    .exposure_seconds = 240,
                    .temperature_c = 134,
                    .pressure_kpa = 300,
                    .passed = true,
                    .recorded_by = "sp",
                    .recorded_at = kNow};
  ASSERT_TRUE(tx->sterilization().RecordParameters(s.load_id, p).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(tx->sterilization().RecordParameters(s.load_id, p)));
  ChemicalIndicator ci{
      .type = 5, .result = IndicatorResult::kPass, .recorded_by = "sp", .recorded_at = kNow};
  ASSERT_TRUE(tx->sterilization().AddChemicalIndicator(s.load_id, ci).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(tx->sterilization().AddChemicalIndicator(s.load_id, ci)));
  absl::StatusOr<int64_t> again = tx->sterilization().InsertLoad({.sterilizer_id = s.sterilizer_id,
                                                                  .cycle_number = 42,
                                                                  .cycle_type = "134C-4MIN",
                                                                  .shelf_life_days = 30,
                                                                  .operator_name = "sp",
                                                                  .created_at = kNow});
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
}

TYPED_TEST(StoreConformanceTest, AReleaseWithoutPassingResultsIsRefusedAsTheLastGuard) {
  auto s = this->InsertLoad(/*bi_required=*/true);
  const Signature signature{.by = "manager", .at = kNow, .meaning = "released"};
  auto tx = this->Write();
  EXPECT_FALSE(
      tx->sterilization().SetLoadReleaseState(s.load_id, ReleaseState::kReleased, signature).ok());
  ASSERT_TRUE(tx->sterilization()
                  .RecordParameters(s.load_id, {.started_at = kNow,
                                                .ended_at = kNow + absl::Minutes(30),
                                                .exposure_seconds = 240,
                                                .temperature_c = 134,
                                                .pressure_kpa = 300,
                                                .passed = true,
                                                .recorded_by = "sp",
                                                .recorded_at = kNow})
                  .ok());
  ASSERT_TRUE(tx->sterilization()
                  .AddChemicalIndicator(s.load_id, {.type = 5,
                                                    .result = IndicatorResult::kPass,
                                                    .recorded_by = "sp",
                                                    .recorded_at = kNow})
                  .ok());
  // Held for its BI, which is not in yet.
  EXPECT_FALSE(
      tx->sterilization().SetLoadReleaseState(s.load_id, ReleaseState::kReleased, signature).ok());
  ASSERT_TRUE(tx->sterilization()
                  .RecordBi(s.load_id, {.product = "P",
                                        .lot = "L",
                                        .result = BiResult::kNegative,
                                        .control_result = BiResult::kPositive,
                                        .read_at = kNow,
                                        .recorded_by = "sp"})
                  .ok());
  EXPECT_TRUE(
      tx->sterilization().SetLoadReleaseState(s.load_id, ReleaseState::kReleased, signature).ok());
}

// ---- The audit trail: stored as core links it, verified by core, tampering found.

TYPED_TEST(StoreConformanceTest, EntriesAreStoredWithTheirLinksAndTheHeadFollows) {
  this->AppendEntries(3);
  auto tx = this->Read();
  std::vector<Event> entries = *tx->audit().ListAuditEntries({.limit = 10});
  ASSERT_THAT(entries, SizeIs(3));
  EXPECT_EQ(entries[0].seq, 1);
  EXPECT_EQ(entries[0].prev_hash, audit_chain::kGenesisHash);
  EXPECT_EQ(entries[1].prev_hash, entries[0].hash);
  EXPECT_EQ(entries[2].before, "state=RECEIVED");
  AuditHead head = *tx->audit().ReadHead();
  EXPECT_EQ(head.seq, 3);
  EXPECT_EQ(head.hash, entries[2].hash);
  EXPECT_EQ(head.issued, 3);
  EXPECT_EQ(*tx->audit().LastEventSeq(), 3);
}

TYPED_TEST(StoreConformanceTest, AnEntryOutOfTurnIsRefusedAndNothingIsStored) {
  this->AppendEntries(2);
  {
    auto tx = this->Write();
    for (int64_t seq : {1, 2, 4, 10}) {
      SCOPED_TRACE(seq);
      Event out_of_turn{
          .seq = seq, .at = kNow, .actor = "x", .action = "X", .prev_hash = "p", .hash = "h"};
      absl::Status status = tx->audit().Append(out_of_turn);
      EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists) << status;
      EXPECT_EQ(status.message(), StrCat("audit entry ", seq, " is not the next one (3)"));
    }
    AuditHead head = *tx->audit().ReadHead();
    EXPECT_EQ(head.seq, 2);
    EXPECT_EQ(head.issued, 2);
    EXPECT_THAT(*tx->audit().ListAuditEntries({.limit = 10}), SizeIs(2));
  }
  this->AppendEntries(1);  // the next one in turn is taken
  EXPECT_TRUE(this->Verify().intact);
}

// After the tail was cut off, the next seq still follows the highest one ever issued.
TYPED_TEST(StoreConformanceTest, AfterACutTailTheNextSeqFollowsTheHighestIssued) {
  if (!TypeParam::kCanTamper) GTEST_SKIP() << "this backend cannot be tampered with";
  this->AppendEntries(3);
  this->backend_.RemoveEntry(3);
  auto tx = this->Write();
  Event reuse{.seq = 3, .at = kNow, .actor = "x", .action = "X", .prev_hash = "p", .hash = "h"};
  EXPECT_EQ(tx->audit().Append(reuse).code(), absl::StatusCode::kAlreadyExists);
  reuse.seq = 4;
  EXPECT_TRUE(tx->audit().Append(reuse).ok());
}

// A filter without ids lists every event (store.h); with ids, those that match any of them.
TYPED_TEST(StoreConformanceTest, ListEventsWithoutIdsListsEveryEvent) {
  auto b = this->InsertBasics(1);
  {
    auto tx = this->Write();
    for (int i = 1; i <= 4; ++i) {
      Event e{.at = kNow, .actor = "nurse.kim", .action = "X", .detail = StrCat("entry ", i)};
      if (i == 2) e.lot_id = b.lot_id;
      if (i == 3) e.cartridge_id = b.units[0];
      absl::StatusOr<int64_t> seq = audit_chain::Append(tx->audit(), *TestSha256(), e);
      ASSERT_TRUE(seq.ok()) << seq.status();
    }
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto tx = this->Read();
  auto seqs = [](const std::vector<Event>& events) {
    std::vector<int64_t> out;
    for (const Event& e : events) out.push_back(e.seq);
    return out;
  };
  EXPECT_THAT(seqs(*tx->audit().ListEvents({})), ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(seqs(*tx->audit().ListEvents({.after_seq = 1, .limit = 2})), ElementsAre(2, 3));
  EXPECT_THAT(seqs(*tx->audit().ListEvents({.lot_wide_only = true})), ElementsAre(1, 2, 4));
  EXPECT_THAT(seqs(*tx->audit().ListEvents({.lot_id = b.lot_id, .cartridge_id = b.units[0]})),
              ElementsAre(2, 3));
  EXPECT_THAT(seqs(*tx->audit().ListEvents({.lot_id = b.lot_id, .lot_wide_only = true})),
              ElementsAre(2));
}

TYPED_TEST(StoreConformanceTest, AnIntactTrailVerifies) {
  this->AppendEntries(5);
  AuditChainCheck check = this->Verify();
  EXPECT_TRUE(check.intact) << check.problem;
  EXPECT_EQ(check.entries, 5);
}

TYPED_TEST(StoreConformanceTest, ARemovedEntryIsFound) {
  if (!TypeParam::kCanTamper) GTEST_SKIP() << "this backend cannot be tampered with";
  this->AppendEntries(5);
  this->backend_.RemoveEntry(3);
  AuditChainCheck check = this->Verify();
  EXPECT_FALSE(check.intact);
  EXPECT_EQ(check.first_bad_seq, 3);
}

// Incremental verification (issue 11): entries up to the checkpoint are trusted, its own entry is
// re-checked, and only a full verification finds a change before it.
TYPED_TEST(StoreConformanceTest, IncrementalVerificationStartsAfterTheCheckpointAndChecksIt) {
  if (!TypeParam::kCanTamper) GTEST_SKIP() << "this backend cannot be tampered with";
  this->AppendEntries(5);
  AuditChainCheck first = this->Verify();
  ASSERT_TRUE(first.intact) << first.problem;
  EXPECT_EQ(first.checkpoint_seq, 0);
  ASSERT_EQ(first.entries, 5);
  const AuditCheckpoint checkpoint{.seq = 5, .hash = first.last_hash, .verified_at = kNow};
  this->AppendEntries(3);

  AuditChainCheck incremental = this->VerifyAfter(checkpoint);
  EXPECT_TRUE(incremental.intact) << incremental.problem;
  EXPECT_EQ(incremental.entries, 8);
  EXPECT_EQ(incremental.checkpoint_seq, 5);
  EXPECT_EQ(incremental.last_hash, this->Verify().last_hash);

  // After the checkpoint: found by both.
  this->backend_.AlterEntryDetail(7, "nothing happened");
  EXPECT_EQ(this->VerifyAfter(checkpoint).first_bad_seq, 7);
  EXPECT_EQ(this->Verify().first_bad_seq, 7);
}

TYPED_TEST(StoreConformanceTest, BeforeTheCheckpointOnlyTheFullVerificationFindsAChange) {
  if (!TypeParam::kCanTamper) GTEST_SKIP() << "this backend cannot be tampered with";
  this->AppendEntries(6);
  const AuditCheckpoint checkpoint{.seq = 6, .hash = this->Verify().last_hash, .verified_at = kNow};
  this->backend_.AlterEntryDetail(2, "nothing happened");
  EXPECT_TRUE(this->VerifyAfter(checkpoint).intact);
  AuditChainCheck full = this->Verify();
  EXPECT_FALSE(full.intact);
  EXPECT_EQ(full.first_bad_seq, 2);
}

TYPED_TEST(StoreConformanceTest, IncrementalVerificationRefusesAnAlteredCheckpointEntry) {
  if (!TypeParam::kCanTamper) GTEST_SKIP() << "this backend cannot be tampered with";
  this->AppendEntries(6);
  const AuditCheckpoint checkpoint{.seq = 4, .hash = "", .verified_at = kNow};
  std::string hash_of_4;
  {
    auto tx = this->Read();
    std::vector<Event> entry = *tx->audit().ListAuditEntries({.after_seq = 3, .limit = 1});
    ASSERT_THAT(entry, SizeIs(1));
    hash_of_4 = entry[0].hash;
  }
  AuditCheckpoint at_4 = checkpoint;
  at_4.hash = hash_of_4;
  EXPECT_TRUE(this->VerifyAfter(at_4).intact);
  // A checkpoint that does not match its entry is refused, as is an entry changed since.
  AuditChainCheck wrong =
      this->VerifyAfter(AuditCheckpoint{.seq = 4, .hash = std::string(64, 'e')});
  EXPECT_FALSE(wrong.intact);
  EXPECT_EQ(wrong.first_bad_seq, 4);
  this->backend_.AlterEntryDetail(4, "nothing happened");
  AuditChainCheck altered = this->VerifyAfter(at_4);
  EXPECT_FALSE(altered.intact);
  EXPECT_EQ(altered.first_bad_seq, 4);
  EXPECT_THAT(altered.problem, HasSubstr("checkpoint"));
  this->backend_.RemoveEntry(4);
  AuditChainCheck removed = this->VerifyAfter(at_4);
  EXPECT_FALSE(removed.intact);
  EXPECT_EQ(removed.first_bad_seq, 4);
}

TYPED_TEST(StoreConformanceTest, ATruncatedTailIsFound) {
  if (!TypeParam::kCanTamper) GTEST_SKIP() << "this backend cannot be tampered with";
  this->AppendEntries(5);
  this->backend_.RemoveEntry(5);
  AuditChainCheck check = this->Verify();
  EXPECT_FALSE(check.intact);
  EXPECT_EQ(check.first_bad_seq, 5);
}

TYPED_TEST(StoreConformanceTest, AnAlteredEntryIsFound) {
  if (!TypeParam::kCanTamper) GTEST_SKIP() << "this backend cannot be tampered with";
  this->AppendEntries(5);
  this->backend_.AlterEntryDetail(2, "nothing happened");
  AuditChainCheck check = this->Verify();
  EXPECT_FALSE(check.intact);
  EXPECT_EQ(check.first_bad_seq, 2);
}

// ---- Report reads.

TYPED_TEST(StoreConformanceTest, PeriodReadsReturnExactlyThePeriod) {
  auto b = this->InsertBasics(3);
  {
    auto tx = this->Write();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(tx->cartridges()
                      .RecordUse(b.units[i], CartridgeUse{.treatment_id = b.treatment_id,
                                                          .room = "Room 1",
                                                          .at = kNow + absl::Hours(24 * i),
                                                          .by = "nurse"})
                      .ok());
    }
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto tx = this->Read();
  std::vector<Cartridge> opened = *tx->reports().ListCartridgesOpenedBetween(
      kNow + absl::Hours(1), kNow + absl::Hours(72), {}, 10);
  ASSERT_THAT(opened, SizeIs(2));
  EXPECT_EQ(opened[0].serial, "S2");
  EXPECT_EQ(opened[1].serial, "S3");
  std::vector<Treatment> started =
      *tx->reports().ListTreatmentsStartedBetween(kNow, kNow + absl::Seconds(1), {}, 10);
  EXPECT_THAT(started, SizeIs(1));
  EXPECT_THAT(*tx->reports().ListTreatmentsStartedBetween(kNow + absl::Seconds(1),
                                                          kNow + absl::Hours(1), {}, 10),
              IsEmpty());
}

// Period reads page by (time, id), not by id: each page is one range scan of the time index.
TYPED_TEST(StoreConformanceTest, PeriodReadsPageByTimeThenId) {
  auto b = this->InsertBasics(4);
  {
    auto tx = this->Write();
    // Units 1..4 opened at +3h, +1h, +1h, +2h: by (time, id) that is 2, 3, 4, 1.
    const int hours[] = {3, 1, 1, 2};
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(tx->cartridges()
                      .RecordUse(b.units[i], CartridgeUse{.treatment_id = b.treatment_id,
                                                          .room = "Room 1",
                                                          .at = kNow + absl::Hours(hours[i]),
                                                          .by = "nurse"})
                      .ok());
    }
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto tx = this->Read();
  std::vector<std::string> serials;
  PeriodCursor after;
  for (int pages = 0; pages < 10; ++pages) {
    absl::StatusOr<std::vector<Cartridge>> page =
        tx->reports().ListCartridgesOpenedBetween(kNow, kNow + absl::Hours(24), after, 1);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    ASSERT_THAT(*page, SizeIs(1));
    serials.push_back(page->front().serial);
    after = PeriodCursor{.at = page->front().use->at, .id = page->front().id};
  }
  EXPECT_EQ(serials, (std::vector<std::string>{"S2", "S3", "S4", "S1"}));
  // A cursor before the period starts at the period.
  absl::StatusOr<std::vector<Cartridge>> from_late = tx->reports().ListCartridgesOpenedBetween(
      kNow + absl::Hours(2), kNow + absl::Hours(24), PeriodCursor{.at = kNow, .id = 99}, 10);
  ASSERT_TRUE(from_late.ok());
  ASSERT_THAT(*from_late, SizeIs(2));
  EXPECT_EQ((*from_late)[0].serial, "S4");
  EXPECT_EQ((*from_late)[1].serial, "S1");
}

// Audit entries by time (the EPCIS export, issue 14): the period only, by (at, seq), in pages.
TYPED_TEST(StoreConformanceTest, EventsBetweenPageByTimeThenSeq) {
  {
    auto tx = this->Write();
    // Entries 1..5 at +0s, +3s, +1s, +1s, +9s: in [+1s, +5s) by (at, seq) that is 3, 4, 2.
    const int seconds[] = {0, 3, 1, 1, 9};
    for (int i = 0; i < 5; ++i) {
      absl::StatusOr<int64_t> seq =
          audit_chain::Append(tx->audit(), *TestSha256(),
                              Event{.at = kNow + absl::Seconds(seconds[i]),
                                    .actor = "nurse.kim",
                                    .action = "CARTRIDGE_OPENED",
                                    .detail = StrCat("entry ", i + 1)});
      ASSERT_TRUE(seq.ok()) << seq.status();
    }
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto tx = this->Read();
  std::vector<int64_t> seqs;
  PeriodCursor after;
  for (int pages = 0; pages < 10; ++pages) {
    absl::StatusOr<std::vector<Event>> page =
        tx->reports().ListEventsBetween(kNow + absl::Seconds(1), kNow + absl::Seconds(5), after, 2);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    for (const Event& e : *page) seqs.push_back(e.seq);
    after = PeriodCursor{.at = page->back().at, .id = page->back().seq};
  }
  EXPECT_EQ(seqs, (std::vector<int64_t>{3, 4, 2}));
  // Complete as the audit query gives them: the chain's links too.
  absl::StatusOr<std::vector<Event>> one =
      tx->reports().ListEventsBetween(kNow + absl::Seconds(9), kNow + absl::Seconds(10), {}, 10);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_THAT(*one, SizeIs(1));
  EXPECT_EQ((*one)[0].detail, "entry 5");
  EXPECT_EQ((*one)[0].hash.size(), 64u);
  EXPECT_FALSE((*one)[0].prev_hash.empty());
}

// Audit entries of a period, in seq order, exactly those whose time is in it, page after page,
// with or without an action: even when the server's clock stepped back so that time order is not
// seq order (an entry before the period's others in the trail, two after them), at the period's
// first and last microseconds, and when the trail
// around the period is long enough that a backend reads where the period lies instead of walking
// the trail.
TYPED_TEST(StoreConformanceTest, AuditEntriesOfAPeriodAreExactWhenTheClockSteppedBack) {
  const absl::Time from = kNow, to = kNow + absl::Hours(1);
  {
    auto tx = this->Write();
    auto append = [&](absl::Time at, std::string_view action) {
      this->AppendTimed(*tx, at, action);
    };
    for (int i = 0; i < 400; ++i) append(from - absl::Hours(30) + absl::Seconds(i), "X");
    append(from + absl::Minutes(30), "X");  // the clock ran ahead into the period, then back
    for (int i = 0; i < 100; ++i) append(from - absl::Hours(1) + absl::Seconds(i), "X");
    for (int i = 0; i < 10; ++i) append(from + absl::Minutes(i), i % 2 == 0 ? "X" : "Y");
    append(to - absl::Microseconds(1), "X");  // the period's last microsecond: in it
    append(to, "X");                          // its end: not
    for (int i = 0; i < 400; ++i) append(to + absl::Hours(1) + absl::Seconds(i), "X");
    append(from + absl::Minutes(45), "Y");  // the clock stepped back into the period
    for (int i = 0; i < 300; ++i) append(to + absl::Hours(3) + absl::Seconds(i), "X");
    // And again, after the period's last entry in time order.
    append(from + absl::Minutes(5) + absl::Seconds(30), "X");
    for (int i = 300; i < 600; ++i) append(to + absl::Hours(3) + absl::Seconds(i), "X");
    ASSERT_TRUE(tx->Commit().ok());
  }
  ASSERT_THAT(this->Timed(from, to, ""), SizeIs(14));
  for (const std::string_view action : {"", "X", "Y"}) {
    for (const int page_size : {1, 4, 100}) {
      EXPECT_EQ(this->ListTimed(from, to, action, page_size), this->Timed(from, to, action))
          << "action '" << action << "', pages of " << page_size;
    }
  }
  // An hour with no entry; the trail's last entries (no end); its first ones (no start).
  EXPECT_THAT(this->ListTimed(to + absl::Hours(2), to + absl::Hours(3), "", 10), IsEmpty());
  EXPECT_EQ(this->ListTimed(to + absl::Hours(3), std::nullopt, "", 30),
            this->Timed(to + absl::Hours(3), std::nullopt, ""));
  EXPECT_EQ(this->ListTimed(std::nullopt, from - absl::Hours(30) + absl::Seconds(50), "X", 20),
            this->Timed(std::nullopt, from - absl::Hours(30) + absl::Seconds(50), "X"));
}

// A page that comes back short at the period's last entry in time order still finds an entry the
// clock stepped back into the period after it, when the rest of the trail is short beside the
// period (a backend that reads where the period lies then walks the rest instead).
TYPED_TEST(StoreConformanceTest, AShortPageOfAPeriodLooksPastItsLastEntryInTimeOrder) {
  const absl::Time from = kNow, to = kNow + absl::Hours(1);
  {
    auto tx = this->Write();
    auto append = [&](absl::Time at) { this->AppendTimed(*tx, at, "X"); };
    append(from);
    for (int i = 0; i < 340; ++i) append(from - absl::Hours(2) + absl::Seconds(i));
    append(from + absl::Minutes(50));  // the period's last entry in time order
    for (int i = 0; i < 10; ++i) append(to + absl::Seconds(i));
    append(from + absl::Minutes(10));  // the clock stepped back into the period
    for (int i = 0; i < 10; ++i) append(to + absl::Hours(1) + absl::Seconds(i));
    ASSERT_TRUE(tx->Commit().ok());
  }
  const std::vector<int64_t> want = this->Timed(from, to, "");
  ASSERT_THAT(want, SizeIs(3));
  for (const int page_size : {1, 2, 10}) {
    EXPECT_EQ(this->ListTimed(from, to, "", page_size), want) << "pages of " << page_size;
  }
}

TYPED_TEST(StoreConformanceTest, UnitsAndLotsAreFoundById) {
  auto b = this->InsertBasics(2);
  auto tx = this->Read();
  absl::StatusOr<std::optional<Cartridge>> unit = tx->cartridges().FindCartridgeById(b.units[1]);
  ASSERT_TRUE(unit.ok()) << unit.status();
  ASSERT_TRUE(unit->has_value());
  EXPECT_EQ((*unit)->serial, "S2");
  EXPECT_EQ((*unit)->lot.lot, "LOT-A");
  absl::StatusOr<std::optional<Lot>> lot = tx->cartridges().FindLotById(b.lot_id);
  ASSERT_TRUE(lot.ok()) << lot.status();
  ASSERT_TRUE(lot->has_value());
  EXPECT_EQ((*lot)->lot, "LOT-A");
  EXPECT_FALSE(tx->cartridges().FindCartridgeById(b.units[1] + 100)->has_value());
  EXPECT_FALSE(tx->cartridges().FindLotById(b.lot_id + 100)->has_value());
}

// ---- The verified audit checkpoint (issue 11): one value, stored as given, replaced.

TYPED_TEST(StoreConformanceTest, TheVerifiedCheckpointIsStoredAndReplaced) {
  {
    auto tx = this->Read();
    absl::StatusOr<std::optional<AuditCheckpoint>> none = tx->audit().ReadVerifiedCheckpoint();
    ASSERT_TRUE(none.ok()) << none.status();
    EXPECT_FALSE(none->has_value());
  }
  for (int64_t seq : {3, 7}) {
    auto tx = this->Write();
    ASSERT_TRUE(tx->audit()
                    .SaveVerifiedCheckpoint(AuditCheckpoint{.seq = seq,
                                                            .hash = std::string(64, 'a' + seq),
                                                            .verified_at = kNow + absl::Hours(seq)})
                    .ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  {
    // Not committed: no change.
    auto tx = this->Write();
    ASSERT_TRUE(tx->audit()
                    .SaveVerifiedCheckpoint(AuditCheckpoint{
                        .seq = 9, .hash = std::string(64, 'f'), .verified_at = kNow})
                    .ok());
  }
  auto tx = this->Read();
  absl::StatusOr<std::optional<AuditCheckpoint>> stored = tx->audit().ReadVerifiedCheckpoint();
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->seq, 7);
  EXPECT_EQ((*stored)->hash, std::string(64, 'a' + 7));
  EXPECT_EQ((*stored)->verified_at, kNow + absl::Hours(7));
}

// ---- Access (issue 9): tokens are kept as hashes; names are unique among live tokens; revocation
// is the one change, made once.

ApiToken MakeToken(std::string_view name, char hash_digit, Role role = Role::kNurse) {
  return ApiToken{.name = std::string(name),
                  .role = role,
                  .secret_sha256 = std::string(64, hash_digit),
                  .created_at = kNow,
                  .created_by = "admin"};
}

TYPED_TEST(StoreConformanceTest, ATokenRoundTripsAndIsFoundByItsHashAndName) {
  ApiToken expiring = MakeToken("integration.erp", 'b', Role::kIntegrator);
  expiring.expires_at = kNow + absl::Hours(24);
  {
    auto tx = this->Write();
    ASSERT_TRUE(tx->access().InsertToken(MakeToken("nurse.kim", 'a')).ok());
    ASSERT_TRUE(tx->access().InsertToken(expiring).ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto tx = this->Read();
  absl::StatusOr<std::optional<ApiToken>> by_hash =
      tx->access().FindTokenBySecretSha256(std::string(64, 'b'));
  ASSERT_TRUE(by_hash.ok()) << by_hash.status();
  ASSERT_TRUE(by_hash->has_value());
  EXPECT_EQ((*by_hash)->name, "integration.erp");
  EXPECT_EQ((*by_hash)->role, Role::kIntegrator);
  EXPECT_EQ((*by_hash)->created_at, kNow);
  EXPECT_EQ((*by_hash)->created_by, "admin");
  EXPECT_EQ((*by_hash)->expires_at, kNow + absl::Hours(24));
  EXPECT_FALSE((*by_hash)->revoked_at.has_value());
  absl::StatusOr<std::optional<ApiToken>> by_name = tx->access().FindActiveToken("nurse.kim");
  ASSERT_TRUE(by_name.ok() && by_name->has_value());
  EXPECT_FALSE((*by_name)->expires_at.has_value());
  EXPECT_FALSE(tx->access().FindTokenBySecretSha256(std::string(64, 'c'))->has_value());
  absl::StatusOr<std::vector<ApiToken>> all = tx->access().ListTokens();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_LT((*all)[0].id, (*all)[1].id);
}

TYPED_TEST(StoreConformanceTest, ATokenNameIsUniqueAmongLiveTokensAndAHashForever) {
  int64_t id = 0;
  {
    auto tx = this->Write();
    absl::StatusOr<int64_t> inserted = tx->access().InsertToken(MakeToken("kim", 'a'));
    ASSERT_TRUE(inserted.ok()) << inserted.status();
    id = *inserted;
    EXPECT_EQ(tx->access().InsertToken(MakeToken("kim", 'b')).status().code(),
              absl::StatusCode::kAlreadyExists);
    EXPECT_EQ(tx->access().InsertToken(MakeToken("lee", 'a')).status().code(),
              absl::StatusCode::kAlreadyExists);
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto tx = this->Write();
  ASSERT_TRUE(tx->access().RevokeToken(id, kNow + absl::Hours(1), "admin").ok());
  // Revoked: the name is free again; the hash never is; revocation is final.
  EXPECT_TRUE(tx->access().InsertToken(MakeToken("kim", 'c')).ok());
  EXPECT_EQ(tx->access().InsertToken(MakeToken("other", 'a')).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(tx->access().RevokeToken(id, kNow + absl::Hours(2), "admin").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tx->access().RevokeToken(id + 100, kNow, "admin").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(tx->Commit().ok());
  auto read = this->Read();
  absl::StatusOr<std::optional<ApiToken>> old =
      read->access().FindTokenBySecretSha256(std::string(64, 'a'));
  ASSERT_TRUE(old.ok() && old->has_value());
  EXPECT_EQ((*old)->revoked_at, kNow + absl::Hours(1));
  EXPECT_EQ((*old)->revoked_by, "admin");
  EXPECT_EQ((*read->access().FindActiveToken("kim"))->secret_sha256, std::string(64, 'c'));
}

}  // namespace
}  // namespace steritrack
