#include "server/core/report_service.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "server/core/sterilization_service.h"
#include "server/core/stock_rules.h"
#include "server/core/write_helper.h"
#include "steritrack/audit_chain.h"
#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

// Record times: the API's one format (RFC 3339, UTC, with a Z).
using core_internal::Rfc3339;

constexpr std::string_view kRefusalAction = "CARTRIDGE_OPEN_REFUSED";

std::string Iso(absl::CivilDay day) { return absl::FormatCivilTime(day); }

std::string Minutes(absl::Duration d) {
  return StrCat(static_cast<int64_t>(absl::ToInt64Minutes(d)), " min");
}

// Calls `each` on every row of a period read (ReportReads), page by page in (time, id) order:
// only one page of rows is held at a time, whatever the period holds.
template <typename T, typename Read, typename CursorOf, typename Each>
absl::Status ForEachInPeriod(int page_size, Read read, CursorOf cursor_of, Each each) {
  PeriodCursor after;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<T> page, read(after, page_size));
    if (page.empty()) return absl::OkStatus();
    after = cursor_of(page.back());
    for (T& row : page) RETURN_IF_ERROR(each(row));
    if (static_cast<int>(page.size()) < page_size) return absl::OkStatus();
  }
}

// Every lot (in the state, if given), by id. Lots are few: a clinic receives a handful a month.
absl::StatusOr<std::vector<Lot>> AllLots(ReadTransaction& tx, std::optional<LotState> state,
                                         int page_size) {
  std::vector<Lot> all;
  for (int64_t after = 0;;) {
    ASSIGN_OR_RETURN(
        std::vector<Lot> page,
        tx.cartridges().ListLots(LotFilter{.state = state, .after_id = after, .limit = page_size}));
    if (page.empty()) break;
    after = page.back().id;
    const size_t n = page.size();
    for (Lot& l : page) all.push_back(std::move(l));
    if (static_cast<int>(n) < page_size) break;
  }
  return all;
}

// The lot's cartridges that were opened in a treatment, by opening time. Streams the lot's units
// page by page and keeps only the opened ones (the answer).
absl::StatusOr<std::vector<LotUse>> UsesOfLot(ReadTransaction& tx, const Lot& lot, int page_size) {
  std::vector<Cartridge> opened;
  for (int64_t after = 0;;) {
    ASSIGN_OR_RETURN(std::vector<Cartridge> page,
                     tx.cartridges().ListCartridges(
                         CartridgeFilter{.lot_id = lot.id, .after_id = after, .limit = page_size}));
    if (page.empty()) break;
    after = page.back().id;
    const size_t n = page.size();
    for (Cartridge& c : page) {
      if (c.use.has_value()) opened.push_back(std::move(c));
    }
    if (static_cast<int>(n) < page_size) break;
  }
  std::vector<LotUse> uses;
  uses.reserve(opened.size());
  for (const Cartridge& c : opened) {
    ASSIGN_OR_RETURN(std::optional<Treatment> treatment,
                     tx.cartridges().FindTreatment(c.use->treatment_id));
    LotUse use{.gtin = c.gtin,
               .serial = c.serial,
               .opened_at = c.use->at,
               .disposed = c.disposal.has_value()};
    if (treatment.has_value()) {
      use.treatment = *std::move(treatment);
    } else {
      use.treatment.id = c.use->treatment_id;
      use.treatment.room = c.use->room;
    }
    uses.push_back(std::move(use));
  }
  std::stable_sort(uses.begin(), uses.end(),
                   [](const LotUse& a, const LotUse& b) { return a.opened_at < b.opened_at; });
  return uses;
}

std::string LoadName(const Load& load) {
  return StrCat(load.sterilizer_name, " cycle ", load.cycle_number);
}

}  // namespace

