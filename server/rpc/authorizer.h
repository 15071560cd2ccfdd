// Authorizer: who is calling, and may they (issue 9). Every steritrack.v1 handler asks it first
// (through Handle, server/rpc/handle.h), and so does server reflection.
//
// The identity comes from a client certificate of the clinic CA when the connection has one
// (CN = name, OU = role), else from metadata `authorization: Bearer <token>`. When both are
// present the token names the caller: a shared terminal's certificate, a person's token. The
// x-steritrack-actor header of earlier versions is ignored.
//
// Sites (steritrack/site.h): a call may name the site it acts on in metadata `x-steritrack-site`.
// A token is good for the site that holds it, a chain-wide token (held by the default site) for
// every site; a certificate whose subject OU is `role@site` for that site (a plain role: the
// default site). Without the metadata the caller acts on their credential's own site (a chain-wide
// caller on the default site); a token of another site than the default is then found by looking
// at each site. The identity's `site` is where the call acts: Handle opens a SiteScope for it.
//
// Refusals: UNAUTHENTICATED with CREDENTIALS_MISSING / _INVALID / _EXPIRED / _REVOKED, counted and
// logged at most once per interval (never stored per call); INVALID_ARGUMENT INVALID_FIELD for a
// malformed site; NOT_FOUND SITE_NOT_FOUND; PERMISSION_DENIED SITE_NOT_ALLOWED (a credential of
// another site), an ACCESS_DENIED audit entry of the credential's own site; PERMISSION_DENIED
// ROLE_NOT_ALLOWED (metadata role, method), an ACCESS_DENIED audit entry of the site the call acts
// on. Thread-safe.
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
#include "steritrack/site.h"

namespace steritrack::rpc {

class Authorizer {
 public:
  static constexpr std::string_view kSiteMetadata = "x-steritrack-site";

  // REQUIRES: `access`, `sites` and `log` outlive this.
  Authorizer(AccessService* access, SiteDirectory* sites, std::shared_ptr<spdlog::logger> log);

  // The caller's identity, authenticated, without checking the method.
  absl::StatusOr<Identity> Authenticate(const grpc::ServerContextBase& ctx);
  // The caller of `method` ("/steritrack.v1.InventoryService/GetLot"), when their role may call
  // it (server/rpc/access_policy.h).
  absl::StatusOr<Identity> Authorize(const grpc::ServerContextBase& ctx, std::string_view method);

  // The sites of the database, for the handlers that answer for every site.
  SiteDirectory& sites() { return *sites_; }

  // Refused unauthenticated calls since start.
  int64_t unauthenticated_count() const { return unauthenticated_.load(); }

 private:
  void CountUnauthenticated(const absl::Status& refusal);
  // A SITE_NOT_ALLOWED refusal of `method`: an ACCESS_DENIED entry in the credential's own site.
  void RecordSiteRefusal(const absl::Status& refusal, std::string_view method);
  // The identity of a bearer token, for the site the call named (if any).
  absl::StatusOr<Identity> AuthenticateToken(std::string_view secret,
                                             const std::optional<std::string>& named);

  AccessService* access_;
  SiteDirectory* sites_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<int64_t> unauthenticated_{0};
  absl::Mutex log_mu_;
  absl::Time last_logged_ ABSL_GUARDED_BY(log_mu_) = absl::InfinitePast();
  int64_t logged_count_ ABSL_GUARDED_BY(log_mu_) = 0;
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_AUTHORIZER_H_
