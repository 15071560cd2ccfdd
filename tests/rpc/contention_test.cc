// Contention (issue 12, item 4): one real server on a loopback port over a real SQLite file, behind
// the bounded queues steritrackd puts in front of the database, with writers, readers, an event
// stream (WatchEvents) and a compliance report running at once, each client on its own connection.
//   - MixedLoadNeverLeaksABusyDatabase: STERITRACK_CONTENTION_TXNS transactions in total (5,000
//     in the quick tier; the extended run sets 50,000), 60% writes (receive, open, dispose, start
//     and end treatments, every one with a request id) and 40% reads and reports. No client ever
//     sees anything but OK or RESOURCE_EXHAUSTED SERVER_BUSY (counted, retried with the same
//     request id): no SQLITE_BUSY (UNAVAILABLE), INTERNAL or UNKNOWN. Then every acknowledged write
//     is stored exactly once, the stream delivered every event once in order, the file's integrity
//     check is ok and the audit chain verifies. Prints the figures.
//   - Races: many clients at once on one cartridge (exactly one open succeeds), on one load's
//     indicator (exactly one result is recorded) and release (exactly one succeeds), and one
//     request id (exactly one record; every caller gets the same answer).
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <latch>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "steritrack/v1/events.grpc.pb.h"
#include "tests/rpc/db_inspector.h"
#include "tests/rpc/rpc_fixture.h"

namespace steritrack::rpc_test {
namespace {

const absl::Time kNow = Utc(2026, 11, 26, 10, 0, 0);
constexpr std::string_view kGtin = "09506000134352";

std::string Unit(std::string_view serial) {
  return StrCat("(01)", kGtin, "(17)271231(10)LOT-C(21)", serial);
}

// Status counts across threads, keyed "OK", "RESOURCE_EXHAUSTED/SERVER_BUSY", "INTERNAL/..."; keeps
// the first few unexpected messages.
class Tally {
 public:
  // Counts `s`; true when it is the bounded queue's SERVER_BUSY refusal (to be retried).
  bool Add(const grpc::Status& s) {
    std::string key = "OK";
    bool busy = false;
    if (!s.ok()) {
      WireError e;
      const bool refusal = IsRefusal(s, grpc::StatusCode::RESOURCE_EXHAUSTED, "SERVER_BUSY", &e);
      busy = static_cast<bool>(refusal);
      key = busy ? "RESOURCE_EXHAUSTED/SERVER_BUSY" : StrCat("code ", s.error_code());
    }
    absl::MutexLock lock(&mu_);
    ++counts_[key];
    if (!s.ok() && !busy && unexpected_.size() < 5) {
      unexpected_.push_back(StrCat(key, ": ", s.error_message()));
    }
    return busy;
  }
  std::map<std::string, int64_t> counts() {
    absl::MutexLock lock(&mu_);
    return counts_;
  }
  std::vector<std::string> unexpected() {
    absl::MutexLock lock(&mu_);
    return unexpected_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, int64_t> counts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> unexpected_ ABSL_GUARDED_BY(mu_);
};

// One client: its own connection and stubs.
struct Client {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::InventoryService::Stub> inventory;
  std::unique_ptr<v1::TreatmentService::Stub> treatments;
  std::unique_ptr<v1::SterilizationService::Stub> sterilization;
  std::unique_ptr<v1::ReportService::Stub> reports;
};

class ContentionTest : public FullServerTest {
 protected:
  // Behind the bounded queues, with steritrackd's default depths.
  ContentionTest() : FullServerTest(kNow) { queues_ = BoundedStoreOptions{}; }

  void SetUp() override {
    FullServerTest::SetUp();
    if (HasFatalFailure()) return;
    inspector_ = std::make_unique<Inspector>(StrCat(dir_, "/steritrack.db"));
  }
  void TearDown() override {
    inspector_.reset();
    FullServerTest::TearDown();
  }

  Client NewClient() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    Client c;
    c.channel = grpc::CreateCustomChannel(StrCat("127.0.0.1:", server_->port()),
                                          grpc::InsecureChannelCredentials(), args);
    c.inventory = v1::InventoryService::NewStub(c.channel);
    c.treatments = v1::TreatmentService::NewStub(c.channel);
    c.sterilization = v1::SterilizationService::NewStub(c.channel);
    c.reports = v1::ReportService::NewStub(c.channel);
    // Connected before it races: a first connect attempt can fail transiently on a busy machine
    // (seen once in CI), and the channel then retries after its back-off, as a real client's does.
    EXPECT_TRUE(
        c.channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30)))
        << "client could not connect to 127.0.0.1:" << server_->port();
    return c;
  }

