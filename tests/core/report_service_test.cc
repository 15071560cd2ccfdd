// Core-tier tests of ReportService against the in-memory FakeStore: a scripted November 2026 with
// known exceptions, written straight into the store (so that the past can be scripted: late
// disposals, a day without a Bowie-Dick test) and read with a FakeClock at 2026-11-26 10:00 UTC.
#include "server/core/report_service.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/sterilization_service.h"
#include "steritrack/audit_chain.h"
#include "steritrack/error.h"
#include "steritrack/model.h"
#include "steritrack/sterilization.h"
#include "steritrack/strings.h"
#include "tests/core/fake_store.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr std::string_view kGtinA = "09506000134352";
constexpr std::string_view kGtinB = "09521234543213";

absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, 0), absl::UTCTimeZone());
}

const absl::Time kNow = Utc(2026, 11, 26, 10, 0);

std::string FactOf(const ComplianceException& e, const std::string& name) {
  for (const auto& [k, v] : e.record) {
    if (k == name) return v;
  }
  return "<no " + name + ">";
}

// What identifies an exception in the expected list: kind and its key record.
using Seen = std::tuple<std::string, absl::Time, std::string>;

Seen Key(const ComplianceException& e) {
  std::string id;
  switch (e.kind) {
    case ExceptionKind::kOverdueDisposal:
      id = StrCat(FactOf(e, "serial"), " ", FactOf(e, "status"));
      break;
    case ExceptionKind::kNoBowieDick:
      id = StrCat(FactOf(e, "sterilizer"), " ", FactOf(e, "day"));
      break;
    case ExceptionKind::kRecallAffectedTreatments:
      id = StrCat(FactOf(e, "lot"), " treatments ", FactOf(e, "treatments"));
      break;
    default:
      id = StrCat(FactOf(e, "sterilizer"), " cycle ", FactOf(e, "cycle"));
  }
  return {std::string(ExceptionKindName(e.kind)), e.at, id};
}

class ReportServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tx_or = store_.BeginWrite();
    ASSERT_TRUE(tx_or.ok()) << tx_or.status();
    WriteTransaction& tx = **tx_or;

    // Lots: A active, R recalled in the period, Q quarantined expiring soon, X expired, O recalled
    // before the period.
    auto lot = [&](std::string_view gtin, std::string_view name, absl::CivilDay expiry) {
      Lot l{.gtin = std::string(gtin),
            .lot = std::string(name),
            .expiry = expiry,
            .created_at = Utc(2026, 10, 1)};
      auto id = tx.cartridges().InsertLot(l);
      EXPECT_TRUE(id.ok()) << id.status();
      return *id;
    };
    lot_a_ = lot(kGtinA, "LOT-A", absl::CivilDay(2027, 12, 31));
    lot_r_ = lot(kGtinA, "LOT-R", absl::CivilDay(2027, 6, 30));
    lot_q_ = lot(kGtinB, "LOT-Q", absl::CivilDay(2026, 12, 10));
    lot_x_ = lot(kGtinB, "LOT-X", absl::CivilDay(2026, 11, 1));
    lot_o_ = lot(kGtinB, "LOT-O", absl::CivilDay(2027, 1, 31));

    auto treatment = [&](std::string_view room, std::string_view client, absl::Time at) {
      auto id = tx.cartridges().InsertTreatment(Treatment{.room = std::string(room),
                                                          .clinician = "dr.lee",
                                                          .client_ref = std::string(client),
                                                          .started_at = at,
                                                          .started_by = "nurse.kim"});
      EXPECT_TRUE(id.ok()) << id.status();
      return *id;
    };
    const int64_t t1 = treatment("1", "C-001", Utc(2026, 11, 3, 9, 0));
    const int64_t t2 = treatment("2", "C-002", Utc(2026, 11, 3, 10, 0));
    t3_ = treatment("1", "C-003", Utc(2026, 11, 10, 11, 0));
    t4_ = treatment("3", "C-004", Utc(2026, 11, 20, 12, 0));
    const int64_t t4 = t4_;
    const int64_t t5 = treatment("1", "C-005", Utc(2026, 10, 31, 23, 0));  // before the period
    const int64_t t6 = treatment("2", "C-006", Utc(2026, 12, 1, 0, 0));    // `to` is excluded
    const int64_t t7 = treatment("3", "C-007", Utc(2026, 11, 26, 8, 0));

    auto unit = [&](int64_t lot_id, std::string_view gtin, std::string_view serial) {
      Cartridge c{.gtin = std::string(gtin),
                  .serial = std::string(serial),
                  .received_at = Utc(2026, 10, 2),
                  .received_by = "clerk"};
      c.lot.id = lot_id;
      auto id = tx.cartridges().InsertCartridge(c);
      EXPECT_TRUE(id.ok()) << id.status();
      return *id;
    };
    auto open = [&](int64_t id, int64_t treatment_id, std::string_view room, absl::Time at) {
      ASSERT_TRUE(tx.cartridges()
                      .RecordUse(id, CartridgeUse{.treatment_id = treatment_id,
                                                  .room = std::string(room),
                                                  .at = at,
                                                  .by = "nurse.kim"})
                      .ok());
    };
    auto dispose = [&](int64_t id, absl::Time at) {
      ASSERT_TRUE(
          tx.cartridges()
              .RecordDisposal(id, Disposal{.container_id = "SHARPS-1", .at = at, .by = "nurse.kim"})
              .ok());
    };
    const int64_t c1 = unit(lot_a_, kGtinA, "C1");
    open(c1, t1, "1", Utc(2026, 11, 3, 9, 5));
    dispose(c1, Utc(2026, 11, 3, 9, 40));  // in time
    const int64_t c2 = unit(lot_a_, kGtinA, "C2");
    open(c2, t2, "2", Utc(2026, 11, 3, 10, 5));
    dispose(c2, Utc(2026, 11, 3, 15, 0));  // 4 h 55 min: late
    const int64_t c3 = unit(lot_a_, kGtinA, "C3");
    open(c3, t3_, "1", Utc(2026, 11, 10, 11, 0));  // never disposed
    const int64_t c4 = unit(lot_r_, kGtinA, "C4");
    open(c4, t3_, "1", Utc(2026, 11, 10, 11, 10));
    dispose(c4, Utc(2026, 11, 10, 11, 30));
    const int64_t c5 = unit(lot_a_, kGtinA, "C5");
    open(c5, t4, "3", Utc(2026, 11, 20, 12, 0));
    dispose(c5, Utc(2026, 11, 20, 16, 0));  // exactly the limit: in time
    const int64_t c6 = unit(lot_a_, kGtinA, "C6");
    open(c6, t5, "1", Utc(2026, 10, 31, 23, 30));  // before the period, never disposed
    const int64_t c10 = unit(lot_a_, kGtinA, "C10");
    open(c10, t7, "3", Utc(2026, 11, 26, 8, 0));  // open for 2 h now: within the limit
    const int64_t c12 = unit(lot_a_, kGtinA, "C12");
    open(c12, t6, "2", Utc(2026, 12, 1, 0, 10));  // after the period
    unit(lot_a_, kGtinA, "C7");                   // in stock
    c11_ = unit(lot_r_, kGtinA, "C11");           // in stock, recalled lot
    unit(lot_q_, kGtinB, "C9");                   // in stock, quarantined lot
    unit(lot_x_, kGtinB, "C8");                   // in stock, expired lot
    const int64_t c13 = unit(lot_a_, kGtinA, "C13");
    ASSERT_TRUE(
        tx.cartridges()
            .RecordDiscard(c13,
                           Discard{.reason = "dropped", .at = Utc(2026, 11, 4), .by = "nurse.kim"})
            .ok());

    ASSERT_TRUE(tx.cartridges()
                    .UpdateLotState(lot_r_, LotState::kRecalled, "FSCA-7", Utc(2026, 11, 20, 14, 0),
                                    "manager")
                    .ok());
    ASSERT_TRUE(tx.cartridges()
                    .UpdateLotState(lot_q_, LotState::kQuarantined, "damp box", Utc(2026, 11, 21),
                                    "manager")
                    .ok());
    ASSERT_TRUE(
        tx.cartridges()
            .UpdateLotState(lot_o_, LotState::kRecalled, "old recall", Utc(2026, 10, 15), "manager")
            .ok());

    // Sterilisers and their loads.
    auto sterilizer = [&](std::string_view name, SterilizerType type) {
      auto id = tx.sterilization().InsertSterilizer(
          Sterilizer{.name = std::string(name), .type = type, .created_at = Utc(2026, 1, 1)});
      EXPECT_TRUE(id.ok()) << id.status();
      return *id;
    };
    const int64_t s1 = sterilizer("AUTOCLAVE1", SterilizerType::kPreVacuum);
    const int64_t s2 = sterilizer("GRAVITY1", SterilizerType::kGravity);
    auto bowie_dick = [&](int64_t s, absl::CivilDay day, IndicatorResult result, absl::Time at) {
      ASSERT_TRUE(tx.sterilization()
                      .InsertBowieDickTest(BowieDickTest{.sterilizer_id = s,
                                                         .day = day,
                                                         .result = result,
                                                         .operator_name = "sp",
                                                         .at = at})
                      .ok());
    };
    bowie_dick(s1, absl::CivilDay(2026, 11, 3), IndicatorResult::kPass, Utc(2026, 11, 3, 7, 0));
    bowie_dick(s1, absl::CivilDay(2026, 11, 10), IndicatorResult::kFail, Utc(2026, 11, 10, 7, 0));
    // Passed, but after the day's first load.
    bowie_dick(s1, absl::CivilDay(2026, 11, 20), IndicatorResult::kPass, Utc(2026, 11, 20, 9, 0));
    bowie_dick(s1, absl::CivilDay(2026, 11, 12), IndicatorResult::kFail, Utc(2026, 11, 12, 7, 0));

    auto load = [&](int64_t s, int64_t cycle, absl::Time at, bool bi_required = false,
                    bool test_cycle = false) {
      auto id = tx.sterilization().InsertLoad(Load{.sterilizer_id = s,
                                                   .cycle_number = cycle,
                                                   .cycle_type = "134C-4MIN",
                                                   .test_cycle = test_cycle,
                                                   .bi_required = bi_required,
                                                   .operator_name = "sp",
                                                   .created_at = at});
      EXPECT_TRUE(id.ok()) << id.status();
      return *id;
    };
    auto params = [&](int64_t l, absl::Time at, bool passed) {
      ASSERT_TRUE(tx.sterilization()
                      .RecordParameters(l, CycleParameters{.started_at = at,
                                                           .ended_at = at + absl::Minutes(30),
                                                           .exposure_seconds = 240,
                                                           .temperature_c = 134,
                                                           .pressure_kpa = 210,
                                                           .passed = passed,
                                                           .recorded_by = "sp",
                                                           .recorded_at = at})
                      .ok());
    };
    auto ci = [&](int64_t l, IndicatorResult result, absl::Time at) {
      ASSERT_TRUE(tx.sterilization()
                      .AddChemicalIndicator(
                          l,
                          ChemicalIndicator{
                              .type = 5, .result = result, .recorded_by = "sp", .recorded_at = at})
                      .ok());
    };
    auto sign = [&](int64_t l, ReleaseState state, absl::Time at) {
      ASSERT_TRUE(
          tx.sterilization()
              .SetLoadReleaseState(l, state, Signature{.by = "sp", .at = at, .meaning = "reviewed"})
              .ok());
    };
    const int64_t ld1 = load(s1, 1, Utc(2026, 11, 3, 8, 0));
    params(ld1, Utc(2026, 11, 3, 8, 0), true);
    ci(ld1, IndicatorResult::kPass, Utc(2026, 11, 3, 8, 40));
    sign(ld1, ReleaseState::kReleased, Utc(2026, 11, 3, 8, 45));
    load(s1, 2, Utc(2026, 11, 3, 9, 0));                                // nothing recorded
    load(s1, 90, Utc(2026, 11, 3, 10, 0), false, /*test_cycle=*/true);  // BI test cycle: not a pack
    const int64_t ld3 = load(s1, 3, Utc(2026, 11, 10, 8, 0));
    params(ld3, Utc(2026, 11, 10, 8, 0), true);
    ci(ld3, IndicatorResult::kFail, Utc(2026, 11, 10, 8, 40));
    const int64_t ld4 = load(s1, 4, Utc(2026, 11, 20, 8, 0), /*bi_required=*/true);
    params(ld4, Utc(2026, 11, 20, 8, 0), true);
    ci(ld4, IndicatorResult::kPass, Utc(2026, 11, 20, 8, 40));
    ASSERT_TRUE(tx.sterilization()
                    .RecordBi(ld4, BiologicalIndicator{.product = "spore",
                                                       .lot = "BI-1",
                                                       .result = BiResult::kNegative,
                                                       .control_result = BiResult::kPositive,
                                                       .read_at = Utc(2026, 11, 21),
                                                       .recorded_by = "sp"})
                    .ok());
    const int64_t ld5 = load(s2, 1, Utc(2026, 11, 5, 8, 0));
    params(ld5, Utc(2026, 11, 5, 8, 0), true);
    ci(ld5, IndicatorResult::kPass, Utc(2026, 11, 5, 8, 40));
    sign(ld5, ReleaseState::kQuarantined, Utc(2026, 11, 5, 9, 0));
    const int64_t ld6 = load(s2, 2, Utc(2026, 11, 6, 8, 0));
    params(ld6, Utc(2026, 11, 6, 8, 0), true);
    ci(ld6, IndicatorResult::kPass, Utc(2026, 11, 6, 8, 40));
    sign(ld6, ReleaseState::kReleased, Utc(2026, 11, 6, 8, 45));
    sign(ld6, ReleaseState::kRecalled, Utc(2026, 11, 7, 9, 0));
    load(s2, 3, Utc(2026, 10, 30, 8, 0));  // before the period, never released

    ASSERT_TRUE(tx.Commit().ok());
  }

  ReportService Service(absl::Duration limit = absl::Hours(4)) {
    return ReportService({.store = &store_,
                          .sha256 = TestSha256(),
                          .clock = &clock_,
                          .clinic_time_zone = absl::UTCTimeZone(),
                          .disposal_limit = limit});
  }

  // Audit entries: two refused openings and what followed them (seqs 1-6).
  void AppendEvents() {
    auto tx_or = store_.BeginWrite();
    ASSERT_TRUE(tx_or.ok()) << tx_or.status();
    WriteTransaction& tx = **tx_or;
    auto add = [&](Event e) {
      ASSERT_TRUE(audit_chain::Append(tx.audit(), *TestSha256(), e).ok());
    };
    add(Event{.at = Utc(2026, 11, 10, 10, 58),
              .actor = "nurse.kim",
              .action = "CARTRIDGE_OPEN_REFUSED",
              .lot_id = lot_r_,
              .cartridge_id = c11_,
              .treatment_id = t3_,
              .detail = "LOT_RECALLED: lot LOT-R is recalled: FSCA-7",
              .before = "state=RECEIVED",
              .after = "reason=LOT_RECALLED"});
    add(Event{.at = Utc(2026, 11, 10, 11, 0),
              .actor = "nurse.kim",
              .action = "CARTRIDGE_OPENED",
              .lot_id = lot_a_,
              .cartridge_id = 3,
              .treatment_id = t3_});
    add(Event{.at = Utc(2026, 11, 10, 11, 40),
              .actor = "nurse.kim",
              .action = "TREATMENT_ENDED",
              .treatment_id = t3_});
    add(Event{.at = Utc(2026, 11, 20, 12, 10),
              .actor = "nurse.kim",
              .action = "CARTRIDGE_OPEN_REFUSED",
              .treatment_id = t4_,
              .detail = "CARTRIDGE_NOT_IN_STOCK: cartridge C99 is not in the clinic's stock",
              .after = "reason=CARTRIDGE_NOT_IN_STOCK"});
    // Should be impossible: the refused C11 opened later (here scripted straight into the store).
    add(Event{.at = Utc(2026, 11, 12, 9, 0),
              .actor = "nurse.bo",
              .action = "CARTRIDGE_OPENED",
              .lot_id = lot_r_,
              .cartridge_id = c11_,
              .treatment_id = 999});
    add(Event{.at = Utc(2026, 11, 20, 12, 30),
              .actor = "nurse.kim",
              .action = "TREATMENT_ENDED",
              .treatment_id = t4_});
    ASSERT_TRUE(tx.Commit().ok());
  }

  FakeStore store_;
  FakeClock clock_{kNow};
  int64_t lot_a_ = 0, lot_r_ = 0, lot_q_ = 0, lot_x_ = 0, lot_o_ = 0;
  int64_t t3_ = 0, t4_ = 0, c11_ = 0;
};

