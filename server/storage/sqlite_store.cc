#include "server/storage/sqlite_store.h"

#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "server/storage/audit_chain.h"
#include "server/storage/schema.h"
#include "server/storage/sqlite.h"
#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

using sqlite::Connection;
using sqlite::Statement;

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

std::optional<int64_t> OptId(int64_t id) {
  return id == 0 ? std::nullopt : std::optional<int64_t>(id);
}

absl::StatusOr<LotState> ParseLotState(const std::string& s) {
  if (s == "ACTIVE") return LotState::kActive;
  if (s == "QUARANTINED") return LotState::kQuarantined;
  if (s == "RECALLED") return LotState::kRecalled;
  return absl::DataLossError(StrCat("unknown lot state in database: ", s));
}

// Reads the lot columns starting at `col`.
absl::StatusOr<Lot> ReadLot(const Statement& st, int col) {
  Lot lot;
  lot.id = st.Int(col);
  lot.gtin = st.Text(col + 1);
  lot.lot = st.Text(col + 2);
  if (!absl::ParseCivilTime(st.Text(col + 3), &lot.expiry)) {
    return absl::DataLossError(StrCat("bad expiry date in database for lot ", lot.lot));
  }
  ASSIGN_OR_RETURN(lot.state, ParseLotState(st.Text(col + 4)));
  lot.state_reason = st.Text(col + 5);
  lot.state_changed_by = st.Text(col + 6);
  if (!st.IsNull(col + 7)) lot.state_changed_at = FromMicros(st.Int(col + 7));
  lot.created_at = FromMicros(st.Int(col + 8));
  return lot;
}

#define LOT_COLUMNS                                                                   \
  "l.id, l.gtin, l.lot, l.expiry, l.state, l.state_reason, l.state_changed_by, " \
  "l.state_changed_at, l.created_at"

constexpr const char* kCartridgeSelect =
    "SELECT c.id, c.gtin, c.serial, c.received_at, c.received_by, " LOT_COLUMNS
    ", u.treatment_id, u.room, u.at, u.by, d.container_id, d.at, d.by, x.reason, x.at, x.by "
    "FROM cartridges c JOIN lots l ON l.id = c.lot_id "
    "LEFT JOIN cartridge_uses u ON u.cartridge_id = c.id "
    "LEFT JOIN cartridge_disposals d ON d.cartridge_id = c.id "
    "LEFT JOIN cartridge_discards x ON x.cartridge_id = c.id ";

absl::StatusOr<Cartridge> ReadCartridge(const Statement& st) {
  Cartridge c;
  c.id = st.Int(0);
  c.gtin = st.Text(1);
  c.serial = st.Text(2);
  c.received_at = FromMicros(st.Int(3));
  c.received_by = st.Text(4);
  ASSIGN_OR_RETURN(c.lot, ReadLot(st, 5));
  constexpr int kUse = 14, kDisposal = 18, kDiscard = 21;
  if (!st.IsNull(kUse)) {
    c.use = CartridgeUse{.treatment_id = st.Int(kUse), .room = st.Text(kUse + 1),
                         .at = FromMicros(st.Int(kUse + 2)), .by = st.Text(kUse + 3)};
    c.state = CartridgeState::kOpened;
  }
  if (!st.IsNull(kDisposal)) {
    c.disposal = Disposal{.container_id = st.Text(kDisposal),
                          .at = FromMicros(st.Int(kDisposal + 1)), .by = st.Text(kDisposal + 2)};
    c.state = CartridgeState::kDisposed;
  }
  if (!st.IsNull(kDiscard)) {
    c.discard = Discard{.reason = st.Text(kDiscard), .at = FromMicros(st.Int(kDiscard + 1)),
                        .by = st.Text(kDiscard + 2)};
    c.state = CartridgeState::kDiscarded;
  }
  return c;
}

absl::StatusOr<Treatment> ReadTreatment(const Statement& st) {
  Treatment t;
  t.id = st.Int(0);
  t.room = st.Text(1);
  t.clinician = st.Text(2);
  t.client_ref = st.Text(3);
  t.started_at = FromMicros(st.Int(4));
  t.started_by = st.Text(5);
  if (!st.IsNull(6)) t.ended_at = FromMicros(st.Int(6));
  t.ended_by = st.Text(7);
  return t;
}


absl::StatusOr<ItemState> ParseItemState(const std::string& s) {
  std::optional<ItemState> state = ItemStateFromName(s);
  if (!state) return absl::DataLossError(StrCat("unknown item state in database: ", s));
  return *state;
}

#define ITEM_COLUMNS                                                                         \
  "id, serial, type, ifu_max_cycles, cycles, maintenance_due, state, load_id, sterile_until, " \
  "treatment_id, state_reason, created_at"

absl::StatusOr<ReusableItem> ReadItem(const Statement& st) {
  ReusableItem item;
  item.id = st.Int(0);
  item.serial = st.Text(1);
  item.type = st.Text(2);
  item.ifu_max_cycles = static_cast<int32_t>(st.Int(3));
  item.cycles = static_cast<int32_t>(st.Int(4));
  if (!st.IsNull(5)) {
    absl::CivilDay day;
    if (!absl::ParseCivilTime(st.Text(5), &day)) {
      return absl::DataLossError(StrCat("bad maintenance date for item ", item.serial));
    }
    item.maintenance_due = day;
  }
  ASSIGN_OR_RETURN(item.state, ParseItemState(st.Text(6)));
  item.load_id = st.IsNull(7) ? 0 : st.Int(7);
  if (!st.IsNull(8)) item.sterile_until = FromMicros(st.Int(8));
  item.treatment_id = st.IsNull(9) ? 0 : st.Int(9);
  item.state_reason = st.Text(10);
  item.created_at = FromMicros(st.Int(11));
  return item;
}

#define STERILIZER_COLUMNS                                                             \
  "id, name, type, last_cycle_number, in_service, out_of_service_reason, " \
  "out_of_service_at, negative_tests, created_at"

absl::StatusOr<Sterilizer> ReadSterilizer(const Statement& st) {
  Sterilizer s;
  s.id = st.Int(0);
  s.name = st.Text(1);
  s.type = st.Text(2) == "GRAVITY" ? SterilizerType::kGravity : SterilizerType::kPreVacuum;
  s.last_cycle_number = st.Int(3);
  s.in_service = st.Int(4) != 0;
  s.out_of_service_reason = st.Text(5);
  if (!st.IsNull(6)) s.out_of_service_at = FromMicros(st.Int(6));
  s.negative_tests_since_out_of_service = static_cast<int32_t>(st.Int(7));
  s.created_at = FromMicros(st.Int(8));
  return s;
}

absl::StatusOr<ReleaseState> ParseReleaseState(const std::string& s) {
  if (s == "OPEN") return ReleaseState::kOpen;
  if (s == "RELEASED") return ReleaseState::kReleased;
  if (s == "QUARANTINED") return ReleaseState::kQuarantined;
  if (s == "RECALLED") return ReleaseState::kRecalled;
  return absl::DataLossError(StrCat("unknown load state in database: ", s));
}

