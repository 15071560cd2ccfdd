// DailyStockCheck: the passing of a day, for par levels (issue 15). Units expire, or enter a
// product's expiry window, without any write; this re-evaluates every par level once at start-up
// and again whenever the clinic's day has changed since the last check (looked at just after each
// local midnight, and at least every few minutes, so a suspended host or a clock step is caught
// up), and core records each crossing once (CartridgeService::CheckStockLevels). Owned by
// steritrackd's main; one background thread.
#ifndef STERITRACK_SERVER_STOCK_CHECK_H_
#define STERITRACK_SERVER_STOCK_CHECK_H_

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "server/core/cartridge_service.h"
#include "spdlog/logger.h"
#include "steritrack/clock.h"
#include "steritrack/site.h"

namespace steritrack {

// The first local midnight in `zone` strictly after `now` (the start of the next civil day; on a
// day whose midnight a clock change skips, the change itself).
absl::Time NextLocalMidnight(absl::Time now, absl::TimeZone zone);

// The actor the daily check's audit entries name.
inline constexpr char kStockCheckActor[] = "steritrackd (daily stock check)";

class DailyStockCheck {
 public:
  // The longest the thread sleeps before looking at the clock again.
  static constexpr absl::Duration kMaxSleep = absl::Minutes(5);
  // After a failed check (logged), the next attempt.
  static constexpr absl::Duration kRetry = absl::Minutes(1);

  // Days are `core`'s clinic days, time is `clock`'s (the one `core` uses). REQUIRES: `core`,
  // `clock` and `log` outlive this object.
  // With `sites`, every site of the database is checked, each in its SiteScope; without, the
  // default site. `sites` (may be null) outlives this object too.
  DailyStockCheck(CartridgeService* core, const Clock* clock, spdlog::logger& log,
                  SiteDirectory* sites = nullptr);
  ~DailyStockCheck();  // stops the thread, after a check in progress ends
  DailyStockCheck(const DailyStockCheck&) = delete;
  DailyStockCheck& operator=(const DailyStockCheck&) = delete;

 private:
  void Run();
  // One check; false when it failed (logged) and should be retried soon.
  bool CheckOnce();

  CartridgeService* const core_;
  const Clock* const clock_;
  spdlog::logger& log_;
  SiteDirectory* const sites_;  // may be null: the default site only
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_STOCK_CHECK_H_
