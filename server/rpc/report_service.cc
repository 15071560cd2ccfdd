#include "server/rpc/report_service.h"

#include "server/rpc/convert.h"
#include "server/rpc/handle.h"
#include "steritrack/error.h"
#include "steritrack/site.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack::rpc {
namespace {

// Report-only conversions live here, beside their one user; the shared ones (times, dates, Lot,
// Treatment) come from convert.h.
v1::ExceptionKind KindToProto(ExceptionKind kind) {
  switch (kind) {
    case ExceptionKind::kOverdueDisposal:
      return v1::EXCEPTION_KIND_OVERDUE_DISPOSAL;
    case ExceptionKind::kLoadResultsMissing:
      return v1::EXCEPTION_KIND_LOAD_RESULTS_MISSING;
    case ExceptionKind::kLoadResultsFailed:
      return v1::EXCEPTION_KIND_LOAD_RESULTS_FAILED;
    case ExceptionKind::kLoadNotReleased:
      return v1::EXCEPTION_KIND_LOAD_NOT_RELEASED;
    case ExceptionKind::kLoadQuarantined:
      return v1::EXCEPTION_KIND_LOAD_QUARANTINED;
    case ExceptionKind::kLoadRecalled:
      return v1::EXCEPTION_KIND_LOAD_RECALLED;
    case ExceptionKind::kNoBowieDick:
      return v1::EXCEPTION_KIND_NO_BOWIE_DICK;
    case ExceptionKind::kRecallAffectedTreatments:
      return v1::EXCEPTION_KIND_RECALL_AFFECTED_TREATMENTS;
    case ExceptionKind::kAuditTrailBroken:
      return v1::EXCEPTION_KIND_AUDIT_TRAIL_BROKEN;
    case ExceptionKind::kRefusalOverridden:
      return v1::EXCEPTION_KIND_REFUSAL_OVERRIDDEN;
  }
  return v1::EXCEPTION_KIND_UNSPECIFIED;
}

void UseToProto(const LotUse& use, v1::LotUse* out) {
  out->set_gtin(use.gtin);
  out->set_serial(use.serial);
  ToProto(use.treatment, out->mutable_treatment());
  SetTime(use.opened_at, out->mutable_open_time());
  out->set_disposed(use.disposed);
}

}  // namespace

grpc::ServerUnaryReactor* ReportServiceImpl::GetComplianceReport(
    grpc::CallbackServerContext* ctx, const v1::GetComplianceReportRequest* req,
    v1::ComplianceReport* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.ReportService/GetComplianceReport",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.ReportService/GetComplianceReport",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(absl::CivilDay from, RequiredDate("from_date", req->from_date()));
              ASSIGN_OR_RETURN(absl::CivilDay to, RequiredDate("to_date", req->to_date()));
              if (!caller.chain_wide || caller.site_named) {
                return FillComplianceReport(from, to, resp);
              }
              // A chain-wide caller who names no site: every site's report, each its own.
              ASSIGN_OR_RETURN(std::vector<std::string> sites, auth_->sites().ListSites());
              bool compliant = true;
              for (const std::string& site : sites) {
                SiteScope scope(site);
                v1::ComplianceReport* one = resp->add_site_reports();
                RETURN_IF_ERROR(FillComplianceReport(from, to, one));
                compliant = compliant && one->compliant();
              }
              const v1::ComplianceReport& first = resp->site_reports(0);
              *resp->mutable_from_date() = first.from_date();
              *resp->mutable_to_date() = first.to_date();
              resp->set_time_zone(first.time_zone());
              *resp->mutable_generate_time() = first.generate_time();
              *resp->mutable_disposal_limit() = first.disposal_limit();
              resp->set_compliant(compliant);
              return absl::OkStatus();
            });
      });
}

