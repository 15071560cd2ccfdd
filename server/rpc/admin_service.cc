#include "server/rpc/admin_service.h"

#include "server/rpc/convert.h"
#include "server/rpc/handle.h"
#include "steritrack/status_macros.h"

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
}

}  // namespace

grpc::Status AdminServiceImpl::CreateToken(grpc::ServerContext* ctx,
                                           const v1::CreateTokenRequest* req,
                                           v1::CreateTokenResponse* resp) {
  return Handle(*log_, *auth_, *ctx, "/steritrack.v1.AdminService/CreateToken",
                [&](const Identity& caller) -> absl::Status {
                  ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, ""));
                  ASSIGN_OR_RETURN(
                      IssuedToken issued,
                      access_->CreateToken(w, NewToken{.name = req->name(),
                                                       .role = req->role(),
                                                       .expires_in_days = req->expires_in_days()}));
                  ToProto(issued.token, resp->mutable_token());
                  resp->set_secret(issued.secret);
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::ListTokens(grpc::ServerContext* ctx, const v1::ListTokensRequest*,
                                          v1::ListTokensResponse* resp) {
  return Handle(*log_, *auth_, *ctx, "/steritrack.v1.AdminService/ListTokens",
                [&](const Identity&) -> absl::Status {
                  ASSIGN_OR_RETURN(std::vector<ApiToken> tokens, access_->ListTokens());
                  for (const ApiToken& t : tokens) ToProto(t, resp->add_tokens());
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::RevokeToken(grpc::ServerContext* ctx,
                                           const v1::RevokeTokenRequest* req, v1::Token* resp) {
  return Handle(*log_, *auth_, *ctx, "/steritrack.v1.AdminService/RevokeToken",
                [&](const Identity& caller) -> absl::Status {
                  ASSIGN_OR_RETURN(WriteContext w, WriteContextFrom(*ctx, caller, ""));
                  ASSIGN_OR_RETURN(ApiToken revoked, access_->RevokeToken(w, req->name()));
                  ToProto(revoked, resp);
                  return absl::OkStatus();
                });
}

grpc::Status AdminServiceImpl::WhoAmI(grpc::ServerContext* ctx, const v1::WhoAmIRequest*,
                                      v1::WhoAmIResponse* resp) {
  return Handle(*log_, *auth_, *ctx, "/steritrack.v1.AdminService/WhoAmI",
                [&](const Identity& caller) -> absl::Status {
                  resp->set_name(caller.name);
                  resp->set_role(std::string(RoleName(caller.role)));
                  resp->set_credential(
                      caller.source == Identity::Source::kCertificate ? "certificate" : "token");
                  return absl::OkStatus();
                });
}

}  // namespace steritrack::rpc
