// SterilizationService: construction, rule 6 (release findings), labels, sterilisers and Bowie-Dick
// (rule 8), and the item and steriliser views. Items: item_rules.cc; loads: load_rules.cc; positive
// BI and look-back (rule 7): look_back.cc.
#include "server/core/sterilization_service.h"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/core/sterilization_rules.h"

namespace steritrack {

// This layer's own helpers (server/core/sterilization_rules.h).
using namespace sterilization_rules;  // NOLINT(build/namespaces)

// ---------------------------------------------------------------------------------------------------

SterilizationService::SterilizationService(SterilizationServiceOptions options)
    : store_(options.store),
      clock_(options.clock),
      sha256_(options.sha256),
      zone_(options.clinic_time_zone),
      commits_(options.commits) {}

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
      if (!IsBiReadingValid(*load.bi)) {
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
        ASSIGN_OR_RETURN(std::optional<Sterilizer> existing,
                         tx.sterilization().FindSterilizer(name));
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
  ASSIGN_OR_RETURN(
      std::vector<ReusableItem> items,
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
