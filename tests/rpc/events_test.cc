// RPC-tier tests of the integrator event stream (steritrack.v1.EventService) and the audit trail
// service: a real in-process RpcServer on port 0 over a SQLite store in a temporary file. The
// stream is read while other threads write, and must deliver every committed event once, in order,
// with no gap; a caught-up stream must not hold up the server's shutdown.
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/access_service.h"
#include "server/core/audit_service.h"
#include "server/core/cartridge_service.h"
#include "server/core/commit_notifier.h"
#include "server/rpc/server.h"
#include "server/storage/sqlite_store.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/null_sink.h"
#include "steritrack/clock.h"
#include "steritrack/secret.h"
#include "steritrack/strings.h"
#include "steritrack/v1/audit.grpc.pb.h"
#include "steritrack/v1/events.grpc.pb.h"
#include "tests/rpc/tokens.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

constexpr std::string_view kGtin = "09506000134352";

class StillClock final : public Clock {
 public:
  absl::Time Now() const override {
    return absl::FromCivil(absl::CivilSecond(2026, 11, 26, 10, 0, 0), absl::UTCTimeZone());
  }
};

std::string Unit(std::string_view serial) {
  return StrCat("(01)", kGtin, "(17)271231(10)LOT-A(21)", serial);
}

class EventStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = StrCat(::testing::TempDir(), "events_test.XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenSqliteStore({.path = StrCat(dir_, "/steritrack.db")});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    // The test client.s token (made by steritrackd token create) comes first: its TOKEN_CREATED
    // entry is seq 1 of every test's trail.
    token_ = CreateTokenWithSteritrackd(StrCat(dir_, "/steritrack.db"), "erp.link", "admin");
    secrets_ = NewSecretSource();
    access_ = std::make_unique<AccessService>(AccessService::Options{.store = store_.get(),
                                                                     .sha256 = TestSha256(),
                                                                     .secrets = secrets_.get(),
                                                                     .clock = &clock_});
    core_ = std::make_unique<CartridgeService>(CartridgeServiceOptions{
        .store = store_.get(), .sha256 = TestSha256(), .clock = &clock_, .commits = &commits_});
    audit_ = std::make_unique<AuditService>(
        AuditServiceOptions{.store = store_.get(), .sha256 = TestSha256()});
    auto log = std::make_shared<spdlog::logger>("events_test",
                                                std::make_shared<spdlog::sinks::null_sink_mt>());
    absl::StatusOr<std::unique_ptr<rpc::RpcServer>> server =
        rpc::RpcServer::Start({.listen = "127.0.0.1:0",
                               .core = core_.get(),
                               .log = log,
                               .audit = audit_.get(),
                               .commits = &commits_,
                               .access = access_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    events_ = v1::EventService::NewStub(channel_);
    audit_stub_ = v1::AuditService::NewStub(channel_);
  }

  void TearDown() override {
    events_.reset();
    audit_stub_.reset();
    channel_.reset();
    server_.reset();
    audit_.reset();
    access_.reset();
    core_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void MustReceive(const std::string& serial) {
    absl::StatusOr<std::vector<Cartridge>> r =
        core_->Receive({.actor = "clerk.ana"}, {Unit(serial)});
    ASSERT_TRUE(r.ok()) << r.status();
  }

  int64_t LastSeq() {
    std::unique_ptr<ReadTransaction> tx = *store_->BeginRead();
    return *tx->audit().LastEventSeq();
  }

  // Sets the deadline and the test client's bearer token.
  void Deadline(grpc::ClientContext& ctx, int seconds = 60) {
    ctx.AddMetadata("authorization", "Bearer " + token_);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  }

  StillClock clock_;
  CommitNotifier commits_;
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::string token_;
  std::unique_ptr<SecretSource> secrets_;
  std::unique_ptr<AccessService> access_;
  std::unique_ptr<CartridgeService> core_;
  std::unique_ptr<AuditService> audit_;
  std::unique_ptr<rpc::RpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EventService::Stub> events_;
  std::unique_ptr<v1::AuditService::Stub> audit_stub_;
};

TEST_F(EventStreamTest, DeliversHistoryAndConcurrentWritesInOrderWithoutGaps) {
  MustReceive("PRE-1");
  MustReceive("PRE-2");
  constexpr int kWriters = 4;
  constexpr int kUnitsEach = 10;
  // TOKEN_CREATED, LOT_CREATED, one per unit.
  const int64_t expected_total = 1 + 3 + kWriters * kUnitsEach;

  grpc::ClientContext ctx;
  Deadline(ctx);
  auto reader = events_->WatchEvents(&ctx, v1::WatchEventsRequest());
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([this, w] {
      for (int i = 0; i < kUnitsEach; ++i) MustReceive(StrCat("W", w, "-", i));
    });
  }
  std::vector<int64_t> seqs;
  v1::WatchEventsResponse event;
  while (static_cast<int64_t>(seqs.size()) < expected_total && reader->Read(&event)) {
    seqs.push_back(event.event().sequence());
    EXPECT_EQ(event.cursor(), StrCat("e1.", event.event().sequence()));
    EXPECT_FALSE(event.event().action().empty());
    EXPECT_EQ(event.event().hash().size(), 64u);
  }
  for (std::thread& t : writers) t.join();
  ctx.TryCancel();
  static_cast<void>(reader->Finish());
  ASSERT_EQ(static_cast<int64_t>(seqs.size()), expected_total);
  EXPECT_EQ(LastSeq(), expected_total);
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], static_cast<int64_t>(i + 1));
}

