// SterilizationService, loads (rules 6 and 8): create, record parameters and CIs, release,
// quarantine; reads of loads.
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
                     "; only BI test cycles may run until ", kNegativeTestsToReturn,
                     " in a row are negative"),
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
          ASSIGN_OR_RETURN(std::optional<int64_t> open_load,
                           tx.sterilization().FindOpenLoadOfItem(item.id));
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
          if (item.maintenance_due.has_value() && today > *item.maintenance_due) {
            const std::string due = absl::FormatCivilTime(*item.maintenance_due);
            return Refused("ITEM_MAINTENANCE_OVERDUE",
                           StrCat("item ", serial, "'s maintenance was due on ", due,
                                  ": service it before it is reprocessed"),
                           Merge(ItemFacts(item),
                                 std::map<std::string, std::string>{{"maintenance_due", due}}));
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
          RETURN_IF_ERROR(
              Append(tx, ctx, now, "ITEM_LOADED",
                     {.item_id = item.id, .load_id = load.id, .sterilizer_id = s.id},
                     StrCat("item ", item.serial, " in ", LoadText(load), ", cycle ", item.cycles,
                            " of ", item.ifu_max_cycles),
                     Change{"", StrCat("state=IN_LOAD load=", load.id, " cycles=", item.cycles)}));
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
    ASSIGN_OR_RETURN(std::vector<Load> loads,
                     tx->sterilization().ListLoads(
                         {.release_state = state, .after_id = after, .limit = limit + 1}));
    return MakePage(std::move(loads), limit, [](const Load& l) { return l.id; });
  }
  // One steriliser's loads come in cycle order, so the page key is the cycle number.
  ASSIGN_OR_RETURN(std::optional<Sterilizer> s, tx->sterilization().FindSterilizer(sterilizer));
  if (!s.has_value()) return Page<Load>{};
  ASSIGN_OR_RETURN(std::vector<Load> loads,
                   tx->sterilization().ListLoads({.sterilizer_id = s->id,
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
        RETURN_IF_ERROR(
            tx.sterilization().SetLoadReleaseState(load.id, ReleaseState::kReleased, signature));
        RETURN_IF_ERROR(Append(
            tx, ctx, now, "LOAD_RELEASED",
            {.load_id = load.id, .sterilizer_id = load.sterilizer_id},
            StrCat(LoadText(load), " released: ", meaning),
            Change{StrCat("release=", ReleaseStateName(load.release_state)), "release=RELEASED"}));
        const absl::Time sterile_until = now + absl::Hours(24) * load.shelf_life_days;
        for (int64_t item_id : load.item_ids) {
          ASSIGN_OR_RETURN(std::optional<ReusableItem> item,
                           tx.sterilization().FindItemById(item_id));
          if (!item.has_value() || item->load_id != load.id || item->state != ItemState::kInLoad) {
            continue;
          }
          item->state = ItemState::kSterile;
          item->sterile_until = sterile_until;
          RETURN_IF_ERROR(tx.sterilization().UpdateItem(*item));
          RETURN_IF_ERROR(Append(
              tx, ctx, now, "ITEM_STERILE",
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
        RETURN_IF_ERROR(
            tx.sterilization().SetLoadReleaseState(load.id, ReleaseState::kQuarantined, signature));
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

}  // namespace steritrack
