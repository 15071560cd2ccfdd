// steritrack_sqlite_bench: the storage baseline. SQLite alone, none of steritrack's statements or
// rules in the loop, with the product's writer connection settings (server/storage/sqlite_store.cc:
// journal_mode=WAL, synchronous=FULL, foreign_keys=ON, busy_timeout=5000, temp_store=MEMORY, and
// the store's defaults for journal_size_limit and wal_autocheckpoint, read from
// SqliteStoreOptions), SQLite configured and its log written as the server's writer does
// (sqlite_process.h, wal_vfs.h), inserting rows shaped like steritrack's audit entries: the
// `events` table, an append-only row with actor, action, subject ids, detail, request id and its
// chain hashes, and the five indexes such an entry of the product's goes into (by lot, cartridge
// and treatment, by action and by time). Left out: the product's foreign keys from an entry to its
// lot, unit and treatment, and its no-replace trigger, which would need those tables filled.
// Prints figures; asserts nothing.
//
//   steritrack_sqlite_bench --dir DIR [--duration 10] [--batch 100] [--json out.json]
//
// The database is opened with the VFS steritrackd's writer connection uses (steritrack-wal: the
// unix VFS gathering a commit's WAL writes into one call, server/storage/wal_vfs.h); --vfs unix
// for SQLite's own.
//
// Two measurements on a fresh DIR/sqlite-bench.db: single-row commits (one BEGIN IMMEDIATE ...
// COMMIT per row, as today's server commits each request) and batched commits (--batch rows per
// commit, as group commit would), each for --duration seconds. Put DIR on the filesystem of the
// server's database: the figure is that filesystem's.
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "CLI/CLI.hpp"
#include "server/storage/sqlite_store.h"
#include "server/storage/wal_vfs.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kSchema = R"sql(
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  lot_id INTEGER,
  cartridge_id INTEGER,
  treatment_id INTEGER,
  detail TEXT NOT NULL,
  request_id TEXT NOT NULL DEFAULT '',
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX events_lot ON events (lot_id) WHERE lot_id IS NOT NULL;
CREATE INDEX events_cartridge ON events (cartridge_id) WHERE cartridge_id IS NOT NULL;
CREATE INDEX events_treatment ON events (treatment_id) WHERE treatment_id IS NOT NULL;
CREATE INDEX events_action ON events (action, seq);
CREATE INDEX events_at ON events (at, seq);
)sql";

bool Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::fprintf(stderr, "%s: %s\n", sql, error != nullptr ? error : "?");
    sqlite3_free(error);
    return false;
  }
  return true;
}

struct Result {
  int64_t commits = 0;
  int64_t rows = 0;
  double seconds = 0;
  bool ok = true;
};

// Steps a statement prepared once (BEGIN IMMEDIATE, COMMIT) and resets it, as the writer's
// Connection::ExecCached does (server/storage/sqlite.cc): no parse per commit.
bool Step(sqlite3* db, sqlite3_stmt* stmt) {
  const int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  if (rc != SQLITE_DONE) {
    std::fprintf(stderr, "%s: %s\n", sqlite3_sql(stmt), sqlite3_errmsg(db));
    return false;
  }
  return true;
}

struct Statements {
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* insert = nullptr;
  sqlite3_stmt* commit = nullptr;
};

