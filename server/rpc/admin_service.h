// gRPC adapter for steritrack.v1.AdminService: tokens and WhoAmI over core's AccessService;
// backups and status over the DatabaseAdmin. Thread-safe: gRPC calls handlers from many threads.
#ifndef STERITRACK_SERVER_RPC_ADMIN_SERVICE_H_
#define STERITRACK_SERVER_RPC_ADMIN_SERVICE_H_

#include <chrono>
#include <memory>

#include "absl/time/time.h"
#include "server/core/access_service.h"
#include "server/rpc/authorizer.h"
#include "server/rpc/call_lanes.h"
#include "spdlog/logger.h"
#include "steritrack/database_admin.h"
#include "steritrack/v1/admin.grpc.pb.h"

namespace steritrack::rpc {

// Backup streams a file and stays a synchronous handler; the others run on the lanes.
using AdminServiceBase = v1::AdminService::WithCallbackMethod_CreateToken<
    v1::AdminService::WithCallbackMethod_ListTokens<
        v1::AdminService::WithCallbackMethod_RevokeToken<
            v1::AdminService::WithCallbackMethod_WhoAmI<
                v1::AdminService::WithCallbackMethod_GetStatus<v1::AdminService::Service>>>>>;

class AdminServiceImpl final : public AdminServiceBase {
 public:
  // REQUIRES: `access`, `auth` and `database` outlive this object. Without a `database` (null),
  // Backup and GetStatus answer FAILED_PRECONDITION.
  AdminServiceImpl(AccessService* access, std::shared_ptr<spdlog::logger> log, Authorizer* auth,
                   CallLanes* lanes, DatabaseAdmin* database = nullptr)
      : access_(access), log_(std::move(log)), auth_(auth), lanes_(lanes), database_(database) {}

  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* ctx,
                                        const v1::CreateTokenRequest* req,
                                        v1::CreateTokenResponse* resp) override;
  grpc::ServerUnaryReactor* ListTokens(grpc::CallbackServerContext* ctx,
                                       const v1::ListTokensRequest* req,
                                       v1::ListTokensResponse* resp) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* ctx,
                                        const v1::RevokeTokenRequest* req,
                                        v1::Token* resp) override;
  grpc::ServerUnaryReactor* WhoAmI(grpc::CallbackServerContext* ctx, const v1::WhoAmIRequest* req,
                                   v1::WhoAmIResponse* resp) override;
  grpc::Status Backup(grpc::ServerContext* ctx, const v1::BackupRequest* req,
                      grpc::ServerWriter<v1::BackupResponse>* writer) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* ctx,
                                      const v1::GetStatusRequest* req,
                                      v1::GetStatusResponse* resp) override;

 private:
  AccessService* const access_;
  const std::shared_ptr<spdlog::logger> log_;
  Authorizer* const auth_;
  CallLanes* const lanes_;  // where the handlers but Backup's run (call_lanes.h)
  DatabaseAdmin* const database_;
  // When this server started: for the status's start time and uptime.
  const absl::Time start_time_ = absl::Now();
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_ADMIN_SERVICE_H_
