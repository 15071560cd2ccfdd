// Fuzz target: the CLI's offline-queue reader (client/queue.cc) on damaged or hostile queue files.
// A small valid queue is written once through OfflineQueue; each input either is a whole file of
// its own (first byte 0xff: the rest of the input is the file) or is a list of changes applied to a
// fresh copy of the valid one: a column of an entry set to fuzzer bytes, a number, NULL or a value
// far larger than the queue's bounds, an entry inserted or deleted, the table replaced by one of
// another shape, or bytes of the file flipped. Then the reader runs as `steritrack sync` runs it:
// Open, Pending, each request parsed, MarkSent or MarkRefused, PendingCount.
// Oracle: every answer is a status or a value, never a crash; Pending returns at most `limit`
// entries, in rising id order, all within the bounds (kMaxQueuedRequestBytes,
// kMaxQueuedTextBytes) and PENDING; without flipped bytes, marking a returned entry takes it out of
// PendingCount.
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "client/queue.h"
#include "steritrack/v1/treatment.pb.h"
#include "tests/fuzz/fuzz_check.h"

namespace steritrack::cli {
namespace {

struct Fixture {
  std::string dir;
  std::string original;
  std::string work;
};

const Fixture& GetFixture() {
  static const Fixture* const fixture = [] {
    auto* f = new Fixture;
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                          "/steritrack-queue-fuzz.XXXXXX";
    FUZZ_CHECK(mkdtemp(pattern.data()) != nullptr, "cannot create %s", pattern.c_str());
    f->dir = pattern;
    f->original = f->dir + "/original.db";
    f->work = f->dir + "/work.db";
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(GetFixture().dir, ignored);
    });
    absl::StatusOr<std::unique_ptr<OfflineQueue>> queue = OfflineQueue::Open(f->original);
    FUZZ_CHECK(queue.ok(), "%s", queue.status().ToString().c_str());
    for (int i = 1; i <= 4; ++i) {
      v1::DisposeCartridgeRequest dispose;
      dispose.set_barcode("(01)09506000134352(17)271231(10)LOT-A(21)S" + std::to_string(i));
      dispose.set_container_id("SHARPS-7");
      dispose.set_request_id("rq-dispose-" + std::to_string(i));
      FUZZ_CHECK((*queue)
                     ->Enqueue({.method = "DisposeCartridge",
                                .request = dispose.SerializeAsString(),
                                .request_id = dispose.request_id(),
                                .description = "disposal of S" + std::to_string(i)})
                     .ok(),
                 "enqueue");
    }
    v1::EndTreatmentRequest end;
    end.set_id("18");
    end.set_request_id("rq-end-18");
    FUZZ_CHECK((*queue)
                   ->Enqueue({.method = "EndTreatment",
                              .request = end.SerializeAsString(),
                              .request_id = end.request_id(),
                              .description = "end of treatment 18"})
                   .ok(),
               "enqueue");
    FUZZ_CHECK((*queue)->MarkSent(1, "disposed S1").ok(), "mark");
    return f;
  }();  // the queue closes here: the WAL is checkpointed into the file
  return *fixture;
}

