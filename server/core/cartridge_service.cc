#include "server/core/cartridge_service.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <utility>

#include "server/core/result_codec.h"
#include "server/core/stock_rules.h"
#include "server/core/write_helper.h"
#include "steritrack/error.h"
#include "steritrack/gs1.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

using core_internal::AllEvents;
using core_internal::AuditedTransaction;
using core_internal::CheckText;
using core_internal::MakePage;
using core_internal::PageAfter;
using core_internal::PageSize;
using core_internal::Rfc3339;

constexpr size_t kMaxBarcodesPerReceive = 1000;
constexpr size_t kMaxBarcodeLength = 512;

// A barcode that identifies one unit: GTIN and serial, with lot and expiry when the scan has them.
absl::StatusOr<Gs1Data> ParseUnitBarcode(std::string_view field, std::string_view barcode,
                                         int current_year) {
  if (barcode.empty()) return InvalidField(field, "is required", "BARCODE_INVALID");
  if (barcode.size() > kMaxBarcodeLength) {
    return InvalidField(
        field,
        StrCat("is ", barcode.size(), " bytes long, at most ", kMaxBarcodeLength, " allowed"),
        "BARCODE_INVALID");
  }
  absl::StatusOr<Gs1Data> data = ParseGs1(barcode, current_year);
  if (!data.ok()) {
    return core_internal::BarcodeInvalid(field, data.status(), "GS1 barcode");
  }
  if (data->gtin.empty()) {
    return InvalidField(field, "has no GTIN (01): it does not identify a product",
                        "BARCODE_INVALID");
  }
  if (data->serial.empty()) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     StrCat(field,
                            ": has no serial number (21): a lot-only code does not identify "
                            "one cartridge"),
                     "SERIAL_REQUIRED",
                     {{"field", std::string(field)},
                      {"why", "a cartridge unit needs a serial number (AI 21)"},
                      {"gtin", data->gtin},
                      {"lot", data->lot}});
  }
  return data;
}

std::string Iso(absl::CivilDay day) { return absl::FormatCivilTime(day); }

std::string TreatmentIdText(int64_t id) { return StrCat(id); }

}  // namespace

CartridgeService::CartridgeService(CartridgeServiceOptions options)
    : store_(options.store),
      clock_(options.clock),
      sha256_(options.sha256),
      zone_(options.clinic_time_zone),
      commits_(options.commits),
      own_unrecorded_(options.unrecorded_refusals == nullptr
                          ? std::make_unique<UnrecordedRefusals>()
                          : nullptr),
      unrecorded_(options.unrecorded_refusals != nullptr ? options.unrecorded_refusals
                                                         : own_unrecorded_.get()) {}

template <typename T>
absl::StatusOr<T> CartridgeService::RunWrite(
    const WriteContext& ctx, std::string_view operation, std::string_view fingerprint,
    absl::FunctionRef<absl::StatusOr<T>(core_internal::AuditedTransaction&, absl::Time)> body) {
  return core_internal::RunIdempotentWrite<T>(*store_, *clock_, *sha256_, commits_, ctx, operation,
                                              fingerprint, body);
}

bool CartridgeService::IsExpired(const Lot& lot, absl::Time now) const {
  // Usable through the whole expiry day in the clinic's time zone.
  return absl::ToCivilDay(now, zone_) > lot.expiry;
}

void CartridgeService::Derive(Lot& lot, absl::Time now) const { lot.expired = IsExpired(lot, now); }

std::string CartridgeService::LocalTime(absl::Time t) const {
  return absl::FormatTime("%Y-%m-%d %H:%M", t, zone_);
}

absl::Status CartridgeService::CheckOpenable(const Cartridge& c, absl::Time now) const {
  std::map<std::string, std::string> unit = {
      {"gtin", c.gtin}, {"serial", c.serial}, {"lot", c.lot.lot}};
  auto with = [&unit](std::map<std::string, std::string> more) {
    more.insert(unit.begin(), unit.end());
    return more;
  };
  switch (c.state) {
    case CartridgeState::kOpened:
    case CartridgeState::kDisposed: {
      // Both mean "used": name when, where and for which treatment.
      std::map<std::string, std::string> facts;
      std::string where;
      if (c.use.has_value()) {
        facts = {{"when", Rfc3339(c.use->at)},
                 {"room", c.use->room},
                 {"treatment", TreatmentIdText(c.use->treatment_id)}};
        where = StrCat(" at ", LocalTime(c.use->at), " in room ", c.use->room, " (treatment ",
                       c.use->treatment_id, ")");
      }
      if (c.state == CartridgeState::kOpened) {
        return MakeError(absl::StatusCode::kFailedPrecondition,
                         StrCat("cartridge already used", where), "CARTRIDGE_ALREADY_USED",
                         with(std::move(facts)));
      }
      if (c.disposal.has_value()) {
        facts["container"] = c.disposal->container_id;
        facts["disposed_when"] = Rfc3339(c.disposal->at);
      }
      return MakeError(absl::StatusCode::kFailedPrecondition,
                       StrCat("cartridge already used", where, " and disposed"),
                       "CARTRIDGE_DISPOSED", with(std::move(facts)));
    }
    case CartridgeState::kDiscarded: {
      std::map<std::string, std::string> facts;
      if (c.discard.has_value()) {
        facts = {{"reason", c.discard->reason}, {"when", Rfc3339(c.discard->at)}};
      }
      return MakeError(
          absl::StatusCode::kFailedPrecondition,
          StrCat("cartridge was written off", c.discard ? StrCat(": ", c.discard->reason) : ""),
          "CARTRIDGE_DISCARDED", with(std::move(facts)));
    }
    case CartridgeState::kReceived:
      break;
  }
  // The lot's half of the check is the one the par-level counts use (server/core/stock_rules.h).
  return core_internal::LotOpenRefusal(c.lot, absl::ToCivilDay(now, zone_), unit);
}

