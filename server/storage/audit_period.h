// A listing of audit entries in seq order with a time range (AuditLogReads::ListAuditEntries),
// walked only where the period lies in the trail: shared by the SQLite and PostgreSQL backends,
// which each answer the few questions it asks with their own statements. Internal to
// server/storage.
//
// Without it, a listing of a period walks the trail (or an action's entries) in seq order from the
// page's after_seq and reads every entry for its time: every entry before the period to reach it,
// and every entry after it to know that none is left (a day of a 54M-entry trail took 30 s).
// Entries carry the server's clock, which can step back, so time order is not seq order: the seqs
// of the period's two ends in time order (one step each into the index events_at (at, seq)) are
// only estimates of where it lies. Exactly, its seqs are the minimum and maximum over its whole
// range of events_at, one index entry each (a day at 54M entries: 49,149 entries, 13 ms in SQLite).
// That range is read only where a walk would otherwise pass much more of the trail.
#ifndef STERITRACK_SERVER_STORAGE_AUDIT_PERIOD_H_
#define STERITRACK_SERVER_STORAGE_AUDIT_PERIOD_H_

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <optional>
#include <vector>

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
// What a walk pays for one entry it passes (a row read, in seq order or, for an action, one by one
// from events_action), in entries of events_at read in order: a row holds about a dozen entries'
// worth of bytes, and an index entry a few dozen bytes. Taken low, so that the walk is kept unless
// it passes clearly more than reading the period's range would.
inline constexpr int64_t kIndexEntriesPerWalkedEntry = 16;

// The entries of `f`, in seq order, at most f.limit.
//
// `walk(after, last, limit)` lists at most `limit` entries matching all of `f` with
// after < seq <= last, in seq order: one range of the primary key or of events_action.
// `probes` answers:
//   absl::StatusOr<int64_t> Head();  the highest seq, 0 when none
//   absl::StatusOr<int64_t> ActionEntriesBetween(int64_t after, int64_t last, int64_t cap);
//       f.action's entries with after < seq <= last, counted up to `cap` from events_action alone
//   absl::StatusOr<std::optional<int64_t>> EndInTimeOrder(const PeriodMicros&, bool last);  the seq
//       of the period's first (or last) entry in (at, seq) order; nullopt when it has none
//   absl::StatusOr<SeqRange> SeqsOf(const PeriodMicros&);  min and max seq of the period's entries
//
// What a walk passes is counted in the entries it reads: every entry in a seq range, or only the
// action's. The plan, for a period (no period: the walk from the cursor to the end):
// - a short walk (kCheapAuditWalk entries after the cursor) is walked;
// - a cursor more than that before the period's first entry in time order (its first page): the
//   walk takes the period's exact range, unless what it would pass outside the period (estimated
//   from the seqs of the period's ends in time order) is small beside the period;
// - a cursor at or in the period (its next pages): the walk ends at the period's last entry in time
//   order, which ends the period unless the clock stepped back. Only a page that comes back short
//   looks further: the rest of the trail when that is small beside the period, else up to the
//   period's exact end.
template <typename Probes, typename Walk>
absl::StatusOr<std::vector<Event>> ListAuditPeriod(const AuditEntryFilter& f, Probes& probes,
                                                   Walk walk) {
  constexpr int64_t kNoEnd = std::numeric_limits<int64_t>::max();
  const int64_t limit = f.limit;
  if (!f.from.has_value() && !f.to.has_value()) return walk(f.after_seq, kNoEnd, limit);
  const PeriodMicros period{
      .from = f.from ? absl::ToUnixMicros(*f.from) : std::numeric_limits<int64_t>::min(),
      .to_inclusive = f.to ? absl::ToUnixMicros(*f.to) - 1 : kNoEnd};
  ASSIGN_OR_RETURN(const int64_t head, probes.Head());
  // The entries a walk of (a, b] reads, counted up to `cap`.
  auto walked = [&](int64_t a, int64_t b, int64_t cap) -> absl::StatusOr<int64_t> {
    if (b <= a) return 0;
    if (f.action.empty()) return std::min(b - a, cap);
    return probes.ActionEntriesBetween(a, b, cap);
  };
  ASSIGN_OR_RETURN(const int64_t after_cursor, walked(f.after_seq, head, kCheapAuditWalk));
  if (after_cursor < kCheapAuditWalk) return walk(f.after_seq, kNoEnd, limit);
  ASSIGN_OR_RETURN(const std::optional<int64_t> first, probes.EndInTimeOrder(period, false));
  if (!first.has_value()) return std::vector<Event>{};  // no entry in the period at all
  ASSIGN_OR_RETURN(const std::optional<int64_t> last, probes.EndInTimeOrder(period, true));
  if (!last.has_value()) return std::vector<Event>{};
  const int64_t inside = std::abs(*last - *first) + 1;
  // Past this many walked entries, reading the period's range costs less.
  const int64_t worth = inside / kIndexEntriesPerWalkedEntry + 1;
  const int64_t estimated_end = std::max(f.after_seq, *last);
  ASSIGN_OR_RETURN(const int64_t beyond, walked(estimated_end, head, worth));

  ASSIGN_OR_RETURN(const int64_t before,
                   walked(f.after_seq, *first, std::max(worth, kCheapAuditWalk + 1)));
  if (before > kCheapAuditWalk) {
    if (before + beyond < worth) return walk(f.after_seq, kNoEnd, limit);
    ASSIGN_OR_RETURN(const SeqRange exact, probes.SeqsOf(period));
    if (exact.empty()) return std::vector<Event>{};
    return walk(std::max(f.after_seq, exact.first - 1), exact.last, limit);
  }
  ASSIGN_OR_RETURN(std::vector<Event> entries, walk(f.after_seq, estimated_end, limit));
  const int64_t missing = limit - static_cast<int64_t>(entries.size());
  if (missing <= 0) return entries;
  int64_t end = kNoEnd;
  if (beyond >= worth) {
    ASSIGN_OR_RETURN(const SeqRange exact, probes.SeqsOf(period));
    if (exact.empty() || exact.last <= estimated_end) return entries;
    end = exact.last;
  }
  ASSIGN_OR_RETURN(std::vector<Event> more, walk(estimated_end, end, missing));
  entries.insert(entries.end(), std::make_move_iterator(more.begin()),
                 std::make_move_iterator(more.end()));
  return entries;
}

}  // namespace steritrack::storage_internal

#endif  // STERITRACK_SERVER_STORAGE_AUDIT_PERIOD_H_
