// Domain value types for reusable equipment and its sterilisation (PRODUCT.md rules 5-8).
//
// Reusable items (handpieces, trays, instrument sets) go DIRTY -> PACKED -> IN_LOAD -> STERILE
// (load released; the pack's shelf life runs from then) -> IN_USE (bound to a treatment) -> DIRTY.
// Side states: QUARANTINED, OUT_OF_SERVICE, RETIRED. Loads record what a sterile-processing audit
// asks for. Plain values; the rules live in server/core/sterilization_service.
#ifndef STERITRACK_STERILIZATION_H_
#define STERITRACK_STERILIZATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace steritrack {

enum class ItemState {
  kDirty,
  kPacked,
  kInLoad,
  kSterile,
  kInUse,
  kQuarantined,
  kOutOfService,
  kRetired,
};
std::string_view ItemStateName(ItemState state);
std::optional<ItemState> ItemStateFromName(std::string_view name);

struct ReusableItem {
  int64_t id = 0;
  std::string serial;          // as on the item, up to 20 characters (GS1 AI 21 character set)
  std::string type;            // "handpiece", "tray", ...
  int32_t ifu_max_cycles = 0;  // from the instructions for use
  int32_t cycles = 0;          // reprocessing cycles so far (one per load)
  std::optional<absl::CivilDay> maintenance_due;
  ItemState state = ItemState::kDirty;
  int64_t load_id = 0;                              // the last load it went through; 0: none yet
  absl::Time sterile_until = absl::InfinitePast();  // when STERILE: end of the pack's shelf life
  int64_t treatment_id = 0;                         // when IN_USE
  std::string state_reason;                         // why quarantined / out of service / retired
  absl::Time created_at;
};

enum class SterilizerType { kPreVacuum, kGravity };
std::string_view SterilizerTypeName(SterilizerType type);

struct Sterilizer {
  int64_t id = 0;
  std::string name;  // the steriliser's own id, e.g. "AUTOCLAVE-1"
  SterilizerType type = SterilizerType::kPreVacuum;
  int64_t last_cycle_number = 0;  // cycle numbers are unique and rising
  bool in_service = true;
  std::string out_of_service_reason;
  absl::Time out_of_service_at = absl::InfinitePast();
  // Consecutive negative-BI test cycles since it went out of service; three return it to service.
  int32_t negative_tests_since_out_of_service = 0;
  absl::Time created_at;
};

enum class IndicatorResult { kPass, kFail };
enum class BiResult { kNegative, kPositive };
std::string_view IndicatorResultName(IndicatorResult result);
std::string_view BiResultName(BiResult result);

struct ChemicalIndicator {
  int32_t type = 0;  // ISO 11140-1 type 1..6
  IndicatorResult result = IndicatorResult::kPass;
  std::string recorded_by;
  absl::Time recorded_at;
};

struct BiologicalIndicator {
  std::string product;
  std::string lot;
  BiResult result = BiResult::kNegative;
  BiResult control_result = BiResult::kPositive;  // the unprocessed control must grow (positive)
  absl::Time read_at;
  std::string recorded_by;
};

// Physical parameters of the cycle as the steriliser's printout shows them.
struct CycleParameters {
  absl::Time started_at;
  absl::Time ended_at;
  int32_t exposure_seconds = 0;
  double temperature_c = 0;
  double pressure_kpa = 0;
  bool passed = false;  // the physical readout passed
  std::string recorded_by;
  absl::Time recorded_at;
};

enum class ReleaseState { kOpen, kReleased, kQuarantined, kRecalled };
std::string_view ReleaseStateName(ReleaseState state);

// An electronic signature: who, when, and what the signature means.
struct Signature {
  std::string by;
  absl::Time at;
  std::string meaning;  // e.g. "released: parameters, CIs and BI reviewed"
};

struct Load {
  int64_t id = 0;
  int64_t sterilizer_id = 0;
  std::string sterilizer_name;  // joined on read
  int64_t cycle_number = 0;
  std::string cycle_type;    // e.g. "134C-4MIN", "121C-20MIN", "BI-TEST"
  bool test_cycle = false;   // a BI test cycle without contents (return to service)
  bool bi_required = false;  // the clinic's policy holds this load for its BI
  int32_t shelf_life_days = 30;
  std::string operator_name;
  absl::Time created_at;
  std::vector<int64_t> item_ids;          // contents
  std::vector<std::string> item_serials;  // joined on read
  std::optional<CycleParameters> parameters;
  std::vector<ChemicalIndicator> chemical_indicators;
  std::optional<BiologicalIndicator> bi;
  ReleaseState release_state = ReleaseState::kOpen;
  std::optional<Signature> signature;  // of the release, quarantine or recall
};

struct BowieDickTest {
  int64_t id = 0;
  int64_t sterilizer_id = 0;
  absl::CivilDay day;  // in the clinic's time zone
  IndicatorResult result = IndicatorResult::kPass;
  std::string operator_name;
  absl::Time at;
};

// One use of a reusable item in a treatment; the look-back joins these to treatments.
struct ItemUse {
  int64_t item_id = 0;
  int64_t treatment_id = 0;
  int64_t load_id = 0;  // the load whose release made it sterile
  absl::Time at;
  std::string by;
};

}  // namespace steritrack

#endif  // STERITRACK_STERILIZATION_H_
