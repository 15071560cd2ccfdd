#include "server/instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "server/health_monitor.h"
#include "steritrack/strings.h"

namespace steritrack {

InstanceLock::~InstanceLock() {
  // Closing the descriptor releases the lock; the file stays (removing it would race with a
  // server that has just opened it and is about to lock it).
  close(fd_);
}

std::string InstanceLockPath(const std::string& db_path) {
  std::string file = DatabaseFilePath(db_path);
  if (file.empty()) return "";
  // One lock per database file, however its path is spelled (a symlink, "./").
  if (char resolved[PATH_MAX]; realpath(file.c_str(), resolved) != nullptr) file = resolved;
  return file + ".lock";
}

absl::StatusOr<std::unique_ptr<InstanceLock>> LockInstance(const std::string& db_path) {
  const std::string path = InstanceLockPath(db_path);
  if (path.empty()) return nullptr;
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        StrCat("cannot open the lock file ", path, ": ", std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    std::string holder;
    char buffer[32] = {};
    if (const ssize_t n = pread(fd, buffer, sizeof buffer - 1, 0); n > 0) {
      holder = std::string(buffer, static_cast<size_t>(n));
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    }
    close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          StrCat("another steritrackd already serves the database ", DatabaseFilePath(db_path),
                 holder.empty() ? std::string() : StrCat(" (process ", holder, ")"), "; lock file ",
                 path, ": stop it first, or give this one another --db"));
    }
    return absl::FailedPreconditionError(StrCat("cannot lock ", path, ": ", std::strerror(error)));
  }
  // Who holds it, for the message of the next one that tries.
  const std::string pid = StrCat(static_cast<int64_t>(getpid()), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The lock is held all the same; only the message of a second server loses the process id.
  }
  return std::unique_ptr<InstanceLock>(new InstanceLock(path, fd));
}

}  // namespace steritrack
