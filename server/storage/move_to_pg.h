// Moving up (issue 13): a single clinic's SQLite database, its whole history, into a site of a
// clinic chain's PostgreSQL database (steritrackd migrate).
//
// Every row of every table is copied as it is (ids, audit sequence numbers, hashes, times), so
// that the site's audit hash chain is the clinic's, entry for entry, and verifies the same. It is
// one PostgreSQL transaction: the site holds all of the history or, on any failure, nothing. The
// schema's guards (triggers) stand aside for the copy only, since they refuse rewriting the past;
// foreign keys stay on (tables are filled parents first). The SQLite file is only read.
//
// Refusals: FAILED_PRECONDITION when the SQLite database is not at this build's schema version
// (start this build's steritrackd on it once) or when its audit head is missing; ALREADY_EXISTS
// SITE_EXISTS when the target site holds any record already; INVALID_ARGUMENT for a bad site id.
#ifndef STERITRACK_SERVER_STORAGE_MOVE_TO_PG_H_
#define STERITRACK_SERVER_STORAGE_MOVE_TO_PG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace steritrack {

struct MoveToPgOptions {
  std::string sqlite_path;  // an existing SQLite database file
  std::string pg_url;       // postgresql://...
  std::string site;         // the site to fill; created unless it exists and is empty
  // Told what happens, in a sentence (the site created, each table copied); may be empty.
  std::function<void(const std::string&)> notice;
};

struct MoveToPgResult {
  // Every table copied with its row count, which the target was checked to hold afterwards.
  std::vector<std::pair<std::string, int64_t>> tables;
  int64_t rows = 0;
  int64_t audit_entries = 0;  // the audit head's sequence number: the entries moved
};

absl::StatusOr<MoveToPgResult> MoveSqliteToPg(const MoveToPgOptions& options);

}  // namespace steritrack

#endif  // STERITRACK_SERVER_STORAGE_MOVE_TO_PG_H_
