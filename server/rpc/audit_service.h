// gRPC adapters for the audit trail (steritrack.v1.AuditService) and the integrator event stream
// (steritrack.v1.EventService), thin handlers over core::AuditService.
//
// WatchEvents reads committed events after the client's cursor in pages; when caught up it waits on
// the CommitNotifier (signalled after every committed write) with a bounded wait, so that a
// cancelled call or a stopping server is noticed within a second. Stop() ends every open stream
// promptly. Thread-safe: gRPC calls handlers from many threads.
#ifndef STERITRACK_SERVER_RPC_AUDIT_SERVICE_H_
#define STERITRACK_SERVER_RPC_AUDIT_SERVICE_H_

#include <atomic>
#include <memory>

#include "server/core/audit_service.h"
#include "server/core/commit_notifier.h"
#include "server/rpc/authorizer.h"
#include "server/rpc/background_lane.h"
#include "server/rpc/call_lanes.h"
#include "spdlog/logger.h"
#include "steritrack/v1/audit.grpc.pb.h"
#include "steritrack/v1/events.grpc.pb.h"

namespace steritrack::rpc {

void ToProto(const Event& event, v1::AuditEntry* out);

class AuditServiceImpl final : public v1::AuditService::CallbackService {
 public:
  // REQUIRES: `audit` outlives this object.
  // `lane`: where a verification runs (see background_lane.h); null: on the gRPC thread.
  AuditServiceImpl(AuditService* audit, std::shared_ptr<spdlog::logger> log, Authorizer* auth,
                   BackgroundLane* lane, CallLanes* lanes)
      : audit_(audit), log_(std::move(log)), auth_(auth), lane_(lane), lanes_(lanes) {}

  grpc::ServerUnaryReactor* VerifyAuditTrail(grpc::CallbackServerContext* ctx,
                                             const v1::VerifyAuditTrailRequest* req,
                                             v1::VerifyAuditTrailResponse* resp) override;
  grpc::ServerUnaryReactor* ListAuditEntries(grpc::CallbackServerContext* ctx,
                                             const v1::ListAuditEntriesRequest* req,
                                             v1::ListAuditEntriesResponse* resp) override;
  grpc::ServerUnaryReactor* CorrectAuditEntry(grpc::CallbackServerContext* ctx,
                                              const v1::CorrectAuditEntryRequest* req,
                                              v1::CorrectAuditEntryResponse* resp) override;

 private:
  // A chain-wide verification: every site's trail, each in its own SiteScope.
  absl::Status VerifyEverySite(const v1::VerifyAuditTrailRequest& req,
                               v1::VerifyAuditTrailResponse* resp);
  // The calling thread's site's verification, on the lane when there is one.
  absl::StatusOr<AuditChainCheck> Verify(bool full);

  AuditService* audit_;
  std::shared_ptr<spdlog::logger> log_;
  Authorizer* const auth_;
  BackgroundLane* const lane_;
  CallLanes* const lanes_;  // where the handlers run (call_lanes.h)
};

class EventServiceImpl final : public v1::EventService::Service {
 public:
  // REQUIRES: `audit` and `commits` outlive this object.
  // At most `max_streams` streams are open at once (each holds a server thread while it waits for
  // commits); one more is refused RESOURCE_EXHAUSTED, reason TOO_MANY_STREAMS.
  EventServiceImpl(AuditService* audit, CommitNotifier* commits,
                   std::shared_ptr<spdlog::logger> log, Authorizer* auth, int max_streams)
      : audit_(audit),
        commits_(commits),
        log_(std::move(log)),
        auth_(auth),
        max_streams_(max_streams) {}

  grpc::Status WatchEvents(grpc::ServerContext* ctx, const v1::WatchEventsRequest* req,
                           grpc::ServerWriter<v1::WatchEventsResponse>* writer) override;

  // Ends every open stream (UNAVAILABLE: reconnect with the last cursor) and refuses new ones.
  void Stop();

 private:
  AuditService* audit_;
  CommitNotifier* commits_;
  std::shared_ptr<spdlog::logger> log_;
  Authorizer* const auth_;
  const int max_streams_;
  std::atomic<int> open_streams_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_AUDIT_SERVICE_H_
