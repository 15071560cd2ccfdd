// The audit trail's hash chain (PRODUCT.md rule 9), written once for every backend.
//
// Each entry's hash is SHA-256(previous entry's hash || canonical bytes of the entry), hex-encoded;
// the first entry follows kGenesisHash. A backend stores each entry with its hash and previous hash
// as core gives them, plus the head (steritrack/store.h, AuditLogWrites); appending and verifying
// happen here. Implemented in server/core. Pure functions over a transaction; thread-safe as the
// transaction they are given.
#ifndef STERITRACK_AUDIT_CHAIN_H_
#define STERITRACK_AUDIT_CHAIN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "steritrack/model.h"
#include "steritrack/sha256.h"
#include "steritrack/store.h"

namespace steritrack::audit_chain {

inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Length-prefixed fields in a fixed order (seq, time in microseconds, actor, action, record ids,
// detail, before, after, request id, corrected entry), so that no two entries share bytes.
std::string Canonical(const Event& e);

// Lower-case hex SHA-256 of prev_hash followed by Canonical(e).
std::string EntryHash(const Sha256& sha256, std::string_view prev_hash, const Event& e);

// Appends `entry` after the head: sets its seq, prev_hash and hash. Returns the new seq.
absl::StatusOr<int64_t> Append(AuditLogWrites& log, const Sha256& sha256, Event entry);

// Chains entries stored before the trail was hash-chained (a backend's migration): sets each
// entry's prev_hash and hash as Append would have, from the genesis on. The backend then stores
// them and moves its head to the last. REQUIRES: `entries` is the whole trail, seqs rising.
absl::Status ChainExisting(const Sha256& sha256, std::vector<Event>& entries);

// Recomputes the chain over every entry and cross-checks it against the head and the highest seq
// issued, so that an altered, removed, reordered or truncated entry is found.
absl::StatusOr<AuditChainCheck> Verify(AuditLogReads& log, const Sha256& sha256);

// As Verify, but trusting the entries up to a verified checkpoint: checks that the checkpoint's
// entry is still there and unchanged (its stored hash and its recomputed hash both equal the
// checkpoint's), then only the entries after it, and the same cross-checks against the head.
// Changes before the checkpoint entry are found only by Verify. With no checkpoint, Verify.
absl::StatusOr<AuditChainCheck> VerifyAfter(AuditLogReads& log, const Sha256& sha256,
                                            const std::optional<AuditCheckpoint>& checkpoint);

// Entries verified per page (memory: one page of entries at a time).
inline constexpr int kVerifyPage = 1000;

}  // namespace steritrack::audit_chain

#endif  // STERITRACK_AUDIT_CHAIN_H_