std::string_view ExceptionKindName(ExceptionKind kind) {
  switch (kind) {
    case ExceptionKind::kOverdueDisposal:
      return "OVERDUE_DISPOSAL";
    case ExceptionKind::kLoadResultsMissing:
      return "LOAD_RESULTS_MISSING";
    case ExceptionKind::kLoadResultsFailed:
      return "LOAD_RESULTS_FAILED";
    case ExceptionKind::kLoadNotReleased:
      return "LOAD_NOT_RELEASED";
    case ExceptionKind::kLoadQuarantined:
      return "LOAD_QUARANTINED";
    case ExceptionKind::kLoadRecalled:
      return "LOAD_RECALLED";
    case ExceptionKind::kNoBowieDick:
      return "NO_BOWIE_DICK";
    case ExceptionKind::kRecallAffectedTreatments:
      return "RECALL_AFFECTED_TREATMENTS";
    case ExceptionKind::kAuditTrailBroken:
      return "AUDIT_TRAIL_BROKEN";
    case ExceptionKind::kRefusalOverridden:
      return "REFUSAL_OVERRIDDEN";
  }
  return "UNKNOWN";
}

ReportService::ReportService(ReportServiceOptions options)
    : store_(options.store),
      clock_(options.clock),
      sha256_(options.sha256),
      zone_(options.clinic_time_zone),
      disposal_limit_(std::max(options.disposal_limit, absl::ZeroDuration())),
      unrecorded_refusals_(options.unrecorded_refusals),
      page_size_(std::max(options.page_size, 1)) {}

