#include "server/stock_check.h"

#include <algorithm>
#include <string>
#include <vector>

namespace steritrack {

absl::Time NextLocalMidnight(absl::Time now, absl::TimeZone zone) {
  const absl::CivilDay tomorrow = absl::ToCivilDay(now, zone) + 1;
  const absl::TimeZone::TimeInfo at = zone.At(absl::CivilSecond(tomorrow));
  // A midnight skipped by a clock change: the day starts at the change itself.
  return at.kind == absl::TimeZone::TimeInfo::SKIPPED ? at.trans : at.pre;
}

DailyStockCheck::DailyStockCheck(CartridgeService* core, const Clock* clock, spdlog::logger& log)
    : core_(core), clock_(clock), log_(log), thread_([this] { Run(); }) {}

DailyStockCheck::~DailyStockCheck() {
  stop_.Notify();
  thread_.join();
}

bool DailyStockCheck::CheckOnce() {
  absl::StatusOr<std::vector<Event>> crossed =
      core_->CheckStockLevels(WriteContext{.actor = kStockCheckActor});
  if (!crossed.ok()) {
    log_.error("daily stock check failed, retrying in a minute: {}",
               std::string(crossed.status().message()));
    return false;
  }
  for (const Event& e : *crossed) log_.warn("{}: {}", e.action, e.detail);
  return true;
}

void DailyStockCheck::Run() {
  const absl::TimeZone zone = core_->clinic_time_zone();
  absl::CivilDay checked = absl::ToCivilDay(clock_->Now(), zone);
  bool ok = CheckOnce();
  absl::Time retry_at = clock_->Now() + kRetry;
  while (true) {
    const absl::Time now = clock_->Now();
    // Wake a second past the next midnight, after a failure at the retry, and in any case within
    // kMaxSleep: the day is read from the clock, never counted from sleeps.
    absl::Time wake = ok ? NextLocalMidnight(now, zone) + absl::Seconds(1) : retry_at;
    wake = std::min(wake, now + kMaxSleep);
    if (stop_.WaitForNotificationWithTimeout(std::max(wake - now, absl::ZeroDuration()))) return;
    const absl::Time later = clock_->Now();
    const absl::CivilDay today = absl::ToCivilDay(later, zone);
    if (ok && today == checked) continue;
    if (!ok && later < retry_at) continue;
    checked = today;
    ok = CheckOnce();
    retry_at = clock_->Now() + kRetry;
  }
}

}  // namespace steritrack
