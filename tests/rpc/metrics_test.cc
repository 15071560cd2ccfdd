// The metrics registry's exposition format (escaping, cumulative histogram buckets, _sum and
// _count), the --metrics-listen rules, and the HTTP endpoint on a kernel-chosen port.
#include "server/rpc/metrics.h"

#include <httplib.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics_http.h"
#include "steritrack/strings.h"

namespace steritrack::rpc {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST(MetricValueTest, IsTheShortestRoundTripDecimalOrAnInfinity) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(3), "3");
  EXPECT_EQ(FormatMetricValue(0.0005), "0.0005");
  EXPECT_EQ(FormatMetricValue(2.5), "2.5");
  EXPECT_EQ(FormatMetricValue(123456789), "123456789");  // counters keep every digit
  EXPECT_EQ(FormatMetricValue(1764547200.25), "1764547200.25");
  EXPECT_EQ(FormatMetricValue(-0.5), "-0.5");
  EXPECT_EQ(FormatMetricValue(1e-9), "1e-09");
  EXPECT_EQ(FormatMetricValue(1e300), "1e+300");
  EXPECT_EQ(FormatMetricValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatMetricValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatMetricValue(0.0 / 0.0), "NaN");
}

TEST(MetricValueTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue(R"(a\b"c)"
                             "\n"
                             "d"),
            R"(a\\b\"c\nd)");
}

TEST(CounterFamilyTest, RendersHelpTypeAndOneLinePerLabelSetInOrder) {
  CounterFamily c("x_requests_total", "Calls.\nBy method\\code.", {"method", "code"});
  c.Increment({"/b", "OK"});
  c.Increment({"/a", "OK"}, 2);
  c.Increment({"/b", "OK"});
  c.Increment({"/q\"uote", "NOT_FOUND"});
  EXPECT_EQ(c.Value({"/b", "OK"}), 2);
  EXPECT_EQ(c.Value({"/never", "OK"}), 0);
  std::string out;
  c.Render(&out);
  EXPECT_EQ(out,
            "# HELP x_requests_total Calls.\\nBy method\\\\code.\n"
            "# TYPE x_requests_total counter\n"
            "x_requests_total{method=\"/a\",code=\"OK\"} 2\n"
            "x_requests_total{method=\"/b\",code=\"OK\"} 2\n"
            "x_requests_total{method=\"/q\\\"uote\",code=\"NOT_FOUND\"} 1\n");
}

TEST(HistogramFamilyTest, BucketsAreCumulativeWithInfSumAndCount) {
  HistogramFamily h("x_seconds", "Latency.", {"method"}, {0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 3.0, 50.0}) h.Observe({"/m"}, v);
  EXPECT_EQ(h.Count({"/m"}), 5u);
  std::string out;
  h.Render(&out);
  EXPECT_EQ(out,
            "# HELP x_seconds Latency.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{method=\"/m\",le=\"0.1\"} 2\n"  // le: "less than or equal"
            "x_seconds_bucket{method=\"/m\",le=\"1\"} 3\n"
            "x_seconds_bucket{method=\"/m\",le=\"10\"} 4\n"
            "x_seconds_bucket{method=\"/m\",le=\"+Inf\"} 5\n"
            "x_seconds_sum{method=\"/m\"} 53.65\n"
            "x_seconds_count{method=\"/m\"} 5\n");
}

