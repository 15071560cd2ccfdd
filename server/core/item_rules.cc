// SterilizationService, items (rule 5): create, pack, use, retire; reads of one item.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/core/sterilization_rules.h"
#include "server/core/sterilization_service.h"

namespace steritrack {

// This layer's own helpers (server/core/sterilization_rules.h).
using namespace sterilization_rules;  // NOLINT(build/namespaces)

// ---------------------------------------------------------------------------------------------------
// Items

absl::StatusOr<ReusableItem> SterilizationService::CreateItem(const WriteContext& ctx,
                                                              const NewItem& item) {
  RETURN_IF_ERROR(CheckSerial("serial", item.serial));
  RETURN_IF_ERROR(CheckText("type", item.type, kMaxItemTypeLength));
  if (item.ifu_max_cycles < 1 || item.ifu_max_cycles > kMaxIfuCycles) {
    return InvalidField("ifu_max_cycles", StrCat("must be 1..", kMaxIfuCycles));
  }
  const std::string due =
      item.maintenance_due ? absl::FormatCivilTime(*item.maintenance_due) : std::string();
  std::string fingerprint = StrCat(item.serial, "|", item.type, "|", item.ifu_max_cycles, "|", due);
  return RunIdempotentWrite<ReusableItem>(
      *store_, *clock_, *sha256_, commits_, ctx, "CreateItem", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<ReusableItem> {
        ASSIGN_OR_RETURN(std::optional<ReusableItem> existing,
                         tx.sterilization().FindItem(item.serial));
        if (existing.has_value()) {
          return MakeError(absl::StatusCode::kAlreadyExists,
                           StrCat("item ", item.serial, " already exists"), "ITEM_EXISTS",
                           ItemFacts(*existing));
        }
        ReusableItem created{.serial = item.serial,
                             .type = item.type,
                             .ifu_max_cycles = item.ifu_max_cycles,
                             .maintenance_due = item.maintenance_due,
                             .state = ItemState::kDirty,
                             .created_at = now};
        ASSIGN_OR_RETURN(created.id, tx.sterilization().InsertItem(created));
        RETURN_IF_ERROR(Append(tx, ctx, now, "ITEM_CREATED", {.item_id = created.id},
                               StrCat("item ", created.serial, " (", created.type, "), IFU max ",
                                      created.ifu_max_cycles, " cycles"),
                               Change{"", "state=DIRTY cycles=0"}));
        return created;
      });
}

absl::StatusOr<ReusableItem> SterilizationService::PackItem(const WriteContext& ctx,
                                                            std::string_view serial) {
  RETURN_IF_ERROR(CheckSerial("serial", serial));
  return RunIdempotentWrite<ReusableItem>(
      *store_, *clock_, *sha256_, commits_, ctx, "PackItem", serial,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<ReusableItem> {
        ASSIGN_OR_RETURN(ReusableItem item, MustFindItem(tx, serial));
        switch (item.state) {
          case ItemState::kDirty:
          case ItemState::kInUse:
          // Reprocessing: a pack whose shelf life ran out or was opened, or an item from a load
          // that was quarantined or recalled, goes round again.
          case ItemState::kSterile:
          case ItemState::kQuarantined:
            break;
          case ItemState::kPacked:
            return Refused("ITEM_ALREADY_PACKED", StrCat("item ", serial, " is already packed"),
                           ItemFacts(item));
          case ItemState::kInLoad: {
            std::map<std::string, std::string> facts = ItemFacts(item);
            facts["load"] = StrCat(item.load_id);
            return Refused("ITEM_IN_OPEN_LOAD",
                           StrCat("item ", serial, " is in load ", item.load_id,
                                  ", which is not released yet"),
                           std::move(facts));
          }
          case ItemState::kOutOfService:
            return Refused("ITEM_OUT_OF_SERVICE",
                           StrCat("item ", serial, " is out of service: ", item.state_reason),
                           Merge(ItemFacts(item), std::map<std::string, std::string>{
                                                      {"reason", item.state_reason}}));
          case ItemState::kRetired:
            return Refused(
                "ITEM_RETIRED", StrCat("item ", serial, " is retired: ", item.state_reason),
                Merge(ItemFacts(item),
                      std::map<std::string, std::string>{{"reason", item.state_reason}}));
        }
        const ItemState before = item.state;
        const int64_t treatment_id = item.treatment_id;
        item.state = ItemState::kPacked;
        item.treatment_id = 0;
        item.sterile_until = absl::InfinitePast();
        item.state_reason.clear();
        RETURN_IF_ERROR(tx.sterilization().UpdateItem(item));
        RETURN_IF_ERROR(
            Append(tx, ctx, now, "ITEM_PACKED", {.treatment_id = treatment_id, .item_id = item.id},
                   StrCat("item ", item.serial, " packed (was ", ItemStateName(before), ")"),
                   Change{StrCat("state=", ItemStateName(before)), "state=PACKED"}));
        return item;
      });
}

absl::StatusOr<ReusableItem> SterilizationService::UseItem(const WriteContext& ctx,
                                                           std::string_view serial_or_label,
                                                           int64_t treatment_id) {
  const int year = absl::ToCivilYear(clock_->Now(), zone_).year();
  ASSIGN_OR_RETURN(ItemScan scan, ItemScanFrom("serial", serial_or_label, year));
  const std::string& serial = scan.serial;
  if (treatment_id <= 0) {
    return InvalidField("treatment_id", "must be a positive treatment number");
  }
  // The label is part of the request: a retry must present the same pack.
  std::string fingerprint = StrCat(serial, "|", treatment_id);
  if (scan.is_label) {
    StrAppend(&fingerprint, "|label=", scan.label_lot, "|",
              scan.label_load_day ? absl::FormatCivilTime(*scan.label_load_day) : "");
  }
  return RunIdempotentWrite<ReusableItem>(
      *store_, *clock_, *sha256_, commits_, ctx, "UseItem", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<ReusableItem> {
        ASSIGN_OR_RETURN(std::optional<Treatment> t, tx.cartridges().FindTreatment(treatment_id));
        if (!t.has_value()) return TreatmentNotFound(treatment_id);
        if (t->ended_at.has_value()) {
          return Refused("TREATMENT_ENDED",
                         StrCat("treatment ", treatment_id, " has ended; start a new one"),
                         {{"treatment", StrCat(treatment_id)}, {"when", Rfc3339(*t->ended_at)}});
        }
        ASSIGN_OR_RETURN(ReusableItem item, MustFindItem(tx, serial));
        RETURN_IF_ERROR(CheckPackLabel(tx, item, scan, zone_));
        RETURN_IF_ERROR(CheckUsable(tx, item, now, zone_));
        item.state = ItemState::kInUse;
        item.treatment_id = treatment_id;
        RETURN_IF_ERROR(tx.sterilization().UpdateItem(item));
        RETURN_IF_ERROR(tx.sterilization().RecordItemUse(ItemUse{.item_id = item.id,
                                                                 .treatment_id = treatment_id,
                                                                 .load_id = item.load_id,
                                                                 .at = now,
                                                                 .by = ctx.actor}));
        RETURN_IF_ERROR(Append(
            tx, ctx, now, "ITEM_USED",
            {.treatment_id = treatment_id, .item_id = item.id, .load_id = item.load_id},
            StrCat("item ", item.serial, " used in treatment ", treatment_id, " in room ", t->room),
            Change{"state=STERILE",
                   StrCat("state=IN_USE treatment=", treatment_id, " room=", t->room)}));
        return item;
      });
}

absl::StatusOr<ReusableItem> SterilizationService::RetireItem(const WriteContext& ctx,
                                                              std::string_view serial,
                                                              std::string_view reason) {
  RETURN_IF_ERROR(CheckSerial("serial", serial));
  RETURN_IF_ERROR(CheckText("reason", reason, kMaxReasonLength));
  std::string fingerprint = StrCat(serial, "|", reason);
  return RunIdempotentWrite<ReusableItem>(
      *store_, *clock_, *sha256_, commits_, ctx, "RetireItem", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<ReusableItem> {
        ASSIGN_OR_RETURN(ReusableItem item, MustFindItem(tx, serial));
        if (item.state == ItemState::kRetired) {
          return Refused("ITEM_RETIRED",
                         StrCat("item ", serial, " is already retired: ", item.state_reason),
                         Merge(ItemFacts(item),
                               std::map<std::string, std::string>{{"reason", item.state_reason}}));
        }
        // Its load's record lists it; it leaves when the load is done.
        ASSIGN_OR_RETURN(std::optional<int64_t> open_load,
                         tx.sterilization().FindOpenLoadOfItem(item.id));
        if (open_load.has_value()) {
          return Refused(
              "ITEM_IN_OPEN_LOAD",
              StrCat("item ", serial, " is in load ", *open_load, ", which is not released yet"),
              Merge(ItemFacts(item),
                    std::map<std::string, std::string>{{"load", StrCat(*open_load)}}));
        }
        const ItemState before = item.state;
        const int64_t treatment_id = item.treatment_id;
        item.state = ItemState::kRetired;
        item.state_reason = std::string(reason);
        item.treatment_id = 0;
        item.sterile_until = absl::InfinitePast();
        RETURN_IF_ERROR(tx.sterilization().UpdateItem(item));
        RETURN_IF_ERROR(Append(
            tx, ctx, now, "ITEM_RETIRED", {.treatment_id = treatment_id, .item_id = item.id},
            StrCat("item ", serial, " retired (was ", ItemStateName(before), "): ", reason)));
        return item;
      });
}

}  // namespace steritrack
