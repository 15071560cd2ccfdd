// BoundedStore: the bounded request queue in front of the database.
//
// Wraps any Store and admits at most `max_writes` write transactions (the one holding the single
// writer plus those waiting for it) and `max_reads` read transactions (those reading plus those
// waiting for a reader connection) at a time. One more is refused at once with RESOURCE_EXHAUSTED
// (reason SERVER_BUSY): under overload a caller learns within microseconds to come back later,
// instead of queueing behind work the database cannot finish before the caller's deadline, and
// the server recovers as soon as the queue drains. Thread-safe.
#ifndef STERITRACK_SERVER_STORAGE_BOUNDED_STORE_H_
#define STERITRACK_SERVER_STORAGE_BOUNDED_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "steritrack/store.h"

namespace steritrack {

struct BoundedStoreOptions {
  int max_writes = 64;  // write transactions running or waiting; at least 1
  int max_reads = 64;   // read transactions running or waiting; at least 1
};

class BoundedStore final : public Store {
 public:
  // REQUIRES: `base` outlives this store and every transaction it hands out.
  BoundedStore(Store* base, BoundedStoreOptions options);

  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginRead() override;
  absl::StatusOr<std::unique_ptr<WriteTransaction>> BeginWrite() override;
  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginLaneRead() override;

  // A place in the queue for a call that waits outside the store, in the server's lanes
  // (server/rpc/call_lanes.h): taken when the call is queued, given back when the returned object
  // is destroyed; SERVER_BUSY when the queue is full. While a thread runs such a call inside an
  // AdmittedScope, its transactions take no second place.
  using Place = std::shared_ptr<void>;
  absl::StatusOr<Place> AdmitWrite();
  absl::StatusOr<Place> AdmitRead();
  // Whether the calling thread runs inside an AdmittedScope (work handed to another thread takes
  // it along: server/rpc/background_lane.h).
  static bool AdmittedHere() { return admitted_; }
  class AdmittedScope {
   public:
    AdmittedScope() : previous_(admitted_) { admitted_ = true; }
    ~AdmittedScope() { admitted_ = previous_; }
    AdmittedScope(const AdmittedScope&) = delete;
    AdmittedScope& operator=(const AdmittedScope&) = delete;

   private:
    const bool previous_;
  };

  // Write transactions running or waiting for the writer now (the writer queue's depth).
  int writes_in_flight() const { return writes_.load(std::memory_order_relaxed); }
  int reads_in_flight() const { return reads_.load(std::memory_order_relaxed); }
  // How many transactions were refused since start, for logs and metrics.
  int64_t writes_refused() const { return writes_refused_.load(std::memory_order_relaxed); }
  int64_t reads_refused() const { return reads_refused_.load(std::memory_order_relaxed); }

 private:
  // BeginRead and BeginLaneRead: `begin` of the base store, behind a place in the read queue.
  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginReadWith(
      absl::StatusOr<std::unique_ptr<ReadTransaction>> (Store::*begin)());

  static inline thread_local bool admitted_ = false;
  Store* const base_;
  const BoundedStoreOptions options_;
  std::atomic<int> writes_{0};
  std::atomic<int> reads_{0};
  std::atomic<int64_t> writes_refused_{0};
  std::atomic<int64_t> reads_refused_{0};
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_STORAGE_BOUNDED_STORE_H_
