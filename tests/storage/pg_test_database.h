// A fresh PostgreSQL database for a test (issue 13), in the throwaway cluster ctest starts (fixture
// "pg", tests/pg/cluster.sh) whose URL is in STERITRACK_PG_URL; dropped at the end. Without the
// URL the test fails: no suite passes by skipping PostgreSQL.
#ifndef STERITRACK_TESTS_STORAGE_PG_TEST_DATABASE_H_
#define STERITRACK_TESTS_STORAGE_PG_TEST_DATABASE_H_

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <pqxx/pqxx>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "steritrack/strings.h"

namespace steritrack {

class PgTestDatabase {
 public:
  explicit PgTestDatabase(std::string_view prefix = "pgtest") {
    const char* base = std::getenv("STERITRACK_PG_URL");
    if (base == nullptr || std::string_view(base).find("/postgres?") == std::string_view::npos) {
      ADD_FAILURE() << "STERITRACK_PG_URL is not set: ctest starts a throwaway cluster";
      return;
    }
    static std::atomic<int> next{0};
    name_ = StrCat(prefix, "_", getpid(), "_", next++);
    admin_url_ = base;
    url_ = admin_url_;
    url_.replace(url_.find("/postgres?"), 10, StrCat("/", name_, "?"));
    Exec(admin_url_, StrCat("DROP DATABASE IF EXISTS ", name_));
    Exec(admin_url_, StrCat("CREATE DATABASE ", name_));
  }
  ~PgTestDatabase() {
    if (!name_.empty())
      Exec(admin_url_, StrCat("DROP DATABASE IF EXISTS ", name_, " WITH (FORCE)"));
  }
  const std::string& url() const { return url_; }
  bool ok() const { return !name_.empty(); }

  static void Exec(const std::string& url, const std::string& sql) {
    try {
      pqxx::connection conn(url);
      pqxx::nontransaction n(conn);
      n.exec(sql);
    } catch (const std::exception& e) {
      ADD_FAILURE() << sql << ": " << e.what();
    }
  }

 private:
  std::string name_;
  std::string admin_url_;
  std::string url_;
};

}  // namespace steritrack

#endif  // STERITRACK_TESTS_STORAGE_PG_TEST_DATABASE_H_
