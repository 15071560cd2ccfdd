// Lots, cartridge units and treatments in PostgreSQL (steritrack::CartridgeWrites); a port of
// sqlite_cartridges.cc, statement for statement.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/storage/pg_repositories.h"
#include "server/storage/pg_rows.h"

namespace steritrack::pg {
namespace {

#define PG_PAR_COLUMNS "gtin, min_units, expiry_window_days, below_par, set_at, set_by"

class PgCartridges final : public CartridgeWrites {
 public:
  explicit PgCartridges(Tx* tx) : tx_(tx) {}

  absl::StatusOr<std::optional<Lot>> FindLot(std::string_view gtin, std::string_view lot) override {
    static constexpr const char* kSql =
        "SELECT " PG_LOT_COLUMNS " FROM lots l WHERE l.gtin = $1 AND l.lot = $2";
    return tx_->Run("FindLot",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<Lot>> {
                      return First<Lot>(t.exec_params(kSql, std::string(gtin), std::string(lot)),
                                        [](const pqxx::row& r) { return ReadLot(r, 0); });
                    });
  }

  absl::StatusOr<std::optional<Lot>> FindLotById(int64_t id) override {
    static constexpr const char* kSql = "SELECT " PG_LOT_COLUMNS " FROM lots l WHERE l.id = $1";
    return tx_->Run("FindLotById",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<Lot>> {
                      return First<Lot>(t.exec_params(kSql, id),
                                        [](const pqxx::row& r) { return ReadLot(r, 0); });
                    });
  }

