#include "server/rpc/thread_nice.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace steritrack::rpc {

NiceShift ShiftThisThreadsNice(int delta) {
  if (delta == 0) return {};
  // PRIO_PROCESS with a thread's id acts on that thread alone, on Linux.
  const id_t self = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, self);
  if (errno != 0) return {.wanted = delta, .refused = errno};  // not even read: `delta` itself
  const int wanted = std::clamp(current + delta, -20, 19);
  if (wanted == current) return {.wanted = wanted};
  if (setpriority(PRIO_PROCESS, self, wanted) != 0) return {.wanted = wanted, .refused = errno};
  return {.wanted = wanted};
}

}  // namespace steritrack::rpc
