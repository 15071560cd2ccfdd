// RPC-tier tests of the ReportService adapter (and the audit verification it reports): a real
// server on port 0 over a SQLite file (rpc_fixture.h). They check what a manager's client gets:
// the compliance report for a period with an exception and the record that proves it, totals,
// a lot's look-back, stock with expiry, the audit trail verified, and bad requests refused.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/rpc/rpc_fixture.h"

namespace steritrack::rpc_test {
namespace {

using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr std::string_view kGtin = "09506000134352";
const absl::Time kNow = Utc(2026, 11, 26, 10, 0, 0);

std::string Unit(std::string_view serial, std::string_view expiry = "271231",
                 std::string_view lot = "LOT-A") {
  return StrCat("(01)", kGtin, "(17)", expiry, "(10)", lot, "(21)", serial);
}

void SetDay(int y, int m, int d, v1::Date* out) {
  out->set_year(y);
  out->set_month(m);
  out->set_day(d);
}

std::string Fact(const v1::ComplianceException& e, const std::string& name) {
  for (const v1::Fact& f : e.record()) {
    if (f.name() == name) return f.value();
  }
  return StrCat("<no ", name, ">");
}

class ReportRpcTest : public FullServerTest {
 protected:
  ReportRpcTest() : FullServerTest(kNow) {}

  void MustReceive(const std::vector<std::string>& barcodes) {
    v1::ReceiveCartridgesRequest req;
    for (const std::string& b : barcodes) req.add_barcodes(b);
    v1::ReceiveCartridgesResponse resp;
    ASSERT_RPC_OK(inventory_->ReceiveCartridges(Context("clerk.ana").get(), req, &resp));
  }

  void MustOpen(const std::string& barcode, const std::string& treatment_id) {
    v1::OpenCartridgeRequest req;
    req.set_barcode(barcode);
    req.set_treatment_id(treatment_id);
    v1::Cartridge resp;
    ASSERT_RPC_OK(treatments_->OpenCartridge(Context("nurse.kim").get(), req, &resp));
  }

  void MustDispose(const std::string& barcode) {
    v1::DisposeCartridgeRequest req;
    req.set_barcode(barcode);
    req.set_container_id("SHARPS-3");
    v1::Cartridge resp;
    ASSERT_RPC_OK(treatments_->DisposeCartridge(Context("nurse.kim").get(), req, &resp));
  }