  absl::StatusOr<std::vector<Lot>> ListLots(const LotFilter& f) override {
    static constexpr const char* kSql =
        "SELECT " PG_LOT_COLUMNS
        " FROM lots l WHERE l.id > $1 AND ($2::text = '' OR l.state = $2) "
        "ORDER BY l.id LIMIT $3";
    return tx_->Run("ListLots", [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<Lot>> {
      const std::string state = f.state ? std::string(LotStateName(*f.state)) : std::string();
      return Collect<Lot>(t.exec_params(kSql, f.after_id, state, int64_t{f.limit}),
                          [](const pqxx::row& r) { return ReadLot(r, 0); });
    });
  }

  absl::StatusOr<int64_t> CountUnitsInStock(int64_t lot_id) override {
    static constexpr const char* kSql =
        "SELECT count(*) FROM cartridges c WHERE c.lot_id = $1 "
        "AND NOT EXISTS (SELECT 1 FROM cartridge_uses u WHERE u.cartridge_id = c.id) "
        "AND NOT EXISTS (SELECT 1 FROM cartridge_discards x WHERE x.cartridge_id = c.id)";
    return tx_->Run("CountUnitsInStock", [&](pqxx::transaction_base& t) -> absl::StatusOr<int64_t> {
      const pqxx::result rows = t.exec_params(kSql, lot_id);
      return rows.empty() ? 0 : Int(rows[0], 0);
    });
  }

  absl::StatusOr<std::vector<LotStock>> ListLotStock(std::string_view gtin,
                                                     absl::CivilDay expiring_from) override {
    // Grouped by every lot column (not only the key, which PostgreSQL would accept as well);
    // lots with the same expiry in byte order of their names, as SQLite's BINARY collation.
    static constexpr const char* kSql =
        "SELECT " PG_LOT_COLUMNS
        ", count(*) FROM lots l JOIN cartridges c ON c.lot_id = l.id "
        "WHERE l.gtin = $1 AND l.expiry >= $2 "
        "AND NOT EXISTS (SELECT 1 FROM cartridge_uses u WHERE u.cartridge_id = c.id) "
        "AND NOT EXISTS (SELECT 1 FROM cartridge_discards x WHERE x.cartridge_id = c.id) "
        "GROUP BY " PG_LOT_COLUMNS " ORDER BY l.expiry, l.lot COLLATE \"C\"";
    return tx_->Run(
        "ListLotStock", [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<LotStock>> {
          return Collect<LotStock>(
              t.exec_params(kSql, std::string(gtin), absl::FormatCivilTime(expiring_from)),
              [](const pqxx::row& r) -> absl::StatusOr<LotStock> {
                ASSIGN_OR_RETURN(Lot lot, ReadLot(r, 0));
                return LotStock{.lot = std::move(lot), .units_in_stock = Int(r, 9)};
              });
        });
  }

  absl::StatusOr<std::optional<ParLevel>> FindParLevel(std::string_view gtin) override {
    static constexpr const char* kSql = "SELECT " PG_PAR_COLUMNS " FROM par_levels WHERE gtin = $1";
    return tx_->Run("FindParLevel",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<ParLevel>> {
                      return First<ParLevel>(t.exec_params(kSql, std::string(gtin)), ReadParLevel);
                    });
  }

  absl::StatusOr<std::vector<ParLevel>> ListParLevels() override {
    static constexpr const char* kSql =
        "SELECT " PG_PAR_COLUMNS " FROM par_levels ORDER BY gtin COLLATE \"C\"";
    return tx_->Run("ListParLevels",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<ParLevel>> {
                      return Collect<ParLevel>(t.exec_params(kSql), ReadParLevel);
                    });
  }

  absl::StatusOr<std::optional<Cartridge>> FindCartridge(std::string_view gtin,
                                                         std::string_view serial) override {
    static const std::string kSql = StrCat(kCartridgeSelect, "WHERE c.gtin = $1 AND c.serial = $2");
    return tx_->Run("FindCartridge",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<Cartridge>> {
                      return First<Cartridge>(
                          t.exec_params(kSql, std::string(gtin), std::string(serial)),
                          ReadCartridge);
                    });
  }

  absl::StatusOr<std::optional<Cartridge>> FindCartridgeById(int64_t id) override {
    static const std::string kSql = StrCat(kCartridgeSelect, "WHERE c.id = $1");
    return tx_->Run("FindCartridgeById",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<Cartridge>> {
                      return First<Cartridge>(t.exec_params(kSql, id), ReadCartridge);
                    });
  }

  absl::StatusOr<std::vector<Cartridge>> ListCartridges(const CartridgeFilter& f) override {
    static const std::string kSql = StrCat(
        kCartridgeSelect,
        "WHERE c.id > $1 AND ($2::bigint = 0 OR c.lot_id = $2) "
        "AND ($3::bigint = 0 OR u.treatment_id = $3) "
        "AND ($4::text = '' OR $4 = CASE WHEN x.cartridge_id IS NOT NULL THEN 'DISCARDED_UNUSED' "
        "WHEN d.cartridge_id IS NOT NULL THEN 'DISPOSED' "
        "WHEN u.cartridge_id IS NOT NULL THEN 'OPENED' ELSE 'RECEIVED' END) "
        "ORDER BY c.id LIMIT $5");
    return tx_->Run(
        "ListCartridges", [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<Cartridge>> {
          const std::string state =
              f.state ? std::string(CartridgeStateName(*f.state)) : std::string();
          return Collect<Cartridge>(
              t.exec_params(kSql, f.after_id, f.lot_id, f.treatment_id, state, int64_t{f.limit}),
              ReadCartridge);
        });
  }

  absl::StatusOr<std::optional<Treatment>> FindTreatment(int64_t id) override {
    static constexpr const char* kSql =
        "SELECT " PG_TREATMENT_COLUMNS " FROM treatments WHERE id = $1";
    return tx_->Run("FindTreatment",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<Treatment>> {
                      return First<Treatment>(t.exec_params(kSql, id), ReadTreatment);
                    });
  }

  absl::StatusOr<std::vector<Treatment>> ListTreatments(const TreatmentFilter& f) override {
    static constexpr const char* kSql =
        "SELECT " PG_TREATMENT_COLUMNS
        " FROM treatments WHERE id > $1 AND ($2::text = '' OR room = $2) "
        "AND ($3::boolean IS NULL OR (ended_at IS NOT NULL) = $3) ORDER BY id LIMIT $4";
    return tx_->Run(
        "ListTreatments", [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<Treatment>> {
          return Collect<Treatment>(
              t.exec_params(kSql, f.after_id, f.room, f.ended, int64_t{f.limit}), ReadTreatment);
        });
  }

  absl::StatusOr<int64_t> InsertLot(const Lot& lot) override {
    static constexpr const char* kSql =
        "INSERT INTO lots (gtin, lot, expiry, state, state_reason, state_changed_by, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
    return tx_->Run("InsertLot", [&](pqxx::transaction_base& t) -> absl::StatusOr<int64_t> {
      const pqxx::result rows =
          t.exec_params(kSql, lot.gtin, lot.lot, absl::FormatCivilTime(lot.expiry),
                        std::string(LotStateName(lot.state)), lot.state_reason,
                        lot.state_changed_by, Micros(lot.created_at));
      return Int(rows.at(0), 0);
    });
  }

  absl::Status UpdateLotState(int64_t lot_id, LotState state, std::string_view reason,
                              absl::Time at, std::string_view by) override {
    static constexpr const char* kSql =
        "UPDATE lots SET state = $2, state_reason = $3, state_changed_at = $4, "
        "state_changed_by = $5 WHERE id = $1";
    return tx_->Run("UpdateLotState", [&](pqxx::transaction_base& t) -> absl::Status {
      return ExpectOneChange(t.exec_params(kSql, lot_id, std::string(LotStateName(state)),
                                           std::string(reason), Micros(at), std::string(by)),
                             "lot");
    });
  }

  absl::StatusOr<int64_t> InsertCartridge(const Cartridge& c) override {
    static constexpr const char* kSql =
        "INSERT INTO cartridges (gtin, serial, lot_id, received_at, received_by) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id";
    return tx_->Run("InsertCartridge", [&](pqxx::transaction_base& t) -> absl::StatusOr<int64_t> {
      const pqxx::result rows =
          t.exec_params(kSql, c.gtin, c.serial, c.lot.id, Micros(c.received_at), c.received_by);
      return Int(rows.at(0), 0);
    });
  }

  absl::Status RecordUse(int64_t cartridge_id, const CartridgeUse& use) override {
    static constexpr const char* kSql =
        "INSERT INTO cartridge_uses (cartridge_id, treatment_id, room, at, by) "
        "VALUES ($1, $2, $3, $4, $5)";
    absl::Status status = tx_->Run("RecordUse", [&](pqxx::transaction_base& t) -> absl::Status {
      t.exec_params(kSql, cartridge_id, use.treatment_id, use.room, Micros(use.at), use.by);
      return absl::OkStatus();
    });
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
        "VALUES ($1, $2, $3, $4)";
    absl::Status status =
        tx_->Run("RecordDisposal", [&](pqxx::transaction_base& t) -> absl::Status {
          t.exec_params(kSql, cartridge_id, d.container_id, Micros(d.at), d.by);
          return absl::OkStatus();
        });
    if (absl::IsAlreadyExists(status)) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "cartridge already disposed",
                       "CARTRIDGE_DISPOSED");
    }
    return status;
  }

  absl::Status RecordDiscard(int64_t cartridge_id, const Discard& d) override {
    static constexpr const char* kSql =
        "INSERT INTO cartridge_discards (cartridge_id, reason, at, by) VALUES ($1, $2, $3, $4)";
    absl::Status status = tx_->Run("RecordDiscard", [&](pqxx::transaction_base& t) -> absl::Status {
      t.exec_params(kSql, cartridge_id, d.reason, Micros(d.at), d.by);
      return absl::OkStatus();
    });
    if (absl::IsAlreadyExists(status)) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "cartridge already written off",
                       "CARTRIDGE_DISCARDED");
    }
    return status;
  }

