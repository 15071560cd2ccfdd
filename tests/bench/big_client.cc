// steritrack_big: the read-side measurements at scale (issue 11, R8 and R9) against a running
// steritrackd whose database steritrack_generate built. Prints figures; asserts nothing.
//
//   steritrack_big --server 127.0.0.1:PORT --token-file admin.token --treatments N
//       [--lot-size 1000] [--history 2000] [--lookbacks 200] [--report-month 2026-11]
//       [--verify incremental|full|none] [--report-loop S] [--json out.json]
//
// In this order, each step skipped when its count is 0 or its flag empty:
//   history   GetCartridge (a unit with its lot, state and full history) on --history random
//             units of the N the generator named (serial S<i>), one call at a time after 100
//             unrecorded: latency p50/p90/p99/max;
//   look-back ReportService.GetLotLookBack on --lookbacks random lots (L<k>), one at a time;
//   report    GetComplianceReport for the month --report-month (one call, timed);
//   verify    AuditService.VerifyAuditTrail, incremental (after the stored checkpoint) or full;
//   loop      GetComplianceReport for the month in a loop for --report-loop seconds (R9: the
//             open-loop run measures meanwhile in another process).
// Every call must succeed: a failed one makes the run invalid (exit 1).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "steritrack/v1/audit.grpc.pb.h"
#include "steritrack/v1/inventory.grpc.pb.h"
#include "steritrack/v1/report.grpc.pb.h"

namespace {

namespace v1 = steritrack::v1;
using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// Nearest-rank quantile of an ascending list of milliseconds.
double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * sorted.size())));
  return sorted[rank - 1];
}

struct Latencies {
  std::vector<double> ms;
  std::string Json() {
    std::sort(ms.begin(), ms.end());
    char buffer[256];
    std::snprintf(buffer, sizeof buffer,
                  "{\"calls\": %zu, \"p50\": %.4f, \"p90\": %.4f, \"p99\": %.4f, \"max\": %.4f}",
                  ms.size(), Quantile(ms, 0.5), Quantile(ms, 0.9), Quantile(ms, 0.99),
                  ms.empty() ? 0.0 : ms.back());
    return buffer;
  }
};

std::string ReadToken(const std::string& file) {
  std::ifstream in(file);
  std::string token;
  in >> token;
  return token;
}

}  // namespace

