#include "server/storage/wal_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "server/storage/sqlite_process.h"
#include "server/storage/vfs_shim.h"
#include "steritrack/strings.h"

namespace steritrack::wal_vfs {
namespace {

// The WAL format (https://www.sqlite.org/fileformat2.html#walformat): each frame is a 24-byte
// header, then the page; bytes 4-7 of the header, big-endian, are the database's size in pages
// after the commit for a commit frame, and zero for every other frame.
// The log's own header, the first 32 bytes of the file: bytes 8-11, big-endian, are the page size.
constexpr int kFrameHeaderBytes = 24;
constexpr int kLogHeaderBytes = 32;

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
// The page size a log's header gives: a power of two from 512 to 65536 (0 when it is none of them).
uint32_t PageSizeOf(const unsigned char* log_header) {
  const uint32_t size = BigEndian32(log_header + 8);
  return size >= 512 && size <= 65536 && (size & (size - 1)) == 0 ? size : 0;
}

std::atomic<int64_t> writes_in{0};
std::atomic<int64_t> writes_out{0};
std::atomic<int64_t> commits{0};

// Our file (vfs_shim.h): the unix VFS's file follows it in the same allocation.
struct WalFile {
  vfs_shim::ShimFile shim;
  bool is_wal;
  // The database's page size (0 until known): from the log's header, when SQLite writes it or
  // reads it at offset 0, or read from the file at the first write past it (a connection appending
  // to a log it did not start or recover). Only a 24-byte write at a frame's start
  // (32 + k * (24 + page size)) is taken for a frame header: with psow=0 SQLite splits a padding
  // frame at a sector boundary, and a 24-byte slice of it must not pass for one.
  uint32_t page_size;
  // The writes held: `held` bytes for the file from `offset` on. Allocated (kBufferBytes) at the
  // first write, so a connection that only reads the WAL never has one; freed by Close.
  char* buffer;
  size_t held;
  sqlite3_int64 offset;
  // The end of what SQLite has written since it last wrote the log's header at offset 0 (held
  // bytes included): a write there appends; one below it rewrites (a checksum, a page in place).
  sqlite3_int64 end;
  // The last write appended a commit frame's header: the buffer is written out after its page.
  bool commit_next;
  // From a commit frame's page until the next transaction appends its first frame, writes go
  // straight to the file: SQLite may rewrite the commit's checksums and pad its last sector
  // after that page, and publish them without a sync.
  bool after_commit;
  // Where held writes that could not be written out began (-1: none) and ended. They are not in
  // the file: a read of that range, a sync, or a write past its start fails until SQLite writes
  // from there again (once it has rolled the transaction back), whatever it did with the error,
  // or reads the log's header to recover the log from what is in the file.
  sqlite3_int64 lost_from;
  sqlite3_int64 lost_end;
};

static_assert(std::is_standard_layout_v<WalFile>);  // a WalFile* is its sqlite3_file*
WalFile* Ours(sqlite3_file* f) { return reinterpret_cast<WalFile*>(f); }

int WriteThrough(WalFile& file, const void* buf, int n, sqlite3_int64 offset) {
  writes_out.fetch_add(1, std::memory_order_relaxed);
  return vfs_shim::pass::Write(&file.shim.base, buf, n, offset);
}

// Writes out what is held. On failure the held writes are dropped, their range is remembered as
// lost (lost_from), and the real VFS's error is returned.
int Flush(WalFile& file) {
  if (file.held == 0) return SQLITE_OK;
  const int rc = WriteThrough(file, file.buffer, static_cast<int>(file.held), file.offset);
  if (rc != SQLITE_OK) {
    const sqlite3_int64 end = file.offset + static_cast<sqlite3_int64>(file.held);
    file.lost_end = file.lost_from < 0 ? end : std::max(file.lost_end, end);
    file.lost_from = file.lost_from < 0 ? file.offset : std::min(file.lost_from, file.offset);
  }
  file.held = 0;
  return rc;
}

// Flush for an operation other than a write or a sync. Its failure is reported as an I/O error
// whatever the real one was: SQLite then rolls the whole transaction back (a full disk reported
// by a read could otherwise undo only the statement, and keep going without what was lost).
int FlushBefore(WalFile& file) { return Flush(file) == SQLITE_OK ? SQLITE_OK : SQLITE_IOERR_WRITE; }

int Close(sqlite3_file* f) {
  WalFile& file = *Ours(f);
  const int flushed = FlushBefore(file);
  const int rc = vfs_shim::pass::Close(f);
  delete[] file.buffer;
  file.buffer = nullptr;
  return flushed != SQLITE_OK ? flushed : rc;
}
int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 offset) {
  WalFile& file = *Ours(f);
  if (const int rc = FlushBefore(file); rc != SQLITE_OK) return rc;
  const bool log_header = offset == 0 && n == kLogHeaderBytes;
  // Reading the log's header is how SQLite starts to recover the log from the file (after a
  // failed commit, or when the WAL index is lost): it takes only frames whose salts and checksums
  // hold, so what was lost is no longer a hazard.
  if (log_header) file.lost_from = -1;
  if (file.lost_from >= 0 && offset < file.lost_end && offset + n > file.lost_from) {
    return SQLITE_IOERR_WRITE;
  }
  const int rc = vfs_shim::pass::Read(f, buf, n, offset);
  if (rc == SQLITE_OK && log_header && file.page_size == 0) {
    file.page_size = PageSizeOf(static_cast<const unsigned char*>(buf));
  }
  return rc;
}
int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 offset) {
  WalFile& file = *Ours(f);
  if (!file.is_wal) return vfs_shim::pass::Write(f, buf, n, offset);
  writes_in.fetch_add(1, std::memory_order_relaxed);
  if (file.lost_from >= 0) {
    if (offset > file.lost_from) return SQLITE_IOERR_WRITE;
    file.lost_from = -1;  // SQLite writes the lost range again
  }
  const auto* bytes = static_cast<const unsigned char*>(buf);
  if (offset == 0) {  // the log's header: the log starts again
    file.end = 0;
    if (n >= kLogHeaderBytes) file.page_size = PageSizeOf(bytes);
  }
  if (file.page_size == 0 && file.end == 0 && offset >= kLogHeaderBytes) {
    // The first write, past the log's header, which is in the file (nothing held covers it:
    // SQLite did not write it through this file, or its page size would be known). Read once: a
    // later write has end > 0.
    unsigned char log_header[kLogHeaderBytes];
    if (vfs_shim::pass::Read(f, log_header, kLogHeaderBytes, 0) == SQLITE_OK) {
      file.page_size = PageSizeOf(log_header);
    }
  }
  const bool append = offset == file.end;
  // Unknown (the log's header unreadable): any 24-byte write, as SQLite's frame headers are.
  const bool header = n == kFrameHeaderBytes &&
                      (file.page_size == 0 ||
                       (offset >= kLogHeaderBytes &&
                        (offset - kLogHeaderBytes) % (kFrameHeaderBytes + file.page_size) == 0));
  const bool commit_header = header && (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0;
  if (file.after_commit && append && header && !commit_header) file.after_commit = false;
  // The page of a commit frame: this write appends after the commit frame's header.
  const bool commit_page = std::exchange(file.commit_next, false) && append && !header;
  if (header) file.commit_next = commit_header;  // whether the header is held or written through
  file.end = std::max(file.end, offset + n);
  const auto size = static_cast<size_t>(n);
  const bool held_before =
      file.held > 0 && (offset != file.offset + static_cast<sqlite3_int64>(file.held) ||
                        file.held + size > kBufferBytes);
  if (held_before) {
    if (const int rc = Flush(file); rc != SQLITE_OK) return rc;
  }
  if (file.buffer == nullptr) file.buffer = new (std::nothrow) char[kBufferBytes];
  if (!append || file.after_commit || size > kBufferBytes || file.buffer == nullptr) {
    if (const int rc = Flush(file); rc != SQLITE_OK) return rc;
    const int rc = WriteThrough(file, buf, n, offset);
    if (rc == SQLITE_OK && commit_page) {
      commits.fetch_add(1, std::memory_order_relaxed);
      file.after_commit = true;
    }
    return rc;
  }
  if (file.held == 0) file.offset = offset;
  std::memcpy(file.buffer + file.held, buf, size);
  file.held += size;
  if (header) return SQLITE_OK;
  if (commit_page) {
    commits.fetch_add(1, std::memory_order_relaxed);
    file.after_commit = true;
    return Flush(file);
  }
  return SQLITE_OK;
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  WalFile& file = *Ours(f);
  // What is held past the new end is never written: a full disk is not filled further by what
  // is being cut.
  if (file.held > 0 && file.offset + static_cast<sqlite3_int64>(file.held) > size) {
    file.held = file.offset >= size ? 0 : static_cast<size_t>(size - file.offset);
  }
  if (const int rc = FlushBefore(file); rc != SQLITE_OK) return rc;
  if (file.lost_from >= size) file.lost_from = -1;
  file.lost_end = std::min(file.lost_end, size);
  file.end = std::min(file.end, size);
  return vfs_shim::pass::Truncate(f, size);
}
int Sync(sqlite3_file* f, int flags) {
  WalFile& file = *Ours(f);
  if (const int rc = Flush(file); rc != SQLITE_OK) return rc;
  if (file.lost_from >= 0) return SQLITE_IOERR_WRITE;
  return vfs_shim::pass::Sync(f, flags);
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  if (const int rc = FlushBefore(*Ours(f)); rc != SQLITE_OK) return rc;
  return vfs_shim::pass::FileSize(f, size);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  if (const int rc = FlushBefore(*Ours(f)); rc != SQLITE_OK) return rc;
  return vfs_shim::pass::FileControl(f, op, arg);
}
int Fetch(sqlite3_file* f, sqlite3_int64 offset, int n, void** out) {
  if (const int rc = FlushBefore(*Ours(f)); rc != SQLITE_OK) return rc;
  return vfs_shim::pass::Fetch(f, offset, n, out);
}

sqlite3_io_methods MethodsFor(int version) {
  sqlite3_io_methods m = vfs_shim::PassThroughMethods(version);
  m.xClose = Close;
  m.xRead = Read;
  m.xWrite = Write;
  m.xTruncate = Truncate;
  m.xSync = Sync;
  m.xFileSize = FileSize;
  m.xFileControl = FileControl;
  if (version >= 3) m.xFetch = Fetch;
  return m;
}
const sqlite3_io_methods kMethods[] = {MethodsFor(1), MethodsFor(2), MethodsFor(3)};

int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  auto* ours = new (file) WalFile{
      .shim = {.base = {.pMethods = nullptr},
               .real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<WalFile*>(file) + 1)},
      .is_wal = (flags & SQLITE_OPEN_WAL) != 0,
      .page_size = 0,
      .buffer = nullptr,
      .held = 0,
      .offset = 0,
      .end = 0,
      .commit_next = false,
      .after_commit = false,
      .lost_from = -1,
      .lost_end = -1};
  return vfs_shim::OpenReal(vfs, name, ours->shim, flags, out_flags, kMethods);
}

int RegisterInstance(const char* base_name, const char* name) {
  return vfs_shim::Register(base_name, name, static_cast<int>(sizeof(WalFile)), Open);
}

absl::Status Registered(int rc, const char* name) {
  if (rc == SQLITE_OK) return absl::OkStatus();
  return absl::InternalError(StrCat("register the ", name, " VFS: ", sqlite3_errstr(rc)));
}

}  // namespace

absl::Status Register() {
  static const int rc = RegisterInstance(nullptr, kName);
  return Registered(rc, kName);
}

absl::Status RegisterOver(const char* base, const char* name) {
  static absl::Mutex mu(absl::kConstInit);
  absl::MutexLock lock(&mu);
  static_cast<void>(sqlite_process::Configure());  // before sqlite3_vfs_find starts SQLite
  if (sqlite3_vfs_find(name) != nullptr) return absl::OkStatus();
  return Registered(RegisterInstance(base, name), name);
}

Counts GetCounts() {
  return Counts{
      .writes_in = writes_in.load(), .writes_out = writes_out.load(), .commits = commits.load()};
}

}  // namespace steritrack::wal_vfs
