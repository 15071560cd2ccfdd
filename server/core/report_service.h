// ReportService: what a manager reads (PRODUCT.md "What compliant means in a report", rules 3 and
// 9): the compliance report for a period, the recall look-back of a lot, and stock with expiry.
//
// Bounded memory: each answer streams the period from the store in pages (page_size rows) and keeps
// only the answer (counts per day, room, steriliser; the exceptions; a recalled lot's uses).
//
// Read-only: every answer comes from one read transaction over the Store, with "now" from the
// injected Clock (an open cartridge is overdue by now, an expiry is near from today). Plain C++ and
// absl. Thread-safe: any number of threads may call any method.
//
// A period is [from, to) in civil days of the clinic's time zone. Each exception carries the record
// that proves it as ordered facts (gtin, serial, treatment, room, opened_at, ...). Checks that this
// version cannot perform are named in `checks_not_available`, never reported as passed.
#ifndef STERITRACK_SERVER_CORE_REPORT_SERVICE_H_
#define STERITRACK_SERVER_CORE_REPORT_SERVICE_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "server/core/cartridge_service.h"
#include "server/core/unrecorded_refusals.h"
#include "steritrack/clock.h"
#include "steritrack/model.h"
#include "steritrack/sha256.h"
#include "steritrack/sterilization.h"
#include "steritrack/store.h"

namespace steritrack {

enum class ExceptionKind {
  kOverdueDisposal,     // an opened cartridge still open past the limit, or disposed late
  kLoadResultsMissing,  // parameters, a CI, or a required BI not recorded
  kLoadResultsFailed,   // parameters failed, a CI failed, BI positive or its control negative
  kLoadNotReleased,     // results complete and passing, but no release signed
  kLoadQuarantined,
  kLoadRecalled,
  kNoBowieDick,               // a pre-vacuum steriliser ran loads on a day without a passing test
  kRecallAffectedTreatments,  // a lot recalled in the period had been used in treatments
  kAuditTrailBroken,          // the audit hash chain does not verify (rule 9)
  // A cartridge refused for a lot recall, quarantine or expiry was later opened anyway.
  kRefusalOverridden,
};
inline constexpr int kExceptionKindCount = 10;
std::string_view ExceptionKindName(ExceptionKind kind);

// The record that proves an exception: ordered (name, value) facts; times RFC 3339 UTC.
using Facts = std::vector<std::pair<std::string, std::string>>;

struct ComplianceException {
  ExceptionKind kind = ExceptionKind::kOverdueDisposal;
  absl::Time at;        // when it arose: opened, load created, day of use, recall
  std::string summary;  // one line in plain words
  Facts record;
};

// One use of a lot's cartridge: which treatment, where, when, for which client reference.
struct LotUse {
  std::string gtin;
  std::string serial;
  Treatment treatment;
  absl::Time opened_at;
  bool disposed = false;
};

struct RecallSummary {
  Lot lot;
  std::vector<LotUse> uses;  // cartridges of the lot opened in any treatment, before the recall
};

// Usage for the charts: per clinic day and room.
struct UsageCell {
  absl::CivilDay day;
  std::string room;
  int64_t treatments = 0;
  int64_t cartridges_opened = 0;
};

// A refused cartridge opening (CARTRIDGE_OPEN_REFUSED) in the period and what followed it in the
// same treatment.
struct RefusalRecord {
  int64_t seq = 0;  // the audit entry of the refusal
  absl::Time at;
  std::string actor;
  int64_t treatment_id = 0;
  int64_t cartridge_id = 0;  // 0: the unit was not in stock
  int64_t lot_id = 0;        // 0: unknown
  std::string reason;        // e.g. LOT_RECALLED
  std::string detail;        // reason and plain words, as recorded
  // The next events of the same treatment, in plain words, e.g. "another cartridge opened at
  // 10:44", "treatment ended at 11:02 without a cartridge"; empty: nothing followed yet.
  std::vector<std::string> followed_by;
  // The refused unit (refused for a recall, quarantine or expiry) was later opened: should never
  // be.
  bool overridden = false;
  int64_t overridden_by_seq = 0;  // the CARTRIDGE_OPENED entry that overrode it
};

struct ReportTotals {
  int64_t treatments = 0;           // started in the period
  int64_t cartridges_opened = 0;    // opened in the period
  int64_t cartridges_disposed = 0;  // of those, disposed (in time or late)
  int64_t loads_run = 0;            // created in the period, test cycles included
  int64_t loads_released = 0;
  int64_t open_refusals = 0;                            // refused cartridge openings in the period
  int64_t stock_below_par = 0;                          // STOCK_BELOW_PAR entries in the period
  std::map<ExceptionKind, int64_t> exceptions_by_kind;  // every kind, zero included
};

struct ComplianceReport {
  absl::CivilDay from;  // inclusive
  absl::CivilDay to;    // exclusive
  std::string time_zone;
  absl::Time generated_at;
  absl::Duration disposal_limit;
  bool compliant = false;                       // no exceptions in the checks performed
  std::vector<ComplianceException> exceptions;  // by time, then kind
  std::vector<RecallSummary> recalls;           // lots recalled in the period
  std::vector<UsageCell> usage;                 // by day, then room
  ReportTotals totals;
  // False when a refused opening in the period could not be recorded (CARTRIDGE_OPEN_REFUSED), as
  // far as this server knows (ReportServiceOptions::unrecorded_refusals): `refusals` is then
  // incomplete.
  bool refusals_recorded = true;
  // Those in the period, by time.
  std::vector<RefusalRecord> refusals;
  // Par-level crossings in the period (STOCK_BELOW_PAR, STOCK_RESTORED entries), by seq. Not
  // exceptions: running low is a stock matter, not a compliance one.
  std::vector<Event> stock_alerts;
  // Rule 9: the audit trail's hash chain, verified in the report's own read.
  AuditChainCheck audit_trail;
  // Checks PRODUCT.md asks for that this version cannot perform, each with why.
  std::vector<std::pair<std::string, std::string>> checks_not_available;
};

struct LotLookBack {
  Lot lot;
  std::vector<LotUse> uses;  // by opening time
};

struct StockLine {
  Lot lot;  // expired derived as of today
  int64_t units_in_stock = 0;
  int64_t days_to_expiry = 0;  // negative once expired
  bool expiring_soon = false;  // within the asked window (or already expired), units in stock
};

struct StockReport {
  absl::CivilDay today;
  int32_t expiring_within_days = 0;
  std::vector<StockLine> lines;        // by expiry, then gtin, lot
  std::vector<ProductStock> products;  // with a par level, by GTIN
  int64_t units_in_stock = 0;          // usable: active, unexpired lots
  int64_t units_expiring = 0;          // in stock and expiring within the window or already expired
};

struct ReportServiceOptions {
  Store* store = nullptr;  // REQUIRES: non-null, outlives the service
  // The audit trail's hash function (steritrack/sha256.h). REQUIRES: non-null, outlives the
  // service.
  const Sha256* sha256 = nullptr;
  const Clock* clock = nullptr;  // REQUIRES: non-null, outlives the service
  absl::TimeZone clinic_time_zone = absl::UTCTimeZone();
  // Rule 3: an opened cartridge not disposed within this is an exception. REQUIRES: >= 0.
  absl::Duration disposal_limit = absl::Hours(4);
  // The refusals CartridgeService could not record (shared with it). Optional; outlives the
  // service. Null: none known.
  const UnrecordedRefusals* unrecorded_refusals = nullptr;
  // Rows read from the store per page while streaming a period: memory holds one page at a time
  // (plus the answer). Tests make it small to cross many page boundaries. REQUIRES: >= 1.
  int page_size = 4096;
};

class ReportService {
 public:
  explicit ReportService(ReportServiceOptions options);

