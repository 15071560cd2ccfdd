#include "server/rpc/services.h"

#include <chrono>

#include "absl/functional/function_ref.h"
#include "server/rpc/access_line.h"
#include "server/rpc/convert.h"
#include "server/rpc/handle.h"
#include "spdlog/spdlog.h"
#include "steritrack/error.h"
#include "steritrack/site.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack::rpc {

grpc::Status Handle(spdlog::logger& log, Authorizer& auth, const grpc::ServerContextBase& ctx,
                    std::string_view full_method,
                    absl::FunctionRef<absl::Status(const Identity&)> body) {
  const auto start = std::chrono::steady_clock::now();
  const std::string_view method = full_method.substr(full_method.rfind('/') + 1);
  std::string caller = "-";
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Identity who, auth.Authorize(ctx, full_method));
    caller = who.site == kDefaultSite ? who.name : StrCat(who.name, "@", who.site);
    // Every transaction of the call acts on the caller's site (steritrack/site.h).
    SiteScope scope(who.site);
    return body(who);
  }();
  grpc::Status answer = ToGrpcStatus(status);
  // Logged now, or by the write lane once the call's answer is final (access_line.h).
  HeldAccessLine::LogOrHold(AccessLine(log, method, std::move(caller), start, std::move(status)));
  return answer;
}

absl::StatusOr<WriteContext> WriteContextFrom(const grpc::ServerContextBase& call,
                                              const Identity& caller,
                                              const std::string& request_id) {
  // The deadline is compared here as well as through IsCancelled(): a deadline that passed while
  // the request waited for the writer must stop it even before gRPC's timer has fired.
  const std::chrono::system_clock::time_point deadline = call.deadline();
  return WriteContext{
      .actor = caller.name, .request_id = request_id, .caller_gave_up = [&call, deadline] {
        return call.IsCancelled() || std::chrono::system_clock::now() > deadline;
      }};
}

