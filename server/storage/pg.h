// libpqxx, as server/storage uses it for the PostgreSQL backend (issue 13): libpqxx's exceptions
// become absl::Status here and nowhere else, and every statement a repository runs is in its own
// SAVEPOINT, so that a refused statement undoes only itself and the transaction
// goes on, as a refused statement does in SQLite.
//
// Internal to server/storage. A transaction is used by one thread at a time.
#ifndef STERITRACK_SERVER_STORAGE_PG_H_
#define STERITRACK_SERVER_STORAGE_PG_H_

#ifndef STERITRACK_STORAGE_IMPLEMENTATION
#error "server/storage/pg.h is internal to server/storage"
#endif

#include <cstdint>
#include <exception>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace steritrack::pg {

// Converts an exception thrown by libpqxx (or the standard library) to a status; `what` says
// which operation failed. unique_violation (23505) is ALREADY_EXISTS, the other integrity and
// check violations (23xxx, and the schema triggers' refusals) FAILED_PRECONDITION, a
// serialization failure or deadlock ABORTED, a lost connection UNAVAILABLE, anything else
// INTERNAL; what a failover or an overloaded database answers (read-only, too many connections,
// a lock or statement timeout) UNAVAILABLE.
absl::Status ToStatus(const std::exception& e, std::string_view what);

// Times are BIGINT microseconds since the Unix epoch, as in SQLite.
inline int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
inline absl::Time FromMicros(int64_t micros) { return absl::FromUnixMicros(micros); }

// The transaction a repository works in.
class Tx {
 public:
  // REQUIRES: `tx` outlives this object. Without `savepoints` (a read-only transaction, where a
  // failed statement has nothing to undo) statements run directly.
  explicit Tx(pqxx::dbtransaction* tx, bool savepoints = true) : tx_(tx), savepoints_(savepoints) {}

  // Runs `body(t)` inside a savepoint of this transaction: kept when `body` returns OK, undone
  // when it returns an error or throws (the exception converted by ToStatus, with `what`), after
  // which the transaction goes on. `body` returns absl::Status or absl::StatusOr<T>. (Plain
  // SAVEPOINT statements: libpqxx 6.4's subtransaction leaves the transaction aborted after a
  // failed statement.)
  template <typename Body>
  std::invoke_result_t<Body, pqxx::transaction_base&> Run(std::string_view what, Body&& body) {
    if (!savepoints_) {
      try {
        return body(static_cast<pqxx::transaction_base&>(*tx_));
      } catch (const std::exception& e) {
        return ToStatus(e, what);
      }
    }
    try {
      tx_->exec("SAVEPOINT stmt");
    } catch (const std::exception& e) {
      return ToStatus(e, what);
    }
    std::invoke_result_t<Body, pqxx::transaction_base&> out = absl::UnknownError("not run");
    try {
      out = body(static_cast<pqxx::transaction_base&>(*tx_));
    } catch (const std::exception& e) {
      out = ToStatus(e, what);
    }
    try {
      if (!out.ok()) tx_->exec("ROLLBACK TO SAVEPOINT stmt");
      tx_->exec("RELEASE SAVEPOINT stmt");
    } catch (const std::exception& e) {
      return ToStatus(e, what);
    }
    return out;
  }

 private:
  pqxx::dbtransaction* tx_;
  bool savepoints_;
};

// Sites (server/storage/pg_store.h): the advisory lock every migration runs under, and the schema
// of `site` brought to this build's version inside `w`, created when missing, with what was done
// appended to `done`. REQUIRES: `w` (its session or itself) holds kMigrationLock.
inline constexpr int64_t kMigrationLock = 0x53544552495402;
absl::Status MigrateSiteIn(pqxx::transaction_base& w, std::string_view site,
                           std::vector<std::string>* done);

}  // namespace steritrack::pg

#endif  // STERITRACK_SERVER_STORAGE_PG_H_