#define LOAD_COLUMNS                                                                       \
  "l.id, l.sterilizer_id, s.name, l.cycle_number, l.cycle_type, l.test_cycle, "     \
  "l.bi_required, l.shelf_life_days, l.operator, l.created_at, l.release_state, l.signed_by, " \
  "l.signed_at, l.sign_meaning"

absl::StatusOr<Load> ReadLoadRow(const Statement& st) {
  Load l;
  l.id = st.Int(0);
  l.sterilizer_id = st.Int(1);
  l.sterilizer_name = st.Text(2);
  l.cycle_number = st.Int(3);
  l.cycle_type = st.Text(4);
  l.test_cycle = st.Int(5) != 0;
  l.bi_required = st.Int(6) != 0;
  l.shelf_life_days = static_cast<int32_t>(st.Int(7));
  l.operator_name = st.Text(8);
  l.created_at = FromMicros(st.Int(9));
  ASSIGN_OR_RETURN(l.release_state, ParseReleaseState(st.Text(10)));
  if (!st.IsNull(11)) {
    l.signature = Signature{.by = st.Text(11), .at = FromMicros(st.Int(12)), .meaning = st.Text(13)};
  }
  return l;
}

IndicatorResult ParseIndicator(const std::string& s) {
  return s == "PASS" ? IndicatorResult::kPass : IndicatorResult::kFail;
}
BiResult ParseBi(const std::string& s) {
  return s == "NEGATIVE" ? BiResult::kNegative : BiResult::kPositive;
}

template <typename T, typename ReadRow>
absl::StatusOr<std::vector<T>> Collect(Statement& st, ReadRow read_row) {
  std::vector<T> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(T item, read_row(st));
    out.push_back(std::move(item));
  }
  return out;
}

template <typename T, typename ReadRow>
absl::StatusOr<std::optional<T>> First(Statement& st, ReadRow read_row) {
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<T>();
  ASSIGN_OR_RETURN(T item, read_row(st));
  return std::optional<T>(std::move(item));
}

#define EVENT_COLUMNS                                                                       \
  "seq, at, actor, action, lot_id, cartridge_id, treatment_id, item_id, load_id, sterilizer_id, " \
  "detail, request_id, before, after, corrects_seq, prev_hash, hash"

Event ReadEventRow(const Statement& s) {
  return Event{.seq = s.Int(0), .at = FromMicros(s.Int(1)), .actor = s.Text(2),
               .action = s.Text(3), .lot_id = s.Int(4), .cartridge_id = s.Int(5),
               .treatment_id = s.Int(6), .item_id = s.Int(7), .load_id = s.Int(8),
               .sterilizer_id = s.Int(9), .detail = s.Text(10), .request_id = s.Text(11),
               .before = s.Text(12), .after = s.Text(13), .corrects_seq = s.Int(14),
               .hash = s.Text(16)};
}

constexpr int kPrevHashColumn = 15;
constexpr int kVerifyPage = 1000;

absl::Status WriteAuditHead(Connection& conn, int64_t seq, const std::string& hash) {
  static constexpr const char* kSql =
      "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2) "
      "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash";
  ASSIGN_OR_RETURN(auto st, conn.Prepare(kSql));
  st->Bind(1, seq).Bind(2, hash);
  return st->Run();
}

