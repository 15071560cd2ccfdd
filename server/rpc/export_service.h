// gRPC adapter for steritrack.v1.ExportService: thin streaming handlers over core::ExportService.
//
// Each handler checks the request's shape, calls core and writes what core hands it as it comes,
// so an export of any period holds one page in memory. No rule lives here. One log line per
// request, nothing from its body (a Bundle carries client references; they never reach the log).
// Thread-safe: gRPC calls handlers from many threads.
#ifndef STERITRACK_SERVER_RPC_EXPORT_SERVICE_H_
#define STERITRACK_SERVER_RPC_EXPORT_SERVICE_H_

#include <memory>

#include "server/core/export_service.h"
#include "server/rpc/authorizer.h"
#include "spdlog/logger.h"
#include "steritrack/v1/export.grpc.pb.h"

namespace steritrack::rpc {

class ExportServiceImpl final : public v1::ExportService::Service {
 public:
  // REQUIRES: `core` and `auth` outlive this object.
  ExportServiceImpl(ExportService* core, std::shared_ptr<spdlog::logger> log, Authorizer* auth)
      : core_(core), log_(std::move(log)), auth_(auth) {}

  grpc::Status ExportFhir(grpc::ServerContext* ctx, const v1::ExportFhirRequest* req,
                          grpc::ServerWriter<v1::ExportFhirResponse>* writer) override;
  grpc::Status ExportEpcis(grpc::ServerContext* ctx, const v1::ExportEpcisRequest* req,
                           grpc::ServerWriter<v1::ExportEpcisResponse>* writer) override;

 private:
  ExportService* const core_;
  const std::shared_ptr<spdlog::logger> log_;
  Authorizer* const auth_;
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_EXPORT_SERVICE_H_
