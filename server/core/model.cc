#include "steritrack/model.h"

namespace steritrack {

std::string_view LotStateName(LotState state) {
  switch (state) {
    case LotState::kActive:
      return "ACTIVE";
    case LotState::kQuarantined:
      return "QUARANTINED";
    case LotState::kRecalled:
      return "RECALLED";
  }
  return "UNKNOWN";
}

std::string_view CartridgeStateName(CartridgeState state) {
  switch (state) {
    case CartridgeState::kReceived:
      return "RECEIVED";
    case CartridgeState::kOpened:
      return "OPENED";
    case CartridgeState::kDisposed:
      return "DISPOSED";
    case CartridgeState::kDiscarded:
      return "DISCARDED_UNUSED";
  }
  return "UNKNOWN";
}

}  // namespace steritrack
