// The plumbing a SQLite VFS shim needs: a VFS that wraps another one (its base) and changes a few
// of its files' methods. Shared by the store writer's VFS (wal_vfs.cc) and the tests' failing disk
// (fault_vfs.cc). Internal to server/storage.
//
// A shim's file starts with a ShimFile (its first member), and the base VFS's file follows the
// shim's own in the same allocation (the shim's szOsFile covers both). The registered sqlite3_vfs
// keeps its base in pAppData; everything but files goes to the base with the base as its first
// argument. Thread-safe as SQLite's VFS calls are.
#ifndef STERITRACK_SERVER_STORAGE_VFS_SHIM_H_
#define STERITRACK_SERVER_STORAGE_VFS_SHIM_H_

#include <sqlite3.h>

#include "server/storage/sqlite_process.h"

namespace steritrack::vfs_shim {

struct ShimFile {
  sqlite3_file base;   // what SQLite sees: its pMethods are the shim's
  sqlite3_file* real;  // the base VFS's file, right after the shim's own
};

inline sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }
inline sqlite3_vfs* Base(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }

// The methods of a file, each passing through to the real file.
namespace pass {
inline int Close(sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); }
inline int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 offset) {
  return Real(f)->pMethods->xRead(Real(f), buf, n, offset);
}
inline int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 offset) {
  return Real(f)->pMethods->xWrite(Real(f), buf, n, offset);
}
inline int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
inline int Sync(sqlite3_file* f, int flags) { return Real(f)->pMethods->xSync(Real(f), flags); }
inline int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
inline int Lock(sqlite3_file* f, int level) { return Real(f)->pMethods->xLock(Real(f), level); }
inline int Unlock(sqlite3_file* f, int level) { return Real(f)->pMethods->xUnlock(Real(f), level); }
inline int CheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
inline int FileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
inline int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
inline int DeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
inline int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
inline int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
inline void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
inline int ShmUnmap(sqlite3_file* f, int delete_flag) {
  return Real(f)->pMethods->xShmUnmap(Real(f), delete_flag);
}
inline int Fetch(sqlite3_file* f, sqlite3_int64 offset, int n, void** out) {
  return Real(f)->pMethods->xFetch(Real(f), offset, n, out);
}
inline int Unfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
  return Real(f)->pMethods->xUnfetch(Real(f), offset, p);
}
}  // namespace pass

// Methods of `version` (1-3) that all pass through; a shim replaces the ones it changes. A file
// whose real methods are older gets only what they have (SQLite looks at iVersion before calling
// the later ones).
inline sqlite3_io_methods PassThroughMethods(int version) {
  sqlite3_io_methods m{};
  m.iVersion = version;
  m.xClose = pass::Close;
  m.xRead = pass::Read;
  m.xWrite = pass::Write;
  m.xTruncate = pass::Truncate;
  m.xSync = pass::Sync;
  m.xFileSize = pass::FileSize;
  m.xLock = pass::Lock;
  m.xUnlock = pass::Unlock;
  m.xCheckReservedLock = pass::CheckReservedLock;
  m.xFileControl = pass::FileControl;
  m.xSectorSize = pass::SectorSize;
  m.xDeviceCharacteristics = pass::DeviceCharacteristics;
  if (version >= 2) {
    m.xShmMap = pass::ShmMap;
    m.xShmLock = pass::ShmLock;
    m.xShmBarrier = pass::ShmBarrier;
    m.xShmUnmap = pass::ShmUnmap;
  }
  if (version >= 3) {
    m.xFetch = pass::Fetch;
    m.xUnfetch = pass::Unfetch;
  }
  return m;
}

// Opens the real file behind `file` (whose ShimFile is set up, `real` included) on `vfs`'s base,
// and gives it the shim's methods for its version from `methods` (versions 1, 2 and 3). A file
// whose open failed keeps no methods: SQLite then never closes it.
inline int OpenReal(sqlite3_vfs* vfs, sqlite3_filename name, ShimFile& file, int flags,
                    int* out_flags, const sqlite3_io_methods (&methods)[3]) {
  file.base.pMethods = nullptr;
  const int rc = Base(vfs)->xOpen(Base(vfs), name, file.real, flags, out_flags);
  if (file.real->pMethods != nullptr) {
    const int version = file.real->pMethods->iVersion;
    file.base.pMethods = &methods[version < 1 ? 0 : version > 3 ? 2 : version - 1];
  }
  return rc;
}

