// Helpers shared by the sterilisation rules (rules 5-8): limits, field checks, wording of refusals,
// reads and audited writes inside a transaction. Internal to server/core, included only by
// sterilization_service.cc, item_rules.cc, load_rules.cc and look_back.cc. Pure functions over the
// transaction they are given.
#ifndef STERITRACK_SERVER_CORE_STERILIZATION_RULES_H_
#define STERITRACK_SERVER_CORE_STERILIZATION_RULES_H_

#ifndef STERITRACK_CORE_IMPLEMENTATION
#error \
    "server/core/sterilization_rules.h is internal to server/core: include it only from there (see server/CMakeLists.txt)"
#endif

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "server/core/result_codec.h"
#include "server/core/sterilization_service.h"
#include "server/core/write_helper.h"
#include "steritrack/error.h"
#include "steritrack/gs1.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack::sterilization_rules {

using core_internal::AllEvents;
using core_internal::AuditedTransaction;
using core_internal::BarcodeInvalid;
using core_internal::CheckText;
using core_internal::MakePage;
using core_internal::PageAfter;
using core_internal::PageSize;
using core_internal::Rfc3339;
using core_internal::RunIdempotentWrite;

// Limits. A steriliser name plus '-' plus a cycle number must fit GS1 AI 10 (20 characters) on
// the pack label: 12 + 1 + 7.
inline constexpr size_t kMaxSerialLength = 20;
inline constexpr size_t kMaxItemTypeLength = 64;
inline constexpr size_t kMaxSterilizerNameLength = 12;
inline constexpr size_t kMaxCycleTypeLength = 32;
inline constexpr int32_t kMaxIfuCycles = 100000;
inline constexpr int64_t kMaxCycleNumber = 9999999;
inline constexpr int32_t kDefaultShelfLifeDays = 30;
inline constexpr int32_t kMaxShelfLifeDays = 3650;
inline constexpr int32_t kMaxExposureSeconds = 7200;
inline constexpr double kMinSteamTemperatureC = 100;
inline constexpr double kMaxSteamTemperatureC = 140;
inline constexpr double kMinPressureKpa = 50;
inline constexpr double kMaxPressureKpa = 400;
inline constexpr size_t kMaxBiProductLength = 64;
inline constexpr size_t kMaxBiLotLength = 20;
inline constexpr size_t kMaxItemsPerLoad = 1000;
inline constexpr size_t kMaxScanLength = 512;
inline constexpr int32_t kNegativeTestsToReturn = 3;
// A steriliser's printout and the server's clock may disagree by a little; a cycle that ends
// further in the future than this did not happen.
inline constexpr absl::Duration kClockTolerance = absl::Minutes(5);
inline constexpr int kBatch = 500;

// ---- field checks

// GS1 character set 82: !"%&'()*+,-./0-9:;<=>?A-Z_a-z
inline bool IsGs1Set82(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return true;
  return std::string_view("!\"%&'()*+,-./:;<=>?_").find(c) != std::string_view::npos;
}

inline absl::Status CheckSerial(std::string_view field, std::string_view serial) {
  if (serial.empty()) return InvalidField(field, "is required");
  if (serial.size() > kMaxSerialLength) {
    return InvalidField(
        field, StrCat("is ", serial.size(), " characters, at most ", kMaxSerialLength, " allowed"));
  }
  for (char c : serial) {
    if (!IsGs1Set82(c)) {
      return InvalidField(field,
                          "may hold only GS1 characters (A-Z a-z 0-9 and !\"%&'()*+,-./:;<=>?_)");
    }
  }
  return absl::OkStatus();
}

