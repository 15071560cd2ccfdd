// Connection: the CLI's channel to steritrackd and the one place that makes calls.
//
// Every write carries a request id (generated unless the user gave one) and is retried with the
// same id when the server could not be reached or timed out, so a retry never records anything
// twice. Talks to the StubInterfaces, so tests can put a fake behind it. Not thread-safe; one per
// command.
#ifndef STERITRACK_CLIENT_CONNECTION_H_
#define STERITRACK_CLIENT_CONNECTION_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>

#include "steritrack/v1/inventory.grpc.pb.h"
#include "steritrack/v1/treatment.grpc.pb.h"

namespace steritrack::cli {

struct ConnectionOptions {
  std::string server = "127.0.0.1:50051";
  std::string actor;       // sent as x-steritrack-actor
  std::string request_id;  // for the first write of this command; generated when empty
  int deadline_ms = 10000;
  int attempts = 3;  // for UNAVAILABLE / DEADLINE_EXCEEDED, same request id each time
};

class Connection {
 public:
  explicit Connection(ConnectionOptions options);
  // For tests: use the given stubs instead of a channel.
  Connection(ConnectionOptions options,
             std::unique_ptr<v1::InventoryService::StubInterface> inventory,
             std::unique_ptr<v1::TreatmentService::StubInterface> treatments);

  v1::InventoryService::StubInterface& inventory() { return *inventory_; }
  v1::TreatmentService::StubInterface& treatments() { return *treatments_; }
  const ConnectionOptions& options() const { return options_; }

  // Runs `call` with a fresh ClientContext (deadline, actor header) and retries transient failures.
  grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& call);

 private:
  ConnectionOptions options_;
  std::unique_ptr<v1::InventoryService::StubInterface> inventory_;
  std::unique_ptr<v1::TreatmentService::StubInterface> treatments_;
};

// A random 256-bit id as 64 hex digits, from the OS's entropy source.
std::string NewRequestId();

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_CONNECTION_H_
