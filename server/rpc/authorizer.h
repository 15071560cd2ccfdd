// Authorizer: who is calling, and may they (issue 9). Every steritrack.v1 handler asks it first
// (through Handle, server/rpc/handle.h), and so does server reflection.
//
// The identity comes from a client certificate of the clinic CA when the connection has one
// (CN = name, OU = role), else from metadata `authorization: Bearer <token>`. When both are
// present the token names the caller: a shared terminal's certificate, a person's token. The
// x-steritrack-actor header of earlier versions is ignored.
//
// Refusals: UNAUTHENTICATED with CREDENTIALS_MISSING / _INVALID / _EXPIRED / _REVOKED, counted and
// logged at most once per interval (never stored per call); PERMISSION_DENIED ROLE_NOT_ALLOWED
// (metadata role, method), each one an ACCESS_DENIED audit entry. Thread-safe.
#ifndef STERITRACK_SERVER_RPC_AUTHORIZER_H_
#define STERITRACK_SERVER_RPC_AUTHORIZER_H_

#include <grpcpp/server_context.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/access_service.h"
#include "spdlog/logger.h"

namespace steritrack::rpc {

class Authorizer {
 public:
  // REQUIRES: `access` and `log` outlive this.
  Authorizer(AccessService* access, std::shared_ptr<spdlog::logger> log);

  // The caller's identity, authenticated, without checking the method.
  absl::StatusOr<Identity> Authenticate(const grpc::ServerContext& ctx);
  // The caller of `method` ("/steritrack.v1.InventoryService/GetLot"), when their role may call
  // it (server/rpc/access_policy.h).
  absl::StatusOr<Identity> Authorize(const grpc::ServerContext& ctx, std::string_view method);

  // Refused unauthenticated calls since start.
  int64_t unauthenticated_count() const { return unauthenticated_.load(); }

 private:
  void CountUnauthenticated(const absl::Status& refusal);

  AccessService* access_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<int64_t> unauthenticated_{0};
  absl::Mutex log_mu_;
  absl::Time last_logged_ ABSL_GUARDED_BY(log_mu_) = absl::InfinitePast();
  int64_t logged_count_ ABSL_GUARDED_BY(log_mu_) = 0;
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_AUTHORIZER_H_
