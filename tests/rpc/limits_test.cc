// RPC-tier tests of overload and deadlines: a real server on port 0 over a SQLite file
// (rpc_fixture.h), with the database's bounded queue (server/storage/bounded_store.h) in front of
// the services and the writer held by the test, so that the queue fills for certain.
//
// They check what a client sees: calls beyond the queue refused at once with RESOURCE_EXHAUSTED
// (SERVER_BUSY) while the admitted ones wait, then normal service; a write whose client gave up
// while it waited is rolled back, not committed; a write committed after its client gave up stays
// committed and answers the retry under the same request id, once. Timings are printed, never
// asserted.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "steritrack/v1/events.grpc.pb.h"
#include "tests/rpc/rpc_fixture.h"

namespace steritrack::rpc_test {
namespace {

constexpr std::string_view kGtin = "09506000134352";
const absl::Time kNow = Utc(2026, 11, 26, 10, 0, 0);
constexpr int kMaxWrites = 4;

std::string Unit(std::string_view serial) {
  return StrCat("(01)", kGtin, "(17)271231(10)LOT-A(21)", serial);
}

using Clock = std::chrono::steady_clock;

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

class LimitsTest : public FullServerTest {
 protected:
  LimitsTest() : FullServerTest(kNow) { queues_ = BoundedStoreOptions{.max_writes = kMaxWrites}; }

  // Holds every write at BeginWrite (after the queue admitted it) until Release().
  void HoldWrites() {
    faulty_store_->on_begin_write = [this] {
      if (!holding_.load()) return;
      waiting_.fetch_add(1);
      release_.WaitForNotification();
    };
    holding_.store(true);
  }
  void Release() {
    holding_.store(false);
    release_.Notify();
  }

