// The health probe (issue 10) against a real directory: it passes where the database's directory
// takes a new file and lets it go, and fails where it does not, even when a probe file from an
// earlier probe is still there (the directory turned read-only between that probe's open() and
// its unlink()). Run as the server runs: as root, the probe runs in a child process as `nobody`,
// since permissions do not stop root.
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/health_monitor.h"

namespace steritrack {
namespace {

using ::testing::HasSubstr;

class HealthProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = (std::filesystem::temp_directory_path() / "health-probe-XXXXXX").string();
    ASSERT_NE(mkdtemp(base.data()), nullptr);
    base_ = base;
    ASSERT_EQ(chmod(base_.c_str(), 0711), 0);  // `nobody` may pass through, not list
    data_ = base_ + "/data";
    ASSERT_EQ(mkdir(data_.c_str(), 0755), 0);
    db_ = data_ + "/steritrack.db";
    ASSERT_TRUE(MakeFile(db_));
    if (geteuid() == 0) {
      const struct passwd* nobody = getpwnam("nobody");
      ASSERT_NE(nobody, nullptr);
      uid_ = nobody->pw_uid;
      gid_ = nobody->pw_gid;
      ASSERT_EQ(chown(data_.c_str(), uid_, gid_), 0);
      ASSERT_EQ(chown(db_.c_str(), uid_, gid_), 0);
    }
  }

  void TearDown() override {
    chmod(data_.c_str(), 0755);
    std::error_code ignored;
    std::filesystem::remove_all(base_, ignored);
  }

  // A file owned by the server's user, as one it made.
  bool MakeFile(const std::string& path) const {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    close(fd);
    return geteuid() != 0 || chown(path.c_str(), uid_, gid_) == 0;
  }

  // ProbeDatabaseWritable as the server's user: the code and message of its status.
  absl::Status ProbeAsServer() const {
    absl::StatusOr<DatabaseIdentity> db = IdentifyDatabase(db_);
    if (!db.ok()) return db.status();
    int out[2];
    if (pipe(out) != 0) return absl::InternalError("pipe");
    const pid_t child = fork();
    if (child == 0) {
      close(out[0]);
      if (geteuid() == 0 && (setgid(gid_) != 0 || setuid(uid_) != 0)) _exit(100);
      const absl::Status status = ProbeDatabaseWritable(*db);
      const std::string message = std::string(status.message());
      if (write(out[1], message.data(), message.size()) < 0) _exit(101);
      _exit(static_cast<int>(status.code()));
    }
    close(out[1]);
    std::string message;
    char buffer[512];
    ssize_t n;
    while ((n = read(out[0], buffer, sizeof buffer)) > 0) message.append(buffer, n);
    close(out[0]);
    int wstatus = 0;
    if (waitpid(child, &wstatus, 0) != child || !WIFEXITED(wstatus) ||
        WEXITSTATUS(wstatus) >= 100) {
      return absl::InternalError("the probe's child process failed");
    }
    return absl::Status(static_cast<absl::StatusCode>(WEXITSTATUS(wstatus)), message);
  }

  std::string base_, data_, db_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

TEST_F(HealthProbeTest, AWritableDirectoryPassesAndKeepsNoProbeFile) {
  EXPECT_TRUE(ProbeAsServer().ok());
  EXPECT_FALSE(std::filesystem::exists(db_ + "-health"));
}

TEST_F(HealthProbeTest, AProbeFileLeftBehindInAWritableDirectoryIsMadeAnew) {
  ASSERT_TRUE(MakeFile(db_ + "-health"));
  EXPECT_TRUE(ProbeAsServer().ok());
  EXPECT_FALSE(std::filesystem::exists(db_ + "-health"));
}

TEST_F(HealthProbeTest, AReadOnlyDirectoryFails) {
  ASSERT_EQ(chmod(data_.c_str(), 0555), 0);
  const absl::Status status = ProbeAsServer();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("does not take a new file"));
}

// The flake of e2e_health on 12-04: the directory turned read-only while a probe had its file
// open, so that probe's unlink() failed and left the file; the next probes opened it again, wrote
// and synced it, and said SERVING while the directory took no new file.
TEST_F(HealthProbeTest, AProbeFileLeftBehindDoesNotHideAReadOnlyDirectory) {
  ASSERT_TRUE(MakeFile(db_ + "-health"));
  ASSERT_EQ(chmod(data_.c_str(), 0555), 0);
  const absl::Status status = ProbeAsServer();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("does not take a new file"));
  EXPECT_THAT(status.message(), HasSubstr("left from before"));
}

TEST_F(HealthProbeTest, ARemovedDatabaseFileFails) {
  absl::StatusOr<DatabaseIdentity> db = IdentifyDatabase(db_);
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_EQ(unlink(db_.c_str()), 0);
  const absl::Status status = ProbeDatabaseWritable(*db);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("is gone"));
}

}  // namespace
}  // namespace steritrack