// ---------------------------------------------------------------------------------------------------
// Inventory

absl::StatusOr<std::vector<Cartridge>> CartridgeService::Receive(
    const WriteContext& ctx, const std::vector<std::string>& barcodes) {
  if (barcodes.empty()) return InvalidField("barcodes", "at least one barcode is required");
  if (barcodes.size() > kMaxBarcodesPerReceive) {
    return InvalidField("barcodes", StrCat(barcodes.size(), " barcodes, at most ",
                                           kMaxBarcodesPerReceive, " per request"));
  }
  const int year = absl::ToCivilYear(clock_->Now(), zone_).year();
  std::vector<Gs1Data> units;
  units.reserve(barcodes.size());
  std::map<std::pair<std::string, std::string>, size_t> seen_units;
  std::map<std::pair<std::string, std::string>, absl::CivilDay> seen_lots;
  for (size_t i = 0; i < barcodes.size(); ++i) {
    const std::string field = StrCat("barcodes[", i, "]");
    ASSIGN_OR_RETURN(Gs1Data unit, ParseUnitBarcode(field, barcodes[i], year));
    if (unit.lot.empty()) {
      return MakeError(absl::StatusCode::kInvalidArgument,
                       StrCat(field, ": has no lot number (10), needed to receive a unit"),
                       "LOT_REQUIRED",
                       {{"field", field}, {"why", "a lot number (AI 10) is required"}});
    }
    if (!unit.expiry.has_value()) {
      return MakeError(absl::StatusCode::kInvalidArgument,
                       StrCat(field, ": has no expiry date (17), needed to receive a unit"),
                       "EXPIRY_REQUIRED",
                       {{"field", field}, {"why", "an expiry date (AI 17) is required"}});
    }
    auto [it, inserted] = seen_units.emplace(std::make_pair(unit.gtin, unit.serial), i);
    if (!inserted) {
      return MakeError(absl::StatusCode::kInvalidArgument,
                       StrCat(field, ": the same unit as barcodes[", it->second, "]"),
                       "DUPLICATE_BARCODE",
                       {{"field", field}, {"why", "duplicate unit in request"}});
    }
    auto [lot_it, lot_new] = seen_lots.emplace(std::make_pair(unit.gtin, unit.lot), *unit.expiry);
    if (!lot_new && lot_it->second != *unit.expiry) {
      return MakeError(absl::StatusCode::kFailedPrecondition,
                       StrCat(field, ": lot ", unit.lot, " scanned with expiry ", Iso(*unit.expiry),
                              " and ", Iso(lot_it->second)),
                       "EXPIRY_CONFLICT",
                       {{"field", field},
                        {"gtin", unit.gtin},
                        {"lot", unit.lot},
                        {"expiry", Iso(lot_it->second)},
                        {"scanned_expiry", Iso(*unit.expiry)}});
    }
    units.push_back(std::move(unit));
  }
  // Canonical form, so that a retry that re-scans the same units in another encoding still matches.
  std::vector<std::string> canonical;
  for (const Gs1Data& unit : units) canonical.push_back(FormatGs1Bracketed(unit));
  std::string fingerprint = StrJoin(canonical, std::string_view("\0", 1));

  return RunWrite<std::vector<Cartridge>>(
      ctx, "ReceiveCartridges", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<std::vector<Cartridge>> {
        std::vector<Cartridge> received;
        std::map<std::pair<std::string, std::string>, Lot> lots;
        for (size_t i = 0; i < units.size(); ++i) {
          const Gs1Data& unit = units[i];
          const std::string field = StrCat("barcodes[", i, "]");
          auto key = std::make_pair(unit.gtin, unit.lot);
          auto lot_it = lots.find(key);
          if (lot_it == lots.end()) {
            ASSIGN_OR_RETURN(std::optional<Lot> known,
                             tx.cartridges().FindLot(unit.gtin, unit.lot));
            Lot lot;
            if (known.has_value()) {
              lot = *std::move(known);
              if (lot.expiry != *unit.expiry) {
                return MakeError(absl::StatusCode::kFailedPrecondition,
                                 StrCat(field, ": lot ", unit.lot, " is known with expiry ",
                                        Iso(lot.expiry), ", this scan says ", Iso(*unit.expiry)),
                                 "EXPIRY_CONFLICT",
                                 {{"field", field},
                                  {"gtin", unit.gtin},
                                  {"lot", unit.lot},
                                  {"expiry", Iso(lot.expiry)},
                                  {"scanned_expiry", Iso(*unit.expiry)}});
              }
            } else {
              lot = Lot{
                  .gtin = unit.gtin, .lot = unit.lot, .expiry = *unit.expiry, .created_at = now};
            }
            lot_it = lots.emplace(key, std::move(lot)).first;
          }
          Lot& lot = lot_it->second;
          std::map<std::string, std::string> facts = {
              {"field", field}, {"gtin", unit.gtin}, {"lot", unit.lot}, {"serial", unit.serial}};
          if (lot.state == LotState::kRecalled || lot.state == LotState::kQuarantined) {
            const bool recalled = lot.state == LotState::kRecalled;
            facts["reason"] = lot.state_reason;
            facts["when"] = Rfc3339(lot.state_changed_at);
            return MakeError(absl::StatusCode::kFailedPrecondition,
                             StrCat(field, ": lot ", unit.lot, " is ",
                                    recalled ? "recalled" : "quarantined", ": ", lot.state_reason),
                             recalled ? "LOT_RECALLED" : "LOT_QUARANTINED", std::move(facts));
          }
          if (IsExpired(lot, now)) {
            facts["expiry"] = Iso(lot.expiry);
            return MakeError(absl::StatusCode::kFailedPrecondition,
                             StrCat(field, ": cartridge expired on ", Iso(lot.expiry),
                                    "; expired stock is not received"),
                             "CARTRIDGE_EXPIRED", std::move(facts));
          }
          ASSIGN_OR_RETURN(std::optional<Cartridge> existing,
                           tx.cartridges().FindCartridge(unit.gtin, unit.serial));
          if (existing.has_value()) {
            facts["state"] = std::string(CartridgeStateName(existing->state));
            return MakeError(absl::StatusCode::kAlreadyExists,
                             StrCat(field, ": unit ", unit.serial, " is already known (state ",
                                    CartridgeStateName(existing->state), ")"),
                             "CARTRIDGE_ALREADY_IN_STOCK", std::move(facts));
          }
          if (lot.id == 0) {
            ASSIGN_OR_RETURN(lot.id, tx.cartridges().InsertLot(lot));
            RETURN_IF_ERROR(
                tx.AppendEvent(Event{.at = now,
                                     .actor = ctx.actor,
                                     .action = "LOT_CREATED",
                                     .lot_id = lot.id,
                                     .detail = StrCat("lot ", lot.lot, " of ", lot.gtin,
                                                      ", expiry ", Iso(lot.expiry)),
                                     .request_id = ctx.request_id,
                                     .before = "",
                                     .after = StrCat("state=ACTIVE expiry=", Iso(lot.expiry))})
                    .status());
          }
          Cartridge c{.gtin = unit.gtin,
                      .serial = unit.serial,
                      .lot = lot,
                      .state = CartridgeState::kReceived,
                      .received_at = now,
                      .received_by = ctx.actor};
          ASSIGN_OR_RETURN(c.id, tx.cartridges().InsertCartridge(c));
          RETURN_IF_ERROR(
              tx.AppendEvent(Event{.at = now,
                                   .actor = ctx.actor,
                                   .action = "CARTRIDGE_RECEIVED",
                                   .lot_id = lot.id,
                                   .cartridge_id = c.id,
                                   .detail = StrCat("received into stock, lot ", lot.lot),
                                   .request_id = ctx.request_id,
                                   .before = "",
                                   .after = "state=RECEIVED"})
                  .status());
          Derive(c, now);
          received.push_back(std::move(c));
        }
        std::set<std::string> products;
        for (const Cartridge& c : received) products.insert(c.gtin);
        for (const std::string& gtin : products) {
          RETURN_IF_ERROR(core_internal::RecordParCrossing(tx, gtin, now, zone_, ctx, "a receipt",
                                                           core_internal::StockChange::kUp)
                              .status());
        }
        return received;
      });
}

