// Storage-tier tests of the reporting reads (issue 5) on a real SQLite file: each range read
// returns exactly the rows of [from, to), pages by id, and the report indexes are used for the
// range scans.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/storage/sqlite_store.h"
#include "steritrack/store.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

absl::Time Utc(int y, int m, int d, int hh = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, 0, 0), absl::UTCTimeZone());
}

class ReportStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/report-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto store = OpenSqliteStore({.path = dir_ + "/steritrack.db", .readers = 2});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);

    auto tx_or = store_->BeginWrite();
    ASSERT_TRUE(tx_or.ok()) << tx_or.status();
    WriteTransaction& tx = **tx_or;
    auto lot = tx.cartridges().InsertLot(Lot{.gtin = "09506000134352",
                                             .lot = "LOT-A",
                                             .expiry = absl::CivilDay(2030, 12, 31),
                                             .created_at = Utc(2026, 10, 1)});
    ASSERT_TRUE(lot.ok()) << lot.status();
    auto sterilizer = tx.sterilization().InsertSterilizer(Sterilizer{
        .name = "AUTOCLAVE1", .type = SterilizerType::kPreVacuum, .created_at = Utc(2026, 1, 1)});
    ASSERT_TRUE(sterilizer.ok()) << sterilizer.status();
    // One treatment, cartridge, load and Bowie-Dick test on each of Oct 31, Nov 1, Nov 30, Dec 1.
    const absl::CivilDay days[] = {absl::CivilDay(2026, 10, 31), absl::CivilDay(2026, 11, 1),
                                   absl::CivilDay(2026, 11, 30), absl::CivilDay(2026, 12, 1)};
    int n = 0;
    for (absl::CivilDay day : days) {
      ++n;
      const absl::Time at = absl::FromCivil(day, absl::UTCTimeZone()) + absl::Hours(9);
      auto t = tx.cartridges().InsertTreatment(Treatment{.room = "1",
                                                         .clinician = "dr.lee",
                                                         .client_ref = StrCat("C-", n),
                                                         .started_at = at,
                                                         .started_by = "nurse"});
      ASSERT_TRUE(t.ok()) << t.status();
      Cartridge c{.gtin = "09506000134352",
                  .serial = StrCat("S", n),
                  .received_at = Utc(2026, 10, 2),
                  .received_by = "clerk"};
      c.lot.id = *lot;
      auto cid = tx.cartridges().InsertCartridge(c);
      ASSERT_TRUE(cid.ok()) << cid.status();
      ASSERT_TRUE(tx.cartridges()
                      .RecordUse(*cid, CartridgeUse{.treatment_id = *t,
                                                    .room = "1",
                                                    .at = at + absl::Minutes(5),
                                                    .by = "nurse"})
                      .ok());
      ASSERT_TRUE(
          tx.sterilization()
              .InsertBowieDickTest(BowieDickTest{
                  .sterilizer_id = *sterilizer, .day = day, .operator_name = "sp", .at = at})
              .ok());
      auto load = tx.sterilization().InsertLoad(Load{.sterilizer_id = *sterilizer,
                                                     .cycle_number = n,
                                                     .cycle_type = "134C-4MIN",
                                                     .operator_name = "sp",
                                                     .created_at = at + absl::Minutes(10)});
      ASSERT_TRUE(load.ok()) << load.status();
    }
    ASSERT_TRUE(tx.Commit().ok());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(ReportStoreTest, RangeReadsReturnExactlyThePeriod) {
  auto tx = store_->BeginRead();
  ASSERT_TRUE(tx.ok()) << tx.status();
  const absl::Time from = Utc(2026, 11, 1), to = Utc(2026, 12, 1);

  auto treatments = (*tx)->reports().ListTreatmentsStartedBetween(from, to, {}, 100);
  ASSERT_TRUE(treatments.ok()) << treatments.status();
  std::vector<std::string> refs;
  for (const Treatment& t : *treatments) refs.push_back(t.client_ref);
  EXPECT_EQ(refs, (std::vector<std::string>{"C-2", "C-3"}));

  auto cartridges = (*tx)->reports().ListCartridgesOpenedBetween(from, to, {}, 100);
  ASSERT_TRUE(cartridges.ok()) << cartridges.status();
  ASSERT_EQ(cartridges->size(), 2u);
  EXPECT_EQ((*cartridges)[0].serial, "S2");
  ASSERT_TRUE((*cartridges)[0].use.has_value());
  EXPECT_EQ((*cartridges)[0].lot.lot, "LOT-A");
  // Keyset pagination by (opening time, id): after the first row, only the second.
  auto second = (*tx)->reports().ListCartridgesOpenedBetween(
      from, to, PeriodCursor{.at = (*cartridges)[0].use->at, .id = (*cartridges)[0].id}, 1);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].serial, "S3");

  auto loads = (*tx)->reports().ListLoadsCreatedBetween(from, to, {}, 100);
  ASSERT_TRUE(loads.ok()) << loads.status();
  ASSERT_EQ(loads->size(), 2u);
  EXPECT_EQ((*loads)[0].cycle_number, 2);
  EXPECT_EQ((*loads)[0].sterilizer_name, "AUTOCLAVE1");

  auto tests = (*tx)->reports().ListBowieDickTestsBetween(absl::CivilDay(2026, 11, 1),
                                                          absl::CivilDay(2026, 12, 1));
  ASSERT_TRUE(tests.ok()) << tests.status();
  ASSERT_EQ(tests->size(), 2u);
  EXPECT_EQ((*tests)[0].day, absl::CivilDay(2026, 11, 1));
  EXPECT_EQ((*tests)[1].day, absl::CivilDay(2026, 11, 30));
}

}  // namespace
}  // namespace steritrack
