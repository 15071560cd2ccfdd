// RpcServer: the gRPC server with steritrack.v1 services, health checking and reflection.
//
// Start() binds and serves on gRPC's own threads; Shutdown() stops accepting, lets in-flight
// requests finish within a grace period, and returns. Used by steritrackd's main and by RPC tests
// (port 0).
#ifndef STERITRACK_SERVER_RPC_SERVER_H_
#define STERITRACK_SERVER_RPC_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/access_service.h"
#include "server/core/audit_service.h"
#include "server/core/cartridge_service.h"
#include "server/core/commit_notifier.h"
#include "server/core/export_service.h"
#include "server/core/report_service.h"
#include "server/core/sterilization_service.h"
#include "server/rpc/authorize.h"
#include "server/rpc/authorizer.h"
#include "server/rpc/server_tls.h"
#include "spdlog/logger.h"
#include "steritrack/database_admin.h"
#include "steritrack/site.h"

namespace grpc {
class Channel;
class Server;
}  // namespace grpc

namespace steritrack::rpc {

class InventoryServiceImpl;
class TreatmentServiceImpl;
class SterilizationServiceImpl;
class ReportServiceImpl;
class ExportServiceImpl;
class AuditServiceImpl;
class EventServiceImpl;
class AdminServiceImpl;
class ReflectionService;
class Metrics;
class BackgroundLane;
class CallLanes;

// What the transport admits, so that a flood or a misbehaving client is refused early and cheaply
// instead of exhausting the machine. Calls beyond `max_threads` are answered RESOURCE_EXHAUSTED by
// gRPC itself; the database's own queue is BoundedStore (server/storage/bounded_store.h).
struct ServerLimits {
  int max_receive_message_bytes = 4 * 1024 * 1024;  // a larger request: RESOURCE_EXHAUSTED
  int max_concurrent_streams = 100;                 // calls at once on one connection
  int max_threads = 256;                            // calls served at once, in total
  int max_event_streams = 32;  // WatchEvents streams at once; one more: RESOURCE_EXHAUSTED
  int64_t max_memory_bytes = int64_t{512} * 1024 * 1024;  // gRPC's resource quota
  // Keepalive enforcement: a client that pings more often than this (without data) is sent
  // GOAWAY; the server pings an idle connection after `keepalive_time` and drops it when the ping
  // is not answered within `keepalive_timeout`.
  absl::Duration keepalive_min_ping_interval = absl::Seconds(10);
  absl::Duration keepalive_time = absl::Hours(2);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // A connection that has not finished its handshake (TLS, then the client's HTTP/2 settings)
  // within this is closed: silent or garbage connections cannot pile up and use every descriptor.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // A connection without a call for this long is closed (GOAWAY); a client reconnects by itself.
  absl::Duration max_connection_idle = absl::Minutes(10);
};

// The write lane, the database's one writer, runs ahead of the threads that feed it and send its
// answers: at 64 opens in flight on two cores it otherwise waited for a core about half as long
// as it ran, and every write of its batch waited with it (tests/bench/RESULTS.md, "The write lane
// ahead of the threads that feed it"). Nice -10 weighs 9,548 against 1,024 at 0. Lowering a nice
// value needs CAP_SYS_NICE or an RLIMIT_NICE that allows it (LimitNICE=-10 in deploy/'s units);
// without either the lane runs at the server's priority.
inline constexpr int kWriteLaneNice = -10;

struct RpcServerOptions {
  // HOST:PORT ([IPV6]:PORT, unix:PATH); port 0 picks a free port. Without `tls` only an address
  // that no other machine can reach (IsLocalOnlyAddress) is accepted.
  std::string listen = "127.0.0.1:50051";
  // TLS, and with a client CA mutual TLS; nullopt: plaintext, loopback or unix socket only.
  std::optional<ServerTls> tls;
  CartridgeService* core = nullptr;  // REQUIRES: non-null, outlives the server
  // Reusable equipment and sterilisation; when null (tests of the cartridge path only) the
  // SterilizationService is not offered. REQUIRES: outlives the server.
  SterilizationService* sterilization = nullptr;
  // The clinic's time zone, the one the core services use: lot-control numbers and pack labels
  // carry the load's date in it.
  absl::TimeZone clinic_time_zone = absl::UTCTimeZone();
  // Compliance report, recall look-back and stock; when null the ReportService is not offered.
  // REQUIRES: outlives the server.
  ReportService* reports = nullptr;
  // FHIR and EPCIS exports; when null the ExportService is not offered. REQUIRES: outlives the
  // server.
  ExportService* exports = nullptr;
  std::shared_ptr<spdlog::logger> log;  // REQUIRES: non-null
  // The audit trail and the integrator event stream; when `audit` is null neither AuditService
  // nor EventService is offered, and EventService also needs `commits` (the notifier the core
  // services signal after each commit). REQUIRES: both outlive the server.
  AuditService* audit = nullptr;
  CommitNotifier* commits = nullptr;
  // Identity and access: every call but health is authenticated against it and checked against
  // the role matrix (server/rpc/access_policy.h). REQUIRES: non-null, outlives the server.
  AccessService* access = nullptr;
  // The sites of the database (steritrack/site.h); null: one, the default (SQLite).
  // REQUIRES: outlives the server.
  SiteDirectory* sites = nullptr;
  // Backups and status (AdminService.Backup, GetStatus); when null they answer
  // FAILED_PRECONDITION. REQUIRES: outlives the server.
  DatabaseAdmin* database = nullptr;
  // Who may use server reflection, asked once per reflection stream. Empty (the default): any
  // caller with a valid credential of any role, as the Authorizer decides; tests may hand in
  // their own.
  CallAuthorizer authorize_reflection;
  ServerLimits limits;
  // Every answered call is counted here (server/rpc/metrics_interceptor.h); null: no metrics.
  // REQUIRES: outlives the server.
  Metrics* metrics = nullptr;
  // Where unary calls run (call_lanes.h): the write lane's threads (1 for SQLite, whose one
  // writer the lane drives; more for PostgreSQL), the read lane's, and the database's bounded
  // queue, whose place a call takes when it is queued (BoundedStore::AdmitWrite, AdmitRead; null:
  // unbounded, for tests).
  int write_threads = 1;
  int read_threads = 8;
  // The write lane's nice value relative to the server's (CallLaneOptions::write_nice): the
  // database's one writer runs ahead of the threads that feed it where Linux lets it.
  int write_lane_nice = kWriteLaneNice;
  std::function<absl::StatusOr<std::shared_ptr<void>>()> admit_write;
  std::function<absl::StatusOr<std::shared_ptr<void>>()> admit_read;
};

class RpcServer {
 public:
  static absl::StatusOr<std::unique_ptr<RpcServer>> Start(const RpcServerOptions& options);
  ~RpcServer();

