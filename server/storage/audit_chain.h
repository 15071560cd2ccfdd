// The audit trail's hash chain (PRODUCT.md rule 9): each entry's hash is
// SHA-256(previous entry's hash || canonical bytes of the entry), hex-encoded; the first entry
// follows kGenesisHash. Internal to server/storage. Pure functions, thread-safe.
#ifndef STERITRACK_SERVER_STORAGE_AUDIT_CHAIN_H_
#define STERITRACK_SERVER_STORAGE_AUDIT_CHAIN_H_

#include <string>
#include <string_view>

#include "steritrack/model.h"

namespace steritrack::audit_chain {

inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Length-prefixed fields in a fixed order (seq, time in microseconds, actor, action, record ids,
// detail, before, after, request id, corrected entry), so that no two entries share bytes.
std::string Canonical(const Event& e);

// Lower-case hex SHA-256 of prev_hash followed by Canonical(e).
std::string EntryHash(std::string_view prev_hash, const Event& e);

}  // namespace steritrack::audit_chain

#endif  // STERITRACK_SERVER_STORAGE_AUDIT_CHAIN_H_