TEST_F(ReportServiceTest, MonthListsExactlyTheScriptedExceptionsInTimeOrder) {
  ReportService service = Service();
  auto report =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 1), absl::CivilDay(2026, 12, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  std::vector<Seen> seen;
  for (const ComplianceException& e : report->exceptions) seen.push_back(Key(e));
  EXPECT_THAT(
      seen, ElementsAre(Seen{"LOAD_RESULTS_MISSING", Utc(2026, 11, 3, 9, 0), "AUTOCLAVE1 cycle 2"},
                        Seen{"OVERDUE_DISPOSAL", Utc(2026, 11, 3, 10, 5), "C2 DISPOSED_LATE"},
                        Seen{"LOAD_QUARANTINED", Utc(2026, 11, 5, 8, 0), "GRAVITY1 cycle 1"},
                        Seen{"LOAD_RECALLED", Utc(2026, 11, 6, 8, 0), "GRAVITY1 cycle 2"},
                        Seen{"NO_BOWIE_DICK", Utc(2026, 11, 10), "AUTOCLAVE1 2026-11-10"},
                        Seen{"LOAD_RESULTS_FAILED", Utc(2026, 11, 10, 8, 0), "AUTOCLAVE1 cycle 3"},
                        Seen{"OVERDUE_DISPOSAL", Utc(2026, 11, 10, 11, 0), "C3 STILL_OPEN"},
                        Seen{"NO_BOWIE_DICK", Utc(2026, 11, 20), "AUTOCLAVE1 2026-11-20"},
                        Seen{"LOAD_NOT_RELEASED", Utc(2026, 11, 20, 8, 0), "AUTOCLAVE1 cycle 4"},
                        Seen{"RECALL_AFFECTED_TREATMENTS", Utc(2026, 11, 20, 14, 0),
                             StrCat("LOT-R treatments ", t3_)}));
  EXPECT_FALSE(report->compliant);
}

