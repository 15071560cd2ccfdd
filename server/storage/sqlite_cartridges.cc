// Lots, cartridge units and treatments in SQLite (steritrack::CartridgeWrites).
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/storage/sqlite_repositories.h"
#include "server/storage/sqlite_rows.h"

namespace steritrack::sqlite {
namespace {

#define PAR_COLUMNS "gtin, min_units, expiry_window_days, below_par, set_at, set_by"

class SqliteCartridges final : public CartridgeWrites {
 public:
  explicit SqliteCartridges(Connection* conn) : conn_(conn) {}

  absl::StatusOr<std::optional<Lot>> FindLot(std::string_view gtin, std::string_view lot) override {
    static constexpr const char* kSql =
        "SELECT " LOT_COLUMNS " FROM lots l WHERE l.gtin = ?1 AND l.lot = ?2";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, gtin).Bind(2, lot);
    return First<Lot>(*st, [](const Statement& s) { return ReadLot(s, 0); });
  }

  absl::StatusOr<std::optional<Lot>> FindLotById(int64_t id) override {
    static constexpr const char* kSql = "SELECT " LOT_COLUMNS " FROM lots l WHERE l.id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, id);
    return First<Lot>(*st, [](const Statement& s) { return ReadLot(s, 0); });
  }

  absl::StatusOr<std::vector<Lot>> ListLots(const LotFilter& f) override {
    static constexpr const char* kSql =
        "SELECT " LOT_COLUMNS
        " FROM lots l WHERE l.id > ?1 AND (?2 = '' OR l.state = ?2) "
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

  absl::StatusOr<std::vector<LotStock>> ListLotStock(std::string_view gtin,
                                                     absl::CivilDay expiring_from) override {
    static constexpr const char* kSql =
        "SELECT " LOT_COLUMNS
        ", count(*) FROM lots l JOIN cartridges c ON c.lot_id = l.id "
        "WHERE l.gtin = ?1 AND l.expiry >= ?2 "
        "AND NOT EXISTS (SELECT 1 FROM cartridge_uses u WHERE u.cartridge_id = c.id) "
        "AND NOT EXISTS (SELECT 1 FROM cartridge_discards x WHERE x.cartridge_id = c.id) "
        "GROUP BY l.id ORDER BY l.expiry, l.lot";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, gtin).Bind(2, absl::FormatCivilTime(expiring_from));
    return Collect<LotStock>(*st, [](const Statement& s) -> absl::StatusOr<LotStock> {
      ASSIGN_OR_RETURN(Lot lot, ReadLot(s, 0));
      return LotStock{.lot = std::move(lot), .units_in_stock = s.Int(9)};
    });
  }

  absl::StatusOr<std::optional<ParLevel>> FindParLevel(std::string_view gtin) override {
    static constexpr const char* kSql = "SELECT " PAR_COLUMNS " FROM par_levels WHERE gtin = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, gtin);
    return First<ParLevel>(*st, ReadParLevel);
  }

  absl::StatusOr<std::vector<ParLevel>> ListParLevels() override {
    static constexpr const char* kSql = "SELECT " PAR_COLUMNS " FROM par_levels ORDER BY gtin";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    return Collect<ParLevel>(*st, ReadParLevel);
  }

