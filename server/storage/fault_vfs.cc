#include "server/storage/fault_vfs.h"

#include <sqlite3.h>

#include <atomic>

#include "server/storage/vfs_shim.h"
#include "server/storage/wal_vfs.h"
#include "steritrack/strings.h"

namespace steritrack::fault_vfs {
namespace {

// What is armed: kNone, or a Fault's value + 1.
constexpr int kNone = 0;
std::atomic<int> armed{kNone};
// Operations of the armed kind still let through; the fault fires when this goes below zero.
std::atomic<int64_t> budget{0};
std::atomic<int64_t> writes{0};
std::atomic<int64_t> syncs{0};
std::atomic<int64_t> injected{0};

// Whether this operation, of a kind `fault` fails, is the one (or after the one) to fail.
bool Fires(Fault fault) {
  if (armed.load() != static_cast<int>(fault) + 1) return false;
  if (budget.fetch_sub(1) > 0) return false;
  injected.fetch_add(1);
  return true;
}

int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 offset) {
  writes.fetch_add(1);
  if (Fires(Fault::kWriteError)) return SQLITE_IOERR_WRITE;
  if (Fires(Fault::kDiskFull)) return SQLITE_FULL;
  return vfs_shim::pass::Write(f, buf, n, offset);
}
int Sync(sqlite3_file* f, int flags) {
  syncs.fetch_add(1);
  if (Fires(Fault::kSyncError)) return SQLITE_IOERR_FSYNC;
  return vfs_shim::pass::Sync(f, flags);
}

sqlite3_io_methods MethodsFor(int version) {
  sqlite3_io_methods m = vfs_shim::PassThroughMethods(version);
  m.xWrite = Write;
  m.xSync = Sync;
  return m;
}
const sqlite3_io_methods kMethods[] = {MethodsFor(1), MethodsFor(2), MethodsFor(3)};

// Our file (vfs_shim.h): the default VFS's file follows it in the same allocation.
int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  auto* ours = reinterpret_cast<vfs_shim::ShimFile*>(file);
  ours->real = reinterpret_cast<sqlite3_file*>(ours + 1);
  return vfs_shim::OpenReal(vfs, name, *ours, flags, out_flags, kMethods);
}

}  // namespace

absl::Status Register() {
  // Over the default VFS found at the first call.
  static const int rc =
      vfs_shim::Register(nullptr, kName, static_cast<int>(sizeof(vfs_shim::ShimFile)), Open);
  if (rc != SQLITE_OK) {
    return absl::InternalError(StrCat("register the ", kName, " VFS: ", sqlite3_errstr(rc)));
  }
  return wal_vfs::RegisterOver(kName, kWalName);
}

std::string UriFor(const std::string& path) { return StrCat("file:", path, "?vfs=", kWalName); }

void Arm(Fault fault, int64_t after) {
  armed.store(kNone);
  budget.store(after);
  armed.store(static_cast<int>(fault) + 1);
}

void Disarm() { armed.store(kNone); }

Counts GetCounts() {
  return Counts{.writes = writes.load(), .syncs = syncs.load(), .injected = injected.load()};
}

}  // namespace steritrack::fault_vfs