absl::StatusOr<CartridgeDetail> CartridgeService::GetCartridge(std::string_view barcode) {
  const absl::Time now = clock_->Now();
  ASSIGN_OR_RETURN(Gs1Data unit,
                   ParseUnitBarcode("barcode", barcode, absl::ToCivilYear(now, zone_).year()));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::optional<Cartridge> c,
                   tx->cartridges().FindCartridge(unit.gtin, unit.serial));
  if (!c.has_value()) {
    return MakeError(
        absl::StatusCode::kNotFound,
        StrCat("cartridge ", unit.serial, " of ", unit.gtin, " is not in the clinic's stock"),
        "CARTRIDGE_NOT_IN_STOCK", {{"gtin", unit.gtin}, {"serial", unit.serial}});
  }
  CartridgeDetail detail;
  ASSIGN_OR_RETURN(std::vector<Event> unit_events, AllEvents(*tx, {.cartridge_id = c->id}));
  // Plus what happened to the lot as a whole (created, recalled).
  ASSIGN_OR_RETURN(std::vector<Event> lot_events,
                   AllEvents(*tx, {.lot_id = c->lot.id, .lot_wide_only = true}));
  for (Event& e : lot_events) unit_events.push_back(std::move(e));
  std::sort(unit_events.begin(), unit_events.end(),
            [](const Event& a, const Event& b) { return a.seq < b.seq; });
  Derive(*c, now);
  detail.open_verdict = CheckOpenable(*c, now);
  detail.cartridge = *std::move(c);
  detail.history = std::move(unit_events);
  return detail;
}

