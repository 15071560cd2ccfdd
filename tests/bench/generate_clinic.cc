// steritrack_generate: builds a large clinic-chain database quickly, for the benchmarks at scale
// (issue 11, R8). Prints progress and figures; asserts nothing.
//
//   steritrack_generate --db big.db [--treatments 10000000] [--months 36] [--lot-size 1000]
//                       [--batch 20000] [--end 2026-12-01]
//
// Writes through the storage layer (OpenSqliteStore creates and migrates the schema, whatever its
// version) and appends every audit entry with core's audit_chain::Append, so the hash chain
// verifies (`steritrack audit verify`, AuditService.VerifyAuditTrail). Many records share one
// write transaction (--batch treatments each), so the build is bounded by SQLite's inserts and
// the hashing, not by fsync. The shape, over --months months ending at --end (UTC midnight;
// default: the first day of the current month), treatments evenly spread in time:
//   - 4 pre-vacuum sterilisers, a passing Bowie-Dick test each per day;
//   - a load every 10 treatments (sterilisers in turn, cycle numbers rising), 10 reusable items
//     (a pool of 400), parameters and a type-5 CI that pass, started halfway through the
//     previous load's treatments and released before its own first; each treatment uses one
//     item of the current load (an item-use record);
//   - a delivery of --lot-size units for every --lot-size treatments, one lot each (expiry two
//     years after receipt), received halfway through the previous lot's treatments;
//   - per treatment: started, one cartridge opened after 5 min, disposed after 30 min (1% late:
//     after 5 h; 0.1% never), treatment ended after 45 min, in rooms 1..48 by 200 clinicians.
// Audit entries, in time order: per treatment CARTRIDGE_RECEIVED, TREATMENT_STARTED,
// CARTRIDGE_OPENED, CARTRIDGE_DISPOSED, TREATMENT_ENDED (5); per load LOAD_CREATED,
// LOAD_PARAMETERS_RECORDED, LOAD_CI_RECORDED, LOAD_RELEASED (0.4 per treatment); per day
// BOWIE_DICK_RECORDED per steriliser; per lot LOT_CREATED: ~5.4 per treatment in all.
//
// Units are named so that a client can find them without reading the database: treatment i
// (from 0) opened serial "S<i>" of GTIN 09506000134352, lot "L<i / lot-size>".
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <queue>
#include <string>
#include <tuple>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/storage/sqlite_store.h"
#include "steritrack/audit_chain.h"
#include "steritrack/sha256.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace {

using steritrack::StrCat;

constexpr char kGtin[] = "09506000134352";
constexpr int kSterilizers = 4;
constexpr int kItemsPerLoad = 10;
constexpr int kItemPool = 400;
constexpr int kTreatmentsPerLoad = 10;
constexpr int kRooms = 48;
constexpr int kClinicians = 200;

struct Options {
  int64_t treatments = 10'000'000;
  int months = 36;
  int64_t lot_size = 1000;
  int64_t batch = 20'000;
  std::string end;  // YYYY-MM-DD; empty: the first day of the current month (UTC)
  std::string db = "steritrack-big.db";
};

// An audit entry waiting for its time: entries are appended in time order, across treatments.
struct Pending {
  absl::Time at;
  int64_t order;  // ties keep the order they were made in
  steritrack::Event event;
  bool operator>(const Pending& other) const {
    return at != other.at ? at > other.at : order > other.order;
  }
};

class Generator {
 public:
  Generator(const Options& options, steritrack::Store& store, const steritrack::Sha256& sha256,
            absl::Time start, absl::Time end)
      : options_(options),
        store_(store),
        sha256_(sha256),
        start_(start),
        step_((end - start) / options.treatments) {}

  absl::Status Run() {
    const auto began = std::chrono::steady_clock::now();
    auto last_report = began;
    int64_t done = 0;
    while (done < options_.treatments) {
      ASSIGN_OR_RETURN(std::unique_ptr<steritrack::WriteTransaction> tx, store_.BeginWrite());
      if (done == 0) RETURN_IF_ERROR(SetUp(*tx));
      const int64_t until = std::min(options_.treatments, done + options_.batch);
      for (; done < until; ++done) RETURN_IF_ERROR(Treatment(*tx, done));
      if (done == options_.treatments) RETURN_IF_ERROR(FinishUp(*tx));
      RETURN_IF_ERROR(tx->Commit());
      const auto now = std::chrono::steady_clock::now();
      if (now - last_report > std::chrono::seconds(5) || done == options_.treatments) {
        last_report = now;
        const double s = std::chrono::duration<double>(now - began).count();
        std::fprintf(stderr,
                     "  %lld treatments (%.1f%%), %lld audit entries, %.1f s: %.0f treatments/s, "
                     "%.0f audit entries/s\n",
                     static_cast<long long>(done), 100.0 * done / options_.treatments,
                     static_cast<long long>(appended_), s, done / s, appended_ / s);
      }
    }
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    return absl::OkStatus();
  }

