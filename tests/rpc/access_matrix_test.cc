// The authorisation matrix over the wire (issue 9): every method of every steritrack service, as
// the service descriptors list them (so a new method cannot be forgotten), called with no
// credentials, a garbage token, a revoked token, an expired token, and each role's token. Every
// refusal must have the right code and ErrorInfo reason; every role the table allows must get
// through (any answer but UNAUTHENTICATED / PERMISSION_DENIED). Tokens come from
// `steritrackd token create`, except the expired one, which needs the server's clock to pass it.
#include <grpcpp/generic/generic_stub.h>

#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor_database.h"
#include "gtest/gtest.h"
#include "server/rpc/access_policy.h"
#include "steritrack/v1/admin.grpc.pb.h"
#include "tests/rpc/rpc_fixture.h"

namespace steritrack::rpc_test {
namespace {

const absl::Time kNow = Utc(2026, 11, 26, 10);

struct Method {
  std::string full_name;  // "/steritrack.v1.InventoryService/GetLot"
  bool server_streaming = false;
};

// Every method of every service in the steritrack protos linked into this binary.
std::vector<Method> AllSteritrackMethods() {
  std::vector<std::string> files;
  EXPECT_TRUE(
      google::protobuf::DescriptorPool::internal_generated_database()->FindAllFileNames(&files));
  std::vector<Method> methods;
  for (const std::string& name : files) {
    if (name.rfind("steritrack/", 0) != 0) continue;
    const google::protobuf::FileDescriptor* file =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(name);
    if (file == nullptr) continue;
    for (int s = 0; s < file->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* service = file->service(s);
      for (int m = 0; m < service->method_count(); ++m) {
        const google::protobuf::MethodDescriptor* method = service->method(m);
        EXPECT_FALSE(method->client_streaming()) << method->full_name();
        methods.push_back(
            {StrCat("/", service->full_name(), "/", method->name()), method->server_streaming()});
      }
    }
  }
  return methods;
}

class AccessMatrixTest : public FullServerTest {
 protected:
  AccessMatrixTest() : FullServerTest(kNow) {}

  void SetUp() override {
    FullServerTest::SetUp();
    for (Role role : kAllRoles) {
      const std::string name = StrCat("matrix.", RoleName(role));
      role_tokens_.push_back({role, tokens_->For(name, std::string(RoleName(role)))});
    }
    revoked_ = tokens_->For("matrix.revoked", "admin");
    ASSERT_TRUE(access_core_->RevokeToken({.actor = "test"}, "matrix.revoked").ok());
    // Made through the server's clock two days ago, valid for one day.
    clock_.Set(kNow - absl::Hours(48));
    absl::StatusOr<IssuedToken> expired = access_core_->CreateToken(
        {.actor = "test"}, {.name = "matrix.expired", .role = "admin", .expires_in_days = 1});
    ASSERT_TRUE(expired.ok()) << expired.status();
    expired_ = expired->secret;
    clock_.Set(kNow);
  }

  // Calls `method` with an empty request and `bearer` (none when empty) in the authorization
  // metadata; returns the call's status.
  grpc::Status Call(const Method& method, const std::string& authorization) {
    grpc::GenericStub stub(channel_);
    grpc::CompletionQueue cq;
    grpc::ClientContext ctx;
    if (!authorization.empty()) ctx.AddMetadata("authorization", authorization);
    // A stream that was let in runs until its deadline; a refused one ends at once.
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(method.server_streaming ? 2 : 60));
    grpc::Status status;
    void* tag = nullptr;
    bool ok = false;
    grpc::Slice empty;
    grpc::ByteBuffer request(&empty, 1);
    if (!method.server_streaming) {
      std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
          stub.PrepareUnaryCall(&ctx, method.full_name, request, &cq);
      call->StartCall();
      grpc::ByteBuffer response;
      call->Finish(&response, &status, reinterpret_cast<void*>(1));
      EXPECT_TRUE(cq.Next(&tag, &ok));
    } else {
      std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
          stub.PrepareCall(&ctx, method.full_name, &cq);
      call->StartCall(reinterpret_cast<void*>(1));
      EXPECT_TRUE(cq.Next(&tag, &ok));
      call->WriteLast(request, grpc::WriteOptions(), reinterpret_cast<void*>(2));
      EXPECT_TRUE(cq.Next(&tag, &ok));
      call->Finish(&status, reinterpret_cast<void*>(3));
      while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(3)) {
      }
    }
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return status;
  }

  std::vector<std::pair<Role, std::string>> role_tokens_;
  std::string revoked_;
  std::string expired_;
};

TEST_F(AccessMatrixTest, EveryMethodIsInTheTableAndEveryEntryIsAMethod) {
  std::set<std::string> described;
  for (const Method& m : AllSteritrackMethods()) described.insert(m.full_name);
  ASSERT_GE(described.size(), 44u);
  std::set<std::string> in_table;
  for (const rpc::MethodAccess& m : rpc::AccessPolicy()) in_table.insert(std::string(m.method));
  EXPECT_EQ(described, in_table);
}

