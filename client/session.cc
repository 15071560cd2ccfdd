#include "client/session.h"

namespace steritrack::cli {

bool IsUnreachable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

Session::Session(SessionOptions options)
    : options_(std::move(options)), conn_(std::make_unique<Connection>(options_.connection)) {}

Session::Session(SessionOptions options, std::unique_ptr<Connection> connection)
    : options_(std::move(options)), conn_(std::move(connection)) {}

std::string Session::NextRequestId() {
  if (!first_request_id_used_ && !options_.connection.request_id.empty()) {
    first_request_id_used_ = true;
    return options_.connection.request_id;
  }
  first_request_id_used_ = true;
  return NewRequestId();
}

OfflineQueue* Session::Queue(std::string* error) {
  if (!options_.use_queue) {
    *error = "offline queue disabled";
    return nullptr;
  }
  if (queue_ == nullptr) {
    queue_ = OfflineQueue::Open(
        options_.queue_path.empty() ? DefaultQueuePath() : options_.queue_path, error);
  }
  return queue_.get();
}

Outcome Session::Queued(const std::string& method, const google::protobuf::Message& request,
                        const std::string& request_id, const std::string& description,
                        const grpc::Status& status) {
  Outcome out{.status = status};
  std::string error;
  OfflineQueue* queue = Queue(&error);
  if (queue != nullptr &&
      queue->Enqueue({.method = method, .request = request.SerializeAsString(),
                      .request_id = request_id, .description = description},
                     &error)) {
    out.queued = true;
  } else {
    out.queue_error = error;
  }
  return out;
}

grpc::Status Session::Call(const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  grpc::Status st = conn_->Call(call);
  AfterCall(st);
  return st;
}

void Session::AfterCall(const grpc::Status& status) {
  if (!IsUnreachable(status)) DeliverQueuedAfterSuccess();
}

void Session::DeliverQueuedAfterSuccess() {
  if (delivering_ || !options_.use_queue) return;
  std::string error;
  OfflineQueue* queue = Queue(&error);
  if (queue == nullptr || queue->PendingCount() == 0) return;
  SyncReport report = Sync();
  if (!note_) return;
  for (const auto& w : report.sent) note_("delivered queued " + w.description);
  for (const auto& [w, st] : report.refused) {
    note_("server refused queued " + w.description + ": " + st.error_message());
  }
}

SyncReport Session::Sync() {
  SyncReport report;
  std::string error;
  OfflineQueue* queue = Queue(&error);
  if (queue == nullptr) return report;
  delivering_ = true;
  for (QueuedWrite& w : queue->Pending()) {
    grpc::Status st;
    std::string answer;
    if (w.method == "DisposeCartridge") {
      v1::DisposeCartridgeRequest req;
      req.ParseFromString(w.request);
      v1::Cartridge resp;
      st = conn_->Call([&](grpc::ClientContext* ctx) {
        return conn_->treatments().DisposeCartridge(ctx, req, &resp);
      });
      answer = "disposed " + resp.serial() + " in " + resp.container_id();
    } else if (w.method == "EndTreatment") {
      v1::EndTreatmentRequest req;
      req.ParseFromString(w.request);
      v1::Treatment resp;
      st = conn_->Call([&](grpc::ClientContext* ctx) {
        return conn_->treatments().EndTreatment(ctx, req, &resp);
      });
      answer = "treatment " + resp.id() + " ended";
    } else {
      st = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown queued method " + w.method);
    }
    if (IsUnreachable(st)) {
      report.unreachable = st;
      break;
    }
    if (st.ok()) {
      queue->MarkSent(w.id, answer);
      report.sent.push_back(w);
    } else {
      queue->MarkRefused(w.id, st.error_message());
      report.refused.emplace_back(w, st);
    }
  }
  report.still_pending = queue->PendingCount();
  delivering_ = false;
  return report;
}

Outcome Session::Open(const std::string& barcode, const std::string& treatment_id,
                      v1::Cartridge* out) {
  v1::OpenCartridgeRequest req;
  req.set_barcode(barcode);
  req.set_treatment_id(treatment_id);
  req.set_request_id(NextRequestId());
  grpc::Status st = conn_->Call(
      [&](grpc::ClientContext* ctx) { return conn_->treatments().OpenCartridge(ctx, req, out); });
  AfterCall(st);
  return {.status = st};
}

Outcome Session::Dispose(const std::string& barcode, const std::string& container,
                         v1::Cartridge* out) {
  v1::DisposeCartridgeRequest req;
  req.set_barcode(barcode);
  req.set_container_id(container);
  req.set_request_id(NextRequestId());
  grpc::Status st = conn_->Call([&](grpc::ClientContext* ctx) {
    return conn_->treatments().DisposeCartridge(ctx, req, out);
  });
  if (IsUnreachable(st)) {
    return Queued("DisposeCartridge", req, req.request_id(),
                  "disposal of " + barcode + " in sharps container " + container, st);
  }
  AfterCall(st);
  return {.status = st};
}

Outcome Session::EndTreatment(const std::string& id, v1::Treatment* out) {
  v1::EndTreatmentRequest req;
  req.set_id(id);
  req.set_request_id(NextRequestId());
  grpc::Status st = conn_->Call(
      [&](grpc::ClientContext* ctx) { return conn_->treatments().EndTreatment(ctx, req, out); });
  if (IsUnreachable(st)) {
    return Queued("EndTreatment", req, req.request_id(), "end of treatment " + id, st);
  }
  AfterCall(st);
  return {.status = st};
}

Outcome Session::StartTreatment(const std::string& room, const std::string& clinician,
                                const std::string& client_ref, v1::Treatment* out) {
  v1::StartTreatmentRequest req;
  req.set_room(room);
  req.set_clinician(clinician);
  req.set_client_ref(client_ref);
  req.set_request_id(NextRequestId());
  grpc::Status st = conn_->Call(
      [&](grpc::ClientContext* ctx) { return conn_->treatments().StartTreatment(ctx, req, out); });
  AfterCall(st);
  return {.status = st};
}

Outcome Session::Receive(const std::vector<std::string>& barcodes,
                         v1::ReceiveCartridgesResponse* out) {
  v1::ReceiveCartridgesRequest req;
  for (const auto& b : barcodes) req.add_barcodes(b);
  req.set_request_id(NextRequestId());
  grpc::Status st = conn_->Call([&](grpc::ClientContext* ctx) {
    return conn_->inventory().ReceiveCartridges(ctx, req, out);
  });
  AfterCall(st);
  return {.status = st};
}

}  // namespace steritrack::cli
