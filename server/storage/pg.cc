#include "server/storage/pg.h"

#include "steritrack/strings.h"

namespace steritrack::pg {

absl::Status ToStatus(const std::exception& e, std::string_view what) {
  const std::string message = StrCat(what, ": ", e.what());
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string& state = sql->sqlstate();
    if (state == "23505") return absl::AlreadyExistsError(message);
    if (state.rfind("23", 0) == 0) return absl::FailedPreconditionError(message);
    if (state == "40001" || state == "40P01") return absl::AbortedError(message);
    // What a failover or an overloaded database looks like: retry, with the same request id.
    // 25006: read-only (a demoted primary, a standby); 53300: too many connections; 55P03: the
    // writers' lock not free within lock_timeout; 57014: a statement cancelled.
    if (state == "25006" || state == "53300" || state == "55P03" || state == "57014") {
      return absl::UnavailableError(message);
    }
    if (state == "53200") return absl::ResourceExhaustedError(message);  // out of memory
    if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0) {
      return absl::UnavailableError(message);
    }
    if (state == "53100") return absl::ResourceExhaustedError(message);  // disk full
    return absl::InternalError(message);
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
      dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

}  // namespace steritrack::pg