// Migration 4's step in C++: chains the entries written before the trail was hash-chained. Runs in
// the migration's transaction; the append-only trigger is lifted only inside it.
absl::Status HashExistingEvents(Connection& conn) {
  std::vector<Event> events;
  {
    static constexpr const char* kSql = "SELECT " EVENT_COLUMNS " FROM events ORDER BY seq";
    ASSIGN_OR_RETURN(auto st, conn.Prepare(kSql));
    ASSIGN_OR_RETURN(events, Collect<Event>(*st, [](const Statement& s) -> absl::StatusOr<Event> {
                       return ReadEventRow(s);
                     }));
  }
  if (events.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(conn.Exec("DROP TRIGGER events_are_final"));
  std::string prev(audit_chain::kGenesisHash);
  for (Event& e : events) {
    e.hash = audit_chain::EntryHash(prev, e);
    if (e.hash.empty()) return absl::InternalError("cannot hash an audit entry");
    static constexpr const char* kSql = "UPDATE events SET prev_hash = ?2, hash = ?3 WHERE seq = ?1";
    ASSIGN_OR_RETURN(auto st, conn.Prepare(kSql));
    st->Bind(1, e.seq).Bind(2, prev).Bind(3, e.hash);
    RETURN_IF_ERROR(st->Run());
    prev = e.hash;
  }
  RETURN_IF_ERROR(conn.Exec(
      "CREATE TRIGGER events_are_final BEFORE UPDATE ON events "
      "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"));
  return WriteAuditHead(conn, events.back().seq, events.back().hash);
}

// The migration whose SQL adds the hash chain (schema.cc); its C++ step chains older entries.
constexpr int kAuditChainMigration = 5;

// The reads, shared by read and write transactions; `conn` is held by the transaction.
template <typename Base>
class SqliteReads : public Base {
 public:
  explicit SqliteReads(Connection* conn) : conn_(conn) {}

  absl::StatusOr<std::optional<Lot>> FindLot(std::string_view gtin, std::string_view lot) override {
    static constexpr const char* kSql =
        "SELECT " LOT_COLUMNS " FROM lots l WHERE l.gtin = ?1 AND l.lot = ?2";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, gtin).Bind(2, lot);
    return First<Lot>(*st, [](const Statement& s) { return ReadLot(s, 0); });
  }

  absl::StatusOr<std::vector<Lot>> ListLots(const LotFilter& f) override {
    static constexpr const char* kSql =
        "SELECT " LOT_COLUMNS " FROM lots l WHERE l.id > ?1 AND (?2 = '' OR l.state = ?2) "
        "ORDER BY l.id LIMIT ?3";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, f.after_id)
        .Bind(2, f.state ? LotStateName(*f.state) : std::string_view())
        .Bind(3, int64_t{f.limit});
    return Collect<Lot>(*st, [](const Statement& s) { return ReadLot(s, 0); });
  }

  absl::StatusOr<int64_t> CountUnitsInStock(int64_t lot_id) override {
    static constexpr const char* kSql =
        "SELECT count(*) FROM cartridges c WHERE c.lot_id = ?1 "
        "AND NOT EXISTS (SELECT 1 FROM cartridge_uses u WHERE u.cartridge_id = c.id) "
        "AND NOT EXISTS (SELECT 1 FROM cartridge_discards x WHERE x.cartridge_id = c.id)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, lot_id);
    ASSIGN_OR_RETURN(bool row, st->Step());
    return row ? st->Int(0) : 0;
  }

  absl::StatusOr<std::optional<Cartridge>> FindCartridge(std::string_view gtin,
                                                         std::string_view serial) override {
    static const std::string kSql =
        StrCat(kCartridgeSelect, "WHERE c.gtin = ?1 AND c.serial = ?2");
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql.c_str()));
    st->Bind(1, gtin).Bind(2, serial);
    return First<Cartridge>(*st, ReadCartridge);
  }

  absl::StatusOr<std::vector<Cartridge>> ListCartridges(const CartridgeFilter& f) override {
    static const std::string kSql = StrCat(
        kCartridgeSelect,
        "WHERE c.id > ?1 AND (?2 = 0 OR c.lot_id = ?2) AND (?3 = 0 OR u.treatment_id = ?3) "
        "AND (?4 = '' OR ?4 = CASE WHEN x.cartridge_id IS NOT NULL THEN 'DISCARDED_UNUSED' "
        "WHEN d.cartridge_id IS NOT NULL THEN 'DISPOSED' "
        "WHEN u.cartridge_id IS NOT NULL THEN 'OPENED' ELSE 'RECEIVED' END) "
        "ORDER BY c.id LIMIT ?5");
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql.c_str()));
    st->Bind(1, f.after_id)
        .Bind(2, f.lot_id)
        .Bind(3, f.treatment_id)
        .Bind(4, f.state ? CartridgeStateName(*f.state) : std::string_view())
        .Bind(5, int64_t{f.limit});
    return Collect<Cartridge>(*st, ReadCartridge);
  }

  absl::StatusOr<std::optional<Treatment>> FindTreatment(int64_t id) override {
    static constexpr const char* kSql =
        "SELECT id, room, clinician, client_ref, started_at, started_by, ended_at, ended_by "
        "FROM treatments WHERE id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, id);
    return First<Treatment>(*st, ReadTreatment);
  }

  absl::StatusOr<std::vector<Treatment>> ListTreatments(const TreatmentFilter& f) override {
    static constexpr const char* kSql =
        "SELECT id, room, clinician, client_ref, started_at, started_by, ended_at, ended_by "
        "FROM treatments WHERE id > ?1 AND (?2 = '' OR room = ?2) "
        "AND (?3 IS NULL OR (ended_at IS NOT NULL) = ?3) ORDER BY id LIMIT ?4";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, f.after_id)
        .Bind(2, f.room)
        .Bind(3, f.ended ? std::optional<int64_t>(*f.ended ? 1 : 0) : std::nullopt)
        .Bind(4, int64_t{f.limit});
    return Collect<Treatment>(*st, ReadTreatment);
  }

  absl::StatusOr<std::vector<Event>> ListEvents(const EventFilter& f) override {
    static constexpr const char* kSql =
        "SELECT " EVENT_COLUMNS " FROM events WHERE seq > ?1 "
        "AND (lot_id = ?2 OR cartridge_id = ?3 OR treatment_id = ?4 OR item_id = ?7 "
        "OR load_id = ?8 OR sterilizer_id = ?9) "
        "AND (?6 = 0 OR cartridge_id IS NULL) ORDER BY seq LIMIT ?5";
    // Partial indexes make each id arm cheap; the OR is a multi-index lookup.
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, f.after_seq)
        .Bind(2, OptId(f.lot_id))
        .Bind(3, OptId(f.cartridge_id))
        .Bind(4, OptId(f.treatment_id))
        .Bind(5, int64_t{f.limit})
        .Bind(6, int64_t{f.lot_wide_only ? 1 : 0})
        .Bind(7, OptId(f.item_id))
        .Bind(8, OptId(f.load_id))
        .Bind(9, OptId(f.sterilizer_id));
    // Whole entries, before/after included: the report reads what followed a refusal from them.
    return Collect<Event>(*st, [](const Statement& s) -> absl::StatusOr<Event> {
      return ReadEventRow(s);
    });
  }

  absl::StatusOr<std::optional<StoredRequest>> FindRequest(std::string_view request_id) override {
    static constexpr const char* kSql =
        "SELECT request_id, operation, fingerprint, response, at FROM requests "
        "WHERE request_id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, request_id);
    return First<StoredRequest>(*st, [](const Statement& s) -> absl::StatusOr<StoredRequest> {
      return StoredRequest{.request_id = s.Text(0), .operation = s.Text(1),
                           .fingerprint = s.Text(2), .response = s.Text(3),
                           .at = FromMicros(s.Int(4))};
    });
  }


  // ---- The audit trail.

  absl::StatusOr<std::vector<Event>> ListAuditEntries(const AuditEntryFilter& f) override {
    static constexpr const char* kSql =
        "SELECT " EVENT_COLUMNS " FROM events WHERE seq > ?1 AND (?2 = '' OR action = ?2) "
        "AND (?3 = '' OR actor = ?3) AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at < ?5) "
        "ORDER BY seq LIMIT ?6";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, f.after_seq)
        .Bind(2, f.action)
        .Bind(3, f.actor)
        .Bind(4, f.from ? std::optional<int64_t>(Micros(*f.from)) : std::nullopt)
        .Bind(5, f.to ? std::optional<int64_t>(Micros(*f.to)) : std::nullopt)
        .Bind(6, int64_t{f.limit});
    return Collect<Event>(*st, [](const Statement& s) -> absl::StatusOr<Event> {
      return ReadEventRow(s);
    });
  }

  absl::StatusOr<int64_t> LastEventSeq() override {
    static constexpr const char* kSql = "SELECT coalesce(max(seq), 0) FROM events";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    ASSIGN_OR_RETURN(bool row, st->Step());
    return row ? st->Int(0) : 0;
  }

  absl::StatusOr<AuditChainCheck> VerifyAuditChain() override {
    AuditChainCheck check;
    auto broken = [&check](int64_t seq, std::string problem) {
      check.intact = false;
      check.first_bad_seq = seq;
      check.problem = std::move(problem);
      return check;
    };
    // The three records of how far the trail goes: the chain itself, the chain head written with
    // every entry, and SQLite's own AUTOINCREMENT counter (the highest seq ever issued).
    int64_t issued = 0;
    {
      static constexpr const char* kSql =
          "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) issued = st->Int(0);
    }
    std::optional<std::pair<int64_t, std::string>> head;
    {
      static constexpr const char* kSql = "SELECT seq, hash FROM audit_head WHERE id = 1";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) head.emplace(st->Int(0), st->Text(1));
    }

    int64_t expected = 1;
    std::string prev(audit_chain::kGenesisHash);
    while (true) {
      static constexpr const char* kSql =
          "SELECT " EVENT_COLUMNS " FROM events WHERE seq >= ?1 ORDER BY seq LIMIT ?2";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, expected).Bind(2, int64_t{kVerifyPage});
      int rows = 0;
      while (true) {
        ASSIGN_OR_RETURN(bool row, st->Step());
        if (!row) break;
        ++rows;
        const Event e = ReadEventRow(*st);
        const std::string stored_prev = st->Text(kPrevHashColumn);
        if (e.seq != expected) {
          return broken(expected, StrCat("entry ", expected, " is missing (removed)"));
        }
        const std::string own = audit_chain::EntryHash(stored_prev, e);
        if (stored_prev != prev) {
          // An entry that still matches its own hash is authentic, so its predecessor is the one
          // that was rewritten (altered and re-hashed).
          if (own == e.hash && expected > 1) {
            return broken(expected - 1,
                          StrCat("entry ", expected - 1, " was rewritten: entry ", expected,
                                 " no longer follows it"));
          }
          return broken(expected, StrCat("entry ", expected, " does not follow entry ",
                                         expected - 1, " (altered or moved)"));
        }
        if (own != e.hash) {
          return broken(expected,
                        StrCat("entry ", expected, " was altered: its contents do not match its hash"));
        }
        prev = e.hash;
        check.entries = expected;
        ++expected;
      }
      if (rows < kVerifyPage) break;
    }
    const int64_t last = expected - 1;
    if (issued > last) {
      return broken(last + 1, StrCat("entry ", last + 1, " and later are missing: the trail was cut "
                                     "off after entry ", last, " but entries up to ", issued,
                                     " were issued"));
    }
    if (issued < last) {
      return broken(issued + 1, StrCat("entries after ", issued, " were not issued by the server"));
    }
    const int64_t head_seq = head ? head->first : 0;
    if (head_seq > last) {
      return broken(last + 1, StrCat("entry ", last + 1, " and later are missing: the trail was cut "
                                     "off after entry ", last, " but the chain head records entry ",
                                     head_seq));
    }
    if (head_seq < last) {
      return broken(head_seq + 1, StrCat("entries after ", head_seq,
                                         " are not covered by the chain head"));
    }
    if (head && head->second != prev) {
      return broken(last, StrCat("entry ", last, " does not match the chain head"));
    }
    return check;
  }

  // ---- Reusable equipment and sterilisation.

  absl::StatusOr<std::optional<ReusableItem>> FindItem(std::string_view serial) override {
    static constexpr const char* kSql = "SELECT " ITEM_COLUMNS " FROM items WHERE serial = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, serial);
    return First<ReusableItem>(*st, ReadItem);
  }

  absl::StatusOr<std::optional<ReusableItem>> FindItemById(int64_t id) override {
    static constexpr const char* kSql = "SELECT " ITEM_COLUMNS " FROM items WHERE id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, id);
    return First<ReusableItem>(*st, ReadItem);
  }

  absl::StatusOr<std::vector<ReusableItem>> ListItems(const ItemFilter& f) override {
    static constexpr const char* kSql =
        "SELECT " ITEM_COLUMNS " FROM items WHERE id > ?1 AND (?2 = '' OR state = ?2) "
        "AND (?3 = 0 OR treatment_id = ?3) ORDER BY id LIMIT ?4";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, f.after_id)
        .Bind(2, f.state ? ItemStateName(*f.state) : std::string_view())
        .Bind(3, f.treatment_id)
        .Bind(4, int64_t{f.limit});
    return Collect<ReusableItem>(*st, ReadItem);
  }

  absl::StatusOr<std::optional<Sterilizer>> FindSterilizer(std::string_view name) override {
    static constexpr const char* kSql =
        "SELECT " STERILIZER_COLUMNS " FROM sterilizers WHERE name = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, name);
    return First<Sterilizer>(*st, ReadSterilizer);
  }

  absl::StatusOr<std::optional<Sterilizer>> FindSterilizerById(int64_t id) override {
    static constexpr const char* kSql = "SELECT " STERILIZER_COLUMNS " FROM sterilizers WHERE id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, id);
    return First<Sterilizer>(*st, ReadSterilizer);
  }

  absl::StatusOr<std::vector<Sterilizer>> ListSterilizers(int64_t after_id, int limit) override {
    static constexpr const char* kSql =
        "SELECT " STERILIZER_COLUMNS " FROM sterilizers WHERE id > ?1 ORDER BY id LIMIT ?2";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, after_id).Bind(2, int64_t{limit});
    return Collect<Sterilizer>(*st, ReadSterilizer);
  }

  absl::StatusOr<std::optional<Load>> FindLoad(int64_t id) override {
    static constexpr const char* kSql =
        "SELECT " LOAD_COLUMNS " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE l.id = ?1";
    std::optional<Load> load;
    {
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, id);
      ASSIGN_OR_RETURN(load, First<Load>(*st, ReadLoadRow));
    }
    if (load.has_value()) RETURN_IF_ERROR(CompleteLoad(*load));
    return load;
  }

  absl::StatusOr<std::optional<Load>> FindLoadByCycle(int64_t sterilizer_id,
                                                      int64_t cycle_number) override {
    static constexpr const char* kSql =
        "SELECT " LOAD_COLUMNS " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE l.sterilizer_id = ?1 AND l.cycle_number = ?2";
    std::optional<Load> load;
    {
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, sterilizer_id).Bind(2, cycle_number);
      ASSIGN_OR_RETURN(load, First<Load>(*st, ReadLoadRow));
    }
    if (load.has_value()) RETURN_IF_ERROR(CompleteLoad(*load));
    return load;
  }

  absl::StatusOr<std::vector<Load>> ListLoads(const LoadFilter& f) override {
    // With a steriliser: in cycle order (look-backs walk cycles); otherwise by id.
    static constexpr const char* kSql =
        "SELECT " LOAD_COLUMNS " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE l.id > ?1 AND (?2 = 0 OR l.sterilizer_id = ?2) AND l.cycle_number > ?3 "
        "AND (?4 = '' OR l.release_state = ?4) "
        "ORDER BY CASE WHEN ?2 = 0 THEN l.id ELSE l.cycle_number END LIMIT ?5";
    std::vector<Load> loads;
    {
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, f.after_id)
          .Bind(2, f.sterilizer_id)
          .Bind(3, f.after_cycle_number)
          .Bind(4, f.release_state ? ReleaseStateName(*f.release_state) : std::string_view())
          .Bind(5, int64_t{f.limit});
      ASSIGN_OR_RETURN(loads, Collect<Load>(*st, ReadLoadRow));
    }
    for (Load& l : loads) RETURN_IF_ERROR(CompleteLoad(l));
    return loads;
  }

  absl::StatusOr<std::optional<int64_t>> FindOpenLoadOfItem(int64_t item_id) override {
    static constexpr const char* kSql =
        "SELECT l.id FROM load_items li JOIN loads l ON l.id = li.load_id "
        "WHERE li.item_id = ?1 AND l.release_state = 'OPEN' ORDER BY l.id DESC LIMIT 1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, item_id);
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return std::optional<int64_t>();
    return std::optional<int64_t>(st->Int(0));
  }

  absl::StatusOr<std::vector<BowieDickTest>> ListBowieDickTests(int64_t sterilizer_id,
                                                                absl::CivilDay day) override {
    static constexpr const char* kSql =
        "SELECT id, sterilizer_id, day, result, operator, at FROM bowie_dick_tests "
        "WHERE sterilizer_id = ?1 AND day = ?2 ORDER BY id";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, sterilizer_id).Bind(2, absl::FormatCivilTime(day));
    return Collect<BowieDickTest>(*st, [day](const Statement& s) -> absl::StatusOr<BowieDickTest> {
      return BowieDickTest{.id = s.Int(0), .sterilizer_id = s.Int(1), .day = day,
                           .result = ParseIndicator(s.Text(3)), .operator_name = s.Text(4),
                           .at = FromMicros(s.Int(5))};
    });
  }

  absl::StatusOr<std::vector<ItemUse>> ListItemUses(const ItemUseFilter& f) override {
    static constexpr const char* kSql =
        "SELECT item_id, treatment_id, load_id, at, by FROM item_uses "
        "WHERE (?1 = 0 OR item_id = ?1) AND (?2 = 0 OR load_id = ?2) "
        "AND (?3 = 0 OR treatment_id = ?3) ORDER BY id";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, f.item_id).Bind(2, f.load_id).Bind(3, f.treatment_id);
    return Collect<ItemUse>(*st, [](const Statement& s) -> absl::StatusOr<ItemUse> {
      return ItemUse{.item_id = s.Int(0), .treatment_id = s.Int(1), .load_id = s.Int(2),
                     .at = FromMicros(s.Int(3)), .by = s.Text(4)};
    });
  }

  // ---- Reporting reads (issue 5). Range scans use the indexes of migration 4 (report indexes).

  absl::StatusOr<std::vector<Treatment>> ListTreatmentsStartedBetween(absl::Time from,
                                                                      absl::Time to,
                                                                      int64_t after_id,
                                                                      int limit) override {
    static constexpr const char* kSql =
        "SELECT id, room, clinician, client_ref, started_at, started_by, ended_at, ended_by "
        "FROM treatments WHERE started_at >= ?1 AND started_at < ?2 AND id > ?3 "
        "ORDER BY id LIMIT ?4";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, Micros(from)).Bind(2, Micros(to)).Bind(3, after_id).Bind(4, int64_t{limit});
    return Collect<Treatment>(*st, ReadTreatment);
  }

  absl::StatusOr<std::vector<Cartridge>> ListCartridgesOpenedBetween(absl::Time from, absl::Time to,
                                                                     int64_t after_id,
                                                                     int limit) override {
    static const std::string kSql =
        StrCat(kCartridgeSelect,
               "WHERE u.at >= ?1 AND u.at < ?2 AND c.id > ?3 ORDER BY c.id LIMIT ?4");
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql.c_str()));
    st->Bind(1, Micros(from)).Bind(2, Micros(to)).Bind(3, after_id).Bind(4, int64_t{limit});
    return Collect<Cartridge>(*st, ReadCartridge);
  }

  absl::StatusOr<std::vector<Load>> ListLoadsCreatedBetween(absl::Time from, absl::Time to,
                                                            int64_t after_id, int limit) override {
    static constexpr const char* kSql =
        "SELECT " LOAD_COLUMNS " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE l.created_at >= ?1 AND l.created_at < ?2 AND l.id > ?3 ORDER BY l.id LIMIT ?4";
    std::vector<Load> loads;
    {
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, Micros(from)).Bind(2, Micros(to)).Bind(3, after_id).Bind(4, int64_t{limit});
      ASSIGN_OR_RETURN(loads, Collect<Load>(*st, ReadLoadRow));
    }
    for (Load& l : loads) RETURN_IF_ERROR(CompleteLoad(l));
    return loads;
  }

  absl::StatusOr<std::vector<BowieDickTest>> ListBowieDickTestsBetween(absl::CivilDay first,
                                                                       absl::CivilDay last) override {
    // ISO YYYY-MM-DD text sorts as the dates do.
    static constexpr const char* kSql =
        "SELECT id, sterilizer_id, day, result, operator, at FROM bowie_dick_tests "
        "WHERE day >= ?1 AND day < ?2 ORDER BY day, id";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, absl::FormatCivilTime(first)).Bind(2, absl::FormatCivilTime(last));
    return Collect<BowieDickTest>(*st, [](const Statement& s) -> absl::StatusOr<BowieDickTest> {
      absl::CivilDay day;
      if (!absl::ParseCivilTime(s.Text(2), &day)) {
        return absl::DataLossError(StrCat("bad Bowie-Dick test day in database: ", s.Text(2)));
      }
      return BowieDickTest{.id = s.Int(0), .sterilizer_id = s.Int(1), .day = day,
                           .result = ParseIndicator(s.Text(3)), .operator_name = s.Text(4),
                           .at = FromMicros(s.Int(5))};
    });
  }
  // ---- End of reporting reads.

 private:
  // Adds contents, parameters, indicators to a load read from its row.
  absl::Status CompleteLoad(Load& load) {
    {
      static constexpr const char* kSql =
          "SELECT i.id, i.serial FROM load_items li JOIN items i ON i.id = li.item_id "
          "WHERE li.load_id = ?1 ORDER BY i.id";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, load.id);
      while (true) {
        ASSIGN_OR_RETURN(bool row, st->Step());
        if (!row) break;
        load.item_ids.push_back(st->Int(0));
        load.item_serials.push_back(st->Text(1));
      }
    }
    {
      static constexpr const char* kSql =
          "SELECT started_at, ended_at, exposure_seconds, temperature_c, pressure_kpa, passed, "
          "recorded_by, recorded_at FROM load_parameters WHERE load_id = ?1";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, load.id);
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) {
        load.parameters = CycleParameters{
            .started_at = FromMicros(st->Int(0)), .ended_at = FromMicros(st->Int(1)),
            .exposure_seconds = static_cast<int32_t>(st->Int(2)), .temperature_c = st->Real(3),
            .pressure_kpa = st->Real(4), .passed = st->Int(5) != 0, .recorded_by = st->Text(6),
            .recorded_at = FromMicros(st->Int(7))};
      }
    }
    {
      static constexpr const char* kSql =
          "SELECT type, result, recorded_by, recorded_at FROM load_chemical_indicators "
          "WHERE load_id = ?1 ORDER BY type";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, load.id);
      while (true) {
        ASSIGN_OR_RETURN(bool row, st->Step());
        if (!row) break;
        load.chemical_indicators.push_back(ChemicalIndicator{
            .type = static_cast<int32_t>(st->Int(0)), .result = ParseIndicator(st->Text(1)),
            .recorded_by = st->Text(2), .recorded_at = FromMicros(st->Int(3))});
      }
    }
    {
      static constexpr const char* kSql =
          "SELECT product, lot, result, control_result, read_at, recorded_by "
          "FROM load_biological_indicators WHERE load_id = ?1";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, load.id);
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (row) {
        load.bi = BiologicalIndicator{.product = st->Text(0), .lot = st->Text(1),
                                      .result = ParseBi(st->Text(2)),
                                      .control_result = ParseBi(st->Text(3)),
                                      .read_at = FromMicros(st->Int(4)),
                                      .recorded_by = st->Text(5)};
      }
    }
    return absl::OkStatus();
  }

 protected:
  Connection* conn_;
};

