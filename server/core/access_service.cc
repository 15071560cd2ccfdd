#include "server/core/access_service.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "server/core/write_helper.h"
#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

using core_internal::AuditedTransaction;
using core_internal::CheckText;
using core_internal::Rfc3339;
using core_internal::RunWrite;

constexpr std::string_view kRoleList = "nurse, sterile_processing, manager, integrator or admin";

absl::Status Unauthenticated(std::string_view reason, std::string_view message,
                             std::map<std::string, std::string> facts = {}) {
  return MakeError(absl::StatusCode::kUnauthenticated, message, reason, std::move(facts));
}

// A token name is what `admin token revoke NAME` types and what the audit trail shows as actor.
absl::Status CheckTokenName(std::string_view name) {
  RETURN_IF_ERROR(CheckText("name", name, kMaxNameLength));
  for (char ch : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' &&
        ch != '-' && ch != '@') {
      return InvalidField("name", "may hold only letters, digits and . _ - @");
    }
  }
  return absl::OkStatus();
}

bool IsWellFormedSecret(std::string_view secret) {
  if (secret.size() != AccessService::kTokenPrefix.size() + 2 * AccessService::kSecretBytes ||
      secret.substr(0, AccessService::kTokenPrefix.size()) != AccessService::kTokenPrefix) {
    return false;
  }
  for (char ch : secret.substr(AccessService::kTokenPrefix.size())) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  }
  return true;
}

std::string TokenFacts(const ApiToken& t) {
  return StrCat("name=", t.name, " role=", RoleName(t.role),
                t.expires_at ? StrCat(" expires=", Rfc3339(*t.expires_at)) : std::string(),
                t.chain_wide ? " chain_wide=true" : "");
}

}  // namespace

AccessService::AccessService(const Options& options)
    : store_(options.store),
      sha256_(options.sha256),
      secrets_(options.secrets),
      clock_(options.clock),
      commits_(options.commits) {}

absl::StatusOr<IssuedToken> AccessService::CreateToken(const WriteContext& ctx,
                                                       const Identity& issuer,
                                                       const NewToken& request) {
  if (request.chain_wide && !issuer.chain_wide) {
    return MakeError(absl::StatusCode::kPermissionDenied,
                     StrCat(issuer.name,
                            " is an administrator of one site: only a chain-wide admin creates "
                            "chain-wide tokens"),
                     "CHAIN_WIDE_NOT_ALLOWED", {{"name", issuer.name}});
  }
  return CreateToken(ctx, request);
}

absl::StatusOr<IssuedToken> AccessService::CreateToken(const WriteContext& ctx,
                                                       const NewToken& request) {
  RETURN_IF_ERROR(CheckTokenName(request.name));
  std::optional<Role> role = ParseRole(request.role);
  if (!role.has_value()) return InvalidField("role", StrCat("must be one of ", kRoleList));
  if (request.expires_in_days < 0 || request.expires_in_days > kMaxExpiresInDays) {
    return InvalidField("expires_in_days",
                        StrCat("must be 0 (never) to ", kMaxExpiresInDays, " days"));
  }
  if (request.chain_wide) {
    if (*role != Role::kManager && *role != Role::kIntegrator && *role != Role::kAdmin) {
      return InvalidField("chain_wide",
                          "only a manager's, an integrator's or an admin's token is chain-wide");
    }
    if (SiteScope::CurrentOr(kDefaultSite) != kDefaultSite) {
      return InvalidField("chain_wide", "chain-wide tokens are created in the default site");
    }
  }
  ASSIGN_OR_RETURN(std::string hex, secrets_->NewSecretHex(kSecretBytes));
  IssuedToken issued{.secret = StrCat(kTokenPrefix, hex)};
  const std::string secret_sha256 = sha256_->HexDigest({issued.secret});
  if (secret_sha256.size() != 64) return absl::InternalError("cannot hash the new token");
  return RunWrite<IssuedToken>(
      *store_, *clock_, *sha256_, commits_,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<IssuedToken> {
        ASSIGN_OR_RETURN(std::optional<ApiToken> same, tx.access().FindActiveToken(request.name));
        if (same.has_value()) {
          return MakeError(absl::StatusCode::kAlreadyExists,
                           StrCat("a token named ", request.name,
                                  " exists; revoke it first or choose another name"),
                           "TOKEN_NAME_EXISTS",
                           {{"name", request.name}, {"role", std::string(RoleName(same->role))}});
        }
        ApiToken token{.name = request.name,
                       .role = *role,
                       .secret_sha256 = secret_sha256,
                       .created_at = now,
                       .created_by = ctx.actor,
                       .chain_wide = request.chain_wide};
        if (request.expires_in_days > 0) {
          token.expires_at = now + absl::Hours(24) * request.expires_in_days;
        }
        ASSIGN_OR_RETURN(token.id, tx.access().InsertToken(token));
        RETURN_IF_ERROR(
            tx.AppendEvent(Event{.at = now,
                                 .actor = ctx.actor,
                                 .action = "TOKEN_CREATED",
                                 .detail = StrCat("token ", token.name, " created for role ",
                                                  RoleName(token.role),
                                                  token.chain_wide ? ", chain-wide" : ""),
                                 .request_id = ctx.request_id,
                                 .after = TokenFacts(token)})
                .status());
        issued.token = std::move(token);
        return std::move(issued);
      });
}