  int port() const { return port_; }
  // A channel to this server inside the process, without a socket (the handlers' fuzz target).
  std::shared_ptr<grpc::Channel> InProcessChannel();
  // What grpc.health.v1.Health answers for the server as a whole and for each steritrack.v1
  // service: SERVING, or NOT_SERVING while the database cannot be written.
  void SetServing(bool serving);
  // Stops accepting calls and waits up to `grace` for in-flight ones, then cancels the rest.
  void Shutdown(absl::Duration grace);

 private:
  RpcServer() = default;
  // First, so that it is destroyed last: the services hand it work until the server is gone.
  std::unique_ptr<BackgroundLane> background_;
  // Next: the unary handlers queue their work here until the server is gone.
  std::unique_ptr<CallLanes> lanes_;
  std::unique_ptr<InventoryServiceImpl> inventory_;
  std::unique_ptr<TreatmentServiceImpl> treatments_;
  std::unique_ptr<SterilizationServiceImpl> sterilization_;
  std::unique_ptr<ReportServiceImpl> reports_;
  std::unique_ptr<ExportServiceImpl> exports_;
  std::unique_ptr<AuditServiceImpl> audit_;
  std::unique_ptr<EventServiceImpl> events_;
  SingleSiteDirectory single_site_;  // RpcServerOptions::sites when it is null
  std::unique_ptr<Authorizer> auth_;
  std::unique_ptr<AdminServiceImpl> admin_;
  std::unique_ptr<ReflectionService> reflection_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_SERVER_H_
