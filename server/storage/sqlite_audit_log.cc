// The audit trail and stored answers of idempotent writes in SQLite (steritrack::AuditLogWrites).
// The hash chain is core's: this stores each entry with its hash and previous hash, and the head.
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/storage/sqlite_repositories.h"
#include "server/storage/sqlite_rows.h"
#include "steritrack/failpoint.h"

namespace steritrack::sqlite {
namespace {

class SqliteAuditLog final : public AuditLogWrites {
 public:
  explicit SqliteAuditLog(Connection* conn) : conn_(conn) {}

  absl::StatusOr<std::vector<Event>> ListEvents(const EventFilter& f) override {
    const bool any_id = f.lot_id != 0 || f.cartridge_id != 0 || f.treatment_id != 0 ||
                        f.item_id != 0 || f.load_id != 0 || f.sterilizer_id != 0;
    // No id: every event (store.h). A statement of its own, so that the id arms below keep their
    // multi-index lookup instead of a scan.
    static constexpr const char* kAllSql =
        "SELECT " EVENT_COLUMNS
        " FROM events WHERE seq > ?1 "
        "AND (?6 = 0 OR cartridge_id IS NULL) ORDER BY seq LIMIT ?5";
    // Partial indexes make each id arm cheap; the OR is a multi-index lookup.
    static constexpr const char* kByIdSql =
        "SELECT " EVENT_COLUMNS
        " FROM events WHERE seq > ?1 "
        "AND (lot_id = ?2 OR cartridge_id = ?3 OR treatment_id = ?4 OR item_id = ?7 "
        "OR load_id = ?8 OR sterilizer_id = ?9) "
        "AND (?6 = 0 OR cartridge_id IS NULL) ORDER BY seq LIMIT ?5";
    // A lot's own events (created, recalled, quarantined), not its units': one range of the
    // partial index events_lot_wide (lot_id, seq) WHERE cartridge_id IS NULL, instead of every
    // event of every unit of the lot (a cartridge's history asks for this at each scan).
    static constexpr const char* kLotWideSql =
        "SELECT " EVENT_COLUMNS
        " FROM events WHERE lot_id = ?2 AND cartridge_id IS NULL AND seq > ?1 "
        "ORDER BY seq LIMIT ?5";
    const bool lot_wide = f.lot_wide_only && f.lot_id != 0 && f.cartridge_id == 0 &&
                          f.treatment_id == 0 && f.item_id == 0 && f.load_id == 0 &&
                          f.sterilizer_id == 0;
    if (lot_wide) {
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kLotWideSql));
      st->Bind(1, f.after_seq).Bind(2, f.lot_id).Bind(5, int64_t{f.limit});
      return Collect<Event>(
          *st, [](const Statement& s) -> absl::StatusOr<Event> { return ReadEventRow(s); });
    }
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(any_id ? kByIdSql : kAllSql));
    st->Bind(1, f.after_seq).Bind(5, int64_t{f.limit}).Bind(6, int64_t{f.lot_wide_only ? 1 : 0});
    if (any_id) {
      st->Bind(2, OptId(f.lot_id))
          .Bind(3, OptId(f.cartridge_id))
          .Bind(4, OptId(f.treatment_id))
          .Bind(7, OptId(f.item_id))
          .Bind(8, OptId(f.load_id))
          .Bind(9, OptId(f.sterilizer_id));
    }
    // Whole entries, before/after included: the report reads what followed a refusal from them.
    return Collect<Event>(
        *st, [](const Statement& s) -> absl::StatusOr<Event> { return ReadEventRow(s); });
  }

  absl::StatusOr<std::optional<StoredRequest>> FindRequest(std::string_view request_id) override {
    static constexpr const char* kSql =
        "SELECT request_id, operation, fingerprint, response, at FROM requests "
        "WHERE request_id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, request_id);
    return First<StoredRequest>(*st, [](const Statement& s) -> absl::StatusOr<StoredRequest> {
      return StoredRequest{.request_id = s.Text(0),
                           .operation = s.Text(1),
                           .fingerprint = s.Text(2),
                           .response = s.Text(3),
                           .at = FromMicros(s.Int(4))};
    });
  }

  absl::StatusOr<std::vector<Event>> ListAuditEntries(const AuditEntryFilter& f) override {
    // With an action, a plain `action = ?2` lets SQLite walk the index events_action (action,
    // seq) for just that action's entries; "(?2 = '' OR action = ?2)" would hide it and scan the
    // whole trail, which a report asking for a rare action (refusals, stock alerts) pays at every
    // run. `seq <= ?7` ends the walk at a period's last entry (PeriodSeqs).
    static constexpr const char* kAnyAction =
        "SELECT " EVENT_COLUMNS
        " FROM events WHERE seq > ?1 AND seq <= ?7 AND ?2 = '' "
        "AND (?3 = '' OR actor = ?3) AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at < ?5) "
        "ORDER BY seq LIMIT ?6";
    static constexpr const char* kOneAction =
        "SELECT " EVENT_COLUMNS
        " FROM events WHERE action = ?2 AND seq > ?1 AND seq <= ?7 "
        "AND (?3 = '' OR actor = ?3) AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at < ?5) "
        "ORDER BY seq LIMIT ?6";
    int64_t after = f.after_seq;
    int64_t last = std::numeric_limits<int64_t>::max();
    if (f.from.has_value() || f.to.has_value()) {
      ASSIGN_OR_RETURN(std::optional<SeqRange> period, PeriodSeqs(f));
      if (period.has_value()) {
        if (period->last < period->first) return std::vector<Event>{};
        // Both bounds in one range: SQLite starts a walk from one lower bound only.
        after = std::max(after, period->first - 1);
        last = period->last;
      }
    }
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(f.action.empty() ? kAnyAction : kOneAction));
    st->Bind(1, after)
        .Bind(2, f.action)
        .Bind(3, f.actor)
        .Bind(4, f.from ? std::optional<int64_t>(Micros(*f.from)) : std::nullopt)
        .Bind(5, f.to ? std::optional<int64_t>(Micros(*f.to)) : std::nullopt)
        .Bind(6, int64_t{f.limit})
        .Bind(7, last);
    return Collect<Event>(
        *st, [](const Statement& s) -> absl::StatusOr<Event> { return ReadEventRow(s); });
  }

  absl::StatusOr<int64_t> LastEventSeq() override {
    static constexpr const char* kSql = "SELECT coalesce(max(seq), 0) FROM events";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    ASSIGN_OR_RETURN(bool row, st->Step());
    return row ? st->Int(0) : 0;
  }

  absl::StatusOr<AuditHead> ReadHead() override {
    AuditHead head;
    {
      static constexpr const char* kSql = "SELECT seq, hash FROM audit_head WHERE id = 1";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) {
        head.seq = st->Int(0);
        head.hash = st->Text(1);
      }
    }
    // SQLite's own AUTOINCREMENT counter: the highest seq ever issued.
    static constexpr const char* kSql =
        "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) head.issued = st->Int(0);
    return head;
  }

  absl::StatusOr<std::optional<AuditCheckpoint>> ReadVerifiedCheckpoint() override {
    static constexpr const char* kSql =
        "SELECT seq, hash, verified_at FROM audit_checkpoint WHERE id = 1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    return First<AuditCheckpoint>(*st, [](const Statement& s) -> absl::StatusOr<AuditCheckpoint> {
      return AuditCheckpoint{
          .seq = s.Int(0), .hash = s.Text(1), .verified_at = FromMicros(s.Int(2))};
    });
  }

  absl::Status SaveVerifiedCheckpoint(const AuditCheckpoint& checkpoint) override {
    static constexpr const char* kSql =
        "INSERT INTO audit_checkpoint (id, seq, hash, verified_at) VALUES (1, ?1, ?2, ?3) "
        "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
        "verified_at = excluded.verified_at";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, checkpoint.seq).Bind(2, checkpoint.hash).Bind(3, Micros(checkpoint.verified_at));
    return st->Run();
  }

  absl::Status Append(const Event& e) override {
    {
      // The next seq is the one after both the head and SQLite's own counter (core's
      // audit_chain::Append sets it so); any other is refused, as every backend refuses it.
      static constexpr const char* kSql =
          "SELECT max(coalesce((SELECT seq FROM audit_head WHERE id = 1), 0), "
          "coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)) + 1";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      ASSIGN_OR_RETURN(bool row, st->Step());
      const int64_t next = row ? st->Int(0) : 1;
      if (e.seq != next) {
        return absl::AlreadyExistsError(
            StrCat("audit entry ", e.seq, " is not the next one (", next, ")"));
      }
    }
    static constexpr const char* kSql =
        "INSERT INTO events (seq, at, actor, action, lot_id, cartridge_id, treatment_id, detail, "
        "request_id, item_id, load_id, sterilizer_id, before, after, corrects_seq, prev_hash, "
        "hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, e.seq)
        .Bind(2, Micros(e.at))
        .Bind(3, e.actor)
        .Bind(4, e.action)
        .Bind(5, OptId(e.lot_id))
        .Bind(6, OptId(e.cartridge_id))
        .Bind(7, OptId(e.treatment_id))
        .Bind(8, e.detail)
        .Bind(9, e.request_id)
        .Bind(10, OptId(e.item_id))
        .Bind(11, OptId(e.load_id))
        .Bind(12, OptId(e.sterilizer_id))
        .Bind(13, e.before)
        .Bind(14, e.after)
        .Bind(15, OptId(e.corrects_seq))
        .Bind(16, e.prev_hash)
        .Bind(17, e.hash);
    RETURN_IF_ERROR(st->Run());
    STERITRACK_FAILPOINT("audit_append");  // the entry written, the chain's head not yet
    return WriteAuditHead(*conn_, e.seq, e.hash);
  }

  absl::Status SaveRequest(const StoredRequest& r) override {
    static constexpr const char* kSql =
        "INSERT INTO requests (request_id, operation, fingerprint, response, at) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, r.request_id)
        .Bind(2, r.operation)
        .Bind(3, r.fingerprint)
        .Bind(4, r.response)
        .Bind(5, Micros(r.at));
    return st->Run();
  }

 private:
  // The seqs from `first` to `last` hold every entry of a period (none when last < first).
  struct SeqRange {
    int64_t first = 1;
    int64_t last = 0;
  };

  // Where the entries of `f`'s period [from, to) lie in the trail, when finding out costs less
  // than what a listing walks without knowing; nullopt when the walk is cheap anyway.
  //
  // A listing is in seq order and its walk starts at the page's `after_seq`: without bounds, a
  // period far from both ends of a long trail walks every entry before it to reach it and every
  // entry after it to know that none is left (a day of a 54M-entry trail took 30 s). Entries carry
  // the server's clock, which can step back, so time order is not seq order and the period's seqs
  // cannot be read off its two ends in events_at (at, seq): they are its whole range there, one
  // index entry each (a day at 54M entries: 49,149 entries, 13 ms). That is read only when the
  // walk it saves is longer: more than kCheapWalk entries to walk, and the trail outside the period
  // that the walk would pass (estimated from the seqs of its ends in time order) larger than it.
  absl::StatusOr<std::optional<SeqRange>> PeriodSeqs(const AuditEntryFilter& f) {
    static constexpr int64_t kCheapWalk = 256;
    const int64_t from = f.from ? Micros(*f.from) : std::numeric_limits<int64_t>::min();
    const int64_t to_incl = f.to ? Micros(*f.to) - 1 : std::numeric_limits<int64_t>::max();
    int64_t head = 0;
    {
      static constexpr const char* kSql = "SELECT coalesce(max(seq), 0) FROM events";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) head = st->Int(0);
    }
    if (f.action.empty()) {
      if (head - f.after_seq < kCheapWalk) return std::nullopt;
    } else {
      // The action's entries after the page, counted in events_action (action, seq) alone.
      static constexpr const char* kSql =
          "SELECT count(*) FROM (SELECT 1 FROM events WHERE action = ?1 AND seq > ?2 LIMIT ?3)";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, f.action).Bind(2, f.after_seq).Bind(3, kCheapWalk);
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row || st->Int(0) < kCheapWalk) return std::nullopt;
    }
    // The period's first and last entries in time order.
    static constexpr const char* kFirstSql =
        "SELECT seq FROM events WHERE at >= ?1 AND at <= ?2 ORDER BY at, seq LIMIT 1";
    static constexpr const char* kLastSql =
        "SELECT seq FROM events WHERE at >= ?1 AND at <= ?2 ORDER BY at DESC, seq DESC LIMIT 1";
    int64_t ends[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(i == 0 ? kFirstSql : kLastSql));
      st->Bind(1, from).Bind(2, to_incl);
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) return SeqRange{};  // no entry in the period at all
      ends[i] = st->Int(0);
    }
    const int64_t inside = std::abs(ends[1] - ends[0]) + 1;
    const int64_t outside =
        std::max<int64_t>(0, ends[0] - f.after_seq) + std::max<int64_t>(0, head - ends[1]);
    if (inside >= outside) return std::nullopt;
    static constexpr const char* kRangeSql =
        "SELECT min(seq), max(seq) FROM events WHERE at >= ?1 AND at <= ?2";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kRangeSql));
    st->Bind(1, from).Bind(2, to_incl);
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row || st->IsNull(0)) return SeqRange{};
    return SeqRange{.first = st->Int(0), .last = st->Int(1)};
  }

  Connection* const conn_;
};

}  // namespace

std::unique_ptr<AuditLogWrites> NewAuditLogRepository(Connection* conn) {
  return std::make_unique<SqliteAuditLog>(conn);
}

}  // namespace steritrack::sqlite