// Reads the input a byte at a time; past the end, zeros.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Next() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::string Take(size_t n) {
    std::string out;
    while (n-- > 0 && !empty()) out.push_back(static_cast<char>(Next()));
    return out;
  }
  std::string Rest() { return Take(size_ - pos_); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

constexpr const char* kColumns[] = {"id",    "method",  "request",   "request_id", "description",
                                    "state", "outcome", "queued_at", "done_at"};
constexpr int kNumColumns = sizeof(kColumns) / sizeof(kColumns[0]);

// Tables of another shape than the CLI's, as an older or foreign file might hold.
constexpr const char* kOtherShapes[] = {
    "DROP TABLE queued_writes; CREATE TABLE queued_writes (id INTEGER PRIMARY KEY, method, "
    "request, request_id, description, queued_at, state, outcome, done_at); INSERT INTO "
    "queued_writes VALUES (1, 'DisposeCartridge', x'0a', 'r', 'd', 0, 'PENDING', '', NULL)",
    "DROP TABLE queued_writes; CREATE TABLE queued_writes (id TEXT, method BLOB)",
    "DROP TABLE queued_writes; CREATE VIEW queued_writes AS SELECT 1 AS id, 2 AS method, 3 AS "
    "request, 4 AS request_id, 5 AS description, 6 AS queued_at, 'PENDING' AS state, 8 AS "
    "outcome, 9 AS done_at",
    "ALTER TABLE queued_writes RENAME TO old_writes",
    "DROP TABLE queued_writes; CREATE TABLE queued_writes (id INTEGER PRIMARY KEY, method TEXT, "
    "request BLOB, request_id TEXT, description TEXT, queued_at INTEGER, state TEXT, outcome "
    "TEXT, done_at INTEGER); CREATE TRIGGER no_updates BEFORE UPDATE ON queued_writes BEGIN "
    "SELECT RAISE(ABORT, 'read only'); END",
};
constexpr int kNumOtherShapes = sizeof(kOtherShapes) / sizeof(kOtherShapes[0]);

// Binds one fuzzer value: an integer, text or a blob of fuzzer bytes, NULL, or a zeroblob larger
// than any bound.
void BindValue(sqlite3_stmt* st, int index, Bytes& in) {
  switch (in.Next() % 5) {
    case 0: {
      int64_t v = 0;
      for (int i = 0; i < 8; ++i) v = (v << 8) | in.Next();
      sqlite3_bind_int64(st, index, in.Next() % 2 == 0 ? v % 8 : v);
      return;
    }
    case 1: {
      const std::string value = in.Take(in.Next() % 32);
      sqlite3_bind_text(st, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
      return;
    }
    case 2: {
      const std::string value = in.Take(in.Next() % 32);
      sqlite3_bind_blob(st, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
      return;
    }
    case 3:
      sqlite3_bind_null(st, index);
      return;
    default: {
      // Around the bounds: just under, at and past 64 KiB, or far past.
      static constexpr int kSizes[] = {65535, 65536, 65537, 300000};
      sqlite3_bind_zeroblob(st, index, kSizes[in.Next() % 4]);
      return;
    }
  }
}

void Run(sqlite3* db, const std::string& sql, Bytes& in, int values) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    sqlite3_finalize(st);
    return;
  }
  for (int i = 1; i <= values; ++i) BindValue(st, i, in);
  sqlite3_step(st);  // a refusal (a constraint, a type) just means the change does not happen
  sqlite3_finalize(st);
}

// Applies the input's changes to `path`; returns the byte flips to apply once it is closed.
std::vector<std::pair<size_t, uint8_t>> Change(const std::string& path, Bytes& in) {
  std::vector<std::pair<size_t, uint8_t>> flips;
  sqlite3* db = nullptr;
  FUZZ_CHECK(sqlite3_open(path.c_str(), &db) == SQLITE_OK, "open %s", path.c_str());
  for (int ops = 0; ops < 8 && !in.empty(); ++ops) {
    const uint8_t op = in.Next() % 6;
    const int64_t id = in.Next() % 8;  // 0 and past the end too
    const std::string column = kColumns[in.Next() % kNumColumns];
    switch (op) {
      case 0:
        Run(db, "UPDATE queued_writes SET " + column + " = ?1 WHERE id = " + std::to_string(id), in,
            1);
        break;
      case 1:
        Run(db,
            "INSERT INTO queued_writes (method, request, request_id, description, queued_at, "
            "state) VALUES (?1, ?2, ?3, ?4, ?5, 'PENDING')",
            in, 5);
        break;
      case 2:
        sqlite3_exec(db, ("DELETE FROM queued_writes WHERE id = " + std::to_string(id)).c_str(),
                     nullptr, nullptr, nullptr);
        break;
      case 3:
        sqlite3_exec(db, kOtherShapes[in.Next() % kNumOtherShapes], nullptr, nullptr, nullptr);
        break;
      case 4: {
        size_t offset = 0;
        for (int i = 0; i < 3; ++i) offset = (offset << 8) | in.Next();
        const uint8_t mask = in.Next();
        flips.emplace_back(offset, mask == 0 ? uint8_t{1} : mask);
        break;
      }
      case 5:  // a state the CLI never writes, or PENDING again
        Run(db, "UPDATE queued_writes SET state = ?1 WHERE id = " + std::to_string(id), in, 1);
        break;
    }
  }
  sqlite3_close(db);
  return flips;
}

void Flip(const std::string& path, const std::vector<std::pair<size_t, uint8_t>>& flips) {
  if (flips.empty()) return;
  const auto size = static_cast<size_t>(std::filesystem::file_size(path));
  if (size == 0) return;
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  for (const auto& [at, mask] : flips) {
    const size_t offset = at % size;
    char c = 0;
    file.seekg(static_cast<std::streamoff>(offset));
    file.get(c);
    file.seekp(static_cast<std::streamoff>(offset));
    file.put(static_cast<char>(c ^ static_cast<char>(mask)));
  }
}

}  // namespace
}  // namespace steritrack::cli

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace steritrack::cli;
  const Fixture& f = GetFixture();
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(f.work + suffix, ignored);
  }
  Bytes in(data, size);
  bool trusted = true;  // the file's bytes are SQLite's own, not flipped
  if (size > 0 && data[0] == 0xff) {
    in.Next();
    std::ofstream(f.work, std::ios::binary) << in.Rest();
    trusted = false;
  } else {
    std::filesystem::copy_file(f.original, f.work);
    const auto flips = Change(f.work, in);
    trusted = flips.empty();
    Flip(f.work, flips);
  }
  const int64_t limit = 1 + (size > 1 ? data[size - 1] % 6 : 5);

  absl::StatusOr<std::unique_ptr<OfflineQueue>> queue = OfflineQueue::Open(f.work);
  if (!queue.ok()) return 0;  // a refusal to open, naming the file, is an answer
  absl::StatusOr<std::vector<QueuedWrite>> pending = (*queue)->Pending(limit);
  absl::StatusOr<int64_t> count = (*queue)->PendingCount();
  if (!pending.ok()) return 0;
  FUZZ_CHECK(static_cast<int64_t>(pending->size()) <= limit, "%zu entries for a limit of %lld",
             pending->size(), static_cast<long long>(limit));
  int64_t previous_id = INT64_MIN;
  for (const QueuedWrite& w : *pending) {
    FUZZ_CHECK(w.id > previous_id, "entry %lld after %lld", static_cast<long long>(w.id),
               static_cast<long long>(previous_id));
    previous_id = w.id;
    FUZZ_CHECK(static_cast<int64_t>(w.request.size()) <= kMaxQueuedRequestBytes,
               "a request of %zu bytes", w.request.size());
    for (const std::string* text : {&w.method, &w.request_id, &w.description, &w.outcome}) {
      FUZZ_CHECK(static_cast<int64_t>(text->size()) <= kMaxQueuedTextBytes, "a text of %zu bytes",
                 text->size());
    }
    if (trusted) FUZZ_CHECK(w.state == "PENDING", "state '%s'", w.state.c_str());
    // As Session::Sync reads it.
    steritrack::v1::DisposeCartridgeRequest dispose;
    steritrack::v1::EndTreatmentRequest end;
    static_cast<void>(w.method == "EndTreatment" ? end.ParseFromString(w.request)
                                                 : dispose.ParseFromString(w.request));
  }
  if (pending->empty()) return 0;
  const QueuedWrite& first = pending->front();
  const absl::Status marked = size > 0 && (data[0] & 1) != 0
                                  ? (*queue)->MarkSent(first.id, "delivered")
                                  : (*queue)->MarkRefused(first.id, "refused");
  absl::StatusOr<int64_t> after = (*queue)->PendingCount();
  if (trusted && marked.ok() && count.ok() && after.ok()) {
    FUZZ_CHECK(*after == *count - 1, "pending %lld, marked one, now %lld",
               static_cast<long long>(*count), static_cast<long long>(*after));
  }
  return 0;
}
