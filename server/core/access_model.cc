#include "steritrack/access.h"

namespace steritrack {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kNurse:
      return "nurse";
    case Role::kSterileProcessing:
      return "sterile_processing";
    case Role::kManager:
      return "manager";
    case Role::kIntegrator:
      return "integrator";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role role : kAllRoles) {
    if (RoleName(role) == name) return role;
  }
  return std::nullopt;
}

}  // namespace steritrack
