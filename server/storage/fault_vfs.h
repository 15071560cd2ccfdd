// A SQLite VFS for the reliability tests: the default (unix) VFS, whose files' writes or syncs fail
// on demand, as a failing disk or a full one would make them fail.
//
// Compiled only into builds with STERITRACK_FAILPOINTS (cmake -DSTERITRACK_FAILPOINTS=ON), like the
// failpoints (steritrack/failpoint.h); never into what is shipped. Registered under kName, never
// as the default: a database uses it when it is opened as a URI naming it ("file:/x.db?vfs=..."),
// which every connection of the SQLite store is (UriFor makes such a URI).
//
// Armed with a fault and a count N, the VFS lets N more operations of the fault's kind (xWrite for
// kWriteError and kDiskFull, xSync for kSyncError) through, fails the one after with
// SQLITE_IOERR_WRITE, SQLITE_FULL or SQLITE_IOERR_FSYNC, and keeps failing every such operation
// until Disarm() ("the fault clears"). Reads, locks and the WAL index are never failed: a server on
// a failing disk can still read. The state is process-wide, as a disk is. Thread-safe.
#ifndef STERITRACK_SERVER_STORAGE_FAULT_VFS_H_
#define STERITRACK_SERVER_STORAGE_FAULT_VFS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace steritrack::fault_vfs {

inline constexpr char kName[] = "steritrack-fault";
// The VFS the SQLite store's writer runs on (storage/wal_vfs.h), over this one: a commit's WAL
// writes are gathered, then reach the failing disk. Registered by Register() too.
inline constexpr char kWalName[] = "steritrack-fault-wal";

enum class Fault {
  kWriteError,  // xWrite answers SQLITE_IOERR_WRITE
  kSyncError,   // xSync answers SQLITE_IOERR_FSYNC
  kDiskFull,    // xWrite answers SQLITE_FULL
};

// Registers the VFS (once; later calls do nothing), and kWalName over it. It wraps the default VFS
// found at the first call.
absl::Status Register();

// "file:<path>?vfs=steritrack-fault-wal" (kWalName, what the store's writer would run on over
// this VFS). REQUIRES: `path` is absolute and needs no %-escapes.
std::string UriFor(const std::string& path);

// Lets `after` more operations of the fault's kind succeed, then fails every following one until
// Disarm(). Replaces whatever was armed.
void Arm(Fault fault, int64_t after);
void Disarm();

// What went through the VFS since the process started (all of its files, all connections).
struct Counts {
  int64_t writes = 0;    // xWrite calls, failed ones included
  int64_t syncs = 0;     // xSync calls, failed ones included
  int64_t injected = 0;  // operations failed on purpose
};
Counts GetCounts();

}  // namespace steritrack::fault_vfs

#endif  // STERITRACK_SERVER_STORAGE_FAULT_VFS_H_
