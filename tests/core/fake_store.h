// Test doubles for core: an in-memory Store, a Store wrapper that fails on demand, and a FakeClock.
//
// FakeStore follows the contracts in steritrack/store.h: one writer at a time (a write transaction
// holds the writer lock from BeginWrite() until Commit() or destruction); a write transaction works
// on a private copy of the whole state taken at begin and publishes it only on Commit(), so
// destroying it without Commit() discards every change; reads see the state as of their
// BeginRead(). Uniqueness and write-once rules mirror the schema: (gtin, lot) and (gtin, serial)
// are unique, a unit has at most one use, one disposal, one discard, and a request id is stored
// once; an item serial, a steriliser name and (steriliser, cycle number) are unique, a load has at
// most one set of parameters, one BI and one CI per indicator type; a token's secret hash is
// unique, its name unique among tokens not revoked, and revocation happens once.
//
// FaultInjectingStore wraps any Store (this fake or the SQLite store) and fails the next commit or
// begin on demand, the way leveldb's fault-injection Env wraps a real one.
//
// All three classes are safe to share between threads; each transaction is used by one thread.
#ifndef STERITRACK_TESTS_CORE_FAKE_STORE_H_
#define STERITRACK_TESTS_CORE_FAKE_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "steritrack/clock.h"
#include "steritrack/model.h"
#include "steritrack/sterilization.h"
#include "steritrack/store.h"

namespace steritrack {

// Everything a FakeStore holds. Cartridges store only lot.id; the Lot is joined on read. Loads
// store item_ids; sterilizer_name and item_serials are joined on read.
struct FakeStoreState {
  std::map<int64_t, Lot> lots;
  std::map<int64_t, Cartridge> cartridges;
  std::map<int64_t, Treatment> treatments;
  std::vector<Event> events;  // in seq order
  std::map<std::string, StoredRequest> requests;
  std::map<int64_t, ReusableItem> items;
  std::map<int64_t, Sterilizer> sterilizers;
  std::map<int64_t, Load> loads;
  std::map<int64_t, BowieDickTest> bowie_dick_tests;
  std::vector<ItemUse> item_uses;  // in insertion order
  std::map<int64_t, ApiToken> tokens;
  std::map<std::string, ParLevel> par_levels;
  int64_t next_lot_id = 1;
  int64_t next_cartridge_id = 1;
  int64_t next_treatment_id = 1;
  int64_t next_event_seq = 1;
  int64_t next_item_id = 1;
  int64_t next_sterilizer_id = 1;
  int64_t next_load_id = 1;
  int64_t next_bowie_dick_id = 1;
  int64_t next_token_id = 1;
  int64_t audit_head_seq = 0;
  std::string audit_head_hash;
  std::optional<AuditCheckpoint> audit_checkpoint;
};

class FakeStore : public Store {
 public:
  FakeStore() = default;
  FakeStore(const FakeStore&) = delete;
  FakeStore& operator=(const FakeStore&) = delete;

  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginRead() override;
  absl::StatusOr<std::unique_ptr<WriteTransaction>> BeginWrite() override;

  // A copy of the committed state, for assertions.
  FakeStoreState Snapshot() const;
  // Number of successful commits so far.
  int commits() const { return commits_.load(); }
  // Tampering, for tests of the audit-trail check: removes the committed event `seq`, leaving a
  // gap that core's audit chain verification reports.
  void RemoveEventForTest(int64_t seq);
  // Tampering: sets a committed load's release state past the schema's guards.
  void ForceLoadReleaseStateForTest(int64_t load_id, ReleaseState state,
                                    const Signature& signature);
  // Tampering: rewrites the committed event `seq`'s detail without touching its hash.
  void AlterEventForTest(int64_t seq, std::string_view detail);

 private:
  friend class FakeWriteTransaction;
  void Publish(FakeStoreState state);

  std::mutex writer_mu_;  // held by the one live write transaction
  mutable absl::Mutex state_mu_;
  FakeStoreState state_ ABSL_GUARDED_BY(state_mu_);
  std::atomic<int> commits_{0};
};

// Forwards to `base`; each flag, once set, makes the next such call fail with UNAVAILABLE (and
// clears itself). A failed commit leaves the base transaction uncommitted, so it rolls back.
class FaultInjectingStore : public Store {
 public:
  explicit FaultInjectingStore(Store* base) : base_(base) {}  // REQUIRES: base outlives this

  absl::StatusOr<std::unique_ptr<ReadTransaction>> BeginRead() override;
  absl::StatusOr<std::unique_ptr<WriteTransaction>> BeginWrite() override;

  std::atomic<bool> fail_next_commit{false};
  std::atomic<bool> fail_next_begin_write{false};
  std::atomic<bool> fail_next_begin_read{false};

  // Hooks for the tests of waiting and giving up: called at the start of every BeginWrite, and
  // right after every commit that succeeded. Set them before the calls they watch start.
  std::function<void()> on_begin_write;
  std::function<void()> after_commit;
  // Write transactions that ended without a commit (refused, failed, or abandoned by core).
  std::atomic<int> writes_rolled_back{0};

 private:
  Store* const base_;
};

// A Clock that stands still until told to move.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time now) : now_(now) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Set(absl::Time now) {
    absl::MutexLock lock(&mu_);
    now_ = now;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace steritrack

#endif  // STERITRACK_TESTS_CORE_FAKE_STORE_H_
