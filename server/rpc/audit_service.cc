#include "server/rpc/audit_service.h"

#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "server/rpc/convert.h"
#include "server/rpc/handle.h"
#include "steritrack/error.h"
#include "steritrack/site.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack::rpc {
namespace {

constexpr int kStreamPage = 200;
// How long a caught-up stream sleeps at most before it looks at cancellation again.
constexpr absl::Duration kIdleWait = absl::Seconds(1);
constexpr int kMaxActionFilters = 64;

std::string IdText(int64_t id) { return id == 0 ? std::string() : StrCat(id); }

}  // namespace

void ToProto(const Event& e, v1::AuditEntry* out) {
  out->set_sequence(e.seq);
  SetTime(e.at, out->mutable_time());
  out->set_actor(e.actor);
  out->set_action(e.action);
  out->set_lot_id(IdText(e.lot_id));
  out->set_cartridge_id(IdText(e.cartridge_id));
  out->set_treatment_id(IdText(e.treatment_id));
  out->set_item_id(IdText(e.item_id));
  out->set_load_id(IdText(e.load_id));
  out->set_sterilizer_id(IdText(e.sterilizer_id));
  out->set_detail(e.detail);
  out->set_before(e.before);
  out->set_after(e.after);
  out->set_request_id(e.request_id);
  out->set_corrects_sequence(e.corrects_seq);
  out->set_hash(e.hash);
}

namespace {

// One site's verification, into the whole answer (one site) or a site's line of it (every site):
// both messages carry the same fields.
template <typename Message>
void CheckToProto(const AuditChainCheck& check, Message* out) {
  out->set_intact(check.intact);
  out->set_entry_count(check.entries);
  out->set_first_bad_sequence(check.first_bad_seq);
  out->set_problem(check.problem);
  out->set_checkpoint_sequence(check.checkpoint_seq);
}

}  // namespace

grpc::ServerUnaryReactor* AuditServiceImpl::VerifyAuditTrail(grpc::CallbackServerContext* ctx,
                                                             const v1::VerifyAuditTrailRequest* req,
                                                             v1::VerifyAuditTrailResponse* resp) {
  return lanes_->Read(ctx, "/steritrack.v1.AuditService/VerifyAuditTrail",
                      [this, ctx, req, resp]() -> grpc::Status {
                        return Handle(
                            *log_, *auth_, *ctx, "/steritrack.v1.AuditService/VerifyAuditTrail",
                            [&](const Identity& caller) -> absl::Status {
                              if (caller.chain_wide && !caller.site_named)
                                return VerifyEverySite(*req, resp);
                              ASSIGN_OR_RETURN(AuditChainCheck check, Verify(req->full()));
                              CheckToProto(check, resp);
                              if (!check.intact) {
                                log_->error("audit trail broken at entry {}: {}",
                                            check.first_bad_seq, check.problem);
                              }
                              return absl::OkStatus();
                            });
                      });
}

absl::StatusOr<AuditChainCheck> AuditServiceImpl::Verify(bool full) {
  if (lane_ == nullptr) return audit_->Verify(full);
  // The reading on the lane; the checkpoint's write here, at the server's priority: a write on a
  // low-priority thread would hold the one writer (and perhaps commit others' batch) while the
  // cores go to everyone else.
  ASSIGN_OR_RETURN(AuditChainCheck check,
                   lane_->Call<AuditChainCheck>([&] { return audit_->CheckChain(full); }));
  return audit_->KeepCheckpoint(std::move(check), full);
}