class SqliteStore;

class SqliteReadTransaction final : public SqliteReads<ReadTransaction> {
 public:
  SqliteReadTransaction(SqliteStore* store, std::unique_ptr<Connection> conn)
      : SqliteReads<ReadTransaction>(conn.get()), store_(store), owned_(std::move(conn)) {}
  ~SqliteReadTransaction() override;

 private:
  SqliteStore* store_;
  std::unique_ptr<Connection> owned_;
};

class SqliteWriteTransaction final : public SqliteReads<WriteTransaction> {
 public:
  // REQUIRES: `mu` is held by the caller; this transaction releases it when destroyed.
  SqliteWriteTransaction(absl::Mutex* mu, Connection* conn)
      : SqliteReads<WriteTransaction>(conn), mu_(mu) {}
  ~SqliteWriteTransaction() override {
    if (!done_) {
      // Not committed: nothing of this transaction may remain.
      conn_->Exec("ROLLBACK").IgnoreError();
    }
    mu_->Unlock();
  }

  absl::StatusOr<int64_t> InsertLot(const Lot& lot) override {
    static constexpr const char* kSql =
        "INSERT INTO lots (gtin, lot, expiry, state, state_reason, state_changed_by, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, lot.gtin)
        .Bind(2, lot.lot)
        .Bind(3, absl::FormatCivilTime(lot.expiry))
        .Bind(4, LotStateName(lot.state))
        .Bind(5, lot.state_reason)
        .Bind(6, lot.state_changed_by)
        .Bind(7, Micros(lot.created_at));
    RETURN_IF_ERROR(st->Run());
    return sqlite3_last_insert_rowid(conn_->raw());
  }

