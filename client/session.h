// Session: the CLI's operations on the server, shared by one-shot commands and room mode.
//
// Each write gets its own request id. Disposals and treatment ends that cannot reach the server go
// to the OfflineQueue and are delivered, with their original request ids, at the next call that
// reaches the server or on `steritrack sync`. Opening a cartridge never queues: it fails closed.
// Not thread-safe; one per process.
#ifndef STERITRACK_CLIENT_SESSION_H_
#define STERITRACK_CLIENT_SESSION_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/connection.h"
#include "client/queue.h"

namespace steritrack::cli {

// The answer to one operation: the call's status, and whether it was queued for later instead.
struct Outcome {
  grpc::Status status;
  bool queued = false;
  std::string queue_error;  // set when queueing was needed but failed
};

struct SyncReport {
  std::vector<QueuedWrite> sent;
  std::vector<std::pair<QueuedWrite, grpc::Status>> refused;
  int64_t still_pending = 0;
  grpc::Status unreachable;  // non-OK when the server could not be reached at all
  // Non-OK when the server refused these credentials (IsAuthFailure); the rest stays queued.
  grpc::Status not_allowed;
  // Set when the queue file could not be read or updated (path and SQLite's message): what is
  // still queued is then unknown, and `sent`/`refused` list only what happened before.
  std::string queue_error;
};

struct SessionOptions {
  ConnectionOptions connection;
  std::string queue_path;  // empty: DefaultQueuePath()
  bool use_queue = true;
};

class Session {
 public:
  explicit Session(SessionOptions options);
  // For tests: a Session over an existing connection.
  Session(SessionOptions options, std::unique_ptr<Connection> connection);

  Connection& connection() { return *conn_; }
  const std::string& server() const { return options_.connection.server; }

  // A request id for the next write: the user's --request-id for the first, then fresh ones.
  std::string NextRequestId();

  Outcome Open(const std::string& barcode, const std::string& treatment_id, v1::Cartridge* out);
  Outcome Dispose(const std::string& barcode, const std::string& container, v1::Cartridge* out);
  Outcome EndTreatment(const std::string& id, v1::Treatment* out);
  Outcome StartTreatment(const std::string& room, const std::string& clinician,
                         const std::string& client_ref, v1::Treatment* out);
  Outcome Receive(const std::vector<std::string>& barcodes, v1::ReceiveCartridgesResponse* out);

  // Any other call: made through the connection, then queued writes are delivered if it got
  // through.
  grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& call);

  // Delivers every pending queued write in order. Stops at the first unreachable answer, and at
  // the first refusal of the credentials.
  SyncReport Sync();

  // Called after a call that reached the server: delivers what is queued, reporting to `note`.
  // A queue file that cannot be read is reported to `note`, or without one as a warning line on
  // stderr: the call itself succeeded, so it cannot be that call's answer.
  void DeliverQueuedAfterSuccess();
  void set_note_sink(std::function<void(const std::string&)> sink) { note_ = std::move(sink); }

 private:
  absl::StatusOr<OfflineQueue*> Queue();
  void WarnQueueUnreadable(const std::string& error);
  Outcome Queued(const std::string& method, const google::protobuf::Message& request,
                 const std::string& request_id, const std::string& description,
                 const grpc::Status& status);
  void AfterCall(const grpc::Status& status);

  SessionOptions options_;
  std::unique_ptr<Connection> conn_;
  std::unique_ptr<OfflineQueue> queue_;
  bool first_request_id_used_ = false;
  bool delivering_ = false;
  std::function<void(const std::string&)> note_;
};

bool IsUnreachable(const grpc::Status& status);
// UNAUTHENTICATED or PERMISSION_DENIED: the server judged who sent the call, not the call. A queued
// write so answered stays queued (other credentials may deliver it); it is not refused for good.
bool IsAuthFailure(const grpc::Status& status);

}  // namespace steritrack::cli

#endif  // STERITRACK_CLIENT_SESSION_H_
