// The audit trail and stored answers of idempotent writes in SQLite (steritrack::AuditLogWrites).
// The hash chain is core's: this stores each entry with its hash and previous hash, and the head.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/storage/audit_period.h"
#include "server/storage/sqlite_repositories.h"
#include "server/storage/sqlite_rows.h"
#include "steritrack/failpoint.h"

namespace steritrack::sqlite {
namespace {

// The highest committed event seq, 0 when there is none.
absl::StatusOr<int64_t> LastSeq(Connection& conn) {
  static constexpr const char* kSql = "SELECT coalesce(max(seq), 0) FROM events";
  ASSIGN_OR_RETURN(auto st, conn.Prepare(kSql));
  ASSIGN_OR_RETURN(bool row, st->Step());
  return row ? st->Int(0) : 0;
}

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
    // run. With a time range the walk starts and ends where the period lies (audit_period.h).
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
    PeriodProbes probes(*conn_, f);
    return storage_internal::ListAuditPeriod(
        f, probes,
        [&](int64_t after, int64_t last, int64_t limit) -> absl::StatusOr<std::vector<Event>> {
          ASSIGN_OR_RETURN(auto st, conn_->Prepare(f.action.empty() ? kAnyAction : kOneAction));
          st->Bind(1, after)
              .Bind(2, f.action)
              .Bind(3, f.actor)
              .Bind(4, f.from ? std::optional<int64_t>(Micros(*f.from)) : std::nullopt)
              .Bind(5, f.to ? std::optional<int64_t>(Micros(*f.to)) : std::nullopt)
              .Bind(6, limit)
              .Bind(7, last);
          return Collect<Event>(
              *st, [](const Statement& s) -> absl::StatusOr<Event> { return ReadEventRow(s); });
        });
  }

  absl::StatusOr<int64_t> LastEventSeq() override { return LastSeq(*conn_); }

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
  // The questions storage_internal::ListAuditPeriod asks, in SQLite: each a few pages of an index.
  class PeriodProbes {
   public:
    PeriodProbes(Connection& conn, const AuditEntryFilter& f) : conn_(conn), f_(f) {}

    absl::StatusOr<int64_t> Head() { return LastSeq(conn_); }
    // In events_action (action, seq) alone.
    absl::StatusOr<int64_t> ActionEntriesBetween(int64_t after, int64_t last, int64_t cap) {
      static constexpr const char* kSql =
          "SELECT count(*) FROM (SELECT 1 FROM events WHERE action = ?1 AND seq > ?2 "
          "AND seq <= ?3 LIMIT ?4)";
      ASSIGN_OR_RETURN(auto st, conn_.Prepare(kSql));
      st->Bind(1, f_.action).Bind(2, after).Bind(3, last).Bind(4, cap);
      ASSIGN_OR_RETURN(bool row, st->Step());
      return row ? st->Int(0) : 0;
    }
    // One step into events_at (at, seq), from either end of the period's range.
    absl::StatusOr<std::optional<int64_t>> EndInTimeOrder(const storage_internal::PeriodMicros& p,
                                                          bool last) {
      static constexpr const char* kFirstSql =
          "SELECT seq FROM events WHERE at >= ?1 AND at <= ?2 ORDER BY at, seq LIMIT 1";
      static constexpr const char* kLastSql =
          "SELECT seq FROM events WHERE at >= ?1 AND at <= ?2 ORDER BY at DESC, seq DESC LIMIT 1";
      ASSIGN_OR_RETURN(auto st, conn_.Prepare(last ? kLastSql : kFirstSql));
      st->Bind(1, p.from).Bind(2, p.to_inclusive);
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) return std::nullopt;
      return st->Int(0);
    }
    // The period's whole range of events_at (a covering index: no entry is read).
    absl::StatusOr<storage_internal::SeqRange> SeqsOf(const storage_internal::PeriodMicros& p) {
      static constexpr const char* kSql =
          "SELECT min(seq), max(seq) FROM events WHERE at >= ?1 AND at <= ?2";
      ASSIGN_OR_RETURN(auto st, conn_.Prepare(kSql));
      st->Bind(1, p.from).Bind(2, p.to_inclusive);
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row || st->IsNull(0)) return storage_internal::SeqRange{};
      return storage_internal::SeqRange{.first = st->Int(0), .last = st->Int(1)};
    }

   private:
    Connection& conn_;
    const AuditEntryFilter& f_;
  };

  Connection* const conn_;
};

}  // namespace

std::unique_ptr<AuditLogWrites> NewAuditLogRepository(Connection* conn) {
  return std::make_unique<SqliteAuditLog>(conn);
}

}  // namespace steritrack::sqlite