  absl::Status UpdateLotState(int64_t lot_id, LotState state, std::string_view reason,
                              absl::Time at, std::string_view by) override {
    static constexpr const char* kSql =
        "UPDATE lots SET state = ?2, state_reason = ?3, state_changed_at = ?4, "
        "state_changed_by = ?5 WHERE id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, lot_id).Bind(2, LotStateName(state)).Bind(3, reason).Bind(4, Micros(at)).Bind(5, by);
    RETURN_IF_ERROR(st->Run());
    return ExpectOneChange("lot");
  }

  absl::StatusOr<int64_t> InsertCartridge(const Cartridge& c) override {
    static constexpr const char* kSql =
        "INSERT INTO cartridges (gtin, serial, lot_id, received_at, received_by) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, c.gtin)
        .Bind(2, c.serial)
        .Bind(3, c.lot.id)
        .Bind(4, Micros(c.received_at))
        .Bind(5, c.received_by);
    RETURN_IF_ERROR(st->Run());
    return sqlite3_last_insert_rowid(conn_->raw());
  }

  absl::Status RecordUse(int64_t cartridge_id, const CartridgeUse& use) override {
    static constexpr const char* kSql =
        "INSERT INTO cartridge_uses (cartridge_id, treatment_id, room, at, by) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, cartridge_id)
        .Bind(2, use.treatment_id)
        .Bind(3, use.room)
        .Bind(4, Micros(use.at))
        .Bind(5, use.by);
    absl::Status status = st->Run();
    if (absl::IsAlreadyExists(status)) {
      // The schema's own single-use guard fired: core's check was bypassed or raced.
      return MakeError(absl::StatusCode::kFailedPrecondition, "cartridge already used",
                       "CARTRIDGE_ALREADY_USED");
    }
    return status;
  }

