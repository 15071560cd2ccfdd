// OfflineQueue: the CLI's durable queue of writes that are safe to deliver later.
//
// When the server cannot be reached, a disposal or a treatment end is not lost: it is stored in a
// local SQLite file (synchronous=FULL, so a killed CLI keeps it) with the request id it was first
// sent with, and delivered when the server is back. The server's idempotency makes a delivery that
// is repeated after a crash harmless. Opening a cartridge is never queued: it fails closed.
// One process at a time per file is the normal case; SQLite's locking keeps concurrent CLIs safe.
#ifndef STERITRACK_CLIENT_QUEUE_H_
#define STERITRACK_CLIENT_QUEUE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace steritrack::cli {

struct QueuedWrite {
  int64_t id = 0;
  std::string method;       // "DisposeCartridge" or "EndTreatment"
  std::string request;      // the serialised request message, request id included
  std::string request_id;
  std::string description;  // plain words for the nurse, e.g. "dispose CRT000102 in SHARPS-01"
  int64_t queued_at = 0;    // unix seconds
  std::string state;        // PENDING, SENT, REFUSED
  std::string outcome;      // the server's answer for SENT/REFUSED
};

class OfflineQueue {
 public:
  // Opens (creating if needed) the queue file. Returns null with `error` set on failure.
  static std::unique_ptr<OfflineQueue> Open(const std::string& path, std::string* error);
  ~OfflineQueue();
  OfflineQueue(const OfflineQueue&) = delete;
  OfflineQueue& operator=(const OfflineQueue&) = delete;

  // Durably stores a write; returns false with `error` when it could not be stored.
  bool Enqueue(const QueuedWrite& write, std::string* error);
  std::vector<QueuedWrite> Pending();
  void MarkSent(int64_t id, const std::string& outcome);
  void MarkRefused(int64_t id, const std::string& outcome);
  int64_t PendingCount();

  const std::string& path() const { return path_; }

 private:
  OfflineQueue(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  void SetState(int64_t id, const char* state, const std::string& outcome);
  sqlite3* db_;
  std::string path_;
};

// $STERITRACK_QUEUE, else $XDG_CONFIG_HOME/steritrack/queue.db, else ~/.config/steritrack/queue.db.
std::string DefaultQueuePath();

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_QUEUE_H_
