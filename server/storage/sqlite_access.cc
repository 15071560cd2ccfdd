// API tokens in SQLite (steritrack::AccessWrites). Only the SHA-256 of a secret is stored; the
// schema keeps every row (revocation is the only change, and it is final).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/storage/sqlite_repositories.h"
#include "server/storage/sqlite_rows.h"

namespace steritrack::sqlite {
namespace {

#define TOKEN_COLUMNS                                                                           \
  "id, name, role, secret_sha256, created_at, created_by, expires_at, revoked_at, revoked_by, " \
  "chain_wide"

absl::StatusOr<ApiToken> ReadToken(const Statement& s) {
  std::optional<Role> role = ParseRole(s.Text(2));
  if (!role.has_value()) {
    return absl::DataLossError("token " + s.Text(1) + " has an unknown role '" + s.Text(2) + "'");
  }
  ApiToken t{.id = s.Int(0),
             .name = s.Text(1),
             .role = *role,
             .secret_sha256 = s.Text(3),
             .created_at = FromMicros(s.Int(4)),
             .created_by = s.Text(5)};
  if (!s.IsNull(6)) t.expires_at = FromMicros(s.Int(6));
  if (!s.IsNull(7)) t.revoked_at = FromMicros(s.Int(7));
  t.revoked_by = s.Text(8);
  t.chain_wide = s.Int(9) != 0;
  return t;
}

class SqliteAccess final : public AccessWrites {
 public:
  explicit SqliteAccess(Connection* conn) : conn_(conn) {}

  absl::StatusOr<std::optional<ApiToken>> FindTokenBySecretSha256(
      std::string_view secret_sha256) override {
    static constexpr const char* kSql =
        "SELECT " TOKEN_COLUMNS " FROM api_tokens WHERE secret_sha256 = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, secret_sha256);
    return First<ApiToken>(*st, ReadToken);
  }

  absl::StatusOr<std::optional<ApiToken>> FindActiveToken(std::string_view name) override {
    static constexpr const char* kSql =
        "SELECT " TOKEN_COLUMNS " FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, name);
    return First<ApiToken>(*st, ReadToken);
  }

  absl::StatusOr<std::vector<ApiToken>> ListTokens() override {
    static constexpr const char* kSql = "SELECT " TOKEN_COLUMNS " FROM api_tokens ORDER BY id";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    return Collect<ApiToken>(*st, ReadToken);
  }

  absl::StatusOr<int64_t> InsertToken(const ApiToken& t) override {
    static constexpr const char* kSql =
        "INSERT INTO api_tokens (name, role, secret_sha256, created_at, created_by, expires_at, "
        "chain_wide) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, t.name)
        .Bind(2, RoleName(t.role))
        .Bind(3, t.secret_sha256)
        .Bind(4, Micros(t.created_at))
        .Bind(5, t.created_by)
        .Bind(6, t.expires_at ? std::optional<int64_t>(Micros(*t.expires_at)) : std::nullopt)
        .Bind(7, int64_t{t.chain_wide ? 1 : 0});
    RETURN_IF_ERROR(st->Run());
    return sqlite3_last_insert_rowid(conn_->raw());
  }

  absl::Status RevokeToken(int64_t id, absl::Time at, std::string_view by) override {
    {
      static constexpr const char* kFind = "SELECT revoked_at FROM api_tokens WHERE id = ?1";
      ASSIGN_OR_RETURN(auto st, conn_->Prepare(kFind));
      st->Bind(1, id);
      ASSIGN_OR_RETURN(bool found, st->Step());
      if (!found) return absl::NotFoundError("no token " + std::to_string(id));
      if (!st->IsNull(0)) {
        return absl::FailedPreconditionError("token " + std::to_string(id) + " is revoked");
      }
    }
    static constexpr const char* kSql =
        "UPDATE api_tokens SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1";
    ASSIGN_OR_RETURN(auto st, conn_->Prepare(kSql));
    st->Bind(1, id).Bind(2, Micros(at)).Bind(3, by);
    return st->Run();
  }

 private:
  Connection* conn_;
};

}  // namespace

std::unique_ptr<AccessWrites> NewAccessRepository(Connection* conn) {
  return std::make_unique<SqliteAccess>(conn);
}

}  // namespace steritrack::sqlite
