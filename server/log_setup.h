// steritrackd's log (issue 10): one line per request, as text (the default) or JSON for log
// shippers, on stderr (journald under systemd) or in a file rotated by size.
#ifndef STERITRACK_SERVER_LOG_SETUP_H_
#define STERITRACK_SERVER_LOG_SETUP_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "spdlog/logger.h"

namespace steritrack {

struct LogOptions {
  std::string level = "info";   // trace, debug, info, warn, error
  std::string format = "text";  // text | json
  std::string file;             // empty: stderr
  int max_size_mb = 100;        // with `file`: rotate at this size
  int max_files = 5;            // with `file`: rotated files kept
};

// The server's logger. JSON lines are {"time":"...Z","level":"info","logger":"steritrackd",
// "message":"..."}, the message JSON-escaped.
absl::StatusOr<std::shared_ptr<spdlog::logger>> MakeServerLogger(const LogOptions& options);

}  // namespace steritrack

#endif  // STERITRACK_SERVER_LOG_SETUP_H_
