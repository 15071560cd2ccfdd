// UnrecordedRefusals: refused cartridge openings whose evidence (the CARTRIDGE_OPEN_REFUSED audit
// entry) could not be written, even after retries.
//
// The refusal itself always reaches the nurse; what could be lost is the proof that it happened.
// CartridgeService adds each such refusal here, so it is never dropped silently: the compliance
// report reads it to say whether every refusal of a period was recorded, and the server may expose
// the count. Kept in memory only (the store is what failed), so it knows about this process's
// lifetime. Thread-safe.
#ifndef STERITRACK_SERVER_CORE_UNRECORDED_REFUSALS_H_
#define STERITRACK_SERVER_CORE_UNRECORDED_REFUSALS_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace steritrack {

class UnrecordedRefusals {
 public:
  struct Refusal {
    absl::Time at;
    std::string actor;
    std::string gtin;
    std::string serial;
    int64_t treatment_id = 0;
    std::string reason;  // of the refusal, e.g. LOT_RECALLED
    std::string error;   // why its record could not be written
  };

  // The most recent refusals kept in full; older ones are only counted.
  static constexpr size_t kMaxKept = 1000;

  UnrecordedRefusals() = default;
  UnrecordedRefusals(const UnrecordedRefusals&) = delete;
  UnrecordedRefusals& operator=(const UnrecordedRefusals&) = delete;

  void Add(Refusal refusal) {
    absl::MutexLock lock(&mu_);
    ++count_;
    kept_.push_back(std::move(refusal));
    if (kept_.size() > kMaxKept) {
      earliest_dropped_ = std::min(earliest_dropped_, kept_.front().at);
      latest_dropped_ = std::max(latest_dropped_, kept_.front().at);
      kept_.pop_front();
    }
  }

  // How many refusals went unrecorded since this process started.
  int64_t count() const {
    absl::MutexLock lock(&mu_);
    return count_;
  }

  // True when a refusal in [begin, end) went unrecorded, or may have (it is no longer kept).
  bool AnyBetween(absl::Time begin, absl::Time end) const {
    absl::MutexLock lock(&mu_);
    // The dropped ones are known only by their time span: any overlap may hold one.
    if (earliest_dropped_ < end && latest_dropped_ >= begin) return true;
    for (const Refusal& r : kept_) {
      if (r.at >= begin && r.at < end) return true;
    }
    return false;
  }

  // The kept refusals, oldest first.
  std::vector<Refusal> Recent() const {
    absl::MutexLock lock(&mu_);
    return {kept_.begin(), kept_.end()};
  }

 private:
  mutable absl::Mutex mu_;
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Refusal> kept_ ABSL_GUARDED_BY(mu_);
  absl::Time earliest_dropped_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::Time latest_dropped_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_CORE_UNRECORDED_REFUSALS_H_
