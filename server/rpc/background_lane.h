// Work that takes seconds on a large database (a period's compliance report, a full audit
// verification) runs on threads of its own at a lower CPU priority (nice +10), so that on a small
// machine the safety path (opening a cartridge, the writer, health) keeps its share of the cores
// while a report runs (tests/bench/RESULTS.md, R9). The calling gRPC thread waits for the result
// without using a core meanwhile.
//
// The work runs for the caller's site: the caller's SiteScope is reopened on the lane's thread, and
// so is its place in the database's queue (BoundedStore::AdmittedScope).
// Thread-safe.
#ifndef STERITRACK_SERVER_RPC_BACKGROUND_LANE_H_
#define STERITRACK_SERVER_RPC_BACKGROUND_LANE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/rpc/work_queue.h"
#include "spdlog/logger.h"

namespace steritrack::rpc {

class BackgroundLane {
 public:
  // `threads` run the work (at least 1), each at `nice` above the server's own nice value (at
  // most 19; 0: the server's own priority). Where Linux refuses it (a service unit's system call
  // filter that denies setpriority), the threads run at the server's priority, and `log` (when
  // not null) says so once, as a warning.
  BackgroundLane(int threads, int nice, std::shared_ptr<spdlog::logger> log = nullptr);
  // Waits for the work under way; no Call may be running or start.
  ~BackgroundLane();
  BackgroundLane(const BackgroundLane&) = delete;
  BackgroundLane& operator=(const BackgroundLane&) = delete;

  // Runs `work` on one of the lane's threads, in the caller's site, and returns what it returned;
  // INTERNAL if it threw (on the gRPC thread a handler's exception is an answer; on the lane it
  // would end the server).
  template <typename T>
  absl::StatusOr<T> Call(absl::FunctionRef<absl::StatusOr<T>()> work) {
    std::optional<absl::StatusOr<T>> result;
    if (std::string thrown = RunAndWait([&] { result.emplace(work()); }); !thrown.empty()) {
      return absl::InternalError(thrown);
    }
    return *std::move(result);
  }

 private:
  struct Task;
  // Empty when `work` returned; what it threw otherwise.
  std::string RunAndWait(absl::FunctionRef<void()> work);
  void Loop(int nice);

  const std::shared_ptr<spdlog::logger> log_;
  std::atomic<bool> refusal_logged_{false};
  WorkQueue<Task*> queue_;
  std::vector<std::thread> threads_;
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_BACKGROUND_LANE_H_
