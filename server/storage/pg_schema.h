// The PostgreSQL 15 schema as an ordered list of forward migrations: the same steps, versions and
// descriptions as the SQLite schema (server/storage/schema.h), each step's SQL ported to
// PostgreSQL (what maps to what: server/storage/pg_schema.cc).
// Never edit a released migration: append a new one, to both lists. Internal to server/storage.
#ifndef STERITRACK_SERVER_STORAGE_PG_SCHEMA_H_
#define STERITRACK_SERVER_STORAGE_PG_SCHEMA_H_

#ifndef STERITRACK_STORAGE_IMPLEMENTATION
#error \
    "server/storage/pg_schema.h is internal to server/storage: include it only from there (see server/CMakeLists.txt)"
#endif

#include <span>

namespace steritrack::pg {

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

// The migrations in order. The runner keeps the bookkeeping table, as the SQLite runner does:
//   CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,
//     description TEXT NOT NULL, applied_at BIGINT NOT NULL)
// and applies each step with its row in schema_migrations in one transaction.
std::span<const Migration> Migrations();

}  // namespace steritrack::pg

#endif  // STERITRACK_SERVER_STORAGE_PG_SCHEMA_H_
