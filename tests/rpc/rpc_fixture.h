// What the sterilisation and report RPC-tier tests share: a real in-process RpcServer on port 0
// offering every steritrack.v1 service, over a SQLite store in a temporary file, with a fixed test
// clock and its log kept in memory (LogLines), the store wrapped so that a test can make a call to
// it fail; and a matcher for refusals as a client sees them (status code plus a google.rpc.Status
// carrying exactly one ErrorInfo).
#ifndef STERITRACK_TESTS_RPC_RPC_FIXTURE_H_
#define STERITRACK_TESTS_RPC_RPC_FIXTURE_H_

#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "server/core/access_service.h"
#include "server/core/audit_service.h"
#include "server/core/cartridge_service.h"
#include "server/core/commit_notifier.h"
#include "server/core/export_service.h"
#include "server/core/report_service.h"
#include "server/core/sterilization_service.h"
#include "server/rpc/server.h"
#include "server/storage/bounded_store.h"
#include "server/storage/sqlite_admin.h"
#include "server/storage/sqlite_store.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "steritrack/clock.h"
#include "steritrack/secret.h"
#include "steritrack/store.h"
#include "steritrack/strings.h"
#include "steritrack/v1/audit.grpc.pb.h"
#include "steritrack/v1/export.grpc.pb.h"
#include "steritrack/v1/inventory.grpc.pb.h"
#include "steritrack/v1/report.grpc.pb.h"
#include "steritrack/v1/sterilization.grpc.pb.h"
#include "steritrack/v1/treatment.grpc.pb.h"
#include "tests/core/fake_store.h"
#include "tests/rpc/tokens.h"
#include "tests/test_sha256.h"

namespace steritrack::rpc_test {

inline absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss), absl::UTCTimeZone());
}

class TestClock final : public Clock {
 public:
  explicit TestClock(absl::Time t) : micros_(absl::ToUnixMicros(t)) {}
  absl::Time Now() const override { return absl::FromUnixMicros(micros_.load()); }
  void Set(absl::Time t) { micros_.store(absl::ToUnixMicros(t)); }

 private:
  std::atomic<int64_t> micros_;
};

// The google.rpc.Status a client finds in a failed call's details, with its one ErrorInfo.
struct WireError {
  google::rpc::Status status;
  google::rpc::ErrorInfo info;
};

// Succeeds when `s` has `code` and carries a google.rpc.Status with exactly one ErrorInfo, domain
// "steritrack" and `reason`; fills `out`.
inline ::testing::AssertionResult IsRefusal(const grpc::Status& s, grpc::StatusCode code,
                                            std::string_view reason, WireError* out = nullptr) {
  if (s.error_code() != code) {
    return ::testing::AssertionFailure()
           << "code " << s.error_code() << " (" << s.error_message() << "), expected " << code;
  }
  WireError wire;
  if (!wire.status.ParseFromString(s.error_details())) {
    return ::testing::AssertionFailure() << "error_details is not a google.rpc.Status";
  }
  if (wire.status.details_size() != 1 || !wire.status.details(0).UnpackTo(&wire.info)) {
    return ::testing::AssertionFailure()
           << wire.status.details_size() << " details, expected exactly one ErrorInfo";
  }
  if (wire.info.domain() != "steritrack") {
    return ::testing::AssertionFailure() << "domain " << wire.info.domain();
  }
  if (wire.info.reason() != reason) {
    return ::testing::AssertionFailure() << "reason " << wire.info.reason() << ", expected "
                                         << reason << " (" << s.error_message() << ")";
  }
  if (out != nullptr) *out = std::move(wire);
  return ::testing::AssertionSuccess();
}

// INVALID_ARGUMENT (reason INVALID_FIELD) naming `field`.
inline ::testing::AssertionResult IsInvalidField(const grpc::Status& s, std::string_view field) {
  WireError e;
  ::testing::AssertionResult refusal =
      IsRefusal(s, grpc::StatusCode::INVALID_ARGUMENT, "INVALID_FIELD", &e);
  if (!refusal) return refusal;
  auto it = e.info.metadata().find("field");
  if (it == e.info.metadata().end() || it->second != field) {
    return ::testing::AssertionFailure()
           << "names field '" << (it == e.info.metadata().end() ? "" : it->second)
           << "', expected '" << field << "'";
  }
  return ::testing::AssertionSuccess();
}

