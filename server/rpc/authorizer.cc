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

Authorizer::Authorizer(AccessService* access, SiteDirectory* sites,
                       std::shared_ptr<spdlog::logger> log)
    : access_(access), sites_(sites), log_(std::move(log)) {}

namespace {

bool HasReason(const absl::Status& status, std::string_view reason) {
  std::optional<ErrorInfo> info = GetErrorInfo(status);
  return info.has_value() && info->reason == reason;
}

absl::Status SiteNotAllowed(const Identity& who, std::string_view site) {
  return MakeError(absl::StatusCode::kPermissionDenied,
                   StrCat(who.name, "'s credential is for site ", who.site, ", not ", site),
                   "SITE_NOT_ALLOWED",
                   {{"name", who.name},
                    {"role", std::string(RoleName(who.role))},
                    {"credential_site", who.site},
                    {"site", std::string(site)}});
}

}  // namespace

absl::StatusOr<Identity> Authorizer::AuthenticateToken(std::string_view secret,
                                                       const std::optional<std::string>& named) {
  const std::string home = named.value_or(std::string(kDefaultSite));
  auto in_site = [&](const std::string& site) {
    SiteScope scope(site);
    absl::StatusOr<Identity> found = access_->AuthenticateToken(secret);
    // Only the default site holds chain-wide tokens: a row that says so elsewhere (one moved in
    // from a clinic's own database) is good for its site alone.
    if (found.ok() && site != kDefaultSite) found->chain_wide = false;
    return found;
  };
  absl::StatusOr<Identity> who = in_site(home);
  if (who.ok() || !HasReason(who.status(), "CREDENTIALS_INVALID")) return who;
  if (home != kDefaultSite) {
    // A chain-wide token is held by the default site.
    absl::StatusOr<Identity> chain = in_site(std::string(kDefaultSite));
    if (chain.ok() && chain->chain_wide) {
      chain->site = home;
      return chain;
    }
    if (chain.ok()) return SiteNotAllowed(*chain, home);
    if (!HasReason(chain.status(), "CREDENTIALS_INVALID")) return chain;
  }
  // A token of another site: good there when the call named no site, else refused as such.
  // Each site is asked once, only for a token not found where it was looked for first.
  ASSIGN_OR_RETURN(std::vector<std::string> all, sites_->ListSites());
  for (const std::string& site : all) {
    if (site == home || site == kDefaultSite) continue;
    absl::StatusOr<Identity> there = in_site(site);
    if (there.ok()) return named.has_value() ? SiteNotAllowed(*there, home) : there;
    if (!HasReason(there.status(), "CREDENTIALS_INVALID")) return there;
  }
  return who;
}

absl::StatusOr<Identity> Authorizer::Authenticate(const grpc::ServerContextBase& ctx) {
  absl::StatusOr<Identity> who = [&]() -> absl::StatusOr<Identity> {
    const auto& headers = ctx.client_metadata();
    std::optional<std::string> named;
    if (auto site = headers.find(std::string(kSiteMetadata)); site != headers.end()) {
      named = std::string(site->second.data(), site->second.size());
      RETURN_IF_ERROR(CheckSiteId(kSiteMetadata, *named));
      ASSIGN_OR_RETURN(bool exists, sites_->HasSite(*named));
      if (!exists) {
        return SiteNotFound(*named, StrCat("this server's database holds no site '", *named, "'"));
      }
    }
    absl::StatusOr<Identity> found = [&]() -> absl::StatusOr<Identity> {
      auto it = headers.find(std::string(kAuthorization));
      if (it != headers.end()) {
        std::string_view value(it->second.data(), it->second.size());
        if (value.substr(0, kBearer.size()) != kBearer) {
          return MakeError(absl::StatusCode::kUnauthenticated,
                           "the authorization metadata must be 'Bearer <token>'",
                           "CREDENTIALS_INVALID");
        }
        return AuthenticateToken(value.substr(kBearer.size()), named);
      }
      // A client certificate counts only when gRPC verified it against the clinic CA (mutual
      // TLS, steritrackd --client-ca): then the peer is authenticated.
      std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
      if (auth != nullptr && auth->IsPeerAuthenticated()) {
        if (std::optional<CertificateSubject> subject = PeerCertificateSubject(*auth)) {
          // OU is the role, or role@site for a site of a chain (the default site without).
          std::string_view role = subject->organizational_unit;
          std::string site(kDefaultSite);
          if (const size_t at = role.find('@'); at != std::string_view::npos) {
            site = std::string(role.substr(at + 1));
            role = role.substr(0, at);
            if (!CheckSiteId("site", site).ok()) {
              return MakeError(absl::StatusCode::kUnauthenticated,
                               StrCat("the client certificate's OU '", subject->organizational_unit,
                                      "' names no valid site after '@' (a-z, 0-9, _)"),
                               "CREDENTIALS_INVALID");
            }
          }
          ASSIGN_OR_RETURN(Identity id,
                           AccessService::IdentityFromCertificate(subject->common_name, role));
          id.site = site;
          if (named.has_value() && *named != id.site) return SiteNotAllowed(id, *named);
          ASSIGN_OR_RETURN(bool exists, sites_->HasSite(id.site));
          if (!exists) {
            return SiteNotFound(id.site, StrCat("the client certificate is for site ", id.site,
                                                ", which this server's database does not hold"));
          }
          return id;
        }
        return MakeError(absl::StatusCode::kUnauthenticated,
                         "the client certificate's subject cannot be read", "CREDENTIALS_INVALID");
      }
      return MakeError(absl::StatusCode::kUnauthenticated,
                       "no credentials: send 'authorization: Bearer <token>' or connect with a "
                       "client certificate of the clinic CA",
                       "CREDENTIALS_MISSING");
    }();
    if (found.ok()) found->site_named = named.has_value();
    return found;
  }();
  if (!who.ok() && who.status().code() == absl::StatusCode::kUnauthenticated) {
    CountUnauthenticated(who.status());
  }
  return who;
}

absl::StatusOr<Identity> Authorizer::Authorize(const grpc::ServerContextBase& ctx,
                                               std::string_view method) {
  absl::StatusOr<Identity> authenticated = Authenticate(ctx);
  if (!authenticated.ok()) {
    RecordSiteRefusal(authenticated.status(), method);
    return authenticated.status();
  }
  Identity who = *std::move(authenticated);
  const bool reflection = method.substr(0, kReflectionPrefix.size()) == kReflectionPrefix;
  if (reflection || MayCall(who.role, method)) return who;
  absl::Status recorded = [&] {
    SiteScope scope(who.site);
    return access_->RecordAccessDenied(who, method);
  }();
  if (!recorded.ok()) {
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

void Authorizer::RecordSiteRefusal(const absl::Status& refusal, std::string_view method) {
  std::optional<ErrorInfo> info = GetErrorInfo(refusal);
  if (!info.has_value() || info->reason != "SITE_NOT_ALLOWED") return;
  const std::optional<Role> role = ParseRole(info->metadata["role"]);
  if (!role.has_value()) return;
  const Identity who{
      .name = info->metadata["name"], .role = *role, .site = info->metadata["credential_site"]};
  SiteScope scope(who.site);
  if (absl::Status recorded = access_->RecordSiteRefused(who, method, info->metadata["site"]);
      !recorded.ok()) {
    log_->error("{} refused {} at site {}, but its ACCESS_DENIED audit entry failed: {}", who.name,
                method, info->metadata["site"], recorded.ToString());
  }
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