  // Calls `rpc` until it is not refused SERVER_BUSY, counting every answer in `tally` and every
  // call in `calls`.
  template <typename Rpc>
  grpc::Status Call(Tally& tally, std::atomic<int64_t>& calls, Rpc rpc) {
    while (true) {
      grpc::Status s = rpc();
      calls.fetch_add(1);
      if (!tally.Add(s)) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // back off, then retry
    }
  }

  grpc::Status Receive(Client& c, const std::vector<std::string>& barcodes, const std::string& rid,
                       v1::ReceiveCartridgesResponse* out = nullptr) {
    v1::ReceiveCartridgesRequest req;
    for (const std::string& b : barcodes) req.add_barcodes(b);
    req.set_request_id(rid);
    v1::ReceiveCartridgesResponse resp;
    grpc::Status s = c.inventory->ReceiveCartridges(Context("nurse.kim").get(), req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }
  grpc::Status Start(Client& c, const std::string& rid, std::string* id) {
    v1::StartTreatmentRequest req;
    req.set_room("Room 3");
    req.set_clinician("dr.lee");
    req.set_client_ref("client-0042");
    req.set_request_id(rid);
    v1::Treatment resp;
    grpc::Status s = c.treatments->StartTreatment(Context("nurse.kim").get(), req, &resp);
    if (s.ok()) *id = resp.id();
    return s;
  }
  grpc::Status End(Client& c, const std::string& id, const std::string& rid) {
    v1::EndTreatmentRequest req;
    req.set_id(id);
    req.set_request_id(rid);
    v1::Treatment resp;
    return c.treatments->EndTreatment(Context("nurse.kim").get(), req, &resp);
  }
  grpc::Status Open(Client& c, const std::string& barcode, const std::string& treatment,
                    const std::string& rid) {
    v1::OpenCartridgeRequest req;
    req.set_barcode(barcode);
    req.set_treatment_id(treatment);
    req.set_request_id(rid);
    v1::Cartridge resp;
    return c.treatments->OpenCartridge(Context("nurse.kim").get(), req, &resp);
  }
  grpc::Status Dispose(Client& c, const std::string& barcode, const std::string& rid) {
    v1::DisposeCartridgeRequest req;
    req.set_barcode(barcode);
    req.set_container_id("SHARPS-7");
    req.set_request_id(rid);
    v1::Cartridge resp;
    return c.treatments->DisposeCartridge(Context("nurse.kim").get(), req, &resp);
  }

  // A packed item in a new load on GRAV-1 with passing parameters; returns the load's id.
  std::string MustMakeLoad(const std::string& item, int64_t cycle) {
    if (cycle == 1) {
      v1::CreateSterilizerRequest req;
      req.set_name("GRAV-1");
      req.set_type(v1::STERILIZER_TYPE_GRAVITY);
      v1::Sterilizer resp;
      EXPECT_TRUE(sterilization_->CreateSterilizer(Context().get(), req, &resp).ok());
    }
    {
      v1::CreateItemRequest req;
      req.set_serial(item);
      req.set_type("handpiece");
      req.set_ifu_max_cycles(500);
      v1::ReusableItem resp;
      EXPECT_TRUE(sterilization_->CreateItem(Context().get(), req, &resp).ok());
      v1::PackItemRequest pack;
      pack.set_serial(item);
      EXPECT_TRUE(sterilization_->PackItem(Context().get(), pack, &resp).ok());
    }
    v1::CreateLoadRequest req;
    req.set_sterilizer("GRAV-1");
    req.set_cycle_number(cycle);
    req.set_cycle_type("134C-4MIN");
    req.add_item_serials(item);
    v1::Load load;
    EXPECT_TRUE(sterilization_->CreateLoad(Context().get(), req, &load).ok());
    v1::RecordCycleParametersRequest params;
    params.set_load_id(load.id());
    params.mutable_start_time()->set_seconds(absl::ToUnixSeconds(kNow - absl::Minutes(30)));
    params.mutable_end_time()->set_seconds(absl::ToUnixSeconds(kNow - absl::Minutes(10)));
    params.set_exposure_seconds(240);
    params.set_temperature_c(134);
    params.set_pressure_kpa(210);
    params.set_passed(true);
    EXPECT_TRUE(sterilization_->RecordCycleParameters(Context().get(), params, &load).ok());
    return load.id();
  }

  // Runs `body(i)` on `n` threads released at the same moment.
  template <typename Body>
  static void AllAtOnce(int n, Body body) {
    std::latch ready(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        ready.arrive_and_wait();
        body(i);
      });
    }
    for (std::thread& t : threads) t.join();
  }

  std::unique_ptr<Inspector> inspector_;
};

