#include "client/queue.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <initializer_list>

namespace steritrack::cli {
namespace {

constexpr const char* kPragmas = R"sql(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
)sql";

// Created with the site column; a file from before sites gains it in Open. Both happen in one
// write transaction, so CLIs opening a new or old file at the same moment create or upgrade it
// once (each apart, the second failed on "duplicate column name").
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS queued_writes (
  id INTEGER PRIMARY KEY,
  method TEXT NOT NULL,
  request BLOB NOT NULL,
  request_id TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL,
  queued_at INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'SENT', 'REFUSED')),
  outcome TEXT NOT NULL DEFAULT '',
  done_at INTEGER,
  site TEXT NOT NULL DEFAULT ''
);
)sql";

struct StatementDeleter {
  // sqlite3_finalize repeats the code of the statement's last step, which was already checked.
  void operator()(sqlite3_stmt* st) const { static_cast<void>(sqlite3_finalize(st)); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

void MakeParentDirs(const std::string& path) {
  // Failures show up as SQLite's "unable to open database file" for the queue's path.
  for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    mkdir(path.substr(0, pos).c_str(), 0700);  // existing directories are fine
  }
}

// The first failure among several sqlite3_bind_* results (evaluated left to right).
int FirstFailure(std::initializer_list<int> codes) {
  for (int code : codes) {
    if (code != SQLITE_OK) return code;
  }
  return SQLITE_OK;
}

int BindText(sqlite3_stmt* st, int index, const std::string& text) {
  return sqlite3_bind_text(st, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

// A text or blob column. A null pointer for a non-empty value means SQLite ran out of memory.
bool Column(sqlite3_stmt* st, int col, std::string* out) {
  const void* blob = sqlite3_column_blob(st, col);
  const int n = sqlite3_column_bytes(st, col);
  if (blob == nullptr) {
    out->clear();
    return sqlite3_errcode(sqlite3_db_handle(st)) != SQLITE_NOMEM;
  }
  out->assign(static_cast<const char*>(blob), static_cast<size_t>(n));
  return true;
}

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {  // the primary code of an extended one
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;  // another process holds the file: retry later
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    default:
      return absl::StatusCode::kFailedPrecondition;  // the file must be fixed or moved away
  }
}

}  // namespace

std::string DefaultQueuePath() {
  if (const char* p = std::getenv("STERITRACK_QUEUE"); p != nullptr && *p != '\0') return p;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x != nullptr && *x != '\0') {
    return std::string(x) + "/steritrack/queue.db";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.config/steritrack/queue.db";
}

absl::StatusOr<std::unique_ptr<OfflineQueue>> OfflineQueue::Open(const std::string& path) {
  MakeParentDirs(path);
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    // On most failures SQLite still returns a handle that carries the message; not when out of
    // memory.
    const std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return absl::Status(CodeFor(rc), "cannot open offline queue " + path + ": " + message);
  }
  // From here the queue owns the handle and closes it on every return.
  std::unique_ptr<OfflineQueue> queue(new OfflineQueue(db, path));
  if (int busy = sqlite3_busy_timeout(db, 5000); busy != SQLITE_OK) {
    return queue->Error("configure", busy);
  }
  // The first statements that read the file: a file that is not a queue database fails here.
  if (int pragmas = sqlite3_exec(db, kPragmas, nullptr, nullptr, nullptr); pragmas != SQLITE_OK) {
    return queue->Error("read", pragmas);
  }
  if (int begin = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
      begin != SQLITE_OK) {
    return queue->Error("read", begin);
  }
  // Ends the transaction on every return; a rollback after a failure has nothing to report.
  struct Rollback {
    sqlite3* db;
    bool done = false;
    ~Rollback() {
      if (!done) static_cast<void>(sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr));
    }
  } rollback{db};
  if (int schema = sqlite3_exec(db, kSchema, nullptr, nullptr, nullptr); schema != SQLITE_OK) {
    return queue->Error("read", schema);
  }
  // Queues written before sites (issue 13) gain the column; their writes are for no named site.
  sqlite3_stmt* probe = nullptr;
  const int has_site =
      sqlite3_prepare_v2(db, "SELECT site FROM queued_writes LIMIT 0", -1, &probe, nullptr);
  sqlite3_finalize(probe);
  if (has_site != SQLITE_OK) {
    if (int added = sqlite3_exec(db,
                                 "ALTER TABLE queued_writes ADD COLUMN site TEXT NOT NULL "
                                 "DEFAULT ''",
                                 nullptr, nullptr, nullptr);
        added != SQLITE_OK) {
      return queue->Error("upgrade", added);
    }
  }
  if (int commit = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); commit != SQLITE_OK) {
    return queue->Error("upgrade", commit);
  }
  rollback.done = true;
  return queue;
}

OfflineQueue::~OfflineQueue() {
  // close_v2 always succeeds: with statements still open it defers the close until they finish.
  static_cast<void>(sqlite3_close_v2(db_));
}

absl::Status OfflineQueue::Error(const std::string& what, int rc) const {
  return absl::Status(CodeFor(rc),
                      "cannot " + what + " offline queue " + path_ + ": " + sqlite3_errmsg(db_));
}

