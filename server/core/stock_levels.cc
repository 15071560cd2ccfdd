// Par levels and what counts as openable (issue 15). See server/core/stock_rules.h.
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/core/cartridge_service.h"
#include "server/core/result_codec.h"
#include "server/core/stock_rules.h"
#include "server/core/write_helper.h"
#include "steritrack/error.h"
#include "steritrack/gs1.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace core_internal {
namespace {

std::string Iso(absl::CivilDay day) { return absl::FormatCivilTime(day); }

std::map<std::string, std::string> With(const std::map<std::string, std::string>& unit,
                                        std::map<std::string, std::string> more) {
  more.insert(unit.begin(), unit.end());
  return more;
}

// The plain-text snapshot of a par level in the audit trail's before/after.
std::string ParSnapshot(const ParLevel& p) {
  return StrCat("gtin=", p.gtin, " min=", p.min_units, " window_days=", p.expiry_window_days);
}

}  // namespace

absl::Status LotOpenRefusal(const Lot& lot, absl::CivilDay today,
                            const std::map<std::string, std::string>& unit_facts) {
  if (lot.state == LotState::kRecalled) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition,
        StrCat("lot ", lot.lot, " is recalled: ", lot.state_reason), "LOT_RECALLED",
        With(unit_facts, {{"reason", lot.state_reason}, {"when", Rfc3339(lot.state_changed_at)}}));
  }
  if (lot.state == LotState::kQuarantined) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition,
        StrCat("lot ", lot.lot, " is quarantined: ", lot.state_reason), "LOT_QUARANTINED",
        With(unit_facts, {{"reason", lot.state_reason}, {"when", Rfc3339(lot.state_changed_at)}}));
  }
  // Usable through the whole expiry day in the clinic's time zone.
  if (today > lot.expiry) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     StrCat("cartridge expired on ", Iso(lot.expiry)), "CARTRIDGE_EXPIRED",
                     With(unit_facts, {{"expiry", Iso(lot.expiry)}}));
  }
  return absl::OkStatus();
}

absl::StatusOr<ProductStock> CountProductStock(CartridgeReads& reads, const ParLevel& par,
                                               absl::CivilDay today) {
  ProductStock stock{.par = par};
  // Lots that expired before today cannot hold an openable unit: the store skips them.
  ASSIGN_OR_RETURN(std::vector<LotStock> lots, reads.ListLotStock(par.gtin, today));
  for (const LotStock& l : lots) {
    if (!LotOpenRefusal(l.lot, today, {}).ok()) continue;
    stock.openable += l.units_in_stock;
    if (l.lot.expiry - today <= par.expiry_window_days) stock.expiring += l.units_in_stock;
    if (!stock.next_expiry.has_value() || l.lot.expiry < *stock.next_expiry) {
      stock.next_expiry = l.lot.expiry;
    }
  }
  stock.below_par = stock.openable - stock.expiring < par.min_units;
  return stock;
}

absl::StatusOr<std::optional<Event>> RecordParCrossing(AuditedTransaction& tx,
                                                       std::string_view gtin, absl::Time now,
                                                       absl::TimeZone zone, const WriteContext& ctx,
                                                       std::string_view cause, StockChange change) {
  ASSIGN_OR_RETURN(std::optional<ParLevel> par, tx.cartridges().FindParLevel(gtin));
  if (!par.has_value()) return std::optional<Event>();
  if ((change == StockChange::kDown && par->below_par) ||
      (change == StockChange::kUp && !par->below_par)) {
    return std::optional<Event>();
  }
  ASSIGN_OR_RETURN(ProductStock stock,
                   CountProductStock(tx.cartridges(), *par, absl::ToCivilDay(now, zone)));
  if (stock.below_par == par->below_par) return std::optional<Event>();
  ParLevel updated = *par;
  updated.below_par = stock.below_par;
  RETURN_IF_ERROR(tx.cartridges().SaveParLevel(updated));
  const std::string counts =
      StrCat(stock.openable, " openable (", stock.expiring, " expiring within ",
             par->expiry_window_days, " days), par ", par->min_units);
  Event event{
      .at = now,
      .actor = ctx.actor,
      .action = stock.below_par ? "STOCK_BELOW_PAR" : "STOCK_RESTORED",
      .detail = StrCat("GTIN ", gtin, stock.below_par ? " below par: " : " back at par: ", counts,
                       "; after ", cause),
      .request_id = ctx.request_id,
      .before = StrCat(ParSnapshot(*par), " below_par=", par->below_par ? "true" : "false"),
      .after = StrCat(ParSnapshot(updated), " below_par=", stock.below_par ? "true" : "false",
                      " openable=", stock.openable, " expiring=", stock.expiring)};
  ASSIGN_OR_RETURN(event.seq, tx.AppendEvent(event));
  return std::optional<Event>(std::move(event));
}

}  // namespace core_internal

using core_internal::AuditedTransaction;
using core_internal::RecordParCrossing;