  grpc::Status Receive(const std::string& serial, const std::string& request_id,
                       std::chrono::milliseconds deadline = std::chrono::seconds(60),
                       v1::ReceiveCartridgesResponse* out = nullptr) {
    auto ctx = Context("clerk.ana");
    ctx->set_deadline(std::chrono::system_clock::now() + deadline);
    v1::ReceiveCartridgesRequest req;
    req.add_barcodes(Unit(serial));
    req.set_request_id(request_id);
    v1::ReceiveCartridgesResponse resp;
    grpc::Status s = inventory_->ReceiveCartridges(ctx.get(), req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }

  // NOT_FOUND when the unit was never stored.
  grpc::Status Lookup(const std::string& serial) {
    v1::GetCartridgeRequest req;
    req.set_barcode(Unit(serial));
    v1::Cartridge resp;
    return inventory_->GetCartridge(Context("clerk.ana").get(), req, &resp);
  }

  // Waits (up to a minute, so that a broken server fails instead of hanging) for `done`.
  template <typename F>
  bool Eventually(F done) {
    const auto give_up = Clock::now() + std::chrono::seconds(60);
    while (!done()) {
      if (Clock::now() > give_up) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  std::atomic<bool> holding_{false};
  std::atomic<int> waiting_{0};
  absl::Notification release_;
};

TEST_F(LimitsTest, BeyondTheQueueCallsAreRefusedAtOnceThenServiceResumes) {
  constexpr int kCalls = 32;
  HoldWrites();
  struct Outcome {
    grpc::Status status;
    double ms = 0;                  // when it came back, since the first call was sent
    double latency_ms = 0;          // how long this call took
    std::atomic<bool> back{false};  // set last: the fields above are final once it is true
  };
  std::vector<Outcome> outcomes(kCalls);
  std::atomic<int> finished{0};
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i) {
    callers.emplace_back([&, i] {
      const Clock::time_point sent = Clock::now();
      outcomes[i].status = Receive(StrCat("OVER-", i), StrCat("over-", i));
      outcomes[i].latency_ms = MillisSince(sent);
      outcomes[i].ms = MillisSince(start);
      outcomes[i].back.store(true, std::memory_order_release);
      finished.fetch_add(1);
    });
  }
  // Every call beyond the queue comes back while the admitted ones are still held.
  ASSERT_TRUE(Eventually([&] { return finished.load() == kCalls - kMaxWrites; }))
      << finished.load() << " of " << kCalls << " calls came back while the writer was held";
  // The write lane's one thread holds the writer (it may reach it after the refusals have come
  // back); the others wait in its queue, each with its place in the database's queue.
  EXPECT_TRUE(Eventually([&] { return waiting_.load() == 1; })) << waiting_.load();
  EXPECT_EQ(bounded_store_->writes_in_flight(), kMaxWrites);
  int refused = 0;
  double first_refusal_ms = 1e9, slowest_refusal_ms = 0;
  for (int i = 0; i < kCalls; ++i) {
    if (!outcomes[i].back.load(std::memory_order_acquire)) continue;  // still held
    EXPECT_TRUE(IsRefusal(outcomes[i].status, grpc::StatusCode::RESOURCE_EXHAUSTED, "SERVER_BUSY"));
    ++refused;
    first_refusal_ms = std::min(first_refusal_ms, outcomes[i].ms);
    slowest_refusal_ms = std::max(slowest_refusal_ms, outcomes[i].latency_ms);
  }
  Release();
  for (std::thread& t : callers) t.join();
  const double all_done_ms = MillisSince(start);
  int admitted = 0;
  for (int i = 0; i < kCalls; ++i) {
    if (outcomes[i].status.ok()) {
      ++admitted;
      EXPECT_TRUE(Lookup(StrCat("OVER-", i)).ok()) << "admitted call " << i << " not stored";
    } else {
      EXPECT_EQ(Lookup(StrCat("OVER-", i)).error_code(), grpc::StatusCode::NOT_FOUND)
          << "refused call " << i << " left a record";
    }
  }
  EXPECT_EQ(admitted, kMaxWrites);
  EXPECT_EQ(refused, kCalls - kMaxWrites);
  std::printf(
      "overload: %d calls at once, queue %d: %d refused RESOURCE_EXHAUSTED (first refusal %.2f ms "
      "after the first call was sent, slowest refusal took %.2f ms), %d admitted and served "
      "after release (all done after %.2f ms)\n",
      kCalls, kMaxWrites, refused, first_refusal_ms, slowest_refusal_ms, admitted, all_done_ms);

  // Load gone: normal service, and a refused call retried under its request id now succeeds.
  for (int i = 0; i < 8; ++i) ASSERT_RPC_OK(Receive(StrCat("AFTER-", i), StrCat("after-", i)));
  for (int i = 0; i < kCalls; ++i) {
    if (!outcomes[i].status.ok()) {
      ASSERT_RPC_OK(Receive(StrCat("OVER-", i), StrCat("over-", i)));
      break;
    }
  }
  EXPECT_EQ(bounded_store_->writes_in_flight(), 0);
  EXPECT_EQ(bounded_store_->writes_refused(), kCalls - kMaxWrites);
}

TEST_F(LimitsTest, AWriteWhoseClientGaveUpWhileWaitingIsRolledBackNotCommitted) {
  HoldWrites();
  const Clock::time_point start = Clock::now();
  const grpc::Status s = Receive("LATE-1", "late-1", std::chrono::milliseconds(300));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  std::printf("gave up: the client's deadline answered after %.1f ms\n", MillisSince(start));
  ASSERT_EQ(waiting_.load(), 1);
  const int rolled_back_before = faulty_store_->writes_rolled_back.load();
  Release();
  // The server's work resumes, finds its caller gone before the commit, and rolls back.
  ASSERT_TRUE(Eventually(
      [&] { return faulty_store_->writes_rolled_back.load() == rolled_back_before + 1; }));
  EXPECT_EQ(Lookup("LATE-1").error_code(), grpc::StatusCode::NOT_FOUND)
      << "a write for a client that gave up was committed";
  // The client's retry under the same request id is the first to land.
  v1::ReceiveCartridgesResponse retried;
  ASSERT_RPC_OK(Receive("LATE-1", "late-1", std::chrono::seconds(60), &retried));
  ASSERT_EQ(retried.cartridges_size(), 1);
  EXPECT_TRUE(Lookup("LATE-1").ok());
}

TEST_F(LimitsTest, AWriteCommittedAfterItsClientGaveUpStaysAndAnswersTheRetryOnce) {
  // The commit lands, then the reply is held until the client's deadline has passed. The hook's
  // state is its own (shared): the held handler may still be returning from its wait when this
  // test's body has ended, and must not find the notification gone.
  struct Held {
    absl::Notification reply_lost;
    std::atomic<bool> delay{true};
  };
  auto held = std::make_shared<Held>();
  faulty_store_->after_commit = [held] {
    if (held->delay.exchange(false)) {
      held->reply_lost.WaitForNotificationWithTimeout(absl::Seconds(60));
    }
  };
  const grpc::Status s = Receive("SLOW-1", "slow-1", std::chrono::milliseconds(300));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  held->reply_lost.Notify();
  v1::ReceiveCartridgesResponse first_retry, second_retry;
  ASSERT_RPC_OK(Receive("SLOW-1", "slow-1", std::chrono::seconds(60), &first_retry));
  ASSERT_RPC_OK(Receive("SLOW-1", "slow-1", std::chrono::seconds(60), &second_retry));
  ASSERT_EQ(first_retry.cartridges_size(), 1);
  EXPECT_EQ(first_retry.SerializeAsString(), second_retry.SerializeAsString());
  // One unit, one receipt in the audit trail.
  v1::ListAuditEntriesRequest req;
  req.set_page_size(1000);
  req.set_action("CARTRIDGE_RECEIVED");
  v1::ListAuditEntriesResponse entries;
  ASSERT_RPC_OK(audit_->ListAuditEntries(Context("manager.ann").get(), req, &entries));
  int receipts = 0;
  for (const v1::AuditEntry& e : entries.entries()) {
    if (e.request_id() == "slow-1") ++receipts;
  }
  EXPECT_EQ(receipts, 1);
}

TEST_F(LimitsTest, ARequestLargerThanTheLimitIsRefusedResourceExhausted) {
  v1::ReceiveCartridgesRequest req;
  const std::string big(5 * 1024 * 1024, 'x');  // above the 4 MiB default
  req.add_barcodes(big);
  v1::ReceiveCartridgesResponse resp;
  const grpc::Status s = inventory_->ReceiveCartridges(Context("clerk.ana").get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // And the server goes on serving.
  ASSERT_RPC_OK(Receive("SMALL-1", "small-1"));
}

// Unary calls hold no gRPC thread while they wait (server/rpc/call_lanes.h): with a thread quota
// of 4, sixteen writes held behind the writer all wait in the write lane's queue and are all
// served once it is free; a synchronous server would have refused all but the quota's few.
class FewThreadsTest : public LimitsTest {
 protected:
  FewThreadsTest() {
    limits_.max_threads = 4;
    queues_ = BoundedStoreOptions{.max_writes = 64};
  }
};

TEST_F(FewThreadsTest, WritesWaitingForTheWriterHoldNoThreadAndAreAllServed) {
  constexpr int kCalls = 16;
  HoldWrites();
  std::vector<grpc::Status> outcomes(kCalls);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i) {
    callers.emplace_back([&, i] { outcomes[i] = Receive(StrCat("FEW-", i), StrCat("few-", i)); });
  }
  // Every call is queued (each holds its place in the database's queue) while one holds the
  // writer: none was refused for want of a thread.
  ASSERT_TRUE(Eventually([&] {
    return bounded_store_->writes_in_flight() == kCalls && waiting_.load() == 1;
  })) << bounded_store_->writes_in_flight()
      << " of " << kCalls << " calls queued, " << waiting_.load() << " holding the writer";
  // Meanwhile a read is answered: reads do not wait for the writer.
  EXPECT_EQ(Lookup("FEW-NONE").error_code(), grpc::StatusCode::NOT_FOUND);
  Release();
  for (std::thread& t : callers) t.join();
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_TRUE(outcomes[i].ok()) << i << ": " << outcomes[i].error_message();
    EXPECT_TRUE(Lookup(StrCat("FEW-", i)).ok()) << "call " << i << " answered but not stored";
  }
  EXPECT_EQ(bounded_store_->writes_refused(), 0);
}

// Event streams hold a server thread each for their whole life: with a small thread quota the
// streams beyond it are refused RESOURCE_EXHAUSTED by gRPC itself, and once they end, calls are
// served again.
class ThreadLimitTest : public LimitsTest {
 protected:
  ThreadLimitTest() { limits_.max_threads = 12; }
};

TEST_F(ThreadLimitTest, StreamsBeyondTheThreadQuotaAreRefusedAndServiceResumesWhenTheyEnd) {
  auto events = v1::EventService::NewStub(channel_);
  struct Stream {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<v1::WatchEventsResponse>> reader;
  };
  std::vector<Stream> open;
  grpc::Status refused;
  int opened = 0;
  for (int i = 0; i < 64 && refused.ok(); ++i) {
    Stream stream{.ctx = Context("manager.ann")};
    stream.reader = events->WatchEvents(stream.ctx.get(), v1::WatchEventsRequest());
    v1::WatchEventsResponse first;
    if (stream.reader->Read(&first)) {  // the handler runs: it sent the trail's first entry
      ++opened;
      open.push_back(std::move(stream));
    } else {
      refused = stream.reader->Finish();
    }
  }
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << "no refusal after " << opened << " streams: " << refused.error_message();
  std::printf("thread quota %d: %d event streams served, the next refused %s (%s)\n",
              limits_.max_threads, opened, refused.ok() ? "OK" : "RESOURCE_EXHAUSTED",
              refused.error_message().c_str());
  for (Stream& s : open) s.ctx->TryCancel();
  for (Stream& s : open) static_cast<void>(s.reader->Finish());
  EXPECT_TRUE(Eventually([&] { return Receive("AFTER-STREAMS", "after-streams").ok(); }));
}

}  // namespace
}  // namespace steritrack::rpc_test
