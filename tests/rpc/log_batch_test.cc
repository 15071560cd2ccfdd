// The server log's lines written together (server/rpc/log_batch.h): a thread's lines below warn
// held while it holds a LogLineBatch and written with one write when it ends; everything else
// written as it is logged. And the answer thread's use of it: a batch of writes' access lines in
// one write, each before its call's answer.
//
// The sink writes to one end of a SOCK_SEQPACKET socket pair, which keeps each write(2) a message
// of its own: what one recv returns is what one write wrote.
#include "server/rpc/log_batch.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/logger.h"
#include "tests/rpc/rpc_fixture.h"

namespace steritrack::rpc_test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A socket pair whose first end takes the sink's writes; Writes() returns each write made since
// the last call, in order, without waiting.
class WriteRecorder {
 public:
  WriteRecorder() {
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds_) != 0) {
      ADD_FAILURE() << "socketpair: " << std::strerror(errno);
      fds_[0] = fds_[1] = -1;
    }
  }
  ~WriteRecorder() {
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }
  WriteRecorder(const WriteRecorder&) = delete;
  WriteRecorder& operator=(const WriteRecorder&) = delete;

  int write_end() const { return fds_[0]; }

  std::vector<std::string> Writes() const {
    std::vector<std::string> writes;
    std::string buffer(1 << 16, '\0');
    while (true) {
      const ssize_t n = recv(fds_[1], buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EAGAIN: nothing more written yet
      writes.emplace_back(buffer.data(), static_cast<size_t>(n));
    }
    return writes;
  }

 private:
  int fds_[2] = {-1, -1};
};

class LogBatchTest : public ::testing::Test {
 protected:
  LogBatchTest()
      : log_(std::make_shared<spdlog::logger>(
            "log_batch_test", rpc::BatchingSink(rpc::FdSink(writes_.write_end())))) {
    log_->set_pattern("%l %v");
  }

  WriteRecorder writes_;
  std::shared_ptr<spdlog::logger> log_;
};

TEST_F(LogBatchTest, ALineOutsideABatchIsWrittenAsItIsLogged) {
  log_->info("one");
  EXPECT_THAT(writes_.Writes(), ElementsAre("info one\n"));
  log_->info("two");
  log_->error("three");
  EXPECT_THAT(writes_.Writes(), ElementsAre("info two\n", "error three\n"));
}

TEST_F(LogBatchTest, ABatchsLinesAreHeldAndWrittenInOneWriteWhenItEnds) {
  {
    rpc::LogLineBatch batch;
    log_->info("a");
    log_->info("b");
    log_->debug("not logged at info");
    EXPECT_THAT(writes_.Writes(), IsEmpty()) << "held while the batch lasts";
  }
  EXPECT_THAT(writes_.Writes(), ElementsAre("info a\ninfo b\n"));
}

TEST_F(LogBatchTest, AWarningInABatchIsWrittenAtOnceWithTheLinesHeldBeforeIt) {
  {
    rpc::LogLineBatch batch;
    log_->info("a");
    log_->warn("w");
    EXPECT_THAT(writes_.Writes(), ElementsAre("info a\nwarning w\n"));
    log_->info("c");
    EXPECT_THAT(writes_.Writes(), IsEmpty());
  }
  EXPECT_THAT(writes_.Writes(), ElementsAre("info c\n"));
}

TEST_F(LogBatchTest, NestedBatchesWriteWhenTheOutermostEnds) {
  {
    rpc::LogLineBatch outer;
    log_->info("a");
    {
      rpc::LogLineBatch inner;
      log_->info("b");
    }
    EXPECT_THAT(writes_.Writes(), IsEmpty());
    log_->info("c");
  }
  EXPECT_THAT(writes_.Writes(), ElementsAre("info a\ninfo b\ninfo c\n"));
}

TEST_F(LogBatchTest, AnotherThreadsLinesAreNotHeldAndTakeTheHeldOnesWithThem) {
  {
    rpc::LogLineBatch batch;
    log_->info("a");
    std::thread([&] { log_->info("x"); }).join();  // a thread that holds no batch
    EXPECT_THAT(writes_.Writes(), ElementsAre("info a\ninfo x\n")) << "in the order logged";
  }
  EXPECT_THAT(writes_.Writes(), IsEmpty()) << "nothing was left to write";
}

TEST_F(LogBatchTest, ABatchHoldsNothingInASinkOfAnotherKind) {
  WriteRecorder other;
  auto plain =
      std::make_shared<spdlog::logger>("log_batch_test_plain", rpc::FdSink(other.write_end()));
  plain->set_pattern("%l %v");
  plain->flush_on(spdlog::level::info);  // as a logger with spdlog's own sinks writes each line
  rpc::LogLineBatch batch;
  plain->info("p");
  EXPECT_THAT(other.Writes(), ElementsAre("info p\n"));
}

