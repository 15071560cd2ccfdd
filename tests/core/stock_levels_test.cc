// Core-tier tests of par levels (issue 15): what counts as openable, and crossings recorded once
// per crossing, against the in-memory FakeStore with time from a FakeClock (2026-11-26 10:00 UTC
// unless a test moves it).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/cartridge_service.h"
#include "server/core/report_service.h"
#include "steritrack/error.h"
#include "steritrack/model.h"
#include "steritrack/strings.h"
#include "tests/core/fake_store.h"
#include "tests/status_matchers.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr std::string_view kGtin = "09506000134352";
constexpr std::string_view kOtherGtin = "09521234543213";

absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, 0), absl::UTCTimeZone());
}

const absl::Time kNow = Utc(2026, 11, 26, 10, 0);

// A unit of `gtin`, lot `lot` expiring `expiry` (YYMMDD).
std::string Unit(std::string_view lot, std::string_view expiry, std::string_view serial,
                 std::string_view gtin = kGtin) {
  return StrCat("(01)", gtin, "(17)", expiry, "(10)", lot, "(21)", serial);
}

class StockLevelsTest : public ::testing::Test {
 protected:
  StockLevelsTest() : StockLevelsTest(absl::UTCTimeZone()) {}
  explicit StockLevelsTest(absl::TimeZone zone)
      : service_(CartridgeServiceOptions{.store = &faulty_store_,
                                         .sha256 = TestSha256(),
                                         .clock = &clock_,
                                         .clinic_time_zone = zone}) {}

  static WriteContext Ctx(std::string request_id = "") {
    return WriteContext{.actor = "mgr.ana", .request_id = std::move(request_id)};
  }

