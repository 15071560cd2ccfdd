// SterilizationService, rule 7: the BI reading (a positive one takes the steriliser out of service
// and quarantines the loads since its last negative BI), load recall, and the look-back of the
// treatments that used items from loads in doubt.
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
// Biological indicators and look-back

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
            RETURN_IF_ERROR(tx.sterilization().SetLoadReleaseState(
                affected.id, ReleaseState::kQuarantined, signature));
            RETURN_IF_ERROR(Append(
                tx, ctx, now, "LOAD_QUARANTINED", {.load_id = affected.id, .sterilizer_id = s.id},
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
        RETURN_IF_ERROR(
            tx.sterilization().SetLoadReleaseState(load.id, ReleaseState::kRecalled, signature));
        RETURN_IF_ERROR(Append(
            tx, ctx, now, "LOAD_RECALLED",
            {.load_id = load.id, .sterilizer_id = load.sterilizer_id},
            StrCat(LoadText(load), " recalled (was ", ReleaseStateName(load.release_state),
                   "): ", reason),
            Change{StrCat("release=", ReleaseStateName(load.release_state)), "release=RECALLED"}));
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

}  // namespace steritrack