TEST_F(EventStreamTest, ResumesAfterACursorAndNowSkipsHistory) {
  for (int i = 0; i < 5; ++i) MustReceive(StrCat("U", i));  // seqs 2..7 after TOKEN_CREATED
  {
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::WatchEventsRequest req;
    req.set_cursor("e1.5");
    auto reader = events_->WatchEvents(&ctx, req);
    v1::WatchEventsResponse event;
    ASSERT_TRUE(reader->Read(&event));
    EXPECT_EQ(event.event().sequence(), 6);
    ASSERT_TRUE(reader->Read(&event));
    EXPECT_EQ(event.event().sequence(), 7);
    ctx.TryCancel();
    static_cast<void>(reader->Finish());
  }
  // "now" is the last committed event when the call arrives.
  absl::StatusOr<int64_t> now = audit_->ParseCursor("now");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(*now, 7);
  {
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::WatchEventsRequest req;
    req.set_cursor(AuditService::CursorOf(*now));
    req.add_actions("CARTRIDGE_RECEIVED");
    auto reader = events_->WatchEvents(&ctx, req);
    std::thread writer([this] { MustReceive("LATE"); });
    v1::WatchEventsResponse event;
    ASSERT_TRUE(reader->Read(&event));
    EXPECT_EQ(event.event().sequence(), 8);
    EXPECT_EQ(event.event().action(), "CARTRIDGE_RECEIVED");
    EXPECT_EQ(event.event().after(), "state=RECEIVED");
    writer.join();
    ctx.TryCancel();
    static_cast<void>(reader->Finish());
  }
}

TEST_F(EventStreamTest, ABadCursorIsInvalidArgument) {
  grpc::ClientContext ctx;
  Deadline(ctx);
  v1::WatchEventsRequest req;
  req.set_cursor("seq-12");
  auto reader = events_->WatchEvents(&ctx, req);
  v1::WatchEventsResponse event;
  EXPECT_FALSE(reader->Read(&event));
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("cursor"));
}

TEST_F(EventStreamTest, ShutdownEndsAnOpenStreamPromptly) {
  MustReceive("U1");
  grpc::ClientContext ctx;
  Deadline(ctx);
  auto reader = events_->WatchEvents(&ctx, v1::WatchEventsRequest());
  v1::WatchEventsResponse event;
  ASSERT_TRUE(reader->Read(&event));  // TOKEN_CREATED
  ASSERT_TRUE(reader->Read(&event));  // LOT_CREATED
  ASSERT_TRUE(reader->Read(&event));  // caught up after this; the handler now waits
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Seconds(30));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_FALSE(reader->Finish().ok());
}

TEST_F(EventStreamTest, ARevokedTokenEndsItsOpenStream) {
  grpc::ClientContext ctx;
  Deadline(ctx);
  auto reader = events_->WatchEvents(&ctx, v1::WatchEventsRequest());
  v1::WatchEventsResponse event;
  ASSERT_TRUE(reader->Read(&event));  // TOKEN_CREATED: the stream is open and caught up
  ASSERT_TRUE(access_->RevokeToken({.actor = "admin.test"}, "erp.link").ok());
  MustReceive("AFTER-REVOKE");  // wakes the stream
  while (reader->Read(&event)) {
    EXPECT_NE(event.event().action(), "CARTRIDGE_RECEIVED") << "delivered after the revocation";
  }
  const grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
}

TEST_F(EventStreamTest, VerifyAndListAuditEntriesOverRpc) {
  for (int i = 0; i < 3; ++i) MustReceive(StrCat("U", i));
  {
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::VerifyAuditTrailResponse resp;
    ASSERT_TRUE(audit_stub_->VerifyAuditTrail(&ctx, v1::VerifyAuditTrailRequest(), &resp).ok());
    EXPECT_TRUE(resp.intact());
    EXPECT_EQ(resp.entry_count(), 5);  // TOKEN_CREATED, LOT_CREATED, three receipts
  }
  {
    grpc::ClientContext ctx;
    Deadline(ctx);
    v1::ListAuditEntriesRequest req;
    req.set_action("CARTRIDGE_RECEIVED");
    req.set_page_size(2);
    v1::ListAuditEntriesResponse resp;
    ASSERT_TRUE(audit_stub_->ListAuditEntries(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.entries_size(), 2);
    EXPECT_EQ(resp.entries(0).sequence(), 3);
    EXPECT_EQ(resp.entries(0).actor(), "clerk.ana");
    EXPECT_FALSE(resp.next_page_token().empty());
  }
}

}  // namespace
}  // namespace steritrack
