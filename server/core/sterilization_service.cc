#include "server/core/sterilization_service.h"

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
#include "steritrack/gs1.h"
#include "server/core/result_codec.h"
#include "server/core/write_helper.h"
#include "steritrack/error.h"
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
using core_internal::RunIdempotentWrite;

// Limits. A steriliser name plus '-' plus a cycle number must fit GS1 AI 10 (20 characters) on
// the pack label: 12 + 1 + 7.
constexpr size_t kMaxSerialLength = 20;
constexpr size_t kMaxItemTypeLength = 64;
constexpr size_t kMaxSterilizerNameLength = 12;
constexpr size_t kMaxCycleTypeLength = 32;
constexpr int32_t kMaxIfuCycles = 100000;
constexpr int64_t kMaxCycleNumber = 9999999;
constexpr int32_t kDefaultShelfLifeDays = 30;
constexpr int32_t kMaxShelfLifeDays = 3650;
constexpr int32_t kMaxExposureSeconds = 7200;
constexpr double kMinSteamTemperatureC = 100;
constexpr double kMaxSteamTemperatureC = 140;
constexpr double kMinPressureKpa = 50;
constexpr double kMaxPressureKpa = 400;
constexpr size_t kMaxBiProductLength = 64;
constexpr size_t kMaxBiLotLength = 20;
constexpr size_t kMaxItemsPerLoad = 1000;
constexpr size_t kMaxScanLength = 512;
constexpr int32_t kNegativeTestsToReturn = 3;
// A steriliser's printout and the server's clock may disagree by a little; a cycle that ends
// further in the future than this did not happen.
constexpr absl::Duration kClockTolerance = absl::Minutes(5);
constexpr int kBatch = 500;

// ---- field checks

// GS1 character set 82: !"%&'()*+,-./0-9:;<=>?A-Z_a-z
bool IsGs1Set82(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return true;
  return std::string_view("!\"%&'()*+,-./:;<=>?_").find(c) != std::string_view::npos;
}