TEST_F(ReportServiceTest, ExceptionsCarryTheRecordThatProvesThem) {
  ReportService service = Service();
  auto report =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 1), absl::CivilDay(2026, 12, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  const ComplianceException& late = report->exceptions[1];
  ASSERT_EQ(late.kind, ExceptionKind::kOverdueDisposal);
  EXPECT_EQ(FactOf(late, "gtin"), kGtinA);
  EXPECT_EQ(FactOf(late, "room"), "2");
  EXPECT_EQ(FactOf(late, "opened_at"), "2026-11-03T10:05:00Z");
  EXPECT_EQ(FactOf(late, "disposed_at"), "2026-11-03T15:00:00Z");
  const ComplianceException& open = report->exceptions[6];
  EXPECT_EQ(FactOf(open, "treatment"), StrCat(t3_));
  EXPECT_EQ(FactOf(open, "disposed_at"), "");
  const ComplianceException& failed = report->exceptions[5];
  EXPECT_EQ(FactOf(failed, "failed"), "CI type 5");
  const ComplianceException& missing = report->exceptions[0];
  EXPECT_EQ(FactOf(missing, "missing"), "parameters, chemical indicator");
  const ComplianceException& bowie_dick = report->exceptions[7];
  EXPECT_EQ(FactOf(bowie_dick, "bowie_dick_tests"), "PASS at 2026-11-20T09:00:00Z");
}

// Rule 6 has one source: the report lists what LoadReleaseFindings finds, the check release uses.
TEST_F(ReportServiceTest, LoadExceptionsListWhatTheReleaseCheckFinds) {
  ReportService service = Service();
  auto report =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 1), absl::CivilDay(2026, 12, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  std::unique_ptr<ReadTransaction> tx = *store_.BeginRead();
  int load_exceptions = 0;
  for (const ComplianceException& e : report->exceptions) {
    if (e.kind != ExceptionKind::kLoadResultsFailed &&
        e.kind != ExceptionKind::kLoadResultsMissing && e.kind != ExceptionKind::kLoadNotReleased) {
      continue;
    }
    ++load_exceptions;
    std::optional<Load> load = *tx->sterilization().FindLoad(std::stoll(FactOf(e, "load")));
    ASSERT_TRUE(load.has_value());
    std::vector<std::string> missing, failed;
    for (const LoadFinding& f : LoadReleaseFindings(*load)) {
      (f.missing ? missing : failed).push_back(f.result);
    }
    EXPECT_EQ(FactOf(e, "missing"), missing.empty() ? "<no missing>" : StrJoin(missing, ", "));
    EXPECT_EQ(FactOf(e, "failed"), failed.empty() ? "<no failed>" : StrJoin(failed, ", "));
    EXPECT_EQ(e.kind == ExceptionKind::kLoadNotReleased, missing.empty() && failed.empty());
  }
  EXPECT_EQ(load_exceptions, 3);
}

