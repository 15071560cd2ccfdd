// The write lane's CPU priority (server/rpc/call_lanes.h, server/rpc/thread_nice.h): where Linux
// lets the server lower a thread's nice value, the database's one writer runs 10 below the
// server's own, ahead of the threads that feed it; where it does not, the lane runs at the
// server's priority, the server says so once, and writes are served all the same.
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/rpc/call_lanes.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "tests/rpc/rpc_fixture.h"

namespace steritrack::rpc_test {
namespace {

constexpr std::string_view kRefusedNotice =
    "the write lane runs at the server's priority: Linux refused it nice";

int ThisThreadsNice() {
  errno = 0;
  return getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
}

// Whether a thread started here may lower its nice value by 10, asked of Linux directly rather
// than through the code under test (the probe's thread ends with it).
bool ThreadsHereMayLowerTheirNice() {
  bool may = false;
  std::thread probe([&] {
    const id_t self = static_cast<id_t>(syscall(SYS_gettid));
    errno = 0;
    const int current = getpriority(PRIO_PROCESS, self);
    may = errno == 0 && setpriority(PRIO_PROCESS, self, std::max(current - 10, -20)) == 0;
  });
  probe.join();
  return may;
}

int CountLines(const std::vector<std::string>& lines, std::string_view text) {
  return static_cast<int>(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.find(text) != std::string::npos;
  }));
}

class WriteLanePriorityTest : public FullServerTest {
 protected:
  WriteLanePriorityTest() : FullServerTest(Utc(2026, 11, 26, 10, 0, 0)) {}

  std::atomic<int> writers_nice_{100};  // as the write lane last found it, at a write's start
};

TEST_F(WriteLanePriorityTest, WritesRunTenNiceBelowTheServerWhereLinuxLetsIt) {
  if (!ThreadsHereMayLowerTheirNice()) {
    GTEST_SKIP() << "this process may not lower a thread's nice value (no CAP_SYS_NICE, "
                    "RLIMIT_NICE too low): run as root, as CI does; the refusal is tested below";
  }
  faulty_store_->on_begin_write = [this] { writers_nice_ = ThisThreadsNice(); };
  v1::ReceiveCartridgesRequest req;
  req.add_barcodes("(01)09506000134352(17)271231(10)LOT-A(21)PRIO-1");
  req.set_request_id("prio-1");
  v1::ReceiveCartridgesResponse resp;
  ASSERT_RPC_OK(inventory_->ReceiveCartridges(Context("clerk.ana").get(), req, &resp));
  // The server was started on this thread: its threads began at this thread's nice value.
  const int servers = ThisThreadsNice();
  EXPECT_EQ(writers_nice_.load(), std::clamp(servers - 10, -20, 19));
  EXPECT_EQ(CountLines(LogLines(), kRefusedNotice), 0);
  v1::GetCartridgeRequest get;
  get.set_barcode(req.barcodes(0));
  v1::Cartridge unit;
  ASSERT_RPC_OK(inventory_->GetCartridge(Context("clerk.ana").get(), get, &unit));
  EXPECT_EQ(unit.lot().lot(), "LOT-A") << "the write is durable and readable as before";
}

// Drops CAP_SYS_NICE from the calling thread's effective capabilities (they are per thread on
// Linux, and the threads it starts inherit them); false if Linux refused.
bool DropCapSysNiceOnThisThread() {
  __user_cap_header_struct header{.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  data[CAP_TO_INDEX(CAP_SYS_NICE)].effective &= ~CAP_TO_MASK(CAP_SYS_NICE);
  return syscall(SYS_capset, &header, data) == 0;
}

// As a service run by an ordinary user without LimitNICE: no CAP_SYS_NICE, and an RLIMIT_NICE
// soft limit of 0. The lanes are started on a thread of the test's own that dropped the
// capability; the process's limit is put back at the end.
TEST(WriteLaneWithoutPrivilegeTest, TheLaneRunsAtTheServersPriorityAndTheLogSaysSoOnce) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NICE, &saved), 0) << std::strerror(errno);
  rlimit none = saved;
  none.rlim_cur = 0;
  ASSERT_EQ(setrlimit(RLIMIT_NICE, &none), 0) << std::strerror(errno);
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100);
  auto log = std::make_shared<spdlog::logger>("lane_priority_test", sink);
  log->set_pattern("%l %v");
  std::string failure;
  int own_nice = 0;
  std::thread unprivileged([&] {
    if (!DropCapSysNiceOnThisThread()) {
      failure = std::string("capset: ") + std::strerror(errno);
      return;
    }
    if (ThreadsHereMayLowerTheirNice()) {
      failure = "a thread started here could still lower its nice value";
      return;
    }
    own_nice = ThisThreadsNice();
    // Two write threads, as on PostgreSQL: both are refused, the log says it once.
    rpc::CallLanes lanes(
        rpc::CallLaneOptions{.write_threads = 2, .read_threads = 1, .write_nice = -10, .log = log});
  });  // the lanes' destructor joined their threads, each of which asked for its nice first
  unprivileged.join();
  ASSERT_EQ(setrlimit(RLIMIT_NICE, &saved), 0) << std::strerror(errno);
  ASSERT_EQ(failure, "");
  const std::vector<std::string> lines = sink->last_formatted();
  EXPECT_EQ(CountLines(lines, kRefusedNotice), 1)
      << "once, whichever of the two write threads was refused first";
  EXPECT_EQ(CountLines(lines,
                       "info the write lane runs at the server's priority: Linux refused "
                       "it nice " +
                           std::to_string(std::clamp(own_nice - 10, -20, 19)) +
                           " (Permission denied); give the service LimitNICE="),
            1)
      << (lines.empty() ? std::string("nothing logged") : lines.back());
}

}  // namespace
}  // namespace steritrack::rpc_test
