// report_month: time to produce a month's compliance report over a large clinic chain's month.
// Prints figures; asserts nothing.
//
//   report_month --treatments 1000000 [--db /tmp/month.db] [--no-events] [--reuse]
//                [--page-size N]
//
// Seeds a SQLite database through the Store interface (big transactions, not one fsync per write,
// so seeding takes a minute rather than a day): N treatments over November 2026 in 12 rooms, each
// with one cartridge received, opened and disposed (1% late, 0.1% never), with their audit events;
// then times ReportService::ComplianceReportFor(2026-11-01, 2026-12-01) on a fresh store, in a
// forked child whose peak RSS is reset before the report (/proc/self/clear_refs), so that the
// printed peak is the report's alone (the inherited pages of the seeding included in the
// baseline). Then, when seeded with events, a full audit verification (which stores the verified
// checkpoint), 1,000 more entries, and an incremental verification after the checkpoint.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/civil_time.h"
#include "server/core/audit_service.h"
#include "server/core/report_service.h"
#include "server/storage/sqlite_store.h"
#include "steritrack/audit_chain.h"
#include "steritrack/sha256.h"
#include "steritrack/strings.h"

namespace {

using steritrack::StrCat;

class FixedClock final : public steritrack::Clock {
 public:
  explicit FixedClock(absl::Time t) : t_(t) {}
  absl::Time Now() const override { return t_; }

 private:
  absl::Time t_;
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

long MaxRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

// A field of /proc/self/status in MB (VmRSS, VmHWM), -1 when unknown.
long ProcStatusMb(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1)) / 1024;
  }
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false when the kernel refuses.
bool ResetPeakRss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return clear.good();
}