TEST_F(ReportServiceTest, ALoadReleasedWithoutPassingResultsIsAnException) {
  {
    // Past the release check and the schema's guard: only a store changed behind core's back.
    std::unique_ptr<WriteTransaction> tx = *store_.BeginWrite();
    const int64_t s = *tx->sterilization().InsertSterilizer(Sterilizer{
        .name = "GRAVITY9", .type = SterilizerType::kGravity, .created_at = Utc(2026, 1, 1)});
    const int64_t l = *tx->sterilization().InsertLoad(Load{.sterilizer_id = s,
                                                           .cycle_number = 1,
                                                           .cycle_type = "121C-20MIN",
                                                           .bi_required = true,
                                                           .operator_name = "sp",
                                                           .created_at = Utc(2026, 11, 14, 8, 0)});
    ASSERT_TRUE(tx->sterilization()
                    .AddChemicalIndicator(l, ChemicalIndicator{.type = 4,
                                                               .result = IndicatorResult::kFail,
                                                               .recorded_by = "sp",
                                                               .recorded_at = Utc(2026, 11, 14, 9)})
                    .ok());
    ASSERT_TRUE(tx->Commit().ok());
    // The fake refuses this release as the schema does; write it around both.
    store_.ForceLoadReleaseStateForTest(
        l, ReleaseState::kReleased,
        Signature{.by = "sp", .at = Utc(2026, 11, 14, 9, 5), .meaning = "ok"});
  }
  ReportService service = Service();
  auto report =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 14), absl::CivilDay(2026, 11, 15));
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->exceptions.size(), 1u);
  const ComplianceException& e = report->exceptions[0];
  EXPECT_EQ(e.kind, ExceptionKind::kLoadResultsFailed);
  EXPECT_EQ(e.summary,
            "load GRAVITY9 cycle 1 was released without passing results: CI type 4, parameters, "
            "biological indicator");
  EXPECT_EQ(FactOf(e, "release_state"), "RELEASED");
  EXPECT_EQ(FactOf(e, "missing"), "parameters, biological indicator");
  EXPECT_EQ(FactOf(e, "failed"), "CI type 4");
  EXPECT_EQ(FactOf(e, "signed_by"), "sp");
  EXPECT_FALSE(report->compliant);
}

TEST_F(ReportServiceTest, RefusalsAreRecordedUnlessOneOfThePeriodCouldNotBe) {
  UnrecordedRefusals unrecorded;
  ReportService reports({.store = &store_,
                         .sha256 = TestSha256(),
                         .clock = &clock_,
                         .clinic_time_zone = absl::UTCTimeZone(),
                         .unrecorded_refusals = &unrecorded});
  auto recorded = [&](absl::CivilDay from, absl::CivilDay to) {
    absl::StatusOr<ComplianceReport> report = reports.ComplianceReportFor(from, to);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() && report->refusals_recorded;
  };
  EXPECT_TRUE(recorded(absl::CivilDay(2026, 11, 1), absl::CivilDay(2026, 12, 1)));
  unrecorded.Add({.at = Utc(2026, 11, 12, 9, 30), .reason = "LOT_RECALLED", .error = "disk full"});
  EXPECT_FALSE(recorded(absl::CivilDay(2026, 11, 1), absl::CivilDay(2026, 12, 1)));
  EXPECT_FALSE(recorded(absl::CivilDay(2026, 11, 12), absl::CivilDay(2026, 11, 13)));
  EXPECT_TRUE(recorded(absl::CivilDay(2026, 11, 13), absl::CivilDay(2026, 11, 14)));
  EXPECT_TRUE(recorded(absl::CivilDay(2026, 11, 11), absl::CivilDay(2026, 11, 12)));
}

TEST_F(ReportServiceTest, RefusalsDroppedFromMemoryCountOnlyForPeriodsTheyOverlap) {
  UnrecordedRefusals unrecorded;
  for (size_t i = 0; i <= UnrecordedRefusals::kMaxKept; ++i) {
    // The first is dropped from the kept list: only its time is remembered.
    unrecorded.Add({.at = Utc(2026, 11, 12, 9, 30) + absl::Minutes(i), .reason = "LOT_RECALLED"});
  }
  EXPECT_TRUE(unrecorded.AnyBetween(Utc(2026, 11, 12), Utc(2026, 11, 13)));
  EXPECT_FALSE(unrecorded.AnyBetween(Utc(2026, 11, 11), Utc(2026, 11, 12)));
  EXPECT_FALSE(unrecorded.AnyBetween(Utc(2026, 11, 14), Utc(2026, 11, 15)));
}

TEST_F(ReportServiceTest, TotalsCountThePeriodOnly) {
  ReportService service = Service();
  auto report =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 1), absl::CivilDay(2026, 12, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  const ReportTotals& t = report->totals;
  EXPECT_EQ(t.treatments, 5);           // T1-T4 and T7; not Oct 31 nor Dec 1
  EXPECT_EQ(t.cartridges_opened, 6);    // C1-C5, C10
  EXPECT_EQ(t.cartridges_disposed, 4);  // C1, C2, C4, C5
  EXPECT_EQ(t.loads_run, 7);            // cycles 1-4 and 90 on AUTOCLAVE1, 1-2 on GRAVITY1
  EXPECT_EQ(t.loads_released, 1);       // GRAVITY1 cycle 2 was released, then recalled
  EXPECT_THAT(
      t.exceptions_by_kind,
      ElementsAre(
          Pair(ExceptionKind::kOverdueDisposal, 2), Pair(ExceptionKind::kLoadResultsMissing, 1),
          Pair(ExceptionKind::kLoadResultsFailed, 1), Pair(ExceptionKind::kLoadNotReleased, 1),
          Pair(ExceptionKind::kLoadQuarantined, 1), Pair(ExceptionKind::kLoadRecalled, 1),
          Pair(ExceptionKind::kNoBowieDick, 2), Pair(ExceptionKind::kRecallAffectedTreatments, 1),
          Pair(ExceptionKind::kAuditTrailBroken, 0), Pair(ExceptionKind::kRefusalOverridden, 0)));
  ASSERT_EQ(report->recalls.size(), 1u);  // LOT-O was recalled in October
  EXPECT_EQ(report->recalls[0].lot.lot, "LOT-R");
  ASSERT_EQ(report->recalls[0].uses.size(), 1u);
  EXPECT_EQ(report->recalls[0].uses[0].treatment.client_ref, "C-003");
}

