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

DailyStockCheck::DailyStockCheck(CartridgeService* core, const Clock* clock, spdlog::logger& log,
                                 SiteDirectory* sites)
    : core_(core), clock_(clock), log_(log), sites_(sites), thread_([this] { Run(); }) {}

DailyStockCheck::~DailyStockCheck() {
  stop_.Notify();
  thread_.join();
}

bool DailyStockCheck::CheckOnce() {
  std::vector<std::string> sites = {std::string(kDefaultSite)};
  if (sites_ != nullptr) {
    absl::StatusOr<std::vector<std::string>> all = sites_->ListSites();
    if (!all.ok()) {
      log_.error("daily stock check: cannot list the sites, retrying in a minute: {}",
                 std::string(all.status().message()));
      return false;
    }
    sites = *std::move(all);
  }
  // Every site's stock, each against its own par levels (a crossing is recorded once, so a retry
  // after one site failed does not repeat the others').
  bool ok = true;
  for (const std::string& site : sites) {
    SiteScope scope(site);
    absl::StatusOr<std::vector<Event>> crossed =
        core_->CheckStockLevels(WriteContext{.actor = kStockCheckActor});
    if (!crossed.ok()) {
      log_.error("daily stock check of site {} failed, retrying in a minute: {}", site,
                 std::string(crossed.status().message()));
      ok = false;
      continue;
    }
    for (const Event& e : *crossed) {
      if (site == kDefaultSite) {
        log_.warn("{}: {}", e.action, e.detail);
      } else {
        log_.warn("site {}: {}: {}", site, e.action, e.detail);
      }
    }
  }
  return ok;
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
