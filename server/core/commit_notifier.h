// CommitNotifier: tells waiting readers (the integrator event stream) that a write transaction was
// committed, so that they read the new events without polling.
//
// The core services call Notify() after each successful commit. A reader takes count() *before* it
// reads the store, and after a read that found nothing calls WaitForCommitAfter(count, timeout): a
// commit between the read and the wait has already moved the count, so no wake-up is lost.
// Thread-safe.
#ifndef STERITRACK_SERVER_CORE_COMMIT_NOTIFIER_H_
#define STERITRACK_SERVER_CORE_COMMIT_NOTIFIER_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace steritrack {

class CommitNotifier {
 public:
  CommitNotifier() = default;
  CommitNotifier(const CommitNotifier&) = delete;
  CommitNotifier& operator=(const CommitNotifier&) = delete;

  // Called after a write transaction committed.
  void Notify() {
    absl::MutexLock lock(&mu_);
    ++count_;
    changed_.SignalAll();
  }

  // Wakes every waiter without a commit (e.g. the server is stopping).
  void WakeAll() {
    absl::MutexLock lock(&mu_);
    changed_.SignalAll();
  }

  uint64_t count() const {
    absl::MutexLock lock(&mu_);
    return count_;
  }

  // Blocks until the count differs from `seen`, WakeAll(), or `timeout`; returns the count.
  uint64_t WaitForCommitAfter(uint64_t seen, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    if (count_ == seen) changed_.WaitWithTimeout(&mu_, timeout);
    return count_;
  }

 private:
  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_CORE_COMMIT_NOTIFIER_H_