// On a pipe, which keeps a write whole only up to PIPE_BUF bytes, a larger batch is written in
// parts that end with a line; every line arrives, whole and in order.
TEST(LogBatchPipeTest, ABatchLargerThanAPipeTakesWholeIsWrittenWholeAndInOrder) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0) << std::strerror(errno);
  auto log = std::make_shared<spdlog::logger>("log_batch_test_pipe",
                                              rpc::BatchingSink(rpc::FdSink(fds[1])));
  log->set_pattern("%v");
  std::string expected;
  {
    rpc::LogLineBatch batch;
    for (int i = 0; i < 100; ++i) {  // about 10 KB: 2.5 times PIPE_BUF
      const std::string line = StrCat("line ", i, " ", std::string(90, 'x'));
      log->info(line);
      expected += line + "\n";
    }
  }
  log.reset();
  close(fds[1]);
  std::string got;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) got.append(buffer, n);
  close(fds[0]);
  EXPECT_EQ(got, expected);
}

// A sink in front of `target` that takes 200 ms to flush lines of a ReceiveCartridges call: were
// answers sent before their lines were written, the clients would have them well before the lines.
class SlowToWriteAccessLines final : public spdlog::sinks::sink {
 public:
  explicit SlowToWriteAccessLines(std::shared_ptr<spdlog::sinks::sink> target)
      : target_(std::move(target)) {}
  void log(const spdlog::details::log_msg& msg) override {
    if (std::string_view(msg.payload.data(), msg.payload.size()).starts_with("ReceiveCartridges")) {
      slow_ = true;
    }
    target_->log(msg);
  }
  void flush() override {
    if (slow_.exchange(false)) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    target_->flush();
  }
  void set_pattern(const std::string& pattern) override { target_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    target_->set_formatter(std::move(formatter));
  }

 private:
  const std::shared_ptr<spdlog::sinks::sink> target_;
  std::atomic<bool> slow_{false};
};

// The answer thread (server/rpc/call_lanes.h): eight writes held behind the writer commit as one
// batch, and their access lines go out together, every one of them before the first answer.
class AnswerLinesTest : public FullServerTest {
 protected:
  static constexpr int kCalls = 8;  // above CallLanes::kInlineAnswers: the answer thread sends them

  AnswerLinesTest() : FullServerTest(Utc(2026, 11, 26, 10, 0, 0)) {
    queues_ = BoundedStoreOptions{.max_writes = 64};
    log_also_ = rpc::BatchingSink(
        std::make_shared<SlowToWriteAccessLines>(rpc::FdSink(writes_.write_end())));
  }

  static int AccessLines(const std::string& text) {
    int n = 0;
    for (size_t at = text.find("ReceiveCartridges OK "); at != std::string::npos;
         at = text.find("ReceiveCartridges OK ", at + 1)) {
      ++n;
    }
    return n;
  }

  WriteRecorder writes_;
};

TEST_F(AnswerLinesTest, ABatchsAccessLinesGoOutTogetherBeforeItsAnswers) {
  std::atomic<bool> holding{true};
  std::atomic<int> waiting{0};
  absl::Notification release;
  faulty_store_->on_begin_write = [&] {
    if (!holding.load()) return;
    waiting.fetch_add(1);
    release.WaitForNotification();
  };
  std::mutex mu;
  std::vector<std::string> seen;  // every write of the log, in order
  int answered = 0;
  // When each call returned: the access lines in the log less the answers returned so far.
  std::vector<int> lines_ahead(kCalls, -1);
  std::vector<grpc::Status> outcomes(kCalls);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i) {
    callers.emplace_back([&, i] {
      v1::ReceiveCartridgesRequest req;
      req.add_barcodes(StrCat("(01)09506000134352(17)271231(10)LOT-A(21)LOGB-", i));
      req.set_request_id(StrCat("logb-", i));
      v1::ReceiveCartridgesResponse resp;
      outcomes[i] = inventory_->ReceiveCartridges(Context("clerk.ana").get(), req, &resp);
      std::lock_guard<std::mutex> lock(mu);
      for (std::string& w : writes_.Writes()) seen.push_back(std::move(w));
      ++answered;
      int lines = 0;
      for (const std::string& w : seen) lines += AccessLines(w);
      lines_ahead[i] = lines - answered;  // at least 0: each answer's line was written first
    });
  }
  // Every call is queued behind the first, which holds the writer.
  for (int tries = 0; tries < 6000; ++tries) {
    if (bounded_store_->writes_in_flight() == kCalls && waiting.load() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const int queued = bounded_store_->writes_in_flight();
  holding.store(false);
  release.Notify();
  for (std::thread& t : callers) t.join();
  faulty_store_->on_begin_write = nullptr;  // it refers to this test's locals
  ASSERT_EQ(queued, kCalls) << "the calls were not all queued behind the first";
  for (std::string& w : writes_.Writes()) seen.push_back(std::move(w));
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_TRUE(outcomes[i].ok()) << i << ": " << outcomes[i].error_message();
    EXPECT_GE(lines_ahead[i], 0) << "call " << i << " had its answer before its access line";
  }
  int lines = 0;
  int writes_with_lines = 0;
  for (const std::string& w : seen) {
    const int here = AccessLines(w);
    lines += here;
    if (here > 0) ++writes_with_lines;
    EXPECT_EQ(w.back(), '\n') << "whole lines in each write: " << w;
  }
  EXPECT_EQ(lines, kCalls);
  // Eight calls committed together (at most two batches, should the last to be queued have been
  // a moment late): their lines took fewer writes than lines.
  EXPECT_LT(writes_with_lines, kCalls);
  EXPECT_LE(writes_with_lines, 2);
}

}  // namespace
}  // namespace steritrack::rpc_test
