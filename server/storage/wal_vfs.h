// A SQLite VFS that gathers the writes SQLite makes to a write-ahead log into fewer system calls.
//
// SQLite appends a WAL frame as two writes, its 24-byte header and then its page, so a commit of
// N pages is 2N pwrite calls, most of them straddling two pages of the kernel's cache. On the write
// lane these were 12.7% of its time at 64 opens in flight (perf, 12-04; tests/bench/RESULTS.md).
// This VFS is the default (unix) one, except that a file SQLite opens as a WAL keeps the writes
// that append to the log one after another in a buffer (at most kBufferBytes) and writes them with
// one call. What reaches the file is what SQLite wrote, in the order it wrote it, and nothing is
// held across anything that could look at the file:
// - the buffer is written out before every other operation on the file (read, sync, truncate,
//   size, file control, close) and before a write that does not follow it;
// - and right after the page of a commit frame (a frame header whose "database size after
//   commit" field is not zero), so a commit's frames are in the file before SQLite publishes them
//   to other connections in the WAL index, whatever `synchronous` is;
// - what SQLite writes after that page and before the next transaction's first frame (the
//   frames' checksums it rewrites, the padding of a last sector) and any write below the end of
//   the log (a page rewritten in place) goes straight to the file, never held.
// When held writes cannot be written out, the operation that wrote them out fails (the commit's
// write or sync in the usual case; an I/O error, never "disk full", from any other operation, so
// that SQLite rolls the whole transaction back). Their range is remembered as lost: reading it,
// syncing, or writing past it fails until SQLite writes from there again, so nothing can be
// committed without them (a checkpoint in between fails too, and leaves the log as it is).
// A 24-byte write counts as a frame header only where a frame starts, by the page size the log's
// header gives (with psow=0, SQLite splits a padding frame at a sector boundary, and a 24-byte
// slice of its page must not pass for a header). SQLite's reading the log's header at offset 0 (to
// recover the log from the file) ends the lost state, and only reads of the lost range fail.
//
// Every other file (the database, its journals, temporary files) goes straight to the unix VFS.
// Registered under kName, never as the default; the SQLite store opens its writer connection with
// it (a path that names a VFS of its own in a URI keeps that one). Thread-safe to register; each
// file is used by one connection at a time, as SQLite does.
#ifndef STERITRACK_SERVER_STORAGE_WAL_VFS_H_
#define STERITRACK_SERVER_STORAGE_WAL_VFS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace steritrack::wal_vfs {

inline constexpr char kName[] = "steritrack-wal";
// 124 KiB: 30 frames of 4 KiB pages, a batch of about 15 opens; a longer run of writes is written
// out each time the buffer fills. The unix VFS writes at most 128 KiB - 1 bytes a call (it masks
// the length with 0x1ffff: a longer write comes back short, as SQLITE_FULL).
inline constexpr size_t kBufferBytes = 124 * 1024;
static_assert(kBufferBytes <= 0x1ffff);

// Registers the VFS as kName over the process's default VFS at the first call (later calls do
// nothing).
absl::Status Register();

// Registers one more instance, `name`, over the registered VFS `base` (the I/O-fault tests put it
// over their failing disk); nothing when `name` is registered already. `name` must outlive the
// process's use of SQLite (a string literal).
absl::Status RegisterOver(const char* base, const char* name);

// What went through the VFS's WAL files since the process started (all connections).
struct Counts {
  int64_t writes_in = 0;   // xWrite calls SQLite made on WAL files
  int64_t writes_out = 0;  // write calls passed to the unix VFS for them
  int64_t commits = 0;     // commit frames seen (each written out at once)
};
Counts GetCounts();

}  // namespace steritrack::wal_vfs

#endif  // STERITRACK_SERVER_STORAGE_WAL_VFS_H_
