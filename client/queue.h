// OfflineQueue: the CLI's durable queue of writes that are safe to deliver later.
//
// When the server cannot be reached, a disposal or a treatment end is not lost: it is stored in a
// local SQLite file (synchronous=FULL, so a killed CLI keeps it) with the request id it was first
// sent with, and delivered when the server is back. The server's idempotency makes a delivery that
// is repeated after a crash harmless. Opening a cartridge is never queued: it fails closed.
// One process at a time per file is the normal case; SQLite's locking keeps concurrent CLIs safe.
//
// Every SQLite call is checked. A queue file that cannot be read or written (not a database,
// corrupt, a directory, locked by another process for too long) is an error naming the file and
// SQLite's message, never an empty list: an empty answer would tell the nurse that nothing is
// waiting when a disposal may be. Not thread-safe; one per process.
#ifndef STERITRACK_CLIENT_QUEUE_H_
#define STERITRACK_CLIENT_QUEUE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace steritrack::cli {

// Bounds on what the queue file may hold, so that a damaged or hostile file cannot make the CLI
// read without limit: a queued request is a small message (a disposal or a treatment end), its
// texts are short, and delivery goes in batches.
inline constexpr int64_t kMaxQueuedRequestBytes = 64 * 1024;
inline constexpr int64_t kMaxQueuedTextBytes = 64 * 1024;
inline constexpr int64_t kMaxPendingBatch = 1000;

struct QueuedWrite {
  int64_t id = 0;
  std::string method;   // "DisposeCartridge" or "EndTreatment"
  std::string request;  // the serialised request message, request id included
  std::string request_id;
  std::string description;  // plain words for the nurse, e.g. "dispose CRT000102 in SHARPS-01"
  int64_t queued_at = 0;    // unix seconds
  std::string state;        // PENDING, SENT, REFUSED
  std::string outcome;      // the server's answer for SENT/REFUSED
  // The site of a clinic chain the write was for (x-steritrack-site); empty: the credential's own.
  std::string site;
};

class OfflineQueue {
 public:
  // Opens (creating if needed) the queue file and checks that it is a readable queue.
  static absl::StatusOr<std::unique_ptr<OfflineQueue>> Open(const std::string& path);
  ~OfflineQueue();
  OfflineQueue(const OfflineQueue&) = delete;
  OfflineQueue& operator=(const OfflineQueue&) = delete;

  // Durably stores a write. A write whose request id is already queued is stored once. A write
  // beyond the bounds above is refused (INVALID_ARGUMENT), never stored to block the queue.
  absl::Status Enqueue(const QueuedWrite& write);
  // The oldest `limit` writes still to deliver, oldest first. An entry larger than any the CLI
  // writes (kMaxQueuedRequestBytes, kMaxQueuedTextBytes) is an error naming the file and the
  // entry, found before its value is read.
  absl::StatusOr<std::vector<QueuedWrite>> Pending(int64_t limit = kMaxPendingBatch);
  // Records the server's answer to a delivered write. NOT_FOUND if `id` is not in the queue.
  absl::Status MarkSent(int64_t id, const std::string& outcome);
  absl::Status MarkRefused(int64_t id, const std::string& outcome);
  absl::StatusOr<int64_t> PendingCount();

  const std::string& path() const { return path_; }

 private:
  OfflineQueue(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status SetState(int64_t id, const char* state, const std::string& outcome);
  // "cannot <what> offline queue <path>: <SQLite's message>", with a code that says whether a
  // retry may help (a locked file) or not (a file that is not a queue).
  absl::Status Error(const std::string& what, int rc) const;

  sqlite3* db_;
  std::string path_;
};

// $STERITRACK_QUEUE, else $XDG_CONFIG_HOME/steritrack/queue.db, else ~/.config/steritrack/queue.db.
std::string DefaultQueuePath();

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_QUEUE_H_
