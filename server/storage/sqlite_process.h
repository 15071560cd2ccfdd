// How steritrack configures the SQLite library itself, once a process, before SQLite initialises.
// Internal to server/storage (and the benchmark harness that opens SQLite as the server does).
//
// SQLite's process-wide options (sqlite3_config) take effect only before sqlite3_initialize, and
// the first of sqlite3_open_v2, sqlite3_vfs_find, sqlite3_vfs_register and many others starts it.
// So every place in steritrack's server that can be the process's first call into SQLite calls
// Configure() first: Connection::Open (sqlite.cc) and a VFS's registration (vfs_shim.h,
// wal_vfs.cc). If something else in the process started SQLite before, the options stay SQLite's
// defaults; nothing breaks, and OpenSqliteStore says so through its notice.
#ifndef STERITRACK_SERVER_STORAGE_SQLITE_PROCESS_H_
#define STERITRACK_SERVER_STORAGE_SQLITE_PROCESS_H_

#include <sqlite3.h>

namespace steritrack::sqlite_process {

// Turns off SQLite's memory statistics (SQLITE_CONFIG_MEMSTATUS). With them on, every allocation
// and free SQLite makes (a few dozen per write) takes one process-wide mutex; nothing in
// steritrack reads them (no sqlite3_memory_used, no heap limit). Returns sqlite3_config's code:
// SQLITE_OK, or SQLITE_MISUSE where SQLite was already initialised. Thread-safe; later calls
// return the first call's code.
inline int Configure() {
  static const int rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  return rc;
}

}  // namespace steritrack::sqlite_process

#endif  // STERITRACK_SERVER_STORAGE_SQLITE_PROCESS_H_