int main(int argc, char** argv) {
  std::string server = "127.0.0.1:50051";
  std::string token_file;
  int64_t treatments = 0;
  int64_t lot_size = 1000;
  int history = 2000;
  int lookbacks = 200;
  std::string month;
  std::string verify = "incremental";
  double report_loop_s = 0;
  std::string json;
  CLI::App app{"steritrack_big: read-side figures on a generated database"};
  app.add_option("--server", server, "HOST:PORT")->capture_default_str();
  app.add_option("--token-file", token_file, "file holding an admin token")->required();
  app.add_option("--treatments", treatments, "treatments the generator wrote")->required();
  app.add_option("--lot-size", lot_size, "the generator's --lot-size")->capture_default_str();
  app.add_option("--history", history, "GetCartridge calls")->capture_default_str();
  app.add_option("--lookbacks", lookbacks, "GetLotLookBack calls")->capture_default_str();
  app.add_option("--report-month", month, "YYYY-MM: the month's compliance report");
  app.add_option("--verify", verify, "incremental | full | none")
      ->check(CLI::IsMember({"incremental", "full", "none"}))
      ->capture_default_str();
  app.add_option("--report-loop", report_loop_s, "seconds of back-to-back reports (R9)");
  app.add_option("--json", json, "write the figures as one JSON object to this file");
  CLI11_PARSE(app, argc, argv);
  const std::string token = ReadToken(token_file);

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  auto channel = grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args);
  auto inventory = v1::InventoryService::NewStub(channel);
  auto reports = v1::ReportService::NewStub(channel);
  auto audit = v1::AuditService::NewStub(channel);
  auto context = [&](grpc::ClientContext& ctx) {
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  };
  int failed = 0;
  auto check = [&](const grpc::Status& st, const char* what) {
    if (st.ok()) return true;
    if (++failed <= 5) std::fprintf(stderr, "%s failed: %s\n", what, st.error_message().c_str());
    return false;
  };
  std::mt19937_64 random{20261201};
  std::vector<std::string> out;

  if (history > 0) {
    std::uniform_int_distribution<int64_t> unit(0, treatments - 1);
    Latencies lat;
    int64_t events = 0;
    constexpr int kWarmup = 100;  // calls first, not timed
    for (int i = -kWarmup; i < history; ++i) {
      v1::GetCartridgeRequest req;
      req.set_barcode("(01)09506000134352(21)S" + std::to_string(unit(random)));
      v1::Cartridge resp;
      grpc::ClientContext ctx;
      context(ctx);
      const auto start = Clock::now();
      const grpc::Status st = inventory->GetCartridge(&ctx, req, &resp);
      const double ms = Ms(start);
      if (!check(st, "GetCartridge") || i < 0) continue;
      lat.ms.push_back(ms);
      events += resp.history_size();
    }
    const std::string figures = lat.Json();
    std::printf("cartridge history (GetCartridge, 1 at a time): %s ms; %.1f history events each\n",
                figures.c_str(), lat.ms.empty() ? 0.0 : double(events) / lat.ms.size());
    out.push_back("\"history\": " + figures);
    // Every call made, the untimed ones too (big.sh divides the server's page reads by it).
    out.push_back("\"history_calls_made\": " + std::to_string(kWarmup + history));
  }

  if (lookbacks > 0) {
    const int64_t lots = (treatments + lot_size - 1) / lot_size;
    std::uniform_int_distribution<int64_t> lot(0, lots - 1);
    Latencies lat;
    int64_t uses = 0;
    for (int i = -10; i < lookbacks; ++i) {
      v1::GetLotLookBackRequest req;
      req.set_gtin("09506000134352");
      req.set_lot("L" + std::to_string(lot(random)));
      v1::LotLookBack resp;
      grpc::ClientContext ctx;
      context(ctx);
      const auto start = Clock::now();
      const grpc::Status st = reports->GetLotLookBack(&ctx, req, &resp);
      const double ms = Ms(start);
      if (!check(st, "GetLotLookBack") || i < 0) continue;
      lat.ms.push_back(ms);
      uses += resp.uses_size();
    }
    const std::string figures = lat.Json();
    std::printf("lot look-back (GetLotLookBack, 1 at a time): %s ms; %.0f uses each\n",
                figures.c_str(), lat.ms.empty() ? 0.0 : double(uses) / lat.ms.size());
    out.push_back("\"lot_look_back\": " + figures);
  }

  int year = 0, mon = 0;
  if (!month.empty() && std::sscanf(month.c_str(), "%d-%d", &year, &mon) != 2) {
    std::fprintf(stderr, "--report-month: YYYY-MM\n");
    return 2;
  }
  auto report_request = [&]() {
    v1::GetComplianceReportRequest req;
    req.mutable_from_date()->set_year(year);
    req.mutable_from_date()->set_month(mon);
    req.mutable_from_date()->set_day(1);
    req.mutable_to_date()->set_year(mon == 12 ? year + 1 : year);
    req.mutable_to_date()->set_month(mon == 12 ? 1 : mon + 1);
    req.mutable_to_date()->set_day(1);
    return req;
  };
  if (!month.empty()) {
    v1::ComplianceReport resp;
    grpc::ClientContext ctx;
    context(ctx);
    const auto start = Clock::now();
    const grpc::Status st = reports->GetComplianceReport(&ctx, report_request(), &resp);
    const double ms = Ms(start);
    if (check(st, "GetComplianceReport")) {
      std::printf(
          "compliance report for %s: %.0f ms; %lld treatments, %lld cartridges opened, %d "
          "exceptions, %lld loads; audit trail %s (%lld entries)\n",
          month.c_str(), ms, static_cast<long long>(resp.totals().treatments()),
          static_cast<long long>(resp.totals().cartridges_opened()), resp.exceptions_size(),
          static_cast<long long>(resp.totals().loads_run()),
          resp.audit_trail().intact() ? "intact" : "BROKEN",
          static_cast<long long>(resp.audit_trail().entry_count()));
      char buffer[256];
      std::snprintf(buffer, sizeof buffer,
                    "\"report\": {\"month\": \"%s\", \"ms\": %.1f, \"treatments\": %lld, "
                    "\"exceptions\": %d}",
                    month.c_str(), ms, static_cast<long long>(resp.totals().treatments()),
                    resp.exceptions_size());
      out.push_back(buffer);
    }
  }

  if (verify != "none") {
    v1::VerifyAuditTrailRequest req;
    req.set_full(verify == "full");
    v1::VerifyAuditTrailResponse resp;
    grpc::ClientContext ctx;
    context(ctx);
    const auto start = Clock::now();
    const grpc::Status st = audit->VerifyAuditTrail(&ctx, req, &resp);
    const double ms = Ms(start);
    if (check(st, "VerifyAuditTrail")) {
      std::printf("audit verify (%s): %.0f ms; %s, %lld entries, after checkpoint %lld\n",
                  verify.c_str(), ms, resp.intact() ? "intact" : "BROKEN",
                  static_cast<long long>(resp.entry_count()),
                  static_cast<long long>(resp.checkpoint_sequence()));
      if (!resp.intact()) ++failed;
      char buffer[256];
      std::snprintf(buffer, sizeof buffer,
                    "\"verify\": {\"mode\": \"%s\", \"ms\": %.1f, \"intact\": %s, \"entries\": "
                    "%lld, \"checkpoint\": %lld}",
                    verify.c_str(), ms, resp.intact() ? "true" : "false",
                    static_cast<long long>(resp.entry_count()),
                    static_cast<long long>(resp.checkpoint_sequence()));
      out.push_back(buffer);
    }
  }

  if (report_loop_s > 0 && !month.empty()) {
    const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(report_loop_s));
    int reports_done = 0;
    while (Clock::now() < end) {
      v1::ComplianceReport resp;
      grpc::ClientContext ctx;
      context(ctx);
      if (check(reports->GetComplianceReport(&ctx, report_request(), &resp), "report loop")) {
        ++reports_done;
      }
    }
    std::printf("report loop: %d reports for %s in %.0f s\n", reports_done, month.c_str(),
                report_loop_s);
    out.push_back("\"report_loop\": {\"reports\": " + std::to_string(reports_done) + "}");
  }

  if (!json.empty()) {
    std::ofstream file(json);
    file << "{";
    for (size_t i = 0; i < out.size(); ++i) file << (i ? ", " : "") << out[i];
    file << (out.empty() ? "" : ", ") << "\"failed\": " << failed << "}\n";
  }
  if (failed > 0) std::printf("INVALID: %d call(s) failed\n", failed);
  return failed > 0 ? 1 : 0;
}