absl::StatusOr<Page<Cartridge>> CartridgeService::ListCartridges(const CartridgeQuery& query) {
  ASSIGN_OR_RETURN(int limit, PageSize(query.page));
  ASSIGN_OR_RETURN(int64_t after, PageAfter(query.page));
  if (query.gtin.empty() != query.lot.empty()) {
    return InvalidField(query.gtin.empty() ? "gtin" : "lot", "gtin and lot filter together");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  CartridgeFilter filter{.state = query.state,
                         .treatment_id = query.treatment_id,
                         .after_id = after,
                         .limit = limit + 1};
  if (!query.gtin.empty()) {
    ASSIGN_OR_RETURN(std::optional<Lot> lot, tx->cartridges().FindLot(query.gtin, query.lot));
    if (!lot.has_value()) return Page<Cartridge>{};
    filter.lot_id = lot->id;
  }
  ASSIGN_OR_RETURN(std::vector<Cartridge> items, tx->cartridges().ListCartridges(filter));
  const absl::Time now = clock_->Now();
  for (Cartridge& c : items) Derive(c, now);
  return MakePage(std::move(items), limit, [](const Cartridge& c) { return c.id; });
}

absl::StatusOr<Cartridge> CartridgeService::Discard(const WriteContext& ctx,
                                                    std::string_view barcode,
                                                    std::string_view reason) {
  const int year = absl::ToCivilYear(clock_->Now(), zone_).year();
  ASSIGN_OR_RETURN(Gs1Data unit, ParseUnitBarcode("barcode", barcode, year));
  RETURN_IF_ERROR(CheckText("reason", reason, kMaxReasonLength));
  std::string fingerprint = StrCat(unit.gtin, "|", unit.serial, "|", reason);
  return RunWrite<Cartridge>(
      ctx, "DiscardCartridge", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<Cartridge> {
        ASSIGN_OR_RETURN(std::optional<Cartridge> c,
                         tx.cartridges().FindCartridge(unit.gtin, unit.serial));
        if (!c.has_value()) {
          return MakeError(absl::StatusCode::kNotFound,
                           StrCat("cartridge ", unit.serial, " is not in the clinic's stock"),
                           "CARTRIDGE_NOT_IN_STOCK",
                           {{"gtin", unit.gtin}, {"serial", unit.serial}});
        }
        if (c->state != CartridgeState::kReceived) {
          absl::Status refused = CheckOpenable(*c, now);
          if (c->state == CartridgeState::kOpened) {
            // An opened unit goes to the sharps container: a disposal, not a write-off.
            return MakeError(
                absl::StatusCode::kFailedPrecondition,
                StrCat(refused.message(), "; an opened cartridge is disposed, not discarded"),
                "CARTRIDGE_ALREADY_USED", GetErrorInfo(refused)->metadata);
          }
          return refused;
        }
        c->state = CartridgeState::kDiscarded;
        c->discard = steritrack::Discard{.reason = std::string(reason), .at = now, .by = ctx.actor};
        RETURN_IF_ERROR(tx.cartridges().RecordDiscard(c->id, *c->discard));
        RETURN_IF_ERROR(tx.AppendEvent(Event{.at = now,
                                             .actor = ctx.actor,
                                             .action = "CARTRIDGE_DISCARDED",
                                             .lot_id = c->lot.id,
                                             .cartridge_id = c->id,
                                             .detail = StrCat("written off unused: ", reason),
                                             .request_id = ctx.request_id,
                                             .before = "state=RECEIVED",
                                             .after = "state=DISCARDED_UNUSED"})
                            .status());
        RETURN_IF_ERROR(
            core_internal::RecordParCrossing(tx, c->gtin, now, zone_, ctx,
                                             StrCat("cartridge ", c->serial, " was written off"),
                                             core_internal::StockChange::kDown)
                .status());
        Derive(*c, now);
        return *std::move(c);
      });
}

absl::StatusOr<LotDetail> CartridgeService::GetLot(std::string_view gtin, std::string_view lot) {
  if (!IsValidGtin(gtin)) return InvalidField("gtin", "must be 14 digits with a valid check digit");
  RETURN_IF_ERROR(CheckText("lot", lot, 20));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::optional<Lot> found, tx->cartridges().FindLot(gtin, lot));
  if (!found.has_value()) {
    return MakeError(absl::StatusCode::kNotFound,
                     StrCat("lot ", lot, " of ", gtin, " is not known"), "LOT_NOT_FOUND",
                     {{"gtin", std::string(gtin)}, {"lot", std::string(lot)}});
  }
  LotDetail detail;
  ASSIGN_OR_RETURN(detail.units_in_stock, tx->cartridges().CountUnitsInStock(found->id));
  ASSIGN_OR_RETURN(detail.history, AllEvents(*tx, {.lot_id = found->id, .lot_wide_only = true}));
  Derive(*found, clock_->Now());
  detail.lot = *std::move(found);
  return detail;
}

absl::StatusOr<Page<Lot>> CartridgeService::ListLots(const LotQuery& query) {
  ASSIGN_OR_RETURN(int limit, PageSize(query.page));
  ASSIGN_OR_RETURN(int64_t after, PageAfter(query.page));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(
      std::vector<Lot> items,
      tx->cartridges().ListLots({.state = query.state, .after_id = after, .limit = limit + 1}));
  const absl::Time now = clock_->Now();
  for (Lot& l : items) Derive(l, now);
  return MakePage(std::move(items), limit, [](const Lot& l) { return l.id; });
}

