#include "client/connection.h"

#include <chrono>
#include <random>
#include <thread>

namespace steritrack::cli {

std::string NewRequestId() {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 8; ++i) {
    uint32_t word = rd();
    for (int j = 0; j < 4; ++j) {
      id.push_back(kHex[(word >> 4) & 0xf]);
      id.push_back(kHex[word & 0xf]);
      word >>= 8;
    }
  }
  return id;
}

Connection::Connection(ConnectionOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  // Fail fast when the server is down instead of waiting for the whole deadline.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel =
      grpc::CreateCustomChannel(options_.server, grpc::InsecureChannelCredentials(), args);
  inventory_ = v1::InventoryService::NewStub(channel);
  treatments_ = v1::TreatmentService::NewStub(channel);
}

Connection::Connection(ConnectionOptions options,
                       std::unique_ptr<v1::InventoryService::StubInterface> inventory,
                       std::unique_ptr<v1::TreatmentService::StubInterface> treatments)
    : options_(std::move(options)),
      inventory_(std::move(inventory)),
      treatments_(std::move(treatments)) {}

grpc::Status Connection::Call(const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  grpc::Status status;
  for (int attempt = 1; attempt <= std::max(1, options_.attempts); ++attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(options_.deadline_ms));
    if (!options_.actor.empty()) ctx.AddMetadata("x-steritrack-actor", options_.actor);
    status = call(&ctx);
    const bool transient = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    if (!transient) break;
    if (attempt < options_.attempts) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt));
    }
  }
  return status;
}

}  // namespace steritrack::cli
