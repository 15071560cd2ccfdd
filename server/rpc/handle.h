// The shape every steritrack.v1 handler shares: run the body, convert its status once, log one
// line.
//
// Used by the adapters in services.cc and sterilization_service.cc. Thread-safe.
#ifndef STERITRACK_SERVER_RPC_HANDLE_H_
#define STERITRACK_SERVER_RPC_HANDLE_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "server/core/cartridge_service.h"
#include "spdlog/logger.h"

namespace steritrack::rpc {

// Runs one request: calls `body`, converts its status, and logs method, outcome and latency (never
// anything from the request body, so no client reference leaves the database).
grpc::Status Handle(spdlog::logger& log, const char* method,
                    absl::FunctionRef<absl::Status()> body);

// Who is writing (the x-steritrack-actor header) under which request id.
absl::StatusOr<WriteContext> WriteContextFrom(const grpc::ServerContext& ctx,
                                              const std::string& request_id);

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_HANDLE_H_