inline std::string Meta(const WireError& e, const std::string& key) {
  auto it = e.info.metadata().find(key);
  return it == e.info.metadata().end() ? StrCat("<no ", key, ">") : it->second;
}

#define ASSERT_RPC_OK(expr)                                                      \
  do {                                                                           \
    const grpc::Status rpc_ok_status_ = (expr);                                  \
    ASSERT_TRUE(rpc_ok_status_.ok())                                             \
        << rpc_ok_status_.error_code() << " " << rpc_ok_status_.error_message(); \
  } while (false)

// Every service, as steritrackd wires them, in the clinic's time zone (UTC here).
class FullServerTest : public ::testing::Test {
 protected:
  explicit FullServerTest(absl::Time now) : clock_(now) {}

  // With queues, a call takes its place in them when the server queues it, as in steritrackd.
  std::function<absl::StatusOr<std::shared_ptr<void>>()> AdmitWith(
      absl::StatusOr<BoundedStore::Place> (BoundedStore::*admit)()) {
    if (bounded_store_ == nullptr) return nullptr;
    return [store = bounded_store_.get(), admit] { return (store->*admit)(); };
  }

  void SetUp() override {
    std::string pattern = StrCat(::testing::TempDir(), "rpc_fixture.XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
    dir_ = pattern;
    const std::string file = StrCat(dir_, "/steritrack.db");
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenSqliteStore({.path = vfs_.empty() ? file : StrCat("file:", file, "?vfs=", vfs_)});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    tokens_ = std::make_unique<TokenBook>(StrCat(dir_, "/steritrack.db"));
    secrets_ = NewSecretSource();
    access_core_ = std::make_unique<AccessService>(AccessService::Options{.store = store_.get(),
                                                                          .sha256 = TestSha256(),
                                                                          .secrets = secrets_.get(),
                                                                          .clock = &clock_});
    database_ = NewSqliteDatabaseAdmin(StrCat(dir_, "/steritrack.db"));
    faulty_store_ = std::make_unique<FaultInjectingStore>(store_.get());
    Store* services_store = faulty_store_.get();
    if (queues_.has_value()) {
      bounded_store_ = std::make_unique<BoundedStore>(faulty_store_.get(), *queues_);
      services_store = bounded_store_.get();
    }
    cartridges_core_ = std::make_unique<CartridgeService>(CartridgeServiceOptions{
        .store = services_store, .sha256 = TestSha256(), .clock = &clock_, .commits = &commits_});
    sterilization_core_ = std::make_unique<SterilizationService>(SterilizationServiceOptions{
        .store = services_store, .sha256 = TestSha256(), .clock = &clock_, .commits = &commits_});
    reports_core_ = std::make_unique<ReportService>(
        ReportServiceOptions{.store = services_store, .sha256 = TestSha256(), .clock = &clock_});
    audit_core_ = std::make_unique<AuditService>(
        AuditServiceOptions{.store = services_store, .sha256 = TestSha256()});
    exports_core_ = std::make_unique<ExportService>(
        ExportServiceOptions{.store = services_store, .sha256 = TestSha256(), .clock = &clock_});
    log_sink_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
    auto log = log_also_ == nullptr
                   ? std::make_shared<spdlog::logger>("rpc_fixture", log_sink_)
                   : std::make_shared<spdlog::logger>(
                         "rpc_fixture", spdlog::sinks_init_list{log_sink_, log_also_});
    log->set_pattern("%l %v");
    absl::StatusOr<std::unique_ptr<rpc::RpcServer>> server =
        rpc::RpcServer::Start({.listen = "127.0.0.1:0",
                               .core = cartridges_core_.get(),
                               .sterilization = sterilization_core_.get(),
                               .reports = reports_core_.get(),
                               .exports = exports_core_.get(),
                               .log = log,
                               .audit = audit_core_.get(),
                               .commits = &commits_,
                               .access = access_core_.get(),
                               .database = database_.get(),
                               .authorize_reflection = authorize_reflection_,
                               .limits = limits_,
                               .admit_write = AdmitWith(&BoundedStore::AdmitWrite),
                               .admit_read = AdmitWith(&BoundedStore::AdmitRead)});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    // The usual callers' tokens first, so their TOKEN_CREATED entries precede each test's own.
    for (const char* name : {"tech.sam", "nurse.kim", "clerk.ana", "lead.tech", "manager.ann"}) {
      tokens_->For(name);
    }
    channel_ = grpc::CreateChannel(StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    inventory_ = v1::InventoryService::NewStub(channel_);
    treatments_ = v1::TreatmentService::NewStub(channel_);
    sterilization_ = v1::SterilizationService::NewStub(channel_);
    reports_ = v1::ReportService::NewStub(channel_);
    audit_ = v1::AuditService::NewStub(channel_);
    exports_ = v1::ExportService::NewStub(channel_);
  }

  void TearDown() override {
    inventory_.reset();
    treatments_.reset();
    sterilization_.reset();
    reports_.reset();
    audit_.reset();
    exports_.reset();
    channel_.reset();
    server_.reset();
    audit_core_.reset();
    access_core_.reset();
    reports_core_.reset();
    exports_core_.reset();
    sterilization_core_.reset();
    cartridges_core_.reset();
    bounded_store_.reset();
    faulty_store_.reset();
    database_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // A client context with the bearer token of `actor` (an admin, made by steritrackd token create;
  // none for "")
  // and a generous deadline, so that a broken server fails the test instead of hanging it.
  std::unique_ptr<grpc::ClientContext> Context(const std::string& actor = "tech.sam") {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!actor.empty()) tokens_->Authorize(*ctx, actor);  // empty: no credentials
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return ctx;
  }

  std::string MustStartTreatment(const std::string& room = "Room 3") {
    v1::StartTreatmentRequest req;
    req.set_room(room);
    req.set_clinician("dr.lee");
    req.set_client_ref("client-0042");
    v1::Treatment resp;
    grpc::Status s = treatments_->StartTreatment(Context("nurse.kim").get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return resp.id();
  }

  // The server's last 1,000 log lines, each "LEVEL MESSAGE", oldest first.
  std::vector<std::string> LogLines() { return log_sink_->last_formatted(); }

  // A second sink for the server's log, when a fixture sets it in its constructor.
  std::shared_ptr<spdlog::sinks::sink> log_also_;
  // Who may use reflection; a test fixture may set another hook in its constructor.
  // Empty: the server's own (any valid credential).
  rpc::CallAuthorizer authorize_reflection_;
  // The database's bounded queue (server/storage/bounded_store.h) between the services and the
  // fault-injecting store, when a fixture sets it in its constructor; and the transport's limits.
  std::optional<BoundedStoreOptions> queues_;
  rpc::ServerLimits limits_;
  // The SQLite VFS the store opens its file with (as a "file:" URI), when a fixture sets one in its
  // constructor, e.g. the fault-injecting one (server/storage/fault_vfs.h); empty: the default.
  std::string vfs_;
  TestClock clock_;
  std::string dir_;
  CommitNotifier commits_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_sink_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<DatabaseAdmin> database_;  // backups and status, on store_'s file
  // What the services use: store_, failing a call when a test asks.
  std::unique_ptr<FaultInjectingStore> faulty_store_;
  std::unique_ptr<BoundedStore> bounded_store_;
  std::unique_ptr<TokenBook> tokens_;
  std::unique_ptr<SecretSource> secrets_;
  std::unique_ptr<AccessService> access_core_;
  std::unique_ptr<CartridgeService> cartridges_core_;
  std::unique_ptr<SterilizationService> sterilization_core_;
  std::unique_ptr<ReportService> reports_core_;
  std::unique_ptr<ExportService> exports_core_;
  std::unique_ptr<AuditService> audit_core_;
  std::unique_ptr<rpc::RpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::InventoryService::Stub> inventory_;
  std::unique_ptr<v1::TreatmentService::Stub> treatments_;
  std::unique_ptr<v1::SterilizationService::Stub> sterilization_;
  std::unique_ptr<v1::ReportService::Stub> reports_;
  std::unique_ptr<v1::AuditService::Stub> audit_;
  std::unique_ptr<v1::ExportService::Stub> exports_;
};

}  // namespace steritrack::rpc_test

#endif  // STERITRACK_TESTS_RPC_RPC_FIXTURE_H_
