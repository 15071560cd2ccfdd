#include "server/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "server/core/audit_service.h"
#include "server/instance_lock.h"
#include "server/storage/sqlite_admin.h"
#include "server/storage/sqlite_store.h"
#include "steritrack/sha256.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

absl::Status Errno(std::string_view what, const std::string& path) {
  return absl::UnavailableError(StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status SyncDirectoryOf(const std::string& path) {
  const std::string dir = DirectoryOf(path);
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open directory", dir);
  const bool synced = fsync(fd) == 0;
  close(fd);
  return synced ? absl::OkStatus() : Errno("sync directory", dir);
}

absl::Status SyncFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  const bool synced = fsync(fd) == 0;
  close(fd);
  return synced ? absl::OkStatus() : Errno("sync", path);
}

void RemoveDatabaseFiles(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    unlink(StrCat(path, suffix).c_str());
  }
}

}  // namespace

int RunRestore(const RestoreOptions& options, std::ostream& out, std::ostream& err) {
  auto refuse = [&](const std::string& reason) {
    err << "steritrackd restore: refused: " << reason << "\n";
    return 1;
  };
  struct stat from_stat;
  if (stat(options.from.c_str(), &from_stat) != 0) {
    return refuse(StrCat("cannot read the snapshot ", options.from, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(from_stat.st_mode)) {
    return refuse(StrCat("the snapshot ", options.from, " is not a regular file"));
  }
  if (struct stat st; stat(DirectoryOf(options.db).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return refuse(StrCat("the directory of ", options.db, " does not exist"));
  }

  // The target first: nothing is worth checking when it may not be replaced. Its lock is held to
  // the end, so that no server can start on it meanwhile.
  std::unique_ptr<InstanceLock> instance_lock;
  std::unique_ptr<DatabaseFileLock> target_lock;
  if (Exists(options.db)) {
    if (struct stat st; stat(options.db.c_str(), &st) == 0 && st.st_dev == from_stat.st_dev &&
                        st.st_ino == from_stat.st_ino) {
      return refuse(StrCat(options.db, " is the snapshot itself"));
    }
    if (!options.force) {
      return refuse(StrCat(options.db,
                           " exists: give --force to replace it (it is replaced only after the "
                           "snapshot passed every check, and never while a server runs on it)"));
    }
    // No server may start on the target while it is replaced (one that runs holds this lock).
    absl::StatusOr<std::unique_ptr<InstanceLock>> locked = LockInstance(options.db);
    if (!locked.ok()) return refuse(std::string(locked.status().message()));
    instance_lock = *std::move(locked);
    absl::StatusOr<std::unique_ptr<DatabaseFileLock>> lock = LockDatabaseFile(options.db);
    if (!lock.ok()) return refuse(std::string(lock.status().message()));
    target_lock = *std::move(lock);
  } else if (Exists(options.db + "-wal")) {
    // A log without its database would be replayed into the restored one.
    return refuse(StrCat(options.db, "-wal exists without its database: move it away first"));
  }

  // Every check runs on a copy, which becomes the database only when all have passed.
  const std::string tmp = options.db + ".tmp";
  RemoveDatabaseFiles(tmp);
  struct RemoveOnExit {
    ~RemoveOnExit() {
      if (!path.empty()) RemoveDatabaseFiles(path);
    }
    std::string path;
  } remove_tmp{tmp};
  // Through SQLite's backup API rather than byte for byte: what a write-ahead log beside the
  // snapshot holds is part of it.
  if (absl::Status s = CopyDatabaseFile(options.from, tmp); !s.ok()) {
    return refuse(StrCat("cannot read the snapshot ", options.from, ": ", s.message()));
  }

  const std::string snapshot = StrCat("snapshot ", options.from);
  if (absl::Status s = CheckDatabaseIntegrity(tmp); !s.ok()) {
    return refuse(StrCat(snapshot, ": ", s.message()));
  }
  absl::StatusOr<int> version = DatabaseFileSchemaVersion(tmp);
  if (!version.ok()) return refuse(StrCat(snapshot, ": ", version.status().message()));
  if (*version > SqliteSchemaVersion()) {
    return refuse(
        StrCat(snapshot, " has schema version ", *version, ", newer than this build's (",
               SqliteSchemaVersion(),
               "): it was taken by a newer steritrack; upgrade steritrack to restore it"));
  }

  // The audit trail, verified by core through the normal store (which also migrates an older
  // snapshot forward; the snapshot itself is the backup of what it was).
  AuditChainCheck check;
  AuditHead head;
  {
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenSqliteStore({.path = tmp, .readers = 1, .backup_before_migration = false});
    if (!store.ok()) {
      return refuse(StrCat(snapshot, ": cannot open it: ", store.status().message()));
    }
    std::unique_ptr<Sha256> sha256 = NewSha256();
    AuditService audit({.store = store->get(), .sha256 = sha256.get()});
    absl::StatusOr<AuditChainCheck> verified = audit.Verify();
    if (!verified.ok()) {
      return refuse(
          StrCat(snapshot, ": audit trail verification failed: ", verified.status().message()));
    }
    check = *verified;
    if (!check.intact) {
      return refuse(StrCat(snapshot, ": audit trail verification failed at entry ",
                           check.first_bad_seq, ": ", check.problem));
    }
    absl::StatusOr<std::unique_ptr<ReadTransaction>> tx = (*store)->BeginRead();
    if (tx.ok()) {
      if (absl::StatusOr<AuditHead> h = (*tx)->audit().ReadHead(); h.ok()) head = *h;
    }
  }
  // One self-contained file: the store's write-ahead log checkpointed into it and gone.
  if (absl::StatusOr<std::unique_ptr<DatabaseFileLock>> own = LockDatabaseFile(tmp); !own.ok()) {
    return refuse(std::string(own.status().message()));
  }
  if (absl::Status s = SyncFile(tmp); !s.ok()) return refuse(std::string(s.message()));
  if (rename(tmp.c_str(), options.db.c_str()) != 0) {
    return refuse(StrCat("cannot rename ", tmp, " to ", options.db, ": ", std::strerror(errno)));
  }
  remove_tmp.path.clear();
  if (absl::Status s = SyncDirectoryOf(options.db); !s.ok())
    return refuse(std::string(s.message()));
  target_lock.reset();

  struct stat restored;
  const int64_t bytes = stat(options.db.c_str(), &restored) == 0 ? restored.st_size : 0;
  out << "restored " << options.from << " to " << options.db << ": " << bytes << " bytes, schema v"
      << *version;
  if (*version < SqliteSchemaVersion()) out << " (migrated to v" << SqliteSchemaVersion() << ")";
  out << ", integrity ok, audit trail intact (" << check.entries << " entries, head #" << head.seq
      << " " << head.hash << ")\n";
  return 0;
}

}  // namespace steritrack