  grpc::Status Report(int from_day, int to_day, v1::ComplianceReport* out) {
    v1::GetComplianceReportRequest req;
    SetDay(2026, 11, from_day, req.mutable_from_date());
    SetDay(2026, 11, to_day, req.mutable_to_date());
    return reports_->GetComplianceReport(Context("manager.ann").get(), req, out);
  }
};

TEST_F(ReportRpcTest, AnOpenedCartridgeNotDisposedInTimeIsAnExceptionWithItsRecord) {
  MustReceive({Unit("S1"), Unit("S2")});
  const std::string t = MustStartTreatment("Room 3");
  MustOpen(Unit("S1"), t);
  MustOpen(Unit("S2"), t);
  MustDispose(Unit("S2"));
  clock_.Set(kNow + absl::Hours(5));

  v1::ComplianceReport report;
  ASSERT_RPC_OK(Report(26, 27, &report));
  EXPECT_EQ(report.from_date().day(), 26);
  EXPECT_EQ(report.to_date().day(), 27);
  EXPECT_EQ(report.generate_time().seconds(), absl::ToUnixSeconds(kNow + absl::Hours(5)));
  EXPECT_EQ(report.disposal_limit().seconds(), 4 * 3600);
  EXPECT_FALSE(report.compliant());
  ASSERT_THAT(report.exceptions(), SizeIs(1));
  const v1::ComplianceException& e = report.exceptions(0);
  EXPECT_EQ(e.kind(), v1::EXCEPTION_KIND_OVERDUE_DISPOSAL);
  EXPECT_EQ(e.kind_name(), "OVERDUE_DISPOSAL");
  EXPECT_EQ(e.time().seconds(), absl::ToUnixSeconds(kNow));
  EXPECT_EQ(Fact(e, "serial"), "S1");
  EXPECT_EQ(Fact(e, "room"), "Room 3");
  EXPECT_EQ(Fact(e, "treatment"), t);
  // One text form for times across the API: RFC 3339 UTC with 'Z', whole seconds.
  EXPECT_EQ(Fact(e, "opened_at"), "2026-11-26T10:00:00Z");
  EXPECT_EQ(Fact(e, "due_by"), "2026-11-26T14:00:00Z");
  EXPECT_EQ(report.totals().treatments(), 1);
  EXPECT_EQ(report.totals().cartridges_opened(), 2);
  EXPECT_EQ(report.totals().cartridges_disposed(), 1);
  bool counted = false;
  for (const v1::ExceptionCount& c : report.totals().exceptions_by_kind()) {
    if (c.kind_name() == "OVERDUE_DISPOSAL") {
      EXPECT_EQ(c.count(), 1);
      counted = true;
    }
  }
  EXPECT_TRUE(counted);
  ASSERT_THAT(report.usage(), SizeIs(1));
  EXPECT_EQ(report.usage(0).room(), "Room 3");
  EXPECT_EQ(report.usage(0).cartridges_opened(), 2);
  EXPECT_TRUE(report.audit_trail().intact());
}

TEST_F(ReportRpcTest, APeriodWithEveryCartridgeDisposedInTimeIsCompliant) {
  MustReceive({Unit("S1")});
  MustOpen(Unit("S1"), MustStartTreatment());
  clock_.Set(kNow + absl::Minutes(30));
  MustDispose(Unit("S1"));
  v1::ComplianceReport report;
  ASSERT_RPC_OK(Report(26, 27, &report));
  EXPECT_THAT(report.exceptions(), IsEmpty());
  EXPECT_TRUE(report.compliant());
  EXPECT_EQ(report.totals().cartridges_disposed(), 1);
}

TEST_F(ReportRpcTest, ABadPeriodIsInvalidArgumentNamingTheField) {
  v1::ComplianceReport report;
  EXPECT_EQ(Report(27, 26, &report).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GetComplianceReportRequest missing;
  SetDay(2026, 11, 26, missing.mutable_to_date());
  EXPECT_TRUE(IsInvalidField(reports_->GetComplianceReport(Context().get(), missing, &report),
                             "from_date"));
  v1::GetComplianceReportRequest impossible;
  SetDay(2026, 2, 30, impossible.mutable_from_date());
  SetDay(2026, 3, 2, impossible.mutable_to_date());
  EXPECT_TRUE(IsInvalidField(reports_->GetComplianceReport(Context().get(), impossible, &report),
                             "from_date"));
}

TEST_F(ReportRpcTest, ALotsLookBackListsEveryTreatmentThatUsedIt) {
  MustReceive({Unit("S1"), Unit("S2"), Unit("S3", "271231", "LOT-B")});
  const std::string t3 = MustStartTreatment("Room 3");
  MustOpen(Unit("S1"), t3);
  const std::string t5 = MustStartTreatment("Room 5");
  MustOpen(Unit("S2"), t5);
  MustOpen(Unit("S3", "271231", "LOT-B"), t5);

  v1::GetLotLookBackRequest req;
  req.set_gtin(std::string(kGtin));
  req.set_lot("LOT-A");
  v1::LotLookBack look;
  ASSERT_RPC_OK(reports_->GetLotLookBack(Context().get(), req, &look));
  EXPECT_EQ(look.lot().lot(), "LOT-A");
  ASSERT_THAT(look.uses(), SizeIs(2));
  EXPECT_EQ(look.uses(0).serial(), "S1");
  EXPECT_EQ(look.uses(0).treatment().id(), t3);
  EXPECT_EQ(look.uses(0).treatment().room(), "Room 3");
  EXPECT_EQ(look.uses(0).treatment().client_ref(), "client-0042");
  EXPECT_EQ(look.uses(0).open_time().seconds(), absl::ToUnixSeconds(kNow));
  EXPECT_EQ(look.uses(1).serial(), "S2");
  EXPECT_EQ(look.uses(1).treatment().room(), "Room 5");

  req.set_lot("LOT-NONE");
  EXPECT_TRUE(IsRefusal(reports_->GetLotLookBack(Context().get(), req, &look),
                        grpc::StatusCode::NOT_FOUND, "LOT_NOT_FOUND"));
}

TEST_F(ReportRpcTest, StockListsEachLotAndMarksWhatExpiresWithinTheWindow) {
  MustReceive({Unit("S1", "261215", "LOT-SOON"), Unit("S2", "261215", "LOT-SOON"),
               Unit("S3", "271231", "LOT-LATER")});
  v1::GetStockRequest req;
  req.set_expiring_within_days(30);
  v1::Stock stock;
  ASSERT_RPC_OK(reports_->GetStock(Context().get(), req, &stock));
  EXPECT_EQ(stock.today().year(), 2026);
  EXPECT_EQ(stock.today().month(), 11);
  EXPECT_EQ(stock.today().day(), 26);
  EXPECT_EQ(stock.expiring_within_days(), 30);
  ASSERT_THAT(stock.lines(), SizeIs(2));
  EXPECT_EQ(stock.lines(0).lot().lot(), "LOT-SOON");
  EXPECT_EQ(stock.lines(0).units_in_stock(), 2);
  EXPECT_EQ(stock.lines(0).days_to_expiry(), 19);
  EXPECT_TRUE(stock.lines(0).expiring_soon());
  EXPECT_EQ(stock.lines(1).lot().lot(), "LOT-LATER");
  EXPECT_FALSE(stock.lines(1).expiring_soon());
  EXPECT_EQ(stock.units_in_stock(), 3);
  EXPECT_EQ(stock.units_expiring(), 2);

  req.set_expiring_within_days(-1);
  EXPECT_EQ(reports_->GetStock(Context().get(), req, &stock).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ReportRpcTest, TheAuditTrailVerifiesIntactAndTheReportSaysTheSame) {
  MustReceive({Unit("S1")});
  MustOpen(Unit("S1"), MustStartTreatment());
  v1::VerifyAuditTrailResponse verified;
  ASSERT_RPC_OK(
      audit_->VerifyAuditTrail(Context().get(), v1::VerifyAuditTrailRequest(), &verified));
  EXPECT_TRUE(verified.intact());
  EXPECT_GE(verified.entry_count(), 3);  // received, treatment started, opened
  EXPECT_EQ(verified.problem(), "");

  v1::ComplianceReport report;
  ASSERT_RPC_OK(Report(26, 27, &report));
  EXPECT_TRUE(report.audit_trail().intact());
  EXPECT_EQ(report.audit_trail().entry_count(), verified.entry_count());
}

}  // namespace
}  // namespace steritrack::rpc_test
