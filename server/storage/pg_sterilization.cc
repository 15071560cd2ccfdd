// Reusable items, sterilisers, loads and Bowie-Dick tests in PostgreSQL
// (steritrack::SterilizationWrites); a port of sqlite_sterilization.cc, statement for statement.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/storage/pg_repositories.h"
#include "server/storage/pg_rows.h"

namespace steritrack::pg {
namespace {

class PgSterilization final : public SterilizationWrites {
 public:
  explicit PgSterilization(Tx* tx) : tx_(tx) {}

  absl::StatusOr<std::optional<ReusableItem>> FindItem(std::string_view serial) override {
    static constexpr const char* kSql = "SELECT " PG_ITEM_COLUMNS " FROM items WHERE serial = $1";
    return tx_->Run(
        "FindItem", [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<ReusableItem>> {
          return First<ReusableItem>(t.exec_params(kSql, std::string(serial)), ReadItem);
        });
  }

  absl::StatusOr<std::optional<ReusableItem>> FindItemById(int64_t id) override {
    static constexpr const char* kSql = "SELECT " PG_ITEM_COLUMNS " FROM items WHERE id = $1";
    return tx_->Run("FindItemById",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<ReusableItem>> {
                      return First<ReusableItem>(t.exec_params(kSql, id), ReadItem);
                    });
  }

  absl::StatusOr<std::vector<ReusableItem>> ListItems(const ItemFilter& f) override {
    static constexpr const char* kSql =
        "SELECT " PG_ITEM_COLUMNS
        " FROM items WHERE id > $1 AND ($2::text = '' OR state = $2) "
        "AND ($3::bigint = 0 OR treatment_id = $3) ORDER BY id LIMIT $4";
    return tx_->Run(
        "ListItems", [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<ReusableItem>> {
          const std::string state = f.state ? std::string(ItemStateName(*f.state)) : std::string();
          return Collect<ReusableItem>(
              t.exec_params(kSql, f.after_id, state, f.treatment_id, int64_t{f.limit}), ReadItem);
        });
  }

  absl::StatusOr<std::optional<Sterilizer>> FindSterilizer(std::string_view name) override {
    static constexpr const char* kSql =
        "SELECT " PG_STERILIZER_COLUMNS " FROM sterilizers WHERE name = $1";
    return tx_->Run("FindSterilizer",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<Sterilizer>> {
                      return First<Sterilizer>(t.exec_params(kSql, std::string(name)),
                                               ReadSterilizer);
                    });
  }

  absl::StatusOr<std::optional<Sterilizer>> FindSterilizerById(int64_t id) override {
    static constexpr const char* kSql =
        "SELECT " PG_STERILIZER_COLUMNS " FROM sterilizers WHERE id = $1";
    return tx_->Run("FindSterilizerById",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<Sterilizer>> {
                      return First<Sterilizer>(t.exec_params(kSql, id), ReadSterilizer);
                    });
  }

  absl::StatusOr<std::vector<Sterilizer>> ListSterilizers(int64_t after_id, int limit) override {
    static constexpr const char* kSql =
        "SELECT " PG_STERILIZER_COLUMNS " FROM sterilizers WHERE id > $1 ORDER BY id LIMIT $2";
    return tx_->Run("ListSterilizers",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<Sterilizer>> {
                      return Collect<Sterilizer>(t.exec_params(kSql, after_id, int64_t{limit}),
                                                 ReadSterilizer);
                    });
  }

  absl::StatusOr<std::optional<Load>> FindLoad(int64_t id) override {
    static constexpr const char* kSql =
        "SELECT " PG_LOAD_COLUMNS
        " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE l.id = $1";
    return tx_->Run("FindLoad",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<Load>> {
                      std::optional<Load> load;
                      ASSIGN_OR_RETURN(load, First<Load>(t.exec_params(kSql, id), ReadLoadRow));
                      if (load.has_value()) RETURN_IF_ERROR(CompleteLoad(t, *load));
                      return load;
                    });
  }

  absl::StatusOr<std::optional<Load>> FindLoadByCycle(int64_t sterilizer_id,
                                                      int64_t cycle_number) override {
    static constexpr const char* kSql =
        "SELECT " PG_LOAD_COLUMNS
        " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE l.sterilizer_id = $1 AND l.cycle_number = $2";
    return tx_->Run(
        "FindLoadByCycle", [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<Load>> {
          std::optional<Load> load;
          ASSIGN_OR_RETURN(
              load, First<Load>(t.exec_params(kSql, sterilizer_id, cycle_number), ReadLoadRow));
          if (load.has_value()) RETURN_IF_ERROR(CompleteLoad(t, *load));
          return load;
        });
  }

  absl::StatusOr<std::vector<Load>> ListLoads(const LoadFilter& f) override {
    // With a steriliser: in cycle order (look-backs walk cycles); otherwise by id.
    static constexpr const char* kSql =
        "SELECT " PG_LOAD_COLUMNS
        " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE l.id > $1 AND ($2::bigint = 0 OR l.sterilizer_id = $2) AND l.cycle_number > $3 "
        "AND ($4::text = '' OR l.release_state = $4) "
        "ORDER BY CASE WHEN $2 = 0 THEN l.id ELSE l.cycle_number END LIMIT $5";
    return tx_->Run(
        "ListLoads", [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<Load>> {
          const std::string state =
              f.release_state ? std::string(ReleaseStateName(*f.release_state)) : std::string();
          std::vector<Load> loads;
          ASSIGN_OR_RETURN(
              loads, Collect<Load>(t.exec_params(kSql, f.after_id, f.sterilizer_id,
                                                 f.after_cycle_number, state, int64_t{f.limit}),
                                   ReadLoadRow));
          for (Load& l : loads) RETURN_IF_ERROR(CompleteLoad(t, l));
          return loads;
        });
  }

  absl::StatusOr<std::optional<int64_t>> FindOpenLoadOfItem(int64_t item_id) override {
    static constexpr const char* kSql =
        "SELECT l.id FROM load_items li JOIN loads l ON l.id = li.load_id "
        "WHERE li.item_id = $1 AND l.release_state = 'OPEN' ORDER BY l.id DESC LIMIT 1";
    return tx_->Run("FindOpenLoadOfItem",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<int64_t>> {
                      const pqxx::result rows = t.exec_params(kSql, item_id);
                      if (rows.empty()) return std::optional<int64_t>();
                      return std::optional<int64_t>(Int(rows[0], 0));
                    });
  }

  absl::StatusOr<std::vector<BowieDickTest>> ListBowieDickTests(int64_t sterilizer_id,
                                                                absl::CivilDay day) override {
    static constexpr const char* kSql =
        "SELECT id, sterilizer_id, day, result, operator, at FROM bowie_dick_tests "
        "WHERE sterilizer_id = $1 AND day = $2 ORDER BY id";
    return tx_->Run("ListBowieDickTests",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<BowieDickTest>> {
                      return Collect<BowieDickTest>(
                          t.exec_params(kSql, sterilizer_id, absl::FormatCivilTime(day)),
                          [day](const pqxx::row& r) -> absl::StatusOr<BowieDickTest> {
                            return BowieDickTest{.id = Int(r, 0),
                                                 .sterilizer_id = Int(r, 1),
                                                 .day = day,
                                                 .result = ParseIndicator(Text(r, 3)),
                                                 .operator_name = Text(r, 4),
                                                 .at = FromMicros(Int(r, 5))};
                          });
                    });
  }

  absl::StatusOr<std::vector<ItemUse>> ListItemUses(const ItemUseFilter& f) override {
    static constexpr const char* kSql =
        "SELECT item_id, treatment_id, load_id, at, by FROM item_uses "
        "WHERE ($1::bigint = 0 OR item_id = $1) AND ($2::bigint = 0 OR load_id = $2) "
        "AND ($3::bigint = 0 OR treatment_id = $3) ORDER BY id";
    return tx_->Run(
        "ListItemUses", [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<ItemUse>> {
          return Collect<ItemUse>(t.exec_params(kSql, f.item_id, f.load_id, f.treatment_id),
                                  [](const pqxx::row& r) -> absl::StatusOr<ItemUse> {
                                    return ItemUse{.item_id = Int(r, 0),
                                                   .treatment_id = Int(r, 1),
                                                   .load_id = Int(r, 2),
                                                   .at = FromMicros(Int(r, 3)),
                                                   .by = Text(r, 4)};
                                  });
        });
  }

  absl::StatusOr<int64_t> InsertItem(const ReusableItem& item) override {
    static constexpr const char* kSql =
        "INSERT INTO items (serial, type, ifu_max_cycles, cycles, maintenance_due, state, "
        "state_reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
    return tx_->Run("InsertItem", [&](pqxx::transaction_base& t) -> absl::StatusOr<int64_t> {
      const std::optional<std::string> maintenance_due =
          item.maintenance_due
              ? std::optional<std::string>(absl::FormatCivilTime(*item.maintenance_due))
              : std::nullopt;
      const pqxx::result rows = t.exec_params(
          kSql, item.serial, item.type, int64_t{item.ifu_max_cycles}, int64_t{item.cycles},
          maintenance_due, std::string(ItemStateName(item.state)), item.state_reason,
          Micros(item.created_at));
      return Int(rows.at(0), 0);
    });
  }

  absl::Status UpdateItem(const ReusableItem& item) override {
    static constexpr const char* kSql =
        "UPDATE items SET state = $2, cycles = $3, load_id = $4, sterile_until = $5, "
        "treatment_id = $6, state_reason = $7, maintenance_due = $8 WHERE id = $1";
    return tx_->Run("UpdateItem", [&](pqxx::transaction_base& t) -> absl::Status {
      const std::optional<int64_t> sterile_until =
          item.sterile_until == absl::InfinitePast()
              ? std::nullopt
              : std::optional<int64_t>(Micros(item.sterile_until));
      const std::optional<std::string> maintenance_due =
          item.maintenance_due
              ? std::optional<std::string>(absl::FormatCivilTime(*item.maintenance_due))
              : std::nullopt;
      return ExpectOneChange(
          t.exec_params(kSql, item.id, std::string(ItemStateName(item.state)), int64_t{item.cycles},
                        OptId(item.load_id), sterile_until, OptId(item.treatment_id),
                        item.state_reason, maintenance_due),
          "item");
    });
  }

  absl::StatusOr<int64_t> InsertSterilizer(const Sterilizer& s) override {
    static constexpr const char* kSql =
        "INSERT INTO sterilizers (name, type, last_cycle_number, in_service, created_at) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id";
    return tx_->Run("InsertSterilizer", [&](pqxx::transaction_base& t) -> absl::StatusOr<int64_t> {
      const pqxx::result rows =
          t.exec_params(kSql, s.name, std::string(SterilizerTypeName(s.type)), s.last_cycle_number,
                        int64_t{s.in_service ? 1 : 0}, Micros(s.created_at));
      return Int(rows.at(0), 0);
    });
  }

  absl::Status UpdateSterilizer(const Sterilizer& s) override {
    static constexpr const char* kSql =
        "UPDATE sterilizers SET last_cycle_number = $2, in_service = $3, "
        "out_of_service_reason = $4, out_of_service_at = $5, negative_tests = $6 WHERE id = $1";
    return tx_->Run("UpdateSterilizer", [&](pqxx::transaction_base& t) -> absl::Status {
      const std::optional<int64_t> out_of_service_at =
          s.out_of_service_at == absl::InfinitePast()
              ? std::nullopt
              : std::optional<int64_t>(Micros(s.out_of_service_at));
      return ExpectOneChange(
          t.exec_params(kSql, s.id, s.last_cycle_number, int64_t{s.in_service ? 1 : 0},
                        s.out_of_service_reason, out_of_service_at,
                        int64_t{s.negative_tests_since_out_of_service}),
          "steriliser");
    });
  }

  absl::StatusOr<int64_t> InsertLoad(const Load& l) override {
    static constexpr const char* kSql =
        "INSERT INTO loads (sterilizer_id, cycle_number, cycle_type, test_cycle, bi_required, "
        "shelf_life_days, operator, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "RETURNING id";
    static constexpr const char* kItemSql =
        "INSERT INTO load_items (load_id, item_id) VALUES ($1, $2)";
    // One subtransaction for the load and its contents: a refused item leaves no load behind.
    return tx_->Run("InsertLoad", [&](pqxx::transaction_base& t) -> absl::StatusOr<int64_t> {
      const pqxx::result rows =
          t.exec_params(kSql, l.sterilizer_id, l.cycle_number, l.cycle_type,
                        int64_t{l.test_cycle ? 1 : 0}, int64_t{l.bi_required ? 1 : 0},
                        int64_t{l.shelf_life_days}, l.operator_name, Micros(l.created_at));
      const int64_t id = Int(rows.at(0), 0);
      for (int64_t item_id : l.item_ids) t.exec_params(kItemSql, id, item_id);
      return id;
    });
  }

  absl::Status RecordParameters(int64_t load_id, const CycleParameters& p) override {
    static constexpr const char* kSql =
        "INSERT INTO load_parameters (load_id, started_at, ended_at, exposure_seconds, "
        "temperature_c, pressure_kpa, passed, recorded_by, recorded_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    return tx_->Run("RecordParameters", [&](pqxx::transaction_base& t) -> absl::Status {
      t.exec_params(kSql, load_id, Micros(p.started_at), Micros(p.ended_at),
                    int64_t{p.exposure_seconds}, p.temperature_c, p.pressure_kpa,
                    int64_t{p.passed ? 1 : 0}, p.recorded_by, Micros(p.recorded_at));
      return absl::OkStatus();
    });
  }

  absl::Status RecordBi(int64_t load_id, const BiologicalIndicator& bi) override {
    static constexpr const char* kSql =
        "INSERT INTO load_biological_indicators (load_id, product, lot, result, control_result, "
        "read_at, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    return tx_->Run("RecordBi", [&](pqxx::transaction_base& t) -> absl::Status {
      t.exec_params(kSql, load_id, bi.product, bi.lot, std::string(BiResultName(bi.result)),
                    std::string(BiResultName(bi.control_result)), Micros(bi.read_at),
                    bi.recorded_by);
      return absl::OkStatus();
    });
  }

  absl::Status AddChemicalIndicator(int64_t load_id, const ChemicalIndicator& ci) override {
    static constexpr const char* kSql =
        "INSERT INTO load_chemical_indicators (load_id, type, result, recorded_by, recorded_at) "
        "VALUES ($1, $2, $3, $4, $5)";
    return tx_->Run("AddChemicalIndicator", [&](pqxx::transaction_base& t) -> absl::Status {
      t.exec_params(kSql, load_id, int64_t{ci.type}, std::string(IndicatorResultName(ci.result)),
                    ci.recorded_by, Micros(ci.recorded_at));
      return absl::OkStatus();
    });
  }

  absl::Status SetLoadReleaseState(int64_t load_id, ReleaseState state,
                                   const Signature& signature) override {
    static constexpr const char* kSql =
        "UPDATE loads SET release_state = $2, signed_by = $3, signed_at = $4, sign_meaning = $5 "
        "WHERE id = $1";
    return tx_->Run("SetLoadReleaseState", [&](pqxx::transaction_base& t) -> absl::Status {
      return ExpectOneChange(t.exec_params(kSql, load_id, std::string(ReleaseStateName(state)),
                                           signature.by, Micros(signature.at), signature.meaning),
                             "load");
    });
  }

  absl::StatusOr<int64_t> InsertBowieDickTest(const BowieDickTest& bd) override {
    static constexpr const char* kSql =
        "INSERT INTO bowie_dick_tests (sterilizer_id, day, result, operator, at) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id";
    return tx_->Run(
        "InsertBowieDickTest", [&](pqxx::transaction_base& t) -> absl::StatusOr<int64_t> {
          const pqxx::result rows = t.exec_params(
              kSql, bd.sterilizer_id, absl::FormatCivilTime(bd.day),
              std::string(IndicatorResultName(bd.result)), bd.operator_name, Micros(bd.at));
          return Int(rows.at(0), 0);
        });
  }

  absl::Status RecordItemUse(const ItemUse& use) override {
    static constexpr const char* kSql =
        "INSERT INTO item_uses (item_id, treatment_id, load_id, at, by) "
        "VALUES ($1, $2, $3, $4, $5)";
    return tx_->Run("RecordItemUse", [&](pqxx::transaction_base& t) -> absl::Status {
      t.exec_params(kSql, use.item_id, use.treatment_id, use.load_id, Micros(use.at), use.by);
      return absl::OkStatus();
    });
  }

 private:
  Tx* const tx_;
};

}  // namespace

std::unique_ptr<SterilizationWrites> NewSterilizationRepository(Tx* tx) {
  return std::make_unique<PgSterilization>(tx);
}

}  // namespace steritrack::pg
