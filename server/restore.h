// `steritrackd restore --from SNAPSHOT --db FILE [--force]`: puts a snapshot (from `steritrack
// admin backup`) in place as the database a server will run on, only after it has passed SQLite's
// integrity check, the schema-version check and core's audit-trail verification, and never over a
// database in use. Run by steritrackd's main; single-threaded.
#ifndef STERITRACK_SERVER_RESTORE_H_
#define STERITRACK_SERVER_RESTORE_H_

#include <ostream>
#include <string>

namespace steritrack {

struct RestoreOptions {
  std::string from;    // the snapshot file
  std::string db;      // the database file to create or, with `force`, replace
  bool force = false;  // replace an existing database (never one in use)
};

// Returns the process's exit code: 0 restored, 1 refused or failed, with one line to `err`
// naming the reason. Progress and the result go to `out`.
int RunRestore(const RestoreOptions& options, std::ostream& out, std::ostream& err);

}  // namespace steritrack

#endif  // STERITRACK_SERVER_RESTORE_H_
