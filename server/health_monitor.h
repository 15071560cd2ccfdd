// HealthMonitor: whether the database can be written, probed at an interval and reported through
// grpc.health.v1.Health (RpcServer::SetServing).
//
// A server whose database cannot take a write must say so before a nurse's scan fails: the probe
// finds the file removed or replaced, the file or its directory read-only (or a read-only
// filesystem), and a full disk (a 4 KiB write and fdatasync beside the database), and the state
// flips back to SERVING as soon as the probe passes again. Every change (of the state, or of the
// reason it is NOT_SERVING) is logged once. Owned by steritrackd's main; one background thread.
#ifndef STERITRACK_SERVER_HEALTH_MONITOR_H_
#define STERITRACK_SERVER_HEALTH_MONITOR_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "spdlog/logger.h"

namespace steritrack {

// The file a --db value names: a path, or the path of a "file:" URI; empty for an in-memory
// database (nothing on disk to probe).
std::string DatabaseFilePath(const std::string& db);

// What the probe checks, at start-up: the database file's identity, so that a file removed and
// made anew by someone else is noticed.
struct DatabaseIdentity {
  std::string path;
  dev_t device = 0;
  ino_t inode = 0;
};

absl::StatusOr<DatabaseIdentity> IdentifyDatabase(const std::string& path);

// OK when the database can be written now; otherwise UNAVAILABLE saying why.
absl::Status ProbeDatabaseWritable(const DatabaseIdentity& db);

class HealthMonitor {
 public:
  // Probes `db` every `interval` and calls `set_serving` on every change (and once at start with
  // the first result). REQUIRES: `log` and whatever `set_serving` touches outlive this object.
  HealthMonitor(DatabaseIdentity db, absl::Duration interval,
                std::function<void(bool serving)> set_serving, spdlog::logger& log);
  ~HealthMonitor();  // stops the thread
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

 private:
  void Run();

  const DatabaseIdentity db_;
  const absl::Duration interval_;
  const std::function<void(bool)> set_serving_;
  spdlog::logger& log_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_HEALTH_MONITOR_H_