  double seconds() const { return seconds_; }
  int64_t appended() const { return appended_; }
  int64_t loads() const { return loads_; }
  int64_t lots() const { return lots_; }

 private:
  void Emit(steritrack::Event e) {
    e.actor = e.actor.empty() ? "generator" : e.actor;
    const absl::Time at = e.at;
    pending_.push({at, order_++, std::move(e)});
  }

  // Appends, in time order, every pending entry due by `now`.
  absl::Status Flush(steritrack::WriteTransaction& tx, absl::Time now) {
    while (!pending_.empty() && pending_.top().at <= now) {
      RETURN_IF_ERROR(
          steritrack::audit_chain::Append(tx.audit(), sha256_, pending_.top().event).status());
      pending_.pop();
      ++appended_;
    }
    return absl::OkStatus();
  }

  absl::Status SetUp(steritrack::WriteTransaction& tx) {
    const absl::Time at = start_ - absl::Hours(24 * 7);
    for (int s = 0; s < kSterilizers; ++s) {
      ASSIGN_OR_RETURN(int64_t id, tx.sterilization().InsertSterilizer(
                                       {.name = StrCat("AUTOCLAVE-", s + 1),
                                        .type = steritrack::SterilizerType::kPreVacuum,
                                        .created_at = at}));
      sterilizers_.push_back({.id = id,
                              .name = StrCat("AUTOCLAVE-", s + 1),
                              .type = steritrack::SterilizerType::kPreVacuum,
                              .created_at = at});
      Emit({.at = at, .action = "STERILIZER_CREATED", .sterilizer_id = id, .after = "in_service"});
    }
    for (int i = 0; i < kItemPool; ++i) {
      steritrack::ReusableItem item{.serial = StrCat("HP", i),
                                    .type = i % 2 ? "handpiece" : "tray",
                                    .ifu_max_cycles = 1'000'000,
                                    .state = steritrack::ItemState::kDirty,
                                    .created_at = at};
      ASSIGN_OR_RETURN(item.id, tx.sterilization().InsertItem(item));
      items_.push_back(item);
      Emit({.at = at, .action = "ITEM_CREATED", .item_id = item.id, .after = "state=DIRTY"});
    }
    RETURN_IF_ERROR(Flush(tx, at));
    // The first lot and load, before the first treatment.
    RETURN_IF_ERROR(Delivery(tx, 0, start_ - absl::Hours(24)));
    RETURN_IF_ERROR(NewLoad(tx, start_ - absl::Hours(1)));
    return Flush(tx, start_ - absl::Hours(1));
  }

