// Identity and access (issue 9): the roles, and the API tokens that name a person or system.
//
// Plain values; the rules (who may call what, how a token is checked) live in server/core and
// server/rpc. A token's secret is never stored: only its SHA-256 (lower-case hex).
#ifndef STERITRACK_ACCESS_H_
#define STERITRACK_ACCESS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace steritrack {

// The five roles. What each may call is one table (server/rpc/access_policy.cc), deny by default.
enum class Role { kNurse, kSterileProcessing, kManager, kIntegrator, kAdmin };

inline constexpr std::array<Role, 5> kAllRoles = {Role::kNurse, Role::kSterileProcessing,
                                                  Role::kManager, Role::kIntegrator, Role::kAdmin};

// "nurse", "sterile_processing", "manager", "integrator", "admin".
std::string_view RoleName(Role role);
// The role named `name` exactly as RoleName spells it; nullopt for anything else.
std::optional<Role> ParseRole(std::string_view name);

struct ApiToken {
  int64_t id = 0;
  std::string name;  // unique among tokens not revoked; the audit actor of its calls
  Role role = Role::kNurse;
  std::string secret_sha256;  // lower-case hex SHA-256 of the secret
  absl::Time created_at = absl::InfinitePast();
  std::string created_by;
  std::optional<absl::Time> expires_at;  // none: does not expire
  std::optional<absl::Time> revoked_at;  // none: not revoked
  std::string revoked_by;
  // A token of the default site that is good for every site of the chain (steritrack/site.h):
  // a chain manager's, an integrator's or an administrator's. Other tokens are good for the site
  // that holds them only.
  bool chain_wide = false;
};

}  // namespace steritrack

#endif  // STERITRACK_ACCESS_H_
