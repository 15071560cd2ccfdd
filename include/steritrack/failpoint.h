// Failpoints: named places where a test can make the process fail on purpose, to check what a crash
// or an error at exactly that moment leaves behind.
//
// Compiled in only when the build defines STERITRACK_FAILPOINTS (cmake -DSTERITRACK_FAILPOINTS=ON,
// as deploy/test.sh builds); elsewhere STERITRACK_FAILPOINT(name) is nothing at all. Armed through
// the environment variable STERITRACK_FAILPOINTS, read once:
//   STERITRACK_FAILPOINTS="after_commit=crash"          the first time: SIGKILL this process
//   STERITRACK_FAILPOINTS="before_commit=error:3"       the third time: fail with UNAVAILABLE
// Several are separated by commas. The points: before_commit, after_commit (committed, not yet
// answered), audit_append (the audit entry written, the chain's head not yet), queue_delivered
// (the CLI's offline queue: the server has the write, the queue does not know yet), cli_open (the
// CLI, before it asks to open a cartridge: "error" makes it throw, as an unexpected bug would).
// Thread-safe.
#ifndef STERITRACK_FAILPOINT_H_
#define STERITRACK_FAILPOINT_H_

#include <string_view>

#include "absl/status/status.h"

namespace steritrack::failpoint {

// OK unless `name` is armed and this is the hit it is armed for: then UNAVAILABLE ("error"), or
// the process ends at once with SIGKILL ("crash"), as a power cut would end it.
absl::Status Hit(std::string_view name);

}  // namespace steritrack::failpoint

#ifdef STERITRACK_FAILPOINTS
#define STERITRACK_FAILPOINT(name)                                           \
  do {                                                                       \
    if (absl::Status failpoint_status_ = ::steritrack::failpoint::Hit(name); \
        !failpoint_status_.ok()) {                                           \
      return failpoint_status_;                                              \
    }                                                                        \
  } while (false)
#else
#define STERITRACK_FAILPOINT(name) \
  do {                             \
  } while (false)
#endif

#endif  // STERITRACK_FAILPOINT_H_
