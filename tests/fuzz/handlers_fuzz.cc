// Fuzz target: every unary request handler fed arbitrary bytes as its request message (issue 12).
//
// One real server (the same wiring as steritrackd: SQLite file in a temporary directory, core
// services, the gRPC adapters, authorisation), started once and called over its in-process
// channel. Each input's first byte picks a unary method of a steritrack.v1 service (by its index
// in the access policy, which lists every method), the rest is sent as its request bytes, under
// the token of a role that may call it, so the input reaches the handler and core, not only the
// authoriser. With FUZZ_HANDLERS_METHOD set (a method's full name or its "Service/Method" tail),
// every input goes to that one method and the first byte is skipped unread, so that a libFuzzer
// run's -runs counts that handler's executions (tests/fuzz/run.sh --extended runs each method in
// turn this way); FUZZ_HANDLERS_LIST=1 prints the methods, one per line, and exits. The oracle:
//   - the server answers with a status, never UNKNOWN, INTERNAL, UNIMPLEMENTED or a timeout (a
//     crash of the server is a crash of this process: it runs in it);
//   - a refusal writes nothing: the audit trail is where it was, except for the refusals core
//     records on purpose (CartridgeService::IsRecordedRefusal), which add exactly their entry;
//   - every 4,096 inputs the audit hash chain verifies end to end.
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "server/core/access_service.h"
#include "server/core/audit_service.h"
#include "server/core/cartridge_service.h"
#include "server/core/commit_notifier.h"
#include "server/core/report_service.h"
#include "server/core/sterilization_service.h"
#include "server/rpc/access_policy.h"
#include "server/rpc/server.h"
#include "server/storage/sqlite_admin.h"
#include "server/storage/sqlite_store.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/null_sink.h"
#include "steritrack/access.h"
#include "steritrack/clock.h"
#include "steritrack/error.h"
#include "steritrack/secret.h"
#include "steritrack/sha256.h"
#include "steritrack/store.h"
#include "steritrack/strings.h"
#include "steritrack/v1/admin.pb.h"
#include "steritrack/v1/audit.pb.h"
#include "steritrack/v1/inventory.pb.h"
#include "steritrack/v1/report.pb.h"
#include "steritrack/v1/sterilization.pb.h"
#include "steritrack/v1/treatment.pb.h"
#include "tests/fuzz/fuzz_check.h"

namespace steritrack {
namespace {

struct Method {
  std::string name;   // "/steritrack.v1.TreatmentService/OpenCartridge"
  std::string token;  // of a role that may call it
};

// Streaming methods (WatchEvents, Backup, reflection) are reached by their own tests.
bool IsUnary(std::string_view method) {
  const size_t slash = method.rfind('/');
  if (slash == std::string_view::npos || method.size() < 2) return false;
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(method.substr(1, slash - 1)));
  if (service == nullptr) return false;
  const google::protobuf::MethodDescriptor* m =
      service->FindMethodByName(std::string(method.substr(slash + 1)));
  return m != nullptr && !m->client_streaming() && !m->server_streaming();
}

// Every unary method of the access policy (which lists them all), in its order.
std::vector<std::string> UnaryMethods() {
  std::vector<std::string> names;
  for (const rpc::MethodAccess& m : rpc::AccessPolicy()) {
    if (IsUnary(m.method)) names.emplace_back(m.method);
  }
  return names;
}

// FUZZ_HANDLERS_METHOD, matched against the full names; empty when unset.
std::string OnlyMethod() {
  const char* wanted = getenv("FUZZ_HANDLERS_METHOD");
  if (wanted == nullptr || *wanted == '\0') return "";
  for (const std::string& name : UnaryMethods()) {
    if (name == wanted || name.ends_with(StrCat(".", wanted))) return name;
  }
  std::fprintf(stderr, "FUZZ_HANDLERS_METHOD=%s is not a unary steritrack method\n", wanted);
  std::exit(2);
}

class World {
 public:
  World() {
    std::string pattern = StrCat(getenv("TMPDIR") != nullptr ? getenv("TMPDIR") : "/tmp",
                                 "/steritrack-handlers-fuzz.XXXXXX");
    FUZZ_CHECK(mkdtemp(pattern.data()) != nullptr, "mkdtemp %s", pattern.c_str());
    dir_ = pattern;
    const std::string db = StrCat(dir_, "/steritrack.db");
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore({.path = db, .readers = 2});
    FUZZ_CHECK(store.ok(), "%s", std::string(store.status().message()).c_str());
    store_ = *std::move(store);
    sha256_ = NewSha256();
    clock_ = NewSystemClock();
    secrets_ = NewSecretSource();
    access_ = std::make_unique<AccessService>(AccessService::Options{.store = store_.get(),
                                                                     .sha256 = sha256_.get(),
                                                                     .secrets = secrets_.get(),
                                                                     .clock = clock_.get()});
    cartridges_ =
        std::make_unique<CartridgeService>(CartridgeServiceOptions{.store = store_.get(),
                                                                   .sha256 = sha256_.get(),
                                                                   .clock = clock_.get(),
                                                                   .commits = &commits_});
    sterilization_ =
        std::make_unique<SterilizationService>(SterilizationServiceOptions{.store = store_.get(),
                                                                           .sha256 = sha256_.get(),
                                                                           .clock = clock_.get(),
                                                                           .commits = &commits_});
    reports_ = std::make_unique<ReportService>(ReportServiceOptions{
        .store = store_.get(), .sha256 = sha256_.get(), .clock = clock_.get()});
    audit_ = std::make_unique<AuditService>(
        AuditServiceOptions{.store = store_.get(), .sha256 = sha256_.get()});
    database_ = NewSqliteDatabaseAdmin(db);
    auto log =
        std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
    absl::StatusOr<std::unique_ptr<rpc::RpcServer>> server =
        rpc::RpcServer::Start({.listen = "127.0.0.1:0",
                               .core = cartridges_.get(),
                               .sterilization = sterilization_.get(),
                               .reports = reports_.get(),
                               .log = log,
                               .audit = audit_.get(),
                               .commits = &commits_,
                               .access = access_.get(),
                               .database = database_.get()});
    FUZZ_CHECK(server.ok(), "%s", std::string(server.status().message()).c_str());
    server_ = *std::move(server);
    // In the process, without a socket: the same server, its interceptors and its lanes, at
    // several times the inputs per second of a loopback connection.
    channel_ = server_->InProcessChannel();

    std::string tokens[kAllRoles.size()];
    for (size_t i = 0; i < kAllRoles.size(); ++i) {
      const std::string role(RoleName(kAllRoles[i]));
      absl::StatusOr<IssuedToken> issued =
          access_->CreateToken(WriteContext{.actor = "fuzz.setup"},
                               NewToken{.name = StrCat("fuzz.", role), .role = role});
      FUZZ_CHECK(issued.ok(), "%s", std::string(issued.status().message()).c_str());
      tokens[i] = issued->secret;
    }
    const std::string only = OnlyMethod();
    for (const std::string& name : UnaryMethods()) {
      if (!only.empty() && name != only) continue;
      for (size_t i = 0; i < kAllRoles.size(); ++i) {
        if (rpc::MayCall(kAllRoles[i], name)) {
          methods_.push_back({name, tokens[i]});
          break;
        }
      }
    }
    FUZZ_CHECK(only.empty() ? methods_.size() > 30 : methods_.size() == 1,
               "%zu unary methods callable", methods_.size());
  }