  absl::Status Treatment(steritrack::WriteTransaction& tx, int64_t i) {
    const absl::Time at = start_ + step_ * i;
    const absl::TimeZone utc = absl::UTCTimeZone();
    const absl::CivilDay day = absl::ToCivilDay(at, utc);
    if (day != last_day_) {
      last_day_ = day;
      const absl::Time morning = absl::FromCivil(day, utc);
      RETURN_IF_ERROR(Flush(tx, morning));
      for (const steritrack::Sterilizer& s : sterilizers_) {
        RETURN_IF_ERROR(tx.sterilization()
                            .InsertBowieDickTest({.sterilizer_id = s.id,
                                                  .day = day,
                                                  .result = steritrack::IndicatorResult::kPass,
                                                  .operator_name = "spd",
                                                  .at = morning})
                            .status());
        Emit({.at = morning,
              .actor = "spd",
              .action = "BOWIE_DICK_RECORDED",
              .sterilizer_id = s.id,
              .detail = "PASS"});
      }
    }
    // The next lot arrives halfway through the current one, the next load is sterilised halfway
    // through the current one's uses: every record and entry is made at its own time, so the
    // trail stays in time order.
    const int64_t next_lot_first = (i / options_.lot_size + 1) * options_.lot_size;
    if (i % options_.lot_size == options_.lot_size / 2 && next_lot_first < options_.treatments) {
      RETURN_IF_ERROR(Delivery(tx, next_lot_first, at));
    }
    if (i % kTreatmentsPerLoad == kTreatmentsPerLoad / 2) RETURN_IF_ERROR(NewLoad(tx, at));
    if (i % kTreatmentsPerLoad == 0) current_load_ = next_load_;
    RETURN_IF_ERROR(Flush(tx, at));
    const LotStock& stock = lots_by_index_.at(i / options_.lot_size);

    const std::string room = StrCat(1 + i % kRooms);
    const std::string clinician = StrCat("nurse", i % kClinicians);
    const absl::Time opened = at + absl::Minutes(5);
    const bool never = i % 1000 == 7;
    const bool late = i % 100 == 3;
    const absl::Time disposed = opened + (late ? absl::Hours(5) : absl::Minutes(30));
    const absl::Time ended = at + absl::Minutes(45);
    ASSIGN_OR_RETURN(int64_t tid, tx.cartridges().InsertTreatment({.room = room,
                                                                   .clinician = clinician,
                                                                   .client_ref = StrCat("C", i),
                                                                   .started_at = at,
                                                                   .started_by = clinician,
                                                                   .ended_at = ended,
                                                                   .ended_by = clinician}));
    const int64_t cid = stock.cartridge_ids[i % options_.lot_size];
    if (i % options_.lot_size == options_.lot_size - 1) lots_by_index_.erase(i / options_.lot_size);
    RETURN_IF_ERROR(tx.cartridges().RecordUse(
        cid, {.treatment_id = tid, .room = room, .at = opened, .by = clinician}));
    if (!never) {
      RETURN_IF_ERROR(tx.cartridges().RecordDisposal(
          cid, {.container_id = StrCat("SHARPS-", room), .at = disposed, .by = clinician}));
    }
    const steritrack::ReusableItem& item = items_[current_load_.items[i % kItemsPerLoad]];
    RETURN_IF_ERROR(tx.sterilization().RecordItemUse({.item_id = item.id,
                                                      .treatment_id = tid,
                                                      .load_id = current_load_.id,
                                                      .at = at + absl::Minutes(2),
                                                      .by = clinician}));

    Emit({.at = at,
          .actor = clinician,
          .action = "TREATMENT_STARTED",
          .treatment_id = tid,
          .detail = StrCat("room ", room, ", clinician ", clinician),
          .after = StrCat("state=STARTED room=", room)});
    Emit({.at = opened,
          .actor = clinician,
          .action = "CARTRIDGE_OPENED",
          .lot_id = stock.lot.id,
          .cartridge_id = cid,
          .treatment_id = tid,
          .detail = StrCat("opened for treatment ", tid, " in room ", room),
          .before = "state=RECEIVED",
          .after = StrCat("state=OPENED treatment=", tid, " room=", room)});
    if (!never) {
      Emit({.at = disposed,
            .actor = clinician,
            .action = "CARTRIDGE_DISPOSED",
            .lot_id = stock.lot.id,
            .cartridge_id = cid,
            .treatment_id = tid,
            .detail = StrCat("disposed in sharps container SHARPS-", room),
            .before = StrCat("state=OPENED treatment=", tid),
            .after = StrCat("state=DISPOSED container=SHARPS-", room)});
    }
    Emit({.at = ended,
          .actor = clinician,
          .action = "TREATMENT_ENDED",
          .treatment_id = tid,
          .detail = "1 cartridge(s) used",
          .before = "state=STARTED",
          .after = "state=ENDED"});
    return absl::OkStatus();
  }

  // A lot of --lot-size units for treatments first .. first + lot-size - 1, received at `at`.
  absl::Status Delivery(steritrack::WriteTransaction& tx, int64_t first, absl::Time at) {
    LotStock& stock = lots_by_index_[first / options_.lot_size];
    stock.lot = {.gtin = kGtin,
                 .lot = StrCat("L", first / options_.lot_size),
                 .expiry = absl::ToCivilDay(at, absl::UTCTimeZone()) + 730,
                 .created_at = at};
    ASSIGN_OR_RETURN(stock.lot.id, tx.cartridges().InsertLot(stock.lot));
    ++lots_;
    Emit({.at = at,
          .actor = "stock",
          .action = "LOT_CREATED",
          .lot_id = stock.lot.id,
          .detail = StrCat("lot ", stock.lot.lot, " of ", stock.lot.gtin),
          .after = StrCat("state=ACTIVE expiry=", absl::FormatCivilTime(stock.lot.expiry))});
    const int64_t count = std::min(options_.lot_size, options_.treatments - first);
    stock.cartridge_ids.assign(count, 0);
    for (int64_t u = 0; u < count; ++u) {
      ASSIGN_OR_RETURN(stock.cartridge_ids[u],
                       tx.cartridges().InsertCartridge({.gtin = kGtin,
                                                        .serial = StrCat("S", first + u),
                                                        .lot = stock.lot,
                                                        .received_at = at,
                                                        .received_by = "stock"}));
      Emit({.at = at,
            .actor = "stock",
            .action = "CARTRIDGE_RECEIVED",
            .lot_id = stock.lot.id,
            .cartridge_id = stock.cartridge_ids[u],
            .detail = StrCat("received into stock, lot ", stock.lot.lot),
            .after = "state=RECEIVED"});
    }
    return absl::OkStatus();
  }

