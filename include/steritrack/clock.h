// Clock and IdGenerator: the seams through which time and randomness enter core.
//
// Core never reads the wall clock itself; tests inject a FakeClock. Implementations must be safe to
// call from many threads at once.
#ifndef STERITRACK_CLOCK_H_
#define STERITRACK_CLOCK_H_

#include <memory>
#include <string>

#include "absl/time/time.h"

namespace steritrack {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The production clock (absl::Now()).
std::unique_ptr<Clock> NewSystemClock();

}  // namespace steritrack

#endif  // STERITRACK_CLOCK_H_
