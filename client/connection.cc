#include "client/connection.h"

#include <chrono>
#include <random>
#include <thread>

#include "client/output.h"

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

std::shared_ptr<grpc::Channel> NewChannel(const ConnectionOptions& options) {
  grpc::ChannelArguments args;
  // Fail fast when the server is down instead of waiting for the whole deadline.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  const Credentials& c = options.credentials;
  if (!c.tls()) {
    return grpc::CreateCustomChannel(options.server, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = c.ca_pem;
  ssl.pem_cert_chain = c.cert_pem;
  ssl.pem_private_key = c.key_pem;
  return grpc::CreateCustomChannel(options.server, grpc::SslCredentials(ssl), args);
}

absl::Status CheckHeaderValue(const std::string& setting, std::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError(setting + ": is empty");
  if (value.size() > kMaxHeaderValueBytes) {
    return absl::InvalidArgumentError(setting + ": longer than " +
                                      std::to_string(kMaxHeaderValueBytes) + " bytes");
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(setting + ": holds a control character (byte " +
                                        std::to_string(i + 1) + "); only printable ASCII is sent");
    }
    if (c > 0x7f) {
      return absl::InvalidArgumentError(setting + ": holds a non-ASCII character (byte " +
                                        std::to_string(i + 1) + "); only printable ASCII is sent");
    }
  }
  if (value.front() == ' ' || value.back() == ' ') {
    return absl::InvalidArgumentError(setting + ": begins or ends with a space");
  }
  return absl::OkStatus();
}

grpc::Status DecorateContext(const ConnectionOptions& options, grpc::ClientContext* ctx) {
  if (!options.credentials.token.empty()) {
    if (absl::Status valid = CheckHeaderValue("the token", options.credentials.token);
        !valid.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(valid.message()));
    }
    ctx->AddMetadata("authorization", "Bearer " + options.credentials.token);
  }
  if (!options.site.empty()) {
    if (absl::Status valid = CheckHeaderValue("the site", options.site); !valid.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(valid.message()));
    }
    ctx->AddMetadata("x-steritrack-site", options.site);
  }
  return grpc::Status::OK;
}

Connection::Connection(ConnectionOptions options)
    : options_(std::move(options)), channel_(NewChannel(options_)) {
  inventory_ = v1::InventoryService::NewStub(channel_);
  treatments_ = v1::TreatmentService::NewStub(channel_);
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
    status = DecorateContext(options_, &ctx);
    if (!status.ok()) return status;  // nothing was sent
    status = call(&ctx);
    // A busy server stored nothing (SERVER_BUSY): the same request, same request id, may go again.
    const bool transient = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                           (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                            DecodeFailure(status).reason == "SERVER_BUSY");
    if (!transient) break;
    if (attempt < options_.attempts) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt));
    }
  }
  return status;
}

}  // namespace steritrack::cli
