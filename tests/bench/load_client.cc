// steritrack_load: a load client for a running steritrackd. Prints figures; asserts nothing
// (tests assert behaviour, benchmarks measure).
//
//   steritrack_load --server 127.0.0.1:50051 --token-file admin.token --method open --mode closed
//       --in-flight 64 --duration 10 [--json out.json]
//   steritrack_load ... --method health --mode open --rate 1000
//
// Methods: `open` (TreatmentService.OpenCartridge, each call on a distinct unit received and bound
// to a started treatment before the timed part) and `health` (grpc.health.v1.Health/Check on the
// same server: the transport baseline). Modes:
//   closed  N calls in flight: each answer sends the next call at once (throughput);
//   open    constant arrival rate: call i is due at start + i/rate whatever happened before, and
//   its
//           latency counts from that intended time, so a stall is charged to every call it delayed
//           (no coordinated omission).
// Calls use gRPC's callback API, so one process keeps many calls in flight. Latencies go into a
// log-bucket histogram (buckets 1% wide). A warm-up period runs first and is not recorded.
// RESOURCE_EXHAUSTED (the server's overload refusal) is counted apart as `refused`, outside the
// histogram. The run is valid only if no call failed otherwise; for `open`, the client also reads
// back a sample of the units it was told were opened and checks each is OPENED in the treatment it
// named.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "grpc/health/v1/health.grpc.pb.h"
#include "steritrack/v1/inventory.grpc.pb.h"
#include "steritrack/v1/treatment.grpc.pb.h"

namespace {

namespace v1 = steritrack::v1;
namespace health = grpc::health::v1;
using Clock = std::chrono::steady_clock;

// Latencies in nanoseconds, in buckets whose bounds grow by 1% each: bucket b holds
// [kGrowth^b, kGrowth^(b+1)). Lock-free to record from gRPC's callback threads.
class LogHistogram {
 public:
  static constexpr double kGrowth = 1.01;
  static constexpr int kBuckets = 2600;  // up to ~1.01^2600 ns, far beyond any timeout

  void Record(int64_t ns) {
    if (ns < 1) ns = 1;
    int b = static_cast<int>(std::log(static_cast<double>(ns)) / std::log(kGrowth));
    b = std::clamp(b, 0, kBuckets - 1);
    counts_[b].fetch_add(1, std::memory_order_relaxed);
    total_.fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(ns, std::memory_order_relaxed);
    int64_t seen = max_ns_.load(std::memory_order_relaxed);
    while (ns > seen && !max_ns_.compare_exchange_weak(seen, ns)) {
    }
  }
  uint64_t Count() const { return total_.load(); }
  double MaxMs() const { return max_ns_.load() / 1e6; }
  double MeanMs() const { return total_ == 0 ? 0.0 : sum_ns_.load() / 1e6 / total_.load(); }
  // The upper bound of the bucket holding the q-quantile (never above the exact maximum).
  double QuantileMs(double q) const {
    const uint64_t n = total_.load();
    if (n == 0) return 0.0;
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * n)));
    uint64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b) {
      seen += counts_[b].load();
      if (seen >= rank) return std::min(std::pow(kGrowth, b + 1) / 1e6, MaxMs());
    }
    return MaxMs();
  }
  // The buckets that hold calls, as a JSON object: {"growth": 1.01, "buckets": [[b, count], ...]},
  // so that a script can pool the runs it alternates (big.sh's R9) into one histogram.
  std::string Json() const {
    std::string out = "{\"growth\": " + std::to_string(kGrowth) + ", \"buckets\": [";
    bool first = true;
    for (int b = 0; b < kBuckets; ++b) {
      const uint64_t n = counts_[b].load();
      if (n == 0) continue;
      out += (first ? "[" : ", [") + std::to_string(b) + ", " + std::to_string(n) + "]";
      first = false;
    }
    return out + "]}";
  }

 private:
  std::atomic<uint64_t> counts_[kBuckets] = {};
  std::atomic<uint64_t> total_{0};
  std::atomic<int64_t> sum_ns_{0};
  std::atomic<int64_t> max_ns_{0};
};

struct Options {
  std::string server = "127.0.0.1:50051";
  std::string token;
  std::string token_file;
  std::string method = "open";
  std::string mode = "closed";
  int in_flight = 64;
  double rate = 1000;
  double duration_s = 10;
  double warmup_s = 2;
  int channels = 4;
  int treatments = 16;
  int units_per_treatment = 0;  // 0: every unit goes into one of `treatments`, round-robin
  int64_t units = 0;            // 0: enough for the run, estimated from the mode
  int max_outstanding = 20000;
  int verify_sample = 200;
  std::string json;
};

