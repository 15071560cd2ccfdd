#include "steritrack/error.h"

#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

// The payload is internal to this process: reason, then key/value pairs, NUL-separated. The wire
// form is google.rpc.ErrorInfo, built in server/rpc.
constexpr std::string_view kPayloadUrl = "type.steritrack.local/steritrack.ErrorInfo";

}  // namespace

absl::Status MakeError(absl::StatusCode code, std::string_view message, std::string_view reason,
                       std::map<std::string, std::string> metadata) {
  absl::Status status(code, std::string(message));
  std::string payload(reason);
  for (const auto& [key, value] : metadata) {
    StrAppend(&payload, std::string_view("\0", 1), key, std::string_view("\0", 1), value);
  }
  status.SetPayload(std::string(kPayloadUrl), absl::Cord(std::move(payload)));
  return status;
}

absl::Status InvalidField(std::string_view field, std::string_view why, std::string_view reason) {
  return MakeError(absl::StatusCode::kInvalidArgument, StrCat(field, ": ", why), reason,
                   {{"field", std::string(field)}, {"why", std::string(why)}});
}

std::optional<ErrorInfo> GetErrorInfo(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(std::string(kPayloadUrl));
  if (!payload.has_value()) return std::nullopt;
  const std::string flat(*payload);
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t end = flat.find('\0', start);
    parts.push_back(flat.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  ErrorInfo info;
  info.reason = parts.empty() ? "" : parts[0];
  for (size_t i = 1; i + 1 < parts.size(); i += 2) info.metadata[parts[i]] = parts[i + 1];
  return info;
}

}  // namespace steritrack