TEST(HistogramFamilyTest, WithoutLabelsOnlyLeIsALabel) {
  HistogramFamily h("x_commit_seconds", "Commits.", {}, {0.5});
  h.Observe({}, 0.25);
  std::string out;
  h.Render(&out);
  EXPECT_THAT(out, HasSubstr("x_commit_seconds_bucket{le=\"0.5\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("x_commit_seconds_bucket{le=\"+Inf\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("x_commit_seconds_sum 0.25\n"));
  EXPECT_THAT(out, HasSubstr("x_commit_seconds_count 1\n"));
}

TEST(LatencyBucketsTest, SpanHalfAMillisecondToTenSeconds) {
  const std::vector<double>& b = LatencyBuckets();
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b.front(), 0.0005);
  EXPECT_EQ(b.back(), 10);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = StrCat(::testing::TempDir(), "metrics_test.XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string dir_;
};

TEST_F(MetricsTest, RendersEveryFamilyWithBuildInfoAndTheDatabaseFilesSizes) {
  const std::string db = dir_ + "/steritrack.db";
  std::ofstream(db) << std::string(4096, 'x');
  std::ofstream(db + "-wal") << std::string(100, 'w');
  Metrics m({.version = "1.2.3",
             .schema_version = 6,
             .start_time = absl::FromUnixSeconds(1764547200),
             .database_path = db});
  m.CountRequest("/steritrack.v1.TreatmentService/OpenCartridge", "FAILED_PRECONDITION");
  m.ObserveRequestDuration("/steritrack.v1.TreatmentService/OpenCartridge", absl::Milliseconds(3));
  m.CountOpenRefusal("CARTRIDGE_ALREADY_USED");
  m.WriterQueueChanged(+1);
  m.WriterQueueChanged(+1);
  m.WriterQueueChanged(-1);
  m.ObserveCommit(absl::Microseconds(700));
  m.CountReaderPages(/*cached=*/12, /*from_file=*/3);
  m.CountReaderPages(/*cached=*/5, /*from_file=*/0);
  m.EventStreamOpened();
  const std::string out = m.Render();
  EXPECT_THAT(out, HasSubstr("steritrack_requests_total{method=\"/steritrack.v1.TreatmentService/"
                             "OpenCartridge\",code=\"FAILED_PRECONDITION\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("steritrack_request_duration_seconds_bucket{method=\"/steritrack.v1."
                             "TreatmentService/OpenCartridge\",le=\"0.005\"} 1\n"));
  EXPECT_THAT(out,
              HasSubstr("steritrack_open_refusals_total{reason=\"CARTRIDGE_ALREADY_USED\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("# TYPE steritrack_writer_queue_depth gauge\n"
                             "steritrack_writer_queue_depth 1\n"));
  EXPECT_THAT(out, HasSubstr("steritrack_commit_duration_seconds_bucket{le=\"0.001\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("# TYPE steritrack_reader_pages_total counter\n"
                             "steritrack_reader_pages_total{from=\"cache\"} 17\n"
                             "steritrack_reader_pages_total{from=\"file\"} 3\n"));
  EXPECT_THAT(out, HasSubstr("steritrack_database_bytes 4096\n"));
  EXPECT_THAT(out, HasSubstr("steritrack_wal_bytes 100\n"));
  EXPECT_THAT(out, HasSubstr("steritrack_event_streams_open 1\n"));
  EXPECT_THAT(out, HasSubstr("steritrack_build_info{version=\"1.2.3\",schema=\"6\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("steritrack_start_time_seconds 1764547200\n"));
  EXPECT_EQ(out.back(), '\n');
}

TEST_F(MetricsTest, NoWalFileIsZeroBytesAndAnInMemoryDatabaseHasNoSizes) {
  const std::string db = dir_ + "/steritrack.db";
  std::ofstream(db) << "x";
  EXPECT_THAT(Metrics({.database_path = db}).Render(), HasSubstr("steritrack_wal_bytes 0\n"));
  const std::string in_memory = Metrics({.database_path = ":memory:"}).Render();
  EXPECT_THAT(in_memory, HasSubstr("# TYPE steritrack_database_bytes gauge\n"));
  EXPECT_THAT(in_memory, Not(HasSubstr("steritrack_database_bytes 0")));
  EXPECT_THAT(in_memory, Not(HasSubstr("steritrack_wal_bytes 0")));
}

TEST_F(MetricsTest, ReaderPagesHaveNoSamplesUntilCounted) {
  Metrics m({.database_path = ":memory:"});
  // Nothing read yet (and never on PostgreSQL or an in-memory database): no samples.
  EXPECT_THAT(m.Render(), HasSubstr("# TYPE steritrack_reader_pages_total counter\n"));
  EXPECT_THAT(m.Render(), Not(HasSubstr("steritrack_reader_pages_total{")));
  // Each label set appears once counted.
  m.CountReaderPages(/*cached=*/4, /*from_file=*/0);
  EXPECT_THAT(m.Render(), HasSubstr("steritrack_reader_pages_total{from=\"cache\"} 4\n"));
  EXPECT_THAT(m.Render(), Not(HasSubstr("steritrack_reader_pages_total{from=\"file\"}")));
}

// ---------------------------------------------------------------------------------------------------
// --metrics-listen and the endpoint

TEST(MetricsListenTest, ABarePortIsLoopbackAndLocalHostsAreAccepted) {
  absl::StatusOr<MetricsAddress> a = ParseMetricsListen("9464");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9464);
  a = ParseMetricsListen("127.0.0.2:0");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "127.0.0.2");
  EXPECT_EQ(a->port, 0);
  a = ParseMetricsListen("[::1]:9464");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "::1");
  EXPECT_TRUE(ParseMetricsListen("localhost:9464").ok());
}

TEST(MetricsListenTest, NetworkAddressesAreRefusedSayingWhy) {
  for (const char* address :
       {"0.0.0.0:9464", "[::]:9464", "192.168.1.10:9464", ":9464", "metrics.clinic.example:9464"}) {
    absl::StatusOr<MetricsAddress> a = ParseMetricsListen(address);
    ASSERT_FALSE(a.ok()) << address;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
    if (std::string_view(address) != ":9464") {
      EXPECT_THAT(std::string(a.status().message()), HasSubstr("this machine only")) << address;
    }
  }
}

TEST(MetricsListenTest, MalformedAddressesNameTheForms) {
  for (const char* address : {"", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536", "[::1]9464",
                              "::1:9464", "unix:/run/steritrack.sock", "127.0.0.1:-1"}) {
    absl::StatusOr<MetricsAddress> a = ParseMetricsListen(address);
    ASSERT_FALSE(a.ok()) << address;
    EXPECT_THAT(std::string(a.status().message()), HasSubstr("PORT, HOST:PORT or [IPV6]:PORT"))
        << address;
  }
}

TEST(MetricsHttpServerTest, ServesTheExpositionAtMetricsOnAKernelChosenPort) {
  Metrics m({.version = "9.9.9", .schema_version = 6});
  m.CountRequest("/steritrack.v1.InventoryService/GetLot", "OK");
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start({.host = "127.0.0.1", .port = 0}, &m);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  EXPECT_EQ((*server)->address(), StrCat("127.0.0.1:", (*server)->port()));

  httplib::Client client("127.0.0.1", (*server)->port());
  httplib::Result got = client.Get("/metrics");
  ASSERT_TRUE(got) << httplib::to_string(got.error());
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(got->body, StartsWith("# HELP steritrack_requests_total"));
  EXPECT_THAT(got->body, HasSubstr("steritrack_requests_total{method=\"/steritrack.v1."
                                   "InventoryService/GetLot\",code=\"OK\"} 1\n"));
  EXPECT_EQ(m.Render(), got->body);

  httplib::Result other = client.Get("/");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);

  (*server)->Stop();
  (*server)->Stop();  // idempotent
  httplib::Client after("127.0.0.1", (*server)->port());
  EXPECT_FALSE(after.Get("/metrics"));
}

TEST(MetricsHttpServerTest, AStopRightAfterStartReturnsAndATakenPortIsRefused) {
  Metrics m({});
  for (int i = 0; i < 20; ++i) {
    auto server = MetricsHttpServer::Start({.host = "127.0.0.1", .port = 0}, &m);
    ASSERT_TRUE(server.ok()) << server.status();
  }  // each destroyed, and so stopped, at once
  auto first = MetricsHttpServer::Start({.host = "127.0.0.1", .port = 0}, &m);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MetricsHttpServer::Start({.host = "127.0.0.1", .port = (*first)->port()}, &m);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("cannot serve metrics"));
}

}  // namespace
}  // namespace steritrack::rpc
