// API tokens in PostgreSQL (steritrack::AccessWrites); a port of sqlite_access.cc. Only the
// SHA-256 of a secret is stored; the schema keeps every row (revocation is the only change, and it
// is final).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/storage/pg_repositories.h"
#include "server/storage/pg_rows.h"

namespace steritrack::pg {
namespace {

#define PG_TOKEN_COLUMNS                                                                        \
  "id, name, role, secret_sha256, created_at, created_by, expires_at, revoked_at, revoked_by, " \
  "chain_wide"

absl::StatusOr<ApiToken> ReadToken(const pqxx::row& r) {
  std::optional<Role> role = ParseRole(Text(r, 2));
  if (!role.has_value()) {
    return absl::DataLossError("token " + Text(r, 1) + " has an unknown role '" + Text(r, 2) + "'");
  }
  ApiToken t{.id = Int(r, 0),
             .name = Text(r, 1),
             .role = *role,
             .secret_sha256 = Text(r, 3),
             .created_at = FromMicros(Int(r, 4)),
             .created_by = Text(r, 5),
             .expires_at = std::nullopt,
             .revoked_at = std::nullopt,
             .revoked_by = Text(r, 8),
             .chain_wide = Int(r, 9) != 0};
  if (!IsNull(r, 6)) t.expires_at = FromMicros(Int(r, 6));
  if (!IsNull(r, 7)) t.revoked_at = FromMicros(Int(r, 7));
  return t;
}

class PgAccess final : public AccessWrites {
 public:
  explicit PgAccess(Tx* tx) : tx_(tx) {}

  absl::StatusOr<std::optional<ApiToken>> FindTokenBySecretSha256(
      std::string_view secret_sha256) override {
    static constexpr const char* kSql =
        "SELECT " PG_TOKEN_COLUMNS " FROM api_tokens WHERE secret_sha256 = $1";
    return tx_->Run("FindTokenBySecretSha256",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<ApiToken>> {
                      return First<ApiToken>(t.exec_params(kSql, std::string(secret_sha256)),
                                             ReadToken);
                    });
  }

  absl::StatusOr<std::optional<ApiToken>> FindActiveToken(std::string_view name) override {
    static constexpr const char* kSql =
        "SELECT " PG_TOKEN_COLUMNS " FROM api_tokens WHERE name = $1 AND revoked_at IS NULL";
    return tx_->Run("FindActiveToken",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::optional<ApiToken>> {
                      return First<ApiToken>(t.exec_params(kSql, std::string(name)), ReadToken);
                    });
  }

  absl::StatusOr<std::vector<ApiToken>> ListTokens() override {
    static constexpr const char* kSql = "SELECT " PG_TOKEN_COLUMNS " FROM api_tokens ORDER BY id";
    return tx_->Run("ListTokens",
                    [&](pqxx::transaction_base& t) -> absl::StatusOr<std::vector<ApiToken>> {
                      return Collect<ApiToken>(t.exec_params(kSql), ReadToken);
                    });
  }

  absl::StatusOr<int64_t> InsertToken(const ApiToken& tk) override {
    static constexpr const char* kSql =
        "INSERT INTO api_tokens (name, role, secret_sha256, created_at, created_by, expires_at, "
        "chain_wide) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
    return tx_->Run("InsertToken", [&](pqxx::transaction_base& t) -> absl::StatusOr<int64_t> {
      const std::optional<int64_t> expires_at =
          tk.expires_at ? std::optional<int64_t>(Micros(*tk.expires_at)) : std::nullopt;
      const pqxx::result rows = t.exec_params(
          kSql, tk.name, std::string(RoleName(tk.role)), tk.secret_sha256, Micros(tk.created_at),
          tk.created_by, expires_at, static_cast<int>(tk.chain_wide ? 1 : 0));
      return Int(rows.at(0), 0);
    });
  }

  absl::Status RevokeToken(int64_t id, absl::Time at, std::string_view by) override {
    static constexpr const char* kFind = "SELECT revoked_at FROM api_tokens WHERE id = $1";
    static constexpr const char* kSql =
        "UPDATE api_tokens SET revoked_at = $2, revoked_by = $3 WHERE id = $1";
    return tx_->Run("RevokeToken", [&](pqxx::transaction_base& t) -> absl::Status {
      {
        const pqxx::result rows = t.exec_params(kFind, id);
        if (rows.empty()) return absl::NotFoundError("no token " + std::to_string(id));
        if (!IsNull(rows[0], 0)) {
          return absl::FailedPreconditionError("token " + std::to_string(id) + " is revoked");
        }
      }
      t.exec_params(kSql, id, Micros(at), std::string(by));
      return absl::OkStatus();
    });
  }

 private:
  Tx* tx_;
};

}  // namespace

std::unique_ptr<AccessWrites> NewAccessRepository(Tx* tx) { return std::make_unique<PgAccess>(tx); }

}  // namespace steritrack::pg
