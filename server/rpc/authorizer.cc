#include "server/rpc/authorizer.h"

#include <utility>

#include "server/rpc/access_policy.h"
#include "server/rpc/peer_identity.h"
#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack::rpc {
namespace {

constexpr std::string_view kAuthorization = "authorization";
constexpr std::string_view kBearer = "Bearer ";
// At most one log line per interval about refused unauthenticated calls, with the count since.
constexpr absl::Duration kUnauthenticatedLogInterval = absl::Seconds(10);

}  // namespace

Authorizer::Authorizer(AccessService* access, std::shared_ptr<spdlog::logger> log)
    : access_(access), log_(std::move(log)) {}

absl::StatusOr<Identity> Authorizer::Authenticate(const grpc::ServerContext& ctx) {
  absl::StatusOr<Identity> who = [&]() -> absl::StatusOr<Identity> {
    const auto& headers = ctx.client_metadata();
    auto it = headers.find(std::string(kAuthorization));
    if (it != headers.end()) {
      std::string_view value(it->second.data(), it->second.size());
      if (value.substr(0, kBearer.size()) != kBearer) {
        return MakeError(absl::StatusCode::kUnauthenticated,
                         "the authorization metadata must be 'Bearer <token>'",
                         "CREDENTIALS_INVALID");
      }
      return access_->AuthenticateToken(value.substr(kBearer.size()));
    }
    // A client certificate counts only when gRPC verified it against the clinic CA (mutual TLS,
    // steritrackd --client-ca): then the peer is authenticated.
    std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
    if (auth != nullptr && auth->IsPeerAuthenticated()) {
      if (std::optional<CertificateSubject> subject = PeerCertificateSubject(*auth)) {
        return AccessService::IdentityFromCertificate(subject->common_name,
                                                      subject->organizational_unit);
      }
      return MakeError(absl::StatusCode::kUnauthenticated,
                       "the client certificate's subject cannot be read", "CREDENTIALS_INVALID");
    }
    return MakeError(absl::StatusCode::kUnauthenticated,
                     "no credentials: send 'authorization: Bearer <token>' or connect with a "
                     "client certificate of the clinic CA",
                     "CREDENTIALS_MISSING");
  }();
  if (!who.ok() && who.status().code() == absl::StatusCode::kUnauthenticated) {
    CountUnauthenticated(who.status());
  }
  return who;
}

absl::StatusOr<Identity> Authorizer::Authorize(const grpc::ServerContext& ctx,
                                               std::string_view method) {
  ASSIGN_OR_RETURN(Identity who, Authenticate(ctx));
  const bool reflection = method.substr(0, kReflectionPrefix.size()) == kReflectionPrefix;
  if (reflection || MayCall(who.role, method)) return who;
  if (absl::Status recorded = access_->RecordAccessDenied(who, method); !recorded.ok()) {
    // The refusal stands; only its record is missing, which the log says loudly.
    log_->error("{} ({}) refused {}, but its ACCESS_DENIED audit entry failed: {}", who.name,
                RoleName(who.role), method, recorded.ToString());
  }
  return MakeError(absl::StatusCode::kPermissionDenied,
                   StrCat("role ", RoleName(who.role), " may not call ", method),
                   "ROLE_NOT_ALLOWED",
                   {{"role", std::string(RoleName(who.role))},
                    {"method", std::string(method)},
                    {"name", who.name}});
}

void Authorizer::CountUnauthenticated(const absl::Status& refusal) {
  const int64_t total = unauthenticated_.fetch_add(1) + 1;
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&log_mu_);
  if (now - last_logged_ < kUnauthenticatedLogInterval) return;
  std::optional<ErrorInfo> info = GetErrorInfo(refusal);
  log_->warn("refused unauthenticated calls: {} since the last report, {} since start (latest: {})",
             total - logged_count_, total, info ? info->reason : std::string("UNAUTHENTICATED"));
  last_logged_ = now;
  logged_count_ = total;
}

}  // namespace steritrack::rpc
