#include "server/rpc/background_lane.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "absl/synchronization/notification.h"
#include "server/rpc/thread_nice.h"
#include "server/storage/bounded_store.h"
#include "steritrack/site.h"

namespace steritrack::rpc {

struct BackgroundLane::Task {
  absl::FunctionRef<void()> work;
  std::string site;    // the caller's SiteScope; empty: it had none
  bool admitted;       // whether the caller's call holds its place in the database's queue
  std::string thrown;  // what `work` threw, if it did
  absl::Notification done;
};

BackgroundLane::BackgroundLane(int threads, int nice, std::shared_ptr<spdlog::logger> log)
    : log_(std::move(log)) {
  for (int i = 0; i < std::max(threads, 1); ++i)
    threads_.emplace_back([this, nice] { Loop(nice); });
}

BackgroundLane::~BackgroundLane() {
  queue_.Stop();
  for (std::thread& t : threads_) t.join();
}

std::string BackgroundLane::RunAndWait(absl::FunctionRef<void()> work) {
  Task task{.work = work,
            .site = std::string(SiteScope::CurrentOr("")),
            .admitted = BoundedStore::AdmittedHere()};
  queue_.Push(&task);
  task.done.WaitForNotification();
  return std::move(task.thrown);
}

void BackgroundLane::Loop(int nice) {
  pthread_setname_np(pthread_self(), "st-background");  // as top and perf show it
  // Relative to the server's own nice value, so a server started at nice 5 runs its reports at
  // 15, never above itself. Raising it needs no privilege: a refusal is a system call filter's,
  // and leaves the thread at the server's priority, which is only slower for the others.
  if (nice > 0) {
    const NiceShift shift = ShiftThisThreadsNice(nice);
    if (shift.refused != 0 && log_ != nullptr && !refusal_logged_.exchange(true)) {
      log_->warn(
          "reports and verifications run at the server's priority: Linux refused their "
          "threads nice {} ({}); a service unit's SystemCallFilter must let setpriority through",
          shift.wanted, std::strerror(shift.refused));
    }
  }
  // Until stopped with nothing left to run.
  while (std::optional<Task*> next = queue_.Pop(/*wait=*/true)) {
    Task* task = *next;
    try {
      std::optional<SiteScope> scope;
      if (!task->site.empty()) scope.emplace(task->site);
      std::optional<BoundedStore::AdmittedScope> admitted;
      if (task->admitted) admitted.emplace();  // the caller's place serves its work here too
      task->work();
    } catch (const std::exception& e) {
      task->thrown = std::string("the work failed: ") + e.what();
    } catch (...) {
      task->thrown = "the work failed with an unknown exception";
    }
    task->done.Notify();
  }
}

}  // namespace steritrack::rpc