TEST_F(ReportServiceTest, UsageIsPerDayAndRoom) {
  ReportService service = Service();
  auto report =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 1), absl::CivilDay(2026, 12, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  std::vector<std::tuple<std::string, std::string, int64_t, int64_t>> usage;
  for (const UsageCell& c : report->usage) {
    usage.emplace_back(absl::FormatCivilTime(c.day), c.room, c.treatments, c.cartridges_opened);
  }
  using U = std::tuple<std::string, std::string, int64_t, int64_t>;
  EXPECT_THAT(usage, ElementsAre(U{"2026-11-03", "1", 1, 1}, U{"2026-11-03", "2", 1, 1},
                                 U{"2026-11-10", "1", 1, 2}, U{"2026-11-20", "3", 1, 1},
                                 U{"2026-11-26", "3", 1, 1}));
}

TEST_F(ReportServiceTest, EveryCheckIsPerformedAndTheAuditTrailIsVerifiedIntact) {
  AppendEvents();
  ReportService service = Service();
  auto report =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 1), absl::CivilDay(2026, 12, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->refusals_recorded);
  EXPECT_TRUE(report->checks_not_available.empty());
  EXPECT_TRUE(report->audit_trail.intact);
  EXPECT_EQ(report->audit_trail.entries, 6);
  EXPECT_EQ(report->audit_trail.first_bad_seq, 0);
  EXPECT_EQ(report->totals.exceptions_by_kind[ExceptionKind::kAuditTrailBroken], 0);
}

TEST_F(ReportServiceTest, ABrokenAuditTrailIsAnExceptionAndNotCompliant) {
  AppendEvents();
  store_.RemoveEventForTest(3);  // tampering: an entry taken out of the trail
  ReportService service = Service();
  // A quiet period: the broken trail alone makes it non-compliant.
  auto report =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 11), absl::CivilDay(2026, 11, 20));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->audit_trail.intact);
  EXPECT_EQ(report->audit_trail.first_bad_seq, 3);
  EXPECT_EQ(report->audit_trail.entries, 2);
  EXPECT_FALSE(report->audit_trail.problem.empty());
  ASSERT_EQ(report->exceptions.size(), 1u);
  const ComplianceException& e = report->exceptions[0];
  EXPECT_EQ(e.kind, ExceptionKind::kAuditTrailBroken);
  EXPECT_EQ(e.at, kNow);
  EXPECT_EQ(FactOf(e, "first_bad_seq"), "3");
  EXPECT_EQ(FactOf(e, "problem"), report->audit_trail.problem);
  EXPECT_THAT(e.summary, ::testing::HasSubstr("BROKEN at entry 3"));
  EXPECT_EQ(report->totals.exceptions_by_kind[ExceptionKind::kAuditTrailBroken], 1);
  EXPECT_FALSE(report->compliant);
}

TEST_F(ReportServiceTest, RefusalsAreListedWithWhatFollowedAndAnOverrideIsAnException) {
  AppendEvents();
  ReportService service = Service();
  auto report =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 1), absl::CivilDay(2026, 12, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->refusals.size(), 2u);
  EXPECT_EQ(report->totals.open_refusals, 2);

  // T3: C11 refused (its lot recalled), then another cartridge, then the end of the treatment.
  const RefusalRecord& first = report->refusals[0];
  EXPECT_EQ(first.seq, 1);
  EXPECT_EQ(first.at, Utc(2026, 11, 10, 10, 58));
  EXPECT_EQ(first.actor, "nurse.kim");
  EXPECT_EQ(first.treatment_id, t3_);
  EXPECT_EQ(first.cartridge_id, c11_);
  EXPECT_EQ(first.reason, "LOT_RECALLED");
  EXPECT_THAT(first.followed_by,
              ElementsAre("another cartridge opened at 11:00", "treatment ended at 11:40"));
  // ... and C11 was opened anyway on the 12th: the check PRODUCT.md asks for.
  EXPECT_TRUE(first.overridden);
  EXPECT_EQ(first.overridden_by_seq, 5);

  // T4: refused (not in stock) and ended without a cartridge.
  const RefusalRecord& second = report->refusals[1];
  EXPECT_EQ(second.reason, "CARTRIDGE_NOT_IN_STOCK");
  EXPECT_EQ(second.cartridge_id, 0);
  EXPECT_THAT(second.followed_by, ElementsAre("treatment ended at 12:30 without a cartridge"));
  EXPECT_FALSE(second.overridden);

  std::vector<const ComplianceException*> overrides;
  for (const ComplianceException& e : report->exceptions) {
    if (e.kind == ExceptionKind::kRefusalOverridden) overrides.push_back(&e);
  }
  ASSERT_EQ(overrides.size(), 1u);
  EXPECT_EQ(overrides[0]->at, Utc(2026, 11, 12, 9, 0));
  EXPECT_EQ(FactOf(*overrides[0], "refusal_seq"), "1");
  EXPECT_EQ(FactOf(*overrides[0], "opened_seq"), "5");
  EXPECT_EQ(FactOf(*overrides[0], "reason"), "LOT_RECALLED");
  EXPECT_EQ(report->totals.exceptions_by_kind[ExceptionKind::kRefusalOverridden], 1);

  // A period without the refusals lists none.
  auto quiet =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 21), absl::CivilDay(2026, 11, 22));
  ASSERT_TRUE(quiet.ok()) << quiet.status();
  EXPECT_TRUE(quiet->refusals.empty());
}

