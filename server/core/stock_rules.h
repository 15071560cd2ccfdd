// What can be opened, counted (issue 15): the lot half of the open check, shared by
// CartridgeService::Open (through CheckOpenable) and by the par-level counts, so that "openable"
// means one thing; and the par-level crossing, recorded once in the write that causes it.
// Internal to server/core: include only from its .cc files. Pure functions over a transaction
// the caller holds.
#ifndef STERITRACK_SERVER_CORE_STOCK_RULES_H_
#define STERITRACK_SERVER_CORE_STOCK_RULES_H_

#ifndef STERITRACK_CORE_IMPLEMENTATION
#error \
    "server/core/stock_rules.h is internal to server/core: include it only from there (see server/CMakeLists.txt)"
#endif

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "server/core/cartridge_service.h"
#include "steritrack/model.h"
#include "steritrack/store.h"

namespace steritrack::core_internal {

class AuditedTransaction;

// Why no unit of `lot` can be opened on `today` in the clinic's time zone: LOT_RECALLED,
// LOT_QUARANTINED or CARTRIDGE_EXPIRED (usable through the whole expiry day), each
// FAILED_PRECONDITION with `unit_facts` among its facts; OK when the lot allows opening.
absl::Status LotOpenRefusal(const Lot& lot, absl::CivilDay today,
                            const std::map<std::string, std::string>& unit_facts);

// `par`'s product on `today`: units in stock whose lot LotOpenRefusal lets through, those of them
// within the expiry window (expiry - today <= window days), and whether openable - expiring falls
// short of the par level.
absl::StatusOr<ProductStock> CountProductStock(CartridgeReads& reads, const ParLevel& par,
                                               absl::CivilDay today);

// Which way a write can move a product's openable - expiring: an opening, a write-off, a recall
// or a quarantine only lower it (a unit leaves both counts, or only the first), a receipt or a
// lifted quarantine only raise it; the passing of a day lowers it, a new par level either way.
enum class StockChange { kDown, kUp, kEither };

// Re-evaluates the par level of `gtin` (when it has one) inside `tx` and, when the product crossed
// it since its last evaluation, stores the new state and appends STOCK_BELOW_PAR or
// STOCK_RESTORED, naming `cause`. A product already on the side `change` can only move it to is
// not counted at all (an opening cannot restore), which keeps the count off the writer's path
// while a product stays below par. Returns the appended entry, or nullopt when nothing crossed.
absl::StatusOr<std::optional<Event>> RecordParCrossing(AuditedTransaction& tx,
                                                       std::string_view gtin, absl::Time now,
                                                       absl::TimeZone zone, const WriteContext& ctx,
                                                       std::string_view cause, StockChange change);

}  // namespace steritrack::core_internal

#endif  // STERITRACK_SERVER_CORE_STOCK_RULES_H_
