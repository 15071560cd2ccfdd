#include "server/rpc/server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <string>
#include <utility>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "server/rpc/admin_service.h"
#include "server/rpc/audit_service.h"
#include "server/rpc/background_lane.h"
#include "server/rpc/call_lanes.h"
#include "server/rpc/convert.h"
#include "server/rpc/export_service.h"
#include "server/rpc/metrics.h"
#include "server/rpc/metrics_interceptor.h"
#include "server/rpc/parse_errors.h"
#include "server/rpc/reflection_service.h"
#include "server/rpc/report_service.h"
#include "server/rpc/services.h"
#include "server/rpc/sterilization_service.h"
#include "steritrack/listen_address.h"
#include "steritrack/strings.h"

namespace steritrack::rpc {
namespace {

// Two reports or verifications at once; more wait their turn. Nice +10: a CPU-bound report gets
// about a tenth of a core that the safety path wants (CFS weights 110 against 1024).
constexpr int kBackgroundThreads = 2;
constexpr int kBackgroundNice = 10;

std::shared_ptr<grpc::ServerCredentials> Credentials(const std::optional<ServerTls>& tls) {
  if (!tls.has_value()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(
      tls->client_ca_pem.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                 : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = tls->client_ca_pem;
  ssl.pem_key_cert_pairs.push_back(
      {.private_key = tls->private_key_pem, .cert_chain = tls->cert_chain_pem});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

// Reflection needs a valid credential of any role, unless a test hands in its own hook.
static CallAuthorizer ReflectionAuthorizer(const RpcServerOptions& options, Authorizer* auth) {
  if (options.authorize_reflection) return options.authorize_reflection;
  return [auth](grpc::ServerContext& ctx) {
    absl::StatusOr<Identity> who = auth->Authenticate(ctx);
    return who.ok() ? grpc::Status::OK : ToGrpcStatus(who.status());
  };
}

// The writer queue's depth, as the write lane counts it.
static std::function<void(int)> WriteQueueMetric(Metrics* metrics) {
  if (metrics == nullptr) return nullptr;
  return [metrics](int delta) { metrics->WriterQueueChanged(delta); };
}

absl::StatusOr<std::unique_ptr<RpcServer>> RpcServer::Start(const RpcServerOptions& options) {
  if (options.core == nullptr || options.log == nullptr || options.access == nullptr) {
    return absl::InvalidArgumentError("RpcServer needs a core service, access and a logger");
  }
  if (!options.tls.has_value() && !IsLocalOnlyAddress(options.listen)) {
    return absl::FailedPreconditionError(
        StrCat("refusing to serve ", options.listen,
               " without TLS: clinical records would cross the network in clear"));
  }
  std::unique_ptr<RpcServer> server(new RpcServer());
  server->auth_ = std::make_unique<Authorizer>(
      options.access, options.sites != nullptr ? options.sites : &server->single_site_,
      options.log);
  Authorizer* auth = server->auth_.get();
  // Reports and verifications yield the cores to the safety path (background_lane.h).
  server->background_ =
      std::make_unique<BackgroundLane>(kBackgroundThreads, kBackgroundNice, options.log);
  // Unary calls leave gRPC's threads at once (call_lanes.h).
  server->lanes_ = std::make_unique<CallLanes>(
      CallLaneOptions{.write_threads = options.write_threads,
                      .read_threads = options.read_threads,
                      .write_nice = options.write_lane_nice,
                      .admit_write = options.admit_write,
                      .admit_read = options.admit_read,
                      .commits = options.commits,
                      .write_queue_changed = WriteQueueMetric(options.metrics),
                      .log = options.log});
  CallLanes* lanes = server->lanes_.get();
  server->admin_ = std::make_unique<AdminServiceImpl>(options.access, options.log, auth, lanes,
                                                      options.database);
  server->inventory_ =
      std::make_unique<InventoryServiceImpl>(options.core, options.log, auth, lanes);
  server->treatments_ =
      std::make_unique<TreatmentServiceImpl>(options.core, options.log, auth, lanes);
  if (options.sterilization != nullptr) {
    server->sterilization_ = std::make_unique<SterilizationServiceImpl>(
        options.sterilization, options.clinic_time_zone, options.log, auth, lanes);
  }

  if (options.reports != nullptr) {
    server->reports_ = std::make_unique<ReportServiceImpl>(options.reports, options.log, auth,
                                                           server->background_.get(), lanes);
  }
  if (options.exports != nullptr) {
    server->exports_ = std::make_unique<ExportServiceImpl>(options.exports, options.log, auth);
  }

  if (options.audit != nullptr) {
    server->audit_ = std::make_unique<AuditServiceImpl>(options.audit, options.log, auth,
                                                        server->background_.get(), lanes);
    if (options.commits != nullptr) {
      server->events_ = std::make_unique<EventServiceImpl>(
          options.audit, options.commits, options.log, auth, options.limits.max_event_streams);
    }
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, Credentials(options.tls), &server->port_);
  const ServerLimits& limits = options.limits;
  builder.SetMaxReceiveMessageSize(limits.max_receive_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams);
  grpc::ResourceQuota quota("steritrackd");
  quota.SetMaxThreads(limits.max_threads);
  quota.Resize(static_cast<size_t>(limits.max_memory_bytes));
  builder.SetResourceQuota(quota);
  auto millis = [](absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); };
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             millis(limits.keepalive_min_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, millis(limits.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, millis(limits.keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             millis(limits.handshake_timeout));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, millis(limits.max_connection_idle));
  // gRPC sets SO_REUSEPORT by default: a second server on the same port would then start and the
  // kernel would split the clinic's connections between the two (each with its own idea of which
  // cartridges are used). Without it, a taken address fails the start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // What reflection lists is what is registered here, by the generated full names.
  std::vector<std::string> offered;
  auto offer = [&builder, &offered](grpc::Service* service, const char* full_name) {
    if (service == nullptr) return;
    builder.RegisterService(service);
    offered.emplace_back(full_name);
  };
  offer(server->admin_.get(), v1::AdminService::service_full_name());
  offer(server->inventory_.get(), v1::InventoryService::service_full_name());
  offer(server->treatments_.get(), v1::TreatmentService::service_full_name());
  offer(server->sterilization_.get(), v1::SterilizationService::service_full_name());
  offer(server->reports_.get(), v1::ReportService::service_full_name());
  offer(server->exports_.get(), v1::ExportService::service_full_name());
  offer(server->audit_.get(), v1::AuditService::service_full_name());
  offer(server->events_.get(), v1::EventService::service_full_name());
  // BuildAndStart adds gRPC's default health service (EnableDefaultHealthCheckService above). It
  // brings no protobuf descriptors; referring to ours links them in (a static library's object is
  // linked only when used), so that reflection can describe the service it lists.
  static_cast<void>(grpc::health::v1::HealthCheckRequest::descriptor());
  offered.emplace_back(grpc::health::v1::Health::service_full_name());
  offered.emplace_back(grpc::reflection::v1alpha::ServerReflection::service_full_name());
  // Health answers for the server ("") and, by name, for each steritrack.v1 service.
  const std::vector<std::string> health_names(offered.begin(), offered.end());
  server->reflection_ =
      std::make_unique<ReflectionService>(std::move(offered), ReflectionAuthorizer(options, auth));
  builder.RegisterService(server->reflection_.get());
  // Parse failures first: the interceptors after it see the status it answers instead.
  RouteProtobufLog(options.log);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(NewParseErrorInterceptorFactory(options.log));
  if (options.metrics != nullptr) creators.push_back(NewMetricsInterceptorFactory(options.metrics));
  builder.experimental().SetInterceptorCreators(std::move(creators));
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        StrCat("cannot listen on ", options.listen, " (address in use or not valid HOST:PORT)"));
  }
  if (grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService()) {
    for (const std::string& name : health_names) health->SetServingStatus(name, true);
  }
  return server;
}

RpcServer::~RpcServer() {
  if (events_) events_->Stop();
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

std::shared_ptr<grpc::Channel> RpcServer::InProcessChannel() {
  return server_->InProcessChannel(grpc::ChannelArguments());
}

void RpcServer::SetServing(bool serving) {
  if (!server_) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);  // "" (the server) and every service registered
}

void RpcServer::Shutdown(absl::Duration grace) {
  if (!server_) return;
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  // Open event streams never finish on their own: end them first so the grace is for real requests.
  if (events_) events_->Stop();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  server_.reset();
}

}  // namespace steritrack::rpc
