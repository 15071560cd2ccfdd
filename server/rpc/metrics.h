// Metrics: steritrackd's counters, gauges and histograms, rendered in the Prometheus text
// exposition format 0.0.4 (what `GET /metrics` answers; the HTTP side is server/metrics_http.h).
//
// The families are fixed (see Metrics below); the building blocks are small enough to test on
// their own. Plain C++ and absl, no gRPC: the gRPC side feeds it from an interceptor
// (metrics_interceptor.h) and the SQLite store through its writer hooks. Thread-safe: every
// method may be called from any thread, Render() included.
#ifndef STERITRACK_SERVER_RPC_METRICS_H_
#define STERITRACK_SERVER_RPC_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace steritrack::rpc {

// A sample value as the format writes it: shortest round-trip decimal, "+Inf", "-Inf", "NaN".
std::string FormatMetricValue(double value);
// A label value inside its double quotes: backslash, double quote and line feed escaped.
std::string EscapeLabelValue(std::string_view value);

// The values of a family's labels, in the order of its label names.
using LabelValues = std::vector<std::string>;

// A counter per label set ("name_total{a="x"} 3"). Label sets appear once first counted.
class CounterFamily {
 public:
  // REQUIRES: `name` ends in "_total"; label names are valid Prometheus label names.
  CounterFamily(std::string name, std::string help, std::vector<std::string> label_names);

  // REQUIRES: values.size() == label_names.size().
  void Increment(const LabelValues& values, double by = 1);
  double Value(const LabelValues& values) const;  // 0 when never counted
  void Render(std::string* out) const;

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  mutable absl::Mutex mu_;
  std::map<LabelValues, double> values_ ABSL_GUARDED_BY(mu_);
};

// A histogram per label set: cumulative buckets (le="..." and le="+Inf"), _sum and _count.
class HistogramFamily {
 public:
  // REQUIRES: `bounds` strictly increasing and finite (the +Inf bucket is implied).
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds);

  void Observe(const LabelValues& values, double value);
  uint64_t Count(const LabelValues& values) const;  // 0 when never observed
  void Render(std::string* out) const;

 private:
  struct Series {
    std::vector<uint64_t> buckets;  // per bucket, not cumulative; the last is (bounds.back(), +Inf)
    double sum = 0;
    uint64_t count = 0;
  };
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  std::map<LabelValues, Series> series_ ABSL_GUARDED_BY(mu_);
};

// Bucket bounds in seconds for request and commit latency: 0.5 ms to 10 s.
const std::vector<double>& LatencyBuckets();

struct MetricsOptions {
  std::string version;     // steritrackd's version, for steritrack_build_info
  int schema_version = 0;  // the database schema this build writes
  absl::Time start_time = absl::UnixEpoch();
  // The SQLite database file; its size and its "-wal" file's are read at each Render(). Empty or
  // not a plain path (":memory:", a "file:" URI): the two size gauges have no sample.
  std::string database_path;
};

// One product with a par level, as counted at a scrape (issue 15).
struct StockGauge {
  std::string gtin;
  int64_t openable = 0;
  int64_t expiring = 0;
  int64_t par = 0;
};
// What the stock gauges show: called at each Render(); an error leaves them without samples.
using StockSource = std::function<std::optional<std::vector<StockGauge>>()>;

// The steritrack_* families (the README's "Metrics" table lists them).
class Metrics {
 public:
  explicit Metrics(MetricsOptions options);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One finished call of `method` (full name, "/steritrack.v1.TreatmentService/OpenCartridge")
  // answered with `code` (its canonical name, "OK", "FAILED_PRECONDITION").
  void CountRequest(std::string_view method, std::string_view code);
  // How long a unary call took, from arrival to its answer.
  void ObserveRequestDuration(std::string_view method, absl::Duration duration);
  // An opening refused by a safety rule, by its reason ("CARTRIDGE_ALREADY_USED").
  void CountOpenRefusal(std::string_view reason);
  // +1 when a write asks for the single SQLite writer, -1 when it lets go of it.
  void WriterQueueChanged(int delta);
  // How long one COMMIT of a write transaction took.
  void ObserveCommit(absl::Duration duration);
  // Pages a read transaction on a reader connection asked for: found in that connection's own
  // cache, or read from the database file (the kernel's page cache or the disk).
  void CountReaderPages(int64_t cached, int64_t from_file);
  void EventStreamOpened();
  void EventStreamClosed();
  // Where the per-product stock gauges come from; none until set.
  void SetStockSource(StockSource source);

  // The whole exposition, every family with its HELP and TYPE.
  std::string Render() const;

  // For tests.
  const CounterFamily& requests() const { return requests_; }
  const CounterFamily& open_refusals() const { return open_refusals_; }
  int64_t writer_queue_depth() const { return writer_queue_.load(); }
  int64_t event_streams_open() const { return event_streams_.load(); }

 private:
  const MetricsOptions options_;
  CounterFamily requests_;
  HistogramFamily request_duration_;
  CounterFamily open_refusals_;
  HistogramFamily commit_duration_;
  // steritrack_reader_pages_total: counted on every read, so two atomics rather than a family.
  std::atomic<int64_t> reader_pages_cached_{0};
  std::atomic<int64_t> reader_pages_file_{0};
  std::atomic<int64_t> writer_queue_{0};
  std::atomic<int64_t> event_streams_{0};
  mutable absl::Mutex stock_mu_;
  StockSource stock_source_ ABSL_GUARDED_BY(stock_mu_);
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_METRICS_H_
