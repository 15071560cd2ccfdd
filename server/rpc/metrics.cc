#include "server/rpc/metrics.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <optional>
#include <utility>

#include "steritrack/strings.h"

namespace steritrack::rpc {
namespace {

std::string EscapeHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void RenderHeader(std::string* out, std::string_view name, std::string_view help,
                  std::string_view type) {
  StrAppend(out, "# HELP ", name, " ", EscapeHelp(help), "\n# TYPE ", name, " ", type, "\n");
}

// {a="x",b="y"} with `extra` (already rendered, e.g. le="0.5") last; nothing when there are no
// labels at all.
std::string Labels(const std::vector<std::string>& names, const LabelValues& values,
                   std::string_view extra = {}) {
  if (names.empty() && extra.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    StrAppend(&out, i == 0 ? "" : ",", names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!extra.empty()) StrAppend(&out, names.empty() ? "" : ",", extra);
  out += "}";
  return out;
}

void RenderSample(std::string* out, std::string_view name, std::string_view labels, double value) {
  StrAppend(out, name, labels, " ", FormatMetricValue(value), "\n");
}

// The size of a plain file path, or nullopt; `missing_is_zero` for a file that comes and goes
// (SQLite's WAL).
std::optional<double> FileBytes(const std::string& path, bool missing_is_zero) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0) return static_cast<double>(st.st_size);
  if (missing_is_zero && errno == ENOENT) return 0.0;
  return std::nullopt;
}

bool IsPlainPath(std::string_view path) {
  return !path.empty() && path != ":memory:" && !path.starts_with("file:");
}

}  // namespace

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Shortest round-trip digits, in plain decimals across the range metrics live in (bucket bounds
  // read le="0.0005", not le="5e-04", as PromQL queries spell them), else as the shortest form.
  const double magnitude = std::fabs(value);
  const bool plain = value == 0 || (magnitude >= 1e-4 && magnitude < 1e15);
  char buffer[64];
  auto [end, ec] =
      plain ? std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed)
            : std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (ec != std::errc()) return "NaN";  // cannot happen for a double in 64 characters
  return std::string(buffer, end);
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// CounterFamily

CounterFamily::CounterFamily(std::string name, std::string help,
                             std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void CounterFamily::Increment(const LabelValues& values, double by) {
  absl::MutexLock lock(&mu_);
  values_[values] += by;
}

double CounterFamily::Value(const LabelValues& values) const {
  absl::MutexLock lock(&mu_);
  auto it = values_.find(values);
  return it == values_.end() ? 0 : it->second;
}

void CounterFamily::Render(std::string* out) const {
  RenderHeader(out, name_, help_, "counter");
  absl::MutexLock lock(&mu_);
  for (const auto& [values, value] : values_) {
    RenderSample(out, name_, Labels(label_names_, values), value);
  }
}

// ---------------------------------------------------------------------------------------------------
// HistogramFamily

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> label_names, std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {}

void HistogramFamily::Observe(const LabelValues& values, double value) {
  // The first bound not below `value`: buckets are "less than or equal".
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  absl::MutexLock lock(&mu_);
  Series& s = series_[values];
  if (s.buckets.empty()) s.buckets.assign(bounds_.size() + 1, 0);
  ++s.buckets[bucket];
  s.sum += value;
  ++s.count;
}

uint64_t HistogramFamily::Count(const LabelValues& values) const {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(values);
  return it == series_.end() ? 0 : it->second.count;
}

void HistogramFamily::Render(std::string* out) const {
  RenderHeader(out, name_, help_, "histogram");
  const std::string bucket_name = name_ + "_bucket";
  absl::MutexLock lock(&mu_);
  for (const auto& [values, s] : series_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds_.size(); ++i) {
      cumulative += s.buckets[i];
      RenderSample(
          out, bucket_name,
          Labels(label_names_, values, StrCat("le=\"", FormatMetricValue(bounds_[i]), "\"")),
          static_cast<double>(cumulative));
    }
    RenderSample(out, bucket_name, Labels(label_names_, values, "le=\"+Inf\""),
                 static_cast<double>(s.count));
    RenderSample(out, name_ + "_sum", Labels(label_names_, values), s.sum);
    RenderSample(out, name_ + "_count", Labels(label_names_, values), static_cast<double>(s.count));
  }
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return kBuckets;
}

// ---------------------------------------------------------------------------------------------------
// Metrics

Metrics::Metrics(MetricsOptions options)
    : options_(std::move(options)),
      requests_("steritrack_requests_total",
                "Finished gRPC calls by full method name and status code.", {"method", "code"}),
      request_duration_("steritrack_request_duration_seconds",
                        "Time from a unary call's arrival to its answer, by full method name.",
                        {"method"}, LatencyBuckets()),
      open_refusals_("steritrack_open_refusals_total",
                     "Cartridge openings refused by a safety rule, by reason (each is also a "
                     "CARTRIDGE_OPEN_REFUSED entry in the audit trail).",
                     {"reason"}),
      commit_duration_("steritrack_commit_duration_seconds",
                       "Time of the COMMIT of each SQLite write transaction.", {},
                       LatencyBuckets()) {}

