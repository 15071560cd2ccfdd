#include "server/storage/move_to_pg.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string_view>

#include "server/storage/pg.h"
#include "server/storage/pg_store.h"
#include "server/storage/sqlite.h"
#include "server/storage/sqlite_store.h"
#include "steritrack/error.h"
#include "steritrack/site.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

// One prepared statement of dynamic SQL on the source, finalized when it goes.
class SourceQuery {
 public:
  static absl::StatusOr<std::unique_ptr<SourceQuery>> Prepare(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
    if (rc != SQLITE_OK) return sqlite::ToStatus(rc, db, sql);
    return std::unique_ptr<SourceQuery>(new SourceQuery(db, stmt));
  }
  ~SourceQuery() { sqlite3_finalize(stmt_); }
  SourceQuery(const SourceQuery&) = delete;
  SourceQuery& operator=(const SourceQuery&) = delete;

  absl::StatusOr<bool> Step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return sqlite::ToStatus(rc, db_, "read the SQLite database");
  }
  sqlite3_stmt* raw() { return stmt_; }

 private:
  SourceQuery(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// A BYTEA value in PostgreSQL's hex input form: \x and two hex digits per byte.
std::string HexBytes(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

// Column `i` of the current row of `stmt` as a PostgreSQL input value (nullopt: NULL), for a
// BYTEA column or another.
std::optional<std::string> Field(sqlite3_stmt* stmt, int i, bool bytea) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_NULL:
      return std::nullopt;
    case SQLITE_INTEGER:
      if (!bytea) return std::to_string(sqlite3_column_int64(stmt, i));
      break;
    case SQLITE_FLOAT:
      if (!bytea) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", sqlite3_column_double(stmt, i));
        return std::string(buf);
      }
      break;
    default:
      break;
  }
  const void* data = sqlite3_column_blob(stmt, i);
  const int size = sqlite3_column_bytes(stmt, i);
  std::string value(data == nullptr ? "" : static_cast<const char*>(data),
                    static_cast<size_t>(size));
  return bytea ? HexBytes(value) : value;
}

absl::StatusOr<int64_t> SourceInt(sqlite3* db, const std::string& sql) {
  ASSIGN_OR_RETURN(std::unique_ptr<SourceQuery> q, SourceQuery::Prepare(db, sql));
  ASSIGN_OR_RETURN(bool row, q->Step());
  return row ? sqlite3_column_int64(q->raw(), 0) : 0;
}

absl::StatusOr<std::set<std::string>> SourceColumns(sqlite3* db, const std::string& table) {
  ASSIGN_OR_RETURN(std::unique_ptr<SourceQuery> q,
                   SourceQuery::Prepare(db, StrCat("PRAGMA table_info(\"", table, "\")")));
  std::set<std::string> columns;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) break;
    columns.insert(reinterpret_cast<const char*>(sqlite3_column_text(q->raw(), 1)));
  }
  return columns;
}

// The tables in an order that puts every table after those its foreign keys reference.
absl::StatusOr<std::vector<std::string>> ParentsFirst(
    const std::vector<std::string>& tables,
    const std::multimap<std::string, std::string>& references) {
  std::vector<std::string> order;
  std::set<std::string> placed;
  while (order.size() < tables.size()) {
    bool progress = false;
    for (const std::string& table : tables) {
      if (placed.contains(table)) continue;
      bool ready = true;
      auto [first, last] = references.equal_range(table);
      for (auto it = first; it != last; ++it) {
        ready = ready && (it->second == table || placed.contains(it->second));
      }
      if (!ready) continue;
      order.push_back(table);
      placed.insert(table);
      progress = true;
    }
    if (!progress) return absl::InternalError("the site's foreign keys form a cycle");
  }
  return order;
}