  void Receive(const std::vector<std::string>& barcodes) {
    absl::StatusOr<std::vector<Cartridge>> r = service_.Receive(Ctx(), barcodes);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // `n` units of lot `lot` with serials <prefix>1..<prefix>n.
  void ReceiveLot(std::string_view lot, std::string_view expiry, int n, std::string_view prefix,
                  std::string_view gtin = kGtin) {
    std::vector<std::string> units;
    for (int i = 1; i <= n; ++i) units.push_back(Unit(lot, expiry, StrCat(prefix, i), gtin));
    Receive(units);
  }
  int64_t StartTreatment() {
    absl::StatusOr<Treatment> t = service_.StartTreatment(Ctx(), "Room 1", "dr.lee", "c-1");
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->id : 0;
  }
  void Open(const std::string& barcode) {
    absl::StatusOr<Cartridge> c = service_.Open(Ctx(), barcode, treatment_);
    ASSERT_TRUE(c.ok()) << c.status();
  }
  void SetPar(int64_t min, std::optional<int> window = std::nullopt) {
    absl::StatusOr<ParLevel> p = service_.SetParLevel(Ctx(), kGtin, min, window);
    ASSERT_TRUE(p.ok()) << p.status();
  }
  ProductStock StockOf(std::string_view gtin = kGtin) {
    absl::StatusOr<StockLevels> levels = service_.ListStockLevels();
    EXPECT_TRUE(levels.ok()) << levels.status();
    if (levels.ok()) {
      for (const ProductStock& p : levels->products) {
        if (p.par.gtin == gtin) return p;
      }
    }
    ADD_FAILURE() << "no par level for " << gtin;
    return {};
  }
  std::vector<Event> Crossings() {
    std::vector<Event> out;
    for (const Event& e : store_.Snapshot().events) {
      if (e.action == "STOCK_BELOW_PAR" || e.action == "STOCK_RESTORED") out.push_back(e);
    }
    return out;
  }
  std::vector<std::string> CrossingActions() {
    std::vector<std::string> out;
    for (const Event& e : Crossings()) out.push_back(e.action);
    return out;
  }

  FakeClock clock_{kNow};
  FakeStore store_;
  FaultInjectingStore faulty_store_{&store_};
  CartridgeService service_;
  int64_t treatment_ = 0;
};

// ---- What counts

TEST_F(StockLevelsTest, CountsOnlyWhatOpenWouldOpenAndExpiringApart) {
  ReceiveLot("FAR", "280630", 5, "F");                   // openable, far from expiry
  ReceiveLot("SOON", "261210", 3, "S");                  // openable, expires in 14 days: expiring
  ReceiveLot("BAD", "280630", 2, "B");                   // recalled below
  Receive({Unit("OTHER", "280630", "O1", kOtherGtin)});  // another product
  ASSERT_TRUE(service_.RecallLot(Ctx(), kGtin, "BAD", "FSCA-1").ok());
  treatment_ = StartTreatment();
  Open(Unit("FAR", "280630", "F1"));
  ASSERT_TRUE(service_.Discard(Ctx(), Unit("FAR", "280630", "F2"), "dropped").ok());
  SetPar(2, 30);

  ProductStock s = StockOf();
  EXPECT_EQ(s.openable, 6);  // F3-F5 and S1-S3
  EXPECT_EQ(s.expiring, 3);
  EXPECT_EQ(s.next_expiry, absl::CivilDay(2026, 12, 10));
  EXPECT_FALSE(s.below_par);  // 6 - 3 >= 2

  // The count and the open check agree unit by unit.
  int64_t usable = 0;
  for (const char* serial : {"F1", "F2", "F3", "F4", "F5", "S1", "S2", "S3", "B1", "B2"}) {
    const std::string lot = serial[0] == 'F' ? "FAR" : serial[0] == 'S' ? "SOON" : "BAD";
    const std::string expiry = serial[0] == 'S' ? "261210" : "280630";
    absl::StatusOr<CartridgeDetail> d = service_.GetCartridge(Unit(lot, expiry, serial));
    ASSERT_TRUE(d.ok()) << d.status();
    usable += d->open_verdict.ok() ? 1 : 0;
  }
  EXPECT_EQ(usable, s.openable);
}

TEST_F(StockLevelsTest, AnExpiredUnitIsNeitherOpenableNorExpiring) {
  ReceiveLot("TODAY", "261126", 2, "T");  // usable through today
  SetPar(0, 0);
  EXPECT_EQ(StockOf().openable, 2);
  EXPECT_EQ(StockOf().expiring, 2);  // expiry - today = 0 <= window 0
  clock_.Set(Utc(2026, 11, 27, 0, 0));
  EXPECT_EQ(StockOf().openable, 0);
  EXPECT_EQ(StockOf().expiring, 0);
  EXPECT_FALSE(StockOf().next_expiry.has_value());
}

TEST_F(StockLevelsTest, BelowParWhenOpenableMinusExpiringIsUnderThePar) {
  ReceiveLot("FAR", "280630", 4, "F");
  ReceiveLot("SOON", "261205", 3, "S");
  SetPar(5, 30);
  EXPECT_TRUE(StockOf().below_par);  // 7 openable, 3 expiring: 4 < 5
  SetPar(4, 30);
  EXPECT_FALSE(StockOf().below_par);
  SetPar(4, 5);  // the SOON lot is 9 days away: outside a 5-day window
  EXPECT_EQ(StockOf().expiring, 0);
}

// ---- Crossings, once each

TEST_F(StockLevelsTest, TwoOpensBelowParRecordOneEvent) {
  ReceiveLot("L1", "280630", 4, "U");
  SetPar(3);
  treatment_ = StartTreatment();
  Open(Unit("L1", "280630", "U1"));  // 3: at par
  EXPECT_THAT(Crossings(), IsEmpty());
  Open(Unit("L1", "280630", "U2"));  // 2: below
  Open(Unit("L1", "280630", "U3"));  // 1: still below, no second event
  std::vector<Event> crossings = Crossings();
  ASSERT_THAT(crossings, SizeIs(1));
  EXPECT_EQ(crossings[0].action, "STOCK_BELOW_PAR");
  EXPECT_EQ(crossings[0].actor, "mgr.ana");
  EXPECT_THAT(crossings[0].detail, HasSubstr(kGtin));
  EXPECT_THAT(crossings[0].detail, HasSubstr("2 openable"));
  EXPECT_THAT(crossings[0].detail, HasSubstr("cartridge U2 was opened"));
  EXPECT_THAT(crossings[0].after, HasSubstr("below_par=true openable=2"));
  EXPECT_TRUE(StockOf().below_par);
}

TEST_F(StockLevelsTest, AReceiptRestoresOnce) {
  ReceiveLot("L1", "280630", 1, "U");
  SetPar(3);
  ASSERT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR"));  // set while below
  ReceiveLot("L2", "280630", 1, "V");                              // 2: still below
  ReceiveLot("L3", "280630", 5, "W");                              // 7: restored
  ReceiveLot("L4", "280630", 5, "Z");                              // 12: nothing new
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR", "STOCK_RESTORED"));
  EXPECT_THAT(Crossings()[1].detail, HasSubstr("after a receipt"));
}

TEST_F(StockLevelsTest, RecallOfTheOnlyLotTakesTheProductBelowParOnce) {
  ReceiveLot("ONLY", "280630", 10, "U");
  SetPar(2);
  EXPECT_THAT(Crossings(), IsEmpty());
  ASSERT_TRUE(service_.RecallLot(Ctx(), kGtin, "ONLY", "FSCA-9").ok());
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR"));
  EXPECT_THAT(Crossings()[0].detail, HasSubstr("lot ONLY was recalled"));
  EXPECT_EQ(StockOf().openable, 0);
}

TEST_F(StockLevelsTest, AWriteOffCanCrossToo) {
  ReceiveLot("L1", "280630", 2, "U");
  SetPar(2);
  ASSERT_TRUE(service_.Discard(Ctx(), Unit("L1", "280630", "U1"), "dropped").ok());
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR"));
}

TEST_F(StockLevelsTest, MidnightPassingAnExpiryIsFoundByTheDailyCheckOnce) {
  ReceiveLot("SHORT", "261130", 3, "S");  // last usable day 2026-11-30
  ReceiveLot("LONG", "280630", 2, "L");
  SetPar(4, 0);                         // window 0: a unit counts as expiring on its last day only
  EXPECT_THAT(Crossings(), IsEmpty());  // 5 openable, none expiring

  // Nothing written; the last minute of 2026-11-29 changes nothing.
  clock_.Set(Utc(2026, 11, 29, 23, 59));
  absl::StatusOr<std::vector<Event>> found = service_.CheckStockLevels(Ctx());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(*found, IsEmpty());

  // Midnight: the SHORT units are on their last day, so they no longer protect the par: 5 - 3.
  clock_.Set(Utc(2026, 11, 30, 0, 0));
  found = service_.CheckStockLevels(Ctx());
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_THAT(*found, SizeIs(1));
  EXPECT_EQ((*found)[0].action, "STOCK_BELOW_PAR");
  EXPECT_THAT((*found)[0].detail, HasSubstr("the daily stock check of 2026-11-30"));
  EXPECT_THAT((*found)[0].detail, HasSubstr("5 openable (3 expiring within 0 days), par 4"));
  // The next check, the next midnight (they expired: 2 openable) and a check after a restart find
  // no new crossing.
  found = service_.CheckStockLevels(Ctx());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(*found, IsEmpty());
  clock_.Set(Utc(2026, 12, 1, 0, 0));
  found = service_.CheckStockLevels(Ctx());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(*found, IsEmpty());
  EXPECT_EQ(StockOf().openable, 2);
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR"));
}

TEST_F(StockLevelsTest, EnteringTheWindowIsACrossingToo) {
  ReceiveLot("L1", "261231", 5, "U");  // 35 days away on 2026-11-26
  SetPar(3, 30);
  EXPECT_THAT(Crossings(), IsEmpty());
  clock_.Set(Utc(2026, 12, 1, 0, 0));  // 30 days away: all 5 expiring, 0 protect the par
  ASSERT_TRUE(service_.CheckStockLevels(Ctx()).ok());
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR"));
}

TEST_F(StockLevelsTest, ARefusedOpenCrossesNothing) {
  ReceiveLot("L1", "280630", 3, "U");
  SetPar(3);
  treatment_ = StartTreatment();
  Open(Unit("L1", "280630", "U1"));  // below: one event
  const size_t before = Crossings().size();
  EXPECT_FALSE(service_.Open(Ctx(), Unit("L1", "280630", "U1"), treatment_).ok());
  EXPECT_EQ(Crossings().size(), before);
}

TEST_F(StockLevelsTest, ACrossingCommitsWithItsWriteOrNotAtAll) {
  ReceiveLot("L1", "280630", 3, "U");
  SetPar(3);
  treatment_ = StartTreatment();
  faulty_store_.fail_next_commit = true;
  EXPECT_FALSE(service_.Open(Ctx(), Unit("L1", "280630", "U1"), treatment_).ok());
  EXPECT_THAT(Crossings(), IsEmpty());
  EXPECT_FALSE(StockOf().below_par);
  Open(Unit("L1", "280630", "U1"));  // now it happens, once
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR"));
}

TEST_F(StockLevelsTest, ProductsWithoutAParLevelRecordNoCrossing) {
  ReceiveLot("L1", "280630", 1, "U");
  treatment_ = StartTreatment();
  Open(Unit("L1", "280630", "U1"));
  EXPECT_THAT(Crossings(), IsEmpty());
  absl::StatusOr<StockLevels> levels = service_.ListStockLevels();
  ASSERT_TRUE(levels.ok());
  EXPECT_THAT(levels->products, IsEmpty());
  EXPECT_EQ(levels->today, absl::CivilDay(2026, 11, 26));
}

TEST_F(StockLevelsTest, AQuarantineHoldsTheLotAndItsLiftRestores) {
  ReceiveLot("L1", "280630", 3, "U");
  SetPar(2);
  absl::StatusOr<Lot> held = service_.QuarantineLot(Ctx("q-1"), kGtin, "L1", "supplier notice");
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(held->state, LotState::kQuarantined);
  EXPECT_EQ(held->state_reason, "supplier notice");
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR"));
  EXPECT_EQ(StockOf().openable, 0);
  // A held lot is refused at opening, as the count says.
  treatment_ = StartTreatment();
  EXPECT_THAT(service_.Open(Ctx(), Unit("L1", "280630", "U1"), treatment_),
              IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_QUARANTINED"));
  EXPECT_THAT(service_.QuarantineLot(Ctx(), kGtin, "L1", "again"),
              IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_QUARANTINED"));
  // A retry of the same request answers the same, recording nothing twice.
  ASSERT_TRUE(service_.QuarantineLot(Ctx("q-1"), kGtin, "L1", "supplier notice").ok());

  absl::StatusOr<Lot> lifted = service_.LiftLotQuarantine(Ctx(), kGtin, "L1", "seals intact");
  ASSERT_TRUE(lifted.ok()) << lifted.status();
  EXPECT_EQ(lifted->state, LotState::kActive);
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR", "STOCK_RESTORED"));
  EXPECT_THAT(Crossings()[1].detail, HasSubstr("the quarantine of lot L1 was lifted"));
  Open(Unit("L1", "280630", "U1"));
  EXPECT_THAT(service_.LiftLotQuarantine(Ctx(), kGtin, "L1", "again"),
              IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_NOT_QUARANTINED"));

  std::vector<std::string> lot_events;
  for (const Event& e : store_.Snapshot().events) {
    if (e.action.rfind("LOT_QUARANTINE", 0) == 0) lot_events.push_back(e.action);
  }
  EXPECT_THAT(lot_events, ElementsAre("LOT_QUARANTINED", "LOT_QUARANTINE_LIFTED"));
}

TEST_F(StockLevelsTest, ARecalledLotCannotBeQuarantinedNorLifted) {
  ReceiveLot("L1", "280630", 1, "U");
  ASSERT_TRUE(service_.RecallLot(Ctx(), kGtin, "L1", "FSCA-1").ok());
  EXPECT_THAT(service_.QuarantineLot(Ctx(), kGtin, "L1", "hold"),
              IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_RECALLED"));
  EXPECT_THAT(service_.LiftLotQuarantine(Ctx(), kGtin, "L1", "ok"),
              IsRefused(absl::StatusCode::kFailedPrecondition, "LOT_RECALLED"));
  EXPECT_THAT(service_.QuarantineLot(Ctx(), kGtin, "NOPE", "hold"),
              IsRefused(absl::StatusCode::kNotFound, "LOT_NOT_FOUND"));
  EXPECT_THAT(service_.QuarantineLot(Ctx(), kGtin, "L1", ""), IsInvalidField("reason"));
}

// ---- Setting and clearing

TEST_F(StockLevelsTest, SetAndClearAreAuditedAndIdempotent) {
  absl::StatusOr<ParLevel> set = service_.SetParLevel(Ctx("r-1"), kGtin, 10, std::nullopt);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->expiry_window_days, kDefaultExpiryWindowDays);
  EXPECT_EQ(set->set_by, "mgr.ana");
  EXPECT_EQ(set->set_at, kNow);
  EXPECT_TRUE(set->below_par);  // nothing in stock
  // A retry under the same id changes nothing and answers the same.
  absl::StatusOr<ParLevel> again = service_.SetParLevel(Ctx("r-1"), kGtin, 10, std::nullopt);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->min_units, 10);
  EXPECT_EQ(CrossingActions(), std::vector<std::string>{"STOCK_BELOW_PAR"});

  // A new minimum keeps the window; a new window is taken.
  ASSERT_TRUE(service_.SetParLevel(Ctx(), kGtin, 0, 7).ok());
  set = service_.SetParLevel(Ctx(), kGtin, 0, std::nullopt);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->expiry_window_days, 7);
  EXPECT_FALSE(set->below_par);  // par 0: restored
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR", "STOCK_RESTORED"));

  absl::StatusOr<ParLevel> cleared = service_.ClearParLevel(Ctx(), kGtin);
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_EQ(cleared->expiry_window_days, 7);
  EXPECT_THAT(service_.ClearParLevel(Ctx(), kGtin),
              IsRefused(absl::StatusCode::kNotFound, "PAR_LEVEL_NOT_FOUND"));

  std::vector<std::string> audit;
  for (const Event& e : store_.Snapshot().events) {
    if (e.action.rfind("PAR_LEVEL_", 0) == 0) audit.push_back(e.action);
  }
  EXPECT_THAT(audit,
              ElementsAre("PAR_LEVEL_SET", "PAR_LEVEL_SET", "PAR_LEVEL_SET", "PAR_LEVEL_CLEARED"));
  EXPECT_THAT(service_.ListStockLevels()->products, IsEmpty());
}

TEST_F(StockLevelsTest, BadInputNamesTheFieldAndStoresNothing) {
  EXPECT_THAT(service_.SetParLevel(Ctx(), "09506000134353", 1, std::nullopt),
              IsInvalidField("gtin"));  // wrong check digit
  EXPECT_THAT(service_.SetParLevel(Ctx(), "123", 1, std::nullopt), IsInvalidField("gtin"));
  EXPECT_THAT(service_.SetParLevel(Ctx(), kGtin, -1, std::nullopt), IsInvalidField("min_units"));
  EXPECT_THAT(service_.SetParLevel(Ctx(), kGtin, kMaxParUnits + 1, std::nullopt),
              IsInvalidField("min_units"));
  EXPECT_THAT(service_.SetParLevel(Ctx(), kGtin, 1, -1), IsInvalidField("expiry_window_days"));
  EXPECT_THAT(service_.SetParLevel(Ctx(), kGtin, 1, kMaxExpiryWindowDays + 1),
              IsInvalidField("expiry_window_days"));
  EXPECT_THAT(service_.ClearParLevel(Ctx(), "x"), IsInvalidField("gtin"));
  EXPECT_THAT(store_.Snapshot().events, IsEmpty());
  EXPECT_THAT(store_.Snapshot().par_levels, IsEmpty());
}

TEST_F(StockLevelsTest, TheStockReportCarriesEveryParLevel) {
  ReceiveLot("L1", "280630", 2, "U");
  SetPar(5);
  ReportService reports({.store = &store_,
                         .sha256 = TestSha256(),
                         .clock = &clock_,
                         .clinic_time_zone = absl::UTCTimeZone()});
  absl::StatusOr<StockReport> report = reports.Stock(30);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_THAT(report->products, SizeIs(1));
  EXPECT_EQ(report->products[0].openable, 2);
  EXPECT_TRUE(report->products[0].below_par);
}

TEST_F(StockLevelsTest, TheComplianceReportListsThePeriodsCrossingsWithoutAnException) {
  ReceiveLot("L1", "280630", 2, "U");
  SetPar(2);
  treatment_ = StartTreatment();
  Open(Unit("L1", "280630", "U1"));  // below par on 2026-11-26
  clock_.Set(Utc(2026, 11, 27, 9, 0));
  ReceiveLot("L2", "280630", 1, "V");  // restored on 2026-11-27
  ReportService reports({.store = &store_,
                         .sha256 = TestSha256(),
                         .clock = &clock_,
                         .clinic_time_zone = absl::UTCTimeZone()});
  absl::StatusOr<ComplianceReport> both =
      reports.ComplianceReportFor(absl::CivilDay(2026, 11, 26), absl::CivilDay(2026, 11, 28));
  ASSERT_TRUE(both.ok()) << both.status();
  ASSERT_THAT(both->stock_alerts, SizeIs(2));
  EXPECT_EQ(both->stock_alerts[0].action, "STOCK_BELOW_PAR");
  EXPECT_EQ(both->stock_alerts[1].action, "STOCK_RESTORED");
  EXPECT_LT(both->stock_alerts[0].seq, both->stock_alerts[1].seq);
  EXPECT_EQ(both->totals.stock_below_par, 1);
  for (const ComplianceException& e : both->exceptions) {
    EXPECT_NE(e.kind, ExceptionKind::kAuditTrailBroken);
  }
  absl::StatusOr<ComplianceReport> second_day =
      reports.ComplianceReportFor(absl::CivilDay(2026, 11, 27), absl::CivilDay(2026, 11, 28));
  ASSERT_TRUE(second_day.ok()) << second_day.status();
  ASSERT_THAT(second_day->stock_alerts, SizeIs(1));
  EXPECT_EQ(second_day->stock_alerts[0].action, "STOCK_RESTORED");
  EXPECT_EQ(second_day->totals.stock_below_par, 0);
}

class StockLevelsInClinicZoneTest : public StockLevelsTest {
 protected:
  StockLevelsInClinicZoneTest() : StockLevelsTest(Zone()) {}
  static absl::TimeZone Zone() {
    absl::TimeZone zone;
    EXPECT_TRUE(absl::LoadTimeZone("Australia/Sydney", &zone));
    return zone;
  }
};

TEST_F(StockLevelsInClinicZoneTest, ExpiryFollowsTheClinicsDayNotUtc) {
  // Window 0, par 1: 2 units of SHORT (last day 2026-11-30) and 1 of LONG. On SHORT's last day
  // openable - expiring = 3 - 2 = 1: still at par; once SHORT has expired, 1 - 0 = 1 as well; so
  // only the day SHORT is gone matters here for openable, and a par of 2 shows the crossing.
  ReceiveLot("SHORT", "261130", 2, "S");
  ReceiveLot("LONG", "280630", 1, "L");
  SetPar(1, 0);
  // 2026-11-30 12:59 UTC is 23:59 in Sydney (UTC+11): SHORT is on its last day there.
  clock_.Set(Utc(2026, 11, 30, 12, 59));
  EXPECT_EQ(StockOf().openable, 3);
  EXPECT_EQ(StockOf().expiring, 2);
  // 2026-11-30 13:30 UTC is 2026-12-01 00:30 in Sydney: SHORT has expired there, though it is
  // still its last day in UTC (where it would count 3 openable).
  clock_.Set(Utc(2026, 11, 30, 13, 30));
  EXPECT_EQ(StockOf().openable, 1);
  EXPECT_EQ(StockOf().expiring, 0);
  EXPECT_EQ(StockOf().next_expiry, absl::CivilDay(2028, 6, 30));
  SetPar(2, 0);
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR"));
  EXPECT_THAT(Crossings()[0].detail, HasSubstr("1 openable (0 expiring"));
}

// ---- More crossings

TEST_F(StockLevelsTest, ClearingAParLevelWhileBelowItClosesTheAlert) {
  ReceiveLot("L1", "280630", 1, "U");
  SetPar(3);  // below at once
  ASSERT_TRUE(service_.ClearParLevel(Ctx(), kGtin).ok());
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR", "STOCK_RESTORED"));
  EXPECT_THAT(Crossings()[1].detail, HasSubstr("its par level was cleared"));
  // Set again while still short: a new alert, after the closed one.
  SetPar(3);
  EXPECT_THAT(CrossingActions(),
              ElementsAre("STOCK_BELOW_PAR", "STOCK_RESTORED", "STOCK_BELOW_PAR"));
  // Clearing one at par records no alert.
  ReceiveLot("L2", "280630", 5, "V");
  ASSERT_TRUE(service_.ClearParLevel(Ctx(), kGtin).ok());
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR", "STOCK_RESTORED", "STOCK_BELOW_PAR",
                                             "STOCK_RESTORED"));
}

