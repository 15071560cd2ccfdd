// The daily stock check's schedule (issue 15): the next local midnight in the clinic's zone, across
// clock changes, and the check itself run by the thread at start-up against a real core service.
#include "server/stock_check.h"

#include <memory>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/cartridge_service.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/null_sink.h"
#include "tests/core/fake_store.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

absl::TimeZone Zone(const char* name) {
  absl::TimeZone zone;
  EXPECT_TRUE(absl::LoadTimeZone(name, &zone)) << name;
  return zone;
}

absl::Time At(int y, int mo, int d, int h, absl::TimeZone zone) {
  return zone.At(absl::CivilSecond(y, mo, d, h, 0, 0)).pre;
}

TEST(NextLocalMidnightTest, IsTheStartOfTheNextClinicDay) {
  const absl::TimeZone sydney = Zone("Australia/Sydney");
  EXPECT_EQ(NextLocalMidnight(At(2026, 12, 1, 10, sydney), sydney), At(2026, 12, 2, 0, sydney));
  // Midnight itself belongs to its day: the next one is a day later.
  EXPECT_EQ(NextLocalMidnight(At(2026, 12, 2, 0, sydney), sydney), At(2026, 12, 3, 0, sydney));
  EXPECT_EQ(NextLocalMidnight(
                absl::FromCivil(absl::CivilSecond(2026, 12, 31, 23, 59, 59), absl::UTCTimeZone()),
                absl::UTCTimeZone()),
            absl::FromCivil(absl::CivilSecond(2027, 1, 1, 0, 0, 0), absl::UTCTimeZone()));
}

TEST(NextLocalMidnightTest, ASkippedMidnightStartsTheDayAtTheChange) {
  // Chile moves its clocks from 00:00 to 01:00 on the first Sunday of September (2026-09-06):
  // that day has no midnight, and begins at the change.
  const absl::TimeZone santiago = Zone("America/Santiago");
  const absl::TimeZone::TimeInfo skipped = santiago.At(absl::CivilSecond(2026, 9, 6, 0, 0, 0));
  ASSERT_EQ(skipped.kind, absl::TimeZone::TimeInfo::SKIPPED);
  const absl::Time next = NextLocalMidnight(At(2026, 9, 5, 12, santiago), santiago);
  EXPECT_EQ(next, skipped.trans);
  EXPECT_EQ(absl::ToCivilDay(next, santiago), absl::CivilDay(2026, 9, 6));
  EXPECT_EQ(absl::ToCivilDay(next - absl::Seconds(1), santiago), absl::CivilDay(2026, 9, 5));
}

TEST(NextLocalMidnightTest, ARepeatedMidnightIsItsFirstOccurrence) {
  // Cuba moves back from 01:00 to 00:00 on the first Sunday of November (2026-11-01): midnight
  // comes twice; the day starts at the first.
  const absl::TimeZone havana = Zone("America/Havana");
  const absl::TimeZone::TimeInfo repeated = havana.At(absl::CivilSecond(2026, 11, 1, 0, 0, 0));
  ASSERT_EQ(repeated.kind, absl::TimeZone::TimeInfo::REPEATED);
  EXPECT_EQ(NextLocalMidnight(At(2026, 10, 31, 12, havana), havana), repeated.pre);
  EXPECT_LT(repeated.pre, repeated.post);
}

TEST(DailyStockCheckTest, ChecksAtStartUpAndRecordsACrossingOnce) {
  FakeClock clock(absl::FromCivil(absl::CivilSecond(2026, 11, 26, 10, 0, 0), absl::UTCTimeZone()));
  FakeStore store;
  CartridgeService core({.store = &store, .sha256 = TestSha256(), .clock = &clock});
  const WriteContext ctx{.actor = "mgr.ana"};
  ASSERT_TRUE(core.Receive(ctx, {"(01)09506000134352(17)261130(10)L1(21)U1",
                                 "(01)09506000134352(17)261130(10)L1(21)U2"})
                  .ok());
  ASSERT_TRUE(core.SetParLevel(ctx, "09506000134352", 1, 0).ok());
  clock.Set(absl::FromCivil(absl::CivilSecond(2026, 12, 1, 0, 0, 5), absl::UTCTimeZone()));
  spdlog::logger log("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto count = [&store] {
    int n = 0;
    for (const Event& e : store.Snapshot().events) n += e.action == "STOCK_BELOW_PAR" ? 1 : 0;
    return n;
  };
  {
    DailyStockCheck check(&core, &clock, log);
    for (int i = 0; i < 200 && count() == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  }  // stops the thread
  EXPECT_EQ(count(), 1);
  {
    DailyStockCheck again(&core, &clock, log);  // a restart: nothing new
  }
  EXPECT_EQ(count(), 1);
  std::vector<Event> events = store.Snapshot().events;
  EXPECT_EQ(events.back().actor, kStockCheckActor);
}

}  // namespace
}  // namespace steritrack