namespace {

template <typename Detail>
void AddHistory(const Detail& detail, google::protobuf::RepeatedPtrField<v1::HistoryEvent>* out) {
  for (const Event& e : detail.history) ToProto(e, out->Add());
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// InventoryService

grpc::ServerUnaryReactor* InventoryServiceImpl::ReceiveCartridges(
    grpc::CallbackServerContext* ctx, const v1::ReceiveCartridgesRequest* req,
    v1::ReceiveCartridgesResponse* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.InventoryService/ReceiveCartridges",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.InventoryService/ReceiveCartridges",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              std::vector<std::string> barcodes(req->barcodes().begin(), req->barcodes().end());
              ASSIGN_OR_RETURN(std::vector<Cartridge> received, core_->Receive(w, barcodes));
              for (const Cartridge& c : received) ToProto(c, resp->add_cartridges());
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::GetCartridge(grpc::CallbackServerContext* ctx,
                                                             const v1::GetCartridgeRequest* req,
                                                             v1::Cartridge* resp) {
  return lanes_->Read(ctx, "/steritrack.v1.InventoryService/GetCartridge",
                      [this, ctx, req, resp]() -> grpc::Status {
                        return Handle(*log_, *auth_, *ctx,
                                      "/steritrack.v1.InventoryService/GetCartridge",
                                      [&](const Identity&) -> absl::Status {
                                        ASSIGN_OR_RETURN(CartridgeDetail detail,
                                                         core_->GetCartridge(req->barcode()));
                                        ToProto(detail.cartridge, resp);
                                        ToProto(detail.open_verdict, resp->mutable_open_verdict());
                                        AddHistory(detail, resp->mutable_history());
                                        return absl::OkStatus();
                                      });
                      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::ListCartridges(grpc::CallbackServerContext* ctx,
                                                               const v1::ListCartridgesRequest* req,
                                                               v1::ListCartridgesResponse* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.InventoryService/ListCartridges",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.InventoryService/ListCartridges",
                      [&](const Identity&) -> absl::Status {
                        ASSIGN_OR_RETURN(std::optional<CartridgeState> state,
                                         OptionalFromProto("state", req->state()));
                        CartridgeQuery query{.page = {.page_size = req->page_size(),
                                                      .page_token = req->page_token()},
                                             .state = state,
                                             .gtin = req->gtin(),
                                             .lot = req->lot()};
                        if (!req->treatment_id().empty()) {
                          ASSIGN_OR_RETURN(query.treatment_id,
                                           ParseTreatmentId("treatment_id", req->treatment_id()));
                        }
                        ASSIGN_OR_RETURN(Page<Cartridge> page, core_->ListCartridges(query));
                        for (const Cartridge& c : page.items) ToProto(c, resp->add_cartridges());
                        resp->set_next_page_token(page.next_page_token);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::DiscardCartridge(
    grpc::CallbackServerContext* ctx, const v1::DiscardCartridgeRequest* req, v1::Cartridge* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.InventoryService/DiscardCartridge",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.InventoryService/DiscardCartridge",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(Cartridge c, core_->Discard(w, req->barcode(), req->reason()));
              ToProto(c, resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::GetLot(grpc::CallbackServerContext* ctx,
                                                       const v1::GetLotRequest* req,
                                                       v1::Lot* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.InventoryService/GetLot", [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.InventoryService/GetLot",
                      [&](const Identity&) -> absl::Status {
                        ASSIGN_OR_RETURN(LotDetail detail, core_->GetLot(req->gtin(), req->lot()));
                        ToProto(detail.lot, resp);
                        resp->set_units_in_stock(static_cast<int32_t>(detail.units_in_stock));
                        AddHistory(detail, resp->mutable_history());
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::ListLots(grpc::CallbackServerContext* ctx,
                                                         const v1::ListLotsRequest* req,
                                                         v1::ListLotsResponse* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.InventoryService/ListLots", [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.InventoryService/ListLots",
                      [&](const Identity&) -> absl::Status {
                        ASSIGN_OR_RETURN(std::optional<LotState> state,
                                         OptionalFromProto("state", req->state()));
                        ASSIGN_OR_RETURN(Page<Lot> page,
                                         core_->ListLots({.page = {.page_size = req->page_size(),
                                                                   .page_token = req->page_token()},
                                                          .state = state}));
                        for (const Lot& l : page.items) ToProto(l, resp->add_lots());
                        resp->set_next_page_token(page.next_page_token);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::RecallLot(grpc::CallbackServerContext* ctx,
                                                          const v1::RecallLotRequest* req,
                                                          v1::RecallLotResponse* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.InventoryService/RecallLot", [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.InventoryService/RecallLot",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(RecallResult result,
                               core_->RecallLot(w, req->gtin(), req->lot(), req->reason()));
              ToProto(result.lot, resp->mutable_lot());
              for (const Cartridge& c : result.opened) ToProto(c, resp->add_opened_cartridges());
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::QuarantineLot(grpc::CallbackServerContext* ctx,
                                                              const v1::QuarantineLotRequest* req,
                                                              v1::Lot* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.InventoryService/QuarantineLot",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.InventoryService/QuarantineLot",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(Lot lot,
                               core_->QuarantineLot(w, req->gtin(), req->lot(), req->reason()));
              ToProto(lot, resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::LiftLotQuarantine(
    grpc::CallbackServerContext* ctx, const v1::LiftLotQuarantineRequest* req, v1::Lot* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.InventoryService/LiftLotQuarantine",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.InventoryService/LiftLotQuarantine",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(Lot lot,
                               core_->LiftLotQuarantine(w, req->gtin(), req->lot(), req->reason()));
              ToProto(lot, resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::SetParLevel(grpc::CallbackServerContext* ctx,
                                                            const v1::SetParLevelRequest* req,
                                                            v1::ParLevel* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.InventoryService/SetParLevel", [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.InventoryService/SetParLevel",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              std::optional<int> window;
              if (req->has_expiry_window_days()) window = req->expiry_window_days();
              ASSIGN_OR_RETURN(ParLevel par,
                               core_->SetParLevel(w, req->gtin(), req->min_units(), window));
              ToProto(par, resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::ClearParLevel(grpc::CallbackServerContext* ctx,
                                                              const v1::ClearParLevelRequest* req,
                                                              v1::ParLevel* resp) {
  return lanes_->Write(ctx, "/steritrack.v1.InventoryService/ClearParLevel",
                       [this, ctx, req, resp]() -> grpc::Status {
                         return Handle(
                             *log_, *auth_, *ctx, "/steritrack.v1.InventoryService/ClearParLevel",
                             [&](const Identity& caller) -> absl::Status {
                               ASSIGN_OR_RETURN(WriteContext w,
                                                WriteContextFrom(*ctx, caller, req->request_id()));
                               ASSIGN_OR_RETURN(ParLevel par, core_->ClearParLevel(w, req->gtin()));
                               ToProto(par, resp);
                               return absl::OkStatus();
                             });
                       });
}

grpc::ServerUnaryReactor* InventoryServiceImpl::ListStockLevels(
    grpc::CallbackServerContext* ctx, const v1::ListStockLevelsRequest* /*req*/,
    v1::ListStockLevelsResponse* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.InventoryService/ListStockLevels", [this, ctx, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.InventoryService/ListStockLevels",
                      [&](const Identity&) -> absl::Status {
                        ASSIGN_OR_RETURN(StockLevels levels, core_->ListStockLevels());
                        SetDate(levels.today, resp->mutable_today());
                        for (const ProductStock& p : levels.products)
                          ToProto(p, resp->add_products());
                        return absl::OkStatus();
                      });
      });
}

// ---------------------------------------------------------------------------------------------------
// TreatmentService

grpc::ServerUnaryReactor* TreatmentServiceImpl::StartTreatment(grpc::CallbackServerContext* ctx,
                                                               const v1::StartTreatmentRequest* req,
                                                               v1::Treatment* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.TreatmentService/StartTreatment",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.TreatmentService/StartTreatment",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(Treatment t, core_->StartTreatment(w, req->room(), req->clinician(),
                                                                  req->client_ref()));
              ToProto(t, resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* TreatmentServiceImpl::GetTreatment(grpc::CallbackServerContext* ctx,
                                                             const v1::GetTreatmentRequest* req,
                                                             v1::Treatment* resp) {
  return lanes_->Read(ctx, "/steritrack.v1.TreatmentService/GetTreatment",
                      [this, ctx, req, resp]() -> grpc::Status {
                        return Handle(
                            *log_, *auth_, *ctx, "/steritrack.v1.TreatmentService/GetTreatment",
                            [&](const Identity&) -> absl::Status {
                              ASSIGN_OR_RETURN(int64_t id, ParseTreatmentId("id", req->id()));
                              ASSIGN_OR_RETURN(TreatmentDetail detail, core_->GetTreatment(id));
                              ToProto(detail.treatment, resp);
                              for (const Cartridge& c : detail.cartridges)
                                ToProto(c, resp->add_cartridges());
                              return absl::OkStatus();
                            });
                      });
}

grpc::ServerUnaryReactor* TreatmentServiceImpl::ListTreatments(grpc::CallbackServerContext* ctx,
                                                               const v1::ListTreatmentsRequest* req,
                                                               v1::ListTreatmentsResponse* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.TreatmentService/ListTreatments",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.TreatmentService/ListTreatments",
                      [&](const Identity&) -> absl::Status {
                        TreatmentQuery query{.page = {.page_size = req->page_size(),
                                                      .page_token = req->page_token()},
                                             .room = req->room()};
                        switch (req->state()) {
                          case v1::TREATMENT_STATE_UNSPECIFIED:
                            break;
                          case v1::TREATMENT_STATE_IN_PROGRESS:
                            query.ended = false;
                            break;
                          case v1::TREATMENT_STATE_ENDED:
                            query.ended = true;
                            break;
                          default:
                            return InvalidField("state", StrCat("has unknown value ",
                                                                static_cast<int>(req->state())));
                        }
                        ASSIGN_OR_RETURN(Page<Treatment> page, core_->ListTreatments(query));
                        for (const Treatment& t : page.items) ToProto(t, resp->add_treatments());
                        resp->set_next_page_token(page.next_page_token);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* TreatmentServiceImpl::EndTreatment(grpc::CallbackServerContext* ctx,
                                                             const v1::EndTreatmentRequest* req,
                                                             v1::Treatment* resp) {
  return lanes_->Write(ctx, "/steritrack.v1.TreatmentService/EndTreatment",
                       [this, ctx, req, resp]() -> grpc::Status {
                         return Handle(
                             *log_, *auth_, *ctx, "/steritrack.v1.TreatmentService/EndTreatment",
                             [&](const Identity& caller) -> absl::Status {
                               ASSIGN_OR_RETURN(WriteContext w,
                                                WriteContextFrom(*ctx, caller, req->request_id()));
                               ASSIGN_OR_RETURN(int64_t id, ParseTreatmentId("id", req->id()));
                               ASSIGN_OR_RETURN(TreatmentDetail detail, core_->EndTreatment(w, id));
                               ToProto(detail.treatment, resp);
                               for (const Cartridge& c : detail.cartridges)
                                 ToProto(c, resp->add_cartridges());
                               return absl::OkStatus();
                             });
                       });
}

grpc::ServerUnaryReactor* TreatmentServiceImpl::OpenCartridge(grpc::CallbackServerContext* ctx,
                                                              const v1::OpenCartridgeRequest* req,
                                                              v1::Cartridge* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.TreatmentService/OpenCartridge",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.TreatmentService/OpenCartridge",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(int64_t id, ParseTreatmentId("treatment_id", req->treatment_id()));
              ASSIGN_OR_RETURN(Cartridge c, core_->Open(w, req->barcode(), id));
              ToProto(c, resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* TreatmentServiceImpl::DisposeCartridge(
    grpc::CallbackServerContext* ctx, const v1::DisposeCartridgeRequest* req, v1::Cartridge* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.TreatmentService/DisposeCartridge",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.TreatmentService/DisposeCartridge",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(Cartridge c, core_->Dispose(w, req->barcode(), req->container_id()));
              ToProto(c, resp);
              return absl::OkStatus();
            });
      });
}

}  // namespace steritrack::rpc