  // A load of 10 items, started at `at` and released before the next 10 treatments use them.
  absl::Status NewLoad(steritrack::WriteTransaction& tx, absl::Time at) {
    steritrack::Sterilizer& s = sterilizers_[loads_ % kSterilizers];
    const int group = static_cast<int>(loads_ % (kItemPool / kItemsPerLoad));
    steritrack::Load load{.sterilizer_id = s.id,
                          .cycle_number = ++s.last_cycle_number,
                          .cycle_type = "134C-4MIN",
                          .shelf_life_days = 30,
                          .operator_name = "spd",
                          .created_at = at};
    next_load_.items.clear();
    for (int k = 0; k < kItemsPerLoad; ++k) {
      const int index = group * kItemsPerLoad + k;
      next_load_.items.push_back(index);
      load.item_ids.push_back(items_[index].id);
      ++items_[index].cycles;
    }
    ASSIGN_OR_RETURN(next_load_.id, tx.sterilization().InsertLoad(load));
    ++loads_;
    // Done and released within the time of the treatments before the load's first use.
    const absl::Time done = at + std::min(step_ * 2, absl::Minutes(40));
    const absl::Time released = at + std::min(step_ * 4, absl::Minutes(60));
    RETURN_IF_ERROR(tx.sterilization().RecordParameters(next_load_.id, {.started_at = at,
                                                                        .ended_at = done,
                                                                        .exposure_seconds = 240,
                                                                        .temperature_c = 134.2,
                                                                        .pressure_kpa = 304,
                                                                        .passed = true,
                                                                        .recorded_by = "spd",
                                                                        .recorded_at = done}));
    RETURN_IF_ERROR(tx.sterilization().AddChemicalIndicator(
        next_load_.id, {.type = 5,
                        .result = steritrack::IndicatorResult::kPass,
                        .recorded_by = "spd",
                        .recorded_at = done}));
    RETURN_IF_ERROR(tx.sterilization().SetLoadReleaseState(
        next_load_.id, steritrack::ReleaseState::kReleased,
        {.by = "spd", .at = released, .meaning = "released: parameters and CI reviewed"}));
    const std::string name = StrCat(s.name, " cycle ", load.cycle_number);
    for (const auto& [when, action, after] :
         {std::tuple{at, "LOAD_CREATED", "release=OPEN"},
          std::tuple{done, "LOAD_PARAMETERS_RECORDED", "parameters=PASS"},
          std::tuple{done, "LOAD_CI_RECORDED", "ci5=PASS"},
          std::tuple{released, "LOAD_RELEASED", "release=RELEASED"}}) {
      Emit({.at = when,
            .actor = "spd",
            .action = action,
            .load_id = next_load_.id,
            .sterilizer_id = s.id,
            .detail = name,
            .after = after});
    }
    return absl::OkStatus();
  }

  // The sterilisers' cycle counters and the items' cycle counts, then every entry still pending.
  absl::Status FinishUp(steritrack::WriteTransaction& tx) {
    for (const steritrack::Sterilizer& s : sterilizers_) {
      RETURN_IF_ERROR(tx.sterilization().UpdateSterilizer(s));
    }
    for (steritrack::ReusableItem& item : items_) {
      item.state = steritrack::ItemState::kDirty;
      RETURN_IF_ERROR(tx.sterilization().UpdateItem(item));
    }
    return Flush(tx, absl::InfiniteFuture());
  }