int64_t ContentionTxns() {
  const char* n = std::getenv("STERITRACK_CONTENTION_TXNS");
  return n != nullptr && std::atoll(n) > 0 ? std::atoll(n) : 5000;
}

TEST_F(ContentionTest, MixedLoadNeverLeaksABusyDatabase) {
  const int64_t total = ContentionTxns();
  constexpr int kWriters = 6;
  constexpr int kReaders = 3;
  // A write round is: receive, open, dispose (and every 20 rounds end and start a treatment).
  const int64_t rounds_per_writer = std::max<int64_t>(1, total * 6 / 10 / kWriters / 3);
  std::atomic<int64_t> read_tickets{total - rounds_per_writer * kWriters * 3};
  Client seed = NewClient();
  for (int i = 0; i < 20; ++i) ASSERT_RPC_OK(Receive(seed, {Unit(StrCat("SEED-", i))}, ""));

  Tally tally;
  std::atomic<int64_t> calls{0};
  std::atomic<int> writers_left{kWriters};
  absl::Mutex acked_mu;
  std::vector<std::string> acked;  // request ids of acknowledged writes

  // The event stream, from the first event: every one once, in order, without a gap.
  absl::Mutex stream_mu;
  int64_t streamed = 0;  // the last seq received
  bool stream_in_order = true;
  grpc::ClientContext stream_ctx;
  tokens_->Authorize(stream_ctx, "tech.sam");
  stream_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(20));
  Client stream_client = NewClient();
  auto events = v1::EventService::NewStub(stream_client.channel);
  std::thread stream([&] {
    auto reader = events->WatchEvents(&stream_ctx, v1::WatchEventsRequest());
    v1::WatchEventsResponse event;
    while (reader->Read(&event)) {
      absl::MutexLock lock(&stream_mu);
      if (event.event().sequence() != streamed + 1) stream_in_order = false;
      streamed = event.event().sequence();
    }
    static_cast<void>(reader->Finish());
  });

  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Client c = NewClient();
      std::vector<std::string> mine;
      std::string treatment;
      auto write = [&](const std::string& rid, auto rpc) {
        grpc::Status s = Call(tally, calls, rpc);
        if (s.ok()) mine.push_back(rid);
        return s.ok();
      };
      for (int64_t r = 0; r < rounds_per_writer; ++r) {
        if (r % 20 == 0) {
          if (!treatment.empty()) {
            const std::string rid = StrCat("w", w, "-end-", r);
            write(rid, [&] { return End(c, treatment, rid); });
          }
          const std::string rid = StrCat("w", w, "-start-", r);
          if (!write(rid, [&] { return Start(c, rid, &treatment); })) break;
        }
        const std::string barcode = Unit(StrCat("W", w, "-", r));
        const std::string receive = StrCat("w", w, "-receive-", r);
        const std::string open = StrCat("w", w, "-open-", r);
        const std::string dispose = StrCat("w", w, "-dispose-", r);
        if (!write(receive, [&] { return Receive(c, {barcode}, receive); })) continue;
        if (!write(open, [&] { return Open(c, barcode, treatment, open); })) continue;
        write(dispose, [&] { return Dispose(c, barcode, dispose); });
      }
      absl::MutexLock lock(&acked_mu);
      acked.insert(acked.end(), mine.begin(), mine.end());
      --writers_left;
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      Client c = NewClient();
      for (int64_t i = 0; read_tickets.fetch_sub(1) > 0; ++i) {
        Call(tally, calls, [&] {
          if (i % 3 == 0) {
            v1::ListCartridgesRequest req;
            req.set_page_size(50);
            v1::ListCartridgesResponse resp;
            return c.inventory->ListCartridges(Context().get(), req, &resp);
          }
          if (i % 3 == 1) {
            v1::GetStockRequest req;
            v1::Stock resp;
            return c.reports->GetStock(Context().get(), req, &resp);
          }
          v1::GetCartridgeRequest req;
          req.set_barcode(Unit(StrCat("SEED-", (i + r) % 20)));
          v1::Cartridge resp;
          return c.inventory->GetCartridge(Context().get(), req, &resp);
        });
      }
    });
  }
  int64_t reports = 0;
  threads.emplace_back([&] {
    Client c = NewClient();
    while (writers_left.load() > 0 && read_tickets.fetch_sub(1) > 0) {
      Call(tally, calls, [&] {
        v1::GetComplianceReportRequest req;
        req.mutable_from_date()->set_year(2026);
        req.mutable_from_date()->set_month(11);
        req.mutable_from_date()->set_day(26);
        req.mutable_to_date()->set_year(2026);
        req.mutable_to_date()->set_month(11);
        req.mutable_to_date()->set_day(27);
        v1::ComplianceReport resp;
        return c.reports->GetComplianceReport(Context("manager.ann").get(), req, &resp);
      });
      ++reports;
    }
  });
  for (std::thread& t : threads) t.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The stream catches up with the last committed event, then is let go.
  const int64_t last_event = inspector_->LastEvent();
  {
    absl::MutexLock lock(&stream_mu);
    const auto caught_up = [&] { return streamed >= last_event; };
    stream_mu.AwaitWithTimeout(absl::Condition(&caught_up), absl::Minutes(2));
  }
  stream_ctx.TryCancel();
  stream.join();

  const std::map<std::string, int64_t> counts = tally.counts();
  std::string figures;
  for (const auto& [key, n] : counts) figures += StrCat(" ", key, "=", n);
  std::printf(
      "contention: %lld transactions (%zu acknowledged writes, %lld reports) by %d writers, %d "
      "readers, a report and an event stream (%lld events) in %.1f s (%.0f/s); statuses:%s\n",
      static_cast<long long>(calls.load()), acked.size(), static_cast<long long>(reports), kWriters,
      kReaders, static_cast<long long>(streamed), elapsed, calls.load() / elapsed, figures.c_str());

  for (const auto& [key, n] : counts) {
    EXPECT_TRUE(key == "OK" || key == "RESOURCE_EXHAUSTED/SERVER_BUSY") << key << " x " << n;
  }
  for (const std::string& message : tally.unexpected()) ADD_FAILURE() << message;
  EXPECT_GE(calls.load(), total);
  // Every acknowledged write stored exactly once, and nothing else under those request ids.
  for (const std::string& rid : acked) EXPECT_EQ(inspector_->StoredAnswers(rid), 1) << rid;
  EXPECT_EQ(inspector_->Int("SELECT count(*) FROM requests WHERE request_id LIKE 'w%'"),
            static_cast<int64_t>(acked.size()));
  EXPECT_TRUE(stream_in_order) << "the stream skipped or repeated an event";
  EXPECT_EQ(streamed, last_event);
  EXPECT_EQ(inspector_->IntegrityCheck(), "ok");
  v1::VerifyAuditTrailResponse verified;
  ASSERT_RPC_OK(
      audit_->VerifyAuditTrail(Context().get(), v1::VerifyAuditTrailRequest(), &verified));
  EXPECT_TRUE(verified.intact()) << "first bad " << verified.first_bad_sequence();
  EXPECT_EQ(verified.entry_count(), inspector_->LastEvent());
}