TEST_F(AccessMatrixTest, EveryMethodRefusesBadCredentialsAndDisallowedRolesAndAdmitsTheRest) {
  const std::vector<Method> methods = AllSteritrackMethods();
  ASSERT_FALSE(methods.empty());
  int calls = 0, refused = 0, admitted = 0;
  for (const Method& method : methods) {
    SCOPED_TRACE(method.full_name);
    struct BadCase {
      std::string authorization;
      const char* reason;
    };
    const BadCase bad[] = {{"", "CREDENTIALS_MISSING"},
                           {"Bearer stk_not-a-token", "CREDENTIALS_INVALID"},
                           {"Basic dXNlcjpwYXNz", "CREDENTIALS_INVALID"},
                           {"Bearer " + revoked_, "CREDENTIALS_REVOKED"},
                           {"Bearer " + expired_, "CREDENTIALS_EXPIRED"}};
    for (const BadCase& c : bad) {
      ++calls;
      if (IsRefusal(Call(method, c.authorization), grpc::StatusCode::UNAUTHENTICATED, c.reason)) {
        ++refused;
      } else {
        ADD_FAILURE() << c.reason << ": "
                      << IsRefusal(Call(method, c.authorization), grpc::StatusCode::UNAUTHENTICATED,
                                   c.reason)
                             .message();
      }
    }
    for (const auto& [role, token] : role_tokens_) {
      ++calls;
      const grpc::Status status = Call(method, "Bearer " + token);
      if (rpc::MayCall(role, method.full_name)) {
        EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
            << RoleName(role) << ": " << status.error_message();
        EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << RoleName(role) << ": " << status.error_message();
        if (status.error_code() != grpc::StatusCode::UNAUTHENTICATED &&
            status.error_code() != grpc::StatusCode::PERMISSION_DENIED) {
          ++admitted;
        }
      } else {
        WireError e;
        if (IsRefusal(status, grpc::StatusCode::PERMISSION_DENIED, "ROLE_NOT_ALLOWED", &e) &&
            Meta(e, "role") == RoleName(role) && Meta(e, "method") == method.full_name) {
          ++refused;
        } else {
          ADD_FAILURE() << RoleName(role)
                        << " was not refused as ROLE_NOT_ALLOWED: " << status.error_code() << " "
                        << status.error_message();
        }
      }
    }
  }
  // The figures for the record (issue 9's closing note).
  std::printf(
      "access matrix: %zu methods x %zu cases = %d calls; %d refused as expected, %d "
      "admitted as the table allows\n",
      methods.size(), 5 + role_tokens_.size(), calls, refused, admitted);
  EXPECT_EQ(refused + admitted, calls);
}

TEST_F(AccessMatrixTest, EveryRefusalByRoleIsAnAuditEntryUnderTheCallersName) {
  v1::ListAuditEntriesRequest req;
  req.set_action("ACCESS_DENIED");
  v1::ListAuditEntriesResponse before;
  ASSERT_RPC_OK(audit_->ListAuditEntries(Context("manager.ann").get(), req, &before));
  const Method recall{"/steritrack.v1.InventoryService/RecallLot"};
  ASSERT_TRUE(IsRefusal(Call(recall, "Bearer " + role_tokens_[0].second),
                        grpc::StatusCode::PERMISSION_DENIED, "ROLE_NOT_ALLOWED"));
  // An unauthenticated call is counted, never stored.
  ASSERT_TRUE(
      IsRefusal(Call(recall, ""), grpc::StatusCode::UNAUTHENTICATED, "CREDENTIALS_MISSING"));
  v1::ListAuditEntriesResponse after;
  ASSERT_RPC_OK(audit_->ListAuditEntries(Context("manager.ann").get(), req, &after));
  ASSERT_EQ(after.entries_size(), before.entries_size() + 1);
  const v1::AuditEntry& entry = after.entries(after.entries_size() - 1);
  EXPECT_EQ(entry.actor(), "matrix.nurse");
  EXPECT_THAT(entry.detail(), ::testing::HasSubstr("RecallLot"));
}

TEST_F(AccessMatrixTest, ARevokedTokenStopsWorkingOnItsNextCallWithoutARestart) {
  const std::string token = tokens_->For("matrix.soon.gone", "nurse");
  const Method who{"/steritrack.v1.AdminService/WhoAmI"};
  ASSERT_TRUE(Call(who, "Bearer " + token).ok());
  auto admin = v1::AdminService::NewStub(channel_);
  v1::RevokeTokenRequest req;
  req.set_name("matrix.soon.gone");
  v1::Token revoked;
  ASSERT_RPC_OK(admin->RevokeToken(Context("tech.sam").get(), req, &revoked));
  EXPECT_EQ(revoked.revoked_by(), "tech.sam");
  EXPECT_TRUE(IsRefusal(Call(who, "Bearer " + token), grpc::StatusCode::UNAUTHENTICATED,
                        "CREDENTIALS_REVOKED"));
}

}  // namespace
}  // namespace steritrack::rpc_test