absl::StatusOr<RecallResult> CartridgeService::RecallLot(const WriteContext& ctx,
                                                         std::string_view gtin,
                                                         std::string_view lot,
                                                         std::string_view reason) {
  if (!IsValidGtin(gtin)) return InvalidField("gtin", "must be 14 digits with a valid check digit");
  RETURN_IF_ERROR(CheckText("lot", lot, 20));
  RETURN_IF_ERROR(CheckText("reason", reason, kMaxReasonLength));
  std::string fingerprint = StrCat(gtin, "|", lot, "|", reason);
  return RunWrite<RecallResult>(
      ctx, "RecallLot", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<RecallResult> {
        ASSIGN_OR_RETURN(std::optional<Lot> found, tx.cartridges().FindLot(gtin, lot));
        if (!found.has_value()) {
          return MakeError(absl::StatusCode::kNotFound,
                           StrCat("lot ", lot, " of ", gtin, " is not known"), "LOT_NOT_FOUND",
                           {{"gtin", std::string(gtin)}, {"lot", std::string(lot)}});
        }
        if (found->state == LotState::kRecalled) {
          return MakeError(absl::StatusCode::kFailedPrecondition,
                           StrCat("lot ", lot, " is already recalled: ", found->state_reason),
                           "LOT_RECALLED",
                           {{"reason", found->state_reason},
                            {"when", Rfc3339(found->state_changed_at)},
                            {"gtin", found->gtin},
                            {"lot", found->lot}});
        }
        RETURN_IF_ERROR(
            tx.cartridges().UpdateLotState(found->id, LotState::kRecalled, reason, now, ctx.actor));
        RETURN_IF_ERROR(tx.AppendEvent(Event{.at = now,
                                             .actor = ctx.actor,
                                             .action = "LOT_RECALLED",
                                             .lot_id = found->id,
                                             .detail = StrCat("recalled: ", reason),
                                             .request_id = ctx.request_id,
                                             .before = StrCat("state=", LotStateName(found->state)),
                                             .after = "state=RECALLED"})
                            .status());
        RETURN_IF_ERROR(
            core_internal::RecordParCrossing(tx, found->gtin, now, zone_, ctx,
                                             StrCat("lot ", found->lot, " was recalled"),
                                             core_internal::StockChange::kDown)
                .status());
        found->state = LotState::kRecalled;
        found->state_reason = std::string(reason);
        found->state_changed_at = now;
        found->state_changed_by = ctx.actor;
        Derive(*found, now);
        RecallResult result{.lot = *found};
        // The look-back: every unit of the lot that already touched a client.
        int64_t after = 0;
        while (true) {
          ASSIGN_OR_RETURN(std::vector<Cartridge> batch,
                           tx.cartridges().ListCartridges(
                               {.lot_id = found->id, .after_id = after, .limit = 500}));
          if (batch.empty()) break;
          after = batch.back().id;
          for (Cartridge& c : batch) {
            if (c.use.has_value()) {
              c.lot = *found;
              result.opened.push_back(std::move(c));
            }
          }
        }
        return result;
      });
}

absl::StatusOr<Lot> CartridgeService::QuarantineLot(const WriteContext& ctx, std::string_view gtin,
                                                    std::string_view lot, std::string_view reason) {
  return ChangeLotHold(ctx, "QuarantineLot", gtin, lot, reason, LotState::kQuarantined);
}

absl::StatusOr<Lot> CartridgeService::LiftLotQuarantine(const WriteContext& ctx,
                                                        std::string_view gtin, std::string_view lot,
                                                        std::string_view reason) {
  return ChangeLotHold(ctx, "LiftLotQuarantine", gtin, lot, reason, LotState::kActive);
}

absl::StatusOr<Lot> CartridgeService::ChangeLotHold(const WriteContext& ctx,
                                                    std::string_view operation,
                                                    std::string_view gtin, std::string_view lot,
                                                    std::string_view reason, LotState to) {
  if (!IsValidGtin(gtin)) return InvalidField("gtin", "must be 14 digits with a valid check digit");
  RETURN_IF_ERROR(CheckText("lot", lot, 20));
  RETURN_IF_ERROR(CheckText("reason", reason, kMaxReasonLength));
  const bool quarantine = to == LotState::kQuarantined;
  std::string fingerprint = StrCat(gtin, "|", lot, "|", reason);
  return RunWrite<Lot>(
      ctx, operation, fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<Lot> {
        ASSIGN_OR_RETURN(std::optional<Lot> found, tx.cartridges().FindLot(gtin, lot));
        if (!found.has_value()) {
          return MakeError(absl::StatusCode::kNotFound,
                           StrCat("lot ", lot, " of ", gtin, " is not known"), "LOT_NOT_FOUND",
                           {{"gtin", std::string(gtin)}, {"lot", std::string(lot)}});
        }
        std::map<std::string, std::string> facts = {{"gtin", found->gtin},
                                                    {"lot", found->lot},
                                                    {"reason", found->state_reason},
                                                    {"when", Rfc3339(found->state_changed_at)}};
        if (found->state == LotState::kRecalled) {
          return MakeError(absl::StatusCode::kFailedPrecondition,
                           StrCat("lot ", lot, " is recalled: ", found->state_reason,
                                  "; a recalled lot stays recalled"),
                           "LOT_RECALLED", std::move(facts));
        }
        if (quarantine && found->state == LotState::kQuarantined) {
          return MakeError(absl::StatusCode::kFailedPrecondition,
                           StrCat("lot ", lot, " is already quarantined: ", found->state_reason),
                           "LOT_QUARANTINED", std::move(facts));
        }
        if (!quarantine && found->state != LotState::kQuarantined) {
          return MakeError(absl::StatusCode::kFailedPrecondition,
                           StrCat("lot ", lot, " is not quarantined"), "LOT_NOT_QUARANTINED",
                           {{"gtin", found->gtin}, {"lot", found->lot}});
        }
        RETURN_IF_ERROR(tx.cartridges().UpdateLotState(found->id, to, reason, now, ctx.actor));
        RETURN_IF_ERROR(
            tx.AppendEvent(Event{.at = now,
                                 .actor = ctx.actor,
                                 .action = quarantine ? "LOT_QUARANTINED" : "LOT_QUARANTINE_LIFTED",
                                 .lot_id = found->id,
                                 .detail = StrCat(
                                     quarantine ? "quarantined: " : "quarantine lifted: ", reason),
                                 .request_id = ctx.request_id,
                                 .before = StrCat("state=", LotStateName(found->state)),
                                 .after = StrCat("state=", LotStateName(to))})
                .status());
        RETURN_IF_ERROR(
            core_internal::RecordParCrossing(
                tx, found->gtin, now, zone_, ctx,
                StrCat(quarantine ? "lot " : "the quarantine of lot ", found->lot,
                       quarantine ? " was quarantined" : " was lifted"),
                quarantine ? core_internal::StockChange::kDown : core_internal::StockChange::kUp)
                .status());
        found->state = to;
        found->state_reason = std::string(reason);
        found->state_changed_at = now;
        found->state_changed_by = ctx.actor;
        Derive(*found, now);
        return *std::move(found);
      });
}