  absl::StatusOr<std::optional<Cartridge>> FindCartridge(std::string_view gtin,
                                                         std::string_view serial) override {
    static const std::string kSql = StrCat(kCartridgeSelect, "WHERE c.gtin = ?1 AND c.serial = ?2");
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql.c_str()));
    st->Bind(1, gtin).Bind(2, serial);
    return First<Cartridge>(*st, ReadCartridge);
  }

  absl::StatusOr<std::optional<Cartridge>> FindCartridgeById(int64_t id) override {
    static const std::string kSql = StrCat(kCartridgeSelect, "WHERE c.id = ?1");
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql.c_str()));
    st->Bind(1, id);
    return First<Cartridge>(*st, ReadCartridge);
  }

  absl::StatusOr<std::vector<Cartridge>> ListCartridges(const CartridgeFilter& f) override {
    // One statement per leading filter: SQLite cannot use an index for "(?2 = 0 OR c.lot_id = ?2)",
    // so a lot's or a treatment's units would be found by walking every unit from after_id (a
    // recall look-back and a treatment's end read the whole table at a million units). A lot's
    // units come from cartridges_lot (lot_id, id); a treatment's from cartridge_uses_treatment.
#define CARTRIDGE_FILTERS                                                              \
  "AND (?2 = 0 OR c.lot_id = ?2) AND (?3 = 0 OR u.treatment_id = ?3) "                 \
  "AND (?4 = '' OR ?4 = CASE WHEN x.cartridge_id IS NOT NULL THEN 'DISCARDED_UNUSED' " \
  "WHEN d.cartridge_id IS NOT NULL THEN 'DISPOSED' "                                   \
  "WHEN u.cartridge_id IS NOT NULL THEN 'OPENED' ELSE 'RECEIVED' END) ORDER BY c.id LIMIT ?5"
    static const std::string kAll = StrCat(kCartridgeSelect, "WHERE c.id > ?1 ", CARTRIDGE_FILTERS);
    static const std::string kByLot =
        StrCat(kCartridgeSelect, "WHERE c.lot_id = ?2 AND c.id > ?1 ", CARTRIDGE_FILTERS);
    static const std::string kByTreatment =
        StrCat(kCartridgeSelect, "WHERE u.treatment_id = ?3 AND c.id > ?1 ", CARTRIDGE_FILTERS);
#undef CARTRIDGE_FILTERS
    const std::string& sql = f.lot_id != 0 ? kByLot : f.treatment_id != 0 ? kByTreatment : kAll;
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(sql.c_str()));
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
    // A room's treatments from treatments_room (room, id), not a walk of every treatment.
    static constexpr const char* kByRoom =
        "SELECT id, room, clinician, client_ref, started_at, started_by, ended_at, ended_by "
        "FROM treatments WHERE room = ?2 AND id > ?1 "
        "AND (?3 IS NULL OR (ended_at IS NOT NULL) = ?3) ORDER BY id LIMIT ?4";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(f.room.empty() ? kSql : kByRoom));
    st->Bind(1, f.after_id)
        .Bind(2, f.room)
        .Bind(3, f.ended ? std::optional<int64_t>(*f.ended ? 1 : 0) : std::nullopt)
        .Bind(4, int64_t{f.limit});
    return Collect<Treatment>(*st, ReadTreatment);
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
    st->Bind(1, lot_id)
        .Bind(2, LotStateName(state))
        .Bind(3, reason)
        .Bind(4, Micros(at))
        .Bind(5, by);
    RETURN_IF_ERROR(st->Run());
    return ExpectOneChange(conn_, "lot");
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
    return ExpectOneChange(conn_, "treatment");
  }

  absl::Status SaveParLevel(const ParLevel& p) override {
    static constexpr const char* kSql =
        "INSERT INTO par_levels (" PAR_COLUMNS
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT (gtin) DO UPDATE SET min_units = ?2, expiry_window_days = ?3, "
        "below_par = ?4, set_at = ?5, set_by = ?6";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, p.gtin)
        .Bind(2, p.min_units)
        .Bind(3, int64_t{p.expiry_window_days})
        .Bind(4, int64_t{p.below_par ? 1 : 0})
        .Bind(5, Micros(p.set_at))
        .Bind(6, p.set_by);
    return st->Run();
  }

  absl::Status DeleteParLevel(std::string_view gtin) override {
    static constexpr const char* kSql = "DELETE FROM par_levels WHERE gtin = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, gtin);
    RETURN_IF_ERROR(st->Run());
    return ExpectOneChange(conn_, "par level");
  }

 private:
  static absl::StatusOr<ParLevel> ReadParLevel(const Statement& s) {
    return ParLevel{.gtin = s.Text(0),
                    .min_units = s.Int(1),
                    .expiry_window_days = static_cast<int>(s.Int(2)),
                    .below_par = s.Int(3) != 0,
                    .set_at = FromMicros(s.Int(4)),
                    .set_by = s.Text(5)};
  }

  Connection* const conn_;
};

}  // namespace

std::unique_ptr<CartridgeWrites> NewCartridgeRepository(Connection* conn) {
  return std::make_unique<SqliteCartridges>(conn);
}

}  // namespace steritrack::sqlite
