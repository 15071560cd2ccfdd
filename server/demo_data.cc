#include "server/demo_data.h"

#include "server/core/cartridge_service.h"
#include "server/core/sterilization_service.h"
#include "steritrack/status_macros.h"

namespace steritrack {
namespace {

// The expired lot must be received while it was still in date (expired stock is refused at
// receipt), so the demo replays that delivery at a time in the past.
class FixedClock final : public Clock {
 public:
  explicit FixedClock(absl::Time t) : t_(t) {}
  absl::Time Now() const override { return t_; }
  void Set(absl::Time t) { t_ = t; }

 private:
  absl::Time t_;
};

// Reusable equipment: a pre-vacuum and a gravity steriliser, two handpieces and a tray. HP-0001
// went through a released load on the gravity steriliser an hour ago (gravity needs no Bowie-Dick
// test), so `item use HP-0001 --treatment 1` works; HP-0002 and the tray are DIRTY, waiting to be
// processed.
absl::Status LoadSterilizationDemo(Store& store, FixedClock& demo_clock, const Sha256& sha256,
                                   const WriteContext& demo) {
  {
    // Only into a store without sterilisers, like the cartridge part only into one without lots.
    ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store.BeginRead());
    ASSIGN_OR_RETURN(std::vector<Sterilizer> sterilizers,
                     tx->sterilization().ListSterilizers(0, 1));
    if (!sterilizers.empty()) return absl::OkStatus();
  }
  const absl::Time now = demo_clock.Now();
  SterilizationService sterilization({.store = &store, .sha256 = &sha256, .clock = &demo_clock});
  demo_clock.Set(now - absl::Hours(2));
  RETURN_IF_ERROR(
      sterilization.CreateSterilizer(demo, "AUTOCLAVE1", SterilizerType::kPreVacuum).status());
  RETURN_IF_ERROR(
      sterilization.CreateSterilizer(demo, "AUTOCLAVE2", SterilizerType::kGravity).status());
  for (const char* serial : {"HP-0001", "HP-0002"}) {
    RETURN_IF_ERROR(
        sterilization
            .CreateItem(demo, {.serial = serial, .type = "handpiece", .ifu_max_cycles = 500})
            .status());
  }
  RETURN_IF_ERROR(
      sterilization
          .CreateItem(demo, {.serial = "TRAY-0001", .type = "tray", .ifu_max_cycles = 1000})
          .status());

  demo_clock.Set(now - absl::Hours(1));
  RETURN_IF_ERROR(sterilization.PackItem(demo, "HP-0001").status());
  ASSIGN_OR_RETURN(Load load, sterilization.CreateLoad(demo, {.sterilizer = "AUTOCLAVE2",
                                                              .cycle_number = 1,
                                                              .cycle_type = "121C-30MIN",
                                                              .item_serials = {"HP-0001"}}));
  demo_clock.Set(now - absl::Minutes(15));
  RETURN_IF_ERROR(sterilization
                      .RecordParameters(demo, load.id,
                                        {.started_at = now - absl::Minutes(55),
                                         .ended_at = now - absl::Minutes(20),
                                         .exposure_seconds = 1800,
                                         .temperature_c = 121.5,
                                         .pressure_kpa = 205,
                                         .passed = true})
                      .status());
  RETURN_IF_ERROR(
      sterilization.RecordChemicalIndicator(demo, load.id, 5, IndicatorResult::kPass).status());
  RETURN_IF_ERROR(sterilization.ReleaseLoad(demo, load.id, "parameters and CI reviewed").status());
  demo_clock.Set(now);
  return absl::OkStatus();
}

}  // namespace

absl::Status LoadDemoDataIfEmpty(Store& store, const Clock& clock, const Sha256& sha256) {
  {
    ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store.BeginRead());
    ASSIGN_OR_RETURN(std::vector<Lot> lots, tx->cartridges().ListLots({.limit = 1}));
    if (!lots.empty()) return absl::OkStatus();
  }
  const absl::Time now = clock.Now();
  FixedClock demo_clock(absl::FromCivil(absl::CivilDay(2025, 12, 1), absl::UTCTimeZone()));
  CartridgeService core({.store = &store, .sha256 = &sha256, .clock = &demo_clock});
  const WriteContext demo{.actor = "demo-setup"};

  // Expired lot LOT-2023X (expiry 2026-01-31), received before it expired.
  RETURN_IF_ERROR(core.Receive(demo, {"(01)09506000134352(17)260131(10)LOT-2023X(21)CRT000301",
                                      "(01)09506000134352(17)260131(10)LOT-2023X(21)CRT000302"})
                      .status());
  demo_clock.Set(now);
  // Good lot LOT-2024A (expiry 2030-12-31).
  RETURN_IF_ERROR(core.Receive(demo, {"(01)09506000134352(17)301231(10)LOT-2024A(21)CRT000101",
                                      "(01)09506000134352(17)301231(10)LOT-2024A(21)CRT000102",
                                      "(01)09506000134352(17)301231(10)LOT-2024A(21)CRT000103",
                                      "(01)09506000134352(17)301231(10)LOT-2024A(21)CRT000104",
                                      "(01)09506000134352(17)301231(10)LOT-2024A(21)CRT000105",
                                      "(01)09506000134352(17)301231(10)LOT-2024A(21)CRT000106"})
                      .status());
  // Lot AB12 of another product (expiry 2029-06-30), then recalled by the manufacturer.
  RETURN_IF_ERROR(core.Receive(demo, {"(01)09521234543213(17)290630(10)AB12(21)CRT000201",
                                      "(01)09521234543213(17)290630(10)AB12(21)CRT000202",
                                      "(01)09521234543213(17)290630(10)AB12(21)CRT000203"})
                      .status());
  // Par levels: the manager wants at least 4 openable units of the first product (6 in stock now,
  // 5 once the treatment below opens one: at par) and 2 of the second, which the recall below then
  // takes below par (STOCK_BELOW_PAR).
  RETURN_IF_ERROR(core.SetParLevel(demo, "09506000134352", 4, std::nullopt).status());
  RETURN_IF_ERROR(core.SetParLevel(demo, "09521234543213", 2, std::nullopt).status());
  RETURN_IF_ERROR(core.RecallLot(demo, "09521234543213", "AB12",
                                 "FSCA-2026-114: sterile barrier may be breached")
                      .status());
  // A treatment in progress in room 3 that already used CRT000101.
  ASSIGN_OR_RETURN(Treatment t, core.StartTreatment(demo, "3", "nurse.demo", "CLIENT-0001"));
  RETURN_IF_ERROR(core.Open(demo, "(01)09506000134352(21)CRT000101", t.id).status());
  return LoadSterilizationDemo(store, demo_clock, sha256, demo);
}

}  // namespace steritrack