// ---------------------------------------------------------------------------------------------------
// Treatments and use

absl::StatusOr<Treatment> CartridgeService::StartTreatment(const WriteContext& ctx,
                                                           std::string_view room,
                                                           std::string_view clinician,
                                                           std::string_view client_ref) {
  RETURN_IF_ERROR(CheckText("room", room, kMaxNameLength));
  RETURN_IF_ERROR(CheckText("clinician", clinician, kMaxNameLength));
  RETURN_IF_ERROR(CheckText("client_ref", client_ref, kMaxNameLength));
  std::string fingerprint = StrCat(room, "|", clinician, "|", client_ref);
  return RunWrite<Treatment>(
      ctx, "StartTreatment", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<Treatment> {
        Treatment t{.room = std::string(room),
                    .clinician = std::string(clinician),
                    .client_ref = std::string(client_ref),
                    .started_at = now,
                    .started_by = ctx.actor};
        ASSIGN_OR_RETURN(t.id, tx.cartridges().InsertTreatment(t));
        // The client reference stays in the treatment record, not in event text.
        RETURN_IF_ERROR(
            tx.AppendEvent(Event{.at = now,
                                 .actor = ctx.actor,
                                 .action = "TREATMENT_STARTED",
                                 .treatment_id = t.id,
                                 .detail = StrCat("room ", room, ", clinician ", clinician),
                                 .request_id = ctx.request_id,
                                 .before = "",
                                 .after = StrCat("state=STARTED room=", room)})
                .status());
        return t;
      });
}

absl::StatusOr<TreatmentDetail> CartridgeService::GetTreatment(int64_t id) {
  if (id <= 0) return InvalidField("id", "must be a positive treatment number");
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::optional<Treatment> t, tx->cartridges().FindTreatment(id));
  if (!t.has_value()) {
    return MakeError(absl::StatusCode::kNotFound, StrCat("treatment ", id, " does not exist"),
                     "TREATMENT_NOT_FOUND", {{"treatment", StrCat(id)}});
  }
  TreatmentDetail detail{.treatment = *std::move(t)};
  ASSIGN_OR_RETURN(detail.cartridges,
                   tx->cartridges().ListCartridges({.treatment_id = id, .limit = 1000}));
  const absl::Time now = clock_->Now();
  for (Cartridge& c : detail.cartridges) Derive(c, now);
  return detail;
}

absl::StatusOr<Page<Treatment>> CartridgeService::ListTreatments(const TreatmentQuery& query) {
  ASSIGN_OR_RETURN(int limit, PageSize(query.page));
  ASSIGN_OR_RETURN(int64_t after, PageAfter(query.page));
  RETURN_IF_ERROR(CheckText("room", query.room, kMaxNameLength, /*required=*/false));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(
      std::vector<Treatment> items,
      tx->cartridges().ListTreatments(
          {.ended = query.ended, .room = query.room, .after_id = after, .limit = limit + 1}));
  return MakePage(std::move(items), limit, [](const Treatment& t) { return t.id; });
}

absl::StatusOr<TreatmentDetail> CartridgeService::EndTreatment(const WriteContext& ctx,
                                                               int64_t id) {
  if (id <= 0) return InvalidField("id", "must be a positive treatment number");
  return RunWrite<TreatmentDetail>(
      ctx, "EndTreatment", StrCat(id),
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<TreatmentDetail> {
        ASSIGN_OR_RETURN(std::optional<Treatment> t, tx.cartridges().FindTreatment(id));
        if (!t.has_value()) {
          return MakeError(absl::StatusCode::kNotFound, StrCat("treatment ", id, " does not exist"),
                           "TREATMENT_NOT_FOUND", {{"treatment", StrCat(id)}});
        }
        if (t->ended_at.has_value()) {
          return MakeError(absl::StatusCode::kFailedPrecondition,
                           StrCat("treatment ", id, " already ended at ", LocalTime(*t->ended_at)),
                           "TREATMENT_ENDED",
                           {{"treatment", StrCat(id)}, {"when", Rfc3339(*t->ended_at)}});
        }
        RETURN_IF_ERROR(tx.cartridges().EndTreatment(id, now, ctx.actor));
        t->ended_at = now;
        t->ended_by = ctx.actor;
        TreatmentDetail detail{.treatment = *std::move(t)};
        ASSIGN_OR_RETURN(detail.cartridges,
                         tx.cartridges().ListCartridges({.treatment_id = id, .limit = 1000}));
        size_t undisposed = 0;
        for (Cartridge& c : detail.cartridges) {
          Derive(c, now);
          if (c.state == CartridgeState::kOpened) ++undisposed;
        }
        // Reusable items come back from the room dirty (rule 5): they must be reprocessed.
        while (true) {
          ASSIGN_OR_RETURN(std::vector<ReusableItem> in_use,
                           tx.sterilization().ListItems(
                               {.state = ItemState::kInUse, .treatment_id = id, .limit = 500}));
          if (in_use.empty()) break;
          for (ReusableItem& item : in_use) {
            item.state = ItemState::kDirty;
            item.treatment_id = 0;
            RETURN_IF_ERROR(tx.sterilization().UpdateItem(item));
            RETURN_IF_ERROR(
                tx.AppendEvent(Event{.at = now,
                                     .actor = ctx.actor,
                                     .action = "ITEM_RETURNED_DIRTY",
                                     .treatment_id = id,
                                     .item_id = item.id,
                                     .load_id = item.load_id,
                                     .detail = StrCat("item ", item.serial, " back from treatment ",
                                                      id, ": to be reprocessed"),
                                     .request_id = ctx.request_id,
                                     .before = "state=IN_USE",
                                     .after = "state=DIRTY"})
                    .status());
          }
        }
        RETURN_IF_ERROR(
            tx.AppendEvent(Event{.at = now,
                                 .actor = ctx.actor,
                                 .action = "TREATMENT_ENDED",
                                 .treatment_id = id,
                                 .detail = StrCat(detail.cartridges.size(), " cartridge(s) used, ",
                                                  undisposed, " not yet disposed"),
                                 .request_id = ctx.request_id,
                                 .before = "state=STARTED",
                                 .after = "state=ENDED"})
                .status());
        return detail;
      });
}

