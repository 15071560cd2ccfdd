// DatabaseAdmin: operations on the database as a whole, beside the Store's transactions: the
// status an operator looks at (schema version, file sizes, audit-trail head) and an online
// snapshot for backups. Implemented by server/storage (SQLite); the RPC adapters reach it through
// this interface only, so no storage engine leaks into them.
//
// Thread-safe: calls may run side by side, and beside the Store's reads and writes.
#ifndef STERITRACK_DATABASE_ADMIN_H_
#define STERITRACK_DATABASE_ADMIN_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "steritrack/store.h"

namespace steritrack {

struct DatabaseStatus {
  std::string path;              // the database file
  int schema_version = 0;        // the database's
  int build_schema_version = 0;  // the one this build writes
  int64_t database_bytes = 0;
  int64_t wal_bytes = 0;  // the write-ahead log's; 0 when there is none
  AuditHead audit_head;
};

// A consistent copy of the whole database in a file of its own, which is removed when this object
// is destroyed. The figures describe the copy, read in the same transaction that copied it.
class DatabaseSnapshot {
 public:
  DatabaseSnapshot(std::string path, int64_t bytes, std::string sha256, int schema_version,
                   AuditHead audit_head)
      : path_(std::move(path)),
        bytes_(bytes),
        sha256_(std::move(sha256)),
        schema_version_(schema_version),
        audit_head_(std::move(audit_head)) {}
  virtual ~DatabaseSnapshot() = default;
  DatabaseSnapshot(const DatabaseSnapshot&) = delete;
  DatabaseSnapshot& operator=(const DatabaseSnapshot&) = delete;

  const std::string& path() const { return path_; }
  int64_t bytes() const { return bytes_; }
  const std::string& sha256() const { return sha256_; }  // lower-case hex of the file
  int schema_version() const { return schema_version_; }
  const AuditHead& audit_head() const { return audit_head_; }

 private:
  std::string path_;
  int64_t bytes_;
  std::string sha256_;
  int schema_version_;
  AuditHead audit_head_;
};

class DatabaseAdmin {
 public:
  virtual ~DatabaseAdmin() = default;
  virtual absl::StatusOr<DatabaseStatus> Status() = 0;
  // Takes a snapshot while writes go on; they are neither blocked nor in it once it has begun.
  // FAILED_PRECONDITION for a database that has no file (in memory).
  virtual absl::StatusOr<std::unique_ptr<DatabaseSnapshot>> TakeSnapshot() = 0;
};

}  // namespace steritrack

#endif  // STERITRACK_DATABASE_ADMIN_H_