absl::StatusOr<Identity> AccessService::AuthenticateToken(std::string_view secret) const {
  if (secret.empty()) {
    return Unauthenticated("CREDENTIALS_MISSING", "no credentials: send a bearer token");
  }
  if (!IsWellFormedSecret(secret)) {
    return Unauthenticated("CREDENTIALS_INVALID", "the bearer token is not a steritrack token");
  }
  const std::string secret_sha256 = sha256_->HexDigest({secret});
  // On the write lane, beside its writes (steritrack/store.h): a token revoked by a write the
  // lane has not yet made durable is already refused, and the refusal waits for that write.
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginLaneRead());
  ASSIGN_OR_RETURN(std::optional<ApiToken> token,
                   tx->access().FindTokenBySecretSha256(secret_sha256));
  if (!token.has_value()) {
    return Unauthenticated("CREDENTIALS_INVALID", "the bearer token is not known here");
  }
  if (token->revoked_at.has_value()) {
    return Unauthenticated("CREDENTIALS_REVOKED", StrCat("token ", token->name, " was revoked"),
                           {{"name", token->name}, {"revoked", Rfc3339(*token->revoked_at)}});
  }
  if (token->expires_at.has_value() && clock_->Now() >= *token->expires_at) {
    return Unauthenticated("CREDENTIALS_EXPIRED", StrCat("token ", token->name, " expired"),
                           {{"name", token->name}, {"expired", Rfc3339(*token->expires_at)}});
  }
  return Identity{.name = token->name,
                  .role = token->role,
                  .source = Identity::Source::kToken,
                  .site = std::string(SiteScope::CurrentOr(kDefaultSite)),
                  .chain_wide = token->chain_wide};
}

absl::StatusOr<Identity> AccessService::IdentityFromCertificate(
    std::string_view common_name, std::string_view organizational_unit) {
  if (common_name.empty() || common_name.size() > kMaxNameLength ||
      !CheckText("cn", common_name, kMaxNameLength).ok()) {
    return Unauthenticated(
        "CREDENTIALS_INVALID",
        "the client certificate's subject CN must name the person or system "
        "(1 to 64 bytes of UTF-8, no control or invisible formatting characters)");
  }
  std::optional<Role> role = ParseRole(organizational_unit);
  if (!role.has_value()) {
    return Unauthenticated("CREDENTIALS_INVALID",
                           StrCat("the client certificate's subject OU '", organizational_unit,
                                  "' is not a role (", kRoleList, ")"),
                           {{"cn", std::string(common_name)}});
  }
  return Identity{
      .name = std::string(common_name), .role = *role, .source = Identity::Source::kCertificate};
}

absl::StatusOr<std::vector<ApiToken>> AccessService::ListTokens() const {
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  return tx->access().ListTokens();
}

absl::StatusOr<ApiToken> AccessService::RevokeToken(const WriteContext& ctx,
                                                    std::string_view name) {
  RETURN_IF_ERROR(CheckTokenName(name));
  return RunWrite<ApiToken>(
      *store_, *clock_, *sha256_, commits_,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<ApiToken> {
        ASSIGN_OR_RETURN(std::optional<ApiToken> token, tx.access().FindActiveToken(name));
        if (!token.has_value()) {
          // Already revoked: answer the latest revoked token of that name (revoking is idempotent).
          ASSIGN_OR_RETURN(std::vector<ApiToken> all, tx.access().ListTokens());
          for (auto it = all.rbegin(); it != all.rend(); ++it) {
            if (it->name == name) return *it;
          }
          return MakeError(absl::StatusCode::kNotFound, StrCat("no token named ", name),
                           "TOKEN_NOT_FOUND", {{"name", std::string(name)}});
        }
        RETURN_IF_ERROR(tx.access().RevokeToken(token->id, now, ctx.actor));
        const std::string before = TokenFacts(*token);
        token->revoked_at = now;
        token->revoked_by = ctx.actor;
        RETURN_IF_ERROR(tx.AppendEvent(Event{.at = now,
                                             .actor = ctx.actor,
                                             .action = "TOKEN_REVOKED",
                                             .detail = StrCat("token ", token->name, " revoked"),
                                             .request_id = ctx.request_id,
                                             .before = before,
                                             .after = StrCat(before, " revoked=", Rfc3339(now))})
                            .status());
        return *token;
      });
}

absl::Status AccessService::RecordSiteRefused(const Identity& who, std::string_view method,
                                              std::string_view site) {
  return RunWrite<bool>(
             *store_, *clock_, *sha256_, commits_,
             [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<bool> {
               RETURN_IF_ERROR(
                   tx.AppendEvent(
                         Event{.at = now,
                               .actor = who.name,
                               .action = "ACCESS_DENIED",
                               .detail = StrCat("a credential of site ", who.site,
                                                " may not act on site ", site, ": ", method)})
                       .status());
               return true;
             })
      .status();
}

absl::Status AccessService::RecordAccessDenied(const Identity& who, std::string_view method) {
  return RunWrite<bool>(
             *store_, *clock_, *sha256_, commits_,
             [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<bool> {
               RETURN_IF_ERROR(tx.AppendEvent(Event{.at = now,
                                                    .actor = who.name,
                                                    .action = "ACCESS_DENIED",
                                                    .detail = StrCat("role ", RoleName(who.role),
                                                                     " may not call ", method)})
                                   .status());
               return true;
             })
      .status();
}

}  // namespace steritrack
