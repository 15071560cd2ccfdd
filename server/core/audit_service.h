// AuditService: the audit trail (PRODUCT.md rule 9) and the integrator event stream, read side.
//
// Every change appends an event in the same transaction as the change (the core write services do
// that); this service verifies the hash chain, lists entries with filters and pagination, and reads
// the committed events after a stream cursor. Plain C++ over the Store interface. Thread-safe.
#ifndef STERITRACK_SERVER_CORE_AUDIT_SERVICE_H_
#define STERITRACK_SERVER_CORE_AUDIT_SERVICE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/cartridge_service.h"
#include "server/core/commit_notifier.h"
#include "steritrack/clock.h"
#include "steritrack/model.h"
#include "steritrack/sha256.h"
#include "steritrack/store.h"

namespace steritrack {

struct AuditQuery {
  PageRequest page;
  std::string action;              // empty: any
  std::string actor;               // empty: any
  std::optional<absl::Time> from;  // inclusive
  std::optional<absl::Time> to;    // exclusive
};

// One batch of the event stream.
struct EventBatch {
  std::vector<Event> events;  // matching events, in seq order
  int64_t scanned_to = 0;     // the last seq looked at (matching or not): the next cursor
};

struct AuditServiceOptions {
  Store* store = nullptr;  // REQUIRES: non-null, outlives the service
  // The audit trail's hash function (steritrack/sha256.h). REQUIRES: non-null, outlives the
  // service.
  const Sha256* sha256 = nullptr;
  // Server time of corrections; null: the system clock. When set, outlives the service.
  const Clock* clock = nullptr;
  // Notified after a committed correction (wakes the event stream); may be null.
  CommitNotifier* commits = nullptr;
};

class AuditService {
 public:
  explicit AuditService(AuditServiceOptions options);

  AuditService(const AuditService&) = delete;
  AuditService& operator=(const AuditService&) = delete;

  // Checks the hash chain and its cross-checks; not intact is an answer, not an error. By default
  // only the entries after the stored verified checkpoint (audit_chain::VerifyAfter); `full`
  // recomputes every entry from the first. When intact, the checkpoint moves to the last entry
  // (a failure to store it leaves the older one and does not change the answer).
  absl::StatusOr<AuditChainCheck> Verify(bool full = false);
  // Verify in its two steps, for a caller that runs the long one on a thread of lower priority
  // (the rpc layer's background lane) and the short write on its own: CheckChain only reads;
  // KeepCheckpoint stores the checkpoint of an intact check through the writer and returns the
  // check with checkpoint_saved set. Verify(full) is KeepCheckpoint(CheckChain(full), full).
  absl::StatusOr<AuditChainCheck> CheckChain(bool full);
  AuditChainCheck KeepCheckpoint(AuditChainCheck check, bool full);

  absl::StatusOr<Page<Event>> ListEntries(const AuditQuery& query);

  // Rule 9: a correction is a new entry (AUDIT_CORRECTION) pointing at the one it corrects, with
  // the note as its detail; nothing is updated or deleted. Idempotent under ctx.request_id.
  // INVALID_ARGUMENT for an empty actor or note or a sequence below 1; NOT_FOUND
  // (AUDIT_ENTRY_NOT_FOUND) for an unknown sequence. Returns the new entry.
  absl::StatusOr<Event> CorrectAuditEntry(const WriteContext& ctx, int64_t seq,
                                          std::string_view note);

  // Stream cursors: opaque to clients, "e1.<seq>" inside; empty is the beginning and "now" is the
  // last committed event. INVALID_ARGUMENT for anything else.
  absl::StatusOr<int64_t> ParseCursor(std::string_view cursor);
  static std::string CursorOf(int64_t seq);

  // Up to `limit` committed events after `after_seq` whose action is in `actions` (empty: all).
  absl::StatusOr<EventBatch> EventsAfter(int64_t after_seq, const std::vector<std::string>& actions,
                                         int limit);

 private:
  absl::Status SaveCheckpoint(const AuditChainCheck& check, bool full);

  Store* const store_;
  std::unique_ptr<Clock> own_clock_;  // when no clock was given
  const Clock* const clock_;
  const Sha256* const sha256_;
  CommitNotifier* const commits_;
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_CORE_AUDIT_SERVICE_H_
