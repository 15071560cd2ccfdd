// Tokens for the RPC tier, made the documented way: `steritrackd token create --db FILE --name N
// --role R` on the test's own database file, while the in-process server runs on it.
#ifndef STERITRACK_TESTS_RPC_TOKENS_H_
#define STERITRACK_TESTS_RPC_TOKENS_H_

#include <grpcpp/client_context.h>
#include <stdio.h>
#include <sys/wait.h>

#include <map>
#include <string>

#include "absl/strings/ascii.h"
#include "gtest/gtest.h"
#include "steritrack/strings.h"

namespace steritrack {

// Runs steritrackd (STERITRACKD_PATH, from CMake) to create a token; fails the test on error.
inline std::string CreateTokenWithSteritrackd(const std::string& db_path, const std::string& name,
                                              const std::string& role, int expires_in_days = 0) {
  const std::string command =
      StrCat("'", STERITRACKD_PATH, "' token create --db '", db_path, "' --name '", name,
             "' --role '", role, "'",
             expires_in_days > 0 ? StrCat(" --expires-in-days ", expires_in_days) : "", " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return "";
  }
  std::string out;
  char buffer[256];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  const int status = pclose(pipe);
  const std::string token(absl::StripAsciiWhitespace(out));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command << ":\n" << out;
  EXPECT_EQ(token.rfind("stk_", 0), 0u) << command << " printed:\n" << out;
  return token;
}

// One token per name, created on first use.
class TokenBook {
 public:
  explicit TokenBook(std::string db_path) : db_path_(std::move(db_path)) {}

  const std::string& For(const std::string& name, const std::string& role = "admin") {
    auto it = tokens_.find(name);
    if (it == tokens_.end()) {
      it = tokens_.emplace(name, CreateTokenWithSteritrackd(db_path_, name, role)).first;
    }
    return it->second;
  }

  // Adds `authorization: Bearer <token of name>` to `ctx`.
  void Authorize(grpc::ClientContext& ctx, const std::string& name,
                 const std::string& role = "admin") {
    ctx.AddMetadata("authorization", "Bearer " + For(name, role));
  }

 private:
  std::string db_path_;
  std::map<std::string, std::string> tokens_;
};

}  // namespace steritrack

#endif  // STERITRACK_TESTS_RPC_TOKENS_H_
