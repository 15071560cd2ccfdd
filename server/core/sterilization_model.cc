#include <optional>
#include <string_view>

#include "steritrack/sterilization.h"

namespace steritrack {

// Names of the value types in steritrack/sterilization.h: the same UPPER_SNAKE words the API uses.

std::string_view ItemStateName(ItemState state) {
  switch (state) {
    case ItemState::kDirty:
      return "DIRTY";
    case ItemState::kPacked:
      return "PACKED";
    case ItemState::kInLoad:
      return "IN_LOAD";
    case ItemState::kSterile:
      return "STERILE";
    case ItemState::kInUse:
      return "IN_USE";
    case ItemState::kQuarantined:
      return "QUARANTINED";
    case ItemState::kOutOfService:
      return "OUT_OF_SERVICE";
    case ItemState::kRetired:
      return "RETIRED";
  }
  return "UNKNOWN";
}

std::optional<ItemState> ItemStateFromName(std::string_view name) {
  for (ItemState state : {ItemState::kDirty, ItemState::kPacked, ItemState::kInLoad,
                          ItemState::kSterile, ItemState::kInUse, ItemState::kQuarantined,
                          ItemState::kOutOfService, ItemState::kRetired}) {
    if (ItemStateName(state) == name) return state;
  }
  return std::nullopt;
}

std::string_view SterilizerTypeName(SterilizerType type) {
  switch (type) {
    case SterilizerType::kPreVacuum:
      return "PRE_VACUUM";
    case SterilizerType::kGravity:
      return "GRAVITY";
  }
  return "UNKNOWN";
}

std::string_view IndicatorResultName(IndicatorResult result) {
  switch (result) {
    case IndicatorResult::kPass:
      return "PASS";
    case IndicatorResult::kFail:
      return "FAIL";
  }
  return "UNKNOWN";
}

std::string_view BiResultName(BiResult result) {
  switch (result) {
    case BiResult::kNegative:
      return "NEGATIVE";
    case BiResult::kPositive:
      return "POSITIVE";
  }
  return "UNKNOWN";
}

std::string_view ReleaseStateName(ReleaseState state) {
  switch (state) {
    case ReleaseState::kOpen:
      return "OPEN";
    case ReleaseState::kReleased:
      return "RELEASED";
    case ReleaseState::kQuarantined:
      return "QUARANTINED";
    case ReleaseState::kRecalled:
      return "RECALLED";
  }
  return "UNKNOWN";
}

}  // namespace steritrack