// One call's target, fixed before the timed part.
struct OpenTarget {
  std::string barcode;
  std::string treatment_id;
  std::string request_id;
};

class Runner {
 public:
  explicit Runner(const Options& options) : options_(options) {
    // Several servers (HOST:PORT,HOST:PORT: servers on one PostgreSQL database) share the
    // channels round-robin.
    std::vector<std::string> servers;
    for (size_t start = 0; start <= options_.server.size();) {
      const size_t comma = std::min(options_.server.find(',', start), options_.server.size());
      servers.push_back(options_.server.substr(start, comma - start));
      start = comma + 1;
    }
    for (int c = 0; c < options_.channels; ++c) {
      grpc::ChannelArguments args;
      args.SetInt("steritrack.bench.channel", c);  // distinct arguments: distinct connections
      channels_.push_back(grpc::CreateCustomChannel(servers[c % servers.size()],
                                                    grpc::InsecureChannelCredentials(), args));
      treatment_stubs_.push_back(v1::TreatmentService::NewStub(channels_.back()));
      health_stubs_.push_back(health::Health::NewStub(channels_.back()));
    }
  }

  void Authorize(grpc::ClientContext& ctx) const {
    ctx.AddMetadata("authorization", "Bearer " + options_.token);
  }

  // Starts treatment `t` of a seeding under lot `lot` on channel `c`: its id, empty on failure.
  std::string StartTreatment(const std::string& lot, int64_t t, size_t c) {
    v1::StartTreatmentRequest req;
    req.set_room(std::to_string(t % 12 + 1));
    req.set_clinician("bench");
    req.set_client_ref("BENCH-" + lot + "-" + std::to_string(t));
    v1::Treatment treatment;
    grpc::ClientContext ctx;
    Authorize(ctx);
    const grpc::Status st =
        treatment_stubs_[c % treatment_stubs_.size()]->StartTreatment(&ctx, req, &treatment);
    if (!st.ok()) {
      std::fprintf(stderr, "StartTreatment failed: %s\n", st.error_message().c_str());
      return std::string();
    }
    return treatment.id();
  }