absl::StatusOr<Cartridge> CartridgeService::Open(const WriteContext& ctx, std::string_view barcode,
                                                 int64_t treatment_id) {
  const int year = absl::ToCivilYear(clock_->Now(), zone_).year();
  ASSIGN_OR_RETURN(Gs1Data unit, ParseUnitBarcode("barcode", barcode, year));
  if (treatment_id <= 0) {
    return InvalidField("treatment_id", "must be a positive treatment number");
  }
  std::string fingerprint = StrCat(unit.gtin, "|", unit.serial, "|", treatment_id);
  absl::StatusOr<Cartridge> opened = RunWrite<Cartridge>(
      ctx, "OpenCartridge", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<Cartridge> {
        ASSIGN_OR_RETURN(std::optional<Treatment> t, tx.cartridges().FindTreatment(treatment_id));
        if (!t.has_value()) {
          return MakeError(absl::StatusCode::kNotFound,
                           StrCat("treatment ", treatment_id, " does not exist"),
                           "TREATMENT_NOT_FOUND", {{"treatment", StrCat(treatment_id)}});
        }
        if (t->ended_at.has_value()) {
          return MakeError(absl::StatusCode::kFailedPrecondition,
                           StrCat("treatment ", treatment_id, " has ended; start a new one"),
                           "TREATMENT_ENDED",
                           {{"treatment", StrCat(treatment_id)}, {"when", Rfc3339(*t->ended_at)}});
        }
        ASSIGN_OR_RETURN(std::optional<Cartridge> c,
                         tx.cartridges().FindCartridge(unit.gtin, unit.serial));
        if (!c.has_value()) {
          return MakeError(
              absl::StatusCode::kNotFound,
              StrCat("cartridge ", unit.serial, " of ", unit.gtin, " is not in the clinic's stock"),
              "CARTRIDGE_NOT_IN_STOCK", {{"gtin", unit.gtin}, {"serial", unit.serial}});
        }
        RETURN_IF_ERROR(CheckOpenable(*c, now));
        // A scan whose lot or expiry disagrees with the stock record is not the unit we received.
        if (!unit.lot.empty() && unit.lot != c->lot.lot) {
          return MakeError(absl::StatusCode::kFailedPrecondition,
                           StrCat("barcode says lot ", unit.lot, " but unit ", unit.serial,
                                  " was received as lot ", c->lot.lot),
                           "LOT_MISMATCH",
                           {{"gtin", unit.gtin},
                            {"serial", unit.serial},
                            {"lot", c->lot.lot},
                            {"scanned_lot", unit.lot}});
        }
        if (unit.expiry.has_value() && *unit.expiry != c->lot.expiry) {
          return MakeError(absl::StatusCode::kFailedPrecondition,
                           StrCat("barcode says expiry ", Iso(*unit.expiry), " but lot ",
                                  c->lot.lot, " expires ", Iso(c->lot.expiry)),
                           "EXPIRY_CONFLICT",
                           {{"gtin", unit.gtin},
                            {"serial", unit.serial},
                            {"lot", c->lot.lot},
                            {"expiry", Iso(c->lot.expiry)},
                            {"scanned_expiry", Iso(*unit.expiry)}});
        }
        c->state = CartridgeState::kOpened;
        c->use =
            CartridgeUse{.treatment_id = treatment_id, .room = t->room, .at = now, .by = ctx.actor};
        RETURN_IF_ERROR(tx.cartridges().RecordUse(c->id, *c->use));
        RETURN_IF_ERROR(
            tx
                .AppendEvent(Event{
                    .at = now,
                    .actor = ctx.actor,
                    .action = "CARTRIDGE_OPENED",
                    .lot_id = c->lot.id,
                    .cartridge_id = c->id,
                    .treatment_id = treatment_id,
                    .detail = StrCat("opened for treatment ", treatment_id, " in room ", t->room),
                    .request_id = ctx.request_id,
                    .before = "state=RECEIVED",
                    .after = StrCat("state=OPENED treatment=", treatment_id, " room=", t->room)})
                .status());
        RETURN_IF_ERROR(
            core_internal::RecordParCrossing(tx, c->gtin, now, zone_, ctx,
                                             StrCat("cartridge ", c->serial, " was opened"),
                                             core_internal::StockChange::kDown)
                .status());
        Derive(*c, now);
        return *std::move(c);
      });
  if (!opened.ok() && IsRecordedRefusal(opened.status())) {
    absl::Status recorded =
        RecordRefusal(ctx, unit.gtin, unit.serial, unit.lot, treatment_id, opened.status());
    if (!recorded.ok()) {
      // The STOP stands as it is; only the missing evidence is made visible.
      std::optional<ErrorInfo> info = GetErrorInfo(opened.status());
      std::map<std::string, std::string> metadata;
      std::string reason = "REFUSED";
      if (info.has_value()) {
        metadata = std::move(info->metadata);
        if (!info->reason.empty()) reason = info->reason;
      }
      unrecorded_->Add({.at = clock_->Now(),
                        .actor = ctx.actor,
                        .gtin = unit.gtin,
                        .serial = unit.serial,
                        .treatment_id = treatment_id,
                        .reason = reason,
                        .error = std::string(recorded.message())});
      metadata["refusal_recorded"] = "false";
      return MakeError(opened.status().code(), std::string(opened.status().message()), reason,
                       std::move(metadata));
    }
  }
  return opened;
}