  absl::StatusOr<int64_t> InsertTreatment(const Treatment& tr) override {
    static constexpr const char* kSql =
        "INSERT INTO treatments (room, clinician, client_ref, started_at, started_by) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id";
    return tx_->Run("InsertTreatment", [&](pqxx::transaction_base& t) -> absl::StatusOr<int64_t> {
      const pqxx::result rows = t.exec_params(kSql, tr.room, tr.clinician, tr.client_ref,
                                              Micros(tr.started_at), tr.started_by);
      return Int(rows.at(0), 0);
    });
  }

  absl::Status EndTreatment(int64_t id, absl::Time at, std::string_view by) override {
    static constexpr const char* kSql =
        "UPDATE treatments SET ended_at = $2, ended_by = $3 WHERE id = $1";
    return tx_->Run("EndTreatment", [&](pqxx::transaction_base& t) -> absl::Status {
      return ExpectOneChange(t.exec_params(kSql, id, Micros(at), std::string(by)), "treatment");
    });
  }

  absl::Status SaveParLevel(const ParLevel& p) override {
    static constexpr const char* kSql =
        "INSERT INTO par_levels (" PG_PAR_COLUMNS
        ") VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (gtin) DO UPDATE SET min_units = $2, expiry_window_days = $3, "
        "below_par = $4, set_at = $5, set_by = $6";
    return tx_->Run("SaveParLevel", [&](pqxx::transaction_base& t) -> absl::Status {
      t.exec_params(kSql, p.gtin, p.min_units, int64_t{p.expiry_window_days},
                    int64_t{p.below_par ? 1 : 0}, Micros(p.set_at), p.set_by);
      return absl::OkStatus();
    });
  }

  absl::Status DeleteParLevel(std::string_view gtin) override {
    static constexpr const char* kSql = "DELETE FROM par_levels WHERE gtin = $1";
    return tx_->Run("DeleteParLevel", [&](pqxx::transaction_base& t) -> absl::Status {
      return ExpectOneChange(t.exec_params(kSql, std::string(gtin)), "par level");
    });
  }

 private:
  static absl::StatusOr<ParLevel> ReadParLevel(const pqxx::row& r) {
    return ParLevel{.gtin = Text(r, 0),
                    .min_units = Int(r, 1),
                    .expiry_window_days = static_cast<int>(Int(r, 2)),
                    .below_par = Int(r, 3) != 0,
                    .set_at = FromMicros(Int(r, 4)),
                    .set_by = Text(r, 5)};
  }

  Tx* const tx_;
};

}  // namespace

std::unique_ptr<CartridgeWrites> NewCartridgeRepository(Tx* tx) {
  return std::make_unique<PgCartridges>(tx);
}

}  // namespace steritrack::pg
