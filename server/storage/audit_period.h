// Where a period's audit entries lie in the trail, for a listing in seq order with a time range
// (AuditLogReads::ListAuditEntries): shared by the SQLite and PostgreSQL backends, which each
// answer the few questions it asks with their own statements. Internal to server/storage.
//
// Without it, a listing of a period walks the trail (or an action's entries) in seq order from the
// page's after_seq and reads every entry for its time: every entry before the period to reach it,
// and every entry after it to know that none is left (a day of a 54M-entry trail took 30 s).
// Entries carry the server's clock, which can step back, so time order is not seq order and the
// period's seqs cannot be read off its two ends in time order: they are the minimum and maximum
// over its whole range of the index events_at (at, seq), one index entry each (a day at 54M
// entries: 49,149 entries, 13 ms in SQLite). That is read only when the walk it saves is longer.
#ifndef STERITRACK_SERVER_STORAGE_AUDIT_PERIOD_H_
#define STERITRACK_SERVER_STORAGE_AUDIT_PERIOD_H_

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "steritrack/status_macros.h"
#include "steritrack/store.h"

namespace steritrack::storage_internal {

// A period [from, to) in the stored microseconds, both ends inclusive here; an open end is the
// extreme value.
struct PeriodMicros {
  int64_t from = std::numeric_limits<int64_t>::min();
  int64_t to_inclusive = std::numeric_limits<int64_t>::max();
};

// The seqs from `first` to `last` hold every entry of a period; none when last < first.
struct SeqRange {
  int64_t first = 1;
  int64_t last = 0;
  bool empty() const { return last < first; }
};

// Up to this many entries to walk, a listing walks them: finding out where the period lies would
// cost more.
inline constexpr int64_t kCheapAuditWalk = 256;

// `Probes` answers, for the listing's filter:
//   absl::StatusOr<int64_t> Head();  the highest seq, 0 when none
//   absl::StatusOr<int64_t> ActionEntriesAfter(int64_t after, int64_t cap);  the filter's action's
//       entries after `after`, counted up to `cap` from its index alone
//   absl::StatusOr<std::optional<int64_t>> EndInTimeOrder(const PeriodMicros&, bool last);  the seq
//       of the period's first (or last) entry in (at, seq) order; nullopt when it has none
//   absl::StatusOr<SeqRange> SeqsOf(const PeriodMicros&);  min and max seq of the period's entries
// Returns where the period's entries lie, or nullopt when the listing should walk as it would
// without knowing: the walk is short (kCheapAuditWalk), or the trail outside the period that it
// would pass, estimated from the seqs of the period's ends in time order, is not larger than the
// period itself.
template <typename Probes>
absl::StatusOr<std::optional<SeqRange>> PeriodSeqs(const AuditEntryFilter& f, Probes& probes) {
  const PeriodMicros period{
      .from = f.from ? absl::ToUnixMicros(*f.from) : std::numeric_limits<int64_t>::min(),
      .to_inclusive = f.to ? absl::ToUnixMicros(*f.to) - 1 : std::numeric_limits<int64_t>::max()};
  ASSIGN_OR_RETURN(const int64_t head, probes.Head());
  if (f.action.empty()) {
    if (head - f.after_seq < kCheapAuditWalk) return std::nullopt;
  } else {
    ASSIGN_OR_RETURN(const int64_t entries,
                     probes.ActionEntriesAfter(f.after_seq, kCheapAuditWalk));
    if (entries < kCheapAuditWalk) return std::nullopt;
  }
  ASSIGN_OR_RETURN(const std::optional<int64_t> first, probes.EndInTimeOrder(period, false));
  if (!first.has_value()) return SeqRange{};  // no entry in the period at all
  ASSIGN_OR_RETURN(const std::optional<int64_t> last, probes.EndInTimeOrder(period, true));
  if (!last.has_value()) return SeqRange{};
  const int64_t inside = std::abs(*last - *first) + 1;
  const int64_t outside =
      std::max<int64_t>(0, *first - f.after_seq) + std::max<int64_t>(0, head - *last);
  if (inside >= outside) return std::nullopt;
  return probes.SeqsOf(period);
}

// The seqs a listing of `f` walks: those after `after` up to `last`; none at all when `none`.
// Both bounds go into one range of the walk's index: SQLite starts a walk from one lower bound
// only, so `after` is the later of the page's cursor and the period's start.
struct AuditWalk {
  int64_t after = 0;
  int64_t last = std::numeric_limits<int64_t>::max();
  bool none = false;
};

template <typename Probes>
absl::StatusOr<AuditWalk> AuditWalkFor(const AuditEntryFilter& f, Probes& probes) {
  AuditWalk walk{.after = f.after_seq};
  if (!f.from.has_value() && !f.to.has_value()) return walk;
  ASSIGN_OR_RETURN(const std::optional<SeqRange> period, PeriodSeqs(f, probes));
  if (!period.has_value()) return walk;
  if (period->empty()) return AuditWalk{.none = true};
  walk.after = std::max(walk.after, period->first - 1);
  walk.last = period->last;
  return walk;
}

}  // namespace steritrack::storage_internal

#endif  // STERITRACK_SERVER_STORAGE_AUDIT_PERIOD_H_
