// AdminService.Backup and GetStatus over the wire (issue 10): a real server on a SQLite file, the
// snapshot streamed while writes go on, checked the way the CLI checks it (size and SHA-256), then
// opened as a database of its own; the status's figures; and both refused to every role but
// admin.
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "steritrack/sha256.h"
#include "steritrack/v1/admin.grpc.pb.h"
#include "tests/rpc/rpc_fixture.h"

namespace steritrack::rpc_test {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

const absl::Time kNow = Utc(2026, 11, 26, 10);

std::string Unit(int serial) {
  return StrCat("(01)09506000134352(17)271231(10)LOT-B(21)B", serial);
}

class AdminRpcTest : public FullServerTest {
 protected:
  AdminRpcTest() : FullServerTest(kNow) {}

  void SetUp() override {
    FullServerTest::SetUp();
    admin_ = v1::AdminService::NewStub(channel_);
  }
  void TearDown() override {
    admin_.reset();
    FullServerTest::TearDown();
  }

  grpc::Status Receive(int serial) {
    v1::ReceiveCartridgesRequest req;
    req.add_barcodes(Unit(serial));
    v1::ReceiveCartridgesResponse resp;
    return inventory_->ReceiveCartridges(Context("tech.sam").get(), req, &resp);
  }

  // The whole stream of a Backup by `actor`: the file's bytes and the summary.
  struct Streamed {
    grpc::Status status;
    std::string bytes;
    std::optional<v1::BackupSummary> summary;
    int chunks = 0;
  };
  Streamed Backup(const std::string& actor = "tech.sam") {
    Streamed out;
    std::unique_ptr<grpc::ClientContext> ctx = Context(actor);
    auto reader = admin_->Backup(ctx.get(), v1::BackupRequest());
    v1::BackupResponse message;
    while (reader->Read(&message)) {
      out.bytes += message.chunk();
      if (!message.chunk().empty()) ++out.chunks;
      if (message.has_summary()) out.summary = message.summary();
    }
    out.status = reader->Finish();
    return out;
  }

  v1::AuditEntry LastAuditEntry() {
    v1::ListAuditEntriesRequest req;
    req.set_page_size(1000);
    v1::ListAuditEntriesResponse resp;
    EXPECT_TRUE(audit_->ListAuditEntries(Context("manager.ann").get(), req, &resp).ok());
    return resp.entries().empty() ? v1::AuditEntry() : resp.entries(resp.entries_size() - 1);
  }

  std::unique_ptr<v1::AdminService::Stub> admin_;
};

TEST_F(AdminRpcTest, StatusShowsVersionSchemaSizesAndTheAuditHead) {
  ASSERT_RPC_OK(Receive(1));
  const v1::AuditEntry last = LastAuditEntry();
  v1::GetStatusResponse status;
  ASSERT_RPC_OK(admin_->GetStatus(Context().get(), v1::GetStatusRequest(), &status));
  EXPECT_THAT(status.version(), MatchesRegex("[0-9]+\\.[0-9]+\\.[0-9]+"));
  EXPECT_EQ(status.schema_version(), SqliteSchemaVersion());
  EXPECT_EQ(status.build_schema_version(), SqliteSchemaVersion());
  EXPECT_EQ(status.database_path(), StrCat(dir_, "/steritrack.db"));
  EXPECT_GT(status.database_bytes(), 0);
  // The writes since start are in the log until a checkpoint.
  EXPECT_EQ(status.wal_bytes(),
            static_cast<int64_t>(std::filesystem::file_size(StrCat(dir_, "/steritrack.db-wal"))));
  EXPECT_GE(status.uptime().seconds(), 0);
  EXPECT_TRUE(status.has_start_time());
  EXPECT_EQ(status.audit_head().sequence(), last.sequence());
  EXPECT_EQ(status.audit_head().hash(), last.hash());
  EXPECT_EQ(status.audit_head().hash().size(), 64u);
}

TEST_F(AdminRpcTest, BackupStreamsASnapshotThatChecksOutAndOpensAsADatabase) {
  for (int i = 1; i <= 20; ++i) ASSERT_RPC_OK(Receive(i));
  const v1::AuditEntry last = LastAuditEntry();
  Streamed backup = Backup();
  ASSERT_RPC_OK(backup.status);
  ASSERT_TRUE(backup.summary.has_value());
  EXPECT_GE(backup.chunks, 1);
  EXPECT_EQ(backup.summary->size_bytes(), static_cast<int64_t>(backup.bytes.size()));
  std::unique_ptr<Sha256Stream> hash = NewSha256Stream();
  hash->Update(backup.bytes);
  EXPECT_EQ(backup.summary->sha256(), hash->HexFinal());
  EXPECT_EQ(backup.summary->schema_version(), SqliteSchemaVersion());
  EXPECT_EQ(backup.summary->audit_head().sequence(), last.sequence());
  EXPECT_EQ(backup.summary->audit_head().hash(), last.hash());

  // Written out, it is a sound database holding every cartridge, with an intact audit trail.
  const std::string file = StrCat(dir_, "/backup.db");
  {
    std::ofstream out(file, std::ios::binary);
    out << backup.bytes;
  }
  EXPECT_TRUE(CheckDatabaseIntegrity(file).ok());
  absl::StatusOr<std::unique_ptr<Store>> copy = OpenSqliteStore({.path = file});
  ASSERT_TRUE(copy.ok()) << copy.status();
  {
    absl::StatusOr<std::unique_ptr<ReadTransaction>> tx = (*copy)->BeginRead();
    ASSERT_TRUE(tx.ok());
    for (int i = 1; i <= 20; ++i) {
      absl::StatusOr<std::optional<Cartridge>> found =
          (*tx)->cartridges().FindCartridge("09506000134352", StrCat("B", i));
      ASSERT_TRUE(found.ok() && found->has_value()) << "B" << i;
    }
  }
  AuditService audit({.store = copy->get(), .sha256 = TestSha256()});
  absl::StatusOr<AuditChainCheck> check = audit.Verify();
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_TRUE(check->intact) << check->problem;
  // No snapshot file is left behind on the server.
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    EXPECT_THAT(entry.path().filename().string(), ::testing::Not(HasSubstr(".snapshot-")));
  }
}

