#include "server/rpc/background_lane.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "server/storage/bounded_store.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "steritrack/site.h"

namespace steritrack::rpc {
namespace {

int ThisThreadsNice() {
  errno = 0;
  return getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
}

TEST(BackgroundLaneTest, WorkRunsOnALowerPriorityThreadAndItsAnswerComesBack) {
  BackgroundLane lane(/*threads=*/1, /*nice=*/10);
  const std::thread::id caller = std::this_thread::get_id();
  const int callers_nice = ThisThreadsNice();
  absl::StatusOr<int> answer = lane.Call<int>([&]() -> absl::StatusOr<int> {
    EXPECT_NE(std::this_thread::get_id(), caller);
    // Nice values only go up without privilege: the lane's is 10 above the process's, capped.
    EXPECT_EQ(ThisThreadsNice(), std::min(callers_nice + 10, 19));
    return 42;
  });
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(*answer, 42);
  EXPECT_EQ(ThisThreadsNice(), callers_nice) << "the caller's own priority is untouched";
  absl::StatusOr<int> refused =
      lane.Call<int>([]() -> absl::StatusOr<int> { return absl::NotFoundError("no such lot"); });
  EXPECT_EQ(refused.status(), absl::NotFoundError("no such lot"));
}

// Where a system call filter refuses setpriority, as a service unit's SystemCallFilter that
// denies @resources does (deploy/debian/steritrackd.service lets it through), the lane's threads
// run at the server's priority and the log says so, once. The filter is installed on a thread of
// the test's own (seccomp filters are per thread and inherited by the threads it starts), which
// then starts the lane; the rest of the test process is untouched.
TEST(BackgroundLaneTest, AThreadPriorityLinuxRefusesIsLoggedOnceAndTheWorkStillRuns) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "the filter below is written for x86-64";
#else
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100);
  auto log = std::make_shared<spdlog::logger>("background_lane_test", sink);
  log->set_pattern("%l %v");
  std::string failure;
  std::string no_filter;
  int lane_nice = 0;
  int own_nice = 0;
  std::thread filtered([&] {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setpriority, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {.len = static_cast<unsigned short>(std::size(filter)),
                                 .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
      no_filter =
          std::string("this kernel or container refuses a seccomp filter: ") + std::strerror(errno);
      return;
    }
    own_nice = ThisThreadsNice();
    BackgroundLane lane(/*threads=*/2, /*nice=*/10, log);
    for (int i = 0; i < 4; ++i) {
      absl::StatusOr<int> answer = lane.Call<int>([&]() -> absl::StatusOr<int> {
        lane_nice = ThisThreadsNice();
        return 42;
      });
      if (!answer.ok() || *answer != 42) failure = "the work did not run";
    }
  });
  filtered.join();
  if (!no_filter.empty()) GTEST_SKIP() << no_filter;
  ASSERT_EQ(failure, "");
  EXPECT_EQ(lane_nice, own_nice) << "setpriority was refused: the lane stays at the server's";
  int warnings = 0;
  for (const std::string& line : sink->last_formatted()) {
    if (line.find("warning reports and verifications run at the server's priority: Linux "
                  "refused their threads nice") != std::string::npos) {
      ++warnings;
    }
  }
  EXPECT_EQ(warnings, 1) << "once, whichever of the lane's two threads was refused first";
#endif
}

TEST(BackgroundLaneTest, WorkThatThrowsIsAnInternalErrorAndTheLaneGoesOn) {
  BackgroundLane lane(/*threads=*/1, /*nice=*/10);
  absl::StatusOr<int> thrown = lane.Call<int>([]() -> absl::StatusOr<int> {
    throw std::runtime_error("out of memory building the report");
  });
  EXPECT_EQ(thrown.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(thrown.status().message().find("out of memory building the report"),
            std::string_view::npos)
      << thrown.status();
  EXPECT_EQ(*lane.Call<int>([]() -> absl::StatusOr<int> { return 7; }), 7);
}

TEST(BackgroundLaneTest, WorkActsOnTheCallersSite) {
  BackgroundLane lane(/*threads=*/2, /*nice=*/0);
  const auto site_seen = [&lane] {
    return *lane.Call<std::string>(
        []() -> absl::StatusOr<std::string> { return std::string(SiteScope::CurrentOr("")); });
  };
  EXPECT_EQ(site_seen(), "") << "no scope opened where the caller had none";
  {
    SiteScope north("north");
    EXPECT_EQ(site_seen(), "north");
  }
  SiteScope south("south");
  EXPECT_EQ(site_seen(), "south");
}

// A call that holds its place in the database's queue keeps it for the work it hands over: the
// lane's transactions take no second place (a full queue would refuse an admitted report).
TEST(BackgroundLaneTest, WorkKeepsTheCallersPlaceInTheDatabaseQueue) {
  BackgroundLane lane(1, 10);
  absl::StatusOr<bool> outside = lane.Call<bool>([] { return BoundedStore::AdmittedHere(); });
  ASSERT_TRUE(outside.ok());
  EXPECT_FALSE(*outside);
  BoundedStore::AdmittedScope admitted;
  absl::StatusOr<bool> inside = lane.Call<bool>([] { return BoundedStore::AdmittedHere(); });
  ASSERT_TRUE(inside.ok());
  EXPECT_TRUE(*inside);
}

TEST(BackgroundLaneTest, ManyCallersAtOnceEachGetTheirOwnAnswer) {
  BackgroundLane lane(/*threads=*/2, /*nice=*/10);
  std::atomic<int> running{0};
  std::atomic<int> most_at_once{0};
  std::vector<std::thread> callers;
  std::vector<int> answers(16, -1);
  for (int i = 0; i < 16; ++i) {
    callers.emplace_back([&, i] {
      answers[i] = *lane.Call<int>([&]() -> absl::StatusOr<int> {
        const int now = ++running;
        int seen = most_at_once.load();
        while (now > seen && !most_at_once.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        --running;
        return i * i;
      });
    });
  }
  for (std::thread& t : callers) t.join();
  for (int i = 0; i < 16; ++i) EXPECT_EQ(answers[i], i * i);
  EXPECT_LE(most_at_once.load(), 2) << "no more at once than the lane has threads";
}

}  // namespace
}  // namespace steritrack::rpc