TEST_F(ReportServiceTest, DisposalLimitIsConfigurable) {
  ReportService service = Service(absl::Hours(5));
  auto report =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 1), absl::CivilDay(2026, 12, 1));
  ASSERT_TRUE(report.ok()) << report.status();
  // C2 (4 h 55 min) is now in time; C3 is still open after 16 days.
  EXPECT_EQ(report->totals.exceptions_by_kind[ExceptionKind::kOverdueDisposal], 1);
}

TEST_F(ReportServiceTest, AQuietPeriodIsCompliant) {
  ReportService service = Service();
  auto report =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 11), absl::CivilDay(2026, 11, 20));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->exceptions.empty());
  EXPECT_TRUE(report->compliant);
  EXPECT_EQ(report->totals.loads_run, 0);
}

TEST_F(ReportServiceTest, PeriodMustRunForward) {
  ReportService service = Service();
  auto report =
      service.ComplianceReportFor(absl::CivilDay(2026, 11, 2), absl::CivilDay(2026, 11, 2));
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ReportServiceTest, LotLookBackListsTreatmentsRoomsAndClientReferences) {
  ReportService service = Service();
  auto look_back = service.LookBackLot(kGtinA, "LOT-A");
  ASSERT_TRUE(look_back.ok()) << look_back.status();
  std::vector<std::tuple<std::string, std::string, std::string>> uses;
  for (const LotUse& u : look_back->uses) {
    uses.emplace_back(u.serial, u.treatment.room, u.treatment.client_ref);
  }
  using U = std::tuple<std::string, std::string, std::string>;
  EXPECT_THAT(uses, ElementsAre(U{"C6", "1", "C-005"}, U{"C1", "1", "C-001"}, U{"C2", "2", "C-002"},
                                U{"C3", "1", "C-003"}, U{"C5", "3", "C-004"},
                                U{"C10", "3", "C-007"}, U{"C12", "2", "C-006"}));
  auto unknown = service.LookBackLot(kGtinA, "NOPE");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetErrorInfo(unknown.status())->reason, "LOT_NOT_FOUND");
}

// Everything a report says, in one text, to compare two reports field by field.
std::string Describe(const ComplianceReport& r) {
  std::string out =
      StrCat(absl::FormatCivilTime(r.from), " ", absl::FormatCivilTime(r.to), " ", r.time_zone, " ",
             absl::FormatTime(r.generated_at), " ", absl::FormatDuration(r.disposal_limit),
             " compliant=", r.compliant, " refusals_recorded=", r.refusals_recorded, "\n");
  for (const ComplianceException& e : r.exceptions) {
    StrAppend(&out, "exception ", ExceptionKindName(e.kind), " ", absl::FormatTime(e.at), " ",
              e.summary, "\n");
    for (const auto& [k, v] : e.record) StrAppend(&out, "  ", k, "=", v, "\n");
  }
  for (const RecallSummary& recall : r.recalls) {
    StrAppend(&out, "recall ", recall.lot.id, " ", recall.lot.lot, "\n");
    for (const LotUse& u : recall.uses) {
      StrAppend(&out, "  use ", u.gtin, " ", u.serial, " ", u.treatment.id, " ",
                u.treatment.client_ref, " ", absl::FormatTime(u.opened_at), " ", u.disposed, "\n");
    }
  }
  for (const UsageCell& c : r.usage) {
    StrAppend(&out, "usage ", absl::FormatCivilTime(c.day), " ", c.room, " ", c.treatments, " ",
              c.cartridges_opened, "\n");
  }
  const ReportTotals& t = r.totals;
  StrAppend(&out, "totals ", t.treatments, " ", t.cartridges_opened, " ", t.cartridges_disposed,
            " ", t.loads_run, " ", t.loads_released, " ", t.open_refusals, "\n");
  for (const auto& [kind, n] : t.exceptions_by_kind) {
    StrAppend(&out, "  ", ExceptionKindName(kind), "=", n, "\n");
  }
  for (const RefusalRecord& f : r.refusals) {
    StrAppend(&out, "refusal ", f.seq, " ", absl::FormatTime(f.at), " ", f.actor, " ",
              f.treatment_id, " ", f.cartridge_id, " ", f.lot_id, " ", f.reason, " ", f.detail,
              " overridden=", f.overridden, " by ", f.overridden_by_seq, "\n");
    for (const std::string& s : f.followed_by) StrAppend(&out, "  then ", s, "\n");
  }
  StrAppend(&out, "audit ", r.audit_trail.intact, " ", r.audit_trail.entries, " ",
            r.audit_trail.first_bad_seq, " ", r.audit_trail.problem, "\n");
  for (const auto& [name, why] : r.checks_not_available) StrAppend(&out, name, ": ", why, "\n");
  return out;
}

