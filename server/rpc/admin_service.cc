#include "server/rpc/admin_service.h"

#include <fstream>
#include <vector>

#include "server/rpc/convert.h"
#include "server/rpc/handle.h"
#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

// steritrackd's version: project(VERSION) in the top CMakeLists.txt.
#ifndef STERITRACK_VERSION
#error "STERITRACK_VERSION must be defined (server/CMakeLists.txt)"
#endif

namespace steritrack::rpc {
namespace {

void ToProto(const ApiToken& t, v1::Token* out) {
  out->set_name(t.name);
  out->set_role(std::string(RoleName(t.role)));
  SetTime(t.created_at, out->mutable_create_time());
  out->set_created_by(t.created_by);
  if (t.expires_at) SetTime(*t.expires_at, out->mutable_expire_time());
  if (t.revoked_at) SetTime(*t.revoked_at, out->mutable_revoke_time());
  out->set_revoked_by(t.revoked_by);
  out->set_chain_wide(t.chain_wide);
}

void ToProto(const AuditHead& head, v1::AuditTrailHead* out) {
  out->set_sequence(head.seq);
  out->set_hash(head.hash);
}

// A snapshot travels in pieces this big: well under gRPC's default 4 MiB message limit.
constexpr size_t kBackupChunkBytes = 1 << 20;

absl::StatusOr<DatabaseAdmin*> Offered(DatabaseAdmin* database) {
  if (database == nullptr) {
    return absl::FailedPreconditionError("this server offers no database operations");
  }
  return database;
}

}  // namespace

grpc::ServerUnaryReactor* AdminServiceImpl::CreateToken(grpc::CallbackServerContext* ctx,
                                                        const v1::CreateTokenRequest* req,
                                                        v1::CreateTokenResponse* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.AdminService/CreateToken", [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.AdminService/CreateToken",
                      [&](const Identity& caller) -> absl::Status {
                        ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, ""));
                        ASSIGN_OR_RETURN(
                            IssuedToken issued,
                            access_->CreateToken(w, caller,
                                                 NewToken{.name = req->name(),
                                                          .role = req->role(),
                                                          .expires_in_days = req->expires_in_days(),
                                                          .chain_wide = req->chain_wide()}));
                        ToProto(issued.token, resp->mutable_token());
                        resp->set_secret(issued.secret);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTokens(grpc::CallbackServerContext* ctx,
                                                       const v1::ListTokensRequest* /*req*/,
                                                       v1::ListTokensResponse* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.AdminService/ListTokens", [this, ctx, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.AdminService/ListTokens",
                      [&](const Identity&) -> absl::Status {
                        ASSIGN_OR_RETURN(std::vector<ApiToken> tokens, access_->ListTokens());
                        for (const ApiToken& t : tokens) ToProto(t, resp->add_tokens());
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeToken(grpc::CallbackServerContext* ctx,
                                                        const v1::RevokeTokenRequest* req,
                                                        v1::Token* resp) {
  return lanes_->Write(
      ctx, "/steritrack.v1.AdminService/RevokeToken", [this, ctx, req, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.AdminService/RevokeToken",
                      [&](const Identity& caller) -> absl::Status {
                        ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, ""));
                        ASSIGN_OR_RETURN(ApiToken revoked, access_->RevokeToken(w, req->name()));
                        ToProto(revoked, resp);
                        return absl::OkStatus();
                      });
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::WhoAmI(grpc::CallbackServerContext* ctx,
                                                   const v1::WhoAmIRequest* /*req*/,
                                                   v1::WhoAmIResponse* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.AdminService/WhoAmI", [this, ctx, resp]() -> grpc::Status {
        return Handle(*log_, *auth_, *ctx, "/steritrack.v1.AdminService/WhoAmI",
                      [&](const Identity& caller) -> absl::Status {
                        resp->set_name(caller.name);
                        resp->set_role(std::string(RoleName(caller.role)));
                        resp->set_credential(caller.source == Identity::Source::kCertificate
                                                 ? "certificate"
                                                 : "token");
                        resp->set_site(caller.site);
                        resp->set_chain_wide(caller.chain_wide);
                        return absl::OkStatus();
                      });
      });
}

}  // namespace steritrack::rpc

namespace steritrack::rpc {

grpc::Status AdminServiceImpl::Backup(grpc::ServerContext* ctx, const v1::BackupRequest*,
                                      grpc::ServerWriter<v1::BackupResponse>* writer) {
  return Handle(
      *log_, *auth_, *ctx, "/steritrack.v1.AdminService/Backup",
      [&](const Identity& caller) -> absl::Status {
        ASSIGN_OR_RETURN(DatabaseAdmin * database, Offered(database_));
        ASSIGN_OR_RETURN(std::unique_ptr<DatabaseSnapshot> snapshot, database->TakeSnapshot());
        std::ifstream in(snapshot->path(), std::ios::binary);
        if (!in) return absl::UnavailableError("cannot read the snapshot file");
        std::vector<char> buffer(kBackupChunkBytes);
        int64_t sent = 0;
        while (in) {
          in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
          const std::streamsize n = in.gcount();
          if (n <= 0) break;
          if (ctx->IsCancelled()) return absl::CancelledError("the client cancelled the backup");
          v1::BackupResponse chunk;
          chunk.set_chunk(buffer.data(), static_cast<size_t>(n));
          if (!writer->Write(chunk)) return absl::CancelledError("the client went away");
          sent += n;
        }
        if (in.bad() || sent != snapshot->bytes()) {
          return absl::DataLossError(StrCat("the snapshot file changed while it was sent (", sent,
                                            " of ", snapshot->bytes(), " bytes)"));
        }
        v1::BackupResponse last;
        v1::BackupSummary* summary = last.mutable_summary();
        summary->set_size_bytes(snapshot->bytes());
        summary->set_sha256(snapshot->sha256());
        summary->set_schema_version(snapshot->schema_version());
        ToProto(snapshot->audit_head(), summary->mutable_audit_head());
        if (!writer->Write(last)) return absl::CancelledError("the client went away");
        log_->info("backup for {}: {} bytes, schema v{}, audit head #{}, sha256 {}", caller.name,
                   snapshot->bytes(), snapshot->schema_version(), snapshot->audit_head().seq,
                   snapshot->sha256());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetStatus(grpc::CallbackServerContext* ctx,
                                                      const v1::GetStatusRequest* /*req*/,
                                                      v1::GetStatusResponse* resp) {
  return lanes_->Read(
      ctx, "/steritrack.v1.AdminService/GetStatus", [this, ctx, resp]() -> grpc::Status {
        return Handle(
            *log_, *auth_, *ctx, "/steritrack.v1.AdminService/GetStatus",
            [&](const Identity&) -> absl::Status {
              ASSIGN_OR_RETURN(DatabaseAdmin * database, Offered(database_));
              ASSIGN_OR_RETURN(DatabaseStatus status, database->Status());
              resp->set_version(STERITRACK_VERSION);
              SetTime(start_time_, resp->mutable_start_time());
              const auto up = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - started_);
              resp->mutable_uptime()->set_seconds(up.count() / 1000);
              resp->mutable_uptime()->set_nanos(static_cast<int32_t>(up.count() % 1000) * 1000000);
              resp->set_database_path(status.path);
              resp->set_schema_version(status.schema_version);
              resp->set_build_schema_version(status.build_schema_version);
              resp->set_database_bytes(status.database_bytes);
              resp->set_wal_bytes(status.wal_bytes);
              ToProto(status.audit_head, resp->mutable_audit_head());
              return absl::OkStatus();
            });
      });
}

}  // namespace steritrack::rpc