  void Run(const uint8_t* data, size_t size) {
    if (size == 0) return;
    const Method& method = methods_[data[0] % methods_.size()];
    const int64_t before = LastSeq();

    grpc::Slice slice(data + 1, size - 1);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + method.token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    const grpc::Status status =
        grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
            channel_.get(),
            grpc::internal::RpcMethod(method.name.c_str(), grpc::internal::RpcMethod::NORMAL_RPC),
            &ctx, request, &response);

    const grpc::StatusCode code = status.error_code();
    FUZZ_CHECK(code != grpc::StatusCode::UNKNOWN && code != grpc::StatusCode::INTERNAL &&
                   code != grpc::StatusCode::UNIMPLEMENTED &&
                   code != grpc::StatusCode::DEADLINE_EXCEEDED,
               "%s answered %d: %s", method.name.c_str(), static_cast<int>(code),
               status.error_message().c_str());
    if (!status.ok()) {
      const std::string reason = ReasonOf(status);
      const int64_t after = LastSeq();
      const bool recorded = CartridgeService::IsRecordedRefusal(
          MakeError(static_cast<absl::StatusCode>(code), "", reason));
      FUZZ_CHECK(after == before || (recorded && after == before + 1),
                 "%s refused (%d %s: %s) but the audit trail moved from %lld to %lld",
                 method.name.c_str(), static_cast<int>(code), reason.c_str(),
                 status.error_message().c_str(), static_cast<long long>(before),
                 static_cast<long long>(after));
    }
    if (++runs_ % 4096 == 0) {
      absl::StatusOr<AuditChainCheck> check = audit_->Verify();
      FUZZ_CHECK(
          check.ok() && check->intact, "audit chain: %s",
          check.ok() ? check->problem.c_str() : std::string(check.status().message()).c_str());
    }
  }

 private:
  static std::string ReasonOf(const grpc::Status& status) {
    google::rpc::Status details;
    if (!details.ParseFromString(status.error_details())) return "";
    for (const google::protobuf::Any& any : details.details()) {
      google::rpc::ErrorInfo info;
      if (any.UnpackTo(&info)) return info.reason();
    }
    return "";
  }

  int64_t LastSeq() {
    absl::StatusOr<std::unique_ptr<ReadTransaction>> tx = store_->BeginRead();
    FUZZ_CHECK(tx.ok(), "BeginRead: %s", std::string(tx.status().message()).c_str());
    absl::StatusOr<int64_t> seq = (*tx)->audit().LastEventSeq();
    FUZZ_CHECK(seq.ok(), "LastEventSeq: %s", std::string(seq.status().message()).c_str());
    return *seq;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Sha256> sha256_;
  std::unique_ptr<Clock> clock_;
  std::unique_ptr<SecretSource> secrets_;
  CommitNotifier commits_;
  std::unique_ptr<AccessService> access_;
  std::unique_ptr<CartridgeService> cartridges_;
  std::unique_ptr<SterilizationService> sterilization_;
  std::unique_ptr<ReportService> reports_;
  std::unique_ptr<AuditService> audit_;
  std::unique_ptr<DatabaseAdmin> database_;
  std::unique_ptr<rpc::RpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::vector<Method> methods_;
  uint64_t runs_ = 0;
};

}  // namespace
}  // namespace steritrack

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  const char* list = getenv("FUZZ_HANDLERS_LIST");
  if (list != nullptr && std::string_view(list) == "1") {
    for (const std::string& name : steritrack::UnaryMethods()) std::printf("%s\n", name.c_str());
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Built once and never destroyed: the server's threads outlive any orderly teardown here.
  static steritrack::World* world = new steritrack::World();
  world->Run(data, size);
  return 0;
}
