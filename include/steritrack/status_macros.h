// Early-return helpers for absl::Status and absl::StatusOr, so that no status is dropped silently.
#ifndef STERITRACK_STATUS_MACROS_H_
#define STERITRACK_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define STERITRACK_CONCAT_INNER_(a, b) a##b
#define STERITRACK_CONCAT_(a, b) STERITRACK_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                             \
  do {                                                    \
    if (absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (false)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(STERITRACK_CONCAT_(_status_or_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                           \
  if (!statusor.ok()) return statusor.status();     \
  lhs = std::move(statusor).value()

#endif  // STERITRACK_STATUS_MACROS_H_