bool CartridgeService::IsRecordedRefusal(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kFailedPrecondition) return true;
  if (status.code() != absl::StatusCode::kNotFound) return false;
  std::optional<ErrorInfo> info = GetErrorInfo(status);
  return info.has_value() && info->reason == "CARTRIDGE_NOT_IN_STOCK";
}

absl::Status CartridgeService::RecordRefusal(const WriteContext& ctx, std::string_view gtin,
                                             std::string_view serial, std::string_view lot,
                                             int64_t treatment_id, const absl::Status& refusal) {
  std::optional<ErrorInfo> info = GetErrorInfo(refusal);
  const std::string reason =
      info.has_value() && !info->reason.empty() ? info->reason : std::string("REFUSED");
  auto record = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::unique_ptr<WriteTransaction> store_tx, store_->BeginWrite());
    core_internal::AuditedTransaction audited(*store_tx, *sha256_);
    core_internal::AuditedTransaction* tx = &audited;
    const absl::Time now = clock_->Now();
    Event event{
        .at = now,
        .actor = ctx.actor,
        .action = "CARTRIDGE_OPEN_REFUSED",
        .treatment_id = treatment_id,
        .detail = StrCat(reason, ": ", refusal.message(), " (unit ", serial, " of ", gtin, ")"),
        .after = StrCat("reason=", reason)};
    ASSIGN_OR_RETURN(std::optional<Cartridge> c, tx->cartridges().FindCartridge(gtin, serial));
    if (c.has_value()) {
      event.cartridge_id = c->id;
      event.lot_id = c->lot.id;
      event.before = StrCat("state=", CartridgeStateName(c->state));
    } else if (!lot.empty()) {
      ASSIGN_OR_RETURN(std::optional<Lot> l, tx->cartridges().FindLot(gtin, lot));
      if (l.has_value()) event.lot_id = l->id;
    }
    RETURN_IF_ERROR(tx->AppendEvent(event).status());
    RETURN_IF_ERROR(tx->Commit());
    if (commits_ != nullptr) commits_->Notify();
    return absl::OkStatus();
  };
  // A busy or briefly failing store gets a few immediate attempts: the nurse is waiting. Only a
  // failure that may pass is retried; anything else would fail the same way again.
  absl::Status recorded;
  for (int attempt = 0; attempt < kRefusalRecordAttempts; ++attempt) {
    recorded = record();
    if (recorded.ok() || !(absl::IsUnavailable(recorded) || absl::IsAborted(recorded) ||
                           absl::IsResourceExhausted(recorded))) {
      break;
    }
  }
  return recorded;
}

absl::StatusOr<Cartridge> CartridgeService::Dispose(const WriteContext& ctx,
                                                    std::string_view barcode,
                                                    std::string_view container_id) {
  const int year = absl::ToCivilYear(clock_->Now(), zone_).year();
  ASSIGN_OR_RETURN(Gs1Data unit, ParseUnitBarcode("barcode", barcode, year));
  RETURN_IF_ERROR(CheckText("container_id", container_id, kMaxNameLength));
  std::string fingerprint = StrCat(unit.gtin, "|", unit.serial, "|", container_id);
  return RunWrite<Cartridge>(
      ctx, "DisposeCartridge", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<Cartridge> {
        ASSIGN_OR_RETURN(std::optional<Cartridge> c,
                         tx.cartridges().FindCartridge(unit.gtin, unit.serial));
        if (!c.has_value()) {
          return MakeError(
              absl::StatusCode::kNotFound,
              StrCat("cartridge ", unit.serial, " of ", unit.gtin, " is not in the clinic's stock"),
              "CARTRIDGE_NOT_IN_STOCK", {{"gtin", unit.gtin}, {"serial", unit.serial}});
        }
        if (c->state == CartridgeState::kReceived) {
          return MakeError(absl::StatusCode::kFailedPrecondition,
                           "cartridge was never opened: write an unused unit off with discard, "
                           "not dispose",
                           "CARTRIDGE_NOT_OPENED", {{"gtin", unit.gtin}, {"serial", unit.serial}});
        }
        if (c->state != CartridgeState::kOpened) return CheckOpenable(*c, now);
        c->state = CartridgeState::kDisposed;
        c->disposal =
            Disposal{.container_id = std::string(container_id), .at = now, .by = ctx.actor};
        RETURN_IF_ERROR(tx.cartridges().RecordDisposal(c->id, *c->disposal));
        RETURN_IF_ERROR(
            tx.AppendEvent(Event{.at = now,
                                 .actor = ctx.actor,
                                 .action = "CARTRIDGE_DISPOSED",
                                 .lot_id = c->lot.id,
                                 .cartridge_id = c->id,
                                 .treatment_id = c->use ? c->use->treatment_id : 0,
                                 .detail = StrCat("disposed in sharps container ", container_id),
                                 .request_id = ctx.request_id,
                                 .before = StrCat("state=OPENED treatment=",
                                                  c->use ? c->use->treatment_id : 0),
                                 .after = StrCat("state=DISPOSED container=", container_id)})
                .status());
        Derive(*c, now);
        return *std::move(c);
      });
}

}  // namespace steritrack
