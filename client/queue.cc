#include "client/queue.h"

#include <sys/stat.h>

#include <cstdlib>
#include <ctime>

namespace steritrack::cli {
namespace {

constexpr const char* kSchema = R"sql(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS queued_writes (
  id INTEGER PRIMARY KEY,
  method TEXT NOT NULL,
  request BLOB NOT NULL,
  request_id TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL,
  queued_at INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'SENT', 'REFUSED')),
  outcome TEXT NOT NULL DEFAULT '',
  done_at INTEGER
);
)sql";

void MakeParentDirs(const std::string& path) {
  for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    mkdir(path.substr(0, pos).c_str(), 0700);  // existing directories are fine
  }
}

std::string Column(sqlite3_stmt* st, int col) {
  const void* blob = sqlite3_column_blob(st, col);
  int n = sqlite3_column_bytes(st, col);
  return blob == nullptr ? std::string() : std::string(static_cast<const char*>(blob), n);
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

std::unique_ptr<OfflineQueue> OfflineQueue::Open(const std::string& path, std::string* error) {
  MakeParentDirs(path);
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    *error = "cannot open offline queue " + path + ": " + sqlite3_errmsg(db);
    sqlite3_close_v2(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 5000);
  char* msg = nullptr;
  if (sqlite3_exec(db, kSchema, nullptr, nullptr, &msg) != SQLITE_OK) {
    *error = "cannot prepare offline queue " + path + ": " + (msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close_v2(db);
    return nullptr;
  }
  return std::unique_ptr<OfflineQueue>(new OfflineQueue(db, path));
}

OfflineQueue::~OfflineQueue() { sqlite3_close_v2(db_); }

bool OfflineQueue::Enqueue(const QueuedWrite& w, std::string* error) {
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_,
                     "INSERT INTO queued_writes (method, request, request_id, description, "
                     "queued_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (request_id) DO NOTHING",
                     -1, &st, nullptr);
  sqlite3_bind_text(st, 1, w.method.data(), static_cast<int>(w.method.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 2, w.request.data(), static_cast<int>(w.request.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, w.request_id.data(), static_cast<int>(w.request_id.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, w.description.data(), static_cast<int>(w.description.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 5, static_cast<int64_t>(std::time(nullptr)));
  const int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    *error = std::string("cannot store in offline queue: ") + sqlite3_errmsg(db_);
    return false;
  }
  return true;
}

std::vector<QueuedWrite> OfflineQueue::Pending() {
  std::vector<QueuedWrite> out;
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_,
                     "SELECT id, method, request, request_id, description, queued_at, state, "
                     "outcome FROM queued_writes WHERE state = 'PENDING' ORDER BY id",
                     -1, &st, nullptr);
  while (sqlite3_step(st) == SQLITE_ROW) {
    out.push_back(QueuedWrite{.id = sqlite3_column_int64(st, 0),
                              .method = Column(st, 1),
                              .request = Column(st, 2),
                              .request_id = Column(st, 3),
                              .description = Column(st, 4),
                              .queued_at = sqlite3_column_int64(st, 5),
                              .state = Column(st, 6),
                              .outcome = Column(st, 7)});
  }
  sqlite3_finalize(st);
  return out;
}

int64_t OfflineQueue::PendingCount() {
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT count(*) FROM queued_writes WHERE state = 'PENDING'", -1, &st,
                     nullptr);
  int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return n;
}

void OfflineQueue::SetState(int64_t id, const char* state, const std::string& outcome) {
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_,
                     "UPDATE queued_writes SET state = ?2, outcome = ?3, done_at = ?4 "
                     "WHERE id = ?1",
                     -1, &st, nullptr);
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, outcome.data(), static_cast<int>(outcome.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 4, static_cast<int64_t>(std::time(nullptr)));
  sqlite3_step(st);
  sqlite3_finalize(st);
}

void OfflineQueue::MarkSent(int64_t id, const std::string& outcome) { SetState(id, "SENT", outcome); }
void OfflineQueue::MarkRefused(int64_t id, const std::string& outcome) {
  SetState(id, "REFUSED", outcome);
}

}  // namespace steritrack::cli