constexpr int kRacers = 16;

TEST_F(ContentionTest, ManyClientsOpeningOneCartridgeExactlyOneSucceeds) {
  Client seed = NewClient();
  ASSERT_RPC_OK(Receive(seed, {Unit("RACE-1")}, ""));
  std::vector<std::string> treatments(kRacers);
  for (int i = 0; i < kRacers; ++i) treatments[i] = MustStartTreatment(StrCat("Room ", i + 1));
  std::vector<grpc::Status> results(kRacers);
  std::vector<Client> clients;
  for (int i = 0; i < kRacers; ++i) clients.push_back(NewClient());
  AllAtOnce(kRacers, [&](int i) {
    results[i] = Open(clients[i], Unit("RACE-1"), treatments[i], StrCat("open-race-", i));
  });
  int ok = 0;
  for (const grpc::Status& s : results) {
    if (s.ok()) {
      ++ok;
    } else {
      EXPECT_TRUE(IsRefusal(s, grpc::StatusCode::FAILED_PRECONDITION, "CARTRIDGE_ALREADY_USED"));
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(inspector_->Int("SELECT count(*) FROM cartridge_uses"), 1);
  EXPECT_EQ(inspector_->Int("SELECT count(*) FROM events WHERE action = 'CARTRIDGE_OPENED'"), 1);
}

TEST_F(ContentionTest, ManyClientsSendingOneRequestIdGetOneRecordAndTheSameAnswer) {
  std::vector<Client> clients;
  for (int i = 0; i < kRacers; ++i) clients.push_back(NewClient());
  std::vector<grpc::Status> results(kRacers);
  std::vector<v1::ReceiveCartridgesResponse> answers(kRacers);
  AllAtOnce(kRacers, [&](int i) {
    results[i] = Receive(clients[i], {Unit("SAME-1"), Unit("SAME-2")}, "one-delivery", &answers[i]);
  });
  for (int i = 0; i < kRacers; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].error_code() << " "
                                 << results[i].error_message();
    EXPECT_EQ(answers[i].SerializeAsString(), answers[0].SerializeAsString()) << i;
  }
  EXPECT_EQ(answers[0].cartridges_size(), 2);
  EXPECT_EQ(inspector_->StoredAnswers("one-delivery"), 1);
  EXPECT_EQ(inspector_->Int("SELECT count(*) FROM cartridges WHERE serial LIKE 'SAME-%'"), 2);
  EXPECT_EQ(inspector_->Int("SELECT count(*) FROM events WHERE action = 'CARTRIDGE_RECEIVED'"), 2);
}

TEST_F(ContentionTest, ManyClientsRecordingOneLoadsIndicatorOneResultStands) {
  const std::string load = MustMakeLoad("HP-A", 1);
  std::vector<Client> clients;
  for (int i = 0; i < kRacers; ++i) clients.push_back(NewClient());
  std::vector<grpc::Status> results(kRacers);
  // Half read the strip as PASS, half as FAIL.
  auto result_of = [](int i) {
    return i % 2 == 0 ? v1::INDICATOR_RESULT_PASS : v1::INDICATOR_RESULT_FAIL;
  };
  AllAtOnce(kRacers, [&](int i) {
    v1::RecordChemicalIndicatorRequest req;
    req.set_load_id(load);
    req.set_type(5);
    req.set_result(result_of(i));
    req.set_request_id(StrCat("ci-race-", i));
    v1::Load resp;
    results[i] = clients[i].sterilization->RecordChemicalIndicator(Context().get(), req, &resp);
  });
  v1::GetLoadRequest get;
  get.set_id(load);
  v1::Load stored;
  ASSERT_RPC_OK(sterilization_->GetLoad(Context().get(), get, &stored));
  ASSERT_EQ(stored.chemical_indicators_size(), 1);
  const v1::IndicatorResult winner = stored.chemical_indicators(0).result();
  for (int i = 0; i < kRacers; ++i) {
    if (result_of(i) == winner) {
      EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].error_message();
    } else {
      EXPECT_TRUE(
          IsRefusal(results[i], grpc::StatusCode::FAILED_PRECONDITION, "RESULT_ALREADY_RECORDED"))
          << i;
    }
  }
}

