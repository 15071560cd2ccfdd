// RPC tier: server reflection (server/rpc/reflection_service.h) as a client sees it, against a real
// RpcServer on a loopback port, through a stub generated from our own
// proto/grpc/reflection/v1alpha/reflection.proto.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/error_details.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "rpc/reflection_test_extension.pb.h"
#include "server/rpc/convert.h"
#include "steritrack/error.h"
#include "tests/rpc/rpc_fixture.h"

namespace steritrack::rpc_test {
namespace {

using ::google::protobuf::DescriptorPool;
using ::google::protobuf::FileDescriptorProto;
using ::grpc::reflection::v1alpha::ServerReflection;
using ::grpc::reflection::v1alpha::ServerReflectionRequest;
using ::grpc::reflection::v1alpha::ServerReflectionResponse;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::IsSupersetOf;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

using Stream = grpc::ClientReaderWriter<ServerReflectionRequest, ServerReflectionResponse>;

const absl::Time kNow = Utc(2026, 3, 2, 9);

ServerReflectionRequest ListServices() {
  ServerReflectionRequest req;
  req.set_list_services("*");
  return req;
}

ServerReflectionRequest FileContainingSymbol(const std::string& symbol) {
  ServerReflectionRequest req;
  req.set_file_containing_symbol(symbol);
  return req;
}

std::vector<std::string> ServiceNames(const ServerReflectionResponse& resp) {
  std::vector<std::string> names;
  for (const auto& service : resp.list_services_response().service()) {
    names.push_back(service.name());
  }
  return names;
}

std::vector<FileDescriptorProto> Files(const ServerReflectionResponse& resp) {
  std::vector<FileDescriptorProto> files;
  for (const std::string& bytes : resp.file_descriptor_response().file_descriptor_proto()) {
    FileDescriptorProto file;
    EXPECT_TRUE(file.ParseFromString(bytes)) << "not a FileDescriptorProto";
    files.push_back(std::move(file));
  }
  return files;
}

std::vector<std::string> FileNames(const ServerReflectionResponse& resp) {
  std::vector<std::string> names;
  for (const FileDescriptorProto& file : Files(resp)) names.push_back(file.name());
  return names;
}

// Builds `files` in `pool`, each after its dependencies, in whatever order they came; fails the
// test when one cannot be built (a dependency missing or a file malformed).
void BuildAll(const std::vector<FileDescriptorProto>& files, DescriptorPool& pool) {
  std::map<std::string, const FileDescriptorProto*> pending;
  for (const FileDescriptorProto& file : files) pending[file.name()] = &file;
  while (!pending.empty()) {
    bool progress = false;
    for (auto it = pending.begin(); it != pending.end();) {
      bool ready = true;
      for (const std::string& dep : it->second->dependency()) {
        ready = ready && pool.FindFileByName(dep) != nullptr;
      }
      if (!ready) {
        ++it;
        continue;
      }
      ASSERT_NE(pool.BuildFile(*it->second), nullptr) << "cannot build " << it->first;
      it = pending.erase(it);
      progress = true;
    }
    ASSERT_TRUE(progress) << "missing dependencies of " << pending.begin()->first;
  }
}

class ReflectionRpcTest : public FullServerTest {
 protected:
  ReflectionRpcTest() : FullServerTest(kNow) {}

  void SetUp() override {
    FullServerTest::SetUp();
    reflection_ = ServerReflection::NewStub(channel_);
  }
  void TearDown() override {
    reflection_.reset();
    FullServerTest::TearDown();
  }

  // Opens a stream; with the server's own check (no test hook), as tech.sam (an admin's token).
  std::unique_ptr<Stream> Open(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (!authorize_reflection_) tokens_->Authorize(ctx, "tech.sam");
    return reflection_->ServerReflectionInfo(&ctx);
  }

  // One request, one response, on an open stream.
  static ServerReflectionResponse Ask(Stream& stream, const ServerReflectionRequest& req) {
    EXPECT_TRUE(stream.Write(req)) << "stream closed before " << req.ShortDebugString();
    ServerReflectionResponse resp;
    EXPECT_TRUE(stream.Read(&resp)) << "no answer to " << req.ShortDebugString();
    return resp;
  }

