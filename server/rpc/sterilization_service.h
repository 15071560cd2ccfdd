// gRPC adapter for steritrack.v1.SterilizationService: thin handlers over
// core::SterilizationService.
//
// Each handler checks the request's shape, converts proto -> domain, calls core, converts back and
// returns ToGrpcStatus(status). No rule lives here. Ids travel as decimal strings and are parsed
// here (INVALID_ARGUMENT naming the field). One log line per request, nothing from its body.
// Thread-safe: gRPC calls handlers from many threads.
#ifndef STERITRACK_SERVER_RPC_STERILIZATION_SERVICE_H_
#define STERITRACK_SERVER_RPC_STERILIZATION_SERVICE_H_

#include <memory>

#include "absl/time/time.h"
#include "server/core/sterilization_service.h"
#include "server/rpc/authorizer.h"
#include "server/rpc/call_lanes.h"
#include "spdlog/logger.h"
#include "steritrack/v1/sterilization.grpc.pb.h"

namespace steritrack::rpc {

class SterilizationServiceImpl final : public v1::SterilizationService::CallbackService {
 public:
  // REQUIRES: `core` outlives this object. `zone`: the clinic's time zone, the same the core uses;
  // lot-control numbers and labels carry the load's date in it.
  SterilizationServiceImpl(SterilizationService* core, absl::TimeZone zone,
                           std::shared_ptr<spdlog::logger> log, Authorizer* auth, CallLanes* lanes)
      : core_(core), zone_(zone), log_(std::move(log)), auth_(auth), lanes_(lanes) {}

  grpc::ServerUnaryReactor* CreateItem(grpc::CallbackServerContext* ctx,
                                       const v1::CreateItemRequest* req,
                                       v1::ReusableItem* resp) override;
  grpc::ServerUnaryReactor* GetItem(grpc::CallbackServerContext* ctx, const v1::GetItemRequest* req,
                                    v1::ReusableItem* resp) override;
  grpc::ServerUnaryReactor* ListItems(grpc::CallbackServerContext* ctx,
                                      const v1::ListItemsRequest* req,
                                      v1::ListItemsResponse* resp) override;
  grpc::ServerUnaryReactor* PackItem(grpc::CallbackServerContext* ctx,
                                     const v1::PackItemRequest* req,
                                     v1::ReusableItem* resp) override;
  grpc::ServerUnaryReactor* UseItem(grpc::CallbackServerContext* ctx, const v1::UseItemRequest* req,
                                    v1::ReusableItem* resp) override;
  grpc::ServerUnaryReactor* RetireItem(grpc::CallbackServerContext* ctx,
                                       const v1::RetireItemRequest* req,
                                       v1::ReusableItem* resp) override;

  grpc::ServerUnaryReactor* CreateSterilizer(grpc::CallbackServerContext* ctx,
                                             const v1::CreateSterilizerRequest* req,
                                             v1::Sterilizer* resp) override;
  grpc::ServerUnaryReactor* GetSterilizer(grpc::CallbackServerContext* ctx,
                                          const v1::GetSterilizerRequest* req,
                                          v1::Sterilizer* resp) override;
  grpc::ServerUnaryReactor* ListSterilizers(grpc::CallbackServerContext* ctx,
                                            const v1::ListSterilizersRequest* req,
                                            v1::ListSterilizersResponse* resp) override;
  grpc::ServerUnaryReactor* RecordBowieDickTest(grpc::CallbackServerContext* ctx,
                                                const v1::RecordBowieDickTestRequest* req,
                                                v1::BowieDickTest* resp) override;

  grpc::ServerUnaryReactor* CreateLoad(grpc::CallbackServerContext* ctx,
                                       const v1::CreateLoadRequest* req, v1::Load* resp) override;
  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* ctx, const v1::GetLoadRequest* req,
                                    v1::Load* resp) override;
  grpc::ServerUnaryReactor* ListLoads(grpc::CallbackServerContext* ctx,
                                      const v1::ListLoadsRequest* req,
                                      v1::ListLoadsResponse* resp) override;
  grpc::ServerUnaryReactor* RecordCycleParameters(grpc::CallbackServerContext* ctx,
                                                  const v1::RecordCycleParametersRequest* req,
                                                  v1::Load* resp) override;
  grpc::ServerUnaryReactor* RecordChemicalIndicator(grpc::CallbackServerContext* ctx,
                                                    const v1::RecordChemicalIndicatorRequest* req,
                                                    v1::Load* resp) override;
  grpc::ServerUnaryReactor* RecordBiologicalIndicator(
      grpc::CallbackServerContext* ctx, const v1::RecordBiologicalIndicatorRequest* req,
      v1::RecordBiologicalIndicatorResponse* resp) override;
  grpc::ServerUnaryReactor* ReleaseLoad(grpc::CallbackServerContext* ctx,
                                        const v1::ReleaseLoadRequest* req, v1::Load* resp) override;
  grpc::ServerUnaryReactor* QuarantineLoad(grpc::CallbackServerContext* ctx,
                                           const v1::QuarantineLoadRequest* req,
                                           v1::Load* resp) override;
  grpc::ServerUnaryReactor* RecallLoad(grpc::CallbackServerContext* ctx,
                                       const v1::RecallLoadRequest* req,
                                       v1::LookBack* resp) override;
  grpc::ServerUnaryReactor* GetLoadLookBack(grpc::CallbackServerContext* ctx,
                                            const v1::GetLoadLookBackRequest* req,
                                            v1::LookBack* resp) override;

 private:
  // An item a write returned, as core's view (with its pack's label). The view is read after the
  // answer is already decided (the write has committed), so a failed read is logged and the label
  // left empty rather than turning a recorded write into an error.
  void WrittenItemToProto(const char* method, ReusableItem item, v1::ReusableItem* out);
  // A steriliser a write returned, as core's view. As above, a failed view read is logged and the
  // record sent as written, without today's verdicts (bowie_dick_passed_today false: not known).
  void WrittenSterilizerToProto(const char* method, Sterilizer sterilizer, v1::Sterilizer* out);
  // A look-back with its steriliser as core's view (rule 7's counts; the Bowie-Dick verdict as of
  // the answer). As above, a failed view read is logged and the steriliser sent without counts.
  void LookBackToProto(const char* method, const LookBack& look_back, v1::LookBack* out);

  SterilizationService* core_;
  const absl::TimeZone zone_;
  std::shared_ptr<spdlog::logger> log_;
  Authorizer* const auth_;
  CallLanes* const lanes_;  // where the handlers run (call_lanes.h)
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_STERILIZATION_SERVICE_H_