TEST_F(ContentionTest, ManyClientsReleasingOneLoadExactlyOneSucceeds) {
  const std::string load = MustMakeLoad("HP-B", 1);
  {
    v1::RecordChemicalIndicatorRequest req;
    req.set_load_id(load);
    req.set_type(5);
    req.set_result(v1::INDICATOR_RESULT_PASS);
    v1::Load resp;
    ASSERT_RPC_OK(sterilization_->RecordChemicalIndicator(Context().get(), req, &resp));
  }
  std::vector<Client> clients;
  for (int i = 0; i < kRacers; ++i) clients.push_back(NewClient());
  std::vector<grpc::Status> results(kRacers);
  AllAtOnce(kRacers, [&](int i) {
    v1::ReleaseLoadRequest req;
    req.set_load_id(load);
    req.set_meaning("parameters and CI reviewed");
    req.set_request_id(StrCat("release-race-", i));
    v1::Load resp;
    results[i] = clients[i].sterilization->ReleaseLoad(Context("lead.tech").get(), req, &resp);
  });
  int ok = 0;
  for (const grpc::Status& s : results) {
    if (s.ok()) {
      ++ok;
    } else {
      EXPECT_TRUE(IsRefusal(s, grpc::StatusCode::FAILED_PRECONDITION, "LOAD_NOT_OPEN"));
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(inspector_->Int("SELECT count(*) FROM events WHERE action = 'LOAD_RELEASED'"), 1);
}

}  // namespace
}  // namespace steritrack::rpc_test
