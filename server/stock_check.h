// DailyStockCheck: the passing of a day, for par levels (issue 15). Units expire, or enter a
// product's expiry window, without any write; this re-evaluates every par level once at start-up
// and again just after every local midnight in the clinic's time zone, and core records each
// crossing once (CartridgeService::CheckStockLevels). Owned by steritrackd's main; one background
// thread.
#ifndef STERITRACK_SERVER_STOCK_CHECK_H_
#define STERITRACK_SERVER_STOCK_CHECK_H_

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/core/cartridge_service.h"
#include "spdlog/logger.h"

namespace steritrack {

// The first local midnight in `zone` strictly after `now` (the start of the next civil day; on a
// day without a midnight, its first instant).
absl::Time NextLocalMidnight(absl::Time now, absl::TimeZone zone);

// The actor the daily check's audit entries name.
inline constexpr char kStockCheckActor[] = "steritrackd (daily stock check)";

class DailyStockCheck {
 public:
  // REQUIRES: `core` and `log` outlive this object.
  DailyStockCheck(CartridgeService* core, absl::TimeZone zone, spdlog::logger& log);
  ~DailyStockCheck();  // stops the thread
  DailyStockCheck(const DailyStockCheck&) = delete;
  DailyStockCheck& operator=(const DailyStockCheck&) = delete;

 private:
  void Run();
  // One check; false when it failed (logged) and should be retried soon.
  bool CheckOnce();

  CartridgeService* const core_;
  const absl::TimeZone zone_;
  spdlog::logger& log_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_STOCK_CHECK_H_
