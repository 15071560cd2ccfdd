#include "steritrack/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "steritrack/strings.h"

namespace steritrack::failpoint {
namespace {

struct Armed {
  bool crash = false;
  int on_hit = 1;  // fires on this hit, once
  int hits = 0;
};

struct Registry {
  absl::Mutex mu;
  std::map<std::string, Armed, std::less<>> points ABSL_GUARDED_BY(mu);
};

// "name=crash[:N],name=error[:N]"; anything unreadable is left unarmed.
Registry& Points() {
  static Registry* registry = [] {
    auto* r = new Registry();
    const char* spec = std::getenv("STERITRACK_FAILPOINTS");
    if (spec == nullptr) return r;
    absl::MutexLock lock(&r->mu);
    // absl's own string_view: Debian's absl does not alias std::string_view.
    for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
      std::pair<absl::string_view, absl::string_view> name_action = absl::StrSplit(item, '=');
      std::pair<absl::string_view, absl::string_view> action_n =
          absl::StrSplit(name_action.second, ':');
      Armed armed{.crash = action_n.first == "crash"};
      if (!armed.crash && action_n.first != "error") continue;
      if (!action_n.second.empty() &&
          (!absl::SimpleAtoi(action_n.second, &armed.on_hit) || armed.on_hit < 1)) {
        continue;
      }
      r->points[std::string(name_action.first)] = armed;
    }
    return r;
  }();
  return *registry;
}

}  // namespace

absl::Status Hit(std::string_view name) {
  Registry& r = Points();
  bool crash = false;
  {
    absl::MutexLock lock(&r.mu);
    auto it = r.points.find(name);
    if (it == r.points.end() || ++it->second.hits != it->second.on_hit) return absl::OkStatus();
    crash = it->second.crash;
  }
  if (crash) {
    kill(getpid(), SIGKILL);
    _exit(137);  // not reached
  }
  return absl::UnavailableError(StrCat("failpoint ", name));
}

}  // namespace steritrack::failpoint
