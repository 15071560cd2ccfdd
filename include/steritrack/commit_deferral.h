// Group commit driven by one thread: a thread that runs many writes back to back (the server's
// write lane, server/rpc/call_lanes.h) installs a CommitDeferral, and a store that supports it
// (SQLite with group commit) then lets each write transaction's Commit() return as soon as the
// write is in the open batch, without waiting for the batch to be durable. The thread goes on
// with the next write, which joins the same batch, and only when it has no more work (or holds
// enough) settles what it deferred: one commit and one fsync for all of them, and only then are
// the writes' callers answered.
//
// A Commit() that returned OK under a deferral has NOT made the write durable; its caller must
// not answer anyone before Settle() of every PendingCommit taken for it returns OK. Stores that
// do not defer (PostgreSQL, SQLite in memory or without group commit) commit synchronously as
// always and add nothing. Not thread-safe: a deferral belongs to the thread that installed it.
#ifndef STERITRACK_COMMIT_DEFERRAL_H_
#define STERITRACK_COMMIT_DEFERRAL_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace steritrack {

// One batch a deferred write joined.
class PendingCommit {
 public:
  virtual ~PendingCommit() = default;
  // Commits the batch if it is still open (several writes share one: the first call commits,
  // later ones only wait), waits until it is durable or has failed, and returns its outcome.
  virtual absl::Status Settle() = 0;
};

class CommitDeferral {
 public:
  // Installs this deferral on the calling thread until it is destroyed. REQUIRES: none installed.
  CommitDeferral() : previous_(current_) { current_ = this; }
  ~CommitDeferral() { current_ = previous_; }
  CommitDeferral(const CommitDeferral&) = delete;
  CommitDeferral& operator=(const CommitDeferral&) = delete;

  // The calling thread's deferral; null when its commits are synchronous.
  static CommitDeferral* OnThisThread() { return current_; }

  // Called by a store's Commit(): the write waits in `pending`.
  void Add(std::shared_ptr<PendingCommit> pending) { pending_.push_back(std::move(pending)); }
  // A failpoint (steritrack/failpoint.h) to hit once the writes taken next are durable: core's
  // "after_commit" means committed, not yet answered, whichever thread commits. False, and
  // nothing kept, when no commit is pending (the store committed synchronously): hit it now.
  bool HitAfterDurable(std::string failpoint) {
    if (pending_.empty()) return false;
    failpoints_.push_back(std::move(failpoint));
    return true;
  }

  struct Taken {
    std::vector<std::shared_ptr<PendingCommit>> pending;
    std::vector<std::string> failpoints;
  };
  // What was deferred since the last call: the writes of the work just run.
  Taken Take() { return Taken{std::exchange(pending_, {}), std::exchange(failpoints_, {})}; }

 private:
  static inline thread_local CommitDeferral* current_ = nullptr;
  CommitDeferral* const previous_;
  std::vector<std::shared_ptr<PendingCommit>> pending_;
  std::vector<std::string> failpoints_;
};

}  // namespace steritrack

#endif  // STERITRACK_COMMIT_DEFERRAL_H_
