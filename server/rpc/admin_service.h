// gRPC adapter for steritrack.v1.AdminService: tokens and WhoAmI over core's AccessService.
// Thread-safe: gRPC calls handlers from many threads.
#ifndef STERITRACK_SERVER_RPC_ADMIN_SERVICE_H_
#define STERITRACK_SERVER_RPC_ADMIN_SERVICE_H_

#include <memory>

#include "server/core/access_service.h"
#include "server/rpc/authorizer.h"
#include "spdlog/logger.h"
#include "steritrack/v1/admin.grpc.pb.h"

namespace steritrack::rpc {

class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  // REQUIRES: `access` and `auth` outlive this object.
  AdminServiceImpl(AccessService* access, std::shared_ptr<spdlog::logger> log, Authorizer* auth)
      : access_(access), log_(std::move(log)), auth_(auth) {}

  grpc::Status CreateToken(grpc::ServerContext* ctx, const v1::CreateTokenRequest* req,
                           v1::CreateTokenResponse* resp) override;
  grpc::Status ListTokens(grpc::ServerContext* ctx, const v1::ListTokensRequest* req,
                          v1::ListTokensResponse* resp) override;
  grpc::Status RevokeToken(grpc::ServerContext* ctx, const v1::RevokeTokenRequest* req,
                           v1::Token* resp) override;
  grpc::Status WhoAmI(grpc::ServerContext* ctx, const v1::WhoAmIRequest* req,
                      v1::WhoAmIResponse* resp) override;

 private:
  AccessService* const access_;
  const std::shared_ptr<spdlog::logger> log_;
  Authorizer* const auth_;
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_ADMIN_SERVICE_H_