  absl::Status RecordDisposal(int64_t cartridge_id, const Disposal& d) override {
    static constexpr const char* kSql =
        "INSERT INTO cartridge_disposals (cartridge_id, container_id, at, by) "
        "VALUES (?1, ?2, ?3, ?4)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, cartridge_id).Bind(2, d.container_id).Bind(3, Micros(d.at)).Bind(4, d.by);
    absl::Status status = st->Run();
    if (absl::IsAlreadyExists(status)) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "cartridge already disposed",
                       "CARTRIDGE_DISPOSED");
    }
    return status;
  }

  absl::Status RecordDiscard(int64_t cartridge_id, const Discard& d) override {
    static constexpr const char* kSql =
        "INSERT INTO cartridge_discards (cartridge_id, reason, at, by) VALUES (?1, ?2, ?3, ?4)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, cartridge_id).Bind(2, d.reason).Bind(3, Micros(d.at)).Bind(4, d.by);
    absl::Status status = st->Run();
    if (absl::IsAlreadyExists(status)) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "cartridge already written off",
                       "CARTRIDGE_DISCARDED");
    }
    return status;
  }

  absl::StatusOr<int64_t> InsertTreatment(const Treatment& t) override {
    static constexpr const char* kSql =
        "INSERT INTO treatments (room, clinician, client_ref, started_at, started_by) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, t.room)
        .Bind(2, t.clinician)
        .Bind(3, t.client_ref)
        .Bind(4, Micros(t.started_at))
        .Bind(5, t.started_by);
    RETURN_IF_ERROR(st->Run());
    return sqlite3_last_insert_rowid(conn_->raw());
  }

  absl::Status EndTreatment(int64_t id, absl::Time at, std::string_view by) override {
    static constexpr const char* kSql =
        "UPDATE treatments SET ended_at = ?2, ended_by = ?3 WHERE id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, id).Bind(2, Micros(at)).Bind(3, by);
    RETURN_IF_ERROR(st->Run());
    return ExpectOneChange("treatment");
  }

  absl::StatusOr<int64_t> AppendEvent(const Event& e) override {
    // The writer is alone, so the next seq and the last hash can be read before the insert: the
    // hash covers the seq.
    Event entry = e;
    std::string prev(audit_chain::kGenesisHash);
    {
      static constexpr const char* kSql =
          "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), "
          "coalesce((SELECT max(seq) FROM events), 0)), "
          "(SELECT hash FROM events ORDER BY seq DESC LIMIT 1)";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) return absl::InternalError("cannot read the audit trail's last entry");
      entry.seq = st->Int(0) + 1;
      if (!st->IsNull(1)) prev = st->Text(1);
    }
    entry.hash = audit_chain::EntryHash(prev, entry);
    if (entry.hash.empty()) return absl::InternalError("cannot hash the audit entry");
    {
      static constexpr const char* kSql =
          "INSERT INTO events (seq, at, actor, action, lot_id, cartridge_id, treatment_id, detail, "
          "request_id, item_id, load_id, sterilizer_id, before, after, corrects_seq, prev_hash, "
          "hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, entry.seq)
          .Bind(2, Micros(entry.at))
          .Bind(3, entry.actor)
          .Bind(4, entry.action)
          .Bind(5, OptId(entry.lot_id))
          .Bind(6, OptId(entry.cartridge_id))
          .Bind(7, OptId(entry.treatment_id))
          .Bind(8, entry.detail)
          .Bind(9, entry.request_id)
          .Bind(10, OptId(entry.item_id))
          .Bind(11, OptId(entry.load_id))
          .Bind(12, OptId(entry.sterilizer_id))
          .Bind(13, entry.before)
          .Bind(14, entry.after)
          .Bind(15, OptId(entry.corrects_seq))
          .Bind(16, prev)
          .Bind(17, entry.hash);
      RETURN_IF_ERROR(st->Run());
    }
    RETURN_IF_ERROR(WriteAuditHead(*conn_, entry.seq, entry.hash));
    return entry.seq;
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


  // ---- Reusable equipment and sterilisation.

  absl::StatusOr<int64_t> InsertItem(const ReusableItem& item) override {
    static constexpr const char* kSql =
        "INSERT INTO items (serial, type, ifu_max_cycles, cycles, maintenance_due, state, "
        "state_reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, item.serial)
        .Bind(2, item.type)
        .Bind(3, int64_t{item.ifu_max_cycles})
        .Bind(4, int64_t{item.cycles})
        .Bind(6, ItemStateName(item.state))
        .Bind(7, item.state_reason)
        .Bind(8, Micros(item.created_at));
    if (item.maintenance_due) {
      st->Bind(5, absl::FormatCivilTime(*item.maintenance_due));
    } else {
      st->BindNull(5);
    }
    RETURN_IF_ERROR(st->Run());
    return sqlite3_last_insert_rowid(conn_->raw());
  }

  absl::Status UpdateItem(const ReusableItem& item) override {
    static constexpr const char* kSql =
        "UPDATE items SET state = ?2, cycles = ?3, load_id = ?4, sterile_until = ?5, "
        "treatment_id = ?6, state_reason = ?7, maintenance_due = ?8 WHERE id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, item.id)
        .Bind(2, ItemStateName(item.state))
        .Bind(3, int64_t{item.cycles})
        .Bind(4, OptId(item.load_id))
        .Bind(5, item.sterile_until == absl::InfinitePast()
                     ? std::nullopt
                     : std::optional<int64_t>(Micros(item.sterile_until)))
        .Bind(6, OptId(item.treatment_id))
        .Bind(7, item.state_reason);
    if (item.maintenance_due) {
      st->Bind(8, absl::FormatCivilTime(*item.maintenance_due));
    } else {
      st->BindNull(8);
    }
    RETURN_IF_ERROR(st->Run());
    return ExpectOneChange("item");
  }

  absl::StatusOr<int64_t> InsertSterilizer(const Sterilizer& s) override {
    static constexpr const char* kSql =
        "INSERT INTO sterilizers (name, type, last_cycle_number, in_service, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, s.name)
        .Bind(2, SterilizerTypeName(s.type))
        .Bind(3, s.last_cycle_number)
        .Bind(4, int64_t{s.in_service ? 1 : 0})
        .Bind(5, Micros(s.created_at));
    RETURN_IF_ERROR(st->Run());
    return sqlite3_last_insert_rowid(conn_->raw());
  }

  absl::Status UpdateSterilizer(const Sterilizer& s) override {
    static constexpr const char* kSql =
        "UPDATE sterilizers SET last_cycle_number = ?2, in_service = ?3, "
        "out_of_service_reason = ?4, out_of_service_at = ?5, negative_tests = ?6 WHERE id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, s.id)
        .Bind(2, s.last_cycle_number)
        .Bind(3, int64_t{s.in_service ? 1 : 0})
        .Bind(4, s.out_of_service_reason)
        .Bind(5, s.out_of_service_at == absl::InfinitePast()
                     ? std::nullopt
                     : std::optional<int64_t>(Micros(s.out_of_service_at)))
        .Bind(6, int64_t{s.negative_tests_since_out_of_service});
    RETURN_IF_ERROR(st->Run());
    return ExpectOneChange("steriliser");
  }

  absl::StatusOr<int64_t> InsertLoad(const Load& l) override {
    static constexpr const char* kSql =
        "INSERT INTO loads (sterilizer_id, cycle_number, cycle_type, test_cycle, bi_required, "
        "shelf_life_days, operator, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    int64_t id = 0;
    {
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, l.sterilizer_id)
          .Bind(2, l.cycle_number)
          .Bind(3, l.cycle_type)
          .Bind(4, int64_t{l.test_cycle ? 1 : 0})
          .Bind(5, int64_t{l.bi_required ? 1 : 0})
          .Bind(6, int64_t{l.shelf_life_days})
          .Bind(7, l.operator_name)
          .Bind(8, Micros(l.created_at));
      RETURN_IF_ERROR(st->Run());
      id = sqlite3_last_insert_rowid(conn_->raw());
    }
    static constexpr const char* kItemSql =
        "INSERT INTO load_items (load_id, item_id) VALUES (?1, ?2)";
    for (int64_t item_id : l.item_ids) {
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kItemSql));
      st->Bind(1, id).Bind(2, item_id);
      RETURN_IF_ERROR(st->Run());
    }
    return id;
  }

  absl::Status RecordParameters(int64_t load_id, const CycleParameters& p) override {
    static constexpr const char* kSql =
        "INSERT INTO load_parameters (load_id, started_at, ended_at, exposure_seconds, "
        "temperature_c, pressure_kpa, passed, recorded_by, recorded_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, load_id)
        .Bind(2, Micros(p.started_at))
        .Bind(3, Micros(p.ended_at))
        .Bind(4, int64_t{p.exposure_seconds})
        .BindReal(5, p.temperature_c)
        .BindReal(6, p.pressure_kpa)
        .Bind(7, int64_t{p.passed ? 1 : 0})
        .Bind(8, p.recorded_by)
        .Bind(9, Micros(p.recorded_at));
    return st->Run();
  }

  absl::Status RecordBi(int64_t load_id, const BiologicalIndicator& bi) override {
    static constexpr const char* kSql =
        "INSERT INTO load_biological_indicators (load_id, product, lot, result, control_result, "
        "read_at, recorded_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, load_id)
        .Bind(2, bi.product)
        .Bind(3, bi.lot)
        .Bind(4, BiResultName(bi.result))
        .Bind(5, BiResultName(bi.control_result))
        .Bind(6, Micros(bi.read_at))
        .Bind(7, bi.recorded_by);
    return st->Run();
  }

  absl::Status AddChemicalIndicator(int64_t load_id, const ChemicalIndicator& ci) override {
    static constexpr const char* kSql =
        "INSERT INTO load_chemical_indicators (load_id, type, result, recorded_by, recorded_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, load_id)
        .Bind(2, int64_t{ci.type})
        .Bind(3, IndicatorResultName(ci.result))
        .Bind(4, ci.recorded_by)
        .Bind(5, Micros(ci.recorded_at));
    return st->Run();
  }

  absl::Status SetLoadReleaseState(int64_t load_id, ReleaseState state,
                                   const Signature& signature) override {
    static constexpr const char* kSql =
        "UPDATE loads SET release_state = ?2, signed_by = ?3, signed_at = ?4, sign_meaning = ?5 "
        "WHERE id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, load_id)
        .Bind(2, ReleaseStateName(state))
        .Bind(3, signature.by)
        .Bind(4, Micros(signature.at))
        .Bind(5, signature.meaning);
    RETURN_IF_ERROR(st->Run());
    return ExpectOneChange("load");
  }

  absl::StatusOr<int64_t> InsertBowieDickTest(const BowieDickTest& t) override {
    static constexpr const char* kSql =
        "INSERT INTO bowie_dick_tests (sterilizer_id, day, result, operator, at) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, t.sterilizer_id)
        .Bind(2, absl::FormatCivilTime(t.day))
        .Bind(3, IndicatorResultName(t.result))
        .Bind(4, t.operator_name)
        .Bind(5, Micros(t.at));
    RETURN_IF_ERROR(st->Run());
    return sqlite3_last_insert_rowid(conn_->raw());
  }

  absl::Status RecordItemUse(const ItemUse& use) override {
    static constexpr const char* kSql =
        "INSERT INTO item_uses (item_id, treatment_id, load_id, at, by) "
        "VALUES (?1, ?2, ?3, ?4, ?5)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, use.item_id)
        .Bind(2, use.treatment_id)
        .Bind(3, use.load_id)
        .Bind(4, Micros(use.at))
        .Bind(5, use.by);
    return st->Run();
  }

  absl::Status Commit() override {
    if (done_) return absl::FailedPreconditionError("transaction already finished");
    absl::Status status = conn_->Exec("COMMIT");
    if (status.ok()) done_ = true;
    return status;
  }

 private:
  absl::Status ExpectOneChange(std::string_view what) {
    if (sqlite3_changes(conn_->raw()) != 1) {
      return absl::NotFoundError(StrCat(what, " to update does not exist"));
    }
    return absl::OkStatus();
  }

  absl::Mutex* mu_;
  bool done_ = false;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Connection> writer, std::vector<std::unique_ptr<Connection>> readers)
      : writer_(std::move(writer)), readers_(std::move(readers)) {}

  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginRead() override {
    std::unique_ptr<Connection> conn;
    {
      absl::MutexLock lock(&pool_mu_);
      pool_mu_.Await(absl::Condition(
          +[](std::vector<std::unique_ptr<Connection>>* pool) { return !pool->empty(); },
          &readers_));
      conn = std::move(readers_.back());
      readers_.pop_back();
    }
    absl::Status status = conn->Exec("BEGIN");
    if (!status.ok()) {
      ReturnReader(std::move(conn));
      return status;
    }
    return std::make_unique<SqliteReadTransaction>(this, std::move(conn));
  }

  absl::StatusOr<std::unique_ptr<WriteTransaction>> BeginWrite() override {
    writer_mu_.Lock();
    // IMMEDIATE takes the database's write lock now, so a transaction never fails half-way
    // because another process wrote first.
    absl::Status status = writer_->Exec("BEGIN IMMEDIATE");
    if (!status.ok()) {
      writer_mu_.Unlock();
      return status;
    }
    return std::make_unique<SqliteWriteTransaction>(&writer_mu_, writer_.get());
  }

  void ReturnReader(std::unique_ptr<Connection> conn) {
    absl::MutexLock lock(&pool_mu_);
    readers_.push_back(std::move(conn));
  }

 private:
  absl::Mutex writer_mu_;
  std::unique_ptr<Connection> writer_;  // used only while writer_mu_ is held
  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> readers_ ABSL_GUARDED_BY(pool_mu_);
};