// The VFS's own methods, passing through to the base.
namespace pass {
inline int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return Base(vfs)->xDelete(Base(vfs), name, sync_dir);
}
inline int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Base(vfs)->xAccess(Base(vfs), name, flags, out);
}
inline int FullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return Base(vfs)->xFullPathname(Base(vfs), name, n, out);
}
inline void* DlOpen(sqlite3_vfs* vfs, const char* name) {
  return Base(vfs)->xDlOpen(Base(vfs), name);
}
inline void DlError(sqlite3_vfs* vfs, int n, char* out) { Base(vfs)->xDlError(Base(vfs), n, out); }
inline void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return Base(vfs)->xDlSym(Base(vfs), handle, symbol);
}
inline void DlClose(sqlite3_vfs* vfs, void* handle) { Base(vfs)->xDlClose(Base(vfs), handle); }
inline int Randomness(sqlite3_vfs* vfs, int n, char* out) {
  return Base(vfs)->xRandomness(Base(vfs), n, out);
}
inline int Sleep(sqlite3_vfs* vfs, int micros) { return Base(vfs)->xSleep(Base(vfs), micros); }
inline int CurrentTime(sqlite3_vfs* vfs, double* out) {
  return Base(vfs)->xCurrentTime(Base(vfs), out);
}
inline int GetLastError(sqlite3_vfs* vfs, int n, char* out) {
  return Base(vfs)->xGetLastError(Base(vfs), n, out);
}
inline int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return Base(vfs)->xCurrentTimeInt64(Base(vfs), out);
}
}  // namespace pass

// Registers (never as the default) the shim `name` over the registered VFS `base_name` (null: the
// default), with files of `file_bytes` for the shim's own part and `open` as its xOpen. SQLite
// keeps the VFS for the life of the process; `name` must live as long (a string literal).
// SQLITE_NOTFOUND when there is no such base.
inline int Register(const char* base_name, const char* name, int file_bytes,
                    int (*open)(sqlite3_vfs*, sqlite3_filename, sqlite3_file*, int, int*)) {
  // Finding a VFS starts SQLite: its process-wide options go first (a refusal is the store's to
  // tell).
  static_cast<void>(sqlite_process::Configure());
  sqlite3_vfs* base = sqlite3_vfs_find(base_name);
  if (base == nullptr) return SQLITE_NOTFOUND;
  static_assert(sizeof(ShimFile) % alignof(sqlite3_file*) == 0);
  auto* vfs = new sqlite3_vfs{};
  // Version 2 (xCurrentTimeInt64); the system-call overrides of version 3 are for SQLite's own
  // tests and are left out.
  vfs->iVersion = 2;
  vfs->szOsFile = file_bytes + base->szOsFile;
  vfs->mxPathname = base->mxPathname;
  vfs->zName = name;
  vfs->pAppData = base;
  vfs->xOpen = open;
  vfs->xDelete = pass::Delete;
  vfs->xAccess = pass::Access;
  vfs->xFullPathname = pass::FullPathname;
  vfs->xDlOpen = pass::DlOpen;
  vfs->xDlError = pass::DlError;
  vfs->xDlSym = pass::DlSym;
  vfs->xDlClose = pass::DlClose;
  vfs->xRandomness = pass::Randomness;
  vfs->xSleep = pass::Sleep;
  vfs->xCurrentTime = pass::CurrentTime;
  vfs->xGetLastError = pass::GetLastError;
  vfs->xCurrentTimeInt64 = pass::CurrentTimeInt64;
  const int rc = sqlite3_vfs_register(vfs, /*makeDflt=*/0);
  if (rc != SQLITE_OK) delete vfs;
  return rc;
}

}  // namespace steritrack::vfs_shim

#endif  // STERITRACK_SERVER_STORAGE_VFS_SHIM_H_