// Commits rows `batch` at a time for `duration_s` seconds.
Result Run(sqlite3* db, const Statements& sql, int batch, double duration_s, int64_t* next_row) {
  sqlite3_stmt* insert = sql.insert;
  Result r;
  const std::string hash(64, 'a');
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(duration_s));
  while (Clock::now() < end) {
    if (!Step(db, sql.begin)) return {.ok = false};
    for (int i = 0; i < batch; ++i) {
      const int64_t n = (*next_row)++;
      const std::string request_id = "bench-" + std::to_string(n);
      const std::string detail = "opened in treatment T" + std::to_string(n % 977) + ", room 3";
      sqlite3_bind_int64(insert, 1, 1764547200000000 + n);
      sqlite3_bind_text(insert, 2, "bench-nurse", -1, SQLITE_STATIC);
      sqlite3_bind_text(insert, 3, "cartridge.opened", -1, SQLITE_STATIC);
      sqlite3_bind_int64(insert, 4, n % 50 + 1);
      sqlite3_bind_int64(insert, 5, n + 1);
      sqlite3_bind_int64(insert, 6, n % 977 + 1);
      sqlite3_bind_text(insert, 7, detail.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(insert, 8, request_id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(insert, 9, hash.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(insert, 10, hash.c_str(), -1, SQLITE_STATIC);
      if (sqlite3_step(insert) != SQLITE_DONE) {
        std::fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
        return {.ok = false};
      }
      sqlite3_reset(insert);
      ++r.rows;
    }
    if (!Step(db, sql.commit)) return {.ok = false};
    ++r.commits;
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = ".";
  double duration_s = 10;
  int batch = 100;
  std::string json;
  std::string vfs = steritrack::wal_vfs::kName;
  CLI::App app{"steritrack_sqlite_bench: SQLite commits/s with steritrack's pragmas"};
  app.add_option("--dir", dir, "directory for the database (the server database's filesystem)")
      ->capture_default_str();
  app.add_option("--duration", duration_s, "seconds per measurement")->capture_default_str();
  app.add_option("--batch", batch, "rows per commit in the batched measurement")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--vfs", vfs, "SQLite VFS: steritrack-wal (the server's writer) or unix")
      ->check(CLI::IsMember({std::string(steritrack::wal_vfs::kName), std::string("unix")}))
      ->capture_default_str();
  app.add_option("--json", json, "write the figures as one JSON object to this file");
  CLI11_PARSE(app, argc, argv);

  const std::string path = (std::filesystem::path(dir) / "sqlite-bench.db").string();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  // Opened as steritrackd opens its connections (server/storage/sqlite.cc): SQLite configured as
  // the server configures it (the VFS's registration does it first, sqlite_process.h) and without
  // a mutex per connection.
  if (absl::Status registered = steritrack::wal_vfs::Register(); !registered.ok()) {
    std::fprintf(stderr, "%s\n", std::string(registered.message()).c_str());
    return 2;
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      vfs.c_str()) != SQLITE_OK) {
    std::fprintf(stderr, "open %s: %s\n", path.c_str(), sqlite3_errmsg(db));
    return 2;
  }
  // The writer's settings after its schema (sqlite_store.cc): the log's size limit and its
  // automatic checkpoint at the store's defaults, and temporary tables in memory.
  const steritrack::SqliteStoreOptions store_defaults;
  const std::string log_settings =
      "PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = " +
      std::to_string(store_defaults.wal_size_limit_bytes) +
      "; PRAGMA wal_autocheckpoint = " + std::to_string(store_defaults.wal_autocheckpoint_pages);
  Statements sql;
  const bool set_up =
      Exec(db, "PRAGMA journal_mode = WAL") && Exec(db, "PRAGMA busy_timeout = 5000") &&
      Exec(db, "PRAGMA foreign_keys = ON") && Exec(db, "PRAGMA synchronous = FULL") &&
      Exec(db, kSchema) && Exec(db, log_settings.c_str()) &&
      sqlite3_prepare_v2(db,
                         "INSERT INTO events (at, actor, action, lot_id, cartridge_id, "
                         "treatment_id, detail, request_id, prev_hash, hash) VALUES "
                         "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                         -1, &sql.insert, nullptr) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &sql.begin, nullptr) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "COMMIT", -1, &sql.commit, nullptr) == SQLITE_OK;
  if (!set_up) return 2;

  int64_t next_row = 0;
  const Result single = Run(db, sql, 1, duration_s, &next_row);
  const Result batched = Run(db, sql, batch, duration_s, &next_row);
  for (sqlite3_stmt* stmt : {sql.begin, sql.insert, sql.commit}) sqlite3_finalize(stmt);
  sqlite3_close(db);
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  if (!single.ok || !batched.ok) return 1;

  const double single_commits = single.commits / single.seconds;
  const double batched_commits = batched.commits / batched.seconds;
  const double batched_rows = batched.rows / batched.seconds;
  std::printf(
      "sqlite WAL synchronous=FULL (VFS %s): single-row %.0f commits/s; batches of %d: %.0f "
      "commits/s = %.0f rows/s\n",
      vfs.c_str(), single_commits, batch, batched_commits, batched_rows);
  if (!json.empty()) {
    std::ofstream out(json);
    char buffer[512];
    std::snprintf(buffer, sizeof buffer,
                  "{\"vfs\": \"%s\", \"single_commits_per_s\": %.1f, \"batch\": %d, "
                  "\"batched_commits_per_s\": "
                  "%.1f, \"batched_rows_per_s\": %.1f, \"duration_s\": %.3f}\n",
                  vfs.c_str(), single_commits, batch, batched_commits, batched_rows, duration_s);
    out << buffer;
  }
  return 0;
}
