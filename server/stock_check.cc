#include "server/stock_check.h"

#include <string>
#include <vector>

namespace steritrack {

absl::Time NextLocalMidnight(absl::Time now, absl::TimeZone zone) {
  const absl::CivilDay tomorrow = absl::ToCivilDay(now, zone) + 1;
  const absl::TimeZone::TimeInfo at = zone.At(absl::CivilSecond(tomorrow));
  // A midnight skipped by a clock change: the day starts at the change itself.
  return at.kind == absl::TimeZone::TimeInfo::SKIPPED ? at.trans : at.pre;
}

DailyStockCheck::DailyStockCheck(CartridgeService* core, absl::TimeZone zone, spdlog::logger& log)
    : core_(core), zone_(zone), log_(log), thread_([this] { Run(); }) {}

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
  bool ok = CheckOnce();
  while (true) {
    const absl::Time now = absl::Now();
    // A second past midnight, so that the clock has surely moved to the new day.
    const absl::Time next =
        ok ? NextLocalMidnight(now, zone_) + absl::Seconds(1) : now + absl::Minutes(1);
    if (stop_.WaitForNotificationWithTimeout(next - now)) return;
    ok = CheckOnce();
  }
}

}  // namespace steritrack
