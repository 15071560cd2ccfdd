// The role -> method matrix (issue 9): one table, deny by default. A method with no entry is
// refused to every role, admin included; grpc.health.v1.Health is outside (unauthenticated), and
// server reflection needs a valid credential of any role.
//
// Rendered into the README's roles table by `steritrackd access-matrix`; a test keeps the two
// equal. Pure data and pure functions; thread-safe.
#ifndef STERITRACK_SERVER_RPC_ACCESS_POLICY_H_
#define STERITRACK_SERVER_RPC_ACCESS_POLICY_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "steritrack/access.h"

namespace steritrack::rpc {

using RoleSet = uint8_t;
constexpr RoleSet Roles(std::initializer_list<Role> roles) {
  RoleSet set = 0;
  for (Role r : roles) set = static_cast<RoleSet>(set | (1u << static_cast<unsigned>(r)));
  return set;
}
constexpr bool Contains(RoleSet set, Role role) {
  return (set & (1u << static_cast<unsigned>(role))) != 0;
}

struct MethodAccess {
  std::string_view method;  // "/steritrack.v1.InventoryService/ReceiveCartridges"
  RoleSet roles;
};

// The whole table, sorted by method name.
std::span<const MethodAccess> AccessPolicy();

// True when `role` may call `method` (a full gRPC method name, as above). Deny by default.
bool MayCall(Role role, std::string_view method);

// The full names of the reflection service's methods: any authenticated caller.
inline constexpr std::string_view kReflectionPrefix = "/grpc.reflection.";

// The table as Markdown: one row per method, one column per role, "yes" where allowed.
std::string AccessMatrixMarkdown();

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_ACCESS_POLICY_H_
