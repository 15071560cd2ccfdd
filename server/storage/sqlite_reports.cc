// Period reads for reports in SQLite (steritrack::ReportReads); range scans use the report indexes.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/storage/sqlite_repositories.h"
#include "server/storage/sqlite_rows.h"

namespace steritrack::sqlite {
namespace {

// The keyset position to bind: a cursor before the period starts at the period.
std::pair<int64_t, int64_t> After(absl::Time from, const PeriodCursor& after) {
  if (after.at < from) return {Micros(from), 0};
  return {Micros(after.at), after.id};
}

class SqliteReports final : public ReportReads {
 public:
  explicit SqliteReports(Connection* conn) : conn_(conn) {}

  absl::StatusOr<std::vector<Treatment>> ListTreatmentsStartedBetween(absl::Time from,
                                                                      absl::Time to,
                                                                      const PeriodCursor& after,
                                                                      int limit) override {
    // (started_at, id) is the treatments_started index's own order (id is the rowid).
    static constexpr const char* kSql =
        "SELECT id, room, clinician, client_ref, started_at, started_by, ended_at, ended_by "
        "FROM treatments WHERE (started_at, id) > (?1, ?2) AND started_at < ?3 "
        "ORDER BY started_at, id LIMIT ?4";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    const auto [at, id] = After(from, after);
    st->Bind(1, at).Bind(2, id).Bind(3, Micros(to)).Bind(4, int64_t{limit});
    return Collect<Treatment>(*st, ReadTreatment);
  }

  absl::StatusOr<std::vector<Cartridge>> ListCartridgesOpenedBetween(absl::Time from, absl::Time to,
                                                                     const PeriodCursor& after,
                                                                     int limit) override {
    // (u.at, u.cartridge_id) is the cartridge_uses_at index's own order.
    static const std::string kSql = StrCat(kCartridgeSelect,
                                           "WHERE (u.at, u.cartridge_id) > (?1, ?2) AND u.at < ?3 "
                                           "ORDER BY u.at, u.cartridge_id LIMIT ?4");
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql.c_str()));
    const auto [at, id] = After(from, after);
    st->Bind(1, at).Bind(2, id).Bind(3, Micros(to)).Bind(4, int64_t{limit});
    return Collect<Cartridge>(*st, ReadCartridge);
  }

  absl::StatusOr<std::vector<Load>> ListLoadsCreatedBetween(absl::Time from, absl::Time to,
                                                            const PeriodCursor& after,
                                                            int limit) override {
    static constexpr const char* kSql =
        "SELECT " LOAD_COLUMNS
        " FROM loads l JOIN sterilizers s ON s.id = l.sterilizer_id "
        "WHERE (l.created_at, l.id) > (?1, ?2) AND l.created_at < ?3 "
        "ORDER BY l.created_at, l.id LIMIT ?4";
    std::vector<Load> loads;
    {
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
      const auto [at, id] = After(from, after);
      st->Bind(1, at).Bind(2, id).Bind(3, Micros(to)).Bind(4, int64_t{limit});
      ASSIGN_OR_RETURN(loads, Collect<Load>(*st, ReadLoadRow));
    }
    RETURN_IF_ERROR(CompleteLoads(conn_, loads));
    return loads;
  }

  absl::StatusOr<std::vector<Event>> ListEventsBetween(absl::Time from, absl::Time to,
                                                       const PeriodCursor& after,
                                                       int limit) override {
    // (at, seq) is the events_at index's own order.
    static constexpr const char* kSql =
        "SELECT " EVENT_COLUMNS
        " FROM events WHERE (at, seq) > (?1, ?2) AND at < ?3 ORDER BY at, seq LIMIT ?4";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    const auto [at, seq] = After(from, after);
    st->Bind(1, at).Bind(2, seq).Bind(3, Micros(to)).Bind(4, int64_t{limit});
    return Collect<Event>(
        *st, [](const Statement& s) -> absl::StatusOr<Event> { return ReadEventRow(s); });
  }

  absl::StatusOr<std::vector<BowieDickTest>> ListBowieDickTestsBetween(
      absl::CivilDay first, absl::CivilDay last) override {
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
      return BowieDickTest{.id = s.Int(0),
                           .sterilizer_id = s.Int(1),
                           .day = day,
                           .result = ParseIndicator(s.Text(3)),
                           .operator_name = s.Text(4),
                           .at = FromMicros(s.Int(5))};
    });
  }

 private:
  Connection* const conn_;
};

}  // namespace

std::unique_ptr<ReportReads> NewReportRepository(Connection* conn) {
  return std::make_unique<SqliteReports>(conn);
}

}  // namespace steritrack::sqlite
