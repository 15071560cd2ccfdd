// The transport: TLS and mutual TLS with certificates from deploy/make-certs.sh, the refusal to
// serve a network address in clear, the checks of the TLS files at start-up, and the peer's
// certificate subject (CN = identity, OU = role) as a handler sees it.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/core/access_service.h"
#include "server/rpc/peer_identity.h"
#include "server/rpc/server.h"
#include "server/rpc/server_tls.h"
#include "server/storage/sqlite_store.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/null_sink.h"
#include "steritrack/clock.h"
#include "steritrack/listen_address.h"
#include "steritrack/secret.h"
#include "steritrack/strings.h"
#include "steritrack/v1/inventory.grpc.pb.h"
#include "tests/rpc/tokens.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Two clinics' certificates, made once by the real deploy/make-certs.sh: `clinic` signs the server
// and nurse.kim; `other` is another CA whose client certificate the server must refuse.
class Certificates {
 public:
  static const Certificates& Get() {
    static const Certificates certs;
    return certs;
  }
  ~Certificates() {
    std::error_code ignored;
    if (!root.empty()) std::filesystem::remove_all(root, ignored);
  }
  std::string root, clinic, other;  // directories
  std::string error;                // set when make-certs.sh failed

 private:
  Certificates() {
    std::string pattern = StrCat(::testing::TempDir(), "transport_test.XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      error = "mkdtemp failed";
      return;
    }
    root = pattern;
    clinic = pattern + "/clinic";
    other = pattern + "/other";
    for (const std::string& dir : {clinic, other}) {
      const std::string command =
          StrCat(STERITRACK_SOURCE_DIR, "/deploy/make-certs.sh '", dir,
                 "' --client nurse.kim:nurse --client spd.lee:sterile_processing >/dev/null");
      if (std::system(command.c_str()) != 0) error = "failed: " + command;
    }
  }
};

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(Certificates::Get().error, "") << "deploy/make-certs.sh needs the openssl command";
    clinic_ = Certificates::Get().clinic;
    other_ = Certificates::Get().other;
    std::string pattern = StrCat(::testing::TempDir(), "transport_db.XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenSqliteStore({.path = StrCat(dir_, "/steritrack.db")});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    clock_ = NewSystemClock();
    core_ = std::make_unique<CartridgeService>(CartridgeServiceOptions{
        .store = store_.get(), .sha256 = TestSha256(), .clock = clock_.get()});
    secrets_ = NewSecretSource();
    access_ = std::make_unique<AccessService>(AccessService::Options{.store = store_.get(),
                                                                     .sha256 = TestSha256(),
                                                                     .secrets = secrets_.get(),
                                                                     .clock = clock_.get()});
    log_ = std::make_shared<spdlog::logger>("transport_test",
                                            std::make_shared<spdlog::sinks::null_sink_mt>());
  }

  void TearDown() override {
    server_.reset();
    core_.reset();
    access_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  rpc::ServerTls ClinicTls(bool mutual) {
    absl::StatusOr<rpc::ServerTls> tls =
        rpc::LoadServerTls({.cert = clinic_ + "/server.pem",
                            .key = clinic_ + "/server.key",
                            .client_ca = mutual ? clinic_ + "/ca.pem" : ""});
    EXPECT_TRUE(tls.ok()) << tls.status();
    return tls.ok() ? *tls : rpc::ServerTls{};
  }

  absl::Status StartServer(std::optional<rpc::ServerTls> tls,
                           const std::string& listen = "127.0.0.1:0") {
    absl::StatusOr<std::unique_ptr<rpc::RpcServer>> server =
        rpc::RpcServer::Start({.listen = listen,
                               .tls = std::move(tls),
                               .core = core_.get(),
                               .log = log_,
                               .access = access_.get()});
    if (!server.ok()) return server.status();
    server_ = *std::move(server);
    return absl::OkStatus();
  }

  // TLS credentials trusting `ca_dir`'s CA, with `client`'s certificate from `client_dir` if given.
  static std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& ca_dir,
                                                       const std::string& client_dir = "",
                                                       const std::string& client = "nurse.kim") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadAll(ca_dir + "/ca.pem");
    if (!client_dir.empty()) {
      ssl.pem_cert_chain = ReadAll(StrCat(client_dir, "/client-", client, ".pem"));
      ssl.pem_private_key = ReadAll(StrCat(client_dir, "/client-", client, ".key"));
    }
    return grpc::SslCredentials(ssl);
  }

  // A cheap read; NOT_FOUND means the call reached the server's handler.
  grpc::Status Read(const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                    const std::string& token = "") {
    auto stub = v1::InventoryService::NewStub(
        grpc::CreateChannel(StrCat("127.0.0.1:", server_->port()), credentials));
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::GetCartridgeRequest req;
    req.set_barcode("(01)09506000134352(21)TRANSPORT");
    v1::Cartridge resp;
    return stub->GetCartridge(&ctx, req, &resp);
  }

  std::string clinic_, other_, dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Clock> clock_;
  std::unique_ptr<CartridgeService> core_;
  std::unique_ptr<SecretSource> secrets_;
  std::unique_ptr<AccessService> access_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<rpc::RpcServer> server_;
};

