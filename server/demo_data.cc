#include "server/demo_data.h"

#include "server/core/cartridge_service.h"
#include "steritrack/status_macros.h"

namespace steritrack {
namespace {

// The expired lot must be received while it was still in date (expired stock is refused at receipt),
// so the demo replays that delivery at a time in the past.
class FixedClock final : public Clock {
 public:
  explicit FixedClock(absl::Time t) : t_(t) {}
  absl::Time Now() const override { return t_; }
  void Set(absl::Time t) { t_ = t; }

 private:
  absl::Time t_;
};

}  // namespace

absl::Status LoadDemoDataIfEmpty(Store& store, const Clock& clock) {
  {
    ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store.BeginRead());
    ASSIGN_OR_RETURN(std::vector<Lot> lots, tx->ListLots({.limit = 1}));
    if (!lots.empty()) return absl::OkStatus();
  }
  const absl::Time now = clock.Now();
  FixedClock demo_clock(absl::FromCivil(absl::CivilDay(2025, 12, 1), absl::UTCTimeZone()));
  CartridgeService core({.store = &store, .clock = &demo_clock});
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
  RETURN_IF_ERROR(core.RecallLot(demo, "09521234543213", "AB12",
                                 "FSCA-2026-114: sterile barrier may be breached")
                      .status());
  // A treatment in progress in room 3 that already used CRT000101.
  ASSIGN_OR_RETURN(Treatment t, core.StartTreatment(demo, "3", "nurse.demo", "CLIENT-0001"));
  RETURN_IF_ERROR(core.Open(demo, "(01)09506000134352(21)CRT000101", t.id).status());
  return absl::OkStatus();
}

}  // namespace steritrack
