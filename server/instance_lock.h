// One steritrackd per database file: an exclusive flock(2) on "<database>.lock", held for as long
// as the server runs. A second server on the same file fails at start-up and says which process
// holds it. flock belongs to the open file description, so a server killed with SIGKILL leaves no
// lock behind, and SQLite's own POSIX locks on the database are not touched (the lock is on a
// separate file). Local maintenance (`steritrackd token create`) does not take it and works next
// to a running server.
#ifndef STERITRACK_SERVER_INSTANCE_LOCK_H_
#define STERITRACK_SERVER_INSTANCE_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace steritrack {

class InstanceLock {
 public:
  ~InstanceLock();
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  friend absl::StatusOr<std::unique_ptr<InstanceLock>> LockInstance(const std::string&);
  InstanceLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_;
};

// The lock file of the database at `db_path` ("<db_path>.lock"). Empty for an in-memory database
// (":memory:", "file::memory:..."), which no other process can share.
std::string InstanceLockPath(const std::string& db_path);

// Takes the lock beside `db_path`, writing this process's id into the lock file.
// FAILED_PRECONDITION naming the holder's process id when another process holds it; nullptr (and
// OK) for an in-memory database.
absl::StatusOr<std::unique_ptr<InstanceLock>> LockInstance(const std::string& db_path);

}  // namespace steritrack

#endif  // STERITRACK_SERVER_INSTANCE_LOCK_H_
