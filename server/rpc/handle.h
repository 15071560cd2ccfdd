// The shape every steritrack.v1 handler shares: authorize the caller for the method, run the body
// as them, convert its status once, log one line.
//
// Used by every adapter in server/rpc. Thread-safe.
#ifndef STERITRACK_SERVER_RPC_HANDLE_H_
#define STERITRACK_SERVER_RPC_HANDLE_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "server/core/access_service.h"
#include "server/core/cartridge_service.h"
#include "server/rpc/authorizer.h"
#include "spdlog/logger.h"

namespace steritrack::rpc {

// Runs one request of `method` (full name, "/steritrack.v1.InventoryService/GetLot"): asks `auth`
// who is calling and whether they may, then calls `body` with the caller, converts its status,
// and logs its access line (server/rpc/access_line.h: method, outcome, reason, latency, caller;
// never anything from the request body, so no client reference leaves the database): at once,
// or, on the write lane, with the call's final answer once its group commit is durable.
grpc::Status Handle(spdlog::logger& log, Authorizer& auth, const grpc::ServerContextBase& ctx,
                    std::string_view method, absl::FunctionRef<absl::Status(const Identity&)> body);

// A write by `caller` (the audit actor) under `request_id`, for the call `call`: the write is
// rolled back rather than committed once the call's client has given up (deadline, cancellation).
// REQUIRES: `call` outlives the returned context.
absl::StatusOr<WriteContext> WriteContextFrom(const grpc::ServerContextBase& call,
                                              const Identity& caller,
                                              const std::string& request_id);

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_HANDLE_H_