absl::Status AuditServiceImpl::VerifyEverySite(const v1::VerifyAuditTrailRequest& req,
                                               v1::VerifyAuditTrailResponse* resp) {
  ASSIGN_OR_RETURN(std::vector<std::string> sites, auth_->sites().ListSites());
  resp->set_intact(true);
  for (const std::string& site : sites) {
    SiteScope scope(site);
    ASSIGN_OR_RETURN(AuditChainCheck check, Verify(req.full()));
    v1::SiteVerification* one = resp->add_sites();
    one->set_site(site);
    CheckToProto(check, one);
    resp->set_entry_count(resp->entry_count() + check.entries);
    if (!check.intact) {
      log_->error("audit trail of site {} broken at entry {}: {}", site, check.first_bad_seq,
                  check.problem);
      if (resp->intact()) {
        resp->set_intact(false);
        resp->set_first_bad_sequence(check.first_bad_seq);
        resp->set_problem(StrCat("site ", site, ": ", check.problem));
      }
    }
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* AuditServiceImpl::ListAuditEntries(grpc::CallbackServerContext* ctx,
                                                             const v1::ListAuditEntriesRequest* req,
                                                             v1::ListAuditEntriesResponse* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.AuditService/ListAuditEntries",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.AuditService/ListAuditEntries",
            [&](const Identity&) -> absl::Status {
              AuditQuery query{
                  .page = {.page_size = req->page_size(), .page_token = req->page_token()},
                  .action = req->action(),
                  .actor = req->actor()};
              if (req->has_start_time()) {
                ASSIGN_OR_RETURN(query.from, FromProto("start_time", true, req->start_time()));
              }
              if (req->has_end_time()) {
                ASSIGN_OR_RETURN(query.to, FromProto("end_time", true, req->end_time()));
              }
              ASSIGN_OR_RETURN(Page<Event> page, audit_->ListEntries(query));
              for (const Event& e : page.items) ToProto(e, resp->add_entries());
              resp->set_next_page_token(page.next_page_token);
              return absl::OkStatus();
            });
      });
}

grpc::ServerUnaryReactor* AuditServiceImpl::CorrectAuditEntry(
    grpc::CallbackServerContext* ctx, const v1::CorrectAuditEntryRequest* req,
    v1::CorrectAuditEntryResponse* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.AuditService/CorrectAuditEntry",
      [this, ctx, req, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.AuditService/CorrectAuditEntry",
            [&](const Identity& caller) -> absl::Status {
              ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, req->request_id()));
              ASSIGN_OR_RETURN(Event entry,
                               audit_->CorrectAuditEntry(w, req->sequence(), req->note()));
              ToProto(entry, resp->mutable_entry());
              return absl::OkStatus();
            });
      });
}

void EventServiceImpl::Stop() {
  stopping_.store(true);
  commits_->WakeAll();
}

grpc::Status EventServiceImpl::WatchEvents(grpc::ServerContext* ctx,
                                           const v1::WatchEventsRequest* req,
                                           grpc::ServerWriter<v1::WatchEventsResponse>* writer) {
  return Handle(
      *log_, *auth_, *ctx, "/steritrack.v1.EventService/WatchEvents",
      [&](const Identity&) -> absl::Status {
        if (req->actions_size() > kMaxActionFilters) {
          return InvalidField("actions", StrCat("at most ", kMaxActionFilters, " actions"));
        }
        std::vector<std::string> actions(req->actions().begin(), req->actions().end());
        ASSIGN_OR_RETURN(int64_t cursor, audit_->ParseCursor(req->cursor()));
        // A place among the open streams, held until this one ends.
        if (open_streams_.fetch_add(1) >= max_streams_) {
          open_streams_.fetch_sub(1);
          return MakeError(absl::StatusCode::kResourceExhausted,
                           StrCat("the server already serves ", max_streams_,
                                  " event streams (max_event_streams); retry later"),
                           "TOO_MANY_STREAMS", {{"limit", StrCat(max_streams_)}});
        }
        absl::Cleanup release = [this] { open_streams_.fetch_sub(1); };
        while (true) {
          if (ctx->IsCancelled()) return absl::CancelledError("the client cancelled the stream");
          if (stopping_.load()) {
            return absl::UnavailableError("the server is stopping: reconnect with the last cursor");
          }
          // The credential is checked again at every page and wake-up: a token revoked or expired
          // while the stream is open ends it (UNAUTHENTICATED), as its next call would be refused.
          RETURN_IF_ERROR(auth_->Authenticate(*ctx).status());
          // Taken before the read: a commit after the read moves it, so the wait below cannot miss
          // it.
          const uint64_t seen = commits_->count();
          ASSIGN_OR_RETURN(EventBatch batch, audit_->EventsAfter(cursor, actions, kStreamPage));
          for (const Event& e : batch.events) {
            v1::WatchEventsResponse out;
            out.set_cursor(AuditService::CursorOf(e.seq));
            ToProto(e, out.mutable_event());
            if (!writer->Write(out)) return absl::CancelledError("the client went away");
          }
          const bool caught_up = batch.scanned_to == cursor;
          cursor = batch.scanned_to;
          if (caught_up) commits_->WaitForCommitAfter(seen, kIdleWait);
        }
      });
}

}  // namespace steritrack::rpc