TEST_F(AdminRpcTest, BackupDuringWritesHoldsEveryWriteAcknowledgedBeforeItBegan) {
  std::atomic<bool> stop = false;
  std::atomic<int> acknowledged = 0;  // serials 1..acknowledged were answered OK, in order
  std::thread writer([&] {
    for (int i = 1; !stop.load(); ++i) {
      if (!Receive(i).ok()) break;
      acknowledged.store(i);
    }
  });
  while (acknowledged.load() < 10) std::this_thread::yield();
  const int before = acknowledged.load();
  Streamed backup = Backup();
  const int during = acknowledged.load();
  stop.store(true);
  writer.join();
  ASSERT_RPC_OK(backup.status);
  ASSERT_TRUE(backup.summary.has_value());
  const std::string file = StrCat(dir_, "/during.db");
  {
    std::ofstream out(file, std::ios::binary);
    out << backup.bytes;
  }
  absl::StatusOr<std::unique_ptr<Store>> copy = OpenSqliteStore({.path = file});
  ASSERT_TRUE(copy.ok()) << copy.status();
  absl::StatusOr<std::unique_ptr<ReadTransaction>> tx = (*copy)->BeginRead();
  ASSERT_TRUE(tx.ok());
  for (int i = 1; i <= before; ++i) {
    absl::StatusOr<std::optional<Cartridge>> found =
        (*tx)->cartridges().FindCartridge("09506000134352", StrCat("B", i));
    ASSERT_TRUE(found.ok() && found->has_value()) << "B" << i << " of " << before;
  }
  // A consistent cut: what it holds is a prefix of the acknowledged writes.
  absl::StatusOr<std::vector<Cartridge>> all =
      (*tx)->cartridges().ListCartridges({.limit = 100000});
  ASSERT_TRUE(all.ok());
  EXPECT_GE(static_cast<int>(all->size()), before);
  EXPECT_LE(static_cast<int>(all->size()), during + 1);
  AuditService audit({.store = copy->get(), .sha256 = TestSha256()});
  absl::StatusOr<AuditChainCheck> check = audit.Verify();
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_TRUE(check->intact) << check->problem;
  std::printf("backup during writes: %d acknowledged before, %d after, %zu in the snapshot\n",
              before, during, all->size());
}

TEST_F(AdminRpcTest, BackupAndStatusAreForTheAdminRoleOnly) {
  for (const char* role : {"nurse", "sterile_processing", "manager", "integrator"}) {
    const std::string name = StrCat("only.", role);
    tokens_->For(name, role);
    Streamed backup = Backup(name);
    EXPECT_TRUE(IsRefusal(backup.status, grpc::StatusCode::PERMISSION_DENIED, "ROLE_NOT_ALLOWED"))
        << role;
    EXPECT_TRUE(backup.bytes.empty()) << role;
    v1::GetStatusResponse status;
    EXPECT_TRUE(IsRefusal(admin_->GetStatus(Context(name).get(), v1::GetStatusRequest(), &status),
                          grpc::StatusCode::PERMISSION_DENIED, "ROLE_NOT_ALLOWED"))
        << role;
  }
  Streamed anonymous = Backup("");
  EXPECT_TRUE(
      IsRefusal(anonymous.status, grpc::StatusCode::UNAUTHENTICATED, "CREDENTIALS_MISSING"));
}

}  // namespace
}  // namespace steritrack::rpc_test
