// CartridgeService: the rules of the cartridge safety path (PRODUCT.md rules 1-4 and 10).
//
// Receives units into stock, opens a unit for a treatment only when it is safe, records disposal
// and write-off, recalls lots, and makes every write idempotent under a client-chosen request id.
// Plain C++ over the Store interface; time comes from the injected Clock. Thread-safe: any number
// of threads may call any method; writes are serialised by the store's single writer, which is what
// makes "two rooms, same unit, same instant: exactly one wins" hold.
#ifndef STERITRACK_SERVER_CORE_CARTRIDGE_SERVICE_H_
#define STERITRACK_SERVER_CORE_CARTRIDGE_SERVICE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/commit_notifier.h"
#include "server/core/unrecorded_refusals.h"
#include "steritrack/clock.h"
#include "steritrack/model.h"
#include "steritrack/sha256.h"
#include "steritrack/store.h"

namespace steritrack {
namespace core_internal {
class AuditedTransaction;
}  // namespace core_internal

// Who is writing and under which idempotency key.
struct WriteContext {
  std::string actor;       // never empty in production; "unknown" when not authenticated yet
  std::string request_id;  // optional
  // Asked just before the write starts and again just before its commit: true when the caller has
  // given up (deadline passed, call cancelled), and the write is then rolled back with CANCELLED
  // (reason CALLER_GAVE_UP) instead of committing work nobody waits for. Empty: never gives up.
  std::function<bool()> caller_gave_up;
};

struct PageRequest {
  int page_size = 0;  // 0: default
  std::string page_token;
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;  // empty on the last page
};

struct CartridgeDetail {
  Cartridge cartridge;
  std::vector<Event> history;  // the unit's and its lot's events, oldest first
  // Core's verdict on using the unit now: OK, or the very refusal Open would answer (same check,
  // reason, message and facts), so no edge decides "usable or not" by itself.
  absl::Status open_verdict;
};

struct LotDetail {
  Lot lot;
  int64_t units_in_stock = 0;
  std::vector<Event> history;
};

struct TreatmentDetail {
  Treatment treatment;
  std::vector<Cartridge> cartridges;  // opened in this treatment
};

struct RecallResult {
  Lot lot;
  std::vector<Cartridge> opened;  // units of the lot opened before the recall
};

struct CartridgeQuery {
  PageRequest page;
  std::optional<CartridgeState> state;
  std::string gtin;  // with lot: only this lot
  std::string lot;
  int64_t treatment_id = 0;
};

struct LotQuery {
  PageRequest page;
  std::optional<LotState> state;
};

struct TreatmentQuery {
  PageRequest page;
  std::optional<bool> ended;
  std::string room;
};

// A product with a par level, as counted now (issue 15).
struct ProductStock {
  ParLevel par;
  // Units OpenCartridge would open today: in stock, lot neither recalled nor quarantined, not
  // expired in the clinic's time zone.
  int64_t openable = 0;
  // Of those, the units whose expiry is at most par.expiry_window_days days away.
  int64_t expiring = 0;
  // The earliest expiry among the openable units.
  std::optional<absl::CivilDay> next_expiry;
  // openable - expiring < par.min_units: units about to expire do not protect the minimum.
  bool below_par = false;
};

struct StockLevels {
  absl::CivilDay today;                // clinic time zone
  std::vector<ProductStock> products;  // by GTIN
};

// At most this many products have a par level.
inline constexpr size_t kMaxParLevels = 5000;

struct CartridgeServiceOptions {
  Store* store = nullptr;  // REQUIRES: non-null, outlives the service
  // The audit trail's hash function (steritrack/sha256.h). REQUIRES: non-null, outlives the
  // service.
  const Sha256* sha256 = nullptr;
  const Clock* clock = nullptr;  // REQUIRES: non-null, outlives the service
  // Expiry dates are calendar days in the clinic's time zone.
  absl::TimeZone clinic_time_zone = absl::UTCTimeZone();
  // Told after every committed write (the event stream waits on it). Optional; outlives the
  // service.
  CommitNotifier* commits = nullptr;
  // Where a refused opening whose record could not be written is kept (shared with the report).
  // Optional, outlives the service; when null the service keeps its own (see
  // unrecorded_refusals()).
  UnrecordedRefusals* unrecorded_refusals = nullptr;
};

class CartridgeService {
 public:
  explicit CartridgeService(CartridgeServiceOptions options);

  CartridgeService(const CartridgeService&) = delete;
  CartridgeService& operator=(const CartridgeService&) = delete;

  // Inventory.
  absl::StatusOr<std::vector<Cartridge>> Receive(const WriteContext& ctx,
                                                 const std::vector<std::string>& barcodes);
  absl::StatusOr<CartridgeDetail> GetCartridge(std::string_view barcode);
  absl::StatusOr<Page<Cartridge>> ListCartridges(const CartridgeQuery& query);
  absl::StatusOr<Cartridge> Discard(const WriteContext& ctx, std::string_view barcode,
                                    std::string_view reason);
  absl::StatusOr<LotDetail> GetLot(std::string_view gtin, std::string_view lot);
  absl::StatusOr<Page<Lot>> ListLots(const LotQuery& query);
  absl::StatusOr<RecallResult> RecallLot(const WriteContext& ctx, std::string_view gtin,
                                         std::string_view lot, std::string_view reason);
  // Holds an active lot while something is checked (a supplier's notice, damaged cartons): no
  // unit of it can be opened until the quarantine is lifted (LOT_QUARANTINED, then
  // LOT_QUARANTINE_LIFTED). A recalled lot stays recalled; lifting needs a quarantined lot
  // (FAILED_PRECONDITION LOT_NOT_QUARANTINED otherwise).
  absl::StatusOr<Lot> QuarantineLot(const WriteContext& ctx, std::string_view gtin,
                                    std::string_view lot, std::string_view reason);
  absl::StatusOr<Lot> LiftLotQuarantine(const WriteContext& ctx, std::string_view gtin,
                                        std::string_view lot, std::string_view reason);

