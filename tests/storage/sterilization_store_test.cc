// Storage-tier tests of the sterilisation tables on a real SQLite file: round trips through the
// Store interface, and the schema's own guards (results written once, release needs results, cycle
// numbers rise, records final) through the raw sqlite3 C API.
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/storage/sqlite_store.h"
#include "steritrack/store.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 11, 26, 10, 0, 0), absl::UTCTimeZone());

class SterilizationStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/steri-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/steritrack.db";
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    auto store = OpenSqliteStore({.path = path_, .readers = 2});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // A steriliser, two items and one open load holding both; returns the load id.
  int64_t SeedLoad() {
    auto tx = store_->BeginWrite();
    EXPECT_TRUE(tx.ok());
    auto st_id = (*tx)->sterilization().InsertSterilizer(
        {.name = "AUTOCLAVE1", .type = SterilizerType::kPreVacuum, .created_at = kNow});
    EXPECT_TRUE(st_id.ok()) << st_id.status();
    sterilizer_id_ = *st_id;
    for (const char* serial : {"HP-0001", "HP-0002"}) {
      auto id = (*tx)->sterilization().InsertItem({.serial = serial,
                                                   .type = "handpiece",
                                                   .ifu_max_cycles = 500,
                                                   .state = ItemState::kPacked,
                                                   .created_at = kNow});
      EXPECT_TRUE(id.ok()) << id.status();
      item_ids_.push_back(*id);
    }
    auto load_id = (*tx)->sterilization().InsertLoad({.sterilizer_id = sterilizer_id_,
                                                      .cycle_number = 42,
                                                      .cycle_type = "134C-4MIN",
                                                      .bi_required = true,
                                                      .shelf_life_days = 30,
                                                      .operator_name = "spd.lee",
                                                      .created_at = kNow,
                                                      .item_ids = item_ids_});
    EXPECT_TRUE(load_id.ok()) << load_id.status();
    EXPECT_TRUE((*tx)->Commit().ok());
    return *load_id;
  }

  int RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_extended_result_codes(db, 1);
    sqlite3_exec(db, "PRAGMA foreign_keys = ON", nullptr, nullptr, nullptr);
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close_v2(db);
    return rc;
  }

  std::string dir_, path_;
  std::unique_ptr<Store> store_;
  int64_t sterilizer_id_ = 0;
  std::vector<int64_t> item_ids_;
};

