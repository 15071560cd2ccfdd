#include "server/health_monitor.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

std::string Errno(int err) { return std::strerror(err); }

}  // namespace

std::string DatabaseFilePath(const std::string& db) {
  if (db.empty() || db == ":memory:") return "";
  // A PostgreSQL database (issue 13) is no file of ours.
  if (db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0) return "";
  if (db.rfind("file:", 0) != 0) return db;
  std::string rest = db.substr(5);
  const size_t query = rest.find('?');
  if (query != std::string::npos) {
    if (rest.find("mode=memory", query) != std::string::npos) return "";
    rest.resize(query);
  }
  if (rest.empty() || rest == ":memory:") return "";
  if (rest.rfind("//", 0) == 0) rest = rest.substr(rest.find('/', 2));  // file://host/path
  return rest;
}

absl::StatusOr<DatabaseIdentity> IdentifyDatabase(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::UnavailableError(StrCat("cannot stat ", path, ": ", Errno(errno)));
  }
  return DatabaseIdentity{.path = path, .device = st.st_dev, .inode = st.st_ino};
}

absl::Status ProbeDatabaseWritable(const DatabaseIdentity& db) {
  struct stat st;
  if (stat(db.path.c_str(), &st) != 0) {
    return absl::UnavailableError(
        StrCat("database file ", db.path, " is gone (", Errno(errno), ")"));
  }
  if (st.st_dev != db.device || st.st_ino != db.inode) {
    return absl::UnavailableError(StrCat("database file ", db.path,
                                         " was replaced by another file: the server still writes "
                                         "the one it opened; restart it"));
  }
  // Never open() the database file here: closing any descriptor of it drops every POSIX lock this
  // process holds on it, SQLite's included, and another process could then take the WAL away.
  if (faccessat(AT_FDCWD, db.path.c_str(), W_OK, AT_EACCESS) != 0) {
    return absl::UnavailableError(
        StrCat("database file ", db.path, " is not writable: ", Errno(errno)));
  }
  // SQLite makes its journal and WAL files beside the database, and removes them: the directory
  // must take a new file and let it go, and the disk a block. The probe file is made anew each
  // time (O_EXCL): one left behind, when the directory turned read-only between a probe's
  // open() and its unlink(), would otherwise open again and pass for a new file while the
  // directory takes none.
  const std::string probe = db.path + "-health";
  if (unlink(probe.c_str()) != 0 && errno != ENOENT) {
    return absl::UnavailableError(StrCat("the database's directory does not take a new file: ",
                                         "cannot remove the probe file left from before (", probe,
                                         "): ", Errno(errno)));
  }
  const int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return absl::UnavailableError(
        StrCat("the database's directory does not take a new file (", probe, "): ", Errno(errno)));
  }
  const std::vector<char> block(4096, 0);
  absl::Status status;
  if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
    status = absl::UnavailableError(
        StrCat("cannot write beside the database (", probe, "): ", Errno(errno)));
  } else if (fdatasync(fd) != 0) {
    status = absl::UnavailableError(
        StrCat("cannot sync a write beside the database (", probe, "): ", Errno(errno)));
  }
  close(fd);
  if (unlink(probe.c_str()) != 0 && status.ok()) {
    status = absl::UnavailableError(
        StrCat("the database's directory does not let a file go (", probe, "): ", Errno(errno)));
  }
  return status;
}

HealthMonitor::HealthMonitor(DatabaseIdentity db, absl::Duration interval,
                             std::function<void(bool serving)> set_serving, spdlog::logger& log)
    : db_(std::move(db)),
      interval_(interval),
      set_serving_(std::move(set_serving)),
      log_(log),
      thread_([this] { Run(); }) {}

HealthMonitor::~HealthMonitor() {
  stop_.Notify();
  thread_.join();
}

void HealthMonitor::Run() {
  bool first = true;
  bool serving = true;
  std::string reason;  // the last probe's failure, if it failed
  do {
    const absl::Status probe = ProbeDatabaseWritable(db_);
    if (first || probe.ok() != serving) {
      serving = probe.ok();
      set_serving_(serving);
      if (!serving) {
        log_.error("health: NOT_SERVING: {}", std::string(probe.message()));
      } else if (!first) {
        log_.warn("health: SERVING again: the database can be written");
      }
      first = false;
    } else if (!serving && probe.message() != reason) {
      // Still NOT_SERVING, for another reason: said once too.
      log_.error("health: still NOT_SERVING: {}", std::string(probe.message()));
    }
    reason = std::string(probe.message());
  } while (!stop_.WaitForNotificationWithTimeout(interval_));
}

}  // namespace steritrack
