// Test helpers for domain errors: the ErrorInfo reason and metadata of a status, and gMock matchers
// for refusals and bad input. Shared by the core and storage test tiers.
#ifndef STERITRACK_TESTS_STATUS_MATCHERS_H_
#define STERITRACK_TESTS_STATUS_MATCHERS_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "steritrack/error.h"

namespace steritrack {

template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}
inline absl::Status StatusOf(const absl::Status& s) { return s; }

inline std::string ReasonOf(const absl::Status& s) {
  std::optional<ErrorInfo> info = GetErrorInfo(s);
  return info ? info->reason : "<no ErrorInfo>";
}

inline std::string MetaOf(const absl::Status& s, const std::string& key) {
  std::optional<ErrorInfo> info = GetErrorInfo(s);
  if (!info) return "<no ErrorInfo>";
  auto it = info->metadata.find(key);
  return it == info->metadata.end() ? "<no " + key + ">" : it->second;
}

// Matches a Status or StatusOr refused with `code` and ErrorInfo reason `reason`.
MATCHER_P2(IsRefused, code, reason, "") {
  const absl::Status s = StatusOf(arg);
  *result_listener << "status is " << s.ToString() << ", reason " << ReasonOf(s);
  return s.code() == code && ReasonOf(s) == reason;
}

// Matches FAILED_PRECONDITION with ErrorInfo reason `reason`.
MATCHER_P(IsRefusedWith, reason, "") {
  const absl::Status s = StatusOf(arg);
  *result_listener << "status is " << s.ToString() << ", reason " << ReasonOf(s);
  return s.code() == absl::StatusCode::kFailedPrecondition && ReasonOf(s) == reason;
}

// Matches INVALID_ARGUMENT naming `field` in its metadata.
MATCHER_P(IsInvalidField, field, "") {
  const absl::Status s = StatusOf(arg);
  *result_listener << "status is " << s.ToString() << ", field " << MetaOf(s, "field");
  return s.code() == absl::StatusCode::kInvalidArgument && MetaOf(s, "field") == field;
}

}  // namespace steritrack

#endif  // STERITRACK_TESTS_STATUS_MATCHERS_H_
