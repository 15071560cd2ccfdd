#include "server/rpc/export_service.h"

#include "server/rpc/convert.h"
#include "server/rpc/handle.h"
#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack::rpc {

grpc::Status ExportServiceImpl::ExportFhir(grpc::ServerContext* ctx,
                                           const v1::ExportFhirRequest* req,
                                           grpc::ServerWriter<v1::ExportFhirResponse>* writer) {
  return Handle(
      *log_, *auth_, *ctx, "/steritrack.v1.ExportService/ExportFhir",
      [&](const Identity&) -> absl::Status {
        auto send = [&](FhirBundle bundle) -> absl::Status {
          if (ctx->IsCancelled()) return absl::CancelledError("the client cancelled the export");
          v1::ExportFhirResponse out;
          out.set_treatment_id(StrCat(bundle.treatment_id));
          out.set_bundle(std::move(bundle.json));
          for (int64_t seq : bundle.audit_seqs) out.add_audit_sequences(seq);
          if (!writer->Write(out)) return absl::CancelledError("the client went away");
          return absl::OkStatus();
        };
        const bool has_period = req->has_from_date() || req->has_to_date();
        if (!req->treatment_id().empty()) {
          if (has_period) {
            return InvalidField("from_date", "give either a treatment_id or a period, not both");
          }
          ASSIGN_OR_RETURN(int64_t id, ParseTreatmentId("treatment_id", req->treatment_id()));
          ASSIGN_OR_RETURN(FhirBundle bundle, core_->FhirBundleFor(id));
          return send(std::move(bundle));
        }
        if (!has_period) {
          return InvalidField("treatment_id", "is required unless a period is given");
        }
        ASSIGN_OR_RETURN(absl::CivilDay from, RequiredDate("from_date", req->from_date()));
        ASSIGN_OR_RETURN(absl::CivilDay to, RequiredDate("to_date", req->to_date()));
        return core_->FhirBundlesFor(from, to, send);
      });
}

grpc::Status ExportServiceImpl::ExportEpcis(grpc::ServerContext* ctx,
                                            const v1::ExportEpcisRequest* req,
                                            grpc::ServerWriter<v1::ExportEpcisResponse>* writer) {
  return Handle(
      *log_, *auth_, *ctx, "/steritrack.v1.ExportService/ExportEpcis",
      [&](const Identity&) -> absl::Status {
        ASSIGN_OR_RETURN(absl::CivilDay from, RequiredDate("from_date", req->from_date()));
        ASSIGN_OR_RETURN(absl::CivilDay to, RequiredDate("to_date", req->to_date()));
        auto send = [&](std::string_view chunk) -> absl::Status {
          if (ctx->IsCancelled()) {
            return absl::CancelledError("the client cancelled the export");
          }
          if (chunk.empty()) return absl::OkStatus();
          v1::ExportEpcisResponse out;
          out.set_chunk(std::string(chunk));
          if (!writer->Write(out)) return absl::CancelledError("the client went away");
          return absl::OkStatus();
        };
        ASSIGN_OR_RETURN(EpcisExportSummary summary, core_->EpcisDocumentFor(from, to, send));
        v1::ExportEpcisResponse last;
        v1::EpcisExportSummary* out = last.mutable_summary();
        out->set_event_count(summary.events);
        out->set_first_sequence(summary.first_seq);
        out->set_last_sequence(summary.last_seq);
        out->set_size_bytes(summary.size_bytes);
        if (!writer->Write(last)) return absl::CancelledError("the client went away");
        return absl::OkStatus();
      });
}

}  // namespace steritrack::rpc