  // Receives `units` cartridges in a lot of their own and starts the treatments they go into:
  // --treatments of them shared round-robin by every unit, or with --units-per-treatment one
  // treatment per that many units in the order they are opened, as a clinic's treatments take one
  // or two cartridges each (started 32 at a time).
  bool Seed(int64_t units) {
    auto inventory = v1::InventoryService::NewStub(channels_[0]);
    const std::string lot = "B" + std::to_string(std::random_device{}() % 100000000);
    const int64_t per = options_.units_per_treatment;
    const int64_t count = per > 0 ? (units + per - 1) / per : options_.treatments;
    std::vector<std::string> treatment_ids(static_cast<size_t>(count));
    std::atomic<int64_t> next{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> starters;
    for (size_t c = 0; c < (per > 0 ? 32u : 1u); ++c) {
      starters.emplace_back([&, c] {
        for (int64_t t = next++; t < count && !failed; t = next++) {
          treatment_ids[t] = StartTreatment(lot, t, c);
          if (treatment_ids[t].empty()) failed = true;
        }
      });
    }
    for (std::thread& t : starters) t.join();
    if (failed) return false;
    constexpr int64_t kBatch = 1000;
    for (int64_t start = 0; start < units; start += kBatch) {
      v1::ReceiveCartridgesRequest req;
      for (int64_t i = start; i < std::min(units, start + kBatch); ++i) {
        OpenTarget target;
        target.barcode =
            "(01)09506000134352(17)301231(10)" + lot + "(21)" + lot + "U" + std::to_string(i);
        target.treatment_id = treatment_ids[per > 0 ? i / per : i % count];
        target.request_id = "bench-" + lot + "-" + std::to_string(i);
        req.add_barcodes(target.barcode);
        targets_.push_back(std::move(target));
      }
      v1::ReceiveCartridgesResponse resp;
      grpc::ClientContext ctx;
      Authorize(ctx);
      const grpc::Status st = inventory->ReceiveCartridges(&ctx, req, &resp);
      if (!st.ok()) {
        std::fprintf(stderr, "ReceiveCartridges failed: %s\n", st.error_message().c_str());
        return false;
      }
    }
    acknowledged_.assign(targets_.size(), 0);
    return true;
  }

  // Sends one call; `done` runs on a gRPC thread with the call's status. Returns false when the
  // run has no more distinct units to open.
  template <typename Done>
  bool Send(Done done) {
    const uint64_t n = sent_.fetch_add(1);
    if (options_.method == "health") {
      struct Call {
        grpc::ClientContext ctx;
        health::HealthCheckRequest req;
        health::HealthCheckResponse resp;
      };
      auto call = std::make_shared<Call>();
      Authorize(call->ctx);
      health_stubs_[n % health_stubs_.size()]->async()->Check(
          &call->ctx, &call->req, &call->resp, [call, done](grpc::Status st) { done(st, -1); });
      return true;
    }
    if (n >= targets_.size()) return false;
    struct Call {
      grpc::ClientContext ctx;
      v1::OpenCartridgeRequest req;
      v1::Cartridge resp;
    };
    auto call = std::make_shared<Call>();
    Authorize(call->ctx);
    const OpenTarget& target = targets_[n];
    call->req.set_barcode(target.barcode);
    call->req.set_treatment_id(target.treatment_id);
    call->req.set_request_id(target.request_id);
    treatment_stubs_[n % treatment_stubs_.size()]->async()->OpenCartridge(
        &call->ctx, &call->req, &call->resp,
        [call, done, n](grpc::Status st) { done(st, static_cast<int64_t>(n)); });
    return true;
  }

  void Finish(const grpc::Status& st, int64_t unit, bool record, int64_t latency_ns) {
    if (st.ok()) {
      if (unit >= 0) acknowledged_[unit] = 1;
      if (record) {
        histogram_.Record(latency_ns);
        completed_.fetch_add(1);
      }
    } else if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      // The server's documented overload answer (offered load above its capacity): counted, not
      // a failure of the run. Its latency is not in the histogram.
      refused_.fetch_add(1);
    } else {
      failed_.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu_);
      if (failures_.size() < 5) failures_.push_back(st.error_message());
      ++failure_codes_[st.error_code()];
    }
    if (!st.ok() && st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      std::lock_guard<std::mutex> lock(mu_);
      if (refusal_.empty()) refusal_ = st.error_message();
    }
  }

  void RunClosed(Clock::time_point start, Clock::time_point measure_from, Clock::time_point end) {
    std::mutex mu;
    std::condition_variable cv;
    int outstanding = 0;
    std::function<void()> issue;
    issue = [&]() {
      const Clock::time_point sent = Clock::now();
      {
        std::lock_guard<std::mutex> lock(mu);
        ++outstanding;
      }
      const bool ok = Send([&, sent](const grpc::Status& st, int64_t unit) {
        const Clock::time_point now = Clock::now();
        Finish(st, unit, sent >= measure_from && now <= end,
               std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent).count());
        if (now < end && !exhausted_.load()) issue();
        std::lock_guard<std::mutex> lock(mu);
        --outstanding;
        cv.notify_all();
      });
      if (!ok) {
        exhausted_ = true;
        std::lock_guard<std::mutex> lock(mu);
        --outstanding;
        cv.notify_all();
      }
    };
    (void)start;
    for (int i = 0; i < options_.in_flight; ++i) issue();
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return outstanding == 0; });
  }

  void RunOpen(Clock::time_point start, Clock::time_point measure_from, Clock::time_point end) {
    std::mutex mu;
    std::condition_variable cv;
    int outstanding = 0;
    const auto interval = std::chrono::duration<double>(1.0 / options_.rate);
    for (int64_t i = 0;; ++i) {
      const Clock::time_point due =
          start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
      if (due >= end) break;
      std::this_thread::sleep_until(due);
      {
        // Never more than --max-outstanding at once; a call held here still counts from `due`.
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return outstanding < options_.max_outstanding; });
        ++outstanding;
      }
      const bool ok = Send([&, due](const grpc::Status& st, int64_t unit) {
        const Clock::time_point now = Clock::now();
        Finish(st, unit, due >= measure_from,
               std::chrono::duration_cast<std::chrono::nanoseconds>(now - due).count());
        std::lock_guard<std::mutex> lock(mu);
        --outstanding;
        cv.notify_all();
      });
      if (!ok) {
        exhausted_ = true;
        std::lock_guard<std::mutex> lock(mu);
        --outstanding;
        break;
      }
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return outstanding == 0; });
  }

  // Reads back a sample of acknowledged opens: each must be OPENED in the treatment it named.
  int64_t Verify(int64_t* checked) {
    *checked = 0;
    if (options_.method != "open") return 0;
    auto inventory = v1::InventoryService::NewStub(channels_[0]);
    std::vector<int64_t> acked;
    for (size_t i = 0; i < acknowledged_.size(); ++i) {
      if (acknowledged_[i]) acked.push_back(static_cast<int64_t>(i));
    }
    std::shuffle(acked.begin(), acked.end(), std::mt19937_64{42});
    int64_t lost = 0;
    for (size_t k = 0; k < acked.size() && k < static_cast<size_t>(options_.verify_sample); ++k) {
      const OpenTarget& target = targets_[acked[k]];
      v1::GetCartridgeRequest req;
      req.set_barcode(target.barcode);
      v1::Cartridge cartridge;
      grpc::ClientContext ctx;
      Authorize(ctx);
      const grpc::Status st = inventory->GetCartridge(&ctx, req, &cartridge);
      ++*checked;
      if (!st.ok() || cartridge.state() != v1::CARTRIDGE_STATE_OPENED ||
          cartridge.treatment_id() != target.treatment_id) {
        ++lost;
      }
    }
    return lost;
  }

  const LogHistogram& histogram() const { return histogram_; }
  uint64_t completed() const { return completed_.load(); }
  uint64_t failed() const { return failed_.load(); }
  uint64_t refused() const { return refused_.load(); }
  bool exhausted() const { return exhausted_.load(); }
  std::string FirstRefusal() {
    std::lock_guard<std::mutex> lock(mu_);
    return refusal_;
  }
  std::string FailureSummary() {
    std::ostringstream out;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [code, count] : failure_codes_)
      out << "code " << code << ": " << count << "; ";
    for (const auto& message : failures_) out << "\"" << message << "\" ";
    return out.str();
  }

 private:
  const Options& options_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<v1::TreatmentService::Stub>> treatment_stubs_;
  std::vector<std::unique_ptr<health::Health::Stub>> health_stubs_;
  std::vector<OpenTarget> targets_;
  std::vector<char> acknowledged_;  // one writer per unit: the callback of its only call
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<bool> exhausted_{false};
  LogHistogram histogram_;
  std::mutex mu_;
  std::vector<std::string> failures_;
  std::map<int, int64_t> failure_codes_;
  std::string refusal_;
};