inline absl::Status CheckSterilizerName(std::string_view field, std::string_view name) {
  if (name.empty()) return InvalidField(field, "is required");
  if (name.size() > kMaxSterilizerNameLength) {
    return InvalidField(field, StrCat("is ", name.size(), " characters, at most ",
                                      kMaxSterilizerNameLength, " allowed"));
  }
  for (char c : name) {
    const bool ok =
        (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-';
    if (!ok) return InvalidField(field, "may hold only letters, digits and '-'");
  }
  return absl::OkStatus();
}

inline bool Known(IndicatorResult r) {
  return r == IndicatorResult::kPass || r == IndicatorResult::kFail;
}
inline bool Known(BiResult r) { return r == BiResult::kNegative || r == BiResult::kPositive; }
inline bool Known(SterilizerType t) {
  return t == SterilizerType::kPreVacuum || t == SterilizerType::kGravity;
}

// A time the client must supply: the Unix epoch is what an unset field arrives as.
inline bool IsSet(absl::Time t) { return t > absl::UnixEpoch() && t != absl::InfiniteFuture(); }

inline std::string Num(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : std::string("?");
}

inline std::string Micros(absl::Time t) { return StrCat(absl::ToUnixMicros(t)); }

// ---- results

// A BI proves the cycle killed the spores only when it did not grow and its control did.
inline bool IsValidNegative(const BiologicalIndicator& bi) {
  return bi.result == BiResult::kNegative && IsBiReadingValid(bi);
}
// A growing BI is positive whatever its control says.
inline bool IsPositive(const BiologicalIndicator& bi) { return bi.result == BiResult::kPositive; }

inline bool SameBi(const BiologicalIndicator& a, const BiologicalIndicator& b) {
  return a.product == b.product && a.lot == b.lot && a.result == b.result &&
         a.control_result == b.control_result;
}

inline bool SameParameters(const CycleParameters& a, const CycleParameters& b) {
  return a.started_at == b.started_at && a.ended_at == b.ended_at &&
         a.exposure_seconds == b.exposure_seconds && a.temperature_c == b.temperature_c &&
         a.pressure_kpa == b.pressure_kpa && a.passed == b.passed;
}

// ---- wording and errors

inline std::string LoadText(const Load& load) {
  return StrCat(load.sterilizer_name, " cycle ", load.cycle_number, " (load ", load.id, ")");
}

inline std::map<std::string, std::string> LoadFacts(const Load& load) {
  return {{"load", StrCat(load.id)},
          {"sterilizer", load.sterilizer_name},
          {"cycle_number", StrCat(load.cycle_number)},
          {"release_state", std::string(ReleaseStateName(load.release_state))}};
}

inline std::map<std::string, std::string> ItemFacts(const ReusableItem& item) {
  return {{"serial", item.serial}, {"state", std::string(ItemStateName(item.state))}};
}

template <typename... Maps>
inline std::map<std::string, std::string> Merge(std::map<std::string, std::string> first,
                                                const Maps&... more) {
  (first.insert(more.begin(), more.end()), ...);
  return first;
}

inline absl::Status Refused(std::string_view reason, std::string_view message,
                            std::map<std::string, std::string> metadata) {
  return MakeError(absl::StatusCode::kFailedPrecondition, message, reason, std::move(metadata));
}

inline absl::Status ItemNotFound(std::string_view serial) {
  return MakeError(absl::StatusCode::kNotFound, StrCat("item ", serial, " is not known"),
                   "ITEM_NOT_FOUND", {{"serial", std::string(serial)}});
}

inline absl::Status SterilizerNotFound(std::string_view name) {
  return MakeError(absl::StatusCode::kNotFound, StrCat("steriliser ", name, " is not known"),
                   "STERILIZER_NOT_FOUND", {{"sterilizer", std::string(name)}});
}

inline absl::Status LoadNotFound(int64_t id) {
  return MakeError(absl::StatusCode::kNotFound, StrCat("load ", id, " does not exist"),
                   "LOAD_NOT_FOUND", {{"load", StrCat(id)}});
}

inline absl::Status TreatmentNotFound(int64_t id) {
  return MakeError(absl::StatusCode::kNotFound, StrCat("treatment ", id, " does not exist"),
                   "TREATMENT_NOT_FOUND", {{"treatment", StrCat(id)}});
}

inline absl::Status CheckLoadId(int64_t id) {
  if (id <= 0) return InvalidField("load_id", "must be a positive load number");
  return absl::OkStatus();
}

// What a scan of an item names: the serial, and for a pack label the load it claims (AI 10 and 11).
struct ItemScan {
  std::string serial;
  bool is_label = false;
  std::string label_lot;                         // "<steriliser>-<cycle number>"; empty: none
  std::optional<absl::CivilDay> label_load_day;  // AI 11
};

// The item named by `input`: the serial itself, or a scan of the pack's lot-control label
// (GS1 AI 8004 is the item; see ItemLabel).
inline absl::StatusOr<ItemScan> ItemScanFrom(std::string_view field, std::string_view input,
                                             int current_year) {
  if (input.empty()) return InvalidField(field, "is required");
  if (input.size() > kMaxScanLength) {
    return InvalidField(
        field, StrCat("is ", input.size(), " characters, at most ", kMaxScanLength, " allowed"));
  }
  const bool looks_scanned = input.front() == '(' || input.front() == ']' ||
                             input.find(kGs1Separator) != std::string_view::npos ||
                             input.substr(0, 4) == "http" || input.substr(0, 4) == "HTTP";
  if (looks_scanned) {
    absl::StatusOr<Gs1Data> data = ParseGs1(input, current_year);
    if (data.ok()) {
      for (const Gs1Element& element : data->elements) {
        if (element.ai != "8004") continue;
        RETURN_IF_ERROR(CheckSerial(field, element.value));
        return ItemScan{.serial = element.value,
                        .is_label = true,
                        .label_lot = data->lot,
                        .label_load_day = data->produced};
      }
      return MakeError(absl::StatusCode::kInvalidArgument,
                       StrCat(field,
                              ": is a GS1 barcode but not an item label: it has no "
                              "individual asset ID (8004)"),
                       "BARCODE_INVALID",
                       {{"field", std::string(field)},
                        {"why", "not an item label: no individual asset ID (8004)"}});
    }
    // '(' and ']' are legal in a serial too: only an input that is no serial is a bad scan.
    if (!CheckSerial(field, input).ok()) {
      return BarcodeInvalid(field, data.status(), "item label");
    }
  }
  RETURN_IF_ERROR(CheckSerial(field, input));
  return ItemScan{.serial = std::string(input)};
}

inline absl::StatusOr<std::string> ItemSerialFrom(std::string_view field, std::string_view input,
                                                  int current_year) {
  ASSIGN_OR_RETURN(ItemScan scan, ItemScanFrom(field, input, current_year));
  return std::move(scan.serial);
}

// ---- reads inside a transaction

inline absl::StatusOr<ReusableItem> MustFindItem(ReadTransaction& tx, std::string_view serial) {
  ASSIGN_OR_RETURN(std::optional<ReusableItem> item, tx.sterilization().FindItem(serial));
  if (!item.has_value()) return ItemNotFound(serial);
  return *std::move(item);
}

inline absl::StatusOr<Sterilizer> MustFindSterilizer(ReadTransaction& tx, std::string_view name) {
  ASSIGN_OR_RETURN(std::optional<Sterilizer> s, tx.sterilization().FindSterilizer(name));
  if (!s.has_value()) return SterilizerNotFound(name);
  return *std::move(s);
}

inline absl::StatusOr<Load> MustFindLoad(ReadTransaction& tx, int64_t id) {
  ASSIGN_OR_RETURN(std::optional<Load> load, tx.sterilization().FindLoad(id));
  if (!load.has_value()) return LoadNotFound(id);
  return *std::move(load);
}

inline absl::StatusOr<Sterilizer> MustFindSterilizerById(ReadTransaction& tx, int64_t id) {
  ASSIGN_OR_RETURN(std::optional<Sterilizer> s, tx.sterilization().FindSterilizerById(id));
  if (!s.has_value()) return absl::DataLossError(StrCat("load refers to missing steriliser ", id));
  return *std::move(s);
}

// Every load of a steriliser, by cycle number.
inline absl::StatusOr<std::vector<Load>> AllLoadsOf(ReadTransaction& tx, int64_t sterilizer_id) {
  std::vector<Load> all;
  int64_t after_cycle = 0;
  while (true) {
    ASSIGN_OR_RETURN(
        std::vector<Load> batch,
        tx.sterilization().ListLoads(
            {.sterilizer_id = sterilizer_id, .after_cycle_number = after_cycle, .limit = kBatch}));
    if (batch.empty()) break;
    after_cycle = batch.back().cycle_number;
    const size_t n = batch.size();
    all.insert(all.end(), std::make_move_iterator(batch.begin()),
               std::make_move_iterator(batch.end()));
    if (static_cast<int>(n) < kBatch) break;
  }
  return all;
}

// Rule 7: the loads a positive BI on `positive` puts in doubt, as things stood at `as_of` (when the
// BI was read): every load of the steriliser after the latest one with a valid negative BI (all of
// them if there is none), and the positive load itself. Evaluating at `as_of` gives the same answer
// when the look-back is asked for again later, after newer loads and BIs.
inline std::vector<Load> AffectedLoads(const std::vector<Load>& all, int64_t positive_id,
                                       absl::Time as_of) {
  int64_t last_negative = 0;
  for (const Load& l : all) {
    if (l.id == positive_id || l.created_at > as_of || !l.bi.has_value()) continue;
    if (IsValidNegative(*l.bi) && l.bi->read_at <= as_of) {
      last_negative = std::max(last_negative, l.cycle_number);
    }
  }
  std::vector<Load> affected;
  for (const Load& l : all) {
    if (l.id == positive_id || (l.created_at <= as_of && l.cycle_number > last_negative)) {
      affected.push_back(l);
    }
  }
  return affected;
}

// Who was touched by `loads`: every recorded use of an item that one of them made sterile.
inline absl::StatusOr<std::vector<LookBackEntry>> LookBackEntries(ReadTransaction& tx,
                                                                  const std::vector<Load>& loads) {
  std::vector<LookBackEntry> entries;
  std::map<int64_t, std::string> serials;
  for (const Load& load : loads) {
    ASSIGN_OR_RETURN(std::vector<ItemUse> uses,
                     tx.sterilization().ListItemUses({.load_id = load.id}));
    for (const ItemUse& use : uses) {
      auto it = serials.find(use.item_id);
      if (it == serials.end()) {
        ASSIGN_OR_RETURN(std::optional<ReusableItem> item,
                         tx.sterilization().FindItemById(use.item_id));
        it = serials.emplace(use.item_id, item ? item->serial : std::string()).first;
      }
      ASSIGN_OR_RETURN(std::optional<Treatment> treatment,
                       tx.cartridges().FindTreatment(use.treatment_id));
      if (!treatment.has_value()) {
        return absl::DataLossError(
            StrCat("item use refers to missing treatment ", use.treatment_id));
      }
      entries.push_back(LookBackEntry{.load_id = load.id,
                                      .item_serial = it->second,
                                      .treatment = *std::move(treatment),
                                      .used_at = use.at});
    }
  }
  return entries;
}

inline absl::StatusOr<bool> BowieDickPassedOn(ReadTransaction& tx, const Sterilizer& sterilizer,
                                              absl::CivilDay day);

// The look-back for one load: after a positive BI every load it put in doubt and the steriliser
// (with whether it passed a Bowie-Dick test `today`), otherwise the load alone.
inline absl::StatusOr<LookBack> LookBackFor(ReadTransaction& tx, const Load& load,
                                            absl::CivilDay today) {
  LookBack look_back;
  if (load.bi.has_value() && IsPositive(*load.bi)) {
    ASSIGN_OR_RETURN(std::vector<Load> all, AllLoadsOf(tx, load.sterilizer_id));
    look_back.loads = AffectedLoads(all, load.id, load.bi->read_at);
    ASSIGN_OR_RETURN(look_back.sterilizer, MustFindSterilizerById(tx, load.sterilizer_id));
    ASSIGN_OR_RETURN(look_back.bowie_dick_passed_today,
                     BowieDickPassedOn(tx, *look_back.sterilizer, today));
  } else {
    look_back.loads = {load};
  }
  ASSIGN_OR_RETURN(look_back.entries, LookBackEntries(tx, look_back.loads));
  return look_back;
}

// True when the steriliser may run a load on `day`: gravity always; pre-vacuum when the latest
// Bowie-Dick test of that day passed.
inline absl::StatusOr<bool> BowieDickPassedOn(ReadTransaction& tx, const Sterilizer& sterilizer,
                                              absl::CivilDay day) {
  if (sterilizer.type == SterilizerType::kGravity) return true;
  ASSIGN_OR_RETURN(std::vector<BowieDickTest> tests,
                   tx.sterilization().ListBowieDickTests(sterilizer.id, day));
  if (tests.empty()) return false;
  const BowieDickTest& latest = *std::max_element(
      tests.begin(), tests.end(), [](const BowieDickTest& a, const BowieDickTest& b) {
        return a.at != b.at ? a.at < b.at : a.id < b.id;
      });
  return latest.result == IndicatorResult::kPass;
}

// Up to limit + 1 sterilisers after id `after` that pass the filters. A clinic has a handful of
// sterilisers: filter here, reading on until the page is full.
inline absl::StatusOr<std::vector<Sterilizer>> MatchingSterilizers(
    ReadTransaction& tx, int64_t after, int limit, std::optional<SterilizerType> type,
    bool out_of_service_only) {
  std::vector<Sterilizer> matching;
  while (static_cast<int>(matching.size()) <= limit) {
    ASSIGN_OR_RETURN(std::vector<Sterilizer> batch,
                     tx.sterilization().ListSterilizers(after, limit + 1));
    if (batch.empty()) break;
    after = batch.back().id;
    for (Sterilizer& s : batch) {
      if ((!type || s.type == *type) && (!out_of_service_only || !s.in_service)) {
        matching.push_back(std::move(s));
      }
    }
  }
  return matching;
}

// ---- writes inside a transaction

struct EventIds {
  int64_t treatment_id = 0;
  int64_t item_id = 0;
  int64_t load_id = 0;
  int64_t sterilizer_id = 0;
};

// The audit trail's before/after snapshot of the record's state (rule 9).
struct Change {
  std::string before;
  std::string after;
};

inline absl::Status Append(AuditedTransaction& tx, const WriteContext& ctx, absl::Time now,
                           std::string_view action, EventIds ids, std::string detail,
                           Change change = {}) {
  return tx
      .AppendEvent(Event{.at = now,
                         .actor = ctx.actor,
                         .action = std::string(action),
                         .treatment_id = ids.treatment_id,
                         .item_id = ids.item_id,
                         .load_id = ids.load_id,
                         .sterilizer_id = ids.sterilizer_id,
                         .detail = std::move(detail),
                         .request_id = ctx.request_id,
                         .before = std::move(change.before),
                         .after = std::move(change.after)})
      .status();
}

// Items of `load` still carrying it (in `states`) become QUARANTINED for `why`.
inline absl::Status QuarantineItemsOf(AuditedTransaction& tx, const WriteContext& ctx,
                                      absl::Time now, const Load& load,
                                      std::initializer_list<ItemState> states,
                                      std::string_view why) {
  for (int64_t item_id : load.item_ids) {
    ASSIGN_OR_RETURN(std::optional<ReusableItem> item, tx.sterilization().FindItemById(item_id));
    if (!item.has_value() || item->load_id != load.id) continue;
    if (std::find(states.begin(), states.end(), item->state) == states.end()) continue;
    const ItemState before = item->state;
    item->state = ItemState::kQuarantined;
    item->state_reason = std::string(why);
    item->sterile_until = absl::InfinitePast();
    RETURN_IF_ERROR(tx.sterilization().UpdateItem(*item));
    RETURN_IF_ERROR(Append(
        tx, ctx, now, "ITEM_QUARANTINED",
        {.item_id = item->id, .load_id = load.id, .sterilizer_id = load.sterilizer_id},
        StrCat("item ", item->serial, " quarantined (was ", ItemStateName(before), "): ", why)));
  }
  return absl::OkStatus();
}

// Rule 5: why `item` may not be used now, if it may not.
inline absl::Status CheckUsable(ReadTransaction& tx, const ReusableItem& item, absl::Time now,
                                absl::TimeZone zone) {
  const std::map<std::string, std::string> facts = ItemFacts(item);
  if (item.state == ItemState::kQuarantined) {
    return Refused(
        "ITEM_QUARANTINED", StrCat("item ", item.serial, " is quarantined: ", item.state_reason),
        Merge(facts, std::map<std::string, std::string>{{"reason", item.state_reason},
                                                        {"load", StrCat(item.load_id)}}));
  }
  ASSIGN_OR_RETURN(std::optional<int64_t> open_load,
                   tx.sterilization().FindOpenLoadOfItem(item.id));
  if (open_load.has_value() || item.state == ItemState::kInLoad) {
    const int64_t load_id = open_load.value_or(item.load_id);
    return Refused(
        "ITEM_IN_OPEN_LOAD",
        StrCat("item ", item.serial, " is in load ", load_id, ", which is not released yet"),
        Merge(facts, std::map<std::string, std::string>{{"load", StrCat(load_id)}}));
  }
  if (item.state != ItemState::kSterile) {
    std::map<std::string, std::string> more;
    std::string why;
    if (item.state == ItemState::kInUse) {
      more["treatment"] = StrCat(item.treatment_id);
      why = StrCat(": in use in treatment ", item.treatment_id);
    } else if (!item.state_reason.empty()) {
      more["reason"] = item.state_reason;
      why = StrCat(": ", item.state_reason);
    }
    return Refused(
        "ITEM_NOT_STERILE",
        StrCat("item ", item.serial, " is not sterile (", ItemStateName(item.state), ")", why),
        Merge(facts, more));
  }
  // Its last reprocessing must be a released load (the states above normally guarantee it; this
  // also holds against a store changed behind core's back).
  std::optional<Load> load;
  if (item.load_id != 0) {
    ASSIGN_OR_RETURN(load, tx.sterilization().FindLoad(item.load_id));
  }
  if (!load.has_value() || load->release_state != ReleaseState::kReleased) {
    std::map<std::string, std::string> more = {{"load", StrCat(item.load_id)}};
    if (load.has_value()) more = Merge(LoadFacts(*load));
    return Refused("ITEM_LOAD_NOT_RELEASED",
                   StrCat("item ", item.serial, "'s last load ",
                          load ? LoadText(*load) : StrCat(item.load_id), " is not released",
                          load ? StrCat(" (", ReleaseStateName(load->release_state), ")") : ""),
                   Merge(facts, more));
  }
  if (now >= item.sterile_until) {
    return Refused(
        "ITEM_SHELF_LIFE_EXPIRED",
        StrCat("item ", item.serial, "'s pack was sterile until ",
               absl::FormatTime("%Y-%m-%d %H:%M", item.sterile_until, zone), ": reprocess it"),
        Merge(facts,
              std::map<std::string, std::string>{{"sterile_until", Rfc3339(item.sterile_until)},
                                                 {"load", StrCat(item.load_id)}}));
  }
  // Rated for N cycles, it may be used after each of its N loads (CreateLoad refuses the N+1-th);
  // more than N can only come from a store changed behind core's back.
  if (item.cycles > item.ifu_max_cycles) {
    return Refused(
        "ITEM_CYCLE_LIMIT_REACHED",
        StrCat("item ", item.serial, " went through ", item.cycles,
               " reprocessing cycles, more than its IFU maximum of ", item.ifu_max_cycles),
        Merge(facts,
              std::map<std::string, std::string>{{"cycles", StrCat(item.cycles)},
                                                 {"ifu_max_cycles", StrCat(item.ifu_max_cycles)}}));
  }
  if (item.maintenance_due.has_value() && absl::ToCivilDay(now, zone) > *item.maintenance_due) {
    const std::string due = absl::FormatCivilTime(*item.maintenance_due);
    return Refused("ITEM_MAINTENANCE_OVERDUE",
                   StrCat("item ", item.serial, "'s maintenance was due on ", due),
                   Merge(facts, std::map<std::string, std::string>{{"maintenance_due", due}}));
  }
  return absl::OkStatus();
}

// Rule 5: a scanned pack label is the pack. It must name the load that last made `item` sterile
// (steriliser, cycle number and the load's day); a label of an earlier load of the same item is an
// old pack, and one naming no load of this item is not ours.
inline absl::Status CheckPackLabel(ReadTransaction& tx, const ReusableItem& item,
                                   const ItemScan& scan, absl::TimeZone zone) {
  if (!scan.is_label) return absl::OkStatus();
  std::map<std::string, std::string> facts =
      Merge(ItemFacts(item), std::map<std::string, std::string>{{"label_lot", scan.label_lot},
                                                                {"load", StrCat(item.load_id)}});
  if (scan.label_load_day) facts["label_day"] = absl::FormatCivilTime(*scan.label_load_day);
  auto unknown = [&](std::string_view why) {
    return Refused("PACK_LABEL_UNKNOWN_LOAD",
                   StrCat("the label of item ", item.serial, " names no load of it (", why,
                          "): do not use this pack"),
                   facts);
  };
  const size_t dash = scan.label_lot.rfind('-');
  int64_t cycle = 0;
  const char* const end = scan.label_lot.data() + scan.label_lot.size();
  if (dash == std::string::npos || !scan.label_load_day.has_value() ||
      std::from_chars(scan.label_lot.data() + dash + 1, end, cycle).ptr != end || cycle <= 0) {
    return unknown("no steriliser cycle and day on it");
  }
  const std::string sterilizer_name = scan.label_lot.substr(0, dash);
  ASSIGN_OR_RETURN(std::optional<Sterilizer> s, tx.sterilization().FindSterilizer(sterilizer_name));
  if (!s.has_value()) return unknown(StrCat("steriliser ", sterilizer_name, " is not known"));
  ASSIGN_OR_RETURN(std::optional<Load> load, tx.sterilization().FindLoadByCycle(s->id, cycle));
  if (!load.has_value() || absl::ToCivilDay(load->created_at, zone) != *scan.label_load_day ||
      std::find(load->item_ids.begin(), load->item_ids.end(), item.id) == load->item_ids.end()) {
    return unknown(StrCat("no load ", scan.label_lot, " of ",
                          absl::FormatCivilTime(*scan.label_load_day), " held it"));
  }
  if (load->id != item.load_id) {
    facts["label_load"] = StrCat(load->id);
    return Refused("PACK_LABEL_NOT_CURRENT",
                   StrCat("the label is from ", LoadText(*load), ", but item ", item.serial,
                          " was reprocessed since (last load ", item.load_id,
                          "): this is not its current pack"),
                   std::move(facts));
  }
  return absl::OkStatus();
}

// Rule 6: why `load` may not be released, if it may not.
inline absl::Status CheckReleasable(const Load& load) {
  const std::vector<LoadFinding> findings = LoadReleaseFindings(load);
  if (findings.empty()) return absl::OkStatus();
  return Refused(findings.front().reason, findings.front().message, findings.front().facts);
}

}  // namespace steritrack::sterilization_rules

#endif  // STERITRACK_SERVER_CORE_STERILIZATION_RULES_H_