absl::Status ReportServiceImpl::FillComplianceReport(absl::CivilDay from, absl::CivilDay to,
                                                     v1::ComplianceReport* resp) {
  const auto report_for_period = [&] { return core_->ComplianceReportFor(from, to); };
  ASSIGN_OR_RETURN(ComplianceReport report, lane_ != nullptr
                                                ? lane_->Call<ComplianceReport>(report_for_period)
                                                : report_for_period());
  SetDate(report.from, resp->mutable_from_date());
  SetDate(report.to, resp->mutable_to_date());
  resp->set_time_zone(report.time_zone);
  SetTime(report.generated_at, resp->mutable_generate_time());
  const int64_t limit_seconds = absl::ToInt64Seconds(report.disposal_limit);
  resp->mutable_disposal_limit()->set_seconds(limit_seconds);
  resp->set_compliant(report.compliant);
  for (const ComplianceException& e : report.exceptions) {
    v1::ComplianceException* out = resp->add_exceptions();
    out->set_kind(KindToProto(e.kind));
    out->set_kind_name(std::string(ExceptionKindName(e.kind)));
    SetTime(e.at, out->mutable_time());
    out->set_summary(e.summary);
    for (const auto& [name, value] : e.record) {
      v1::Fact* fact = out->add_record();
      fact->set_name(name);
      fact->set_value(value);
    }
  }
  for (const RecallSummary& r : report.recalls) {
    v1::RecallSummary* out = resp->add_recalls();
    ToProto(r.lot, out->mutable_lot());
    for (const LotUse& use : r.uses) UseToProto(use, out->add_uses());
  }
  for (const UsageCell& c : report.usage) {
    v1::UsageCell* out = resp->add_usage();
    SetDate(c.day, out->mutable_date());
    out->set_room(c.room);
    out->set_treatments(c.treatments);
    out->set_cartridges_opened(c.cartridges_opened);
  }
  v1::ReportTotals* totals = resp->mutable_totals();
  totals->set_treatments(report.totals.treatments);
  totals->set_cartridges_opened(report.totals.cartridges_opened);
  totals->set_cartridges_disposed(report.totals.cartridges_disposed);
  totals->set_loads_run(report.totals.loads_run);
  totals->set_loads_released(report.totals.loads_released);
  totals->set_open_refusals(report.totals.open_refusals);
  totals->set_stock_below_par(report.totals.stock_below_par);
  for (const Event& e : report.stock_alerts) {
    v1::StockAlert* out = resp->add_stock_alerts();
    out->set_sequence(e.seq);
    SetTime(e.at, out->mutable_time());
    out->set_action(e.action);
    out->set_actor(e.actor);
    out->set_detail(e.detail);
  }
  for (const auto& [kind, count] : report.totals.exceptions_by_kind) {
    v1::ExceptionCount* out = totals->add_exceptions_by_kind();
    out->set_kind_name(std::string(ExceptionKindName(kind)));
    out->set_count(count);
  }
  resp->set_refusals_recorded(report.refusals_recorded);
  for (const RefusalRecord& r : report.refusals) {
    v1::Refusal* out = resp->add_refusals();
    out->set_sequence(r.seq);
    SetTime(r.at, out->mutable_time());
    out->set_actor(r.actor);
    out->set_treatment_id(r.treatment_id);
    out->set_cartridge_id(r.cartridge_id);
    out->set_lot_id(r.lot_id);
    out->set_reason(r.reason);
    out->set_detail(r.detail);
    for (const std::string& f : r.followed_by) out->add_followed_by(f);
    out->set_overridden(r.overridden);
    out->set_overridden_by_sequence(r.overridden_by_seq);
  }
  v1::AuditTrailCheck* audit = resp->mutable_audit_trail();
  audit->set_intact(report.audit_trail.intact);
  audit->set_entry_count(report.audit_trail.entries);
  audit->set_first_bad_sequence(report.audit_trail.first_bad_seq);
  audit->set_problem(report.audit_trail.problem);
  if (!report.audit_trail.intact) {
    log_->error("compliance report: audit trail broken at entry {}: {}",
                report.audit_trail.first_bad_seq, report.audit_trail.problem);
  }
  for (const auto& [name, reason] : report.checks_not_available) {
    v1::UnavailableCheck* out = resp->add_unavailable_checks();
    out->set_name(name);
    out->set_reason(reason);
  }
  resp->set_site(std::string(SiteScope::CurrentOr(kDefaultSite)));
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* ReportServiceImpl::GetLotLookBack(grpc::CallbackServerContext* ctx,
                                                            const v1::GetLotLookBackRequest* req,
                                                            v1::LotLookBack* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.ReportService/GetLotLookBack", [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.ReportService/GetLotLookBack",
            [&](const Identity& caller) -> absl::Status {
              if (!caller.chain_wide || caller.site_named) {
                ASSIGN_OR_RETURN(LotLookBack look_back,
                                 core_->LookBackLot(req->gtin(), req->lot()));
                ToProto(look_back.lot, resp->mutable_lot());
                for (const LotUse& use : look_back.uses) UseToProto(use, resp->add_uses());
                return absl::OkStatus();
              }
              // A recall across the chain: every site that holds the lot, in site order.
              ASSIGN_OR_RETURN(std::vector<std::string> sites, auth_->sites().ListSites());
              absl::Status not_found;
              for (const std::string& site : sites) {
                SiteScope scope(site);
                absl::StatusOr<LotLookBack> look_back = core_->LookBackLot(req->gtin(), req->lot());
                if (look_back.status().code() == absl::StatusCode::kNotFound) {
                  not_found = look_back.status();
                  continue;
                }
                if (!look_back.ok()) return look_back.status();
                if (resp->sites().empty()) ToProto(look_back->lot, resp->mutable_lot());
                resp->add_sites(site);
                for (const LotUse& use : look_back->uses) {
                  v1::LotUse* out = resp->add_uses();
                  UseToProto(use, out);
                  out->set_site(site);
                }
              }
              return resp->sites().empty() ? not_found : absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* ReportServiceImpl::GetStock(grpc::CallbackServerContext* ctx,
                                                      const v1::GetStockRequest* req,
                                                      v1::Stock* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.ReportService/GetStock", [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.ReportService/GetStock",
            [&](const Identity&) -> absl::Status {
              ASSIGN_OR_RETURN(StockReport stock, core_->Stock(req->expiring_within_days()));
              SetDate(stock.today, resp->mutable_today());
              resp->set_expiring_within_days(stock.expiring_within_days);
              for (const StockLine& line : stock.lines) {
                v1::StockLine* out = resp->add_lines();
                ToProto(line.lot, out->mutable_lot());
                out->mutable_lot()->set_units_in_stock(static_cast<int32_t>(line.units_in_stock));
                out->set_units_in_stock(line.units_in_stock);
                out->set_days_to_expiry(line.days_to_expiry);
                out->set_expiring_soon(line.expiring_soon);
              }
              resp->set_units_in_stock(stock.units_in_stock);
              resp->set_units_expiring(stock.units_expiring);
              for (const ProductStock& p : stock.products) ToProto(p, resp->add_products());
              return absl::OkStatus();
            });
      });
}

}  // namespace steritrack::rpc