TEST_F(StockLevelsTest, OneReceiptOfTwoProductsRestoresEachOnce) {
  SetPar(2);
  ASSERT_TRUE(service_.SetParLevel(Ctx(), kOtherGtin, 1, std::nullopt).ok());
  ASSERT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR", "STOCK_BELOW_PAR"));
  Receive({Unit("A", "280630", "A1"), Unit("B", "280630", "B1", kOtherGtin),
           Unit("A", "280630", "A2"), Unit("B", "280630", "B2", kOtherGtin)});
  std::vector<Event> crossings = Crossings();
  ASSERT_THAT(crossings, SizeIs(4));
  EXPECT_EQ(crossings[2].action, "STOCK_RESTORED");
  EXPECT_EQ(crossings[3].action, "STOCK_RESTORED");
  EXPECT_NE(crossings[2].detail.find(kGtin) == std::string::npos,
            crossings[3].detail.find(kGtin) == std::string::npos);  // one per product
}

TEST_F(StockLevelsTest, ARetriedOpenThatCrossedRecordsTheCrossingOnce) {
  ReceiveLot("L1", "280630", 2, "U");
  SetPar(2);
  treatment_ = StartTreatment();
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<Cartridge> c =
        service_.Open(Ctx("open-1"), Unit("L1", "280630", "U1"), treatment_);
    ASSERT_TRUE(c.ok()) << c.status();
  }
  EXPECT_THAT(CrossingActions(), ElementsAre("STOCK_BELOW_PAR"));
  EXPECT_EQ(StockOf().openable, 1);
}

TEST_F(StockLevelsTest, SetAnswersWhetherTheProductIsBelowParNow) {
  ReceiveLot("L1", "280630", 2, "U");
  absl::StatusOr<ParLevel> at = service_.SetParLevel(Ctx(), kGtin, 2, std::nullopt);
  ASSERT_TRUE(at.ok());
  EXPECT_FALSE(at->below_par);
  absl::StatusOr<ParLevel> below = service_.SetParLevel(Ctx(), kGtin, 3, std::nullopt);
  ASSERT_TRUE(below.ok());
  EXPECT_TRUE(below->below_par);
}

}  // namespace
}  // namespace steritrack