void Metrics::CountRequest(std::string_view method, std::string_view code) {
  requests_.Increment({std::string(method), std::string(code)});
}

void Metrics::ObserveRequestDuration(std::string_view method, absl::Duration duration) {
  request_duration_.Observe({std::string(method)}, absl::ToDoubleSeconds(duration));
}

void Metrics::CountOpenRefusal(std::string_view reason) {
  open_refusals_.Increment({std::string(reason)});
}

void Metrics::WriterQueueChanged(int delta) { writer_queue_.fetch_add(delta); }

void Metrics::ObserveCommit(absl::Duration duration) {
  commit_duration_.Observe({}, absl::ToDoubleSeconds(duration));
}

void Metrics::CountReaderPages(int64_t cached, int64_t from_file) {
  reader_pages_cached_.fetch_add(cached, std::memory_order_relaxed);
  reader_pages_file_.fetch_add(from_file, std::memory_order_relaxed);
}

void Metrics::EventStreamOpened() { event_streams_.fetch_add(1); }
void Metrics::EventStreamClosed() { event_streams_.fetch_sub(1); }

void Metrics::SetStockSource(StockSource source) {
  absl::MutexLock lock(&stock_mu_);
  stock_source_ = std::move(source);
}

std::string Metrics::Render() const {
  std::string out;
  requests_.Render(&out);
  request_duration_.Render(&out);
  open_refusals_.Render(&out);

  RenderHeader(&out, "steritrack_writer_queue_depth",
               "Writes waiting for or holding the single SQLite writer.", "gauge");
  RenderSample(&out, "steritrack_writer_queue_depth", "",
               static_cast<double>(writer_queue_.load()));
  commit_duration_.Render(&out);
  RenderHeader(&out, "steritrack_reader_pages_total",
               "Pages the SQLite reader connections asked for, by where they came from: \"cache\" "
               "(the connection's own page cache) or \"file\" (read from the database file or its "
               "write-ahead log: the kernel's page cache or the disk).",
               "counter");
  // As a counter family's label sets: each appears once counted (none on PostgreSQL or in memory).
  for (const auto& [from, pages] : {std::pair{"cache", reader_pages_cached_.load()},
                                    std::pair{"file", reader_pages_file_.load()}}) {
    if (pages > 0) {
      RenderSample(&out, "steritrack_reader_pages_total", Labels({"from"}, {from}),
                   static_cast<double>(pages));
    }
  }

  const bool plain = IsPlainPath(options_.database_path);
  RenderHeader(&out, "steritrack_database_bytes", "Size of the SQLite database file.", "gauge");
  if (std::optional<double> bytes = plain ? FileBytes(options_.database_path, false) : std::nullopt;
      bytes) {
    RenderSample(&out, "steritrack_database_bytes", "", *bytes);
  }
  RenderHeader(&out, "steritrack_wal_bytes",
               "Size of the SQLite write-ahead log (0 when there is none).", "gauge");
  if (std::optional<double> bytes =
          plain ? FileBytes(options_.database_path + "-wal", true) : std::nullopt;
      bytes) {
    RenderSample(&out, "steritrack_wal_bytes", "", *bytes);
  }

  RenderHeader(&out, "steritrack_event_streams_open", "Open EventService streams.", "gauge");
  RenderSample(&out, "steritrack_event_streams_open", "",
               static_cast<double>(event_streams_.load()));

  // Per product with a par level, counted now: what can be opened, what is about to expire.
  std::optional<std::vector<StockGauge>> stock;
  {
    absl::MutexLock lock(&stock_mu_);
    if (stock_source_) stock = stock_source_();
  }
  struct StockFamily {
    const char* name;
    const char* help;
    int64_t StockGauge::*value;
  };
  for (const StockFamily& f :
       {StockFamily{"steritrack_stock_openable_units",
                    "Units OpenCartridge would open today, per product with a par level.",
                    &StockGauge::openable},
        StockFamily{"steritrack_stock_expiring_units",
                    "Openable units expiring within the product's window, per product.",
                    &StockGauge::expiring},
        StockFamily{"steritrack_stock_par_units", "The par level per product.",
                    &StockGauge::par}}) {
    RenderHeader(&out, f.name, f.help, "gauge");
    if (!stock.has_value()) continue;
    for (const StockGauge& g : *stock) {
      RenderSample(&out, f.name, Labels({"gtin"}, {g.gtin}), static_cast<double>(g.*f.value));
    }
  }

  RenderHeader(&out, "steritrack_build_info",
               "Always 1; the labels name the version and the schema it writes.", "gauge");
  RenderSample(&out, "steritrack_build_info",
               Labels({"version", "schema"}, {options_.version, StrCat(options_.schema_version)}),
               1);
  RenderHeader(&out, "steritrack_start_time_seconds",
               "When this steritrackd started, in seconds since the Unix epoch.", "gauge");
  RenderSample(&out, "steritrack_start_time_seconds", "",
               absl::ToDoubleSeconds(options_.start_time - absl::UnixEpoch()));
  return out;
}

}  // namespace steritrack::rpc
