// Fuzz target: the audit-trail verifier (AuditService::Verify) on corrupted databases. A small
// valid database is written once through core's CartridgeService over the SQLite store; each input
// is a list of corruptions applied to a fresh copy: a column of an entry set to fuzzer bytes, one
// byte of a text column replaced, an entry deleted, the chain head rewritten (all through SQL with
// the append-only triggers dropped, as an attacker with file access would), or bytes of the file
// itself flipped. Oracle: opening and verifying answer a status or a verdict, never crash; and
// when the entries the store reads differ from the ones written, the verdict is never "intact".
#include <sqlite3.h>
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "server/core/audit_service.h"
#include "server/core/cartridge_service.h"
#include "server/storage/sqlite_store.h"
#include "steritrack/clock.h"
#include "steritrack/model.h"
#include "steritrack/store.h"
#include "steritrack/strings.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

constexpr std::string_view kGtin = "09506000134352";

class SteppingClock final : public Clock {
 public:
  absl::Time Now() const override {
    now_ += absl::Minutes(1);
    return now_;
  }

 private:
  mutable absl::Time now_ =
      absl::FromCivil(absl::CivilSecond(2026, 11, 26, 9, 0, 0), absl::UTCTimeZone());
};

std::string Unit(std::string_view serial) {
  return StrCat("(01)", kGtin, "(17)271231(10)LOT-A(21)", serial);
}

struct Fixture {
  std::string dir;
  std::string original;
  std::string work;
  std::vector<Event> entries;
};

absl::StatusOr<std::vector<Event>> ReadEntries(Store& store) {
  absl::StatusOr<std::unique_ptr<ReadTransaction>> tx = store.BeginRead();
  if (!tx.ok()) return tx.status();
  return (*tx)->audit().ListAuditEntries({.limit = 1000});
}

// The valid database every input starts from: a short clinic day, a dozen entries.
const Fixture& GetFixture() {
  static const Fixture* const fixture = [] {
    auto* f = new Fixture;
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/steritrack-audit-fuzz.XXXXXX");
    FUZZ_CHECK(mkdtemp(pattern.data()) != nullptr, "cannot create %s", pattern.c_str());
    f->dir = pattern;
    f->original = StrCat(f->dir, "/original.db");
    f->work = StrCat(f->dir, "/work.db");
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(GetFixture().dir, ignored);
    });
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore({.path = f->original});
    FUZZ_CHECK(store.ok(), "%s", store.status().ToString().c_str());
    SteppingClock clock;
    CartridgeService core({.store = store->get(), .sha256 = TestSha256(), .clock = &clock});
    const WriteContext nurse{.actor = "nurse.kim", .request_id = ""};
    const WriteContext clerk{.actor = "clerk.ana", .request_id = ""};
    FUZZ_CHECK(core.Receive({.actor = "clerk.ana", .request_id = "delivery-1"},
                            {Unit("S1"), Unit("S2"), Unit("S3")})
                   .ok(),
               "receive");
    absl::StatusOr<Treatment> t1 = core.StartTreatment(nurse, "3", "dr.lee", "client-1");
    FUZZ_CHECK(t1.ok(), "start");
    FUZZ_CHECK(core.Open(nurse, Unit("S1"), t1->id).ok(), "open");
    FUZZ_CHECK(core.Dispose(nurse, Unit("S1"), "SHARPS-7").ok(), "dispose");
    FUZZ_CHECK(core.Discard(clerk, Unit("S2"), "box crushed").ok(), "discard");
    FUZZ_CHECK(core.EndTreatment(nurse, t1->id).ok(), "end");
    FUZZ_CHECK(core.RecallLot(clerk, kGtin, "LOT-A", "supplier notice 12").ok(), "recall");
    absl::StatusOr<std::vector<Event>> entries = ReadEntries(**store);
    FUZZ_CHECK(entries.ok() && entries->size() >= 8, "entries");
    f->entries = *std::move(entries);
    return f;
  }();  // the store closes here: the WAL is checkpointed into the file
  return *fixture;
}

bool SameEvent(const Event& a, const Event& b) {
  return a.seq == b.seq && a.at == b.at && a.actor == b.actor && a.action == b.action &&
         a.lot_id == b.lot_id && a.cartridge_id == b.cartridge_id &&
         a.treatment_id == b.treatment_id && a.item_id == b.item_id && a.load_id == b.load_id &&
         a.sterilizer_id == b.sterilizer_id && a.detail == b.detail &&
         a.request_id == b.request_id && a.before == b.before && a.after == b.after &&
         a.corrects_seq == b.corrects_seq && a.prev_hash == b.prev_hash && a.hash == b.hash;
}

bool SameEntries(const std::vector<Event>& a, const std::vector<Event>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!SameEvent(a[i], b[i])) return false;
  }
  return true;
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

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

constexpr const char* kColumns[] = {
    "seq",     "at",         "actor",         "action",       "lot_id", "cartridge_id",
    "item_id", "load_id",    "sterilizer_id", "treatment_id", "detail", "before",
    "after",   "request_id", "corrects_seq",  "prev_hash",    "hash",
};
constexpr int kNumColumns = sizeof(kColumns) / sizeof(kColumns[0]);

void Exec(sqlite3* db, const std::string& sql) {
  // Refusals (a constraint, a type) are part of the game: the corruption just does not happen.
  sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
}