absl::StatusOr<ParLevel> CartridgeService::SetParLevel(const WriteContext& ctx,
                                                       std::string_view gtin, int64_t min_units,
                                                       std::optional<int> expiry_window_days) {
  if (!IsValidGtin(gtin)) return InvalidField("gtin", "must be 14 digits with a valid check digit");
  if (min_units < 0 || min_units > kMaxParUnits) {
    return InvalidField("min_units", StrCat("must be between 0 and ", kMaxParUnits));
  }
  if (expiry_window_days.has_value() &&
      (*expiry_window_days < 0 || *expiry_window_days > kMaxExpiryWindowDays)) {
    return InvalidField("expiry_window_days",
                        StrCat("must be between 0 and ", kMaxExpiryWindowDays));
  }
  const std::string fingerprint =
      StrCat(gtin, "|", min_units, "|",
             expiry_window_days.has_value() ? StrCat(*expiry_window_days) : std::string("-"));
  return core_internal::RunIdempotentWrite<ParLevel>(
      *store_, *clock_, *sha256_, commits_, ctx, "SetParLevel", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<ParLevel> {
        ASSIGN_OR_RETURN(std::optional<ParLevel> existing, tx.cartridges().FindParLevel(gtin));
        if (!existing.has_value()) {
          ASSIGN_OR_RETURN(std::vector<ParLevel> all, tx.cartridges().ListParLevels());
          if (all.size() >= kMaxParLevels) {
            return MakeError(absl::StatusCode::kFailedPrecondition,
                             StrCat("at most ", kMaxParLevels,
                                    " products can have a par level; clear one first"),
                             "TOO_MANY_PAR_LEVELS", {{"limit", StrCat(kMaxParLevels)}});
          }
        }
        ParLevel par{.gtin = std::string(gtin),
                     .min_units = min_units,
                     .expiry_window_days = expiry_window_days.value_or(
                         existing ? existing->expiry_window_days : kDefaultExpiryWindowDays),
                     .below_par = existing ? existing->below_par : false,
                     .set_at = now,
                     .set_by = ctx.actor};
        RETURN_IF_ERROR(tx.cartridges().SaveParLevel(par));
        RETURN_IF_ERROR(
            tx.AppendEvent(Event{.at = now,
                                 .actor = ctx.actor,
                                 .action = "PAR_LEVEL_SET",
                                 .detail = StrCat("par level of GTIN ", gtin, ": at least ",
                                                  min_units, " openable units, expiry window ",
                                                  par.expiry_window_days, " days"),
                                 .request_id = ctx.request_id,
                                 .before = existing ? core_internal::ParSnapshot(*existing) : "",
                                 .after = core_internal::ParSnapshot(par)})
                .status());
        ASSIGN_OR_RETURN(std::optional<Event> crossed,
                         RecordParCrossing(tx, gtin, now, zone_, ctx, "the par level was set",
                                           core_internal::StockChange::kEither));
        if (crossed.has_value()) par.below_par = !par.below_par;
        return par;
      });
}

absl::StatusOr<ParLevel> CartridgeService::ClearParLevel(const WriteContext& ctx,
                                                         std::string_view gtin) {
  if (!IsValidGtin(gtin)) return InvalidField("gtin", "must be 14 digits with a valid check digit");
  return core_internal::RunIdempotentWrite<ParLevel>(
      *store_, *clock_, *sha256_, commits_, ctx, "ClearParLevel", gtin,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<ParLevel> {
        ASSIGN_OR_RETURN(std::optional<ParLevel> existing, tx.cartridges().FindParLevel(gtin));
        if (!existing.has_value()) {
          return MakeError(absl::StatusCode::kNotFound, StrCat("GTIN ", gtin, " has no par level"),
                           "PAR_LEVEL_NOT_FOUND", {{"gtin", std::string(gtin)}});
        }
        RETURN_IF_ERROR(tx.cartridges().DeleteParLevel(gtin));
        RETURN_IF_ERROR(tx.AppendEvent(Event{.at = now,
                                             .actor = ctx.actor,
                                             .action = "PAR_LEVEL_CLEARED",
                                             .detail = StrCat("par level of GTIN ", gtin,
                                                              " cleared (was at least ",
                                                              existing->min_units, " units)"),
                                             .request_id = ctx.request_id,
                                             .before = core_internal::ParSnapshot(*existing),
                                             .after = ""})
                            .status());
        if (existing->below_par) {
          // Whoever follows the alerts sees this one closed: there is no par left to be below.
          RETURN_IF_ERROR(
              tx
                  .AppendEvent(Event{
                      .at = now,
                      .actor = ctx.actor,
                      .action = "STOCK_RESTORED",
                      .detail =
                          StrCat("GTIN ", gtin, " no longer below par: its par level was cleared"),
                      .request_id = ctx.request_id,
                      .before = StrCat(core_internal::ParSnapshot(*existing), " below_par=true"),
                      .after = StrCat("gtin=", gtin, " no par level")})
                  .status());
        }
        return *std::move(existing);
      });
}

absl::StatusOr<StockLevels> CartridgeService::ListStockLevels() {
  const absl::Time now = clock_->Now();
  StockLevels levels{.today = absl::ToCivilDay(now, zone_)};
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::vector<ParLevel> pars, tx->cartridges().ListParLevels());
  for (const ParLevel& par : pars) {
    ASSIGN_OR_RETURN(ProductStock stock,
                     core_internal::CountProductStock(tx->cartridges(), par, levels.today));
    levels.products.push_back(std::move(stock));
  }
  return levels;
}

absl::StatusOr<std::vector<Event>> CartridgeService::CheckStockLevels(const WriteContext& ctx) {
  std::vector<ParLevel> pars;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
    ASSIGN_OR_RETURN(pars, tx->cartridges().ListParLevels());
  }
  // One short write per product: the writer is never held for the whole list, and a crossing is
  // atomic with its own product's state only.
  std::vector<Event> appended;
  for (const ParLevel& par : pars) {
    ASSIGN_OR_RETURN(
        std::optional<Event> crossed,
        core_internal::RunWrite<std::optional<Event>>(
            *store_, *clock_, *sha256_, commits_,
            [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<std::optional<Event>> {
              return RecordParCrossing(tx, par.gtin, now, zone_, ctx,
                                       StrCat("the daily stock check of ",
                                              absl::FormatCivilTime(absl::ToCivilDay(now, zone_))),
                                       core_internal::StockChange::kEither);
            }));
    if (crossed.has_value()) appended.push_back(*std::move(crossed));
  }
  return appended;
}

}  // namespace steritrack
