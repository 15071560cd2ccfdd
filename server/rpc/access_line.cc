#include "server/rpc/access_line.h"

#include <utility>

#include "steritrack/error.h"

namespace steritrack::rpc {
namespace {

thread_local HeldAccessLine* held_here = nullptr;

}  // namespace

void AccessLine::Log(const absl::Status& answer) const {
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  if (answer.ok()) {
    log_->info("{} OK {:.2f}ms by {}", method_, ms, caller_);
    return;
  }
  std::string caller = caller_;
  std::optional<ErrorInfo> info = GetErrorInfo(answer);
  const std::string reason = info ? info->reason : "";
  if (info && answer.code() == absl::StatusCode::kPermissionDenied &&
      info->metadata.contains("name")) {
    caller = info->metadata.at("name");  // refused by role: the caller was authenticated
  }
  // Core answered the refusal but could not write its evidence record, even after retries. Only
  // the method and reason are logged: the metadata may name a client.
  if (info) {
    auto recorded = info->metadata.find("refusal_recorded");
    if (recorded != info->metadata.end() && recorded->second == "false") {
      log_->warn("{} {}: refusal NOT recorded in the audit log (its evidence write failed)",
                 method_, reason);
    }
  }
  if (answer.code() == absl::StatusCode::kInternal ||
      answer.code() == absl::StatusCode::kDataLoss || answer.code() == absl::StatusCode::kUnknown) {
    log_->error("{} {} {} {:.2f}ms by {}: {}", method_, absl::StatusCodeToString(answer.code()),
                reason, ms, caller, std::string(answer.message()));
  } else if (answer.code() != absl::StatusCode::kUnauthenticated) {
    // Unauthenticated calls are counted and reported at intervals by the Authorizer instead.
    log_->info("{} {} {} {:.2f}ms by {}", method_, absl::StatusCodeToString(answer.code()), reason,
               ms, caller);
  }
}

HeldAccessLine::HeldAccessLine() : previous_(held_here) { held_here = this; }

HeldAccessLine::~HeldAccessLine() {
  held_here = previous_;
  if (line_.has_value()) line_->Log(line_->handled());
}

void HeldAccessLine::LogOrHold(AccessLine line) {
  if (held_here == nullptr) {
    line.Log(line.handled());
    return;
  }
  if (held_here->line_.has_value()) held_here->line_->Log(held_here->line_->handled());
  held_here->line_ = std::move(line);
}

std::optional<AccessLine> HeldAccessLine::Take() { return std::exchange(line_, std::nullopt); }

}  // namespace steritrack::rpc
