// Row mapping shared by the SQLite repositories: column lists, readers from a statement row to the
// domain types, and small helpers. Internal to server/storage. Pure functions over a connection or
// statement that the caller holds; thread-compatible.
#ifndef STERITRACK_SERVER_STORAGE_SQLITE_ROWS_H_
#define STERITRACK_SERVER_STORAGE_SQLITE_ROWS_H_

#ifndef STERITRACK_STORAGE_IMPLEMENTATION
#error \
    "server/storage/sqlite_rows.h is internal to server/storage: include it only from there (see server/CMakeLists.txt)"
#endif

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "server/storage/sqlite.h"
#include "steritrack/error.h"
#include "steritrack/model.h"
#include "steritrack/status_macros.h"
#include "steritrack/sterilization.h"
#include "steritrack/strings.h"

namespace steritrack::sqlite {

inline int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
inline absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

inline std::optional<int64_t> OptId(int64_t id) {
  return id == 0 ? std::nullopt : std::optional<int64_t>(id);
}

inline absl::StatusOr<LotState> ParseLotState(const std::string& s) {
  if (s == "ACTIVE") return LotState::kActive;
  if (s == "QUARANTINED") return LotState::kQuarantined;
  if (s == "RECALLED") return LotState::kRecalled;
  return absl::DataLossError(StrCat("unknown lot state in database: ", s));
}

// Reads the lot columns starting at `col`.
inline absl::StatusOr<Lot> ReadLot(const Statement& st, int col) {
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

#define LOT_COLUMNS                                                              \
  "l.id, l.gtin, l.lot, l.expiry, l.state, l.state_reason, l.state_changed_by, " \
  "l.state_changed_at, l.created_at"

inline constexpr const char* kCartridgeSelect =
    "SELECT c.id, c.gtin, c.serial, c.received_at, c.received_by, " LOT_COLUMNS
    ", u.treatment_id, u.room, u.at, u.by, d.container_id, d.at, d.by, x.reason, x.at, x.by "
    "FROM cartridges c JOIN lots l ON l.id = c.lot_id "
    "LEFT JOIN cartridge_uses u ON u.cartridge_id = c.id "
    "LEFT JOIN cartridge_disposals d ON d.cartridge_id = c.id "
    "LEFT JOIN cartridge_discards x ON x.cartridge_id = c.id ";

inline absl::StatusOr<Cartridge> ReadCartridge(const Statement& st) {
  Cartridge c;
  c.id = st.Int(0);
  c.gtin = st.Text(1);
  c.serial = st.Text(2);
  c.received_at = FromMicros(st.Int(3));
  c.received_by = st.Text(4);
  ASSIGN_OR_RETURN(c.lot, ReadLot(st, 5));
  constexpr int kUse = 14, kDisposal = 18, kDiscard = 21;
  if (!st.IsNull(kUse)) {
    c.use = CartridgeUse{.treatment_id = st.Int(kUse),
                         .room = st.Text(kUse + 1),
                         .at = FromMicros(st.Int(kUse + 2)),
                         .by = st.Text(kUse + 3)};
    c.state = CartridgeState::kOpened;
  }
  if (!st.IsNull(kDisposal)) {
    c.disposal = Disposal{.container_id = st.Text(kDisposal),
                          .at = FromMicros(st.Int(kDisposal + 1)),
                          .by = st.Text(kDisposal + 2)};
    c.state = CartridgeState::kDisposed;
  }
  if (!st.IsNull(kDiscard)) {
    c.discard = Discard{.reason = st.Text(kDiscard),
                        .at = FromMicros(st.Int(kDiscard + 1)),
                        .by = st.Text(kDiscard + 2)};
    c.state = CartridgeState::kDiscarded;
  }
  return c;
}

inline absl::StatusOr<Treatment> ReadTreatment(const Statement& st) {
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

inline absl::StatusOr<ItemState> ParseItemState(const std::string& s) {
  std::optional<ItemState> state = ItemStateFromName(s);
  if (!state) return absl::DataLossError(StrCat("unknown item state in database: ", s));
  return *state;
}

#define ITEM_COLUMNS                                                                           \
  "id, serial, type, ifu_max_cycles, cycles, maintenance_due, state, load_id, sterile_until, " \
  "treatment_id, state_reason, created_at"

inline absl::StatusOr<ReusableItem> ReadItem(const Statement& st) {
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

#define STERILIZER_COLUMNS                                                 \
  "id, name, type, last_cycle_number, in_service, out_of_service_reason, " \
  "out_of_service_at, negative_tests, created_at"

inline absl::StatusOr<Sterilizer> ReadSterilizer(const Statement& st) {
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

inline absl::StatusOr<ReleaseState> ParseReleaseState(const std::string& s) {
  if (s == "OPEN") return ReleaseState::kOpen;
  if (s == "RELEASED") return ReleaseState::kReleased;
  if (s == "QUARANTINED") return ReleaseState::kQuarantined;
  if (s == "RECALLED") return ReleaseState::kRecalled;
  return absl::DataLossError(StrCat("unknown load state in database: ", s));
}

#define LOAD_COLUMNS                                                                           \
  "l.id, l.sterilizer_id, s.name, l.cycle_number, l.cycle_type, l.test_cycle, "                \
  "l.bi_required, l.shelf_life_days, l.operator, l.created_at, l.release_state, l.signed_by, " \
  "l.signed_at, l.sign_meaning"

inline absl::StatusOr<Load> ReadLoadRow(const Statement& st) {
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
    l.signature =
        Signature{.by = st.Text(11), .at = FromMicros(st.Int(12)), .meaning = st.Text(13)};
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
inline absl::StatusOr<std::vector<T>> Collect(Statement& st, ReadRow read_row) {
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
inline absl::StatusOr<std::optional<T>> First(Statement& st, ReadRow read_row) {
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<T>();
  ASSIGN_OR_RETURN(T item, read_row(st));
  return std::optional<T>(std::move(item));
}

#define EVENT_COLUMNS                                                                             \
  "seq, at, actor, action, lot_id, cartridge_id, treatment_id, item_id, load_id, sterilizer_id, " \
  "detail, request_id, before, after, corrects_seq, prev_hash, hash"

inline Event ReadEventRow(const Statement& s) {
  return Event{.seq = s.Int(0),
               .at = FromMicros(s.Int(1)),
               .actor = s.Text(2),
               .action = s.Text(3),
               .lot_id = s.Int(4),
               .cartridge_id = s.Int(5),
               .treatment_id = s.Int(6),
               .item_id = s.Int(7),
               .load_id = s.Int(8),
               .sterilizer_id = s.Int(9),
               .detail = s.Text(10),
               .request_id = s.Text(11),
               .before = s.Text(12),
               .after = s.Text(13),
               .corrects_seq = s.Int(14),
               .prev_hash = s.Text(15),
               .hash = s.Text(16)};
}

inline absl::Status WriteAuditHead(Connection& conn, int64_t seq, const std::string& hash) {
  static constexpr const char* kSql =
      "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2) "
      "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash";
  ASSIGN_OR_RETURN(auto st, conn.Prepare(kSql));
  st->Bind(1, seq).Bind(2, hash);
  return st->Run();
}

// Adds contents, parameters and indicators to the loads of `by_id` whose ids lie in [low, high]:
// four statements, each reading the rows of every load id in the range and keeping those asked for.
inline absl::Status CompleteLoadRange(Connection* conn_,
                                      const std::unordered_map<int64_t, Load*>& by_id, int64_t low,
                                      int64_t high) {
  // Steps `sql` bound to [low, high]; `each` gets the load of each row (column 0) asked for.
  const auto for_each_row = [&](const char* sql, const auto& each) -> absl::Status {
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(sql));
    st->Bind(1, low).Bind(2, high);
    while (true) {
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) return absl::OkStatus();
      if (auto it = by_id.find(st->Int(0)); it != by_id.end()) each(*it->second, *st);
    }
  };
  RETURN_IF_ERROR(for_each_row(
      "SELECT li.load_id, i.id, i.serial FROM load_items li JOIN items i ON i.id = li.item_id "
      "WHERE li.load_id BETWEEN ?1 AND ?2 ORDER BY li.load_id, i.id",
      [](Load& load, const Statement& st) {
        load.item_ids.push_back(st.Int(1));
        load.item_serials.push_back(st.Text(2));
      }));
  RETURN_IF_ERROR(for_each_row(
      "SELECT load_id, started_at, ended_at, exposure_seconds, temperature_c, pressure_kpa, "
      "passed, recorded_by, recorded_at FROM load_parameters WHERE load_id BETWEEN ?1 AND ?2",
      [](Load& load, const Statement& st) {
        load.parameters = CycleParameters{.started_at = FromMicros(st.Int(1)),
                                          .ended_at = FromMicros(st.Int(2)),
                                          .exposure_seconds = static_cast<int32_t>(st.Int(3)),
                                          .temperature_c = st.Real(4),
                                          .pressure_kpa = st.Real(5),
                                          .passed = st.Int(6) != 0,
                                          .recorded_by = st.Text(7),
                                          .recorded_at = FromMicros(st.Int(8))};
      }));
  RETURN_IF_ERROR(for_each_row(
      "SELECT load_id, type, result, recorded_by, recorded_at FROM load_chemical_indicators "
      "WHERE load_id BETWEEN ?1 AND ?2 ORDER BY load_id, type",
      [](Load& load, const Statement& st) {
        load.chemical_indicators.push_back(
            ChemicalIndicator{.type = static_cast<int32_t>(st.Int(1)),
                              .result = ParseIndicator(st.Text(2)),
                              .recorded_by = st.Text(3),
                              .recorded_at = FromMicros(st.Int(4))});
      }));
  return for_each_row(
      "SELECT load_id, product, lot, result, control_result, read_at, recorded_by "
      "FROM load_biological_indicators WHERE load_id BETWEEN ?1 AND ?2",
      [](Load& load, const Statement& st) {
        load.bi = BiologicalIndicator{.product = st.Text(1),
                                      .lot = st.Text(2),
                                      .result = ParseBi(st.Text(3)),
                                      .control_result = ParseBi(st.Text(4)),
                                      .read_at = FromMicros(st.Int(5)),
                                      .recorded_by = st.Text(6)};
      });
}

// Adds contents, parameters and indicators to loads read from their rows. A page of loads close
// in id (a report's page of thousands, by creation time) is completed in one range, four
// statements in all instead of four per load; loads far apart (a few open loads of a year) one
// by one, so that no range reads many loads not asked for.
inline absl::Status CompleteLoads(Connection* conn_, std::span<Load> loads) {
  if (loads.empty()) return absl::OkStatus();
  std::unordered_map<int64_t, Load*> by_id;
  by_id.reserve(loads.size());
  int64_t low = loads.front().id;
  int64_t high = low;
  for (Load& l : loads) {
    by_id.emplace(l.id, &l);
    low = std::min(low, l.id);
    high = std::max(high, l.id);
  }
  if (high - low < 4 * static_cast<int64_t>(loads.size())) {
    return CompleteLoadRange(conn_, by_id, low, high);
  }
  for (const Load& l : loads) RETURN_IF_ERROR(CompleteLoadRange(conn_, by_id, l.id, l.id));
  return absl::OkStatus();
}

inline absl::Status CompleteLoad(Connection* conn_, Load& load) {
  return CompleteLoads(conn_, std::span<Load>(&load, 1));
}

inline absl::Status ExpectOneChange(Connection* conn_, std::string_view what) {
  if (sqlite3_changes(conn_->raw()) != 1) {
    return absl::NotFoundError(StrCat(what, " to update does not exist"));
  }
  return absl::OkStatus();
}

}  // namespace steritrack::sqlite

#endif  // STERITRACK_SERVER_STORAGE_SQLITE_ROWS_H_