  // Par levels (issue 15). Setting and clearing are audited writes (PAR_LEVEL_SET,
  // PAR_LEVEL_CLEARED); `expiry_window_days` unset keeps the product's window, or the default for a
  // new par level. A write that takes a product below its par level, or back to it, records
  // STOCK_BELOW_PAR or STOCK_RESTORED in the same transaction, once per crossing.
  absl::StatusOr<ParLevel> SetParLevel(const WriteContext& ctx, std::string_view gtin,
                                       int64_t min_units, std::optional<int> expiry_window_days);
  absl::StatusOr<ParLevel> ClearParLevel(const WriteContext& ctx, std::string_view gtin);
  absl::StatusOr<StockLevels> ListStockLevels();
  // Re-evaluates every par level at the current time and records each crossing: what the passing
  // of a day does (units expire, or enter a window). Run at start-up and at every local midnight.
  // Returns the entries it appended.
  absl::StatusOr<std::vector<Event>> CheckStockLevels(const WriteContext& ctx);

  // Treatments and use.
  absl::StatusOr<Treatment> StartTreatment(const WriteContext& ctx, std::string_view room,
                                           std::string_view clinician, std::string_view client_ref);
  absl::StatusOr<TreatmentDetail> GetTreatment(int64_t id);
  absl::StatusOr<Page<Treatment>> ListTreatments(const TreatmentQuery& query);
  absl::StatusOr<TreatmentDetail> EndTreatment(const WriteContext& ctx, int64_t id);
  // The safety check and the record of use in one step. A refusal is recorded
  // (CARTRIDGE_OPEN_REFUSED), retried a few times within the call; if it still cannot be written,
  // the refusal is returned unchanged but for `refusal_recorded=false` in its ErrorInfo metadata,
  // and is added to unrecorded_refusals().
  absl::StatusOr<Cartridge> Open(const WriteContext& ctx, std::string_view barcode,
                                 int64_t treatment_id);
  absl::StatusOr<Cartridge> Dispose(const WriteContext& ctx, std::string_view barcode,
                                    std::string_view container_id);

  absl::TimeZone clinic_time_zone() const { return zone_; }

  // Refused openings whose record could not be written (never null).
  const UnrecordedRefusals& unrecorded_refusals() const { return *unrecorded_; }

  // Attempts at writing a refusal's record before it counts as unrecorded.
  static constexpr int kRefusalRecordAttempts = 3;
  // Whether a failed Open is a refusal by a safety rule (recorded as CARTRIDGE_OPEN_REFUSED), not
  // bad input or a fault. Metrics count refused openings by the same test.
  static bool IsRecordedRefusal(const absl::Status& status);

 private:
  // Runs `body` in one write transaction. With a request id, a repeat of the same request returns
  // the stored first answer without running `body`; a different request under the same id is
  // refused.
  template <typename T>
  absl::StatusOr<T> RunWrite(
      const WriteContext& ctx, std::string_view operation, std::string_view fingerprint,
      absl::FunctionRef<absl::StatusOr<T>(core_internal::AuditedTransaction&, absl::Time)> body);

  bool IsExpired(const Lot& lot, absl::Time now) const;
  void Derive(Lot& lot, absl::Time now) const;
  void Derive(Cartridge& cartridge, absl::Time now) const { Derive(cartridge.lot, now); }
  std::string LocalTime(absl::Time t) const;

  absl::Status CheckOpenable(const Cartridge& cartridge, absl::Time now) const;
  // QuarantineLot and LiftLotQuarantine: `from` -> `to`, audited as `action`.
  absl::StatusOr<Lot> ChangeLotHold(const WriteContext& ctx, std::string_view operation,
                                    std::string_view gtin, std::string_view lot,
                                    std::string_view reason, LotState to);

  // Appends CARTRIDGE_OPEN_REFUSED in its own write transaction, after the refused one rolled
  // back, in up to kRefusalRecordAttempts attempts when the failure may pass (UNAVAILABLE, ABORTED,
  // RESOURCE_EXHAUSTED). Returns the last failure if none succeeded.
  absl::Status RecordRefusal(const WriteContext& ctx, std::string_view gtin,
                             std::string_view serial, std::string_view lot, int64_t treatment_id,
                             const absl::Status& refusal);

  Store* const store_;
  const Clock* const clock_;
  const Sha256* const sha256_;
  const absl::TimeZone zone_;
  CommitNotifier* const commits_;
  std::unique_ptr<UnrecordedRefusals> own_unrecorded_;  // when the options gave none
  UnrecordedRefusals* const unrecorded_;
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_CORE_CARTRIDGE_SERVICE_H_