  const Options& options_;
  steritrack::Store& store_;
  const steritrack::Sha256& sha256_;
  const absl::Time start_;
  const absl::Duration step_;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<Pending>> pending_;
  int64_t order_ = 0;
  int64_t appended_ = 0;
  int64_t loads_ = 0;
  int64_t lots_ = 0;
  absl::CivilDay last_day_;
  std::vector<steritrack::Sterilizer> sterilizers_;
  std::vector<steritrack::ReusableItem> items_;
  struct LoadContents {
    int64_t id = 0;
    std::vector<int> items;  // indexes into items_
  };
  LoadContents current_load_;  // the one whose items the current treatments use
  LoadContents next_load_;
  struct LotStock {
    steritrack::Lot lot;
    std::vector<int64_t> cartridge_ids;  // by position in the delivery
  };
  std::map<int64_t, LotStock> lots_by_index_;  // lots with units still to be used
  double seconds_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"steritrack_generate: a large clinic-chain database, written through the store"};
  app.add_option("--db", o.db, "database file (must not exist)")->capture_default_str();
  app.add_option("--treatments", o.treatments)
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000'000}))
      ->capture_default_str();
  app.add_option("--months", o.months, "months of history before --end")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  app.add_option("--lot-size", o.lot_size, "units per delivery (one lot each)")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--batch", o.batch, "treatments per write transaction")
      ->check(CLI::Range(int64_t{1}, int64_t{10'000'000}))
      ->capture_default_str();
  app.add_option("--end", o.end, "YYYY-MM-DD, exclusive (default: first of this month, UTC)");
  CLI11_PARSE(app, argc, argv);

  const absl::TimeZone utc = absl::UTCTimeZone();
  absl::CivilMonth end_month = absl::CivilMonth(absl::ToCivilDay(absl::Now(), utc));
  absl::CivilDay end_day(end_month);
  if (!o.end.empty() && !absl::ParseCivilTime(o.end, &end_day)) {
    std::fprintf(stderr, "--end: not a date YYYY-MM-DD: %s\n", o.end.c_str());
    return 2;
  }
  end_month = absl::CivilMonth(end_day);
  const absl::Time end = absl::FromCivil(end_day, utc);
  const absl::Time start = absl::FromCivil(absl::CivilDay(end_month - o.months), utc);
  if (std::filesystem::exists(o.db)) {
    std::fprintf(stderr, "%s exists: the generator builds a new database only\n", o.db.c_str());
    return 2;
  }

  // Without group commit: each batch is a plain BEGIN IMMEDIATE ... COMMIT. With it, the batch
  // would run inside the store's per-transaction SAVEPOINT, whose in-memory journal then holds the
  // old content of every page the batch changes (megabytes, in 1 KiB chunks), and SQLite walks
  // that chunk list at the end of every statement: 73% of the generator's time at 100k treatments
  // (a 7.85 MB journal, 7,750 chunks), the rate falling from ~2,900 treatments/s at 40k to ~900/s
  // at 260k. Without: ~5,200/s to 280k, ~4,700/s to 10M.
  auto store = steritrack::OpenSqliteStore({.path = o.db, .readers = 1, .group_commit = false});
  if (!store.ok()) {
    std::fprintf(stderr, "open %s: %s\n", o.db.c_str(),
                 std::string(store.status().message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "generating %lld treatments from %s to %s into %s (schema v%d)\n",
               static_cast<long long>(o.treatments),
               absl::FormatCivilTime(absl::ToCivilDay(start, utc)).c_str(),
               absl::FormatCivilTime(end_day).c_str(), o.db.c_str(),
               steritrack::SqliteSchemaVersion());
  const std::unique_ptr<steritrack::Sha256> sha256 = steritrack::NewSha256();
  Generator generator(o, **store, *sha256, start, end);
  if (absl::Status s = generator.Run(); !s.ok()) {
    std::fprintf(stderr, "generate: %s\n", s.ToString().c_str());
    return 1;
  }
  store->reset();  // checkpoints the WAL into the file
  const double mb = static_cast<double>(std::filesystem::file_size(o.db)) / (1024.0 * 1024.0);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "generated %lld treatments, %lld lots, %lld loads, %lld audit entries in %.1f s (%.0f "
      "treatments/s, %.0f audit entries/s); %s %.0f MB; peak RSS %ld MB\n",
      static_cast<long long>(o.treatments), static_cast<long long>(generator.lots()),
      static_cast<long long>(generator.loads()), static_cast<long long>(generator.appended()),
      generator.seconds(), o.treatments / generator.seconds(),
      generator.appended() / generator.seconds(), o.db.c_str(), mb, usage.ru_maxrss / 1024);
  return 0;
}