absl::Status OfflineQueue::Enqueue(const QueuedWrite& w) {
  const size_t longest_text =
      std::max({w.method.size(), w.request_id.size(), w.description.size()});
  if (static_cast<int64_t>(w.request.size()) > kMaxQueuedRequestBytes ||
      static_cast<int64_t>(longest_text) > kMaxQueuedTextBytes) {
    return absl::InvalidArgumentError("cannot store in offline queue " + path_ +
                                      ": the write is larger than a queued write may be");
  }
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db_,
                              "INSERT INTO queued_writes (method, request, request_id, "
                              "description, queued_at, site) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                              "ON CONFLICT (request_id) DO NOTHING",
                              -1, &raw, nullptr);
  Statement st(raw);
  if (rc != SQLITE_OK) return Error("store in", rc);
  rc = FirstFailure({BindText(st.get(), 1, w.method),
                     sqlite3_bind_blob(st.get(), 2, w.request.data(),
                                       static_cast<int>(w.request.size()), SQLITE_TRANSIENT),
                     BindText(st.get(), 3, w.request_id), BindText(st.get(), 4, w.description),
                     sqlite3_bind_int64(st.get(), 5, static_cast<int64_t>(std::time(nullptr))),
                     BindText(st.get(), 6, w.site)});
  if (rc != SQLITE_OK) return Error("store in", rc);
  rc = sqlite3_step(st.get());
  if (rc != SQLITE_DONE) return Error("store in", rc);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<QueuedWrite>> OfflineQueue::Pending(int64_t limit) {
  sqlite3_stmt* raw = nullptr;
  // The lengths come first so that an entry too large to be one of ours is refused before its
  // value is read into memory.
  int rc = sqlite3_prepare_v2(
      db_,
      "SELECT id, length(CAST(method AS BLOB)), length(CAST(request AS BLOB)), "
      "length(CAST(request_id AS BLOB)), length(CAST(description AS BLOB)), "
      "length(CAST(state AS BLOB)), length(CAST(outcome AS BLOB)), method, request, request_id, "
      "description, queued_at, state, outcome, length(CAST(site AS BLOB)), site "
      "FROM queued_writes WHERE state = 'PENDING' "
      "ORDER BY id LIMIT ?1",
      -1, &raw, nullptr);
  Statement st(raw);
  if (rc != SQLITE_OK) return Error("read", rc);
  rc = sqlite3_bind_int64(st.get(), 1, std::max<int64_t>(limit, 0));
  if (rc != SQLITE_OK) return Error("read", rc);
  std::vector<QueuedWrite> out;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    const int64_t id = sqlite3_column_int64(st.get(), 0);
    static constexpr const char* kColumns[] = {"method",      "request", "request_id",
                                               "description", "state",   "outcome"};
    for (int i = 0; i < 6; ++i) {
      const int64_t bytes = sqlite3_column_int64(st.get(), 1 + i);
      const int64_t max = i == 1 ? kMaxQueuedRequestBytes : kMaxQueuedTextBytes;
      if (bytes > max) {
        return absl::FailedPreconditionError(
            "cannot read offline queue " + path_ + ": queued write " + std::to_string(id) +
            " has a " + kColumns[i] + " of " + std::to_string(bytes) + " bytes (at most " +
            std::to_string(max) + "): the file is damaged or not the CLI's");
      }
    }
    if (sqlite3_column_int64(st.get(), 14) > kMaxQueuedTextBytes) {
      return absl::FailedPreconditionError("cannot read offline queue " + path_ +
                                           ": queued write " + std::to_string(id) +
                                           " has an oversized site: the file is damaged or not "
                                           "the CLI's");
    }
    QueuedWrite w{.id = id, .queued_at = sqlite3_column_int64(st.get(), 11)};
    if (!Column(st.get(), 7, &w.method) || !Column(st.get(), 8, &w.request) ||
        !Column(st.get(), 9, &w.request_id) || !Column(st.get(), 10, &w.description) ||
        !Column(st.get(), 12, &w.state) || !Column(st.get(), 13, &w.outcome) ||
        !Column(st.get(), 15, &w.site)) {
      return Error("read", SQLITE_NOMEM);
    }
    out.push_back(std::move(w));
  }
  if (rc != SQLITE_DONE) return Error("read", rc);
  return out;
}

absl::StatusOr<int64_t> OfflineQueue::PendingCount() {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db_, "SELECT count(*) FROM queued_writes WHERE state = 'PENDING'", -1,
                              &raw, nullptr);
  Statement st(raw);
  if (rc != SQLITE_OK) return Error("read", rc);
  rc = sqlite3_step(st.get());
  if (rc != SQLITE_ROW) return Error("read", rc);
  return sqlite3_column_int64(st.get(), 0);
}

absl::Status OfflineQueue::SetState(int64_t id, const char* state, const std::string& outcome) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db_,
                              "UPDATE queued_writes SET state = ?2, outcome = ?3, done_at = ?4 "
                              "WHERE id = ?1",
                              -1, &raw, nullptr);
  Statement st(raw);
  if (rc != SQLITE_OK) return Error("update", rc);
  rc = FirstFailure({sqlite3_bind_int64(st.get(), 1, id),
                     sqlite3_bind_text(st.get(), 2, state, -1, SQLITE_STATIC),
                     BindText(st.get(), 3, outcome),
                     sqlite3_bind_int64(st.get(), 4, static_cast<int64_t>(std::time(nullptr)))});
  if (rc != SQLITE_OK) return Error("update", rc);
  rc = sqlite3_step(st.get());
  if (rc != SQLITE_DONE) return Error("update", rc);
  if (sqlite3_changes(db_) != 1) {
    return absl::NotFoundError("cannot update offline queue " + path_ + ": queued write " +
                               std::to_string(id) + " is not in it");
  }
  return absl::OkStatus();
}

absl::Status OfflineQueue::MarkSent(int64_t id, const std::string& outcome) {
  return SetState(id, "SENT", outcome);
}

absl::Status OfflineQueue::MarkRefused(int64_t id, const std::string& outcome) {
  return SetState(id, "REFUSED", outcome);
}

}  // namespace steritrack::cli