// Binds one fuzzer value: an integer, text (any bytes), a blob or NULL.
void BindValue(sqlite3_stmt* st, int index, Bytes& in) {
  const uint8_t kind = in.Next() % 4;
  if (kind == 0) {
    int64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | in.Next();
    sqlite3_bind_int64(st, index, in.Next() % 2 == 0 ? v % 64 : v);
    return;
  }
  if (kind == 3) {
    sqlite3_bind_null(st, index);
    return;
  }
  const std::string value = in.Take(in.Next() % 24);
  if (kind == 1) {
    sqlite3_bind_text(st, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  } else {
    sqlite3_bind_blob(st, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  }
}

void Run(sqlite3* db, const std::string& sql, Bytes& in, int values) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    sqlite3_finalize(st);
    return;
  }
  for (int i = 1; i <= values; ++i) BindValue(st, i, in);
  sqlite3_step(st);
  sqlite3_finalize(st);
}

struct FileFlip {
  size_t offset;
  uint8_t mask;
};

// Applies the input's corruptions to `path`; returns the raw byte flips for after the connection
// closed.
std::vector<FileFlip> Corrupt(const std::string& path, int64_t entries, Bytes& in) {
  std::vector<FileFlip> flips;
  sqlite3* db = nullptr;
  FUZZ_CHECK(sqlite3_open(path.c_str(), &db) == SQLITE_OK, "open %s", path.c_str());
  Exec(db,
       "PRAGMA foreign_keys = OFF; DROP TRIGGER IF EXISTS events_are_final; "
       "DROP TRIGGER IF EXISTS events_are_kept; DROP TRIGGER IF EXISTS events_no_replace; "
       "DROP TRIGGER IF EXISTS audit_head_is_kept; DROP TRIGGER IF EXISTS "
       "audit_head_moves_forward;");
  for (int ops = 0; ops < 8 && !in.empty(); ++ops) {
    const uint8_t op = in.Next() % 5;
    const int64_t seq = in.Next() % (entries + 2);  // 0 and past the end too
    const char* column = kColumns[in.Next() % kNumColumns];
    switch (op) {
      case 0:  // set a column of one entry
        Run(db, StrCat("UPDATE events SET ", column, " = ?1 WHERE seq = ", seq), in, 1);
        break;
      case 1: {  // replace one byte of a column's text
        const int at = in.Next() % 80;
        const int byte = in.Next();
        Exec(db, StrCat("UPDATE events SET ", column, " = substr(", column, ", 1, ", at,
                        ") || char(", byte == 0 ? 1 : byte, ") || substr(", column, ", ", at + 2,
                        ") WHERE seq = ", seq));
        break;
      }
      case 2:  // remove one entry
        Exec(db, StrCat("DELETE FROM events WHERE seq = ", seq));
        break;
      case 3: {  // rewrite the chain head
        static constexpr const char* kHead[] = {"seq", "hash", "issued"};
        Run(db, StrCat("UPDATE audit_head SET ", kHead[in.Next() % 3], " = ?1"), in, 1);
        break;
      }
      case 4: {  // flip bytes of the file itself
        size_t offset = 0;
        for (int i = 0; i < 3; ++i) offset = (offset << 8) | in.Next();
        const uint8_t mask = in.Next();
        flips.push_back({offset, mask == 0 ? uint8_t{1} : mask});
        break;
      }
    }
  }
  sqlite3_close(db);
  return flips;
}

void Flip(const std::string& path, const std::vector<FileFlip>& flips) {
  if (flips.empty()) return;
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  const auto size = static_cast<size_t>(std::filesystem::file_size(path));
  if (size == 0) return;
  for (const FileFlip& f : flips) {
    const size_t offset = f.offset % size;
    char c = 0;
    file.seekg(static_cast<std::streamoff>(offset));
    file.get(c);
    file.seekp(static_cast<std::streamoff>(offset));
    file.put(static_cast<char>(c ^ static_cast<char>(f.mask)));
  }
}

}  // namespace
}  // namespace steritrack

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace steritrack;
  const Fixture& f = GetFixture();
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(StrCat(f.work, suffix), ignored);
  }
  std::filesystem::copy_file(f.original, f.work);

  Bytes in(data, size);
  Flip(f.work, Corrupt(f.work, static_cast<int64_t>(f.entries.size()), in));

  absl::StatusOr<std::unique_ptr<Store>> store =
      OpenSqliteStore({.path = f.work, .readers = 1, .backup_before_migration = false});
  if (!store.ok()) return 0;  // a refusal to open is an answer
  AuditService audit({.store = store->get(), .sha256 = TestSha256()});
  absl::StatusOr<AuditChainCheck> check = audit.Verify();
  if (std::getenv("STERITRACK_FUZZ_VERBOSE") != nullptr) {
    std::fprintf(stderr, "verify: %s\n",
                 !check.ok()     ? check.status().ToString().c_str()
                 : check->intact ? "intact"
                                 : check->problem.c_str());
  }
  if (!check.ok() || !check->intact) return 0;
  absl::StatusOr<std::vector<Event>> now = ReadEntries(**store);
  if (!now.ok()) return 0;
  FUZZ_CHECK(SameEntries(*now, f.entries),
             "the chain verifies intact (%lld entries) but its entries were changed",
             static_cast<long long>(check->entries));
  return 0;
}