  static void Close(Stream& stream) {
    EXPECT_TRUE(stream.WritesDone());
    ServerReflectionResponse extra;
    EXPECT_FALSE(stream.Read(&extra)) << "unasked answer " << extra.ShortDebugString();
    ASSERT_RPC_OK(stream.Finish());
  }

  std::unique_ptr<ServerReflection::Stub> reflection_;
};

TEST_F(ReflectionRpcTest, ListServicesNamesEveryServiceOfferedHealthAndReflection) {
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = Open(ctx);
  ServerReflectionResponse resp = Ask(*stream, ListServices());
  ASSERT_TRUE(resp.has_list_services_response()) << resp.ShortDebugString();
  EXPECT_THAT(
      ServiceNames(resp),
      UnorderedElementsAre("steritrack.v1.AdminService", "steritrack.v1.InventoryService",
                           "steritrack.v1.TreatmentService", "steritrack.v1.SterilizationService",
                           "steritrack.v1.ReportService", "steritrack.v1.ExportService",
                           "steritrack.v1.AuditService", "steritrack.v1.EventService",
                           "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"));
  EXPECT_EQ(resp.original_request().list_services(), "*");
  Close(*stream);
}

TEST_F(ReflectionRpcTest, FileContainingServiceBuildsInAFreshPoolWithItsDependencies) {
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = Open(ctx);
  ServerReflectionResponse resp =
      Ask(*stream, FileContainingSymbol("steritrack.v1.InventoryService"));
  ASSERT_TRUE(resp.has_file_descriptor_response()) << resp.ShortDebugString();
  std::vector<std::string> names = FileNames(resp);
  ASSERT_THAT(names, Not(IsEmpty()));
  EXPECT_EQ(names.front(), "steritrack/v1/inventory.proto");  // the file asked for comes first
  EXPECT_THAT(names, Contains("steritrack/v1/common.proto"));
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size())
      << "a file sent twice";

