// AccessService: who is calling (issue 9). API tokens are created, checked, listed and revoked
// here; a client certificate's subject becomes an identity here too, so the rpc layer only carries
// credentials in and the identity out.
//
// Refusals, all with an ErrorInfo reason: UNAUTHENTICATED CREDENTIALS_MISSING (nothing presented),
// CREDENTIALS_INVALID (not a token of ours, or a certificate whose OU is not a role),
// CREDENTIALS_REVOKED, CREDENTIALS_EXPIRED. Token management: INVALID_ARGUMENT for a bad name,
// role or lifetime; ALREADY_EXISTS TOKEN_NAME_EXISTS; NOT_FOUND TOKEN_NOT_FOUND.
//
// A token is "stk_" and 64 hex digits (256 random bits). Only its SHA-256 is stored, so the secret
// is shown once, when it is created, and never again. Thread-safe (as safe as the Store).
#ifndef STERITRACK_SERVER_CORE_ACCESS_SERVICE_H_
#define STERITRACK_SERVER_CORE_ACCESS_SERVICE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/cartridge_service.h"
#include "server/core/commit_notifier.h"
#include "steritrack/access.h"
#include "steritrack/clock.h"
#include "steritrack/secret.h"
#include "steritrack/sha256.h"
#include "steritrack/site.h"
#include "steritrack/store.h"

namespace steritrack {

// An authenticated caller: the audit actor is `name`.
struct Identity {
  enum class Source { kToken, kCertificate };
  std::string name;
  Role role = Role::kNurse;
  Source source = Source::kToken;
  // The site the caller acts on (steritrack/site.h); the rpc layer sets it from the credential
  // and the call's x-steritrack-site metadata.
  std::string site = std::string(kDefaultSite);
  // A chain-wide credential (ApiToken::chain_wide): good for every site.
  bool chain_wide = false;
  // Whether the call named its site (x-steritrack-site). A chain-wide caller who names none asks
  // the chain-wide questions (audit verification, look-back) of every site.
  bool site_named = false;
};

struct NewToken {
  std::string name;
  std::string role;         // a RoleName
  int expires_in_days = 0;  // 0: does not expire
  // Good for every site (ApiToken::chain_wide): only for manager, integrator and admin, and only
  // created in the default site.
  bool chain_wide = false;
};

// A created token: the secret, shown this once, and what is stored.
struct IssuedToken {
  std::string secret;
  ApiToken token;
};

class AccessService {
 public:
  static constexpr std::string_view kTokenPrefix = "stk_";
  static constexpr int kSecretBytes = 32;
  static constexpr int kMaxExpiresInDays = 3650;

  struct Options {
    Store* store = nullptr;                 // REQUIRES: non-null, outlives the service
    const Sha256* sha256 = nullptr;         // REQUIRES: non-null, outlives the service
    const SecretSource* secrets = nullptr;  // REQUIRES: non-null, outlives the service
    const Clock* clock = nullptr;           // REQUIRES: non-null, outlives the service
    CommitNotifier* commits = nullptr;      // optional
  };
  explicit AccessService(const Options& options);

  // Creates a token named `request.name` (unique among tokens not revoked) for `request.role`; its
  // creation is an audit entry by `ctx.actor` (TOKEN_CREATED, without the secret). By local
  // authority: the database's own machine (steritrackd token create) may create any token.
  absl::StatusOr<IssuedToken> CreateToken(const WriteContext& ctx, const NewToken& request);
  // The same for `issuer`, a caller over the API: only the chain's own administrators hand out
  // credentials for every site (PERMISSION_DENIED CHAIN_WIDE_NOT_ALLOWED for a site's admin).
  absl::StatusOr<IssuedToken> CreateToken(const WriteContext& ctx, const Identity& issuer,
                                          const NewToken& request);
  // The identity a bearer token stands for, now.
  absl::StatusOr<Identity> AuthenticateToken(std::string_view secret) const;
  // A client certificate from the clinic CA: identity = subject CN, role = subject OU.
  static absl::StatusOr<Identity> IdentityFromCertificate(std::string_view common_name,
                                                          std::string_view organizational_unit);
  // Every token, revoked ones too, without secrets (none are stored).
  absl::StatusOr<std::vector<ApiToken>> ListTokens() const;
  // Revokes the token named `name` from the next call on (TOKEN_REVOKED in the audit trail).
  // Revoking a name whose token is already revoked answers that token again.
  absl::StatusOr<ApiToken> RevokeToken(const WriteContext& ctx, std::string_view name);
  // Rule 9 for access: a refused call of `method` by `who` is an ACCESS_DENIED audit entry.
  absl::Status RecordAccessDenied(const Identity& who, std::string_view method);
  // Sites: a call of `method` by `who`, a credential of who.site, for another `site` is an
  // ACCESS_DENIED entry in the trail of who's own site (the calling thread's SiteScope).
  absl::Status RecordSiteRefused(const Identity& who, std::string_view method,
                                 std::string_view site);

 private:
  Store* store_;
  const Sha256* sha256_;
  const SecretSource* secrets_;
  const Clock* clock_;
  CommitNotifier* commits_;
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_CORE_ACCESS_SERVICE_H_
