// Domain value types for the cartridge safety path: lots, cartridges, treatments, history events.
//
// Plain values, no behaviour beyond naming; the rules live in server/core. Copyable, not
// thread-safe by themselves (as any value type).
#ifndef STERITRACK_MODEL_H_
#define STERITRACK_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace steritrack {

// Limits on free-text fields, enforced in core and mirrored in the schema.
inline constexpr size_t kMaxNameLength = 64;     // room, clinician, container, actor
inline constexpr size_t kMaxReasonLength = 500;  // discard and recall reasons
inline constexpr size_t kMaxRequestIdLength = 128;

enum class LotState { kActive, kQuarantined, kRecalled };
std::string_view LotStateName(LotState state);

struct Lot {
  int64_t id = 0;
  std::string gtin;
  std::string lot;
  absl::CivilDay expiry;
  LotState state = LotState::kActive;
  std::string state_reason;
  std::string state_changed_by;
  absl::Time state_changed_at = absl::InfinitePast();
  absl::Time created_at = absl::InfinitePast();
  // Derived by core at the time of the answer (clinic time zone); never stored.
  bool expired = false;
};

enum class CartridgeState { kReceived, kOpened, kDisposed, kDiscarded };
std::string_view CartridgeStateName(CartridgeState state);

// The one use of a cartridge. Written once; the schema refuses a second.
struct CartridgeUse {
  int64_t treatment_id = 0;
  std::string room;
  absl::Time at;
  std::string by;
};

struct Disposal {
  std::string container_id;
  absl::Time at;
  std::string by;
};

struct Discard {
  std::string reason;
  absl::Time at;
  std::string by;
};

struct Cartridge {
  int64_t id = 0;
  std::string gtin;
  std::string serial;
  Lot lot;  // joined on read; only lot.id matters on insert
  CartridgeState state = CartridgeState::kReceived;
  absl::Time received_at;
  std::string received_by;
  std::optional<CartridgeUse> use;
  std::optional<Disposal> disposal;
  std::optional<Discard> discard;
};

struct Treatment {
  int64_t id = 0;
  std::string room;
  std::string clinician;
  std::string client_ref;
  absl::Time started_at;
  std::string started_by;
  std::optional<absl::Time> ended_at;
  std::string ended_by;
};

// An append-only history entry. Later issues hash-chain these into the audit trail.
struct Event {
  int64_t seq = 0;
  absl::Time at;
  std::string actor;
  std::string action;         // CARTRIDGE_RECEIVED, CARTRIDGE_OPENED, LOT_RECALLED, ...
  int64_t lot_id = 0;         // 0: none
  int64_t cartridge_id = 0;   // 0: none
  int64_t treatment_id = 0;   // 0: none
  int64_t item_id = 0;        // 0: none
  int64_t load_id = 0;        // 0: none
  int64_t sterilizer_id = 0;  // 0: none
  std::string detail;
  std::string request_id;
  // Rule 9: plain-text snapshots of the record's relevant state before and after the change, e.g.
  // "state=RECEIVED" -> "state=OPENED treatment=18 room=3". Never a client reference.
  std::string before;
  std::string after;
  int64_t corrects_seq = 0;  // 0: none; else the entry this one corrects
  // The entry's links in the audit hash chain, set by core when appending
  // (steritrack/audit_chain.h).
  std::string prev_hash;
  std::string hash;
};

// A product's par level (issue 15): the fewest openable units of `gtin` the clinic wants on the
// shelf, and how many days ahead of its expiry a unit stops protecting that minimum. What counts as
// openable is core's (server/core/stock_levels.cc), the same rule OpenCartridge applies.
inline constexpr int kDefaultExpiryWindowDays = 30;
inline constexpr int kMaxExpiryWindowDays = 3650;
inline constexpr int64_t kMaxParUnits = 1000000;

struct ParLevel {
  std::string gtin;
  int64_t min_units = 0;
  int expiry_window_days = kDefaultExpiryWindowDays;
  // Whether the product was below par at its last evaluation: a change of this is a crossing,
  // recorded once (STOCK_BELOW_PAR or STOCK_RESTORED).
  bool below_par = false;
  absl::Time set_at = absl::InfinitePast();
  std::string set_by;
};

// A completed idempotent write: the answer a repeat of `request_id` gets.
struct StoredRequest {
  std::string request_id;
  std::string operation;    // e.g. "OpenCartridge"
  std::string fingerprint;  // canonical form of the request's fields
  std::string response;     // the encoded first answer
  absl::Time at;
};

}  // namespace steritrack

#endif  // STERITRACK_MODEL_H_
