// The SQLite schema as an ordered list of forward migrations. Never edit a released migration:
// append a new one.
#ifndef STERITRACK_SERVER_STORAGE_SCHEMA_H_
#define STERITRACK_SERVER_STORAGE_SCHEMA_H_

#include <span>

#include "absl/status/statusor.h"
#include "server/storage/sqlite.h"

namespace steritrack::sqlite {

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

std::span<const Migration> Migrations();

// The schema version of the database `conn` is on: the last migration applied, 0 for a new one.
// REQUIRES: `conn` is used by the calling thread only.
absl::StatusOr<int> StoredSchemaVersion(Connection& conn);

}  // namespace steritrack::sqlite

#endif  // STERITRACK_SERVER_STORAGE_SCHEMA_H_
