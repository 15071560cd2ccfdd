// The SQLite schema as an ordered list of forward migrations. Never edit a released migration:
// append a new one.
#ifndef STERITRACK_SERVER_STORAGE_SCHEMA_H_
#define STERITRACK_SERVER_STORAGE_SCHEMA_H_

#include <span>

namespace steritrack::sqlite {

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

std::span<const Migration> Migrations();

}  // namespace steritrack::sqlite

#endif  // STERITRACK_SERVER_STORAGE_SCHEMA_H_