  ReportService(const ReportService&) = delete;
  ReportService& operator=(const ReportService&) = delete;

  // INVALID_ARGUMENT unless from < to and the period is at most kMaxReportDays long.
  absl::StatusOr<ComplianceReport> ComplianceReportFor(absl::CivilDay from, absl::CivilDay to);
  // NOT_FOUND (LOT_NOT_FOUND) for an unknown lot.
  absl::StatusOr<LotLookBack> LookBackLot(std::string_view gtin, std::string_view lot);
  // Every lot with its units in stock; `expiring_within_days` (0..3650) marks what runs out soon.
  absl::StatusOr<StockReport> Stock(int32_t expiring_within_days);

  absl::Duration disposal_limit() const { return disposal_limit_; }

  // A period [from, to) of clinic days as every period read takes it: INVALID_ARGUMENT naming
  // "to" unless from < to and the period is at most kMaxReportDays long.
  static absl::Status CheckPeriod(absl::CivilDay from, absl::CivilDay to);

  static constexpr int kMaxReportDays = 3660;

 private:
  // The refused openings in [begin, end), what followed each, and REFUSAL_OVERRIDDEN exceptions.
  absl::Status AddStockAlerts(ReadTransaction& tx, absl::Time begin, absl::Time end,
                              ComplianceReport& report) const;
  absl::Status AddRefusals(ReadTransaction& tx, absl::Time begin, absl::Time end,
                           ComplianceReport& report) const;
  // One refused opening `r`: what followed it (events of its treatment, cached in `by_treatment`)
  // and whether the unit was opened anyway.
  absl::Status AddRefusal(ReadTransaction& tx, const Event& r,
                          std::map<int64_t, std::vector<Event>>& by_treatment,
                          ComplianceReport& report) const;

  Store* const store_;
  const Clock* const clock_;
  const Sha256* const sha256_;
  const absl::TimeZone zone_;
  const absl::Duration disposal_limit_;
  const UnrecordedRefusals* const unrecorded_refusals_;
  const int page_size_;
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_CORE_REPORT_SERVICE_H_