  DescriptorPool pool;  // nothing in it: everything must come from the answer
  BuildAll(Files(resp), pool);
  const google::protobuf::ServiceDescriptor* service =
      pool.FindServiceByName("steritrack.v1.InventoryService");
  ASSERT_NE(service, nullptr);
  EXPECT_NE(service->FindMethodByName("ReceiveCartridges"), nullptr);
  EXPECT_NE(service->FindMethodByName("RecallLot"), nullptr);
  Close(*stream);
}

TEST_F(ReflectionRpcTest, MethodsMessagesAndFileNamesFindTheirFile) {
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = Open(ctx);
  EXPECT_EQ(
      FileNames(Ask(*stream, FileContainingSymbol("steritrack.v1.TreatmentService.OpenCartridge")))
          .front(),
      "steritrack/v1/treatment.proto");
  EXPECT_EQ(FileNames(Ask(*stream, FileContainingSymbol("steritrack.v1.Lot"))).front(),
            "steritrack/v1/inventory.proto");
  ServerReflectionRequest by_name;
  by_name.set_file_by_filename("steritrack/v1/report.proto");
  EXPECT_EQ(FileNames(Ask(*stream, by_name)).front(), "steritrack/v1/report.proto");
  Close(*stream);
}

TEST_F(ReflectionRpcTest, EveryListedServiceCanBeDescribed) {
  // What a generic client does after `list`: fetch each service's file.
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = Open(ctx);
  std::vector<FileDescriptorProto> files;
  for (const std::string& name : ServiceNames(Ask(*stream, ListServices()))) {
    ServerReflectionResponse resp = Ask(*stream, FileContainingSymbol(name));
    ASSERT_TRUE(resp.has_file_descriptor_response()) << name << ": " << resp.ShortDebugString();
    for (FileDescriptorProto& file : Files(resp)) files.push_back(std::move(file));
  }
  DescriptorPool pool;
  BuildAll(files, pool);
  EXPECT_NE(pool.FindServiceByName("grpc.health.v1.Health"), nullptr);
  EXPECT_NE(pool.FindServiceByName("grpc.reflection.v1alpha.ServerReflection"), nullptr);
  Close(*stream);
}

TEST_F(ReflectionRpcTest, TheDescribedHealthProtocolIsTheOneServed) {
  // What `grpcurl ... grpc.health.v1.Health/Check` does with the description: gRPC's default
  // health service answers a client built from our proto/grpc/health/v1/health.proto.
  std::unique_ptr<grpc::health::v1::Health::Stub> health =
      grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_RPC_OK(health->Check(Context("").get(), grpc::health::v1::HealthCheckRequest(), &resp));
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(ReflectionRpcTest, EachFileIsSentOncePerStreamButTheFileAskedForAlways) {
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = Open(ctx);
  std::vector<std::string> first =
      FileNames(Ask(*stream, FileContainingSymbol("steritrack.v1.InventoryService")));
  std::vector<std::string> second =
      FileNames(Ask(*stream, FileContainingSymbol("steritrack.v1.TreatmentService")));
  ASSERT_THAT(second, Not(IsEmpty()));
  EXPECT_EQ(second.front(), "steritrack/v1/treatment.proto");
  for (const std::string& name : second) {
    EXPECT_THAT(first, Not(Contains(name))) << name << " sent again on the same stream";
  }
  // Asked for again: the file itself, none of its dependencies.
  EXPECT_THAT(FileNames(Ask(*stream, FileContainingSymbol("steritrack.v1.InventoryService"))),
              ElementsAre("steritrack/v1/inventory.proto"));
  Close(*stream);

  // A new stream starts afresh.
  grpc::ClientContext ctx2;
  std::unique_ptr<Stream> stream2 = Open(ctx2);
  EXPECT_EQ(FileNames(Ask(*stream2, FileContainingSymbol("steritrack.v1.InventoryService"))),
            first);
  Close(*stream2);
}

TEST_F(ReflectionRpcTest, UnknownNamesAnswerNotFoundAndTheStreamGoesOn) {
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = Open(ctx);
  ServerReflectionResponse resp = Ask(*stream, FileContainingSymbol("steritrack.v1.NoSuchService"));
  ASSERT_TRUE(resp.has_error_response()) << resp.ShortDebugString();
  EXPECT_EQ(resp.error_response().error_code(), 5);  // grpc::StatusCode::NOT_FOUND
  EXPECT_THAT(resp.error_response().error_message(), HasSubstr("steritrack.v1.NoSuchService"));
  EXPECT_EQ(resp.original_request().file_containing_symbol(), "steritrack.v1.NoSuchService");

  ServerReflectionRequest no_file;
  no_file.set_file_by_filename("steritrack/v1/nothing.proto");
  EXPECT_EQ(Ask(*stream, no_file).error_response().error_code(), grpc::StatusCode::NOT_FOUND);
  ServerReflectionRequest no_type;
  no_type.set_all_extension_numbers_of_type("steritrack.v1.NoSuchMessage");
  EXPECT_EQ(Ask(*stream, no_type).error_response().error_code(), grpc::StatusCode::NOT_FOUND);
  ServerReflectionRequest nothing_asked;  // no message_request set
  EXPECT_EQ(Ask(*stream, nothing_asked).error_response().error_code(),
            grpc::StatusCode::UNIMPLEMENTED);

  ServerReflectionResponse after = Ask(*stream, ListServices());
  ASSERT_TRUE(after.has_list_services_response()) << after.ShortDebugString();
  EXPECT_THAT(ServiceNames(after), Contains("steritrack.v1.InventoryService"));
  Close(*stream);
}

TEST_F(ReflectionRpcTest, ExtensionsAreFoundByTypeAndNumber) {
  const int number = steritrack::test::reflection_test_note.number();
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = Open(ctx);

  ServerReflectionRequest numbers;
  numbers.set_all_extension_numbers_of_type("google.protobuf.FieldOptions");
  ServerReflectionResponse resp = Ask(*stream, numbers);
  ASSERT_TRUE(resp.has_all_extension_numbers_response()) << resp.ShortDebugString();
  EXPECT_EQ(resp.all_extension_numbers_response().base_type_name(), "google.protobuf.FieldOptions");
  EXPECT_THAT(resp.all_extension_numbers_response().extension_number(), Contains(number));

  ServerReflectionRequest by_extension;
  by_extension.mutable_file_containing_extension()->set_containing_type(
      "google.protobuf.FieldOptions");
  by_extension.mutable_file_containing_extension()->set_extension_number(number);
  std::vector<std::string> names = FileNames(Ask(*stream, by_extension));
  ASSERT_THAT(names, Not(IsEmpty()));
  EXPECT_EQ(names.front(), "rpc/reflection_test_extension.proto");
  EXPECT_THAT(names, IsSupersetOf({"google/protobuf/descriptor.proto"}));

  by_extension.mutable_file_containing_extension()->set_extension_number(number + 1);
  EXPECT_EQ(Ask(*stream, by_extension).error_response().error_code(), grpc::StatusCode::NOT_FOUND);
  Close(*stream);
}

TEST_F(ReflectionRpcTest, WithoutAValidCredentialReflectionIsRefused) {
  for (const char* authorization : {"", "Bearer stk_garbage"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (*authorization != '\0') ctx.AddMetadata("authorization", authorization);
    std::unique_ptr<Stream> stream = reflection_->ServerReflectionInfo(&ctx);
    static_cast<void>(stream->Write(ListServices()));
    ServerReflectionResponse resp;
    EXPECT_FALSE(stream->Read(&resp)) << "answered: " << resp.ShortDebugString();
    static_cast<void>(stream->WritesDone());
    EXPECT_TRUE(IsRefusal(stream->Finish(), grpc::StatusCode::UNAUTHENTICATED,
                          *authorization == '\0' ? "CREDENTIALS_MISSING" : "CREDENTIALS_INVALID"))
        << authorization;
  }
}

// A hook that admits only `authorization: Bearer good`, and refuses the rest the way issue 9's
// credentials check will: UNAUTHENTICATED with an ErrorInfo reason.
class GuardedReflectionRpcTest : public ReflectionRpcTest {
 protected:
  GuardedReflectionRpcTest() {
    authorize_reflection_ = [this](grpc::ServerContext& ctx) {
      ++asked_;
      auto it = ctx.client_metadata().find("authorization");
      if (it != ctx.client_metadata().end() && it->second == "Bearer good") {
        return grpc::Status::OK;
      }
      return rpc::ToGrpcStatus(MakeError(absl::StatusCode::kUnauthenticated,
                                         "reflection needs a credential", "CREDENTIALS_MISSING",
                                         {{"method", "ServerReflectionInfo"}}));
    };
  }

  std::atomic<int> asked_ = 0;
};

TEST_F(GuardedReflectionRpcTest, RefusalReachesTheClientWithCodeAndReason) {
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = Open(ctx);
  // The write may or may not be accepted before the refusal arrives; nothing is answered.
  static_cast<void>(stream->Write(ListServices()));
  ServerReflectionResponse resp;
  EXPECT_FALSE(stream->Read(&resp)) << "answered a refused stream: " << resp.ShortDebugString();
  static_cast<void>(stream->WritesDone());  // so that a server that wrongly serves ends the call
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  EXPECT_EQ(status.error_message(), "reflection needs a credential");

  google::rpc::Status details;
  ASSERT_TRUE(grpc::ExtractErrorDetails(status, &details).ok());
  EXPECT_EQ(details.code(), grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.domain(), "steritrack");
  EXPECT_EQ(info.reason(), "CREDENTIALS_MISSING");
  EXPECT_EQ(info.metadata().at("method"), "ServerReflectionInfo");
  EXPECT_TRUE(IsRefusal(status, grpc::StatusCode::UNAUTHENTICATED, "CREDENTIALS_MISSING"));
  EXPECT_EQ(asked_.load(), 1);
}

TEST_F(GuardedReflectionRpcTest, AnAdmittedCallerIsAskedOnceAndServedThroughout) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer good");
  std::unique_ptr<Stream> stream = Open(ctx);
  EXPECT_TRUE(Ask(*stream, ListServices()).has_list_services_response());
  EXPECT_TRUE(Ask(*stream, FileContainingSymbol("steritrack.v1.InventoryService"))
                  .has_file_descriptor_response());
  Close(*stream);
  EXPECT_EQ(asked_.load(), 1);  // once per stream, not per request
}

}  // namespace
}  // namespace steritrack::rpc_test