TEST_F(SterilizationStoreTest, LoadRoundTripsWithContentsResultsAndSignature) {
  const int64_t load_id = SeedLoad();
  {
    auto tx = *store_->BeginWrite();
    ASSERT_TRUE(tx->sterilization()
                    .RecordParameters(load_id, {.started_at = kNow,
                                                .ended_at = kNow + absl::Minutes(40),
                                                .exposure_seconds = 240,
                                                .temperature_c = 134.2,
                                                .pressure_kpa = 304.5,
                                                .passed = true,
                                                .recorded_by = "spd.lee",
                                                .recorded_at = kNow})
                    .ok());
    ASSERT_TRUE(tx->sterilization()
                    .AddChemicalIndicator(load_id, {.type = 5,
                                                    .result = IndicatorResult::kPass,
                                                    .recorded_by = "spd.lee",
                                                    .recorded_at = kNow})
                    .ok());
    ASSERT_TRUE(tx->sterilization()
                    .RecordBi(load_id, {.product = "Attest 1292",
                                        .lot = "BI-77",
                                        .result = BiResult::kNegative,
                                        .control_result = BiResult::kPositive,
                                        .read_at = kNow,
                                        .recorded_by = "spd.lee"})
                    .ok());
    ASSERT_TRUE(tx->sterilization()
                    .SetLoadReleaseState(load_id, ReleaseState::kReleased,
                                         {.by = "spd.lee", .at = kNow, .meaning = "reviewed"})
                    .ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  Reopen();
  auto tx = *store_->BeginRead();
  auto load = tx->sterilization().FindLoad(load_id);
  ASSERT_TRUE(load.ok()) << load.status();
  ASSERT_TRUE(load->has_value());
  const Load& l = **load;
  EXPECT_EQ(l.sterilizer_name, "AUTOCLAVE1");
  EXPECT_EQ(l.cycle_number, 42);
  EXPECT_EQ(l.item_serials, (std::vector<std::string>{"HP-0001", "HP-0002"}));
  ASSERT_TRUE(l.parameters.has_value());
  EXPECT_DOUBLE_EQ(l.parameters->temperature_c, 134.2);
  EXPECT_EQ(l.parameters->exposure_seconds, 240);
  ASSERT_EQ(l.chemical_indicators.size(), 1u);
  EXPECT_EQ(l.chemical_indicators[0].type, 5);
  ASSERT_TRUE(l.bi.has_value());
  EXPECT_EQ(l.bi->result, BiResult::kNegative);
  EXPECT_EQ(l.release_state, ReleaseState::kReleased);
  ASSERT_TRUE(l.signature.has_value());
  EXPECT_EQ(l.signature->meaning, "reviewed");
  auto by_cycle = tx->sterilization().FindLoadByCycle(sterilizer_id_, 42);
  ASSERT_TRUE(by_cycle.ok() && by_cycle->has_value());
  EXPECT_EQ((*by_cycle)->id, load_id);
  auto open = tx->sterilization().FindOpenLoadOfItem(item_ids_[0]);
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE(open->has_value()) << "a released load is not open";
}

TEST_F(SterilizationStoreTest, OpenLoadOfAnItemIsFound) {
  const int64_t load_id = SeedLoad();
  auto tx = *store_->BeginRead();
  auto open = tx->sterilization().FindOpenLoadOfItem(item_ids_[1]);
  ASSERT_TRUE(open.ok());
  ASSERT_TRUE(open->has_value());
  EXPECT_EQ(**open, load_id);
}

TEST_F(SterilizationStoreTest, EachResultIsWrittenOnce) {
  const int64_t load_id = SeedLoad();
  auto tx = *store_->BeginWrite();
  CycleParameters p{.started_at = kNow,
                    .ended_at = kNow + absl::Minutes(30),
                    .exposure_seconds = 240,
                    .temperature_c = 134,
                    .pressure_kpa = 300,
                    .passed = true,
                    .recorded_by = "a",
                    .recorded_at = kNow};
  ASSERT_TRUE(tx->sterilization().RecordParameters(load_id, p).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(tx->sterilization().RecordParameters(load_id, p)));
  ChemicalIndicator ci{
      .type = 4, .result = IndicatorResult::kPass, .recorded_by = "a", .recorded_at = kNow};
  ASSERT_TRUE(tx->sterilization().AddChemicalIndicator(load_id, ci).ok());
  ci.result = IndicatorResult::kFail;
  EXPECT_TRUE(absl::IsAlreadyExists(tx->sterilization().AddChemicalIndicator(load_id, ci)));
}

TEST_F(SterilizationStoreTest, DuplicateCycleNumberIsAlreadyExists) {
  SeedLoad();
  auto tx = *store_->BeginWrite();
  auto again = tx->sterilization().InsertLoad({.sterilizer_id = sterilizer_id_,
                                               .cycle_number = 42,
                                               .cycle_type = "134C-4MIN",
                                               .shelf_life_days = 30,
                                               .operator_name = "x",
                                               .created_at = kNow});
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
}

TEST_F(SterilizationStoreTest, SchemaRefusesAReleaseWithoutResults) {
  const int64_t load_id = SeedLoad();
  store_.reset();
  EXPECT_EQ(RawExec(StrCat("UPDATE loads SET release_state = 'RELEASED', signed_by = 'x', "
                           "signed_at = 1 WHERE id = ",
                           load_id)),
            SQLITE_CONSTRAINT_TRIGGER);
  // Parameters and a passing CI, but the load is held for its BI: still refused.
  ASSERT_EQ(RawExec(StrCat("INSERT INTO load_parameters VALUES (", load_id,
                           ", 1, 2, 240, 134, 300, 1, 'x', 3)")),
            SQLITE_OK);
  ASSERT_EQ(RawExec(StrCat("INSERT INTO load_chemical_indicators VALUES (", load_id,
                           ", 5, 'PASS', 'x', 3)")),
            SQLITE_OK);
  EXPECT_EQ(RawExec(StrCat("UPDATE loads SET release_state = 'RELEASED', signed_by = 'x', "
                           "signed_at = 1 WHERE id = ",
                           load_id)),
            SQLITE_CONSTRAINT_TRIGGER);
  ASSERT_EQ(RawExec(StrCat("INSERT INTO load_biological_indicators VALUES (", load_id,
                           ", 'P', 'L', 'NEGATIVE', 'POSITIVE', 4, 'x')")),
            SQLITE_OK);
  EXPECT_EQ(RawExec(StrCat("UPDATE loads SET release_state = 'RELEASED', signed_by = 'x', "
                           "signed_at = 1 WHERE id = ",
                           load_id)),
            SQLITE_OK);
}

TEST_F(SterilizationStoreTest, SchemaKeepsResultsAndCycleNumbersFinal) {
  const int64_t load_id = SeedLoad();
  store_.reset();
  ASSERT_EQ(RawExec(StrCat("INSERT INTO load_chemical_indicators VALUES (", load_id,
                           ", 5, 'FAIL', 'x', 3)")),
            SQLITE_OK);
  EXPECT_EQ(RawExec("UPDATE load_chemical_indicators SET result = 'PASS'"),
            SQLITE_CONSTRAINT_TRIGGER);
  EXPECT_EQ(RawExec("DELETE FROM load_chemical_indicators"), SQLITE_CONSTRAINT_TRIGGER);
  EXPECT_EQ(RawExec(StrCat("INSERT OR REPLACE INTO load_chemical_indicators VALUES (", load_id,
                           ", 5, 'PASS', 'x', 3)")),
            SQLITE_CONSTRAINT_TRIGGER);
  EXPECT_EQ(RawExec("UPDATE sterilizers SET last_cycle_number = 41"), SQLITE_OK)
      << "a rising cycle number is allowed";
  EXPECT_EQ(RawExec("UPDATE sterilizers SET last_cycle_number = 7"), SQLITE_CONSTRAINT_TRIGGER);
  EXPECT_EQ(RawExec("UPDATE items SET cycles = cycles - 1") & 0xff, SQLITE_CONSTRAINT)
      << "an item's cycle count only rises";
  EXPECT_EQ(RawExec(StrCat("UPDATE loads SET release_state = 'OPEN' WHERE id = ", load_id)),
            SQLITE_CONSTRAINT_TRIGGER);
  EXPECT_EQ(RawExec("DELETE FROM loads"), SQLITE_CONSTRAINT_TRIGGER);
}

TEST_F(SterilizationStoreTest, ItemsListByStateAndTreatment) {
  SeedLoad();
  auto tx = *store_->BeginRead();
  auto packed = tx->sterilization().ListItems({.state = ItemState::kPacked, .limit = 10});
  ASSERT_TRUE(packed.ok()) << packed.status();
  EXPECT_EQ(packed->size(), 2u);
  auto dirty = tx->sterilization().ListItems({.state = ItemState::kDirty, .limit = 10});
  ASSERT_TRUE(dirty.ok());
  EXPECT_TRUE(dirty->empty());
  auto item = tx->sterilization().FindItem("HP-0002");
  ASSERT_TRUE(item.ok() && item->has_value());
  EXPECT_EQ((*item)->ifu_max_cycles, 500);
}

// A page of loads is completed in one range of ids (close together) or load by load (far apart):
// either way each load gets its own contents, parameters and indicators, and no other's.
TEST_F(SterilizationStoreTest, EveryListedLoadHasItsOwnContentsAndResults) {
  constexpr int kLoads = 30;
  std::vector<int64_t> loads;
  {
    auto tx = *store_->BeginWrite();
    auto st_id = tx->sterilization().InsertSterilizer(
        {.name = "AUTOCLAVE1", .type = SterilizerType::kPreVacuum, .created_at = kNow});
    ASSERT_TRUE(st_id.ok()) << st_id.status();
    sterilizer_id_ = *st_id;
    for (int i = 0; i < kLoads; ++i) {
      auto item = tx->sterilization().InsertItem({.serial = StrCat("HP-", 100 + i),
                                                  .type = "handpiece",
                                                  .ifu_max_cycles = 500,
                                                  .state = ItemState::kPacked,
                                                  .created_at = kNow});
      ASSERT_TRUE(item.ok()) << item.status();
      auto load = tx->sterilization().InsertLoad({.sterilizer_id = sterilizer_id_,
                                                  .cycle_number = i + 1,
                                                  .cycle_type = "134C-4MIN",
                                                  .bi_required = false,
                                                  .shelf_life_days = 30,
                                                  .operator_name = "spd.lee",
                                                  .created_at = kNow + absl::Minutes(i),
                                                  .item_ids = {*item}});
      ASSERT_TRUE(load.ok()) << load.status();
      loads.push_back(*load);
      ASSERT_TRUE(tx->sterilization()
                      .RecordParameters(*load, {.started_at = kNow,
                                                .ended_at = kNow + absl::Minutes(40),
                                                .exposure_seconds = 200 + i,
                                                .temperature_c = 134.0,
                                                .pressure_kpa = 304.5,
                                                .passed = true,
                                                .recorded_by = "spd.lee",
                                                .recorded_at = kNow})
                      .ok());
      ASSERT_TRUE(tx->sterilization()
                      .AddChemicalIndicator(*load, {.type = 1 + i % 6,
                                                    .result = IndicatorResult::kPass,
                                                    .recorded_by = "spd.lee",
                                                    .recorded_at = kNow})
                      .ok());
    }
    // The first and the last are released: far apart among the open ones.
    for (int64_t id : {loads.front(), loads.back()}) {
      ASSERT_TRUE(tx->sterilization()
                      .SetLoadReleaseState(id, ReleaseState::kReleased,
                                           {.by = "spd.lee", .at = kNow, .meaning = "reviewed"})
                      .ok());
    }
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto tx = *store_->BeginRead();
  const auto expect_own = [&](const Load& l) {
    const int i = static_cast<int>(l.cycle_number) - 1;
    EXPECT_EQ(l.item_serials, (std::vector<std::string>{StrCat("HP-", 100 + i)})) << l.id;
    ASSERT_TRUE(l.parameters.has_value()) << l.id;
    EXPECT_EQ(l.parameters->exposure_seconds, 200 + i);
    ASSERT_EQ(l.chemical_indicators.size(), 1u) << l.id;
    EXPECT_EQ(l.chemical_indicators[0].type, 1 + i % 6);
    EXPECT_FALSE(l.bi.has_value());
  };
  // Close together: every load, in pages of 7.
  int seen = 0;
  for (int64_t after = 0;;) {
    auto page = tx->sterilization().ListLoads({.after_id = after, .limit = 7});
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    for (const Load& l : *page) expect_own(l);
    seen += static_cast<int>(page->size());
    after = page->back().id;
  }
  EXPECT_EQ(seen, kLoads);
  // Far apart: the two released loads.
  auto released = tx->sterilization().ListLoads(
      {.sterilizer_id = sterilizer_id_, .release_state = ReleaseState::kReleased, .limit = 10});
  ASSERT_TRUE(released.ok()) << released.status();
  ASSERT_EQ(released->size(), 2u);
  for (const Load& l : *released) expect_own(l);
  EXPECT_EQ(released->front().cycle_number, 1);
  EXPECT_EQ(released->back().cycle_number, kLoads);
  // And the report's read of the period, by creation time.
  auto period = tx->reports().ListLoadsCreatedBetween(kNow, kNow + absl::Hours(1), {}, 100);
  ASSERT_TRUE(period.ok()) << period.status();
  ASSERT_EQ(period->size(), static_cast<size_t>(kLoads));
  for (const Load& l : *period) expect_own(l);
}

}  // namespace
}  // namespace steritrack
