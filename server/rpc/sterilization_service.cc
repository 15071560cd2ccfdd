#include "server/rpc/sterilization_service.h"

#include "server/rpc/convert.h"
#include "server/rpc/handle.h"
#include "spdlog/spdlog.h"
#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack::rpc {
void SterilizationServiceImpl::WrittenItemToProto(const char* method, ReusableItem item,
                                                  v1::ReusableItem* out) {
  absl::StatusOr<ItemView> view = core_->ItemViewOf(item);
  if (!view.ok()) {
    log_->warn("{}: no label for item (its load is unreadable: {})", method,
               std::string(view.status().message()));
    ToProto(ItemView{.item = std::move(item)}, out);
    return;
  }
  ToProto(*view, out);
}

void SterilizationServiceImpl::WrittenSterilizerToProto(const char* method, Sterilizer sterilizer,
                                                        v1::Sterilizer* out) {
  absl::StatusOr<SterilizerView> view = core_->SterilizerViewOf(sterilizer);
  if (!view.ok()) {
    log_->warn("{}: steriliser without today's verdicts (unreadable: {})", method,
               std::string(view.status().message()));
    ToProto(SterilizerView{.sterilizer = std::move(sterilizer)}, out);
    return;
  }
  ToProto(*view, out);
}

void SterilizationServiceImpl::LookBackToProto(const char* method, const LookBack& look_back,
                                               v1::LookBack* out) {
  if (!look_back.sterilizer.has_value()) {
    ToProto(look_back, nullptr, zone_, out);
    return;
  }
  absl::StatusOr<SterilizerView> view = core_->SterilizerViewOf(*look_back.sterilizer);
  if (!view.ok()) {
    log_->warn("{}: look-back steriliser without its test-cycle counts (unreadable: {})", method,
               std::string(view.status().message()));
    view = SterilizerView{.sterilizer = *look_back.sterilizer};
  }
  ToProto(look_back, &*view, zone_, out);
}

// ---------------------------------------------------------------------------------------------------
// Items

