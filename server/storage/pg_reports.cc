// Period reads for reports in PostgreSQL (steritrack::ReportReads); a port of sqlite_reports.cc.
// Range scans use the report indexes.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/storage/pg_repositories.h"
#include "server/storage/pg_rows.h"

namespace steritrack::pg {
namespace {

// The keyset position to bind: a cursor before the period starts at the period.
std::pair<int64_t, int64_t> After(absl::Time from, const PeriodCursor& after) {
  if (after.at < from) return {Micros(from), 0};
  return {Micros(after.at), after.id};
}

class PgReports final : public ReportReads {
 public:
  explicit PgReports(Tx* tx) : tx_(tx) {}

  absl::StatusOr<std::vector<Treatment>> ListTreatmentsStartedBetween(absl::Time from,
                                                                      absl::Time to,
                                                                      const PeriodCursor& after,
                                                                      int limit) override {
    // (started_at, id): the row comparison is an index range on treatments_started.
    static constexpr const char* kSql =
        "SELECT " PG_TREATMENT_COLUMNS
        " FROM treatments WHERE (started_at, id) > ($1, $2) AND started_at < $3 "
        "ORDER BY started_at, id LIMIT $4";
    return tx_->Run("ListTreatmentsStartedBetween",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<Treatment>> {
                      const auto [at, id] = After(from, after);
                      return Collect<Treatment>(
                          t.exec_params(kSql, at, id, Micros(to), int64_t{limit}), ReadTreatment);
                    });
  }

  absl::StatusOr<std::vector<Cartridge>> ListCartridgesOpenedBetween(absl::Time from, absl::Time to,
                                                                     const PeriodCursor& after,
                                                                     int limit) override {
    // (u.at, u.cartridge_id): in the order of the cartridge_uses_at index.
    static const std::string kSql = StrCat(kCartridgeSelect,
                                           "WHERE (u.at, u.cartridge_id) > ($1, $2) AND u.at < $3 "
                                           "ORDER BY u.at, u.cartridge_id LIMIT $4");
    return tx_->Run("ListCartridgesOpenedBetween",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<Cartridge>> {
                      const auto [at, id] = After(from, after);
                      return Collect<Cartridge>(
                          t.exec_params(kSql, at, id, Micros(to), int64_t{limit}), ReadCartridge);
                    });
  }

  absl::StatusOr<std::vector<Load>> ListLoadsCreatedBetween(absl::Time from, absl::Time to,
                                                            const PeriodCursor& after,
                                                            int limit) override {
    static constexpr const char* kSql =
        "SELECT " PG_LOAD_COLUMNS
        " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE (l.created_at, l.id) > ($1, $2) AND l.created_at < $3 "
        "ORDER BY l.created_at, l.id LIMIT $4";
    return tx_->Run(
        "ListLoadsCreatedBetween",
        [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<Load>> {
          const auto [at, id] = After(from, after);
          std::vector<Load> loads;
          ASSIGN_OR_RETURN(
              loads,
              Collect<Load>(t.exec_params(kSql, at, id, Micros(to), int64_t{limit}), ReadLoadRow));
          for (Load& l : loads) RETURN_IF_ERROR(CompleteLoad(t, l));
          return loads;
        });
  }

  absl::StatusOr<std::vector<Event>> ListEventsBetween(absl::Time from, absl::Time to,
                                                       const PeriodCursor& after,
                                                       int limit) override {
    // (at, seq) is the events_at index's own order.
    static constexpr const char* kSql =
        "SELECT " PG_EVENT_COLUMNS
        " FROM events WHERE (at, seq) > ($1, $2) AND at < $3 ORDER BY at, seq LIMIT $4";
    return tx_->Run(
        "ListEventsBetween", [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<Event>> {
          const auto [at, seq] = After(from, after);
          return Collect<Event>(
              t.exec_params(kSql, at, seq, Micros(to), int64_t{limit}),
              [](const pqxx::row& r) -> absl::StatusOr<Event> { return ReadEventRow(r); });
        });
  }

  absl::StatusOr<std::vector<BowieDickTest>> ListBowieDickTestsBetween(
      absl::CivilDay first, absl::CivilDay last) override {
    // ISO YYYY-MM-DD text sorts as the dates do (and so does a DATE column).
    static constexpr const char* kSql =
        "SELECT id, sterilizer_id, day, result, operator, at FROM bowie_dick_tests "
        "WHERE day >= $1 AND day < $2 ORDER BY day, id";
    return tx_->Run(
        "ListBowieDickTestsBetween",
        [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<BowieDickTest>> {
          return Collect<BowieDickTest>(
              t.exec_params(kSql, absl::FormatCivilTime(first), absl::FormatCivilTime(last)),
              [](const pqxx::row& r) -> absl::StatusOr<BowieDickTest> {
                absl::CivilDay day;
                if (!absl::ParseCivilTime(Text(r, 2), &day)) {
                  return absl::DataLossError(
                      StrCat("bad Bowie-Dick test day in database: ", Text(r, 2)));
                }
                return BowieDickTest{.id = Int(r, 0),
                                     .sterilizer_id = Int(r, 1),
                                     .day = day,
                                     .result = ParseIndicator(Text(r, 3)),
                                     .operator_name = Text(r, 4),
                                     .at = FromMicros(Int(r, 5))};
              });
        });
  }

 private:
  Tx* const tx_;
};

}  // namespace

std::unique_ptr<ReportReads> NewReportRepository(Tx* tx) { return std::make_unique<PgReports>(tx); }

}  // namespace steritrack::pg
