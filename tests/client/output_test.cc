// How the CLI words a refusal of its credentials: one line that says what to do, exit 1; opening a
// cartridge or using an item still fails closed with its STOP line.
#include "client/output.h"

#include <string>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace steritrack::cli {
namespace {

grpc::Status Refusal(grpc::StatusCode code, const std::string& message, const std::string& reason,
                     const std::map<std::string, std::string>& metadata = {}) {
  google::rpc::ErrorInfo info;
  info.set_domain("steritrack");
  info.set_reason(reason);
  for (const auto& [k, v] : metadata) (*info.mutable_metadata())[k] = v;
  google::rpc::Status wire;
  wire.set_code(static_cast<int>(code));
  wire.set_message(message);
  wire.add_details()->PackFrom(info);
  return grpc::Status(code, message, wire.SerializeAsString());
}

TEST(AuthWordsTest, UnauthenticatedSaysHowToSignIn) {
  Verdict v =
      Describe(Refusal(grpc::StatusCode::UNAUTHENTICATED, "unknown token", "CREDENTIALS_INVALID"),
               Kind::kRead, "127.0.0.1:50051");
  EXPECT_EQ(v.exit_code, kExitError);
  EXPECT_EQ(v.outcome, "ERROR");
  EXPECT_EQ(v.line,
            "ERROR — not signed in: the server refused the credentials (CREDENTIALS_INVALID); set "
            "STERITRACK_TOKEN or --token-file, or a client certificate (--cert/--key)");
}

TEST(AuthWordsTest, UnauthenticatedWithoutErrorInfoUsesTheMessage) {
  Verdict v = Describe(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no credentials"),
                       Kind::kWrite, "s");
  EXPECT_EQ(v.exit_code, kExitError);
  EXPECT_NE(v.line.find("not signed in: the server refused the credentials (no credentials)"),
            std::string::npos)
      << v.line;
}

TEST(AuthWordsTest, ExpiredAndRevokedTokensAreSaidSo) {
  EXPECT_NE(Describe(Refusal(grpc::StatusCode::UNAUTHENTICATED, "x", "CREDENTIALS_EXPIRED"),
                     Kind::kRead, "s")
                .line.find("the token has expired (CREDENTIALS_EXPIRED)"),
            std::string::npos);
  EXPECT_NE(Describe(Refusal(grpc::StatusCode::UNAUTHENTICATED, "x", "CREDENTIALS_REVOKED"),
                     Kind::kRead, "s")
                .line.find("the token was revoked (CREDENTIALS_REVOKED)"),
            std::string::npos);
}

TEST(AuthWordsTest, PermissionDeniedNamesRoleAndMethod) {
  Verdict v =
      Describe(Refusal(grpc::StatusCode::PERMISSION_DENIED, "denied", "ROLE_NOT_ALLOWED",
                       {{"role", "nurse"}, {"method", "steritrack.v1.InventoryService/RecallLot"}}),
               Kind::kWrite, "s");
  EXPECT_EQ(v.exit_code, kExitError);
  EXPECT_EQ(v.line.rfind("ERROR — not allowed: role nurse may not call "
                         "steritrack.v1.InventoryService/RecallLot (ROLE_NOT_ALLOWED)",
                         0),
            0u)
      << v.line;
}

TEST(AuthWordsTest, OpeningACartridgeStillFailsClosed) {
  Verdict v =
      Describe(Refusal(grpc::StatusCode::UNAUTHENTICATED, "unknown token", "CREDENTIALS_INVALID"),
               Kind::kSafetyCheck, "s");
  EXPECT_EQ(v.exit_code, kExitError);
  EXPECT_EQ(v.outcome, "STOP");
  EXPECT_EQ(v.line.rfind("STOP — cannot verify this cartridge, do not use it: not signed in: ", 0),
            0u)
      << v.line;
  EXPECT_EQ(v.line.find('\n'), std::string::npos) << "one line";
  v = Describe(Refusal(grpc::StatusCode::PERMISSION_DENIED, "denied", "ROLE_NOT_ALLOWED",
                       {{"role", "integrator"}, {"method", "UseItem"}}),
               Kind::kItemCheck, "s");
  EXPECT_EQ(v.line.rfind("STOP — cannot verify this item, do not use it: not allowed: role "
                         "integrator may not call UseItem (ROLE_NOT_ALLOWED)",
                         0),
            0u)
      << v.line;
}

}  // namespace
}  // namespace steritrack::cli
