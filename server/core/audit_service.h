// AuditService: the audit trail (PRODUCT.md rule 9) and the integrator event stream, read side.
//
// Every change appends an event in the same transaction as the change (the core write services do
// that); this service verifies the hash chain, lists entries with filters and pagination, and reads
// the committed events after a stream cursor. Plain C++ over the Store interface. Thread-safe.
#ifndef STERITRACK_SERVER_CORE_AUDIT_SERVICE_H_
#define STERITRACK_SERVER_CORE_AUDIT_SERVICE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/cartridge_service.h"
#include "steritrack/model.h"
#include "steritrack/store.h"

namespace steritrack {

struct AuditQuery {
  PageRequest page;
  std::string action;  // empty: any
  std::string actor;   // empty: any
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
};

class AuditService {
 public:
  explicit AuditService(AuditServiceOptions options) : store_(options.store) {}

  AuditService(const AuditService&) = delete;
  AuditService& operator=(const AuditService&) = delete;

  // Checks the whole hash chain and its cross-checks; not intact is an answer, not an error.
  absl::StatusOr<AuditChainCheck> Verify();

  absl::StatusOr<Page<Event>> ListEntries(const AuditQuery& query);

  // Stream cursors: opaque to clients, "e1.<seq>" inside; empty is the beginning and "now" is the
  // last committed event. INVALID_ARGUMENT for anything else.
  absl::StatusOr<int64_t> ParseCursor(std::string_view cursor);
  static std::string CursorOf(int64_t seq);

  // Up to `limit` committed events after `after_seq` whose action is in `actions` (empty: all).
  absl::StatusOr<EventBatch> EventsAfter(int64_t after_seq, const std::vector<std::string>& actions,
                                         int limit);

 private:
  Store* const store_;
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_CORE_AUDIT_SERVICE_H_