grpc::ServerUnaryReactor* SterilizationServiceImpl::CreateItem(grpc::CallbackServerContext* ctx,
                                                               const v1::CreateItemRequest* req,
                                                               v1::ReusableItem* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.SterilizationService/CreateItem",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/CreateItem",
                      [&](const Identity& caller) -> absl::Status {
                        ASSIGN_OR_RETURN(WriteContext w,
                                         WriteContextFrom(*ctx, caller, req->request_id()));
                        NewItem item{.serial = req->serial(),
                                     .type = req->type(),
                                     .ifu_max_cycles = req->ifu_max_cycles()};
                        ASSIGN_OR_RETURN(item.maintenance_due,
                                         FromProto("maintenance_due", req->maintenance_due()));
                        ASSIGN_OR_RETURN(ReusableItem created, core_->CreateItem(w, item));
                        WrittenItemToProto("CreateItem", std::move(created), resp);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::GetItem(grpc::CallbackServerContext* ctx,
                                                            const v1::GetItemRequest* req,
                                                            v1::ReusableItem* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.SterilizationService/GetItem", [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/GetItem",
                      [&](const Identity&) -> absl::Status {
                        if (req->serial().empty())
                          return InvalidField("serial", "is required (serial or label scan)");
                        ASSIGN_OR_RETURN(ItemView view, core_->GetItemView(req->serial()));
                        ToProto(view, resp);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::ListItems(grpc::CallbackServerContext* ctx,
                                                              const v1::ListItemsRequest* req,
                                                              v1::ListItemsResponse* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.SterilizationService/ListItems",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/ListItems",
                      [&](const Identity&) -> absl::Status {
                        ASSIGN_OR_RETURN(std::optional<ItemState> state,
                                         OptionalFromProto("state", req->state()));
                        ASSIGN_OR_RETURN(Page<ItemView> page,
                                         core_->ListItemViews({.page_size = req->page_size(),
                                                               .page_token = req->page_token()},
                                                              state));
                        for (const ItemView& view : page.items) ToProto(view, resp->add_items());
                        resp->set_next_page_token(page.next_page_token);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::PackItem(grpc::CallbackServerContext* ctx,
                                                             const v1::PackItemRequest* req,
                                                             v1::ReusableItem* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.SterilizationService/PackItem",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/PackItem",
                      [&](const Identity& caller) -> absl::Status {
                        ASSIGN_OR_RETURN(WriteContext w,
                                         WriteContextFrom(*ctx, caller, req->request_id()));
                        ASSIGN_OR_RETURN(ReusableItem item, core_->PackItem(w, req->serial()));
                        WrittenItemToProto("PackItem", std::move(item), resp);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::UseItem(grpc::CallbackServerContext* ctx,
                                                            const v1::UseItemRequest* req,
                                                            v1::ReusableItem* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.SterilizationService/UseItem", [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/UseItem",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              if (req->serial().empty())
                return InvalidField("serial", "is required (serial or label scan)");
              ASSIGN_OR_RETURN(int64_t treatment_id,
                               ParseTreatmentId("treatment_id", req->treatment_id()));
              ASSIGN_OR_RETURN(ReusableItem item, core_->UseItem(w, req->serial(), treatment_id));
              WrittenItemToProto("UseItem", std::move(item), resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::RetireItem(grpc::CallbackServerContext* ctx,
                                                               const v1::RetireItemRequest* req,
                                                               v1::ReusableItem* resp) {
  return lanes_->Write(ctx, "/steritrack.v1.SterilizationService/RetireItem",
                       [this, ctx, req, resp]() -> grpc::Status {
                         return Handle(
                             *log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/RetireItem",
                             [&](const Identity& caller) -> absl::Status {
                               ASSIGN_OR_RETURN(WriteContext w,
                                                WriteContextFrom(*ctx, caller, req->request_id()));
                               ASSIGN_OR_RETURN(ReusableItem item,
                                                core_->RetireItem(w, req->serial(), req->reason()));
                               WrittenItemToProto("RetireItem", std::move(item), resp);
                               return absl::OkStatus();
                             });
                       });
}

// ---------------------------------------------------------------------------------------------------
// Sterilisers and Bowie-Dick

grpc::ServerUnaryReactor* SterilizationServiceImpl::CreateSterilizer(
    grpc::CallbackServerContext* ctx, const v1::CreateSterilizerRequest* req,
    v1::Sterilizer* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.SterilizationService/CreateSterilizer",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/CreateSterilizer",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(SterilizerType type,
                               RequiredFromProto("type", req->type(), "PRE_VACUUM or GRAVITY"));
              ASSIGN_OR_RETURN(Sterilizer created, core_->CreateSterilizer(w, req->name(), type));
              WrittenSterilizerToProto("CreateSterilizer", std::move(created), resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::GetSterilizer(
    grpc::CallbackServerContext* ctx, const v1::GetSterilizerRequest* req, v1::Sterilizer* resp) {
  return lanes_->Read(ctx, "/steritrack.v1.SterilizationService/GetSterilizer",
                      [this, ctx, req, resp]() -> grpc::Status {
                        return Handle(*log_, *auth_, *ctx,
                                      "/steritrack.v1.SterilizationService/GetSterilizer",
                                      [&](const Identity&) -> absl::Status {
                                        ASSIGN_OR_RETURN(SterilizerView view,
                                                         core_->GetSterilizerView(req->name()));
                                        ToProto(view, resp);
                                        return absl::OkStatus();
                                      });
                      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::ListSterilizers(
    grpc::CallbackServerContext* ctx, const v1::ListSterilizersRequest* req,
    v1::ListSterilizersResponse* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.SterilizationService/ListSterilizers",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/ListSterilizers",
                      [&](const Identity&) -> absl::Status {
                        ASSIGN_OR_RETURN(std::optional<SterilizerType> type,
                                         OptionalFromProto("type", req->type()));
                        ASSIGN_OR_RETURN(
                            Page<SterilizerView> page,
                            core_->ListSterilizerViews(
                                {.page_size = req->page_size(), .page_token = req->page_token()},
                                type, req->out_of_service_only()));
                        for (const SterilizerView& view : page.items)
                          ToProto(view, resp->add_sterilizers());
                        resp->set_next_page_token(page.next_page_token);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::RecordBowieDickTest(
    grpc::CallbackServerContext* ctx, const v1::RecordBowieDickTestRequest* req,
    v1::BowieDickTest* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.SterilizationService/RecordBowieDickTest",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/RecordBowieDickTest",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(IndicatorResult result,
                               RequiredFromProto("result", req->result(), "PASS or FAIL"));
              ASSIGN_OR_RETURN(BowieDickTest test,
                               core_->RecordBowieDickTest(w, req->sterilizer(), result));
              ToProto(test, req->sterilizer(), resp);
              return absl::OkStatus();
            });
      });
}

// ---------------------------------------------------------------------------------------------------
// Loads

grpc::ServerUnaryReactor* SterilizationServiceImpl::CreateLoad(grpc::CallbackServerContext* ctx,
                                                               const v1::CreateLoadRequest* req,
                                                               v1::Load* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.SterilizationService/CreateLoad",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/CreateLoad",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              NewLoad load{.sterilizer = req->sterilizer(),
                           .cycle_number = req->cycle_number(),
                           .cycle_type = req->cycle_type(),
                           .item_serials = {req->item_serials().begin(), req->item_serials().end()},
                           .test_cycle = req->test_cycle(),
                           .bi_required = req->bi_required(),
                           .shelf_life_days = req->shelf_life_days()};
              ASSIGN_OR_RETURN(Load created, core_->CreateLoad(w, load));
              ToProto(created, zone_, resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::GetLoad(grpc::CallbackServerContext* ctx,
                                                            const v1::GetLoadRequest* req,
                                                            v1::Load* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.SterilizationService/GetLoad", [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/GetLoad",
                      [&](const Identity&) -> absl::Status {
                        ASSIGN_OR_RETURN(int64_t id, ParseLoadId("id", req->id()));
                        ASSIGN_OR_RETURN(Load load, core_->GetLoad(id));
                        ToProto(load, zone_, resp);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::ListLoads(grpc::CallbackServerContext* ctx,
                                                              const v1::ListLoadsRequest* req,
                                                              v1::ListLoadsResponse* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.SterilizationService/ListLoads",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/ListLoads",
                      [&](const Identity&) -> absl::Status {
                        ASSIGN_OR_RETURN(std::optional<ReleaseState> state,
                                         OptionalFromProto("release_state", req->release_state()));
                        ASSIGN_OR_RETURN(Page<Load> page,
                                         core_->ListLoads({.page_size = req->page_size(),
                                                           .page_token = req->page_token()},
                                                          req->sterilizer(), state));
                        for (const Load& load : page.items) ToProto(load, zone_, resp->add_loads());
                        resp->set_next_page_token(page.next_page_token);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::RecordCycleParameters(
    grpc::CallbackServerContext* ctx, const v1::RecordCycleParametersRequest* req, v1::Load* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.SterilizationService/RecordCycleParameters",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/RecordCycleParameters",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(int64_t load_id, ParseLoadId("load_id", req->load_id()));
              CycleParameters parameters{.exposure_seconds = req->exposure_seconds(),
                                         .temperature_c = req->temperature_c(),
                                         .pressure_kpa = req->pressure_kpa(),
                                         .passed = req->passed()};
              ASSIGN_OR_RETURN(parameters.started_at,
                               FromProto("start_time", req->has_start_time(), req->start_time()));
              ASSIGN_OR_RETURN(parameters.ended_at,
                               FromProto("end_time", req->has_end_time(), req->end_time()));
              ASSIGN_OR_RETURN(Load load, core_->RecordParameters(w, load_id, parameters));
              ToProto(load, zone_, resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::RecordChemicalIndicator(
    grpc::CallbackServerContext* ctx, const v1::RecordChemicalIndicatorRequest* req,
    v1::Load* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.SterilizationService/RecordChemicalIndicator",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/RecordChemicalIndicator",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(int64_t load_id, ParseLoadId("load_id", req->load_id()));
              ASSIGN_OR_RETURN(IndicatorResult result,
                               RequiredFromProto("result", req->result(), "PASS or FAIL"));
              ASSIGN_OR_RETURN(Load load,
                               core_->RecordChemicalIndicator(w, load_id, req->type(), result));
              ToProto(load, zone_, resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::RecordBiologicalIndicator(
    grpc::CallbackServerContext* ctx, const v1::RecordBiologicalIndicatorRequest* req,
    v1::RecordBiologicalIndicatorResponse* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.SterilizationService/RecordBiologicalIndicator",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/RecordBiologicalIndicator",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(int64_t load_id, ParseLoadId("load_id", req->load_id()));
              BiologicalIndicator bi{.product = req->product(), .lot = req->lot()};
              ASSIGN_OR_RETURN(bi.result,
                               RequiredFromProto("result", req->result(), "NEGATIVE or POSITIVE"));
              ASSIGN_OR_RETURN(bi.control_result,
                               RequiredFromProto("control_result", req->control_result(),
                                                 "NEGATIVE or POSITIVE"));
              ASSIGN_OR_RETURN(BiOutcome outcome, core_->RecordBiologicalIndicator(w, load_id, bi));
              ToProto(outcome.load, zone_, resp->mutable_load());
              if (outcome.look_back.has_value())
                LookBackToProto("RecordBiologicalIndicator", *outcome.look_back,
                                resp->mutable_look_back());
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::ReleaseLoad(grpc::CallbackServerContext* ctx,
                                                                const v1::ReleaseLoadRequest* req,
                                                                v1::Load* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.SterilizationService/ReleaseLoad",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/ReleaseLoad",
                      [&](const Identity& caller) -> absl::Status {
                        ASSIGN_OR_RETURN(WriteContext w,
                                         WriteContextFrom(*ctx, caller, req->request_id()));
                        ASSIGN_OR_RETURN(int64_t load_id, ParseLoadId("load_id", req->load_id()));
                        ASSIGN_OR_RETURN(Load load, core_->ReleaseLoad(w, load_id, req->meaning()));
                        ToProto(load, zone_, resp);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::QuarantineLoad(
    grpc::CallbackServerContext* ctx, const v1::QuarantineLoadRequest* req, v1::Load* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.SterilizationService/QuarantineLoad",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/QuarantineLoad",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(int64_t load_id, ParseLoadId("load_id", req->load_id()));
              ASSIGN_OR_RETURN(Load load, core_->QuarantineLoad(w, load_id, req->reason()));
              ToProto(load, zone_, resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::RecallLoad(grpc::CallbackServerContext* ctx,
                                                               const v1::RecallLoadRequest* req,
                                                               v1::LookBack* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.SterilizationService/RecallLoad",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/RecallLoad",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(int64_t load_id, ParseLoadId("load_id", req->load_id()));
              ASSIGN_OR_RETURN(LookBack look_back, core_->RecallLoad(w, load_id, req->reason()));
              LookBackToProto("RecallLoad", look_back, resp);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* SterilizationServiceImpl::GetLoadLookBack(
    grpc::CallbackServerContext* ctx, const v1::GetLoadLookBackRequest* req, v1::LookBack* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.SterilizationService/GetLoadLookBack",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.SterilizationService/GetLoadLookBack",
                      [&](const Identity&) -> absl::Status {
                        ASSIGN_OR_RETURN(int64_t load_id, ParseLoadId("load_id", req->load_id()));
                        ASSIGN_OR_RETURN(LookBack look_back, core_->GetLookBack(load_id));
                        LookBackToProto("GetLoadLookBack", look_back, resp);
                        return absl::OkStatus();
                      });
      });
}

}  // namespace steritrack::rpc
