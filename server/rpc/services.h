// gRPC adapters for steritrack.v1: thin handlers over core::CartridgeService.
//
// Each handler checks the request's shape, converts proto -> domain, calls core, converts back and
// returns ToGrpcStatus(status). No rule lives here. Each request is logged once (method, outcome,
// latency) and nothing from the request body is logged, so no client reference leaves the database.
// Thread-safe: gRPC calls handlers from many threads.
#ifndef STERITRACK_SERVER_RPC_SERVICES_H_
#define STERITRACK_SERVER_RPC_SERVICES_H_

#include <memory>

#include "server/core/cartridge_service.h"
#include "server/rpc/authorizer.h"
#include "server/rpc/call_lanes.h"
#include "spdlog/logger.h"
#include "steritrack/v1/inventory.grpc.pb.h"
#include "steritrack/v1/treatment.grpc.pb.h"

namespace steritrack::rpc {

class InventoryServiceImpl final : public v1::InventoryService::CallbackService {
 public:
  // REQUIRES: `core` outlives this object.
  // REQUIRES: `lanes` outlives this object; the handlers run there (call_lanes.h).
  InventoryServiceImpl(CartridgeService* core, std::shared_ptr<spdlog::logger> log,
                       Authorizer* auth, CallLanes* lanes)
      : core_(core), log_(std::move(log)), auth_(auth), lanes_(lanes) {}

  grpc::ServerUnaryReactor* ReceiveCartridges(grpc::CallbackServerContext* ctx,
                                              const v1::ReceiveCartridgesRequest* req,
                                              v1::ReceiveCartridgesResponse* resp) override;
  grpc::ServerUnaryReactor* GetCartridge(grpc::CallbackServerContext* ctx,
                                         const v1::GetCartridgeRequest* req,
                                         v1::Cartridge* resp) override;
  grpc::ServerUnaryReactor* ListCartridges(grpc::CallbackServerContext* ctx,
                                           const v1::ListCartridgesRequest* req,
                                           v1::ListCartridgesResponse* resp) override;
  grpc::ServerUnaryReactor* DiscardCartridge(grpc::CallbackServerContext* ctx,
                                             const v1::DiscardCartridgeRequest* req,
                                             v1::Cartridge* resp) override;
  grpc::ServerUnaryReactor* GetLot(grpc::CallbackServerContext* ctx, const v1::GetLotRequest* req,
                                   v1::Lot* resp) override;
  grpc::ServerUnaryReactor* ListLots(grpc::CallbackServerContext* ctx,
                                     const v1::ListLotsRequest* req,
                                     v1::ListLotsResponse* resp) override;
  grpc::ServerUnaryReactor* RecallLot(grpc::CallbackServerContext* ctx,
                                      const v1::RecallLotRequest* req,
                                      v1::RecallLotResponse* resp) override;
  grpc::ServerUnaryReactor* QuarantineLot(grpc::CallbackServerContext* ctx,
                                          const v1::QuarantineLotRequest* req,
                                          v1::Lot* resp) override;
  grpc::ServerUnaryReactor* LiftLotQuarantine(grpc::CallbackServerContext* ctx,
                                              const v1::LiftLotQuarantineRequest* req,
                                              v1::Lot* resp) override;
  grpc::ServerUnaryReactor* SetParLevel(grpc::CallbackServerContext* ctx,
                                        const v1::SetParLevelRequest* req,
                                        v1::ParLevel* resp) override;
  grpc::ServerUnaryReactor* ClearParLevel(grpc::CallbackServerContext* ctx,
                                          const v1::ClearParLevelRequest* req,
                                          v1::ParLevel* resp) override;
  grpc::ServerUnaryReactor* ListStockLevels(grpc::CallbackServerContext* ctx,
                                            const v1::ListStockLevelsRequest* req,
                                            v1::ListStockLevelsResponse* resp) override;

 private:
  CartridgeService* core_;
  std::shared_ptr<spdlog::logger> log_;
  Authorizer* const auth_;
  CallLanes* const lanes_;
};

class TreatmentServiceImpl final : public v1::TreatmentService::CallbackService {
 public:
  TreatmentServiceImpl(CartridgeService* core, std::shared_ptr<spdlog::logger> log,
                       Authorizer* auth, CallLanes* lanes)
      : core_(core), log_(std::move(log)), auth_(auth), lanes_(lanes) {}

  grpc::ServerUnaryReactor* StartTreatment(grpc::CallbackServerContext* ctx,
                                           const v1::StartTreatmentRequest* req,
                                           v1::Treatment* resp) override;
  grpc::ServerUnaryReactor* GetTreatment(grpc::CallbackServerContext* ctx,
                                         const v1::GetTreatmentRequest* req,
                                         v1::Treatment* resp) override;
  grpc::ServerUnaryReactor* ListTreatments(grpc::CallbackServerContext* ctx,
                                           const v1::ListTreatmentsRequest* req,
                                           v1::ListTreatmentsResponse* resp) override;
  grpc::ServerUnaryReactor* EndTreatment(grpc::CallbackServerContext* ctx,
                                         const v1::EndTreatmentRequest* req,
                                         v1::Treatment* resp) override;
  grpc::ServerUnaryReactor* OpenCartridge(grpc::CallbackServerContext* ctx,
                                          const v1::OpenCartridgeRequest* req,
                                          v1::Cartridge* resp) override;
  grpc::ServerUnaryReactor* DisposeCartridge(grpc::CallbackServerContext* ctx,
                                             const v1::DisposeCartridgeRequest* req,
                                             v1::Cartridge* resp) override;

 private:
  CartridgeService* core_;
  std::shared_ptr<spdlog::logger> log_;
  Authorizer* const auth_;
  CallLanes* const lanes_;
};

}  // namespace steritrack::rpc

#endif  // STERITRACK_SERVER_RPC_SERVICES_H_
