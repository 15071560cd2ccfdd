// Domain errors: an absl::Status that carries a machine-readable reason and facts.
//
// Core and storage report refusals and bad input as absl::Status values built with MakeError(); the
// one conversion point in server/rpc turns the attached ErrorInfo into a google.rpc.ErrorInfo with
// domain "steritrack". Thread-safe: these are free functions over values.
#ifndef STERITRACK_ERROR_H_
#define STERITRACK_ERROR_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace steritrack {

inline constexpr std::string_view kErrorDomain = "steritrack";

// The facts of a refusal: an UPPER_SNAKE reason (a contract for scripts and scanners) and metadata
// such as when, room and treatment.
struct ErrorInfo {
  std::string reason;
  std::map<std::string, std::string> metadata;
};

// Builds a status with `code`, a human-readable `message` and an attached ErrorInfo.
absl::Status MakeError(absl::StatusCode code, std::string_view message, std::string_view reason,
                       std::map<std::string, std::string> metadata = {});

// Shorthand for bad input: INVALID_ARGUMENT naming the field and why it was refused.
absl::Status InvalidField(std::string_view field, std::string_view why,
                          std::string_view reason = "INVALID_FIELD");

// Returns the ErrorInfo attached by MakeError(), if any.
std::optional<ErrorInfo> GetErrorInfo(const absl::Status& status);

}  // namespace steritrack

#endif  // STERITRACK_ERROR_H_
