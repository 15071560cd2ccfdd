// gRPC adapter for steritrack.v1.ReportService: thin handlers over core::ReportService.
//
// Each handler checks the request's shape, converts proto -> domain, calls core, converts back and
// returns ToGrpcStatus(status). No rule lives here. One log line per request, nothing from its body
// (a look-back answer carries client references; they never reach the log). Thread-safe: gRPC calls
// handlers from many threads.
#ifndef STERITRACK_SERVER_RPC_REPORT_SERVICE_H_
#define STERITRACK_SERVER_RPC_REPORT_SERVICE_H_

#include <memory>

#include "server/core/report_service.h"
#include "server/rpc/authorizer.h"
#include "server/rpc/background_lane.h"
#include "server/rpc/call_lanes.h"
#include "spdlog/logger.h"
#include "steritrack/v1/report.grpc.pb.h"

namespace steritrack::rpc {

class ReportServiceImpl final : public v1::ReportService::CallbackService {
 public:
  // REQUIRES: `core` outlives this object.
  // `lane`: where a period's report runs (see background_lane.h); null: on the gRPC thread.
  ReportServiceImpl(ReportService* core, std::shared_ptr<spdlog::logger> log, Authorizer* auth,
                    BackgroundLane* lane, CallLanes* lanes)
      : core_(core), log_(std::move(log)), auth_(auth), lane_(lane), lanes_(lanes) {}

  grpc::ServerUnaryReactor* GetComplianceReport(grpc::CallbackServerContext* ctx,
                                                const v1::GetComplianceReportRequest* req,
                                                v1::ComplianceReport* resp) override;
  grpc::ServerUnaryReactor* GetLotLookBack(grpc::CallbackServerContext* ctx,
                                           const v1::GetLotLookBackRequest* req,
                                           v1::LotLookBack* resp) override;
  grpc::ServerUnaryReactor* GetStock(grpc::CallbackServerContext* ctx,
                                     const v1::GetStockRequest* req, v1::Stock* resp) override;

 private:
  // The report of the site the calling thread acts on (its SiteScope), into `resp`.
  absl::Status FillComplianceReport(absl::CivilDay from, absl::CivilDay to,
                                    v1::ComplianceReport* resp);

  ReportService* const core_;
  const std::shared_ptr<spdlog::logger> log_;
  Authorizer* const auth_;
  BackgroundLane* const lane_;
  CallLanes* const lanes_;  // where the handlers run (call_lanes.h)
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_REPORT_SERVICE_H_
