#include "server/storage/bounded_store.h"

#include <algorithm>
#include <string>
#include <utility>

#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

// Holds one place in a queue until destroyed.
class Slot {
 public:
  explicit Slot(std::atomic<int>* count) : count_(count) {}
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  ~Slot() { count_->fetch_sub(1, std::memory_order_acq_rel); }

 private:
  std::atomic<int>* count_;
};

// Takes a place in `count` unless `limit` are taken; otherwise SERVER_BUSY.
absl::Status Admit(std::atomic<int>& count, std::atomic<int64_t>& refused, int limit,
                   std::string_view queue) {
  int now = count.load(std::memory_order_relaxed);
  while (true) {
    if (now >= limit) {
      refused.fetch_add(1, std::memory_order_relaxed);
      return MakeError(absl::StatusCode::kResourceExhausted,
                       StrCat("the server is busy: ", limit, " ", queue,
                              " are already running or waiting for the database; retry shortly"),
                       "SERVER_BUSY", {{"queue", std::string(queue)}, {"limit", StrCat(limit)}});
    }
    if (count.compare_exchange_weak(now, now + 1, std::memory_order_acq_rel)) {
      return absl::OkStatus();
    }
  }
}

class BoundedRead final : public ReadTransaction {
 public:
  BoundedRead(std::unique_ptr<ReadTransaction> base, std::atomic<int>* count)
      : slot_(count), base_(std::move(base)) {}
  CartridgeReads& cartridges() override { return base_->cartridges(); }
  SterilizationReads& sterilization() override { return base_->sterilization(); }
  AuditLogReads& audit() override { return base_->audit(); }
  ReportReads& reports() override { return base_->reports(); }
  AccessReads& access() override { return base_->access(); }

 private:
  Slot slot_;                              // given back after the transaction has ended
  std::unique_ptr<ReadTransaction> base_;  // destroyed first (members go in reverse order)
};

class BoundedWrite final : public WriteTransaction {
 public:
  BoundedWrite(std::unique_ptr<WriteTransaction> base, std::atomic<int>* count)
      : slot_(count), base_(std::move(base)) {}
  CartridgeWrites& cartridges() override { return base_->cartridges(); }
  SterilizationWrites& sterilization() override { return base_->sterilization(); }
  AuditLogWrites& audit() override { return base_->audit(); }
  ReportReads& reports() override { return base_->reports(); }
  AccessWrites& access() override { return base_->access(); }
  absl::Status Commit() override { return base_->Commit(); }

 private:
  Slot slot_;                               // given back after the transaction has ended
  std::unique_ptr<WriteTransaction> base_;  // destroyed first (members go in reverse order)
};

}  // namespace

BoundedStore::BoundedStore(Store* base, BoundedStoreOptions options)
    : base_(base),
      options_{.max_writes = std::max(1, options.max_writes),
               .max_reads = std::max(1, options.max_reads)} {}

absl::StatusOr<std::unique_ptr<ReadTransaction>> BoundedStore::BeginRead() {
  return BeginReadWith(&Store::BeginRead);
}

absl::StatusOr<std::unique_ptr<ReadTransaction>> BoundedStore::BeginLaneRead() {
  return BeginReadWith(&Store::BeginLaneRead);
}

absl::StatusOr<std::unique_ptr<ReadTransaction>> BoundedStore::BeginReadWith(
    absl::StatusOr<std::unique_ptr<ReadTransaction>> (Store::*begin)()) {
  if (admitted_) return (base_->*begin)();  // its call holds a place already
  if (absl::Status s = Admit(reads_, reads_refused_, options_.max_reads, "reads"); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::unique_ptr<ReadTransaction>> base = (base_->*begin)();
  if (!base.ok()) {
    reads_.fetch_sub(1, std::memory_order_acq_rel);
    return base.status();
  }
  return std::make_unique<BoundedRead>(*std::move(base), &reads_);
}

absl::StatusOr<std::unique_ptr<WriteTransaction>> BoundedStore::BeginWrite() {
  if (admitted_) return base_->BeginWrite();  // its call holds a place already
  if (absl::Status s = Admit(writes_, writes_refused_, options_.max_writes, "writes"); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::unique_ptr<WriteTransaction>> base = base_->BeginWrite();
  if (!base.ok()) {
    writes_.fetch_sub(1, std::memory_order_acq_rel);
    return base.status();
  }
  return std::make_unique<BoundedWrite>(*std::move(base), &writes_);
}

absl::StatusOr<BoundedStore::Place> BoundedStore::AdmitWrite() {
  RETURN_IF_ERROR(Admit(writes_, writes_refused_, options_.max_writes, "writes"));
  return std::make_shared<Slot>(&writes_);
}

absl::StatusOr<BoundedStore::Place> BoundedStore::AdmitRead() {
  RETURN_IF_ERROR(Admit(reads_, reads_refused_, options_.max_reads, "reads"));
  return std::make_shared<Slot>(&reads_);
}

}  // namespace steritrack