absl::Status CheckSerial(std::string_view field, std::string_view serial) {
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

absl::Status CheckSterilizerName(std::string_view field, std::string_view name) {
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

bool Known(IndicatorResult r) { return r == IndicatorResult::kPass || r == IndicatorResult::kFail; }
bool Known(BiResult r) { return r == BiResult::kNegative || r == BiResult::kPositive; }
bool Known(SterilizerType t) {
  return t == SterilizerType::kPreVacuum || t == SterilizerType::kGravity;
}

// A time the client must supply: the Unix epoch is what an unset field arrives as.
bool IsSet(absl::Time t) { return t > absl::UnixEpoch() && t != absl::InfiniteFuture(); }

std::string Num(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : std::string("?");
}

std::string Micros(absl::Time t) { return StrCat(absl::ToUnixMicros(t)); }

// ---- results

// A BI proves the cycle killed the spores only when it did not grow and its control did.
bool IsValidNegative(const BiologicalIndicator& bi) {
  return bi.result == BiResult::kNegative && bi.control_result == BiResult::kPositive;
}
// A growing BI is positive whatever its control says.
bool IsPositive(const BiologicalIndicator& bi) { return bi.result == BiResult::kPositive; }

bool SameBi(const BiologicalIndicator& a, const BiologicalIndicator& b) {
  return a.product == b.product && a.lot == b.lot && a.result == b.result &&
         a.control_result == b.control_result;
}

bool SameParameters(const CycleParameters& a, const CycleParameters& b) {
  return a.started_at == b.started_at && a.ended_at == b.ended_at &&
         a.exposure_seconds == b.exposure_seconds && a.temperature_c == b.temperature_c &&
         a.pressure_kpa == b.pressure_kpa && a.passed == b.passed;
}

// ---- wording and errors

std::string LoadText(const Load& load) {
  return StrCat(load.sterilizer_name, " cycle ", load.cycle_number, " (load ", load.id, ")");
}

std::map<std::string, std::string> LoadFacts(const Load& load) {
  return {{"load", StrCat(load.id)},
          {"sterilizer", load.sterilizer_name},
          {"cycle_number", StrCat(load.cycle_number)},
          {"release_state", std::string(ReleaseStateName(load.release_state))}};
}

std::map<std::string, std::string> ItemFacts(const ReusableItem& item) {
  return {{"serial", item.serial}, {"state", std::string(ItemStateName(item.state))}};
}

template <typename... Maps>
std::map<std::string, std::string> Merge(std::map<std::string, std::string> first,
                                         const Maps&... more) {
  (first.insert(more.begin(), more.end()), ...);
  return first;
}

absl::Status Refused(std::string_view reason, std::string_view message,
                     std::map<std::string, std::string> metadata) {
  return MakeError(absl::StatusCode::kFailedPrecondition, message, reason, std::move(metadata));
}

absl::Status ItemNotFound(std::string_view serial) {
  return MakeError(absl::StatusCode::kNotFound, StrCat("item ", serial, " is not known"),
                   "ITEM_NOT_FOUND", {{"serial", std::string(serial)}});
}

absl::Status SterilizerNotFound(std::string_view name) {
  return MakeError(absl::StatusCode::kNotFound, StrCat("steriliser ", name, " is not known"),
                   "STERILIZER_NOT_FOUND", {{"sterilizer", std::string(name)}});
}

absl::Status LoadNotFound(int64_t id) {
  return MakeError(absl::StatusCode::kNotFound, StrCat("load ", id, " does not exist"),
                   "LOAD_NOT_FOUND", {{"load", StrCat(id)}});
}

absl::Status TreatmentNotFound(int64_t id) {
  return MakeError(absl::StatusCode::kNotFound, StrCat("treatment ", id, " does not exist"),
                   "TREATMENT_NOT_FOUND", {{"treatment", StrCat(id)}});
}

absl::Status CheckLoadId(int64_t id) {
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
absl::StatusOr<ItemScan> ItemScanFrom(std::string_view field, std::string_view input,
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
      std::optional<ErrorInfo> info = GetErrorInfo(data.status());
      std::string why(data.status().message());
      std::map<std::string, std::string> metadata = {{"field", std::string(field)}};
      if (info) {
        if (auto it = info->metadata.find("why"); it != info->metadata.end()) why = it->second;
        if (auto it = info->metadata.find("field"); it != info->metadata.end()) {
          metadata["ai"] = it->second;
        }
      }
      metadata["why"] = why;
      return MakeError(absl::StatusCode::kInvalidArgument,
                       StrCat(field, ": not a valid item label: ", why), "BARCODE_INVALID",
                       std::move(metadata));
    }
  }
  RETURN_IF_ERROR(CheckSerial(field, input));
  return ItemScan{.serial = std::string(input)};
}

absl::StatusOr<std::string> ItemSerialFrom(std::string_view field, std::string_view input,
                                           int current_year) {
  ASSIGN_OR_RETURN(ItemScan scan, ItemScanFrom(field, input, current_year));
  return std::move(scan.serial);
}

// ---- reads inside a transaction

absl::StatusOr<ReusableItem> MustFindItem(ReadTransaction& tx, std::string_view serial) {
  ASSIGN_OR_RETURN(std::optional<ReusableItem> item, tx.sterilization().FindItem(serial));
  if (!item.has_value()) return ItemNotFound(serial);
  return *std::move(item);
}

absl::StatusOr<Sterilizer> MustFindSterilizer(ReadTransaction& tx, std::string_view name) {
  ASSIGN_OR_RETURN(std::optional<Sterilizer> s, tx.sterilization().FindSterilizer(name));
  if (!s.has_value()) return SterilizerNotFound(name);
  return *std::move(s);
}

absl::StatusOr<Load> MustFindLoad(ReadTransaction& tx, int64_t id) {
  ASSIGN_OR_RETURN(std::optional<Load> load, tx.sterilization().FindLoad(id));
  if (!load.has_value()) return LoadNotFound(id);
  return *std::move(load);
}

absl::StatusOr<Sterilizer> MustFindSterilizerById(ReadTransaction& tx, int64_t id) {
  ASSIGN_OR_RETURN(std::optional<Sterilizer> s, tx.sterilization().FindSterilizerById(id));
  if (!s.has_value()) return absl::DataLossError(StrCat("load refers to missing steriliser ", id));
  return *std::move(s);
}

// Every load of a steriliser, by cycle number.
absl::StatusOr<std::vector<Load>> AllLoadsOf(ReadTransaction& tx, int64_t sterilizer_id) {
  std::vector<Load> all;
  int64_t after_cycle = 0;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<Load> batch, tx.sterilization().ListLoads({.sterilizer_id = sterilizer_id,
                                                            .after_cycle_number = after_cycle,
                                                            .limit = kBatch}));
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
std::vector<Load> AffectedLoads(const std::vector<Load>& all, int64_t positive_id,
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
absl::StatusOr<std::vector<LookBackEntry>> LookBackEntries(ReadTransaction& tx,
                                                           const std::vector<Load>& loads) {
  std::vector<LookBackEntry> entries;
  std::map<int64_t, std::string> serials;
  for (const Load& load : loads) {
    ASSIGN_OR_RETURN(std::vector<ItemUse> uses, tx.sterilization().ListItemUses({.load_id = load.id}));
    for (const ItemUse& use : uses) {
      auto it = serials.find(use.item_id);
      if (it == serials.end()) {
        ASSIGN_OR_RETURN(std::optional<ReusableItem> item, tx.sterilization().FindItemById(use.item_id));
        it = serials.emplace(use.item_id, item ? item->serial : std::string()).first;
      }
      ASSIGN_OR_RETURN(std::optional<Treatment> treatment, tx.cartridges().FindTreatment(use.treatment_id));
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

absl::StatusOr<bool> BowieDickPassedOn(ReadTransaction& tx, const Sterilizer& sterilizer,
                                       absl::CivilDay day);

// The look-back for one load: after a positive BI every load it put in doubt and the steriliser
// (with whether it passed a Bowie-Dick test `today`), otherwise the load alone.
absl::StatusOr<LookBack> LookBackFor(ReadTransaction& tx, const Load& load, absl::CivilDay today) {
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
absl::StatusOr<bool> BowieDickPassedOn(ReadTransaction& tx, const Sterilizer& sterilizer,
                                       absl::CivilDay day) {
  if (sterilizer.type == SterilizerType::kGravity) return true;
  ASSIGN_OR_RETURN(std::vector<BowieDickTest> tests, tx.sterilization().ListBowieDickTests(sterilizer.id, day));
  if (tests.empty()) return false;
  const BowieDickTest& latest = *std::max_element(
      tests.begin(), tests.end(), [](const BowieDickTest& a, const BowieDickTest& b) {
        return a.at != b.at ? a.at < b.at : a.id < b.id;
      });
  return latest.result == IndicatorResult::kPass;
}

// Up to limit + 1 sterilisers after id `after` that pass the filters. A clinic has a handful of
// sterilisers: filter here, reading on until the page is full.
absl::StatusOr<std::vector<Sterilizer>> MatchingSterilizers(ReadTransaction& tx, int64_t after,
                                                            int limit,
                                                            std::optional<SterilizerType> type,
                                                            bool out_of_service_only) {
  std::vector<Sterilizer> matching;
  while (static_cast<int>(matching.size()) <= limit) {
    ASSIGN_OR_RETURN(std::vector<Sterilizer> batch, tx.sterilization().ListSterilizers(after, limit + 1));
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

absl::Status Append(AuditedTransaction& tx, const WriteContext& ctx, absl::Time now,
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
absl::Status QuarantineItemsOf(AuditedTransaction& tx, const WriteContext& ctx, absl::Time now,
                               const Load& load, std::initializer_list<ItemState> states,
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
absl::Status CheckUsable(ReadTransaction& tx, const ReusableItem& item, absl::Time now,
                         absl::TimeZone zone) {
  const std::map<std::string, std::string> facts = ItemFacts(item);
  if (item.state == ItemState::kQuarantined) {
    return Refused(
        "ITEM_QUARANTINED", StrCat("item ", item.serial, " is quarantined: ", item.state_reason),
        Merge(facts, std::map<std::string, std::string>{{"reason", item.state_reason},
                                                        {"load", StrCat(item.load_id)}}));
  }
  ASSIGN_OR_RETURN(std::optional<int64_t> open_load, tx.sterilization().FindOpenLoadOfItem(item.id));
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
absl::Status CheckPackLabel(ReadTransaction& tx, const ReusableItem& item, const ItemScan& scan,
                            absl::TimeZone zone) {
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
absl::Status CheckReleasable(const Load& load) {
  const std::vector<LoadFinding> findings = LoadReleaseFindings(load);
  if (findings.empty()) return absl::OkStatus();
  return Refused(findings.front().reason, findings.front().message, findings.front().facts);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Rule 6

std::vector<LoadFinding> LoadReleaseFindings(const Load& load) {
  const std::map<std::string, std::string> facts = LoadFacts(load);
  const std::string name = LoadText(load);
  std::vector<LoadFinding> findings;
  auto add = [&](std::string_view reason, std::string message, std::string result, bool missing,
                 std::map<std::string, std::string> more = {}) {
    findings.push_back(LoadFinding{.reason = std::string(reason),
                                   .message = std::move(message),
                                   .result = std::move(result),
                                   .missing = missing,
                                   .facts = Merge(facts, more)});
  };
  if (!load.parameters.has_value()) {
    add("LOAD_PARAMETERS_MISSING", StrCat(name, " has no physical parameters recorded"),
        "parameters", true);
  } else if (!load.parameters->passed) {
    add("LOAD_PARAMETERS_FAILED", StrCat(name, ": the physical parameters did not pass"),
        "parameters", false);
  }
  if (load.chemical_indicators.empty()) {
    add("LOAD_CI_MISSING", StrCat(name, " has no chemical indicator result"), "chemical indicator",
        true);
  }
  for (const ChemicalIndicator& ci : load.chemical_indicators) {
    if (ci.result != IndicatorResult::kPass) {
      add("LOAD_CI_FAILED", StrCat(name, ": the type ", ci.type, " chemical indicator failed"),
          StrCat("CI type ", ci.type), false, {{"type", StrCat(ci.type)}});
    }
  }
  if (load.bi_required || load.test_cycle) {
    if (!load.bi.has_value()) {
      add("LOAD_BI_MISSING", StrCat(name, " is held for its biological indicator, not read yet"),
          "biological indicator", true);
    } else {
      if (IsPositive(*load.bi)) {
        add("LOAD_BI_POSITIVE", StrCat(name, ": the biological indicator is positive"),
            "BI positive", false);
      }
      if (load.bi->control_result != BiResult::kPositive) {
        add("LOAD_BI_CONTROL_FAILED",
            StrCat(name, ": the BI's control did not grow, so the BI proves nothing"),
            "BI control negative", false);
      }
    }
  }
  return findings;
}

// ---------------------------------------------------------------------------------------------------
// Labels

std::string LotControlNumber(const Load& load, absl::TimeZone zone) {
  return StrCat(load.sterilizer_name, "/", load.cycle_number, "/",
                absl::FormatTime("%Y-%m-%d", load.created_at, zone));
}

std::string ItemLabel(const ReusableItem& item, const Load& load, absl::TimeZone zone) {
  Gs1Data data;
  data.elements = {
      Gs1Element{.ai = "8004", .value = item.serial},
      Gs1Element{.ai = "10", .value = StrCat(load.sterilizer_name, "-", load.cycle_number)},
      Gs1Element{.ai = "11", .value = absl::FormatTime("%y%m%d", load.created_at, zone)},
  };
  return FormatGs1Bracketed(data);
}

// ---------------------------------------------------------------------------------------------------

SterilizationService::SterilizationService(SterilizationServiceOptions options)
    : store_(options.store),
      clock_(options.clock),
      sha256_(options.sha256),
      zone_(options.clinic_time_zone),
      commits_(options.commits) {}

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
        ASSIGN_OR_RETURN(std::optional<ReusableItem> existing, tx.sterilization().FindItem(item.serial));
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

absl::StatusOr<ReusableItem> SterilizationService::GetItem(std::string_view serial_or_label) {
  const absl::Time now = clock_->Now();
  ASSIGN_OR_RETURN(std::string serial,
                   ItemSerialFrom("serial", serial_or_label, absl::ToCivilYear(now, zone_).year()));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  return MustFindItem(*tx, serial);
}

absl::StatusOr<std::vector<Event>> SterilizationService::ItemHistory(std::string_view serial) {
  RETURN_IF_ERROR(CheckSerial("serial", serial));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(ReusableItem item, MustFindItem(*tx, serial));
  return AllEvents(*tx, {.item_id = item.id});
}

absl::StatusOr<Page<ReusableItem>> SterilizationService::ListItems(const PageRequest& page,
                                                                   std::optional<ItemState> state) {
  ASSIGN_OR_RETURN(int limit, PageSize(page));
  ASSIGN_OR_RETURN(int64_t after, PageAfter(page));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::vector<ReusableItem> items,
                   tx->sterilization().ListItems({.state = state, .after_id = after, .limit = limit + 1}));
  return MakePage(std::move(items), limit, [](const ReusableItem& i) { return i.id; });
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
  std::string fingerprint = StrCat(serial, "|", treatment_id);
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
        RETURN_IF_ERROR(
            Append(tx, ctx, now, "ITEM_USED",
                   {.treatment_id = treatment_id, .item_id = item.id, .load_id = item.load_id},
                   StrCat("item ", item.serial, " used in treatment ", treatment_id, " in room ",
                          t->room),
                   Change{"state=STERILE", StrCat("state=IN_USE treatment=", treatment_id,
                                                  " room=", t->room)}));
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
        ASSIGN_OR_RETURN(std::optional<int64_t> open_load, tx.sterilization().FindOpenLoadOfItem(item.id));
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

// ---------------------------------------------------------------------------------------------------
// Sterilisers and Bowie-Dick

absl::StatusOr<Sterilizer> SterilizationService::CreateSterilizer(const WriteContext& ctx,
                                                                  std::string_view name,
                                                                  SterilizerType type) {
  RETURN_IF_ERROR(CheckSterilizerName("name", name));
  if (!Known(type)) return InvalidField("type", "must be PRE_VACUUM or GRAVITY");
  std::string fingerprint = StrCat(name, "|", SterilizerTypeName(type));
  return RunIdempotentWrite<Sterilizer>(
      *store_, *clock_, *sha256_, commits_, ctx, "CreateSterilizer", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<Sterilizer> {
        ASSIGN_OR_RETURN(std::optional<Sterilizer> existing, tx.sterilization().FindSterilizer(name));
        if (existing.has_value()) {
          return MakeError(absl::StatusCode::kAlreadyExists,
                           StrCat("steriliser ", name, " already exists"), "STERILIZER_EXISTS",
                           {{"sterilizer", std::string(name)}});
        }
        Sterilizer created{.name = std::string(name), .type = type, .created_at = now};
        ASSIGN_OR_RETURN(created.id, tx.sterilization().InsertSterilizer(created));
        RETURN_IF_ERROR(Append(tx, ctx, now, "STERILIZER_CREATED", {.sterilizer_id = created.id},
                               StrCat("steriliser ", name, " (", SterilizerTypeName(type), ")")));
        return created;
      });
}

absl::StatusOr<Sterilizer> SterilizationService::GetSterilizer(std::string_view name) {
  RETURN_IF_ERROR(CheckSterilizerName("name", name));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  return MustFindSterilizer(*tx, name);
}

absl::StatusOr<Page<Sterilizer>> SterilizationService::ListSterilizers(
    const PageRequest& page, std::optional<SterilizerType> type, bool out_of_service_only) {
  ASSIGN_OR_RETURN(int limit, PageSize(page));
  ASSIGN_OR_RETURN(int64_t after, PageAfter(page));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::vector<Sterilizer> matching,
                   MatchingSterilizers(*tx, after, limit, type, out_of_service_only));
  return MakePage(std::move(matching), limit, [](const Sterilizer& s) { return s.id; });
}

absl::StatusOr<bool> SterilizationService::BowieDickPassedToday(std::string_view name) {
  RETURN_IF_ERROR(CheckSterilizerName("name", name));
  const absl::CivilDay today = absl::ToCivilDay(clock_->Now(), zone_);
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(Sterilizer sterilizer, MustFindSterilizer(*tx, name));
  return BowieDickPassedOn(*tx, sterilizer, today);
}

absl::StatusOr<BowieDickTest> SterilizationService::RecordBowieDickTest(const WriteContext& ctx,
                                                                        std::string_view sterilizer,
                                                                        IndicatorResult result) {
  RETURN_IF_ERROR(CheckSterilizerName("sterilizer", sterilizer));
  if (!Known(result)) return InvalidField("result", "must be PASS or FAIL");
  std::string fingerprint = StrCat(sterilizer, "|", IndicatorResultName(result));
  return RunIdempotentWrite<BowieDickTest>(
      *store_, *clock_, *sha256_, commits_, ctx, "RecordBowieDickTest", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<BowieDickTest> {
        ASSIGN_OR_RETURN(Sterilizer s, MustFindSterilizer(tx, sterilizer));
        BowieDickTest test{.sterilizer_id = s.id,
                           .day = absl::ToCivilDay(now, zone_),
                           .result = result,
                           .operator_name = ctx.actor,
                           .at = now};
        ASSIGN_OR_RETURN(test.id, tx.sterilization().InsertBowieDickTest(test));
        RETURN_IF_ERROR(
            Append(tx, ctx, now, "BOWIE_DICK_RECORDED", {.sterilizer_id = s.id},
                   StrCat("Bowie-Dick test on ", s.name, " for ", absl::FormatCivilTime(test.day),
                          ": ", IndicatorResultName(result))));
        return test;
      });
}

// ---------------------------------------------------------------------------------------------------
// Loads

absl::StatusOr<Load> SterilizationService::CreateLoad(const WriteContext& ctx,
                                                      const NewLoad& request) {
  RETURN_IF_ERROR(CheckSterilizerName("sterilizer", request.sterilizer));
  if (request.cycle_number < 1 || request.cycle_number > kMaxCycleNumber) {
    return InvalidField("cycle_number", StrCat("must be 1..", kMaxCycleNumber));
  }
  RETURN_IF_ERROR(CheckText("cycle_type", request.cycle_type, kMaxCycleTypeLength));
  if (request.shelf_life_days < 0 || request.shelf_life_days > kMaxShelfLifeDays) {
    return InvalidField("shelf_life_days", StrCat("must be 0 (the default, ", kDefaultShelfLifeDays,
                                                  " days) to ", kMaxShelfLifeDays));
  }
  if (request.test_cycle && !request.item_serials.empty()) {
    return InvalidField("item_serials", "must be empty for a BI test cycle");
  }
  if (!request.test_cycle && request.item_serials.empty()) {
    return InvalidField("item_serials", "is required: a load holds at least one packed item");
  }
  if (request.item_serials.size() > kMaxItemsPerLoad) {
    return InvalidField("item_serials", StrCat("lists ", request.item_serials.size(),
                                               " items, at most ", kMaxItemsPerLoad, " allowed"));
  }
  std::set<std::string_view> seen;
  for (const std::string& serial : request.item_serials) {
    RETURN_IF_ERROR(CheckSerial("item_serials", serial));
    if (!seen.insert(serial).second) {
      return InvalidField("item_serials", StrCat("lists ", serial, " twice"));
    }
  }
  // A test cycle is run to read its BI: it is always held for it.
  const bool bi_required = request.test_cycle || request.bi_required;
  const int32_t shelf_life_days =
      request.shelf_life_days == 0 ? kDefaultShelfLifeDays : request.shelf_life_days;
  std::string fingerprint =
      StrCat(request.sterilizer, "|", request.cycle_number, "|", request.cycle_type, "|",
             request.test_cycle ? 1 : 0, "|", bi_required ? 1 : 0, "|", shelf_life_days, "|",
             StrJoin(request.item_serials, "|"));
  return RunIdempotentWrite<Load>(
      *store_, *clock_, *sha256_, commits_, ctx, "CreateLoad", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<Load> {
        ASSIGN_OR_RETURN(Sterilizer s, MustFindSterilizer(tx, request.sterilizer));
        const std::map<std::string, std::string> sterilizer_facts = {
            {"sterilizer", s.name}, {"cycle_number", StrCat(request.cycle_number)}};
        // Out of service, only BI test cycles run: they are how it comes back (rule 7).
        if (!s.in_service && !request.test_cycle) {
          return Refused(
              "STERILIZER_OUT_OF_SERVICE",
              StrCat("steriliser ", s.name, " is out of service: ", s.out_of_service_reason,
                     "; only BI test cycles may run until three are negative"),
              Merge(sterilizer_facts,
                    std::map<std::string, std::string>{{"reason", s.out_of_service_reason},
                                                       {"since", Rfc3339(s.out_of_service_at)}}));
        }
        const absl::CivilDay today = absl::ToCivilDay(now, zone_);
        ASSIGN_OR_RETURN(bool bowie_dick_passed, BowieDickPassedOn(tx, s, today));
        if (!bowie_dick_passed) {
          return Refused(
              "BOWIE_DICK_REQUIRED",
              StrCat("pre-vacuum steriliser ", s.name, " has no passing Bowie-Dick test today (",
                     absl::FormatCivilTime(today), ")"),
              Merge(sterilizer_facts,
                    std::map<std::string, std::string>{{"day", absl::FormatCivilTime(today)}}));
        }
        ASSIGN_OR_RETURN(std::optional<Load> same_cycle,
                         tx.sterilization().FindLoadByCycle(s.id, request.cycle_number));
        if (same_cycle.has_value()) {
          return MakeError(absl::StatusCode::kAlreadyExists,
                           StrCat("steriliser ", s.name, " already has cycle ",
                                  request.cycle_number, " (load ", same_cycle->id, ")"),
                           "CYCLE_NUMBER_EXISTS",
                           Merge(sterilizer_facts, std::map<std::string, std::string>{
                                                       {"load", StrCat(same_cycle->id)}}));
        }
        if (request.cycle_number <= s.last_cycle_number) {
          return Refused(
              "CYCLE_NUMBER_NOT_RISING",
              StrCat("cycle ", request.cycle_number, " of ", s.name,
                     " is not after its last cycle, ", s.last_cycle_number),
              Merge(sterilizer_facts, std::map<std::string, std::string>{
                                          {"last_cycle_number", StrCat(s.last_cycle_number)}}));
        }
        std::vector<ReusableItem> items;
        for (const std::string& serial : request.item_serials) {
          ASSIGN_OR_RETURN(ReusableItem item, MustFindItem(tx, serial));
          ASSIGN_OR_RETURN(std::optional<int64_t> open_load, tx.sterilization().FindOpenLoadOfItem(item.id));
          if (open_load.has_value()) {
            return Refused("ITEM_IN_OPEN_LOAD",
                           StrCat("item ", serial, " is already in load ", *open_load,
                                  ", which is not released yet"),
                           Merge(ItemFacts(item),
                                 std::map<std::string, std::string>{{"load", StrCat(*open_load)}}));
          }
          if (item.state != ItemState::kPacked) {
            return Refused("ITEM_NOT_PACKED",
                           StrCat("item ", serial, " is ", ItemStateName(item.state),
                                  ", not PACKED: pack it before it goes into a load"),
                           ItemFacts(item));
          }
          if (item.cycles >= item.ifu_max_cycles) {
            return Refused(
                "ITEM_CYCLE_LIMIT_REACHED",
                StrCat("item ", serial, " has reached its IFU maximum of ", item.ifu_max_cycles,
                       " reprocessing cycles: another load would take it past it"),
                Merge(ItemFacts(item), std::map<std::string, std::string>{
                                           {"cycles", StrCat(item.cycles)},
                                           {"ifu_max_cycles", StrCat(item.ifu_max_cycles)}}));
          }
          items.push_back(std::move(item));
        }
        Load load{.sterilizer_id = s.id,
                  .sterilizer_name = s.name,
                  .cycle_number = request.cycle_number,
                  .cycle_type = request.cycle_type,
                  .test_cycle = request.test_cycle,
                  .bi_required = bi_required,
                  .shelf_life_days = shelf_life_days,
                  .operator_name = ctx.actor,
                  .created_at = now,
                  .release_state = ReleaseState::kOpen};
        for (const ReusableItem& item : items) {
          load.item_ids.push_back(item.id);
          load.item_serials.push_back(item.serial);
        }
        ASSIGN_OR_RETURN(load.id, tx.sterilization().InsertLoad(load));
        s.last_cycle_number = request.cycle_number;
        RETURN_IF_ERROR(tx.sterilization().UpdateSterilizer(s));
        RETURN_IF_ERROR(Append(tx, ctx, now, "LOAD_CREATED",
                               {.load_id = load.id, .sterilizer_id = s.id},
                               StrCat(load.test_cycle ? "BI test cycle " : "load ", LoadText(load),
                                      ", ", load.cycle_type, ", ", items.size(), " item(s)",
                                      load.bi_required ? ", held for its BI" : ""),
                               Change{"", "release=OPEN"}));
        for (ReusableItem& item : items) {
          item.state = ItemState::kInLoad;
          item.cycles += 1;
          item.load_id = load.id;
          item.sterile_until = absl::InfinitePast();
          item.treatment_id = 0;
          item.state_reason.clear();
          RETURN_IF_ERROR(tx.sterilization().UpdateItem(item));
          RETURN_IF_ERROR(Append(tx, ctx, now, "ITEM_LOADED",
                                 {.item_id = item.id, .load_id = load.id, .sterilizer_id = s.id},
                                 StrCat("item ", item.serial, " in ", LoadText(load), ", cycle ",
                                        item.cycles, " of ", item.ifu_max_cycles),
                                 Change{"", StrCat("state=IN_LOAD load=", load.id,
                                                   " cycles=", item.cycles)}));
        }
        return MustFindLoad(tx, load.id);
      });
}

absl::StatusOr<Load> SterilizationService::GetLoad(int64_t id) {
  RETURN_IF_ERROR(CheckLoadId(id));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  return MustFindLoad(*tx, id);
}

absl::StatusOr<Page<Load>> SterilizationService::ListLoads(const PageRequest& page,
                                                           std::string_view sterilizer,
                                                           std::optional<ReleaseState> state) {
  ASSIGN_OR_RETURN(int limit, PageSize(page));
  ASSIGN_OR_RETURN(int64_t after, PageAfter(page));
  if (!sterilizer.empty()) RETURN_IF_ERROR(CheckSterilizerName("sterilizer", sterilizer));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  if (sterilizer.empty()) {
    ASSIGN_OR_RETURN(
        std::vector<Load> loads,
        tx->sterilization().ListLoads({.release_state = state, .after_id = after, .limit = limit + 1}));
    return MakePage(std::move(loads), limit, [](const Load& l) { return l.id; });
  }
  // One steriliser's loads come in cycle order, so the page key is the cycle number.
  ASSIGN_OR_RETURN(std::optional<Sterilizer> s, tx->sterilization().FindSterilizer(sterilizer));
  if (!s.has_value()) return Page<Load>{};
  ASSIGN_OR_RETURN(std::vector<Load> loads, tx->sterilization().ListLoads({.sterilizer_id = s->id,
                                                           .after_cycle_number = after,
                                                           .release_state = state,
                                                           .limit = limit + 1}));
  return MakePage(std::move(loads), limit, [](const Load& l) { return l.cycle_number; });
}

absl::StatusOr<Load> SterilizationService::RecordParameters(const WriteContext& ctx,
                                                            int64_t load_id,
                                                            const CycleParameters& p) {
  RETURN_IF_ERROR(CheckLoadId(load_id));
  if (!IsSet(p.started_at)) return InvalidField("started_at", "is required");
  if (!IsSet(p.ended_at)) return InvalidField("ended_at", "is required");
  if (p.ended_at <= p.started_at) {
    return InvalidField("ended_at", "must be after the start of the cycle");
  }
  if (p.ended_at > clock_->Now() + kClockTolerance) {
    return InvalidField("ended_at", "is in the future");
  }
  if (p.exposure_seconds < 1 || p.exposure_seconds > kMaxExposureSeconds) {
    return InvalidField("exposure_seconds", StrCat("must be 1..", kMaxExposureSeconds));
  }
  const absl::Duration cycle = p.ended_at - p.started_at;
  if (absl::Seconds(p.exposure_seconds) > cycle) {
    return InvalidField("exposure_seconds",
                        StrCat("is longer than the cycle itself (", absl::ToInt64Seconds(cycle),
                               " s from start to end)"));
  }
  // Written as "not inside" so that NaN is refused too.
  if (!(p.temperature_c >= kMinSteamTemperatureC && p.temperature_c <= kMaxSteamTemperatureC)) {
    return InvalidField(
        "temperature_c",
        StrCat("must be 100..140 degrees C for a steam steriliser, got ", Num(p.temperature_c)));
  }
  if (!(p.pressure_kpa >= kMinPressureKpa && p.pressure_kpa <= kMaxPressureKpa)) {
    return InvalidField("pressure_kpa", StrCat("must be 50..400 kPa, got ", Num(p.pressure_kpa)));
  }
  std::string fingerprint =
      StrCat(load_id, "|", Micros(p.started_at), "|", Micros(p.ended_at), "|", p.exposure_seconds,
             "|", Num(p.temperature_c), "|", Num(p.pressure_kpa), "|", p.passed ? 1 : 0);
  return RunIdempotentWrite<Load>(
      *store_, *clock_, *sha256_, commits_, ctx, "RecordParameters", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<Load> {
        ASSIGN_OR_RETURN(Load load, MustFindLoad(tx, load_id));
        if (load.parameters.has_value()) {
          // The same printout entered twice is harmless; a different one is not a correction.
          if (SameParameters(*load.parameters, p)) return load;
          return Refused(
              "RESULT_ALREADY_RECORDED",
              StrCat("the physical parameters of ", LoadText(load),
                     " were already recorded, with different values, by ",
                     load.parameters->recorded_by),
              Merge(LoadFacts(load), std::map<std::string, std::string>{
                                         {"field", "parameters"},
                                         {"recorded_by", load.parameters->recorded_by},
                                         {"when", Rfc3339(load.parameters->recorded_at)}}));
        }
        if (load.release_state != ReleaseState::kOpen) {
          return Refused("LOAD_NOT_OPEN",
                         StrCat(LoadText(load), " is ", ReleaseStateName(load.release_state),
                                ": its parameters can no longer be recorded"),
                         LoadFacts(load));
        }
        CycleParameters stored = p;
        stored.recorded_by = ctx.actor;
        stored.recorded_at = now;
        RETURN_IF_ERROR(tx.sterilization().RecordParameters(load.id, stored));
        RETURN_IF_ERROR(
            Append(tx, ctx, now, "LOAD_PARAMETERS_RECORDED",
                   {.load_id = load.id, .sterilizer_id = load.sterilizer_id},
                   StrCat(LoadText(load), ": ", Num(stored.temperature_c), " C, ",
                          Num(stored.pressure_kpa), " kPa, exposure ", stored.exposure_seconds,
                          " s, ", stored.passed ? "passed" : "FAILED")));
        return MustFindLoad(tx, load.id);
      });
}

absl::StatusOr<Load> SterilizationService::RecordChemicalIndicator(const WriteContext& ctx,
                                                                   int64_t load_id, int32_t type,
                                                                   IndicatorResult result) {
  RETURN_IF_ERROR(CheckLoadId(load_id));
  if (type < 1 || type > 6) return InvalidField("type", "must be an ISO 11140-1 type, 1..6");
  if (!Known(result)) return InvalidField("result", "must be PASS or FAIL");
  std::string fingerprint = StrCat(load_id, "|", type, "|", IndicatorResultName(result));
  return RunIdempotentWrite<Load>(
      *store_, *clock_, *sha256_, commits_, ctx, "RecordChemicalIndicator", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<Load> {
        ASSIGN_OR_RETURN(Load load, MustFindLoad(tx, load_id));
        for (const ChemicalIndicator& ci : load.chemical_indicators) {
          if (ci.type != type) continue;
          if (ci.result == result) return load;
          return Refused(
              "RESULT_ALREADY_RECORDED",
              StrCat("the type ", type, " CI of ", LoadText(load), " was already recorded as ",
                     IndicatorResultName(ci.result), " by ", ci.recorded_by),
              Merge(LoadFacts(load), std::map<std::string, std::string>{
                                         {"field", "result"},
                                         {"type", StrCat(type)},
                                         {"recorded", std::string(IndicatorResultName(ci.result))},
                                         {"recorded_by", ci.recorded_by},
                                         {"when", Rfc3339(ci.recorded_at)}}));
        }
        if (load.release_state != ReleaseState::kOpen) {
          return Refused("LOAD_NOT_OPEN",
                         StrCat(LoadText(load), " is ", ReleaseStateName(load.release_state),
                                ": its indicators can no longer be recorded"),
                         LoadFacts(load));
        }
        ChemicalIndicator ci{
            .type = type, .result = result, .recorded_by = ctx.actor, .recorded_at = now};
        RETURN_IF_ERROR(tx.sterilization().AddChemicalIndicator(load.id, ci));
        RETURN_IF_ERROR(
            Append(tx, ctx, now, "LOAD_CI_RECORDED",
                   {.load_id = load.id, .sterilizer_id = load.sterilizer_id},
                   StrCat(LoadText(load), ": type ", type, " CI ", IndicatorResultName(result))));
        return MustFindLoad(tx, load.id);
      });
}

absl::StatusOr<BiOutcome> SterilizationService::RecordBiologicalIndicator(
    const WriteContext& ctx, int64_t load_id, const BiologicalIndicator& bi) {
  RETURN_IF_ERROR(CheckLoadId(load_id));
  RETURN_IF_ERROR(CheckText("product", bi.product, kMaxBiProductLength));
  RETURN_IF_ERROR(CheckText("lot", bi.lot, kMaxBiLotLength));
  if (!Known(bi.result)) return InvalidField("result", "must be NEGATIVE or POSITIVE");
  if (!Known(bi.control_result)) {
    return InvalidField("control_result", "must be NEGATIVE or POSITIVE");
  }
  std::string fingerprint = StrCat(load_id, "|", bi.product, "|", bi.lot, "|",
                                   BiResultName(bi.result), "|", BiResultName(bi.control_result));
  return RunIdempotentWrite<BiOutcome>(
      *store_, *clock_, *sha256_, commits_, ctx, "RecordBiologicalIndicator", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<BiOutcome> {
        ASSIGN_OR_RETURN(Load load, MustFindLoad(tx, load_id));
        if (load.bi.has_value()) {
          if (!SameBi(*load.bi, bi)) {
            return Refused(
                "RESULT_ALREADY_RECORDED",
                StrCat("the BI of ", LoadText(load), " was already recorded as ",
                       BiResultName(load.bi->result), " (control ",
                       BiResultName(load.bi->control_result), ") by ", load.bi->recorded_by),
                Merge(LoadFacts(load),
                      std::map<std::string, std::string>{
                          {"field", "biological_indicator"},
                          {"recorded", std::string(BiResultName(load.bi->result))},
                          {"recorded_control", std::string(BiResultName(load.bi->control_result))},
                          {"recorded_by", load.bi->recorded_by},
                          {"when", Rfc3339(load.bi->read_at)}}));
          }
          BiOutcome same{.load = load};
          if (IsPositive(*load.bi)) {
            ASSIGN_OR_RETURN(LookBack look_back,
                             LookBackFor(tx, load, absl::ToCivilDay(now, zone_)));
            same.look_back = std::move(look_back);
          }
          return same;
        }
        // A BI is read a day or more after its cycle: it may arrive after the load was released
        // (a policy that does not hold loads for it) or quarantined, and still counts.
        BiologicalIndicator stored = bi;
        stored.read_at = now;
        stored.recorded_by = ctx.actor;
        RETURN_IF_ERROR(tx.sterilization().RecordBi(load.id, stored));
        load.bi = stored;
        RETURN_IF_ERROR(Append(tx, ctx, now, "LOAD_BI_RECORDED",
                               {.load_id = load.id, .sterilizer_id = load.sterilizer_id},
                               StrCat(LoadText(load), ": BI ", BiResultName(stored.result),
                                      ", control ", BiResultName(stored.control_result), " (",
                                      stored.product, " lot ", stored.lot, ")")));
        ASSIGN_OR_RETURN(Sterilizer s, MustFindSterilizerById(tx, load.sterilizer_id));
        BiOutcome outcome;
        if (IsPositive(stored)) {
          // Rule 7: the steriliser stops, and everything since its last good BI is in doubt.
          const std::string why = StrCat("positive BI on load ", load.id, " (", s.name, " cycle ",
                                         load.cycle_number, ")");
          s.negative_tests_since_out_of_service = 0;
          if (s.in_service) {
            s.in_service = false;
            s.out_of_service_at = now;
            s.out_of_service_reason = why;
            RETURN_IF_ERROR(tx.sterilization().UpdateSterilizer(s));
            RETURN_IF_ERROR(Append(tx, ctx, now, "STERILIZER_OUT_OF_SERVICE",
                                   {.load_id = load.id, .sterilizer_id = s.id},
                                   StrCat("steriliser ", s.name, " out of service: ", why),
                                   Change{"in_service=yes", "in_service=no"}));
          } else {
            RETURN_IF_ERROR(tx.sterilization().UpdateSterilizer(s));
          }
          ASSIGN_OR_RETURN(std::vector<Load> all, AllLoadsOf(tx, s.id));
          const Signature signature{.by = ctx.actor, .at = now, .meaning = why};
          for (const Load& affected : AffectedLoads(all, load.id, now)) {
            // A load already quarantined or recalled keeps its own, earlier signature.
            if (affected.release_state != ReleaseState::kOpen &&
                affected.release_state != ReleaseState::kReleased) {
              continue;
            }
            RETURN_IF_ERROR(
                tx.sterilization().SetLoadReleaseState(affected.id, ReleaseState::kQuarantined, signature));
            RETURN_IF_ERROR(Append(tx, ctx, now, "LOAD_QUARANTINED",
                                   {.load_id = affected.id, .sterilizer_id = s.id},
                                   StrCat(LoadText(affected), " quarantined (was ",
                                          ReleaseStateName(affected.release_state), "): ", why),
                                   Change{StrCat("release=", ReleaseStateName(affected.release_state)),
                                          "release=QUARANTINED"}));
            RETURN_IF_ERROR(QuarantineItemsOf(
                tx, ctx, now, affected,
                {ItemState::kInLoad, ItemState::kSterile, ItemState::kPacked}, why));
          }
          ASSIGN_OR_RETURN(load, MustFindLoad(tx, load.id));
          ASSIGN_OR_RETURN(LookBack look_back, LookBackFor(tx, load, absl::ToCivilDay(now, zone_)));
          outcome.look_back = std::move(look_back);
        } else if (load.test_cycle && !s.in_service && load.release_state == ReleaseState::kOpen &&
                   load.created_at >= s.out_of_service_at) {
          // Rule 7: three consecutive valid negative test cycles return it to service. A test
          // whose control did not grow proves nothing and breaks the run.
          if (IsValidNegative(stored)) {
            s.negative_tests_since_out_of_service += 1;
          } else {
            s.negative_tests_since_out_of_service = 0;
          }
          if (s.negative_tests_since_out_of_service >= kNegativeTestsToReturn) {
            const std::string was = s.out_of_service_reason;
            s.in_service = true;
            s.out_of_service_reason.clear();
            s.out_of_service_at = absl::InfinitePast();
            RETURN_IF_ERROR(tx.sterilization().UpdateSterilizer(s));
            RETURN_IF_ERROR(Append(
                tx, ctx, now, "STERILIZER_IN_SERVICE", {.load_id = load.id, .sterilizer_id = s.id},
                StrCat("steriliser ", s.name, " back in service after ",
                       s.negative_tests_since_out_of_service,
                       " consecutive negative BI test cycles (out of service: ", was, ")")));
          } else {
            RETURN_IF_ERROR(tx.sterilization().UpdateSterilizer(s));
          }
        }
        ASSIGN_OR_RETURN(outcome.load, MustFindLoad(tx, load.id));
        return outcome;
      });
}

absl::StatusOr<Load> SterilizationService::ReleaseLoad(const WriteContext& ctx, int64_t load_id,
                                                       std::string_view meaning) {
  RETURN_IF_ERROR(CheckLoadId(load_id));
  RETURN_IF_ERROR(CheckText("meaning", meaning, kMaxReasonLength));
  std::string fingerprint = StrCat(load_id, "|", meaning);
  return RunIdempotentWrite<Load>(
      *store_, *clock_, *sha256_, commits_, ctx, "ReleaseLoad", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<Load> {
        ASSIGN_OR_RETURN(Load load, MustFindLoad(tx, load_id));
        if (load.release_state != ReleaseState::kOpen) {
          std::map<std::string, std::string> facts = LoadFacts(load);
          if (load.signature) {
            facts["signed_by"] = load.signature->by;
            facts["when"] = Rfc3339(load.signature->at);
          }
          return Refused(
              "LOAD_NOT_OPEN",
              StrCat(LoadText(load), " is already ", ReleaseStateName(load.release_state)),
              std::move(facts));
        }
        RETURN_IF_ERROR(CheckReleasable(load));
        const Signature signature{.by = ctx.actor, .at = now, .meaning = std::string(meaning)};
        RETURN_IF_ERROR(tx.sterilization().SetLoadReleaseState(load.id, ReleaseState::kReleased, signature));
        RETURN_IF_ERROR(Append(tx, ctx, now, "LOAD_RELEASED",
                               {.load_id = load.id, .sterilizer_id = load.sterilizer_id},
                               StrCat(LoadText(load), " released: ", meaning),
                               Change{StrCat("release=", ReleaseStateName(load.release_state)),
                                      "release=RELEASED"}));
        const absl::Time sterile_until = now + absl::Hours(24) * load.shelf_life_days;
        for (int64_t item_id : load.item_ids) {
          ASSIGN_OR_RETURN(std::optional<ReusableItem> item, tx.sterilization().FindItemById(item_id));
          if (!item.has_value() || item->load_id != load.id || item->state != ItemState::kInLoad) {
            continue;
          }
          item->state = ItemState::kSterile;
          item->sterile_until = sterile_until;
          RETURN_IF_ERROR(tx.sterilization().UpdateItem(*item));
          RETURN_IF_ERROR(
              Append(tx, ctx, now, "ITEM_STERILE",
                     {.item_id = item->id, .load_id = load.id, .sterilizer_id = load.sterilizer_id},
                     StrCat("item ", item->serial, " sterile until ", Rfc3339(sterile_until), " (",
                            LoadText(load), ")"),
                     Change{"state=IN_LOAD", StrCat("state=STERILE until=", Rfc3339(sterile_until))}));
        }
        return MustFindLoad(tx, load.id);
      });
}

absl::StatusOr<Load> SterilizationService::QuarantineLoad(const WriteContext& ctx, int64_t load_id,
                                                          std::string_view reason) {
  RETURN_IF_ERROR(CheckLoadId(load_id));
  RETURN_IF_ERROR(CheckText("reason", reason, kMaxReasonLength));
  std::string fingerprint = StrCat(load_id, "|", reason);
  return RunIdempotentWrite<Load>(
      *store_, *clock_, *sha256_, commits_, ctx, "QuarantineLoad", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<Load> {
        ASSIGN_OR_RETURN(Load load, MustFindLoad(tx, load_id));
        if (load.release_state == ReleaseState::kQuarantined ||
            load.release_state == ReleaseState::kRecalled) {
          return Refused(
              "LOAD_NOT_OPEN",
              StrCat(LoadText(load), " is already ", ReleaseStateName(load.release_state)),
              LoadFacts(load));
        }
        const Signature signature{.by = ctx.actor, .at = now, .meaning = std::string(reason)};
        RETURN_IF_ERROR(tx.sterilization().SetLoadReleaseState(load.id, ReleaseState::kQuarantined, signature));
        RETURN_IF_ERROR(Append(tx, ctx, now, "LOAD_QUARANTINED",
                               {.load_id = load.id, .sterilizer_id = load.sterilizer_id},
                               StrCat(LoadText(load), " quarantined (was ",
                                      ReleaseStateName(load.release_state), "): ", reason),
                               Change{StrCat("release=", ReleaseStateName(load.release_state)),
                                      "release=QUARANTINED"}));
        RETURN_IF_ERROR(QuarantineItemsOf(tx, ctx, now, load,
                                          {ItemState::kInLoad, ItemState::kSterile}, reason));
        return MustFindLoad(tx, load.id);
      });
}

absl::StatusOr<LookBack> SterilizationService::RecallLoad(const WriteContext& ctx, int64_t load_id,
                                                          std::string_view reason) {
  RETURN_IF_ERROR(CheckLoadId(load_id));
  RETURN_IF_ERROR(CheckText("reason", reason, kMaxReasonLength));
  std::string fingerprint = StrCat(load_id, "|", reason);
  return RunIdempotentWrite<LookBack>(
      *store_, *clock_, *sha256_, commits_, ctx, "RecallLoad", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<LookBack> {
        ASSIGN_OR_RETURN(Load load, MustFindLoad(tx, load_id));
        if (load.release_state == ReleaseState::kRecalled) {
          std::map<std::string, std::string> facts = LoadFacts(load);
          if (load.signature) {
            facts["reason"] = load.signature->meaning;
            facts["when"] = Rfc3339(load.signature->at);
          }
          return Refused("LOAD_NOT_OPEN", StrCat(LoadText(load), " is already recalled"),
                         std::move(facts));
        }
        const Signature signature{.by = ctx.actor, .at = now, .meaning = std::string(reason)};
        RETURN_IF_ERROR(tx.sterilization().SetLoadReleaseState(load.id, ReleaseState::kRecalled, signature));
        RETURN_IF_ERROR(Append(tx, ctx, now, "LOAD_RECALLED",
                               {.load_id = load.id, .sterilizer_id = load.sterilizer_id},
                               StrCat(LoadText(load), " recalled (was ",
                                      ReleaseStateName(load.release_state), "): ", reason),
                               Change{StrCat("release=", ReleaseStateName(load.release_state)),
                                      "release=RECALLED"}));
        RETURN_IF_ERROR(QuarantineItemsOf(tx, ctx, now, load,
                                          {ItemState::kInLoad, ItemState::kSterile}, reason));
        ASSIGN_OR_RETURN(load, MustFindLoad(tx, load.id));
        // The recall is about this load: its look-back is the load alone.
        LookBack look_back{.loads = {load}};
        ASSIGN_OR_RETURN(look_back.entries, LookBackEntries(tx, look_back.loads));
        return look_back;
      });
}

absl::StatusOr<LookBack> SterilizationService::GetLookBack(int64_t load_id) {
  RETURN_IF_ERROR(CheckLoadId(load_id));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(Load load, MustFindLoad(*tx, load_id));
  return LookBackFor(*tx, load, absl::ToCivilDay(clock_->Now(), zone_));
}

// ---------------------------------------------------------------------------------------------------
// Views

bool IsBiReadingValid(const BiologicalIndicator& bi) {
  return bi.control_result == BiResult::kPositive;
}

namespace {

// Completes an item's view inside `tx`; `loads` keeps each load read once per transaction, since
// the items of one load are listed together.
absl::StatusOr<ItemView> ViewIn(ReadTransaction& tx, ReusableItem item, absl::TimeZone zone,
                                std::map<int64_t, Load>& loads) {
  ItemView view;
  if (item.load_id != 0) {
    auto it = loads.find(item.load_id);
    if (it == loads.end()) {
      ASSIGN_OR_RETURN(Load load, MustFindLoad(tx, item.load_id));
      it = loads.emplace(item.load_id, std::move(load)).first;
    }
    view.label = ItemLabel(item, it->second, zone);
    view.lot_control_number = LotControlNumber(it->second, zone);
    view.last_load = it->second;
  }
  view.item = std::move(item);
  return view;
}

absl::StatusOr<SterilizerView> ViewIn(ReadTransaction& tx, Sterilizer sterilizer,
                                      absl::CivilDay today) {
  SterilizerView view;
  ASSIGN_OR_RETURN(view.bowie_dick_passed_today, BowieDickPassedOn(tx, sterilizer, today));
  view.negative_tests_required = kNegativeTestsToReturn;
  view.negative_tests_to_return =
      sterilizer.in_service
          ? 0
          : std::max(0, kNegativeTestsToReturn - sterilizer.negative_tests_since_out_of_service);
  view.sterilizer = std::move(sterilizer);
  return view;
}

}  // namespace

absl::StatusOr<ItemView> SterilizationService::GetItemView(std::string_view serial_or_label) {
  const absl::Time now = clock_->Now();
  ASSIGN_OR_RETURN(std::string serial,
                   ItemSerialFrom("serial", serial_or_label, absl::ToCivilYear(now, zone_).year()));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(ReusableItem item, MustFindItem(*tx, serial));
  ASSIGN_OR_RETURN(std::vector<Event> history, AllEvents(*tx, {.item_id = item.id}));
  std::map<int64_t, Load> loads;
  ASSIGN_OR_RETURN(ItemView view, ViewIn(*tx, std::move(item), zone_, loads));
  view.history = std::move(history);
  return view;
}

absl::StatusOr<Page<ItemView>> SterilizationService::ListItemViews(const PageRequest& page,
                                                                   std::optional<ItemState> state) {
  ASSIGN_OR_RETURN(int limit, PageSize(page));
  ASSIGN_OR_RETURN(int64_t after, PageAfter(page));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::vector<ReusableItem> items,
                   tx->sterilization().ListItems({.state = state, .after_id = after, .limit = limit + 1}));
  Page<ReusableItem> records =
      MakePage(std::move(items), limit, [](const ReusableItem& i) { return i.id; });
  Page<ItemView> views{.next_page_token = std::move(records.next_page_token)};
  std::map<int64_t, Load> loads;
  for (ReusableItem& item : records.items) {
    ASSIGN_OR_RETURN(ItemView view, ViewIn(*tx, std::move(item), zone_, loads));
    views.items.push_back(std::move(view));
  }
  return views;
}

absl::StatusOr<ItemView> SterilizationService::ItemViewOf(ReusableItem item) {
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  std::map<int64_t, Load> loads;
  return ViewIn(*tx, std::move(item), zone_, loads);
}

absl::StatusOr<SterilizerView> SterilizationService::GetSterilizerView(std::string_view name) {
  RETURN_IF_ERROR(CheckSterilizerName("name", name));
  const absl::CivilDay today = absl::ToCivilDay(clock_->Now(), zone_);
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(Sterilizer sterilizer, MustFindSterilizer(*tx, name));
  return ViewIn(*tx, std::move(sterilizer), today);
}

absl::StatusOr<Page<SterilizerView>> SterilizationService::ListSterilizerViews(
    const PageRequest& page, std::optional<SterilizerType> type, bool out_of_service_only) {
  ASSIGN_OR_RETURN(int limit, PageSize(page));
  ASSIGN_OR_RETURN(int64_t after, PageAfter(page));
  const absl::CivilDay today = absl::ToCivilDay(clock_->Now(), zone_);
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::vector<Sterilizer> matching,
                   MatchingSterilizers(*tx, after, limit, type, out_of_service_only));
  Page<Sterilizer> records =
      MakePage(std::move(matching), limit, [](const Sterilizer& s) { return s.id; });
  Page<SterilizerView> views{.next_page_token = std::move(records.next_page_token)};
  for (Sterilizer& s : records.items) {
    ASSIGN_OR_RETURN(SterilizerView view, ViewIn(*tx, std::move(s), today));
    views.items.push_back(std::move(view));
  }
  return views;
}

absl::StatusOr<SterilizerView> SterilizationService::SterilizerViewOf(Sterilizer sterilizer) {
  const absl::CivilDay today = absl::ToCivilDay(clock_->Now(), zone_);
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  return ViewIn(*tx, std::move(sterilizer), today);
}

}  // namespace steritrack
