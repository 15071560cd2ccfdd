// A read-only look at a test server's SQLite file from beside it, through the default VFS, for the
// reliability tests' invariants (what was committed, what an audit entry or a stored answer says).
// One thread at a time.
#ifndef STERITRACK_TESTS_RPC_DB_INSPECTOR_H_
#define STERITRACK_TESTS_RPC_DB_INSPECTOR_H_

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace steritrack::rpc_test {

class Inspector {
 public:
  explicit Inspector(const std::string& path) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK)
        << path;
  }
  ~Inspector() { sqlite3_close_v2(db_); }
  Inspector(const Inspector&) = delete;
  Inspector& operator=(const Inspector&) = delete;

  // Every row of every table, as text: equal before and after a write that left nothing behind.
  // (PRAGMA data_version is no such test: a write that fails at its first WAL frame after a
  // checkpoint has restarted the WAL, which changes the version though no data changed.)
  std::string Contents() {
    std::vector<std::string> tables;
    Query("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name", "",
          [&](sqlite3_stmt* st) {
            tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
          });
    std::string contents;
    for (const std::string& table : tables) {
      contents += table;
      contents += ":\n";
      const std::string sql = "SELECT * FROM \"" + table + "\"";
      Query(sql.c_str(), "", [&](sqlite3_stmt* st) {
        for (int i = 0; i < sqlite3_column_count(st); ++i) {
          const unsigned char* text = sqlite3_column_text(st, i);
          if (text != nullptr) {
            contents.append(reinterpret_cast<const char*>(text),
                            static_cast<size_t>(sqlite3_column_bytes(st, i)));
          } else {
            contents += "NULL";
          }
          contents += '|';
        }
        contents += '\n';
      });
    }
    return contents;
  }
  int64_t LastEvent() { return Int("SELECT coalesce(max(seq), 0) FROM events"); }
  int64_t StoredAnswers(const std::string& request_id) {
    return Int("SELECT count(*) FROM requests WHERE request_id = ?1", request_id);
  }
  int64_t EventsOf(const std::string& request_id) {
    return Int("SELECT count(*) FROM events WHERE request_id = ?1", request_id);
  }
  std::string IntegrityCheck() {
    std::string result;
    Query("PRAGMA integrity_check", "", [&](sqlite3_stmt* st) {
      result += reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    });
    return result;
  }

  // The first column of the first row of `sql`, with `param` bound to ?1 when not empty; -1 when
  // there is no row.
  int64_t Int(const char* sql, const std::string& param = "") {
    int64_t value = -1;
    Query(sql, param, [&](sqlite3_stmt* st) { value = sqlite3_column_int64(st, 0); });
    return value;
  }

 private:
  void Query(const char* sql, const std::string& param,
             const std::function<void(sqlite3_stmt*)>& row) {
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db_, sql, -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db_);
    if (!param.empty()) {
      sqlite3_bind_text(st, 1, param.data(), static_cast<int>(param.size()), SQLITE_TRANSIENT);
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
    EXPECT_EQ(rc, SQLITE_DONE) << sql << ": " << sqlite3_errmsg(db_);
    sqlite3_finalize(st);
  }

  sqlite3* db_ = nullptr;
};

}  // namespace steritrack::rpc_test

#endif  // STERITRACK_TESTS_RPC_DB_INSPECTOR_H_
