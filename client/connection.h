// Connection: the CLI's channel to steritrackd and the one place that makes calls.
//
// NewChannel is the one place a channel is built (plaintext or TLS, from the credentials) and
// DecorateContext the one place a call is given its metadata (the bearer token); every command
// group's stubs share the Connection's channel. Every write carries a request id (generated unless
// the user gave one) and is retried with the same id when the server could not be reached or timed
// out, so a retry never records anything twice. Talks to the StubInterfaces, so tests can put a
// fake behind it. Not thread-safe; one per command.
#ifndef STERITRACK_CLIENT_CONNECTION_H_
#define STERITRACK_CLIENT_CONNECTION_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "client/credentials.h"
#include "steritrack/v1/inventory.grpc.pb.h"
#include "steritrack/v1/treatment.grpc.pb.h"

namespace steritrack::cli {

struct ConnectionOptions {
  std::string server = "127.0.0.1:50051";
  // The site of a clinic chain the calls act on (metadata x-steritrack-site); empty: the
  // credential's own.
  std::string site;
  Credentials credentials;  // TLS and the bearer token
  std::string request_id;   // for the first write of this command; generated when empty
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

  // The channel for other services' stubs; null for a Connection made with test stubs.
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  v1::InventoryService::StubInterface& inventory() { return *inventory_; }
  v1::TreatmentService::StubInterface& treatments() { return *treatments_; }
  const ConnectionOptions& options() const { return options_; }
  // The site later calls name (x-steritrack-site; empty: none): a queued write goes to the site
  // it was queued for, whichever site the session that delivers it names.
  void set_site(std::string site) { options_.site = std::move(site); }

  // Runs `call` with a fresh ClientContext (deadline, DecorateContext) and retries transient
  // failures.
  grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& call);

 private:
  ConnectionOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::InventoryService::StubInterface> inventory_;
  std::unique_ptr<v1::TreatmentService::StubInterface> treatments_;
};

// A channel to options.server: TLS when the credentials hold TLS files (mutual TLS with a client
// certificate), else plaintext. Reconnects fail fast, so a server that is down is reported quickly.
std::shared_ptr<grpc::Channel> NewChannel(const ConnectionOptions& options);

// Adds what every call carries: with a token, "authorization: Bearer ...". Who acts is the
// server's answer to the credentials, never something the CLI claims.
// Metadata rather than call credentials, which gRPC refuses to send over a plaintext channel
// (loopback without TLS is a supported set-up). A value gRPC would not accept (CheckHeaderValue)
// is not added: the answer is INVALID_ARGUMENT and the call must not be made.
grpc::Status DecorateContext(const ConnectionOptions& options, grpc::ClientContext* ctx);

// The longest header value the CLI sends (gRPC's default limit for all metadata is 8 KiB).
inline constexpr size_t kMaxHeaderValueBytes = 4096;

// OK when `value` may travel in a gRPC header (metadata value or the authority the server address
// becomes): 1 to kMaxHeaderValueBytes bytes of printable ASCII (0x20-0x7e), no leading or trailing
// space. gRPC aborts the process on anything else (a control character, a byte above 0x7e such as
// UTF-8), so every such value is checked before a call. `setting` names where the value came from
// (flag, environment variable or configuration key) and leads the INVALID_ARGUMENT message.
absl::Status CheckHeaderValue(const std::string& setting, std::string_view value);

// A random 256-bit id as 64 hex digits, from the OS's entropy source.
std::string NewRequestId();

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_CONNECTION_H_