TEST_F(TransportTest, MutualTlsLetsAClinicClientCertificateThrough) {
  ASSERT_TRUE(StartServer(ClinicTls(/*mutual=*/true)).ok());
  grpc::Status st = Read(Tls(clinic_, clinic_));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
}

TEST_F(TransportTest, MutualTlsRefusesAClientWithoutACertificate) {
  ASSERT_TRUE(StartServer(ClinicTls(/*mutual=*/true)).ok());
  EXPECT_EQ(Read(Tls(clinic_)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TransportTest, MutualTlsRefusesACertificateFromAnotherCa) {
  ASSERT_TRUE(StartServer(ClinicTls(/*mutual=*/true)).ok());
  EXPECT_EQ(Read(Tls(clinic_, other_)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TransportTest, ATlsPortRefusesPlaintext) {
  ASSERT_TRUE(StartServer(ClinicTls(/*mutual=*/true)).ok());
  EXPECT_EQ(Read(grpc::InsecureChannelCredentials()).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TransportTest, AClientRefusesAServerItsCaDidNotSign) {
  ASSERT_TRUE(StartServer(ClinicTls(/*mutual=*/false)).ok());
  EXPECT_EQ(Read(Tls(other_)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TransportTest, TlsWithoutClientCaServesClientsWithoutCertificatesThatBringAToken) {
  ASSERT_TRUE(StartServer(ClinicTls(/*mutual=*/false)).ok());
  EXPECT_EQ(Read(Tls(clinic_)).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const std::string token =
      CreateTokenWithSteritrackd(StrCat(dir_, "/steritrack.db"), "nurse.kim", "nurse");
  EXPECT_EQ(Read(Tls(clinic_), token).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(TransportTest, TheAuditActorIsTheClientCertificatesCommonName) {
  ASSERT_TRUE(StartServer(ClinicTls(/*mutual=*/true)).ok());
  auto stub = v1::InventoryService::NewStub(
      grpc::CreateChannel(StrCat("127.0.0.1:", server_->port()), Tls(clinic_, clinic_, "spd.lee")));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  ctx.AddMetadata("x-steritrack-actor", "someone-else");  // ignored
  v1::ReceiveCartridgesRequest req;
  req.add_barcodes("(01)09506000134352(17)301231(10)LOT-T(21)CN-1");
  v1::ReceiveCartridgesResponse resp;
  grpc::Status st = stub->ReceiveCartridges(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  ASSERT_EQ(resp.cartridges_size(), 1);
  EXPECT_EQ(resp.cartridges(0).received_by(), "spd.lee");
  // The nurse's certificate (OU nurse) may not receive stock.
  auto nurse = v1::InventoryService::NewStub(grpc::CreateChannel(
      StrCat("127.0.0.1:", server_->port()), Tls(clinic_, clinic_, "nurse.kim")));
  grpc::ClientContext nurse_ctx;
  nurse_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  EXPECT_EQ(nurse->ReceiveCartridges(&nurse_ctx, req, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(TransportTest, PlaintextIsRefusedOnANetworkAddress) {
  absl::Status st = StartServer(std::nullopt, "0.0.0.0:0");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("0.0.0.0:0 without TLS"), std::string::npos) << st;
  EXPECT_EQ(server_, nullptr);
}

TEST_F(TransportTest, TlsMayServeANetworkAddress) {
  // Any free port on every interface; the client still comes in over loopback.
  ASSERT_TRUE(StartServer(ClinicTls(/*mutual=*/true), "0.0.0.0:0").ok());
  EXPECT_EQ(Read(Tls(clinic_, clinic_)).error_code(), grpc::StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------------
// The TLS files, checked at start-up

class ServerTlsFilesTest : public TransportTest {};

TEST_F(ServerTlsFilesTest, AMissingFileIsNamed) {
  absl::StatusOr<rpc::ServerTls> tls =
      rpc::LoadServerTls({.cert = dir_ + "/missing.pem", .key = clinic_ + "/server.key"});
  ASSERT_FALSE(tls.ok());
  EXPECT_NE(tls.status().message().find(dir_ + "/missing.pem: cannot be read"), std::string::npos)
      << tls.status();
}

TEST_F(ServerTlsFilesTest, AFileThatIsNotPemIsNamed) {
  WriteAll(dir_ + "/junk.pem", "not a certificate\n");
  for (const rpc::ServerTlsFiles& files :
       {rpc::ServerTlsFiles{.cert = dir_ + "/junk.pem", .key = clinic_ + "/server.key"},
        rpc::ServerTlsFiles{.cert = clinic_ + "/server.pem", .key = dir_ + "/junk.pem"},
        rpc::ServerTlsFiles{.cert = clinic_ + "/server.pem",
        .key = clinic_ + "/server.key",
        .client_ca = dir_ + "/junk.pem"}}) {
    absl::StatusOr<rpc::ServerTls> tls = rpc::LoadServerTls(files);
    ASSERT_FALSE(tls.ok());
    EXPECT_NE(tls.status().message().find(dir_ + "/junk.pem: no "), std::string::npos)
        << tls.status();
  }
}

TEST_F(ServerTlsFilesTest, AKeyOfAnotherCertificateIsRefused) {
  absl::StatusOr<rpc::ServerTls> tls =
      rpc::LoadServerTls({.cert = clinic_ + "/server.pem", .key = other_ + "/server.key"});
  ASSERT_FALSE(tls.ok());
  EXPECT_NE(tls.status().message().find("is not the key of the certificate in " + clinic_),
            std::string::npos)
      << tls.status();
}

// ---------------------------------------------------------------------------------------------------
// The peer's certificate subject

// Answers every call UNIMPLEMENTED after noting what PeerCertificateSubject saw in its AuthContext:
// the place where a handler will read the caller's identity.
class SubjectRecorder : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    {
      absl::MutexLock lock(&mu_);
      seen_ = rpc::PeerCertificateSubject(*ctx->auth_context());
      calls_++;
    }
    class Refuse : public grpc::ServerGenericBidiReactor {
     public:
      Refuse() { Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "recorded")); }
      void OnDone() override { delete this; }
    };
    return new Refuse();
  }
  std::optional<rpc::CertificateSubject> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  std::optional<rpc::CertificateSubject> seen_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

class PeerIdentityTest : public TransportTest {
 protected:
  // Serves SubjectRecorder with `credentials` and makes one call with `client`.
  void CallWith(const std::shared_ptr<grpc::ServerCredentials>& credentials,
                const std::shared_ptr<grpc::ChannelCredentials>& client) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", credentials, &port);
    builder.RegisterCallbackGenericService(&recorder_);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    ASSERT_NE(server, nullptr);
    grpc::GenericStub stub(grpc::CreateChannel(StrCat("127.0.0.1:", port), client));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&ctx, "/steritrack.test/Who", grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << status.error_message();
    server->Shutdown(std::chrono::system_clock::now());
  }

  std::shared_ptr<grpc::ServerCredentials> ServerCredentials(bool mutual) {
    rpc::ServerTls tls = ClinicTls(mutual);
    grpc::SslServerCredentialsOptions ssl(
        mutual ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
               : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    ssl.pem_root_certs = tls.client_ca_pem;
    ssl.pem_key_cert_pairs.push_back(
        {.private_key = tls.private_key_pem, .cert_chain = tls.cert_chain_pem});
    return grpc::SslServerCredentials(ssl);
  }

  SubjectRecorder recorder_;
};

TEST_F(PeerIdentityTest, AClientCertificateGivesItsCnAndOu) {
  CallWith(ServerCredentials(/*mutual=*/true), Tls(clinic_, clinic_));
  ASSERT_EQ(recorder_.calls(), 1);
  std::optional<rpc::CertificateSubject> subject = recorder_.seen();
  ASSERT_TRUE(subject.has_value());
  EXPECT_EQ(subject->common_name, "nurse.kim");
  EXPECT_EQ(subject->organizational_unit, "nurse");
}

TEST_F(PeerIdentityTest, TlsWithoutAClientCertificateGivesNone) {
  CallWith(ServerCredentials(/*mutual=*/false), Tls(clinic_));
  ASSERT_EQ(recorder_.calls(), 1);
  EXPECT_FALSE(recorder_.seen().has_value());
}

TEST_F(PeerIdentityTest, PlaintextGivesNone) {
  CallWith(grpc::InsecureServerCredentials(), grpc::InsecureChannelCredentials());
  ASSERT_EQ(recorder_.calls(), 1);
  EXPECT_FALSE(recorder_.seen().has_value());
}

TEST(CertificateSubjectFromPemTest, ReadsCnAndOuOfTheFirstCertificate) {
  ASSERT_EQ(Certificates::Get().error, "");
  std::optional<rpc::CertificateSubject> subject =
      rpc::CertificateSubjectFromPem(ReadAll(Certificates::Get().clinic + "/client-nurse.kim.pem"));
  ASSERT_TRUE(subject.has_value());
  EXPECT_EQ(subject->common_name, "nurse.kim");
  EXPECT_EQ(subject->organizational_unit, "nurse");
}

TEST(CertificateSubjectFromPemTest, ACertificateWithoutOuGivesAnEmptyOu) {
  ASSERT_EQ(Certificates::Get().error, "");
  std::optional<rpc::CertificateSubject> subject =
      rpc::CertificateSubjectFromPem(ReadAll(Certificates::Get().clinic + "/server.pem"));
  ASSERT_TRUE(subject.has_value());
  EXPECT_EQ(subject->common_name, "localhost");
  EXPECT_EQ(subject->organizational_unit, "");
}

TEST(CertificateSubjectFromPemTest, NoCertificateGivesNone) {
  EXPECT_FALSE(rpc::CertificateSubjectFromPem("").has_value());
  EXPECT_FALSE(rpc::CertificateSubjectFromPem("-----BEGIN CERTIFICATE-----\nAAAA\n").has_value());
  EXPECT_FALSE(rpc::CertificateSubjectFromPem("not pem at all").has_value());
}

}  // namespace
}  // namespace steritrack
