// Row mapping shared by the PostgreSQL repositories: column lists, readers from a result row to the
// domain types, and small helpers; the PostgreSQL counterpart of sqlite_rows.h. Internal to
// server/storage. Pure functions over a transaction or result that the caller holds;
// thread-compatible.
//
// Every helper that runs statements takes the transaction a repository method got from Tx::Run:
// calling Tx::Run again inside a body would open a second subtransaction beside the first.
#ifndef STERITRACK_SERVER_STORAGE_PG_ROWS_H_
#define STERITRACK_SERVER_STORAGE_PG_ROWS_H_

#ifndef STERITRACK_STORAGE_IMPLEMENTATION
#error \
    "server/storage/pg_rows.h is internal to server/storage: include it only from there (see server/CMakeLists.txt)"
#endif

#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "server/storage/pg.h"
#include "steritrack/error.h"
#include "steritrack/model.h"
#include "steritrack/status_macros.h"
#include "steritrack/sterilization.h"
#include "steritrack/strings.h"

namespace steritrack::pg {

inline std::optional<int64_t> OptId(int64_t id) {
  return id == 0 ? std::nullopt : std::optional<int64_t>(id);
}

// Column access as SQLite's: a NULL reads as 0, 0.0 or "".
inline bool IsNull(const pqxx::row& r, int col) {
  return r[static_cast<pqxx::row::size_type>(col)].is_null();
}
inline int64_t Int(const pqxx::row& r, int col) {
  const pqxx::field f = r[static_cast<pqxx::row::size_type>(col)];
  return f.is_null() ? 0 : f.as<int64_t>();
}
inline double Real(const pqxx::row& r, int col) {
  const pqxx::field f = r[static_cast<pqxx::row::size_type>(col)];
  return f.is_null() ? 0.0 : f.as<double>();
}
inline std::string Text(const pqxx::row& r, int col) {
  const pqxx::field f = r[static_cast<pqxx::row::size_type>(col)];
  return f.is_null() ? std::string() : std::string(f.c_str(), f.size());
}
// A BYTEA column's bytes (SQLite's BLOB), NULs included.
inline std::string Bytes(const pqxx::row& r, int col) {
  const pqxx::field f = r[static_cast<pqxx::row::size_type>(col)];
  return f.is_null() ? std::string() : pqxx::binarystring(f).str();
}

inline absl::StatusOr<LotState> ParseLotState(const std::string& s) {
  if (s == "ACTIVE") return LotState::kActive;
  if (s == "QUARANTINED") return LotState::kQuarantined;
  if (s == "RECALLED") return LotState::kRecalled;
  return absl::DataLossError(StrCat("unknown lot state in database: ", s));
}

// Reads the lot columns starting at `col`. Expiry dates are ISO YYYY-MM-DD, as TEXT (or DATE:
// PostgreSQL prints a DATE in that form too).
inline absl::StatusOr<Lot> ReadLot(const pqxx::row& r, int col) {
  Lot lot;
  lot.id = Int(r, col);
  lot.gtin = Text(r, col + 1);
  lot.lot = Text(r, col + 2);
  if (!absl::ParseCivilTime(Text(r, col + 3), &lot.expiry)) {
    return absl::DataLossError(StrCat("bad expiry date in database for lot ", lot.lot));
  }
  ASSIGN_OR_RETURN(lot.state, ParseLotState(Text(r, col + 4)));
  lot.state_reason = Text(r, col + 5);
  lot.state_changed_by = Text(r, col + 6);
  if (!IsNull(r, col + 7)) lot.state_changed_at = FromMicros(Int(r, col + 7));
  lot.created_at = FromMicros(Int(r, col + 8));
  return lot;
}

#define PG_LOT_COLUMNS                                                           \
  "l.id, l.gtin, l.lot, l.expiry, l.state, l.state_reason, l.state_changed_by, " \
  "l.state_changed_at, l.created_at"

inline constexpr const char* kCartridgeSelect =
    "SELECT c.id, c.gtin, c.serial, c.received_at, c.received_by, " PG_LOT_COLUMNS
    ", u.treatment_id, u.room, u.at, u.by, d.container_id, d.at, d.by, x.reason, x.at, x.by "
    "FROM cartridges c JOIN lots l ON l.id = c.lot_id "
    "LEFT JOIN cartridge_uses u ON u.cartridge_id = c.id "
    "LEFT JOIN cartridge_disposals d ON d.cartridge_id = c.id "
    "LEFT JOIN cartridge_discards x ON x.cartridge_id = c.id ";

inline absl::StatusOr<Cartridge> ReadCartridge(const pqxx::row& r) {
  Cartridge c;
  c.id = Int(r, 0);
  c.gtin = Text(r, 1);
  c.serial = Text(r, 2);
  c.received_at = FromMicros(Int(r, 3));
  c.received_by = Text(r, 4);
  ASSIGN_OR_RETURN(c.lot, ReadLot(r, 5));
  constexpr int kUse = 14, kDisposal = 18, kDiscard = 21;
  if (!IsNull(r, kUse)) {
    c.use = CartridgeUse{.treatment_id = Int(r, kUse),
                         .room = Text(r, kUse + 1),
                         .at = FromMicros(Int(r, kUse + 2)),
                         .by = Text(r, kUse + 3)};
    c.state = CartridgeState::kOpened;
  }
  if (!IsNull(r, kDisposal)) {
    c.disposal = Disposal{.container_id = Text(r, kDisposal),
                          .at = FromMicros(Int(r, kDisposal + 1)),
                          .by = Text(r, kDisposal + 2)};
    c.state = CartridgeState::kDisposed;
  }
  if (!IsNull(r, kDiscard)) {
    c.discard = Discard{.reason = Text(r, kDiscard),
                        .at = FromMicros(Int(r, kDiscard + 1)),
                        .by = Text(r, kDiscard + 2)};
    c.state = CartridgeState::kDiscarded;
  }
  return c;
}

#define PG_TREATMENT_COLUMNS \
  "id, room, clinician, client_ref, started_at, started_by, ended_at, ended_by"

inline absl::StatusOr<Treatment> ReadTreatment(const pqxx::row& r) {
  Treatment t;
  t.id = Int(r, 0);
  t.room = Text(r, 1);
  t.clinician = Text(r, 2);
  t.client_ref = Text(r, 3);
  t.started_at = FromMicros(Int(r, 4));
  t.started_by = Text(r, 5);
  if (!IsNull(r, 6)) t.ended_at = FromMicros(Int(r, 6));
  t.ended_by = Text(r, 7);
  return t;
}

inline absl::StatusOr<ItemState> ParseItemState(const std::string& s) {
  std::optional<ItemState> state = ItemStateFromName(s);
  if (!state) return absl::DataLossError(StrCat("unknown item state in database: ", s));
  return *state;
}

#define PG_ITEM_COLUMNS                                                                        \
  "id, serial, type, ifu_max_cycles, cycles, maintenance_due, state, load_id, sterile_until, " \
  "treatment_id, state_reason, created_at"

inline absl::StatusOr<ReusableItem> ReadItem(const pqxx::row& r) {
  ReusableItem item;
  item.id = Int(r, 0);
  item.serial = Text(r, 1);
  item.type = Text(r, 2);
  item.ifu_max_cycles = static_cast<int32_t>(Int(r, 3));
  item.cycles = static_cast<int32_t>(Int(r, 4));
  if (!IsNull(r, 5)) {
    absl::CivilDay day;
    if (!absl::ParseCivilTime(Text(r, 5), &day)) {
      return absl::DataLossError(StrCat("bad maintenance date for item ", item.serial));
    }
    item.maintenance_due = day;
  }
  ASSIGN_OR_RETURN(item.state, ParseItemState(Text(r, 6)));
  item.load_id = IsNull(r, 7) ? 0 : Int(r, 7);
  if (!IsNull(r, 8)) item.sterile_until = FromMicros(Int(r, 8));
  item.treatment_id = IsNull(r, 9) ? 0 : Int(r, 9);
  item.state_reason = Text(r, 10);
  item.created_at = FromMicros(Int(r, 11));
  return item;
}

#define PG_STERILIZER_COLUMNS                                              \
  "id, name, type, last_cycle_number, in_service, out_of_service_reason, " \
  "out_of_service_at, negative_tests, created_at"

inline absl::StatusOr<Sterilizer> ReadSterilizer(const pqxx::row& r) {
  Sterilizer s;
  s.id = Int(r, 0);
  s.name = Text(r, 1);
  s.type = Text(r, 2) == "GRAVITY" ? SterilizerType::kGravity : SterilizerType::kPreVacuum;
  s.last_cycle_number = Int(r, 3);
  s.in_service = Int(r, 4) != 0;
  s.out_of_service_reason = Text(r, 5);
  if (!IsNull(r, 6)) s.out_of_service_at = FromMicros(Int(r, 6));
  s.negative_tests_since_out_of_service = static_cast<int32_t>(Int(r, 7));
  s.created_at = FromMicros(Int(r, 8));
  return s;
}

inline absl::StatusOr<ReleaseState> ParseReleaseState(const std::string& s) {
  if (s == "OPEN") return ReleaseState::kOpen;
  if (s == "RELEASED") return ReleaseState::kReleased;
  if (s == "QUARANTINED") return ReleaseState::kQuarantined;
  if (s == "RECALLED") return ReleaseState::kRecalled;
  return absl::DataLossError(StrCat("unknown load state in database: ", s));
}

#define PG_LOAD_COLUMNS                                                                        \
  "l.id, l.sterilizer_id, s.name, l.cycle_number, l.cycle_type, l.test_cycle, "                \
  "l.bi_required, l.shelf_life_days, l.operator, l.created_at, l.release_state, l.signed_by, " \
  "l.signed_at, l.sign_meaning"

inline absl::StatusOr<Load> ReadLoadRow(const pqxx::row& r) {
  Load l;
  l.id = Int(r, 0);
  l.sterilizer_id = Int(r, 1);
  l.sterilizer_name = Text(r, 2);
  l.cycle_number = Int(r, 3);
  l.cycle_type = Text(r, 4);
  l.test_cycle = Int(r, 5) != 0;
  l.bi_required = Int(r, 6) != 0;
  l.shelf_life_days = static_cast<int32_t>(Int(r, 7));
  l.operator_name = Text(r, 8);
  l.created_at = FromMicros(Int(r, 9));
  ASSIGN_OR_RETURN(l.release_state, ParseReleaseState(Text(r, 10)));
  if (!IsNull(r, 11)) {
    l.signature =
        Signature{.by = Text(r, 11), .at = FromMicros(Int(r, 12)), .meaning = Text(r, 13)};
  }
  return l;
}

inline IndicatorResult ParseIndicator(const std::string& s) {
  return s == "PASS" ? IndicatorResult::kPass : IndicatorResult::kFail;
}
inline BiResult ParseBi(const std::string& s) {
  return s == "NEGATIVE" ? BiResult::kNegative : BiResult::kPositive;
}

template <typename T, typename ReadRow>
inline absl::StatusOr<std::vector<T>> Collect(const pqxx::result& result, ReadRow read_row) {
  std::vector<T> out;
  out.reserve(result.size());
  for (pqxx::result::size_type i = 0; i < result.size(); ++i) {
    ASSIGN_OR_RETURN(T item, read_row(result[i]));
    out.push_back(std::move(item));
  }
  return out;
}

template <typename T, typename ReadRow>
inline absl::StatusOr<std::optional<T>> First(const pqxx::result& result, ReadRow read_row) {
  if (result.empty()) return std::optional<T>();
  ASSIGN_OR_RETURN(T item, read_row(result[0]));
  return std::optional<T>(std::move(item));
}

#define PG_EVENT_COLUMNS                                                                          \
  "seq, at, actor, action, lot_id, cartridge_id, treatment_id, item_id, load_id, sterilizer_id, " \
  "detail, request_id, before, after, corrects_seq, prev_hash, hash"

inline Event ReadEventRow(const pqxx::row& r) {
  return Event{.seq = Int(r, 0),
               .at = FromMicros(Int(r, 1)),
               .actor = Text(r, 2),
               .action = Text(r, 3),
               .lot_id = Int(r, 4),
               .cartridge_id = Int(r, 5),
               .treatment_id = Int(r, 6),
               .item_id = Int(r, 7),
               .load_id = Int(r, 8),
               .sterilizer_id = Int(r, 9),
               .detail = Text(r, 10),
               .request_id = Text(r, 11),
               .before = Text(r, 12),
               .after = Text(r, 13),
               .corrects_seq = Int(r, 14),
               .prev_hash = Text(r, 15),
               .hash = Text(r, 16)};
}

// Moves the head to entry `seq`. `issued` stands in for SQLite's AUTOINCREMENT counter of events
// (sqlite_sequence), which SQLite raises by itself on every insert: here the head raises it, to
// at least `seq`, in the same statement.
inline absl::Status WriteAuditHead(pqxx::transaction_base& t, int64_t seq,
                                   const std::string& hash) {
  static constexpr const char* kSql =
      "INSERT INTO audit_head (id, seq, hash, issued) VALUES (1, $1, $2, $1) "
      "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
      "issued = greatest(audit_head.issued, excluded.seq)";
  t.exec_params(kSql, seq, hash);
  return absl::OkStatus();
}

// Adds contents, parameters, indicators to a load read from its row.
inline absl::Status CompleteLoad(pqxx::transaction_base& t, Load& load) {
  {
    static constexpr const char* kSql =
        "SELECT i.id, i.serial FROM load_items li JOIN items i ON i.id = li.item_id "
        "WHERE li.load_id = $1 ORDER BY i.id";
    const pqxx::result rows = t.exec_params(kSql, load.id);
    for (pqxx::result::size_type i = 0; i < rows.size(); ++i) {
      load.item_ids.push_back(Int(rows[i], 0));
      load.item_serials.push_back(Text(rows[i], 1));
    }
  }
  {
    static constexpr const char* kSql =
        "SELECT started_at, ended_at, exposure_seconds, temperature_c, pressure_kpa, passed, "
        "recorded_by, recorded_at FROM load_parameters WHERE load_id = $1";
    const pqxx::result rows = t.exec_params(kSql, load.id);
    if (!rows.empty()) {
      const pqxx::row r = rows[0];
      load.parameters = CycleParameters{.started_at = FromMicros(Int(r, 0)),
                                        .ended_at = FromMicros(Int(r, 1)),
                                        .exposure_seconds = static_cast<int32_t>(Int(r, 2)),
                                        .temperature_c = Real(r, 3),
                                        .pressure_kpa = Real(r, 4),
                                        .passed = Int(r, 5) != 0,
                                        .recorded_by = Text(r, 6),
                                        .recorded_at = FromMicros(Int(r, 7))};
    }
  }
  {
    static constexpr const char* kSql =
        "SELECT type, result, recorded_by, recorded_at FROM load_chemical_indicators "
        "WHERE load_id = $1 ORDER BY type";
    const pqxx::result rows = t.exec_params(kSql, load.id);
    for (pqxx::result::size_type i = 0; i < rows.size(); ++i) {
      const pqxx::row r = rows[i];
      load.chemical_indicators.push_back(ChemicalIndicator{.type = static_cast<int32_t>(Int(r, 0)),
                                                           .result = ParseIndicator(Text(r, 1)),
                                                           .recorded_by = Text(r, 2),
                                                           .recorded_at = FromMicros(Int(r, 3))});
    }
  }
  {
    static constexpr const char* kSql =
        "SELECT product, lot, result, control_result, read_at, recorded_by "
        "FROM load_biological_indicators WHERE load_id = $1";
    const pqxx::result rows = t.exec_params(kSql, load.id);
    if (!rows.empty()) {
      const pqxx::row r = rows[0];
      load.bi = BiologicalIndicator{.product = Text(r, 0),
                                    .lot = Text(r, 1),
                                    .result = ParseBi(Text(r, 2)),
                                    .control_result = ParseBi(Text(r, 3)),
                                    .read_at = FromMicros(Int(r, 4)),
                                    .recorded_by = Text(r, 5)};
    }
  }
  return absl::OkStatus();
}

// `result` is what an UPDATE or DELETE of one row by its key returned.
inline absl::Status ExpectOneChange(const pqxx::result& result, std::string_view what) {
  if (result.affected_rows() != 1) {
    return absl::NotFoundError(StrCat(what, " to update does not exist"));
  }
  return absl::OkStatus();
}

}  // namespace steritrack::pg

#endif  // STERITRACK_SERVER_STORAGE_PG_ROWS_H_