std::string ReadToken(const std::string& file) {
  std::ifstream in(file);
  std::string token;
  in >> token;
  return token;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"steritrack_load: closed- and open-loop load on a running steritrackd"};
  app.add_option("--server", o.server,
                 "HOST:PORT, or several comma-separated (servers on one database: the channels "
                 "go round-robin to them)")
      ->capture_default_str();
  app.add_option("--token", o.token, "an API token (admin); or --token-file");
  app.add_option("--token-file", o.token_file, "file holding the token");
  app.add_option("--method", o.method, "open | health")
      ->check(CLI::IsMember({"open", "health"}))
      ->capture_default_str();
  app.add_option("--mode", o.mode, "closed (N in flight) | open (constant arrival rate)")
      ->check(CLI::IsMember({"closed", "open"}))
      ->capture_default_str();
  app.add_option("--in-flight", o.in_flight, "closed loop: calls in flight")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--rate", o.rate, "open loop: calls per second")
      ->check(CLI::Range(1.0, 1e7))
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "measured seconds")->capture_default_str();
  app.add_option("--warmup", o.warmup_s, "seconds before, not recorded")->capture_default_str();
  app.add_option("--channels", o.channels, "connections, calls spread round-robin")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--treatments", o.treatments, "open: treatments the units go into")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--units-per-treatment", o.units_per_treatment,
                 "open: start one treatment per this many units, in the order they are opened "
                 "(0: the units share --treatments treatments round-robin)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--units", o.units, "open: units to seed (0: estimated for the run)")
      ->capture_default_str();
  app.add_option("--max-outstanding", o.max_outstanding, "open loop: cap on calls in flight")
      ->capture_default_str();
  app.add_option("--verify-sample", o.verify_sample, "open: acknowledged units read back")
      ->capture_default_str();
  app.add_option("--json", o.json, "write the figures as one JSON object to this file");
  CLI11_PARSE(app, argc, argv);
  if (!o.token_file.empty()) o.token = ReadToken(o.token_file);

  Runner runner(o);
  if (o.method == "open") {
    int64_t units = o.units;
    if (units <= 0) {
      const double seconds = o.duration_s + o.warmup_s;
      // Open loop needs exactly rate x time; closed loop gets room for ~15k/s, and stops early
      // (saying so) if the server is faster than that.
      units = o.mode == "open" ? static_cast<int64_t>(o.rate * seconds) + 1000
                               : static_cast<int64_t>(15000 * seconds);
    }
    const auto seed_start = Clock::now();
    if (!runner.Seed(units)) return 2;
    std::fprintf(stderr, "seeded %lld units in %.1f s\n", static_cast<long long>(units),
                 std::chrono::duration<double>(Clock::now() - seed_start).count());
  }

  const Clock::time_point start = Clock::now();
  const Clock::time_point measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                                     std::chrono::duration<double>(o.warmup_s));
  const Clock::time_point end = measure_from + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(o.duration_s));
  if (o.mode == "closed") {
    runner.RunClosed(start, measure_from, end);
  } else {
    runner.RunOpen(start, measure_from, end);
  }
  // A closed run that ran out of units measured a shorter window: count it as it was.
  const double measured_s =
      runner.exhausted() && o.mode == "closed"
          ? std::max(
                1e-3,
                std::chrono::duration<double>(std::min(Clock::now(), end) - measure_from).count())
          : o.duration_s;
  int64_t checked = 0;
  const int64_t lost = runner.Verify(&checked);

  const LogHistogram& h = runner.histogram();
  const double throughput = runner.completed() / measured_s;
  const bool valid = runner.failed() == 0 && lost == 0 && !(o.mode == "open" && runner.exhausted());
  std::printf(
      "%-6s %-6s %s: %llu ok in %.1f s = %.0f/s; latency ms p50 %.3f p90 %.3f p99 %.3f p99.9 "
      "%.3f max %.3f; refused (overload) %llu; failed %llu; read back %lld, lost %lld%s%s\n",
      o.method.c_str(), o.mode.c_str(),
      o.mode == "closed" ? ("in-flight " + std::to_string(o.in_flight)).c_str()
                         : ("rate " + std::to_string(static_cast<int64_t>(o.rate)) + "/s").c_str(),
      static_cast<unsigned long long>(runner.completed()), measured_s, throughput,
      h.QuantileMs(0.50), h.QuantileMs(0.90), h.QuantileMs(0.99), h.QuantileMs(0.999), h.MaxMs(),
      static_cast<unsigned long long>(runner.refused()),
      static_cast<unsigned long long>(runner.failed()), static_cast<long long>(checked),
      static_cast<long long>(lost), runner.exhausted() ? "; ran out of units" : "",
      valid ? "" : "; INVALID RUN");
  if (runner.failed() > 0) std::printf("failures: %s\n", runner.FailureSummary().c_str());
  if (runner.refused() > 0) {
    std::printf("refused: \"%s\" (the offered load is above what the server sustains)\n",
                runner.FirstRefusal().c_str());
  }

  if (!o.json.empty()) {
    std::ofstream out(o.json);
    char buffer[2048];
    std::snprintf(
        buffer, sizeof buffer,
        "{\"method\": \"%s\", \"mode\": \"%s\", \"in_flight\": %d, \"rate\": %.1f, "
        "\"duration_s\": %.3f, \"completed\": %llu, \"refused\": %llu, \"failed\": %llu, "
        "\"throughput_per_s\": "
        "%.1f, \"latency_ms\": {\"p50\": %.4f, \"p90\": %.4f, \"p99\": %.4f, \"p999\": %.4f, "
        "\"max\": %.4f, \"mean\": %.4f}, \"read_back\": %lld, \"lost\": %lld, "
        "\"ran_out_of_units\": "
        "%s, \"valid\": %s, ",
        o.method.c_str(), o.mode.c_str(), o.mode == "closed" ? o.in_flight : 0,
        o.mode == "open" ? o.rate : 0.0, measured_s,
        static_cast<unsigned long long>(runner.completed()),
        static_cast<unsigned long long>(runner.refused()),
        static_cast<unsigned long long>(runner.failed()), throughput, h.QuantileMs(0.50),
        h.QuantileMs(0.90), h.QuantileMs(0.99), h.QuantileMs(0.999), h.MaxMs(), h.MeanMs(),
        static_cast<long long>(checked), static_cast<long long>(lost),
        runner.exhausted() ? "true" : "false", valid ? "true" : "false");
    out << buffer << "\"histogram_ns\": " << h.Json() << "}\n";
  }
  return valid ? 0 : 1;
}
