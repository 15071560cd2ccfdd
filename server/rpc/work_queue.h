// The queue in front of a server thread or pool (the call lanes, their answer thread, the
// background lane): producers push, the threads take, and Stop lets them finish what is queued
// and then return. Thread-safe.
#ifndef STERITRACK_SERVER_RPC_WORK_QUEUE_H_
#define STERITRACK_SERVER_RPC_WORK_QUEUE_H_

#include <deque>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace steritrack::rpc {

template <typename T>
class WorkQueue {
 public:
  void Push(T item) {
    absl::MutexLock lock(&mu_);
    items_.push_back(std::move(item));
  }
  void PushAll(std::vector<T> items) {
    absl::MutexLock lock(&mu_);
    std::move(items.begin(), items.end(), std::back_inserter(items_));
  }

  // The next item; with `wait`, waits for one. nullopt: none queued (without `wait`), or stopped
  // with nothing left.
  std::optional<T> Pop(bool wait) {
    absl::MutexLock lock(&mu_);
    if (wait) mu_.Await(absl::Condition(this, &WorkQueue::Ready));
    if (items_.empty()) return std::nullopt;
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    return item;
  }
  // Waits for items and takes all of them; empty: stopped with nothing left.
  std::deque<T> PopAll() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &WorkQueue::Ready));
    std::deque<T> all;
    all.swap(items_);
    return all;
  }

  // Whether nothing is queued at this moment (a producer may push right after).
  bool Empty() {
    absl::MutexLock lock(&mu_);
    return items_.empty();
  }

  // From now, Pop and PopAll return what is queued without waiting, then nothing.
  void Stop() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }

 private:
  bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !items_.empty(); }

  absl::Mutex mu_;
  std::deque<T> items_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_WORK_QUEUE_H_
