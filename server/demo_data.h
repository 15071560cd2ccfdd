// The demo data set that the README's first command loads into a new database, so that a newcomer
// can walk through the CLI: a good lot, a recalled lot, an expired lot, and a treatment in
// progress; two sterilisers (AUTOCLAVE1 pre-vacuum, AUTOCLAVE2 gravity), handpieces HP-0001
// (sterile, from a released load) and HP-0002, and tray TRAY-0001 (both dirty).
#ifndef STERITRACK_SERVER_DEMO_DATA_H_
#define STERITRACK_SERVER_DEMO_DATA_H_

#include "absl/status/status.h"
#include "steritrack/clock.h"
#include "steritrack/sha256.h"
#include "steritrack/store.h"

namespace steritrack {

// Loads the demo set through core's rules, unless the store already holds lots. Returns OK and does
// nothing on a database that has data.
absl::Status LoadDemoDataIfEmpty(Store& store, const Clock& clock, const Sha256& sha256);

}  // namespace steritrack

#endif  // STERITRACK_SERVER_DEMO_DATA_H_
