// Reusable items, sterilisers, loads and Bowie-Dick tests in SQLite
// (steritrack::SterilizationWrites).
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/storage/sqlite_repositories.h"
#include "server/storage/sqlite_rows.h"

namespace steritrack::sqlite {
namespace {

class SqliteSterilization final : public SterilizationWrites {
 public:
  explicit SqliteSterilization(Connection* conn) : conn_(conn) {}

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
    static constexpr const char* kSql = "SELECT " ITEM_COLUMNS
                                        " FROM items WHERE id > ?1 AND (?2 = '' OR state = ?2) "
                                        "AND (?3 = 0 OR treatment_id = ?3) ORDER BY id LIMIT ?4";
    // A treatment's items from items_treatment, a state's from items_state (state, id): the
    // "parameter or column" form above cannot use either index.
    static constexpr const char* kByTreatment =
        "SELECT " ITEM_COLUMNS
        " FROM items WHERE treatment_id = ?3 AND id > ?1 AND (?2 = '' OR state = ?2) "
        "ORDER BY id LIMIT ?4";
    static constexpr const char* kByState =
        "SELECT " ITEM_COLUMNS
        " FROM items WHERE state = ?2 AND id > ?1 "
        "AND (?3 = 0 OR treatment_id = ?3) ORDER BY id LIMIT ?4";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(f.treatment_id != 0 ? kByTreatment
                                             : f.state           ? kByState
                                                                 : kSql));
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
    static constexpr const char* kSql =
        "SELECT " STERILIZER_COLUMNS " FROM sterilizers WHERE id = ?1";
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
        "SELECT " LOAD_COLUMNS
        " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE l.id = ?1";
    std::optional<Load> load;
    {
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, id);
      ASSIGN_OR_RETURN(load, First<Load>(*st, ReadLoadRow));
    }
    if (load.has_value()) RETURN_IF_ERROR(CompleteLoad(conn_, *load));
    return load;
  }

  absl::StatusOr<std::optional<Load>> FindLoadByCycle(int64_t sterilizer_id,
                                                      int64_t cycle_number) override {
    static constexpr const char* kSql =
        "SELECT " LOAD_COLUMNS
        " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE l.sterilizer_id = ?1 AND l.cycle_number = ?2";
    std::optional<Load> load;
    {
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      st->Bind(1, sterilizer_id).Bind(2, cycle_number);
      ASSIGN_OR_RETURN(load, First<Load>(*st, ReadLoadRow));
    }
    if (load.has_value()) RETURN_IF_ERROR(CompleteLoad(conn_, *load));
    return load;
  }

  absl::StatusOr<std::vector<Load>> ListLoads(const LoadFilter& f) override {
    // With a steriliser: in cycle order (look-backs walk cycles); otherwise by id.
    // One statement each, so that a steriliser's cycles come from its UNIQUE (sterilizer_id,
    // cycle_number) index in order, not from a sort of every load.
    static constexpr const char* kSql =
        "SELECT " LOAD_COLUMNS
        " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE l.id > ?1 AND ?2 = 0 AND l.cycle_number > ?3 "
        "AND (?4 = '' OR l.release_state = ?4) ORDER BY l.id LIMIT ?5";
    static constexpr const char* kBySterilizer =
        "SELECT " LOAD_COLUMNS
        " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE l.sterilizer_id = ?2 AND l.cycle_number > ?3 AND l.id > ?1 "
        "AND (?4 = '' OR l.release_state = ?4) ORDER BY l.cycle_number LIMIT ?5";
    std::vector<Load> loads;
    {
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(f.sterilizer_id != 0 ? kBySterilizer : kSql));
      st->Bind(1, f.after_id)
          .Bind(2, f.sterilizer_id)
          .Bind(3, f.after_cycle_number)
          .Bind(4, f.release_state ? ReleaseStateName(*f.release_state) : std::string_view())
          .Bind(5, int64_t{f.limit});
      ASSIGN_OR_RETURN(loads, Collect<Load>(*st, ReadLoadRow));
    }
    RETURN_IF_ERROR(CompleteLoads(conn_, loads));
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
      return BowieDickTest{.id = s.Int(0),
                           .sterilizer_id = s.Int(1),
                           .day = day,
                           .result = ParseIndicator(s.Text(3)),
                           .operator_name = s.Text(4),
                           .at = FromMicros(s.Int(5))};
    });
  }

  absl::StatusOr<std::vector<ItemUse>> ListItemUses(const ItemUseFilter& f) override {
    // One statement per leading filter, each on its index (item_uses_item, _load, _treatment):
    // "(?1 = 0 OR item_id = ?1)" would read every use ever recorded.
#define ITEM_USE_SELECT "SELECT item_id, treatment_id, load_id, at, by FROM item_uses WHERE "
#define ITEM_USE_FILTERS                                                                           \
  "(?1 = 0 OR item_id = ?1) AND (?2 = 0 OR load_id = ?2) AND (?3 = 0 OR treatment_id = ?3) ORDER " \
  "BY id"
    static constexpr const char* kAll = ITEM_USE_SELECT ITEM_USE_FILTERS;
    static constexpr const char* kByItem = ITEM_USE_SELECT "item_id = ?1 AND " ITEM_USE_FILTERS;
    static constexpr const char* kByLoad = ITEM_USE_SELECT "load_id = ?2 AND " ITEM_USE_FILTERS;
    static constexpr const char* kByTreatment =
        ITEM_USE_SELECT "treatment_id = ?3 AND " ITEM_USE_FILTERS;
#undef ITEM_USE_SELECT
#undef ITEM_USE_FILTERS
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(f.item_id != 0        ? kByItem
                                             : f.load_id != 0      ? kByLoad
                                             : f.treatment_id != 0 ? kByTreatment
                                                                   : kAll));
    st->Bind(1, f.item_id).Bind(2, f.load_id).Bind(3, f.treatment_id);
    return Collect<ItemUse>(*st, [](const Statement& s) -> absl::StatusOr<ItemUse> {
      return ItemUse{.item_id = s.Int(0),
                     .treatment_id = s.Int(1),
                     .load_id = s.Int(2),
                     .at = FromMicros(s.Int(3)),
                     .by = s.Text(4)};
    });
  }

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
    return ExpectOneChange(conn_, "item");
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
    return ExpectOneChange(conn_, "steriliser");
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
    return ExpectOneChange(conn_, "load");
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

 private:
  Connection* const conn_;
};

}  // namespace

std::unique_ptr<SterilizationWrites> NewSterilizationRepository(Connection* conn) {
  return std::make_unique<SqliteSterilization>(conn);
}

}  // namespace steritrack::sqlite