int Fail(const absl::Status& status, const char* what) {
  std::fprintf(stderr, "%s: %s\n", what, std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::unique_ptr<steritrack::Sha256> sha256 = steritrack::NewSha256();
  int64_t treatments = 1000000;
  std::string db = "/tmp/steritrack-report-month.db";
  bool events = true;
  bool reuse = false;
  int page_size = steritrack::ReportServiceOptions{}.page_size;
  CLI::App app{"report_month: compliance report time over a seeded month"};
  app.add_option("--treatments", treatments)->capture_default_str();
  app.add_option("--db", db, "database file (recreated)")->capture_default_str();
  app.add_flag("!--no-events", events, "seed without audit events");
  app.add_flag("--reuse", reuse, "report on the database --db as it is, without seeding");
  app.add_option("--page-size", page_size, "rows per page read by the report")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::Time month_start = absl::FromCivil(absl::CivilDay(2026, 11, 1), utc);
  const absl::Duration step = absl::Hours(24 * 30) / treatments;
  if (!reuse) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
  }

  auto seed_start = std::chrono::steady_clock::now();
  if (!reuse) {
    auto store = steritrack::OpenSqliteStore({.path = db, .readers = 1});
    if (!store.ok()) return Fail(store.status(), "open");
    constexpr int kLots = 50;
    std::vector<steritrack::Lot> lots;
    {
      auto tx = (*store)->BeginWrite();
      if (!tx.ok()) return Fail(tx.status(), "begin");
      for (int l = 0; l < kLots; ++l) {
        steritrack::Lot lot{.gtin = "09506000134352",
                            .lot = StrCat("L", l),
                            .expiry = absl::CivilDay(2030, 12, 31),
                            .created_at = month_start};
        auto id = (*tx)->cartridges().InsertLot(lot);
        if (!id.ok()) return Fail(id.status(), "lot");
        lot.id = *id;
        lots.push_back(lot);
      }
      if (auto s = (*tx)->Commit(); !s.ok()) return Fail(s, "commit");
    }
    constexpr int64_t kBatch = 20000;
    for (int64_t start = 0; start < treatments; start += kBatch) {
      auto tx = (*store)->BeginWrite();
      if (!tx.ok()) return Fail(tx.status(), "begin");
      for (int64_t i = start; i < std::min(treatments, start + kBatch); ++i) {
        const absl::Time at = month_start + step * i;
        const std::string room = StrCat(1 + i % 12);
        steritrack::Treatment t{.room = room,
                                .clinician = StrCat("nurse", i % 40),
                                .client_ref = StrCat("C", i),
                                .started_at = at,
                                .started_by = "bench",
                                .ended_at = at + absl::Minutes(45),
                                .ended_by = "bench"};
        auto tid = (*tx)->cartridges().InsertTreatment(t);
        if (!tid.ok()) return Fail(tid.status(), "treatment");
        steritrack::Cartridge c{.gtin = "09506000134352",
                                .serial = StrCat("S", i),
                                .lot = lots[i % kLots],
                                .received_at = month_start,
                                .received_by = "bench"};
        auto cid = (*tx)->cartridges().InsertCartridge(c);
        if (!cid.ok()) return Fail(cid.status(), "cartridge");
        const absl::Time opened = at + absl::Minutes(5);
        if (auto s = (*tx)->cartridges().RecordUse(
                *cid, {.treatment_id = *tid, .room = room, .at = opened, .by = "bench"});
            !s.ok()) {
          return Fail(s, "use");
        }
        const bool never = i % 1000 == 7;
        const bool late = i % 100 == 3;
        if (!never) {
          const absl::Time disposed = opened + (late ? absl::Hours(5) : absl::Minutes(30));
          if (auto s = (*tx)->cartridges().RecordDisposal(
                  *cid, {.container_id = StrCat("SHARPS-", room), .at = disposed, .by = "bench"});
              !s.ok()) {
            return Fail(s, "disposal");
          }
        }
        if (events) {
          for (const char* action : {"TREATMENT_STARTED", "CARTRIDGE_RECEIVED", "CARTRIDGE_OPENED",
                                     "CARTRIDGE_DISPOSED", "TREATMENT_ENDED"}) {
            auto e = steritrack::audit_chain::Append((*tx)->audit(), *sha256,
                                                     {.at = opened,
                                                      .actor = "bench",
                                                      .action = action,
                                                      .lot_id = lots[i % kLots].id,
                                                      .cartridge_id = *cid,
                                                      .treatment_id = *tid,
                                                      .detail = "seeded"});
            if (!e.ok()) return Fail(e.status(), "event");
          }
        }
      }
      if (auto s = (*tx)->Commit(); !s.ok()) return Fail(s, "commit");
    }
  }
  const double seed_seconds = Seconds(seed_start);
  const auto db_bytes = std::filesystem::file_size(db);

  std::printf("report_month: %lld treatments %s in %.1f s (%s audit events), db %.0f MB\n",
              static_cast<long long>(treatments), reuse ? "reused" : "seeded", seed_seconds,
              events ? "with" : "without", static_cast<double>(db_bytes) / (1024.0 * 1024.0));
  std::fflush(stdout);

  // The report in a child of its own: its peak RSS is the report's, not the seeding's.
  const pid_t child = fork();
  if (child < 0) return Fail(absl::InternalError("fork failed"), "fork");
  if (child == 0) {
    auto store = steritrack::OpenSqliteStore({.path = db, .readers = 2});
    if (!store.ok()) _exit(Fail(store.status(), "reopen"));
    FixedClock clock(absl::FromCivil(absl::CivilDay(2026, 12, 2), utc));
    steritrack::ReportService reports(
        {.store = store->get(), .sha256 = sha256.get(), .clock = &clock, .page_size = page_size});
    const bool reset = ResetPeakRss();
    const long baseline_mb = ProcStatusMb("VmRSS");
    auto report_start = std::chrono::steady_clock::now();
    auto report =
        reports.ComplianceReportFor(absl::CivilDay(2026, 11, 1), absl::CivilDay(2026, 12, 1));
    const double report_seconds = Seconds(report_start);
    if (!report.ok()) _exit(Fail(report.status(), "report"));
    std::printf(
        "compliance report for November: %.2f s, %zu exceptions, %lld cartridges opened, "
        "audit trail %s (%lld entries), page size %d\n",
        report_seconds, report->exceptions.size(),
        static_cast<long long>(report->totals.cartridges_opened),
        report->audit_trail.intact ? "intact" : "BROKEN",
        static_cast<long long>(report->audit_trail.entries), page_size);
    std::printf("report peak RSS: %ld MB (VmHWM%s; %ld MB resident before the report)\n",
                reset ? ProcStatusMb("VmHWM") : MaxRssMb(),
                reset ? " reset before the report" : ": not reset, includes the seeding",
                baseline_mb);
    std::fflush(stdout);
    _exit(0);
  }
  int child_status = 0;
  if (waitpid(child, &child_status, 0) != child || !WIFEXITED(child_status) ||
      WEXITSTATUS(child_status) != 0) {
    return Fail(absl::InternalError("the report's process failed"), "report");
  }
  if (!events) return 0;

  // Audit verification: full (stores the checkpoint), 1,000 new entries, then incremental.
  auto store = steritrack::OpenSqliteStore({.path = db, .readers = 2});
  if (!store.ok()) return Fail(store.status(), "reopen");
  FixedClock clock(absl::FromCivil(absl::CivilDay(2026, 12, 2), utc));
  steritrack::AuditService audit({.store = store->get(), .sha256 = sha256.get(), .clock = &clock});
  auto full_start = std::chrono::steady_clock::now();
  auto full = audit.Verify(/*full=*/true);
  const double full_seconds = Seconds(full_start);
  if (!full.ok()) return Fail(full.status(), "full verification");
  {
    auto tx = (*store)->BeginWrite();
    if (!tx.ok()) return Fail(tx.status(), "begin");
    for (int i = 0; i < 1000; ++i) {
      auto e = steritrack::audit_chain::Append((*tx)->audit(), *sha256,
                                               {.at = clock.Now(),
                                                .actor = "bench",
                                                .action = "CARTRIDGE_RECEIVED",
                                                .detail = "after the checkpoint"});
      if (!e.ok()) return Fail(e.status(), "event");
    }
    if (auto s = (*tx)->Commit(); !s.ok()) return Fail(s, "commit");
  }
  auto incremental_start = std::chrono::steady_clock::now();
  auto incremental = audit.Verify(/*full=*/false);
  const double incremental_seconds = Seconds(incremental_start);
  if (!incremental.ok()) return Fail(incremental.status(), "incremental verification");
  std::printf(
      "audit verify: full %.2f s (%lld entries, %s); incremental %.3f s (after checkpoint %lld, "
      "%lld entries, %s)\n",
      full_seconds, static_cast<long long>(full->entries), full->intact ? "intact" : "BROKEN",
      incremental_seconds, static_cast<long long>(incremental->checkpoint_seq),
      static_cast<long long>(incremental->entries), incremental->intact ? "intact" : "BROKEN");
  return 0;
}