SqliteReadTransaction::~SqliteReadTransaction() {
  // A read transaction changes nothing; ending it releases the snapshot.
  owned_->Exec("COMMIT").IgnoreError();
  store_->ReturnReader(std::move(owned_));
}

absl::Status Configure(Connection& conn) {
  RETURN_IF_ERROR(conn.Exec("PRAGMA busy_timeout = 5000"));
  RETURN_IF_ERROR(conn.Exec("PRAGMA foreign_keys = ON"));
  RETURN_IF_ERROR(conn.Exec("PRAGMA synchronous = FULL"));
  return absl::OkStatus();
}

absl::Status Migrate(Connection& conn) {
  RETURN_IF_ERROR(conn.Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
      "description TEXT NOT NULL, applied_at INTEGER NOT NULL)"));
  int64_t current = 0;
  {
    ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT coalesce(max(version), 0) FROM schema_migrations"));
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (row) current = st->Int(0);
  }
  if (current > SqliteSchemaVersion()) {
    return absl::FailedPreconditionError(
        StrCat("database schema version ", current, " is newer than this server knows (",
               SqliteSchemaVersion(), "); upgrade steritrackd"));
  }
  for (const sqlite::Migration& m : sqlite::Migrations()) {
    if (m.version <= current) continue;
    RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
    absl::Status status = conn.Exec(m.sql);
    if (status.ok() && m.version == kAuditChainMigration) status = HashExistingEvents(conn);
    if (status.ok()) {
      ASSIGN_OR_RETURN(auto st, conn.Prepare("INSERT INTO schema_migrations VALUES (?1, ?2, ?3)"));
      st->Bind(1, int64_t{m.version}).Bind(2, m.description).Bind(3, Micros(absl::Now()));
      status = st->Run();
    }
    if (status.ok()) status = conn.Exec("COMMIT");
    if (!status.ok()) {
      conn.Exec("ROLLBACK").IgnoreError();
      return absl::Status(status.code(), StrCat("migration ", m.version, " failed: ",
                                                std::string(status.message())));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int SqliteSchemaVersion() { return sqlite::Migrations().back().version; }

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("database path is empty");
  if (options.readers < 1) return absl::InvalidArgumentError("at least one reader connection");
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer,
                   Connection::Open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  RETURN_IF_ERROR(writer->Exec("PRAGMA journal_mode = WAL"));
  RETURN_IF_ERROR(Configure(*writer));
  RETURN_IF_ERROR(Migrate(*writer));
  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; i < options.readers; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                     Connection::Open(options.path, SQLITE_OPEN_READONLY));
    RETURN_IF_ERROR(Configure(*reader));
    readers.push_back(std::move(reader));
  }
  return std::make_unique<SqliteStore>(std::move(writer), std::move(readers));
}

}  // namespace steritrack