absl::Status ReportService::CheckPeriod(absl::CivilDay from, absl::CivilDay to) {
  if (!(from < to)) {
    return InvalidField("to",
                        StrCat("must be after from (", Iso(from), "); the period is [from, to)"));
  }
  if (to - from > kMaxReportDays) {
    return InvalidField("to", StrCat("the period is at most ", kMaxReportDays, " days"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ComplianceReport> ReportService::ComplianceReportFor(absl::CivilDay from,
                                                                    absl::CivilDay to) {
  RETURN_IF_ERROR(CheckPeriod(from, to));
  const absl::Time now = clock_->Now();
  const absl::Time begin = absl::FromCivil(from, zone_);
  const absl::Time end = absl::FromCivil(to, zone_);

  ComplianceReport report;
  report.from = from;
  report.to = to;
  report.time_zone = zone_.name();
  report.generated_at = now;
  report.disposal_limit = disposal_limit_;
  for (int k = 0; k < kExceptionKindCount; ++k) {
    report.totals.exceptions_by_kind[static_cast<ExceptionKind>(k)] = 0;
  }

  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());

  // Every period read below streams in pages; what is kept is the answer: counts per day and
  // room, per steriliser and day, and the exceptions themselves.

  // Treatments and usage.
  std::map<std::pair<absl::CivilDay, std::string>, UsageCell> usage;
  auto cell = [&usage](absl::CivilDay day, const std::string& room) -> UsageCell& {
    UsageCell& c = usage[{day, room}];
    c.day = day;
    c.room = room;
    return c;
  };
  RETURN_IF_ERROR(ForEachInPeriod<Treatment>(
      page_size_,
      [&](const PeriodCursor& after, int limit) {
        return tx->reports().ListTreatmentsStartedBetween(begin, end, after, limit);
      },
      [](const Treatment& t) { return PeriodCursor{.at = t.started_at, .id = t.id}; },
      [&](const Treatment& t) {
        ++report.totals.treatments;
        ++cell(absl::ToCivilDay(t.started_at, zone_), t.room).treatments;
        return absl::OkStatus();
      }));

  // Rule 3: every cartridge opened in the period disposed within the limit. Read by opening time:
  // the exceptions' final order (by time, then kind, stable) is the same as by id.
  auto check_disposal = [&](const Cartridge& c) -> absl::Status {
    if (!c.use.has_value()) return absl::OkStatus();
    ++report.totals.cartridges_opened;
    const CartridgeUse& use = *c.use;
    ++cell(absl::ToCivilDay(use.at, zone_), use.room).cartridges_opened;
    if (c.disposal.has_value()) ++report.totals.cartridges_disposed;
    const absl::Time due = use.at + disposal_limit_;
    const bool late = c.disposal.has_value() ? c.disposal->at > due : now > due;
    if (!late) return absl::OkStatus();
    ComplianceException e{.kind = ExceptionKind::kOverdueDisposal, .at = use.at};
    e.record = {{"gtin", c.gtin},
                {"serial", c.serial},
                {"lot", c.lot.lot},
                {"treatment", StrCat(use.treatment_id)},
                {"room", use.room},
                {"opened_by", use.by},
                {"opened_at", Rfc3339(use.at)},
                {"due_by", Rfc3339(due)}};
    if (c.disposal.has_value()) {
      e.summary = StrCat("cartridge ", c.serial, " disposed ", Minutes(c.disposal->at - use.at),
                         " after opening (limit ", Minutes(disposal_limit_), ")");
      e.record.emplace_back("status", "DISPOSED_LATE");
      e.record.emplace_back("disposed_at", Rfc3339(c.disposal->at));
      e.record.emplace_back("container", c.disposal->container_id);
    } else {
      e.summary =
          StrCat("cartridge ", c.serial, " opened in room ", use.room, " is still not disposed, ",
                 Minutes(now - use.at), " after opening (limit ", Minutes(disposal_limit_), ")");
      e.record.emplace_back("status", "STILL_OPEN");
      e.record.emplace_back("disposed_at", "");
    }
    report.exceptions.push_back(std::move(e));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(ForEachInPeriod<Cartridge>(
      page_size_,
      [&](const PeriodCursor& after, int limit) {
        return tx->reports().ListCartridgesOpenedBetween(begin, end, after, limit);
      },
      [](const Cartridge& c) {
        return PeriodCursor{.at = c.use.has_value() ? c.use->at : absl::InfinitePast(), .id = c.id};
      },
      check_disposal));

  // Rule 6: every load with parameters, CIs, the BI where held, and a release. Rule 8 needs of the
  // loads only each steriliser's days of use: the first load's time and the cycles, by load id.
  struct DayOfUse {
    absl::Time first_load = absl::InfiniteFuture();
    std::vector<std::pair<int64_t, int64_t>> cycles;  // (load id, cycle number)
  };
  std::map<std::pair<int64_t, absl::CivilDay>, DayOfUse> days_of_use;
  auto check_load = [&](const Load& load) -> absl::Status {
    ++report.totals.loads_run;
    DayOfUse& day_of_use =
        days_of_use[{load.sterilizer_id, absl::ToCivilDay(load.created_at, zone_)}];
    day_of_use.first_load = std::min(day_of_use.first_load, load.created_at);
    day_of_use.cycles.emplace_back(load.id, load.cycle_number);
    const bool released = load.release_state == ReleaseState::kReleased;
    if (released) ++report.totals.loads_released;
    // A BI test cycle carries no contents: its outcome is rule 7's business (return to service),
    // not a pack that reached a treatment room.
    if (load.test_cycle) return absl::OkStatus();
    // Rule 6 as release applies it: one source for both.
    std::vector<std::string> missing, failed;
    for (const LoadFinding& finding : LoadReleaseFindings(load)) {
      (finding.missing ? missing : failed).push_back(finding.result);
    }
    // A released load is an exception only if it went out without passing results (past the
    // release check and the schema's guard: a store changed behind core's back).
    if (released && missing.empty() && failed.empty()) return absl::OkStatus();
    ComplianceException e{.at = load.created_at};
    e.record = {{"load", StrCat(load.id)},
                {"sterilizer", load.sterilizer_name},
                {"cycle", StrCat(load.cycle_number)},
                {"cycle_type", load.cycle_type},
                {"operator", load.operator_name},
                {"created_at", Rfc3339(load.created_at)},
                {"release_state", std::string(ReleaseStateName(load.release_state))},
                {"items", StrJoin(load.item_serials, " ")}};
    if (!missing.empty()) e.record.emplace_back("missing", StrJoin(missing, ", "));
    if (!failed.empty()) e.record.emplace_back("failed", StrJoin(failed, ", "));
    if (load.signature.has_value()) {
      e.record.emplace_back("signed_by", load.signature->by);
      e.record.emplace_back("signed_at", Rfc3339(load.signature->at));
      e.record.emplace_back("meaning", load.signature->meaning);
    }
    if (released) {
      e.kind =
          failed.empty() ? ExceptionKind::kLoadResultsMissing : ExceptionKind::kLoadResultsFailed;
      std::vector<std::string> lacking = failed;
      lacking.insert(lacking.end(), missing.begin(), missing.end());
      e.summary = StrCat("load ", LoadName(load),
                         " was released without passing results: ", StrJoin(lacking, ", "));
    } else if (load.release_state == ReleaseState::kRecalled) {
      e.kind = ExceptionKind::kLoadRecalled;
      e.summary = StrCat("load ", LoadName(load), " was recalled");
    } else if (load.release_state == ReleaseState::kQuarantined) {
      e.kind = ExceptionKind::kLoadQuarantined;
      e.summary = StrCat("load ", LoadName(load), " is quarantined");
    } else if (!failed.empty()) {
      e.kind = ExceptionKind::kLoadResultsFailed;
      e.summary = StrCat("load ", LoadName(load), " failed: ", StrJoin(failed, ", "));
    } else if (!missing.empty()) {
      e.kind = ExceptionKind::kLoadResultsMissing;
      e.summary = StrCat("load ", LoadName(load), " has no ", StrJoin(missing, ", "));
    } else {
      e.kind = ExceptionKind::kLoadNotReleased;
      e.summary = StrCat("load ", LoadName(load), " passed but was never released");
    }
    report.exceptions.push_back(std::move(e));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(ForEachInPeriod<Load>(
      page_size_,
      [&](const PeriodCursor& after, int limit) {
        return tx->reports().ListLoadsCreatedBetween(begin, end, after, limit);
      },
      [](const Load& l) { return PeriodCursor{.at = l.created_at, .id = l.id}; }, check_load));

  // Rule 8: a pre-vacuum steriliser's days of use each start with a passing Bowie-Dick test.
  ASSIGN_OR_RETURN(std::vector<BowieDickTest> tests,
                   tx->reports().ListBowieDickTestsBetween(from, to));
  std::map<std::pair<int64_t, absl::CivilDay>, std::vector<const BowieDickTest*>> tests_by_day;
  for (const BowieDickTest& t : tests) tests_by_day[{t.sterilizer_id, t.day}].push_back(&t);
  std::map<int64_t, std::optional<Sterilizer>> sterilizers;
  for (auto& [key, day_of_use] : days_of_use) {
    const auto& [sterilizer_id, day] = key;
    if (!sterilizers.contains(sterilizer_id)) {
      ASSIGN_OR_RETURN(sterilizers[sterilizer_id],
                       tx->sterilization().FindSterilizerById(sterilizer_id));
    }
    const std::optional<Sterilizer>& s = sterilizers[sterilizer_id];
    if (!s.has_value() || s->type != SterilizerType::kPreVacuum) continue;
    const absl::Time first_load = day_of_use.first_load;
    bool passed_before_first = false;
    std::vector<std::string> seen;
    if (auto it = tests_by_day.find(key); it != tests_by_day.end()) {
      for (const BowieDickTest* t : it->second) {
        seen.push_back(StrCat(IndicatorResultName(t->result), " at ", Rfc3339(t->at)));
        if (t->result == IndicatorResult::kPass && t->at <= first_load) passed_before_first = true;
      }
    }
    if (passed_before_first) continue;
    std::sort(day_of_use.cycles.begin(), day_of_use.cycles.end());
    std::vector<std::string> cycles;
    for (const auto& [load_id, cycle] : day_of_use.cycles) cycles.push_back(StrCat(cycle));
    ComplianceException e{.kind = ExceptionKind::kNoBowieDick, .at = absl::FromCivil(day, zone_)};
    e.summary =
        StrCat("pre-vacuum steriliser ", s->name, " ran ", day_of_use.cycles.size(), " load(s) on ",
               Iso(day), " without a passing Bowie-Dick test before the first");
    e.record = {{"sterilizer", s->name},
                {"day", Iso(day)},
                {"cycles", StrJoin(cycles, " ")},
                {"first_load_at", Rfc3339(first_load)},
                {"bowie_dick_tests", seen.empty() ? std::string("none") : StrJoin(seen, "; ")}};
    report.exceptions.push_back(std::move(e));
  }

  // Recalls in the period and what they touched.
  ASSIGN_OR_RETURN(std::vector<Lot> recalled, AllLots(*tx, LotState::kRecalled, page_size_));
  for (Lot& lot : recalled) {
    if (lot.state_changed_at < begin || lot.state_changed_at >= end) continue;
    RecallSummary recall;
    ASSIGN_OR_RETURN(recall.uses, UsesOfLot(*tx, lot, page_size_));
    recall.lot = std::move(lot);
    if (!recall.uses.empty()) {
      std::set<int64_t> treatment_ids;
      std::vector<std::string> treatments_text, serials;
      for (const LotUse& u : recall.uses) {
        if (treatment_ids.insert(u.treatment.id).second) {
          treatments_text.push_back(StrCat(u.treatment.id));
        }
        serials.push_back(u.serial);
      }
      ComplianceException e{.kind = ExceptionKind::kRecallAffectedTreatments,
                            .at = recall.lot.state_changed_at};
      e.summary = StrCat("recalled lot ", recall.lot.lot, " had been used in ",
                         treatment_ids.size(), " treatment(s): follow up each client");
      e.record = {{"gtin", recall.lot.gtin},
                  {"lot", recall.lot.lot},
                  {"recalled_at", Rfc3339(recall.lot.state_changed_at)},
                  {"recalled_by", recall.lot.state_changed_by},
                  {"reason", recall.lot.state_reason},
                  {"treatments", StrJoin(treatments_text, " ")},
                  {"serials", StrJoin(serials, " ")}};
      report.exceptions.push_back(std::move(e));
    }
    report.recalls.push_back(std::move(recall));
  }

  // Refused openings in the period, what followed them, and any that were overridden.
  RETURN_IF_ERROR(AddRefusals(*tx, begin, end, report));
  RETURN_IF_ERROR(AddStockAlerts(*tx, begin, end, report));

  // Rule 9: the audit trail verified intact, in this same read, after the last verified checkpoint
  // (as AuditService::Verify does by default; the full re-verification is AuditService's).
  ASSIGN_OR_RETURN(std::optional<AuditCheckpoint> checkpoint, tx->audit().ReadVerifiedCheckpoint());
  ASSIGN_OR_RETURN(report.audit_trail, audit_chain::VerifyAfter(tx->audit(), *sha256_, checkpoint));
  if (!report.audit_trail.intact) {
    ComplianceException e{.kind = ExceptionKind::kAuditTrailBroken, .at = now};
    e.summary = StrCat("audit trail BROKEN at entry ", report.audit_trail.first_bad_seq, ": ",
                       report.audit_trail.problem);
    e.record = {{"entries", StrCat(report.audit_trail.entries)},
                {"first_bad_seq", StrCat(report.audit_trail.first_bad_seq)},
                {"problem", report.audit_trail.problem},
                {"verified_at", Rfc3339(now)}};
    report.exceptions.push_back(std::move(e));
  }

  std::stable_sort(report.exceptions.begin(), report.exceptions.end(),
                   [](const ComplianceException& a, const ComplianceException& b) {
                     return std::tie(a.at, a.kind) < std::tie(b.at, b.kind);
                   });
  for (const ComplianceException& e : report.exceptions) ++report.totals.exceptions_by_kind[e.kind];
  for (auto& [key, c] : usage) report.usage.push_back(std::move(c));

  report.refusals_recorded =
      unrecorded_refusals_ == nullptr || !unrecorded_refusals_->AnyBetween(begin, end);
  report.checks_not_available.clear();
  report.compliant = report.exceptions.empty();
  return report;
}

absl::Status ReportService::AddRefusals(ReadTransaction& tx, absl::Time begin, absl::Time end,
                                        ComplianceReport& report) const {
  std::map<int64_t, std::vector<Event>> by_treatment;
  for (int64_t after = 0;;) {
    ASSIGN_OR_RETURN(std::vector<Event> page, tx.audit().ListAuditEntries(AuditEntryFilter{
                                                  .after_seq = after,
                                                  .action = std::string(kRefusalAction),
                                                  .from = begin,
                                                  .to = end,
                                                  .limit = page_size_}));
    if (page.empty()) break;
    after = page.back().seq;
    for (const Event& r : page) RETURN_IF_ERROR(AddRefusal(tx, r, by_treatment, report));
    if (static_cast<int>(page.size()) < page_size_) break;
  }
  report.totals.open_refusals = static_cast<int64_t>(report.refusals.size());
  return absl::OkStatus();
}

absl::Status ReportService::AddStockAlerts(ReadTransaction& tx, absl::Time begin, absl::Time end,
                                           ComplianceReport& report) const {
  for (std::string_view action : {"STOCK_BELOW_PAR", "STOCK_RESTORED"}) {
    for (int64_t after = 0;;) {
      ASSIGN_OR_RETURN(std::vector<Event> page,
                       tx.audit().ListAuditEntries(AuditEntryFilter{.after_seq = after,
                                                                    .action = std::string(action),
                                                                    .from = begin,
                                                                    .to = end,
                                                                    .limit = page_size_}));
      if (page.empty()) break;
      after = page.back().seq;
      const size_t n = page.size();
      for (Event& e : page) report.stock_alerts.push_back(std::move(e));
      if (static_cast<int>(n) < page_size_) break;
    }
  }
  std::sort(report.stock_alerts.begin(), report.stock_alerts.end(),
            [](const Event& a, const Event& b) { return a.seq < b.seq; });
  report.totals.stock_below_par = static_cast<int64_t>(
      std::count_if(report.stock_alerts.begin(), report.stock_alerts.end(),
                    [](const Event& e) { return e.action == "STOCK_BELOW_PAR"; }));
  return absl::OkStatus();
}

absl::Status ReportService::AddRefusal(ReadTransaction& tx, const Event& r,
                                       std::map<int64_t, std::vector<Event>>& by_treatment,
                                       ComplianceReport& report) const {
  {
    RefusalRecord rec{.seq = r.seq,
                      .at = r.at,
                      .actor = r.actor,
                      .treatment_id = r.treatment_id,
                      .cartridge_id = r.cartridge_id,
                      .lot_id = r.lot_id,
                      .detail = r.detail};
    constexpr std::string_view kReasonKey = "reason=";
    if (std::string_view after = r.after; after.substr(0, kReasonKey.size()) == kReasonKey) {
      after.remove_prefix(kReasonKey.size());
      rec.reason = std::string(after.substr(0, after.find(' ')));
    }
    const absl::CivilDay refusal_day = absl::ToCivilDay(r.at, zone_);
    auto when = [&](absl::Time t) {
      return absl::FormatTime(
          absl::ToCivilDay(t, zone_) == refusal_day ? "%H:%M" : "%Y-%m-%d %H:%M", t, zone_);
    };
    // What followed in the same treatment.
    if (r.treatment_id != 0) {
      auto it = by_treatment.find(r.treatment_id);
      if (it == by_treatment.end()) {
        // Keeps the events of the treatments of recent refusals only: a treatment's refusals are
        // close together, and the cache must not grow with the period.
        constexpr size_t kTreatmentsKept = 64;
        if (by_treatment.size() >= kTreatmentsKept) by_treatment.clear();
        ASSIGN_OR_RETURN(std::vector<Event> events,
                         core_internal::AllEvents(tx, EventFilter{.treatment_id = r.treatment_id}));
        it = by_treatment.emplace(r.treatment_id, std::move(events)).first;
      }
      bool opened_any = false;
      for (const Event& e : it->second) {
        if (e.seq < r.seq && e.action == "CARTRIDGE_OPENED") opened_any = true;
      }
      constexpr size_t kMaxFollowing = 5;
      for (const Event& e : it->second) {
        if (e.seq <= r.seq) continue;
        if (rec.followed_by.size() >= kMaxFollowing) break;
        if (e.action == "CARTRIDGE_OPENED") {
          opened_any = true;
          rec.followed_by.push_back(StrCat(e.cartridge_id != 0 && e.cartridge_id == r.cartridge_id
                                               ? "the refused cartridge opened at "
                                               : "another cartridge opened at ",
                                           when(e.at)));
        } else if (e.action == kRefusalAction) {
          std::string_view reason = e.after;
          if (reason.substr(0, kReasonKey.size()) == kReasonKey)
            reason.remove_prefix(kReasonKey.size());
          rec.followed_by.push_back(
              StrCat("another opening refused at ", when(e.at), " (", reason, ")"));
        } else if (e.action == "CARTRIDGE_DISPOSED") {
          rec.followed_by.push_back(StrCat("a cartridge disposed at ", when(e.at)));
        } else if (e.action == "TREATMENT_ENDED") {
          rec.followed_by.push_back(
              StrCat("treatment ended at ", when(e.at), opened_any ? "" : " without a cartridge"));
          break;
        } else {
          rec.followed_by.push_back(StrCat(e.action, " at ", when(e.at)));
        }
      }
    }
    // A unit refused for its lot or its date must never be opened afterwards, anywhere.
    if (rec.cartridge_id != 0 && (rec.reason == "LOT_RECALLED" || rec.reason == "LOT_QUARANTINED" ||
                                  rec.reason == "CARTRIDGE_EXPIRED")) {
      ASSIGN_OR_RETURN(std::vector<Event> unit_events,
                       core_internal::AllEvents(
                           tx, EventFilter{.cartridge_id = rec.cartridge_id, .after_seq = r.seq}));
      for (const Event& e : unit_events) {
        if (e.action != "CARTRIDGE_OPENED" || e.cartridge_id != rec.cartridge_id) continue;
        rec.overridden = true;
        rec.overridden_by_seq = e.seq;
        ComplianceException ex{.kind = ExceptionKind::kRefusalOverridden, .at = e.at};
        ex.summary =
            StrCat("cartridge refused (", rec.reason, ") at ", Rfc3339(r.at),
                   " was opened anyway at ", Rfc3339(e.at), " in treatment ", e.treatment_id);
        ex.record = {{"refusal_seq", StrCat(r.seq)},
                     {"refused_at", Rfc3339(r.at)},
                     {"refused_by", r.actor},
                     {"reason", rec.reason},
                     {"refused_treatment", StrCat(r.treatment_id)},
                     {"detail", r.detail},
                     {"opened_seq", StrCat(e.seq)},
                     {"opened_at", Rfc3339(e.at)},
                     {"opened_by", e.actor},
                     {"opened_treatment", StrCat(e.treatment_id)}};
        report.exceptions.push_back(std::move(ex));
        break;
      }
    }
    report.refusals.push_back(std::move(rec));
  }
  return absl::OkStatus();
}

absl::StatusOr<LotLookBack> ReportService::LookBackLot(std::string_view gtin,
                                                       std::string_view lot) {
  if (gtin.empty()) return InvalidField("gtin", "is required");
  if (lot.empty()) return InvalidField("lot", "is required");
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::optional<Lot> found, tx->cartridges().FindLot(gtin, lot));
  if (!found.has_value()) {
    return MakeError(absl::StatusCode::kNotFound,
                     StrCat("lot ", lot, " of ", gtin, " is not known"), "LOT_NOT_FOUND",
                     {{"gtin", std::string(gtin)}, {"lot", std::string(lot)}});
  }
  LotLookBack result;
  ASSIGN_OR_RETURN(result.uses, UsesOfLot(*tx, *found, page_size_));
  found->expired = absl::ToCivilDay(clock_->Now(), zone_) > found->expiry;
  result.lot = *std::move(found);
  return result;
}

absl::StatusOr<StockReport> ReportService::Stock(int32_t expiring_within_days) {
  if (expiring_within_days < 0 || expiring_within_days > 3650) {
    return InvalidField("expiring_within_days", "must be between 0 and 3650");
  }
  StockReport report;
  report.today = absl::ToCivilDay(clock_->Now(), zone_);
  report.expiring_within_days = expiring_within_days;
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::vector<Lot> lots, AllLots(*tx, std::nullopt, page_size_));
  for (Lot& lot : lots) {
    StockLine line;
    ASSIGN_OR_RETURN(line.units_in_stock, tx->cartridges().CountUnitsInStock(lot.id));
    line.days_to_expiry = lot.expiry - report.today;
    lot.expired = line.days_to_expiry < 0;
    line.expiring_soon = line.units_in_stock > 0 && line.days_to_expiry <= expiring_within_days;
    // Usable: what the open check would let through (server/core/stock_rules.h).
    if (core_internal::LotOpenRefusal(lot, report.today, {}).ok()) {
      report.units_in_stock += line.units_in_stock;
    }
    if (line.expiring_soon) report.units_expiring += line.units_in_stock;
    line.lot = std::move(lot);
    report.lines.push_back(std::move(line));
  }
  ASSIGN_OR_RETURN(std::vector<ParLevel> pars, tx->cartridges().ListParLevels());
  for (const ParLevel& par : pars) {
    ASSIGN_OR_RETURN(ProductStock product,
                     core_internal::CountProductStock(tx->cartridges(), par, report.today));
    report.products.push_back(std::move(product));
  }
  std::stable_sort(report.lines.begin(), report.lines.end(),
                   [](const StockLine& a, const StockLine& b) {
                     return std::tie(a.lot.expiry, a.lot.gtin, a.lot.lot) <
                            std::tie(b.lot.expiry, b.lot.gtin, b.lot.lot);
                   });
  return report;
}

}  // namespace steritrack