absl::Status MoveLocked(const MoveToPgOptions& options, sqlite3* source, MoveToPgResult* result) {
  pqxx::connection conn(options.pg_url);
  pqxx::work w(conn);
  const std::string schema = PgSchemaOfSite(options.site);
  // A new site is created in this same transaction: no server sees it until it holds everything.
  w.exec_params("SELECT pg_advisory_xact_lock($1)", pg::kMigrationLock);
  const bool existed =
      !w.exec_params("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema).empty();
  std::vector<std::string> migrated;
  RETURN_IF_ERROR(pg::MigrateSiteIn(w, options.site, &migrated));
  if (!existed && options.notice) options.notice(StrCat("creating site ", options.site));
  w.exec("SET LOCAL search_path TO " + w.quote_name(schema));
  // The site's writers wait (a server already serving it sees it whole or not at all).
  w.exec_params("SELECT pg_advisory_xact_lock($1)", PgWriterLockOfSite(options.site));

  std::vector<std::string> tables;
  for (const pqxx::row& row :
       w.exec_params("SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
                     "AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' "
                     "ORDER BY table_name",
                     schema)) {
    tables.push_back(row[0].as<std::string>());
  }
  // Refuses a site that holds records. The audit trail's head and checkpoint are bookkeeping
  // rows (a new site may have them), not records.
  for (const std::string& table : tables) {
    if (table == "audit_head" || table == "audit_checkpoint") continue;
    if (!w.exec("SELECT 1 FROM " + w.quote_name(table) + " LIMIT 1").empty()) {
      return MakeError(absl::StatusCode::kAlreadyExists,
                       StrCat("site ", options.site, " already holds records (table ", table,
                              "): a clinic moves into a new or empty site only"),
                       "SITE_EXISTS", {{"site", options.site}, {"table", table}});
    }
  }
  std::multimap<std::string, std::string> references;
  for (const pqxx::row& row : w.exec_params(
           "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c "
           "JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.contype = 'f' AND n.nspname = $1",
           schema)) {
    references.emplace(row[0].as<std::string>(), row[1].as<std::string>());
  }
  ASSIGN_OR_RETURN(std::vector<std::string> order, ParentsFirst(tables, references));
  // Every table of the clinic's has its place in the site: none is left behind.
  {
    ASSIGN_OR_RETURN(std::unique_ptr<SourceQuery> q,
                     SourceQuery::Prepare(source,
                                          "SELECT name FROM sqlite_master WHERE type = 'table' "
                                          "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                                          "AND name <> 'schema_migrations'"));
    const std::set<std::string> known(tables.begin(), tables.end());
    while (true) {
      ASSIGN_OR_RETURN(bool row, q->Step());
      if (!row) break;
      const std::string name = reinterpret_cast<const char*>(sqlite3_column_text(q->raw(), 0));
      if (!known.contains(name)) {
        return absl::FailedPreconditionError(
            StrCat("the SQLite database has table ", name, ", which this build's schema has not"));
      }
    }
  }

  // The guards refuse rewriting history, which is what a move does: off for the copy only.
  for (const std::string& table : tables) {
    w.exec("ALTER TABLE " + w.quote_name(table) + " DISABLE TRIGGER USER");
    w.exec("DELETE FROM " + w.quote_name(table));
  }
  for (const std::string& table : order) {
    ASSIGN_OR_RETURN(std::set<std::string> source_columns, SourceColumns(source, table));
    if (source_columns.empty()) {
      return absl::FailedPreconditionError(
          StrCat("the SQLite database has no table ", table, ", which this build's has"));
    }
    // Each target column, in the target's order: read from the source's column of the same name
    // (as bytes for BYTEA), or a value the source keeps elsewhere.
    struct Target {
      int source = -1;  // the column's index in the SELECT below; -1: `fixed`
      bool bytea = false;
      std::optional<std::string> fixed;
    };
    std::vector<std::string> columns;
    std::vector<Target> targets;
    std::string select;
    int selected = 0;
    for (const pqxx::row& row :
         w.exec_params("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                       schema, table)) {
      const std::string column = row[0].as<std::string>();
      columns.push_back(column);
      if (!source_columns.contains(column)) {
        // SQLite keeps the highest audit seq ever issued as its AUTOINCREMENT counter.
        if (table == "audit_head" && column == "issued") {
          ASSIGN_OR_RETURN(int64_t issued,
                           SourceInt(source,
                                     "SELECT coalesce((SELECT seq FROM sqlite_sequence "
                                     "WHERE name = 'events'), 0)"));
          targets.push_back({.fixed = std::to_string(issued)});
          continue;
        }
        return absl::FailedPreconditionError(
            StrCat("the SQLite table ", table, " has no column ", column));
      }
      source_columns.erase(column);
      targets.push_back({.source = selected++, .bytea = row[1].as<std::string>() == "bytea"});
      select += StrCat(select.empty() ? "" : ", ", "\"", column, "\"");
    }
    // Nothing of the clinic's may be left behind: a column this build does not know refuses.
    if (!source_columns.empty()) {
      return absl::FailedPreconditionError(StrCat("the SQLite table ", table, " has column ",
                                                  *source_columns.begin(),
                                                  ", which this build's schema has not"));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<SourceQuery> rows,
                     SourceQuery::Prepare(
                         source, StrCat("SELECT ", select, " FROM \"", table, "\" ORDER BY 1")));
    // Multi-row INSERTs of up to kBatchRows rows, every value a parameter.
    std::string insert = StrCat("INSERT INTO ", w.quote_name(table), " (");
    for (size_t i = 0; i < columns.size(); ++i) {
      insert += StrCat(i > 0 ? ", " : "", w.quote_name(columns[i]));
    }
    insert += ") VALUES ";
    const size_t batch_rows = std::max<size_t>(1, std::min<size_t>(500, 60000 / columns.size()));
    std::vector<std::optional<std::string>> params;
    size_t batched = 0;
    auto flush = [&] {
      if (batched == 0) return;
      std::string sql = insert;
      for (size_t r = 0; r < batched; ++r) {
        sql += r > 0 ? ", (" : "(";
        for (size_t c = 0; c < columns.size(); ++c) {
          sql += StrCat(c > 0 ? ", $" : "$", r * columns.size() + c + 1);
        }
        sql += ")";
      }
      w.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
      params.clear();
      batched = 0;
    };
    int64_t copied = 0;
    while (true) {
      ASSIGN_OR_RETURN(bool row, rows->Step());
      if (!row) break;
      for (const Target& t : targets) {
        params.push_back(t.source < 0 ? t.fixed : Field(rows->raw(), t.source, t.bytea));
      }
      ++copied;
      if (++batched == batch_rows) flush();
    }
    flush();
    const int64_t there = w.exec("SELECT count(*) FROM " + w.quote_name(table))[0][0].as<int64_t>();
    if (there != copied) {
      return absl::InternalError(
          StrCat("table ", table, ": ", copied, " rows copied but ", there, " there"));
    }
    result->tables.emplace_back(table, copied);
    result->rows += copied;
    if (options.notice) options.notice(StrCat("copied ", table, ": ", copied, " rows"));
  }
  for (const std::string& table : tables) {
    w.exec("ALTER TABLE " + w.quote_name(table) + " ENABLE TRIGGER USER");
  }
  // Ids the database hands out go on after the moved ones.
  for (const pqxx::row& row :
       w.exec_params("SELECT table_name, column_name FROM information_schema.columns "
                     "WHERE table_schema = $1 AND is_identity = 'YES'",
                     schema)) {
    const std::string table = row[0].as<std::string>();
    const std::string column = row[1].as<std::string>();
    w.exec_params("SELECT setval(pg_get_serial_sequence($1, $2), m) FROM (SELECT max(" +
                      w.quote_name(column) + ") AS m FROM " + w.quote_name(table) +
                      ") AS x WHERE m IS NOT NULL",
                  w.quote_name(table), column);
  }
  const pqxx::result head = w.exec("SELECT seq FROM audit_head");
  result->audit_entries = head.empty() ? 0 : head[0][0].as<int64_t>();
  w.commit();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MoveToPgResult> MoveSqliteToPg(const MoveToPgOptions& options) {
  RETURN_IF_ERROR(CheckSiteId("--site", options.site));
  ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Connection> source,
                   sqlite::Connection::Open(options.sqlite_path, SQLITE_OPEN_READONLY));
  ASSIGN_OR_RETURN(int64_t has_versions,
                   SourceInt(source->raw(),
                             "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                             "name = 'schema_migrations'"));
  if (has_versions == 0) {
    return absl::FailedPreconditionError(
        StrCat(options.sqlite_path, " is not a steritrack database (no schema_migrations)"));
  }
  ASSIGN_OR_RETURN(
      int64_t version,
      SourceInt(source->raw(), "SELECT coalesce(max(version), 0) FROM schema_migrations"));
  if (version != SqliteSchemaVersion()) {
    return absl::FailedPreconditionError(StrCat(
        options.sqlite_path, " has schema v", version, ", this build v", SqliteSchemaVersion(),
        ": start this build's steritrackd on it once (it migrates it, keeping a backup), "
        "stop it, then move it"));
  }
  // One snapshot of the source for the whole copy.
  RETURN_IF_ERROR(source->Exec("BEGIN"));
  // Only the chain's default site holds chain-wide tokens: a clinic's own would claim every site.
  if (options.site != kDefaultSite) {
    ASSIGN_OR_RETURN(std::unique_ptr<SourceQuery> q,
                     SourceQuery::Prepare(source->raw(),
                                          "SELECT name FROM api_tokens WHERE chain_wide = 1 AND "
                                          "revoked_at IS NULL ORDER BY id LIMIT 1"));
    ASSIGN_OR_RETURN(bool found, q->Step());
    if (found) {
      const std::string name = reinterpret_cast<const char*>(sqlite3_column_text(q->raw(), 0));
      return absl::FailedPreconditionError(
          StrCat("token ", name,
                 " is chain-wide, which only the default site's tokens are: "
                 "revoke it (steritrack admin token revoke) before moving into site ",
                 options.site));
    }
  }
  // The database's own sites brought to this build's version first (as a server's start would).
  RETURN_IF_ERROR(OpenPgStore({.url = options.pg_url, .connections = 1}).status());
  MoveToPgResult result;
  try {
    RETURN_IF_ERROR(MoveLocked(options, source->raw(), &result));
  } catch (const std::exception& e) {
    return pg::ToStatus(e, "move the history");
  }
  return result;
}

}  // namespace steritrack