// The report streams the period in pages (ReportServiceOptions::page_size): over a period many
// pages long, with rows whose times tie and whose times run against their ids, every page size
// gives exactly the unpaged answer.
TEST_F(ReportServiceTest, APagedReportEqualsTheUnpagedOne) {
  AppendEvents();
  {
    auto tx_or = store_.BeginWrite();
    ASSERT_TRUE(tx_or.ok()) << tx_or.status();
    WriteTransaction& tx = **tx_or;
    const absl::Time base = Utc(2026, 11, 15, 9, 0);
    for (int i = 0; i < 40; ++i) {
      // Later ids, earlier (or equal) times.
      const absl::Time at = base - absl::Minutes(i % 5);
      absl::StatusOr<int64_t> t =
          tx.cartridges().InsertTreatment(Treatment{.room = StrCat("R", i % 3),
                                                    .clinician = "dr.lee",
                                                    .client_ref = StrCat("P-", i),
                                                    .started_at = at,
                                                    .started_by = "nurse.kim"});
      ASSERT_TRUE(t.ok()) << t.status();
      Cartridge c{.gtin = std::string(kGtinA),
                  .serial = StrCat("P", i),
                  .received_at = Utc(2026, 10, 2),
                  .received_by = "clerk"};
      c.lot.id = i % 4 == 0 ? lot_r_ : lot_a_;
      absl::StatusOr<int64_t> id = tx.cartridges().InsertCartridge(c);
      ASSERT_TRUE(id.ok()) << id.status();
      ASSERT_TRUE(tx.cartridges()
                      .RecordUse(*id, CartridgeUse{.treatment_id = *t,
                                                   .room = StrCat("R", i % 3),
                                                   .at = at,
                                                   .by = "nurse.kim"})
                      .ok());
      if (i % 2 == 0) {
        ASSERT_TRUE(tx.cartridges()
                        .RecordDisposal(*id, Disposal{.container_id = "SHARPS-2",
                                                      .at = at + absl::Hours(5),
                                                      .by = "nurse.kim"})
                        .ok());
      }
    }
    absl::StatusOr<std::optional<Sterilizer>> s1 = tx.sterilization().FindSterilizer("AUTOCLAVE1");
    ASSERT_TRUE(s1.ok() && s1->has_value());
    for (int i = 0; i < 6; ++i) {
      // A day without a Bowie-Dick test; cycles created in the opposite order of their ids.
      ASSERT_TRUE(tx.sterilization()
                      .InsertLoad(Load{
                          .sterilizer_id = (*s1)->id,
                          .cycle_number = 200 + i,
                          .cycle_type = "134C-4MIN",
                          .operator_name = "sp",
                          .created_at = Utc(2026, 11, 16, 10, 0) - absl::Minutes(i == 5 ? 0 : i)})
                      .ok());
    }
    ASSERT_TRUE(tx.Commit().ok());
  }
  auto report_with = [&](int page_size) {
    ReportService service({.store = &store_,
                           .sha256 = TestSha256(),
                           .clock = &clock_,
                           .clinic_time_zone = absl::UTCTimeZone(),
                           .page_size = page_size});
    absl::StatusOr<ComplianceReport> report =
        service.ComplianceReportFor(absl::CivilDay(2026, 11, 1), absl::CivilDay(2026, 12, 1));
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? Describe(*report) : std::string("error");
  };
  const std::string unpaged = report_with(1 << 30);
  EXPECT_THAT(unpaged, HasSubstr("cycles=200 201 202 203 204 205"));
  EXPECT_THAT(unpaged, HasSubstr("totals 45 46 "));
  for (int page_size : {1, 2, 3, 7, 16}) {
    EXPECT_EQ(report_with(page_size), unpaged) << "page size " << page_size;
  }

  // The look-back streams the lot's units in pages too.
  auto look_back_with = [&](int page_size) {
    ReportService service({.store = &store_,
                           .sha256 = TestSha256(),
                           .clock = &clock_,
                           .clinic_time_zone = absl::UTCTimeZone(),
                           .page_size = page_size});
    absl::StatusOr<LotLookBack> look_back = service.LookBackLot(kGtinA, "LOT-A");
    EXPECT_TRUE(look_back.ok()) << look_back.status();
    std::string out;
    if (!look_back.ok()) return out;
    for (const LotUse& u : look_back->uses) {
      StrAppend(&out, u.serial, " ", u.treatment.id, " ", absl::FormatTime(u.opened_at), "\n");
    }
    return out;
  };
  const std::string all_uses = look_back_with(1 << 30);
  EXPECT_THAT(all_uses, HasSubstr("P39"));
  EXPECT_EQ(look_back_with(1), all_uses);
  EXPECT_EQ(look_back_with(4), all_uses);
}

TEST_F(ReportServiceTest, StockCountsUsableUnitsAndWhatExpiresSoon) {
  ReportService service = Service();
  auto stock = service.Stock(30);
  ASSERT_TRUE(stock.ok()) << stock.status();
  std::vector<std::tuple<std::string, int64_t, int64_t, bool>> lines;
  for (const StockLine& l : stock->lines) {
    lines.emplace_back(l.lot.lot, l.units_in_stock, l.days_to_expiry, l.expiring_soon);
  }
  using L = std::tuple<std::string, int64_t, int64_t, bool>;
  EXPECT_THAT(lines, ElementsAre(L{"LOT-X", 1, -25, true}, L{"LOT-Q", 1, 14, true},
                                 L{"LOT-O", 0, 66, false}, L{"LOT-R", 1, 216, false},
                                 L{"LOT-A", 1, 400, false}));
  EXPECT_EQ(stock->units_in_stock, 1);  // LOT-A's C7: recalled, quarantined, expired don't count
  EXPECT_EQ(stock->units_expiring, 2);
  EXPECT_EQ(service.Stock(-1).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace steritrack
